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
