#![no_main]
//! See `node::cli::fuzz::control_channel` for what this target exercises.

libfuzzer_sys::fuzz_target!(|data: &[u8]| node::cli::fuzz::control_channel(data));
