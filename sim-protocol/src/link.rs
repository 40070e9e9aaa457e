//! A connection between two peers: two ends, each with a pipe toward it and its keepalive
//! machine. A pipe is FIFO, as a TCP stream is: a message's arrival time is its send time
//! plus a latency draw, but never before the message ahead of it. While its direction is cut
//! or held, a pipe keeps its messages (TCP retransmits what was lost) and resumes when the
//! fault ends, unless the idle timeout closed the connection first. What a pipe carries is
//! the protocol's (`M`: PPPPP's sync objects, a baseline's wire messages). How messages move
//! through the pipes is `crate::wires`.

use std::collections::VecDeque;

use proto::dial::TargetId;
use proto::liveness::{Liveness, LivenessTimers};
use proto::sync::Time;
use sim::plan::PeerIdx;

use crate::bandwidth::Lane;

/// A connection, by the order it was made in (never reused): the seam's link id.
pub(crate) use baselines::LinkId;

/// An end of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Dialer,
    Acceptor,
}

impl End {
    pub(crate) fn other(self) -> End {
        match self {
            End::Dialer => End::Acceptor,
            End::Acceptor => End::Dialer,
        }
    }

    fn index(self) -> usize {
        match self {
            End::Dialer => 0,
            End::Acceptor => 1,
        }
    }
}

/// What travels in a pipe.
#[derive(Debug, Clone)]
pub(crate) enum Carried<M> {
    /// One of the engine's messages.
    Msg(M),
    /// The transport's `net.ping` keepalive and its answer (the same for every row).
    Ping,
    Pong,
}

/// One direction of a link.
#[derive(Debug)]
pub(crate) struct Pipe<M> {
    /// Messages on their way, with their arrival times (non-decreasing).
    pub(crate) queue: VecDeque<(u64, Carried<M>)>,
    /// Its timing: bandwidth, latency, FIFO order (`crate::bandwidth`).
    pub(crate) lane: Lane,
    /// Whether the pipe stopped at a cut or hold and waits for it to end.
    pub(crate) stalled: bool,
}

impl<M> Default for Pipe<M> {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            lane: Lane::default(),
            stalled: false,
        }
    }
}

/// What each end of a link keeps.
#[derive(Debug)]
pub(crate) struct Side<M> {
    /// The pipe toward this end.
    pub(crate) inbound: Pipe<M>,
    /// This end's keepalive and idle timeout (the node's machine, `proto::liveness`).
    pub(crate) liveness: Liveness,
    /// Pings received (every other one is answered, as pzp-net answers).
    pub(crate) pings: u64,
}

/// A connection.
#[derive(Debug)]
pub(crate) struct Link<M> {
    pub(crate) dialer: PeerIdx,
    pub(crate) acceptor: PeerIdx,
    /// The dialer's dial target it serves.
    pub(crate) target: TargetId,
    /// When the handshake completed.
    pub(crate) opened_ms: u64,
    sides: [Side<M>; 2],
}

impl<M> Link<M> {
    pub(crate) fn new(
        (dialer, acceptor): (PeerIdx, PeerIdx),
        target: TargetId,
        timers: LivenessTimers,
        now_ms: u64,
    ) -> Self {
        let side = || Side {
            inbound: Pipe::default(),
            liveness: Liveness::new(Time(now_ms), timers),
            pings: 0,
        };
        Self {
            dialer,
            acceptor,
            target,
            opened_ms: now_ms,
            sides: [side(), side()],
        }
    }
}

impl<M> Link<M> {
    pub(crate) fn peer(&self, end: End) -> PeerIdx {
        match end {
            End::Dialer => self.dialer,
            End::Acceptor => self.acceptor,
        }
    }

    /// The end `peer` is at.
    pub(crate) fn end_of(&self, peer: PeerIdx) -> End {
        if peer == self.dialer {
            End::Dialer
        } else {
            End::Acceptor
        }
    }

    pub(crate) fn side(&self, end: End) -> &Side<M> {
        self.sides.get(end.index()).expect("invariant: two ends")
    }

    pub(crate) fn side_mut(&mut self, end: End) -> &mut Side<M> {
        self.sides
            .get_mut(end.index())
            .expect("invariant: two ends")
    }

    /// Both ends' liveness machines, the dialer's first.
    pub(crate) fn liveness_mut(&mut self) -> (&mut Liveness, &mut Liveness) {
        let [dialer, acceptor] = &mut self.sides;
        (&mut dialer.liveness, &mut acceptor.liveness)
    }
}

/// Every open link, by id. Ids are handed out in order and never reused, so the links live
/// in a vector indexed by id (a slot per link ever opened, emptied when it closes): the
/// engine looks a link up for every message and keepalive, and an ordered map's search was
/// a visible share of a 1,000-peer run. Iteration is in id order, as an ordered map's.
#[derive(Debug)]
pub(crate) struct Links<M> {
    slots: Vec<Option<Link<M>>>,
}

impl<M> Default for Links<M> {
    fn default() -> Self {
        Self { slots: Vec::new() }
    }
}

impl<M> Links<M> {
    /// Opens `link` under the next id.
    pub(crate) fn push(&mut self, link: Link<M>) -> LinkId {
        let id = LinkId(self.slots.len() as u64);
        self.slots.push(Some(link));
        id
    }

    fn slot(id: LinkId) -> usize {
        usize::try_from(id.0).unwrap_or(usize::MAX)
    }

    pub(crate) fn get(&self, id: &LinkId) -> Option<&Link<M>> {
        self.slots.get(Self::slot(*id)).and_then(Option::as_ref)
    }

    pub(crate) fn get_mut(&mut self, id: &LinkId) -> Option<&mut Link<M>> {
        self.slots.get_mut(Self::slot(*id)).and_then(Option::as_mut)
    }

    pub(crate) fn remove(&mut self, id: &LinkId) -> Option<Link<M>> {
        self.slots.get_mut(Self::slot(*id)).and_then(Option::take)
    }

    /// The sender and the receiver of the pipe toward `to` on `link`, if it is open.
    pub(crate) fn pipe_ends(&self, link: LinkId, to: End) -> Option<(PeerIdx, PeerIdx)> {
        self.get(&link)
            .map(|state| (state.peer(to.other()), state.peer(to)))
    }

    /// The open links' ids, in order.
    pub(crate) fn ids(&self) -> Vec<LinkId> {
        (0..self.slots.len())
            .filter(|i| self.slots[*i].is_some())
            .map(|i| LinkId(i as u64))
            .collect()
    }
}
