//! Set tangles (pzp-set 1.0.1): a feed of `{add, del, supersedes}` updates whose value is the
//! set of items added and not deleted, in topological order (protocol.md §8.2).
//!
//! Item order follows JavaScript `Set` semantics (insertion order; re-adding after a delete
//! moves an item to the end), so values compare equal to a JS peer's, item for item.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::db::Db;
use crate::ids::{AccountId, MsgId, TangleId};
use crate::js;
use crate::keys::Keypair;
use crate::msg::{self, Msg};
use crate::publish::PublishError;
use crate::store::Store;

/// Domain prefix of set feeds.
pub const DOMAIN_PREFIX: &str = "set_v1__";

/// The domain of the set `subdomain`.
#[must_use]
pub fn domain(subdomain: &str) -> String {
    format!("{DOMAIN_PREFIX}{subdomain}")
}

/// The feed ID of `account`'s set `subdomain`.
#[must_use]
pub fn feed_id(account: &AccountId, subdomain: &str) -> TangleId {
    msg::feed_id(account, &domain(subdomain))
}

/// Whether `msg` is a set update pzp-set would apply.
#[must_use]
pub fn is_update(msg: &Msg) -> bool {
    let Some(data) = msg.data.as_object() else {
        return false;
    };
    msg.metadata.domain.starts_with(DOMAIN_PREFIX)
        && data.get("add").is_some_and(Value::is_array)
        && data.get("del").is_some_and(Value::is_array)
        && data.get("supersedes").is_some_and(Value::is_array)
}

/// Items of a set in JavaScript `Set` order. Objects and arrays are never equal to anything
/// (JavaScript compares them by reference), so they are always added and never deleted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Items(Vec<Value>);

impl Items {
    fn position(&self, item: &Value) -> Option<usize> {
        if item.is_object() || item.is_array() {
            return None;
        }
        self.0
            .iter()
            .position(|existing| same_value_zero(existing, item))
    }

    fn add(&mut self, item: &Value) {
        if self.position(item).is_none() {
            self.0.push(item.clone());
        }
    }

    fn delete(&mut self, item: &Value) {
        if let Some(index) = self.position(item) {
            self.0.remove(index);
        }
    }

    /// Whether `item` is in the set.
    #[must_use]
    pub fn contains(&self, item: &Value) -> bool {
        self.position(item).is_some()
    }

    /// The items, in order.
    #[must_use]
    pub fn as_slice(&self) -> &[Value] {
        &self.0
    }

    /// Consumes the set, giving the items.
    #[must_use]
    pub fn into_vec(self) -> Vec<Value> {
        self.0
    }
}

/// JavaScript's SameValueZero for JSON primitives.
fn same_value_zero(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => false,
        _ => a == b,
    }
}

/// The msgs of a feed with their IDs, in topological order.
fn feed_msgs<S: Store>(
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

/// The current value of `account`'s set `subdomain`.
///
/// # Errors
/// Store failures.
pub fn read<S: Store>(
    db: &mut Db<S>,
    account: &AccountId,
    subdomain: &str,
) -> Result<Items, S::Error> {
    let mut items = Items::default();
    for (_, msg) in feed_msgs(db, &feed_id(account, subdomain))? {
        if !is_update(&msg) {
            continue;
        }
        for item in msg
            .data
            .get("add")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            items.add(item);
        }
        for item in msg
            .data
            .get("del")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            items.delete(item);
        }
    }
    Ok(items)
}

/// The reference's *roots* bookkeeping, shared by sets (per item) and dicts (per field):
/// replaying updates in receive order, an update becomes a root of each key it touches and
/// displaces the roots it is preceded by... of that key that precede it.
pub(crate) fn replay_roots<S: Store>(
    db: &mut Db<S>,
    feed: &TangleId,
    keys_of: impl Fn(&Msg) -> Option<Vec<String>>,
) -> Result<BTreeMap<String, Vec<MsgId>>, S::Error> {
    let members: Vec<MsgId> = db.tangle(feed)?.topo_order().copied().collect();
    let mut records = Vec::with_capacity(members.len());
    for id in members {
        if let Some(record) = db.record(&id)? {
            records.push(record);
        }
    }
    records.sort_by_key(|record| record.seq);
    let tangle = db.tangle(feed)?;
    let mut roots: BTreeMap<String, Vec<MsgId>> = BTreeMap::new();
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

/// The item roots of a set: for each item, the updates that touched it last.
///
/// # Errors
/// Store failures.
pub fn item_roots<S: Store>(
    db: &mut Db<S>,
    account: &AccountId,
    subdomain: &str,
) -> Result<BTreeMap<String, Vec<MsgId>>, S::Error> {
    replay_roots(db, &feed_id(account, subdomain), |msg| {
        if !is_update(msg) {
            return None;
        }
        let touched = ["add", "del"]
            .iter()
            .flat_map(|field| {
                msg.data
                    .get(*field)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .map(|item| js::display(Some(item)))
            .collect();
        Some(touched)
    })
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
        for superseded in msg
            .data
            .get("supersedes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
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

/// Adds `item` to `account`'s set `subdomain`; `Ok(false)` if it is already there.
///
/// # Errors
/// [`PublishError`].
pub fn add<S: Store>(
    db: &mut Db<S>,
    keypair: &Keypair,
    account: &AccountId,
    subdomain: &str,
    item: &str,
) -> Result<bool, PublishError<S::Error>> {
    update(db, keypair, account, subdomain, item, true)
}

/// Deletes `item` from `account`'s set `subdomain`; `Ok(false)` if it is not there.
///
/// # Errors
/// [`PublishError`].
pub fn del<S: Store>(
    db: &mut Db<S>,
    keypair: &Keypair,
    account: &AccountId,
    subdomain: &str,
    item: &str,
) -> Result<bool, PublishError<S::Error>> {
    update(db, keypair, account, subdomain, item, false)
}

fn update<S: Store>(
    db: &mut Db<S>,
    keypair: &Keypair,
    account: &AccountId,
    subdomain: &str,
    item: &str,
    adding: bool,
) -> Result<bool, PublishError<S::Error>> {
    let current = read(db, account, subdomain).map_err(PublishError::Store)?;
    let value = Value::from(item);
    if current.contains(&value) == adding {
        return Ok(false);
    }
    // Supersede the roots of this item and of every item no longer in the set.
    let roots = item_roots(db, account, subdomain).map_err(PublishError::Store)?;
    let supersedes: Vec<MsgId> = roots
        .iter()
        .filter(|(key, _)| key.as_str() == item || !current.contains(&Value::from(key.as_str())))
        .flat_map(|(_, ids)| ids.iter().copied())
        .collect();
    let (add, del) = if adding {
        (vec![item], Vec::new())
    } else {
        (Vec::new(), vec![item])
    };
    let data = json!({"add": add, "del": del, "supersedes": supersedes});
    db.publish(keypair, account, &domain(subdomain), data, &[])?;
    Ok(true)
}

/// Republishes the whole set as one update superseding every root, when the set's history
/// is at least one depth deeper than its oldest root; `Ok(false)` otherwise.
///
/// # Errors
/// [`PublishError`].
pub fn squeeze<S: Store>(
    db: &mut Db<S>,
    keypair: &Keypair,
    account: &AccountId,
    subdomain: &str,
) -> Result<bool, PublishError<S::Error>> {
    let feed = feed_id(account, subdomain);
    let roots = item_roots(db, account, subdomain).map_err(PublishError::Store)?;
    let tangle = db.tangle(&feed).map_err(PublishError::Store)?;
    let oldest = roots
        .values()
        .flatten()
        .filter_map(|id| tangle.depth(id))
        .min();
    let Some(oldest) = oldest else {
        return Ok(false);
    };
    if tangle.max_depth().saturating_sub(oldest) < 1 {
        return Ok(false);
    }
    let current = read(db, account, subdomain).map_err(PublishError::Store)?;
    let supersedes: Vec<MsgId> = roots.values().flatten().copied().collect();
    let data = json!({"add": current.as_slice(), "del": [], "supersedes": supersedes});
    db.publish(keypair, account, &domain(subdomain), data, &[])?;
    Ok(true)
}
