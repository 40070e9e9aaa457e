//! The simulator's pipeline, engine-neutral: scenarios, plans, the event model, metrics,
//! checkers, reports, plots, sweeps and comparisons. An engine (`sim-fullstack`: real peers on
//! turmoil; `sim-protocol`: discrete events over the pure machines) reads a [`scenario::Scenario`] expanded to a [`plan::Plan`], feeds
//! [`trace::Event`]s into a [`metrics::Collector`], and [`pipeline::run`] hands the
//! [`metrics::Outcome`] to [`pipeline::write_report`]. This crate depends on `proto` only: no
//! node, tokio, ractor or turmoil. The `ppppp-sim` program is the `ppppp-sim` package
//! (`sim-cli/`).
//!
//! Map:
//! - [`units`], [`dist`], [`goal`]: values written in scenario files (durations with units,
//!   distributions such as `exp(3m)`, goal rules such as `post@newest-100`, follow models).
//! - [`scenario`]: the TOML model, `Scenario::load` with located errors, validation;
//!   [`limits`]: workload values against the protocol's limits and the run's size.
//! - [`rng`]: named, seeded ChaCha streams (how every random choice is derived).
//! - [`plan`]: the scenario expanded with a seed: peers, edges, follows, goals, publish,
//!   churn and fault schedules.
//! - [`trace`]: events, the JSON-lines trace and its hash.
//! - [`interest`]: who wants which msg when (goal ranges over time).
//! - [`metrics`]: the collector; latency, convergence, bytes, duplicates, round trips, store,
//!   GC, recovery.
//! - [`check`]: safety and liveness checkers, the repro line.
//! - [`report`]: `report.json` and `report.md`; [`plot`]: SVG and PNG plots.
//! - [`matrix`]: sweep axes (`--set`, `[matrix]`) expanded to validated cells.
//! - [`stats`], [`sweep`], [`compare`]: sweeps over cells and seeds (medians, quartiles,
//!   bootstrap or t intervals), regressions between comparable results.
//! - [`sweep_dir`]: a sweep's directory (manifest, cells, runs) and `merge`, which writes
//!   `sweep.json`, `sweep.md`, [`runs_csv`] and [`sweep_plot`]'s cross-run plots;
//!   [`slurm`]: the same directory run as a Slurm job array.
//! - [`key_figures`]: the table printed at the end of a run or sweep.
//! - [`pipeline`]: one run end to end; the `Engine` seam.
//! - [`workload`]: what every engine's peers are and write: keypairs, accounts, goals, post
//!   text, set and dict updates with their supersedes (so both tiers publish the same
//!   bytes); [`timers`]: the peers' timers under simulation.
//! - [`progress`]: progress on stderr in simulated time (a bar, or lines without a terminal).
//! - [`baseline`]: committed per-scenario metrics and the exact gate against them
//!   (`ppppp-sim check-baseline`).

pub mod baseline;
pub mod check;
pub mod compare;
pub mod dist;
pub mod error;
pub mod goal;
pub mod interest;
pub mod key_figures;
pub mod limits;
pub mod matrix;
pub mod metrics;
pub mod pipeline;
pub mod plan;
pub mod plot;
pub mod progress;
pub mod report;
pub mod rng;
pub mod runs_csv;
pub mod scenario;
pub mod slurm;
pub mod stats;
pub mod sweep;
pub mod sweep_dir;
pub mod sweep_plot;
pub mod timers;
pub mod trace;
pub mod units;
pub mod workload;

/// The git commit the binary was built from, when the build could tell.
#[must_use]
pub fn git_commit() -> Option<&'static str> {
    option_env!("PPPPP_SIM_GIT_COMMIT").filter(|c| !c.is_empty())
}
