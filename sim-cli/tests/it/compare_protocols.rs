//! `ppppp-sim compare-protocols`: two processes give byte-identical comparisons, every row
//! is there with its runs, and bad protocol names are refused.

use std::process::Command;

use crate::support::write_scenario;

/// 10 peers for 2 minutes with a 15 s partition: small enough for a test, faulty enough that
/// catching up matters.
const SMALL: &str = r#"
name = "protocols-small"
duration = "2m"
engine = "protocol"

[network]
latency = { min = "5ms", max = "60ms", curve = 5.0 }

[topology]
kind = "small-world"
k = 4
beta = 0.2
dial_follows = true

[[group]]
name = "peer"
count = 10
goals = ["post@all", "profile@dict", "follows@set"]
follow_goals = ["post@newest-50", "profile@dict", "follows@set"]
follow = "zipf(1.0, 4)"

[workload]
start = "5s"
stop = "50s"

[workload.post]
rate = "pareto(1/min, 1.3, 6/min)"
size = "lognormal(300B, 0.8, 4KiB)"
posters = 0.8

[workload.dict]
feed = "profile"
fields = ["name", "about", "image"]
rate = "6/h"

[[fault]]
at = "20s"
action = "partition"
a = ["random(3, peer)"]
duration = "15s"

[check]
converge_within = "60s"
"#;

fn compare(
    scenario: &std::path::Path,
    protocols: &str,
    out: &std::path::Path,
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ppppp-sim"))
        .arg("compare-protocols")
        .arg(scenario)
        .args([
            "--protocols",
            protocols,
            "--seeds",
            "1..=2",
            "--jobs",
            "1",
            "--quiet",
        ])
        .arg("--out")
        .arg(out)
        .output()
        .expect("run ppppp-sim")
}

#[test]
fn two_processes_write_byte_identical_comparisons() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "protocols-small", SMALL);
    let protocols =
        "ppppp-reference,ppppp,ssb-classic,ssb-ebt,tinyssb,p2p-flood,p2p-sync-table,negentropy";
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let output = compare(&scenario, protocols, out);
        // Flooding has no catch-up, so the partition fails its liveness check: exit 1.
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for file in ["protocols.json", "protocols.md", "protocols.csv"] {
        let first = std::fs::read(a.join(file)).expect("first comparison");
        let second = std::fs::read(b.join(file)).expect("second comparison");
        assert!(first == second, "{file} differs between two processes");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("protocols.json")).expect("read"))
            .expect("protocols.json parses");
    let rows = json["protocols"].as_array().expect("protocols");
    assert_eq!(rows.len(), 8);
    for row in rows {
        assert_eq!(row["seeds"], serde_json::json!([1, 2]));
        let name = row["name"].as_str().expect("name");
        let live = row["liveness_passed"].as_array().expect("liveness");
        if name != "p2p-flood" {
            assert!(live.iter().all(|p| p == true), "{name} failed liveness");
        }
    }
    let bytes = &json["metrics"]["bytes_per_delivery"]["protocols"];
    for name in ["ppppp", "ssb-ebt", "negentropy"] {
        assert!(
            bytes[name]["mean"].as_f64().is_some_and(|b| b > 0.0),
            "{name}"
        );
    }
    assert!(a.join("convergence_bands.svg").exists());
    no_queue_and_recovery_from_the_partition(&json, &a);
}

/// Without a bandwidth nothing waits to be sent, so no row has a queue; the plan's one fault,
/// the partition, is recovered from in both seeds by the rows that catch up, and by flooding
/// (no catch-up) in neither.
fn no_queue_and_recovery_from_the_partition(json: &serde_json::Value, dir: &std::path::Path) {
    let rows = json["protocols"].as_array().expect("protocols");
    let queue = &json["metrics"]["queue_peak_max_bytes"]["protocols"];
    for row in rows {
        let name = row["name"].as_str().expect("name");
        assert_eq!(
            queue[name]["n"], 0,
            "{name} has a queue without a bandwidth"
        );
    }
    let faults = json["recovery_by_fault"]
        .as_array()
        .expect("recovery_by_fault");
    assert_eq!(faults.len(), 1, "{faults:?}");
    let recovered = &faults[0]["protocols"];
    for name in ["ppppp", "ssb-classic", "ssb-ebt", "negentropy"] {
        assert_eq!(recovered[name]["n"], 2, "{name}: {}", recovered[name]);
    }
    assert_eq!(
        recovered["p2p-flood"]["missing"], 2,
        "{}",
        recovered["p2p-flood"]
    );
    let csv = std::fs::read_to_string(dir.join("protocols.csv")).expect("csv");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("ppppp,recovery_ms_fault_1,ms,2,")),
        "{csv}"
    );
}

#[test]
fn a_bandwidth_gives_every_row_a_peak_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let narrow = SMALL.replace("[network]\n", "[network]\nbandwidth = \"128kbit/s\"\n");
    let scenario = write_scenario(dir.path(), "protocols-narrow", &narrow);
    let out = dir.path().join("out");
    let output = compare(&scenario, "ppppp,ssb-ebt,negentropy", &out);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("protocols.json")).expect("read"))
            .expect("protocols.json parses");
    let metric = |name: &str, row: &str| json["metrics"][name]["protocols"][row].clone();
    for row in ["ppppp", "ssb-ebt", "negentropy"] {
        let (median, largest) = (
            metric("queue_peak_p50_bytes", row),
            metric("queue_peak_max_bytes", row),
        );
        assert_eq!(largest["n"], 2, "{row}: {largest}");
        let (median, largest) = (
            median["mean"].as_f64().expect("median peer's peak"),
            largest["mean"].as_f64().expect("largest peak"),
        );
        assert!(
            largest > 0.0 && largest >= median,
            "{row}: {median} {largest}"
        );
    }
}

#[test]
fn unknown_protocols_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), "protocols-small", SMALL);
    let output = compare(&scenario, "ppppp,gossipsub", &dir.path().join("out"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown protocol `gossipsub`"), "{stderr}");
}
