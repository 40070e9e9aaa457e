//! The engine of the protocol tier: any protocol's per-peer machine behind the replication
//! seam (`baselines::Replicator`) — PPPPP's (`crate::ppppp`, `--engine protocol` and the
//! `ppppp` rows of `compare-protocols`) and the baselines of issue 21 — on one network model,
//! with the same plan, faults, churn, redial policy, peers' lifecycles and trace events, so
//! the report machinery measures every protocol the same way.
//!
//! ```text
//! mod.rs     which protocol (Baseline), each peer's machine from the plan, the Engine
//! items.rs   the workload as items for the baselines: one feed per account, msg/tangle
//!            names for the collector (PPPPP names its own)
//! peer.rs    a peer as data; run.rs the queue, lifecycles, publishing, faults, churn
//! conn.rs    its handshake (crate::dialing dials), opening links, a machine's outputs (send,
//!            broadcast, stored, duplicate, close, a new write)
//! reports.rs what a machine that names its items reports, as trace events
//! pipes.rs   its side of the shared pipes (crate::wires, crate::link): a message that
//!            arrives, closing a link
//! ```
//!
//! Workload mapping per protocol: `docs/protocols.md`, "What each protocol is given".

mod conn;
mod items;
mod peer;
mod pipes;
mod reports;
mod run;

use std::collections::BTreeSet;

use baselines::negentropy::Negentropy;
use baselines::p2p::flood::Flood;
use baselines::p2p::mesh::Exclusion;
use baselines::p2p::sync_table::SyncTable;
use baselines::ssb::classic::Classic;
use baselines::ssb::ebt::Ebt;
use baselines::tinyssb::{Profile, TinySsb};
use baselines::{Feed, PeerId, Replicator};
use proto::goals::Goal;
use sim::error::SimError;
use sim::metrics::Collector;
use sim::pipeline::Engine;
use sim::plan::{PeerIdx, Plan};
use sim::progress::Progress;

pub use crate::stats::RunStats;

/// A baseline protocol, by its name in `compare-protocols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Baseline {
    /// SSB's `createHistoryStream` per followed feed.
    SsbClassic,
    /// SSB's epidemic broadcast trees.
    SsbEbt,
    /// tinySSB as the Python simple pub runs it (point-to-point links).
    TinySsb,
    /// tinySSB as the LoRa firmware runs it (one broadcast heard on every link).
    TinySsbLora,
    /// p2p.today's mesh: flooding.
    P2pFlood,
    /// p2p.today's sync table (a leased dict over the mesh).
    P2pSyncTable,
    /// Negentropy v1 per author's feed.
    Negentropy,
}

impl Baseline {
    /// Every baseline, in report order.
    pub const ALL: [Baseline; 7] = [
        Baseline::SsbClassic,
        Baseline::SsbEbt,
        Baseline::TinySsb,
        Baseline::TinySsbLora,
        Baseline::P2pFlood,
        Baseline::P2pSyncTable,
        Baseline::Negentropy,
    ];

    /// Its name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Baseline::SsbClassic => "ssb-classic",
            Baseline::SsbEbt => "ssb-ebt",
            Baseline::TinySsb => "tinyssb",
            Baseline::TinySsbLora => "tinyssb-lora",
            Baseline::P2pFlood => "p2p-flood",
            Baseline::P2pSyncTable => "p2p-sync-table",
            Baseline::Negentropy => "negentropy",
        }
    }

    /// The baseline of this name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Baseline> {
        Baseline::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Runs `plan` with this protocol on every peer.
    ///
    /// # Errors
    /// Trace errors.
    pub fn run(
        self,
        plan: &Plan,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<RunStats, SimError> {
        plan.refuse_tunnels("protocol")?;
        let seed = plan.seed;
        match self {
            Baseline::SsbClassic => drive(plan, collector, progress, &|p| {
                Classic::new(replicates(plan, p))
            }),
            Baseline::SsbEbt => drive(plan, collector, progress, &|p| {
                Ebt::new(Feed(p), replicates(plan, p))
            }),
            Baseline::TinySsb => drive(plan, collector, progress, &|p| {
                TinySsb::new(Feed(p), Profile::simple_pub(), machine_seed(seed, p))
            }),
            Baseline::TinySsbLora => drive(plan, collector, progress, &|p| {
                TinySsb::new(Feed(p), Profile::lora(), machine_seed(seed, p))
            }),
            Baseline::P2pFlood => drive(plan, collector, progress, &|p| {
                Flood::new(PeerId(p), Exclusion::Originator)
            }),
            Baseline::P2pSyncTable => drive(plan, collector, progress, &|p| {
                SyncTable::new(PeerId(p), Exclusion::Originator, true)
            }),
            Baseline::Negentropy => drive(plan, collector, progress, &|p| {
                Negentropy::new(replicates(plan, p))
            }),
        }
    }
}

/// Runs `plan` with `make(p)` as peer `p`'s machine: the engine for any
/// [`Replicator`] (the baselines, or a test's own machine).
///
/// # Errors
/// Trace errors.
pub fn drive<R: Replicator>(
    plan: &Plan,
    collector: &mut Collector<'_>,
    progress: &Progress,
    make: &dyn Fn(PeerIdx) -> R,
) -> Result<RunStats, SimError> {
    let machines = plan.peers.iter().map(|peer| make(peer.index)).collect();
    drive_machines(plan, machines, collector, progress)
}

/// Runs `plan` with `machines[p]` as peer `p`'s machine.
///
/// # Errors
/// Trace errors.
pub fn drive_machines<R: Replicator>(
    plan: &Plan,
    machines: Vec<R>,
    collector: &mut Collector<'_>,
    progress: &Progress,
) -> Result<RunStats, SimError> {
    run::Run::new(plan, machines).execute(collector, progress)
}

/// The feeds a peer replicates: its own and every account it has a goal on (other than
/// `none`) — SSB's follow graph, negentropy's subscription filter.
fn replicates(plan: &Plan, peer: PeerIdx) -> BTreeSet<Feed> {
    let mut feeds = BTreeSet::from([Feed(peer)]);
    if let Some(plan_peer) = plan.peers.get(peer as usize) {
        for goal in &plan_peer.goals {
            if goal.rule.goal != Goal::None {
                feeds.insert(Feed(goal.account));
            }
        }
    }
    feeds
}

/// A machine's own seed (tinySSB's timer jitter), from the run seed and the peer.
fn machine_seed(seed: u64, peer: PeerIdx) -> u64 {
    sim::rng::stream(seed, "protocol/machine", u64::from(peer)).next_u64()
}

/// The engine with one baseline on every peer (`compare-protocols`).
#[derive(Debug, Clone, Copy)]
pub struct Replicated {
    baseline: Baseline,
}

impl Replicated {
    /// The engine running `baseline`.
    #[must_use]
    pub const fn new(baseline: Baseline) -> Replicated {
        Replicated { baseline }
    }
}

impl Engine for Replicated {
    fn name(&self) -> &'static str {
        self.baseline.name()
    }

    fn run(
        &self,
        plan: &Plan,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<(), SimError> {
        self.baseline.run(plan, collector, progress).map(|_| ())
    }
}
