//! Liveness of the baselines on random networks: whatever the connected graph, the
//! publishing order and the connections broken and made again, every peer ends holding
//! every feed it replicates (flooding, which has no anti-entropy: on a static network).

use std::collections::BTreeSet;

use baselines::negentropy::Negentropy;
use baselines::p2p::flood::Flood;
use baselines::p2p::mesh::Exclusion;
use baselines::ssb::classic::Classic;
use baselines::ssb::ebt::Ebt;
use baselines::testing::StaticNet;
use baselines::tinyssb::{Profile, TinySsb};
use baselines::{Feed, Item, ItemId, PeerId, Replicator};
use proptest::prelude::*;

/// A random connected graph on `peers`: a random spanning tree plus extra links.
fn graph(peers: u32, parents: &[u32], extra: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut edges: BTreeSet<(u32, u32)> = BTreeSet::new();
    for child in 1..peers {
        let parent = parents[child as usize] % child;
        edges.insert((parent, child));
    }
    for &(a, b) in extra {
        let (a, b) = (a % peers, b % peers);
        if a != b {
            edges.insert((a.min(b), a.max(b)));
        }
    }
    edges.into_iter().collect()
}

#[derive(Debug, Clone)]
struct Case {
    peers: u32,
    edges: Vec<(u32, u32)>,
    /// (author, at ms): each publishes its feed's next item.
    posts: Vec<(u32, u64)>,
    /// Edges (by index) broken at 5 s and made again at 8 s.
    flaps: Vec<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    (3_u32..=7).prop_flat_map(|peers| {
        (
            prop::collection::vec(any::<u32>(), peers as usize),
            prop::collection::vec((any::<u32>(), any::<u32>()), 0..6),
            prop::collection::vec((0..peers, 0_u64..12_000), 1..25),
            prop::collection::vec(any::<usize>(), 0..3),
        )
            .prop_map(move |(parents, extra, posts, flaps)| {
                let edges = graph(peers, &parents, &extra);
                let flaps = flaps.into_iter().map(|i| i % edges.len()).collect();
                Case {
                    peers,
                    edges,
                    posts,
                    flaps,
                }
            })
    })
}

/// Runs the case; returns what each peer should hold per feed and the network.
fn run<R: Replicator>(case: &Case, machines: Vec<R>) -> (Vec<u32>, StaticNet<R>) {
    run_for(case, machines, 120_000)
}

fn run_for<R: Replicator>(
    case: &Case,
    machines: Vec<R>,
    horizon_ms: u64,
) -> (Vec<u32>, StaticNet<R>) {
    let mut net = StaticNet::new(machines, 25);
    let mut dialer_links = Vec::new();
    for &(a, b) in &case.edges {
        dialer_links.push(net.connect(PeerId(a), PeerId(b), 0).0);
    }
    for &flap in &case.flaps {
        let (a, b) = case.edges[flap];
        net.disconnect(PeerId(a), dialer_links[flap], 5_000);
        net.connect(PeerId(a), PeerId(b), 8_000);
    }
    let mut latest = vec![0_u32; case.peers as usize];
    let mut posts = case.posts.clone();
    posts.sort_by_key(|&(_, at)| at);
    for (author, at) in posts {
        latest[author as usize] += 1;
        let id = ItemId {
            feed: Feed(author),
            seq: latest[author as usize],
        };
        net.publish(PeerId(author), Item::post(id, 100), at);
    }
    net.run_until(horizon_ms);
    (latest, net)
}

/// The first (peer, item) pair not stored at the end, if any: every peer should hold every
/// item of every feed.
fn missing<R: Replicator>(net: &StaticNet<R>, latest: &[u32]) -> Option<(PeerId, ItemId)> {
    let peers = u32::try_from(latest.len()).unwrap_or(u32::MAX);
    (0..peers).map(PeerId).find_map(|peer| {
        latest.iter().zip(0..).find_map(|(&last, feed)| {
            (1..=last)
                .map(|seq| ItemId {
                    feed: Feed(feed),
                    seq,
                })
                .find(|&id| !net.tally.holds(peer, id))
                .map(|id| (peer, id))
        })
    })
}

fn all_feeds(peers: u32) -> BTreeSet<Feed> {
    (0..peers).map(Feed).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn classic_converges(case in case()) {
        let machines = (0..case.peers).map(|_| Classic::new(all_feeds(case.peers))).collect();
        let (latest, net) = run(&case, machines);
        prop_assert_eq!(missing(&net, &latest), None);
    }

    #[test]
    fn ebt_converges(case in case()) {
        let machines =
            (0..case.peers).map(|i| Ebt::new(Feed(i), all_feeds(case.peers))).collect();
        let (latest, net) = run(&case, machines);
        prop_assert_eq!(missing(&net, &latest), None);
    }

    #[test]
    fn negentropy_converges(case in case()) {
        let machines = (0..case.peers).map(|_| Negentropy::new(all_feeds(case.peers))).collect();
        let (latest, net) = run(&case, machines);
        prop_assert_eq!(missing(&net, &latest), None);
    }

    #[test]
    fn tinyssb_converges_on_the_radio_and_over_links(case in case(), radio in any::<bool>()) {
        // Polling every 4–7 s per vector on a 15–20 s GOset round: give it an hour.
        let profile = if radio { Profile::lora() } else { Profile::simple_pub() };
        let machines = (0..case.peers)
            .map(|i| TinySsb::new(Feed(i), profile, u64::from(i) + 7))
            .collect();
        let (latest, net) = run_for(&case, machines, 3_600_000);
        prop_assert_eq!(missing(&net, &latest), None);
    }

    #[test]
    fn flooding_reaches_everyone_connected_at_the_time(case in case()) {
        // No flaps: flooding has no anti-entropy, so only a static network is promised.
        // Published once every link is up (a broadcast before has nobody to go to).
        let posts = case.posts.iter().map(|&(author, at)| (author, at + 1_000)).collect();
        let static_case = Case { flaps: Vec::new(), posts, ..case };
        let machines =
            (0..static_case.peers).map(|i| Flood::new(PeerId(i), Exclusion::Originator)).collect();
        let (latest, net) = run(&static_case, machines);
        prop_assert_eq!(missing(&net, &latest), None);
    }
}
