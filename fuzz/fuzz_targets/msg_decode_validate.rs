//! Fuzzes msg JSON decoding and validation against a database holding real tangles.

#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use proto::db::Db;
use proto::store::MemStore;

fn seed() -> &'static Mutex<Db<MemStore>> {
    static DB: OnceLock<Mutex<Db<MemStore>>> = OnceLock::new();
    DB.get_or_init(|| {
        let text = include_str!("../../vectors/msgs-db.json");
        let vectors: serde_json::Value = serde_json::from_str(text).expect("vector file parses");
        let msgs: Vec<serde_json::Value> =
            vectors["msgs"].as_array().into_iter().flatten().map(|entry| entry["msg"].clone()).collect();
        Mutex::new(proto::fuzzing::seeded_db(&msgs))
    })
}

fuzz_target!(|data: &[u8]| {
    // Each input starts from the same seeded state, so findings reproduce alone.
    let store = seed().lock().expect("not poisoned").store().clone();
    let mut fresh = Db::new(store);
    proto::fuzzing::decode_and_add(&mut fresh, data);
});
