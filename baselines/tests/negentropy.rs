//! Negentropy v1 against its published behaviour (`baselines.md` §4.1): round trips grow
//! with the logarithm of the set size (base 16), not with it; a 16-bucket split costs about
//! 20 bytes per range; and on the network the machine reconciles, fetches and then follows
//! live.

use std::collections::BTreeSet;

use baselines::negentropy::range::{Message, Mode, Record, initiate, reconcile};
use baselines::negentropy::{Negentropy, record_id};
use baselines::testing::StaticNet;
use baselines::{Feed, Item, ItemId, PeerId, WireKind};

fn records(count: u64) -> Vec<Record> {
    let mut records: Vec<Record> = (0..count)
        .map(|i| {
            let id = ItemId {
                feed: Feed(u32::try_from(i % 97).unwrap_or(0)),
                seq: u32::try_from(i).unwrap_or(0),
            };
            Record {
                timestamp: 1_700_000_000 + i,
                id: record_id(id),
            }
        })
        .collect();
    records.sort_unstable();
    records
}

/// Runs a reconciliation between two sets; returns the messages sent (both directions),
/// the largest message and what the initiator found it needs and has.
fn run(initiator: &[Record], responder: &[Record]) -> (usize, usize, Vec<[u8; 32]>, Vec<[u8; 32]>) {
    let mut messages = 1;
    let mut largest = 0;
    let mut query: Message = initiate(initiator);
    let (mut need, mut have) = (Vec::new(), Vec::new());
    loop {
        largest = largest.max(query.encode().len());
        let Some(answer) = reconcile(responder, &query, false).reply else {
            break;
        };
        messages += 1;
        largest = largest.max(answer.encode().len());
        let step = reconcile(initiator, &answer, true);
        need.extend(step.need);
        have.extend(step.have);
        match step.reply {
            Some(next) => {
                messages += 1;
                query = next;
            }
            None => break,
        }
    }
    (messages, largest, need, have)
}

#[test]
fn one_difference_costs_round_trips_logarithmic_in_the_set_size() {
    let mut round_trips = Vec::new();
    for count in [100_u64, 1_000, 10_000, 100_000, 1_000_000] {
        let full = records(count);
        let missing = full[full.len() / 3];
        let lacking: Vec<Record> = full.iter().copied().filter(|r| *r != missing).collect();
        let (messages, _, need, have) = run(&lacking, &full);
        assert_eq!(
            need,
            vec![missing.id],
            "{count}: the one missing id is found"
        );
        assert!(have.is_empty());
        round_trips.push((count, messages.div_ceil(2)));
    }
    // Each round trip descends two levels of 16-way splits (the initiator's and the
    // responder's) until a range holds fewer than 32 records: about log16(n / 32) / 2 + 1.
    // The README's analysis gives about 3 round trips for a million records differing by one.
    let expected = [
        (100, 1),
        (1_000, 2),
        (10_000, 2),
        (100_000, 2),
        (1_000_000, 3),
    ];
    assert_eq!(round_trips, expected);
}

#[test]
fn a_sixteen_bucket_split_costs_about_twenty_bytes_a_range() {
    let set = records(10_000);
    let opening = initiate(&set);
    assert_eq!(opening.ranges.len(), 16);
    assert!(
        opening
            .ranges
            .iter()
            .all(|r| matches!(r.mode, Mode::Fingerprint(_)))
    );
    let bytes = opening.encode().len();
    assert!((16 * 19..=16 * 22).contains(&(bytes - 1)), "{bytes} bytes");
}

#[test]
fn differences_on_both_sides_are_found_in_one_pass() {
    let full = records(5_000);
    let ours: Vec<Record> = full
        .iter()
        .copied()
        .filter(|r| r.timestamp % 500 != 7)
        .collect();
    let theirs: Vec<Record> = full
        .iter()
        .copied()
        .filter(|r| r.timestamp % 700 != 3)
        .collect();
    let (_, _, need, have) = run(&ours, &theirs);
    let need: BTreeSet<_> = need.into_iter().collect();
    let have: BTreeSet<_> = have.into_iter().collect();
    let expect_need: BTreeSet<_> = full
        .iter()
        .filter(|r| r.timestamp % 500 == 7 && r.timestamp % 700 != 3)
        .map(|r| r.id)
        .collect();
    let expect_have: BTreeSet<_> = full
        .iter()
        .filter(|r| r.timestamp % 700 == 3 && r.timestamp % 500 != 7)
        .map(|r| r.id)
        .collect();
    assert_eq!(need, expect_need);
    assert_eq!(have, expect_have);
}

fn item(feed: u32, seq: u32) -> Item {
    Item::post(
        ItemId {
            feed: Feed(feed),
            seq,
        },
        200,
    )
}

#[test]
fn peers_reconcile_on_connect_then_follow_live() {
    let feeds: BTreeSet<Feed> = [Feed(0), Feed(1)].into();
    let mut net = StaticNet::new(
        vec![Negentropy::new(feeds.clone()), Negentropy::new(feeds)],
        20,
    );
    for seq in 1..=40 {
        net.publish(PeerId(0), item(0, seq), 0);
    }
    for seq in 1..=3 {
        net.publish(PeerId(1), item(1, seq), 0);
    }
    net.connect(PeerId(0), PeerId(1), 100);
    net.run_until(2_000);
    assert!((1..=40).all(|seq| net.peer(PeerId(1)).holds(item(0, seq).id)));
    assert!((1..=3).all(|seq| net.peer(PeerId(0)).holds(item(1, seq).id)));
    let fetched = net.tally.messages_of(WireKind::Payload);
    assert_eq!(fetched, 43, "each missing record fetched once");
    net.publish(PeerId(0), item(0, 41), 3_000);
    net.run_until(4_000);
    assert!(net.peer(PeerId(1)).holds(item(0, 41).id), "pushed live");
    assert_eq!(net.tally.duplicates, 0);
}
