//! The protocol tier: a deterministic discrete-event engine that drives pure protocol
//! machines directly — PPPPP's (`proto`'s store, validation and ingest, sync sessions through
//! `proto::sync::Sessions`, the driver the node uses) and the baselines' of issue 21 — behind
//! one replication seam (`baselines::Replicator`), dialing through `proto::dial::Redial`,
//! with a message-level network model in place of sockets. No tokio, no actors, no threads:
//! one queue ordered by (simulated time, sequence number), and time jumps from event to
//! event.
//!
//! ```text
//! Plan ──▶ replicated/ (the engine: peers' lifecycles, the queue in queue.rs, links in
//!            │ link.rs, a machine's outputs) over any Replicator:
//!            │   ppppp/ (PPPPP: Db + Sessions, `--engine protocol`) or a baseline
//!            ▼
//!   dialing.rs (dial outcomes) ─▶ wires.rs (pipes, keepalive and idle timeout via
//!     liveness.rs) over link.rs
//!     ─▶ network.rs (latency, bandwidth, loss, faults) ─▶ bandwidth.rs, loss.rs
//!   the machines' outputs and reports ─▶ trace events ─▶ Collector
//! ```
//!
//! It emits the trace events the full-stack tier emits, so reports, plots and checks are
//! shared. Modelling choices and what is ignored: `docs/simulation.md`, "The protocol tier".

mod bandwidth;
mod dialing;
mod link;
mod link_rules;
mod liveness;
mod loss;
mod network;
pub mod ppppp;
mod queue;
pub mod replicated;
pub mod rows;
mod stats;
mod wires;

use sim::error::SimError;
use sim::metrics::Collector;
use sim::pipeline::Engine;
use sim::plan::Plan;
use sim::progress::Progress;

/// The protocol-tier engine (`--engine protocol`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Protocol {
    verify_all: bool,
}

impl Protocol {
    /// The engine as `ppppp-sim run --engine protocol` uses it: each msg's signature is
    /// verified once per run, and every other peer that receives it reuses the verdict
    /// (`proto::validate::Verdicts`).
    #[must_use]
    pub const fn new() -> Protocol {
        Protocol { verify_all: false }
    }

    /// An engine whose peers verify every msg they receive themselves, as real peers do
    /// (`--verify-all`): slower, same results.
    #[must_use]
    pub const fn verifying_all() -> Protocol {
        Protocol { verify_all: true }
    }
}

impl Engine for Protocol {
    fn name(&self) -> &'static str {
        "protocol"
    }

    fn run(
        &self,
        plan: &Plan,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<(), SimError> {
        self.run_counting(plan, collector, progress).map(|_| ())
    }
}

impl Protocol {
    /// [`Engine::run`], returning what the run counted besides the trace (messages sent,
    /// events handled), as [`replicated::Baseline::run`] does for the baselines.
    ///
    /// # Errors
    /// Trace errors.
    pub fn run_counting(
        &self,
        plan: &Plan,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<replicated::RunStats, SimError> {
        plan.refuse_tunnels("protocol")?;
        let machines = ppppp::machines(plan, self.verify_all);
        replicated::drive_machines(plan, machines, collector, progress)
    }
}
