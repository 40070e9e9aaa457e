//! A node keeps redialing its dial targets for as long as it runs: through refused dials
//! (nobody listening), and again after the peer it was connected to goes away and comes
//! back. Each failed dial is reported as an event.

use std::time::Duration;

use node::peer::{DialTarget, NodeConfig, NodeEvent, Timers, Transport};
use node::transport::caps::NetworkKey;
use proto::keys::Keypair;

use crate::support::{Events, eventually, run_recording};

/// A loopback port nobody listens on (taken from the OS, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

fn timers() -> Timers {
    Timers {
        connect_timeout: Duration::from_millis(500),
        keepalive_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..Timers::default()
    }
}

fn dial_failures(events: &Events) -> usize {
    events
        .lock()
        .expect("not poisoned")
        .iter()
        .filter(|event| matches!(event, NodeEvent::DialFailed { .. }))
        .count()
}

fn config(seed: u8) -> NodeConfig {
    let mut config = NodeConfig::new(Keypair::from_seed(&[seed; 32]), u64::from(seed));
    config.transport = Transport::Shse(NetworkKey::default());
    config.timers = timers();
    config
}

#[tokio::test]
async fn a_node_redials_until_its_peer_is_up_and_again_after_it_left() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let listener_key = Keypair::from_seed(&[2; 32]);
    let mut dialer = config(1);
    dialer.dial = vec![DialTarget {
        address: address.clone(),
        key: Some(listener_key.public()),
    }];
    let (dialer, dialer_events) = run_recording(dialer).await;

    // Nobody listens: dials fail, and keep being retried (the backoff caps at 200 ms).
    assert!(
        eventually(Duration::from_secs(20), || async {
            dial_failures(&dialer_events) >= 15
        })
        .await,
        "only {} failed dials",
        dial_failures(&dialer_events)
    );
    assert_eq!(dialer.connections().await.expect("count"), 0);

    for round in 0..2 {
        let mut listener = config(2);
        listener.listen = Some(address.clone());
        let (listener, _) = run_recording(listener).await;
        assert!(
            eventually(Duration::from_secs(20), || async {
                dialer.connections().await.expect("count") == 1
            })
            .await,
            "round {round}: the dialer never reconnected"
        );
        listener.shutdown().await.expect("listener stops");
        let failures_before = dial_failures(&dialer_events);
        assert!(
            eventually(Duration::from_secs(20), || async {
                dial_failures(&dialer_events) >= failures_before + 5
            })
            .await,
            "round {round}: the dialer stopped dialing once its peer left"
        );
    }
    dialer.shutdown().await.expect("dialer stops");
}

#[tokio::test]
async fn a_dial_that_found_no_room_is_retried_once_a_slot_frees() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut dialer = config(3);
    dialer.listen = Some("127.0.0.1:0".to_owned());
    dialer.limits.connections_max = 1;
    dialer.dial = vec![DialTarget {
        address: address.clone(),
        key: Some(Keypair::from_seed(&[4; 32]).public()),
    }];
    let (dialer, dialer_events) = run_recording(dialer).await;
    // Another peer takes the only slot first.
    let mut occupant = config(5);
    occupant.dial = vec![crate::support::target_of(&dialer)];
    let (occupant, _) = run_recording(occupant).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            dialer.connections().await.expect("count") == 1
        })
        .await
    );
    // The target comes up: its dials connect but find no room, and are retried.
    let mut target = config(4);
    target.listen = Some(address);
    let (target, _) = run_recording(target).await;
    let no_room = |events: &Events| {
        events
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|event| {
                matches!(event, NodeEvent::DialFailed { reason, .. } if reason.starts_with("no room"))
            })
            .count()
    };
    assert!(
        eventually(Duration::from_secs(20), || async {
            no_room(&dialer_events) >= 3
        })
        .await,
        "no-room dials were not retried"
    );
    occupant.shutdown().await.expect("occupant stops");
    assert!(
        eventually(Duration::from_secs(20), || async {
            let peers = dialer.peers().await.expect("peers");
            peers.iter().any(|peer| {
                peer.outbound && peer.key == Some(Keypair::from_seed(&[4; 32]).public())
            }) && dialer.connections().await.expect("count") == 1
        })
        .await,
        "the freed slot never went to the dial target"
    );
    target.shutdown().await.expect("target stops");
    dialer.shutdown().await.expect("dialer stops");
}

/// Two peers that dial each other, one of them at two addresses of the other: once
/// connected they keep one connection. Before, a target whose peer was already connected
/// (inbound, or through its other address) was dialed again at every backoff, and admission
/// replaced the live connection with the new one each time, restarting every sync on it.
#[tokio::test]
async fn peers_that_dial_each_other_keep_one_connection() {
    let (port_a, port_b) = (free_port(), free_port());
    let key = |seed: u8| Some(Keypair::from_seed(&[seed; 32]).public());
    let mut a = config(6);
    a.listen = Some(format!("127.0.0.1:{port_a}"));
    a.dial = vec![
        DialTarget {
            address: format!("127.0.0.1:{port_b}"),
            key: key(7),
        },
        DialTarget {
            address: format!("localhost:{port_b}"),
            key: key(7),
        },
    ];
    let mut b = config(7);
    b.listen = Some(format!("127.0.0.1:{port_b}"));
    b.dial = vec![DialTarget {
        address: format!("127.0.0.1:{port_a}"),
        key: key(6),
    }];
    let (a, a_events) = run_recording(a).await;
    let (b, b_events) = run_recording(b).await;
    let settled = || async {
        a.connections().await.expect("count") == 1 && b.connections().await.expect("count") == 1
    };
    assert!(eventually(Duration::from_secs(20), settled).await);
    let disconnects = || {
        crate::support::disconnects(&a_events).len() + crate::support::disconnects(&b_events).len()
    };
    let before = disconnects();
    // Ten times the longest backoff: every waiting target would have redialed by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(disconnects(), before, "connections were replaced: {:?}", {
        crate::support::disconnects(&a_events)
    });
    assert!(settled().await, "the peers lost their connection");
    a.shutdown().await.expect("a stops");
    b.shutdown().await.expect("b stops");
}

/// Dial targets are kept for the node's life, and hubs' attendant lists add them: past
/// `DIAL_TARGETS_MAX` (4,096) a new one is refused with an event, and the node runs on.
#[tokio::test]
async fn dial_targets_past_the_bound_are_refused() {
    let mut config = config(8);
    // One dial per target in the test's time: no redial storm of 4,096 targets.
    config.timers.backoff_base = Duration::from_secs(600);
    config.timers.backoff_max = Duration::from_secs(1_200);
    let (node, events) = run_recording(config).await;
    for port in 1..=4_097u16 {
        node.connect(DialTarget {
            // Port 0 is never listened on: every dial fails at once and waits its backoff.
            address: format!("127.0.0.{}:0", 1 + port / 250),
            key: Some(Keypair::from_seed(&[(port % 251) as u8; 32]).public()),
        })
        .await
        .expect("the node takes the request");
    }
    let refused = events
        .lock()
        .expect("not poisoned")
        .iter()
        .filter(|event| {
            matches!(event, NodeEvent::DialFailed { reason, .. } if reason.contains("DIAL_TARGETS_MAX"))
        })
        .count();
    assert_eq!(refused, 1, "exactly the 4,097th target is refused");
    assert_eq!(node.connections().await.expect("the node still answers"), 0);
    node.shutdown().await.expect("stops");
}
