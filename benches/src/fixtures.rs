//! Feeds made the way a JS peer makes them (our msgs are byte-identical to the reference's
//! for the same inputs; see proto's vector tests), generated once per bench run.

use proto::db::Db;
use proto::ids::AccountId;
use proto::keys::Keypair;
use proto::msg::Msg;
use proto::store::{MemStore, Store};
use serde_json::json;

/// The author of every fixture feed.
#[must_use]
pub fn author() -> Keypair {
    Keypair::from_seed(&[1; 32])
}

/// A feed of `count` posts of about 400 bytes each (like the JS benches' msgs), preceded by
/// its account root and moot: every msg in receive order, and the account.
///
/// # Panics
/// Never for valid `count`; publishing into an in-memory store cannot fail.
#[must_use]
pub fn linear_feed(count: usize) -> (Vec<Msg>, AccountId) {
    let keypair = author();
    let mut db = Db::new(MemStore::new());
    let account = db
        .create_account(&keypair, "account", "bench")
        .expect("in-memory account");
    for index in 0..count {
        let text = format!("post #{index} {}", "lorem ipsum dolor sit amet ".repeat(12));
        db.publish(&keypair, &account, "post", json!({"text": text}), &[])
            .expect("in-memory publish");
    }
    let mut msgs = Vec::with_capacity(count + 2);
    db.store()
        .scan(&mut |record| {
            msgs.push((*record.msg).clone());
            std::ops::ControlFlow::Continue(())
        })
        .expect("in-memory scan");
    (msgs, account)
}
