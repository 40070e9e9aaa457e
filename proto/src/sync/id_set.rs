//! [`IdSet`]: a set of msg IDs in insertion order that costs one pointer while empty and
//! little more while small.
//!
//! A session keeps two of them per tracked tangle, and a busy simulated peer tracks hundreds
//! of tangles on each of a hundred sessions; most sets are empty most of the time (between
//! exchanges, or for tangles the remote holds nothing of), and most of the others hold the
//! few msgs of one exchange. An inline `IndexSet` costs 72 bytes each even when empty, and
//! one holding a single ID allocates a hash table and an entry vector sized for several
//! (about 340 bytes in all); this one is a null pointer until the first insert, a plain list
//! up to [`LISTED_IDS_MAX`] IDs (about 110 bytes for one), and frees its memory when cleared.

use indexmap::IndexSet;

use crate::ids::MsgId;

/// Most IDs a set keeps as a plain list, searched linearly; past it the set is indexed.
pub(super) const LISTED_IDS_MAX: usize = 32;

/// Msg IDs in insertion order, allocated only while non-empty.
#[derive(Debug, Clone, Default)]
pub(super) struct IdSet(Option<Box<Ids>>);

/// The IDs of a non-empty set.
#[derive(Debug, Clone)]
enum Ids {
    /// At most [`LISTED_IDS_MAX`] IDs, without duplicates, first inserted first.
    Listed(Vec<MsgId>),
    /// More.
    Indexed(Box<IndexSet<MsgId>>),
}

impl IdSet {
    /// How many IDs it holds.
    pub(super) fn len(&self) -> usize {
        match self.0.as_deref() {
            None => 0,
            Some(Ids::Listed(list)) => list.len(),
            Some(Ids::Indexed(set)) => set.len(),
        }
    }

    /// Whether it holds none.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it holds `id`.
    pub(super) fn contains(&self, id: &MsgId) -> bool {
        match self.0.as_deref() {
            None => false,
            Some(Ids::Listed(list)) => list.contains(id),
            Some(Ids::Indexed(set)) => set.contains(id),
        }
    }

    /// The IDs, first inserted first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &MsgId> {
        let (listed, indexed) = match self.0.as_deref() {
            None => (None, None),
            Some(Ids::Listed(list)) => (Some(list.iter()), None),
            Some(Ids::Indexed(set)) => (None, Some(set.iter())),
        };
        listed
            .into_iter()
            .flatten()
            .chain(indexed.into_iter().flatten())
    }

    /// Adds `ids` (those already held keep their place).
    pub(super) fn extend(&mut self, ids: impl IntoIterator<Item = MsgId>) {
        let ids = ids.into_iter();
        let hint = ids.size_hint().0;
        for id in ids {
            self.insert(id, hint);
        }
    }

    /// Adds `id` unless held; `hint` is how many IDs the caller is adding in all, so that a
    /// list grows once per batch, to the size it needs.
    fn insert(&mut self, id: MsgId, hint: usize) {
        let ids = self
            .0
            .get_or_insert_with(|| Box::new(Ids::Listed(Vec::new())));
        match &mut **ids {
            Ids::Listed(list) if list.contains(&id) => {}
            Ids::Listed(list) if list.len() < LISTED_IDS_MAX => {
                if list.len() == list.capacity() {
                    list.reserve_exact(hint.clamp(1, LISTED_IDS_MAX - list.len()));
                }
                list.push(id);
            }
            Ids::Listed(list) => {
                let mut set = IndexSet::with_capacity(list.len() + hint.max(1));
                set.extend(list.drain(..));
                set.insert(id);
                **ids = Ids::Indexed(Box::new(set));
            }
            Ids::Indexed(set) => {
                set.insert(id);
            }
        }
    }

    /// Forgets every ID and frees the memory.
    pub(super) fn clear(&mut self) {
        self.0 = None;
    }
}

#[cfg(test)]
mod tests {
    use super::{IdSet, Ids, LISTED_IDS_MAX};
    use crate::ids::MsgId;

    fn id(n: usize) -> MsgId {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&u64::try_from(n).expect("small").to_be_bytes());
        MsgId::from_bytes(&bytes)
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

    #[test]
    fn a_small_set_is_a_list_sized_to_its_ids() {
        let mut set = IdSet::default();
        set.extend((0..3).map(id));
        set.extend([id(1), id(3)]);
        match set.0.as_deref() {
            Some(Ids::Listed(list)) => {
                assert_eq!(list, &[id(0), id(1), id(2), id(3)]);
                assert!(list.capacity() <= 5, "capacity {}", list.capacity());
            }
            other => panic!("expected a list, got {other:?}"),
        }
    }

    #[test]
    fn past_the_list_bound_it_is_indexed_in_the_same_order() {
        let mut set = IdSet::default();
        set.extend((0..LISTED_IDS_MAX).map(id));
        assert!(matches!(set.0.as_deref(), Some(Ids::Listed(_))));
        set.extend([id(5), id(LISTED_IDS_MAX), id(0), id(LISTED_IDS_MAX + 1)]);
        assert!(matches!(set.0.as_deref(), Some(Ids::Indexed(_))));
        let expected: Vec<MsgId> = (0..LISTED_IDS_MAX + 2).map(id).collect();
        let order: Vec<MsgId> = set.iter().copied().collect();
        assert_eq!(order, expected);
        assert_eq!(set.len(), LISTED_IDS_MAX + 2);
        assert!(set.contains(&id(LISTED_IDS_MAX + 1)));
        assert!(set.contains(&id(7)));
        assert!(!set.contains(&id(LISTED_IDS_MAX + 2)));
    }
}
