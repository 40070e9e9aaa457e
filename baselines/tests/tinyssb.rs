//! tinySSB against its design (`baselines.md` §2): every packet at most 120 bytes, the GOset
//! converging to the same set everywhere, and feeds — long entries' sidechains included —
//! replicated by polling alone, on a broadcast radio and over point-to-point links.

use baselines::testing::StaticNet;
use baselines::tinyssb::packet::PACKET_BYTES;
use baselines::tinyssb::{Profile, TinySsb};
use baselines::{Feed, Item, ItemId, PeerId, WireKind};

/// Twelve nodes in a line with a few shortcuts: several hops, no full mesh.
fn edges(peers: u32) -> Vec<(u32, u32)> {
    let mut edges: Vec<(u32, u32)> = (1..peers).map(|i| (i - 1, i)).collect();
    edges.extend([(0, 4), (5, 9)]);
    edges
}

fn network(profile: Profile, peers: u32) -> StaticNet<TinySsb> {
    let machines = (0..peers)
        .map(|i| TinySsb::new(Feed(i), profile, 1_000 + u64::from(i)))
        .collect();
    let mut net = StaticNet::new(machines, 50);
    for (a, b) in edges(peers) {
        net.connect(PeerId(a), PeerId(b), 0);
    }
    net
}

/// Posts of 40 bytes (plain48) and 300 bytes (an entry and three chunks) on a few feeds.
fn publish(net: &mut StaticNet<TinySsb>) -> Vec<ItemId> {
    let mut items = Vec::new();
    for author in [0_u32, 5, 11] {
        for seq in 1..=4 {
            let id = ItemId {
                feed: Feed(author),
                seq,
            };
            let content_bytes = if seq % 2 == 0 { 300 } else { 40 };
            net.publish(
                PeerId(author),
                Item::post(id, content_bytes),
                u64::from(seq) * 1_000,
            );
            items.push(id);
        }
    }
    items
}

fn converges(profile: Profile, horizon_ms: u64) -> StaticNet<TinySsb> {
    let peers = 12;
    let mut net = network(profile, peers);
    let items = publish(&mut net);
    net.run_until(horizon_ms);
    for peer in 0..peers {
        assert_eq!(
            net.peer(PeerId(peer)).goset_len(),
            peers as usize,
            "peer {peer}'s GOset"
        );
        for item in &items {
            assert!(
                net.tally.holds(PeerId(peer), *item),
                "peer {peer} lacks {item:?}"
            );
        }
    }
    assert!(
        net.tally.largest_message <= PACKET_BYTES,
        "{} bytes",
        net.tally.largest_message
    );
    net
}

#[test]
fn lora_nodes_converge_by_polling_a_broadcast_radio() {
    let net = converges(Profile::lora(), 30 * 60_000);
    // Each entry or chunk heard by every neighbour: far fewer transmissions than deliveries.
    let payload = net.tally.messages_of(WireKind::Payload);
    let deliveries: usize = net.tally.stored.values().map(|items| items.len()).sum();
    assert!(
        payload > 0 && (payload as usize) < 4 * deliveries,
        "{payload} for {deliveries}"
    );
}

#[test]
fn simple_pubs_converge_over_links() {
    converges(Profile::simple_pub(), 30 * 60_000);
}

#[test]
fn a_large_goset_keeps_every_vector_within_one_packet() {
    // Sixty feeds with long histories: a WANT lists 2–3-byte sequence numbers and is cut
    // near 100 bytes, so the packet stays within 120.
    let peers = 60;
    let machines = (0..peers)
        .map(|i| TinySsb::new(Feed(i), Profile::simple_pub(), u64::from(i)))
        .collect();
    let mut net = StaticNet::new(machines, 30);
    for i in 0..peers {
        net.connect(PeerId(i), PeerId((i + 1) % peers), 0);
    }
    for author in 0..peers {
        for seq in 1..=130 {
            let id = ItemId {
                feed: Feed(author),
                seq,
            };
            net.publish(PeerId(author), Item::post(id, 40), 0);
        }
    }
    net.run_until(20 * 60_000);
    assert!((0..peers).all(|p| net.peer(PeerId(p)).goset_len() == peers as usize));
    assert!(
        net.tally.largest_message <= PACKET_BYTES,
        "{} bytes",
        net.tally.largest_message
    );
    assert!(net.tally.messages_of(WireKind::Summary) > 0);
}
