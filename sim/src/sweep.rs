//! Seed sweeps: many `report.json` (one per seed) → each summary metric's mean and 95 %
//! confidence interval (Student's t) → `sweep.json` and `sweep.md`.

use crate::error::SimError;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::metrics::round_sig;
use crate::report::{Direction, Report, SCHEMA_VERSION, SUMMARY_METRICS};
use crate::stats::summarize;

/// One metric across seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Direction.
    pub direction: Direction,
    /// Unit.
    pub unit: String,
    /// Runs where the metric was defined.
    pub n: u64,
    /// Runs where it was null.
    pub missing: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Sample standard deviation.
    pub sd: Option<f64>,
    /// Half-width of the 95 % confidence interval of the mean.
    pub ci95: Option<f64>,
    /// mean − ci95.
    pub low: Option<f64>,
    /// mean + ci95.
    pub high: Option<f64>,
    /// Smallest.
    pub min: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

/// One seed's line in a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepRun {
    /// Seed.
    pub seed: u64,
    /// Checks passed.
    pub passed: bool,
    /// Trace hash.
    pub trace_hash: String,
    /// Repro line.
    pub repro: String,
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
    /// Runs, by seed.
    pub runs: Vec<SweepRun>,
    /// Runs whose checks failed.
    pub failed: u64,
    /// Summary metric → statistics.
    pub metrics: BTreeMap<String, MetricSummary>,
}

/// Aggregates reports of one scenario (any order; sorted by seed).
///
/// # Errors
/// No reports, or reports of different scenarios.
pub fn aggregate(reports: &[Report]) -> Result<Sweep, SimError> {
    let first = reports.first().ok_or(SimError::NothingToAggregate)?;
    if let Some(other) = reports
        .iter()
        .find(|report| report.scenario.name != first.scenario.name)
    {
        return Err(SimError::MixedScenarios {
            first: first.scenario.name.clone(),
            other: other.scenario.name.clone(),
        });
    }
    let mut sorted: Vec<&Report> = reports.iter().collect();
    sorted.sort_by_key(|r| r.scenario.seed);
    let mut metrics = BTreeMap::new();
    for (name, direction, unit) in SUMMARY_METRICS {
        let values: Vec<f64> = sorted
            .iter()
            .filter_map(|r| r.summary.get(*name).copied().flatten())
            .collect();
        let missing = sorted.len() as u64 - values.len() as u64;
        let summary = summarize(&values);
        metrics.insert(
            (*name).to_owned(),
            MetricSummary {
                direction: *direction,
                unit: (*unit).to_owned(),
                n: values.len() as u64,
                missing,
                mean: summary.and_then(|s| round_sig(s.mean)),
                sd: summary.and_then(|s| round_sig(s.sd)),
                ci95: summary.and_then(|s| s.ci95).and_then(round_sig),
                low: summary.and_then(|s| s.low).and_then(round_sig),
                high: summary.and_then(|s| s.high).and_then(round_sig),
                min: summary.and_then(|s| round_sig(s.min)),
                max: summary.and_then(|s| round_sig(s.max)),
            },
        );
    }
    let runs: Vec<SweepRun> = sorted
        .iter()
        .map(|r| SweepRun {
            seed: r.scenario.seed,
            passed: r.checks.passed,
            trace_hash: r.trace_hash.clone(),
            repro: r.repro.clone(),
        })
        .collect();
    Ok(Sweep {
        schema_version: SCHEMA_VERSION,
        kind: "sweep".to_owned(),
        scenario: first.scenario.name.clone(),
        engine: if sorted.iter().all(|r| r.engine == first.engine) {
            first.engine.clone()
        } else {
            "mixed".to_owned()
        },
        failed: runs.iter().filter(|r| !r.passed).count() as u64,
        runs,
        metrics,
    })
}

impl Sweep {
    /// The JSON text.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("invariant: sweep serializes");
        text.push('\n');
        text
    }
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v}"))
}

/// `sweep.md`.
#[must_use]
pub fn markdown(sweep: &Sweep) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Sweep: {} over {} seeds ({} engine)\n",
        sweep.scenario,
        sweep.runs.len(),
        sweep.engine
    );
    let _ = writeln!(
        md,
        "{} of {} runs failed their checks.\n",
        sweep.failed,
        sweep.runs.len()
    );
    for run in sweep.runs.iter().filter(|r| !r.passed) {
        let _ = writeln!(md, "- failed: `{}`", run.repro);
    }
    let _ = writeln!(
        md,
        "\nMean ± half-width of the 95 % confidence interval (Student's t).\n"
    );
    let _ = writeln!(
        md,
        "| metric | unit | better | n | mean | ± 95 % CI | min | max |\n|---|---|---|---|---|---|---|---|"
    );
    for (name, m) in &sweep.metrics {
        let better = match m.direction {
            Direction::LowerIsBetter => "lower",
            Direction::HigherIsBetter => "higher",
            Direction::Info => "—",
        };
        let _ = writeln!(
            md,
            "| {name} | {} | {better} | {}{} | {} | {} | {} | {} |",
            m.unit,
            m.n,
            if m.missing > 0 {
                format!(" ({} null)", m.missing)
            } else {
                String::new()
            },
            cell(m.mean),
            cell(m.ci95),
            cell(m.min),
            cell(m.max)
        );
    }
    md
}
