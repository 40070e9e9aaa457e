//! [`DecodedCache`]: msgs already decoded from the log, so that reading a tangle again does
//! not parse its JSON again.
//!
//! Sync reads a whole tangle twice when a restarted node first syncs it (once to build the
//! tangle, once for the sync index's account tips), and every `get` of [`super::DiskStore`]
//! would otherwise read and decode the record anew. Entries are keyed by the record's
//! offset in the log: a record in the written part of the log never changes, and a changed
//! msg (replaced, erased, deleted and re-added) gets a new record at a new offset, so an
//! entry can never be stale while the log stays the same file. Compaction rewrites the log
//! and clears the cache; records of the open batch are not cached (a failed write may
//! reuse their offsets).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use proto::msg::Msg;

/// Most record bytes (JSON and framing, as stored) whose decoded msgs are kept; the oldest
/// entries are dropped beyond. 32 MiB holds about 50,000 typical posts.
pub const DECODED_CACHE_BYTES_MAX: usize = 32 << 20;

/// Decoded msgs by log offset, oldest dropped first beyond [`DECODED_CACHE_BYTES_MAX`].
#[derive(Debug, Default)]
pub(super) struct DecodedCache {
    inner: RefCell<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_offset: BTreeMap<u64, (Arc<Msg>, usize)>,
    /// Offsets in insertion order (every entry of `by_offset` exactly once).
    order: VecDeque<u64>,
    bytes: usize,
}

impl DecodedCache {
    /// The msg of the record at `offset`, if decoded before.
    pub(super) fn get(&self, offset: u64) -> Option<Arc<Msg>> {
        self.inner
            .borrow()
            .by_offset
            .get(&offset)
            .map(|(msg, _)| Arc::clone(msg))
    }

    /// Keeps `msg`, decoded from the `record_bytes`-long record at `offset`.
    pub(super) fn insert(&self, offset: u64, record_bytes: usize, msg: &Arc<Msg>) {
        if record_bytes > DECODED_CACHE_BYTES_MAX {
            return;
        }
        let mut entries = self.inner.borrow_mut();
        if entries.by_offset.contains_key(&offset) {
            return;
        }
        while entries.bytes + record_bytes > DECODED_CACHE_BYTES_MAX {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            if let Some((_, bytes)) = entries.by_offset.remove(&oldest) {
                entries.bytes -= bytes;
            }
        }
        entries
            .by_offset
            .insert(offset, (Arc::clone(msg), record_bytes));
        entries.order.push_back(offset);
        entries.bytes += record_bytes;
    }

    /// Forgets everything (the log was rewritten).
    pub(super) fn clear(&self) {
        *self.inner.borrow_mut() = Entries::default();
    }

    /// Record bytes kept, and entries.
    #[cfg(test)]
    fn usage(&self) -> (usize, usize) {
        let entries = self.inner.borrow();
        (entries.bytes, entries.by_offset.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Arc<Msg> {
        let keys = proto::keys::Keypair::from_seed(&[7; 32]);
        let account = proto::ids::AccountId::from_bytes(&[9; 32]);
        Arc::new(Msg::create_moot(account, "post", &keys).expect("a valid domain"))
    }

    #[test]
    fn the_oldest_entries_go_first_once_the_bytes_are_spent() {
        let cache = DecodedCache::default();
        let msg = msg();
        let third = DECODED_CACHE_BYTES_MAX / 3;
        for offset in 0..3 {
            cache.insert(offset, third, &msg);
        }
        assert_eq!(cache.usage(), (3 * third, 3));
        cache.insert(3, third, &msg);
        assert!(cache.get(0).is_none(), "the oldest went first");
        assert!((1..=3).all(|offset| cache.get(offset).is_some()));
        assert_eq!(cache.usage(), (3 * third, 3));
        cache.insert(4, DECODED_CACHE_BYTES_MAX + 1, &msg);
        assert!(
            cache.get(4).is_none(),
            "a record larger than the bound is not kept"
        );
        cache.clear();
        assert_eq!(cache.usage(), (0, 0));
    }
}
