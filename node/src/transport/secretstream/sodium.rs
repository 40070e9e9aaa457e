//! libsodium's `crypto_secretstream_xchacha20poly1305`, from `dryoc`.
//!
//! The construction (HChaCha20 subkey, ChaCha20-IETF keystream, Poly1305 over
//! the 64-byte tag block with libsodium's padding quirk, nonce update and
//! rekey) is dryoc's `classic::crypto_secretstream_xchacha20poly1305`, which
//! dryoc tests against libsodium itself. What stays here is the shape
//! pull-secretstream needs: no additional data, a header the caller supplies,
//! and fixed-size output buffers.
//!
//! Both directions initialise with libsodium's `init_pull`: a state is the same
//! whichever way it runs, and `init_push` would draw the header from OS entropy
//! inside dryoc, where simulations could not seed it.

use dryoc::classic::crypto_secretstream_xchacha20poly1305 as sodium;
use dryoc::constants::{
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_ABYTES,
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_HEADERBYTES,
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_FINAL,
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_MESSAGE,
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_PUSH,
    CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_REKEY,
};

/// `crypto_secretstream_xchacha20poly1305_HEADERBYTES`.
pub const HEADER_LEN: usize = CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_HEADERBYTES;
/// `crypto_secretstream_xchacha20poly1305_ABYTES`: tag byte + Poly1305 MAC.
pub const ABYTES: usize = CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_ABYTES;
/// `TAG_MESSAGE`: an ordinary message.
pub const TAG_MESSAGE: u8 = CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_MESSAGE;
/// `TAG_PUSH`: marks the end of a set of messages (unused by pull-secretstream).
pub const TAG_PUSH: u8 = CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_PUSH;
/// `TAG_REKEY`: forces a rekey after this message.
pub const TAG_REKEY: u8 = CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_REKEY;
/// `TAG_FINAL` (`PUSH | REKEY`): the last message of the stream.
pub const TAG_FINAL: u8 = CRYPTO_SECRETSTREAM_XCHACHA20POLY1305_TAG_FINAL;

/// The ciphertext did not authenticate (tampered, replayed, reordered, or
/// encrypted under another key). The state is unchanged, as in libsodium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticationFailed;

/// One direction of a secretstream. dryoc wipes its key and nonce on drop.
pub struct State(sodium::State);

impl core::fmt::Debug for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("secretstream::State(..)")
    }
}

impl State {
    /// `init_push` / `init_pull`: both sides derive the same state from the key
    /// and the header (whose 24 random bytes the pushing side chose).
    pub fn new(key: &[u8; 32], header: &[u8; HEADER_LEN]) -> Self {
        let mut state = sodium::State::new();
        sodium::crypto_secretstream_xchacha20poly1305_init_pull(&mut state, header, key);
        Self(state)
    }

    /// `crypto_secretstream_xchacha20poly1305_rekey`.
    pub fn rekey(&mut self) {
        sodium::crypto_secretstream_xchacha20poly1305_rekey(&mut self.0);
    }

    /// `push`: encrypts `message` with `tag` into `out`, which must be exactly
    /// `message.len() + ABYTES` long.
    pub fn push(&mut self, message: &[u8], tag: u8, out: &mut [u8]) {
        assert_eq!(
            out.len(),
            message.len() + ABYTES,
            "secretstream push: output length"
        );
        // With the lengths right, dryoc's only other refusal is a message
        // over `MESSAGEBYTES_MAX` (about 2^38 bytes); our blocks are 495.
        sodium::crypto_secretstream_xchacha20poly1305_push(&mut self.0, out, message, None, tag)
            .expect("invariant: output length checked, message far below MESSAGEBYTES_MAX");
    }

    /// `pull`: authenticates and decrypts `ciphertext` into `out` (exactly
    /// `ciphertext.len() - ABYTES` long) and returns the tag. On failure the
    /// state does not move, so a replayed or reordered block stays rejected.
    pub fn pull(&mut self, ciphertext: &[u8], out: &mut [u8]) -> Result<u8, AuthenticationFailed> {
        let body_len = ciphertext
            .len()
            .checked_sub(ABYTES)
            .ok_or(AuthenticationFailed)?;
        assert_eq!(out.len(), body_len, "secretstream pull: output length");
        let mut tag = 0u8;
        sodium::crypto_secretstream_xchacha20poly1305_pull(
            &mut self.0,
            out,
            &mut tag,
            ciphertext,
            None,
        )
        .map_err(|_| AuthenticationFailed)?;
        Ok(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pull_round_trip_with_tags_and_rekey() {
        let key = [42u8; 32];
        let header = [7u8; HEADER_LEN];
        let mut sender = State::new(&key, &header);
        let mut receiver = State::new(&key, &header);
        let messages: [(&[u8], u8); 5] = [
            (b"", TAG_MESSAGE),
            (b"0123456789abcdef", TAG_MESSAGE),
            (b"seventeen bytes!!", TAG_REKEY),
            (b"after the rekey", TAG_PUSH),
            (b"the end", TAG_FINAL),
        ];
        for (message, tag) in messages {
            let mut boxed = vec![0u8; message.len() + ABYTES];
            sender.push(message, tag, &mut boxed);
            let mut plain = vec![0u8; message.len()];
            assert_eq!(receiver.pull(&boxed, &mut plain), Ok(tag));
            assert_eq!(plain, message);
            // The same block again is a replay: the nonce has moved on.
            let mut again = vec![0u8; message.len()];
            assert_eq!(receiver.pull(&boxed, &mut again), Err(AuthenticationFailed));
        }
    }

    #[test]
    fn explicit_rekey_must_happen_on_both_sides() {
        let (key, header) = ([1u8; 32], [2u8; HEADER_LEN]);
        let mut sender = State::new(&key, &header);
        let mut in_step = State::new(&key, &header);
        let mut out_of_step = State::new(&key, &header);
        sender.rekey();
        in_step.rekey();
        let mut boxed = [0u8; 3 + ABYTES];
        sender.push(b"abc", TAG_MESSAGE, &mut boxed);
        let mut plain = [0u8; 3];
        assert_eq!(
            out_of_step.pull(&boxed, &mut plain),
            Err(AuthenticationFailed)
        );
        assert_eq!(in_step.pull(&boxed, &mut plain), Ok(TAG_MESSAGE));
        assert_eq!(&plain, b"abc");
    }

    #[test]
    fn short_ciphertext_is_refused_without_moving_the_state() {
        let (key, header) = ([3u8; 32], [4u8; HEADER_LEN]);
        let mut sender = State::new(&key, &header);
        let mut receiver = State::new(&key, &header);
        assert_eq!(
            receiver.pull(&[0u8; ABYTES - 1], &mut []),
            Err(AuthenticationFailed)
        );
        let mut boxed = [0u8; ABYTES];
        sender.push(b"", TAG_FINAL, &mut boxed);
        assert_eq!(receiver.pull(&boxed, &mut []), Ok(TAG_FINAL));
    }
}
