//! The report of one run: `report.json`'s model (versioned, documented in
//! `docs/report-schema.md`), assembled from a plan and an outcome. [`markdown`] renders it as
//! `report.md`, [`crate::plot`] as plots; [`crate::pipeline::write_report`] writes them.
//!
//! Determinism: the JSON holds no wall-clock values; maps are `BTreeMap`s and structs
//! serialize in declaration order; every float is rounded to 6 significant digits before it
//! is written. So the same scenario, seed and code give byte-identical files.

mod markdown;

pub use markdown::markdown;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::check::{CheckReport, repro_line};
use crate::error::SimError;
use crate::metrics::{Metrics, Outcome, round_sig};
use crate::plan::Plan;
use crate::scenario::{CollectorMode, FaultAction, Reinitiation, Role, SyncMethod, Transport};

/// The version of `report.json`'s shape.
pub const SCHEMA_VERSION: u32 = 2;

/// Which way a metric should move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Smaller is better (latency, bytes, times).
    LowerIsBetter,
    /// Larger is better (coverage).
    HigherIsBetter,
    /// Informational only; never gated.
    Info,
}

/// The flat summary metrics (`summary` in `report.json`), with their direction and unit.
/// Sweeps aggregate and compare gates exactly these.
pub const SUMMARY_METRICS: &[(&str, Direction, &str)] = &[
    ("latency_p50_ms", Direction::LowerIsBetter, "ms"),
    ("latency_p90_ms", Direction::LowerIsBetter, "ms"),
    ("latency_p99_ms", Direction::LowerIsBetter, "ms"),
    ("latency_max_ms", Direction::LowerIsBetter, "ms"),
    ("latency_mean_ms", Direction::LowerIsBetter, "ms"),
    ("undelivered", Direction::LowerIsBetter, "pairs"),
    ("convergence_t50_ms", Direction::LowerIsBetter, "ms"),
    ("convergence_t90_ms", Direction::LowerIsBetter, "ms"),
    ("convergence_t99_ms", Direction::LowerIsBetter, "ms"),
    ("convergence_t100_ms", Direction::LowerIsBetter, "ms"),
    (
        "settle_after_last_publish_ms",
        Direction::LowerIsBetter,
        "ms",
    ),
    ("fraction_at_end", Direction::HigherIsBetter, "fraction"),
    ("bytes_total", Direction::LowerIsBetter, "B"),
    ("bytes_per_delivery", Direction::LowerIsBetter, "B"),
    ("bytes_per_delivery_msgs", Direction::LowerIsBetter, "B"),
    (
        "bytes_per_delivery_sync_control",
        Direction::LowerIsBetter,
        "B",
    ),
    ("bytes_per_delivery_bloom", Direction::LowerIsBetter, "B"),
    (
        "bytes_per_delivery_handshake",
        Direction::LowerIsBetter,
        "B",
    ),
    (
        "bytes_per_delivery_keepalive",
        Direction::LowerIsBetter,
        "B",
    ),
    ("deliveries", Direction::Info, "msgs"),
    ("duplicates_per_delivery", Direction::LowerIsBetter, "ratio"),
    ("round_trips_mean", Direction::LowerIsBetter, "round trips"),
    ("store_final_mean_bytes", Direction::Info, "B"),
    ("gc_actions", Direction::Info, "actions"),
    ("recovery_max_ms", Direction::LowerIsBetter, "ms"),
    ("safety_violations", Direction::LowerIsBetter, "violations"),
    ("liveness_missing", Direction::LowerIsBetter, "pairs"),
    ("delivery_missing", Direction::LowerIsBetter, "pairs"),
    ("delivery_slowest_ms", Direction::LowerIsBetter, "ms"),
];

/// The direction and unit of a summary metric.
#[must_use]
pub fn metric_info(name: &str) -> Option<(Direction, &'static str)> {
    SUMMARY_METRICS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, d, u)| (*d, *u))
}

/// A group in the scenario summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Peers.
    pub count: u32,
}

/// A fault interval in the scenario summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSummary {
    /// Start.
    pub start_ms: u64,
    /// End.
    pub end_ms: u64,
    /// Label.
    pub label: String,
    /// Action.
    pub action: FaultAction,
    /// Ended before the run did.
    pub healed: bool,
}

/// What was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    /// Name.
    pub name: String,
    /// The scenario file as given.
    pub path: String,
    /// Seed.
    pub seed: u64,
    /// Run length.
    pub duration_ms: u64,
    /// turmoil tick.
    pub tick_ms: u64,
    /// Transport.
    pub transport: Transport,
    /// The sync machine's re-initiation policy (absent: the default, targeted).
    #[serde(default, skip_serializing_if = "Reinitiation::is_default")]
    pub reinitiation: Reinitiation,
    /// How peers synced (absent: pzp-sync).
    #[serde(default, skip_serializing_if = "SyncMethod::is_default")]
    pub sync: SyncMethod,
    /// Peers.
    pub peers: u64,
    /// Connections in the plan.
    pub edges: u64,
    /// Groups.
    pub groups: Vec<GroupSummary>,
    /// Msgs in the plan's publish schedule.
    pub planned_publishes: u64,
    /// Fault intervals.
    pub faults: Vec<FaultSummary>,
    /// SHA-256 of the plan's JSON (`ppppp-sim plan`).
    pub plan_hash: String,
    /// Sampling interval of the curves.
    pub sample_interval_ms: u64,
    /// What the collector kept: absent for `per-pair`; `aggregated` reports leave out the
    /// metrics and checks that need each pair (docs/simulation.md).
    #[serde(default, skip_serializing_if = "CollectorMode::is_default")]
    pub collector: CollectorMode,
    /// Liveness check instant.
    pub liveness_deadline_ms: u64,
    /// Latency CDF drawn with a log x axis.
    pub latency_log_x: bool,
    /// First and last churn transition, if any peer churns.
    pub churn_window_ms: Option<(u64, u64)>,
}

/// Where the numbers come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// Git commit at build time, if known.
    pub git_commit: Option<String>,
    /// The sim crate's version.
    pub sim_version: String,
}

/// `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always `run`.
    pub kind: String,
    /// The engine that made the events: `fullstack` (real nodes on turmoil) or `protocol`
    /// (the discrete-event engine over the pure machines).
    pub engine: String,
    /// The full-stack engine's network (`fabric`, `turmoil`); absent for the protocol tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substrate: Option<String>,
    /// What was run.
    pub scenario: ScenarioSummary,
    /// Build.
    pub build: BuildInfo,
    /// The command that reproduces this run.
    pub repro: String,
    /// SHA-256 of the event trace.
    pub trace_hash: String,
    /// Flat metrics for sweeps and compare ([`SUMMARY_METRICS`]); null where undefined.
    pub summary: BTreeMap<String, Option<f64>>,
    /// Every metric.
    pub metrics: Metrics,
    /// Safety and liveness.
    pub checks: CheckReport,
}

/// How the run was made.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The scenario file as given on the command line.
    pub scenario_path: String,
    /// The engine's name ([`crate::pipeline::Engine::name`]).
    pub engine: &'static str,
    /// The engine's substrate ([`crate::pipeline::Engine::substrate`]).
    pub substrate: Option<&'static str>,
}

/// An engine's name with its substrate, when it has one: `fullstack on fabric`, `protocol`.
#[must_use]
pub fn engine_label(engine: &str, substrate: Option<&str>) -> String {
    match substrate {
        Some(substrate) => format!("{engine} on {substrate}"),
        None => engine.to_owned(),
    }
}

#[expect(clippy::cast_precision_loss, reason = "report values far below 2^53")]
fn f(value: u64) -> Option<f64> {
    Some(value as f64)
}

fn summary(metrics: &Metrics, checks: &CheckReport) -> BTreeMap<String, Option<f64>> {
    let latency = &metrics.latency_ms.quantiles;
    let convergence = &metrics.convergence;
    let bytes = &metrics.bytes;
    let per_kind = |kind: &str| bytes.per_delivery_by_kind.get(kind).copied().flatten();
    let mut values: Vec<(&str, Option<f64>)> = vec![
        ("latency_p50_ms", latency.p50.and_then(f)),
        ("latency_p90_ms", latency.p90.and_then(f)),
        ("latency_p99_ms", latency.p99.and_then(f)),
        ("latency_max_ms", latency.max.and_then(f)),
        ("latency_mean_ms", latency.mean),
        ("undelivered", f(metrics.latency_ms.undelivered)),
        ("convergence_t50_ms", convergence.t50_ms.and_then(f)),
        ("convergence_t90_ms", convergence.t90_ms.and_then(f)),
        ("convergence_t99_ms", convergence.t99_ms.and_then(f)),
        ("convergence_t100_ms", convergence.t100_ms.and_then(f)),
        (
            "settle_after_last_publish_ms",
            convergence.settle_after_last_publish_ms.and_then(f),
        ),
        ("fraction_at_end", convergence.fraction_at_end),
        ("bytes_total", f(bytes.total)),
        ("bytes_per_delivery", bytes.per_delivery),
        ("bytes_per_delivery_msgs", per_kind("msgs")),
        ("bytes_per_delivery_sync_control", per_kind("sync_control")),
        ("bytes_per_delivery_bloom", per_kind("bloom")),
        ("bytes_per_delivery_handshake", per_kind("handshake")),
        ("bytes_per_delivery_keepalive", per_kind("keepalive")),
        ("deliveries", f(bytes.deliveries)),
        ("duplicates_per_delivery", metrics.duplicates.per_delivery),
        ("round_trips_mean", metrics.round_trips.mean),
        ("store_final_mean_bytes", metrics.store.final_mean_bytes),
        ("gc_actions", f(metrics.store.gc_count.values().sum())),
        ("recovery_max_ms", recovery_max(metrics)),
    ];
    values.extend(check_values(checks));
    values
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.and_then(round_sig)))
        .collect()
}

/// The largest recovery time, `None` if there was none or one fault did not recover.
fn recovery_max(metrics: &Metrics) -> Option<f64> {
    if metrics.recovery.is_empty() || metrics.recovery.iter().any(|r| r.recovery_ms.is_none()) {
        return None;
    }
    metrics
        .recovery
        .iter()
        .filter_map(|r| r.recovery_ms)
        .max()
        .and_then(f)
}

/// The checks' summary metrics.
fn check_values(checks: &CheckReport) -> Vec<(&'static str, Option<f64>)> {
    vec![
        ("safety_violations", f(checks.safety.violation_count)),
        (
            "liveness_missing",
            if checks.liveness.checked {
                f(checks.liveness.missing)
            } else {
                None
            },
        ),
        (
            "delivery_missing",
            checks
                .delivery
                .enabled
                .then(|| f(checks.delivery.missing))
                .flatten(),
        ),
        (
            "delivery_slowest_ms",
            (checks.delivery.enabled && checks.delivery.delivered > 0)
                .then(|| f(checks.delivery.slowest_ms))
                .flatten(),
        ),
    ]
}

impl Report {
    /// Assembles the report of one run.
    #[must_use]
    pub fn new(plan: &Plan, outcome: &Outcome, info: &RunInfo) -> Report {
        let commit = crate::git_commit();
        let plan_hash = hex::encode(Sha256::digest(plan.to_json().as_bytes()));
        Report {
            schema_version: SCHEMA_VERSION,
            kind: "run".to_owned(),
            engine: info.engine.to_owned(),
            substrate: info.substrate.map(str::to_owned),
            scenario: ScenarioSummary {
                name: plan.scenario.clone(),
                path: info.scenario_path.clone(),
                seed: plan.seed,
                duration_ms: plan.duration_ms,
                tick_ms: plan.tick_ms,
                transport: plan.transport,
                reinitiation: plan.reinitiation,
                sync: plan.sync,
                peers: plan.peers.len() as u64,
                edges: plan.edges.len() as u64,
                groups: plan
                    .groups
                    .iter()
                    .map(|g| GroupSummary {
                        name: g.name.clone(),
                        role: g.role,
                        count: u32::try_from(g.peers.len()).unwrap_or(u32::MAX),
                    })
                    .collect(),
                planned_publishes: plan.publishes.len() as u64,
                faults: plan
                    .fault_intervals
                    .iter()
                    .map(|i| FaultSummary {
                        start_ms: i.start_ms,
                        end_ms: i.end_ms,
                        label: i.label.clone(),
                        action: i.action,
                        healed: i.healed,
                    })
                    .collect(),
                plan_hash,
                sample_interval_ms: plan.sample_interval_ms,
                collector: plan.collector,
                liveness_deadline_ms: plan.check.deadline_ms,
                latency_log_x: plan.latency_log_x,
                churn_window_ms: plan
                    .churn
                    .first()
                    .zip(plan.churn.last())
                    .map(|(first, last)| (first.t_ms, last.t_ms)),
            },
            build: BuildInfo {
                git_commit: commit.map(str::to_owned),
                sim_version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            repro: repro_line(
                &info.scenario_path,
                plan.seed,
                (info.engine, info.substrate),
                commit,
            ),
            trace_hash: outcome.trace_hash.clone(),
            summary: summary(&outcome.metrics, &outcome.checks),
            metrics: outcome.metrics.clone(),
            checks: outcome.checks.clone(),
        }
    }

    /// The JSON text (pretty, newline-terminated).
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("invariant: report serializes");
        text.push('\n');
        text
    }

    /// Reads a `report.json`.
    ///
    /// # Errors
    /// Unreadable file, bad JSON, or another schema version.
    pub fn read(path: &Path) -> Result<Report, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.to_owned(),
            source,
        })?;
        let report: Report = serde_json::from_str(&text).map_err(|source| SimError::NotJson {
            path: path.to_owned(),
            what: "a report.json",
            source,
        })?;
        if report.schema_version != SCHEMA_VERSION {
            return Err(SimError::SchemaVersion {
                path: path.to_owned(),
                found: report.schema_version,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(report)
    }

    /// The plot title suffix (scenario, seed, engine).
    #[must_use]
    pub fn title_suffix(&self) -> String {
        format!(
            "{}, seed {}, {}",
            self.scenario.name,
            self.scenario.seed,
            self.engine_label()
        )
    }

    /// The engine, with its substrate when it has one (`fullstack on fabric`).
    #[must_use]
    pub fn engine_label(&self) -> String {
        engine_label(&self.engine, self.substrate.as_deref())
    }
}
