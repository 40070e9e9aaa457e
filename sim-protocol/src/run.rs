//! One run of the engine: the state of every peer and link, the event queue, and the loop
//! that pops events in (time, sequence) order until the plan's end. Peers' lifecycles
//! (start, crash, restart, churn), publishing and fault steps are here; connections are in
//! `conn.rs`, the sessions' outputs in `apply.rs`.

use std::collections::BTreeMap;

use proto::db::Db;
use proto::dial::{Action, Backoff, Event as DialEvent, TargetId};
use proto::ids::{MsgId, TangleId};
use proto::ingest::Snapshot;
use proto::msg::Msg;
use proto::store::{MemStore, Store};
use proto::sync::{Event as SyncEvent, SyncIndex};
use proto::validate::{Verdicts, Verifier};
use sim::check::Holdings;
use sim::error::SimError;
use sim::metrics::Collector;
use sim::plan::{PeerIdx, Plan};
use sim::progress::Progress;
use sim::scenario::FaultAction;
use sim::timers::SimTimers;
use sim::trace::{Event, EventKind};
use sim::workload;

use crate::bandwidth::QueuePeaks;
use crate::dialing::{DialEv, Dialing};
use crate::link::{LinkId, SyncLinks};
use crate::network::Network;
use crate::peer::{Peer, Running};
use crate::queue::Queue;
use crate::stats::RunStats;
use crate::wires::{LinkEv, Wired};

/// What the queue holds.
#[derive(Debug)]
pub(crate) enum Ev {
    /// A peer's first start.
    Start(PeerIdx),
    /// The peer's next scheduled write is due (for this incarnation).
    Publish { peer: PeerIdx, incarnation: u64 },
    /// A fault step of the plan.
    Fault(usize),
    /// A churn step of the plan.
    Churn(usize),
    /// The dial schedule's wake-up.
    DialWake { peer: PeerIdx, incarnation: u64 },
    /// The sync sessions' wake-up.
    SyncWake { peer: PeerIdx, incarnation: u64 },
    /// A dial, its handshake completing, or its failure.
    Dialing(DialEv),
    /// A pipe's messages are due, or a link's keepalive and idle check.
    Link(LinkEv),
    /// A session asked to close its link.
    Close(LinkId),
}

/// Everything one run holds.
pub(crate) struct Run<'p> {
    pub(crate) plan: &'p Plan,
    pub(crate) timers: SimTimers,
    pub(crate) now: u64,
    pub(crate) queue: Queue<Ev>,
    pub(crate) peers: Vec<Peer>,
    pub(crate) links: SyncLinks,
    pub(crate) net: Network,
    /// Every workload feed's tangle → (author, feed name).
    pub(crate) feeds: BTreeMap<TangleId, (PeerIdx, String)>,
    /// Encoded size of every published msg (duplicates and GC report it).
    pub(crate) msg_bytes: BTreeMap<MsgId, u64>,
    /// The current write: objects one step of a peer's sessions sends on a link go out in
    /// one write (one segment, one latency draw), as the node batches them.
    pub(crate) write: u64,
    /// Events of the current step, handed to the collector after it.
    pub(crate) events: Vec<Event>,
    /// A buffer for the JSON text of sent sync objects (only their length is used).
    pub(crate) json_scratch: String,
    /// Whether to assert the sessions' invariants after every event (debug builds).
    pub(crate) check_invariants: bool,
    /// Objects put in pipes (sync objects, pings, pongs), for `compare-protocols`.
    pub(crate) messages: u64,
    /// Each peer's largest queue (only measured when a link has a bandwidth).
    pub(crate) queue_peaks: QueuePeaks,
}

impl<'p> Run<'p> {
    pub(crate) fn new(plan: &'p Plan, verify_all: bool) -> Self {
        // One verdict per msg signature for the whole run, unless every peer verifies.
        let verdicts = (!verify_all).then(Verdicts::new);
        let verifier = || {
            verdicts
                .clone()
                .map_or_else(Verifier::new, Verifier::sharing)
        };
        let keypairs: Vec<_> = plan
            .peers
            .iter()
            .map(|peer| workload::keypair(plan.seed, peer.index))
            .collect();
        let accounts: Vec<_> = plan
            .peers
            .iter()
            .zip(&keypairs)
            .map(|(peer, keypair)| workload::account_root(plan.seed, peer.index, keypair).id())
            .collect();
        let mut schedules = workload::schedules(plan, &accounts);
        // Whom each peer dials, in edge order: one pass over the edges (a filter per peer
        // was peers × edges, 700 million steps at 10,000 peers).
        let mut targets: Vec<Vec<PeerIdx>> = vec![Vec::new(); plan.peers.len()];
        for edge in &plan.edges {
            if let Some(list) = targets.get_mut(edge.dialer as usize) {
                list.push(edge.acceptor);
            }
        }
        let peers = plan
            .peers
            .iter()
            .zip(keypairs)
            .map(|(peer, keypair)| {
                let mut goals = proto::goals::Goals::new();
                for (tangle, goal) in workload::goals(peer, &accounts) {
                    // A peer with more goals than the bound keeps the first ones, as the
                    // node's goals actor does.
                    let _ = goals.set(tangle, goal);
                }
                Peer {
                    index: peer.index,
                    keypair,
                    account: accounts[peer.index as usize],
                    db: Db::with_verifier(MemStore::new(), verifier()),
                    sync_index: SyncIndex::new(),
                    goals,
                    memory: workload::Memory::default(),
                    schedule: std::mem::take(&mut schedules[peer.index as usize]),
                    targets: std::mem::take(&mut targets[peer.index as usize]),
                    crashed: false,
                    offline: false,
                    running: None,
                    store_size_at: None,
                }
            })
            .collect();
        Self {
            plan,
            timers: SimTimers::retransmitting(),
            now: 0,
            queue: Queue::new(),
            peers,
            links: SyncLinks::default(),
            net: Network::new(plan),
            feeds: workload::feed_names(plan, &accounts),
            msg_bytes: BTreeMap::new(),
            write: 1,
            events: Vec::new(),
            json_scratch: String::with_capacity(4096),
            check_invariants: cfg!(debug_assertions),
            messages: 0,
            queue_peaks: QueuePeaks::new(plan.peers.len()),
        }
    }

    /// Runs to the plan's end and hands every peer's holdings to the collector. Returns the
    /// number of events handled and of messages sent.
    pub(crate) fn execute(
        mut self,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<RunStats, SimError> {
        // Faults and churn at 0 s apply before the peers start, as on the full-stack tier.
        for index in 0..self.plan.faults.len() {
            let t_ms = self.plan.faults[index].t_ms;
            self.queue.push(t_ms, Ev::Fault(index));
        }
        for index in 0..self.plan.churn.len() {
            let t_ms = self.plan.churn[index].t_ms;
            self.queue.push(t_ms, Ev::Churn(index));
        }
        for peer in 0..self.peers.len() {
            self.queue.push(0, Ev::Start(peer_idx(peer)));
        }
        let mut last_progress = 0;
        while let Some((t_ms, event)) = self.queue.pop() {
            if t_ms >= self.plan.duration_ms {
                break;
            }
            self.now = t_ms;
            self.handle(event);
            self.drain_into(collector)?;
            if t_ms >= last_progress + 1_000 {
                progress.set(t_ms);
                last_progress = t_ms;
            }
        }
        let stats = RunStats {
            messages: self.messages,
            events: self.queue.popped(),
        };
        if self.net.limits_bandwidth() {
            collector.queue_peaks(self.queue_peaks.by_peer());
        }
        self.finish(collector)?;
        Ok(stats)
    }

    fn handle(&mut self, event: Ev) {
        match event {
            Ev::Start(peer) => self.boot(peer),
            Ev::Publish { peer, incarnation } => {
                if self.peers[peer as usize].incarnation() == Some(incarnation) {
                    self.publish(peer);
                }
            }
            Ev::Fault(index) => self.fault(index),
            Ev::Churn(index) => self.churn(index),
            Ev::DialWake { peer, incarnation } => self.dial_wake(peer, incarnation),
            Ev::SyncWake { peer, incarnation } => self.sync_wake(peer, incarnation),
            Ev::Dialing(event) => self.dial_event(event),
            Ev::Link(LinkEv::Deliver { link, to }) => self.deliver(link, to),
            Ev::Link(LinkEv::Tick(link)) => self.link_tick(link),
            Ev::Close(link) => self.close_link(link, "protocol"),
        }
    }

    pub(crate) fn emit(&mut self, kind: EventKind) {
        self.events.push(Event { t: self.now, kind });
    }

    pub(crate) fn note(&mut self, text: String, error: bool) {
        self.emit(EventKind::Note { text, error });
    }

    fn drain_into(&mut self, collector: &mut Collector<'_>) -> Result<(), SimError> {
        for event in self.events.drain(..) {
            collector.record(event).map_err(SimError::Trace)?;
        }
        Ok(())
    }

    /// Every peer's final store size, then its holdings.
    fn finish(mut self, collector: &mut Collector<'_>) -> Result<(), SimError> {
        self.now = self.plan.duration_ms;
        for index in 0..self.peers.len() {
            let bytes = self.peers[index].db.store().stats().bytes;
            self.emit(EventKind::StoreSize {
                peer: peer_idx(index),
                bytes,
            });
        }
        self.drain_into(collector)?;
        for peer in &mut self.peers {
            let Ok(snapshot) = Snapshot::of(&mut peer.db);
            collector.snapshot(peer.index, Holdings::from(&snapshot));
        }
        Ok(())
    }

    /// Starts a peer's next incarnation over its kept store.
    fn boot(&mut self, peer: PeerIdx) {
        let seed = self.plan.seed;
        let backoff = Backoff {
            base_ms: self.timers.backoff_base_ms,
            max_ms: self.timers.backoff_max_ms,
        };
        let state = &mut self.peers[peer as usize];
        let incarnation = state.memory.incarnations;
        state.memory.incarnations += 1;
        // The scenario's re-initiation, as the full-stack tier configures its nodes.
        let config = proto::sync::Config {
            reinitiation: match self.plan.reinitiation {
                sim::scenario::Reinitiation::Targeted => proto::sync::Reinitiation::Targeted,
                sim::scenario::Reinitiation::Reference => proto::sync::Reinitiation::Reference,
            },
            ..proto::sync::Config::default()
        };
        let state = &mut self.peers[peer as usize];
        state.running = Some(Running::new(
            incarnation,
            config,
            backoff,
            workload::dial_rng(seed, peer, incarnation),
        ));
        // The node rebuilds its sync index from the store at every start.
        state.sync_index = SyncIndex::new();
        if incarnation == 0 {
            self.create_account(peer);
        }
        self.skip_missed(peer);
        self.schedule_publish(peer);
        let targets = self.peers[peer as usize].targets.len();
        let mut actions = Vec::new();
        if let Some(running) = self.peers[peer as usize].running.as_mut() {
            for target in 0..targets {
                running.redial.handle(
                    proto::sync::Time(self.now),
                    DialEvent::Added(TargetId(target)),
                    &mut running.rng,
                    &mut actions,
                );
            }
        }
        // Dialed after this instant's other starts: peers that start together all listen
        // before the first connection arrives.
        for Action::Dial(target) in actions {
            let dial = DialEv::Dial {
                peer,
                incarnation,
                target,
            };
            self.push_dial(self.now, dial);
        }
        self.arm(peer);
    }

    /// The account root, then the moots of the post feeds (as the app at its first start).
    fn create_account(&mut self, peer: PeerIdx) {
        let seed = self.plan.seed;
        let state = &mut self.peers[peer as usize];
        let root = workload::account_root(seed, peer, &state.keypair);
        let mut created = vec![("account", root)];
        let mut failures = Vec::new();
        for domain in workload::post_domains(&state.schedule) {
            match Msg::create_moot(state.account, domain, &state.keypair) {
                Ok(moot) => created.push(("moot", moot)),
                Err(error) => failures.push(format!(
                    "{} could not create its feed {domain}: {error}",
                    self.plan.peer_name(peer)
                )),
            }
        }
        for text in failures {
            self.note(text, true);
        }
        for (feed, msg) in created {
            let id = msg.id();
            let added = self.peers[peer as usize].db.add(msg, None);
            if let Err(error) = added {
                let text = format!("peer {peer}: cannot add its own {feed}: {}", error.reason());
                self.note(text, true);
                continue;
            }
            self.published(peer, id, id, feed, Vec::new());
        }
    }

    /// Records a msg the peer made (indexed, sized, announced as a publish).
    pub(crate) fn published(
        &mut self,
        peer: PeerIdx,
        id: MsgId,
        tangle: TangleId,
        feed: &str,
        supersedes: Vec<String>,
    ) -> Option<(MsgId, std::sync::Arc<Msg>)> {
        let state = &mut self.peers[peer as usize];
        let Ok(Some(stored)) = state.db.get(&id) else {
            return None;
        };
        let Ok(()) = state.sync_index.note_added(&mut state.db, &id, &stored);
        let bytes = u64::try_from(stored.to_json().len()).unwrap_or(u64::MAX);
        self.msg_bytes.insert(id, bytes);
        self.emit(EventKind::Publish {
            peer,
            msg: id.to_string(),
            tangle: tangle.to_string(),
            feed: feed.to_owned(),
            bytes,
            supersedes,
        });
        Some((id, stored))
    }

    /// Writes scheduled while the peer was down are skipped: a stopped app writes nothing.
    fn skip_missed(&mut self, peer: PeerIdx) {
        let now = self.now;
        let name = self.plan.peer_name(peer).to_owned();
        let mut skipped = Vec::new();
        let state = &mut self.peers[peer as usize];
        while let Some(missed) = state.schedule.get(state.memory.next)
            && missed.t_ms < now
        {
            skipped.push(format!(
                "{name} was down at {} ms; skipped publishing on {}",
                missed.t_ms, missed.domain
            ));
            state.memory.next += 1;
        }
        for text in skipped {
            self.note(text, false);
        }
    }

    fn schedule_publish(&mut self, peer: PeerIdx) {
        let state = &self.peers[peer as usize];
        let (Some(next), Some(incarnation)) =
            (state.schedule.get(state.memory.next), state.incarnation())
        else {
            return;
        };
        let t_ms = next.t_ms.max(self.now);
        self.queue.push(t_ms, Ev::Publish { peer, incarnation });
    }

    /// The peer's next scheduled write.
    fn publish(&mut self, peer: PeerIdx) {
        let state = &mut self.peers[peer as usize];
        let Some(next) = state.schedule.get(state.memory.next).cloned() else {
            return;
        };
        state.memory.next += 1;
        let (data, supersedes) = state.memory.data_for(&next.write);
        let moot_existed = matches!(state.db.get(&next.tangle), Ok(Some(_)));
        let result = state
            .db
            .publish(&state.keypair, &state.account, &next.domain, data, &[]);
        match result {
            Ok(id) => {
                state.memory.written(&next.write, id);
                let mut added = Vec::new();
                if !moot_existed {
                    added.extend(self.published(
                        peer,
                        next.tangle,
                        next.tangle,
                        "moot",
                        Vec::new(),
                    ));
                }
                let feed = self
                    .feeds
                    .get(&next.tangle)
                    .map_or_else(|| "?".to_owned(), |(_, feed)| feed.clone());
                let supersedes = supersedes.iter().map(ToString::to_string).collect();
                added.extend(self.published(peer, id, next.tangle, &feed, supersedes));
                self.feed(
                    peer,
                    SyncEvent::LocalAdded {
                        msgs: added,
                        origin: None,
                    },
                );
            }
            Err(error) => {
                let name = self.plan.peer_name(peer);
                let text = format!("{name} could not publish on {}: {error}", next.domain);
                self.note(text, true);
            }
        }
        self.schedule_publish(peer);
    }

    /// Stops a peer (crash or churn): its sessions and links are gone, its store stays.
    fn stop(&mut self, peer: PeerIdx, reason: &str) {
        let Some(running) = self.peers[peer as usize].running.take() else {
            return;
        };
        for link in running.links {
            let dialed = self.links.get(&link).is_some_and(|l| l.dialer == peer);
            self.close_link(link, if dialed { reason } else { "closed" });
        }
    }

    fn fault(&mut self, index: usize) {
        let plan = self.plan;
        let step = &plan.faults[index];
        self.emit(EventKind::Fault {
            step: u32::try_from(index).unwrap_or(u32::MAX),
            action: step.action.to_string(),
        });
        match step.action {
            FaultAction::Crash => {
                for &peer in &step.peers {
                    let state = &mut self.peers[peer as usize];
                    if state.crashed {
                        continue;
                    }
                    state.crashed = true;
                    self.emit(EventKind::Crash { peer });
                    self.stop(peer, "crash");
                }
            }
            FaultAction::Restart => {
                for &peer in &step.peers {
                    let state = &mut self.peers[peer as usize];
                    if !state.crashed {
                        continue;
                    }
                    state.crashed = false;
                    self.emit(EventKind::Restart { peer });
                    if self.peers[peer as usize].up() {
                        self.boot(peer);
                    }
                }
            }
            _ => {
                if self.net.apply(step) {
                    self.resume_pipes();
                }
            }
        }
    }

    fn churn(&mut self, index: usize) {
        let step = self.plan.churn[index];
        let peer = step.peer;
        let state = &mut self.peers[peer as usize];
        if step.online {
            if !state.offline {
                return;
            }
            state.offline = false;
            self.emit(EventKind::Online { peer });
            if self.peers[peer as usize].up() {
                self.boot(peer);
            }
        } else {
            if state.offline {
                return;
            }
            state.offline = true;
            self.emit(EventKind::Offline { peer });
            self.stop(peer, "offline");
        }
    }

    /// Dials what the dial schedule asks for.
    pub(crate) fn dial_all(&mut self, peer: PeerIdx, actions: Vec<Action>) {
        for Action::Dial(target) in actions {
            self.dial(peer, target);
        }
    }

    /// Tells the dial schedule `event` and dials what it asks for.
    pub(crate) fn redial(&mut self, peer: PeerIdx, event: DialEvent) {
        let now = proto::sync::Time(self.now);
        let mut actions = Vec::new();
        if let Some(running) = self.peers[peer as usize].running.as_mut() {
            running
                .redial
                .handle(now, event, &mut running.rng, &mut actions);
        }
        self.dial_all(peer, actions);
        self.arm(peer);
    }

    fn dial_wake(&mut self, peer: PeerIdx, incarnation: u64) {
        let now = self.now;
        let Some(running) = self.peers[peer as usize].running.as_mut() else {
            return;
        };
        if running.incarnation != incarnation || running.dial_wake != Some(now) {
            return;
        }
        running.dial_wake = None;
        self.redial(peer, DialEvent::Tick);
    }

    fn sync_wake(&mut self, peer: PeerIdx, incarnation: u64) {
        let now = self.now;
        let Some(running) = self.peers[peer as usize].running.as_mut() else {
            return;
        };
        if running.incarnation != incarnation || running.sync_wake != Some(now) {
            return;
        }
        running.sync_wake = None;
        self.feed(peer, SyncEvent::Tick);
    }

    /// Keeps one queue entry armed per deadline of the peer's machines.
    pub(crate) fn arm(&mut self, peer: PeerIdx) {
        let now = self.now;
        let Some(running) = self.peers[peer as usize].running.as_mut() else {
            return;
        };
        let incarnation = running.incarnation;
        if let Some(deadline) = running.sessions.deadline() {
            let at = deadline.0.max(now);
            if running.sync_wake != Some(at) {
                running.sync_wake = Some(at);
                self.queue.push(at, Ev::SyncWake { peer, incarnation });
            }
        }
        if let Some(deadline) = running.redial.deadline() {
            let at = deadline.0.max(now);
            if running.dial_wake != Some(at) {
                running.dial_wake = Some(at);
                self.queue.push(at, Ev::DialWake { peer, incarnation });
            }
        }
    }
}

/// A peer index from a position in the peer list (plans hold fewer than 2^32 peers).
pub(crate) fn peer_idx(index: usize) -> PeerIdx {
    PeerIdx::try_from(index).expect("invariant: plans hold fewer than 2^32 peers")
}
