//! The peers' timers under simulation, shared by both engines (the full-stack tier turns them
//! into the node's `Timers`, the protocol tier uses them directly).
//!
//! turmoil's TCP never retransmits, so a segment lost to a partition stalls its stream for
//! good: keepalives every second and a 3 s idle timeout notice it, and redials back off to at
//! most 10 s so a healed network reconnects well within the scenarios' convergence bounds.

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

impl Default for SimTimers {
    fn default() -> Self {
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
