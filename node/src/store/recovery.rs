//! Reading a log on open: check the header, replay every intact batch into an [`Index`], and
//! decide what a damaged batch means.
//!
//! The writer has at most one batch in flight: it fsyncs each batch before it writes the
//! next one, and cuts any damaged tail (and fsyncs the cut) before it appends. So a crash can
//! only damage the *last* batch. Recovery therefore treats a damaged batch as a torn tail
//! when the damaged region is no longer than one batch can be and no intact batch follows it
//! anywhere in the file, and as corruption — reported, never skipped — otherwise.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use proto::ids::MsgId;

use super::error::StoreError;
use super::file::FileSystem;
use super::format::{
    self, BATCH_BODY_BYTES_MAX, BATCH_HEADER_LEN, BATCH_MAGIC, BatchHeader, Checksum,
    FILE_HEADER_LEN, FORMAT_VERSION, FileHeader, HeaderProblem, Record,
};
use super::index::Index;

/// Read buffer for the sequential replay; large enough that small batches cost no syscall
/// each.
const REPLAY_BUFFER_BYTES: usize = 1024 * 1024;
/// A msg record is rarely smaller than this (a moot's is about 400 bytes); the file length
/// divided by it sizes the index tables up front. Pages of capacity that a log of larger
/// records leaves unused are never touched, so they cost address space, not memory.
const RECORD_BYTES_TYPICAL_MIN: u64 = 512;
/// Chunk size when searching a damaged region for an intact batch.
const SEARCH_CHUNK_BYTES: usize = 1024 * 1024;

/// What reading a log found.
#[derive(Debug)]
pub struct Scanned {
    /// The index of every intact batch.
    pub index: Index,
    /// Bytes of the file that hold the header and intact batches.
    pub valid_len: u64,
    /// The file's length when it was read.
    pub file_len: u64,
    /// Whether the damaged batch at `valid_len` (if any) certainly is a write a crash
    /// interrupted: the file ends inside its header, or before the end its header gives.
    /// Otherwise (a header that does not decode, a body that fails its checksum) a crash
    /// can have left it too (the file grew before its blocks were written), but so can
    /// damage to an acknowledged batch.
    pub damaged_batch_short: bool,
}

impl Scanned {
    /// Bytes after the intact prefix (a torn tail), 0 when none.
    #[must_use]
    pub fn torn_bytes(&self) -> u64 {
        self.file_len - self.valid_len
    }
}

/// Reads the log `file` at `path`.
///
/// # Errors
/// [`StoreError::Foreign`], [`StoreError::UnsupportedVersion`] or [`StoreError::Corrupt`] for
/// a bad header or damage that is not a torn tail; [`StoreError::Io`].
pub fn scan(fs: &FileSystem, file: &File, path: &Path) -> Result<Scanned, StoreError> {
    let file_len = file
        .metadata()
        .map_err(|source| StoreError::io("stat", path, source))?
        .len();
    let mut header_bytes = [0u8; FILE_HEADER_LEN];
    let header_len = u64::try_from(FILE_HEADER_LEN).unwrap_or(u64::MAX);
    if file_len < header_len {
        return Err(StoreError::corrupt(
            path,
            0,
            format!("the file has {file_len} bytes, less than a {FILE_HEADER_LEN}-byte header"),
        ));
    }
    fs.read_exact_at(file, path, &mut header_bytes, 0)?;
    let header = FileHeader::decode(&header_bytes).map_err(|problem| match problem {
        HeaderProblem::Foreign => StoreError::Foreign {
            path: path.to_path_buf(),
        },
        HeaderProblem::Version(found) => StoreError::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        },
        HeaderProblem::Short | HeaderProblem::Checksum => {
            StoreError::corrupt(path, 0, "the file header's checksum fails")
        }
    })?;
    let records_expected = usize::try_from(file_len / RECORD_BYTES_TYPICAL_MIN).unwrap_or(0);
    let mut index = Index::new(header.seq_floor, records_expected);

    let mut handle = file;
    handle
        .seek(SeekFrom::Start(header_len))
        .map_err(|source| StoreError::io("seek", path, source))?;
    let mut reader =
        BufReader::with_capacity(REPLAY_BUFFER_BYTES, handle.take(file_len - header_len));
    let mut offset = header_len;
    let mut body = Vec::new();
    let batch_header_len = u64::try_from(BATCH_HEADER_LEN).unwrap_or(u64::MAX);
    let mut damaged_batch_short = false;
    loop {
        if offset == file_len {
            break;
        }
        let batch = match read_batch(&mut reader, &mut body, file_len - offset, path)? {
            BatchRead::Intact(batch) => Some(batch),
            BatchRead::Damaged { short } => {
                damaged_batch_short = short;
                None
            }
        };
        let Some(batch) = batch else {
            // Damaged: torn tail, unless it is longer than the one batch a crash can have
            // left unfinished, or an intact batch follows.
            let batch_len_max =
                batch_header_len + u64::try_from(BATCH_BODY_BYTES_MAX).unwrap_or(u64::MAX);
            if file_len - offset > batch_len_max {
                return Err(StoreError::corrupt(
                    path,
                    offset,
                    format!(
                        "{} damaged bytes run to the end of the file, more than the one \
                         unfinished batch ({batch_len_max} bytes at most) a crash can leave",
                        file_len - offset
                    ),
                ));
            }
            if let Some(intact) = find_intact_batch(fs, file, path, offset + 1, file_len)? {
                return Err(StoreError::corrupt(
                    path,
                    offset,
                    format!(
                        "a damaged batch is followed by an intact one at byte {intact}, so \
                         this is not the torn tail of a crash"
                    ),
                ));
            }
            break;
        };
        let body_offset = offset + batch_header_len;
        replay_body(&mut index, &body, body_offset, path)?;
        offset = body_offset + u64::from(batch.body_len);
    }
    Ok(Scanned {
        index,
        valid_len: offset,
        file_len,
        damaged_batch_short,
    })
}

/// What reading one batch found.
enum BatchRead {
    /// The batch is intact; its body is in the buffer.
    Intact(BatchHeader),
    /// It is damaged; `short` when the file ends inside it (as far as its header tells).
    Damaged { short: bool },
}

/// Reads the next batch into `body`.
fn read_batch(
    reader: &mut impl Read,
    body: &mut Vec<u8>,
    remaining: u64,
    path: &Path,
) -> Result<BatchRead, StoreError> {
    let batch_header_len = u64::try_from(BATCH_HEADER_LEN).unwrap_or(u64::MAX);
    let short = BatchRead::Damaged { short: true };
    if remaining < batch_header_len {
        return Ok(short);
    }
    let mut header_bytes = [0u8; BATCH_HEADER_LEN];
    reader
        .read_exact(&mut header_bytes)
        .map_err(|source| StoreError::io("read", path, source))?;
    let Some(header) = BatchHeader::decode(&header_bytes) else {
        return Ok(BatchRead::Damaged { short: false });
    };
    if u64::from(header.body_len) > remaining - batch_header_len {
        return Ok(short);
    }
    body.clear();
    // `read_to_end` fills the buffer without zeroing it first, unlike `resize` + `read_exact`.
    let read = reader
        .by_ref()
        .take(u64::from(header.body_len))
        .read_to_end(body)
        .map_err(|source| StoreError::io("read", path, source))?;
    if u64::try_from(read).ok() != Some(u64::from(header.body_len)) {
        return Ok(short);
    }
    if crc32c::crc32c(body) == header.body_crc {
        Ok(BatchRead::Intact(header))
    } else {
        Ok(BatchRead::Damaged { short: false })
    }
}

/// Replays the records of one intact batch whose body starts at `body_offset`.
fn replay_body(
    index: &mut Index,
    body: &[u8],
    body_offset: u64,
    path: &Path,
) -> Result<(), StoreError> {
    let ranges = format::split_body(body)
        .map_err(|problem| StoreError::corrupt(path, body_offset, problem.0))?;
    for range in ranges {
        let record_offset = body_offset + u64::try_from(range.start).unwrap_or(u64::MAX);
        let bytes = body.get(range.clone()).unwrap_or_default();
        let record_len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let record = format::decode_record(bytes, Checksum::Covered)
            .map_err(|problem| StoreError::corrupt(path, record_offset, problem.0))?;
        let applied = match record {
            Record::Msg { kind, head, .. } => {
                index.apply_msg(kind, &head, record_offset, record_len)
            }
            Record::Delete { id } => index.apply_delete(&id),
            Record::Ghosts { tangle, ghosts } => {
                index.apply_ghosts(MsgId::from_bytes(&tangle), format::ghosts_from_raw(&ghosts));
                Ok(())
            }
        };
        applied.map_err(|problem| StoreError::corrupt(path, record_offset, problem.0))?;
    }
    Ok(())
}

/// The offset of the first intact batch that starts in `[from, end)`, if any.
pub(super) fn find_intact_batch(
    fs: &FileSystem,
    file: &File,
    path: &Path,
    from: u64,
    end: u64,
) -> Result<Option<u64>, StoreError> {
    let magic_len = u64::try_from(BATCH_MAGIC.len()).unwrap_or(u64::MAX);
    let mut chunk = vec![0u8; SEARCH_CHUNK_BYTES];
    let mut start = from;
    while start + magic_len <= end {
        let len = usize::try_from(
            (end - start).min(u64::try_from(SEARCH_CHUNK_BYTES).unwrap_or(u64::MAX)),
        )
        .unwrap_or(SEARCH_CHUNK_BYTES);
        let window = chunk.get_mut(..len).unwrap_or_default();
        fs.read_exact_at(file, path, window, start)?;
        for (position, candidate) in window.windows(BATCH_MAGIC.len()).enumerate() {
            if candidate != BATCH_MAGIC {
                continue;
            }
            let at = start + u64::try_from(position).unwrap_or(u64::MAX);
            if is_intact_batch(fs, file, path, at, end)? {
                return Ok(Some(at));
            }
        }
        // Overlap the chunks so a magic split across two of them is still seen.
        let advanced = u64::try_from(len).unwrap_or(u64::MAX) - (magic_len - 1);
        start += advanced.max(1);
    }
    Ok(None)
}

pub(super) fn is_intact_batch(
    fs: &FileSystem,
    file: &File,
    path: &Path,
    at: u64,
    end: u64,
) -> Result<bool, StoreError> {
    let batch_header_len = u64::try_from(BATCH_HEADER_LEN).unwrap_or(u64::MAX);
    if at + batch_header_len > end {
        return Ok(false);
    }
    let mut header_bytes = [0u8; BATCH_HEADER_LEN];
    fs.read_exact_at(file, path, &mut header_bytes, at)?;
    let Some(header) = BatchHeader::decode(&header_bytes) else {
        return Ok(false);
    };
    let body_len = u64::from(header.body_len);
    if at + batch_header_len + body_len > end {
        return Ok(false);
    }
    debug_assert!(usize::try_from(body_len).is_ok_and(|len| len <= BATCH_BODY_BYTES_MAX));
    let mut body = vec![0u8; usize::try_from(body_len).unwrap_or(0)];
    fs.read_exact_at(file, path, &mut body, at + batch_header_len)?;
    Ok(crc32c::crc32c(&body) == header.body_crc)
}
