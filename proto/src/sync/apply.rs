//! Applying a session's effects to a [`Db`]: what a shell does with [`super::Output::Commit`]
//! and [`super::Output::PruneNewest`]. Every shell (the node's store actor, the protocol
//! tier, the in-memory test networks, the fuzz target) commits through [`commit_with`], so
//! what counts as added, duplicate or refused is decided in one place; shells differ only
//! in what they record ([`CommitObserver`]) and how they add ([`Adder`]).

use std::sync::Arc;

use super::SyncIndex;
use crate::db::{AddError, Added, Db};
use crate::gc;
use crate::ids::{MsgId, TangleId};
use crate::msg::{Account, DigestedMsg, Msg};
use crate::store::Store;
use crate::tangle::DepthRange;

/// What a shell records about each msg of a commit, called in the batch's order.
pub trait CommitObserver {
    /// `msg` (as stored) was added to `tangle`.
    fn stored(&mut self, _id: &MsgId, _tangle: &TangleId, _msg: &Arc<Msg>) {}
    /// The msg was stored already. That includes an erased copy given its data back (the
    /// reference's `add` restores it): the peer held the msg, its ID and its place in the
    /// tangle, all along, and what arrived again is data its goal had let go of, which a
    /// `newest-N` prune erases again. Reporting it as stored would count one msg delivered
    /// twice.
    fn duplicate(&mut self, _id: &MsgId) {}
    /// The msg was refused (never a store failure: those end the commit).
    fn refused<E: std::error::Error + 'static>(&mut self, _id: &MsgId, _refusal: &AddError<E>) {}
}

/// Records nothing.
impl CommitObserver for () {}

/// How a shell adds one msg: [`Db::add_digested`] with the digest the msg was received
/// with by default; the node adds with the verdicts it computed ahead on every core.
pub trait Adder<S: Store> {
    /// Adds `msg`, in `tangle` if given.
    ///
    /// # Errors
    /// As [`Db::add`].
    fn add(
        &mut self,
        db: &mut Db<S>,
        msg: DigestedMsg,
        tangle: Option<TangleId>,
    ) -> Result<Added, AddError<S::Error>>;
}

/// [`Db::add_digested`]: the msg's `Arc` is kept, so receivers of one msg object share it,
/// and its digest is not computed again.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddShared;

impl<S: Store> Adder<S> for AddShared {
    fn add(
        &mut self,
        db: &mut Db<S>,
        msg: DigestedMsg,
        tangle: Option<TangleId>,
    ) -> Result<Added, AddError<S::Error>> {
        let (msg, digest) = msg.into_parts();
        db.add_digested(msg, digest, tangle)
    }
}

/// Any `FnMut(db, msg, tangle)` with [`Db::add`]'s result is an [`Adder`].
impl<S, F> Adder<S> for F
where
    S: Store,
    F: FnMut(&mut Db<S>, DigestedMsg, Option<TangleId>) -> Result<Added, AddError<S::Error>>,
{
    fn add(
        &mut self,
        db: &mut Db<S>,
        msg: DigestedMsg,
        tangle: Option<TangleId>,
    ) -> Result<Added, AddError<S::Error>> {
        self(db, msg, tangle)
    }
}

/// What a commit did.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// The msgs added, as stored, in order: for [`super::Input::LocalAdded`].
    pub added: Vec<(MsgId, Arc<Msg>)>,
    /// Msgs that were stored already (erased copies given their data back included; they
    /// are also in `added`, since the store changed).
    pub duplicates: usize,
    /// Msgs refused: when nonzero, the shell tells the session
    /// ([`super::Input::CommitRefused`]).
    pub refused: usize,
}

/// The reference's `commit`: adds each msg, account msgs (`account: "self"`) with their
/// tangle inferred, the others in `tangle`. Refused msgs are skipped, as the reference skips
/// them. Keeps `index` fresh. Durability is the shell's: a disk-backed shell flushes once
/// after the batch.
///
/// # Errors
/// Store failures (msgs before the failing one stay added, and were observed).
pub fn commit_with<S: Store>(
    db: &mut Db<S>,
    index: &mut SyncIndex,
    tangle: &TangleId,
    msgs: Vec<DigestedMsg>,
    adder: &mut impl Adder<S>,
    observer: &mut impl CommitObserver,
) -> Result<Committed, S::Error> {
    let mut committed = Committed::default();
    for msg in msgs {
        let id = msg.id();
        let hint = (msg.msg().metadata.account != Account::OwnTangle).then_some(*tangle);
        match adder.add(db, msg, hint) {
            Ok(added @ (Added::Appended(_) | Added::ReplacedErased(_))) => {
                if let Some(stored) = db.get(&id)? {
                    index.note_added(db, &id, &stored)?;
                    if matches!(added, Added::ReplacedErased(_)) {
                        committed.duplicates += 1;
                        observer.duplicate(&id);
                    } else {
                        observer.stored(&id, tangle, &stored);
                    }
                    committed.added.push((id, stored));
                }
            }
            Ok(Added::AlreadyStored) => {
                committed.duplicates += 1;
                observer.duplicate(&id);
            }
            Err(AddError::Store(error)) => return Err(error),
            Err(refusal) => {
                committed.refused += 1;
                observer.refused(&id, &refusal);
            }
        }
    }
    Ok(committed)
}

/// [`commit_with`] adding with [`AddShared`] and recording nothing; returns the msgs added,
/// as stored.
///
/// # Errors
/// Store failures (msgs before the failing one stay added).
pub fn commit<S: Store>(
    db: &mut Db<S>,
    index: &mut SyncIndex,
    tangle: &TangleId,
    msgs: Vec<DigestedMsg>,
) -> Result<Vec<(MsgId, Arc<Msg>)>, S::Error> {
    commit_with(db, index, tangle, msgs, &mut AddShared, &mut ()).map(|done| done.added)
}

/// The reference's `filterReceivedMsgs`: keep account msgs, the tangle's own root, msgs
/// without data (trails), and msgs with data at or above the want-range's bottom (there is no
/// upper bound); then account msgs first, then by depth in the tangle (a stable sort).
/// The sync session (phases 8 and 9) and `sync.reconcile` both filter what they commit with it;
/// each msg's ID is the one its decode computed.
pub(crate) fn filter_received(
    tangle: &TangleId,
    msgs: Vec<DigestedMsg>,
    want: DepthRange,
) -> Vec<DigestedMsg> {
    let depth_of = |msg: &Msg| {
        msg.metadata
            .tangles
            .get(tangle)
            .map_or(0, |link| link.depth)
    };
    let mut kept: Vec<DigestedMsg> = msgs
        .into_iter()
        .filter(|digested| {
            let msg = digested.msg();
            if msg.metadata.account == Account::OwnTangle {
                return true;
            }
            let depth = depth_of(msg);
            if depth == 0 && digested.id() != *tangle {
                return false;
            }
            !msg.has_data() || want.min <= depth
        })
        .collect();
    let order = |digested: &DigestedMsg| {
        let msg = digested.msg();
        (msg.metadata.account != Account::OwnTangle, depth_of(msg))
    };
    // Senders list msgs in this order already; a stable sort would still allocate a scratch
    // copy of the batch to find that out.
    if !kept.is_sorted_by_key(order) {
        kept.sort_by_key(order);
    }
    kept
}

/// The reference's `pruneNewest`: keeps the newest `count` msgs of `tangle`
/// ([`gc::plan_prune_newest`]), erasing trails and deleting the rest.
///
/// # Errors
/// Store failures.
pub fn prune_newest<S: Store>(
    db: &mut Db<S>,
    tangle: &TangleId,
    count: u64,
) -> Result<gc::Applied, S::Error> {
    let actions = gc::plan_prune_newest(db, tangle, count)?;
    gc::apply(db, &actions)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::keys::Keypair;
    use crate::msg;
    use crate::store::MemStore;

    /// Every observer call, in order.
    #[derive(Default)]
    struct Recorder {
        calls: Vec<String>,
    }

    impl CommitObserver for Recorder {
        fn stored(&mut self, id: &MsgId, tangle: &TangleId, msg: &Arc<Msg>) {
            assert_eq!(msg.id(), *id, "the stored msg is the one named");
            self.calls.push(format!("stored {id} in {tangle}"));
        }
        fn duplicate(&mut self, id: &MsgId) {
            self.calls.push(format!("duplicate {id}"));
        }
        fn refused<E: std::error::Error + 'static>(&mut self, id: &MsgId, refusal: &AddError<E>) {
            assert!(!refusal.reason().is_empty(), "a refusal says why");
            self.calls.push(format!("refused {id}"));
        }
    }

    fn get(db: &mut Db<MemStore>, id: &MsgId) -> Arc<Msg> {
        let Ok(Some(msg)) = db.get(id) else {
            panic!("{id} is stored");
        };
        msg
    }

    /// An author's database with its account and one post: (db, account, post, feed).
    fn author(seed: &str, data: serde_json::Value) -> (Db<MemStore>, MsgId, MsgId, TangleId) {
        let keypair = Keypair::from_string_seed(seed);
        let mut db = Db::new(MemStore::new());
        let account = db
            .create_account(&keypair, "account", "n")
            .expect("account");
        let post = db
            .publish(&keypair, &account, "post", data, &[])
            .expect("post");
        let feed = msg::feed_id(&account, "post");
        (db, account, post, feed)
    }

    #[test]
    fn received_msgs_are_kept_account_msgs_first_then_by_depth() {
        let keypair = Keypair::from_string_seed("alice");
        let (mut db, account, first, feed) = author("alice", json!({"text": "1"}));
        let second = db
            .publish(&keypair, &account, "post", json!({"text": "2"}), &[])
            .expect("post");
        let ids = |msgs: &[DigestedMsg]| msgs.iter().map(DigestedMsg::id).collect::<Vec<_>>();
        let all = DepthRange { min: 0, max: 9 };
        let sorted = [account, feed, first, second];
        let mut digested = |order: &[MsgId]| -> Vec<DigestedMsg> {
            order
                .iter()
                .map(|id| DigestedMsg::new(get(&mut db, id)))
                .collect()
        };
        let shuffled = digested(&[second, feed, first, account]);
        assert_eq!(ids(&filter_received(&feed, shuffled, all)), sorted);
        let in_order = digested(&sorted);
        assert_eq!(ids(&filter_received(&feed, in_order, all)), sorted);
    }

    #[test]
    fn observer_sees_each_msg_of_a_batch_in_order_and_counts_agree() {
        let (mut source, account, post, feed) = author("alice", json!({"text": "hi"}));
        // A msg of an account the receiver has never heard of: refused.
        let (mut elsewhere, _, foreign, _) = author("mallory", json!({"text": "no"}));

        let mut target = Db::new(MemStore::new());
        let mut index = SyncIndex::new();
        let root = get(&mut source, &account);
        target.add_shared(root, None).expect("account root");
        target
            .add_shared(get(&mut source, &feed), None)
            .expect("moot");
        let batch = vec![
            DigestedMsg::new(get(&mut source, &feed)),
            DigestedMsg::new(get(&mut source, &post)),
            DigestedMsg::new(get(&mut elsewhere, &foreign)),
        ];
        let mut recorder = Recorder::default();
        let Ok(committed) = commit_with(
            &mut target,
            &mut index,
            &feed,
            batch,
            &mut AddShared,
            &mut recorder,
        );

        assert_eq!(
            recorder.calls,
            [
                format!("duplicate {feed}"),
                format!("stored {post} in {feed}"),
                format!("refused {foreign}"),
            ]
        );
        let added: Vec<MsgId> = committed.added.iter().map(|(id, _)| *id).collect();
        assert_eq!(added, [post]);
        assert_eq!((committed.duplicates, committed.refused), (1, 1));
        assert!(matches!(target.get(&post), Ok(Some(_))));
        assert!(matches!(target.get(&foreign), Ok(None)));
        let Ok(()) = index.check_invariants(&target);
    }

    /// The reference's `add` gives an erased copy its data back; the msg was held all along,
    /// so the observer hears of a duplicate, while the store and the index see the data.
    #[test]
    fn an_erased_copy_given_its_data_back_is_a_duplicate_not_a_second_store() {
        let (mut source, account, post, feed) = author("carol", json!({"text": "again"}));
        let mut target = Db::new(MemStore::new());
        let mut index = SyncIndex::new();
        for id in [account, feed, post] {
            target.add_shared(get(&mut source, &id), None).expect("add");
            let stored = get(&mut target, &id);
            index.note_added(&mut target, &id, &stored).expect("index");
        }
        assert_eq!(target.erase(&post).ok(), Some(true));
        assert!(!get(&mut target, &post).has_data());

        let mut recorder = Recorder::default();
        let Ok(committed) = commit_with(
            &mut target,
            &mut index,
            &feed,
            vec![DigestedMsg::new(get(&mut source, &post))],
            &mut AddShared,
            &mut recorder,
        );
        assert_eq!(recorder.calls, [format!("duplicate {post}")]);
        assert_eq!(committed.duplicates, 1);
        let added: Vec<MsgId> = committed.added.iter().map(|(id, _)| *id).collect();
        assert_eq!(added, [post], "the store changed: the data is back");
        assert!(get(&mut target, &post).has_data());
    }

    #[test]
    fn the_adder_is_used_for_every_msg() {
        let (mut source, account, first, feed) = author("bob", json!({"n": 1}));
        let mut target = Db::new(MemStore::new());
        target
            .add_shared(get(&mut source, &account), None)
            .expect("account root");
        let batch = vec![
            DigestedMsg::new(get(&mut source, &feed)),
            DigestedMsg::new(get(&mut source, &first)),
        ];
        let mut hints = Vec::new();
        let mut adder = |db: &mut Db<MemStore>, msg: DigestedMsg, tangle: Option<TangleId>| {
            hints.push(tangle);
            db.add_shared(Arc::clone(msg.msg()), tangle)
        };
        let Ok(committed) = commit_with(
            &mut target,
            &mut SyncIndex::new(),
            &feed,
            batch,
            &mut adder,
            &mut (),
        );
        assert_eq!(committed.added.len(), 2);
        assert_eq!(hints, [Some(feed), Some(feed)]);
    }
}
