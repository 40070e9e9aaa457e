//! Making new msgs: regular msgs, moots and account roots (protocol.md §3.3, §4.1, §5.2).

use serde_json::{Value, json};
use thiserror::Error;

use super::{
    ACCOUNT_DOMAIN_PREFIX, Account, MSG_PART_BYTES_MAX, Metadata, Msg, Signature, represent_data,
    validate_domain,
};
use crate::ids::{AccountId, MsgId};
use crate::keys::Keypair;
use crate::tangle::Tangle;
use crate::validate::ValidationError;

/// Why a msg could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The domain breaks the domain rule (the reference's message for it, as `msg check`
    /// gives it, is kept in `rule`; this one says what a domain must be).
    #[error(
        "cannot create msg: domain {domain:?} is not 3 to 100 characters of a-z, A-Z, 0-9 \
         or _"
    )]
    Domain {
        /// The domain given.
        domain: String,
        /// The rule it breaks.
        rule: ValidationError,
    },
    /// Data must be an object, a string or null.
    #[error("cannot create msg: data must be an object, a string or null")]
    DataType,
    /// The msg would exceed the protocol's size limit.
    #[error("cannot create msg: {part} would be {len} bytes, more than {MSG_PART_BYTES_MAX}")]
    TooLarge {
        /// Which part: data or metadata.
        part: &'static str,
        /// Its size.
        len: usize,
    },
    /// A tangle to write into has no known root.
    #[error("cannot create msg: tangle {0} has no known root")]
    TangleWithoutRoot(MsgId),
}

/// What a new msg says, before it is placed in its tangles and signed.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    /// The data: an object, an (encrypted) string, or null.
    pub data: Value,
    /// The domain.
    pub domain: String,
    /// The owner.
    pub account: Account,
    /// The owner's account tips (`None` for account msgs).
    pub account_tips: Option<Vec<MsgId>>,
    /// The tangles the msg joins; each gets the next depth and lipmaa `prev`.
    pub tangles: Vec<&'a Tangle>,
}

impl Msg {
    /// Places a draft in its tangles and signs it, as the reference's `MsgV4.create` does.
    ///
    /// # Errors
    /// [`CreateError`] for a bad domain or data type, an unrooted tangle or an oversized msg.
    pub fn create(draft: Draft<'_>, keypair: &Keypair) -> Result<Self, CreateError> {
        validate_domain(&draft.domain).map_err(|rule| CreateError::Domain {
            domain: draft.domain.clone(),
            rule,
        })?;
        if !matches!(
            draft.data,
            Value::Null | Value::Object(_) | Value::String(_)
        ) {
            return Err(CreateError::DataType);
        }
        let (data_hash, data_size) = represent_data(&draft.data);
        let data_len = usize::try_from(data_size).unwrap_or(usize::MAX);
        if data_len > MSG_PART_BYTES_MAX {
            return Err(CreateError::TooLarge {
                part: "data",
                len: data_len,
            });
        }
        let mut tangles = std::collections::BTreeMap::new();
        for tangle in draft.tangles {
            if !tangle.has_root() {
                return Err(CreateError::TangleWithoutRoot(tangle.id()));
            }
            tangles.insert(tangle.id(), tangle.next_link());
        }
        let account_tips = draft.account_tips.map(|mut tips| {
            tips.sort();
            tips
        });
        let metadata = Metadata {
            data_hash: Some(data_hash),
            data_size,
            account: draft.account,
            account_tips,
            tangles,
            domain: draft.domain,
        };
        Self::sign(draft.data, metadata, keypair)
    }

    /// A moot (feed root) for `(account, domain)`, signed by `keypair`.
    ///
    /// # Errors
    /// [`CreateError::Domain`] for a bad domain.
    pub fn create_moot(
        account: AccountId,
        domain: &str,
        keypair: &Keypair,
    ) -> Result<Self, CreateError> {
        validate_domain(domain).map_err(|rule| CreateError::Domain {
            domain: domain.to_owned(),
            rule,
        })?;
        let metadata = Metadata {
            data_hash: None,
            data_size: 0,
            account: Account::Id(account),
            account_tips: None,
            tangles: std::collections::BTreeMap::new(),
            domain: domain.to_owned(),
        };
        Self::sign(Value::Null, metadata, keypair)
    }

    /// An account root: the msg whose ID is the new account's ID. The reference's DB uses
    /// the subdomain `account` (domain `account__account`); `nonce` makes the ID unique.
    ///
    /// # Errors
    /// [`CreateError::Domain`] for a bad subdomain.
    pub fn create_account_root(
        keypair: &Keypair,
        subdomain: &str,
        nonce: &str,
    ) -> Result<Self, CreateError> {
        let data = json!({
            "action": "add",
            "key": {"purpose": "shs-and-sig", "algorithm": "ed25519", "bytes": keypair.public().as_str()},
            "nonce": nonce,
            "powers": ["add", "del", "external-encryption", "internal-encryption"],
        });
        Self::create(
            Draft {
                data,
                domain: format!("{ACCOUNT_DOMAIN_PREFIX}{subdomain}"),
                account: Account::OwnTangle,
                account_tips: None,
                tangles: Vec::new(),
            },
            keypair,
        )
    }

    fn sign(data: Value, metadata: Metadata, keypair: &Keypair) -> Result<Self, CreateError> {
        let canonical = metadata.canonical();
        if canonical.len() > MSG_PART_BYTES_MAX {
            return Err(CreateError::TooLarge {
                part: "metadata",
                len: canonical.len(),
            });
        }
        let sig = Signature::from_bytes(keypair.sign(&super::signable_of_canonical(&canonical)));
        Ok(Self {
            data,
            metadata,
            sigkey: keypair.public(),
            sig,
        })
    }
}
