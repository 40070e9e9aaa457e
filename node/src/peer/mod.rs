//! The peer as a supervision tree of ractor actors around the pure machines of `proto`.
//!
//! ```text
//! root ─┬─ store      owns durability: commits, publishes, prunes, GC; announces what it added
//!       ├─ sync       one proto::sync::Session per connection; reads the db, asks store to commit
//!       ├─ goals      the goal table; tells sync (and GC) when it changes
//!       ├─ gc         a timer that asks store to collect garbage under the byte budget
//!       └─ conns      listener and dialer (seeded backoff); one child per connection:
//!            └─ connection   handshake, secretstream, muxrpc, credit-based reads, bounded writes
//! ```
//!
//! Actors are thin: each translates messages into calls on a `proto` machine (or store
//! operation) and applies the outputs. The database is shared by the store and sync actors
//! behind a mutex that is never held across an `await`; writes go through the store actor
//! only. Nothing here is named or registered (ractor's registry is process-global and would
//! leak across simulated hosts), nothing reads the wall clock (only `tokio::time`, which
//! turmoil simulates), and every random choice comes from a ChaCha stream seeded by
//! `(seed, peer, incarnation)`. See `docs/runtime.md` for ordering and bounds.

pub mod any_store;
pub mod app;
pub mod config;
mod connection;
mod conns;
mod error;
pub mod events;
mod gc;
mod goals;
mod handle;
mod msgs;
mod peers;
mod reconcile;
mod root;
mod store;
mod sync;

use std::sync::{Arc, Mutex, MutexGuard};

use proto::db::Db;
use proto::sync::SyncIndex;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

pub use any_store::{AnyStore, StoreFailure};
pub use app::{AppMethods, AppReply, AppRequest};
pub use config::{DialTarget, EventSink, Limits, NodeConfig, Timers, Transport};
pub use error::{JoinRefused, NodeError};
pub use events::{DisconnectReason, HandshakeFailure, NodeEvent, Remote, Traffic};
pub use handle::{NodeDialer, NodeHandle, NodeKiller};
pub use msgs::AddedBatch;
pub use peers::{PeerInfo, PeerState, SyncSummary};
pub use reconcile::{PZP_ONLY_REMOTES_MAX, RECONCILE_PEERS_MAX};
pub use root::{ADDED_BATCHES_BUFFERED, fresh_account_id, run};

/// The database and the sync index, shared by the store actor (writes) and the sync actor
/// (reads). Locked only for synchronous work, never across an `await`.
pub(crate) struct DbState {
    pub(crate) db: Db<AnyStore>,
    pub(crate) index: SyncIndex,
}

/// A handle on the shared database.
#[derive(Clone)]
pub(crate) struct SharedDb(Arc<Mutex<DbState>>);

impl SharedDb {
    fn new(db: Db<AnyStore>) -> Self {
        Self(Arc::new(Mutex::new(DbState {
            db,
            index: SyncIndex::new(),
        })))
    }

    /// Locks the database. A panic while it was held (a bug) poisons it; we keep going with
    /// the data as it is, since every write is a complete store operation.
    pub(crate) fn lock(&self) -> MutexGuard<'_, DbState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Identifies a connection within one node (not across nodes, not across restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ConnId(pub(crate) u64);

/// Reports events to the sink, if there is one.
#[derive(Clone, Default)]
pub(crate) struct Emitter(Option<EventSink>);

impl Emitter {
    pub(crate) fn emit(&self, event: NodeEvent) {
        if let Some(sink) = &self.0 {
            sink(event);
        }
    }

    pub(crate) fn is_on(&self) -> bool {
        self.0.is_some()
    }
}

/// The random stream of one part of one node incarnation. `purpose` keeps the streams of
/// different actors independent of each other's consumption.
pub(crate) fn rng(config: &NodeConfig, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    // Stream: peer in the high bits, incarnation and purpose below; distinct per triple for
    // every realistic peer count (< 2^32), incarnation (< 2^24) and purpose (< 2^8).
    rng.set_stream(
        (config.peer << 32) | ((config.incarnation & 0xff_ffff) << 8) | (purpose & 0xff),
    );
    rng
}

/// Aborts a spawned task when dropped, so no task outlives its actor (a crashed simulated
/// host drops its actors' state without running `post_stop`).
pub(crate) struct AbortOnDrop<T = ()>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
