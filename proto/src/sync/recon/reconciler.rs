//! One side of a range reconciliation over a fixed set of items: [`Reconciler::initiate`]
//! writes the first message, [`Reconciler::reconcile`] answers each received one, until a
//! message has no ranges.
//!
//! Per received range, as negentropy v1 answers:
//! - Skip → Skip;
//! - a Fingerprint equal to ours → Skip; else our split of the range: fewer than
//!   [`IDLIST_ITEMS_MAX`] items as an IdList, otherwise [`BUCKETS`] Fingerprint ranges of
//!   equal count;
//! - an IdList → on the responder, its own IdList for the range (at most
//!   [`IDLIST_ITEMS_ACCEPTED_MAX`] IDs, the rest of the range as one Fingerprint); on the
//!   initiator, Skip, and the difference is known: [`Reply::have`] (ours, not theirs) and
//!   [`Reply::need`] (theirs, not ours).
//!
//! Only the initiator learns differences, so only it sends msgs and asks for msgs by ID.
//! A reply that would pass [`RECONCILE_FRAME_BYTES_MAX`] or [`RECONCILE_RANGES_MAX`]
//! stops early and covers the rest, up to infinity, with one Fingerprint.

use std::collections::BTreeSet;

use thiserror::Error;

use super::codec::{
    BOUND_BYTES_MAX, DecodeError, Encoder, FINGERPRINT_RANGE_BYTES_MAX, Message, Payload,
    VARINT_BYTES_MAX, decode,
};
use super::fingerprint::FINGERPRINT_BYTES;
use super::item::{Bound, ID_BYTES, Id, Item, KEY_MAX};
use super::item_set::ItemSet;
use super::{
    BUCKETS, IDLIST_ITEMS_ACCEPTED_MAX, IDLIST_ITEMS_MAX, RECONCILE_FRAME_BYTES_MAX,
    RECONCILE_RANGES_MAX,
};

/// Which side of the reconciliation this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Writes the first message and learns the differences.
    Initiator,
    /// Answers.
    Responder,
}

/// Why a reconciliation step failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReconcileError {
    /// The received bytes are not a valid message.
    #[error("malformed reconciliation message: {0}")]
    Malformed(#[from] DecodeError),
    /// A local item's key is above [`KEY_MAX`] (no tangle is that deep).
    #[error("item key {0} above KEY_MAX")]
    ItemKeyTooLarge(u64),
}

/// The answer to one received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The message to send back; [`Reply::is_done`] when it has no ranges.
    pub message: Vec<u8>,
    /// IDs we hold that the remote lacks (initiator only).
    pub have: Vec<Id>,
    /// IDs the remote holds that we lack (initiator only).
    pub need: Vec<Id>,
}

impl Reply {
    /// Whether the reply has no ranges: nothing is left to reconcile, and it need not be sent.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.message.len() <= 1
    }
}

/// One side's sorted items and their prefix sums.
#[derive(Debug, Clone)]
pub struct Reconciler {
    role: Role,
    items: ItemSet,
}

impl Reconciler {
    /// A reconciler over `items` (any order; duplicates count once).
    ///
    /// # Errors
    ///
    /// [`ReconcileError::ItemKeyTooLarge`] if a key is above [`KEY_MAX`].
    pub fn new(role: Role, items: Vec<Item>) -> Result<Self, ReconcileError> {
        if let Some(item) = items.iter().find(|item| item.key > KEY_MAX) {
            return Err(ReconcileError::ItemKeyTooLarge(item.key));
        }
        Ok(Self::over(role, ItemSet::new(items)))
    }

    /// A reconciler over a set already sorted and summed (as a store lists it:
    /// [`super::ReconStore::recon_set`], whose keys are at most [`KEY_MAX`]).
    #[must_use]
    pub fn over(role: Role, items: ItemSet) -> Self {
        Self { role, items }
    }

    /// The items, sorted.
    #[must_use]
    pub fn items(&self) -> &ItemSet {
        &self.items
    }

    /// The first message: our split of everything.
    #[must_use]
    pub fn initiate(&self) -> Vec<u8> {
        let mut out = Output::default();
        self.split(&mut out, Bound::INFINITY, 0, self.items.len());
        out.finish()
    }

    /// Answers a received message.
    ///
    /// # Errors
    ///
    /// [`ReconcileError::Malformed`] by the first rule the bytes break.
    pub fn reconcile(&self, bytes: &[u8]) -> Result<Reply, ReconcileError> {
        let message = decode(bytes)?;
        Ok(self.answer(&message))
    }

    /// Answers a decoded message.
    #[must_use]
    pub fn answer(&self, message: &Message) -> Reply {
        let mut out = Output::default();
        let mut have = Vec::new();
        let mut need = Vec::new();
        let mut lower_index = 0;
        for range in &message.ranges {
            let upper_index = self.items.first_at_or_above(&range.upper).max(lower_index);
            let (ranges, bytes) = self.room_needed(&range.payload);
            if !out.has_room(ranges, bytes) {
                let fingerprint = self.items.fingerprint(lower_index, self.items.len());
                out.push(&Bound::INFINITY, Payload::Fingerprint(fingerprint));
                break;
            }
            let (start, end) = (lower_index, upper_index);
            match &range.payload {
                Payload::Skip => out.skip(range.upper),
                Payload::Fingerprint(theirs) if *theirs == self.items.fingerprint(start, end) => {
                    out.skip(range.upper);
                }
                Payload::Fingerprint(_) => self.split(&mut out, range.upper, start, end),
                Payload::IdList(theirs) => match self.role {
                    Role::Responder => self.list(&mut out, range.upper, start, end),
                    Role::Initiator => {
                        self.difference(theirs, start, end, &mut have, &mut need);
                        out.skip(range.upper);
                    }
                },
            }
            lower_index = upper_index;
        }
        Reply {
            message: out.finish(),
            have,
            need,
        }
    }

    /// The most ranges and bytes our answer to `payload` can add.
    fn room_needed(&self, payload: &Payload) -> (usize, usize) {
        let id_list = |ids: usize| BOUND_BYTES_MAX + 1 + VARINT_BYTES_MAX + ids * ID_BYTES;
        match (payload, self.role) {
            (Payload::Skip, _) | (Payload::IdList(_), Role::Initiator) => (0, 0),
            (Payload::Fingerprint(_), _) => {
                let split = BUCKETS * FINGERPRINT_RANGE_BYTES_MAX;
                (BUCKETS, split.max(id_list(IDLIST_ITEMS_MAX)))
            }
            (Payload::IdList(_), Role::Responder) => (
                2,
                id_list(IDLIST_ITEMS_ACCEPTED_MAX) + FINGERPRINT_RANGE_BYTES_MAX,
            ),
        }
    }

    /// Our split of the items `start..end`, which lie below `upper`.
    fn split(&self, out: &mut Output, upper: Bound, start: usize, end: usize) {
        let count = end - start;
        if count < IDLIST_ITEMS_MAX {
            out.push(&upper, Payload::IdList(self.ids(start, end)));
            return;
        }
        let mut bucket_start = start;
        for bucket in 0..BUCKETS {
            let size = count / BUCKETS + usize::from(bucket < count % BUCKETS);
            let bucket_end = bucket_start + size;
            let bound = if bucket + 1 == BUCKETS {
                upper
            } else {
                self.bound_before(bucket_end)
            };
            let fingerprint = self.items.fingerprint(bucket_start, bucket_end);
            out.push(&bound, Payload::Fingerprint(fingerprint));
            bucket_start = bucket_end;
        }
    }

    /// The responder's IdList for the items `start..end`: all of them, or the first
    /// [`IDLIST_ITEMS_ACCEPTED_MAX`] and a Fingerprint over the rest.
    fn list(&self, out: &mut Output, upper: Bound, start: usize, end: usize) {
        if end - start <= IDLIST_ITEMS_ACCEPTED_MAX {
            out.push(&upper, Payload::IdList(self.ids(start, end)));
            return;
        }
        let cut = start + IDLIST_ITEMS_ACCEPTED_MAX;
        let bound = self.bound_before(cut);
        out.push(&bound, Payload::IdList(self.ids(start, cut)));
        out.push(
            &upper,
            Payload::Fingerprint(self.items.fingerprint(cut, end)),
        );
    }

    /// Appends what we hold in `start..end` and the remote does not, and the reverse.
    fn difference(
        &self,
        theirs: &[Id],
        start: usize,
        end: usize,
        have: &mut Vec<Id>,
        need: &mut Vec<Id>,
    ) {
        let mut theirs: BTreeSet<Id> = theirs.iter().copied().collect();
        for item in self.items.range(start, end) {
            if !theirs.remove(&item.id) {
                have.push(item.id);
            }
        }
        need.extend(theirs);
    }

    /// The IDs of the items `start..end` (callers derive both from our own items, so they
    /// are in bounds; clamped otherwise).
    fn ids(&self, start: usize, end: usize) -> Vec<Id> {
        self.items.range(start, end).map(|item| item.id).collect()
    }

    /// The shortest bound between item `index − 1` and item `index`. Callers cut between
    /// two items of a range, so both exist; infinity otherwise.
    fn bound_before(&self, index: usize) -> Bound {
        let previous = index.checked_sub(1).and_then(|at| self.items.get(at));
        match (previous, self.items.get(index)) {
            (Some(previous), Some(next)) => Bound::between(previous, next),
            _ => Bound::INFINITY,
        }
    }
}

/// A message being written: Skip ranges are held back and merged, so only a Skip that is
/// followed by another range is sent, and trailing ones are left implicit.
#[derive(Debug, Default)]
struct Output {
    encoder: Encoder,
    pending_skip: Option<Bound>,
}

impl Output {
    fn skip(&mut self, upper: Bound) {
        self.pending_skip = Some(upper);
    }

    fn push(&mut self, upper: &Bound, payload: Payload) {
        if let Some(skip) = self.pending_skip.take() {
            self.encoder.push(&skip, &Payload::Skip);
        }
        self.encoder.push(upper, &payload);
    }

    /// Whether `ranges` ranges of at most `bytes` bytes still fit, keeping room for the held
    /// Skip and for the Fingerprint that covers the rest if the next one does not.
    fn has_room(&self, ranges: usize, bytes: usize) -> bool {
        let reserve_bytes = BOUND_BYTES_MAX + 1 + FINGERPRINT_RANGE_BYTES_MAX;
        self.encoder.ranges() + ranges + 2 <= RECONCILE_RANGES_MAX
            && self.encoder.len() + bytes + reserve_bytes <= RECONCILE_FRAME_BYTES_MAX
    }

    fn finish(self) -> Vec<u8> {
        self.encoder.finish()
    }
}

const _: () = assert!(FINGERPRINT_BYTES == 16);
