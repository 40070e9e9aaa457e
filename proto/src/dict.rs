//! Dict tangles (pzp-dict 1.0.1): a feed of `{update, supersedes}` msgs whose value is every
//! `update` merged in topological order, so concurrent updates resolve by the collation order
//! of their IDs (protocol.md §8.1).

use serde_json::{Map, Value, json};

use crate::db::Db;
use crate::ids::{AccountId, MsgId, TangleId};
use crate::keys::Keypair;
use crate::msg::{self, Msg};
use crate::publish::PublishError;
use crate::roots::{self, Roots};
use crate::store::Store;

/// Domain prefix of dict feeds.
pub const DOMAIN_PREFIX: &str = "dict_v1__";

/// The domain of the dict `subdomain`.
#[must_use]
pub fn domain(subdomain: &str) -> String {
    format!("{DOMAIN_PREFIX}{subdomain}")
}

/// The feed ID of `account`'s dict `subdomain`.
#[must_use]
pub fn feed_id(account: &AccountId, subdomain: &str) -> TangleId {
    msg::feed_id(account, &domain(subdomain))
}

/// Whether `msg` is a dict update pzp-dict would apply.
#[must_use]
pub fn is_update(msg: &Msg) -> bool {
    roots::update_data(msg, DOMAIN_PREFIX).is_some_and(|data| {
        data.get("update").is_some_and(Value::is_object)
            && data.get("supersedes").is_some_and(Value::is_array)
    })
}

/// The current value of `account`'s dict `subdomain`.
///
/// # Errors
/// Store failures.
pub fn read<S: Store>(
    db: &mut Db<S>,
    account: &AccountId,
    subdomain: &str,
) -> Result<Map<String, Value>, S::Error> {
    let mut value = Map::new();
    for (_, msg) in roots::feed_msgs(db, &feed_id(account, subdomain))? {
        if !is_update(&msg) {
            continue;
        }
        if let Some(update) = msg.data.get("update").and_then(Value::as_object) {
            for (field, field_value) in update {
                value.insert(field.clone(), field_value.clone());
            }
        }
    }
    Ok(value)
}

/// The field roots of a dict: for each field, the updates that set it last.
///
/// # Errors
/// Store failures.
pub fn field_roots<S: Store>(
    db: &mut Db<S>,
    account: &AccountId,
    subdomain: &str,
) -> Result<Roots, S::Error> {
    roots::replay(db, &feed_id(account, subdomain), |msg| {
        let update = msg
            .data
            .get("update")
            .and_then(Value::as_object)
            .filter(|_| is_update(msg))?;
        Some(update.keys().cloned().collect())
    })
}

/// JavaScript's `===` between two JSON values: primitives by value, objects never equal.
fn strictly_equal(a: Option<&Value>, b: &Value) -> bool {
    match (a, b) {
        (None, _)
        | (_, Value::Object(_) | Value::Array(_))
        | (Some(Value::Object(_) | Value::Array(_)), _) => false,
        (Some(Value::Number(x)), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Some(a), b) => a == b,
    }
}

/// Sets the fields of `update` in `account`'s dict `subdomain`; `Ok(false)` when every field
/// already has that value.
///
/// # Errors
/// [`PublishError`].
pub fn update<S: Store>(
    db: &mut Db<S>,
    keypair: &Keypair,
    account: &AccountId,
    subdomain: &str,
    update: &Map<String, Value>,
) -> Result<bool, PublishError<S::Error>> {
    let current = read(db, account, subdomain).map_err(PublishError::Store)?;
    let changes = update
        .iter()
        .any(|(field, value)| !strictly_equal(current.get(field), value));
    if !changes {
        return Ok(false);
    }
    force_update(db, keypair, account, subdomain, update)?;
    Ok(true)
}

fn force_update<S: Store>(
    db: &mut Db<S>,
    keypair: &Keypair,
    account: &AccountId,
    subdomain: &str,
    update: &Map<String, Value>,
) -> Result<MsgId, PublishError<S::Error>> {
    let roots = field_roots(db, account, subdomain).map_err(PublishError::Store)?;
    let supersedes: Vec<MsgId> = update
        .keys()
        .filter_map(|field| roots.get(field))
        .flatten()
        .copied()
        .collect();
    let data = json!({"update": update, "supersedes": supersedes});
    db.publish(keypair, account, &domain(subdomain), data, &[])
}

/// Republishes the whole dict as one update superseding every field root, when the dict's
/// history is at least one depth deeper than its oldest root; `Ok(false)` otherwise.
///
/// # Errors
/// [`PublishError`].
pub fn squeeze<S: Store>(
    db: &mut Db<S>,
    keypair: &Keypair,
    account: &AccountId,
    subdomain: &str,
) -> Result<bool, PublishError<S::Error>> {
    let roots = field_roots(db, account, subdomain).map_err(PublishError::Store)?;
    let feed = feed_id(account, subdomain);
    if !roots::squeezable(db, &feed, &roots).map_err(PublishError::Store)? {
        return Ok(false);
    }
    let current = read(db, account, subdomain).map_err(PublishError::Store)?;
    force_update(db, keypair, account, subdomain, &current)?;
    Ok(true)
}
