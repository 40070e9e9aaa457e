//! Properties: canonical JSON round-trips, random feeds (with forks and several keys)
//! validate, any one-field change to a valid msg is rejected, and a tangle's indexes hold
//! whatever order its members come and go in.

use std::sync::Arc;

use proptest::prelude::*;
use proto::account;
use proto::canon;
use proto::db::{Added, Db};
use proto::ids::{AccountId, MsgId};
use proto::keys::Keypair;
use proto::msg::{self, Msg};
use proto::store::{MemStore, Store};
use proto::tangle::Tangle;
use serde_json::{Map, Value, json};

/// Arbitrary JSON, including keys that sort differently by UTF-16 and by code point,
/// control characters, and numbers across the double range.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        "[a-zA-Z0-9_]{0,6}",
        Just("\u{FFFF}".to_owned()),
        Just("😀".to_owned()),
        Just("é".to_owned()),
        "\\PC{0,4}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        "[\\x00-\\x1f\"\\\\]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn canonical_json_round_trips(value in json_value()) {
        let canonical = canon::to_string(&value);
        let reparsed: Value = serde_json::from_str(&canonical).expect("canonical JSON parses");
        prop_assert_eq!(canon::to_string(&reparsed), canonical.clone());
        // Members are in UTF-16 order at every level.
        check_sorted(&reparsed)?;
    }

    #[test]
    fn numbers_round_trip_exactly(double in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
        let mut text = String::new();
        canon::write_f64(&mut text, double);
        let back: f64 = text.parse().expect("a number");
        prop_assert!(back == double, "{double} printed as {text}");
        prop_assert!(!text.contains("e+") || double.abs() >= 1e21);
    }
}

fn check_sorted(value: &Value) -> Result<(), TestCaseError> {
    let mut stack = vec![value];
    while let Some(current) = stack.pop() {
        match current {
            Value::Object(map) => {
                // serde_json keeps its own order; re-read the canonical text's order instead.
                let canonical = canon::to_string(current);
                let keys: Vec<String> = serde_json::from_str::<indexmap_like::Ordered>(&canonical)
                    .map(|o| o.0)
                    .unwrap_or_default();
                for pair in keys.windows(2) {
                    prop_assert!(
                        canon::compare_utf16(&pair[0], &pair[1]).is_lt(),
                        "{:?} before {:?}",
                        pair[0],
                        pair[1]
                    );
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    Ok(())
}

/// Reads only the top-level keys of a JSON object, in text order.
mod indexmap_like {
    use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

    pub struct Ordered(pub Vec<String>);

    impl<'de> Deserialize<'de> for Ordered {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Keys;
            impl<'de> Visitor<'de> for Keys {
                type Value = Ordered;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((key, _)) = map.next_entry::<String, IgnoredAny>()? {
                        keys.push(key);
                    }
                    Ok(Ordered(keys))
                }
            }
            deserializer.deserialize_map(Keys)
        }
    }
}

/// One step of two writers sharing an account and a feed.
#[derive(Debug, Clone)]
enum Step {
    /// Writer 0 or 1 publishes.
    Publish(usize, String),
    /// The other writer receives everything writer `from` has.
    Sync { from: usize },
    /// Writer 0 or 1 publishes into the thread rooted at the first post, too.
    Reply(usize),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        4 => (0..2usize, "[a-z ]{0,20}").prop_map(|(writer, text)| Step::Publish(writer, text)),
        2 => (0..2usize).prop_map(|from| Step::Sync { from }),
        1 => (0..2usize).prop_map(Step::Reply),
    ];
    prop::collection::vec(step, 1..24)
}

/// Copies every record of `from` missing in `to`, in `from`'s receive order.
fn copy_all(from: &Db<MemStore>, to: &mut Db<MemStore>) {
    let mut records = Vec::new();
    from.store()
        .scan(&mut |record| {
            records.push(Arc::clone(&record.msg));
            std::ops::ControlFlow::Continue(())
        })
        .expect("mem");
    for msg in records {
        let added = to.add((*msg).clone(), None);
        assert!(added.is_ok(), "copy refused: {added:?}");
        to.check_invariants().expect("mem");
    }
}

/// Two writers (two keys of one account) on one feed, with forks where they publish
/// without having synced. Returns every msg in an order where each msg follows its prevs.
fn random_feed(steps: &[Step]) -> (Vec<Msg>, AccountId) {
    let keys = [Keypair::from_seed(&[11; 32]), Keypair::from_seed(&[12; 32])];
    let mut writers = [Db::new(MemStore::new()), Db::new(MemStore::new())];
    let account = writers[0]
        .create_account(&keys[0], "account", "props")
        .expect("account");
    let consent = account::consent(&keys[1], &account);
    writers[0]
        .account_add(&keys[0], &account, &keys[1].public(), &consent, &["add"])
        .expect("add key");
    writers[0]
        .init_feed(&keys[0], &account, "post")
        .expect("moot");
    let (first, second) = writers.split_at_mut(1);
    copy_all(&first[0], &mut second[0]);
    let mut thread: Option<MsgId> = None;
    for step in steps {
        match step {
            Step::Publish(writer, text) => {
                let id = writers[*writer]
                    .publish(&keys[*writer], &account, "post", json!({"text": text}), &[])
                    .expect("publish");
                thread.get_or_insert(id);
            }
            Step::Reply(writer) => {
                let extra: Vec<MsgId> = thread
                    .iter()
                    .copied()
                    .filter(|root| writers[*writer].get(root).expect("mem").is_some())
                    .collect();
                writers[*writer]
                    .publish(
                        &keys[*writer],
                        &account,
                        "post",
                        json!({"reply": true}),
                        &extra,
                    )
                    .expect("reply");
            }
            Step::Sync { from } => {
                let (low, high) = writers.split_at_mut(1);
                if *from == 0 {
                    copy_all(&low[0], &mut high[0])
                } else {
                    copy_all(&high[0], &mut low[0])
                }
            }
        }
    }
    for writer in &writers {
        writer.check_invariants().expect("mem");
    }
    // Merge both writers into one receive order: writer 0's, then what only writer 1 has.
    let mut merged = Db::new(MemStore::new());
    copy_all(&writers[0], &mut merged);
    copy_all(&writers[1], &mut merged);
    let mut msgs = Vec::new();
    merged
        .store()
        .scan(&mut |record| {
            msgs.push((*record.msg).clone());
            std::ops::ControlFlow::Continue(())
        })
        .expect("mem");
    (msgs, account)
}

/// One-field changes to a msg's JSON that any validator must notice.
fn mutations(value: &Value) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    let mut push = |label: &'static str, change: &dyn Fn(&mut Value)| {
        let mut changed = value.clone();
        change(&mut changed);
        if changed != *value {
            out.push((label, changed));
        }
    };
    push("data", &|v| v["data"] = json!({"text": "forged"}));
    push("dataSize", &|v| {
        v["metadata"]["dataSize"] = json!(v["metadata"]["dataSize"].as_u64().unwrap_or(0) + 1)
    });
    push("dataHash", &|v| {
        v["metadata"]["dataHash"] = json!(msg::represent_data(&json!({"x": 1})).0.to_string())
    });
    push("domain", &|v| v["metadata"]["domain"] = json!("other"));
    push("account", &|v| {
        v["metadata"]["account"] = json!(msg::moot_id("x", "y").to_string())
    });
    push("accountTips", &|v| {
        v["metadata"]["accountTips"] = json!([msg::moot_id("a", "b").to_string()])
    });
    push("tangle depth", &|v| {
        if let Some(tangles) = v["metadata"]["tangles"].as_object_mut() {
            for link in tangles.values_mut() {
                link["depth"] = json!(link["depth"].as_u64().unwrap_or(0) + 1);
            }
        }
    });
    push("tangle prev", &|v| {
        if let Some(tangles) = v["metadata"]["tangles"].as_object_mut() {
            for link in tangles.values_mut() {
                link["prev"] = json!([msg::moot_id("p", "q").to_string()]);
            }
        }
    });
    push("v", &|v| v["metadata"]["v"] = json!(3));
    push("sigkey", &|v| {
        v["sigkey"] = json!(Keypair::from_seed(&[99; 32]).public().to_string())
    });
    push("sig", &|v| {
        let mut sig = bs58::decode(v["sig"].as_str().unwrap_or_default())
            .into_vec()
            .unwrap_or_default();
        if let Some(byte) = sig.get_mut(10) {
            *byte ^= 1;
        }
        v["sig"] = json!(bs58::encode(sig).into_string());
    });
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    #[test]
    fn random_feeds_with_forks_validate(steps in steps()) {
        let (msgs, _) = random_feed(&steps);
        let mut fresh = Db::new(MemStore::new());
        for msg in &msgs {
            let added = fresh.add(msg.clone(), None);
            prop_assert!(matches!(added, Ok(Added::Appended(_))), "{added:?} for {}", msg.to_json());
            fresh.check_invariants().expect("mem");
        }
        prop_assert_eq!(fresh.store().len(), msgs.len() as u64);
    }

    #[test]
    fn any_one_field_change_is_rejected(steps in steps(), pick in any::<prop::sample::Index>()) {
        let (msgs, _) = random_feed(&steps);
        let feed_msgs: Vec<usize> = (0..msgs.len()).filter(|i| msgs[*i].is_feed_msg()).collect();
        prop_assume!(!feed_msgs.is_empty());
        let target = feed_msgs[pick.index(feed_msgs.len())];
        let mut db = Db::new(MemStore::new());
        for msg in &msgs[..target] {
            db.add(msg.clone(), None).expect("prefix is valid");
        }
        let original = msgs[target].to_value();
        for (label, changed) in mutations(&original) {
            let verdict = proto::ingest::add_json(&mut db, &changed.to_string()).expect("mem");
            prop_assert!(matches!(verdict, proto::ingest::Verdict::Rejected(..)), "{label} accepted: {changed}");
        }
        // And the unchanged msg is still accepted.
        let verdict = proto::ingest::add_json(&mut db, &original.to_string()).expect("mem");
        prop_assert!(matches!(verdict, proto::ingest::Verdict::Ok(_)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    /// Members inserted in any order (children before parents included), erased, restored
    /// and removed keep the tangle's indexes consistent, and the result is the graph of its
    /// remaining members inserted in receive order.
    #[test]
    fn tangle_indexes_hold_in_any_order(
        steps in steps(),
        shuffle in prop::collection::vec(any::<prop::sample::Index>(), 0..48),
        erase in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        remove in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let (msgs, _) = random_feed(&steps);
        let moot = msgs.iter().find(|m| m.is_moot()).expect("the feed's moot");
        let feed = moot.id();
        let mut order: Vec<&Msg> = msgs.iter().collect();
        for (at, pick) in shuffle.iter().enumerate() {
            let len = order.len();
            order.swap(at % len, pick.index(len));
        }
        let mut tangle = Tangle::new(feed);
        for msg in &order {
            tangle.insert(msg.id(), msg);
            tangle.check_invariants();
        }
        let members: Vec<MsgId> = tangle.topo_order().copied().collect();
        for pick in &erase {
            let id = *pick.get(&members);
            let had = tangle.has_data(&id).expect("a member");
            tangle.set_has_data(&id, false);
            tangle.check_invariants();
            tangle.set_has_data(&id, had);
        }
        let mut removed = Vec::new();
        for pick in &remove {
            let id = *pick.get(&members);
            tangle.remove(&id);
            tangle.check_invariants();
            removed.push(id);
        }
        let mut expected = Tangle::new(feed);
        for msg in msgs.iter().filter(|m| !removed.contains(&m.id())) {
            expected.insert(msg.id(), msg);
        }
        prop_assert!(tangle.same_graph(&expected));
    }
}

/// The database's check bites: a store changed behind its back (without
/// `forget_tangles`) leaves a cached tangle that no longer matches the store.
#[test]
fn a_store_changed_behind_the_database_breaks_its_invariants() {
    let (msgs, _) = random_feed(&[Step::Publish(0, "one".to_owned())]);
    let mut db = Db::new(MemStore::new());
    for msg in &msgs {
        db.add(msg.clone(), None).expect("valid");
    }
    let post = msgs.last().expect("a post").id();
    let feed = msgs.iter().find(|m| m.is_moot()).expect("moot").id();
    db.tangle(&feed).expect("mem");
    db.check_invariants().expect("mem");
    db.store_mut().delete(&post).expect("mem");
    let broken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| db.check_invariants()));
    assert!(broken.is_err(), "a stale cached tangle went unnoticed");
    db.forget_tangles();
    db.tangle(&feed).expect("mem");
    db.check_invariants().expect("mem");
}
