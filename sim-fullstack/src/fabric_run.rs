//! The fabric substrate's run loop: every peer's node on one current-thread tokio runtime
//! with paused time, their sockets on turmoil-net ([`FabricNet`]), packets moved by
//! [`Fabric`].
//!
//! Paused time jumps to the next timer whenever every task is idle, so the loop sleeps until
//! the next thing that can happen — a packet due, a planned fault, a socket touched
//! ([`Activity`]), the end — and makes a fabric pass at that tick. Cost follows events.
//!
//! Determinism: one thread; tasks run in the order they are woken; hosts are added to the
//! fabric in plan order (their addresses follow); every random draw is from the run's
//! `fabric` stream in pass order.
//!
//! Crashes and churn: all hosts share one runtime, so a crash cannot drop a runtime as turmoil
//! does; it kills the node's actors (`NodeKiller`, ractor's `kill`: no `post_stop`) and aborts
//! the host's software, at the fault's tick. The store is kept; a restart starts a new
//! incarnation over it, with the host's listener kept from the first (fabric_listen.rs);
//! while a host is down, the fabric refuses dials to it (fabric.rs).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sim::error::SimError;
use sim::metrics::Collector;
use sim::plan::{FaultStep, PeerIdx};
use sim::progress::Progress;
use sim::scenario::FaultAction;
use tokio::time::Instant;
use turmoil_net::{EnterGuard, Net};

use super::clock::{self, elapsed_ms};
use super::fabric::Fabric;
use super::fabric_listen::KeptListeners;
use super::fabric_net::{Activity, FabricNet, Names};
use super::host::{self, HostContext};
use super::host::{PeerSetup, SharedMemory};
use super::kill::KillSlot;
use super::record::Recorder;
use super::{HostControl, Run};

/// The fabric's network and the hosts' addresses, in plan order.
struct World {
    net: Net,
    hosts: Vec<turmoil_net::HostId>,
    names: Names,
    peers: BTreeMap<IpAddr, sim::plan::PeerIdx>,
}

impl Run<'_> {
    /// Runs the plan on the fabric substrate.
    pub(super) fn execute_fabric(
        mut self,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<(), SimError> {
        let runtime = clock::paused_runtime()?;
        let world = self.fabric_world();
        let guard = world.net.enter();
        let local = tokio::task::LocalSet::new();
        let mut fabric = Fabric::new(self.plan, world.peers);
        let driven = runtime.block_on(local.run_until(self.drive(
            &guard,
            &mut fabric,
            (&world.hosts, &world.names),
            collector,
            progress,
        )));
        // The hosts' tasks close their sockets as they drop: the network must still be there.
        drop(local);
        drop(runtime);
        drop(guard);
        clock::set_start(None);
        driven?;
        self.snapshots(collector)
    }

    fn fabric_world(&self) -> World {
        let mut net = Net::with_config(Fabric::kernel_config(self.plan));
        let hosts: Vec<_> = self
            .plan
            .peers
            .iter()
            .map(|peer| net.add_host(peer.name.as_str()))
            .collect();
        let mut names = BTreeMap::new();
        let mut peers = BTreeMap::new();
        for peer in &self.plan.peers {
            let address = net.lookup(&peer.name);
            names.insert(address, peer.name.clone());
            peers.insert(address, peer.index);
        }
        World {
            net,
            hosts,
            names: Arc::new(names),
            peers,
        }
    }

    /// Starts every host, then makes passes until the end of the plan.
    async fn drive(
        &mut self,
        guard: &EnterGuard,
        fabric: &mut Fabric,
        (ids, names): (&[turmoil_net::HostId], &Names),
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<(), SimError> {
        let start = Instant::now();
        clock::set_start(Some(start));
        let activity = Arc::new(Activity::default());
        let mut hosts = self.fabric_hosts(ids, names, &activity);
        for setup in &self.setups {
            hosts.start(setup);
        }
        let plan = self.plan;
        let tick = plan.tick_ms.max(1);
        let window = Fabric::retransmit_window_ms(plan);
        let mut faults = plan.faults.iter().enumerate().peekable();
        let mut churn = plan.churn.iter().peekable();
        let mut reported = 0_u64;
        loop {
            let now = elapsed_ms().unwrap_or(0);
            while let Some((index, step)) = faults.next_if(|(_, step)| step.t_ms <= now) {
                self.fabric_fault(fabric, &mut hosts, (now, window), index, step);
            }
            while let Some(step) = churn.next_if(|step| step.t_ms <= now) {
                self.churn(&mut hosts, now, step.peer, step.online);
            }
            fabric.pass(guard, (now, window), &|peer| hosts.is_down(peer));
            self.drain_into(collector)?;
            if now >= reported + 1_000 {
                progress.set(now.min(plan.duration_ms));
                reported = now;
            }
            if now >= plan.duration_ms {
                break;
            }
            let planned = [
                faults.peek().map(|(_, step)| step.t_ms),
                churn.peek().map(|step| step.t_ms),
            ];
            let until = next_event(fabric, planned, plan.duration_ms).max(now + tick);
            let next = if fabric.pressing(now) {
                now + tick
            } else {
                wait(&activity, start, until, tick).await
            };
            tokio::time::sleep_until(start + Duration::from_millis(next)).await;
        }
        let stats = fabric.stats();
        let mut broken = String::new();
        if stats.broken > 0 {
            broken.push_str(&format!(", {} connections broken", stats.broken));
        }
        if stats.refused > 0 {
            broken.push_str(&format!(
                ", {} segments refused by down hosts",
                stats.refused
            ));
        }
        self.recorder.note(
            plan.duration_ms,
            format!(
                "fabric: {} passes, {} packets delivered, {} lost{broken}",
                stats.passes, stats.delivered, stats.dropped
            ),
            false,
        );
        self.record_final_sizes(collector)
    }

    fn fabric_hosts(
        &self,
        ids: &[turmoil_net::HostId],
        names: &Names,
        activity: &Arc<Activity>,
    ) -> FabricHosts {
        FabricHosts {
            ids: ids.to_vec(),
            names: Arc::clone(names),
            activity: Arc::clone(activity),
            setups: self.setups.clone(),
            memories: self.memories.clone(),
            recorder: Arc::clone(&self.recorder),
            tasks: self.setups.iter().map(|_| None).collect(),
            killers: self.setups.iter().map(|_| KillSlot::default()).collect(),
            listeners: self
                .setups
                .iter()
                .map(|_| KeptListeners::default())
                .collect(),
        }
    }

    fn fabric_fault(
        &mut self,
        fabric: &mut Fabric,
        hosts: &mut FabricHosts,
        (t, window): (u64, u64),
        index: usize,
        step: &FaultStep,
    ) {
        self.record_fault(t, index, step);
        if !fabric.links_mut().apply(step) {
            self.fault_on_peers(hosts, t, step);
        }
        if step.action == FaultAction::Release {
            fabric.release(t, window);
        }
    }
}

/// The fabric's hosts: what a peer's software needs to start, and each running one's task
/// and killer.
struct FabricHosts {
    ids: Vec<turmoil_net::HostId>,
    names: Names,
    activity: Arc<Activity>,
    setups: Vec<Arc<PeerSetup>>,
    memories: Vec<SharedMemory>,
    recorder: Arc<Recorder>,
    tasks: Vec<Option<tokio::task::JoinHandle<()>>>,
    killers: Vec<KillSlot>,
    /// Each host's listeners, kept across its incarnations.
    listeners: Vec<KeptListeners>,
}

impl FabricHosts {
    /// Whether the peer's software is not running (crashed or offline).
    fn is_down(&self, peer: PeerIdx) -> bool {
        self.tasks
            .get(peer as usize)
            .is_none_or(std::option::Option::is_none)
    }
}

impl HostControl for FabricHosts {
    /// A crash: the node's actors are killed where they stand (their sockets close as they
    /// drop), the host's software (its publish schedule) is aborted, and connections its
    /// kernel accepted for the node are dropped (its listener is kept for the next start).
    fn stop(&mut self, setup: &PeerSetup) {
        let index = setup.index as usize;
        self.killers[index].kill();
        if let Some(task) = self.tasks[index].take() {
            task.abort();
        }
        self.listeners[index].refuse_queued();
    }

    fn start(&mut self, setup: &PeerSetup) {
        let index = setup.index as usize;
        let killer = KillSlot::default();
        let context = HostContext {
            setup: Arc::clone(&self.setups[index]),
            memory: self.memories[index].clone(),
            recorder: Arc::clone(&self.recorder),
            killer: killer.clone(),
        };
        let net = FabricNet::new(
            (self.ids[index], &setup.name),
            Arc::clone(&self.activity),
            Arc::clone(&self.names),
            self.listeners[index].clone(),
        );
        self.killers[index] = killer;
        self.tasks[index] = Some(tokio::task::spawn_local(host::run_on(
            context,
            Arc::new(net),
        )));
    }
}

/// The next time something is due: a packet, a planned step, or the end.
fn next_event(fabric: &Fabric, planned: [Option<u64>; 2], end_ms: u64) -> u64 {
    planned
        .into_iter()
        .chain([fabric.next_due_ms()])
        .flatten()
        .fold(end_ms, u64::min)
}

/// Sleeps until `until` (ms since `start`) or until a host touches its sockets; returns the
/// tick at which to make the next pass.
async fn wait(activity: &Activity, start: Instant, until: u64, tick: u64) -> u64 {
    tokio::select! {
        biased;
        () = activity.touched() => {
            let touched = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            ((touched / tick + 1) * tick).min(until)
        }
        () = tokio::time::sleep_until(start + Duration::from_millis(until)) => until,
    }
}
