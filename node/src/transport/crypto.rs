//! The libsodium calls secret-handshake-ext makes (protocol.md §11.2), each
//! from a crate made for it:
//!
//! - `crypto_secretbox_easy` / `_open_easy` (XSalsa20-Poly1305) and
//!   `crypto_auth` / `_verify` (HMAC-SHA-512-256): `dryoc`'s classic API,
//!   libsodium-compatible and tested by dryoc against libsodium;
//! - `crypto_scalarmult` and the Ed25519 to Curve25519 conversions:
//!   `curve25519-dalek`, the crate ed25519-dalek signs with;
//! - `crypto_hash_sha256`: `sha2`; the constant-time zero check: `subtle`.
//!
//! Every function must agree with libsodium byte for byte; the vectors in
//! `shse.json` check that. Nothing here reads OS entropy.

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::clamp_integer;
use dryoc::classic::{crypto_auth, crypto_secretbox};
use dryoc::constants::{CRYPTO_SECRETBOX_MACBYTES, CRYPTO_SECRETBOX_NONCEBYTES};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// `crypto_secretbox_MACBYTES`.
pub(crate) const SECRETBOX_MAC_LEN: usize = CRYPTO_SECRETBOX_MACBYTES;

/// secret-handshake seals each box under a key it uses only once, so the
/// nonce is all zeros.
const ZERO_NONCE: [u8; CRYPTO_SECRETBOX_NONCEBYTES] = [0u8; CRYPTO_SECRETBOX_NONCEBYTES];

/// `crypto_hash_sha256` over the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// `crypto_auth` (HMAC-SHA-512-256: HMAC-SHA-512 cut to its first 32 bytes).
pub(crate) fn auth(message: &[u8], key: &[u8; 32]) -> [u8; 32] {
    let mut tag = [0u8; 32];
    crypto_auth::crypto_auth(&mut tag, message, key);
    tag
}

/// `crypto_auth_verify`, in constant time.
pub(crate) fn auth_verify(tag: &[u8; 32], message: &[u8], key: &[u8; 32]) -> bool {
    crypto_auth::crypto_auth_verify(tag, message, key).is_ok()
}

/// `crypto_scalarmult` (X25519). libsodium fails when the result is all zero
/// (the peer sent a low-order point), and so do we: `None`.
pub(crate) fn scalarmult(secret: &[u8; 32], public: &[u8; 32]) -> Option<[u8; 32]> {
    let shared = MontgomeryPoint(*public).mul_clamped(*secret).to_bytes();
    if bool::from(shared.ct_eq(&[0u8; 32])) {
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
    let digest = Zeroizing::new(<[u8; 64]>::from(Sha512::digest(seed)));
    let (scalar, _) = digest
        .split_first_chunk::<32>()
        .expect("invariant: 64 > 32");
    clamp_integer(*scalar)
}

/// `crypto_secretbox_easy(message, nonce = 24 zero bytes, key)`: returns
/// `mac(16) ‖ ciphertext`.
pub(crate) fn secretbox_seal(message: &[u8], key: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![0u8; SECRETBOX_MAC_LEN + message.len()];
    crypto_secretbox::crypto_secretbox_easy(&mut out, message, &ZERO_NONCE, key)
        .expect("invariant: output is MACBYTES longer than a handshake-sized message");
    out
}

/// `crypto_secretbox_open_easy` with the all-zero nonce; `None` when the box is
/// too short or its authenticator does not verify.
pub(crate) fn secretbox_open(boxed: &[u8], key: &[u8; 32]) -> Option<Vec<u8>> {
    let body_len = boxed.len().checked_sub(SECRETBOX_MAC_LEN)?;
    let mut plain = vec![0u8; body_len];
    crypto_secretbox::crypto_secretbox_open_easy(&mut plain, boxed, &ZERO_NONCE, key).ok()?;
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
