//! `sync.reconcile` leaves a JS peer's bytes unchanged (issue 16; docs/sync-extension.md,
//! "Negotiation"): with a JS peer on either side, the pzp-sync stream of a reconcile-capable
//! `ppppp serve` carries exactly the plaintext frames of a `ppppp serve --sync connect`, which
//! has no extension at all, in the same state.
//!
//! Each side's frames are compared in its own order (how the two directions interleave is
//! timing). Both Rust peers in a comparison are one account (copies of one empty directory)
//! with the same goals, against the same JS peer, so anything the extension added or changed
//! on the wire shows as a difference.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{JsPeer, RustPeer, WireFrame, WireRecord};
use crate::peers::{Count, Peer, Tangles};

const POSTS: u64 = 12;
const TIMEOUT: Duration = Duration::from_secs(60);
/// A stream whose frame count did not change for this long is taken as settled: a pzp-sync
/// stream in the same state carries nothing more until a msg is published.
const QUIET_FOR: Duration = Duration::from_millis(1500);
const POLL_EVERY: Duration = Duration::from_millis(100);

/// The two `serve` modes compared: no extension at all, and the default.
const WITHOUT_EXTENSION: &[&str] = &["--sync", "connect"];
const WITH_EXTENSION: &[&str] = &[];

/// One connection's `sync.connect` stream: what the Rust peer sent and received on it, each
/// in order, as whole frames (header and body).
#[derive(PartialEq, Eq)]
struct SyncStream {
    sent: Vec<Vec<u8>>,
    received: Vec<Vec<u8>>,
}

/// Frames as their header in hex and their body as text, one per line, so a failed
/// comparison reads as the two conversations.
impl std::fmt::Debug for SyncStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (side, frames) in [("sent", &self.sent), ("received", &self.received)] {
            writeln!(f, "{side}:")?;
            for frame in frames {
                let (header, body) = frame.split_at(9);
                let header: String = header.iter().map(|byte| format!("{byte:02x}")).collect();
                writeln!(f, "  {header} {}", String::from_utf8_lossy(body))?;
            }
        }
        Ok(())
    }
}

impl SyncStream {
    /// The same frames with their request numbers zeroed (a stream opened after another call
    /// on its connection has another number, and nothing else differs).
    fn without_request_numbers(&self) -> Self {
        let strip = |frames: &[Vec<u8>]| {
            frames
                .iter()
                .map(|frame| {
                    let mut frame = frame.clone();
                    frame[5..9].fill(0);
                    frame
                })
                .collect()
        };
        Self {
            sent: strip(&self.sent),
            received: strip(&self.received),
        }
    }
}

/// True if `frame` opens a `sync.connect` call.
fn opens_sync_connect(frame: &WireFrame) -> bool {
    serde_json::from_slice::<Value>(frame.body())
        .is_ok_and(|body| body["name"] == json!(["sync", "connect"]))
}

/// The first `sync.connect` stream in `frames` (from its call on), if one was opened.
fn sync_stream(frames: &[WireFrame]) -> Option<SyncStream> {
    let start = frames.iter().position(opens_sync_connect)?;
    let req = frames[start].req().abs();
    let on_stream: Vec<&WireFrame> = frames[start..]
        .iter()
        .filter(|frame| frame.req().abs() == req)
        .collect();
    let of = |outgoing: bool| {
        on_stream
            .iter()
            .filter(|frame| frame.outgoing == outgoing)
            .map(|frame| frame.bytes.clone())
            .collect()
    };
    Some(SyncStream {
        sent: of(true),
        received: of(false),
    })
}

/// Waits until the record from `from` on holds a `sync.connect` stream that stayed unchanged
/// for [`QUIET_FOR`], and returns it.
async fn settled_stream(record: &WireRecord, from: usize) -> SyncStream {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut last: Option<(SyncStream, tokio::time::Instant)> = None;
    loop {
        let now = tokio::time::Instant::now();
        assert!(now < deadline, "no settled sync.connect stream in time");
        let current = sync_stream(&record.frames()[from..]);
        match (current, last.take()) {
            (Some(current), Some((previous, since))) if current == previous => {
                if now.duration_since(since) >= QUIET_FOR {
                    return current;
                }
                last = Some((current, since));
            }
            (Some(current), _) => last = Some((current, now)),
            (None, _) => {}
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// True if any frame from `from` on mentions the extension.
fn mentions_reconcile(record: &WireRecord, from: usize) -> bool {
    record.frames()[from..]
        .iter()
        .any(|frame| String::from_utf8_lossy(frame.body()).contains("reconcile"))
}

async fn js_connections(js: &mut JsPeer) -> usize {
    let peers = js.call("peers", json!({})).await;
    peers["peers"].as_array().map_or(0, Vec::len)
}

/// Waits until the JS peer has `count` connections.
async fn js_has_connections(js: &mut JsPeer, count: usize) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while js_connections(js).await != count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the JS peer should have {count} connections"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// A JS author of `POSTS` posts, with goals on its own tangles so it offers them.
async fn js_author(name: &'static str, seed: u8) -> (JsPeer, Tangles) {
    let mut js = Peer::Js(JsPeer::start(name, [seed; 32]).await);
    let account = js.account().await;
    let ids = Tangles::of(&account);
    js.publish_many("post", "wire #", POSTS).await;
    js.goal(&ids.account, "all").await;
    js.goal(&ids.post, "all").await;
    let Peer::Js(js) = js else { unreachable!() };
    (js, ids)
}

/// Two copies of one empty Rust peer's directory under `root`, `connect` and `reconcile`: a
/// peer follows its own account, so the two peers compared must be the same account (same
/// keypair, same account nonce) to send the same frames.
async fn twin_dirs(root: &Path) -> (PathBuf, PathBuf) {
    let (first, second) = (root.join("connect"), root.join("reconcile"));
    let mut peer = RustPeer::start("rust-twin", &first).await;
    peer.ask(json!({"cmd": "whoami"})).await;
    peer.stop().await;
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&first)
        .arg(&second)
        .status()
        .expect("cp runs");
    assert!(copied.success(), "the peer's directory is copied");
    (first, second)
}

/// A recording Rust peer in `mode` on `dir`, wanting the JS author's account and posts.
async fn rust_reader(
    name: &'static str,
    dir: &Path,
    mode: &[&str],
    ids: &Tangles,
) -> (Peer, WireRecord) {
    let (rust, record) = RustPeer::start_recording(name, dir, mode).await;
    let mut rust = Peer::Rust(rust);
    rust.goal(&ids.account, "all").await;
    rust.goal(&ids.post, "all").await;
    (rust, record)
}

/// The streams of a Rust peer in `mode` that dials the JS peer, pulls its posts, is
/// disconnected, and dials again.
async fn rust_dials_twice(
    js: &mut JsPeer,
    ids: &Tangles,
    name: &'static str,
    dir: &Path,
    mode: &[&str],
) -> (SyncStream, SyncStream, bool) {
    let (mut rust, record) = rust_reader(name, dir, mode, ids).await;
    let posts = usize::try_from(POSTS).expect("small");
    rust.dial(&js.address).await;
    rust.wait_for(&ids.post, Count::AtLeast(posts), true, TIMEOUT)
        .await;
    let first = settled_stream(&record, 0).await;

    let closed = js.call("disconnect", json!({})).await;
    assert_eq!(closed["closed"], json!(1));
    js_has_connections(js, 0).await;
    let second_from = record.len();
    rust.dial(&js.address).await;
    js_has_connections(js, 1).await;
    let second = settled_stream(&record, second_from).await;
    let probed_again = mentions_reconcile(&record, second_from);
    js.call("disconnect", json!({})).await;
    js_has_connections(js, 0).await;
    rust.stop().await;
    (first, second, probed_again)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ppppp_dialer_sends_a_js_peer_pzp_syncs_bytes() {
    let root = tempfile::tempdir().expect("temp dir");
    let (plain_dir, extended_dir) = twin_dirs(root.path()).await;
    let (mut js, ids) = js_author("js-dialed", 0x3c).await;
    let (plain_first, plain_second, _) =
        rust_dials_twice(&mut js, &ids, "rust-connect", &plain_dir, WITHOUT_EXTENSION).await;
    let (first, second, probed_again) = rust_dials_twice(
        &mut js,
        &ids,
        "rust-reconcile",
        &extended_dir,
        WITH_EXTENSION,
    )
    .await;
    js.stop().await;

    assert!(
        !plain_first.sent.is_empty() && !plain_first.received.is_empty(),
        "the stream carried frames both ways"
    );
    // The first connection probes `sync.reconcile`; the pzp-sync stream after the refusal
    // is pzp-sync's, under the next request number.
    assert_eq!(
        first.without_request_numbers(),
        plain_first.without_request_numbers(),
        "after the probe, the first connection's pzp-sync stream"
    );
    // The JS peer is remembered as pzp-only: the second connection is pzp-sync's from its
    // first byte, request numbers included.
    assert!(!probed_again, "no probe on the second connection");
    assert_eq!(second, plain_second, "the second connection's sync stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ppppp_responder_answers_a_js_dialer_with_pzp_syncs_bytes() {
    let root = tempfile::tempdir().expect("temp dir");
    let (plain_dir, extended_dir) = twin_dirs(root.path()).await;
    let (mut js, ids) = js_author("js-dialer", 0x3d).await;
    js.call("startSync", json!({})).await;
    let posts = usize::try_from(POSTS).expect("small");
    let mut streams = Vec::new();
    for (name, dir, mode) in [
        ("rust-connect", &plain_dir, WITHOUT_EXTENSION),
        ("rust-reconcile", &extended_dir, WITH_EXTENSION),
    ] {
        let (mut rust, record) = rust_reader(name, dir, mode, &ids).await;
        js.call("connect", json!({"address": rust.address()})).await;
        rust.wait_for(&ids.post, Count::AtLeast(posts), true, TIMEOUT)
            .await;
        streams.push(settled_stream(&record, 0).await);
        assert!(
            !mentions_reconcile(&record, 0),
            "{name} never offers the extension"
        );
        js.call("disconnect", json!({})).await;
        js_has_connections(&mut js, 0).await;
        rust.stop().await;
    }
    js.stop().await;
    assert!(
        !streams[0].sent.is_empty() && !streams[0].received.is_empty(),
        "the stream carried frames both ways"
    );
    assert_eq!(streams[1], streams[0], "the responder's sync stream");
}
