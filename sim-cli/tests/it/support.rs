//! Shared helpers.

use std::path::{Path, PathBuf};
use std::process::Command;

use sim::metrics::Collector;
use sim::pipeline::{Engine, RunOptions};
use sim::plan::Plan;
use sim::report::Report;
use sim::scenario::Scenario;
use sim::trace::{Event, EventKind, TraceHeader, TraceSink};

/// The workspace's `scenarios/` directory.
pub fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// Writes scenario text to `dir/name.toml`.
pub fn write_scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// Runs a scenario file with `seed` on `engine` in this process, with a trace; the report.
pub fn run_in_process(engine: &dyn Engine, path: &Path, seed: u64, out: Option<PathBuf>) -> Report {
    let scenario = Scenario::load(path).expect("scenario loads");
    let plan = Plan::build(&scenario, seed);
    sim::pipeline::run(
        &plan,
        engine,
        &RunOptions {
            scenario_path: path.display().to_string(),
            out,
            trace: true,
            progress: false,
        },
    )
    .expect("the run completes")
}

/// Runs `ppppp-sim run PATH --seed SEED --out OUT --trace` in a process of its own.
pub fn run_binary(path: &Path, seed: u64, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ppppp-sim"))
        .args([
            "run",
            &path.display().to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .arg("--out")
        .arg(out)
        .arg("--trace")
        .output()
        .expect("run ppppp-sim")
}

/// Parses scenario text that must be valid.
pub fn scenario(text: &str) -> Scenario {
    match Scenario::parse(text, "test.toml") {
        Ok(scenario) => scenario,
        Err(error) => panic!("scenario should parse: {error}"),
    }
}

/// A collector that only hashes.
pub fn collector(plan: &Plan) -> Collector<'_> {
    Collector::new(
        plan,
        TraceSink::hash_only(&TraceHeader {
            trace_version: sim::trace::TRACE_VERSION,
            scenario: plan.scenario.clone(),
            seed: plan.seed,
            engine: "test".to_owned(),
            substrate: None,
        }),
    )
}

/// Records an event, panicking on trace errors (there are none without a writer).
pub fn record(collector: &mut Collector<'_>, t: u64, kind: EventKind) {
    collector
        .record(Event { t, kind })
        .expect("hash-only sinks cannot fail");
}

/// A publish event.
pub fn publish(peer: u32, msg: &str, tangle: &str, feed: &str, bytes: u64) -> EventKind {
    EventKind::Publish {
        peer,
        msg: msg.to_owned(),
        tangle: tangle.to_owned(),
        feed: feed.to_owned(),
        bytes,
        supersedes: Vec::new(),
    }
}

/// A store event.
pub fn store(peer: u32, msg: &str, tangle: &str, from: Option<u32>) -> EventKind {
    EventKind::Store {
        peer,
        msg: msg.to_owned(),
        tangle: tangle.to_owned(),
        from,
    }
}

/// Three peers that all follow each other, no workload, full mesh; `extra` is appended.
pub const TRIO: &str = r#"
name = "trio"
seed = 7
duration = "5s"

[topology]
kind = "full"

[[group]]
name = "p"
count = 3
follow = "uniform(2)"
follow_goals = ["post@newest-100", "profile@dict", "follows@set"]

[check]
converge_within = "2s"

[report]
sample_interval = "100ms"
"#;

/// The count a substrate's closing note gives before `what` (e.g. `"fabric: "` and
/// `" lost"` in "fabric: … 12 lost …"), read from the trace in `out`; `None` if absent.
pub fn note_count(out: &Path, note: &str, what: &str) -> Option<u64> {
    let trace = std::fs::read_to_string(out.join("trace.jsonl")).expect("trace written");
    trace
        .lines()
        .filter_map(|line| line.split(note).nth(1))
        .find_map(|text| text.split(what).next()?.rsplit(' ').next()?.parse().ok())
}

/// Runs `path` with `seed` in two processes (outputs under `dir/one` and `dir/two`), asserts
/// both succeed with byte-identical `report.json` and `trace.jsonl`, and returns the first's
/// output directory.
pub fn run_twice_identically(path: &Path, seed: u64, dir: &Path) -> PathBuf {
    let (one, two) = (dir.join("one"), dir.join("two"));
    for out in [&one, &two] {
        let output = run_binary(path, seed, out);
        assert!(output.status.success(), "{output:?}");
    }
    for file in ["report.json", "trace.jsonl"] {
        let a = std::fs::read(one.join(file)).expect("written");
        let b = std::fs::read(two.join(file)).expect("written");
        assert!(a == b, "{file} differs between two processes");
    }
    one
}
