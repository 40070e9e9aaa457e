//! [`Verdicts`]: signature verdicts shared by several verifiers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::ids::{MsgId, PubKey};

/// Most verdicts a [`Verdicts`] keeps; when full it starts over (it is a cache: a verdict
/// forgotten is computed again).
pub const VERDICTS_MAX: usize = 1 << 22;

/// What a verdict is keyed by: the msg ID (the hash of the canonical metadata, which is what
/// is signed), the signing key and the signature. Together they fix the verdict.
type Key = (MsgId, PubKey, [u8; 64]);

/// Signature verdicts shared by the [`super::Verifier`]s of several databases — a simulator's
/// peers, which all receive the same msgs — so that each msg's signature is verified once
/// per run instead of once per receiving peer. Cloning shares the cache.
///
/// Only for simulations: a real peer verifies what it receives itself.
#[derive(Debug, Clone, Default)]
pub struct Verdicts {
    verdicts: Arc<Mutex<BTreeMap<Key, bool>>>,
}

impl Verdicts {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The verdict for `key`, computing (and remembering) it with `verify` if unknown.
    pub(super) fn get_or_verify(&self, key: Key, verify: impl FnOnce() -> bool) -> bool {
        let mut verdicts = self.verdicts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(verdict) = verdicts.get(&key) {
            return *verdict;
        }
        let verdict = verify();
        if verdicts.len() >= VERDICTS_MAX {
            verdicts.clear();
        }
        verdicts.insert(key, verdict);
        verdict
    }

    /// Verdicts held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.verdicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no verdict is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;
    use crate::msg::{Msg, Signature};
    use crate::validate::{Digest, Verifier};

    #[test]
    fn shared_verdicts_verify_each_signature_once() {
        let keypair = Keypair::from_seed(&[7; 32]);
        let msg = Msg::create_account_root(&keypair, "account", "nonce").expect("a msg");
        let digest = Digest::of(&msg);
        let verdicts = Verdicts::new();
        let mut first = Verifier::sharing(verdicts.clone());
        let mut second = Verifier::sharing(verdicts.clone());
        assert!(first.verify_digest(&msg, &digest));
        assert!(second.verify_digest(&msg, &digest));
        assert_eq!(
            verdicts.len(),
            1,
            "the second peer used the first one's verdict"
        );
        // Same ID (the metadata is unchanged), another signature: its own verdict, false.
        let mut forged = msg.clone();
        let mut bytes = *msg.sig.bytes();
        if let Some(first_byte) = bytes.first_mut() {
            *first_byte ^= 1;
        }
        forged.sig = Signature::from_bytes(bytes);
        assert_eq!(Digest::of(&forged).id, digest.id);
        assert!(!second.verify_digest(&forged, &digest));
        assert!(!first.verify_digest(&forged, &digest));
        assert_eq!(verdicts.len(), 2);
        // Without sharing, the same answers.
        let mut alone = Verifier::new();
        assert!(alone.verify_digest(&msg, &digest));
        assert!(!alone.verify_digest(&forged, &digest));
    }
}
