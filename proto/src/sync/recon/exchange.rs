//! One tangle's `sync.reconcile` exchange on one side, as a pure machine
//! (docs/sync-extension.md, "The exchange, per tangle", with its corrections).
//!
//! ```text
//! dialer (A)                                   responder (B)
//! open {have: aHave}                    ──▶
//!                                       ◀──    ranges {have: bHave, want: bWant}
//! recon {want: aWant, msg: R0}          ──▶                      (B answers every R)
//!                                       ◀──    recon {msg: R1}
//! recon {msg: R2} …                     ──▶    …
//! done {msgs: A's for B, need: [ids]}   ──▶    (when A's reply to an R has no ranges)
//!                                       ◀──    done {msgs: B's for A}
//! ```
//!
//! Both sides reconcile their items over the hull of the two want-ranges (the set pzp-sync's
//! blooms hold, [`ReconStore::recon_items`]). Only the dialer learns the differences: what it
//! holds that B lacks, which it sends (inside bWant), and what B holds that it lacks, which it
//! names in `need` and B sends (inside aWant). An ID held under two keys (a ghost on one side,
//! a msg on the other) is held by both and crosses in neither direction. Msgs are sent as
//! pzp-sync's phases 8 and 9 send them (the account msgs among the IDs, then
//! `tangle.slice(ids, [])`), split over `msgs` frames beyond the payload bounds, and committed
//! with pzp-sync's filter and sort; a `newest-N` goal is pruned after. pzp-sync's shortcuts: a
//! side whose remote holds nothing sends everything in the remote's want-range at once.
//!
//! A refused frame leaves the exchange as it was ([`Output::Refused`]). Past
//! [`RECONCILE_ROUNDS_MAX`] received reconciliation messages the exchange gives up
//! ([`Output::Failed`]); a new `open` (or [`Input::Start`]) starts over.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use thiserror::Error;

use super::super::apply::filter_received;
use super::super::session::CloseReason;
use super::super::time::Time;
use super::super::wire::{self, MSG_IDS_PER_PAYLOAD_MAX, SyncMsg, WireError};
use super::frame::{self, Frame, FrameError, ReconFrame};
use super::item::{ID_BYTES, Id};
use super::item_set::ItemSet;
use super::reconciler::{ReconcileError, Reconciler, Role};
use super::store::ReconStore;
use super::{RECONCILE_FRAME_BYTES_MAX, RECONCILE_ROUNDS_MAX};
use crate::goals::{self, Goal, Goals};
use crate::ids::{MsgId, TangleId};
use crate::msg::{DigestedMsg, Msg};
use crate::tangle::DepthRange;

/// Most IDs a `done` frame's `need` lists (the bound of pzp-sync's ID lists, checked on
/// input). The dialer never needs more: it learns what it lacks only from the IdLists of the
/// at most [`RECONCILE_ROUNDS_MAX`] messages it accepts, each at most
/// [`RECONCILE_FRAME_BYTES_MAX`] bytes.
pub const NEED_IDS_MAX: usize = MSG_IDS_PER_PAYLOAD_MAX;

const _: () =
    assert!(RECONCILE_ROUNDS_MAX * (RECONCILE_FRAME_BYTES_MAX / ID_BYTES) <= NEED_IDS_MAX);

/// Asked by an exchange before it asks the remote for a tangle this peer holds nothing of,
/// as pzp-sync's session asks its peer's fetch claims (`crate::sync::claims`): a refusal
/// makes this side want nothing this time (an empty want-range, which the remote answers
/// with no msgs), and whoever refused is to have the tangle opened again later.
pub trait FetchGate {
    /// Whether this side may fetch `tangle` now.
    fn may_fetch(&mut self, tangle: TangleId) -> bool;
}

/// The gate of an exchange that fetches alone: it may always fetch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Alone;

impl FetchGate for Alone {
    fn may_fetch(&mut self, _tangle: TangleId) -> bool {
        true
    }
}

/// Which end of the stream this side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Opens the exchange and learns the differences.
    Dialer,
    /// Answers.
    Responder,
}

/// What the shell tells an exchange.
#[derive(Debug, Clone)]
pub enum Input {
    /// Dialer: start (or restart) the exchange.
    Start,
    /// A frame arrived from the remote (parsed JSON; the exchange checks it).
    Received(Value),
    /// A frame arrived, already checked with [`frame::decode`].
    Decoded(Result<frame::Received, FrameError>),
}

/// What an exchange, or the [`super::ReconSession`] running the stream's exchanges, asks
/// the shell to do, in order: one vocabulary for both (an exchange never pushes or closes).
/// It mirrors [`super::super::Output`], pzp-sync's, variant for variant, so that a shell
/// applies both the same way.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send this frame.
    Send(ReconFrame),
    /// Send this realtime push, pzp-sync's `{id, phase: 9, payload: [msg]}`, on the same
    /// stream.
    Push(SyncMsg),
    /// Add these msgs, as [`super::super::Output::Commit`] (through
    /// [`super::super::commit_with`]).
    Commit {
        /// The tangle.
        tangle: TangleId,
        /// Account msgs first, then by depth, with their digests.
        msgs: Vec<DigestedMsg>,
    },
    /// After the commit, keep only the newest `count` msgs of `tangle`.
    PruneNewest {
        /// The tangle.
        tangle: TangleId,
        /// The goal's count.
        count: u64,
    },
    /// This side's exchange is over.
    Finished {
        /// The tangle.
        tangle: TangleId,
        /// Whether this side sent msgs for a non-empty remote want-range: new local msgs of
        /// the tangle are then pushed to the remote (pzp-sync's realtime set).
        realtime: bool,
    },
    /// The exchange gave up (it can be started again).
    Failed {
        /// The tangle.
        tangle: TangleId,
        /// Why.
        reason: Refusal,
    },
    /// A received frame was refused and dropped.
    Refused(Refusal),
    /// Close the stream.
    Close(CloseReason),
}

/// Why a received frame was refused, or an exchange gave up.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The frame fails a check.
    #[error("malformed frame: {0}")]
    Frame(#[from] FrameError),
    /// The frame names another tangle.
    #[error("frame for {got}, exchange of {expected}")]
    WrongTangle {
        /// This exchange's tangle.
        expected: TangleId,
        /// The frame's.
        got: TangleId,
    },
    /// The frame does not fit where the exchange is.
    #[error("{phase} frame while {stage}")]
    Unexpected {
        /// The frame's phase.
        phase: &'static str,
        /// Where the exchange is.
        stage: &'static str,
    },
    /// The dialer's first `recon` lacks its want-range, or a later one carries one.
    #[error("want-range missing from the first recon frame or repeated in a later one")]
    WantMisplaced,
    /// The reconciliation message breaks a rule.
    #[error("{0}")]
    Reconcile(#[from] ReconcileError),
    /// More than [`RECONCILE_ROUNDS_MAX`] reconciliation messages received.
    #[error("more than {max} reconciliation messages")]
    TooManyRounds {
        /// The bound.
        max: usize,
    },
    /// A frame for a new tangle while [`super::super::TANGLES_TRACKED_MAX`] are tracked.
    #[error("too many tangles tracked (at most {max})")]
    TooManyTangles {
        /// The bound.
        max: usize,
    },
    /// A numbered (pzp-sync) frame that fails pzp-sync's checks.
    #[error("malformed push: {0}")]
    Push(WireError),
    /// A numbered frame of a phase other than 9: only realtime pushes ride the stream.
    #[error("phase {phase} on a sync.reconcile stream")]
    NotAPush {
        /// The frame's phase.
        phase: u8,
    },
    /// A frame the dialer did not open an exchange for.
    #[error("{phase} frame for a tangle this dialer never opened")]
    NotOpened {
        /// The frame's phase.
        phase: &'static str,
    },
}

/// Where an exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing under way.
    Idle,
    /// Dialer: `open` sent.
    AwaitRanges,
    /// Responder: `ranges` sent.
    AwaitRecon,
    /// Reconciliation messages are being exchanged.
    Reconciling,
    /// Dialer: its `done` sent.
    AwaitDone,
    /// The last exchange gave up.
    Failed,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::AwaitRanges => "awaiting ranges",
            Self::AwaitRecon => "awaiting recon",
            Self::Reconciling => "reconciling",
            Self::AwaitDone => "awaiting done",
            Self::Failed => "failed",
        }
    }
}

/// Counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames sent.
    pub frames_sent: u64,
    /// Reconciliation messages sent.
    pub messages_sent: u64,
    /// Bytes of reconciliation messages sent (before base64).
    pub message_bytes_sent: u64,
    /// Msgs handed to the shell to commit.
    pub committed_msgs: u64,
    /// Frames refused.
    pub refused: u64,
    /// Msgs dropped from frames because they do not decode.
    pub dropped_msgs: u64,
}

/// One side of one tangle's exchange. See the module docs.
#[derive(Debug, Clone)]
pub struct Exchange {
    tangle: TangleId,
    side: Side,
    stage: Stage,
    local_have: DepthRange,
    local_want: Option<DepthRange>,
    remote_have: DepthRange,
    remote_want: Option<DepthRange>,
    reconciler: Option<Reconciler>,
    rounds: usize,
    have: Vec<Id>,
    need: Vec<Id>,
    received_msgs: bool,
    stats: Stats,
}

impl Exchange {
    /// An idle exchange of `tangle`.
    #[must_use]
    pub fn new(tangle: TangleId, side: Side) -> Self {
        Self {
            tangle,
            side,
            stage: Stage::Idle,
            local_have: DepthRange::EMPTY,
            local_want: None,
            remote_have: DepthRange::EMPTY,
            remote_want: None,
            reconciler: None,
            rounds: 0,
            have: Vec::new(),
            need: Vec::new(),
            received_msgs: false,
            stats: Stats::default(),
        }
    }

    /// The tangle.
    #[must_use]
    pub fn tangle(&self) -> TangleId {
        self.tangle
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// This side's want-range of the last exchange, once known: realtime pushes are
    /// filtered against it as pzp-sync filters its phase 9.
    #[must_use]
    pub fn local_want(&self) -> Option<DepthRange> {
        self.local_want
    }

    /// The remote's want-range of the last exchange, once known.
    #[must_use]
    pub fn remote_want(&self) -> Option<DepthRange> {
        self.remote_want
    }

    /// The have-ranges of the last exchange, (ours, the remote's), once both are known (the
    /// dialer knows them with the remote's `ranges`, the responder with the `open`).
    #[must_use]
    pub fn haves(&self) -> Option<(DepthRange, DepthRange)> {
        (self.local_want.is_some() || self.remote_want.is_some())
            .then_some((self.local_have, self.remote_have))
    }

    /// Whether an exchange is under way.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        !matches!(self.stage, Stage::Idle | Stage::Failed)
    }

    /// Advances the exchange by one input, appending what the shell must do to `out`. `now`
    /// is the shell's clock; this machine keeps no timers (the caller's session does).
    ///
    /// Never panics on remote input; a bad frame becomes [`Output::Refused`].
    ///
    /// # Errors
    /// Local store failures; the shell should close the stream.
    pub fn handle<St: ReconStore>(
        &mut self,
        now: Time,
        input: Input,
        store: &mut St,
        goals: &Goals,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        self.handle_gated(now, input, store, goals, &mut Alone, out)
    }

    /// [`Exchange::handle`] for an exchange whose peer fetches through `gate`: asked before
    /// this side asks for a tangle it holds nothing of (see [`FetchGate`]).
    ///
    /// # Errors
    /// Local store failures, as [`Exchange::handle`].
    pub fn handle_gated<St: ReconStore>(
        &mut self,
        _now: Time,
        input: Input,
        store: &mut St,
        goals: &Goals,
        gate: &mut dyn FetchGate,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let received = match input {
            Input::Start if self.side == Side::Dialer => return self.open(store, out),
            Input::Start => return Ok(()),
            Input::Received(value) => frame::decode_owned(value),
            Input::Decoded(decoded) => decoded,
        };
        let received = match received {
            Ok(received) => received,
            Err(error) => {
                self.refuse(Refusal::Frame(error), out);
                return Ok(());
            }
        };
        let dropped = u64::try_from(received.dropped.len()).unwrap_or(u64::MAX);
        self.stats.dropped_msgs += dropped;
        let ReconFrame { id, frame } = received.frame;
        if id != self.tangle {
            let expected = self.tangle;
            self.refuse(Refusal::WrongTangle { expected, got: id }, out);
            return Ok(());
        }
        self.receive(frame, store, goals, gate, out)
    }

    fn receive<St: ReconStore>(
        &mut self,
        frame: Frame<DigestedMsg>,
        store: &mut St,
        goals: &Goals,
        gate: &mut dyn FetchGate,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let phase = frame.phase();
        match (self.side, self.stage, frame) {
            (Side::Responder, _, Frame::Open { have }) => {
                self.on_open(have, store, goals, gate, out)
            }
            (Side::Dialer, Stage::AwaitRanges, Frame::Ranges { have, want }) => {
                self.on_ranges(have, want, store, goals, gate, out)
            }
            (Side::Responder, Stage::AwaitRecon, Frame::Recon { want, message }) => {
                self.on_first_recon(want, &message, store, out)
            }
            (
                _,
                Stage::Reconciling,
                Frame::Recon {
                    want: None,
                    message,
                },
            ) => self.on_recon(&message, store, out),
            (_, Stage::Reconciling, Frame::Recon { want: Some(_), .. }) => {
                self.refuse(Refusal::WantMisplaced, out);
                Ok(())
            }
            (_, stage, Frame::Msgs { msgs }) if self.expects_msgs(stage) => {
                self.commit(msgs, goals, out);
                Ok(())
            }
            (_, stage, Frame::Done { msgs, need }) if self.expects_msgs(stage) => {
                self.on_done(msgs, &need, store, goals, out)
            }
            (_, stage, _) => {
                let stage = stage.name();
                self.refuse(Refusal::Unexpected { phase, stage }, out);
                Ok(())
            }
        }
    }

    /// Whether msgs from the remote may arrive now: the dialer's answer to our `done`, or the
    /// remote's shortcut (it saw our have empty, or its own).
    fn expects_msgs(&self, stage: Stage) -> bool {
        match self.side {
            Side::Dialer => matches!(stage, Stage::AwaitDone | Stage::Reconciling),
            Side::Responder => matches!(stage, Stage::AwaitRecon | Stage::Reconciling),
        }
    }

    /// Dialer, message 1.
    fn open<St: ReconStore>(
        &mut self,
        store: &mut St,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let have = store.have_range(&self.tangle)?;
        self.reset();
        self.local_have = have;
        self.stage = Stage::AwaitRanges;
        self.send(out, Frame::Open { have });
        Ok(())
    }

    /// Responder, message 2 (a new `open` always starts over).
    fn on_open<St: ReconStore>(
        &mut self,
        remote_have: DepthRange,
        store: &mut St,
        goals: &Goals,
        gate: &mut dyn FetchGate,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        self.reset();
        let have = store.have_range(&self.tangle)?;
        let want = want_range(self.tangle, Some(have), remote_have, store, goals)?;
        let want = self.gated(have, want, gate);
        self.local_have = have;
        self.remote_have = remote_have;
        self.local_want = Some(want);
        self.stage = Stage::AwaitRecon;
        self.send(out, Frame::Ranges { have, want });
        Ok(())
    }

    /// Dialer, message 3: the shortcut when B holds nothing, else the first reconciliation
    /// message over the hull.
    fn on_ranges<St: ReconStore>(
        &mut self,
        remote_have: DepthRange,
        remote_want: DepthRange,
        store: &mut St,
        goals: &Goals,
        gate: &mut dyn FetchGate,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        self.remote_have = remote_have;
        self.remote_want = Some(remote_want);
        if remote_have.is_empty() {
            return self.send_everything_wanted(remote_want, store, out);
        }
        let want = want_range(
            self.tangle,
            Some(self.local_have),
            remote_have,
            store,
            goals,
        )?;
        let want = self.gated(self.local_have, want, gate);
        self.local_want = Some(want);
        let reconciler = self.reconciler(Role::Initiator, store)?;
        let message = reconciler.initiate();
        self.reconciler = Some(reconciler);
        self.stage = Stage::Reconciling;
        self.send_message(out, Some(want), message);
        Ok(())
    }

    /// Responder, the dialer's first `recon`: the shortcut when A holds nothing, else our
    /// answer.
    fn on_first_recon<St: ReconStore>(
        &mut self,
        remote_want: Option<DepthRange>,
        message: &[u8],
        store: &mut St,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let Some(remote_want) = remote_want else {
            self.refuse(Refusal::WantMisplaced, out);
            return Ok(());
        };
        self.remote_want = Some(remote_want);
        if self.remote_have.is_empty() {
            return self.send_everything_wanted(remote_want, store, out);
        }
        let reconciler = self.reconciler(Role::Responder, store)?;
        self.reconciler = Some(reconciler);
        self.stage = Stage::Reconciling;
        self.on_recon(message, store, out)
    }

    /// A reconciliation message: answer it; on the dialer, learn the differences and, when
    /// nothing is left, send its `done`.
    fn on_recon<St: ReconStore>(
        &mut self,
        message: &[u8],
        store: &mut St,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        if self.rounds >= RECONCILE_ROUNDS_MAX {
            self.fail(
                Refusal::TooManyRounds {
                    max: RECONCILE_ROUNDS_MAX,
                },
                out,
            );
            return Ok(());
        }
        let Some(reconciler) = &self.reconciler else {
            let stage = self.stage.name();
            self.refuse(
                Refusal::Unexpected {
                    phase: "recon",
                    stage,
                },
                out,
            );
            return Ok(());
        };
        let reply = match reconciler.reconcile(message) {
            Ok(reply) => reply,
            Err(error) => {
                self.refuse(Refusal::Reconcile(error), out);
                return Ok(());
            }
        };
        self.rounds += 1;
        if self.side == Side::Responder {
            self.send_message(out, None, reply.message);
            return Ok(());
        }
        self.have.extend(reply.have);
        self.need.extend(reply.need);
        if reply.message.len() > 1 {
            self.send_message(out, None, reply.message);
            return Ok(());
        }
        self.conclude(store, out)
    }

    /// Dialer: the reconciliation is over. Sends what B lacks inside bWant and names what it
    /// lacks.
    fn conclude<St: ReconStore>(
        &mut self,
        store: &mut St,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let mut have: BTreeSet<Id> = std::mem::take(&mut self.have).into_iter().collect();
        let mut need: BTreeSet<Id> = std::mem::take(&mut self.need).into_iter().collect();
        // Held under two keys: a ghost here, a msg there (or the reverse).
        let both: Vec<Id> = have.intersection(&need).copied().collect();
        for id in &both {
            have.remove(id);
            need.remove(id);
        }
        let remote_want = self.remote_want.unwrap_or(DepthRange::EMPTY);
        let sendable = self.inside(remote_want, &have, store)?;
        let mut msgs = Vec::new();
        store.msgs_for_ids(&self.tangle, &sendable, &mut msgs)?;
        let need = need.iter().map(MsgId::from_bytes).collect();
        self.stage = Stage::AwaitDone;
        self.send_msgs(out, msgs, need);
        Ok(())
    }

    /// The remote's last frame: on the responder, answer the dialer's `need` with our msgs
    /// inside aWant; then commit the remote's msgs.
    fn on_done<St: ReconStore>(
        &mut self,
        msgs: Vec<DigestedMsg>,
        need: &[MsgId],
        store: &mut St,
        goals: &Goals,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let answers = self.side == Side::Responder && self.stage == Stage::Reconciling;
        let mut realtime = self.stage == Stage::AwaitDone;
        if answers {
            let remote_want = self.remote_want.unwrap_or(DepthRange::EMPTY);
            let need: BTreeSet<Id> = need.iter().map(|id| id.to_bytes()).collect();
            let sendable = self.inside(remote_want, &need, store)?;
            let mut own = Vec::new();
            store.msgs_for_ids(&self.tangle, &sendable, &mut own)?;
            self.send_msgs(out, own, Vec::new());
            realtime = true;
        }
        self.commit(msgs, goals, out);
        if self.received_msgs
            && let Some(Goal::Newest(count)) = goals.get(&self.tangle)
        {
            let tangle = self.tangle;
            out.push(Output::PruneNewest { tangle, count });
        }
        let realtime = realtime && self.remote_want.is_some_and(|want| !want.is_empty());
        self.finish(realtime, out);
        Ok(())
    }

    /// pzp-sync's shortcut: everything we have in the remote's want-range, at once.
    fn send_everything_wanted<St: ReconStore>(
        &mut self,
        remote_want: DepthRange,
        store: &mut St,
        out: &mut Vec<Output>,
    ) -> Result<(), St::Error> {
        let mut msgs = Vec::new();
        store.msgs_in_range(&self.tangle, remote_want, &mut msgs)?;
        self.send_msgs(out, msgs, Vec::new());
        self.finish(!remote_want.is_empty(), out);
        Ok(())
    }

    /// The IDs of `ids` that are items of ours in `range` and not ghosts: what pzp-sync
    /// would list as missing for a remote whose want-range is `range`.
    fn inside<St: ReconStore>(
        &self,
        range: DepthRange,
        ids: &BTreeSet<Id>,
        store: &mut St,
    ) -> Result<Vec<MsgId>, St::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Over the hull, the reconciler's own items (no copy of the tangle's); else listed.
        let listed;
        let items: &ItemSet = match &self.reconciler {
            Some(reconciler) if range == self.hull() => reconciler.items(),
            None if range == self.hull() => {
                listed = ItemSet::default();
                &listed
            }
            _ => {
                listed = store.recon_set(&self.tangle, range)?;
                &listed
            }
        };
        let mut ghosts = Vec::new();
        store.ghost_ids(&self.tangle, &mut ghosts)?;
        let ghosts: BTreeSet<Id> = ghosts.iter().map(|id| id.to_bytes()).collect();
        let asked = Asked::new(ids);
        let mut inside: Vec<MsgId> = items
            .iter()
            .filter(|item| asked.contains(&item.id) && !ghosts.contains(&item.id))
            .map(|item| MsgId::from_bytes(&item.id))
            .collect();
        inside.sort_unstable();
        inside.dedup();
        Ok(inside)
    }

    /// `want`, unless this side holds nothing of the tangle and `gate` refuses the fetch:
    /// then nothing (pzp-sync's claim rule, `claim_or_defer`, exactly).
    fn gated(&self, have: DepthRange, want: DepthRange, gate: &mut dyn FetchGate) -> DepthRange {
        if want.is_empty() || !have.is_empty() || gate.may_fetch(self.tangle) {
            return want;
        }
        DepthRange::EMPTY
    }

    /// The depth range both sides reconcile over: the smallest covering both want-ranges.
    fn hull(&self) -> DepthRange {
        let ranges = [self.local_want, self.remote_want];
        let mut wanted = ranges.iter().flatten().filter(|range| !range.is_empty());
        let Some(first) = wanted.next() else {
            return DepthRange::EMPTY;
        };
        wanted.fold(*first, |hull, range| DepthRange {
            min: hull.min.min(range.min),
            max: hull.max.max(range.max),
        })
    }

    fn reconciler<St: ReconStore>(
        &self,
        role: Role,
        store: &mut St,
    ) -> Result<Reconciler, St::Error> {
        // Sorted and summed by the store (the index keeps them so), keys at most KEY_MAX.
        let items = store.recon_set(&self.tangle, self.hull())?;
        Ok(Reconciler::over(role, items))
    }

    /// Commits msgs from the remote as pzp-sync's `consumeMissingMsgs` does: only with a
    /// goal and a want-range, filtered and sorted.
    fn commit(&mut self, msgs: Vec<DigestedMsg>, goals: &Goals, out: &mut Vec<Output>) {
        let Some(want) = self.local_want else { return };
        if msgs.is_empty() || goals.get(&self.tangle).is_none() {
            return;
        }
        let valid = filter_received(&self.tangle, msgs, want);
        self.received_msgs = true;
        self.stats.committed_msgs += u64::try_from(valid.len()).unwrap_or(u64::MAX);
        let tangle = self.tangle;
        out.push(Output::Commit {
            tangle,
            msgs: valid,
        });
    }

    /// Sends `msgs` in `msgs` frames of at most the payload bounds, the last one as `done`.
    fn send_msgs(&mut self, out: &mut Vec<Output>, msgs: Vec<(MsgId, Arc<Msg>)>, need: Vec<MsgId>) {
        let mut chunks = wire::payload_chunks(msgs.into_iter().map(|(_, msg)| msg));
        let last = chunks.pop().unwrap_or_default();
        for msgs in chunks {
            self.send(out, Frame::Msgs { msgs });
        }
        self.send(out, Frame::Done { msgs: last, need });
    }

    fn send_message(&mut self, out: &mut Vec<Output>, want: Option<DepthRange>, message: Vec<u8>) {
        self.stats.messages_sent += 1;
        self.stats.message_bytes_sent += u64::try_from(message.len()).unwrap_or(u64::MAX);
        self.send(out, Frame::Recon { want, message });
    }

    fn send(&mut self, out: &mut Vec<Output>, frame: Frame) {
        self.stats.frames_sent += 1;
        let id = self.tangle;
        out.push(Output::Send(ReconFrame { id, frame }));
    }

    fn finish(&mut self, realtime: bool, out: &mut Vec<Output>) {
        self.stage = Stage::Idle;
        self.reconciler = None;
        let tangle = self.tangle;
        out.push(Output::Finished { tangle, realtime });
    }

    fn fail(&mut self, reason: Refusal, out: &mut Vec<Output>) {
        self.stats.refused += 1;
        self.stage = Stage::Failed;
        self.reconciler = None;
        self.have.clear();
        self.need.clear();
        let tangle = self.tangle;
        out.push(Output::Failed { tangle, reason });
    }

    fn refuse(&mut self, refusal: Refusal, out: &mut Vec<Output>) {
        self.stats.refused += 1;
        out.push(Output::Refused(refusal));
    }

    fn reset(&mut self) {
        let (tangle, side, stats) = (self.tangle, self.side, self.stats);
        *self = Self::new(tangle, side);
        self.stats = stats;
    }
}

/// pzp-sync's want-range, as the sync session computes it.
fn want_range<St: ReconStore>(
    tangle: TangleId,
    local_have: Option<DepthRange>,
    remote_have: DepthRange,
    store: &mut St,
    goals: &Goals,
) -> Result<DepthRange, St::Error> {
    let goal = goals.get(&tangle);
    let ghost_depth = match goal {
        Some(goal) if goal.is_set_or_dict() && !remote_have.is_empty() => {
            goals::min_ghost_depth(store.min_required_depth(&tangle)?, goals.ghost_span())
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

/// An ID's first 8 bytes, as a number.
fn id_prefix(id: &Id) -> u64 {
    u64::from_be_bytes(id.first_chunk().copied().unwrap_or_default())
}

/// Bits of [`Asked`]'s map: one per value of an ID's first [`ASKED_MAP_BITS_LOG2`] bits.
const ASKED_MAP_BITS_LOG2: u32 = 12;

/// The IDs asked about, for telling whether each of the ten thousand items of a tangle is
/// one: most are not, and one bit of a map by the ID's first 12 bits turns most of those
/// away (with 100 IDs asked, all but about 2 %), before a binary search over the asked IDs'
/// first 8 bytes and a B-tree lookup of the whole ID.
struct Asked<'a> {
    ids: &'a BTreeSet<Id>,
    map: [u64; (1 << ASKED_MAP_BITS_LOG2) / 64],
    prefixes: Vec<u64>,
}

impl<'a> Asked<'a> {
    fn new(ids: &'a BTreeSet<Id>) -> Self {
        let mut map = [0; (1 << ASKED_MAP_BITS_LOG2) / 64];
        let mut prefixes: Vec<u64> = ids.iter().map(id_prefix).collect();
        prefixes.sort_unstable();
        for prefix in &prefixes {
            let (word, bit) = Self::place(*prefix);
            if let Some(word) = map.get_mut(word) {
                *word |= bit;
            }
        }
        Self { ids, map, prefixes }
    }

    /// The word of the map and the bit in it for an ID whose first 8 bytes are `prefix`.
    fn place(prefix: u64) -> (usize, u64) {
        let top = prefix >> (64 - ASKED_MAP_BITS_LOG2);
        (usize::try_from(top / 64).unwrap_or(0), 1 << (top % 64))
    }

    fn contains(&self, id: &Id) -> bool {
        let prefix = id_prefix(id);
        let (word, bit) = Self::place(prefix);
        self.map.get(word).is_some_and(|word| word & bit != 0)
            && self.prefixes.binary_search(&prefix).is_ok()
            && self.ids.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asked_ids_are_told_apart_from_ids_sharing_their_map_bit_or_prefix() {
        let id = |first: u8, tail: u8| {
            let mut id = [tail; ID_BYTES];
            id[0] = first;
            id
        };
        let ids: BTreeSet<Id> = [id(0x10, 1), id(0x80, 2), id(0xff, 3)].into();
        let asked = Asked::new(&ids);
        for asked_id in &ids {
            assert!(asked.contains(asked_id));
        }
        // Same first 12 bits, then the same first 8 bytes, as an asked ID: not asked.
        let mut same_bit = id(0x10, 1);
        same_bit[7] ^= 1;
        let mut same_prefix = id(0x80, 2);
        same_prefix[31] ^= 1;
        for other in [same_bit, same_prefix, id(0x11, 1), id(0, 0)] {
            assert!(!asked.contains(&other));
        }
    }
}
