//! [`DiskStore`]: the durable [`Store`] (format: `docs/store-format.md`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proto::ids::{MsgId, TangleId};
use proto::msg::{Metadata, Msg, TangleLink};
use proto::store::{AccountTips, Ghosts, MemberLink, Record, Store, StoreStats, StoredMetadata};

use super::decoded::{Decoded, DecodedCache};
use super::error::StoreError;
use super::file::{Faults, FileSystem};
use super::format::{
    self, BATCH_BODY_BYTES_MAX, BATCH_HEADER_LEN, BatchHeader, FileHeader, Kind, MsgHead,
    RECORD_BYTES_MAX, RawId,
};
use super::index::{Index, SLOTS_MAX, Slot};
use super::recovery;
use super::side::{SideFile, SideReport};
use super::side_format::{EntryParts, IdTexts, raw_ids};

/// The log file.
pub const LOG_FILE: &str = "log";
/// A compaction's output until it is renamed over [`LOG_FILE`].
pub const COMPACT_FILE: &str = "log.compact";
/// A new store's first log until it is renamed to [`LOG_FILE`].
pub const NEW_FILE: &str = "log.new";
/// The writer's lock file (taken first, so that creating a store is exclusive too); the
/// writer also locks the log itself, so removing this file lets no second writer in.
pub const LOCK_FILE: &str = "LOCK";
/// What a writer writes into [`LOCK_FILE`] once the store has a log: a lock file with it
/// and no log means the log was lost (an empty one is a creation a crash interrupted).
const LOCK_FILE_MARK: &[u8] = b"ppppp store: the log is db/log; this file is its writer lock\n";
/// Prefix of the copies of cut torn tails: `log.torn-<offset>` (then `.1`, `.2`… if taken).
pub const TORN_FILE_PREFIX: &str = "log.torn-";
/// Where a damaged log is kept after salvage: `log.damaged` (then `.1`, `.2`… if taken).
pub const DAMAGED_FILE: &str = "log.damaged";
/// Most tangles one msg may list (the format stores the count in 16 bits).
pub const MSG_TANGLES_MAX: usize = u16::MAX as usize;
/// How often a read-only open re-reads a log that looked corrupt, in case a writer was
/// appending while it read.
const READ_ONLY_OPEN_ATTEMPTS_MAX: u32 = 3;
/// How often opening tries to take a busy writer lock before it reports it busy.
const LOCK_ATTEMPTS_MAX: u32 = 5;
/// Pause between those tries.
const LOCK_RETRY_DELAY_MS: u64 = 20;

/// How to open a store.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Create the directory and an empty store if there is none.
    pub create: bool,
    /// Failures to inject (tests only).
    pub faults: Option<Arc<Faults>>,
}

/// What opening found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes cut from the end of the log (a damaged last batch, as a crash leaves it). For a
    /// read-only open, bytes ignored.
    pub torn_tail_bytes: u64,
    /// Where the cut was made, if any.
    pub torn_tail_offset: Option<u64>,
    /// Whether the cut batch certainly was a write a crash interrupted (never acknowledged):
    /// the file ended inside it. Otherwise it may also have been acknowledged and damaged
    /// on disk afterwards (`docs/store-format.md`, "Recovery on open").
    pub torn_tail_interrupted: bool,
    /// Where the cut bytes were kept (a writer copies them before cutting).
    pub torn_tail_copy: Option<PathBuf>,
    /// Whether an unfinished compaction's file was removed.
    pub removed_compaction_file: bool,
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Log bytes before.
    pub log_bytes_before: u64,
    /// Log bytes after.
    pub log_bytes_after: u64,
    /// Msgs kept.
    pub msgs: u64,
}

/// Facts about the files, beyond [`StoreStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Bytes of the log, including the batch not flushed yet.
    pub log_bytes: u64,
    /// Bytes not flushed yet.
    pub pending_bytes: u64,
    /// Records that compaction would drop (deleted or replaced msgs).
    pub dead_records: u64,
    /// Tangles with ghosts.
    pub ghost_tangles: u64,
}

/// A durable, crash-safe [`Store`]: one append-only log with checksums, and an in-memory
/// index rebuilt from the log's binary record heads on open (no msg JSON is parsed).
///
/// **When a write is durable.** `append`, `replace`, `erase`, `delete` and `set_ghosts`
/// change the store at once (reads see them) but only buffer the record. [`Store::flush`]
/// writes the buffered records as one batch, with one write and one `fsync`, and returns
/// once they are on disk: that is the acknowledgement. A batch that grows past
/// [`BATCH_BODY_BYTES_MAX`] is flushed early (so it is durable sooner, never later). Dropping
/// the store without `flush` loses the buffered records, exactly as a crash would.
///
/// **Failure.** After a failed write or fsync the store is poisoned: every later write and
/// flush fails with [`StoreError::Poisoned`]. Reopening recovers every acknowledged record.
///
/// **Sharing.** One writer per directory (a `LOCK` file); any number of read-only opens,
/// which see the log as it was when they opened.
#[derive(Debug)]
pub struct DiskStore {
    dir: PathBuf,
    log_path: PathBuf,
    fs: FileSystem,
    file: File,
    /// Held for the store's life; `None` when read-only.
    lock: Option<File>,
    index: Index,
    /// Bytes of the log file that hold whole batches.
    file_len: u64,
    /// The open batch: `BATCH_HEADER_LEN` bytes reserved for its header, then records.
    pending: Vec<u8>,
    poisoned: Option<String>,
    recovery: Recovery,
    /// Msgs decoded from the written part of the log.
    decoded: DecodedCache,
    /// The msgs appended or replaced in the open batch, by record offset, with their record's
    /// length: a `get` right after an add (a sync commit reads each msg back "as stored")
    /// takes the msg given instead of decoding the record just encoded from it. Bounded by
    /// the batch (`BATCH_BODY_BYTES_MAX`); moved to `decoded` once the batch is written.
    open_batch: BTreeMap<u64, (Arc<Msg>, usize)>,
    /// The stored msgs' metadata beside the log (a cache: see `side`).
    side: SideFile,
}

impl DiskStore {
    /// Opens the store in `dir` for writing (creating it if `options.create`), recovering
    /// from a crash if needed.
    ///
    /// # Errors
    /// [`StoreError::Missing`], [`StoreError::Locked`], a damaged log, or I/O.
    pub fn open(dir: impl AsRef<Path>, options: &Options) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let fs = FileSystem::new(options.faults.clone());
        let log_path = dir.join(LOG_FILE);
        if !log_path.exists() {
            check_may_create(&dir, options.create)?;
        }
        fs.create_dir_all(&dir)?;
        let lock = lock_dir(&fs, &dir)?;
        let mut recovery = Recovery {
            removed_compaction_file: fs.remove_if_exists(&dir.join(COMPACT_FILE))?,
            ..Recovery::default()
        };
        let removed_new = fs.remove_if_exists(&dir.join(NEW_FILE))?;
        if recovery.removed_compaction_file || removed_new {
            fs.sync_dir(&dir)?;
        }
        if !log_path.exists() {
            check_may_create(&dir, options.create)?;
            create_log(&fs, &dir, 0)?;
        }
        let file = lock_log(&fs, &dir, &log_path)?;
        mark_lock_file(&fs, &lock, &dir)?;
        let scanned = recovery::scan(&fs, &file, &log_path)?;
        if scanned.torn_bytes() > 0 {
            // Keep a copy of what is cut, then cut the torn tail and make the cut durable
            // before anything is appended, so that at most one batch is ever in flight (see
            // `recovery`).
            let copy = save_torn_tail(&fs, &file, &dir, scanned.valid_len, scanned.file_len)?;
            fs.set_len(&file, &log_path, scanned.valid_len)?;
            fs.sync_all(&file, &log_path)?;
            recovery.torn_tail_bytes = scanned.torn_bytes();
            recovery.torn_tail_offset = Some(scanned.valid_len);
            recovery.torn_tail_interrupted = scanned.damaged_batch_short;
            recovery.torn_tail_copy = Some(copy);
        }
        let side = SideFile::open(&dir, true);
        let store = Self {
            dir,
            log_path,
            fs,
            file,
            lock: Some(lock),
            index: scanned.index,
            file_len: scanned.valid_len,
            pending: vec![0u8; BATCH_HEADER_LEN],
            poisoned: None,
            recovery,
            decoded: DecodedCache::default(),
            open_batch: BTreeMap::new(),
            side,
        };
        store.scan_side();
        Ok(store)
    }

    /// Creates (or opens) the store in `dir` for writing.
    ///
    /// # Errors
    /// As [`DiskStore::open`].
    pub fn create(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open(
            dir,
            &Options {
                create: true,
                faults: None,
            },
        )
    }

    /// Opens the store in `dir` read-only, without the writer lock: it shows every batch
    /// that was whole when it opened (a writer may be appending meanwhile) and changes
    /// nothing on disk.
    ///
    /// # Errors
    /// [`StoreError::Missing`], a damaged log, or I/O.
    pub fn open_read_only(dir: impl AsRef<Path>, options: &Options) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let fs = FileSystem::new(options.faults.clone());
        let log_path = dir.join(LOG_FILE);
        if !log_path.exists() {
            return Err(StoreError::Missing { dir });
        }
        let mut attempt = 1;
        loop {
            let file = fs.open(&log_path, OpenOptions::new().read(true), "open")?;
            match recovery::scan(&fs, &file, &log_path) {
                Ok(scanned) => {
                    let side = SideFile::open(&dir, false);
                    let store = Self {
                        dir,
                        log_path,
                        fs,
                        file,
                        lock: None,
                        recovery: Recovery {
                            torn_tail_bytes: scanned.torn_bytes(),
                            torn_tail_offset: (scanned.torn_bytes() > 0)
                                .then_some(scanned.valid_len),
                            torn_tail_interrupted: scanned.damaged_batch_short,
                            torn_tail_copy: None,
                            removed_compaction_file: false,
                        },
                        index: scanned.index,
                        file_len: scanned.valid_len,
                        pending: vec![0u8; BATCH_HEADER_LEN],
                        poisoned: None,
                        decoded: DecodedCache::default(),
                        open_batch: BTreeMap::new(),
                        side,
                    };
                    store.scan_side();
                    return Ok(store);
                }
                Err(StoreError::Corrupt { .. }) if attempt < READ_ONLY_OPEN_ATTEMPTS_MAX => {
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The store directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What opening found.
    #[must_use]
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// What opening the metadata side file found.
    #[must_use]
    pub fn side_report(&self) -> SideReport {
        self.side.report()
    }

    /// Notes where each stored msg's entry in the side file is (after open and compaction:
    /// slot indexes change).
    fn scan_side(&self) {
        self.side
            .scan(self.index.slot_count(), self.index.len(), |id| {
                self.index.slot_index_of(id)
            });
    }

    /// The metadata of the msg at `slot` from the side file, caching its neighbours' too.
    fn side_metadata(&self, slot_index: u32, slot: &Slot) -> Option<Arc<Metadata>> {
        let mut wanted = None;
        self.side.window(slot_index, |id, metadata| {
            if id == slot.id {
                wanted = Some(Arc::new(metadata));
            } else if let Some(neighbour) = self.index.slot_of(&id)
                && self.decoded.get(neighbour.offset).is_none()
            {
                self.cache_decoded(neighbour, Decoded::Metadata(Arc::new(metadata)));
            }
        });
        wanted
    }

    /// Whether a failed write or fsync poisoned the store.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Whether the store was opened read-only.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.lock.is_none()
    }

    /// Panics if the index is inconsistent ([`Index::check_invariants`]) or a live slot
    /// points past the log and the open batch. Tests call it after every operation.
    pub fn check_invariants(&self) {
        self.index.check_invariants();
        let end = self.file_len + u64::try_from(self.pending.len()).unwrap_or(u64::MAX);
        for slot in self.index.live_slots() {
            assert!(
                slot.offset + u64::from(slot.record_len) <= end,
                "a live record at {} ends past the log ({end})",
                slot.offset
            );
        }
    }

    /// File facts.
    #[must_use]
    pub fn disk_stats(&self) -> DiskStats {
        let pending_bytes = self.pending_body_len();
        DiskStats {
            log_bytes: self.file_len + pending_bytes,
            pending_bytes,
            dead_records: self.index.dead_slots(),
            ghost_tangles: u64::try_from(self.index.all_ghosts().len()).unwrap_or(u64::MAX),
        }
    }

    fn pending_body_len(&self) -> u64 {
        u64::try_from(self.pending.len() - BATCH_HEADER_LEN).unwrap_or(u64::MAX)
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        if self.lock.is_none() {
            return Err(StoreError::ReadOnly {
                dir: self.dir.clone(),
            });
        }
        if let Some(cause) = &self.poisoned {
            return Err(StoreError::Poisoned {
                dir: self.dir.clone(),
                cause: cause.clone(),
            });
        }
        Ok(())
    }

    fn poison(&mut self, err: StoreError) -> StoreError {
        if self.poisoned.is_none() {
            self.poisoned = Some(err.to_string());
        }
        err
    }

    /// Makes room for a record of `record_len` bytes in the open batch (sealing and
    /// flushing it first if it would grow too large); returns the record's log offset.
    fn reserve(&mut self, record_len: usize) -> Result<u64, StoreError> {
        self.check_writable()?;
        if record_len > RECORD_BYTES_MAX {
            return Err(StoreError::TooLarge {
                bytes: record_len,
                bytes_max: RECORD_BYTES_MAX,
            });
        }
        if self.pending.len() - BATCH_HEADER_LEN + record_len > BATCH_BODY_BYTES_MAX {
            self.flush()?;
        }
        Ok(self.file_len + u64::try_from(self.pending.len()).unwrap_or(u64::MAX))
    }

    /// Encodes and indexes a msg record; returns its offset and length.
    fn write_msg(
        &mut self,
        kind: Kind,
        seq: u64,
        id: &MsgId,
        msg: &Msg,
    ) -> Result<(u64, usize), StoreError> {
        let json = msg.to_json();
        if msg.metadata.tangles.len() > MSG_TANGLES_MAX {
            return Err(StoreError::TooLarge {
                bytes: msg.metadata.tangles.len(),
                bytes_max: MSG_TANGLES_MAX,
            });
        }
        let tangles: Vec<RawId> = msg
            .metadata
            .tangles
            .keys()
            .map(|tangle| tangle.to_bytes())
            .collect();
        let record_len = format::msg_record_len(tangles.len(), json.len());
        let offset = self.reserve(record_len)?;
        let head = MsgHead {
            seq,
            id: id.to_bytes(),
            has_data: msg.has_data(),
            tangles: &tangles,
            json_len: u32::try_from(json.len()).expect("invariant: reserve bounded the record"),
        };
        let start = format::push_msg_record(
            &mut self.pending,
            kind,
            seq,
            &head.id,
            head.tangles,
            head.has_data,
            json.as_bytes(),
        );
        let written = u32::try_from(self.pending.len() - start).expect("invariant: bounded record");
        debug_assert_eq!(usize::try_from(written).ok(), Some(record_len));
        if let Err(problem) = self.index.apply_msg(kind, &head, offset, written) {
            self.pending.truncate(start);
            unreachable_problem(problem.0);
        }
        // An erase or a replace keeps the msg's metadata, and so its entry.
        if kind == Kind::Append
            && let Some(slot_index) = self.index.slot_index_of(&head.id)
        {
            self.side.note(slot_index, &head.id, &msg.metadata);
        }
        Ok((offset, record_len))
    }

    /// Writes a whole msg's record (an append or a replace) and keeps the msg for reads
    /// until the batch is written ([`Self::open_batch`]).
    fn write_whole_msg(
        &mut self,
        kind: Kind,
        seq: u64,
        id: &MsgId,
        msg: Arc<Msg>,
    ) -> Result<(), StoreError> {
        let (offset, record_len) = self.write_msg(kind, seq, id, &msg)?;
        self.open_batch.insert(offset, (msg, record_len));
        Ok(())
    }

    /// The bytes of the record a slot points to.
    fn read_record(&self, slot: &Slot) -> Result<Vec<u8>, StoreError> {
        let len = usize::try_from(slot.record_len).unwrap_or(usize::MAX);
        if slot.offset >= self.file_len {
            let start = usize::try_from(slot.offset - self.file_len).unwrap_or(usize::MAX);
            return self
                .pending
                .get(start..start.saturating_add(len))
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    StoreError::corrupt(
                        &self.log_path,
                        slot.offset,
                        "index points past the open batch",
                    )
                });
        }
        let mut bytes = vec![0u8; len];
        self.fs
            .read_exact_at(&self.file, &self.log_path, &mut bytes, slot.offset)?;
        Ok(bytes)
    }

    /// The msg a slot points to.
    fn read_msg(&self, slot: &Slot) -> Result<Msg, StoreError> {
        self.read_json(slot, |text| {
            proto::msg::decode_str(text).map_err(|err| format!("stored msg does not decode: {err}"))
        })
    }

    /// Keeps what was decoded of the record at `slot`, unless the record is in the open batch.
    fn cache_decoded(&self, slot: &Slot, decoded: Decoded) {
        if slot.offset < self.file_len {
            let record_bytes = usize::try_from(slot.record_len).unwrap_or(usize::MAX);
            self.decoded.insert(slot.offset, record_bytes, decoded);
        }
    }

    /// The metadata of the msg at `slot`, its data left undecoded.
    fn read_metadata(&self, slot: &Slot) -> Result<Metadata, StoreError> {
        self.read_json(slot, |text| {
            proto::msg::decode_stored_metadata(text)
                .map_err(|err| format!("stored msg's metadata does not decode: {err}"))
        })
    }

    /// Reads the record at `slot`, checks it is the one the index means, and decodes its
    /// JSON with `decode` (whose error becomes the corruption's reason).
    fn read_json<T>(
        &self,
        slot: &Slot,
        decode: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, StoreError> {
        let bytes = self.read_record(slot)?;
        let corrupt = |reason: &str| StoreError::corrupt(&self.log_path, slot.offset, reason);
        match format::decode_record(&bytes, format::Checksum::Verify)
            .map_err(|problem| corrupt(problem.0))?
        {
            format::Record::Msg { head, json, .. }
                if head.id == slot.id && head.seq == slot.seq =>
            {
                let text =
                    std::str::from_utf8(json).map_err(|_| corrupt("stored msg is not UTF-8"))?;
                decode(text).map_err(|reason| corrupt(&reason))
            }
            _ => Err(corrupt("the index points to another record")),
        }
    }

    /// Rewrites the log without deleted msgs, superseded copies and old ghost sets.
    ///
    /// Crash-safe: the new log is written beside the old one as `log.compact`, fsynced, and
    /// renamed over `log` (then the directory is fsynced). A crash before the rename leaves
    /// the old log, and the next open removes `log.compact`; after it, the new log is whole.
    ///
    /// # Errors
    /// I/O. A failure before the rename leaves the store as it was (usable); a failure after
    /// it poisons the store.
    pub fn compact(&mut self) -> Result<Compaction, StoreError> {
        self.check_writable()?;
        self.flush()?;
        let log_bytes_before = self.file_len;
        let compact_path = self.dir.join(COMPACT_FILE);
        // The new log is locked before it is renamed into place: no second writer can take
        // it between the rename and our lock.
        let file = match self.write_compacted(&compact_path) {
            Ok(file) => file,
            Err(err) => {
                let _ = self.fs.remove_if_exists(&compact_path);
                return Err(err);
            }
        };
        if let Err(err) = self.fs.rename(&compact_path, &self.log_path) {
            let _ = self.fs.remove_if_exists(&compact_path);
            return Err(err);
        }
        // From here on the old log is gone from the directory: any failure leaves this
        // store's view unknown, so it poisons.
        if let Err(err) = self.fs.sync_dir(&self.dir) {
            return Err(self.poison(err));
        }
        let scanned = match recovery::scan(&self.fs, &file, &self.log_path) {
            Ok(scanned) => scanned,
            Err(err) => return Err(self.poison(err)),
        };
        if scanned.torn_bytes() != 0 {
            let err = StoreError::corrupt(
                &self.log_path,
                scanned.valid_len,
                "the compacted log has a torn tail",
            );
            return Err(self.poison(err));
        }
        self.file = file;
        self.file_len = scanned.valid_len;
        self.index = scanned.index;
        self.decoded.clear();
        self.side.write_pending();
        self.scan_side();
        Ok(Compaction {
            log_bytes_before,
            log_bytes_after: self.file_len,
            msgs: self.index.len(),
        })
    }

    /// Writes the live records and ghost sets as a new log at `path`, made durable and
    /// locked; returns it open for reading and writing.
    fn write_compacted(&self, path: &Path) -> Result<File, StoreError> {
        let file = self.fs.open(
            path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true),
            "create",
        )?;
        lock_file(&file, &self.dir, path)?;
        let header = FileHeader {
            seq_floor: self.index.next_seq(),
        };
        self.fs.write_all_at(&file, path, &header.encode(), 0)?;
        let mut offset = u64::try_from(format::FILE_HEADER_LEN).unwrap_or(u64::MAX);
        let mut batch = vec![0u8; BATCH_HEADER_LEN];
        for slot in self.index.live_slots() {
            let mut record = self.read_record(slot)?;
            // Check what is copied, so compaction never spreads damage into a fresh log.
            format::decode_record(&record, format::Checksum::Verify)
                .map_err(|problem| StoreError::corrupt(&self.log_path, slot.offset, problem.0))?;
            format::rekind_msg_record(&mut record, Kind::Append)
                .map_err(|problem| StoreError::corrupt(&self.log_path, slot.offset, problem.0))?;
            if batch.len() - BATCH_HEADER_LEN + record.len() > BATCH_BODY_BYTES_MAX {
                offset = self.write_batch(&file, path, &mut batch, offset)?;
            }
            batch.extend_from_slice(&record);
        }
        for (tangle, ghosts) in self.index.all_ghosts() {
            let raw = format::ghosts_to_raw(ghosts);
            let record_len = format::ghosts_record_len(raw.len());
            if batch.len() - BATCH_HEADER_LEN + record_len > BATCH_BODY_BYTES_MAX {
                offset = self.write_batch(&file, path, &mut batch, offset)?;
            }
            format::push_ghosts_record(&mut batch, &tangle.to_bytes(), &raw);
        }
        self.write_batch(&file, path, &mut batch, offset)?;
        self.fs.sync_all(&file, path)?;
        Ok(file)
    }

    /// Seals `batch` (header reserved at its start), writes it at `offset`, and empties it.
    fn write_batch(
        &self,
        file: &File,
        path: &Path,
        batch: &mut Vec<u8>,
        offset: u64,
    ) -> Result<u64, StoreError> {
        if batch.len() == BATCH_HEADER_LEN {
            return Ok(offset);
        }
        seal(batch);
        self.fs.write_all_at(file, path, batch, offset)?;
        let next = offset + u64::try_from(batch.len()).unwrap_or(u64::MAX);
        batch.truncate(BATCH_HEADER_LEN);
        Ok(next)
    }
}

/// Writes the batch header into the reserved first bytes of `batch`.
fn seal(batch: &mut [u8]) {
    let header = BatchHeader::of(batch.get(BATCH_HEADER_LEN..).unwrap_or_default()).encode();
    if let Some(reserved) = batch.get_mut(..BATCH_HEADER_LEN) {
        reserved.copy_from_slice(&header);
    }
}

/// A replay rule broken by a record this store just checked and wrote: a bug here.
fn unreachable_problem(problem: &str) -> ! {
    panic!("invariant: the store checks a record before writing it ({problem})")
}

/// Takes the writer lock of `dir`.
fn lock_dir(fs: &FileSystem, dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let lock = fs.open(
        &path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
        "open lock file",
    )?;
    let mut attempt = 1;
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(lock),
            Err(TryLockError::WouldBlock) if attempt < LOCK_ATTEMPTS_MAX => {
                // A child process forked by anyone in this process holds a copy of the lock
                // until it execs (and then drops it, close-on-exec); wait that out.
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(LOCK_RETRY_DELAY_MS));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    dir: dir.to_path_buf(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(StoreError::io("lock", &path, source)),
        }
    }
}

/// Opens the log for writing and locks it (an exclusive `flock` held as long as the file is
/// open), checking that the file locked is still the one the path names: a writer that
/// compacts renames a new, already locked, log over the old one.
fn lock_log(fs: &FileSystem, dir: &Path, log_path: &Path) -> Result<File, StoreError> {
    let mut attempt = 1;
    loop {
        let file = fs.open(log_path, OpenOptions::new().read(true).write(true), "open")?;
        lock_file(&file, dir, log_path)?;
        if same_file(&file, log_path)? {
            return Ok(file);
        }
        if attempt >= LOCK_ATTEMPTS_MAX {
            return Err(StoreError::Locked {
                dir: dir.to_path_buf(),
            });
        }
        attempt += 1;
    }
}

/// Locks an open file exclusively, waiting out a brief hold (see [`lock_dir`]).
fn lock_file(file: &File, dir: &Path, path: &Path) -> Result<(), StoreError> {
    let mut attempt = 1;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) if attempt < LOCK_ATTEMPTS_MAX => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(LOCK_RETRY_DELAY_MS));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    dir: dir.to_path_buf(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(StoreError::io("lock", path, source)),
        }
    }
}

/// Whether the open `file` is the file `path` names now.
fn same_file(file: &File, path: &Path) -> Result<bool, StoreError> {
    use std::os::unix::fs::MetadataExt;
    let open = file
        .metadata()
        .map_err(|source| StoreError::io("stat", path, source))?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(open.dev() == named.dev() && open.ino() == named.ino()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StoreError::io("stat", path, source)),
    }
}

/// A new store may be made in `dir` only when asked to and when nothing of a store is there:
/// a store directory without its log lost it, and starting an empty store in its place
/// would hide that.
fn check_may_create(dir: &Path, create: bool) -> Result<(), StoreError> {
    if !create {
        return Err(StoreError::Missing {
            dir: dir.to_path_buf(),
        });
    }
    let unmarked_lock = std::fs::metadata(dir.join(LOCK_FILE)).is_ok_and(|meta| meta.len() == 0);
    let leftovers = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.file_name())
            .filter(|name| {
                *name != NEW_FILE && *name != COMPACT_FILE && !(*name == LOCK_FILE && unmarked_lock)
            })
            .count(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
        Err(source) => return Err(StoreError::io("list", dir, source)),
    };
    if leftovers > 0 {
        return Err(StoreError::LogMissing {
            dir: dir.to_path_buf(),
        });
    }
    Ok(())
}

/// Writes [`LOCK_FILE_MARK`] into the (locked) lock file if it is not there yet.
fn mark_lock_file(fs: &FileSystem, lock: &File, dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(LOCK_FILE);
    let len = lock
        .metadata()
        .map_err(|source| StoreError::io("stat", &path, source))?
        .len();
    if len == u64::try_from(LOCK_FILE_MARK.len()).unwrap_or(u64::MAX) {
        return Ok(());
    }
    fs.set_len(lock, &path, 0)?;
    fs.write_all_at(lock, &path, LOCK_FILE_MARK, 0)
}

/// Copies the bytes `[valid_len, file_len)` of the log to a new `log.torn-<valid_len>` file
/// (made durable), so that cutting a torn tail destroys nothing.
fn save_torn_tail(
    fs: &FileSystem,
    file: &File,
    dir: &Path,
    valid_len: u64,
    file_len: u64,
) -> Result<PathBuf, StoreError> {
    let log_path = dir.join(LOG_FILE);
    let len = usize::try_from(file_len - valid_len).unwrap_or(0);
    let mut bytes = vec![0u8; len];
    fs.read_exact_at(file, &log_path, &mut bytes, valid_len)?;
    let base = format!("{TORN_FILE_PREFIX}{valid_len}");
    let mut path = dir.join(&base);
    let mut counter = 0u32;
    while path.exists() {
        counter += 1;
        path = dir.join(format!("{base}.{counter}"));
    }
    let copy = fs.open(
        &path,
        OpenOptions::new().write(true).create_new(true),
        "create",
    )?;
    fs.write_all_at(&copy, &path, &bytes, 0)?;
    fs.sync_all(&copy, &path)?;
    fs.sync_dir(dir)?;
    Ok(path)
}

/// Writes an empty log (just a header) as `log.new`, makes it durable, and renames it to
/// `log`, so a `log` file always has a whole header.
fn create_log(fs: &FileSystem, dir: &Path, seq_floor: u64) -> Result<(), StoreError> {
    let new_path = dir.join(NEW_FILE);
    let file = fs.open(
        &new_path,
        OpenOptions::new().write(true).create(true).truncate(true),
        "create",
    )?;
    fs.write_all_at(&file, &new_path, &FileHeader { seq_floor }.encode(), 0)?;
    fs.sync_all(&file, &new_path)?;
    fs.rename(&new_path, &dir.join(LOG_FILE))?;
    fs.sync_dir(dir)
}

impl Store for DiskStore {
    type Error = StoreError;

    fn get(&self, id: &MsgId) -> Result<Option<Record>, StoreError> {
        let Some(slot) = self.index.slot_of(&id.to_bytes()) else {
            return Ok(None);
        };
        let cached = match self.open_batch.get(&slot.offset) {
            Some((msg, _)) => Some(Arc::clone(msg)),
            None => self.decoded.get_msg(slot.offset),
        };
        let msg = match cached {
            Some(msg) => msg,
            None => {
                let msg = Arc::new(self.read_msg(slot)?);
                self.cache_decoded(slot, Decoded::Msg(Arc::clone(&msg)));
                msg
            }
        };
        Ok(Some(Record {
            id: *id,
            msg,
            seq: slot.seq,
        }))
    }

    /// From the decoded cache; otherwise only the metadata is decoded (and cached): a
    /// restarted peer's first sync reads every member of a tangle this way, and decoding
    /// each one's data cost two thirds of it.
    fn get_metadata(&self, id: &MsgId) -> Result<Option<StoredMetadata>, StoreError> {
        let raw = id.to_bytes();
        let Some((slot_index, slot)) = self
            .index
            .slot_index_of(&raw)
            .and_then(|at| Some((at, self.index.slot_at(at)?)))
        else {
            return Ok(None);
        };
        if let Some((msg, _)) = self.open_batch.get(&slot.offset) {
            return Ok(Some(StoredMetadata::Msg(Arc::clone(msg))));
        }
        let metadata = match self.decoded.get(slot.offset) {
            Some(Decoded::Msg(msg)) => return Ok(Some(StoredMetadata::Msg(msg))),
            Some(Decoded::Metadata(metadata)) => metadata,
            None => {
                let metadata = match self.side_metadata(slot_index, slot) {
                    Some(metadata) => metadata,
                    None => {
                        let metadata = Arc::new(self.read_metadata(slot)?);
                        self.side.count_log_read();
                        self.side.note(slot_index, &raw, &metadata);
                        metadata
                    }
                };
                self.cache_decoded(slot, Decoded::Metadata(Arc::clone(&metadata)));
                metadata
            }
        };
        Ok(Some(StoredMetadata::Metadata {
            metadata,
            has_data: slot.has_data,
        }))
    }

    fn tangle_members(&self, tangle: &TangleId) -> Result<Vec<MsgId>, StoreError> {
        Ok(self.index.tangle_members(&tangle.to_bytes()))
    }

    /// From the side file, decoding of each entry only the tangle's link and the account
    /// tips, each ID turned into text once per call: a restarted peer's first sync of a
    /// feed reads every member this way, and building whole metadata values was half of it.
    /// Members with no readable entry go through [`Store::get_metadata`] (the log).
    fn tangle_links(&self, tangle: &TangleId) -> Result<Vec<MemberLink>, StoreError> {
        let raw_tangle = tangle.to_bytes();
        let slots = self.index.tangle_member_slots(&raw_tangle);
        let mut links: Vec<Option<MemberLink>> = vec![None; slots.len()];
        let mut texts = IdTexts::default();
        let mut last_tips: Option<(Vec<u8>, AccountTips)> = None;
        let missing = self.side.entries_of(&slots, |at, entry| {
            let Some(slot) = slots.get(at).and_then(|slot| self.index.slot_at(*slot)) else {
                return;
            };
            let link = member_link(
                entry,
                &raw_tangle,
                slot.has_data,
                &mut texts,
                &mut last_tips,
            );
            if let Some(place) = links.get_mut(at) {
                *place = link;
            }
        });
        for at in missing {
            let Some(slot) = slots.get(at).and_then(|slot| self.index.slot_at(*slot)) else {
                continue;
            };
            let id = MsgId::from_bytes(&slot.id);
            if let Some(stored) = self.get_metadata(&id)? {
                let link = MemberLink::of(tangle, id, &stored, None);
                if let Some(place) = links.get_mut(at) {
                    *place = link;
                }
            }
        }
        Ok(links.into_iter().flatten().collect())
    }

    fn append(&mut self, id: MsgId, msg: Arc<Msg>) -> Result<u64, StoreError> {
        if self.index.slot_of(&id.to_bytes()).is_some() {
            return Err(StoreError::AlreadyStored { id });
        }
        self.check_capacity()?;
        let seq = self.index.next_seq();
        self.write_whole_msg(Kind::Append, seq, &id, msg)?;
        Ok(seq)
    }

    fn replace(&mut self, id: MsgId, msg: Arc<Msg>) -> Result<u64, StoreError> {
        self.check_capacity()?;
        let seq = self.index.next_seq();
        let kind = if self.index.slot_of(&id.to_bytes()).is_some() {
            Kind::Replace
        } else {
            Kind::Append
        };
        self.write_whole_msg(kind, seq, &id, msg)?;
        Ok(seq)
    }

    fn erase(&mut self, id: &MsgId) -> Result<bool, StoreError> {
        let Some(slot) = self.index.slot_of(&id.to_bytes()).copied() else {
            return Ok(false);
        };
        if !slot.has_data {
            return Ok(false);
        }
        self.check_writable()?;
        let erased = self.read_msg(&slot)?.erased();
        self.write_msg(Kind::Erase, slot.seq, id, &erased)?;
        Ok(true)
    }

    fn delete(&mut self, id: &MsgId) -> Result<bool, StoreError> {
        let raw = id.to_bytes();
        if self.index.slot_of(&raw).is_none() {
            return Ok(false);
        }
        let record_len = format::RECORD_PREFIX_LEN + 1 + format::ID_LEN;
        self.reserve(record_len)?;
        let start = format::push_delete_record(&mut self.pending, &raw);
        if let Err(problem) = self.index.apply_delete(&raw) {
            self.pending.truncate(start);
            unreachable_problem(problem.0);
        }
        Ok(true)
    }

    fn ghosts(&self, tangle: &TangleId) -> Result<Ghosts, StoreError> {
        Ok(self.index.ghosts(tangle))
    }

    fn set_ghosts(&mut self, tangle: &TangleId, ghosts: &Ghosts) -> Result<(), StoreError> {
        let raw = format::ghosts_to_raw(ghosts);
        self.reserve(format::ghosts_record_len(raw.len()))?;
        format::push_ghosts_record(&mut self.pending, &tangle.to_bytes(), &raw);
        self.index.apply_ghosts(*tangle, ghosts.clone());
        Ok(())
    }

    fn ghost_tangles(&self) -> Result<Vec<TangleId>, StoreError> {
        Ok(self.index.all_ghosts().keys().copied().collect())
    }

    fn scan(&self, visit: &mut dyn FnMut(&Record) -> ControlFlow<()>) -> Result<(), StoreError> {
        for slot in self.index.live_slots() {
            let record = Record {
                id: MsgId::from_bytes(&slot.id),
                msg: Arc::new(self.read_msg(slot)?),
                seq: slot.seq,
            };
            if visit(&record).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.index.len()
    }

    fn stats(&self) -> StoreStats {
        self.index.stats()
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.lock.is_none() {
            return Ok(());
        }
        self.check_writable()?;
        if self.pending.len() == BATCH_HEADER_LEN {
            return Ok(());
        }
        seal(&mut self.pending);
        let written = self
            .fs
            .write_all_at(&self.file, &self.log_path, &self.pending, self.file_len)
            .and_then(|()| self.fs.sync_data(&self.file, &self.log_path));
        if let Err(err) = written {
            return Err(self.poison(err));
        }
        self.file_len += u64::try_from(self.pending.len()).unwrap_or(u64::MAX);
        self.pending.truncate(BATCH_HEADER_LEN);
        for (offset, (msg, record_len)) in std::mem::take(&mut self.open_batch) {
            self.decoded.insert(offset, record_len, Decoded::Msg(msg));
        }
        // After the log's fsync, so the side file mostly lags the log (it is a cache: `side`).
        self.side.write_pending();
        Ok(())
    }
}

impl DiskStore {
    /// The writer locks of `dir` for a salvage: the lock file and the (damaged) log.
    pub(super) fn lock_for_salvage(
        fs: &FileSystem,
        dir: &Path,
        log_path: &Path,
    ) -> Result<(File, File), StoreError> {
        if !log_path.exists() {
            return Err(StoreError::Missing {
                dir: dir.to_path_buf(),
            });
        }
        let lock = lock_dir(fs, dir)?;
        let file = lock_log(fs, dir, log_path)?;
        Ok((lock, file))
    }

    /// A writer over `file` whose index was built by a salvage (its slots point into
    /// `file`'s first `file_len` bytes).
    pub(super) fn from_parts(
        dir: &Path,
        fs: FileSystem,
        file: File,
        lock: File,
        index: Index,
        file_len: u64,
    ) -> Self {
        let store = Self {
            dir: dir.to_path_buf(),
            log_path: dir.join(LOG_FILE),
            fs,
            file,
            lock: Some(lock),
            index,
            file_len,
            pending: vec![0u8; BATCH_HEADER_LEN],
            poisoned: None,
            recovery: Recovery::default(),
            decoded: DecodedCache::default(),
            open_batch: BTreeMap::new(),
            side: SideFile::open(dir, true),
        };
        store.scan_side();
        store
    }

    /// Writes this store's records as a new log and renames it over `log`, keeping the old
    /// log as `log.damaged` (hard-linked first: every crash leaves a whole `log`). Returns
    /// the store over the new log, and where the old one is.
    pub(super) fn replace_log_keeping_damaged(self) -> Result<(Self, PathBuf), StoreError> {
        // Its entries stay right for the new log (they are keyed by msg ID); written now, so
        // that this store's side file is done before the new store's opens.
        self.side.write_pending();
        let compact_path = self.dir.join(COMPACT_FILE);
        let file = match self.write_compacted(&compact_path) {
            Ok(file) => file,
            Err(err) => {
                let _ = self.fs.remove_if_exists(&compact_path);
                return Err(err);
            }
        };
        let mut copy = self.dir.join(DAMAGED_FILE);
        let mut counter = 0u32;
        while copy.exists() {
            counter += 1;
            copy = self.dir.join(format!("{}.{counter}", DAMAGED_FILE));
        }
        std::fs::hard_link(&self.log_path, &copy)
            .map_err(|source| StoreError::io("link", &copy, source))?;
        self.fs.sync_dir(&self.dir)?;
        self.fs.rename(&compact_path, &self.log_path)?;
        self.fs.sync_dir(&self.dir)?;
        let scanned = recovery::scan(&self.fs, &file, &self.log_path)?;
        let Self { dir, fs, lock, .. } = self;
        let lock = lock.ok_or_else(|| StoreError::ReadOnly { dir: dir.clone() })?;
        let mut store = Self::from_parts(&dir, fs, file, lock, scanned.index, scanned.valid_len);
        store.file_len = scanned.valid_len;
        Ok((store, copy))
    }

    fn check_capacity(&self) -> Result<(), StoreError> {
        // A log could claim any sequence number floor; the last one is never assigned.
        if self.index.len() + self.index.dead_slots() >= SLOTS_MAX
            || self.index.next_seq() == u64::MAX
        {
            return Err(StoreError::Full {
                records_max: SLOTS_MAX,
            });
        }
        Ok(())
    }
}

/// The link in `tangle` of a side file entry's msg; `None` if its metadata does not list
/// `tangle`. `last_tips` is the last member's raw account and tips with their value, reused
/// when this one names the same (a feed's members mostly do).
fn member_link(
    entry: &EntryParts<'_>,
    tangle: &[u8; 32],
    has_data: bool,
    texts: &mut IdTexts,
    last_tips: &mut Option<(Vec<u8>, AccountTips)>,
) -> Option<MemberLink> {
    let raw = entry.link_in(tangle)?;
    let account_tips = match (entry.account(), entry.tips) {
        (Some(account), Some(tips)) => {
            let same = last_tips.as_ref().is_some_and(|(bytes, _)| {
                bytes.get(..32) == Some(account.as_slice()) && bytes.get(32..) == Some(tips)
            });
            if !same {
                let value = Arc::new((texts.get(account), texts.list(tips)));
                let mut bytes = account.to_vec();
                bytes.extend_from_slice(tips);
                *last_tips = Some((bytes, value));
            }
            last_tips.as_ref().map(|(_, value)| Arc::clone(value))
        }
        _ => None,
    };
    let prev = raw_ids(raw.prev).map(|id| texts.get(id)).collect();
    Some(MemberLink {
        id: texts.get(entry.id),
        link: TangleLink {
            depth: raw.depth,
            prev,
        },
        has_data,
        account_tips,
    })
}
