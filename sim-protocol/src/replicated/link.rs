//! A baseline connection: two ends and a FIFO pipe toward each, as the PPPPP engine's
//! links (`crate::link`), carrying a protocol's wire messages instead of sync objects.

use std::collections::VecDeque;

use proto::dial::TargetId;
use proto::liveness::{Liveness, LivenessTimers};
use proto::sync::Time;
use sim::plan::PeerIdx;

use crate::bandwidth::Lane;

pub(crate) use crate::link::End;

/// What travels in a pipe.
#[derive(Debug, Clone)]
pub(crate) enum Carried<W> {
    /// One of the protocol's messages.
    Wire(W),
    /// The transport's keepalive and its answer (the same for every row).
    Ping,
    Pong,
}

/// One direction of a link.
#[derive(Debug)]
pub(crate) struct Pipe<W> {
    pub(crate) queue: VecDeque<(u64, Carried<W>)>,
    pub(crate) lane: Lane,
    pub(crate) stalled: bool,
}

impl<W> Default for Pipe<W> {
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
pub(crate) struct Side<W> {
    /// The pipe toward this end.
    pub(crate) inbound: Pipe<W>,
    /// This end's keepalive and idle timeout (the node's machine, `proto::liveness`).
    pub(crate) liveness: Liveness,
    pub(crate) pings: u64,
}

/// A connection.
#[derive(Debug)]
pub(crate) struct Link<W> {
    pub(crate) dialer: PeerIdx,
    pub(crate) acceptor: PeerIdx,
    pub(crate) target: TargetId,
    pub(crate) opened_ms: u64,
    sides: [Side<W>; 2],
}

impl<W> Link<W> {
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

    pub(crate) fn peer(&self, end: End) -> PeerIdx {
        match end {
            End::Dialer => self.dialer,
            End::Acceptor => self.acceptor,
        }
    }

    pub(crate) fn end_of(&self, peer: PeerIdx) -> End {
        if peer == self.dialer {
            End::Dialer
        } else {
            End::Acceptor
        }
    }

    pub(crate) fn side(&self, end: End) -> &Side<W> {
        &self.sides[usize::from(end == End::Acceptor)]
    }

    pub(crate) fn side_mut(&mut self, end: End) -> &mut Side<W> {
        &mut self.sides[usize::from(end == End::Acceptor)]
    }

    /// Both ends' liveness machines, the dialer's first.
    pub(crate) fn liveness_mut(&mut self) -> (&mut Liveness, &mut Liveness) {
        let [dialer, acceptor] = &mut self.sides;
        (&mut dialer.liveness, &mut acceptor.liveness)
    }
}
