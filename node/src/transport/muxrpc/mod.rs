//! muxrpc: the frame codec ([`codec`]), the call machine ([`rpc`]), secret-stack's
//! permission check ([`perms`]) and a small async frame reader ([`io`]).
//! protocol.md §11.4 describes the wire format; the module docs below repeat
//! what each piece needs.

pub mod codec;
pub mod echo;
pub mod io;
pub mod perms;
pub mod rpc;

pub use codec::{
    BodyType, CodecError, Decoder, FRAME_BODY_LEN_MAX, Frame, HEADER_LEN, Header, Packet,
};
pub use perms::Permissions;
pub use rpc::{
    Body, CallError, CallId, CallType, ErrorBody, Event, INBOUND_CALLS_MAX, OUTBOUND_CALLS_MAX,
    Rpc, RpcError,
};

#[cfg(test)]
mod tests;
