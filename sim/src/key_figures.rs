//! The short table printed at the end of `run`, `sweep` and `merge`: the figures a reader
//! looks at first (delivery latency, convergence, recovery after faults, cost per delivery).

use std::fmt::Write as _;

use crate::report::Report;
use crate::sweep::Sweep;

/// The key figures, in the order shown.
pub const KEY_METRICS: &[&str] = &[
    "latency_p50_ms",
    "latency_p99_ms",
    "undelivered",
    "convergence_t100_ms",
    "fraction_at_end",
    "recovery_max_ms",
    "bytes_per_delivery",
];

fn show(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v}"))
}

/// One run's key figures.
#[must_use]
pub fn run_table(report: &Report) -> String {
    let mut text = String::new();
    for name in KEY_METRICS {
        let value = report.summary.get(*name).copied().flatten();
        let _ = writeln!(text, "  {name:<22} {}", show(value));
    }
    text
}

/// A sweep's key figures: per cell, median [95 % interval of the mean].
#[must_use]
pub fn sweep_table(sweep: &Sweep) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "  median [95 % interval of the mean] over seeds");
    for cell in &sweep.cells {
        let _ = writeln!(
            text,
            "  {} ({} runs, {} failed)",
            cell.label,
            cell.runs.len(),
            cell.failed
        );
        for name in KEY_METRICS {
            let Some(m) = cell.metrics.get(*name) else {
                continue;
            };
            let interval = match (m.low, m.high) {
                (Some(low), Some(high)) => format!(" [{low} – {high}]"),
                _ => String::new(),
            };
            let _ = writeln!(text, "    {name:<22} {}{interval}", show(m.median));
        }
    }
    text
}
