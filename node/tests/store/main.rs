//! Tests of the durable store (`node::store`) and the `ppppp` commands over it.
//!
//! Environment: `SEED` (random streams), `PROPTEST_CASES` (model test),
//! `STORE_CRASH_ITERATIONS` (kill tests), `STORE_COMPACT_MSGS` (size of the
//! compaction crash test's store).

mod bad_input;
mod cli;
mod common;
mod crash;
mod model;
mod open_batch;
mod salvage;
mod side;
mod torn;
