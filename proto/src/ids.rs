//! Identifiers: 32-byte values written in base58 (Bitcoin alphabet), stored inline.
//!
//! Every identifier in PPPPP is the base58 encoding of 32 bytes: msg IDs (the first 32 bytes of
//! SHA-512 over canonical metadata), tangle IDs and account IDs (both are msg IDs of a root), and
//! Ed25519 public keys ("sigkeys"). They are compared, sorted, hashed into bloom filters and
//! collated as *strings*, so we keep the string form inline (no allocation, `Copy`) and order
//! values by it. Byte order of the ASCII string equals JavaScript's default (UTF-16 code unit)
//! string order, which is what the reference uses for `prev` and `accountTips` sorting.
//! protocol.md §2.1, §3.2.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::base58::DecodeError;

/// Longest base58 encoding of 32 bytes (2^256 - 1 needs 44 digits).
const B58_LEN_MAX: usize = 44;
/// Shortest base58 encoding of 32 bytes (32 zero bytes become 32 `1`s).
const B58_LEN_MIN: usize = 32;

/// Why a string is not a valid 32-byte base58 identifier.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdError {
    /// The string contains characters outside the base58 alphabet.
    #[error("{0:?} is not a base58 string")]
    NotBase58(String),
    /// The string decodes, but not to 32 bytes.
    #[error("{input:?} decodes to {len} bytes, not 32")]
    WrongLength {
        /// The offending string.
        input: String,
        /// How many bytes it decodes to.
        len: usize,
    },
    /// The string is far longer than any ID; it was not read (base58 costs the square of
    /// its length), nor is it repeated here.
    #[error("a string of {len} bytes is not an ID (a base58 ID has at most 44 characters)")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

/// Decodes a base58 string, returning how many bytes it holds (or the bytes, if exactly 32).
///
/// # Errors
/// [`IdError`] when the string is not base58 or does not decode to 32 bytes.
pub fn decode_32(input: &str) -> Result<[u8; 32], IdError> {
    if let Some(bytes) = decode_32_fixed(input) {
        return Ok(bytes);
    }
    // A 32-byte value is at most 44 digits; decoding a somewhat longer string would fail
    // anyway, but we want the exact length for the error message (as the reference gives).
    let bytes = crate::base58::decode(input).map_err(|error| match error {
        DecodeError::NotBase58 => IdError::NotBase58(input.to_owned()),
        DecodeError::TooLong { len } => IdError::TooLong { len },
    })?;
    let len = bytes.len();
    <[u8; 32]>::try_from(bytes).map_err(|_| IdError::WrongLength {
        input: input.to_owned(),
        len,
    })
}

/// [`decode_32`] when `input` decodes to exactly 32 bytes, in four 64-bit limbs fed ten
/// digits at a time, without allocating: what every msg ID, key and tangle ID a peer sends
/// costs, and what the sync index pays per new msg for its reconcile item. `None` for any
/// other input (not base58, another length, longer than an ID's 44 digits), which the general
/// decoder then reads to say why.
fn decode_32_fixed(input: &str) -> Option<[u8; 32]> {
    let digits = input.as_bytes();
    if digits.len() > B58_LEN_MAX {
        return None;
    }
    let zeros = digits.iter().take_while(|digit| **digit == b'1').count();
    let rest = digits.get(zeros..).unwrap_or_default();
    // Little-endian; a number that does not fit four limbs is more than 32 bytes.
    let mut limbs = [0u64; 4];
    crate::base58::digits_into_words(rest, &mut limbs).ok()?;
    let mut bytes = [0u8; 32];
    for (chunk, limb) in bytes.chunks_exact_mut(8).zip(limbs.iter().rev()) {
        chunk.copy_from_slice(&limb.to_be_bytes());
    }
    // Base58 writes each leading zero byte as a `1` and the rest as the number.
    let number_len = 32 - bytes.iter().take_while(|byte| **byte == 0).count();
    (zeros + number_len == 32).then_some(bytes)
}

/// How long a base58 string is when decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodedLen {
    /// It decodes to this many bytes.
    Bytes(usize),
    /// A character is outside the alphabet.
    NotBase58,
    /// It is longer than [`crate::base58::DECODE_DIGITS_MAX`] and was not read.
    TooLong,
}

/// Counts the bytes a base58 string decodes to, refusing (unread) text longer than
/// [`crate::base58::DECODE_DIGITS_MAX`].
#[must_use]
pub fn decoded_len(input: &str) -> DecodedLen {
    match crate::base58::decode(input) {
        Ok(bytes) => DecodedLen::Bytes(bytes.len()),
        Err(DecodeError::NotBase58) => DecodedLen::NotBase58,
        Err(DecodeError::TooLong { .. }) => DecodedLen::TooLong,
    }
}

/// The inline storage shared by all identifier newtypes.
#[derive(Clone, Copy)]
struct B58 {
    len: u8,
    text: [u8; B58_LEN_MAX],
}

impl B58 {
    fn from_bytes(bytes: &[u8; 32]) -> Self {
        let mut text = [0u8; B58_LEN_MAX];
        let len = crate::base58::encode_into(bytes, &mut text)
            .expect("invariant: 32 bytes always fit in 44 base58 digits");
        debug_assert!((B58_LEN_MIN..=B58_LEN_MAX).contains(&len));
        Self {
            len: u8::try_from(len).expect("invariant: len <= 44"),
            text,
        }
    }

    fn parse(input: &str) -> Result<Self, IdError> {
        if input.len() > B58_LEN_MAX || input.len() < B58_LEN_MIN {
            // Still report the decoded length exactly, as the reference does, unless the
            // string is too long to be worth reading.
            return match decoded_len(input) {
                DecodedLen::NotBase58 => Err(IdError::NotBase58(input.to_owned())),
                DecodedLen::TooLong => Err(IdError::TooLong { len: input.len() }),
                DecodedLen::Bytes(len) => Err(IdError::WrongLength {
                    input: input.to_owned(),
                    len,
                }),
            };
        }
        let bytes = decode_32(input)?;
        // Base58 has exactly one spelling per byte string, so the input is the canonical
        // text: keep it rather than encoding the bytes again.
        let mut text = [0u8; B58_LEN_MAX];
        let len = input.len();
        text.get_mut(..len)
            .expect("invariant: length checked above")
            .copy_from_slice(input.as_bytes());
        let parsed = Self {
            len: u8::try_from(len).expect("invariant: len <= 44"),
            text,
        };
        debug_assert_eq!(parsed.as_str(), Self::from_bytes(&bytes).as_str());
        Ok(parsed)
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("invariant: base58 digits are ASCII")
    }

    /// The texts' string order, cheaply: B-trees and sorts keyed by IDs compare them all the
    /// time. Every digit is a nonzero ASCII byte and unused digits are zero, so the fixed
    /// arrays compare as the strings do (a proper prefix is smaller either way), and their first
    /// eight bytes, read as one big-endian number, settle nearly every comparison of distinct
    /// IDs without a call to `memcmp`.
    fn text_order(&self, other: &Self) -> Ordering {
        let head = |text: &[u8; B58_LEN_MAX]| {
            let [a, b, c, d, e, f, g, h, ..] = *text;
            u64::from_be_bytes([a, b, c, d, e, f, g, h])
        };
        head(&self.text)
            .cmp(&head(&other.text))
            .then_with(|| self.text.cmp(&other.text))
    }

    /// The text's bytes, without the UTF-8 check `as_str` makes (comparisons are hot).
    fn as_bytes(&self) -> &[u8] {
        self.text.get(..usize::from(self.len)).unwrap_or_default()
    }

    fn to_bytes(self) -> [u8; 32] {
        decode_32(self.as_str()).expect("invariant: stored text is a valid 32-byte base58 string")
    }
}

macro_rules! b58_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $name(B58);

        impl $name {
            /// Encodes 32 raw bytes.
            #[must_use]
            pub fn from_bytes(bytes: &[u8; 32]) -> Self {
                Self(B58::from_bytes(bytes))
            }

            /// Parses a base58 string that must decode to exactly 32 bytes.
            ///
            /// # Errors
            /// [`IdError`] otherwise.
            pub fn parse(input: &str) -> Result<Self, IdError> {
                B58::parse(input).map(Self)
            }

            /// The base58 text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// The base58 text as bytes (ASCII).
            #[must_use]
            pub fn as_bytes(&self) -> &[u8] {
                self.0.as_bytes()
            }

            /// The 32 decoded bytes.
            #[must_use]
            pub fn to_bytes(self) -> [u8; 32] {
                self.0.to_bytes()
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                // Unused digits are always zero, so the fixed-size arrays compare exactly.
                self.0.len == other.0.len && self.0.text == other.0.text
            }
        }
        impl Eq for $name {}
        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $name {
            /// String order, which for base58 (ASCII) text equals JavaScript's default sort.
            fn cmp(&self, other: &Self) -> Ordering {
                self.0.text_order(&other.0)
            }
        }
        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.as_bytes().hash(state);
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(input: &str) -> Result<Self, IdError> {
                Self::parse(input)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

b58_newtype!(
    /// A msg ID: base58 of the first 32 bytes of SHA-512 over the msg's canonical metadata.
    ///
    /// Tangle IDs and account IDs are msg IDs too (of the tangle's root and of the account's
    /// root msg); see [`TangleId`] and [`AccountId`].
    MsgId
);

b58_newtype!(
    /// An Ed25519 public key in base58: a msg's `sigkey`, and also a peer's network identity.
    PubKey
);

b58_newtype!(
    /// A data hash: base58 of the first 32 bytes of SHA-512 over the canonical JSON of `data`.
    DataHash
);

/// A tangle is named by the msg ID of its root.
pub type TangleId = MsgId;

/// An account is named by the msg ID of its root (the account tangle's ID).
pub type AccountId = MsgId;

impl PubKey {
    /// The same 32 bytes read as a msg ID. Only meaningful where the protocol mixes the two
    /// (it never does for validation); kept for tooling that prints keys beside IDs.
    #[must_use]
    pub fn as_msg_id(self) -> MsgId {
        MsgId(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// IDs order as their texts do, whatever prefix and length they share (IDs made from
        /// bytes that share a prefix, leading zero bytes included, share text prefixes).
        #[test]
        fn ids_order_as_their_texts(
            shared in 0..=32usize,
            zeros in 0..=3usize,
            a in any::<[u8; 32]>(),
            b in any::<[u8; 32]>(),
        ) {
            let mut b = b;
            for (to, from) in b.iter_mut().zip(a).take(shared) {
                *to = from;
            }
            let mut a = a;
            a.iter_mut().take(zeros).for_each(|byte| *byte = 0);
            for (x, y) in [(a, b), (b, a), (a, a)] {
                let (x, y) = (MsgId::from_bytes(&x), MsgId::from_bytes(&y));
                prop_assert_eq!(x.cmp(&y), x.as_str().cmp(y.as_str()), "{} {}", x, y);
                prop_assert_eq!(x == y, x.as_str() == y.as_str());
            }
        }
    }

    #[test]
    fn ids_of_every_length_order_as_their_texts() {
        // The shortest text (32 zero bytes), the longest, and the longest without its last
        // digit, which still decodes to 32 bytes: one text a prefix of another.
        let longest = MsgId::from_bytes(&[0xff; 32]);
        let text = longest.as_str();
        assert_eq!(text.len(), B58_LEN_MAX);
        let mut ids = vec![MsgId::from_bytes(&[0; 32]), longest];
        let prefix = text.get(..B58_LEN_MAX - 1).expect("ASCII");
        ids.push(MsgId::parse(prefix).expect("a shorter valid ID"));
        ids.push(MsgId::from_bytes(&[0x80; 32]));
        for x in &ids {
            for y in &ids {
                assert_eq!(x.cmp(y), x.as_str().cmp(y.as_str()), "{x} {y}");
            }
        }
    }

    proptest! {
        /// The fixed 32-byte decoder gives what the general one gives: the bytes of every ID
        /// (whatever its leading zero bytes), and for other text (a digit changed, added or
        /// dropped, a character outside the alphabet) nothing, where the general one finds
        /// no 32 bytes either.
        #[test]
        fn the_fixed_decoder_agrees_with_the_general_one(
            bytes in any::<[u8; 32]>(),
            zeros in 0..=32usize,
            edit in 0..4u8,
            at in any::<prop::sample::Index>(),
            digit in prop::sample::select(b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0OIl+".to_vec()),
        ) {
            let mut bytes = bytes;
            for byte in bytes.iter_mut().take(zeros) {
                *byte = 0;
            }
            let text = MsgId::from_bytes(&bytes).as_str().to_owned();
            prop_assert_eq!(decode_32_fixed(&text), Some(bytes));
            let mut edited = text.into_bytes();
            let place = at.index(edited.len() + 1);
            match edit {
                0 => edited.insert(place, digit),
                1 => { edited.remove(place.min(edited.len() - 1)); }
                2 => edited.insert(0, digit),
                _ => if let Some(slot) = edited.get_mut(place) { *slot = digit },
            }
            let edited = String::from_utf8(edited).expect("ASCII");
            let general = crate::base58::decode(&edited)
                .ok()
                .and_then(|decoded| <[u8; 32]>::try_from(decoded).ok());
            prop_assert_eq!(decode_32_fixed(&edited), general, "{}", edited);
        }
    }

    #[test]
    fn the_fixed_decoder_leaves_other_lengths_to_the_general_one() {
        // 33 bytes (one more zero byte, or a number past 2^256) and 31.
        let ones = "1".repeat(33);
        assert_eq!(decode_32_fixed(&ones), None);
        assert!(matches!(
            decode_32(&ones),
            Err(IdError::WrongLength { len: 33, .. })
        ));
        let past = "JEKNVnkbo3jma5nREBBJCDoXFVeKkD56V3xKrvRmWxFH";
        assert_eq!(decode_32_fixed(past), None, "2^256 and above do not fit");
        assert!(matches!(
            decode_32(past),
            Err(IdError::WrongLength { len: 33, .. })
        ));
        let short = "1".repeat(31);
        assert_eq!(decode_32_fixed(&short), None);
        assert_eq!(decode_32_fixed("0OIl"), None);
        assert_eq!(decode_32_fixed(""), None);
    }

    #[test]
    fn zero_bytes_are_ones() {
        let id = MsgId::from_bytes(&[0u8; 32]);
        assert_eq!(id.as_str(), "11111111111111111111111111111111");
        assert_eq!(id.to_bytes(), [0u8; 32]);
    }

    #[test]
    fn parse_rejects_wrong_length_and_alphabet() {
        assert_eq!(
            MsgId::parse("19p"),
            Err(IdError::WrongLength {
                input: "19p".into(),
                len: 3
            })
        );
        assert!(matches!(MsgId::parse("0OIl"), Err(IdError::NotBase58(_))));
        let long = "2".repeat(45);
        assert!(matches!(
            MsgId::parse(&long),
            Err(IdError::WrongLength { .. })
        ));
        let huge = "2".repeat(1_000_000);
        assert_eq!(
            MsgId::parse(&huge),
            Err(IdError::TooLong { len: 1_000_000 })
        );
    }

    #[test]
    fn order_is_string_order() {
        let low = MsgId::from_bytes(&[0u8; 32]);
        let high = MsgId::from_bytes(&[255u8; 32]);
        assert_eq!(low.cmp(&high), low.as_str().cmp(high.as_str()));
        assert_eq!(
            high.as_str(),
            "JEKNVnkbo3jma5nREBBJCDoXFVeKkD56V3xKrvRmWxFG"
        );
    }
}
