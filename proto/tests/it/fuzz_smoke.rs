//! The fuzz target's body, run on stable over seeded mutations of the vector msgs, so CI
//! exercises it without nightly (`fuzz/` runs the real fuzzer; see README).

use proto::fuzzing;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde_json::Value;

use crate::support::load;

/// Inputs tried; about a second in a debug build.
const INPUTS: usize = 3000;

fn mutate(rng: &mut ChaCha8Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    let edits = 1 + rng.next_u32() % 4;
    for _ in 0..edits {
        if bytes.is_empty() {
            break;
        }
        let at = rng.next_u32() as usize % bytes.len();
        match rng.next_u32() % 5 {
            0 => bytes[at] ^= 1 << (rng.next_u32() % 8),
            1 => bytes.truncate(at),
            2 => {
                bytes.remove(at);
            }
            3 => {
                const SPECIALS: &[u8] = b"{}[]\",:0-e.\\u";
                bytes.insert(at, SPECIALS[rng.next_u32() as usize % SPECIALS.len()]);
            }
            _ => {
                let byte = bytes[at];
                bytes.insert(at, byte);
            }
        }
    }
    bytes
}

#[test]
fn decode_and_add_survives_mutated_vectors() {
    let vectors = load("msgs-db.json");
    let msgs: Vec<Value> = vectors["msgs"]
        .as_array()
        .expect("msgs")
        .iter()
        .map(|entry| entry["msg"].clone())
        .collect();
    let seeded = fuzzing::seeded_db(&msgs);
    let mut inputs: Vec<Vec<u8>> = msgs
        .iter()
        .map(|msg| msg.to_string().into_bytes())
        .collect();
    for case in load("invalid.json")["cases"].as_array().expect("cases") {
        inputs.push(case["msg"].to_string().into_bytes());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    for index in 0..INPUTS {
        let base = inputs[index % inputs.len()].clone();
        let input = mutate(&mut rng, base);
        let mut db = proto::db::Db::new(seeded.store().clone());
        fuzzing::decode_and_add(&mut db, &input);
    }
}

/// The data objects of the sync-trace vector (phases 1–9), as JSON text.
fn sync_objects() -> Vec<Vec<u8>> {
    load("sync-trace.json")["syncMessages"]
        .as_array()
        .expect("syncMessages")
        .iter()
        .map(|entry| entry["data"].clone())
        .filter(|data| data["phase"].as_u64().is_some_and(|phase| phase >= 1))
        .map(|data| data.to_string().into_bytes())
        .collect()
}

#[test]
fn sync_wire_decode_survives_mutated_trace_objects() {
    let objects = sync_objects();
    assert!(objects.len() > 20, "{} objects", objects.len());
    // The unmutated objects are accepted and round-trip (the property the body asserts).
    for object in &objects {
        let value: Value = serde_json::from_slice(object).expect("JSON");
        proto::sync::wire::decode(&value).expect("a vector object is accepted");
        fuzzing::sync_wire_decode(object);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x5_91c);
    for index in 0..INPUTS {
        let input = mutate(&mut rng, objects[index % objects.len()].clone());
        fuzzing::sync_wire_decode(&input);
    }
}

#[test]
fn sync_session_receive_survives_mutated_trace_exchanges() {
    let trace = load("sync-trace.json");
    let msgs: Vec<Value> = trace["bobMsgs"]
        .as_array()
        .expect("bobMsgs")
        .iter()
        .map(|entry| entry["msg"].clone())
        .collect();
    let target = fuzzing::SyncTarget::new(&msgs);
    let objects = sync_objects();
    let mut rng = ChaCha8Rng::seed_from_u64(0x5e55);
    for round in 0..INPUTS / 10 {
        // A run of consecutive trace objects, some mutated, as JSON lines.
        let start = round % objects.len();
        let mut input = Vec::new();
        for object in objects.iter().cycle().skip(start).take(1 + round % 12) {
            let object = if rng.next_u32() % 3 == 0 {
                mutate(&mut rng, object.clone())
            } else {
                object.clone()
            };
            input.extend_from_slice(&object);
            input.push(b'\n');
        }
        fuzzing::sync_session_receive(&target, &input);
    }
}
