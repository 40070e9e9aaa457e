//! Dialing: a dial is refused after a round trip when the acceptor is down,
//! times out across a partition (the connect timeout), or completes after the transport's
//! handshake round trips; a handshake interrupted by the acceptor's restart or a cut fails.
//! The dial schedule (`proto::dial::Redial`) is told every outcome. An engine implements
//! [`Dialing`] (its peers, how many round trips its handshake takes, how it opens a link);
//! the rest is here.

use proto::dial::{Event as DialEvent, TargetId};
use sim::plan::{PeerIdx, Plan};
use sim::trace::EventKind;

use crate::network::Network;
use crate::wires::Wired;

/// The TCP port in addresses of dial failures (the full-stack tier's).
const PORT: u16 = 9000;

/// A dial event an engine queues for [`Dialing`].
#[derive(Debug)]
pub(crate) enum DialEv {
    /// A dial a start asked for, made once every peer starting at this instant listens.
    Dial {
        peer: PeerIdx,
        incarnation: u64,
        target: TargetId,
    },
    /// A dial's handshake completes.
    Established {
        peer: PeerIdx,
        incarnation: u64,
        target: TargetId,
        acceptor_incarnation: Option<u64>,
    },
    /// A dial failed.
    Failed {
        peer: PeerIdx,
        incarnation: u64,
        target: TargetId,
        reason: String,
    },
}

/// What dialing reads of a peer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DialView {
    /// Its running incarnation, if it runs.
    pub(crate) incarnation: Option<u64>,
    /// Whether it should be running (neither crashed nor offline).
    pub(crate) up: bool,
}

/// What dialing borrows from an engine at once.
pub(crate) struct DialParts<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) net: &'a mut Network,
    pub(crate) connect_timeout_ms: u64,
    pub(crate) now: u64,
    /// Dials made so far ([`crate::stats::RunStats::dials`]).
    pub(crate) dials: &'a mut u64,
}

/// An engine whose peers dial.
pub(crate) trait Dialing: Wired {
    /// The plan, the network, the connect timeout and the time.
    fn dial_parts(&mut self) -> DialParts<'_>;
    /// Whom `peer`'s dial target `target` names.
    fn target_of(&self, peer: PeerIdx, target: TargetId) -> Option<PeerIdx>;
    /// What dialing reads of `peer`.
    fn view(&self, peer: PeerIdx) -> DialView;
    /// Round trips from dialing until `dialer` may send (transport and handshake).
    fn handshake_round_trips(&self, dialer: PeerIdx) -> u32;
    /// Queues a dial event at `at`.
    fn push_dial(&mut self, at: u64, event: DialEv);
    /// Tells `peer`'s dial schedule `event` and dials what it asks for.
    fn dial_schedule(&mut self, peer: PeerIdx, event: DialEvent);
    /// Opens the link of a completed handshake.
    fn connect(&mut self, dialer: PeerIdx, acceptor: PeerIdx, target: TargetId);

    /// A queued dial event.
    fn dial_event(&mut self, event: DialEv) {
        match event {
            DialEv::Dial {
                peer,
                incarnation,
                target,
            } => {
                if self.view(peer).incarnation == Some(incarnation) {
                    self.dial(peer, target);
                }
            }
            DialEv::Established {
                peer,
                incarnation,
                target,
                acceptor_incarnation,
            } => self.established(peer, incarnation, target, acceptor_incarnation),
            DialEv::Failed {
                peer,
                incarnation,
                target,
                reason,
            } => self.dial_failed(peer, incarnation, target, reason),
        }
    }

    /// Starts dialing `target`; the outcome is an event later.
    fn dial(&mut self, peer: PeerIdx, target: TargetId) {
        let (Some(acceptor), Some(incarnation)) =
            (self.target_of(peer, target), self.view(peer).incarnation)
        else {
            return;
        };
        let round_trips = self.handshake_round_trips(peer);
        let acceptor_view = self.view(acceptor);
        let DialParts {
            plan,
            net,
            connect_timeout_ms,
            now,
            dials,
        } = self.dial_parts();
        *dials += 1;
        let name = plan.peer_name(acceptor);
        let reachable = net.reachable(peer, acceptor);
        let mut round_trip = || net.latency_ms(peer, acceptor) + net.latency_ms(acceptor, peer);
        let (delay_ms, failure) = if !reachable {
            let reason = format!("connect to {name}:{PORT} timed out");
            (connect_timeout_ms, Some(reason))
        } else if !acceptor_view.up {
            let reason = format!("connect to {name}:{PORT} failed: connection refused");
            (round_trip(), Some(reason))
        } else {
            ((0..round_trips).map(|_| round_trip()).sum(), None)
        };
        let event = match failure {
            Some(reason) => DialEv::Failed {
                peer,
                incarnation,
                target,
                reason,
            },
            None => DialEv::Established {
                peer,
                incarnation,
                target,
                acceptor_incarnation: acceptor_view.incarnation,
            },
        };
        self.push_dial(now + delay_ms, event);
    }

    /// A dial failed: traced, and the dial schedule told.
    fn dial_failed(&mut self, peer: PeerIdx, incarnation: u64, target: TargetId, reason: String) {
        if self.view(peer).incarnation != Some(incarnation) {
            return;
        }
        let Some(remote) = self.target_of(peer, target) else {
            return;
        };
        self.record(EventKind::DialFailed {
            peer,
            remote,
            reason,
        });
        self.dial_schedule(peer, DialEvent::DialFailed(target));
    }

    /// A handshake finished: the link opens if both ends are still there and can talk.
    fn established(
        &mut self,
        peer: PeerIdx,
        incarnation: u64,
        target: TargetId,
        acceptor_incarnation: Option<u64>,
    ) {
        if self.view(peer).incarnation != Some(incarnation) {
            return;
        }
        let Some(acceptor) = self.target_of(peer, target) else {
            return;
        };
        let acceptor_now = self.view(acceptor).incarnation;
        let DialParts { plan, net, .. } = self.dial_parts();
        if acceptor_now != acceptor_incarnation
            || acceptor_incarnation.is_none()
            || !net.reachable(peer, acceptor)
        {
            let name = plan.peer_name(acceptor);
            let reason = format!("connect to {name}:{PORT}: handshake interrupted");
            self.dial_failed(peer, incarnation, target, reason);
            return;
        }
        self.connect(peer, acceptor, target);
    }
}
