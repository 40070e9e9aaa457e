//! Connections: dialing (refused, timed out, or a handshake of round trips), opening a
//! link's two sessions, moving objects through the pipes, keepalives and the idle timeout,
//! and closing.
//!
//! Byte counts are the full-stack tier's: a sync object costs its JSON text plus the
//! muxrpc header, split into msgs, bloom and control as the node splits it; a keepalive
//! costs the header plus its body (milliseconds since the connection opened, as text); an
//! SHSE handshake costs its four messages (client 64 + 144 bytes, server 64 + 80).

use proto::dial::{Event as DialEvent, TargetId};
use proto::liveness;
use proto::sync::wire::Received;
use proto::sync::{Event as SyncEvent, SyncMsg, Time};
use sim::plan::PeerIdx;
use sim::scenario::Transport;
use sim::trace::{EventKind, WireKind};

use crate::link::{End, Item, Link, LinkId};
use crate::liveness::LinkCheck;
use crate::loss::RESET_REASON;
use crate::run::{Ev, Run};

/// muxrpc's packet header, bytes.
pub(crate) const MUXRPC_HEADER_BYTES: u64 = 9;
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
            dialer,
            acceptor,
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
        self.queue
            .push(self.now + self.timers.keepalive_ms, Ev::LinkTick(link));
    }

    /// Sends a sync object from `peer` over `link`, counting its bytes as the node does
    /// (from its JSON text, written into a buffer the run reuses).
    pub(crate) fn send_sync(&mut self, peer: PeerIdx, link: LinkId, message: SyncMsg) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        let from = state.end_of(peer);
        if from == End::Dialer {
            state
                .dialer_objects
                .entry(message.id)
                .or_default()
                .exchanged += 1;
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
        self.transmit(
            link,
            from.other(),
            Item::Sync(Box::new(message)),
            wire_bytes,
        );
    }

    /// Puts `item` (`bytes` on the wire) in the pipe toward `to`.
    fn transmit(&mut self, link: LinkId, to: End, item: Item, bytes: u64) {
        let Some(state) = self.links.get(&link) else {
            return;
        };
        let (sender, receiver) = (state.peer(to.other()), state.peer(to));
        let same_write = state.side(to).inbound.lane.same_write(self.write);
        let latency = if same_write {
            0
        } else {
            self.net.latency_ms(sender, receiver)
        };
        let bandwidth = self.net.bandwidth(sender, receiver);
        let resend = self.net.loss_delay_ms(sender, receiver);
        let resets = self.net.breaks_connection(sender, receiver);
        let (now, write) = (self.now, self.write);
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        self.messages += 1;
        state
            .side_mut(to.other())
            .liveness
            .handle(Time(now), liveness::Event::Sent);
        let pipe = &mut state.side_mut(to).inbound;
        let arrival = pipe
            .lane
            .send(now, (write, latency, resend), bytes, bandwidth);
        if resets {
            pipe.lane.reset_on_arrival(arrival);
        }
        pipe.queue.push_back((arrival, item));
        if !pipe.stalled {
            self.queue.push(arrival, Ev::Deliver { link, to });
        }
        if bandwidth.is_some() {
            self.observe_queue(sender);
        }
    }

    /// Records `peer`'s queue (what its links still have to send) for its peak.
    fn observe_queue(&mut self, peer: PeerIdx) {
        let Some(running) = self.peers[peer as usize].running.as_ref() else {
            return;
        };
        let mut total = crate::bandwidth::Waiting::default();
        for link in &running.links {
            let Some(state) = self.links.get_mut(link) else {
                continue;
            };
            let toward = state.end_of(peer).other();
            total = total.plus(state.side_mut(toward).inbound.lane.waiting(self.now));
        }
        self.queue_peaks.observe(peer as usize, total);
    }

    /// Hands the objects due at `to` to its sessions, unless the direction is stopped.
    pub(crate) fn deliver(&mut self, link: LinkId, to: End) {
        let now = self.now;
        let Some(state) = self.links.get(&link) else {
            return;
        };
        let (sender, receiver) = (state.peer(to.other()), state.peer(to));
        let blocked = self.net.blocked(sender, receiver);
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        let side = state.side_mut(to);
        if blocked {
            side.inbound.stalled = true;
            return;
        }
        // A `break`: what arrived before the message that resets the connection is
        // received, that message and what follows are lost with the connection.
        let reset = side.inbound.lane.resets_by(now);
        let cutoff = side.inbound.lane.reset_at_ms.unwrap_or(u64::MAX);
        let mut due = Vec::new();
        while side
            .inbound
            .queue
            .front()
            .is_some_and(|(at, _)| *at <= now && (!reset || *at < cutoff))
        {
            due.extend(side.inbound.queue.pop_front().map(|(_, item)| item));
        }
        if !due.is_empty() {
            side.liveness.handle(Time(now), liveness::Event::Received);
        }
        for item in due {
            self.receive(link, to, receiver, item);
        }
        if reset {
            self.close_link(link, RESET_REASON);
        }
    }

    fn receive(&mut self, link: LinkId, to: End, receiver: PeerIdx, item: Item) {
        match item {
            Item::Sync(message) => {
                if let Some(state) = self.links.get_mut(&link)
                    && to == End::Dialer
                {
                    state
                        .dialer_objects
                        .entry(message.id)
                        .or_default()
                        .exchanged += 1;
                }
                let decoded = Ok(Received {
                    msg: *message,
                    dropped: Vec::new(),
                });
                self.feed(receiver, SyncEvent::Decoded { key: link, decoded });
            }
            Item::Ping => {
                let Some(state) = self.links.get_mut(&link) else {
                    return;
                };
                let side = state.side_mut(to);
                side.pings += 1;
                if side.pings % 2 == 1 {
                    self.keepalive(link, to, Item::Pong);
                }
            }
            Item::Pong => {}
        }
    }

    /// Sends a ping or pong from `from`.
    fn keepalive(&mut self, link: LinkId, from: End, item: Item) {
        // A write of its own.
        self.write += 1;
        let Some(state) = self.links.get(&link) else {
            return;
        };
        let (sender, receiver) = (state.peer(from), state.peer(from.other()));
        let body = (self.now - state.opened_ms).to_string().len() as u64;
        let bytes = MUXRPC_HEADER_BYTES + body;
        self.emit(EventKind::Send {
            from: sender,
            to: receiver,
            kind: WireKind::Keepalive,
            bytes,
        });
        self.transmit(link, from.other(), item, bytes);
    }

    /// Every keepalive interval: both ends' liveness machines decide (`crate::liveness`):
    /// close on an idle timeout, or the dialer pings unless traffic flowed both ways within
    /// the interval; the acceptor answers every other ping.
    pub(crate) fn link_tick(&mut self, link: LinkId) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        let (dialer, acceptor) = state.liveness_mut();
        let check = crate::liveness::tick(self.now, dialer, acceptor);
        let next = dialer.deadline();
        match check {
            LinkCheck::Close(reason) => {
                self.close_link(link, reason);
                return;
            }
            LinkCheck::Ping => self.keepalive(link, End::Dialer, Item::Ping),
            LinkCheck::Quiet => {}
        }
        self.queue.push(next.0, Ev::LinkTick(link));
    }

    /// Closes a link: both sessions end, the dialer redials; `reason` as the dialer saw it.
    pub(crate) fn close_link(&mut self, link: LinkId, reason: &str) {
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

    /// After a heal or release: pipes stopped at the fault resume, their objects arriving
    /// one latency from now (in order).
    pub(crate) fn resume_pipes(&mut self) {
        let ids = self.links.ids();
        for link in ids {
            for to in [End::Dialer, End::Acceptor] {
                self.resume(link, to);
            }
        }
    }

    fn resume(&mut self, link: LinkId, to: End) {
        let now = self.now;
        let Some(state) = self.links.get(&link) else {
            return;
        };
        let (sender, receiver) = (state.peer(to.other()), state.peer(to));
        if !state.side(to).inbound.stalled || self.net.blocked(sender, receiver) {
            return;
        }
        let count = state.side(to).inbound.queue.len();
        let latencies: Vec<u64> = (0..count)
            .map(|_| self.net.latency_ms(sender, receiver))
            .collect();
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        let pipe = &mut state.side_mut(to).inbound;
        pipe.stalled = false;
        let arrivals = pipe.lane.resend(now, &latencies);
        for ((at, _), arrival) in pipe.queue.iter_mut().zip(arrivals) {
            *at = arrival;
            self.queue.push(arrival, Ev::Deliver { link, to });
        }
    }
}
