//! What a node can tell about its connections and dial targets ([`PeerInfo`], for
//! `NodeHandle::peers`), and the counters a connection keeps for it ([`ConnStats`]).
//!
//! The counters are shared atomics: the connection's reader and writer tasks add to them as
//! bytes move, and the connection manager reads them only when asked, so reporting costs the
//! data path nothing but two relaxed atomic adds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use proto::ids::PubKey;

use super::events::Remote;

/// Where a connection (or a peer we keep dialing) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerState {
    /// A dial target being dialed (TCP connect under way).
    Dialing,
    /// Connected; the handshake has not finished.
    Handshaking,
    /// Connected and authenticated (or plaintext): muxrpc is running.
    Connected,
    /// Told to close by this node (a newer connection replaced it, admission made room, or
    /// the node is stopping); listed until its actor has stopped, and counted against no
    /// bound.
    Closing,
    /// A dial target with no connection now; the next dial waits for its backoff.
    Retrying,
}

impl PeerState {
    /// The word the command line shows.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dialing => "dialing",
            Self::Handshaking => "handshaking",
            Self::Connected => "connected",
            Self::Closing => "closing",
            Self::Retrying => "retrying",
        }
    }
}

/// What the sync session of one connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncSummary {
    /// An exchange is under way for some tangle.
    pub busy: bool,
    /// Tangles asked for and not yet received.
    pub requested: usize,
    /// Tangles whose new msgs are pushed to the remote as they are added.
    pub realtime: usize,
    /// Msgs received and handed to the store.
    pub received_msgs: u64,
    /// Msgs pushed to the remote in realtime.
    pub pushed_msgs: u64,
    /// Whether the stream is `sync.reconcile` (else pzp-sync's `sync.connect`).
    pub reconcile: bool,
}

/// One connection, or one dial target without a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The address it was dialed at or accepted from (`host:port`).
    pub address: String,
    /// Its key, once the handshake proved it (or the key a dial target must prove).
    pub key: Option<PubKey>,
    /// We dialed it.
    pub outbound: bool,
    /// Where it stands.
    pub state: PeerState,
    /// How long ago the connection opened (`None` for a retrying target).
    pub age: Option<Duration>,
    /// muxrpc bytes received (after decryption).
    pub bytes_in: u64,
    /// muxrpc bytes sent (before encryption).
    pub bytes_out: u64,
    /// Its sync session, once `sync.connect` is open.
    pub sync: Option<SyncSummary>,
    /// Dial attempts made for a target (0 for inbound connections).
    pub attempts: u64,
    /// Why the last attempt failed, for a target whose last attempt failed.
    pub last_error: Option<String>,
}

/// Counters and facts one connection shares with the connection manager.
#[derive(Debug, Default)]
pub(crate) struct ConnStats {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    remote: OnceLock<Remote>,
    closed: Mutex<Option<String>>,
    /// When msgs last moved (sent, or received and stored), for admission.
    useful_at: Mutex<Option<tokio::time::Instant>>,
}

impl ConnStats {
    pub(crate) fn received(&self, bytes: usize) {
        self.bytes_in
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn sent(&self, bytes: usize) {
        self.bytes_out
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The handshake finished with `remote`.
    pub(crate) fn established(&self, remote: Remote) {
        let _ = self.remote.set(remote);
    }

    /// The connection ended; the first reason given is kept.
    pub(crate) fn closed(&self, reason: String) {
        let mut closed = self
            .closed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        closed.get_or_insert(reason);
    }

    /// Msgs moved on the connection just now.
    pub(crate) fn mark_useful(&self) {
        *self
            .useful_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tokio::time::Instant::now());
    }

    /// When msgs last moved, if ever.
    pub(crate) fn useful_at(&self) -> Option<tokio::time::Instant> {
        *self
            .useful_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn remote(&self) -> Option<&Remote> {
        self.remote.get()
    }

    pub(crate) fn closed_reason(&self) -> Option<String> {
        self.closed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn bytes(&self) -> (u64, u64) {
        (
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
        )
    }
}
