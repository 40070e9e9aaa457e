//! [`ReconPair`]: two in-memory peers reconciling over one `sync.reconcile` stream, one
//! [`Exchange`] per tangle on each side, run to quiescence while counting what crosses the
//! wire, exactly as [`super::Pair`] runs pzp-sync (same peers, same delivery steps, frames as
//! JSON text, commits through [`sync::commit`]), so that the two can be compared.
//!
//! The dialer opens one exchange per goal, in goal order, on [`ReconPair::start`]; the
//! responder creates one for each tangle a frame names. Nothing of pzp-sync's session
//! (realtime pushes, re-initiation, claims) runs here: only the exchanges.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;

use super::{Delivery, Metrics, Peer, RunError, Side};
use crate::ids::TangleId;
use crate::sync::recon::exchange::{self, Exchange, Input, Output};
use crate::sync::recon::frame;
use crate::sync::{self, IndexedDb, Time};

/// Two peers with one `sync.reconcile` stream between them.
#[derive(Debug, Clone)]
pub struct ReconPair {
    peers: [Peer; 2],
    exchanges: [BTreeMap<TangleId, Exchange>; 2],
    inboxes: [VecDeque<Delivery>; 2],
    metrics: Metrics,
    /// Every object delivered so far, when recording.
    pub transcript: Option<Vec<Delivery>>,
    /// Whether to check the databases' and indexes' invariants after every input.
    pub check_invariants: bool,
    /// Per side, the tangles whose exchange finished, with whether it ended in realtime.
    pub finished: [BTreeMap<TangleId, bool>; 2],
    /// Refused frames and failed exchanges, per side.
    pub refusals: [Vec<exchange::Refusal>; 2],
    now: Time,
}

impl ReconPair {
    /// A stream from `dialer` to `responder`; nothing is sent until [`ReconPair::start`].
    #[must_use]
    pub fn new(dialer: Peer, responder: Peer) -> Self {
        Self {
            peers: [dialer, responder],
            exchanges: [BTreeMap::new(), BTreeMap::new()],
            inboxes: [VecDeque::new(), VecDeque::new()],
            metrics: Metrics::default(),
            transcript: None,
            check_invariants: true,
            finished: [BTreeMap::new(), BTreeMap::new()],
            refusals: [Vec::new(), Vec::new()],
            now: Time::default(),
        }
    }

    /// A peer.
    #[must_use]
    pub fn peer(&self, side: Side) -> &Peer {
        self.peers.get(side.index()).expect("invariant: two sides")
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

    /// The exchange of `tangle` on `side`, if one was created.
    #[must_use]
    pub fn exchange(&self, side: Side, tangle: &TangleId) -> Option<&Exchange> {
        self.exchanges.get(side.index())?.get(tangle)
    }

    /// The dialer opens one exchange per goal.
    pub fn start(&mut self) {
        let tangles: Vec<TangleId> = self
            .peer(Side::Dialer)
            .goals
            .iter()
            .map(|(t, _)| *t)
            .collect();
        for tangle in tangles {
            self.handle(Side::Dialer, tangle, Input::Start, 0);
        }
    }

    /// Hands `value` to `side` as if the remote had sent it (for hostile frames); returns
    /// the refusals and failures it caused.
    pub fn inject(&mut self, side: Side, value: &serde_json::Value) -> Vec<exchange::Refusal> {
        let before = self.refusals.get(side.index()).map_or(0, Vec::len);
        self.receive(side, value, 0);
        self.refusals
            .get(side.index())
            .map(|list| list.iter().skip(before).cloned().collect())
            .unwrap_or_default()
    }

    /// Delivers frames until neither side has anything left to read.
    ///
    /// # Errors
    /// [`RunError::Livelock`].
    pub fn run(&mut self) -> Result<Metrics, RunError> {
        let mut steps = self.metrics.steps;
        let run = super::alternate_until_idle(&mut steps, |side| Ok(self.step(side)));
        self.metrics.steps = steps;
        run?;
        Ok(self.metrics())
    }

    /// One read on `side`: handles everything in its inbox. Returns whether there was any.
    fn step(&mut self, side: Side) -> bool {
        let inbox = self
            .inboxes
            .get_mut(side.index())
            .expect("invariant: two sides");
        let batch: Vec<Delivery> = inbox.drain(..).collect();
        for delivery in &batch {
            let value: serde_json::Value =
                serde_json::from_str(&delivery.json).expect("invariant: exchanges write JSON");
            if let Some(transcript) = &mut self.transcript {
                transcript.push(delivery.clone());
            }
            self.receive(side, &value, delivery.depth);
        }
        !batch.is_empty()
    }

    fn receive(&mut self, side: Side, value: &serde_json::Value, depth: u64) {
        let decoded = frame::decode(value);
        let tangle = match &decoded {
            Ok(received) => received.frame.id,
            Err(error) => {
                let refusals = self.refusals.get_mut(side.index()).expect("two sides");
                refusals.push(exchange::Refusal::Frame(error.clone()));
                return;
            }
        };
        self.handle(side, tangle, Input::Decoded(decoded), depth);
    }

    /// Runs one input through `tangle`'s exchange on `side` (creating it) and applies its
    /// outputs.
    fn handle(&mut self, side: Side, tangle: TangleId, input: Input, depth: u64) {
        let index = side.index();
        let exchange_side = match side {
            Side::Dialer => exchange::Side::Dialer,
            Side::Responder => exchange::Side::Responder,
        };
        let [dialer, responder] = &mut self.peers;
        let peer = if index == 0 { dialer } else { responder };
        let exchange = self
            .exchanges
            .get_mut(index)
            .expect("invariant: two sides")
            .entry(tangle)
            .or_insert_with(|| Exchange::new(tangle, exchange_side));
        let mut outputs = Vec::new();
        let mut store = IndexedDb::new(&mut peer.db, &mut peer.index);
        let result: Result<(), Infallible> =
            exchange.handle(self.now, input, &mut store, &peer.goals, &mut outputs);
        let Ok(()) = result;
        let mut sends = Vec::new();
        for output in outputs {
            match output {
                Output::Send(frame) => sends.push(frame),
                Output::Commit { tangle, msgs } => {
                    let Ok(added) = sync::commit(&mut peer.db, &mut peer.index, &tangle, msgs);
                    let count = u64::try_from(added.len()).unwrap_or(u64::MAX);
                    match side {
                        Side::Dialer => self.metrics.added_at_dialer += count,
                        Side::Responder => self.metrics.added_at_responder += count,
                    }
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
            }
        }
        if self.check_invariants {
            peer.check_invariants();
        }
        for frame in sends {
            self.send(side, &frame, depth);
        }
    }

    fn send(&mut self, side: Side, frame: &frame::ReconFrame, depth: u64) {
        let mut json = String::new();
        let msg_bytes = frame.write_json(&mut json);
        self.metrics.objects += 1;
        self.metrics.bytes += u64::try_from(json.len()).unwrap_or(u64::MAX);
        self.metrics.msg_bytes += u64::try_from(msg_bytes).unwrap_or(u64::MAX);
        self.metrics.msgs_carried += u64::try_from(frame.frame.msgs().len()).unwrap_or(u64::MAX);
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
