//! Connections of the generic engine, modelled as the PPPPP engine's (`crate::conn`): dialing
//! (refused after a round trip when the acceptor is down, timed out across a partition,
//! otherwise the protocol's handshake round trips), FIFO pipes with a latency draw per write,
//! stalls at cuts and holds, keepalives and the idle timeout, closing and redialing. What is
//! different: the machine is a `Replicator`, its handshake cost is its own
//! (`Replicator::handshake`), and a `Broadcast` is one transmission, charged once, heard on
//! every link the sender has at that instant.

use baselines::{Input, LinkId, Output, Replicator, Wire, WireKind as SeamKind};
use proto::dial::{Event as DialEvent, TargetId};
use sim::plan::PeerIdx;
use sim::trace::{EventKind, WireKind};

use super::run::{Ev, Run};
use crate::link::{Carried, Link};
use crate::wires::{LinkEv, Wired};

/// The TCP port in addresses of dial failures (the PPPPP engine's).
const PORT: u16 = 9000;

/// The trace's kind for a seam kind: items are `msgs`, what a peer holds or wants (notes,
/// clocks, fingerprints, vectors) is `bloom` (PPPPP's summaries), the rest `sync_control`.
pub(crate) fn trace_kind(kind: SeamKind) -> WireKind {
    match kind {
        SeamKind::Payload => WireKind::Msgs,
        SeamKind::Summary => WireKind::Bloom,
        SeamKind::Control => WireKind::SyncControl,
    }
}

impl<R: Replicator> Run<'_, R> {
    fn round_trip_ms(&mut self, a: PeerIdx, b: PeerIdx) -> u64 {
        self.net.latency_ms(a, b) + self.net.latency_ms(b, a)
    }

    /// Starts dialing `target`; the outcome is an event later.
    pub(crate) fn dial(&mut self, peer: PeerIdx, target: TargetId) {
        let state = &self.peers[peer as usize];
        let (Some(&acceptor), Some(incarnation)) =
            (state.targets.get(target.0), state.incarnation())
        else {
            return;
        };
        let round_trips = state.machine.handshake().round_trips;
        let name = self.plan.peer_name(acceptor);
        let (delay_ms, failure) = if !self.net.reachable(peer, acceptor) {
            let reason = format!("connect to {name}:{PORT} timed out");
            (self.timers.connect_timeout_ms, Some(reason))
        } else if !self.peers[acceptor as usize].up() {
            let reason = format!("connect to {name}:{PORT} failed: connection refused");
            (self.round_trip_ms(peer, acceptor), Some(reason))
        } else {
            let mut total = 0;
            for _ in 0..round_trips {
                total += self.round_trip_ms(peer, acceptor);
            }
            (total, None)
        };
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
        self.queue.push(self.now + delay_ms, event);
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
        if self.peers[acceptor as usize].incarnation() != acceptor_incarnation
            || acceptor_incarnation.is_none()
            || !self.net.reachable(peer, acceptor)
        {
            let name = self.plan.peer_name(acceptor);
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
        let handshake = self.peers[dialer as usize].machine.handshake();
        if handshake.bytes > 0 {
            self.emit(EventKind::Send {
                from: dialer,
                to: acceptor,
                kind: WireKind::Handshake,
                bytes: handshake.bytes,
            });
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
        for (peer, remote, initiator) in [(acceptor, dialer, false), (dialer, acceptor, true)] {
            let up = Input::LinkUp {
                link,
                peer: baselines::PeerId(remote),
                initiator,
            };
            self.feed(peer, up);
        }
        let tick = Ev::Link(LinkEv::Tick(link));
        self.queue.push(self.now + self.timers.keepalive_ms, tick);
    }

    /// Runs `input` through `peer`'s machine and applies its outputs; re-arms its wake-ups.
    pub(crate) fn feed(&mut self, peer: PeerIdx, input: Input<R::Wire>) {
        if self.peers[peer as usize].running.is_none() {
            return;
        }
        self.write += 1;
        let mut outputs = Vec::new();
        self.peers[peer as usize]
            .machine
            .handle(self.now, input, &mut outputs);
        for output in outputs {
            self.apply(peer, output);
        }
        self.arm(peer);
    }

    fn apply(&mut self, peer: PeerIdx, output: Output<R::Wire>) {
        match output {
            Output::Send { link, msg } => {
                let Some(state) = self.links.get(&link) else {
                    return;
                };
                let from = state.end_of(peer);
                let to = state.peer(from.other());
                let bytes = self.charge(peer, to, &msg);
                self.transmit(link, from.other(), Carried::Msg(msg), bytes);
            }
            Output::Broadcast { msg } => self.broadcast(peer, msg),
            Output::Stored { item, from } => {
                // A publish was reported when it was made.
                let Some(link) = from else { return };
                let remote = self.remote_of(peer, link);
                if !self.peers[peer as usize].held.insert(item) {
                    return;
                }
                let Some(name) = self.items.name(item) else {
                    return;
                };
                let (msg, tangle) = (name.msg.clone(), name.tangle.clone());
                self.emit(EventKind::Store {
                    peer,
                    msg,
                    tangle,
                    from: remote,
                });
            }
            Output::Duplicate { item, from } => {
                let remote = self.remote_of(peer, from);
                let Some(name) = self.items.name(item) else {
                    return;
                };
                let (msg, bytes) = (name.msg.clone(), name.bytes);
                self.emit(EventKind::Duplicate {
                    peer,
                    msg,
                    from: remote,
                    bytes,
                });
            }
        }
    }

    fn remote_of(&self, peer: PeerIdx, link: LinkId) -> Option<PeerIdx> {
        self.links
            .get(&link)
            .map(|state| state.peer(state.end_of(peer).other()))
    }

    /// One message's bytes, charged to its sender; returns them.
    fn charge(&mut self, from: PeerIdx, to: PeerIdx, msg: &R::Wire) -> u64 {
        self.messages += 1;
        let bytes = msg.bytes();
        self.emit(EventKind::Send {
            from,
            to,
            kind: trace_kind(msg.kind()),
            bytes,
        });
        bytes
    }

    /// One transmission on the medium (charged once, `to` the sender itself), heard on every
    /// link the sender has now.
    fn broadcast(&mut self, peer: PeerIdx, msg: R::Wire) {
        // One transmission on a broadcast medium, but each link's direction carries it.
        let bytes = self.charge(peer, peer, &msg);
        let links: Vec<LinkId> = self.peers[peer as usize]
            .running
            .as_ref()
            .map(|running| running.links.iter().copied().collect())
            .unwrap_or_default();
        for link in links {
            let Some(state) = self.links.get(&link) else {
                continue;
            };
            let to = state.end_of(peer).other();
            self.transmit(link, to, Carried::Msg(msg.clone()), bytes);
        }
    }
}
