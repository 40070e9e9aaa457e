//! Writing: accounts, feeds, and key management over a [`Db`] (the reference's
//! `db.account.*` and `db.feed.publish`).

use std::ops::ControlFlow;

use serde_json::Value;
use thiserror::Error;

use crate::account;
use crate::db::{AddError, Added, Db};
use crate::ids::{AccountId, MsgId, PubKey, TangleId};
use crate::keys::Keypair;
use crate::msg::{self, ACCOUNT_DOMAIN_PREFIX, Account, CreateError, Draft, Msg};
use crate::store::Store;

/// Why a write failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PublishError<E: std::error::Error + 'static> {
    /// The msg could not be made.
    #[error(transparent)]
    Create(#[from] CreateError),
    /// The made msg was refused (e.g. the key is not in the account).
    #[error("publish refused: {0}")]
    Refused(#[source] AddError<E>),
    /// The store failed.
    #[error("store failure: {0}")]
    Store(#[source] E),
    /// The account is not known locally.
    #[error("account {0} is not known locally")]
    UnknownAccount(AccountId),
    /// More extra tangles than a msg's metadata can name.
    #[error("{count} extra tangles, more than the {max} a msg can name")]
    TooManyTangles {
        /// How many were given.
        count: usize,
        /// The bound ([`crate::db::EMPTY_TANGLES_CACHED_MAX`]; 65,535 bytes of metadata
        /// hold fewer).
        max: usize,
    },
}

impl<S: Store> Db<S> {
    /// The account (of `subdomain`) whose tangle adds `key`, first in receive order — the
    /// reference's `account.find`.
    ///
    /// # Errors
    /// Store failures.
    pub fn find_account(
        &self,
        key: &PubKey,
        subdomain: &str,
    ) -> Result<Option<AccountId>, S::Error> {
        let domain = format!("{ACCOUNT_DOMAIN_PREFIX}{subdomain}");
        let mut found = None;
        self.store().scan(&mut |record| {
            let meta = &record.msg.metadata;
            if meta.account != Account::OwnTangle || meta.domain != domain {
                return ControlFlow::Continue(());
            }
            let Ok(data) = account::AccountData::parse(&record.msg.data) else {
                return ControlFlow::Continue(());
            };
            if data.action == account::Action::Add && data.key.bytes == key.as_str() {
                found = Some(match meta.tangles.keys().next() {
                    Some(account) => *account,
                    None => record.id,
                });
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })?;
        Ok(found)
    }

    /// Creates an account rooted in a msg by `keypair`; returns its ID.
    ///
    /// # Errors
    /// [`PublishError`].
    pub fn create_account(
        &mut self,
        keypair: &Keypair,
        subdomain: &str,
        nonce: &str,
    ) -> Result<AccountId, PublishError<S::Error>> {
        let root = Msg::create_account_root(keypair, subdomain, nonce)?;
        self.add_own(root)
    }

    /// The account of `keypair` under `subdomain`, created (with `nonce`) if there is none.
    ///
    /// # Errors
    /// [`PublishError`].
    pub fn find_or_create_account(
        &mut self,
        keypair: &Keypair,
        subdomain: &str,
        nonce: &str,
    ) -> Result<AccountId, PublishError<S::Error>> {
        match self
            .find_account(&keypair.public(), subdomain)
            .map_err(PublishError::Store)?
        {
            Some(account) => Ok(account),
            None => self.create_account(keypair, subdomain, nonce),
        }
    }

    /// The feed of `(account, domain)`, creating its moot if it is not stored yet.
    ///
    /// # Errors
    /// [`PublishError`].
    pub fn init_feed(
        &mut self,
        keypair: &Keypair,
        account: &AccountId,
        domain: &str,
    ) -> Result<TangleId, PublishError<S::Error>> {
        let feed = msg::feed_id(account, domain);
        if self.get(&feed).map_err(PublishError::Store)?.is_none() {
            let moot = Msg::create_moot(*account, domain, keypair)?;
            self.add_own(moot)?;
        }
        Ok(feed)
    }

    /// Appends `data` to the feed `(account, domain)`, also placing it in `extra_tangles`
    /// (e.g. a thread). Returns the new msg's ID.
    ///
    /// # Errors
    /// [`PublishError`].
    pub fn publish(
        &mut self,
        keypair: &Keypair,
        account: &AccountId,
        domain: &str,
        data: Value,
        extra_tangles: &[TangleId],
    ) -> Result<MsgId, PublishError<S::Error>> {
        if extra_tangles.len() >= crate::db::EMPTY_TANGLES_CACHED_MAX {
            return Err(PublishError::TooManyTangles {
                count: extra_tangles.len(),
                max: crate::db::EMPTY_TANGLES_CACHED_MAX - 1,
            });
        }
        let feed = self.init_feed(keypair, account, domain)?;
        let account_tips = self.account_tips(account)?;
        let mut tangle_ids = extra_tangles.to_vec();
        tangle_ids.push(feed);
        for id in &tangle_ids {
            self.tangle(id).map_err(PublishError::Store)?;
        }
        let draft_msg = {
            let tangles = tangle_ids
                .iter()
                .map(|id| self.cached_tangle(id))
                .collect::<Vec<_>>();
            let draft = Draft {
                data,
                domain: domain.to_owned(),
                account: Account::Id(*account),
                account_tips: Some(account_tips),
                tangles,
            };
            Msg::create(draft, keypair)?
        };
        self.add_own(draft_msg)
    }

    /// Adds `key` to `account` with `powers`, authorized by the key's `consent`
    /// ([`crate::account::consent`]) and signed by `signer`.
    ///
    /// # Errors
    /// [`PublishError`].
    pub fn account_add(
        &mut self,
        signer: &Keypair,
        account: &AccountId,
        key: &PubKey,
        consent: &str,
        powers: &[&str],
    ) -> Result<MsgId, PublishError<S::Error>> {
        let mut data = serde_json::json!({
            "action": "add",
            "key": {"purpose": "sig", "algorithm": "ed25519", "bytes": key.as_str()},
            "consent": consent,
        });
        if !powers.is_empty()
            && let Some(object) = data.as_object_mut()
        {
            object.insert("powers".to_owned(), Value::from(powers.to_vec()));
        }
        self.publish_account_msg(signer, account, data)
    }

    /// Removes `key` from `account`, signed by `signer`.
    ///
    /// # Errors
    /// [`PublishError`].
    pub fn account_del(
        &mut self,
        signer: &Keypair,
        account: &AccountId,
        key: &PubKey,
    ) -> Result<MsgId, PublishError<S::Error>> {
        let data = serde_json::json!({
            "action": "del",
            "key": {"purpose": "sig", "algorithm": "ed25519", "bytes": key.as_str()},
        });
        self.publish_account_msg(signer, account, data)
    }

    fn publish_account_msg(
        &mut self,
        signer: &Keypair,
        account: &AccountId,
        data: Value,
    ) -> Result<MsgId, PublishError<S::Error>> {
        let root = self
            .get(account)
            .map_err(PublishError::Store)?
            .ok_or(PublishError::UnknownAccount(*account))?;
        self.tangle(account).map_err(PublishError::Store)?;
        let created = {
            let draft = Draft {
                data,
                domain: root.metadata.domain.clone(),
                account: Account::OwnTangle,
                account_tips: None,
                tangles: vec![self.cached_tangle(account)],
            };
            Msg::create(draft, signer)?
        };
        self.add_own(created)
    }

    /// The account tangle's tips, which new feed msgs name as `accountTips`.
    fn account_tips(&mut self, account: &AccountId) -> Result<Vec<MsgId>, PublishError<S::Error>> {
        let tangle = self.tangle(account).map_err(PublishError::Store)?;
        if !tangle.has_root() {
            return Err(PublishError::UnknownAccount(*account));
        }
        Ok(tangle.tips().iter().copied().collect())
    }

    fn add_own(&mut self, created: Msg) -> Result<MsgId, PublishError<S::Error>> {
        let id = created.id();
        match self.add(created, None) {
            Ok(Added::Appended(_) | Added::ReplacedErased(_) | Added::AlreadyStored) => Ok(id),
            Err(err) => Err(PublishError::Refused(err)),
        }
    }
}
