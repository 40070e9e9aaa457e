//! p2p.today's sync socket against its rules (`baselines.md` §3.3): updates flood to every
//! node, a late joiner gets the table (not its history) in a connect-time dump, and leases
//! keep other writers off a key for an hour.

use baselines::p2p::mesh::Exclusion;
use baselines::p2p::sync_table::{LEASE_MS, SyncTable, key_of};
use baselines::testing::StaticNet;
use baselines::{Feed, Item, ItemId, PeerId, WireKind};

fn update(feed: u32, seq: u32, field: u32) -> Item {
    Item::update(
        ItemId {
            feed: Feed(feed),
            seq,
        },
        60,
        field,
    )
}

fn nodes(count: u32) -> Vec<SyncTable> {
    (0..count)
        .map(|i| SyncTable::new(PeerId(i), Exclusion::Originator, true))
        .collect()
}

#[test]
fn updates_flood_and_a_late_joiner_gets_only_the_latest_values() {
    let mut net = StaticNet::new(nodes(5), 20);
    for i in 1..4 {
        net.connect(PeerId(i - 1), PeerId(i), 0);
    }
    // Author 0 sets its "name" three times and its "bio" once.
    for (seq, field) in [(1, 0), (2, 0), (3, 1), (4, 0)] {
        net.publish(PeerId(0), update(0, seq, field), 1_000 * u64::from(seq));
    }
    net.run_until(10_000);
    for peer in 0..4 {
        assert_eq!(
            net.peer(PeerId(peer)).value((Feed(0), 0)),
            Some(update(0, 4, 0).id)
        );
        assert_eq!(
            net.peer(PeerId(peer)).value((Feed(0), 1)),
            Some(update(0, 3, 1).id)
        );
    }
    let payload_before = net.tally.messages_of(WireKind::Payload);
    // Node 4 joins after the window: it gets two dump entries, not four updates.
    net.connect(PeerId(3), PeerId(4), 100_000);
    net.run_until(110_000);
    assert_eq!(net.peer(PeerId(4)).len(), 2);
    assert_eq!(
        net.peer(PeerId(4)).value((Feed(0), 0)),
        Some(update(0, 4, 0).id)
    );
    // Both ends dump their table: node 3's two keys, node 4's none.
    assert_eq!(net.tally.messages_of(WireKind::Payload) - payload_before, 2);
}

#[test]
fn a_lease_keeps_other_writers_off_a_key_for_an_hour() {
    let mut table = SyncTable::new(PeerId(5), Exclusion::Originator, true);
    let mut out = Vec::new();
    let item = update(5, 1, 0);
    baselines::Replicator::handle(
        &mut table,
        10_000,
        baselines::Input::Publish(item),
        &mut out,
    );
    let key = key_of(&item);
    assert!(table.accepts(20_000, key, PeerId(5), 20_000), "the owner");
    assert!(
        !table.accepts(20_000, key, PeerId(7), 20_000),
        "another writer, within the hour"
    );
    assert!(table.accepts(10_000 + LEASE_MS + 1, key, PeerId(7), 10_000 + LEASE_MS + 1));
    // The same second: the lower id wins, the higher does not.
    assert!(table.accepts(10_500, key, PeerId(2), 10_500));
    assert!(!table.accepts(10_500, key, PeerId(9), 10_500));
    let unleased = SyncTable::new(PeerId(5), Exclusion::Originator, false);
    assert!(unleased.accepts(0, key, PeerId(7), 1), "an unset key");
}

#[test]
fn a_node_away_during_an_update_keeps_the_old_value_after_the_dump() {
    // The published rule that leaves p2p-sync-table's missing pairs in `protocols.toml`
    // (docs/protocols.md): a connect-time dump is ignored for a key the receiver already
    // holds, even when the dump's value is newer, and nothing else repairs it.
    let mut net = StaticNet::new(nodes(3), 20);
    net.connect(PeerId(0), PeerId(1), 0);
    let (away, _) = net.connect(PeerId(1), PeerId(2), 0);
    net.publish(PeerId(0), update(0, 1, 0), 1_000);
    net.run_until(5_000);
    assert_eq!(
        net.peer(PeerId(2)).value((Feed(0), 0)),
        Some(update(0, 1, 0).id)
    );
    // Node 2 is away while the author updates the key.
    net.disconnect(PeerId(1), away, 6_000);
    net.publish(PeerId(0), update(0, 2, 0), 10_000);
    net.run_until(15_000);
    assert_eq!(
        net.peer(PeerId(1)).value((Feed(0), 0)),
        Some(update(0, 2, 0).id)
    );
    // It comes back: node 1 dumps the new value, node 2 keeps the old one.
    let payload_before = net.tally.messages_of(WireKind::Payload);
    net.connect(PeerId(1), PeerId(2), 20_000);
    net.run_until(30_000);
    assert!(
        net.tally.messages_of(WireKind::Payload) > payload_before,
        "a dump was sent"
    );
    assert_eq!(
        net.peer(PeerId(2)).value((Feed(0), 0)),
        Some(update(0, 1, 0).id)
    );
    assert!(!net.tally.holds(PeerId(2), update(0, 2, 0).id));
    // Only a new update by the owner while connected reaches it.
    net.publish(PeerId(0), update(0, 3, 0), 40_000);
    net.run_until(45_000);
    assert_eq!(
        net.peer(PeerId(2)).value((Feed(0), 0)),
        Some(update(0, 3, 0).id)
    );
}
