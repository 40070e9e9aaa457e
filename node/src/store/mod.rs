//! The durable msg store: [`DiskStore`], a [`proto::store::Store`] on one append-only,
//! checksummed log file per store directory, with group commit, crash recovery, compaction
//! and a writer lock. The on-disk format is specified in `docs/store-format.md`.
//!
//! - [`format`]: the log's bytes (headers, batches, records), pure.
//! - `recovery`: replaying a log on open; torn tail versus corruption.
//! - `index`: the in-memory index the replay builds.
//! - [`file`]: the file-system layer and its fault hook ([`Faults`]).
//! - `disk`: [`DiskStore`] itself.
//! - `decoded`: the bounded cache of msgs decoded from the log.
//! - `salvage`: [`DiskStore::salvage`], keeping what a damaged log still holds.
//! - `side`: the stored msgs' metadata in binary beside the log (a cache a restarted peer
//!   builds its tangles from).

mod decoded;
mod disk;
mod error;
pub mod file;
pub mod format;
mod index;
mod recovery;
mod salvage;
mod side;
mod side_format;

pub use decoded::DECODED_CACHE_BYTES_MAX;
pub use disk::{
    COMPACT_FILE, Compaction, DAMAGED_FILE, DiskStats, DiskStore, LOCK_FILE, LOG_FILE, NEW_FILE,
    Options, Recovery, TORN_FILE_PREFIX,
};
pub use error::StoreError;
pub use file::Faults;
pub use salvage::Salvage;
pub use side::{SIDE_FILE, SideReport};
