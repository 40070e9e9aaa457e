//! [`SharedStore`]: a peer's store that outlives its simulated process.
//!
//! The runner keeps one per peer and hands each incarnation of the node a clone
//! (`AnyStore::new(shared.clone())`). `MemStore` writes are synchronous, so whatever the node
//! acknowledged before a crash is still there when the host restarts — the model of a disk
//! that syncs every write. The "no acknowledged msg lost" checker relies on it, and
//! [`SharedStore::amnesiac`] breaks it on purpose (tests prove that the checker notices).
//!
//! Every msg a store keeps goes through the run's [`MsgInterner`], so the peers that hold
//! the same msg share one decoded copy instead of one each.

use std::convert::Infallible;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard};

use proto::ids::{MsgId, TangleId};
use proto::msg::Msg;
use proto::store::{Ghosts, MemStore, Record, Store, StoreStats, StoredMetadata};

use super::interner::MsgInterner;

/// A `MemStore` shared between the runner and every incarnation of one peer.
#[derive(Debug, Clone, Default)]
pub struct SharedStore {
    inner: Arc<Mutex<MemStore>>,
    msgs: MsgInterner,
}

impl SharedStore {
    /// An empty store that shares msgs with no other store.
    #[must_use]
    pub fn new() -> SharedStore {
        SharedStore::default()
    }

    /// An empty store that shares equal msgs with the other stores of `interner` (the run's).
    #[must_use]
    pub fn sharing(interner: &MsgInterner) -> SharedStore {
        SharedStore {
            inner: Arc::default(),
            msgs: interner.clone(),
        }
    }

    /// The interner this store shares msgs through.
    #[must_use]
    pub fn interner(&self) -> &MsgInterner {
        &self.msgs
    }

    /// Sabotage for checker tests: throws away everything stored so far (a disk that lost
    /// its contents in a crash). A correct run never calls it.
    pub fn amnesiac(&self) {
        *self.lock() = MemStore::new();
    }

    /// Locks the store. Simulated hosts run one at a time on one thread, so this never
    /// waits; a panic while it was held (a bug) poisons it, and the data is still whole,
    /// since every store operation completes before the lock is released.
    fn lock(&self) -> MutexGuard<'_, MemStore> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Store for SharedStore {
    type Error = Infallible;

    fn get(&self, id: &MsgId) -> Result<Option<Record>, Infallible> {
        self.lock().get(id)
    }
    fn get_metadata(&self, id: &MsgId) -> Result<Option<StoredMetadata>, Infallible> {
        self.lock().get_metadata(id)
    }
    fn tangle_members(&self, tangle: &TangleId) -> Result<Vec<MsgId>, Infallible> {
        self.lock().tangle_members(tangle)
    }
    fn append(&mut self, id: MsgId, msg: Arc<Msg>) -> Result<u64, Infallible> {
        let msg = self.msgs.share(id, msg);
        self.lock().append(id, msg)
    }
    fn replace(&mut self, id: MsgId, msg: Arc<Msg>) -> Result<u64, Infallible> {
        let msg = self.msgs.share(id, msg);
        self.lock().replace(id, msg)
    }
    fn erase(&mut self, id: &MsgId) -> Result<bool, Infallible> {
        self.lock().erase(id)
    }
    fn delete(&mut self, id: &MsgId) -> Result<bool, Infallible> {
        self.lock().delete(id)
    }
    fn ghosts(&self, tangle: &TangleId) -> Result<Ghosts, Infallible> {
        self.lock().ghosts(tangle)
    }
    fn set_ghosts(&mut self, tangle: &TangleId, ghosts: &Ghosts) -> Result<(), Infallible> {
        self.lock().set_ghosts(tangle, ghosts)
    }
    fn ghost_tangles(&self) -> Result<Vec<TangleId>, Infallible> {
        self.lock().ghost_tangles()
    }
    fn scan(&self, visit: &mut dyn FnMut(&Record) -> ControlFlow<()>) -> Result<(), Infallible> {
        self.lock().scan(visit)
    }
    fn len(&self) -> u64 {
        self.lock().len()
    }
    fn stats(&self) -> StoreStats {
        self.lock().stats()
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        self.lock().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::keys::Keypair;

    #[test]
    fn clones_share_writes_and_amnesia_forgets() {
        let keypair = Keypair::from_seed(&[3; 32]);
        let root =
            Msg::create_account_root(&keypair, "account", "nonce").expect("account root is valid");
        let id = root.id();
        let mut writer = SharedStore::new();
        let reader = writer.clone();
        writer.append(id, Arc::new(root)).expect("infallible");
        assert_eq!(reader.len(), 1);
        assert!(reader.get(&id).expect("infallible").is_some());
        reader.amnesiac();
        assert_eq!(writer.len(), 0);
    }

    fn stored(store: &SharedStore, id: &MsgId) -> Arc<Msg> {
        store.get(id).expect("infallible").expect("stored").msg
    }

    #[test]
    fn stores_of_one_interner_share_equal_msgs_and_free_them_with_the_last() {
        let keypair = Keypair::from_seed(&[3; 32]);
        let root =
            Msg::create_account_root(&keypair, "account", "nonce").expect("account root is valid");
        let id = root.id();
        let interner = MsgInterner::new();
        let mut first = SharedStore::sharing(&interner);
        let mut second = SharedStore::sharing(&interner);
        // Each peer decodes its own copy.
        first
            .append(id, Arc::new(root.clone()))
            .expect("infallible");
        second
            .append(id, Arc::new(root.clone()))
            .expect("infallible");
        assert!(Arc::ptr_eq(&stored(&first, &id), &stored(&second, &id)));
        assert_eq!(
            *stored(&second, &id),
            root,
            "the store reads back the msg it was given"
        );
        let mut apart = SharedStore::new();
        apart.append(id, Arc::new(root)).expect("infallible");
        assert!(!Arc::ptr_eq(&stored(&first, &id), &stored(&apart, &id)));
        assert!(!apart.interner().is_same(&interner));
        drop(first);
        assert_eq!(interner.alive(), 1);
        drop(second);
        assert_eq!(interner.alive(), 0, "freed with the last store");
    }
}
