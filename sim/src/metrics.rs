//! The collector: the runner feeds it [`Event`]s in simulated-time order; at the end it
//! computes every metric from simulated time only, and runs the checkers.
//!
//! ```text
//! let mut collector = Collector::new(&plan, TraceSink::hash_only(&header));
//! collector.record(Event { t, kind: EventKind::Publish { .. } });   // for every event
//! collector.snapshot(peer, Holdings::from(&snapshot));             // optional, at the end
//! let outcome = collector.finish(plan.duration_ms)?;              // metrics + checks + trace hash
//! ```
//!
//! Definitions (docs/report-schema.md has them with the JSON field names):
//! - a *delivery* is a `Store` at a peer other than the author;
//! - a *wanted pair* is (peer, msg) while the peer's goals want the msg ([`crate::interest`]);
//! - *latency* is store time − publish time over wanted pairs delivered while wanted;
//! - *coverage(t)* is wanted pairs held at t ÷ wanted pairs at t;
//! - the *final curve* F(t) is the share of pairs wanted at the end whose current copy was
//!   stored by t; t50/t90/t99/t100 are where F reaches 50/90/99/100 %;
//! - *recovery* after a fault ends at e: the time until every pair wanted at e and at the
//!   end is held.

use std::collections::BTreeMap;
use std::io;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::check::{self, CheckReport, Holdings, Violation, ViolationKind};
use crate::interest::{Interest, InterestBuilder, NewMsg};
use crate::plan::{PeerIdx, Plan};
use crate::trace::{Event, EventKind, GcAction, TraceSink, WireKind};

/// The largest latency the histogram holds exactly (3 significant digits); larger values
/// saturate. 30 days of simulated time.
pub const LATENCY_MS_MAX: u64 = 30 * 24 * 3_600_000;
/// Points in the latency CDF kept in the report.
pub const CDF_POINTS: usize = 200;
/// Bandwidth buckets: at most this many over the run.
pub const BANDWIDTH_BUCKETS_MAX: u64 = 200;

/// Held intervals of one (peer, msg): `[start, end)`, `end == None` while still held.
use crate::check::Spans;

/// Streams events in, metrics and checks out.
#[derive(Debug)]
pub struct Collector<'p> {
    plan: &'p Plan,
    sink: TraceSink,
    last_t: u64,
    interest: InterestBuilder,
    held: BTreeMap<(PeerIdx, usize), Spans>,
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
}

/// Everything the run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Metrics.
    pub metrics: Metrics,
    /// Checks.
    pub checks: CheckReport,
    /// SHA-256 of the trace (hex).
    pub trace_hash: String,
    /// Events recorded.
    pub events: u64,
}

/// Quantiles of a distribution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<u64>,
    /// 90th percentile.
    pub p90: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// Largest.
    pub max: Option<u64>,
}

/// Delivery latency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMetrics {
    /// Quantiles (HDR histogram, 3 significant digits), ms.
    #[serde(flatten)]
    pub quantiles: Quantiles,
    /// Wanted pairs still wanted at the end that were never delivered.
    pub undelivered: u64,
    /// CDF points `[latency_ms, fraction ≤]`, for the plot.
    pub cdf: Vec<(u64, f64)>,
}

/// One convergence sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Simulated time, ms.
    pub t_ms: u64,
    /// Wanted pairs at t.
    pub wanted: u64,
    /// Of those, held at t.
    pub held: u64,
    /// held ÷ wanted (null when nothing is wanted).
    pub coverage: Option<f64>,
    /// F(t): share of end-wanted pairs whose current copy was stored by t.
    pub final_fraction: Option<f64>,
}

/// Convergence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConvergenceMetrics {
    /// Pairs wanted at the end.
    pub wanted_at_end: u64,
    /// Of those, held at the end.
    pub held_at_end: u64,
    /// held_at_end ÷ wanted_at_end.
    pub fraction_at_end: Option<f64>,
    /// When F reaches 50 %.
    pub t50_ms: Option<u64>,
    /// When F reaches 90 %.
    pub t90_ms: Option<u64>,
    /// When F reaches 99 %.
    pub t99_ms: Option<u64>,
    /// When F reaches 100 %.
    pub t100_ms: Option<u64>,
    /// The last publish time.
    pub last_publish_ms: Option<u64>,
    /// t100 − last publish: how long the network took to settle after the workload.
    pub settle_after_last_publish_ms: Option<u64>,
    /// Samples every `sample_interval_ms`.
    pub curve: Vec<CurvePoint>,
}

/// Bytes on the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BytesMetrics {
    /// All bytes sent.
    pub total: u64,
    /// By kind (every kind present, zero included).
    pub by_kind: BTreeMap<String, u64>,
    /// Deliveries (stores at a peer other than the author).
    pub deliveries: u64,
    /// Deliveries to a peer that wanted the msg at the time.
    pub wanted_deliveries: u64,
    /// total ÷ deliveries.
    pub per_delivery: Option<f64>,
    /// by_kind ÷ deliveries.
    pub per_delivery_by_kind: BTreeMap<String, Option<f64>>,
    /// Bytes sent by the peers of each group, by kind.
    pub by_group: BTreeMap<String, BTreeMap<String, u64>>,
    /// Bandwidth series: bucket length.
    pub bucket_ms: u64,
    /// Bandwidth series: bytes per bucket, by kind (same order as `kinds`).
    pub series: Vec<Vec<u64>>,
    /// Kind names for `series` columns.
    pub kinds: Vec<String>,
}

/// Duplicates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DuplicateMetrics {
    /// Duplicate receptions.
    pub count: u64,
    /// Their bytes, where known.
    pub bytes: u64,
    /// count ÷ deliveries.
    pub per_delivery: Option<f64>,
}

/// Store sizes and GC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreMetrics {
    /// Mean of each peer's last reported store size.
    pub final_mean_bytes: Option<f64>,
    /// Largest last reported store size.
    pub final_max_bytes: Option<u64>,
    /// Largest store size ever reported.
    pub max_bytes: u64,
    /// GC actions by kind.
    pub gc_count: BTreeMap<String, u64>,
    /// GC bytes freed by kind.
    pub gc_bytes: BTreeMap<String, u64>,
}

/// Recovery after one fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// The fault's label.
    pub label: String,
    /// When it started.
    pub start_ms: u64,
    /// When it ended.
    pub end_ms: u64,
    /// Pairs wanted at the end of the fault (and at the end of the run) not held then.
    pub missing_at_end_of_fault: u64,
    /// Time from the end of the fault until all of those were held (null: never).
    pub recovery_ms: Option<u64>,
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Events recorded.
    pub events: u64,
    /// Msgs published.
    pub publishes: u64,
    /// Connections made.
    pub connects: u64,
    /// Dials that failed (each is retried after a backoff).
    pub dial_failures: u64,
    /// Disconnections by reason.
    pub disconnects: BTreeMap<String, u64>,
    /// Crashes.
    pub crashes: u64,
    /// Restarts.
    pub restarts: u64,
    /// Churn: went offline.
    pub offline: u64,
    /// Churn: came online.
    pub online: u64,
    /// Rejected msgs by reason.
    pub rejects: BTreeMap<String, u64>,
    /// Fault steps applied.
    pub faults_applied: u64,
    /// Notes.
    pub notes: u64,
}

/// Every metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Delivery latency, ms.
    pub latency_ms: LatencyMetrics,
    /// Convergence.
    pub convergence: ConvergenceMetrics,
    /// Bytes on the wire.
    pub bytes: BytesMetrics,
    /// Duplicates.
    pub duplicates: DuplicateMetrics,
    /// Round trips per tangle sync.
    pub round_trips: Quantiles,
    /// Store and GC.
    pub store: StoreMetrics,
    /// Recovery per fault.
    pub recovery: Vec<Recovery>,
    /// Counters.
    pub counts: Counts,
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

/// Rounds to 6 significant digits so that reports print the same everywhere; `None` for
/// non-finite values.
#[must_use]
pub fn round_sig(value: f64) -> Option<f64> {
    if !value.is_finite() {
        return None;
    }
    if value == 0.0 {
        return Some(0.0);
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "log10 of a finite f64 is within ±400"
    )]
    let magnitude = value.abs().log10().floor() as i32;
    let scale = 10_f64.powi(5 - magnitude);
    let rounded = (value * scale).round() / scale;
    Some(if rounded == 0.0 { 0.0 } else { rounded })
}

#[expect(clippy::cast_precision_loss, reason = "counts far below 2^53")]
fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    if denominator == 0 {
        None
    } else {
        round_sig(numerator as f64 / denominator as f64)
    }
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
                match self.interest.publish(t, &new) {
                    Some(index) => {
                        self.held.entry((peer, index)).or_default().push((t, None));
                    }
                    None => self.violation(
                        t,
                        ViolationKind::DoublePublish,
                        Some(peer),
                        Some(msg),
                        "the same msg ID was published twice".to_owned(),
                    ),
                }
            }
            EventKind::Store {
                peer, msg, from, ..
            } => {
                let Some(index) = self.interest.index_of(&msg) else {
                    self.violation(
                        t,
                        ViolationKind::StoredUnknown,
                        Some(peer),
                        Some(msg),
                        format!(
                            "stored a msg nobody published{}",
                            from.map(|f| format!(" (from {})", self.plan.peer_name(f)))
                                .unwrap_or_default()
                        ),
                    );
                    return Ok(());
                };
                let spans = self.held.entry((peer, index)).or_default();
                if spans.last().is_some_and(|(_, end)| end.is_none()) {
                    self.violation(
                        t,
                        ViolationKind::DoubleStore,
                        Some(peer),
                        Some(msg),
                        "stored again while already held".to_owned(),
                    );
                    return Ok(());
                }
                spans.push((t, None));
                self.deliveries += 1;
            }
            EventKind::Send {
                from, kind, bytes, ..
            } => {
                *self.bytes_by_kind.entry(kind).or_default() += bytes;
                let group = self
                    .plan
                    .peers
                    .get(from as usize)
                    .map_or_else(|| "?".to_owned(), |p| p.group.clone());
                *self
                    .bytes_by_group
                    .entry(group)
                    .or_default()
                    .entry(kind)
                    .or_default() += bytes;
                let bucket = usize::try_from(t / self.bucket_ms).unwrap_or(usize::MAX);
                if let Some(row) = self.bandwidth.get_mut(bucket) {
                    row[kind_index(kind)] += bytes;
                } else if let Some(row) = self.bandwidth.last_mut() {
                    row[kind_index(kind)] += bytes;
                }
            }
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
            } => {
                *self.gc_count.entry(action).or_default() += 1;
                *self.gc_bytes.entry(action).or_default() += bytes;
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
            EventKind::StoreSize { peer, bytes } => {
                self.store_last.insert(peer, bytes);
                self.store_max = self.store_max.max(bytes);
            }
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
            EventKind::Invalid { peer, msg, reason } => {
                self.violation(
                    t,
                    ViolationKind::InvalidStored,
                    Some(peer),
                    Some(msg),
                    reason,
                );
            }
            EventKind::Note { text, error } => {
                self.notes += 1;
                if error {
                    self.violation(t, ViolationKind::RunnerError, None, None, text);
                }
            }
        }
        Ok(())
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
        self.snapshots.insert(peer, holdings);
    }

    /// Computes metrics and checks at `end_ms` (normally the plan's duration).
    ///
    /// # Errors
    /// Trace flush errors.
    pub fn finish(self, end_ms: u64) -> io::Result<Outcome> {
        let plan = self.plan;
        let end_ms = end_ms.max(self.last_t);
        let interest = self.interest.finish(plan);
        let held = &self.held;
        let spans_of = |peer: PeerIdx, msg: usize| -> &[(u64, Option<u64>)] {
            held.get(&(peer, msg)).map_or(&[], Vec::as_slice)
        };

        // Latency and delivery counts per wanted pair.
        let mut histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_MS_MAX, 3)
            .expect("invariant: valid bounds");
        let mut latencies = Vec::new();
        let mut undelivered = 0_u64;
        let mut wanted_deliveries = 0_u64;
        for want in interest.wants() {
            let first = spans_of(want.peer, want.msg)
                .iter()
                .map(|(start, _)| *start)
                .find(|start| *start >= want.from_ms);
            match first {
                Some(stored) if want.until_ms.is_none_or(|u| stored < u) => {
                    let latency = stored - want.from_ms;
                    histogram.saturating_record(latency);
                    latencies.push(latency);
                    wanted_deliveries += 1;
                }
                Some(_) => {}
                None => {
                    if want.until_ms.is_none() {
                        undelivered += 1;
                    }
                }
            }
        }
        latencies.sort_unstable();
        let latency = LatencyMetrics {
            quantiles: quantiles_hdr(&histogram),
            undelivered,
            cdf: cdf(&latencies),
        };

        let convergence = convergence(plan, &interest, &spans_of, end_ms);
        let recovery = recovery(plan, &interest, &spans_of, end_ms);

        let deliveries = self.deliveries;
        let total: u64 = self.bytes_by_kind.values().sum();
        let bytes = BytesMetrics {
            total,
            by_kind: WireKind::ALL
                .iter()
                .map(|k| {
                    (
                        k.name().to_owned(),
                        self.bytes_by_kind.get(k).copied().unwrap_or(0),
                    )
                })
                .collect(),
            deliveries,
            wanted_deliveries,
            per_delivery: ratio(total, deliveries),
            per_delivery_by_kind: WireKind::ALL
                .iter()
                .map(|k| {
                    (
                        k.name().to_owned(),
                        ratio(self.bytes_by_kind.get(k).copied().unwrap_or(0), deliveries),
                    )
                })
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
        };
        let duplicates = DuplicateMetrics {
            count: self.duplicates,
            bytes: self.duplicate_bytes,
            per_delivery: ratio(self.duplicates, deliveries),
        };
        let round_trips = quantiles_exact(&self.round_trips);
        let peers_reporting = self.store_last.len() as u64;
        let store = StoreMetrics {
            final_mean_bytes: ratio(self.store_last.values().sum(), peers_reporting),
            final_max_bytes: self.store_last.values().max().copied(),
            max_bytes: self.store_max,
            gc_count: GcAction::ALL
                .iter()
                .map(|a| {
                    (
                        a.name().to_owned(),
                        self.gc_count.get(a).copied().unwrap_or(0),
                    )
                })
                .collect(),
            gc_bytes: GcAction::ALL
                .iter()
                .map(|a| {
                    (
                        a.name().to_owned(),
                        self.gc_bytes.get(a).copied().unwrap_or(0),
                    )
                })
                .collect(),
        };
        let counts = Counts {
            events: self.events,
            publishes: interest.msgs().len() as u64,
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
        };
        let metrics = Metrics {
            latency_ms: latency,
            convergence,
            bytes,
            duplicates,
            round_trips,
            store,
            recovery,
            counts,
        };
        let checks = check::run(&check::Inputs {
            plan,
            interest: &interest,
            held: &self.held,
            streamed: self.violations,
            snapshots: &self.snapshots,
            down: &self.down,
            end_ms,
        });
        let events = self.events;
        let trace_hash = self.sink.finish()?;
        Ok(Outcome {
            metrics,
            checks,
            trace_hash,
            events,
        })
    }
}

/// The bandwidth bucket: the sample interval, widened so there are at most
/// [`BANDWIDTH_BUCKETS_MAX`] buckets (whole seconds past 1 s).
#[must_use]
pub fn bandwidth_bucket_ms(plan: &Plan) -> u64 {
    let mut bucket = plan.sample_interval_ms.max(1);
    let wanted = plan.duration_ms.div_ceil(BANDWIDTH_BUCKETS_MAX).max(1);
    if bucket < wanted {
        bucket = if wanted > 1_000 {
            wanted.div_ceil(1_000) * 1_000
        } else {
            wanted
        };
    }
    bucket
}

fn quantiles_hdr(histogram: &Histogram<u64>) -> Quantiles {
    if histogram.is_empty() {
        return Quantiles::default();
    }
    Quantiles {
        count: histogram.len(),
        mean: round_sig(histogram.mean()),
        p50: Some(histogram.value_at_quantile(0.50)),
        p90: Some(histogram.value_at_quantile(0.90)),
        p99: Some(histogram.value_at_quantile(0.99)),
        max: Some(histogram.max()),
    }
}

/// Exact quantiles (nearest rank) of small integers.
fn quantiles_exact(values: &[u32]) -> Quantiles {
    if values.is_empty() {
        return Quantiles::default();
    }
    let mut sorted: Vec<u64> = values.iter().map(|v| u64::from(*v)).collect();
    sorted.sort_unstable();
    let rank = |q: f64| -> u64 {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "0 ≤ q·n ≤ n, n small"
        )]
        let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index]
    };
    let sum: u64 = sorted.iter().sum();
    Quantiles {
        count: sorted.len() as u64,
        mean: ratio(sum, sorted.len() as u64),
        p50: Some(rank(0.50)),
        p90: Some(rank(0.90)),
        p99: Some(rank(0.99)),
        max: sorted.last().copied(),
    }
}

/// At most [`CDF_POINTS`] points of the empirical CDF of sorted values.
fn cdf(sorted: &[u64]) -> Vec<(u64, f64)> {
    if sorted.is_empty() {
        return Vec::new();
    }
    let n = sorted.len();
    let mut points: Vec<(u64, f64)> = Vec::new();
    let step = n.div_ceil(CDF_POINTS).max(1);
    let mut i = 0;
    while i < n {
        // The last index with this value, so each point is the true fraction ≤ value.
        let value = sorted[i];
        let last = sorted.partition_point(|v| *v <= value) - 1;
        let fraction = round_sig((last + 1) as f64 / n as f64).unwrap_or(1.0);
        if points.last().is_none_or(|(v, _)| *v != value) {
            points.push((value, fraction));
        }
        i = (last + 1).max(i + step);
    }
    let last_value = sorted[n - 1];
    if points.last().is_none_or(|(v, _)| *v != last_value) {
        points.push((last_value, 1.0));
    }
    points
}

fn held_at(spans: &[(u64, Option<u64>)], t: u64) -> Option<u64> {
    spans
        .iter()
        .find(|(start, end)| *start <= t && end.is_none_or(|e| t < e))
        .map(|(start, _)| *start)
}

fn convergence<'a>(
    plan: &Plan,
    interest: &Interest,
    spans_of: &dyn Fn(PeerIdx, usize) -> &'a [(u64, Option<u64>)],
    end_ms: u64,
) -> ConvergenceMetrics {
    let step = plan.sample_interval_ms.max(1);
    let samples = usize::try_from(end_ms / step + 1).unwrap_or(1);
    // Difference arrays over sample indices: +1 at the first sample inside an interval,
    // −1 at the first sample past it.
    let mut wanted = vec![0_i64; samples + 1];
    let mut held = vec![0_i64; samples + 1];
    let first_sample = |t: u64| {
        usize::try_from(t.div_ceil(step))
            .unwrap_or(usize::MAX)
            .min(samples)
    };
    let add = |diff: &mut Vec<i64>, from: u64, until: Option<u64>| {
        let a = first_sample(from);
        let b = until.map_or(samples, first_sample);
        if a < b {
            diff[a] += 1;
            diff[b] -= 1;
        }
    };
    let mut final_times = Vec::new();
    let mut wanted_at_end = 0_u64;
    for want in interest.wants() {
        add(&mut wanted, want.from_ms, want.until_ms);
        for (start, end) in spans_of(want.peer, want.msg) {
            let from = (*start).max(want.from_ms);
            let until = match (end, want.until_ms) {
                (Some(e), Some(u)) => Some((*e).min(u)),
                (Some(e), None) => Some(*e),
                (None, u) => u,
            };
            if until.is_none_or(|u| from < u) {
                add(&mut held, from, until);
            }
        }
        if want.until_ms.is_none_or(|u| u > end_ms) {
            wanted_at_end += 1;
            if let Some(start) = held_at(spans_of(want.peer, want.msg), end_ms) {
                final_times.push(start.max(want.from_ms));
            }
        }
    }
    final_times.sort_unstable();
    let mut curve = Vec::with_capacity(samples);
    let (mut wanted_now, mut held_now) = (0_i64, 0_i64);
    for k in 0..samples {
        wanted_now += wanted[k];
        held_now += held[k];
        let t_ms = k as u64 * step;
        let done = final_times.partition_point(|d| *d <= t_ms) as u64;
        let w = u64::try_from(wanted_now).unwrap_or(0);
        let h = u64::try_from(held_now).unwrap_or(0);
        curve.push(CurvePoint {
            t_ms,
            wanted: w,
            held: h,
            coverage: ratio(h, w),
            final_fraction: ratio(done, wanted_at_end),
        });
    }
    let reach = |fraction: f64| -> Option<u64> {
        if wanted_at_end == 0 {
            return None;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "0 < fraction·n ≤ n"
        )]
        let needed = ((fraction * wanted_at_end as f64).ceil() as usize).max(1);
        final_times.get(needed - 1).copied()
    };
    let last_publish_ms = interest.msgs().iter().map(|m| m.t_ms).max();
    let t100 = reach(1.0);
    ConvergenceMetrics {
        wanted_at_end,
        held_at_end: final_times.len() as u64,
        fraction_at_end: ratio(final_times.len() as u64, wanted_at_end),
        t50_ms: reach(0.50),
        t90_ms: reach(0.90),
        t99_ms: reach(0.99),
        t100_ms: t100,
        last_publish_ms,
        settle_after_last_publish_ms: match (t100, last_publish_ms) {
            (Some(t), Some(p)) => Some(t.saturating_sub(p)),
            _ => None,
        },
        curve,
    }
}

fn recovery<'a>(
    plan: &Plan,
    interest: &Interest,
    spans_of: &dyn Fn(PeerIdx, usize) -> &'a [(u64, Option<u64>)],
    end_ms: u64,
) -> Vec<Recovery> {
    let mut out = Vec::new();
    for interval in plan.fault_intervals.iter().filter(|i| i.healed) {
        let e = interval.end_ms;
        let mut missing = 0_u64;
        let mut worst = Some(0_u64);
        for want in interest.wants() {
            if !want.at(e) || want.until_ms.is_some_and(|u| u <= end_ms) {
                continue;
            }
            let spans = spans_of(want.peer, want.msg);
            if held_at(spans, e).is_some() {
                continue;
            }
            missing += 1;
            let recovered = held_at(spans, end_ms);
            worst = match (worst, recovered) {
                (Some(w), Some(start)) => Some(w.max(start.saturating_sub(e))),
                _ => None,
            };
        }
        out.push(Recovery {
            label: interval.label.clone(),
            start_ms: interval.start_ms,
            end_ms: e,
            missing_at_end_of_fault: missing,
            recovery_ms: worst,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_sig_is_stable() {
        assert_eq!(round_sig(1.0 / 3.0), Some(0.333_333));
        assert_eq!(round_sig(123_456_789.0), Some(123_457_000.0));
        assert_eq!(round_sig(f64::NAN), None);
        assert_eq!(round_sig(0.0), Some(0.0));
    }

    #[test]
    fn cdf_ends_at_one() {
        let values: Vec<u64> = (1..=1000).collect();
        let points = cdf(&values);
        assert!(points.len() <= CDF_POINTS + 1);
        assert_eq!(points.last(), Some(&(1000, 1.0)));
        assert_eq!(cdf(&[5, 5, 5]), vec![(5, 1.0)]);
    }
}
