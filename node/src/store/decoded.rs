//! [`DecodedCache`]: msgs (or their metadata) already decoded from the log, so that reading a
//! tangle again does not parse its JSON again.
//!
//! A restarted node reads a whole tangle more than once when it first syncs it (to build the
//! tangle, for the sync index's account tips, for a client counting it), and every read of
//! [`super::DiskStore`] would otherwise decode the record anew. Those reads need only the
//! metadata, which is cached alone; a `get` of the whole msg decodes it and takes the entry
//! over. Entries are keyed by the record's offset in the log: a record in the written part
//! of the log never changes, and a changed msg (replaced, erased, deleted and re-added) gets
//! a new record at a new offset, so an entry can never be stale while the log stays the
//! same file. Compaction rewrites the log and clears the cache; records of the open batch
//! are not cached (a failed write may reuse their offsets).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use proto::msg::{Metadata, Msg};

/// Most record bytes (JSON and framing, as stored) whose decoded msgs are kept; the oldest
/// entries are dropped beyond. 32 MiB holds about 50,000 typical posts. An entry holding
/// only the metadata is counted at its record's size too, which overstates it: the bound
/// stays a bound.
pub const DECODED_CACHE_BYTES_MAX: usize = 32 << 20;

/// What a cache entry holds of a record.
#[derive(Debug, Clone)]
pub(super) enum Decoded {
    /// The whole msg.
    Msg(Arc<Msg>),
    /// Its metadata alone (its data was not decoded).
    Metadata(Arc<Metadata>),
}

/// Decoded records by log offset, oldest dropped first beyond [`DECODED_CACHE_BYTES_MAX`].
#[derive(Debug, Default)]
pub(super) struct DecodedCache {
    inner: RefCell<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_offset: BTreeMap<u64, (Decoded, usize)>,
    order: VecDeque<u64>,
    bytes: usize,
}

impl DecodedCache {
    /// The whole msg of the record at `offset`, if it was decoded whole.
    pub(super) fn get_msg(&self, offset: u64) -> Option<Arc<Msg>> {
        match self.inner.borrow().by_offset.get(&offset) {
            Some((Decoded::Msg(msg), _)) => Some(Arc::clone(msg)),
            _ => None,
        }
    }

    /// Whatever was decoded of the record at `offset`.
    pub(super) fn get(&self, offset: u64) -> Option<Decoded> {
        self.inner
            .borrow()
            .by_offset
            .get(&offset)
            .map(|(decoded, _)| decoded.clone())
    }

    /// Keeps `decoded` for the record at `offset` (`record_bytes` long), dropping the oldest
    /// entries to stay within the bound. A whole msg takes over an entry holding only its
    /// metadata; nothing else replaces an entry.
    pub(super) fn insert(&self, offset: u64, record_bytes: usize, decoded: Decoded) {
        if record_bytes > DECODED_CACHE_BYTES_MAX {
            return;
        }
        let mut entries = self.inner.borrow_mut();
        if let Some((held, _)) = entries.by_offset.get_mut(&offset) {
            if matches!((&held, &decoded), (Decoded::Metadata(_), Decoded::Msg(_))) {
                *held = decoded;
            }
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
        entries.by_offset.insert(offset, (decoded, record_bytes));
        entries.order.push_back(offset);
        entries.bytes += record_bytes;
    }

    /// Forgets everything (the log was rewritten).
    pub(super) fn clear(&self) {
        *self.inner.borrow_mut() = Entries::default();
    }

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
            cache.insert(offset, third, Decoded::Msg(Arc::clone(&msg)));
        }
        assert_eq!(cache.usage(), (3 * third, 3));
        cache.insert(3, third, Decoded::Msg(Arc::clone(&msg)));
        assert!(cache.get(0).is_none(), "the oldest went first");
        assert!((1..=3).all(|offset| cache.get(offset).is_some()));
        assert_eq!(cache.usage(), (3 * third, 3));
        cache.insert(
            4,
            DECODED_CACHE_BYTES_MAX + 1,
            Decoded::Msg(Arc::clone(&msg)),
        );
        assert!(
            cache.get(4).is_none(),
            "a record larger than the bound is not kept"
        );
        cache.clear();
        assert_eq!(cache.usage(), (0, 0));
    }

    #[test]
    fn a_whole_msg_takes_over_its_metadata_and_nothing_else_replaces_an_entry() {
        let cache = DecodedCache::default();
        let msg = msg();
        let metadata = Arc::new(msg.metadata.clone());
        cache.insert(0, 100, Decoded::Metadata(Arc::clone(&metadata)));
        assert!(cache.get_msg(0).is_none(), "only the metadata was decoded");
        assert!(
            matches!(cache.get(0), Some(Decoded::Metadata(held)) if *held == msg.metadata),
            "the metadata is held"
        );
        cache.insert(0, 100, Decoded::Msg(Arc::clone(&msg)));
        assert_eq!(cache.get_msg(0), Some(Arc::clone(&msg)));
        assert_eq!(cache.usage(), (100, 1), "taken over, not counted twice");
        cache.insert(0, 100, Decoded::Metadata(metadata));
        assert_eq!(
            cache.get_msg(0),
            Some(msg),
            "the metadata does not push the whole msg out"
        );
    }
}
