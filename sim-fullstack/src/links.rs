//! The fabric substrate's links: what happens to a packet between two peers (latency, loss,
//! break, cut, hold), as the plan configures them and as faults change them. The same meanings as
//! the turmoil substrate's network.rs, but packet by packet: a lost packet is one TCP
//! segment, which the sender retransmits.
//!
//! A fault on every link (an empty `a`) is one global override, not N² per-link entries, so
//! it costs the same at 1,000 peers as at 20.

use std::collections::{BTreeMap, BTreeSet};

use sim::plan::{FaultStep, PeerIdx, Plan};
use sim::rng::Stream;
use sim::scenario::{FaultAction, LatencyModel};

/// An unordered pair of peers (smaller index first).
type Pair = (PeerIdx, PeerIdx);

fn pair(a: PeerIdx, b: PeerIdx) -> Pair {
    (a.min(b), a.max(b))
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// Deliver after this many ms.
    Deliver(u64),
    /// Keep until the link is released.
    Hold,
    /// Lost (a lossy or cut link).
    Drop,
    /// Lost, and its connection reset at both ends (a `break`).
    Break,
}

/// Configured and current link properties.
#[derive(Debug)]
pub(super) struct Links {
    latency: LatencyModel,
    fail_rate: f64,
    /// `[[network.link]]` overrides.
    configured_latency: BTreeMap<Pair, LatencyModel>,
    configured_fail: BTreeMap<Pair, f64>,
    /// Fault overrides on every link (`None`: as configured).
    latency_all: Option<LatencyModel>,
    fail_all: Option<f64>,
    /// Fault overrides on single links (win over the global ones).
    latency_now: BTreeMap<Pair, LatencyModel>,
    fail_now: BTreeMap<Pair, f64>,
    /// `break` faults: on every link, and on single links (win over the global one).
    break_all: f64,
    break_now: BTreeMap<Pair, f64>,
    /// Directed cuts (from, to); `cut_all` cuts every link.
    cut: BTreeSet<(PeerIdx, PeerIdx)>,
    cut_all: bool,
    held: BTreeSet<Pair>,
    hold_all: bool,
    /// Bandwidth of each direction, bytes/s: every link's, and `[[network.link]]`'s.
    bandwidth: Option<u64>,
    configured_bandwidth: BTreeMap<Pair, u64>,
    /// When each direction (from, to) has finished serialising its last packet, µs.
    busy_until_us: BTreeMap<(PeerIdx, PeerIdx), u64>,
}

impl Links {
    /// The links as the plan configures them (`[network]` and `[[network.link]]`).
    pub(super) fn new(plan: &Plan) -> Links {
        let mut links = Links {
            latency: plan.network.latency,
            fail_rate: plan.network.fail_rate,
            configured_latency: BTreeMap::new(),
            configured_fail: BTreeMap::new(),
            latency_all: None,
            fail_all: None,
            latency_now: BTreeMap::new(),
            fail_now: BTreeMap::new(),
            break_all: 0.0,
            break_now: BTreeMap::new(),
            cut: BTreeSet::new(),
            cut_all: false,
            held: BTreeSet::new(),
            hold_all: false,
            bandwidth: plan.network.bandwidth_bytes_per_s,
            configured_bandwidth: BTreeMap::new(),
            busy_until_us: BTreeMap::new(),
        };
        for link in &plan.network.links {
            for &a in &link.a {
                for &b in link.b.iter().filter(|&&b| b != a) {
                    if let Some(model) = link.latency {
                        links.configured_latency.insert(pair(a, b), model);
                    }
                    if let Some(rate) = link.fail_rate {
                        links.configured_fail.insert(pair(a, b), rate);
                    }
                    if let Some(rate) = link.bandwidth_bytes_per_s {
                        links.configured_bandwidth.insert(pair(a, b), rate);
                    }
                }
            }
        }
        links
    }

    /// When a packet of `bytes` handed to the link `from` → `to` at `now_ms` has been sent
    /// out, ms: at once without a bandwidth; else `bytes / bandwidth` after the packet ahead
    /// of it (one packet at a time, in order), to the nearest ms — as the protocol tier's
    /// lanes (`sim-protocol/src/bandwidth.rs`) time a message.
    pub(super) fn serialised_ms(
        &mut self,
        from: PeerIdx,
        to: PeerIdx,
        bytes: u64,
        now_ms: u64,
    ) -> u64 {
        let rate = if self.configured_bandwidth.is_empty() {
            self.bandwidth
        } else {
            self.configured_bandwidth
                .get(&pair(from, to))
                .copied()
                .or(self.bandwidth)
        };
        let Some(rate) = rate else {
            return now_ms;
        };
        let busy = self.busy_until_us.entry((from, to)).or_default();
        *busy = (*busy).max(now_ms * 1_000) + (bytes * 1_000_000).div_ceil(rate.max(1));
        (*busy + 500) / 1_000
    }

    /// The largest latency any link can have in this plan, ms (sizes TCP's retransmit timer).
    pub(super) fn latency_max_ms(plan: &Plan) -> u64 {
        let links = plan.network.links.iter().filter_map(|link| link.latency);
        let faults = plan.faults.iter().filter_map(|step| step.latency);
        std::iter::once(plan.network.latency)
            .chain(links)
            .chain(faults)
            .map(|model| model.max_ms)
            .max()
            .unwrap_or(0)
    }

    /// A packet from `from` to `to`: its fate, drawing latency, loss and breaks from `rng`. A
    /// packet that is not `lossy` (a bare acknowledgement, see fabric.rs) is never lost to
    /// `loss` nor breaks its connection, only a cut drops it. A link without a break rate
    /// draws nothing for it, so plans without `break` draw as before.
    pub(super) fn fate(&self, from: PeerIdx, to: PeerIdx, lossy: bool, rng: &mut Stream) -> Fate {
        if self.cut_all || self.cut.contains(&(from, to)) {
            return Fate::Drop;
        }
        let link = pair(from, to);
        if self.hold_all || self.held.contains(&link) {
            return Fate::Hold;
        }
        let fail = self.fail_rate_of(link);
        if lossy && fail > 0.0 && rng.unit() < fail {
            return Fate::Drop;
        }
        let breaks = self.break_now.get(&link).copied().unwrap_or(self.break_all);
        if lossy && breaks > 0.0 && rng.unit() < breaks {
            return Fate::Break;
        }
        Fate::Deliver(sample(self.latency_of(link), rng))
    }

    /// Whether nothing gets from `from` to `to` now: the direction is cut or the link held.
    /// Draws nothing.
    pub(super) fn blocked(&self, from: PeerIdx, to: PeerIdx) -> bool {
        self.cut_all
            || self.cut.contains(&(from, to))
            || self.hold_all
            || self.held.contains(&pair(from, to))
    }

    fn latency_of(&self, link: Pair) -> LatencyModel {
        if let Some(model) = self.latency_now.get(&link) {
            return *model;
        }
        self.latency_all
            .or_else(|| self.configured_latency.get(&link).copied())
            .unwrap_or(self.latency)
    }

    fn fail_rate_of(&self, link: Pair) -> f64 {
        if let Some(rate) = self.fail_now.get(&link) {
            return *rate;
        }
        self.fail_all
            .or_else(|| self.configured_fail.get(&link).copied())
            .unwrap_or(self.fail_rate)
    }

    /// Applies a link fault; `false` for a fault on peers (crash, restart).
    pub(super) fn apply(&mut self, step: &FaultStep) -> bool {
        let every = step.a.is_empty();
        let pairs = directed(step);
        match step.action {
            FaultAction::Partition if every => self.cut_all = true,
            FaultAction::Partition => {
                for (a, b) in pairs {
                    self.cut.insert((a, b));
                    self.cut.insert((b, a));
                }
            }
            FaultAction::OneWay if every => self.cut_all = true,
            FaultAction::OneWay => self.cut.extend(pairs),
            FaultAction::Heal if every => {
                self.cut_all = false;
                self.cut.clear();
            }
            FaultAction::Heal => {
                for (a, b) in pairs {
                    self.cut.remove(&(a, b));
                    self.cut.remove(&(b, a));
                }
            }
            FaultAction::Hold if every => self.hold_all = true,
            FaultAction::Hold => self.held.extend(pairs.into_iter().map(|(a, b)| pair(a, b))),
            FaultAction::Release if every => {
                self.hold_all = false;
                self.held.clear();
            }
            FaultAction::Release => {
                for (a, b) in pairs {
                    self.held.remove(&pair(a, b));
                }
            }
            FaultAction::Latency => self.latency_fault(step, pairs),
            FaultAction::Loss => self.loss_fault(step, pairs),
            FaultAction::Break => self.break_fault(step, pairs),
            FaultAction::Crash | FaultAction::Restart => return false,
        }
        true
    }

    fn latency_fault(&mut self, step: &FaultStep, pairs: Vec<(PeerIdx, PeerIdx)>) {
        if step.a.is_empty() {
            self.latency_all = step.latency;
            self.latency_now.clear();
            return;
        }
        for (a, b) in pairs {
            let link = pair(a, b);
            let model = step.latency.unwrap_or_else(|| {
                let configured = self.configured_latency.get(&link).copied();
                configured.unwrap_or(self.latency)
            });
            self.latency_now.insert(link, model);
        }
    }

    fn loss_fault(&mut self, step: &FaultStep, pairs: Vec<(PeerIdx, PeerIdx)>) {
        if step.a.is_empty() {
            self.fail_all = step.fail_rate;
            self.fail_now.clear();
            return;
        }
        for (a, b) in pairs {
            let link = pair(a, b);
            let rate = step.fail_rate.unwrap_or_else(|| {
                let configured = self.configured_fail.get(&link).copied();
                configured.unwrap_or(self.fail_rate)
            });
            self.fail_now.insert(link, rate);
        }
    }
}

impl Links {
    fn break_fault(&mut self, step: &FaultStep, pairs: Vec<(PeerIdx, PeerIdx)>) {
        let rate = step.break_rate.unwrap_or(0.0);
        if step.a.is_empty() {
            self.break_all = rate;
            self.break_now.clear();
            return;
        }
        for (a, b) in pairs {
            self.break_now.insert(pair(a, b), rate);
        }
    }
}

/// The (a, b) pairs of a fault step on named peers.
fn directed(step: &FaultStep) -> Vec<(PeerIdx, PeerIdx)> {
    let mut out = Vec::new();
    for &a in &step.a {
        for &b in step.b.iter().filter(|&&b| b != a) {
            out.push((a, b));
        }
    }
    out
}

/// A latency drawn from the model: the minimum plus an exponential share (rate `curve`) of
/// the range, capped at the maximum — turmoil's shape, so scenarios mean the same.
fn sample(model: LatencyModel, rng: &mut Stream) -> u64 {
    let range = model.max_ms.saturating_sub(model.min_ms) as f64;
    let share = -rng.unit_open().ln() / model.curve.max(f64::MIN_POSITIVE);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let extra = (range * share) as u64;
    (model.min_ms + extra).min(model.max_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(network: &str) -> Plan {
        let text = format!(
            "name = \"t\"\nduration = \"1m\"\n[network]\n{network}\n[topology]\nkind = \"full\"\n\
             [[group]]\nname = \"p\"\ncount = 3\n"
        );
        let scenario = sim::scenario::Scenario::parse(&text, "t.toml").expect("parses");
        Plan::build(&scenario, 1)
    }

    #[test]
    fn a_link_direction_sends_one_packet_at_a_time_at_its_bandwidth() {
        // 1,000 B/s: a 500-byte packet takes 500 ms; the next waits behind it.
        let mut links = Links::new(&plan("bandwidth = \"1KB/s\""));
        assert_eq!(links.serialised_ms(0, 1, 500, 100), 600);
        assert_eq!(links.serialised_ms(0, 1, 500, 200), 1_100);
        // The other direction and other links have their own queues.
        assert_eq!(links.serialised_ms(1, 0, 500, 200), 700);
        assert_eq!(links.serialised_ms(0, 2, 40, 2_000), 2_040);
    }

    #[test]
    fn without_a_bandwidth_a_packet_leaves_at_once() {
        let mut links = Links::new(&plan("fail_rate = 0.0"));
        assert_eq!(links.serialised_ms(0, 1, 1_000_000, 100), 100);
    }
}
