//! Salvaging a damaged log (issue 12, finding 11): one flipped bit mid-log made every open
//! refuse the store, with no way to keep the rest. `DiskStore::salvage` keeps every record
//! it can still read — all intact batches, and the records of a damaged batch up to the
//! damaged one — reports the byte ranges it could not read, and keeps the damaged log.

use std::sync::Arc;

use node::store::{DAMAGED_FILE, DiskStore, LOG_FILE, Options, StoreError};
use proto::ids::MsgId;
use proto::msg::Msg;
use proto::store::Store;

use crate::common::{feed_lines, records_of};

/// Batches of the fixture, each of `RECORDS_PER_BATCH` msgs.
const BATCHES: usize = 5;
const RECORDS_PER_BATCH: usize = 4;

struct Fixture {
    dir: tempfile::TempDir,
    log: Vec<u8>,
    /// Log length after each flush.
    boundaries: Vec<u64>,
    /// Each record's `[start, end)` in the log, in order.
    records: Vec<(u64, u64)>,
    msgs: Vec<(MsgId, Arc<Msg>)>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = feed_lines("salvage", "post", BATCHES * RECORDS_PER_BATCH - 2);
    let msgs: Vec<(MsgId, Arc<Msg>)> = lines
        .iter()
        .map(|line| {
            let msg = proto::msg::decode_str(line).expect("fixture msg");
            (msg.id(), Arc::new(msg))
        })
        .collect();
    assert_eq!(msgs.len(), BATCHES * RECORDS_PER_BATCH);
    let mut store = DiskStore::create(dir.path()).expect("create");
    let log_path = dir.path().join(LOG_FILE);
    let mut boundaries = vec![32];
    let mut records = Vec::new();
    for batch in msgs.chunks(RECORDS_PER_BATCH) {
        let batch_start = boundaries.last().copied().expect("start");
        let mut at = batch_start + 16;
        for (id, msg) in batch {
            store.append(*id, Arc::clone(msg)).expect("append");
            let end = batch_start + 16 + store.disk_stats().pending_bytes;
            records.push((at, end));
            at = end;
        }
        store.flush().expect("flush");
        boundaries.push(std::fs::metadata(&log_path).expect("stat").len());
    }
    drop(store);
    let log = std::fs::read(&log_path).expect("read log");
    Fixture {
        dir,
        log,
        boundaries,
        records,
        msgs,
    }
}

#[test]
fn a_flipped_byte_mid_log_loses_only_what_it_damaged() {
    let fixture = fixture();
    let dir = fixture.dir.path();
    // Bytes across the middle batch (not the last one: that is a torn tail): every byte of
    // its header and first record, every third one after.
    let from = fixture.boundaries[2];
    let to = fixture.boundaries[3];
    let dense_to = fixture.records[2 * RECORDS_PER_BATCH].1;
    let mut salvaged = 0;
    for offset in (from..to).filter(|offset| *offset < dense_to || offset % 3 == 0) {
        let position = usize::try_from(offset).expect("offset");
        let mut damaged = fixture.log.clone();
        damaged[position] ^= 0x10;
        for entry in std::fs::read_dir(dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.file_name().is_some_and(|name| name != "LOCK") {
                std::fs::remove_file(path).expect("remove");
            }
        }
        std::fs::write(dir.join(LOG_FILE), &damaged).expect("write");
        let context = format!("byte {offset} flipped");
        let refused = DiskStore::open(dir, &Options::default());
        assert!(
            matches!(refused, Err(StoreError::Corrupt { .. })),
            "{context}: {refused:?}"
        );
        let (store, report) = DiskStore::salvage(dir, &Options::default()).expect(&context);
        // The damaged record (the one holding the byte) is lost; when the byte is in its
        // length prefix, it cannot be skipped and those after it in its batch are lost too.
        // Every other record is kept.
        let kept: Vec<MsgId> = records_of(&store).iter().map(|record| record.id).collect();
        let damaged_record = fixture
            .records
            .iter()
            .position(|(start, end)| (*start..*end).contains(&offset));
        let batch_end = fixture
            .records
            .iter()
            .position(|(start, _)| *start >= to)
            .expect("later batches");
        let expected: Vec<MsgId> = fixture
            .msgs
            .iter()
            .enumerate()
            .filter(|(index, _)| match damaged_record {
                Some(damaged) if offset < fixture.records[damaged].0 + 4 => {
                    *index < damaged || *index >= batch_end
                }
                Some(damaged) => *index != damaged,
                // The batch header: the whole batch's records are still readable.
                None => true,
            })
            .map(|(_, (id, _))| *id)
            .collect();
        assert_eq!(kept, expected, "{context}: {report:?}");
        assert_eq!(report.msgs, u64::try_from(expected.len()).expect("len"));
        let lost: u64 = report
            .lost
            .iter()
            .map(|range| range.end - range.start)
            .sum();
        assert!(
            report.lost.iter().any(|range| range.contains(&offset)) || damaged_record.is_none(),
            "{context}: the damaged byte is in a reported range: {report:?}"
        );
        assert!(lost <= to - from, "{context}: {report:?}");
        // The damaged log is kept as it was, and the new one opens cleanly.
        let copy = report.damaged_copy.clone().expect("a copy");
        assert_eq!(copy, dir.join(DAMAGED_FILE));
        assert_eq!(std::fs::read(&copy).expect("copy"), damaged, "{context}");
        drop(store);
        let reopened = DiskStore::open(dir, &Options::default()).expect(&context);
        assert_eq!(reopened.len(), u64::try_from(expected.len()).expect("len"));
        salvaged += 1;
    }
    assert!(salvaged > 80, "{salvaged} offsets");
}

#[test]
fn a_clean_store_is_left_alone_and_a_locked_one_refused() {
    let fixture = fixture();
    let dir = fixture.dir.path();
    let (store, report) = DiskStore::salvage(dir, &Options::default()).expect("salvage");
    assert_eq!(report.damaged_copy, None);
    assert!(!report.lost_anything());
    assert_eq!(report.msgs, u64::try_from(fixture.msgs.len()).expect("len"));
    let again = DiskStore::salvage(dir, &Options::default()).expect_err("locked");
    assert!(matches!(again, StoreError::Locked { .. }), "{again}");
    drop(store);
    assert_eq!(
        std::fs::read(dir.join(LOG_FILE)).expect("log"),
        fixture.log,
        "untouched"
    );
}
