//! Reads of msgs added in the open batch (not yet flushed): a sync commit reads every msg it
//! adds back "as stored", and the disk store answers with the msg it was given instead of
//! decoding the record it has just encoded from it.

use std::sync::Arc;

use node::store::{DiskStore, Options};
use proto::store::{Store, StoredMetadata};

use crate::common::pool;

fn open(dir: &std::path::Path) -> DiskStore {
    DiskStore::open(
        dir,
        &Options {
            create: true,
            faults: None,
        },
    )
    .expect("store")
}

#[test]
fn a_msg_read_back_in_its_batch_and_after_the_flush_is_the_msg_given() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = open(dir.path());
    let msgs = &pool().msgs;
    for (id, msg) in msgs {
        store.append(*id, Arc::clone(msg)).expect("append");
        let read = store.get(id).expect("get").expect("stored");
        assert!(
            Arc::ptr_eq(&read.msg, msg),
            "in the open batch: not decoded"
        );
        let Some(StoredMetadata::Msg(whole)) = store.get_metadata(id).expect("metadata") else {
            panic!("an open batch's msg answers its metadata whole");
        };
        assert!(Arc::ptr_eq(&whole, msg));
    }
    store.flush().expect("flush");
    for (id, msg) in msgs {
        let read = store.get(id).expect("get").expect("stored");
        assert!(
            Arc::ptr_eq(&read.msg, msg),
            "kept in the decoded cache once written"
        );
    }
    drop(store);
    // What was written decodes to the same msgs.
    let store = open(dir.path());
    for (id, msg) in msgs {
        let read = store.get(id).expect("get").expect("stored after reopen");
        assert_eq!(*read.msg, **msg);
    }
}

#[test]
fn an_erase_in_the_open_batch_is_read_as_erased() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = open(dir.path());
    let msgs = &pool().msgs;
    for (id, msg) in msgs {
        store.append(*id, Arc::clone(msg)).expect("append");
    }
    let (id, msg) = msgs
        .iter()
        .find(|(_, msg)| msg.has_data())
        .expect("a msg with data");
    assert!(store.erase(id).expect("erase"));
    let read = store.get(id).expect("get").expect("still stored");
    assert!(
        !read.msg.has_data(),
        "the erased record, not the msg appended"
    );
    assert_eq!(*read.msg, msg.erased());
    store.flush().expect("flush");
    let read = store.get(id).expect("get").expect("still stored");
    assert!(!read.msg.has_data());
}
