//! The bytes of the log file (`docs/store-format.md` is the normative description; this
//! module is its only implementation). Pure encoding and decoding, no I/O.
//!
//! ```text
//! file    := file_header batch*
//! batch   := batch_header body                  (one group commit, one write, one fsync)
//! body    := record*
//! record  := record_len u32 | record_crc u32 | kind u8 | payload
//! ```
//! Every integer is little-endian. A batch is the unit of atomicity: recovery keeps it whole
//! or cuts it whole.

use std::collections::BTreeMap;

use proto::ids::MsgId;
use proto::store::Ghosts;

/// The first bytes of every log file.
pub const FILE_MAGIC: [u8; 8] = *b"PPPPPLOG";
/// The format this code writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the file header.
pub const FILE_HEADER_LEN: usize = 32;
/// Length of a batch header.
pub const BATCH_HEADER_LEN: usize = 16;
/// Marks a batch header. `0xFF` and `0xFE` never occur in UTF-8, so no msg JSON (stored inside
/// batches) can hold a byte string that looks like a batch header.
pub const BATCH_MAGIC: [u8; 4] = [0xFF, b'B', b'T', 0xFE];
/// Largest batch body. Recovery refuses a header that claims more, and a writer seals its
/// batch before it would grow past this.
pub const BATCH_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Length of a record's `record_len` and `record_crc` fields.
pub const RECORD_PREFIX_LEN: usize = 8;
/// Largest record (prefix included), so that any record fits an empty batch. A msg is at
/// most 2 × 65,535 bytes of canonical JSON plus escapes, far below this.
pub const RECORD_BYTES_MAX: usize = BATCH_BODY_BYTES_MAX / 2;
/// Length of a raw msg ID (32 hash bytes; base58 only in JSON).
pub const ID_LEN: usize = 32;

/// A msg ID as the log and the index hold it: its 32 raw bytes.
pub type RawId = [u8; ID_LEN];

/// Record kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A new msg with a new sequence number.
    Append,
    /// The erased copy of a stored msg; same sequence number, supersedes the earlier copy.
    Erase,
    /// A msg that supersedes a stored copy, with a new sequence number.
    Replace,
    /// A msg removed.
    Delete,
    /// The whole ghost set of one tangle (empty: none).
    Ghosts,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Self::Append => 1,
            Self::Erase => 2,
            Self::Replace => 3,
            Self::Delete => 4,
            Self::Ghosts => 5,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Append),
            2 => Some(Self::Erase),
            3 => Some(Self::Replace),
            4 => Some(Self::Delete),
            5 => Some(Self::Ghosts),
            _ => None,
        }
    }
}

/// Bit of `flags` in a msg record: the msg has data (not erased, not a moot).
const FLAG_HAS_DATA: u8 = 1;

/// The file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// The first sequence number this log may assign after its records: compaction drops
    /// deleted records, and this keeps their sequence numbers from being reused.
    pub seq_floor: u64,
}

/// Why a file header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Shorter than a header.
    Short,
    /// Not our magic: not a ppppp log.
    Foreign,
    /// Our magic, another format version.
    Version(u32),
    /// Our magic and version, but the checksum fails.
    Checksum,
}

impl FileHeader {
    /// The header bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut out = [0u8; FILE_HEADER_LEN];
        let mut writer = Writer::new(&mut out);
        writer.bytes(&FILE_MAGIC);
        writer.u32(FORMAT_VERSION);
        writer.u32(u32_of(FILE_HEADER_LEN));
        writer.u64(self.seq_floor);
        writer.u32(0);
        let crc = crc32c::crc32c(writer.written());
        writer.u32(crc);
        out
    }

    /// Reads a header.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<Self, HeaderProblem> {
        let mut reader = Reader::new(bytes);
        let magic = reader.array::<8>().ok_or(HeaderProblem::Short)?;
        if magic != FILE_MAGIC {
            return Err(HeaderProblem::Foreign);
        }
        let version = reader.u32().ok_or(HeaderProblem::Short)?;
        if version != FORMAT_VERSION {
            return Err(HeaderProblem::Version(version));
        }
        let header_len = reader.u32().ok_or(HeaderProblem::Short)?;
        let seq_floor = reader.u64().ok_or(HeaderProblem::Short)?;
        let _reserved = reader.u32().ok_or(HeaderProblem::Short)?;
        let checked = bytes
            .get(..FILE_HEADER_LEN - 4)
            .ok_or(HeaderProblem::Short)?;
        let crc = reader.u32().ok_or(HeaderProblem::Short)?;
        if crc != crc32c::crc32c(checked) || header_len != u32_of(FILE_HEADER_LEN) {
            return Err(HeaderProblem::Checksum);
        }
        Ok(Self { seq_floor })
    }
}

/// A batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Length of the body.
    pub body_len: u32,
    /// crc32c of the body.
    pub body_crc: u32,
}

impl BatchHeader {
    /// The header of `body`.
    #[must_use]
    pub fn of(body: &[u8]) -> Self {
        Self {
            body_len: u32_of(body.len()),
            body_crc: crc32c::crc32c(body),
        }
    }

    /// The header bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; BATCH_HEADER_LEN] {
        let mut out = [0u8; BATCH_HEADER_LEN];
        let mut writer = Writer::new(&mut out);
        writer.bytes(&BATCH_MAGIC);
        writer.u32(self.body_len);
        writer.u32(self.body_crc);
        let crc = crc32c::crc32c(writer.written());
        writer.u32(crc);
        out
    }

    /// Reads a header; `None` when it is not a whole, intact batch header (magic, checksum,
    /// and a body length within [`BATCH_BODY_BYTES_MAX`]).
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader::new(bytes);
        let magic = reader.array::<4>()?;
        let body_len = reader.u32()?;
        let body_crc = reader.u32()?;
        let crc = reader.u32()?;
        let checked = bytes.get(..BATCH_HEADER_LEN - 4)?;
        let fits = usize::try_from(body_len).is_ok_and(|len| len <= BATCH_BODY_BYTES_MAX);
        (magic == BATCH_MAGIC && crc == crc32c::crc32c(checked) && fits)
            .then_some(Self { body_len, body_crc })
    }
}

/// The fields of a msg record (append, erase, replace) the index needs, without its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgHead<'a> {
    /// Receive order.
    pub seq: u64,
    /// The msg ID.
    pub id: RawId,
    /// Whether the msg has data.
    pub has_data: bool,
    /// The tangles the msg's metadata lists (borrowed from the record, so replay allocates
    /// nothing per record).
    pub tangles: &'a [RawId],
    /// Length of the msg's JSON.
    pub json_len: u32,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    /// Append, erase or replace, with the msg's JSON.
    Msg {
        /// Which of the three.
        kind: Kind,
        /// Index fields.
        head: MsgHead<'a>,
        /// The msg's JSON.
        json: &'a [u8],
    },
    /// A msg removed.
    Delete {
        /// The msg ID.
        id: RawId,
    },
    /// A tangle's ghost set replaced.
    Ghosts {
        /// The tangle.
        tangle: RawId,
        /// The ghosts (ID → depth).
        ghosts: Vec<(RawId, u64)>,
    },
}

/// Why bytes did not decode as a record (inside a batch whose checksum passed, so this is
/// corruption or a bug, never a torn write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem(pub &'static str);

/// Appends a msg record to `out`; returns its offset within `out`.
///
/// # Panics
/// Never for a `Kind` other than `Delete`/`Ghosts`; those are a caller bug.
pub fn push_msg_record(
    out: &mut Vec<u8>,
    kind: Kind,
    seq: u64,
    id: &RawId,
    tangles: &[RawId],
    has_data: bool,
    json: &[u8],
) -> usize {
    assert!(
        matches!(kind, Kind::Append | Kind::Erase | Kind::Replace),
        "a msg record is an append, erase or replace"
    );
    let start = begin_record(out, kind);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(id);
    out.push(if has_data { FLAG_HAS_DATA } else { 0 });
    out.extend_from_slice(
        &u16::try_from(tangles.len())
            .expect("invariant: the caller checked the tangle count")
            .to_le_bytes(),
    );
    for tangle in tangles {
        out.extend_from_slice(tangle);
    }
    out.extend_from_slice(
        &u32::try_from(json.len())
            .expect("invariant: the caller checked the record size")
            .to_le_bytes(),
    );
    out.extend_from_slice(json);
    end_record(out, start);
    start
}

/// Appends a delete record to `out`; returns its offset within `out`.
pub fn push_delete_record(out: &mut Vec<u8>, id: &RawId) -> usize {
    let start = begin_record(out, Kind::Delete);
    out.extend_from_slice(id);
    end_record(out, start);
    start
}

/// Appends a ghosts record to `out`; returns its offset within `out`.
pub fn push_ghosts_record(out: &mut Vec<u8>, tangle: &RawId, ghosts: &[(RawId, u64)]) -> usize {
    let start = begin_record(out, Kind::Ghosts);
    out.extend_from_slice(tangle);
    out.extend_from_slice(
        &u32::try_from(ghosts.len())
            .expect("invariant: the caller checked the ghost count")
            .to_le_bytes(),
    );
    for (id, depth) in ghosts {
        out.extend_from_slice(id);
        out.extend_from_slice(&depth.to_le_bytes());
    }
    end_record(out, start);
    start
}

/// Bytes a msg record will take, to check [`RECORD_BYTES_MAX`] before encoding.
#[must_use]
pub fn msg_record_len(tangle_count: usize, json_len: usize) -> usize {
    RECORD_PREFIX_LEN + 1 + 8 + ID_LEN + 1 + 2 + tangle_count * ID_LEN + 4 + json_len
}

/// Bytes a ghosts record will take.
#[must_use]
pub fn ghosts_record_len(ghost_count: usize) -> usize {
    RECORD_PREFIX_LEN + 1 + ID_LEN + 4 + ghost_count * (ID_LEN + 8)
}

fn begin_record(out: &mut Vec<u8>, kind: Kind) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_PREFIX_LEN]);
    out.push(kind.code());
    start
}

/// Fills in the length and checksum of the record that starts at `start`.
fn end_record(out: &mut [u8], start: usize) {
    let content_start = start + RECORD_PREFIX_LEN;
    let content = out.get(content_start..).unwrap_or_default();
    let len = u32_of(content.len());
    let crc = crc32c::crc32c(content);
    if let Some(prefix) = out.get_mut(start..content_start) {
        prefix[..4].copy_from_slice(&len.to_le_bytes());
        prefix[4..].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Rewrites the kind of a whole encoded msg record (compaction turns erases and replaces
/// into appends) and fixes its checksum.
///
/// # Errors
/// When `record` is not a msg record.
pub fn rekind_msg_record(record: &mut [u8], kind: Kind) -> Result<(), RecordProblem> {
    let old = record
        .get(RECORD_PREFIX_LEN)
        .copied()
        .and_then(Kind::from_code)
        .ok_or(RecordProblem("record without a kind"))?;
    if !matches!(old, Kind::Append | Kind::Erase | Kind::Replace) {
        return Err(RecordProblem("not a msg record"));
    }
    if let Some(code) = record.get_mut(RECORD_PREFIX_LEN) {
        *code = kind.code();
    }
    end_record(record, 0);
    Ok(())
}

/// The length (prefix included) of the record at the start of `bytes`, if the prefix is
/// there and the length is plausible.
#[must_use]
pub fn record_len_at(bytes: &[u8]) -> Option<usize> {
    let len = usize::try_from(Reader::new(bytes).u32()?).ok()?;
    (len >= 1 && len + RECORD_PREFIX_LEN <= RECORD_BYTES_MAX).then_some(len + RECORD_PREFIX_LEN)
}

/// Whether [`decode_record`] checks the record's checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// Check it (a record read on its own).
    Verify,
    /// The caller checked a checksum that covers the record (its batch's, on replay).
    Covered,
}

/// Decodes the whole record `bytes` (exactly one record, prefix included).
///
/// # Errors
/// [`RecordProblem`].
pub fn decode_record(bytes: &[u8], checksum: Checksum) -> Result<Record<'_>, RecordProblem> {
    let mut reader = Reader::new(bytes);
    let len = reader.u32().ok_or(RecordProblem("short record prefix"))?;
    let crc = reader.u32().ok_or(RecordProblem("short record prefix"))?;
    let content = bytes
        .get(RECORD_PREFIX_LEN..)
        .ok_or(RecordProblem("short record"))?;
    if usize::try_from(len).ok() != Some(content.len()) {
        return Err(RecordProblem("record length mismatch"));
    }
    if checksum == Checksum::Verify && crc32c::crc32c(content) != crc {
        return Err(RecordProblem("record checksum mismatch"));
    }
    let kind = reader
        .u8()
        .and_then(Kind::from_code)
        .ok_or(RecordProblem("unknown record kind"))?;
    let record = match kind {
        Kind::Append | Kind::Erase | Kind::Replace => {
            let seq = reader.u64().ok_or(RecordProblem("short msg record"))?;
            let id = reader
                .array::<ID_LEN>()
                .ok_or(RecordProblem("short msg record"))?;
            let flags = reader.u8().ok_or(RecordProblem("short msg record"))?;
            if flags & !FLAG_HAS_DATA != 0 {
                return Err(RecordProblem("unknown msg record flags"));
            }
            let tangle_count = reader.u16().ok_or(RecordProblem("short msg record"))?;
            let tangle_bytes = reader
                .bytes(usize::from(tangle_count) * ID_LEN)
                .ok_or(RecordProblem("short tangle list"))?;
            let (tangles, rest) = tangle_bytes.as_chunks::<ID_LEN>();
            debug_assert!(rest.is_empty(), "whole IDs were taken");
            let json_len = reader.u32().ok_or(RecordProblem("short msg record"))?;
            let json = reader.rest();
            if usize::try_from(json_len).ok() != Some(json.len()) {
                return Err(RecordProblem("msg JSON length mismatch"));
            }
            Record::Msg {
                kind,
                head: MsgHead {
                    seq,
                    id,
                    has_data: flags & FLAG_HAS_DATA != 0,
                    tangles,
                    json_len,
                },
                json,
            }
        }
        Kind::Delete => {
            let id = reader
                .array::<ID_LEN>()
                .ok_or(RecordProblem("short delete"))?;
            if reader.remaining() != 0 {
                return Err(RecordProblem("trailing bytes in delete"));
            }
            Record::Delete { id }
        }
        Kind::Ghosts => {
            let tangle = reader
                .array::<ID_LEN>()
                .ok_or(RecordProblem("short ghosts"))?;
            let count = reader.u32().ok_or(RecordProblem("short ghosts"))?;
            let count = usize::try_from(count).map_err(|_| RecordProblem("ghost count"))?;
            if reader.remaining() != count.saturating_mul(ID_LEN + 8) {
                return Err(RecordProblem("ghost count mismatch"));
            }
            let mut ghosts = Vec::with_capacity(count);
            for _ in 0..count {
                let id = reader
                    .array::<ID_LEN>()
                    .ok_or(RecordProblem("short ghost"))?;
                let depth = reader.u64().ok_or(RecordProblem("short ghost"))?;
                ghosts.push((id, depth));
            }
            Record::Ghosts { tangle, ghosts }
        }
    };
    Ok(record)
}

/// Splits a batch body into its records.
///
/// # Errors
/// When the records do not tile the body exactly.
pub fn split_body(body: &[u8]) -> Result<Vec<std::ops::Range<usize>>, RecordProblem> {
    let mut ranges = Vec::new();
    let mut position = 0;
    while position < body.len() {
        let rest = body.get(position..).unwrap_or_default();
        let len = record_len_at(rest).ok_or(RecordProblem("bad record length"))?;
        if len > rest.len() {
            return Err(RecordProblem("record runs past its batch"));
        }
        ranges.push(position..position + len);
        position += len;
    }
    Ok(ranges)
}

/// The ghosts of a record as the `Store` trait shows them.
#[must_use]
pub fn ghosts_from_raw(raw: &[(RawId, u64)]) -> Ghosts {
    raw.iter()
        .map(|(id, depth)| (MsgId::from_bytes(id), *depth))
        .collect::<BTreeMap<_, _>>()
}

/// The ghosts in record form.
#[must_use]
pub fn ghosts_to_raw(ghosts: &Ghosts) -> Vec<(RawId, u64)> {
    ghosts
        .iter()
        .map(|(id, depth)| (id.to_bytes(), *depth))
        .collect()
}

/// A length that the format bounds well below `u32::MAX`.
fn u32_of(len: usize) -> u32 {
    u32::try_from(len).expect("invariant: lengths in the log are bounded by BATCH_BODY_BYTES_MAX")
}

/// Writes fixed-size fields into a buffer that is known to be large enough.
struct Writer<'a> {
    out: &'a mut [u8],
    position: usize,
}

impl<'a> Writer<'a> {
    fn new(out: &'a mut [u8]) -> Self {
        Self { out, position: 0 }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        let end = self.position + bytes.len();
        self.out
            .get_mut(self.position..end)
            .expect("invariant: headers are written into buffers of their exact size")
            .copy_from_slice(bytes);
        self.position = end;
    }

    fn u32(&mut self, value: u32) {
        self.bytes(&value.to_le_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.bytes(&value.to_le_bytes());
    }

    fn written(&self) -> &[u8] {
        self.out.get(..self.position).unwrap_or_default()
    }
}

/// Reads fixed-size fields; every read is `None` past the end.
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    pub(super) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let slice = self
            .bytes
            .get(self.position..self.position.checked_add(N)?)?;
        self.position += N;
        slice.try_into().ok()
    }

    pub(super) fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        let slice = self
            .bytes
            .get(self.position..self.position.checked_add(len)?)?;
        self.position += len;
        Some(slice)
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[byte]| byte)
    }

    pub(super) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub(super) fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    pub(super) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.position)
    }

    pub(super) fn rest(&mut self) -> &'a [u8] {
        let rest = self.bytes.get(self.position..).unwrap_or_default();
        self.position = self.bytes.len();
        rest
    }
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("position", &self.position)
            .field("len", &self.bytes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_header_round_trips_and_names_its_problems() {
        let header = FileHeader { seq_floor: 42 };
        let bytes = header.encode();
        assert_eq!(FileHeader::decode(&bytes), Ok(header));
        assert_eq!(FileHeader::decode(&bytes[..10]), Err(HeaderProblem::Short));
        let mut foreign = bytes;
        foreign[0] = b'X';
        assert_eq!(FileHeader::decode(&foreign), Err(HeaderProblem::Foreign));
        let mut version = bytes;
        version[8] = 9;
        assert_eq!(FileHeader::decode(&version), Err(HeaderProblem::Version(9)));
        let mut flipped = bytes;
        flipped[16] ^= 1;
        assert_eq!(FileHeader::decode(&flipped), Err(HeaderProblem::Checksum));
    }

    #[test]
    fn records_round_trip() {
        let mut body = Vec::new();
        let id = [7u8; ID_LEN];
        let tangle = [9u8; ID_LEN];
        push_msg_record(&mut body, Kind::Append, 5, &id, &[tangle], true, b"{}");
        push_delete_record(&mut body, &id);
        push_ghosts_record(&mut body, &tangle, &[(id, 3)]);
        let ranges = split_body(&body).expect("tiles");
        assert_eq!(ranges.len(), 3);
        let first = decode_record(&body[ranges[0].clone()], Checksum::Verify).expect("msg record");
        assert_eq!(
            first,
            Record::Msg {
                kind: Kind::Append,
                head: MsgHead {
                    seq: 5,
                    id,
                    has_data: true,
                    tangles: &[tangle],
                    json_len: 2
                },
                json: b"{}"
            }
        );
        assert_eq!(
            body[ranges[0].clone()].len(),
            msg_record_len(1, 2),
            "msg_record_len predicts the size"
        );
        assert_eq!(
            decode_record(&body[ranges[1].clone()], Checksum::Verify),
            Ok(Record::Delete { id })
        );
        assert_eq!(
            decode_record(&body[ranges[2].clone()], Checksum::Verify),
            Ok(Record::Ghosts {
                tangle,
                ghosts: vec![(id, 3)]
            })
        );
        assert_eq!(body[ranges[2].clone()].len(), ghosts_record_len(1));
        let mut rekinded = body[ranges[0].clone()].to_vec();
        rekind_msg_record(&mut rekinded, Kind::Erase).expect("msg record");
        assert!(matches!(
            decode_record(&rekinded, Checksum::Verify),
            Ok(Record::Msg {
                kind: Kind::Erase,
                ..
            })
        ));
        let mut flipped = body[ranges[0].clone()].to_vec();
        flipped[20] ^= 1;
        assert_eq!(
            decode_record(&flipped, Checksum::Verify),
            Err(RecordProblem("record checksum mismatch"))
        );
    }

    #[test]
    fn batch_header_checks_everything() {
        let header = BatchHeader::of(b"abc");
        let bytes = header.encode();
        assert_eq!(BatchHeader::decode(&bytes), Some(header));
        for index in 0..BATCH_HEADER_LEN {
            let mut flipped = bytes;
            flipped[index] ^= 0x10;
            assert_eq!(BatchHeader::decode(&flipped), None, "byte {index}");
        }
        assert_eq!(BatchHeader::decode(&bytes[..15]), None);
    }
}
