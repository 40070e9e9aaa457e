//! Peers for the hub and invite tests (`hubs.rs`, `invites.rs`): a JS peer with pzp-net,
//! pzp-hub-client, pzp-promise and pzp-invite, and a `ppppp serve`, each with an account and
//! one post; and the wait for msgs to arrive at a Rust peer.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::harness::{JsPeer, RustPeer};

/// Longest wait for msgs to arrive (through a tunnel), or for a peer to attend a hub.
pub const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(60);
/// The same, for peer.js's `timeoutMs`.
pub const ARRIVAL_MS: u64 = 60_000;

/// A JS peer that can attend hubs and use invites, with an account and one post on its
/// `post` feed (which it wants), syncing and running pzp-net: `(peer, account, feed)`.
pub async fn js_with_hubs(name: &'static str, seed: u8) -> (JsPeer, String, String) {
    let mut peer = JsPeer::start_with(name, [seed; 32], json!({"hub": true})).await;
    let account = peer.call("createAccount", json!({})).await["account"]
        .as_str()
        .expect("account")
        .to_owned();
    let post = peer
        .call(
            "publish",
            json!({"domain": "post", "data": {"text": format!("from {name}")}}),
        )
        .await;
    let feed = post["tangleID"].as_str().expect("tangle").to_owned();
    peer.call("goal", json!({"tangleID": feed, "goal": "all"}))
        .await;
    peer.call("startSync", json!({})).await;
    peer.call("startNet", json!({})).await;
    (peer, account, feed)
}

/// A `ppppp serve` started with `extra` arguments (e.g. `--hub ADDR`), with one post:
/// `(peer, account, feed)`.
pub async fn rust_with_post(
    name: &'static str,
    dir: &Path,
    extra: &[&str],
) -> (RustPeer, String, String) {
    let mut peer = RustPeer::start_with(name, dir, extra).await;
    let whoami = peer.ask(json!({"cmd": "whoami"})).await;
    let account = whoami["account"].as_str().expect("account").to_owned();
    let published = peer
        .ask(json!({"cmd": "publish", "domain": "post", "data": {"text": format!("from {name}")}}))
        .await;
    let feed = published["feed"].as_str().expect("feed").to_owned();
    (peer, account, feed)
}

/// Polls the Rust peer until `tangle` holds `count` msgs.
pub async fn rust_waits_for(peer: &mut RustPeer, tangle: &str, count: u64) {
    let deadline = tokio::time::Instant::now() + ARRIVAL_TIMEOUT;
    loop {
        let have = peer.ask(json!({"cmd": "count", "tangle": tangle})).await["count"]
            .as_u64()
            .unwrap_or(0);
        if have >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{tangle} has {have} msgs, wanted {count}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
