//! Connections: dialing (refused, timed out, or a handshake of round trips), opening a
//! link's two sessions, sending and receiving sync objects, and closing. How they move
//! through the pipes, keepalives and the idle timeout are `crate::wires`, shared with the
//! generic engine.
//!
//! Byte counts are the full-stack tier's: a sync object costs its JSON text plus the
//! muxrpc header, split into msgs, bloom and control as the node splits it; an SHSE
//! handshake costs its four messages (client 64 + 144 bytes, server 64 + 80).

use std::collections::BTreeMap;

use proto::dial::{Event as DialEvent, TargetId};
use proto::ids::TangleId;
use proto::sync::wire::Received;
use proto::sync::{Event as SyncEvent, SyncMsg};
use sim::plan::PeerIdx;
use sim::scenario::Transport;
use sim::trace::{EventKind, WireKind};

use crate::link::{Carried, End, Link, LinkId, Links};
use crate::run::{Ev, Run};
use crate::wires::{Backlog, LinkEv, MUXRPC_HEADER_BYTES, Parts, Wired};

/// The dialer's sync objects of one tangle on a link, for `sync_round`: how many it sent and
/// received, and how many at its last reported round.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TangleObjects {
    pub(crate) exchanged: u64,
    pub(crate) at_last_round: Option<u64>,
}

/// The dialer's sync objects per tangle, both ways, kept per link: only the dialer reports
/// rounds, so the acceptor's are not counted (one map per link, not one per end plus one for
/// the rounds).
pub(crate) type DialerObjects = BTreeMap<TangleId, TangleObjects>;

/// A sync object in a pipe, typed: its msgs are `Arc`s shared with the sender, and the
/// receiver takes it as decoded (`proto::sync::Event::Decoded`), without writing and parsing
/// the JSON text a node would (its byte count is computed from that text when it is sent).
/// Boxed: pipes hold many keepalives, which should not each take a sync object's room.
pub(crate) type SyncObject = Box<SyncMsg>;

/// The PPPPP engine's links.
pub(crate) type SyncLinks = Links<SyncObject, DialerObjects>;
/// SHSE bytes the client sends (hello 64, authenticate 144).
pub(crate) const SHSE_CLIENT_BYTES: u64 = 64 + 144;
/// SHSE bytes the server sends (hello 64, accept 80).
pub(crate) const SHSE_SERVER_BYTES: u64 = 64 + 80;
/// The TCP port in addresses of dial failures (the full-stack tier's).
const PORT: u16 = 9000;

impl Run<'_> {
    /// Round trips before a dialer can send: TCP's, then SHSE's two (none for plaintext).
    fn handshake_round_trips(&self) -> u32 {
        match self.plan.transport {
            Transport::Shse => 3,
            Transport::Plaintext => 1,
        }
    }

    /// Starts dialing `target`; the outcome is an event later.
    pub(crate) fn dial(&mut self, peer: PeerIdx, target: TargetId) {
        let state = &self.peers[peer as usize];
        let (Some(&acceptor), Some(incarnation)) =
            (state.targets.get(target.0), state.incarnation())
        else {
            return;
        };
        let name = self.plan.peer_name(acceptor);
        let (delay_ms, failure) = if !self.net.reachable(peer, acceptor) {
            (
                self.timers.connect_timeout_ms,
                Some(format!("connect to {name}:{PORT} timed out")),
            )
        } else if !self.peers[acceptor as usize].up() {
            let rtt = self.round_trip_ms(peer, acceptor);
            (
                rtt,
                Some(format!(
                    "connect to {name}:{PORT} failed: connection refused"
                )),
            )
        } else {
            let mut total = 0;
            for _ in 0..self.handshake_round_trips() {
                total += self.round_trip_ms(peer, acceptor);
            }
            (total, None)
        };
        let at = self.now + delay_ms;
        let event = match failure {
            Some(reason) => Ev::DialFailed {
                peer,
                incarnation,
                target,
                reason,
            },
            None => Ev::Established {
                peer,
                incarnation,
                target,
                acceptor_incarnation: self.peers[acceptor as usize].incarnation(),
            },
        };
        self.queue.push(at, event);
    }

    fn round_trip_ms(&mut self, a: PeerIdx, b: PeerIdx) -> u64 {
        self.net.latency_ms(a, b) + self.net.latency_ms(b, a)
    }

    pub(crate) fn dial_failed(
        &mut self,
        peer: PeerIdx,
        incarnation: u64,
        target: TargetId,
        reason: String,
    ) {
        let state = &self.peers[peer as usize];
        if state.incarnation() != Some(incarnation) {
            return;
        }
        let Some(&remote) = state.targets.get(target.0) else {
            return;
        };
        self.emit(EventKind::DialFailed {
            peer,
            remote,
            reason,
        });
        self.redial(peer, DialEvent::DialFailed(target));
    }

    /// A handshake finished: the link opens if both ends are still there and can talk.
    pub(crate) fn established(
        &mut self,
        peer: PeerIdx,
        incarnation: u64,
        target: TargetId,
        acceptor_incarnation: Option<u64>,
    ) {
        let state = &self.peers[peer as usize];
        if state.incarnation() != Some(incarnation) {
            return;
        }
        let Some(&acceptor) = state.targets.get(target.0) else {
            return;
        };
        let name = self.plan.peer_name(acceptor);
        if self.peers[acceptor as usize].incarnation() != acceptor_incarnation
            || acceptor_incarnation.is_none()
            || !self.net.reachable(peer, acceptor)
        {
            let reason = format!("connect to {name}:{PORT}: handshake interrupted");
            self.dial_failed(peer, incarnation, target, reason);
            return;
        }
        self.open_link(peer, acceptor, target);
    }

    fn open_link(&mut self, dialer: PeerIdx, acceptor: PeerIdx, target: TargetId) {
        let link = self.links.push(Link::new(
            (dialer, acceptor),
            target,
            self.timers.liveness(),
            self.now,
        ));
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

    fn parts(&mut self) -> Parts<'_, SyncObject, DialerObjects> {
        Parts {
            links: &mut self.links,
            net: &mut self.net,
            write: self.write,
            now: self.now,
        }
    }

    fn next_write(&mut self) {
        self.write += 1;
    }

    fn push(&mut self, at: u64, event: LinkEv) {
        self.queue.push(at, Ev::Link(event));
    }

    fn count_message(&mut self) {
        self.messages += 1;
    }

    fn record(&mut self, kind: EventKind) {
        self.emit(kind);
    }

    fn backlog(&mut self, peer: PeerIdx) -> Option<Backlog<'_, Self::Msg, Self::Extra>> {
        let running = self.peers[peer as usize].running.as_ref()?;
        Some(Backlog {
            links: &mut self.links,
            open: &running.links,
            peaks: &mut self.queue_peaks,
        })
    }

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
}
