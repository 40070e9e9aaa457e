//! [`SyncIndex`]: what sync needs of a tangle, kept between sessions so that an incremental
//! sync does not rescan the whole tangle.
//!
//! Per tangle it keeps, in topological order, every member's depth, its bloom hashes for the
//! three rounds, and the account tips it names (interned), plus which members are *cuts*: a
//! member alone at its depth whose `prev` covers every tip below it, so that every member
//! below it is its ancestor. With these:
//! - the IDs and hashes of a depth range are a contiguous run of entries (no msg is fetched,
//!   nothing is hashed);
//! - `slice(ids, [])` only walks the members above the highest cut below the IDs (the
//!   members below are all before the IDs, so only their trail is sent).
//!
//! Entries are checked against the tangle's version on every use and rebuilt when stale, so
//! the index is never wrong, only sometimes slow. [`SyncIndex::note_added`] keeps an entry
//! fresh through the common change (a msg added at or near the top) without a rebuild.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use indexmap::IndexMap;

use super::bloom::{ItemHashes, SEED_DEFAULT};
use super::recon::{Item, SortedItems};
use super::store::{RangeItem, RangeItems, SyncStore};
use crate::collate;
use crate::db::{Db, LoadedTips};
use crate::goals::{Goal, Goals};
use crate::ids::{AccountId, MsgId, TangleId};
use crate::msg::{Metadata, Msg};
use crate::roots;
use crate::store::Store;
use crate::tangle::{DepthRange, Tangle};

mod above_cut;
mod entry;

use above_cut::AboveCut;
use entry::{Entry, NO_TIPS};

/// Most tangles indexed at once; the least recently used is dropped beyond.
pub const INDEXED_TANGLES_MAX: usize = 1024;

/// Most msgs a node indexes when it starts ([`SyncIndex::warm_goals`]): enough for a few large
/// feeds, little enough that a peer with many goals still starts within a fraction of a second
/// (the tangles past it are indexed by their first sync, as before).
pub const WARMED_AT_START_MSGS_MAX: usize = 100_000;

#[derive(Debug)]
struct TangleIndex {
    version: u64,
    last_used: u64,
    entries: Vec<Entry>,
    tip_sets: Vec<(AccountId, Vec<MsgId>)>,
    /// The places of the entries whose tip set differs from the entry's before them (the
    /// first entry's included): listing a run's tip sets visits these, not the whole run
    /// (both sides of a `sync.reconcile` list them for every exchange). Kept by
    /// [`TangleIndex::insert_entry`].
    tip_changes: Vec<usize>,
    /// Every entry as a `sync.reconcile` item (its depth, its ID's raw 32 bytes), sorted, with
    /// prefix sums: filled the first time `sync.reconcile` reads the tangle (decoding 10,000
    /// base58 IDs, sorting and summing them per exchange was most of its cost beside
    /// validation) and kept fresh by [`SyncIndex::note_added`]. `None` for a tangle only
    /// pzp-sync reads, so those peers pay nothing for it.
    sorted: KeptItems,
}

/// A tangle's sorted reconcile items, shared with the exchanges reading them (an exchange
/// keeps the set it started with: a change made meanwhile copies the items first). A clone
/// of the index copies them too, so that two indexes never share what either changes.
#[derive(Debug, Default)]
struct KeptItems(Option<Arc<SortedItems>>);

/// Keeps the vectors' spare capacity (see [`super::recon::clone_keeping_capacity`]).
impl Clone for TangleIndex {
    fn clone(&self) -> Self {
        Self {
            version: self.version,
            last_used: self.last_used,
            entries: super::recon::clone_keeping_capacity(&self.entries),
            tip_sets: self.tip_sets.clone(),
            tip_changes: self.tip_changes.clone(),
            sorted: self.sorted.clone(),
        }
    }
}

impl Clone for KeptItems {
    fn clone(&self) -> Self {
        Self(self.0.as_deref().map(|items| Arc::new(items.clone())))
    }
}

/// An entry as a `sync.reconcile` item: keyed by its depth.
fn entry_item(entry: &Entry) -> Item {
    Item {
        key: entry.depth,
        id: entry.id.to_bytes(),
    }
}

impl TangleIndex {
    fn intern(&mut self, metadata: &Metadata) -> u32 {
        let (Some(account), Some(tips)) = (metadata.account.id(), &metadata.account_tips) else {
            return NO_TIPS;
        };
        self.intern_tips(account, tips)
    }

    fn intern_tips(&mut self, account: AccountId, tips: &[MsgId]) -> u32 {
        // Feeds name few distinct tip sets, mostly the latest one again.
        if let Some(position) = self
            .tip_sets
            .iter()
            .rposition(|(known, known_tips)| *known == account && known_tips == tips)
        {
            return u32::try_from(position).unwrap_or(NO_TIPS);
        }
        self.tip_sets.push((account, tips.to_vec()));
        u32::try_from(self.tip_sets.len() - 1).unwrap_or(NO_TIPS)
    }

    /// Inserts `entry` at `at`, keeping the tip changes: only those at the new entry's place
    /// and the next can differ; the ones after move up by one.
    fn insert_entry(&mut self, at: usize, entry: Entry) {
        self.entries.insert(at, entry);
        let from = self.tip_changes.partition_point(|place| *place < at);
        for place in self.tip_changes.iter_mut().skip(from) {
            *place += 1;
        }
        if self.tip_changes.get(from) == Some(&(at + 1)) {
            self.tip_changes.remove(from);
        }
        let changed = [at, at + 1]
            .into_iter()
            .filter(|place| is_tip_change(&self.entries, *place));
        let changed: Vec<usize> = changed.collect();
        self.tip_changes.splice(from..from, changed);
    }

    /// The tip sets the entries at `run` name, in order of first use.
    fn tips_used(&self, run: std::ops::Range<usize>) -> Vec<u32> {
        let mut used: Vec<u32> = Vec::new();
        let after_start = self
            .tip_changes
            .partition_point(|place| *place <= run.start);
        let changes = self.tip_changes.get(after_start..).unwrap_or_default();
        let starts = std::iter::once(run.start).chain(changes.iter().copied());
        for place in starts.take_while(|place| *place < run.end) {
            let Some(entry) = self.entries.get(place) else {
                break;
            };
            if entry.tips != NO_TIPS && !used.contains(&entry.tips) {
                used.push(entry.tips);
            }
        }
        used
    }

    /// Entries in topological order, each with its own hashes and a valid tip set.
    fn check_entries(&self, tangle_id: &TangleId) {
        for pair in self.entries.windows(2) {
            if let [a, b] = pair {
                let collated = collate::compare(a.id.as_str(), b.id.as_str()).then(a.id.cmp(&b.id));
                assert!(
                    a.depth < b.depth || (a.depth == b.depth && collated.is_lt()),
                    "{tangle_id}: {} before {} out of order",
                    a.id,
                    b.id
                );
            }
        }
        assert_eq!(
            self.tip_changes,
            tip_changes(&self.entries),
            "{tangle_id}: the kept tip changes differ from the entries'"
        );
        if let Some(sorted) = &self.sorted.0 {
            let expected = SortedItems::new(self.entries.iter().map(entry_item).collect());
            assert!(
                **sorted == expected,
                "{tangle_id}: the sorted reconcile items or their sums differ from the entries'"
            );
        }
        for entry in &self.entries {
            assert_eq!(entry.hashes, entry_hashes(&entry.id), "{tangle_id}: hashes");
            assert!(
                entry.tips == NO_TIPS
                    || usize::try_from(entry.tips).is_ok_and(|at| at < self.tip_sets.len()),
                "{tangle_id}: {} names tip set {}",
                entry.id,
                entry.tips
            );
        }
    }

    fn tip_set(&self, tips: u32) -> Option<&(AccountId, Vec<MsgId>)> {
        usize::try_from(tips)
            .ok()
            .and_then(|at| self.tip_sets.get(at))
    }

    /// The same entries as `rebuilt` (tip sets compared by value: interning order differs),
    /// and no cut a rebuild does not find. It may miss cuts: [`SyncIndex::note_added`] drops
    /// the cuts a member added below others could make (a rebuild finds them), which only
    /// makes slices walk further.
    fn check_same(&self, rebuilt: &TangleIndex, tangle_id: &TangleId) {
        assert_eq!(
            self.entries.len(),
            rebuilt.entries.len(),
            "{tangle_id}: entry count"
        );
        for (entry, expected) in self.entries.iter().zip(&rebuilt.entries) {
            assert_eq!(
                (entry.id, entry.depth),
                (expected.id, expected.depth),
                "{tangle_id}: entry differs from a rebuild"
            );
            assert!(
                !entry.cut || expected.cut,
                "{tangle_id}: {} is marked a cut but is not one",
                entry.id
            );
            assert_eq!(
                self.tip_set(entry.tips),
                rebuilt.tip_set(expected.tips),
                "{tangle_id}: tip set of {}",
                entry.id
            );
        }
    }

    /// The sorted reconcile items, filled now if they were not.
    fn sorted_items(&mut self) -> &Arc<SortedItems> {
        self.sorted.0.get_or_insert_with(|| {
            Arc::new(SortedItems::new(
                self.entries.iter().map(entry_item).collect(),
            ))
        })
    }

    /// The places of the entries whose depth is in `range`.
    fn run(&self, range: DepthRange) -> std::ops::Range<usize> {
        if range.is_empty() {
            return 0..0;
        }
        let start = self
            .entries
            .partition_point(|entry| entry.depth < range.min);
        let end = self
            .entries
            .partition_point(|entry| entry.depth <= range.max);
        start..end.max(start)
    }
}

/// Whether the entry at `at` names another tip set than the one before it (the first entry
/// does); not past the end.
fn is_tip_change(entries: &[Entry], at: usize) -> bool {
    let Some(entry) = entries.get(at) else {
        return false;
    };
    at.checked_sub(1)
        .and_then(|before| entries.get(before))
        .is_none_or(|before| before.tips != entry.tips)
}

/// The places of the entries' tip changes ([`TangleIndex::tip_changes`]).
fn tip_changes(entries: &[Entry]) -> Vec<usize> {
    (0..entries.len())
        .filter(|at| is_tip_change(entries, *at))
        .collect()
}

fn entry_hashes(id: &MsgId) -> [ItemHashes; 3] {
    [0, 1, 2].map(|round| ItemHashes::of_sync_item(round, id, SEED_DEFAULT))
}

/// The place of the first entry at or above `depth`; the end, without a search, for a msg
/// above the top (where a new msg nearly always lands).
fn first_at_or_above(entries: &[Entry], depth: u64) -> usize {
    if entries.last().is_none_or(|last| last.depth < depth) {
        return entries.len();
    }
    entries.partition_point(|entry| entry.depth < depth)
}

/// Position of `id` at `depth` in topological order among `entries` (the end, without a
/// search, above the top).
fn position(entries: &[Entry], id: &MsgId, depth: u64) -> usize {
    if entries.last().is_none_or(|last| last.depth < depth) {
        return entries.len();
    }
    entries.partition_point(|entry| {
        entry.depth < depth
            || (entry.depth == depth
                && collate::compare(entry.id.as_str(), id.as_str())
                    .then(entry.id.cmp(id))
                    .is_lt())
    })
}

/// Sync's per-tangle index. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct SyncIndex {
    tangles: BTreeMap<TangleId, TangleIndex>,
    uses: u64,
}

impl SyncIndex {
    /// An empty index.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything (needed after [`Db::forget_tangles`], which resets versions).
    pub fn clear(&mut self) {
        self.tangles.clear();
    }

    /// Number of tangles indexed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tangles.len()
    }

    /// Whether no tangle is indexed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tangles.is_empty()
    }

    /// Panics if an index is inconsistent: within its bound; entries in topological order
    /// with their own hashes and valid tip sets; and every entry that is fresh for a tangle
    /// `db` has loaded equal to a rebuild (ids, depths, hashes, tip sets; no false cut). Tests call
    /// it after every operation; it loads nothing into `db`.
    ///
    /// # Errors
    /// Store failures while rebuilding to compare.
    pub fn check_invariants<S: Store>(&self, db: &Db<S>) -> Result<(), S::Error> {
        assert!(
            self.tangles.len() <= INDEXED_TANGLES_MAX,
            "indexed tangles {} > {INDEXED_TANGLES_MAX}",
            self.tangles.len()
        );
        for (tangle_id, index) in &self.tangles {
            assert!(
                index.last_used <= self.uses,
                "{tangle_id}: used in the future"
            );
            index.check_entries(tangle_id);
            let Some(tangle) = db.loaded_tangle(tangle_id) else {
                continue;
            };
            let fresh = index.version == tangle.version() && index.entries.len() == tangle.len();
            if fresh && tangle.has_root() {
                let rebuilt = build_from(db, tangle, None)?;
                index.check_same(&rebuilt, tangle_id);
            }
        }
        Ok(())
    }

    /// Indexes `tangle` now if it is not indexed or stale (a node does this before it
    /// expects syncs, so the first one does not pay for it).
    ///
    /// # Errors
    /// Store failures.
    pub fn warm<S: Store>(&mut self, db: &mut Db<S>, tangle: &TangleId) -> Result<(), S::Error> {
        self.fresh(db, tangle).map(|_| ())
    }

    /// [`SyncIndex::warm`], and the sorted reconcile items `sync.reconcile` reads, built now
    /// (a node that reconciles keeps them: [`SyncIndex::note_added`] adds to them as msgs
    /// arrive, so only its first exchange on a tangle would pay for building them).
    ///
    /// # Errors
    /// Store failures.
    pub fn warm_for_reconcile<S: Store>(
        &mut self,
        db: &mut Db<S>,
        tangle: &TangleId,
    ) -> Result<(), S::Error> {
        self.fresh(db, tangle)?;
        if let Some(index) = self.tangles.get_mut(tangle) {
            index.sorted_items();
        }
        Ok(())
    }

    /// Indexes the tangles `goals` asks for, in the goals' order, until `msgs_max` msgs
    /// ([`WARMED_AT_START_MSGS_MAX`] for a node) or [`INDEXED_TANGLES_MAX`] tangles are
    /// indexed, with their reconcile items when `reconcile`. A node does this when it starts,
    /// so its first sync with each remote does not begin by loading and indexing what it
    /// already held. Returns the msgs indexed.
    ///
    /// # Errors
    /// Store failures.
    pub fn warm_goals<S: Store>(
        &mut self,
        db: &mut Db<S>,
        goals: &Goals,
        reconcile: bool,
        msgs_max: usize,
    ) -> Result<usize, S::Error> {
        let mut warmed = 0;
        let wanted = goals.iter().filter(|(_, goal)| **goal != Goal::None);
        // More tangles than the index holds would only evict the first ones warmed.
        for (tangle, _) in wanted.take(INDEXED_TANGLES_MAX) {
            if warmed >= msgs_max {
                break;
            }
            if reconcile {
                self.warm_for_reconcile(db, tangle)?;
            } else {
                self.warm(db, tangle)?;
            }
            warmed += db.tangle(tangle)?.len();
        }
        Ok(warmed)
    }

    /// Updates the index after `db.add` stored `msg` (appended or replacing an erased copy):
    /// entries of its tangles stay fresh without a rebuild when that was the only change.
    ///
    /// # Errors
    /// Store failures.
    pub fn note_added<S: Store>(
        &mut self,
        db: &mut Db<S>,
        id: &MsgId,
        msg: &Msg,
    ) -> Result<(), S::Error> {
        let tangles: Vec<TangleId> = msg
            .metadata
            .tangles
            .keys()
            .copied()
            .chain(std::iter::once(*id))
            .collect();
        for tangle_id in tangles {
            let Some(index) = self.tangles.get_mut(&tangle_id) else {
                continue;
            };
            let tangle = db.tangle(&tangle_id)?;
            let Some(depth) = tangle.depth(id) else {
                continue;
            };
            let fresh_before = index.version + 1 == tangle.version();
            if fresh_before && tangle.len() == index.entries.len() {
                // A known member regained its data: nothing sync indexes changed.
                index.version = tangle.version();
                continue;
            }
            if !fresh_before || tangle.len() != index.entries.len() + 1 {
                self.tangles.remove(&tangle_id);
                continue;
            }
            // The new member is not before any existing one, nor alone with every tip below
            // it, for the members at or above its depth.
            let start = first_at_or_above(&index.entries, depth);
            for entry in index.entries.iter_mut().skip(start) {
                entry.cut = false;
            }
            let tips = index.intern(&msg.metadata);
            let only_tip = tangle.tips().len() == 1 && tangle.tips().contains(id);
            let alone = tangle.at_depth(depth).len() == 1;
            let at = position(&index.entries, id, depth);
            if let Some(sorted) = &mut index.sorted.0 {
                let item = Item {
                    key: depth,
                    id: id.to_bytes(),
                };
                Arc::make_mut(sorted).insert(item);
            }
            index.insert_entry(
                at,
                Entry {
                    id: *id,
                    depth,
                    hashes: entry_hashes(id),
                    tips,
                    cut: only_tip && alone,
                },
            );
            index.version = tangle.version();
        }
        Ok(())
    }

    /// The fresh index of `tangle`, rebuilt if stale. `None` if the root is unknown.
    fn fresh<S: Store>(
        &mut self,
        db: &mut Db<S>,
        tangle_id: &TangleId,
    ) -> Result<Option<&TangleIndex>, S::Error> {
        self.uses += 1;
        let uses = self.uses;
        let tangle = db.tangle(tangle_id)?;
        if !tangle.has_root() {
            self.tangles.remove(tangle_id);
            return Ok(None);
        }
        let fresh = self.tangles.get(tangle_id).is_some_and(|index| {
            index.version == tangle.version() && index.entries.len() == tangle.len()
        });
        if !fresh {
            let rebuilt = build(db, tangle_id)?;
            if self.tangles.len() >= INDEXED_TANGLES_MAX && !self.tangles.contains_key(tangle_id) {
                let oldest = self
                    .tangles
                    .iter()
                    .min_by_key(|(_, index)| index.last_used)
                    .map(|(id, _)| *id);
                if let Some(oldest) = oldest {
                    self.tangles.remove(&oldest);
                }
            }
            self.tangles.insert(*tangle_id, rebuilt);
        }
        let index = self
            .tangles
            .get_mut(tangle_id)
            .expect("invariant: fresh or just rebuilt");
        index.last_used = uses;
        Ok(Some(index))
    }
}

/// Indexes a tangle from scratch: one pass in topological order, fetching each msg once
/// (or none, when the tangle was just loaded: its members' tips came with it).
fn build<S: Store>(db: &mut Db<S>, tangle_id: &TangleId) -> Result<TangleIndex, S::Error> {
    db.tangle(tangle_id)?;
    let loaded = db.take_loaded_tips(tangle_id);
    build_from(db, db.cached_tangle(tangle_id), loaded.as_ref())
}

/// [`build`] for a loaded tangle, taking members' tips from `loaded` where it has them.
fn build_from<S: Store>(
    db: &Db<S>,
    tangle: &Tangle,
    loaded: Option<&LoadedTips>,
) -> Result<TangleIndex, S::Error> {
    let order: Vec<MsgId> = tangle.topo_order().copied().collect();
    let mut index = TangleIndex {
        version: 0,
        last_used: 0,
        entries: Vec::with_capacity(order.len()),
        tip_sets: Vec::new(),
        tip_changes: Vec::new(),
        sorted: KeptItems::default(),
    };
    for id in &order {
        let tips = match loaded.and_then(|loaded| loaded.of(id)) {
            Some(Some(tips)) => index.intern_tips(tips.0, &tips.1),
            Some(None) => NO_TIPS,
            None => match db.get_metadata(id)? {
                Some(stored) => index.intern(stored.metadata()),
                None => NO_TIPS,
            },
        };
        index.entries.push(Entry {
            id: *id,
            depth: 0,
            hashes: entry_hashes(id),
            tips,
            cut: false,
        });
    }
    index.version = tangle.version();
    index.tip_changes = tip_changes(&index.entries);
    // Walk level by level keeping the tips of everything below; a member alone at its depth
    // whose prev covers those tips has every lower member as an ancestor.
    let mut below_tips: BTreeSet<MsgId> = BTreeSet::new();
    let mut at = 0;
    while let Some(first) = index.entries.get(at) {
        let depth = tangle.depth(&first.id).unwrap_or(0);
        let level = tangle.at_depth(depth);
        let prev_of = |id: &MsgId| tangle.prev(id).unwrap_or_default();
        let cut = match level {
            [only] => below_tips.iter().all(|tip| prev_of(only).contains(tip)),
            _ => false,
        };
        for member in level {
            for parent in prev_of(member) {
                below_tips.remove(parent);
            }
        }
        for (offset, member) in level.iter().enumerate() {
            below_tips.insert(*member);
            if let Some(entry) = index.entries.get_mut(at + offset) {
                debug_assert_eq!(entry.id, *member, "invariant: same topological order");
                entry.depth = depth;
                entry.cut = cut;
            }
        }
        at += level.len().max(1);
    }
    Ok(index)
}

/// A [`Db`] read through a [`SyncIndex`]: the [`SyncStore`] a peer should give its sessions.
#[derive(Debug)]
pub struct IndexedDb<'a, S: Store> {
    /// The database.
    pub db: &'a mut Db<S>,
    /// Its index.
    pub index: &'a mut SyncIndex,
}

impl<'a, S: Store> IndexedDb<'a, S> {
    /// Reads `db` through `index`.
    pub fn new(db: &'a mut Db<S>, index: &'a mut SyncIndex) -> Self {
        Self { db, index }
    }

    /// The items `sync.reconcile` reconciles over `range` (ghosts aside), in the order
    /// [`SyncStore::range_items`] lists their IDs: the account msgs and the root keyed 0,
    /// then the range's members keyed by depth.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) fn recon_items_indexed(
        &mut self,
        tangle: &TangleId,
        range: DepthRange,
        out: &mut Vec<Item>,
    ) -> Result<(), S::Error> {
        let mut leading = Vec::new();
        let Some(run) = self.leading_ids(tangle, range, &mut leading)? else {
            return Ok(());
        };
        out.reserve(leading.len() + run.len());
        out.extend(leading.iter().map(|id| Item {
            key: 0,
            id: id.to_bytes(),
        }));
        let index = self
            .index
            .tangles
            .get(tangle)
            .expect("invariant: leading_ids() kept it fresh");
        let entries = index.entries.get(run).unwrap_or_default();
        out.extend(entries.iter().map(entry_item));
        Ok(())
    }

    /// The same items as [`IndexedDb::recon_items_indexed`], for a reconciler: those keyed 0
    /// (the account msgs, the root) into `head`, and the tangle's sorted items (built here
    /// the first time), of which the members above depth 0 in `range` are the rest. `None`
    /// when the range is empty or the root unknown (nothing but `head`, empty).
    ///
    /// # Errors
    /// Store failures.
    pub(crate) fn recon_set_indexed(
        &mut self,
        tangle: &TangleId,
        range: DepthRange,
        head: &mut Vec<Item>,
    ) -> Result<Option<Arc<SortedItems>>, S::Error> {
        let mut leading = Vec::new();
        let Some(run) = self.leading_ids(tangle, range, &mut leading)? else {
            return Ok(None);
        };
        head.extend(leading.iter().map(|id| Item {
            key: 0,
            id: id.to_bytes(),
        }));
        let index = self
            .index
            .tangles
            .get_mut(tangle)
            .expect("invariant: leading_ids() kept it fresh");
        let entries = index.entries.get(run).unwrap_or_default();
        let at_depth_zero = entries.iter().take_while(|entry| entry.depth == 0);
        head.extend(at_depth_zero.map(entry_item));
        Ok(Some(Arc::clone(index.sorted_items())))
    }

    /// What [`SyncStore::range_items`] lists before the range's members (the account msgs
    /// their tip sets name, in order of first use, then the root when the range starts at
    /// 0) into `out`, and the positions of those members in the fresh index. `None` when
    /// the range is empty or the root unknown.
    fn leading_ids(
        &mut self,
        tangle: &TangleId,
        range: DepthRange,
        out: &mut Vec<MsgId>,
    ) -> Result<Option<std::ops::Range<usize>>, S::Error> {
        if range.is_empty() {
            return Ok(None);
        }
        let Some(index) = self.index.fresh(self.db, tangle)? else {
            return Ok(None);
        };
        let run = index.run(range);
        // Tip sets in order of first use, as the reference meets accounts.
        let tip_sets: Vec<(AccountId, Vec<MsgId>)> = index
            .tips_used(run.clone())
            .iter()
            .filter_map(|tips| index.tip_set(*tips).cloned())
            .collect();
        self.account_ids(&tip_sets, out)?;
        if range.min == 0 {
            out.push(*tangle);
        }
        Ok(Some(run))
    }

    /// Account msg IDs for these tip sets (in order of first use), as `getAccountMsgsFor`
    /// lists them.
    fn account_ids(
        &mut self,
        tip_sets: &[(AccountId, Vec<MsgId>)],
        out: &mut Vec<MsgId>,
    ) -> Result<(), S::Error> {
        let mut accounts: IndexMap<AccountId, BTreeSet<MsgId>> = IndexMap::new();
        for (account, tips) in tip_sets {
            accounts
                .entry(*account)
                .or_default()
                .extend(tips.iter().copied());
        }
        self.db.account_slices(&accounts, &mut |id, _| out.push(id))
    }
}

impl<S: Store> SyncStore for IndexedDb<'_, S> {
    type Error = S::Error;

    fn tangle_version(&mut self, tangle: &TangleId) -> Result<u64, S::Error> {
        self.db.tangle_version(tangle)
    }

    fn have_range(&mut self, tangle: &TangleId) -> Result<DepthRange, S::Error> {
        self.db.have_range(tangle)
    }

    fn min_required_depth(&mut self, tangle: &TangleId) -> Result<Option<u64>, S::Error> {
        roots::min_required_depth(self.db, tangle)
    }

    fn range_items(
        &mut self,
        tangle: &TangleId,
        range: DepthRange,
        out: &mut RangeItems,
    ) -> Result<(), S::Error> {
        let mut leading = Vec::new();
        let Some(run) = self.leading_ids(tangle, range, &mut leading)? else {
            return Ok(());
        };
        out.items.reserve(leading.len() + run.len());
        for id in &leading {
            out.push(*id, entry_hashes(id));
        }
        let index = self
            .index
            .tangles
            .get(tangle)
            .expect("invariant: leading_ids() kept it fresh");
        let run = index.entries.get(run).unwrap_or_default();
        out.items.extend(run.iter().map(|entry| RangeItem {
            id: entry.id,
            hashes: entry.hashes,
        }));
        Ok(())
    }

    fn ghost_ids(&mut self, tangle: &TangleId, out: &mut Vec<MsgId>) -> Result<(), S::Error> {
        self.db.ghost_ids(tangle, out)
    }

    fn msgs_for_ids(
        &mut self,
        tangle_id: &TangleId,
        ids: &[MsgId],
        out: &mut Vec<(MsgId, Arc<Msg>)>,
    ) -> Result<(), S::Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let Some(index) = self.index.fresh(self.db, tangle_id)? else {
            return self.db.account_msgs_among(ids, |_| false, out);
        };
        let tangle = self.db.cached_tangle(tangle_id);
        let above_cut = AboveCut::find(tangle, &index.entries, ids);
        let feed_msg = |id: &MsgId| {
            above_cut
                .as_ref()
                .is_some_and(|above| above.names_account_tips(id))
        };
        self.db.account_msgs_among(ids, feed_msg, out)?;
        let slice = above_cut
            .and_then(|above| above.slice(tangle, ids))
            .unwrap_or_else(|| tangle.slice(ids, &[]));
        self.db.slice_msgs(slice, out)
    }

    fn root_account(&mut self, tangle: &TangleId) -> Result<Option<AccountId>, S::Error> {
        self.db.root_account(tangle)
    }

    fn msgs_in_range(
        &mut self,
        tangle: &TangleId,
        range: DepthRange,
        out: &mut Vec<(MsgId, Arc<Msg>)>,
    ) -> Result<(), S::Error> {
        self.db.msgs_in_range(tangle, range, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_depth_ranges() {
        let id = MsgId::from_bytes(&[1; 32]);
        let entry = |depth| Entry {
            id,
            depth,
            hashes: entry_hashes(&id),
            tips: NO_TIPS,
            cut: false,
        };
        let index = TangleIndex {
            version: 0,
            last_used: 0,
            entries: vec![entry(0), entry(1), entry(1), entry(3)],
            tip_sets: Vec::new(),
            tip_changes: vec![0],
            sorted: KeptItems::default(),
        };
        let range = |min, max| DepthRange { min, max };
        assert_eq!(index.run(range(0, 0)).len(), 1);
        assert_eq!(index.run(range(1, 2)).len(), 2);
        assert_eq!(index.run(range(2, 2)).len(), 0);
        assert_eq!(index.run(range(0, 9)).len(), 4);
        assert_eq!(index.run(DepthRange::EMPTY).len(), 0);
    }

    /// Entries at depths 0 to 3, each with its own ID.
    fn four_entries() -> TangleIndex {
        let entry = |depth: u64| {
            let id = MsgId::from_bytes(&[u8::try_from(depth).expect("small") + 1; 32]);
            Entry {
                id,
                depth,
                hashes: entry_hashes(&id),
                tips: NO_TIPS,
                cut: false,
            }
        };
        let entries: Vec<Entry> = (0..4).map(entry).collect();
        TangleIndex {
            version: 0,
            last_used: 0,
            tip_changes: tip_changes(&entries),
            entries,
            tip_sets: Vec::new(),
            sorted: KeptItems::default(),
        }
    }

    #[test]
    fn kept_tip_changes_follow_inserts_anywhere_and_are_checked() {
        let tangle = MsgId::from_bytes(&[9; 32]);
        let mut index = four_entries();
        // Tip sets 0, 0, NO_TIPS, 1, then entries inserted with each of them (and a new one)
        // at every kind of place: first, between equals, beside a change, last. (Their IDs
        // repeat: only the tips matter here.)
        let tips = [0, 0, NO_TIPS, 1];
        for (entry, tips) in index.entries.iter_mut().zip(tips) {
            entry.tips = tips;
        }
        index.tip_sets = vec![(tangle, Vec::new()), (tangle, vec![tangle])];
        index.tip_changes = tip_changes(&index.entries);
        index.check_entries(&tangle);
        for (at, tips) in [(0, 1), (1, 0), (3, NO_TIPS), (4, 0), (7, 1), (2, 2), (5, 1)] {
            let mut entry = index.entries.get(at.min(3)).cloned().expect("an entry");
            entry.tips = tips;
            index.tip_sets.push((tangle, vec![tangle; 2]));
            index.insert_entry(at, entry);
            assert_eq!(
                index.tip_changes,
                tip_changes(&index.entries),
                "after an insert at {at}"
            );
        }
        let every = index.tips_used(0..index.entries.len());
        assert_eq!(
            every,
            vec![1, 0, 2],
            "each tip set once, in order of first use"
        );
        let later = index.tips_used(3..index.entries.len());
        let scanned: Vec<u32> = index.entries.get(3..).unwrap_or_default().iter().fold(
            Vec::new(),
            |mut used, entry| {
                if entry.tips != NO_TIPS && !used.contains(&entry.tips) {
                    used.push(entry.tips);
                }
                used
            },
        );
        assert_eq!(later, scanned, "a run starting mid-run of equal tips");
        let mut sabotaged = four_entries();
        sabotaged.check_entries(&tangle);
        sabotaged.tip_changes.push(2);
        let caught = std::panic::catch_unwind(|| sabotaged.check_entries(&tangle));
        assert!(caught.is_err(), "a tip change that is none is caught");
    }

    #[test]
    fn kept_sorted_items_are_checked_against_the_entries() {
        let tangle = MsgId::from_bytes(&[9; 32]);
        let mut index = four_entries();
        index.sorted_items();
        index.check_entries(&tangle);
        let mut entries = index.entries.iter().map(entry_item).collect::<Vec<Item>>();
        entries.pop();
        index.sorted = KeptItems(Some(Arc::new(SortedItems::new(entries))));
        let missing = std::panic::catch_unwind(|| index.check_entries(&tangle));
        assert!(
            missing.is_err(),
            "an item missing from the kept ones is caught"
        );
    }

    #[test]
    fn a_cloned_index_does_not_share_its_sorted_items() {
        let mut index = four_entries();
        let kept = Arc::clone(index.sorted_items());
        let cloned = index.clone();
        let Some(copy) = &cloned.sorted.0 else {
            panic!("the clone keeps the sorted items");
        };
        assert!(!Arc::ptr_eq(copy, &kept), "a copy, not a share");
        assert_eq!(**copy, *kept);
    }
}
