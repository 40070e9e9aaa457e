//! The connection manager: the listener, the dial targets (kept connected by
//! `proto::dial::Redial`: seeded, capped backoff that never gives up), admission (caps per
//! direction, handshake, address and key, and idle connections yielding their slots:
//! `proto::admission::Admission`), and one [`super::connection`] child per connection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proto::admission::{self, Admission, AdmissionLimits, Refusal};
use proto::dial::{self, Action, Redial, TargetId};
use proto::ids::PubKey;
use proto::sync::Time;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use tokio::time::Instant;

use super::config::{DialTarget, Limits, Timers};
use super::connection::{ConnArgs, ConnContext, ConnectionActor};
use super::events::{DisconnectReason, NodeEvent, Remote};
use super::msgs::{AppCall, ConnListing, ConnMsg, ConnsMsg};
use super::peers::ConnStats;
use super::{AbortOnDrop, ConnId};
use crate::net::{BoxStream, Listener, Net};

/// How long an accept error waits before the next accept (e.g. out of file descriptors).
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Most dial targets a node keeps (each redialed for as long as it runs); further ones are
/// refused with a `DialFailed` event.
pub(crate) const DIAL_TARGETS_MAX: usize = 4_096;

/// The connection manager actor.
pub(crate) struct ConnsActor;

pub(crate) struct ConnsArgs {
    pub(crate) net: Arc<dyn Net>,
    pub(crate) listener: Option<Box<dyn Listener>>,
    pub(crate) targets: Vec<DialTarget>,
    pub(crate) context: ConnContext,
    pub(crate) rng: ChaCha8Rng,
}

struct TargetState {
    target: DialTarget,
    conn: Option<ConnId>,
    /// The dial under way (a TCP connect within `Timers::connect_timeout`).
    dialing: Option<AbortOnDrop>,
    /// Dials started, and why the last one failed (reported by `NodeHandle::peers`).
    attempts: u64,
    last_error: Option<String>,
    /// Its peer is connected over another connection (inbound, or another target's address,
    /// e.g. the same attendant through a second hub), so it is not dialed: a dial would
    /// replace that connection (admission keeps the newest per key) and restart its syncs,
    /// and two peers dialing each other would replace each other's connections forever.
    covered: bool,
}

impl TargetState {
    fn new(target: DialTarget) -> Self {
        Self {
            target,
            conn: None,
            dialing: None,
            attempts: 0,
            last_error: None,
            covered: false,
        }
    }
}

/// A `send_after` of [`ConnsMsg::Wake`], cancelled when dropped.
type WakeTimer = AbortOnDrop<Result<(), ractor::MessagingErr<ConnsMsg>>>;

struct ConnEntry {
    actor: ActorRef<ConnMsg>,
    target: Option<usize>,
    opened: Instant,
    address: String,
    stats: Arc<ConnStats>,
    /// Where admission stands on it. The listing reads this, not the connection's own
    /// counters, so that what `peers` shows agrees with the bounds admission keeps.
    phase: ConnPhase,
}

/// A connection's phase as this manager has applied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnPhase {
    Handshaking,
    Established,
    /// Told to close; gone from admission, waiting for its actor to stop.
    Closing,
}

pub(crate) struct ConnsState {
    net: Arc<dyn Net>,
    context: ConnContext,
    rng: ChaCha8Rng,
    targets: Vec<TargetState>,
    redial: Redial,
    /// The origin of the redial schedule's clock.
    started: Instant,
    /// The wake-up armed for the schedule's deadline, and when it fires.
    wake: Option<(Time, WakeTimer)>,
    conns: BTreeMap<ConnId, ConnEntry>,
    admission: Admission<ConnId>,
    /// Child actor → connection. ActorIds are process-global counters: used as keys only,
    /// never in anything observable.
    by_actor: BTreeMap<ActorId, ConnId>,
    next_conn: u64,
    shutting_down: bool,
    _listener: Option<AbortOnDrop>,
}

impl Actor for ConnsActor {
    type Msg = ConnsMsg;
    type State = ConnsState;
    type Arguments = ConnsArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ConnsMsg>,
        args: ConnsArgs,
    ) -> Result<ConnsState, ActorProcessingErr> {
        let listener = args
            .listener
            .map(|listener| AbortOnDrop(tokio::spawn(accept_loop(myself.clone(), listener))));
        let backoff = dial::Backoff {
            base_ms: millis(args.context.timers.backoff_base),
            max_ms: millis(args.context.timers.backoff_max),
        };
        let admission =
            Admission::new(admission_limits(&args.context.limits, &args.context.timers));
        let mut state = ConnsState {
            net: args.net,
            context: args.context,
            rng: args.rng,
            targets: Vec::new(),
            redial: Redial::new(backoff),
            started: Instant::now(),
            wake: None,
            conns: BTreeMap::new(),
            admission,
            by_actor: BTreeMap::new(),
            next_conn: 0,
            shutting_down: false,
            _listener: listener,
        };
        for target in args.targets {
            state.add_target(&myself, target);
        }
        state.arm_wake(&myself);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<ConnsMsg>,
        message: ConnsMsg,
        state: &mut ConnsState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ConnsMsg::Accepted { stream, address } => {
                state.accepted(&myself, stream, address).await?;
            }
            ConnsMsg::Established { conn, remote } => state.established(conn, &remote),
            ConnsMsg::Wake => {
                state.wake = None;
                state.schedule(&myself, dial::Event::Tick);
            }
            ConnsMsg::Dialed { target, result } => state.dialed(&myself, target, result).await?,
            ConnsMsg::AddTarget { target, reply } => {
                state.add_target(&myself, target);
                let _ = reply.send(());
            }
            ConnsMsg::Count { reply } => {
                let _ = reply.send(state.conns.len());
            }
            ConnsMsg::List { reply } => {
                let _ = reply.send(state.listing());
            }
            ConnsMsg::Call { remote, call } => state.call(remote, call),
            ConnsMsg::Shutdown { reply } => {
                state.shutting_down = true;
                state.schedule(&myself, dial::Event::Stop);
                for target in &mut state.targets {
                    target.dialing = None;
                }
                for entry in state.conns.values_mut() {
                    entry.phase = ConnPhase::Closing;
                    let _ = entry.actor.cast(ConnMsg::Close(DisconnectReason::Shutdown));
                }
                let _ = reply.send(());
            }
        }
        state.arm_wake(&myself);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<ConnsMsg>,
        event: SupervisionEvent,
        state: &mut ConnsState,
    ) -> Result<(), ActorProcessingErr> {
        // Overridden: ractor's default stops the supervisor when any child exits.
        let cell = match &event {
            SupervisionEvent::ActorTerminated(cell, _, _) => cell,
            SupervisionEvent::ActorFailed(cell, error) => {
                tracing::warn!(target: "ppppp::conns", %error, "connection actor failed");
                cell
            }
            _ => return Ok(()),
        };
        let Some(conn) = state.by_actor.remove(&cell.get_id()) else {
            return Ok(());
        };
        let Some(entry) = state.conns.remove(&conn) else {
            return Ok(());
        };
        state.admit(admission::Event::Closed { conn });
        if let Some(target) = entry.target {
            if let Some(slot) = state.targets.get_mut(target) {
                slot.conn = None;
                slot.last_error = entry.stats.closed_reason();
            }
            state.schedule(&myself, dial::Event::Disconnected(TargetId(target)));
        }
        // Before its handshake a connection has no remote key: its target names the peer.
        let remote = entry.stats.remote().cloned().or_else(|| {
            entry
                .target
                .and_then(|target| state.targets.get(target))
                .and_then(|slot| slot.target.key)
                .map(Remote::Key)
        });
        state.uncover(&myself, remote.as_ref());
        state.arm_wake(&myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<ConnsMsg>,
        _state: &mut ConnsState,
    ) -> Result<(), ActorProcessingErr> {
        myself.stop_children(None);
        Ok(())
    }
}

/// What a connection calls once its handshake succeeds: tells the manager.
fn established_reporter(manager: ActorRef<ConnsMsg>, conn: ConnId) -> Box<dyn Fn(Remote) + Send> {
    Box::new(move |remote| {
        let _ = manager.cast(ConnsMsg::Established { conn, remote });
    })
}

async fn accept_loop(manager: ActorRef<ConnsMsg>, mut listener: Box<dyn Listener>) {
    loop {
        match listener.accept().await {
            Ok((stream, address)) => {
                if manager
                    .cast(ConnsMsg::Accepted { stream, address })
                    .is_err()
                {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(target: "ppppp::conns", %error, "accept failed");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
            }
        }
    }
}

/// Milliseconds of a duration, saturated.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Admission's bounds, from the node's.
fn admission_limits(limits: &Limits, timers: &Timers) -> AdmissionLimits {
    AdmissionLimits {
        connections_max: limits.connections_max,
        inbound_max: limits.inbound_max,
        outbound_max: limits.outbound_max,
        handshakes_max: limits.handshakes_max,
        per_address_max: limits.per_address_max,
        per_key_max: limits.per_key_max,
        yield_after_ms: millis(timers.yield_after),
    }
}

impl ConnsState {
    /// Milliseconds since the manager started, by the runtime's clock (simulated under the
    /// simulator).
    fn now(&self) -> Time {
        Time(millis(self.started.elapsed()))
    }

    fn add_target(&mut self, myself: &ActorRef<ConnsMsg>, target: DialTarget) {
        // The same peer listed twice (`--connect` repeated) is one target.
        if self.targets.iter().any(|slot| slot.target == target) {
            return;
        }
        // Targets are kept (and redialed) for the node's life, and hubs' attendant lists add
        // them: a hub listing ever new keys must not grow this without bound.
        if self.targets.len() >= DIAL_TARGETS_MAX {
            tracing::debug!(target: "ppppp::conns", address = %target.address, "dial targets full");
            self.context.events.emit(NodeEvent::DialFailed {
                address: target.address,
                reason: format!("no room: {DIAL_TARGETS_MAX} dial targets (DIAL_TARGETS_MAX)"),
            });
            return;
        }
        let id = TargetId(self.targets.len());
        self.targets.push(TargetState::new(target));
        self.schedule(myself, dial::Event::Added(id));
    }

    /// Runs one event through the redial schedule and starts the dials it asks for.
    fn schedule(&mut self, myself: &ActorRef<ConnsMsg>, event: dial::Event) {
        let now = self.now();
        let mut actions = Vec::new();
        self.redial.handle(now, event, &mut self.rng, &mut actions);
        #[cfg(debug_assertions)]
        self.redial.check_invariants(now);
        let mut covered = Vec::new();
        for Action::Dial(target) in actions {
            if self.covers(target.0) {
                covered.push(target);
            } else {
                self.dial(myself, target.0);
            }
        }
        for target in covered {
            if let Some(slot) = self.targets.get_mut(target.0) {
                slot.covered = true;
            }
            self.schedule(myself, dial::Event::Connected(target));
        }
    }

    /// Whether the peer `target` names is connected already (handshake done), or being
    /// dialed through another of its addresses.
    fn covers(&self, target: usize) -> bool {
        let Some(key) = self.targets.get(target).and_then(|slot| slot.target.key) else {
            return false;
        };
        self.key_connected(key)
            || self.targets.iter().enumerate().any(|(index, slot)| {
                index != target && slot.target.key == Some(key) && slot.dialing.is_some()
            })
    }

    fn key_connected(&self, key: PubKey) -> bool {
        let wanted = Remote::Key(key);
        self.conns.values().any(|entry| {
            entry.phase != ConnPhase::Closing
                && entry.stats.closed_reason().is_none()
                && entry.stats.remote() == Some(&wanted)
        })
    }

    /// A connection to `remote` ended, or a dial to it failed: if nothing else reaches it
    /// or is dialing it, the targets it covered are waiting again (dialed after the backoff).
    fn uncover(&mut self, myself: &ActorRef<ConnsMsg>, remote: Option<&Remote>) {
        let Some(Remote::Key(key)) = remote else {
            return;
        };
        let dialing = self
            .targets
            .iter()
            .any(|slot| slot.target.key == Some(*key) && slot.dialing.is_some());
        if dialing || self.key_connected(*key) {
            return;
        }
        let uncovered: Vec<usize> = self
            .targets
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.covered && slot.target.key == Some(*key))
            .map(|(index, _)| index)
            .collect();
        for index in uncovered {
            self.targets[index].covered = false;
            self.schedule(myself, dial::Event::Disconnected(TargetId(index)));
        }
    }

    /// Keeps one wake-up armed at the redial schedule's deadline.
    fn arm_wake(&mut self, myself: &ActorRef<ConnsMsg>) {
        let Some(deadline) = self.redial.deadline() else {
            self.wake = None;
            return;
        };
        if self.wake.as_ref().is_some_and(|(at, _)| *at == deadline) {
            return;
        }
        let delay = Duration::from_millis(deadline.0.saturating_sub(self.now().0));
        let timer = myself.send_after(delay, || ConnsMsg::Wake);
        self.wake = Some((deadline, AbortOnDrop(timer)));
    }

    /// Starts a TCP connect to `target`, within `Timers::connect_timeout`.
    fn dial(&mut self, myself: &ActorRef<ConnsMsg>, target: usize) {
        let Some(slot) = self.targets.get_mut(target) else {
            return;
        };
        slot.attempts += 1;
        let net = Arc::clone(&self.net);
        let address = slot.target.address.clone();
        let timeout = self.context.timers.connect_timeout;
        let manager = myself.clone();
        slot.dialing = Some(AbortOnDrop(tokio::spawn(async move {
            let result = match tokio::time::timeout(timeout, net.connect(&address)).await {
                Ok(Ok(stream)) => Ok(stream),
                Ok(Err(error)) => Err(format!("connect to {address} failed: {error}")),
                Err(_) => Err(format!("connect to {address} timed out")),
            };
            let _ = manager.cast(ConnsMsg::Dialed { target, result });
        })));
    }

    /// A dial finished: open the connection if there is room, else it failed.
    async fn dialed(
        &mut self,
        myself: &ActorRef<ConnsMsg>,
        target: usize,
        result: Result<BoxStream, String>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(slot) = self.targets.get_mut(target) else {
            return Ok(());
        };
        slot.dialing = None;
        let address = slot.target.address.clone();
        if self.shutting_down {
            return Ok(());
        }
        let result = match result {
            Ok(stream) => {
                let conn = self.next_conn_id();
                let address = address.clone();
                match self.admit(admission::Event::Outbound { conn, address }) {
                    None => Ok((conn, stream)),
                    Some(refusal) => Err(format!("no room: {refusal}")),
                }
            }
            Err(reason) => Err(reason),
        };
        match result {
            Ok((conn, stream)) => {
                self.open(myself, conn, stream, address, Some(target))
                    .await?;
                self.schedule(myself, dial::Event::Connected(TargetId(target)));
            }
            Err(reason) => {
                tracing::debug!(target: "ppppp::conns", %address, %reason, "dial failed");
                self.context.events.emit(NodeEvent::DialFailed {
                    address,
                    reason: reason.clone(),
                });
                let key = self.targets.get_mut(target).and_then(|slot| {
                    slot.last_error = Some(reason);
                    slot.target.key
                });
                self.schedule(myself, dial::Event::DialFailed(TargetId(target)));
                self.uncover(myself, key.map(Remote::Key).as_ref());
            }
        }
        Ok(())
    }

    fn next_conn_id(&mut self) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        conn
    }

    /// A connection came in: admission decides (and may make room by closing another).
    async fn accepted(
        &mut self,
        myself: &ActorRef<ConnsMsg>,
        stream: BoxStream,
        address: String,
    ) -> Result<(), ActorProcessingErr> {
        if self.shutting_down {
            return Ok(());
        }
        self.note_useful();
        let conn = self.next_conn_id();
        let event = admission::Event::Inbound {
            conn,
            address: address.clone(),
        };
        if let Some(refusal) = self.admit(event) {
            tracing::debug!(target: "ppppp::conns", %address, %refusal, "refused a connection");
            self.context
                .events
                .emit(NodeEvent::Refused { address, refusal });
            drop(stream);
            return Ok(());
        }
        self.open(myself, conn, stream, address, None).await
    }

    /// Runs one event through admission and closes the connections it evicts; the refusal
    /// of the event's new connection, if refused.
    fn admit(&mut self, event: admission::Event<ConnId>) -> Option<Refusal> {
        let mut actions = Vec::new();
        self.admission.handle(self.now(), event, &mut actions);
        #[cfg(debug_assertions)]
        self.admission.check_invariants();
        let mut refused = None;
        for action in actions {
            match action {
                admission::Action::Admit(_) => {}
                admission::Action::Refuse(_, refusal) => refused = Some(refusal),
                admission::Action::Close(conn, eviction) => {
                    tracing::debug!(target: "ppppp::conns", conn = conn.0, %eviction, "evicting a connection");
                    if let Some(entry) = self.conns.get_mut(&conn) {
                        entry.phase = ConnPhase::Closing;
                        let reason = DisconnectReason::Admission(eviction);
                        let _ = entry.actor.cast(ConnMsg::Close(reason));
                    }
                }
            }
        }
        refused
    }

    /// Tells admission when each connection last moved msgs (the connections and the sync
    /// actor mark it in their shared counters).
    fn note_useful(&mut self) {
        let useful: Vec<(ConnId, Time)> = self
            .conns
            .iter()
            .filter_map(|(conn, entry)| {
                let at = entry.stats.useful_at()?;
                Some((
                    *conn,
                    Time(millis(at.saturating_duration_since(self.started))),
                ))
            })
            .collect();
        for (conn, at) in useful {
            self.admit(admission::Event::Useful { conn, at });
        }
    }

    /// A handshake finished: a key over its connection bound closes the oldest others.
    /// Hands an app call to the first open connection to `remote` (in connection order).
    fn call(&self, remote: PubKey, call: AppCall) {
        let wanted = Remote::Key(remote);
        let connection = self.conns.values().find(|entry| {
            entry.phase != ConnPhase::Closing
                && entry.stats.closed_reason().is_none()
                && entry.stats.remote() == Some(&wanted)
        });
        match connection {
            Some(entry) => {
                if let Err(error) = entry.actor.cast(ConnMsg::AppCall(call)) {
                    tracing::debug!(target: "ppppp::conns", %error, "a connection stopped under a call");
                }
            }
            None => {
                let _ = call.reply.send(Err(format!("not connected to {remote}")));
            }
        }
    }

    fn established(&mut self, conn: ConnId, remote: &Remote) {
        let key = match remote {
            Remote::Key(key) => Some(*key),
            Remote::Address(_) => None,
        };
        if let Some(entry) = self
            .conns
            .get_mut(&conn)
            .filter(|entry| entry.phase == ConnPhase::Handshaking)
        {
            entry.phase = ConnPhase::Established;
        }
        self.admit(admission::Event::Established { conn, key });
    }

    async fn open(
        &mut self,
        myself: &ActorRef<ConnsMsg>,
        conn: ConnId,
        stream: BoxStream,
        address: String,
        target: Option<usize>,
    ) -> Result<(), ActorProcessingErr> {
        let expected_key = target
            .and_then(|index| self.targets.get(index))
            .and_then(|slot| slot.target.key);
        let stats = Arc::new(ConnStats::default());
        let entry_address = address.clone();
        let args = ConnArgs {
            conn,
            stream,
            outbound: target.is_some(),
            address,
            expected_key,
            context: self.context.clone(),
            rng: ChaCha8Rng::seed_from_u64(self.rng.next_u64()),
            stats: Arc::clone(&stats),
            on_established: established_reporter(myself.clone(), conn),
        };
        let (actor, _join) =
            Actor::spawn_linked(None, ConnectionActor, args, myself.get_cell()).await?;
        self.by_actor.insert(actor.get_id(), conn);
        if let Some(slot) = target.and_then(|index| self.targets.get_mut(index)) {
            slot.conn = Some(conn);
        }
        self.conns.insert(
            conn,
            ConnEntry {
                actor,
                target,
                opened: Instant::now(),
                address: entry_address,
                stats,
                phase: ConnPhase::Handshaking,
            },
        );
        Ok(())
    }

    /// Every connection, then every target without a connection, in a stable order.
    fn listing(&self) -> Vec<ConnListing> {
        use super::peers::{PeerInfo, PeerState};
        let mut rows = Vec::with_capacity(self.conns.len() + self.targets.len());
        for (conn, entry) in &self.conns {
            let slot = entry.target.and_then(|index| self.targets.get(index));
            let (bytes_in, bytes_out) = entry.stats.bytes();
            let key = match entry.stats.remote() {
                Some(super::events::Remote::Key(key)) => Some(*key),
                _ => slot.and_then(|slot| slot.target.key),
            };
            let state = match entry.phase {
                ConnPhase::Handshaking => PeerState::Handshaking,
                ConnPhase::Established => PeerState::Connected,
                ConnPhase::Closing => PeerState::Closing,
            };
            rows.push(ConnListing {
                conn: Some(*conn),
                info: PeerInfo {
                    address: entry.address.clone(),
                    key,
                    outbound: entry.target.is_some(),
                    state,
                    age: Some(entry.opened.elapsed()),
                    bytes_in,
                    bytes_out,
                    sync: None,
                    attempts: slot.map_or(0, |slot| slot.attempts),
                    last_error: None,
                },
            });
        }
        for slot in self.targets.iter().filter(|slot| slot.conn.is_none()) {
            rows.push(ConnListing {
                conn: None,
                info: PeerInfo {
                    address: slot.target.address.clone(),
                    key: slot.target.key,
                    outbound: true,
                    state: if slot.dialing.is_some() {
                        PeerState::Dialing
                    } else {
                        PeerState::Retrying
                    },
                    age: None,
                    bytes_in: 0,
                    bytes_out: 0,
                    sync: None,
                    attempts: slot.attempts,
                    last_error: slot.last_error.clone(),
                },
            });
        }
        rows
    }
}
