//! Promises, as pzp-promise 1.0.0 keeps them: a token (base58 of 32 random bytes) that lets
//! whoever presents it make this peer follow them (`follow`) or add their key to this peer's
//! account (`account-add`), once.
//!
//! The table is pure: the caller supplies the time and the random bytes, applies the
//! effect (a follow, an account add) and persists the table (`file.rs`) before answering the
//! redeemer. Its JSON is pzp-promise's `promises.json`, `[[token, {type, account}], …]` in
//! creation order, with one addition: `expires` (ms since the Unix epoch), which pzp-promise
//! does not have (its promises live until redeemed or revoked; ours may also expire).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::transport::Token;

/// Most promises a peer keeps open; creating more is refused until some are redeemed,
/// revoked or expired. Remote redeemers can only shrink the table; the bound stops a runaway
/// script from growing the file without limit.
pub const PROMISES_MAX: usize = 4096;

/// What a promise lets its redeemer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromiseKind {
    /// Follow the redeemer's account.
    #[serde(rename = "follow")]
    Follow,
    /// Add the redeemer's key to the account.
    #[serde(rename = "account-add")]
    AccountAdd,
}

impl PromiseKind {
    /// The name in files and URIs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            PromiseKind::Follow => "follow",
            PromiseKind::AccountAdd => "account-add",
        }
    }
}

/// One promise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promise {
    /// What it allows.
    #[serde(rename = "type")]
    pub kind: PromiseKind,
    /// The account that follows, or that gets the key (this peer's account).
    pub account: String,
    /// When it stops being redeemable, in ms since the Unix epoch (ours; absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

/// Why a redemption or a creation is refused. The texts are pzp-promise's where it has one,
/// so a JS redeemer sees the error it would see from a JS issuer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PromiseError {
    /// No such token (never issued, or already redeemed or revoked).
    #[error("Invalid token")]
    Unknown,
    /// The token is for the other kind of promise.
    #[error("Invalid token")]
    WrongKind,
    /// The token expired.
    #[error("Invalid token: it expired")]
    Expired,
    /// The same token is being redeemed right now by another call.
    #[error("Invalid token: it is being redeemed")]
    InProgress,
    /// [`PROMISES_MAX`] promises are open.
    #[error("too many open promises ({PROMISES_MAX}); revoke some first")]
    Full,
    /// The file does not hold a promise table.
    #[error("promises file does not parse: {0}")]
    Corrupt(String),
}

/// The open promises, in creation order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Promises {
    entries: Vec<(Token, Promise)>,
    redeeming: BTreeMap<Token, ()>,
}

impl Promises {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads pzp-promise's JSON (with our optional `expires`).
    ///
    /// # Errors
    /// [`PromiseError::Corrupt`] if it is not a list of `[token, promise]` pairs.
    pub fn from_json(text: &str) -> Result<Self, PromiseError> {
        let pairs: Vec<(String, Promise)> =
            serde_json::from_str(text).map_err(|error| PromiseError::Corrupt(error.to_string()))?;
        let mut entries = Vec::with_capacity(pairs.len());
        for (text, promise) in pairs {
            let token = Token::from_base58(&text)
                .map_err(|error| PromiseError::Corrupt(error.to_string()))?;
            entries.push((token, promise));
        }
        Ok(Self {
            entries,
            redeeming: BTreeMap::new(),
        })
    }

    /// The JSON the file holds: pzp-promise's `JSON.stringify([...map])`.
    #[must_use]
    pub fn to_json(&self) -> String {
        let pairs: Vec<(String, &Promise)> = self
            .entries
            .iter()
            .map(|(token, promise)| (token.to_base58(), promise))
            .collect();
        serde_json::to_string(&pairs).expect("invariant: promises serialize")
    }

    /// How many promises are open.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is open.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a promise under the token made of `random` (32 fresh random bytes); drops expired
    /// ones first. Persist the table before handing the token out.
    ///
    /// # Errors
    /// [`PromiseError::Full`].
    pub fn create(
        &mut self,
        promise: Promise,
        random: [u8; 32],
        now_ms: u64,
    ) -> Result<Token, PromiseError> {
        self.prune(now_ms);
        if self.entries.len() >= PROMISES_MAX {
            return Err(PromiseError::Full);
        }
        let token = Token(random);
        self.entries.retain(|(existing, _)| *existing != token);
        self.entries.push((token, promise));
        Ok(token)
    }

    /// Starts redeeming `token` for `kind`: the promise, if it may be redeemed now. Finish
    /// with [`Promises::finish`] (after the effect is durable) or [`Promises::abandon`].
    ///
    /// # Errors
    /// Unknown, wrong kind, expired (then it is dropped), or being redeemed already.
    pub fn begin(
        &mut self,
        token: &Token,
        kind: PromiseKind,
        now_ms: u64,
    ) -> Result<Promise, PromiseError> {
        let promise = self
            .entries
            .iter()
            .find(|(existing, _)| existing == token)
            .map(|(_, promise)| promise.clone())
            .ok_or(PromiseError::Unknown)?;
        if promise.kind != kind {
            return Err(PromiseError::WrongKind);
        }
        if promise.expires.is_some_and(|expires| now_ms >= expires) {
            self.remove(token);
            return Err(PromiseError::Expired);
        }
        if self.redeeming.insert(*token, ()).is_some() {
            return Err(PromiseError::InProgress);
        }
        Ok(promise)
    }

    /// The effect is done: the promise is spent. Persist the table, then answer.
    pub fn finish(&mut self, token: &Token) {
        self.redeeming.remove(token);
        self.remove(token);
    }

    /// The effect failed: the promise stays redeemable.
    pub fn abandon(&mut self, token: &Token) {
        self.redeeming.remove(token);
    }

    /// Withdraws a promise (pzp-promise's `revoke`); whether it existed.
    pub fn revoke(&mut self, token: &Token) -> bool {
        self.redeeming.remove(token);
        self.remove(token)
    }

    /// Drops the expired promises; how many.
    pub fn prune(&mut self, now_ms: u64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(token, promise)| {
            self.redeeming.contains_key(token) || promise.expires.is_none_or(|at| now_ms < at)
        });
        before - self.entries.len()
    }

    fn remove(&mut self, token: &Token) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(existing, _)| existing != token);
        before != self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow(expires: Option<u64>) -> Promise {
        Promise {
            kind: PromiseKind::Follow,
            account: "ACCOUNT".to_owned(),
            expires,
        }
    }

    #[test]
    fn a_promise_is_redeemed_once() {
        let mut promises = Promises::new();
        let token = promises.create(follow(None), [7; 32], 0).expect("room");
        assert_eq!(
            promises.begin(&token, PromiseKind::AccountAdd, 1),
            Err(PromiseError::WrongKind)
        );
        assert_eq!(
            promises.begin(&token, PromiseKind::Follow, 1),
            Ok(follow(None))
        );
        assert_eq!(
            promises.begin(&token, PromiseKind::Follow, 1),
            Err(PromiseError::InProgress)
        );
        promises.finish(&token);
        assert_eq!(
            promises.begin(&token, PromiseKind::Follow, 2),
            Err(PromiseError::Unknown)
        );
        assert!(promises.is_empty());
    }

    #[test]
    fn an_abandoned_redemption_leaves_the_promise_open_and_expiry_ends_it() {
        let mut promises = Promises::new();
        let token = promises
            .create(follow(Some(100)), [1; 32], 0)
            .expect("room");
        promises
            .begin(&token, PromiseKind::Follow, 10)
            .expect("open");
        promises.abandon(&token);
        assert_eq!(
            promises.begin(&token, PromiseKind::Follow, 100),
            Err(PromiseError::Expired)
        );
        assert!(promises.is_empty(), "an expired promise is dropped");
    }

    #[test]
    fn the_file_is_pzp_promise_json() {
        let mut promises = Promises::new();
        let token = promises.create(follow(None), [9; 32], 0).expect("room");
        let json = promises.to_json();
        assert_eq!(
            json,
            format!("[[\"{token}\",{{\"type\":\"follow\",\"account\":\"ACCOUNT\"}}]]")
        );
        assert_eq!(Promises::from_json(&json), Ok(promises));
        assert!(matches!(
            Promises::from_json("{"),
            Err(PromiseError::Corrupt(_))
        ));
        assert!(matches!(
            Promises::from_json("[[\"x\",{\"type\":\"follow\",\"account\":\"A\"}]]"),
            Err(PromiseError::Corrupt(_))
        ));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut promises = Promises::new();
        for index in 0..PROMISES_MAX {
            let mut random = [0u8; 32];
            random[..8].copy_from_slice(&(index as u64 + 1).to_le_bytes());
            promises.create(follow(None), random, 0).expect("room");
        }
        assert_eq!(
            promises.create(follow(None), [0xff; 32], 0),
            Err(PromiseError::Full)
        );
    }
}
