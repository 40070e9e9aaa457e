//! Checkers fail on hand-made violating streams and print the repro line.

use proto::gc::GcAction;
use sim::check::{Holdings, ViolationKind, repro_line};
use sim::plan::Plan;
use sim::trace::EventKind;

use crate::support::{TRIO, collector, publish, record, scenario, store};

#[test]
fn a_clean_stream_passes() {
    let plan = Plan::build(&scenario(TRIO), 7);
    let mut c = collector(&plan);
    record(&mut c, 0, publish(0, "m1", "T0", "post", 100));
    record(&mut c, 100, store(1, "m1", "T0", Some(0)));
    record(&mut c, 200, store(2, "m1", "T0", Some(1)));
    let outcome = c.finish(5_000).expect("finish");
    assert!(
        outcome.checks.passed,
        "{:?}",
        outcome.checks.first_failure()
    );
    assert!(outcome.checks.liveness.checked);
    assert_eq!(outcome.checks.liveness.wanted, 2);
}

#[test]
fn safety_violations_are_caught() {
    let plan = Plan::build(&scenario(TRIO), 7);
    let mut c = collector(&plan);
    record(&mut c, 0, publish(0, "m1", "T0", "post", 100));
    record(&mut c, 100, store(1, "m1", "T0", Some(0)));
    record(&mut c, 150, store(1, "m1", "T0", Some(2)));
    record(&mut c, 200, store(2, "ghost", "T9", Some(1)));
    record(
        &mut c,
        250,
        EventKind::Invalid {
            peer: 2,
            msg: "m1".to_owned(),
            reason: "signature does not verify".to_owned(),
        },
    );
    record(
        &mut c,
        300,
        EventKind::Gc {
            peer: 0,
            action: GcAction::Delete,
            bytes: 100,
            msg: Some("m1".to_owned()),
        },
    );
    record(&mut c, 280, store(2, "m1", "T0", None));
    let outcome = c.finish(5_000).expect("finish");
    let safety = &outcome.checks.safety;
    assert!(!safety.passed);
    let kinds: Vec<ViolationKind> = safety.violations.iter().map(|v| v.kind).collect();
    for kind in [
        ViolationKind::DoubleStore,
        ViolationKind::StoredUnknown,
        ViolationKind::InvalidStored,
        ViolationKind::LostOwn,
        ViolationKind::TimeOrder,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} not found in {kinds:?}");
    }
    assert!(!outcome.checks.passed);
    let line = outcome.checks.first_failure().expect("a failure line");
    assert!(line.starts_with("safety: "), "{line}");
}

#[test]
fn liveness_fails_when_a_wanted_msg_never_arrives() {
    let plan = Plan::build(&scenario(TRIO), 7);
    let mut c = collector(&plan);
    record(&mut c, 0, publish(0, "m1", "T0", "post", 100));
    record(&mut c, 100, store(1, "m1", "T0", Some(0)));
    let outcome = c.finish(5_000).expect("finish");
    assert!(outcome.checks.safety.passed);
    let live = &outcome.checks.liveness;
    assert!(!live.passed);
    assert_eq!((live.wanted, live.missing), (2, 1));
    assert_eq!(
        live.examples,
        vec!["p-2 lacks m1 (published by p-0 at 0s)".to_owned()]
    );
    let line = outcome.checks.first_failure().expect("a failure line");
    assert!(line.contains("1 of 2"), "{line}");
}

#[test]
fn lost_msgs_and_tangle_order_from_snapshots() {
    let plan = Plan::build(&scenario(TRIO), 7);
    let mut c = collector(&plan);
    record(&mut c, 0, publish(0, "T0", "T0", "moot", 50));
    record(&mut c, 0, publish(0, "m1", "T0", "post", 100));
    record(&mut c, 10, publish(0, "m2", "T0", "post", 100));
    record(&mut c, 100, EventKind::Crash { peer: 0 });
    record(&mut c, 200, EventKind::Restart { peer: 0 });
    let snapshot = |ids: &[&str]| Holdings {
        tangles: [(
            "T0".to_owned(),
            ids.iter().map(|s| (*s).to_owned()).collect(),
        )]
        .into_iter()
        .collect(),
    };
    // The author lost m2 in the crash; peer 1 orders the tangle differently.
    c.snapshot(0, snapshot(&["T0", "m1"]));
    c.snapshot(1, snapshot(&["T0", "m2", "m1"]));
    c.snapshot(2, snapshot(&["m1", "T0"]));
    let outcome = c.finish(5_000).expect("finish");
    let violations = &outcome.checks.safety.violations;
    assert!(
        violations
            .iter()
            .any(|v| v.kind == ViolationKind::LostOwn && v.msg.as_deref() == Some("m2")),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| v.kind == ViolationKind::TangleOrder
                && v.detail.contains("does not start with its root"))
    );
    assert!(
        violations
            .iter()
            .any(|v| v.kind == ViolationKind::TangleOrder && v.detail.contains("comes after"))
    );
}

#[test]
fn repro_line_names_scenario_seed_and_commit() {
    assert_eq!(
        repro_line(
            "scenarios/x.toml",
            42,
            ("fullstack", Some("fabric")),
            Some("abc123")
        ),
        "ppppp-sim run scenarios/x.toml --seed 42 --engine fullstack --substrate fabric  \
         # commit abc123"
    );
    assert_eq!(
        repro_line("scenarios/x.toml", 7, ("protocol", None), None),
        "ppppp-sim run scenarios/x.toml --seed 7 --engine protocol"
    );
}

#[test]
fn a_failing_run_prints_the_repro_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stuck.toml");
    // A partition at 0s that never heals: the follows published at 0s cannot cross it.
    std::fs::write(
        &path,
        r#"
name = "stuck"
seed = 9
duration = "1m"
[topology]
kind = "full"
[[group]]
name = "left"
count = 3
follow = "uniform(4)"
follow_groups = ["left", "right"]
[[group]]
name = "right"
count = 3
follow = "uniform(4)"
follow_groups = ["left", "right"]
[[fault]]
at = "0s"
action = "partition"
a = ["left"]
[check]
converge_within = "30s"
"#,
    )
    .expect("write scenario");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ppppp-sim"))
        .args([
            "run",
            &path.display().to_string(),
            "--engine",
            "protocol",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .output()
        .expect("run ppppp-sim");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "ppppp-sim run {} --seed 9 --engine protocol",
        path.display()
    );
    assert!(
        stderr.lines().any(|l| l.starts_with(&expected)),
        "no repro line in stderr:\n{stderr}"
    );
    assert!(stderr.contains("FAILED liveness"), "{stderr}");
}
