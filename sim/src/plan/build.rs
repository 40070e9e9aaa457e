//! [`Plan::build`]: the scenario's groups become peers, then follows, goals and rates are
//! drawn, then edges, publishes, churn and faults, each from its own named stream.

use std::collections::BTreeMap;

use super::faults::{self, Population};
use super::{
    CheckPlan, ChurnStep, Edge, GoalPlan, GroupPlan, InvitePlan, LinkPlan, NetworkPlan,
    PLAN_VERSION, PeerIdx, PeerPlan, Plan,
};
use super::{publish, topology};
use crate::goal::Follow;
use crate::rng::{Stream, stream};
use crate::scenario::{HubAdmission, Initially, Role, Scenario};
use crate::units::Bandwidth;

impl Plan {
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
                    nat: group.nat,
                    members_only: group.role == Role::TunnelHub
                        && group.admission == HubAdmission::Invites,
                    invites: Vec::new(),
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
        let edges = topology::edges(
            &scenario.topology,
            &self.peers,
            &mut self.stream("topology", 0),
        );
        self.invites(&edges);
        let publishes = publish::schedule(scenario, self.seed, &self.peers, &self.publishers());
        let churn = self.churn();
        let population = Population {
            peers: &self.peers,
            groups: &self.groups,
        };
        let faults = faults::schedule(scenario, self.seed, population);
        let fault_intervals = faults::intervals(&faults, scenario.duration.ms());
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
            delivery: scenario.check.delivery,
            deliver_within_ms: scenario.check.deliver_within.ms(),
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
            reinitiation: scenario.reinitiation,
            sync: scenario.sync,
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
            collector: scenario.report.collector,
        }
    }

    fn network(&self) -> NetworkPlan {
        let network = &self.scenario.network;
        let base = network.latency.model();
        NetworkPlan {
            latency: base,
            fail_rate: network.fail_rate,
            repair_rate: network.repair_rate,
            bandwidth_bytes_per_s: network.bandwidth.map(Bandwidth::bytes_per_s),
            links: network
                .links
                .iter()
                .map(|link| LinkPlan {
                    groups: link.between.clone(),
                    a: self.group_peers(&link.between[0]),
                    b: self.group_peers(&link.between[1]),
                    latency: link.latency.as_ref().map(|l| l.model_over(base)),
                    fail_rate: link.fail_rate,
                    bandwidth_bytes_per_s: link.bandwidth.map(Bandwidth::bytes_per_s),
                })
                .collect(),
        }
    }

    /// Gives each peer an invite to every members-only tunnel hub it dials, its token drawn
    /// from the peer's own `invite` stream (plans without such hubs draw nothing).
    fn invites(&mut self, edges: &[Edge]) {
        for edge in edges {
            if !self.peers[edge.acceptor as usize].members_only {
                continue;
            }
            let dialer = &mut self.peers[edge.dialer as usize];
            let mut stream = stream(
                self.seed,
                "invite",
                u64::from(edge.dialer) << 32 | u64::from(edge.acceptor),
            );
            let mut token = [0u8; 32];
            for chunk in token.chunks_exact_mut(8) {
                chunk.copy_from_slice(&stream.next_u64().to_le_bytes());
            }
            dialer.invites.push(InvitePlan {
                hub: edge.acceptor,
                token,
            });
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
}

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
