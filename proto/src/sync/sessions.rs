//! [`Sessions`]: every sync session of one peer, and what they share.
//!
//! A peer runs one [`Session`] per connection. What one session does affects the others: a
//! msg its remote sent is new to the rest (and must not go back to its sender), a goal change
//! concerns them all, and a tangle the peer holds nothing of is fetched through one of them
//! at a time ([`super::claims`]). `Sessions` routes each event to the sessions it concerns and
//! hands back their outputs tagged with the shell's key for the connection, so that a shell
//! (the node's sync actor, the simulator's protocol engine, the test harnesses) only moves
//! objects, applies commits and keeps time.
//!
//! The shell's loop:
//! 1. [`Event::Opened`] when a connection's sync stream opens (`initiate` on the dialer);
//! 2. [`Event::Received`] (or [`Event::Decoded`]) for every object from a remote;
//! 3. after applying an [`Output::Commit`] of session `k` (with [`super::commit`]),
//!    [`Event::LocalAdded`] with `origin: Some(k)` and the msgs added; after a local write,
//!    with `origin: None`;
//!    if the commit refused msgs, [`Event::CommitRefused`];
//! 4. [`Event::GoalChanged`] after changing a goal;
//! 5. [`Event::Tick`] at [`Sessions::deadline`] (fetch claims expire);
//! 6. [`Event::Closed`] when a stream ends.
//!
//! The number of sessions is bounded by the shell's connection limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::claims::{Claims, SessionTag};
use super::session::{Config, Input, Output, Session, Stats, TangleNumbering};
use super::store::SyncStore;
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

/// Every sync session of one peer. See the module docs.
#[derive(Debug, Clone)]
pub struct Sessions<K> {
    config: Config,
    sessions: BTreeMap<K, Session>,
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

    /// Number of open sessions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there is no open session.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// When the shell should send [`Event::Tick`] next, if ever.
    #[must_use]
    pub fn deadline(&self) -> Option<Time> {
        self.claims.deadline()
    }

    /// Handles one event, appending each session's outputs to `out` with its key.
    ///
    /// Never panics on remote input; a session that closes itself (too many refusals) is
    /// dropped after its [`Output::Close`].
    ///
    /// # Errors
    /// Local store failures; the shell should stop the peer's sync.
    pub fn handle<St: SyncStore>(
        &mut self,
        now: Time,
        event: Event<K>,
        store: &mut St,
        goals: &Goals,
        out: &mut Vec<(K, Output)>,
    ) -> Result<(), St::Error> {
        match event {
            Event::Opened { key, initiate } => {
                let tag = SessionTag(self.next_tag);
                self.next_tag += 1;
                self.sessions
                    .insert(key, Session::with_tag(self.config, tag));
                if initiate {
                    self.feed(now, key, Input::Start, store, goals, out)?;
                }
            }
            Event::Received { key, object } => {
                self.feed(now, key, Input::Received(object), store, goals, out)?;
            }
            Event::Decoded { key, decoded } => {
                self.feed(now, key, Input::Decoded(decoded), store, goals, out)?;
            }
            Event::LocalAdded { msgs, origin } => {
                for key in self.keys() {
                    let input = Input::LocalAdded {
                        msgs: msgs.clone(),
                        from_this_remote: origin == Some(key),
                    };
                    self.feed(now, key, input, store, goals, out)?;
                }
            }
            Event::CommitRefused { key, tangle } => {
                self.feed(now, key, Input::CommitRefused { tangle }, store, goals, out)?;
            }
            Event::GoalChanged { tangle } => {
                for key in self.keys() {
                    self.feed(now, key, Input::GoalChanged { tangle }, store, goals, out)?;
                }
            }
            Event::Tick => self.claims.expire(now),
            Event::Closed { key } => {
                self.feed(now, key, Input::Closed, store, goals, out)?;
            }
        }
        self.announce_releases(now, store, goals, out)
    }

    fn keys(&self) -> Vec<K> {
        self.sessions.keys().copied().collect()
    }

    /// One input through one session; a session that closed is dropped.
    fn feed<St: SyncStore>(
        &mut self,
        now: Time,
        key: K,
        input: Input,
        store: &mut St,
        goals: &Goals,
        out: &mut Vec<(K, Output)>,
    ) -> Result<(), St::Error> {
        let Some(session) = self.sessions.get_mut(&key) else {
            return Ok(());
        };
        let mut outputs = Vec::new();
        let claims = &mut self.claims;
        let result = session.with_numbering(&mut self.numbering, |session| {
            session.handle_with(now, input, store, goals, claims, &mut outputs)
        });
        out.extend(outputs.into_iter().map(|output| (key, output)));
        if session.is_closed() {
            session.with_numbering(&mut self.numbering, Session::forget_tangles);
            self.sessions.remove(&key);
        }
        result
    }

    /// Tells every session about each released claim (deferred ones fetch now), until no
    /// claim is released any more. Each round only starts exchanges, which take no claim
    /// synchronously, so this ends after one round in practice and at most after as many
    /// rounds as there are claims.
    fn announce_releases<St: SyncStore>(
        &mut self,
        now: Time,
        store: &mut St,
        goals: &Goals,
        out: &mut Vec<(K, Output)>,
    ) -> Result<(), St::Error> {
        loop {
            let released = self.claims.take_released();
            if released.is_empty() {
                return Ok(());
            }
            for tangle in released {
                for key in self.keys() {
                    self.feed(now, key, Input::ClaimReleased { tangle }, store, goals, out)?;
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
        for (tangle, holder) in self.claims.iter() {
            assert!(
                self.sessions.values().any(|session| session.tag() == holder
                    && session.has_claimed_in(&self.numbering, &tangle)),
                "the claim on {tangle} is held by {holder:?}, which is not fetching it"
            );
        }
    }
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
