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

impl<R: Replicator> Run<'_, R> {
    /// Puts `carried` in the pipe toward `to`.
    pub(crate) fn transmit(&mut self, link: LinkId, to: End, carried: Carried<R::Wire>) {
        let Some(state) = self.links.get(&link) else {
            return;
        };
        let (sender, receiver) = (state.peer(to.other()), state.peer(to));
        let same_write = state.side(to).inbound.last_write == self.write;
        let latency = if same_write {
            0
        } else {
            self.net.latency_ms(sender, receiver)
        };
        let (now, write) = (self.now, self.write);
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        state
            .side_mut(to.other())
            .liveness
            .handle(Time(now), liveness::Event::Sent);
        let pipe = &mut state.side_mut(to).inbound;
        let arrival = pipe.last_arrival_ms.max(now + latency);
        pipe.last_arrival_ms = arrival;
        pipe.last_write = write;
        pipe.queue.push_back((arrival, carried));
        if !pipe.stalled {
            self.queue.push(arrival, Ev::Deliver { link, to });
        }
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
        let mut due = Vec::new();
        while side.inbound.queue.front().is_some_and(|(at, _)| *at <= now) {
            due.extend(side.inbound.queue.pop_front().map(|(_, carried)| carried));
        }
        if due.is_empty() {
            return;
        }
        side.liveness.handle(Time(now), liveness::Event::Received);
        for carried in due {
            self.receive(link, to, receiver, carried);
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
        self.messages += 1;
        self.emit(EventKind::Send {
            from: sender,
            to: receiver,
            kind: WireKind::Keepalive,
            bytes: MUXRPC_HEADER_BYTES + body,
        });
        self.transmit(link, from.other(), carried);
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
        let mut last = now;
        for ((at, _), latency) in pipe.queue.iter_mut().zip(latencies) {
            last = last.max(now + latency);
            *at = last;
            self.queue.push(last, Ev::Deliver { link, to });
        }
        pipe.last_arrival_ms = last;
    }
}
