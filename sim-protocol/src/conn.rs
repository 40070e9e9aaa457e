//! Connections: dialing (refused, timed out, or a handshake of round trips), opening a
//! link's two sessions, sending and receiving sync objects, and closing. How they move
//! through the pipes, keepalives and the idle timeout are `crate::wires`, shared with the
//! generic engine.
//!
//! Byte counts are the full-stack tier's: a sync object costs its JSON text plus the
//! muxrpc header, split into msgs, bloom and control as the node splits it; an SHSE
//! handshake costs its four messages (client 64 + 144 bytes, server 64 + 80).

use proto::dial::{Event as DialEvent, TargetId};
use proto::sync::wire::Received;
use proto::sync::{Event as SyncEvent, SyncMsg};
use sim::plan::PeerIdx;
use sim::scenario::Transport;
use sim::trace::{EventKind, WireKind};

use crate::dialing::{Dialing, dialing_by_fields};
use crate::link::{Carried, DialerObjects, End, LinkId, SyncObject};
use crate::run::{Ev, Run};
use crate::wires::{LinkEv, MUXRPC_HEADER_BYTES, Wired, wired_by_fields};

/// SHSE bytes the client sends (hello 64, authenticate 144).
pub(crate) const SHSE_CLIENT_BYTES: u64 = 64 + 144;
/// SHSE bytes the server sends (hello 64, accept 80).
pub(crate) const SHSE_SERVER_BYTES: u64 = 64 + 80;

impl Run<'_> {
    pub(crate) fn open_link(&mut self, dialer: PeerIdx, acceptor: PeerIdx, target: TargetId) {
        let link = self.add_link((dialer, acceptor), target, self.timers.liveness());
        if self.plan.transport == Transport::Shse {
            for (from, to, bytes) in [
                (acceptor, dialer, SHSE_SERVER_BYTES),
                (dialer, acceptor, SHSE_CLIENT_BYTES),
            ] {
                self.emit(EventKind::Send {
                    from,
                    to,
                    kind: WireKind::Handshake,
                    bytes,
                });
            }
        }
        self.emit(EventKind::Connect {
            a: dialer,
            b: acceptor,
        });
        for peer in [dialer, acceptor] {
            if let Some(running) = self.peers[peer as usize].running.as_mut() {
                running.links.insert(link);
            }
        }
        self.redial(dialer, DialEvent::Connected(target));
        self.feed(
            acceptor,
            SyncEvent::Opened {
                key: link,
                initiate: false,
            },
        );
        self.feed(
            dialer,
            SyncEvent::Opened {
                key: link,
                initiate: true,
            },
        );
        let tick = Ev::Link(LinkEv::Tick(link));
        self.queue.push(self.now + self.timers.keepalive_ms, tick);
    }

    /// Sends a sync object from `peer` over `link`, counting its bytes as the node does
    /// (from its JSON text, written into a buffer the run reuses).
    pub(crate) fn send_sync(&mut self, peer: PeerIdx, link: LinkId, message: SyncMsg) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        let from = state.end_of(peer);
        if from == End::Dialer {
            state.extra.entry(message.id).or_default().exchanged += 1;
        }
        let to = state.peer(from.other());
        let text = &mut self.json_scratch;
        text.clear();
        let msg_bytes = message.write_json(text) as u64;
        let total = text.len() as u64;
        let bloom_bytes = message.bloom().map_or(0, |bloom| {
            text.clear();
            bloom.write_json(text);
            text.len() as u64
        });
        let control = total - msg_bytes.min(total) - bloom_bytes.min(total) + MUXRPC_HEADER_BYTES;
        let mut wire_bytes = 0;
        for (kind, bytes) in [
            (WireKind::Msgs, msg_bytes),
            (WireKind::Bloom, bloom_bytes),
            (WireKind::SyncControl, control),
        ] {
            if bytes > 0 {
                wire_bytes += bytes;
                self.emit(EventKind::Send {
                    from: peer,
                    to,
                    kind,
                    bytes,
                });
            }
        }
        self.messages += 1;
        self.transmit(
            link,
            from.other(),
            Carried::Msg(Box::new(message)),
            wire_bytes,
        );
    }

    /// Closes a link: both sessions end, the dialer redials; `reason` as the dialer saw it.
    pub(crate) fn close(&mut self, link: LinkId, reason: &str) {
        let Some(state) = self.links.remove(&link) else {
            return;
        };
        self.emit(EventKind::Disconnect {
            a: state.dialer,
            b: state.acceptor,
            reason: reason.to_owned(),
        });
        for peer in [state.dialer, state.acceptor] {
            let Some(running) = self.peers[peer as usize].running.as_mut() else {
                continue;
            };
            running.links.remove(&link);
            self.feed(peer, SyncEvent::Closed { key: link });
        }
        if self.peers[state.dialer as usize].running.is_some() {
            self.redial(state.dialer, DialEvent::Disconnected(state.target));
        }
    }
}

impl Wired for Run<'_> {
    type Msg = SyncObject;

    type Extra = DialerObjects;

    fn receive_msg(&mut self, link: LinkId, to: End, receiver: PeerIdx, message: SyncObject) {
        if let Some(state) = self.links.get_mut(&link)
            && to == End::Dialer
        {
            state.extra.entry(message.id).or_default().exchanged += 1;
        }
        let decoded = Ok(Received {
            msg: *message,
            dropped: Vec::new(),
        });
        self.feed(receiver, SyncEvent::Decoded { key: link, decoded });
    }

    fn close_link(&mut self, link: LinkId, reason: &str) {
        self.close(link, reason);
    }

    wired_by_fields!();
}

impl Dialing for Run<'_> {
    /// TCP's round trip, then SHSE's two (none for plaintext).
    fn handshake_round_trips(&self, _dialer: PeerIdx) -> u32 {
        match self.plan.transport {
            Transport::Shse => 3,
            Transport::Plaintext => 1,
        }
    }

    dialing_by_fields!();
}
