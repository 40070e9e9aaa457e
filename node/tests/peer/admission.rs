//! Admission over real loopback sockets (`proto::admission`): a full node refuses a
//! newcomer with an event until one of its idle connections has been idle for
//! `Timers::yield_after`, then closes that one to let the newcomer in; one key holds at
//! most `Limits::per_key_max` connections, the newest kept.

use std::time::Duration;

use node::peer::{
    DisconnectReason, NodeConfig, NodeEvent, NodeHandle, PeerState, Timers, Transport,
};
use node::transport::caps::NetworkKey;
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
