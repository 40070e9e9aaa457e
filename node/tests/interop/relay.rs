//! A ppppp relay between two JS peers (pzp 1.0.4): the JS reader connects to the relay while
//! the relay is empty; only then does the relay connect to the JS author. pzp-sync alone
//! never delivers to the reader in this order (its relay does not ask again); ours must,
//! with pzp-sync on both ends unchanged (the relay's phase 1 on the stream the reader dialed
//! is valid pzp-sync, and the JS reader answers it). Then realtime: new posts flow through.

use std::time::Duration;

use crate::harness::{JsPeer, RustPeer};
use crate::peers::{Count, Peer, Tangles};

const POSTS: u64 = 40;
const TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ppppp_relay_serves_a_js_reader_that_connected_before_it_had_anything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut author = Peer::Js(JsPeer::start("js-author", [11; 32]).await);
    let account = author.account().await;
    let ids = Tangles::of(&account);
    author.publish_many("post", "relayed #", POSTS).await;

    let mut relay = Peer::Rust(RustPeer::start("rust-relay", &dir.path().join("relay")).await);
    let mut reader = Peer::Js(JsPeer::start("js-reader", [12; 32]).await);
    for peer in [&mut relay, &mut reader] {
        peer.goal(&ids.account, "all").await;
        peer.goal(&ids.post, "all").await;
    }
    let relay_address = relay.address().to_owned();
    reader.dial(&relay_address).await;
    // The reader's exchanges with the empty relay end with nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let author_address = author.address().to_owned();
    relay.dial(&author_address).await;
    let posts = usize::try_from(POSTS).expect("small");
    relay
        .wait_for(&ids.post, Count::AtLeast(posts), true, TIMEOUT)
        .await;
    reader
        .wait_for(&ids.post, Count::AtLeast(posts), true, TIMEOUT)
        .await;

    // Realtime through the relay.
    author
        .publish("post", serde_json::json!({"text": "after"}))
        .await;
    reader
        .wait_for(&ids.post, Count::AtLeast(posts + 1), true, TIMEOUT)
        .await;

    for peer in [author, relay, reader] {
        peer.stop().await;
    }
}
