//! The PPPPP peer: everything around the pure protocol machines of `proto` that touches the
//! network, the disk or a runtime, and the `ppppp` command-line program.
//!
//! Module map:
//! - [`cli`]: the `ppppp` program (the only place that uses `anyhow`).
//! - [`durable`]: small state files replaced whole (write, fsync, rename).
//! - [`hub`]: hubs (attendants, tunnels, membership tokens) and the hub client.
//! - [`invite`]: pzp-invite URIs and pzp-promise promises.
//! - [`keyfile`]: the keypair secret file (pzp-keypair's format).
//! - [`net`]: the transport seam (`Net`, `TokioNet`, type-erased streams).
//! - [`peer`]: the node as ractor actors (`peer::run` → `NodeHandle`).
//! - [`store`]: the durable msg store ([`store::DiskStore`]).
//! - [`transport`]: the wire stack a JS `pzp-*` peer speaks (protocol.md §11–12): caps, the
//!   SHSE handshake, pull-secretstream encryption, muxrpc framing and calls, and multiserver /
//!   multiaddr addresses.
//! - [`tunnel`]: hub tunnels as byte streams, and the `Net` that dials `tunnel:` addresses.

pub mod cli;
pub mod durable;
pub mod hub;
pub mod invite;
pub mod keyfile;
pub mod net;
pub mod peer;
pub mod store;
pub mod transport;
pub mod tunnel;
pub mod verify_ahead;

/// The one entry point for production and simulation: see [`peer::run`].
pub use peer::{NodeConfig, NodeHandle, run};
