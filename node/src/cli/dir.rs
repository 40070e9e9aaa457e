//! The peer directory: which one (`--dir`, `$PPPPP_DIR`, `~/.ppppp`), where its files are,
//! and opening its store for writing or reading.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::store::{DiskStore, Options};

/// The peer directory option.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct DirArg {
    /// The peer directory [default: $PPPPP_DIR, else ~/.ppppp].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

impl DirArg {
    pub(super) fn resolve(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.dir {
            return Ok(dir.clone());
        }
        if let Some(dir) = std::env::var_os("PPPPP_DIR").filter(|dir| !dir.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        let home = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .context("no --dir, no $PPPPP_DIR and no $HOME: say which peer directory")?;
        Ok(PathBuf::from(home).join(".ppppp"))
    }
}

/// Bytes of the store's log file (0 if it cannot be read), as `ppppp status` shows them.
pub(super) fn log_bytes(dir: &Path) -> u64 {
    std::fs::metadata(store_dir(dir).join("log")).map_or(0, |meta| meta.len())
}

/// The store directory of a peer directory.
pub(super) fn store_dir(dir: &Path) -> PathBuf {
    dir.join("db")
}

/// The keypair file of a peer directory.
pub(super) fn secret_path(dir: &Path) -> PathBuf {
    dir.join("secret")
}

/// Opens the peer's store for writing; says on standard error what recovery repaired.
pub(super) fn open_writer(dir: &Path) -> anyhow::Result<DiskStore> {
    let store = DiskStore::open(store_dir(dir), &Options::default())
        .map_err(|error| with_salvage_hint(error, dir))?;
    report_recovery(store.recovery());
    Ok(store)
}

/// One line on standard error per repair recovery made, saying truthfully what was cut.
fn report_recovery(recovery: &crate::store::Recovery) {
    if let Some(offset) = recovery.torn_tail_offset {
        let kept = recovery
            .torn_tail_copy
            .as_ref()
            .map(|copy| format!("; the cut bytes are kept in {}", copy.display()))
            .unwrap_or_default();
        if recovery.torn_tail_interrupted {
            eprintln!(
                "ppppp: cut {} bytes of an unfinished write at byte {offset} of the log (the \
                 file ends inside that batch: a crash interrupted it before it was \
                 acknowledged){kept}",
                recovery.torn_tail_bytes
            );
        } else {
            eprintln!(
                "ppppp: cut the damaged last batch of the log ({} bytes at byte {offset}): \
                 either a write a crash interrupted (never acknowledged) or acknowledged msgs \
                 damaged on disk; the two cannot be told apart{kept}",
                recovery.torn_tail_bytes
            );
        }
    }
    if recovery.removed_compaction_file {
        eprintln!("ppppp: removed an unfinished compaction's file (the log itself is whole)");
    }
}

/// Opens the peer's store read-only (no lock: works beside a running writer).
pub(super) fn open_reader(dir: &Path) -> anyhow::Result<DiskStore> {
    DiskStore::open_read_only(store_dir(dir), &Options::default())
        .map_err(|error| with_salvage_hint(error, dir))
}

/// A corrupt store's error, with the command that keeps what it still holds.
fn with_salvage_hint(error: crate::store::StoreError, dir: &Path) -> anyhow::Error {
    let corrupt = matches!(error, crate::store::StoreError::Corrupt { .. });
    let error = anyhow::Error::new(error);
    if corrupt {
        error.context(format!(
            "the store cannot be opened; `ppppp db salvage --dir {}` keeps every record it \
             can still read and reports what is lost (the damaged log is kept)",
            dir.display()
        ))
    } else {
        error
    }
}
