//! `ppppp-sim compare-protocols SCENARIO --protocols a,b,… [--seeds A..=B] [--jobs N]
//! [--out DIR]`: every protocol × seed on the protocol tier — every row on its one engine,
//! behind one replication seam, one plan per seed for all — then one
//! comparison (`protocols_report.rs`) and overlaid plots (sim's sweep plots, one cell per
//! protocol).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use sim::plan::Plan;
use sim::progress::Progress;
use sim::report::Report;
use sim::scenario::Scenario;
use sim::sweep::{CellRuns, Parameter};
use sim_protocol::replicated::RunStats;
use sim_protocol::rows::Row;

use crate::protocols_report::{Comparison, RowRuns};
use crate::run_pool::run_pool;

/// What `compare-protocols` was asked.
#[derive(Debug)]
pub struct CompareRequest<'a> {
    pub scenario_path: &'a Path,
    pub scenario: Scenario,
    pub protocols: &'a str,
    pub seeds: Vec<u64>,
    pub jobs: Option<usize>,
    pub out: Option<PathBuf>,
    pub quiet: bool,
}

/// Parses `a,b,…` (or `all`) into rows, in the order given.
///
/// # Errors
/// An unknown or repeated name.
pub fn parse_rows(text: &str) -> anyhow::Result<Vec<Row>> {
    if text.trim() == "all" {
        return Ok(Row::all());
    }
    let mut rows = Vec::new();
    for name in text.split(',').map(str::trim) {
        let row = Row::from_name(name).with_context(|| {
            let known: Vec<&str> = Row::all().into_iter().map(Row::name).collect();
            format!(
                "unknown protocol `{name}`; the protocols are {}",
                known.join(", ")
            )
        })?;
        anyhow::ensure!(!rows.contains(&row), "protocol `{name}` named twice");
        rows.push(row);
    }
    Ok(rows)
}

/// Runs the comparison and writes it; exit 1 when a run failed its checks.
///
/// # Errors
/// Bad input, a run that could not finish, or files that cannot be written.
pub fn compare_protocols(request: &CompareRequest<'_>) -> anyhow::Result<ExitCode> {
    let scenario = &request.scenario;
    let rows = parse_rows(request.protocols)?;
    let seeds = &request.seeds;
    let out = request.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports")
            .join(&scenario.name)
            .join("protocols")
    });
    let plans: Vec<Plan> = seeds.iter().map(|s| Plan::build(scenario, *s)).collect();
    let runs = run_all(request, &rows, &plans)?;
    let row_runs: Vec<RowRuns> = rows
        .iter()
        .map(|row| RowRuns {
            row: *row,
            runs: runs
                .iter()
                .filter(|(r, _, _)| r == row)
                .map(|(_, report, stats)| (report.clone(), *stats))
                .collect(),
        })
        .collect();
    let comparison = Comparison::new(&scenario.name, seeds, &row_runs)?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    comparison.write(&out)?;
    let cells: Vec<CellRuns> = row_runs
        .iter()
        .map(|row| CellRuns {
            dir: row.row.name().to_owned(),
            parameters: vec![Parameter {
                path: "protocol".to_owned(),
                value: row.row.name().to_owned(),
            }],
            reports: row.runs.iter().map(|(report, _)| report.clone()).collect(),
        })
        .collect();
    let sweep = sim::sweep::aggregate(cells.clone())?;
    sim::sweep_plot::render_all(&sweep, &cells, &out)?;
    if !request.quiet {
        println!("{}", comparison.console_table());
        println!("wrote {}", out.join("protocols.md").display());
    }
    Ok(if comparison.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Every protocol × seed, several at once (each run single-threaded), in a fixed order.
fn run_all(
    request: &CompareRequest<'_>,
    rows: &[Row],
    plans: &[Plan],
) -> anyhow::Result<Vec<(Row, Report, RunStats)>> {
    use rayon::prelude::*;
    let pool = run_pool(request.jobs, "comparison")?;
    let work: Vec<(Row, &Plan)> = rows
        .iter()
        .flat_map(|row| plans.iter().map(move |plan| (*row, plan)))
        .collect();
    let total_ms: u64 = work.iter().map(|(_, plan)| plan.duration_ms).sum();
    let progress = if request.quiet {
        Progress::hidden()
    } else {
        Progress::new("compare-protocols", work.len() as u64, total_ms)
    };
    let path = request.scenario_path.display().to_string();
    let results: Vec<anyhow::Result<(Row, Report, RunStats)>> = pool.install(|| {
        work.par_iter()
            .map(|(row, plan)| {
                let child = progress.child();
                let (report, stats) = row
                    .run(plan, &path, &child)
                    .with_context(|| format!("{} seed {}", row.name(), plan.seed))?;
                child.run_done(plan.duration_ms);
                Ok((*row, report, stats))
            })
            .collect()
    });
    progress.finish();
    results.into_iter().collect()
}
