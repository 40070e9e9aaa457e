//! Negentropy (range-based set reconciliation, protocol v1) as Nostr relays use it
//! (NIP-77 over a websocket): on every connection each side opens a reconciliation for the
//! feeds it replicates (`NEG-OPEN` with an `authors` filter), the two exchange `NEG-MSG`s
//! until the opener's answer would be all Skip, and the opener fetches what it lacks
//! (`REQ` by ids → `EVENT`s). The filter also stands as a live subscription: the other side
//! pushes each new record of those feeds as it stores it, except to the connection it came
//! from.
//!
//! Records map the workload's items as `baselines.md` §4.4 suggests: timestamp = the item's
//! sequence in its feed (a per-feed order key), id = SHA-256 of (feed, sequence).
//! Simplified: no TLS (plain `ws://`), one subscription id per side, the live `REQ` charged on
//! the `NEG-OPEN` that carries the same filter, no frame-size limit.

pub mod range;

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use self::range::{Id, Message, Record, initiate, reconcile};
use crate::seam::{
    Feed, Handshake, Input, Item, ItemId, LinkId, Millis, Output, Replicator, Wire, WireKind,
};

/// The websocket upgrade both sides exchange after TCP connects.
const UPGRADE_REQUEST: &str = "GET / HTTP/1.1\r\nHost: relay.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const UPGRADE_RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// A quoted hex id or pubkey in JSON, and the comma after it in a list.
const HEX_ID_QUOTED: u64 = 64 + 2;

/// An item's id in this mapping.
#[must_use]
pub fn record_id(item: ItemId) -> Id {
    let mut hasher = Sha256::new();
    hasher.update(item.feed.0.to_be_bytes());
    hasher.update(item.seq.to_be_bytes());
    hasher.finalize().into()
}

fn record_of(item: ItemId) -> Record {
    Record {
        timestamp: u64::from(item.seq),
        id: record_id(item),
    }
}

/// A NIP-77 / NIP-01 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegBody {
    /// `["NEG-OPEN", sub, {"authors": [...]}, hex]`: a reconciliation and live subscription.
    Open {
        /// The feeds asked for.
        feeds: BTreeSet<Feed>,
        /// The first negentropy message.
        message: Message,
    },
    /// `["NEG-MSG", sub, hex]` from the side that opened.
    Query(Message),
    /// `["NEG-MSG", sub, hex]` from the other side.
    Answer(Message),
    /// `["NEG-CLOSE", sub]`.
    Close,
    /// `["REQ", sub, {"ids": [...]}]`.
    Fetch(Vec<Id>),
    /// `["EVENT", sub, event]`.
    Event(Item),
}

/// A websocket frame carrying one message; `masked` for the dialer's (client's) frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegWire {
    /// Sent by the websocket client, whose frames carry a 4-byte mask.
    pub masked: bool,
    /// The message.
    pub body: NegBody,
}

fn hex_message_bytes(message: &Message) -> u64 {
    2 * message.encode().len() as u64 + 2
}

fn id_list_bytes(count: u64) -> u64 {
    2 + count * HEX_ID_QUOTED + count.saturating_sub(1)
}

/// A Nostr event's JSON with `content_bytes` of content.
fn event_bytes(content_bytes: u32) -> u64 {
    let skeleton =
        r#"{"id":,"pubkey":,"created_at":1700000000,"kind":1,"tags":[],"content":"","sig":""}"#;
    skeleton.len() as u64 + 2 * HEX_ID_QUOTED + 128 + u64::from(content_bytes)
}

impl NegBody {
    fn json_bytes(&self) -> u64 {
        let sub = r#""s""#.len() as u64;
        match self {
            NegBody::Open { feeds, message } => {
                let filter = r#"{"authors":}"#.len() as u64 + id_list_bytes(feeds.len() as u64);
                r#"["NEG-OPEN",,,]"#.len() as u64 + sub + filter + hex_message_bytes(message)
            }
            NegBody::Query(message) | NegBody::Answer(message) => {
                r#"["NEG-MSG",,]"#.len() as u64 + sub + hex_message_bytes(message)
            }
            NegBody::Close => r#"["NEG-CLOSE",]"#.len() as u64 + sub,
            NegBody::Fetch(ids) => {
                let filter = r#"{"ids":}"#.len() as u64 + id_list_bytes(ids.len() as u64);
                r#"["REQ",,]"#.len() as u64 + sub + filter
            }
            NegBody::Event(item) => {
                r#"["EVENT",,]"#.len() as u64 + sub + event_bytes(item.content_bytes)
            }
        }
    }
}

impl Wire for NegWire {
    fn bytes(&self) -> u64 {
        let payload = self.body.json_bytes();
        let header = match payload {
            0..=125 => 2,
            126..=0xffff => 4,
            _ => 10,
        };
        payload + header + if self.masked { 4 } else { 0 }
    }

    fn kind(&self) -> WireKind {
        match self.body {
            NegBody::Open { .. } | NegBody::Query(_) | NegBody::Answer(_) => WireKind::Summary,
            NegBody::Fetch(_) => WireKind::Summary,
            NegBody::Close => WireKind::Control,
            NegBody::Event(_) => WireKind::Payload,
        }
    }
}

#[derive(Debug)]
struct Connection {
    dialer: bool,
    /// Feeds the other side subscribed to (its NEG-OPEN's filter).
    subscribed: BTreeSet<Feed>,
}

/// One peer reconciling with negentropy.
#[derive(Debug)]
pub struct Negentropy {
    replicates: BTreeSet<Feed>,
    items: BTreeMap<Id, Item>,
    connections: BTreeMap<LinkId, Connection>,
}

impl Negentropy {
    /// A peer replicating `replicates` (its own feed included).
    #[must_use]
    pub fn new(replicates: BTreeSet<Feed>) -> Negentropy {
        Negentropy {
            replicates,
            items: BTreeMap::new(),
            connections: BTreeMap::new(),
        }
    }

    /// Whether this peer holds `item`.
    #[must_use]
    pub fn holds(&self, item: ItemId) -> bool {
        self.items.contains_key(&record_id(item))
    }

    /// Items held.
    #[must_use]
    pub fn held(&self) -> usize {
        self.items.len()
    }

    fn records(&self, feeds: &BTreeSet<Feed>) -> Vec<Record> {
        let mut records: Vec<Record> = self
            .items
            .values()
            .filter(|item| feeds.contains(&item.id.feed))
            .map(|item| record_of(item.id))
            .collect();
        records.sort_unstable();
        records
    }

    fn send(&self, link: LinkId, body: NegBody, out: &mut Vec<Output<NegWire>>) {
        let masked = self.connections.get(&link).is_some_and(|c| c.dialer);
        out.push(Output::Send {
            link,
            msg: NegWire { masked, body },
        });
    }

    /// Stores a new item and pushes it to every subscription that wants it.
    fn store(&mut self, item: Item, from: Option<LinkId>, out: &mut Vec<Output<NegWire>>) {
        let id = record_id(item.id);
        if self.items.contains_key(&id) {
            if let Some(link) = from {
                out.push(Output::Duplicate {
                    item: item.id,
                    from: link,
                });
            }
            return;
        }
        self.items.insert(id, item);
        out.push(Output::Stored {
            item: item.id,
            from,
        });
        let live: Vec<LinkId> = self
            .connections
            .iter()
            .filter(|&(&link, c)| c.subscribed.contains(&item.id.feed) && Some(link) != from)
            .map(|(&link, _)| link)
            .collect();
        for link in live {
            self.send(link, NegBody::Event(item), out);
        }
    }

    fn received(&mut self, link: LinkId, body: NegBody, out: &mut Vec<Output<NegWire>>) {
        match body {
            NegBody::Open { feeds, message } => {
                let records = self.records(&feeds);
                if let Some(connection) = self.connections.get_mut(&link) {
                    connection.subscribed = feeds;
                }
                if let Some(reply) = reconcile(&records, &message, false).reply {
                    self.send(link, NegBody::Answer(reply), out);
                }
            }
            NegBody::Query(message) => {
                let Some(connection) = self.connections.get(&link) else {
                    return;
                };
                let records = self.records(&connection.subscribed);
                if let Some(reply) = reconcile(&records, &message, false).reply {
                    self.send(link, NegBody::Answer(reply), out);
                }
            }
            NegBody::Answer(message) => {
                let step = reconcile(&self.records(&self.replicates), &message, true);
                if !step.need.is_empty() {
                    self.send(link, NegBody::Fetch(step.need), out);
                }
                match step.reply {
                    Some(reply) => self.send(link, NegBody::Query(reply), out),
                    None => self.send(link, NegBody::Close, out),
                }
            }
            NegBody::Close => {}
            NegBody::Fetch(ids) => {
                for id in ids {
                    if let Some(item) = self.items.get(&id).copied() {
                        self.send(link, NegBody::Event(item), out);
                    }
                }
            }
            NegBody::Event(item) => {
                if self.replicates.contains(&item.id.feed) {
                    self.store(item, Some(link), out);
                }
            }
        }
    }
}

impl Replicator for Negentropy {
    type Wire = NegWire;

    fn handle(&mut self, _now: Millis, input: Input<NegWire>, out: &mut Vec<Output<NegWire>>) {
        match input {
            Input::LinkUp {
                link, initiator, ..
            } => {
                let connection = Connection {
                    dialer: initiator,
                    subscribed: BTreeSet::new(),
                };
                self.connections.insert(link, connection);
                let message = initiate(&self.records(&self.replicates));
                let feeds = self.replicates.clone();
                self.send(link, NegBody::Open { feeds, message }, out);
            }
            Input::LinkDown { link } => {
                self.connections.remove(&link);
            }
            Input::Received { link, msg } => {
                if self.connections.contains_key(&link) {
                    self.received(link, msg.body, out);
                }
            }
            Input::Publish(item) => self.store(item, None, out),
            Input::Tick => {}
        }
    }

    fn deadline(&self) -> Option<Millis> {
        None
    }

    fn handshake(&self) -> Handshake {
        Handshake {
            round_trips: 2,
            bytes: (UPGRADE_REQUEST.len() + UPGRADE_RESPONSE.len()) as u64,
            acceptor_bytes: 0,
        }
    }

    /// The connections' subscriptions end with the process; the records stay.
    fn stop(&mut self) {
        self.connections.clear();
    }

    /// Every record as its event's JSON (what a relay stores).
    fn stored_bytes(&self) -> u64 {
        self.items
            .values()
            .map(|item| event_bytes(item.content_bytes))
            .sum()
    }
}
