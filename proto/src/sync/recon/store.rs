//! What `sync.reconcile` reads beyond pzp-sync's queries: the reconciled set of a tangle and
//! a depth range as keyed [`Item`]s ([`ReconStore`]).

use super::super::index::IndexedDb;
use super::super::store::{RangeItems, SyncStore};
use super::item::Item;
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
