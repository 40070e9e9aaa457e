//! `runs.csv`: one row per run of a sweep — the scenario, engine, substrate (empty for the
//! protocol tier) and cell, every matrix parameter, the seed, whether the checks passed, the plan and trace hashes, then every
//! summary metric in [`SUMMARY_METRICS`] order (empty where undefined).
//!
//! The columns are stable: [`FIXED_COLUMNS`], the sweep's parameters in axis order, then
//! the metrics; a new summary metric is appended to the end of [`SUMMARY_METRICS`]' list.

use std::fmt::Write as _;

use crate::report::SUMMARY_METRICS;
use crate::sweep::Sweep;

/// The columns before the parameters.
pub const FIXED_COLUMNS: &[&str] = &["scenario", "engine", "substrate", "cell"];
/// The columns between the parameters and the metrics.
pub const RUN_COLUMNS: &[&str] = &["seed", "passed", "plan_hash", "trace_hash"];

/// The header of a sweep with these parameters.
#[must_use]
pub fn header(parameters: &[String]) -> Vec<String> {
    FIXED_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(parameters.iter().cloned())
        .chain(RUN_COLUMNS.iter().map(|c| (*c).to_owned()))
        .chain(
            SUMMARY_METRICS
                .iter()
                .map(|(name, _, _)| (*name).to_owned()),
        )
        .collect()
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn line(out: &mut String, fields: &[String]) {
    let joined: Vec<String> = fields.iter().map(|f| field(f)).collect();
    let _ = writeln!(out, "{}", joined.join(","));
}

/// The whole file.
#[must_use]
pub fn runs_csv(sweep: &Sweep) -> String {
    let mut out = String::new();
    line(&mut out, &header(&sweep.parameters));
    for cell in &sweep.cells {
        for (i, run) in cell.runs.iter().enumerate() {
            let mut row = vec![
                sweep.scenario.clone(),
                sweep.engine.clone(),
                sweep.substrate.clone().unwrap_or_default(),
                cell.dir.clone(),
            ];
            row.extend(cell.parameters.iter().map(|p| p.value.clone()));
            row.extend([
                run.seed.to_string(),
                run.passed.to_string(),
                run.plan_hash.clone(),
                run.trace_hash.clone(),
            ]);
            row.extend(SUMMARY_METRICS.iter().map(|(name, _, _)| {
                cell.metrics
                    .get(*name)
                    .and_then(|m| m.values.get(i).copied().flatten())
                    .map_or_else(String::new, |v| v.to_string())
            }));
            line(&mut out, &row);
        }
    }
    out
}
