//! The sync session machine: one per `sync.connect` stream, for every tangle synced over it.
//! See the module docs of [`crate::sync`] for the protocol and how a shell drives it.

use std::collections::BTreeMap;
use std::sync::Arc;

use indexmap::IndexSet;
use serde_json::Value;
use thiserror::Error;

use super::apply;
use super::bloom::{self, BloomFilter, ERROR_RATE, SEED_DEFAULT, SIZE_BITS_MAX};
use super::claims::{Claims, SessionTag};
use super::store::{RangeItems, SyncStore};
use super::time::Time;
use super::wire::{self, Payload, SyncMsg, WireError};
use crate::goals::{self, Goal, Goals};
use crate::ids::{MsgId, TangleId};
use crate::msg::{Account, DigestedMsg, Msg};
use crate::tangle::DepthRange;

mod numbering;
mod tangle_state;

pub(super) use numbering::{TangleNumber, TangleNumbering};
use tangle_state::{MaybeRange, TangleState, TangleStates};

/// Most tangles a stream keeps state for (exchanges in progress, want-ranges, the IDs each
/// side said it would send). A remote that opens more is refused until some finish.
pub const TANGLES_TRACKED_MAX: usize = 4096;

/// Most msg IDs a stream remembers across all tangles (the reference's `receivableMsgs`
/// and `sendableMsgs`). Enough for exchanges of about 80,000 msgs at once.
pub const KNOWN_IDS_MAX: usize = 1 << 18;

/// Most tangles a stream asks to sync (the reference's `requested`).
pub const REQUESTED_MAX: usize = goals::GOALS_MAX;

/// The `requested` set is shrunk to fit once it uses at most this fraction of its capacity
/// (a fraction, so that shrinking costs amortized constant time per removal).
const REQUESTED_SHRINK_FACTOR: usize = 4;

/// Refused objects a stream tolerates before it is closed. Each is dropped, as the reference
/// drops them; a peer that keeps sending garbage is cut off.
pub const REFUSALS_MAX: u64 = 64;

/// Most msgs added during one tangle's exchange that a session keeps to push when the
/// exchange ends in realtime; past it, the exchange is repeated instead.
pub const PENDING_PUSHES_PER_TANGLE_MAX: usize = 32;

/// Most such msgs a session keeps over all its tangles.
pub const PENDING_PUSHES_MAX: usize = 1024;

/// How many (tangle, range) ID lists a session keeps, with their bloom hashes: a tangle
/// exchange needs two (the local and the remote want-range) for three rounds.
pub const ITEM_CACHE_ENTRIES_MAX: usize = 8;

/// The reference's cap on `estimateMsgCount`, past which its filters stop growing.
const REFERENCE_ESTIMATE_MAX: u64 = 1000;

/// Bits per item of a [`BloomSizing::Scaled`] filter past the reference's cap.
pub const SCALED_BITS_PER_ITEM: u64 = 24;

/// Hash functions of a [`BloomSizing::Scaled`] filter past the reference's cap: with
/// [`SCALED_BITS_PER_ITEM`] bits per item the false-positive rate is `(1 − e^(−12/24))^12`,
/// about 1.4·10⁻⁵ per round, so a msg is missed by all three rounds with a probability
/// around 3·10⁻¹⁵; 17 functions would gain little and cost 40 % more bit operations.
pub const SCALED_HASHES: u64 = 12;

/// How blooms are sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BloomSizing {
    /// Exactly the reference: `create(2·(estimate + extras), 1e-5)` with the estimate capped
    /// at 1000, so filters stop growing past ranges of 500 depths and their false-positive
    /// rate explodes on big ranges.
    Reference,
    /// The reference's size whenever its estimate is not capped (every range of at most 500
    /// depths: byte-identical filters); past the cap, sized for the items actually inserted,
    /// [`SCALED_BITS_PER_ITEM`] bits each with [`SCALED_HASHES`] hash functions, so the
    /// false-positive rate stays near the reference's target however long the range.
    #[default]
    Scaled,
}

/// When a session asks again for tangles it exchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reinitiation {
    /// Ours: a local add re-initiates only the tangles it touches that the remote is owed
    /// or that are requested and idle; one fetch per tangle the peer lacks; ID lists cleared
    /// per exchange; refused realtime msgs fetched again (docs/divergences.md, "Liveness").
    #[default]
    Targeted,
    /// pzp-sync 1.0.4 exactly, for comparison: every local add re-sends phase 1 for every
    /// requested tangle; nothing is owed, claimed, repeated or fetched again; ID lists live
    /// as long as the stream; goals are watched only once initiating. It has the relay hole
    /// and the storm the targeted mode fixes.
    Reference,
}

/// How many bloom rounds an exchange this side initiates runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rounds {
    /// Ours: after the responder's phase 4, the initiator answers with phase 8 (its msgs and
    /// its round-2 bloom) instead of phase 5, skipping rounds 1 and 2 (phases 5–7), whenever
    /// the responder's round-0 bloom is sparse enough that a msg it lacks is hidden by a
    /// false positive with a probability of at most [`SKIP_ROUNDS_FALSE_POSITIVE_MAX`].
    /// The responder (ours or the reference) answers phase 8 with phase 9 as the reference's
    /// initiator does: it probes our round-2 bloom, sends its msgs, joins realtime and
    /// commits ours. Six objects instead of nine, three blooms instead of six.
    #[default]
    Adaptive,
    /// The reference: phases 1–9 every time, three bloom rounds each way.
    All,
}

/// Largest false-positive probability per probe, `(bits set / size)^hashes`, of the
/// responder's round-0 bloom for which [`Rounds::Adaptive`] skips rounds 1 and 2. The
/// reference sizes a filter for four times the depths of its range, so a feed's round-0
/// filter is about a sixth full and its false-positive rate is near 10⁻¹³; a filter filled
/// to its design capacity (10⁻⁵) runs all three rounds.
pub const SKIP_ROUNDS_FALSE_POSITIVE_MAX: f64 = 1e-9;

/// Session settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Config {
    /// Bloom sizing policy.
    pub bloom_sizing: BloomSizing,
    /// Re-initiation policy.
    pub reinitiation: Reinitiation,
    /// Bloom rounds of the exchanges this side initiates.
    pub rounds: Rounds,
}

/// What the shell tells a session.
#[derive(Debug, Clone)]
pub enum Input {
    /// Start initiating (pzp-sync `initiate()`, run on the dialer's stream once
    /// `sync.start()` has been called): every goal's tangle is requested, and later goals are
    /// followed.
    Start,
    /// A data object arrived from the remote peer.
    Received(Value),
    /// A data object arrived from the remote peer, already checked with [`wire::decode`].
    /// Shells decode before they lock the database: decoding parses and hashes peer input.
    Decoded(Result<wire::Received, WireError>),
    /// Msgs were added to the local database (by anyone: publishing, this or another
    /// session's commit), as stored, in the order they were added. Not for msgs that were
    /// already stored. Shells should batch what one commit added.
    ///
    /// The session pushes them to the remote where it is in realtime, and re-initiates only
    /// the tangles they touch that need it (see the module docs, "Liveness"); the reference
    /// instead re-initiates every requested tangle on every added record.
    LocalAdded {
        /// The msgs, as stored.
        msgs: Vec<(MsgId, Arc<Msg>)>,
        /// Whether this session's own [`Output::Commit`] added them, i.e. they came from this
        /// session's remote. Such msgs are never pushed back, and never make the remote owed.
        from_this_remote: bool,
    },
    /// Applying this session's [`Output::Commit`] of `tangle` refused msgs (invalid, or
    /// missing what they depend on: e.g. a msg pushed in realtime whose account msg or
    /// predecessor the peer lacks). Outside an exchange, the session fetches the tangle
    /// again, once until a later commit from the remote adds something.
    CommitRefused {
        /// The tangle.
        tangle: TangleId,
    },
    /// The fetch claim on `tangle` was released by another session of this peer
    /// ([`super::claims`]); a session deferred on it starts a new exchange.
    ClaimReleased {
        /// The tangle.
        tangle: TangleId,
    },
    /// The goal of `tangle` was set (the shell updated [`Goals`] first).
    GoalChanged {
        /// The tangle.
        tangle: TangleId,
    },
    /// The stream ended; nothing more is sent.
    Closed,
}

/// What a session asks the shell to do, in order.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send this object to the remote peer.
    Send(SyncMsg),
    /// Add these msgs to the database, in order: those with `account: "self"` without a
    /// tangle hint (the tangle is inferred), the others in `tangle`. Refusals are expected
    /// and ignored. Then tell every session [`Input::LocalAdded`] for each msg actually added.
    Commit {
        /// The tangle synced.
        tangle: TangleId,
        /// The msgs with their digests (IDs included), account msgs first, then by depth.
        msgs: Vec<DigestedMsg>,
    },
    /// After the commit: keep only the newest `count` msgs of `tangle` (`crate::gc::plan_prune_newest`).
    PruneNewest {
        /// The tangle.
        tangle: TangleId,
        /// The goal's count.
        count: u64,
    },
    /// This side's part of the exchange for `tangle` is over (it may still get realtime msgs).
    Finished {
        /// The tangle.
        tangle: TangleId,
    },
    /// A received object was refused and dropped.
    Refused(Refusal),
    /// Close the stream.
    Close(CloseReason),
}

/// Why a received object was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Refusal {
    /// It fails a wire check.
    #[error("malformed: {0}")]
    Malformed(#[from] WireError),
    /// A phase that needs the local want-range arrived before it was set (the reference
    /// throws and sends nothing).
    #[error("phase {phase} for {tangle} before the local want-range was set")]
    NoLocalWant {
        /// The tangle.
        tangle: TangleId,
        /// The phase.
        phase: u8,
    },
    /// A new tangle while [`TANGLES_TRACKED_MAX`] exchanges are in progress.
    #[error("too many tangles in progress (at most {max})")]
    TooManyTangles {
        /// The bound.
        max: usize,
    },
}

/// Why a session asks to close its stream.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// More than [`REFUSALS_MAX`] objects were refused.
    #[error("more than {max} refused objects")]
    TooManyRefusals {
        /// The bound.
        max: u64,
    },
    /// The remote's exchanges need more than [`KNOWN_IDS_MAX`] msg IDs at once.
    #[error("more than {max} msg ids in flight")]
    KnownIdsBudget {
        /// The bound.
        max: usize,
    },
}

/// Counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Objects sent, by phase.
    pub sent: [u64; 10],
    /// Objects accepted, by phase.
    pub received: [u64; 10],
    /// Objects refused.
    pub refused: u64,
    /// Msgs dropped from payloads because they do not decode.
    pub dropped_msgs: u64,
    /// Msgs handed to the shell to commit.
    pub committed_msgs: u64,
    /// Msgs pushed in realtime.
    pub realtime_pushed: u64,
    /// Exchanges this side started (phase 1 sent): on start, goal changes, local adds that
    /// touched an owed or requested tangle, and repeats.
    pub initiated: u64,
    /// Of those, exchanges repeated because a local msg arrived during them (dirty).
    pub repeated: u64,
    /// Fetches this session deferred to another session's claim.
    pub deferred: u64,
    /// Exchanges started because a commit refused msgs pushed in realtime.
    pub refetched: u64,
    /// Blooms built.
    pub blooms_built: u64,
    /// Items inserted into blooms.
    pub bloom_items: u64,
    /// Items probed against remote blooms.
    pub bloom_probes: u64,
    /// Exchanges this side initiated that skipped bloom rounds 1 and 2 ([`Rounds::Adaptive`]).
    pub rounds_skipped: u64,
}

/// The IDs a range covers, with their bloom hashes per round (default seed).
#[derive(Debug, Clone)]
struct CachedItems {
    tangle: TangleId,
    range: DepthRange,
    version: u64,
    items: RangeItems,
}

/// A local msg kept to push when an exchange ends.
#[derive(Debug, Clone)]
struct PendingPush {
    id: MsgId,
    msg: Arc<Msg>,
    depth: u64,
}

/// Why a local msg touches a tangle.
#[derive(Debug, Clone, Copy)]
enum Touch<'a> {
    /// The msg is in the tangle (or is its root) at `depth`.
    Msg {
        depth: u64,
        id: MsgId,
        msg: &'a Arc<Msg>,
    },
    /// The msg changed the account the tangle belongs to.
    Account,
}

/// What a session's handlers need of the moment and of the peer's other sessions.
#[derive(Debug)]
struct Context<'a> {
    now: Time,
    claims: &'a mut Claims,
}

/// Where a session asks for a tangle's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// A remote object: refuse it if no room can be made.
    Remote,
    /// Our own phase 1: make room by evicting even exchanges in progress.
    Local,
}

/// A sync session over one stream. See [`crate::sync`].
#[derive(Debug, Clone)]
pub struct Session {
    config: Config,
    started: bool,
    closed: bool,
    requested: IndexSet<TangleId>,
    tangles: TangleStates,
    known_ids: usize,
    cache: Vec<CachedItems>,
    use_counter: u64,
    /// Msgs added locally during exchanges, by tangle in exchange (see [`PendingPush`]);
    /// only tangles with some, at most [`PENDING_PUSHES_PER_TANGLE_MAX`] each.
    pending: BTreeMap<TangleId, Vec<PendingPush>>,
    /// How many msgs `pending` holds, at most [`PENDING_PUSHES_MAX`].
    pending_pushes: usize,
    stats: Stats,
    tag: SessionTag,
}

impl Session {
    /// A session that has not started initiating; it answers the remote right away.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self::with_tag(config, SessionTag::default())
    }

    /// A session known to its peer's other sessions as `tag` (for fetch claims).
    #[must_use]
    pub fn with_tag(config: Config, tag: SessionTag) -> Self {
        Self {
            config,
            tag,
            pending: BTreeMap::new(),
            pending_pushes: 0,
            started: false,
            closed: false,
            requested: IndexSet::new(),
            tangles: TangleStates::default(),
            known_ids: 0,
            cache: Vec::new(),
            use_counter: 0,
            stats: Stats::default(),
        }
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether the stream was closed (by the shell or by this session).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Tangles still requested (asked for and not yet received in phase 8 or 9).
    pub fn requested(&self) -> impl Iterator<Item = &TangleId> + '_ {
        self.requested.iter()
    }

    /// Tangles whose new local msgs are pushed to the remote as they are added, in ID order.
    /// Of a session of [`super::Sessions`], see [`super::SessionRef::realtime`].
    pub fn realtime(&self) -> impl Iterator<Item = &TangleId> + '_ {
        self.realtime_in(self.tangles.numbering())
    }

    /// [`Session::realtime`], the tangles' numbers read in `numbering`.
    pub(super) fn realtime_in<'a>(
        &'a self,
        numbering: &'a TangleNumbering,
    ) -> impl Iterator<Item = &'a TangleId> + 'a {
        self.tangles
            .iter_in(numbering)
            .filter(|(_, state)| state.realtime)
            .map(|(tangle, _)| tangle)
    }

    /// How many tangles are pushed in realtime.
    #[must_use]
    pub fn realtime_count(&self) -> usize {
        self.tangles.values().filter(|state| state.realtime).count()
    }

    /// Whether this session fetches `tangle` under a claim of its peer's.
    #[must_use]
    pub fn has_claimed(&self, tangle: &TangleId) -> bool {
        self.has_claimed_in(self.tangles.numbering(), tangle)
    }

    /// [`Session::has_claimed`], the tangles' numbers read in `numbering`.
    pub(super) fn has_claimed_in(&self, numbering: &TangleNumbering, tangle: &TangleId) -> bool {
        self.tangles
            .get_in(numbering, tangle)
            .is_some_and(|state| state.claimed)
    }

    /// Whether an exchange is under way for some tangle.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.tangles.values().any(|state| state.in_progress)
    }

    /// This session's tag among its peer's sessions.
    #[must_use]
    pub fn tag(&self) -> SessionTag {
        self.tag
    }

    /// Advances a session that fetches alone (no other session of its peer claims tangles):
    /// [`Session::handle_with`] with claims of its own.
    ///
    /// # Errors
    /// Local store failures, as [`Session::handle_with`].
    pub fn handle<St: SyncStore>(
        &mut self,
        now: Time,
        input: Input,
        store: &mut St,
        goals: &Goals,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        self.handle_with(now, input, store, goals, &mut Claims::new(), out)
    }

    /// Runs `run` with `numbering` (the peer's, shared by its sessions) in place of the
    /// session's own, which stays empty for a session that only ever runs this way.
    pub(super) fn with_numbering<R>(
        &mut self,
        numbering: &mut TangleNumbering,
        run: impl FnOnce(&mut Self) -> R,
    ) -> R {
        self.tangles.swap_numbering(numbering);
        let result = run(self);
        self.tangles.swap_numbering(numbering);
        result
    }

    /// Forgets every tracked tangle, giving their numbers back: a closed session's last act
    /// before [`super::Sessions`] drops it.
    pub(super) fn forget_tangles(&mut self) {
        self.tangles.clear();
        self.pending.clear();
        self.pending_pushes = 0;
        self.known_ids = 0;
    }

    /// Whether the session's own numbering is empty, as it stays for a session that runs
    /// only with its peer's ([`Session::with_numbering`]).
    pub(super) fn own_numbering_is_empty(&self) -> bool {
        self.tangles.numbering().is_empty()
    }

    /// Adds one to `uses` for each number of a tangle this session tracks.
    pub(super) fn count_number_uses(&self, uses: &mut BTreeMap<TangleNumber, u32>) {
        self.tangles.count_uses(uses);
    }

    /// Advances the session by one input, appending what the shell must do to `out`.
    /// `claims` are shared by the sessions of one peer ([`super::Sessions`] drives them).
    ///
    /// Never panics on remote input and never grows beyond the `*_MAX` bounds; a bad object
    /// becomes [`Output::Refused`].
    ///
    /// # Errors
    /// Local store failures; the session is unchanged past the point of failure and the shell
    /// should close the stream.
    pub fn handle_with<St: SyncStore>(
        &mut self,
        now: Time,
        input: Input,
        store: &mut St,
        goals: &Goals,
        claims: &mut Claims,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        if self.closed {
            return Ok(());
        }
        let mut context = Context { now, claims };
        match input {
            Input::Start => self.start(store, goals, out),
            Input::Received(value) => {
                self.receive(wire::decode(&value), store, goals, &mut context, out)
            }
            Input::Decoded(decoded) => self.receive(decoded, store, goals, &mut context, out),
            Input::LocalAdded {
                msgs,
                from_this_remote,
            } => self.local_added(&msgs, from_this_remote, store, out),
            Input::GoalChanged { tangle } => self.goal_changed(tangle, store, goals, out),
            Input::ClaimReleased { tangle } => self.claim_released(tangle, store, out),
            Input::CommitRefused { tangle } => self.commit_refused(tangle, store, out),
            Input::Closed => {
                self.closed = true;
                Ok(())
            }
        }?;
        if self.closed {
            context.claims.release_all(self.tag);
        }
        Ok(())
    }

    fn start<St: SyncStore>(
        &mut self,
        store: &mut St,
        goals: &Goals,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        // The reference requests every goal, `none` included.
        for (tangle, _) in goals.iter().take(REQUESTED_MAX) {
            self.requested.insert(*tangle);
        }
        self.resume(store, out)
    }

    /// A goal was set: initiate its tangle (and only it) on this stream, whichever side
    /// dialed. The reference watches goals only on streams it initiates, so a responder that
    /// starts following a feed would wait for the next connection.
    fn goal_changed<St: SyncStore>(
        &mut self,
        tangle: TangleId,
        store: &mut St,
        goals: &Goals,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        if self.requested.contains(&tangle) || (self.reference() && !self.started) {
            return Ok(());
        }
        match goals.get(&tangle) {
            Some(Goal::None) | None => Ok(()),
            Some(_) => {
                if self.requested.len() >= REQUESTED_MAX {
                    return Ok(());
                }
                self.requested.insert(tangle);
                if self.reference() {
                    return self.resume(store, out);
                }
                if self
                    .tangles
                    .get(&tangle)
                    .is_some_and(|state| state.in_progress)
                {
                    // The exchange under way will end and be repeated with the new goal.
                    self.tracked(tangle).dirty = true;
                    return Ok(());
                }
                self.initiate(tangle, store, out)
            }
        }
    }

    /// The reference's `resume()`: phase 0, hence phase 1, for every requested tangle.
    fn resume<St: SyncStore>(
        &mut self,
        store: &mut St,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let requested: Vec<TangleId> = self.requested.iter().copied().collect();
        for tangle in requested {
            self.initiate(tangle, store, out)?;
        }
        Ok(())
    }

    /// Starts an exchange of `tangle`: our have-range (phase 1).
    fn initiate<St: SyncStore>(
        &mut self,
        tangle: TangleId,
        store: &mut St,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let have = store.have_range(&tangle)?;
        let Some(state) = self.state(tangle, Need::Local) else {
            return Ok(());
        };
        state.set_local_have(MaybeRange::some(have));
        state.in_progress = true;
        state.set_owed_from(None);
        state.dirty = false;
        self.stats.initiated += 1;
        self.begin_exchange(tangle);
        self.send(
            out,
            SyncMsg {
                id: tangle,
                phase: 1,
                payload: Payload::Have(have),
            },
        );
        Ok(())
    }

    /// Local adds: re-initiate the touched tangles that need it, note the ones in exchange,
    /// then push in realtime (the reference's `resume()` and realtime push, targeted).
    fn local_added<St: SyncStore>(
        &mut self,
        added: &[(MsgId, Arc<Msg>)],
        from_this_remote: bool,
        store: &mut St,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        if self.reference() {
            return self.local_added_as_reference(added, store, out);
        }
        if from_this_remote {
            // What the remote sent us it has: nothing to offer it, nothing to push back. It
            // made progress, so a later refusal may fetch again.
            for (id, msg) in added {
                for (tangle, _) in touched_tangles(*id, msg) {
                    if let Some(state) = self.tangles.get_mut(&tangle) {
                        state.refetched = false;
                    }
                }
            }
            return Ok(());
        }
        if added.is_empty() {
            return Ok(());
        }
        let mut again: IndexSet<TangleId> = IndexSet::new();
        for (id, msg) in added {
            for (tangle, depth) in touched_tangles(*id, msg) {
                self.touch(
                    tangle,
                    Touch::Msg {
                        depth,
                        id: *id,
                        msg,
                    },
                    &mut again,
                );
            }
            if let Some(account) = changed_account(*id, msg) {
                for tangle in self.feeds_of(account, store)? {
                    self.touch(tangle, Touch::Account, &mut again);
                }
            }
        }
        for tangle in again {
            self.initiate(tangle, store, out)?;
        }
        for (id, msg) in added {
            self.push_realtime(*id, msg, out);
        }
        Ok(())
    }

    /// pzp-sync 1.0.4: phase 1 again for every requested tangle, then the realtime push (of
    /// msgs from this remote too, unless listed as theirs).
    fn local_added_as_reference<St: SyncStore>(
        &mut self,
        added: &[(MsgId, Arc<Msg>)],
        store: &mut St,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        if added.is_empty() {
            return Ok(());
        }
        self.resume(store, out)?;
        for (id, msg) in added {
            self.push_realtime(*id, msg, out);
        }
        Ok(())
    }

    /// Whether this session behaves exactly as pzp-sync 1.0.4 ([`Reinitiation::Reference`]).
    fn reference(&self) -> bool {
        self.config.reinitiation == Reinitiation::Reference
    }

    /// A local msg touched `tangle`: collects the tangle into `again` if it is owed from
    /// the msg's depth (any depth for an account change) or requested and idle. During an
    /// exchange, unless the tangle is pushed in realtime (then the push covers it), keeps the
    /// msg to push when the exchange ends, or marks the exchange for repeating.
    fn touch(&mut self, tangle: TangleId, touch: Touch<'_>, again: &mut IndexSet<TangleId>) {
        let requested = self.requested.contains(&tangle);
        let room = self.pending_pushes < PENDING_PUSHES_MAX;
        let Some(state) = self.tangles.get_mut(&tangle) else {
            if requested {
                again.insert(tangle);
            }
            return;
        };
        let realtime = state.realtime;
        if state.in_progress {
            if realtime || state.dirty {
                return;
            }
            let held = self.pending.get(&tangle).map_or(0, Vec::len);
            match touch {
                Touch::Msg { depth, id, msg } if room && held < PENDING_PUSHES_PER_TANGLE_MAX => {
                    self.pending.entry(tangle).or_default().push(PendingPush {
                        id,
                        msg: Arc::clone(msg),
                        depth,
                    });
                    self.pending_pushes += 1;
                }
                _ => {
                    state.dirty = true;
                    self.take_pending_pushes(&tangle);
                }
            }
            return;
        }
        let owed = state.owed_from().is_some_and(|from| match touch {
            Touch::Msg { depth, .. } => depth >= from,
            Touch::Account => true,
        });
        // A pushed msg signed by a key the remote does not know yet is refused there: an
        // exchange carries the account msgs its msgs name.
        let account_in_realtime = matches!(touch, Touch::Account) && realtime;
        if owed || requested || account_in_realtime {
            again.insert(tangle);
        }
    }

    /// The tangles this session owes, requested, exchanges or pushes in realtime whose root
    /// belongs to `account`: the account's feeds, which an account-tangle change touches.
    fn feeds_of<St: SyncStore>(
        &mut self,
        account: TangleId,
        store: &mut St,
    ) -> Result<Vec<TangleId>, St::Error> {
        let candidates: Vec<TangleId> = self
            .tangles
            .iter()
            .filter(|(_, state)| state.owed_from().is_some() || state.in_progress)
            .map(|(tangle, _)| *tangle)
            .chain(self.requested.iter().copied())
            .chain(self.realtime().copied())
            .filter(|tangle| *tangle != account)
            .collect();
        let mut feeds = Vec::new();
        for tangle in candidates {
            if store.root_account(&tangle)? == Some(account) && !feeds.contains(&tangle) {
                feeds.push(tangle);
            }
        }
        Ok(feeds)
    }

    /// The reference's realtime push: a new msg of a tangle in the realtime set, under the
    /// first such tangle.
    fn push_realtime(&mut self, id: MsgId, msg: &Arc<Msg>, out: &mut Vec<Output>) {
        let candidates = std::iter::once(id).chain(msg.metadata.tangles.keys().copied());
        for tangle in candidates {
            if self
                .tangles
                .get(&tangle)
                .is_some_and(|state| state.realtime)
            {
                self.push_in(tangle, id, msg, out);
                return;
            }
        }
    }

    /// Pushes `msg` to the remote as a phase 9 of `tangle`, unless the remote sent it or we
    /// listed it to the remote.
    fn push_in(&mut self, tangle: TangleId, id: MsgId, msg: &Arc<Msg>, out: &mut Vec<Output>) {
        let state_of = |key: &TangleId| self.tangles.get(key);
        // The reference also skips a msg that is itself a tangle with such an entry.
        if state_of(&id).is_some_and(|state| state.receivable_listed || state.sendable_listed)
            || state_of(&tangle)
                .is_some_and(|state| state.receivable.contains(&id) || state.sendable.contains(&id))
        {
            return;
        }
        self.stats.realtime_pushed += 1;
        self.send(
            out,
            SyncMsg {
                id: tangle,
                phase: 9,
                payload: Payload::Msgs(vec![Arc::clone(msg)]),
            },
        );
    }

    fn receive<St: SyncStore>(
        &mut self,
        decoded: Result<wire::Received, WireError>,
        store: &mut St,
        goals: &Goals,
        context: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let received = match decoded {
            Ok(received) => received,
            Err(error) => {
                self.refuse(Refusal::Malformed(error), out);
                return Ok(());
            }
        };
        self.stats.dropped_msgs += u64::try_from(received.dropped.len()).unwrap_or(u64::MAX);
        let SyncMsg { id, phase, payload } = received.msg;
        if self.state(id, Need::Remote).is_none() {
            self.refuse(
                Refusal::TooManyTangles {
                    max: TANGLES_TRACKED_MAX,
                },
                out,
            );
            return Ok(());
        }
        if let Some(count) = self.stats.received.get_mut(usize::from(phase)) {
            *count += 1;
        }
        match payload {
            Payload::Have(remote_have) => self.on_have(id, remote_have, store, goals, context, out),
            Payload::HaveWant { have, want } => {
                if have.is_empty() {
                    let state = self.tracked(id);
                    state.set_remote_have(MaybeRange::some(have));
                    state.set_remote_want(MaybeRange::some(want));
                    self.send_msgs_in_remote_want(id, want, store, context, out)
                } else {
                    self.on_have_want(id, have, want, store, goals, context, out)
                }
            }
            Payload::WantBloom { want, bloom } => {
                let remote_had_nothing = self
                    .tangles
                    .get(&id)
                    .and_then(|state| state.remote_have().get())
                    .is_some_and(|have| have.is_empty());
                if remote_had_nothing {
                    self.tracked(id).set_remote_want(MaybeRange::some(want));
                    self.send_msgs_in_remote_want(id, want, store, context, out)
                } else {
                    self.on_want_bloom(id, want, &bloom, store, out)
                }
            }
            Payload::IdsBloom { msg_ids, bloom } => {
                self.on_ids_bloom(id, phase, &msg_ids, &bloom, store, out)
            }
            Payload::MsgsBloom { msgs, bloom } => {
                self.on_msgs_bloom(id, msgs, &bloom, store, goals, context, out)
            }
            Payload::Msgs(msgs) => self.consume(id, msgs, store, goals, context, out),
        }
    }

    /// Phase 1 received: answer with our have-range and want-range (phase 2).
    fn on_have<St: SyncStore>(
        &mut self,
        id: TangleId,
        remote_have: DepthRange,
        store: &mut St,
        goals: &Goals,
        context: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let have = store.have_range(&id)?;
        self.begin_exchange(id);
        let want = self.want_range(id, Some(have), remote_have, store, goals)?;
        let want = self.claim_or_defer(id, have, want, context);
        let state = self.tracked(id);
        state.set_remote_have(MaybeRange::some(remote_have));
        state.set_remote_want(MaybeRange::NONE);
        state.set_local_have(MaybeRange::some(have));
        state.local_want = MaybeRange::some(want);
        state.in_progress = true;
        state.set_owed_from(None);
        self.send(
            out,
            SyncMsg {
                id,
                phase: 2,
                payload: Payload::HaveWant { have, want },
            },
        );
        Ok(())
    }

    /// Phase 2 received (the remote has something): our want-range and round-0 bloom.
    #[expect(clippy::too_many_arguments, reason = "one phase's inputs")]
    fn on_have_want<St: SyncStore>(
        &mut self,
        id: TangleId,
        remote_have: DepthRange,
        remote_want: DepthRange,
        store: &mut St,
        goals: &Goals,
        context: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let state = self.tracked(id);
        let local_have = state.local_have().get();
        // Normally under way since our phase 1; when both sides initiated at once, the
        // crossing exchange may have ended it, and this answer starts it again.
        state.in_progress = true;
        state.set_owed_from(None);
        let want = self.want_range(id, local_have, remote_have, store, goals)?;
        let have = local_have.unwrap_or(DepthRange::EMPTY);
        let want = self.claim_or_defer(id, have, want, context);
        let state = self.tracked(id);
        state.set_remote_have(MaybeRange::some(remote_have));
        state.set_remote_want(MaybeRange::some(remote_want));
        state.local_want = MaybeRange::some(want);
        let bloom = self.bloom_for(id, 0, want, &[], store)?;
        self.send(
            out,
            SyncMsg {
                id,
                phase: 3,
                payload: Payload::WantBloom { want, bloom },
            },
        );
        Ok(())
    }

    /// Phase 3 received: what the remote misses of ours (round 0) and our round-0 bloom.
    fn on_want_bloom<St: SyncStore>(
        &mut self,
        id: TangleId,
        remote_want: DepthRange,
        remote_bloom: &BloomFilter,
        store: &mut St,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let Some(local_want) = self.tracked(id).local_want.get() else {
            self.refuse(
                Refusal::NoLocalWant {
                    tangle: id,
                    phase: 3,
                },
                out,
            );
            return Ok(());
        };
        self.tracked(id)
            .set_remote_want(MaybeRange::some(remote_want));
        let missing = self.missing(id, 0, remote_want, remote_bloom, store)?;
        if !self.note_sendable(id, &missing, out) {
            return Ok(());
        }
        let bloom = self.bloom_for(id, 0, local_want, &[], store)?;
        self.send(
            out,
            SyncMsg {
                id,
                phase: 4,
                payload: Payload::IdsBloom {
                    msg_ids: missing,
                    bloom,
                },
            },
        );
        Ok(())
    }

    /// Phases 4–7 received: note what the remote will send, list what it misses of ours in
    /// the round it probed, and send our bloom of the next round (or, after phase 7, the msgs).
    fn on_ids_bloom<St: SyncStore>(
        &mut self,
        id: TangleId,
        phase: u8,
        msg_ids: &[MsgId],
        remote_bloom: &BloomFilter,
        store: &mut St,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        // Phase 4 carries the remote's round-0 bloom, 5 and 6 round 1, 7 round 2; we answer
        // with our bloom of round 1 (phases 5, 6), 2 (phase 7) or 2 again (phase 8).
        let (probe_round, own_round) = match phase {
            4 => (0, 1),
            5 => (1, 1),
            6 => (1, 2),
            _ => (2, 2),
        };
        let Some(local_want) = self.tracked(id).local_want.get() else {
            self.refuse(Refusal::NoLocalWant { tangle: id, phase }, out);
            return Ok(());
        };
        // pzp-sync 1.0.4 falls back to [0, 0] when the exchange was already consumed.
        let remote_want = self
            .tracked(id)
            .remote_want()
            .get()
            .unwrap_or(DepthRange { min: 0, max: 0 });
        if !self.note_receivable(id, msg_ids, out) {
            return Ok(());
        }
        let missing = self.missing(id, probe_round, remote_want, remote_bloom, store)?;
        if !self.note_sendable(id, &missing, out) {
            return Ok(());
        }
        let extras: Vec<MsgId> = self.tracked(id).receivable.iter().copied().collect();
        let skip_rounds = phase == 4 && self.skips_rounds(remote_bloom);
        let own_round = if skip_rounds { 2 } else { own_round };
        let bloom = self.bloom_for(id, own_round, local_want, &extras, store)?;
        if phase < 7 && !skip_rounds {
            self.send(
                out,
                SyncMsg {
                    id,
                    phase: phase + 1,
                    payload: Payload::IdsBloom {
                        msg_ids: missing,
                        bloom,
                    },
                },
            );
            return Ok(());
        }
        if skip_rounds {
            self.stats.rounds_skipped += 1;
        }
        let msgs = self.sendable_msgs(id, store)?;
        self.send_msgs(id, 8, msgs, Some(bloom), out);
        if !remote_want.is_empty() {
            self.join_realtime(id);
        }
        Ok(())
    }

    /// Whether the initiator may answer the responder's round-0 bloom (phase 4) with phase 8
    /// ([`Rounds::Adaptive`]): rounds 1 and 2 exist to catch the round-0 false positives, and
    /// a sparse filter has practically none.
    fn skips_rounds(&self, remote_round0: &BloomFilter) -> bool {
        if self.config.rounds != Rounds::Adaptive || self.reference() {
            return false;
        }
        false_positive_rate(remote_round0) <= SKIP_ROUNDS_FALSE_POSITIVE_MAX
    }

    /// Phase 8 received: the remote's msgs and last bloom; send ours (phase 9) and commit.
    #[expect(clippy::too_many_arguments, reason = "one phase's inputs")]
    fn on_msgs_bloom<St: SyncStore>(
        &mut self,
        id: TangleId,
        msgs: Vec<DigestedMsg>,
        remote_bloom: &BloomFilter,
        store: &mut St,
        goals: &Goals,
        context: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let remote_want = self
            .tracked(id)
            .remote_want()
            .get()
            .unwrap_or(DepthRange { min: 0, max: 0 });
        let missing = self.missing(id, 2, remote_want, remote_bloom, store)?;
        if !self.note_sendable(id, &missing, out) {
            return Ok(());
        }
        let own = self.sendable_msgs(id, store)?;
        self.send_msgs(id, 9, own, None, out);
        if !remote_want.is_empty() {
            self.join_realtime(id);
        }
        self.consume(id, msgs, store, goals, context, out)
    }

    /// The shortcut: everything we have in the remote's want-range, as phase 9.
    fn send_msgs_in_remote_want<St: SyncStore>(
        &mut self,
        id: TangleId,
        remote_want: DepthRange,
        store: &mut St,
        context: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let mut msgs = Vec::new();
        store.msgs_in_range(&id, remote_want, &mut msgs)?;
        let ids: Vec<MsgId> = msgs.iter().map(|(msg_id, _)| *msg_id).collect();
        if !self.note_sendable(id, &ids, out) {
            return Ok(());
        }
        self.send_msgs(id, 9, msgs, None, out);
        if !remote_want.is_empty() {
            self.join_realtime(id);
        }
        // The shortcut sender is done with this tangle: nothing more will come from the
        // remote for it, so it is no longer requested (the reference leaves it requested,
        // and only a later local add of any msg would ask again).
        if !self.reference() {
            self.unrequest(&id);
        }
        self.finish(id, store, context, out)
    }

    /// The reference's `consumeMissingMsgs`: the exchange is over; commit what we asked for.
    /// Also how a msg pushed in realtime arrives (outside any exchange).
    fn consume<St: SyncStore>(
        &mut self,
        id: TangleId,
        msgs: Vec<DigestedMsg>,
        store: &mut St,
        goals: &Goals,
        context: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        self.unrequest(&id);
        let local_want = self.tracked(id).local_want.get();
        if !msgs.is_empty()
            && let (Some(goal), Some(local_want)) = (goals.get(&id), local_want)
        {
            let valid = apply::filter_received(&id, msgs, local_want);
            let ids: Vec<MsgId> = valid.iter().map(DigestedMsg::id).collect();
            if !self.note_receivable(id, &ids, out) {
                return Ok(());
            }
            self.stats.committed_msgs += u64::try_from(valid.len()).unwrap_or(u64::MAX);
            out.push(Output::Commit {
                tangle: id,
                msgs: valid,
            });
            if let Goal::Newest(count) = goal {
                out.push(Output::PruneNewest { tangle: id, count });
            }
        }
        self.finish(id, store, context, out)?;
        let state = self.tracked(id);
        state.set_local_have(MaybeRange::NONE);
        state.set_remote_have(MaybeRange::NONE);
        state.set_remote_want(MaybeRange::NONE);
        Ok(())
    }

    /// This side's part of an exchange of `id` is over: release the fetch claim, decide
    /// whether the remote is owed (see [`owed_after`]), and deal with the msgs added during
    /// the exchange: push them if the tangle is now pushed in realtime, else repeat the
    /// exchange once. Nothing for a msg pushed in realtime (no exchange in progress).
    fn finish<St: SyncStore>(
        &mut self,
        id: TangleId,
        store: &mut St,
        context: &mut Context<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let reference = self.reference();
        let state = self.tracked(id);
        if !state.in_progress {
            return Ok(());
        }
        let realtime = state.realtime;
        state.in_progress = false;
        state.set_owed_from(if reference {
            None
        } else {
            owed_after(
                state.local_have().get(),
                state.remote_have().get(),
                state.remote_want().get(),
            )
        });
        let claimed = std::mem::take(&mut state.claimed);
        let owed_from = state.owed_from();
        let dirty = std::mem::take(&mut state.dirty);
        let pending = self.take_pending_pushes(&id);
        // Without realtime, a pending msg matters only if the remote is owed it; otherwise
        // its goal excludes the tangle.
        let owed_pending = !realtime
            && owed_from.is_some_and(|from| pending.iter().any(|push| push.depth >= from));
        let repeat = dirty || owed_pending;
        if claimed {
            context.claims.release(id, self.tag);
        }
        // The exchange's ID lists are not needed until the next one, which would find them
        // stale anyway if the tangle changed meanwhile; a session otherwise keeps up to
        // ITEM_CACHE_ENTRIES_MAX of them for as long as it is idle.
        self.cache.retain(|entry| entry.tangle != id);
        out.push(Output::Finished { tangle: id });
        if repeat {
            self.stats.repeated += 1;
            return self.initiate(id, store, out);
        }
        if realtime {
            for push in pending {
                self.push_in(id, push.id, &push.msg, out);
            }
        }
        Ok(())
    }

    /// Clears what one exchange of `id` accumulates, as a new one starts: the IDs listed
    /// both ways (the reference keeps them for the stream's life, so every later exchange
    /// sends again every msg any earlier one sent).
    fn begin_exchange(&mut self, id: TangleId) {
        if self.reference() {
            return;
        }
        let state = self.tracked(id);
        let forgotten = state.known_ids();
        state.receivable.clear();
        state.sendable.clear();
        self.known_ids -= forgotten;
    }

    /// Asks for `want` unless this peer holds nothing of `id` and another session is
    /// already fetching it ([`super::claims`]): then asks for nothing and waits for the claim
    /// to be released.
    fn claim_or_defer(
        &mut self,
        id: TangleId,
        have: DepthRange,
        want: DepthRange,
        context: &mut Context<'_>,
    ) -> DepthRange {
        if want.is_empty() || !have.is_empty() || self.reference() {
            return want;
        }
        let claimed = context.claims.claim(id, self.tag, context.now);
        let state = self.tracked(id);
        if claimed {
            // A deferred session can take over a claim that expired before the Tick that
            // releases it: it fetches now, so it no longer waits for a release.
            state.claimed = true;
            state.deferred = false;
            want
        } else {
            state.deferred = true;
            self.stats.deferred += 1;
            DepthRange::EMPTY
        }
    }

    /// Our commit of `tangle` refused msgs: outside an exchange (a realtime push), fetch the
    /// tangle again so that the remote sends what the refused msgs depend on.
    fn commit_refused<St: SyncStore>(
        &mut self,
        tangle: TangleId,
        store: &mut St,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let reference = self.reference();
        let Some(state) = self.tangles.get_mut(&tangle) else {
            return Ok(());
        };
        if state.in_progress || state.refetched || reference {
            return Ok(());
        }
        state.refetched = true;
        self.stats.refetched += 1;
        self.initiate(tangle, store, out)
    }

    /// Another session released its claim on `tangle`: if this one deferred, fetch now
    /// (after the exchange under way, if any).
    fn claim_released<St: SyncStore>(
        &mut self,
        tangle: TangleId,
        store: &mut St,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let Some(state) = self.tangles.get_mut(&tangle) else {
            return Ok(());
        };
        if !std::mem::take(&mut state.deferred) {
            return Ok(());
        }
        if state.in_progress {
            state.dirty = true;
            return Ok(());
        }
        self.initiate(tangle, store, out)
    }

    /// `id` is no longer requested. A session requests all its peer's goals at the start
    /// and then receives them one by one, so the set is given back its memory as it empties
    /// rather than keeping its largest size for the stream's life.
    fn unrequest(&mut self, id: &TangleId) {
        self.requested.shift_remove(id);
        if self.requested.len() <= self.requested.capacity() / REQUESTED_SHRINK_FACTOR {
            self.requested.shrink_to_fit();
        }
    }

    /// Pushes `id`'s new local msgs from now on: a flag on its state, so the tangles pushed
    /// in realtime are bounded by [`TANGLES_TRACKED_MAX`] and forgotten with their state.
    fn join_realtime(&mut self, id: TangleId) {
        self.tracked(id).realtime = true;
    }

    /// Forgets the msgs kept to push when `tangle`'s exchange ends, and returns them.
    fn take_pending_pushes(&mut self, tangle: &TangleId) -> Vec<PendingPush> {
        let pending = self.pending.remove(tangle).unwrap_or_default();
        self.pending_pushes -= pending.len();
        pending
    }

    /// Sends `msgs` for `tangle` in phase `phase` (8 with `bloom`, or 9), splitting them over
    /// further phase-9 objects beyond [`MSGS_PER_PAYLOAD_MAX`] msgs or
    /// [`MSG_BYTES_PER_PAYLOAD_MAX`] bytes (each object is one frame, which receivers bound).
    fn send_msgs(
        &mut self,
        id: TangleId,
        phase: u8,
        msgs: Vec<(MsgId, Arc<Msg>)>,
        bloom: Option<BloomFilter>,
        out: &mut Vec<Output>,
    ) {
        let mut chunks = wire::payload_chunks(msgs.into_iter().map(|(_, msg)| msg)).into_iter();
        let first = chunks.next().unwrap_or_default();
        let payload = match bloom {
            Some(bloom) => Payload::MsgsBloom { msgs: first, bloom },
            None => Payload::Msgs(first),
        };
        self.send(out, SyncMsg { id, phase, payload });
        for chunk in chunks {
            self.send(
                out,
                SyncMsg {
                    id,
                    phase: 9,
                    payload: Payload::Msgs(chunk),
                },
            );
        }
    }

    fn send(&mut self, out: &mut Vec<Output>, msg: SyncMsg) {
        debug_assert!(msg.is_consistent(), "invariant: phase matches payload");
        if let Some(count) = self.stats.sent.get_mut(usize::from(msg.phase)) {
            *count += 1;
        }
        out.push(Output::Send(msg));
    }

    fn refuse(&mut self, refusal: Refusal, out: &mut Vec<Output>) {
        self.stats.refused += 1;
        out.push(Output::Refused(refusal));
        if self.stats.refused > REFUSALS_MAX {
            self.close(CloseReason::TooManyRefusals { max: REFUSALS_MAX }, out);
        }
    }

    fn close(&mut self, reason: CloseReason, out: &mut Vec<Output>) {
        if !self.closed {
            self.closed = true;
            out.push(Output::Close(reason));
        }
    }

    /// The state of `id`, creating it if there is room (evicting idle tangles first, least
    /// recently used first; for our own requests, even exchanges in progress).
    fn state(&mut self, id: TangleId, need: Need) -> Option<&mut TangleState> {
        self.use_counter += 1;
        if !self.tangles.contains_key(&id) && self.tangles.len() >= TANGLES_TRACKED_MAX {
            let victim = self
                .tangles
                .iter()
                .filter(|(_, state)| !state.in_progress || need == Need::Local)
                // A claim or a deferral is a promise to the peer's other sessions.
                .filter(|(_, state)| !state.claimed && !state.deferred)
                // Forgetting that a tangle is owed can leave the remote without it until the
                // next connection: evict those last among idle tangles.
                .min_by_key(|(_, state)| {
                    (
                        state.in_progress,
                        state.owed_from().is_some(),
                        state.last_used,
                    )
                })
                .map(|(tangle, _)| *tangle);
            let victim = victim?;
            if let Some(evicted) = self.tangles.remove(&victim) {
                self.known_ids -= evicted.known_ids();
            }
            self.take_pending_pushes(&victim);
        }
        let counter = self.use_counter;
        let state = self.tangles.get_or_default(id);
        state.last_used = counter;
        Some(state)
    }

    /// The state of a tangle known to be tracked (`receive` made sure).
    fn tracked(&mut self, id: TangleId) -> &mut TangleState {
        self.tangles.get_or_default(id)
    }

    fn note_receivable(&mut self, id: TangleId, ids: &[MsgId], out: &mut Vec<Output>) -> bool {
        self.note_ids(id, ids, true, out)
    }

    fn note_sendable(&mut self, id: TangleId, ids: &[MsgId], out: &mut Vec<Output>) -> bool {
        self.note_ids(id, ids, false, out)
    }

    /// Adds IDs to a tangle's receivable or sendable set within [`KNOWN_IDS_MAX`], first
    /// forgetting the sets of idle tangles; closes the stream if that is not enough.
    fn note_ids(
        &mut self,
        id: TangleId,
        ids: &[MsgId],
        receivable: bool,
        out: &mut Vec<Output>,
    ) -> bool {
        if self.known_ids + ids.len() > KNOWN_IDS_MAX {
            self.forget_idle_ids(id);
        }
        if self.known_ids + ids.len() > KNOWN_IDS_MAX {
            self.close(CloseReason::KnownIdsBudget { max: KNOWN_IDS_MAX }, out);
            return false;
        }
        let state = self.tracked(id);
        let before = state.known_ids();
        if receivable {
            state.receivable_listed = true;
            state.receivable.extend(ids.iter().copied());
        } else {
            state.sendable_listed = true;
            state.sendable.extend(ids.iter().copied());
        }
        let added = state.known_ids() - before;
        self.known_ids += added;
        true
    }

    fn forget_idle_ids(&mut self, keep: TangleId) {
        let mut idle: Vec<(u64, TangleId)> = self
            .tangles
            .iter()
            .filter(|(tangle, state)| **tangle != keep && !state.in_progress)
            .map(|(tangle, state)| (state.last_used, *tangle))
            .collect();
        idle.sort_unstable();
        for (_, tangle) in idle {
            if self.known_ids <= KNOWN_IDS_MAX / 2 {
                break;
            }
            if let Some(state) = self.tangles.get_mut(&tangle) {
                self.known_ids -= state.known_ids();
                state.receivable.clear();
                state.sendable.clear();
            }
        }
    }

    fn want_range<St: SyncStore>(
        &mut self,
        id: TangleId,
        local_have: Option<DepthRange>,
        remote_have: DepthRange,
        store: &mut St,
        goals: &Goals,
    ) -> Result<DepthRange, St::Error> {
        let goal = goals.get(&id);
        let ghost_depth = match goal {
            Some(goal) if goal.is_set_or_dict() && !remote_have.is_empty() => {
                goals::min_ghost_depth(store.min_required_depth(&id)?, goals.ghost_span())
            }
            _ => None,
        };
        Ok(goals::want_range(
            local_have,
            remote_have,
            goal,
            ghost_depth,
        ))
    }

    /// Phase 8/9 msgs: the account msgs among the sendable IDs, then the tangle's slice.
    fn sendable_msgs<St: SyncStore>(
        &mut self,
        id: TangleId,
        store: &mut St,
    ) -> Result<Vec<(MsgId, Arc<Msg>)>, St::Error> {
        let ids: Vec<MsgId> = self.tracked(id).sendable.iter().copied().collect();
        let mut msgs = Vec::new();
        store.msgs_for_ids(&id, &ids, &mut msgs)?;
        Ok(msgs)
    }

    /// The cache entry for the IDs `range` covers in `tangle`, (re)computed if stale.
    fn items<St: SyncStore>(
        &mut self,
        tangle: TangleId,
        range: DepthRange,
        store: &mut St,
    ) -> Result<usize, St::Error> {
        let version = store.tangle_version(&tangle)?;
        if let Some(index) = self
            .cache
            .iter()
            .position(|entry| entry.tangle == tangle && entry.range == range)
        {
            let fresh = self
                .cache
                .get(index)
                .is_some_and(|entry| entry.version == version);
            if fresh {
                return Ok(index);
            }
            self.cache.remove(index);
        }
        let mut items = RangeItems::default();
        store.range_items(&tangle, range, &mut items)?;
        if self.cache.len() >= ITEM_CACHE_ENTRIES_MAX {
            self.cache.remove(0);
        }
        self.cache.push(CachedItems {
            tangle,
            range,
            version,
            items,
        });
        Ok(self.cache.len() - 1)
    }

    /// The cached items at `index` (from [`Session::items`]).
    fn cached(&self, index: usize) -> &RangeItems {
        &self
            .cache
            .get(index)
            .expect("invariant: index comes from items()")
            .items
    }

    /// The reference's `bloomFor(T, round, range, extras)`, sized by [`BloomSizing`].
    fn bloom_for<St: SyncStore>(
        &mut self,
        id: TangleId,
        round: u8,
        range: DepthRange,
        extras: &[MsgId],
        store: &mut St,
    ) -> Result<BloomFilter, St::Error> {
        let mut ghosts = Vec::new();
        store.ghost_ids(&id, &mut ghosts)?;
        let cached = if range.is_empty() {
            None
        } else {
            Some(self.items(id, range, store)?)
        };
        let base_items = cached.map_or(0, |index| self.cached(index).len()) + ghosts.len();
        let (size, hashes) =
            bloom_dimensions(self.config.bloom_sizing, range, base_items, extras.len());
        let mut filter = BloomFilter::with_dimensions(size, hashes);
        debug_assert_eq!(filter.seed(), SEED_DEFAULT);
        let mut inserted = 0u64;
        if let Some(index) = cached {
            let round = usize::from(round);
            for item in &self.cached(index).items {
                if let Some(hashes) = item.hashes.get(round) {
                    filter.add_hashed(*hashes);
                    inserted += 1;
                }
            }
        }
        for ghost in ghosts.iter().chain(extras) {
            filter.add_sync_item(round, ghost);
            inserted += 1;
        }
        self.stats.blooms_built += 1;
        self.stats.bloom_items += inserted;
        Ok(filter)
    }

    /// The reference's `getMsgsMissing(T, round, range, bloom)`: the IDs in range (and their
    /// account msgs) the remote's bloom does not have.
    fn missing<St: SyncStore>(
        &mut self,
        id: TangleId,
        round: u8,
        range: DepthRange,
        remote_bloom: &BloomFilter,
        store: &mut St,
    ) -> Result<Vec<MsgId>, St::Error> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let index = self.items(id, range, store)?;
        let items = self.cached(index);
        let mut missing = Vec::new();
        let default_seed = remote_bloom.seed() == SEED_DEFAULT;
        for item in &items.items {
            let present = match item.hashes.get(usize::from(round)) {
                Some(hashes) if default_seed => remote_bloom.has_hashed(*hashes),
                _ => remote_bloom.has_sync_item(round, &item.id),
            };
            if !present {
                missing.push(item.id);
            }
        }
        let probes = self.cached(index).len();
        self.stats.bloom_probes += u64::try_from(probes).unwrap_or(u64::MAX);
        Ok(missing)
    }

    /// The msgs kept to push after exchanges: only for tangles in exchange, none in an
    /// empty list, each tangle's and the session's bound, and the count.
    fn check_pending_pushes(&self, numbering: &TangleNumbering) {
        let mut held = 0;
        for (tangle, pending) in &self.pending {
            assert!(
                self.tangles
                    .get_in(numbering, tangle)
                    .is_some_and(|state| state.in_progress),
                "{tangle}: pending pushes outside an exchange"
            );
            assert!(!pending.is_empty(), "{tangle}: an empty pending push list");
            assert!(
                pending.len() <= PENDING_PUSHES_PER_TANGLE_MAX,
                "{tangle}: {} pending pushes",
                pending.len()
            );
            held += pending.len();
        }
        assert_eq!(held, self.pending_pushes, "pending push count drifted");
        assert!(
            self.pending_pushes <= PENDING_PUSHES_MAX,
            "pending pushes {} > {PENDING_PUSHES_MAX}",
            self.pending_pushes
        );
    }

    /// Panics if a bound or an internal consistency rule is broken, or if the session's own
    /// numbering does not count exactly its tracked tangles. Tests and simulations call it
    /// after every [`Session::handle`].
    pub fn check_invariants(&self) {
        let numbering = self.tangles.numbering();
        self.check_invariants_in(numbering);
        let mut uses = BTreeMap::new();
        self.count_number_uses(&mut uses);
        numbering.check_invariants(&uses);
    }

    /// [`Session::check_invariants`] but for the numbering: the tracked tangles' numbers are
    /// read in `numbering`, whose counts [`super::Sessions`] checks over all its sessions.
    pub(super) fn check_invariants_in(&self, numbering: &TangleNumbering) {
        assert!(
            self.tangles.len() <= TANGLES_TRACKED_MAX,
            "tracked tangles {} > {TANGLES_TRACKED_MAX}",
            self.tangles.len()
        );
        assert!(
            self.requested.len() <= REQUESTED_MAX,
            "requested {} > {REQUESTED_MAX}",
            self.requested.len()
        );
        self.check_pending_pushes(numbering);
        let counted: usize = self.tangles.values().map(TangleState::known_ids).sum();
        assert_eq!(counted, self.known_ids, "known id count drifted");
        assert!(
            self.known_ids <= KNOWN_IDS_MAX,
            "known ids {} > {KNOWN_IDS_MAX}",
            self.known_ids
        );
        assert!(
            self.cache.len() <= ITEM_CACHE_ENTRIES_MAX,
            "item cache {} > {ITEM_CACHE_ENTRIES_MAX}",
            self.cache.len()
        );
        assert!(
            self.stats.refused <= REFUSALS_MAX + 1,
            "refused {} objects without closing",
            self.stats.refused
        );
        self.tangles.check_invariants(numbering);
        for (tangle, state) in self.tangles.iter_in(numbering) {
            check_tangle_state(tangle, state);
        }
        for entry in &self.cache {
            for item in &entry.items.items {
                assert_eq!(
                    item.hashes,
                    [0, 1, 2].map(|round| super::bloom::ItemHashes::of_sync_item(
                        round,
                        &item.id,
                        SEED_DEFAULT
                    )),
                    "cached hashes of {} are wrong",
                    item.id
                );
            }
        }
    }
}

/// Panics if one tangle's state breaks a consistency rule of [`Session::check_invariants`].
fn check_tangle_state(tangle: &TangleId, state: &TangleState) {
    assert!(
        state.receivable.is_empty() || state.receivable_listed,
        "{tangle}: receivable ids without a receivable entry"
    );
    assert!(
        state.sendable.is_empty() || state.sendable_listed,
        "{tangle}: sendable ids without a sendable entry"
    );
    assert!(
        !state.dirty || state.in_progress,
        "{tangle}: dirty outside an exchange"
    );
    assert!(
        state.owed_from().is_none() || !state.in_progress,
        "{tangle}: owed while an exchange is under way"
    );
    assert!(
        !state.claimed || state.in_progress,
        "{tangle}: a claim held outside an exchange"
    );
    assert!(
        !(state.claimed && state.deferred),
        "{tangle}: claimed and deferred at once"
    );
    let ranges_set = [state.local_have(), state.remote_have(), state.remote_want()]
        .iter()
        .any(|range| range.get().is_some());
    assert_eq!(
        state.holds_exchange_ranges(),
        ranges_set,
        "{tangle}: the exchange's ranges are allocated iff one is set"
    );
}

/// The probability that `filter` answers "present" for an item never inserted:
/// `(bits set / size)^hashes`.
fn false_positive_rate(filter: &BloomFilter) -> f64 {
    let size = filter.size();
    if size == 0 {
        return 1.0;
    }
    #[expect(clippy::cast_precision_loss, reason = "sizes are below 2^24 bits")]
    let fill = filter.bits_set() as f64 / size as f64;
    let hashes = i32::try_from(filter.hash_count()).unwrap_or(i32::MAX);
    fill.powi(hashes)
}

/// Whether an exchange that ended leaves the remote owed, and from which depth on a local msg
/// should start a new exchange.
///
/// The remote computed its want-range against our have-range (`local_have`, what we
/// advertised). A non-empty `remote_want` needs nothing more: we push new msgs in realtime. An
/// empty one says something about the remote's goal only in some cases:
/// - our have was empty: any goal wants nothing from it, so later msgs may be wanted (from
///   the remote's deepest msg on, or from the root if it holds nothing);
/// - our have was the root alone and the remote holds nothing: `newest-N` wants nothing from a
///   root alone (the reference's arithmetic), but wants the msgs after it;
/// - our have was below the remote's deepest msg: `newest-N` wants nothing below the remote's
///   window, set and dict goals nothing below their ghost depth, all of which lie at or above
///   the remote's deepest msg; a msg deeper than that may be wanted.
///
/// Otherwise the remote wants nothing however deep our have grows (goal `none`, or no goal).
/// Each case ends after at most two more exchanges if the remote turns out not to want the
/// tangle, since the have we then advertise is deeper.
pub(crate) fn owed_after(
    local_have: Option<DepthRange>,
    remote_have: Option<DepthRange>,
    remote_want: Option<DepthRange>,
) -> Option<u64> {
    if remote_want.is_some_and(|want| !want.is_empty()) {
        return None;
    }
    let local = local_have.filter(|have| !have.is_empty());
    let remote = remote_have.filter(|have| !have.is_empty());
    match (local, remote) {
        (None, None) => Some(0),
        (None, Some(remote)) => Some(remote.max.saturating_add(1)),
        (Some(local), None) => (local.max == 0).then_some(1),
        (Some(local), Some(remote)) => {
            (local.max < remote.max).then_some(remote.max.saturating_add(1))
        }
    }
}

/// The tangles a locally added msg touches, with its depth in each: its own (as a root, at
/// depth 0) and those it names.
pub(crate) fn touched_tangles(id: MsgId, msg: &Msg) -> impl Iterator<Item = (TangleId, u64)> + '_ {
    std::iter::once((id, 0)).chain(
        msg.metadata
            .tangles
            .iter()
            .map(|(tangle, link)| (*tangle, link.depth)),
    )
}

/// The account whose tangle a msg changes, if it is an account msg (`account: "self"`): the
/// tangle it names, or itself as the root.
fn changed_account(id: MsgId, msg: &Msg) -> Option<TangleId> {
    if msg.metadata.account != Account::OwnTangle {
        return None;
    }
    Some(msg.metadata.tangles.keys().next().copied().unwrap_or(id))
}

/// `(_size, _nbHashes)` of a bloom over `range` holding `base_items` items (range msgs,
/// their account msgs, ghosts) plus `extras` (protocol.md §7.5): the reference's
/// `BloomFilter.create(2·(estimate + extras), 1e-5)`, or past its cap under
/// [`BloomSizing::Scaled`], [`SCALED_BITS_PER_ITEM`] bits per item and [`SCALED_HASHES`]
/// functions. Never beyond [`SIZE_BITS_MAX`].
#[must_use]
pub fn bloom_dimensions(
    sizing: BloomSizing,
    range: DepthRange,
    base_items: usize,
    extras: usize,
) -> (u64, u64) {
    let extras = u64::try_from(extras).unwrap_or(u64::MAX);
    let uncapped = range
        .max
        .saturating_sub(range.min)
        .saturating_add(1)
        .saturating_mul(2);
    if sizing == BloomSizing::Scaled && !range.is_empty() && uncapped > REFERENCE_ESTIMATE_MAX {
        let items = u64::try_from(base_items)
            .unwrap_or(u64::MAX)
            .saturating_add(extras)
            .max(1);
        let size = items
            .saturating_mul(SCALED_BITS_PER_ITEM)
            .min(SIZE_BITS_MAX);
        return (size, SCALED_HASHES);
    }
    let estimate = if range.is_empty() {
        2
    } else {
        goals::estimate_msg_count(range)
    };
    let capacity = estimate.saturating_add(extras).saturating_mul(2);
    // Never ask for more than the largest filter a peer accepts (about 24 bits an item).
    bloom::optimal_dimensions(capacity.min(SIZE_BITS_MAX / 24), ERROR_RATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(min: u64, max: u64) -> DepthRange {
        DepthRange { min, max }
    }

    #[test]
    fn the_requested_set_shrinks_as_it_empties() {
        let mut session = Session::new(Config::default());
        let tangles: Vec<TangleId> = (0..=u8::MAX).map(|n| MsgId::from_bytes(&[n; 32])).collect();
        session.requested.extend(tangles.iter().copied());
        let largest = session.requested.capacity();
        for tangle in tangles.iter().skip(8) {
            session.unrequest(tangle);
        }
        let left: Vec<TangleId> = session.requested().copied().collect();
        assert_eq!(left, tangles.get(..8).expect("256 tangles"), "order kept");
        assert!(
            session.requested.capacity() <= 4 * 8,
            "capacity {} of {largest} kept for 8 tangles",
            session.requested.capacity()
        );
        for tangle in &tangles {
            session.unrequest(tangle);
        }
        assert_eq!(session.requested.capacity(), 0);
    }

    /// A session driven alone, started over an empty database with goals on three tangles.
    fn started_alone() -> Session {
        let mut goals = Goals::new();
        for n in [7, 3, 5] {
            goals
                .set(MsgId::from_bytes(&[n; 32]), Goal::All)
                .expect("room for three goals");
        }
        let mut db = crate::db::Db::new(crate::store::MemStore::new());
        let mut index = super::super::SyncIndex::new();
        let mut store = super::super::IndexedDb::new(&mut db, &mut index);
        let mut session = Session::new(Config::default());
        let mut out = Vec::new();
        let Ok(()) = session.handle(Time(0), Input::Start, &mut store, &goals, &mut out);
        session
    }

    #[test]
    fn a_session_alone_numbers_its_tangles_itself() {
        let mut session = started_alone();
        session.check_invariants();
        let numbering = session.tangles.numbering();
        assert_eq!(numbering.len(), 3);
        let order: Vec<TangleId> = session.tangles.iter().map(|(id, _)| *id).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "visited in ID order");
        assert!(session.is_busy(), "an exchange per goal");
        session.forget_tangles();
        assert!(session.own_numbering_is_empty());
        session.check_invariants();
    }

    #[test]
    #[should_panic(expected = "uses counted")]
    fn the_checker_catches_a_session_alone_whose_count_is_off() {
        let mut session = started_alone();
        let mut extra = TangleNumbering::default();
        session.tangles.swap_numbering(&mut extra);
        extra.acquire(MsgId::from_bytes(&[5; 32]));
        session.tangles.swap_numbering(&mut extra);
        session.check_invariants();
    }

    #[test]
    fn blooms_are_sized_as_the_reference_below_its_cap() {
        // Sizes seen in vectors/sync-trace.json.
        for sizing in [BloomSizing::Reference, BloomSizing::Scaled] {
            assert_eq!(bloom_dimensions(sizing, range(0, 0), 1, 0), (240, 17));
            assert_eq!(bloom_dimensions(sizing, range(0, 5), 6, 0), (576, 17));
            assert_eq!(bloom_dimensions(sizing, range(0, 8), 9, 0), (863, 17));
            assert_eq!(bloom_dimensions(sizing, range(0, 8), 9, 3), (1007, 17));
            assert_eq!(bloom_dimensions(sizing, range(1, 9), 0, 0), (863, 17));
            assert_eq!(bloom_dimensions(sizing, DepthRange::EMPTY, 0, 0), (96, 17));
            assert_eq!(
                bloom_dimensions(sizing, range(0, 499), 500, 0),
                (47_926, 17)
            );
        }
    }

    #[test]
    fn past_the_cap_scaled_blooms_grow_with_their_items() {
        assert_eq!(
            bloom_dimensions(BloomSizing::Reference, range(0, 10_000), 10_002, 0),
            (47_926, 17)
        );
        assert_eq!(
            bloom_dimensions(BloomSizing::Scaled, range(0, 10_000), 10_002, 0),
            (10_002 * SCALED_BITS_PER_ITEM, SCALED_HASHES)
        );
        assert_eq!(
            bloom_dimensions(BloomSizing::Scaled, range(0, 500), 0, 0),
            (SCALED_BITS_PER_ITEM, SCALED_HASHES)
        );
        assert_eq!(
            bloom_dimensions(BloomSizing::Scaled, range(0, u64::MAX), usize::MAX, 9).0,
            SIZE_BITS_MAX
        );
    }
}
