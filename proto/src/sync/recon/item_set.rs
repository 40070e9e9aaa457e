//! The set a [`super::Reconciler`] reads: sorted items with their prefix sums.
//!
//! [`SortedItems`] is what the sync index keeps per reconciled tangle (every member keyed by
//! its depth, sorted, with prefix sums), kept fresh as msgs arrive, so an exchange neither
//! sorts nor sums its ten thousand items. [`ItemSet`] is one exchange's view: a few items of
//! its own at key 0 (account msgs, the root, ghosts) before a run of a shared
//! [`SortedItems`], held by `Arc` so that the reconciliation reads the set as it was when it
//! started even if msgs arrive meanwhile (the index copies the items on write then).

use std::ops::{Range, RangeInclusive};
use std::sync::Arc;

use super::fingerprint::{Fingerprint, PrefixSums};
use super::item::{Bound, Item, first_at_or_above};

/// Items sorted by key then ID, without duplicates, and their prefix sums. A clone keeps the
/// spare capacity of both, as the sync index's do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SortedItems {
    items: Vec<Item>,
    sums: PrefixSums,
}

impl Clone for SortedItems {
    fn clone(&self) -> Self {
        Self {
            items: super::item::clone_keeping_capacity(&self.items),
            sums: self.sums.clone(),
        }
    }
}

impl SortedItems {
    /// `items` (any order; duplicates count once), sorted and summed.
    #[must_use]
    pub fn new(mut items: Vec<Item>) -> Self {
        // Stores list items almost sorted (by depth, a few account msgs first at key 0): the
        // stable sort merges the sorted runs it finds in about linear time, where the
        // unstable one does a full quicksort. Equal items are identical, so the order is the same.
        items.sort();
        items.dedup();
        let sums = PrefixSums::new(&items);
        Self { items, sums }
    }

    /// The items, sorted.
    #[must_use]
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Adds `item` at its place (nothing if it is there already); the sums after it are
    /// updated, so adding at the end (a new msg at the top of a tangle) costs one addition.
    pub fn insert(&mut self, item: Item) {
        let at = match self.items.last() {
            Some(last) if *last < item => self.items.len(),
            _ => self.items.partition_point(|held| *held < item),
        };
        if self.items.get(at) == Some(&item) {
            return;
        }
        self.items.insert(at, item);
        self.sums.insert(at, &item.id);
    }

    /// The indexes of the items whose key is in `keys`.
    fn key_run(&self, keys: &RangeInclusive<u64>) -> Range<usize> {
        let start = self.items.partition_point(|item| item.key < *keys.start());
        let end = self.items.partition_point(|item| item.key <= *keys.end());
        start..end.max(start)
    }
}

/// A sorted set of items without duplicates: `head`, then a run of a shared
/// [`SortedItems`] whose items all sort after the head's. See the module docs.
#[derive(Debug, Clone)]
pub struct ItemSet {
    head: SortedItems,
    run: Arc<SortedItems>,
    run_range: Range<usize>,
}

impl Default for ItemSet {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl ItemSet {
    /// A set of `items` (any order; duplicates count once).
    #[must_use]
    pub fn new(items: Vec<Item>) -> Self {
        Self {
            head: SortedItems::new(items),
            run: Arc::default(),
            run_range: 0..0,
        }
    }

    /// `head` (any order; duplicates count once), all at key 0, then the items of `run`
    /// whose key is in `keys`, which start at 1 or above: so the run sorts after the head.
    pub(crate) fn with_run(
        head: Vec<Item>,
        run: Arc<SortedItems>,
        keys: &RangeInclusive<u64>,
    ) -> Self {
        debug_assert!(head.iter().all(|item| item.key == 0), "the head is keyed 0");
        debug_assert!(*keys.start() >= 1, "the run is keyed above the head");
        let run_range = run.key_run(keys);
        Self {
            head: SortedItems::new(head),
            run,
            run_range,
        }
    }

    /// How many items.
    #[must_use]
    pub fn len(&self) -> usize {
        self.head.items.len() + self.run_range.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item at `index`, in order.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<&Item> {
        let head = self.head.items.len();
        match index.checked_sub(head) {
            None => self.head.items.get(index),
            Some(offset) if offset < self.run_range.len() => {
                self.run.items.get(self.run_range.start + offset)
            }
            Some(_) => None,
        }
    }

    /// The items `start..end`, in order (clamped to the set).
    pub fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &Item> + '_ {
        let (head, run) = self.split(start, end);
        let head = self.head.items.get(head).unwrap_or_default();
        let run = self.run.items.get(run).unwrap_or_default();
        head.iter().chain(run)
    }

    /// Every item, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Item> + '_ {
        self.range(0, self.len())
    }

    /// The index of the first item at or above `bound`.
    #[must_use]
    pub fn first_at_or_above(&self, bound: &Bound) -> usize {
        let head = first_at_or_above(&self.head.items, bound);
        if head < self.head.items.len() {
            return head;
        }
        let run = self
            .run
            .items
            .get(self.run_range.clone())
            .unwrap_or_default();
        head + first_at_or_above(run, bound)
    }

    /// The fingerprint of the items `start..end` (`start <= end`, clamped to the set).
    #[must_use]
    pub fn fingerprint(&self, start: usize, end: usize) -> Fingerprint {
        let (head, run) = self.split(start, end);
        let count = head.len() + run.len();
        let sum = self.head.sums.sum(head.start, head.end);
        sum.plus_sum(self.run.sums.sum(run.start, run.end))
            .fingerprint(count)
    }

    /// The indexes of `start..end` (clamped) in the head and in the shared run.
    fn split(&self, start: usize, end: usize) -> (Range<usize>, Range<usize>) {
        let (start, end) = (start.min(self.len()), end.min(self.len()));
        let end = end.max(start);
        let head = self.head.items.len();
        let offset = self.run_range.start;
        let run_start = start.max(head) - head + offset;
        let run_end = end.max(head) - head + offset;
        (start.min(head)..end.min(head), run_start..run_end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of a grown set of items appends without moving: the bench's per-iteration
    /// clones (and an exchange's copy on write) must not pay a whole copy on their first msg.
    #[test]
    fn clones_keep_the_room_to_grow() {
        let item = |key| Item {
            key,
            id: [u8::try_from(key % 251).unwrap_or(0); 32],
        };
        let mut grown = SortedItems::new((0..1000).map(item).collect());
        grown.insert(item(1000));
        let mut copy = grown.clone();
        assert_eq!(copy, grown);
        let before = copy.items().as_ptr();
        for key in 1001..1100 {
            copy.insert(item(key));
        }
        assert_eq!(copy.items().as_ptr(), before, "the copy's items moved");
        assert_eq!(copy.items().len(), 1100);
    }
    use crate::sync::recon::fingerprint::IdSum;

    fn item(key: u64, byte: u8) -> Item {
        let mut id = [byte; 32];
        id[0] = byte.wrapping_mul(37);
        Item { key, id }
    }

    /// Items at key 0 and above, in no order, with a duplicate.
    fn items() -> Vec<Item> {
        let mut items: Vec<Item> = (0..40u8).map(|n| item(u64::from(n % 9), n)).collect();
        items.push(item(5, 5));
        items.reverse();
        items
    }

    #[test]
    fn inserting_one_by_one_gives_the_items_and_sums_of_sorting_them_all() {
        let mut kept = SortedItems::default();
        for item in items() {
            kept.insert(item);
        }
        assert_eq!(kept, SortedItems::new(items()));
        assert_eq!(kept.items().len(), 40, "the duplicate counted once");
    }

    #[test]
    fn kept_items_with_wrong_sums_are_not_equal_to_a_rebuild() {
        let rebuilt = SortedItems::new(items());
        let mut sabotaged = rebuilt.clone();
        sabotaged.sums = PrefixSums::new(&items());
        assert_ne!(sabotaged, rebuilt, "the sums take part in the comparison");
    }

    #[test]
    fn a_head_and_a_shared_run_read_as_one_sorted_set() {
        let all = items();
        let (head, members): (Vec<Item>, Vec<Item>) = all.iter().partition(|item| item.key == 0);
        let run = Arc::new(SortedItems::new(members));
        // The last one is empty (as a depth range past the tangle's top gives).
        for (low, high) in [(1, 8), (2, 5), (4, 4), (9, 20), (6, 2)] {
            let keys = low..=high;
            let split = ItemSet::with_run(head.clone(), Arc::clone(&run), &keys);
            let in_keys = |item: &Item| item.key == 0 || keys.contains(&item.key);
            let whole = ItemSet::new(all.iter().copied().filter(in_keys).collect());
            assert_eq!(split.len(), whole.len());
            assert!(
                split.iter().eq(whole.iter()),
                "same items in the same order"
            );
            for start in 0..=whole.len() {
                assert_eq!(split.get(start), whole.get(start));
                for end in start..=whole.len() + 1 {
                    assert_eq!(split.fingerprint(start, end), whole.fingerprint(start, end));
                    assert!(split.range(start, end).eq(whole.range(start, end)));
                }
            }
            for probe in whole.iter() {
                let bound = Bound {
                    key: probe.key,
                    padded_id: probe.id,
                    prefix_len: 32,
                };
                assert_eq!(
                    split.first_at_or_above(&bound),
                    whole.first_at_or_above(&bound)
                );
            }
            assert_eq!(
                split.first_at_or_above(&Bound::INFINITY),
                split.len(),
                "nothing at or above infinity"
            );
        }
    }

    #[test]
    fn a_sum_of_two_ranges_is_the_sum_of_their_union() {
        let sorted = SortedItems::new(items());
        let whole = sorted.sums.sum(0, 40);
        let parts = sorted.sums.sum(0, 17).plus_sum(sorted.sums.sum(17, 40));
        assert_eq!(whole, parts);
        assert_ne!(whole, IdSum::default());
    }
}
