//! A baseline against new runs: which metrics changed, whether each change is within its
//! tolerance, and the changes as text a reviewer (or a commit message) can read.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{Baseline, SeedRun, Tolerance, Value};
use crate::report::{Direction, metric_info};

/// Whether a change passes the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Changed, but within the metric's tolerance.
    Within,
    /// Changed past the tolerance (exact by default): the gate fails.
    Moved,
}

/// One metric of one seed that differs between the baseline and the new run.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The seed.
    pub seed: u64,
    /// The metric's name; `*` for a seed only one side has.
    pub metric: String,
    /// The baseline's value (`None`: the baseline has no such metric or seed).
    pub old: Option<Value>,
    /// The new value (`None`: the new run has no such metric or seed).
    pub new: Option<Value>,
    /// Within tolerance or not.
    pub verdict: Verdict,
}

/// Every metric that differs between `baseline` and `runs`, seed by seed, in seed and name
/// order. Empty when they agree.
#[must_use]
pub fn diff(baseline: &Baseline, runs: &[SeedRun]) -> Vec<Change> {
    let seeds: BTreeSet<u64> = baseline
        .runs
        .iter()
        .chain(runs)
        .map(|run| run.seed)
        .collect();
    let mut changes = Vec::new();
    for seed in seeds {
        let old = baseline.runs.iter().find(|run| run.seed == seed);
        let new = runs.iter().find(|run| run.seed == seed);
        match (old, new) {
            (Some(old), Some(new)) => changes.extend(seed_changes(baseline, old, new)),
            (old, new) => changes.push(Change {
                seed,
                metric: "*".to_owned(),
                old: old.map(|_| Value::Text("measured".to_owned())),
                new: new.map(|_| Value::Text("measured".to_owned())),
                verdict: Verdict::Moved,
            }),
        }
    }
    changes
}

fn seed_changes(baseline: &Baseline, old: &SeedRun, new: &SeedRun) -> Vec<Change> {
    let names: BTreeSet<&String> = old.metrics.keys().chain(new.metrics.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (before, after) = (old.metrics.get(name), new.metrics.get(name));
            if before == after {
                return None;
            }
            let tolerance = baseline.tolerances.get(name).copied().unwrap_or_default();
            let within = match (before, after) {
                (Some(Value::Number(a)), Some(Value::Number(b))) => tolerates(tolerance, *a, *b),
                _ => false,
            };
            Some(Change {
                seed: old.seed,
                metric: name.clone(),
                old: before.cloned(),
                new: after.cloned(),
                verdict: if within {
                    Verdict::Within
                } else {
                    Verdict::Moved
                },
            })
        })
        .collect()
}

fn tolerates(tolerance: Tolerance, old: f64, new: f64) -> bool {
    let moved = (new - old).abs();
    let absolute = tolerance.absolute.is_some_and(|bound| moved <= bound);
    let relative = tolerance
        .relative_pct
        .is_some_and(|pct| moved <= pct / 100.0 * old.abs());
    absolute || relative
}

/// Which way a metric should move: the summary metrics' declared direction; recovery times
/// and missing pairs are lower-is-better; verdicts and hashes have none.
fn direction(metric: &str) -> Direction {
    if let Some((direction, _)) = metric_info(metric) {
        return direction;
    }
    if metric.starts_with("recovery[") {
        return Direction::LowerIsBetter;
    }
    Direction::Info
}

/// "+12.5 %, worse" for numbers; empty otherwise.
fn movement(metric: &str, old: Option<&Value>, new: Option<&Value>) -> String {
    let (Some(Value::Number(old)), Some(Value::Number(new))) = (old, new) else {
        return String::new();
    };
    let pct = if *old == 0.0 {
        String::new()
    } else {
        format!("{:+.2} %", (new - old) / old.abs() * 100.0)
    };
    let judgement = match (direction(metric), new > old) {
        (Direction::Info, _) => "",
        (Direction::LowerIsBetter, true) | (Direction::HigherIsBetter, false) => "worse",
        (Direction::LowerIsBetter, false) | (Direction::HigherIsBetter, true) => "better",
    };
    [pct.as_str(), judgement]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The changes, one line each: seed, metric, old → new, the movement and direction, and
/// whether it passes (`moved past tolerance` / `within tolerance`).
#[must_use]
pub fn render(changes: &[Change]) -> String {
    let width = changes.iter().map(|c| c.metric.len()).max().unwrap_or(0);
    let shown = |value: &Option<Value>| {
        value
            .as_ref()
            .map_or_else(|| "(absent)".to_owned(), ToString::to_string)
    };
    let mut text = String::new();
    for change in changes {
        let verdict = match change.verdict {
            Verdict::Within => "within tolerance",
            Verdict::Moved => "MOVED past tolerance",
        };
        let movement = movement(&change.metric, change.old.as_ref(), change.new.as_ref());
        let movement = if movement.is_empty() {
            String::new()
        } else {
            format!(" ({movement})")
        };
        let _ = writeln!(
            text,
            "  seed {}  {:width$}  {} → {}{movement}  {verdict}",
            change.seed,
            change.metric,
            shown(&change.old),
            shown(&change.new),
        );
    }
    text
}
