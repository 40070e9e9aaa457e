//! Sweeps sharded as a Slurm job array: `ppppp-sim sweep … --slurm DIR` lays out DIR as a
//! local sweep would (`crate::sweep_dir`), lists the runs in `DIR/tasks.tsv`, and writes
//! `DIR/sweep.sbatch`: an array with one task per chunk of runs, each running
//! `ppppp-sim run` into the run's directory. `ppppp-sim merge DIR` then builds the outputs.
//! `docs/cluster.md` says how to use it on a cluster.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::SimError;
use crate::sweep_dir::Manifest;

/// The task list's file name: `cell<TAB>seed` per line, in manifest order.
pub const TASKS: &str = "tasks.tsv";
/// The script's file name.
pub const SCRIPT: &str = "sweep.sbatch";
/// Memory every task gets beyond its msgs (the program, plans, histograms), MiB.
pub const BASE_MEMORY_MIB: u64 = 512;

/// What the script needs beyond the manifest.
#[derive(Debug, Clone)]
pub struct ArrayOptions {
    /// The `ppppp-sim` binary the tasks run (absolute; `$PPPPP_SIM` overrides it at run time).
    pub program: String,
    /// Runs per array task.
    pub runs_per_task: usize,
    /// Memory per task, MiB ([`memory_mib`]).
    pub memory_mib: u64,
}

/// Memory per task for runs that hold about `stored_bytes` of msgs (the largest cell's
/// estimate, `crate::limits::estimate`): twice that plus [`BASE_MEMORY_MIB`].
#[must_use]
pub fn memory_mib(stored_bytes: f64) -> u64 {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "MiB"
    )]
    let msgs = (stored_bytes.max(0.0) * 2.0 / 1_048_576.0).ceil() as u64;
    BASE_MEMORY_MIB + msgs
}

/// Writes `tasks.tsv` and `sweep.sbatch` into `dir` (which must be absolute, as the tasks
/// run from Slurm's working directory). Returns the number of array tasks.
///
/// # Errors
/// File system errors.
pub fn write_array(
    dir: &Path,
    manifest: &Manifest,
    options: &ArrayOptions,
) -> Result<usize, SimError> {
    let runs = manifest.runs();
    let mut tasks = String::new();
    for (cell, seed) in &runs {
        let _ = writeln!(tasks, "{cell}\t{seed}");
    }
    let per_task = options.runs_per_task.max(1);
    let array_tasks = runs.len().div_ceil(per_task).max(1);
    let written = |path: std::path::PathBuf| move |source| SimError::Write { path, source };
    std::fs::create_dir_all(dir.join("slurm-logs")).map_err(written(dir.join("slurm-logs")))?;
    std::fs::write(dir.join(TASKS), tasks).map_err(written(dir.join(TASKS)))?;
    let script = script(dir, manifest, options, array_tasks);
    std::fs::write(dir.join(SCRIPT), script).map_err(written(dir.join(SCRIPT)))?;
    Ok(array_tasks)
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn script(dir: &Path, manifest: &Manifest, options: &ArrayOptions, array_tasks: usize) -> String {
    let dir_text = dir.display().to_string();
    let verify = if manifest.verify_all {
        " --verify-all"
    } else {
        ""
    };
    format!(
        r#"#!/usr/bin/env bash
# ppppp-sim sweep of `{scenario}` as a Slurm job array: {runs} runs ({cells} cells × {seeds} seeds),
# {per_task} per task. Submit with `sbatch {script_path}`; when every task is done, build the
# outputs with `ppppp-sim merge {dir_shown}`. Runs whose checks fail still count as done (exit 1);
# any other error fails the task.
#SBATCH --job-name=ppppp-sim-{scenario}
#SBATCH --array=0-{last_task}
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem={memory}M
#SBATCH --output={dir_shown}/slurm-logs/%A_%a.out
set -uo pipefail
dir={dir_quoted}
sim=${{PPPPP_SIM:-{program}}}
task="${{SLURM_ARRAY_TASK_ID:?run this script with sbatch, or set SLURM_ARRAY_TASK_ID}}"
first=$(( task * {per_task} + 1 ))
last=$(( first + {per_task} - 1 ))
sed -n "${{first}},${{last}}p" "$dir/{tasks}" | while IFS=$'\t' read -r cell seed; do
  "$sim" run "$dir/$cell/scenario.toml" --seed "$seed" --engine {engine}{substrate}{verify} \
    --out "$dir/$cell/seed-$seed" --quiet
  status=$?
  if [ "$status" -gt 1 ]; then
    echo "ppppp-sim run $cell seed $seed failed with exit $status" >&2
    exit "$status"
  fi
done
"#,
        scenario = manifest.scenario,
        runs = manifest.runs().len(),
        cells = manifest.cells.len(),
        seeds = manifest.seeds.len(),
        per_task = options.runs_per_task.max(1),
        script_path = dir.join(SCRIPT).display(),
        dir_shown = dir_text,
        dir_quoted = quote(&dir_text),
        last_task = array_tasks - 1,
        memory = options.memory_mib,
        program = quote(&options.program),
        tasks = TASKS,
        engine = manifest.engine,
        substrate = manifest
            .substrate
            .as_ref()
            .map_or_else(String::new, |s| format!(" --substrate {s}")),
    )
}
