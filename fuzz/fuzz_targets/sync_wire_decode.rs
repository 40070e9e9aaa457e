//! Fuzzes the checks and typing of one sync data object (`proto::sync::wire::decode`) and
//! the round trip of what it accepts.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    proto::fuzzing::sync_wire_decode(data);
});
