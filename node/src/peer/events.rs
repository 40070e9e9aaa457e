//! Structured events a node reports about itself, for metrics and traces. They carry no
//! timestamps (the observer adds its own clock: simulated time under turmoil) and no
//! process-global identifiers, so traces are deterministic.

use std::sync::Arc;

use proto::admission::{Eviction, Refusal};
use proto::gc::GcAction;
use proto::ids::{MsgId, PubKey, TangleId};
use proto::sync::CloseReason;

use crate::transport::muxrpc::rpc::RpcError;
use crate::transport::shse::HandshakeError;

/// Who is on the other end of a connection: its key when the handshake proved it, else the
/// address it came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Remote {
    /// Authenticated by SHSE.
    Key(PubKey),
    /// Plaintext: only the address is known.
    Address(String),
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(key) => write!(f, "{key}"),
            Self::Address(address) => f.write_str(address),
        }
    }
}

/// What bytes on the wire carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Traffic {
    /// Msgs in sync payloads (phases 8 and 9).
    Msgs,
    /// Sync objects and framing other than msgs and blooms.
    SyncControl,
    /// Bloom filters.
    Bloom,
    /// The SHSE handshake.
    Handshake,
    /// `net.ping` keepalives.
    Keepalive,
    /// App method calls and answers (`promise.follow`, …).
    App,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The remote closed it.
    RemoteClosed,
    /// Nothing was received for the idle timeout.
    Idle,
    /// The remote did not read what we sent (the outbound queue filled).
    SlowReader,
    /// The handshake failed (another network key, a dialer expecting another server key, a
    /// stalled or hostile peer).
    Handshake(HandshakeFailure),
    /// The remote broke muxrpc (a frame that does not decode, too many calls).
    Rpc(RpcError),
    /// The sync session gave up on the remote (too many refused objects, too much in flight).
    Sync(CloseReason),
    /// We are shutting down.
    Shutdown,
    /// An I/O error.
    Io(String),
    /// Closed by admission (`proto::admission`) to make room or to keep a bound.
    Admission(Eviction),
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RemoteClosed => f.write_str("the remote closed the connection"),
            Self::Idle => f.write_str("nothing received for the idle timeout"),
            Self::SlowReader => f.write_str("the remote did not read what we sent"),
            Self::Handshake(failure) => write!(f, "protocol error: {failure}"),
            Self::Rpc(error) => write!(f, "protocol error: {error}"),
            Self::Sync(reason) => write!(f, "protocol error: {reason}"),
            Self::Shutdown => f.write_str("shutting down"),
            Self::Io(reason) => write!(f, "i/o error: {reason}"),
            Self::Admission(reason) => write!(f, "admission: {reason}"),
        }
    }
}

/// Why a connection's handshake failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// A dial with SHSE names no key for the peer to prove.
    #[error("dialing with SHSE needs the peer's public key")]
    NoKeyToDial,
    /// The SHSE handshake failed (shared: events are cloned to every observer).
    #[error(transparent)]
    Shse(Arc<HandshakeError>),
}

impl From<HandshakeError> for HandshakeFailure {
    fn from(error: HandshakeError) -> Self {
        Self::Shse(Arc::new(error))
    }
}

/// `HandshakeError` may hold an `io::Error`, which has no equality: two failures are equal
/// when they are of the same kind and say the same.
impl PartialEq for HandshakeFailure {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::NoKeyToDial, Self::NoKeyToDial) => true,
            (Self::Shse(mine), Self::Shse(theirs)) => {
                std::mem::discriminant(&**mine) == std::mem::discriminant(&**theirs)
                    && mine.to_string() == theirs.to_string()
            }
            _ => false,
        }
    }
}

impl Eq for HandshakeFailure {}

/// Something a node did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// The listener is bound.
    Listening {
        /// `host:port`.
        address: String,
    },
    /// A local msg was published.
    Published {
        /// The msg.
        msg: MsgId,
        /// Its feed (or, for a root, its own ID).
        tangle: TangleId,
        /// Its JSON size.
        bytes: u64,
    },
    /// A msg from a peer was stored.
    Stored {
        /// The msg.
        msg: MsgId,
        /// The tangle it was synced in.
        tangle: TangleId,
        /// Who sent it.
        from: Remote,
    },
    /// A msg from a peer was refused (or was already stored: `duplicate`).
    NotStored {
        /// The msg.
        msg: MsgId,
        /// Who sent it.
        from: Remote,
        /// Already stored (a duplicate delivery) rather than invalid.
        duplicate: bool,
        /// Why, if invalid.
        reason: String,
    },
    /// Bytes were sent.
    Sent {
        /// To whom.
        to: Remote,
        /// What they carry.
        traffic: Traffic,
        /// How many.
        bytes: u64,
    },
    /// One side's part of a tangle's sync exchange finished.
    SyncFinished {
        /// With whom.
        remote: Remote,
        /// The tangle.
        tangle: TangleId,
        /// Sync objects exchanged for it (both directions).
        objects: u64,
    },
    /// Garbage collection acted on a msg.
    Gc {
        /// The msg.
        msg: MsgId,
        /// What was done.
        action: GcAction,
    },
    /// The store's size after a write.
    StoreSize {
        /// Bytes of msgs held.
        bytes: u64,
    },
    /// A connection was established (after the handshake).
    Connected {
        /// The peer.
        remote: Remote,
        /// We dialed.
        outbound: bool,
    },
    /// Dialing a peer failed (refused, timed out, or no room for another connection); the
    /// next dial is scheduled with backoff.
    DialFailed {
        /// The address dialed.
        address: String,
        /// Why.
        reason: String,
    },
    /// An inbound connection was refused at accept (`proto::admission`), before any byte
    /// was read from it.
    Refused {
        /// Where it came from.
        address: String,
        /// Why.
        refusal: Refusal,
    },
    /// A connection ended.
    Disconnected {
        /// The peer.
        remote: Remote,
        /// Why.
        reason: DisconnectReason,
    },
}
