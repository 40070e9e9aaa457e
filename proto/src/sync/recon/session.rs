//! [`ReconSession`]: one `sync.reconcile` duplex, for every tangle synced over it, as a pure
//! machine (docs/sync-extension.md, "The exchange, per tangle" and "Realtime").
//!
//! It is to [`Exchange`] what pzp-sync's [`super::super::Session`] is to its phases: the
//! dialer opens one exchange per goal on [`Input::Start`] (as pzp-sync's `initiate()`
//! requests every goal), the responder creates one for each tangle a frame names, and frames
//! are routed to their tangle's exchange. Once a side has finished an exchange whose remote
//! want-range is not empty, the tangle joins the stream's realtime set: new local msgs of it
//! are pushed as pzp-sync's `{id, phase: 9, payload: [msg]}` frames, and such pushes from the
//! remote are committed as pzp-sync commits its phase 9 (filtered against the local
//! want-range, through the shell's one commit path, `newest-N` pruned after).
//!
//! Re-initiation follows the fixed pzp-sync (`sync-liveness.md` §3). Only the dialer opens
//! exchanges, so a responder that would re-initiate asks the dialer to, with an `again`
//! frame (the dialer opens the tangle, or opens it again once its exchange ends):
//! - a goal set later opens its tangle (or opens it again once its exchange ends);
//! - a local msg of an idle tangle the remote is owed ([`super::super::session::owed_after`])
//!   opens it again;
//! - local msgs added during an exchange are pushed when it ends in realtime (just those
//!   msgs, inside the remote's want-range, as pzp-sync's session keeps them, with its bounds
//!   [`PENDING_PUSHES_PER_TANGLE_MAX`] and [`PENDING_PUSHES_MAX`]; a msg already pushed
//!   under another tangle is not kept), or else, or past a bound, the tangle is opened
//!   again;
//! - a commit that refused msgs (a push whose account msg or predecessor we lack) opens the
//!   tangle again, once until the remote brings something.
//!
//! Fetch claims, shared with the peer's other sessions of either method (the session is
//! driven with them by [`crate::sync::Sessions`]; [`crate::sync::claims`]): an exchange about
//! to ask for a tangle the peer holds nothing of claims it first, exactly where and when
//! pzp-sync's session does ([`super::FetchGate`]). While another session holds the claim
//! the exchange wants nothing (an empty want-range on the wire, answered with no msgs) and
//! the tangle is *deferred*: when the claim is released ([`Input::ClaimReleased`]) the
//! dialer opens it again, and the responder asks the dialer to with an `again` frame. The
//! claim is released when this side's exchange of the tangle ends or fails, when the stream
//! closes, or when it expires.
//!
//! Bounds: [`TANGLES_TRACKED_MAX`] exchanges per stream (a remote naming more is refused),
//! [`REFUSALS_MAX`] refused frames before the stream is closed, and each exchange's own
//! ([`super::RECONCILE_ROUNDS_MAX`], [`super::NEED_IDS_MAX`]). A refused frame never
//! touches another tangle's exchange.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::exchange::{self, Exchange, FetchGate, Output, Refusal, Side};
use super::frame::{self, Frame, ReconFrame};
use super::frame_text;
use super::store::ReconStore;
use crate::goals::{Goal, Goals};
use crate::ids::{MsgId, TangleId};
use crate::msg::{DigestedMsg, Msg};
use crate::sync::apply::filter_received;
use crate::sync::claims::{Claims, SessionTag};
use crate::sync::session::{CloseReason, owed_after, touched_tangles};
use crate::sync::time::Time;
use crate::sync::wire::{self, Payload, SyncMsg};
use crate::sync::{
    PENDING_PUSHES_MAX, PENDING_PUSHES_PER_TANGLE_MAX, REFUSALS_MAX, TANGLES_TRACKED_MAX,
};

/// A checked frame from the remote: one of an exchange's, or a realtime push.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// An exchange's frame (`phase` is a string).
    Frame(frame::Received),
    /// A realtime push (`phase` is 9).
    Push {
        /// The tangle.
        tangle: TangleId,
        /// The msgs that decoded, with their digests.
        msgs: Vec<DigestedMsg>,
    },
}

/// Checks a frame from the remote: pzp-sync's checks for a numbered phase (only 9, a push,
/// is accepted), the exchange's for the others. Shells call it before they lock the
/// database: it parses and hashes peer input.
///
/// # Errors
/// The [`Refusal`] naming the rule broken.
pub fn decode(value: &Value) -> Result<Incoming, Refusal> {
    if !value.get("phase").is_some_and(Value::is_number) {
        return frame::decode(value)
            .map(Incoming::Frame)
            .map_err(Refusal::Frame);
    }
    push(value)
}

/// [`decode`] for a frame the caller gives up: an exchange's msgs are decoded from the
/// frame's own values, not copies (the same verdicts).
///
/// # Errors
/// As [`decode`].
pub fn decode_owned(value: Value) -> Result<Incoming, Refusal> {
    if !value.get("phase").is_some_and(Value::is_number) {
        return frame::decode_owned(value)
            .map(Incoming::Frame)
            .map_err(Refusal::Frame);
    }
    push(&value)
}

/// [`decode_owned`] of a frame's JSON text. A frame of an exchange that decodes whole is
/// read straight from the text ([`super::frame_text`]); any other (a push, a refused frame,
/// a dropped msg) is parsed into a `Value` and decoded as [`decode_owned`] decodes it, so
/// the verdicts are [`decode_owned`]'s.
///
/// # Errors
/// The JSON error of a text that is not JSON.
pub fn decode_text(text: &str) -> Result<Result<Incoming, Refusal>, serde_json::Error> {
    if let Some(received) = frame_text::decode(text) {
        #[cfg(debug_assertions)]
        {
            let general = serde_json::from_str(text).map(decode_owned);
            let general = general.ok().and_then(Result::ok);
            assert!(
                matches!(&general, Some(Incoming::Frame(frame)) if *frame == received),
                "the fast decode of {text} differs from the general one: {general:?}"
            );
        }
        return Ok(Ok(Incoming::Frame(received)));
    }
    serde_json::from_str(text).map(decode_owned)
}

/// A realtime push (`phase` 9), checked; any other numbered phase is refused.
fn push(value: &Value) -> Result<Incoming, Refusal> {
    let received = wire::decode(value).map_err(Refusal::Push)?;
    match received.msg {
        SyncMsg {
            id,
            payload: Payload::Msgs(msgs),
            phase: 9,
        } => Ok(Incoming::Push { tangle: id, msgs }),
        SyncMsg { phase, .. } => Err(Refusal::NotAPush { phase }),
    }
}

/// What the shell tells a [`ReconSession`].
#[derive(Debug, Clone)]
pub enum Input {
    /// The dialer starts: one exchange per goal.
    Start,
    /// A frame arrived (parsed JSON; the session checks it).
    Received(Value),
    /// A frame arrived, already checked with [`decode`].
    Decoded(Result<Incoming, Refusal>),
    /// Msgs were added to the database, as stored, in order (as pzp-sync's
    /// [`super::super::Input::LocalAdded`]).
    LocalAdded {
        /// The msgs.
        msgs: Vec<(MsgId, Arc<Msg>)>,
        /// Whether this session's own [`Output::Commit`] added them.
        from_this_remote: bool,
    },
    /// Applying this session's [`Output::Commit`] of `tangle` refused msgs.
    CommitRefused {
        /// The tangle.
        tangle: TangleId,
    },
    /// The goal of `tangle` was set (the shell updated [`Goals`] first).
    GoalChanged {
        /// The tangle.
        tangle: TangleId,
    },
    /// The fetch claim on `tangle` was released by some session of this peer (see the
    /// module docs); a session deferred on it opens it again.
    ClaimReleased {
        /// The tangle.
        tangle: TangleId,
    },
    /// The stream ended; nothing more is sent.
    Closed,
}

/// Counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Exchanges this side opened (the dialer).
    pub opened: u64,
    /// `again` frames sent (the responder).
    pub asked: u64,
    /// Exchanges that finished on this side.
    pub finished: u64,
    /// Exchanges that gave up.
    pub failed: u64,
    /// Frames refused.
    pub refused: u64,
    /// Msgs handed to the shell to commit (exchanges and pushes).
    pub committed_msgs: u64,
    /// Msgs pushed in realtime.
    pub realtime_pushed: u64,
    /// Fetches this session deferred to another session's claim.
    pub deferred: u64,
}

/// The stream's state. See the module docs.
#[derive(Debug, Clone)]
pub struct ReconSession {
    side: Side,
    started: bool,
    closed: bool,
    /// One per tangle synced, at most [`TANGLES_TRACKED_MAX`].
    exchanges: BTreeMap<TangleId, Exchange>,
    /// Tangles whose new local msgs are pushed; a subset of `exchanges`' keys.
    realtime: BTreeSet<TangleId>,
    /// Local msgs added during their tangle's exchange (and not pushed under another
    /// tangle), to push when it ends in realtime. See [`Pending`].
    pending: BTreeMap<TangleId, Pending>,
    /// How many msgs `pending` holds over all tangles, at most [`PENDING_PUSHES_MAX`].
    pending_msgs: usize,
    /// Tangles to open again when their exchange ends (the dialer).
    reopen: BTreeSet<TangleId>,
    /// Tangles opened again after a refused commit, until the remote brings something.
    refetched: BTreeSet<TangleId>,
    /// Tangles whose exchange fetches under this session's claim; a subset of `exchanges`'
    /// keys, the claim released when the exchange ends.
    claimed: BTreeSet<TangleId>,
    /// Tangles whose exchange wanted nothing because another session held the claim, to
    /// open again when it is released; a subset of `exchanges`' keys.
    deferred: BTreeSet<TangleId>,
    /// This session's tag among its peer's sessions, for the claims.
    tag: SessionTag,
    stats: Stats,
}

impl ReconSession {
    /// The session of the stream's dialer, or of its responder.
    #[must_use]
    pub fn new(side: Side) -> Self {
        Self::with_tag(side, SessionTag::default())
    }

    /// A session known to its peer's other sessions as `tag` (for fetch claims).
    #[must_use]
    pub fn with_tag(side: Side, tag: SessionTag) -> Self {
        Self {
            side,
            started: false,
            closed: false,
            exchanges: BTreeMap::new(),
            realtime: BTreeSet::new(),
            pending: BTreeMap::new(),
            pending_msgs: 0,
            reopen: BTreeSet::new(),
            refetched: BTreeSet::new(),
            claimed: BTreeSet::new(),
            deferred: BTreeSet::new(),
            tag,
            stats: Stats::default(),
        }
    }

    /// This session's tag among its peer's sessions.
    #[must_use]
    pub fn tag(&self) -> SessionTag {
        self.tag
    }

    /// Whether this session's exchange of `tangle` fetches under its peer's claim.
    #[must_use]
    pub fn has_claimed(&self, tangle: &TangleId) -> bool {
        self.claimed.contains(tangle)
    }

    /// Whether this session deferred `tangle` to another session's claim.
    #[must_use]
    pub fn has_deferred(&self, tangle: &TangleId) -> bool {
        self.deferred.contains(tangle)
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

    /// Whether an exchange is under way for some tangle.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.exchanges.values().any(Exchange::is_busy)
    }

    /// The exchange of `tangle`, if one was created.
    #[must_use]
    pub fn exchange(&self, tangle: &TangleId) -> Option<&Exchange> {
        self.exchanges.get(tangle)
    }

    /// Tangles whose new local msgs are pushed to the remote as they are added.
    pub fn realtime(&self) -> impl Iterator<Item = &TangleId> + '_ {
        self.realtime.iter()
    }

    /// Tangles with an exchange under way.
    pub fn in_progress(&self) -> impl Iterator<Item = &TangleId> + '_ {
        self.exchanges
            .iter()
            .filter(|(_, exchange)| exchange.is_busy())
            .map(|(tangle, _)| tangle)
    }

    /// Advances a session that fetches alone (no other session of its peer claims tangles):
    /// [`ReconSession::handle_with`] with claims of its own.
    ///
    /// # Errors
    /// Local store failures, as [`ReconSession::handle_with`].
    pub fn handle<St: ReconStore>(
        &mut self,
        now: Time,
        input: Input,
        store: &mut St,
        goals: &Goals,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        self.handle_with(now, input, store, goals, &mut Claims::new(), out)
    }

    /// Advances the session by one input, appending what the shell must do to `out`.
    /// `claims` are shared by the sessions of one peer ([`crate::sync::Sessions`] drives
    /// them).
    ///
    /// Never panics on remote input and never grows beyond its bounds; a bad frame becomes
    /// [`Output::Refused`], and past [`REFUSALS_MAX`] of them, [`Output::Close`].
    ///
    /// # Errors
    /// Local store failures; the shell should close the stream.
    pub fn handle_with<St: ReconStore>(
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
        let mut turn = Turn {
            now,
            store,
            goals,
            claims,
            out,
        };
        let result = self.dispatch(input, &mut turn);
        if self.closed {
            turn.claims.release_all(self.tag);
            self.claimed.clear();
            self.deferred.clear();
        }
        result
    }

    fn dispatch<St: ReconStore>(
        &mut self,
        input: Input,
        turn: &mut Turn<'_, St>,
    ) -> Result<(), St::Error> {
        match input {
            Input::Start => self.start(turn),
            Input::Received(value) => self.receive(decode_owned(value), turn),
            Input::Decoded(decoded) => self.receive(decoded, turn),
            Input::LocalAdded {
                msgs,
                from_this_remote,
            } => self.local_added(&msgs, from_this_remote, turn),
            Input::CommitRefused { tangle } => self.commit_refused(tangle, turn),
            Input::GoalChanged { tangle } => self.goal_changed(tangle, turn),
            Input::ClaimReleased { tangle } => self.claim_released(tangle, turn),
            Input::Closed => {
                self.closed = true;
                Ok(())
            }
        }
    }

    fn start<St: ReconStore>(&mut self, turn: &mut Turn<'_, St>) -> Result<(), St::Error> {
        if self.started || self.side != Side::Dialer {
            return Ok(());
        }
        self.started = true;
        let tangles: Vec<TangleId> = turn.goals.iter().map(|(tangle, _)| *tangle).collect();
        for tangle in tangles {
            self.open(tangle, turn)?;
        }
        Ok(())
    }

    /// A dialer before [`Input::Start`] opens nothing: its first exchanges come with the start.
    fn idle_dialer(&self) -> bool {
        self.side == Side::Dialer && !self.started
    }

    fn goal_changed<St: ReconStore>(
        &mut self,
        tangle: TangleId,
        turn: &mut Turn<'_, St>,
    ) -> Result<(), St::Error> {
        if self.idle_dialer() || matches!(turn.goals.get(&tangle), Some(Goal::None) | None) {
            return Ok(());
        }
        self.open(tangle, turn)
    }

    fn commit_refused<St: ReconStore>(
        &mut self,
        tangle: TangleId,
        turn: &mut Turn<'_, St>,
    ) -> Result<(), St::Error> {
        if self.idle_dialer() || !self.refetched.insert(tangle) {
            return Ok(());
        }
        self.open(tangle, turn)
    }

    /// Some session released its claim on `tangle`: if this one deferred, open the tangle
    /// again (the dialer after the exchange under way, if any; the responder asks).
    fn claim_released<St: ReconStore>(
        &mut self,
        tangle: TangleId,
        turn: &mut Turn<'_, St>,
    ) -> Result<(), St::Error> {
        if !self.deferred.remove(&tangle) || self.idle_dialer() {
            return Ok(());
        }
        self.open(tangle, turn)
    }

    /// Dialer: opens `tangle`'s exchange, or opens it again once the running one ends.
    /// Responder: asks the dialer to.
    fn open<St: ReconStore>(
        &mut self,
        tangle: TangleId,
        turn: &mut Turn<'_, St>,
    ) -> Result<(), St::Error> {
        if self.side == Side::Responder {
            self.stats.asked += 1;
            let again = ReconFrame {
                id: tangle,
                frame: Frame::Again,
            };
            turn.out.push(Output::Send(again));
            return Ok(());
        }
        if self.exchanges.get(&tangle).is_some_and(Exchange::is_busy) {
            self.reopen.insert(tangle);
            return Ok(());
        }
        if !self.exchanges.contains_key(&tangle) && self.exchanges.len() >= TANGLES_TRACKED_MAX {
            return Ok(());
        }
        self.stats.opened += 1;
        self.run_exchange(tangle, exchange::Input::Start, turn)
    }

    fn receive<St: ReconStore>(
        &mut self,
        decoded: Result<Incoming, Refusal>,
        turn: &mut Turn<'_, St>,
    ) -> Result<(), St::Error> {
        match decoded {
            Err(refusal) => {
                self.refuse(refusal, turn.out);
                Ok(())
            }
            Ok(Incoming::Push { tangle, msgs }) => {
                self.consume_push(tangle, msgs, turn);
                Ok(())
            }
            Ok(Incoming::Frame(received)) if received.frame.frame == Frame::Again => {
                self.on_again(received.frame.id, turn)
            }
            Ok(Incoming::Frame(received)) => {
                let tangle = received.frame.id;
                if !self.exchanges.contains_key(&tangle) {
                    if let Some(refusal) = self.refuse_new(&received.frame.frame) {
                        self.refuse(refusal, turn.out);
                        return Ok(());
                    }
                    let exchange = Exchange::new(tangle, Side::Responder);
                    self.exchanges.insert(tangle, exchange);
                }
                let input = exchange::Input::Decoded(Ok(received));
                self.run_exchange(tangle, input, turn)
            }
        }
    }

    /// The responder asks for an exchange of `tangle`: the dialer opens it (within
    /// [`TANGLES_TRACKED_MAX`]); a responder refuses the frame.
    fn on_again<St: ReconStore>(
        &mut self,
        tangle: TangleId,
        turn: &mut Turn<'_, St>,
    ) -> Result<(), St::Error> {
        if self.side == Side::Responder {
            let stage = "responding";
            self.refuse(
                Refusal::Unexpected {
                    phase: "again",
                    stage,
                },
                turn.out,
            );
            return Ok(());
        }
        if !self.exchanges.contains_key(&tangle) && self.exchanges.len() >= TANGLES_TRACKED_MAX {
            let max = TANGLES_TRACKED_MAX;
            self.refuse(Refusal::TooManyTangles { max }, turn.out);
            return Ok(());
        }
        self.open(tangle, turn)
    }

    /// Why a frame naming a tangle without an exchange cannot create one, if it cannot.
    fn refuse_new(&self, frame: &frame::Frame<DigestedMsg>) -> Option<Refusal> {
        if self.side == Side::Dialer {
            let phase = frame.phase();
            return Some(Refusal::NotOpened { phase });
        }
        (self.exchanges.len() >= TANGLES_TRACKED_MAX).then_some(Refusal::TooManyTangles {
            max: TANGLES_TRACKED_MAX,
        })
    }

    /// A realtime push: committed as pzp-sync commits phase 9, once this side has a
    /// want-range for the tangle and a goal.
    fn consume_push<St: ReconStore>(
        &mut self,
        tangle: TangleId,
        msgs: Vec<DigestedMsg>,
        turn: &mut Turn<'_, St>,
    ) {
        let want = self.exchanges.get(&tangle).and_then(Exchange::local_want);
        let (Some(want), Some(goal)) = (want, turn.goals.get(&tangle)) else {
            return;
        };
        if msgs.is_empty() {
            return;
        }
        let valid = filter_received(&tangle, msgs, want);
        self.stats.committed_msgs += u64::try_from(valid.len()).unwrap_or(u64::MAX);
        turn.out.push(Output::Commit {
            tangle,
            msgs: valid,
        });
        if let Goal::Newest(count) = goal {
            turn.out.push(Output::PruneNewest { tangle, count });
        }
    }

    /// Runs one input through `tangle`'s exchange (creating a dialer's) and passes its
    /// outputs on; then deals with the exchanges that finished.
    fn run_exchange<St: ReconStore>(
        &mut self,
        tangle: TangleId,
        input: exchange::Input,
        turn: &mut Turn<'_, St>,
    ) -> Result<(), St::Error> {
        let side = self.side;
        let exchange = self
            .exchanges
            .entry(tangle)
            .or_insert_with(|| Exchange::new(tangle, side));
        let mut outputs = Vec::new();
        let mut gate = ClaimGate {
            now: turn.now,
            claims: turn.claims,
            tag: self.tag,
            claimed: &mut self.claimed,
            deferred: &mut self.deferred,
            deferrals: &mut self.stats.deferred,
        };
        exchange.handle_gated(
            turn.now,
            input,
            turn.store,
            turn.goals,
            &mut gate,
            &mut outputs,
        )?;
        let mut finished = Vec::new();
        for output in outputs {
            match output {
                Output::Refused(refusal) => self.refuse(refusal, turn.out),
                Output::Finished { tangle, realtime } => {
                    self.release(tangle, turn.claims);
                    finished.push((tangle, realtime));
                    turn.out.push(Output::Finished { tangle, realtime });
                }
                Output::Failed { tangle, .. } => {
                    self.release(tangle, turn.claims);
                    self.stats.failed += 1;
                    turn.out.push(output);
                }
                Output::Commit { ref msgs, .. } => {
                    self.stats.committed_msgs += u64::try_from(msgs.len()).unwrap_or(u64::MAX);
                    turn.out.push(output);
                }
                other => turn.out.push(other),
            }
        }
        for (tangle, realtime) in finished {
            self.after_exchange(tangle, realtime, turn)?;
        }
        Ok(())
    }

    /// This side's exchange of `tangle` ended: its claim, if it held one, is released.
    fn release(&mut self, tangle: TangleId, claims: &mut Claims) {
        if self.claimed.remove(&tangle) {
            claims.release(tangle, self.tag);
        }
    }

    /// An exchange ended: join realtime, then catch up with what was added meanwhile (push
    /// it, or open again), or open again for a goal set meanwhile.
    fn after_exchange<St: ReconStore>(
        &mut self,
        tangle: TangleId,
        realtime: bool,
        turn: &mut Turn<'_, St>,
    ) -> Result<(), St::Error> {
        self.stats.finished += 1;
        if realtime {
            self.realtime.insert(tangle);
        }
        let pending = self.take_pending(&tangle);
        let reopen = self.reopen.remove(&tangle);
        if reopen
            || pending
                .as_ref()
                .is_some_and(|pending| !realtime || pending.overflowed)
        {
            return self.open(tangle, turn);
        }
        let Some(pending) = pending else {
            return Ok(());
        };
        let remote_want = self.exchanges.get(&tangle).and_then(Exchange::remote_want);
        let Some(remote_want) = remote_want else {
            return Ok(());
        };
        // Just the msgs added meanwhile, in the order they were added: what the remote
        // sent during the exchange, or already had, is not sent back.
        for (depth, msg) in pending.msgs {
            if depth >= remote_want.min {
                self.push(tangle, msg, turn.out);
            }
        }
        Ok(())
    }

    /// Forgets the msgs kept for `tangle`'s exchange's end, and returns them.
    fn take_pending(&mut self, tangle: &TangleId) -> Option<Pending> {
        let pending = self.pending.remove(tangle)?;
        self.pending_msgs -= pending.msgs.len();
        Some(pending)
    }

    /// Local adds: push in realtime, note the tangles in exchange, open again the idle ones
    /// the remote is owed.
    fn local_added<St: ReconStore>(
        &mut self,
        added: &[(MsgId, Arc<Msg>)],
        from_this_remote: bool,
        turn: &mut Turn<'_, St>,
    ) -> Result<(), St::Error> {
        if from_this_remote {
            for (id, msg) in added {
                for (tangle, _) in touched_tangles(*id, msg) {
                    self.refetched.remove(&tangle);
                }
            }
            return Ok(());
        }
        let mut again = BTreeSet::new();
        for (id, msg) in added {
            let pushed = self.push_realtime(*id, msg, turn.out);
            for (tangle, depth) in touched_tangles(*id, msg) {
                let keep = (!pushed).then_some((depth, msg));
                self.touch(tangle, depth, keep, turn.goals, &mut again);
            }
        }
        for tangle in again {
            self.open(tangle, turn)?;
        }
        Ok(())
    }

    /// A local msg at `depth` touched `tangle`: if its exchange is under way, keep the msg
    /// to push when it ends (`keep`: unless it was pushed under another tangle already; past
    /// the bounds, the tangle is opened again instead), or collect the tangle if the dialer
    /// should open it again.
    fn touch(
        &mut self,
        tangle: TangleId,
        depth: u64,
        keep: Option<(u64, &Arc<Msg>)>,
        goals: &Goals,
        again: &mut BTreeSet<TangleId>,
    ) {
        if self.realtime.contains(&tangle) {
            return;
        }
        let Some(exchange) = self.exchanges.get(&tangle) else {
            let wanted = !matches!(goals.get(&tangle), Some(Goal::None) | None);
            if self.started && wanted {
                again.insert(tangle);
            }
            return;
        };
        if exchange.is_busy() {
            let room = self.pending_msgs < PENDING_PUSHES_MAX;
            let pending = self.pending.entry(tangle).or_default();
            match keep {
                Some((depth, msg))
                    if room
                        && !pending.overflowed
                        && pending.msgs.len() < PENDING_PUSHES_PER_TANGLE_MAX =>
                {
                    pending.msgs.push((depth, Arc::clone(msg)));
                    self.pending_msgs += 1;
                }
                Some(_) => {
                    pending.overflowed = true;
                    self.pending_msgs -= pending.msgs.len();
                    pending.msgs.clear();
                }
                None => {}
            }
            return;
        }
        let owed = exchange.haves().and_then(|(local, remote)| {
            owed_after(Some(local), Some(remote), exchange.remote_want())
        });
        if owed.is_some_and(|from| depth >= from) {
            again.insert(tangle);
        }
    }

    /// pzp-sync's realtime push: a new msg of a tangle in the realtime set, under the first
    /// such tangle (the msg's own ID first, as a root). Whether it was pushed.
    fn push_realtime(&mut self, id: MsgId, msg: &Arc<Msg>, out: &mut Vec<Output>) -> bool {
        let mut candidates = std::iter::once(id).chain(msg.metadata.tangles.keys().copied());
        let Some(tangle) = candidates.find(|tangle| self.realtime.contains(tangle)) else {
            return false;
        };
        self.push(tangle, Arc::clone(msg), out);
        true
    }

    fn push(&mut self, tangle: TangleId, msg: Arc<Msg>, out: &mut Vec<Output>) {
        self.stats.realtime_pushed += 1;
        out.push(Output::Push(SyncMsg {
            id: tangle,
            phase: 9,
            payload: Payload::Msgs(vec![msg]),
        }));
    }

    fn refuse(&mut self, refusal: Refusal, out: &mut Vec<Output>) {
        self.stats.refused += 1;
        out.push(Output::Refused(refusal));
        if self.stats.refused > REFUSALS_MAX && !self.closed {
            self.closed = true;
            out.push(Output::Close(CloseReason::TooManyRefusals {
                max: REFUSALS_MAX,
            }));
        }
    }

    /// Panics if a bound or a cross-reference is broken.
    pub fn check_invariants(&self) {
        assert!(self.exchanges.len() <= TANGLES_TRACKED_MAX);
        let tracked = |tangle: &TangleId| self.exchanges.contains_key(tangle);
        assert!(self.realtime.iter().all(tracked), "realtime ⊆ exchanges");
        assert!(self.pending.keys().all(tracked), "pending ⊆ exchanges");
        let held: usize = self
            .pending
            .values()
            .map(|pending| pending.msgs.len())
            .sum();
        assert_eq!(held, self.pending_msgs, "pending msgs counted");
        assert!(
            self.pending_msgs <= PENDING_PUSHES_MAX,
            "pending msgs bounded"
        );
        assert!(
            self.pending.values().all(|pending| {
                pending.msgs.len() <= PENDING_PUSHES_PER_TANGLE_MAX
                    && (!pending.overflowed || pending.msgs.is_empty())
            }),
            "pending per tangle bounded, none kept past an overflow"
        );
        assert!(self.reopen.iter().all(tracked), "reopen ⊆ exchanges");
        assert!(self.claimed.iter().all(tracked), "claimed ⊆ exchanges");
        assert!(self.deferred.iter().all(tracked), "deferred ⊆ exchanges");
        assert!(
            self.claimed.is_disjoint(&self.deferred),
            "claimed and deferred at once"
        );
        assert!(
            self.claimed
                .iter()
                .all(|tangle| self.exchanges.get(tangle).is_some_and(Exchange::is_busy)),
            "a claim held outside an exchange"
        );
        assert!(
            self.side == Side::Dialer || self.reopen.is_empty(),
            "only the dialer opens"
        );
        assert!(
            self.side == Side::Dialer || self.stats.opened == 0,
            "a responder asks"
        );
    }
}

/// A tangle's local msgs added during its exchange, as pzp-sync's session keeps them: at
/// most [`PENDING_PUSHES_PER_TANGLE_MAX`], with their depths; `overflowed` once more came
/// (or the session's [`PENDING_PUSHES_MAX`] was reached), and then none is kept: the tangle
/// is opened again instead.
#[derive(Debug, Clone, Default)]
struct Pending {
    msgs: Vec<(u64, Arc<Msg>)>,
    overflowed: bool,
}

/// What one [`ReconSession::handle_with`] call works with.
struct Turn<'a, St> {
    now: Time,
    store: &'a mut St,
    goals: &'a Goals,
    claims: &'a mut Claims,
    out: &'a mut Vec<Output>,
}

/// An exchange's [`FetchGate`] in a session: the peer's claims, with what this session
/// claimed and deferred noted for its release and its reopening.
struct ClaimGate<'a> {
    now: Time,
    claims: &'a mut Claims,
    tag: SessionTag,
    claimed: &'a mut BTreeSet<TangleId>,
    deferred: &'a mut BTreeSet<TangleId>,
    deferrals: &'a mut u64,
}

impl FetchGate for ClaimGate<'_> {
    fn may_fetch(&mut self, tangle: TangleId) -> bool {
        if self.claims.claim(tangle, self.tag, self.now) {
            self.claimed.insert(tangle);
            self.deferred.remove(&tangle);
            true
        } else {
            self.deferred.insert(tangle);
            *self.deferrals += 1;
            false
        }
    }
}
