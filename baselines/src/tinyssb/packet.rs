//! tinySSB's packets and their sizes (`baselines.md` §2.1): every packet at most 120 bytes;
//! log entries and sidechain chunks exactly 120; GOset claims 105 and novelties 40; WANT and
//! CHNK vectors a 7-byte DMX and a BIPF list cut at about 100 bytes.

use crate::seam::{Feed, Wire, WireKind};

/// A log entry or sidechain chunk.
pub const PACKET_BYTES: u64 = 120;
/// The demultiplexing prefix.
pub const DMX_BYTES: u64 = 7;
/// A GOset claim: DMX, type, lo, hi, XOR, count.
pub const CLAIM_BYTES: u64 = DMX_BYTES + 1 + 32 + 32 + 32 + 1;
/// A GOset novelty: DMX, type, key.
pub const NOVELTY_BYTES: u64 = DMX_BYTES + 1 + 32;
/// A WANT or CHNK list stops growing once its encoding passes this.
pub const VECTOR_CUT_BYTES: u64 = 100;
/// Content carried by a plain48 entry.
pub const PLAIN_BYTES: u32 = 48;
/// Content carried by one sidechain chunk.
pub const CHUNK_CONTENT_BYTES: u32 = 100;

/// A GOset key (a feed id).
pub type Key = [u8; 32];

/// The key of a feed in the simulation: its number, then filler from the number, so that
/// keys sort by feed and XOR like random ids.
#[must_use]
pub fn key_of(feed: Feed) -> Key {
    let mut key = [0_u8; 32];
    key[..4].copy_from_slice(&feed.0.to_be_bytes());
    let mut state = u64::from(feed.0).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for byte in &mut key[4..] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state.to_le_bytes()[0];
    }
    key
}

/// The feed a key stands for.
#[must_use]
pub fn feed_of(key: &Key) -> Feed {
    Feed(u32::from_be_bytes([key[0], key[1], key[2], key[3]]))
}

/// Sidechain chunks an entry of `content_bytes` needs: none for plain48; for chain20, what
/// does not fit the `28 − varint length` inline bytes, 100 per chunk.
#[must_use]
pub fn chunks_for(content_bytes: u32) -> u32 {
    if content_bytes <= PLAIN_BYTES {
        return 0;
    }
    let varint = match content_bytes {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        _ => 3,
    };
    let inline = 28 - varint;
    content_bytes
        .saturating_sub(inline)
        .div_ceil(CHUNK_CONTENT_BYTES)
}

/// A BIPF integer: a one-byte header and the fewest little-endian bytes that hold it.
fn bipf_int(value: u32) -> u64 {
    1 + match value {
        0..=0x7f => 1,
        0x80..=0x7fff => 2,
        _ => 4,
    }
}

/// A BIPF list header for `content` bytes of elements.
fn bipf_list_header(content: u64) -> u64 {
    if (content << 3) < 0x80 { 1 } else { 2 }
}

/// Bytes of a WANT list `[offset, next…]`.
#[must_use]
pub fn want_list_bytes(offset: u32, next: &[u32]) -> u64 {
    let content = bipf_int(offset) + next.iter().map(|&n| bipf_int(n)).sum::<u64>();
    bipf_list_header(content) + content
}

/// Bytes of one CHNK triple `[index, seq, chunk]`.
#[must_use]
pub fn chunk_triple_bytes(triple: (u32, u32, u32)) -> u64 {
    let content = bipf_int(triple.0) + bipf_int(triple.1) + bipf_int(triple.2);
    bipf_list_header(content) + content
}

/// Bytes of a CHNK list of triples.
#[must_use]
pub fn chnk_list_bytes(triples: &[(u32, u32, u32)]) -> u64 {
    let content: u64 = triples.iter().map(|&t| chunk_triple_bytes(t)).sum();
    bipf_list_header(content) + content
}

/// A GOset claim: the keys from `lo` to `hi` (inclusive), their XOR and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The smallest key claimed.
    pub lo: Key,
    /// The largest key claimed.
    pub hi: Key,
    /// XOR of every key from lo to hi.
    pub xor: Key,
    /// How many keys from lo to hi.
    pub count: u8,
}

/// One tinySSB packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TinyWire {
    /// A GOset claim.
    Claim(Claim),
    /// A GOset novelty: one key.
    Novelty(Key),
    /// Next sequence wanted of the feeds at GOset index `offset`, `offset + 1`, …; understood
    /// only by a node whose GOset state (XOR of its keys) is `state`.
    Want {
        /// The sender's GOset state (its DMX is derived from it).
        state: Key,
        /// The GOset index of the first entry.
        offset: u32,
        /// Next sequence wanted, per feed from `offset` on.
        next: Vec<u32>,
    },
    /// Sidechain chunks wanted: (GOset index, entry sequence, next chunk number).
    Chnk {
        /// The sender's GOset state.
        state: Key,
        /// What is wanted.
        wants: Vec<(u32, u32, u32)>,
    },
    /// A log entry (plain48 or chain20).
    Entry {
        /// The feed.
        feed: Feed,
        /// Its sequence.
        seq: u32,
        /// Content size of the item it carries (for its chunk count).
        content_bytes: u32,
    },
    /// Chunk `number` (from 0) of entry `seq`'s sidechain.
    Chunk {
        /// The feed.
        feed: Feed,
        /// The entry's sequence.
        seq: u32,
        /// Which chunk.
        number: u32,
    },
}

impl Wire for TinyWire {
    fn bytes(&self) -> u64 {
        match self {
            TinyWire::Claim(_) => CLAIM_BYTES,
            TinyWire::Novelty(_) => NOVELTY_BYTES,
            TinyWire::Want { offset, next, .. } => DMX_BYTES + want_list_bytes(*offset, next),
            TinyWire::Chnk { wants, .. } => DMX_BYTES + chnk_list_bytes(wants),
            TinyWire::Entry { .. } | TinyWire::Chunk { .. } => PACKET_BYTES,
        }
    }

    fn kind(&self) -> WireKind {
        match self {
            TinyWire::Claim(_) | TinyWire::Novelty(_) => WireKind::Control,
            TinyWire::Want { .. } | TinyWire::Chnk { .. } => WireKind::Summary,
            TinyWire::Entry { .. } | TinyWire::Chunk { .. } => WireKind::Payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_content_goes_to_sidechains_of_one_hundred_bytes() {
        assert_eq!(chunks_for(48), 0);
        // 49 bytes: 27 inline (28 − a one-byte varint), 22 in one chunk.
        assert_eq!(chunks_for(49), 1);
        assert_eq!(chunks_for(27 + 100), 1);
        assert_eq!(chunks_for(27 + 101), 2);
        // 100 kB of content: a thousand chunks.
        assert_eq!(chunks_for(100_000), 1_000);
    }

    #[test]
    fn keys_name_their_feed_and_sort_by_it() {
        assert_eq!(feed_of(&key_of(Feed(7))), Feed(7));
        assert!(key_of(Feed(3)) < key_of(Feed(300)));
    }
}
