//! `ppppp-sim sweep` and `ppppp-sim merge`: a matrix of cells × seeds run here (in parallel,
//! each run single-threaded) or written out as a Slurm array, and merged into sweep outputs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use sim::matrix::{self, Cell};
use sim::pipeline::{Engine, RunOptions};
use sim::plan::Plan;
use sim::progress::Progress;
use sim::sweep::Sweep;
use sim::sweep_dir::{self, Manifest};

use crate::run_pool::run_pool;

/// What `sweep` was asked.
pub struct SweepRequest<'a> {
    /// The scenario file.
    pub scenario: &'a Path,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// `--set` arguments.
    pub sets: &'a [String],
    /// Parallel runs.
    pub jobs: Option<usize>,
    /// Output directory.
    pub out: Option<PathBuf>,
    /// `--slurm DIR`.
    pub slurm: Option<PathBuf>,
    /// Runs per array task.
    pub runs_per_task: usize,
    /// No progress, no table.
    pub quiet: bool,
    /// Refuses a cell that would not fit in this machine's memory.
    pub check_memory: fn(&sim::scenario::Scenario, &Path) -> anyhow::Result<()>,
}

/// Expands the matrix, every cell validated (and checked against memory) before anything
/// runs.
pub fn cells(request: &SweepRequest<'_>) -> anyhow::Result<Vec<Cell>> {
    let axes = request
        .sets
        .iter()
        .map(|set| matrix::parse_set(set))
        .collect::<Result<Vec<_>, _>>()?;
    let cells = matrix::expand_file(request.scenario, &axes)
        .with_context(|| format!("{}", request.scenario.display()))?;
    for cell in &cells {
        (request.check_memory)(&cell.scenario, request.scenario)
            .with_context(|| format!("cell {}", sim::sweep::cell_label(&cell.parameters)))?;
    }
    Ok(cells)
}

/// Runs a sweep here, or writes its Slurm array.
pub fn sweep(
    request: &SweepRequest<'_>,
    engine: &'static dyn Engine,
    verify_all: bool,
) -> anyhow::Result<ExitCode> {
    let cells = cells(request)?;
    let name = cells
        .first()
        .map(|c| c.scenario.name.clone())
        .unwrap_or_default();
    let manifest = Manifest::new(
        &cells,
        &request.seeds,
        (engine.name(), engine.substrate()),
        verify_all,
    );
    if let Some(dir) = &request.slurm {
        return write_slurm(dir, &manifest, &cells, request.runs_per_task);
    }
    let out = request
        .out
        .clone()
        .unwrap_or_else(|| Path::new("reports").join(&name).join("sweep"));
    sweep_dir::prepare(&out, &manifest, &cells)?;
    run_all(&out, &manifest, &cells, engine, request)?;
    finish(&out, request.quiet)
}

fn run_all(
    out: &Path,
    manifest: &Manifest,
    cells: &[Cell],
    engine: &'static dyn Engine,
    request: &SweepRequest<'_>,
) -> anyhow::Result<()> {
    use rayon::prelude::*;
    let pool = run_pool(request.jobs, "sweep")?;
    let runs = manifest.runs();
    let total_ms: u64 = runs
        .iter()
        .filter_map(|(dir, _)| cells.iter().find(|c| &c.dir == dir))
        .map(|c| c.scenario.duration.ms())
        .sum();
    let progress = if request.quiet {
        Progress::hidden()
    } else {
        Progress::new(
            &format!("{} sweep", manifest.scenario),
            runs.len() as u64,
            total_ms,
        )
    };
    let results: Vec<Result<(), sim::error::SimError>> = pool.install(|| {
        runs.par_iter()
            .map(|(dir, seed)| {
                let cell = cells
                    .iter()
                    .find(|c| &c.dir == dir)
                    .expect("invariant: runs name cells");
                // The repro line names the file that reproduces the run: the scenario as
                // given without a matrix (so reports do not depend on --out), else the cell's.
                let scenario_path = if cell.parameters.is_empty() {
                    request.scenario.to_path_buf()
                } else {
                    sweep_dir::scenario_file(out, dir)
                };
                let options = RunOptions {
                    scenario_path: scenario_path.display().to_string(),
                    out: Some(sweep_dir::run_dir(out, dir, *seed)),
                    trace: false,
                    progress: false,
                };
                let plan = Plan::build(&cell.scenario, *seed);
                sim::pipeline::run_reporting(&plan, engine, &options, &progress.child()).map(|_| ())
            })
            .collect()
    });
    progress.finish();
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(())
}

/// Merges `dir` and prints the key figures; exit 1 when a run failed its checks.
pub fn finish(dir: &Path, quiet: bool) -> anyhow::Result<ExitCode> {
    let sweep = sweep_dir::merge(dir)?;
    let runs: usize = sweep.cells.iter().map(|c| c.runs.len()).sum();
    if !quiet {
        crate::stdout::print_out(&sim::key_figures::sweep_table(&sweep))?;
    }
    crate::stdout::print_out(&format!(
        "{}: {} cell(s) × {} seed(s), {} of {runs} runs failed — sweep in {}\n",
        sweep.scenario,
        sweep.cells.len(),
        sweep.seeds.len(),
        sweep.failed,
        dir.display()
    ))?;
    print_failures(&sweep);
    Ok(if sweep.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_failures(sweep: &Sweep) {
    for cell in &sweep.cells {
        for run in cell.runs.iter().filter(|r| !r.passed) {
            eprintln!(
                "FAILED {} seed {}: see {}/seed-{}/report.md",
                cell.label, run.seed, cell.dir, run.seed
            );
        }
    }
}

fn write_slurm(
    dir: &Path,
    manifest: &Manifest,
    cells: &[Cell],
    runs_per_task: usize,
) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let program = std::env::current_exe()
        .context("cannot find this program's path for the array script")?
        .display()
        .to_string();
    let largest = cells
        .iter()
        .map(|c| sim::limits::estimate(&c.scenario).stored_bytes)
        .fold(0.0, f64::max);
    sweep_dir::prepare(&dir, manifest, cells)?;
    let tasks = sim::slurm::write_array(
        &dir,
        manifest,
        &sim::slurm::ArrayOptions {
            program,
            runs_per_task,
            memory_mib: sim::slurm::memory_mib(largest),
        },
    )?;
    crate::stdout::print_out(&format!(
        "{} runs in {tasks} array task(s): sbatch {}\nthen: ppppp-sim merge {}\n",
        manifest.runs().len(),
        dir.join(sim::slurm::SCRIPT).display(),
        dir.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}
