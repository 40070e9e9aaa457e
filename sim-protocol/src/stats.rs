//! What an engine run counts besides the trace (`compare-protocols` reads it).

/// What a run counts besides the trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Messages put on the wire: protocol messages (a broadcast once) and keepalives;
    /// handshakes not included.
    pub messages: u64,
    /// Dials made: each a handshake begun, or a connect refused or timed out.
    pub dials: u64,
    /// Events the engine handled.
    pub events: u64,
}
