//! Connections of the engine: dialing and the pipes are `crate::dialing` and `crate::wires`;
//! what is here is the handshake's cost (`Replicator::handshake`: round trips, and the bytes
//! each side sends), opening a link (each machine told
//! `LinkUp`), and a machine's outputs (send, broadcast, stored, duplicate, close, a new
//! write; its own reports are `reports.rs`) — a `Broadcast` is one transmission, charged
//! once, heard on every link the sender has at that instant.

use baselines::{Input, LinkId, Output, Replicator, Wire, WireKind as SeamKind};
use proto::dial::{Event as DialEvent, TargetId};
use sim::plan::PeerIdx;
use sim::trace::{EventKind, WireKind};

use super::run::{Ev, Run};
use crate::dialing::{DialEv, DialParts, DialView, Dialing};
use crate::link::Carried;
use crate::wires::{LinkEv, Wired};

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
    pub(crate) fn open_link(&mut self, dialer: PeerIdx, acceptor: PeerIdx, target: TargetId) {
        let link = self.add_link((dialer, acceptor), target, self.timers.liveness());
        let handshake = self.peers[dialer as usize].machine.handshake();
        let acceptor_bytes = handshake.acceptor_bytes.min(handshake.bytes);
        for (from, to, bytes) in [
            (acceptor, dialer, acceptor_bytes),
            (dialer, acceptor, handshake.bytes - acceptor_bytes),
        ] {
            if bytes > 0 {
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

    pub(crate) fn apply(&mut self, peer: PeerIdx, output: Output<R::Wire>) {
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
            // Closed after this step, so that no machine is told mid-step.
            Output::Close { link } => self.queue.push(self.now, Ev::Close(link)),
            Output::NewWrite => self.write += 1,
            Output::Report(report) => self.report(peer, report),
        }
    }

    pub(crate) fn remote_of(&self, peer: PeerIdx, link: LinkId) -> Option<PeerIdx> {
        self.links
            .get(&link)
            .map(|state| state.peer(state.end_of(peer).other()))
    }

    /// One message's bytes, charged to its sender (a `send` per kind it carries); returns
    /// them.
    fn charge(&mut self, from: PeerIdx, to: PeerIdx, msg: &R::Wire) -> u64 {
        self.messages += 1;
        let Some(split) = msg.split() else {
            let bytes = msg.bytes();
            self.emit(EventKind::Send {
                from,
                to,
                kind: trace_kind(msg.kind()),
                bytes,
            });
            return bytes;
        };
        let kinds = [SeamKind::Payload, SeamKind::Summary, SeamKind::Control];
        for (kind, bytes) in kinds.into_iter().zip(split) {
            if bytes > 0 {
                let kind = trace_kind(kind);
                self.emit(EventKind::Send {
                    from,
                    to,
                    kind,
                    bytes,
                });
            }
        }
        split.iter().sum()
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

impl<R: Replicator> Dialing for Run<'_, R> {
    fn handshake_round_trips(&self, dialer: PeerIdx) -> u32 {
        self.peers[dialer as usize].machine.handshake().round_trips
    }

    fn dial_parts(&mut self) -> DialParts<'_> {
        DialParts {
            plan: self.plan,
            net: &mut self.net,
            connect_timeout_ms: self.timers.connect_timeout_ms,
            now: self.now,
            dials: &mut self.dials,
        }
    }

    fn target_of(&self, peer: PeerIdx, target: TargetId) -> Option<PeerIdx> {
        self.peers[peer as usize].targets.get(target.0).copied()
    }

    fn view(&self, peer: PeerIdx) -> DialView {
        let state = &self.peers[peer as usize];
        DialView {
            incarnation: state.incarnation(),
            up: state.up(),
        }
    }

    fn push_dial(&mut self, at: u64, event: DialEv) {
        self.queue.push(at, Ev::Dialing(event));
    }

    fn dial_schedule(&mut self, peer: PeerIdx, event: DialEvent) {
        self.redial(peer, event);
    }

    fn connect(&mut self, dialer: PeerIdx, acceptor: PeerIdx, target: TargetId) {
        self.open_link(dialer, acceptor, target);
    }
}
