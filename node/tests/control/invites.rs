//! Account-add invites between two `ppppp serve` peers through a `ppppp hub`: the invitee
//! becomes a device of the inviter's account (and stays one across restarts), its posts are
//! the inviter's account's, and the spent promise is refused to anyone else.

use std::process::Stdio;

use serde_json::Value;

use crate::support::{GUARD, Serve, account, eventually, fails, keys, ok, ppppp, run};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

/// `ppppp hub` in `dir`, admitting anyone (the third peer must reach the inviter too).
async fn open_hub(dir: &std::path::Path) -> Serve {
    let mut command = ppppp();
    command
        .arg("hub")
        .arg("--dir")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0", "--open"])
        .stderr(Stdio::inherit());
    Serve::spawn(command).await
}

/// `invite create --promise account-add`, once the peer attends its hub.
async fn account_add_invite(dir: &std::path::Path) -> String {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let output = run(dir, &["invite", "create", "--promise", "account-add"]).await;
        if output.status.success() {
            let created = json(&String::from_utf8_lossy(&output.stdout));
            return created["uri"].as_str().expect("uri").to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no invite: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_joins_an_account_from_an_invite_and_posts_in_it_for_good() {
    let work = tempfile::tempdir().expect("temp dir");
    let (a, b, c) = (
        work.path().join("a"),
        work.path().join("b"),
        work.path().join("c"),
    );
    let hub = open_hub(&work.path().join("hub")).await;
    for dir in [&a, &b, &c] {
        ok(dir, &["init"]).await;
    }
    let alice = account(&a).await;
    let former = account(&b).await;
    let serve_a = Serve::start(&a, &["--hub", &hub.address]).await;
    let serve_b = Serve::start(&b, &["--hub", &hub.address]).await;
    let uri = account_add_invite(&a).await;

    let used = json(&ok(&b, &["invite", "use", &uri]).await);
    let done = used["done"].as_array().expect("done");
    assert_eq!(
        done.last()
            .and_then(|step| step["promise.account-add"].as_str()),
        Some(alice.as_str()),
        "{used}"
    );
    assert_eq!(account(&b).await, alice, "b is a device of alice's account");

    // b's post is in alice's account, and alice takes it as her own account's.
    let post = ok(&b, &["publish", "--text", "from the new device"]).await;
    let post = post.trim().to_owned();
    eventually("a holds b's post in alice's feed", || async {
        keys(&ok(&a, &["hist", &alice]).await).contains(&post)
    })
    .await;
    assert!(!keys(&ok(&b, &["hist", &former]).await).contains(&post));

    // For good: stopped and restarted, b is still alice's device, and still posts there.
    assert!(serve_b.sigterm().await.success());
    assert_eq!(
        account(&b).await,
        alice,
        "a stopped b answers from its directory"
    );
    let serve_b = Serve::start(&b, &["--hub", &hub.address]).await;
    assert_eq!(account(&b).await, alice);
    let again = ok(&b, &["publish", "--text", "after a restart"]).await;
    let again = again.trim().to_owned();
    eventually("a holds b's post made after its restart", || async {
        keys(&ok(&a, &["hist", &alice]).await).contains(&again)
    })
    .await;
    let used_twice = fails(&b, &["invite", "use", &uri]).await;
    assert!(used_twice.contains("already a device"), "{used_twice}");

    // The same invite in a third peer's hands: the promise is spent.
    let serve_c = Serve::start(&c, &["--hub", &hub.address]).await;
    let replayed = fails(&c, &["invite", "use", &uri]).await;
    assert!(
        replayed.contains("the inviter refused: Invalid token"),
        "{replayed}"
    );
    assert_ne!(account(&c).await, alice);
    for peer in [serve_a, serve_b, serve_c, hub] {
        assert!(peer.sigterm().await.success());
    }
}
