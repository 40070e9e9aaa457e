//! A peer as data: its protocol machine (which is also its store, kept across
//! crashes as a disk keeps it), what it holds, its publish schedule, and the state of its
//! running incarnation — dial schedule, dial jitter stream, links, armed wake-ups — which a
//! crash or going offline drops.

use std::collections::BTreeSet;

use baselines::{ItemId, LinkId};
use proto::dial::{Backoff, Redial};
use rand_chacha::ChaCha8Rng;
use sim::plan::PeerIdx;

/// What a peer keeps while it runs.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) incarnation: u64,
    pub(crate) redial: Redial,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) links: BTreeSet<LinkId>,
    /// When the machine's and the dial schedule's wake-ups are armed.
    pub(crate) machine_wake: Option<u64>,
    pub(crate) dial_wake: Option<u64>,
}

impl Running {
    pub(crate) fn new(incarnation: u64, backoff: Backoff, rng: ChaCha8Rng) -> Self {
        Self {
            incarnation,
            redial: Redial::new(backoff),
            rng,
            links: BTreeSet::new(),
            machine_wake: None,
            dial_wake: None,
        }
    }
}

/// One simulated peer running protocol machine `R`.
#[derive(Debug)]
pub(crate) struct Peer<R> {
    pub(crate) machine: R,
    /// Items it stored (published or received), as the collector was told.
    pub(crate) held: BTreeSet<ItemId>,
    /// Indices into the plan's publishes of this peer's writes, and the next one due.
    pub(crate) schedule: Vec<usize>,
    pub(crate) next: usize,
    /// Whom it dials, by dial target index.
    pub(crate) targets: Vec<PeerIdx>,
    pub(crate) incarnations: u64,
    pub(crate) crashed: bool,
    pub(crate) offline: bool,
    pub(crate) running: Option<Running>,
}

impl<R> Peer<R> {
    pub(crate) fn up(&self) -> bool {
        !self.crashed && !self.offline
    }

    pub(crate) fn incarnation(&self) -> Option<u64> {
        self.running.as_ref().map(|running| running.incarnation)
    }
}
