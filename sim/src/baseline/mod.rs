//! Deterministic performance baselines: the key metrics of a scenario's runs over a seed set,
//! committed as `benches/baselines/<scenario>.<engine>.json`, and the gate that reruns the
//! scenario and refuses any metric that moved past its tolerance (`ppppp-sim check-baseline`,
//! docs/regression-ci.md).
//!
//! The metrics are in simulated time and bytes, so a run of the same code gives them exactly
//! again: the default tolerance is none at all, and a change is either a change of behaviour
//! or of the scenario. `--bless` accepts it by rewriting the file ([`Baseline::blessed`]).
//!
//! Files: this one holds the file's model and what is measured ([`metrics_of`], [`measure`]);
//! `diff.rs` compares a baseline with new runs and renders the changes.

mod diff;

pub use diff::{Change, Verdict, diff, render};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::SimError;
use crate::pipeline::{Engine, RunOptions};
use crate::plan::Plan;
use crate::report::{Report, SUMMARY_METRICS};
use crate::scenario::Scenario;

/// The version of a baseline file's shape.
pub const BASELINE_VERSION: u32 = 1;

/// Where the shipped baselines live, relative to the repository root.
pub const DEFAULT_DIR: &str = "benches/baselines";

/// One metric's value: a number, a word (verdicts, the plan hash), or null (undefined in
/// this run, e.g. a latency without deliveries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A number (already rounded to 6 significant digits by the report).
    Number(f64),
    /// A word.
    Text(String),
    /// Undefined.
    Null,
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Number(number) => write!(f, "{number}"),
            Value::Text(text) => f.write_str(text),
            Value::Null => f.write_str("null"),
        }
    }
}

/// How far a numeric metric may move before the gate fails. Absent: exactly nowhere. A
/// change passes when it is within either bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// Largest allowed |new − old|, in the metric's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute: Option<f64>,
    /// Largest allowed |new − old| ÷ |old|, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_pct: Option<f64>,
}

/// The metrics of one seed's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRun {
    /// The seed.
    pub seed: u64,
    /// Metric name → value (names: [`metrics_of`]).
    pub metrics: BTreeMap<String, Value>,
}

/// A baseline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// [`BASELINE_VERSION`].
    pub baseline_version: u32,
    /// The scenario's `name`.
    pub scenario: String,
    /// The scenario file, relative to the repository root (where the gate runs).
    pub scenario_path: String,
    /// The engine: `fullstack` or `protocol`.
    pub engine: String,
    /// The full-stack engine's network (`fabric`, `turmoil`); absent for the protocol tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substrate: Option<String>,
    /// Per-metric tolerances, written by hand (kept by `--bless`); every other metric must
    /// match exactly.
    #[serde(default)]
    pub tolerances: BTreeMap<String, Tolerance>,
    /// One entry per seed of the seed set, in seed order.
    pub runs: Vec<SeedRun>,
}

/// What can go wrong with a baseline file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// Reading, writing or running failed.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The file holds another shape version.
    #[error("{}: baseline_version {found} (this build reads {expected}); rerun with --bless", path.display())]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    /// A tolerance names a metric no run has (a typo would otherwise loosen nothing).
    #[error("{}: a tolerance names `{metric}`, which is not a metric of this baseline", path.display())]
    UnknownTolerance { path: PathBuf, metric: String },
    /// A tolerance bound that is negative or not a number.
    #[error("{}: the tolerance of `{metric}` must be finite and ≥ 0", path.display())]
    BadTolerance { path: PathBuf, metric: String },
    /// A baseline without runs.
    #[error("{}: no runs (an empty seed set)", path.display())]
    NoRuns { path: PathBuf },
}

/// The file name of a scenario's baseline for an engine: `<scenario>.<engine>.json`.
#[must_use]
pub fn file_name(scenario: &str, engine: &str) -> String {
    format!("{scenario}.{engine}.json")
}

/// The metrics a baseline keeps from a report: every flat summary metric (bytes per delivery
/// by kind, duplicates, round trips, convergence, latency, recovery maximum), the recovery
/// after each fault, the check verdicts and the plan hash.
#[must_use]
pub fn metrics_of(report: &Report) -> BTreeMap<String, Value> {
    let mut metrics = BTreeMap::new();
    for (name, _, _) in SUMMARY_METRICS {
        let value = report.summary.get(*name).copied().flatten();
        metrics.insert((*name).to_owned(), value.map_or(Value::Null, Value::Number));
    }
    for (index, recovery) in report.metrics.recovery.iter().enumerate() {
        let key = |what: &str| format!("recovery[{index}: {}].{what}", recovery.label);
        #[expect(clippy::cast_precision_loss, reason = "simulated ms far below 2^53")]
        let ms = recovery
            .recovery_ms
            .map_or(Value::Null, |ms| Value::Number(ms as f64));
        metrics.insert(key("recovery_ms"), ms);
        #[expect(clippy::cast_precision_loss, reason = "pair counts far below 2^53")]
        let missing = Value::Number(recovery.missing_at_end_of_fault as f64);
        metrics.insert(key("missing_at_end_of_fault"), missing);
    }
    let checks = &report.checks;
    let verdict = |enabled: bool, passed: bool| {
        Value::Text(match (enabled, passed) {
            (false, _) => "off".to_owned(),
            (true, true) => "pass".to_owned(),
            (true, false) => "FAIL".to_owned(),
        })
    };
    metrics.insert("verdict.checks".to_owned(), verdict(true, checks.passed));
    let safety = verdict(checks.safety.enabled, checks.safety.passed);
    metrics.insert("verdict.safety".to_owned(), safety);
    let liveness = checks.liveness.enabled && checks.liveness.checked;
    let liveness = verdict(liveness, checks.liveness.passed);
    metrics.insert("verdict.liveness".to_owned(), liveness);
    let delivery = verdict(checks.delivery.enabled, checks.delivery.passed);
    metrics.insert("verdict.delivery".to_owned(), delivery);
    let plan_hash = Value::Text(report.scenario.plan_hash.clone());
    metrics.insert("plan_hash".to_owned(), plan_hash);
    metrics
}

/// Runs `scenario` once per seed with `engine` (writing nothing) and keeps the metrics.
///
/// # Errors
/// Whatever stops a run.
pub fn measure(
    scenario: &Scenario,
    scenario_path: &str,
    seeds: &[u64],
    engine: &dyn Engine,
) -> Result<Vec<SeedRun>, SimError> {
    let options = RunOptions {
        scenario_path: scenario_path.to_owned(),
        out: None,
        trace: false,
        // The gate prints its own line per file; per-run progress would only fill CI logs.
        progress: false,
    };
    seeds
        .iter()
        .map(|seed| {
            let report = crate::pipeline::run(&Plan::build(scenario, *seed), engine, &options)?;
            Ok(SeedRun {
                seed: *seed,
                metrics: metrics_of(&report),
            })
        })
        .collect()
}

impl Baseline {
    /// Reads and checks a baseline file.
    ///
    /// # Errors
    /// Unreadable file, bad JSON, another version, an empty seed set, or a tolerance that
    /// names no metric or is negative.
    pub fn read(path: &Path) -> Result<Baseline, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.to_owned(),
            source,
        })?;
        let baseline: Baseline =
            serde_json::from_str(&text).map_err(|source| SimError::NotJson {
                path: path.to_owned(),
                what: "a baseline file",
                source,
            })?;
        baseline.validate(path)?;
        Ok(baseline)
    }

    fn validate(&self, path: &Path) -> Result<(), BaselineError> {
        if self.baseline_version != BASELINE_VERSION {
            return Err(BaselineError::Version {
                path: path.to_owned(),
                found: self.baseline_version,
                expected: BASELINE_VERSION,
            });
        }
        if self.runs.is_empty() {
            return Err(BaselineError::NoRuns {
                path: path.to_owned(),
            });
        }
        for (metric, tolerance) in &self.tolerances {
            if !self.runs.iter().any(|run| run.metrics.contains_key(metric)) {
                return Err(BaselineError::UnknownTolerance {
                    path: path.to_owned(),
                    metric: metric.clone(),
                });
            }
            let bounds = [tolerance.absolute, tolerance.relative_pct];
            if bounds.iter().flatten().any(|b| !b.is_finite() || *b < 0.0) {
                return Err(BaselineError::BadTolerance {
                    path: path.to_owned(),
                    metric: metric.clone(),
                });
            }
        }
        Ok(())
    }

    /// The seeds of the seed set.
    #[must_use]
    pub fn seeds(&self) -> Vec<u64> {
        self.runs.iter().map(|run| run.seed).collect()
    }

    /// This baseline with `runs` as its new runs (what `--bless` writes); the tolerances stay.
    #[must_use]
    pub fn blessed(&self, runs: Vec<SeedRun>) -> Baseline {
        Baseline {
            baseline_version: BASELINE_VERSION,
            runs,
            ..self.clone()
        }
    }

    /// The JSON text (pretty, newline-terminated, keys in a fixed order).
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(self).expect("invariant: a baseline serializes");
        text.push('\n');
        text
    }

    /// Writes the file.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, path: &Path) -> Result<(), SimError> {
        let written = |source| SimError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(written)?;
        }
        std::fs::write(path, self.to_json()).map_err(written)
    }
}
