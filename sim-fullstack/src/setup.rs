//! What each peer is before the simulation starts: its keypair and account, its node
//! configuration (timers, limits, goals, whom it dials) and its publish schedule, made from
//! the plan; and the directory the recorder maps remotes and tangles with.

use std::sync::Arc;
use std::time::Duration;

use node::peer::{DialTarget, Limits, NodeConfig, Timers, Transport as NodeTransport};
use node::transport::caps::NetworkKey;
use proto::goals::Goal;
use proto::ids::{AccountId, TangleId};
use proto::keys::Keypair;

use super::host::{PeerSetup, Scheduled, Write};
use super::net::HostSockets;
use super::record::Directory;
use super::store::SharedStore;
use sim::goal::FeedKind;
use sim::plan::{Content, PeerIdx, PeerPlan, Plan};
use sim::scenario::{Reinitiation, Transport};

/// The TCP port every simulated peer listens on.
pub const PORT: u16 = 9000;

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

/// Every peer's setup, in plan order, and the recorder's directory.
pub(super) fn peers(plan: &Plan) -> (Vec<Arc<PeerSetup>>, Directory) {
    let keypairs: Vec<Keypair> = plan
        .peers
        .iter()
        .map(|peer| keypair(plan.seed, peer.index))
        .collect();
    let configs = node_configs(plan, &keypairs);
    let accounts: Vec<AccountId> = configs.iter().map(node::peer::fresh_account_id).collect();
    let directory = directory(plan, &keypairs, &accounts);
    let schedules = schedules(plan, &accounts);
    let setups = plan
        .peers
        .iter()
        .zip(configs)
        .zip(schedules)
        .map(|((peer, mut config), schedule)| {
            config.goals = goals(peer, &accounts);
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
                account: accounts[peer.index as usize],
                store: SharedStore::new(),
                sockets: HostSockets::new(),
                schedule,
            })
        })
        .collect();
    (setups, directory)
}

/// Each peer's node configuration before goals and dial targets.
fn node_configs(plan: &Plan, keypairs: &[Keypair]) -> Vec<NodeConfig> {
    let transport = match plan.transport {
        Transport::Shse => NodeTransport::Shse(NetworkKey::PZP),
        Transport::Plaintext => NodeTransport::Plaintext,
    };
    plan.peers
        .iter()
        .zip(keypairs)
        .map(|(peer, keypair)| {
            let mut config = NodeConfig::new(keypair.clone(), plan.seed);
            config.peer = u64::from(peer.index);
            config.listen = Some(format!("0.0.0.0:{PORT}"));
            config.transport = transport;
            config.timers = sim_timers();
            config.sync.reinitiation = match plan.reinitiation {
                Reinitiation::Targeted => proto::sync::Reinitiation::Targeted,
                Reinitiation::Reference => proto::sync::Reinitiation::Reference,
            };
            config.limits = Limits {
                connections_max: CONNECTIONS_MAX,
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
        for (feed, kind) in &plan.feeds {
            let tangle = proto::msg::feed_id(&accounts[peer.index as usize], &domain(feed, *kind));
            directory.feeds.insert(tangle, (peer.index, feed.clone()));
        }
    }
    directory
}

/// Each peer's publishes, as the writes its host makes.
fn schedules(plan: &Plan, accounts: &[AccountId]) -> Vec<Vec<Scheduled>> {
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
    schedules
}

/// The peer's own account tangle, and each followed account's (their key msgs validate the
/// feeds), then what the plan's rules ask for.
fn goals(peer: &PeerPlan, accounts: &[AccountId]) -> Vec<(TangleId, Goal)> {
    let mut goals: Vec<(TangleId, Goal)> = vec![(accounts[peer.index as usize], Goal::All)];
    for followee in &peer.follows {
        goals.push((accounts[*followee as usize], Goal::All));
    }
    for goal in &peer.goals {
        let owner = &accounts[goal.account as usize];
        let tangle = proto::msg::feed_id(owner, &goal.rule.domain());
        goals.push((tangle, goal.rule.goal));
    }
    goals
}

/// The keypair of peer `peer` in runs with `seed`: the same in every incarnation.
#[must_use]
pub fn keypair(seed: u64, peer: PeerIdx) -> Keypair {
    let mut stream = sim::rng::stream(seed, "keys", u64::from(peer));
    let mut bytes = [0_u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&stream.next_u64().to_le_bytes());
    }
    Keypair::from_seed(&bytes)
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
