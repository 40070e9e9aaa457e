//! What p2p.today's sockets share (`baselines.md` §3.1–3.2): the frame encoding's sizes, the
//! connect-time whisper handshake and peers list, the 60 s window of seen broadcast ids, and
//! which neighbour a relay skips.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::seam::{Handshake, ItemId, LinkId, Millis, Output, PeerId};

/// How long a seen id is remembered, and the oldest broadcast still relayed.
pub const SEEN_WINDOW_MS: Millis = 60_000;

/// A frame's fixed overhead: 4-byte length prefix and 32-byte SHA-256 checksum (the id).
pub const FRAME_OVERHEAD: u64 = 4 + 32;
/// A node id: base58 of SHA-384, about 66 characters, as a msgpack str8.
pub const NODE_ID: u64 = 2 + 66;
/// Integer UTC seconds of this era as a msgpack uint32.
pub const TIMESTAMP: u64 = 5;
/// A one-byte flag (positive fixint).
pub const FLAG: u64 = 1;
/// A fixarray header.
pub const ARRAY: u64 = 1;
/// The protocol ("subnet") id: base58 of SHA-256, 44 characters, as a str8.
const PROTOCOL_ID: u64 = 2 + 44;
/// An outward address `[host, port]`: fixarray, fixstr of `10.0.0.1`, uint16.
const ADDRESS: u64 = ARRAY + 1 + 8 + 3;
/// The compression methods the Python node offers, as the JSON text it sends.
const COMPRESSION_LIST: &str = r#"["snappy", "zlib", "gzip", "bz2", "lzma"]"#;

/// Plain TCP: the mesh's encryption is optional and off by default, and its whisper
/// handshake is an ordinary message.
pub const PLAIN_TCP: Handshake = Handshake {
    round_trips: 1,
    bytes: 0,
    acceptor_bytes: 0,
};

/// `[msg_type, sender id, timestamp, sub-flag, …]`: what every message starts with.
pub const ENVELOPE: u64 = ARRAY + FLAG + NODE_ID + TIMESTAMP + FLAG;

/// A msgpack bin of `len` bytes.
#[must_use]
pub fn msgpack_bin(len: u64) -> u64 {
    match len {
        0..=0xff => 2 + len,
        0x100..=0xffff => 3 + len,
        _ => 5 + len,
    }
}

/// A msgpack str of `len` bytes.
#[must_use]
pub fn msgpack_str(len: u64) -> u64 {
    match len {
        0..=31 => 1 + len,
        32..=0xff => 2 + len,
        0x100..=0xffff => 3 + len,
        _ => 5 + len,
    }
}

fn msgpack_array_header(len: u64) -> u64 {
    if len <= 15 { 1 } else { 3 }
}

/// Bytes of the whisper/handshake frame: own id, protocol id, outward address, compression.
#[must_use]
pub fn handshake_bytes() -> u64 {
    let compression = msgpack_str(COMPRESSION_LIST.len() as u64);
    FRAME_OVERHEAD + ENVELOPE + NODE_ID + PROTOCOL_ID + ADDRESS + compression
}

/// Bytes of the whisper/peers frame listing `count` routing-table entries.
#[must_use]
pub fn peers_bytes(count: u32) -> u64 {
    let count = u64::from(count);
    FRAME_OVERHEAD + ENVELOPE + msgpack_array_header(count) + count * (ARRAY + ADDRESS + NODE_ID)
}

/// Which neighbour a relaying peer skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Exclusion {
    /// Peers whose id is the broadcast's originator (p2p.today 0.6's `mesh.py`).
    #[default]
    Originator,
    /// The connection the broadcast arrived on (the spec's "optionally excluding the one
    /// you received it from").
    PreviousHop,
}

/// A node's part of the mesh: its id, its routing table, its relay rule and its waterfall.
#[derive(Debug)]
pub struct Mesh {
    me: PeerId,
    exclusion: Exclusion,
    /// The routing table: connection → peer id.
    links: BTreeMap<LinkId, PeerId>,
    seen: Waterfall,
}

impl Mesh {
    /// A node with an empty routing table.
    #[must_use]
    pub fn new(me: PeerId, exclusion: Exclusion) -> Mesh {
        Mesh {
            me,
            exclusion,
            links: BTreeMap::new(),
            seen: Waterfall::default(),
        }
    }

    /// This node's id.
    #[must_use]
    pub fn me(&self) -> PeerId {
        self.me
    }

    /// A connection came up: it joins the routing table, and the node sends its whisper
    /// handshake and its peers list (made by `peers` from the table's size) on it.
    pub fn link_up<W>(
        &mut self,
        (link, peer): (LinkId, PeerId),
        handshake: W,
        peers: impl FnOnce(u32) -> W,
        out: &mut Vec<Output<W>>,
    ) {
        self.links.insert(link, peer);
        let count = u32::try_from(self.links.len()).unwrap_or(u32::MAX);
        out.push(Output::Send {
            link,
            msg: handshake,
        });
        out.push(Output::Send {
            link,
            msg: peers(count),
        });
    }

    /// A connection went away.
    pub fn link_down(&mut self, link: LinkId) {
        self.links.remove(&link);
    }

    /// The process stops: its connections end with it. The window of seen ids is kept,
    /// modelled as the node's record of what it has handled (the reference holds it in
    /// memory, so a restart within 60 s could relay a broadcast again).
    pub fn stop(&mut self) {
        self.links.clear();
    }

    /// Records a broadcast id; whether it was not seen within the window.
    pub fn first_sight(&mut self, now: Millis, id: ItemId) -> bool {
        self.seen.first_sight(now, id)
    }

    /// The connections a broadcast from `originator`, received on `from`, is relayed on.
    #[must_use]
    pub fn relay_targets(&self, originator: PeerId, from: Option<LinkId>) -> Vec<LinkId> {
        self.links
            .iter()
            .filter_map(|(&link, &peer)| {
                let skipped = match self.exclusion {
                    Exclusion::Originator => peer == originator,
                    Exclusion::PreviousHop => Some(link) == from,
                };
                (!skipped).then_some(link)
            })
            .collect()
    }
}

/// The "waterfall": broadcast ids seen in the last [`SEEN_WINDOW_MS`].
#[derive(Debug, Default)]
struct Waterfall {
    seen: BTreeSet<ItemId>,
    order: VecDeque<(Millis, ItemId)>,
}

impl Waterfall {
    /// Records `id` as seen at `now` unless it was seen within the window; whether it is new.
    fn first_sight(&mut self, now: Millis, id: ItemId) -> bool {
        while let Some(&(at, old)) = self.order.front() {
            if now.saturating_sub(at) <= SEEN_WINDOW_MS {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&old);
        }
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back((now, id));
        true
    }
}
