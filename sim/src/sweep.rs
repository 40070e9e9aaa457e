//! Sweeps: many `report.json` (cells of a parameter matrix × seeds) → per cell and summary
//! metric the per-seed values, median and quartiles, mean, and a 95 % confidence interval of
//! the mean → `sweep.json` ([`Sweep`]) and `sweep.md` ([`markdown`]).
//!
//! Intervals: the percentile bootstrap for metrics in milliseconds (latencies, convergence,
//! recovery: heavy-tailed over seeds, where Student's t gives negative lower bounds), Student's
//! t for the rest (byte and count ratios, close to normal over seeds).
//!
//! A sweep holds no paths and no wall-clock values, so the same reports give the same bytes
//! wherever they were run (a local sweep and a merged Slurm array agree).

mod markdown;

pub use markdown::markdown;

use crate::error::SimError;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::round_sig;
use crate::report::{Direction, Report, SCHEMA_VERSION, SUMMARY_METRICS};
use crate::stats::{bootstrap_mean_ci95, quartiles, summarize};

/// How a metric's 95 % interval of the mean is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntervalMethod {
    /// Mean ± t·sd/√n.
    StudentT,
    /// The 2.5th–97.5th percentiles of resampled means.
    Bootstrap,
}

impl IntervalMethod {
    /// The method for a metric of this unit: the bootstrap for times, t for the rest.
    #[must_use]
    pub fn for_unit(unit: &str) -> IntervalMethod {
        if unit == "ms" {
            IntervalMethod::Bootstrap
        } else {
            IntervalMethod::StudentT
        }
    }

    /// Its name in tables.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            IntervalMethod::StudentT => "Student's t",
            IntervalMethod::Bootstrap => "percentile bootstrap",
        }
    }
}

/// One metric of one cell across seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Direction.
    pub direction: Direction,
    /// Unit.
    pub unit: String,
    /// Per-seed values, in the cell's seed order (null where undefined).
    pub values: Vec<Option<f64>>,
    /// Runs where the metric was defined.
    pub n: u64,
    /// Runs where it was null.
    pub missing: u64,
    /// Median.
    pub median: Option<f64>,
    /// 25th percentile.
    pub q1: Option<f64>,
    /// 75th percentile.
    pub q3: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Sample standard deviation.
    pub sd: Option<f64>,
    /// How `low` and `high` were computed.
    pub interval: IntervalMethod,
    /// Student's t only: half-width of the 95 % interval.
    pub ci95: Option<f64>,
    /// Lower bound of the 95 % interval of the mean.
    pub low: Option<f64>,
    /// Upper bound of the 95 % interval of the mean.
    pub high: Option<f64>,
    /// Smallest.
    pub min: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

/// One run's line in a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepRun {
    /// Seed.
    pub seed: u64,
    /// Checks passed.
    pub passed: bool,
    /// SHA-256 of the plan.
    pub plan_hash: String,
    /// Trace hash.
    pub trace_hash: String,
}

/// A matrix parameter's value in a cell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Parameter {
    /// The scenario field, e.g. `group.peer.count`.
    pub path: String,
    /// Its value as written, e.g. `20` or `50ms`.
    pub value: String,
}

/// One cell of the matrix: its parameters, runs and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// `path=value` pairs joined by spaces (`base` with no matrix).
    pub label: String,
    /// Its directory in the sweep's output (`cell-01`, …).
    pub dir: String,
    /// Parameters, in matrix axis order.
    pub parameters: Vec<Parameter>,
    /// Runs, by seed.
    pub runs: Vec<SweepRun>,
    /// Runs whose checks failed.
    pub failed: u64,
    /// Summary metric → statistics.
    pub metrics: BTreeMap<String, MetricSummary>,
}

/// `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// Same as `report.json`'s.
    pub schema_version: u32,
    /// Always `sweep`.
    pub kind: String,
    /// Scenario name.
    pub scenario: String,
    /// The engine of the runs (`fullstack`, `protocol`; `mixed` when they differ).
    pub engine: String,
    /// The full-stack engine's network (`fabric`, `turmoil`; `mixed` when the runs' differ);
    /// absent for the protocol tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substrate: Option<String>,
    /// The matrix axes (scenario fields), in order; empty for a plain seed sweep.
    pub parameters: Vec<String>,
    /// Seeds of every cell.
    pub seeds: Vec<u64>,
    /// Runs whose checks failed, over all cells.
    pub failed: u64,
    /// Cells, in matrix order.
    pub cells: Vec<Cell>,
}

/// The reports of one cell, as given to [`aggregate`].
#[derive(Debug, Clone)]
pub struct CellRuns {
    /// Its directory name.
    pub dir: String,
    /// Its parameters.
    pub parameters: Vec<Parameter>,
    /// Its reports (any order; sorted by seed).
    pub reports: Vec<Report>,
}

/// The label of a cell with these parameters.
#[must_use]
pub fn cell_label(parameters: &[Parameter]) -> String {
    if parameters.is_empty() {
        return "base".to_owned();
    }
    parameters
        .iter()
        .map(|p| format!("{}={}", p.path, p.value))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Aggregates the reports of one scenario over seeds, as one cell without parameters.
///
/// # Errors
/// No reports, or reports of different scenarios.
pub fn aggregate_seeds(reports: &[Report]) -> Result<Sweep, SimError> {
    aggregate(vec![CellRuns {
        dir: "cell-1".to_owned(),
        parameters: Vec::new(),
        reports: reports.to_vec(),
    }])
}

/// Aggregates cells of one scenario.
///
/// # Errors
/// No reports, or reports of different scenarios.
pub fn aggregate(cells: Vec<CellRuns>) -> Result<Sweep, SimError> {
    let all: Vec<&Report> = cells.iter().flat_map(|c| &c.reports).collect();
    let first = *all.first().ok_or(SimError::NothingToAggregate)?;
    if let Some(other) = all.iter().find(|r| r.scenario.name != first.scenario.name) {
        return Err(SimError::MixedScenarios {
            first: first.scenario.name.clone(),
            other: other.scenario.name.clone(),
        });
    }
    let engine = if all.iter().all(|r| r.engine == first.engine) {
        first.engine.clone()
    } else {
        "mixed".to_owned()
    };
    let substrate = if all.iter().all(|r| r.substrate == first.substrate) {
        first.substrate.clone()
    } else {
        Some("mixed".to_owned())
    };
    let scenario = first.scenario.name.clone();
    let parameters = cells
        .first()
        .map(|c| c.parameters.iter().map(|p| p.path.clone()).collect())
        .unwrap_or_default();
    let cells: Vec<Cell> = cells.into_iter().map(aggregate_cell).collect();
    let mut seeds: Vec<u64> = cells
        .first()
        .map(|c| c.runs.iter().map(|r| r.seed).collect())
        .unwrap_or_default();
    seeds.dedup();
    Ok(Sweep {
        schema_version: SCHEMA_VERSION,
        kind: "sweep".to_owned(),
        scenario,
        engine,
        substrate,
        parameters,
        seeds,
        failed: cells.iter().map(|c| c.failed).sum(),
        cells,
    })
}

fn aggregate_cell(mut cell: CellRuns) -> Cell {
    cell.reports.sort_by_key(|r| r.scenario.seed);
    let metrics = SUMMARY_METRICS
        .iter()
        .map(|(name, direction, unit)| {
            let values: Vec<Option<f64>> = cell
                .reports
                .iter()
                .map(|r| r.summary.get(*name).copied().flatten())
                .collect();
            (
                (*name).to_owned(),
                summarize_metric(*direction, unit, values),
            )
        })
        .collect();
    let runs: Vec<SweepRun> = cell
        .reports
        .iter()
        .map(|r| SweepRun {
            seed: r.scenario.seed,
            passed: r.checks.passed,
            plan_hash: r.scenario.plan_hash.clone(),
            trace_hash: r.trace_hash.clone(),
        })
        .collect();
    Cell {
        label: cell_label(&cell.parameters),
        dir: cell.dir,
        parameters: cell.parameters,
        failed: runs.iter().filter(|r| !r.passed).count() as u64,
        runs,
        metrics,
    }
}

/// The statistics of one metric's per-seed values.
#[must_use]
pub fn summarize_metric(
    direction: Direction,
    unit: &str,
    values: Vec<Option<f64>>,
) -> MetricSummary {
    let defined: Vec<f64> = values.iter().copied().flatten().collect();
    let summary = summarize(&defined);
    let quartiles = quartiles(&defined);
    let interval = IntervalMethod::for_unit(unit);
    let (ci95, bounds) = match interval {
        IntervalMethod::StudentT => (
            summary.and_then(|s| s.ci95),
            summary.and_then(|s| s.low.zip(s.high)),
        ),
        IntervalMethod::Bootstrap => (None, bootstrap_mean_ci95(&defined)),
    };
    MetricSummary {
        direction,
        unit: unit.to_owned(),
        n: defined.len() as u64,
        missing: (values.len() - defined.len()) as u64,
        values,
        median: quartiles.and_then(|q| round_sig(q.median)),
        q1: quartiles.and_then(|q| round_sig(q.q1)),
        q3: quartiles.and_then(|q| round_sig(q.q3)),
        mean: summary.and_then(|s| round_sig(s.mean)),
        sd: summary.and_then(|s| round_sig(s.sd)),
        interval,
        ci95: ci95.and_then(round_sig),
        low: bounds.and_then(|(low, _)| round_sig(low)),
        high: bounds.and_then(|(_, high)| round_sig(high)),
        min: summary.and_then(|s| round_sig(s.min)),
        max: summary.and_then(|s| round_sig(s.max)),
    }
}

impl Sweep {
    /// The JSON text.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("invariant: sweep serializes");
        text.push('\n');
        text
    }

    /// Reads a `sweep.json`.
    ///
    /// # Errors
    /// Unreadable file, bad JSON, or another schema version.
    pub fn read(path: &std::path::Path) -> Result<Sweep, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.to_owned(),
            source,
        })?;
        let sweep: Sweep = serde_json::from_str(&text).map_err(|source| SimError::NotJson {
            path: path.to_owned(),
            what: "a sweep.json",
            source,
        })?;
        if sweep.schema_version != SCHEMA_VERSION {
            return Err(SimError::SchemaVersion {
                path: path.to_owned(),
                found: sweep.schema_version,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(sweep)
    }
}
