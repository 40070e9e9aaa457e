//! The turmoil runner: real peers (`node::peer::run`, ractor actors, SHSE, muxrpc, sync) on
//! turmoil's simulated network, driven by a [`Plan`].
//!
//! ```text
//! Plan ──setup──▶ one turmoil host per peer (host.rs: node + its part of the schedule)
//!   │                        │ NodeEvents (sink, simulated time)
//!   └─ faults, churn ──▶ step loop ──▶ Recorder (record.rs) ──per step, sorted──▶ Collector
//! ```
//!
//! The loop steps turmoil one tick at a time and applies fault and churn steps at the first
//! tick boundary at or after their planned time (exact when times are multiples of the
//! tick). Crashes and churn use turmoil's `crash`/`bounce`: the host's tasks are dropped
//! (no `post_stop`), its [`SharedStore`] survives, and the restarted host starts a new node
//! incarnation over it. After the last step every peer's store is read directly (no actor
//! call) for the final snapshots.
//!
//! Determinism: turmoil gets a fixed epoch and `rng_seed(plan seed)`, with random host order
//! (seeded); nodes get `(seed, peer, incarnation)` ChaCha streams and keys from the plan
//! seed; nothing recorded reads the wall clock, and every map iterated is a `BTreeMap`.

mod host;
pub mod net;
mod record;
pub mod store;

use crate::error::SimError;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use node::peer::{DialTarget, Limits, NodeConfig, Timers, Transport as NodeTransport};
use node::transport::caps::NetworkKey;
use proto::db::Db;
use proto::goals::Goal as ProtoGoal;
use proto::ids::{AccountId, TangleId};
use proto::ingest::Snapshot;
use proto::keys::Keypair;
use proto::store::Store;

use crate::check::Holdings;
use crate::goal::{FeedKind, Goal};
use crate::metrics::Collector;
use crate::pipeline::Engine;
use crate::plan::{Content, FaultStep, PeerIdx, Plan};
use crate::progress::Progress;
use crate::scenario::{FaultAction, LatencyModel, Transport};
use crate::trace::EventKind;
use net::HostSockets;
use store::SharedStore;

pub use host::{HostContext, PeerSetup, Scheduled, SharedMemory, Write};
pub use record::{Directory, Recorder, STORE_SIZE_SAMPLE_MS, now_ms};

/// The TCP port every simulated peer listens on.
pub const PORT: u16 = 9000;

/// Simulated-time epoch (turmoil's `since_epoch`): fixed, so nothing depends on when a run
/// happens. 2024-01-01T00:00:00Z.
pub const EPOCH_SECS: u64 = 1_704_067_200;

/// Most connections a simulated node holds. Above the default: with `dial_follows`, a
/// popular account is dialed by most of its followers.
pub const CONNECTIONS_MAX: usize = 256;

/// Node timers under simulation. turmoil's TCP never retransmits, so a segment lost to a
/// partition stalls its stream for good: keepalives every second and a 3 s idle timeout
/// notice it, and redials back off to at most 10 s so a healed network reconnects well
/// within the scenarios' convergence bounds.
#[must_use]
pub fn sim_timers() -> Timers {
    Timers {
        connect_timeout: Duration::from_secs(2),
        handshake_timeout: Duration::from_secs(5),
        keepalive_interval: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(3),
        backoff_base: Duration::from_millis(500),
        backoff_max: Duration::from_secs(10),
        gc_interval: Duration::from_secs(60),
    }
}

/// Deliberate breakage, for tests that prove the checkers catch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    /// This peer's store forgets everything whenever the peer crashes (a disk that does
    /// not keep acknowledged writes): the "no acknowledged msg lost" check must fail.
    AmnesiacStore(PeerIdx),
}

/// The turmoil engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct Turmoil {
    sabotage: Option<Sabotage>,
}

impl Turmoil {
    /// The engine as `ppppp-sim run` uses it.
    #[must_use]
    pub const fn new() -> Turmoil {
        Turmoil { sabotage: None }
    }

    /// An engine that breaks something on purpose (tests only).
    #[must_use]
    pub const fn with_sabotage(sabotage: Sabotage) -> Turmoil {
        Turmoil {
            sabotage: Some(sabotage),
        }
    }
}

impl Engine for Turmoil {
    fn synthetic(&self) -> bool {
        false
    }

    fn run(
        &self,
        plan: &Plan,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<(), SimError> {
        Run::new(plan, self.sabotage).execute(collector, progress)
    }
}

/// The keypair of peer `peer` in runs with `seed`: the same in every incarnation.
#[must_use]
pub fn keypair(seed: u64, peer: PeerIdx) -> Keypair {
    let mut stream = crate::rng::stream(seed, "keys", u64::from(peer));
    let mut bytes = [0_u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&stream.next_u64().to_le_bytes());
    }
    Keypair::from_seed(&bytes)
}

fn proto_goal(goal: Goal) -> ProtoGoal {
    match goal {
        Goal::All => ProtoGoal::All,
        Goal::Newest(count) => ProtoGoal::Newest(u64::from(count)),
        Goal::Set => ProtoGoal::Set,
        Goal::Dict => ProtoGoal::Dict,
        Goal::None => ProtoGoal::None,
    }
}

fn domain(feed: &str, kind: FeedKind) -> String {
    match kind {
        FeedKind::Feed => feed.to_owned(),
        FeedKind::Set => proto::set::domain(feed),
        FeedKind::Dict => proto::dict::domain(feed),
    }
}

/// Post text of about `bytes` bytes (the plan's data size), unique per author and depth.
fn post_text(author: &str, seq: u32, bytes: u64) -> String {
    let mut text = format!("{author} post {seq} ");
    let target = usize::try_from(bytes).unwrap_or(usize::MAX);
    while text.len() < target {
        text.push_str("lorem ipsum ");
    }
    text.truncate(target.max(1));
    text
}

/// One run: the plan, per-peer setups and the turmoil world.
struct Run<'p> {
    plan: &'p Plan,
    sabotage: Option<Sabotage>,
    setups: Vec<Arc<PeerSetup>>,
    memories: Vec<SharedMemory>,
    recorder: Arc<Recorder>,
    /// Peers crashed by a fault.
    crashed: Vec<bool>,
    /// Peers offline by churn.
    offline: Vec<bool>,
}

impl<'p> Run<'p> {
    fn new(plan: &'p Plan, sabotage: Option<Sabotage>) -> Run<'p> {
        let keypairs: Vec<Keypair> = plan
            .peers
            .iter()
            .map(|peer| keypair(plan.seed, peer.index))
            .collect();
        let transport = match plan.transport {
            Transport::Shse => NodeTransport::Shse(NetworkKey::PZP),
            Transport::Plaintext => NodeTransport::Plaintext,
        };
        let base_configs: Vec<NodeConfig> = plan
            .peers
            .iter()
            .zip(&keypairs)
            .map(|(peer, keypair)| {
                let mut config = NodeConfig::new(keypair.clone(), plan.seed);
                config.peer = u64::from(peer.index);
                config.listen = Some(format!("0.0.0.0:{PORT}"));
                config.transport = transport;
                config.timers = sim_timers();
                config.limits = Limits {
                    connections_max: CONNECTIONS_MAX,
                    ..Limits::default()
                };
                config
            })
            .collect();
        let accounts: Vec<AccountId> = base_configs
            .iter()
            .map(node::peer::fresh_account_id)
            .collect();

        let mut directory = Directory::default();
        for (peer, keypair) in plan.peers.iter().zip(&keypairs) {
            directory.keys.insert(keypair.public(), peer.index);
            directory.names.insert(peer.name.clone(), peer.index);
            for (feed, kind) in &plan.feeds {
                let tangle =
                    proto::msg::feed_id(&accounts[peer.index as usize], &domain(feed, *kind));
                directory.feeds.insert(tangle, (peer.index, feed.clone()));
            }
        }

        let mut schedules: Vec<Vec<Scheduled>> = vec![Vec::new(); plan.peers.len()];
        for publish in &plan.publishes {
            let account = &accounts[publish.peer as usize];
            let domain = domain(&publish.feed, publish.kind);
            let write = match &publish.content {
                Content::Post { bytes } => Write::Post {
                    text: post_text(plan.peer_name(publish.peer), publish.seq, *bytes),
                },
                Content::Dict { update } => Write::Dict {
                    feed: publish.feed.clone(),
                    update: update.clone(),
                },
                Content::Set { add, item } => Write::Set {
                    feed: publish.feed.clone(),
                    add: *add,
                    item: item.clone(),
                },
                Content::Follow { followee } => Write::Set {
                    feed: publish.feed.clone(),
                    add: true,
                    item: accounts[*followee as usize].to_string(),
                },
            };
            schedules[publish.peer as usize].push(Scheduled {
                t_ms: publish.t_ms,
                tangle: proto::msg::feed_id(account, &domain),
                domain,
                write,
            });
        }

        let setups = plan
            .peers
            .iter()
            .zip(base_configs)
            .zip(schedules)
            .map(|((peer, mut config), schedule)| {
                let account = accounts[peer.index as usize];
                // The peer's own account tangle, and each followed account's (their key
                // msgs validate the feeds), then what the plan's rules ask for.
                let mut goals: Vec<(TangleId, ProtoGoal)> = vec![(account, ProtoGoal::All)];
                for followee in &peer.follows {
                    goals.push((accounts[*followee as usize], ProtoGoal::All));
                }
                for goal in &peer.goals {
                    let owner = &accounts[goal.account as usize];
                    let tangle = proto::msg::feed_id(owner, &goal.rule.domain());
                    goals.push((tangle, proto_goal(goal.rule.goal)));
                }
                config.goals = goals;
                config.dial = plan
                    .edges
                    .iter()
                    .filter(|edge| edge.dialer == peer.index)
                    .map(|edge| DialTarget {
                        address: format!("{}:{PORT}", plan.peer_name(edge.acceptor)),
                        key: Some(keypairs[edge.acceptor as usize].public()),
                    })
                    .collect();
                Arc::new(PeerSetup {
                    index: peer.index,
                    name: peer.name.clone(),
                    config,
                    account,
                    store: SharedStore::new(),
                    sockets: HostSockets::new(),
                    schedule,
                })
            })
            .collect();
        let peers = plan.peers.len();
        Run {
            plan,
            sabotage,
            setups,
            // One memory per peer (not clones of one: each peer remembers its own writes).
            memories: (0..peers).map(|_| SharedMemory::default()).collect(),
            recorder: Arc::new(Recorder::new(directory)),
            crashed: vec![false; peers],
            offline: vec![false; peers],
        }
    }

    fn execute(
        mut self,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<(), SimError> {
        let plan = self.plan;
        let tick_ms = plan.tick_ms.max(1);
        let latency = plan.network.latency;
        let mut sim = turmoil::Builder::new()
            .epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
            // Hosts only (no clients): the loop below decides when the run ends.
            .simulation_duration(Duration::from_millis(plan.duration_ms + tick_ms))
            .tick_duration(Duration::from_millis(tick_ms))
            .min_message_latency(Duration::from_millis(latency.min_ms))
            .max_message_latency(Duration::from_millis(latency.max_ms))
            .fail_rate(plan.network.fail_rate)
            .repair_rate(plan.network.repair_rate)
            .enable_random_order()
            .rng_seed(plan.seed)
            .build();
        sim.set_message_latency_curve(latency.curve);
        for (setup, memory) in self.setups.iter().zip(&self.memories) {
            let context = HostContext {
                setup: Arc::clone(setup),
                memory: memory.clone(),
                recorder: Arc::clone(&self.recorder),
            };
            sim.host(setup.name.as_str(), move || host::run(context.clone()));
        }
        let addresses: Vec<IpAddr> = plan
            .peers
            .iter()
            .map(|p| sim.lookup(p.name.as_str()))
            .collect();
        let mut network = Network {
            addresses,
            latency,
            fail_rate: plan.network.fail_rate,
            links: BTreeMap::new(),
            link_fail: BTreeMap::new(),
        };
        network.configure(&mut sim, plan);

        let mut churn = plan.churn.iter().peekable();
        let mut faults = plan.faults.iter().enumerate().peekable();
        let mut t = 0_u64;
        let mut last_progress = 0_u64;
        while t < plan.duration_ms {
            while let Some((index, step)) = faults.next_if(|(_, step)| step.t_ms <= t) {
                self.fault(&mut sim, &mut network, t, index, step);
            }
            while let Some(step) = churn.next_if(|step| step.t_ms <= t) {
                self.churn(&mut sim, t, step.peer, step.online);
            }
            for event in self.recorder.drain() {
                collector.record(event).map_err(SimError::Trace)?;
            }
            sim.step().map_err(|error| SimError::Turmoil {
                at_ms: t,
                message: error.to_string(),
            })?;
            t += tick_ms;
            for event in self.recorder.drain() {
                collector.record(event).map_err(SimError::Trace)?;
            }
            if t >= last_progress + 1_000 {
                progress.set(t.min(plan.duration_ms));
                last_progress = t;
            }
        }
        let end = plan.duration_ms;
        for setup in &self.setups {
            self.recorder
                .final_store_size(end, setup.index, setup.store.stats().bytes);
        }
        for event in self.recorder.drain() {
            collector.record(event).map_err(SimError::Trace)?;
        }
        // Stop every host before reading the stores: the nodes' tasks are dropped with the
        // simulation (no shutdown handshakes, nothing recorded after the end).
        drop(sim);
        for setup in &self.setups {
            let mut db = Db::new(setup.store.clone());
            let snapshot = Snapshot::of(&mut db).map_err(|error| SimError::Store {
                peer: setup.name.clone(),
                message: error.to_string(),
            })?;
            collector.snapshot(setup.index, Holdings::from(&snapshot));
        }
        Ok(())
    }

    fn running(&self, peer: PeerIdx) -> bool {
        !self.crashed[peer as usize] && !self.offline[peer as usize]
    }

    fn stop_host(&self, sim: &mut turmoil::Sim<'_>, t: u64, peer: PeerIdx, reason: &str) {
        // The node's sockets are closed after its tasks are gone, in the order they were
        // opened, not in tokio's task-ID order (net.rs).
        let sockets = &self.setups[peer as usize].sockets;
        sockets.crashing(true);
        sim.crash(self.plan.peer_name(peer));
        sockets.crashing(false);
        debug_assert_eq!(
            sockets.parked(),
            0,
            "every parked socket is closed in the crash"
        );
        self.recorder.peer_down(t, peer, reason);
        if self.sabotage == Some(Sabotage::AmnesiacStore(peer)) && reason == "crash" {
            self.setups[peer as usize].store.amnesiac();
        }
    }

    fn churn(&mut self, sim: &mut turmoil::Sim<'_>, t: u64, peer: PeerIdx, online: bool) {
        let index = peer as usize;
        if online {
            if !self.offline[index] {
                return;
            }
            self.offline[index] = false;
            self.recorder.push(t, EventKind::Online { peer });
            if self.running(peer) {
                sim.bounce(self.plan.peer_name(peer));
            }
        } else {
            if self.offline[index] {
                return;
            }
            let was_running = self.running(peer);
            self.offline[index] = true;
            self.recorder.push(t, EventKind::Offline { peer });
            if was_running {
                self.stop_host(sim, t, peer, "offline");
            }
        }
    }

    fn fault(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        network: &mut Network,
        t: u64,
        index: usize,
        step: &FaultStep,
    ) {
        self.recorder.push(
            t,
            EventKind::Fault {
                step: u32::try_from(index).unwrap_or(u32::MAX),
                action: step.action.to_string(),
            },
        );
        let pairs = network.pairs(step);
        match step.action {
            FaultAction::Partition => {
                for (a, b) in pairs {
                    sim.partition(a, b);
                }
            }
            FaultAction::OneWay => {
                for (a, b) in pairs {
                    sim.partition_oneway(a, b);
                }
            }
            FaultAction::Heal => {
                for (a, b) in pairs {
                    sim.repair(a, b);
                }
            }
            FaultAction::Hold => {
                for (a, b) in pairs {
                    sim.hold(a, b);
                }
            }
            FaultAction::Release => {
                for (a, b) in pairs {
                    sim.release(a, b);
                }
            }
            FaultAction::Crash => {
                for &peer in &step.peers {
                    if self.crashed[peer as usize] {
                        continue;
                    }
                    let was_running = self.running(peer);
                    self.crashed[peer as usize] = true;
                    self.recorder.push(t, EventKind::Crash { peer });
                    if was_running {
                        self.stop_host(sim, t, peer, "crash");
                    } else if self.sabotage == Some(Sabotage::AmnesiacStore(peer)) {
                        self.setups[peer as usize].store.amnesiac();
                    }
                }
            }
            FaultAction::Restart => {
                for &peer in &step.peers {
                    if !self.crashed[peer as usize] {
                        continue;
                    }
                    self.crashed[peer as usize] = false;
                    self.recorder.push(t, EventKind::Restart { peer });
                    if self.running(peer) {
                        sim.bounce(self.plan.peer_name(peer));
                    }
                }
            }
            FaultAction::Latency => {
                let all = step.a.is_empty();
                for (a, b) in pairs {
                    let model = step
                        .latency
                        .unwrap_or_else(|| network.configured_latency(a, b));
                    Network::set_latency(sim, a, b, model);
                }
                if all {
                    let model = step.latency.unwrap_or(network.latency);
                    sim.set_message_latency_curve(model.curve);
                }
            }
            FaultAction::Loss => {
                for (a, b) in pairs {
                    let rate = step
                        .fail_rate
                        .unwrap_or_else(|| network.configured_fail(a, b));
                    sim.set_link_fail_rate(a, b, rate);
                }
            }
        }
    }
}

/// The turmoil network as configured, so faults can restore it.
struct Network {
    addresses: Vec<IpAddr>,
    latency: LatencyModel,
    fail_rate: f64,
    /// Link → configured latency (from `[[network.link]]`), by ordered address pair.
    links: BTreeMap<(IpAddr, IpAddr), LatencyModel>,
    /// Link → configured fail rate.
    link_fail: BTreeMap<(IpAddr, IpAddr), f64>,
}

fn ordered(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    (a.min(b), a.max(b))
}

impl Network {
    /// Applies `[[network.link]]` overrides (later ones win).
    fn configure(&mut self, sim: &mut turmoil::Sim<'_>, plan: &Plan) {
        for link in &plan.network.links {
            for a in &link.a {
                for b in &link.b {
                    if a == b {
                        continue;
                    }
                    let (a, b) = (self.addresses[*a as usize], self.addresses[*b as usize]);
                    if let Some(model) = link.latency {
                        self.links.insert(ordered(a, b), model);
                        Network::set_latency(sim, a, b, model);
                    }
                    if let Some(rate) = link.fail_rate {
                        self.link_fail.insert(ordered(a, b), rate);
                        sim.set_link_fail_rate(a, b, rate);
                    }
                }
            }
        }
    }

    /// turmoil sets a link's minimum only together with its maximum (`set_link_latency`),
    /// so set both to the minimum, then raise the maximum.
    fn set_latency(sim: &turmoil::Sim<'_>, a: IpAddr, b: IpAddr, model: LatencyModel) {
        sim.set_link_latency(a, b, Duration::from_millis(model.min_ms));
        sim.set_link_max_message_latency(a, b, Duration::from_millis(model.max_ms));
    }

    fn configured_latency(&self, a: IpAddr, b: IpAddr) -> LatencyModel {
        self.links
            .get(&ordered(a, b))
            .copied()
            .unwrap_or(self.latency)
    }

    fn configured_fail(&self, a: IpAddr, b: IpAddr) -> f64 {
        self.link_fail
            .get(&ordered(a, b))
            .copied()
            .unwrap_or(self.fail_rate)
    }

    /// The links a fault step touches: `a` × `b`, or every link when `a` is empty.
    fn pairs(&self, step: &FaultStep) -> Vec<(IpAddr, IpAddr)> {
        let mut out = Vec::new();
        if step.a.is_empty() {
            for (i, a) in self.addresses.iter().enumerate() {
                for b in self.addresses.iter().skip(i + 1) {
                    out.push((*a, *b));
                }
            }
            return out;
        }
        for a in &step.a {
            for b in &step.b {
                if a != b {
                    out.push((self.addresses[*a as usize], self.addresses[*b as usize]));
                }
            }
        }
        out
    }
}
