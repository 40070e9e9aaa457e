//! The [`Collector`]: events in, in simulated-time order (each also goes to the trace);
//! metrics and checks out at the end.

use std::collections::BTreeMap;
use std::io;

use super::aggregate::Aggregates;
use super::compute::{bandwidth_bucket_ms, convergence, latency, quantiles_exact, recovery};
use super::{
    BytesMetrics, ConvergenceMetrics, Counts, DuplicateMetrics, LatencyMetrics, Metrics, Outcome,
    Recovery, StoreMetrics, ratio,
};
use crate::check::{self, CheckReport, Holdings, Violation, ViolationKind};
use crate::interest::{InterestBuilder, NewMsg};
use crate::plan::{PeerIdx, Plan};
use crate::scenario::CollectorMode;
use proto::gc::GcAction;

use crate::trace::{Event, EventKind, TraceSink, WireKind};

/// Held intervals of one (peer, msg): `[start, end)`, `end == None` while still held.
use crate::check::Spans;

/// Streams events in, metrics and checks out.
#[derive(Debug)]
pub struct Collector<'p> {
    plan: &'p Plan,
    sink: TraceSink,
    last_t: u64,
    interest: InterestBuilder,
    /// Per-pair mode: held intervals by (peer, msg index).
    held: BTreeMap<(PeerIdx, usize), Spans>,
    /// Aggregated mode (`plan.collector`): counters instead of `held` and snapshots.
    aggregates: Option<Aggregates<'p>>,
    deliveries: u64,
    bytes_by_kind: BTreeMap<WireKind, u64>,
    bytes_by_group: BTreeMap<String, BTreeMap<WireKind, u64>>,
    bandwidth: Vec<[u64; 5]>,
    bucket_ms: u64,
    duplicates: u64,
    duplicate_bytes: u64,
    round_trips: Vec<u32>,
    gc_count: BTreeMap<GcAction, u64>,
    gc_bytes: BTreeMap<GcAction, u64>,
    store_last: BTreeMap<PeerIdx, u64>,
    store_max: u64,
    connects: u64,
    dial_failures: u64,
    disconnects: BTreeMap<String, u64>,
    crashes: u64,
    restarts: u64,
    offline: u64,
    online: u64,
    rejects: BTreeMap<String, u64>,
    events: u64,
    faults_applied: u64,
    notes: u64,
    down: BTreeMap<PeerIdx, Spans>,
    violations: Vec<Violation>,
    snapshots: BTreeMap<PeerIdx, Holdings>,
    queue_peaks: Option<Vec<(u64, u64)>>,
}

impl<'p> Collector<'p> {
    /// A collector for `plan`, writing the trace to `sink`.
    #[must_use]
    pub fn new(plan: &'p Plan, sink: TraceSink) -> Collector<'p> {
        let bucket_ms = bandwidth_bucket_ms(plan);
        let buckets = usize::try_from(plan.duration_ms / bucket_ms + 1).unwrap_or(1);
        Collector {
            plan,
            sink,
            last_t: 0,
            interest: InterestBuilder::default(),
            held: BTreeMap::new(),
            aggregates: (plan.collector == CollectorMode::Aggregated)
                .then(|| Aggregates::new(plan)),
            deliveries: 0,
            bytes_by_kind: BTreeMap::new(),
            bytes_by_group: BTreeMap::new(),
            bandwidth: vec![[0; 5]; buckets],
            bucket_ms,
            duplicates: 0,
            duplicate_bytes: 0,
            round_trips: Vec::new(),
            gc_count: BTreeMap::new(),
            gc_bytes: BTreeMap::new(),
            store_last: BTreeMap::new(),
            store_max: 0,
            connects: 0,
            dial_failures: 0,
            disconnects: BTreeMap::new(),
            crashes: 0,
            restarts: 0,
            offline: 0,
            online: 0,
            rejects: BTreeMap::new(),
            events: 0,
            faults_applied: 0,
            notes: 0,
            down: BTreeMap::new(),
            violations: Vec::new(),
            snapshots: BTreeMap::new(),
            queue_peaks: None,
        }
    }

    /// The plan.
    #[must_use]
    pub fn plan(&self) -> &'p Plan {
        self.plan
    }

    fn violation(
        &mut self,
        t: u64,
        kind: ViolationKind,
        peer: Option<PeerIdx>,
        msg: Option<String>,
        detail: String,
    ) {
        self.violations.push(Violation {
            t_ms: t,
            kind,
            peer: peer.map(|p| self.plan.peer_name(p).to_owned()),
            msg,
            detail,
        });
    }

    /// Records one event. Events must come in non-decreasing simulated time; an event that
    /// goes back in time is recorded as a safety violation (a runner bug).
    ///
    /// # Errors
    /// Trace write errors.
    pub fn record(&mut self, event: Event) -> io::Result<()> {
        self.sink.push(&event)?;
        self.events += 1;
        let t = event.t;
        if t < self.last_t {
            self.violation(
                t,
                ViolationKind::TimeOrder,
                None,
                None,
                format!("event at {t} ms after one at {} ms", self.last_t),
            );
        }
        self.last_t = self.last_t.max(t);
        if let Some(aggregates) = &mut self.aggregates {
            aggregates.advance(t, &self.interest);
        }
        match event.kind {
            EventKind::Publish {
                peer,
                msg,
                tangle,
                feed,
                bytes,
                supersedes,
            } => {
                let new = NewMsg {
                    id: &msg,
                    owner: peer,
                    feed: &feed,
                    tangle: &tangle,
                    bytes,
                    supersedes: &supersedes,
                };
                self.on_publish(t, &new);
            }
            EventKind::Store {
                peer, msg, from, ..
            } => self.on_store(t, peer, msg, from),
            EventKind::Send {
                from, kind, bytes, ..
            } => self.on_send(t, from, kind, bytes),
            EventKind::SyncRound { round_trips, .. } => self.round_trips.push(round_trips),
            EventKind::Duplicate { bytes, .. } => {
                self.duplicates += 1;
                self.duplicate_bytes += bytes;
            }
            EventKind::Gc {
                peer,
                action,
                bytes,
                msg,
            } => self.on_gc(t, peer, action, bytes, msg),
            EventKind::StoreSize { peer, bytes } => {
                self.store_last.insert(peer, bytes);
                self.store_max = self.store_max.max(bytes);
            }
            EventKind::Invalid { peer, msg, reason } => {
                let kind = ViolationKind::InvalidStored;
                self.violation(t, kind, Some(peer), Some(msg), reason);
            }
            EventKind::Note { text, error } => {
                self.notes += 1;
                if error {
                    self.violation(t, ViolationKind::RunnerError, None, None, text);
                }
            }
            other => self.on_peer_event(t, other),
        }
        Ok(())
    }

    /// Connections, faults, and peers going down and up.
    fn on_peer_event(&mut self, t: u64, kind: EventKind) {
        match kind {
            EventKind::Connect { .. } => self.connects += 1,
            EventKind::DialFailed { .. } => self.dial_failures += 1,
            EventKind::Disconnect { reason, .. } => {
                *self.disconnects.entry(reason).or_default() += 1;
            }
            EventKind::Fault { .. } => self.faults_applied += 1,
            EventKind::Crash { peer } => {
                self.crashes += 1;
                self.went_down(peer, t);
            }
            EventKind::Restart { peer } => {
                self.restarts += 1;
                self.came_up(peer, t);
            }
            EventKind::Offline { peer } => {
                self.offline += 1;
                self.went_down(peer, t);
            }
            EventKind::Online { peer } => {
                self.online += 1;
                self.came_up(peer, t);
            }
            EventKind::Reject { reason, .. } => {
                *self.rejects.entry(reason).or_default() += 1;
            }
            // The msg events: `record` handles them.
            _ => {}
        }
    }

    /// The author holds its msg from the moment it publishes it.
    fn on_publish(&mut self, t: u64, new: &NewMsg<'_>) {
        match self.interest.publish(t, new) {
            Some(index) => match &mut self.aggregates {
                Some(aggregates) => aggregates.published(t, index, &self.interest),
                None => self
                    .held
                    .entry((new.owner, index))
                    .or_default()
                    .push((t, None)),
            },
            None => self.violation(
                t,
                ViolationKind::DoublePublish,
                Some(new.owner),
                Some(new.id.to_owned()),
                "the same msg ID was published twice".to_owned(),
            ),
        }
    }

    fn on_store(&mut self, t: u64, peer: PeerIdx, msg: String, from: Option<PeerIdx>) {
        let Some(index) = self.interest.index_of(&msg) else {
            let from = from
                .map(|f| format!(" (from {})", self.plan.peer_name(f)))
                .unwrap_or_default();
            let detail = format!("stored a msg nobody published{from}");
            self.violation(
                t,
                ViolationKind::StoredUnknown,
                Some(peer),
                Some(msg),
                detail,
            );
            return;
        };
        if let Some(aggregates) = &mut self.aggregates {
            aggregates.stored(peer, index);
            self.deliveries += 1;
            return;
        }
        let spans = self.held.entry((peer, index)).or_default();
        if spans.last().is_some_and(|(_, end)| end.is_none()) {
            self.violation(
                t,
                ViolationKind::DoubleStore,
                Some(peer),
                Some(msg),
                "stored again while already held".to_owned(),
            );
            return;
        }
        spans.push((t, None));
        self.deliveries += 1;
    }

    fn on_send(&mut self, t: u64, from: PeerIdx, kind: WireKind, bytes: u64) {
        *self.bytes_by_kind.entry(kind).or_default() += bytes;
        let group = self
            .plan
            .peers
            .get(from as usize)
            .map_or("?", |p| p.group.as_str());
        // Looked up by `&str` first: a send is the most frequent event, and the group's
        // entry almost always exists.
        let by_kind = match self.bytes_by_group.get_mut(group) {
            Some(by_kind) => by_kind,
            None => self.bytes_by_group.entry(group.to_owned()).or_default(),
        };
        *by_kind.entry(kind).or_default() += bytes;
        let bucket = usize::try_from(t / self.bucket_ms).unwrap_or(usize::MAX);
        if let Some(row) = self.bandwidth.get_mut(bucket) {
            row[kind_index(kind)] += bytes;
        } else if let Some(row) = self.bandwidth.last_mut() {
            row[kind_index(kind)] += bytes;
        }
    }

    /// GC counts by action; a delete or ghost also ends the peer's holding of the msg.
    fn on_gc(&mut self, t: u64, peer: PeerIdx, action: GcAction, bytes: u64, msg: Option<String>) {
        *self.gc_count.entry(action).or_default() += 1;
        *self.gc_bytes.entry(action).or_default() += bytes;
        if action != GcAction::Erase
            && let Some(aggregates) = &mut self.aggregates
        {
            if let Some(index) = msg.and_then(|id| self.interest.index_of(&id)) {
                aggregates.removed(peer, index);
            }
            return;
        }
        if action != GcAction::Erase
            && let Some(id) = msg
            && let Some(index) = self.interest.index_of(&id)
            && let Some(spans) = self.held.get_mut(&(peer, index))
            && let Some(last) = spans.last_mut()
            && last.1.is_none()
        {
            last.1 = Some(t);
        }
    }

    fn went_down(&mut self, peer: PeerIdx, t: u64) {
        let spans = self.down.entry(peer).or_default();
        if spans.last().is_none_or(|(_, end)| end.is_some()) {
            spans.push((t, None));
        }
    }

    fn came_up(&mut self, peer: PeerIdx, t: u64) {
        if let Some(last) = self.down.get_mut(&peer).and_then(|spans| spans.last_mut())
            && last.1.is_none()
        {
            last.1 = Some(t);
        }
    }

    /// Hands over a peer's final holdings (e.g. from `proto::ingest::Snapshot`), for the
    /// lost-msg and tangle-order checks.
    pub fn snapshot(&mut self, peer: PeerIdx, holdings: Holdings) {
        match &mut self.aggregates {
            // Not kept: every peer's holdings together are peers × msgs.
            Some(aggregates) => aggregates.snapshot(peer, &holdings, &self.interest),
            None => {
                self.snapshots.insert(peer, holdings);
            }
        }
    }

    /// Hands over each peer's largest queue, `(bytes, messages)` by peer, from an engine
    /// that models bandwidth (`metrics.queue` in the report).
    pub fn queue_peaks(&mut self, peaks: Vec<(u64, u64)>) {
        self.queue_peaks = Some(peaks);
    }

    /// Computes metrics and checks at `end_ms` (normally the plan's duration).
    ///
    /// # Errors
    /// Trace flush errors.
    pub fn finish(mut self, end_ms: u64) -> io::Result<Outcome> {
        let plan = self.plan;
        let end_ms = end_ms.max(self.last_t);
        if let Some(aggregates) = self.aggregates.take() {
            return self.finish_aggregated(aggregates, end_ms);
        }
        let interest = std::mem::take(&mut self.interest).finish(plan);
        let held = &self.held;
        let spans_of = |peer: PeerIdx, msg: usize| -> &[(u64, Option<u64>)] {
            held.get(&(peer, msg)).map_or(&[], Vec::as_slice)
        };
        let (latency_ms, wanted_deliveries) = latency(&interest, &spans_of);
        let metrics = self.metrics(
            latency_ms,
            convergence(plan, &interest, &spans_of, end_ms),
            wanted_deliveries,
            recovery(plan, &interest, &spans_of, end_ms),
            interest.msgs().len() as u64,
        );
        let checks = check::run(&check::Inputs {
            plan,
            interest: &interest,
            held: &self.held,
            streamed: std::mem::take(&mut self.violations),
            snapshots: &self.snapshots,
            down: &self.down,
            end_ms,
        });
        self.outcome(metrics, checks)
    }

    /// The metrics both collector modes compute alike, around the ones they compute each
    /// their own way.
    fn metrics(
        &self,
        latency_ms: LatencyMetrics,
        convergence: ConvergenceMetrics,
        wanted_deliveries: u64,
        recovery: Vec<Recovery>,
        msgs: u64,
    ) -> Metrics {
        Metrics {
            latency_ms,
            convergence,
            bytes: self.bytes_metrics(wanted_deliveries),
            duplicates: DuplicateMetrics {
                count: self.duplicates,
                bytes: self.duplicate_bytes,
                per_delivery: ratio(self.duplicates, self.deliveries),
            },
            round_trips: quantiles_exact(&self.round_trips),
            store: self.store_metrics(),
            recovery,
            counts: self.counts(msgs),
            queue: self.queue_peaks.as_deref().map(super::queue::queue_metrics),
        }
    }

    /// The run's outcome: flushes the trace for its hash.
    fn outcome(self, metrics: Metrics, checks: CheckReport) -> io::Result<Outcome> {
        let events = self.events;
        let trace_hash = self.sink.finish()?;
        Ok(Outcome {
            metrics,
            checks,
            trace_hash,
            events,
        })
    }

    /// [`Collector::finish`] in aggregated mode: no F(t), recovery, liveness, delivery,
    /// double-store or tangle-order results (`aggregate.rs` says why).
    fn finish_aggregated(mut self, aggregates: Aggregates<'p>, end_ms: u64) -> io::Result<Outcome> {
        let aggregated = aggregates.finish(end_ms, &self.interest);
        let metrics = self.metrics(
            aggregated.latency,
            aggregated.convergence,
            aggregated.wanted_deliveries,
            Vec::new(),
            self.interest.msgs().len() as u64,
        );
        let mut violations = std::mem::take(&mut self.violations);
        violations.extend(aggregated.lost_own);
        let checks = check::without_pairs(self.plan, violations);
        self.outcome(metrics, checks)
    }

    fn bytes_metrics(&self, wanted_deliveries: u64) -> BytesMetrics {
        let deliveries = self.deliveries;
        let total: u64 = self.bytes_by_kind.values().sum();
        let sent = |k: &WireKind| self.bytes_by_kind.get(k).copied().unwrap_or(0);
        BytesMetrics {
            total,
            by_kind: WireKind::ALL
                .iter()
                .map(|k| (k.name().to_owned(), sent(k)))
                .collect(),
            deliveries,
            wanted_deliveries,
            per_delivery: ratio(total, deliveries),
            per_delivery_by_kind: WireKind::ALL
                .iter()
                .map(|k| (k.name().to_owned(), ratio(sent(k), deliveries)))
                .collect(),
            by_group: self
                .bytes_by_group
                .iter()
                .map(|(group, kinds)| {
                    (
                        group.clone(),
                        kinds
                            .iter()
                            .map(|(k, b)| (k.name().to_owned(), *b))
                            .collect(),
                    )
                })
                .collect(),
            bucket_ms: self.bucket_ms,
            series: self.bandwidth.iter().map(|row| row.to_vec()).collect(),
            kinds: WireKind::ALL.iter().map(|k| k.name().to_owned()).collect(),
        }
    }

    fn store_metrics(&self) -> StoreMetrics {
        let peers_reporting = self.store_last.len() as u64;
        let per_action = |counts: &BTreeMap<GcAction, u64>| {
            GcAction::ALL
                .iter()
                .map(|a| (a.name().to_owned(), counts.get(a).copied().unwrap_or(0)))
                .collect()
        };
        StoreMetrics {
            final_mean_bytes: ratio(self.store_last.values().sum(), peers_reporting),
            final_max_bytes: self.store_last.values().max().copied(),
            max_bytes: self.store_max,
            gc_count: per_action(&self.gc_count),
            gc_bytes: per_action(&self.gc_bytes),
        }
    }

    fn counts(&self, publishes: u64) -> Counts {
        Counts {
            events: self.events,
            publishes,
            connects: self.connects,
            dial_failures: self.dial_failures,
            disconnects: self.disconnects.clone(),
            crashes: self.crashes,
            restarts: self.restarts,
            offline: self.offline,
            online: self.online,
            rejects: self.rejects.clone(),
            faults_applied: self.faults_applied,
            notes: self.notes,
        }
    }
}

fn kind_index(kind: WireKind) -> usize {
    match kind {
        WireKind::Msgs => 0,
        WireKind::SyncControl => 1,
        WireKind::Bloom => 2,
        WireKind::Handshake => 3,
        WireKind::Keepalive => 4,
    }
}
