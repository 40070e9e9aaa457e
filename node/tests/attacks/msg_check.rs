//! Finding 10: `ppppp msg check` read its whole input into memory before judging any line
//! (a 300 MB line: 590 MB RSS), and one line that was not UTF-8 anywhere gave exit 1 and no
//! verdict at all. Now it reads line by line like `ppppp db add`: every line gets its own
//! verdict, as the lines arrive.

use std::process::Stdio;

use proto::db::Db;
use proto::keys::Keypair;
use proto::store::MemStore;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::{PATIENCE, RssSampler, ppppp};

/// The long line: 64 MB of one JSON string.
const LONG_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Two valid msgs as JSON lines: an account root and its feed's moot.
fn valid_lines() -> (String, String) {
    let keypair = Keypair::from_seed(&[0x10; 32]);
    let mut db = Db::new(MemStore::new());
    let account = db
        .create_account(&keypair, "account", "checker")
        .expect("account");
    let post = db
        .publish(&keypair, &account, "post", json!({"text": "hi"}), &[])
        .expect("post");
    let line = |id| db.get(&id).expect("memory").expect("stored").to_json();
    let moot = proto::msg::feed_id(&account, "post");
    (line(account), format!("{}\n{}", line(moot), line(post)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msg_check_gives_every_line_a_verdict_as_it_arrives() {
    let mut child = ppppp()
        .args(["msg", "check"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("msg check runs");
    let sampler = RssSampler::start(child.id().expect("running"));
    let mut stdin = child.stdin.take().expect("piped");
    let mut verdicts = BufReader::new(child.stdout.take().expect("piped")).lines();
    let (account, feed) = valid_lines();

    // Everything but the end of the input: a valid line, a line that is not UTF-8, a 64 MB
    // line, then the rest of the feed.
    let writer = tokio::spawn(async move {
        stdin.write_all(format!("{account}\n").as_bytes()).await?;
        stdin.write_all(b"{\"data\":\"\xff\xfe\"}\n").await?;
        let mut long = b"{\"data\":\"".to_vec();
        long.resize(LONG_LINE_BYTES, b'x');
        long.extend_from_slice(b"\"}\n");
        stdin.write_all(&long).await?;
        stdin.write_all(format!("{feed}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok::<_, std::io::Error>(stdin)
    });
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let line = tokio::time::timeout(PATIENCE, verdicts.next_line())
            .await
            .expect("verdicts arrive before the input ends")
            .expect("readable")
            .expect("a verdict line");
        seen.push(line);
    }
    let peak = sampler.finish().await;
    eprintln!("{seen:#?}\npeak RSS {peak} KiB");
    assert!(seen[0].starts_with("ok "), "{}", seen[0]);
    assert_eq!(seen[1], "rejected - invalid msg: not UTF-8");
    assert_eq!(
        seen[2],
        "rejected - invalid msg: line longer than 1048576 bytes"
    );
    assert!(
        seen[3].starts_with("ok ") && seen[4].starts_with("ok "),
        "{seen:?}"
    );
    // One line at a time: a few MiB, not the 64 MB line (or twice it).
    assert!(peak < 32 * 1024, "peak RSS {peak} KiB");

    drop(writer.await.expect("writer").expect("written"));
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("exits at the end of its input")
        .expect("waitable");
    assert!(status.success(), "{status}");
}
