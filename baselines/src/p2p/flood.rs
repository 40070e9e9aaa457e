//! p2p.today's mesh socket (`baselines.md` §3.2): every broadcast is relayed to every
//! connected peer but one, and a peer drops what it has seen in the last 60 s.
//!
//! Modelled: the connect-time whisper handshake and peers list, the broadcast encoding
//! (4-byte length, 32-byte SHA-256 checksum id, msgpack list), the 60 s "waterfall" of seen
//! ids and the 60 s maximum age (clocks are assumed synchronised), and which peer a relay
//! skips ([`Exclusion`]; the 0.6 code skips the broadcast's originator, the spec allows the
//! previous hop). Not modelled: compression and renegotiation, ping/pong, peer-request
//! routing, and dialing the listed peers (the engine's topology decides who connects).

use std::collections::BTreeSet;

use super::mesh::{
    ENVELOPE, Exclusion, FRAME_OVERHEAD, Mesh, PLAIN_TCP, SEEN_WINDOW_MS, handshake_bytes,
    msgpack_bin, peers_bytes,
};
use crate::seam::{
    Handshake, Input, Item, ItemId, LinkId, Millis, Output, PeerId, Replicator, Wire, WireKind,
};

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

impl Wire for FloodWire {
    fn bytes(&self) -> u64 {
        match self {
            FloodWire::Handshake => handshake_bytes(),
            FloodWire::Peers { count } => peers_bytes(*count),
            FloodWire::Broadcast { item, .. } => {
                FRAME_OVERHEAD + ENVELOPE + msgpack_bin(u64::from(item.content_bytes))
            }
        }
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
    mesh: Mesh,
    /// Everything this peer has received or published (its application's store).
    held: BTreeSet<ItemId>,
    /// The held broadcasts' bodies (envelope and content), summed as they are stored.
    stored_bytes: u64,
}

impl Flood {
    /// A peer with an empty routing table.
    #[must_use]
    pub fn new(me: PeerId, exclusion: Exclusion) -> Flood {
        Flood {
            mesh: Mesh::new(me, exclusion),
            held: BTreeSet::new(),
            stored_bytes: 0,
        }
    }

    /// Items this peer holds.
    #[must_use]
    pub fn held(&self) -> &BTreeSet<ItemId> {
        &self.held
    }

    fn hold(&mut self, item: &Item) {
        self.held.insert(item.id);
        self.stored_bytes += ENVELOPE + msgpack_bin(u64::from(item.content_bytes));
    }

    fn relay(&self, msg: &FloodWire, from: Option<LinkId>, out: &mut Vec<Output<FloodWire>>) {
        let FloodWire::Broadcast { originator, .. } = msg else {
            return;
        };
        for link in self.mesh.relay_targets(*originator, from) {
            out.push(Output::Send {
                link,
                msg: msg.clone(),
            });
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
        if self.held.contains(&item.id) || !self.mesh.first_sight(now, item.id) {
            out.push(Output::Duplicate {
                item: item.id,
                from: link,
            });
            return;
        }
        if now.saturating_sub(*origin_ms) > SEEN_WINDOW_MS {
            return;
        }
        self.hold(item);
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
                let peers = |count| FloodWire::Peers { count };
                self.mesh
                    .link_up((link, peer), FloodWire::Handshake, peers, out);
            }
            Input::LinkDown { link } => {
                self.mesh.link_down(link);
            }
            Input::Received { link, msg } => self.received(now, link, msg, out),
            Input::Publish(item) => {
                self.mesh.first_sight(now, item.id);
                self.hold(&item);
                out.push(Output::Stored {
                    item: item.id,
                    from: None,
                });
                let msg = FloodWire::Broadcast {
                    item,
                    originator: self.mesh.me(),
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
        PLAIN_TCP
    }

    fn stored_bytes(&self) -> u64 {
        self.stored_bytes
    }

    fn stop(&mut self) {
        self.mesh.stop();
    }
}
