//! Tunnel hubs and peers behind NATs on the full-stack engine: the phones of a scenario can
//! reach each other only through the tunnels the hubs open (no phone listens, and no plan
//! edge joins two phones; the hubs hold no msgs), yet every wanted msg arrives, during the
//! run and after a hub crash, and no connection is replaced by a duplicate one.

use sim::plan::Plan;
use sim::scenario::{Role, Scenario};
use sim_fullstack::Fullstack;
use sim_protocol::Protocol;

use crate::support::{run_in_process, write_scenario};

const PHONES: u64 = 6;

/// Six phones behind NATs attend two tunnel hubs and follow one another; hub-0 crashes for
/// 40 s while they post.
const SMALL: &str = r#"name = "tunnels-small"
duration = "3m"
tick = "1ms"

[network]
latency = { min = "10ms", max = "60ms", curve = 5.0 }

[topology]
kind = "hub-and-spoke"

[[group]]
name = "hub"
count = 2
role = "tunnel-hub"

[[group]]
name = "phone"
count = 6
nat = true
follow = "all"
follow_goals = ["post@all"]

[workload]
start = "5s"
stop = "2m30s"

[workload.post]
rate = "2/min"
size = "300B"

[[fault]]
at = "50s"
action = "crash"
peers = ["hub-0"]
duration = "40s"

[check]
converge_within = "30s"
"#;

#[test]
fn phones_behind_nats_sync_only_through_tunnels_and_survive_a_hub_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), "tunnels-small", SMALL);
    let scenario = Scenario::load(&path).expect("loads");
    let plan = Plan::build(&scenario, 1);
    for edge in &plan.edges {
        let acceptor = &plan.peers[edge.acceptor as usize];
        assert_eq!(acceptor.role, Role::TunnelHub, "a phone is dialed directly");
    }

    let report = run_in_process(&Fullstack::new(), &path, 1, None);
    assert!(report.checks.passed, "{:?}", report.checks.first_failure());
    let liveness = &report.checks.liveness;
    assert!(liveness.wanted > 0 && liveness.missing == 0, "{liveness:?}");
    let delivery = &report.checks.delivery;
    // Pairs published while hub-0 was down are judged too: hub-1 still joins the phones.
    assert!(delivery.judged > 0, "{delivery:?}");
    assert_eq!(delivery.exempt_no_path, 0, "{delivery:?}");

    let counts = &report.metrics.counts;
    // Each pair of phones holds one tunnel: the phone whose key sorts first dials it, and a
    // phone listed by both hubs is dialed once. Before that, every listing replaced the
    // pair's connection (thousands of admission evictions on `scenarios/tunnels.toml`).
    assert_eq!(counts.disconnects.get("admission"), None, "{counts:?}");
    let pairs = PHONES * (PHONES - 1) / 2;
    // Once at the start, once more for the tunnels hub-0's crash broke.
    assert!(
        counts.connects <= 2 * pairs,
        "{} connections",
        counts.connects
    );
    assert_eq!(counts.dial_failures, 0, "{counts:?}");
}

#[test]
fn the_protocol_tier_refuses_tunnels_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), "tunnels-small", SMALL);
    let scenario = Scenario::load(&path).expect("loads");
    let plan = Plan::build(&scenario, 1);
    let error = sim::pipeline::run(
        &plan,
        &Protocol::new(),
        &sim::pipeline::RunOptions {
            scenario_path: path.display().to_string(),
            out: None,
            trace: false,
            progress: false,
        },
    )
    .expect_err("the protocol tier does not model tunnels");
    let shown = error.to_string();
    assert!(shown.contains("full-stack engine only"), "{shown}");
}

#[test]
fn a_nat_without_tunnel_hubs_and_a_tunnel_hub_with_goals_are_refused() {
    let no_hub = SMALL.replace("role = \"tunnel-hub\"", "role = \"hub\"");
    let error = Scenario::parse(&no_hub, "t.toml").expect_err("a NAT needs tunnel hubs");
    assert!(error.to_string().contains("group[1].nat"), "{error}");

    let with_goals = SMALL.replace(
        "role = \"tunnel-hub\"",
        "role = \"tunnel-hub\"\nfollow_goals = [\"post@all\"]",
    );
    let error = Scenario::parse(&with_goals, "t.toml").expect_err("tunnel hubs hold nothing");
    assert!(error.to_string().contains("holds no msgs"), "{error}");

    let dialed = SMALL.replace(
        "kind = \"hub-and-spoke\"",
        "kind = \"hub-and-spoke\"\ndial_follows = true",
    );
    let error = Scenario::parse(&dialed, "t.toml").expect_err("no one can dial a phone");
    assert!(error.to_string().contains("dial_follows"), "{error}");
}

/// [`SMALL`] with members-only hubs: each phone joins each hub with the invite it made.
fn with_invites() -> String {
    SMALL.replace(
        "role = \"tunnel-hub\"",
        "role = \"tunnel-hub\"\nadmission = \"invites\"",
    )
}

#[test]
fn phones_join_members_only_hubs_with_their_invites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), "tunnels-invites", &with_invites());
    let scenario = Scenario::load(&path).expect("loads");
    let plan = Plan::build(&scenario, 1);
    for peer in &plan.peers {
        let expected = if peer.role == Role::TunnelHub { 0 } else { 2 };
        assert_eq!(peer.invites.len(), expected, "{}", peer.name);
    }

    let report = run_in_process(&Fullstack::new(), &path, 1, None);
    assert!(report.checks.passed, "{:?}", report.checks.first_failure());
    let liveness = &report.checks.liveness;
    assert!(liveness.wanted > 0 && liveness.missing == 0, "{liveness:?}");
    assert_eq!(report.metrics.counts.dial_failures, 0);
}

#[test]
fn a_phone_without_a_valid_invite_is_refused_by_a_members_only_hub() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), "tunnels-invites", &with_invites());
    let scenario = Scenario::load(&path).expect("loads");
    let mut plan = Plan::build(&scenario, 1);
    // phone-0 holds no invite, phone-1 forged ones; the other four hold theirs.
    let (no_invite, forged) = (2, 3);
    assert_eq!(plan.peers[no_invite].name, "phone-0");
    assert_eq!(plan.peers[forged].name, "phone-1");
    plan.peers[no_invite].invites.clear();
    for invite in &mut plan.peers[forged].invites {
        invite.token = [7; 32];
    }
    let report = sim::pipeline::run(
        &plan,
        &Fullstack::new(),
        &sim::pipeline::RunOptions {
            scenario_path: path.display().to_string(),
            out: None,
            trace: false,
            progress: false,
        },
    )
    .expect("the run completes");
    // The two refused phones reach no one: every wanted msg they author or want is missing;
    // the four phones with invites get everything from one another.
    let liveness = &report.checks.liveness;
    assert!(liveness.missing > 0, "{liveness:?}");
    assert!(!liveness.examples.is_empty(), "{liveness:?}");
    for example in &liveness.examples {
        assert!(
            example.contains("phone-0") || example.contains("phone-1"),
            "a pair of phones with invites is missing: {example}"
        );
    }
}

#[test]
fn only_a_tunnel_hub_has_an_admission() {
    let on_a_phone = SMALL.replace("nat = true", "nat = true\nadmission = \"invites\"");
    let error = Scenario::parse(&on_a_phone, "t.toml").expect_err("a phone admits no one");
    assert!(error.to_string().contains("group[1].admission"), "{error}");
    let unknown = SMALL.replace(
        "role = \"tunnel-hub\"",
        "role = \"tunnel-hub\"\nadmission = \"everyone\"",
    );
    assert!(Scenario::parse(&unknown, "t.toml").is_err());
}
