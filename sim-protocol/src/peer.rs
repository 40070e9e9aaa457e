//! A peer as data: its database, sync index and goals (kept across crashes, as a disk
//! keeps them), and the state of its running incarnation — sync sessions, dial schedule,
//! dial jitter stream, armed timers — which a crash or going offline drops.

use std::collections::BTreeSet;

use proto::db::Db;
use proto::dial::{Backoff, Redial};
use proto::goals::Goals;
use proto::ids::AccountId;
use proto::keys::Keypair;
use proto::store::MemStore;
use proto::sync::{Config, Sessions, SyncIndex};
use rand_chacha::ChaCha8Rng;
use sim::plan::PeerIdx;
use sim::workload::{Memory, Scheduled};

use crate::link::LinkId;

/// What a peer keeps while it runs; gone when it crashes or goes offline.
#[derive(Debug)]
pub(crate) struct Running {
    /// Which start this is (0 the first).
    pub(crate) incarnation: u64,
    pub(crate) sessions: Sessions<LinkId>,
    pub(crate) redial: Redial,
    pub(crate) rng: ChaCha8Rng,
    /// Its open links, dialed and accepted.
    pub(crate) links: BTreeSet<LinkId>,
    /// When the sessions' and the dial schedule's wake-ups are armed.
    pub(crate) sync_wake: Option<u64>,
    pub(crate) dial_wake: Option<u64>,
}

impl Running {
    pub(crate) fn new(incarnation: u64, config: Config, backoff: Backoff, rng: ChaCha8Rng) -> Self {
        Self {
            incarnation,
            sessions: Sessions::new(config),
            redial: Redial::new(backoff),
            rng,
            links: BTreeSet::new(),
            sync_wake: None,
            dial_wake: None,
        }
    }
}

/// One simulated peer.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) index: PeerIdx,
    pub(crate) keypair: Keypair,
    pub(crate) account: AccountId,
    pub(crate) db: Db<MemStore>,
    pub(crate) sync_index: SyncIndex,
    pub(crate) goals: Goals,
    /// The app's memory across restarts, and its publishes.
    pub(crate) memory: Memory,
    pub(crate) schedule: Vec<Scheduled>,
    /// Whom it dials, by dial target index.
    pub(crate) targets: Vec<PeerIdx>,
    pub(crate) crashed: bool,
    pub(crate) offline: bool,
    /// The running incarnation, if any.
    pub(crate) running: Option<Running>,
    /// When its last `store_size` was recorded.
    pub(crate) store_size_at: Option<u64>,
}

impl Peer {
    /// Whether the peer should be running (neither crashed nor offline).
    pub(crate) fn up(&self) -> bool {
        !self.crashed && !self.offline
    }

    /// The running incarnation's number, if it runs.
    pub(crate) fn incarnation(&self) -> Option<u64> {
        self.running.as_ref().map(|running| running.incarnation)
    }
}
