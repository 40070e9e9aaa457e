//! [`TangleNumbering`]: a number for each tangle a peer's sessions track, so that a session's
//! tracked-tangle entry stores 4 bytes rather than the tangle's 45-byte ID.
//!
//! A peer's sessions track mostly the same tangles (its goals and its remotes' goals), and a
//! busy simulated peer has dozens of sessions tracking hundreds of tangles each: at
//! `swarm-100`'s peak about 600,000 entries are alive, where each copy of the ID cost more than
//! the rest of the entry. [`super::super::Sessions`] owns one numbering for all its sessions;
//! a session driven alone has its own. A number counts the entries that use it and is freed
//! (its ID forgotten, the number reused) when the last one goes, so the numbering holds only
//! tangles some session tracks.
//!
//! Numbers carry no order: a session keeps its entries sorted by the IDs they name (looked up
//! here), so it visits its tangles in ID order, as it did when it stored the IDs.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::TangleId;

/// A full vector of the numbering grows by a `1 / SPARE_FRACTION` of its length (at least
/// one): amortized constant time per new tangle, at most that fraction unused.
const SPARE_FRACTION: usize = 8;

/// A tangle's number in a [`TangleNumbering`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(in crate::sync) struct TangleNumber(u32);

/// What a number names. See the module docs.
#[derive(Debug, Clone, Default)]
pub(in crate::sync) struct TangleNumbering {
    /// By number: the tangle, and how many tracked entries use the number (0: free, and the
    /// ID is stale).
    entries: Vec<Entry>,
    /// The numbers in use, sorted by the IDs they name: 4 bytes a tangle where a map from
    /// the ID would store the ID again.
    by_id: Vec<TangleNumber>,
    /// The free numbers, the last freed reused first.
    free: Vec<TangleNumber>,
}

#[derive(Debug, Clone)]
struct Entry {
    id: TangleId,
    uses: u32,
}

impl TangleNumbering {
    /// How many tangles have a number.
    #[cfg(test)]
    pub(in crate::sync) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no tangle has a number.
    #[must_use]
    pub(in crate::sync) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The number of `id` for one more use: its number if it has one, else a free or a new one.
    pub(in crate::sync) fn acquire(&mut self, id: TangleId) -> TangleNumber {
        let place = match self.find(&id) {
            Ok(place) => {
                let number = *self.by_id.get(place).expect("invariant: found in by_id");
                self.entry_mut(number).uses += 1;
                return number;
            }
            Err(place) => place,
        };
        let number = if let Some(number) = self.free.pop() {
            *self.entry_mut(number) = Entry { id, uses: 1 };
            number
        } else {
            // At most a peer's sessions times `TANGLES_TRACKED_MAX` numbers are in use at
            // once, far below `u32::MAX`.
            let next = u32::try_from(self.entries.len())
                .expect("invariant: fewer tracked tangles than u32::MAX");
            reserve_spare(&mut self.entries);
            self.entries.push(Entry { id, uses: 1 });
            TangleNumber(next)
        };
        reserve_spare(&mut self.by_id);
        self.by_id.insert(place, number);
        number
    }

    /// Where `id`'s number is, or would go, in `by_id`.
    fn find(&self, id: &TangleId) -> Result<usize, usize> {
        self.by_id
            .binary_search_by(|number| self.entry(*number).id.cmp(id))
    }

    /// One use of `number` less; the number is freed with its last use.
    pub(in crate::sync) fn release(&mut self, number: TangleNumber) {
        let entry = self.entry_mut(number);
        assert!(entry.uses > 0, "released {number:?}, which is free");
        entry.uses -= 1;
        if entry.uses == 0 {
            let id = entry.id;
            if let Ok(place) = self.find(&id) {
                self.by_id.remove(place);
            }
            self.free.push(number);
        }
    }

    /// The tangle `number` names.
    ///
    /// # Panics
    /// If `number` is not in use here: a session's numbers are looked up in the numbering
    /// they were taken from.
    pub(in crate::sync) fn id(&self, number: TangleNumber) -> &TangleId {
        let entry = self.entry(number);
        assert!(entry.uses > 0, "{number:?} is free");
        &entry.id
    }

    /// How many entries use `number`.
    pub(in crate::sync) fn uses(&self, number: TangleNumber) -> u32 {
        self.entries
            .get(index(number))
            .map_or(0, |entry| entry.uses)
    }

    fn entry(&self, number: TangleNumber) -> &Entry {
        self.entries
            .get(index(number))
            .unwrap_or_else(|| panic!("{number:?} was never handed out by this numbering"))
    }

    fn entry_mut(&mut self, number: TangleNumber) -> &mut Entry {
        self.entries
            .get_mut(index(number))
            .unwrap_or_else(|| panic!("{number:?} was never handed out by this numbering"))
    }

    /// Panics unless `uses` (how many entries use each number, counted over every session
    /// of the numbering) matches the reference counts, every number in use names the tangle
    /// that has it, and every other number is free.
    pub(in crate::sync) fn check_invariants(&self, uses: &BTreeMap<TangleNumber, u32>) {
        // A set, not the list: this runs after every input in debug builds, over every
        // number ever handed out, and a search of the list per number made it quadratic.
        let free_set: BTreeSet<TangleNumber> = self.free.iter().copied().collect();
        let mut free = 0;
        for (number, entry) in (0..).map(TangleNumber).zip(&self.entries) {
            let counted = uses.get(&number).copied().unwrap_or(0);
            assert_eq!(
                entry.uses, counted,
                "{number:?} ({}) has {} uses counted, {counted} found",
                entry.id, entry.uses
            );
            if entry.uses == 0 {
                free += 1;
                assert!(free_set.contains(&number), "{number:?} unused, not free");
            } else {
                let place = self.find(&entry.id).ok();
                assert_eq!(
                    place.and_then(|place| self.by_id.get(place)),
                    Some(&number),
                    "{number:?} names {}, which has another number",
                    entry.id
                );
            }
        }
        assert!(
            uses.keys()
                .all(|number| index(*number) < self.entries.len()),
            "a session uses a number never handed out"
        );
        assert_eq!(free, self.free.len(), "the free list repeats a number");
        assert!(
            self.by_id.windows(2).all(|pair| matches!(pair,
                [a, b] if self.entry(*a).id < self.entry(*b).id)),
            "the numbers in use are out of ID order"
        );
        assert_eq!(
            self.by_id.len() + free,
            self.entries.len(),
            "a tangle with a number it does not use"
        );
    }
}

/// Makes room for one more element, growing a full vector by [`SPARE_FRACTION`].
fn reserve_spare<T>(vector: &mut Vec<T>) {
    if vector.len() == vector.capacity() {
        vector.reserve_exact((vector.len() / SPARE_FRACTION).max(1));
    }
}

fn index(number: TangleNumber) -> usize {
    usize::try_from(number.0).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{TangleNumber, TangleNumbering};
    use crate::ids::MsgId;

    fn id(n: u8) -> MsgId {
        MsgId::from_bytes(&[n; 32])
    }

    #[test]
    fn a_number_is_shared_by_its_uses_and_freed_with_the_last() {
        let mut numbering = TangleNumbering::default();
        let a = numbering.acquire(id(1));
        let b = numbering.acquire(id(2));
        assert_ne!(a, b);
        assert_eq!(numbering.acquire(id(1)), a, "one number per tangle");
        assert_eq!(numbering.uses(a), 2);
        numbering.check_invariants(&BTreeMap::from([(a, 2), (b, 1)]));
        numbering.release(a);
        assert_eq!(numbering.id(a), &id(1), "still used once");
        numbering.release(a);
        assert_eq!(numbering.uses(a), 0);
        assert_eq!(numbering.len(), 1, "only the second tangle is left");
        numbering.check_invariants(&BTreeMap::from([(b, 1)]));
        let c = numbering.acquire(id(3));
        assert_eq!(c, a, "the freed number is reused");
        assert_eq!(numbering.id(c), &id(3));
        assert_eq!(numbering.acquire(id(1)), TangleNumber(2), "a new number");
        numbering.check_invariants(&BTreeMap::from([(b, 1), (c, 1), (TangleNumber(2), 1)]));
    }

    #[test]
    #[should_panic(expected = "uses counted")]
    fn the_checker_catches_a_count_that_does_not_match_the_uses() {
        let mut numbering = TangleNumbering::default();
        let a = numbering.acquire(id(1));
        numbering.acquire(id(1));
        numbering.check_invariants(&BTreeMap::from([(a, 1)]));
    }

    #[test]
    #[should_panic(expected = "free")]
    fn a_free_number_names_no_tangle() {
        let mut numbering = TangleNumbering::default();
        let a = numbering.acquire(id(1));
        numbering.release(a);
        let _ = numbering.id(a);
    }
}
