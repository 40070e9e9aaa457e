//! Range fingerprints: the first 16 bytes of SHA-256(the sum of the IDs as little-endian
//! 256-bit integers mod 2²⁵⁶ ‖ varint(count)), as negentropy v1 computes them.
//!
//! The sum is a group operation, so [`PrefixSums`] answers any contiguous range's fingerprint
//! with two lookups and a subtraction, and the sums of two ranges add up to the sum of their
//! union. The sync index keeps each reconciled tangle's sorted items with their prefix sums
//! ([`super::SortedItems`]), kept fresh as msgs arrive, so an exchange builds neither.

use sha2::{Digest, Sha256};

use super::item::{ID_BYTES, Item};
use super::varint::write_varint;

/// Bytes of a fingerprint on the wire.
pub const FINGERPRINT_BYTES: usize = 16;

/// A range's fingerprint.
pub type Fingerprint = [u8; FINGERPRINT_BYTES];

/// A 256-bit sum of IDs, as four little-endian 64-bit limbs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdSum([u64; 4]);

impl IdSum {
    /// `self + id` mod 2²⁵⁶, reading `id` as a little-endian integer.
    #[must_use]
    pub fn plus(self, id: &[u8; ID_BYTES]) -> Self {
        let mut out = [0_u64; 4];
        let mut carry = false;
        for ((to, limb), chunk) in out.iter_mut().zip(self.0).zip(id.chunks_exact(8)) {
            let mut bytes = [0_u8; 8];
            bytes.copy_from_slice(chunk);
            let (sum, c1) = limb.overflowing_add(u64::from_le_bytes(bytes));
            let (sum, c2) = sum.overflowing_add(u64::from(carry));
            *to = sum;
            carry = c1 || c2;
        }
        Self(out)
    }

    /// `self + other` mod 2²⁵⁶.
    #[must_use]
    pub fn plus_sum(self, other: Self) -> Self {
        let mut out = [0_u64; 4];
        let mut carry = false;
        for ((to, limb), addend) in out.iter_mut().zip(self.0).zip(other.0) {
            let (sum, c1) = limb.overflowing_add(addend);
            let (sum, c2) = sum.overflowing_add(u64::from(carry));
            *to = sum;
            carry = c1 || c2;
        }
        Self(out)
    }

    /// `self − other` mod 2²⁵⁶.
    #[must_use]
    pub fn minus(self, other: Self) -> Self {
        let mut out = [0_u64; 4];
        let mut borrow = false;
        for ((to, limb), subtrahend) in out.iter_mut().zip(self.0).zip(other.0) {
            let (diff, b1) = limb.overflowing_sub(subtrahend);
            let (diff, b2) = diff.overflowing_sub(u64::from(borrow));
            *to = diff;
            borrow = b1 || b2;
        }
        Self(out)
    }

    /// The fingerprint of a range of `count` items whose IDs sum to `self`.
    #[must_use]
    pub fn fingerprint(self, count: usize) -> Fingerprint {
        let mut input = Vec::with_capacity(ID_BYTES + 10);
        for limb in self.0 {
            input.extend_from_slice(&limb.to_le_bytes());
        }
        write_varint(&mut input, u64::try_from(count).unwrap_or(u64::MAX));
        let digest = Sha256::digest(&input);
        let mut out = [0; FINGERPRINT_BYTES];
        out.iter_mut().zip(digest).for_each(|(to, from)| *to = from);
        out
    }
}

/// Sums of the first `i` items' IDs, for every `i`. A clone keeps the spare capacity.
#[derive(Debug, PartialEq, Eq)]
pub struct PrefixSums(Vec<IdSum>);

impl Clone for PrefixSums {
    fn clone(&self) -> Self {
        Self(super::item::clone_keeping_capacity(&self.0))
    }
}

impl Default for PrefixSums {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl PrefixSums {
    /// Prefix sums over `items`.
    #[must_use]
    pub fn new(items: &[Item]) -> Self {
        let mut sums = Vec::with_capacity(items.len() + 1);
        let mut sum = IdSum::default();
        sums.push(sum);
        for item in items {
            sum = sum.plus(&item.id);
            sums.push(sum);
        }
        Self(sums)
    }

    /// The fingerprint of the items at indexes `start..end`; indexes past the end are
    /// clamped to it.
    #[must_use]
    pub fn fingerprint(&self, start: usize, end: usize) -> Fingerprint {
        let last = self.0.len() - 1;
        let (start, end) = (start.min(last), end.min(last));
        self.sum(start, end).fingerprint(end.saturating_sub(start))
    }

    /// The sum of the IDs of the items at indexes `start..end` (clamped to the items).
    #[must_use]
    pub fn sum(&self, start: usize, end: usize) -> IdSum {
        let last = self.0.len() - 1;
        let (start, end) = (start.min(last), end.min(last));
        let at = |index: usize| self.0.get(index).copied().unwrap_or_default();
        at(end).minus(at(start))
    }

    /// The sums after an item with `id` was inserted at index `at` of the items (at most
    /// their count): one addition per item after it, none for an item added last.
    pub fn insert(&mut self, at: usize, id: &[u8; ID_BYTES]) {
        let at = at.min(self.0.len() - 1);
        let before = self.0.get(at).copied().unwrap_or_default();
        self.0.insert(at + 1, before.plus(id));
        for sum in self.0.iter_mut().skip(at + 2) {
            *sum = sum.plus(id);
        }
    }
}
