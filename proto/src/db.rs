//! The database rules over a [`Store`]: what `add` accepts, tangle indexes, erase, delete and
//! ghosts (protocol.md §6.2).
//!
//! [`Db::add`] follows the reference's `add(msg, tangleID)`:
//! 1. a msg already stored is returned as is, unless the stored copy was erased and the new
//!    one has data (it then replaces it);
//! 2. the tangles to validate against are the one given, or, when none is given, the msg's
//!    own (a root: itself; otherwise every tangle it lists — the reference refuses to infer
//!    from several, `ppppp msg check` validates against each);
//! 3. a moot needs no account;
//! 4. otherwise the account must be known, and the signer must be among its keys at the
//!    msg's `accountTips`;
//! 5. a msg with data whose ID is a ghost of the tangle is refused;
//! 6. the msg is validated ([`crate::validate`]), account msgs get the account rules
//!    ([`crate::account`]), and the msg is appended.
//!
//! Tangles are loaded from the store on first use and then kept current, so validating the
//! next msg of a feed costs a few map lookups, not a rebuild from all records as in the
//! reference.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use thiserror::Error;

use crate::account::{self, AccountMsgError};
use crate::ids::{AccountId, MsgId, TangleId};
use crate::msg::{Account, Msg};
use crate::store::{AccountTips, Ghosts, Record, Store, StoredMetadata};
use crate::tangle::{SlicePart, Tangle};
use crate::validate::{self, Digest, Sigkeys, ValidationError, Verifier};

/// How many `(account, accountTips)` key sets [`Db`] remembers.
const SIGKEYS_CACHE_MAX: usize = 4096;

/// Most tangles [`Db`] keeps cached while nothing of them is stored (a sync asked about a
/// tangle nobody holds, a msg named a tangle we do not have). Beyond it the oldest such
/// entries are dropped: they cost nothing to load again, and a peer asking about random
/// tangle IDs must not grow our memory for good.
pub const EMPTY_TANGLES_CACHED_MAX: usize = 1024;

/// Most tangles whose members' account tips [`Db`] keeps from their load until the sync
/// index takes them: a sync loads the tangles of its goals one after another (and a client
/// may load one first), then indexes them.
pub const LOADED_TIPS_TANGLES_MAX: usize = 4;

/// Why [`Db::add`] refused a msg (or failed).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AddError<E: std::error::Error + 'static> {
    /// The msg breaks a validation rule.
    #[error("Invalid msg: {0}")]
    Invalid(#[source] ValidationError),
    /// The msg's account is not known locally.
    #[error(
        "Unknown account tangle owning this msg: Account tangle \"{account}\" is locally unknown"
    )]
    UnknownAccount {
        /// The account.
        account: AccountId,
    },
    /// The msg was deleted as a ghost of this tangle and must not come back with data.
    #[error("Refusing a ghost msg to come back")]
    Ghost,
    /// An account msg breaks an account rule.
    #[error("Invalid account msg: {0}")]
    InvalidAccountMsg(#[source] AccountMsgError),
    /// The store failed; the msg was not added.
    #[error("store failure: {0}")]
    Store(#[source] E),
}

impl<E: std::error::Error + 'static> AddError<E> {
    /// The innermost reason, as one line.
    #[must_use]
    pub fn reason(&self) -> String {
        match self {
            Self::Invalid(err) => err.to_string(),
            Self::InvalidAccountMsg(err) => err.to_string(),
            Self::UnknownAccount { account } => {
                format!("Account tangle \"{account}\" is locally unknown")
            }
            other => other.to_string(),
        }
    }
}

/// What [`Db::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The msg was new and is now stored with this sequence number.
    Appended(u64),
    /// An erased copy was replaced by this one, which has data.
    ReplacedErased(u64),
    /// The msg was already stored; nothing changed (and it was not validated again).
    AlreadyStored,
}

/// What [`Db::erase`] and [`Db::delete`] do to a msg.
#[derive(Debug, Clone, Copy)]
enum Removal {
    /// Keep the metadata, drop the data.
    Erase,
    /// Drop the msg.
    Delete,
}

/// Store errors, for operations that are not adds.
pub type StoreResult<T, S> = Result<T, <S as Store>::Error>;

/// The database: a store plus the rules and indexes.
#[derive(Debug, Clone)]
pub struct Db<S: Store> {
    store: S,
    /// Boxed: most cached tangles are empty (loaded to answer a sync), and a `Tangle` inline
    /// made every B-tree node of the map eleven of them, about three kilobytes.
    tangles: BTreeMap<TangleId, Box<Tangle>>,
    /// Tangles loaded empty, oldest first (at most [`EMPTY_TANGLES_CACHED_MAX`] + 1); some
    /// may have gained msgs or been dropped since.
    empty_loads: VecDeque<TangleId>,
    verifier: Verifier,
    sigkeys: BTreeMap<(AccountId, Vec<MsgId>), (u64, Arc<Sigkeys>)>,
    /// The account tips of the members of the tangles loaded last, until the sync index
    /// takes them ([`Db::take_loaded_tips`]): its first build would otherwise read every
    /// member's metadata again. Oldest first, at most [`LOADED_TIPS_TANGLES_MAX`].
    loaded_tips: VecDeque<LoadedTips>,
}

/// The account tips of a loaded tangle's members, as the store's links gave them. A msg's
/// tips never change (its ID is the hash of its metadata), so they stay right for the members
/// they name whatever the tangle gains or loses since.
#[derive(Debug, Clone)]
pub struct LoadedTips {
    tangle: TangleId,
    /// Sorted by ID.
    by_id: Vec<(MsgId, Option<AccountTips>)>,
}

impl LoadedTips {
    /// The tangle they were loaded with.
    #[must_use]
    pub fn tangle(&self) -> TangleId {
        self.tangle
    }

    /// `Some(tips)` for a member that was loaded (`tips` is `None` if it names none); `None`
    /// for a msg that was not.
    #[must_use]
    pub fn of(&self, id: &MsgId) -> Option<Option<&AccountTips>> {
        let at = self
            .by_id
            .binary_search_by(|(known, _)| known.cmp(id))
            .ok()?;
        self.by_id.get(at).map(|(_, tips)| tips.as_ref())
    }
}

impl<S: Store> Db<S> {
    /// The database over `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            tangles: BTreeMap::new(),
            empty_loads: VecDeque::new(),
            verifier: Verifier::new(),
            sigkeys: BTreeMap::new(),
            loaded_tips: VecDeque::new(),
        }
    }

    /// The database over `store`, verifying signatures with `verifier` (e.g. one sharing
    /// verdicts with other databases, [`Verifier::sharing`]).
    pub fn with_verifier(store: S, verifier: Verifier) -> Self {
        Self {
            verifier,
            ..Self::new(store)
        }
    }

    /// Signature verdicts computed ahead for the batch about to be added (see
    /// [`crate::validate::AheadVerdicts`]); they replace the previous batch's.
    pub fn expect_verdicts(&mut self, verdicts: crate::validate::AheadVerdicts) {
        self.verifier.expect(verdicts);
    }

    /// The store, for reads.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, for writes that bypass the rules (flush, compaction). Changing msgs through
    /// it leaves the tangle indexes stale; call [`Db::forget_tangles`] afterwards.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Drops every cached tangle (they reload from the store on next use).
    pub fn forget_tangles(&mut self) {
        self.tangles.clear();
        self.empty_loads.clear();
        self.sigkeys.clear();
        self.loaded_tips.clear();
    }

    /// The account tips of `tangle`'s members if it is among the last
    /// [`LOADED_TIPS_TANGLES_MAX`] tangles loaded with members and nothing took them yet.
    pub fn take_loaded_tips(&mut self, tangle: &TangleId) -> Option<LoadedTips> {
        let at = self
            .loaded_tips
            .iter()
            .position(|loaded| loaded.tangle == *tangle)?;
        self.loaded_tips.remove(at)
    }

    /// The msg `id`, if stored.
    ///
    /// # Errors
    /// Store failures.
    pub fn get(&self, id: &MsgId) -> StoreResult<Option<Arc<Msg>>, S> {
        Ok(self.store.get(id)?.map(|record| record.msg))
    }

    /// The metadata of `id` and whether it has data, if stored (cheaper than [`Db::get`] on
    /// stores that keep msgs encoded).
    ///
    /// # Errors
    /// Store failures.
    pub fn get_metadata(&self, id: &MsgId) -> StoreResult<Option<StoredMetadata>, S> {
        self.store.get_metadata(id)
    }

    /// The record of `id`, if stored.
    ///
    /// # Errors
    /// Store failures.
    pub fn record(&self, id: &MsgId) -> StoreResult<Option<Record>, S> {
        self.store.get(id)
    }

    /// The tangle `id` (empty if nothing of it is stored).
    ///
    /// # Errors
    /// Store failures while loading it.
    pub fn tangle(&mut self, id: &TangleId) -> StoreResult<&Tangle, S> {
        self.load_tangle(id)?;
        Ok(self
            .tangles
            .get(id)
            .expect("invariant: load_tangle inserted it"))
    }

    /// The tangle `id` if it is loaded, without loading it.
    #[must_use]
    pub fn loaded_tangle(&self, id: &TangleId) -> Option<&Tangle> {
        self.tangles.get(id).map(AsRef::as_ref)
    }

    /// How many tangles are cached (for tests of the bound).
    #[must_use]
    pub fn cached_tangles(&self) -> usize {
        self.tangles.len()
    }

    /// A tangle already loaded by [`Db::tangle`], no more than [`EMPTY_TANGLES_CACHED_MAX`]
    /// loads ago if it is empty.
    pub(crate) fn cached_tangle(&self, id: &TangleId) -> &Tangle {
        self.tangles
            .get(id)
            .expect("invariant: the caller loaded this tangle first")
    }

    fn load_tangle(&mut self, id: &TangleId) -> StoreResult<(), S> {
        if self.tangles.contains_key(id) {
            return Ok(());
        }
        let (tangle, tips) = self.load_from_store(id)?;
        if !tips.by_id.is_empty() {
            if self.loaded_tips.len() >= LOADED_TIPS_TANGLES_MAX {
                self.loaded_tips.pop_front();
            }
            self.loaded_tips.push_back(tips);
        }
        if tangle.is_empty() {
            self.note_empty_load(*id);
        }
        self.tangles.insert(*id, Box::new(tangle));
        Ok(())
    }

    /// The tangle `id` built from the store's links, and its members' account tips.
    fn load_from_store(&self, id: &TangleId) -> StoreResult<(Tangle, LoadedTips), S> {
        let mut tangle = Tangle::new(*id);
        if let Some(root) = self.store.get(id)? {
            tangle.insert(*id, &root.msg);
        }
        let links = self.store.tangle_links(id)?;
        let mut by_id = Vec::with_capacity(links.len());
        for member in links {
            by_id.push((member.id, member.account_tips));
            tangle.insert_link(member.id, member.link, member.has_data);
        }
        by_id.sort_unstable_by_key(|(id, _)| *id);
        let tips = LoadedTips { tangle: *id, by_id };
        Ok((tangle, tips))
    }

    /// The tangle `id` built from each member's whole metadata, as
    /// [`Db::load_from_store`] did before stores gave links (the oracle of its checks).
    fn load_from_metadata(&self, id: &TangleId) -> StoreResult<Tangle, S> {
        let mut tangle = Tangle::new(*id);
        if let Some(root) = self.store.get(id)? {
            tangle.insert(*id, &root.msg);
        }
        for member in self.store.tangle_members(id)? {
            if let Some(stored) = self.store.get_metadata(&member)? {
                tangle.insert_member(member, stored.metadata(), stored.has_data());
            }
        }
        Ok(tangle)
    }

    /// Remembers that `id` was loaded empty, dropping the oldest such tangle beyond
    /// [`EMPTY_TANGLES_CACHED_MAX`] if it is still empty and unchanged (version 0: no cache
    /// derived from it can tell it was reloaded).
    fn note_empty_load(&mut self, id: TangleId) {
        self.empty_loads.push_back(id);
        if self.empty_loads.len() <= EMPTY_TANGLES_CACHED_MAX {
            return;
        }
        if let Some(oldest) = self.empty_loads.pop_front()
            && oldest != id
            && self
                .tangles
                .get(&oldest)
                .is_some_and(|tangle| tangle.is_empty() && tangle.version() == 0)
        {
            self.tangles.remove(&oldest);
        }
    }

    /// The keys allowed to sign for `account` at `tips` (the reference's
    /// `getSigkeysInAccount`: the account tangle up to the tips, or all of it for `None`).
    ///
    /// # Errors
    /// Store failures.
    pub fn sigkeys(
        &mut self,
        account: &AccountId,
        tips: Option<&[MsgId]>,
    ) -> StoreResult<Arc<Sigkeys>, S> {
        let tips: Vec<MsgId> = tips.map(<[MsgId]>::to_vec).unwrap_or_default();
        let version = self.tangle(account)?.version();
        let key = (*account, tips);
        if let Some((cached_version, keys)) = self.sigkeys.get(&key)
            && *cached_version == version
        {
            return Ok(Arc::clone(keys));
        }
        let slice = self.tangle(account)?.slice(&[], &key.1);
        let mut msgs = Vec::with_capacity(slice.len());
        for (id, part) in slice {
            if part == SlicePart::Full
                && let Some(msg) = self.get(&id)?
            {
                msgs.push(msg);
            }
        }
        let keys = Arc::new(account::sigkeys(msgs.iter().map(AsRef::as_ref)));
        if self.sigkeys.len() >= SIGKEYS_CACHE_MAX {
            self.sigkeys.clear();
        }
        self.sigkeys.insert(key, (version, Arc::clone(&keys)));
        Ok(keys)
    }

    /// Validates and stores `msg`, in `tangle` if given (see the module docs).
    ///
    /// # Errors
    /// [`AddError`] when the msg is refused or the store fails; nothing is stored then.
    pub fn add(&mut self, msg: Msg, tangle: Option<TangleId>) -> Result<Added, AddError<S::Error>> {
        self.add_shared(Arc::new(msg), tangle)
    }

    /// [`Db::add`] for a msg already behind an `Arc`: the store keeps that `Arc`, so
    /// databases that receive the same msg object (the protocol tier's peers, which hand
    /// msgs over as `Arc`s) share one copy instead of each holding its own.
    ///
    /// # Errors
    /// As [`Db::add`].
    pub fn add_shared(
        &mut self,
        msg: Arc<Msg>,
        tangle: Option<TangleId>,
    ) -> Result<Added, AddError<S::Error>> {
        let digest = Digest::of(&msg);
        self.add_digested(msg, digest, tangle)
    }

    /// [`Db::add_shared`] for a msg whose digest was computed already (e.g. on another core
    /// while decoding a batch). `digest` must be `Digest::of(&msg)`.
    ///
    /// # Errors
    /// As [`Db::add`].
    pub fn add_digested(
        &mut self,
        msg: Arc<Msg>,
        digest: Digest,
        tangle: Option<TangleId>,
    ) -> Result<Added, AddError<S::Error>> {
        debug_assert_eq!(digest.id, msg.id(), "the digest is the msg's");
        let id = digest.id;
        let replacing = match self.store.get(&id).map_err(AddError::Store)? {
            Some(stored) if stored.msg.data.is_null() && msg.has_data() => true,
            Some(_) => return Ok(Added::AlreadyStored),
            None => false,
        };
        let primary: Vec<TangleId> = match tangle {
            Some(tangle) => vec![tangle],
            None if msg.is_root() => vec![id],
            None => msg.metadata.tangles.keys().copied().collect(),
        };
        if msg.is_moot() {
            for tangle in &primary {
                self.validate_in(&msg, &digest, tangle, &Sigkeys::new())?;
            }
        } else {
            self.verify_full(&msg, &digest, &primary, tangle.is_some())?;
        }
        for tangle in &primary {
            self.remove_ghost(tangle, &id).map_err(AddError::Store)?;
        }
        let seq = if replacing {
            self.store.replace(id, Arc::clone(&msg))
        } else {
            self.store.append(id, Arc::clone(&msg))
        }
        .map_err(AddError::Store)?;
        self.index(id, &msg);
        Ok(if replacing {
            Added::ReplacedErased(seq)
        } else {
            Added::Appended(seq)
        })
    }

    /// Steps 4–6 of the module docs for a msg that is not a moot.
    fn verify_full(
        &mut self,
        msg: &Msg,
        digest: &Digest,
        primary: &[TangleId],
        hinted: bool,
    ) -> Result<(), AddError<S::Error>> {
        let id = digest.id;
        let account = match msg.metadata.account {
            Account::OwnTangle if msg.is_root() => Some(id),
            Account::OwnTangle => msg.metadata.tangles.keys().next().copied(),
            Account::Any => None,
            Account::Id(account) => Some(account),
        };
        let sigkeys = match account {
            None => Arc::new(Sigkeys::new()),
            Some(account) if account == id => Arc::new(Sigkeys::new()),
            Some(account) => {
                if !self.tangle(&account).map_err(AddError::Store)?.has_root() {
                    return Err(AddError::UnknownAccount { account });
                }
                self.sigkeys(&account, msg.metadata.account_tips.as_deref())
                    .map_err(AddError::Store)?
            }
        };
        if msg.has_data() {
            for tangle in primary {
                if self
                    .store
                    .ghosts(tangle)
                    .map_err(AddError::Store)?
                    .contains_key(&id)
                {
                    return Err(AddError::Ghost);
                }
            }
        }
        for tangle in primary {
            self.validate_in(msg, digest, tangle, &sigkeys)?;
        }
        if hinted {
            for (tangle, link) in &msg.metadata.tangles {
                if primary.contains(tangle) {
                    continue;
                }
                let view = self.tangle(tangle).map_err(AddError::Store)?;
                validate::validate_secondary(link, view).map_err(AddError::Invalid)?;
            }
        }
        if msg.metadata.account == Account::OwnTangle {
            let account = account.unwrap_or(id);
            self.check_account_msg(msg, &id, &account)?;
        }
        Ok(())
    }

    fn validate_in(
        &mut self,
        msg: &Msg,
        digest: &Digest,
        tangle: &TangleId,
        sigkeys: &Sigkeys,
    ) -> Result<(), AddError<S::Error>> {
        self.load_tangle(tangle).map_err(AddError::Store)?;
        let cached = self.tangles.get(tangle).expect("invariant: just loaded");
        let result = if *tangle == digest.id && !cached.has(&digest.id) {
            // The msg roots this tangle: validate it against the tangle it will create.
            let mut view = cached.clone();
            view.insert(digest.id, msg);
            validate::validate(msg, digest, &view, sigkeys, &mut self.verifier)
        } else {
            validate::validate(msg, digest, cached, sigkeys, &mut self.verifier)
        };
        result.map_err(AddError::Invalid)
    }

    fn check_account_msg(
        &mut self,
        msg: &Msg,
        id: &MsgId,
        account: &AccountId,
    ) -> Result<(), AddError<S::Error>> {
        let heads: Vec<MsgId> = msg
            .metadata
            .tangles
            .get(account)
            .map(|link| link.prev.clone())
            .unwrap_or_default();
        let past = self
            .tangle(account)
            .map_err(AddError::Store)?
            .past_of(&heads);
        let mut history = Vec::with_capacity(past.len());
        for past_id in past {
            if let Some(past_msg) = self.get(&past_id).map_err(AddError::Store)? {
                history.push(past_msg);
            }
        }
        account::check_account_msg(msg, id, account, history.iter().map(AsRef::as_ref))
            .map_err(AddError::InvalidAccountMsg)
    }

    /// Brings cached tangles up to date with a stored msg.
    fn index(&mut self, id: MsgId, msg: &Msg) {
        for tangle in msg.metadata.tangles.keys() {
            if let Some(cached) = self.tangles.get_mut(tangle) {
                cached.insert(id, msg);
            }
        }
        if let Some(cached) = self.tangles.get_mut(&id) {
            cached.insert(id, msg);
        }
    }

    /// Erases `id` (data becomes null, metadata stays); returns whether it had data.
    ///
    /// # Errors
    /// Store failures.
    pub fn erase(&mut self, id: &MsgId) -> StoreResult<bool, S> {
        self.remove(id, Removal::Erase)
    }

    /// Deletes `id`; returns whether it was stored.
    ///
    /// # Errors
    /// Store failures.
    pub fn delete(&mut self, id: &MsgId) -> StoreResult<bool, S> {
        self.remove(id, Removal::Delete)
    }

    /// Erases or deletes `id` in the store, then in every cached tangle it belongs to.
    fn remove(&mut self, id: &MsgId, removal: Removal) -> StoreResult<bool, S> {
        let Some(record) = self.store.get(id)? else {
            return Ok(false);
        };
        let removed = match removal {
            Removal::Erase => self.store.erase(id)?,
            Removal::Delete => self.store.delete(id)?,
        };
        if !removed {
            return Ok(false);
        }
        for tangle in record
            .msg
            .metadata
            .tangles
            .keys()
            .chain(std::iter::once(id))
        {
            if let Some(cached) = self.tangles.get_mut(tangle) {
                match removal {
                    Removal::Erase => cached.set_has_data(id, false),
                    Removal::Delete => {
                        cached.remove(id);
                    }
                }
            }
        }
        Ok(true)
    }

    /// The ghosts of `tangle`.
    ///
    /// # Errors
    /// Store failures.
    pub fn ghosts(&self, tangle: &TangleId) -> StoreResult<Ghosts, S> {
        self.store.ghosts(tangle)
    }

    /// Remembers `id` (at `depth`) as a ghost of `tangle`, then forgets ghosts more than
    /// `span` below the deepest one (the reference's ghost file rule).
    ///
    /// # Errors
    /// Store failures.
    pub fn add_ghost(
        &mut self,
        tangle: &TangleId,
        id: MsgId,
        depth: u64,
        span: u64,
    ) -> StoreResult<(), S> {
        let mut ghosts = self.store.ghosts(tangle)?;
        ghosts.insert(id, depth);
        let deepest = ghosts.values().copied().max().unwrap_or(0);
        ghosts.retain(|_, ghost_depth| ghost_depth.saturating_add(span) > deepest);
        self.store.set_ghosts(tangle, &ghosts)
    }

    fn remove_ghost(&mut self, tangle: &TangleId, id: &MsgId) -> StoreResult<(), S> {
        let mut ghosts = self.store.ghosts(tangle)?;
        if ghosts.remove(id).is_some() {
            self.store.set_ghosts(tangle, &ghosts)?;
        }
        Ok(())
    }

    /// Panics if a cached index disagrees with the store: every cached tangle is consistent
    /// ([`Tangle::check_invariants`]) and the same graph a fresh load from the store gives,
    /// and the key cache stays within its bound. Holds unless the store was changed behind
    /// the database's back without [`Db::forget_tangles`]. Tests call it after every
    /// operation.
    ///
    /// # Errors
    /// Store failures while reloading a tangle to compare.
    pub fn check_invariants(&self) -> StoreResult<(), S> {
        assert!(
            self.sigkeys.len() <= SIGKEYS_CACHE_MAX,
            "sigkeys cache {} > {SIGKEYS_CACHE_MAX}",
            self.sigkeys.len()
        );
        for (id, cached) in &self.tangles {
            cached.check_invariants();
            // From each member's whole metadata, not the store's links the cache was built
            // from: a store's narrower `tangle_links` must give the same tangle.
            let loaded = self.load_from_metadata(id)?;
            assert!(
                cached.same_graph(&loaded),
                "tangle {id}: the cache differs from the store ({} vs {} members)",
                cached.len(),
                loaded.len()
            );
        }
        Ok(())
    }

    /// Makes every write so far durable.
    ///
    /// # Errors
    /// Store failures.
    pub fn flush(&mut self) -> StoreResult<(), S> {
        self.store.flush()
    }
}
