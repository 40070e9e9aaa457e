//! The generic engine's pipes, keepalives and closing: the PPPPP engine's model
//! (`crate::conn`) over a protocol's wire messages. A pipe is FIFO (a TCP stream); the
//! messages of one step of a machine on a link go out in one write (one latency draw); a cut
//! or held direction keeps its messages until the fault ends or the idle timeout closes the
//! link. Keepalives are the same for every row (a `net.ping` of the muxrpc header plus its
//! body, from the dialer at the node's keepalive interval when the link was not busy both
//! ways, decided by `proto::liveness`), so that every protocol notices a dead link after the
//! same idle timeout.

use baselines::{Input, LinkId, Replicator};
use proto::dial::Event as DialEvent;
use proto::liveness;
use proto::sync::Time;
use sim::plan::PeerIdx;
use sim::trace::{EventKind, WireKind};

use super::link::{Carried, End};
use super::run::{Ev, Run};
use crate::conn::MUXRPC_HEADER_BYTES;
use crate::liveness::LinkCheck;
use crate::loss::RESET_REASON;

impl<R: Replicator> Run<'_, R> {
    /// Puts `carried` (`bytes` on the wire) in the pipe toward `to`.
    pub(crate) fn transmit(
        &mut self,
        link: LinkId,
        to: End,
        carried: Carried<R::Wire>,
        bytes: u64,
    ) {
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
        pipe.queue.push_back((arrival, carried));
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

    /// Hands what is due at `to` to its machine, unless the direction is stopped.
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
            due.extend(side.inbound.queue.pop_front().map(|(_, carried)| carried));
        }
        if !due.is_empty() {
            side.liveness.handle(Time(now), liveness::Event::Received);
        }
        for carried in due {
            self.receive(link, to, receiver, carried);
        }
        if reset {
            self.close_link(link, RESET_REASON);
        }
    }

    fn receive(&mut self, link: LinkId, to: End, receiver: PeerIdx, carried: Carried<R::Wire>) {
        match carried {
            Carried::Wire(msg) => {
                // A message still in the pipe when the link closed is lost with it.
                if self.links.contains_key(&link) {
                    self.feed(receiver, Input::Received { link, msg });
                }
            }
            Carried::Ping => {
                let Some(state) = self.links.get_mut(&link) else {
                    return;
                };
                let side = state.side_mut(to);
                side.pings += 1;
                if side.pings % 2 == 1 {
                    self.keepalive(link, to, Carried::Pong);
                }
            }
            Carried::Pong => {}
        }
    }

    /// Sends a ping or pong from `from`, in a write of its own.
    fn keepalive(&mut self, link: LinkId, from: End, carried: Carried<R::Wire>) {
        self.write += 1;
        let Some(state) = self.links.get(&link) else {
            return;
        };
        let (sender, receiver) = (state.peer(from), state.peer(from.other()));
        let body = (self.now - state.opened_ms).to_string().len() as u64;
        let bytes = MUXRPC_HEADER_BYTES + body;
        self.messages += 1;
        self.emit(EventKind::Send {
            from: sender,
            to: receiver,
            kind: WireKind::Keepalive,
            bytes,
        });
        self.transmit(link, from.other(), carried, bytes);
    }

    /// Every keepalive interval: both ends' liveness machines decide (`crate::liveness`):
    /// close on an idle timeout, or the dialer pings unless traffic flowed both ways within
    /// the interval.
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
            LinkCheck::Ping => self.keepalive(link, End::Dialer, Carried::Ping),
            LinkCheck::Quiet => {}
        }
        self.queue.push(next.0, Ev::LinkTick(link));
    }

    /// Closes a link: both machines are told, the dialer redials; `reason` as the dialer
    /// saw it.
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
            self.feed(peer, Input::LinkDown { link });
        }
        if self.peers[state.dialer as usize].running.is_some() {
            self.redial(state.dialer, DialEvent::Disconnected(state.target));
        }
    }

    /// After a heal or release: pipes stopped at the fault resume, in order, one latency
    /// from now.
    pub(crate) fn resume_pipes(&mut self) {
        let ids: Vec<LinkId> = self.links.keys().copied().collect();
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
