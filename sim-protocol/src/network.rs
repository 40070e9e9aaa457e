//! The network model between peers: one-way latency per link drawn from the scenario's
//! distributions, and the link faults in force (partitions both and one way, holds).
//!
//! Latency is drawn as turmoil 0.7 draws it, so both tiers see the same distribution:
//! `min + (max − min) · X` with `X ~ Exp(curve)`, capped at `max`. Faults are kept as
//! directed pairs `(from, to)`; a fault on every link (`a` empty) is one flag.

use std::collections::{BTreeMap, BTreeSet};

use sim::plan::{FaultStep, PeerIdx, Plan};
use sim::rng::Stream;
use sim::scenario::{FaultAction, LatencyModel};

/// Latency and faults of every link.
#[derive(Debug)]
pub(crate) struct Network {
    latency: LatencyModel,
    /// `[[network.link]]` latencies, by ordered pair.
    configured: BTreeMap<(PeerIdx, PeerIdx), LatencyModel>,
    /// Latencies set by a `latency` fault, by ordered pair.
    changed: BTreeMap<(PeerIdx, PeerIdx), LatencyModel>,
    /// A `latency` fault on every link.
    changed_all: Option<LatencyModel>,
    /// Directed pairs cut by a partition.
    cut: BTreeSet<(PeerIdx, PeerIdx)>,
    cut_all: bool,
    /// Directed pairs whose messages are held.
    held: BTreeSet<(PeerIdx, PeerIdx)>,
    held_all: bool,
    rng: Stream,
}

fn ordered(a: PeerIdx, b: PeerIdx) -> (PeerIdx, PeerIdx) {
    (a.min(b), a.max(b))
}

impl Network {
    pub(crate) fn new(plan: &Plan) -> Self {
        let mut configured = BTreeMap::new();
        for link in &plan.network.links {
            let Some(model) = link.latency else { continue };
            for a in &link.a {
                for b in link.b.iter().filter(|b| *b != a) {
                    configured.insert(ordered(*a, *b), model);
                }
            }
        }
        Self {
            latency: plan.network.latency,
            configured,
            changed: BTreeMap::new(),
            changed_all: None,
            cut: BTreeSet::new(),
            cut_all: false,
            held: BTreeSet::new(),
            held_all: false,
            rng: sim::rng::stream(plan.seed, "protocol/latency", 0),
        }
    }

    /// Whether messages from `from` to `to` are stopped (cut or held).
    pub(crate) fn blocked(&self, from: PeerIdx, to: PeerIdx) -> bool {
        self.cut_all
            || self.held_all
            || self.cut.contains(&(from, to))
            || self.held.contains(&(from, to))
    }

    /// Whether `from` can reach `to` and back (a dial needs both).
    pub(crate) fn reachable(&self, from: PeerIdx, to: PeerIdx) -> bool {
        !self.blocked(from, to) && !self.blocked(to, from)
    }

    fn model(&self, a: PeerIdx, b: PeerIdx) -> LatencyModel {
        let pair = ordered(a, b);
        self.changed
            .get(&pair)
            .copied()
            .or(self.changed_all)
            .or_else(|| self.configured.get(&pair).copied())
            .unwrap_or(self.latency)
    }

    /// One draw of the one-way latency between `a` and `b`, ms.
    pub(crate) fn latency_ms(&mut self, a: PeerIdx, b: PeerIdx) -> u64 {
        let model = self.model(a, b);
        let range = model.max_ms.saturating_sub(model.min_ms);
        if range == 0 {
            return model.min_ms;
        }
        let curve = if model.curve > 0.0 { model.curve } else { 1.0 };
        let exp = -self.rng.unit_open().ln() / curve;
        #[expect(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "latencies are far below 2^53 ms; the product is non-negative"
        )]
        let extra = ((range as f64) * exp) as u64;
        model.min_ms + extra.min(range)
    }

    /// Applies a link fault; returns whether messages may flow again somewhere (heal,
    /// release), so that held directions are resumed. Faults on peers are not for here.
    pub(crate) fn apply(&mut self, step: &FaultStep) -> bool {
        let pairs = || {
            step.a.iter().flat_map(|a| {
                step.b
                    .iter()
                    .filter(move |b| *b != a)
                    .map(move |b| (*a, *b))
            })
        };
        let every = step.a.is_empty();
        match step.action {
            FaultAction::Partition | FaultAction::OneWay | FaultAction::Hold => {
                let both = step.action != FaultAction::OneWay;
                let (set, all) = if step.action == FaultAction::Hold {
                    (&mut self.held, &mut self.held_all)
                } else {
                    (&mut self.cut, &mut self.cut_all)
                };
                *all |= every;
                for (a, b) in pairs() {
                    set.insert((a, b));
                    if both {
                        set.insert((b, a));
                    }
                }
                false
            }
            FaultAction::Heal | FaultAction::Release => {
                let (set, all) = if step.action == FaultAction::Release {
                    (&mut self.held, &mut self.held_all)
                } else {
                    (&mut self.cut, &mut self.cut_all)
                };
                if every {
                    *all = false;
                    set.clear();
                }
                for (a, b) in pairs() {
                    set.remove(&(a, b));
                    set.remove(&(b, a));
                }
                true
            }
            FaultAction::Latency => {
                if every {
                    self.changed.clear();
                    self.changed_all = step.latency;
                }
                for (a, b) in pairs() {
                    match step.latency {
                        Some(model) => self.changed.insert(ordered(a, b), model),
                        None => self.changed.remove(&ordered(a, b)),
                    };
                }
                false
            }
            FaultAction::Loss | FaultAction::Break | FaultAction::Crash | FaultAction::Restart => {
                false
            }
        }
    }
}
