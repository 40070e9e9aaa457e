//! An in-memory two-peer harness over [`crate::sync::Session`]: two databases, two sessions,
//! one stream between them, run to quiescence while counting what crosses the wire.
//!
//! Delivery is in steps: each step, a side takes every object that reached it (as one read
//! from a socket would), handles them in order applying commits and prunes as it goes, then
//! tells its session, in one [`Input::LocalAdded`] batch, which msgs those commits added
//! (a JS peer's commits complete after the objects of one read are handled, too). Objects
//! cross as JSON text, so the receiver parses what the sender wrote and the byte counts are
//! real.
//!
//! [`network`] is the same for any number of peers, over [`crate::sync::Sessions`];
//! [`recon::ReconPair`] is two peers over one `sync.reconcile` stream
//! ([`crate::sync::recon::ReconSession`] on each side).
//!
//! Only for tests and benches (cargo feature `testing`).

pub mod network;
pub mod recon;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use crate::db::Db;
use crate::db::{AddError, Added};
use crate::goals::{Goal, Goals, GoalsError};
use crate::ids::{MsgId, TangleId};
use crate::msg::Msg;
use crate::store::MemStore;
use crate::sync::{self, Config, IndexedDb, Input, Output, Session, SyncIndex, Time};

/// Steps after which [`Pair::run`] gives up (a livelock).
pub const STEPS_MAX: u64 = 10_000;

/// One peer: a database, its sync index and its goals.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The database.
    pub db: Db<MemStore>,
    /// The sync index over it.
    pub index: SyncIndex,
    /// The goals.
    pub goals: Goals,
}

impl Default for Peer {
    fn default() -> Self {
        Self::new()
    }
}

impl Peer {
    /// An empty peer.
    #[must_use]
    pub fn new() -> Self {
        Self {
            db: Db::new(MemStore::new()),
            index: SyncIndex::new(),
            goals: Goals::new(),
        }
    }

    /// Adds a msg as the node would (keeping the index fresh); returns it as stored when it
    /// was new, for [`Pair::added`].
    ///
    /// # Errors
    /// [`AddError`] when the msg is refused.
    pub fn add(
        &mut self,
        msg: Msg,
        tangle: Option<TangleId>,
    ) -> Result<Option<(MsgId, Arc<Msg>)>, AddError<Infallible>> {
        let id = msg.id();
        match self.db.add(msg, tangle)? {
            Added::AlreadyStored => Ok(None),
            Added::Appended(_) | Added::ReplacedErased(_) => {
                let Ok(Some(stored)) = self.db.get(&id) else {
                    return Ok(None);
                };
                let Ok(()) = self.index.note_added(&mut self.db, &id, &stored);
                Ok(Some((id, stored)))
            }
        }
    }

    /// Panics if the database's cached tangles or the sync index disagree with the store
    /// ([`Db::check_invariants`], [`SyncIndex::check_invariants`]).
    pub fn check_invariants(&self) {
        let Ok(()) = self.db.check_invariants();
        let Ok(()) = self.index.check_invariants(&self.db);
    }

    /// Sets a goal (no session is told; see [`Pair::set_goal`]).
    ///
    /// # Errors
    /// [`GoalsError`].
    pub fn set_goal(&mut self, tangle: TangleId, goal: Goal) -> Result<(), GoalsError> {
        self.goals.set(tangle, goal)
    }
}

/// Which side of a [`Pair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The dialer, which initiates.
    Dialer,
    /// The responder.
    Responder,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Self::Dialer => 0,
            Self::Responder => 1,
        }
    }

    fn other(self) -> Self {
        match self {
            Self::Dialer => Self::Responder,
            Self::Responder => Self::Dialer,
        }
    }
}

/// An object that crossed the wire.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Who sent it.
    pub from: Side,
    /// The JSON text.
    pub json: String,
    /// Its causal depth: 1 for objects sent on start, one more than the object whose handling
    /// caused it.
    pub depth: u64,
}

/// What a run moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Objects sent, both directions.
    pub objects: u64,
    /// JSON bytes sent, both directions.
    pub bytes: u64,
    /// Of those, the bytes of msgs inside payloads.
    pub msg_bytes: u64,
    /// Msgs carried in payloads.
    pub msgs_carried: u64,
    /// The longest causal chain of objects; round trips are half of it.
    pub one_way_trips: u64,
    /// Msgs added to the dialer's database by commits.
    pub added_at_dialer: u64,
    /// Msgs added to the responder's database by commits.
    pub added_at_responder: u64,
    /// Objects refused, both sides.
    pub refused: u64,
    /// Delivery steps taken.
    pub steps: u64,
}

impl Metrics {
    /// Bytes that are not msgs: framing, ranges, IDs, blooms.
    #[must_use]
    pub fn overhead_bytes(&self) -> u64 {
        self.bytes - self.msg_bytes
    }

    /// Round trips (half the one-way trips).
    #[must_use]
    pub fn round_trips(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // small counts
        let trips = self.one_way_trips as f64;
        trips / 2.0
    }
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// No quiescence within [`STEPS_MAX`] steps.
    #[error("no quiescence after {0} steps")]
    Livelock(u64),
    /// A session asked to close the stream.
    #[error("{side:?} closed the stream: {reason}")]
    Closed {
        /// Who.
        side: Side,
        /// Why.
        reason: sync::CloseReason,
    },
}

/// The delivery loop both test pairs run: the responder reads on odd steps and the dialer on
/// even ones (`steps` counts them, carried across runs), until two reads in a row find
/// nothing. `step` reads one side's inbox and says whether there was anything.
fn alternate_until_idle(
    steps: &mut u64,
    mut step: impl FnMut(Side) -> Result<bool, RunError>,
) -> Result<(), RunError> {
    let mut idle_steps = 0;
    while idle_steps < 2 {
        if *steps >= STEPS_MAX {
            return Err(RunError::Livelock(*steps));
        }
        *steps += 1;
        let side = if *steps % 2 == 1 {
            Side::Responder
        } else {
            Side::Dialer
        };
        if step(side)? {
            idle_steps = 0;
        } else {
            idle_steps += 1;
        }
    }
    Ok(())
}

/// Two peers with one sync stream between them.
#[derive(Debug, Clone)]
pub struct Pair {
    peers: [Peer; 2],
    sessions: [Session; 2],
    inboxes: [VecDeque<Delivery>; 2],
    metrics: Metrics,
    /// Every object delivered so far, when recording.
    pub transcript: Option<Vec<Delivery>>,
    /// Whether to check the sessions', databases' and indexes' invariants after every input.
    pub check_invariants: bool,
    now: Time,
}

impl Pair {
    /// A stream from `dialer` to `responder`; nothing is sent until [`Pair::start`].
    #[must_use]
    pub fn new(dialer: Peer, responder: Peer, config: Config) -> Self {
        Self {
            peers: [dialer, responder],
            sessions: [Session::new(config), Session::new(config)],
            inboxes: [VecDeque::new(), VecDeque::new()],
            metrics: Metrics::default(),
            transcript: None,
            check_invariants: true,
            now: Time::default(),
        }
    }

    /// A peer.
    #[must_use]
    pub fn peer(&self, side: Side) -> &Peer {
        self.peers.get(side.index()).expect("invariant: two sides")
    }

    /// A peer, for changes the sessions are told about by the caller.
    pub fn peer_mut(&mut self, side: Side) -> &mut Peer {
        self.peers
            .get_mut(side.index())
            .expect("invariant: two sides")
    }

    /// A session.
    #[must_use]
    pub fn session(&self, side: Side) -> &Session {
        self.sessions
            .get(side.index())
            .expect("invariant: two sides")
    }

    /// Takes the peers back.
    #[must_use]
    pub fn into_peers(self) -> (Peer, Peer) {
        let [dialer, responder] = self.peers;
        (dialer, responder)
    }

    /// What moved so far.
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        let mut metrics = self.metrics;
        metrics.refused = self.sessions.iter().map(|s| s.stats().refused).sum();
        metrics
    }

    /// Clears the counters (not the transcript).
    pub fn reset_metrics(&mut self) {
        self.metrics = Metrics::default();
    }

    /// The dialer starts initiating.
    ///
    /// # Errors
    /// [`RunError::Closed`].
    pub fn start(&mut self) -> Result<(), RunError> {
        self.input(Side::Dialer, Input::Start, 0)
    }

    /// The responder starts initiating too (pzp-sync's `start()` initiates every stream,
    /// the server's included).
    ///
    /// # Errors
    /// [`RunError::Closed`].
    pub fn start_responder(&mut self) -> Result<(), RunError> {
        self.input(Side::Responder, Input::Start, 0)
    }

    /// Sets a goal on one side and tells its session.
    ///
    /// # Errors
    /// [`RunError::Closed`].
    ///
    /// # Panics
    /// If the side already has [`crate::goals::GOALS_MAX`] goals.
    pub fn set_goal(&mut self, side: Side, tangle: TangleId, goal: Goal) -> Result<(), RunError> {
        self.peer_mut(side)
            .set_goal(tangle, goal)
            .expect("invariant: tests set few goals");
        self.input(side, Input::GoalChanged { tangle }, 0)
    }

    /// Tells a side's session about msgs its caller added to its database.
    ///
    /// # Errors
    /// [`RunError::Closed`].
    pub fn added(&mut self, side: Side, added: Vec<(MsgId, Arc<Msg>)>) -> Result<(), RunError> {
        self.input(
            side,
            Input::LocalAdded {
                msgs: added,
                from_this_remote: false,
            },
            0,
        )
    }

    /// Delivers objects until neither side has anything left to read.
    ///
    /// # Errors
    /// [`RunError`].
    pub fn run(&mut self) -> Result<Metrics, RunError> {
        let mut steps = self.metrics.steps;
        let run = alternate_until_idle(&mut steps, |side| self.step(side));
        self.metrics.steps = steps;
        run?;
        Ok(self.metrics())
    }

    /// One read on `side`: handles everything in its inbox. Returns whether there was any.
    fn step(&mut self, side: Side) -> Result<bool, RunError> {
        let batch: Vec<Delivery> = self
            .inboxes
            .get_mut(side.index())
            .expect("invariant: two sides")
            .drain(..)
            .collect();
        if batch.is_empty() {
            return Ok(false);
        }
        let mut added = Vec::new();
        let mut deepest = 0;
        for delivery in batch {
            deepest = deepest.max(delivery.depth);
            let value: serde_json::Value =
                serde_json::from_str(&delivery.json).expect("invariant: sessions write valid JSON");
            if let Some(transcript) = &mut self.transcript {
                transcript.push(delivery.clone());
            }
            added.extend(self.handle(side, Input::Received(value), delivery.depth)?);
        }
        if !added.is_empty() {
            let from_remote = Input::LocalAdded {
                msgs: added,
                from_this_remote: true,
            };
            self.input(side, from_remote, deepest)?;
        }
        Ok(true)
    }

    fn input(&mut self, side: Side, input: Input, depth: u64) -> Result<(), RunError> {
        let added = self.handle(side, input, depth)?;
        if !added.is_empty() {
            // Commits caused by a local input (a realtime push arriving is a remote input);
            // tell the session at once.
            let from_remote = Input::LocalAdded {
                msgs: added,
                from_this_remote: true,
            };
            let more = self.handle(side, from_remote, depth)?;
            debug_assert!(more.is_empty(), "invariant: LocalAdded commits nothing");
        }
        Ok(())
    }

    /// Runs one input through a session and applies its outputs; returns the msgs commits
    /// added.
    fn handle(
        &mut self,
        side: Side,
        input: Input,
        depth: u64,
    ) -> Result<Vec<(MsgId, Arc<Msg>)>, RunError> {
        let index = side.index();
        let [dialer, responder] = &mut self.peers;
        let peer = if index == 0 { dialer } else { responder };
        let session = self.sessions.get_mut(index).expect("invariant: two sides");
        let mut outputs = Vec::new();
        let mut store = IndexedDb::new(&mut peer.db, &mut peer.index);
        let result: Result<(), Infallible> =
            session.handle(self.now, input, &mut store, &peer.goals, &mut outputs);
        let Ok(()) = result;
        if self.check_invariants {
            session.check_invariants();
        }
        let mut added = Vec::new();
        for output in outputs {
            match output {
                Output::Send(msg) => {
                    let mut json = String::new();
                    let msg_bytes = msg.write_json(&mut json);
                    self.metrics.objects += 1;
                    self.metrics.bytes += u64::try_from(json.len()).unwrap_or(u64::MAX);
                    self.metrics.msg_bytes += u64::try_from(msg_bytes).unwrap_or(u64::MAX);
                    self.metrics.msgs_carried +=
                        u64::try_from(msg.msgs().len()).unwrap_or(u64::MAX);
                    self.metrics.one_way_trips = self.metrics.one_way_trips.max(depth + 1);
                    self.inboxes
                        .get_mut(side.other().index())
                        .expect("invariant: two sides")
                        .push_back(Delivery {
                            from: side,
                            json,
                            depth: depth + 1,
                        });
                }
                Output::Commit { tangle, msgs } => {
                    let Ok(committed) = sync::commit(&mut peer.db, &mut peer.index, &tangle, msgs);
                    let count = u64::try_from(committed.len()).unwrap_or(u64::MAX);
                    match side {
                        Side::Dialer => self.metrics.added_at_dialer += count,
                        Side::Responder => self.metrics.added_at_responder += count,
                    }
                    added.extend(committed);
                }
                Output::PruneNewest { tangle, count } => {
                    let Ok(_) = sync::prune_newest(&mut peer.db, &tangle, count);
                }
                Output::Close(reason) => return Err(RunError::Closed { side, reason }),
                Output::Finished { .. } | Output::Refused(_) => {}
            }
        }
        if self.check_invariants {
            peer.check_invariants();
        }
        Ok(added)
    }
}
