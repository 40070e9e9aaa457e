//! `sweep.md`: the runs that failed, then one table per summary metric with a row per cell:
//! median and quartiles beside the mean and its 95 % interval, and the range.

use std::fmt::Write as _;

use super::{Cell, MetricSummary, Sweep};
use crate::report::{Direction, SUMMARY_METRICS};

fn show(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v}"))
}

fn better(direction: Direction) -> &'static str {
    match direction {
        Direction::LowerIsBetter => "lower is better",
        Direction::HigherIsBetter => "higher is better",
        Direction::Info => "information",
    }
}

/// `sweep.md`.
#[must_use]
pub fn markdown(sweep: &Sweep) -> String {
    let runs: usize = sweep.cells.iter().map(|c| c.runs.len()).sum();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Sweep: {} — {} cell(s) × {} seed(s), {} runs (engine: {})\n",
        sweep.scenario,
        sweep.cells.len(),
        sweep.seeds.len(),
        runs,
        crate::report::engine_label(&sweep.engine, sweep.substrate.as_deref())
    );
    let _ = writeln!(md, "{} of {runs} runs failed their checks.\n", sweep.failed);
    for cell in &sweep.cells {
        for run in cell.runs.iter().filter(|r| !r.passed) {
            let _ = writeln!(
                md,
                "- failed: {} seed {} (`{}/seed-{}/report.md`)",
                cell.label, run.seed, cell.dir, run.seed
            );
        }
    }
    if sweep.failed > 0 {
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "Per metric: median and interquartile range over seeds, the mean and its 95 % \
         interval (percentile bootstrap for times, Student's t for the rest), and the range. \
         Every run's value is in `runs.csv`.\n"
    );
    for (name, _, _) in SUMMARY_METRICS {
        metric_table(&mut md, sweep, name);
    }
    md
}

fn metric_table(md: &mut String, sweep: &Sweep, name: &str) {
    let Some(first) = sweep.cells.first().and_then(|c| c.metrics.get(name)) else {
        return;
    };
    let _ = writeln!(
        md,
        "## {name} ({}, {}; interval: {})\n",
        first.unit,
        better(first.direction),
        first.interval.name()
    );
    let header: Vec<&str> = sweep.parameters.iter().map(String::as_str).collect();
    let columns = if header.is_empty() {
        "cell".to_owned()
    } else {
        header.join(" | ")
    };
    let width = header.len().max(1);
    let _ = writeln!(
        md,
        "| {columns} | n | median | IQR | mean | 95 % interval | min | max |\n|{}",
        "---|".repeat(width + 7)
    );
    for cell in &sweep.cells {
        if let Some(metric) = cell.metrics.get(name) {
            let _ = writeln!(
                md,
                "| {} | {} |",
                cell_columns(cell),
                metric_columns(metric)
            );
        }
    }
    md.push('\n');
}

fn cell_columns(cell: &Cell) -> String {
    if cell.parameters.is_empty() {
        return cell.label.clone();
    }
    cell.parameters
        .iter()
        .map(|p| p.value.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn metric_columns(m: &MetricSummary) -> String {
    let n = if m.missing > 0 {
        format!("{} ({} null)", m.n, m.missing)
    } else {
        m.n.to_string()
    };
    let iqr = match (m.q1, m.q3) {
        (Some(q1), Some(q3)) => format!("{q1} – {q3}"),
        _ => "—".to_owned(),
    };
    let interval = match (m.low, m.high) {
        (Some(low), Some(high)) => format!("{low} – {high}"),
        _ => "—".to_owned(),
    };
    format!(
        "{n} | {} | {iqr} | {} | {interval} | {} | {}",
        show(m.median),
        show(m.mean),
        show(m.min),
        show(m.max)
    )
}
