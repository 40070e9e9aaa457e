#![no_main]
//! See `node::transport::fuzz::secretstream_decrypt` for what this target exercises.

libfuzzer_sys::fuzz_target!(|data: &[u8]| node::transport::fuzz::secretstream_decrypt(data));
