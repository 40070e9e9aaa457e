//! Validation of a msg against its tangle and its account's keys (protocol.md §6.1).
//!
//! [`crate::msg::decode`] has already applied every rule that needs no context; this module
//! applies the rest in the reference's order: the moot short-circuit (step 4), sigkey and
//! account against the tangle kind (7), the position in the tangle (8), and the signature (9).
//! Unlike the reference we verify moot signatures too (docs/divergences.md).

mod ahead;
mod error;
mod verdicts;

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use indexmap::IndexSet;

pub use ahead::{AheadVerdicts, SignatureVerdict, VERDICTS_AHEAD_MAX};
pub use error::ValidationError;
pub use verdicts::{VERDICTS_MAX, Verdicts};

use crate::ids::PubKey;
pub use crate::msg::Digest;
use crate::msg::{self, Account, Msg, TangleLink};
use crate::tangle::{Tangle, TangleKind};

/// The keys allowed to sign for an account, in the order they were added (the reference's
/// error message lists them in that order).
pub type Sigkeys = IndexSet<PubKey>;

/// How many decompressed public keys [`Verifier`] keeps. Decompressing a key costs about a
/// fifth of a verification, and feeds are signed by few keys.
const VERIFIER_KEYS_MAX: usize = 4096;

/// Verifies msg signatures, caching decompressed public keys, and optionally sharing
/// verdicts with other verifiers ([`Verdicts`]).
#[derive(Debug, Default, Clone)]
pub struct Verifier {
    keys: BTreeMap<PubKey, Option<VerifyingKey>>,
    verdicts: Option<Verdicts>,
    ahead: AheadVerdicts,
}

impl Verifier {
    /// A verifier with an empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier that looks verdicts up in (and adds them to) `verdicts`, shared with
    /// other verifiers.
    #[must_use]
    pub fn sharing(verdicts: Verdicts) -> Self {
        Self {
            verdicts: Some(verdicts),
            ..Self::default()
        }
    }

    /// Hands over verdicts computed ahead of validation for a batch about to be added
    /// (on other cores: [`SignatureVerdict::of`]); they replace the previous batch's. Each
    /// is used at most once, when validation reaches the msg's signature, so the verdicts
    /// and the order in which rules are applied stay those of one-by-one validation.
    pub fn expect(&mut self, verdicts: AheadVerdicts) {
        self.ahead = verdicts;
    }

    /// [`Verifier::verify`] of a msg whose digest is known, through the shared verdicts if
    /// any.
    pub fn verify_digest(&mut self, msg: &Msg, digest: &Digest) -> bool {
        if let Some(verdict) = self.ahead.take(msg, digest) {
            return verdict;
        }
        let Some(verdicts) = self.verdicts.clone() else {
            return self.verify(msg, &digest.canonical_metadata);
        };
        let key = (digest.id, msg.sigkey, *msg.sig.bytes());
        verdicts.get_or_verify(key, || self.verify(msg, &digest.canonical_metadata))
    }

    /// Whether `msg.sig` is `msg.sigkey`'s signature over `":msg-v4:" + canonical_metadata`.
    pub fn verify(&mut self, msg: &Msg, canonical_metadata: &str) -> bool {
        if self.keys.len() >= VERIFIER_KEYS_MAX && !self.keys.contains_key(&msg.sigkey) {
            self.keys.clear();
        }
        let key = *self
            .keys
            .entry(msg.sigkey)
            .or_insert_with(|| VerifyingKey::from_bytes(&msg.sigkey.to_bytes()).ok());
        let Some(key) = key else { return false };
        crate::keys::verify_with(
            &key,
            &msg::signable_of_canonical(canonical_metadata),
            msg.sig.bytes(),
        )
    }
}

/// Validates `msg` as a member (or the root) of `tangle`, signed by one of `sigkeys`.
///
/// # Errors
/// The first rule broken, in the reference's order.
pub fn validate(
    msg: &Msg,
    digest: &Digest,
    tangle: &Tangle,
    sigkeys: &Sigkeys,
    verifier: &mut Verifier,
) -> Result<(), ValidationError> {
    let Some(kind) = tangle.kind() else {
        return Err(ValidationError::TangleRootUnknown {
            tangle: tangle.id().to_string(),
        });
    };
    // Step 4. The reference returns "valid" here without checking the signature.
    if matches!(kind, TangleKind::Feed { .. }) && msg.is_moot() {
        return check_signature(msg, digest, verifier);
    }
    check_account(msg, kind, sigkeys)?;
    if digest.id == tangle.id() {
        if msg.metadata.tangles.contains_key(&tangle.id()) {
            return Err(ValidationError::RootHasSelfTangle {
                tangle: tangle.id().to_string(),
            });
        }
    } else {
        let link = msg.metadata.tangles.get(&tangle.id()).ok_or_else(|| {
            ValidationError::MissingTangle {
                tangle: tangle.id().to_string(),
            }
        })?;
        if let TangleKind::Feed { account, domain } = kind {
            check_feed_identity(msg, account, domain)?;
        }
        check_position(link, tangle, true)?;
    }
    check_signature(msg, digest, verifier)
}

/// The consistency part of step 8 for a tangle the msg is *also* in, besides the one it is
/// validated against: known `prev`s must be shallower, and if all are known the depth must
/// follow them. (The reference checks nothing for such tangles; see docs/divergences.md.)
///
/// # Errors
/// [`ValidationError::PrevDepthNotLower`] or [`ValidationError::DepthNotMaxPrevPlusOne`].
pub fn validate_secondary(link: &TangleLink, tangle: &Tangle) -> Result<(), ValidationError> {
    if !tangle.has_root() {
        return Ok(());
    }
    check_position(link, tangle, false)
}

/// Step 7.
fn check_account(msg: &Msg, kind: &TangleKind, sigkeys: &Sigkeys) -> Result<(), ValidationError> {
    let meta = &msg.metadata;
    match kind {
        TangleKind::Feed { .. } | TangleKind::Weave => {
            if meta.account == Account::OwnTangle {
                return Err(ValidationError::AccountSelfInFeed);
            }
            if meta.account != Account::Any && !sigkeys.contains(&msg.sigkey) {
                return Err(ValidationError::SigkeyNotInAccount {
                    sigkey: msg.sigkey.to_string(),
                    allowed: join(sigkeys.iter()),
                    account: meta.account.to_string(),
                });
            }
        }
        TangleKind::Account => {
            if meta.account != Account::OwnTangle {
                return Err(ValidationError::AccountNotSelfInAccountTangle {
                    account: meta.account.to_string(),
                });
            }
            if let Some(tips) = &meta.account_tips {
                return Err(ValidationError::AccountTipsInAccountTangle {
                    account_tips: join(tips.iter()),
                });
            }
        }
    }
    Ok(())
}

fn check_feed_identity(
    msg: &Msg,
    feed_account: &Account,
    feed_domain: &str,
) -> Result<(), ValidationError> {
    if msg.metadata.domain != feed_domain {
        return Err(ValidationError::FeedDomainMismatch {
            domain: msg.metadata.domain.clone(),
            feed_domain: feed_domain.to_owned(),
        });
    }
    if msg.metadata.account != *feed_account {
        return Err(ValidationError::FeedAccountMismatch {
            account: msg.metadata.account.to_string(),
            feed_account: feed_account.to_string(),
        });
    }
    Ok(())
}

/// The context-dependent part of step 8.
fn check_position(
    link: &TangleLink,
    tangle: &Tangle,
    require_known_prev: bool,
) -> Result<(), ValidationError> {
    let mut unknown = 0usize;
    let mut smallest_gap = u64::MAX;
    for prev in &link.prev {
        let Some(prev_depth) = tangle.depth(prev) else {
            unknown += 1;
            continue;
        };
        if link.depth <= prev_depth {
            return Err(ValidationError::PrevDepthNotLower {
                prev: prev.to_string(),
            });
        }
        smallest_gap = smallest_gap.min(link.depth - prev_depth);
    }
    if unknown == link.prev.len() {
        return if require_known_prev {
            Err(ValidationError::AllPrevUnknown)
        } else {
            Ok(())
        };
    }
    if unknown == 0 && smallest_gap != 1 {
        return Err(ValidationError::DepthNotMaxPrevPlusOne);
    }
    Ok(())
}

/// Step 9.
fn check_signature(
    msg: &Msg,
    digest: &Digest,
    verifier: &mut Verifier,
) -> Result<(), ValidationError> {
    if verifier.verify_digest(msg, digest) {
        Ok(())
    } else {
        Err(ValidationError::SigInvalid)
    }
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items
        .map(|item| item.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
