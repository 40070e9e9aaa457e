//! The account a peer joined as a device (`ppppp invite use` of an account-add invite), kept
//! in `DIR/joined-account.json` so that the peer stays a device of it across restarts: a
//! key's own account is found by scanning the store (the first account tangle adding the
//! key), which would find the key's former account again.

use std::path::{Path, PathBuf};

use anyhow::Context;
use proto::db::Db;
use proto::ids::AccountId;
use proto::keys::Keypair;
use serde::{Deserialize, Serialize};

use super::peer::ACCOUNT_SUBDOMAIN;
use crate::store::DiskStore;

/// The version of the file's format.
const JOINED_FILE_VERSION: u64 = 1;

/// Where the joined account is kept.
fn joined_path(dir: &Path) -> PathBuf {
    dir.join("joined-account.json")
}

/// A peer's joined account, and the account its key had made before (kept in the store,
/// no longer published in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Joined {
    pub(crate) account: AccountId,
    pub(crate) former: AccountId,
}

#[derive(Serialize, Deserialize)]
struct JoinedJson {
    version: u64,
    account: String,
    former: String,
}

/// The account the peer in `dir` joined, if it joined one.
///
/// # Errors
/// An unreadable or malformed file (the peer must not silently fall back to its former
/// account).
pub(crate) fn load(dir: &Path) -> anyhow::Result<Option<Joined>> {
    let path = joined_path(dir);
    let Some(text) = crate::durable::read_optional(&path)
        .with_context(|| format!("cannot read {}", path.display()))?
    else {
        return Ok(None);
    };
    let parsed: JoinedJson =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    anyhow::ensure!(
        parsed.version == JOINED_FILE_VERSION,
        "{}: unknown version {}",
        path.display(),
        parsed.version
    );
    let account = AccountId::parse(&parsed.account)
        .with_context(|| format!("{}: bad account", path.display()))?;
    let former = AccountId::parse(&parsed.former)
        .with_context(|| format!("{}: bad former account", path.display()))?;
    Ok(Some(Joined { account, former }))
}

/// Records `joined` durably (the file is replaced whole or not at all).
///
/// # Errors
/// Any I/O error.
pub(crate) fn save(dir: &Path, joined: Joined) -> anyhow::Result<()> {
    let json = JoinedJson {
        version: JOINED_FILE_VERSION,
        account: joined.account.to_string(),
        former: joined.former.to_string(),
    };
    let path = joined_path(dir);
    crate::durable::write_atomically(&path, serde_json::to_string(&json)?.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The account the peer in `dir` publishes in: the joined one, else its key's own (if the
/// store holds it yet).
///
/// # Errors
/// A bad joined-account file; store failures.
pub(crate) fn find_account(
    dir: &Path,
    db: &Db<DiskStore>,
    keypair: &Keypair,
) -> anyhow::Result<Option<AccountId>> {
    if let Some(joined) = load(dir)? {
        return Ok(Some(joined.account));
    }
    Ok(db.find_account(&keypair.public(), ACCOUNT_SUBDOMAIN)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joined_account_is_read_back_and_a_damaged_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()).expect("no file"), None);
        let account = proto::msg::Msg::create_account_root(
            &Keypair::from_random([7; 32]),
            ACCOUNT_SUBDOMAIN,
            "nonce",
        )
        .expect("root")
        .id();
        let former = proto::msg::Msg::create_account_root(
            &Keypair::from_random([8; 32]),
            ACCOUNT_SUBDOMAIN,
            "nonce",
        )
        .expect("root")
        .id();
        let joined = Joined { account, former };
        save(dir.path(), joined).expect("saves");
        assert_eq!(load(dir.path()).expect("reads"), Some(joined));
        std::fs::write(joined_path(dir.path()), "{").expect("damage");
        assert!(load(dir.path()).is_err());
    }
}
