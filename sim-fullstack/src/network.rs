//! The turmoil network as the plan configures it, and the link faults applied to it; it
//! remembers the configured latency and loss of every link so faults can restore them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use sim::plan::{FaultStep, Plan};
use sim::scenario::{FaultAction, LatencyModel};

/// The turmoil network as configured, so faults can restore it.
pub(super) struct Network {
    pub(super) addresses: Vec<IpAddr>,
    pub(super) latency: LatencyModel,
    pub(super) fail_rate: f64,
    /// Link → configured latency (from `[[network.link]]`), by ordered address pair.
    pub(super) links: BTreeMap<(IpAddr, IpAddr), LatencyModel>,
    /// Link → configured fail rate.
    pub(super) link_fail: BTreeMap<(IpAddr, IpAddr), f64>,
}

fn ordered(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    (a.min(b), a.max(b))
}

impl Network {
    /// Applies `[[network.link]]` overrides (later ones win).
    pub(super) fn configure(&mut self, sim: &mut turmoil::Sim<'_>, plan: &Plan) {
        for link in &plan.network.links {
            for a in &link.a {
                for b in &link.b {
                    if a == b {
                        continue;
                    }
                    let (a, b) = (self.addresses[*a as usize], self.addresses[*b as usize]);
                    if let Some(model) = link.latency {
                        self.links.insert(ordered(a, b), model);
                        Network::set_latency(sim, a, b, model);
                    }
                    if let Some(rate) = link.fail_rate {
                        self.link_fail.insert(ordered(a, b), rate);
                        sim.set_link_fail_rate(a, b, rate);
                    }
                }
            }
        }
    }

    /// Applies a link fault (partition, one-way, heal, hold, release, latency, loss); `false`
    /// for a fault on peers (crash, restart), which the run applies.
    pub(super) fn apply(&self, sim: &mut turmoil::Sim<'_>, step: &FaultStep) -> bool {
        let pairs = self.pairs(step);
        match step.action {
            FaultAction::Partition => {
                for (a, b) in pairs {
                    sim.partition(a, b);
                }
            }
            FaultAction::OneWay => {
                for (a, b) in pairs {
                    sim.partition_oneway(a, b);
                }
            }
            FaultAction::Heal => {
                for (a, b) in pairs {
                    sim.repair(a, b);
                }
            }
            FaultAction::Hold => {
                for (a, b) in pairs {
                    sim.hold(a, b);
                }
            }
            FaultAction::Release => {
                for (a, b) in pairs {
                    sim.release(a, b);
                }
            }
            FaultAction::Latency => self.latency_fault(sim, step, pairs),
            // turmoil 0.7's TCP never resends: its fail rate breaks connections, so `loss` and
            // `break` are the same thing here.
            FaultAction::Loss | FaultAction::Break => {
                for (a, b) in pairs {
                    let rate = step
                        .fail_rate
                        .or(step.break_rate)
                        .unwrap_or_else(|| self.configured_fail(a, b));
                    sim.set_link_fail_rate(a, b, rate);
                }
            }
            FaultAction::Crash | FaultAction::Restart => return false,
        }
        true
    }

    /// A latency change on `pairs`, or back to the configured latency when the step has none;
    /// on every link it also sets the global curve.
    fn latency_fault(
        &self,
        sim: &mut turmoil::Sim<'_>,
        step: &FaultStep,
        pairs: Vec<(IpAddr, IpAddr)>,
    ) {
        for (a, b) in pairs {
            let model = step
                .latency
                .unwrap_or_else(|| self.configured_latency(a, b));
            Network::set_latency(sim, a, b, model);
        }
        if step.a.is_empty() {
            let model = step.latency.unwrap_or(self.latency);
            sim.set_message_latency_curve(model.curve);
        }
    }

    /// turmoil sets a link's minimum only together with its maximum (`set_link_latency`),
    /// so set both to the minimum, then raise the maximum.
    fn set_latency(sim: &turmoil::Sim<'_>, a: IpAddr, b: IpAddr, model: LatencyModel) {
        sim.set_link_latency(a, b, Duration::from_millis(model.min_ms));
        sim.set_link_max_message_latency(a, b, Duration::from_millis(model.max_ms));
    }

    fn configured_latency(&self, a: IpAddr, b: IpAddr) -> LatencyModel {
        self.links
            .get(&ordered(a, b))
            .copied()
            .unwrap_or(self.latency)
    }

    fn configured_fail(&self, a: IpAddr, b: IpAddr) -> f64 {
        self.link_fail
            .get(&ordered(a, b))
            .copied()
            .unwrap_or(self.fail_rate)
    }

    /// The links a fault step touches: `a` × `b`, or every link when `a` is empty.
    fn pairs(&self, step: &FaultStep) -> Vec<(IpAddr, IpAddr)> {
        let mut out = Vec::new();
        if step.a.is_empty() {
            for (i, a) in self.addresses.iter().enumerate() {
                for b in self.addresses.iter().skip(i + 1) {
                    out.push((*a, *b));
                }
            }
            return out;
        }
        for a in &step.a {
            for b in &step.b {
                if a != b {
                    out.push((self.addresses[*a as usize], self.addresses[*b as usize]));
                }
            }
        }
        out
    }
}
