//! The control channels of a running peer: JSON lines on `ppppp serve`'s standard input, and
//! muxrpc on the local socket `DIR/socket` that the `ppppp` commands use. Both parse into
//! the same [`request::Request`] and run through the same executor.
//!
//! - [`request`]: commands and their fields, parsed (pure).
//! - [`lines`]: standard input cut into bounded lines (pure).
//! - [`session`]: one socket client's muxrpc, bounded (sans-I/O).
//! - [`execute`], [`tools`]: running requests on the node; [`invites`]: invites and the
//!   promises remotes redeem.
//! - [`socket`]: the socket file, its permissions, binding and connecting.
//! - [`server`], [`client`]: the two ends of the socket.
//! - [`fuzz`]: the fuzz target's body (`fuzz/fuzz_targets/control_channel.rs`).

pub(crate) mod client;
pub(crate) mod execute;
pub mod fuzz;
pub(crate) mod invites;
pub(crate) mod lines;
pub(crate) mod request;
pub(crate) mod server;
pub(crate) mod session;
pub(crate) mod socket;
mod tools;
