//! Findings 7 and 11, and the missing log of the "also" list, through the `ppppp` program.
//!
//! - Deleting `db/LOCK` while `ppppp serve` ran let a concurrent `ppppp db add` write too,
//!   and afterwards every command refused the store. The writer now also locks the log.
//! - One flipped bit mid-log made every command refuse the store with no way out;
//!   `ppppp db salvage` keeps every readable record and reports what is lost.
//! - A flip in the last batch was cut with a message saying it was never acknowledged; the
//!   message now says what can be known, and the cut bytes are kept.
//! - `ppppp serve` made a new empty store when `db/log` was missing; it now refuses.

use std::path::Path;

use proto::db::Db;
use proto::keys::Keypair;
use proto::store::MemStore;
use serde_json::{Value, json};

use crate::support::{PATIENCE, PeerDir, Victim, arg, ppppp, run};

/// JSON lines of another account's feed of `posts` posts.
fn other_feed(seed: u8, posts: usize) -> Vec<String> {
    let keypair = Keypair::from_seed(&[seed; 32]);
    let mut db = Db::new(MemStore::new());
    let account = db
        .create_account(&keypair, "account", "other")
        .expect("account");
    let mut ids = vec![account, proto::msg::feed_id(&account, "post")];
    for index in 0..posts {
        ids.push(
            db.publish(&keypair, &account, "post", json!({ "n": index }), &[])
                .expect("post"),
        );
    }
    ids.iter()
        .map(|id| db.get(id).expect("memory").expect("stored").to_json())
        .collect()
}

/// `ppppp db add` of `lines` into `dir`: success, stdout, stderr.
async fn db_add(dir: &Path, lines: &[String]) -> (bool, String, String) {
    let file = dir.join(format!("add-{}.jsonl", lines.len()));
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    run(&["db", "add", "--dir", &arg(dir), &arg(&file)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_lock_file_lets_no_second_writer_in() {
    let dir = PeerDir::new().await;
    let victim = Victim::start(dir.path(), &[]).await;
    std::fs::remove_file(dir.path().join("db").join("LOCK")).expect("rm db/LOCK");
    let (ok, out, err) = db_add(dir.path(), &other_feed(1, 3)).await;
    assert!(!ok, "a second writer got in: {out}");
    assert!(err.contains("in use by another process"), "{err}");
    // Readers still work beside the writer, and after it.
    let (ok, out, err) = run(&["db", "stats", "--dir", &arg(dir.path())]).await;
    assert!(ok, "{err}");
    let stats: Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(stats["msgs"], json!(3), "account root, moot, post");
    victim.stop().await;
    let (ok, _, err) = run(&["db", "log", "--dir", &arg(dir.path())]).await;
    assert!(ok, "{err}");
    // Once the writer is gone, a writer gets in again.
    let (ok, out, err) = db_add(dir.path(), &other_feed(1, 3)).await;
    assert!(ok && !out.contains("rejected"), "{out} {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_store_whose_log_is_gone() {
    let dir = PeerDir::new().await;
    std::fs::remove_file(dir.path().join("db").join("log")).expect("rm db/log");
    let started = tokio::time::timeout(
        PATIENCE,
        ppppp()
            .arg("serve")
            .arg("--dir")
            .arg(dir.path())
            .args(["--listen", "127.0.0.1:0"])
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("serve exits in time")
    .expect("runs");
    let stderr = String::from_utf8_lossy(&started.stderr);
    assert!(!started.status.success(), "serve started on a lost store");
    assert!(stderr.contains("has no log"), "{stderr}");
    assert!(!dir.path().join("db").join("log").exists(), "no new log");
}

/// A store with several batches: the account root, moot and post of `ppppp publish`, then
/// three `db add` runs of another feed.
async fn store_with_batches() -> (PeerDir, usize) {
    let dir = PeerDir::new().await;
    let lines = other_feed(2, 30);
    for chunk in lines.chunks(11) {
        let (ok, out, err) = db_add(dir.path(), chunk).await;
        assert!(ok && !out.contains("rejected"), "{out} {err}");
    }
    (dir, 3 + lines.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_bit_mid_log_is_salvaged() {
    let (dir, msgs) = store_with_batches().await;
    let log_path = dir.path().join("db").join("log");
    let mut log = std::fs::read(&log_path).expect("log");
    // A bit in the middle of the log: inside some msg's JSON of a middle batch.
    let middle = log.len() / 2;
    log[middle] ^= 0x04;
    std::fs::write(&log_path, &log).expect("write");

    for command in [&["db", "log"][..], &["db", "stats"][..]] {
        let mut args = command.to_vec();
        let dir_arg = arg(dir.path());
        args.extend(["--dir", &dir_arg]);
        let (ok, _, err) = run(&args).await;
        assert!(!ok, "{command:?} read a corrupt store");
        assert!(err.contains("ppppp db salvage"), "{err}");
    }
    let (ok, out, err) = run(&["db", "salvage", "--dir", &arg(dir.path())]).await;
    assert!(ok, "{err}");
    eprintln!("{out}{err}");
    let report: Value = serde_json::from_str(out.trim()).expect("JSON report");
    let kept = usize::try_from(report["msgs"].as_u64().expect("msgs")).expect("small");
    assert_eq!(
        kept,
        msgs - 1,
        "only the msg whose bytes were flipped is lost"
    );
    let lost = report["lostBytes"].as_array().expect("ranges");
    assert_eq!(lost.len(), 1, "{report}");
    let (from, to) = (lost[0]["from"].as_u64(), lost[0]["to"].as_u64());
    assert!(
        from <= Some(middle as u64) && Some(middle as u64) < to,
        "the flipped byte {middle} is in the lost range {report}"
    );
    let damaged = std::fs::read(dir.path().join("db").join("log.damaged")).expect("kept");
    assert_eq!(damaged, log, "the damaged log is kept as it was");
    // The store works again, with the msgs after the damage too.
    let (ok, out, err) = run(&["db", "log", "--dir", &arg(dir.path())]).await;
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), kept);
    let last = other_feed(2, 30).pop().expect("last post");
    assert!(
        out.lines().any(|line| line == last),
        "the last msg survives"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_last_batch_is_cut_with_a_truthful_message_and_kept() {
    let (dir, _) = store_with_batches().await;
    let log_path = dir.path().join("db").join("log");
    let mut log = std::fs::read(&log_path).expect("log");
    // A bit near the end: inside the last (acknowledged) batch.
    let at = log.len() - 40;
    log[at] ^= 0x01;
    std::fs::write(&log_path, &log).expect("write");
    let (ok, _, err) = db_add(dir.path(), &other_feed(3, 1)).await;
    assert!(ok, "{err}");
    assert!(
        err.contains("or acknowledged msgs damaged on disk"),
        "{err}"
    );
    let copy = std::fs::read_dir(dir.path().join("db"))
        .expect("list")
        .filter_map(Result::ok)
        .find(|entry| entry.file_name().to_string_lossy().starts_with("log.torn-"))
        .expect("the cut bytes are kept");
    assert!(err.contains(&copy.path().display().to_string()), "{err}");
    let cut = std::fs::read(copy.path()).expect("copy");
    assert!(log.ends_with(&cut), "the copy is the cut tail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_store_whose_secret_is_gone() {
    let dir = PeerDir::new().await;
    let secret = dir.path().join("secret");
    std::fs::remove_file(&secret).expect("rm secret");
    let started = tokio::time::timeout(
        PATIENCE,
        ppppp()
            .arg("serve")
            .arg("--dir")
            .arg(dir.path())
            .args(["--listen", "127.0.0.1:0"])
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("serve exits in time")
    .expect("runs");
    let stderr = String::from_utf8_lossy(&started.stderr);
    assert!(
        !started.status.success(),
        "serve started without its identity"
    );
    assert!(stderr.contains("holds a store but no secret"), "{stderr}");
    assert!(!secret.exists(), "no new secret was made");
}
