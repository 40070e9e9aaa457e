//! Recovery after each fault, per protocol: the comparison's `recovery_max_ms` keeps only the
//! slowest fault of a run, which hides a protocol that recovers from a partition at once but
//! slowly from a crash. Every protocol runs the same plan for a seed, so the i-th fault of a
//! run is the same fault on every row; it is summarised over seeds like the other metrics.

use sim::report::{Direction, Report};
use sim::sweep::{MetricSummary, summarize_metric};

/// One fault of the plan and each protocol's recovery from it.
#[derive(Debug)]
pub struct FaultRecovery {
    /// The fault's label (the scenario's `label`, or the engine's description).
    pub label: String,
    /// When the fault ended, in the first seed's run (faults at fixed times end at the same
    /// time in every seed; a fault at a drawn time does not).
    pub end_ms: u64,
    /// Per protocol, in the comparison's row order: recovery in ms over seeds, a run where it
    /// never recovered counting as missing.
    pub by_protocol: Vec<(&'static str, MetricSummary)>,
}

/// The faults of `rows`' runs (each row's runs sorted by seed), in plan order. Faults are
/// matched by their position in the run; a label that differs between rows means the plans
/// differ, which the comparison never does, so the first row's labels name them.
#[must_use]
pub fn recovery_by_fault(rows: &[(&'static str, Vec<&Report>)]) -> Vec<FaultRecovery> {
    let Some((_, first_runs)) = rows.first() else {
        return Vec::new();
    };
    let Some(first) = first_runs.first() else {
        return Vec::new();
    };
    let faults = first_runs
        .iter()
        .map(|report| report.metrics.recovery.len())
        .max()
        .unwrap_or(0);
    (0..faults)
        .map(|index| {
            let named = first_runs
                .iter()
                .find_map(|report| report.metrics.recovery.get(index));
            FaultRecovery {
                label: named.map_or_else(String::new, |r| r.label.clone()),
                end_ms: first.metrics.recovery.get(index).map_or(0, |r| r.end_ms),
                by_protocol: rows
                    .iter()
                    .map(|(name, runs)| (*name, fault_summary(runs, index)))
                    .collect(),
            }
        })
        .collect()
}

/// One protocol's recovery from its runs' `index`-th fault.
fn fault_summary(runs: &[&Report], index: usize) -> MetricSummary {
    #[expect(clippy::cast_precision_loss, reason = "times far below 2^53 ms")]
    let values = runs
        .iter()
        .map(|report| {
            let recovery = report.metrics.recovery.get(index)?;
            recovery.recovery_ms.map(|ms| ms as f64)
        })
        .collect();
    summarize_metric(Direction::LowerIsBetter, "ms", values)
}
