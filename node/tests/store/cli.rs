//! The `ppppp` commands over the store, as a person or script would use them.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Output, Stdio};

use proto::keys::Keypair;

use crate::common::{feed_lines, ppppp, write_lines};

fn run(args: &[&str], dir: &std::path::Path) -> Output {
    let mut command = ppppp();
    for arg in args {
        if *arg == "DIR" {
            command.arg(dir);
        } else {
            command.arg(arg);
        }
    }
    command.output().expect("run ppppp")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "ppppp failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

#[test]
fn init_creates_a_private_secret_and_never_overwrites_it() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("peer");
    let made: serde_json::Value =
        serde_json::from_str(&stdout_of(&run(&["init", "--dir", "DIR"], &dir))).expect("JSON");
    let secret_path = dir.join("secret");
    let secret = std::fs::read_to_string(&secret_path).expect("secret");
    let keypair = Keypair::from_secret_file(&secret).expect("pzp-keypair format");
    assert_eq!(made["key"], keypair.public().as_str());
    // The account exists: its root is the store's one msg.
    let log = stdout_of(&run(&["db", "log", "--dir", "DIR"], &dir));
    let root = proto::msg::decode_str(log.trim()).expect("the account root");
    assert_eq!(made["account"], root.id().as_str());
    let mode = std::fs::metadata(&secret_path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o400);
    let again = run(&["init", "--dir", "DIR"], &dir);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(
        std::fs::read_to_string(&secret_path).expect("secret"),
        secret
    );
}

#[test]
fn db_add_prints_what_msg_check_prints_and_persists_it() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("peer");
    stdout_of(&run(&["init", "--dir", "DIR"], &dir));
    let mut lines = feed_lines("cli", "post", 20);
    // Bad input never panics: garbage, a blank line, invalid UTF-8 (written below), a
    // duplicate, and a msg whose predecessor is missing.
    lines.push("not json".to_owned());
    lines.push(String::new());
    lines.push(lines[5].clone());
    let orphan = feed_lines("orphan", "post", 3).pop().expect("msg");
    lines.push(orphan);
    let input = work.path().join("in.jsonl");
    write_lines(&input, &lines);
    let checked = stdout_of(
        &ppppp()
            .args(["msg", "check"])
            .arg(&input)
            .output()
            .expect("check"),
    );
    let added = stdout_of(
        &ppppp()
            .args(["db", "add", "--dir"])
            .arg(&dir)
            .arg(&input)
            .output()
            .expect("add"),
    );
    assert_eq!(added, checked);
    assert_eq!(added.lines().count(), lines.len());
    // `msg check` reads text and refuses invalid UTF-8 outright; `db add` rejects the line.
    let binary = work.path().join("binary.jsonl");
    std::fs::write(&binary, b"\xff\xfe{}\nnull\n").expect("write");
    let added = stdout_of(
        &ppppp()
            .args(["db", "add", "--dir"])
            .arg(&dir)
            .arg(&binary)
            .output()
            .expect("add"),
    );
    let added_lines: Vec<&str> = added.lines().collect();
    assert_eq!(added_lines.len(), 2);
    assert_eq!(added_lines[0], "rejected - invalid msg: not UTF-8");
    assert!(added_lines[1].starts_with("rejected"));

    // Stdin, streamed: the same msgs again are all `ok` (already stored).
    let mut child = ppppp()
        .args(["db", "add", "--dir"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let feed_text = lines[..22].join("\n");
    stdin.write_all(feed_text.as_bytes()).expect("write");
    drop(stdin);
    let output = child.wait_with_output().expect("wait");
    assert_eq!(stdout_of(&output).lines().count(), 22);

    // After the root of the directory's own account, which `init` made.
    let log = stdout_of(&run(&["db", "log", "--dir", "DIR"], &dir));
    assert_eq!(
        log.lines().skip(1).collect::<Vec<_>>(),
        lines[..22].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let feed = proto::msg::decode_str(&lines[1]).expect("moot").id();
    let tangle = stdout_of(&run(&["db", "tangle", "--dir", "DIR", feed.as_str()], &dir));
    assert_eq!(tangle.lines().count(), 21);
    assert_eq!(tangle.lines().next(), Some(feed.as_str()));
    let hist = stdout_of(&run(&["db", "hist", "--dir", "DIR", feed.as_str()], &dir));
    assert_eq!(
        hist.lines().collect::<Vec<_>>(),
        lines[1..22].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let stats: serde_json::Value =
        serde_json::from_str(&stdout_of(&run(&["db", "stats", "--dir", "DIR"], &dir)))
            .expect("json");
    assert_eq!(stats["msgs"], 23, "with the account root init made");
    assert_eq!(stats["deletedBytes"], 0);
    let unknown = run(&["db", "tangle", "--dir", "DIR", "not-an-id"], &dir);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not a valid tangle ID"));
}

#[test]
fn db_add_acknowledges_each_msg_as_it_arrives() {
    use std::io::BufRead;
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("peer");
    stdout_of(&run(&["init", "--dir", "DIR"], &dir));
    let lines = feed_lines("stream", "post", 2);
    // `timeout` ends the child if `db add` waited for the end of its input (the test then
    // fails on a missing line instead of hanging).
    let mut child = std::process::Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_ppppp"))
        .args(["db", "add", "--dir"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    for line in &lines {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("write");
        stdin.flush().expect("flush");
        let mut verdict = String::new();
        stdout.read_line(&mut verdict).expect("read");
        let id = proto::msg::decode_str(line).expect("msg").id();
        assert_eq!(
            verdict,
            format!("ok {id}\n"),
            "acknowledged before the input ends"
        );
        // Durable by the time it is printed: a reader sees it.
        let reader = node::store::DiskStore::open_read_only(
            dir.join("db"),
            &node::store::Options::default(),
        )
        .expect("reader");
        assert!(
            proto::store::Store::get(&reader, &id)
                .expect("get")
                .is_some()
        );
    }
    drop(stdin);
    assert!(child.wait().expect("wait").success());
}

#[test]
fn publish_finds_or_creates_the_account_and_appends() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("peer");
    stdout_of(&run(&["init", "--dir", "DIR"], &dir));
    let first = stdout_of(&run(
        &[
            "publish",
            "--dir",
            "DIR",
            "--domain",
            "post",
            "--data",
            r#"{"text":"hi"}"#,
        ],
        &dir,
    ));
    let second = stdout_of(&run(
        &[
            "publish",
            "--dir",
            "DIR",
            "--domain",
            "post",
            "--data",
            r#"{"text":"again"}"#,
        ],
        &dir,
    ));
    assert_ne!(first, second);
    let log = stdout_of(&run(&["db", "log", "--dir", "DIR"], &dir));
    // Account root, moot, two posts: one account, made on first use.
    assert_eq!(log.lines().count(), 4);
    let ids: Vec<String> = log
        .lines()
        .map(|line| proto::msg::decode_str(line).expect("msg").id().to_string())
        .collect();
    assert_eq!(ids[2], first.trim());
    assert_eq!(ids[3], second.trim());
    let account = &ids[0];
    assert_eq!(
        stdout_of(&run(
            &["db", "set", "--dir", "DIR", account, "follows"],
            &dir
        ))
        .trim(),
        "[]"
    );
    assert_eq!(
        stdout_of(&run(
            &["db", "dict", "--dir", "DIR", account, "profile"],
            &dir
        ))
        .trim(),
        "{}"
    );
    let bad = run(
        &[
            "publish", "--dir", "DIR", "--domain", "post", "--data", "{oops",
        ],
        &dir,
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--data is not JSON"));
}

#[test]
fn a_second_writer_is_told_which_directory_is_busy() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("peer");
    stdout_of(&run(&["init", "--dir", "DIR"], &dir));
    let holder = node::store::DiskStore::open(dir.join("db"), &node::store::Options::default())
        .expect("writer");
    let output = run(
        &[
            "publish", "--dir", "DIR", "--domain", "post", "--data", "{}",
        ],
        &dir,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
    assert!(
        stderr.contains(&dir.join("db").display().to_string()),
        "{stderr}"
    );
    // Readers still work beside the writer.
    stdout_of(&run(&["db", "stats", "--dir", "DIR"], &dir));
    drop(holder);
}

#[test]
fn error_texts_say_what_is_wrong_once() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("peer");
    stdout_of(&run(&["init", "--dir", "DIR"], &dir));
    let empty_domain = run(
        &["publish", "--dir", "DIR", "--domain", "", "--data", "{}"],
        &dir,
    );
    let stderr = String::from_utf8_lossy(&empty_domain.stderr);
    assert!(!empty_domain.status.success());
    assert!(
        stderr.contains(r#"domain "" is not 3 to 100 characters of a-z, A-Z, 0-9 or _"#),
        "{stderr}"
    );
    assert!(!stderr.contains("should have been a string"), "{stderr}");
    // An I/O error: the log is a directory.
    std::fs::remove_file(dir.join("db").join("log")).expect("rm log");
    std::fs::create_dir(dir.join("db").join("log")).expect("mkdir log");
    let stats = run(&["db", "stats", "--dir", "DIR"], &dir);
    let stderr = String::from_utf8_lossy(&stats.stderr);
    assert!(!stats.status.success());
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
}
