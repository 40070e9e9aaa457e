//! [`TangleState`]: what a session remembers of one tangle, packed.
//!
//! A session keeps one for every tangle it tracks, and most of them outlive their exchange by
//! far: at `scale-1k`'s peak about 400,000 are alive, nearly all of finished exchanges. So
//! what only an exchange in progress needs (three of the four depth ranges) lives behind a
//! pointer that is dropped once the exchange's end clears them, the msgs pushed after an
//! exchange wait in the session ([`super::Session`]'s pending pushes), and an absent depth is
//! a value no depth can take rather than an `Option`'s extra word: 64 bytes a tangle, not 136.

use std::collections::BTreeMap;

use super::numbering::{TangleNumber, TangleNumbering};
use crate::ids::TangleId;
use crate::sync::id_set::IdSet;
use crate::sync::wire;
use crate::tangle::DepthRange;

/// Per-tangle state, the reference's per-tangle maps gathered in one place.
#[derive(Debug, Clone, Default)]
pub(super) struct TangleState {
    /// Our want-range: kept after the exchange, since msgs the remote pushes in realtime are
    /// committed against it.
    pub(super) local_want: MaybeRange,
    /// Our have-range as advertised and the remote's have- and want-ranges; only while one
    /// of them is set (an exchange, or the shortcut sender's end of one).
    ranges: Option<Box<ExchangeRanges>>,
    /// IDs the remote said it would send, and the IDs committed from it.
    pub(super) receivable: IdSet,
    /// IDs we listed (or sent) to the remote.
    pub(super) sendable: IdSet,
    /// Set when an exchange ended without the remote's want covering our have, because our
    /// have was empty or below the remote's (see `owed_after`): a msg of this tangle added
    /// locally at this depth or deeper, not from the remote, starts a new exchange.
    owed_from: MaybeDepth,
    /// For least-recently-used eviction.
    pub(super) last_used: u64,
    /// Whether the reference's `receivableMsgs` has an entry for this tangle.
    pub(super) receivable_listed: bool,
    /// Whether the reference's `sendableMsgs` has an entry for this tangle.
    pub(super) sendable_listed: bool,
    /// An exchange is under way (from a phase 1 until this side's last message of it).
    pub(super) in_progress: bool,
    /// Repeat the exchange once when it ends: something it could not account for happened
    /// during it (a claim this session deferred on was released, the goal changed, an
    /// account change, more local msgs than the pending pushes keep).
    pub(super) dirty: bool,
    /// This session holds the peer's fetch claim on the tangle (`super::claims`).
    pub(super) claimed: bool,
    /// Another session held the claim when this one was about to fetch: it asked for
    /// nothing, and starts a new exchange when the claim is released.
    pub(super) deferred: bool,
    /// A commit refused msgs and the tangle was fetched again; not again until a commit from
    /// the remote adds something (a remote that keeps sending bad msgs cannot loop us).
    pub(super) refetched: bool,
    /// New local msgs of this tangle are pushed to the remote as they are added (the
    /// reference's `realtimeSyncing` set).
    pub(super) realtime: bool,
}

/// The ranges only an exchange needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ExchangeRanges {
    local_have: MaybeRange,
    remote_have: MaybeRange,
    remote_want: MaybeRange,
}

impl TangleState {
    /// IDs held in both sets.
    pub(super) fn known_ids(&self) -> usize {
        self.receivable.len() + self.sendable.len()
    }

    /// Our have-range as we advertised it.
    pub(super) fn local_have(&self) -> MaybeRange {
        self.ranges
            .as_ref()
            .map_or(MaybeRange::NONE, |r| r.local_have)
    }

    /// The remote's have-range.
    pub(super) fn remote_have(&self) -> MaybeRange {
        self.ranges
            .as_ref()
            .map_or(MaybeRange::NONE, |r| r.remote_have)
    }

    /// The remote's want-range.
    pub(super) fn remote_want(&self) -> MaybeRange {
        self.ranges
            .as_ref()
            .map_or(MaybeRange::NONE, |r| r.remote_want)
    }

    pub(super) fn set_local_have(&mut self, range: MaybeRange) {
        self.update_ranges(|ranges| ranges.local_have = range);
    }

    pub(super) fn set_remote_have(&mut self, range: MaybeRange) {
        self.update_ranges(|ranges| ranges.remote_have = range);
    }

    pub(super) fn set_remote_want(&mut self, range: MaybeRange) {
        self.update_ranges(|ranges| ranges.remote_want = range);
    }

    /// Changes the exchange's ranges, allocating them on the first set and freeing them
    /// when all three are cleared.
    fn update_ranges(&mut self, change: impl FnOnce(&mut ExchangeRanges)) {
        let mut ranges = self.ranges.as_deref().copied().unwrap_or_default();
        change(&mut ranges);
        if ranges == ExchangeRanges::default() {
            self.ranges = None;
        } else if let Some(kept) = self.ranges.as_deref_mut() {
            *kept = ranges;
        } else {
            self.ranges = Some(Box::new(ranges));
        }
    }

    /// Whether the exchange's ranges are allocated.
    pub(super) fn holds_exchange_ranges(&self) -> bool {
        self.ranges.is_some()
    }

    /// From which depth a local msg makes the remote owed an exchange, if it is owed.
    pub(super) fn owed_from(&self) -> Option<u64> {
        self.owed_from.get()
    }

    pub(super) fn set_owed_from(&mut self, from: Option<u64>) {
        self.owed_from = MaybeDepth::new(from);
    }
}

/// An optional depth range in 16 bytes rather than an `Option`'s 24. `None` is a range no
/// peer or msg can name (depths are at most [`wire::DEPTH_MAX`], and decoded msgs' depths no
/// more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MaybeRange(DepthRange);

impl MaybeRange {
    /// No range.
    pub(super) const NONE: Self = Self(DepthRange {
        min: u64::MAX,
        max: u64::MAX,
    });

    /// `range`.
    pub(super) fn some(range: DepthRange) -> Self {
        debug_assert_ne!(Self(range), Self::NONE, "a depth range past DEPTH_MAX");
        Self(range)
    }

    /// The range, if any.
    pub(super) fn get(self) -> Option<DepthRange> {
        (self != Self::NONE).then_some(self.0)
    }
}

impl Default for MaybeRange {
    fn default() -> Self {
        Self::NONE
    }
}

/// An optional depth in 8 bytes: `None` is `u64::MAX`, past [`wire::DEPTH_MAX`] + 1, the
/// deepest an owed exchange can start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MaybeDepth(u64);

impl MaybeDepth {
    const NONE: Self = Self(u64::MAX);

    fn new(depth: Option<u64>) -> Self {
        debug_assert!(
            depth.is_none_or(|depth| depth <= wire::DEPTH_MAX.saturating_add(1)),
            "a depth past DEPTH_MAX + 1"
        );
        depth.map_or(Self::NONE, Self)
    }

    fn get(self) -> Option<u64> {
        (self != Self::NONE).then_some(self.0)
    }
}

impl Default for MaybeDepth {
    fn default() -> Self {
        Self::NONE
    }
}

/// The tracked tangles' states, in tangle ID order: the tangles' numbers (in a
/// [`TangleNumbering`]) and the states in two vectors kept sorted by the IDs the numbers name,
/// found by binary search. A B-tree node holds eleven entries whatever the count (a session
/// tracking three tangles paid for eleven) and its nodes run about two-thirds full; here an
/// entry costs a 4-byte number and its state, plus at most an eighth spare. Tangles are added
/// one by one as exchanges start and removed only on eviction, so the insertion's shift is
/// rare and short (at most [`super::TANGLES_TRACKED_MAX`] entries).
///
/// The numbering the numbers come from is the session's own, or, while a session of
/// [`crate::sync::Sessions`] handles an input, its peer's, swapped in for the call
/// ([`TangleStates::swap_numbering`]); the session's own then stays empty.
#[derive(Debug, Clone, Default)]
pub(super) struct TangleStates {
    numbers: Vec<TangleNumber>,
    states: Vec<TangleState>,
    numbering: TangleNumbering,
}

impl TangleStates {
    /// How many tangles are tracked.
    pub(super) fn len(&self) -> usize {
        self.numbers.len()
    }

    /// Where `id` is, or would be inserted, among the entries (looked up in `numbering`).
    fn find(&self, numbering: &TangleNumbering, id: &TangleId) -> Result<usize, usize> {
        self.numbers
            .binary_search_by(|number| numbering.id(*number).cmp(id))
    }

    /// Whether `id` is tracked.
    pub(super) fn contains_key(&self, id: &TangleId) -> bool {
        self.find(&self.numbering, id).is_ok()
    }

    /// The state of `id`, if tracked.
    pub(super) fn get(&self, id: &TangleId) -> Option<&TangleState> {
        self.get_in(&self.numbering, id)
    }

    /// The state of `id`, if tracked, the numbers read in `numbering`.
    pub(super) fn get_in(
        &self,
        numbering: &TangleNumbering,
        id: &TangleId,
    ) -> Option<&TangleState> {
        let index = self.find(numbering, id).ok()?;
        self.states.get(index)
    }

    /// The state of `id`, if tracked.
    pub(super) fn get_mut(&mut self, id: &TangleId) -> Option<&mut TangleState> {
        let index = self.find(&self.numbering, id).ok()?;
        self.states.get_mut(index)
    }

    /// The state of `id`, tracking it with a default state if it was not.
    pub(super) fn get_or_default(&mut self, id: TangleId) -> &mut TangleState {
        let index = match self.find(&self.numbering, &id) {
            Ok(index) => index,
            Err(index) => {
                if self.numbers.len() == self.numbers.capacity() {
                    let more = (self.numbers.len() / SPARE_FRACTION).max(1);
                    self.numbers.reserve_exact(more);
                    self.states.reserve_exact(more);
                }
                let number = self.numbering.acquire(id);
                self.numbers.insert(index, number);
                self.states.insert(index, TangleState::default());
                index
            }
        };
        self.states
            .get_mut(index)
            .expect("invariant: numbers and states have the same length")
    }

    /// Stops tracking `id`, returning its state.
    pub(super) fn remove(&mut self, id: &TangleId) -> Option<TangleState> {
        let index = self.find(&self.numbering, id).ok()?;
        let number = self.numbers.remove(index);
        self.numbering.release(number);
        Some(self.states.remove(index))
    }

    /// Stops tracking every tangle (giving their numbers back).
    pub(super) fn clear(&mut self) {
        for number in self.numbers.drain(..) {
            self.numbering.release(number);
        }
        self.states = Vec::new();
        self.numbers = Vec::new();
    }

    /// The tracked tangles and their states, in tangle ID order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&TangleId, &TangleState)> + '_ {
        self.iter_in(&self.numbering)
    }

    /// The tracked tangles and their states, in tangle ID order, the numbers read in
    /// `numbering`.
    pub(super) fn iter_in<'a>(
        &'a self,
        numbering: &'a TangleNumbering,
    ) -> impl Iterator<Item = (&'a TangleId, &'a TangleState)> + 'a {
        self.numbers
            .iter()
            .map(|number| numbering.id(*number))
            .zip(&self.states)
    }

    /// The states, in tangle ID order.
    pub(super) fn values(&self) -> impl Iterator<Item = &TangleState> + '_ {
        self.states.iter()
    }

    /// Exchanges the numbering the entries' numbers are read in with `numbering`: a session
    /// of [`crate::sync::Sessions`] swaps its peer's in before an input and back after it.
    pub(super) fn swap_numbering(&mut self, numbering: &mut TangleNumbering) {
        std::mem::swap(&mut self.numbering, numbering);
    }

    /// The numbering the entries' numbers are read in, unless swapped out.
    pub(super) fn numbering(&self) -> &TangleNumbering {
        &self.numbering
    }

    /// Adds one to `uses` for each tracked tangle's number.
    pub(super) fn count_uses(&self, uses: &mut BTreeMap<TangleNumber, u32>) {
        for number in &self.numbers {
            *uses.entry(*number).or_default() += 1;
        }
    }

    /// Panics unless the entries' numbers name tangles in `numbering`, sorted by ID
    /// without duplicates, one state each.
    pub(super) fn check_invariants(&self, numbering: &TangleNumbering) {
        assert_eq!(
            self.numbers.len(),
            self.states.len(),
            "one state per tracked tangle"
        );
        assert!(
            self.numbers
                .iter()
                .all(|number| numbering.uses(*number) > 0),
            "a tracked tangle's number names no tangle"
        );
        assert!(
            self.numbers
                .windows(2)
                .all(|pair| matches!(pair, [a, b] if numbering.id(*a) < numbering.id(*b))),
            "tracked tangles out of order"
        );
    }
}

/// A full vector of [`TangleStates`] grows by a `1 / SPARE_FRACTION` of its length (at least
/// one): amortized constant time per insert, at most that fraction unused.
const SPARE_FRACTION: usize = 8;

#[cfg(test)]
mod tests {
    use super::{MaybeRange, TangleState, TangleStates};
    use crate::tangle::DepthRange;

    fn range(min: u64, max: u64) -> MaybeRange {
        MaybeRange::some(DepthRange { min, max })
    }

    #[test]
    fn a_tangle_state_stays_small() {
        // One per (session, tracked tangle): at scale-1k's peak about 400,000 are alive, so
        // every 8 bytes here is 3 MB there (312 bytes before the ID sets went behind a
        // pointer, 168 before the depth ranges were packed, 136 before the exchange's ranges
        // went behind one and the pending pushes and the realtime set moved out).
        assert_eq!(size_of::<TangleState>(), 64);
    }

    #[test]
    fn the_exchange_ranges_are_freed_once_all_cleared() {
        let mut state = TangleState::default();
        assert!(!state.holds_exchange_ranges());
        assert_eq!(state.remote_want(), MaybeRange::NONE);
        state.set_local_have(range(0, 3));
        state.set_remote_want(range(2, 5));
        assert!(state.holds_exchange_ranges());
        assert_eq!(state.local_have(), range(0, 3));
        assert_eq!(state.remote_have(), MaybeRange::NONE);
        assert_eq!(state.remote_want(), range(2, 5));
        state.set_local_have(MaybeRange::NONE);
        assert!(
            state.holds_exchange_ranges(),
            "the remote's want is still set"
        );
        state.set_remote_want(MaybeRange::NONE);
        assert!(!state.holds_exchange_ranges());
        state.set_remote_have(MaybeRange::NONE);
        assert!(
            !state.holds_exchange_ranges(),
            "clearing nothing allocates nothing"
        );
    }

    #[test]
    fn tracked_states_are_found_in_id_order() {
        let id = |n: u8| crate::ids::MsgId::from_bytes(&[n; 32]);
        let mut states = TangleStates::default();
        for n in [5, 1, 9, 3, 7] {
            states.get_or_default(id(n)).last_used = u64::from(n);
        }
        states.get_or_default(id(3)).in_progress = true;
        states.check_invariants(states.numbering());
        assert_eq!(states.len(), 5);
        let mut sorted: Vec<_> = [1, 3, 5, 7, 9].map(id).to_vec();
        sorted.sort();
        let order: Vec<_> = states.iter().map(|(tangle, _)| *tangle).collect();
        assert_eq!(order, sorted);
        assert!(states.get(&id(3)).is_some_and(|state| state.in_progress));
        assert_eq!(states.get(&id(9)).map(|state| state.last_used), Some(9));
        assert!(states.get(&id(4)).is_none());
        assert_eq!(states.remove(&id(5)).map(|state| state.last_used), Some(5));
        assert!(!states.contains_key(&id(5)));
        assert!(states.remove(&id(5)).is_none());
        states.check_invariants(states.numbering());
        assert_eq!(states.values().count(), 4);
        assert_eq!(
            states.numbering().len(),
            4,
            "the removed tangle's number is freed"
        );
        states.get_or_default(id(0));
        states.get_or_default(id(5));
        states.check_invariants(states.numbering());
        let mut expected: Vec<_> = [0, 1, 3, 5, 7, 9].map(id).to_vec();
        expected.sort();
        let order: Vec<_> = states.iter().map(|(tangle, _)| *tangle).collect();
        assert_eq!(
            order, expected,
            "reused and new numbers still visit in ID order"
        );
        states.clear();
        assert!(states.numbering().is_empty());
    }

    #[test]
    fn owed_from_keeps_every_depth_an_exchange_can_name() {
        let mut state = TangleState::default();
        assert_eq!(state.owed_from(), None);
        for from in [0, 1, 17, crate::sync::wire::DEPTH_MAX + 1] {
            state.set_owed_from(Some(from));
            assert_eq!(state.owed_from(), Some(from));
        }
        state.set_owed_from(None);
        assert_eq!(state.owed_from(), None);
    }
}
