//! What a node is told at start: identity, network, goals, limits, timers, seed.

use std::sync::Arc;
use std::time::Duration;

use proto::goals::Goal;
use proto::ids::{AccountId, PubKey, TangleId};
use proto::keys::Keypair;

use super::events::NodeEvent;
use crate::transport::caps::NetworkKey;

/// How connections are secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// muxrpc straight over TCP: no handshake, no encryption, remote identity unknown. Only
    /// for simulations that want speed; JS peers never speak it.
    Plaintext,
    /// The reference's stack: SHSE handshake with this network key, then pull-secretstream.
    Shse(NetworkKey),
}

/// A peer to keep connected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialTarget {
    /// `host:port`.
    pub address: String,
    /// The peer's public key; required by [`Transport::Shse`] (the handshake proves it).
    pub key: Option<PubKey>,
}

/// Bounds on what a node holds for its peers. Every queue fed by a remote is bounded by one
/// of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections at once, inbound and outbound together. Admission
    /// (`proto::admission`) keeps this and the five bounds below: a new inbound connection
    /// over a cap is refused at accept (a `NodeEvent::Refused`) unless an idle one yields
    /// its slot (`Timers::yield_after`) or an address holding more gives one up; a dial
    /// over a cap fails with "no room" and is retried.
    pub connections_max: usize,
    /// Most inbound connections (handshaking or open).
    pub inbound_max: usize,
    /// Most outbound connections.
    pub outbound_max: usize,
    /// Most inbound connections still in their handshake (each also bounded in time by
    /// `Timers::handshake_timeout`); a new one replaces the oldest of them.
    pub handshakes_max: usize,
    /// Most inbound connections from one remote address (host, any port).
    pub per_address_max: usize,
    /// Most connections with one remote key; a newer one replaces the oldest.
    pub per_key_max: usize,
    /// Most encoded frames waiting to be written to one connection. A peer that does not
    /// read fills it and is disconnected (it cannot make us buffer without bound).
    pub outbound_frames_max: usize,
    /// Most bytes waiting to be written to one connection. A batch that would go past it is
    /// refused and the peer disconnected as a slow reader — unless nothing is waiting: one
    /// answer (say, a whole feed a peer asked for) always goes out, however large.
    pub outbound_bytes_max: usize,
    /// Largest read from a socket before the bytes are handed on (and the next read waits
    /// for the consumer: the credit that keeps ractor's unbounded mailboxes bounded).
    pub read_chunk_bytes_max: usize,
    /// Batches of sync objects a connection may hand the sync actor beyond the one it is
    /// handling (each batch: the objects of one read). 0 (the default, and the simulator's):
    /// the reader's credit waits until the sync actor, and the store commit behind it, have
    /// handled the batch. More lets the next bytes be decrypted and parsed while a commit
    /// verifies and writes; the sync actor still handles every batch in order, so what is
    /// stored and refused is the same. `ppppp serve` keeps 0: a peer that asks and never
    /// reads gets that many more batches answered before its answers meet
    /// `outbound_bytes_max` (the `never_reads` attack test measured 25-55 MB more with 2).
    pub sync_batches_ahead: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections_max: 64,
            inbound_max: 48,
            outbound_max: 32,
            handshakes_max: 16,
            per_address_max: 8,
            per_key_max: 2,
            outbound_frames_max: 1024,
            outbound_bytes_max: 64 * 1024 * 1024,
            read_chunk_bytes_max: 64 * 1024,
            sync_batches_ahead: 0,
        }
    }
}

/// Timers, all in simulated time under turmoil.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Longest wait for a TCP connect.
    pub connect_timeout: Duration,
    /// Longest wait for the SHSE handshake (the reference's default is 15 s).
    pub handshake_timeout: Duration,
    /// An inbound connection that moved no msgs (in either direction) for this long gives
    /// up its slot to a new inbound connection that finds none (`proto::admission`).
    pub yield_after: Duration,
    /// How often a dialer pings an idle connection (`net.ping`).
    pub keepalive_interval: Duration,
    /// A connection that receives nothing for this long is closed. Needed under turmoil,
    /// whose TCP never retransmits: after a partition a stream stalls silently.
    pub idle_timeout: Duration,
    /// First redial delay; doubles per failure up to `backoff_max`, with seeded jitter.
    pub backoff_base: Duration,
    /// Longest redial delay.
    pub backoff_max: Duration,
    /// How often garbage collection checks the store against its budget.
    pub gc_interval: Duration,
}

impl Timers {
    /// The keepalive interval and idle timeout, for `proto::liveness`.
    #[must_use]
    pub fn liveness(&self) -> proto::liveness::LivenessTimers {
        let ms = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        proto::liveness::LivenessTimers {
            keepalive_ms: ms(self.keepalive_interval),
            idle_timeout_ms: ms(self.idle_timeout),
        }
    }
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(15),
            yield_after: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            gc_interval: Duration::from_secs(60),
        }
    }
}

/// Where structured events go (the simulator records them with simulated timestamps).
pub type EventSink = Arc<dyn Fn(NodeEvent) + Send + Sync>;

/// Everything a node needs to start.
#[derive(Clone)]
pub struct NodeConfig {
    /// The node's identity and the key it signs its msgs with.
    pub keypair: Keypair,
    /// `host:port` to listen on (port 0 picks one), if any.
    pub listen: Option<String>,
    /// Peers to keep connected to.
    pub dial: Vec<DialTarget>,
    /// Initial goals.
    pub goals: Vec<(TangleId, Goal)>,
    /// How connections are secured.
    pub transport: Transport,
    /// Bounds.
    pub limits: Limits,
    /// Timers.
    pub timers: Timers,
    /// The sync machine's policies (bloom sizing; the reference's re-initiation, for
    /// comparison runs).
    pub sync: proto::sync::Config,
    /// Byte budget for garbage collection (`None`: never collect).
    pub gc_bytes_max: Option<u64>,
    /// Verify the signatures of a synced batch on every core before adding it in order
    /// (`crate::verify_ahead`). Off by default, and always off in simulations, which start
    /// no OS threads; `ppppp serve` turns it on.
    pub verify_ahead: bool,
    /// Probe every remote this node dials for `sync.reconcile` and sync with it where the
    /// remote answers, falling back to pzp-sync's `sync.connect` where it does not (a JS
    /// peer); docs/sync-extension.md. Off by default, so simulations keep their traces;
    /// `ppppp serve` turns it on. A node answers `sync.reconcile` either way.
    pub reconcile: bool,
    /// Every random choice (nonces, jitter, ephemeral keys) comes from a ChaCha stream seeded
    /// by `(seed, peer, incarnation)`.
    pub seed: u64,
    /// This peer's index in a simulation (0 in production).
    pub peer: u64,
    /// How many times this peer has started before (restarts get fresh randomness).
    pub incarnation: u64,
    /// Structured events, if anyone listens.
    pub events: Option<EventSink>,
    /// The app methods remotes may call (`None`: only sync and keepalive are served).
    pub app: Option<super::AppMethods>,
    /// The account this node is a device of, when it joined another key's account
    /// (`NodeHandle::join_account`); the store must hold that account's tangle adding this
    /// node's key. `None`: the account this node's key made (created if there is none).
    pub account: Option<AccountId>,
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("key", &self.keypair.public())
            .field("listen", &self.listen)
            .field("dial", &self.dial)
            .field("goals", &self.goals.len())
            .field("transport", &self.transport)
            .field("limits", &self.limits)
            .field("timers", &self.timers)
            .field("sync", &self.sync)
            .field("verify_ahead", &self.verify_ahead)
            .field("reconcile", &self.reconcile)
            .field("seed", &self.seed)
            .field("peer", &self.peer)
            .field("incarnation", &self.incarnation)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl NodeConfig {
    /// A config with defaults: no listener, no peers, no goals, SHSE with the PZP network key.
    #[must_use]
    pub fn new(keypair: Keypair, seed: u64) -> Self {
        Self {
            keypair,
            listen: None,
            dial: Vec::new(),
            goals: Vec::new(),
            transport: Transport::Shse(NetworkKey::default()),
            limits: Limits::default(),
            timers: Timers::default(),
            sync: proto::sync::Config::default(),
            gc_bytes_max: None,
            verify_ahead: false,
            reconcile: false,
            seed,
            peer: 0,
            incarnation: 0,
            events: None,
            app: None,
            account: None,
        }
    }
}
