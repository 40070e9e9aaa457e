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

//!
//! Files: this one holds the metrics' model (what `report.json` carries); `collector.rs` the
//! [`Collector`]; `compute.rs` the metrics computed at the end from held intervals;
//! `queue.rs` the per-peer queue peaks an engine hands over; `aggregate.rs` the aggregated
//! mode's counters, kept instead of held intervals per pair.

mod aggregate;
mod collector;
mod compute;
mod queue;

pub use collector::Collector;
pub use compute::bandwidth_bucket_ms;
pub use queue::QueueMetrics;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::CheckReport;

/// The largest latency the histogram holds exactly (3 significant digits); larger values
/// saturate. 30 days of simulated time.
pub const LATENCY_MS_MAX: u64 = 30 * 24 * 3_600_000;
/// Points in the latency CDF kept in the report.
pub const CDF_POINTS: usize = 200;
/// Bandwidth buckets: at most this many over the run.
pub const BANDWIDTH_BUCKETS_MAX: u64 = 200;

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
    /// Peak per-peer queues, when links have a bandwidth and the engine models it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueMetrics>,
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
pub(crate) fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    if denominator == 0 {
        None
    } else {
        round_sig(numerator as f64 / denominator as f64)
    }
}
