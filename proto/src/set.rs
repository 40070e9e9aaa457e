//! Set tangles (pzp-set 1.0.1): a feed of `{add, del, supersedes}` updates whose value is the
//! set of items added and not deleted, in topological order (protocol.md §8.2).
//!
//! Item order follows JavaScript `Set` semantics (insertion order; re-adding after a delete
//! moves an item to the end), so values compare equal to a JS peer's, item for item.

use serde_json::{Value, json};

use crate::db::Db;
use crate::ids::{AccountId, MsgId, TangleId};
use crate::js;
use crate::keys::Keypair;
use crate::msg::{self, Msg};
use crate::publish::PublishError;
use crate::roots::{self, Roots};
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
    roots::update_data(msg, DOMAIN_PREFIX).is_some_and(|data| {
        ["add", "del", "supersedes"]
            .iter()
            .all(|field| data.get(*field).is_some_and(Value::is_array))
    })
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
    for (_, msg) in roots::feed_msgs(db, &feed_id(account, subdomain))? {
        if !is_update(&msg) {
            continue;
        }
        for item in roots::array_field(&msg, "add") {
            items.add(item);
        }
        for item in roots::array_field(&msg, "del") {
            items.delete(item);
        }
    }
    Ok(items)
}

/// The item roots of a set: for each item, the updates that touched it last.
///
/// # Errors
/// Store failures.
pub fn item_roots<S: Store>(
    db: &mut Db<S>,
    account: &AccountId,
    subdomain: &str,
) -> Result<Roots, S::Error> {
    roots::replay(db, &feed_id(account, subdomain), |msg| {
        if !is_update(msg) {
            return None;
        }
        let touched = roots::array_field(msg, "add")
            .chain(roots::array_field(msg, "del"))
            .map(|item| js::display(Some(item)))
            .collect();
        Some(touched)
    })
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
    let roots = item_roots(db, account, subdomain).map_err(PublishError::Store)?;
    let feed = feed_id(account, subdomain);
    if !roots::squeezable(db, &feed, &roots).map_err(PublishError::Store)? {
        return Ok(false);
    }
    let current = read(db, account, subdomain).map_err(PublishError::Store)?;
    let supersedes: Vec<MsgId> = roots.values().flatten().copied().collect();
    let data = json!({"add": current.as_slice(), "del": [], "supersedes": supersedes});
    db.publish(keypair, account, &domain(subdomain), data, &[])?;
    Ok(true)
}
