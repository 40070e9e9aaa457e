//! Every shipped scenario loads and plans, and its plan is well-formed.

use std::collections::BTreeSet;

use sim::plan::Plan;
use sim::scenario::Scenario;

use crate::support::scenarios_dir;

fn shipped() -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios/ exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn the_five_scenarios_are_there() {
    let names: BTreeSet<String> = shipped()
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    for expected in [
        "quickstart",
        "partition-heal",
        "churn",
        "hub-and-spoke",
        "swarm-100",
    ] {
        assert!(
            names.contains(expected),
            "missing scenarios/{expected}.toml"
        );
    }
}

#[test]
fn every_scenario_loads_and_plans() {
    for path in shipped() {
        let scenario = match Scenario::load(&path) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let plan = Plan::build(&scenario, scenario.seed);
        let n = plan.peers.len();
        assert_eq!(n as u32, scenario.peer_count(), "{}", path.display());
        for (i, peer) in plan.peers.iter().enumerate() {
            assert_eq!(peer.index as usize, i);
            assert!(
                !peer.follows.contains(&peer.index),
                "{} follows itself",
                peer.name
            );
        }
        let mut pairs = BTreeSet::new();
        for edge in &plan.edges {
            assert_ne!(
                edge.dialer,
                edge.acceptor,
                "self loop in {}",
                path.display()
            );
            assert!((edge.dialer as usize) < n && (edge.acceptor as usize) < n);
            let key = (
                edge.dialer.min(edge.acceptor),
                edge.dialer.max(edge.acceptor),
            );
            assert!(
                pairs.insert(key),
                "duplicate edge {key:?} in {}",
                path.display()
            );
        }
        assert!(
            !plan.publishes.is_empty(),
            "{} publishes nothing",
            path.display()
        );
        assert!(
            plan.publishes.windows(2).all(|w| w[0].t_ms <= w[1].t_ms),
            "publishes out of order"
        );
        assert!(plan.publishes.iter().all(|p| p.t_ms < plan.duration_ms));
        assert!(plan.churn.windows(2).all(|w| w[0] <= w[1]));
        assert!(plan.faults.windows(2).all(|w| w[0].t_ms <= w[1].t_ms));
        assert!(plan.check.deadline_ms <= plan.duration_ms);
    }
}

#[test]
fn scenario_shapes_are_what_they_say() {
    let load = |name: &str| {
        let scenario = Scenario::load(scenarios_dir().join(format!("{name}.toml"))).expect("loads");
        let plan = Plan::build(&scenario, scenario.seed);
        (scenario, plan)
    };
    let (_, swarm) = load("swarm-100");
    assert_eq!(swarm.peers.len(), 100);
    let (_, quick) = load("quickstart");
    assert!((15..=25).contains(&quick.peers.len()));
    assert!(quick.duration_ms <= 5 * 60_000);
    let (_, churn) = load("churn");
    assert!(!churn.churn.is_empty(), "churn scenario has no churn");
    let (_, hubs) = load("hub-and-spoke");
    let hub_count = hubs
        .peers
        .iter()
        .filter(|p| p.role == sim::scenario::Role::Hub)
        .count();
    assert!(hub_count >= 1);
    // Leaves only dial hubs.
    for edge in &hubs.edges {
        let dialer = &hubs.peers[edge.dialer as usize];
        let acceptor = &hubs.peers[edge.acceptor as usize];
        assert!(
            acceptor.role == sim::scenario::Role::Hub,
            "{} dials non-hub {}",
            dialer.name,
            acceptor.name
        );
    }
    let (_, heal) = load("partition-heal");
    assert!(heal.fault_intervals.iter().all(|i| i.healed));
}

#[test]
fn random_regular_has_the_degree() {
    let text = r#"
name = "rr"
duration = "1m"
[topology]
kind = "random-regular"
degree = 6
[[group]]
name = "p"
count = 40
"#;
    let scenario = crate::support::scenario(text);
    for seed in 1..5 {
        let plan = Plan::build(&scenario, seed);
        let mut degree = vec![0_u32; 40];
        for edge in &plan.edges {
            degree[edge.dialer as usize] += 1;
            degree[edge.acceptor as usize] += 1;
        }
        assert!(degree.iter().all(|d| *d == 6), "seed {seed}: {degree:?}");
    }
}
