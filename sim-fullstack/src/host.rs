//! One simulated peer: what its turmoil host runs each time it (re)starts. It starts the real
//! node on [`TurmoilNet`] over the peer's [`SharedStore`], then plays the peer's part of the
//! plan — publishing at the scheduled simulated times — and then waits on the node forever:
//! when a host future returns, turmoil stops ticking that host's runtime and its actors sit
//! frozen without an error, while waiting on the node turns its failure into a simulation
//! error.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use node::hub::AttendantDialer;
use node::net::Net;
use node::peer::{AnyStore, NodeConfig, NodeHandle};
use proto::ids::AccountId;
use proto::msg::Msg;
use proto::store::Store;

use super::kill::KillSlot;
use super::net::{HostSockets, TurmoilNet};
use super::record::{PendingSupersedes, Recorder, now_ms};
use super::store::SharedStore;
use super::tunnels;
use sim::plan::PeerIdx;
use sim::workload::{Memory, Scheduled};

/// Everything about one peer that does not change while the simulation runs.
#[derive(Debug)]
pub struct PeerSetup {
    /// Index in the plan.
    pub index: PeerIdx,
    /// Host name.
    pub name: String,
    /// The node's configuration, without incarnation and event sink.
    pub config: NodeConfig,
    /// The account the node creates at its first start.
    pub account: AccountId,
    /// Its store, surviving crashes.
    pub store: SharedStore,
    /// Its sockets, closed in a deterministic order when it crashes.
    pub sockets: HostSockets,
    /// Its publishes, in time order.
    pub schedule: Vec<Scheduled>,
    /// It runs a tunnel hub (`ppppp hub`), not a node.
    pub tunnel_hub: bool,
    /// A members-only tunnel hub: the invites it made (`None`: it admits anyone).
    pub hub_invites: Option<Vec<[u8; 32]>>,
    /// Behind a NAT: no one can dial it ([`super::tunnels::BehindNat`]).
    pub nat: bool,
    /// The tunnel hubs it attends (`net:HOST:PORT~shse:KEY`), or its invites to them (a
    /// pzp-invite URI whose join command carries the hub token).
    pub hubs: Vec<String>,
}

/// A peer's memory, shared between its incarnations.
#[derive(Debug, Clone, Default)]
pub struct SharedMemory(Arc<Mutex<Memory>>);

impl SharedMemory {
    fn lock(&self) -> MutexGuard<'_, Memory> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What a host needs: its setup, its memory, and the recorder.
#[derive(Debug, Clone)]
pub struct HostContext {
    /// The peer.
    pub setup: Arc<PeerSetup>,
    /// Its memory across restarts.
    pub memory: SharedMemory,
    /// Where events go.
    pub recorder: Arc<Recorder>,
    /// Where the running node leaves what kills it (the fabric substrate crashes with it).
    pub killer: KillSlot,
}

/// The host's software on turmoil: runs until the host is crashed (never returns on its own).
///
/// # Errors
/// None in practice; the signature is turmoil's.
pub async fn run(context: HostContext) -> turmoil::Result {
    // Held for as long as the software runs: dropped in a crash after the node's tasks, it
    // closes their sockets in the order they were opened.
    let _close_parked = context.setup.sockets.guard();
    let net = Arc::new(TurmoilNet::for_host(
        &context.setup.name,
        context.setup.sockets.clone(),
    ));
    run_on(context, net).await;
    Ok(())
}

/// The host's software on any network: starts the node, plays the peer's part of the plan,
/// then waits on the node forever (never returns).
pub async fn run_on(context: HostContext, net: Arc<dyn Net>) {
    let HostContext {
        setup,
        memory,
        recorder,
        killer,
    } = context;
    if setup.tunnel_hub {
        let invites = setup.hub_invites.as_deref();
        return tunnels::run_tunnel_hub(
            &setup.name,
            &setup.config,
            invites,
            &recorder,
            &killer,
            net,
        )
        .await;
    }
    let peer = setup.index;
    let incarnation = {
        let mut memory = memory.lock();
        memory.incarnations += 1;
        memory.incarnations - 1
    };
    recorder.peer_up(peer);
    let sink_recorder = Arc::clone(&recorder);
    let mut config = setup.config.clone();
    config.incarnation = incarnation;
    config.events = Some(Arc::new(move |event| {
        sink_recorder.node_event(now_ms(), peer, event);
    }));
    let Some((node, _dialing)) = start_node(&setup, config, &recorder, &killer, net).await else {
        return wait_forever().await;
    };
    if node.account() != setup.account {
        recorder.note(
            now_ms(),
            format!(
                "{}: the node's account {} is not the predicted {}",
                setup.name,
                node.account(),
                setup.account
            ),
            true,
        );
    }
    if incarnation == 0 {
        let bytes = setup
            .store
            .get(&setup.account)
            .ok()
            .flatten()
            .map_or(0, |record| record.msg.to_json().len() as u64);
        recorder.account_created(now_ms(), peer, setup.account, bytes);
        create_feeds(&setup, &recorder, &node).await;
    }
    publish_schedule(&setup, &memory, &recorder, &node).await;
    node.stopped().await;
    recorder.note(
        now_ms(),
        format!("{}: the node stopped by itself", setup.name),
        true,
    );
    wait_forever().await
}

/// Starts the peer's node on `net` (behind a NAT and attending hubs if the plan says so),
/// registered with `killer`; `None` (noted in the trace) if it could not start. The second
/// part, held while the node runs, dials the attendants of its hubs.
async fn start_node(
    setup: &PeerSetup,
    config: NodeConfig,
    recorder: &Recorder,
    killer: &KillSlot,
    net: Arc<dyn Net>,
) -> Option<(NodeHandle, Option<AttendantDialer>)> {
    let failed = |what: &str, error: String| {
        recorder.note(now_ms(), format!("{} {what}: {error}", setup.name), true);
    };
    let (net, attending) =
        match tunnels::node_net(setup.nat, &setup.hubs, &config, killer, net).await {
            Ok(started) => started,
            Err(error) => {
                failed("cannot attend its hubs", error);
                return None;
            }
        };
    let node = match node::peer::run(config, net, AnyStore::new(setup.store.clone())).await {
        Ok(node) => node,
        Err(error) => {
            failed("failed to start", error.to_string());
            return None;
        }
    };
    let node_killer = node.killer();
    killer.add(move || node_killer.kill());
    let dialing = match attending {
        Some(attending) => attending
            .start(node.dialer())
            .await
            .map_err(|error| failed("cannot attend its hubs", error))
            .ok(),
        None => None,
    };
    Some((node, dialing))
}

/// Creates the moots of the plain feeds (posts) the peer will write, as an app that
/// initializes its feeds at first start does. Without them, a feed first written after a
/// connection's initial sync would not reach the dialer until it reconnects: pzp-sync pushes
/// new msgs in realtime only on tangles the remote wanted something of when they synced, and
/// a feed without a moot has nothing to want. Set and dict feeds are not pre-created: a peer
/// holding only their moot wants nothing more of them (their minimum required depth is
/// infinite), so the plan bootstraps them with a first update at 0 s instead (see
/// docs/simulation.md, "Feeds exist from the start").
async fn create_feeds(setup: &PeerSetup, recorder: &Recorder, node: &NodeHandle) {
    let domains = sim::workload::post_domains(&setup.schedule);
    for domain in domains {
        let created = Msg::create_moot(setup.account, domain, &setup.config.keypair)
            .map_err(|error| error.to_string());
        let added = match created {
            Ok(moot) => node
                .add(moot, None)
                .await
                .map_err(|error| error.to_string()),
            Err(error) => Err(error),
        };
        if let Err(error) = added {
            recorder.note(
                now_ms(),
                format!("{} could not create its feed {domain}: {error}", setup.name),
                true,
            );
        }
    }
}

/// Never returns: a host's software must keep running for its actors to run.
async fn wait_forever() {
    std::future::pending::<()>().await;
}

async fn publish_schedule(
    setup: &PeerSetup,
    memory: &SharedMemory,
    recorder: &Recorder,
    node: &NodeHandle,
) {
    let peer = setup.index;
    // Writes scheduled while the peer was down are skipped: a stopped app writes nothing.
    let now = now_ms();
    {
        let mut memory = memory.lock();
        while let Some(missed) = setup.schedule.get(memory.next)
            && missed.t_ms < now
        {
            recorder.note(
                now,
                format!(
                    "{} was down at {} ms; skipped publishing on {}",
                    setup.name, missed.t_ms, missed.domain
                ),
                false,
            );
            memory.next += 1;
        }
    }
    loop {
        let Some(next) = setup.schedule.get(memory.lock().next) else {
            return;
        };
        let wait = next.t_ms.saturating_sub(now_ms());
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        let (data, supersedes) = memory.lock().data_for(&next.write);
        if !supersedes.is_empty() {
            recorder.expect_supersedes(
                peer,
                PendingSupersedes {
                    tangle: next.tangle,
                    supersedes: supersedes.iter().map(ToString::to_string).collect(),
                },
            );
        }
        match node.publish(&next.domain, data).await {
            Ok(id) => memory.lock().written(&next.write, id),
            Err(error) => {
                recorder.forget_supersedes(peer);
                recorder.note(
                    now_ms(),
                    format!(
                        "{} could not publish on {}: {error}",
                        setup.name, next.domain
                    ),
                    true,
                );
            }
        }
        memory.lock().next += 1;
    }
}
