//! The PPPPP peer: actors around `proto`, the disk store, transports, and the `ppppp`
//! command-line program.
//!
//! - [`cli`]: the `ppppp` program (the only place that uses `anyhow`).
//! - [`store`]: the durable msg store ([`store::DiskStore`]).
//! - [`keyfile`]: the keypair secret file.

pub mod cli;
pub mod keyfile;
pub mod store;
