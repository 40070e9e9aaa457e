//! The aggregated collector against the per-pair one on the same run: every field it keeps
//! is the same value, and what it leaves out is absent rather than wrong.

use sim::pipeline::{RunOptions, run};
use sim::plan::Plan;
use sim::report::Report;
use sim::scenario::{CollectorMode, Scenario};
use sim_protocol::Protocol;

/// Newest-3 posts (msgs leave the range and are pruned), dict and set feeds (superseded
/// values leave theirs), churn and a partition: every way a want ends or a holding stops.
const SCENARIO: &str = r#"
name = "collector-modes"
seed = 3
duration = "4m"
transport = "shse"
engine = "protocol"

[network]
latency = { min = "5ms", max = "80ms", curve = 5.0 }

[topology]
kind = "small-world"
k = 4
beta = 0.2
dial_follows = true

[[group]]
name = "desk"
count = 30
role = "leaf"
goals = ["post@all", "profile@dict", "follows@set"]
follow_goals = ["post@newest-3", "profile@dict", "follows@set"]
follow = "zipf(1.0, 4)"

[[group]]
name = "phone"
count = 10
role = "leaf"
goals = ["post@all", "profile@dict", "follows@set"]
follow_goals = ["post@newest-3", "profile@dict", "follows@set"]
follow = "zipf(1.0, 4)"

[churn.phone]
online = "exp(40s)"
offline = "exp(20s)"
start = "20s"
until = "2m"

[workload]
start = "5s"
stop = "3m"

[workload.post]
rate = "pareto(2/min, 1.3, 12/min)"
size = "lognormal(300B, 0.8, 4KiB)"
posters = 0.8

[workload.dict]
feed = "profile"
fields = ["name", "about", "image"]
rate = "20/h"

[[fault]]
at = "1m"
action = "partition"
a = ["random(8, desk)"]
duration = "30s"
label = "8 desktops cut off"

[check]
converge_within = "1m"
"#;

fn run_with(text: &str, collector: CollectorMode) -> Report {
    let mut scenario = Scenario::parse(text, "collector-modes.toml").expect("it parses");
    scenario.report.collector = collector;
    let plan = Plan::build(&scenario, scenario.seed);
    let options = RunOptions {
        scenario_path: "collector-modes.toml".to_owned(),
        out: None,
        trace: false,
        progress: false,
    };
    run(&plan, &Protocol::new(), &options).expect("the run completes")
}

/// The fields both modes compute, compared (deliveries and what divides by them apart).
fn assert_same_kept_fields(pairs: &Report, aggregated: &Report) {
    assert_eq!(aggregated.trace_hash, pairs.trace_hash);
    let (p, a) = (&pairs.metrics, &aggregated.metrics);
    assert_eq!(a.latency_ms, p.latency_ms);
    assert_eq!(a.bytes.wanted_deliveries, p.bytes.wanted_deliveries);
    assert_eq!(
        (
            a.bytes.total,
            &a.bytes.by_kind,
            &a.bytes.by_group,
            &a.bytes.series
        ),
        (
            p.bytes.total,
            &p.bytes.by_kind,
            &p.bytes.by_group,
            &p.bytes.series
        )
    );
    assert_eq!(a.round_trips, p.round_trips);
    assert_eq!(a.store, p.store);
    assert_eq!(a.counts, p.counts);
    assert_eq!(a.queue, p.queue);
    let (pc, ac) = (&p.convergence, &a.convergence);
    assert_eq!(ac.wanted_at_end, pc.wanted_at_end);
    assert_eq!(ac.held_at_end, pc.held_at_end);
    assert_eq!(ac.fraction_at_end, pc.fraction_at_end);
    assert_eq!(ac.last_publish_ms, pc.last_publish_ms);
    assert_eq!(ac.curve.len(), pc.curve.len());
    for (ap, pp) in ac.curve.iter().zip(&pc.curve) {
        assert_eq!(
            (ap.t_ms, ap.wanted, ap.held, ap.coverage),
            (pp.t_ms, pp.wanted, pp.held, pp.coverage)
        );
    }
    // What needs each pair is left out, and says so.
    assert_eq!(ac.t50_ms, None);
    assert!(ac.curve.iter().all(|point| point.final_fraction.is_none()));
    assert!(a.recovery.is_empty() && !p.recovery.is_empty());
    assert!(!aggregated.checks.liveness.checked);
    assert!(aggregated.checks.liveness.note.is_some());
    assert!(aggregated.checks.delivery.note.is_some());
    assert_eq!(aggregated.scenario.collector, CollectorMode::Aggregated);
    assert_eq!(pairs.scenario.collector, CollectorMode::PerPair);
}

#[test]
fn aggregated_mode_gives_the_per_pair_values_of_a_clean_run() {
    // Posts kept whole: wants end only when a dict or set value is superseded; nothing is
    // pruned, and the run is safety-clean.
    let text = SCENARIO.replace("post@newest-3", "post@all");
    let pairs = run_with(&text, CollectorMode::PerPair);
    let aggregated = run_with(&text, CollectorMode::Aggregated);
    assert!(pairs.checks.passed, "{:?}", pairs.checks.first_failure());
    assert!(pairs.metrics.bytes.wanted_deliveries > 100);
    assert_same_kept_fields(&pairs, &aggregated);
    assert_eq!(aggregated.metrics.bytes, pairs.metrics.bytes);
    assert_eq!(aggregated.metrics.duplicates, pairs.metrics.duplicates);
    assert_eq!(aggregated.checks.safety, pairs.checks.safety);
}

#[test]
fn aggregated_mode_follows_prunes_and_erased_copies_coming_back() {
    let pairs = run_with(SCENARIO, CollectorMode::PerPair);
    let aggregated = run_with(SCENARIO, CollectorMode::Aggregated);
    // Wants ending while held, and removals: a prune removes only msgs that left newest-3.
    let gc = &pairs.metrics.store.gc_count;
    assert!(
        gc.get("delete").copied().unwrap_or(0) > 0,
        "newest-3 prunes remove msgs"
    );
    assert!(
        gc.get("erase").copied().unwrap_or(0) > 0,
        "and erase trails"
    );
    assert_same_kept_fields(&pairs, &aggregated);
    // Syncs bring erased trail msgs back with their data (the reference's `add` restores
    // them) and the prune erases them again. That is a duplicate delivery, not a second
    // store: until the commit path said so, this run failed safety with double stores.
    assert!(pairs.checks.passed, "{:?}", pairs.checks.first_failure());
    assert_eq!(pairs.checks.safety.violation_count, 0);
    assert_eq!(aggregated.metrics.bytes, pairs.metrics.bytes);
    assert_eq!(aggregated.metrics.duplicates, pairs.metrics.duplicates);
    assert!(aggregated.checks.safety.passed);
}
