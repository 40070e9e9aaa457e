//! Ed25519 keypairs as pzp-keypair 1.0.0 models them, and signature checks.
//!
//! A keypair is `{curve: "ed25519", public: base58(pk), private: base58(seed ‖ pk)}` (the
//! 64-byte libsodium secret key). The same key signs msgs and is the peer's network identity
//! in the SHSE handshake. protocol.md §2.4.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::PubKey;

/// The seed length of an Ed25519 key.
pub const SEED_LEN: usize = 32;

/// An Ed25519 keypair.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
    public: PubKey,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Keypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Why a keypair could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeypairError {
    /// The secret text is not the JSON object pzp-keypair writes.
    #[error("malformed keypair JSON in secret file contents")]
    MalformedJson,
    /// The curve is not `ed25519`, the only one pzp-keypair has.
    #[error("unsupported curve {0:?}, only ed25519 exists")]
    UnsupportedCurve(String),
    /// `private` is not base58 of 64 bytes.
    #[error("private key is not base58 of 64 bytes")]
    MalformedPrivate,
    /// `public` does not match the public half of `private`.
    #[error("public key {public:?} does not match the private key (which gives {derived:?})")]
    PublicMismatch {
        /// The public key written in the file.
        public: String,
        /// The public key derived from the private key.
        derived: String,
    },
}

impl Keypair {
    /// The keypair libsodium's `crypto_sign_seed_keypair` derives from `seed`.
    #[must_use]
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let public = PubKey::from_bytes(signing.verifying_key().as_bytes());
        Self { signing, public }
    }

    /// pzp-keypair's string-seed quirk: the first 32 UTF-16 units of `seed`, UTF-8 encoded,
    /// truncated or zero-padded to 32 bytes (the reference test suites use e.g. `"alice"`).
    #[must_use]
    pub fn from_string_seed(seed: &str) -> Self {
        let units: Vec<u16> = seed.encode_utf16().take(SEED_LEN).collect();
        // Node's Buffer.from(…, 'utf-8') writes a lone surrogate (from cutting a pair in half)
        // as U+FFFD, which is what the lossy decoder produces as well.
        let prefix = String::from_utf16_lossy(&units);
        let mut bytes = [0u8; SEED_LEN];
        for (slot, byte) in bytes.iter_mut().zip(prefix.bytes()) {
            *slot = byte;
        }
        Self::from_seed(&bytes)
    }

    /// A keypair from 32 bytes of caller-provided randomness (production: OS entropy at the
    /// program edge; simulation: the seeded stream).
    #[must_use]
    pub fn from_random(seed: [u8; SEED_LEN]) -> Self {
        Self::from_seed(&seed)
    }

    /// The public key.
    #[must_use]
    pub fn public(&self) -> PubKey {
        self.public
    }

    /// The 32-byte seed (secret).
    #[must_use]
    pub fn seed(&self) -> [u8; SEED_LEN] {
        self.signing.to_bytes()
    }

    /// The libsodium secret key `seed ‖ pk` in base58, as pzp-keypair's `private` field.
    #[must_use]
    pub fn private_base58(&self) -> String {
        bs58::encode(self.signing.to_keypair_bytes()).into_string()
    }

    /// A detached Ed25519 signature over `message`.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The dalek signing key, for the transport handshake.
    #[must_use]
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The `{curve, public, private}` JSON object of pzp-keypair.
    #[must_use]
    pub fn to_json(&self) -> KeypairJson {
        KeypairJson {
            curve: "ed25519".to_owned(),
            public: self.public.to_string(),
            private: self.private_base58(),
        }
    }

    /// Reads pzp-keypair's `{curve, public, private}` object.
    ///
    /// # Errors
    /// [`KeypairError`] for another curve, a malformed private key or mismatched halves.
    pub fn from_json(json: &KeypairJson) -> Result<Self, KeypairError> {
        if json.curve != "ed25519" {
            return Err(KeypairError::UnsupportedCurve(json.curve.clone()));
        }
        let secret = bs58::decode(&json.private)
            .into_vec()
            .map_err(|_| KeypairError::MalformedPrivate)?;
        let secret: [u8; 64] = secret
            .try_into()
            .map_err(|_| KeypairError::MalformedPrivate)?;
        let signing =
            SigningKey::from_keypair_bytes(&secret).map_err(|_| KeypairError::MalformedPrivate)?;
        let keypair = Self {
            public: PubKey::from_bytes(signing.verifying_key().as_bytes()),
            signing,
        };
        if keypair.public.as_str() != json.public {
            return Err(KeypairError::PublicMismatch {
                public: json.public.clone(),
                derived: keypair.public.to_string(),
            });
        }
        Ok(keypair)
    }

    /// The text of pzp-keypair's secret file (comments, indented JSON, trailing comment).
    #[must_use]
    pub fn to_secret_file(&self) -> String {
        let json = serde_json::to_string_pretty(&self.to_json())
            .expect("invariant: a struct of strings serializes");
        format!(
            "# WARNING: Never show this to anyone.\n\
             # WARNING: Never edit it or use it on multiple devices at once.\n\
             #\n\
             # This is your SECRET, it gives you magical powers. With your secret you can\n\
             # sign your messages so that your friends can verify that the messages came\n\
             # from you. If anyone learns your secret, they can use it to impersonate you.\n\
             #\n\
             # If you use this secret on more than one device you will create a fork and\n\
             # your friends will stop replicating your content.\n\
             #\n\
             {json}\n\
             #\n\
             # The only part of this file that's safe to share is your public name:\n\
             #\n\
             #   {public}",
            public = self.public
        )
    }

    /// Parses pzp-keypair's secret file: strip `#` comments, join the rest, parse as JSON.
    ///
    /// # Errors
    /// [`KeypairError`] when what remains is not a valid keypair object.
    pub fn from_secret_file(contents: &str) -> Result<Self, KeypairError> {
        let json: String = contents
            .lines()
            .map(|line| match line.find('#') {
                Some(start) => line.get(..start).unwrap_or_default(),
                None => line,
            })
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        let parsed: KeypairJson =
            serde_json::from_str(&json).map_err(|_| KeypairError::MalformedJson)?;
        Self::from_json(&parsed)
    }
}

/// The JSON object pzp-keypair stores and exchanges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeypairJson {
    /// Always `ed25519`.
    pub curve: String,
    /// base58 of the 32-byte public key.
    pub public: String,
    /// base58 of the 64-byte libsodium secret key (seed ‖ public key).
    pub private: String,
}

/// Verifies a detached Ed25519 signature the way libsodium's `crypto_sign_verify_detached`
/// does: non-canonical scalars and small-order keys or `R` values are rejected.
#[must_use]
pub fn verify(public: &PubKey, message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&public.to_bytes()) else {
        return false;
    };
    verify_with(&key, message, signature)
}

/// Like [`verify`], with an already decompressed key (cached by validators that check many
/// msgs by the same author).
#[must_use]
pub fn verify_with(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
    let signature = Signature::from_bytes(signature);
    key.verify_strict(message, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_seed_pads_with_zeros() {
        let keypair = Keypair::from_string_seed("alice");
        let mut expected = [0u8; 32];
        expected[..5].copy_from_slice(b"alice");
        assert_eq!(keypair.seed(), expected);
    }

    #[test]
    fn secret_file_round_trips() {
        let keypair = Keypair::from_seed(&[7u8; 32]);
        let text = keypair.to_secret_file();
        let loaded = Keypair::from_secret_file(&text).expect("own format parses");
        assert_eq!(loaded.public(), keypair.public());
        assert_eq!(loaded.seed(), keypair.seed());
    }

    #[test]
    fn secret_file_rejects_mismatched_public() {
        let keypair = Keypair::from_seed(&[7u8; 32]);
        let other = Keypair::from_seed(&[8u8; 32]);
        let text = keypair
            .to_secret_file()
            .replace(keypair.public().as_str(), other.public().as_str());
        assert!(matches!(
            Keypair::from_secret_file(&text),
            Err(KeypairError::PublicMismatch { .. })
        ));
        assert!(matches!(
            Keypair::from_secret_file("# only\n# comments"),
            Err(KeypairError::MalformedJson)
        ));
    }

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let keypair = Keypair::from_seed(&[1u8; 32]);
        let signature = keypair.sign(b"hello");
        assert!(verify(&keypair.public(), b"hello", &signature));
        assert!(!verify(&keypair.public(), b"hellO", &signature));
    }
}
