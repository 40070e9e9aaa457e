//! Sync throughput against validation throughput, on in-memory peers.
//!
//! - `validate/10000`: adding a pre-made 10,000-msg feed to a fresh database (the baseline
//!   for a full sync, which must validate the same msgs);
//! - `validate/100_on_10000`: adding the next 100 msgs on top of 10,000 (the baseline for an
//!   incremental sync);
//! - `sync/full_10000`: an empty peer pulls the 10,000-msg feed;
//! - `sync/incremental_100_on_10000`: a peer with 10,000 msgs pulls the next 100.
//! - `reconcile/items_100_on_10000`: the range reconciliation alone for the same case
//!   (`proto::sync::recon::Reconciler`), over the same items pzp-sync's blooms hold: both
//!   sides sort their items and build prefix sums, then exchange reconciliation messages
//!   until the initiator knows the 100 IDs it lacks. No frames, no msgs, nothing validated.
//!   Its bytes are printed beside pzp-sync's, as base64 in JSON strings would carry them.
//! - `reconcile/exchange_100_on_10000`: the whole `sync.reconcile` exchange for the same case
//!   (`proto::sync::recon::ReconSession` on both sides, `proto::testing::recon::ReconPair`):
//!   frames, the 100 msgs sent, validated and stored, exactly as `sync/incremental_100_on_10000`
//!   does with pzp-sync. Compare both with `validate/100_on_10000` of the same run. Between
//!   peers that reconciled before (their indexes hold the IDs' bytes, and the dialer's grew
//!   by an exchange, as a running node's have room for the next msgs); `_first` is a node's
//!   first exchange on the tangles since it started, which decodes them.
//!
//! The syncs run through `proto::testing::Pair` (pzp-sync) and `ReconPair` (`sync.reconcile`):
//! objects cross as JSON text, and every msg received is validated and stored. Bytes (msgs
//! and overhead) and round trips of each sync are printed once.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use proto::db::Db;
use proto::goals::Goal;
use proto::ids::{AccountId, MsgId};
use proto::keys::Keypair;
use proto::msg::Msg;
use proto::store::{MemStore, Store};
use proto::sync::Config;
use proto::sync::recon::{Item, Reconciler, Role};
use proto::testing::recon::ReconPair;
use proto::testing::{Metrics, Pair, Peer};
use serde_json::json;

const BASE_MSGS: usize = 10_000;
const NEW_MSGS: usize = 100;
const DOMAIN: &str = "post";

/// A published feed: the msgs in publish order (account root, moot, posts).
struct Fixture {
    account: AccountId,
    feed: MsgId,
    msgs: Vec<Msg>,
}

impl Fixture {
    fn build(posts: usize) -> Self {
        let keypair = Keypair::from_seed(&[7; 32]);
        let mut db = Db::new(MemStore::new());
        let account = db
            .create_account(&keypair, "account", "bench")
            .expect("account");
        let mut ids = vec![account];
        for index in 0..posts {
            let data = json!({"text": format!("post number {index} of the benchmark feed, with a little text to make it look like a real post"), "index": index});
            ids.push(
                db.publish(&keypair, &account, DOMAIN, data, &[])
                    .expect("publish"),
            );
            if index == 0 {
                // The moot was created by the first publish; keep publish order.
                let feed = proto::msg::feed_id(&account, DOMAIN);
                ids.insert(1, feed);
            }
        }
        let msgs = ids
            .iter()
            .map(|id| Arc::unwrap_or_clone(db.get(id).expect("memory").expect("stored")))
            .collect();
        Self {
            account,
            feed: proto::msg::feed_id(&account, DOMAIN),
            msgs,
        }
    }

    /// A peer holding the first `count` msgs, with goals on the feed and the account.
    fn peer(&self, count: usize) -> Peer {
        let mut peer = Peer::new();
        for msg in self.msgs.iter().take(count) {
            peer.add(msg.clone(), None).expect("valid");
        }
        peer.set_goal(self.feed, Goal::All).expect("goal");
        peer.set_goal(self.account, Goal::All).expect("goal");
        // Load and index the tangles, as a running peer would have them.
        let Ok(()) = peer.index.warm(&mut peer.db, &self.feed);
        let Ok(()) = peer.index.warm(&mut peer.db, &self.account);
        peer
    }
}

/// The reconciliation items of the first `count` msgs: depth in the feed as the key,
/// account msgs (no depth in the feed) at key 0.
fn recon_items(fixture: &Fixture, count: usize) -> Vec<Item> {
    let feed = fixture.feed;
    let item = |msg: &Msg| {
        let id = msg.id();
        let key = if id == feed {
            0
        } else {
            msg.metadata.tangles.get(&feed).map_or(0, |link| link.depth)
        };
        Item {
            key,
            id: id.to_bytes(),
        }
    };
    fixture.msgs.iter().take(count).map(item).collect()
}

/// Runs one reconciliation to its end: (messages, bytes as base64, IDs the initiator needs).
fn reconcile_once(initiator: Vec<Item>, responder: Vec<Item>) -> (usize, usize, usize) {
    let initiator = Reconciler::new(Role::Initiator, initiator).expect("depths");
    let responder = Reconciler::new(Role::Responder, responder).expect("depths");
    let base64_len = |bytes: &[u8]| bytes.len().div_ceil(3) * 4;
    let mut message = initiator.initiate();
    let (mut messages, mut bytes, mut need) = (1, base64_len(&message), 0);
    loop {
        let reply = responder.reconcile(&message).expect("valid");
        if reply.is_done() {
            break;
        }
        (messages, bytes) = (messages + 1, bytes + base64_len(&reply.message));
        let next = initiator.reconcile(&reply.message).expect("valid");
        need += next.need.len();
        if next.is_done() {
            break;
        }
        (messages, bytes) = (messages + 1, bytes + base64_len(&next.message));
        message = next.message;
    }
    (messages, bytes, need)
}

fn sync_once(dialer: Peer, responder: Peer) -> (Metrics, Pair) {
    let mut pair = Pair::new(dialer, responder, Config::default());
    pair.check_invariants = false;
    pair.start().expect("start");
    let metrics = pair.run().expect("quiescent");
    (metrics, pair)
}

fn exchange_once(dialer: Peer, responder: Peer) -> (Metrics, ReconPair) {
    let mut pair = ReconPair::new(dialer, responder);
    pair.check_invariants = false;
    pair.start().expect("start");
    let metrics = pair.run().expect("quiescent");
    (metrics, pair)
}

fn report(name: &str, metrics: &Metrics) {
    #[allow(clippy::cast_precision_loss)]
    let overhead_percent =
        metrics.overhead_bytes() as f64 * 100.0 / metrics.msg_bytes.max(1) as f64;
    eprintln!(
        "{name}: {} objects, {} bytes ({} msg bytes, {} overhead = {overhead_percent:.2}%), {} msgs carried, {} added, {} one-way trips ({} round trips)",
        metrics.objects,
        metrics.bytes,
        metrics.msg_bytes,
        metrics.overhead_bytes(),
        metrics.msgs_carried,
        metrics.added_at_dialer,
        metrics.one_way_trips,
        metrics.round_trips(),
    );
}

fn benches(c: &mut Criterion) {
    let fixture = Fixture::build(BASE_MSGS + NEW_MSGS);
    let base = 2 + BASE_MSGS;
    let empty = {
        let mut peer = Peer::new();
        peer.set_goal(fixture.feed, Goal::All).expect("goal");
        peer.set_goal(fixture.account, Goal::All).expect("goal");
        peer
    };
    let holds_base = fixture.peer(base);
    let holds_all = fixture.peer(base + NEW_MSGS);

    // Sanity and byte counts, once.
    let (full, pair) = sync_once(empty.clone(), holds_base.clone());
    let (dialer, _) = pair.into_peers();
    assert_eq!(dialer.db.store().len(), holds_base.db.store().len());
    report("sync/full_10000", &full);
    let (incremental, pair) = sync_once(holds_base.clone(), holds_all.clone());
    let (dialer, _) = pair.into_peers();
    assert_eq!(dialer.db.store().len(), holds_all.db.store().len());
    report("sync/incremental_100_on_10000", &incremental);

    let mut group = c.benchmark_group("validate");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(u64::try_from(base).expect("small")));
    let base_msgs: Vec<Msg> = fixture.msgs.iter().take(base).cloned().collect();
    group.bench_function("10000", |bencher| {
        bencher.iter_batched(
            || base_msgs.clone(),
            |msgs| {
                let mut db = Db::new(MemStore::new());
                for msg in msgs {
                    db.add(msg, None).expect("valid");
                }
                black_box(db)
            },
            BatchSize::LargeInput,
        );
    });
    group.throughput(Throughput::Elements(
        u64::try_from(NEW_MSGS).expect("small"),
    ));
    let new_msgs: Vec<Msg> = fixture.msgs.iter().skip(base).cloned().collect();
    group.bench_function("100_on_10000", |bencher| {
        bencher.iter_batched(
            || (holds_base.db.clone(), new_msgs.clone()),
            |(mut db, msgs)| {
                for msg in msgs {
                    db.add(msg, None).expect("valid");
                }
                black_box(db)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();

    let mut group = c.benchmark_group("sync");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(u64::try_from(base).expect("small")));
    group.bench_function("full_10000", |bencher| {
        bencher.iter_batched(
            || (empty.clone(), holds_base.clone()),
            |(dialer, responder)| black_box(sync_once(dialer, responder)),
            BatchSize::LargeInput,
        );
    });
    group.throughput(Throughput::Elements(
        u64::try_from(NEW_MSGS).expect("small"),
    ));
    group.bench_function("incremental_100_on_10000", |bencher| {
        bencher.iter_batched(
            || (holds_base.clone(), holds_all.clone()),
            |(dialer, responder)| black_box(sync_once(dialer, responder)),
            BatchSize::LargeInput,
        );
    });
    group.finish();

    reconcile_benches(c, &fixture, base, incremental.msg_bytes);
    exchange_benches(c, &fixture, &holds_base, &holds_all);
}

/// The whole `sync.reconcile` exchange on the 100-on-10,000 case, beside pzp-sync's
/// `sync/incremental_100_on_10000`: `exchange_100_on_10000` between peers that have
/// reconciled these tangles before (their indexes hold the IDs' bytes, as a running node's
/// do after its first exchange), `exchange_100_on_10000_first` between peers whose indexes
/// were only warmed for pzp-sync (a node's first exchange on the tangles since it started).
fn exchange_benches(c: &mut Criterion, fixture: &Fixture, holds_base: &Peer, holds_all: &Peer) {
    let (metrics, pair) = exchange_once(holds_base.clone(), holds_all.clone());
    let (dialer, _) = pair.into_peers();
    assert_eq!(dialer.db.store().len(), holds_all.db.store().len());
    assert_eq!(
        metrics.added_at_dialer,
        u64::try_from(NEW_MSGS).expect("small")
    );
    report("reconcile/exchange_100_on_10000", &metrics);
    let reconciled_before = |peer: &Peer| {
        let mut peer = peer.clone();
        for tangle in [fixture.feed, fixture.account] {
            let Ok(()) = peer.index.warm_for_reconcile(&mut peer.db, &tangle);
        }
        peer
    };
    // A running node's index has grown as msgs arrived, so it has room for the next ones;
    // a peer fresh from `warm` has none, and its first append would copy each vector. So
    // the dialer reaches the base feed by an exchange of its own (from 100 msgs fewer), as
    // the steady state the bench measures; clones keep the room (`SyncIndex`'s `Clone`).
    let warm_all = reconciled_before(holds_all);
    let base = usize::try_from(holds_base.db.store().len()).expect("small");
    let before_base = reconciled_before(&fixture.peer(base - NEW_MSGS));
    let (_, pair) = exchange_once(before_base, reconciled_before(holds_base));
    let (warm_base, _) = pair.into_peers();
    assert_eq!(warm_base.db.store().len(), holds_base.db.store().len());

    let mut group = c.benchmark_group("reconcile");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(
        u64::try_from(NEW_MSGS).expect("small"),
    ));
    for (name, dialer, responder) in [
        ("exchange_100_on_10000", &warm_base, &warm_all),
        ("exchange_100_on_10000_first", holds_base, holds_all),
    ] {
        group.bench_function(name, |bencher| {
            bencher.iter_batched(
                || (dialer.clone(), responder.clone()),
                |(dialer, responder)| black_box(exchange_once(dialer, responder)),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

/// The range reconciliation's step on the same 100-on-10,000 case (bytes against the msg
/// bytes pzp-sync carried, printed once), beside pzp-sync's blooms.
fn reconcile_benches(c: &mut Criterion, fixture: &Fixture, base: usize, msg_bytes: u64) {
    let base_items = recon_items(fixture, base);
    let all_items = recon_items(fixture, base + NEW_MSGS);
    let (messages, recon_bytes, need) = reconcile_once(base_items.clone(), all_items.clone());
    assert_eq!(need, NEW_MSGS);
    #[allow(clippy::cast_precision_loss)]
    let recon_percent = recon_bytes as f64 * 100.0 / msg_bytes.max(1) as f64;
    eprintln!(
        "reconcile/items_100_on_10000: {messages} messages, {recon_bytes} bytes as base64 = {recon_percent:.2}% of the {} msg bytes pzp-sync carried",
        msg_bytes,
    );

    let mut group = c.benchmark_group("reconcile");
    group.sample_size(10);
    group.throughput(Throughput::Elements(
        u64::try_from(NEW_MSGS).expect("small"),
    ));
    group.bench_function("items_100_on_10000", |bencher| {
        bencher.iter_batched(
            || (base_items.clone(), all_items.clone()),
            |(initiator, responder)| black_box(reconcile_once(initiator, responder)),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(sync_benches, benches);
criterion_main!(sync_benches);
