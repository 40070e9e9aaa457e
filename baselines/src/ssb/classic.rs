//! SSB's classic replication (`baselines.md` §1.3, ssb-replicate's `legacy.js`): on every
//! connection, a peer asks for every feed it replicates with
//! `createHistoryStream({id, seq: latest + 1, live: true})`, and serves every such request it
//! receives: what it holds from that sequence on, then each new message of the feed as it
//! is appended. Nothing is remembered between connections, and a feed served by several
//! peers arrives from each of them.
//!
//! Simplified: both ends ask at once when the link is up (the reference asks for the peer's
//! own feed first and the rest once the peer asks back: one round trip later); messages are
//! sent with `keys: false`, one muxrpc frame each.

use std::collections::{BTreeMap, BTreeSet};

use super::log::{Append, Log};
use super::wire::{
    FEED_ID_QUOTED, SECRET_HANDSHAKE, decimal_digits, framed, message_bytes, request_body_bytes,
};
use crate::seam::{
    Feed, Handshake, Input, Item, LinkId, Millis, Output, Replicator, Wire, WireKind,
};

/// A classic replication message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassicWire {
    /// `createHistoryStream({id: feed, seq, live: true, keys: false})`.
    Request {
        /// The feed asked for.
        feed: Feed,
        /// The first sequence wanted.
        seq: u32,
    },
    /// One message of a history stream.
    Message(Item),
}

impl Wire for ClassicWire {
    fn bytes(&self) -> u64 {
        match self {
            ClassicWire::Request { seq, .. } => {
                // `{"id":"@….ed25519","seq":N,"live":true,"keys":false}`
                let args = r#"{"id":,"seq":,"live":true,"keys":false}"#.len() as u64
                    + FEED_ID_QUOTED
                    + decimal_digits(u64::from(*seq));
                framed(request_body_bytes(&["createHistoryStream"], "source", args))
            }
            ClassicWire::Message(item) => framed(message_bytes(item)),
        }
    }

    fn kind(&self) -> WireKind {
        match self {
            ClassicWire::Request { .. } => WireKind::Summary,
            ClassicWire::Message(_) => WireKind::Payload,
        }
    }
}

/// One connection's live streams this peer serves: feed → the next sequence to send.
type Streams = BTreeMap<Feed, u32>;

/// One SSB peer replicating with `createHistoryStream`.
#[derive(Debug)]
pub struct Classic {
    replicates: BTreeSet<Feed>,
    log: Log,
    serving: BTreeMap<LinkId, Streams>,
}

impl Classic {
    /// A peer that replicates `replicates` (its follows within its hops, and its own feed).
    #[must_use]
    pub fn new(replicates: BTreeSet<Feed>) -> Classic {
        Classic {
            replicates,
            log: Log::default(),
            serving: BTreeMap::new(),
        }
    }

    /// The latest sequence held of `feed`.
    #[must_use]
    pub fn latest(&self, feed: Feed) -> u32 {
        self.log.latest(feed)
    }

    fn serve(&mut self, link: LinkId, feed: Feed, from: u32, out: &mut Vec<Output<ClassicWire>>) {
        let mut next = from.max(1);
        while let Some(item) = self.log.get(feed, next) {
            out.push(Output::Send {
                link,
                msg: ClassicWire::Message(*item),
            });
            next += 1;
        }
        self.serving.entry(link).or_default().insert(feed, next);
    }

    /// Sends a newly appended item on every live stream waiting for exactly it.
    fn fan_out(&mut self, item: Item, out: &mut Vec<Output<ClassicWire>>) {
        for (&link, streams) in &mut self.serving {
            if let Some(next) = streams.get_mut(&item.id.feed)
                && *next == item.id.seq
            {
                out.push(Output::Send {
                    link,
                    msg: ClassicWire::Message(item),
                });
                *next += 1;
            }
        }
    }

    fn received(&mut self, link: LinkId, msg: ClassicWire, out: &mut Vec<Output<ClassicWire>>) {
        match msg {
            ClassicWire::Request { feed, seq } => self.serve(link, feed, seq, out),
            ClassicWire::Message(item) => {
                if !self.replicates.contains(&item.id.feed) {
                    return;
                }
                match self.log.append(item) {
                    Append::Appended => {
                        out.push(Output::Stored {
                            item: item.id,
                            from: Some(link),
                        });
                        self.fan_out(item, out);
                    }
                    Append::Held => out.push(Output::Duplicate {
                        item: item.id,
                        from: link,
                    }),
                    Append::Gap => {}
                }
            }
        }
    }
}

impl Replicator for Classic {
    type Wire = ClassicWire;

    fn handle(
        &mut self,
        _now: Millis,
        input: Input<ClassicWire>,
        out: &mut Vec<Output<ClassicWire>>,
    ) {
        match input {
            Input::LinkUp { link, .. } => {
                self.serving.insert(link, Streams::new());
                for &feed in &self.replicates {
                    let seq = self.log.latest(feed) + 1;
                    out.push(Output::Send {
                        link,
                        msg: ClassicWire::Request { feed, seq },
                    });
                }
            }
            Input::LinkDown { link } => {
                self.serving.remove(&link);
            }
            Input::Received { link, msg } => {
                if self.serving.contains_key(&link) {
                    self.received(link, msg, out);
                }
            }
            Input::Publish(item) => {
                if self.log.append(item) == Append::Appended {
                    out.push(Output::Stored {
                        item: item.id,
                        from: None,
                    });
                    self.fan_out(item, out);
                }
            }
            Input::Tick => {}
        }
    }

    fn deadline(&self) -> Option<Millis> {
        None
    }

    fn handshake(&self) -> Handshake {
        SECRET_HANDSHAKE
    }

    fn stored_bytes(&self) -> u64 {
        self.log.bytes()
    }

    /// The live streams end with the process; the log stays.
    fn stop(&mut self) {
        self.serving.clear();
    }
}
