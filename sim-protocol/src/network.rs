//! The network model between peers: one-way latency per link drawn from the scenario's
//! distributions, and the link faults in force (partitions both and one way, holds).
//!
//! Bandwidth (`network.bandwidth`, per pair from `[[network.link]]`) is looked up here and
//! applied by the pipes (`crate::bandwidth`).
//!
//! Latency is drawn as turmoil 0.7 draws it, so both tiers see the same distribution:
//! `min + (max − min) · X` with `X ~ Exp(curve)`, capped at `max`. Faults are kept as the
//! peer sets their steps name ([`LinkRules`]: the newest step covering a directed pair
//! decides); a fault on every link (`a` empty) is one flag.

use std::collections::BTreeMap;

use sim::plan::{FaultStep, PeerIdx, Plan};
use sim::rng::Stream;
use sim::scenario::{FaultAction, LatencyModel};

use crate::link_rules::LinkRules;

/// Latency and faults of every link.
#[derive(Debug)]
pub(crate) struct Network {
    latency: LatencyModel,
    /// `[[network.link]]` latencies, by ordered pair.
    configured: BTreeMap<(PeerIdx, PeerIdx), LatencyModel>,
    /// Bandwidth of every link direction unless configured per pair, bytes/s.
    bandwidth: Option<u64>,
    /// `[[network.link]]` bandwidths, by ordered pair.
    configured_bandwidth: BTreeMap<(PeerIdx, PeerIdx), u64>,
    /// Latencies set (`Some`) or restored (`None`) by `latency` faults on some links.
    changed: LinkRules<Option<LatencyModel>>,
    /// A `latency` fault on every link.
    changed_all: Option<LatencyModel>,
    /// Links cut by partitions (`true`) or healed (`false`).
    cut: LinkRules<bool>,
    cut_all: bool,
    /// Links whose messages are held (`true`) or released (`false`).
    held: LinkRules<bool>,
    held_all: bool,
    /// Loss: `network.fail_rate`, `[[network.link]]` rates by ordered pair, and `loss`
    /// faults (`Some` sets, `None` restores the configured rate).
    fail_rate: f64,
    configured_loss: BTreeMap<(PeerIdx, PeerIdx), f64>,
    loss: LinkRules<Option<f64>>,
    loss_all: Option<f64>,
    /// `break` faults: the chance that a message resets its connection.
    breaks: LinkRules<Option<f64>>,
    break_all: Option<f64>,
    rng: Stream,
    /// Loss and break draws, a stream of their own so that a plan without them draws its
    /// latencies as before.
    loss_rng: Stream,
}

fn ordered(a: PeerIdx, b: PeerIdx) -> (PeerIdx, PeerIdx) {
    (a.min(b), a.max(b))
}

impl Network {
    pub(crate) fn new(plan: &Plan) -> Self {
        let mut configured = BTreeMap::new();
        let mut configured_bandwidth = BTreeMap::new();
        let mut configured_loss = BTreeMap::new();
        for link in &plan.network.links {
            for a in &link.a {
                for b in link.b.iter().filter(|b| *b != a) {
                    if let Some(model) = link.latency {
                        configured.insert(ordered(*a, *b), model);
                    }
                    if let Some(rate) = link.bandwidth_bytes_per_s {
                        configured_bandwidth.insert(ordered(*a, *b), rate);
                    }
                    if let Some(rate) = link.fail_rate {
                        configured_loss.insert(ordered(*a, *b), rate);
                    }
                }
            }
        }
        Self {
            latency: plan.network.latency,
            configured,
            bandwidth: plan.network.bandwidth_bytes_per_s,
            configured_bandwidth,
            changed: LinkRules::default(),
            changed_all: None,
            cut: LinkRules::default(),
            cut_all: false,
            held: LinkRules::default(),
            held_all: false,
            fail_rate: plan.network.fail_rate,
            configured_loss,
            loss: LinkRules::default(),
            loss_all: None,
            breaks: LinkRules::default(),
            break_all: None,
            rng: sim::rng::stream(plan.seed, "protocol/latency", 0),
            loss_rng: sim::rng::stream(plan.seed, "protocol/loss", 0),
        }
    }

    /// Whether messages from `from` to `to` are stopped (cut or held).
    pub(crate) fn blocked(&self, from: PeerIdx, to: PeerIdx) -> bool {
        self.cut_all
            || self.held_all
            || self.cut.get(from, to) == Some(true)
            || self.held.get(from, to) == Some(true)
    }

    /// Whether `from` can reach `to` and back (a dial needs both).
    pub(crate) fn reachable(&self, from: PeerIdx, to: PeerIdx) -> bool {
        !self.blocked(from, to) && !self.blocked(to, from)
    }

    /// Whether any link has a bandwidth (else queues are always empty and not measured).
    pub(crate) fn limits_bandwidth(&self) -> bool {
        self.bandwidth.is_some() || !self.configured_bandwidth.is_empty()
    }

    /// The bandwidth of each direction between `a` and `b`, bytes/s (`None`: unlimited).
    pub(crate) fn bandwidth(&self, a: PeerIdx, b: PeerIdx) -> Option<u64> {
        if self.configured_bandwidth.is_empty() {
            return self.bandwidth;
        }
        self.configured_bandwidth
            .get(&ordered(a, b))
            .copied()
            .or(self.bandwidth)
    }

    /// The extra delay loss puts on one message from `a` to `b`, ms: TCP resends a lost
    /// segment after a retransmission timeout, doubling it on each further loss (`crate::loss`).
    pub(crate) fn loss_delay_ms(&mut self, a: PeerIdx, b: PeerIdx) -> u64 {
        let rate = self
            .loss
            .get(a, b)
            .flatten()
            .or(self.loss_all)
            .or_else(|| self.configured_loss.get(&ordered(a, b)).copied())
            .unwrap_or(self.fail_rate);
        if rate <= 0.0 {
            return 0;
        }
        let rto_ms = crate::loss::retransmission_timeout_ms(self.model(a, b).max_ms);
        crate::loss::resend_delay_ms(rate, rto_ms, &mut self.loss_rng)
    }

    /// Whether one message from `a` to `b` resets its connection (a `break` in force).
    pub(crate) fn breaks_connection(&mut self, a: PeerIdx, b: PeerIdx) -> bool {
        let rate = self
            .breaks
            .get(a, b)
            .flatten()
            .or(self.break_all)
            .unwrap_or(0.0);
        rate > 0.0 && self.loss_rng.unit_open() < rate
    }

    fn model(&self, a: PeerIdx, b: PeerIdx) -> LatencyModel {
        let pair = ordered(a, b);
        self.changed
            .get(a, b)
            .flatten()
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
        let every = step.a.is_empty();
        let (a, b) = (step.a.as_slice(), step.b.as_slice());
        match step.action {
            FaultAction::Partition | FaultAction::OneWay | FaultAction::Hold => {
                let both_ways = step.action != FaultAction::OneWay;
                let (rules, all) = if step.action == FaultAction::Hold {
                    (&mut self.held, &mut self.held_all)
                } else {
                    (&mut self.cut, &mut self.cut_all)
                };
                *all |= every;
                rules.push(a, b, both_ways, true);
                false
            }
            FaultAction::Heal | FaultAction::Release => {
                let (rules, all) = if step.action == FaultAction::Release {
                    (&mut self.held, &mut self.held_all)
                } else {
                    (&mut self.cut, &mut self.cut_all)
                };
                if every {
                    *all = false;
                    rules.clear();
                }
                rules.push(a, b, true, false);
                true
            }
            FaultAction::Latency => {
                if every {
                    self.changed.clear();
                    self.changed_all = step.latency;
                }
                self.changed.push(a, b, true, step.latency);
                false
            }
            FaultAction::Loss => {
                if every {
                    self.loss.clear();
                    self.loss_all = step.fail_rate;
                }
                self.loss.push(a, b, true, step.fail_rate);
                false
            }
            FaultAction::Break => {
                if every {
                    self.breaks.clear();
                    self.break_all = step.break_rate;
                }
                self.breaks.push(a, b, true, step.break_rate);
                false
            }
            FaultAction::Crash | FaultAction::Restart => false,
        }
    }
}
