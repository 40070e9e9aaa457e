//! The two tiers side by side: the protocol tier passes the same checks as the full-stack
//! tier on the same plan and ends with the same msgs at every peer; and it is deterministic
//! across processes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use sim::pipeline::{Engine, RunOptions};
use sim::plan::Plan;
use sim::report::Report;
use sim::scenario::Scenario;
use sim_fullstack::Fullstack;
use sim_protocol::Protocol;

use crate::support::scenarios_dir;

fn run(engine: &dyn Engine, scenario: &str, seed: u64, out: &Path) -> Report {
    let loaded = Scenario::load(scenarios_dir().join(scenario)).expect("scenario loads");
    sim::pipeline::run(
        &Plan::build(&loaded, seed),
        engine,
        &RunOptions {
            scenario_path: format!("scenarios/{scenario}"),
            out: Some(out.to_path_buf()),
            trace: true,
            progress: false,
        },
    )
    .expect("run")
}

/// Peer → msgs it holds at the end, from a trace: what it published or stored, less what
/// garbage collection deleted or ghosted.
fn holdings(trace: &Path) -> BTreeMap<u64, BTreeSet<String>> {
    let text = std::fs::read_to_string(trace).expect("trace written");
    let mut held: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let peer = event["peer"].as_u64();
        let msg = event["msg"].as_str().map(str::to_owned);
        let (Some(peer), Some(msg)) = (peer, msg) else {
            continue;
        };
        match event["ev"].as_str() {
            Some("publish" | "store") => {
                held.entry(peer).or_default().insert(msg);
            }
            Some("gc") if event["action"] != "erase" => {
                held.entry(peer).or_default().remove(&msg);
            }
            _ => {}
        }
    }
    held
}

#[test]
fn quickstart_agrees_on_both_tiers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = run(
        &Fullstack::new(),
        "quickstart.toml",
        1,
        &dir.path().join("full"),
    );
    let protocol = run(
        &Protocol::new(),
        "quickstart.toml",
        1,
        &dir.path().join("protocol"),
    );
    for report in [&full, &protocol] {
        assert!(
            report.checks.passed,
            "{}: {:?}",
            report.engine,
            report.checks.first_failure()
        );
    }
    assert_eq!(
        (full.engine.as_str(), protocol.engine.as_str()),
        ("fullstack", "protocol")
    );
    let held = holdings(&dir.path().join("full/trace.jsonl"));
    assert!(held.values().map(BTreeSet::len).sum::<usize>() > 1_000);
    assert_eq!(held, holdings(&dir.path().join("protocol/trace.jsonl")));
    // Same msgs, byte for byte: both tiers publish the same workload content.
    let store = |report: &Report| report.summary["store_final_mean_bytes"];
    assert_eq!(store(&full), store(&protocol));
    assert_eq!(full.summary["deliveries"], protocol.summary["deliveries"]);
    // Issue 13's agreement: convergence times and bytes per delivery within ±25 %.
    for metric in [
        "convergence_t50_ms",
        "convergence_t90_ms",
        "bytes_per_delivery",
    ] {
        let value = |report: &Report| report.summary[metric].expect("defined on quickstart");
        let ratio = value(&protocol) / value(&full);
        assert!(
            (0.75..=1.25).contains(&ratio),
            "{metric}: protocol {} vs full stack {} ({ratio:.2})",
            value(&protocol),
            value(&full)
        );
    }
}

#[test]
fn the_protocol_tier_is_deterministic_across_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    for run in ["a", "b"] {
        let output = Command::new(env!("CARGO_BIN_EXE_ppppp-sim"))
            .args(["run", "../scenarios/partition-heal.toml", "--seed", "3"])
            .args(["--engine", "protocol", "--trace", "--out"])
            .arg(dir.path().join(run))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run ppppp-sim");
        assert_eq!(output.status.code(), Some(0), "{output:?}");
    }
    for file in ["report.json", "trace.jsonl"] {
        let a = std::fs::read(dir.path().join("a").join(file)).expect("written");
        let b = std::fs::read(dir.path().join("b").join(file)).expect("written");
        assert!(a == b, "{file} differs between two processes");
    }
    let report = std::fs::read_to_string(dir.path().join("a/report.json")).expect("written");
    assert!(report.contains("\"engine\": \"protocol\""));
    assert!(report.contains("--engine protocol"));
}

#[test]
fn shared_signature_verdicts_change_nothing_but_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = run(
        &Protocol::new(),
        "quickstart.toml",
        2,
        &dir.path().join("a"),
    );
    let all = run(
        &Protocol::verifying_all(),
        "quickstart.toml",
        2,
        &dir.path().join("b"),
    );
    assert!(shared.checks.passed, "{:?}", shared.checks.first_failure());
    assert_eq!(shared.trace_hash, all.trace_hash);
}
