//! Shared helpers: loading the reference vectors, building databases.

use std::path::PathBuf;

use proto::db::Db;
use proto::keys::Keypair;
use proto::msg::{self, Msg};
use proto::store::MemStore;
use serde_json::Value;

/// The repository's `vectors/` folder.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("vectors")
}

/// A vector file, parsed.
pub fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("parse {}: {err}", path.display()))
}

/// Decodes a vector msg, failing the test if it does not decode.
pub fn msg(value: &Value) -> Msg {
    msg::decode(value).unwrap_or_else(|err| panic!("vector msg does not decode: {err}\n{value}"))
}

/// A string field of a vector object.
pub fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("field {field} missing in {value}"))
}

/// The keypair of a vector name (alice, bob, bob2, carol, mallory).
pub fn keypair(name: &str) -> Keypair {
    let seed = match name {
        "alice" => 1,
        "bob" => 2,
        "bob2" => 3,
        "carol" => 4,
        "mallory" => 5,
        other => panic!("no vector keypair {other}"),
    };
    Keypair::from_seed(&[seed; 32])
}

/// A fresh in-memory database.
pub fn db() -> Db<MemStore> {
    Db::new(MemStore::new())
}

/// Hex encoding.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}
