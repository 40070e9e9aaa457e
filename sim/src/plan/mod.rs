//! The plan: a scenario expanded, with its seed, into concrete lists the runner executes —
//! peers with indices and names, edges, the follow graph, each peer's goals, the publish
//! schedule, the churn schedule and the fault schedule.
//!
//! Everything random comes from [`crate::rng::stream`] with a fixed stream name per use
//! (documented in `docs/scenarios.md`, "Determinism"), so the same scenario and seed give
//! the same plan byte for byte ([`Plan::to_json`]).
//!
//! This file is the plan's model; [`Plan::build`] is in `build.rs`, which draws the edges
//! with `topology.rs` (the graph generators), the publish schedule with `publish.rs` and the
//! fault schedule with `faults.rs`.

mod build;
mod faults;
mod publish;
mod topology;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::SimError;
use crate::goal::{FeedKind, Rule};
use crate::scenario::{
    CollectorMode, FaultAction, LatencyModel, Reinitiation, Role, SyncMethod, Transport,
};
use proto::goals::Goal;

/// Index of a peer in [`Plan::peers`] (also its position in events).
pub type PeerIdx = u32;

/// The plan's format version (bumped when its JSON changes shape).
pub const PLAN_VERSION: u32 = 1;

/// A scenario expanded with a seed.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// [`PLAN_VERSION`].
    pub plan_version: u32,
    /// Scenario name.
    pub scenario: String,
    /// The seed this plan was made with.
    pub seed: u64,
    /// Run length.
    pub duration_ms: u64,
    /// turmoil tick.
    pub tick_ms: u64,
    /// Transport.
    pub transport: Transport,
    /// The sync machine's re-initiation policy.
    #[serde(skip_serializing_if = "Reinitiation::is_default")]
    pub reinitiation: Reinitiation,
    /// How peers sync.
    #[serde(default, skip_serializing_if = "SyncMethod::is_default")]
    pub sync: SyncMethod,
    /// Latency and loss.
    pub network: NetworkPlan,
    /// Groups with their peers.
    pub groups: Vec<GroupPlan>,
    /// Every peer; `peers[i].index == i`.
    pub peers: Vec<PeerPlan>,
    /// Connections to keep: the dialer dials the acceptor (and redials after breaks).
    pub edges: Vec<Edge>,
    /// Feed name → kind, for every feed the workload writes.
    pub feeds: BTreeMap<String, FeedKind>,
    /// Every msg to publish, sorted by (time, peer, feed, seq).
    pub publishes: Vec<Publish>,
    /// Churn transitions, sorted by (time, peer).
    pub churn: Vec<ChurnStep>,
    /// Fault actions (including automatic undos), sorted by time, then listing order.
    pub faults: Vec<FaultStep>,
    /// Time intervals during which a fault is active (for plots and recovery times).
    pub fault_intervals: Vec<FaultInterval>,
    /// Checks.
    pub check: CheckPlan,
    /// Sampling interval for curves and bandwidth.
    pub sample_interval_ms: u64,
    /// Latency CDF on a log x axis.
    pub latency_log_x: bool,
    /// What the collector keeps.
    #[serde(skip_serializing_if = "CollectorMode::is_default")]
    pub collector: CollectorMode,
}

/// Network, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkPlan {
    /// Global latency.
    pub latency: LatencyModel,
    /// Global `fail_rate`.
    pub fail_rate: f64,
    /// Global `repair_rate`.
    pub repair_rate: f64,
    /// Global bandwidth per link direction, bytes/s (`None`: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_bytes_per_s: Option<u64>,
    /// Overrides, in file order (later ones win where they overlap).
    pub links: Vec<LinkPlan>,
}

/// A latency/loss override for every link between peers in `a` and peers in `b`.
#[derive(Debug, Clone, Serialize)]
pub struct LinkPlan {
    /// The two group names.
    pub groups: [String; 2],
    /// Peers of the first group.
    pub a: Vec<PeerIdx>,
    /// Peers of the second group.
    pub b: Vec<PeerIdx>,
    /// Latency on these links (min == max: turmoil `set_link_latency`; else
    /// `set_link_max_message_latency(max)`).
    pub latency: Option<LatencyModel>,
    /// `fail_rate` on these links (`set_link_fail_rate`).
    pub fail_rate: Option<f64>,
    /// Bandwidth per direction of these links, bytes/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_bytes_per_s: Option<u64>,
}

/// A group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupPlan {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Its peers.
    pub peers: Vec<PeerIdx>,
}

/// A goal one peer sets on one account's feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoalPlan {
    /// The account (a peer index; the runner maps it to the account ID).
    pub account: PeerIdx,
    /// The rule, e.g. `post@newest-100`.
    pub rule: Rule,
}

/// A peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerPlan {
    /// Index.
    pub index: PeerIdx,
    /// `<group>-<i>`; also the turmoil host name.
    pub name: String,
    /// Group name.
    pub group: String,
    /// Role.
    pub role: Role,
    /// Whether it has an account (leaves do; hubs do not).
    pub account: bool,
    /// Behind a NAT: it does not listen, and reaches others through tunnel hubs.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nat: bool,
    /// A tunnel hub that admits only its members (`admission = "invites"`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub members_only: bool,
    /// The invites it holds: one per members-only tunnel hub it attends, in edge order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invites: Vec<InvitePlan>,
    /// Whom it follows (sorted).
    pub follows: Vec<PeerIdx>,
    /// Its goals: own-account rules, then each followed account's rules.
    pub goals: Vec<GoalPlan>,
    /// Posts per hour (0 for lurkers and non-publishers).
    pub post_rate_per_hour: f64,
    /// Dict updates per hour.
    pub dict_rate_per_hour: f64,
    /// Set updates per hour.
    pub set_rate_per_hour: f64,
}

/// An invite a tunnel hub made for a peer that attends it: the one-time hub token the peer
/// joins with (the hub creates it at start with `createToken`'s code; the runner writes the
/// pzp-invite URI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvitePlan {
    /// The hub.
    pub hub: PeerIdx,
    /// The token's 32 bytes, from the plan's seeded `invite` stream.
    pub token: [u8; 32],
}

/// Why an edge exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeOrigin {
    /// The topology generator.
    Topology,
    /// `dial_follows`.
    Follow,
}

/// A connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    /// Who dials (whose goals drive the sync, protocol.md §7.1).
    pub dialer: PeerIdx,
    /// Who accepts.
    pub acceptor: PeerIdx,
    /// Why.
    pub origin: EdgeOrigin,
}

/// What a msg says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// A post whose data is `bytes` long (text of the runner's choice).
    Post {
        /// Data size.
        bytes: u64,
    },
    /// A dict update: field → new value.
    Dict {
        /// The fields set by this msg.
        update: BTreeMap<String, String>,
    },
    /// A set update of a workload set.
    Set {
        /// `true` add, `false` delete.
        add: bool,
        /// The item.
        item: String,
    },
    /// A follows-set add of this peer's account.
    Follow {
        /// The followed peer.
        followee: PeerIdx,
    },
}

/// One msg to publish.
#[derive(Debug, Clone, Serialize)]
pub struct Publish {
    /// When.
    pub t_ms: u64,
    /// Who (the account owner).
    pub peer: PeerIdx,
    /// Feed name.
    pub feed: String,
    /// Feed kind.
    pub kind: FeedKind,
    /// Depth in the feed (1-based: the moot is 0).
    pub seq: u32,
    /// Approximate data size.
    pub bytes: u64,
    /// Earlier seqs of this feed that this msg supersedes (set/dict semantics; the runner's
    /// set/dict code computes the real ones, which should agree).
    pub supersedes: Vec<u32>,
    /// What to publish.
    pub content: Content,
}

/// A churn transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ChurnStep {
    /// When.
    pub t_ms: u64,
    /// Who.
    pub peer: PeerIdx,
    /// Goes online (`true`) or offline (`false`, the app stops; its store is kept).
    pub online: bool,
}

/// One fault action to apply at `t_ms`.
#[derive(Debug, Clone, Serialize)]
pub struct FaultStep {
    /// When.
    pub t_ms: u64,
    /// Index of the `[[fault]]` entry it comes from.
    pub fault: usize,
    /// What.
    pub action: FaultAction,
    /// `true` for the automatic undo of an entry with `duration`.
    pub undo: bool,
    /// Label for reports.
    pub label: String,
    /// Link faults: one side (empty with `b` empty: every link).
    pub a: Vec<PeerIdx>,
    /// Link faults: the other side.
    pub b: Vec<PeerIdx>,
    /// crash/restart: whom.
    pub peers: Vec<PeerIdx>,
    /// latency: the new latency (`None` on a latency step: restore the configured latency,
    /// global plus `[[network.link]]` overrides).
    pub latency: Option<LatencyModel>,
    /// loss: the new fail rate (`None` on a loss step: restore the configured rates).
    pub fail_rate: Option<f64>,
    /// break: the new break rate (`None` on a break step: back to none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_rate: Option<f64>,
}

/// An interval during which a fault is in force.
#[derive(Debug, Clone, Serialize)]
pub struct FaultInterval {
    /// Start.
    pub start_ms: u64,
    /// End (the undo/heal time, or the end of the run).
    pub end_ms: u64,
    /// Label.
    pub label: String,
    /// The action that started it.
    pub action: FaultAction,
    /// Whether something ended it before the run did.
    pub healed: bool,
}

/// A fault in force on some links over an interval (derived from [`Plan::faults`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFault {
    /// Start.
    pub start_ms: u64,
    /// End (the step that undoes it, or the end of the run).
    pub end_ms: u64,
    /// One side; with `b`, both empty: every link.
    pub a: BTreeSet<PeerIdx>,
    /// The other side.
    pub b: BTreeSet<PeerIdx>,
}

impl LinkFault {
    /// Whether it covers the link between `p` and `q` (in either direction: a sync exchange
    /// needs both).
    #[must_use]
    pub fn covers(&self, p: PeerIdx, q: PeerIdx) -> bool {
        (self.a.is_empty() && self.b.is_empty())
            || (self.a.contains(&p) && self.b.contains(&q))
            || (self.a.contains(&q) && self.b.contains(&p))
    }

    /// Whether it is in force at some point of `[from, to]`.
    #[must_use]
    pub fn overlaps(&self, from: u64, to: u64) -> bool {
        self.start_ms <= to && self.end_ms > from
    }
}

/// Checks, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct CheckPlan {
    /// Run safety checks.
    pub safety: bool,
    /// Run the liveness check.
    pub liveness: bool,
    /// Liveness also fails on over-replication.
    pub exact: bool,
    /// Allowed convergence time.
    pub converge_within_ms: u64,
    /// When the last fault ends and churn stops.
    pub quiet_from_ms: u64,
    /// `quiet_from_ms + converge_within_ms`: the liveness check instant.
    pub deadline_ms: u64,
    /// Run the steady-state delivery check.
    pub delivery: bool,
    /// Its bound: publication to storage at an interested peer with a fault-free path.
    pub deliver_within_ms: u64,
}

impl Plan {
    /// Refuses what only the full-stack engine runs: tunnel hubs and peers behind NATs
    /// (their tunnels are the node's muxrpc and SHSE inside muxrpc; the protocol tier does
    /// not model them).
    ///
    /// # Errors
    /// [`SimError::Unsupported`] naming the first such peer.
    pub fn refuse_tunnels(&self, engine: &str) -> Result<(), SimError> {
        match self
            .peers
            .iter()
            .find(|peer| peer.nat || peer.role == Role::TunnelHub)
        {
            Some(peer) => Err(SimError::Unsupported {
                what: format!(
                    "{} is a tunnel hub or behind a NAT: tunnels run on the full-stack engine \
                     only, not on `{engine}`",
                    peer.name
                ),
            }),
            None => Ok(()),
        }
    }

    /// A peer's name.
    #[must_use]
    pub fn peer_name(&self, peer: PeerIdx) -> &str {
        self.peers
            .get(peer as usize)
            .map_or("?", |p| p.name.as_str())
    }

    /// The plan as pretty JSON (byte-identical for the same scenario and seed).
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("invariant: plan serializes");
        text.push('\n');
        text
    }

    /// Whether the configured network (not a fault) loses on the link between `p` and `q`:
    /// the last `[[network.link]]` override with a `fail_rate` that covers it, else the global
    /// rate.
    #[must_use]
    pub fn link_lossy(&self, p: PeerIdx, q: PeerIdx) -> bool {
        let covers = |link: &LinkPlan| {
            (link.a.contains(&p) && link.b.contains(&q))
                || (link.a.contains(&q) && link.b.contains(&p))
        };
        let rate = self
            .network
            .links
            .iter()
            .rev()
            .filter(|link| covers(link))
            .find_map(|link| link.fail_rate)
            .unwrap_or(self.network.fail_rate);
        rate > 0.0
    }

    /// Peer index by name.
    #[must_use]
    pub fn peer_by_name(&self, name: &str) -> Option<PeerIdx> {
        self.peers.iter().find(|p| p.name == name).map(|p| p.index)
    }

    /// The rule `follower` applies to `feed` of account `owner`, if any (`None` also for
    /// `owner == follower`: own msgs are never counted as deliveries).
    #[must_use]
    pub fn rule_for(&self, follower: PeerIdx, owner: PeerIdx, feed: &str) -> Option<Goal> {
        if follower == owner {
            return None;
        }
        let peer = self.peers.get(follower as usize)?;
        peer.goals
            .iter()
            .find(|g| g.account == owner && g.rule.feed == feed)
            .map(|g| g.rule.goal)
            .filter(|goal| *goal != Goal::None)
    }
}
