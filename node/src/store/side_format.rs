//! The metadata side file's bytes (`side.rs` keeps the file): its header, and an entry's
//! encoding, length and checksum checks and exact decoding.
//!
//! Format (little-endian):
//!
//! ```text
//! file     := magic "PPPPPMET" | version u32 (= 1) | crc u32 (of the 12 bytes before)
//! entry    := body_len u32 | body_crc u32 | body
//! body     := id [32] | flags u8 (bit 0: dataHash, bit 1: accountTips) | dataHash [32]?
//!             | dataSize u64 | account_kind u8 (0 "self", 1 "any", 2 an ID) | account [32]?
//!             | tips_count u32 | tip [32] × tips_count                        (bit 1 only)
//!             | tangle_count u32 | (tangle [32] | depth u64 | prev_count u32 | prev [32] ×)
//!             | domain_len u32 | domain (UTF-8)
//! ```

use std::collections::BTreeMap;

use indexmap::IndexMap;

use proto::ids::{DataHash, MsgId};
use proto::msg::{Account, Metadata, TangleLink};

use super::format::{RECORD_BYTES_MAX, RawId, Reader};

const MAGIC: &[u8; 8] = b"PPPPPMET";
const VERSION: u32 = 1;
pub(super) const HEADER_LEN: u64 = 16;
pub(super) const ENTRY_PREFIX_LEN: usize = 8;
/// Largest entry body: an entry describes one stored record, which is bounded the same way.
const ENTRY_BYTES_MAX: usize = RECORD_BYTES_MAX;
const FLAG_DATA_HASH: u8 = 1;
const FLAG_ACCOUNT_TIPS: u8 = 2;

pub(super) fn encode_header() -> [u8; 16] {
    let mut header = [0u8; 16];
    let (head, crc) = header.split_at_mut(12);
    head[..8].copy_from_slice(MAGIC);
    head[8..].copy_from_slice(&VERSION.to_le_bytes());
    crc.copy_from_slice(&crc32c::crc32c(head).to_le_bytes());
    header
}

/// The length of the entry `bytes` starts with (prefix included), if its prefix is whole
/// and its length allowed.
pub(super) fn entry_len(bytes: &[u8]) -> Option<usize> {
    let body = usize::try_from(Reader::new(bytes).u32()?).ok()?;
    (32..=ENTRY_BYTES_MAX)
        .contains(&body)
        .then_some(body + ENTRY_PREFIX_LEN)
}

/// The ID of a whole entry whose checksum holds.
pub(super) fn checked_id(entry: &[u8]) -> Option<RawId> {
    let mut reader = Reader::new(entry);
    let _len = reader.u32()?;
    let crc = reader.u32()?;
    let body = reader.rest();
    if crc32c::crc32c(body) != crc {
        return None;
    }
    Reader::new(body).array::<32>()
}

/// Appends the entry of `id`; false (nothing appended) if a count does not fit the format.
pub(super) fn encode_entry(out: &mut Vec<u8>, id: &RawId, metadata: &Metadata) -> bool {
    let start = out.len();
    out.extend_from_slice(&[0u8; ENTRY_PREFIX_LEN]);
    out.extend_from_slice(id);
    let flags = u8::from(metadata.data_hash.is_some()) * FLAG_DATA_HASH
        + u8::from(metadata.account_tips.is_some()) * FLAG_ACCOUNT_TIPS;
    out.push(flags);
    if let Some(hash) = &metadata.data_hash {
        out.extend_from_slice(&hash.to_bytes());
    }
    out.extend_from_slice(&metadata.data_size.to_le_bytes());
    match &metadata.account {
        Account::OwnTangle => out.push(0),
        Account::Any => out.push(1),
        Account::Id(account) => {
            out.push(2);
            out.extend_from_slice(&account.to_bytes());
        }
    }
    let fits = (|| {
        if let Some(tips) = &metadata.account_tips {
            push_ids(out, tips)?;
        }
        out.extend_from_slice(&u32::try_from(metadata.tangles.len()).ok()?.to_le_bytes());
        for (tangle, link) in &metadata.tangles {
            out.extend_from_slice(&tangle.to_bytes());
            out.extend_from_slice(&link.depth.to_le_bytes());
            push_ids(out, &link.prev)?;
        }
        out.extend_from_slice(&u32::try_from(metadata.domain.len()).ok()?.to_le_bytes());
        out.extend_from_slice(metadata.domain.as_bytes());
        let body = out.get(start + ENTRY_PREFIX_LEN..)?;
        let len = u32::try_from(body.len())
            .ok()
            .filter(|len| *len as usize <= ENTRY_BYTES_MAX)?;
        let crc = crc32c::crc32c(body);
        let prefix = out.get_mut(start..start + ENTRY_PREFIX_LEN)?;
        prefix[..4].copy_from_slice(&len.to_le_bytes());
        prefix[4..].copy_from_slice(&crc.to_le_bytes());
        Some(())
    })();
    if fits.is_none() {
        out.truncate(start);
    }
    fits.is_some()
}

fn push_ids(out: &mut Vec<u8>, ids: &[MsgId]) -> Option<()> {
    out.extend_from_slice(&u32::try_from(ids.len()).ok()?.to_le_bytes());
    for id in ids {
        out.extend_from_slice(&id.to_bytes());
    }
    Some(())
}

/// IDs already turned into base58 while decoding one window: a feed's entries name the same
/// account, account tips and tangle again and again, and each other in `prev`. Never
/// iterated, so a hash map (`IndexMap`, as the index uses).
#[derive(Default)]
pub(super) struct IdTexts(IndexMap<RawId, MsgId>);

impl IdTexts {
    pub(super) fn get(&mut self, raw: [u8; 32]) -> MsgId {
        *self.0.entry(raw).or_insert_with(|| MsgId::from_bytes(&raw))
    }

    /// The IDs of raw bytes, 32 each.
    pub(super) fn list(&mut self, bytes: &[u8]) -> Vec<MsgId> {
        let mut out = Vec::with_capacity(bytes.len() / 32);
        out.extend(raw_ids(bytes).map(|raw| self.get(raw)));
        out
    }
}

/// A whole entry's fields, as raw bytes: what [`parse_entry`] checked. Decoding the whole
/// metadata ([`decode_entry`]) and reading one tangle's link ([`EntryParts::link_in`]) both
/// start from it, so both accept exactly the same entries.
pub(super) struct EntryParts<'a> {
    pub(super) id: RawId,
    data_hash: Option<RawId>,
    data_size: u64,
    /// `Account::OwnTangle` (0), `Any` (1) or an ID (2, with `account`).
    account_kind: u8,
    account: Option<RawId>,
    /// The account tips' raw IDs, 32 bytes each, if the msg names them.
    pub(super) tips: Option<&'a [u8]>,
    tangle_count: u32,
    /// `tangle_count` times: tangle [32] | depth u64 | prev_count u32 | prev [32] ×.
    tangles: &'a [u8],
    domain: &'a str,
}

/// What one entry says of the msg's place in one tangle: its depth and `prev`'s raw IDs.
pub(super) struct RawLink<'a> {
    pub(super) depth: u64,
    /// 32 bytes each.
    pub(super) prev: &'a [u8],
}

impl<'a> EntryParts<'a> {
    /// The account, if the msg names one by ID.
    pub(super) fn account(&self) -> Option<RawId> {
        self.account
    }

    /// The msg's link in `tangle`, if its metadata lists it.
    pub(super) fn link_in(&self, tangle: &RawId) -> Option<RawLink<'a>> {
        self.links()
            .find(|(id, _)| id == tangle)
            .map(|(_, link)| link)
    }

    fn links(&self) -> impl Iterator<Item = (RawId, RawLink<'a>)> + 'a {
        let mut reader = Reader::new(self.tangles);
        (0..self.tangle_count).map_while(move |_| {
            let tangle = reader.array::<32>()?;
            let depth = reader.u64()?;
            let count = usize::try_from(reader.u32()?).ok()?;
            let prev = reader.bytes(count.checked_mul(32)?)?;
            Some((tangle, RawLink { depth, prev }))
        })
    }
}

/// The raw 32-byte IDs in `bytes` (a whole number of them, as [`parse_entry`] checked).
pub(super) fn raw_ids(bytes: &[u8]) -> impl Iterator<Item = RawId> + '_ {
    bytes
        .chunks_exact(32)
        .filter_map(|chunk| <RawId>::try_from(chunk).ok())
}

/// A whole entry's fields, if its checksum holds and it parses exactly (known flags and
/// account kind, counts the entry holds, a UTF-8 domain, nothing left over).
pub(super) fn parse_entry(entry: &[u8]) -> Option<EntryParts<'_>> {
    checked_id(entry)?;
    let mut reader = Reader::new(entry.get(ENTRY_PREFIX_LEN..)?);
    let id = reader.array::<32>()?;
    let flags = reader.u8()?;
    if flags & !(FLAG_DATA_HASH | FLAG_ACCOUNT_TIPS) != 0 {
        return None;
    }
    let data_hash = if flags & FLAG_DATA_HASH != 0 {
        Some(reader.array::<32>()?)
    } else {
        None
    };
    let data_size = reader.u64()?;
    let account_kind = reader.u8()?;
    let account = match account_kind {
        0 | 1 => None,
        2 => Some(reader.array::<32>()?),
        _ => return None,
    };
    let tips = if flags & FLAG_ACCOUNT_TIPS != 0 {
        Some(id_list(&mut reader)?)
    } else {
        None
    };
    let tangle_count = reader.u32()?;
    let tangles_start = reader.rest();
    let mut tangles_reader = Reader::new(tangles_start);
    for _ in 0..tangle_count {
        tangles_reader.array::<32>()?;
        tangles_reader.u64()?;
        id_list(&mut tangles_reader)?;
    }
    let tangles_len = tangles_start.len() - tangles_reader.remaining();
    let (tangles, rest) = tangles_start.split_at_checked(tangles_len)?;
    let mut reader = Reader::new(rest);
    let domain_len = usize::try_from(reader.u32()?).ok()?;
    let domain = std::str::from_utf8(reader.bytes(domain_len)?).ok()?;
    if reader.remaining() != 0 {
        return None;
    }
    Some(EntryParts {
        id,
        data_hash,
        data_size,
        account_kind,
        account,
        tips,
        tangle_count,
        tangles,
        domain,
    })
}

/// A count of IDs and their bytes; a count the entry cannot hold is refused.
fn id_list<'a>(reader: &mut Reader<'a>) -> Option<&'a [u8]> {
    let count = usize::try_from(reader.u32()?).ok()?;
    if count > reader.remaining() / 32 {
        return None;
    }
    reader.bytes(count * 32)
}

/// A whole entry's ID and metadata, if its checksum holds and it decodes exactly.
pub(super) fn decode_entry(entry: &[u8], ids: &mut IdTexts) -> Option<(RawId, Metadata)> {
    let parts = parse_entry(entry)?;
    let account = match (parts.account_kind, parts.account) {
        (0, _) => Account::OwnTangle,
        (1, _) => Account::Any,
        (_, Some(account)) => Account::Id(ids.get(account)),
        _ => return None,
    };
    let account_tips = parts.tips.map(|tips| ids.list(tips));
    let mut tangles = BTreeMap::new();
    for (tangle, link) in parts.links() {
        let prev = ids.list(link.prev);
        tangles.insert(
            ids.get(tangle),
            TangleLink {
                depth: link.depth,
                prev,
            },
        );
    }
    let metadata = Metadata {
        data_hash: parts.data_hash.map(|hash| DataHash::from_bytes(&hash)),
        data_size: parts.data_size,
        account,
        account_tips,
        tangles,
        domain: parts.domain.to_owned(),
    };
    Some((parts.id, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> Metadata {
        let id = |byte: u8| MsgId::from_bytes(&[byte; 32]);
        let mut tangles = BTreeMap::new();
        tangles.insert(
            id(1),
            TangleLink {
                depth: 7,
                prev: vec![id(2), id(3)],
            },
        );
        Metadata {
            data_hash: Some(DataHash::from_bytes(&[4; 32])),
            data_size: 42,
            account: Account::Id(id(5)),
            account_tips: Some(vec![id(6)]),
            tangles,
            domain: "post".to_owned(),
        }
    }

    #[test]
    fn an_entry_decodes_to_what_was_encoded_and_any_flipped_bit_is_refused() {
        let mut bytes = Vec::new();
        assert!(encode_entry(&mut bytes, &[9; 32], &metadata()));
        assert_eq!(entry_len(&bytes), Some(bytes.len()));
        assert_eq!(
            decode_entry(&bytes, &mut IdTexts::default()),
            Some(([9; 32], metadata()))
        );
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            let decoded = entry_len(&flipped)
                .and_then(|len| flipped.get(..len))
                .and_then(|entry| decode_entry(entry, &mut IdTexts::default()));
            assert_eq!(decoded, None, "a flipped bit at byte {at} is noticed");
        }
    }

    #[test]
    fn moots_and_account_msgs_round_trip() {
        let mut moot = metadata();
        moot.data_hash = None;
        moot.account_tips = None;
        moot.tangles.clear();
        moot.account = Account::Any;
        let mut own = metadata();
        own.account = Account::OwnTangle;
        for metadata in [moot, own] {
            let mut bytes = Vec::new();
            assert!(encode_entry(&mut bytes, &[1; 32], &metadata));
            assert_eq!(
                decode_entry(&bytes, &mut IdTexts::default()),
                Some(([1; 32], metadata))
            );
        }
    }
}
