//! How messages move through links (the engine is `crate::replicated`, for PPPPP and every
//! baseline alike): one write per step of a machine on a link (one
//! latency draw), FIFO pipes, stalls at cuts and holds and the resend after them, a `break`
//! that resets a connection, keepalives and the idle timeout (`proto::liveness`, decided in
//! `crate::liveness`). An engine implements [`Wired`] (where its links, network and queue
//! are, what it does with a message that arrives, how it closes a link); the rest is here,
//! so that every row of a comparison moves its bytes by one set of connection policies.
//!
//! A keepalive costs the muxrpc header plus its body (milliseconds since the connection
//! opened, as text).

use std::collections::BTreeSet;

use proto::dial::TargetId;
use proto::liveness::{self, LivenessTimers};
use proto::sync::Time;
use sim::plan::PeerIdx;
use sim::trace::{EventKind, WireKind};

use crate::bandwidth::{QueuePeaks, Waiting};
use crate::link::{Carried, End, Link, LinkId, Links};
use crate::liveness::LinkCheck;
use crate::loss::RESET_REASON;
use crate::network::Network;

/// muxrpc's packet header, bytes.
pub(crate) const MUXRPC_HEADER_BYTES: u64 = 9;

/// A connection event an engine queues for [`Wired`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum LinkEv {
    /// Messages of a pipe are due at `to`.
    Deliver { link: LinkId, to: End },
    /// A link's keepalive and idle check.
    Tick(LinkId),
}

/// What the shared connection code borrows from an engine at once.
pub(crate) struct Parts<'a, M> {
    pub(crate) links: &'a mut Links<M>,
    pub(crate) net: &'a mut Network,
    /// The current write (`Wired::transmit`).
    pub(crate) write: u64,
    pub(crate) now: u64,
}

/// What measuring a peer's queue borrows: the links, the peer's open ones, the peaks.
pub(crate) struct Backlog<'a, M> {
    pub(crate) links: &'a mut Links<M>,
    pub(crate) open: &'a BTreeSet<LinkId>,
    pub(crate) peaks: &'a mut QueuePeaks,
}

/// An engine whose links carry `Msg`.
pub(crate) trait Wired {
    type Msg;

    /// Its links and network, the current write and the time.
    fn parts(&mut self) -> Parts<'_, Self::Msg>;
    /// Starts a new write: what is sent after this draws a new latency.
    fn next_write(&mut self);
    /// Queues a connection event at `at`.
    fn push(&mut self, at: u64, event: LinkEv);
    /// Counts a message put on the wire.
    fn count_message(&mut self);
    /// Records a trace event.
    fn record(&mut self, kind: EventKind);
    /// The links `peer` has open while it runs, with the rest needed to measure its queue.
    fn backlog(&mut self, peer: PeerIdx) -> Option<Backlog<'_, Self::Msg>>;
    /// One of the engine's messages arrived at `to` (`receiver`).
    fn receive_msg(&mut self, link: LinkId, to: End, receiver: PeerIdx, msg: Self::Msg);
    /// Closes a link; `reason` as the dialer saw it.
    fn close_link(&mut self, link: LinkId, reason: &str);

    /// Opens a link between `dialer` and `acceptor` for `dialer`'s dial target `target`.
    fn add_link(
        &mut self,
        ends: (PeerIdx, PeerIdx),
        target: TargetId,
        timers: LivenessTimers,
    ) -> LinkId {
        let Parts { links, now, .. } = self.parts();
        links.push(Link::new(ends, target, timers, now))
    }

    /// Puts `carried` (`bytes` on the wire) in the pipe toward `to`.
    fn transmit(&mut self, link: LinkId, to: End, carried: Carried<Self::Msg>, bytes: u64) {
        let Parts {
            links,
            net,
            write,
            now,
        } = self.parts();
        let Some(state) = links.get(&link) else {
            return;
        };
        let (sender, receiver) = (state.peer(to.other()), state.peer(to));
        let same_write = state.side(to).inbound.lane.same_write(write);
        let latency = if same_write {
            0
        } else {
            net.latency_ms(sender, receiver)
        };
        let bandwidth = net.bandwidth(sender, receiver);
        let resend = net.loss_delay_ms(sender, receiver);
        let resets = net.breaks_connection(sender, receiver);
        let Some(state) = links.get_mut(&link) else {
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
            self.push(arrival, LinkEv::Deliver { link, to });
        }
        if bandwidth.is_some() {
            self.observe_queue(sender, now);
        }
    }

    /// Records `peer`'s queue (what its links still have to send) for its peak.
    fn observe_queue(&mut self, peer: PeerIdx, now: u64) {
        let Some(Backlog { links, open, peaks }) = self.backlog(peer) else {
            return;
        };
        let mut total = Waiting::default();
        for link in open {
            let Some(state) = links.get_mut(link) else {
                continue;
            };
            let toward = state.end_of(peer).other();
            total = total.plus(state.side_mut(toward).inbound.lane.waiting(now));
        }
        peaks.observe(peer as usize, total);
    }

    /// Hands what is due at `to` to its machine, unless the direction is stopped.
    fn deliver(&mut self, link: LinkId, to: End) {
        let Parts {
            links, net, now, ..
        } = self.parts();
        let Some((sender, receiver)) = links.pipe_ends(link, to) else {
            return;
        };
        let blocked = net.blocked(sender, receiver);
        let Some(state) = links.get_mut(&link) else {
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

    /// A message, ping or pong arrived; the acceptor answers every other ping.
    fn receive(&mut self, link: LinkId, to: End, receiver: PeerIdx, carried: Carried<Self::Msg>) {
        match carried {
            Carried::Msg(msg) => self.receive_msg(link, to, receiver, msg),
            Carried::Ping => {
                let Some(state) = self.parts().links.get_mut(&link) else {
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
    fn keepalive(&mut self, link: LinkId, from: End, carried: Carried<Self::Msg>) {
        self.next_write();
        let Parts { links, now, .. } = self.parts();
        let Some(state) = links.get(&link) else {
            return;
        };
        let (sender, receiver) = (state.peer(from), state.peer(from.other()));
        let body = (now - state.opened_ms).to_string().len() as u64;
        let bytes = MUXRPC_HEADER_BYTES + body;
        self.count_message();
        self.record(EventKind::Send {
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
    fn link_tick(&mut self, link: LinkId) {
        let Parts { links, now, .. } = self.parts();
        let Some(state) = links.get_mut(&link) else {
            return;
        };
        let (dialer, acceptor) = state.liveness_mut();
        let check = crate::liveness::tick(now, dialer, acceptor);
        let next = dialer.deadline();
        match check {
            LinkCheck::Close(reason) => {
                self.close_link(link, reason);
                return;
            }
            LinkCheck::Ping => self.keepalive(link, End::Dialer, Carried::Ping),
            LinkCheck::Quiet => {}
        }
        self.push(next.0, LinkEv::Tick(link));
    }

    /// After a heal or release: pipes stopped at the fault resume, in order, one latency
    /// from now.
    fn resume_pipes(&mut self) {
        let ids = self.parts().links.ids();
        for link in ids {
            for to in [End::Dialer, End::Acceptor] {
                self.resume(link, to);
            }
        }
    }

    fn resume(&mut self, link: LinkId, to: End) {
        let Parts {
            links, net, now, ..
        } = self.parts();
        let Some((sender, receiver)) = links.pipe_ends(link, to) else {
            return;
        };
        let Some(state) = links.get_mut(&link) else {
            return;
        };
        if !state.side(to).inbound.stalled || net.blocked(sender, receiver) {
            return;
        }
        let count = state.side(to).inbound.queue.len();
        let latencies: Vec<u64> = (0..count)
            .map(|_| net.latency_ms(sender, receiver))
            .collect();
        let pipe = &mut state.side_mut(to).inbound;
        pipe.stalled = false;
        let arrivals = pipe.lane.resend(now, &latencies);
        let mut due = Vec::with_capacity(arrivals.len());
        for ((at, _), arrival) in pipe.queue.iter_mut().zip(arrivals) {
            *at = arrival;
            due.push(arrival);
        }
        for arrival in due {
            self.push(arrival, LinkEv::Deliver { link, to });
        }
    }
}
