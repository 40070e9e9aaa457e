//! One interface over both kinds of peer, so a scenario is written once and run with either
//! side dialing.

use std::time::Duration;

use proto::db::Db;
use proto::ids::{AccountId, TangleId};
use proto::keys::Keypair;
use proto::store::MemStore;
use serde_json::{Map, Value, json};

use crate::harness::{JsPeer, RustPeer, hex};

/// How many msgs a wait is for.
#[derive(Debug, Clone, Copy)]
pub enum Count {
    AtLeast(usize),
    Exactly(usize),
}

impl Count {
    fn holds(self, count: usize) -> bool {
        match self {
            Self::AtLeast(wanted) => count >= wanted,
            Self::Exactly(wanted) => count == wanted,
        }
    }
}

/// The IDs of what one side authored.
#[derive(Debug, Clone)]
pub struct Tangles {
    pub account: String,
    pub post: String,
    pub news: String,
    pub follows: String,
    pub profile: String,
}

impl Tangles {
    pub fn of(account: &str) -> Self {
        let id = AccountId::parse(account).expect("an account ID");
        Self {
            account: account.to_owned(),
            post: proto::msg::feed_id(&id, "post").to_string(),
            news: proto::msg::feed_id(&id, "news").to_string(),
            follows: proto::set::feed_id(&id, "follows").to_string(),
            profile: proto::dict::feed_id(&id, "profile").to_string(),
        }
    }
}

/// A JS or a Rust peer.
pub enum Peer {
    Js(JsPeer),
    Rust(RustPeer),
}

impl Peer {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Js(_) => "js",
            Self::Rust(_) => "rust",
        }
    }

    pub fn address(&self) -> &str {
        match self {
            Self::Js(js) => &js.address,
            Self::Rust(rust) => &rust.address,
        }
    }

    /// The peer's account, created if needed.
    pub async fn account(&mut self) -> String {
        match self {
            Self::Js(js) => js.call("createAccount", json!({})).await["account"]
                .as_str()
                .expect("account")
                .to_owned(),
            Self::Rust(rust) => rust.ask(json!({"cmd": "whoami"})).await["account"]
                .as_str()
                .expect("account")
                .to_owned(),
        }
    }

    /// Publishes `count` posts `{"text": prefix + i, "n": i}` on feed `domain`.
    pub async fn publish_many(&mut self, domain: &str, prefix: &str, count: u64) {
        match self {
            // Not connected yet, so the fast path (same msgs, no events) is safe.
            Self::Js(js) => {
                js.call(
                    "publishMany",
                    json!({"domain": domain, "count": count, "textPrefix": prefix, "fast": true}),
                )
                .await;
            }
            Self::Rust(rust) => {
                for index in 1..=count {
                    rust.ask(json!({"cmd": "publish", "domain": domain, "data": {"text": format!("{prefix}{index}"), "n": index}}))
                        .await;
                }
            }
        }
    }

    /// Publishes one post (through the real path on both sides: realtime sync sees it).
    pub async fn publish(&mut self, domain: &str, data: Value) -> String {
        match self {
            Self::Js(js) => js
                .call("publish", json!({"domain": domain, "data": data}))
                .await["msgID"]
                .as_str()
                .expect("msgID")
                .to_owned(),
            Self::Rust(rust) => rust
                .ask(json!({"cmd": "publish", "domain": domain, "data": data}))
                .await["msg"]
                .as_str()
                .expect("msg")
                .to_owned(),
        }
    }

    /// Adds `item` to (or deletes it from) the set `subdomain`; whether it changed.
    pub async fn set(&mut self, subdomain: &str, item: &str, add: bool) -> bool {
        match self {
            Self::Js(js) => {
                let cmd = if add { "setAdd" } else { "setDel" };
                js.call(cmd, json!({"subdomain": subdomain, "value": item}))
                    .await["changed"]
                    .as_bool()
                    .expect("changed")
            }
            Self::Rust(rust) => {
                let cmd = if add { "set_add" } else { "set_del" };
                rust.ask(json!({"cmd": cmd, "subdomain": subdomain, "value": item}))
                    .await["changed"]
                    .as_bool()
                    .expect("changed")
            }
        }
    }

    /// Updates the dict `subdomain`; whether it changed.
    pub async fn dict_update(&mut self, subdomain: &str, update: Value) -> bool {
        match self {
            Self::Js(js) => js
                .call(
                    "dictUpdate",
                    json!({"subdomain": subdomain, "update": update}),
                )
                .await["changed"]
                .as_bool()
                .expect("changed"),
            Self::Rust(rust) => rust
                .ask(json!({"cmd": "dict_update", "subdomain": subdomain, "update": update}))
                .await["changed"]
                .as_bool()
                .expect("changed"),
        }
    }

    /// Adds the key of `second` to the peer's account (consent made by that key).
    pub async fn add_key(&mut self, account: &str, second: &Keypair) {
        match self {
            Self::Js(js) => {
                js.call("accountAdd", json!({"seed": hex(&second.seed())}))
                    .await;
            }
            Self::Rust(rust) => {
                let account = AccountId::parse(account).expect("account ID");
                let consent = proto::account::consent(second, &account);
                rust.ask(json!({"cmd": "account_add", "key": second.public().to_string(), "consent": consent}))
                    .await;
            }
        }
    }

    /// Adds a msg made elsewhere.
    pub async fn add(&mut self, msg: &Value, tangle: &str) {
        match self {
            Self::Js(js) => {
                js.call("add", json!({"msg": msg, "tangleID": tangle}))
                    .await;
            }
            Self::Rust(rust) => {
                rust.ask(json!({"cmd": "add", "msg": msg, "tangle": tangle}))
                    .await;
            }
        }
    }

    /// The msgs of `tangle` in topological order (as the peer orders them).
    pub async fn msgs(&mut self, tangle: &str) -> Vec<Value> {
        match self {
            Self::Js(js) => {
                let state = js.call("state", json!({})).await;
                state["tangles"][tangle]
                    .as_array()
                    .map(|order| {
                        order
                            .iter()
                            .map(|id| state["msgs"][id.as_str().expect("an ID")].clone())
                            .collect()
                    })
                    .unwrap_or_default()
            }
            Self::Rust(rust) => rust.msgs(tangle).await,
        }
    }

    /// Sets a goal (`all`, `newest-N`, `set`, `dict`).
    pub async fn goal(&mut self, tangle: &str, goal: &str) {
        match self {
            Self::Js(js) => {
                js.call("goal", json!({"tangleID": tangle, "goal": goal}))
                    .await;
            }
            Self::Rust(rust) => {
                rust.ask(json!({"cmd": "goal", "tangle": tangle, "goal": goal}))
                    .await;
            }
        }
    }

    /// Dials `address` and starts syncing (only the dialer's goals drive sync).
    pub async fn dial(&mut self, address: &str) {
        match self {
            Self::Js(js) => {
                js.call("startSync", json!({})).await;
                js.call("connect", json!({"address": address})).await;
            }
            Self::Rust(rust) => {
                rust.ask(json!({"cmd": "connect", "address": address}))
                    .await;
            }
        }
    }

    /// Waits until the peer holds `count` msgs of `tangle` (root included; only msgs with
    /// data if `dataful`).
    pub async fn wait_for(&mut self, tangle: &str, count: Count, dataful: bool, timeout: Duration) {
        match self {
            Self::Js(js) => {
                let timeout_ms = u64::try_from(timeout.as_millis()).expect("short");
                let (key, value) = match count {
                    Count::AtLeast(count) => ("count", count),
                    Count::Exactly(count) => ("exactly", count),
                };
                js.call(
                    "waitFor",
                    json!({"tangleID": tangle, key: value, "dataful": dataful, "timeoutMs": timeout_ms}),
                )
                .await;
            }
            Self::Rust(rust) => {
                let deadline = tokio::time::Instant::now() + timeout;
                loop {
                    let held = rust
                        .msgs(tangle)
                        .await
                        .iter()
                        .filter(|msg| !dataful || !msg["data"].is_null())
                        .count();
                    if count.holds(held) {
                        return;
                    }
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "rust: tangle {tangle} holds {held} msgs, wanted {count:?}, after {timeout:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// `{"tangles", "sets", "dicts"}`, with set items sorted (the JS peer sorts them; we keep
    /// JavaScript `Set` order).
    pub async fn state(&mut self) -> Value {
        let mut state = match self {
            Self::Js(js) => {
                let state = js.call("state", json!({})).await;
                json!({"tangles": state["tangles"], "sets": state["sets"], "dicts": state["dicts"]})
            }
            Self::Rust(rust) => rust.ask(json!({"cmd": "state"})).await["state"].clone(),
        };
        if let Some(sets) = state["sets"].as_object_mut() {
            for items in sets.values_mut() {
                if let Some(items) = items.as_array_mut() {
                    items.sort_by_key(ToString::to_string);
                }
            }
        }
        state
    }

    /// Every msg the peer holds, by ID (JS: its `state.msgs`; Rust: the msgs of every tangle).
    pub async fn all_msgs(&mut self) -> Map<String, Value> {
        match self {
            Self::Js(js) => js.call("state", json!({})).await["msgs"]
                .as_object()
                .expect("msgs")
                .clone(),
            Self::Rust(rust) => {
                let state = rust.ask(json!({"cmd": "state"})).await["state"].clone();
                let mut all = Map::new();
                for tangle in state["tangles"].as_object().expect("tangles").keys() {
                    for msg in rust.msgs(tangle).await {
                        let id = proto::msg::decode(&msg).expect("a msg").id().to_string();
                        all.insert(id, msg);
                    }
                }
                all
            }
        }
    }

    pub async fn stop(self) {
        match self {
            Self::Js(js) => js.stop().await,
            Self::Rust(rust) => rust.stop().await,
        }
    }
}

/// A post on `account`'s feed `domain` signed by `signer` (another key of the account),
/// made with our own code on a copy of the account and feed tangles (`account_msgs` and
/// `feed_msgs`, topological).
pub fn post_signed_by(
    signer: &Keypair,
    account: &str,
    account_msgs: &[Value],
    feed_msgs: &[Value],
    domain: &str,
    data: Value,
) -> Value {
    let account = AccountId::parse(account).expect("account ID");
    let feed: TangleId = proto::msg::feed_id(&account, domain);
    let mut db = Db::new(MemStore::new());
    for msg in account_msgs {
        db.add(proto::msg::decode(msg).expect("a msg"), None)
            .expect("the account tangle is valid");
    }
    for msg in feed_msgs {
        db.add(proto::msg::decode(msg).expect("a msg"), Some(feed))
            .expect("the feed is valid");
    }
    let id = db
        .publish(signer, &account, domain, data, &[])
        .expect("the second key may sign");
    db.get(&id).expect("memory").expect("stored").to_value()
}
