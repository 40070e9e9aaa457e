//! libsodium's `crypto_secretstream_xchacha20poly1305`, rebuilt from primitives.
//!
//! The construction (libsodium `secretstream_xchacha20poly1305.c`):
//! - init: `k = HChaCha20(key, header[0..16])`, `nonce = counter(4, LE, starts at 1) ‖ header[16..24]`.
//! - each message, with the ChaCha20-IETF keystream under `(k, nonce)`:
//!   block 0 keys Poly1305 (first 32 bytes); block 1 encrypts a 64-byte block
//!   whose first byte is the tag (only that byte is sent, but the MAC covers all
//!   64 encrypted bytes); the message is encrypted from block 2 on.
//! - MAC input: `AD ‖ pad16(AD) ‖ tagblock(64) ‖ c ‖ pad ‖ le64(|AD|) ‖ le64(64 + |c|)`,
//!   where libsodium computes `pad` as `(0x10 - 64 + |c|) & 0xf` zero bytes,
//!   which is `|c| mod 16` rather than the usual `-|c| mod 16`. That quirk is
//!   part of the format, so it is reproduced here.
//! - output: `encrypted tag byte ‖ c ‖ mac(16)` (17 bytes of overhead).
//! - then `nonce[4..12] ^= mac[0..8]`, the counter is incremented, and the state
//!   is rekeyed when the tag has the REKEY bit or the counter wrapped to zero.
//! - rekey: `k ‖ inonce = ChaCha20-IETF(k, nonce)` applied to `k ‖ inonce`, counter back to 1.
//!
//! pull-secretstream never uses additional data, so this module has none.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::{ChaCha20, R20, hchacha};
use poly1305::Poly1305;
use poly1305::universal_hash::{KeyInit, UniversalHash, array::Array};
use zeroize::Zeroize;

use crate::transport::crypto::ct_eq;

/// `crypto_secretstream_xchacha20poly1305_HEADERBYTES`.
pub const HEADER_LEN: usize = 24;
/// `crypto_secretstream_xchacha20poly1305_ABYTES`: tag byte + Poly1305 MAC.
pub const ABYTES: usize = 17;
/// `TAG_MESSAGE`: an ordinary message.
pub const TAG_MESSAGE: u8 = 0;
/// `TAG_PUSH`: marks the end of a set of messages (unused by pull-secretstream).
pub const TAG_PUSH: u8 = 1;
/// `TAG_REKEY`: forces a rekey after this message.
pub const TAG_REKEY: u8 = 2;
/// `TAG_FINAL` (`PUSH | REKEY`): the last message of the stream.
pub const TAG_FINAL: u8 = TAG_PUSH | TAG_REKEY;

const MAC_LEN: usize = 16;
const KEYSTREAM_BLOCK_LEN: usize = 64;

/// The ciphertext did not authenticate (tampered, replayed, reordered, or
/// encrypted under another key). The state is unchanged, as in libsodium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticationFailed;

/// One direction of a secretstream. Its key is wiped on drop.
pub struct State {
    key: [u8; 32],
    /// `counter(4, little endian) ‖ inonce(8)`, the ChaCha20-IETF nonce.
    nonce: [u8; 12],
}

impl Drop for State {
    fn drop(&mut self) {
        self.key.zeroize();
        self.nonce.zeroize();
    }
}

impl core::fmt::Debug for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("secretstream::State(..)")
    }
}

impl State {
    /// `init_push` / `init_pull`: both sides derive the same state from the key
    /// and the header (whose 24 random bytes the pushing side chose).
    pub fn new(key: &[u8; 32], header: &[u8; HEADER_LEN]) -> Self {
        let (subkey_input, inonce) = header.split_at(16);
        let subkey_input: [u8; 16] = subkey_input.try_into().expect("invariant: 16 bytes");
        let subkey = hchacha::<R20>(&(*key).into(), &subkey_input.into());
        let mut state = Self {
            key: subkey.into(),
            nonce: [0u8; 12],
        };
        state.reset_counter();
        state.nonce[4..].copy_from_slice(inonce);
        state
    }

    fn reset_counter(&mut self) {
        self.nonce[..4].copy_from_slice(&1u32.to_le_bytes());
    }

    /// The keystream for the next message, with block 0 (the Poly1305 key)
    /// already consumed.
    fn keystream(&self) -> (ChaCha20, Poly1305) {
        let mut cipher = ChaCha20::new(&self.key.into(), &self.nonce.into());
        let mut block0 = [0u8; KEYSTREAM_BLOCK_LEN];
        cipher.apply_keystream(&mut block0);
        let mut poly_key = [0u8; 32];
        poly_key.copy_from_slice(&block0[..32]);
        let poly = Poly1305::new(&poly_key.into());
        block0.zeroize();
        poly_key.zeroize();
        (cipher, poly)
    }

    /// The MAC over the encrypted tag block and the ciphertext (no AD).
    fn mac(
        mut poly: Poly1305,
        tag_block: &[u8; KEYSTREAM_BLOCK_LEN],
        ciphertext: &[u8],
    ) -> [u8; MAC_LEN] {
        let (blocks, _) = Array::slice_as_chunks(tag_block);
        poly.update(blocks);
        let (blocks, rest) = Array::slice_as_chunks(ciphertext);
        poly.update(blocks);
        // libsodium: pad = (0x10 - 64 + mlen) & 0xf, i.e. mlen mod 16 zero bytes.
        let pad_len = 0x10usize
            .wrapping_sub(KEYSTREAM_BLOCK_LEN)
            .wrapping_add(ciphertext.len())
            & 0xf;
        let mut tail = [0u8; 15 + 15 + 16];
        tail[..rest.len()].copy_from_slice(rest);
        let lengths_at = rest.len() + pad_len;
        // le64(adlen = 0) is already zero; then le64(64 + mlen).
        let total = (KEYSTREAM_BLOCK_LEN + ciphertext.len()) as u64;
        tail[lengths_at + 8..lengths_at + 16].copy_from_slice(&total.to_le_bytes());
        poly.compute_unpadded(&tail[..lengths_at + 16]).into()
    }

    /// After each message: fold the MAC into the nonce, count, maybe rekey.
    fn advance(&mut self, mac: &[u8; MAC_LEN], tag: u8) {
        for (n, m) in self.nonce[4..].iter_mut().zip(mac) {
            *n ^= m;
        }
        let counter = u32::from_le_bytes(self.nonce[..4].try_into().expect("invariant: 4 bytes"));
        let counter = counter.wrapping_add(1);
        self.nonce[..4].copy_from_slice(&counter.to_le_bytes());
        if tag & TAG_REKEY != 0 || counter == 0 {
            self.rekey();
        }
    }

    /// `crypto_secretstream_xchacha20poly1305_rekey`.
    pub fn rekey(&mut self) {
        let mut material = [0u8; 40];
        material[..32].copy_from_slice(&self.key);
        material[32..].copy_from_slice(&self.nonce[4..]);
        ChaCha20::new(&self.key.into(), &self.nonce.into()).apply_keystream(&mut material);
        self.key.copy_from_slice(&material[..32]);
        self.nonce[4..].copy_from_slice(&material[32..]);
        material.zeroize();
        self.reset_counter();
    }

    /// `push`: encrypts `message` with `tag` into `out`, which must be exactly
    /// `message.len() + ABYTES` long.
    pub fn push(&mut self, message: &[u8], tag: u8, out: &mut [u8]) {
        assert_eq!(
            out.len(),
            message.len() + ABYTES,
            "secretstream push: output length"
        );
        let (mut cipher, poly) = self.keystream();
        let mut tag_block = [0u8; KEYSTREAM_BLOCK_LEN];
        tag_block[0] = tag;
        cipher.apply_keystream(&mut tag_block);
        let (tag_out, rest) = out.split_at_mut(1);
        let (body, mac_out) = rest.split_at_mut(message.len());
        tag_out[0] = tag_block[0];
        body.copy_from_slice(message);
        cipher.apply_keystream(body);
        let mac = Self::mac(poly, &tag_block, body);
        tag_block.zeroize();
        mac_out.copy_from_slice(&mac);
        self.advance(&mac, tag);
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
        let (tag_in, rest) = ciphertext.split_at(1);
        let (body, mac_in) = rest.split_at(body_len);
        let (mut cipher, poly) = self.keystream();
        let mut tag_block = [0u8; KEYSTREAM_BLOCK_LEN];
        tag_block[0] = tag_in[0];
        cipher.apply_keystream(&mut tag_block);
        let tag = tag_block[0];
        tag_block[0] = tag_in[0];
        let mac = Self::mac(poly, &tag_block, body);
        tag_block.zeroize();
        if !ct_eq(&mac, mac_in) {
            return Err(AuthenticationFailed);
        }
        out.copy_from_slice(body);
        cipher.apply_keystream(out);
        self.advance(&mac, tag);
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
    fn counter_wrap_rekeys_and_both_sides_agree() {
        let mut sender = State::new(&[1u8; 32], &[2u8; HEADER_LEN]);
        sender.nonce[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut receiver = State {
            key: sender.key,
            nonce: sender.nonce,
        };
        let key_before = sender.key;
        for message in [&b"abc"[..], b"defg"] {
            let mut boxed = vec![0u8; message.len() + ABYTES];
            sender.push(message, TAG_MESSAGE, &mut boxed);
            let mut plain = vec![0u8; message.len()];
            assert_eq!(receiver.pull(&boxed, &mut plain), Ok(TAG_MESSAGE));
            assert_eq!(plain, message);
        }
        // The wrap rekeyed (counter back to 1), then one more message counted.
        assert_ne!(sender.key, key_before);
        assert_eq!(sender.nonce[..4], 2u32.to_le_bytes());
        assert_eq!(sender.nonce, receiver.nonce);
    }
}
