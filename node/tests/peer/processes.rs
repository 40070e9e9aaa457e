//! Three real `ppppp serve` processes on 127.0.0.1 (issue: the peer on real sockets): msgs
//! published on one reach the others per their goals, before and while connected, and after
//! one of them restarts (gracefully, and after SIGKILL).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Longest wait for one reply line.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `ppppp serve`.
struct Serve {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    address: String,
}

impl Serve {
    async fn start(dir: &Path, connect: &[&str], goals: &[String]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ppppp"));
        command
            .arg("serve")
            .arg("--dir")
            .arg(dir)
            .arg("--listen")
            .arg("127.0.0.1:0");
        for address in connect {
            command.arg("--connect").arg(address);
        }
        for goal in goals {
            command.arg("--goal").arg(goal);
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("ppppp serve starts");
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let first = tokio::time::timeout(REPLY_TIMEOUT, stdout.next_line())
            .await
            .expect("a first line in time")
            .expect("readable")
            .expect("a line");
        let address = first
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("first line {first:?}"))
            .to_owned();
        assert!(
            address.starts_with("net:127.0.0.1:") && address.contains("~shse:"),
            "{address}"
        );
        Self {
            child,
            stdin,
            stdout,
            address,
        }
    }

    async fn ask(&mut self, request: Value) -> Value {
        self.stdin
            .write_all(format!("{request}\n").as_bytes())
            .await
            .expect("write");
        let line = tokio::time::timeout(REPLY_TIMEOUT, self.stdout.next_line())
            .await
            .expect("a reply in time")
            .expect("readable")
            .expect("a line");
        let reply: Value = serde_json::from_str(&line).expect("JSON reply");
        assert_eq!(reply["ok"], json!(true), "{request} → {reply}");
        reply
    }

    async fn publish(&mut self, text: &str) -> String {
        let reply = self
            .ask(json!({"cmd": "publish", "domain": "post", "data": {"text": text}}))
            .await;
        reply["msg"].as_str().expect("msg id").to_owned()
    }

    /// `(msg id, has data)` of each msg of `tangle`, topological.
    async fn msgs(&mut self, tangle: &str) -> Vec<(String, bool)> {
        let reply = self.ask(json!({"cmd": "msgs", "tangle": tangle})).await;
        reply["msgs"]
            .as_array()
            .expect("msgs")
            .iter()
            .map(|msg| {
                let id = proto::msg::decode(msg).expect("a msg").id().to_string();
                (id, !msg["data"].is_null())
            })
            .collect()
    }

    async fn sigterm(mut self) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = tokio::time::timeout(REPLY_TIMEOUT, self.child.wait())
            .await
            .expect("exits in time")
            .expect("waitable");
        assert!(exit.success(), "SIGTERM should exit 0, got {exit}");
    }

    async fn sigkill(mut self) {
        self.child.kill().await.expect("killed");
    }
}

/// Polls until `check` holds for `serve`'s view of a tangle.
async fn wait_for(
    serve: &mut Serve,
    tangle: &str,
    check: impl Fn(&[(String, bool)]) -> bool,
) -> Vec<(String, bool)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let msgs = serve.msgs(tangle).await;
        if check(&msgs) {
            return msgs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; last view: {msgs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn dataful(msgs: &[(String, bool)]) -> Vec<&str> {
    msgs.iter()
        .filter(|(_, data)| *data)
        .map(|(id, _)| id.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_replicate_per_goals_and_survive_restarts() {
    let dirs = tempfile::tempdir().expect("temp dir");
    let (dir_a, dir_b, dir_c) = (
        dirs.path().join("a"),
        dirs.path().join("b"),
        dirs.path().join("c"),
    );

    let mut alice = Serve::start(&dir_a, &[], &[]).await;
    let mut posts = Vec::new();
    for index in 0..10 {
        posts.push(alice.publish(&format!("before #{index}")).await);
    }
    let who = alice.ask(json!({"cmd": "whoami"})).await;
    let account = who["account"].as_str().expect("account").to_owned();
    let feed = proto::msg::feed_id(&proto::ids::AccountId::parse(&account).expect("ID"), "post")
        .to_string();

    // Bob wants all of alice's feed; carol, who only knows bob, wants its newest 3.
    let bob_goals = [format!("{account}=all"), format!("{feed}=all")];
    let mut bob = Serve::start(&dir_b, &[&alice.address], &bob_goals).await;
    let carol_goals = [format!("{account}=all"), format!("{feed}=newest-3")];
    let mut carol = Serve::start(&dir_c, &[&bob.address], &carol_goals).await;

    // The moot (root) has no data; every post does.
    let view = wait_for(&mut bob, &feed, |msgs| dataful(msgs).len() == 10).await;
    assert_eq!(
        view.iter()
            .skip(1)
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>(),
        posts,
        "bob holds the feed in order"
    );
    let view = wait_for(&mut carol, &feed, |msgs| {
        dataful(msgs) == posts[7..].iter().map(String::as_str).collect::<Vec<_>>()
    })
    .await;
    assert!(
        view.len() > 3,
        "carol keeps the trail (dataless) to the root: {view:?}"
    );

    // Realtime: published while everyone is connected.
    for index in 0..5 {
        posts.push(alice.publish(&format!("live #{index}")).await);
    }
    wait_for(&mut bob, &feed, |msgs| dataful(msgs).len() == 15).await;
    wait_for(&mut carol, &feed, |msgs| {
        dataful(msgs) == posts[12..].iter().map(String::as_str).collect::<Vec<_>>()
    })
    .await;

    // Bob restarts gracefully; what he had is still there, and he catches up on what he missed.
    bob.sigterm().await;
    posts.push(alice.publish("while bob was down").await);
    let mut bob = Serve::start(&dir_b, &[&alice.address], &bob_goals).await;
    wait_for(&mut bob, &feed, |msgs| dataful(msgs).len() == 16).await;

    // Bob is killed (SIGKILL) and restarted: nothing he acknowledged is lost.
    let before_kill = bob.msgs(&feed).await;
    bob.sigkill().await;
    posts.push(alice.publish("while bob was dead").await);
    let mut bob = Serve::start(&dir_b, &[&alice.address], &bob_goals).await;
    let after = bob.msgs(&feed).await;
    for entry in &before_kill {
        assert!(after.contains(entry), "lost {entry:?} across SIGKILL");
    }
    let view = wait_for(&mut bob, &feed, |msgs| dataful(msgs).len() == 17).await;
    assert_eq!(
        view.iter()
            .skip(1)
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>(),
        posts
    );

    for serve in [alice, bob, carol] {
        serve.sigterm().await;
    }
}

/// The relay hole, on real processes and made deterministic: C connects to B while B is
/// empty, and only then does B connect to A, which holds the whole feed. B must serve C what
/// it fetches (pzp-sync 1.0.4 never does: C stays empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_empty_when_its_downstream_connected_serves_it() {
    const POSTS: usize = 300;
    let dirs = tempfile::tempdir().expect("temp dir");
    let mut alice = Serve::start(&dirs.path().join("a"), &[], &[]).await;
    for index in 0..POSTS {
        alice.publish(&format!("burst #{index}")).await;
    }
    let who = alice.ask(json!({"cmd": "whoami"})).await;
    let account = who["account"].as_str().expect("account").to_owned();
    let feed = proto::msg::feed_id(&proto::ids::AccountId::parse(&account).expect("ID"), "post")
        .to_string();
    let goals = [format!("{account}=all"), format!("{feed}=all")];

    let mut bob = Serve::start(&dirs.path().join("b"), &[], &goals).await;
    let mut carol = Serve::start(&dirs.path().join("c"), &[&bob.address], &goals).await;
    let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
    while bob.ask(json!({"cmd": "connections"})).await["count"] != json!(1) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "carol never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let carol's exchange with the empty bob end (it takes a few ms on loopback; if it has
    // not, bob's commits race it, a case the sync must handle as well).
    tokio::time::sleep(Duration::from_millis(300)).await;
    bob.ask(json!({"cmd": "connect", "address": alice.address, "wait": true}))
        .await;
    wait_for(&mut bob, &feed, |msgs| dataful(msgs).len() == POSTS).await;
    wait_for(&mut carol, &feed, |msgs| dataful(msgs).len() == POSTS).await;
    for serve in [alice, bob, carol] {
        serve.sigterm().await;
    }
}
