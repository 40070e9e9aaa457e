//! A sync object on the seam: typed (its msgs are `Arc`s shared with the sender, and the
//! receiver takes it as decoded, `proto::sync::Event::Decoded`, without writing and parsing
//! the JSON text a node would), with its bytes computed from that text when it is sent, as
//! the node counts them: the msgs, the bloom, and the rest plus the muxrpc header.

use baselines::{Wire, WireKind};
use proto::sync::SyncMsg;

use crate::wires::MUXRPC_HEADER_BYTES;

/// One sync object and its bytes. Boxed: pipes hold many keepalives, which should not each
/// take a sync object's room.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncWire(Box<Sent>);

#[derive(Debug, Clone, PartialEq)]
struct Sent {
    msg: SyncMsg,
    /// `[msgs, bloom, control]` bytes.
    split: [u64; 3],
}

impl SyncWire {
    /// `msg` with its bytes, computed from its JSON text (written into `text`, a buffer the
    /// caller reuses).
    pub(crate) fn new(msg: SyncMsg, text: &mut String) -> SyncWire {
        text.clear();
        let msg_bytes = msg.write_json(text) as u64;
        let total = text.len() as u64;
        let bloom_bytes = msg.bloom().map_or(0, |bloom| {
            text.clear();
            bloom.write_json(text);
            text.len() as u64
        });
        let control = total - msg_bytes.min(total) - bloom_bytes.min(total) + MUXRPC_HEADER_BYTES;
        SyncWire(Box::new(Sent {
            msg,
            split: [msg_bytes, bloom_bytes, control],
        }))
    }

    /// The object, as the receiver decodes it.
    pub(crate) fn into_msg(self) -> SyncMsg {
        self.0.msg
    }

    /// The tangle it syncs.
    pub(crate) fn tangle(&self) -> &proto::ids::TangleId {
        &self.0.msg.id
    }
}

impl Wire for SyncWire {
    fn bytes(&self) -> u64 {
        self.0.split.iter().sum()
    }

    /// The kind of most of its bytes' purpose: payload when it carries msgs, summary when
    /// it carries a bloom, control otherwise ([`Wire::split`] has each part).
    fn kind(&self) -> WireKind {
        match self.0.split {
            [msgs, ..] if msgs > 0 => WireKind::Payload,
            [_, bloom, _] if bloom > 0 => WireKind::Summary,
            _ => WireKind::Control,
        }
    }

    fn split(&self) -> Option<[u64; 3]> {
        Some(self.0.split)
    }
}
