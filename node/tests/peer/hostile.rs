//! A node facing hostile peers: garbage, oversized frames, unknown methods, a peer that never
//! reads. Each is refused or disconnected, and the node keeps serving a well-behaved peer.

use std::time::Duration;

use node::peer::{DisconnectReason, Limits, NodeConfig, NodeHandle, Transport};
use node::transport::caps::NetworkKey;
use node::transport::muxrpc::rpc::{CallType, Event};
use proto::goals::Goal;
use proto::keys::Keypair;
use proto::msg;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::raw::RawClient;
use crate::support::{Events, disconnects, eventually, run_recording, start, target_of};

/// A plaintext node (so raw clients can speak muxrpc to it) with small outbound bounds.
async fn plaintext_node(outbound_frames_max: usize) -> (NodeHandle, Events) {
    let mut config = NodeConfig::new(Keypair::from_seed(&[7; 32]), 7);
    config.listen = Some("127.0.0.1:0".to_owned());
    config.transport = Transport::Plaintext;
    config.limits = Limits {
        outbound_frames_max,
        ..Limits::default()
    };
    run_recording(config).await
}

/// After an attack, a well-behaved peer still syncs with the node.
async fn still_serves(node: &NodeHandle, transport: Transport) {
    node.publish("post", json!({"text": "still here"}))
        .await
        .expect("publish");
    let feed = msg::feed_id(&node.account(), "post");
    let (friend, _) = start(42, transport, vec![target_of(node)]).await;
    friend
        .set_goal(node.account(), Goal::All)
        .await
        .expect("goal");
    friend.set_goal(feed, Goal::All).await.expect("goal");
    let synced = eventually(Duration::from_secs(10), || async {
        friend
            .snapshot()
            .await
            .ok()
            .is_some_and(|snapshot| snapshot.tangles.contains_key(feed.as_str()))
    })
    .await;
    assert!(synced, "a good peer could not sync after the attack");
    friend.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_get_disconnected() {
    let (node, events) = plaintext_node(1024).await;
    let mut attacker = tokio::net::TcpStream::connect(node.address().expect("listening"))
        .await
        .expect("connect");
    // A header announcing a JSON stream frame, then bytes that are not JSON.
    let mut garbage = vec![0x0a, 0, 0, 0, 16, 0, 0, 0, 1];
    garbage.extend_from_slice(b"\xff\xfe not json!!!!!");
    assert_eq!(garbage.len(), 9 + 16);
    attacker.write_all(&garbage).await.expect("write");
    let mut sink = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), attacker.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "the node did not close the connection");
    let reported = eventually(Duration::from_secs(2), || async {
        disconnects(&events)
            .iter()
            .any(|reason| matches!(reason, DisconnectReason::Rpc(_)))
    })
    .await;
    assert!(reported, "{:?}", disconnects(&events));
    still_serves(&node, Transport::Plaintext).await;
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_handshake_is_refused() {
    let (node, events) = start(8, Transport::Shse(NetworkKey::default()), Vec::new()).await;
    let mut attacker = tokio::net::TcpStream::connect(node.address().expect("listening"))
        .await
        .expect("connect");
    attacker.write_all(&[0x55; 64]).await.expect("write");
    let mut sink = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), attacker.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "the node did not close the connection");
    assert!(sink.is_empty(), "the node answered a bad handshake");
    let refused = eventually(Duration::from_secs(2), || async {
        !disconnects(&events).is_empty()
    })
    .await;
    assert!(refused, "no disconnect reported");
    still_serves(&node, Transport::Shse(NetworkKey::default())).await;
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_are_refused_from_the_header() {
    let (node, events) = plaintext_node(1024).await;
    let mut attacker = tokio::net::TcpStream::connect(node.address().expect("listening"))
        .await
        .expect("connect");
    // 16 MiB announced; the node must not wait for (or buffer) the body.
    attacker
        .write_all(&[0x0a, 0x01, 0x00, 0x00, 0x00, 0, 0, 0, 1])
        .await
        .expect("write");
    let mut sink = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(5), attacker.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "the node did not close the connection");
    let reported = eventually(Duration::from_secs(2), || async {
        disconnects(&events)
            .iter()
            .any(|reason| matches!(reason, DisconnectReason::Io(text) if text.contains("body")))
    })
    .await;
    assert!(reported, "{:?}", disconnects(&events));
    still_serves(&node, Transport::Plaintext).await;
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_get_the_reference_error() {
    let (node, _) = plaintext_node(1024).await;
    let mut client = RawClient::connect(node.address().expect("listening")).await;
    let call = client.call(&["foo", "bar"], CallType::Async).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), client.next_event())
        .await
        .expect("an answer");
    match answer {
        Some(Event::Response {
            id,
            result: Err(error),
        }) => {
            assert_eq!(id, call);
            assert_eq!(
                error.message,
                "method:foo,bar is not in list of allowed methods"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // An allowed but unserved method is refused too, and the connection stays usable.
    let manifest = client.call(&["manifest"], CallType::Async).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), client.next_event())
        .await
        .expect("an answer");
    assert!(
        matches!(answer, Some(Event::Response { id, result: Err(_) }) if id == manifest),
        "{answer:?}"
    );
    let sync = client.call(&["sync", "connect"], CallType::Duplex).await;
    let feed = msg::feed_id(&node.account(), "post");
    node.publish("post", json!({"text": "hello"}))
        .await
        .expect("publish");
    client
        .send_json(
            sync,
            &json!({"id": feed.as_str(), "phase": 1, "payload": [1, 0]}),
        )
        .await;
    let answer = tokio::time::timeout(Duration::from_secs(5), client.next_event())
        .await
        .expect("an answer");
    assert!(
        matches!(answer, Some(Event::Data { id, .. }) if id == sync),
        "{answer:?}"
    );
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_cut_off() {
    let (node, events) = plaintext_node(8).await;
    for index in 0..400 {
        node.publish(
            "post",
            json!({"text": format!("{index} {}", "x".repeat(400))}),
        )
        .await
        .expect("publish");
    }
    let feed = msg::feed_id(&node.account(), "post");
    let mut client = RawClient::connect(node.address().expect("listening")).await;
    let sync = client.call(&["sync", "connect"], CallType::Duplex).await;
    // Ask for the whole feed again and again (each answer is ~200 KB), never reading.
    let empty_bloom = json!({"type":"BloomFilter","_size":240,"_nbHashes":17,"_filter":{"size":240,"content":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"_seed":78187493520_u64});
    let mut cut_off = false;
    for _ in 0..400 {
        let request = async {
            client
                .send_json(
                    sync,
                    &json!({"id": feed.as_str(), "phase": 1, "payload": [1, 0]}),
                )
                .await;
            client.send_json(sync, &json!({"id": feed.as_str(), "phase": 3, "payload": {"wantRange": [0, 400], "bloom": empty_bloom}})).await;
        };
        if tokio::time::timeout(Duration::from_millis(500), request)
            .await
            .is_err()
        {
            break; // our own send buffer is full too: the node stopped reading or left
        }
        if disconnects(&events).contains(&DisconnectReason::SlowReader) {
            cut_off = true;
            break;
        }
    }
    let cut_off = cut_off
        || eventually(Duration::from_secs(5), || async {
            disconnects(&events).contains(&DisconnectReason::SlowReader)
        })
        .await;
    assert!(
        cut_off,
        "the node kept buffering for a peer that never reads: {:?}",
        disconnects(&events)
    );
    assert!(client.closed_by_peer().await);
    still_serves(&node, Transport::Plaintext).await;
    node.shutdown().await.expect("shutdown");
}
