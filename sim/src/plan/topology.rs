//! The connections of a plan: the topology generators (random-regular, small-world,
//! hub-and-spoke, full, listed edges), then `dial_follows`, one edge per pair of peers.

use std::collections::BTreeSet;

use super::{Edge, EdgeOrigin, PeerIdx, PeerPlan};
use crate::rng::Stream;
use crate::scenario::{Role, Topology, TopologyKind};

/// The plan's edges, sorted by their pair of peers: the topology's first, then an edge to
/// each followed account with `dial_follows`. A pair gets one edge, dialed by whoever the
/// first source names first.
pub(super) fn edges(topology: &Topology, peers: &[PeerPlan], rng: &mut Stream) -> Vec<Edge> {
    let mut pairs: BTreeSet<(PeerIdx, PeerIdx)> = BTreeSet::new();
    let mut edges = Vec::new();
    for (a, b) in directed(topology, peers, rng) {
        let key = (a.min(b), a.max(b));
        if a == b || !pairs.insert(key) {
            continue;
        }
        edges.push(Edge {
            dialer: a,
            acceptor: b,
            origin: EdgeOrigin::Topology,
        });
    }
    if topology.dial_follows {
        for peer in peers {
            for followee in &peer.follows {
                let key = (peer.index.min(*followee), peer.index.max(*followee));
                if pairs.insert(key) {
                    edges.push(Edge {
                        dialer: peer.index,
                        acceptor: *followee,
                        origin: EdgeOrigin::Follow,
                    });
                }
            }
        }
    }
    edges.sort_by_key(|e| (e.dialer.min(e.acceptor), e.dialer.max(e.acceptor)));
    edges
}

/// The topology's (dialer, acceptor) pairs, possibly with repeats.
fn directed(topology: &Topology, peers: &[PeerPlan], rng: &mut Stream) -> Vec<(PeerIdx, PeerIdx)> {
    let n = peers.len();
    let to_idx = |i: usize| PeerIdx::try_from(i).expect("invariant: ≤ PEERS_MAX peers");
    let indexed = |pairs: Vec<(usize, usize)>| -> Vec<(PeerIdx, PeerIdx)> {
        pairs
            .into_iter()
            .map(|(a, b)| (to_idx(a), to_idx(b)))
            .collect()
    };
    match topology.kind {
        TopologyKind::RandomRegular => {
            let degree = topology.degree.unwrap_or(1) as usize;
            indexed(random_regular(n, degree, rng))
        }
        TopologyKind::SmallWorld => {
            let k = topology.k.unwrap_or(2) as usize;
            let beta = topology.beta.unwrap_or(0.0);
            indexed(small_world(n, k, beta, rng))
        }
        TopologyKind::HubAndSpoke => hub_and_spoke(topology, peers, rng),
        TopologyKind::Full => {
            let mut directed = Vec::new();
            for a in 0..n {
                for b in a + 1..n {
                    directed.push((to_idx(a), to_idx(b)));
                }
            }
            directed
        }
        TopologyKind::Edges => {
            let find = |name: &str| peers.iter().find(|p| p.name == name).map(|p| p.index);
            topology
                .edges
                .iter()
                .flatten()
                .filter_map(|[a, b]| find(a).zip(find(b)))
                .collect()
        }
    }
}

/// Relay hubs fully meshed; every other peer dials `hub_links` hubs (relays or tunnel hubs;
/// default: all), drawn uniformly.
fn hub_and_spoke(
    topology: &Topology,
    peers: &[PeerPlan],
    rng: &mut Stream,
) -> Vec<(PeerIdx, PeerIdx)> {
    let mut directed = Vec::new();
    let relays: Vec<PeerIdx> = peers
        .iter()
        .filter(|p| p.role == Role::Hub)
        .map(|p| p.index)
        .collect();
    for (i, a) in relays.iter().enumerate() {
        for b in relays.iter().skip(i + 1) {
            directed.push((*a, *b));
        }
    }
    // Leaves dial relays to sync with them and attend tunnel hubs; tunnel hubs dial no one.
    let hubs: Vec<PeerIdx> = peers
        .iter()
        .filter(|p| p.role.is_hub())
        .map(|p| p.index)
        .collect();
    let links = topology.hub_links.map_or(hubs.len(), |l| l as usize);
    for peer in peers.iter().filter(|p| !p.role.is_hub()) {
        let weights = vec![1.0; hubs.len()];
        let mut chosen: Vec<PeerIdx> = rng
            .weighted_sample(&weights, links)
            .into_iter()
            .map(|i| hubs[i])
            .collect();
        chosen.sort_unstable();
        for hub in chosen {
            directed.push((peer.index, hub));
        }
    }
    directed
}

/// A random d-regular graph by pairing stubs one edge at a time, choosing only pairs that
/// keep the graph simple, and restarting when stuck (Steger–Wormald). Falls back to the last
/// near-regular attempt if every restart gets stuck (only for nearly complete graphs).
fn random_regular(n: usize, degree: usize, rng: &mut Stream) -> Vec<(usize, usize)> {
    let mut last = Vec::new();
    for _attempt in 0..100 {
        let mut stubs: Vec<usize> = (0..n)
            .flat_map(|v| std::iter::repeat_n(v, degree))
            .collect();
        let mut edges: BTreeSet<(usize, usize)> = BTreeSet::new();
        let mut order = Vec::new();
        let mut stuck = false;
        while stubs.len() >= 2 {
            let mut found = None;
            for _try in 0..(stubs.len() * 4).max(32) {
                let i = rng.index(stubs.len());
                let j = rng.index(stubs.len());
                let (u, v) = (stubs[i], stubs[j]);
                if i != j && u != v && !edges.contains(&(u.min(v), u.max(v))) {
                    found = Some((i, j));
                    break;
                }
            }
            let Some((i, j)) = found else {
                stuck = true;
                break;
            };
            let (u, v) = (stubs[i], stubs[j]);
            edges.insert((u.min(v), u.max(v)));
            order.push(if rng.chance(0.5) { (u, v) } else { (v, u) });
            let (high, low) = (i.max(j), i.min(j));
            stubs.swap_remove(high);
            stubs.swap_remove(low);
        }
        if !stuck {
            return order;
        }
        last = order;
    }
    last
}

/// Watts–Strogatz over a shuffled ring.
fn small_world(n: usize, k: usize, beta: f64, rng: &mut Stream) -> Vec<(usize, usize)> {
    let mut ring: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut ring);
    let mut adjacency: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for i in 0..n {
        for j in 1..=k / 2 {
            let (u, v) = (ring[i], ring[(i + j) % n]);
            adjacency.insert((u.min(v), u.max(v)));
            edges.push((u, v));
        }
    }
    for edge in &mut edges {
        if !rng.chance(beta) {
            continue;
        }
        let (u, v) = *edge;
        let options: Vec<usize> = (0..n)
            .filter(|w| *w != u && !adjacency.contains(&(u.min(*w), u.max(*w))))
            .collect();
        if options.is_empty() {
            continue;
        }
        let w = options[rng.index(options.len())];
        adjacency.remove(&(u.min(v), u.max(v)));
        adjacency.insert((u.min(w), u.max(w)));
        *edge = (u, w);
    }
    edges
}
