//! [`SideFile`]: the stored msgs' metadata in binary, beside the log (`DIR/db/meta`), so a
//! restarted peer builds its tangles without reading and parsing the msgs' JSON.
//!
//! A msg's ID is the hash of its canonical metadata, so the metadata an entry gives for an
//! ID is right for as long as that ID is stored, whatever happens to the log (erase keeps
//! the metadata, compaction and salvage move records but not IDs). The file is therefore a
//! cache, never the authority: the log alone makes writes durable. Entries are appended at
//! each flush, after the log batch is fsynced (or sooner when many wait, and when the store
//! is dropped), and are not fsynced themselves: a crash can tear or lose the newest entries,
//! never an acknowledged msg. An entry is right for its ID even if that msg's batch never
//! reached the disk (the ID names that metadata whenever it is stored). Every entry has a
//! checksum; an entry whose ID is not stored is skipped; a damaged file is cut at its first
//! bad entry (or started afresh if its header is bad), with a line in the log, and a msg
//! with no entry is read from the log as before and its entry written again.
//!
//! The bytes of the header and of an entry (layout and checks) are `side_format`'s.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use proto::msg::Metadata;

use super::file::FileSystem;
use super::format::RawId;
use super::side_format::{
    ENTRY_PREFIX_LEN, EntryParts, HEADER_LEN, IdTexts, checked_id, decode_entry, encode_entry,
    encode_header, entry_len, parse_entry,
};

/// The side file's name in the store directory.
pub const SIDE_FILE: &str = "meta";
/// Bytes read at once when a msg's entry is wanted: its neighbours (mostly the same feed,
/// in receive order) are decoded with it.
const WINDOW_BYTES: u64 = 64 << 10;
/// Bytes read at once while scanning the file on open.
const SCAN_CHUNK_BYTES: u64 = 1 << 20;
/// Entries waiting to be written beyond which they are written without waiting for a flush.
const PENDING_BYTES_MAX: usize = 256 << 10;
/// Entries beyond twice the stored msgs (deleted msgs' entries, duplicates) tolerated before
/// the file is started afresh (its entries are then written again as msgs are read).
const SLACK_ENTRIES: u64 = 4096;
const NO_ENTRY: u64 = u64::MAX;

/// What opening the side file found (for tests and diagnostics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideReport {
    /// Entries that name a stored msg.
    pub entries_used: u64,
    /// Where the file was damaged (the entries from there on were dropped), if it was.
    pub damaged_at: Option<u64>,
    /// Whether the file was started afresh (bad header, or too many dead entries).
    pub restarted: bool,
    /// Why the file is not used at all, if it is not.
    pub unused: Option<String>,
    /// Msgs whose metadata was read from the file since it was opened.
    pub read_from_side: u64,
    /// Msgs whose metadata was read from the log instead (no usable entry) since then.
    pub read_from_log: u64,
}

/// The side file of one store.
#[derive(Debug)]
pub(super) struct SideFile {
    path: PathBuf,
    fs: FileSystem,
    writable: bool,
    state: RefCell<State>,
}

#[derive(Debug, Default)]
struct State {
    /// `None` once the file is not used (absent for a reader, or a write failed).
    file: Option<File>,
    /// Where the next entry goes: the end of the whole entries.
    end: u64,
    /// Entries not written yet, to go at `end`.
    pending: Vec<u8>,
    /// By index slot: where its entry starts, or [`NO_ENTRY`].
    positions: Vec<u64>,
    report: SideReport,
}

impl SideFile {
    /// Opens (a writer creates) the side file of the store in `dir`. Never fails: a file
    /// that cannot be used is not used (a writer says so in the log).
    pub(super) fn open(dir: &Path, writable: bool) -> Self {
        let path = dir.join(SIDE_FILE);
        let side = Self {
            path,
            // Unlike the log, no injected faults: the store's fault tests count the log's
            // bytes and opens, and a failing side file only costs speed.
            fs: FileSystem::new(None),
            writable,
            state: RefCell::new(State::default()),
        };
        if let Err(reason) = side.open_file() {
            side.give_up(&reason);
        }
        side
    }

    fn open_file(&self) -> Result<(), String> {
        let mut options = OpenOptions::new();
        options.read(true);
        if self.writable {
            options.write(true).create(true).truncate(false);
        } else if !self.path.exists() {
            return Err("no side file".to_owned());
        }
        let file = self
            .fs
            .open(&self.path, &options, "open")
            .map_err(|err| err.to_string())?;
        let len = file.metadata().map_err(|err| err.to_string())?.len();
        let mut header = [0u8; 16];
        let header_ok = len >= HEADER_LEN
            && self
                .fs
                .read_exact_at(&file, &self.path, &mut header, 0)
                .is_ok()
            && header == encode_header();
        let mut state = self.state.borrow_mut();
        state.end = HEADER_LEN;
        if !header_ok {
            if !self.writable {
                return Err("the side file's header is not whole".to_owned());
            }
            if len > 0 {
                warn(&self.path, "its header is damaged; starting it afresh");
                state.report.restarted = true;
            }
            self.fs
                .set_len(&file, &self.path, 0)
                .and_then(|()| self.fs.write_all_at(&file, &self.path, &encode_header(), 0))
                .map_err(|err| err.to_string())?;
        }
        state.file = Some(file);
        Ok(())
    }

    /// Stops using the file (a failed write leaves its end unknown).
    fn give_up(&self, reason: &str) {
        let mut state = self.state.borrow_mut();
        if self.writable {
            warn(&self.path, &format!("not used: {reason}"));
        }
        state.file = None;
        state.pending.clear();
        state.positions.clear();
        state.report.unused = Some(reason.to_owned());
    }

    /// What opening found.
    pub(super) fn report(&self) -> SideReport {
        self.state.borrow().report.clone()
    }

    /// Reads the whole file and notes where the entry of each stored msg is. `slot_of`
    /// gives the index slot of a stored msg; `slots` is how many slots the index has, and
    /// `live` how many msgs are stored. Damage cuts the file (a writer) or ends the scan.
    pub(super) fn scan(&self, slots: usize, live: u64, slot_of: impl Fn(&RawId) -> Option<u32>) {
        let (end, damaged, entries) = {
            let mut state = self.state.borrow_mut();
            let Some(file) = state.file.as_ref() else {
                return;
            };
            let mut positions = vec![NO_ENTRY; slots];
            let mut used = 0;
            let scanned = scan_entries(&self.fs, file, &self.path, |position, id| {
                let Some(slot) = slot_of(id) else {
                    return;
                };
                if let Some(at) = positions.get_mut(usize::try_from(slot).unwrap_or(usize::MAX)) {
                    if *at == NO_ENTRY {
                        used += 1;
                    }
                    *at = position;
                }
            });
            state.positions = positions;
            state.report.entries_used = used;
            scanned
        };
        if let Some(at) = damaged {
            self.state.borrow_mut().report.damaged_at = Some(at);
            if self.writable {
                warn(
                    &self.path,
                    &format!(
                        "damaged at byte {at}; cutting it there (its msgs are read from the log and noted again)"
                    ),
                );
                self.cut(at);
            }
        }
        let mut end = end;
        if self.writable && entries > live.saturating_mul(2).saturating_add(SLACK_ENTRIES) {
            warn(
                &self.path,
                &format!("{entries} entries for {live} stored msgs; starting it afresh"),
            );
            self.cut(HEADER_LEN);
            let mut state = self.state.borrow_mut();
            state.positions.iter_mut().for_each(|at| *at = NO_ENTRY);
            state.report.restarted = true;
            state.report.entries_used = 0;
            end = HEADER_LEN;
        }
        self.state.borrow_mut().end = end;
    }

    fn cut(&self, at: u64) {
        let failed = {
            let state = self.state.borrow();
            let Some(file) = state.file.as_ref() else {
                return;
            };
            self.fs.set_len(file, &self.path, at).err()
        };
        match failed {
            Some(err) => self.give_up(&err.to_string()),
            None => self.state.borrow_mut().end = at,
        }
    }

    /// Counts a msg's metadata read from the log (no usable entry).
    pub(super) fn count_log_read(&self) {
        self.state.borrow_mut().report.read_from_log += 1;
    }

    /// Queues the entry of the msg in index slot `slot` (a writer only, once per slot).
    pub(super) fn note(&self, slot: u32, id: &RawId, metadata: &Metadata) {
        if !self.writable {
            return;
        }
        let full = {
            let mut state = self.state.borrow_mut();
            if state.file.is_none() {
                return;
            }
            let slot = usize::try_from(slot).unwrap_or(usize::MAX);
            if state.positions.len() <= slot {
                state.positions.resize(slot + 1, NO_ENTRY);
            }
            if state.positions.get(slot) != Some(&NO_ENTRY) {
                return;
            }
            let at = state.end + u64::try_from(state.pending.len()).unwrap_or(u64::MAX);
            if !encode_entry(&mut state.pending, id, metadata) {
                return;
            }
            if let Some(position) = state.positions.get_mut(slot) {
                *position = at;
            }
            state.pending.len() > PENDING_BYTES_MAX
        };
        if full {
            self.write_pending();
        }
    }

    /// Writes the queued entries (at each flush, after the log's fsync; sooner when many
    /// wait; on drop). Not fsynced: see the module docs.
    pub(super) fn write_pending(&self) {
        let failed = {
            let mut state = self.state.borrow_mut();
            if state.pending.is_empty() {
                return;
            }
            let Some(file) = state.file.as_ref() else {
                state.pending.clear();
                return;
            };
            match self
                .fs
                .write_all_at(file, &self.path, &state.pending, state.end)
            {
                Ok(()) => {
                    state.end += u64::try_from(state.pending.len()).unwrap_or(u64::MAX);
                    state.pending.clear();
                    None
                }
                Err(err) => Some(err.to_string()),
            }
        };
        if let Some(reason) = failed {
            self.give_up(&reason);
        }
    }

    /// Hands `visit` the ID and metadata of the msg in index slot `slot`, then of the
    /// entries written after it (up to a window); returns how many, 0 when the slot has no
    /// written entry or it does not read back whole (then the log is read instead).
    pub(super) fn window(&self, slot: u32, visit: impl FnMut(RawId, Metadata)) -> u64 {
        let read = self.read_window(slot, visit).unwrap_or(0);
        self.state.borrow_mut().report.read_from_side += read;
        read
    }

    fn read_window(&self, slot: u32, mut visit: impl FnMut(RawId, Metadata)) -> Option<u64> {
        let state = self.state.borrow();
        let file = state.file.as_ref()?;
        let start = *state
            .positions
            .get(usize::try_from(slot).ok()?)
            .filter(|at| **at != NO_ENTRY && **at < state.end)?;
        let len = usize::try_from(WINDOW_BYTES.min(state.end - start)).ok()?;
        let mut bytes = vec![0u8; len];
        self.fs
            .read_exact_at(file, &self.path, &mut bytes, start)
            .ok()?;
        let first = entry_len(&bytes)?;
        if first > bytes.len() {
            // An entry larger than the window: read it alone.
            bytes.resize(first, 0);
            self.fs
                .read_exact_at(file, &self.path, &mut bytes, start)
                .ok()?;
        }
        drop(state);
        let mut read = 0;
        let mut rest = bytes.as_slice();
        let mut ids = IdTexts::default();
        while let Some(len) = entry_len(rest) {
            let Some((entry, after)) = rest.split_at_checked(len) else {
                break;
            };
            let Some(decoded) = decode_entry(entry, &mut ids) else {
                break;
            };
            visit(decoded.0, decoded.1);
            read += 1;
            rest = after;
        }
        Some(read)
    }
}

impl SideFile {
    /// Hands `visit(at, entry)` the written entry of each index slot `slots[at]`, reading the
    /// file in order, a chunk at a time (a tangle's members sit together, in receive order);
    /// returns the positions in `slots` with no entry that reads back whole (their msgs are
    /// read from the log instead).
    pub(super) fn entries_of(
        &self,
        slots: &[u32],
        mut visit: impl FnMut(usize, &EntryParts<'_>),
    ) -> Vec<usize> {
        let mut wanted: Vec<(u64, usize)> = Vec::with_capacity(slots.len());
        let mut missing = Vec::new();
        {
            let state = self.state.borrow();
            for (at, slot) in slots.iter().enumerate() {
                match usize::try_from(*slot)
                    .ok()
                    .and_then(|slot| state.positions.get(slot))
                    .filter(|position| **position != NO_ENTRY && **position < state.end)
                {
                    Some(position) => wanted.push((*position, at)),
                    None => missing.push(at),
                }
            }
        }
        wanted.sort_unstable();
        let mut chunk = Chunk::default();
        let mut read = 0;
        for (position, at) in wanted {
            match chunk.entry_at(self, position).and_then(parse_entry) {
                Some(entry) => {
                    visit(at, &entry);
                    read += 1;
                }
                None => missing.push(at),
            }
        }
        self.state.borrow_mut().report.read_from_side += read;
        missing.sort_unstable();
        missing
    }
}

/// Bytes of the side file read at once by [`SideFile::entries_of`].
#[derive(Default)]
struct Chunk {
    start: u64,
    bytes: Vec<u8>,
}

impl Chunk {
    /// The whole entry at `position`, reading a new chunk from there if this one does not
    /// hold it.
    fn entry_at(&mut self, side: &SideFile, position: u64) -> Option<&[u8]> {
        if self.held(position).is_none() && self.read_at(side, position).is_none() {
            // Never parse what a failed read left.
            self.bytes.clear();
            return None;
        }
        self.held(position)
    }

    fn read_at(&mut self, side: &SideFile, position: u64) -> Option<()> {
        {
            let state = side.state.borrow();
            let file = state.file.as_ref()?;
            let len =
                usize::try_from(SCAN_CHUNK_BYTES.min(state.end.checked_sub(position)?)).ok()?;
            self.start = position;
            self.bytes.resize(len, 0);
            side.fs
                .read_exact_at(file, &side.path, &mut self.bytes, position)
                .ok()?;
            if let Some(need) = entry_len(&self.bytes).filter(|need| *need > self.bytes.len()) {
                // An entry larger than a chunk: read it alone.
                self.bytes.resize(need, 0);
                side.fs
                    .read_exact_at(file, &side.path, &mut self.bytes, position)
                    .ok()?;
            }
        }
        Some(())
    }

    fn held(&self, position: u64) -> Option<&[u8]> {
        let offset = usize::try_from(position.checked_sub(self.start)?).ok()?;
        let rest = self.bytes.get(offset..)?;
        rest.get(..entry_len(rest)?)
    }
}

impl Drop for SideFile {
    fn drop(&mut self) {
        self.write_pending();
    }
}

fn warn(path: &Path, what: &str) {
    tracing::warn!(target: "ppppp::store", path = %path.display(), "metadata side file: {what}");
}

/// Walks the entries from the header on, calling `visit(position, id)` for each whole one;
/// returns where the whole entries end, where damage starts (if any), and how many entries
/// there are.
fn scan_entries(
    fs: &FileSystem,
    file: &File,
    path: &Path,
    mut visit: impl FnMut(u64, &RawId),
) -> (u64, Option<u64>, u64) {
    let len = file.metadata().map(|meta| meta.len()).unwrap_or(0);
    let mut position = HEADER_LEN;
    let mut entries = 0;
    let mut chunk = Vec::new();
    while position < len {
        let damaged = (position, Some(position), entries);
        chunk.resize(
            usize::try_from(SCAN_CHUNK_BYTES.min(len - position)).unwrap_or(0),
            0,
        );
        if fs.read_exact_at(file, path, &mut chunk, position).is_err() {
            return damaged;
        }
        let mut offset = 0;
        while let Some(rest) = chunk
            .get(offset..)
            .filter(|rest| rest.len() >= ENTRY_PREFIX_LEN)
        {
            let at = position + offset as u64;
            let Some(entry) = entry_len(rest).map(|need| rest.get(..need)) else {
                return (at, Some(at), entries);
            };
            let Some(entry) = entry else {
                break;
            };
            let Some(id) = checked_id(entry) else {
                return (at, Some(at), entries);
            };
            visit(at, &id);
            entries += 1;
            offset += entry.len();
        }
        if offset == 0 {
            // Nothing whole in the chunk: an entry larger than a chunk, or the file ends
            // inside one.
            let Some(need) = entry_len(&chunk).filter(|need| *need as u64 <= len - position) else {
                return damaged;
            };
            chunk.resize(need, 0);
            if fs.read_exact_at(file, path, &mut chunk, position).is_err() {
                return damaged;
            }
            let Some(id) = checked_id(&chunk) else {
                return damaged;
            };
            visit(position, &id);
            entries += 1;
            offset = need;
        }
        position += offset as u64;
    }
    (position, None, entries)
}
