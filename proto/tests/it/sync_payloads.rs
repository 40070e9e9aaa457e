//! Big sends are split so that every object fits in a frame: a receiver bounds frame bodies
//! (ours at 8 MiB), and a feed's msgs can add up to far more.

use std::sync::Arc;

use proto::db::Db;
use proto::goals::Goal;
use proto::keys::Keypair;
use proto::store::MemStore;
use proto::sync::Config;
use proto::sync::wire::{self, MSG_BYTES_PER_PAYLOAD_MAX};
use proto::testing::{Pair, Peer};
use serde_json::{Value, json};

#[test]
fn msg_json_len_bound_is_an_upper_bound() {
    let keypair = Keypair::from_seed(&[3; 32]);
    let mut db = Db::new(MemStore::new());
    let account = db
        .create_account(&keypair, "account", "bound")
        .expect("account");
    let datas = [
        json!({"text": "short"}),
        json!({"text": "é€😀\n\"\\".repeat(300), "n": 1.5e300, "small": 5e-324, "list": [1, -0.0, 1e21]}),
        json!({"nested": {"deep": [{"a": null}, true, false, 123_456_789_012_u64]}}),
    ];
    let mut ids = vec![account, proto::msg::feed_id(&account, "post")];
    for data in datas {
        ids.push(
            db.publish(&keypair, &account, "post", data, &[])
                .expect("publish"),
        );
    }
    for id in ids {
        let msg = db.get(&id).expect("memory").expect("stored");
        for form in [(*msg).clone(), msg.erased()] {
            let actual = form.to_json().len();
            let bound = wire::msg_json_len_bound(&form);
            assert!(bound >= actual, "{id}: bound {bound} < {actual}");
            assert!(
                bound < actual + 1024,
                "{id}: bound {bound} is loose for {actual}"
            );
        }
    }
}

#[test]
fn a_feed_bigger_than_one_payload_arrives_in_several() {
    let keypair = Keypair::from_seed(&[4; 32]);
    let mut author = Db::new(MemStore::new());
    let account = author
        .create_account(&keypair, "account", "big")
        .expect("account");
    let mut ids = vec![account];
    // 700 msgs of about 9 KB: more than 6 MB in all.
    for index in 0..700 {
        let text = format!("{index} {}", "x".repeat(9000));
        ids.push(
            author
                .publish(&keypair, &account, "post", json!({"text": text}), &[])
                .expect("publish"),
        );
    }
    let feed = proto::msg::feed_id(&account, "post");
    ids.insert(1, feed);
    let mut responder = Peer::new();
    for id in &ids {
        let msg = author.get(id).expect("memory").expect("stored");
        responder
            .add(Arc::unwrap_or_clone(msg), None)
            .expect("valid");
    }
    let mut dialer = Peer::new();
    dialer.set_goal(account, Goal::All).expect("goal");
    dialer.set_goal(feed, Goal::All).expect("goal");
    let mut pair = Pair::new(dialer, responder, Config::default());
    pair.transcript = Some(Vec::new());
    pair.start().expect("start");
    pair.run().expect("quiescent");

    let transcript = pair.transcript.take().expect("recorded");
    let mut msg_objects = 0;
    for delivery in &transcript {
        let object: Value = serde_json::from_str(&delivery.json).expect("JSON");
        let carries_msgs = object["phase"] == json!(9) || object["phase"] == json!(8);
        if carries_msgs && object["id"] == json!(feed.as_str()) {
            msg_objects += 1;
            assert!(
                delivery.json.len() <= MSG_BYTES_PER_PAYLOAD_MAX + 64 * 1024,
                "an object of {} bytes",
                delivery.json.len()
            );
        }
    }
    assert!(msg_objects >= 2, "{msg_objects} objects carried the feed");
    let (dialer, _) = pair.into_peers();
    for id in &ids {
        assert!(dialer.db.get(id).expect("memory").is_some(), "{id} missing");
    }
}
