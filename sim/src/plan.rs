//! The plan: a scenario expanded, with its seed, into concrete lists the runner executes —
//! peers with indices and names, edges, the follow graph, each peer's goals, the publish
//! schedule, the churn schedule and the fault schedule.
//!
//! Everything random comes from [`crate::rng::stream`] with a fixed stream name per use
//! (documented in `docs/scenarios.md`, "Determinism"), so the same scenario and seed give
//! the same plan byte for byte ([`Plan::to_json`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::goal::{FeedKind, Follow, Goal, Rule};
use crate::rng::{Stream, stream};
use crate::scenario::{
    FOLLOWS_FEED, FaultAction, Initially, LatencyModel, Role, Scenario, TopologyKind, Transport,
};

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

impl Publish {
    /// The synthetic msg ID (`<peer name>/<feed>/<seq>`), used by `--synthetic`.
    #[must_use]
    pub fn synthetic_id(&self, plan: &Plan) -> String {
        format!(
            "{}/{}",
            synthetic_tangle(plan, self.peer, &self.feed),
            self.seq
        )
    }
}

/// The synthetic tangle ID of a peer's feed (`<peer name>/<feed>`).
#[must_use]
pub fn synthetic_tangle(plan: &Plan, peer: PeerIdx, feed: &str) -> String {
    format!("{}/{feed}", plan.peer_name(peer))
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
}

impl Plan {
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

    /// Expands a validated scenario with `seed`.
    #[must_use]
    pub fn build(scenario: &Scenario, seed: u64) -> Plan {
        Builder::new(scenario, seed).build()
    }
}

struct Builder<'s> {
    scenario: &'s Scenario,
    seed: u64,
    peers: Vec<PeerPlan>,
    groups: Vec<GroupPlan>,
}

impl<'s> Builder<'s> {
    fn new(scenario: &'s Scenario, seed: u64) -> Self {
        let mut peers = Vec::new();
        let mut groups = Vec::new();
        for group in &scenario.groups {
            let mut members = Vec::new();
            for i in 0..group.count {
                let index = PeerIdx::try_from(peers.len()).expect("invariant: ≤ PEERS_MAX peers");
                members.push(index);
                peers.push(PeerPlan {
                    index,
                    name: format!("{}-{i}", group.name),
                    group: group.name.clone(),
                    role: group.role,
                    account: group.role == Role::Leaf,
                    follows: Vec::new(),
                    goals: Vec::new(),
                    post_rate_per_hour: 0.0,
                    dict_rate_per_hour: 0.0,
                    set_rate_per_hour: 0.0,
                });
            }
            groups.push(GroupPlan {
                name: group.name.clone(),
                role: group.role,
                peers: members,
            });
        }
        Builder {
            scenario,
            seed,
            peers,
            groups,
        }
    }

    fn group_peers(&self, name: &str) -> Vec<PeerIdx> {
        self.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.peers.clone())
            .unwrap_or_default()
    }

    fn stream(&self, name: &str, index: u64) -> Stream {
        stream(self.seed, name, index)
    }

    fn build(mut self) -> Plan {
        let scenario = self.scenario;
        self.follow_graph();
        self.goals();
        self.rates();
        let edges = self.edges();
        let publishes = self.publishes();
        let churn = self.churn();
        let faults = self.faults();
        let fault_intervals = intervals(&faults, scenario.duration.ms());
        let network = self.network();
        let quiet_from_ms = faults
            .last()
            .map_or(0, |f| f.t_ms)
            .max(churn_quiet(scenario));
        let check = CheckPlan {
            safety: scenario.check.safety,
            liveness: scenario.check.liveness,
            exact: scenario.check.exact,
            converge_within_ms: scenario.check.converge_within.ms(),
            quiet_from_ms,
            deadline_ms: quiet_from_ms + scenario.check.converge_within.ms(),
        };
        let sample_interval_ms = scenario.report.sample_interval.map_or_else(
            || {
                let raw = scenario.duration.ms().div_ceil(300);
                raw.div_ceil(1_000).max(1) * 1_000
            },
            crate::units::Millis::ms,
        );
        let sample_interval_ms = sample_interval_ms
            .max(scenario.tick.ms())
            .min(scenario.duration.ms());
        Plan {
            plan_version: PLAN_VERSION,
            scenario: scenario.name.clone(),
            seed: self.seed,
            duration_ms: scenario.duration.ms(),
            tick_ms: scenario.tick.ms(),
            transport: scenario.transport,
            network,
            groups: self.groups,
            peers: self.peers,
            edges,
            feeds: scenario.feed_kinds(),
            publishes,
            churn,
            faults,
            fault_intervals,
            check,
            sample_interval_ms,
            latency_log_x: scenario.report.latency_log_x.unwrap_or(true),
        }
    }

    fn network(&self) -> NetworkPlan {
        let network = &self.scenario.network;
        let base = network.latency.model();
        NetworkPlan {
            latency: base,
            fail_rate: network.fail_rate,
            repair_rate: network.repair_rate,
            links: network
                .links
                .iter()
                .map(|link| LinkPlan {
                    groups: link.between.clone(),
                    a: self.group_peers(&link.between[0]),
                    b: self.group_peers(&link.between[1]),
                    latency: link.latency.as_ref().map(|l| l.model_over(base)),
                    fail_rate: link.fail_rate,
                })
                .collect(),
        }
    }

    /// Accounts that publish, in peer order.
    fn publishers(&self) -> Vec<PeerIdx> {
        let groups = self.scenario.publishing_groups();
        self.peers
            .iter()
            .filter(|p| p.account && groups.contains(&p.group))
            .map(|p| p.index)
            .collect()
    }

    fn follow_graph(&mut self) {
        let scenario = self.scenario;
        let publishing = scenario.publishing_groups();
        // One popularity order over every account: rank 1 is the most followed.
        let mut ranked: Vec<PeerIdx> = self
            .peers
            .iter()
            .filter(|p| p.account)
            .map(|p| p.index)
            .collect();
        self.stream("popularity", 0).shuffle(&mut ranked);
        let rank_of: BTreeMap<PeerIdx, usize> = ranked
            .iter()
            .enumerate()
            .map(|(r, p)| (*p, r + 1))
            .collect();
        for index in 0..self.peers.len() {
            let peer = &self.peers[index];
            let group = scenario
                .group(&peer.group)
                .expect("invariant: peer groups exist");
            let candidate_groups = group
                .follow_groups
                .clone()
                .unwrap_or_else(|| publishing.clone());
            let candidates: Vec<PeerIdx> = self
                .peers
                .iter()
                .filter(|c| {
                    c.index != peer.index && c.account && candidate_groups.contains(&c.group)
                })
                .map(|c| c.index)
                .collect();
            let mut rng = self.stream("follows", u64::from(peer.index));
            let mut follows: Vec<PeerIdx> = match group.follow_model() {
                Follow::None => Vec::new(),
                Follow::All => candidates.clone(),
                Follow::Uniform { count } => {
                    let weights = vec![1.0; candidates.len()];
                    rng.weighted_sample(&weights, count as usize)
                        .into_iter()
                        .map(|i| candidates[i])
                        .collect()
                }
                Follow::Zipf { exponent, count } => {
                    let weights: Vec<f64> = candidates
                        .iter()
                        .map(|c| {
                            let rank = rank_of.get(c).copied().unwrap_or(ranked.len());
                            #[expect(clippy::cast_precision_loss, reason = "rank ≤ 1000")]
                            let rank_f = rank as f64;
                            1.0 / rank_f.powf(exponent)
                        })
                        .collect();
                    rng.weighted_sample(&weights, count as usize)
                        .into_iter()
                        .map(|i| candidates[i])
                        .collect()
                }
            };
            follows.sort_unstable();
            self.peers[index].follows = follows;
        }
    }

    fn goals(&mut self) {
        let scenario = self.scenario;
        for peer in &mut self.peers {
            let group = scenario
                .group(&peer.group)
                .expect("invariant: peer groups exist");
            let mut goals = Vec::new();
            if peer.account {
                for rule in group.own_rules() {
                    goals.push(GoalPlan {
                        account: peer.index,
                        rule,
                    });
                }
            }
            let theirs = group.their_rules();
            for followee in &peer.follows {
                for rule in &theirs {
                    goals.push(GoalPlan {
                        account: *followee,
                        rule: rule.clone(),
                    });
                }
            }
            peer.goals = goals;
        }
    }

    fn rates(&mut self) {
        let workload = &self.scenario.workload;
        for peer in self.publishers() {
            let mut rng = self.stream("rates", u64::from(peer));
            let plan = &mut self.peers[peer as usize];
            if let Some(post) = &workload.post {
                let posts = rng.chance(post.posters);
                let rate = post.rate.sample(&mut rng);
                plan.post_rate_per_hour = if posts { round6(rate) } else { 0.0 };
            }
            if let Some(dict) = &workload.dict {
                plan.dict_rate_per_hour = round6(dict.rate.sample(&mut rng));
            }
            if let Some(set) = &workload.set {
                plan.set_rate_per_hour = round6(set.rate.sample(&mut rng));
            }
        }
    }

    fn edges(&self) -> Vec<Edge> {
        let scenario = self.scenario;
        let topology = &scenario.topology;
        let n = self.peers.len();
        let mut rng = self.stream("topology", 0);
        let mut pairs: BTreeSet<(PeerIdx, PeerIdx)> = BTreeSet::new();
        let mut directed: Vec<(PeerIdx, PeerIdx)> = Vec::new();
        let to_idx = |i: usize| PeerIdx::try_from(i).expect("invariant: ≤ PEERS_MAX peers");
        match topology.kind {
            TopologyKind::RandomRegular => {
                let degree = topology.degree.unwrap_or(1) as usize;
                for (a, b) in random_regular(n, degree, &mut rng) {
                    directed.push((to_idx(a), to_idx(b)));
                }
            }
            TopologyKind::SmallWorld => {
                let k = topology.k.unwrap_or(2) as usize;
                let beta = topology.beta.unwrap_or(0.0);
                for (a, b) in small_world(n, k, beta, &mut rng) {
                    directed.push((to_idx(a), to_idx(b)));
                }
            }
            TopologyKind::HubAndSpoke => {
                let hubs: Vec<PeerIdx> = self
                    .peers
                    .iter()
                    .filter(|p| p.role == Role::Hub)
                    .map(|p| p.index)
                    .collect();
                for (i, a) in hubs.iter().enumerate() {
                    for b in hubs.iter().skip(i + 1) {
                        directed.push((*a, *b));
                    }
                }
                let links = topology.hub_links.map_or(hubs.len(), |l| l as usize);
                for peer in self.peers.iter().filter(|p| p.role != Role::Hub) {
                    let weights = vec![1.0; hubs.len()];
                    let mut chosen: Vec<PeerIdx> = rng
                        .weighted_sample(&weights, links)
                        .into_iter()
                        .map(|i| hubs[i])
                        .collect();
                    chosen.sort_unstable();
                    for hub in chosen {
                        directed.push((peer.index, hub));
                    }
                }
            }
            TopologyKind::Full => {
                for a in 0..n {
                    for b in a + 1..n {
                        directed.push((to_idx(a), to_idx(b)));
                    }
                }
            }
            TopologyKind::Edges => {
                for [a, b] in topology.edges.iter().flatten() {
                    let find =
                        |name: &str| self.peers.iter().find(|p| p.name == name).map(|p| p.index);
                    if let (Some(a), Some(b)) = (find(a), find(b)) {
                        directed.push((a, b));
                    }
                }
            }
        }
        let mut edges = Vec::new();
        for (a, b) in directed {
            let key = (a.min(b), a.max(b));
            if a == b || !pairs.insert(key) {
                continue;
            }
            edges.push(Edge {
                dialer: a,
                acceptor: b,
                origin: EdgeOrigin::Topology,
            });
        }
        if topology.dial_follows {
            for peer in &self.peers {
                for followee in &peer.follows {
                    let key = (peer.index.min(*followee), peer.index.max(*followee));
                    if pairs.insert(key) {
                        edges.push(Edge {
                            dialer: peer.index,
                            acceptor: *followee,
                            origin: EdgeOrigin::Follow,
                        });
                    }
                }
            }
        }
        edges.sort_by_key(|e| (e.dialer.min(e.acceptor), e.dialer.max(e.acceptor)));
        edges
    }

    fn publishes(&self) -> Vec<Publish> {
        let scenario = self.scenario;
        let workload = &scenario.workload;
        let start = workload.start.ms();
        let stop = scenario.workload_stop().ms();
        let mut out = Vec::new();
        // Bootstrap at 0s: every account's follows, in followee order.
        for peer in self.peers.iter().filter(|p| p.account) {
            for (i, followee) in peer.follows.iter().enumerate() {
                let seq = u32::try_from(i + 1).expect("invariant: follows ≤ PEERS_MAX");
                out.push(Publish {
                    t_ms: 0,
                    peer: peer.index,
                    feed: FOLLOWS_FEED.to_owned(),
                    kind: FeedKind::Set,
                    seq,
                    bytes: FOLLOW_BYTES,
                    supersedes: Vec::new(),
                    content: Content::Follow {
                        followee: *followee,
                    },
                });
            }
        }
        for peer in self.publishers() {
            let plan = &self.peers[peer as usize];
            if let Some(post) = &workload.post {
                let mut rng = self.stream("posts", u64::from(peer));
                let times = poisson_times(&mut rng, plan.post_rate_per_hour, start, stop);
                for (n, t_ms) in times.into_iter().enumerate() {
                    let seq = u32::try_from(n + 1).unwrap_or(u32::MAX);
                    let bytes = post.size.sample(&mut rng).round().max(1.0);
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "a positive size far below 2^64"
                    )]
                    let bytes = bytes as u64;
                    out.push(Publish {
                        t_ms,
                        peer,
                        feed: post.feed.clone(),
                        kind: FeedKind::Feed,
                        seq,
                        bytes,
                        supersedes: Vec::new(),
                        content: Content::Post { bytes },
                    });
                }
            }
            if let Some(dict) = &workload.dict {
                let mut rng = self.stream("dict", u64::from(peer));
                let mut roots: BTreeMap<String, u32> = BTreeMap::new();
                let mut seq = 0_u32;
                let mut times = vec![0];
                times.extend(poisson_times(
                    &mut rng,
                    plan.dict_rate_per_hour,
                    start,
                    stop,
                ));
                for (n, t_ms) in times.into_iter().enumerate() {
                    seq += 1;
                    let fields: Vec<String> = if n == 0 {
                        dict.fields.clone()
                    } else {
                        let weights = vec![1.0; dict.fields.len()];
                        let mut picked: Vec<String> = rng
                            .weighted_sample(&weights, dict.fields_per_update as usize)
                            .into_iter()
                            .map(|i| dict.fields[i].clone())
                            .collect();
                        picked.sort();
                        picked
                    };
                    let mut supersedes: Vec<u32> = fields
                        .iter()
                        .filter_map(|f| roots.get(f).copied())
                        .collect();
                    supersedes.sort_unstable();
                    supersedes.dedup();
                    let mut update = BTreeMap::new();
                    let mut bytes = 2_u64;
                    for field in fields {
                        let size = dict.value_size.sample(&mut rng).round().max(1.0);
                        #[expect(
                            clippy::cast_possible_truncation,
                            clippy::cast_sign_loss,
                            reason = "a positive size far below 2^64"
                        )]
                        let size = size as usize;
                        let value = filler(&format!("{field}-{seq}-"), size);
                        bytes += (field.len() + value.len() + 6) as u64;
                        roots.insert(field.clone(), seq);
                        update.insert(field, value);
                    }
                    out.push(Publish {
                        t_ms,
                        peer,
                        feed: dict.feed.clone(),
                        kind: FeedKind::Dict,
                        seq,
                        bytes,
                        supersedes,
                        content: Content::Dict { update },
                    });
                }
            }
            if let Some(set) = &workload.set {
                let mut rng = self.stream("set", u64::from(peer));
                let mut present: BTreeSet<String> = BTreeSet::new();
                let mut roots: BTreeMap<String, u32> = BTreeMap::new();
                let mut seq = 0_u32;
                // Bootstrap at 0 s (like the first profile): the set exists, with an item,
                // before any connection syncs it. A set feed first written later would reach
                // followers only after a reconnection (pzp-sync pushes in realtime only on
                // tangles the remote wanted something of when they synced).
                let mut times = vec![0];
                times.extend(poisson_times(&mut rng, plan.set_rate_per_hour, start, stop));
                for t_ms in times {
                    seq += 1;
                    let universe: Vec<String> =
                        (0..set.items).map(|i| format!("item-{i}")).collect();
                    let absent: Vec<&String> =
                        universe.iter().filter(|i| !present.contains(*i)).collect();
                    let delete =
                        !present.is_empty() && (absent.is_empty() || rng.chance(set.delete));
                    let item = if delete {
                        let items: Vec<&String> = present.iter().collect();
                        items[rng.index(items.len())].clone()
                    } else {
                        absent[rng.index(absent.len())].clone()
                    };
                    // pzp-set: supersede the item's roots and the roots of items no longer
                    // in the set.
                    let mut supersedes: Vec<u32> = Vec::new();
                    let gone: Vec<String> = roots
                        .keys()
                        .filter(|i| !present.contains(*i) || **i == item)
                        .cloned()
                        .collect();
                    for i in gone {
                        if let Some(root) = roots.remove(&i) {
                            supersedes.push(root);
                        }
                    }
                    supersedes.sort_unstable();
                    supersedes.dedup();
                    roots.insert(item.clone(), seq);
                    if delete {
                        present.remove(&item);
                    } else {
                        present.insert(item.clone());
                    }
                    out.push(Publish {
                        t_ms,
                        peer,
                        feed: set.feed.clone(),
                        kind: FeedKind::Set,
                        seq,
                        bytes: item.len() as u64 + 30,
                        supersedes,
                        content: Content::Set { add: !delete, item },
                    });
                }
            }
        }
        out.sort_by(|x, y| (x.t_ms, x.peer, &x.feed, x.seq).cmp(&(y.t_ms, y.peer, &y.feed, y.seq)));
        out
    }

    fn churn(&self) -> Vec<ChurnStep> {
        let scenario = self.scenario;
        let tick = scenario.tick.ms().max(1);
        let mut steps = Vec::new();
        for (group, churn) in &scenario.churn {
            let until = churn.until.unwrap_or(scenario.duration).ms();
            for peer in self.group_peers(group) {
                let mut rng = self.stream("churn", u64::from(peer));
                let mut online = match churn.initially {
                    Initially::Online => true,
                    Initially::Offline => false,
                    Initially::Random => {
                        let on = churn.online.shape.mean().unwrap_or(1.0);
                        let off = churn.offline.shape.mean().unwrap_or(1.0);
                        rng.chance(on / (on + off))
                    }
                };
                let mut t = churn.start.ms();
                if !online {
                    steps.push(ChurnStep {
                        t_ms: t,
                        peer,
                        online: false,
                    });
                }
                loop {
                    let dist = if online {
                        &churn.online
                    } else {
                        &churn.offline
                    };
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "non-negative durations far below 2^64 ms"
                    )]
                    let length = (dist.sample(&mut rng).round().max(0.0) as u64).max(tick);
                    t += length;
                    if t >= until {
                        break;
                    }
                    online = !online;
                    steps.push(ChurnStep {
                        t_ms: t,
                        peer,
                        online,
                    });
                }
                if !online {
                    steps.push(ChurnStep {
                        t_ms: until,
                        peer,
                        online: true,
                    });
                }
            }
        }
        steps.sort();
        steps
    }

    fn select(&self, selectors: &[String], rng: &mut Stream) -> Vec<PeerIdx> {
        let mut chosen = BTreeSet::new();
        for selector in selectors {
            if selector == "*" {
                chosen.extend(self.peers.iter().map(|p| p.index));
            } else if let Some(group) = self.groups.iter().find(|g| &g.name == selector) {
                chosen.extend(group.peers.iter().copied());
            } else if let Some(peer) = self.peers.iter().find(|p| &p.name == selector) {
                chosen.insert(peer.index);
            } else if let Some(inner) = selector
                .strip_prefix("random(")
                .and_then(|rest| rest.strip_suffix(')'))
            {
                let mut parts = inner.split(',').map(str::trim);
                let count: usize = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
                let pool: Vec<PeerIdx> = match parts.next() {
                    Some(group) => self.group_peers(group),
                    None => self.peers.iter().map(|p| p.index).collect(),
                };
                let weights = vec![1.0; pool.len()];
                chosen.extend(
                    rng.weighted_sample(&weights, count)
                        .into_iter()
                        .map(|i| pool[i]),
                );
            }
        }
        chosen.into_iter().collect()
    }

    fn faults(&self) -> Vec<FaultStep> {
        let scenario = self.scenario;
        let base = scenario.network.latency.model();
        let mut steps: Vec<(u64, usize, bool, FaultStep)> = Vec::new();
        for (i, fault) in scenario.faults.iter().enumerate() {
            let mut rng = self.stream("fault", i as u64);
            let a = fault
                .a
                .as_ref()
                .map(|s| self.select(s, &mut rng))
                .unwrap_or_default();
            let b = match (&fault.a, &fault.b) {
                (Some(_), Some(selectors)) => self.select(selectors, &mut rng),
                (Some(_), None) => self
                    .peers
                    .iter()
                    .map(|p| p.index)
                    .filter(|p| !a.contains(p))
                    .collect(),
                _ => Vec::new(),
            };
            let peers = fault
                .peers
                .as_ref()
                .map(|s| self.select(s, &mut rng))
                .unwrap_or_default();
            let label = fault.label.clone().unwrap_or_else(|| {
                let who = if fault.a.is_some() {
                    format!(
                        " {} / {}",
                        fault.a.as_deref().unwrap_or_default().join(","),
                        fault
                            .b
                            .as_deref()
                            .map_or_else(|| "rest".to_owned(), |b| b.join(","))
                    )
                } else if let Some(p) = &fault.peers {
                    format!(" {}", p.join(","))
                } else {
                    String::new()
                };
                format!("{}{who}", fault.action)
            });
            let latency = fault.latency.as_ref().map(|l| {
                if fault.a.is_none() {
                    if l.fixed.is_some() || l.max.is_some() && l.min.is_none() {
                        l.model_over(base)
                    } else {
                        l.model()
                    }
                } else {
                    l.model_over(base)
                }
            });
            let step = FaultStep {
                t_ms: fault.at.ms(),
                fault: i,
                action: fault.action,
                undo: false,
                label: label.clone(),
                a: a.clone(),
                b: b.clone(),
                peers: peers.clone(),
                latency,
                fail_rate: fault.fail_rate,
            };
            steps.push((fault.at.ms(), i, false, step));
            if let Some(duration) = fault.duration {
                let inverse = match fault.action {
                    FaultAction::Partition | FaultAction::OneWay => FaultAction::Heal,
                    FaultAction::Crash => FaultAction::Restart,
                    FaultAction::Hold => FaultAction::Release,
                    other => other,
                };
                steps.push((
                    fault.at.ms() + duration.ms(),
                    i,
                    true,
                    FaultStep {
                        t_ms: fault.at.ms() + duration.ms(),
                        fault: i,
                        action: inverse,
                        undo: true,
                        label: format!("end of {label}"),
                        a,
                        b,
                        peers,
                        latency: None,
                        fail_rate: None,
                    },
                ));
            }
        }
        steps.sort_by_key(|(t, i, undo, _)| (*t, *i, *undo));
        steps.into_iter().map(|(_, _, _, step)| step).collect()
    }
}

/// Bytes of a follows-set msg's data (an account ID plus set bookkeeping).
const FOLLOW_BYTES: u64 = 80;

fn churn_quiet(scenario: &Scenario) -> u64 {
    scenario
        .churn
        .values()
        .map(|c| c.until.unwrap_or(scenario.duration).ms())
        .max()
        .unwrap_or(0)
}

fn round6(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

fn filler(prefix: &str, size: usize) -> String {
    let mut text = prefix.to_owned();
    while text.len() < size {
        text.push('x');
    }
    text
}

/// Arrival times of a Poisson process with `rate_per_hour` in [start, stop).
fn poisson_times(rng: &mut Stream, rate_per_hour: f64, start: u64, stop: u64) -> Vec<u64> {
    let mut times = Vec::new();
    if rate_per_hour <= 0.0 {
        return times;
    }
    let mean_gap_ms = 3_600_000.0 / rate_per_hour;
    #[expect(clippy::cast_precision_loss, reason = "times far below 2^53 ms")]
    let mut t = start as f64;
    #[expect(clippy::cast_precision_loss, reason = "times far below 2^53 ms")]
    let stop_f = stop as f64;
    loop {
        t += rng.exp(mean_gap_ms);
        if t >= stop_f {
            break;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "0 ≤ t < stop"
        )]
        times.push(t.floor() as u64);
    }
    times
}

/// A random d-regular graph by pairing stubs one edge at a time, choosing only pairs that
/// keep the graph simple, and restarting when stuck (Steger–Wormald). Falls back to the last
/// near-regular attempt if every restart gets stuck (only for nearly complete graphs).
fn random_regular(n: usize, degree: usize, rng: &mut Stream) -> Vec<(usize, usize)> {
    let mut last = Vec::new();
    for _attempt in 0..100 {
        let mut stubs: Vec<usize> = (0..n)
            .flat_map(|v| std::iter::repeat_n(v, degree))
            .collect();
        let mut edges: BTreeSet<(usize, usize)> = BTreeSet::new();
        let mut order = Vec::new();
        let mut stuck = false;
        while stubs.len() >= 2 {
            let mut found = None;
            for _try in 0..(stubs.len() * 4).max(32) {
                let i = rng.index(stubs.len());
                let j = rng.index(stubs.len());
                let (u, v) = (stubs[i], stubs[j]);
                if i != j && u != v && !edges.contains(&(u.min(v), u.max(v))) {
                    found = Some((i, j));
                    break;
                }
            }
            let Some((i, j)) = found else {
                stuck = true;
                break;
            };
            let (u, v) = (stubs[i], stubs[j]);
            edges.insert((u.min(v), u.max(v)));
            order.push(if rng.chance(0.5) { (u, v) } else { (v, u) });
            let (high, low) = (i.max(j), i.min(j));
            stubs.swap_remove(high);
            stubs.swap_remove(low);
        }
        if !stuck {
            return order;
        }
        last = order;
    }
    last
}

/// Watts–Strogatz over a shuffled ring.
fn small_world(n: usize, k: usize, beta: f64, rng: &mut Stream) -> Vec<(usize, usize)> {
    let mut ring: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut ring);
    let mut adjacency: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for i in 0..n {
        for j in 1..=k / 2 {
            let (u, v) = (ring[i], ring[(i + j) % n]);
            adjacency.insert((u.min(v), u.max(v)));
            edges.push((u, v));
        }
    }
    for edge in &mut edges {
        if !rng.chance(beta) {
            continue;
        }
        let (u, v) = *edge;
        let options: Vec<usize> = (0..n)
            .filter(|w| *w != u && !adjacency.contains(&(u.min(*w), u.max(*w))))
            .collect();
        if options.is_empty() {
            continue;
        }
        let w = options[rng.index(options.len())];
        adjacency.remove(&(u.min(v), u.max(v)));
        adjacency.insert((u.min(w), u.max(w)));
        *edge = (u, w);
    }
    edges
}

/// Pairs each fault with whatever ends it.
fn intervals(steps: &[FaultStep], duration_ms: u64) -> Vec<FaultInterval> {
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let ends: &[FaultAction] = match step.action {
            FaultAction::Partition | FaultAction::OneWay => &[FaultAction::Heal],
            FaultAction::Hold => &[FaultAction::Release],
            FaultAction::Crash => &[FaultAction::Restart],
            FaultAction::Latency if step.latency.is_some() => &[FaultAction::Latency],
            FaultAction::Loss if step.fail_rate.is_some() => &[FaultAction::Loss],
            _ => continue,
        };
        let touched: BTreeSet<PeerIdx> = step
            .a
            .iter()
            .chain(&step.b)
            .chain(&step.peers)
            .copied()
            .collect();
        let end = steps.iter().skip(i + 1).find(|later| {
            ends.contains(&later.action)
                && (later.a.is_empty() && later.peers.is_empty()
                    || later
                        .a
                        .iter()
                        .chain(&later.b)
                        .chain(&later.peers)
                        .any(|p| touched.contains(p))
                    || touched.is_empty())
        });
        out.push(FaultInterval {
            start_ms: step.t_ms,
            end_ms: end.map_or(duration_ms, |e| e.t_ms),
            label: step.label.clone(),
            action: step.action,
            healed: end.is_some(),
        });
    }
    out
}
