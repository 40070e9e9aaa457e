//! The metadata side file (`db/meta`): a restarted store builds its tangles from it without
//! reading the msgs' records, builds the same tangles as from the records, and treats a
//! missing, cut or damaged file as a cache to rebuild, never as the truth.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use node::store::{DiskStore, Options, SIDE_FILE, SideReport};
use proto::db::Db;
use proto::ids::{MsgId, TangleId};
use proto::msg::Msg;
use proto::store::{MemberLink, Store};

use crate::common::{feed_lines, records_of};

const POSTS: usize = 300;

/// A store in `dir` holding a feed of [`POSTS`] posts and another of 20 (the account tangle,
/// two moots); returns the tangles.
fn fill(dir: &Path) -> Vec<TangleId> {
    let mut db = Db::new(DiskStore::create(dir).expect("create"));
    let mut tangles = Vec::new();
    for (seed, count) in [("side-a", POSTS), ("side-b", 20)] {
        for line in feed_lines(seed, "post", count) {
            let msg = proto::msg::decode_str(&line).expect("msg");
            tangles.extend(msg.metadata.tangles.keys().copied());
            db.add(msg, None).expect("valid");
        }
    }
    db.flush().expect("flush");
    tangles.sort();
    tangles.dedup();
    tangles
}

/// Everything a tangle says, per tangle: topological order, and each member's depth, `prev`
/// and whether it has data; then the tips.
fn shapes(db: &mut Db<DiskStore>, tangles: &[TangleId]) -> Vec<String> {
    let mut out = Vec::new();
    for tangle_id in tangles {
        let tangle = db.tangle(tangle_id).expect("tangle");
        let members: Vec<MsgId> = tangle.topo_order().copied().collect();
        for id in members {
            out.push(format!(
                "{tangle_id} {id} {:?} {:?} {:?}",
                tangle.depth(&id),
                tangle.prev(&id),
                tangle.has_data(&id)
            ));
        }
        out.push(format!("{tangle_id} tips {:?}", tangle.tips()));
    }
    out
}

/// Reopens the store, loads every tangle, and returns their shapes, every msg's metadata
/// and what the side file reported.
fn restart(dir: &Path, tangles: &[TangleId]) -> (Vec<String>, Vec<String>, SideReport) {
    let store = DiskStore::open(dir, &Options::default()).expect("reopen");
    let mut db = Db::new(store);
    let shapes = shapes(&mut db, tangles);
    let ids: Vec<MsgId> = records_of(db.store()).iter().map(|r| r.id).collect();
    let metadata = ids
        .iter()
        .map(|id| {
            let stored = db.get_metadata(id).expect("get").expect("stored");
            format!("{id} {:?} {}", stored.metadata(), stored.has_data())
        })
        .collect();
    let report = db.store().side_report();
    for tangle in tangles {
        assert_eq!(
            db.store().tangle_links(tangle).expect("links"),
            links_from_metadata(db.store(), tangle),
            "{tangle}: the store's links are those of its members' whole metadata"
        );
    }
    (shapes, metadata, report)
}

/// The links of `tangle` as the `Store` trait's default gives them: each member's whole
/// metadata read and cut down.
fn links_from_metadata(store: &DiskStore, tangle: &TangleId) -> Vec<MemberLink> {
    let mut links: Vec<MemberLink> = Vec::new();
    for member in store.tangle_members(tangle).expect("members") {
        let stored = store.get_metadata(&member).expect("get").expect("stored");
        let last_tips = links.last().and_then(|last| last.account_tips.as_ref());
        links.extend(MemberLink::of(tangle, member, &stored, last_tips));
    }
    links
}

/// The full decode of every record, for comparison.
fn decoded_metadata(dir: &Path) -> Vec<String> {
    let store = DiskStore::open_read_only(dir, &Options::default()).expect("reader");
    records_of(&store)
        .iter()
        .map(|record| {
            let msg: &Msg = &record.msg;
            format!("{} {:?} {}", record.id, msg.metadata, msg.has_data())
        })
        .collect()
}

fn side_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(SIDE_FILE))
        .expect("side file")
        .len()
}

#[test]
fn a_restart_builds_its_tangles_from_the_side_file_and_they_equal_the_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tangles = fill(dir.path());
    let (with_side, metadata, report) = restart(dir.path(), &tangles);
    assert_eq!(report.read_from_log, 0, "no record was read: {report:?}");
    assert!(report.read_from_side as usize >= POSTS, "{report:?}");
    assert_eq!(
        metadata,
        decoded_metadata(dir.path()),
        "metadata as decoded"
    );

    std::fs::remove_file(dir.path().join(SIDE_FILE)).expect("remove");
    let (from_records, metadata_again, report) = restart(dir.path(), &tangles);
    assert_eq!(
        from_records, with_side,
        "same tangles without the side file"
    );
    assert_eq!(metadata_again, metadata);
    assert!(report.read_from_log as usize >= POSTS, "{report:?}");
    assert_eq!(report.read_from_side, 0);

    // Reading from the records wrote the entries again.
    let (rebuilt, _, report) = restart(dir.path(), &tangles);
    assert_eq!(rebuilt, with_side);
    assert_eq!(report.read_from_log, 0, "rebuilt: {report:?}");
}

#[test]
fn a_cut_side_file_is_cut_at_its_last_whole_entry_and_rebuilt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tangles = fill(dir.path());
    let (expected, metadata, _) = restart(dir.path(), &tangles);
    let len = side_len(dir.path());
    let file = OpenOptions::new()
        .write(true)
        .open(dir.path().join(SIDE_FILE))
        .expect("open");
    file.set_len(len / 2 + 3).expect("cut mid-entry");
    drop(file);
    let (shapes, metadata_cut, report) = restart(dir.path(), &tangles);
    assert_eq!(shapes, expected, "same tangles from a cut side file");
    assert_eq!(metadata_cut, metadata);
    assert!(
        report.damaged_at.is_some_and(|at| at <= len / 2 + 3),
        "{report:?}"
    );
    assert!(report.read_from_log > 0, "{report:?}");
    let (again, _, report) = restart(dir.path(), &tangles);
    assert_eq!(again, expected);
    assert_eq!(report.damaged_at, None, "cut and rebuilt: {report:?}");
    assert_eq!(report.read_from_log, 0, "rebuilt: {report:?}");
}

#[test]
fn a_damaged_entry_or_header_is_never_trusted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tangles = fill(dir.path());
    let (expected, metadata, _) = restart(dir.path(), &tangles);
    let path = dir.path().join(SIDE_FILE);
    let flip = |at: u64| {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        let mut byte = [0u8; 1];
        file.read_exact_at(&mut byte, at).expect("read");
        file.write_all_at(&[byte[0] ^ 0x40], at).expect("write");
    };
    // A byte in the middle of the entries: the checksum catches it.
    flip(side_len(dir.path()) / 2);
    let (shapes, metadata_damaged, report) = restart(dir.path(), &tangles);
    assert_eq!(shapes, expected);
    assert_eq!(metadata_damaged, metadata);
    assert!(report.damaged_at.is_some(), "{report:?}");
    assert!(report.read_from_log > 0);
    // The header: the file is started afresh.
    flip(3);
    let (shapes, metadata_restarted, report) = restart(dir.path(), &tangles);
    assert_eq!(shapes, expected);
    assert_eq!(metadata_restarted, metadata);
    assert!(report.restarted, "{report:?}");
    assert!(report.read_from_log as usize >= POSTS, "{report:?}");
    let (_, _, report) = restart(dir.path(), &tangles);
    assert_eq!(report.read_from_log, 0, "rebuilt: {report:?}");
}

#[test]
fn entries_outlive_erase_delete_and_compaction_and_say_only_what_is_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tangles = fill(dir.path());
    let records = {
        let reader = DiskStore::open_read_only(dir.path(), &Options::default()).expect("reader");
        records_of(&reader)
    };
    {
        let mut db = Db::new(DiskStore::open(dir.path(), &Options::default()).expect("open"));
        // Erase and delete some posts of the long feed (the newest, so the rest still
        // forms a tangle), then compact: records move, IDs do not.
        for record in records.iter().rev().skip(20).take(10) {
            db.store_mut().erase(&record.id).expect("erase");
        }
        for record in records.iter().rev().skip(40).take(1) {
            db.store_mut().delete(&record.id).expect("delete");
        }
        db.store_mut().compact().expect("compact");
        db.flush().expect("flush");
    }
    let (shapes, metadata, report) = restart(dir.path(), &tangles);
    assert_eq!(
        metadata,
        decoded_metadata(dir.path()),
        "erased msgs have no data"
    );
    assert_eq!(
        report.read_from_log, 0,
        "entries survive compaction: {report:?}"
    );
    std::fs::remove_file(dir.path().join(SIDE_FILE)).expect("remove");
    let (from_records, _, _) = restart(dir.path(), &tangles);
    assert_eq!(shapes, from_records);
}

#[test]
fn a_reader_never_writes_the_side_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tangles = fill(dir.path());
    std::fs::remove_file(dir.path().join(SIDE_FILE)).expect("remove");
    let reader = DiskStore::open_read_only(dir.path(), &Options::default()).expect("reader");
    let mut db = Db::new(reader);
    let _ = shapes(&mut db, &tangles);
    drop(db);
    assert!(!dir.path().join(SIDE_FILE).exists());
}

#[test]
fn a_restarts_first_sync_index_reads_nothing_its_tangle_load_did_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tangles = fill(dir.path());
    let store = DiskStore::open(dir.path(), &Options::default()).expect("reopen");
    let mut db = Db::new(store);
    let mut index = proto::sync::SyncIndex::new();
    for tangle in &tangles {
        db.tangle(tangle).expect("load");
    }
    let loaded = db.store().side_report();
    assert_eq!(loaded.read_from_log, 0, "{loaded:?}");
    assert!(loaded.read_from_side as usize >= POSTS, "{loaded:?}");
    for tangle in &tangles {
        index.warm(&mut db, tangle).expect("index");
    }
    let indexed = db.store().side_report();
    assert_eq!(
        (indexed.read_from_side, indexed.read_from_log),
        (loaded.read_from_side, loaded.read_from_log),
        "the index took its account tips from the loads, not from each member again"
    );
    index
        .check_invariants(&db)
        .expect("same index as from whole metadata");
    db.check_invariants()
        .expect("same tangles as from whole metadata");
}
