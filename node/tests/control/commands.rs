//! The commands a person runs, against running peers and stopped directories.

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{GUARD, Serve, account, eventually, keys, ok, ppppp, run};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_replicates_a_feed_and_hist_live_shows_new_posts() {
    let work = tempfile::tempdir().expect("temp dir");
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    let init_a = json(&ok(&a, &["init"]).await);
    ok(&b, &["init"]).await;
    let alice = init_a["account"].as_str().expect("account").to_owned();
    for text in ["one", "two", "three"] {
        ok(&a, &["publish", "--text", text]).await;
    }
    let serve_a = Serve::start(&a, &[]).await;
    let serve_b = Serve::start(&b, &[]).await;

    // From a third process: follow, then connect.
    let followed = json(&ok(&b, &["follow", &alice]).await);
    assert_eq!(followed["account"], alice.as_str());
    assert!(followed["msg"].is_string(), "{followed}");
    let goals: Vec<(String, String)> = followed["goals"]
        .as_array()
        .expect("goals")
        .iter()
        .map(|goal| (goal["domain"].to_string(), goal["goal"].to_string()))
        .collect();
    assert_eq!(goals.len(), 3, "{followed}");
    let connected = json(&ok(&b, &["connect", &serve_a.address]).await);
    assert_eq!(connected["state"], "connected", "{connected}");
    assert_eq!(connected["key"], init_a["key"]);

    let wanted = keys(&ok(&a, &["hist", &alice]).await);
    assert_eq!(wanted.len(), 4, "moot and three posts");
    eventually("b holds alice's feed", || async {
        keys(&ok(&b, &["hist", &alice]).await) == wanted
    })
    .await;

    // Live: what alice publishes now shows up in bob's `hist --live`.
    let mut live = ppppp()
        .args(["hist", &alice, "--live", "--dir"])
        .arg(&b)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("hist --live runs");
    let mut lines = BufReader::new(live.stdout.take().expect("piped")).lines();
    for key in &wanted {
        assert_eq!(&next_key(&mut lines).await, key);
    }
    let post = ok(&a, &["publish", "--text", "live"]).await;
    assert_eq!(next_key(&mut lines).await, post.trim());
    live.kill().await.expect("stopped");

    // Peers on both ends, with traffic and a sync session.
    let peers_b: Vec<Value> = ok(&b, &["peers"]).await.lines().map(json).collect();
    assert_eq!(peers_b.len(), 1, "{peers_b:?}");
    assert_eq!(peers_b[0]["direction"], "out");
    assert_eq!(peers_b[0]["state"], "connected");
    assert_eq!(peers_b[0]["key"], init_a["key"]);
    assert!(peers_b[0]["bytesIn"].as_u64() > Some(0), "{peers_b:?}");
    assert!(peers_b[0]["since"].is_u64());
    assert!(
        peers_b[0]["sync"]["received"].as_u64() >= Some(5),
        "{peers_b:?}"
    );
    let peers_a: Vec<Value> = ok(&a, &["peers"]).await.lines().map(json).collect();
    assert_eq!(peers_a.len(), 1);
    assert_eq!(peers_a[0]["direction"], "in");
    let status = json(&ok(&b, &["status"]).await);
    assert_eq!(status["connections"], 1);
    assert_eq!(status["follows"], serde_json::json!([alice]));

    // Unfollow: the goals on alice's tangles end.
    let unfollowed = json(&ok(&b, &["unfollow", &alice]).await);
    assert!(
        unfollowed["goals"]
            .as_array()
            .expect("goals")
            .iter()
            .all(|goal| goal["goal"] == "none"),
        "{unfollowed}"
    );
    let status = json(&ok(&b, &["status"]).await);
    assert_eq!(status["follows"], serde_json::json!([]));
    let tangles: Vec<&Value> = status["goals"]
        .as_array()
        .expect("goals")
        .iter()
        .map(|goal| &goal["tangle"])
        .collect();
    assert!(!tangles.contains(&&Value::from(alice.as_str())), "{status}");

    assert!(serve_a.sigterm().await.success());
    assert!(serve_b.sigterm().await.success());
}

/// The key of the next line of a stream.
async fn next_key(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
    let line = tokio::time::timeout(GUARD, lines.next_line())
        .await
        .expect("a line in time")
        .expect("readable")
        .expect("a line");
    json(&line)["key"].as_str().expect("key").to_owned()
}

/// Every read command, byte for byte, while the peer runs and after it stopped.
async fn reads(dir: &std::path::Path, alice: &str, bob: &str) -> Vec<(String, String)> {
    let commands: [&[&str]; 10] = [
        &["feed"],
        &["log"],
        &["log", "--limit", "2"],
        &["feed", "--reverse"],
        &["hist", alice],
        &["hist", bob],
        &["hist", bob, "post", "--reverse", "--limit", "1"],
        &["hist", bob, "set_v1__follows"],
        &["status"],
        &["peers"],
    ];
    let mut outputs = Vec::new();
    for args in commands {
        let output = run(dir, args).await;
        assert!(output.status.success(), "{args:?}");
        assert!(output.stderr.is_empty(), "{args:?}: {:?}", output.stderr);
        outputs.push((
            args.join(" "),
            String::from_utf8(output.stdout).expect("UTF-8"),
        ));
    }
    outputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_prints_the_same_running_or_stopped() {
    let work = tempfile::tempdir().expect("temp dir");
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    ok(&a, &["init"]).await;
    ok(&b, &["init"]).await;
    let (alice, bob) = (account(&a).await, account(&b).await);
    // Bob's msgs reach alice's store through `db add`; alice follows bob while stopped.
    ok(&b, &["publish", "--text", "from bob"]).await;
    ok(&b, &["publish", "--domain", "note", "--data", "{\"n\":1}"]).await;
    ok(&b, &["follow", &alice]).await;
    let mut add = ppppp()
        .args(["db", "add", "--dir"])
        .arg(&a)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("db add runs");
    let log = std::process::Command::new(env!("CARGO_BIN_EXE_ppppp"))
        .args(["db", "log", "--dir"])
        .arg(&b)
        .output()
        .expect("db log");
    tokio::io::AsyncWriteExt::write_all(&mut add.stdin.take().expect("piped"), &log.stdout)
        .await
        .expect("fed");
    assert!(add.wait().await.expect("waited").success());
    let followed = json(&ok(&a, &["follow", &bob, "--goal", "newest-5"]).await);
    let offline_post = ok(&a, &["publish", "--text", "offline"]).await;

    let serve = Serve::start(&a, &[]).await;
    let online_post = ok(&a, &["publish", "--text", "online"]).await;
    for post in [&offline_post, &online_post] {
        assert!(
            post.ends_with('\n') && post.lines().count() == 1,
            "{post:?}"
        );
        proto::ids::MsgId::parse(post.trim()).expect("a msg ID");
    }
    let status = json(&ok(&a, &["status"]).await);
    // The goals follow set while stopped are the running peer's goals.
    for goal in followed["goals"].as_array().expect("goals") {
        let entry = serde_json::json!({"tangle": goal["tangle"], "goal": goal["goal"]});
        assert!(
            status["goals"].as_array().expect("goals").contains(&entry),
            "{entry} in {status}"
        );
    }
    let who_running = json(&ok(&a, &["whoami"]).await);
    let running = reads(&a, &alice, &bob).await;
    assert!(serve.sigterm().await.success());
    let who_stopped = json(&ok(&a, &["whoami"]).await);
    let stopped = reads(&a, &alice, &bob).await;
    for ((command, when_running), (_, when_stopped)) in running.iter().zip(&stopped) {
        assert_eq!(
            when_running, when_stopped,
            "`ppppp {command}` differs running / stopped"
        );
    }
    assert_eq!(who_running["account"], who_stopped["account"]);
    assert_eq!(who_running["key"], who_stopped["key"]);
    let address = who_running["address"]
        .as_str()
        .expect("address while running");
    assert!(
        address.starts_with("net:127.0.0.1:")
            && address.ends_with(&format!(
                "~shse:{}",
                who_running["key"].as_str().expect("key")
            )),
        "{address}"
    );
    assert!(who_stopped["address"].is_null());
    // The reads are not trivially equal: they hold what was published.
    let log = &running[1].1;
    assert!(log.contains("from bob") && log.contains("online"), "{log}");
    assert_eq!(keys(&running[6].1).len(), 1);
    assert_eq!(json(&running[8].1)["follows"], serde_json::json!([bob]));
    assert!(running[9].1.is_empty(), "no connections");

    // Goals persist across restarts: a follow made while running is there after one.
    let serve = Serve::start(&a, &[]).await;
    ok(&a, &["follow", &bob, "--goal", "newest-2"]).await;
    assert!(serve.sigterm().await.success());
    let serve = Serve::start(&a, &[]).await;
    let status = json(&ok(&a, &["status"]).await);
    let bobs_feed = proto::msg::feed_id(&proto::ids::MsgId::parse(&bob).expect("ID"), "post");
    let entry = serde_json::json!({"tangle": bobs_feed.to_string(), "goal": "newest-2"});
    assert!(
        status["goals"].as_array().expect("goals").contains(&entry),
        "{status}"
    );
    assert!(serve.sigterm().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_is_publish_order_where_the_log_is_not() {
    let work = tempfile::tempdir().expect("temp dir");
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    ok(&a, &["init"]).await;
    ok(&b, &["init"]).await;
    let alice = account(&a).await;
    for index in 0..6 {
        ok(&a, &["publish", "--text", &format!("post {index}")]).await;
    }
    let serve_a = Serve::start(&a, &[]).await;
    let serve_b = Serve::start(&b, &["--connect", &serve_a.address]).await;
    // Newest two first (the older ones arrive as a dataless trail), then all: the older
    // posts' data is received last.
    ok(&b, &["follow", &alice, "--goal", "newest-2"]).await;
    let full = keys(&ok(&a, &["hist", &alice]).await);
    let with_data = |hist: &str| {
        hist.lines()
            .filter(|line| !json(line)["value"]["data"].is_null())
            .count()
    };
    eventually("b has the newest two", || async {
        with_data(&ok(&b, &["hist", &alice]).await) == 2
    })
    .await;
    ok(&b, &["follow", &alice, "--goal", "all"]).await;
    eventually("b has all six", || async {
        with_data(&ok(&b, &["hist", &alice]).await) == 6
    })
    .await;
    let feed = keys(&ok(&b, &["feed"]).await);
    let log = keys(&ok(&b, &["log"]).await);
    let in_feed: Vec<&String> = feed.iter().filter(|key| full.contains(key)).collect();
    let in_log: Vec<&String> = log.iter().filter(|key| full.contains(key)).collect();
    assert_eq!(
        in_feed,
        full.iter().collect::<Vec<_>>(),
        "feed: alice's posts in publish order"
    );
    assert_ne!(in_log, in_feed, "the log is receive order: {in_log:?}");
    assert!(serve_b.sigterm().await.success());
    assert!(serve_a.sigterm().await.success());
}
