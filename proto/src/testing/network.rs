//! An in-memory network of peers over [`crate::sync::Sessions`]: any number of peers, links
//! between them (one sync stream each), objects delivered one at a time in an order the
//! caller controls, commits applied as a node applies them.
//!
//! Each link has one FIFO queue per direction, as a stream has. [`Network::deliver`] hands
//! the next object of one direction to its receiver, applies the commits its session asks
//! for, and tells that peer's sessions what they added (with the link as origin), so races
//! between streams can be scripted object by object; [`Network::run`] delivers round-robin
//! until every queue is empty. Objects cross as JSON text, parsed by the receiver.
//!
//! Only for tests and benches (cargo feature `testing`).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;

use super::Peer;
use crate::goals::Goal;
use crate::ids::TangleId;
use crate::msg::Msg;
use crate::sync::{self, Config, Event, IndexedDb, Output, Sessions, Time};

/// Deliveries after which [`Network::run`] gives up (a livelock).
pub const DELIVERIES_MAX: u64 = 200_000;

/// A link between two peers: the dialer initiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

/// One direction of a link: objects travel toward `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Direction {
    /// The link.
    pub link: LinkId,
    /// The receiving peer.
    pub to: usize,
}

#[derive(Debug, Clone)]
struct Link {
    dialer: usize,
    responder: usize,
    /// Objects toward the dialer, then toward the responder.
    queues: [VecDeque<String>; 2],
}

impl Link {
    fn queue_mut(&mut self, to: usize) -> &mut VecDeque<String> {
        let index = usize::from(to != self.dialer);
        self.queues
            .get_mut(index)
            .expect("invariant: two directions")
    }

    fn other(&self, peer: usize) -> usize {
        if peer == self.dialer {
            self.responder
        } else {
            self.dialer
        }
    }
}

/// One peer of the network: its database and goals, and its sessions keyed by link.
#[derive(Debug, Clone)]
pub struct Node {
    /// The database, index and goals.
    pub peer: Peer,
    /// The sync sessions, one per link.
    pub sessions: Sessions<LinkId>,
}

/// Counters of what crossed the links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Objects sent, by phase (index 0 unused).
    pub objects_by_phase: [u64; 10],
    /// JSON bytes sent.
    pub bytes: u64,
    /// Msgs a commit added (deliveries).
    pub delivered: u64,
    /// Msgs received that the receiver already held.
    pub duplicates: u64,
    /// Msgs a commit refused.
    pub refused: u64,
    /// Objects delivered.
    pub deliveries: u64,
    /// Objects sent on each link, by phase.
    pub objects_by_link: BTreeMap<LinkId, [u64; 10]>,
}

impl Traffic {
    /// Every object sent.
    #[must_use]
    pub fn objects(&self) -> u64 {
        self.objects_by_phase.iter().sum()
    }

    /// Phase-1 objects: exchanges started.
    #[must_use]
    pub fn exchanges(&self) -> u64 {
        self.objects_by_phase.get(1).copied().unwrap_or(0)
    }

    /// Phase-1 objects sent on `link`, both ways.
    #[must_use]
    pub fn exchanges_on(&self, link: LinkId) -> u64 {
        self.objects_by_link
            .get(&link)
            .and_then(|phases| phases.get(1))
            .copied()
            .unwrap_or(0)
    }
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// No quiescence within [`DELIVERIES_MAX`] deliveries.
    #[error("no quiescence after {0} deliveries")]
    Livelock(u64),
    /// A session asked to close its stream.
    #[error("peer {peer} closed link {link:?}: {reason}")]
    Closed {
        /// The peer whose session closed.
        peer: usize,
        /// The link.
        link: LinkId,
        /// Why.
        reason: sync::CloseReason,
    },
}

/// Peers, links and queues. See the module docs.
#[derive(Debug, Clone)]
pub struct Network {
    config: Config,
    nodes: Vec<Node>,
    links: BTreeMap<LinkId, Link>,
    next_link: u64,
    now: Time,
    traffic: Traffic,
    /// Whether to check every peer's sessions' invariants after every event.
    pub check_invariants: bool,
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

impl Network {
    /// No peers.
    #[must_use]
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// No peers; every peer's sessions get `config`.
    #[must_use]
    pub fn with_config(config: Config) -> Self {
        Self {
            config,
            nodes: Vec::new(),
            links: BTreeMap::new(),
            next_link: 0,
            now: Time::default(),
            traffic: Traffic::default(),
            check_invariants: true,
        }
    }

    /// Adds a peer; returns its index.
    pub fn add_peer(&mut self, peer: Peer) -> usize {
        self.nodes.push(Node {
            peer,
            sessions: Sessions::new(self.config),
        });
        self.nodes.len() - 1
    }

    /// A peer.
    ///
    /// # Panics
    /// If there is no such peer.
    #[must_use]
    pub fn node(&self, peer: usize) -> &Node {
        self.nodes.get(peer).expect("a peer of this network")
    }

    /// A peer's database, index and goals, to inspect (changes are not told to its
    /// sessions: use [`Network::add_local`] and [`Network::set_goal`] for that).
    ///
    /// # Panics
    /// If there is no such peer.
    pub fn peer_mut(&mut self, peer: usize) -> &mut Peer {
        &mut self.node_mut(peer).peer
    }

    /// The links, with their dialer and responder.
    pub fn links(&self) -> impl Iterator<Item = (LinkId, usize, usize)> + '_ {
        self.links
            .iter()
            .map(|(link, state)| (*link, state.dialer, state.responder))
    }

    fn node_mut(&mut self, peer: usize) -> &mut Node {
        self.nodes.get_mut(peer).expect("a peer of this network")
    }

    /// What crossed the links so far.
    #[must_use]
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// The current time.
    #[must_use]
    pub fn now(&self) -> Time {
        self.now
    }

    /// `dialer` connects to `responder`; the dialer initiates.
    ///
    /// # Errors
    /// [`NetworkError::Closed`].
    pub fn connect(&mut self, dialer: usize, responder: usize) -> Result<LinkId, NetworkError> {
        let link = LinkId(self.next_link);
        self.next_link += 1;
        self.links.insert(
            link,
            Link {
                dialer,
                responder,
                queues: [VecDeque::new(), VecDeque::new()],
            },
        );
        let opened = |initiate| Event::Opened {
            key: link,
            initiate,
        };
        self.event(responder, opened(false))?;
        self.event(dialer, opened(true))?;
        Ok(link)
    }

    /// Cuts a link: both sessions close and what was in flight is lost.
    ///
    /// # Errors
    /// [`NetworkError::Closed`].
    pub fn disconnect(&mut self, link: LinkId) -> Result<(), NetworkError> {
        let Some(removed) = self.links.remove(&link) else {
            return Ok(());
        };
        self.event(removed.dialer, Event::Closed { key: link })?;
        self.event(removed.responder, Event::Closed { key: link })
    }

    /// Adds msgs to a peer as a local write (publishing, or a tool), in order, then tells
    /// its sessions. Returns how many were new.
    ///
    /// # Errors
    /// [`NetworkError::Closed`].
    ///
    /// # Panics
    /// If a msg is refused: tests add valid msgs.
    pub fn add_local(&mut self, peer: usize, msgs: &[Msg]) -> Result<usize, NetworkError> {
        let node = self.node_mut(peer);
        let mut added = Vec::new();
        for msg in msgs {
            if let Some(stored) = node.peer.add(msg.clone(), None).expect("a valid msg") {
                added.push(stored);
            }
        }
        let count = added.len();
        if count > 0 {
            self.event(
                peer,
                Event::LocalAdded {
                    msgs: added,
                    origin: None,
                },
            )?;
        }
        Ok(count)
    }

    /// Sets a goal on a peer and tells its sessions.
    ///
    /// # Errors
    /// [`NetworkError::Closed`].
    ///
    /// # Panics
    /// If the peer has too many goals.
    pub fn set_goal(
        &mut self,
        peer: usize,
        tangle: TangleId,
        goal: Goal,
    ) -> Result<(), NetworkError> {
        self.node_mut(peer)
            .peer
            .set_goal(tangle, goal)
            .expect("invariant: tests set few goals");
        self.event(peer, Event::GoalChanged { tangle })
    }

    /// Moves the clock forward and wakes the peers whose deadline passed.
    ///
    /// # Errors
    /// [`NetworkError::Closed`].
    pub fn advance(&mut self, milliseconds: u64) -> Result<(), NetworkError> {
        self.now = Time(self.now.0.saturating_add(milliseconds));
        for peer in 0..self.nodes.len() {
            let due = self
                .node(peer)
                .sessions
                .deadline()
                .is_some_and(|deadline| deadline <= self.now);
            if due {
                self.event(peer, Event::Tick)?;
            }
        }
        Ok(())
    }

    /// The directions with objects waiting, in link order.
    #[must_use]
    pub fn pending(&self) -> Vec<Direction> {
        let mut pending = Vec::new();
        for (link, state) in &self.links {
            for to in [state.dialer, state.responder] {
                let index = usize::from(to != state.dialer);
                if state
                    .queues
                    .get(index)
                    .is_some_and(|queue| !queue.is_empty())
                {
                    pending.push(Direction { link: *link, to });
                }
            }
        }
        pending
    }

    /// Delivers the next object travelling in `direction`, if any; returns whether there
    /// was one.
    ///
    /// # Errors
    /// [`NetworkError::Closed`].
    pub fn deliver(&mut self, direction: Direction) -> Result<bool, NetworkError> {
        let Some(json) = self
            .links
            .get_mut(&direction.link)
            .and_then(|link| link.queue_mut(direction.to).pop_front())
        else {
            return Ok(false);
        };
        self.traffic.deliveries += 1;
        let object: serde_json::Value =
            serde_json::from_str(&json).expect("invariant: sessions write valid JSON");
        self.event(
            direction.to,
            Event::Received {
                key: direction.link,
                object,
            },
        )?;
        Ok(true)
    }

    /// Delivers round-robin over the directions with objects waiting until none has any.
    ///
    /// # Errors
    /// [`NetworkError`].
    pub fn run(&mut self) -> Result<(), NetworkError> {
        loop {
            let pending = self.pending();
            if pending.is_empty() {
                return Ok(());
            }
            for direction in pending {
                if self.traffic.deliveries >= DELIVERIES_MAX {
                    return Err(NetworkError::Livelock(self.traffic.deliveries));
                }
                self.deliver(direction)?;
            }
        }
    }

    /// Runs one event through a peer's sessions and applies the outputs; commits feed back
    /// as [`Event::LocalAdded`] with their link as origin.
    fn event(&mut self, peer: usize, event: Event<LinkId>) -> Result<(), NetworkError> {
        let mut events = VecDeque::from([event]);
        while let Some(event) = events.pop_front() {
            let mut outputs = Vec::new();
            let now = self.now;
            let check = self.check_invariants;
            let node = self.node_mut(peer);
            let mut store = IndexedDb::new(&mut node.peer.db, &mut node.peer.index);
            let Ok(()) =
                node.sessions
                    .handle(now, event, &mut store, &node.peer.goals, &mut outputs);
            if check {
                node.sessions.check_invariants();
            }
            for (link, output) in outputs {
                events.extend(self.apply(peer, link, output)?);
            }
        }
        Ok(())
    }

    /// Applies one output of `peer`'s session on `link`; returns the events a commit feeds
    /// back: what it added, and whether it refused msgs.
    fn apply(
        &mut self,
        peer: usize,
        link: LinkId,
        output: Output,
    ) -> Result<Vec<Event<LinkId>>, NetworkError> {
        match output {
            Output::Send(message) => {
                let mut json = String::new();
                message.write_json(&mut json);
                if let Some(count) = self
                    .traffic
                    .objects_by_phase
                    .get_mut(usize::from(message.phase))
                {
                    *count += 1;
                }
                let on_link = self.traffic.objects_by_link.entry(link).or_default();
                if let Some(count) = on_link.get_mut(usize::from(message.phase)) {
                    *count += 1;
                }
                self.traffic.bytes += u64::try_from(json.len()).unwrap_or(u64::MAX);
                if let Some(state) = self.links.get_mut(&link) {
                    let to = state.other(peer);
                    state.queue_mut(to).push_back(json);
                }
                Ok(Vec::new())
            }
            Output::Commit { tangle, msgs } => {
                let node = self.node_mut(peer);
                let result: Result<_, Infallible> = sync::commit_with(
                    &mut node.peer.db,
                    &mut node.peer.index,
                    &tangle,
                    msgs,
                    &mut sync::AddShared,
                    &mut (),
                );
                let Ok(sync::Committed {
                    added,
                    duplicates,
                    refused,
                }) = result;
                self.traffic.duplicates += u64::try_from(duplicates).unwrap_or(u64::MAX);
                self.traffic.delivered += u64::try_from(added.len()).unwrap_or(u64::MAX);
                self.traffic.refused += u64::try_from(refused).unwrap_or(u64::MAX);
                let mut events = Vec::new();
                if !added.is_empty() {
                    events.push(Event::LocalAdded {
                        msgs: added,
                        origin: Some(link),
                    });
                }
                if refused > 0 {
                    events.push(Event::CommitRefused { key: link, tangle });
                }
                Ok(events)
            }
            Output::PruneNewest { tangle, count } => {
                let node = self.node_mut(peer);
                let Ok(_) = sync::prune_newest(&mut node.peer.db, &tangle, count);
                Ok(Vec::new())
            }
            Output::Close(reason) => Err(NetworkError::Closed { peer, link, reason }),
            Output::Finished { .. } | Output::Refused(_) => Ok(Vec::new()),
        }
    }
}
