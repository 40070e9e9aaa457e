//! Why signatures are not checked with Ed25519 *batch* verification (issue 16).
//!
//! The JS reference verifies with libsodium's `crypto_sign_verify_detached`, and we with
//! `verify_strict`: both check the cofactorless equation `[s]B = R + [h]A` for one signature.
//! A batch check (ed25519-dalek's `verify_batch`) checks `Σ zᵢ([sᵢ]B − Rᵢ − [hᵢ]Aᵢ) = 0` with
//! 128-bit coefficients `zᵢ` derived from a transcript of the batch. A signer can put a
//! torsion point `T` into its nonce, `R = [r]B + T`: single verification then fails by `T`,
//! but the batch only sees `zᵢ·T`, which vanishes whenever the order of `T` divides `zᵢ` —
//! half the time for a point of order 2, and the signer can grind its msg until it does.
//! Such a msg would be stored by a batch-verifying peer and refused by every JS peer: the
//! network would disagree on a feed. Finding which batch member is torsioned costs a scalar
//! multiplication per signature, which is what batching saves, so the node verifies each
//! signature on its own, on every core (`node::verify_ahead`), instead.
//!
//! This test pins the fact down: if a future ed25519-dalek's batch check refused such
//! signatures, the decision should be revisited.

use curve25519_dalek::constants::{ED25519_BASEPOINT_TABLE, EIGHT_TORSION};
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};

/// A signature by `seed`'s key over `message` whose nonce point carries the order-2
/// torsion point: valid "up to torsion", invalid for a single cofactorless verification.
fn torsioned_signature(seed: &[u8; 32], message: &[u8]) -> (VerifyingKey, Signature) {
    let expanded: [u8; 64] = Sha512::digest(seed).into();
    let secret =
        Scalar::from_bytes_mod_order(clamp_integer(expanded[..32].try_into().expect("32 bytes")));
    let public = VerifyingKey::from(&SigningKey::from_bytes(seed));
    let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest(message).into());
    let nonce_point = &r * ED25519_BASEPOINT_TABLE + EIGHT_TORSION[4];
    let r_bytes = nonce_point.compress().to_bytes();
    let challenge: [u8; 64] = Sha512::new()
        .chain_update(r_bytes)
        .chain_update(public.as_bytes())
        .chain_update(message)
        .finalize()
        .into();
    let s = r + Scalar::from_bytes_mod_order_wide(&challenge) * secret;
    let mut bytes = [0; 64];
    bytes[..32].copy_from_slice(&r_bytes);
    bytes[32..].copy_from_slice(s.as_bytes());
    (public, Signature::from_bytes(&bytes))
}

#[test]
fn batch_verification_accepts_a_torsioned_signature_that_single_verification_refuses() {
    let seed = [42; 32];
    let mut accepted_by_batch = None;
    for attempt in 0..64u32 {
        let message = format!(":msg-v4:{{\"nonce\":{attempt}}}");
        let (key, signature) = torsioned_signature(&seed, message.as_bytes());
        assert!(
            key.verify_strict(message.as_bytes(), &signature).is_err(),
            "single verification refuses every torsioned signature"
        );
        assert!(!proto::keys::verify_with(
            &key,
            message.as_bytes(),
            &signature.to_bytes()
        ));
        let batch =
            ed25519_dalek::verify_batch(&[message.as_bytes()], &[signature], &[key]).is_ok();
        if batch {
            accepted_by_batch = Some(attempt);
            break;
        }
    }
    assert!(
        accepted_by_batch.is_some(),
        "ed25519-dalek's batch check now refuses torsioned nonces: batch verification may be \
         sound for ppppp after all (see this file's docs)"
    );
}
