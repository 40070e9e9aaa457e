//! The streams substrate (issue 11): the same real peers over reliable byte streams timed by
//! the fabric's links. Each test is a twin of a fabric test: the checks pass under loss, a
//! crash and restart, and a partition; runs are byte-identical across processes.

use sim::report::Report;
use sim_fullstack::{Fullstack, Substrate};

use crate::fabric::{LOSSY, LOSSY_SEED, cut_for_thirty_seconds, disconnects_during_loss};
use crate::support::{run_in_process, scenarios_dir, write_scenario};

/// A scenario text on the streams substrate (a top-level key, before any table).
fn on_streams(text: &str) -> String {
    format!("substrate = \"streams\"\n{text}")
}

#[test]
fn quickstart_passes_its_checks_on_streams() {
    let path = scenarios_dir().join("quickstart.toml");
    let report = run_in_process(&Fullstack::on(Substrate::Streams), &path, 1, None);
    assert!(report.checks.passed, "{:?}", report.checks.first_failure());
    assert_eq!(report.substrate.as_deref(), Some("streams"));
    assert!(report.metrics.counts.connects > 0);
}

/// 10 % loss for a minute becomes retransmission delay, never a broken connection; p-1's
/// crash and restart close its connections, and it comes back and catches up.
#[test]
fn loss_and_a_crash_with_restart_pass_on_streams_and_runs_are_byte_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), "lossy", &on_streams(LOSSY));
    let one = crate::support::run_twice_identically(&path, LOSSY_SEED, dir.path());
    let report = Report::read(&one.join("report.json")).expect("report.json reads");
    assert!(report.checks.passed, "{:?}", report.checks.first_failure());
    assert_eq!(report.substrate.as_deref(), Some("streams"));
    assert!(
        report.repro.contains("--substrate streams"),
        "{}",
        report.repro
    );
    assert_eq!(disconnects_during_loss(&one), 0, "loss broke a connection");
    let counts = &report.metrics.counts;
    assert!(
        counts.disconnects.values().sum::<u64>() > 0,
        "p-1's crash closed nothing"
    );
    let retransmitted = crate::support::note_count(&one, "streams: ", " retransmissions")
        .expect("the streams note counts retransmissions");
    assert!(retransmitted > 0, "no write was lost and resent");
}

/// A 30 s cut (shorter than the idle timeout) parks the writes across it and delivers them
/// after the heal: every planned connection survives, as on the fabric.
#[test]
fn a_partition_shorter_than_the_idle_timeout_closes_no_streams_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_scenario(dir.path(), "cut", &on_streams(&cut_for_thirty_seconds()));
    let edges = sim::plan::Plan::build(
        &sim::scenario::Scenario::load(&path).expect("loads"),
        LOSSY_SEED,
    )
    .edges
    .len() as u64;
    let report = run_in_process(&Fullstack::on(Substrate::Streams), &path, LOSSY_SEED, None);
    assert!(report.checks.passed, "{:?}", report.checks.first_failure());
    let counts = &report.metrics.counts;
    assert_eq!(counts.connects, edges, "one connection per planned edge");
    assert!(counts.disconnects.is_empty(), "{:?}", counts.disconnects);
}
