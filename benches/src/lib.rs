//! Shared fixtures for the criterion benches (the benches themselves are in `benches/`).
//!
//! Run them with `cargo bench -p benches`; each bench file's header says what it measures
//! and which JS reference figure it is compared with (docs/benchmarks.md).

pub mod fixtures;
