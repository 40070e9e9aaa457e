//! The PPPPP peer: actors around `proto`, the disk store, transports, and the `ppppp`
//! command-line program.
//!
//! - [`cli`]: the `ppppp` program (the only place that uses `anyhow`).

pub mod cli;
