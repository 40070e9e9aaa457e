//! A small deterministic network to drive machines in tests: static links with one fixed
//! latency, FIFO, lossless; an event queue ordered by (time, sequence number). It stands in
//! for the simulator's protocol tier where a test needs a spec's arithmetic, not a scenario.

use std::collections::{BTreeMap, BTreeSet};

use crate::seam::{
    Input, Item, ItemId, LinkId, Millis, Output, PeerId, Replicator, Wire, WireKind,
};

/// What happened on the network, counted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Messages sent, by kind.
    pub messages: BTreeMap<WireKind, u64>,
    /// Bytes sent, by kind (handshakes under [`WireKind::Control`]).
    pub bytes: BTreeMap<WireKind, u64>,
    /// Items each peer stored (published or received).
    pub stored: BTreeMap<PeerId, BTreeSet<ItemId>>,
    /// Items that arrived at a peer that already held them.
    pub duplicates: u64,
    /// When each (peer, item) was stored.
    pub stored_at: BTreeMap<(PeerId, ItemId), Millis>,
    /// The largest message sent, in bytes.
    pub largest_message: u64,
}

impl Tally {
    /// Messages of one kind.
    #[must_use]
    pub fn messages_of(&self, kind: WireKind) -> u64 {
        self.messages.get(&kind).copied().unwrap_or(0)
    }

    /// Whether `peer` holds `item`.
    #[must_use]
    pub fn holds(&self, peer: PeerId, item: ItemId) -> bool {
        self.stored
            .get(&peer)
            .is_some_and(|items| items.contains(&item))
    }
}

#[derive(Debug)]
enum Event<W> {
    Up {
        peer: PeerId,
        link: LinkId,
        remote: PeerId,
        initiator: bool,
    },
    Down {
        peer: PeerId,
        link: LinkId,
    },
    Deliver {
        peer: PeerId,
        link: LinkId,
        msg: W,
    },
    Publish {
        peer: PeerId,
        item: Item,
    },
    Wake {
        peer: PeerId,
        at: Millis,
    },
}

/// Peers on static links.
#[derive(Debug)]
pub struct StaticNet<R: Replicator> {
    peers: Vec<R>,
    latency_ms: Millis,
    /// Each end of a connection → the other end.
    ends: BTreeMap<(PeerId, LinkId), (PeerId, LinkId)>,
    queue: BTreeMap<(Millis, u64), Event<R::Wire>>,
    next_seq: u64,
    next_link: u64,
    armed: BTreeMap<PeerId, Millis>,
    now: Millis,
    /// What happened so far.
    pub tally: Tally,
}

impl<R: Replicator> StaticNet<R> {
    /// Peers `0..machines.len()`, not connected yet.
    #[must_use]
    pub fn new(machines: Vec<R>, latency_ms: Millis) -> StaticNet<R> {
        StaticNet {
            peers: machines,
            latency_ms,
            ends: BTreeMap::new(),
            queue: BTreeMap::new(),
            next_seq: 0,
            next_link: 0,
            armed: BTreeMap::new(),
            now: 0,
            tally: Tally::default(),
        }
    }

    /// A peer's machine.
    #[must_use]
    pub fn peer(&self, peer: PeerId) -> &R {
        &self.peers[peer.0 as usize]
    }

    /// A peer's machine, to drive it by hand (stop it, feed it an input outside the net).
    pub fn peer_mut(&mut self, peer: PeerId) -> &mut R {
        &mut self.peers[peer.0 as usize]
    }

    fn push(&mut self, at: Millis, event: Event<R::Wire>) {
        self.queue.insert((at, self.next_seq), event);
        self.next_seq += 1;
    }

    /// `dialer` connects to `listener` at `at`; both see the link once the protocol's
    /// handshake is over. Returns the dialer's and the listener's link ids.
    pub fn connect(&mut self, dialer: PeerId, listener: PeerId, at: Millis) -> (LinkId, LinkId) {
        let handshake = self.peer(dialer).handshake();
        let ours = LinkId(self.next_link);
        let theirs = LinkId(self.next_link + 1);
        self.next_link += 2;
        self.ends.insert((dialer, ours), (listener, theirs));
        self.ends.insert((listener, theirs), (dialer, ours));
        *self.tally.bytes.entry(WireKind::Control).or_default() += handshake.bytes;
        let up = at + u64::from(handshake.round_trips) * 2 * self.latency_ms;
        self.push(
            up,
            Event::Up {
                peer: dialer,
                link: ours,
                remote: listener,
                initiator: true,
            },
        );
        self.push(
            up,
            Event::Up {
                peer: listener,
                link: theirs,
                remote: dialer,
                initiator: false,
            },
        );
        (ours, theirs)
    }

    /// Closes the connection whose dialer end is `link` of `dialer`, at `at`: both ends learn
    /// it at once and what is in flight is lost.
    pub fn disconnect(&mut self, dialer: PeerId, link: LinkId, at: Millis) {
        if let Some(&(remote, remote_link)) = self.ends.get(&(dialer, link)) {
            self.push(at, Event::Down { peer: dialer, link });
            self.push(
                at,
                Event::Down {
                    peer: remote,
                    link: remote_link,
                },
            );
        }
    }

    /// `peer` publishes `item` at `at`.
    pub fn publish(&mut self, peer: PeerId, item: Item, at: Millis) {
        self.push(at, Event::Publish { peer, item });
    }

    /// Runs every event due up to and including `until`.
    pub fn run_until(&mut self, until: Millis) {
        while let Some(entry) = self.queue.first_entry() {
            let &(at, _) = entry.key();
            if at > until {
                break;
            }
            let event = entry.remove();
            self.now = at;
            self.step(event);
        }
        self.now = until;
    }

    fn step(&mut self, event: Event<R::Wire>) {
        let (peer, input) = match event {
            Event::Up {
                peer,
                link,
                remote,
                initiator,
            } => (
                peer,
                Input::LinkUp {
                    link,
                    peer: remote,
                    initiator,
                },
            ),
            Event::Down { peer, link } => {
                if self.ends.remove(&(peer, link)).is_none() {
                    return;
                }
                (peer, Input::LinkDown { link })
            }
            Event::Deliver { peer, link, msg } => {
                if !self.ends.contains_key(&(peer, link)) {
                    return;
                }
                (peer, Input::Received { link, msg })
            }
            Event::Publish { peer, item } => (peer, Input::Publish(item)),
            Event::Wake { peer, at } => {
                if self.armed.get(&peer) != Some(&at) {
                    return;
                }
                self.armed.remove(&peer);
                (peer, Input::Tick)
            }
        };
        let mut outputs = Vec::new();
        self.peers[peer.0 as usize].handle(self.now, input, &mut outputs);
        for output in outputs {
            self.apply(peer, output);
        }
        self.arm(peer);
    }

    fn arm(&mut self, peer: PeerId) {
        let Some(at) = self.peer(peer).deadline() else {
            self.armed.remove(&peer);
            return;
        };
        if self.armed.get(&peer) != Some(&at) {
            self.armed.insert(peer, at);
            self.push(at.max(self.now), Event::Wake { peer, at });
        }
    }

    fn count(&mut self, msg: &R::Wire) {
        *self.tally.messages.entry(msg.kind()).or_default() += 1;
        *self.tally.bytes.entry(msg.kind()).or_default() += msg.bytes();
        self.tally.largest_message = self.tally.largest_message.max(msg.bytes());
    }

    fn apply(&mut self, peer: PeerId, output: Output<R::Wire>) {
        match output {
            Output::Send { link, msg } => {
                let Some(&(remote, remote_link)) = self.ends.get(&(peer, link)) else {
                    return;
                };
                *self.tally.messages.entry(msg.kind()).or_default() += 1;
                *self.tally.bytes.entry(msg.kind()).or_default() += msg.bytes();
                let at = self.now + self.latency_ms;
                self.push(
                    at,
                    Event::Deliver {
                        peer: remote,
                        link: remote_link,
                        msg,
                    },
                );
            }
            Output::Broadcast { msg } => {
                // One transmission, heard on every link of the sender.
                self.count(&msg);
                let at = self.now + self.latency_ms;
                let hearers: Vec<(PeerId, LinkId)> = self
                    .ends
                    .range((peer, LinkId(0))..=(peer, LinkId(u64::MAX)))
                    .map(|(_, &other)| other)
                    .collect();
                for (remote, remote_link) in hearers {
                    let msg = msg.clone();
                    self.push(
                        at,
                        Event::Deliver {
                            peer: remote,
                            link: remote_link,
                            msg,
                        },
                    );
                }
            }
            Output::Stored { item, .. } => {
                self.tally.stored.entry(peer).or_default().insert(item);
                self.tally.stored_at.insert((peer, item), self.now);
            }
            Output::Duplicate { .. } => self.tally.duplicates += 1,
            // Only a machine that names its items or closes its own links emits these; the
            // baselines do not.
            Output::Close { .. } | Output::NewWrite | Output::Report(_) => {}
        }
    }
}
