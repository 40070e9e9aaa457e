//! The full-stack runner with real peers (on the fabric, the default substrate): convergence
//! of 20 peers through a partition and a crash and restart, determinism (in one process and
//! across processes), checkers that fail when a peer is broken on purpose, and (with
//! `PPPPP_SIM_HEAVY=1`) every shipped scenario. turmoil 0.7 keeps its own small tests
//! (fabric.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

use sim::check::ViolationKind;
use sim::plan::Plan;
use sim::report::Report;
use sim::scenario::Scenario;
use sim_fullstack::{Fullstack, Sabotage};

use crate::support::{run_binary, run_in_process, scenarios_dir, write_scenario};

/// Ten peers for 20 s: SHSE, small world plus dials to followed accounts, posts, profiles,
/// hashtag sets, and a 4 s partition (streams stall, idle timeouts, redials).
const SMALL: &str = r#"
name = "small"
seed = 3
duration = "20s"

[network]
latency = { min = "5ms", max = "50ms", curve = 5.0 }

[topology]
kind = "small-world"
k = 4
beta = 0.3
dial_follows = true

[[group]]
name = "p"
count = 10
follow = "uniform(3)"
goals = ["post@all", "profile@dict", "follows@set", "tags@set"]
follow_goals = ["post@newest-10", "profile@dict", "follows@set", "tags@set"]

[workload]
start = "1s"
stop = "12s"

[workload.post]
rate = "12/min"
size = "lognormal(200B, 0.5, 2KiB)"

[workload.dict]
rate = "60/h"

[workload.set]
feed = "tags"
rate = "60/h"
items = 5

[[fault]]
at = "4s"
action = "partition"
a = ["random(3)"]
duration = "4s"

[check]
converge_within = "10s"
"#;

/// Twenty peers for a minute: a 10 s partition of five of them, then a crash and restart of
/// one; everyone must converge within 25 s of the restart.
const TWENTY: &str = r#"
name = "twenty"
seed = 4
duration = "60s"

[network]
latency = { min = "5ms", max = "60ms", curve = 5.0 }

[topology]
kind = "random-regular"
degree = 4
dial_follows = true

[[group]]
name = "p"
count = 20
follow = "uniform(4)"
follow_goals = ["post@newest-20", "profile@dict", "follows@set"]

[workload]
start = "2s"
stop = "40s"

[workload.post]
rate = "6/min"
size = "lognormal(200B, 0.5, 2KiB)"

[workload.dict]
rate = "30/h"

[[fault]]
at = "10s"
action = "partition"
a = ["random(5)"]
duration = "10s"
label = "5 peers cut off"

[[fault]]
at = "25s"
action = "crash"
peers = ["p-3"]
duration = "5s"
label = "p-3 crashes"

[check]
converge_within = "25s"
"#;

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn ten_peers_with_sets_and_dicts_converge_through_a_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), "small", SMALL);
    let report = run_in_process(&Fullstack::new(), &path, 3, Some(dir.path().join("a")));
    assert!(report.checks.passed, "{:?}", report.checks.first_failure());
    assert!(
        report.checks.liveness.checked,
        "{:?}",
        report.checks.liveness.note
    );
    assert_eq!(report.checks.liveness.missing, 0);
    // Real peers, not the toy model: connections, handshakes, sync traffic.
    let json = String::from_utf8(read(&dir.path().join("a/report.json"))).expect("UTF-8");
    assert!(json.contains("\"engine\": \"fullstack\""));
    assert!(report.metrics.counts.connects > 0);
    assert!(report.metrics.bytes.by_kind["handshake"] > 0);
    assert!(report.metrics.bytes.by_kind["bloom"] > 0);
}

/// Twenty peers: they converge; they converge again after a partition heals and after a
/// crashed peer restarts; the same seed gives byte-identical outputs in one process and
/// across processes (the binary); another seed gives another run.
#[test]
fn twenty_peers_converge_after_a_partition_and_a_crash_deterministically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), "twenty", TWENTY);
    let engine = Fullstack::new();
    let report = run_in_process(&engine, &path, 4, Some(dir.path().join("a")));
    let checks = &report.checks;
    assert!(checks.passed, "{:?}", checks.first_failure());
    assert!(checks.liveness.checked, "{:?}", checks.liveness.note);
    assert!(checks.liveness.wanted > 300, "{}", checks.liveness.wanted);
    assert_eq!(checks.liveness.missing, 0);
    let counts = &report.metrics.counts;
    assert_eq!((counts.crashes, counts.restarts), (1, 1));
    assert_eq!(counts.faults_applied, 4);
    // The 10 s partition is shorter than the node's idle timeout: on the fabric TCP resends
    // across it and no connection times out (turmoil 0.7's would).
    assert_eq!(
        counts.disconnects.get("timeout"),
        None,
        "{:?}",
        counts.disconnects
    );
    let edges = Plan::build(&Scenario::load(&path).expect("loads"), 4)
        .edges
        .len();
    assert!(
        counts.connects > edges as u64,
        "{} connects",
        counts.connects
    );
    // Each fault (the partition, the crash) left something missing when it ended, and
    // everything came back afterwards.
    assert_eq!(report.metrics.recovery.len(), 2);
    for recovery in &report.metrics.recovery {
        assert!(
            recovery.missing_at_end_of_fault > 0,
            "nothing was missing after {}",
            recovery.label
        );
        assert!(
            recovery.recovery_ms.is_some(),
            "{} never recovered",
            recovery.label
        );
    }
    assert_eq!(report.metrics.convergence.fraction_at_end, Some(1.0));

    // Determinism: the same seed again in this process, then twice through the binary.
    let again = run_in_process(&engine, &path, 4, Some(dir.path().join("b")));
    assert_eq!(report.trace_hash, again.trace_hash);
    for file in ["report.json", "report.md", "trace.jsonl", "convergence.svg"] {
        assert!(
            read(&dir.path().join("a").join(file)) == read(&dir.path().join("b").join(file)),
            "{file} differs between two runs in one process"
        );
    }
    for name in ["c", "d"] {
        let output = run_binary(&path, 4, &dir.path().join(name));
        assert!(output.status.success(), "{output:?}");
        for file in ["report.json", "trace.jsonl"] {
            assert!(
                read(&dir.path().join("a").join(file)) == read(&dir.path().join(name).join(file)),
                "{file} differs between the in-process run and process {name}"
            );
        }
    }
    // Another seed is another run (and converges too).
    let other = run_in_process(&engine, &path, 5, None);
    assert_ne!(report.trace_hash, other.trace_hash);
    assert!(other.checks.passed, "{:?}", other.checks.first_failure());
}

/// A crashed peer restarts on the fabric (issue 14's restart bug): p-3 crashes at 25 s and
/// restarts at 30 s. turmoil-net 0.1.0 can leave a closed listener's port bound for ever
/// (sim-fullstack/src/fabric_listen.rs), so the fabric keeps each host's listener across its
/// incarnations and refuses dials to a down host itself. The restarted node listens again
/// (peers connect to it after 30 s), and while it is down every dial to it fails at once as
/// refused, none accepted by its kernel and left to hang until a timeout.
#[test]
fn twenty_peers_restart_on_the_fabric() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), "twenty", TWENTY);
    let out = dir.path().join("out");
    let report = run_in_process(&Fullstack::new(), &path, 4, Some(out.clone()));
    assert!(report.checks.passed, "{:?}", report.checks.first_failure());
    assert_eq!(
        (
            report.metrics.counts.crashes,
            report.metrics.counts.restarts
        ),
        (1, 1)
    );
    let events = trace_events(&out);
    let plan = Plan::build(&Scenario::load(&path).expect("loads"), 4);
    let restarted = plan
        .peers
        .iter()
        .find(|peer| peer.name == "p-3")
        .expect("p-3 is planned")
        .index;
    let failed_start = events
        .iter()
        .filter(|event| event["ev"] == "note")
        .find(|event| {
            event["text"]
                .as_str()
                .is_some_and(|text| text.contains("failed to start"))
        });
    assert!(failed_start.is_none(), "{failed_start:?}");
    let inbound_after_restart = events
        .iter()
        .filter(|event| event["ev"] == "connect" && event["b"] == restarted)
        .filter(|event| event["t"].as_u64().is_some_and(|t| t >= 30_000))
        .count();
    assert!(
        inbound_after_restart > 0,
        "nobody connected to the restarted p-3"
    );
    let dials_while_down: Vec<&str> = events
        .iter()
        .filter(|event| event["ev"] == "dial_failed" && event["remote"] == restarted)
        .filter(|event| {
            event["t"]
                .as_u64()
                .is_some_and(|t| (25_000..30_000).contains(&t))
        })
        .map(|event| event["reason"].as_str().unwrap_or(""))
        .collect();
    assert!(
        !dials_while_down.is_empty(),
        "nobody dialed p-3 while it was down"
    );
    assert!(
        dials_while_down
            .iter()
            .all(|reason| reason.contains("refused")),
        "{dials_while_down:?}"
    );
}

/// The trace's events (without its header line).
fn trace_events(out: &Path) -> Vec<serde_json::Value> {
    let trace = String::from_utf8(read(&out.join("trace.jsonl"))).expect("UTF-8");
    trace
        .lines()
        .skip(1)
        .map(|line| serde_json::from_str(line).expect("a JSON trace line"))
        .collect()
}

/// A sweep runs its seeds in parallel (one simulation per thread); each seed's report must
/// not depend on what ran beside it, so two threads and one give the same files.
#[test]
fn a_parallel_sweep_equals_a_sequential_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), "small", SMALL);
    let sweep = |jobs: &str, out: &Path| {
        let output = Command::new(env!("CARGO_BIN_EXE_ppppp-sim"))
            .args(["sweep", &path.display().to_string(), "--seeds", "1..=3"])
            .args(["--jobs", jobs])
            .arg("--out")
            .arg(out)
            .output()
            .expect("run ppppp-sim sweep");
        assert!(output.status.success(), "{output:?}");
    };
    let (parallel, sequential) = (dir.path().join("parallel"), dir.path().join("sequential"));
    sweep("2", &parallel);
    sweep("1", &sequential);
    let mut files = vec![PathBuf::from("sweep.json"), PathBuf::from("sweep.md")];
    files.extend((1..=3).map(|seed| PathBuf::from(format!("cell-01/seed-{seed}/report.json"))));
    for file in files {
        assert!(
            read(&parallel.join(&file)) == read(&sequential.join(&file)),
            "{} differs between --jobs 2 and --jobs 1",
            file.display()
        );
    }
    let reports: Vec<Vec<u8>> = (1..=3)
        .map(|seed| read(&parallel.join(format!("cell-01/seed-{seed}/report.json"))))
        .collect();
    assert!(reports[0] != reports[1] && reports[1] != reports[2]);
}

#[test]
fn an_unreachable_goal_fails_liveness_with_a_repro_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    // p-3 follows everyone and everyone follows it, but no edge reaches it.
    let path = write_scenario(
        dir.path(),
        "lonely",
        r#"
name = "lonely"
seed = 11
duration = "15s"

[topology]
kind = "edges"
edges = [["p-0", "p-1"], ["p-1", "p-2"], ["p-2", "p-0"]]

[[group]]
name = "p"
count = 4
follow = "all"

[workload]
start = "1s"

[workload.post]
rate = "12/min"
size = "300B"

[check]
converge_within = "10s"
"#,
    );
    let out = dir.path().join("out");
    let output = run_binary(&path, 11, &out);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let repro = format!("ppppp-sim run {} --seed 11", path.display());
    assert!(
        stderr.lines().any(|line| line.starts_with(&repro)),
        "no repro line in stderr:\n{stderr}"
    );
    assert!(stderr.contains("FAILED liveness"), "{stderr}");
    let report = Report::read(&out.join("report.json")).expect("report written");
    assert!(report.checks.safety.passed);
    assert!(report.checks.liveness.missing > 0);
    assert!(
        report
            .checks
            .liveness
            .examples
            .iter()
            .any(|example| example.starts_with("p-3 lacks")
                || example.contains("published by p-3")),
        "{:?}",
        report.checks.liveness.examples
    );
    assert!(report.repro.starts_with(&repro), "{}", report.repro);
}

#[test]
fn a_store_that_forgets_acknowledged_msgs_fails_safety() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(
        dir.path(),
        "forgetful",
        r#"
name = "forgetful"
seed = 5
duration = "15s"

[topology]
kind = "full"

[[group]]
name = "p"
count = 4
follow = "all"

[workload]
start = "1s"
stop = "5s"

[workload.post]
rate = "30/min"
size = "200B"

[[fault]]
at = "6s"
action = "crash"
peers = ["p-1"]
duration = "2s"

[check]
converge_within = "6s"
"#,
    );
    // The same run with an honest store passes.
    let honest = run_in_process(&Fullstack::new(), &path, 5, None);
    assert!(honest.checks.passed, "{:?}", honest.checks.first_failure());
    let broken = run_in_process(
        &Fullstack::with_sabotage(Sabotage::AmnesiacStore(1)),
        &path,
        5,
        None,
    );
    let safety = &broken.checks.safety;
    assert!(
        !safety.passed,
        "a store that forgot its msgs went unnoticed"
    );
    assert!(
        safety.violations.iter().any(|violation| matches!(
            violation.kind,
            ViolationKind::LostOwn | ViolationKind::DoubleStore
        ) && violation.peer.as_deref() == Some("p-1")),
        "{:?}",
        safety.violations
    );
    assert!(
        broken
            .checks
            .first_failure()
            .is_some_and(|line| line.starts_with("safety:"))
    );
    let repro = format!("ppppp-sim run {} --seed 5", path.display());
    assert!(
        broken.repro.starts_with(&repro) && !broken.repro.contains('\n'),
        "{}",
        broken.repro
    );
}

/// The quiet hub (no faults at all) delivers every post within the delivery bound with our
/// re-initiation; with pzp-sync 1.0.4's, leaves go without posts the hub holds — the hole the
/// delivery check exists to catch, named with the path that should have carried the post.
#[test]
fn the_delivery_check_catches_the_reference_hole_on_a_quiet_hub() {
    let path = scenarios_dir().join("hub-quiet.toml");
    let ours = run_in_process(&Fullstack::new(), &path, 1, None);
    let delivery = &ours.checks.delivery;
    assert!(ours.checks.passed, "{:?}", ours.checks.first_failure());
    assert!(delivery.judged > 400, "{delivery:?}");
    assert_eq!(delivery.delivered, delivery.judged);

    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(&path).expect("read hub-quiet");
    let reference = write_scenario(
        dir.path(),
        "hub-quiet-reference",
        &text.replace("seed = 1\n", "seed = 1\nreinitiation = \"reference\"\n"),
    );
    let theirs = run_in_process(&Fullstack::new(), &reference, 1, None);
    let delivery = &theirs.checks.delivery;
    assert!(!delivery.passed && delivery.missing > 0, "{delivery:?}");
    let first = delivery.examples.first().expect("an example");
    assert!(
        first.contains("→ hub-0 →"),
        "the path runs through the hub: {first}"
    );
    let line = theirs.checks.first_failure().expect("a failure line");
    assert!(
        line.starts_with("liveness: ") || line.starts_with("delivery: "),
        "{line}"
    );
}

/// Every shipped scenario with real peers (minutes of CPU): `PPPPP_SIM_HEAVY=1 cargo test
/// --release -p ppppp-sim --test it shipped_scenarios`.
#[test]
fn shipped_scenarios_pass_with_real_peers() {
    if std::env::var_os("PPPPP_SIM_HEAVY").is_none() {
        eprintln!("skipped: set PPPPP_SIM_HEAVY=1 to run every shipped scenario with real peers");
        return;
    }
    for name in [
        "quickstart",
        "partition-heal",
        "churn",
        "hub-and-spoke",
        "hub-quiet",
        "hub-lossy",
        "lossy-minute",
        "relay-chain",
        "swarm-100",
    ] {
        let path = scenarios_dir().join(format!("{name}.toml"));
        let scenario = Scenario::load(&path).expect("loads");
        // On the scenario's own substrate (swarm-100 names `streams`).
        let engine = Fullstack::on(scenario.substrate);
        let report = run_in_process(&engine, &path, scenario.seed, None);
        assert!(
            report.checks.passed,
            "{name}: {:?}",
            report.checks.first_failure()
        );
    }
}
