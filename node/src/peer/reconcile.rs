//! Which sync method a connection runs (docs/sync-extension.md, "Negotiation"): the node's
//! shared record of `sync.reconcile` — how many connections run it, and which remotes are
//! known to refuse it — as plain data the connections consult. The dialer of a connection
//! calls `sync.reconcile` when [`ReconcilePeers::dial`] says so and falls back to
//! `sync.connect` on the same connection when the remote refuses it (a JS peer answers
//! `method:sync,reconcile is not in list of allowed methods`); that remote is then remembered,
//! so that later connections to it are pzp-sync's byte for byte, with no probe.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::events::Remote;

/// The `sync.reconcile` duplex's method path.
pub(crate) const SYNC_RECONCILE: [&str; 2] = ["sync", "reconcile"];

/// A responder's first frame on an accepted `sync.reconcile` stream: the dialer starts its
/// exchanges once it arrives, and falls back to `sync.connect` if the call is refused
/// instead, so nothing of `sync.reconcile` ever reaches a peer that lacks it.
pub(crate) const RECONCILE_ACCEPT: &str = r#"{"accept":"sync.reconcile"}"#;

/// Most connections running `sync.reconcile` at once. A dialer past it calls `sync.connect`;
/// a responder past it refuses the call, and the remote falls back to `sync.connect`. Each
/// such connection holds a [`proto::sync::recon::ReconSession`] (bounded per stream by
/// `TANGLES_TRACKED_MAX`), as each pzp-sync connection holds a session.
pub const RECONCILE_PEERS_MAX: usize = 256;

/// Most remotes remembered as refusing `sync.reconcile`; past it the least recently refused
/// one is forgotten, which costs it one refused probe on its next connection.
pub const PZP_ONLY_REMOTES_MAX: usize = 4096;

/// A connection's sync stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncMethod {
    /// pzp-sync's `sync.connect`.
    Connect,
    /// `sync.reconcile`.
    Reconcile,
}

/// The node's record. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct ReconcilePeers {
    /// Whether this node's dialers probe (`NodeConfig::reconcile`); it always answers.
    probe: bool,
    /// Connections running `sync.reconcile` (or probing it), at most [`RECONCILE_PEERS_MAX`].
    active: usize,
    /// Remotes that refused it, with when (a counter), at most [`PZP_ONLY_REMOTES_MAX`].
    pzp_only: BTreeMap<Remote, u64>,
    /// The same, by when, to forget the oldest.
    by_age: BTreeMap<u64, Remote>,
    refusals: u64,
}

impl ReconcilePeers {
    /// A record for a node that probes (`probe`) or only answers.
    pub(crate) fn new(probe: bool) -> Self {
        Self {
            probe,
            ..Self::default()
        }
    }

    /// The method a connection we dialed to `remote` starts with; `Reconcile` takes a place.
    pub(crate) fn dial(&mut self, remote: &Remote) -> SyncMethod {
        if !self.probe || self.pzp_only.contains_key(remote) || !self.take_place() {
            return SyncMethod::Connect;
        }
        SyncMethod::Reconcile
    }

    /// Whether to accept a remote's `sync.reconcile` call; `true` takes a place.
    pub(crate) fn accept(&mut self) -> bool {
        self.take_place()
    }

    /// Our `sync.reconcile` call to `remote` was refused: its place is freed and the remote
    /// remembered as pzp-only.
    pub(crate) fn refused(&mut self, remote: &Remote) {
        self.ended();
        self.refusals += 1;
        if let Some(age) = self.pzp_only.insert(remote.clone(), self.refusals) {
            self.by_age.remove(&age);
        }
        self.by_age.insert(self.refusals, remote.clone());
        while self.pzp_only.len() > PZP_ONLY_REMOTES_MAX {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.pzp_only.remove(&oldest);
        }
    }

    /// A `sync.reconcile` stream ended: its place is freed.
    pub(crate) fn ended(&mut self) {
        self.active = self.active.saturating_sub(1);
    }

    /// Connections running `sync.reconcile` now.
    #[cfg(test)]
    pub(crate) fn active(&self) -> usize {
        self.active
    }

    fn take_place(&mut self) -> bool {
        if self.active >= RECONCILE_PEERS_MAX {
            return false;
        }
        self.active += 1;
        true
    }
}

/// The record, shared by a node's connections.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedReconcilePeers(Arc<Mutex<ReconcilePeers>>);

impl SharedReconcilePeers {
    pub(crate) fn new(probe: bool) -> Self {
        Self(Arc::new(Mutex::new(ReconcilePeers::new(probe))))
    }

    /// Locks the record (every change is complete, so a poisoned lock is used as it is).
    pub(crate) fn lock(&self) -> MutexGuard<'_, ReconcilePeers> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(n: usize) -> Remote {
        Remote::Address(format!("10.0.0.1:{n}"))
    }

    #[test]
    fn a_node_that_does_not_probe_dials_pzp_sync_and_still_answers() {
        let mut peers = ReconcilePeers::new(false);
        assert_eq!(peers.dial(&remote(1)), SyncMethod::Connect);
        assert_eq!(peers.active(), 0);
        assert!(peers.accept());
        assert_eq!(peers.active(), 1);
    }

    #[test]
    fn places_are_bounded_and_freed() {
        let mut peers = ReconcilePeers::new(true);
        for n in 0..RECONCILE_PEERS_MAX {
            assert_eq!(peers.dial(&remote(n)), SyncMethod::Reconcile);
        }
        assert_eq!(
            peers.dial(&remote(0)),
            SyncMethod::Connect,
            "past the bound"
        );
        assert!(!peers.accept(), "past the bound");
        peers.ended();
        assert!(peers.accept());
        assert_eq!(peers.active(), RECONCILE_PEERS_MAX);
    }

    #[test]
    fn a_remote_that_refused_is_not_probed_again_within_the_bound() {
        let mut peers = ReconcilePeers::new(true);
        for n in 0..=PZP_ONLY_REMOTES_MAX {
            assert_eq!(peers.dial(&remote(n)), SyncMethod::Reconcile);
            peers.refused(&remote(n));
        }
        assert_eq!(peers.active(), 0, "every refusal frees its place");
        assert_eq!(peers.pzp_only.len(), PZP_ONLY_REMOTES_MAX);
        assert_eq!(peers.by_age.len(), PZP_ONLY_REMOTES_MAX);
        assert_eq!(peers.dial(&remote(5)), SyncMethod::Connect, "remembered");
        assert_eq!(
            peers.dial(&remote(0)),
            SyncMethod::Reconcile,
            "the oldest was forgotten"
        );
    }
}
