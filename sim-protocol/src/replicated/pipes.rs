//! The engine's side of the connection code (`crate::wires`): where its links are, what it
//! does with a protocol's message that arrives, and how it closes a link. Pipes, keepalives
//! and the idle timeout are the same for every protocol, so that each notices a dead link
//! after the same idle timeout.

use baselines::{Input, LinkId, Replicator};
use proto::dial::Event as DialEvent;
use sim::plan::PeerIdx;
use sim::trace::EventKind;

use super::run::{Ev, Run};
use crate::link::End;
use crate::wires::{Backlog, LinkEv, Parts, Wired};

impl<R: Replicator> Run<'_, R> {
    /// Closes a link: both machines are told, the dialer redials; `reason` as the dialer
    /// saw it.
    pub(crate) fn close(&mut self, link: LinkId, reason: &str) {
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
}

impl<R: Replicator> Wired for Run<'_, R> {
    type Msg = R::Wire;

    fn receive_msg(&mut self, link: LinkId, _to: End, receiver: PeerIdx, msg: R::Wire) {
        // A message still in the pipe when the link closed is lost with it.
        if self.links.get(&link).is_some() {
            self.feed(receiver, Input::Received { link, msg });
        }
    }

    fn close_link(&mut self, link: LinkId, reason: &str) {
        self.close(link, reason);
    }

    fn parts(&mut self) -> Parts<'_, Self::Msg> {
        Parts {
            links: &mut self.links,
            net: &mut self.net,
            write: self.write,
            now: self.now,
        }
    }

    fn next_write(&mut self) {
        self.write += 1;
    }

    fn push(&mut self, at: u64, event: LinkEv) {
        self.queue.push(at, Ev::Link(event));
    }

    fn count_message(&mut self) {
        self.messages += 1;
    }

    fn record(&mut self, kind: EventKind) {
        self.emit(kind);
    }

    fn backlog(&mut self, peer: PeerIdx) -> Option<Backlog<'_, Self::Msg>> {
        let running = self.peers[peer as usize].running.as_ref()?;
        Some(Backlog {
            links: &mut self.links,
            open: &running.links,
            peaks: &mut self.queue_peaks,
        })
    }
}
