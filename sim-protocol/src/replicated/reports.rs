//! What a machine that names its items reports ([`baselines::Report`]), as trace events: the
//! same events the collector reads from every row, with a connection turned into the peer
//! at its other end (`None` once the link is gone, as a closed connection's peer is unknown).

use baselines::{Collection, Replicator, Report};
use proto::gc::GcAction;
use sim::plan::PeerIdx;
use sim::trace::EventKind;

use super::run::Run;

impl<R: Replicator> Run<'_, R> {
    /// Records `report` of `peer`'s machine.
    pub(crate) fn report(&mut self, peer: PeerIdx, report: Report) {
        let kind = match report {
            Report::Published(made) => EventKind::Publish {
                peer,
                msg: made.msg,
                tangle: made.tangle,
                feed: made.feed,
                bytes: made.bytes,
                supersedes: made.supersedes,
            },
            Report::Stored { msg, tangle, from } => EventKind::Store {
                peer,
                msg,
                tangle,
                from: self.remote_of(peer, from),
            },
            Report::Duplicate { msg, from, bytes } => EventKind::Duplicate {
                peer,
                msg,
                from: self.remote_of(peer, from),
                bytes,
            },
            Report::Rejected { msg, reason } => EventKind::Reject { peer, msg, reason },
            Report::Collected { msg, action, bytes } => EventKind::Gc {
                peer,
                action: gc_action(action),
                bytes,
                msg: Some(msg),
            },
            Report::Round {
                link,
                tangle,
                round_trips,
            } => {
                // A round of a link that closed meanwhile is not reported.
                let Some(remote) = self.remote_of(peer, link) else {
                    return;
                };
                EventKind::SyncRound {
                    peer,
                    remote,
                    tangle,
                    round_trips,
                }
            }
            Report::StoreSize { bytes } => EventKind::StoreSize { peer, bytes },
            Report::Note { text, error } => EventKind::Note { text, error },
        };
        self.emit(kind);
    }
}

/// The trace's name for what GC did.
const fn gc_action(action: Collection) -> GcAction {
    match action {
        Collection::Erase => GcAction::Erase,
        Collection::Delete => GcAction::Delete,
        Collection::Ghost => GcAction::Ghost,
    }
}
