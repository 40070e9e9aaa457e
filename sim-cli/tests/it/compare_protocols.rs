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
