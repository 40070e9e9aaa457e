//! Torn and damaged tails: the log is cut at every byte offset of its last batches, and every
//! byte there is flipped; each time the store must reopen with exactly the batches before the
//! damage (when the damage is in the last batch, as a crash leaves it) or refuse to open and
//! change nothing (when intact data follows, which no crash produces). Never a panic.

use std::path::Path;
use std::sync::Arc;

use node::store::{DiskStore, LOG_FILE, Options, StoreError};
use proto::ids::MsgId;
use proto::msg::Msg;
use proto::store::Store;

use crate::common::{feed_lines, records_of};

/// Msgs written one batch each at the end of the log (the region the test damages).
const SINGLE_BATCHES: usize = 3;
/// Msgs in the bulk batch before them.
const BULK_MSGS: usize = 10;

struct Fixture {
    dir: tempfile::TempDir,
    log: Vec<u8>,
    /// Log length after each flush (batch boundaries), bulk batch first.
    boundaries: Vec<u64>,
    /// The msgs durable at each boundary.
    msgs_at: Vec<usize>,
    msgs: Vec<(MsgId, Arc<Msg>)>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = feed_lines("torn", "post", BULK_MSGS + SINGLE_BATCHES - 2);
    let msgs: Vec<(MsgId, Arc<Msg>)> = lines
        .iter()
        .map(|line| {
            let msg = proto::msg::decode_str(line).expect("fixture msg");
            (msg.id(), Arc::new(msg))
        })
        .collect();
    assert_eq!(msgs.len(), BULK_MSGS + SINGLE_BATCHES);
    let mut store = DiskStore::create(dir.path()).expect("create");
    let log_path = dir.path().join(LOG_FILE);
    let mut boundaries = Vec::new();
    let mut msgs_at = Vec::new();
    for (index, (id, msg)) in msgs.iter().enumerate() {
        store.append(*id, Arc::clone(msg)).expect("append");
        if index + 1 >= BULK_MSGS {
            store.flush().expect("flush");
            boundaries.push(std::fs::metadata(&log_path).expect("stat").len());
            msgs_at.push(index + 1);
        }
    }
    drop(store);
    let log = std::fs::read(&log_path).expect("read log");
    Fixture {
        dir,
        log,
        boundaries,
        msgs_at,
        msgs,
    }
}

impl Fixture {
    /// Msgs durable in a log whose intact prefix ends at `len`.
    fn msgs_within(&self, len: u64) -> usize {
        self.boundaries
            .iter()
            .zip(&self.msgs_at)
            .filter(|(boundary, _)| **boundary <= len)
            .map(|(_, msgs)| *msgs)
            .next_back()
            .unwrap_or(0)
    }

    fn check_records(&self, store: &DiskStore, expected: usize, context: &str) {
        let records = records_of(store);
        assert_eq!(records.len(), expected, "{context}");
        for (record, (id, msg)) in records.iter().zip(&self.msgs) {
            assert_eq!(&record.id, id, "{context}");
            assert_eq!(&record.msg, msg, "{context}");
        }
    }
}

fn write_log(dir: &Path, bytes: &[u8]) {
    std::fs::write(dir.join(LOG_FILE), bytes).expect("write log");
}

#[test]
fn truncation_at_every_offset_of_the_last_batches_keeps_every_whole_batch() {
    let fixture = fixture();
    let damage_from = fixture.boundaries[0];
    let dir = fixture.dir.path();
    let mut offsets = 0;
    for len in damage_from..=u64::try_from(fixture.log.len()).expect("len") {
        let cut = usize::try_from(len).expect("len");
        write_log(dir, &fixture.log[..cut]);
        let expected = fixture.msgs_within(len);
        let context = format!("log cut to {len} bytes");
        let reader = DiskStore::open_read_only(dir, &Options::default()).expect(&context);
        fixture.check_records(&reader, expected, &context);
        drop(reader);
        let mut store = DiskStore::open(dir, &Options::default()).expect(&context);
        fixture.check_records(&store, expected, &context);
        let boundary = fixture
            .boundaries
            .iter()
            .copied()
            .rfind(|boundary| *boundary <= len)
            .expect("the bulk batch is whole");
        assert_eq!(
            store.recovery().torn_tail_bytes,
            len - boundary,
            "{context}"
        );
        // The cut is on disk, and the store takes new writes after it.
        let on_disk = std::fs::metadata(dir.join(LOG_FILE)).expect("stat").len();
        assert_eq!(on_disk, boundary, "{context}");
        let (next_id, next_msg) = &fixture.msgs[expected.min(fixture.msgs.len() - 1)];
        if expected < fixture.msgs.len() {
            store
                .append(*next_id, Arc::clone(next_msg))
                .expect("append after recovery");
            store.flush().expect("flush after recovery");
            drop(store);
            let reopened = DiskStore::open(dir, &Options::default()).expect(&context);
            fixture.check_records(&reopened, expected + 1, &context);
        }
        offsets += 1;
    }
    assert!(offsets > 100, "the last batches span {offsets} offsets");
}

#[test]
fn a_flipped_byte_is_cut_in_the_last_batch_and_refused_before_it() {
    let fixture = fixture();
    let dir = fixture.dir.path();
    let last_batch_start = fixture.boundaries[fixture.boundaries.len() - 2];
    for offset in fixture.boundaries[0]..u64::try_from(fixture.log.len()).expect("len") {
        let position = usize::try_from(offset).expect("offset");
        for flip in [0x01u8, 0xFF] {
            let mut damaged = fixture.log.clone();
            damaged[position] ^= flip;
            write_log(dir, &damaged);
            let context = format!("byte {offset} flipped with {flip:#04x}");
            if offset >= last_batch_start {
                let store = DiskStore::open(dir, &Options::default()).expect(&context);
                let expected = fixture.msgs_within(last_batch_start);
                fixture.check_records(&store, expected, &context);
                assert_eq!(
                    store.recovery().torn_tail_offset,
                    Some(last_batch_start),
                    "{context}"
                );
            } else {
                let reader = DiskStore::open_read_only(dir, &Options::default());
                assert!(
                    matches!(reader, Err(StoreError::Corrupt { .. })),
                    "{context}: {reader:?}"
                );
                let writer = DiskStore::open(dir, &Options::default());
                match writer {
                    Err(StoreError::Corrupt { offset: at, .. }) => {
                        assert!(at <= offset, "{context}: reported at {at}");
                    }
                    other => panic!("{context}: expected corruption, got {other:?}"),
                }
                let after = std::fs::read(dir.join(LOG_FILE)).expect("read");
                assert_eq!(after, damaged, "{context}: a corrupt log is never changed");
            }
        }
    }
}

#[test]
fn damage_in_a_multi_record_batch_cuts_the_whole_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = feed_lines("multi", "post", 6);
    let mut store = DiskStore::create(dir.path()).expect("create");
    let msgs: Vec<Msg> = lines
        .iter()
        .map(|line| proto::msg::decode_str(line).expect("msg"))
        .collect();
    for msg in &msgs[..3] {
        store
            .append(msg.id(), Arc::new(msg.clone()))
            .expect("append");
    }
    store.flush().expect("flush");
    let boundary = std::fs::metadata(dir.path().join(LOG_FILE))
        .expect("stat")
        .len();
    for msg in &msgs[3..] {
        store
            .append(msg.id(), Arc::new(msg.clone()))
            .expect("append");
    }
    store.flush().expect("flush");
    drop(store);
    let log = std::fs::read(dir.path().join(LOG_FILE)).expect("read");
    // Cut in the middle of the second batch, after some of its records are whole.
    let cut = log.len() - 10;
    write_log(dir.path(), &log[..cut]);
    let store = DiskStore::open(dir.path(), &Options::default()).expect("open");
    assert_eq!(
        store.len(),
        3,
        "a batch is acknowledged, and cut, as a whole"
    );
    assert_eq!(store.recovery().torn_tail_offset, Some(boundary));
}

#[test]
fn damage_longer_than_one_batch_is_corruption() {
    let fixture = fixture();
    let dir = fixture.dir.path();
    let mut damaged = fixture.log.clone();
    // Zeros past the end, as if much more than one unfinished batch were lost.
    damaged.resize(fixture.log.len() + 9 * 1024 * 1024, 0);
    write_log(dir, &damaged);
    let err = DiskStore::open(dir, &Options::default()).expect_err("too long for a torn tail");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("more than the one unfinished batch"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.join(LOG_FILE)).expect("read").len(),
        damaged.len(),
        "unchanged"
    );
    // One batch's worth of zeros is a torn tail.
    damaged.truncate(fixture.log.len() + 1024 * 1024);
    write_log(dir, &damaged);
    let store = DiskStore::open(dir, &Options::default()).expect("torn tail");
    assert_eq!(store.len(), u64::try_from(fixture.msgs.len()).expect("len"));
    assert_eq!(store.recovery().torn_tail_bytes, 1024 * 1024);
}
