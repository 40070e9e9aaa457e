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
//! Not yet on this substrate: crashes, restarts and churn (a crash must drop exactly one
//! host's tasks, and all hosts share one runtime): a plan with them is refused.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sim::error::SimError;
use sim::metrics::Collector;
use sim::plan::FaultStep;
use sim::progress::Progress;
use sim::scenario::FaultAction;
use sim::trace::EventKind;
use tokio::time::Instant;
use turmoil_net::{EnterGuard, Net};

use super::Run;
use super::fabric::Fabric;
use super::fabric_net::{Activity, FabricNet, Names};
use super::host::{self, HostContext};

thread_local! {
    /// When the running fabric simulation started (simulated clock), for [`elapsed_ms`].
    static START: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Simulated milliseconds since the fabric run on this thread started (`None` outside one).
pub(super) fn elapsed_ms() -> Option<u64> {
    let start = START.with(Cell::get)?;
    Some(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX))
}

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
        self,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<(), SimError> {
        if let Some(what) = self.unsupported_on_fabric() {
            return Err(SimError::Unsupported {
                what: format!("{what} on the fabric substrate"),
            });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .map_err(|error| SimError::Unsupported {
                what: format!("a tokio runtime: {error}"),
            })?;
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
        START.with(|start| start.set(None));
        driven?;
        self.snapshots(collector)
    }

    /// What this substrate cannot run yet, if the plan has it.
    fn unsupported_on_fabric(&self) -> Option<&'static str> {
        if !self.plan.churn.is_empty() {
            return Some("churn");
        }
        let peer_faults = self
            .plan
            .faults
            .iter()
            .any(|step| matches!(step.action, FaultAction::Crash | FaultAction::Restart));
        peer_faults.then_some("crash and restart")
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
        &self,
        guard: &EnterGuard,
        fabric: &mut Fabric,
        (hosts, names): (&[turmoil_net::HostId], &Names),
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<(), SimError> {
        let start = Instant::now();
        START.with(|cell| cell.set(Some(start)));
        let activity = Arc::new(Activity::default());
        for ((setup, memory), &id) in self.setups.iter().zip(&self.memories).zip(hosts) {
            let context = HostContext {
                setup: Arc::clone(setup),
                memory: memory.clone(),
                recorder: Arc::clone(&self.recorder),
            };
            let net = FabricNet::new(id, &setup.name, Arc::clone(&activity), Arc::clone(names));
            tokio::task::spawn_local(host::run_on(context, Arc::new(net)));
        }
        let plan = self.plan;
        let tick = plan.tick_ms.max(1);
        let window = Fabric::retransmit_window_ms(plan);
        let mut faults = plan.faults.iter().enumerate().peekable();
        let mut reported = 0_u64;
        loop {
            let now = elapsed_ms().unwrap_or(0);
            while let Some((index, step)) = faults.next_if(|(_, step)| step.t_ms <= now) {
                self.fabric_fault(fabric, now, index, step, window);
            }
            fabric.pass(guard, now, window);
            self.drain_into(collector)?;
            if now >= reported + 1_000 {
                progress.set(now.min(plan.duration_ms));
                reported = now;
            }
            if now >= plan.duration_ms {
                break;
            }
            let next_fault = faults.peek().map(|(_, step)| step.t_ms);
            let until = [fabric.next_due_ms(), next_fault, Some(plan.duration_ms)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(plan.duration_ms)
                .max(now + tick);
            let next = if fabric.pressing(now) {
                now + tick
            } else {
                wait(&activity, start, until, tick).await
            };
            tokio::time::sleep_until(start + Duration::from_millis(next)).await;
        }
        let stats = fabric.stats();
        self.recorder.note(
            plan.duration_ms,
            format!(
                "fabric: {} passes, {} packets delivered, {} lost",
                stats.passes, stats.delivered, stats.dropped
            ),
            false,
        );
        self.record_final_sizes(collector)
    }

    fn fabric_fault(
        &self,
        fabric: &mut Fabric,
        t: u64,
        index: usize,
        step: &FaultStep,
        window: u64,
    ) {
        self.recorder.push(
            t,
            EventKind::Fault {
                step: u32::try_from(index).unwrap_or(u32::MAX),
                action: step.action.to_string(),
            },
        );
        fabric.links_mut().apply(step);
        if step.action == FaultAction::Release {
            fabric.release(t, window);
        }
    }
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
