//! Two nodes: one publishes, the other dials it with goals and receives.

use std::time::Duration;

use node::peer::{NodeEvent, Transport};
use node::transport::caps::NetworkKey;
use proto::goals::Goal;
use proto::msg;
use serde_json::json;

use crate::support::{eventually, start, target_of};

async fn replicate(transport: Transport) {
    let (alice, _) = start(1, transport, Vec::new()).await;
    let predicted = node::peer::fresh_account_id(&proto_config(1));
    assert_eq!(
        alice.account(),
        predicted,
        "fresh_account_id predicts the account"
    );
    for index in 0..20 {
        alice
            .publish("post", json!({"text": format!("before #{index}")}))
            .await
            .expect("publish");
    }
    let feed = msg::feed_id(&alice.account(), "post");
    let (bob, bob_events) = start(2, transport, vec![target_of(&alice)]).await;
    bob.set_goal(alice.account(), Goal::All)
        .await
        .expect("goal");
    bob.set_goal(feed, Goal::All).await.expect("goal");
    let synced = eventually(Duration::from_secs(10), || async {
        bob.snapshot()
            .await
            .ok()
            .and_then(|s| s.tangles.get(feed.as_str()).map(Vec::len))
            == Some(21)
    })
    .await;
    assert!(synced, "bob did not get alice's 20 posts");
    // Realtime: published while connected.
    let late = alice
        .publish("post", json!({"text": "while connected"}))
        .await
        .expect("publish");
    let pushed = eventually(Duration::from_secs(10), || async {
        bob.snapshot()
            .await
            .ok()
            .and_then(|s| s.tangles.get(feed.as_str()).cloned())
            .is_some_and(|ids| ids.contains(&late.to_string()))
    })
    .await;
    assert!(pushed, "the realtime msg did not arrive");
    let alice_snapshot = alice.snapshot().await.expect("snapshot");
    let bob_snapshot = bob.snapshot().await.expect("snapshot");
    assert_eq!(
        alice_snapshot.tangles.get(feed.as_str()),
        bob_snapshot.tangles.get(feed.as_str())
    );
    let stored = bob_events
        .lock()
        .expect("not poisoned")
        .iter()
        .filter(|event| matches!(event, NodeEvent::Stored { .. }))
        .count();
    assert!(stored >= 21, "bob stored {stored}");
    bob.shutdown().await.expect("clean shutdown");
    alice.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicates_over_shse() {
    replicate(Transport::Shse(NetworkKey::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicates_over_plaintext() {
    replicate(Transport::Plaintext).await;
}

fn proto_config(seed: u8) -> node::peer::NodeConfig {
    node::peer::NodeConfig::new(
        proto::keys::Keypair::from_seed(&[seed; 32]),
        u64::from(seed),
    )
}
