//! The comparison `compare-protocols` writes: per metric, each protocol's mean over seeds
//! with a 95 % interval (sim's sweep statistics: the percentile bootstrap for times,
//! Student's t for the rest), as `protocols.md`, `protocols.json` and `protocols.csv`.
//! No paths and no wall-clock values, so the same runs give the same bytes.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use sim::metrics::round_sig;
use sim::report::{Direction, Report};
use sim::sweep::{MetricSummary, summarize_metric};
use sim_protocol::replicated::RunStats;
use sim_protocol::rows::Row;

use crate::protocols_recovery::{FaultRecovery, recovery_by_fault};

/// The runs of one protocol.
#[derive(Debug)]
pub struct RowRuns {
    pub row: Row,
    pub runs: Vec<(Report, RunStats)>,
}

/// The comparison's metrics: name, what it is, unit.
const METRICS: &[(&str, &str, &str)] = &[
    (
        "bytes_per_delivery",
        "bytes on the wire per delivery, all",
        "B",
    ),
    ("bytes_per_delivery_msgs", "… payload (items, msgs)", "B"),
    (
        "bytes_per_delivery_bloom",
        "… summary (notes, clocks, fingerprints, vectors, blooms)",
        "B",
    ),
    (
        "bytes_per_delivery_control",
        "… control (session control, handshakes, keepalives)",
        "B",
    ),
    (
        "duplicates_per_delivery",
        "duplicates per delivery",
        "ratio",
    ),
    ("messages_per_delivery", "messages per delivery", "ratio"),
    ("convergence_t50_ms", "convergence t50", "ms"),
    ("convergence_t90_ms", "convergence t90", "ms"),
    ("convergence_t100_ms", "convergence t100", "ms"),
    (
        "fraction_at_end",
        "wanted pairs held at the end",
        "fraction",
    ),
    ("latency_p50_ms", "delivery latency p50", "ms"),
    ("latency_p90_ms", "delivery latency p90", "ms"),
    ("recovery_max_ms", "slowest recovery after a fault", "ms"),
    (
        "liveness_missing",
        "wanted pairs missing at the liveness deadline",
        "pairs",
    ),
    (
        "store_final_mean_bytes",
        "store size per peer at the end, in each protocol's own format",
        "B",
    ),
    (
        "queue_peak_p50_bytes",
        "peak per-peer send queue, median peer (links with a bandwidth only)",
        "B",
    ),
    (
        "queue_peak_max_bytes",
        "peak per-peer send queue, largest peer (links with a bandwidth only)",
        "B",
    ),
];

/// One run's value of a comparison metric.
fn value(report: &Report, stats: RunStats, name: &str) -> Option<f64> {
    let get = |key: &str| report.summary.get(key).copied().flatten();
    match name {
        "messages_per_delivery" => {
            let deliveries = get("deliveries").filter(|d| *d > 0.0)?;
            #[expect(clippy::cast_precision_loss, reason = "counts far below 2^53")]
            let messages = stats.messages as f64;
            round_sig(messages / deliveries)
        }
        "bytes_per_wanted_delivery" => {
            let bytes = &report.metrics.bytes;
            #[expect(clippy::cast_precision_loss, reason = "counts far below 2^53")]
            let (total, wanted) = (bytes.total as f64, bytes.wanted_deliveries as f64);
            (wanted > 0.0).then(|| total / wanted).and_then(round_sig)
        }
        "bytes_per_delivery_control" => {
            let parts = [
                "bytes_per_delivery_sync_control",
                "bytes_per_delivery_handshake",
                "bytes_per_delivery_keepalive",
            ];
            let sum: Option<f64> = parts.iter().map(|p| get(p)).sum();
            sum.and_then(round_sig)
        }
        "queue_peak_p50_bytes" | "queue_peak_max_bytes" => {
            let peaks = &report.metrics.queue.as_ref()?.peak_bytes;
            let bytes = if name == "queue_peak_p50_bytes" {
                peaks.p50
            } else {
                peaks.max
            };
            #[expect(clippy::cast_precision_loss, reason = "queues far below 2^53 bytes")]
            bytes.map(|b| b as f64)
        }
        _ => get(name),
    }
}

/// One protocol's line.
#[derive(Debug)]
struct RowSummary {
    name: &'static str,
    mapping: &'static str,
    seeds: Vec<u64>,
    passed: Vec<bool>,
    liveness: Vec<bool>,
    trace_hashes: Vec<String>,
    messages: Vec<u64>,
    metrics: Vec<MetricSummary>,
}

/// The comparison.
#[derive(Debug)]
pub struct Comparison {
    scenario: String,
    seeds: Vec<u64>,
    rows: Vec<RowSummary>,
    recovery: Vec<FaultRecovery>,
}

impl Comparison {
    /// Aggregates every protocol's runs.
    ///
    /// # Errors
    /// A protocol without runs.
    pub fn new(scenario: &str, seeds: &[u64], rows: &[RowRuns]) -> anyhow::Result<Comparison> {
        let mut summaries = Vec::new();
        let mut sorted_runs = Vec::new();
        for row in rows {
            anyhow::ensure!(!row.runs.is_empty(), "{} has no runs", row.row.name());
            let mut runs: Vec<&(Report, RunStats)> = row.runs.iter().collect();
            runs.sort_by_key(|(report, _)| report.scenario.seed);
            let metrics = METRICS
                .iter()
                .map(|(name, _, unit)| {
                    let values = runs.iter().map(|(r, s)| value(r, *s, name)).collect();
                    let direction = if *name == "fraction_at_end" {
                        Direction::HigherIsBetter
                    } else {
                        Direction::LowerIsBetter
                    };
                    summarize_metric(direction, unit, values)
                })
                .collect();
            summaries.push(RowSummary {
                name: row.row.name(),
                mapping: row.row.mapping(),
                seeds: runs.iter().map(|(r, _)| r.scenario.seed).collect(),
                passed: runs.iter().map(|(r, _)| r.checks.passed).collect(),
                liveness: runs.iter().map(|(r, _)| r.checks.liveness.passed).collect(),
                trace_hashes: runs.iter().map(|(r, _)| r.trace_hash.clone()).collect(),
                messages: runs.iter().map(|(_, s)| s.messages).collect(),
                metrics,
            });
            sorted_runs.push((row.row.name(), runs.iter().map(|(r, _)| r).collect()));
        }
        Ok(Comparison {
            scenario: scenario.to_owned(),
            seeds: seeds.to_vec(),
            rows: summaries,
            recovery: recovery_by_fault(&sorted_runs),
        })
    }

    /// Runs whose checks failed, over all protocols.
    #[must_use]
    pub fn failed(&self) -> usize {
        self.rows
            .iter()
            .map(|row| row.passed.iter().filter(|p| !**p).count())
            .sum()
    }

    /// Writes `protocols.json`, `protocols.md` and `protocols.csv` into `dir`.
    ///
    /// # Errors
    /// Files that cannot be written.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        for (name, text) in [
            ("protocols.json", self.to_json()?),
            ("protocols.md", self.markdown()),
            ("protocols.csv", self.csv()),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    fn to_json(&self) -> anyhow::Result<String> {
        let mut metrics = serde_json::Map::new();
        for (index, (name, label, unit)) in METRICS.iter().enumerate() {
            let mut by_row = serde_json::Map::new();
            for row in &self.rows {
                by_row.insert(
                    row.name.to_owned(),
                    serde_json::to_value(&row.metrics[index])?,
                );
            }
            let entry = serde_json::json!({"label": label, "unit": unit, "protocols": by_row});
            metrics.insert((*name).to_owned(), entry);
        }
        let protocols: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|row| {
                serde_json::json!({
                    "name": row.name,
                    "mapping": row.mapping,
                    "seeds": row.seeds,
                    "passed": row.passed,
                    "liveness_passed": row.liveness,
                    "messages": row.messages,
                    "trace_hashes": row.trace_hashes,
                })
            })
            .collect();
        let mut recovery = Vec::new();
        for fault in &self.recovery {
            let mut by_row = serde_json::Map::new();
            for (name, summary) in &fault.by_protocol {
                by_row.insert((*name).to_owned(), serde_json::to_value(summary)?);
            }
            recovery.push(serde_json::json!({
                "label": fault.label,
                "end_ms": fault.end_ms,
                "unit": "ms",
                "protocols": by_row,
            }));
        }
        let document = serde_json::json!({
            "kind": "protocols",
            "scenario": self.scenario,
            "seeds": self.seeds,
            "protocols": protocols,
            "metrics": metrics,
            "recovery_by_fault": recovery,
        });
        let mut text = serde_json::to_string_pretty(&document)?;
        text.push('\n');
        Ok(text)
    }

    fn csv(&self) -> String {
        let mut text = "protocol,metric,unit,n,mean,low,high,median,min,max\n".to_owned();
        for row in &self.rows {
            for ((name, _, unit), m) in METRICS.iter().zip(&row.metrics) {
                csv_line(&mut text, row.name, name, unit, m);
            }
        }
        // Faults are numbered from 1 in plan order; their labels are in the JSON and markdown.
        for (index, fault) in self.recovery.iter().enumerate() {
            let metric = format!("recovery_ms_fault_{}", index + 1);
            for (name, m) in &fault.by_protocol {
                csv_line(&mut text, name, &metric, "ms", m);
            }
        }
        text
    }

    fn markdown(&self) -> String {
        let mut text = format!(
            "# Protocols on `{}`, seeds {}\n\n\
             Mean over seeds with its 95 % interval (percentile bootstrap for times, Student's t \
             otherwise); `—` where the metric is undefined (e.g. a protocol that never reaches \
             100 %). Every row: the same plan, network model and metric definitions.\n\n",
            self.scenario,
            seeds_text(&self.seeds)
        );
        text.push_str("## Checks\n\n| protocol | runs | checks passed | liveness passed |\n|---|---:|---:|---:|\n");
        for row in &self.rows {
            let count = |v: &[bool]| v.iter().filter(|p| **p).count();
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} |",
                row.name,
                row.passed.len(),
                count(&row.passed),
                count(&row.liveness)
            );
        }
        for (index, (name, label, unit)) in METRICS.iter().enumerate() {
            let _ = write!(
                text,
                "\n## {label} (`{name}`, {unit})\n\n| protocol | mean | 95 % interval | median | n |\n|---|---:|---:|---:|---:|\n"
            );
            for row in &self.rows {
                let m = &row.metrics[index];
                let _ = writeln!(
                    text,
                    "| {} | {} | {} | {} | {} |",
                    row.name,
                    number(m.mean),
                    interval(m),
                    number(m.median),
                    m.n
                );
            }
        }
        self.recovery_markdown(&mut text);
        text.push_str("\n## What each protocol is given\n\n");
        for row in &self.rows {
            let _ = writeln!(text, "- **{}**: {}.", row.name, row.mapping);
        }
        text
    }

    /// One table per fault: each protocol's recovery from it.
    fn recovery_markdown(&self, text: &mut String) {
        for (index, fault) in self.recovery.iter().enumerate() {
            let _ = write!(
                text,
                "\n## Recovery after fault {} ({}, ended at {} ms in seed {}; ms)\n\n\
                 | protocol | mean | 95 % interval | median | n | never recovered |\n\
                 |---|---:|---:|---:|---:|---:|\n",
                index + 1,
                fault.label,
                fault.end_ms,
                self.seeds.first().copied().unwrap_or_default(),
            );
            for (name, m) in &fault.by_protocol {
                let _ = writeln!(
                    text,
                    "| {name} | {} | {} | {} | {} | {} |",
                    number(m.mean),
                    interval(m),
                    number(m.median),
                    m.n,
                    m.missing
                );
            }
        }
    }

    /// A short table for the terminal: the headline metrics' means.
    #[must_use]
    pub fn console_table(&self) -> String {
        let headline = [0_usize, 4, 5, 6, 9, 10];
        let mut text = format!("{:<16}", "protocol");
        for index in headline {
            let _ = write!(text, " {:>24}", METRICS[index].0);
        }
        for row in &self.rows {
            let _ = write!(text, "\n{:<16}", row.name);
            for index in headline {
                let _ = write!(text, " {:>24}", number(row.metrics[index].mean));
            }
        }
        text
    }
}

fn csv_line(text: &mut String, protocol: &str, metric: &str, unit: &str, m: &MetricSummary) {
    let show = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let _ = writeln!(
        text,
        "{protocol},{metric},{unit},{},{},{},{},{},{},{}",
        m.n,
        show(m.mean),
        show(m.low),
        show(m.high),
        show(m.median),
        show(m.min),
        show(m.max)
    );
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v}"))
}

fn interval(metric: &MetricSummary) -> String {
    match (metric.low, metric.high) {
        (Some(low), Some(high)) => format!("[{low}, {high}]"),
        _ => "—".to_owned(),
    }
}

fn seeds_text(seeds: &[u64]) -> String {
    let contiguous = seeds.windows(2).all(|w| w[1] == w[0] + 1);
    match (seeds.first(), seeds.last()) {
        (Some(first), Some(last)) if seeds.len() > 1 && contiguous => format!("{first}..={last}"),
        _ => seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}
