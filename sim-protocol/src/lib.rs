//! The protocol tier: a deterministic discrete-event engine that drives `proto`'s pure
//! machines directly — publishing, validation and ingest into an in-memory `proto` store,
//! sync sessions through `proto::sync::Sessions` (the driver the node uses), dialing through
//! `proto::dial::Redial` — with a message-level network model in place of sockets. No
//! tokio, no actors, no threads: one queue ordered by (simulated time, sequence number), and
//! time jumps from event to event.
//!
//! ```text
//! Plan ──▶ Run (run.rs): peers as data (peer.rs), links (link.rs), the queue (queue.rs)
//!            │ Start, Publish, Fault, Churn, wake-ups of Sessions and Redial,
//!            │ Established / DialFailed, Deliver, LinkTick, Close
//!            ▼
//!   dialing.rs (dial outcomes) ─▶ conn.rs (handshake, sync objects) ─▶ wires.rs (pipes,
//!     keepalive and idle timeout via liveness.rs) over link.rs; all three but conn.rs
//!     shared with replicated/
//!     ─▶ network.rs (latency, bandwidth, loss, faults) ─▶ bandwidth.rs, loss.rs
//!   apply.rs (Sessions outputs: send, commit, prune, rounds) ─▶ trace events ─▶ Collector
//! ```
//!
//! It emits the trace events the full-stack tier emits, so reports, plots and checks are
//! shared. Modelling choices and what is ignored: `docs/simulation.md`, "The protocol tier".

mod apply;
mod bandwidth;
mod conn;
mod dialing;
mod link;
mod link_rules;
mod liveness;
mod loss;
mod network;
mod peer;
mod queue;
pub mod replicated;
pub mod rows;
mod run;
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
        run::Run::new(plan, self.verify_all).execute(collector, progress)
    }
}
