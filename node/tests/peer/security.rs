//! A node's transport security, attacked from real sockets with the transport's own sans-IO
//! machines: a wrong network key, a dialer expecting another server key (raw, and the node
//! itself dialing a wrong key), tampered, replayed and truncated secretstream blocks, an
//! oversized frame inside the encrypted stream, and handshakes that stall.
//!
//! Each attack is refused with an error that says what happened, the node keeps serving a
//! well-behaved peer afterwards, and nothing from the attacker is stored: the attacks carry
//! a valid account and post the node wants (its goals ask for them), and
//! [`control_the_same_frames_unaltered_are_stored`] shows that the very same frames, sent
//! intact, do get stored.

use std::time::Duration;

use node::peer::{
    DialTarget, DisconnectReason, HandshakeFailure, NodeConfig, NodeHandle, Timers, Transport,
};
use node::transport::caps::NetworkKey;
use node::transport::muxrpc::{Body, CallType, Permissions, Rpc};
use node::transport::secretstream::{CIPHERTEXT_BLOCK_LEN, Encryptor, HEADER_LEN};
use node::transport::shse::io::{self as shse_io, Config};
use node::transport::shse::{EphemeralSeed, HandshakeError, Identity, Outcome};
use node::transport::{PublicKey, Token};
use proto::db::Db;
use proto::goals::Goal;
use proto::ids::{AccountId, TangleId};
use proto::keys::Keypair;
use proto::store::MemStore;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{
    Events, dial_failures, disconnects, eventually, run_recording, start, target_of,
};

/// The node's handshake timeout in these tests (the default is the reference's 15 s).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(300);
/// Longest wait for the node to react to an attack.
const REACTION: Duration = Duration::from_secs(5);

const ATTACKER_SEED: [u8; 32] = [0xa7; 32];

/// What the attacker would like the node to store: its account root, its feed's moot and one
/// post, all valid.
struct Payload {
    account: AccountId,
    feed: TangleId,
    msgs: Vec<Value>,
}

impl Payload {
    fn new() -> Self {
        let keypair = Keypair::from_seed(&ATTACKER_SEED);
        let mut db = Db::new(MemStore::new());
        let account = db
            .create_account(&keypair, "account", "attacker")
            .expect("account");
        let post = db
            .publish(
                &keypair,
                &account,
                "post",
                json!({"text": "let me in"}),
                &[],
            )
            .expect("post");
        let feed = proto::msg::feed_id(&account, "post");
        let msgs = [account, feed, post]
            .iter()
            .map(|id| db.get(id).expect("memory").expect("stored").to_value())
            .collect();
        Self {
            account,
            feed,
            msgs,
        }
    }

    /// Muxrpc bytes of the attack, in two writes: the `sync.connect` request with phase 1 for
    /// the attacker's feed (have `[0, 1]`), then phase 9 carrying the msgs (a responder with
    /// a goal on the feed commits what a phase 9 brings once it has answered phase 1).
    fn frames(&self) -> (Vec<u8>, Vec<u8>) {
        let mut rpc = Rpc::new(Permissions::anonymous());
        let call = rpc
            .call(&["sync", "connect"], &[], CallType::Duplex)
            .expect("call");
        let phase = |value: Value| Body::Json(value.to_string().into_bytes());
        rpc.send(
            call,
            phase(json!({"id": self.feed.as_str(), "phase": 1, "payload": [0, 1]})),
        )
        .expect("send");
        let mut first = Vec::new();
        rpc.encode_transmit(&mut first);
        rpc.send(
            call,
            phase(json!({"id": self.feed.as_str(), "phase": 9, "payload": self.msgs})),
        )
        .expect("send");
        let mut second = Vec::new();
        rpc.encode_transmit(&mut second);
        (first, second)
    }
}

/// A node with SHSE, a short handshake timeout, and goals on the attacker's account and feed.
async fn target_node(payload: &Payload) -> (NodeHandle, Events) {
    let mut config = NodeConfig::new(Keypair::from_seed(&[0x5e; 32]), 0x5e);
    config.listen = Some("127.0.0.1:0".to_owned());
    config.timers = Timers {
        handshake_timeout: HANDSHAKE_TIMEOUT,
        keepalive_interval: Duration::from_millis(200),
        backoff_base: Duration::from_millis(50),
        ..Timers::default()
    };
    config.goals = vec![(payload.account, Goal::All), (payload.feed, Goal::All)];
    run_recording(config).await
}

/// Waits until the node reports a disconnect whose reason matches, and shows it.
async fn refused_with(events: &Events, matches: impl Fn(&DisconnectReason) -> bool) {
    let reported = eventually(REACTION, || async {
        disconnects(events).iter().any(&matches)
    })
    .await;
    assert!(
        reported,
        "no such disconnect; got {:?}",
        disconnects(events)
    );
    if let Some(reason) = disconnects(events).iter().find(|reason| matches(reason)) {
        eprintln!("refused: {reason:?}");
    }
}

fn text_of(reason: &DisconnectReason) -> &str {
    match reason {
        DisconnectReason::Io(text) => text,
        _ => "",
    }
}

/// The SHSE error a handshake failed with, if it did.
fn shse_failure(reason: &DisconnectReason) -> Option<&HandshakeError> {
    match reason {
        DisconnectReason::Handshake(HandshakeFailure::Shse(error)) => Some(error),
        _ => None,
    }
}

/// The SHSE client handshake over a fresh TCP connection.
async fn handshake(
    node: &NodeHandle,
    network_key: NetworkKey,
    server: PublicKey,
) -> (TcpStream, Result<Outcome, HandshakeError>) {
    let mut stream = TcpStream::connect(node.address().expect("listening"))
        .await
        .expect("connect");
    let config = Config {
        network_key,
        identity: Identity::from_seed(&ATTACKER_SEED),
        timeout: REACTION,
    };
    let outcome =
        shse_io::client(&mut stream, &config, server, None, &EphemeralSeed([9; 32])).await;
    (stream, outcome)
}

fn node_key(node: &NodeHandle) -> PublicKey {
    PublicKey::from(&node.key())
}

/// A secretstream writer for an established session, and the encrypted header.
fn encryptor(outcome: &Outcome) -> (Encryptor, [u8; HEADER_LEN]) {
    let mut encryptor = Encryptor::new(&outcome.keys.encrypt_key, [0x33; HEADER_LEN]);
    let header = encryptor.take_header().expect("fresh");
    (encryptor, header)
}

/// Ciphertext of one write.
fn encrypt(encryptor: &mut Encryptor, plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encryptor.encrypt(plaintext, &mut out).expect("encrypt");
    out
}

/// Whether the node closed the connection (reads until EOF or error).
async fn closed_by_node(stream: &mut TcpStream) -> bool {
    let mut sink = vec![0u8; 64 * 1024];
    let read_all = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(REACTION, read_all).await.is_ok()
}

/// After an attack: nothing of the attacker's was stored (the snapshot is what it was
/// before), and a well-behaved peer still syncs with the node.
async fn nothing_stored_and_still_serves(
    node: &NodeHandle,
    before: &proto::ingest::Snapshot,
    payload: &Payload,
) {
    let after = node.snapshot().await.expect("snapshot");
    assert_eq!(&after, before, "the node stored something from the attack");
    assert!(!after.tangles.contains_key(payload.feed.as_str()));
    assert!(!after.tangles.contains_key(payload.account.as_str()));

    node.publish("post", json!({"text": "still here"}))
        .await
        .expect("publish");
    let feed = proto::msg::feed_id(&node.account(), "post");
    let (friend, _) = start(
        0x42,
        Transport::Shse(NetworkKey::default()),
        vec![target_of(node)],
    )
    .await;
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
async fn control_the_same_frames_unaltered_are_stored() {
    let payload = Payload::new();
    let (node, _) = target_node(&payload).await;
    let (mut stream, outcome) = handshake(&node, NetworkKey::default(), node_key(&node)).await;
    let outcome = outcome.expect("handshake");
    let (mut encryptor, header) = encryptor(&outcome);
    let (first, second) = payload.frames();
    let mut wire = header.to_vec();
    wire.extend(encrypt(&mut encryptor, &first));
    wire.extend(encrypt(&mut encryptor, &second));
    stream.write_all(&wire).await.expect("write");
    let stored = eventually(REACTION, || async {
        node.snapshot()
            .await
            .ok()
            .and_then(|snapshot| snapshot.tangles.get(payload.feed.as_str()).map(Vec::len))
            == Some(2)
    })
    .await;
    assert!(
        stored,
        "the unaltered attack frames should sync the attacker's post"
    );
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialer_with_the_wrong_network_key_is_refused() {
    let payload = Payload::new();
    let (node, events) = target_node(&payload).await;
    let before = node.snapshot().await.expect("snapshot");
    let (mut stream, outcome) = handshake(&node, NetworkKey([0x42; 32]), node_key(&node)).await;
    assert!(
        matches!(outcome, Err(HandshakeError::UnexpectedEof { .. })),
        "the node must hang up without answering: {outcome:?}"
    );
    assert!(closed_by_node(&mut stream).await);
    refused_with(&events, |reason| {
        matches!(shse_failure(reason), Some(HandshakeError::WrongNetworkKey))
    })
    .await;
    nothing_stored_and_still_serves(&node, &before, &payload).await;
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialer_expecting_another_server_key_is_refused() {
    let payload = Payload::new();
    let (node, events) = target_node(&payload).await;
    let before = node.snapshot().await.expect("snapshot");
    let someone_else = Identity::from_seed(&[0x77; 32]).public_key();
    let (mut stream, outcome) = handshake(&node, NetworkKey::default(), someone_else).await;
    assert!(
        matches!(outcome, Err(HandshakeError::ServerHungUp)),
        "{outcome:?}"
    );
    assert!(closed_by_node(&mut stream).await);
    refused_with(&events, |reason| {
        matches!(
            shse_failure(reason),
            Some(HandshakeError::ServerKeyMismatch)
        )
    })
    .await;
    nothing_stored_and_still_serves(&node, &before, &payload).await;
    node.shutdown().await.expect("shutdown");
}

/// The node as the dialer: the address it is given names a key the server does not hold.
/// It must not talk to that server, store nothing from it, and keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_refuses_a_server_whose_key_does_not_match_the_address() {
    let payload = Payload::new();
    let (node, events) = target_node(&payload).await;
    // The server holds the attacker's account and feed, which the node wants.
    let (server, _) = start(0x61, Transport::Shse(NetworkKey::default()), Vec::new()).await;
    let before = node.snapshot().await.expect("snapshot");
    for msg in &payload.msgs {
        let msg = proto::msg::decode(msg).expect("a msg");
        let tangle = (!msg.metadata.tangles.is_empty()).then_some(payload.feed);
        server.add(msg, tangle).await.expect("valid");
    }
    let wrong = Keypair::from_seed(&[0x62; 32]).public();
    node.connect(DialTarget {
        address: server.address().expect("listening").to_owned(),
        key: Some(wrong),
    })
    .await
    .expect("connect");
    // A dial whose handshake fails is reported as a failed dial (and retried with backoff).
    let reported = eventually(REACTION, || async {
        dial_failures(&events)
            .iter()
            .any(|reason| reason.contains("server hung up after our hello"))
    })
    .await;
    assert!(
        reported,
        "no such dial failure; got {:?}",
        dial_failures(&events)
    );
    assert_eq!(node.connections().await.expect("count"), 0);
    nothing_stored_and_still_serves(&node, &before, &payload).await;
    server.shutdown().await.expect("shutdown");
    node.shutdown().await.expect("shutdown");
}

/// Sends the attack's first write intact, then `mangle`d ciphertext of the second (or of a
/// replayed block); the node must drop the connection with `expected` in its reason.
async fn secretstream_attack(
    mangle: impl FnOnce(&[u8], &[u8]) -> Vec<u8>,
    shutdown: bool,
    expected: &str,
) {
    let payload = Payload::new();
    let (node, events) = target_node(&payload).await;
    let before = node.snapshot().await.expect("snapshot");
    let (mut stream, outcome) = handshake(&node, NetworkKey::default(), node_key(&node)).await;
    let outcome = outcome.expect("handshake");
    let (mut encryptor, header) = encryptor(&outcome);
    let (first, second) = payload.frames();
    let first = encrypt(&mut encryptor, &first);
    let second = encrypt(&mut encryptor, &second);
    let mut wire = header.to_vec();
    wire.extend(mangle(&first, &second));
    stream.write_all(&wire).await.expect("write");
    if shutdown {
        stream.shutdown().await.expect("shutdown");
    }
    assert!(
        closed_by_node(&mut stream).await,
        "the node kept the connection"
    );
    refused_with(&events, |reason| {
        matches!(reason, DisconnectReason::Io(_)) && text_of(reason).contains(expected)
    })
    .await;
    nothing_stored_and_still_serves(&node, &before, &payload).await;
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_block_is_refused() {
    secretstream_attack(
        |first, second| {
            let mut wire = first.to_vec();
            let mut tampered = second.to_vec();
            // One bit of the msgs' ciphertext; the block's MAC no longer verifies.
            tampered[CIPHERTEXT_BLOCK_LEN / 2] ^= 0x01;
            wire.extend(tampered);
            wire
        },
        false,
        "block failed authentication",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_block_is_refused() {
    secretstream_attack(
        |first, second| {
            let mut wire = first.to_vec();
            // The first block again: valid ciphertext, but for an earlier position in the
            // stream, so it fails authentication; what follows is never read.
            wire.extend_from_slice(&first[..CIPHERTEXT_BLOCK_LEN]);
            wire.extend_from_slice(second);
            wire
        },
        false,
        "block failed authentication",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_stream_is_refused() {
    secretstream_attack(
        |first, second| {
            let mut wire = first.to_vec();
            // Most of the msgs' first block, then end of stream (no final block).
            wire.extend_from_slice(&second[..CIPHERTEXT_BLOCK_LEN - 100]);
            wire
        },
        true,
        "stream ended before the final tag",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_encrypted_frame_is_refused_from_its_header() {
    let payload = Payload::new();
    let (node, events) = target_node(&payload).await;
    let before = node.snapshot().await.expect("snapshot");
    let (mut stream, outcome) = handshake(&node, NetworkKey::default(), node_key(&node)).await;
    let outcome = outcome.expect("handshake");
    let (mut encryptor, header) = encryptor(&outcome);
    let (first, _) = payload.frames();
    let mut wire = header.to_vec();
    wire.extend(encrypt(&mut encryptor, &first));
    // A JSON stream frame announcing 16 MiB: refused before any of the body is buffered.
    wire.extend(encrypt(
        &mut encryptor,
        &[0x0a, 0x01, 0x00, 0x00, 0x00, 0, 0, 0, 1],
    ));
    stream.write_all(&wire).await.expect("write");
    assert!(
        closed_by_node(&mut stream).await,
        "the node kept the connection"
    );
    refused_with(
        &events,
        |reason| matches!(reason, DisconnectReason::Io(text) if text.contains("body")),
    )
    .await;
    nothing_stored_and_still_serves(&node, &before, &payload).await;
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_are_dropped_after_the_timeout() {
    let payload = Payload::new();
    let (node, events) = target_node(&payload).await;
    let before = node.snapshot().await.expect("snapshot");

    // Connects and sends nothing.
    let started = tokio::time::Instant::now();
    let mut silent = TcpStream::connect(node.address().expect("listening"))
        .await
        .expect("connect");
    assert!(
        closed_by_node(&mut silent).await,
        "a silent dialer was kept"
    );
    let waited = started.elapsed();
    assert!(
        waited >= HANDSHAKE_TIMEOUT && waited < REACTION,
        "dropped after {waited:?}, the timeout is {HANDSHAKE_TIMEOUT:?}"
    );

    // Sends a valid first message (the node answers it), then nothing.
    let mut half = TcpStream::connect(node.address().expect("listening"))
        .await
        .expect("connect");
    let mut machine = node::transport::shse::ClientHandshake::new(
        NetworkKey::default(),
        Identity::from_seed(&ATTACKER_SEED),
        node_key(&node),
        None::<Token>,
        &EphemeralSeed([3; 32]),
    )
    .expect("client machine");
    let hello = machine.take_output().expect("message 1");
    half.write_all(&hello).await.expect("write");
    let mut answer = [0u8; 64];
    half.read_exact(&mut answer).await.expect("message 2");
    assert!(
        closed_by_node(&mut half).await,
        "a stalled handshake was kept"
    );

    let timeouts = eventually(REACTION, || async {
        disconnects(&events)
            .iter()
            .filter(|reason| matches!(shse_failure(reason), Some(HandshakeError::Timeout(_))))
            .count()
            == 2
    })
    .await;
    assert!(timeouts, "{:?}", disconnects(&events));
    nothing_stored_and_still_serves(&node, &before, &payload).await;
    node.shutdown().await.expect("shutdown");
}
