//! Integration tests of `proto`: conformance with the JS reference's vectors, and properties.

mod fuzz_smoke;
mod props;
mod support;
mod vectors;
