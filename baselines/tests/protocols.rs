//! Each baseline against its spec's arithmetic and published behaviour (`baselines.md`),
//! on the small deterministic network of `baselines::testing`.

use std::collections::BTreeSet;

use baselines::p2p::flood::Flood;
use baselines::p2p::mesh::Exclusion;
use baselines::ssb::classic::Classic;
use baselines::ssb::ebt::{Ebt, EbtWire, decode_note, encode_note};
use baselines::testing::StaticNet;
use baselines::{Feed, Item, ItemId, PeerId, Replicator, Wire, WireKind};

const LATENCY_MS: u64 = 20;

fn item(feed: u32, seq: u32) -> Item {
    Item::post(
        ItemId {
            feed: Feed(feed),
            seq,
        },
        200,
    )
}

/// Six peers, nine links: a ring with three chords; connected, with cycles.
const GRAPH: [(u32, u32); 9] = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (4, 5),
    (5, 0),
    (0, 3),
    (1, 4),
    (2, 5),
];

fn connect_all<R: Replicator>(net: &mut StaticNet<R>, edges: &[(u32, u32)]) {
    for &(a, b) in edges {
        net.connect(PeerId(a), PeerId(b), 0);
    }
}

fn degree(peer: u32, edges: &[(u32, u32)]) -> u64 {
    edges
        .iter()
        .filter(|&&(a, b)| a == peer || b == peer)
        .count() as u64
}

#[test]
fn flooding_sends_two_e_minus_n_minus_one_when_skipping_the_previous_hop() {
    let peers = 6_u64;
    let edges = GRAPH.len() as u64;
    let machines = (0..6)
        .map(|i| Flood::new(PeerId(i), Exclusion::PreviousHop))
        .collect();
    let mut net = StaticNet::new(machines, LATENCY_MS);
    connect_all(&mut net, &GRAPH);
    net.publish(PeerId(0), item(0, 1), 1_000);
    net.run_until(5_000);
    let sends = net.tally.messages_of(WireKind::Payload);
    assert_eq!(sends, 2 * edges - (peers - 1));
    assert_eq!(net.tally.duplicates, 2 * edges - 2 * (peers - 1));
    assert!((0..6).all(|p| net.tally.holds(PeerId(p), item(0, 1).id)));
}

#[test]
fn flooding_sends_two_e_minus_the_originators_degree_when_skipping_the_originator() {
    let edges = GRAPH.len() as u64;
    let machines = (0..6)
        .map(|i| Flood::new(PeerId(i), Exclusion::Originator))
        .collect();
    let mut net = StaticNet::new(machines, LATENCY_MS);
    connect_all(&mut net, &GRAPH);
    net.publish(PeerId(0), item(0, 1), 1_000);
    net.run_until(5_000);
    assert_eq!(
        net.tally.messages_of(WireKind::Payload),
        2 * edges - degree(0, &GRAPH)
    );
}

#[test]
fn flooding_drops_a_broadcast_older_than_its_window() {
    // A line 0 - 1 - 2 whose second hop is only connected after the window: nothing is
    // relayed late, since 0.6 drops broadcasts older than 60 s.
    let machines = (0..3)
        .map(|i| Flood::new(PeerId(i), Exclusion::Originator))
        .collect();
    let mut net = StaticNet::new(machines, 61_000);
    net.connect(PeerId(0), PeerId(1), 0);
    net.connect(PeerId(1), PeerId(2), 0);
    net.publish(PeerId(0), item(0, 1), 200_000);
    net.run_until(1_000_000);
    assert!(
        !net.tally.holds(PeerId(1), item(0, 1).id),
        "61 s in flight: too old to keep"
    );
}

fn everyone_replicates(feeds: &[u32]) -> BTreeSet<Feed> {
    feeds.iter().map(|&f| Feed(f)).collect()
}

#[test]
fn classic_replicates_through_a_relay_and_asks_for_every_feed_on_every_connection() {
    let machines = (0..3)
        .map(|_| Classic::new(everyone_replicates(&[0, 1])))
        .collect();
    let mut net = StaticNet::new(machines, LATENCY_MS);
    for seq in 1..=5 {
        net.publish(PeerId(0), item(0, seq), 0);
    }
    net.connect(PeerId(0), PeerId(1), 10);
    net.connect(PeerId(1), PeerId(2), 10);
    net.run_until(10_000);
    assert_eq!(net.peer(PeerId(2)).latest(Feed(0)), 5);
    // Two links, two ends each, two feeds: eight requests, whether anything changed or not.
    assert_eq!(net.tally.messages_of(WireKind::Summary), 8);
    // 0 → 1 and 1 → 2 five msgs each, and 2 → 1 echoes them: 1 asked 2 for feed 0 from
    // sequence 1 when both links came up at once, and a live history stream sends every
    // msg appended, whoever it came from.
    assert_eq!(net.tally.messages_of(WireKind::Payload), 15);
    assert_eq!(net.tally.duplicates, 5);
}

#[test]
fn classic_receives_a_feed_from_every_peer_that_serves_it() {
    // A triangle: peers 1 and 2 each get item 1 from the author and again from each other,
    // and both echo it to the author, which asked for its own feed (as ssb-replicate does).
    let machines = (0..3)
        .map(|_| Classic::new(everyone_replicates(&[0])))
        .collect();
    let mut net = StaticNet::new(machines, LATENCY_MS);
    connect_all(&mut net, &[(0, 1), (1, 2), (0, 2)]);
    net.publish(PeerId(0), item(0, 1), 1_000);
    net.run_until(5_000);
    assert_eq!(net.tally.messages_of(WireKind::Payload), 6);
    assert_eq!(net.tally.duplicates, 4);
}

#[test]
fn ebt_notes_encode_as_the_protocol_guide_says() {
    let table = [
        (0, (0, true)),
        (1, (0, false)),
        (2, (1, true)),
        (3, (1, false)),
        (12, (6, true)),
        (450, (225, true)),
    ];
    for (value, (seq, rx)) in table {
        assert_eq!(decode_note(value), Some((seq, rx)), "{value}");
        assert_eq!(encode_note(seq, rx), value);
    }
    assert_eq!(decode_note(-1), None);
}

fn ebt_mesh(peers: u32, feeds: &[u32]) -> StaticNet<Ebt> {
    let machines = (0..peers)
        .map(|i| Ebt::new(Feed(i), everyone_replicates(feeds)))
        .collect();
    StaticNet::new(machines, LATENCY_MS)
}

fn full_mesh(peers: u32) -> Vec<(u32, u32)> {
    (0..peers)
        .flat_map(|a| (a + 1..peers).map(move |b| (a, b)))
        .collect()
}

#[test]
fn ebt_sends_each_msg_once_per_peer_once_its_tree_has_formed() {
    // epidemic-broadcast-trees' test/two.js: messages sent = messages × (peers − 1).
    let peers = 5;
    let mut net = ebt_mesh(peers, &[0]);
    connect_all(&mut net, &full_mesh(peers));
    net.publish(PeerId(0), item(0, 1), 1_000);
    net.run_until(10_000);
    let warm = net.tally.clone();
    for seq in 2..=11 {
        net.publish(PeerId(0), item(0, seq), 10_000 + u64::from(seq) * 100);
    }
    net.run_until(20_000);
    let sent = net.tally.messages_of(WireKind::Payload) - warm.messages_of(WireKind::Payload);
    assert_eq!(sent, 10 * u64::from(peers - 1));
    assert_eq!(net.tally.duplicates, warm.duplicates);
    assert!((0..peers).all(|p| net.peer(PeerId(p)).latest(Feed(0)) == 11));
}

#[test]
fn ebt_skips_unchanged_feeds_when_peers_meet_again() {
    let mut net = ebt_mesh(2, &[0, 1]);
    let summary =
        |t: &baselines::testing::Tally| t.bytes.get(&WireKind::Summary).copied().unwrap_or(0);
    let empty = EbtWire::Notes(Default::default()).bytes();
    let (link, _) = net.connect(PeerId(0), PeerId(1), 0);
    net.run_until(5_000);
    net.disconnect(PeerId(0), link, 5_000);
    let first = summary(&net.tally);
    assert!(
        first > 2 * empty,
        "first contact lists every replicated feed"
    );
    // Nothing changed: each side sends one empty `{}`, nothing else.
    let (link, _) = net.connect(PeerId(0), PeerId(1), 6_000);
    net.run_until(10_000);
    assert_eq!(summary(&net.tally) - first, 2 * empty);
    net.disconnect(PeerId(0), link, 10_000);
    // Peer 0 published while apart: it lists that one feed, and peer 1 answers for it.
    net.publish(PeerId(0), item(0, 1), 10_500);
    let before = summary(&net.tally);
    net.connect(PeerId(0), PeerId(1), 11_000);
    net.run_until(15_000);
    let one_entry = EbtWire::Notes([(Feed(0), 2)].into()).bytes();
    let answer = EbtWire::Notes([(Feed(0), 0)].into()).bytes();
    assert_eq!(summary(&net.tally) - before, one_entry + empty + answer);
    assert_eq!(net.peer(PeerId(1)).latest(Feed(0)), 1);
}

#[test]
fn ebt_converges_when_its_tree_source_goes_away() {
    // 0 is the author; 2 hears of feed 0 from 1 first, then 1 leaves; 0's later msgs reach
    // 2 directly.
    let mut net = ebt_mesh(3, &[0]);
    let (to_1, _) = net.connect(PeerId(0), PeerId(1), 0);
    net.publish(PeerId(0), item(0, 1), 500);
    net.connect(PeerId(1), PeerId(2), 1_000);
    net.run_until(2_000);
    assert_eq!(net.peer(PeerId(2)).latest(Feed(0)), 1);
    let (one_two, _) = net.connect(PeerId(0), PeerId(2), 2_000);
    net.run_until(3_000);
    let _ = (to_1, one_two);
    for seq in 2..=4 {
        net.publish(PeerId(0), item(0, seq), 3_000 + u64::from(seq));
    }
    net.run_until(20_000);
    assert_eq!(net.peer(PeerId(2)).latest(Feed(0)), 4);
    assert_eq!(net.peer(PeerId(1)).latest(Feed(0)), 4);
}
