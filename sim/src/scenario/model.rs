//! The scenario file's model: the TOML tables as serde types, their defaults, and the
//! questions the rest of the simulator asks of a scenario (peer count, quiet time, feed kinds).

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::dist::{BytesQ, Dist, DurationQ, RateQ};
use crate::goal::{FeedKind, Follow, Rule};
use crate::units::{Bandwidth, Millis};
use proto::goals::Goal;

/// The name of the set feed every peer writes its follows to (conductor's `follows@set`).
pub const FOLLOWS_FEED: &str = "follows";
/// The largest peer count a scenario may ask for: what the protocol tier reaches
/// (docs/simulation-performance.md). The full-stack tier is practical to about 1,000 peers
/// (stock turmoil is O(N³) per tick; past about 100 peers raise the tick or use the fabric
/// substrate, docs/scenarios.md).
pub const PEERS_MAX: u32 = 100_000;

/// A parsed and validated scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name; used for the default output directory `reports/<name>/`.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The default seed (`--seed` overrides it).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Simulated run time.
    pub duration: Millis,
    /// turmoil's tick (simulated time per step).
    #[serde(default = "default_tick")]
    pub tick: Millis,
    /// Transport between peers.
    #[serde(default)]
    pub transport: Transport,
    /// When sync sessions ask again for tangles they exchanged.
    #[serde(default)]
    pub reinitiation: Reinitiation,
    /// How peers sync with each other (full-stack engine; every peer is ppppp).
    #[serde(default)]
    pub sync: SyncMethod,
    /// The engine that runs it (`--engine` overrides it).
    #[serde(default)]
    pub engine: EngineKind,
    /// The network the full-stack engine's real peers run on (`--substrate` overrides it).
    #[serde(default, skip_serializing_if = "Substrate::is_default")]
    pub substrate: Substrate,
    /// Latency and loss.
    #[serde(default)]
    pub network: Network,
    /// Who connects to whom.
    pub topology: Topology,
    /// Peer groups, in order; peers are numbered group by group.
    #[serde(rename = "group")]
    pub groups: Vec<Group>,
    /// Per-group churn: group name → online/offline pattern.
    #[serde(default)]
    pub churn: BTreeMap<String, Churn>,
    /// What gets published.
    #[serde(default)]
    pub workload: Workload,
    /// The fault timeline.
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
    /// Safety and liveness checks.
    #[serde(default)]
    pub check: Check,
    /// Report options.
    #[serde(default)]
    pub report: ReportOptions,
    /// Sweep axes: scenario field path → the values it takes (`sim::matrix`). A single run
    /// uses the values written in the rest of the file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub matrix: BTreeMap<String, Vec<toml::Value>>,
    /// The file it was loaded from, as given (for the repro line).
    #[serde(skip)]
    pub source: PathBuf,
}

/// The simulator's engines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// Real nodes (actors, SHSE, muxrpc) on turmoil: the ground truth, up to about 100 peers.
    #[default]
    Fullstack,
    /// Discrete events over the pure machines: thousands of peers.
    Protocol,
}

impl EngineKind {
    /// The name in traces, reports and on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Fullstack => "fullstack",
            EngineKind::Protocol => "protocol",
        }
    }
}

/// The simulated network under the full-stack engine's real peers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Substrate {
    /// turmoil-net 0.1's socket stack moved by an event-driven loop: TCP with
    /// retransmission, so `loss` loses packets and connections survive.
    #[default]
    Fabric,
    /// turmoil 0.7: a tick-stepped world whose TCP never retransmits (`loss` breaks
    /// connections); kept for comparison.
    Turmoil,
    /// Reliable, ordered byte streams (no segments): each connection direction is a FIFO of
    /// the writes in flight, timed by the same link model, bounded by a 64 KiB window. Cheaper
    /// in memory than the fabric's socket buffers; no congestion control or segment loss shape.
    Streams,
}

impl Substrate {
    /// The name in traces, reports and on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Substrate::Fabric => "fabric",
            Substrate::Turmoil => "turmoil",
            Substrate::Streams => "streams",
        }
    }

    /// Whether this is the default (the fabric).
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == Substrate::default()
    }
}

fn default_seed() -> u64 {
    1
}
fn default_tick() -> Millis {
    Millis(1)
}
fn default_true() -> bool {
    true
}
fn default_one() -> f64 {
    1.0
}

/// The transport between peers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Length-prefixed frames, no encryption (cheaper; for protocol studies).
    Plaintext,
    /// Secret handshake + box stream, as the reference.
    #[default]
    Shse,
}

/// The sync machine's re-initiation policy (`proto::sync::Reinitiation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reinitiation {
    /// Ours: targeted re-initiation, owed and dirty tangles, fetch claims (the default).
    #[default]
    Targeted,
    /// pzp-sync 1.0.4's, exactly: every local add re-initiates every requested tangle. It has
    /// the relay hole and the storm; for comparison runs.
    Reference,
}

impl Reinitiation {
    /// Whether this is the default (left out of the plan's JSON, so plans of scenarios that
    /// do not set it hash as before).
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == Reinitiation::default()
    }
}

/// Which sync the peers run (`node::peer::NodeConfig::reconcile`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMethod {
    /// pzp-sync's `sync.connect` (the default).
    #[default]
    Connect,
    /// Dialers probe for `sync.reconcile` (docs/sync-extension.md); every simulated peer is
    /// ppppp, so every connection runs it. The full-stack engine only.
    Reconcile,
}

impl SyncMethod {
    /// Whether this is the default (left out of the plan's JSON: plans and traces of
    /// scenarios that do not set it stay as they were).
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == SyncMethod::default()
    }
}

/// Network model: turmoil's latency and loss.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Latency of every link unless overridden.
    #[serde(default)]
    pub latency: Latency,
    /// Per-send probability that a link fails (turmoil `fail_rate`). Over TCP a failed link is
    /// a broken connection, so this models connection breaks, not retransmissions.
    #[serde(default)]
    pub fail_rate: f64,
    /// Per-send probability that a failed link comes back (turmoil `repair_rate`).
    #[serde(default = "default_one")]
    pub repair_rate: f64,
    /// Bandwidth of each direction of every link unless overridden (`"1Mbit/s"`,
    /// `"125KB/s"`); absent: unlimited (no serialisation delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    /// Per-group-pair overrides.
    #[serde(default, rename = "link")]
    pub links: Vec<LinkOverride>,
}

/// Latency of a link: `{ min, max, curve }` (turmoil: min + (max−min)·Exp(curve), capped at
/// max) or `{ fixed }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Lower bound.
    pub min: Option<Millis>,
    /// Upper bound.
    pub max: Option<Millis>,
    /// λ of the exponential curve (turmoil's default 5: most messages near `min`).
    pub curve: Option<f64>,
    /// A constant latency (min = max).
    pub fixed: Option<Millis>,
}

/// Latency resolved to numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyModel {
    /// Lower bound, ms.
    pub min_ms: u64,
    /// Upper bound, ms.
    pub max_ms: u64,
    /// λ of the exponential curve.
    pub curve: f64,
}

/// Defaults when `[network.latency]` is absent.
pub const LATENCY_MIN_MS_DEFAULT: u64 = 5;
/// Defaults when `[network.latency]` is absent.
pub const LATENCY_MAX_MS_DEFAULT: u64 = 100;
/// turmoil's default λ.
pub const LATENCY_CURVE_DEFAULT: f64 = 5.0;

impl Latency {
    /// The global latency model.
    #[must_use]
    pub fn model(&self) -> LatencyModel {
        if let Some(fixed) = self.fixed {
            return LatencyModel {
                min_ms: fixed.ms(),
                max_ms: fixed.ms(),
                curve: LATENCY_CURVE_DEFAULT,
            };
        }
        LatencyModel {
            min_ms: self.min.map_or(LATENCY_MIN_MS_DEFAULT, Millis::ms),
            max_ms: self.max.map_or(LATENCY_MAX_MS_DEFAULT, Millis::ms),
            curve: self.curve.unwrap_or(LATENCY_CURVE_DEFAULT),
        }
    }

    /// An override applied on top of `base` (turmoil can set a link's max or a fixed latency,
    /// not a link's min or curve).
    #[must_use]
    pub fn model_over(&self, base: LatencyModel) -> LatencyModel {
        if let Some(fixed) = self.fixed {
            return LatencyModel {
                min_ms: fixed.ms(),
                max_ms: fixed.ms(),
                curve: base.curve,
            };
        }
        LatencyModel {
            min_ms: base.min_ms,
            max_ms: self.max.map_or(base.max_ms, Millis::ms),
            curve: base.curve,
        }
    }
}

/// Latency/loss for links between two groups.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkOverride {
    /// Two group names (may be the same group).
    pub between: [String; 2],
    /// `{ max }` or `{ fixed }`.
    pub latency: Option<Latency>,
    /// Loss on these links.
    pub fail_rate: Option<f64>,
    /// Bandwidth of each direction of these links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
}

/// Connection topology generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TopologyKind {
    /// Every peer has `degree` neighbours, chosen at random.
    RandomRegular,
    /// Watts–Strogatz: ring of `k` nearest neighbours, each edge rewired with probability `beta`.
    SmallWorld,
    /// Non-hub peers dial `hub_links` hubs (default: all); hubs are fully meshed.
    HubAndSpoke,
    /// Every pair.
    Full,
    /// Exactly the listed `edges`.
    Edges,
}

/// `[topology]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The generator.
    pub kind: TopologyKind,
    /// random-regular: neighbours per peer.
    pub degree: Option<u32>,
    /// small-world: ring neighbours per peer (even).
    pub k: Option<u32>,
    /// small-world: rewiring probability.
    pub beta: Option<f64>,
    /// hub-and-spoke: hubs each non-hub peer dials.
    pub hub_links: Option<u32>,
    /// edges: `[["dialer", "acceptor"], …]` by peer name.
    pub edges: Option<Vec<[String; 2]>>,
    /// Also dial every followed account (pzp-style tunnels to whom you follow).
    #[serde(default)]
    pub dial_follows: bool,
}

/// A peer's role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ordinary peer with an account: publishes, follows.
    #[default]
    Leaf,
    /// A relay (pub/room): publishes nothing, is dialed by leaves in hub-and-spoke.
    Hub,
    /// A hub as pzp names it (`ppppp hub`): holds no msgs, lists the peers that attend it and
    /// opens tunnels between them. Leaves in hub-and-spoke attend it instead of syncing with
    /// it. Full-stack engine only.
    #[serde(rename = "tunnel-hub")]
    TunnelHub,
}

impl Role {
    /// Whether leaves dial it in hub-and-spoke (a relay or a tunnel hub).
    #[must_use]
    pub fn is_hub(self) -> bool {
        matches!(self, Role::Hub | Role::TunnelHub)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Leaf => "leaf",
            Role::Hub => "hub",
            Role::TunnelHub => "tunnel-hub",
        })
    }
}

/// `[[group]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Group name; peers are named `<name>-<i>`.
    pub name: String,
    /// Number of peers.
    pub count: u32,
    /// Role.
    #[serde(default)]
    pub role: Role,
    /// Rules for the peer's own account (conductor's myRules). Default for leaves:
    /// `post@all`, `profile@dict`, `follows@set`; hubs: none.
    pub goals: Option<Vec<Rule>>,
    /// Rules for each followed account (conductor's theirRules). Default:
    /// `post@newest-100`, `profile@dict`, `follows@set`.
    pub follow_goals: Option<Vec<Rule>>,
    /// Whom each peer follows. Default: `none` for leaves, `all` for hubs.
    pub follow: Option<Follow>,
    /// Groups whose peers may be followed. Default: every group that publishes.
    pub follow_groups: Option<Vec<String>>,
    /// Behind a NAT: the peer does not listen, so no one can dial it; it reaches others only
    /// through the tunnel hubs it attends (hub-and-spoke with a `tunnel-hub` group).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nat: bool,
    /// Whom a tunnel hub admits: anyone (`open`, the default), or (`invites`) only its
    /// members, who join with an invite the hub made for each leaf attending it.
    #[serde(default, skip_serializing_if = "HubAdmission::is_open")]
    pub admission: HubAdmission,
}

/// Whom a tunnel hub admits (`[[group]] admission`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HubAdmission {
    /// Anyone (`ppppp hub --open`).
    #[default]
    Open,
    /// Members only (`ppppp hub`): each leaf attending the hub holds an invite the hub made
    /// (a one-time hub token in a pzp-invite URI) and joins with it.
    Invites,
}

impl HubAdmission {
    /// Whether anyone is admitted.
    #[must_use]
    pub fn is_open(&self) -> bool {
        *self == HubAdmission::Open
    }
}

impl Group {
    /// The own-account rules, defaults applied.
    #[must_use]
    pub fn own_rules(&self) -> Vec<Rule> {
        self.goals.clone().unwrap_or_else(|| match self.role {
            Role::Leaf => vec![
                rule("post", Goal::All),
                rule("profile", Goal::Dict),
                rule(FOLLOWS_FEED, Goal::Set),
            ],
            Role::Hub | Role::TunnelHub => Vec::new(),
        })
    }

    /// The followed-account rules, defaults applied.
    #[must_use]
    pub fn their_rules(&self) -> Vec<Rule> {
        self.follow_goals.clone().unwrap_or_else(|| {
            vec![
                rule("post", Goal::Newest(100)),
                rule("profile", Goal::Dict),
                rule(FOLLOWS_FEED, Goal::Set),
            ]
        })
    }

    /// The follow model, defaults applied.
    #[must_use]
    pub fn follow_model(&self) -> Follow {
        self.follow.clone().unwrap_or(match self.role {
            Role::Leaf | Role::TunnelHub => Follow::None,
            Role::Hub => Follow::All,
        })
    }
}

fn rule(feed: &str, goal: Goal) -> Rule {
    Rule {
        feed: feed.to_owned(),
        goal,
    }
}

/// Which state churned peers start in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Initially {
    /// Online with probability mean(online) / (mean(online) + mean(offline)).
    #[default]
    Random,
    /// Online.
    Online,
    /// Offline.
    Offline,
}

/// `[churn.<group>]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// How long a peer stays online each time.
    pub online: Dist<DurationQ>,
    /// How long a peer stays offline each time.
    pub offline: Dist<DurationQ>,
    /// When churn starts (before it, peers are online).
    #[serde(default)]
    pub start: Millis,
    /// When churn stops: every churned peer is online from then on (the liveness phase).
    /// Default: the end of the run.
    pub until: Option<Millis>,
    /// State at `start`.
    #[serde(default)]
    pub initially: Initially,
}

/// `[workload]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Groups whose peers publish. Default: every leaf group.
    pub groups: Option<Vec<String>>,
    /// When publishing starts (bootstrap msgs — initial follows, profile — are at 0s).
    #[serde(default)]
    pub start: Millis,
    /// When publishing stops. Default: the end of the run.
    pub stop: Option<Millis>,
    /// Posts.
    pub post: Option<PostLoad>,
    /// Dict updates.
    pub dict: Option<DictLoad>,
    /// Set updates.
    pub set: Option<SetLoad>,
}

/// `[workload.post]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostLoad {
    /// Feed name.
    #[serde(default = "default_post_feed")]
    pub feed: String,
    /// Per-account posting rate, drawn once per account (skewed: most post rarely).
    pub rate: Dist<RateQ>,
    /// Size of each post's data.
    pub size: Dist<BytesQ>,
    /// Fraction of accounts that post at all (the rest lurk).
    #[serde(default = "default_one")]
    pub posters: f64,
}

fn default_post_feed() -> String {
    "post".to_owned()
}

/// `[workload.dict]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DictLoad {
    /// Feed name.
    #[serde(default = "default_dict_feed")]
    pub feed: String,
    /// The dict's fields; the bootstrap msg sets them all.
    #[serde(default = "default_dict_fields")]
    pub fields: Vec<String>,
    /// Fields changed per update.
    #[serde(default = "default_one_u32")]
    pub fields_per_update: u32,
    /// Per-account update rate, drawn once per account.
    pub rate: Dist<RateQ>,
    /// Size of each field value.
    #[serde(default = "default_value_size")]
    pub value_size: Dist<BytesQ>,
}

fn default_dict_feed() -> String {
    "profile".to_owned()
}
fn default_dict_fields() -> Vec<String> {
    vec!["name".to_owned(), "about".to_owned(), "image".to_owned()]
}
fn default_one_u32() -> u32 {
    1
}
fn default_value_size() -> Dist<BytesQ> {
    Dist::parse("24B").expect("invariant: constant parses")
}

/// `[workload.set]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetLoad {
    /// Feed name (not `follows`: that one is written at bootstrap from the follow graph).
    #[serde(default = "default_set_feed")]
    pub feed: String,
    /// Per-account update rate, drawn once per account.
    pub rate: Dist<RateQ>,
    /// Probability that an update removes an item (when the set is not empty).
    #[serde(default = "default_delete")]
    pub delete: f64,
    /// Number of distinct items an account may add.
    #[serde(default = "default_items")]
    pub items: u32,
}

fn default_set_feed() -> String {
    "hashtags".to_owned()
}
fn default_delete() -> f64 {
    0.2
}
fn default_items() -> u32 {
    50
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultAction {
    /// Cut links between `a` and `b` both ways (turmoil `partition`).
    Partition,
    /// Cut links from `a` to `b` only (turmoil `partition_oneway`).
    OneWay,
    /// Repair links between `a` and `b` (default: every link).
    Heal,
    /// Crash `peers` (turmoil `crash`: in-memory state lost).
    Crash,
    /// Restart crashed `peers` (turmoil `bounce`).
    Restart,
    /// Change latency on links between `a` and `b` (default: every link).
    Latency,
    /// Change `fail_rate` on links between `a` and `b` (default: every link): packet loss.
    /// On the fabric substrate a lost packet is resent and connections survive; turmoil 0.7's
    /// TCP never resends, so there a loss breaks the connection (as `break` does).
    Loss,
    /// Change `break_rate` on links between `a` and `b` (default: every link): each packet
    /// that carries data breaks its connection with this chance (both ends are reset); the
    /// peers must redial. turmoil 0.7's `fail_rate` on the turmoil substrate.
    Break,
    /// Hold messages between `a` and `b` (turmoil `hold`).
    Hold,
    /// Release held messages (turmoil `release`).
    Release,
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultAction::Partition => "partition",
            FaultAction::OneWay => "one-way",
            FaultAction::Heal => "heal",
            FaultAction::Crash => "crash",
            FaultAction::Restart => "restart",
            FaultAction::Latency => "latency",
            FaultAction::Loss => "loss",
            FaultAction::Break => "break",
            FaultAction::Hold => "hold",
            FaultAction::Release => "release",
        })
    }
}

/// `[[fault]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// When.
    pub at: Millis,
    /// What.
    pub action: FaultAction,
    /// Link faults: one side (selectors: group, peer name, `random(N)`, `random(N, group)`, `*`).
    pub a: Option<Vec<String>>,
    /// Link faults: the other side (default: everyone not in `a`).
    pub b: Option<Vec<String>>,
    /// crash/restart: whom.
    pub peers: Option<Vec<String>>,
    /// Undo automatically after this long (partition/one-way → heal, crash → restart,
    /// hold → release, latency/loss → previous values).
    pub duration: Option<Millis>,
    /// latency: the new latency (`{ max }` or `{ fixed }`, or `{ min, max, curve }` for all links).
    pub latency: Option<Latency>,
    /// loss: the new fail rate.
    pub fail_rate: Option<f64>,
    /// break: the new break rate.
    pub break_rate: Option<f64>,
    /// A label for reports (default: the action).
    pub label: Option<String>,
}

/// `[check]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Liveness: after the last fault heals (and churn stops), every peer must hold what its
    /// goals imply within this long.
    #[serde(default = "default_converge")]
    pub converge_within: Millis,
    /// Run the safety checks.
    #[serde(default = "default_true")]
    pub safety: bool,
    /// Run the liveness check.
    #[serde(default = "default_true")]
    pub liveness: bool,
    /// Liveness also fails when a peer holds msgs its goals do not want.
    #[serde(default)]
    pub exact: bool,
    /// Run the steady-state delivery check.
    #[serde(default = "default_true")]
    pub delivery: bool,
    /// Delivery: a msg must reach every interested peer within this long of its publication
    /// wherever a fault-free path of interested peers joins them (see `check::delivery`).
    #[serde(default = "default_deliver")]
    pub deliver_within: Millis,
}

fn default_converge() -> Millis {
    Millis(60_000)
}

fn default_deliver() -> Millis {
    Millis(30_000)
}

impl Default for Check {
    fn default() -> Self {
        Check {
            converge_within: default_converge(),
            safety: true,
            liveness: true,
            exact: false,
            delivery: true,
            deliver_within: default_deliver(),
        }
    }
}

/// `[report]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportOptions {
    /// Convergence curve and bandwidth sampling interval. Default: duration/300, rounded up
    /// to a whole second (at least the tick).
    pub sample_interval: Option<Millis>,
    /// Latency CDF with a logarithmic x axis (default true).
    pub latency_log_x: Option<bool>,
    /// What the collector keeps (`--collector` overrides it): `per-pair` (the default) or
    /// `aggregated` (docs/simulation.md, "The aggregated collector").
    #[serde(default, skip_serializing_if = "CollectorMode::is_default")]
    pub collector: CollectorMode,
}

/// What the collector keeps of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CollectorMode {
    /// Held intervals per (peer, msg) pair: every metric and check. Memory grows with the
    /// pairs stored.
    #[default]
    PerPair,
    /// Counters per msg and per sample instead of per pair: memory grows with msgs, peers and
    /// samples, not with their product. The metrics and checks that need each pair's
    /// intervals are left out (docs/simulation.md lists them).
    Aggregated,
}

impl CollectorMode {
    /// The name in scenario files, reports and on the command line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            CollectorMode::PerPair => "per-pair",
            CollectorMode::Aggregated => "aggregated",
        }
    }

    /// Whether this is the default (left out of written scenarios and plans).
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == CollectorMode::default()
    }
}

impl Scenario {
    /// Total peers.
    #[must_use]
    pub fn peer_count(&self) -> u32 {
        self.groups.iter().map(|g| g.count).sum()
    }

    /// The group named `name`.
    #[must_use]
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Names of the groups whose peers publish.
    #[must_use]
    pub fn publishing_groups(&self) -> Vec<String> {
        match &self.workload.groups {
            Some(groups) => groups.clone(),
            None => self
                .groups
                .iter()
                .filter(|g| g.role == Role::Leaf)
                .map(|g| g.name.clone())
                .collect(),
        }
    }

    /// When publishing stops.
    #[must_use]
    pub fn workload_stop(&self) -> Millis {
        self.workload.stop.unwrap_or(self.duration)
    }

    /// The kind of each feed the workload writes.
    #[must_use]
    pub fn feed_kinds(&self) -> BTreeMap<String, FeedKind> {
        let mut kinds = BTreeMap::new();
        kinds.insert(FOLLOWS_FEED.to_owned(), FeedKind::Set);
        if let Some(post) = &self.workload.post {
            kinds.insert(post.feed.clone(), FeedKind::Feed);
        }
        if let Some(dict) = &self.workload.dict {
            kinds.insert(dict.feed.clone(), FeedKind::Dict);
        }
        if let Some(set) = &self.workload.set {
            kinds.insert(set.feed.clone(), FeedKind::Set);
        }
        kinds
    }

    /// The time after which no fault is active and churn has stopped: liveness starts here.
    /// Faults with a `duration` count at their end.
    #[must_use]
    pub fn quiet_from(&self) -> Millis {
        let faults = self
            .faults
            .iter()
            .map(|f| f.at.ms() + f.duration.map_or(0, Millis::ms))
            .max()
            .unwrap_or(0);
        let churn = self
            .churn
            .values()
            .map(|c| c.until.unwrap_or(self.duration).ms())
            .max()
            .unwrap_or(0);
        Millis(faults.max(churn))
    }

    /// Peer names: `<group>-<i>`.
    #[must_use]
    pub fn peer_names(&self) -> BTreeSet<String> {
        self.groups
            .iter()
            .flat_map(|g| (0..g.count).map(move |i| format!("{}-{i}", g.name)))
            .collect()
    }
}

/// The count of a `random(N, …)` selector's `N` over a pool of `pool` peers: a number, or a
/// percentage of the pool (`50%`, rounded up, at least 1) so a selector scales with the
/// group it picks from. `None` when `N` is neither.
#[must_use]
pub fn random_count(text: &str, pool: u32) -> Option<u32> {
    let text = text.trim();
    if let Some(percent) = text.strip_suffix('%') {
        let percent: f64 = percent.trim().parse().ok()?;
        if !(percent > 0.0 && percent <= 100.0) {
            return None;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "0 < percent ≤ 100 of a u32 pool"
        )]
        let count = (f64::from(pool) * percent / 100.0).ceil() as u32;
        return Some(count.max(1));
    }
    text.parse().ok()
}
