//! A store of any kind behind one type, so actors need no generic parameter.

use std::ops::ControlFlow;
use std::sync::Arc;

use proto::ids::{MsgId, TangleId};
use proto::msg::Msg;
use proto::store::{Ghosts, MemberLink, Record, Store, StoreStats, StoredMetadata};

/// A store failure, whatever the store.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StoreFailure(Box<dyn std::error::Error + Send + Sync>);

impl StoreFailure {
    /// Wraps a store's own error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }
}

/// Maps a store's errors to [`StoreFailure`].
struct Erased<S>(S);

impl<S> Store for Erased<S>
where
    S: Store,
    S::Error: Send + Sync,
{
    type Error = StoreFailure;

    fn get(&self, id: &MsgId) -> Result<Option<Record>, StoreFailure> {
        self.0.get(id).map_err(StoreFailure::new)
    }
    fn get_metadata(&self, id: &MsgId) -> Result<Option<StoredMetadata>, StoreFailure> {
        self.0.get_metadata(id).map_err(StoreFailure::new)
    }
    fn tangle_members(&self, tangle: &TangleId) -> Result<Vec<MsgId>, StoreFailure> {
        self.0.tangle_members(tangle).map_err(StoreFailure::new)
    }
    fn tangle_links(&self, tangle: &TangleId) -> Result<Vec<MemberLink>, StoreFailure> {
        self.0.tangle_links(tangle).map_err(StoreFailure::new)
    }
    fn append(&mut self, id: MsgId, msg: Arc<Msg>) -> Result<u64, StoreFailure> {
        self.0.append(id, msg).map_err(StoreFailure::new)
    }
    fn replace(&mut self, id: MsgId, msg: Arc<Msg>) -> Result<u64, StoreFailure> {
        self.0.replace(id, msg).map_err(StoreFailure::new)
    }
    fn erase(&mut self, id: &MsgId) -> Result<bool, StoreFailure> {
        self.0.erase(id).map_err(StoreFailure::new)
    }
    fn delete(&mut self, id: &MsgId) -> Result<bool, StoreFailure> {
        self.0.delete(id).map_err(StoreFailure::new)
    }
    fn ghosts(&self, tangle: &TangleId) -> Result<Ghosts, StoreFailure> {
        self.0.ghosts(tangle).map_err(StoreFailure::new)
    }
    fn set_ghosts(&mut self, tangle: &TangleId, ghosts: &Ghosts) -> Result<(), StoreFailure> {
        self.0.set_ghosts(tangle, ghosts).map_err(StoreFailure::new)
    }
    fn ghost_tangles(&self) -> Result<Vec<TangleId>, StoreFailure> {
        self.0.ghost_tangles().map_err(StoreFailure::new)
    }
    fn scan(&self, visit: &mut dyn FnMut(&Record) -> ControlFlow<()>) -> Result<(), StoreFailure> {
        self.0.scan(visit).map_err(StoreFailure::new)
    }
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn stats(&self) -> StoreStats {
        self.0.stats()
    }
    fn flush(&mut self) -> Result<(), StoreFailure> {
        self.0.flush().map_err(StoreFailure::new)
    }
}

/// Any store, its errors as [`StoreFailure`].
pub struct AnyStore(Box<dyn Store<Error = StoreFailure> + Send>);

impl std::fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnyStore({} msgs)", self.0.len())
    }
}

impl AnyStore {
    /// Wraps `store`.
    pub fn new<S>(store: S) -> Self
    where
        S: Store + Send + 'static,
        S::Error: Send + Sync,
    {
        Self(Box::new(Erased(store)))
    }
}

impl Store for AnyStore {
    type Error = StoreFailure;

    fn get(&self, id: &MsgId) -> Result<Option<Record>, StoreFailure> {
        self.0.get(id)
    }
    fn get_metadata(&self, id: &MsgId) -> Result<Option<StoredMetadata>, StoreFailure> {
        self.0.get_metadata(id)
    }
    fn tangle_members(&self, tangle: &TangleId) -> Result<Vec<MsgId>, StoreFailure> {
        self.0.tangle_members(tangle)
    }
    fn tangle_links(&self, tangle: &TangleId) -> Result<Vec<MemberLink>, StoreFailure> {
        self.0.tangle_links(tangle)
    }
    fn append(&mut self, id: MsgId, msg: Arc<Msg>) -> Result<u64, StoreFailure> {
        self.0.append(id, msg)
    }
    fn replace(&mut self, id: MsgId, msg: Arc<Msg>) -> Result<u64, StoreFailure> {
        self.0.replace(id, msg)
    }
    fn erase(&mut self, id: &MsgId) -> Result<bool, StoreFailure> {
        self.0.erase(id)
    }
    fn delete(&mut self, id: &MsgId) -> Result<bool, StoreFailure> {
        self.0.delete(id)
    }
    fn ghosts(&self, tangle: &TangleId) -> Result<Ghosts, StoreFailure> {
        self.0.ghosts(tangle)
    }
    fn set_ghosts(&mut self, tangle: &TangleId, ghosts: &Ghosts) -> Result<(), StoreFailure> {
        self.0.set_ghosts(tangle, ghosts)
    }
    fn ghost_tangles(&self) -> Result<Vec<TangleId>, StoreFailure> {
        self.0.ghost_tangles()
    }
    fn scan(&self, visit: &mut dyn FnMut(&Record) -> ControlFlow<()>) -> Result<(), StoreFailure> {
        self.0.scan(visit)
    }
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn stats(&self) -> StoreStats {
        self.0.stats()
    }
    fn flush(&mut self) -> Result<(), StoreFailure> {
        self.0.flush()
    }
}
