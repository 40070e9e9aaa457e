//! The tangle-sync actor: one `proto::sync::Session` per connection, all sharing the node's
//! goals and database. It feeds each session what its connection received, what the store
//! added and what the goals became, and applies the session's outputs: objects go to the
//! connection, commits and prunes to the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use proto::goals::{Goal, Goals};
use proto::ids::{MsgId, TangleId};
use proto::msg::Msg;
use proto::sync::{self, IndexedDb, Input, Output, Session, SyncMsg as WireMsg, Time};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::Value;

use super::connection::{ConnMsg, OutgoingSync};
use super::events::{DisconnectReason, NodeEvent, Remote};
use super::peers::SyncSummary;
use super::store::StoreMsg;
use super::{ConnId, DbState, Emitter, SharedDb};

/// What the sync actor is told.
pub(crate) enum SyncMsg {
    /// A connection opened its `sync.connect` stream; `outbound` connections (we dialed)
    /// start initiating right away, as the reference's dialer does once `sync.start()` ran.
    Opened {
        conn: ConnId,
        outbound: bool,
        remote: Remote,
        connection: ActorRef<ConnMsg>,
    },
    /// Objects arrived on a connection's sync stream. The reply is the connection's credit
    /// to read more: it comes only once these are handled (and committed).
    Received {
        conn: ConnId,
        objects: Vec<Value>,
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
    /// What each connection's session is doing (`NodeHandle::peers`).
    Summaries {
        reply: RpcReplyPort<Vec<(ConnId, SyncSummary)>>,
    },
}

/// The sync actor.
pub(crate) struct SyncActor;

pub(crate) struct SyncArgs {
    pub(crate) db: SharedDb,
    pub(crate) store: ActorRef<StoreMsg>,
    pub(crate) goals: Goals,
    pub(crate) events: Emitter,
}

struct Entry {
    session: Session,
    connection: ActorRef<ConnMsg>,
    remote: Remote,
    /// Sync objects exchanged per tangle, for the `SyncFinished` event.
    objects: BTreeMap<TangleId, u64>,
}

pub(crate) struct SyncState {
    db: SharedDb,
    store: ActorRef<StoreMsg>,
    goals: Goals,
    sessions: BTreeMap<ConnId, Entry>,
    events: Emitter,
    /// Inputs handled, as the sessions' clock (they only use it to label effects).
    ticks: u64,
}

impl Actor for SyncActor {
    type Msg = SyncMsg;
    type State = SyncState;
    type Arguments = SyncArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SyncMsg>,
        args: SyncArgs,
    ) -> Result<SyncState, ActorProcessingErr> {
        Ok(SyncState {
            db: args.db,
            store: args.store,
            goals: args.goals,
            sessions: BTreeMap::new(),
            events: args.events,
            ticks: 0,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<SyncMsg>,
        message: SyncMsg,
        state: &mut SyncState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SyncMsg::Opened {
                conn,
                outbound,
                remote,
                connection,
            } => {
                let entry = Entry {
                    session: Session::new(sync::Config::default()),
                    connection,
                    remote,
                    objects: BTreeMap::new(),
                };
                state.sessions.insert(conn, entry);
                if outbound {
                    state.feed(conn, Input::Start).await?;
                }
            }
            SyncMsg::Received {
                conn,
                objects,
                reply,
            } => {
                for object in objects {
                    if let (Some(entry), Some(tangle)) =
                        (state.sessions.get_mut(&conn), tangle_of(&object))
                    {
                        *entry.objects.entry(tangle).or_default() += 1;
                    }
                    state.feed(conn, Input::Received(object)).await?;
                }
                let _ = reply.send(());
            }
            SyncMsg::Closed { conn } => {
                if let Some(mut entry) = state.sessions.remove(&conn) {
                    let mut out = Vec::new();
                    let mut guard = state.db.lock();
                    let DbState { db, index } = &mut *guard;
                    entry.session.handle(
                        Time(state.ticks),
                        Input::Closed,
                        &mut IndexedDb::new(db, index),
                        &state.goals,
                        &mut out,
                    )?;
                }
            }
            SyncMsg::LocalAdded { msgs, origin } => {
                let conns: Vec<ConnId> = state.sessions.keys().copied().collect();
                for conn in conns {
                    let input = Input::LocalAdded {
                        msgs: msgs.clone(),
                        from_this_remote: origin == Some(conn),
                    };
                    state.feed(conn, input).await?;
                }
            }
            SyncMsg::SetGoal { tangle, goal } => {
                if let Err(error) = state.goals.set(tangle, goal) {
                    tracing::warn!(target: "ppppp::sync", %tangle, %error, "goal not set");
                    return Ok(());
                }
                let conns: Vec<ConnId> = state.sessions.keys().copied().collect();
                for conn in conns {
                    state.feed(conn, Input::GoalChanged { tangle }).await?;
                }
            }
            SyncMsg::Summaries { reply } => {
                let summaries = state
                    .sessions
                    .iter()
                    .map(|(conn, entry)| (*conn, summary(&entry.session)))
                    .collect();
                let _ = reply.send(summaries);
            }
        }
        Ok(())
    }
}

fn summary(session: &Session) -> SyncSummary {
    SyncSummary {
        busy: session.is_busy(),
        requested: session.requested().count(),
        realtime: session.realtime().count(),
        received_msgs: session.stats().committed_msgs,
        pushed_msgs: session.stats().realtime_pushed,
    }
}

/// The `id` of a received sync object, if it has a valid one.
fn tangle_of(object: &Value) -> Option<TangleId> {
    object
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| TangleId::parse(id).ok())
}

impl SyncState {
    /// Runs one input through one connection's session and applies the outputs.
    async fn feed(&mut self, conn: ConnId, input: Input) -> Result<(), ActorProcessingErr> {
        self.ticks += 1;
        let mut out = Vec::new();
        {
            let Some(entry) = self.sessions.get_mut(&conn) else {
                return Ok(());
            };
            let mut guard = self.db.lock();
            let DbState { db, index } = &mut *guard;
            entry.session.handle(
                Time(self.ticks),
                input,
                &mut IndexedDb::new(db, index),
                &self.goals,
                &mut out,
            )?;
            #[cfg(debug_assertions)]
            entry.session.check_invariants();
        }
        self.apply(conn, out).await
    }

    async fn apply(
        &mut self,
        conn: ConnId,
        outputs: Vec<Output>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(entry) = self.sessions.get_mut(&conn) else {
            return Ok(());
        };
        let connection = entry.connection.clone();
        let remote = entry.remote.clone();
        let mut sends: Vec<OutgoingSync> = Vec::new();
        for output in outputs {
            match output {
                Output::Send(message) => {
                    if let Some(entry) = self.sessions.get_mut(&conn) {
                        *entry.objects.entry(message.id).or_default() += 1;
                    }
                    sends.push(outgoing(&message, self.events.is_on()));
                }
                Output::Commit { tangle, msgs } => {
                    // Objects already produced go out first: the reference sends before its
                    // asynchronous commit completes, too.
                    if !sends.is_empty() {
                        let _ = connection.cast(ConnMsg::SendSync(std::mem::take(&mut sends)));
                    }
                    let from = remote.clone();
                    let committed = self
                        .store
                        .call(
                            |reply| StoreMsg::Commit {
                                tangle,
                                msgs,
                                from,
                                origin: conn,
                                reply,
                            },
                            None,
                        )
                        .await;
                    if committed.is_err() {
                        return Err("the store actor is gone".into());
                    }
                }
                Output::PruneNewest { tangle, count } => {
                    let _ = self.store.cast(StoreMsg::PruneNewest { tangle, count });
                }
                Output::Finished { tangle } => {
                    let objects = self
                        .sessions
                        .get(&conn)
                        .and_then(|entry| entry.objects.get(&tangle))
                        .copied()
                        .unwrap_or(0);
                    self.events.emit(NodeEvent::SyncFinished {
                        remote: remote.clone(),
                        tangle,
                        objects,
                    });
                }
                Output::Refused(refusal) => {
                    tracing::debug!(target: "ppppp::sync", %remote, %refusal, "refused a sync object");
                }
                Output::Close(reason) => {
                    let _ = connection.cast(ConnMsg::Close(DisconnectReason::Protocol(
                        reason.to_string(),
                    )));
                }
            }
        }
        if !sends.is_empty() {
            let _ = connection.cast(ConnMsg::SendSync(sends));
        }
        Ok(())
    }
}

/// A sync object as JSON, with its msg and bloom bytes measured when events are recorded.
fn outgoing(message: &WireMsg, measure: bool) -> OutgoingSync {
    let mut json = String::with_capacity(128);
    let msg_bytes = message.write_json(&mut json);
    let bloom_bytes = match message.bloom() {
        Some(bloom) if measure => {
            let mut text = String::new();
            bloom.write_json(&mut text);
            text.len()
        }
        _ => 0,
    };
    OutgoingSync {
        json,
        msg_bytes,
        bloom_bytes,
    }
}
