//! The fault schedule: each `[[fault]]` with its selectors drawn, plus its automatic undo
//! when it has a `duration`; and the intervals during which faults are in force.

use std::collections::BTreeSet;

use super::{FaultInterval, FaultStep, GroupPlan, LinkFault, PeerIdx, PeerPlan, Plan};
use crate::rng::{Stream, stream};
use crate::scenario::{Fault, FaultAction, LatencyModel, Scenario};

/// Who a selector can name.
#[derive(Debug, Clone, Copy)]
pub(super) struct Population<'a> {
    pub(super) peers: &'a [PeerPlan],
    pub(super) groups: &'a [GroupPlan],
}

/// Every fault action, automatic undos included, sorted by time, then listing order, an
/// action before its own undo.
pub(super) fn schedule(
    scenario: &Scenario,
    seed: u64,
    population: Population<'_>,
) -> Vec<FaultStep> {
    let base = scenario.network.latency.model();
    let mut steps: Vec<(u64, usize, bool, FaultStep)> = Vec::new();
    for (i, fault) in scenario.faults.iter().enumerate() {
        let mut rng = stream(seed, "fault", i as u64);
        let (a, b, peers) = population.targets(fault, &mut rng);
        let step = FaultStep {
            t_ms: fault.at.ms(),
            fault: i,
            action: fault.action,
            undo: false,
            label: fault.label.clone().unwrap_or_else(|| default_label(fault)),
            a,
            b,
            peers,
            latency: latency(fault, base),
            fail_rate: fault.fail_rate,
            break_rate: fault.break_rate,
        };
        let undo = undo_of(fault, &step);
        steps.push((fault.at.ms(), i, false, step));
        if let Some(undo) = undo {
            steps.push((undo.t_ms, i, true, undo));
        }
    }
    steps.sort_by_key(|(t, i, undo, _)| (*t, *i, *undo));
    steps.into_iter().map(|(_, _, _, step)| step).collect()
}

impl Population<'_> {
    fn group_peers(&self, name: &str) -> Vec<PeerIdx> {
        self.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.peers.clone())
            .unwrap_or_default()
    }

    /// A fault's `a`, `b` (default: everyone not in `a`) and `peers`, drawn in that order.
    fn targets(
        &self,
        fault: &Fault,
        rng: &mut Stream,
    ) -> (Vec<PeerIdx>, Vec<PeerIdx>, Vec<PeerIdx>) {
        let a = fault
            .a
            .as_ref()
            .map(|s| self.select(s, rng))
            .unwrap_or_default();
        let b = match (&fault.a, &fault.b) {
            (Some(_), Some(selectors)) => self.select(selectors, rng),
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
            .map(|s| self.select(s, rng))
            .unwrap_or_default();
        (a, b, peers)
    }

    /// The peers `selectors` name (`*`, a group, a peer, `random(N)`, `random(N, group)`; N
    /// may be a percentage of the pool),
    /// sorted and without repeats.
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
                let count_text = parts.next().unwrap_or("1");
                let pool: Vec<PeerIdx> = match parts.next() {
                    Some(group) => self.group_peers(group),
                    None => self.peers.iter().map(|p| p.index).collect(),
                };
                let pool_len = u32::try_from(pool.len()).unwrap_or(u32::MAX);
                let count =
                    crate::scenario::random_count(count_text, pool_len).map_or(1, |c| c as usize);
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
}

/// `partition a / b`, `crash peers`: the action and the selectors as written.
fn default_label(fault: &Fault) -> String {
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
}

/// A latency fault's model. On every link (no `a`), `{ min, max, curve }` replaces the global
/// model; a `{ max }` or `{ fixed }` anywhere applies over it.
fn latency(fault: &Fault, base: LatencyModel) -> Option<LatencyModel> {
    fault.latency.as_ref().map(|l| {
        if fault.a.is_none() {
            if l.fixed.is_some() || l.max.is_some() && l.min.is_none() {
                l.model_over(base)
            } else {
                l.model()
            }
        } else {
            l.model_over(base)
        }
    })
}

/// The automatic undo of a fault with a `duration`: heal, restart, release, or the
/// configured latency or loss back.
fn undo_of(fault: &Fault, step: &FaultStep) -> Option<FaultStep> {
    let duration = fault.duration?;
    let action = match fault.action {
        FaultAction::Partition | FaultAction::OneWay => FaultAction::Heal,
        FaultAction::Crash => FaultAction::Restart,
        FaultAction::Hold => FaultAction::Release,
        other => other,
    };
    Some(FaultStep {
        t_ms: fault.at.ms() + duration.ms(),
        fault: step.fault,
        action,
        undo: true,
        label: format!("end of {}", step.label),
        a: step.a.clone(),
        b: step.b.clone(),
        peers: step.peers.clone(),
        latency: None,
        fail_rate: None,
        break_rate: None,
    })
}

/// The actions that end a fault begun by `step`; `None` for actions that begin nothing.
fn ending_actions(step: &FaultStep) -> Option<&'static [FaultAction]> {
    Some(match step.action {
        FaultAction::Partition | FaultAction::OneWay => &[FaultAction::Heal],
        FaultAction::Hold => &[FaultAction::Release],
        FaultAction::Crash => &[FaultAction::Restart],
        FaultAction::Latency if step.latency.is_some() => &[FaultAction::Latency],
        FaultAction::Loss if step.fail_rate.is_some() => &[FaultAction::Loss],
        FaultAction::Break if step.break_rate.is_some() => &[FaultAction::Break],
        _ => return None,
    })
}

/// The first later step that ends `steps[i]` (one of `ends`, touching a peer it touched, or
/// applying to everyone), if any.
fn end_of<'a>(steps: &'a [FaultStep], i: usize, ends: &[FaultAction]) -> Option<&'a FaultStep> {
    let step = &steps[i];
    let touched: BTreeSet<PeerIdx> = step
        .a
        .iter()
        .chain(&step.b)
        .chain(&step.peers)
        .copied()
        .collect();
    steps.iter().skip(i + 1).find(|later| {
        ends.contains(&later.action)
            && (later.a.is_empty() && later.peers.is_empty()
                || later
                    .a
                    .iter()
                    .chain(&later.b)
                    .chain(&later.peers)
                    .any(|p| touched.contains(p))
                || touched.is_empty())
    })
}

/// Pairs each fault with whatever ends it.
pub(super) fn intervals(steps: &[FaultStep], duration_ms: u64) -> Vec<FaultInterval> {
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let Some(ends) = ending_actions(step) else {
            continue;
        };
        let end = end_of(steps, i, ends);
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

impl Plan {
    /// The faults that disturb links (partitions both and one way, holds, latency changes,
    /// loss above zero), each with the links it covers and the interval it is in force.
    #[must_use]
    pub fn link_faults(&self) -> Vec<LinkFault> {
        link_faults(&self.faults, self.duration_ms)
    }
}

fn link_faults(steps: &[FaultStep], duration_ms: u64) -> Vec<LinkFault> {
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let disturbs = match step.action {
            FaultAction::Partition
            | FaultAction::OneWay
            | FaultAction::Hold
            | FaultAction::Latency => true,
            FaultAction::Loss => step.fail_rate.is_some_and(|rate| rate > 0.0),
            FaultAction::Break => step.break_rate.is_some_and(|rate| rate > 0.0),
            FaultAction::Heal
            | FaultAction::Crash
            | FaultAction::Restart
            | FaultAction::Release => false,
        };
        let Some(ends) = ending_actions(step).filter(|_| disturbs) else {
            continue;
        };
        out.push(LinkFault {
            start_ms: step.t_ms,
            end_ms: end_of(steps, i, ends).map_or(duration_ms, |e| e.t_ms),
            a: step.a.iter().copied().collect(),
            b: step.b.iter().copied().collect(),
        });
    }
    out
}
