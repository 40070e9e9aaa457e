//! Each baseline's store size (`Replicator::stored_bytes`) against its own record format:
//! what a peer keeps once it holds what it wants, counted once however often it arrived.

use std::collections::BTreeSet;

use baselines::negentropy::Negentropy;
use baselines::p2p::flood::Flood;
use baselines::p2p::mesh::{ENVELOPE, Exclusion, NODE_ID, TIMESTAMP, msgpack_bin};
use baselines::p2p::sync_table::SyncTable;
use baselines::ssb::classic::Classic;
use baselines::ssb::ebt::Ebt;
use baselines::ssb::wire::message_bytes;
use baselines::testing::StaticNet;
use baselines::tinyssb::packet::{PACKET_BYTES, chunks_for};
use baselines::tinyssb::{Profile, TinySsb};
use baselines::{Feed, Item, ItemId, PeerId, Replicator};

const PEERS: u32 = 4;

fn post(feed: u32, seq: u32, content_bytes: u32) -> Item {
    Item::post(
        ItemId {
            feed: Feed(feed),
            seq,
        },
        content_bytes,
    )
}

/// Four peers in a ring (so items arrive twice at the far side), author 0 publishing
/// `items` one second apart; every peer's store size after `horizon_ms`.
fn sizes_after<R: Replicator>(machines: Vec<R>, items: &[Item], horizon_ms: u64) -> Vec<u64> {
    let mut net = StaticNet::new(machines, 20);
    for i in 0..PEERS {
        net.connect(PeerId(i), PeerId((i + 1) % PEERS), 0);
    }
    for (at, item) in (1_u64..).zip(items) {
        net.publish(PeerId(0), *item, at * 1_000);
    }
    net.run_until(horizon_ms);
    (0..PEERS)
        .map(|peer| net.peer(PeerId(peer)).stored_bytes())
        .collect()
}

fn everyone_replicates_feed_zero() -> BTreeSet<Feed> {
    BTreeSet::from([Feed(0)])
}

fn posts() -> Vec<Item> {
    vec![post(0, 1, 40), post(0, 2, 300), post(0, 3, 1_000)]
}

#[test]
fn ssb_stores_each_message_as_its_json_once() {
    let expected: u64 = posts().iter().map(message_bytes).sum();
    let classic = (0..PEERS)
        .map(|_| Classic::new(everyone_replicates_feed_zero()))
        .collect();
    assert_eq!(sizes_after(classic, &posts(), 60_000), vec![expected; 4]);
    let ebt = (0..PEERS)
        .map(|i| Ebt::new(Feed(i), everyone_replicates_feed_zero()))
        .collect();
    assert_eq!(sizes_after(ebt, &posts(), 60_000), vec![expected; 4]);
}

#[test]
fn tinyssb_stores_an_entry_packet_and_every_sidechain_chunk() {
    let expected: u64 = posts()
        .iter()
        .map(|item| (1 + u64::from(chunks_for(item.content_bytes))) * PACKET_BYTES)
        .sum();
    assert!(
        expected > 3 * PACKET_BYTES,
        "the long posts have sidechains"
    );
    let machines = (0..PEERS)
        .map(|i| TinySsb::new(Feed(i), Profile::simple_pub(), 7 + u64::from(i)))
        .collect();
    assert_eq!(
        sizes_after(machines, &posts(), 10 * 60_000),
        vec![expected; 4]
    );
}

#[test]
fn a_flooded_broadcast_is_stored_once_however_often_it_arrives() {
    let expected: u64 = posts()
        .iter()
        .map(|item| ENVELOPE + msgpack_bin(u64::from(item.content_bytes)))
        .sum();
    let machines = (0..PEERS)
        .map(|i| Flood::new(PeerId(i), Exclusion::PreviousHop))
        .collect();
    assert_eq!(sizes_after(machines, &posts(), 30_000), vec![expected; 4]);
}

#[test]
fn the_sync_table_stores_one_value_per_key() {
    let name = |seq, content_bytes| Item::update(ItemId { feed: Feed(0), seq }, content_bytes, 0);
    // Three values of the same key: only the last is kept.
    let updates = [name(1, 500), name(2, 500), name(3, 60)];
    let machines = (0..PEERS)
        .map(|i| SyncTable::new(PeerId(i), Exclusion::Originator, true))
        .collect();
    let sizes = sizes_after(machines, &updates, 30_000);
    let one_value = msgpack_bin(60) + NODE_ID + TIMESTAMP;
    assert!(sizes.iter().all(|&size| size == sizes[0]), "{sizes:?}");
    assert!(sizes[0] > one_value, "the key is counted too");
    assert!(sizes[0] < one_value + 100, "superseded values are not kept");
}

#[test]
fn negentropy_stores_each_record_once_and_grows_with_content() {
    let machines = || {
        (0..PEERS)
            .map(|_| Negentropy::new(everyone_replicates_feed_zero()))
            .collect()
    };
    let small = sizes_after(machines(), &[post(0, 1, 200)], 60_000);
    let large = sizes_after(machines(), &[post(0, 1, 700)], 60_000);
    assert!(small.iter().all(|&size| size == small[0]), "{small:?}");
    assert!(small[0] > 200);
    assert_eq!(large, vec![small[0] + 500; 4]);
}
