//! Accounts: tangles of key additions and removals that say who may sign (protocol.md §4).
//!
//! An account's ID is the ID of its root msg, which adds the creating key with every power.
//! Later `add` msgs add keys (with the added key's *consent*), `del` msgs remove them. A feed
//! msg names the account's tips it saw (`accountTips`); the keys allowed to sign it are those
//! added and not removed in the account tangle up to those tips ([`sigkeys`]).
//!
//! The reference validates little of this on receive (§4.5). We also check, for every account
//! msg, that its signer is in the account at that point with the right power, that `add`
//! carries the added key's consent, and that the root adds its own signer
//! (docs/divergences.md).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use thiserror::Error;

use crate::ids::{AccountId, PubKey};
use crate::keys::{self, Keypair};
use crate::msg::Msg;
use crate::validate::Sigkeys;

/// Prefix of the bytes a consent signs.
pub const CONSENT_TAG: &str = ":account-add:";

/// The powers a key can hold in an account.
pub const POWERS: [&str; 4] = ["add", "del", "external-encryption", "internal-encryption"];

/// Key purposes that make a key a msg signer.
const SIGNING_PURPOSES: [&str; 2] = ["sig", "shs-and-sig"];

/// Why an account msg is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AccountMsgError {
    /// The signer of an `add` lacks the `add` power (the reference's only receive-side rule).
    #[error("invalid account msg: sigkey \"{sigkey}\" does not have \"add\" power")]
    NoAddPower {
        /// The signer.
        sigkey: String,
    },
    /// Hardening: the signer of a `del` lacks the `del` power.
    #[error("invalid account msg: sigkey \"{sigkey}\" does not have \"del\" power (hardening)")]
    NoDelPower {
        /// The signer.
        sigkey: String,
    },
    /// Hardening: the data is not an account action.
    #[error("invalid account msg: {reason} (hardening)")]
    MalformedData {
        /// What is wrong.
        reason: String,
    },
    /// Hardening: the root must add the key that signs it.
    #[error("invalid account msg: the root adds {added:?} but is signed by {sigkey:?} (hardening)")]
    RootKeyMismatch {
        /// The key the root adds.
        added: String,
        /// The root's signer.
        sigkey: String,
    },
    /// Hardening: an `add` of a signing key must carry that key's consent.
    #[error(
        "invalid account msg: the consent of {key:?} to join {account} is missing or invalid (hardening)"
    )]
    InvalidConsent {
        /// The added key.
        key: String,
        /// The account.
        account: String,
    },
    /// Hardening: a non-root account msg belongs to exactly one tangle, its account.
    #[error("invalid account msg: it is in {count} tangles, not one (hardening)")]
    NotOneTangle {
        /// How many tangles it lists.
        count: usize,
    },
}

/// An account action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Add a key.
    Add,
    /// Remove a key.
    Del,
}

/// The key an account msg adds or removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountKey {
    /// `sig`, `shs-and-sig` or `external-encryption`.
    pub purpose: String,
    /// `ed25519` or `x25519-xsalsa20-poly1305`.
    pub algorithm: String,
    /// The key, base58.
    pub bytes: String,
}

impl AccountKey {
    /// Whether this key may sign msgs (an Ed25519 key with a signing purpose).
    #[must_use]
    pub fn is_signer(&self) -> bool {
        SIGNING_PURPOSES.contains(&self.purpose.as_str()) && self.algorithm == "ed25519"
    }
}

/// The data of an account msg, strictly parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountData {
    /// Add or remove.
    pub action: Action,
    /// The key.
    pub key: AccountKey,
    /// The added key's signature over [`consent_signable`] (adds only).
    pub consent: Option<String>,
    /// Powers granted (adds only).
    pub powers: Vec<String>,
}

impl AccountData {
    /// Parses account msg data.
    ///
    /// # Errors
    /// [`AccountMsgError::MalformedData`] when the shape is wrong.
    pub fn parse(data: &Value) -> Result<Self, AccountMsgError> {
        let malformed = |reason: &str| AccountMsgError::MalformedData {
            reason: reason.to_owned(),
        };
        let object = data
            .as_object()
            .ok_or_else(|| malformed("data is not an object"))?;
        let action = match object.get("action").and_then(Value::as_str) {
            Some("add") => Action::Add,
            Some("del") => Action::Del,
            _ => return Err(malformed("action is neither \"add\" nor \"del\"")),
        };
        let key = object
            .get("key")
            .and_then(Value::as_object)
            .ok_or_else(|| malformed("key is not an object"))?;
        let field = |name: &str| key.get(name).and_then(Value::as_str).map(str::to_owned);
        let key = AccountKey {
            purpose: field("purpose").ok_or_else(|| malformed("key.purpose is not a string"))?,
            algorithm: field("algorithm")
                .ok_or_else(|| malformed("key.algorithm is not a string"))?,
            bytes: field("bytes").ok_or_else(|| malformed("key.bytes is not a string"))?,
        };
        let consent = match object.get("consent") {
            None => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => return Err(malformed("consent is not a string")),
        };
        let powers = match object.get("powers") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item.as_str() {
                    Some(power) if POWERS.contains(&power) => Ok(power.to_owned()),
                    _ => Err(malformed("powers holds an unknown power")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(malformed("powers is not an array")),
        };
        Ok(Self {
            action,
            key,
            consent,
            powers,
        })
    }
}

/// The bytes a consent signs: `":account-add:"` followed by the account ID's decoded bytes
/// as comma-separated decimals — the reference concatenates a string with a `Uint8Array`
/// (protocol.md §4.4).
#[must_use]
pub fn consent_signable(account: &AccountId) -> String {
    let decimals: Vec<String> = account.to_bytes().iter().map(u8::to_string).collect();
    format!("{CONSENT_TAG}{}", decimals.join(","))
}

/// `keypair`'s consent to be added to `account`, base58.
#[must_use]
pub fn consent(keypair: &Keypair, account: &AccountId) -> String {
    bs58::encode(keypair.sign(consent_signable(account).as_bytes())).into_string()
}

/// Whether `consent` is `key`'s valid consent to join `account`.
#[must_use]
pub fn verify_consent(key: &str, account: &AccountId, consent: &str) -> bool {
    // Length first: base58 costs the square of its length, and a consent is 88 digits at most.
    let (Ok(key), Ok(signature)) = (PubKey::parse(key), crate::base58::decode(consent)) else {
        return false;
    };
    let Ok(signature) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    keys::verify(&key, consent_signable(account).as_bytes(), &signature)
}

/// The keys allowed to sign, from account msgs in topological order, exactly as the
/// reference's `getSigkeysInAccount` reads them: erased msgs are skipped, `add` of a signing
/// key inserts it, `del` removes it.
pub fn sigkeys<'a>(account_msgs: impl IntoIterator<Item = &'a Msg>) -> Sigkeys {
    let mut keys = Sigkeys::new();
    for msg in account_msgs {
        let Some(object) = msg.data.as_object() else {
            continue;
        };
        let Some(key) = object.get("key").and_then(Value::as_object) else {
            continue;
        };
        let purpose = key
            .get("purpose")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let algorithm = key.get("algorithm").and_then(Value::as_str);
        if !SIGNING_PURPOSES.contains(&purpose) || algorithm != Some("ed25519") {
            continue;
        }
        let Some(bytes) = key
            .get("bytes")
            .and_then(Value::as_str)
            .and_then(|text| PubKey::parse(text).ok())
        else {
            continue;
        };
        match object.get("action").and_then(Value::as_str) {
            Some("add") => {
                keys.insert(bytes);
            }
            Some("del") => {
                keys.shift_remove(&bytes);
            }
            _ => {}
        }
    }
    keys
}

/// Each key in an account with its powers, from account msgs in topological order.
/// Unlike the reference, a removed key loses its powers (docs/divergences.md).
pub fn powers<'a>(
    account_msgs: impl IntoIterator<Item = &'a Msg>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for msg in account_msgs {
        let Ok(data) = AccountData::parse(&msg.data) else {
            continue;
        };
        match data.action {
            Action::Add => keys.entry(data.key.bytes).or_default().extend(data.powers),
            Action::Del => {
                keys.remove(&data.key.bytes);
            }
        }
    }
    keys
}

/// Checks an account msg against the account as its signer saw it (`history`: the account
/// msgs that precede it, in topological order). `account` is the account's ID.
///
/// # Errors
/// The first account rule broken.
pub fn check_account_msg<'a>(
    msg: &Msg,
    msg_id: &AccountId,
    account: &AccountId,
    history: impl IntoIterator<Item = &'a Msg>,
) -> Result<(), AccountMsgError> {
    let data = AccountData::parse(&msg.data)?;
    if msg_id == account {
        if data.action != Action::Add || data.key.bytes != msg.sigkey.as_str() {
            return Err(AccountMsgError::RootKeyMismatch {
                added: data.key.bytes,
                sigkey: msg.sigkey.to_string(),
            });
        }
        return Ok(());
    }
    let tangle_count = msg.metadata.tangles.len();
    if tangle_count != 1 {
        return Err(AccountMsgError::NotOneTangle {
            count: tangle_count,
        });
    }
    let signer_powers = powers(history)
        .remove(msg.sigkey.as_str())
        .unwrap_or_default();
    match data.action {
        Action::Add => {
            if !signer_powers.contains("add") {
                return Err(AccountMsgError::NoAddPower {
                    sigkey: msg.sigkey.to_string(),
                });
            }
            let consented = data
                .consent
                .as_deref()
                .is_some_and(|consent| verify_consent(&data.key.bytes, account, consent));
            if data.key.is_signer() && !consented {
                return Err(AccountMsgError::InvalidConsent {
                    key: data.key.bytes,
                    account: account.to_string(),
                });
            }
        }
        Action::Del => {
            if !signer_powers.contains("del") {
                return Err(AccountMsgError::NoDelPower {
                    sigkey: msg.sigkey.to_string(),
                });
            }
        }
    }
    Ok(())
}
