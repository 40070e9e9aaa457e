//! Range reconciliation (`proto::sync::recon`): the codec's round trip and every refusal
//! rule, fingerprints, and two random sets reconciling to exactly each side's missing IDs
//! within the round bound.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proto::sync::recon::{
    self, Bound, DecodeError, Fingerprint, IDLIST_ITEMS_ACCEPTED_MAX, Id, IdSum, Item, KEY_MAX,
    Message, Payload, PrefixSums, RECONCILE_FRAME_BYTES_MAX, RECONCILE_RANGES_MAX,
    RECONCILE_ROUNDS_MAX, Range, Reconciler, Role, VERSION, codec,
};
use sha2::{Digest, Sha256};

fn id_from(seed: u64) -> Id {
    let digest = Sha256::digest(seed.to_le_bytes());
    let mut id = [0; 32];
    id.copy_from_slice(&digest);
    id
}

fn varint(value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    codec::write_varint(&mut out, value);
    out
}

#[test]
fn varints_are_base_128_most_significant_group_first() {
    assert_eq!(varint(0), [0]);
    assert_eq!(varint(127), [0x7f]);
    assert_eq!(varint(128), [0x81, 0x00]);
    assert_eq!(varint(300), [0x82, 0x2c]);
    assert_eq!(varint(u64::MAX).len(), 10);
}

#[test]
fn fingerprint_is_sha256_of_the_le_sum_and_the_count() {
    let a = id_from(1);
    let b = id_from(2);
    // The sum by hand, byte by byte with carries, little-endian.
    let mut sum = [0_u8; 32];
    let mut carry = 0_u16;
    for i in 0..32 {
        let total = u16::from(a[i]) + u16::from(b[i]) + carry;
        sum[i] = (total & 0xff) as u8;
        carry = total >> 8;
    }
    let mut input = sum.to_vec();
    input.push(2);
    let expected: Fingerprint = Sha256::digest(&input)[..16].try_into().expect("16 bytes");
    assert_eq!(IdSum::default().plus(&a).plus(&b).fingerprint(2), expected);
    // The empty range: SHA-256 of 32 zero bytes and a zero count.
    let empty: Fingerprint = Sha256::digest([0_u8; 33])[..16]
        .try_into()
        .expect("16 bytes");
    assert_eq!(IdSum::default().fingerprint(0), empty);
}

#[test]
fn prefix_sums_give_every_range_its_own_fingerprint() {
    let mut items: Vec<Item> = (0..40)
        .map(|i| Item {
            key: i / 3,
            id: id_from(i),
        })
        .collect();
    items.sort();
    let sums = PrefixSums::new(&items);
    for start in 0..items.len() {
        for end in start..=items.len() {
            let direct = items[start..end]
                .iter()
                .fold(IdSum::default(), |sum, it| sum.plus(&it.id));
            assert_eq!(
                sums.fingerprint(start, end),
                direct.fingerprint(end - start)
            );
        }
    }
}

#[test]
fn bound_between_is_the_shortest_separator() {
    let mut low = Item {
        key: 5,
        id: [7; 32],
    };
    let mut high = Item {
        key: 5,
        id: [7; 32],
    };
    low.id[3] = 1;
    high.id[3] = 2;
    let bound = Bound::between(&low, &high);
    assert_eq!(bound.prefix(), &high.id[..4]);
    assert!(bound.cmp_item(&low).is_gt() && bound.cmp_item(&high).is_le());
    let other_key = Bound::between(
        &low,
        &Item {
            key: 6,
            id: [0; 32],
        },
    );
    assert_eq!((other_key.key, other_key.prefix().len()), (6, 0));
}

fn message_bytes(ranges: &[(u64, &[u8], Vec<u8>)]) -> Vec<u8> {
    // Each range: encoded key, prefix, then mode and payload bytes as given.
    let mut out = vec![VERSION];
    for (key, prefix, rest) in ranges {
        out.extend(varint(*key));
        out.extend(varint(prefix.len() as u64));
        out.extend_from_slice(prefix);
        out.extend_from_slice(rest);
    }
    out
}

#[test]
fn every_malformed_rule_is_refused_by_name() {
    let skip = vec![0];
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (vec![], DecodeError::Empty),
        (vec![0x61], DecodeError::UnsupportedVersion(0x61)),
        (
            vec![VERSION; RECONCILE_FRAME_BYTES_MAX + 1],
            DecodeError::FrameTooLarge(RECONCILE_FRAME_BYTES_MAX + 1),
        ),
        (vec![VERSION, 0x85], DecodeError::VarintTruncated),
        (
            vec![
                VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
            DecodeError::VarintOverflow,
        ),
        (
            message_bytes(&[(KEY_MAX + 2, &[], skip.clone())]),
            DecodeError::KeyTooLarge,
        ),
        (vec![VERSION, 2, 33], DecodeError::PrefixTooLong(33)),
        (vec![VERSION, 2, 3, 1], DecodeError::PrefixTruncated),
        (
            message_bytes(&[(0, &[1], skip.clone())]),
            DecodeError::InfinityWithPrefix,
        ),
        (
            message_bytes(&[(0, &[], skip.clone()), (2, &[], skip.clone())]),
            DecodeError::RangeAfterInfinity,
        ),
        (
            message_bytes(&[(3, &[], skip.clone()), (1, &[], skip.clone())]),
            DecodeError::BoundNotIncreasing,
        ),
        (
            message_bytes(&[(1, &[], skip.clone())]),
            DecodeError::BoundNotIncreasing,
        ),
        (
            message_bytes(&[(2, &[], vec![3])]),
            DecodeError::UnknownMode(3),
        ),
        (
            message_bytes(&[(2, &[], vec![1, 0, 0])]),
            DecodeError::FingerprintTruncated,
        ),
        (
            message_bytes(&[(2, &[], [vec![2], varint(1025)].concat())]),
            DecodeError::IdListTooLong(1025),
        ),
        (
            message_bytes(&[(2, &[], [vec![2, 2], vec![9; 33]].concat())]),
            DecodeError::IdListTruncated(2),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(recon::decode(&bytes), Err(expected.clone()), "{expected}");
    }
    // RECONCILE_RANGES_MAX + 1 ranges, each one key above the last.
    let many: Vec<(u64, &[u8], Vec<u8>)> = (0..=RECONCILE_RANGES_MAX)
        .map(|_| (2, &[][..], skip.clone()))
        .collect();
    assert_eq!(
        recon::decode(&message_bytes(&many)),
        Err(DecodeError::TooManyRanges)
    );
    assert!(recon::decode(&message_bytes(&many[..RECONCILE_RANGES_MAX])).is_ok());
    // The largest accepted IdList decodes.
    let ids = [
        vec![2],
        varint(IDLIST_ITEMS_ACCEPTED_MAX as u64),
        vec![1; 32 * IDLIST_ITEMS_ACCEPTED_MAX],
    ]
    .concat();
    assert!(recon::decode(&message_bytes(&[(0, &[], ids)])).is_ok());
}

fn arb_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        Just(Payload::Skip),
        any::<[u8; 16]>().prop_map(Payload::Fingerprint),
        prop::collection::vec(any::<[u8; 32]>(), 0..4).prop_map(Payload::IdList),
    ]
}

/// Messages with increasing bounds (key steps, prefixes of 0..=32 bytes, maybe infinity).
fn arb_message() -> impl Strategy<Value = Message> {
    let range = (1_u64..1000, 0_usize..=32, any::<[u8; 32]>(), arb_payload());
    (prop::collection::vec(range, 0..20), any::<bool>()).prop_map(|(ranges, infinite)| {
        let mut key = 0;
        let mut out: Vec<Range> = ranges
            .into_iter()
            .map(|(step, len, bytes, payload)| {
                key += step;
                let mut padded_id = [0; 32];
                padded_id[..len].copy_from_slice(&bytes[..len]);
                let upper = Bound {
                    key,
                    padded_id,
                    prefix_len: len as u8,
                };
                Range { upper, payload }
            })
            .collect();
        if infinite {
            out.push(Range {
                upper: Bound::INFINITY,
                payload: Payload::Skip,
            });
        }
        Message { ranges: out }
    })
}

/// Drives two reconcilers to the end; returns the initiator's have and need, the messages
/// sent and their bytes.
fn run(a: &Reconciler, b: &Reconciler) -> (BTreeSet<Id>, BTreeSet<Id>, usize, usize) {
    let mut have = BTreeSet::new();
    let mut need = BTreeSet::new();
    let mut message = a.initiate();
    let (mut messages, mut bytes) = (1, message.len());
    for round in 0.. {
        assert!(
            round < 2 * RECONCILE_ROUNDS_MAX,
            "no end after {round} messages"
        );
        let reply = b
            .reconcile(&message)
            .expect("the initiator's message decodes");
        if reply.is_done() {
            break;
        }
        (messages, bytes) = (messages + 1, bytes + reply.message.len());
        let next = a
            .reconcile(&reply.message)
            .expect("the responder's message decodes");
        let done = next.is_done();
        have.extend(next.have);
        need.extend(next.need);
        if done {
            break;
        }
        (messages, bytes) = (messages + 1, bytes + next.message.len());
        message = next.message;
    }
    (have, need, messages, bytes)
}

fn sides(
    shared: u64,
    only_a: u64,
    only_b: u64,
    keys: u64,
) -> (Reconciler, Reconciler, BTreeSet<Id>, BTreeSet<Id>) {
    let item = |i: u64| Item {
        key: i % keys,
        id: id_from(i),
    };
    let common: Vec<Item> = (0..shared).map(item).collect();
    let a_extra: Vec<Item> = (shared..shared + only_a).map(item).collect();
    let b_extra: Vec<Item> = (shared + only_a..shared + only_a + only_b)
        .map(item)
        .collect();
    let a =
        Reconciler::new(Role::Initiator, [common.clone(), a_extra.clone()].concat()).expect("keys");
    let b = Reconciler::new(Role::Responder, [common, b_extra.clone()].concat()).expect("keys");
    let ids = |items: Vec<Item>| items.into_iter().map(|it| it.id).collect();
    (a, b, ids(a_extra), ids(b_extra))
}

#[test]
fn equal_sets_cost_one_fingerprint_exchange() {
    let (a, b, _, _) = sides(10_000, 0, 0, 10_000);
    let (have, need, messages, _) = run(&a, &b);
    assert!(have.is_empty() && need.is_empty());
    assert_eq!(
        messages, 1,
        "the responder's answer is all Skip and is not sent"
    );
}

#[test]
fn hundred_new_on_ten_thousand_is_found_in_a_few_rounds_and_bytes() {
    // Keys are depths: the 100 new msgs are the deepest, as in a feed's catch-up.
    let (a, b, only_a, only_b) = sides(10_000, 0, 100, 10_100);
    let (have, need, messages, bytes) = run(&a, &b);
    assert!(have.is_empty());
    assert_eq!(need, only_b);
    assert!(only_a.is_empty());
    // Measured: 4 messages, 4,227 bytes. The 100 new IDs are 3,200 of them; the rest is
    // bounds, fingerprints and the shared IDs of the last buckets.
    assert!(messages <= 4, "{messages} messages");
    assert!(bytes < 6_000, "{bytes} bytes");
}

#[test]
fn many_items_in_one_key_reconcile_through_id_prefixes() {
    let (a, b, only_a, only_b) = sides(3_000, 40, 70, 1);
    let (have, need, _, _) = run(&a, &b);
    assert_eq!((have, need), (only_a, only_b));
}

#[test]
fn a_coarse_remote_id_list_is_answered_within_the_frame_bound() {
    // The remote lists 1,024 IDs for all of [0, ∞); we hold 5,000 there.
    let ids: Vec<Id> = (0..IDLIST_ITEMS_ACCEPTED_MAX as u64).map(id_from).collect();
    let message = Message {
        ranges: vec![Range {
            upper: Bound::INFINITY,
            payload: Payload::IdList(ids),
        }],
    };
    let items = (0..5_000)
        .map(|i| Item {
            key: i,
            id: id_from(i + 77),
        })
        .collect();
    let b = Reconciler::new(Role::Responder, items).expect("keys");
    let reply = b.reconcile(&recon::encode(&message)).expect("decodes");
    assert!(reply.message.len() <= RECONCILE_FRAME_BYTES_MAX);
    let decoded = recon::decode(&reply.message).expect("our reply decodes");
    assert!(matches!(
        decoded.ranges.last().map(|r| &r.payload),
        Some(Payload::Fingerprint(_))
    ));
}

#[test]
fn a_reply_past_the_frame_bounds_covers_the_rest_with_one_fingerprint() {
    // 500 mismatching Fingerprint ranges over 100 items each: splitting them all would take
    // 8,000 ranges.
    let ranges = (1..=500)
        .map(|key| Range {
            upper: Bound {
                key: key * 100,
                padded_id: [0; 32],
                prefix_len: 0,
            },
            payload: Payload::Fingerprint([0; 16]),
        })
        .collect();
    let items = (0..50_000)
        .map(|i| Item {
            key: i,
            id: id_from(i),
        })
        .collect();
    let side = Reconciler::new(Role::Responder, items).expect("keys");
    let reply = side
        .reconcile(&recon::encode(&Message { ranges }))
        .expect("decodes");
    let decoded = recon::decode(&reply.message).expect("our reply keeps the bounds");
    let last = decoded.ranges.last().expect("ranges");
    assert!(last.upper.is_infinity());
    assert!(matches!(last.payload, Payload::Fingerprint(_)));
    assert!(decoded.ranges.len() > 16 && decoded.ranges.len() <= RECONCILE_RANGES_MAX);
}

#[test]
fn differences_spread_over_a_large_set_reconcile_through_full_frames() {
    // 1,000 differences each way spread over 40,000 items: the second level's splits pass
    // RECONCILE_RANGES_MAX, so replies stop early and the exchange continues from there.
    let (a, b, only_a, only_b) = sides(40_000, 1_000, 1_000, 41_000);
    let (have, need, messages, bytes) = run(&a, &b);
    assert_eq!((have, need), (only_a, only_b));
    // Measured: 8 messages, 70,369 bytes (the 2,000 differing IDs alone are 64,000).
    assert!(messages <= RECONCILE_ROUNDS_MAX, "{messages} messages");
    assert!(bytes < 100_000, "{bytes} bytes");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn messages_round_trip(message in arb_message()) {
        prop_assert_eq!(recon::decode(&recon::encode(&message)), Ok(message));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), versioned in any::<bool>()) {
        let mut bytes = bytes;
        if versioned && !bytes.is_empty() {
            bytes[0] = VERSION;
        }
        let items = (0..100).map(|i| Item { key: i / 4, id: id_from(i) }).collect::<Vec<_>>();
        for role in [Role::Initiator, Role::Responder] {
            let side = Reconciler::new(role, items.clone()).expect("keys");
            if let Ok(reply) = side.reconcile(&bytes) {
                prop_assert!(recon::decode(&reply.message).is_ok());
            }
        }
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        message in arb_message(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0_u8..3), 1..6),
    ) {
        // Random bytes rarely get past the first range; edits of a valid message reach
        // every later rule.
        let mut bytes = recon::encode(&message);
        for (at, byte, kind) in edits {
            let at = at % bytes.len();
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.truncate(at.max(1)),
                _ => bytes.insert(at.max(1), byte),
            }
        }
        let items: Vec<Item> = (0..200).map(|i| Item { key: i * 5, id: id_from(i) }).collect();
        for role in [Role::Initiator, Role::Responder] {
            let side = Reconciler::new(role, items.clone()).expect("keys");
            if let Ok(reply) = side.reconcile(&bytes) {
                prop_assert!(recon::decode(&reply.message).is_ok());
            }
        }
    }

    #[test]
    fn any_valid_message_gets_a_reply_within_the_bounds(message in arb_message(), n in 0_u64..3_000) {
        let items: Vec<Item> = (0..n).map(|i| Item { key: i % 700, id: id_from(i) }).collect();
        for role in [Role::Initiator, Role::Responder] {
            let side = Reconciler::new(role, items.clone()).expect("keys");
            let reply = side.answer(&message);
            prop_assert!(recon::decode(&reply.message).is_ok(), "reply breaks a bound");
        }
    }

    #[test]
    fn random_sets_reconcile_to_each_sides_missing_ids(
        shared in 0_u64..4_000, only_a in 0_u64..300, only_b in 0_u64..300, keys in 1_u64..5_000,
    ) {
        let (a, b, a_extra, b_extra) = sides(shared, only_a, only_b, keys);
        let (have, need, messages, _) = run(&a, &b);
        prop_assert_eq!(have, a_extra);
        prop_assert_eq!(need, b_extra);
        prop_assert!(messages <= RECONCILE_ROUNDS_MAX, "{} messages", messages);
    }
}
