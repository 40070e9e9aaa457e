//! [`Sessions`]: every sync session of one peer, and what they share.
//!
//! A peer runs one [`Session`] per `sync.connect` connection and one
//! [`ReconSession`] per `sync.reconcile` connection. What one session does affects the others: a
//! msg its remote sent is new to the rest (and must not go back to its sender), a goal change
//! concerns them all, and a tangle the peer holds nothing of is fetched through one of them
//! at a time, whichever method each runs ([`super::claims`]). `Sessions` routes each event to the sessions it concerns and
//! hands back their outputs tagged with the shell's key for the connection, so that a shell
//! (the node's sync actor, the simulator's protocol engine, the test harnesses) only moves
//! objects, applies commits and keeps time.
//!
//! The shell's loop:
//! 1. [`Event::Opened`] when a connection's sync stream opens (`initiate` on the dialer), or
//!    [`Event::OpenedReconcile`] for a `sync.reconcile` stream;
//! 2. [`Event::Received`] (or [`Event::Decoded`]) for every object from a remote, or
//!    [`Event::ReconcileDecoded`] on a `sync.reconcile` stream;
//! 3. after applying an [`Output::Commit`] of session `k` (with [`super::commit`]),
//!    [`Event::LocalAdded`] with `origin: Some(k)` and the msgs added; after a local write,
//!    with `origin: None`;
//!    if the commit refused msgs, [`Event::CommitRefused`];
//! 4. [`Event::GoalChanged`] after changing a goal;
//! 5. [`Event::Tick`] at [`Sessions::deadline`] (fetch claims expire);
//! 6. [`Event::Closed`] when a stream ends.
//!
//! A shell whose peers run `sync.reconcile` calls [`Sessions::handle_any`], which hands
//! back either method's outputs ([`SessionOutput`]); [`Sessions::handle`] is for shells that
//! only ever open pzp-sync sessions.
//!
//! The number of sessions is bounded by the shell's connection limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::claims::{Claims, SessionTag};
use super::recon::session::Input as ReconInput;
use super::recon::{self, ReconSession, ReconStore};
use super::session::{Config, Input, Output, Session, Stats, TangleNumbering};
use super::time::Time;
use crate::goals::Goals;
use crate::ids::{MsgId, TangleId};
use crate::msg::Msg;

/// What a shell tells [`Sessions`]. `K` is its key for a connection.
#[derive(Debug, Clone)]
pub enum Event<K> {
    /// A sync stream opened; `initiate` on the side that dialed (it requests its goals).
    Opened {
        /// The connection.
        key: K,
        /// Whether to start initiating.
        initiate: bool,
    },
    /// A `sync.reconcile` stream opened, on this side as `side` (the dialer starts).
    OpenedReconcile {
        /// The connection.
        key: K,
        /// Which end of the stream this peer is.
        side: recon::Side,
    },
    /// A frame arrived on a `sync.reconcile` stream, already checked with
    /// [`recon::decode_incoming`] (before the shell locks the database).
    ReconcileDecoded {
        /// The connection.
        key: K,
        /// What decoding found.
        decoded: Result<recon::Incoming, recon::Refusal>,
    },
    /// An object arrived on a stream.
    Received {
        /// The connection.
        key: K,
        /// The parsed JSON object.
        object: Value,
    },
    /// An object arrived on a stream, already checked with [`super::wire::decode`]: shells
    /// decode before they lock the database (decoding parses and hashes peer input).
    Decoded {
        /// The connection.
        key: K,
        /// What decoding found.
        decoded: Result<super::wire::Received, super::wire::WireError>,
    },
    /// Msgs were added to the database, as stored, in order: by a commit of session
    /// `origin`, or by a local write (`None`).
    LocalAdded {
        /// The msgs.
        msgs: Vec<(MsgId, Arc<Msg>)>,
        /// The session whose commit added them.
        origin: Option<K>,
    },
    /// Applying session `key`'s [`Output::Commit`] of `tangle` refused some msgs (not
    /// counting msgs already stored).
    CommitRefused {
        /// The connection.
        key: K,
        /// The tangle.
        tangle: TangleId,
    },
    /// The goal of `tangle` was set (the shell updated [`Goals`] first).
    GoalChanged {
        /// The tangle.
        tangle: TangleId,
    },
    /// Time passed ([`Sessions::deadline`]).
    Tick,
    /// A stream ended.
    Closed {
        /// The connection.
        key: K,
    },
}

/// What one of a peer's sessions asks the shell to do: pzp-sync's, or `sync.reconcile`'s.
#[derive(Debug, Clone)]
pub enum SessionOutput {
    /// A pzp-sync session's.
    Sync(Output),
    /// A `sync.reconcile` session's.
    Reconcile(recon::Output),
}

/// Where [`Sessions`] appends its sessions' outputs, with their keys.
trait Sink<K> {
    fn sync(&mut self, key: K, outputs: Vec<Output>);
    fn reconcile(&mut self, key: K, outputs: Vec<recon::Output>);
}

/// pzp-sync's outputs only ([`Sessions::handle`]): its shell opens no `sync.reconcile`
/// session, so there are none of those.
impl<K: Copy> Sink<K> for Vec<(K, Output)> {
    fn sync(&mut self, key: K, outputs: Vec<Output>) {
        self.extend(outputs.into_iter().map(|output| (key, output)));
    }

    fn reconcile(&mut self, _key: K, outputs: Vec<recon::Output>) {
        debug_assert!(
            outputs.is_empty(),
            "a shell with sync.reconcile sessions calls handle_any"
        );
    }
}

impl<K: Copy> Sink<K> for Vec<(K, SessionOutput)> {
    fn sync(&mut self, key: K, outputs: Vec<Output>) {
        self.extend(
            outputs
                .into_iter()
                .map(|output| (key, SessionOutput::Sync(output))),
        );
    }

    fn reconcile(&mut self, key: K, outputs: Vec<recon::Output>) {
        self.extend(
            outputs
                .into_iter()
                .map(|output| (key, SessionOutput::Reconcile(output))),
        );
    }
}

/// Every sync session of one peer. See the module docs.
#[derive(Debug, Clone)]
pub struct Sessions<K> {
    config: Config,
    sessions: BTreeMap<K, Session>,
    /// The `sync.reconcile` sessions, by key (a key is in one map or the other).
    reconciles: BTreeMap<K, ReconSession>,
    claims: Claims,
    /// The number of each tangle some session tracks, shared by the sessions (each is
    /// handed it for the length of one input; see [`Session`]'s `with_numbering`).
    numbering: TangleNumbering,
    next_tag: u64,
}

/// A session of [`Sessions`], read with the peer's tangle numbering (a session of `Sessions`
/// names its tracked tangles by numbers that only the peer's numbering resolves).
#[derive(Debug, Clone, Copy)]
pub struct SessionRef<'a> {
    session: &'a Session,
    numbering: &'a TangleNumbering,
}

impl<'a> SessionRef<'a> {
    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> &'a Stats {
        self.session.stats()
    }

    /// Whether an exchange is under way for some tangle.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.session.is_busy()
    }

    /// Tangles still requested ([`Session::requested`]).
    pub fn requested(&self) -> impl Iterator<Item = &'a TangleId> + 'a {
        self.session.requested()
    }

    /// Tangles pushed in realtime, in ID order ([`Session::realtime`]).
    pub fn realtime(&self) -> impl Iterator<Item = &'a TangleId> + 'a {
        self.session.realtime_in(self.numbering)
    }

    /// How many tangles are pushed in realtime.
    #[must_use]
    pub fn realtime_count(&self) -> usize {
        self.session.realtime_count()
    }

    /// Whether this session fetches `tangle` under its peer's claim.
    #[must_use]
    pub fn has_claimed(&self, tangle: &TangleId) -> bool {
        self.session.has_claimed_in(self.numbering, tangle)
    }

    /// This session's tag among its peer's sessions.
    #[must_use]
    pub fn tag(&self) -> SessionTag {
        self.session.tag()
    }
}

impl<K: Ord + Copy + std::fmt::Debug> Sessions<K> {
    /// No sessions yet.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            config,
            sessions: BTreeMap::new(),
            reconciles: BTreeMap::new(),
            claims: Claims::new(),
            numbering: TangleNumbering::default(),
            next_tag: 0,
        }
    }

    /// The session of a connection.
    #[must_use]
    pub fn get(&self, key: &K) -> Option<SessionRef<'_>> {
        self.sessions.get(key).map(|session| self.view(session))
    }

    /// The open sessions, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&K, SessionRef<'_>)> + '_ {
        self.sessions
            .iter()
            .map(|(key, session)| (key, self.view(session)))
    }

    fn view<'a>(&'a self, session: &'a Session) -> SessionRef<'a> {
        SessionRef {
            session,
            numbering: &self.numbering,
        }
    }

    /// The `sync.reconcile` session of a connection.
    #[must_use]
    pub fn reconcile(&self, key: &K) -> Option<&ReconSession> {
        self.reconciles.get(key)
    }

    /// The open `sync.reconcile` sessions, by key.
    pub fn reconciles(&self) -> impl Iterator<Item = (&K, &ReconSession)> + '_ {
        self.reconciles.iter()
    }

    /// Number of open sessions, of either method.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sessions.len() + self.reconciles.len()
    }

    /// Whether there is no open session.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.reconciles.is_empty()
    }

    fn next_tag(&mut self) -> SessionTag {
        let tag = SessionTag(self.next_tag);
        self.next_tag += 1;
        tag
    }

    /// When the shell should send [`Event::Tick`] next, if ever.
    #[must_use]
    pub fn deadline(&self) -> Option<Time> {
        self.claims.deadline()
    }

    /// Handles one event, appending each session's outputs to `out` with its key: for a
    /// shell that opens only pzp-sync sessions (never [`Event::OpenedReconcile`]).
    ///
    /// Never panics on remote input; a session that closes itself (too many refusals) is
    /// dropped after its [`Output::Close`].
    ///
    /// # Errors
    /// Local store failures; the shell should stop the peer's sync.
    pub fn handle<St: ReconStore>(
        &mut self,
        now: Time,
        event: Event<K>,
        store: &mut St,
        goals: &Goals,
        out: &mut Vec<(K, Output)>,
    ) -> Result<(), St::Error> {
        self.dispatch(now, event, store, goals, out)
    }

    /// [`Sessions::handle`] for a shell whose sessions may run either method: each output
    /// comes tagged with its session's method.
    ///
    /// # Errors
    /// Local store failures, as [`Sessions::handle`].
    pub fn handle_any<St: ReconStore>(
        &mut self,
        now: Time,
        event: Event<K>,
        store: &mut St,
        goals: &Goals,
        out: &mut Vec<(K, SessionOutput)>,
    ) -> Result<(), St::Error> {
        self.dispatch(now, event, store, goals, out)
    }

    fn dispatch<St: ReconStore>(
        &mut self,
        now: Time,
        event: Event<K>,
        store: &mut St,
        goals: &Goals,
        out: &mut impl Sink<K>,
    ) -> Result<(), St::Error> {
        let mut turn = Turn {
            now,
            store,
            goals,
            out,
        };
        match event {
            Event::Opened { key, initiate } => {
                let tag = self.next_tag();
                self.sessions
                    .insert(key, Session::with_tag(self.config, tag));
                if initiate {
                    self.feed(key, Input::Start, &mut turn)?;
                }
            }
            Event::OpenedReconcile { key, side } => {
                let tag = self.next_tag();
                self.reconciles
                    .insert(key, ReconSession::with_tag(side, tag));
                self.feed_reconcile(key, ReconInput::Start, &mut turn)?;
            }
            Event::Received { key, object } => {
                self.feed(key, Input::Received(object), &mut turn)?;
            }
            Event::Decoded { key, decoded } => {
                self.feed(key, Input::Decoded(decoded), &mut turn)?;
            }
            Event::ReconcileDecoded { key, decoded } => {
                self.feed_reconcile(key, ReconInput::Decoded(decoded), &mut turn)?;
            }
            Event::LocalAdded { msgs, origin } => self.local_added(&msgs, origin, &mut turn)?,
            Event::CommitRefused { key, tangle } => {
                self.feed(key, Input::CommitRefused { tangle }, &mut turn)?;
                let refused = ReconInput::CommitRefused { tangle };
                self.feed_reconcile(key, refused, &mut turn)?;
            }
            Event::GoalChanged { tangle } => self.goal_changed(tangle, &mut turn)?,
            Event::Tick => self.claims.expire(now),
            Event::Closed { key } => {
                self.feed(key, Input::Closed, &mut turn)?;
                self.feed_reconcile(key, ReconInput::Closed, &mut turn)?;
            }
        }
        self.announce_releases(&mut turn)
    }

    fn keys(&self) -> Vec<K> {
        self.sessions.keys().copied().collect()
    }

    fn reconcile_keys(&self) -> Vec<K> {
        self.reconciles.keys().copied().collect()
    }

    /// Local adds, told to every session: pzp-sync's first, then `sync.reconcile`'s.
    fn local_added<St: ReconStore>(
        &mut self,
        msgs: &[(MsgId, Arc<Msg>)],
        origin: Option<K>,
        turn: &mut Turn<'_, St, impl Sink<K>>,
    ) -> Result<(), St::Error> {
        for key in self.keys() {
            let input = Input::LocalAdded {
                msgs: msgs.to_vec(),
                from_this_remote: origin == Some(key),
            };
            self.feed(key, input, turn)?;
        }
        for key in self.reconcile_keys() {
            let input = ReconInput::LocalAdded {
                msgs: msgs.to_vec(),
                from_this_remote: origin == Some(key),
            };
            self.feed_reconcile(key, input, turn)?;
        }
        Ok(())
    }

    /// A goal changed, told to every session: pzp-sync's first, then `sync.reconcile`'s.
    fn goal_changed<St: ReconStore>(
        &mut self,
        tangle: TangleId,
        turn: &mut Turn<'_, St, impl Sink<K>>,
    ) -> Result<(), St::Error> {
        for key in self.keys() {
            self.feed(key, Input::GoalChanged { tangle }, turn)?;
        }
        for key in self.reconcile_keys() {
            self.feed_reconcile(key, ReconInput::GoalChanged { tangle }, turn)?;
        }
        Ok(())
    }

    /// One input through one pzp-sync session (if `key` is one); a session that closed is
    /// dropped.
    fn feed<St: ReconStore>(
        &mut self,
        key: K,
        input: Input,
        turn: &mut Turn<'_, St, impl Sink<K>>,
    ) -> Result<(), St::Error> {
        let Some(session) = self.sessions.get_mut(&key) else {
            return Ok(());
        };
        let mut outputs = Vec::new();
        let claims = &mut self.claims;
        let result = session.with_numbering(&mut self.numbering, |session| {
            session.handle_with(
                turn.now,
                input,
                turn.store,
                turn.goals,
                claims,
                &mut outputs,
            )
        });
        turn.out.sync(key, outputs);
        if session.is_closed() {
            session.with_numbering(&mut self.numbering, Session::forget_tangles);
            self.sessions.remove(&key);
        }
        result
    }

    /// One input through one `sync.reconcile` session (if `key` is one); a session that
    /// closed is dropped.
    fn feed_reconcile<St: ReconStore>(
        &mut self,
        key: K,
        input: ReconInput,
        turn: &mut Turn<'_, St, impl Sink<K>>,
    ) -> Result<(), St::Error> {
        let Some(session) = self.reconciles.get_mut(&key) else {
            return Ok(());
        };
        let mut outputs = Vec::new();
        let result = session.handle_with(
            turn.now,
            input,
            turn.store,
            turn.goals,
            &mut self.claims,
            &mut outputs,
        );
        turn.out.reconcile(key, outputs);
        if session.is_closed() {
            self.reconciles.remove(&key);
        }
        result
    }

    /// Tells every session about each released claim (deferred ones fetch now), until no
    /// claim is released any more. Each round only starts exchanges, which take no claim
    /// synchronously, so this ends after one round in practice and at most after as many
    /// rounds as there are claims.
    fn announce_releases<St: ReconStore>(
        &mut self,
        turn: &mut Turn<'_, St, impl Sink<K>>,
    ) -> Result<(), St::Error> {
        loop {
            let released = self.claims.take_released();
            if released.is_empty() {
                return Ok(());
            }
            for tangle in released {
                for key in self.keys() {
                    self.feed(key, Input::ClaimReleased { tangle }, turn)?;
                }
                for key in self.reconcile_keys() {
                    self.feed_reconcile(key, ReconInput::ClaimReleased { tangle }, turn)?;
                }
            }
        }
    }

    /// Panics if a session's invariants are broken, if a claim is held by no session's
    /// exchange, or if the tangle numbering's counts are not the sessions' uses.
    /// Tests and simulations call it after every [`Sessions::handle`].
    pub fn check_invariants(&self) {
        let mut uses = BTreeMap::new();
        for session in self.sessions.values() {
            assert!(
                session.own_numbering_is_empty(),
                "a session of Sessions numbered tangles on its own"
            );
            session.check_invariants_in(&self.numbering);
            session.count_number_uses(&mut uses);
        }
        self.numbering.check_invariants(&uses);
        for session in self.reconciles.values() {
            session.check_invariants();
        }
        for (tangle, holder) in self.claims.iter() {
            let syncing = self.sessions.values().any(|session| {
                session.tag() == holder && session.has_claimed_in(&self.numbering, &tangle)
            });
            let reconciling = self
                .reconciles
                .values()
                .any(|session| session.tag() == holder && session.has_claimed(&tangle));
            assert!(
                syncing || reconciling,
                "the claim on {tangle} is held by {holder:?}, which is not fetching it"
            );
        }
    }
}

/// What one [`Sessions`] event works with.
struct Turn<'a, St, O> {
    now: Time,
    store: &'a mut St,
    goals: &'a Goals,
    out: &'a mut O,
}

#[cfg(test)]
mod tests {
    use super::{Event, Sessions};
    use crate::db::Db;
    use crate::goals::{Goal, Goals};
    use crate::ids::MsgId;
    use crate::store::MemStore;
    use crate::sync::{Config, IndexedDb, Output, SyncIndex, Time};

    /// Two dialing sessions over an empty database, each requesting the same three goals.
    fn two_sessions() -> (Sessions<u8>, Db<MemStore>, SyncIndex, Goals) {
        let mut goals = Goals::new();
        for n in [7, 3, 5] {
            goals
                .set(MsgId::from_bytes(&[n; 32]), Goal::All)
                .expect("room for three goals");
        }
        let mut sessions = Sessions::new(Config::default());
        let mut db = Db::new(MemStore::new());
        let mut index = SyncIndex::new();
        for key in [1, 2] {
            let event = Event::Opened {
                key,
                initiate: true,
            };
            handle(&mut sessions, event, &mut db, &mut index, &goals);
        }
        (sessions, db, index, goals)
    }

    fn handle(
        sessions: &mut Sessions<u8>,
        event: Event<u8>,
        db: &mut Db<MemStore>,
        index: &mut SyncIndex,
        goals: &Goals,
    ) -> Vec<(u8, Output)> {
        let mut out = Vec::new();
        let mut store = IndexedDb::new(db, index);
        let Ok(()) = sessions.handle(Time(0), event, &mut store, goals, &mut out);
        sessions.check_invariants();
        out
    }

    #[test]
    fn the_sessions_share_one_number_per_tangle_until_the_last_closes() {
        let (mut sessions, mut db, mut index, goals) = two_sessions();
        assert_eq!(
            sessions.numbering.len(),
            3,
            "one number per tangle, not per session"
        );
        for (_, session) in sessions.iter() {
            assert!(session.is_busy());
            assert_eq!(session.requested().count(), 3);
        }
        handle(
            &mut sessions,
            Event::Closed { key: 1 },
            &mut db,
            &mut index,
            &goals,
        );
        assert_eq!(sessions.len(), 1);
        assert_eq!(
            sessions.numbering.len(),
            3,
            "still tracked by the other session"
        );
        handle(
            &mut sessions,
            Event::Closed { key: 2 },
            &mut db,
            &mut index,
            &goals,
        );
        assert!(sessions.is_empty());
        assert!(
            sessions.numbering.is_empty(),
            "the last session's close freed every number"
        );
    }

    #[test]
    #[should_panic(expected = "uses counted")]
    fn the_checker_catches_a_reference_count_above_the_uses() {
        let (mut sessions, ..) = two_sessions();
        sessions.numbering.acquire(MsgId::from_bytes(&[3; 32]));
        sessions.check_invariants();
    }

    #[test]
    #[should_panic(expected = "names no tangle")]
    fn the_checker_catches_a_number_freed_while_in_use() {
        let (mut sessions, ..) = two_sessions();
        let number = sessions.numbering.acquire(MsgId::from_bytes(&[3; 32]));
        for _ in 0..3 {
            sessions.numbering.release(number);
        }
        sessions.check_invariants();
    }
}
