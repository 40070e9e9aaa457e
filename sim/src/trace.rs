//! The event model: what the runner tells the collector, each event stamped with simulated
//! time in milliseconds. `docs/sim-trace.md` documents the JSON-lines trace column by
//! column.
//!
//! Events carry only protocol-level values (peer indices from the plan, msg and tangle IDs,
//! byte counts, simulated time): no wall clock, no actor IDs, no ports. So the trace, and
//! its hash, depend only on the scenario, the seed and the code.

use std::fmt;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use proto::gc::GcAction;

use crate::plan::PeerIdx;

/// The trace format version, written in the header line.
pub const TRACE_VERSION: u32 = 2;

/// One event at simulated time `t` (ms since the run started).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Simulated time, ms.
    pub t: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Kinds of bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireKind {
    /// Msgs (sync phases 8/9 and realtime pushes).
    Msgs,
    /// Sync control frames (phases 1–7 without their bloom filters, msg ID lists).
    SyncControl,
    /// Bloom filters inside sync frames.
    Bloom,
    /// Handshake (SHSE or plaintext hello).
    Handshake,
    /// Keepalive/ping.
    Keepalive,
}

impl WireKind {
    /// Every kind, in report order.
    pub const ALL: [WireKind; 5] = [
        WireKind::Msgs,
        WireKind::SyncControl,
        WireKind::Bloom,
        WireKind::Handshake,
        WireKind::Keepalive,
    ];

    /// The snake_case name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            WireKind::Msgs => "msgs",
            WireKind::SyncControl => "sync_control",
            WireKind::Bloom => "bloom",
            WireKind::Handshake => "handshake",
            WireKind::Keepalive => "keepalive",
        }
    }
}

impl fmt::Display for WireKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// What happened. Peer fields are indices into the plan's peer list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum EventKind {
    /// `peer` created a msg (and stored it). Publish every msg, moots and account msgs
    /// included, so that stores of unknown msgs can be flagged. Within one tangle, publishes
    /// come in depth order (true for single-writer feeds).
    Publish {
        /// The author (account owner).
        peer: PeerIdx,
        /// Msg ID.
        msg: String,
        /// Tangle ID (the feed's moot ID).
        tangle: String,
        /// Feed name as in goal rules (`post`, `profile`, `follows`); `account` or `moot`
        /// for msgs no rule names.
        feed: String,
        /// Encoded msg size.
        bytes: u64,
        /// IDs of msgs of the same tangle that this one supersedes (set/dict).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        supersedes: Vec<String>,
    },
    /// `msg` became stored at `peer` (a delivery). Not emitted for the author's own publish.
    Store {
        /// Receiver.
        peer: PeerIdx,
        /// Msg ID.
        msg: String,
        /// Tangle ID.
        tangle: String,
        /// The peer it came from, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<PeerIdx>,
    },
    /// Bytes sent on a connection.
    Send {
        /// Sender.
        from: PeerIdx,
        /// Receiver.
        to: PeerIdx,
        /// What the bytes were.
        kind: WireKind,
        /// Bytes on the wire (after framing and encryption).
        bytes: u64,
    },
    /// One tangle sync finished between `peer` (the initiator) and `remote`.
    SyncRound {
        /// Initiator.
        peer: PeerIdx,
        /// Responder.
        remote: PeerIdx,
        /// Tangle ID.
        tangle: String,
        /// Round trips it took (9 phases = 4.5, reported rounded up to 5; shortcuts fewer).
        round_trips: u32,
    },
    /// `peer` received a msg it already had.
    Duplicate {
        /// Receiver.
        peer: PeerIdx,
        /// Msg ID.
        msg: String,
        /// Sender, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<PeerIdx>,
        /// The duplicate's size on the wire, when known.
        #[serde(default, skip_serializing_if = "is_zero")]
        bytes: u64,
    },
    /// Garbage collection acted on a msg.
    Gc {
        /// Where.
        peer: PeerIdx,
        /// Erase, delete or ghost.
        action: GcAction,
        /// Bytes freed.
        bytes: u64,
        /// The msg, when known (needed for holdings: delete and ghost remove it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        msg: Option<String>,
    },
    /// A peer's store size after a change (sampled; the last value per peer counts).
    StoreSize {
        /// Where.
        peer: PeerIdx,
        /// Bytes.
        bytes: u64,
    },
    /// A connection came up (after its handshake). `a` dialed `b`.
    Connect {
        /// Dialer.
        a: PeerIdx,
        /// Acceptor.
        b: PeerIdx,
    },
    /// A connection went down.
    Disconnect {
        /// Dialer.
        a: PeerIdx,
        /// Acceptor.
        b: PeerIdx,
        /// Why: `partition`, `crash`, `offline`, `loss`, `timeout`, `closed`, …
        reason: String,
    },
    /// A peer's dial failed (refused, timed out, no room); it dials again after a backoff.
    DialFailed {
        /// The dialer.
        peer: PeerIdx,
        /// Whom it dialed.
        remote: PeerIdx,
        /// Why, as the node said it.
        reason: String,
    },
    /// The runner applied `plan.faults[step]`.
    Fault {
        /// Index into the plan's fault steps.
        step: u32,
        /// The action name.
        action: String,
    },
    /// A peer crashed (its process and in-memory state are gone).
    Crash {
        /// Who.
        peer: PeerIdx,
    },
    /// A crashed peer restarted.
    Restart {
        /// Who.
        peer: PeerIdx,
    },
    /// A churned peer went offline (store kept).
    Offline {
        /// Who.
        peer: PeerIdx,
    },
    /// A churned peer came back online.
    Online {
        /// Who.
        peer: PeerIdx,
    },
    /// A peer refused a msg it received.
    Reject {
        /// Who refused.
        peer: PeerIdx,
        /// Msg ID (or `-` when it could not be computed).
        msg: String,
        /// The validation error.
        reason: String,
    },
    /// A peer stored a msg that fails validation (the runner's own re-check found it):
    /// always a safety violation.
    Invalid {
        /// Where.
        peer: PeerIdx,
        /// Msg ID.
        msg: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A remark from the engine, kept in the trace (e.g. a skipped publish).
    Note {
        /// Free text without wall-clock values.
        text: String,
        /// Set when the note marks a bug in the runner.
        #[serde(default, skip_serializing_if = "is_false")]
        error: bool,
    },
}

/// The trace file's first line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceHeader {
    /// [`TRACE_VERSION`].
    pub trace_version: u32,
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// The engine that made the events (`fullstack`, `protocol`).
    pub engine: String,
    /// The full-stack engine's network (`fabric`, `turmoil`); absent for the protocol tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substrate: Option<String>,
}

/// Writes the trace and hashes it as it goes. The trace hash is the SHA-256 of the exact
/// bytes of the JSON-lines trace (header line included), so `sha256sum trace.jsonl` gives
/// the same value; without `--trace` the same bytes are hashed and not written.
pub struct TraceSink {
    hasher: Sha256,
    writer: Option<Box<dyn Write + Send>>,
    line: Vec<u8>,
    events: u64,
}

impl fmt::Debug for TraceSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceSink")
            .field("events", &self.events)
            .field("writing", &self.writer.is_some())
            .finish()
    }
}

impl TraceSink {
    /// A sink that only hashes.
    #[must_use]
    pub fn hash_only(header: &TraceHeader) -> TraceSink {
        let mut sink = TraceSink {
            hasher: Sha256::new(),
            writer: None,
            line: Vec::with_capacity(256),
            events: 0,
        };
        sink.write_line(header)
            .expect("invariant: hashing without a writer cannot fail");
        sink
    }

    /// A sink that hashes and writes to `writer`.
    ///
    /// # Errors
    /// Write errors.
    pub fn writing(header: &TraceHeader, writer: Box<dyn Write + Send>) -> io::Result<TraceSink> {
        let mut sink = TraceSink {
            hasher: Sha256::new(),
            writer: Some(writer),
            line: Vec::with_capacity(256),
            events: 0,
        };
        sink.write_line(header)?;
        Ok(sink)
    }

    fn write_line<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, value).map_err(io::Error::other)?;
        self.line.push(b'\n');
        self.hasher.update(&self.line);
        if let Some(writer) = &mut self.writer {
            writer.write_all(&self.line)?;
        }
        Ok(())
    }

    /// Appends an event.
    ///
    /// # Errors
    /// Write errors.
    pub fn push(&mut self, event: &Event) -> io::Result<()> {
        self.events += 1;
        self.write_line(event)
    }

    /// Events written so far.
    #[must_use]
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Flushes and returns the hex SHA-256.
    ///
    /// # Errors
    /// Flush errors.
    pub fn finish(mut self) -> io::Result<String> {
        if let Some(writer) = &mut self.writer {
            writer.flush()?;
        }
        Ok(hex::encode(self.hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_json_is_flat_and_stable() {
        let event = Event {
            t: 1_250,
            kind: EventKind::Store {
                peer: 3,
                msg: "m1".to_owned(),
                tangle: "t1".to_owned(),
                from: Some(2),
            },
        };
        let text = serde_json::to_string(&event).expect("serializes");
        assert_eq!(
            text,
            r#"{"t":1250,"ev":"store","peer":3,"msg":"m1","tangle":"t1","from":2}"#
        );
        let back: Event = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, event);
    }
}
