//! One run of the engine: the peers, the links, the event queue and the loop, and the peers'
//! lifecycles (start, crash, restart, churn), publishing and fault steps, around each peer's
//! `Replicator`. Connections and the machines' outputs are in `conn.rs`.

use baselines::{Feed, Input, Item, ItemId, LinkId, Replicator};
use proto::dial::{Action, Backoff, Event as DialEvent, TargetId};
use sim::check::Holdings;
use sim::error::SimError;
use sim::metrics::Collector;
use sim::plan::{PeerIdx, Plan};
use sim::progress::Progress;
use sim::scenario::FaultAction;
use sim::timers::SimTimers;
use sim::trace::{Event, EventKind};
use sim::workload;

use super::items::Items;
use super::peer::{Peer, Running};
use crate::bandwidth::QueuePeaks;
use crate::dialing::{DialEv, Dialing};
use crate::link::Links;
use crate::network::Network;
use crate::queue::Queue;
use crate::stats::RunStats;
use crate::wires::{LinkEv, Wired};

/// What the queue holds.
#[derive(Debug)]
pub(crate) enum Ev {
    Start(PeerIdx),
    Publish {
        peer: PeerIdx,
        incarnation: u64,
    },
    Fault(usize),
    Churn(usize),
    DialWake {
        peer: PeerIdx,
        incarnation: u64,
    },
    MachineWake {
        peer: PeerIdx,
        incarnation: u64,
    },
    /// A dial, its handshake completing, or its failure.
    Dialing(DialEv),
    Link(LinkEv),
    /// A machine asked to close this link.
    Close(LinkId),
}

/// Everything one run holds.
pub(crate) struct Run<'p, R: Replicator> {
    pub(crate) plan: &'p Plan,
    pub(crate) timers: SimTimers,
    pub(crate) now: u64,
    pub(crate) queue: Queue<Ev>,
    pub(crate) peers: Vec<Peer<R>>,
    pub(crate) links: Links<R::Wire>,
    pub(crate) net: Network,
    pub(crate) items: Items,
    pub(crate) write: u64,
    pub(crate) messages: u64,
    pub(crate) dials: u64,
    pub(crate) events: Vec<Event>,
    /// Each peer's largest queue (only measured when a link has a bandwidth).
    pub(crate) queue_peaks: QueuePeaks,
}

impl<'p, R: Replicator> Run<'p, R> {
    /// A run whose peer `p` runs `machines[p]`.
    pub(crate) fn new(plan: &'p Plan, machines: Vec<R>) -> Self {
        let mut targets: Vec<Vec<PeerIdx>> = vec![Vec::new(); plan.peers.len()];
        for edge in &plan.edges {
            if let Some(list) = targets.get_mut(edge.dialer as usize) {
                list.push(edge.acceptor);
            }
        }
        let mut schedules: Vec<Vec<usize>> = vec![Vec::new(); plan.peers.len()];
        for (index, publish) in plan.publishes.iter().enumerate() {
            if let Some(list) = schedules.get_mut(publish.peer as usize) {
                list.push(index);
            }
        }
        let peers = plan
            .peers
            .iter()
            .zip(machines)
            .map(|(peer, machine)| Peer {
                machine,
                held: std::collections::BTreeSet::new(),
                schedule: std::mem::take(&mut schedules[peer.index as usize]),
                next: 0,
                targets: std::mem::take(&mut targets[peer.index as usize]),
                incarnations: 0,
                crashed: false,
                offline: false,
                running: None,
            })
            .collect();
        Self {
            plan,
            timers: SimTimers::retransmitting(),
            now: 0,
            queue: Queue::new(),
            peers,
            links: Links::default(),
            net: Network::new(plan),
            items: Items::new(plan),
            write: 1,
            messages: 0,
            dials: 0,
            events: Vec::new(),
            queue_peaks: QueuePeaks::new(plan.peers.len()),
        }
    }

    /// Runs to the plan's end and hands every peer's holdings to the collector.
    pub(crate) fn execute(
        mut self,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<RunStats, SimError> {
        for index in 0..self.plan.faults.len() {
            self.queue
                .push(self.plan.faults[index].t_ms, Ev::Fault(index));
        }
        for index in 0..self.plan.churn.len() {
            self.queue
                .push(self.plan.churn[index].t_ms, Ev::Churn(index));
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
            dials: self.dials,
            events: self.queue.popped(),
        };
        self.now = self.plan.duration_ms;
        for index in 0..self.peers.len() {
            let bytes = self.peers[index].machine.stored_bytes();
            self.emit(EventKind::StoreSize {
                peer: peer_idx(index),
                bytes,
            });
        }
        self.drain_into(collector)?;
        for (index, peer) in self.peers.iter_mut().enumerate() {
            let holdings = match peer.machine.holdings() {
                Some(tangles) => Holdings { tangles },
                None => self.items.holdings(&peer.held),
            };
            collector.snapshot(peer_idx(index), holdings);
        }
        if self.net.limits_bandwidth() {
            collector.queue_peaks(self.queue_peaks.by_peer());
        }
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
            Ev::MachineWake { peer, incarnation } => self.machine_wake(peer, incarnation),
            Ev::Dialing(event) => self.dial_event(event),
            Ev::Link(LinkEv::Deliver { link, to }) => self.deliver(link, to),
            Ev::Link(LinkEv::Tick(link)) => self.link_tick(link),
            Ev::Close(link) => self.close_link(link, "protocol"),
        }
    }

    pub(crate) fn emit(&mut self, kind: EventKind) {
        self.events.push(Event { t: self.now, kind });
    }

    fn drain_into(&mut self, collector: &mut Collector<'_>) -> Result<(), SimError> {
        for event in self.events.drain(..) {
            collector.record(event).map_err(SimError::Trace)?;
        }
        Ok(())
    }

    /// Starts a peer's next incarnation over its kept machine (its store).
    fn boot(&mut self, peer: PeerIdx) {
        let backoff = Backoff {
            base_ms: self.timers.backoff_base_ms,
            max_ms: self.timers.backoff_max_ms,
        };
        let seed = self.plan.seed;
        let state = &mut self.peers[peer as usize];
        let incarnation = state.incarnations;
        state.incarnations += 1;
        let rng = workload::dial_rng(seed, peer, incarnation);
        state.running = Some(Running::new(incarnation, backoff, rng));
        let mut outputs = Vec::new();
        state.machine.start(self.now, &mut outputs);
        for output in outputs {
            self.apply(peer, output);
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

    /// Writes scheduled while the peer was down are skipped: a stopped app writes nothing
    /// (a machine that holds the app's writes reports them itself).
    fn skip_missed(&mut self, peer: PeerIdx) {
        let plan = self.plan;
        let mut skipped = Vec::new();
        let state = &mut self.peers[peer as usize];
        while let Some(&index) = state.schedule.get(state.next)
            && plan.publishes[index].t_ms < self.now
        {
            let missed = &plan.publishes[index];
            skipped.push(format!(
                "{} was down at {} ms; skipped publishing on {}",
                plan.peer_name(peer),
                missed.t_ms,
                missed.feed
            ));
            state.next += 1;
        }
        if R::NAMES_ITEMS {
            return;
        }
        for text in skipped {
            self.emit(EventKind::Note { text, error: false });
        }
    }

    fn schedule_publish(&mut self, peer: PeerIdx) {
        let state = &self.peers[peer as usize];
        let (Some(&index), Some(incarnation)) =
            (state.schedule.get(state.next), state.incarnation())
        else {
            return;
        };
        let t_ms = self.plan.publishes[index].t_ms.max(self.now);
        self.queue.push(t_ms, Ev::Publish { peer, incarnation });
    }

    /// The peer's next scheduled write, appended to its own feed.
    fn publish(&mut self, peer: PeerIdx) {
        let plan = self.plan;
        let state = &mut self.peers[peer as usize];
        let Some(&index) = state.schedule.get(state.next) else {
            return;
        };
        state.next += 1;
        if R::NAMES_ITEMS {
            // The machine holds the app's writes: the item says which one is due.
            let publish = &plan.publishes[index];
            let id = ItemId {
                feed: Feed(peer),
                seq: u32::try_from(state.next).unwrap_or(u32::MAX),
            };
            let bytes = u32::try_from(publish.bytes).unwrap_or(u32::MAX);
            self.feed(peer, Input::Publish(Item::post(id, bytes)));
            self.schedule_publish(peer);
            return;
        }
        let written = self.items.write(plan, &plan.publishes[index]);
        self.peers[peer as usize].held.insert(written.item.id);
        self.emit(EventKind::Publish {
            peer,
            msg: written.name.msg.clone(),
            tangle: written.name.tangle.clone(),
            feed: written.feed,
            bytes: written.name.bytes,
            supersedes: written.supersedes,
        });
        self.feed(peer, Input::Publish(written.item));
        self.schedule_publish(peer);
    }

    /// Stops a peer (crash or churn): its store stays. The incarnation ends first, as a
    /// process's does: the machine's memory, the dial schedule and the wake-ups go with it,
    /// so a dialer whose link had lasted does not redial from a dead process. Then its links
    /// close; only the other ends are told.
    fn stop(&mut self, peer: PeerIdx, reason: &str) {
        let state = &mut self.peers[peer as usize];
        let Some(running) = state.running.take() else {
            return;
        };
        state.machine.stop();
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
                    if std::mem::replace(&mut self.peers[peer as usize].crashed, true) {
                        continue;
                    }
                    self.emit(EventKind::Crash { peer });
                    self.stop(peer, "crash");
                }
            }
            FaultAction::Restart => {
                for &peer in &step.peers {
                    if !std::mem::replace(&mut self.peers[peer as usize].crashed, false) {
                        continue;
                    }
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
            if !std::mem::replace(&mut state.offline, false) {
                return;
            }
            self.emit(EventKind::Online { peer });
            if self.peers[peer as usize].up() {
                self.boot(peer);
            }
        } else {
            if std::mem::replace(&mut state.offline, true) {
                return;
            }
            self.emit(EventKind::Offline { peer });
            self.stop(peer, "offline");
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
        for Action::Dial(target) in actions {
            self.dial(peer, target);
        }
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

    fn machine_wake(&mut self, peer: PeerIdx, incarnation: u64) {
        let now = self.now;
        let Some(running) = self.peers[peer as usize].running.as_mut() else {
            return;
        };
        if running.incarnation != incarnation || running.machine_wake != Some(now) {
            return;
        }
        running.machine_wake = None;
        self.feed(peer, Input::Tick);
    }

    /// Keeps one queue entry armed per deadline of the peer's machine and dial schedule.
    pub(crate) fn arm(&mut self, peer: PeerIdx) {
        let now = self.now;
        let state = &mut self.peers[peer as usize];
        let deadline = state.machine.deadline();
        let Some(running) = state.running.as_mut() else {
            return;
        };
        let incarnation = running.incarnation;
        if let Some(deadline) = deadline {
            let at = deadline.max(now);
            if running.machine_wake != Some(at) {
                running.machine_wake = Some(at);
                self.queue.push(at, Ev::MachineWake { peer, incarnation });
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
