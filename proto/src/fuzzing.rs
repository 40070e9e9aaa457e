//! Entry points for fuzzing: bytes from a fuzzer go through the same path as msgs from a
//! remote peer, and every property that must hold for accepted msgs is asserted.
//!
//! Used by the cargo-fuzz targets in `fuzz/` and by a seeded smoke test that runs on stable
//! in CI (`proto/tests/it/fuzz_smoke.rs`).

use crate::db::Db;
use crate::ingest::{self, Verdict};
use crate::msg;
use crate::store::{MemStore, Store};

/// A database holding the msgs of a JSON array (e.g. `vectors/msgs-db.json`'s `msgs[].msg`),
/// so that fuzzed msgs meet real tangles and accounts.
#[must_use]
pub fn seeded_db(msgs: &[serde_json::Value]) -> Db<MemStore> {
    let mut db = Db::new(MemStore::new());
    for value in msgs {
        if let Ok(msg) = msg::decode(value) {
            let _ = db.add(msg, None);
        }
    }
    db
}

/// Decodes `data` as a msg and adds it to `db`. Never panics on any input; panics (a fuzz
/// finding) only if an accepted msg breaks an invariant: it must be stored, and its JSON must
/// decode back to the same msg with the same ID.
pub fn decode_and_add(db: &mut Db<MemStore>, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let before = db.store().len();
    let verdict = match ingest::add_json(db, text) {
        Ok(verdict) => verdict,
        Err(never) => match never {},
    };
    let Verdict::Ok(id) = verdict else {
        assert_eq!(db.store().len(), before, "a rejected msg changed the store");
        return;
    };
    let stored = match db.get(&id) {
        Ok(Some(stored)) => stored,
        Ok(None) => panic!("accepted msg {id} is not stored"),
        Err(never) => match never {},
    };
    let json = stored.to_json();
    let again = msg::decode_str(&json)
        .unwrap_or_else(|err| panic!("stored msg does not decode: {err}\n{json}"));
    assert_eq!(again.id(), id, "ID changed through a JSON round trip");
    assert_eq!(*stored, again, "msg changed through a JSON round trip");
}
