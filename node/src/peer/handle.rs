//! [`NodeHandle`]: how a program (the `ppppp serve` command, the simulator, tests) drives a
//! running node.

use std::sync::Arc;

use proto::goals::Goal;
use proto::ids::{AccountId, MsgId, PubKey, TangleId};
use proto::ingest::Snapshot;
use proto::msg::Msg;
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::AnyStore;
use super::config::DialTarget;
use super::error::NodeError;
use super::msgs::{
    AddedBatch, AppCall, ConnsMsg, GoalsMsg, LocalWrite, RootMsg, StoreMsg, SyncActorMsg,
};
use super::peers::PeerInfo;

/// Why the node stopped by itself, for `NodeHandle::wait_stopped` (first failure wins).
pub(crate) type StopReason = Arc<std::sync::Mutex<Option<String>>>;

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    root: ActorRef<RootMsg>,
    join: JoinHandle<()>,
    stop_reason: StopReason,
    store: ActorRef<StoreMsg>,
    goals: ActorRef<GoalsMsg>,
    conns: ActorRef<ConnsMsg>,
    sync: ActorRef<SyncActorMsg>,
    added: tokio::sync::broadcast::Sender<AddedBatch>,
    address: Option<String>,
    key: PubKey,
    /// Changes only when the node joins another account as a device.
    account: std::sync::Mutex<AccountId>,
}

/// Adds dial targets to a running node ([`NodeHandle::dialer`]).
#[derive(Debug, Clone)]
pub struct NodeDialer(ActorRef<ConnsMsg>);

impl NodeDialer {
    /// As [`NodeHandle::connect`].
    ///
    /// # Errors
    /// [`NodeError::Stopped`] when the node is gone.
    pub async fn connect(&self, target: DialTarget) -> Result<(), NodeError> {
        ask(&self.0, |reply| ConnsMsg::AddTarget { target, reply }).await
    }
}

/// What `root::run` hands over to make a [`NodeHandle`].
pub(crate) struct Parts {
    pub(crate) root: ActorRef<RootMsg>,
    pub(crate) join: JoinHandle<()>,
    pub(crate) stop_reason: StopReason,
    pub(crate) store: ActorRef<StoreMsg>,
    pub(crate) goals: ActorRef<GoalsMsg>,
    pub(crate) conns: ActorRef<ConnsMsg>,
    pub(crate) sync: ActorRef<SyncActorMsg>,
    pub(crate) added: tokio::sync::broadcast::Sender<AddedBatch>,
    pub(crate) address: Option<String>,
    pub(crate) key: PubKey,
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
    pub(crate) async fn new(parts: Parts) -> Result<Self, NodeError> {
        let account = ask(&parts.store, |reply| StoreMsg::Account { reply }).await?;
        Ok(Self {
            root: parts.root,
            join: parts.join,
            stop_reason: parts.stop_reason,
            store: parts.store,
            goals: parts.goals,
            conns: parts.conns,
            sync: parts.sync,
            added: parts.added,
            address: parts.address,
            key: parts.key,
            account: std::sync::Mutex::new(account),
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
        *self
            .account
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes this node a device of `account`: it publishes there from now on (its msgs, sets,
    /// dicts and account writes). The stored tangle of `account` must already add this
    /// node's key (an account-add another device of it made and this node synced). Not
    /// remembered across restarts: a program that wants that starts the node with
    /// `NodeConfig::account`.
    ///
    /// # Errors
    /// [`NodeError::Join`] if the account does not list this node's key here;
    /// [`NodeError::Stopped`].
    pub async fn join_account(&self, account: AccountId) -> Result<(), NodeError> {
        ask(&self.store, |reply| StoreMsg::JoinAccount {
            account,
            reply,
        })
        .await?
        .map_err(NodeError::Join)?;
        *self
            .account
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = account;
        Ok(())
    }

    /// Publishes `data` on this node's feed of `domain`; returns once it is durable.
    ///
    /// # Errors
    /// [`NodeError::Write`] for bad data or domain; [`NodeError::Stopped`].
    pub async fn publish(&self, domain: &str, data: Value) -> Result<MsgId, NodeError> {
        let domain = domain.to_owned();
        ask(&self.store, |reply| StoreMsg::Publish {
            domain,
            data,
            reply,
        })
        .await?
        .map_err(NodeError::Write)
    }

    /// Adds `item` to this node's set `subdomain`; the new msg's ID, or `None` if the item
    /// was already in the set.
    ///
    /// # Errors
    /// [`NodeError::Write`] for a bad subdomain; [`NodeError::Stopped`].
    pub async fn set_add(&self, subdomain: &str, item: &str) -> Result<Option<MsgId>, NodeError> {
        self.write(LocalWrite::SetAdd {
            subdomain: subdomain.to_owned(),
            item: item.to_owned(),
        })
        .await
    }

    /// Deletes `item` from this node's set `subdomain`; the new msg's ID, or `None` if the
    /// item was not in the set.
    ///
    /// # Errors
    /// [`NodeError::Write`] for a bad subdomain; [`NodeError::Stopped`].
    pub async fn set_del(&self, subdomain: &str, item: &str) -> Result<Option<MsgId>, NodeError> {
        self.write(LocalWrite::SetDel {
            subdomain: subdomain.to_owned(),
            item: item.to_owned(),
        })
        .await
    }

    /// Sets the fields of `update` in this node's dict `subdomain`; the new msg's ID, or
    /// `None` if every field already had that value.
    ///
    /// # Errors
    /// [`NodeError::Write`] for a bad subdomain or update; [`NodeError::Stopped`].
    pub async fn dict_update(
        &self,
        subdomain: &str,
        update: serde_json::Map<String, Value>,
    ) -> Result<Option<MsgId>, NodeError> {
        self.write(LocalWrite::DictUpdate {
            subdomain: subdomain.to_owned(),
            update,
        })
        .await
    }

    /// Adds `key` to this node's account (signed by the node's key), with the key's
    /// `consent` (`proto::account::consent`) and `powers`; returns the account msg's ID.
    ///
    /// # Errors
    /// [`NodeError::Write`] (e.g. a consent that does not verify); [`NodeError::Stopped`].
    pub async fn account_add(
        &self,
        key: PubKey,
        consent: String,
        powers: Vec<String>,
    ) -> Result<MsgId, NodeError> {
        self.write(LocalWrite::AccountAdd {
            key,
            consent,
            powers,
        })
        .await?
        .ok_or(NodeError::AccountMsgNotAdded)
    }

    async fn write(&self, write: LocalWrite) -> Result<Option<MsgId>, NodeError> {
        ask(&self.store, |reply| StoreMsg::Write { write, reply })
            .await?
            .map_err(NodeError::Write)
    }

    /// Adds a msg made elsewhere (validated like any other), as if published here.
    ///
    /// # Errors
    /// [`NodeError::Add`] if it does not validate; [`NodeError::Stopped`].
    pub async fn add(&self, msg: Msg, tangle: Option<TangleId>) -> Result<MsgId, NodeError> {
        ask(&self.store, |reply| StoreMsg::AddLocal {
            msg: Box::new(msg),
            tangle,
            reply,
        })
        .await?
        .map_err(NodeError::Add)
    }

    /// Sets the goal of a tangle.
    ///
    /// # Errors
    /// [`NodeError::Goal`] past the goal table's bound; [`NodeError::Stopped`].
    pub async fn set_goal(&self, tangle: TangleId, goal: Goal) -> Result<(), NodeError> {
        ask(&self.goals, |reply| GoalsMsg::Set {
            tangle,
            goal,
            reply,
        })
        .await?
        .map_err(NodeError::Goal)
    }

    /// Keeps a peer connected (dialing it now, and again after failures).
    ///
    /// # Errors
    /// [`NodeError::Stopped`].
    pub async fn connect(&self, target: DialTarget) -> Result<(), NodeError> {
        ask(&self.conns, |reply| ConnsMsg::AddTarget { target, reply }).await
    }

    /// A handle that can only add dial targets, cheap to clone, for a task that dials on the
    /// node's behalf (e.g. the attendants hubs list).
    #[must_use]
    pub fn dialer(&self) -> NodeDialer {
        NodeDialer(self.conns.clone())
    }

    /// Calls the app method `name` (e.g. `["promise", "follow"]`) on the open connection to
    /// `remote`, and waits for its answer (no deadline of its own: wrap it in a timeout).
    ///
    /// # Errors
    /// [`NodeError::Call`] when not connected to `remote`, when the remote refuses or answers
    /// with an error, or the connection closes first; [`NodeError::Stopped`].
    pub async fn call(
        &self,
        remote: PubKey,
        name: &[&str],
        args: Vec<Value>,
    ) -> Result<Value, NodeError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let call = AppCall {
            name: name.iter().map(|part| (*part).to_owned()).collect(),
            args,
            reply,
        };
        self.conns
            .cast(ConnsMsg::Call { remote, call })
            .map_err(|_| NodeError::Stopped)?;
        match answer.await {
            Ok(result) => result.map_err(NodeError::Call),
            Err(_) => Err(NodeError::Call("the connection went away".to_owned())),
        }
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
    /// [`NodeError::Store`] on a store failure; [`NodeError::Stopped`].
    pub async fn snapshot(&self) -> Result<Snapshot, NodeError> {
        ask(&self.store, |reply| StoreMsg::Snapshot { reply })
            .await?
            .map_err(NodeError::Store)
    }

    /// A tangle's msgs in topological order (erased ones with data null).
    ///
    /// # Errors
    /// [`NodeError::Store`] on a store failure; [`NodeError::Stopped`].
    pub async fn tangle_msgs(
        &self,
        tangle: TangleId,
    ) -> Result<Vec<std::sync::Arc<Msg>>, NodeError> {
        ask(&self.store, |reply| StoreMsg::TangleMsgs { tangle, reply })
            .await?
            .map_err(NodeError::Store)
    }

    /// How many msgs `tangle` holds (root included) and how many of them have data; cheap
    /// enough to poll.
    ///
    /// # Errors
    /// [`NodeError::Store`] on a store failure; [`NodeError::Stopped`].
    pub async fn tangle_size(&self, tangle: TangleId) -> Result<(usize, usize), NodeError> {
        ask(&self.store, |reply| StoreMsg::TangleSize { tangle, reply })
            .await?
            .map_err(NodeError::Store)
    }

    /// Runs `read` on the database, in the store actor, between its writes: it sees every
    /// acknowledged write. Keep it short: sync and writes wait while it runs.
    ///
    /// # Errors
    /// [`NodeError::Stopped`].
    pub async fn read<T, F>(&self, read: F) -> Result<T, NodeError>
    where
        T: Send + 'static,
        F: FnOnce(&mut proto::db::Db<AnyStore>) -> T + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.store
            .cast(StoreMsg::Read(Box::new(move |db| {
                let _ = reply.send(read(db));
            })))
            .map_err(|_| NodeError::Stopped)?;
        answer.await.map_err(|_| NodeError::Stopped)
    }

    /// Every batch of msgs the store adds from now on (published here or synced), once
    /// durable. A receiver more than `ADDED_BATCHES_BUFFERED` batches behind loses the oldest
    /// and is told how many (`RecvError::Lagged`).
    #[must_use]
    pub fn subscribe_added(&self) -> tokio::sync::broadcast::Receiver<AddedBatch> {
        self.added.subscribe()
    }

    /// The goal table, in the order tangles first got a goal (`none` goals included).
    ///
    /// # Errors
    /// [`NodeError::Stopped`].
    pub async fn goals(&self) -> Result<Vec<(TangleId, Goal)>, NodeError> {
        let goals = ask(&self.goals, |reply| GoalsMsg::Get { reply }).await?;
        Ok(goals
            .iter()
            .map(|(tangle, goal)| (*tangle, *goal))
            .collect())
    }

    /// Every connection (with its counters and sync session), then every dial target that
    /// has no connection now (with why its last attempt failed).
    ///
    /// # Errors
    /// [`NodeError::Stopped`].
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        let rows = ask(&self.conns, |reply| ConnsMsg::List { reply }).await?;
        let sessions: std::collections::BTreeMap<_, _> =
            ask(&self.sync, |reply| SyncActorMsg::Summaries { reply })
                .await?
                .into_iter()
                .collect();
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut info = row.info;
                info.sync = row.conn.and_then(|conn| sessions.get(&conn).copied());
                info
            })
            .collect())
    }

    /// Closes every connection, flushes the store and stops the node.
    ///
    /// # Errors
    /// [`NodeError::Store`] if the final flush fails.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let stopped = self.stop().await;
        let _ = self.join.await;
        stopped
    }

    /// As [`NodeHandle::shutdown`], for a handle that is shared: returns once the node's
    /// actors have stopped.
    ///
    /// # Errors
    /// [`NodeError::Store`] if the final flush fails.
    pub async fn stop(&self) -> Result<(), NodeError> {
        let _ = ask(&self.conns, |reply| ConnsMsg::Shutdown { reply }).await;
        let flushed = ask(&self.store, |reply| StoreMsg::Flush { reply }).await;
        self.root.stop(Some("shutdown".to_owned()));
        self.root.wait(None).await.unwrap_or(());
        flushed?.map_err(NodeError::Store)
    }

    /// What can stop this node as a crash would (see [`NodeKiller`]).
    #[must_use]
    pub fn killer(&self) -> NodeKiller {
        NodeKiller(self.root.clone())
    }

    /// Waits until the node stops (it stops by itself only when an actor fails).
    pub async fn stopped(self) {
        let _ = self.join.await;
    }

    /// Why the node stopped by itself, if it did (an actor failed).
    #[must_use]
    pub fn failure(&self) -> Option<String> {
        self.stop_reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits until the node stops by itself (an actor failed: e.g. the store can no longer
    /// write) and says why. Cancel safe; once the node stopped, it returns at once.
    pub async fn wait_stopped(&self) -> String {
        self.root.wait(None).await.unwrap_or(());
        self.failure()
            .unwrap_or_else(|| "the node stopped".to_owned())
    }
}

/// Stops a node at once, as a crash of its process would: every actor is killed where it
/// stands (ractor's `kill`: no `post_stop`, no goodbyes to remotes, no final flush). What the
/// store acknowledged stays. For a simulator that runs many nodes in one runtime and must
/// crash one of them.
#[derive(Debug, Clone)]
pub struct NodeKiller(ActorRef<RootMsg>);

impl NodeKiller {
    /// Kills the node's root actor and, through supervision, all of its actors.
    pub fn kill(&self) {
        self.0.kill();
    }
}
