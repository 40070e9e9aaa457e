//! Experiments: parameter matrices (expansion, validation, scaling selectors), runs.csv's
//! columns, bootstrap intervals, compare refusing results that are not comparable, `--out`
//! clearing, quiet broken pipes, and a merged sweep equal to a local one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sim::matrix::{MatrixError, expand_file, parse_set};
use sim::plan::Plan;
use sim::report::SUMMARY_METRICS;

use crate::support::scenarios_dir;

const BIN: &str = env!("CARGO_BIN_EXE_ppppp-sim");

/// A small two-group scenario with a fault that picks half of the east group.
const TWO_GROUPS: &str = r#"
name = "two-groups"
seed = 3
duration = "20s"

[topology]
kind = "full"

[[group]]
name = "east"
count = 4
follow = "uniform(2)"
follow_goals = ["post@newest-100"]

[[group]]
name = "west"
count = 2
follow = "uniform(1)"
follow_goals = ["post@newest-100"]

[workload]
start = "1s"
stop = "10s"

[workload.post]
rate = "6/min"
size = "400B"

[[fault]]
at = "4s"
action = "crash"
peers = ["random(50%, east)"]
duration = "3s"

[check]
converge_within = "8s"
"#;

fn write_scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).expect("write scenario");
    path
}

fn sets(arguments: &[&str]) -> Vec<sim::matrix::Axis> {
    arguments
        .iter()
        .map(|a| parse_set(a).expect("valid --set"))
        .collect()
}

#[test]
fn matrix_is_the_cross_product_in_axis_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), TWO_GROUPS);
    let axes = sets(&["group.east.count=4,10", "network.latency.max=50ms,200ms,1s"]);
    let cells = expand_file(&path, &axes).expect("expands");
    assert_eq!(cells.len(), 6);
    let labels: Vec<String> = cells
        .iter()
        .map(|c| sim::sweep::cell_label(&c.parameters))
        .collect();
    assert_eq!(labels[0], "group.east.count=4 network.latency.max=50ms");
    assert_eq!(labels[1], "group.east.count=4 network.latency.max=200ms");
    assert_eq!(labels[5], "group.east.count=10 network.latency.max=1s");
    assert_eq!(cells[0].dir, "cell-01");
    assert_eq!(cells[5].dir, "cell-06");
    assert_eq!(cells[5].scenario.peer_count(), 12);
    assert_eq!(cells[5].scenario.network.latency.model().max_ms, 1_000);
    assert_eq!(cells[1].scenario.network.latency.model().max_ms, 200);
    // Other fields are untouched.
    assert_eq!(cells[3].scenario.name, "two-groups");
    assert_eq!(cells[3].scenario.groups[1].count, 2);
}

#[test]
fn matrix_table_in_the_file_and_set_overrides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{TWO_GROUPS}\n[matrix]\n\"group.east.count\" = [4, 6]\n\"fault.0.duration\" = [\"1s\", \"2s\"]\n"
    );
    let path = write_scenario(dir.path(), &text);
    // A plain load (what `run` does) accepts the table and uses the file's values.
    let plain = sim::scenario::Scenario::load(&path).expect("loads");
    assert_eq!(plain.groups[0].count, 4);
    let cells = expand_file(&path, &[]).expect("expands");
    assert_eq!(cells.len(), 4, "2 × 2");
    // File axes in key order: fault.0.duration, group.east.count.
    assert_eq!(cells[1].parameters[0].path, "fault.0.duration");
    assert_eq!(cells[1].parameters[1].value, "6");
    let overridden = expand_file(&path, &sets(&["group.east.count=8"])).expect("expands");
    assert_eq!(overridden.len(), 2);
    assert!(overridden.iter().all(|c| c.scenario.groups[0].count == 8));
    // The cells' files hold no [matrix].
    assert!(!overridden[0].text.contains("matrix"));
}

#[test]
fn percentage_selectors_scale_with_the_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), TWO_GROUPS);
    let cells = expand_file(&path, &sets(&["group.east.count=4,10,11"])).expect("expands");
    let crashed: Vec<usize> = cells
        .iter()
        .map(|c| {
            let plan = Plan::build(&c.scenario, 1);
            plan.faults
                .iter()
                .find(|f| !f.undo)
                .expect("crash")
                .peers
                .len()
        })
        .collect();
    assert_eq!(crashed, vec![2, 5, 6], "50 % rounded up");
    let bad = write_scenario(dir.path(), &TWO_GROUPS.replace("50%", "0%"));
    let error = expand_file(&bad, &[]).expect_err("0 % picks nobody");
    assert!(error.to_string().contains("percentage"), "{error}");
}

fn expand_error(arguments: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), TWO_GROUPS);
    let axes: Result<Vec<_>, MatrixError> = arguments.iter().map(|a| parse_set(a)).collect();
    match axes.and_then(|axes| expand_file(&path, &axes)) {
        Ok(cells) => panic!("{arguments:?} should fail, made {} cells", cells.len()),
        Err(error) => error.to_string(),
    }
}

#[test]
fn bad_set_paths_and_values_are_clear_errors() {
    let no_group = expand_error(&["group.peer.count=10,20"]);
    assert!(
        no_group.contains("no element named `peer` (there are: east, west)"),
        "{no_group}"
    );
    let past = expand_error(&["fault.3.duration=1s"]);
    assert!(past.contains("index 3 is past the 1 element(s)"), "{past}");
    let unknown = expand_error(&["network.latncy.max=50ms"]);
    assert!(
        unknown.contains("network.latncy.max=50ms") && unknown.contains("latncy"),
        "{unknown}"
    );
    let value = expand_error(&["group.east.count=4,0"]);
    assert!(
        value.starts_with("cell group.east.count=0: group[0].count"),
        "{value}"
    );
    let duration = expand_error(&["network.latency.max=fast"]);
    assert!(duration.contains("network.latency.max=fast"), "{duration}");
    let syntax = expand_error(&["group.east.count"]);
    assert!(syntax.contains("write PATH=VALUE"), "{syntax}");
    let element = expand_error(&["group.east=3"]);
    assert!(
        element.contains("`group.east` is an element of a list; name one of its fields"),
        "{element}"
    );
    let table = expand_error(&["topology=3"]);
    assert!(table.contains("`topology` is a table or a list"), "{table}");
    let scalar = expand_error(&["seed.x=3"]);
    assert!(
        scalar.contains("`seed` is a value, not a table"),
        "{scalar}"
    );
    // Commas inside brackets and parentheses do not split values.
    let axis = parse_set(r#"fault.0.peers=["random(1, east)", "west-0"],["random(50%, east)"]"#)
        .expect("two values");
    assert_eq!(axis.values.len(), 2);
}

fn run_cli(arguments: &[&str]) -> Output {
    Command::new(BIN)
        .args(arguments)
        .output()
        .expect("run ppppp-sim")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn compare_refuses_results_that_are_not_comparable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quickstart = scenarios_dir().join("quickstart.toml");
    let quickstart = quickstart.to_str().expect("utf-8 path");
    let report = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut arguments = vec![
            "run", quickstart, "--engine", "protocol", "--quiet", "--out",
        ];
        arguments.push(out.to_str().expect("utf-8"));
        arguments.extend(extra);
        let output = run_cli(&arguments);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        out.join("report.json")
    };
    let seed1 = report("seed1", &[]);
    let seed2 = report("seed2", &["--seed", "2"]);
    let compare = |base: &Path, head: &Path, extra: &[&str]| {
        let mut arguments = vec![
            "compare",
            base.to_str().expect("utf-8"),
            head.to_str().expect("utf-8"),
        ];
        arguments.extend(extra);
        run_cli(&arguments)
    };
    let refused = compare(&seed1, &seed2, &["--max-regression", "0"]);
    assert_eq!(refused.status.code(), Some(2));
    let message = text(&refused.stderr);
    assert!(message.contains("not comparable: the plan"), "{message}");
    assert!(
        message.contains("seed 1") && message.contains("seed 2"),
        "{message}"
    );
    assert!(message.contains("--allow-different"), "{message}");
    let allowed = compare(&seed1, &seed2, &["--allow-different"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed.stderr));
    // Another engine, another scenario name: refused too, and named.
    let mut other = sim::report::Report::read(&seed1).expect("reads");
    other.engine = "fullstack".to_owned();
    let engine_path = dir.path().join("engine.json");
    std::fs::write(&engine_path, other.to_json()).expect("write");
    let engine = compare(&seed1, &engine_path, &[]);
    assert!(text(&engine.stderr).contains("the engine differs (base protocol, head fullstack)"));
    // Two full-stack runs on different substrates are refused too.
    let mut fabric = other.clone();
    fabric.substrate = Some("fabric".to_owned());
    let fabric_path = dir.path().join("fabric.json");
    std::fs::write(&fabric_path, fabric.to_json()).expect("write");
    fabric.substrate = Some("turmoil".to_owned());
    let turmoil_path = dir.path().join("turmoil.json");
    std::fs::write(&turmoil_path, fabric.to_json()).expect("write");
    let substrates = compare(&fabric_path, &turmoil_path, &[]);
    assert_eq!(substrates.status.code(), Some(2));
    assert!(
        text(&substrates.stderr).contains("the substrate differs (base fabric, head turmoil)"),
        "{}",
        text(&substrates.stderr)
    );
    other.engine = "protocol".to_owned();
    other.scenario.name = "renamed".to_owned();
    std::fs::write(&engine_path, other.to_json()).expect("write");
    let renamed = compare(&seed1, &engine_path, &[]);
    assert!(text(&renamed.stderr).contains("the scenario name differs"));
    // The same run compares.
    assert_eq!(
        compare(&seed1, &seed1, &["--max-regression", "0"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn a_run_clears_what_the_previous_run_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), TWO_GROUPS);
    let out = dir.path().join("out");
    let arguments = |trace: bool| {
        let mut a = vec![
            "run".to_owned(),
            path.display().to_string(),
            "--engine".to_owned(),
            "protocol".to_owned(),
            "--quiet".to_owned(),
            "--out".to_owned(),
            out.display().to_string(),
        ];
        if trace {
            a.push("--trace".to_owned());
        }
        a
    };
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("notes.txt"), "mine").expect("write");
    let first = Command::new(BIN)
        .args(arguments(true))
        .output()
        .expect("run");
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(out.join("trace.jsonl").exists());
    let second = Command::new(BIN)
        .args(arguments(false))
        .output()
        .expect("run");
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        !out.join("trace.jsonl").exists(),
        "a stale trace beside a new report"
    );
    assert!(out.join("report.json").exists());
    assert!(out.join("notes.txt").exists(), "other files are left alone");
}

#[test]
fn plan_into_a_closed_pipe_exits_quietly() {
    // swarm-100's plan (about 1 MB) is far larger than a pipe's buffer.
    let mut child = Command::new(BIN)
        .args(["plan"])
        .arg(scenarios_dir().join("swarm-100.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plan");
    let mut stdout = child.stdout.take().expect("piped");
    let mut first = [0_u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).expect("some output");
    drop(stdout);
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
}

/// The columns of runs.csv, pinned: adding a summary metric appends a column, and changing
/// this list is a deliberate change of the file's format.
#[test]
fn runs_csv_columns_are_stable() {
    let header = sim::runs_csv::header(&["group.peer.count".to_owned()]);
    let mut expected = vec![
        "scenario",
        "engine",
        "substrate",
        "cell",
        "group.peer.count",
        "seed",
        "passed",
        "plan_hash",
        "trace_hash",
    ];
    expected.extend(SUMMARY_METRICS.iter().map(|(name, _, _)| *name));
    assert_eq!(header, expected);
    assert_eq!(
        &header[9..13],
        [
            "latency_p50_ms",
            "latency_p90_ms",
            "latency_p99_ms",
            "latency_max_ms"
        ]
    );
    assert_eq!(header.len(), 9 + 29);
}

/// Bootstrap intervals of the mean of an exponential distribution (mean 1, heavy right
/// tail): over many samples they cover the true mean about 95 % of the time, and their lower
/// bounds never go below zero (Student's t's do, for such samples).
#[test]
fn bootstrap_intervals_cover_a_known_mean() {
    let trials = 200;
    let n = 30;
    let mut covered = 0;
    let mut t_negative = 0;
    for trial in 0..trials {
        let mut rng = sim::rng::stream(42, "bootstrap-test", trial);
        let sample: Vec<f64> = (0..n).map(|_| rng.exp(1.0)).collect();
        let (low, high) = sim::stats::bootstrap_mean_ci95(&sample).expect("n ≥ 2");
        assert!(low > 0.0 && low <= high, "{low} {high}");
        if low <= 1.0 && 1.0 <= high {
            covered += 1;
        }
        let t = sim::stats::summarize(&sample[..3]).expect("values");
        if t.low.is_some_and(|low| low < 0.0) {
            t_negative += 1;
        }
    }
    let coverage = f64::from(covered) / f64::from(u32::try_from(trials).expect("small"));
    assert!((0.88..=0.98).contains(&coverage), "coverage {coverage}");
    assert!(
        t_negative > 0,
        "t intervals of 3 exponential values go negative"
    );
    // Deterministic: the same values give the same interval.
    let sample = [3.0, 1.0, 250.0, 7.0];
    assert_eq!(
        sim::stats::bootstrap_mean_ci95(&sample),
        sim::stats::bootstrap_mean_ci95(&[250.0, 7.0, 3.0, 1.0])
    );
    let (low, high) = sim::stats::bootstrap_mean_ci95(&sample).expect("n ≥ 2");
    assert!(
        low >= 1.0 && high <= 250.0,
        "within the sample's range: {low} {high}"
    );
}

/// Times get bootstrap intervals (inside the sample's range), the rest Student's t.
#[test]
fn sweep_statistics_per_metric() {
    use sim::report::Direction;
    use sim::sweep::{IntervalMethod, summarize_metric};
    let latency = summarize_metric(
        Direction::LowerIsBetter,
        "ms",
        vec![Some(100.0), Some(120.0), Some(30_000.0), None],
    );
    assert_eq!(latency.interval, IntervalMethod::Bootstrap);
    assert_eq!((latency.n, latency.missing), (3, 1));
    assert_eq!(latency.median, Some(120.0));
    assert_eq!((latency.q1, latency.q3), (Some(110.0), Some(15_060.0)));
    assert!(latency.low.is_some_and(|low| low >= 100.0), "{latency:?}");
    assert_eq!(latency.ci95, None);
    assert_eq!(
        latency.values,
        vec![Some(100.0), Some(120.0), Some(30_000.0), None]
    );
    let bytes = summarize_metric(
        Direction::LowerIsBetter,
        "B",
        vec![Some(10.0), Some(20.0), Some(30.0)],
    );
    assert_eq!(bytes.interval, IntervalMethod::StudentT);
    let ci = bytes.ci95.expect("n > 1");
    assert!((ci - 4.302_653 * 10.0 / 3_f64.sqrt()).abs() < 1e-3, "{ci}");
}

fn sweep_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            ["sweep.json", "sweep.md", "runs.csv"].contains(&name.as_str())
                || name.ends_with(".svg")
                || name.ends_with(".png")
        })
        .collect();
    names.sort();
    names
}

/// Asserts the outputs in `a` and `b` are the same files with the same bytes.
fn assert_same_outputs(a: &Path, b: &Path) {
    let names = sweep_files(a);
    assert_eq!(names, sweep_files(b));
    for expected in [
        "sweep.json",
        "sweep.md",
        "runs.csv",
        "metric_recovery_max_ms.svg",
        "convergence_bands.png",
        "latency_cdfs.svg",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    for name in &names {
        let (x, y) = (
            std::fs::read(a.join(name)).expect("read"),
            std::fs::read(b.join(name)).expect("read"),
        );
        assert!(
            x == y,
            "{name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

const MATRIX: &[&str] = &[
    "--engine",
    "protocol",
    "--seeds",
    "1..=2",
    "--set",
    "group.east.count=4,6",
    "--quiet",
];

fn local_sweep(scenario: &Path, out: &Path) -> Output {
    let mut arguments = vec!["sweep", scenario.to_str().expect("utf-8")];
    arguments.extend(MATRIX);
    arguments.extend(["--out", out.to_str().expect("utf-8")]);
    run_cli(&arguments)
}

fn slurm_sweep(scenario: &Path, dir: &Path, per_task: &str) -> Output {
    let mut arguments = vec!["sweep", scenario.to_str().expect("utf-8")];
    arguments.extend(MATRIX);
    arguments.extend([
        "--slurm",
        dir.to_str().expect("utf-8"),
        "--runs-per-task",
        per_task,
    ]);
    run_cli(&arguments)
}

#[test]
fn merged_array_equals_a_local_sweep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), TWO_GROUPS);
    let local = dir.path().join("local");
    let output = local_sweep(&scenario, &local);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let csv = std::fs::read_to_string(local.join("runs.csv")).expect("runs.csv");
    assert_eq!(csv.lines().count(), 1 + 4, "a header and 2 cells × 2 seeds");
    assert!(
        csv.lines()
            .nth(1)
            .expect("row")
            .starts_with("two-groups,protocol,,cell-01,4,1,true,"),
        "{csv}"
    );

    let array = dir.path().join("array");
    let written = slurm_sweep(&scenario, &array, "3");
    assert!(written.status.success(), "{}", text(&written.stderr));
    assert!(
        text(&written.stdout).contains("4 runs in 2 array task(s)"),
        "{}",
        text(&written.stdout)
    );
    let script = std::fs::read_to_string(array.join("sweep.sbatch")).expect("script");
    assert!(
        script.contains("#SBATCH --array=0-1") && script.contains("#SBATCH --mem="),
        "{script}"
    );
    // Before the tasks ran, merge names what is missing.
    let early = run_cli(&["merge", array.to_str().expect("utf-8")]);
    assert_eq!(early.status.code(), Some(2));
    assert!(
        text(&early.stderr).contains("4 run(s) have no report.json"),
        "{}",
        text(&early.stderr)
    );
    // The array's tasks, as Slurm would start them.
    for task in ["0", "1"] {
        let status = Command::new("bash")
            .arg(array.join("sweep.sbatch"))
            .env("SLURM_ARRAY_TASK_ID", task)
            .env("PPPPP_SIM", BIN)
            .status()
            .expect("bash");
        assert!(status.success(), "task {task}");
    }
    let merged = run_cli(&["merge", array.to_str().expect("utf-8"), "--quiet"]);
    assert!(merged.status.success(), "{}", text(&merged.stderr));
    assert_same_outputs(&local, &array);
    // Multi-cell sweeps compare cell by cell.
    let compared = run_cli(&[
        "compare",
        local.join("sweep.json").to_str().expect("utf-8"),
        array.join("sweep.json").to_str().expect("utf-8"),
        "--max-regression",
        "0",
    ]);
    assert_eq!(
        compared.status.code(),
        Some(0),
        "{}",
        text(&compared.stderr)
    );
    let table = text(&compared.stdout);
    assert!(
        table.contains("| recovery_max_ms [group.east.count=6] (ms) |"),
        "{table}"
    );
}

/// The whole path on a real Slurm: submit the array, wait for it, merge, and compare with a
/// local sweep. Needs a running Slurm (`.ci/slurm-local start` sets one up on this machine).
#[test]
fn slurm_round_trip() {
    let ready = Command::new("sinfo")
        .args(["--noheader", "--format=%T"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout))
        .filter(|states| {
            states
                .lines()
                .any(|s| s.starts_with("idle") || s.starts_with("mix"))
        });
    if ready.is_none() {
        eprintln!(
            "skipped slurm_round_trip: no Slurm with an idle node here (sinfo missing or no \
             node up); `.ci/slurm-local start` installs and starts one (as root)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), TWO_GROUPS);
    let local = dir.path().join("local");
    assert!(local_sweep(&scenario, &local).status.success());
    let array = dir.path().join("array");
    assert!(slurm_sweep(&scenario, &array, "1").status.success());
    let submitted = Command::new("sbatch")
        .args(["--wait", "--parsable"])
        .arg(array.join("sweep.sbatch"))
        .output()
        .expect("sbatch");
    assert!(
        submitted.status.success(),
        "sbatch: {}",
        text(&submitted.stderr)
    );
    let merged = run_cli(&["merge", array.to_str().expect("utf-8"), "--quiet"]);
    assert!(merged.status.success(), "{}", text(&merged.stderr));
    assert_same_outputs(&local, &array);
    let logs = std::fs::read_dir(array.join("slurm-logs"))
        .expect("logs")
        .count();
    assert_eq!(logs, 4, "one log per array task");
}

/// Without a terminal a sweep still says how far it got (simulated time, runs done / total)
/// and ends with the key figures; `--quiet` prints neither.
#[test]
fn sweep_reports_progress_and_key_figures_without_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = write_scenario(dir.path(), TWO_GROUPS);
    let scenario = scenario.to_str().expect("utf-8");
    let out = dir.path().join("out");
    let out = out.to_str().expect("utf-8");
    let arguments = [
        "sweep", scenario, "--engine", "protocol", "--seeds", "1,2", "--out", out,
    ];
    let loud = run_cli(&arguments);
    assert!(loud.status.success(), "{}", text(&loud.stderr));
    let stderr = text(&loud.stderr);
    assert!(
        stderr.contains("two-groups sweep: 40s / 40s simulated") && stderr.contains("runs 2 / 2"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("ETA"),
        "no ETA for a sweep of a second: {stderr}"
    );
    let stdout = text(&loud.stdout);
    assert!(
        stdout.contains("recovery_max_ms") && stdout.contains("base (2 runs, 0 failed)"),
        "{stdout}"
    );
    let mut quiet_arguments = arguments.to_vec();
    quiet_arguments.push("--quiet");
    let quiet = run_cli(&quiet_arguments);
    assert!(quiet.status.success());
    assert!(quiet.stderr.is_empty(), "{}", text(&quiet.stderr));
    assert!(!text(&quiet.stdout).contains("recovery_max_ms"));
}
