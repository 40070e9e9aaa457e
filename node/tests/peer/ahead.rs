//! A node reading sync batches ahead (`Limits::sync_batches_ahead`, with verify-ahead as
//! `ppppp serve` runs) stores what a node handling one batch at a time stores: the sync actor
//! still handles the batches in order. Small reads and a stream of realtime pushes make many
//! batches, several of them handed on before the first is committed.

use std::time::Duration;

use node::peer::{NodeHandle, Transport};
use node::transport::caps::NetworkKey;
use proto::goals::Goal;
use proto::ids::TangleId;
use proto::msg;
use serde_json::json;

use crate::support::{config_for, eventually, run_recording, target_of};

/// Batches read ahead: enough to keep one batch parsed while the previous one commits.
const BATCHES_AHEAD: usize = 2;

async fn feed_of(node: &NodeHandle, feed: TangleId) -> Option<Vec<String>> {
    node.snapshot()
        .await
        .ok()
        .and_then(|snapshot| snapshot.tangles.get(feed.as_str()).cloned())
}

/// Alice publishes before and while bob, reading `ahead` batches ahead, syncs with her.
async fn bob_syncs_reading_ahead(reconcile: bool, ahead: usize, seed: u8) -> Vec<String> {
    let transport = Transport::Shse(NetworkKey::default());
    let mut alice_config = config_for(seed, transport, Vec::new());
    alice_config.reconcile = reconcile;
    let (alice, _) = run_recording(alice_config).await;
    for index in 0..120 {
        alice
            .publish("post", json!({"text": format!("before #{index}")}))
            .await
            .expect("publish");
    }
    let posts = msg::feed_id(&alice.account(), "post");
    let mut bob_config = config_for(seed + 1, transport, vec![target_of(&alice)]);
    bob_config.reconcile = reconcile;
    bob_config.verify_ahead = true;
    bob_config.limits.sync_batches_ahead = ahead;
    bob_config.limits.read_chunk_bytes_max = 4 * 1024;
    bob_config.goals = vec![(alice.account(), Goal::All), (posts, Goal::All)];
    let (bob, _) = run_recording(bob_config).await;
    let started = eventually(Duration::from_secs(10), || async {
        feed_of(&bob, posts)
            .await
            .is_some_and(|ids| !ids.is_empty())
    })
    .await;
    assert!(started, "bob got nothing of alice's feed");
    for index in 0..60 {
        alice
            .publish("post", json!({"text": format!("while connected #{index}")}))
            .await
            .expect("publish");
    }
    let synced = eventually(Duration::from_secs(20), || async {
        feed_of(&bob, posts).await.map(|ids| ids.len()) == Some(181)
    })
    .await;
    assert!(synced, "bob did not get alice's 180 posts");
    let held = feed_of(&bob, posts).await.expect("bob's feed");
    assert_eq!(Some(&held), feed_of(&alice, posts).await.as_ref());
    bob.shutdown().await.expect("clean shutdown");
    alice.shutdown().await.expect("clean shutdown");
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_sync_batches_ahead_stores_what_one_at_a_time_stores_over_reconcile() {
    let ahead = bob_syncs_reading_ahead(true, BATCHES_AHEAD, 41).await;
    let one_at_a_time = bob_syncs_reading_ahead(true, 0, 41).await;
    assert_eq!(ahead, one_at_a_time);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_sync_batches_ahead_stores_what_one_at_a_time_stores_over_pzp_sync() {
    let ahead = bob_syncs_reading_ahead(false, BATCHES_AHEAD, 43).await;
    let one_at_a_time = bob_syncs_reading_ahead(false, 0, 43).await;
    assert_eq!(ahead, one_at_a_time);
}
