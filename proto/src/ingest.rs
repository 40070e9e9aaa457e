//! Adding msgs from JSON text, with one verdict per msg — the core of `ppppp msg check` and
//! `ppppp db add` — and a snapshot of what a database holds, comparable across peers.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::ControlFlow;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::canon;
use crate::db::{Added, Db};
use crate::dict;
use crate::ids::{MsgId, TangleId};
use crate::msg::{self, Account};
use crate::set;
use crate::store::Store;

/// What became of one msg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Stored (or already stored).
    Ok(MsgId),
    /// Refused; the ID when one can be computed (the reference hashes whatever metadata it
    /// is given), and the reason.
    Rejected(Option<MsgId>, String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok(id) => write!(f, "ok {id}"),
            Self::Rejected(Some(id), reason) => write!(f, "rejected {id} {}", one_line(reason)),
            Self::Rejected(None, reason) => write!(f, "rejected - {}", one_line(reason)),
        }
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The ID the reference would give `value`: the hash of its canonical `metadata`, whatever
/// it holds; `None` when there is no metadata object.
#[must_use]
pub fn id_of_json(value: &Value) -> Option<MsgId> {
    let metadata = value.get("metadata").filter(|meta| meta.is_object())?;
    Some(msg::id_of_canonical(&canon::to_string(metadata)))
}

/// Decodes one JSON msg and adds it with the reference's rules (tangle inferred).
///
/// # Errors
/// Only store failures; a refused msg is a [`Verdict::Rejected`].
pub fn add_json<S: Store>(db: &mut Db<S>, text: &str) -> Result<Verdict, S::Error> {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(err) => {
            return Ok(Verdict::Rejected(
                None,
                format!("invalid msg: not JSON ({err})"),
            ));
        }
    };
    let id = id_of_json(&value);
    let msg = match msg::decode(&value) {
        Ok(msg) => msg,
        Err(err) => return Ok(Verdict::Rejected(id, err.to_string())),
    };
    let id = msg.id();
    match db.add(msg, None) {
        Ok(Added::Appended(_) | Added::ReplacedErased(_) | Added::AlreadyStored) => {
            Ok(Verdict::Ok(id))
        }
        Err(crate::db::AddError::Store(err)) => Err(err),
        Err(err) => Ok(Verdict::Rejected(Some(id), err.reason())),
    }
}

/// What a database holds, in a form two peers can compare: every rooted tangle's msg IDs in
/// topological order, and the value of every set and dict.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// Tangle ID → msg IDs in topological order (root first).
    pub tangles: BTreeMap<String, Vec<String>>,
    /// `"<account>/<subdomain>"` → items in set order.
    pub sets: BTreeMap<String, Vec<Value>>,
    /// `"<account>/<subdomain>"` → the dict.
    pub dicts: BTreeMap<String, Map<String, Value>>,
}

impl Snapshot {
    /// Reads the snapshot of `db`.
    ///
    /// # Errors
    /// Store failures.
    pub fn of<S: Store>(db: &mut Db<S>) -> Result<Self, S::Error> {
        let mut tangle_ids: Vec<TangleId> = Vec::new();
        let mut set_feeds = Vec::new();
        let mut dict_feeds = Vec::new();
        db.store().scan(&mut |record| {
            let meta = &record.msg.metadata;
            if meta.tangles.is_empty() {
                tangle_ids.push(record.id);
            }
            tangle_ids.extend(meta.tangles.keys().copied());
            if record.msg.is_moot()
                && let Account::Id(account) = meta.account
            {
                if let Some(sub) = meta.domain.strip_prefix(set::DOMAIN_PREFIX) {
                    set_feeds.push((account, sub.to_owned()));
                } else if let Some(sub) = meta.domain.strip_prefix(dict::DOMAIN_PREFIX) {
                    dict_feeds.push((account, sub.to_owned()));
                }
            }
            ControlFlow::Continue(())
        })?;
        tangle_ids.sort();
        tangle_ids.dedup();
        let mut snapshot = Self::default();
        for id in tangle_ids {
            let tangle = db.tangle(&id)?;
            if tangle.has_root() {
                snapshot.tangles.insert(
                    id.to_string(),
                    tangle.topo_order().map(ToString::to_string).collect(),
                );
            }
        }
        for (account, sub) in set_feeds {
            let items = set::read(db, &account, &sub)?;
            snapshot
                .sets
                .insert(format!("{account}/{sub}"), items.into_vec());
        }
        for (account, sub) in dict_feeds {
            let value = dict::read(db, &account, &sub)?;
            snapshot.dicts.insert(format!("{account}/{sub}"), value);
        }
        Ok(snapshot)
    }
}
