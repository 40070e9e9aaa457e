//! The steady-state delivery check on hand-made streams over a three-peer chain
//! author ← relay ← reader: what it judges, what it exempts and why.

use sim::check::DeliveryReport;
use sim::plan::Plan;
use sim::trace::EventKind;

use crate::support::{collector, publish, record, scenario, store};

/// author-0 ← relay-0 ← reader-0 (edges only), 2 minutes, `deliver_within` 10 s;
/// `relay_goals` and `extra` vary per test.
fn chain(relay_goals: &str, extra: &str) -> Plan {
    let text = format!(
        r#"
name = "chain"
seed = 3
duration = "2m"

[topology]
kind = "edges"
edges = [["relay-0", "author-0"], ["reader-0", "relay-0"]]

[[group]]
name = "author"
count = 1
goals = ["post@all"]

[[group]]
name = "relay"
count = 1
{relay_goals}

[[group]]
name = "reader"
count = 1
follow = "all"
follow_groups = ["author"]
follow_goals = ["post@newest-1"]

[check]
liveness = false
deliver_within = "10s"
{extra}
"#
    );
    Plan::build(&scenario(&text), 3)
}

const RELAY_FOLLOWS: &str = r#"follow = "all"
follow_groups = ["author"]
follow_goals = ["post@all"]"#;

const AUTHOR: u32 = 0;
const RELAY: u32 = 1;
const READER: u32 = 2;

/// Runs the events through a collector ending at `end_ms` and returns the delivery report.
fn judge(plan: &Plan, events: Vec<(u64, EventKind)>, end_ms: u64) -> DeliveryReport {
    let mut c = collector(plan);
    for (t, kind) in events {
        record(&mut c, t, kind);
    }
    c.finish(end_ms).expect("finish").checks.delivery
}

#[test]
fn a_msg_relayed_in_time_passes_and_its_time_is_reported() {
    let plan = chain(RELAY_FOLLOWS, "");
    let report = judge(
        &plan,
        vec![
            (1_000, publish(AUTHOR, "m1", "T", "post", 100)),
            (1_300, store(RELAY, "m1", "T", Some(AUTHOR))),
            (4_000, store(READER, "m1", "T", Some(RELAY))),
        ],
        60_000,
    );
    assert!(report.passed, "{report:?}");
    assert_eq!((report.judged, report.delivered, report.missing), (2, 2, 0));
    assert_eq!(report.slowest_ms, 3_000);
}

#[test]
fn a_msg_that_does_not_arrive_over_a_clear_path_fails_with_the_path() {
    let plan = chain(RELAY_FOLLOWS, "");
    let report = judge(
        &plan,
        vec![
            (1_000, publish(AUTHOR, "m1", "T", "post", 100)),
            (1_300, store(RELAY, "m1", "T", Some(AUTHOR))),
            // Stored, but 10.5 s after publication: too late.
            (11_500, store(READER, "m1", "T", Some(RELAY))),
        ],
        60_000,
    );
    assert!(!report.passed);
    assert_eq!((report.judged, report.missing), (2, 1));
    assert_eq!(
        report.examples,
        vec!["reader-0 lacks m1 10s after author-0 published it at 1s (path author-0 → relay-0 → reader-0)".to_owned()]
    );
}

#[test]
fn a_relay_that_does_not_want_the_feed_is_no_path() {
    let plan = chain("", "");
    let report = judge(
        &plan,
        vec![(1_000, publish(AUTHOR, "m1", "T", "post", 100))],
        60_000,
    );
    assert!(report.passed, "{report:?}");
    assert_eq!((report.judged, report.exempt_no_path), (0, 1));
}

#[test]
fn a_partition_near_the_window_exempts_and_one_long_past_does_not() {
    let partition = r#"
[[fault]]
at = "0s"
duration = "20s"
action = "partition"
a = ["relay-0"]
b = ["author-0"]
"#;
    let plan = chain(RELAY_FOLLOWS, partition);
    // Published 5 s after the heal: within the lead-in of 10 s, exempt. Published 15 s after
    // it: judged, and missing at the reader.
    let report = judge(
        &plan,
        vec![
            (25_000, publish(AUTHOR, "m1", "T", "post", 100)),
            (26_000, store(RELAY, "m1", "T", Some(AUTHOR))),
            (27_000, store(READER, "m1", "T", Some(RELAY))),
            (35_000, publish(AUTHOR, "m2", "T", "post", 100)),
            (36_000, store(RELAY, "m2", "T", Some(AUTHOR))),
        ],
        60_000,
    );
    // m1 is superseded at the reader (newest-1) by m2 before m1's deadline: unwanted there.
    assert_eq!(report.exempt_no_path, 1, "{report:?}");
    assert_eq!(report.exempt_unwanted, 1, "{report:?}");
    assert_eq!((report.judged, report.missing), (2, 1), "{report:?}");
    assert!(
        report.examples[0].starts_with("reader-0 lacks m2"),
        "{report:?}"
    );
}

#[test]
fn a_reader_down_in_the_window_is_exempt_and_late_windows_are_not_judged() {
    let plan = chain(RELAY_FOLLOWS, "");
    let report = judge(
        &plan,
        vec![
            (1_000, EventKind::Crash { peer: READER }),
            (5_000, EventKind::Restart { peer: READER }),
            (8_000, publish(AUTHOR, "m1", "T", "post", 100)),
            (9_000, store(RELAY, "m1", "T", Some(AUTHOR))),
            (55_000, publish(AUTHOR, "m2", "T", "post", 100)),
        ],
        60_000,
    );
    assert!(report.passed, "{report:?}");
    assert_eq!(report.exempt_down, 1, "{report:?}");
    assert_eq!((report.judged, report.delivered), (1, 1), "{report:?}");
    // m2's deadline (65 s) lies after the end: neither the relay nor the reader is judged.
    assert_eq!(report.after_end, 2, "{report:?}");
}

#[test]
fn the_check_can_be_switched_off() {
    let plan = chain(RELAY_FOLLOWS, "delivery = false");
    let report = judge(
        &plan,
        vec![(1_000, publish(AUTHOR, "m1", "T", "post", 100))],
        60_000,
    );
    assert!(!report.enabled && report.passed);
    assert_eq!(report.judged, 0);
}
