//! The workload as engine-neutral items, and their names in the trace.
//!
//! Every baseline gets one feed per account, `Feed(peer index)`, holding all of the account's
//! writes in publish order with sequence numbers 1, 2, 3, … — as an SSB or tinySSB identity
//! has one log for its posts, `about` (profile) and `contact` (follows) msgs. Writes scheduled
//! while the author is down are skipped (as on the PPPPP rows), so sequence numbers stay
//! contiguous and never follow the plan's per-feed numbering.
//!
//! For the collector, an item keeps the name of the PPPPP feed it stands for: its msg ID is
//! `<peer>/<feed>/<n>` (the `n`-th write of that feed) and its tangle `<peer>/<feed>`, so the
//! interest oracle computes the same wanted pairs from the same goals as for PPPPP. A dict
//! update's supersedes are the plan's, mapped to the writes that happened (one that names a
//! skipped write is dropped, as PPPPP's app memory never wrote it either).

use std::collections::{BTreeMap, BTreeSet};

use baselines::{Feed, Item, ItemId};
use sim::check::Holdings;
use sim::plan::{Content, PeerIdx, Plan, Publish};

/// What the collector calls an item.
#[derive(Debug, Clone)]
pub(crate) struct ItemName {
    /// The msg ID string.
    pub(crate) msg: String,
    /// The tangle ID string.
    pub(crate) tangle: String,
    /// The item's content bytes (what a duplicate wastes at least).
    pub(crate) bytes: u64,
}

/// The items written so far and how to name them.
#[derive(Debug, Default)]
pub(crate) struct Items {
    /// `names[peer][seq − 1]`.
    names: Vec<Vec<ItemName>>,
    /// Per author and PPPPP feed name: plan seq → the write's `n` in that feed.
    written: BTreeMap<(PeerIdx, String), BTreeMap<u32, u32>>,
    /// Every dict field of the workload, numbered in sorted order (`Item::field`).
    fields: BTreeMap<(String, String), u32>,
}

/// One write, ready for the author's machine and the collector.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub(crate) item: Item,
    pub(crate) name: ItemName,
    pub(crate) feed: String,
    pub(crate) supersedes: Vec<String>,
}

impl Items {
    pub(crate) fn new(plan: &Plan) -> Self {
        let mut fields = BTreeSet::new();
        for publish in &plan.publishes {
            if let Content::Dict { update } = &publish.content {
                for field in update.keys() {
                    fields.insert((publish.feed.clone(), field.clone()));
                }
            }
        }
        let fields = fields
            .into_iter()
            .enumerate()
            .map(|(index, key)| (key, u32::try_from(index).unwrap_or(u32::MAX)))
            .collect();
        Self {
            names: vec![Vec::new(); plan.peers.len()],
            written: BTreeMap::new(),
            fields,
        }
    }

    /// Appends the author's next item for `publish`.
    pub(crate) fn write(&mut self, plan: &Plan, publish: &Publish) -> Written {
        let peer = publish.peer;
        let author = plan.peer_name(peer);
        let feed_writes = self
            .written
            .entry((peer, publish.feed.clone()))
            .or_default();
        let n = u32::try_from(feed_writes.len() + 1).unwrap_or(u32::MAX);
        let supersedes = publish
            .supersedes
            .iter()
            .filter_map(|plan_seq| feed_writes.get(plan_seq))
            .map(|earlier| format!("{author}/{}/{earlier}", publish.feed))
            .collect();
        feed_writes.insert(publish.seq, n);
        let name = ItemName {
            msg: format!("{author}/{}/{n}", publish.feed),
            tangle: format!("{author}/{}", publish.feed),
            bytes: publish.bytes,
        };
        let log = &mut self.names[peer as usize];
        log.push(name.clone());
        let id = ItemId {
            feed: Feed(peer),
            seq: u32::try_from(log.len()).unwrap_or(u32::MAX),
        };
        let content_bytes = u32::try_from(publish.bytes).unwrap_or(u32::MAX);
        let item = match self.field_of(publish) {
            Some(field) => Item::update(id, content_bytes, field),
            None => Item::post(id, content_bytes),
        };
        Written {
            item,
            name,
            feed: publish.feed.clone(),
            supersedes,
        }
    }

    /// A dict update's field: the first it sets (an update setting several fields is one
    /// item, keyed by its first field, for the sync table's per-key dict).
    fn field_of(&self, publish: &Publish) -> Option<u32> {
        let Content::Dict { update } = &publish.content else {
            return None;
        };
        let first = update.keys().next()?;
        self.fields
            .get(&(publish.feed.clone(), first.clone()))
            .copied()
    }

    /// The name of a written item.
    pub(crate) fn name(&self, id: ItemId) -> Option<&ItemName> {
        let seq = usize::try_from(id.seq).ok()?.checked_sub(1)?;
        self.names.get(id.feed.0 as usize)?.get(seq)
    }

    /// A peer's holdings as the checks read them: per tangle, in the author's order.
    pub(crate) fn holdings(&self, held: &BTreeSet<ItemId>) -> Holdings {
        let mut holdings = Holdings::default();
        for id in held {
            if let Some(name) = self.name(*id) {
                holdings
                    .tangles
                    .entry(name.tangle.clone())
                    .or_default()
                    .push(name.msg.clone());
            }
        }
        holdings
    }
}
