//! Bandwidth on the protocol tier (`network.bandwidth`), both engines: a limited link
//! delays what it carries and queues behind a busy direction, peers' peak queues reach the
//! report, and an unlimited run neither measures queues nor changes.

use sim::plan::Plan;
use sim::progress::Progress;
use sim::report::Report;
use sim::scenario::Scenario;
use sim_protocol::replicated::Baseline;
use sim_protocol::rows::Row;

const QUICKSTART: &str = include_str!("../../scenarios/quickstart.toml");

/// Quickstart with `bandwidth` (e.g. `"64kbit/s"`) on every link, or unlimited.
fn plan(bandwidth: Option<&str>) -> Plan {
    let text = match bandwidth {
        Some(rate) => QUICKSTART.replace(
            "fail_rate = 0.0\n",
            &format!("fail_rate = 0.0\nbandwidth = \"{rate}\"\n"),
        ),
        None => QUICKSTART.to_owned(),
    };
    let scenario = Scenario::parse(&text, "quickstart.toml").expect("the scenario parses");
    Plan::build(&scenario, 1)
}

fn run(row: Row, bandwidth: Option<&str>) -> Report {
    let (report, _) = row
        .run(&plan(bandwidth), "quickstart.toml", &Progress::hidden())
        .expect("the run completes");
    report
}

fn p50(report: &Report) -> u64 {
    report.metrics.latency_ms.quantiles.p50.expect("deliveries")
}

#[test]
fn a_narrow_link_delays_deliveries_and_shows_peak_queues_on_both_engines() {
    for row in [Row::Ppppp, Row::Baseline(Baseline::SsbEbt)] {
        let free = run(row, None);
        let narrow = run(row, Some("32kbit/s"));
        assert!(
            free.metrics.queue.is_none(),
            "{}: no bandwidth, no queues",
            row.name()
        );
        let queue = narrow.metrics.queue.as_ref().expect("queues measured");
        assert_eq!(queue.peak_bytes.count, 20, "{}", row.name());
        assert!(
            queue.peak_bytes.max.is_some_and(|max| max > 0),
            "{}",
            row.name()
        );
        assert!(
            p50(&narrow) > p50(&free),
            "{}: latency p50 {} ms at 32 kbit/s, {} ms unlimited",
            row.name(),
            p50(&narrow),
            p50(&free)
        );
        assert!(
            narrow.checks.safety.passed,
            "{}: {:?}",
            row.name(),
            narrow.checks.first_failure()
        );
    }
}

#[test]
fn a_wide_link_changes_little_and_a_narrower_one_queues_more() {
    let wide = run(Row::Ppppp, Some("1Gbit/s"));
    let free = run(Row::Ppppp, None);
    assert!(wide.checks.passed, "{:?}", wide.checks.first_failure());
    // Serialisation at 1 Gbit/s takes microseconds, below the engine's 1 ms resolution.
    assert_eq!(p50(&wide), p50(&free));
    let peak = |report: &Report| {
        report
            .metrics
            .queue
            .as_ref()
            .and_then(|queue| queue.peak_bytes.p50)
            .expect("queues measured")
    };
    let medium = run(Row::Ppppp, Some("1Mbit/s"));
    let narrow = run(Row::Ppppp, Some("128kbit/s"));
    assert!(
        peak(&narrow) >= peak(&medium),
        "{} < {}",
        peak(&narrow),
        peak(&medium)
    );
}

#[test]
fn a_per_link_bandwidth_parses_and_a_bad_one_is_refused_clearly() {
    let limited = QUICKSTART.replace(
        "fail_rate = 0.0\n",
        "fail_rate = 0.0\n\n[[network.link]]\nbetween = [\"peer\", \"peer\"]\nbandwidth = \"125KB/s\"\n",
    );
    let scenario = Scenario::parse(&limited, "q.toml").expect("parses");
    let plan = Plan::build(&scenario, 1);
    assert_eq!(plan.network.links[0].bandwidth_bytes_per_s, Some(125_000));
    assert_eq!(plan.network.bandwidth_bytes_per_s, None);
    let bad = QUICKSTART.replace(
        "fail_rate = 0.0\n",
        "fail_rate = 0.0\nbandwidth = \"1Mbit\"\n",
    );
    let error = Scenario::parse(&bad, "q.toml")
        .expect_err("refused")
        .to_string();
    assert!(error.contains("not a bandwidth"), "{error}");
}
