//! Sweep aggregation and compare's regression gate.

use std::path::Path;

use sim::compare::{compare_files, judge};
use sim::pipeline::RunOptions;
use sim::plan::Plan;
use sim::report::{Direction, Report};
use sim::scenario::Scenario;
use sim_protocol::Protocol;

use crate::support::scenarios_dir;

fn report(seed: u64) -> Report {
    let scenario = Scenario::load(scenarios_dir().join("quickstart.toml")).expect("loads");
    sim::pipeline::run(
        &Plan::build(&scenario, seed),
        &Protocol::new(),
        &RunOptions {
            scenario_path: "scenarios/quickstart.toml".to_owned(),
            out: None,
            trace: false,
            progress: false,
        },
    )
    .expect("protocol-tier run")
}

fn write(path: &Path, report: &Report) {
    std::fs::write(path, report.to_json()).expect("write report");
}

#[test]
fn sweep_means_and_intervals() {
    let mut reports: Vec<Report> = (1..=3).map(report).collect();
    // Pin one metric to a known sample: 10, 20, 30 → mean 20, sd 10, CI 4.302653·10/√3.
    for (report, value) in reports.iter_mut().zip([10.0, 20.0, 30.0]) {
        report
            .summary
            .insert("bytes_per_delivery".to_owned(), Some(value));
    }
    let sweep = sim::sweep::aggregate_seeds(&reports).expect("aggregates");
    assert_eq!(sweep.cells.len(), 1);
    assert_eq!(sweep.cells[0].runs.len(), 3);
    assert_eq!(sweep.seeds, vec![1, 2, 3]);
    assert_eq!(sweep.failed, 0);
    let bytes = &sweep.cells[0].metrics["bytes_per_delivery"];
    assert_eq!((bytes.n, bytes.mean, bytes.sd), (3, Some(20.0), Some(10.0)));
    assert_eq!(bytes.median, Some(20.0));
    let ci = bytes.ci95.expect("n > 1");
    assert!((ci - 4.302_653 * 10.0 / 3_f64.sqrt()).abs() < 1e-3, "{ci}");
    assert_eq!(bytes.direction, Direction::LowerIsBetter);
    let md = sim::sweep::markdown(&sweep);
    assert!(
        md.contains("## bytes_per_delivery (B, lower is better; interval: Student's t)"),
        "{md}"
    );
    assert!(md.contains("| base | 3 | 20 | 15 – 25 | 20 |"), "{md}");
    // Mixed scenarios are refused.
    let mut other = report(4);
    other.scenario.name = "other".to_owned();
    reports.push(other);
    assert!(sim::sweep::aggregate_seeds(&reports).is_err());
}

#[test]
fn judge_follows_directions() {
    let lower = Direction::LowerIsBetter;
    let higher = Direction::HigherIsBetter;
    assert_eq!(
        judge(lower, Some(100.0), Some(120.0), Some(10.0)),
        (Some(20.0), true)
    );
    assert_eq!(
        judge(lower, Some(100.0), Some(105.0), Some(10.0)),
        (Some(5.0), false)
    );
    assert_eq!(
        judge(lower, Some(100.0), Some(50.0), Some(10.0)),
        (Some(-50.0), false)
    );
    assert_eq!(
        judge(higher, Some(1.0), Some(0.8), Some(10.0)),
        (Some(-20.0), true)
    );
    assert_eq!(
        judge(higher, Some(1.0), Some(1.2), Some(10.0)),
        (Some(20.0), false)
    );
    assert!(
        judge(lower, Some(0.0), Some(3.0), Some(10.0)).1,
        "worse than zero"
    );
    assert!(
        judge(lower, Some(100.0), None, Some(10.0)).1,
        "became undefined"
    );
    assert!(!judge(Direction::Info, Some(1.0), Some(100.0), Some(10.0)).1);
    assert!(
        !judge(lower, Some(100.0), Some(200.0), None).1,
        "no threshold, no gate"
    );
}

#[test]
fn compare_exits_non_zero_past_the_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = report(1);
    let mut head = base.clone();
    let p50 = base.summary["latency_p50_ms"].expect("defined");
    head.summary
        .insert("latency_p50_ms".to_owned(), Some(p50 * 1.5));
    let base_path = dir.path().join("base.json");
    let head_path = dir.path().join("head.json");
    write(&base_path, &base);
    write(&head_path, &head);

    let comparison = compare_files(&base_path, &head_path, Some(10.0), false).expect("compares");
    let regressions = comparison.regressions();
    assert_eq!(regressions.len(), 1);
    assert_eq!(regressions[0].metric, "latency_p50_ms");

    let bin = env!("CARGO_BIN_EXE_ppppp-sim");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .arg("compare")
            .arg(&base_path)
            .arg(&head_path)
            .args(args)
            .output()
            .expect("run compare")
    };
    let failing = run(&["--max-regression", "10"]);
    assert_eq!(failing.status.code(), Some(1), "{failing:?}");
    assert!(String::from_utf8_lossy(&failing.stderr).contains("regression: latency_p50_ms"));
    let passing = run(&["--max-regression", "60"]);
    assert_eq!(passing.status.code(), Some(0), "{passing:?}");
    let ungated = run(&[]);
    assert_eq!(ungated.status.code(), Some(0));
    // Identical files never regress.
    let same = compare_files(&base_path, &base_path, Some(0.0), false).expect("compares");
    assert!(same.regressions().is_empty());
}

#[test]
fn sweep_comparisons_gate_only_significant_moves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base_reports: Vec<Report> = (1..=3).map(report).collect();
    let with = |values: [f64; 3]| {
        let mut reports = base_reports.clone();
        for (report, value) in reports.iter_mut().zip(values) {
            report
                .summary
                .insert("latency_p50_ms".to_owned(), Some(value));
        }
        sim::sweep::aggregate_seeds(&reports).expect("aggregates")
    };
    let base = with([100.0, 101.0, 99.0]);
    let noisy = with([80.0, 200.0, 120.0]); // mean +33 %, intervals overlap
    let worse = with([150.0, 151.0, 149.0]); // mean +50 %, intervals apart
    let write_sweep = |name: &str, sweep: &sim::sweep::Sweep| {
        let path = dir.path().join(name);
        std::fs::write(&path, sweep.to_json()).expect("write sweep");
        path
    };
    let base_path = write_sweep("base.json", &base);
    let noisy_path = write_sweep("noisy.json", &noisy);
    let worse_path = write_sweep("worse.json", &worse);
    let p50 = |c: &sim::compare::Comparison| {
        c.rows
            .iter()
            .find(|r| r.metric == "latency_p50_ms")
            .cloned()
            .expect("row")
    };
    let noisy_row =
        p50(&compare_files(&base_path, &noisy_path, Some(10.0), false).expect("compares"));
    assert_eq!(noisy_row.significant, Some(false));
    assert!(!noisy_row.regression);
    let worse_row =
        p50(&compare_files(&base_path, &worse_path, Some(10.0), false).expect("compares"));
    assert_eq!(worse_row.significant, Some(true));
    assert!(worse_row.regression);
    // A run and a sweep cannot be compared.
    let run_path = dir.path().join("run.json");
    write(&run_path, &base_reports[0]);
    assert!(compare_files(&run_path, &base_path, Some(10.0), true).is_err());
}
