//! p2p.today's sync socket (`baselines.md` §3.3): a dict replicated over the mesh. Setting a
//! key applies it locally and floods `store [k, v]` (owner and time are the message's sender
//! and timestamp); a new connection gets a `store [k, v, owner, timestamp]` whisper for every
//! key (a full dump, ignored for keys the receiver already holds). With leasing (the
//! default) an update is accepted if the key is unset, comes from its current owner, the last
//! change is over an hour old, or both carry the same second and the new owner's id sorts
//! lower; without, any strictly newer timestamp wins. There is no other anti-entropy.
//!
//! Workload mapping: a dict update of field `f` by the author of feed `F` sets key
//! `profile:F:f`; a post sets a key of its own. Node ids compare as the peers' indices.
//! Because an owner's update is always accepted, an owner's older update that arrives after
//! a newer one (another path) wins: the table can go back in time. This is the protocol's
//! behaviour and is kept.

use std::collections::BTreeMap;

use super::mesh::{
    ENVELOPE, Exclusion, FRAME_OVERHEAD, Mesh, NODE_ID, PLAIN_TCP, SEEN_WINDOW_MS, TIMESTAMP,
    handshake_bytes, msgpack_bin, msgpack_str, peers_bytes,
};
use crate::seam::{
    Feed, Handshake, Input, Item, ItemId, LinkId, Millis, Output, PeerId, Replicator, Wire,
    WireKind,
};

/// How long a key's owner holds it against other writers.
pub const LEASE_MS: Millis = 3_600_000;

/// A key of the table: the author's feed and the field.
pub type Key = (Feed, u32);

/// The key an item sets.
#[must_use]
pub fn key_of(item: &Item) -> Key {
    (item.id.feed, item.field.unwrap_or(u32::MAX - item.id.seq))
}

fn decimal_digits(value: u32) -> u64 {
    u64::from(value.checked_ilog10().unwrap_or(0)) + 1
}

/// The key's text, `profile:F:f`, as msgpack.
fn key_bytes(key: Key) -> u64 {
    msgpack_str("profile::".len() as u64 + decimal_digits(key.0.0) + decimal_digits(key.1))
}

/// A sync socket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncWire {
    /// whisper/handshake.
    Handshake,
    /// whisper/peers with `count` entries.
    Peers {
        /// Entries in the list.
        count: u32,
    },
    /// broadcast/store `[k, v]`, flooded.
    Store {
        /// The value set.
        item: Item,
        /// Who set it (the message's sender).
        originator: PeerId,
        /// When (the message's timestamp).
        origin_ms: Millis,
    },
    /// whisper/store `[k, v, owner, timestamp]`: one key of a connect-time dump.
    Dump {
        /// The value held.
        item: Item,
        /// Its owner.
        owner: PeerId,
        /// When it was set.
        at_ms: Millis,
    },
}

impl Wire for SyncWire {
    fn bytes(&self) -> u64 {
        match self {
            SyncWire::Handshake => handshake_bytes(),
            SyncWire::Peers { count } => peers_bytes(*count),
            SyncWire::Store { item, .. } => {
                let value = msgpack_bin(u64::from(item.content_bytes));
                FRAME_OVERHEAD + ENVELOPE + key_bytes(key_of(item)) + value
            }
            SyncWire::Dump { item, .. } => {
                let value = msgpack_bin(u64::from(item.content_bytes));
                FRAME_OVERHEAD + ENVELOPE + key_bytes(key_of(item)) + value + NODE_ID + TIMESTAMP
            }
        }
    }

    fn kind(&self) -> WireKind {
        match self {
            SyncWire::Handshake | SyncWire::Peers { .. } => WireKind::Control,
            SyncWire::Store { .. } | SyncWire::Dump { .. } => WireKind::Payload,
        }
    }
}

/// A key's current value.
#[derive(Debug, Clone, Copy)]
struct Value {
    item: Item,
    owner: PeerId,
    at_ms: Millis,
}

/// One node's sync socket.
#[derive(Debug)]
pub struct SyncTable {
    mesh: Mesh,
    leasing: bool,
    table: BTreeMap<Key, Value>,
}

impl SyncTable {
    /// A node with an empty table; `leasing` as the protocol id says.
    #[must_use]
    pub fn new(me: PeerId, exclusion: Exclusion, leasing: bool) -> SyncTable {
        SyncTable {
            mesh: Mesh::new(me, exclusion),
            leasing,
            table: BTreeMap::new(),
        }
    }

    /// The item whose value a key holds.
    #[must_use]
    pub fn value(&self, key: Key) -> Option<ItemId> {
        self.table.get(&key).map(|value| value.item.id)
    }

    /// Keys held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Whether an update of `key` by `owner` at `at_ms` is accepted at `now`.
    #[must_use]
    pub fn accepts(&self, now: Millis, key: Key, owner: PeerId, at_ms: Millis) -> bool {
        let Some(current) = self.table.get(&key) else {
            return true;
        };
        if !self.leasing {
            return at_ms > current.at_ms;
        }
        current.owner == owner
            || now.saturating_sub(current.at_ms) > LEASE_MS
            || (at_ms / 1_000 == current.at_ms / 1_000 && owner < current.owner)
    }

    /// Applies an update if the rules accept it; reports it as stored or as a duplicate.
    fn apply(
        &mut self,
        now: Millis,
        value: Value,
        from: Option<LinkId>,
        out: &mut Vec<Output<SyncWire>>,
    ) {
        let key = key_of(&value.item);
        if self
            .table
            .get(&key)
            .is_some_and(|current| current.item.id == value.item.id)
        {
            if let Some(link) = from {
                out.push(Output::Duplicate {
                    item: value.item.id,
                    from: link,
                });
            }
            return;
        }
        if self.accepts(now, key, value.owner, value.at_ms) {
            self.table.insert(key, value);
            out.push(Output::Stored {
                item: value.item.id,
                from,
            });
        }
    }

    fn received(
        &mut self,
        now: Millis,
        link: LinkId,
        msg: SyncWire,
        out: &mut Vec<Output<SyncWire>>,
    ) {
        match msg {
            SyncWire::Handshake | SyncWire::Peers { .. } => {}
            SyncWire::Store {
                item,
                originator,
                origin_ms,
            } => {
                if !self.mesh.first_sight(now, item.id) {
                    out.push(Output::Duplicate {
                        item: item.id,
                        from: link,
                    });
                    return;
                }
                if now.saturating_sub(origin_ms) > SEEN_WINDOW_MS {
                    return;
                }
                let value = Value {
                    item,
                    owner: originator,
                    at_ms: origin_ms,
                };
                self.apply(now, value, Some(link), out);
                let relayed = SyncWire::Store {
                    item,
                    originator,
                    origin_ms,
                };
                let targets: Vec<LinkId> = self.mesh.relay_targets(originator, Some(link));
                for target in targets {
                    out.push(Output::Send {
                        link: target,
                        msg: relayed.clone(),
                    });
                }
            }
            SyncWire::Dump { item, owner, at_ms } => {
                if self.table.contains_key(&key_of(&item)) {
                    if self.value(key_of(&item)) == Some(item.id) {
                        out.push(Output::Duplicate {
                            item: item.id,
                            from: link,
                        });
                    }
                    return;
                }
                self.apply(now, Value { item, owner, at_ms }, Some(link), out);
            }
        }
    }
}

impl Replicator for SyncTable {
    type Wire = SyncWire;

    fn handle(&mut self, now: Millis, input: Input<SyncWire>, out: &mut Vec<Output<SyncWire>>) {
        match input {
            Input::LinkUp { link, peer, .. } => {
                let peers = |count| SyncWire::Peers { count };
                self.mesh
                    .link_up((link, peer), SyncWire::Handshake, peers, out);
                for value in self.table.values() {
                    let msg = SyncWire::Dump {
                        item: value.item,
                        owner: value.owner,
                        at_ms: value.at_ms,
                    };
                    out.push(Output::Send { link, msg });
                }
            }
            Input::LinkDown { link } => {
                self.mesh.link_down(link);
            }
            Input::Received { link, msg } => self.received(now, link, msg, out),
            Input::Publish(item) => {
                let value = Value {
                    item,
                    owner: self.mesh.me(),
                    at_ms: now,
                };
                if !self.accepts(now, key_of(&item), self.mesh.me(), now) {
                    return;
                }
                self.table.insert(key_of(&item), value);
                self.mesh.first_sight(now, item.id);
                out.push(Output::Stored {
                    item: item.id,
                    from: None,
                });
                let msg = SyncWire::Store {
                    item,
                    originator: self.mesh.me(),
                    origin_ms: now,
                };
                let targets: Vec<LinkId> = self.mesh.relay_targets(self.mesh.me(), None);
                for link in targets {
                    out.push(Output::Send {
                        link,
                        msg: msg.clone(),
                    });
                }
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

    fn stop(&mut self) {
        self.mesh.stop();
    }

    /// Every key with its value, owner and time (what a dump carries per key).
    fn stored_bytes(&self) -> u64 {
        self.table
            .iter()
            .map(|(key, value)| {
                key_bytes(*key)
                    + msgpack_bin(u64::from(value.item.content_bytes))
                    + NODE_ID
                    + TIMESTAMP
            })
            .sum()
    }
}
