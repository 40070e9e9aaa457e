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
//!    [`Output::Commit`] with [`commit`]), [`Input::LocalAdded`] to every session, one batch
//!    per commit;
//! 5. [`Input::Closed`] when the stream ends.
//!
//! Each [`Session::handle`] call reads the database through [`SyncStore`] and the peer's
//! [`crate::goals::Goals`], and appends [`Output`]s: objects to send, msgs to commit
//! ([`commit`]), prunes to run ([`prune_newest`]), refusals to log, a request to close.
//! `proto::testing` (feature `testing`) is a complete shell for two in-memory peers.
//!
//! # Reading the database without rescanning it
//!
//! [`SyncStore`] is implemented for [`crate::db::Db`] (the reference's algorithm, straight)
//! and for [`IndexedDb`], a `Db` read through a [`SyncIndex`] the peer keeps between
//! sessions: per tangle, the members in topological order with their bloom hashes for the
//! three rounds, the account tips they name, and *cuts* (members below which everything is
//! their ancestor). Ranges become contiguous runs (no msg fetched, nothing hashed, no sort),
//! and slices walk only the members above the highest cut below the listed IDs. The index
//! checks each tangle's version on use and rebuilds what is stale, so it is never wrong;
//! [`commit`] and [`SyncIndex::note_added`] keep it fresh through ordinary appends. What is
//! left proportional to a range is the bloom bit-work the protocol asks for: each side
//! fills three filters over its want-range and probes three over the remote's.
//!
//! # Bloom sizing (ours to choose)
//!
//! The reference sizes a filter from the range's length, `create(2·(estimate + extras),
//! 1e-5)` with `estimate = clamp(2·(max − min + 1), 5, 1000)`. The cap makes filters stop
//! growing at 47,926 bits: at 10,000 items nearly every bit is set and most probes are
//! false positives, so missing msgs go unlisted. [`BloomSizing::Scaled`] (the default) keeps
//! the reference's filters byte for byte whenever the estimate is not capped (ranges of at
//! most 500 depths, all the replay vectors), and past the cap sizes them for the items
//! actually inserted: [`SCALED_BITS_PER_ITEM`] bits per item, [`SCALED_HASHES`] hash
//! functions (about 1.4·10⁻⁵ false positives per round). A JavaScript peer reads `_size`,
//! `_nbHashes` and `_seed` from the JSON, so it probes them correctly.
//!
//! # Hostile input
//!
//! Every received object passes the reference's checks and ours (bounded counts and ranges,
//! sane bloom dimensions, see [`wire`]). A bad object is dropped, as the reference drops it,
//! and reported as [`Output::Refused`]; a msg inside a payload that does not decode is
//! dropped alone. After [`REFUSALS_MAX`] refusals the session asks to close the stream. State
//! per stream is bounded by [`TANGLES_TRACKED_MAX`] and [`KNOWN_IDS_MAX`];
//! [`Session::check_invariants`] asserts every bound.
//!
//! # Where we differ from pzp-sync 1.0.4
//!
//! - Blooms past the reference's size cap are sized for their contents ([`BloomSizing`]).
//! - An initiator answers the responder's phase 4 with phase 8 (its msgs and its round-2
//!   bloom) when the responder's round-0 bloom is sparse ([`Rounds::Adaptive`],
//!   [`SKIP_ROUNDS_FALSE_POSITIVE_MAX`]): six objects and three blooms per exchange instead of
//!   nine and six. Every object is one the reference reads; a reference responder answers that
//!   phase 8 exactly as the reference's initiator does (phase 9, realtime, commit).
//! - Phase 0 from the remote (the reference answers it with phase 1) and ranges with
//!   negative or unsafe integers are refused; a phase that needs the local want-range before
//!   it exists is refused (the reference throws and sends nothing).
//! - Re-initiation runs once per [`Input::LocalAdded`] batch rather than once per record
//!   (the same objects, minus duplicate phase-1s).
//! - Payloads of more than [`wire::MSGS_PER_PAYLOAD_MAX`] msgs or about
//!   [`wire::MSG_BYTES_PER_PAYLOAD_MAX`] bytes of msgs are split over several
//!   phase-9 objects.
//! - Msg `data` objects are written with sorted keys (serde_json's maps), an equal JSON value.
//! - A msg in several tangles is pushed in realtime under the first of its tangles in ID
//!   order (the reference takes the msg's own key order).
//!
//! # Reference behaviour we keep (and that callers should know)
//!
//! - The root is listed twice in a range starting at depth 0 (`getMsgsInRange`).
//! - A msg held without data counts as held: a peer never gets back the data of a msg it
//!   erased. With a set or dict goal, a peer that held an update without its predecessors
//!   (accepted through its lipmaa link) can have garbage collection erase it as a trail and
//!   never see its data again, while an older update it superseded arrives: the set then
//!   reads differently than on its source (`set_goal_with_ghosts_reads_the_same_set`).
//! - `newest-N` with an empty local tangle over-fetches everything, then prunes; and wants
//!   nothing from a remote that holds only the root.
//! - Account msgs sent along are `accountTangle.slice([], union of tips)`: with msgs naming
//!   different tips, account msgs after the older tips are left out.

mod apply;
pub mod bloom;
mod claims;
mod id_set;
mod index;
pub mod recon;
mod session;
mod sessions;
mod store;
mod time;
pub mod wire;

pub use apply::{AddShared, Adder, CommitObserver, Committed, commit, commit_with, prune_newest};
pub use claims::{Claims, FETCH_CLAIM_TTL_MS, SessionTag};
pub use index::{INDEXED_TANGLES_MAX, IndexedDb, SyncIndex, WARMED_AT_START_MSGS_MAX};
pub use session::{
    BloomSizing, CloseReason, Config, ITEM_CACHE_ENTRIES_MAX, Input, KNOWN_IDS_MAX, Output,
    PENDING_PUSHES_MAX, PENDING_PUSHES_PER_TANGLE_MAX, REFUSALS_MAX, REQUESTED_MAX, Refusal,
    Reinitiation, Rounds, SCALED_BITS_PER_ITEM, SCALED_HASHES, SKIP_ROUNDS_FALSE_POSITIVE_MAX,
    Session, Stats, TANGLES_TRACKED_MAX, bloom_dimensions,
};
pub use sessions::{Event, SessionOutput, SessionRef, Sessions};
pub use store::{RangeItem, RangeItems, SyncStore};
pub use time::Time;
pub use wire::{Payload, SyncMsg};
