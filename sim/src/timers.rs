//! The peers' timers under simulation, shared by both engines (the full-stack tier turns them
//! into the node's `Timers`, the protocol tier uses them directly).
//!
//! Which keepalive and idle timeout a peer gets depends on whether the simulated TCP
//! retransmits:
//! - turmoil 0.7's TCP never retransmits, so a segment lost to a partition stalls its stream
//!   for good: keepalives every second and a 3 s idle timeout notice it ([`SimTimers::turmoil`]).
//! - The fabric (turmoil-net, whose TCP retransmits) and the protocol tier's pipes (which keep
//!   what a cut held back) deliver a stalled stream once the network heals, as real TCP does,
//!   so their peers use the node's own defaults, 30 s and 120 s ([`SimTimers::retransmitting`]):
//!   a connection then survives a partition shorter than the idle timeout, as a real peer's
//!   does, instead of being torn down and synced again from the start.
//!
//! Redials back off to at most 10 s on both, so a healed network reconnects well within the
//! scenarios' convergence bounds.

/// Timer values, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimTimers {
    /// A dial that has not connected by then fails.
    pub connect_timeout_ms: u64,
    /// A handshake that has not finished by then fails.
    pub handshake_timeout_ms: u64,
    /// Each end pings this often.
    pub keepalive_ms: u64,
    /// An end that heard nothing for longer closes the connection.
    pub idle_timeout_ms: u64,
    /// The first redial delay.
    pub backoff_base_ms: u64,
    /// The longest redial delay.
    pub backoff_max_ms: u64,
    /// How often garbage collection runs.
    pub gc_interval_ms: u64,
}

impl SimTimers {
    /// The keepalive interval and idle timeout, for `proto::liveness`.
    #[must_use]
    pub const fn liveness(&self) -> proto::liveness::LivenessTimers {
        proto::liveness::LivenessTimers {
            keepalive_ms: self.keepalive_ms,
            idle_timeout_ms: self.idle_timeout_ms,
        }
    }

    /// For a network that retransmits: the node's default keepalive (30 s) and idle timeout
    /// (120 s), `node::peer::Timers::default()` (sim-fullstack's tests check they agree).
    #[must_use]
    pub const fn retransmitting() -> Self {
        Self {
            keepalive_ms: 30_000,
            idle_timeout_ms: 120_000,
            ..Self::turmoil()
        }
    }

    /// For turmoil 0.7, whose TCP never retransmits: a 1 s keepalive and a 3 s idle timeout,
    /// so a stream stalled by a lost segment is closed and redialed.
    #[must_use]
    pub const fn turmoil() -> Self {
        Self {
            connect_timeout_ms: 2_000,
            handshake_timeout_ms: 5_000,
            keepalive_ms: 1_000,
            idle_timeout_ms: 3_000,
            backoff_base_ms: 500,
            backoff_max_ms: 10_000,
            gc_interval_ms: 60_000,
        }
    }
}
