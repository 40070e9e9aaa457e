//! What `sync.reconcile` reads beyond pzp-sync's queries: the reconciled set of a tangle and
//! a depth range as keyed [`Item`]s ([`ReconStore`]).

use super::super::index::IndexedDb;
use super::super::store::{RangeItems, SyncStore};
use super::item::{Item, KEY_MAX};
use super::item_set::ItemSet;
use crate::db::Db;
use crate::ids::{MsgId, TangleId};
use crate::store::Store;
use crate::tangle::DepthRange;

/// A [`SyncStore`] that can also list the reconciled set.
pub trait ReconStore: SyncStore {
    /// The items of `tangle` over `range`, exactly what pzp-sync's blooms hold
    /// (docs/sync-extension.md, "The set being reconciled"): the msgs of the range (dataless
    /// ones included) keyed by their depth, the account msgs they name and every ghost keyed
    /// 0. Unsorted; the root may appear twice.
    ///
    /// # Errors
    /// Store failures.
    fn recon_items(
        &mut self,
        tangle: &TangleId,
        range: DepthRange,
        out: &mut Vec<Item>,
    ) -> Result<(), Self::Error>;

    /// The same items, at most [`KEY_MAX`] (deeper than any tangle), sorted and summed for a
    /// [`super::Reconciler`]: by default from [`ReconStore::recon_items`], sorted now.
    ///
    /// # Errors
    /// Store failures.
    fn recon_set(&mut self, tangle: &TangleId, range: DepthRange) -> Result<ItemSet, Self::Error> {
        let mut items = Vec::new();
        self.recon_items(tangle, range, &mut items)?;
        items.retain(|item| item.key <= KEY_MAX);
        Ok(ItemSet::new(items))
    }
}

impl<S: Store> ReconStore for Db<S> {
    fn recon_items(
        &mut self,
        tangle: &TangleId,
        range: DepthRange,
        out: &mut Vec<Item>,
    ) -> Result<(), S::Error> {
        let mut listed = RangeItems::default();
        self.range_items(tangle, range, &mut listed)?;
        let mut ghosts = Vec::new();
        self.ghost_ids(tangle, &mut ghosts)?;
        keyed(self, tangle, &listed, &ghosts, out)
    }
}

/// Keyed by the index, whose entries carry the depths and (decoded once) the IDs' bytes.
impl<S: Store> ReconStore for IndexedDb<'_, S> {
    fn recon_items(
        &mut self,
        tangle: &TangleId,
        range: DepthRange,
        out: &mut Vec<Item>,
    ) -> Result<(), S::Error> {
        self.recon_items_indexed(tangle, range, out)?;
        let mut ghosts = Vec::new();
        self.ghost_ids(tangle, &mut ghosts)?;
        out.extend(ghosts.iter().map(|id| Item {
            key: 0,
            id: id.to_bytes(),
        }));
        Ok(())
    }

    /// The tangle's members from the index's sorted items (sorted and summed once, then kept
    /// fresh), beside the few keyed 0: no item is listed, sorted or summed per exchange.
    fn recon_set(&mut self, tangle: &TangleId, range: DepthRange) -> Result<ItemSet, S::Error> {
        let mut head = Vec::new();
        let run = self.recon_set_indexed(tangle, range, &mut head)?;
        let mut ghosts = Vec::new();
        self.ghost_ids(tangle, &mut ghosts)?;
        head.extend(ghosts.iter().map(|id| Item {
            key: 0,
            id: id.to_bytes(),
        }));
        let members = range.min.max(1)..=range.max.min(KEY_MAX);
        Ok(match run {
            Some(run) => ItemSet::with_run(head, run, &members),
            None => ItemSet::new(head),
        })
    }
}

/// Keys `listed` by depth in `tangle` (0 for what is not a member: account msgs), and the
/// ghosts by 0.
fn keyed<S: Store>(
    db: &mut Db<S>,
    tangle: &TangleId,
    listed: &RangeItems,
    ghosts: &[MsgId],
    out: &mut Vec<Item>,
) -> Result<(), S::Error> {
    let tangle = db.tangle(tangle)?;
    out.reserve(listed.len() + ghosts.len());
    for listed in &listed.items {
        out.push(Item {
            key: tangle.depth(&listed.id).unwrap_or(0),
            id: listed.id.to_bytes(),
        });
    }
    out.extend(ghosts.iter().map(|id| Item {
        key: 0,
        id: id.to_bytes(),
    }));
    Ok(())
}
