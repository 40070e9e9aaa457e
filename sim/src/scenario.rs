//! The scenario file (TOML): what the simulated network looks like, who follows whom, what
//! gets published, which faults happen when, and what is checked. `docs/scenarios.md`
//! documents every field.
//!
//! [`Scenario::load`] parses and validates; every error names the file, the line and the
//! field (`scenarios/x.toml:12:9: group[1].count: must be > 0`). Unknown fields are errors.
//! Validation covers every range and cross-reference, so [`crate::plan::Plan::build`] cannot
//! fail on a loaded scenario.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dist::{BytesQ, Dist, DurationQ, RateQ};
use crate::goal::{FeedKind, Follow, Goal, Rule};
use crate::units::Millis;

/// The name of the set feed every peer writes its follows to (conductor's `follows@set`).
pub const FOLLOWS_FEED: &str = "follows";
/// The largest peer count a scenario may ask for. Stock turmoil is O(N³) per tick; past
/// about 100 peers raise the tick (docs/scenarios.md).
pub const PEERS_MAX: u32 = 1_000;

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
    /// The file it was loaded from, as given (for the repro line).
    #[serde(skip)]
    pub source: PathBuf,
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
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Leaf => "leaf",
            Role::Hub => "hub",
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
            Role::Hub => Vec::new(),
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
            Role::Leaf => Follow::None,
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
    /// Change `fail_rate` on links between `a` and `b` (default: every link).
    Loss,
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
}

fn default_converge() -> Millis {
    Millis(60_000)
}

impl Default for Check {
    fn default() -> Self {
        Check {
            converge_within: default_converge(),
            safety: true,
            liveness: true,
            exact: false,
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
}

// ---------------------------------------------------------------------------------------
// Errors

/// A scenario that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Bad TOML, an unknown field or a bad value.
    #[error("{path}:{line}:{column}: {field}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The field path, e.g. `group[1].count` (`(document)` for syntax errors).
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl ScenarioError {
    /// The field path, for `Invalid` errors.
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        match self {
            ScenarioError::Invalid { field, .. } => Some(field),
            ScenarioError::Io { .. } => None,
        }
    }

    /// The 1-based line, for `Invalid` errors.
    #[must_use]
    pub fn line(&self) -> Option<usize> {
        match self {
            ScenarioError::Invalid { line, .. } => Some(*line),
            ScenarioError::Io { .. } => None,
        }
    }
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A field path, e.g. `group[1].count`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    fn key(mut self, key: &str) -> FieldPath {
        self.0.push(Seg::Key(key.to_owned()));
        self
    }
    fn index(mut self, index: usize) -> FieldPath {
        self.0.push(Seg::Index(index));
        self
    }
}

fn at(key: &str) -> FieldPath {
    FieldPath::default().key(key)
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Seg::Key(key) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// A validation problem before it is located in the text.
#[derive(Debug, Clone)]
struct Issue {
    path: FieldPath,
    message: String,
}

fn issue(path: FieldPath, message: impl Into<String>) -> Issue {
    Issue {
        path,
        message: message.into(),
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text
        .get(line_start..offset)
        .map_or(1, |s| s.chars().count() + 1);
    (line, column)
}

/// The byte span of a field path in the document, or of its nearest ancestor that exists.
fn locate(text: &str, path: &FieldPath) -> Option<std::ops::Range<usize>> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut best: Option<std::ops::Range<usize>> = None;
    let mut table: Option<&toml::de::DeTable<'_>> = Some(root.get_ref());
    let mut value: Option<&toml::Spanned<toml::de::DeValue<'_>>> = None;
    for seg in &path.0 {
        match seg {
            Seg::Key(key) => {
                let current = match value {
                    Some(v) => v.get_ref().as_table(),
                    None => table,
                };
                let Some(current) = current else { break };
                let Some((found_key, found)) = current
                    .iter()
                    .find(|(k, _)| k.get_ref().as_ref() == key.as_str())
                else {
                    break;
                };
                // Point at the key: its line is where a reader looks.
                best = Some(found_key.span());
                value = Some(found);
                table = None;
            }
            Seg::Index(index) => {
                let Some(array) = value.and_then(|v| v.get_ref().as_array()) else {
                    break;
                };
                let Some(item) = array.get(*index) else {
                    break;
                };
                let span = item.span();
                // An array-of-tables entry spans its keys; a zero span means "unknown".
                if span.end > span.start {
                    best = Some(span);
                } else if let Some(first_key) = item
                    .get_ref()
                    .as_table()
                    .and_then(|t| t.iter().map(|(k, _)| k.span()).min_by_key(|s| s.start))
                {
                    best = Some(first_key);
                }
                value = Some(item);
            }
        }
    }
    best
}

fn located(path: &Path, text: &str, issue: &Issue) -> ScenarioError {
    let span = locate(text, &issue.path);
    let (line, column) = span.map_or((1, 1), |s| line_column(text, s.start));
    ScenarioError::Invalid {
        path: path.display().to_string(),
        line,
        column,
        field: issue.path.to_string(),
        message: issue.message.clone(),
    }
}

// ---------------------------------------------------------------------------------------
// Loading

impl Scenario {
    /// Reads, parses and validates a scenario file.
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file, line and field.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::parse(&text, path)
    }

    /// Parses and validates scenario text; `path` is used in errors and the repro line.
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file, line and field.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let deserializer = toml::Deserializer::parse(text).map_err(|error| {
            let (line, column) = error.span().map_or((1, 1), |s| line_column(text, s.start));
            ScenarioError::Invalid {
                path: path.display().to_string(),
                line,
                column,
                field: "(document)".to_owned(),
                message: error.message().trim().to_owned(),
            }
        })?;
        let mut scenario: Scenario = serde_path_to_error::deserialize(deserializer)
            .map_err(|error| serde_error(path, text, &error))?;
        scenario.source = path.to_path_buf();
        if let Some(problem) = scenario.validate().into_iter().next() {
            return Err(located(path, text, &problem));
        }
        Ok(scenario)
    }
}

fn serde_error(
    path: &Path,
    text: &str,
    error: &serde_path_to_error::Error<toml::de::Error>,
) -> ScenarioError {
    let inner = error.inner();
    let message = inner.message().trim().to_owned();
    let mut field = error.path().to_string();
    // Name the field itself when serde reports it at its parent (missing fields).
    for prefix in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((name, _)) = rest.split_once('`')
        {
            let already = field == name || field.ends_with(&format!(".{name}"));
            if !already {
                field = if field == "." {
                    name.to_owned()
                } else {
                    format!("{field}.{name}")
                };
            }
        }
    }
    if field == "." {
        field = "(document)".to_owned();
    }
    let (line, column) = inner.span().map_or((1, 1), |s| line_column(text, s.start));
    ScenarioError::Invalid {
        path: path.display().to_string(),
        line,
        column,
        field,
        message,
    }
}

// ---------------------------------------------------------------------------------------
// Validation

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

fn probability(value: f64) -> bool {
    value.is_finite() && (0.0..=1.0).contains(&value)
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

    /// Every problem found, in document order (the first one is reported).
    fn validate(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        self.validate_top(&mut issues);
        self.validate_network(&mut issues);
        self.validate_groups(&mut issues);
        if issues.is_empty() {
            self.validate_topology(&mut issues);
            self.validate_churn(&mut issues);
            self.validate_workload(&mut issues);
            self.validate_faults(&mut issues);
            self.validate_check(&mut issues);
        }
        issues
    }

    fn validate_top(&self, issues: &mut Vec<Issue>) {
        if !valid_name(&self.name) {
            issues.push(issue(
                at("name"),
                "must be non-empty letters, digits, `-`, `_` or `.` (it names the output directory)",
            ));
        }
        if self.duration.ms() == 0 {
            issues.push(issue(at("duration"), "must be > 0"));
        }
        if self.tick.ms() == 0 || self.tick.ms() > 1_000 {
            issues.push(issue(at("tick"), "must be between 1ms and 1s"));
        } else if self.tick > self.duration {
            issues.push(issue(at("tick"), "must not exceed `duration`"));
        }
        if let Some(interval) = self.report.sample_interval
            && (interval < self.tick || interval > self.duration)
        {
            issues.push(issue(
                at("report").key("sample_interval"),
                "must be between `tick` and `duration`",
            ));
        }
    }

    fn validate_latency(
        latency: &Latency,
        path: &FieldPath,
        is_override: bool,
        issues: &mut Vec<Issue>,
    ) {
        if latency.fixed.is_some() {
            for (name, present) in [
                ("min", latency.min.is_some()),
                ("max", latency.max.is_some()),
                ("curve", latency.curve.is_some()),
            ] {
                if present {
                    issues.push(issue(
                        path.clone().key(name),
                        "cannot be combined with `fixed`",
                    ));
                }
            }
            return;
        }
        if is_override {
            if latency.min.is_some() {
                issues.push(issue(
                    path.clone().key("min"),
                    "turmoil cannot set a per-link minimum; override `max` or `fixed`",
                ));
            }
            if latency.curve.is_some() {
                issues.push(issue(
                    path.clone().key("curve"),
                    "turmoil's curve is global; set it in [network.latency]",
                ));
            }
            if latency.max.is_none() {
                issues.push(issue(path.clone(), "give `max` or `fixed`"));
            }
            return;
        }
        if let Some(curve) = latency.curve
            && !(curve.is_finite() && curve > 0.0)
        {
            issues.push(issue(path.clone().key("curve"), "must be > 0"));
        }
        let model = latency.model();
        if model.min_ms > model.max_ms {
            issues.push(issue(
                path.clone().key("max"),
                format!("must be ≥ min ({}ms), got {}ms", model.min_ms, model.max_ms),
            ));
        }
    }

    fn validate_network(&self, issues: &mut Vec<Issue>) {
        let network = at("network");
        Self::validate_latency(
            &self.network.latency,
            &network.clone().key("latency"),
            false,
            issues,
        );
        if !probability(self.network.fail_rate) {
            issues.push(issue(network.clone().key("fail_rate"), "must be in [0, 1]"));
        }
        if !probability(self.network.repair_rate) {
            issues.push(issue(
                network.clone().key("repair_rate"),
                "must be in [0, 1]",
            ));
        }
        let base = self.network.latency.model();
        for (i, link) in self.network.links.iter().enumerate() {
            let path = network.clone().key("link").index(i);
            for (j, name) in link.between.iter().enumerate() {
                if self.group(name).is_none() {
                    issues.push(issue(
                        path.clone().key("between").index(j),
                        format!("no group named `{name}`"),
                    ));
                }
            }
            if let Some(latency) = &link.latency {
                Self::validate_latency(latency, &path.clone().key("latency"), true, issues);
                if let Some(max) = latency.max
                    && max.ms() < base.min_ms
                {
                    issues.push(issue(
                        path.clone().key("latency").key("max"),
                        format!("must be ≥ the global min ({}ms)", base.min_ms),
                    ));
                }
            }
            if let Some(rate) = link.fail_rate
                && !probability(rate)
            {
                issues.push(issue(path.clone().key("fail_rate"), "must be in [0, 1]"));
            }
            if link.latency.is_none() && link.fail_rate.is_none() {
                issues.push(issue(path, "give `latency` or `fail_rate` (or both)"));
            }
        }
    }

    fn validate_groups(&self, issues: &mut Vec<Issue>) {
        if self.groups.is_empty() {
            issues.push(issue(at("group"), "at least one [[group]] is needed"));
            return;
        }
        let mut seen = BTreeSet::new();
        for (i, group) in self.groups.iter().enumerate() {
            let path = at("group").index(i);
            if !valid_name(&group.name) || group.name.contains('.') {
                issues.push(issue(
                    path.clone().key("name"),
                    "must be non-empty letters, digits, `-` or `_`",
                ));
            }
            if group.name == "*" || group.name.starts_with("random") {
                issues.push(issue(
                    path.clone().key("name"),
                    "is reserved for fault selectors",
                ));
            }
            if !seen.insert(group.name.clone()) {
                issues.push(issue(
                    path.clone().key("name"),
                    format!("group `{}` is defined twice", group.name),
                ));
            }
            if group.count == 0 {
                issues.push(issue(path.clone().key("count"), "must be > 0"));
            }
            if let Some(groups) = &group.follow_groups {
                for (j, name) in groups.iter().enumerate() {
                    if self.group(name).is_none() {
                        issues.push(issue(
                            path.clone().key("follow_groups").index(j),
                            format!("no group named `{name}`"),
                        ));
                    }
                }
            }
            let kinds = self.feed_kinds();
            for (field, rules) in [
                ("goals", &group.goals),
                ("follow_goals", &group.follow_goals),
            ] {
                let Some(rules) = rules else { continue };
                let mut feeds = BTreeSet::new();
                for (j, rule) in rules.iter().enumerate() {
                    let rule_path = path.clone().key(field).index(j);
                    if !feeds.insert(rule.feed.clone()) {
                        issues.push(issue(
                            rule_path.clone(),
                            format!("feed `{}` has two rules", rule.feed),
                        ));
                    }
                    let kind = kinds.get(&rule.feed);
                    let mismatch = matches!(
                        (kind, rule.goal),
                        (
                            Some(FeedKind::Set),
                            Goal::Dict | Goal::All | Goal::Newest(_)
                        ) | (
                            Some(FeedKind::Dict),
                            Goal::Set | Goal::All | Goal::Newest(_)
                        ) | (Some(FeedKind::Feed), Goal::Set | Goal::Dict)
                    );
                    if mismatch && let Some(kind) = kind {
                        let expected = match kind {
                            FeedKind::Set => "set",
                            FeedKind::Dict => "dict",
                            FeedKind::Feed => "all, newest-N or none",
                        };
                        issues.push(issue(
                            rule_path,
                            format!(
                                "`{rule}` does not match the feed: `{}` is written as a {} feed, so use {expected}",
                                rule.feed,
                                match kind {
                                    FeedKind::Set => "set",
                                    FeedKind::Dict => "dict",
                                    FeedKind::Feed => "plain",
                                }
                            ),
                        ));
                    }
                }
            }
        }
        let total: u64 = self.groups.iter().map(|g| u64::from(g.count)).sum();
        if total > u64::from(PEERS_MAX) {
            issues.push(issue(
                at("group"),
                format!("{total} peers in total; at most {PEERS_MAX}"),
            ));
        }
    }

    /// Peer names: `<group>-<i>`.
    fn peer_names(&self) -> BTreeSet<String> {
        self.groups
            .iter()
            .flat_map(|g| (0..g.count).map(move |i| format!("{}-{i}", g.name)))
            .collect()
    }

    fn validate_topology(&self, issues: &mut Vec<Issue>) {
        let topo = &self.topology;
        let path = at("topology");
        let n = self.peer_count();
        let unused = |name: &str, present: bool, issues: &mut Vec<Issue>| {
            if present {
                issues.push(issue(
                    path.clone().key(name),
                    format!(
                        "is not used by kind `{}`",
                        serde_json::to_value(topo.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    ),
                ));
            }
        };
        let kind = topo.kind;
        unused(
            "degree",
            topo.degree.is_some() && kind != TopologyKind::RandomRegular,
            issues,
        );
        unused(
            "k",
            topo.k.is_some() && kind != TopologyKind::SmallWorld,
            issues,
        );
        unused(
            "beta",
            topo.beta.is_some() && kind != TopologyKind::SmallWorld,
            issues,
        );
        unused(
            "hub_links",
            topo.hub_links.is_some() && kind != TopologyKind::HubAndSpoke,
            issues,
        );
        unused(
            "edges",
            topo.edges.is_some() && kind != TopologyKind::Edges,
            issues,
        );
        match kind {
            TopologyKind::RandomRegular => match topo.degree {
                None => issues.push(issue(path.clone(), "random-regular needs `degree`")),
                Some(d) if d == 0 || d >= n => issues.push(issue(
                    path.clone().key("degree"),
                    format!("must be between 1 and peers − 1 ({})", n.saturating_sub(1)),
                )),
                Some(d) if (u64::from(d) * u64::from(n)) % 2 == 1 => issues.push(issue(
                    path.clone().key("degree"),
                    format!("degree × peers must be even ({d} × {n} is odd)"),
                )),
                Some(_) => {}
            },
            TopologyKind::SmallWorld => {
                match topo.k {
                    None => issues.push(issue(path.clone(), "small-world needs `k`")),
                    Some(k) if k < 2 || k % 2 == 1 || k >= n => issues.push(issue(
                        path.clone().key("k"),
                        format!("must be even, ≥ 2 and < peers ({n})"),
                    )),
                    Some(_) => {}
                }
                match topo.beta {
                    None => issues.push(issue(path.clone(), "small-world needs `beta`")),
                    Some(beta) if !probability(beta) => {
                        issues.push(issue(path.clone().key("beta"), "must be in [0, 1]"));
                    }
                    Some(_) => {}
                }
            }
            TopologyKind::HubAndSpoke => {
                let hubs: u32 = self
                    .groups
                    .iter()
                    .filter(|g| g.role == Role::Hub)
                    .map(|g| g.count)
                    .sum();
                if hubs == 0 {
                    issues.push(issue(
                        path.clone().key("kind"),
                        "hub-and-spoke needs a group with role = \"hub\"",
                    ));
                } else if hubs == n {
                    issues.push(issue(
                        path.clone().key("kind"),
                        "hub-and-spoke needs at least one non-hub group",
                    ));
                }
                if let Some(links) = topo.hub_links
                    && (links == 0 || links > hubs)
                {
                    issues.push(issue(
                        path.clone().key("hub_links"),
                        format!("must be between 1 and the number of hubs ({hubs})"),
                    ));
                }
            }
            TopologyKind::Full => {}
            TopologyKind::Edges => {
                let names = self.peer_names();
                match &topo.edges {
                    None => issues.push(issue(path.clone(), "kind `edges` needs `edges`")),
                    Some(edges) => {
                        for (i, [a, b]) in edges.iter().enumerate() {
                            for (j, name) in [a, b].into_iter().enumerate() {
                                if !names.contains(name) {
                                    issues.push(issue(
                                        path.clone().key("edges").index(i).index(j),
                                        format!("no peer named `{name}` (peers are <group>-<i>)"),
                                    ));
                                }
                            }
                            if a == b {
                                issues.push(issue(
                                    path.clone().key("edges").index(i),
                                    "an edge needs two different peers",
                                ));
                            }
                        }
                    }
                }
            }
        }
    }

    fn validate_churn(&self, issues: &mut Vec<Issue>) {
        for (name, churn) in &self.churn {
            let path = at("churn").key(name);
            if self.group(name).is_none() {
                issues.push(issue(path.clone(), format!("no group named `{name}`")));
            }
            let until = churn.until.unwrap_or(self.duration);
            if until > self.duration {
                issues.push(issue(
                    path.clone().key("until"),
                    "must not exceed `duration`",
                ));
            }
            if churn.start >= until {
                issues.push(issue(path.clone().key("start"), "must be before `until`"));
            }
            for (field, dist) in [("online", &churn.online), ("offline", &churn.offline)] {
                if dist.shape.mean().is_none_or(|m| m <= 0.0) {
                    issues.push(issue(
                        path.clone().key(field),
                        "needs a positive, finite mean",
                    ));
                }
            }
        }
    }

    fn validate_workload(&self, issues: &mut Vec<Issue>) {
        let workload = &self.workload;
        let path = at("workload");
        if let Some(groups) = &workload.groups {
            for (i, name) in groups.iter().enumerate() {
                match self.group(name) {
                    None => issues.push(issue(
                        path.clone().key("groups").index(i),
                        format!("no group named `{name}`"),
                    )),
                    Some(group) if group.role == Role::Hub => issues.push(issue(
                        path.clone().key("groups").index(i),
                        format!("`{name}` is a hub group; hubs have no account and do not publish"),
                    )),
                    Some(_) => {}
                }
            }
        }
        let stop = self.workload_stop();
        if stop > self.duration {
            issues.push(issue(
                path.clone().key("stop"),
                "must not exceed `duration`",
            ));
        }
        if workload.start >= stop {
            issues.push(issue(path.clone().key("start"), "must be before `stop`"));
        }
        let mut feeds: BTreeMap<String, &'static str> = BTreeMap::new();
        let mut feed_name = |feed: &str, field: &'static str, issues: &mut Vec<Issue>| {
            let feed_path = path.clone().key(field).key("feed");
            if Rule::parse(&format!("{feed}@all")).is_err() {
                issues.push(issue(
                    feed_path.clone(),
                    "must be lowercase letters, digits, `_` or `-`",
                ));
            }
            if feed == FOLLOWS_FEED {
                issues.push(issue(
                    feed_path.clone(),
                    "`follows` is written from the follow graph at bootstrap; pick another name",
                ));
            }
            if let Some(other) = feeds.insert(feed.to_owned(), field) {
                issues.push(issue(
                    feed_path,
                    format!("feed `{feed}` is also written by [workload.{other}]"),
                ));
            }
        };
        if let Some(post) = &workload.post {
            feed_name(&post.feed, "post", issues);
            if !probability(post.posters) {
                issues.push(issue(
                    path.clone().key("post").key("posters"),
                    "must be in [0, 1]",
                ));
            }
            if post.size.shape.mean().is_none_or(|m| m < 1.0) {
                issues.push(issue(
                    path.clone().key("post").key("size"),
                    "needs a mean of at least 1B",
                ));
            }
        }
        if let Some(dict) = &workload.dict {
            feed_name(&dict.feed, "dict", issues);
            let dict_path = path.clone().key("dict");
            if dict.fields.is_empty() {
                issues.push(issue(
                    dict_path.clone().key("fields"),
                    "needs at least one field",
                ));
            }
            let distinct: BTreeSet<&String> = dict.fields.iter().collect();
            if distinct.len() != dict.fields.len() {
                issues.push(issue(
                    dict_path.clone().key("fields"),
                    "fields must be distinct",
                ));
            }
            let count = u32::try_from(dict.fields.len()).unwrap_or(u32::MAX);
            if dict.fields_per_update == 0 || dict.fields_per_update > count {
                issues.push(issue(
                    dict_path.key("fields_per_update"),
                    format!("must be between 1 and the number of fields ({count})"),
                ));
            }
        }
        if let Some(set) = &workload.set {
            feed_name(&set.feed, "set", issues);
            if !probability(set.delete) {
                issues.push(issue(
                    path.clone().key("set").key("delete"),
                    "must be in [0, 1]",
                ));
            }
            if set.items == 0 {
                issues.push(issue(path.clone().key("set").key("items"), "must be > 0"));
            }
        }
    }

    /// Checks a selector's syntax and names (random picks happen in the plan).
    fn validate_selector(&self, selector: &str, path: FieldPath, issues: &mut Vec<Issue>) {
        if selector == "*" || self.group(selector).is_some() || self.peer_names().contains(selector)
        {
            return;
        }
        if let Some(inner) = selector
            .strip_prefix("random(")
            .and_then(|rest| rest.strip_suffix(')'))
        {
            let mut parts = inner.split(',').map(str::trim);
            let count = parts.next().and_then(|c| c.parse::<u32>().ok());
            let group = parts.next();
            let pool = match group {
                Some(name) => match self.group(name) {
                    Some(g) => g.count,
                    None => {
                        issues.push(issue(path, format!("no group named `{name}`")));
                        return;
                    }
                },
                None => self.peer_count(),
            };
            match count {
                Some(c) if c > 0 && c <= pool && parts.next().is_none() => {}
                _ => issues.push(issue(
                    path,
                    format!(
                        "`{selector}`: write random(N) or random(N, group) with 1 ≤ N ≤ {pool}"
                    ),
                )),
            }
            return;
        }
        issues.push(issue(
            path,
            format!(
                "`{selector}` is not a group, a peer (<group>-<i>), `*`, random(N) or random(N, group)"
            ),
        ));
    }

    fn validate_faults(&self, issues: &mut Vec<Issue>) {
        let mut previous_at = Millis(0);
        for (i, fault) in self.faults.iter().enumerate() {
            let path = at("fault").index(i);
            if fault.at > self.duration {
                issues.push(issue(path.clone().key("at"), "must not exceed `duration`"));
            }
            if fault.at < previous_at {
                issues.push(issue(
                    path.clone().key("at"),
                    format!(
                        "faults must be listed in time order; the previous one is at {previous_at}"
                    ),
                ));
            }
            previous_at = fault.at;
            if let Some(duration) = fault.duration {
                if duration.ms() == 0 {
                    issues.push(issue(path.clone().key("duration"), "must be > 0"));
                }
                if fault.at.ms() + duration.ms() > self.duration.ms() {
                    issues.push(issue(
                        path.clone().key("duration"),
                        "the fault must end before the run does",
                    ));
                }
                if matches!(
                    fault.action,
                    FaultAction::Heal | FaultAction::Restart | FaultAction::Release
                ) {
                    issues.push(issue(
                        path.clone().key("duration"),
                        format!("`{}` is an undo; it takes no duration", fault.action),
                    ));
                }
            }
            let uses_links = matches!(
                fault.action,
                FaultAction::Partition
                    | FaultAction::OneWay
                    | FaultAction::Heal
                    | FaultAction::Latency
                    | FaultAction::Loss
                    | FaultAction::Hold
                    | FaultAction::Release
            );
            let needs_a = matches!(
                fault.action,
                FaultAction::Partition | FaultAction::OneWay | FaultAction::Hold
            );
            let action = fault.action;
            let not_used = |field: &str, issues: &mut Vec<Issue>| {
                issues.push(issue(
                    path.clone().key(field),
                    format!("is not used by action `{action}`"),
                ));
            };
            if uses_links {
                if fault.peers.is_some() {
                    not_used("peers", issues);
                }
                if needs_a && fault.a.is_none() {
                    issues.push(issue(
                        path.clone(),
                        format!("`{action}` needs `a` (and optionally `b`)"),
                    ));
                }
                if fault.b.is_some() && fault.a.is_none() {
                    issues.push(issue(path.clone().key("b"), "`b` needs `a`"));
                }
            } else {
                if fault.a.is_some() {
                    not_used("a", issues);
                }
                if fault.b.is_some() {
                    not_used("b", issues);
                }
                if fault.peers.is_none() {
                    issues.push(issue(path.clone(), format!("`{action}` needs `peers`")));
                }
            }
            for (field, list) in [("a", &fault.a), ("b", &fault.b), ("peers", &fault.peers)] {
                if let Some(list) = list {
                    if list.is_empty() {
                        issues.push(issue(path.clone().key(field), "must not be empty"));
                    }
                    for (j, selector) in list.iter().enumerate() {
                        self.validate_selector(selector, path.clone().key(field).index(j), issues);
                    }
                }
            }
            match fault.action {
                FaultAction::Latency => match &fault.latency {
                    None => issues.push(issue(path.clone(), "`latency` needs `latency`")),
                    Some(latency) => {
                        let on_all_links = fault.a.is_none();
                        Self::validate_latency(
                            latency,
                            &path.clone().key("latency"),
                            !on_all_links,
                            issues,
                        );
                    }
                },
                _ if fault.latency.is_some() => not_used("latency", issues),
                _ => {}
            }
            match fault.action {
                FaultAction::Loss => match fault.fail_rate {
                    None => issues.push(issue(path.clone(), "`loss` needs `fail_rate`")),
                    Some(rate) if !probability(rate) => {
                        issues.push(issue(path.clone().key("fail_rate"), "must be in [0, 1]"));
                    }
                    Some(_) => {}
                },
                _ if fault.fail_rate.is_some() => not_used("fail_rate", issues),
                _ => {}
            }
        }
    }

    fn validate_check(&self, issues: &mut Vec<Issue>) {
        let check = &self.check;
        if check.converge_within.ms() == 0 {
            issues.push(issue(at("check").key("converge_within"), "must be > 0"));
        }
        if check.liveness {
            let quiet = self.quiet_from();
            let deadline = quiet.ms() + check.converge_within.ms();
            if deadline > self.duration.ms() {
                issues.push(issue(
                    at("check").key("converge_within"),
                    format!(
                        "the liveness deadline ({quiet} when faults and churn end + {} = {}) is past the end of the run ({}); lengthen `duration`, shorten this, end churn earlier (`until`) or set liveness = false",
                        check.converge_within,
                        Millis(deadline),
                        self.duration
                    ),
                ));
            }
        }
    }
}
