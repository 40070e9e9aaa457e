//! A peer's sync sessions driven as the node drives them: one event through
//! `proto::sync::Sessions`, then each output applied — objects sent, commits added to the
//! store (each msg reported as stored, duplicate or rejected, as the node's store actor
//! reports it), prunes run, finished syncs reported as rounds — with what a commit added fed
//! back to every session, each such step a write of its own.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use baselines::{Collection, LinkId, Output, Report};
use proto::db::AddError;
use proto::gc::{self, GcAction};
use proto::ids::{MsgId, TangleId};
use proto::msg::{DigestedMsg, Msg};
use proto::store::Store;
use proto::sync::{
    self, CommitObserver, Event as SyncEvent, IndexedDb, Output as SyncOutput, Time,
};

use super::{Ppppp, SyncWire};

/// Shortest simulated time between two reported `store_size`s of one peer (the full-stack
/// recorder's sampling).
const STORE_SIZE_SAMPLE_MS: u64 = 1_000;

type Outputs = Vec<Output<SyncWire>>;

impl Ppppp {
    /// Runs `events` through the sessions and applies the outputs, until no commit feeds
    /// anything back. Each event after the first is a new write, as the node writes what
    /// each step of its sessions sends.
    pub(super) fn feed(
        &mut self,
        now: u64,
        mut events: VecDeque<SyncEvent<LinkId>>,
        out: &mut Outputs,
    ) {
        let mut first = true;
        while let Some(event) = events.pop_front() {
            if !std::mem::take(&mut first) {
                out.push(Output::NewWrite);
            }
            let Some(running) = self.running.as_mut() else {
                return;
            };
            let mut outputs = Vec::new();
            let mut store = IndexedDb::new(&mut self.db, &mut self.sync_index);
            let Ok(()) =
                running
                    .sessions
                    .handle(Time(now), event, &mut store, &self.goals, &mut outputs);
            if self.check_invariants {
                running.sessions.check_invariants();
            }
            for (link, output) in outputs {
                events.extend(self.apply(now, link, output, out));
            }
        }
    }

    fn apply(
        &mut self,
        now: u64,
        link: LinkId,
        output: SyncOutput,
        out: &mut Outputs,
    ) -> Vec<SyncEvent<LinkId>> {
        match output {
            SyncOutput::Send(message) => {
                if let Some(running) = self.running.as_mut() {
                    running.count_object(link, &message.id);
                }
                let msg = SyncWire::new(message, &mut self.shared.json.borrow_mut());
                out.push(Output::Send { link, msg });
                Vec::new()
            }
            SyncOutput::Commit { tangle, msgs } => self.commit(now, link, tangle, msgs, out),
            SyncOutput::PruneNewest { tangle, count } => {
                self.prune(&tangle, count, out);
                Vec::new()
            }
            SyncOutput::Finished { tangle } => {
                self.finished(link, tangle, out);
                Vec::new()
            }
            SyncOutput::Close(_) => {
                out.push(Output::Close { link });
                Vec::new()
            }
            SyncOutput::Refused(_) => Vec::new(),
        }
    }

    /// Adds what session `link` received through the one commit path the node's store actor
    /// uses too; returns what to tell the sessions.
    fn commit(
        &mut self,
        now: u64,
        link: LinkId,
        tangle: TangleId,
        msgs: Vec<DigestedMsg>,
        out: &mut Outputs,
    ) -> Vec<SyncEvent<LinkId>> {
        let msg_bytes = self.shared.msg_bytes.borrow();
        let mut reporter = CommitReporter {
            link,
            msg_bytes: &msg_bytes,
            out,
        };
        // `AddShared`: the sender's `Arc`, so every peer holding the msg shares one copy.
        let Ok(committed) = sync::commit_with(
            &mut self.db,
            &mut self.sync_index,
            &tangle,
            msgs,
            &mut sync::AddShared,
            &mut reporter,
        );
        drop(msg_bytes);
        let mut events = Vec::new();
        if !committed.added.is_empty() {
            self.store_size(now, out);
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

    /// A `store_size`, unless one was reported less than a sample ago.
    fn store_size(&mut self, now: u64, out: &mut Outputs) {
        if self
            .store_size_at
            .is_some_and(|last| now < last + STORE_SIZE_SAMPLE_MS)
        {
            return;
        }
        self.store_size_at = Some(now);
        let bytes = self.db.store().stats().bytes;
        out.push(Output::Report(Report::StoreSize { bytes }));
    }

    /// Keeps the newest `count` msgs of `tangle`, reporting what GC did.
    fn prune(&mut self, tangle: &TangleId, count: u64, out: &mut Outputs) {
        let Ok(actions) = gc::plan_prune_newest(&mut self.db, tangle, count);
        let Ok(applied) = gc::apply(&mut self.db, &actions);
        let msg_bytes = self.shared.msg_bytes.borrow();
        for action in &applied.effective {
            let (msg, action) = action.kind();
            out.push(Output::Report(Report::Collected {
                msg: msg.to_string(),
                action: collection(action),
                bytes: msg_bytes.get(&msg).copied().unwrap_or(0),
            }));
        }
    }

    /// A tangle sync finished: the initiator (the dialer) reports a round, its round trips
    /// being half the objects exchanged for the tangle since its last round on the link.
    fn finished(&mut self, link: LinkId, tangle: TangleId, out: &mut Outputs) {
        let Some(state) = self
            .running
            .as_mut()
            .and_then(|running| running.links.get_mut(&link))
        else {
            return;
        };
        if !state.initiator {
            return;
        }
        let counts = state.objects.entry(tangle).or_default();
        let objects = counts.exchanged;
        let last = counts
            .at_last_round
            .replace(objects)
            .filter(|last| *last <= objects)
            .unwrap_or(0);
        let round_trips = u32::try_from((objects - last).div_ceil(2))
            .unwrap_or(u32::MAX)
            .max(1);
        out.push(Output::Report(Report::Round {
            link,
            tangle: tangle.to_string(),
            round_trips,
        }));
    }
}

/// The seam's name for what GC did.
const fn collection(action: GcAction) -> Collection {
    match action {
        GcAction::Erase => Collection::Erase,
        GcAction::Delete => Collection::Delete,
        GcAction::Ghost => Collection::Ghost,
    }
}

/// Turns each msg of a commit into its report, as the full-stack recorder turns the node's
/// `Stored` / `NotStored` events, in order.
struct CommitReporter<'a> {
    link: LinkId,
    msg_bytes: &'a BTreeMap<MsgId, u64>,
    out: &'a mut Outputs,
}

impl CommitObserver for CommitReporter<'_> {
    fn stored(&mut self, id: &MsgId, tangle: &TangleId, _msg: &Arc<Msg>) {
        self.out.push(Output::Report(Report::Stored {
            msg: id.to_string(),
            tangle: tangle.to_string(),
            from: self.link,
        }));
    }

    fn duplicate(&mut self, id: &MsgId) {
        self.out.push(Output::Report(Report::Duplicate {
            msg: id.to_string(),
            from: self.link,
            bytes: self.msg_bytes.get(id).copied().unwrap_or(0),
        }));
    }

    fn refused<E: std::error::Error + 'static>(&mut self, id: &MsgId, refusal: &AddError<E>) {
        self.out.push(Output::Report(Report::Rejected {
            msg: id.to_string(),
            reason: refusal.reason(),
        }));
    }
}
