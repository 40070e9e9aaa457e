//! The store actor: every write to the database goes through it, so durability (one flush per
//! batch: group commit) and the announcement of new msgs happen in one place.

use std::collections::BTreeSet;
use std::sync::Arc;

use proto::db::{AddError, Added, Db};
use proto::gc;
use proto::ids::{AccountId, MsgId, TangleId};
use proto::ingest::Snapshot;
use proto::keys::Keypair;
use proto::msg::{DigestedMsg, Msg};
use proto::publish::PublishError;
use proto::store::Store;
use proto::sync::CommitObserver;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use rand_chacha::rand_core::Rng;
use serde_json::Value;

use super::error::JoinRefused;
use super::events::{NodeEvent, Remote};
use super::msgs::{AddedBatch, LocalWrite, StoreMsg, SyncActorMsg};
use super::{AnyStore, ConnId, DbState, Emitter, SharedDb, StoreFailure};
use crate::verify_ahead;

/// The account subdomain a node publishes under (the reference's DB always uses `account`).
pub(crate) const ACCOUNT_SUBDOMAIN: &str = "account";

/// Msgs a write added, as stored, in order.
type AddedMsgs = Vec<(MsgId, Arc<Msg>)>;

/// The store actor.
pub(crate) struct StoreActor;

pub(crate) struct StoreArgs {
    pub(crate) db: SharedDb,
    pub(crate) keypair: Keypair,
    pub(crate) nonce_seed: [u8; 32],
    /// The account this node joined as a device (`NodeConfig::account`), if any.
    pub(crate) joined: Option<AccountId>,
    pub(crate) events: Emitter,
    pub(crate) added: tokio::sync::broadcast::Sender<AddedBatch>,
    pub(crate) verify_ahead: bool,
}

pub(crate) struct StoreState {
    db: SharedDb,
    keypair: Keypair,
    account: AccountId,
    subscribers: Vec<ActorRef<SyncActorMsg>>,
    events: Emitter,
    /// Programs watching what is added (live streams); bounded, lagging receivers lose batches.
    added: tokio::sync::broadcast::Sender<AddedBatch>,
    /// Verify a synced batch's signatures on every core first (`NodeConfig::verify_ahead`).
    verify_ahead: bool,
}

impl Actor for StoreActor {
    type Msg = StoreMsg;
    type State = StoreState;
    type Arguments = StoreArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<StoreMsg>,
        args: StoreArgs,
    ) -> Result<StoreState, ActorProcessingErr> {
        let account = {
            let mut guard = args.db.lock();
            if let Some(joined) = args.joined {
                check_member(&mut guard.db, &joined, &args.keypair.public())?;
                joined
            } else {
                // Must stay in step with `super::root::fresh_account_id`.
                let nonce = bs58::encode(args.nonce_seed).into_string();
                let account =
                    guard
                        .db
                        .find_or_create_account(&args.keypair, ACCOUNT_SUBDOMAIN, &nonce)?;
                guard.db.flush()?;
                account
            }
        };
        Ok(StoreState {
            db: args.db,
            keypair: args.keypair,
            account,
            subscribers: Vec::new(),
            events: args.events,
            added: args.added,
            verify_ahead: args.verify_ahead,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<StoreMsg>,
        message: StoreMsg,
        state: &mut StoreState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            StoreMsg::Subscribe(subscriber) => state.subscribers.push(subscriber),
            StoreMsg::Commit {
                tangle,
                msgs,
                from,
                origin,
                reply,
            } => {
                let (added, refused) = state.commit(&tangle, msgs, &from)?;
                state.announce(added, Some(origin));
                let _ = reply.send(refused);
            }
            StoreMsg::PruneNewest { tangle, count } => {
                state.collect(|db| gc::plan_prune_newest(db, &tangle, count))?;
            }
            StoreMsg::Collect { goals, bytes_max } => {
                state.collect(|db| Ok(gc::plan(db, &goals, bytes_max)?.actions))?;
            }
            StoreMsg::Publish {
                domain,
                data,
                reply,
            } => {
                let result = state.publish(&domain, data);
                let _ = reply.send(result?);
            }
            StoreMsg::Write { write, reply } => {
                let result = state.write(write);
                let _ = reply.send(result?);
            }
            StoreMsg::AddLocal { msg, tangle, reply } => {
                let result = state.add_local(*msg, tangle);
                let _ = reply.send(result?);
            }
            StoreMsg::Snapshot { reply } => {
                let mut guard = state.db.lock();
                let snapshot = Snapshot::of(&mut guard.db);
                let _ = reply.send(snapshot);
            }
            StoreMsg::TangleMsgs { tangle, reply } => {
                let mut guard = state.db.lock();
                let _ = reply.send(tangle_msgs(&mut guard.db, &tangle));
            }
            StoreMsg::TangleSize { tangle, reply } => {
                let mut guard = state.db.lock();
                let size = guard
                    .db
                    .tangle(&tangle)
                    .map(|tangle| (tangle.len(), tangle.len_with_data()));
                let _ = reply.send(size);
            }
            StoreMsg::Account { reply } => {
                let _ = reply.send(state.account);
            }
            StoreMsg::JoinAccount { account, reply } => {
                let _ = reply.send(state.join_account(account));
            }
            StoreMsg::Flush { reply } => {
                let result = state.db.lock().db.flush();
                let _ = reply.send(result);
            }
            StoreMsg::Read(read) => read(&mut state.db.lock().db),
        }
        Ok(())
    }
}

impl StoreState {
    /// Applies the GC actions `plan` makes of the store, makes them durable and reports those
    /// that changed it.
    fn collect(
        &mut self,
        plan: impl FnOnce(&mut Db<AnyStore>) -> Result<Vec<gc::Action>, <AnyStore as Store>::Error>,
    ) -> Result<(), <AnyStore as Store>::Error> {
        let applied = {
            let mut guard = self.db.lock();
            let DbState { db, .. } = &mut *guard;
            let actions = plan(db)?;
            let applied = gc::apply(db, &actions)?;
            db.flush()?;
            applied
        };
        self.report_gc(&applied.effective);
        Ok(())
    }

    /// Makes `account` the one this node publishes in, if it lists this node's key.
    fn join_account(&mut self, account: AccountId) -> Result<(), JoinRefused> {
        check_member(&mut self.db.lock().db, &account, &self.keypair.public())?;
        self.account = account;
        Ok(())
    }

    /// Adds synced msgs and makes them durable (one flush for the batch). Returns the msgs
    /// added, as stored, and how many were refused.
    fn commit(
        &mut self,
        tangle: &TangleId,
        msgs: Vec<DigestedMsg>,
        from: &Remote,
    ) -> Result<(AddedMsgs, usize), ActorProcessingErr> {
        // Signatures first, on every core and outside the lock; then in order on this one,
        // each msg with the digest its decode computed.
        let verdicts = self
            .verify_ahead
            .then(|| verify_ahead::prepare_batch(&msgs))
            .flatten();
        let mut guard = self.db.lock();
        let DbState { db, index } = &mut *guard;
        db.expect_verdicts(verdicts.unwrap_or_default());
        let mut reporter = CommitReporter {
            events: &self.events,
            from,
        };
        let committed = proto::sync::commit_with(
            db,
            index,
            tangle,
            msgs,
            &mut proto::sync::AddShared,
            &mut reporter,
        )?;
        if !committed.added.is_empty() {
            db.flush()?;
            if self.events.is_on() {
                self.events.emit(NodeEvent::StoreSize {
                    bytes: db.store().stats().bytes,
                });
            }
        }
        Ok((committed.added, committed.refused))
    }

    fn publish(
        &mut self,
        domain: &str,
        data: Value,
    ) -> Result<Result<MsgId, PublishError<StoreFailure>>, ActorProcessingErr> {
        let feed = proto::msg::feed_id(&self.account, domain);
        let result = {
            let mut guard = self.db.lock();
            let moot_existed = guard.db.get(&feed)?.is_some();
            guard
                .db
                .publish(&self.keypair, &self.account, domain, data, &[])
                .map(|id| (moot_existed, id))
        };
        match result {
            Ok((moot_existed, id)) => {
                let ids = if moot_existed {
                    vec![id]
                } else {
                    vec![feed, id]
                };
                let added = self.made_durable(&ids)?;
                self.announce(added, None);
                Ok(Ok(id))
            }
            Err(PublishError::Store(failure)) => Err(failure.into()),
            Err(refused) => Ok(Err(refused)),
        }
    }

    /// Makes a set, dict or account write; `Ok(Ok(None))` when it changed nothing (the item
    /// or field already had that value), else the new msg's ID.
    fn write(
        &mut self,
        write: LocalWrite,
    ) -> Result<Result<Option<MsgId>, PublishError<StoreFailure>>, ActorProcessingErr> {
        let result = {
            let mut guard = self.db.lock();
            let db = &mut guard.db;
            let (keypair, account) = (&self.keypair, &self.account);
            match write {
                LocalWrite::SetAdd { subdomain, item } => {
                    let feed = proto::set::feed_id(account, &subdomain);
                    new_members(db, &feed, |db| {
                        proto::set::add(db, keypair, account, &subdomain, &item)
                    })
                }
                LocalWrite::SetDel { subdomain, item } => {
                    let feed = proto::set::feed_id(account, &subdomain);
                    new_members(db, &feed, |db| {
                        proto::set::del(db, keypair, account, &subdomain, &item)
                    })
                }
                LocalWrite::DictUpdate { subdomain, update } => {
                    let feed = proto::dict::feed_id(account, &subdomain);
                    new_members(db, &feed, |db| {
                        proto::dict::update(db, keypair, account, &subdomain, &update)
                    })
                }
                LocalWrite::AccountAdd {
                    key,
                    consent,
                    powers,
                } => {
                    let powers: Vec<&str> = powers.iter().map(String::as_str).collect();
                    db.account_add(keypair, account, &key, &consent, &powers)
                        .map(|id| vec![id])
                }
            }
        };
        match result {
            Ok(ids) => {
                let newest = ids.last().copied();
                let added = self.made_durable(&ids)?;
                self.announce(added, None);
                Ok(Ok(newest))
            }
            Err(PublishError::Store(failure)) => Err(failure.into()),
            Err(refused) => Ok(Err(refused)),
        }
    }

    fn add_local(
        &mut self,
        msg: Msg,
        tangle: Option<TangleId>,
    ) -> Result<Result<MsgId, AddError<StoreFailure>>, ActorProcessingErr> {
        let id = msg.id();
        let result = self.db.lock().db.add(msg, tangle);
        match result {
            Ok(Added::Appended(_) | Added::ReplacedErased(_)) => {
                let added = self.made_durable(&[id])?;
                self.announce(added, None);
                Ok(Ok(id))
            }
            Ok(Added::AlreadyStored) => Ok(Ok(id)),
            Err(AddError::Store(failure)) => Err(failure.into()),
            Err(refused) => Ok(Err(refused)),
        }
    }

    /// Flushes, indexes and reports locally made msgs `ids` (a publish may add a moot and
    /// the msg); returns them as stored.
    fn made_durable(
        &mut self,
        ids: &[MsgId],
    ) -> Result<Vec<(MsgId, Arc<Msg>)>, ActorProcessingErr> {
        let mut guard = self.db.lock();
        let DbState { db, index } = &mut *guard;
        db.flush()?;
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(msg) = db.get(id)? else { continue };
            index.note_added(db, id, &msg)?;
            let tangle = msg.metadata.tangles.keys().next().copied().unwrap_or(*id);
            let bytes = u64::try_from(msg.to_json().len()).unwrap_or(u64::MAX);
            self.events.emit(NodeEvent::Published {
                msg: *id,
                tangle,
                bytes,
            });
            records.push((*id, msg));
        }
        Ok(records)
    }

    fn announce(&self, added: Vec<(MsgId, Arc<Msg>)>, origin: Option<ConnId>) {
        if added.is_empty() {
            return;
        }
        if self.added.receiver_count() > 0 {
            let _ = self.added.send(Arc::new(added.clone()));
        }
        for subscriber in &self.subscribers {
            let _ = subscriber.cast(SyncActorMsg::LocalAdded {
                msgs: added.clone(),
                origin,
            });
        }
    }

    fn report_gc(&self, actions: &[gc::Action]) {
        for action in actions {
            let (msg, action) = action.kind();
            self.events.emit(NodeEvent::Gc { msg, action });
        }
    }
}

/// Reports each msg of a synced batch as the store actor's events.
struct CommitReporter<'a> {
    events: &'a Emitter,
    from: &'a Remote,
}

impl CommitObserver for CommitReporter<'_> {
    fn stored(&mut self, id: &MsgId, tangle: &TangleId, _msg: &Arc<Msg>) {
        self.events.emit(NodeEvent::Stored {
            msg: *id,
            tangle: *tangle,
            from: self.from.clone(),
        });
    }

    fn duplicate(&mut self, id: &MsgId) {
        self.events.emit(NodeEvent::NotStored {
            msg: *id,
            from: self.from.clone(),
            duplicate: true,
            reason: String::new(),
        });
    }

    fn refused<E: std::error::Error + 'static>(&mut self, id: &MsgId, refusal: &AddError<E>) {
        let reason = refusal.reason();
        tracing::debug!(target: "ppppp::store", msg = %id, reason = %reason, "refused synced msg");
        self.events.emit(NodeEvent::NotStored {
            msg: *id,
            from: self.from.clone(),
            duplicate: false,
            reason,
        });
    }
}

/// 32 seeded bytes (an account nonce).
pub(crate) fn seeded_bytes(rng: &mut impl Rng) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// Runs a set or dict write on `feed` and returns the msgs it added to the feed (the moot
/// too on the first write), topological; none when the write changed nothing.
fn new_members(
    db: &mut proto::db::Db<super::AnyStore>,
    feed: &TangleId,
    write: impl FnOnce(
        &mut proto::db::Db<super::AnyStore>,
    ) -> Result<bool, proto::publish::PublishError<super::StoreFailure>>,
) -> Result<Vec<MsgId>, proto::publish::PublishError<super::StoreFailure>> {
    let store_failure = proto::publish::PublishError::Store;
    let before: BTreeSet<MsgId> = db
        .tangle(feed)
        .map_err(store_failure)?
        .topo_order()
        .copied()
        .collect();
    if !write(db)? {
        return Ok(Vec::new());
    }
    Ok(db
        .tangle(feed)
        .map_err(store_failure)?
        .topo_order()
        .filter(|id| !before.contains(id))
        .copied()
        .collect())
}

/// Whether the stored tangle of `account` adds `key` (and does not delete it since).
fn check_member(
    db: &mut proto::db::Db<super::AnyStore>,
    account: &AccountId,
    key: &proto::ids::PubKey,
) -> Result<(), JoinRefused> {
    let msgs = tangle_msgs(db, account).map_err(JoinRefused::Store)?;
    let keys = proto::account::powers(msgs.iter().map(AsRef::as_ref));
    if keys.contains_key(key.as_str()) {
        Ok(())
    } else {
        Err(JoinRefused::NotAMember {
            account: *account,
            key: *key,
        })
    }
}

fn tangle_msgs(
    db: &mut proto::db::Db<super::AnyStore>,
    tangle: &TangleId,
) -> Result<Vec<Arc<Msg>>, super::StoreFailure> {
    let order: Vec<MsgId> = db.tangle(tangle)?.topo_order().copied().collect();
    let mut msgs = Vec::with_capacity(order.len());
    for id in order {
        if let Some(msg) = db.get(&id)? {
            msgs.push(msg);
        }
    }
    Ok(msgs)
}
