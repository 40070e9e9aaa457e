//! A toy delivery model over a plan (`ppppp-sim run --synthetic`): no real peers, no
//! turmoil, just enough behaviour to drive the whole report pipeline with plausible events.
//! Its numbers say nothing about PPPPP; reports made with it say "synthetic" everywhere.
//!
//! The model, in short:
//! - each plan edge is a connection the dialer keeps up while both ends are up and no
//!   partition cuts it; (re)dialing takes 0.5–1.5 s plus a handshake of 2 round trips;
//! - a connection carries the tangles the dialer has goals for (PPPPP: the dialer's goals
//!   drive sync); when it comes up, each such tangle with msgs on either side is synced:
//!   2 round trips if one side has nothing, else 5, with control frames and bloom filters
//!   sized as in protocol.md §7.5, and every msg the other side wants and lacks is sent;
//! - afterwards new msgs are pushed (realtime) to every neighbour that wants them, except
//!   the one they came from, so duplicates happen when two neighbours push the same msg;
//! - latency per message is turmoil's: min + (max − min)·Exp(curve), capped at max; every
//!   send breaks its connection with probability `fail_rate` (turmoil's TCP: a lost segment
//!   is a broken connection), detected after a 3 s idle timeout, then redialed;
//! - `hold` queues messages on a link until `release`; crash and churn keep the store
//!   (durable storage); GC deletes msgs that fall out of `newest-N` and ghosts superseded
//!   set/dict msgs as soon as they fall out of the goal range;
//! - keepalives every 15 s on each connection; store sizes reported every 10 s.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use crate::interest::{Interest, InterestBuilder, NewMsg};
use crate::metrics::Collector;
use crate::plan::{ChurnStep, Edge, FaultStep, PeerIdx, Plan, Publish};
use crate::progress::Progress;
use crate::rng::{Stream, stream};
use crate::scenario::{FaultAction, LatencyModel, Transport};
use crate::trace::{Event, EventKind, WireKind};
use proto::gc::GcAction;
use proto::goals::Goal;

/// Encoded msg overhead on top of its data: metadata, signature, JSON and framing.
pub const MSG_OVERHEAD_BYTES: u64 = 560;
/// A sync control frame without bloom or ID list.
pub const SYNC_FRAME_BYTES: u64 = 70;
/// A msg ID in an ID list.
pub const MSG_ID_BYTES: u64 = 46;
/// Keepalive frame.
pub const KEEPALIVE_BYTES: u64 = 40;
/// Keepalive interval.
pub const KEEPALIVE_MS: u64 = 15_000;
/// Store-size report interval.
pub const STORE_SIZE_MS: u64 = 10_000;
/// Idle timeout after which a broken connection is noticed.
pub const IDLE_TIMEOUT_MS: u64 = 3_000;

#[derive(Debug, Clone)]
enum Action {
    Publish(usize),
    Churn(usize),
    Fault(usize),
    Dial {
        edge: usize,
    },
    Connected {
        edge: usize,
        epoch: u64,
    },
    SyncDone(Box<SyncDone>),
    Deliver {
        edge: usize,
        epoch: u64,
        from: PeerIdx,
        to: PeerIdx,
        msg: usize,
    },
    Keepalive,
    StoreSizes,
}

#[derive(Debug, Clone)]
struct SyncDone {
    edge: usize,
    epoch: u64,
    tangle: usize,
    round_trips: u32,
    to_dialer: Vec<usize>,
    to_acceptor: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    Down,
    Dialing,
    Handshaking,
    Up,
}

struct Model<'a> {
    plan: &'a Plan,
    interest: Interest,
    ids: Vec<String>,
    /// msg → tangle index.
    msg_tangle: Vec<usize>,
    /// tangle index → (owner, feed, tangle ID).
    tangles: Vec<(PeerIdx, String, String)>,
    /// Per peer: tangle indices it has goals for (what its dialed connections carry).
    carries: Vec<BTreeSet<usize>>,
    /// Per peer: tangle index → goal.
    goals: Vec<BTreeMap<usize, Goal>>,
    rng: Stream,
    queue: BTreeMap<(u64, u64), Action>,
    seq: u64,
    now: u64,
    crashed: Vec<bool>,
    offline: Vec<bool>,
    conn: Vec<Conn>,
    epoch: Vec<u64>,
    edges_of: Vec<Vec<usize>>,
    blocked: BTreeSet<(PeerIdx, PeerIdx)>,
    held_links: BTreeSet<(PeerIdx, PeerIdx)>,
    held_queue: Vec<Action>,
    latency: LatencyModel,
    link_latency: BTreeMap<(PeerIdx, PeerIdx), LatencyModel>,
    configured_latency: BTreeMap<(PeerIdx, PeerIdx), LatencyModel>,
    fail_rate: f64,
    link_fail: BTreeMap<(PeerIdx, PeerIdx), f64>,
    configured_fail: BTreeMap<(PeerIdx, PeerIdx), f64>,
    /// Per peer: msgs held.
    store: Vec<BTreeSet<usize>>,
    /// Per (peer, tangle): held msgs by depth.
    store_by_tangle: BTreeMap<(PeerIdx, usize), BTreeSet<(u32, usize)>>,
    store_bytes: Vec<u64>,
    store_reported: Vec<u64>,
}

fn pair(a: PeerIdx, b: PeerIdx) -> (PeerIdx, PeerIdx) {
    (a.min(b), a.max(b))
}

/// Runs the toy model over `plan`, feeding `collector`.
///
/// # Errors
/// Trace write errors.
pub fn run(plan: &Plan, collector: &mut Collector<'_>, progress: &Progress) -> io::Result<()> {
    let mut model = Model::new(plan);
    collector.record(Event {
        t: 0,
        kind: EventKind::Note {
            text: "synthetic model (sim::synthetic): toy deliveries, not real peers".to_owned(),
            error: false,
        },
    })?;
    model.schedule_initial();
    let mut last_progress = 0;
    while let Some(((t, _), action)) = model.queue.pop_first() {
        if t > plan.duration_ms {
            break;
        }
        model.now = t;
        if t >= last_progress + 1_000 {
            progress.set(t);
            last_progress = t;
        }
        model.apply(action, collector)?;
    }
    progress.set(plan.duration_ms);
    Ok(())
}

impl<'a> Model<'a> {
    fn new(plan: &'a Plan) -> Self {
        let mut builder = InterestBuilder::default();
        let mut ids = Vec::new();
        let mut msg_tangle = Vec::new();
        let mut tangles: Vec<(PeerIdx, String, String)> = Vec::new();
        let mut tangle_index: BTreeMap<(PeerIdx, String), usize> = BTreeMap::new();
        for publish in &plan.publishes {
            let id = synthetic_id(plan, publish);
            let tangle_id = synthetic_tangle(plan, publish.peer, &publish.feed);
            let supersedes: Vec<String> = publish
                .supersedes
                .iter()
                .map(|seq| format!("{tangle_id}/{seq}"))
                .collect();
            builder.publish(
                publish.t_ms,
                &NewMsg {
                    id: &id,
                    owner: publish.peer,
                    feed: &publish.feed,
                    tangle: &tangle_id,
                    bytes: publish.bytes + MSG_OVERHEAD_BYTES,
                    supersedes: &supersedes,
                },
            );
            let next = tangles.len();
            let index = *tangle_index
                .entry((publish.peer, publish.feed.clone()))
                .or_insert_with(|| {
                    tangles.push((publish.peer, publish.feed.clone(), tangle_id.clone()));
                    next
                });
            msg_tangle.push(index);
            ids.push(id);
        }
        let interest = builder.finish(plan);
        let peers = plan.peers.len();
        let mut carries = vec![BTreeSet::new(); peers];
        let mut goals = vec![BTreeMap::new(); peers];
        for peer in &plan.peers {
            for goal in &peer.goals {
                if goal.rule.goal == Goal::None {
                    continue;
                }
                if let Some(index) = tangle_index.get(&(goal.account, goal.rule.feed.clone())) {
                    carries[peer.index as usize].insert(*index);
                    goals[peer.index as usize].insert(*index, goal.rule.goal);
                }
            }
        }
        let mut edges_of = vec![Vec::new(); peers];
        let mut edge_by_pair = BTreeMap::new();
        for (i, edge) in plan.edges.iter().enumerate() {
            edges_of[edge.dialer as usize].push(i);
            edges_of[edge.acceptor as usize].push(i);
            edge_by_pair.insert(pair(edge.dialer, edge.acceptor), i);
        }
        let mut configured_latency = BTreeMap::new();
        let mut configured_fail = BTreeMap::new();
        for link in &plan.network.links {
            for a in &link.a {
                for b in &link.b {
                    if a == b || !edge_by_pair.contains_key(&pair(*a, *b)) {
                        continue;
                    }
                    if let Some(latency) = link.latency {
                        configured_latency.insert(pair(*a, *b), latency);
                    }
                    if let Some(rate) = link.fail_rate {
                        configured_fail.insert(pair(*a, *b), rate);
                    }
                }
            }
        }
        Model {
            plan,
            interest,
            ids,
            msg_tangle,
            tangles,
            carries,
            goals,
            rng: stream(plan.seed, "synthetic", 0),
            queue: BTreeMap::new(),
            seq: 0,
            now: 0,
            crashed: vec![false; peers],
            offline: vec![false; peers],
            conn: vec![Conn::Down; plan.edges.len()],
            epoch: vec![0; plan.edges.len()],
            edges_of,
            blocked: BTreeSet::new(),
            held_links: BTreeSet::new(),
            held_queue: Vec::new(),
            latency: plan.network.latency,
            link_latency: configured_latency.clone(),
            configured_latency,
            fail_rate: plan.network.fail_rate,
            link_fail: configured_fail.clone(),
            configured_fail,
            store: vec![BTreeSet::new(); peers],
            store_by_tangle: BTreeMap::new(),
            store_bytes: vec![0; peers],
            store_reported: vec![0; peers],
        }
    }

    fn at(&mut self, t: u64, action: Action) {
        self.seq += 1;
        self.queue.insert((t, self.seq), action);
    }

    fn schedule_initial(&mut self) {
        for i in 0..self.plan.publishes.len() {
            let t = self.plan.publishes[i].t_ms;
            self.at(t, Action::Publish(i));
        }
        for i in 0..self.plan.churn.len() {
            let t = self.plan.churn[i].t_ms;
            self.at(t, Action::Churn(i));
        }
        for i in 0..self.plan.faults.len() {
            let t = self.plan.faults[i].t_ms;
            self.at(t, Action::Fault(i));
        }
        for edge in 0..self.plan.edges.len() {
            self.try_connect(edge, 0);
        }
        self.at(KEEPALIVE_MS, Action::Keepalive);
        self.at(STORE_SIZE_MS, Action::StoreSizes);
    }

    fn up(&self, peer: PeerIdx) -> bool {
        !self.crashed[peer as usize] && !self.offline[peer as usize]
    }

    fn cut(&self, a: PeerIdx, b: PeerIdx) -> bool {
        self.blocked.contains(&(a, b)) || self.blocked.contains(&(b, a))
    }

    fn edge(&self, edge: usize) -> Edge {
        self.plan.edges[edge]
    }

    fn latency_of(&mut self, a: PeerIdx, b: PeerIdx) -> u64 {
        let model = self
            .link_latency
            .get(&pair(a, b))
            .copied()
            .unwrap_or(self.latency);
        let range = model.max_ms.saturating_sub(model.min_ms);
        #[expect(clippy::cast_precision_loss, reason = "latencies far below 2^53 ms")]
        let extra = range as f64 * self.rng.exp(1.0 / model.curve);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "non-negative, capped below"
        )]
        let delay = model.min_ms + extra as u64;
        delay.min(model.max_ms)
    }

    fn fail_of(&self, a: PeerIdx, b: PeerIdx) -> f64 {
        self.link_fail
            .get(&pair(a, b))
            .copied()
            .unwrap_or(self.fail_rate)
    }

    /// Schedules a dial if the edge is down and could come up.
    fn try_connect(&mut self, edge: usize, delay_extra: u64) {
        let e = self.edge(edge);
        if self.conn[edge] != Conn::Down || !self.up(e.dialer) || !self.up(e.acceptor) {
            return;
        }
        if self.cut(e.dialer, e.acceptor) {
            return;
        }
        self.conn[edge] = Conn::Dialing;
        let backoff = 500 + self.rng.below(1_000);
        self.at(self.now + delay_extra + backoff, Action::Dial { edge });
    }

    fn disconnect(
        &mut self,
        edge: usize,
        reason: &str,
        collector: &mut Collector<'_>,
    ) -> io::Result<()> {
        let was_up = self.conn[edge] == Conn::Up;
        self.conn[edge] = Conn::Down;
        self.epoch[edge] += 1;
        if was_up {
            let e = self.edge(edge);
            collector.record(Event {
                t: self.now,
                kind: EventKind::Disconnect {
                    a: e.dialer,
                    b: e.acceptor,
                    reason: reason.to_owned(),
                },
            })?;
        }
        Ok(())
    }

    /// Emits a send; returns false if the send broke the connection (turmoil `fail_rate`).
    fn send(
        &mut self,
        edge: usize,
        from: PeerIdx,
        to: PeerIdx,
        kind: WireKind,
        bytes: u64,
        collector: &mut Collector<'_>,
    ) -> io::Result<bool> {
        if bytes == 0 {
            return Ok(true);
        }
        collector.record(Event {
            t: self.now,
            kind: EventKind::Send {
                from,
                to,
                kind,
                bytes,
            },
        })?;
        let rate = self.fail_of(from, to);
        if rate > 0.0 && self.rng.chance(rate) {
            self.disconnect(edge, "loss", collector)?;
            self.try_connect(edge, IDLE_TIMEOUT_MS);
            return Ok(false);
        }
        Ok(true)
    }

    fn apply(&mut self, action: Action, collector: &mut Collector<'_>) -> io::Result<()> {
        match action {
            Action::Publish(i) => self.publish(i, collector),
            Action::Churn(i) => {
                let step = self.plan.churn[i];
                self.churn(step, collector)
            }
            Action::Fault(i) => {
                let step = self.plan.faults[i].clone();
                self.fault(i, &step, collector)
            }
            Action::Dial { edge } => self.dial(edge, collector),
            Action::Connected { edge, epoch } => self.connected(edge, epoch, collector),
            Action::SyncDone(done) => self.sync_done(*done, collector),
            Action::Deliver {
                edge,
                epoch,
                from,
                to,
                msg,
            } => {
                if self.held_links.contains(&pair(from, to)) {
                    self.held_queue.push(Action::Deliver {
                        edge,
                        epoch,
                        from,
                        to,
                        msg,
                    });
                    return Ok(());
                }
                if self.epoch[edge] != epoch || self.conn[edge] != Conn::Up {
                    return Ok(());
                }
                self.receive(to, msg, Some(from), collector)
            }
            Action::Keepalive => {
                for edge in 0..self.plan.edges.len() {
                    if self.conn[edge] != Conn::Up {
                        continue;
                    }
                    let e = self.edge(edge);
                    if self.send(
                        edge,
                        e.dialer,
                        e.acceptor,
                        WireKind::Keepalive,
                        KEEPALIVE_BYTES,
                        collector,
                    )? {
                        self.send(
                            edge,
                            e.acceptor,
                            e.dialer,
                            WireKind::Keepalive,
                            KEEPALIVE_BYTES,
                            collector,
                        )?;
                    }
                }
                self.at(self.now + KEEPALIVE_MS, Action::Keepalive);
                Ok(())
            }
            Action::StoreSizes => {
                for peer in 0..self.plan.peers.len() {
                    if self.store_bytes[peer] != self.store_reported[peer] {
                        self.store_reported[peer] = self.store_bytes[peer];
                        collector.record(Event {
                            t: self.now,
                            kind: EventKind::StoreSize {
                                peer: PeerIdx::try_from(peer).unwrap_or(PeerIdx::MAX),
                                bytes: self.store_bytes[peer],
                            },
                        })?;
                    }
                }
                self.at(self.now + STORE_SIZE_MS, Action::StoreSizes);
                Ok(())
            }
        }
    }

    fn publish(&mut self, i: usize, collector: &mut Collector<'_>) -> io::Result<()> {
        let publish = &self.plan.publishes[i];
        let peer = publish.peer;
        if self.crashed[peer as usize] {
            return collector.record(Event {
                t: self.now,
                kind: EventKind::Note {
                    text: format!(
                        "{} is crashed; skipped publishing {}",
                        self.plan.peer_name(peer),
                        self.ids[i]
                    ),
                    error: false,
                },
            });
        }
        let info = &self.interest.msgs()[i];
        let supersedes: Vec<String> = info
            .supersedes
            .iter()
            .map(|s| self.ids[*s].clone())
            .collect();
        collector.record(Event {
            t: self.now,
            kind: EventKind::Publish {
                peer,
                msg: self.ids[i].clone(),
                tangle: info.tangle.clone(),
                feed: info.feed.clone(),
                bytes: info.bytes,
                supersedes,
            },
        })?;
        self.hold(peer, i);
        self.push(peer, i, None, collector)
    }

    fn hold(&mut self, peer: PeerIdx, msg: usize) {
        let info = &self.interest.msgs()[msg];
        self.store[peer as usize].insert(msg);
        self.store_by_tangle
            .entry((peer, self.msg_tangle[msg]))
            .or_default()
            .insert((info.depth, msg));
        self.store_bytes[peer as usize] += info.bytes;
    }

    fn drop_msg(
        &mut self,
        peer: PeerIdx,
        msg: usize,
        action: GcAction,
        collector: &mut Collector<'_>,
    ) -> io::Result<()> {
        let info = &self.interest.msgs()[msg];
        let (depth, bytes) = (info.depth, info.bytes);
        self.store[peer as usize].remove(&msg);
        if let Some(set) = self.store_by_tangle.get_mut(&(peer, self.msg_tangle[msg])) {
            set.remove(&(depth, msg));
        }
        self.store_bytes[peer as usize] = self.store_bytes[peer as usize].saturating_sub(bytes);
        collector.record(Event {
            t: self.now,
            kind: EventKind::Gc {
                peer,
                action,
                bytes,
                msg: Some(self.ids[msg].clone()),
            },
        })
    }

    /// GC at `peer` for `tangle` after a store.
    fn gc(
        &mut self,
        peer: PeerIdx,
        tangle: usize,
        collector: &mut Collector<'_>,
    ) -> io::Result<()> {
        let Some(goal) = self.goals[peer as usize].get(&tangle).copied() else {
            return Ok(());
        };
        let Some(held) = self.store_by_tangle.get(&(peer, tangle)) else {
            return Ok(());
        };
        let victims: Vec<(usize, GcAction)> = match goal {
            Goal::Newest(n) => {
                let n = u32::try_from(n).unwrap_or(u32::MAX);
                let max = held.last().map_or(0, |(d, _)| *d);
                held.iter()
                    .filter(|(d, _)| d + n <= max)
                    .map(|(_, m)| (*m, GcAction::Delete))
                    .collect()
            }
            Goal::Set | Goal::Dict => held
                .iter()
                .filter(|(_, m)| !self.interest.wants_at(peer, *m, self.now))
                .map(|(_, m)| (*m, GcAction::Ghost))
                .collect(),
            Goal::All | Goal::None => Vec::new(),
        };
        for (msg, action) in victims {
            self.drop_msg(peer, msg, action, collector)?;
        }
        Ok(())
    }

    fn receive(
        &mut self,
        peer: PeerIdx,
        msg: usize,
        from: Option<PeerIdx>,
        collector: &mut Collector<'_>,
    ) -> io::Result<()> {
        if self.store[peer as usize].contains(&msg) {
            return collector.record(Event {
                t: self.now,
                kind: EventKind::Duplicate {
                    peer,
                    msg: self.ids[msg].clone(),
                    from,
                    bytes: self.interest.msgs()[msg].bytes,
                },
            });
        }
        // A msg that fell out of the goal range on the way is dropped on arrival (the
        // receiver filters by its want range, protocol.md §7.6).
        if !self.interest.wants_at(peer, msg, self.now) {
            return Ok(());
        }
        collector.record(Event {
            t: self.now,
            kind: EventKind::Store {
                peer,
                msg: self.ids[msg].clone(),
                tangle: self.interest.msgs()[msg].tangle.clone(),
                from,
            },
        })?;
        self.hold(peer, msg);
        self.gc(peer, self.msg_tangle[msg], collector)?;
        self.push(peer, msg, from, collector)
    }

    /// Realtime push of `msg` from `peer` to neighbours that want it.
    fn push(
        &mut self,
        peer: PeerIdx,
        msg: usize,
        came_from: Option<PeerIdx>,
        collector: &mut Collector<'_>,
    ) -> io::Result<()> {
        if !self.up(peer) {
            return Ok(());
        }
        let tangle = self.msg_tangle[msg];
        let bytes = self.interest.msgs()[msg].bytes;
        let edges = self.edges_of[peer as usize].clone();
        for edge in edges {
            if self.conn[edge] != Conn::Up {
                continue;
            }
            let e = self.edge(edge);
            let other = if e.dialer == peer {
                e.acceptor
            } else {
                e.dialer
            };
            if Some(other) == came_from
                || !self.carries[e.dialer as usize].contains(&tangle)
                || !self.interest.wants_at(other, msg, self.now)
                || self.store[other as usize].contains(&msg)
            {
                continue;
            }
            if !self.send(edge, peer, other, WireKind::Msgs, bytes, collector)? {
                continue;
            }
            let delay = self.latency_of(peer, other);
            let epoch = self.epoch[edge];
            self.at(
                self.now + delay.max(1),
                Action::Deliver {
                    edge,
                    epoch,
                    from: peer,
                    to: other,
                    msg,
                },
            );
        }
        Ok(())
    }

    fn dial(&mut self, edge: usize, collector: &mut Collector<'_>) -> io::Result<()> {
        if self.conn[edge] != Conn::Dialing {
            return Ok(());
        }
        let e = self.edge(edge);
        if !self.up(e.dialer) || !self.up(e.acceptor) || self.cut(e.dialer, e.acceptor) {
            self.conn[edge] = Conn::Down;
            return Ok(());
        }
        self.conn[edge] = Conn::Handshaking;
        let (client, server) = match self.plan.transport {
            Transport::Shse => (64 + 112, 64 + 80),
            Transport::Plaintext => (32, 32),
        };
        self.epoch[edge] += 1;
        let epoch = self.epoch[edge];
        if !self.send(
            edge,
            e.dialer,
            e.acceptor,
            WireKind::Handshake,
            client,
            collector,
        )? || !self.send(
            edge,
            e.acceptor,
            e.dialer,
            WireKind::Handshake,
            server,
            collector,
        )? {
            return Ok(());
        }
        let rtt = 2 * self.latency_of(e.dialer, e.acceptor);
        self.at(self.now + 2 * rtt.max(1), Action::Connected { edge, epoch });
        Ok(())
    }

    fn connected(
        &mut self,
        edge: usize,
        epoch: u64,
        collector: &mut Collector<'_>,
    ) -> io::Result<()> {
        if self.epoch[edge] != epoch || self.conn[edge] != Conn::Handshaking {
            return Ok(());
        }
        let e = self.edge(edge);
        if !self.up(e.dialer) || !self.up(e.acceptor) || self.cut(e.dialer, e.acceptor) {
            self.conn[edge] = Conn::Down;
            return Ok(());
        }
        self.conn[edge] = Conn::Up;
        collector.record(Event {
            t: self.now,
            kind: EventKind::Connect {
                a: e.dialer,
                b: e.acceptor,
            },
        })?;
        let tangles: Vec<usize> = self.carries[e.dialer as usize].iter().copied().collect();
        for tangle in tangles {
            if self.conn[edge] != Conn::Up {
                break;
            }
            self.start_sync(edge, tangle, collector)?;
        }
        Ok(())
    }

    fn held_in(&self, peer: PeerIdx, tangle: usize) -> Vec<usize> {
        self.store_by_tangle
            .get(&(peer, tangle))
            .map(|set| set.iter().map(|(_, m)| *m).collect())
            .unwrap_or_default()
    }

    fn start_sync(
        &mut self,
        edge: usize,
        tangle: usize,
        collector: &mut Collector<'_>,
    ) -> io::Result<()> {
        let e = self.edge(edge);
        let at_dialer = self.held_in(e.dialer, tangle);
        let at_acceptor = self.held_in(e.acceptor, tangle);
        if at_dialer.is_empty() && at_acceptor.is_empty() {
            return Ok(());
        }
        let now = self.now;
        let missing = |from: &[usize], to: PeerIdx, model: &Self| -> Vec<usize> {
            from.iter()
                .copied()
                .filter(|m| {
                    !model.store[to as usize].contains(m) && model.interest.wants_at(to, *m, now)
                })
                .collect()
        };
        let to_dialer = missing(&at_acceptor, e.dialer, self);
        let to_acceptor = missing(&at_dialer, e.acceptor, self);
        let shortcut = at_dialer.is_empty() || at_acceptor.is_empty();
        let (round_trips, frames_each, blooms_each) = if shortcut { (2, 1, 0) } else { (5, 4, 3) };
        let range = at_dialer.len().max(at_acceptor.len()) as u64;
        let bloom = bloom_bytes(range);
        let ids_each = (to_dialer.len() + to_acceptor.len()) as u64 * MSG_ID_BYTES / 2;
        for (from, to) in [(e.dialer, e.acceptor), (e.acceptor, e.dialer)] {
            if !self.send(
                edge,
                from,
                to,
                WireKind::SyncControl,
                frames_each * SYNC_FRAME_BYTES + ids_each,
                collector,
            )? || !self.send(
                edge,
                from,
                to,
                WireKind::Bloom,
                blooms_each * bloom,
                collector,
            )? {
                return Ok(());
            }
        }
        let rtt = 2 * self.latency_of(e.dialer, e.acceptor);
        let epoch = self.epoch[edge];
        self.at(
            self.now + u64::from(round_trips) * rtt.max(1),
            Action::SyncDone(Box::new(SyncDone {
                edge,
                epoch,
                tangle,
                round_trips,
                to_dialer,
                to_acceptor,
            })),
        );
        Ok(())
    }

    fn sync_done(&mut self, done: SyncDone, collector: &mut Collector<'_>) -> io::Result<()> {
        if self.epoch[done.edge] != done.epoch || self.conn[done.edge] != Conn::Up {
            return Ok(());
        }
        let e = self.edge(done.edge);
        collector.record(Event {
            t: self.now,
            kind: EventKind::SyncRound {
                peer: e.dialer,
                remote: e.acceptor,
                tangle: self.tangles[done.tangle].2.clone(),
                round_trips: done.round_trips,
            },
        })?;
        for (from, to, msgs) in [
            (e.acceptor, e.dialer, &done.to_dialer),
            (e.dialer, e.acceptor, &done.to_acceptor),
        ] {
            if msgs.is_empty() {
                continue;
            }
            let bytes: u64 = msgs.iter().map(|m| self.interest.msgs()[*m].bytes).sum();
            if !self.send(done.edge, from, to, WireKind::Msgs, bytes, collector)? {
                return Ok(());
            }
            for msg in msgs {
                self.receive(to, *msg, Some(from), collector)?;
            }
        }
        Ok(())
    }

    fn peer_down(
        &mut self,
        peer: PeerIdx,
        reason: &str,
        collector: &mut Collector<'_>,
    ) -> io::Result<()> {
        for edge in self.edges_of[peer as usize].clone() {
            self.disconnect(edge, reason, collector)?;
        }
        Ok(())
    }

    fn peer_up(&mut self, peer: PeerIdx) {
        for edge in self.edges_of[peer as usize].clone() {
            self.try_connect(edge, 0);
        }
    }

    fn churn(&mut self, step: ChurnStep, collector: &mut Collector<'_>) -> io::Result<()> {
        let peer = step.peer;
        if step.online {
            if !self.offline[peer as usize] {
                return Ok(());
            }
            self.offline[peer as usize] = false;
            collector.record(Event {
                t: self.now,
                kind: EventKind::Online { peer },
            })?;
            self.peer_up(peer);
        } else {
            if self.offline[peer as usize] {
                return Ok(());
            }
            self.offline[peer as usize] = true;
            collector.record(Event {
                t: self.now,
                kind: EventKind::Offline { peer },
            })?;
            self.peer_down(peer, "offline", collector)?;
        }
        Ok(())
    }

    fn link_pairs(&self, step: &FaultStep) -> Vec<(PeerIdx, PeerIdx)> {
        let mut out = Vec::new();
        for a in &step.a {
            for b in &step.b {
                if a != b {
                    out.push((*a, *b));
                }
            }
        }
        out
    }

    fn fault(
        &mut self,
        index: usize,
        step: &FaultStep,
        collector: &mut Collector<'_>,
    ) -> io::Result<()> {
        collector.record(Event {
            t: self.now,
            kind: EventKind::Fault {
                step: u32::try_from(index).unwrap_or(u32::MAX),
                action: step.action.to_string(),
            },
        })?;
        let all_links = step.a.is_empty();
        match step.action {
            FaultAction::Partition | FaultAction::OneWay => {
                for (a, b) in self.link_pairs(step) {
                    self.blocked.insert((a, b));
                    if step.action == FaultAction::Partition {
                        self.blocked.insert((b, a));
                    }
                }
                for edge in 0..self.plan.edges.len() {
                    let e = self.edge(edge);
                    if self.cut(e.dialer, e.acceptor) {
                        if self.conn[edge] == Conn::Up {
                            self.disconnect(edge, "partition", collector)?;
                        } else {
                            self.conn[edge] = Conn::Down;
                            self.epoch[edge] += 1;
                        }
                    }
                }
            }
            FaultAction::Heal => {
                if all_links {
                    self.blocked.clear();
                } else {
                    for (a, b) in self.link_pairs(step) {
                        self.blocked.remove(&(a, b));
                        self.blocked.remove(&(b, a));
                    }
                }
                for edge in 0..self.plan.edges.len() {
                    self.try_connect(edge, 0);
                }
            }
            FaultAction::Crash => {
                for &peer in &step.peers {
                    if self.crashed[peer as usize] {
                        continue;
                    }
                    self.crashed[peer as usize] = true;
                    collector.record(Event {
                        t: self.now,
                        kind: EventKind::Crash { peer },
                    })?;
                    self.peer_down(peer, "crash", collector)?;
                }
            }
            FaultAction::Restart => {
                for &peer in &step.peers {
                    if !self.crashed[peer as usize] {
                        continue;
                    }
                    self.crashed[peer as usize] = false;
                    collector.record(Event {
                        t: self.now,
                        kind: EventKind::Restart { peer },
                    })?;
                    self.peer_up(peer);
                }
            }
            FaultAction::Latency => {
                if all_links {
                    match step.latency {
                        Some(model) => {
                            self.latency = model;
                            self.link_latency.clear();
                        }
                        None => {
                            self.latency = self.plan.network.latency;
                            self.link_latency = self.configured_latency.clone();
                        }
                    }
                } else {
                    for (a, b) in self.link_pairs(step) {
                        let key = pair(a, b);
                        match step.latency {
                            Some(model) => {
                                self.link_latency.insert(key, model);
                            }
                            None => match self.configured_latency.get(&key) {
                                Some(model) => {
                                    self.link_latency.insert(key, *model);
                                }
                                None => {
                                    self.link_latency.remove(&key);
                                }
                            },
                        }
                    }
                }
            }
            FaultAction::Loss => {
                if all_links {
                    match step.fail_rate {
                        Some(rate) => {
                            self.fail_rate = rate;
                            self.link_fail.clear();
                        }
                        None => {
                            self.fail_rate = self.plan.network.fail_rate;
                            self.link_fail = self.configured_fail.clone();
                        }
                    }
                } else {
                    for (a, b) in self.link_pairs(step) {
                        let key = pair(a, b);
                        match step.fail_rate {
                            Some(rate) => {
                                self.link_fail.insert(key, rate);
                            }
                            None => match self.configured_fail.get(&key) {
                                Some(rate) => {
                                    self.link_fail.insert(key, *rate);
                                }
                                None => {
                                    self.link_fail.remove(&key);
                                }
                            },
                        }
                    }
                }
            }
            FaultAction::Hold => {
                for (a, b) in self.link_pairs(step) {
                    self.held_links.insert(pair(a, b));
                }
            }
            FaultAction::Release => {
                if all_links {
                    self.held_links.clear();
                } else {
                    for (a, b) in self.link_pairs(step) {
                        self.held_links.remove(&pair(a, b));
                    }
                }
                let queued = std::mem::take(&mut self.held_queue);
                for action in queued {
                    if let Action::Deliver { from, to, .. } = &action {
                        let delay = self.latency_of(*from, *to);
                        self.at(self.now + delay.max(1), action);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Bytes of a bloom filter's JSON for a want range of `range` msgs (protocol.md §7.5):
/// 2n items at a 1e-5 false-positive rate, base64 plus the JSON wrapper.
fn bloom_bytes(range: u64) -> u64 {
    let n = (2 * range).clamp(5, 1_000);
    #[expect(clippy::cast_precision_loss, reason = "n ≤ 1000")]
    let bits = (-(2.0 * n as f64) * (1e-5_f64).ln() / (std::f64::consts::LN_2.powi(2))).ceil();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive count of bits below 2^20"
    )]
    let bytes = (bits as u64).div_ceil(8);
    bytes.div_ceil(3) * 4 + 110
}

/// The synthetic msg ID (`<peer name>/<feed>/<seq>`).
fn synthetic_id(plan: &Plan, publish: &Publish) -> String {
    format!(
        "{}/{}",
        synthetic_tangle(plan, publish.peer, &publish.feed),
        publish.seq
    )
}

/// The synthetic tangle ID of a peer's feed (`<peer name>/<feed>`).
fn synthetic_tangle(plan: &Plan, peer: PeerIdx, feed: &str) -> String {
    format!("{}/{feed}", plan.peer_name(peer))
}
