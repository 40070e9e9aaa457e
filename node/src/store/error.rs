//! What can go wrong in the disk store.

use std::io;
use std::path::{Path, PathBuf};

use proto::ids::MsgId;

/// A disk store failure. Each names the file or directory involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done ("write", "fsync", "open", …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Another process holds the store's writer lock.
    #[error(
        "the store in {} is in use by another process (only one writer at a time; \
         read-only commands still work)",
        dir.display()
    )]
    Locked {
        /// The store directory.
        dir: PathBuf,
    },
    /// There is no store in the directory.
    #[error("no store in {} (create one with `ppppp init`)", dir.display())]
    Missing {
        /// The store directory.
        dir: PathBuf,
    },
    /// The store directory holds store files but no log: it was lost or deleted. A new,
    /// empty store is not made in its place.
    #[error(
        "{} has no log (db/log) but other store files: the store lost its log; refusing to \
         start an empty store in its place (move the directory away to start afresh)",
        dir.display()
    )]
    LogMissing {
        /// The store directory.
        dir: PathBuf,
    },
    /// The log file is not a ppppp log.
    #[error("{} is not a ppppp store log (wrong magic bytes); refusing to touch it", path.display())]
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// The log has a format version this program does not read.
    #[error(
        "{} has store format version {found}, this program reads only version {supported}",
        path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this program reads.
        supported: u32,
    },
    /// The log is damaged where a crash cannot have damaged it: the header, or a batch that
    /// intact data follows. Nothing was changed; the store needs a person to look at it.
    #[error("{} is corrupt at byte {offset}: {reason}; nothing was changed", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A write or fsync failed earlier, so what is on disk is unknown; the store refuses
    /// further writes. Reopening it recovers the acknowledged state.
    #[error(
        "the store in {} refuses writes after an earlier failure ({cause}); reopen it to recover",
        dir.display()
    )]
    Poisoned {
        /// The store directory.
        dir: PathBuf,
        /// The first failure.
        cause: String,
    },
    /// A write to a store opened read-only.
    #[error("the store in {} is open read-only", dir.display())]
    ReadOnly {
        /// The store directory.
        dir: PathBuf,
    },
    /// `append` of a msg that is stored already (a caller bug: `Db::add` checks first).
    #[error("msg {id} is already stored")]
    AlreadyStored {
        /// The msg.
        id: MsgId,
    },
    /// A record would exceed the format's size bound.
    #[error("a record of {bytes} bytes exceeds the store's bound of {bytes_max} bytes")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The bound.
        bytes_max: usize,
    },
    /// A store holds more records than the index can count.
    #[error("the store cannot hold more than {records_max} records")]
    Full {
        /// The bound.
        records_max: u64,
    },
}

impl StoreError {
    /// An I/O failure of `op` on `path`.
    #[must_use]
    pub fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A corruption at `offset` of `path`.
    #[must_use]
    pub fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }
}
