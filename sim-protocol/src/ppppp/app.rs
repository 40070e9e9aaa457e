//! The app on a PPPPP peer, as the workload drives it: its account root and the moots of
//! its post feeds at its first start, each scheduled write published when the engine says
//! it is due (a moot with a feed's first post), the writes it missed while down skipped.
//! Every msg it makes is indexed, sized and reported as a publish.

use std::sync::Arc;

use baselines::{Output, Publication, Report};
use proto::ids::{MsgId, TangleId};
use proto::msg::Msg;
use sim::workload;

use super::{Ppppp, SyncWire};

type Outputs = Vec<Output<SyncWire>>;

impl Ppppp {
    fn note(text: String, error: bool, out: &mut Outputs) {
        out.push(Output::Report(Report::Note { text, error }));
    }

    /// The account root, then the moots of the post feeds (as the app at its first start).
    pub(super) fn create_account(&mut self, out: &mut Outputs) {
        let root = workload::account_root(self.seed, self.index, &self.keypair);
        let mut created = vec![("account", root)];
        for domain in workload::post_domains(&self.schedule) {
            match Msg::create_moot(self.account, domain, &self.keypair) {
                Ok(moot) => created.push(("moot", moot)),
                Err(error) => {
                    let text = format!("{} could not create its feed {domain}: {error}", self.name);
                    Self::note(text, true, out);
                }
            }
        }
        for (feed, msg) in created {
            let id = msg.id();
            if let Err(error) = self.db.add(msg, None) {
                let text = format!(
                    "peer {}: cannot add its own {feed}: {}",
                    self.index,
                    error.reason()
                );
                Self::note(text, true, out);
                continue;
            }
            self.published(id, id, feed, Vec::new(), out);
        }
    }

    /// Reports a msg the peer made (indexed, sized, announced as a publish).
    fn published(
        &mut self,
        id: MsgId,
        tangle: TangleId,
        feed: &str,
        supersedes: Vec<String>,
        out: &mut Outputs,
    ) -> Option<(MsgId, Arc<Msg>)> {
        let Ok(Some(stored)) = self.db.get(&id) else {
            return None;
        };
        let Ok(()) = self.sync_index.note_added(&mut self.db, &id, &stored);
        let bytes = u64::try_from(stored.to_json().len()).unwrap_or(u64::MAX);
        self.shared.msg_bytes.borrow_mut().insert(id, bytes);
        out.push(Output::Report(Report::Published(Publication {
            msg: id.to_string(),
            tangle: tangle.to_string(),
            feed: feed.to_owned(),
            bytes,
            supersedes,
        })));
        Some((id, stored))
    }

    /// Writes scheduled while the peer was down are skipped: a stopped app writes nothing.
    pub(super) fn skip_missed(&mut self, now: u64, out: &mut Outputs) {
        while let Some(missed) = self.schedule.get(self.memory.next)
            && missed.t_ms < now
        {
            let text = format!(
                "{} was down at {} ms; skipped publishing on {}",
                self.name, missed.t_ms, missed.domain
            );
            self.memory.next += 1;
            Self::note(text, false, out);
        }
    }

    /// Publishes the scheduled write `index`; returns what it added (a moot with its feed's
    /// first post), for the sessions.
    pub(super) fn publish(
        &mut self,
        index: usize,
        out: &mut Outputs,
    ) -> Option<Vec<(MsgId, Arc<Msg>)>> {
        let next = self.schedule.get(index)?.clone();
        self.memory.next = index + 1;
        let (data, supersedes) = self.memory.data_for(&next.write);
        let moot_existed = matches!(self.db.get(&next.tangle), Ok(Some(_)));
        let result = self
            .db
            .publish(&self.keypair, &self.account, &next.domain, data, &[]);
        let id = match result {
            Ok(id) => id,
            Err(error) => {
                let text = format!(
                    "{} could not publish on {}: {error}",
                    self.name, next.domain
                );
                Self::note(text, true, out);
                return None;
            }
        };
        self.memory.written(&next.write, id);
        let mut added = Vec::new();
        if !moot_existed {
            added.extend(self.published(next.tangle, next.tangle, "moot", Vec::new(), out));
        }
        let feed = self
            .feeds
            .get(&next.tangle)
            .map_or_else(|| "?".to_owned(), Clone::clone);
        let supersedes = supersedes.iter().map(ToString::to_string).collect();
        added.extend(self.published(id, next.tangle, &feed, supersedes, out));
        Some(added)
    }
}
