//! The actors' mailboxes: what each actor of a node is told, and what it answers. In a
//! module of their own so that an actor depends on the messages of the actors it talks to,
//! never on those actors, and every dependency between the actor files points one way.

use std::sync::Arc;

use proto::db::{AddError, Db};
use proto::goals::{Goal, Goals, GoalsError};
use proto::ids::{AccountId, MsgId, PubKey, TangleId};
use proto::ingest::Snapshot;
use proto::msg::{DigestedMsg, Msg};
use proto::publish::PublishError;
use proto::sync::{recon, wire};
use ractor::{ActorRef, RpcReplyPort};
use serde_json::Value;

use super::error::JoinRefused;
use super::events::{DisconnectReason, HandshakeFailure, Remote};
use super::peers::{PeerInfo, SyncSummary};
use super::reconcile::SyncMethod;
use super::{AnyStore, ConnId, DialTarget, StoreFailure};
use crate::net::BoxStream;
use crate::transport::muxrpc::codec::Frame;
use crate::transport::muxrpc::rpc::{Body, BodyError, CallId};

/// The root actor has no messages of its own; it only supervises.
pub(crate) enum RootMsg {}

/// What the store actor is asked to do.
pub(crate) enum StoreMsg {
    /// Learn where to announce added msgs (the sync actor starts after the store).
    Subscribe(ActorRef<SyncActorMsg>),
    /// Add msgs a sync session received (its `Output::Commit`).
    Commit {
        tangle: TangleId,
        msgs: Vec<DigestedMsg>,
        from: Remote,
        /// The connection whose session asked, so that it is not told its own msgs as new.
        origin: ConnId,
        /// How many msgs were refused (not counting msgs already stored).
        reply: RpcReplyPort<usize>,
    },
    /// Keep only the newest `count` msgs of `tangle` (a `newest-N` goal after a sync).
    PruneNewest { tangle: TangleId, count: u64 },
    /// Collect garbage with these goals under this byte budget.
    Collect { goals: Goals, bytes_max: u64 },
    /// Publish `data` on this node's feed of `domain`.
    Publish {
        domain: String,
        data: Value,
        reply: RpcReplyPort<Result<MsgId, PublishError<StoreFailure>>>,
    },
    /// A local write to a set, a dict or the account tangle.
    Write {
        write: LocalWrite,
        reply: RpcReplyPort<Result<Option<MsgId>, PublishError<StoreFailure>>>,
    },
    /// Add a msg made elsewhere, as if published here (tools and tests).
    AddLocal {
        msg: Box<Msg>,
        tangle: Option<TangleId>,
        reply: RpcReplyPort<Result<MsgId, AddError<StoreFailure>>>,
    },
    /// What the database holds.
    Snapshot {
        reply: RpcReplyPort<Result<Snapshot, StoreFailure>>,
    },
    /// A tangle's msgs in topological order (erased ones with data null).
    TangleMsgs {
        tangle: TangleId,
        reply: RpcReplyPort<Result<Vec<Arc<Msg>>, StoreFailure>>,
    },
    /// How many msgs a tangle holds, and how many of them with data.
    TangleSize {
        tangle: TangleId,
        reply: RpcReplyPort<Result<(usize, usize), StoreFailure>>,
    },
    /// The node's account.
    Account { reply: RpcReplyPort<AccountId> },
    /// Publish in `account` from now on: the stored account tangle must add this node's key.
    JoinAccount {
        account: AccountId,
        reply: RpcReplyPort<Result<(), JoinRefused>>,
    },
    /// Make everything durable (shutdown).
    Flush {
        reply: RpcReplyPort<Result<(), StoreFailure>>,
    },
    /// Run a read on the database (`NodeHandle::read`); it sends its own reply.
    Read(DbRead),
}

/// A read run on the database by the store actor (`NodeHandle::read`).
pub(crate) type DbRead = Box<dyn FnOnce(&mut Db<AnyStore>) + Send>;

/// Msgs the store added durably in one write, as `NodeHandle::subscribe_added` delivers them.
pub type AddedBatch = Arc<Vec<(MsgId, Arc<Msg>)>>;

/// A local write other than a feed post, made with this node's keypair and account.
#[derive(Debug)]
pub(crate) enum LocalWrite {
    /// Add `item` to the set `subdomain` (pzp-set's `add`).
    SetAdd { subdomain: String, item: String },
    /// Delete `item` from the set `subdomain` (pzp-set's `del`).
    SetDel { subdomain: String, item: String },
    /// Set fields of the dict `subdomain` (pzp-dict's `update`).
    DictUpdate {
        subdomain: String,
        update: serde_json::Map<String, Value>,
    },
    /// Add `key` to the account, with the key's `consent` (pzp-db's `account.add`).
    AccountAdd {
        key: PubKey,
        consent: String,
        powers: Vec<String>,
    },
}

/// What the sync actor is told. (Not the wire's `proto::sync::SyncMsg`, which it sends.)
pub(crate) enum SyncActorMsg {
    /// A connection opened its `sync.connect` stream; `outbound` connections (we dialed)
    /// start initiating right away, as the reference's dialer does once `sync.start()` ran.
    Opened {
        conn: ConnId,
        outbound: bool,
        remote: Remote,
        connection: ActorRef<ConnMsg>,
        /// Which stream: `sync.connect` or `sync.reconcile` (negotiated by the connection).
        method: SyncMethod,
    },
    /// Objects arrived on a connection's sync stream, decoded by the connection. The reply
    /// is the connection's credit to read more: it comes only once these are handled (and
    /// committed).
    Received {
        conn: ConnId,
        objects: Vec<SyncObject>,
        reply: RpcReplyPort<()>,
    },
    /// A connection's sync stream ended.
    Closed { conn: ConnId },
    /// The store added these msgs (one batch per write); `origin` is the connection whose
    /// sync commit added them (`None` for local writes).
    LocalAdded {
        msgs: Vec<(MsgId, Arc<Msg>)>,
        origin: Option<ConnId>,
    },
    /// A goal changed.
    SetGoal { tangle: TangleId, goal: Goal },
    /// The sessions' deadline passed (a fetch claim expired).
    Tick,
    /// What each connection's session is doing (`NodeHandle::peers`).
    Summaries {
        reply: RpcReplyPort<Vec<(ConnId, SyncSummary)>>,
    },
}

/// A sync object as its connection decoded and checked it, by the stream's method. Decoded
/// there, not in the sync actor: parsing msgs and hashing their data is work a peer chooses
/// the size of, done before the database is locked, and a connection reading ahead
/// (`Limits::sync_batches_ahead`) decodes the next batch while the last one commits.
#[derive(Debug)]
pub(crate) enum SyncObject {
    /// From a `sync.connect` stream (pzp-sync).
    Connect(Result<wire::Received, wire::WireError>),
    /// From a `sync.reconcile` stream.
    Reconcile(Result<recon::Incoming, recon::Refusal>),
}

impl SyncObject {
    /// Decodes `object` from a stream of `method`.
    pub(crate) fn decode(method: SyncMethod, object: Value) -> Self {
        match method {
            SyncMethod::Connect => Self::Connect(wire::decode(&object)),
            SyncMethod::Reconcile => Self::Reconcile(recon::decode_incoming_owned(object)),
        }
    }

    /// Decodes a data frame's body from a stream of `method`. A `sync.reconcile` frame is
    /// read from its text ([`recon::decode_incoming_text`], which skips building a `Value`
    /// for a frame that decodes whole); a `sync.connect` one through a `Value`.
    ///
    /// # Errors
    /// A body that is not JSON.
    pub(crate) fn decode_body(method: SyncMethod, body: &Body) -> Result<Self, BodyError> {
        match (method, body) {
            (SyncMethod::Reconcile, Body::Json(bytes)) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|error| BodyError::Json(error.to_string()))?;
                recon::decode_incoming_text(text)
                    .map(Self::Reconcile)
                    .map_err(|error| BodyError::Json(error.to_string()))
            }
            _ => body
                .parse_json::<Value>()
                .map(|object| Self::decode(method, object)),
        }
    }

    /// The tangle a well-formed object is about (none for a refused one).
    pub(crate) fn tangle(&self) -> Option<TangleId> {
        match self {
            Self::Connect(Ok(received)) => Some(received.msg.id),
            Self::Reconcile(Ok(recon::Incoming::Frame(received))) => Some(received.frame.id),
            Self::Reconcile(Ok(recon::Incoming::Push { tangle, .. })) => Some(*tangle),
            Self::Connect(Err(_)) | Self::Reconcile(Err(_)) => None,
        }
    }
}

/// What the goals actor is asked.
pub(crate) enum GoalsMsg {
    /// Set the goal of a tangle.
    Set {
        tangle: TangleId,
        goal: Goal,
        reply: RpcReplyPort<Result<(), GoalsError>>,
    },
    /// The whole table.
    Get { reply: RpcReplyPort<Goals> },
}

/// Ticks of the GC timer.
pub(crate) enum GcMsg {
    /// Time to check the budget.
    Tick,
}

/// What the connection manager is told.
pub(crate) enum ConnsMsg {
    /// The listener accepted a connection.
    Accepted { stream: BoxStream, address: String },
    /// A connection's handshake finished.
    Established { conn: ConnId, remote: Remote },
    /// A dial is due (the redial schedule's deadline passed).
    Wake,
    /// A dial finished.
    Dialed {
        target: usize,
        result: Result<BoxStream, String>,
    },
    /// Keep a new peer connected.
    AddTarget {
        target: DialTarget,
        reply: RpcReplyPort<()>,
    },
    /// How many connections are open.
    Count { reply: RpcReplyPort<usize> },
    /// Every connection and every dial target without one (`NodeHandle::peers`).
    List {
        reply: RpcReplyPort<Vec<ConnListing>>,
    },
    /// Close every connection and stop dialing.
    Shutdown { reply: RpcReplyPort<()> },
    /// Call an app method on the open connection to `remote` (the first one, if several).
    Call { remote: PubKey, call: AppCall },
}

/// One row of [`ConnsMsg::List`]: a connection (`conn` set) or a target without one.
pub(crate) struct ConnListing {
    pub(crate) conn: Option<ConnId>,
    pub(crate) info: PeerInfo,
}

/// A sync object to send, with its parts measured (for traffic accounting).
pub(crate) struct OutgoingSync {
    pub(crate) json: String,
    pub(crate) msg_bytes: usize,
    pub(crate) bloom_bytes: usize,
}

/// What a connection actor is told.
pub(crate) enum ConnMsg {
    /// The handshake finished.
    Established { stream: BoxStream, remote: Remote },
    /// The handshake failed.
    HandshakeFailed(HandshakeFailure),
    /// Frames from the socket; the reply is the reader's credit to read more.
    Frames {
        frames: Vec<Frame>,
        reply: RpcReplyPort<()>,
    },
    /// The socket's read side ended (`None`: clean EOF).
    ReaderEnded(Option<String>),
    /// The writer could not write.
    WriterFailed(String),
    /// Sync objects to send on the sync stream.
    SendSync(Vec<OutgoingSync>),
    /// Keepalive and idle check.
    Tick,
    /// Close the connection.
    Close(DisconnectReason),
    /// Msgs this connection brought were stored (for admission: it is useful).
    Useful,
    /// The app's answer to a remote's request for an app method.
    AppResponse {
        id: CallId,
        result: Result<Value, String>,
    },
    /// Call an app method on the remote (`NodeHandle::call`).
    AppCall(AppCall),
}

/// An app method to call on a remote, and where its answer goes.
pub(crate) struct AppCall {
    pub(crate) name: Vec<String>,
    pub(crate) args: Vec<Value>,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<Value, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_body(value: &Value) -> Body {
        Body::Json(value.to_string().into_bytes())
    }

    /// A `sync.reconcile` body decodes from its text as through a `Value`: frames the fast
    /// path reads, frames it leaves to the general path, and pushes alike.
    #[test]
    fn reconcile_bodies_decode_from_their_text_as_through_a_value() {
        let tangle = MsgId::from_bytes(&[7; 32]);
        for value in [
            serde_json::json!({"id": tangle.as_str(), "phase": "open", "have": [0, 5]}),
            serde_json::json!({"id": tangle.as_str(), "phase": "open", "have": [0, 5.5]}),
            serde_json::json!({"id": tangle.as_str(), "phase": 9, "payload": []}),
        ] {
            let Ok(SyncObject::Reconcile(from_text)) =
                SyncObject::decode_body(SyncMethod::Reconcile, &json_body(&value))
            else {
                panic!("a reconcile object");
            };
            assert_eq!(
                from_text,
                recon::decode_incoming_owned(value.clone()),
                "{value}"
            );
        }
    }

    #[test]
    fn a_body_that_is_not_json_text_is_an_error_not_an_object() {
        let broken = Body::Json(b"{\"id\":\xff}".to_vec());
        for method in [SyncMethod::Reconcile, SyncMethod::Connect] {
            assert!(SyncObject::decode_body(method, &broken).is_err());
            let truncated = Body::Json(b"{\"id\":".to_vec());
            assert!(SyncObject::decode_body(method, &truncated).is_err());
        }
    }
}
