//! [`NodeHandle`]: how a program (the `ppppp serve` command, the simulator, tests) drives a
//! running node.

use proto::goals::Goal;
use proto::ids::{AccountId, MsgId, PubKey, TangleId};
use proto::ingest::Snapshot;
use proto::msg::Msg;
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::config::DialTarget;
use super::conns::ConnsMsg;
use super::goals::GoalsMsg;
use super::root::RootMsg;
use super::store::StoreMsg;

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The listener could not be bound.
    #[error("cannot listen: {0}")]
    Listen(String),
    /// The configuration is invalid.
    #[error("invalid node configuration: {0}")]
    Config(String),
    /// An actor could not start (e.g. the store failed while creating the account).
    #[error("node actor failed to start: {0}")]
    Spawn(String),
    /// The node is stopped (or stopping), so it cannot answer.
    #[error("the node is not running")]
    Stopped,
    /// The operation was refused (e.g. a msg that does not validate).
    #[error("{0}")]
    Refused(String),
}

impl NodeError {
    pub(crate) fn spawn(error: ractor::SpawnErr) -> Self {
        Self::Spawn(error.to_string())
    }
}

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    root: ActorRef<RootMsg>,
    join: JoinHandle<()>,
    store: ActorRef<StoreMsg>,
    goals: ActorRef<GoalsMsg>,
    conns: ActorRef<ConnsMsg>,
    address: Option<String>,
    key: PubKey,
    account: AccountId,
}

async fn ask<M, T>(
    actor: &ActorRef<M>,
    build: impl FnOnce(RpcReplyPort<T>) -> M,
) -> Result<T, NodeError>
where
    M: ractor::Message,
    T: Send + 'static,
{
    match actor.call(build, None).await {
        Ok(CallResult::Success(value)) => Ok(value),
        _ => Err(NodeError::Stopped),
    }
}

impl NodeHandle {
    pub(crate) async fn new(
        root: ActorRef<RootMsg>,
        join: JoinHandle<()>,
        store: ActorRef<StoreMsg>,
        goals: ActorRef<GoalsMsg>,
        conns: ActorRef<ConnsMsg>,
        address: Option<String>,
        key: PubKey,
    ) -> Result<Self, NodeError> {
        let account = ask(&store, |reply| StoreMsg::Account { reply }).await?;
        Ok(Self {
            root,
            join,
            store,
            goals,
            conns,
            address,
            key,
            account,
        })
    }

    /// The listener's address (`host:port`), if the node listens.
    #[must_use]
    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }

    /// The node's public key (its network identity and signing key).
    #[must_use]
    pub fn key(&self) -> PubKey {
        self.key
    }

    /// The node's account.
    #[must_use]
    pub fn account(&self) -> AccountId {
        self.account
    }

    /// Publishes `data` on this node's feed of `domain`; returns once it is durable.
    ///
    /// # Errors
    /// [`NodeError::Refused`] for bad data or domain; [`NodeError::Stopped`].
    pub async fn publish(&self, domain: &str, data: Value) -> Result<MsgId, NodeError> {
        let domain = domain.to_owned();
        ask(&self.store, |reply| StoreMsg::Publish {
            domain,
            data,
            reply,
        })
        .await?
        .map_err(NodeError::Refused)
    }

    /// Adds a msg made elsewhere (validated like any other), as if published here.
    ///
    /// # Errors
    /// [`NodeError::Refused`] if it does not validate; [`NodeError::Stopped`].
    pub async fn add(&self, msg: Msg, tangle: Option<TangleId>) -> Result<MsgId, NodeError> {
        ask(&self.store, |reply| StoreMsg::AddLocal {
            msg: Box::new(msg),
            tangle,
            reply,
        })
        .await?
        .map_err(NodeError::Refused)
    }

    /// Sets the goal of a tangle.
    ///
    /// # Errors
    /// [`NodeError::Refused`] past the goal table's bound; [`NodeError::Stopped`].
    pub async fn set_goal(&self, tangle: TangleId, goal: Goal) -> Result<(), NodeError> {
        ask(&self.goals, |reply| GoalsMsg::Set {
            tangle,
            goal,
            reply,
        })
        .await?
        .map_err(NodeError::Refused)
    }

    /// Keeps a peer connected (dialing it now, and again after failures).
    ///
    /// # Errors
    /// [`NodeError::Stopped`].
    pub async fn connect(&self, target: DialTarget) -> Result<(), NodeError> {
        ask(&self.conns, |reply| ConnsMsg::AddTarget { target, reply }).await
    }

    /// How many connections are open.
    ///
    /// # Errors
    /// [`NodeError::Stopped`].
    pub async fn connections(&self) -> Result<usize, NodeError> {
        ask(&self.conns, |reply| ConnsMsg::Count { reply }).await
    }

    /// What the database holds.
    ///
    /// # Errors
    /// [`NodeError::Refused`] on a store failure; [`NodeError::Stopped`].
    pub async fn snapshot(&self) -> Result<Snapshot, NodeError> {
        ask(&self.store, |reply| StoreMsg::Snapshot { reply })
            .await?
            .map_err(NodeError::Refused)
    }

    /// A tangle's msgs in topological order (erased ones with data null).
    ///
    /// # Errors
    /// [`NodeError::Refused`] on a store failure; [`NodeError::Stopped`].
    pub async fn tangle_msgs(
        &self,
        tangle: TangleId,
    ) -> Result<Vec<std::sync::Arc<Msg>>, NodeError> {
        ask(&self.store, |reply| StoreMsg::TangleMsgs { tangle, reply })
            .await?
            .map_err(NodeError::Refused)
    }

    /// Closes every connection, flushes the store and stops the node.
    ///
    /// # Errors
    /// [`NodeError::Refused`] if the final flush fails.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let _ = ask(&self.conns, |reply| ConnsMsg::Shutdown { reply }).await;
        let flushed = ask(&self.store, |reply| StoreMsg::Flush { reply }).await;
        self.root.stop(Some("shutdown".to_owned()));
        let _ = self.join.await;
        flushed?.map_err(NodeError::Refused)
    }

    /// Waits until the node stops (it stops by itself only when an actor fails).
    pub async fn stopped(self) {
        let _ = self.join.await;
    }
}
