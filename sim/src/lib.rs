//! The simulator: scenarios, plans, the turmoil runner, the event model, metrics, checkers,
//! reports, plots, sweeps and comparisons. The runner that puts real peers on turmoil reads a
//! [`scenario::Scenario`], expands it to a [`plan::Plan`], feeds [`trace::Event`]s into a
//! [`metrics::Collector`], and hands the [`metrics::Outcome`] to [`pipeline::write_report`].
//!
//! Map:
//! - [`units`], [`dist`], [`goal`]: values written in scenario files (durations with units,
//!   distributions such as `exp(3m)`, goal rules such as `post@newest-100`, follow models).
//! - [`scenario`]: the TOML model, `Scenario::load` with located errors, validation.
//! - [`rng`]: named, seeded ChaCha streams (how every random choice is derived).
//! - [`plan`]: the scenario expanded with a seed: peers, edges, follows, goals, publish,
//!   churn and fault schedules.
//! - [`trace`]: events, the JSON-lines trace and its hash.
//! - [`interest`]: who wants which msg when (goal ranges over time).
//! - [`metrics`]: the collector; latency, convergence, bytes, duplicates, round trips, store,
//!   GC, recovery.
//! - [`check`]: safety and liveness checkers, the repro line.
//! - [`report`]: `report.json` and `report.md`; [`plot`]: SVG and PNG plots.
//! - [`stats`], [`sweep`], [`compare`]: seed sweeps with confidence intervals, regressions.
//! - [`synthetic`]: a toy delivery model that exercises the pipeline without real peers.
//! - [`pipeline`]: one run end to end; the `Engine` seam.
//! - [`runner`]: the turmoil engine — real peers (`node::peer::run`) on simulated TCP
//!   ([`runner::net::TurmoilNet`]) over stores that survive crashes
//!   ([`runner::store::SharedStore`]).
//! - [`progress`]: the stderr progress bar in simulated time.
//! - [`cli`]: the `ppppp-sim` commands.

pub mod check;
pub mod cli;
pub mod compare;
pub mod dist;
pub mod error;
pub mod goal;
pub mod interest;
pub mod metrics;
pub mod pipeline;
pub mod plan;
pub mod plot;
pub mod progress;
pub mod report;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod stats;
pub mod sweep;
pub mod synthetic;
pub mod trace;
pub mod units;

/// The git commit the binary was built from, when the build could tell.
#[must_use]
pub fn git_commit() -> Option<&'static str> {
    option_env!("PPPPP_SIM_GIT_COMMIT").filter(|c| !c.is_empty())
}
