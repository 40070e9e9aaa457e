//! Crash tests with real processes: `ppppp db add` and `ppppp db compact` are killed with
//! SIGKILL at seeded moments, many times; every msg whose `ok` line reached the test must be
//! there, intact, and the store must be consistent and writable afterwards.
//!
//! `STORE_CRASH_ITERATIONS` sets the iterations per test (default 50); `SEED` the timing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use node::store::{COMPACT_FILE, DiskStore, Options};
use proto::db::Db;
use proto::ids::MsgId;
use proto::msg::Msg;
use proto::store::Store;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{env_count, feed_lines, ppppp, records_of, seed, write_lines};

/// Iterations unless `STORE_CRASH_ITERATIONS` says otherwise.
const ITERATIONS_DEFAULT: usize = 50;
/// Feed msgs in the `db add` input.
const FEED_MSGS: usize = 1500;
/// Longest random pause before a kill.
const KILL_DELAY_US_MAX: u64 = 40_000;
/// Every how many iterations the killed ingest is resumed to the end.
const RESUME_EVERY: usize = 5;

fn wait_killed(mut child: Child) {
    // `Child::kill` sends SIGKILL on unix.
    let _ = child.kill();
    let _ = child.wait();
}

/// The msgs of `lines` by ID, in order.
fn by_id(lines: &[String]) -> (Vec<MsgId>, BTreeMap<MsgId, Msg>) {
    let mut order = Vec::new();
    let mut msgs = BTreeMap::new();
    for line in lines {
        let msg = proto::msg::decode_str(line).expect("fixture msg");
        order.push(msg.id());
        msgs.insert(msg.id(), msg);
    }
    (order, msgs)
}

#[test]
fn killed_db_add_loses_no_acknowledged_msg() {
    let iterations = env_count("STORE_CRASH_ITERATIONS", ITERATIONS_DEFAULT);
    let seed = seed(0xC7A5_0001);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let work = tempfile::tempdir().expect("temp dir");
    let lines = feed_lines("crash", "post", FEED_MSGS);
    let input = work.path().join("feed.jsonl");
    write_lines(&input, &lines);
    let (order, msgs) = by_id(&lines);
    let mut acknowledged_total = 0;
    let mut torn_tails = 0;
    for iteration in 0..iterations {
        let context = format!("iteration {iteration} (SEED={seed})");
        let peer = work.path().join(format!("peer-{iteration}"));
        let store_dir = peer.join("db");
        DiskStore::create(&store_dir).expect("create store");
        // Alternate between a file on stdin (big groups) and a pipe from `cat` (a group per
        // pipe buffer, so many commits).
        let through_pipe = rng.random_bool(0.5);
        let mut feeder = None;
        let stdin = if through_pipe {
            let mut cat = std::process::Command::new("cat")
                .arg(&input)
                .stdout(Stdio::piped())
                .spawn()
                .expect("cat");
            let pipe = cat.stdout.take().expect("cat stdout");
            feeder = Some(cat);
            Stdio::from(pipe)
        } else {
            Stdio::from(std::fs::File::open(&input).expect("input"))
        };
        let mut child = ppppp()
            .args(["db", "add", "--dir"])
            .arg(&peer)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ppppp");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let kill_after_lines = rng.random_range(0..FEED_MSGS);
        let mut acknowledged = Vec::new();
        let mut line = String::new();
        while acknowledged.len() < kill_after_lines {
            line.clear();
            if reader.read_line(&mut line).expect("read stdout") == 0 {
                break;
            }
            // Only a whole line is a promise (a kill can cut a write to the pipe).
            if let Some(whole) = line.strip_suffix('\n') {
                acknowledged.push(whole.to_owned());
            }
        }
        std::thread::sleep(Duration::from_micros(
            rng.random_range(0..KILL_DELAY_US_MAX),
        ));
        wait_killed(child);
        if let Some(cat) = feeder {
            wait_killed(cat);
        }
        // Lines the process printed before it died were acknowledged too.
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut reader, &mut rest).expect("read stdout");
        let whole_lines = rest.rsplit_once('\n').map_or("", |(whole, _)| whole);
        acknowledged.extend(whole_lines.lines().map(str::to_owned));
        acknowledged_total += acknowledged.len();

        let store = DiskStore::open(&store_dir, &Options::default()).expect(&context);
        torn_tails += usize::from(store.recovery().torn_tail_bytes > 0);
        for (index, verdict) in acknowledged.iter().enumerate() {
            let expected_id = order[index];
            assert_eq!(verdict, &format!("ok {expected_id}"), "{context}");
            let record = store.get(&expected_id).expect(&context).expect(&context);
            assert_eq!(
                record.msg.as_ref(),
                &msgs[&expected_id],
                "{context}: intact"
            );
        }
        // Consistent: exactly a prefix of the feed, in receive order, every record readable.
        let records = records_of(&store);
        assert!(records.len() >= acknowledged.len(), "{context}");
        for (record, expected_id) in records.iter().zip(&order) {
            assert_eq!(&record.id, expected_id, "{context}: receive order");
        }
        let mut db = Db::new(store);
        let feed = order[1];
        let tangle = db.tangle(&feed).expect(&context);
        assert_eq!(
            tangle.len(),
            records.len().saturating_sub(1),
            "{context}: the feed's tangle"
        );
        drop(db);
        if iteration % RESUME_EVERY == 0 {
            let output = ppppp()
                .args(["db", "add", "--dir"])
                .arg(&peer)
                .arg(&input)
                .output()
                .expect("resume");
            assert!(output.status.success(), "{context}: resume failed");
            let text = String::from_utf8(output.stdout).expect("utf-8");
            assert_eq!(text.lines().count(), FEED_MSGS + 2, "{context}");
            assert!(
                text.lines().all(|line| line.starts_with("ok ")),
                "{context}"
            );
            let store = DiskStore::open_read_only(&store_dir, &Options::default()).expect(&context);
            assert_eq!(
                store.len(),
                u64::try_from(FEED_MSGS + 2).expect("len"),
                "{context}"
            );
        }
        std::fs::remove_dir_all(&peer).expect("clean up");
    }
    eprintln!(
        "db add crash test: {iterations} kills, {acknowledged_total} acknowledged msgs checked, \
         {torn_tails} torn tails cut"
    );
}

/// A store with erased, deleted and ghost-marked msgs, so compaction has work to do.
fn compaction_template(dir: &Path) -> (Vec<proto::store::Record>, proto::store::StoreStats) {
    let lines = feed_lines("compact", "post", env_count("STORE_COMPACT_MSGS", 3000));
    let mut db = Db::new(DiskStore::create(dir).expect("create"));
    for line in &lines {
        let verdict = proto::ingest::add_json(&mut db, line).expect("store");
        assert!(
            matches!(verdict, proto::ingest::Verdict::Ok(_)),
            "{verdict}"
        );
    }
    let ids: Vec<MsgId> = records_of(db.store())
        .iter()
        .map(|record| record.id)
        .collect();
    let feed = ids[1];
    for (index, id) in ids.iter().enumerate().skip(2) {
        match index % 3 {
            0 => {
                db.erase(id).expect("erase");
            }
            1 if index % 2 == 0 => {
                db.add_ghost(&feed, *id, u64::try_from(index).expect("depth"), 50)
                    .expect("ghost");
                db.delete(id).expect("delete");
            }
            _ => {}
        }
    }
    db.flush().expect("flush");
    let store = db.into_store();
    (records_of(&store), store.stats())
}

#[test]
fn killed_compaction_loses_nothing() {
    let iterations = env_count("STORE_CRASH_ITERATIONS", ITERATIONS_DEFAULT);
    let seed = seed(0xC7A5_0002);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let work = tempfile::tempdir().expect("temp dir");
    let template = work.path().join("template");
    let (expected_records, expected_stats) = compaction_template(&template.join("db"));
    let template_log = std::fs::read(template.join("db").join(node::store::LOG_FILE)).expect("log");
    let expected_ghosts = DiskStore::open_read_only(template.join("db"), &Options::default())
        .expect("template")
        .ghost_tangles()
        .expect("ghosts");
    assert!(!expected_ghosts.is_empty());

    // Calibrate: how long one whole compaction takes here.
    let calibration = work.path().join("calibration");
    std::fs::create_dir_all(calibration.join("db")).expect("dir");
    std::fs::write(
        calibration.join("db").join(node::store::LOG_FILE),
        &template_log,
    )
    .expect("copy");
    let duration_us = {
        #[expect(clippy::disallowed_methods, reason = "a test measures a child process")]
        let start = std::time::Instant::now();
        let status = ppppp()
            .args(["db", "compact", "--dir"])
            .arg(&calibration)
            .stdout(Stdio::null())
            .status()
            .expect("compact");
        assert!(status.success());
        u64::try_from(start.elapsed().as_micros()).expect("duration")
    };
    let mut outcomes = [0usize; 2];
    let mut leftovers = 0;
    for iteration in 0..iterations {
        let context =
            format!("iteration {iteration} (SEED={seed}, compaction takes {duration_us} µs)");
        let peer = work.path().join(format!("peer-{iteration}"));
        std::fs::create_dir_all(peer.join("db")).expect("dir");
        std::fs::write(peer.join("db").join(node::store::LOG_FILE), &template_log).expect("copy");
        let child = ppppp()
            .args(["db", "compact", "--dir"])
            .arg(&peer)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_micros(
            rng.random_range(0..duration_us * 5 / 4),
        ));
        wait_killed(child);
        let leftover = peer.join("db").join(COMPACT_FILE).exists();
        let store = DiskStore::open(peer.join("db"), &Options::default()).expect(&context);
        assert!(!peer.join("db").join(COMPACT_FILE).exists(), "{context}");
        assert_eq!(
            store.recovery().removed_compaction_file,
            leftover,
            "{context}"
        );
        leftovers += usize::from(leftover);
        assert_eq!(records_of(&store), expected_records, "{context}");
        let stats = store.stats();
        assert_eq!(stats.msgs, expected_stats.msgs, "{context}");
        assert_eq!(stats.bytes, expected_stats.bytes, "{context}");
        let compacted = stats.deleted_bytes == 0;
        assert!(
            compacted || stats.deleted_bytes == expected_stats.deleted_bytes,
            "{context}"
        );
        outcomes[usize::from(compacted)] += 1;
        assert_eq!(
            store.ghost_tangles().expect("ghosts"),
            expected_ghosts,
            "{context}"
        );
        for tangle in &expected_ghosts {
            let template_store =
                DiskStore::open_read_only(template.join("db"), &Options::default())
                    .expect("template");
            assert_eq!(
                store.ghosts(tangle).expect("ghosts"),
                template_store.ghosts(tangle).expect("ghosts"),
                "{context}"
            );
        }
        // And it still compacts and takes writes.
        let mut store = store;
        store.compact().expect(&context);
        assert_eq!(records_of(&store), expected_records, "{context}");
        let extra = proto::msg::decode_str(&feed_lines("extra", "post", 0)[0]).expect("msg");
        store.append(extra.id(), Arc::new(extra)).expect(&context);
        store.flush().expect(&context);
        drop(store);
        std::fs::remove_dir_all(&peer).expect("clean up");
    }
    eprintln!(
        "compaction crash test: {iterations} kills over {duration_us} µs compactions: \
         {} before the rename ({leftovers} left a `log.compact` to remove), {} after",
        outcomes[0], outcomes[1]
    );
}
