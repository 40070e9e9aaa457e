//! Bad files and failing disks: each gives a clear error and loses nothing already stored.

use std::io::ErrorKind;
use std::sync::Arc;

use node::store::format::{FILE_HEADER_LEN, FORMAT_VERSION, FileHeader};
use node::store::{COMPACT_FILE, DiskStore, Faults, LOG_FILE, Options, StoreError};
use proto::db::Db;
use proto::ingest::{Verdict, add_json};
use proto::store::Store;

use crate::common::{feed_lines, records_of};

fn options_with(faults: &Arc<Faults>) -> Options {
    Options {
        create: false,
        faults: Some(Arc::clone(faults)),
    }
}

/// A store with the first `count` lines of a feed, durable.
fn store_with(dir: &std::path::Path, lines: &[String]) {
    let mut db = Db::new(DiskStore::create(dir).expect("create"));
    for line in lines {
        assert!(matches!(
            add_json(&mut db, line).expect("store"),
            Verdict::Ok(_)
        ));
    }
    db.flush().expect("flush");
}

fn io_kind(err: &StoreError) -> Option<ErrorKind> {
    match err {
        StoreError::Io { source, .. } => Some(source.kind()),
        _ => None,
    }
}

#[test]
fn a_foreign_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = "this is somebody's notes, not a log; it is longer than a header\n";
    std::fs::write(dir.path().join(LOG_FILE), text).expect("write");
    let err = DiskStore::open(dir.path(), &Options::default()).expect_err("foreign");
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    assert!(err.to_string().contains("not a ppppp store log"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(LOG_FILE)).expect("read"),
        text
    );

    std::fs::write(dir.path().join(LOG_FILE), "tiny").expect("write");
    let err = DiskStore::open(dir.path(), &Options::default()).expect_err("short");
    assert!(
        matches!(err, StoreError::Corrupt { offset: 0, .. }),
        "{err}"
    );
}

#[test]
fn another_format_version_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut header = FileHeader { seq_floor: 0 }.encode();
    header[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    std::fs::write(dir.path().join(LOG_FILE), header).expect("write");
    let err = DiskStore::open_read_only(dir.path(), &Options::default()).expect_err("version");
    assert!(
        matches!(err, StoreError::UnsupportedVersion { found, supported, .. } if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("version 2"), "{err}");
}

#[test]
fn a_damaged_file_header_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = feed_lines("header", "post", 3);
    store_with(dir.path(), &lines);
    let path = dir.path().join(LOG_FILE);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[FILE_HEADER_LEN - 10] ^= 0x40;
    std::fs::write(&path, &bytes).expect("write");
    let err = DiskStore::open(dir.path(), &Options::default()).expect_err("corrupt");
    assert!(
        matches!(err, StoreError::Corrupt { offset: 0, .. }),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).expect("read"), bytes, "left alone");
}

#[test]
fn a_missing_store_and_an_unreadable_log_are_clear_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err =
        DiskStore::open(dir.path().join("nothing"), &Options::default()).expect_err("missing");
    assert!(matches!(err, StoreError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("ppppp init"), "{err}");
    assert!(
        !dir.path().join("nothing").exists(),
        "opening creates nothing"
    );

    std::fs::create_dir_all(dir.path().join(LOG_FILE)).expect("a directory where the log goes");
    let err = DiskStore::open(dir.path(), &Options::default()).expect_err("a directory");
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
    assert!(err.to_string().contains(LOG_FILE), "{err}");
}

#[test]
fn permission_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    store_with(dir.path(), &feed_lines("perm", "post", 2));
    // Root ignores file modes, so the fault hook stands in for a real EACCES.
    let faults = Faults::new();
    faults.set_deny_opens(true);
    let err = DiskStore::open(dir.path(), &options_with(&faults)).expect_err("denied");
    assert_eq!(io_kind(&err), Some(ErrorKind::PermissionDenied), "{err}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    faults.set_deny_opens(false);
    let store = DiskStore::open(dir.path(), &options_with(&faults)).expect("allowed again");
    assert_eq!(store.len(), 4);
}

#[test]
fn a_full_disk_poisons_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = feed_lines("full", "post", 200);
    let faults = Faults::new();
    let mut db = Db::new(
        DiskStore::open(
            dir.path(),
            &Options {
                create: true,
                faults: Some(Arc::clone(&faults)),
            },
        )
        .expect("create"),
    );
    // The disk fills part-way through a batch.
    faults.set_write_budget_bytes(40_000);
    let mut acknowledged = 0;
    let mut failure = None;
    for chunk in lines.chunks(10) {
        for line in chunk {
            match add_json(&mut db, line) {
                Ok(verdict) => assert!(matches!(verdict, Verdict::Ok(_)), "{verdict}"),
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        if failure.is_some() {
            break;
        }
        match db.flush() {
            Ok(()) => acknowledged += chunk.len(),
            Err(err) => {
                failure = Some(err);
                break;
            }
        }
    }
    let failure = failure.expect("the disk filled");
    assert_eq!(io_kind(&failure), Some(ErrorKind::StorageFull), "{failure}");
    assert!(failure.to_string().contains("no space left"), "{failure}");
    assert!(db.store().is_poisoned());
    // Poisoned: refuses writes with a clear error, even once space is back.
    faults.set_write_budget_bytes(u64::MAX);
    let err = db.flush().expect_err("poisoned");
    assert!(matches!(err, StoreError::Poisoned { .. }), "{err}");
    assert!(err.to_string().contains("reopen"), "{err}");
    let verdict = add_json(&mut db, &feed_lines("other", "post", 0)[0]);
    assert!(
        matches!(verdict, Err(StoreError::Poisoned { .. })),
        "{verdict:?}"
    );
    drop(db);

    let store = DiskStore::open(dir.path(), &Options::default()).expect("reopen");
    assert!(
        store.recovery().torn_tail_bytes > 0,
        "the partial batch is cut"
    );
    let records = records_of(&store);
    assert_eq!(records.len(), acknowledged, "exactly the acknowledged msgs");
    for (record, line) in records.iter().zip(&lines) {
        assert_eq!(record.msg.to_json(), *line);
    }
}

#[test]
fn a_failed_fsync_poisons_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = feed_lines("fsync", "post", 10);
    let faults = Faults::new();
    let mut db = Db::new(
        DiskStore::open(
            dir.path(),
            &Options {
                create: true,
                faults: Some(Arc::clone(&faults)),
            },
        )
        .expect("create"),
    );
    for line in &lines[..6] {
        add_json(&mut db, line).expect("store");
    }
    db.flush().expect("flush");
    for line in &lines[6..] {
        add_json(&mut db, line).expect("store");
    }
    faults.set_fail_syncs(true);
    let err = db.flush().expect_err("fsync fails");
    assert!(err.to_string().contains("fsync"), "{err}");
    faults.set_fail_syncs(false);
    assert!(
        matches!(db.flush(), Err(StoreError::Poisoned { .. })),
        "a later fsync must not pretend"
    );
    assert!(matches!(
        db.store_mut().compact(),
        Err(StoreError::Poisoned { .. })
    ));
    drop(db);
    let store = DiskStore::open(dir.path(), &Options::default()).expect("reopen");
    // The failed batch may or may not have reached the disk; the acknowledged six did.
    assert!(store.len() >= 6);
    for (record, line) in records_of(&store).iter().zip(&lines) {
        assert_eq!(record.msg.to_json(), *line);
    }
}

#[test]
fn a_full_disk_during_compaction_leaves_the_store_usable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = feed_lines("compactfull", "post", 50);
    store_with(dir.path(), &lines);
    let faults = Faults::new();
    let mut store = DiskStore::open(dir.path(), &options_with(&faults)).expect("open");
    let before = records_of(&store);
    faults.set_write_budget_bytes(1000);
    let err = store.compact().expect_err("full");
    assert_eq!(io_kind(&err), Some(ErrorKind::StorageFull), "{err}");
    assert!(!store.is_poisoned(), "the live log was never touched");
    assert!(
        !dir.path().join(COMPACT_FILE).exists(),
        "the partial file is removed"
    );
    faults.set_write_budget_bytes(u64::MAX);
    assert_eq!(records_of(&store), before);
    store.compact().expect("compacts once there is room");
    assert_eq!(records_of(&store), before);
    drop(store);
    let store = DiskStore::open(dir.path(), &Options::default()).expect("reopen");
    assert_eq!(records_of(&store), before);
}

#[test]
fn one_writer_per_directory_and_readers_beside_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = feed_lines("lock", "post", 3);
    store_with(dir.path(), &lines);
    let mut writer = DiskStore::open(dir.path(), &Options::default()).expect("writer");
    let err = DiskStore::open(dir.path(), &Options::default()).expect_err("second writer");
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    // A reader sees the committed state, and not what the writer has not flushed.
    let extra = proto::msg::decode_str(&feed_lines("lock2", "post", 0)[0]).expect("msg");
    writer
        .append(extra.id(), Arc::new(extra.clone()))
        .expect("append");
    let mut reader = DiskStore::open_read_only(dir.path(), &Options::default()).expect("reader");
    assert_eq!(reader.len(), 5);
    let err = reader
        .append(extra.id(), Arc::new(extra))
        .expect_err("read-only");
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
    let err = reader.compact().expect_err("read-only");
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
    writer.flush().expect("flush");
    assert_eq!(
        DiskStore::open_read_only(dir.path(), &Options::default())
            .expect("reader")
            .len(),
        6
    );
    // A compaction does not disturb an open reader.
    writer.compact().expect("compact");
    assert_eq!(records_of(&reader).len(), 5);
    drop(writer);
    DiskStore::open(dir.path(), &Options::default()).expect("the lock is released on drop");
}

#[test]
fn an_exhausted_sequence_number_range_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let header = FileHeader {
        seq_floor: u64::MAX,
    }
    .encode();
    std::fs::write(dir.path().join(LOG_FILE), header).expect("write");
    let mut store = DiskStore::open(dir.path(), &Options::default()).expect("open");
    let msg = proto::msg::decode_str(&feed_lines("seq", "post", 0)[0]).expect("msg");
    let err = store
        .append(msg.id(), Arc::new(msg))
        .expect_err("no sequence number left");
    assert!(matches!(err, StoreError::Full { .. }), "{err}");
}
