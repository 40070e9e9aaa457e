//! Signature verdicts computed ahead of validation.
//!
//! Verifying a signature is almost all of what validating a msg costs, and unlike the other
//! rules it needs nothing from the tangle. A peer that receives a batch of msgs (a sync
//! round, a `db add` stream) can therefore verify their signatures on every core first and
//! then validate and store the msgs one by one, in order, on one core: validation reaches
//! each msg's signature rule as before and finds its verdict ready. The verdict is the one
//! [`Verifier::verify`] gives (it *is* that call, made earlier), so what is stored and
//! what is refused, with which reason, is exactly what one-by-one validation gives.
//!
//! This module holds the data only; the parallel loop lives with the caller (the node),
//! because nothing here may start threads (the simulator runs this crate).

use std::collections::BTreeMap;

use super::{Digest, Verifier};
use crate::ids::{MsgId, PubKey};
use crate::msg::Msg;

/// Most verdicts an [`AheadVerdicts`] holds: the largest batch whose signatures are
/// verified ahead. Later msgs of a larger batch are verified when validation reaches them.
pub const VERDICTS_AHEAD_MAX: usize = 8192;

/// What a verdict is keyed by: the msg ID (hash of the signed metadata), the signing key and
/// the signature. Together they fix the verdict, so a verdict is never applied to another
/// msg, key or signature.
type Key = (MsgId, PubKey, [u8; 64]);

/// One msg's signature verdict, computed ahead of its validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureVerdict {
    key: Key,
    valid: bool,
}

impl SignatureVerdict {
    /// Verifies `msg`'s signature now, with `verifier` (one per thread: it caches
    /// decompressed keys).
    #[must_use]
    pub fn of(msg: &Msg, digest: &Digest, verifier: &mut Verifier) -> Self {
        Self {
            key: key_of(msg, digest),
            valid: verifier.verify(msg, &digest.canonical_metadata),
        }
    }

    /// Whether the signature is valid.
    #[must_use]
    pub const fn is_valid(&self) -> bool {
        self.valid
    }
}

/// The verdicts of one batch, waiting for validation to reach their msgs.
#[derive(Debug, Clone, Default)]
pub struct AheadVerdicts {
    verdicts: BTreeMap<Key, bool>,
}

impl AheadVerdicts {
    /// Verdicts in the order computed; past [`VERDICTS_AHEAD_MAX`] the rest are dropped
    /// (their msgs are verified when validated).
    #[must_use]
    pub fn new(verdicts: impl IntoIterator<Item = SignatureVerdict>) -> Self {
        let verdicts = verdicts
            .into_iter()
            .take(VERDICTS_AHEAD_MAX)
            .map(|verdict| (verdict.key, verdict.valid))
            .collect();
        Self { verdicts }
    }

    /// Verdicts waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.verdicts.len()
    }

    /// Whether no verdict is waiting.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.verdicts.is_empty()
    }

    /// The verdict for `msg`, if one was computed ahead; it is used up.
    pub(super) fn take(&mut self, msg: &Msg, digest: &Digest) -> Option<bool> {
        if self.verdicts.is_empty() {
            return None;
        }
        self.verdicts.remove(&key_of(msg, digest))
    }
}

fn key_of(msg: &Msg, digest: &Digest) -> Key {
    (digest.id, msg.sigkey, *msg.sig.bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;
    use crate::msg::Signature;

    fn root() -> Msg {
        Msg::create_account_root(&Keypair::from_seed(&[3; 32]), "account", "nonce").expect("msg")
    }

    #[test]
    fn a_verdict_computed_ahead_is_the_one_verification_gives() {
        let good = root();
        let mut forged = good.clone();
        let mut sig = *forged.sig.bytes();
        sig[5] ^= 1;
        forged.sig = Signature::from_bytes(sig);
        for msg in [&good, &forged] {
            let digest = Digest::of(msg);
            let ahead = SignatureVerdict::of(msg, &digest, &mut Verifier::new());
            assert_eq!(
                ahead.is_valid(),
                Verifier::new().verify_digest(msg, &digest)
            );
        }
        assert!(SignatureVerdict::of(&good, &Digest::of(&good), &mut Verifier::new()).is_valid());
    }

    #[test]
    fn a_verdict_is_used_once_and_only_for_its_own_signature() {
        let good = root();
        let digest = Digest::of(&good);
        let mut forged = good.clone();
        let mut sig = *forged.sig.bytes();
        sig[0] ^= 0x80;
        forged.sig = Signature::from_bytes(sig);
        // A "valid" verdict for the good signature must not validate the forged one.
        let mut verifier = Verifier::new();
        verifier.expect(AheadVerdicts::new([SignatureVerdict::of(
            &good,
            &digest,
            &mut Verifier::new(),
        )]));
        assert!(!verifier.verify_digest(&forged, &Digest::of(&forged)));
        assert!(verifier.verify_digest(&good, &digest));
        assert!(verifier.ahead.is_empty(), "the verdict is used up");
        assert!(
            verifier.verify_digest(&good, &digest),
            "verified again without it"
        );
    }

    #[test]
    fn verdicts_past_the_bound_are_dropped() {
        let good = root();
        let digest = Digest::of(&good);
        let one = SignatureVerdict::of(&good, &digest, &mut Verifier::new());
        let mut many: Vec<SignatureVerdict> = Vec::new();
        for byte in 0..=255u8 {
            for second in 0..40u8 {
                let mut verdict = one.clone();
                verdict.key.2[0] = byte;
                verdict.key.2[1] = second;
                many.push(verdict);
            }
        }
        assert!(many.len() > VERDICTS_AHEAD_MAX);
        assert_eq!(AheadVerdicts::new(many).len(), VERDICTS_AHEAD_MAX);
    }
}
