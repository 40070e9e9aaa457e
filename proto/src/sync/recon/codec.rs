//! The reconciliation message's bytes: negentropy protocol v1 with the timestamp replaced by
//! the depth key (docs/sync-extension.md, "Reconciliation messages").
//!
//! ```text
//! message = version(0x70) range*
//! range   = bound mode(varint) payload
//! bound   = varint(0 for infinity, else key − previous bound's key + 1)
//!           varint(prefix length, 0..=32) prefix
//! payload = Skip: nothing | Fingerprint: 16 bytes | IdList: varint(count) (32-byte ID)*
//! ```
//!
//! Ranges are contiguous: each one's lower bound is the previous one's upper bound, the
//! first one's is [`Bound::MIN`]. What lies above the last range is skipped, so a message
//! of the version byte alone says "nothing left to reconcile". [`decode`] enforces every
//! bound named in [`super`] and refuses bytes by the first rule they break.

use thiserror::Error;

use super::fingerprint::{FINGERPRINT_BYTES, Fingerprint};
use super::item::{Bound, ID_BYTES, Id, KEY_MAX};
pub use super::varint::{VARINT_BYTES_MAX, write_varint};
use super::{IDLIST_ITEMS_ACCEPTED_MAX, RECONCILE_FRAME_BYTES_MAX, RECONCILE_RANGES_MAX, VERSION};

/// Most bytes one encoded bound takes: key and prefix-length varints, then the prefix.
pub const BOUND_BYTES_MAX: usize = VARINT_BYTES_MAX + 1 + ID_BYTES;

/// Most bytes one Fingerprint range takes.
pub const FINGERPRINT_RANGE_BYTES_MAX: usize = BOUND_BYTES_MAX + 1 + FINGERPRINT_BYTES;

/// What a range says about the items in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Nothing to do here.
    Skip,
    /// The sender's fingerprint of its items in the range.
    Fingerprint(Fingerprint),
    /// All of the sender's IDs in the range.
    IdList(Vec<Id>),
}

impl Payload {
    fn mode(&self) -> u64 {
        match self {
            Self::Skip => 0,
            Self::Fingerprint(_) => 1,
            Self::IdList(_) => 2,
        }
    }
}

/// One range: everything from the previous range's upper bound up to (excluding) `upper`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// The exclusive upper bound.
    pub upper: Bound,
    /// What the sender says about it.
    pub payload: Payload,
}

/// A decoded reconciliation message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The ranges, in order.
    pub ranges: Vec<Range>,
}

/// Why received bytes are not a reconciliation message. One variant per rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Not even a version byte.
    #[error("empty reconciliation message")]
    Empty,
    /// A version we do not speak (we answer with ours, see the spec's "Version").
    #[error("unsupported reconciliation version {0:#04x}")]
    UnsupportedVersion(u8),
    /// More than `RECONCILE_FRAME_BYTES_MAX` bytes.
    #[error("reconciliation message of {0} bytes, above RECONCILE_FRAME_BYTES_MAX")]
    FrameTooLarge(usize),
    /// More than `RECONCILE_RANGES_MAX` ranges.
    #[error("more than RECONCILE_RANGES_MAX ranges")]
    TooManyRanges,
    /// The bytes end inside a varint.
    #[error("truncated varint")]
    VarintTruncated,
    /// A varint longer than a `u64` allows.
    #[error("varint overflows 64 bits")]
    VarintOverflow,
    /// A bound's key above the largest depth.
    #[error("bound key above KEY_MAX")]
    KeyTooLarge,
    /// A prefix length above 32.
    #[error("bound prefix of {0} bytes, above 32")]
    PrefixTooLong(u64),
    /// The bytes end inside a bound's prefix.
    #[error("truncated bound prefix")]
    PrefixTruncated,
    /// Infinity with an ID prefix.
    #[error("infinite bound with an ID prefix")]
    InfinityWithPrefix,
    /// A range follows one that ends at infinity.
    #[error("range after the infinite bound")]
    RangeAfterInfinity,
    /// A bound at or below the previous one (ranges must be non-empty and in order).
    #[error("bound not above the previous bound")]
    BoundNotIncreasing,
    /// A mode other than 0, 1, 2.
    #[error("unknown range mode {0}")]
    UnknownMode(u64),
    /// The bytes end inside a fingerprint.
    #[error("truncated fingerprint")]
    FingerprintTruncated,
    /// An IdList above `IDLIST_ITEMS_ACCEPTED_MAX` IDs.
    #[error("IdList of {0} IDs, above IDLIST_ITEMS_ACCEPTED_MAX")]
    IdListTooLong(u64),
    /// An IdList whose count promises more IDs than the bytes hold.
    #[error("IdList count {0} disagrees with the bytes left")]
    IdListTruncated(u64),
}

/// A cursor over received bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for (i, byte) in self.bytes.iter().enumerate() {
            if value >> 57 != 0 {
                return Err(DecodeError::VarintOverflow);
            }
            value = (value << 7) | u64::from(byte & 0x7f);
            if byte & 0x80 == 0 {
                self.bytes = self.bytes.get(i + 1..).unwrap_or_default();
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTruncated)
    }

    fn take(&mut self, len: usize) -> Option<&[u8]> {
        if self.bytes.len() < len {
            return None;
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Some(head)
    }
}

/// Writes ranges one at a time, keeping the key delta state and the counts the bounds need.
#[derive(Debug)]
pub struct Encoder {
    bytes: Vec<u8>,
    last_key: u64,
    ranges: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An empty message (the version byte).
    #[must_use]
    pub fn new() -> Self {
        Self {
            bytes: vec![VERSION],
            last_key: 0,
            ranges: 0,
        }
    }

    /// Bytes written so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether no range was written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ranges == 0
    }

    /// Ranges written so far.
    #[must_use]
    pub fn ranges(&self) -> usize {
        self.ranges
    }

    /// Appends one range. The caller keeps bounds increasing and within the named limits.
    pub fn push(&mut self, upper: &Bound, payload: &Payload) {
        if upper.is_infinity() {
            self.bytes.push(0);
        } else {
            write_varint(&mut self.bytes, upper.key - self.last_key + 1);
            self.last_key = upper.key;
        }
        write_varint(&mut self.bytes, u64::from(upper.prefix_len));
        self.bytes.extend_from_slice(upper.prefix());
        write_varint(&mut self.bytes, payload.mode());
        match payload {
            Payload::Skip => {}
            Payload::Fingerprint(fingerprint) => self.bytes.extend_from_slice(fingerprint),
            Payload::IdList(ids) => {
                write_varint(
                    &mut self.bytes,
                    u64::try_from(ids.len()).unwrap_or(u64::MAX),
                );
                for id in ids {
                    self.bytes.extend_from_slice(id);
                }
            }
        }
        self.ranges += 1;
    }

    /// The finished message.
    #[must_use]
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// The bytes of `message` (no limit is checked: [`decode`] checks them on the other side).
#[must_use]
pub fn encode(message: &Message) -> Vec<u8> {
    let mut encoder = Encoder::new();
    for range in &message.ranges {
        encoder.push(&range.upper, &range.payload);
    }
    encoder.finish()
}

/// Decodes and checks a received message.
///
/// # Errors
///
/// The first rule the bytes break, see [`DecodeError`].
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let (&version, rest) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    if bytes.len() > RECONCILE_FRAME_BYTES_MAX {
        return Err(DecodeError::FrameTooLarge(bytes.len()));
    }
    let mut reader = Reader { bytes: rest };
    let mut message = Message::default();
    let mut previous = Bound::MIN;
    while !reader.bytes.is_empty() {
        if message.ranges.len() == RECONCILE_RANGES_MAX {
            return Err(DecodeError::TooManyRanges);
        }
        if previous.is_infinity() {
            return Err(DecodeError::RangeAfterInfinity);
        }
        let upper = decode_bound(&mut reader, previous.key)?;
        if !upper.cmp_point(&previous).is_gt() {
            return Err(DecodeError::BoundNotIncreasing);
        }
        let payload = decode_payload(&mut reader)?;
        message.ranges.push(Range { upper, payload });
        previous = upper;
    }
    Ok(message)
}

fn decode_bound(reader: &mut Reader<'_>, last_key: u64) -> Result<Bound, DecodeError> {
    let encoded_key = reader.varint()?;
    let key = if encoded_key == 0 {
        u64::MAX
    } else {
        let key = last_key
            .checked_add(encoded_key - 1)
            .ok_or(DecodeError::KeyTooLarge)?;
        if key > KEY_MAX {
            return Err(DecodeError::KeyTooLarge);
        }
        key
    };
    let prefix_len = reader.varint()?;
    let len = usize::try_from(prefix_len).unwrap_or(usize::MAX);
    if len > ID_BYTES {
        return Err(DecodeError::PrefixTooLong(prefix_len));
    }
    if key == u64::MAX && len != 0 {
        return Err(DecodeError::InfinityWithPrefix);
    }
    let prefix = reader.take(len).ok_or(DecodeError::PrefixTruncated)?;
    let mut padded_id = [0; ID_BYTES];
    padded_id
        .iter_mut()
        .zip(prefix)
        .for_each(|(to, from)| *to = *from);
    Ok(Bound {
        key,
        padded_id,
        prefix_len: u8::try_from(len).unwrap_or(32),
    })
}

fn decode_payload(reader: &mut Reader<'_>) -> Result<Payload, DecodeError> {
    match reader.varint()? {
        0 => Ok(Payload::Skip),
        1 => {
            let bytes = reader
                .take(FINGERPRINT_BYTES)
                .ok_or(DecodeError::FingerprintTruncated)?;
            let mut fingerprint = [0; FINGERPRINT_BYTES];
            fingerprint.copy_from_slice(bytes);
            Ok(Payload::Fingerprint(fingerprint))
        }
        2 => {
            let count = reader.varint()?;
            if count > IDLIST_ITEMS_ACCEPTED_MAX as u64 {
                return Err(DecodeError::IdListTooLong(count));
            }
            let len = usize::try_from(count).unwrap_or(usize::MAX) * ID_BYTES;
            let bytes = reader
                .take(len)
                .ok_or(DecodeError::IdListTruncated(count))?;
            let ids = bytes
                .chunks_exact(ID_BYTES)
                .map(|chunk| {
                    let mut id = [0; ID_BYTES];
                    id.copy_from_slice(chunk);
                    id
                })
                .collect();
            Ok(Payload::IdList(ids))
        }
        mode => Err(DecodeError::UnknownMode(mode)),
    }
}
