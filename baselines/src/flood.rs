//! p2p.today's mesh socket (`baselines.md` §3.2): every broadcast is relayed to every
//! connected peer but one, and a peer drops what it has seen in the last 60 s.
//!
//! Modelled: the connect-time whisper handshake and peers list, the broadcast encoding
//! (4-byte length, 32-byte SHA-256 checksum id, msgpack list), the 60 s "waterfall" of seen
//! ids and the 60 s maximum age (clocks are assumed synchronised), and which peer a relay
//! skips ([`Exclusion`]; the 0.6 code skips the broadcast's originator, the spec allows the
//! previous hop). Not modelled: compression and renegotiation, ping/pong, peer-request
//! routing, and dialing the listed peers (the engine's topology decides who connects).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::seam::{
    Handshake, Input, Item, ItemId, LinkId, Millis, Output, PeerId, Replicator, Wire, WireKind,
};

/// How long a seen id is remembered, and the oldest broadcast still relayed.
pub const SEEN_WINDOW_MS: Millis = 60_000;

/// A frame's fixed overhead: 4-byte length prefix and 32-byte SHA-256 checksum (the id).
const FRAME_OVERHEAD: u64 = 4 + 32;
/// A node id: base58 of SHA-384, about 66 characters, as a msgpack str8.
const NODE_ID: u64 = 2 + 66;
/// Integer UTC seconds of this era as a msgpack uint32.
const TIMESTAMP: u64 = 5;
/// A one-byte flag (positive fixint).
const FLAG: u64 = 1;
/// A fixarray header.
const ARRAY: u64 = 1;
/// The protocol ("subnet") id: base58 of SHA-256, 44 characters, as a str8.
const PROTOCOL_ID: u64 = 2 + 44;
/// An outward address `[host, port]`: fixarray, fixstr of `10.0.0.1`, uint16.
const ADDRESS: u64 = ARRAY + 1 + 8 + 3;
/// The compression methods the Python node offers, as the JSON text it sends.
const COMPRESSION_LIST: &str = r#"["snappy", "zlib", "gzip", "bz2", "lzma"]"#;

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

/// A mesh socket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FloodWire {
    /// whisper/handshake: own id, protocol id, outward address, compression methods.
    Handshake,
    /// whisper/peers: the sender's routing table, `count` entries of `[[host, port], id]`.
    Peers {
        /// Entries in the list.
        count: u32,
    },
    /// broadcast/broadcast carrying one item.
    Broadcast {
        /// The item.
        item: Item,
        /// Who first broadcast it.
        originator: PeerId,
        /// When it was first broadcast (the message's timestamp).
        origin_ms: Millis,
    },
}

fn msgpack_bin(len: u64) -> u64 {
    match len {
        0..=0xff => 2 + len,
        0x100..=0xffff => 3 + len,
        _ => 5 + len,
    }
}

fn msgpack_array_header(len: u64) -> u64 {
    if len <= 15 { 1 } else { 3 }
}

/// `[msg_type, sender id, timestamp, sub-flag, …]`: what every message starts with.
const ENVELOPE: u64 = ARRAY + FLAG + NODE_ID + TIMESTAMP + FLAG;

impl Wire for FloodWire {
    fn bytes(&self) -> u64 {
        let body = match self {
            FloodWire::Handshake => {
                let compression = 2 + COMPRESSION_LIST.len() as u64;
                ENVELOPE + NODE_ID + PROTOCOL_ID + ADDRESS + compression
            }
            FloodWire::Peers { count } => {
                let count = u64::from(*count);
                ENVELOPE + msgpack_array_header(count) + count * (ARRAY + ADDRESS + NODE_ID)
            }
            FloodWire::Broadcast { item, .. } => {
                ENVELOPE + msgpack_bin(u64::from(item.content_bytes))
            }
        };
        FRAME_OVERHEAD + body
    }

    fn kind(&self) -> WireKind {
        match self {
            FloodWire::Handshake | FloodWire::Peers { .. } => WireKind::Control,
            FloodWire::Broadcast { .. } => WireKind::Payload,
        }
    }
}

/// One peer of the mesh.
#[derive(Debug)]
pub struct Flood {
    me: PeerId,
    exclusion: Exclusion,
    /// The routing table: connection → peer id.
    links: BTreeMap<LinkId, PeerId>,
    /// Ids seen in the last [`SEEN_WINDOW_MS`], and when.
    seen: BTreeSet<ItemId>,
    seen_order: VecDeque<(Millis, ItemId)>,
    /// Everything this peer has received or published (its application's store).
    held: BTreeSet<ItemId>,
}

impl Flood {
    /// A peer with an empty routing table.
    #[must_use]
    pub fn new(me: PeerId, exclusion: Exclusion) -> Flood {
        Flood {
            me,
            exclusion,
            links: BTreeMap::new(),
            seen: BTreeSet::new(),
            seen_order: VecDeque::new(),
            held: BTreeSet::new(),
        }
    }

    /// Items this peer holds.
    #[must_use]
    pub fn held(&self) -> &BTreeSet<ItemId> {
        &self.held
    }

    fn forget_older_than(&mut self, now: Millis) {
        while let Some(&(at, id)) = self.seen_order.front() {
            if now.saturating_sub(at) <= SEEN_WINDOW_MS {
                break;
            }
            self.seen_order.pop_front();
            self.seen.remove(&id);
        }
    }

    fn remember(&mut self, now: Millis, id: ItemId) {
        self.seen.insert(id);
        self.seen_order.push_back((now, id));
    }

    fn relay(&self, msg: &FloodWire, from: Option<LinkId>, out: &mut Vec<Output<FloodWire>>) {
        let FloodWire::Broadcast { originator, .. } = msg else {
            return;
        };
        for (&link, &peer) in &self.links {
            let skipped = match self.exclusion {
                Exclusion::Originator => peer == *originator,
                Exclusion::PreviousHop => Some(link) == from,
            };
            if !skipped {
                out.push(Output::Send {
                    link,
                    msg: msg.clone(),
                });
            }
        }
    }

    fn received(
        &mut self,
        now: Millis,
        link: LinkId,
        msg: FloodWire,
        out: &mut Vec<Output<FloodWire>>,
    ) {
        let FloodWire::Broadcast {
            item, origin_ms, ..
        } = &msg
        else {
            return;
        };
        self.forget_older_than(now);
        if self.held.contains(&item.id) || self.seen.contains(&item.id) {
            out.push(Output::Duplicate {
                item: item.id,
                from: link,
            });
            return;
        }
        if now.saturating_sub(*origin_ms) > SEEN_WINDOW_MS {
            return;
        }
        self.remember(now, item.id);
        self.held.insert(item.id);
        out.push(Output::Stored {
            item: item.id,
            from: Some(link),
        });
        self.relay(&msg, Some(link), out);
    }
}

impl Replicator for Flood {
    type Wire = FloodWire;

    fn handle(&mut self, now: Millis, input: Input<FloodWire>, out: &mut Vec<Output<FloodWire>>) {
        match input {
            Input::LinkUp { link, peer, .. } => {
                self.links.insert(link, peer);
                out.push(Output::Send {
                    link,
                    msg: FloodWire::Handshake,
                });
                let count = u32::try_from(self.links.len()).unwrap_or(u32::MAX);
                out.push(Output::Send {
                    link,
                    msg: FloodWire::Peers { count },
                });
            }
            Input::LinkDown { link } => {
                self.links.remove(&link);
            }
            Input::Received { link, msg } => self.received(now, link, msg, out),
            Input::Publish(item) => {
                self.forget_older_than(now);
                self.remember(now, item.id);
                self.held.insert(item.id);
                out.push(Output::Stored {
                    item: item.id,
                    from: None,
                });
                let msg = FloodWire::Broadcast {
                    item,
                    originator: self.me,
                    origin_ms: now,
                };
                self.relay(&msg, None, out);
            }
            Input::Tick => {}
        }
    }

    fn deadline(&self) -> Option<Millis> {
        None
    }

    fn handshake(&self) -> Handshake {
        // Plain TCP (the mesh's encryption is optional and off by default); the whisper
        // handshake is an ordinary message.
        Handshake {
            round_trips: 1,
            bytes: 0,
        }
    }
}
