//! A peer's sync sessions driven as the node drives them: one event through
//! `proto::sync::Sessions`, then each output applied — objects sent, commits added to the
//! store (each msg reported as stored, duplicate or rejected, as the node's store actor
//! reports it), prunes run, finished syncs reported as rounds — with what a commit added fed
//! back to every session.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use proto::db::AddError;
use proto::gc;
use proto::ids::{MsgId, TangleId};
use proto::msg::Msg;
use proto::store::Store;
use proto::sync::{self, CommitObserver, Event as SyncEvent, IndexedDb, Output, Time};
use sim::plan::PeerIdx;
use sim::trace::EventKind;

use crate::link::LinkId;
use crate::run::{Ev, Run};

/// Shortest simulated time between two recorded `store_size` events of one peer (the
/// full-stack recorder's sampling).
const STORE_SIZE_SAMPLE_MS: u64 = 1_000;

impl Run<'_> {
    /// Runs `event` through `peer`'s sessions and applies the outputs, until no commit feeds
    /// anything back; then re-arms the peer's wake-ups.
    pub(crate) fn feed(&mut self, peer: PeerIdx, event: SyncEvent<LinkId>) {
        let mut events = VecDeque::from([event]);
        while let Some(event) = events.pop_front() {
            self.write += 1;
            let state = &mut self.peers[peer as usize];
            let Some(running) = state.running.as_mut() else {
                return;
            };
            let mut outputs = Vec::new();
            let mut store = IndexedDb::new(&mut state.db, &mut state.sync_index);
            let Ok(()) = running.sessions.handle(
                Time(self.now),
                event,
                &mut store,
                &state.goals,
                &mut outputs,
            );
            if self.check_invariants {
                running.sessions.check_invariants();
            }
            for (link, output) in outputs {
                events.extend(self.apply(peer, link, output));
            }
        }
        self.arm(peer);
    }

    fn apply(&mut self, peer: PeerIdx, link: LinkId, output: Output) -> Vec<SyncEvent<LinkId>> {
        match output {
            Output::Send(message) => {
                self.send_sync(peer, link, message);
                Vec::new()
            }
            Output::Commit { tangle, msgs } => self.commit(peer, link, tangle, msgs),
            Output::PruneNewest { tangle, count } => {
                self.prune(peer, &tangle, count);
                Vec::new()
            }
            Output::Finished { tangle } => {
                self.finished(peer, link, tangle);
                Vec::new()
            }
            Output::Close(_) => {
                // Closed after this step, so that no session is told mid-step.
                self.queue.push(self.now, Ev::Close(link));
                Vec::new()
            }
            Output::Refused(_) => Vec::new(),
        }
    }

    /// Adds what session `link` received through the one commit path the node's store actor
    /// uses too; returns what to tell the sessions.
    fn commit(
        &mut self,
        peer: PeerIdx,
        link: LinkId,
        tangle: TangleId,
        msgs: Vec<(MsgId, Arc<Msg>)>,
    ) -> Vec<SyncEvent<LinkId>> {
        let from = self
            .links
            .get(&link)
            .map(|state| state.peer(state.end_of(peer).other()));
        let mut reporter = CommitReporter {
            peer,
            from,
            msg_bytes: &self.msg_bytes,
            reports: Vec::new(),
        };
        let state = &mut self.peers[peer as usize];
        // `AddShared`: the sender's `Arc`, so every peer holding the msg shares one copy.
        let Ok(committed) = sync::commit_with(
            &mut state.db,
            &mut state.sync_index,
            &tangle,
            msgs,
            &mut sync::AddShared,
            &mut reporter,
        );
        for report in reporter.reports {
            self.emit(report);
        }
        let mut events = Vec::new();
        if !committed.added.is_empty() {
            self.store_size(peer);
            events.push(SyncEvent::LocalAdded {
                msgs: committed.added,
                origin: Some(link),
            });
        }
        if committed.refused > 0 {
            events.push(SyncEvent::CommitRefused { key: link, tangle });
        }
        events
    }

    /// A `store_size`, unless one was recorded for `peer` less than a sample ago.
    fn store_size(&mut self, peer: PeerIdx) {
        let now = self.now;
        let state = &mut self.peers[peer as usize];
        if state
            .store_size_at
            .is_some_and(|last| now < last + STORE_SIZE_SAMPLE_MS)
        {
            return;
        }
        state.store_size_at = Some(now);
        let bytes = state.db.store().stats().bytes;
        self.emit(EventKind::StoreSize { peer, bytes });
    }

    /// Keeps the newest `count` msgs of `tangle`, reporting what GC did.
    fn prune(&mut self, peer: PeerIdx, tangle: &TangleId, count: u64) {
        let db = &mut self.peers[peer as usize].db;
        let Ok(actions) = gc::plan_prune_newest(db, tangle, count);
        let Ok(applied) = gc::apply(db, &actions);
        for action in &applied.effective {
            let (msg, action) = action.kind();
            let bytes = self.msg_bytes.get(&msg).copied().unwrap_or(0);
            self.emit(EventKind::Gc {
                peer,
                action,
                bytes,
                msg: Some(msg.to_string()),
            });
        }
    }

    /// A tangle sync finished: the initiator (the dialer) reports a round, its round trips
    /// being half the objects exchanged for the tangle since its last round on the link.
    fn finished(&mut self, peer: PeerIdx, link: LinkId, tangle: TangleId) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        if state.dialer != peer {
            return;
        }
        let remote = state.acceptor;
        let counts = state.extra.entry(tangle).or_default();
        let objects = counts.exchanged;
        let last = counts
            .at_last_round
            .replace(objects)
            .filter(|last| *last <= objects)
            .unwrap_or(0);
        let round_trips = u32::try_from((objects - last).div_ceil(2))
            .unwrap_or(u32::MAX)
            .max(1);
        self.emit(EventKind::SyncRound {
            peer,
            remote,
            tangle: tangle.to_string(),
            round_trips,
        });
    }
}

/// Turns each msg of a commit into its trace event, as the full-stack recorder turns the
/// node's `Stored` / `NotStored` events; emitted after the commit, in order.
struct CommitReporter<'a> {
    peer: PeerIdx,
    from: Option<PeerIdx>,
    msg_bytes: &'a BTreeMap<MsgId, u64>,
    reports: Vec<EventKind>,
}

impl CommitObserver for CommitReporter<'_> {
    fn stored(&mut self, id: &MsgId, tangle: &TangleId, _msg: &Arc<Msg>) {
        self.reports.push(EventKind::Store {
            peer: self.peer,
            msg: id.to_string(),
            tangle: tangle.to_string(),
            from: self.from,
        });
    }

    fn duplicate(&mut self, id: &MsgId) {
        self.reports.push(EventKind::Duplicate {
            peer: self.peer,
            msg: id.to_string(),
            from: self.from,
            bytes: self.msg_bytes.get(id).copied().unwrap_or(0),
        });
    }

    fn refused<E: std::error::Error + 'static>(&mut self, id: &MsgId, refusal: &AddError<E>) {
        self.reports.push(EventKind::Reject {
            peer: self.peer,
            msg: id.to_string(),
            reason: refusal.reason(),
        });
    }
}
