//! `ppppp init` and `ppppp publish`: a peer directory with a keypair and a store.

use std::path::Path;

use anyhow::Context;
use proto::db::Db;
use proto::keys::{Keypair, SEED_LEN};

use crate::keyfile;

use super::{open_writer, secret_path, store_dir};

/// Bytes of OS entropy in an account nonce (the reference's 32).
const ACCOUNT_NONCE_BYTES: usize = 32;
/// The subdomain of the account the reference's db API creates (`account__account`).
const ACCOUNT_SUBDOMAIN: &str = "account";

/// `ppppp init --dir DIR`: creates `DIR/db` (the store) and `DIR/secret` (a new keypair);
/// prints the public key. Refuses to touch an existing secret.
pub(super) fn init(dir: &Path) -> anyhow::Result<()> {
    let secret = secret_path(dir);
    anyhow::ensure!(
        !secret.exists(),
        "{} already exists; refusing to overwrite a secret",
        secret.display()
    );
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut store = crate::store::DiskStore::create(store_dir(dir))?;
    proto::store::Store::flush(&mut store)?;
    drop(store);
    let keypair = Keypair::from_random(random_bytes()?);
    keyfile::write_new(&secret, &keypair)?;
    println!("{}", keypair.public());
    Ok(())
}

/// `ppppp publish`: appends `data` to the feed `domain` of the directory's account
/// (created on first use), durably, and prints the new msg's ID.
pub(super) fn publish(dir: &Path, domain: &str, data: &str) -> anyhow::Result<()> {
    let data: serde_json::Value = serde_json::from_str(data).context("--data is not JSON")?;
    let keypair = keyfile::read(&secret_path(dir))?;
    let mut db = Db::new(open_writer(dir)?);
    let nonce = bs58::encode(random_bytes::<ACCOUNT_NONCE_BYTES>()?).into_string();
    let account = db
        .find_or_create_account(&keypair, ACCOUNT_SUBDOMAIN, &nonce)
        .context("cannot find or create the account")?;
    let id = db
        .publish(&keypair, &account, domain, data, &[])
        .context("cannot publish")?;
    db.flush()?;
    println!("{id}");
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
