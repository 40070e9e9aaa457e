//! Admission over real loopback sockets (`proto::admission`): a full node refuses a
//! newcomer with an event until one of its idle connections has been idle for
//! `Timers::yield_after`, then closes that one to let the newcomer in; failing that, an
//! address holding the most connections gives one up to a newcomer from elsewhere; one key
//! holds at most `Limits::per_key_max` connections, the newest kept.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};

use node::peer::{
    DisconnectReason, NodeConfig, NodeEvent, NodeHandle, PeerState, Timers, Transport,
};
use node::transport::PublicKey;
use node::transport::caps::NetworkKey;
use node::transport::shse::io::{self as shse_io, Config};
use node::transport::shse::{EphemeralSeed, Identity};
use proto::admission::{Eviction, Refusal};
use proto::keys::Keypair;

use crate::support::{Events, disconnects, eventually, run_recording, target_of};

const WAIT: Duration = Duration::from_secs(30);

fn config(seed: u8) -> NodeConfig {
    let mut config = NodeConfig::new(Keypair::from_seed(&[seed; 32]), u64::from(seed));
    config.transport = Transport::Shse(NetworkKey::default());
    config.timers = Timers {
        keepalive_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        ..Timers::default()
    };
    config
}

/// Connections `node` has open with the key of `seed`.
async fn open_with(node: &NodeHandle, seed: u8) -> usize {
    let key = Keypair::from_seed(&[seed; 32]).public();
    node.peers()
        .await
        .expect("peers")
        .iter()
        .filter(|peer| peer.key == Some(key) && peer.state == PeerState::Connected)
        .count()
}

fn refusals(events: &Events) -> Vec<Refusal> {
    events
        .lock()
        .expect("not poisoned")
        .iter()
        .filter_map(|event| match event {
            NodeEvent::Refused { refusal, .. } => Some(*refusal),
            _ => None,
        })
        .collect()
}

async fn dialer(seed: u8, listener: &NodeHandle) -> NodeHandle {
    let mut config = config(seed);
    config.dial = vec![target_of(listener)];
    run_recording(config).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_lets_a_newcomer_in_by_closing_an_idle_connection() {
    let mut listener = config(1);
    listener.listen = Some("127.0.0.1:0".to_owned());
    listener.limits.inbound_max = 2;
    listener.timers.yield_after = Duration::from_secs(2);
    let (listener, events) = run_recording(listener).await;
    let first = dialer(2, &listener).await;
    let second = dialer(3, &listener).await;
    assert!(
        eventually(WAIT, || async {
            open_with(&listener, 2).await == 1 && open_with(&listener, 3).await == 1
        })
        .await
    );
    let newcomer = dialer(4, &listener).await;
    assert!(
        eventually(WAIT, || async {
            refusals(&events).contains(&Refusal::Full)
        })
        .await,
        "a newcomer is refused while nobody has been idle for long"
    );
    assert!(
        eventually(WAIT, || async { open_with(&listener, 4).await == 1 }).await,
        "the newcomer never got in"
    );
    assert!(
        disconnects(&events).contains(&DisconnectReason::Admission(Eviction::Idle)),
        "{:?}",
        disconnects(&events)
    );
    assert!(listener.connections().await.expect("count") <= 2 + 1);
    for node in [first, second, newcomer, listener] {
        node.shutdown().await.expect("stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_holds_at_most_per_key_max_connections() {
    let mut listener = config(5);
    listener.listen = Some("127.0.0.1:0".to_owned());
    listener.limits.per_key_max = 2;
    let (listener, events) = run_recording(listener).await;
    // Three processes with the same key (a careless user, or a thief of a key).
    let mut clones = Vec::new();
    for _ in 0..3 {
        clones.push(dialer(6, &listener).await);
    }
    assert!(
        eventually(WAIT, || async {
            disconnects(&events).contains(&DisconnectReason::Admission(Eviction::SameKey))
        })
        .await,
        "{:?}",
        disconnects(&events)
    );
    for _ in 0..20 {
        assert!(open_with(&listener, 6).await <= 2);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for node in clones {
        node.shutdown().await.expect("stops");
    }
    listener.shutdown().await.expect("stops");
}

/// A TCP connection from `source` (any 127.0.0.0/8 address is loopback) that completes the
/// SHSE handshake as the key of `seed`, then sends nothing.
async fn handshaked_from(source: [u8; 4], node: &NodeHandle, seed: u8) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source");
    let address: SocketAddr = node.address().expect("listening").parse().expect("address");
    let mut stream = socket.connect(address).await.expect("connect");
    let config = Config {
        network_key: NetworkKey::default(),
        identity: Identity::from_seed(&[seed; 32]),
        timeout: WAIT,
    };
    let server = PublicKey(node.key().to_bytes());
    shse_io::client(
        &mut stream,
        &config,
        server,
        None,
        &EphemeralSeed([seed; 32]),
    )
    .await
    .expect("handshake");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_addresses_holding_every_slot_give_way_to_a_newcomer_from_another() {
    let mut listener = config(20);
    listener.listen = Some("127.0.0.1:0".to_owned());
    listener.limits.inbound_max = 6;
    listener.limits.per_address_max = 3;
    // Nobody yields as idle, and nobody is closed for silence, during the test.
    listener.timers.yield_after = Duration::from_secs(3600);
    listener.timers.idle_timeout = Duration::from_secs(3600);
    let (listener, events) = run_recording(listener).await;
    let mut held = Vec::new();
    for index in 0..6u8 {
        let source = [127, 0, 0, 10 + index % 2];
        held.push(handshaked_from(source, &listener, 30 + index).await);
    }
    assert!(
        eventually(WAIT, || async {
            let peers = listener.peers().await.expect("peers");
            peers
                .iter()
                .filter(|peer| peer.state == PeerState::Connected)
                .count()
                == 6
        })
        .await,
        "the attackers hold every inbound slot"
    );
    // A newcomer from 127.0.0.1 (the node dials from there) gets in at once.
    let newcomer = dialer(21, &listener).await;
    assert!(
        eventually(WAIT, || async { open_with(&listener, 21).await == 1 }).await,
        "locked out by six handshaked connections from two addresses: {:?}",
        refusals(&events)
    );
    assert!(
        disconnects(&events).contains(&DisconnectReason::Admission(Eviction::Crowded)),
        "{:?}",
        disconnects(&events)
    );
    drop(held);
    newcomer.shutdown().await.expect("stops");
    listener.shutdown().await.expect("stops");
}
