//! Checkers, in VOPR's two phases.
//!
//! **Safety** (the whole run, faults included): no invalid msg stored (`Invalid` events), no
//! store of a msg nobody published, no msg stored twice without being removed in between, no
//! msg ID published twice, events in time order, no author losing its own published msgs
//! (its goal `all` yet GC removed one, or — with final snapshots — one missing from its store),
//! and with snapshots: every tangle's msgs in the same relative order at every peer, root
//! first, no duplicates.
//!
//! **Liveness** (after the last fault ends and churn stops, at `deadline = quiet_from +
//! converge_within`): every peer holds every msg its goals want at the deadline among msgs
//! published before `quiet_from`. Peers down at the deadline are exempt, and so are msgs whose
//! author is down then. With `exact`, holding msgs the goals do not want also fails.
//!
//! **Delivery** (the whole run, faults included; [`delivery`]): every wanted msg reaches every
//! interested peer within `deliver_within` of its publication wherever a fault-free path of
//! up, interested peers joins them.
//!
//! A failed run prints one line that reproduces it ([`repro_line`]).

pub mod delivery;
mod spans;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use self::delivery::{DeliveryReport, EXAMPLES_KEPT_MAX};
pub use self::spans::Spans;
use self::spans::in_spans;
use crate::interest::{Interest, MsgInfo};
use crate::plan::{PeerIdx, Plan};
use crate::units::format_ms;
use proto::goals::Goal;

/// Violations kept in the report (the count covers all).
pub const VIOLATIONS_KEPT_MAX: usize = 50;

/// A peer's final holdings, for the snapshot-based checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// Tangle ID → msg IDs in the peer's topological order (root first).
    pub tangles: BTreeMap<String, Vec<String>>,
}

impl Holdings {
    /// Every msg ID held, in any tangle.
    #[must_use]
    pub fn msgs(&self) -> BTreeSet<&str> {
        self.tangles
            .values()
            .flat_map(|ids| ids.iter().map(String::as_str))
            .collect()
    }
}

impl From<&proto::ingest::Snapshot> for Holdings {
    fn from(snapshot: &proto::ingest::Snapshot) -> Holdings {
        Holdings {
            tangles: snapshot.tangles.clone(),
        }
    }
}

/// Kinds of safety violations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationKind {
    /// A peer stored a msg that fails validation.
    InvalidStored,
    /// A peer stored a msg no one published.
    StoredUnknown,
    /// A peer stored a msg it already held.
    DoubleStore,
    /// The same msg ID was published twice.
    DoublePublish,
    /// An author lost one of its own published msgs.
    LostOwn,
    /// Peers disagree on the order of a tangle's msgs, or a tangle list is malformed.
    TangleOrder,
    /// Events went back in time.
    TimeOrder,
    /// The runner reported an error of its own.
    RunnerError,
}

/// One safety violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// When (ms).
    pub t_ms: u64,
    /// What.
    pub kind: ViolationKind,
    /// Where (peer name).
    pub peer: Option<String>,
    /// Which msg.
    pub msg: Option<String>,
    /// Details.
    pub detail: String,
}

impl Violation {
    /// One line.
    #[must_use]
    pub fn line(&self) -> String {
        let kind = serde_json::to_value(self.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        format!(
            "{kind} at {}{}{}: {}",
            format_ms(self.t_ms),
            self.peer
                .as_ref()
                .map(|p| format!(" on {p}"))
                .unwrap_or_default(),
            self.msg
                .as_ref()
                .map(|m| format!(" msg {m}"))
                .unwrap_or_default(),
            self.detail
        )
    }
}

/// Safety results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SafetyReport {
    /// Whether safety was checked.
    pub enabled: bool,
    /// No violations (true when disabled).
    pub passed: bool,
    /// All violations found.
    pub violation_count: u64,
    /// The first [`VIOLATIONS_KEPT_MAX`].
    pub violations: Vec<Violation>,
}

/// Liveness results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LivenessReport {
    /// Whether liveness was asked for.
    pub enabled: bool,
    /// Whether it could be checked (the deadline lies within the run).
    pub checked: bool,
    /// Passed (true when disabled or not checked).
    pub passed: bool,
    /// When the last fault ended and churn stopped.
    pub quiet_from_ms: u64,
    /// The check instant.
    pub deadline_ms: u64,
    /// Pairs checked.
    pub wanted: u64,
    /// Of those, not held at the deadline.
    pub missing: u64,
    /// Pairs exempt because the peer or the author was down.
    pub exempt: u64,
    /// (peer, msg) held at the deadline that the peer's goals do not want (authors excluded).
    pub over_held: u64,
    /// Whether over-holding fails the check.
    pub exact: bool,
    /// The first [`EXAMPLES_KEPT_MAX`] missing pairs, as sentences.
    pub examples: Vec<String>,
    /// Why it was not checked, if it was not.
    pub note: Option<String>,
}

/// Every check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Safety, liveness and delivery all passed.
    pub passed: bool,
    /// Safety.
    pub safety: SafetyReport,
    /// Liveness.
    pub liveness: LivenessReport,
    /// Steady-state delivery (absent from reports written before it existed).
    #[serde(default)]
    pub delivery: DeliveryReport,
}

impl CheckReport {
    /// A one-line summary of the first failure, if any.
    #[must_use]
    pub fn first_failure(&self) -> Option<String> {
        if !self.safety.passed {
            return Some(format!(
                "safety: {} violation(s); first: {}",
                self.safety.violation_count,
                self.safety
                    .violations
                    .first()
                    .map(Violation::line)
                    .unwrap_or_default()
            ));
        }
        if !self.liveness.passed {
            let live = &self.liveness;
            let mut line = format!(
                "liveness: {} of {} wanted (peer, msg) pairs missing at {}",
                live.missing,
                live.wanted,
                format_ms(live.deadline_ms)
            );
            if live.exact && live.over_held > 0 {
                line.push_str(&format!("; {} held but not wanted", live.over_held));
            }
            if let Some(first) = live.examples.first() {
                line.push_str(&format!("; first: {first}"));
            }
            return Some(line);
        }
        if !self.delivery.passed {
            let delivery = &self.delivery;
            let mut line = format!(
                "delivery: {} of {} (peer, msg) pairs with a fault-free path not stored within {}",
                delivery.missing,
                delivery.judged,
                format_ms(delivery.deliver_within_ms)
            );
            if let Some(first) = delivery.examples.first() {
                line.push_str(&format!("; first: {first}"));
            }
            return Some(line);
        }
        None
    }
}

/// The line that reproduces a run.
#[must_use]
pub fn repro_line(
    scenario_path: &str,
    seed: u64,
    (engine, substrate): (&str, Option<&str>),
    commit: Option<&str>,
) -> String {
    let mut line = format!("ppppp-sim run {scenario_path} --seed {seed} --engine {engine}");
    if let Some(substrate) = substrate {
        line.push_str(&format!(" --substrate {substrate}"));
    }
    if let Some(commit) = commit {
        line.push_str(&format!("  # commit {commit}"));
    }
    line
}

/// What the checkers read.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// Who wants what.
    pub interest: &'a Interest,
    /// (peer, msg index) → held intervals.
    pub held: &'a BTreeMap<(PeerIdx, usize), Spans>,
    /// Violations found while streaming.
    pub streamed: Vec<Violation>,
    /// Final holdings, where the runner gave them.
    pub snapshots: &'a BTreeMap<PeerIdx, Holdings>,
    /// Peer → intervals during which it was down (crashed or offline).
    pub down: &'a BTreeMap<PeerIdx, Spans>,
    /// End of the run.
    pub end_ms: u64,
}

/// Runs both phases.
#[must_use]
pub fn run(inputs: &Inputs<'_>) -> CheckReport {
    let safety = safety(inputs);
    let liveness = liveness(inputs);
    let delivery = delivery::check(&delivery::Inputs {
        plan: inputs.plan,
        interest: inputs.interest,
        held: inputs.held,
        down: inputs.down,
        end_ms: inputs.end_ms,
    });
    CheckReport {
        passed: safety.passed && liveness.passed && delivery.passed,
        safety,
        liveness,
        delivery,
    }
}

/// The checks the aggregated collector can run: safety on the violations it saw (streamed,
/// and the authors' losses); liveness and delivery need each pair's intervals and are
/// reported as not run.
#[must_use]
pub fn without_pairs(plan: &Plan, violations: Vec<Violation>) -> CheckReport {
    const NEEDS_PAIRS: &str =
        "not checked: needs the per-pair collector ([report] collector = \"per-pair\")";
    let check = &plan.check;
    let safety = if check.safety {
        safety_report(violations)
    } else {
        SafetyReport {
            enabled: false,
            passed: true,
            violation_count: 0,
            violations: Vec::new(),
        }
    };
    let liveness = LivenessReport {
        enabled: check.liveness,
        passed: true,
        quiet_from_ms: check.quiet_from_ms,
        deadline_ms: check.deadline_ms,
        exact: check.exact,
        note: check.liveness.then(|| NEEDS_PAIRS.to_owned()),
        ..LivenessReport::default()
    };
    let delivery = DeliveryReport {
        enabled: check.delivery,
        passed: true,
        deliver_within_ms: check.deliver_within_ms,
        note: check.delivery.then(|| NEEDS_PAIRS.to_owned()),
        ..DeliveryReport::default()
    };
    CheckReport {
        passed: safety.passed,
        safety,
        liveness,
        delivery,
    }
}

fn own_goal(plan: &Plan, owner: PeerIdx, feed: &str) -> Option<Goal> {
    plan.peers.get(owner as usize).and_then(|peer| {
        peer.goals
            .iter()
            .find(|g| g.account == owner && g.rule.feed == feed)
            .map(|g| g.rule.goal)
    })
}

fn safety(inputs: &Inputs<'_>) -> SafetyReport {
    let plan = inputs.plan;
    if !plan.check.safety {
        return SafetyReport {
            enabled: false,
            passed: true,
            violation_count: 0,
            violations: Vec::new(),
        };
    }
    let mut violations = inputs.streamed.clone();
    for (index, msg) in inputs.interest.msgs().iter().enumerate() {
        let spans = inputs
            .held
            .get(&(msg.owner, index))
            .map_or(&[][..], Vec::as_slice);
        let removed = spans.iter().find_map(|(_, end)| *end);
        let missing_at_end = removed.is_none()
            && inputs
                .snapshots
                .get(&msg.owner)
                .is_some_and(|holdings| !holdings.msgs().contains(msg.id.as_str()));
        violations.extend(lost_own(plan, msg, removed, missing_at_end, inputs.end_ms));
    }
    violations.extend(tangle_order(inputs));
    safety_report(violations)
}

/// An author's losses of its own msg: GC removed it (first at `removed`) although its goal
/// for the feed is `all`, or, never removed, it is missing from the author's final store.
#[must_use]
pub fn lost_own(
    plan: &Plan,
    msg: &MsgInfo,
    removed: Option<u64>,
    missing_at_end: bool,
    end_ms: u64,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    if let Some(t) = removed
        && own_goal(plan, msg.owner, &msg.feed) == Some(Goal::All)
    {
        violations.push(Violation {
            t_ms: t,
            kind: ViolationKind::LostOwn,
            peer: Some(plan.peer_name(msg.owner).to_owned()),
            msg: Some(msg.id.clone()),
            detail: format!(
                "GC removed the author's own msg although its goal for `{}` is `all`",
                msg.feed
            ),
        });
    }
    if removed.is_none() && missing_at_end {
        violations.push(Violation {
            t_ms: end_ms,
            kind: ViolationKind::LostOwn,
            peer: Some(plan.peer_name(msg.owner).to_owned()),
            msg: Some(msg.id.clone()),
            detail: format!(
                "published at {} but missing from the author's final store",
                format_ms(msg.t_ms)
            ),
        });
    }
    violations
}

/// The report of `violations`: sorted by time and kind, the first kept.
#[must_use]
pub fn safety_report(mut violations: Vec<Violation>) -> SafetyReport {
    violations.sort_by_key(|v| (v.t_ms, v.kind));
    let count = violations.len() as u64;
    violations.truncate(VIOLATIONS_KEPT_MAX);
    SafetyReport {
        enabled: true,
        passed: count == 0,
        violation_count: count,
        violations,
    }
}

/// Every tangle must be ordered the same way at every peer (on the msgs they share), start
/// with its root where the root is held, and list no msg twice.
fn tangle_order(inputs: &Inputs<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut by_tangle: BTreeMap<&str, Vec<(PeerIdx, &Vec<String>)>> = BTreeMap::new();
    for (peer, holdings) in inputs.snapshots {
        for (tangle, ids) in &holdings.tangles {
            by_tangle.entry(tangle).or_default().push((*peer, ids));
        }
    }
    for (tangle, lists) in by_tangle {
        // The longest list is the reference order the others are compared with.
        let mut reference: Option<(PeerIdx, &Vec<String>)> = None;
        for &(peer, ids) in &lists {
            out.extend(list_violations(inputs, tangle, peer, ids));
            if reference.is_none_or(|(_, r)| ids.len() > r.len()) {
                reference = Some((peer, ids));
            }
        }
        if let Some(reference) = reference {
            out.extend(order_violations(inputs, tangle, reference, &lists));
        }
    }
    out
}

/// One peer's list of a tangle: no msg twice, the root first where it is held.
fn list_violations(
    inputs: &Inputs<'_>,
    tangle: &str,
    peer: PeerIdx,
    ids: &[String],
) -> Vec<Violation> {
    let mut out = Vec::new();
    let name = inputs.plan.peer_name(peer).to_owned();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    if distinct.len() != ids.len() {
        out.push(Violation {
            t_ms: inputs.end_ms,
            kind: ViolationKind::TangleOrder,
            peer: Some(name.clone()),
            msg: None,
            detail: format!("tangle {tangle} lists a msg twice"),
        });
    }
    if ids.iter().any(|id| id == tangle) && ids.first().map(String::as_str) != Some(tangle) {
        out.push(Violation {
            t_ms: inputs.end_ms,
            kind: ViolationKind::TangleOrder,
            peer: Some(name),
            msg: Some(tangle.to_owned()),
            detail: format!("tangle {tangle} does not start with its root"),
        });
    }
    out
}

/// Every peer's list in the reference's order, on the msgs they share (the first
/// disagreement per peer).
fn order_violations(
    inputs: &Inputs<'_>,
    tangle: &str,
    (reference_peer, reference_ids): (PeerIdx, &Vec<String>),
    lists: &[(PeerIdx, &Vec<String>)],
) -> Vec<Violation> {
    let plan = inputs.plan;
    let mut out = Vec::new();
    let position: BTreeMap<&str, usize> = reference_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    for (peer, ids) in lists {
        let mut last: Option<(usize, &str)> = None;
        for id in ids.iter() {
            let Some(&p) = position.get(id.as_str()) else {
                continue;
            };
            if let Some((previous, previous_id)) = last
                && p <= previous
            {
                out.push(Violation {
                    t_ms: inputs.end_ms,
                    kind: ViolationKind::TangleOrder,
                    peer: Some(plan.peer_name(*peer).to_owned()),
                    msg: Some(id.clone()),
                    detail: format!(
                        "tangle {tangle}: {id} comes after {previous_id} here but before it at {}",
                        plan.peer_name(reference_peer)
                    ),
                });
                break;
            }
            last = Some((p, id));
        }
    }
    out
}

/// Msgs held at `deadline` by a peer (not their author) whose goals do not want them then.
fn over_held(inputs: &Inputs<'_>, deadline: u64) -> u64 {
    let interest = inputs.interest;
    let mut count = 0;
    for ((peer, index), spans) in inputs.held {
        let Some(msg) = interest.msgs().get(*index) else {
            continue;
        };
        if msg.owner == *peer || !in_spans(spans, deadline) {
            continue;
        }
        if !interest.wants_at(*peer, *index, deadline) {
            count += 1;
        }
    }
    count
}

fn liveness(inputs: &Inputs<'_>) -> LivenessReport {
    let plan = inputs.plan;
    let check = &plan.check;
    let mut report = LivenessReport {
        enabled: check.liveness,
        checked: false,
        passed: true,
        quiet_from_ms: check.quiet_from_ms,
        deadline_ms: check.deadline_ms,
        exact: check.exact,
        ..LivenessReport::default()
    };
    if !check.liveness {
        return report;
    }
    let deadline = check.deadline_ms;
    if deadline > inputs.end_ms {
        report.note = Some(format!(
            "not checked: the deadline {} is past the end of the run {}",
            format_ms(deadline),
            format_ms(inputs.end_ms)
        ));
        return report;
    }
    report.checked = true;
    let down_at = |peer: PeerIdx| {
        inputs
            .down
            .get(&peer)
            .is_some_and(|spans| in_spans(spans, deadline))
    };
    let interest = inputs.interest;
    for want in interest.wants() {
        if !want.at(deadline) || want.from_ms > check.quiet_from_ms {
            continue;
        }
        let Some(msg) = interest.msgs().get(want.msg) else {
            continue;
        };
        if down_at(want.peer) || down_at(msg.owner) {
            report.exempt += 1;
            continue;
        }
        report.wanted += 1;
        let held = inputs
            .held
            .get(&(want.peer, want.msg))
            .is_some_and(|spans| in_spans(spans, deadline));
        if !held {
            report.missing += 1;
            if report.examples.len() < EXAMPLES_KEPT_MAX {
                report.examples.push(format!(
                    "{} lacks {} (published by {} at {})",
                    plan.peer_name(want.peer),
                    msg.id,
                    plan.peer_name(msg.owner),
                    format_ms(msg.t_ms)
                ));
            }
        }
    }
    report.over_held = over_held(inputs, deadline);
    report.passed = report.missing == 0 && !(check.exact && report.over_held > 0);
    report
}
