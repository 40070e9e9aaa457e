//! The PPPPP peer: everything around the pure protocol machines of `proto` that
//! touches the network, the disk or a runtime.
//!
//! Module map:
//! - [`transport`]: the wire stack a JS `pzp-*` peer speaks (protocol.md §11–12):
//!   caps, the SHSE handshake, pull-secretstream encryption, muxrpc framing and
//!   calls, and multiserver / multiaddr addresses.

pub mod transport;
