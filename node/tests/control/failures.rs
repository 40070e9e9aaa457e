//! Issue 12, findings 6 and 8: a node that can no longer write takes its process down with
//! a clear message (so a supervisor restarts it), and a bad line on the control channel is
//! answered without ending the channel.

use std::process::Stdio;

use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::support::{GUARD, Serve, keys, ok, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_write_exits_non_zero_and_loses_nothing_acknowledged() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("a");
    ok(&dir, &["init"]).await;
    let account = crate::support::account(&dir).await;
    // Files may not grow past 4 KiB (512-byte blocks): the log's next batches fail with
    // EFBIG, a write failure like a full disk's. SIGXFSZ is ignored so the write returns an
    // error instead of killing the process (an ignored signal stays ignored across exec).
    let mut serve = crate::support::ppppp();
    serve
        .arg("serve")
        .arg("--dir")
        .arg(&dir)
        .args(["--listen", "127.0.0.1:0"]);
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 8; exec \"$0\" \"$@\"")
        .arg(serve.as_std().get_program())
        .args(serve.as_std().get_args())
        .env_remove("PPPPP_DIR")
        .kill_on_drop(true);
    let mut serve = {
        command.stderr(Stdio::piped());
        Serve::spawn(command).await
    };
    let mut stderr = serve.child.stderr.take().expect("piped");
    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for index in 0..200 {
        let text = format!("{index:0>400}");
        let output = run(&dir, &["publish", "--text", &text]).await;
        if output.status.success() {
            acknowledged.push(
                String::from_utf8(output.stdout)
                    .expect("UTF-8")
                    .trim()
                    .to_owned(),
            );
        } else {
            refusal = Some(String::from_utf8(output.stderr).expect("UTF-8"));
            break;
        }
    }
    let refusal = refusal.expect("the disk filled up");
    assert!(!acknowledged.is_empty(), "some posts fit");
    assert!(
        refusal.contains("node stopped") && refusal.contains("File too large"),
        "the publish that failed says why: {refusal}"
    );
    let status = serve.wait().await;
    assert_eq!(
        status.code(),
        Some(1),
        "the process exits non-zero: {status}"
    );
    let mut said = String::new();
    tokio::time::timeout(GUARD, stderr.read_to_string(&mut said))
        .await
        .expect("stderr ends")
        .expect("readable");
    assert!(
        said.contains("the node stopped") && said.contains("File too large"),
        "a clear message: {said}"
    );
    assert!(!dir.join("socket").exists(), "the socket is removed");
    // Restarted without the limit: every acknowledged post is there.
    let serve = Serve::start(&dir, &[]).await;
    let hist = keys(&ok(&dir, &["hist", &account]).await);
    for id in &acknowledged {
        assert!(hist.contains(id), "acknowledged {id} lost");
    }
    assert!(serve.sigterm().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_control_line_is_answered_and_the_next_one_served() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("a");
    let mut serve = Serve::start(&dir, &[]).await;
    let reply = serve.ask_raw(b"{\"cmd\":\"who\xffami\"}\n").await;
    assert_eq!(reply["ok"], json!(false));
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.contains("not UTF-8")),
        "{reply}"
    );
    let reply = serve.ask_raw(b"{\"cmd\":\"whoami\",\"id\":7}\n").await;
    assert_eq!(reply["ok"], json!(true), "{reply}");
    assert_eq!(reply["id"], json!(7));
    // A line over the bound is refused whole, without being buffered, and the next served.
    let mut long = vec![b'x'; 3 * 1024 * 1024];
    long.push(b'\n');
    let reply = serve.ask_raw(&long).await;
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.contains("longer than")),
        "{reply}"
    );
    let reply = serve.ask_raw(b"not json\n").await;
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.contains("not JSON"))
    );
    let reply = serve.ask_raw(b"{\"cmd\":\"status\"}\r\n").await;
    assert_eq!(reply["ok"], json!(true), "{reply}");
    assert_eq!(reply["msgs"], json!(1), "the account root: {reply}");
    assert!(serve.sigterm().await.success());
}
