//! The PPPPP peer: actors around `proto`, the disk store, transports, and the `ppppp`
//! command-line program.
//!
//! - [`cli`]: the `ppppp` program (the only place that uses `anyhow`).
//! - [`net`]: the transport seam (`Net`, `TokioNet`, type-erased streams).

pub mod cli;
pub mod net;
