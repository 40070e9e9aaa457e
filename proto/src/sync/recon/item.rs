//! What is reconciled ([`Item`]) and the points that cut the item order into ranges
//! ([`Bound`]).

use std::cmp::Ordering;

/// Bytes of a msg ID.
pub const ID_BYTES: usize = 32;

/// A msg ID's raw bytes.
pub type Id = [u8; ID_BYTES];

/// Largest key an item or a finite bound may carry: JavaScript's `Number.MAX_SAFE_INTEGER`,
/// the largest depth a tangle can name (`wire::DEPTH_MAX`).
pub const KEY_MAX: u64 = super::super::wire::DEPTH_MAX;

/// One member of the reconciled set: a msg's depth in the tangle (0 for account msgs and
/// ghosts) and its ID. Items are ordered by key, then by ID bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Item {
    /// The depth key, at most [`KEY_MAX`].
    pub key: u64,
    /// The msg ID's bytes.
    pub id: Id,
}

/// A point in the item order: every item below it sorts before `(key, prefix ‖ zeros)`.
/// Infinity (`key == u64::MAX`) is above every item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// The key, or `u64::MAX` for infinity.
    pub key: u64,
    /// The ID prefix, zero-padded to 32 bytes.
    pub padded_id: Id,
    /// How many bytes of `padded_id` are sent (0 to 32).
    pub prefix_len: u8,
}

impl Bound {
    /// The lowest point, below or at every item: the lower bound of a message's first range.
    pub const MIN: Self = Self {
        key: 0,
        padded_id: [0; ID_BYTES],
        prefix_len: 0,
    };

    /// The point above every item.
    pub const INFINITY: Self = Self {
        key: u64::MAX,
        padded_id: [0; ID_BYTES],
        prefix_len: 0,
    };

    /// Whether this is [`Bound::INFINITY`].
    #[must_use]
    pub fn is_infinity(&self) -> bool {
        self.key == u64::MAX
    }

    /// The ID prefix as sent.
    #[must_use]
    pub fn prefix(&self) -> &[u8] {
        self.padded_id
            .get(..usize::from(self.prefix_len))
            .unwrap_or(&self.padded_id)
    }

    /// The shortest bound above `prev` and at or below `next` (`prev < next`): the key alone
    /// when the keys differ, else `next`'s ID up to the first byte that differs from `prev`'s.
    #[must_use]
    pub fn between(prev: &Item, next: &Item) -> Self {
        if prev.key != next.key {
            return Self {
                key: next.key,
                padded_id: [0; ID_BYTES],
                prefix_len: 0,
            };
        }
        let shared = prev
            .id
            .iter()
            .zip(next.id.iter())
            .take_while(|(a, b)| a == b)
            .count();
        let len = (shared + 1).min(ID_BYTES);
        let mut padded_id = [0; ID_BYTES];
        padded_id
            .iter_mut()
            .zip(next.id)
            .take(len)
            .for_each(|(to, from)| *to = from);
        Self {
            key: next.key,
            padded_id,
            prefix_len: u8::try_from(len).unwrap_or(32),
        }
    }

    /// Where this point sits relative to `item`.
    #[must_use]
    pub fn cmp_item(&self, item: &Item) -> Ordering {
        self.key
            .cmp(&item.key)
            .then_with(|| self.padded_id.cmp(&item.id))
    }

    /// The order of two points (the prefix length does not matter: padding is zeros).
    #[must_use]
    pub fn cmp_point(&self, other: &Self) -> Ordering {
        self.key
            .cmp(&other.key)
            .then_with(|| self.padded_id.cmp(&other.padded_id))
    }
}

/// The index of the first item of `items` (sorted) at or above `bound`.
#[must_use]
pub fn first_at_or_above(items: &[Item], bound: &Bound) -> usize {
    items.partition_point(|item| bound.cmp_item(item) == Ordering::Greater)
}

/// A copy of `items` with the original's spare capacity. The index's vectors grow by
/// appending (a new msg sorts last), so a copy made with `Vec::clone`'s exact capacity would
/// copy every item again on its first append, where the original, already grown, has room.
pub(crate) fn clone_keeping_capacity<T: Clone>(items: &Vec<T>) -> Vec<T> {
    let mut copy = Vec::with_capacity(items.capacity());
    copy.extend_from_slice(items);
    copy
}
