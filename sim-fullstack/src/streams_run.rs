//! The streams substrate's run loop: every peer's node on one current-thread tokio runtime
//! with paused time, their connections on the switchboard ([`Board`], streams.rs).
//!
//! Deliveries need no loop: each connection end sleeps until its next chunk is due, and
//! paused time jumps to the next timer whenever every task is idle. The loop only applies
//! planned faults and churn at their times and drains the recorder every
//! [`DRAIN_EVERY_MS`].
//!
//! Determinism: one thread; tasks run in the order they are woken; every random draw is from
//! the run's `streams` stream in the order writes and dials happen.
//!
//! Crashes and churn: as on the fabric, the node's actors are killed (`NodeKiller`) and the
//! host's software aborted at the fault's tick; the switchboard closes every connection end
//! the host had and drops its listeners, so dials to it are refused until a restarted node
//! binds again. The store is kept.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sim::error::SimError;
use sim::metrics::Collector;
use sim::plan::FaultStep;
use sim::progress::Progress;
use sim::scenario::FaultAction;
use tokio::time::Instant;

use super::clock::{self, elapsed_ms};
use super::host::{self, HostContext, PeerSetup, SharedMemory};
use super::kill::KillSlot;
use super::record::Recorder;
use super::streams::Board;
use super::streams_net::{SharedBoard, StreamsNet};
use super::{HostControl, Run};

/// How often the loop hands recorded events to the collector, simulated ms: every
/// millisecond, the trace's resolution. It bounds the recorder's buffer, which holds what the
/// hosts reported since the last drain; the boot wave of `swarm-100` reports up to 180,000
/// events in 100 ms (43 MB buffered at 100 ms), 3,700 in its busiest millisecond. The trace
/// is the same whatever the cadence: on this substrate every host reads the one runtime's
/// clock, so events are recorded in time order and each drain's stable sort keeps them so.
const DRAIN_EVERY_MS: u64 = 1;

impl Run<'_> {
    /// Runs the plan on the streams substrate.
    pub(super) fn execute_streams(
        mut self,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<(), SimError> {
        let runtime = clock::paused_runtime()?;
        let local = tokio::task::LocalSet::new();
        let driven = runtime.block_on(local.run_until(self.drive_streams(collector, progress)));
        // The hosts' tasks close their connection ends as they drop.
        drop(local);
        drop(runtime);
        clock::set_start(None);
        driven?;
        self.snapshots(collector)
    }

    /// Starts every host, then applies the plan's steps until its end.
    async fn drive_streams(
        &mut self,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<(), SimError> {
        let start = Instant::now();
        clock::set_start(Some(start));
        let board: SharedBoard = Arc::new(Mutex::new(Board::new(self.plan, start)));
        let mut hosts = StreamsHosts {
            board: Arc::clone(&board),
            setups: self.setups.clone(),
            memories: self.memories.clone(),
            recorder: Arc::clone(&self.recorder),
            tasks: self.setups.iter().map(|_| None).collect(),
            killers: self.setups.iter().map(|_| KillSlot::default()).collect(),
        };
        for setup in &self.setups {
            hosts.start(setup);
        }
        let plan = self.plan;
        let mut faults = plan.faults.iter().enumerate().peekable();
        let mut churn = plan.churn.iter().peekable();
        let mut reported = 0_u64;
        loop {
            let now = elapsed_ms().unwrap_or(0);
            while let Some((index, step)) = faults.next_if(|(_, step)| step.t_ms <= now) {
                self.streams_fault(&board, &mut hosts, now, index, step);
            }
            while let Some(step) = churn.next_if(|step| step.t_ms <= now) {
                self.churn(&mut hosts, now, step.peer, step.online);
            }
            self.drain_into(collector)?;
            if now >= reported + 1_000 {
                progress.set(now.min(plan.duration_ms));
                reported = now;
            }
            if now >= plan.duration_ms {
                break;
            }
            let next = [
                faults.peek().map(|(_, step)| step.t_ms),
                churn.peek().map(|step| step.t_ms),
                Some(plan.duration_ms),
            ]
            .into_iter()
            .flatten()
            .fold(now + DRAIN_EVERY_MS, u64::min)
            .max(now + 1);
            tokio::time::sleep_until(start + Duration::from_millis(next)).await;
        }
        self.note_streams(&board);
        self.record_final_sizes(collector)
    }

    fn note_streams(&self, board: &SharedBoard) {
        let stats = board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .stats();
        self.recorder.note(
            self.plan.duration_ms,
            format!(
                "streams: {} connections, {} writes carrying {} bytes, {} retransmissions, \
                 {} resets, {} dials refused, at most {} bytes unread at once",
                stats.connections,
                stats.chunks,
                stats.bytes,
                stats.retransmits,
                stats.resets,
                stats.refused,
                stats.peak_unread
            ),
            false,
        );
    }

    fn streams_fault(
        &mut self,
        board: &SharedBoard,
        hosts: &mut StreamsHosts,
        t: u64,
        index: usize,
        step: &FaultStep,
    ) {
        self.record_fault(t, index, step);
        let mut locked = board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !locked.links_mut().apply(step) {
            drop(locked);
            self.fault_on_peers(hosts, t, step);
            return;
        }
        if matches!(step.action, FaultAction::Heal | FaultAction::Release) {
            locked.unpark();
        }
    }
}

/// The streams run's hosts: what a peer's software needs to start, and each running one's
/// task and killer.
struct StreamsHosts {
    board: SharedBoard,
    setups: Vec<Arc<PeerSetup>>,
    memories: Vec<SharedMemory>,
    recorder: Arc<Recorder>,
    tasks: Vec<Option<tokio::task::JoinHandle<()>>>,
    killers: Vec<KillSlot>,
}

impl HostControl for StreamsHosts {
    /// A crash: the node's actors are killed where they stand, the host's software aborted,
    /// and the switchboard closes the host's connection ends and listeners.
    fn stop(&mut self, setup: &PeerSetup) {
        let index = setup.index as usize;
        self.killers[index].kill();
        if let Some(task) = self.tasks[index].take() {
            task.abort();
        }
        self.board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .host_down(setup.index);
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
        let net = StreamsNet::new(setup.index, Arc::clone(&self.board));
        self.killers[index] = killer;
        self.tasks[index] = Some(tokio::task::spawn_local(host::run_on(
            context,
            Arc::new(net),
        )));
    }
}
