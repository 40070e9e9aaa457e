//! Finding 1: a synced msg whose base58 fields are megabytes long. Base58 decoding costs the
//! square of its length (250,000 digits took 11 s, 500,000 took 47 s), and it ran inside the
//! sync actor while it held the database: every other peer waited. Now lengths are checked
//! before any decoding, and received objects are decoded before the database is locked.

use proto::db::Db;
use proto::keys::Keypair;
use proto::store::MemStore;
use serde_json::{Value, json};

use crate::support::{Attacker, PATIENCE, PeerDir, RssSampler, Victim, legit_peer, ppppp, synced};

/// Digits in the attack's sigkey: about 4 MB, within one 8 MiB frame. Decoding it whole would
/// take the better part of an hour.
const SIGKEY_DIGITS: usize = 4_000_000;

/// A valid msg of the attacker's own, as JSON.
fn attacker_post() -> Value {
    let keypair = Keypair::from_seed(&[0xa1; 32]);
    let mut db = Db::new(MemStore::new());
    let account = db
        .create_account(&keypair, "account", "attacker")
        .expect("account");
    let post = db
        .publish(&keypair, &account, "post", json!({"text": "hi"}), &[])
        .expect("post");
    db.get(&post).expect("memory").expect("stored").to_value()
}

/// `msg` with `field` (a path of keys) replaced by `digits` base58 digits.
fn with_long_field(msg: &Value, path: &[&str], digits: usize) -> Value {
    let mut msg = msg.clone();
    let mut slot = &mut msg;
    for key in path {
        slot = slot.get_mut(*key).expect("field exists");
    }
    *slot = Value::String("2".repeat(digits));
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_sigkey_does_not_stall_other_peers() {
    let dir = PeerDir::new().await;
    let victim = Victim::start(dir.path(), &[]).await;
    let baseline = victim.rss_kib();
    let sampler = RssSampler::start(victim.pid());

    let post = attacker_post();
    let mut attacker = Attacker::connect(&victim.target(), 1)
        .await
        .expect("handshake");
    let feed = dir.feed;
    let (first_sent, first_sent_rx) = tokio::sync::oneshot::channel();
    let mut first_sent = Some(first_sent);
    // The attacker writes from its own task: a victim stuck decoding stops reading, and the
    // writes then wait on full socket buffers.
    let attack = tokio::spawn(async move {
        let sync = attacker.open_sync().await.expect("sync");
        for (index, path) in [
            &["sigkey"][..],
            &["sig"][..],
            &["metadata", "account"][..],
            &["metadata", "dataHash"][..],
        ]
        .iter()
        .enumerate()
        {
            let msg = with_long_field(&post, path, SIGKEY_DIGITS - index);
            attacker.queue_json(
                sync,
                &json!({"id": feed.as_str(), "phase": 9, "payload": [msg]}),
            );
            let written = attacker.flush().await;
            if let Some(signal) = first_sent.take() {
                let _ = signal.send(written.is_ok());
            }
            if written.is_err() {
                // The victim refused a msg and cut the attacker off: nothing more to send.
                return;
            }
        }
        // Keep the connection open until the test ends.
        let _ = attacker.next_event().await;
    });

    let first_written = tokio::time::timeout(PATIENCE, first_sent_rx)
        .await
        .expect("the first attack frame is written in time")
        .expect("the attacker is running");
    assert!(first_written, "the victim reads the attack");
    // While those are (or would be) decoded, a legitimate peer syncs the victim's feed.
    let friend = legit_peer(&victim.target(), dir.account, dir.feed).await;
    assert!(
        synced(&friend, dir.feed, 2).await,
        "the legitimate peer did not sync within {PATIENCE:?} while the attack ran"
    );
    friend.shutdown().await.expect("shutdown");
    attack.abort();
    let peak = sampler.finish().await;
    eprintln!(
        "RSS baseline {baseline} KiB, peak during the attack {peak} KiB (+{} KiB)",
        peak.saturating_sub(baseline)
    );
    // Four 4 MB frames, each parsed once: well under 100 MiB; nothing like the decode's
    // quadratic work is left to show in memory, but it must not hold the frames either.
    assert!(
        peak.saturating_sub(baseline) < 100 * 1024,
        "RSS grew from {baseline} to {peak} KiB"
    );
    let stderr = victim.stop().await;
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msg_check_refuses_a_megabyte_sigkey_by_its_length() {
    let post = attacker_post();
    let mut input = String::new();
    for path in [&["sigkey"][..], &["sig"][..], &["metadata", "tangles"][..]] {
        let msg = if path == ["metadata", "tangles"] {
            let mut msg = post.clone();
            let key = "2".repeat(1_000_000);
            msg["metadata"]["tangles"] = json!({ key: {"depth": 1, "prev": []} });
            msg
        } else {
            with_long_field(&post, path, 1_000_000)
        };
        input.push_str(&msg.to_string());
        input.push('\n');
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("msgs.jsonl");
    std::fs::write(&file, &input).expect("write");
    let checked = tokio::time::timeout(
        PATIENCE,
        ppppp().arg("msg").arg("check").arg(&file).output(),
    )
    .await
    .expect("msg check finishes in time (a quadratic decode would take minutes)")
    .expect("runs");
    let out = String::from_utf8_lossy(&checked.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].contains("sigkey is 1000000 characters"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("sig is 1000000 characters"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("not an ID"), "{}", lines[2]);
    // Verdicts never repeat megabytes of input.
    assert!(out.len() < 4096, "{} bytes of verdicts", out.len());
}
