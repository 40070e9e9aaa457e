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

mod clock;
mod fabric;
pub mod fabric_listen;
pub mod fabric_net;
mod fabric_run;
mod host;
pub mod interner;
mod kill;
mod links;
pub mod net;
mod network;
mod record;
mod setup;
pub mod store;
mod streams;
mod streams_net;
mod streams_run;
mod tunnels;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proto::db::Db;
use proto::ingest::Snapshot;
use proto::store::Store;

use network::Network;
use sim::check::Holdings;
use sim::error::SimError;
use sim::metrics::Collector;
use sim::pipeline::Engine;
use sim::plan::{FaultStep, PeerIdx, Plan};
use sim::progress::Progress;
use sim::scenario::FaultAction;
use sim::trace::EventKind;

pub use host::{HostContext, PeerSetup, SharedMemory};
pub use kill::KillSlot;
pub use record::{Directory, Recorder, STORE_SIZE_SAMPLE_MS, now_ms};
pub use setup::{CONNECTIONS_MAX, PORT, keypair, sim_timers};
pub use sim::workload::{Scheduled, Write};

/// Simulated-time epoch (turmoil's `since_epoch`): fixed, so nothing depends on when a run
/// happens. 2024-01-01T00:00:00Z.
pub const EPOCH_SECS: u64 = 1_704_067_200;

/// Deliberate breakage, for tests that prove the checkers catch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    /// This peer's store forgets everything whenever the peer crashes (a disk that does
    /// not keep acknowledged writes): the "no acknowledged msg lost" check must fail.
    AmnesiacStore(PeerIdx),
}

/// The simulated network the real peers run on: [`Substrate::Fabric`] (the default:
/// turmoil-net's socket stack moved by our event-driven loop, fabric_run.rs; TCP with
/// retransmission), [`Substrate::Streams`] (reliable byte streams timed by the same links,
/// streams.rs) or [`Substrate::Turmoil`] (turmoil 0.7: a tick-stepped world, every link
/// visited every tick; this file and net.rs).
pub use sim::scenario::Substrate;

/// The full-stack engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fullstack {
    sabotage: Option<Sabotage>,
    substrate: Substrate,
}

impl Fullstack {
    /// The engine as `ppppp-sim run` uses it by default: on the fabric.
    #[must_use]
    pub const fn new() -> Fullstack {
        Fullstack::on(Substrate::Fabric)
    }

    /// The engine on the given substrate.
    #[must_use]
    pub const fn on(substrate: Substrate) -> Fullstack {
        Fullstack {
            sabotage: None,
            substrate,
        }
    }

    /// This engine on another substrate.
    #[must_use]
    pub const fn with_substrate(self, substrate: Substrate) -> Fullstack {
        Fullstack { substrate, ..self }
    }

    /// An engine (on the fabric) that breaks something on purpose (tests only).
    #[must_use]
    pub const fn with_sabotage(sabotage: Sabotage) -> Fullstack {
        Fullstack {
            sabotage: Some(sabotage),
            substrate: Substrate::Fabric,
        }
    }
}

impl Engine for Fullstack {
    fn name(&self) -> &'static str {
        "fullstack"
    }

    fn substrate(&self) -> Option<&'static str> {
        Some(self.substrate.name())
    }

    fn run(
        &self,
        plan: &Plan,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<(), SimError> {
        let limited = plan.network.bandwidth_bytes_per_s.is_some()
            || plan
                .network
                .links
                .iter()
                .any(|link| link.bandwidth_bytes_per_s.is_some());
        if limited && self.substrate != Substrate::Fabric {
            return Err(SimError::Unsupported {
                what: format!(
                    "`bandwidth` on the {} substrate (it models no bandwidth); use the fabric \
                     substrate (the default) or the protocol engine",
                    self.substrate.name()
                ),
            });
        }
        let run = Run::new(plan, self.sabotage, self.substrate);
        match self.substrate {
            Substrate::Turmoil => run.execute(collector, progress),
            Substrate::Fabric => run.execute_fabric(collector, progress),
            Substrate::Streams => run.execute_streams(collector, progress),
        }
    }
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
    fn new(plan: &'p Plan, sabotage: Option<Sabotage>, substrate: Substrate) -> Run<'p> {
        let (setups, directory) = setup::peers(plan, substrate);
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
        let (mut sim, network) = self.world();
        let mut churn = plan.churn.iter().peekable();
        let mut faults = plan.faults.iter().enumerate().peekable();
        let mut t = 0_u64;
        let mut last_progress = 0_u64;
        while t < plan.duration_ms {
            while let Some((index, step)) = faults.next_if(|(_, step)| step.t_ms <= t) {
                self.fault(&mut sim, &network, t, index, step);
            }
            while let Some(step) = churn.next_if(|step| step.t_ms <= t) {
                self.churn(&mut TurmoilHosts(&mut sim), t, step.peer, step.online);
            }
            self.drain_into(collector)?;
            sim.step().map_err(|error| SimError::Turmoil {
                at_ms: t,
                message: error.to_string(),
            })?;
            t += tick_ms;
            self.drain_into(collector)?;
            if t >= last_progress + 1_000 {
                progress.set(t.min(plan.duration_ms));
                last_progress = t;
            }
        }
        self.finish(sim, collector)
    }

    /// The turmoil simulation with one host per peer, and its network as the plan
    /// configures it.
    fn world(&self) -> (turmoil::Sim<'p>, Network) {
        let plan = self.plan;
        let tick_ms = plan.tick_ms.max(1);
        let latency = plan.network.latency;
        let mut sim = turmoil::Builder::new()
            .epoch(SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
            // Hosts only (no clients): the loop in `execute` decides when the run ends.
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
                killer: KillSlot::default(),
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
        (sim, network)
    }

    fn drain_into(&self, collector: &mut Collector<'_>) -> Result<(), SimError> {
        for event in self.recorder.drain() {
            collector.record(event).map_err(SimError::Trace)?;
        }
        Ok(())
    }

    /// Every peer's final store size, then (with every host stopped) its holdings.
    fn finish(&self, sim: turmoil::Sim<'p>, collector: &mut Collector<'_>) -> Result<(), SimError> {
        self.record_final_sizes(collector)?;
        // Stop every host before reading the stores: the nodes' tasks are dropped with the
        // simulation (no shutdown handshakes, nothing recorded after the end).
        drop(sim);
        self.snapshots(collector)
    }

    /// Every peer's store size at the end of the run.
    fn record_final_sizes(&self, collector: &mut Collector<'_>) -> Result<(), SimError> {
        let end = self.plan.duration_ms;
        for setup in &self.setups {
            self.recorder
                .final_store_size(end, setup.index, setup.store.stats().bytes);
        }
        self.drain_into(collector)
    }

    /// Every peer's holdings, read from its store directly (every host must be stopped).
    fn snapshots(&self, collector: &mut Collector<'_>) -> Result<(), SimError> {
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

    fn stop_host(&self, hosts: &mut dyn HostControl, t: u64, peer: PeerIdx, reason: &str) {
        hosts.stop(&self.setups[peer as usize]);
        self.recorder.peer_down(t, peer, reason);
        if self.sabotage == Some(Sabotage::AmnesiacStore(peer)) && reason == "crash" {
            self.setups[peer as usize].store.amnesiac();
        }
    }

    fn churn(&mut self, hosts: &mut dyn HostControl, t: u64, peer: PeerIdx, online: bool) {
        let index = peer as usize;
        if online {
            if !self.offline[index] {
                return;
            }
            self.offline[index] = false;
            self.recorder.push(t, EventKind::Online { peer });
            if self.running(peer) {
                hosts.start(&self.setups[index]);
            }
        } else {
            if self.offline[index] {
                return;
            }
            let was_running = self.running(peer);
            self.offline[index] = true;
            self.recorder.push(t, EventKind::Offline { peer });
            if was_running {
                self.stop_host(hosts, t, peer, "offline");
            }
        }
    }

    fn fault(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        network: &Network,
        t: u64,
        index: usize,
        step: &FaultStep,
    ) {
        self.record_fault(t, index, step);
        if !network.apply(sim, step) {
            self.fault_on_peers(&mut TurmoilHosts(sim), t, step);
        }
    }

    fn record_fault(&self, t: u64, index: usize, step: &FaultStep) {
        self.recorder.push(
            t,
            EventKind::Fault {
                step: u32::try_from(index).unwrap_or(u32::MAX),
                action: step.action.to_string(),
            },
        );
    }

    /// A crash or restart of the step's peers.
    fn fault_on_peers(&mut self, hosts: &mut dyn HostControl, t: u64, step: &FaultStep) {
        match step.action {
            FaultAction::Crash => {
                for &peer in &step.peers {
                    if self.crashed[peer as usize] {
                        continue;
                    }
                    let was_running = self.running(peer);
                    self.crashed[peer as usize] = true;
                    self.recorder.push(t, EventKind::Crash { peer });
                    if was_running {
                        self.stop_host(hosts, t, peer, "crash");
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
                        hosts.start(&self.setups[peer as usize]);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Stopping (a crash: tasks dropped, store kept) and starting a peer's host, on either
/// substrate.
trait HostControl {
    fn stop(&mut self, setup: &PeerSetup);
    fn start(&mut self, setup: &PeerSetup);
}

/// turmoil's `crash` and `bounce`.
struct TurmoilHosts<'s, 'p>(&'s mut turmoil::Sim<'p>);

impl HostControl for TurmoilHosts<'_, '_> {
    fn stop(&mut self, setup: &PeerSetup) {
        // The node's sockets are closed after its tasks are gone, in the order they were
        // opened, not in tokio's task-ID order (net.rs).
        setup.sockets.crashing(true);
        self.0.crash(setup.name.as_str());
        setup.sockets.crashing(false);
        debug_assert_eq!(
            setup.sockets.parked(),
            0,
            "every parked socket is closed in the crash"
        );
    }

    fn start(&mut self, setup: &PeerSetup) {
        self.0.bounce(setup.name.as_str());
    }
}
