//! Bloom filters in the bloom-filters@3.0.4 `saveAsJSON` format, hashed exactly as that
//! library hashes (protocol.md §7.5).
//!
//! An item is hashed twice with XXH64 over its UTF-8 bytes, with seeds `_seed + 1` and
//! `_seed + 2` truncated to 32 bits (xxhashjs builds its seed from the low 32 bits of a JS
//! number), and only the low 32 bits of each digest are kept (`toNumber()`). Bit `i` of the
//! `_nbHashes` bits is `(h1 + i·h2 + ⌊(i³ − i)/6⌋) mod _size` (enhanced double hashing). The
//! bitset is `⌈size/8⌉` bytes where `size` is `_size` rounded up to a multiple of 8, bit `i`
//! being `byte[i / 8] & (1 << (i % 8))`, written as standard base64.
//!
//! A filter received from a remote peer is hostile input: [`BloomFilter::from_json`] checks
//! every dimension against a named bound before allocating anything.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use thiserror::Error;

use crate::ids::MsgId;

/// The `_seed` every bloom-filters@3 filter starts with (`0x1234567890`).
pub const SEED_DEFAULT: i64 = 78_187_493_520;

/// The false-positive rate pzp-sync asks `BloomFilter.create` for.
pub const ERROR_RATE: f64 = 0.00001;

/// Largest `_size` (in bits) accepted from a remote peer, and the largest we ever create:
/// 2 MiB of bitset. At our sizing (about 48 bits per item) that covers ranges of about
/// 350,000 msgs; the reference's own filters never exceed 47,926 bits.
pub const SIZE_BITS_MAX: u64 = 1 << 24;

/// Most hash functions accepted from a remote peer. The reference always uses 17 (the
/// optimum at [`ERROR_RATE`]); the bound keeps a probe's cost fixed.
pub const HASHES_MAX: u64 = 64;

/// Largest magnitude of `_seed` accepted: JavaScript's `Number.MAX_SAFE_INTEGER`, beyond which
/// `_seed + 1` is no longer exact.
pub const SEED_MAGNITUDE_MAX: i64 = 9_007_199_254_740_991;

/// The longest bloom item: a one-digit round followed by a 44-digit ID.
const ITEM_BYTES_MAX: usize = 45;

/// Why a JSON value is not an acceptable bloom filter.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BloomError {
    /// The value is not a JSON object.
    #[error("bloom filter is not an object")]
    NotObject,
    /// `type` is not `"BloomFilter"`.
    #[error("bloom filter type is not \"BloomFilter\"")]
    WrongType,
    /// `_size` is missing or not a positive integer within [`SIZE_BITS_MAX`].
    #[error("bloom filter _size is not an integer in 1..={max}")]
    SizeOutOfBounds {
        /// The bound.
        max: u64,
    },
    /// `_nbHashes` is missing or not an integer within `1..=HASHES_MAX`.
    #[error("bloom filter _nbHashes is not an integer in 1..={max}")]
    HashesOutOfBounds {
        /// The bound.
        max: u64,
    },
    /// `_seed` is missing or not a safe integer.
    #[error("bloom filter _seed is not a safe integer")]
    SeedNotSafeInteger,
    /// `_filter` is missing or not an object with a numeric `size` and a string `content`.
    #[error("bloom filter _filter is not {{size, content}}")]
    FilterMalformed,
    /// `_filter.size` is not `_size` rounded up to a multiple of 8.
    #[error("bloom filter _filter.size is {actual}, expected {expected}")]
    FilterSizeMismatch {
        /// `_size` rounded up to a multiple of 8.
        expected: u64,
        /// What the filter says.
        actual: u64,
    },
    /// `_filter.content` is not base64.
    #[error("bloom filter content is not base64")]
    ContentNotBase64,
    /// `_filter.content` does not hold exactly the bitset's bytes.
    #[error("bloom filter content holds {actual} bytes, expected {expected}")]
    ContentLengthMismatch {
        /// `_filter.size / 8`.
        expected: usize,
        /// Decoded length (or an estimate from the text length when it is far off).
        actual: usize,
    },
}

/// The two 32-bit hashes of one item, from which all its bit indexes derive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemHashes {
    /// Low 32 bits of XXH64 with seed `_seed + 1`.
    pub first: u32,
    /// Low 32 bits of XXH64 with seed `_seed + 2`.
    pub second: u32,
}

impl ItemHashes {
    /// Hashes `item` for a filter whose `_seed` is `seed`.
    #[must_use]
    pub fn of(item: &[u8], seed: i64) -> Self {
        Self {
            first: low_hash(item, seed_word(seed, 1)),
            second: low_hash(item, seed_word(seed, 2)),
        }
    }

    /// Hashes the sync item `"" + round + id` (protocol.md §7.5).
    #[must_use]
    pub fn of_sync_item(round: u8, id: &MsgId, seed: i64) -> Self {
        let mut buffer = [0u8; ITEM_BYTES_MAX + 1];
        let item = sync_item(round, id, &mut buffer);
        Self::of(item, seed)
    }

    /// Bit index number `i` (0-based) in a filter of `size` bits.
    #[must_use]
    pub fn index(&self, i: u64, size: u64) -> u64 {
        // Exact: h1, h2 < 2^32 and i < HASHES_MAX, so the sum stays far below 2^64 (and below
        // 2^53, so JavaScript's double arithmetic is exact too).
        let tetrahedral = (i * i * i - i) / 6;
        (u64::from(self.first) + i * u64::from(self.second) + tetrahedral) % size
    }

    /// Bit indexes `0..count` in a filter of `size` bits, as [`ItemHashes::index`] gives
    /// them, computed with two divisions instead of one per index: index `i + 1` is index
    /// `i` plus `h2 + i(i+1)/2`, all modulo `size`.
    #[must_use]
    pub fn indexes(&self, count: u64, size: u64) -> Indexes {
        let size = size.max(1);
        Indexes {
            next: u64::from(self.first) % size,
            step: u64::from(self.second) % size,
            i: 0,
            count,
            size,
        }
    }
}

/// The bit indexes of one item ([`ItemHashes::indexes`]).
#[derive(Debug, Clone)]
pub struct Indexes {
    next: u64,
    step: u64,
    i: u64,
    count: u64,
    size: u64,
}

impl Iterator for Indexes {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.i >= self.count {
            return None;
        }
        let current = self.next;
        let triangular = self.i * (self.i + 1) / 2;
        let triangular = if triangular < self.size {
            triangular
        } else {
            triangular % self.size
        };
        // Each term is below `size`, so two subtractions bring the sum back into range.
        let mut next = current + self.step + triangular;
        if next >= self.size {
            next -= self.size;
        }
        if next >= self.size {
            next -= self.size;
        }
        self.next = next;
        self.i += 1;
        Some(current)
    }
}

/// The sync bloom item `"" + round + id` written into `buffer`.
fn sync_item<'a>(round: u8, id: &MsgId, buffer: &'a mut [u8; ITEM_BYTES_MAX + 1]) -> &'a [u8] {
    // Rounds are 0, 1 or 2; any single digit prints as itself.
    let digit = b'0' + round % 10;
    let text = id.as_bytes();
    let len = 1 + text.len();
    if let Some((first, rest)) = buffer.split_first_mut() {
        *first = digit;
        if let Some(target) = rest.get_mut(..text.len()) {
            target.copy_from_slice(text);
        }
    }
    buffer.get(..len).unwrap_or_default()
}

/// The 32-bit xxhashjs seed for `_seed + offset`: the low 32 bits of the JS number.
fn seed_word(seed: i64, offset: i64) -> u64 {
    let word = seed.wrapping_add(offset).rem_euclid(1 << 32);
    u64::try_from(word).expect("invariant: rem_euclid(2^32) is non-negative")
}

fn low_hash(item: &[u8], seed: u64) -> u32 {
    let digest = xxhash_rust::xxh64::xxh64(item, seed);
    // xxhashjs' toNumber() keeps the low 32 bits.
    u32::try_from(digest & 0xffff_ffff).expect("invariant: masked to 32 bits")
}

/// `_size` rounded up to a multiple of 8 (the bitset's `size`).
fn bitset_bits(size: u64) -> u64 {
    size.div_ceil(8) * 8
}

/// bloom-filters' `optimalFilterSize(items, rate)` and `optimalHashes(size, items)`.
///
/// Computed with the same double operations in the same order as the JavaScript, which we
/// checked bit for bit against Node for every item count from 1 to 2,000,000.
#[must_use]
pub fn optimal_dimensions(items: u64, error_rate: f64) -> (u64, u64) {
    #[allow(clippy::cast_precision_loss)] // item counts stay far below 2^53
    let length = items.max(1) as f64;
    let ln2 = 2f64.ln();
    let size = (-(length * error_rate.ln()) / (ln2 * ln2)).ceil();
    let hashes = ((size / length) * ln2).ceil();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // positive, < 2^53
    (size as u64, hashes as u64)
}

/// A bloom filter as bloom-filters@3 keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct BloomFilter {
    /// `_size`: the number of bit positions hashed into.
    size: u64,
    /// `_nbHashes`.
    hashes: u64,
    /// `_seed`.
    seed: i64,
    /// The bitset, `⌈size/8⌉` bytes.
    bits: Vec<u8>,
}

impl std::fmt::Debug for BloomFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BloomFilter")
            .field("size", &self.size)
            .field("hashes", &self.hashes)
            .field("seed", &self.seed)
            .field("bits_set", &self.bits_set())
            .finish()
    }
}

impl BloomFilter {
    /// `BloomFilter.create(items, error_rate)`: an empty filter sized for `items` items, with
    /// the default seed. The size is capped at [`SIZE_BITS_MAX`].
    #[must_use]
    pub fn create(items: u64, error_rate: f64) -> Self {
        let (size, hashes) = optimal_dimensions(items, error_rate);
        Self::empty(
            size.clamp(1, SIZE_BITS_MAX),
            hashes.clamp(1, HASHES_MAX),
            SEED_DEFAULT,
        )
    }

    /// An empty filter of `size` bits and `hashes` hash functions with the default seed
    /// (both clamped to the accepted bounds).
    #[must_use]
    pub fn with_dimensions(size: u64, hashes: u64) -> Self {
        Self::empty(
            size.clamp(1, SIZE_BITS_MAX),
            hashes.clamp(1, HASHES_MAX),
            SEED_DEFAULT,
        )
    }

    fn empty(size: u64, hashes: u64, seed: i64) -> Self {
        let bytes = usize::try_from(bitset_bits(size) / 8)
            .expect("invariant: size <= SIZE_BITS_MAX fits in usize");
        Self {
            size,
            hashes,
            seed,
            bits: vec![0; bytes],
        }
    }

    /// `_size`, in bits.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `_nbHashes`.
    #[must_use]
    pub fn hash_count(&self) -> u64 {
        self.hashes
    }

    /// `_seed`.
    #[must_use]
    pub fn seed(&self) -> i64 {
        self.seed
    }

    /// The bitset bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bits
    }

    /// How many bits are set.
    #[must_use]
    pub fn bits_set(&self) -> u64 {
        self.bits
            .iter()
            .map(|byte| u64::from(byte.count_ones()))
            .sum()
    }

    /// The bit indexes of an item with these hashes.
    #[must_use]
    pub fn indexes(&self, hashes: ItemHashes) -> Indexes {
        hashes.indexes(self.hashes, self.size)
    }

    /// Adds an item given its hashes (which must be for this filter's seed).
    pub fn add_hashed(&mut self, hashes: ItemHashes) {
        for index in hashes.indexes(self.hashes, self.size) {
            let word = usize::try_from(index / 8).expect("invariant: index < size fits usize");
            if let Some(byte) = self.bits.get_mut(word) {
                *byte |= 1 << (index % 8);
            }
        }
    }

    /// Whether an item with these hashes may be in the filter.
    #[must_use]
    pub fn has_hashed(&self, hashes: ItemHashes) -> bool {
        hashes.indexes(self.hashes, self.size).all(|index| {
            let word = usize::try_from(index / 8).expect("invariant: index < size fits usize");
            self.bits
                .get(word)
                .is_some_and(|byte| byte & (1 << (index % 8)) != 0)
        })
    }

    /// Adds an item (its UTF-8 bytes).
    pub fn add(&mut self, item: &[u8]) {
        self.add_hashed(ItemHashes::of(item, self.seed));
    }

    /// Whether an item may be in the filter.
    #[must_use]
    pub fn has(&self, item: &[u8]) -> bool {
        self.has_hashed(ItemHashes::of(item, self.seed))
    }

    /// Adds the sync item `"" + round + id`.
    pub fn add_sync_item(&mut self, round: u8, id: &MsgId) {
        self.add_hashed(ItemHashes::of_sync_item(round, id, self.seed));
    }

    /// Whether the sync item `"" + round + id` may be in the filter.
    #[must_use]
    pub fn has_sync_item(&self, round: u8, id: &MsgId) -> bool {
        self.has_hashed(ItemHashes::of_sync_item(round, id, self.seed))
    }

    /// Appends the `saveAsJSON()` form, byte for byte as bloom-filters@3 emits it.
    pub fn write_json(&self, out: &mut String) {
        use std::fmt::Write as _;
        // Writing to a String never fails.
        let _ = write!(
            out,
            "{{\"type\":\"BloomFilter\",\"_size\":{},\"_nbHashes\":{},\"_filter\":{{\"size\":{},\"content\":\"",
            self.size,
            self.hashes,
            bitset_bits(self.size)
        );
        STANDARD.encode_string(&self.bits, out);
        let _ = write!(out, "\"}},\"_seed\":{}}}", self.seed);
    }

    /// The `saveAsJSON()` form as text.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(120 + self.bits.len() * 4 / 3);
        self.write_json(&mut out);
        out
    }

    /// The `saveAsJSON()` form as a JSON value.
    #[must_use]
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.to_json()).expect("invariant: write_json emits valid JSON")
    }

    /// Imports a filter a remote peer sent, checking every dimension first.
    ///
    /// # Errors
    /// [`BloomError`] naming the first check that fails.
    pub fn from_json(value: &Value) -> Result<Self, BloomError> {
        let object = value.as_object().ok_or(BloomError::NotObject)?;
        if object.get("type").and_then(Value::as_str) != Some("BloomFilter") {
            return Err(BloomError::WrongType);
        }
        let size = object
            .get("_size")
            .and_then(Value::as_u64)
            .filter(|size| (1..=SIZE_BITS_MAX).contains(size))
            .ok_or(BloomError::SizeOutOfBounds { max: SIZE_BITS_MAX })?;
        let hashes = object
            .get("_nbHashes")
            .and_then(Value::as_u64)
            .filter(|hashes| (1..=HASHES_MAX).contains(hashes))
            .ok_or(BloomError::HashesOutOfBounds { max: HASHES_MAX })?;
        let seed = object
            .get("_seed")
            .and_then(Value::as_i64)
            .filter(|seed| seed.unsigned_abs() <= SEED_MAGNITUDE_MAX.unsigned_abs())
            .ok_or(BloomError::SeedNotSafeInteger)?;
        let filter = object
            .get("_filter")
            .and_then(Value::as_object)
            .ok_or(BloomError::FilterMalformed)?;
        let filter_size = filter
            .get("size")
            .and_then(Value::as_u64)
            .ok_or(BloomError::FilterMalformed)?;
        let content = filter
            .get("content")
            .and_then(Value::as_str)
            .ok_or(BloomError::FilterMalformed)?;
        let expected_bits = bitset_bits(size);
        if filter_size != expected_bits {
            return Err(BloomError::FilterSizeMismatch {
                expected: expected_bits,
                actual: filter_size,
            });
        }
        let expected_bytes = usize::try_from(expected_bits / 8)
            .expect("invariant: size <= SIZE_BITS_MAX fits in usize");
        // Refuse to decode text that cannot be the right length (base64 is 4 chars per 3
        // bytes, padded), so a hostile content string costs no allocation.
        let encoded_len = expected_bytes.div_ceil(3) * 4;
        if content.len() > encoded_len || content.len() + 4 < encoded_len {
            return Err(BloomError::ContentLengthMismatch {
                expected: expected_bytes,
                actual: content.len() / 4 * 3,
            });
        }
        let bits = STANDARD
            .decode(content)
            .map_err(|_| BloomError::ContentNotBase64)?;
        if bits.len() != expected_bytes {
            return Err(BloomError::ContentLengthMismatch {
                expected: expected_bytes,
                actual: bits.len(),
            });
        }
        Ok(Self {
            size,
            hashes,
            seed,
            bits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_matches_the_reference_size_table() {
        // vectors/bloom.json createSizes.
        for (items, size, bytes) in [
            (5, 120, 15),
            (10, 240, 30),
            (12, 288, 36),
            (100, 2397, 300),
            (1000, 23963, 2996),
            (2000, 47926, 5991),
        ] {
            let filter = BloomFilter::create(items, ERROR_RATE);
            assert_eq!(filter.size(), size);
            assert_eq!(filter.hash_count(), 17);
            assert_eq!(filter.bytes().len(), bytes);
        }
    }

    #[test]
    fn stepped_indexes_equal_the_formula() {
        for (first, second) in [
            (0, 0),
            (1, 2),
            (u32::MAX, u32::MAX),
            (3_037_482_754, 192_640_633),
        ] {
            let hashes = ItemHashes { first, second };
            for size in [1, 2, 7, 8, 120, 136, 137, 480, 863, 47_926, SIZE_BITS_MAX] {
                let stepped: Vec<u64> = hashes.indexes(HASHES_MAX, size).collect();
                let direct: Vec<u64> = (0..HASHES_MAX).map(|i| hashes.index(i, size)).collect();
                assert_eq!(stepped, direct, "h1 {first} h2 {second} size {size}");
            }
        }
    }

    #[test]
    fn round_trips_through_json() {
        let mut filter = BloomFilter::create(20, ERROR_RATE);
        filter.add(b"hello");
        let back = BloomFilter::from_json(&filter.to_value()).expect("valid");
        assert_eq!(back, filter);
        assert!(back.has(b"hello"));
        assert!(!back.has(b"world"));
    }

    #[test]
    fn hostile_dimensions_are_refused() {
        let good = BloomFilter::create(10, ERROR_RATE).to_value();
        let with = |key: &str, value: Value| {
            let mut copy = good.clone();
            *copy.pointer_mut(&format!("/{key}")).expect("field exists") = value;
            BloomFilter::from_json(&copy)
        };
        assert_eq!(
            with("_size", Value::from(SIZE_BITS_MAX + 1)),
            Err(BloomError::SizeOutOfBounds { max: SIZE_BITS_MAX })
        );
        assert_eq!(
            with("_nbHashes", Value::from(1000)),
            Err(BloomError::HashesOutOfBounds { max: HASHES_MAX })
        );
        assert_eq!(
            with("_seed", Value::from(1.5)),
            Err(BloomError::SeedNotSafeInteger)
        );
        assert!(matches!(
            with("_size", Value::from(2048)),
            Err(BloomError::FilterSizeMismatch { .. })
        ));
        assert_eq!(
            with("type", Value::from("CountingBloomFilter")),
            Err(BloomError::WrongType)
        );
        let mut short = good.clone();
        *short.pointer_mut("/_filter/content").expect("field exists") = Value::from("AAAA");
        assert!(matches!(
            BloomFilter::from_json(&short),
            Err(BloomError::ContentLengthMismatch { .. })
        ));
    }
}
