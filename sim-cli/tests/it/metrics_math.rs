//! Metrics on hand-made event streams, checked against numbers worked out by hand.

use proto::gc::GcAction;
use sim::interest::{InterestBuilder, NewMsg};
use sim::plan::Plan;
use sim::stats::summarize;
use sim::trace::{EventKind, WireKind};

use crate::support::{TRIO, collector, publish, record, scenario, store};

fn send(from: u32, to: u32, kind: WireKind, bytes: u64) -> EventKind {
    EventKind::Send {
        from,
        to,
        kind,
        bytes,
    }
}

/// Two msgs, four deliveries, known bytes, one duplicate, three syncs.
fn outcome() -> sim::metrics::Outcome {
    let scenario = scenario(TRIO);
    let plan = Plan::build(&scenario, 7);
    let mut c = collector(&plan);
    record(&mut c, 0, publish(0, "m1", "T0", "post", 100));
    record(&mut c, 10, send(0, 1, WireKind::Msgs, 500));
    record(&mut c, 100, store(1, "m1", "T0", Some(0)));
    record(&mut c, 150, send(0, 2, WireKind::SyncControl, 400));
    record(&mut c, 300, store(2, "m1", "T0", Some(0)));
    record(
        &mut c,
        400,
        EventKind::Duplicate {
            peer: 2,
            msg: "m1".to_owned(),
            from: Some(1),
            bytes: 100,
        },
    );
    record(&mut c, 900, send(1, 0, WireKind::Bloom, 600));
    record(&mut c, 1_000, publish(1, "m2", "T1", "post", 100));
    record(&mut c, 1_010, send(1, 0, WireKind::Msgs, 500));
    record(&mut c, 1_050, store(0, "m2", "T1", Some(1)));
    record(&mut c, 1_250, store(2, "m2", "T1", Some(1)));
    for rt in [2, 5, 5] {
        record(
            &mut c,
            1_300,
            EventKind::SyncRound {
                peer: 0,
                remote: 1,
                tangle: "T0".to_owned(),
                round_trips: rt,
            },
        );
    }
    record(
        &mut c,
        1_400,
        EventKind::StoreSize {
            peer: 0,
            bytes: 1_000,
        },
    );
    record(
        &mut c,
        1_400,
        EventKind::StoreSize {
            peer: 1,
            bytes: 3_000,
        },
    );
    record(
        &mut c,
        1_500,
        EventKind::Gc {
            peer: 1,
            action: GcAction::Erase,
            bytes: 40,
            msg: Some("m1".to_owned()),
        },
    );
    c.finish(5_000).expect("finish")
}

#[test]
fn latency_quantiles_from_the_hdr_histogram() {
    // Latencies: m1 → p1 100, p2 300; m2 → p0 50, p2 250.
    let latency = outcome().metrics.latency_ms;
    assert_eq!(latency.quantiles.count, 4);
    assert_eq!(latency.quantiles.mean, Some(175.0));
    assert_eq!(latency.quantiles.p50, Some(100));
    assert_eq!(latency.quantiles.p90, Some(300));
    assert_eq!(latency.quantiles.p99, Some(300));
    assert_eq!(latency.quantiles.max, Some(300));
    assert_eq!(latency.undelivered, 0);
    assert_eq!(
        latency.cdf,
        vec![(50, 0.25), (100, 0.5), (250, 0.75), (300, 1.0)]
    );
}

#[test]
fn convergence_times_and_curve() {
    let convergence = outcome().metrics.convergence;
    assert_eq!(convergence.wanted_at_end, 4);
    assert_eq!(convergence.held_at_end, 4);
    assert_eq!(convergence.fraction_at_end, Some(1.0));
    // Delivery times sorted: 100, 300, 1050, 1250.
    assert_eq!(convergence.t50_ms, Some(300));
    assert_eq!(convergence.t90_ms, Some(1_250));
    assert_eq!(convergence.t99_ms, Some(1_250));
    assert_eq!(convergence.t100_ms, Some(1_250));
    assert_eq!(convergence.last_publish_ms, Some(1_000));
    assert_eq!(convergence.settle_after_last_publish_ms, Some(250));
    let at = |t: u64| {
        convergence
            .curve
            .iter()
            .find(|p| p.t_ms == t)
            .unwrap_or_else(|| panic!("no sample at {t}"))
            .clone()
    };
    // At 200 ms: m1 wanted by p1 and p2, held by p1 only.
    assert_eq!((at(200).wanted, at(200).held), (2, 1));
    assert_eq!(at(200).coverage, Some(0.5));
    assert_eq!(at(200).final_fraction, Some(0.25));
    // At 1100 ms: four wanted, three held (p2 still lacks m2).
    assert_eq!((at(1_100).wanted, at(1_100).held), (4, 3));
    assert_eq!(at(1_100).coverage, Some(0.75));
    // m1 is published at 0 ms and wanted at once; nobody holds it yet.
    assert_eq!(
        (at(0).wanted, at(0).held, at(0).coverage),
        (2, 0, Some(0.0))
    );
    assert_eq!(convergence.curve.last().map(|p| p.t_ms), Some(5_000));
}

#[test]
fn bytes_per_delivered_msg_by_kind() {
    let metrics = outcome().metrics;
    let bytes = &metrics.bytes;
    assert_eq!(bytes.total, 2_000);
    assert_eq!(bytes.deliveries, 4);
    assert_eq!(bytes.wanted_deliveries, 4);
    assert_eq!(bytes.per_delivery, Some(500.0));
    let per = |kind: &str| bytes.per_delivery_by_kind.get(kind).copied().flatten();
    assert_eq!(per("msgs"), Some(250.0));
    assert_eq!(per("sync_control"), Some(100.0));
    assert_eq!(per("bloom"), Some(150.0));
    assert_eq!(per("handshake"), Some(0.0));
    assert_eq!(
        bytes.by_group.get("p").and_then(|k| k.get("msgs")),
        Some(&1_000)
    );
    assert_eq!(metrics.duplicates.count, 1);
    assert_eq!(metrics.duplicates.per_delivery, Some(0.25));
    // Round trips 2, 5, 5: mean 4, median (nearest rank) 5.
    assert_eq!(metrics.round_trips.count, 3);
    assert_eq!(metrics.round_trips.mean, Some(4.0));
    assert_eq!(metrics.round_trips.p50, Some(5));
    assert_eq!(metrics.round_trips.max, Some(5));
    assert_eq!(metrics.store.final_mean_bytes, Some(2_000.0));
    assert_eq!(metrics.store.final_max_bytes, Some(3_000));
    assert_eq!(metrics.store.gc_count.get("erase"), Some(&1));
    // An erase keeps the msg: still held, convergence unaffected.
    assert_eq!(metrics.convergence.held_at_end, 4);
}

#[test]
fn bandwidth_series_sums_to_the_total() {
    let bytes = outcome().metrics.bytes;
    let sum: u64 = bytes.series.iter().flatten().sum();
    assert_eq!(sum, bytes.total);
}

#[test]
fn newest_n_and_dict_windows() {
    let text = TRIO.replace("post@newest-100", "post@newest-2");
    let plan = Plan::build(&scenario(&text), 1);
    let mut builder = InterestBuilder::default();
    let mut add = |id: &str, t: u64, feed: &str, tangle: &str, sup: &[String]| {
        builder.publish(
            t,
            &NewMsg {
                id,
                owner: 0,
                feed,
                tangle,
                bytes: 10,
                supersedes: sup,
            },
        )
    };
    add("a1", 100, "post", "A", &[]);
    add("a2", 200, "post", "A", &[]);
    add("a3", 300, "post", "A", &[]);
    add("d1", 400, "profile", "D", &[]);
    add("d2", 500, "profile", "D", &["d1".to_owned()]);
    let interest = builder.finish(&plan);
    let idx = |id: &str| interest.index_of(id).expect("published");
    // newest-2: a1 leaves the window when a3 (two deeper) is published.
    let a1 = interest.want(1, idx("a1")).expect("p1 wants a1");
    assert_eq!((a1.from_ms, a1.until_ms), (100, Some(300)));
    assert_eq!(interest.want(1, idx("a2")).and_then(|w| w.until_ms), None);
    // dict: d1 is superseded by d2, so the minimum required depth passes it at 500.
    let d1 = interest.want(2, idx("d1")).expect("p2 wants d1");
    assert_eq!(d1.until_ms, Some(500));
    assert!(interest.wants_at(2, idx("d1"), 450));
    assert!(!interest.wants_at(2, idx("d1"), 500));
    // The author never counts.
    assert!(interest.want(0, idx("a1")).is_none());
}

#[test]
fn confidence_interval_of_a_known_sample() {
    let summary = summarize(&[1.0, 2.0, 3.0, 4.0, 5.0]).expect("non-empty");
    assert_eq!(summary.n, 5);
    assert!((summary.mean - 3.0).abs() < 1e-12);
    assert!((summary.sd - 2.5_f64.sqrt()).abs() < 1e-12);
    // t(0.975, 4) = 2.776445; sd/√n = √0.5.
    let expected = 2.776_445 * 0.5_f64.sqrt();
    let ci = summary.ci95.expect("n > 1");
    assert!((ci - expected).abs() < 1e-6, "{ci} vs {expected}");
    assert!((ci - 1.963_243).abs() < 1e-5);
    assert_eq!(summarize(&[4.0]).and_then(|s| s.ci95), None);
    assert!(summarize(&[]).is_none());
}
