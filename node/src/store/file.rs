//! The store's only way to touch the file system, so tests can inject failures
//! ([`Faults`]): a full disk, a failing fsync, a refused open. Like redb's failure-injecting
//! backend, the hook sits below the code it tests and is off unless a test turns it on.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::error::StoreError;

/// Failures to inject into a store's file operations (tests only; production passes none).
///
/// Shared through an `Arc` so a test can change it while the store runs.
#[derive(Debug)]
pub struct Faults {
    /// Bytes that writes may still put on disk; past it a write stores what fits, then fails
    /// with "no space left on device". `u64::MAX` means no limit.
    write_budget_bytes: AtomicU64,
    /// Whether every fsync fails (as after an I/O error on the device).
    fail_syncs: AtomicBool,
    /// Whether opening or creating files fails with "permission denied".
    deny_opens: AtomicBool,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            write_budget_bytes: AtomicU64::new(u64::MAX),
            fail_syncs: AtomicBool::new(false),
            deny_opens: AtomicBool::new(false),
        }
    }
}

impl Faults {
    /// No faults.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The disk fills after `bytes` more bytes.
    pub fn set_write_budget_bytes(&self, bytes: u64) {
        self.write_budget_bytes.store(bytes, Ordering::SeqCst);
    }

    /// Every fsync fails from now on (or works again).
    pub fn set_fail_syncs(&self, fail: bool) {
        self.fail_syncs.store(fail, Ordering::SeqCst);
    }

    /// Opening files is refused from now on (or allowed again).
    pub fn set_deny_opens(&self, deny: bool) {
        self.deny_opens.store(deny, Ordering::SeqCst);
    }

    /// How many of `wanted` bytes a write may store.
    fn take_write_budget(&self, wanted: u64) -> u64 {
        let mut granted = 0;
        let _ =
            self.write_budget_bytes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |budget| {
                    if budget == u64::MAX {
                        granted = wanted;
                        None
                    } else {
                        granted = wanted.min(budget);
                        Some(budget - granted)
                    }
                });
        granted
    }
}

/// The file layer of one store: plain `std::fs` calls with the optional fault hook.
#[derive(Debug, Clone, Default)]
pub struct FileSystem {
    faults: Option<Arc<Faults>>,
}

fn injected(kind: io::ErrorKind, what: &str) -> io::Error {
    io::Error::new(kind, format!("{what} (injected fault)"))
}

impl FileSystem {
    /// The file layer, with `faults` if given.
    #[must_use]
    pub fn new(faults: Option<Arc<Faults>>) -> Self {
        Self { faults }
    }

    fn check_open(&self) -> io::Result<()> {
        match &self.faults {
            Some(faults) if faults.deny_opens.load(Ordering::SeqCst) => Err(injected(
                io::ErrorKind::PermissionDenied,
                "permission denied",
            )),
            _ => Ok(()),
        }
    }

    fn check_sync(&self) -> io::Result<()> {
        match &self.faults {
            Some(faults) if faults.fail_syncs.load(Ordering::SeqCst) => {
                Err(injected(io::ErrorKind::Other, "fsync failed: I/O error"))
            }
            _ => Ok(()),
        }
    }

    /// Opens `path` with `options`.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the path.
    pub fn open(
        &self,
        path: &Path,
        options: &OpenOptions,
        op: &'static str,
    ) -> Result<File, StoreError> {
        self.check_open()
            .and_then(|()| options.open(path))
            .map_err(|source| StoreError::io(op, path, source))
    }

    /// Writes all of `bytes` at `offset`.
    ///
    /// # Errors
    /// [`StoreError::Io`]; part of `bytes` may be on disk then.
    pub fn write_all_at(
        &self,
        file: &File,
        path: &Path,
        bytes: &[u8],
        offset: u64,
    ) -> Result<(), StoreError> {
        let result = match &self.faults {
            None => file.write_all_at(bytes, offset),
            Some(faults) => {
                let wanted = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
                let granted = faults.take_write_budget(wanted);
                let fits = usize::try_from(granted).unwrap_or(bytes.len());
                file.write_all_at(bytes.get(..fits).unwrap_or(bytes), offset)
                    .and_then(|()| {
                        if granted < wanted {
                            Err(injected(
                                io::ErrorKind::StorageFull,
                                "no space left on device",
                            ))
                        } else {
                            Ok(())
                        }
                    })
            }
        };
        result.map_err(|source| StoreError::io("write", path, source))
    }

    /// Reads exactly `buffer.len()` bytes at `offset`.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn read_exact_at(
        &self,
        file: &File,
        path: &Path,
        buffer: &mut [u8],
        offset: u64,
    ) -> Result<(), StoreError> {
        file.read_exact_at(buffer, offset)
            .map_err(|source| StoreError::io("read", path, source))
    }

    /// Makes the file's data (and its size) durable.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn sync_data(&self, file: &File, path: &Path) -> Result<(), StoreError> {
        self.check_sync()
            .and_then(|()| file.sync_data())
            .map_err(|source| StoreError::io("fsync", path, source))
    }

    /// Makes the file's data and metadata durable.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn sync_all(&self, file: &File, path: &Path) -> Result<(), StoreError> {
        self.check_sync()
            .and_then(|()| file.sync_all())
            .map_err(|source| StoreError::io("fsync", path, source))
    }

    /// Makes the entries of directory `dir` (created, renamed, removed files) durable.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn sync_dir(&self, dir: &Path) -> Result<(), StoreError> {
        self.check_sync()
            .and_then(|()| File::open(dir))
            .and_then(|handle| handle.sync_all())
            .map_err(|source| StoreError::io("fsync directory", dir, source))
    }

    /// Cuts the file to `len` bytes.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn set_len(&self, file: &File, path: &Path, len: u64) -> Result<(), StoreError> {
        file.set_len(len)
            .map_err(|source| StoreError::io("truncate", path, source))
    }

    /// Renames `from` to `to`, replacing `to` atomically.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn rename(&self, from: &Path, to: &Path) -> Result<(), StoreError> {
        self.check_open()
            .and_then(|()| std::fs::rename(from, to))
            .map_err(|source| StoreError::io("rename", from, source))
    }

    /// Removes `path` if it exists.
    ///
    /// # Errors
    /// [`StoreError::Io`] other than "not found".
    pub fn remove_if_exists(&self, path: &Path) -> Result<bool, StoreError> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StoreError::io("remove", path, source)),
        }
    }

    /// Creates `dir` and any missing parents durably: each new directory's entry is fsynced
    /// in its parent, so a new store does not vanish with its directory after a crash.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn create_dir_all(&self, dir: &Path) -> Result<(), StoreError> {
        let missing: Vec<&Path> = dir.ancestors().take_while(|path| !path.exists()).collect();
        self.check_open()
            .and_then(|()| std::fs::create_dir_all(dir))
            .map_err(|source| StoreError::io("create directory", dir, source))?;
        for created in missing.iter().rev() {
            let parent = match created.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            self.sync_dir(parent)?;
        }
        Ok(())
    }
}
