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
use crate::msg::{self, Account, Msg};
use crate::set;
use crate::store::Store;
use crate::validate::Digest;

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
    add_decoded(db, decode_json(text))
}

/// A line of JSON decoded into a msg, or the verdict that refuses it before any store is
/// consulted. Decoding needs no database, so a batch of lines can be decoded (and its
/// signatures verified, [`crate::validate::SignatureVerdict`]) on several cores before the
/// msgs are added in order with [`add_decoded`].
#[derive(Debug, Clone)]
pub enum Decoded {
    /// A well-formed msg, with its digest.
    Msg(Box<(Msg, Digest)>),
    /// Refused as it stands (not JSON, or a rule that needs no context is broken).
    Refused(Verdict),
}

/// Decodes one JSON msg (the context-free rules of [`msg::decode`]).
#[must_use]
pub fn decode_json(text: &str) -> Decoded {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(err) => {
            return Decoded::Refused(Verdict::Rejected(
                None,
                format!("invalid msg: not JSON ({err})"),
            ));
        }
    };
    // The decode writes the canonical metadata anyway; it keeps the digest of it.
    match msg::decode_digested(&value) {
        Ok(digested) => {
            let (msg, digest) = digested.into_parts();
            Decoded::Msg(Box::new((std::sync::Arc::unwrap_or_clone(msg), digest)))
        }
        Err(err) => Decoded::Refused(Verdict::Rejected(id_of_json(&value), err.to_string())),
    }
}

/// Adds a decoded msg with the reference's rules (tangle inferred): the second half of
/// [`add_json`].
///
/// # Errors
/// Only store failures; a refused msg is a [`Verdict::Rejected`].
pub fn add_decoded<S: Store>(db: &mut Db<S>, decoded: Decoded) -> Result<Verdict, S::Error> {
    let (msg, digest) = match decoded {
        Decoded::Msg(boxed) => *boxed,
        Decoded::Refused(verdict) => return Ok(verdict),
    };
    let id = digest.id;
    match db.add_digested(std::sync::Arc::new(msg), digest, None) {
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
