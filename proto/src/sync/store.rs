//! What a sync session reads from the local database: [`SyncStore`], and its implementation
//! for [`Db`].
//!
//! Each method is one of pzp-sync's `Algorithm` queries (protocol.md §7.4–§7.6), answered in
//! the reference's order so that blooms, missing-lists and payloads come out the same. The
//! session never writes: received msgs leave it as [`super::Output::Commit`].

use std::collections::BTreeSet;
use std::sync::Arc;

use indexmap::IndexMap;

use super::bloom::{ItemHashes, SEED_DEFAULT};
use crate::db::Db;
use crate::ids::{AccountId, MsgId, TangleId};
use crate::msg::{Account, Msg};
use crate::roots;
use crate::store::Store;
use crate::tangle::{DepthRange, SlicePart};

/// One ID a bloom or a missing-list covers, with its items' hashes: `hashes[round]` hashes
/// `"" + round + id` (default seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeItem {
    /// The msg ID.
    pub id: MsgId,
    /// Hashes for rounds 0, 1 and 2.
    pub hashes: [ItemHashes; 3],
}

/// The IDs a bloom or a missing-list covers, with their hashes, in the reference's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeItems {
    /// The items.
    pub items: Vec<RangeItem>,
}

impl RangeItems {
    /// Appends an ID with its hashes.
    pub fn push(&mut self, id: MsgId, hashes: [ItemHashes; 3]) {
        self.items.push(RangeItem { id, hashes });
    }

    /// Appends an ID, hashing it.
    pub fn push_hashing(&mut self, id: MsgId) {
        self.push(
            id,
            [0, 1, 2].map(|round| ItemHashes::of_sync_item(round, &id, SEED_DEFAULT)),
        );
    }

    /// Number of IDs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is no ID.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The reads a sync session needs.
pub trait SyncStore {
    /// Local failures (I/O for disk stores).
    type Error: std::error::Error + Send + Sync + 'static;

    /// A number that changes whenever the tangle changes; sessions key their caches on it.
    ///
    /// # Errors
    /// Store failures.
    fn tangle_version(&mut self, tangle: &TangleId) -> Result<u64, Self::Error>;

    /// `haveRange(T)`: empty if the root is unknown, else `[0, deepest msg with data]`
    /// (`[0, 0]` when no msg but the root is known, or none has data).
    ///
    /// # Errors
    /// Store failures.
    fn have_range(&mut self, tangle: &TangleId) -> Result<DepthRange, Self::Error>;

    /// A set's or dict's `minRequiredDepth` (`None` is `Infinity`).
    ///
    /// # Errors
    /// Store failures.
    fn min_required_depth(&mut self, tangle: &TangleId) -> Result<Option<u64>, Self::Error>;

    /// The IDs a bloom or a missing-list covers for `range`, with their hashes: the account
    /// msgs the range's msgs name as account tips, then the msgs in range
    /// (`getAccountMsgsFor` of `getMsgsInRange`, then `getMsgsInRange`). As in the
    /// reference, the root appears twice when the range starts at 0. Nothing for an empty
    /// range.
    ///
    /// # Errors
    /// Store failures.
    fn range_items(
        &mut self,
        tangle: &TangleId,
        range: DepthRange,
        out: &mut RangeItems,
    ) -> Result<(), Self::Error>;

    /// The tangle's ghosts.
    ///
    /// # Errors
    /// Store failures.
    fn ghost_ids(&mut self, tangle: &TangleId, out: &mut Vec<MsgId>) -> Result<(), Self::Error>;

    /// Phase 8/9 msgs for the IDs listed to the remote: the account msgs among `ids`, then
    /// `tangle.slice(ids, [])` (the trail to the root without data).
    ///
    /// # Errors
    /// Store failures.
    fn msgs_for_ids(
        &mut self,
        tangle: &TangleId,
        ids: &[MsgId],
        out: &mut Vec<(MsgId, Arc<Msg>)>,
    ) -> Result<(), Self::Error>;

    /// The account that owns `tangle`'s root (a feed's moot names it), if the root is known
    /// and belongs to an account.
    ///
    /// # Errors
    /// Store failures.
    fn root_account(&mut self, tangle: &TangleId) -> Result<Option<AccountId>, Self::Error>;

    /// Shortcut phase-9 msgs: `tangle.slice(msgs in range, [])` preceded by the account msgs
    /// those name as account tips.
    ///
    /// # Errors
    /// Store failures.
    fn msgs_in_range(
        &mut self,
        tangle: &TangleId,
        range: DepthRange,
        out: &mut Vec<(MsgId, Arc<Msg>)>,
    ) -> Result<(), Self::Error>;
}

impl<S: Store> SyncStore for Db<S> {
    type Error = S::Error;

    fn tangle_version(&mut self, tangle: &TangleId) -> Result<u64, S::Error> {
        Ok(self.tangle(tangle)?.version())
    }

    fn have_range(&mut self, tangle_id: &TangleId) -> Result<DepthRange, S::Error> {
        let tangle = self.tangle(tangle_id)?;
        if !tangle.has_root() {
            return Ok(DepthRange::EMPTY);
        }
        // The reference starts at depth 0 once the root is known, erased or not.
        let max = tangle
            .topo_order()
            .rev()
            .find(|id| *id != tangle_id && tangle.has_data(id) == Some(true))
            .and_then(|id| tangle.depth(id))
            .unwrap_or(0);
        Ok(DepthRange { min: 0, max })
    }

    fn min_required_depth(&mut self, tangle: &TangleId) -> Result<Option<u64>, S::Error> {
        roots::min_required_depth(self, tangle)
    }

    fn range_items(
        &mut self,
        tangle_id: &TangleId,
        range: DepthRange,
        out: &mut RangeItems,
    ) -> Result<(), S::Error> {
        let in_range = self.msg_ids_in_range(tangle_id, range)?;
        let mut accounts: IndexMap<AccountId, BTreeSet<MsgId>> = IndexMap::new();
        let mut previous: Option<Arc<Msg>> = None;
        for id in &in_range {
            if let Some(msg) = self.get(id)? {
                // Consecutive msgs of a feed mostly name the same account tips.
                let repeated = previous.as_ref().is_some_and(|last| {
                    last.metadata.account == msg.metadata.account
                        && last.metadata.account_tips == msg.metadata.account_tips
                });
                if !repeated {
                    note_account_tips(&msg, &mut accounts);
                    previous = Some(msg);
                }
            }
        }
        self.account_slices(&accounts, &mut |id, _| out.push_hashing(id))?;
        for id in in_range {
            out.push_hashing(id);
        }
        Ok(())
    }

    fn ghost_ids(&mut self, tangle: &TangleId, out: &mut Vec<MsgId>) -> Result<(), S::Error> {
        out.extend(self.ghosts(tangle)?.into_keys());
        Ok(())
    }

    fn msgs_for_ids(
        &mut self,
        tangle: &TangleId,
        ids: &[MsgId],
        out: &mut Vec<(MsgId, Arc<Msg>)>,
    ) -> Result<(), S::Error> {
        self.account_msgs_among(ids, |_| false, out)?;
        self.tangle_slice(tangle, ids, out)
    }

    fn root_account(&mut self, tangle: &TangleId) -> Result<Option<AccountId>, S::Error> {
        Ok(self
            .get(tangle)?
            .and_then(|root| root.metadata.account.id()))
    }

    fn msgs_in_range(
        &mut self,
        tangle: &TangleId,
        range: DepthRange,
        out: &mut Vec<(MsgId, Arc<Msg>)>,
    ) -> Result<(), S::Error> {
        let in_range = self.msg_ids_in_range(tangle, range)?;
        let mut slice = Vec::new();
        self.tangle_slice(tangle, &in_range, &mut slice)?;
        let mut accounts: IndexMap<AccountId, BTreeSet<MsgId>> = IndexMap::new();
        let mut previous: Option<&Arc<Msg>> = None;
        for (_, msg) in &slice {
            let repeated = previous.is_some_and(|last| {
                last.metadata.account == msg.metadata.account
                    && last.metadata.account_tips == msg.metadata.account_tips
            });
            if !repeated {
                note_account_tips(msg, &mut accounts);
                previous = Some(msg);
            }
        }
        let mut account_ids = Vec::new();
        self.account_slices(&accounts, &mut |id, _| account_ids.push(id))?;
        for id in account_ids {
            if let Some(msg) = self.get(&id)? {
                out.push((id, msg));
            }
        }
        out.extend(slice);
        Ok(())
    }
}

/// Records the account tips of a feed msg (`isFeedMsg`: tips listed, account not `self` or
/// `any`), per account in order of first appearance.
fn note_account_tips(msg: &Msg, accounts: &mut IndexMap<AccountId, BTreeSet<MsgId>>) {
    if let (Some(account), Some(tips)) = (msg.metadata.account.id(), &msg.metadata.account_tips) {
        accounts
            .entry(account)
            .or_default()
            .extend(tips.iter().copied());
    }
}

impl<S: Store> Db<S> {
    /// `getMsgsInRange(T, range)`: the root when the range starts at 0, then every msg of the
    /// tangle (root included) whose depth is in range; nothing if the root is unknown.
    fn msg_ids_in_range(
        &mut self,
        tangle_id: &TangleId,
        range: DepthRange,
    ) -> Result<Vec<MsgId>, S::Error> {
        let tangle = self.tangle(tangle_id)?;
        if !tangle.has_root() || range.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::new();
        if range.min == 0 {
            ids.push(*tangle_id);
        }
        ids.extend(tangle.in_depth_range(range).copied());
        Ok(ids)
    }

    /// For each account, `accountTangle.slice([], tips)`: its msgs not after any known tip.
    pub(super) fn account_slices(
        &mut self,
        accounts: &IndexMap<AccountId, BTreeSet<MsgId>>,
        visit: &mut dyn FnMut(MsgId, SlicePart),
    ) -> Result<(), S::Error> {
        for (account, tips) in accounts {
            let tangle = self.tangle(account)?;
            if !tangle.has_root() {
                continue;
            }
            let tips: Vec<MsgId> = tips.iter().copied().collect();
            for (id, part) in tangle.slice(&[], &tips) {
                visit(id, part);
            }
        }
        Ok(())
    }

    /// `getTangleMsgs(T, ids)`: `tangle.slice(ids, [])`, trail msgs without data.
    fn tangle_slice(
        &mut self,
        tangle_id: &TangleId,
        ids: &[MsgId],
        out: &mut Vec<(MsgId, Arc<Msg>)>,
    ) -> Result<(), S::Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let tangle = self.tangle(tangle_id)?;
        if !tangle.has_root() {
            return Ok(());
        }
        let slice = tangle.slice(ids, &[]);
        self.slice_msgs(slice, out)
    }

    /// The account msgs among `ids` (`account: "self"`), which phases 8 and 9 send before
    /// the tangle's slice; `surely_not` spares the store lookup of the IDs it knows are not
    /// account msgs.
    pub(super) fn account_msgs_among(
        &self,
        ids: &[MsgId],
        surely_not: impl Fn(&MsgId) -> bool,
        out: &mut Vec<(MsgId, Arc<Msg>)>,
    ) -> Result<(), S::Error> {
        for id in ids.iter().filter(|id| !surely_not(id)) {
            if let Some(msg) = self.get(id)?
                && msg.metadata.account == Account::OwnTangle
            {
                out.push((*id, msg));
            }
        }
        Ok(())
    }

    /// The msgs of a slice, trail members without their data.
    pub(super) fn slice_msgs(
        &self,
        slice: Vec<(MsgId, SlicePart)>,
        out: &mut Vec<(MsgId, Arc<Msg>)>,
    ) -> Result<(), S::Error> {
        for (id, part) in slice {
            let Some(msg) = self.get(&id)? else { continue };
            match part {
                SlicePart::Full => out.push((id, msg)),
                SlicePart::Trail => out.push((id, Arc::new(msg.erased()))),
            }
        }
        Ok(())
    }
}
