//! Range-based set reconciliation for `sync.reconcile` (docs/sync-extension.md): the
//! message codec ([`codec`]), range fingerprints with prefix sums ([`fingerprint`]), the
//! range-splitting reconciler ([`Reconciler`]) over a sorted set ([`ItemSet`]), one
//! tangle's exchange around it ([`Exchange`]: its JSON [`frame`]s, the reconciled set read
//! from the store ([`ReconStore`]), msgs sent and committed as pzp-sync sends and commits
//! them), and the stream's session over every tangle with realtime pushes after
//! ([`ReconSession`]).
//!
//! Items are `(depth key, msg ID)` pairs ([`Item`]); a message is negentropy protocol v1 with
//! the timestamp replaced by the key and version byte [`VERSION`]. Every bound below is
//! enforced on input by [`codec::decode`] and kept on output by [`Reconciler`].

pub mod codec;
pub mod exchange;
pub mod fingerprint;
pub mod frame;
mod frame_text;
mod item;
mod item_set;
mod reconciler;
pub mod session;
mod store;
mod varint;

pub use codec::{DecodeError, Message, Payload, Range, decode, encode};
pub use exchange::{Alone, Exchange, FetchGate, NEED_IDS_MAX, Output, Refusal, Side};
pub use fingerprint::{FINGERPRINT_BYTES, Fingerprint, IdSum, PrefixSums};
pub use frame::{Frame, FrameError, MESSAGE_BASE64_MAX, ReconFrame};
pub(crate) use item::clone_keeping_capacity;
pub use item::{Bound, ID_BYTES, Id, Item, KEY_MAX};
pub use item_set::{ItemSet, SortedItems};
pub use reconciler::{ReconcileError, Reconciler, Reply, Role};
pub use session::{
    Incoming, ReconSession, decode as decode_incoming, decode_owned as decode_incoming_owned,
    decode_text as decode_incoming_text,
};
pub use store::ReconStore;

/// The first byte of every reconciliation message.
pub const VERSION: u8 = 0x70;

/// Most bytes of one reconciliation message, sent or accepted.
pub const RECONCILE_FRAME_BYTES_MAX: usize = 64 * 1024;

/// Most ranges in one reconciliation message, sent or accepted.
pub const RECONCILE_RANGES_MAX: usize = 512;

/// A range of fewer items than this is sent as an IdList rather than split.
pub const IDLIST_ITEMS_MAX: usize = 32;

/// Most IDs in one received IdList (a remote's split may be coarser than ours), and in the
/// IdList a responder answers an IdList with.
pub const IDLIST_ITEMS_ACCEPTED_MAX: usize = 1024;

/// Most messages one side sends for one tangle before the exchange gives up on it.
pub const RECONCILE_ROUNDS_MAX: usize = 16;

/// How many ranges of equal count a mismatching range is split into.
pub const BUCKETS: usize = 16;
