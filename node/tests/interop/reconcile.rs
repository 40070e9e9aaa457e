//! `sync.reconcile`'s probe against the JS reference (docs/sync-extension.md, "Negotiation"):
//! `ppppp serve` dials a JS peer, calls `sync.reconcile`, is refused as pzp-sync refuses a
//! method it lacks, and falls back to `sync.connect` on the same connection. The JS side
//! keeps that one connection, syncs and receives realtime posts; and after a reconnect the
//! remote is known to lack the method, so the connection is pzp-sync's from its first byte.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{JsPeer, RustPeer};
use crate::peers::{Count, Peer, Tangles};

const POSTS: u64 = 20;
const TIMEOUT: Duration = Duration::from_secs(60);

/// The sync methods of the Rust peer's connections.
async fn methods(rust: &mut RustPeer) -> Vec<Value> {
    let peers = rust.ask(json!({"cmd": "peers"})).await;
    peers["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .filter(|peer| peer["state"] == json!("connected"))
        .map(|peer| peer["sync"]["method"].clone())
        .collect()
}

/// Waits until the Rust peer has exactly one connected peer, syncing by pzp-sync.
async fn connected_by_pzp_sync(rust: &mut Peer) {
    let Peer::Rust(rust) = rust else {
        panic!("the Rust peer")
    };
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let methods = methods(rust).await;
        if methods == vec![json!("sync.connect")] {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "one pzp-sync connection expected: {methods:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn js_connections(js: &mut Peer) -> usize {
    let Peer::Js(js) = js else {
        panic!("the JS peer")
    };
    let peers = js.call("peers", json!({})).await;
    peers["peers"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ppppp_dialer_probes_a_js_peer_once_and_syncs_with_pzp_sync() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut js = Peer::Js(JsPeer::start("js-probed", [21; 32]).await);
    let account = js.account().await;
    let ids = Tangles::of(&account);
    js.publish_many("post", "probed #", POSTS).await;
    let mut rust = Peer::Rust(RustPeer::start("rust-prober", &dir.path().join("rust")).await);
    rust.goal(&ids.account, "all").await;
    rust.goal(&ids.post, "all").await;
    let js_address = js.address().to_owned();
    rust.dial(&js_address).await;
    let posts = usize::try_from(POSTS).expect("small");
    rust.wait_for(&ids.post, Count::AtLeast(posts), true, TIMEOUT)
        .await;
    connected_by_pzp_sync(&mut rust).await;
    assert_eq!(
        js_connections(&mut js).await,
        1,
        "the probe kept the connection"
    );

    // Realtime on the pzp-sync stream that followed the probe.
    js.publish("post", json!({"text": "after the probe"})).await;
    rust.wait_for(&ids.post, Count::AtLeast(posts + 1), true, TIMEOUT)
        .await;

    // A second connection: the JS peer is remembered as pzp-only, so no probe; it syncs.
    if let Peer::Js(peer) = &mut js {
        let closed = peer.call("disconnect", json!({})).await;
        assert_eq!(closed["closed"], json!(1));
    }
    js.publish("post", json!({"text": "while apart"})).await;
    rust.dial(&js_address).await;
    rust.wait_for(&ids.post, Count::AtLeast(posts + 2), true, TIMEOUT)
        .await;
    connected_by_pzp_sync(&mut rust).await;
    assert_eq!(js_connections(&mut js).await, 1);
    let rust_posts = rust.msgs(&ids.post).await;
    let js_posts = js.msgs(&ids.post).await;
    assert_eq!(rust_posts, js_posts, "the feed ends identical");
    for peer in [js, rust] {
        peer.stop().await;
    }
}
