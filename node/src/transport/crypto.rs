//! libsodium-compatible primitives assembled from RustCrypto and dalek crates.
//!
//! Every function here mirrors one libsodium call used by secret-handshake-ext
//! (protocol.md §11.2) and must agree with it byte for byte; the vectors in
//! `shse.json` check that. Nothing here reads OS entropy.

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::montgomery::MontgomeryPoint;
use hmac::{Hmac, KeyInit, Mac};
use poly1305::Poly1305;
use salsa20::XSalsa20;
use salsa20::cipher::{KeyIvInit, StreamCipher};
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroize;

/// `crypto_secretbox_MACBYTES`.
pub(crate) const SECRETBOX_MAC_LEN: usize = 16;

/// `crypto_hash_sha256` over the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// `crypto_auth` (HMAC-SHA-512 truncated to its first 32 bytes).
pub(crate) fn auth(message: &[u8], key: &[u8; 32]) -> [u8; 32] {
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key)
        .expect("invariant: HMAC accepts keys of any length");
    mac.update(message);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 32];
    out.copy_from_slice(&full[..32]);
    out
}

/// `crypto_auth_verify`, in constant time.
pub(crate) fn auth_verify(tag: &[u8; 32], message: &[u8], key: &[u8; 32]) -> bool {
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key)
        .expect("invariant: HMAC accepts keys of any length");
    mac.update(message);
    mac.verify_truncated_left(tag).is_ok()
}

/// Constant-time equality of two byte strings of equal length.
pub(crate) fn ct_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let difference = left
        .iter()
        .zip(right)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    core::hint::black_box(difference) == 0
}

/// `crypto_scalarmult` (X25519). libsodium fails when the result is all zero
/// (the peer sent a low-order point), and so do we: `None`.
pub(crate) fn scalarmult(secret: &[u8; 32], public: &[u8; 32]) -> Option<[u8; 32]> {
    let shared = MontgomeryPoint(*public).mul_clamped(*secret).to_bytes();
    if ct_eq(&shared, &[0u8; 32]) {
        None
    } else {
        Some(shared)
    }
}

/// `crypto_scalarmult_base`: the Curve25519 public key of a secret scalar.
#[cfg(test)]
pub(crate) fn scalarmult_base(secret: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(*secret).to_bytes()
}

/// `crypto_sign_ed25519_pk_to_curve25519`. Like libsodium it refuses points that
/// do not decode, have small order, or lie outside the prime-order subgroup.
pub(crate) fn ed25519_pk_to_curve25519(public: &[u8; 32]) -> Option<[u8; 32]> {
    let point = CompressedEdwardsY(*public).decompress()?;
    if point.is_small_order() || !point.is_torsion_free() {
        return None;
    }
    Some(point.to_montgomery().to_bytes())
}

/// `crypto_sign_ed25519_sk_to_curve25519` from the 32-byte Ed25519 seed: the
/// first half of SHA-512(seed), clamped.
pub(crate) fn ed25519_seed_to_curve25519(seed: &[u8; 32]) -> [u8; 32] {
    let mut digest: [u8; 64] = Sha512::digest(seed).into();
    let mut out = [0u8; 32];
    out.copy_from_slice(&digest[..32]);
    digest.zeroize();
    out[0] &= 248;
    out[31] &= 127;
    out[31] |= 64;
    out
}

/// The XSalsa20 keystream for `key` under the all-zero nonce that
/// secret-handshake uses for its two boxes.
fn xsalsa20_zero_nonce(key: &[u8; 32]) -> XSalsa20 {
    XSalsa20::new(key.into(), &[0u8; 24].into())
}

/// `crypto_secretbox_easy(message, nonce = 24 zero bytes, key)`: returns
/// `mac(16) ‖ ciphertext`. The first 32 keystream bytes key Poly1305 and the
/// message is encrypted with the keystream from byte 32 on.
pub(crate) fn secretbox_seal(message: &[u8], key: &[u8; 32]) -> Vec<u8> {
    let mut cipher = xsalsa20_zero_nonce(key);
    let mut poly_key = [0u8; 32];
    cipher.apply_keystream(&mut poly_key);
    let mut out = vec![0u8; SECRETBOX_MAC_LEN + message.len()];
    let (mac_out, body) = out.split_at_mut(SECRETBOX_MAC_LEN);
    body.copy_from_slice(message);
    cipher.apply_keystream(body);
    let tag = Poly1305::new(&poly_key.into()).compute_unpadded(body);
    poly_key.zeroize();
    mac_out.copy_from_slice(&tag);
    out
}

/// `crypto_secretbox_open_easy` with the all-zero nonce; `None` when the box is
/// too short or its authenticator does not verify.
pub(crate) fn secretbox_open(boxed: &[u8], key: &[u8; 32]) -> Option<Vec<u8>> {
    let (mac, body) = boxed.split_at_checked(SECRETBOX_MAC_LEN)?;
    let mut cipher = xsalsa20_zero_nonce(key);
    let mut poly_key = [0u8; 32];
    cipher.apply_keystream(&mut poly_key);
    let tag = Poly1305::new(&poly_key.into()).compute_unpadded(body);
    poly_key.zeroize();
    if !ct_eq(&tag, mac) {
        return None;
    }
    let mut plain = body.to_vec();
    cipher.apply_keystream(&mut plain);
    Some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secretbox_round_trip_and_tamper() {
        let key = [7u8; 32];
        let boxed = secretbox_seal(b"attack at dawn", &key);
        assert_eq!(boxed.len(), 14 + SECRETBOX_MAC_LEN);
        assert_eq!(
            secretbox_open(&boxed, &key).as_deref(),
            Some(&b"attack at dawn"[..])
        );
        let mut tampered = boxed.clone();
        tampered[20] ^= 1;
        assert_eq!(secretbox_open(&tampered, &key), None);
        assert_eq!(secretbox_open(&boxed[..10], &key), None);
        assert_eq!(secretbox_open(&boxed, &[8u8; 32]), None);
    }

    #[test]
    fn scalarmult_rejects_low_order_points() {
        // The identity (u = 0) is of small order: the shared secret is all zero.
        assert_eq!(scalarmult(&[9u8; 32], &[0u8; 32]), None);
        let a = [1u8; 32];
        let b = [2u8; 32];
        let ab = scalarmult(&a, &scalarmult_base(&b)).expect("valid point");
        let ba = scalarmult(&b, &scalarmult_base(&a)).expect("valid point");
        assert_eq!(ab, ba);
    }

    #[test]
    fn auth_verifies_only_the_right_tag() {
        let key = [3u8; 32];
        let tag = auth(b"hello", &key);
        assert!(auth_verify(&tag, b"hello", &key));
        assert!(!auth_verify(&tag, b"hellO", &key));
    }
}
