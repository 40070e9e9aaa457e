//! `compare BASE HEAD [--max-regression PCT]`: per-metric deltas between two runs (or two
//! sweeps), judged by each metric's direction, for CI gating on deterministic metrics.
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

/// Values of a `report.json` or `sweep.json`: metric → (mean, low, high).
type Values = Vec<(String, Option<f64>, Option<(f64, f64)>)>;

fn load(path: &Path) -> Result<(bool, Values), SimError> {
    let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
        path: path.to_owned(),
        source,
    })?;
    let not_json = |what: &'static str| {
        move |source| SimError::NotJson {
            path: path.to_owned(),
            what,
            source,
        }
    };
    let kind = serde_json::from_str::<serde_json::Value>(&text)
        .map_err(not_json("JSON"))?
        .get("kind")
        .and_then(|k| k.as_str().map(str::to_owned))
        .unwrap_or_default();
    match kind.as_str() {
        "run" => {
            let report = Report::read(path)?;
            Ok((
                false,
                SUMMARY_METRICS
                    .iter()
                    .map(|(name, _, _)| {
                        (
                            (*name).to_owned(),
                            report.summary.get(*name).copied().flatten(),
                            None,
                        )
                    })
                    .collect(),
            ))
        }
        "sweep" => {
            let sweep: Sweep = serde_json::from_str(&text).map_err(not_json("a sweep.json"))?;
            Ok((
                true,
                SUMMARY_METRICS
                    .iter()
                    .map(|(name, _, _)| {
                        let m = sweep.metrics.get(*name);
                        let mean = m.and_then(|m| m.mean);
                        let ci = m.and_then(|m| m.low.zip(m.high));
                        ((*name).to_owned(), mean, ci)
                    })
                    .collect(),
            ))
        }
        other => Err(SimError::UnknownKind {
            path: path.to_owned(),
            kind: other.to_owned(),
        }),
    }
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

/// Compares two files (both runs or both sweeps).
///
/// # Errors
/// Unreadable or mismatched files.
pub fn compare_files(
    base: &Path,
    head: &Path,
    max_regression_pct: Option<f64>,
) -> Result<Comparison, SimError> {
    let (base_sweep, base_values) = load(base)?;
    let (head_sweep, head_values) = load(head)?;
    if base_sweep != head_sweep {
        return Err(SimError::RunVersusSweep {
            base: base.to_owned(),
            head: head.to_owned(),
        });
    }
    let mut rows = Vec::new();
    for (((name, direction, unit), (_, b, b_ci)), (_, h, h_ci)) in
        SUMMARY_METRICS.iter().zip(base_values).zip(head_values)
    {
        let (delta, past_threshold) = judge(*direction, b, h, max_regression_pct);
        let significant = if base_sweep {
            match (b_ci, h_ci) {
                (Some((bl, bh)), Some((hl, hh))) => Some(hl > bh || hh < bl),
                _ => None,
            }
        } else {
            None
        };
        // Sweeps: a move inside the noise (overlapping intervals) is not a regression.
        let regression = past_threshold && significant != Some(false);
        rows.push(Row {
            metric: (*name).to_owned(),
            direction: *direction,
            unit: (*unit).to_owned(),
            base: b,
            head: h,
            delta_pct: delta.and_then(crate::metrics::round_sig),
            regression,
            significant,
        });
    }
    Ok(Comparison {
        max_regression_pct,
        rows,
    })
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
