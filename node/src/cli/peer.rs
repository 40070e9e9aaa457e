//! `ppppp init`: a peer directory with a keypair, an account and a store; and the entropy
//! the command line draws keys and nonces from.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::Context;
use proto::db::Db;
use proto::keys::{Keypair, SEED_LEN};

use crate::keyfile;

use super::dir::{secret_path, store_dir};

/// Bytes of OS entropy in an account nonce (the reference's 32).
const ACCOUNT_NONCE_BYTES: usize = 32;
/// The subdomain of the account the reference's db API creates (`account__account`).
pub(super) const ACCOUNT_SUBDOMAIN: &str = "account";

/// `ppppp init --dir DIR`: creates `DIR` (mode 0700 if new), `DIR/secret` (a new keypair),
/// `DIR/db` (the store) holding the account's root msg; prints the account and the key.
/// Refuses to touch an existing secret.
pub(super) fn init(dir: &Path) -> anyhow::Result<()> {
    let secret = secret_path(dir);
    anyhow::ensure!(
        !secret.exists(),
        "{} already exists; refusing to overwrite a secret",
        secret.display()
    );
    create_private_dir(dir)?;
    let keypair = Keypair::from_random(random_bytes()?);
    let mut db = Db::new(crate::store::DiskStore::create(store_dir(dir))?);
    let account = db
        .find_or_create_account(&keypair, ACCOUNT_SUBDOMAIN, &new_account_nonce()?)
        .context("cannot create the account")?;
    db.flush()?;
    drop(db);
    // The secret last: a directory with a secret is a finished one.
    keyfile::write_new(&secret, &keypair)?;
    let mut times = super::received::ReceivedTimes::load(dir)?;
    times.note(&[account], super::received::now_ms())?;
    let answer = serde_json::json!({
        "account": account.to_string(),
        "key": keypair.public().to_string(),
    });
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

/// Creates `dir` (and its parents); a new leaf is private (mode 0700): it holds a secret.
pub(super) fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// A fresh account nonce.
pub(super) fn new_account_nonce() -> anyhow::Result<String> {
    Ok(bs58::encode(random_bytes::<ACCOUNT_NONCE_BYTES>()?).into_string())
}

/// A store without its secret lost its identity: its account's future msgs could not be
/// signed. Making a new keypair beside it would hide that, so it is refused.
pub(super) fn check_no_store_without_secret(dir: &Path) -> anyhow::Result<()> {
    let log = store_dir(dir).join(crate::store::LOG_FILE);
    anyhow::ensure!(
        !log.exists(),
        "{} holds a store but no secret ({} is missing): refusing to make a new identity for \
         an existing store; restore the secret, or move the directory away to start afresh",
        dir.display(),
        secret_path(dir).display()
    );
    Ok(())
}

/// Fresh bytes from the operating system: the program edge, where keys and nonces are made.
#[expect(
    clippy::disallowed_methods,
    reason = "keys and account nonces need OS entropy; this is the program edge"
)]
pub(super) fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("no OS entropy: {err}"))?;
    Ok(bytes)
}

const _: () = assert!(SEED_LEN == 32, "Keypair::from_random takes 32 bytes");
