//! Hostile input: every malformed object is refused with its own reason, never panics and
//! never grows a session past its named bounds; persistent garbage closes the stream.

use proptest::prelude::*;
use proto::db::EMPTY_TANGLES_CACHED_MAX;
use proto::goals::{Goal, Goals};
use proto::ids::{IdError, MsgId};
use proto::sync::bloom::{BloomError, BloomFilter, ERROR_RATE, SIZE_BITS_MAX};
use proto::sync::wire::{self, MSG_IDS_PER_PAYLOAD_MAX, WireError};
use proto::sync::{
    CloseReason, Config, INDEXED_TANGLES_MAX, IndexedDb, Input, KNOWN_IDS_MAX, Output,
    REFUSALS_MAX, Refusal, Session, SyncIndex, TANGLES_TRACKED_MAX, Time,
};
use proto::testing::Peer;
use serde_json::{Value, json};

use crate::support::load;

fn tangle() -> MsgId {
    MsgId::from_bytes(&[7; 32])
}

fn id(index: u64) -> MsgId {
    let mut bytes = [1u8; 32];
    bytes[..8].copy_from_slice(&index.to_be_bytes());
    MsgId::from_bytes(&bytes)
}

fn bloom() -> Value {
    BloomFilter::create(10, ERROR_RATE).to_value()
}

fn object(phase: Value, payload: Value) -> Value {
    json!({"id": tangle().as_str(), "phase": phase, "payload": payload})
}

fn refusal(value: &Value) -> WireError {
    wire::decode(value).expect_err("must be refused")
}

#[test]
fn every_check_has_its_reason() {
    assert_eq!(refusal(&Value::Null), WireError::NotObject);
    assert_eq!(refusal(&json!(5)), WireError::NotObject);
    assert_eq!(refusal(&json!([1, 2])), WireError::IsArray);
    assert_eq!(
        refusal(&object(json!("1"), json!([0, 1]))),
        WireError::PhaseNotNumber
    );
    assert_eq!(
        refusal(&json!({"id": tangle().as_str(), "payload": [0, 1]})),
        WireError::PhaseNotNumber
    );
    assert_eq!(
        refusal(&object(json!(0), json!([0, 1]))),
        WireError::PhaseZero
    );
    assert!(matches!(
        refusal(&object(json!(10), json!([0, 1]))),
        WireError::PhaseOutOfRange(_)
    ));
    assert!(matches!(
        refusal(&object(json!(1.5), json!([0, 1]))),
        WireError::PhaseOutOfRange(_)
    ));
    assert!(matches!(
        refusal(&json!({"id": "not-an-id", "phase": 1, "payload": [0, 1]})),
        WireError::BadId(IdError::NotBase58(_))
    ));
    assert!(matches!(
        refusal(&json!({"id": "2222", "phase": 1, "payload": [0, 1]})),
        WireError::BadId(IdError::WrongLength { .. })
    ));
    assert!(matches!(
        refusal(&json!({"id": 5, "phase": 1, "payload": [0, 1]})),
        WireError::BadId(_)
    ));
    assert_eq!(
        refusal(&json!({"id": tangle().as_str(), "phase": 1})),
        WireError::MissingPayload
    );
    assert_eq!(
        refusal(&object(json!(1), json!(0))),
        WireError::MissingPayload
    );
    for bad_range in [
        json!([1]),
        json!([0, -1]),
        json!([0, 1.5]),
        json!("0,1"),
        json!([0, 9_007_199_254_740_992_u64]),
    ] {
        assert!(
            matches!(
                refusal(&object(json!(1), bad_range.clone())),
                WireError::BadRange {
                    field: "payload",
                    ..
                }
            ),
            "{bad_range}"
        );
    }
    assert!(matches!(
        refusal(&object(
            json!(2),
            json!({"haveRange": [0, 1], "wantRange": 3})
        )),
        WireError::BadRange {
            field: "wantRange",
            ..
        }
    ));
    assert_eq!(
        refusal(&object(json!(3), json!({"wantRange": [0, 1]}))),
        WireError::MissingBloom
    );
    let mut huge = bloom();
    huge["_size"] = json!(SIZE_BITS_MAX + 1);
    assert_eq!(
        refusal(&object(json!(4), json!({"bloom": huge, "msgIDs": []}))),
        WireError::BadBloom(BloomError::SizeOutOfBounds { max: SIZE_BITS_MAX })
    );
    assert_eq!(
        refusal(&object(json!(5), json!({"bloom": bloom(), "msgIDs": "x"}))),
        WireError::MsgIdsNotArray
    );
    let too_many: Vec<String> = (0..=MSG_IDS_PER_PAYLOAD_MAX as u64)
        .map(|i| id(i).to_string())
        .collect();
    assert!(matches!(
        refusal(&object(
            json!(6),
            json!({"bloom": bloom(), "msgIDs": too_many})
        )),
        WireError::TooManyMsgIds { .. }
    ));
    assert!(matches!(
        refusal(&object(
            json!(7),
            json!({"bloom": bloom(), "msgIDs": [id(1).as_str(), "nope"]})
        )),
        WireError::BadMsgId { index: 1, .. }
    ));
    assert_eq!(
        refusal(&object(json!(8), json!({"bloom": bloom(), "msgs": {}}))),
        WireError::MsgsNotArray
    );
    assert_eq!(
        refusal(&object(json!(9), json!([{"data": null}]))),
        WireError::MsgShape { index: 0 }
    );
}

#[test]
fn a_msg_that_does_not_decode_is_dropped_alone() {
    let trace = load("sync-trace.json");
    let good = trace["bobMsgs"][2]["msg"].clone();
    let mut bad = good.clone();
    bad["data"]["text"] = json!("tampered");
    let received = wire::decode(&object(json!(9), json!([good, bad]))).expect("shape is fine");
    assert_eq!(received.msg.msgs().len(), 1);
    assert_eq!(received.dropped.len(), 1);
    assert_eq!(received.dropped[0].index, 1);
}

/// A responder session over an empty peer with a goal on [`tangle`].
struct Target {
    peer: Peer,
    session: Session,
}

impl Target {
    fn new() -> Self {
        let mut peer = Peer::new();
        peer.set_goal(tangle(), Goal::All).expect("goal");
        Self {
            peer,
            session: Session::new(Config::default()),
        }
    }

    fn feed(&mut self, value: Value) -> Vec<Output> {
        let mut out = Vec::new();
        let mut store = IndexedDb::new(&mut self.peer.db, &mut self.peer.index);
        let Ok(()) = self.session.handle(
            Time(0),
            Input::Received(value),
            &mut store,
            &self.peer.goals,
            &mut out,
        );
        self.session.check_invariants();
        out
    }
}

#[test]
fn phases_out_of_order_are_refused() {
    let mut target = Target::new();
    let out = target.feed(object(json!(4), json!({"bloom": bloom(), "msgIDs": []})));
    assert!(matches!(
        out.as_slice(),
        [Output::Refused(Refusal::NoLocalWant { phase: 4, .. })]
    ));
    // A phase 9 for a tangle never negotiated commits nothing.
    let trace = load("sync-trace.json");
    let out = target.feed(object(
        json!(9),
        json!([trace["bobMsgs"][0]["msg"].clone()]),
    ));
    assert!(
        out.iter()
            .all(|output| matches!(output, Output::Finished { .. }))
    );
}

#[test]
fn persistent_garbage_closes_the_stream() {
    let mut target = Target::new();
    let mut closed = false;
    for round in 0..=REFUSALS_MAX {
        let out = target.feed(json!({"garbage": round}));
        closed |= out
            .iter()
            .any(|output| matches!(output, Output::Close(CloseReason::TooManyRefusals { .. })));
    }
    assert!(closed);
    assert!(target.session.is_closed());
    // A closed session ignores everything.
    assert!(target.feed(object(json!(1), json!([0, 0]))).is_empty());
}

#[test]
fn a_flood_of_tangles_is_bounded() {
    let mut target = Target::new();
    let mut answered = 0;
    let mut refused = 0;
    for index in 0..(TANGLES_TRACKED_MAX as u64 + 80) {
        let out = target.feed(json!({"id": id(index).as_str(), "phase": 1, "payload": [0, 3]}));
        for output in out {
            match output {
                Output::Send(_) => answered += 1,
                Output::Refused(Refusal::TooManyTangles { .. }) => refused += 1,
                _ => {}
            }
        }
        if target.session.is_closed() {
            break;
        }
    }
    assert_eq!(answered, TANGLES_TRACKED_MAX);
    assert_eq!(refused, REFUSALS_MAX + 1);
    assert!(target.session.is_closed());
}

#[test]
fn random_tangles_asked_across_streams_leave_a_bounded_cache() {
    let mut target = Target::new();
    let before = target.peer.db.cached_tangles();
    // Ten streams' worth of phase-1 objects for tangles nobody holds, each stream within its
    // own bound; the database keeps only a bounded number of those empty tangles.
    for stream in 0..10u64 {
        target.session = Session::new(Config::default());
        for index in 0..4000u64 {
            let tangle = id(stream * 1_000_000 + index);
            let out = target.feed(json!({"id": tangle.as_str(), "phase": 1, "payload": [0, 3]}));
            assert!(matches!(out.as_slice(), [Output::Send(_)]), "{out:?}");
        }
    }
    let cached = target.peer.db.cached_tangles();
    assert!(
        cached <= before + EMPTY_TANGLES_CACHED_MAX,
        "{cached} tangles cached after 40,000 unknown ones were asked about"
    );
    assert!(target.peer.index.len() <= INDEXED_TANGLES_MAX);
}

#[test]
fn promised_ids_are_bounded_per_stream() {
    let mut target = Target::new();
    let out = target.feed(object(json!(1), json!([0, 3])));
    assert!(matches!(out.as_slice(), [Output::Send(_)]));
    let mut next = 0u64;
    let mut closed = false;
    for _ in 0..(KNOWN_IDS_MAX / MSG_IDS_PER_PAYLOAD_MAX + 2) {
        let ids: Vec<String> = (next..next + MSG_IDS_PER_PAYLOAD_MAX as u64)
            .map(|i| id(i).to_string())
            .collect();
        next += MSG_IDS_PER_PAYLOAD_MAX as u64;
        let out = target.feed(object(json!(4), json!({"bloom": bloom(), "msgIDs": ids})));
        if out
            .iter()
            .any(|output| matches!(output, Output::Close(CloseReason::KnownIdsBudget { .. })))
        {
            closed = true;
            break;
        }
    }
    assert!(closed);
}

/// Arbitrary JSON shaped like sync objects.
fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..12).prop_map(Value::from),
        any::<f64>()
            .prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        "[a-zA-Z0-9]{0,50}".prop_map(Value::from),
        (0u64..4).prop_map(|i| Value::from(id(i).to_string())),
        Just(Value::from(tangle().to_string())),
        Just(bloom()),
    ];
    let tree = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("phase".to_owned()),
                    Just("payload".to_owned()),
                    Just("haveRange".to_owned()),
                    Just("wantRange".to_owned()),
                    Just("bloom".to_owned()),
                    Just("msgIDs".to_owned()),
                    Just("msgs".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..4
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    });
    (0u64..11, tree.clone(), tree).prop_map(|(phase, payload, other)| {
        if phase == 10 {
            other
        } else {
            json!({"id": tangle().as_str(), "phase": phase, "payload": payload})
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever arrives, a session neither panics nor breaks its bounds.
    #[test]
    fn arbitrary_objects_never_panic(objects in prop::collection::vec(hostile_value(), 1..40)) {
        let mut target = Target::new();
        for value in objects {
            let _ = target.feed(value);
        }
        let goals = Goals::new();
        let mut index = SyncIndex::new();
        let mut out = Vec::new();
        let mut store = IndexedDb::new(&mut target.peer.db, &mut index);
        let Ok(()) = target.session.handle(Time(1), Input::Start, &mut store, &goals, &mut out);
        target.session.check_invariants();
    }
}
