#![no_main]
//! See `node::transport::fuzz::shse_server` for what this target exercises.

libfuzzer_sys::fuzz_target!(|data: &[u8]| node::transport::fuzz::shse_server(data));
