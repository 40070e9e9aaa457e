//! `compare BASE HEAD [--max-regression PCT] [--allow-different]`: per-metric deltas between
//! two runs (or two sweeps), judged by each metric's direction, for CI gating on deterministic
//! metrics.
//!
//! Only like is compared with like: the two files must name the same scenario, engine and
//! plans (each run's plan hash covers the seed and every scenario value), else compare
//! refuses, unless `--allow-different` says the difference is the point (a code change that
//! changes the plan, another engine). Multi-cell sweeps are compared cell by cell.
//!
//! A metric regresses when it moves the wrong way by more than PCT percent of the base
//! value; when a gated metric was defined in the base and is null in the head (e.g. 100 %
//! convergence never reached any more); or, with a zero base, when the head is worse at all.
//! `Info` metrics are shown and never gated. For sweeps the means are compared, a change is
//! significant when the two 95 % confidence intervals do not overlap, and only significant
//! changes past the threshold regress.

use crate::error::SimError;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::report::{Direction, Report, SUMMARY_METRICS};
use crate::sweep::Sweep;

/// One metric's comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Metric name.
    pub metric: String,
    /// Direction.
    pub direction: Direction,
    /// Unit.
    pub unit: String,
    /// Base value.
    pub base: Option<f64>,
    /// Head value.
    pub head: Option<f64>,
    /// (head − base) ÷ |base| × 100; null when undefined.
    pub delta_pct: Option<f64>,
    /// Moved the wrong way past the threshold.
    pub regression: bool,
    /// Sweeps only: the confidence intervals do not overlap.
    pub significant: Option<bool>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Threshold, percent (None: report only).
    pub max_regression_pct: Option<f64>,
    /// Rows in [`SUMMARY_METRICS`] order.
    pub rows: Vec<Row>,
}

impl Comparison {
    /// Rows that regressed.
    #[must_use]
    pub fn regressions(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| r.regression).collect()
    }
}

/// One metric's value in a file: name (with the cell's label in multi-cell sweeps), mean,
/// 95 % interval.
type Value = (String, Option<f64>, Option<(f64, f64)>);

/// What a file is a result of; two files are comparable when these agree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    scenario: String,
    engine: String,
    /// The full-stack engine's network.
    substrate: Option<String>,
    /// Per run: cell label, seed and plan hash.
    plans: Vec<(String, u64, String)>,
}

/// A loaded `report.json` or `sweep.json`.
struct Loaded {
    sweep: bool,
    identity: Identity,
    values: Vec<Value>,
}

fn kind_of(path: &Path) -> Result<String, SimError> {
    let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
        path: path.to_owned(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| SimError::NotJson {
            path: path.to_owned(),
            what: "JSON",
            source,
        })?;
    Ok(value
        .get("kind")
        .and_then(|k| k.as_str().map(str::to_owned))
        .unwrap_or_default())
}

fn load(path: &Path) -> Result<Loaded, SimError> {
    match kind_of(path)?.as_str() {
        "run" => Ok(run_values(&Report::read(path)?)),
        "sweep" => Ok(sweep_values(&Sweep::read(path)?)),
        other => Err(SimError::UnknownKind {
            path: path.to_owned(),
            kind: other.to_owned(),
        }),
    }
}

fn run_values(report: &Report) -> Loaded {
    Loaded {
        sweep: false,
        identity: Identity {
            scenario: report.scenario.name.clone(),
            engine: report.engine.clone(),
            substrate: report.substrate.clone(),
            plans: vec![(
                String::new(),
                report.scenario.seed,
                report.scenario.plan_hash.clone(),
            )],
        },
        values: SUMMARY_METRICS
            .iter()
            .map(|(name, _, _)| {
                let value = report.summary.get(*name).copied().flatten();
                ((*name).to_owned(), value, None)
            })
            .collect(),
    }
}

fn sweep_values(sweep: &Sweep) -> Loaded {
    let labelled = sweep.cells.len() > 1;
    let mut values = Vec::new();
    for cell in &sweep.cells {
        for (name, _, _) in SUMMARY_METRICS {
            let m = cell.metrics.get(*name);
            let shown = if labelled {
                format!("{name} [{}]", cell.label)
            } else {
                (*name).to_owned()
            };
            values.push((
                shown,
                m.and_then(|m| m.mean),
                m.and_then(|m| m.low.zip(m.high)),
            ));
        }
    }
    let plans = sweep
        .cells
        .iter()
        .flat_map(|c| {
            c.runs
                .iter()
                .map(|r| (c.label.clone(), r.seed, r.plan_hash.clone()))
        })
        .collect();
    Loaded {
        sweep: true,
        identity: Identity {
            scenario: sweep.scenario.clone(),
            engine: sweep.engine.clone(),
            substrate: sweep.substrate.clone(),
            plans,
        },
        values,
    }
}

/// The first way two files' identities differ, as (what, base, head).
fn mismatch(base: &Identity, head: &Identity) -> Option<(&'static str, String, String)> {
    if base.scenario != head.scenario {
        return Some((
            "scenario name",
            base.scenario.clone(),
            head.scenario.clone(),
        ));
    }
    if base.engine != head.engine {
        return Some(("engine", base.engine.clone(), head.engine.clone()));
    }
    if base.substrate != head.substrate {
        let name = |s: &Option<String>| s.clone().unwrap_or_else(|| "none".to_owned());
        return Some(("substrate", name(&base.substrate), name(&head.substrate)));
    }
    let describe = |plans: &[(String, u64, String)]| -> Vec<String> {
        plans
            .iter()
            .map(|(cell, seed, hash)| {
                let cell = if cell.is_empty() {
                    String::new()
                } else {
                    format!("{cell} ")
                };
                format!("{cell}seed {seed} plan {}", &hash[..12.min(hash.len())])
            })
            .collect()
    };
    let (b, h) = (describe(&base.plans), describe(&head.plans));
    if b != h {
        let first = b.iter().zip(&h).find(|(x, y)| x != y);
        let (bx, hx) = first.map_or_else(
            || (format!("{} runs", b.len()), format!("{} runs", h.len())),
            |(x, y)| (x.clone(), y.clone()),
        );
        return Some(("plan (seed, scenario values)", bx, hx));
    }
    None
}

/// Compares two values of a metric.
#[must_use]
pub fn judge(
    direction: Direction,
    base: Option<f64>,
    head: Option<f64>,
    max_regression_pct: Option<f64>,
) -> (Option<f64>, bool) {
    let delta = match (base, head) {
        (Some(b), Some(h)) if b != 0.0 => crate::metrics::round_sig((h - b) / b.abs() * 100.0),
        (Some(b), Some(h)) if b == 0.0 && h == 0.0 => Some(0.0),
        _ => None,
    };
    let Some(threshold) = max_regression_pct else {
        return (delta, false);
    };
    let regression = match direction {
        Direction::Info => false,
        Direction::LowerIsBetter => match (base, head, delta) {
            (_, _, Some(d)) => d > threshold,
            (Some(b), Some(h), None) => h > b,
            (Some(_), None, None) => true,
            _ => false,
        },
        Direction::HigherIsBetter => match (base, head, delta) {
            (_, _, Some(d)) => d < -threshold,
            (Some(b), Some(h), None) => h < b,
            (Some(_), None, None) => true,
            _ => false,
        },
    };
    (delta, regression)
}

/// Compares two files (both runs or both sweeps). They must be results of the same scenario
/// name, engine and plans (so the same seeds and values) unless `allow_different`.
///
/// # Errors
/// Unreadable files, a run against a sweep, or results that are not comparable.
pub fn compare_files(
    base: &Path,
    head: &Path,
    max_regression_pct: Option<f64>,
    allow_different: bool,
) -> Result<Comparison, SimError> {
    let base_loaded = load(base)?;
    let head_loaded = load(head)?;
    if base_loaded.sweep != head_loaded.sweep {
        return Err(SimError::RunVersusSweep {
            base: base.to_owned(),
            head: head.to_owned(),
        });
    }
    if let Some((what, b, h)) = mismatch(&base_loaded.identity, &head_loaded.identity)
        && !allow_different
    {
        return Err(SimError::NotComparable {
            what,
            base: b,
            head: h,
        });
    }
    let infos = std::iter::repeat(SUMMARY_METRICS).flatten();
    let rows = infos
        .zip(base_loaded.values)
        .zip(head_loaded.values)
        .map(|(((_, direction, unit), (name, b, b_ci)), (_, h, h_ci))| {
            row(
                name,
                *direction,
                unit,
                (b, b_ci),
                (h, h_ci),
                max_regression_pct,
            )
        })
        .collect();
    Ok(Comparison {
        max_regression_pct,
        rows,
    })
}

type Side = (Option<f64>, Option<(f64, f64)>);

fn row(
    metric: String,
    direction: Direction,
    unit: &str,
    (b, b_ci): Side,
    (h, h_ci): Side,
    max_regression_pct: Option<f64>,
) -> Row {
    let (delta, past_threshold) = judge(direction, b, h, max_regression_pct);
    let significant = match (b_ci, h_ci) {
        (Some((bl, bh)), Some((hl, hh))) => Some(hl > bh || hh < bl),
        _ => None,
    };
    // Sweeps: a move inside the noise (overlapping intervals) is not a regression.
    let regression = past_threshold && significant != Some(false);
    Row {
        metric,
        direction,
        unit: unit.to_owned(),
        base: b,
        head: h,
        delta_pct: delta.and_then(crate::metrics::round_sig),
        regression,
        significant,
    }
}

/// A markdown table of the comparison.
#[must_use]
pub fn markdown(comparison: &Comparison) -> String {
    let mut md = String::new();
    let sweeps = comparison.rows.iter().any(|r| r.significant.is_some());
    let _ = writeln!(
        md,
        "| metric | better | base | head | Δ % | {}verdict |\n|---|---|---|---|---|{}---|",
        if sweeps { "CIs apart | " } else { "" },
        if sweeps { "---|" } else { "" }
    );
    for row in &comparison.rows {
        let better = match row.direction {
            Direction::LowerIsBetter => "lower",
            Direction::HigherIsBetter => "higher",
            Direction::Info => "info",
        };
        let show = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v}"));
        let delta = row
            .delta_pct
            .map_or_else(|| "—".to_owned(), |d| format!("{d:+.2}"));
        let verdict = if row.regression {
            "**REGRESSION**"
        } else {
            "ok"
        };
        let significant = match row.significant {
            Some(true) => "yes | ",
            Some(false) => "no | ",
            None if sweeps => "— | ",
            None => "",
        };
        let _ = writeln!(
            md,
            "| {} ({}) | {better} | {} | {} | {delta} | {significant}{verdict} |",
            row.metric,
            row.unit,
            show(row.base),
            show(row.head)
        );
    }
    match comparison.max_regression_pct {
        Some(pct) => {
            let count = comparison.regressions().len();
            let _ = writeln!(md, "\n{count} regression(s) past {pct} %.");
        }
        None => {
            let _ = writeln!(
                md,
                "\nNo threshold given (--max-regression): nothing gated."
            );
        }
    }
    md
}
