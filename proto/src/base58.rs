//! Base58 with the Bitcoin alphabet (npm bs58 5.0.0), fast for the sizes PPPPP uses.
//!
//! Every msg carries a 64-byte signature and several 32-byte IDs in base58, and the general
//! `bs58` crate converts one byte (or digit) at a time, which made base58 a quarter of a
//! sync's cost. Here the number is held in limbs of `58^5` fed four bytes at a time
//! (encoding), or in 64-bit words fed ten digits at a time (decoding): same results, many
//! times faster.
//! Encoding inputs beyond the stack limbs' reach go through `bs58`.
//!
//! Base58 costs the square of its length, so [`decode`] refuses text longer than
//! [`DECODE_DIGITS_MAX`] before looking at it: every base58 value in PPPPP (32-byte IDs and
//! keys, 64-byte signatures) is far shorter, and a peer must not make us spend seconds on
//! one field.

/// The Bitcoin alphabet.
const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// `58^5`, the encoding limb base (below `2^30`, so a limb times `2^32` fits in a `u64`).
const LIMB: u64 = 656_356_768;

/// Longest input (bytes to encode, digits to decode) handled on the stack.
const INPUT_MAX: usize = 128;

/// Limbs needed for [`INPUT_MAX`] bytes or digits, with room to spare.
const LIMBS: usize = 48;

/// Digits [`decode`] feeds at a time (`58^10 < 2^59`).
const DECODE_CHUNK_DIGITS: usize = 10;

/// 64-bit words [`decode`] needs for [`DECODE_DIGITS_MAX`] digits (`58^128 < 2^750`).
const DECODE_WORDS: usize = 12;

/// The low 64 bits.
fn low_word(value: u128) -> u64 {
    u64::try_from(value & u128::from(u64::MAX)).unwrap_or_default()
}

/// Longest text [`decode`] reads: 128 digits hold 93 bytes, more than any PPPPP value
/// (IDs and keys are 32 bytes, at most 44 digits; signatures 64 bytes, at most 88 digits).
pub const DECODE_DIGITS_MAX: usize = INPUT_MAX;

/// Why a string was not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A character is outside the alphabet.
    NotBase58,
    /// The text is longer than [`DECODE_DIGITS_MAX`]; it was not read.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

/// Digit values by ASCII code; 58 marks characters outside the alphabet. (Indexing in a
/// constant cannot fail at run time: an out-of-bounds index stops the build.)
#[allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
const VALUES: [u8; 128] = {
    let mut values = [58u8; 128];
    let mut index = 0;
    while index < ALPHABET.len() {
        values[ALPHABET[index] as usize] = index as u8;
        index += 1;
    }
    values
};

/// The value of a base58 digit; `None` outside the alphabet.
fn digit_value(byte: u8) -> Option<u64> {
    VALUES
        .get(usize::from(byte))
        .filter(|value| **value < 58)
        .map(|value| u64::from(*value))
}

/// Appends the base58 encoding of `bytes` to `out`.
pub fn encode_onto(bytes: &[u8], out: &mut String) {
    if bytes.len() > INPUT_MAX {
        out.push_str(&bs58::encode(bytes).into_string());
        return;
    }
    encode_with(bytes, |digit| out.push(char::from(digit)));
}

/// Writes the base58 encoding of `bytes` into `out`, returning its length; `None` (and `out`
/// partly written) when it does not fit.
pub fn encode_into(bytes: &[u8], out: &mut [u8]) -> Option<usize> {
    if bytes.len() > INPUT_MAX {
        return bs58::encode(bytes).onto(out).ok();
    }
    let mut len = 0;
    let mut fits = true;
    encode_with(bytes, |digit| {
        match out.get_mut(len) {
            Some(slot) => *slot = digit,
            None => fits = false,
        }
        len += 1;
    });
    fits.then_some(len)
}

/// Emits the digits of `bytes` (at most [`INPUT_MAX`] of them), most significant first.
fn encode_with(bytes: &[u8], mut push: impl FnMut(u8)) {
    let zeros = bytes.iter().take_while(|byte| **byte == 0).count();
    let rest = bytes.get(zeros..).unwrap_or_default();
    let mut limbs = [0u64; LIMBS];
    let mut used = 0;
    // Feed the number four bytes at a time, the first chunk taking the remainder.
    let first = rest.len() % 4;
    let chunks = std::iter::once(rest.get(..first).unwrap_or_default())
        .chain(rest.get(first..).unwrap_or_default().chunks(4));
    for chunk in chunks.filter(|chunk| !chunk.is_empty()) {
        let mut carry = chunk
            .iter()
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
        let multiplier = 1u64 << (8 * chunk.len());
        for limb in limbs.iter_mut().take(used) {
            let value = *limb * multiplier + carry;
            *limb = value % LIMB;
            carry = value / LIMB;
        }
        while carry > 0 {
            if let Some(limb) = limbs.get_mut(used) {
                *limb = carry % LIMB;
                used += 1;
            }
            carry /= LIMB;
        }
    }
    for _ in 0..zeros {
        push(b'1');
    }
    let mut leading = true;
    for limb in limbs.iter().take(used).rev() {
        let mut digits = [0u8; 5];
        let mut value = *limb;
        for slot in digits.iter_mut().rev() {
            *slot = ALPHABET
                .get(usize::try_from(value % 58).unwrap_or_default())
                .copied()
                .unwrap_or(b'1');
            value /= 58;
        }
        for digit in digits {
            if leading && digit == b'1' {
                continue;
            }
            leading = false;
            push(digit);
        }
    }
}

/// Why [`digits_into_words`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WordsError {
    /// A character is outside the alphabet.
    NotBase58,
    /// The number needs more words than given.
    Overflow,
}

/// Reads base58 `digits` (leading `1`s, the zero bytes, already taken off) as a number in
/// little-endian 64-bit `words`, returning how many of them it needs.
///
/// Ten digits are fed at a time: `58^10` is below `2^59`, so a word times it plus a carry
/// fits in a `u128`, and the carry out stays below it.
pub(crate) fn digits_into_words(digits: &[u8], words: &mut [u64]) -> Result<usize, WordsError> {
    let mut used = 0;
    let first = digits.len() % DECODE_CHUNK_DIGITS;
    let chunks = std::iter::once(digits.get(..first).unwrap_or_default()).chain(
        digits
            .get(first..)
            .unwrap_or_default()
            .chunks(DECODE_CHUNK_DIGITS),
    );
    for chunk in chunks.filter(|chunk| !chunk.is_empty()) {
        let mut carry = 0u64;
        let mut multiplier = 1u64;
        for digit in chunk {
            carry = carry * 58 + digit_value(*digit).ok_or(WordsError::NotBase58)?;
            multiplier *= 58;
        }
        for word in words.iter_mut().take(used) {
            let value = u128::from(*word) * u128::from(multiplier) + u128::from(carry);
            *word = low_word(value);
            carry = low_word(value >> 64);
        }
        if carry > 0 {
            *words.get_mut(used).ok_or(WordsError::Overflow)? = carry;
            used += 1;
        }
    }
    Ok(used)
}

/// The base58 encoding of `bytes`.
#[must_use]
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    encode_onto(bytes, &mut out);
    out
}

/// Decodes a base58 string of at most [`DECODE_DIGITS_MAX`] digits.
///
/// # Errors
/// [`DecodeError::TooLong`] for longer text (checked first, in constant time), then
/// [`DecodeError::NotBase58`] when a character is outside the alphabet.
pub fn decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    if text.len() > DECODE_DIGITS_MAX {
        return Err(DecodeError::TooLong { len: text.len() });
    }
    let digits = text.as_bytes();
    let zeros = digits.iter().take_while(|digit| **digit == b'1').count();
    let rest = digits.get(zeros..).unwrap_or_default();
    let mut words = [0u64; DECODE_WORDS];
    let used = digits_into_words(rest, &mut words).map_err(|error| match error {
        // Twelve words hold any number of at most `DECODE_DIGITS_MAX` digits.
        WordsError::NotBase58 | WordsError::Overflow => DecodeError::NotBase58,
    })?;
    let mut bytes = Vec::with_capacity(zeros + 8 * used);
    bytes.resize(zeros, 0);
    let mut leading = true;
    for word in words.iter().take(used).rev() {
        for byte in word.to_be_bytes() {
            if leading && byte == 0 {
                continue;
            }
            leading = false;
            bytes.push(byte);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_bs58_on_edges() {
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0; 32],
            vec![0xff; 32],
            vec![0xff; 64],
            vec![0, 0, 1, 2, 3],
            (0..93).collect(),
            vec![1; 93],
        ];
        for bytes in cases {
            let ours = encode(&bytes);
            assert_eq!(ours, bs58::encode(&bytes).into_string(), "{bytes:?}");
            assert_eq!(decode(&ours), Ok(bytes));
        }
        let long: Vec<u8> = (0..=255).collect();
        assert_eq!(encode(&long), bs58::encode(&long).into_string());
        assert_eq!(decode("0OIl"), Err(DecodeError::NotBase58));
        assert_eq!(decode("1112"), Ok(vec![0, 0, 0, 1]));
    }

    #[test]
    fn long_text_is_refused_unread() {
        let longest = "2".repeat(DECODE_DIGITS_MAX);
        assert!(decode(&longest).is_ok());
        // One digit more, even with a character outside the alphabet, is refused by length.
        let long = format!("0{longest}");
        assert_eq!(
            decode(&long),
            Err(DecodeError::TooLong {
                len: DECODE_DIGITS_MAX + 1
            })
        );
    }

    #[test]
    fn matches_bs58_on_many_values() {
        let mut state = 0x1234_5678_9abc_def0_u64;
        for round in 0..2000 {
            let len = round % 90;
            let bytes: Vec<u8> = (0..len)
                .map(|index| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let byte = u8::try_from(state >> 56).unwrap_or_default();
                    // Leading zero bytes now and then.
                    if index < round % 4 { 0 } else { byte }
                })
                .collect();
            let ours = encode(&bytes);
            assert_eq!(ours, bs58::encode(&bytes).into_string());
            assert_eq!(decode(&ours), Ok(bytes));
            let text: String = ours.chars().rev().collect();
            assert_eq!(
                decode(&text).ok(),
                bs58::decode(&text).into_vec().ok(),
                "{text}"
            );
        }
    }
}
