//! Finding 3: a peer that asks for a lot and never reads. The writer queue was bounded in
//! batches (1,024), not bytes, so it could hold 1,024 answers of any size: the bound as
//! written was about 8 GiB per connection. Now the bytes queued to one connection are
//! bounded (`Limits::outbound_bytes_max`); past it the peer is cut off as a slow reader.

use std::time::Duration;

use serde_json::json;

use crate::support::{Attacker, PATIENCE, PeerDir, RssSampler, Victim, legit_peer, synced};

/// The victim's feed: 300 posts of about 2 KB (each whole-feed answer is about 700 KB).
const POSTS: usize = 300;
const POST_BYTES: usize = 2_000;
/// Whole-feed requests the attacker sends without reading (about 280 MB of answers).
const REQUESTS: usize = 400;

/// A bloom filter with nothing in it: "I have none of your msgs".
fn empty_bloom() -> serde_json::Value {
    json!({"type":"BloomFilter","_size":240,"_nbHashes":17,"_filter":{"size":240,"content":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"_seed":78187493520_u64})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_costs_a_bounded_number_of_bytes() {
    let dir = PeerDir::with_feed(POSTS, POST_BYTES).await;
    let victim = Victim::start(dir.path(), &[]).await;
    let baseline = victim.rss_kib();
    let sampler = RssSampler::start(victim.pid());

    let mut attacker = Attacker::connect(&victim.target(), 3)
        .await
        .expect("handshake");
    let feed = dir.feed;
    let attack = tokio::spawn(async move {
        let sync = attacker.open_sync().await.expect("sync");
        let mut sent = 0;
        for _ in 0..REQUESTS {
            attacker.queue_json(
                sync,
                &json!({"id": feed.as_str(), "phase": 1, "payload": [1, 0]}),
            );
            attacker.queue_json(
                sync,
                &json!({"id": feed.as_str(), "phase": 3, "payload": {"wantRange": [0, 1000], "bloom": empty_bloom()}}),
            );
            // Never reads; once the victim stops reading too (or cuts us off), writes stall
            // or fail.
            match tokio::time::timeout(Duration::from_secs(2), attacker.flush()).await {
                Ok(Ok(())) => sent += 1,
                Ok(Err(_)) | Err(_) => break,
            }
        }
        // Still never reading, poke the victim until a write fails: it closed on us.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            attacker.queue_json(
                sync,
                &json!({"id": feed.as_str(), "phase": 1, "payload": [1, 0]}),
            );
            match tokio::time::timeout(Duration::from_secs(1), attacker.flush()).await {
                Ok(Err(_)) => return (sent, true),
                Ok(Ok(())) | Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        (sent, false)
    });

    // While the attack runs, a legitimate peer syncs the same feed.
    let friend = legit_peer(&victim.target(), dir.account, dir.feed).await;
    assert!(
        synced(&friend, dir.feed, POSTS + 1).await,
        "the legitimate peer did not sync within {PATIENCE:?}"
    );
    friend.shutdown().await.expect("shutdown");
    let (sent, cut_off) = attack.await.expect("attacker");
    let peak = sampler.finish().await;
    eprintln!(
        "RSS baseline {baseline} KiB, peak {peak} KiB (+{} KiB) after {sent} whole-feed \
         requests never read; cut off: {cut_off}",
        peak.saturating_sub(baseline)
    );
    assert!(
        cut_off,
        "the victim kept the connection of a peer that never reads"
    );
    // 64 MiB of queued answers plus one answer, the socket buffers and the legitimate sync;
    // the batch bound alone let this attack queue its whole 280 MB.
    assert!(
        peak.saturating_sub(baseline) < 128 * 1024,
        "RSS went from {baseline} to {peak} KiB"
    );
    let stderr = victim.stop().await;
    assert!(!stderr.contains("panicked"), "{stderr}");
}
