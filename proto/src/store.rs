//! Where msgs live: the [`Store`] trait and [`MemStore`], the in-memory reference store.
//!
//! A store persists records (msg ID, msg, receive sequence number) and ghosts, and answers
//! the few queries the rules of [`crate::db`] need: get by ID, members of a tangle, and a
//! scan in receive order. It knows nothing of validation. `MemStore` is the oracle every
//! other store (the disk store in `node`) is tested against.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::ops::ControlFlow;
use std::sync::Arc;

use crate::ids::{AccountId, MsgId, TangleId};
use crate::msg::{Metadata, Msg, TangleLink};

/// A stored msg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The msg ID.
    pub id: MsgId,
    /// The msg (data `null` once erased).
    pub msg: Arc<Msg>,
    /// Receive order: strictly increasing across appends, never reused.
    pub seq: u64,
}

/// What building a tangle or a sync index needs of a stored msg: its metadata and whether it
/// still has its data. A store that keeps msgs encoded can answer it without decoding and
/// hashing their data (see [`Store::get_metadata`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredMetadata {
    /// The whole msg, when the store has it decoded anyway.
    Msg(Arc<Msg>),
    /// The metadata alone.
    Metadata {
        /// The msg's metadata (shared with the store's cache).
        metadata: Arc<Metadata>,
        /// Whether the msg still has its data (not erased).
        has_data: bool,
    },
}

impl StoredMetadata {
    /// The msg's metadata.
    #[must_use]
    pub fn metadata(&self) -> &Metadata {
        match self {
            Self::Msg(msg) => &msg.metadata,
            Self::Metadata { metadata, .. } => metadata,
        }
    }

    /// Whether the msg still has its data (not erased).
    #[must_use]
    pub fn has_data(&self) -> bool {
        match self {
            Self::Msg(msg) => msg.has_data(),
            Self::Metadata { has_data, .. } => *has_data,
        }
    }
}

/// An account and its tips, as a feed msg names them (`metadata.account`, `accountTips`);
/// shared by the consecutive members of a tangle that name the same ones.
pub type AccountTips = Arc<(AccountId, Vec<MsgId>)>;

/// What loading a tangle, and indexing it for sync, needs of one stored member, and no more
/// (see [`Store::tangle_links`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberLink {
    /// The member's msg ID.
    pub id: MsgId,
    /// Its depth and `prev` in the tangle.
    pub link: TangleLink,
    /// Whether it still has its data (not erased).
    pub has_data: bool,
    /// Its account and account tips, when it names both (a feed msg).
    pub account_tips: Option<AccountTips>,
}

impl MemberLink {
    /// The link of `id` in `tangle` from its stored metadata; `None` if the metadata does not
    /// list `tangle`. `last_tips` is the previous member's, reused when equal.
    #[must_use]
    pub fn of(
        tangle: &TangleId,
        id: MsgId,
        stored: &StoredMetadata,
        last_tips: Option<&AccountTips>,
    ) -> Option<Self> {
        let metadata = stored.metadata();
        let link = metadata.tangles.get(tangle)?.clone();
        let account_tips = match (metadata.account.id(), &metadata.account_tips) {
            (Some(account), Some(tips)) => Some(match last_tips {
                Some(last) if last.0 == account && last.1 == *tips => Arc::clone(last),
                _ => Arc::new((account, tips.clone())),
            }),
            _ => None,
        };
        Some(Self {
            id,
            link,
            has_data: stored.has_data(),
            account_tips,
        })
    }
}

/// Size accounting of a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Records present.
    pub msgs: u64,
    /// Bytes of the JSON of the records present.
    pub bytes: u64,
    /// Bytes freed by erase and delete that compaction has not reclaimed yet.
    pub deleted_bytes: u64,
}

/// Ghosts of one tangle: deleted msgs remembered by depth so sync does not fetch them again.
pub type Ghosts = BTreeMap<MsgId, u64>;

/// Persistence of msgs and ghosts.
///
/// Writes are acknowledged when the method returns `Ok`; stores that buffer (group commit)
/// make that true by the time [`Store::flush`] returns, and say so in their docs.
pub trait Store {
    /// What can go wrong (I/O for disk stores).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The record of `id`, if stored.
    ///
    /// # Errors
    /// Store failures.
    fn get(&self, id: &MsgId) -> Result<Option<Record>, Self::Error>;

    /// The metadata of `id` and whether it has data, if stored: all that loading a tangle
    /// needs. Stores that keep msgs encoded override it to skip decoding the data, which a
    /// restarted peer would otherwise do for every msg of every tangle it syncs.
    ///
    /// # Errors
    /// Store failures.
    fn get_metadata(&self, id: &MsgId) -> Result<Option<StoredMetadata>, Self::Error> {
        Ok(self.get(id)?.map(|record| StoredMetadata::Msg(record.msg)))
    }

    /// The link in `tangle` of every stored msg whose metadata lists it (its root is not
    /// included), in no particular order: what [`crate::db::Db`] builds a tangle from and the
    /// sync index reads account tips from. The default reads each member's metadata; a store
    /// that keeps metadata encoded overrides it to decode only these fields.
    ///
    /// # Errors
    /// Store failures.
    fn tangle_links(&self, tangle: &TangleId) -> Result<Vec<MemberLink>, Self::Error> {
        let mut links: Vec<MemberLink> = Vec::new();
        for member in self.tangle_members(tangle)? {
            if let Some(stored) = self.get_metadata(&member)? {
                let last_tips = links.last().and_then(|last| last.account_tips.as_ref());
                links.extend(MemberLink::of(tangle, member, &stored, last_tips));
            }
        }
        Ok(links)
    }

    /// IDs of the stored msgs whose metadata lists `tangle` (its root is not included).
    ///
    /// # Errors
    /// Store failures.
    fn tangle_members(&self, tangle: &TangleId) -> Result<Vec<MsgId>, Self::Error>;

    /// Stores a new msg; `id` is not stored yet. Returns its sequence number.
    ///
    /// # Errors
    /// Store failures; nothing is stored then.
    fn append(&mut self, id: MsgId, msg: Arc<Msg>) -> Result<u64, Self::Error>;

    /// Replaces the stored (erased) copy of `id` with `msg`, atomically: after a crash either
    /// the old or the new copy is there. Returns the new sequence number.
    ///
    /// # Errors
    /// Store failures.
    fn replace(&mut self, id: MsgId, msg: Arc<Msg>) -> Result<u64, Self::Error>;

    /// Sets the data of `id` to null, keeping its metadata; returns whether it was stored
    /// with data.
    ///
    /// # Errors
    /// Store failures.
    fn erase(&mut self, id: &MsgId) -> Result<bool, Self::Error>;

    /// Removes `id`; returns whether it was stored.
    ///
    /// # Errors
    /// Store failures.
    fn delete(&mut self, id: &MsgId) -> Result<bool, Self::Error>;

    /// The ghosts of `tangle`.
    ///
    /// # Errors
    /// Store failures.
    fn ghosts(&self, tangle: &TangleId) -> Result<Ghosts, Self::Error>;

    /// Replaces the ghosts of `tangle` (an empty map removes them).
    ///
    /// # Errors
    /// Store failures.
    fn set_ghosts(&mut self, tangle: &TangleId, ghosts: &Ghosts) -> Result<(), Self::Error>;

    /// Tangles that have ghosts.
    ///
    /// # Errors
    /// Store failures.
    fn ghost_tangles(&self) -> Result<Vec<TangleId>, Self::Error>;

    /// Visits every record in receive order until `visit` breaks.
    ///
    /// # Errors
    /// Store failures.
    fn scan(&self, visit: &mut dyn FnMut(&Record) -> ControlFlow<()>) -> Result<(), Self::Error>;

    /// Number of records.
    fn len(&self) -> u64;

    /// Whether the store holds no record.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size accounting.
    fn stats(&self) -> StoreStats;

    /// Makes every write so far durable.
    ///
    /// # Errors
    /// Store failures.
    fn flush(&mut self) -> Result<(), Self::Error>;
}

/// The JSON length a record is accounted with.
#[must_use]
pub fn record_bytes(msg: &Msg) -> u64 {
    u64::try_from(msg.to_json().len()).unwrap_or(u64::MAX)
}

/// An in-memory store. Never fails.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    records: BTreeMap<MsgId, Record>,
    by_seq: BTreeMap<u64, MsgId>,
    members: BTreeMap<TangleId, BTreeSet<MsgId>>,
    ghosts: BTreeMap<TangleId, Ghosts>,
    next_seq: u64,
    bytes: u64,
    deleted_bytes: u64,
}

impl MemStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn index(&mut self, id: MsgId, msg: &Msg) {
        for tangle in msg.metadata.tangles.keys() {
            self.members.entry(*tangle).or_default().insert(id);
        }
    }

    fn unindex(&mut self, id: &MsgId, msg: &Msg) {
        for tangle in msg.metadata.tangles.keys() {
            if let Some(members) = self.members.get_mut(tangle) {
                members.remove(id);
                if members.is_empty() {
                    self.members.remove(tangle);
                }
            }
        }
    }

    fn put(&mut self, id: MsgId, msg: Arc<Msg>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += record_bytes(&msg);
        self.index(id, &msg);
        self.by_seq.insert(seq, id);
        self.records.insert(id, Record { id, msg, seq });
        seq
    }

    fn remove(&mut self, id: &MsgId) -> Option<Record> {
        let record = self.records.remove(id)?;
        let size = record_bytes(&record.msg);
        self.bytes -= size;
        self.deleted_bytes += size;
        self.by_seq.remove(&record.seq);
        self.unindex(id, &record.msg);
        Some(record)
    }

    /// Forgets deleted bytes, as compaction of a log would.
    pub fn compact(&mut self) {
        self.deleted_bytes = 0;
    }
}

impl Store for MemStore {
    type Error = Infallible;

    fn get(&self, id: &MsgId) -> Result<Option<Record>, Infallible> {
        Ok(self.records.get(id).cloned())
    }

    fn tangle_members(&self, tangle: &TangleId) -> Result<Vec<MsgId>, Infallible> {
        Ok(self
            .members
            .get(tangle)
            .map(|members| members.iter().copied().collect())
            .unwrap_or_default())
    }

    fn append(&mut self, id: MsgId, msg: Arc<Msg>) -> Result<u64, Infallible> {
        assert!(
            !self.records.contains_key(&id),
            "append of a stored msg {id}"
        );
        Ok(self.put(id, msg))
    }

    fn replace(&mut self, id: MsgId, msg: Arc<Msg>) -> Result<u64, Infallible> {
        self.remove(&id);
        Ok(self.put(id, msg))
    }

    fn erase(&mut self, id: &MsgId) -> Result<bool, Infallible> {
        let Some(record) = self.records.get_mut(id) else {
            return Ok(false);
        };
        if record.msg.data.is_null() {
            return Ok(false);
        }
        let before = record_bytes(&record.msg);
        record.msg = Arc::new(record.msg.erased());
        let after = record_bytes(&record.msg);
        // An erased copy is longer than the original when the data was shorter than `null`
        // (`{}`), so neither difference may be taken unsigned.
        self.bytes = self.bytes - before + after;
        self.deleted_bytes += before.saturating_sub(after);
        Ok(true)
    }

    fn delete(&mut self, id: &MsgId) -> Result<bool, Infallible> {
        Ok(self.remove(id).is_some())
    }

    fn ghosts(&self, tangle: &TangleId) -> Result<Ghosts, Infallible> {
        Ok(self.ghosts.get(tangle).cloned().unwrap_or_default())
    }

    fn set_ghosts(&mut self, tangle: &TangleId, ghosts: &Ghosts) -> Result<(), Infallible> {
        if ghosts.is_empty() {
            self.ghosts.remove(tangle);
        } else {
            self.ghosts.insert(*tangle, ghosts.clone());
        }
        Ok(())
    }

    fn ghost_tangles(&self) -> Result<Vec<TangleId>, Infallible> {
        Ok(self.ghosts.keys().copied().collect())
    }

    fn scan(&self, visit: &mut dyn FnMut(&Record) -> ControlFlow<()>) -> Result<(), Infallible> {
        for id in self.by_seq.values() {
            if let Some(record) = self.records.get(id)
                && visit(record).is_break()
            {
                break;
            }
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        u64::try_from(self.records.len()).unwrap_or(u64::MAX)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            msgs: self.len(),
            bytes: self.bytes,
            deleted_bytes: self.deleted_bytes,
        }
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}
