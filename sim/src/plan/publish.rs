//! The publish schedule: every account's follows at 0 s, then each publisher's posts, dict
//! updates and set updates as Poisson processes at its drawn rates, with what each update
//! supersedes (the set/dict semantics the runner's real msgs should agree with).

use std::collections::{BTreeMap, BTreeSet};

use super::{Content, PeerIdx, PeerPlan, Publish};
use crate::goal::FeedKind;
use crate::rng::{Stream, stream};
use crate::scenario::{DictLoad, FOLLOWS_FEED, PostLoad, Scenario, SetLoad};

/// Bytes of a follows-set msg's data (an account ID plus set bookkeeping).
const FOLLOW_BYTES: u64 = 80;

/// When publishing happens: `[start, stop)` in ms.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: u64,
    stop: u64,
}

/// Every msg to publish, sorted by (time, peer, feed, seq).
pub(super) fn schedule(
    scenario: &Scenario,
    seed: u64,
    peers: &[PeerPlan],
    publishers: &[PeerIdx],
) -> Vec<Publish> {
    let workload = &scenario.workload;
    let window = Window {
        start: workload.start.ms(),
        stop: scenario.workload_stop().ms(),
    };
    let mut out = bootstrap_follows(peers);
    for peer in publishers.iter().filter_map(|p| peers.get(*p as usize)) {
        if let Some(post) = &workload.post {
            let mut rng = stream(seed, "posts", u64::from(peer.index));
            out.extend(posts(post, peer, window, &mut rng));
        }
        if let Some(dict) = &workload.dict {
            let mut rng = stream(seed, "dict", u64::from(peer.index));
            out.extend(dict_updates(dict, peer, window, &mut rng));
        }
        if let Some(set) = &workload.set {
            let mut rng = stream(seed, "set", u64::from(peer.index));
            out.extend(set_updates(set, peer, window, &mut rng));
        }
    }
    out.sort_by(|x, y| (x.t_ms, x.peer, &x.feed, x.seq).cmp(&(y.t_ms, y.peer, &y.feed, y.seq)));
    out
}

/// Every account's follows at 0 s, in followee order.
fn bootstrap_follows(peers: &[PeerPlan]) -> Vec<Publish> {
    let mut out = Vec::new();
    for peer in peers.iter().filter(|p| p.account) {
        for (i, followee) in peer.follows.iter().enumerate() {
            let seq = u32::try_from(i + 1).expect("invariant: follows ≤ PEERS_MAX");
            out.push(Publish {
                t_ms: 0,
                peer: peer.index,
                feed: FOLLOWS_FEED.to_owned(),
                kind: FeedKind::Set,
                seq,
                bytes: FOLLOW_BYTES,
                supersedes: Vec::new(),
                content: Content::Follow {
                    followee: *followee,
                },
            });
        }
    }
    out
}

fn posts(post: &PostLoad, peer: &PeerPlan, window: Window, rng: &mut Stream) -> Vec<Publish> {
    let times = poisson_times(rng, peer.post_rate_per_hour, window.start, window.stop);
    let mut out = Vec::new();
    for (n, t_ms) in times.into_iter().enumerate() {
        let seq = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let bytes = post.size.sample(rng).round().max(1.0);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a positive size far below 2^64"
        )]
        let bytes = bytes as u64;
        out.push(Publish {
            t_ms,
            peer: peer.index,
            feed: post.feed.clone(),
            kind: FeedKind::Feed,
            seq,
            bytes,
            supersedes: Vec::new(),
            content: Content::Post { bytes },
        });
    }
    out
}

/// The first update (at 0 s) sets every field; later ones `fields_per_update` of them. An
/// update supersedes the msgs that last set its fields.
fn dict_updates(
    dict: &DictLoad,
    peer: &PeerPlan,
    window: Window,
    rng: &mut Stream,
) -> Vec<Publish> {
    let mut out = Vec::new();
    let mut roots: BTreeMap<String, u32> = BTreeMap::new();
    let mut seq = 0_u32;
    let mut times = vec![0];
    times.extend(poisson_times(
        rng,
        peer.dict_rate_per_hour,
        window.start,
        window.stop,
    ));
    for (n, t_ms) in times.into_iter().enumerate() {
        seq += 1;
        let fields: Vec<String> = if n == 0 {
            dict.fields.clone()
        } else {
            let weights = vec![1.0; dict.fields.len()];
            let mut picked: Vec<String> = rng
                .weighted_sample(&weights, dict.fields_per_update as usize)
                .into_iter()
                .map(|i| dict.fields[i].clone())
                .collect();
            picked.sort();
            picked
        };
        let mut supersedes: Vec<u32> = fields
            .iter()
            .filter_map(|f| roots.get(f).copied())
            .collect();
        supersedes.sort_unstable();
        supersedes.dedup();
        let mut update = BTreeMap::new();
        let mut bytes = 2_u64;
        for field in fields {
            let size = dict.value_size.sample(rng).round().max(1.0);
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a positive size far below 2^64"
            )]
            let size = size as usize;
            let value = filler(&format!("{field}-{seq}-"), size);
            bytes += (field.len() + value.len() + 6) as u64;
            roots.insert(field.clone(), seq);
            update.insert(field, value);
        }
        out.push(Publish {
            t_ms,
            peer: peer.index,
            feed: dict.feed.clone(),
            kind: FeedKind::Dict,
            seq,
            bytes,
            supersedes,
            content: Content::Dict { update },
        });
    }
    out
}

/// Adds and deletes of items `item-0 … item-{items-1}`. The first update is at 0 s (like the
/// first profile): the set exists, with an item, before any connection syncs it. A set feed
/// first written later would reach followers only after a reconnection (pzp-sync pushes in
/// realtime only on tangles the remote wanted something of when they synced).
fn set_updates(set: &SetLoad, peer: &PeerPlan, window: Window, rng: &mut Stream) -> Vec<Publish> {
    let mut out = Vec::new();
    let mut present: BTreeSet<String> = BTreeSet::new();
    let mut roots: BTreeMap<String, u32> = BTreeMap::new();
    let mut seq = 0_u32;
    let mut times = vec![0];
    times.extend(poisson_times(
        rng,
        peer.set_rate_per_hour,
        window.start,
        window.stop,
    ));
    for t_ms in times {
        seq += 1;
        let universe: Vec<String> = (0..set.items).map(|i| format!("item-{i}")).collect();
        let absent: Vec<&String> = universe.iter().filter(|i| !present.contains(*i)).collect();
        let delete = !present.is_empty() && (absent.is_empty() || rng.chance(set.delete));
        let item = if delete {
            let items: Vec<&String> = present.iter().collect();
            items[rng.index(items.len())].clone()
        } else {
            absent[rng.index(absent.len())].clone()
        };
        let supersedes = set_supersedes(&mut roots, &present, &item);
        roots.insert(item.clone(), seq);
        if delete {
            present.remove(&item);
        } else {
            present.insert(item.clone());
        }
        out.push(Publish {
            t_ms,
            peer: peer.index,
            feed: set.feed.clone(),
            kind: FeedKind::Set,
            seq,
            bytes: item.len() as u64 + 30,
            supersedes,
            content: Content::Set { add: !delete, item },
        });
    }
    out
}

/// pzp-set: an update of `item` supersedes the item's root and the roots of items no longer
/// in the set, which it takes out of `roots`.
fn set_supersedes(
    roots: &mut BTreeMap<String, u32>,
    present: &BTreeSet<String>,
    item: &str,
) -> Vec<u32> {
    let mut supersedes: Vec<u32> = Vec::new();
    let gone: Vec<String> = roots
        .keys()
        .filter(|i| !present.contains(*i) || *i == item)
        .cloned()
        .collect();
    for i in gone {
        if let Some(root) = roots.remove(&i) {
            supersedes.push(root);
        }
    }
    supersedes.sort_unstable();
    supersedes.dedup();
    supersedes
}

fn filler(prefix: &str, size: usize) -> String {
    let mut text = prefix.to_owned();
    while text.len() < size {
        text.push('x');
    }
    text
}

/// Arrival times of a Poisson process with `rate_per_hour` in [start, stop).
fn poisson_times(rng: &mut Stream, rate_per_hour: f64, start: u64, stop: u64) -> Vec<u64> {
    let mut times = Vec::new();
    if rate_per_hour <= 0.0 {
        return times;
    }
    let mean_gap_ms = 3_600_000.0 / rate_per_hour;
    #[expect(clippy::cast_precision_loss, reason = "times far below 2^53 ms")]
    let mut t = start as f64;
    #[expect(clippy::cast_precision_loss, reason = "times far below 2^53 ms")]
    let stop_f = stop as f64;
    loop {
        t += rng.exp(mean_gap_ms);
        if t >= stop_f {
            break;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "0 ≤ t < stop"
        )]
        times.push(t.floor() as u64);
    }
    times
}
