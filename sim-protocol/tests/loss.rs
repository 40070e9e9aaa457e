//! `loss` and `break` on the protocol tier, both engines: a lossy minute delays deliveries
//! but breaks nothing (a reliable stream resends), and a period of breaks resets connections
//! that the dialers redial, after which everyone catches up.

use sim::plan::Plan;
use sim::progress::Progress;
use sim::report::Report;
use sim::scenario::Scenario;
use sim_protocol::replicated::Baseline;
use sim_protocol::rows::Row;

fn run(text: &str, row: Row) -> Report {
    let scenario = Scenario::parse(text, "scenario.toml").expect("the scenario parses");
    let (report, _) = row
        .run(
            &Plan::build(&scenario, 1),
            "scenario.toml",
            &Progress::hidden(),
        )
        .expect("the run completes");
    report
}

fn redials(report: &Report) -> u64 {
    report
        .metrics
        .counts
        .disconnects
        .get("io")
        .copied()
        .unwrap_or(0)
}

const ROWS: [Row; 2] = [Row::Ppppp, Row::Baseline(Baseline::SsbEbt)];

#[test]
fn a_lossy_minute_delays_but_breaks_nothing_and_converges() {
    let lossy = include_str!("../../scenarios/lossy-minute.toml");
    // The same scenario with the loss at rate 0: what the loss alone changes.
    let clean = lossy.replace("fail_rate = 0.1\n", "fail_rate = 0.0\n");
    for row in ROWS {
        let report = run(lossy, row);
        assert!(
            report.checks.passed,
            "{}: {:?}",
            row.name(),
            report.checks.first_failure()
        );
        assert_eq!(
            redials(&report),
            0,
            "{}: a loss breaks no connection",
            row.name()
        );
        let mean = |report: &Report| report.metrics.latency_ms.quantiles.mean.unwrap_or(0.0);
        let (slow, fast) = (mean(&report), mean(&run(&clean, row)));
        assert!(
            slow > fast,
            "{}: mean latency {slow} ms lossy, {fast} ms clean",
            row.name()
        );
    }
}

#[test]
fn a_period_of_breaks_resets_connections_which_are_redialed() {
    let breaking = include_str!("../../scenarios/hub-lossy.toml");
    for row in ROWS {
        let report = run(breaking, row);
        assert!(
            report.checks.passed,
            "{}: {:?}",
            row.name(),
            report.checks.first_failure()
        );
        assert!(
            redials(&report) > 0,
            "{}: breaks reset connections",
            row.name()
        );
        // Each reset is followed by a redial: more connections than leaves.
        assert!(
            report.metrics.counts.connects > 14 + redials(&report) / 2,
            "{}",
            row.name()
        );
    }
    let calm = breaking.replace("break_rate = 0.1\n", "break_rate = 0.0\n");
    assert_eq!(redials(&run(&calm, Row::Ppppp)), 0);
}
