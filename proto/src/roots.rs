//! What set and dict feeds share (pzp-set and pzp-dict 1.0.1, protocol.md §8): a feed's msgs
//! in topological order, the reference's *roots* (the updates that last touched each item or
//! field), `minRequiredDepth` (below it, updates may become ghosts), and when a feed is worth
//! squeezing into one update.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::db::Db;
use crate::ids::{MsgId, TangleId};
use crate::msg::Msg;
use crate::store::Store;

/// Roots per item (sets) or field (dicts).
pub type Roots = BTreeMap<String, Vec<MsgId>>;

/// The msgs of a feed with their IDs, in topological order.
pub(crate) fn feed_msgs<S: Store>(
    db: &mut Db<S>,
    feed: &TangleId,
) -> Result<Vec<(MsgId, Arc<Msg>)>, S::Error> {
    let order: Vec<MsgId> = db.tangle(feed)?.topo_order().copied().collect();
    let mut msgs = Vec::with_capacity(order.len());
    for id in order {
        if let Some(msg) = db.get(&id)? {
            msgs.push((id, msg));
        }
    }
    Ok(msgs)
}

/// The data object of a msg whose domain starts with `prefix` (a set or dict update, if its
/// fields are right).
pub(crate) fn update_data<'a>(msg: &'a Msg, prefix: &str) -> Option<&'a Map<String, Value>> {
    msg.data
        .as_object()
        .filter(|_| msg.metadata.domain.starts_with(prefix))
}

/// The elements of the array `field` of a msg's data (none when it is not an array).
pub(crate) fn array_field<'a>(msg: &'a Msg, field: &str) -> impl Iterator<Item = &'a Value> {
    msg.data
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The reference's roots bookkeeping: replaying updates in receive order, an update becomes
/// a root of each key (`keys_of`) it touches and displaces that key's roots that precede it.
pub(crate) fn replay<S: Store>(
    db: &mut Db<S>,
    feed: &TangleId,
    keys_of: impl Fn(&Msg) -> Option<Vec<String>>,
) -> Result<Roots, S::Error> {
    let members: Vec<MsgId> = db.tangle(feed)?.topo_order().copied().collect();
    let mut records = Vec::with_capacity(members.len());
    for id in members {
        if let Some(record) = db.record(&id)? {
            records.push(record);
        }
    }
    records.sort_by_key(|record| record.seq);
    let tangle = db.tangle(feed)?;
    let mut roots = Roots::new();
    for record in records {
        let Some(keys) = keys_of(&record.msg) else {
            continue;
        };
        for key in keys {
            let existing = roots.entry(key).or_default();
            existing.retain(|root| !tangle.precedes(root, &record.id));
            if !existing.contains(&record.id) {
                existing.push(record.id);
            }
        }
    }
    Ok(roots)
}

/// The lowest depth any current root has: updates below it can be ghosts (pzp-set and
/// pzp-dict `minRequiredDepth`). `None` stands for the reference's `Infinity` (no update
/// survives); `Some(0)` when the tangle is unknown.
///
/// # Errors
/// Store failures.
pub fn min_required_depth<S: Store>(
    db: &mut Db<S>,
    feed: &TangleId,
) -> Result<Option<u64>, S::Error> {
    if !db.tangle(feed)?.has_root() {
        return Ok(Some(0));
    }
    let mut roots: Vec<MsgId> = Vec::new();
    for (id, msg) in feed_msgs(db, feed)? {
        if !msg.has_data() {
            continue;
        }
        for superseded in array_field(&msg, "supersedes") {
            roots.retain(|root| Some(root.as_str()) != superseded.as_str());
        }
        if !roots.contains(&id) {
            roots.push(id);
        }
    }
    let tangle = db.tangle(feed)?;
    Ok(roots.iter().filter_map(|id| tangle.depth(id)).min())
}

/// Whether `id` may become a ghost of the set or dict `feed` with `span`: it sits in the
/// `span` depths below the lowest root.
///
/// # Errors
/// Store failures.
pub fn is_ghostable<S: Store>(
    db: &mut Db<S>,
    id: &MsgId,
    feed: &TangleId,
    span: u64,
) -> Result<bool, S::Error> {
    if id == feed {
        return Ok(false);
    }
    let Some(depth) = db.tangle(feed)?.depth(id) else {
        return Ok(false);
    };
    let Some(min_required) = min_required_depth(db, feed)? else {
        return Ok(false);
    };
    Ok(min_required.saturating_sub(span) <= depth && depth < min_required)
}

/// Whether a feed with these roots is worth republishing as one update that supersedes them
/// all: its history is at least one depth deeper than its oldest root.
pub(crate) fn squeezable<S: Store>(
    db: &mut Db<S>,
    feed: &TangleId,
    roots: &Roots,
) -> Result<bool, S::Error> {
    let tangle = db.tangle(feed)?;
    let oldest = roots
        .values()
        .flatten()
        .filter_map(|id| tangle.depth(id))
        .min();
    Ok(oldest.is_some_and(|oldest| tangle.max_depth().saturating_sub(oldest) >= 1))
}
