//! Shared helpers.

use std::path::PathBuf;

use sim::metrics::Collector;
use sim::plan::Plan;
use sim::scenario::Scenario;
use sim::trace::{Event, EventKind, TraceHeader, TraceSink};

/// The workspace's `scenarios/` directory.
pub fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
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
