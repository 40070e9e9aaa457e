//! Hubs and tunnels with the JS reference: `ppppp hub` serves pzp-hub-client 1.0.0 peers
//! (run by `peer.js` with pzp-net 1.0.1), and `ppppp serve --hub` reaches JS peers and other
//! ppppp peers only through the hub's tunnels (no direct dial anywhere in these tests).
//!
//! The JS peers attend with `hubClient.addHub`; pzp-net's scheduler then dials every
//! attendant the hub lists through `/tunnel/HUB.TARGET/shse/TARGET`. The waits are generous
//! guards, not speed checks.

use std::path::Path;

use serde_json::{Value, json};

use crate::discovery::{ARRIVAL_MS, js_with_hubs, rust_waits_for, rust_with_post};
use crate::harness::{Hub, JsPeer, RustPeer};

async fn want(peer: &mut JsPeer, account: &str, feed: &str) {
    peer.call("goal", json!({"tangleID": account, "goal": "all"}))
        .await;
    peer.call("goal", json!({"tangleID": feed, "goal": "all"}))
        .await;
}

async fn js_waits_for(peer: &mut JsPeer, feed: &str) {
    peer.call(
        "waitFor",
        json!({"tangleID": feed, "count": 2, "timeoutMs": ARRIVAL_MS}),
    )
    .await;
}

fn attendants(status: &Value) -> Vec<String> {
    status["attendants"]
        .as_array()
        .expect("attendants")
        .iter()
        .map(|key| key.as_str().expect("a key").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_hub_clients_sync_with_each_other_through_a_ppppp_hub() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let mut hub = Hub::start(&dirs.path().join("hub"), &["--open"]).await;
    let (mut alice, alice_account, alice_feed) = js_with_hubs("alice", 0x0a).await;
    let (mut bob, bob_account, bob_feed) = js_with_hubs("bob", 0x0b).await;
    want(&mut alice, &bob_account, &bob_feed).await;
    want(&mut bob, &alice_account, &alice_feed).await;
    alice
        .call("addHub", json!({"multiaddr": hub.multiaddr}))
        .await;
    bob.call("addHub", json!({"multiaddr": hub.multiaddr}))
        .await;
    js_waits_for(&mut bob, &alice_feed).await;
    js_waits_for(&mut alice, &bob_feed).await;
    let status = hub.status().await;
    let mut listed = attendants(&status);
    listed.sort();
    let mut expected = vec![alice.key.clone(), bob.key.clone()];
    expected.sort();
    assert_eq!(listed, expected, "{status}");
    assert!(status["tunnels"].as_u64() >= Some(1), "{status}");
    alice.stop().await;
    bob.stop().await;
    hub.stop().await;
}

async fn rust_attendant(name: &'static str, dir: &Path, hub: &Hub) -> (RustPeer, String, String) {
    rust_with_post(name, dir, &["--hub", &hub.multiaddr]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_and_a_ppppp_client_sync_both_ways_through_a_ppppp_hub() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let hub = Hub::start(&dirs.path().join("hub"), &["--open"]).await;
    let (mut js, js_account, js_feed) = js_with_hubs("js", 0x0c).await;
    let (mut rust, rust_account, rust_feed) =
        rust_attendant("rust", &dirs.path().join("rust"), &hub).await;
    want(&mut js, &rust_account, &rust_feed).await;
    rust.ask(json!({"cmd": "follow", "account": js_account}))
        .await;
    js.call("addHub", json!({"multiaddr": hub.multiaddr})).await;
    js_waits_for(&mut js, &rust_feed).await;
    rust_waits_for(&mut rust, &js_feed, 2).await;
    let peers = rust.ask(json!({"cmd": "peers"})).await;
    let through_tunnel = peers["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .any(|peer| {
            peer["address"]
                .as_str()
                .is_some_and(|a| a.starts_with(&format!("tunnel:{}:", hub.key)))
                && peer["key"] == json!(js.key)
        });
    assert!(
        through_tunnel,
        "the only way to the JS peer is a tunnel: {peers}"
    );
    // Realtime through the tunnel, both ways.
    rust.ask(json!({"cmd": "publish", "domain": "post", "data": {"text": "later"}}))
        .await;
    js.call(
        "waitFor",
        json!({"tangleID": rust_feed, "count": 3, "timeoutMs": ARRIVAL_MS}),
    )
    .await;
    js.call(
        "publish",
        json!({"domain": "post", "data": {"text": "later"}}),
    )
    .await;
    rust_waits_for(&mut rust, &js_feed, 3).await;
    js.stop().await;
    rust.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ppppp_peers_sync_through_a_ppppp_hub() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let mut hub = Hub::start(&dirs.path().join("hub"), &["--open"]).await;
    let (mut alice, alice_account, alice_feed) =
        rust_attendant("alice", &dirs.path().join("alice"), &hub).await;
    let (mut bob, bob_account, bob_feed) =
        rust_attendant("bob", &dirs.path().join("bob"), &hub).await;
    alice
        .ask(json!({"cmd": "follow", "account": bob_account}))
        .await;
    bob.ask(json!({"cmd": "follow", "account": alice_account}))
        .await;
    rust_waits_for(&mut alice, &bob_feed, 2).await;
    rust_waits_for(&mut bob, &alice_feed, 2).await;
    let status = hub.status().await;
    assert_eq!(attendants(&status).len(), 2, "{status}");
    alice.stop().await;
    bob.stop().await;
    hub.stop().await;
}
