//! Salvaging a damaged log: every record that can still be read is kept, and what could
//! not be is reported by byte range.
//!
//! A log whose damage is not a torn tail (a flipped bit mid-log, a damaged header) is
//! refused by every open, which changes nothing. [`DiskStore::salvage`] is the way out,
//! asked for by a person (`ppppp db salvage`):
//! 1. every intact batch is replayed as on open;
//! 2. in a damaged region, the records of the damaged batch whose own checksums hold are
//!    kept, in order; a record whose checksum fails is lost and skipped by its length when
//!    the record after it is whole, and otherwise the rest of the region, up to the next
//!    intact batch (found by its magic and checksums), is lost; losses are reported by
//!    byte range;
//! 3. records that no longer fit what was kept (an erase of a msg whose append was lost, a
//!    sequence number out of order) are dropped and reported;
//! 4. the kept records are written as a new log, the way compaction writes one, and renamed
//!    over `log`; the damaged log stays beside it as `log.damaged` (hard-linked before the
//!    rename, so a crash at any point leaves a whole log and the damaged one).

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use proto::ids::MsgId;

use super::disk::{DiskStore, LOG_FILE, Options};
use super::error::StoreError;
use super::file::FileSystem;
use super::format::{
    self, BATCH_HEADER_LEN, BatchHeader, Checksum, FILE_HEADER_LEN, FileHeader, HeaderProblem,
    RECORD_PREFIX_LEN, Record,
};
use super::index::Index;
use super::recovery;

/// What a salvage kept and lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Salvage {
    /// Bytes of the damaged log.
    pub log_bytes: u64,
    /// Whether the file header was damaged (its sequence-number floor is then taken as 0;
    /// sequence numbers of kept records are kept).
    pub header_damaged: bool,
    /// Byte ranges of the damaged log whose records could not be read: their msgs are lost.
    pub lost: Vec<Range<u64>>,
    /// Records kept from intact batches.
    pub records_from_intact_batches: u64,
    /// Records kept from damaged batches (their own checksums hold).
    pub records_from_damaged_batches: u64,
    /// Records read but dropped because they do not fit what was kept: offset and reason.
    pub records_dropped: Vec<(u64, &'static str)>,
    /// Msgs in the salvaged store.
    pub msgs: u64,
    /// Where the damaged log was kept (`None` when nothing needed salvaging).
    pub damaged_copy: Option<PathBuf>,
}

impl Salvage {
    /// Whether anything was lost (bytes unread or records dropped).
    #[must_use]
    pub fn lost_anything(&self) -> bool {
        !self.lost.is_empty() || !self.records_dropped.is_empty()
    }
}

impl DiskStore {
    /// Rebuilds the store in `dir` from every record its log still holds (see the module
    /// docs). A log that opens cleanly is left as it is. Takes the writer lock.
    ///
    /// # Errors
    /// [`StoreError::Locked`], [`StoreError::Missing`], a log that is not ours or of another
    /// format version, or I/O.
    pub fn salvage(
        dir: impl AsRef<Path>,
        options: &Options,
    ) -> Result<(Self, Salvage), StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let fs = FileSystem::new(options.faults.clone());
        let log_path = dir.join(LOG_FILE);
        let opened = DiskStore::open(
            &dir,
            &Options {
                create: false,
                faults: options.faults.clone(),
            },
        );
        match opened {
            Ok(store) => {
                let report = Salvage {
                    log_bytes: store.disk_stats().log_bytes,
                    msgs: proto::store::Store::len(&store),
                    ..Salvage::default()
                };
                return Ok((store, report));
            }
            Err(StoreError::Corrupt { .. }) => {}
            Err(other) => return Err(other),
        }
        let (lock, file) = Self::lock_for_salvage(&fs, &dir, &log_path)?;
        let (index, mut report) = read_damaged(&fs, &file, &log_path)?;
        let damaged = Self::from_parts(&dir, fs, file, lock, index, report.log_bytes);
        let (store, copy) = damaged.replace_log_keeping_damaged()?;
        report.msgs = proto::store::Store::len(&store);
        report.damaged_copy = Some(copy);
        Ok((store, report))
    }
}

/// Replays what can be read of a damaged log into an index whose slots point into it.
fn read_damaged(fs: &FileSystem, file: &File, path: &Path) -> Result<(Index, Salvage), StoreError> {
    let file_len = file
        .metadata()
        .map_err(|source| StoreError::io("stat", path, source))?
        .len();
    let header_len = u64::try_from(FILE_HEADER_LEN).unwrap_or(u64::MAX);
    let mut report = Salvage {
        log_bytes: file_len,
        ..Salvage::default()
    };
    let mut header_bytes = [0u8; FILE_HEADER_LEN];
    let seq_floor = if file_len < header_len {
        report.header_damaged = true;
        0
    } else {
        fs.read_exact_at(file, path, &mut header_bytes, 0)?;
        match FileHeader::decode(&header_bytes) {
            Ok(header) => header.seq_floor,
            Err(HeaderProblem::Foreign) => {
                return Err(StoreError::Foreign {
                    path: path.to_path_buf(),
                });
            }
            Err(HeaderProblem::Version(found)) => {
                return Err(StoreError::UnsupportedVersion {
                    path: path.to_path_buf(),
                    found,
                    supported: format::FORMAT_VERSION,
                });
            }
            Err(HeaderProblem::Short | HeaderProblem::Checksum) => {
                report.header_damaged = true;
                0
            }
        }
    };
    let mut index = Index::new(seq_floor, 0);
    let mut offset = header_len.min(file_len);
    while offset < file_len {
        if let Some(body) = intact_batch(fs, file, path, offset, file_len)? {
            let body_offset = offset + u64::try_from(BATCH_HEADER_LEN).unwrap_or(u64::MAX);
            let kept = replay_leniently(&mut index, &body, body_offset, &mut report);
            report.records_from_intact_batches += kept;
            offset = body_offset + u64::try_from(body.len()).unwrap_or(u64::MAX);
            continue;
        }
        let next = recovery::find_intact_batch(fs, file, path, offset + 1, file_len)?;
        let end = next.unwrap_or(file_len);
        let read_to = read_damaged_batch(fs, file, path, offset, end, &mut index, &mut report)?;
        if read_to < end {
            report.lost.push(read_to..end);
        }
        offset = end;
    }
    Ok((index, report))
}

/// The body of the intact batch at `at`, if there is one.
fn intact_batch(
    fs: &FileSystem,
    file: &File,
    path: &Path,
    at: u64,
    end: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    if !recovery::is_intact_batch(fs, file, path, at, end)? {
        return Ok(None);
    }
    let mut header_bytes = [0u8; BATCH_HEADER_LEN];
    fs.read_exact_at(file, path, &mut header_bytes, at)?;
    let Some(header) = BatchHeader::decode(&header_bytes) else {
        return Ok(None);
    };
    let mut body = vec![0u8; usize::try_from(header.body_len).unwrap_or(0)];
    let body_offset = at + u64::try_from(BATCH_HEADER_LEN).unwrap_or(u64::MAX);
    fs.read_exact_at(file, path, &mut body, body_offset)?;
    Ok(Some(body))
}

/// Keeps the records of the damaged batch at `at` (ending by `end`) whose own checksums
/// hold, in order. A record whose checksum fails is skipped by its length when the record
/// after it is whole (or it ends exactly at `end`), and reported lost; otherwise reading
/// stops there. Returns where reading stopped.
fn read_damaged_batch(
    fs: &FileSystem,
    file: &File,
    path: &Path,
    at: u64,
    end: u64,
    index: &mut Index,
    report: &mut Salvage,
) -> Result<u64, StoreError> {
    let mut position = at + u64::try_from(BATCH_HEADER_LEN).unwrap_or(u64::MAX);
    let mut read_to = at;
    while let Some((bytes, whole)) = record_at(fs, file, path, position, end)? {
        let next = position + u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if whole {
            if apply_leniently(index, &bytes, position, report) {
                report.records_from_damaged_batches += 1;
            }
        } else {
            let skippable = next == end
                || record_at(fs, file, path, next, end)?.is_some_and(|(_, whole)| whole);
            if !skippable {
                break;
            }
            report.lost.push(position..next);
        }
        position = next;
        read_to = position;
    }
    Ok(read_to)
}

/// The record at `position` if its length prefix is plausible and it ends by `end`, and
/// whether its checksum holds.
fn record_at(
    fs: &FileSystem,
    file: &File,
    path: &Path,
    position: u64,
    end: u64,
) -> Result<Option<(Vec<u8>, bool)>, StoreError> {
    let prefix_len = u64::try_from(RECORD_PREFIX_LEN).unwrap_or(u64::MAX);
    if position + prefix_len > end {
        return Ok(None);
    }
    let mut prefix = [0u8; RECORD_PREFIX_LEN];
    fs.read_exact_at(file, path, &mut prefix, position)?;
    let Some(len) = format::record_len_at(&prefix) else {
        return Ok(None);
    };
    if position + u64::try_from(len).unwrap_or(u64::MAX) > end {
        return Ok(None);
    }
    let mut bytes = vec![0u8; len];
    fs.read_exact_at(file, path, &mut bytes, position)?;
    let whole = format::decode_record(&bytes, Checksum::Verify).is_ok();
    Ok(Some((bytes, whole)))
}

/// Replays the records of an intact batch body, dropping those that do not fit; how many
/// were kept.
fn replay_leniently(index: &mut Index, body: &[u8], body_offset: u64, report: &mut Salvage) -> u64 {
    let Ok(ranges) = format::split_body(body) else {
        report
            .records_dropped
            .push((body_offset, "records do not tile their batch"));
        return 0;
    };
    let mut kept = 0;
    for range in ranges {
        let offset = body_offset + u64::try_from(range.start).unwrap_or(u64::MAX);
        let bytes = body.get(range).unwrap_or_default();
        kept += u64::from(apply_leniently(index, bytes, offset, report));
    }
    kept
}

/// Applies one record (already checked) at `offset`; false (and reported) if it does not
/// fit what was kept.
fn apply_leniently(index: &mut Index, bytes: &[u8], offset: u64, report: &mut Salvage) -> bool {
    let record_len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    let applied = match format::decode_record(bytes, Checksum::Covered) {
        Err(problem) => Err(problem.0),
        Ok(Record::Msg { kind, head, .. }) => index
            .apply_msg(kind, &head, offset, record_len)
            .map_err(|problem| problem.0),
        Ok(Record::Delete { id }) => index.apply_delete(&id).map_err(|problem| problem.0),
        Ok(Record::Ghosts { tangle, ghosts }) => {
            index.apply_ghosts(MsgId::from_bytes(&tangle), format::ghosts_from_raw(&ghosts));
            Ok(())
        }
    };
    match applied {
        Ok(()) => true,
        Err(reason) => {
            report.records_dropped.push((offset, reason));
            false
        }
    }
}
