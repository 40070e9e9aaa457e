//! Who may connect to a hub, as staltz/ppppp-hub decides it: members always; a stranger who
//! presents an unused hub token in the SHSE hello becomes a member (the token is spent); the
//! very first peer to connect to a hub without members becomes its first member
//! (bootstrap); everyone else is refused. Tokens are base58 of 32 random bytes, made by
//! `hub.createToken` for any member, and spent once.
//!
//! Pure: the hub persists [`Admission::to_files`] (`members.json`, `tokens.json`, JSON
//! arrays of base58 strings as the reference hub keeps them) before the handshake or the
//! `createToken` call that changed them is answered.

use std::collections::BTreeSet;

use crate::transport::{PublicKey, Token};

/// Most unspent hub tokens; `createToken` is refused beyond (each is a standing invitation,
/// and any member can ask for them).
pub const HUB_TOKENS_MAX: usize = 4096;

/// Most members a hub keeps.
pub const HUB_MEMBERS_MAX: usize = 65_536;

/// The verdict on a connecting peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Already a member.
    Member,
    /// Became a member by spending a token (persist).
    Joined,
    /// Became the first member (persist).
    Bootstrapped,
    /// Refused: not a member, no valid token.
    Stranger,
    /// Refused: the hub has [`HUB_MEMBERS_MAX`] members.
    Full,
}

impl Verdict {
    /// Whether the peer may connect.
    #[must_use]
    pub fn admitted(self) -> bool {
        matches!(
            self,
            Verdict::Member | Verdict::Joined | Verdict::Bootstrapped
        )
    }

    /// Whether the members or tokens changed.
    #[must_use]
    pub fn changed(self) -> bool {
        matches!(self, Verdict::Joined | Verdict::Bootstrapped)
    }
}

/// Why a file does not load, or a token cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionError {
    /// `members.json` or `tokens.json` is not a list of base58 keys.
    #[error("{file} does not parse: {reason}")]
    Corrupt {
        /// Which file.
        file: &'static str,
        /// Why.
        reason: String,
    },
    /// [`HUB_TOKENS_MAX`] tokens are unspent.
    #[error("the hub has {HUB_TOKENS_MAX} unspent tokens; spend some first")]
    TooManyTokens,
}

/// Members and unspent tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// Open to anyone (a lab hub): no membership, tokens are still made but not needed.
    open: bool,
    members: BTreeSet<PublicKey>,
    tokens: BTreeSet<Token>,
}

fn parse_list(text: &str, file: &'static str) -> Result<Vec<[u8; 32]>, AdmissionError> {
    let corrupt = |reason: String| AdmissionError::Corrupt { file, reason };
    let items: Vec<String> = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    items
        .iter()
        .map(|item| {
            PublicKey::from_base58(item)
                .map(|key| key.0)
                .map_err(|e| corrupt(e.to_string()))
        })
        .collect()
}

impl Admission {
    /// A hub with no members yet (the first peer bootstraps it); `open` admits anyone.
    #[must_use]
    pub fn new(open: bool) -> Self {
        Self {
            open,
            ..Self::default()
        }
    }

    /// Loads the two files' contents (`None`: no file yet).
    ///
    /// # Errors
    /// [`AdmissionError::Corrupt`].
    pub fn from_files(
        open: bool,
        members: Option<&str>,
        tokens: Option<&str>,
    ) -> Result<Self, AdmissionError> {
        let mut admission = Self::new(open);
        for key in parse_list(members.unwrap_or("[]"), "members.json")? {
            admission.members.insert(PublicKey(key));
        }
        for token in parse_list(tokens.unwrap_or("[]"), "tokens.json")? {
            admission.tokens.insert(Token(token));
        }
        Ok(admission)
    }

    /// The files' contents: (`members.json`, `tokens.json`).
    #[must_use]
    pub fn to_files(&self) -> (String, String) {
        let members: Vec<String> = self.members.iter().map(PublicKey::to_base58).collect();
        let tokens: Vec<String> = self.tokens.iter().map(Token::to_base58).collect();
        (
            serde_json::to_string(&members).expect("invariant: strings serialize"),
            serde_json::to_string(&tokens).expect("invariant: strings serialize"),
        )
    }

    /// Decides on a peer that proved `key` and sent `token` in its hello.
    pub fn admit(&mut self, key: PublicKey, token: Option<Token>) -> Verdict {
        if self.open || self.members.contains(&key) {
            return Verdict::Member;
        }
        let verdict = if token.is_some_and(|token| self.tokens.contains(&token)) {
            Verdict::Joined
        } else if self.members.is_empty() {
            Verdict::Bootstrapped
        } else {
            return Verdict::Stranger;
        };
        if self.members.len() >= HUB_MEMBERS_MAX {
            return Verdict::Full;
        }
        if let Some(token) = token.filter(|_| verdict == Verdict::Joined) {
            self.tokens.remove(&token);
        }
        self.members.insert(key);
        verdict
    }

    /// A new token from 32 fresh random bytes.
    ///
    /// # Errors
    /// [`AdmissionError::TooManyTokens`].
    pub fn create_token(&mut self, random: [u8; 32]) -> Result<Token, AdmissionError> {
        if self.tokens.len() >= HUB_TOKENS_MAX {
            return Err(AdmissionError::TooManyTokens);
        }
        let token = Token(random);
        self.tokens.insert(token);
        Ok(token)
    }

    /// How many members.
    #[must_use]
    pub fn members(&self) -> usize {
        self.members.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_then_members_then_tokens_once() {
        let (alice, bob, carol) = (PublicKey([1; 32]), PublicKey([2; 32]), PublicKey([3; 32]));
        let mut admission = Admission::new(false);
        assert_eq!(admission.admit(alice, None), Verdict::Bootstrapped);
        assert_eq!(admission.admit(alice, None), Verdict::Member);
        assert_eq!(admission.admit(bob, None), Verdict::Stranger);
        let token = admission.create_token([9; 32]).expect("room");
        assert_eq!(admission.admit(bob, Some(token)), Verdict::Joined);
        assert_eq!(
            admission.admit(carol, Some(token)),
            Verdict::Stranger,
            "spent"
        );
        assert_eq!(
            admission.admit(carol, Some(Token([8; 32]))),
            Verdict::Stranger,
            "forged"
        );
        let (members, tokens) = admission.to_files();
        let reloaded = Admission::from_files(false, Some(&members), Some(&tokens)).expect("loads");
        assert_eq!(reloaded, admission);
        assert!(Admission::from_files(false, Some("[\"x\"]"), None).is_err());
        assert_eq!(Admission::new(true).admit(carol, None), Verdict::Member);
    }
}
