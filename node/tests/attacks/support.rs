//! A victim `ppppp serve` process, its memory as the kernel sees it, attackers that complete
//! the SHSE handshake with throwaway keys, and a legitimate in-process peer.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use node::net::TokioNet;
use node::peer::{self, AnyStore, DialTarget, NodeConfig, NodeHandle, Timers};
use node::transport::PublicKey;
use node::transport::caps::NetworkKey;
use node::transport::muxrpc::io::FrameReader;
use node::transport::muxrpc::{Body, CallId, CallType, Event, Permissions, Rpc};
use node::transport::secretstream::BoxStream;
use node::transport::shse::Identity;
use node::transport::shse::io::{self as shse_io, Config};
use proto::goals::Goal;
use proto::ids::{AccountId, MsgId, PubKey, TangleId};
use proto::keys::Keypair;
use proto::store::MemStore;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// Longest wait for a process to start or answer, and for a legitimate peer to sync. Generous:
/// the machine is shared and noisy; a hang fails, a slow run does not.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The `ppppp` program under test.
pub fn ppppp() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ppppp"));
    command.kill_on_drop(true);
    command
}

/// Runs `ppppp ARGS` to completion; its exit status, standard output and error.
pub async fn run(args: &[&str]) -> (bool, String, String) {
    let output = ppppp()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("ppppp runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A peer directory with an account and one post, made with `ppppp init` and `ppppp publish`.
pub struct PeerDir {
    pub root: tempfile::TempDir,
    pub account: AccountId,
    pub feed: TangleId,
}

impl PeerDir {
    pub async fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().to_str().expect("UTF-8 path").to_owned();
        let (ok, _, err) = run(&["init", "--dir", &dir]).await;
        assert!(ok, "init: {err}");
        let (ok, out, err) = run(&[
            "publish",
            "--dir",
            &dir,
            "--domain",
            "post",
            "--data",
            r#"{"text":"hello"}"#,
        ])
        .await;
        assert!(ok, "publish: {err}");
        let post = MsgId::parse(out.trim()).expect("a msg ID");
        let store = node::store::DiskStore::open_read_only(
            root.path().join("db"),
            &node::store::Options::default(),
        )
        .expect("store");
        let msg = proto::store::Store::get(&store, &post)
            .expect("read")
            .expect("stored")
            .msg;
        let account = msg
            .metadata
            .account
            .id()
            .expect("a feed msg has an account");
        Self {
            feed: proto::msg::feed_id(&account, "post"),
            account,
            root,
        }
    }

    /// A peer directory whose store holds another account's feed of `posts` posts of about
    /// `bytes` bytes each (made in memory, added with `ppppp db add`).
    pub async fn with_feed(posts: usize, bytes: usize) -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = arg(root.path());
        let (ok, _, err) = run(&["init", "--dir", &dir]).await;
        assert!(ok, "init: {err}");
        let keypair = Keypair::from_seed(&[0xfe; 32]);
        let mut db = proto::db::Db::new(MemStore::new());
        let account = db
            .create_account(&keypair, "account", "feed")
            .expect("account");
        for index in 0..posts {
            let text = format!("{index} {}", "x".repeat(bytes));
            db.publish(
                &keypair,
                &account,
                "post",
                serde_json::json!({ "text": text }),
                &[],
            )
            .expect("post");
        }
        let mut lines = String::new();
        let mut visit = |record: &proto::store::Record| {
            lines.push_str(&record.msg.to_json());
            lines.push('\n');
            std::ops::ControlFlow::Continue(())
        };
        let Ok(()) = proto::store::Store::scan(db.store(), &mut visit);
        let file = root.path().join("feed.jsonl");
        std::fs::write(&file, lines).expect("write");
        let (ok, out, err) = run(&["db", "add", "--dir", &dir, &arg(&file)]).await;
        assert!(ok && !out.contains("rejected"), "db add: {out} {err}");
        Self {
            feed: proto::msg::feed_id(&account, "post"),
            account,
            root,
        }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }
}

/// A running `ppppp serve` on 127.0.0.1.
pub struct Victim {
    pub child: Child,
    /// `host:port`.
    pub socket: String,
    pub key: PubKey,
    /// Keeps the control channel open (closing it is fine too, but explicit is clearer).
    _stdin: tokio::process::ChildStdin,
    pub stderr: tokio::task::JoinHandle<String>,
}

impl Victim {
    /// `ppppp serve --dir DIR --listen 127.0.0.1:0 EXTRA...`.
    pub async fn start(dir: &Path, extra: &[&str]) -> Self {
        let mut child = ppppp()
            .arg("serve")
            .arg("--dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ppppp serve starts");
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut stderr = BufReader::new(child.stderr.take().expect("piped")).lines();
        let stderr = tokio::spawn(async move {
            let mut all = String::new();
            while let Ok(Some(line)) = stderr.next_line().await {
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let first = tokio::time::timeout(PATIENCE, stdout.next_line())
            .await
            .expect("a first line in time")
            .expect("readable")
            .expect("a line");
        // Later lines (control replies) are not read; keep the pipe drained.
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        let address = first
            .strip_prefix("listening net:")
            .unwrap_or_else(|| panic!("first line {first:?}"));
        let (socket, key) = address.split_once("~shse:").expect("an SHSE address");
        Self {
            socket: socket.to_owned(),
            key: PubKey::parse(key).expect("a key"),
            child,
            _stdin: stdin,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmRSS:").expect("the victim is running")
    }

    pub fn target(&self) -> DialTarget {
        DialTarget {
            address: self.socket.clone(),
            key: Some(self.key),
        }
    }

    /// Stops the process (SIGTERM); its standard error.
    pub async fn stop(mut self) -> String {
        let pid = self.pid();
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let exited = tokio::time::timeout(PATIENCE, self.child.wait()).await;
        assert!(exited.is_ok(), "ppppp serve did not exit on SIGTERM");
        self.stderr.await.unwrap_or_default()
    }
}

/// A `kB` field of `/proc/PID/status`; `None` once the process has exited.
pub fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Samples a process's resident memory every 20 ms until stopped; the highest value seen.
pub struct RssSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut peak = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let Some(rss) = status_field(pid, "VmRSS:") else {
                    break;
                };
                peak = peak.max(rss);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        });
        Self { stop, task }
    }

    /// The highest resident memory seen, in KiB.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.expect("sampler")
    }
}

/// A peer that completed the handshake with a throwaway key and speaks muxrpc by hand.
pub struct Attacker {
    pub rpc: Rpc,
    pub reader: FrameReader<ReadHalf<BoxStream<TcpStream>>>,
    pub writer: WriteHalf<BoxStream<TcpStream>>,
}

impl Attacker {
    /// Connects to `victim` as a fresh identity drawn from `seed`.
    pub async fn connect(victim: &DialTarget, seed: u64) -> std::io::Result<Self> {
        let stream = TcpStream::connect(&victim.address).await?;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut identity_seed = [0u8; 32];
        rand_chacha::rand_core::Rng::fill_bytes(&mut rng, &mut identity_seed);
        let config = Config {
            network_key: NetworkKey::default(),
            identity: Identity::from_seed(&identity_seed),
            timeout: PATIENCE,
        };
        let server = PublicKey(victim.key.expect("an SHSE target").to_bytes());
        let (secured, _) = shse_io::connect(stream, &config, server, None, &mut rng)
            .await
            .map_err(std::io::Error::other)?;
        let (read, writer) = tokio::io::split(secured);
        Ok(Self {
            rpc: Rpc::new(Permissions::anonymous()),
            reader: FrameReader::new(read),
            writer,
        })
    }

    /// Writes whatever the muxrpc machine queued.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        self.rpc.encode_transmit(&mut bytes);
        if !bytes.is_empty() {
            self.writer.write_all(&bytes).await?;
            self.writer.flush().await?;
        }
        Ok(())
    }

    /// Writes bytes as they are (frames made by hand).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await
    }

    /// Opens `sync.connect`.
    pub async fn open_sync(&mut self) -> std::io::Result<CallId> {
        let call = self
            .rpc
            .call(&["sync", "connect"], &[], CallType::Duplex)
            .expect("call");
        self.flush().await?;
        Ok(call)
    }

    /// Queues one JSON object on a stream (sent by the next [`Attacker::flush`]).
    pub fn queue_json(&mut self, call: CallId, value: &Value) {
        self.rpc
            .send(call, Body::Json(value.to_string().into_bytes()))
            .expect("send");
    }

    /// The next event from the victim; `None` when the connection ends.
    pub async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.rpc.poll_event() {
                return Some(event);
            }
            match self.reader.next_frame().await {
                Ok(Some(frame)) => {
                    if self.rpc.handle_frame(frame).is_err() {
                        return None;
                    }
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

/// A well-behaved in-process peer (memory store) that dials `victim` and wants `account` and
/// `feed`.
pub async fn legit_peer(victim: &DialTarget, account: AccountId, feed: TangleId) -> NodeHandle {
    let mut config = NodeConfig::new(Keypair::from_seed(&[0x42; 32]), 0x42);
    config.dial = vec![victim.clone()];
    config.goals = vec![(account, Goal::All), (feed, Goal::All)];
    config.timers = Timers {
        keepalive_interval: Duration::from_millis(500),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        ..Timers::default()
    };
    peer::run(config, Arc::new(TokioNet), AnyStore::new(MemStore::new()))
        .await
        .expect("the legitimate peer starts")
}

/// Waits (up to [`PATIENCE`]) until `peer` holds at least `count` msgs of `feed` (the root
/// counts); whether it did.
pub async fn synced(peer: &NodeHandle, feed: TangleId, count: usize) -> bool {
    eventually(PATIENCE, || async {
        peer.tangle_size(feed)
            .await
            .is_ok_and(|(held, _)| held >= count)
    })
    .await
}

/// Polls `check` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A path as a `&str` argument.
pub fn arg(path: &Path) -> String {
    path.to_str().expect("UTF-8 path").to_owned()
}
