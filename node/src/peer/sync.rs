//! The tangle-sync actor: the node's `proto::sync::Sessions` (one pzp-sync session per
//! `sync.connect` connection and one `proto::sync::recon::ReconSession` per `sync.reconcile`
//! connection, all sharing the node's goals, database and fetch claims). It feeds them what
//! connections received, what the store added and what the goals became, wakes them when a
//! fetch claim expires, and applies their outputs, both machines' through one path
//! ([`Effect`]): objects go to the connection, commits and prunes to the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use proto::goals::{Goal, Goals};
use proto::ids::{MsgId, TangleId};
use proto::msg::{DigestedMsg, Msg};
use proto::sync::recon::{self, ReconSession};
use proto::sync::{
    self, CloseReason, Event, IndexedDb, Output, SessionOutput, SessionRef, Sessions, Time,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;

use super::events::{DisconnectReason, NodeEvent, Remote};
use super::msgs::{ConnMsg, OutgoingSync, StoreMsg, SyncActorMsg, SyncObject};
use super::peers::SyncSummary;
use super::reconcile::SyncMethod;
use super::{AbortOnDrop, ConnId, DbState, Emitter, SharedDb};

/// The sync actor.
pub(crate) struct SyncActor;

pub(crate) struct SyncArgs {
    pub(crate) db: SharedDb,
    pub(crate) store: ActorRef<StoreMsg>,
    pub(crate) goals: Goals,
    pub(crate) events: Emitter,
    pub(crate) config: sync::Config,
    /// Whether this node dials with `sync.reconcile` (its goal tangles' reconcile items are
    /// then built at start too).
    pub(crate) reconcile: bool,
}

/// Most tangles whose sync objects a link counts (for `SyncFinished`). A remote names the
/// tangle of every object it sends, so without a bound it could grow the map at will;
/// objects of tangles beyond the bound are not counted.
pub(crate) const COUNTED_TANGLES_PER_LINK_MAX: usize = 4096;

/// Most tangles the actor numbers for its links' object counts over its life. Remotes name
/// the tangle of every object they send, so without a bound they could grow the numbering at
/// will; objects of tangles past the bound are not counted.
pub(crate) const COUNTED_TANGLES_MAX: usize = 1 << 16;

/// A number per tangle, shared by every link's [`ObjectCounts`]: a busy node counts a few
/// hundred tangles on each of a hundred links, and a count keyed by a 4-byte number costs a
/// fraction of one keyed by a 45-byte ID.
#[derive(Debug, Default)]
struct TangleNumbers(BTreeMap<TangleId, u32>);

impl TangleNumbers {
    /// The number of `tangle`, given one if there is room ([`COUNTED_TANGLES_MAX`]).
    fn number(&mut self, tangle: TangleId) -> Option<u32> {
        if let Some(number) = self.0.get(&tangle) {
            return Some(*number);
        }
        if self.0.len() >= COUNTED_TANGLES_MAX {
            return None;
        }
        let number = u32::try_from(self.0.len()).ok()?;
        self.0.insert(tangle, number);
        Some(number)
    }

    /// The number of `tangle`, if it has one.
    fn get(&self, tangle: &TangleId) -> Option<u32> {
        self.0.get(tangle).copied()
    }
}

/// The actor's side of one connection's sync stream.
struct Link {
    connection: ActorRef<ConnMsg>,
    remote: Remote,
    /// Sync objects exchanged per tangle, for the `SyncFinished` event.
    objects: ObjectCounts,
}

/// Sync objects per tangle (by its [`TangleNumbers`] number), for at most
/// [`COUNTED_TANGLES_PER_LINK_MAX`] tangles.
#[derive(Debug, Default)]
struct ObjectCounts(BTreeMap<u32, u64>);

impl ObjectCounts {
    /// Counts an object of the tangle numbered `tangle` (`None`: past the numbering's bound).
    fn count(&mut self, tangle: Option<u32>) {
        let Some(tangle) = tangle else {
            return;
        };
        if let Some(count) = self.0.get_mut(&tangle) {
            *count += 1;
        } else if self.0.len() < COUNTED_TANGLES_PER_LINK_MAX {
            self.0.insert(tangle, 1);
        }
    }

    fn of(&self, tangle: Option<u32>) -> u64 {
        tangle
            .and_then(|tangle| self.0.get(&tangle).copied())
            .unwrap_or(0)
    }
}

pub(crate) struct SyncState {
    db: SharedDb,
    store: ActorRef<StoreMsg>,
    goals: Goals,
    /// Every connection's session, of either method (the `sync.reconcile` ones at most
    /// `RECONCILE_PEERS_MAX`, which the connections enforce when they negotiate).
    sessions: Sessions<ConnId>,
    links: BTreeMap<ConnId, Link>,
    /// Numbers for the tangles the links count objects of.
    tangle_numbers: TangleNumbers,
    events: Emitter,
    /// The origin of the sessions' clock.
    started: Instant,
    /// The wake-up armed for the sessions' deadline, and when it fires.
    wake: Option<(Time, WakeTimer)>,
    /// Inputs fed to the sessions so far (debug builds check the machine's invariants on a
    /// schedule of them, [`invariants_due`]).
    #[cfg(debug_assertions)]
    fed: u64,
}

/// Whether debug builds check the sessions' invariants after input number `fed`: after each
/// of the first inputs, then after every 64th. A check walks every tracked tangle of every
/// session (and the peer's numbering), so checking after every input made a node under many
/// sessions of thousands of tangles quadratic (the random-tangle attack test spun for
/// minutes); proto's own tests still check after every step.
#[cfg(debug_assertions)]
fn invariants_due(fed: u64) -> bool {
    fed <= 256 || fed.is_multiple_of(64)
}

/// A `send_after` of [`SyncActorMsg::Tick`], cancelled when dropped.
/// Indexes the goal tangles before the node takes connections, so a peer that restarts does
/// not load and index what it holds on its first sync's critical path (`SyncIndex::warm_goals`
/// bounds the work). A store failure here is only logged: the first sync of the tangle meets
/// it again and reports it there.
fn warm_goal_tangles(db: &SharedDb, goals: &Goals, reconcile: bool) {
    let mut state = db.lock();
    let DbState { db, index } = &mut *state;
    if let Err(error) = index.warm_goals(db, goals, reconcile, sync::WARMED_AT_START_MSGS_MAX) {
        tracing::warn!(target: "ppppp::sync", %error, "goal tangles not indexed at start");
    }
}

type WakeTimer = AbortOnDrop<Result<(), ractor::MessagingErr<SyncActorMsg>>>;

impl Actor for SyncActor {
    type Msg = SyncActorMsg;
    type State = SyncState;
    type Arguments = SyncArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SyncActorMsg>,
        args: SyncArgs,
    ) -> Result<SyncState, ActorProcessingErr> {
        warm_goal_tangles(&args.db, &args.goals, args.reconcile);
        Ok(SyncState {
            db: args.db,
            store: args.store,
            goals: args.goals,
            sessions: Sessions::new(args.config),
            links: BTreeMap::new(),
            tangle_numbers: TangleNumbers::default(),
            events: args.events,
            started: Instant::now(),
            wake: None,
            #[cfg(debug_assertions)]
            fed: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SyncActorMsg>,
        message: SyncActorMsg,
        state: &mut SyncState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SyncActorMsg::Opened {
                conn,
                outbound,
                remote,
                connection,
                method,
            } => {
                let link = Link {
                    connection,
                    remote,
                    objects: ObjectCounts::default(),
                };
                state.opened(conn, outbound, link, method).await?;
            }
            SyncActorMsg::Received {
                conn,
                objects,
                reply,
            } => {
                state.received(conn, objects).await?;
                let _ = reply.send(());
            }
            SyncActorMsg::Closed { conn } => {
                state.feed(Event::Closed { key: conn }).await?;
                state.links.remove(&conn);
            }
            SyncActorMsg::LocalAdded { msgs, origin } => {
                state.local_added(msgs, origin).await?;
            }
            SyncActorMsg::SetGoal { tangle, goal } => {
                state.set_goal(tangle, goal).await?;
            }
            SyncActorMsg::Tick => {
                state.wake = None;
                state.feed(Event::Tick).await?;
            }
            SyncActorMsg::Summaries { reply } => {
                let _ = reply.send(state.summaries());
            }
        }
        state.arm_wake(&myself);
        Ok(())
    }
}

fn summary(session: SessionRef<'_>) -> SyncSummary {
    SyncSummary {
        busy: session.is_busy(),
        requested: session.requested().count(),
        realtime: session.realtime().count(),
        received_msgs: session.stats().committed_msgs,
        pushed_msgs: session.stats().realtime_pushed,
        reconcile: false,
    }
}

fn reconcile_summary(session: &ReconSession) -> SyncSummary {
    SyncSummary {
        busy: session.is_busy(),
        requested: session.in_progress().count(),
        realtime: session.realtime().count(),
        received_msgs: session.stats().committed_msgs,
        pushed_msgs: session.stats().realtime_pushed,
        reconcile: true,
    }
}

/// What the sync actor does for either machine's output: the one apply path for pzp-sync's
/// [`Output`] and `sync.reconcile`'s [`recon::Output`].
enum Effect {
    /// Send an object of `tangle` on the connection.
    Send {
        tangle: TangleId,
        item: OutgoingSync,
    },
    /// Have the store add msgs.
    Commit {
        tangle: TangleId,
        msgs: Vec<DigestedMsg>,
    },
    /// Have the store prune.
    PruneNewest { tangle: TangleId, count: u64 },
    /// An exchange of `tangle` ended on this side.
    Finished { tangle: TangleId },
    /// A refused object or a failed exchange, for the log.
    Refused(String),
    /// Close the connection.
    Close(CloseReason),
}

impl Effect {
    fn of(output: SessionOutput, measure: bool) -> Self {
        match output {
            SessionOutput::Sync(output) => Self::of_session(output, measure),
            SessionOutput::Reconcile(output) => Self::of_reconcile(output, measure),
        }
    }

    fn of_session(output: Output, measure: bool) -> Self {
        match output {
            Output::Send(message) => Self::Send {
                tangle: message.id,
                item: outgoing(&message, measure),
            },
            Output::Commit { tangle, msgs } => Self::Commit { tangle, msgs },
            Output::PruneNewest { tangle, count } => Self::PruneNewest { tangle, count },
            Output::Finished { tangle } => Self::Finished { tangle },
            Output::Refused(refusal) => Self::Refused(refusal.to_string()),
            Output::Close(reason) => Self::Close(reason),
        }
    }

    fn of_reconcile(output: recon::Output, measure: bool) -> Self {
        match output {
            recon::Output::Send(frame) => {
                let mut json = String::with_capacity(128);
                let msg_bytes = frame.write_json(&mut json);
                let item = OutgoingSync {
                    json,
                    msg_bytes,
                    bloom_bytes: 0,
                };
                Self::Send {
                    tangle: frame.id,
                    item,
                }
            }
            recon::Output::Push(message) => Self::Send {
                tangle: message.id,
                item: outgoing(&message, measure),
            },
            recon::Output::Commit { tangle, msgs } => Self::Commit { tangle, msgs },
            recon::Output::PruneNewest { tangle, count } => Self::PruneNewest { tangle, count },
            recon::Output::Finished { tangle, .. } => Self::Finished { tangle },
            recon::Output::Failed { tangle, reason } => {
                Self::Refused(format!("exchange of {tangle} failed: {reason}"))
            }
            recon::Output::Refused(refusal) => Self::Refused(refusal.to_string()),
            recon::Output::Close(reason) => Self::Close(reason),
        }
    }
}

impl SyncState {
    /// A connection's sync starts, on the method the connection negotiated.
    async fn opened(
        &mut self,
        conn: ConnId,
        outbound: bool,
        link: Link,
        method: SyncMethod,
    ) -> Result<(), ActorProcessingErr> {
        self.links.insert(conn, link);
        let opened = if method == SyncMethod::Reconcile {
            let side = if outbound {
                recon::Side::Dialer
            } else {
                recon::Side::Responder
            };
            Event::OpenedReconcile { key: conn, side }
        } else {
            Event::Opened {
                key: conn,
                initiate: outbound,
            }
        };
        self.feed(opened).await
    }

    /// Sync objects a connection received (and decoded), in order.
    async fn received(
        &mut self,
        conn: ConnId,
        objects: Vec<SyncObject>,
    ) -> Result<(), ActorProcessingErr> {
        for object in objects {
            if let (Some(link), Some(tangle)) = (self.links.get_mut(&conn), object.tangle()) {
                link.objects.count(self.tangle_numbers.number(tangle));
            }
            let event = match object {
                SyncObject::Connect(decoded) => Event::Decoded { key: conn, decoded },
                SyncObject::Reconcile(decoded) => Event::ReconcileDecoded { key: conn, decoded },
            };
            self.feed(event).await?;
        }
        Ok(())
    }

    /// Msgs were stored: their connection (if any) was useful, and both machines hear of it.
    async fn local_added(
        &mut self,
        msgs: Vec<(MsgId, Arc<Msg>)>,
        origin: Option<ConnId>,
    ) -> Result<(), ActorProcessingErr> {
        // Msgs a connection brought were stored: it is useful (admission).
        if let Some(link) = origin.and_then(|conn| self.links.get(&conn))
            && !msgs.is_empty()
        {
            let _ = link.connection.cast(ConnMsg::Useful);
        }
        self.feed(Event::LocalAdded { msgs, origin }).await
    }

    /// A goal changed: every session re-initiates that tangle as its machine decides.
    async fn set_goal(&mut self, tangle: TangleId, goal: Goal) -> Result<(), ActorProcessingErr> {
        if let Err(error) = self.goals.set(tangle, goal) {
            tracing::warn!(target: "ppppp::sync", %tangle, %error, "goal not set");
            return Ok(());
        }
        self.feed(Event::GoalChanged { tangle }).await
    }

    /// Every connection's sync summary, pzp-sync's and `sync.reconcile`'s.
    fn summaries(&self) -> Vec<(ConnId, SyncSummary)> {
        let reconciles = self
            .sessions
            .reconciles()
            .map(|(conn, session)| (*conn, reconcile_summary(session)));
        self.sessions
            .iter()
            .map(|(conn, session)| (*conn, summary(session)))
            .chain(reconciles)
            .collect()
    }

    /// Milliseconds since the actor started, by the runtime's clock (simulated under the
    /// simulator).
    fn now(&self) -> Time {
        Time(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Runs one event through the sessions and applies their outputs.
    async fn feed(&mut self, event: Event<ConnId>) -> Result<(), ActorProcessingErr> {
        let now = self.now();
        let mut out = Vec::new();
        {
            let mut guard = self.db.lock();
            let DbState { db, index } = &mut *guard;
            self.sessions.handle_any(
                now,
                event,
                &mut IndexedDb::new(db, index),
                &self.goals,
                &mut out,
            )?;
            #[cfg(debug_assertions)]
            {
                self.fed += 1;
                if invariants_due(self.fed) {
                    self.sessions.check_invariants();
                }
            }
        }
        let measure = self.events.is_on();
        let effects = out
            .into_iter()
            .map(|(conn, output)| (conn, Effect::of(output, measure)))
            .collect();
        self.apply(effects).await
    }

    /// Keeps one wake-up armed at the sessions' deadline.
    fn arm_wake(&mut self, myself: &ActorRef<SyncActorMsg>) {
        let Some(deadline) = self.sessions.deadline() else {
            self.wake = None;
            return;
        };
        if self.wake.as_ref().is_some_and(|(at, _)| *at == deadline) {
            return;
        }
        let delay_ms = deadline.0.saturating_sub(self.now().0);
        let timer = myself.send_after(std::time::Duration::from_millis(delay_ms), || {
            SyncActorMsg::Tick
        });
        self.wake = Some((deadline, AbortOnDrop(timer)));
    }

    /// Applies the sessions' outputs in order, batching each connection's objects.
    async fn apply(&mut self, effects: Vec<(ConnId, Effect)>) -> Result<(), ActorProcessingErr> {
        let mut sends: Vec<(ConnId, Vec<OutgoingSync>)> = Vec::new();
        for (conn, effect) in effects {
            match effect {
                Effect::Send { tangle, item } => {
                    if let Some(link) = self.links.get_mut(&conn) {
                        link.objects.count(self.tangle_numbers.number(tangle));
                    }
                    match sends.last_mut() {
                        Some((last, items)) if *last == conn => items.push(item),
                        _ => sends.push((conn, vec![item])),
                    }
                }
                Effect::Commit { tangle, msgs } => {
                    // Objects already produced go out first: the reference sends before its
                    // asynchronous commit completes, too.
                    self.flush(&mut sends);
                    self.commit(conn, tangle, msgs).await?;
                }
                Effect::PruneNewest { tangle, count } => {
                    let _ = self.store.cast(StoreMsg::PruneNewest { tangle, count });
                }
                Effect::Finished { tangle } => self.finished(conn, tangle),
                Effect::Refused(refusal) => {
                    let remote = self.links.get(&conn).map(|link| link.remote.clone());
                    tracing::debug!(target: "ppppp::sync", ?remote, %refusal, "refused a sync object");
                }
                Effect::Close(reason) => {
                    if let Some(link) = self.links.get(&conn) {
                        let _ = link
                            .connection
                            .cast(ConnMsg::Close(DisconnectReason::Sync(reason)));
                    }
                }
            }
        }
        self.flush(&mut sends);
        Ok(())
    }

    /// Hands batched objects to their connections.
    fn flush(&self, sends: &mut Vec<(ConnId, Vec<OutgoingSync>)>) {
        for (conn, items) in sends.drain(..) {
            if let Some(link) = self.links.get(&conn) {
                let _ = link.connection.cast(ConnMsg::SendSync(items));
            }
        }
    }

    /// Has the store add what session `conn` received; the store then announces what it
    /// added ([`SyncActorMsg::LocalAdded`] with this origin). Refused msgs are the session's
    /// business ([`Event::CommitRefused`]).
    async fn commit(
        &mut self,
        conn: ConnId,
        tangle: TangleId,
        msgs: Vec<DigestedMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(from) = self.links.get(&conn).map(|link| link.remote.clone()) else {
            return Ok(());
        };
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
        match committed {
            Ok(ractor::rpc::CallResult::Success(0)) => Ok(()),
            Ok(ractor::rpc::CallResult::Success(_refused)) => {
                Box::pin(self.feed(Event::CommitRefused { key: conn, tangle })).await
            }
            _ => Err("the store actor is gone".into()),
        }
    }

    fn finished(&self, conn: ConnId, tangle: TangleId) {
        let Some(link) = self.links.get(&conn) else {
            return;
        };
        let objects = link.objects.of(self.tangle_numbers.get(&tangle));
        self.events.emit(NodeEvent::SyncFinished {
            remote: link.remote.clone(),
            tangle,
            objects,
        });
    }
}

/// A sync object as JSON, with its msg and bloom bytes measured when events are recorded.
fn outgoing(message: &sync::SyncMsg, measure: bool) -> OutgoingSync {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_counts_objects_of_a_bounded_number_of_tangles() {
        let mut counts = ObjectCounts::default();
        let limit = u32::try_from(COUNTED_TANGLES_PER_LINK_MAX).expect("small");
        for n in 0..limit + 100 {
            counts.count(Some(n));
        }
        counts.count(Some(0));
        counts.count(None);
        assert_eq!(counts.0.len(), COUNTED_TANGLES_PER_LINK_MAX);
        assert_eq!(counts.of(Some(0)), 2, "known tangles keep counting");
        assert_eq!(
            counts.of(Some(limit)),
            0,
            "tangles past the bound are not counted"
        );
        assert_eq!(counts.of(None), 0);
    }

    #[test]
    fn the_actor_numbers_a_bounded_number_of_tangles() {
        let tangle = |n: u32| {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&n.to_be_bytes());
            TangleId::from_bytes(&bytes)
        };
        let mut numbers = TangleNumbers::default();
        let limit = u32::try_from(COUNTED_TANGLES_MAX).expect("small");
        for n in 0..limit {
            assert_eq!(numbers.number(tangle(n)), Some(n));
        }
        assert_eq!(
            numbers.number(tangle(7)),
            Some(7),
            "a numbered tangle keeps its number"
        );
        assert_eq!(numbers.number(tangle(limit)), None, "none past the bound");
        assert_eq!(numbers.get(&tangle(limit)), None);
        assert_eq!(numbers.0.len(), COUNTED_TANGLES_MAX);
    }
}
