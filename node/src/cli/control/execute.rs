//! Running control requests against the running node: the one executor behind both control
//! channels (standard input and the local socket). Values answered here are printed by the
//! `ppppp` commands as they are; `cli::local` answers the same requests from a stopped
//! store with the same values.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proto::goals::Goal;
use proto::ids::{AccountId, MsgId};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::request::{METHODS, ReadRequest, Request};
use crate::cli::follow::{self, FOLLOWS_SUBDOMAIN, GoalsFile};
use crate::cli::query::{self, READ_PAGE_MSGS};
use crate::cli::received::{self, ReceivedTimes};
use crate::peer::{NodeError, NodeHandle, PeerInfo, PeerState, Transport};

/// How long a request that found the node stopped waits to learn why.
const STOP_REASON_WAIT: Duration = Duration::from_secs(2);
/// How often `connect` looks at the dial's progress while it waits for the outcome.
const CONNECT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Everything the executor needs: the node and what `serve` keeps beside it.
#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) node: NodeHandle,
    /// The node's keypair, for what the peer signs outside its node (a consent to join an
    /// account).
    pub(crate) keypair: proto::keys::Keypair,
    pub(crate) dir: PathBuf,
    /// The multiserver address peers dial.
    pub(crate) address: String,
    pub(crate) transport: Transport,
    /// Longest wait for a `connect` that waits: a TCP connect plus a handshake.
    pub(crate) connect_wait: Duration,
    pub(crate) goals_file: tokio::sync::Mutex<GoalsFile>,
    pub(crate) received: std::sync::Mutex<ReceivedTimes>,
    /// The hub client (`None` for a plaintext peer).
    pub(crate) hubs: Option<crate::hub::Attendance>,
    /// The promises this peer made (`DIR/promises.json`).
    pub(crate) promises: crate::cli::promises::PromiseBook,
}

impl Control {
    /// Notes receive times (best effort: a failure is logged; the msgs are stored anyway).
    pub(crate) fn note_received(&self, ids: &[MsgId]) {
        let mut times = self
            .received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = times.note(ids, received::now_ms()) {
            tracing::warn!(target: "ppppp::serve", error = %format!("{error:#}"), "receive times not noted");
        }
    }

    fn received_at(&self, id: &MsgId) -> Option<u64> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
    }

    /// Answers one request (not a stream).
    ///
    /// # Errors
    /// What went wrong, for a person.
    pub(crate) async fn execute(&self, request: Request) -> anyhow::Result<Value> {
        match self.answer(request).await {
            Ok(value) => Ok(value),
            Err(error) => Err(self.explain(error).await),
        }
    }

    /// A node that stopped under a request says why (the peer exits right after). The
    /// request can learn that the node stopped before the root actor has noted why: wait
    /// for the root a moment.
    async fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        if !matches!(error.downcast_ref::<NodeError>(), Some(NodeError::Stopped)) {
            return error;
        }
        let _ = tokio::time::timeout(STOP_REASON_WAIT, self.node.wait_stopped()).await;
        match self.node.failure() {
            Some(failure) => anyhow::anyhow!(
                "the peer's node stopped ({failure}); the peer is exiting: restart it"
            ),
            None => error,
        }
    }

    async fn answer(&self, request: Request) -> anyhow::Result<Value> {
        let node = &self.node;
        match request {
            Request::Manifest => Ok(Value::Object(
                METHODS
                    .iter()
                    .map(|(name, kind)| ((*name).to_owned(), Value::from(*kind)))
                    .collect(),
            )),
            Request::Whoami => Ok(query::whoami_value(
                Some(&node.account()),
                node.key().as_str(),
                Some(&self.address),
            )),
            Request::Publish { domain, data } => {
                // `note_added` notes every added msg, but beside this task: note the new
                // msgs here too, so a read right after this reply has their times (the
                // first time noted wins; a moot noted before keeps its time).
                let id = node.publish(&domain, data).await?;
                let feed = proto::msg::feed_id(&node.account(), &domain);
                self.note_received(&[feed, id]);
                Ok(json!({"msg": id.to_string(), "feed": feed.to_string()}))
            }
            Request::Follow {
                account,
                domain,
                goal,
            } => self.follow(account, &domain, goal).await,
            Request::Unfollow { account } => self.unfollow(account).await,
            Request::Peers => {
                let now = received::now_ms();
                let peers: Vec<Value> = node
                    .peers()
                    .await?
                    .iter()
                    .map(|peer| peer_value(peer, now))
                    .collect();
                Ok(json!({ "peers": peers }))
            }
            Request::Connect { address, wait } => self.connect(&address, wait).await,
            Request::Status => self.status().await,
            Request::InviteCreate { hub, kind } => self.invite_create(hub.as_deref(), kind).await,
            Request::InviteUse { uri, account } => self.invite_use(&uri, account).await,
            Request::Read(_) => anyhow::bail!(
                "feed, log and hist are streams: call them on the control socket (`ppppp \
                 feed`, `ppppp log`, `ppppp hist`)"
            ),
            other => super::tools::execute(node, other).await,
        }
    }

    pub(crate) async fn follow(
        &self,
        account: AccountId,
        domain: &str,
        goal: Goal,
    ) -> anyhow::Result<Value> {
        anyhow::ensure!(
            account != self.node.account(),
            "{account} is this peer's own account"
        );
        let goals = follow::follow_goals(&account, domain, goal)?;
        let mut file = self.goals_file.lock().await;
        let msg = self
            .node
            .set_add(FOLLOWS_SUBDOMAIN, account.as_str())
            .await?;
        let follows = proto::set::feed_id(&self.node.account(), FOLLOWS_SUBDOMAIN);
        self.note_received(&[follows].into_iter().chain(msg).collect::<Vec<_>>());
        file.add(&goals)?;
        for entry in &goals {
            self.node.set_goal(entry.tangle, entry.goal).await?;
        }
        Ok(follow::follow_value(&account, msg, &goals))
    }

    async fn unfollow(&self, account: AccountId) -> anyhow::Result<Value> {
        let mut file = self.goals_file.lock().await;
        let msg = self
            .node
            .set_del(FOLLOWS_SUBDOMAIN, account.as_str())
            .await?;
        self.note_received(&msg.into_iter().collect::<Vec<_>>());
        let removed = file.remove_account(&account)?;
        for entry in &removed {
            self.node.set_goal(entry.tangle, Goal::None).await?;
        }
        Ok(follow::follow_value(&account, msg, &removed))
    }

    async fn status(&self) -> anyhow::Result<Value> {
        let account = self.node.account();
        let (facts, follows) = self
            .node
            .read(move |db| {
                let facts = query::store_facts(db.store())?;
                Ok::<_, crate::peer::StoreFailure>((facts, query::follows(db, &account)?))
            })
            .await??;
        let goals = self.node.goals().await?;
        let connections = self
            .node
            .peers()
            .await?
            .iter()
            .filter(|peer| matches!(peer.state, PeerState::Connected | PeerState::Handshaking))
            .count();
        Ok(query::status_value(
            Some(&account),
            facts,
            crate::cli::dir::log_bytes(&self.dir),
            follows,
            &goals,
            connections,
        ))
    }

    /// Dials `address` unless the peer already keeps it (one target per address); with
    /// `wait`, answers once it is connected or its attempt failed.
    async fn connect(&self, address: &str, wait: bool) -> anyhow::Result<Value> {
        let target = crate::cli::dial::dial_target(address, self.transport)?;
        let known = self.rows_at(&target.address).await?;
        if known.is_empty() {
            self.node.connect(target.clone()).await?;
        }
        if !wait {
            return Ok(json!({}));
        }
        let deadline = tokio::time::Instant::now() + self.connect_wait;
        loop {
            let rows = self.rows_at(&target.address).await?;
            if let Some(row) = rows.iter().find(|row| row.state == PeerState::Connected) {
                return Ok(json!({
                    "address": address,
                    "key": row.key.map(|key| key.to_string()),
                    "state": row.state.as_str(),
                }));
            }
            let tried = rows.iter().any(|row| row.attempts > 0);
            if tried && rows.iter().all(|row| row.state == PeerState::Retrying) {
                let error = rows.iter().find_map(|row| row.last_error.as_deref());
                anyhow::bail!(connect_failure(address, error));
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{address} did not answer within {} s (the peer keeps trying it)",
                self.connect_wait.as_secs()
            );
            tokio::time::sleep(CONNECT_POLL_INTERVAL).await;
        }
    }

    /// The dial targets (and their connections) at `address`.
    async fn rows_at(&self, address: &str) -> anyhow::Result<Vec<PeerInfo>> {
        Ok(self
            .node
            .peers()
            .await?
            .into_iter()
            .filter(|peer| peer.outbound && peer.address == address)
            .collect())
    }

    /// Streams a read: the msgs now stored, then (if live) those added from now on. Each
    /// line goes to `send`; returns when done, `Err` with the message to end the stream with.
    pub(crate) async fn stream<F, Fut>(&self, read: ReadRequest, mut send: F) -> Result<(), String>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        // Subscribe first, so nothing added while the stored msgs stream is missed.
        let mut live = read.live.then(|| self.node.subscribe_added());
        let selection = read.selection.clone();
        let window = read.window;
        let ids = self
            .node
            .read(move |db| query::select(db, &selection, window).map_err(|e| e.to_string()))
            .await
            .map_err(|error| error.to_string())??;
        let limit = window.limit.unwrap_or(u64::MAX);
        let mut sent = 0u64;
        for page in ids.chunks(READ_PAGE_MSGS) {
            let page = page.to_vec();
            let msgs = self
                .node
                .read(move |db| query::fetch(db, &page).map_err(|e| e.to_string()))
                .await
                .map_err(|error| error.to_string())??;
            for (id, msg) in msgs {
                if !send(query::entry_line(&id, &msg, self.received_at(&id))).await {
                    return Ok(());
                }
                sent += 1;
            }
        }
        let Some(live) = &mut live else {
            return Ok(());
        };
        let streamed: BTreeSet<MsgId> = ids.into_iter().collect();
        while sent < limit {
            let batch = match live.recv().await {
                Ok(batch) => batch,
                Err(RecvError::Lagged(missed)) => {
                    return Err(format!(
                        "this live stream fell {missed} batches behind and lost them; run the \
                         command again"
                    ));
                }
                Err(RecvError::Closed) => return Err("the peer is stopping".to_owned()),
            };
            for (id, msg) in batch.iter() {
                if sent >= limit || streamed.contains(id) || !read.selection.admits(id, msg) {
                    continue;
                }
                self.note_received(&[*id]);
                if !send(query::entry_line(id, msg, self.received_at(id))).await {
                    return Ok(());
                }
                sent += 1;
            }
        }
        Ok(())
    }
}

/// Notes a receive time for every msg the node adds (published here or synced), until the
/// node stops.
pub(crate) async fn note_added(control: Arc<Control>) {
    let mut added = control.node.subscribe_added();
    loop {
        match added.recv().await {
            Ok(batch) => {
                let ids: Vec<MsgId> = batch.iter().map(|(id, _)| *id).collect();
                control.note_received(&ids);
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(target: "ppppp::serve", missed, "receive times not noted for some batches");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// What a failed `connect` says, for a person.
fn connect_failure(address: &str, error: Option<&str>) -> String {
    let error = error.unwrap_or("no reason given");
    if let Some(error) = error.strip_prefix("handshake failed: ") {
        format!(
            "{address} is not a ppppp/pzp peer, or not the one with that key: the handshake \
             failed ({error}); the peer keeps retrying it with backoff"
        )
    } else if error.contains("remote closed") {
        format!(
            "{address} is not a ppppp/pzp peer, or not the one with that key: the handshake \
             failed ({error}); the peer keeps retrying it with backoff"
        )
    } else {
        format!("cannot connect to {address}: {error}; the peer keeps retrying it with backoff")
    }
}

/// One line of `ppppp peers`.
pub(crate) fn peer_value(peer: &PeerInfo, now_ms: u64) -> Value {
    let since = peer
        .age
        .map(|age| now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)));
    let sync = peer.sync.map(|sync| {
        let state = if sync.busy {
            "syncing"
        } else if sync.realtime > 0 {
            "live"
        } else {
            "idle"
        };
        json!({
            "state": state,
            "requested": sync.requested,
            "realtime": sync.realtime,
            "received": sync.received_msgs,
            "pushed": sync.pushed_msgs,
            "method": if sync.reconcile { "sync.reconcile" } else { "sync.connect" },
        })
    });
    let mut value = json!({
        "address": peer.address,
        "key": peer.key.map(|key| key.to_string()),
        "direction": if peer.outbound { "out" } else { "in" },
        "state": peer.state.as_str(),
        "since": since,
        "bytesIn": peer.bytes_in,
        "bytesOut": peer.bytes_out,
        "sync": sync,
    });
    if let (Some(fields), Some(error)) = (value.as_object_mut(), &peer.last_error) {
        fields.insert("attempts".to_owned(), Value::from(peer.attempts));
        fields.insert("lastError".to_owned(), Value::from(error.as_str()));
    }
    value
}
