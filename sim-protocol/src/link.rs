//! A connection between two peers: a pair of sync sessions (one at each end) and a pipe in
//! each direction. A pipe is FIFO, as a TCP stream is: an object's arrival time is its
//! send time plus a latency draw, but never before the object ahead of it. While its
//! direction is cut or held, a pipe keeps its objects (TCP retransmits what was lost) and
//! resumes when the fault ends, unless the idle timeout closed the connection first.

use std::collections::{BTreeMap, VecDeque};

use proto::dial::TargetId;
use proto::ids::TangleId;
use proto::liveness::{Liveness, LivenessTimers};
use proto::sync::SyncMsg;
use proto::sync::Time;
use sim::plan::PeerIdx;

use crate::bandwidth::Lane;

/// A connection, by the order it was made in (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct LinkId(pub(crate) u64);

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
pub(crate) enum Item {
    /// A sync object, typed: its msgs are `Arc`s shared with the sender, and the receiver
    /// takes it as decoded (`proto::sync::Event::Decoded`), without writing and parsing the
    /// JSON text a node would (its byte count is computed from that text when it is sent).
    /// Boxed: pipes hold many keepalives, which should not each take a sync object's room.
    Sync(Box<SyncMsg>),
    /// A `net.ping` keepalive or its answer.
    Ping,
    Pong,
}

/// One direction of a link.
#[derive(Debug, Default)]
pub(crate) struct Pipe {
    /// Objects on their way, with their arrival times (non-decreasing).
    pub(crate) queue: VecDeque<(u64, Item)>,
    /// Its timing: bandwidth, latency, FIFO order (`crate::bandwidth`).
    pub(crate) lane: Lane,
    /// Whether the pipe stopped at a cut or hold and waits for it to end.
    pub(crate) stalled: bool,
}

/// What each end of a link keeps.
#[derive(Debug)]
pub(crate) struct Side {
    /// The pipe toward this end.
    pub(crate) inbound: Pipe,
    /// This end's keepalive and idle timeout (the node's machine, `proto::liveness`).
    pub(crate) liveness: Liveness,
    /// Pings received (every other one is answered, as pzp-net answers).
    pub(crate) pings: u64,
}

/// The dialer's sync objects of one tangle on a link, for `sync_round`: how many it sent and
/// received, and how many at its last reported round.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TangleObjects {
    pub(crate) exchanged: u64,
    pub(crate) at_last_round: Option<u64>,
}

/// A connection.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) dialer: PeerIdx,
    pub(crate) acceptor: PeerIdx,
    /// The dialer's dial target it serves.
    pub(crate) target: TargetId,
    /// When the handshake completed.
    pub(crate) opened_ms: u64,
    sides: [Side; 2],
    /// The dialer's sync objects per tangle, both ways: only the dialer reports rounds, so the
    /// acceptor's are not counted (one map per link, not one per end plus one for the rounds).
    pub(crate) dialer_objects: BTreeMap<TangleId, TangleObjects>,
}

impl Link {
    pub(crate) fn new(
        dialer: PeerIdx,
        acceptor: PeerIdx,
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
            dialer_objects: BTreeMap::new(),
        }
    }

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

    pub(crate) fn side(&self, end: End) -> &Side {
        self.sides.get(end.index()).expect("invariant: two ends")
    }

    pub(crate) fn side_mut(&mut self, end: End) -> &mut Side {
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
/// engine looks a link up for every object and keepalive, and an ordered map's search was a
/// visible share of a 1,000-peer run. Iteration is in id order, as an ordered map's.
#[derive(Debug, Default)]
pub(crate) struct Links {
    slots: Vec<Option<Link>>,
}

impl Links {
    /// The id the next link gets.
    pub(crate) fn next_id(&self) -> LinkId {
        LinkId(self.slots.len() as u64)
    }

    /// Opens `link` under [`Links::next_id`].
    pub(crate) fn push(&mut self, link: Link) -> LinkId {
        let id = self.next_id();
        self.slots.push(Some(link));
        id
    }

    fn slot(id: LinkId) -> usize {
        usize::try_from(id.0).unwrap_or(usize::MAX)
    }

    pub(crate) fn get(&self, id: &LinkId) -> Option<&Link> {
        self.slots.get(Self::slot(*id)).and_then(Option::as_ref)
    }

    pub(crate) fn get_mut(&mut self, id: &LinkId) -> Option<&mut Link> {
        self.slots.get_mut(Self::slot(*id)).and_then(Option::as_mut)
    }

    pub(crate) fn remove(&mut self, id: &LinkId) -> Option<Link> {
        self.slots.get_mut(Self::slot(*id)).and_then(Option::take)
    }

    /// The open links' ids, in order.
    pub(crate) fn ids(&self) -> Vec<LinkId> {
        (0..self.slots.len())
            .filter(|i| self.slots[*i].is_some())
            .map(|i| LinkId(i as u64))
            .collect()
    }
}
