//! Two ppppp nodes over real loopback TCP sync with `sync.reconcile` (docs/sync-extension.md):
//! the dialer probes, the responder accepts, both peers' connections report the method, and
//! the stores end identical, realtime pushes included.

use std::time::Duration;

use node::peer::{NodeEvent, NodeHandle, Transport};
use node::transport::caps::NetworkKey;
use proto::goals::Goal;
use proto::ids::TangleId;
use proto::msg;
use serde_json::json;

use crate::support::{config_for, eventually, run_recording, target_of};

async fn feed_of(node: &NodeHandle, feed: TangleId) -> Option<Vec<String>> {
    node.snapshot()
        .await
        .ok()
        .and_then(|snapshot| snapshot.tangles.get(feed.as_str()).cloned())
}

/// Whether every connection of `node` syncs, and does so over `sync.reconcile`.
async fn all_reconcile(node: &NodeHandle) -> bool {
    let peers = node.peers().await.expect("peers");
    let syncing: Vec<bool> = peers
        .iter()
        .filter_map(|peer| peer.sync.as_ref().map(|sync| sync.reconcile))
        .collect();
    !syncing.is_empty() && syncing.iter().all(|reconcile| *reconcile)
}

async fn sync_over_reconcile(transport: Transport) {
    let mut alice_config = config_for(31, transport, Vec::new());
    alice_config.reconcile = true;
    let (alice, _) = run_recording(alice_config).await;
    for index in 0..30 {
        alice
            .publish("post", json!({"text": format!("before #{index}")}))
            .await
            .expect("publish");
    }
    let mut newest_note = None;
    for index in 0..6 {
        let id = alice
            .publish("note", json!({"n": index}))
            .await
            .expect("publish");
        newest_note = Some(id.to_string());
    }
    let posts = msg::feed_id(&alice.account(), "post");
    let notes = msg::feed_id(&alice.account(), "note");
    let mut bob_config = config_for(32, transport, vec![target_of(&alice)]);
    bob_config.reconcile = true;
    bob_config.goals = vec![
        (alice.account(), Goal::All),
        (posts, Goal::All),
        (notes, Goal::Newest(2)),
    ];
    let (bob, bob_events) = run_recording(bob_config).await;
    let synced = eventually(Duration::from_secs(10), || async {
        feed_of(&bob, posts).await.map(|ids| ids.len()) == Some(31)
    })
    .await;
    assert!(synced, "bob did not get alice's 30 posts");
    assert!(
        all_reconcile(&bob).await,
        "bob's connection runs sync.reconcile"
    );
    assert!(
        all_reconcile(&alice).await,
        "alice's connection runs sync.reconcile"
    );
    // Realtime, on the same stream: pushed as alice publishes.
    let mut late = Vec::new();
    for index in 0..3 {
        let id = alice
            .publish("post", json!({"text": format!("while connected #{index}")}))
            .await
            .expect("publish");
        late.push(id.to_string());
    }
    let pushed = eventually(Duration::from_secs(10), || async {
        feed_of(&bob, posts)
            .await
            .is_some_and(|ids| late.iter().all(|id| ids.contains(id)))
    })
    .await;
    assert!(pushed, "the realtime msgs did not arrive");
    assert_eq!(feed_of(&alice, posts).await, feed_of(&bob, posts).await);
    let bob_notes = feed_of(&bob, notes).await.unwrap_or_default();
    let alice_notes = feed_of(&alice, notes).await.unwrap_or_default();
    assert!(
        bob_notes.len() < alice_notes.len() && bob_notes.contains(&newest_note.expect("six")),
        "newest-2, pruned after (trails kept): {bob_notes:?}"
    );
    let peers = bob.peers().await.expect("peers");
    let summary = peers
        .iter()
        .find_map(|peer| peer.sync)
        .expect("a sync summary");
    assert!(
        summary.received_msgs >= 33,
        "received {}",
        summary.received_msgs
    );
    let alice_peers = alice.peers().await.expect("peers");
    let pushing = alice_peers
        .iter()
        .find_map(|peer| peer.sync)
        .expect("a sync summary");
    assert!(pushing.realtime >= 1, "alice pushes the feed in realtime");
    assert!(pushing.pushed_msgs >= 3, "pushed {}", pushing.pushed_msgs);
    let finished = bob_events
        .lock()
        .expect("not poisoned")
        .iter()
        .filter(|event| matches!(event, NodeEvent::SyncFinished { tangle, .. } if *tangle == posts))
        .count();
    assert!(finished >= 1, "the post feed's exchange finished");
    bob.shutdown().await.expect("clean shutdown");
    alice.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sync_over_sync_reconcile_with_shse() {
    sync_over_reconcile(Transport::Shse(NetworkKey::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sync_over_sync_reconcile_in_plaintext() {
    sync_over_reconcile(Transport::Plaintext).await;
}

/// Without the option, the dialer never probes: pzp-sync, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_option_nodes_keep_pzp_sync() {
    let transport = Transport::Plaintext;
    let (alice, _) = run_recording(config_for(33, transport, Vec::new())).await;
    alice
        .publish("post", json!({"text": "one"}))
        .await
        .expect("publish");
    let posts = msg::feed_id(&alice.account(), "post");
    let mut bob_config = config_for(34, transport, vec![target_of(&alice)]);
    bob_config.goals = vec![(alice.account(), Goal::All), (posts, Goal::All)];
    let (bob, _) = run_recording(bob_config).await;
    let synced = eventually(Duration::from_secs(10), || async {
        feed_of(&bob, posts).await.map(|ids| ids.len()) == Some(2)
    })
    .await;
    assert!(synced, "bob did not get alice's post");
    let peers = bob.peers().await.expect("peers");
    assert!(
        peers
            .iter()
            .filter_map(|peer| peer.sync.as_ref())
            .all(|sync| !sync.reconcile),
        "pzp-sync: {peers:?}"
    );
    bob.shutdown().await.expect("clean shutdown");
    alice.shutdown().await.expect("clean shutdown");
}
