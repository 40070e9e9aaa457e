//! The recorder: turns what nodes report ([`NodeEvent`]s) and what the runner does (faults,
//! crashes, churn) into trace [`Event`]s stamped with simulated time, buffered per turmoil
//! step and handed to the collector in time order.
//!
//! Hosts run one at a time on the runner's thread, so the buffer's order is deterministic;
//! within a step, hosts' clocks run ahead independently (each host's runtime advances through
//! the step on its own), so a step's events are sorted (stably) by time before they are
//! recorded.
//!
//! Mapping rules (docs/sim-trace.md has the trace's side):
//! - remotes are mapped to peer indices by public key (SHSE) or by host name (plaintext);
//!   events about a remote that maps to no peer are dropped;
//! - `connect`/`disconnect` are recorded from the dialer's side only (one line per
//!   connection): the acceptor's view of the same connection is ignored, and a crashed or
//!   stopped dialer's open connections are closed by the runner with reason `crash`/`offline`;
//! - `sync_round` likewise comes from the initiator (the dialer); its round trips are
//!   half the sync objects exchanged for the tangle since the last round on that connection,
//!   rounded up (each phase is one object, phases 8/9 may be split);
//! - `store_size` is sampled: at most one per peer per [`STORE_SIZE_SAMPLE_MS`], plus every
//!   peer's final size at the end of the run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use node::peer::{DisconnectReason, NodeEvent, Remote, Traffic};
use proto::ids::{MsgId, PubKey, TangleId};

use sim::plan::PeerIdx;
use sim::trace::{Event, EventKind, WireKind};

/// Shortest simulated time between two recorded `store_size` events of one peer.
pub const STORE_SIZE_SAMPLE_MS: u64 = 1_000;

/// The current simulated time in whole milliseconds, on either substrate (0 outside a run).
#[must_use]
pub fn now_ms() -> u64 {
    if let Some(elapsed) = turmoil::sim_elapsed() {
        return u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    }
    super::clock::elapsed_ms().unwrap_or(0)
}

/// A set/dict update whose supersedes the runner chose, waiting for the node to report it
/// published (the report carries no data, so the runner attaches them).
#[derive(Debug, Clone)]
pub struct PendingSupersedes {
    /// The feed it goes to.
    pub tangle: TangleId,
    /// IDs it supersedes.
    pub supersedes: Vec<String>,
}

/// Static facts the recorder maps with.
#[derive(Debug, Default)]
pub struct Directory {
    /// Public key → peer.
    pub keys: BTreeMap<PubKey, PeerIdx>,
    /// Host name → peer.
    pub names: BTreeMap<String, PeerIdx>,
    /// Tangle ID → (author, feed name as in goal rules), for every feed the workload writes.
    pub feeds: BTreeMap<TangleId, (PeerIdx, String)>,
}

impl Directory {
    fn peer_of(&self, remote: &Remote) -> Option<PeerIdx> {
        match remote {
            Remote::Key(key) => self.keys.get(key).copied(),
            Remote::Address(address) => {
                let host = address
                    .rsplit_once(':')
                    .map_or(address.as_str(), |(h, _)| h);
                self.names.get(host).copied()
            }
        }
    }
}

/// A tangle as the recorder's sync counts name it (see `State::tangle_numbers`).
type TangleNumber = u32;

#[derive(Debug, Default)]
struct State {
    buffer: Vec<Event>,
    /// (dialer, acceptor) → connections open as the dialer saw them.
    open: BTreeMap<(PeerIdx, PeerIdx), u32>,
    /// (initiator, responder, tangle number) → sync objects the initiator had counted at the
    /// last `sync_round` (counts restart with each connection). One entry per connected pair
    /// and tangle: at swarm-100's scale hundreds of thousands, so the tangle is a number.
    sync_objects: BTreeMap<(PeerIdx, PeerIdx, TangleNumber), u64>,
    /// A number per tangle named by a `sync_round`, in order of first appearance.
    tangle_numbers: BTreeMap<TangleId, TangleNumber>,
    /// Encoded size of every published msg (for GC and duplicate bytes).
    msg_bytes: BTreeMap<MsgId, u64>,
    /// Per peer: when its last `store_size` was recorded.
    store_size_at: BTreeMap<PeerIdx, u64>,
    /// Per peer: the supersedes of the update it is publishing.
    pending: BTreeMap<PeerIdx, PendingSupersedes>,
    /// Peers whose events are dropped (crashed or offline: their tasks are gone, but a
    /// stray callback must not be recorded).
    down: BTreeSet<PeerIdx>,
}

/// The recorder, shared (behind an `Arc`) by the runner and every host's event sink.
#[derive(Debug)]
pub struct Recorder {
    directory: Directory,
    state: Mutex<State>,
}

fn wire_kind(traffic: Traffic) -> WireKind {
    match traffic {
        Traffic::Msgs => WireKind::Msgs,
        Traffic::SyncControl => WireKind::SyncControl,
        Traffic::Bloom => WireKind::Bloom,
        Traffic::Handshake => WireKind::Handshake,
        Traffic::Keepalive => WireKind::Keepalive,
        // Simulated peers serve no app methods and make no app calls; were one to, its
        // bytes are control bytes like the sync stream's.
        Traffic::App => WireKind::SyncControl,
    }
}

/// The trace's name for why a connection ended.
#[must_use]
pub fn disconnect_reason(reason: &DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::RemoteClosed => "closed",
        DisconnectReason::Idle => "timeout",
        DisconnectReason::SlowReader => "slow-reader",
        DisconnectReason::Handshake(_) | DisconnectReason::Rpc(_) | DisconnectReason::Sync(_) => {
            "protocol"
        }
        DisconnectReason::Shutdown => "shutdown",
        DisconnectReason::Io(_) => "io",
        DisconnectReason::Admission(_) => "admission",
    }
}

impl Recorder {
    /// A recorder mapping with `directory`.
    #[must_use]
    pub fn new(directory: Directory) -> Recorder {
        Recorder {
            directory,
            state: Mutex::new(State::default()),
        }
    }

    /// Locks the state. Hosts run one at a time on one thread, so this never waits; a
    /// panic while it was held (a bug) poisons it, and recording goes on with what is there.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Buffers an event of the runner's own at `t`.
    pub fn push(&self, t: u64, kind: EventKind) {
        self.lock().buffer.push(Event { t, kind });
    }

    /// Buffers a note; `error` marks a runner bug (a safety violation).
    pub fn note(&self, t: u64, text: String, error: bool) {
        self.push(t, EventKind::Note { text, error });
    }

    /// The buffered events, sorted by time (stable: equal times keep their order).
    pub fn drain(&self) -> Vec<Event> {
        let mut events = std::mem::take(&mut self.lock().buffer);
        events.sort_by_key(|event| event.t);
        events
    }

    /// Registers the supersedes of the update `peer` is about to publish.
    pub fn expect_supersedes(&self, peer: PeerIdx, pending: PendingSupersedes) {
        self.lock().pending.insert(peer, pending);
    }

    /// Forgets a registration whose publish failed.
    pub fn forget_supersedes(&self, peer: PeerIdx) {
        self.lock().pending.remove(&peer);
    }

    /// `peer` publishes its account's first msg (the node creates it at its first start and
    /// reports nothing about it).
    pub fn account_created(&self, t: u64, peer: PeerIdx, account: MsgId, bytes: u64) {
        let mut state = self.lock();
        state.msg_bytes.insert(account, bytes);
        state.buffer.push(Event {
            t,
            kind: EventKind::Publish {
                peer,
                msg: account.to_string(),
                tangle: account.to_string(),
                feed: "account".to_owned(),
                bytes,
                supersedes: Vec::new(),
            },
        });
    }

    /// `peer` goes down at `t` (crash or churn): its open outbound connections end with
    /// `reason`, and its events are ignored until [`Recorder::peer_up`].
    pub fn peer_down(&self, t: u64, peer: PeerIdx, reason: &str) {
        let mut state = self.lock();
        state.down.insert(peer);
        let closed: Vec<((PeerIdx, PeerIdx), u32)> = state
            .open
            .range((peer, 0)..=(peer, PeerIdx::MAX))
            .map(|(pair, count)| (*pair, *count))
            .collect();
        for ((a, b), count) in closed {
            state.open.remove(&(a, b));
            for _ in 0..count {
                state.buffer.push(Event {
                    t,
                    kind: EventKind::Disconnect {
                        a,
                        b,
                        reason: reason.to_owned(),
                    },
                });
            }
        }
        state.pending.remove(&peer);
    }

    /// `peer` runs again.
    pub fn peer_up(&self, peer: PeerIdx) {
        self.lock().down.remove(&peer);
    }

    /// Records `store_size` for `peer` unconditionally (the end of the run).
    pub fn final_store_size(&self, t: u64, peer: PeerIdx, bytes: u64) {
        self.push(t, EventKind::StoreSize { peer, bytes });
    }

    /// Translates one event reported by `peer`'s node at `t`.
    pub fn node_event(&self, t: u64, peer: PeerIdx, event: NodeEvent) {
        let directory = &self.directory;
        let mut state = self.lock();
        if state.down.contains(&peer) {
            return;
        }
        let kind = match event {
            NodeEvent::Published { msg, tangle, bytes } => {
                Some(state.published(directory, peer, msg, tangle, bytes))
            }
            NodeEvent::Stored { msg, tangle, from } => Some(EventKind::Store {
                peer,
                msg: msg.to_string(),
                tangle: tangle.to_string(),
                from: directory.peer_of(&from),
            }),
            NodeEvent::NotStored {
                msg,
                from,
                duplicate: true,
                ..
            } => Some(EventKind::Duplicate {
                peer,
                msg: msg.to_string(),
                from: directory.peer_of(&from),
                bytes: state.msg_bytes.get(&msg).copied().unwrap_or(0),
            }),
            NodeEvent::NotStored { msg, reason, .. } => Some(EventKind::Reject {
                peer,
                msg: msg.to_string(),
                reason,
            }),
            NodeEvent::Sent { to, traffic, bytes } => {
                directory.peer_of(&to).map(|to| EventKind::Send {
                    from: peer,
                    to,
                    kind: wire_kind(traffic),
                    bytes,
                })
            }
            NodeEvent::SyncFinished {
                remote,
                tangle,
                objects,
            } => directory
                .peer_of(&remote)
                .and_then(|remote| state.sync_finished(peer, remote, tangle, objects)),
            NodeEvent::Gc { msg, action } => Some(EventKind::Gc {
                peer,
                action,
                bytes: state.msg_bytes.get(&msg).copied().unwrap_or(0),
                msg: Some(msg.to_string()),
            }),
            NodeEvent::StoreSize { bytes } => state.store_size(t, peer, bytes),
            other => state.connection_event(directory, peer, other),
        };
        if let Some(kind) = kind {
            state.buffer.push(Event { t, kind });
        }
    }
}

impl State {
    /// A connection made, failed or ended, as the dialer saw it (the acceptor's view of the
    /// same connection is not recorded); `None` for anything else.
    fn connection_event(
        &mut self,
        directory: &Directory,
        peer: PeerIdx,
        event: NodeEvent,
    ) -> Option<EventKind> {
        match event {
            NodeEvent::Connected {
                remote,
                outbound: true,
            } => directory
                .peer_of(&remote)
                .map(|remote| self.connected(peer, remote)),
            NodeEvent::Connected { .. } | NodeEvent::Refused { .. } => None,
            NodeEvent::DialFailed { address, reason } => directory
                .peer_of(&Remote::Address(address))
                .map(|remote| EventKind::DialFailed {
                    peer,
                    remote,
                    reason,
                }),
            NodeEvent::Disconnected { remote, reason } => directory
                .peer_of(&remote)
                .and_then(|remote| self.disconnected(peer, remote, &reason)),
            _ => None,
        }
    }

    /// A msg the node published: its feed by name, and the supersedes the runner registered
    /// for it.
    fn published(
        &mut self,
        directory: &Directory,
        peer: PeerIdx,
        msg: MsgId,
        tangle: TangleId,
        bytes: u64,
    ) -> EventKind {
        self.msg_bytes.insert(msg, bytes);
        let feed = if msg == tangle {
            "moot".to_owned()
        } else {
            directory
                .feeds
                .get(&tangle)
                .map_or_else(|| "?".to_owned(), |(_, feed)| feed.clone())
        };
        let supersedes = match self.pending.get(&peer) {
            Some(pending) if pending.tangle == tangle && msg != tangle => self
                .pending
                .remove(&peer)
                .map(|pending| pending.supersedes)
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        EventKind::Publish {
            peer,
            msg: msg.to_string(),
            tangle: tangle.to_string(),
            feed,
            bytes,
            supersedes,
        }
    }

    /// A tangle sync the initiator finished: round trips since its last round on this
    /// connection. `None` for the responder's view of the round.
    fn sync_finished(
        &mut self,
        peer: PeerIdx,
        remote: PeerIdx,
        tangle: TangleId,
        objects: u64,
    ) -> Option<EventKind> {
        if !self.open.contains_key(&(peer, remote)) {
            return None;
        }
        let next = TangleNumber::try_from(self.tangle_numbers.len()).unwrap_or(TangleNumber::MAX);
        let number = *self.tangle_numbers.entry(tangle).or_insert(next);
        let last = self
            .sync_objects
            .insert((peer, remote, number), objects)
            .filter(|last| *last <= objects)
            .unwrap_or(0);
        let round_trips = u32::try_from((objects - last).div_ceil(2))
            .unwrap_or(u32::MAX)
            .max(1);
        Some(EventKind::SyncRound {
            peer,
            remote,
            tangle: tangle.to_string(),
            round_trips,
        })
    }

    /// A store size, unless one was recorded for `peer` less than
    /// [`STORE_SIZE_SAMPLE_MS`] ago.
    fn store_size(&mut self, t: u64, peer: PeerIdx, bytes: u64) -> Option<EventKind> {
        if self
            .store_size_at
            .get(&peer)
            .is_some_and(|last| t < last + STORE_SIZE_SAMPLE_MS)
        {
            return None;
        }
        self.store_size_at.insert(peer, t);
        Some(EventKind::StoreSize { peer, bytes })
    }

    /// A connection `peer` dialed; its sync counts start from zero.
    fn connected(&mut self, peer: PeerIdx, remote: PeerIdx) -> EventKind {
        *self.open.entry((peer, remote)).or_default() += 1;
        let stale: Vec<(PeerIdx, PeerIdx, TangleNumber)> = self
            .sync_objects
            .range((peer, remote, 0)..=(peer, remote, TangleNumber::MAX))
            .map(|(key, _)| *key)
            .collect();
        for key in stale {
            self.sync_objects.remove(&key);
        }
        EventKind::Connect { a: peer, b: remote }
    }

    /// The end of a connection `peer` dialed; `None` for one it did not (the acceptor).
    fn disconnected(
        &mut self,
        peer: PeerIdx,
        remote: PeerIdx,
        reason: &DisconnectReason,
    ) -> Option<EventKind> {
        let count = self.open.get_mut(&(peer, remote))?;
        *count -= 1;
        if *count == 0 {
            self.open.remove(&(peer, remote));
        }
        Some(EventKind::Disconnect {
            a: peer,
            b: remote,
            reason: disconnect_reason(reason).to_owned(),
        })
    }
}
