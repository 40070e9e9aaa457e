//! Sync between two `ppppp serve` processes over loopback (issue 5), against validation
//! throughput measured in the same run on the same msgs.
//!
//! - An author process publishes N posts (N = `SERVE_SYNC_MSGS`, default 10,000) through its
//!   control channel.
//! - Validation baseline: the author's account and feed msgs (N + 2), taken from the author,
//!   added in order to a fresh in-memory database, and to a fresh disk store (with the final
//!   flush), in this process: msgs/s.
//! - Full sync: a fresh puller process with goals on the account and the feed; timed from the
//!   answer to its `connect` control command until its feed holds every msg (polled every
//!   few milliseconds with `count`): msgs/s. Repeated `SERVE_SYNC_FULL_RUNS` times (3).
//! - Catch-up: the puller is stopped (SIGTERM), the author publishes 100 more posts, the puller
//!   restarts on its directory and is told to connect; timed from the `connect` answer (and
//!   from the process spawn) until it holds the 100 new msgs. Repeated
//!   `SERVE_SYNC_CATCH_UP_RUNS` times (5).
//!
//! - Profiling (`SERVE_SYNC_PERF=FILE`): before the timed runs, one untimed full sync runs
//!   with `perf record` attached to both processes (author and puller), written to FILE
//!   (`perf report -i FILE --sort pid,comm`; `perf script` gives each sample's thread and
//!   time). Off by default; needs `perf` on the path.
//!
//! Targets (issue 5): the full sync at no less than a third of validation throughput, the
//! catch-up in well under a second.
//!
//! Needs a release `ppppp`: `cargo build --release -p node --bin ppppp` (or `PPPPP_BIN`);
//! `benches/compare.sh` builds it. Run: `cargo bench -p benches --bench serve_sync`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use node::store::{DiskStore, Options};
use proto::db::Db;
use proto::ids::TangleId;
use proto::msg::Msg;
use proto::store::MemStore;
use serde_json::{Value, json};
use tokio::time::Instant;

const NEW_MSGS: usize = 100;
/// Commands written before their replies are read (small enough that neither pipe fills).
const PIPELINE: usize = 200;
const POLL: Duration = Duration::from_millis(2);

struct Serve {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Serve {
    fn start(binary: &Path, dir: &Path, goals: &[String]) -> Self {
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--dir")
            .arg(dir)
            .arg("--listen")
            .arg("127.0.0.1:0");
        for goal in goals {
            command.arg("--goal").arg(goal);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ppppp serve starts");
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("the address line");
        assert!(first.starts_with("listening "), "{first:?}");
        Self {
            child,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, request: &Value) {
        writeln!(self.stdin, "{request}").expect("write");
    }

    fn reply(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("a reply");
        let reply: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(reply["ok"], json!(true), "{reply}");
        reply
    }

    fn ask(&mut self, request: &Value) -> Value {
        self.send(request);
        self.reply()
    }

    /// Publishes posts `from..to`, pipelined.
    fn publish(&mut self, from: usize, to: usize) {
        let mut index = from;
        while index < to {
            let batch = (to - index).min(PIPELINE);
            for offset in 0..batch {
                let text = format!(
                    "post #{} {}",
                    index + offset,
                    "lorem ipsum dolor sit amet ".repeat(12)
                );
                self.send(&json!({"cmd": "publish", "domain": "post", "data": {"text": text}}));
            }
            for _ in 0..batch {
                self.reply();
            }
            index += batch;
        }
    }

    fn count(&mut self, tangle: &str) -> usize {
        let reply = self.ask(&json!({"cmd": "count", "tangle": tangle}));
        usize::try_from(reply["count"].as_u64().expect("count")).expect("small")
    }

    /// Polls until `tangle` holds `count` msgs; returns when that was seen.
    fn wait_for(&mut self, tangle: &str, count: usize) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if self.count(tangle) >= count {
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "no sync after 10 minutes");
            std::thread::sleep(POLL);
        }
    }

    fn stop(mut self) {
        let pid = self.child.id();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = self.child.wait().expect("waitable");
        assert!(exit.success(), "{exit}");
    }
}

/// The author process, its account, address and post feed, and how long publishing took.
struct Author {
    serve: Serve,
    account: String,
    address: String,
    feed: String,
    publish_secs: f64,
}

impl Author {
    /// An author at `dir` that has published `posts` posts through its control channel.
    fn publishing(binary: &Path, dir: &Path, posts: usize) -> Self {
        let mut serve = Serve::start(binary, dir, &[]);
        let started = Instant::now();
        serve.publish(0, posts);
        let publish_secs = seconds(started, Instant::now());
        let who = serve.ask(&json!({"cmd": "whoami"}));
        let account = who["account"].as_str().expect("account").to_owned();
        let address = who["address"].as_str().expect("address").to_owned();
        let account_id = proto::ids::AccountId::parse(&account).expect("account ID");
        let feed: TangleId = proto::msg::feed_id(&account_id, "post");
        println!(
            "author published {posts} posts in {publish_secs:.2} s ({:.0} msgs/s through the control channel)",
            posts as f64 / publish_secs
        );
        Self {
            serve,
            account,
            address,
            feed: feed.to_string(),
            publish_secs,
        }
    }
}

/// What a puller syncs: its goals, the author to sync from (its process and address), the
/// feed to wait for and its length before the catch-ups.
struct Pulled<'a> {
    goals: &'a [String],
    author_pid: u32,
    address: &'a str,
    feed: &'a str,
    feed_len: usize,
}

/// `perf record` on both processes for one untimed full sync into a fresh puller at `dir`,
/// when `SERVE_SYNC_PERF` names the output file.
fn profile_full_sync(binary: &Path, profiled: &Pulled<'_>, dir: &Path) {
    let Some(out) = std::env::var_os("SERVE_SYNC_PERF") else {
        return;
    };
    let mut puller = Serve::start(binary, dir, profiled.goals);
    let pids = format!("{},{}", profiled.author_pid, puller.child.id());
    let mut perf = Command::new("perf")
        .args(["record", "-F", "2000", "--call-graph", "dwarf,32768"])
        .args(["-k", "CLOCK_MONOTONIC", "-p", &pids, "-o"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("perf runs");
    // perf needs a moment to attach before the sync starts.
    std::thread::sleep(Duration::from_secs(1));
    puller.ask(&json!({"cmd": "connect", "address": profiled.address}));
    puller.wait_for(profiled.feed, profiled.feed_len);
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(perf.id().to_string())
        .status();
    let _ = perf.wait();
    puller.stop();
    println!(
        "profile of one untimed full sync (author and puller): {}",
        Path::new(&out).display()
    );
}

/// `runs` fresh pullers' full syncs, timed from the `connect` answer: msgs/s each. The last
/// puller's directory is kept as `keep`, for the catch-ups.
fn full_syncs(
    binary: &Path,
    pulled: &Pulled<'_>,
    runs: usize,
    total: usize,
    keep: &Path,
) -> Vec<f64> {
    let mut rates = Vec::new();
    for run in 0..runs {
        let dir = keep.with_file_name(format!("puller-{run}"));
        let mut puller = Serve::start(binary, &dir, pulled.goals);
        let connected = {
            puller.ask(&json!({"cmd": "connect", "address": pulled.address}));
            Instant::now()
        };
        let done = puller.wait_for(pulled.feed, pulled.feed_len);
        let rate = total as f64 / seconds(connected, done);
        println!(
            "full sync #{run}: {total} msgs in {:.3} s = {rate:.0} msgs/s",
            seconds(connected, done)
        );
        rates.push(rate);
        puller.stop();
        if run + 1 == runs {
            std::fs::rename(&dir, keep).expect("keep the last puller");
        }
    }
    rates
}

/// The validation baseline, on the very msgs the puller will receive: the author's `tangles`
/// added in order to a fresh in-memory database and to a fresh disk store at `dir`. Returns
/// the msgs' count and both rates in msgs/s.
fn validation_baseline(author: &mut Serve, tangles: [&str; 2], dir: &Path) -> (usize, f64, f64) {
    let mut msgs: Vec<Msg> = Vec::new();
    for tangle in tangles {
        let reply = author.ask(&json!({"cmd": "msgs", "tangle": tangle}));
        for value in reply["msgs"].as_array().expect("msgs") {
            msgs.push(proto::msg::decode(value).expect("a msg"));
        }
    }
    let total = msgs.len();
    let memory_secs = validate(MemStore::new(), &msgs);
    let options = Options {
        create: true,
        faults: None,
    };
    let disk_secs = validate(DiskStore::open(dir, &options).expect("disk store"), &msgs);
    (total, total as f64 / memory_secs, total as f64 / disk_secs)
}

/// `runs` catch-ups of [`NEW_MSGS`] each by the puller kept at `dir`: the author publishes
/// them (after its first `posts`), the puller restarts and is told to connect. Returns the
/// times after connect and after spawn, in seconds.
fn catch_ups(
    binary: &Path,
    author: &mut Serve,
    pulled: &Pulled<'_>,
    posts: usize,
    runs: usize,
    dir: &Path,
) -> (Vec<f64>, Vec<f64>) {
    let (mut after_connect, mut after_spawn) = (Vec::new(), Vec::new());
    let mut held = pulled.feed_len;
    for run in 0..runs {
        author.publish(posts + run * NEW_MSGS, posts + (run + 1) * NEW_MSGS);
        held += NEW_MSGS;
        let spawned = Instant::now();
        let mut puller = Serve::start(binary, dir, pulled.goals);
        puller.ask(&json!({"cmd": "connect", "address": pulled.address}));
        let connected = Instant::now();
        let done = puller.wait_for(pulled.feed, held);
        let (catch_up, from_spawn) = (seconds(connected, done), seconds(spawned, done));
        println!(
            "catch-up #{run}: {NEW_MSGS} new msgs in {:.1} ms after connect ({:.1} ms after spawn)",
            catch_up * 1000.0,
            from_spawn * 1000.0
        );
        after_connect.push(catch_up);
        after_spawn.push(from_spawn);
        puller.stop();
    }
    (after_connect, after_spawn)
}

fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PPPPP_BIN") {
        return Some(PathBuf::from(path));
    }
    // target/release/deps/serve_sync-HASH -> target/release/ppppp
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("ppppp");
    path.exists().then_some(path)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn seconds(from: Instant, to: Instant) -> f64 {
    to.duration_since(from).as_secs_f64()
}

/// Times adding `msgs` in order to a fresh database on `store` (then one flush).
fn validate<S: proto::store::Store>(store: S, msgs: &[Msg]) -> f64 {
    let started = Instant::now();
    let mut db = Db::new(store);
    for msg in msgs {
        db.add(msg.clone(), None).expect("valid");
    }
    db.flush().expect("flush");
    seconds(started, Instant::now())
}

/// Prints the medians against the validation baseline, then the same as one `RESULT` JSON
/// line: `total` msgs synced, the author's publishing rate, the validation rates (memory,
/// disk), the full syncs' rates and the catch-ups' times (after connect, after spawn).
fn report(
    total: usize,
    publish_rate: f64,
    (validate_memory, validate_disk): (f64, f64),
    full_rates: Vec<f64>,
    (catch_ups, catch_ups_from_spawn): (Vec<f64>, Vec<f64>),
) {
    let full = median(full_rates);
    let catch_up = median(catch_ups);
    let catch_up_from_spawn = median(catch_ups_from_spawn);
    println!(
        "serve_sync: full sync {full:.0} msgs/s = {:.2} x validation in memory, {:.2} x into a disk store (target >= 0.33); \
         catch-up of {NEW_MSGS}: {:.1} ms after connect, {:.1} ms after spawn (medians; target well under 1 s)",
        full / validate_memory,
        full / validate_disk,
        catch_up * 1000.0,
        catch_up_from_spawn * 1000.0
    );
    println!(
        "RESULT {}",
        json!({
            "bench": "serve_sync",
            "msgs": total,
            "publishMsgsPerSec": publish_rate,
            "validateMemoryMsgsPerSec": validate_memory,
            "validateDiskMsgsPerSec": validate_disk,
            "fullSyncMsgsPerSec": full,
            "catchUpMs": catch_up * 1000.0,
            "catchUpFromSpawnMs": catch_up_from_spawn * 1000.0,
        })
    );
}

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("serve_sync: run it with `cargo bench -p benches --bench serve_sync`");
        return;
    }
    let Some(binary) = binary() else {
        println!(
            "serve_sync skipped: no release ppppp; build it with \
             `cargo build --release -p node --bin ppppp` (or set PPPPP_BIN)"
        );
        return;
    };
    let posts = env_or("SERVE_SYNC_MSGS", 10_000);
    let full_runs = env_or("SERVE_SYNC_FULL_RUNS", 3);
    let catch_up_runs = env_or("SERVE_SYNC_CATCH_UP_RUNS", 5);
    let dirs = tempfile::tempdir().expect("temp dir");

    let Author {
        serve: mut author,
        account,
        address,
        feed,
        publish_secs,
    } = Author::publishing(&binary, &dirs.path().join("author"), posts);

    let (total, validate_memory, validate_disk) = validation_baseline(
        &mut author,
        [&account, &feed],
        &dirs.path().join("validate-db"),
    );
    println!(
        "validation of the same {total} msgs: {validate_memory:.0} msgs/s in memory, {validate_disk:.0} msgs/s into a disk store"
    );

    let goals = [format!("{account}=all"), format!("{feed}=all")];
    let pulled = Pulled {
        goals: &goals,
        author_pid: author.child.id(),
        address: &address,
        feed: &feed,
        feed_len: posts + 1,
    };
    profile_full_sync(&binary, &pulled, &dirs.path().join("puller-profiled"));
    let puller_dir = dirs.path().join("puller");
    let full_rates = full_syncs(&binary, &pulled, full_runs, total, &puller_dir);
    let (catch_ups, catch_ups_from_spawn) = catch_ups(
        &binary,
        &mut author,
        &pulled,
        posts,
        catch_up_runs,
        &puller_dir,
    );
    author.stop();

    report(
        total,
        posts as f64 / publish_secs,
        (validate_memory, validate_disk),
        full_rates,
        (catch_ups, catch_ups_from_spawn),
    );
}
