//! [`ReconPair`]: two in-memory peers reconciling over one `sync.reconcile` stream, one
//! [`ReconSession`] on each side (every tangle's exchange, realtime pushes after), run to
//! quiescence while counting what crosses the wire, exactly as [`super::Pair`] runs pzp-sync
//! (same peers, same delivery steps, frames as JSON text, commits through [`sync::commit`]
//! and told back to the session), so that the two can be compared.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use super::{Delivery, Metrics, Peer, RunError, Side};
use crate::goals::Goal;
use crate::ids::{MsgId, TangleId};
use crate::msg::Msg;
use crate::sync::recon::exchange::{self, Exchange, Output};
use crate::sync::recon::session::{self, Input, ReconSession};
use crate::sync::{self, IndexedDb, Time};

/// Two peers with one `sync.reconcile` stream between them.
#[derive(Debug, Clone)]
pub struct ReconPair {
    peers: [Peer; 2],
    sessions: [ReconSession; 2],
    inboxes: [VecDeque<Delivery>; 2],
    metrics: Metrics,
    /// Every object delivered so far, when recording.
    pub transcript: Option<Vec<Delivery>>,
    /// Whether to check the sessions', databases' and indexes' invariants after every input.
    pub check_invariants: bool,
    /// Per side, the tangles whose exchange finished, with whether it ended in realtime.
    pub finished: [BTreeMap<TangleId, bool>; 2],
    /// Refused frames and failed exchanges, per side.
    pub refusals: [Vec<exchange::Refusal>; 2],
    /// Realtime pushes sent, per side.
    pub pushes: [u64; 2],
    now: Time,
}

impl ReconPair {
    /// A stream from `dialer` to `responder`; nothing is sent until [`ReconPair::start`].
    #[must_use]
    pub fn new(dialer: Peer, responder: Peer) -> Self {
        Self {
            peers: [dialer, responder],
            sessions: [
                ReconSession::new(exchange::Side::Dialer),
                ReconSession::new(exchange::Side::Responder),
            ],
            inboxes: [VecDeque::new(), VecDeque::new()],
            metrics: Metrics::default(),
            transcript: None,
            check_invariants: true,
            finished: [BTreeMap::new(), BTreeMap::new()],
            refusals: [Vec::new(), Vec::new()],
            pushes: [0, 0],
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
    pub fn session(&self, side: Side) -> &ReconSession {
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
        metrics.refused = self.refusals.iter().map(|list| list.len() as u64).sum();
        metrics
    }

    /// Clears the counters (not the transcript).
    pub fn reset_metrics(&mut self) {
        self.metrics = Metrics::default();
    }

    /// The exchange of `tangle` on `side`, if one was created.
    #[must_use]
    pub fn exchange(&self, side: Side, tangle: &TangleId) -> Option<&Exchange> {
        self.session(side).exchange(tangle)
    }

    /// The dialer opens one exchange per goal.
    ///
    /// # Errors
    /// [`RunError::Closed`].
    pub fn start(&mut self) -> Result<(), RunError> {
        self.input(Side::Dialer, Input::Start, 0)
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
        let input = Input::LocalAdded {
            msgs: added,
            from_this_remote: false,
        };
        self.input(side, input, 0)
    }

    /// Hands `value` to `side` as if the remote had sent it (for hostile frames); returns
    /// the refusals and failures it caused.
    ///
    /// # Errors
    /// [`RunError::Closed`] when the session closes the stream.
    pub fn inject(
        &mut self,
        side: Side,
        value: &serde_json::Value,
    ) -> Result<Vec<exchange::Refusal>, RunError> {
        let before = self.refusals.get(side.index()).map_or(0, Vec::len);
        self.input(side, Input::Received(value.clone()), 0)?;
        Ok(self
            .refusals
            .get(side.index())
            .map(|list| list.iter().skip(before).cloned().collect())
            .unwrap_or_default())
    }

    /// Delivers frames until neither side has anything left to read.
    ///
    /// # Errors
    /// [`RunError`].
    pub fn run(&mut self) -> Result<Metrics, RunError> {
        let mut steps = self.metrics.steps;
        let run = super::alternate_until_idle(&mut steps, |side| self.step(side));
        self.metrics.steps = steps;
        run?;
        Ok(self.metrics())
    }

    /// One read on `side`: handles everything in its inbox. Returns whether there was any.
    /// Tests interleave local writes with an exchange through it.
    ///
    /// # Errors
    /// [`RunError`].
    pub fn step(&mut self, side: Side) -> Result<bool, RunError> {
        let inbox = self
            .inboxes
            .get_mut(side.index())
            .expect("invariant: two sides");
        let batch: Vec<Delivery> = inbox.drain(..).collect();
        for delivery in &batch {
            let decoded =
                session::decode_text(&delivery.json).expect("invariant: sessions write JSON");
            if let Some(transcript) = &mut self.transcript {
                transcript.push(delivery.clone());
            }
            self.input(side, Input::Decoded(decoded), delivery.depth)?;
        }
        Ok(!batch.is_empty())
    }

    /// Runs one input through `side`'s session and applies its outputs; what its commits
    /// added is told back to it at once, as the node's store does.
    fn input(&mut self, side: Side, input: Input, depth: u64) -> Result<(), RunError> {
        let added = self.handle(side, input, depth)?;
        if !added.is_empty() {
            let from_remote = Input::LocalAdded {
                msgs: added,
                from_this_remote: true,
            };
            let more = self.handle(side, from_remote, depth)?;
            debug_assert!(more.is_empty(), "invariant: LocalAdded commits nothing");
        }
        Ok(())
    }

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
        let mut sends = Vec::new();
        for output in outputs {
            match output {
                Output::Send(frame) => {
                    let mut json = String::new();
                    let msg_bytes = frame.write_json(&mut json);
                    sends.push((json, msg_bytes, frame.frame.msgs().len()));
                }
                Output::Push(push) => {
                    let mut json = String::new();
                    let msg_bytes = push.write_json(&mut json);
                    sends.push((json, msg_bytes, push.msgs().len()));
                    *self.pushes.get_mut(index).expect("two sides") += 1;
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
                Output::Finished { tangle, realtime } => {
                    let finished = self.finished.get_mut(index).expect("two sides");
                    finished.insert(tangle, realtime);
                }
                Output::Failed { reason, .. } | Output::Refused(reason) => {
                    let refusals = self.refusals.get_mut(index).expect("two sides");
                    refusals.push(reason);
                }
                Output::Close(reason) => return Err(RunError::Closed { side, reason }),
            }
        }
        if self.check_invariants {
            peer.check_invariants();
        }
        for (json, msg_bytes, msgs) in sends {
            self.send(side, json, msg_bytes, msgs, depth);
        }
        Ok(added)
    }

    fn send(&mut self, side: Side, json: String, msg_bytes: usize, msgs: usize, depth: u64) {
        self.metrics.objects += 1;
        self.metrics.bytes += u64::try_from(json.len()).unwrap_or(u64::MAX);
        self.metrics.msg_bytes += u64::try_from(msg_bytes).unwrap_or(u64::MAX);
        self.metrics.msgs_carried += u64::try_from(msgs).unwrap_or(u64::MAX);
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
}
