//! Finding 5: lockout. `connections_max` (64) counted inbound and outbound together from
//! accept, with no limit per address or key: about 100 silent TCP connects a second kept a
//! legitimate peer out for a whole 55 s test, and one `ppppp serve` given the same
//! `--connect` 64 times held every slot. Now inbound and outbound have their own caps, one
//! address holds at most `per_address_max` inbound connections, handshake slots are capped
//! and cycled (the oldest handshake goes when a new connection needs its slot), one key
//! holds at most `per_key_max` connections, duplicate targets are one target, and an idle
//! connection yields its slot to a waiting one.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

use crate::support::{PATIENCE, PeerDir, RssSampler, Victim, arg, legit_peer, ppppp, synced};

/// Silent connects per second.
const FLOOD_PER_SECOND: u64 = 100;

/// One TCP connect from `source` (any 127.0.0.0/8 address is loopback) that never sends.
async fn silent_connect(source: [u8; 4], victim: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::from((source, 0))).ok()?;
    tokio::time::timeout(Duration::from_secs(2), socket.connect(victim))
        .await
        .ok()?
        .ok()
}

/// Connects silently at [`FLOOD_PER_SECOND`] from `sources` in turn, holding every
/// connection open, until `stop` flips (or [`PATIENCE`] passes); how many connected.
async fn flood(
    victim: SocketAddr,
    sources: Vec<[u8; 4]>,
    mut stop: watch::Receiver<bool>,
) -> usize {
    let mut held = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(1000 / FLOOD_PER_SECOND));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut index = 0;
    while !*stop.borrow() && tokio::time::Instant::now() < deadline {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = ticker.tick() => {
                let source = sources[index % sources.len()];
                index += 1;
                if let Some(stream) = silent_connect(source, victim).await {
                    held.push(stream);
                }
            }
        }
    }
    held.len()
}

/// Handshakes the flood may hold: `Limits::handshakes_max` (16), plus a few it already
/// evicted whose actors have not stopped yet (listed until they do).
const HANDSHAKES_HELD_MAX: usize = 16 + 8;

/// Inbound connections of the victim in `dir` still in their handshake (`ppppp peers`).
async fn handshaking(dir: &std::path::Path) -> usize {
    peers(dir)
        .await
        .iter()
        .filter(|row| row["direction"] == "in" && row["state"] == "handshaking")
        .count()
}

/// Runs a flood from `sources` while a fresh legitimate peer dials the victim: whether the
/// peer synced before the flood stopped (the flood runs until it did, or [`PATIENCE`]),
/// and the most handshaking connections the victim held meanwhile (sampled).
async fn legit_peer_syncs_during(
    victim: &Victim,
    dir: &PeerDir,
    sources: Vec<[u8; 4]>,
) -> (bool, usize) {
    let address: SocketAddr = victim.socket.parse().expect("a socket address");
    let (stop, stopped) = watch::channel(false);
    let attack = tokio::spawn(flood(address, sources, stopped));
    // Let the flood fill what it can first (200 connects), sampling what it holds.
    let mut held_max = 0;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        held_max = held_max.max(handshaking(dir.path()).await);
    }
    let friend = legit_peer(&victim.target(), dir.account, dir.feed).await;
    let synced = synced(&friend, dir.feed, 2).await;
    let still_flooding = !attack.is_finished();
    held_max = held_max.max(handshaking(dir.path()).await);
    let _ = stop.send(true);
    let connects = attack.await.expect("flood");
    eprintln!(
        "{connects} silent connects, at most {held_max} held in handshake; \
         legitimate peer synced: {synced}"
    );
    friend.shutdown().await.expect("shutdown");
    assert!(connects > 100, "the flood ran ({connects} connects)");
    (synced && still_flooding, held_max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connect_floods_do_not_lock_a_legitimate_peer_out() {
    let dir = PeerDir::new().await;
    let victim = Victim::start(dir.path(), &[]).await;
    let baseline = victim.rss_kib();
    let sampler = RssSampler::start(victim.pid());
    // From one address (the legitimate peer dials from 127.0.0.1), then from fifty.
    let many = (10..60).map(|last| [127, 0, 0, last]).collect();
    for (sources, what) in [
        (vec![[127, 0, 0, 7]], "one address"),
        (many, "fifty addresses"),
    ] {
        let (synced, held) = legit_peer_syncs_during(&victim, &dir, sources).await;
        assert!(synced, "locked out by a flood from {what}");
        assert!(
            held <= HANDSHAKES_HELD_MAX,
            "a flood from {what} held {held} connections in their handshake"
        );
    }
    // And after.
    let friend = legit_peer(&victim.target(), dir.account, dir.feed).await;
    assert!(
        synced(&friend, dir.feed, 2).await,
        "no sync after the floods"
    );
    friend.shutdown().await.expect("shutdown");
    let peak = sampler.finish().await;
    eprintln!("RSS baseline {baseline} KiB, peak {peak} KiB");
    assert!(
        peak.saturating_sub(baseline) < 64 * 1024,
        "RSS went from {baseline} to {peak} KiB"
    );
    let stderr = victim.stop().await;
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `ppppp peers --dir DIR` of a running peer: one JSON line per connection or target.
async fn peers(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let output = ppppp()
        .args(["peers", "--dir", &arg(dir)])
        .output()
        .await
        .expect("ppppp peers runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_given_the_same_connect_sixty_four_times_holds_one_slot() {
    let dir = PeerDir::new().await;
    let victim = Victim::start(dir.path(), &[]).await;
    let address = format!("net:{}~shse:{}", victim.socket, victim.key);
    let mut args = Vec::new();
    for _ in 0..64 {
        args.extend(["--connect", address.as_str()]);
    }
    let other = tempfile::tempdir().expect("temp dir");
    let greedy = Victim::start(other.path(), &args).await;
    let friend = legit_peer(&victim.target(), dir.account, dir.feed).await;
    assert!(
        synced(&friend, dir.feed, 2).await,
        "locked out by a peer that listed us 64 times"
    );
    // The greedy peer keeps one target, and the victim sees one connection from it.
    let targets = peers(other.path()).await;
    assert_eq!(targets.len(), 1, "{targets:?}");
    let connections = peers(dir.path()).await;
    let from_greedy = connections
        .iter()
        .filter(|row| row["key"] == serde_json::json!(greedy.key.to_string()))
        .count();
    assert!(from_greedy <= 1, "{connections:?}");
    friend.shutdown().await.expect("shutdown");
    greedy.stop().await;
    victim.stop().await;
}
