//! What each peer is before the simulation starts: its keypair and account, its node
//! configuration (timers, limits, goals, whom it dials) and its publish schedule, made from
//! the plan; and the directory the recorder maps remotes and tangles with.

use std::sync::Arc;

pub use sim::workload::keypair;
use std::time::Duration;

use node::peer::{DialTarget, Limits, NodeConfig, Timers, Transport as NodeTransport};
use node::transport::caps::NetworkKey;
use proto::ids::AccountId;
use proto::keys::Keypair;

use super::host::PeerSetup;
use super::interner::MsgInterner;
use super::net::HostSockets;
use super::record::Directory;
use super::store::SharedStore;
use sim::plan::Plan;
use sim::scenario::{Reinitiation, Role, Substrate, SyncMethod, Transport};
use sim::timers::SimTimers;
use sim::workload;

/// The TCP port every simulated peer listens on.
pub const PORT: u16 = 9000;

/// Fewest connections a simulated node admits. Above the default: with `dial_follows`, a
/// popular account is dialed by most of its followers. A peer whose planned edges are more
/// admits twice its planned degree ([`connections_max`]): the scenario's topology is what
/// is studied, and a cap below it would make the runner, not the protocol, delay delivery.
pub const CONNECTIONS_MAX: usize = 256;

/// The connection cap of each peer: [`CONNECTIONS_MAX`], or twice its planned degree when
/// that is more (a restarted or churned neighbour's new connection can briefly overlap the
/// old one it replaces).
#[must_use]
pub fn connections_max(plan: &Plan) -> Vec<usize> {
    let mut degree = vec![0usize; plan.peers.len()];
    for edge in &plan.edges {
        for end in [edge.dialer, edge.acceptor] {
            if let Some(count) = usize::try_from(end).ok().and_then(|at| degree.get_mut(at)) {
                *count += 1;
            }
        }
    }
    degree
        .into_iter()
        .map(|degree| CONNECTIONS_MAX.max(2 * degree))
        .collect()
}

/// Node timers under simulation on `substrate`: the timers both engines share
/// ([`sim::timers::SimTimers`]), the turmoil-era ones only where TCP never retransmits.
#[must_use]
pub fn sim_timers(substrate: Substrate) -> Timers {
    let timers = match substrate {
        Substrate::Fabric | Substrate::Streams => SimTimers::retransmitting(),
        Substrate::Turmoil => SimTimers::turmoil(),
    };
    Timers {
        connect_timeout: Duration::from_millis(timers.connect_timeout_ms),
        handshake_timeout: Duration::from_millis(timers.handshake_timeout_ms),
        yield_after: Timers::default().yield_after,
        keepalive_interval: Duration::from_millis(timers.keepalive_ms),
        idle_timeout: Duration::from_millis(timers.idle_timeout_ms),
        backoff_base: Duration::from_millis(timers.backoff_base_ms),
        backoff_max: Duration::from_millis(timers.backoff_max_ms),
        gc_interval: Duration::from_millis(timers.gc_interval_ms),
    }
}

/// Every peer's setup, in plan order, and the recorder's directory.
pub(super) fn peers(plan: &Plan, substrate: Substrate) -> (Vec<Arc<PeerSetup>>, Directory) {
    let keypairs: Vec<Keypair> = plan
        .peers
        .iter()
        .map(|peer| keypair(plan.seed, peer.index))
        .collect();
    let configs = node_configs(plan, &keypairs, sim_timers(substrate));
    let accounts: Vec<AccountId> = configs.iter().map(node::peer::fresh_account_id).collect();
    let directory = directory(plan, &keypairs, &accounts);
    let schedules = workload::schedules(plan, &accounts);
    // One per run: this run's stores share equal msgs, and no other run's.
    let msgs = MsgInterner::new();
    let setups = plan
        .peers
        .iter()
        .zip(configs)
        .zip(schedules)
        .map(|((peer, mut config), schedule)| {
            config.goals = workload::goals(peer, &accounts);
            let (hubs, dials): (Vec<&sim::plan::Edge>, Vec<&sim::plan::Edge>) = plan
                .edges
                .iter()
                .filter(|edge| edge.dialer == peer.index)
                .partition(|edge| plan.peers[edge.acceptor as usize].role == Role::TunnelHub);
            config.dial = dials
                .iter()
                .map(|edge| DialTarget {
                    address: format!("{}:{PORT}", plan.peer_name(edge.acceptor)),
                    key: Some(keypairs[edge.acceptor as usize].public()),
                })
                .collect();
            Arc::new(PeerSetup {
                index: peer.index,
                name: peer.name.clone(),
                config,
                account: accounts[peer.index as usize],
                store: SharedStore::sharing(&msgs),
                sockets: HostSockets::new(),
                schedule,
                tunnel_hub: peer.role == Role::TunnelHub,
                hub_invites: super::tunnels::hub_invites(plan, peer),
                nat: peer.nat,
                hubs: hubs
                    .iter()
                    .map(|edge| {
                        let key = keypairs[edge.acceptor as usize].public();
                        let address =
                            format!("net:{}:{PORT}~shse:{key}", plan.peer_name(edge.acceptor));
                        super::tunnels::hub_entry(address, peer, edge.acceptor)
                    })
                    .collect(),
            })
        })
        .collect();
    (setups, directory)
}

/// Each peer's node configuration before goals and dial targets.
fn node_configs(plan: &Plan, keypairs: &[Keypair], timers: Timers) -> Vec<NodeConfig> {
    let transport = match plan.transport {
        Transport::Shse => NodeTransport::Shse(NetworkKey::PZP),
        Transport::Plaintext => NodeTransport::Plaintext,
    };
    let caps = connections_max(plan);
    plan.peers
        .iter()
        .zip(keypairs)
        .zip(caps)
        .map(|((peer, keypair), cap)| {
            let mut config = NodeConfig::new(keypair.clone(), plan.seed);
            config.peer = u64::from(peer.index);
            config.listen = Some(format!("0.0.0.0:{PORT}"));
            config.transport = transport;
            config.timers = timers;
            config.sync.reinitiation = match plan.reinitiation {
                Reinitiation::Targeted => proto::sync::Reinitiation::Targeted,
                Reinitiation::Reference => proto::sync::Reinitiation::Reference,
            };
            config.reconcile = plan.sync == SyncMethod::Reconcile;
            config.limits = Limits {
                connections_max: cap,
                inbound_max: cap,
                outbound_max: cap,
                handshakes_max: cap,
                ..Limits::default()
            };
            config
        })
        .collect()
}

/// Public keys and host names to peers; every workload feed's tangle to its author and name.
fn directory(plan: &Plan, keypairs: &[Keypair], accounts: &[AccountId]) -> Directory {
    let mut directory = Directory::default();
    for (peer, keypair) in plan.peers.iter().zip(keypairs) {
        directory.keys.insert(keypair.public(), peer.index);
        directory.names.insert(peer.name.clone(), peer.index);
    }
    directory.feeds = workload::feed_names(plan, accounts);
    directory
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both engines must give each peer the account the node creates, or their msgs differ.
    #[test]
    fn the_workload_predicts_the_nodes_accounts() {
        let text = "name = \"t\"\nduration = \"2m\"\n[topology]\nkind = \"full\"\n\
                    [[group]]\nname = \"p\"\ncount = 3\n";
        let scenario = sim::scenario::Scenario::parse(text, "t.toml").expect("parses");
        for seed in [1, 2, 77] {
            let plan = Plan::build(&scenario, seed);
            let keypairs: Vec<Keypair> = plan
                .peers
                .iter()
                .map(|peer| keypair(plan.seed, peer.index))
                .collect();
            for ((peer, config), keypair) in plan
                .peers
                .iter()
                .zip(node_configs(
                    &plan,
                    &keypairs,
                    sim_timers(Substrate::Fabric),
                ))
                .zip(&keypairs)
            {
                let predicted = workload::account_root(seed, peer.index, keypair).id();
                assert_eq!(node::peer::fresh_account_id(&config), predicted);
            }
        }
    }

    /// A run's stores share msgs with each other and never with another run's: two runs in
    /// one process (a sweep, the tests) must not hand each other msgs.
    #[test]
    fn a_runs_stores_share_one_interner_and_two_runs_two() {
        let text = "name = \"t\"\nduration = \"1m\"\n[topology]\nkind = \"full\"\n\
                    [[group]]\nname = \"p\"\ncount = 3\n";
        let scenario = sim::scenario::Scenario::parse(text, "t.toml").expect("parses");
        let plan = Plan::build(&scenario, 1);
        let (first, _) = peers(&plan, Substrate::Streams);
        let (second, _) = peers(&plan, Substrate::Streams);
        let interner = first[0].store.interner();
        assert!(
            first
                .iter()
                .all(|peer| peer.store.interner().is_same(interner))
        );
        assert!(
            second
                .iter()
                .all(|peer| !peer.store.interner().is_same(interner))
        );
    }

    /// A peer admits every connection its plan gives it (with room for a replacement
    /// each), and never fewer than the floor.
    #[test]
    fn a_peer_admits_twice_its_planned_degree_and_at_least_the_floor() {
        let full = |count: usize| {
            let text = format!(
                "name = \"t\"\nduration = \"1m\"\n[topology]\nkind = \"full\"\n\
                 [[group]]\nname = \"p\"\ncount = {count}\n"
            );
            let scenario = sim::scenario::Scenario::parse(&text, "t.toml").expect("parses");
            Plan::build(&scenario, 1)
        };
        assert_eq!(connections_max(&full(3)), vec![CONNECTIONS_MAX; 3]);
        let big = full(200);
        assert!(big.edges.len() >= 200 * 199 / 2, "{}", big.edges.len());
        let caps = connections_max(&big);
        assert!(caps.iter().all(|cap| *cap >= 2 * 199), "{caps:?}");
        let keypairs: Vec<Keypair> = big
            .peers
            .iter()
            .map(|peer| keypair(big.seed, peer.index))
            .collect();
        let configs = node_configs(&big, &keypairs, sim_timers(Substrate::Fabric));
        for (config, cap) in configs.iter().zip(&caps) {
            assert_eq!(config.limits.connections_max, *cap);
            assert_eq!(config.limits.inbound_max, *cap);
        }
    }

    /// On the fabric a peer keeps and pings its connections as a real one does: the node's
    /// own defaults, not turmoil's 1 s / 3 s.
    #[test]
    fn fabric_peers_use_the_nodes_keepalive_and_idle_timeout() {
        let real = Timers::default();
        let fabric = sim_timers(Substrate::Fabric);
        assert_eq!(fabric.keepalive_interval, real.keepalive_interval);
        assert_eq!(fabric.idle_timeout, real.idle_timeout);
        let turmoil = sim_timers(Substrate::Turmoil);
        assert!(turmoil.idle_timeout < real.idle_timeout);
    }
}
