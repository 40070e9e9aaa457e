//! Answering the `ppppp` commands from a stopped peer's directory: the store opened directly
//! (read-only for reads, with the writer lock for writes), the goals and receive-time files
//! beside it. Every answer is built by the same functions a running peer uses
//! (`cli::query`, `cli::follow`), so the output is the same either way.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use proto::db::Db;
use proto::goals::Goal;
use proto::ids::{AccountId, MsgId, TangleId};
use proto::keys::Keypair;
use serde_json::{Value, json};

use super::control::request::{ReadRequest, Request};
use super::follow::{self, FOLLOWS_SUBDOMAIN, GoalsFile};
use super::peer::{ACCOUNT_SUBDOMAIN, new_account_nonce};
use super::query::{self, READ_PAGE_MSGS};
use super::received::{self, ReceivedTimes};
use crate::keyfile;
use crate::store::DiskStore;

/// Answers `request` from the directory of a peer that is not running.
///
/// # Errors
/// What went wrong, for a person.
pub(crate) fn execute(dir: &Path, request: Request) -> anyhow::Result<Value> {
    let keypair = read_keypair(dir)?;
    match request {
        Request::Whoami => {
            let db = Db::new(super::dir::open_reader(dir)?);
            let account = super::joined::find_account(dir, &db, &keypair)?;
            Ok(query::whoami_value(
                account.as_ref(),
                keypair.public().as_str(),
                None,
            ))
        }
        Request::Publish { domain, data } => publish(dir, &keypair, &domain, data),
        Request::Follow {
            account,
            domain,
            goal,
        } => follow(dir, &keypair, account, &domain, goal),
        Request::Unfollow { account } => unfollow(dir, &keypair, account),
        Request::Status => status(dir, &keypair),
        Request::Peers => Ok(json!({"peers": []})),
        _ => anyhow::bail!(
            "no peer is running in {}; this needs one (start it with `ppppp serve --dir {}`)",
            dir.display(),
            dir.display()
        ),
    }
}

/// Streams a read to `out`, one line per msg.
///
/// # Errors
/// `--live` (it needs a running peer), a store failure, or output failing.
pub(crate) fn stream(dir: &Path, read: &ReadRequest, out: &mut impl Write) -> anyhow::Result<()> {
    anyhow::ensure!(
        !read.live,
        "no peer is running in {}: --live streams what a running peer adds (start it with \
         `ppppp serve --dir {}`)",
        dir.display(),
        dir.display()
    );
    read_keypair(dir)?;
    let mut db = Db::new(super::dir::open_reader(dir)?);
    let times = ReceivedTimes::load(dir)?;
    let ids = query::select(&mut db, &read.selection, read.window)?;
    for page in ids.chunks(READ_PAGE_MSGS) {
        for (id, msg) in query::fetch(&db, page)? {
            writeln!(out, "{}", query::entry_line(&id, &msg, times.get(&id)))?;
        }
    }
    Ok(())
}

/// The directory's keypair, or what to do when there is none.
fn read_keypair(dir: &Path) -> anyhow::Result<Keypair> {
    let secret = super::dir::secret_path(dir);
    anyhow::ensure!(
        secret.exists() && super::dir::store_dir(dir).join("log").exists(),
        "no peer is running in {dir}, and {dir} holds no peer (no {what}): create one with \
         `ppppp init --dir {dir}`",
        dir = dir.display(),
        what = if secret.exists() {
            "store in db/"
        } else {
            "secret"
        },
    );
    Ok(keyfile::read(&secret)?)
}

/// The directory's account: the one it joined as a device, else its key's own, created
/// (with a fresh nonce) if the store has none yet.
fn own_account(dir: &Path, db: &mut Db<DiskStore>, keypair: &Keypair) -> anyhow::Result<AccountId> {
    if let Some(joined) = super::joined::load(dir)? {
        return Ok(joined.account);
    }
    db.find_or_create_account(keypair, ACCOUNT_SUBDOMAIN, &new_account_nonce()?)
        .context("cannot find or create the account")
}

fn publish(dir: &Path, keypair: &Keypair, domain: &str, data: Value) -> anyhow::Result<Value> {
    let mut db = Db::new(super::dir::open_writer(dir)?);
    let account = own_account(dir, &mut db, keypair)?;
    let feed = proto::msg::feed_id(&account, domain);
    let moot_is_new = db.get(&feed)?.is_none();
    let id = db
        .publish(keypair, &account, domain, data, &[])
        .context("cannot publish")?;
    db.flush()?;
    let new: Vec<MsgId> = moot_is_new
        .then_some(feed)
        .into_iter()
        .chain([id])
        .collect();
    note_received(dir, &new);
    Ok(json!({"msg": id.to_string(), "feed": feed.to_string()}))
}

fn follow(
    dir: &Path,
    keypair: &Keypair,
    account: AccountId,
    domain: &str,
    goal: Goal,
) -> anyhow::Result<Value> {
    let mut db = Db::new(super::dir::open_writer(dir)?);
    let own = own_account(dir, &mut db, keypair)?;
    anyhow::ensure!(account != own, "{account} is this peer's own account");
    let goals = follow::follow_goals(&account, domain, goal)?;
    let mut file = GoalsFile::load(dir)?;
    let (new, msg) = set_write(&mut db, &own, |db| {
        proto::set::add(db, keypair, &own, FOLLOWS_SUBDOMAIN, account.as_str())
    })?;
    note_received(dir, &new);
    file.add(&goals)?;
    Ok(follow::follow_value(&account, msg, &goals))
}

fn unfollow(dir: &Path, keypair: &Keypair, account: AccountId) -> anyhow::Result<Value> {
    let mut db = Db::new(super::dir::open_writer(dir)?);
    let own = own_account(dir, &mut db, keypair)?;
    let mut file = GoalsFile::load(dir)?;
    let (new, msg) = set_write(&mut db, &own, |db| {
        proto::set::del(db, keypair, &own, FOLLOWS_SUBDOMAIN, account.as_str())
    })?;
    note_received(dir, &new);
    let removed = file.remove_account(&account)?;
    Ok(follow::follow_value(&account, msg, &removed))
}

/// Runs a write on `own`'s follows set and makes it durable; the msgs it added (the set's
/// moot too the first time) and the newest of them, as the running peer's store actor
/// reports it (`None` when nothing changed).
fn set_write(
    db: &mut Db<DiskStore>,
    own: &AccountId,
    write: impl FnOnce(
        &mut Db<DiskStore>,
    ) -> Result<bool, proto::publish::PublishError<crate::store::StoreError>>,
) -> anyhow::Result<(Vec<MsgId>, Option<MsgId>)> {
    let feed = proto::set::feed_id(own, FOLLOWS_SUBDOMAIN);
    let before: BTreeSet<MsgId> = db.tangle(&feed)?.topo_order().copied().collect();
    let changed = write(db).context("cannot update the follows set")?;
    db.flush()?;
    if !changed {
        return Ok((Vec::new(), None));
    }
    let new = new_members(db, &feed, &before)?;
    let newest = new.last().copied();
    Ok((new, newest))
}

fn status(dir: &Path, keypair: &Keypair) -> anyhow::Result<Value> {
    let mut db = Db::new(super::dir::open_reader(dir)?);
    let account = super::joined::find_account(dir, &db, keypair)?;
    let facts = query::store_facts(db.store())?;
    let (follows, mut goals) = match &account {
        Some(account) => (
            query::follows(&mut db, account)?,
            follow::own_goals(account),
        ),
        None => (Vec::new(), Vec::new()),
    };
    goals.extend(GoalsFile::load(dir)?.pairs());
    Ok(query::status_value(
        account.as_ref(),
        facts,
        super::dir::log_bytes(dir),
        follows,
        &goals,
        0,
    ))
}

/// Notes receive times (best effort: the msgs are stored; a failure only loses times).
fn note_received(dir: &Path, ids: &[MsgId]) {
    let noted = ReceivedTimes::load(dir).and_then(|mut times| times.note(ids, received::now_ms()));
    if let Err(error) = noted {
        eprintln!("ppppp: receive times not noted: {error:#}");
    }
}

/// The msgs of `tangle` not in `before`, topological.
fn new_members(
    db: &mut Db<DiskStore>,
    tangle: &TangleId,
    before: &BTreeSet<MsgId>,
) -> anyhow::Result<Vec<MsgId>> {
    Ok(db
        .tangle(tangle)?
        .topo_order()
        .filter(|id| !before.contains(id))
        .copied()
        .collect())
}
