//! The deterministic performance gate: `sim::baseline`'s diff and tolerances on hand-made
//! runs, and `ppppp-sim check-baseline` against the committed baselines, a doctored baseline,
//! and a scenario whose behaviour really changed (the storm fix switched off), then `--bless`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sim::baseline::{BASELINE_VERSION, Baseline, SeedRun, Tolerance, Value, Verdict};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `ppppp-sim check-baseline ARGS…`, run from the workspace root (as CI does).
fn check_baseline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ppppp-sim"))
        .arg("check-baseline")
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("run ppppp-sim")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn run(seed: u64, metrics: &[(&str, Value)]) -> SeedRun {
    SeedRun {
        seed,
        metrics: metrics
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect(),
    }
}

fn baseline(runs: Vec<SeedRun>, tolerances: &[(&str, Tolerance)]) -> Baseline {
    Baseline {
        baseline_version: BASELINE_VERSION,
        scenario: "s".to_owned(),
        scenario_path: "s.toml".to_owned(),
        engine: "protocol".to_owned(),
        substrate: None,
        tolerances: tolerances
            .iter()
            .map(|(name, t)| ((*name).to_owned(), *t))
            .collect(),
        runs,
    }
}

#[test]
fn exact_by_default_and_within_a_tolerance_when_one_is_given() {
    let old = [
        ("bytes_per_delivery", Value::Number(100.0)),
        ("round_trips_mean", Value::Number(2.0)),
        ("convergence_t100_ms", Value::Number(1000.0)),
        ("verdict.liveness", Value::Text("pass".to_owned())),
    ];
    let new = [
        ("bytes_per_delivery", Value::Number(104.0)),
        ("round_trips_mean", Value::Number(2.5)),
        ("convergence_t100_ms", Value::Number(990.0)),
        ("verdict.liveness", Value::Text("FAIL".to_owned())),
    ];
    let relative = Tolerance {
        absolute: None,
        relative_pct: Some(5.0),
    };
    let absolute = Tolerance {
        absolute: Some(0.4),
        relative_pct: None,
    };
    let base = baseline(
        vec![run(1, &old)],
        &[
            ("bytes_per_delivery", relative),
            ("round_trips_mean", absolute),
        ],
    );
    let changes = sim::baseline::diff(&base, &[run(1, &new)]);
    let verdicts: BTreeMap<&str, Verdict> = changes
        .iter()
        .map(|c| (c.metric.as_str(), c.verdict))
        .collect();
    // 4 % ≤ 5 %: within; 0.5 > 0.4: moved; no tolerance: exact, even an improvement moves.
    assert_eq!(verdicts["bytes_per_delivery"], Verdict::Within);
    assert_eq!(verdicts["round_trips_mean"], Verdict::Moved);
    assert_eq!(verdicts["convergence_t100_ms"], Verdict::Moved);
    assert_eq!(verdicts["verdict.liveness"], Verdict::Moved);
    let text = sim::baseline::render(&changes);
    assert!(text.contains("bytes_per_delivery   100 → 104 (+4.00 %, worse)  within tolerance"));
    assert!(text.contains("convergence_t100_ms  1000 → 990 (-1.00 %, better)  MOVED"));
    assert!(text.contains("verdict.liveness     pass → FAIL  MOVED past tolerance"));
    // Same runs: nothing to say.
    assert!(sim::baseline::diff(&base, &[run(1, &old)]).is_empty());
    // A seed the new runs lack is a change too.
    let missing = sim::baseline::diff(&base, &[run(2, &old)]);
    assert_eq!(missing.len(), 2);
    assert!(
        missing
            .iter()
            .all(|c| c.metric == "*" && c.verdict == Verdict::Moved)
    );
}

#[test]
fn a_tolerance_for_a_metric_that_does_not_exist_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loose = Tolerance {
        absolute: Some(1.0),
        relative_pct: None,
    };
    let typo = baseline(
        vec![run(1, &[("bytes_total", Value::Number(1.0))])],
        &[("bytes_totl", loose)],
    );
    let path = dir.path().join("s.protocol.json");
    typo.write(&path).expect("write");
    let error = Baseline::read(&path).expect_err("typo refused").to_string();
    assert!(
        error.contains("`bytes_totl`, which is not a metric"),
        "{error}"
    );
    let negative = Tolerance {
        absolute: Some(-1.0),
        relative_pct: None,
    };
    let bad = baseline(
        vec![run(1, &[("bytes_total", Value::Number(1.0))])],
        &[("bytes_total", negative)],
    );
    bad.write(&path).expect("write");
    let error = Baseline::read(&path)
        .expect_err("negative refused")
        .to_string();
    assert!(error.contains("must be finite and ≥ 0"), "{error}");
}

#[test]
fn the_committed_quickstart_baseline_passes() {
    let output = check_baseline(&["scenarios/quickstart.toml", "--engine", "protocol"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("quickstart on protocol (seeds [1]"),
        "{stdout}"
    );
    assert!(stdout.contains("every metric matches"), "{stdout}");
}

/// The committed protocol-tier quickstart baseline, copied into `dir` with `doctor` applied.
fn doctored_copy(dir: &Path, doctor: impl FnOnce(&mut Baseline)) -> f64 {
    let committed = workspace_root().join("benches/baselines/quickstart.protocol.json");
    let mut copy = Baseline::read(&committed).expect("the committed baseline reads");
    let Value::Number(sync) = copy.runs[0].metrics["bytes_per_delivery_sync_control"] else {
        panic!("sync control bytes per delivery is a number");
    };
    doctor(&mut copy);
    copy.write(&dir.join("quickstart.protocol.json"))
        .expect("write");
    sync
}

#[test]
fn a_doctored_baseline_fails_with_a_readable_diff_unless_tolerated() {
    let dir = tempfile::tempdir().expect("tempdir");
    // As if this build doubled the sync control traffic: the baseline holds half of it.
    let sync = doctored_copy(dir.path(), |copy| {
        let metrics = &mut copy.runs[0].metrics;
        let Some(Value::Number(value)) = metrics.get_mut("bytes_per_delivery_sync_control") else {
            panic!("a number");
        };
        *value /= 2.0;
    });
    let dir_arg = dir.path().to_str().expect("utf-8 path");
    let output = check_baseline(&["--dir", dir_arg]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let line = format!(
        "seed 1  bytes_per_delivery_sync_control  {} → {sync} (+100.00 %, worse)  MOVED past \
         tolerance",
        sync / 2.0
    );
    assert!(stdout.contains(&line), "{stdout}");
    assert!(
        stdout.contains("1 metric(s) moved past tolerance, 0 within"),
        "{stdout}"
    );
    assert!(
        stderr.contains("check-baseline FAILED: 1 metric(s)"),
        "{stderr}"
    );
    // A tolerance of 150 % lets it through, still shown.
    doctored_copy(dir.path(), |copy| {
        let metrics = &mut copy.runs[0].metrics;
        if let Some(Value::Number(value)) = metrics.get_mut("bytes_per_delivery_sync_control") {
            *value /= 2.0;
        }
        let tolerance = Tolerance {
            absolute: None,
            relative_pct: Some(150.0),
        };
        let name = "bytes_per_delivery_sync_control".to_owned();
        copy.tolerances.insert(name, tolerance);
    });
    let output = check_baseline(&["--dir", dir_arg]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("0 metric(s) moved past tolerance, 1 within"),
        "{stdout}"
    );
}

#[test]
fn switching_off_the_storm_fix_fails_the_gate_and_bless_accepts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("hub-quiet.toml");
    let original =
        std::fs::read_to_string(workspace_root().join("scenarios/hub-quiet.toml")).expect("read");
    std::fs::write(&scenario, &original).expect("write");
    let baselines = dir.path().join("baselines");
    let (scenario_arg, dir_arg) = (
        scenario.to_str().expect("utf-8"),
        baselines.to_str().expect("utf-8"),
    );
    let args = [scenario_arg, "--engine", "protocol", "--dir", dir_arg];
    let created = check_baseline(&[&args[..], &["--bless", "--seeds", "1..=3"]].concat());
    let (stdout, stderr) = text(&created);
    assert_eq!(created.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("(seeds [1, 2, 3]"), "{stdout}");
    assert!(stdout.contains(": created"), "{stdout}");
    // A copy of the shipped scenario measures as the committed baseline does.
    let file = baselines.join("hub-quiet.protocol.json");
    let committed = workspace_root().join("benches/baselines/hub-quiet.protocol.json");
    let fresh = Baseline::read(&file).expect("created");
    assert_eq!(fresh.runs, Baseline::read(&committed).expect("reads").runs);

    // pzp-sync 1.0.4's re-initiation: every local add asks again for every requested tangle
    // (the storm), and a relay that had nothing when asked never serves it (the relay hole).
    std::fs::write(
        &scenario,
        format!("reinitiation = \"reference\"\n{original}"),
    )
    .expect("write");
    let failed = check_baseline(&args);
    let (stdout, stderr) = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("plan_hash"), "{stdout}");
    let line = |metric: &str| {
        stdout
            .lines()
            .find(|l| l.contains("seed 1") && l.contains(&format!(" {metric} ")))
            .unwrap_or_else(|| panic!("{metric} moved: {stdout}"))
            .to_owned()
    };
    let delivery = line("verdict.delivery");
    assert!(
        delivery.ends_with("pass → FAIL  MOVED past tolerance"),
        "{delivery}"
    );
    for metric in ["duplicates_per_delivery", "bytes_per_delivery_sync_control"] {
        assert!(
            line(metric).contains("worse)  MOVED past tolerance"),
            "{}",
            line(metric)
        );
    }

    let blessed = check_baseline(&[&args[..], &["--bless"]].concat());
    let (bless_out, stderr) = text(&blessed);
    assert_eq!(blessed.status.code(), Some(0), "{bless_out}\n{stderr}");
    assert!(bless_out.contains("blessed"), "{bless_out}");
    let duplicates = line("duplicates_per_delivery");
    assert!(
        bless_out.contains(&duplicates),
        "bless prints the diff: {bless_out}"
    );
    assert_ne!(Baseline::read(&file).expect("rewritten").runs, fresh.runs);
    let again = check_baseline(&args);
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("every metric matches"), "{stdout}");
}

#[test]
fn a_missing_baseline_is_an_error_that_says_how_to_create_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_arg = dir.path().to_str().expect("utf-8");
    let output = check_baseline(&["scenarios/quickstart.toml", "--dir", dir_arg]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("no baseline for quickstart on the fullstack engine"),
        "{stderr}"
    );
    assert!(stderr.contains("--bless"), "{stderr}");
}
