//! A machine's process stopping (a crash, going offline): the incarnation ends before its
//! links close, so the machine drops every connection's state and its timers and keeps its
//! store. Whatever it is fed afterwards, it sends nothing on the links it had.

use std::collections::BTreeSet;

use baselines::negentropy::Negentropy;
use baselines::p2p::flood::Flood;
use baselines::p2p::mesh::Exclusion;
use baselines::p2p::sync_table::SyncTable;
use baselines::ssb::classic::Classic;
use baselines::ssb::ebt::Ebt;
use baselines::testing::StaticNet;
use baselines::tinyssb::{Profile, TinySsb};
use baselines::{Feed, Input, Item, ItemId, Output, PeerId, Replicator};

const LATENCY_MS: u64 = 20;
const SYNCED_MS: u64 = 20_000;

fn post(feed: u32) -> Item {
    Item::post(
        ItemId {
            feed: Feed(feed),
            seq: 1,
        },
        200,
    )
}

fn sends<W>(out: &[Output<W>]) -> usize {
    out.iter()
        .filter(|o| matches!(o, Output::Send { .. } | Output::Broadcast { .. }))
        .count()
}

/// Two peers linked until they are in sync; then peer 1, still running, publishes, and
/// peer 0 stops and is handed a publish of its own. Returns what each sent, and peer 0's
/// deadline after stopping.
fn publish_after_one_stops<R: Replicator>(machines: Vec<R>) -> (usize, usize, Option<u64>) {
    let mut net = StaticNet::new(machines, LATENCY_MS);
    net.connect(PeerId(0), PeerId(1), 0);
    net.run_until(SYNCED_MS);
    let mut running = Vec::new();
    net.peer_mut(PeerId(1))
        .handle(SYNCED_MS, Input::Publish(post(1)), &mut running);
    let stopped = net.peer_mut(PeerId(0));
    stopped.stop();
    let deadline = stopped.deadline();
    let mut after = Vec::new();
    stopped.handle(SYNCED_MS, Input::Publish(post(0)), &mut after);
    assert!(
        after.iter().any(|o| matches!(o, Output::Stored { .. })),
        "a stopped machine still stores"
    );
    (sends(&running), sends(&after), deadline)
}

fn both() -> BTreeSet<Feed> {
    BTreeSet::from([Feed(0), Feed(1)])
}

#[test]
fn every_baseline_forgets_its_connections_when_its_process_stops() {
    let rows = [
        (
            "ssb-classic",
            publish_after_one_stops((0..2).map(|_| Classic::new(both())).collect()),
        ),
        (
            "ssb-ebt",
            publish_after_one_stops((0..2).map(|p| Ebt::new(Feed(p), both())).collect()),
        ),
        (
            "negentropy",
            publish_after_one_stops((0..2).map(|_| Negentropy::new(both())).collect()),
        ),
        (
            "p2p-flood",
            publish_after_one_stops(
                (0..2)
                    .map(|p| Flood::new(PeerId(p), Exclusion::Originator))
                    .collect(),
            ),
        ),
        (
            "p2p-sync-table",
            publish_after_one_stops(
                (0..2)
                    .map(|p| SyncTable::new(PeerId(p), Exclusion::Originator, true))
                    .collect(),
            ),
        ),
    ];
    for (name, (running, stopped, deadline)) in rows {
        // The running peer pushes its write on the link: the stopped one would have.
        assert!(running > 0, "{name}: the running peer sent its publish");
        assert_eq!(stopped, 0, "{name}: the stopped peer sent on a dead link");
        assert_eq!(deadline, None, "{name}: a timer outlived the process");
    }
}

#[test]
fn tinyssb_and_ebt_timers_end_with_the_process() {
    // Both poll on timers while linked (tinySSB's WANT and GOset rounds, EBT's stall check);
    // a stopped process has none until its next incarnation's first input arms them.
    let mut tiny = StaticNet::new(
        (0..2)
            .map(|p| TinySsb::new(Feed(p), Profile::simple_pub(), u64::from(p) + 1))
            .collect(),
        LATENCY_MS,
    );
    tiny.connect(PeerId(0), PeerId(1), 0);
    tiny.run_until(SYNCED_MS);
    let mut ebt = StaticNet::new(
        (0..2).map(|p| Ebt::new(Feed(p), both())).collect(),
        LATENCY_MS,
    );
    ebt.connect(PeerId(0), PeerId(1), 0);
    ebt.run_until(SYNCED_MS);
    assert!(tiny.peer(PeerId(0)).deadline().is_some());
    assert!(ebt.peer(PeerId(0)).deadline().is_some());
    tiny.peer_mut(PeerId(0)).stop();
    ebt.peer_mut(PeerId(0)).stop();
    assert_eq!(tiny.peer(PeerId(0)).deadline(), None);
    assert_eq!(ebt.peer(PeerId(0)).deadline(), None);
}
