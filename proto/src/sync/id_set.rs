//! [`IdSet`]: a set of msg IDs in insertion order that costs one pointer while empty.
//!
//! A session keeps two of them per tracked tangle, and a busy simulated peer tracks hundreds
//! of tangles on each of a hundred sessions; most sets are empty most of the time (between
//! exchanges, or for tangles the remote holds nothing of). An inline `IndexSet` costs 72
//! bytes each even then, and keeps its capacity after a clear; this one is a null pointer
//! until the first insert and frees its memory when cleared.

use indexmap::IndexSet;

use crate::ids::MsgId;

/// Msg IDs in insertion order, allocated only while non-empty.
#[derive(Debug, Clone, Default)]
pub(super) struct IdSet(Option<Box<IndexSet<MsgId>>>);

impl IdSet {
    /// How many IDs it holds.
    pub(super) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |set| set.len())
    }

    /// Whether it holds none.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it holds `id`.
    pub(super) fn contains(&self, id: &MsgId) -> bool {
        self.0.as_ref().is_some_and(|set| set.contains(id))
    }

    /// The IDs, first inserted first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &MsgId> {
        self.0.iter().flat_map(|set| set.iter())
    }

    /// Adds `ids` (those already held keep their place).
    pub(super) fn extend(&mut self, ids: impl IntoIterator<Item = MsgId>) {
        let mut ids = ids.into_iter().peekable();
        if ids.peek().is_none() {
            return;
        }
        self.0.get_or_insert_with(Box::default).extend(ids);
    }

    /// Forgets every ID and frees the memory.
    pub(super) fn clear(&mut self) {
        self.0 = None;
    }
}

#[cfg(test)]
mod tests {
    use super::IdSet;
    use crate::ids::MsgId;

    fn id(byte: u8) -> MsgId {
        MsgId::from_bytes(&[byte; 32])
    }

    #[test]
    fn it_keeps_insertion_order_and_no_duplicates() {
        let mut set = IdSet::default();
        set.extend([id(3), id(1)]);
        set.extend([id(2), id(3)]);
        let order: Vec<MsgId> = set.iter().copied().collect();
        assert_eq!(order, vec![id(3), id(1), id(2)]);
        assert_eq!(set.len(), 3);
        assert!(set.contains(&id(2)));
        assert!(!set.contains(&id(4)));
    }

    #[test]
    fn it_allocates_only_while_it_holds_ids() {
        let mut set = IdSet::default();
        set.extend([]);
        assert!(set.0.is_none(), "an empty extend allocates nothing");
        set.extend([id(1)]);
        assert!(set.0.is_some());
        set.clear();
        assert!(set.0.is_none(), "a clear frees the set");
        assert!(set.is_empty());
        assert_eq!(set.iter().count(), 0);
        assert_eq!(size_of::<IdSet>(), size_of::<usize>());
    }
}
