//! Tangle sync, wire-compatible with pzp-sync 1.0.4 (protocol.md §7), as a pure state
//! machine.
//!
//! # The protocol
//!
//! Two peers connected by one `sync.connect` duplex stream reconcile any number of tangles
//! over it, each tangle on its own, interleaved. The dialer (A) starts one exchange per goal;
//! the responder (B) only answers. Per tangle `T`:
//!
//! | phase | from | carries |
//! |---|---|---|
//! | 1 | A | A's have-range |
//! | 2 | B | B's have-range and want-range |
//! | 3 | A | A's want-range, A's round-0 bloom |
//! | 4 | B | IDs A misses by round 0, B's round-0 bloom |
//! | 5 | A | IDs B misses by round 0, A's round-1 bloom |
//! | 6 | B | IDs A misses by round 1, B's round-1 bloom |
//! | 7 | A | IDs B misses by round 1, A's round-2 bloom |
//! | 8 | B | the msgs for A, B's round-2 bloom |
//! | 9 | A | the msgs for B |
//!
//! Blooms hold `"" + round + msgID` for the msgs in the sender's want-range, the account msgs
//! they depend on, the tangle's ghosts and the IDs the remote promised; each round hashes
//! differently, so a false positive in one round is caught in the next. Sent msgs are the
//! tangle's slice from the listed IDs on, with the trail to the root stripped of data.
//! Shortcuts: an empty side gets everything in its want-range as phase 9 right away. Once
//! a side has sent its msgs, new local msgs of that tangle are pushed to the remote as they
//! are added (phase 9, realtime), and every still-requested tangle is asked again (phase 1)
//! whenever local msgs are added.
//!
//! # The machine
//!
//! [`Session`] is one stream's state. A shell drives it:
//! 1. `Session::new(config)`; on the dialer, [`Input::Start`] once sync is started;
//! 2. every object from the remote as [`Input::Received`] (parsed JSON; the session checks it,
//!    see [`wire::decode`]);
//! 3. after changing goals, [`Input::GoalChanged`];
//! 4. after adding msgs to the database (publishing, or applying any session's
//!    [`Output::Commit`]), [`Input::LocalAdded`] to every session;
//! 5. [`Input::Closed`] when the stream ends.
//!
//! Each [`Session::handle`] call reads the database through [`SyncStore`] (implemented for
//! [`crate::db::Db`]) and the peer's [`crate::goals::Goals`], and appends [`Output`]s:
//! objects to send, msgs to commit, prunes to run, refusals to log, a request to close.
//!
//! # Hostile input
//!
//! Every received object passes the reference's checks and ours (bounded counts and ranges,
//! sane bloom dimensions, see [`wire`]). A bad object is dropped, as the reference drops it,
//! and reported as [`Output::Refused`]; after [`REFUSALS_MAX`] refusals the session asks to
//! close the stream. State per stream is bounded by [`TANGLES_TRACKED_MAX`] and
//! [`KNOWN_IDS_MAX`].
//!
//! # Where we differ from pzp-sync 1.0.4
//!
//! - Blooms past the reference's size cap are sized for their contents ([`BloomSizing`]).
//! - Phase 0 from the remote (the reference would answer it) and ranges with negative or
//!   unsafe integers are refused.
//! - Re-initiation runs once per [`Input::LocalAdded`] batch rather than once per record.
//! - Payloads of more than [`wire::MSGS_PER_PAYLOAD_MAX`] msgs are split over several
//!   phase-9 objects.
//! - Msg `data` objects are written with sorted keys.

mod apply;
pub mod bloom;
mod index;
mod session;
mod store;
pub mod wire;

pub use apply::{commit, prune_newest};
pub use index::{INDEXED_TANGLES_MAX, IndexedDb, SyncIndex};
pub use session::{
    BloomSizing, CloseReason, Config, ITEM_CACHE_ENTRIES_MAX, Input, KNOWN_IDS_MAX, Output,
    REFUSALS_MAX, REQUESTED_MAX, Refusal, SCALED_BITS_PER_ITEM, SCALED_HASHES, Session, Stats,
    TANGLES_TRACKED_MAX, Time, bloom_dimensions,
};
pub use store::{RangeItem, RangeItems, SyncStore};
pub use wire::{Payload, SyncMsg};
