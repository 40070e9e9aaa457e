//! The fabric substrate (turmoil-net moved by an event-driven loop, issue 14; the default):
//! byte-identical across processes with a crash and a restart, real packet loss (connections
//! survive 10 % loss where turmoil 0.7's connections break). The turmoil 0.7 substrate stays
//! available (`--substrate turmoil`): the sabotage check must still bite on it.

use std::path::{Path, PathBuf};
use std::process::Command;

use sim::check::ViolationKind;
use sim::error::SimError;
use sim::pipeline::{Engine, RunOptions};
use sim::plan::Plan;
use sim::report::Report;
use sim::scenario::Scenario;
use sim_fullstack::{Fullstack, Sabotage, Substrate};

/// Ten peers for 120 s; every link loses 10 % of its packets from 20 s to 80 s; p-1 is down
/// from 85 s to 90 s.
const LOSSY: &str = r#"
name = "lossy"
seed = 4
duration = "120s"

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
goals = ["post@all", "profile@dict", "follows@set"]
follow_goals = ["post@newest-10", "profile@dict", "follows@set"]

[workload]
start = "1s"
stop = "70s"

[workload.post]
rate = "6/min"
size = "lognormal(200B, 0.5, 2KiB)"

[[fault]]
at = "20s"
action = "loss"
fail_rate = 0.1
duration = "60s"
label = "10 % loss on every link"

[[fault]]
at = "85s"
action = "crash"
peers = ["p-1"]
duration = "5s"
label = "p-1 down"

[check]
converge_within = "20s"
"#;

fn write_scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("lossy.toml");
    std::fs::write(&path, text).expect("write scenario");
    path
}

fn run(engine: &dyn Engine, path: &Path, out: &Path) -> Result<Report, SimError> {
    let scenario = Scenario::load(path).expect("scenario loads");
    let plan = Plan::build(&scenario, scenario.seed);
    sim::pipeline::run(
        &plan,
        engine,
        &RunOptions {
            scenario_path: path.display().to_string(),
            out: Some(out.to_path_buf()),
            trace: true,
            progress: false,
        },
    )
}

/// Connections closed while the links were lossy (20 s to 80 s, plus the idle timeout).
fn disconnects_during_loss(out: &Path) -> usize {
    let trace = std::fs::read_to_string(out.join("trace.jsonl")).expect("trace written");
    trace
        .lines()
        .skip(1)
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("trace line"))
        .filter(|event| event["ev"] == "disconnect" && event["reason"] != "crash")
        .filter(|event| (20_000..84_000).contains(&event["t"].as_u64().unwrap_or(0)))
        .count()
}

#[test]
fn ten_percent_packet_loss_is_retransmitted_and_connections_survive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), LOSSY);
    let fabric = run(&Fullstack::new(), &path, &dir.path().join("fabric"))
        .expect("the fabric run completes");
    assert!(fabric.checks.passed, "checks fail under 10 % packet loss");
    let turmoil = Fullstack::on(Substrate::Turmoil);
    run(&turmoil, &path, &dir.path().join("turmoil")).expect("the turmoil run completes");
    let kept = disconnects_during_loss(&dir.path().join("fabric"));
    let broken = disconnects_during_loss(&dir.path().join("turmoil"));
    assert!(
        broken >= 5 * kept.max(1),
        "fabric closed {kept} connections during the loss, turmoil 0.7 {broken}"
    );
}

#[test]
fn the_fabric_is_byte_identical_across_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), LOSSY);
    let run_binary = |out: &Path| {
        let output = Command::new(env!("CARGO_BIN_EXE_ppppp-sim"))
            .arg("run")
            .arg(&path)
            .arg("--out")
            .arg(out)
            .arg("--trace")
            .output()
            .expect("run ppppp-sim");
        assert!(output.status.success(), "{output:?}");
    };
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    run_binary(&one);
    run_binary(&two);
    for file in ["report.json", "trace.jsonl"] {
        let a = std::fs::read(one.join(file)).expect("written");
        let b = std::fs::read(two.join(file)).expect("written");
        assert!(a == b, "{file} differs between two processes");
    }
    let report = Report::read(&one.join("report.json")).expect("report.json reads");
    assert_eq!(
        (report.engine.as_str(), report.substrate.as_deref()),
        ("fullstack", Some("fabric")),
        "the default substrate is the fabric, and the report names it"
    );
    assert!(
        report.repro.contains("--substrate fabric"),
        "{}",
        report.repro
    );
    let trace = std::fs::read_to_string(one.join("trace.jsonl")).expect("written");
    let header: serde_json::Value =
        serde_json::from_str(trace.lines().next().expect("a header")).expect("JSON header");
    assert_eq!(header["substrate"], "fabric", "{header}");
}

#[test]
fn a_store_that_forgets_acknowledged_msgs_fails_safety_on_turmoil_0_7() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), LOSSY);
    let engine =
        Fullstack::with_sabotage(Sabotage::AmnesiacStore(1)).with_substrate(Substrate::Turmoil);
    let report = run(&engine, &path, &dir.path().join("out")).expect("the run completes");
    let safety = &report.checks.safety;
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
}
