#![no_main]
//! See `node::transport::fuzz::muxrpc_decode` for what this target exercises.

libfuzzer_sys::fuzz_target!(|data: &[u8]| node::transport::fuzz::muxrpc_decode(data));
