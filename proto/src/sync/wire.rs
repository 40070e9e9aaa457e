//! The data objects of pzp-sync's `sync.connect` duplex stream (protocol.md §7.2), typed, with
//! the reference's exact JSON and every check a received object must pass.
//!
//! ```text
//! {id, phase: 1, payload: [min, max]}                                   have-range
//! {id, phase: 2, payload: {haveRange, wantRange}}
//! {id, phase: 3, payload: {bloom, wantRange}}
//! {id, phase: 4..7, payload: {bloom, msgIDs}}
//! {id, phase: 8, payload: {msgs, bloom}}
//! {id, phase: 9, payload: [msg…]}
//! ```
//!
//! Keys are written in the order the reference writes them, so everything but msg `data`
//! objects is byte-identical to what pzp-sync sends (serde_json keeps object keys sorted, so a
//! msg's `data` object is re-serialized with sorted keys: the same JSON value, which is all
//! that IDs, hashes and signatures depend on).
//!
//! [`decode`] applies the reference's receive checks in its order, and ours on top: bounded
//! counts, bounded ranges, bloom dimensions. A msg inside a payload that has the shape the
//! reference checks but does not decode (bad hash, bad signature encoding…) is dropped on its
//! own, as the reference's `db.add` would refuse it; the rest of the payload still counts.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::Value;
use thiserror::Error;

use super::bloom::{BloomError, BloomFilter};
use crate::ids::{IdError, MsgId, TangleId};
use crate::msg::{self, DigestedMsg, Msg, REQUIRED_METADATA_FIELDS};
use crate::tangle::DepthRange;
use crate::validate::ValidationError;

/// Most msg IDs one phase 4–7 payload may list.
pub const MSG_IDS_PER_PAYLOAD_MAX: usize = 1 << 16;

/// Most msgs one phase 8 or 9 payload may carry (we split bigger sends over several phase-9
/// payloads).
pub const MSGS_PER_PAYLOAD_MAX: usize = 1 << 16;

/// Most bytes of msg JSON (by [`msg_json_len_bound`]) one phase 8 or 9 payload we send
/// carries; more is split over further phase-9 payloads. A payload travels as one muxrpc
/// frame, and receivers bound frame bodies (ours at 8 MiB): a 10,000-msg feed of 900-byte
/// posts would not fit in one.
pub const MSG_BYTES_PER_PAYLOAD_MAX: usize = 4 * 1024 * 1024;

/// Room for one quoted base58 ID (at most 44 characters) and a separator.
const ID_JSON_LEN_MAX: usize = 48;

/// An upper bound of the length of `msg`'s JSON, from its fields (without serializing it):
/// `dataSize` is the canonical length of the data (ours differs by a few bytes per number at
/// most), and every ID is at most 44 characters.
#[must_use]
pub fn msg_json_len_bound(msg: &Msg) -> usize {
    let meta = &msg.metadata;
    let data = if msg.has_data() {
        let size = usize::try_from(meta.data_size).unwrap_or(usize::MAX);
        size.saturating_add(size / 8).saturating_add(16)
    } else {
        "null".len()
    };
    let tips = meta.account_tips.as_ref().map_or(0, Vec::len);
    // Per tangle: its ID, `{"depth":N,"prev":[...]}` (about one ID long) and the prevs.
    let links: usize = meta.tangles.values().map(|link| 2 + link.prev.len()).sum();
    // Keys, the account, dataHash, dataSize, sigkey, the 88-character sig, v.
    let fixed = 384 + meta.domain.len();
    (tips + links)
        .saturating_mul(ID_JSON_LEN_MAX)
        .saturating_add(fixed)
        .saturating_add(data)
}

/// Cuts `msgs` into payloads of at most [`MSGS_PER_PAYLOAD_MAX`] msgs and
/// [`MSG_BYTES_PER_PAYLOAD_MAX`] bytes (a msg bigger than that alone gets a payload of its
/// own); always at least one payload, possibly empty. The sync session and `sync.reconcile`
/// both send their msgs in these chunks.
pub(crate) fn payload_chunks(msgs: impl Iterator<Item = Arc<Msg>>) -> Vec<Vec<Arc<Msg>>> {
    let mut chunks = Vec::new();
    let mut chunk: Vec<Arc<Msg>> = Vec::new();
    let mut bytes = 0usize;
    for msg in msgs {
        let len = msg_json_len_bound(&msg);
        let full = chunk.len() >= MSGS_PER_PAYLOAD_MAX
            || bytes.saturating_add(len) > MSG_BYTES_PER_PAYLOAD_MAX;
        if full && !chunk.is_empty() {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
        bytes = bytes.saturating_add(len);
        chunk.push(msg);
    }
    chunks.push(chunk);
    chunks
}

/// Largest depth a range may name: JavaScript's `Number.MAX_SAFE_INTEGER`.
pub const DEPTH_MAX: u64 = 9_007_199_254_740_991;

/// The first and last phase a remote peer may send (phase 0 is a local self-call).
pub const PHASES: std::ops::RangeInclusive<u64> = 1..=9;

/// Why a received object was refused. One variant per check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// Not a JSON object (or `null`).
    #[error("not an object")]
    NotObject,
    /// A JSON array.
    #[error("is an array")]
    IsArray,
    /// `phase` is missing or not a number.
    #[error("phase isn't a number")]
    PhaseNotNumber,
    /// `phase` is a number other than 1–9.
    #[error("phase {0} is an invalid number")]
    PhaseOutOfRange(String),
    /// `phase` is 0, which only a peer's own stream may use.
    #[error("phase 0 is local-only")]
    PhaseZero,
    /// `id` is not a valid msg ID.
    #[error("id is not a valid msg id: {0}")]
    BadId(#[source] IdError),
    /// `payload` is missing or falsy.
    #[error("payload is missing")]
    MissingPayload,
    /// A range is not two integers in `0..=DEPTH_MAX`.
    #[error("{field} is not a range of two integers in 0..={max}")]
    BadRange {
        /// Which range.
        field: &'static str,
        /// The bound.
        max: u64,
    },
    /// `bloom` is missing or falsy.
    #[error("bloom is missing")]
    MissingBloom,
    /// `bloom` is not an acceptable filter.
    #[error("bloom is not acceptable: {0}")]
    BadBloom(#[source] BloomError),
    /// `msgIDs` is not an array.
    #[error("msgIDs is not an array")]
    MsgIdsNotArray,
    /// `msgIDs` lists more than [`MSG_IDS_PER_PAYLOAD_MAX`] IDs.
    #[error("msgIDs lists {count} ids, more than {max}")]
    TooManyMsgIds {
        /// How many.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// An item of `msgIDs` is not a valid msg ID.
    #[error("msgIDs[{index}] is not a valid msg id: {error}")]
    BadMsgId {
        /// Its position.
        index: usize,
        /// Why.
        #[source]
        error: IdError,
    },
    /// `msgs` (or the phase-9 payload) is not an array.
    #[error("msgs is not an array")]
    MsgsNotArray,
    /// More than [`MSGS_PER_PAYLOAD_MAX`] msgs.
    #[error("{count} msgs, more than {max}")]
    TooManyMsgs {
        /// How many.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A msg fails the reference's shape check (`isMsg`).
    #[error("msgs[{index}] is not shaped like a msg")]
    MsgShape {
        /// Its position.
        index: usize,
    },
}

/// The payload of a data object, by phase. `M` is how a msg is held: a sent payload holds
/// the stored msgs (`Arc<Msg>`), a received one the decoded msgs with their digests
/// ([`DigestedMsg`], [`Received`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload<M = Arc<Msg>> {
    /// Phase 1: the sender's have-range.
    Have(DepthRange),
    /// Phase 2: the responder's have-range and want-range.
    HaveWant {
        /// `haveRange`.
        have: DepthRange,
        /// `wantRange`.
        want: DepthRange,
    },
    /// Phase 3: the initiator's want-range and round-0 bloom.
    WantBloom {
        /// `wantRange`.
        want: DepthRange,
        /// `bloom`.
        bloom: BloomFilter,
    },
    /// Phases 4–7: the IDs the sender will send, and its next bloom.
    IdsBloom {
        /// `msgIDs`.
        msg_ids: Vec<MsgId>,
        /// `bloom`.
        bloom: BloomFilter,
    },
    /// Phase 8: msgs for the initiator, and the responder's last bloom.
    MsgsBloom {
        /// `msgs`.
        msgs: Vec<M>,
        /// `bloom`.
        bloom: BloomFilter,
    },
    /// Phase 9: msgs (the last exchange step, a shortcut, or a realtime push).
    Msgs(Vec<M>),
}

/// One data object of the sync stream.
///
/// The phase and the payload agree: 1 ↔ [`Payload::Have`], 2 ↔ [`Payload::HaveWant`],
/// 3 ↔ [`Payload::WantBloom`], 4–7 ↔ [`Payload::IdsBloom`], 8 ↔ [`Payload::MsgsBloom`],
/// 9 ↔ [`Payload::Msgs`] (checked by [`SyncMsg::is_consistent`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncMsg<M = Arc<Msg>> {
    /// The tangle.
    pub id: TangleId,
    /// 1–9.
    pub phase: u8,
    /// The payload.
    pub payload: Payload<M>,
}

impl<M: AsRef<Msg>> SyncMsg<M> {
    /// Whether the phase matches the payload's kind.
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        matches!(
            (self.phase, &self.payload),
            (1, Payload::Have(_))
                | (2, Payload::HaveWant { .. })
                | (3, Payload::WantBloom { .. })
                | (4..=7, Payload::IdsBloom { .. })
                | (8, Payload::MsgsBloom { .. })
                | (9, Payload::Msgs(_))
        )
    }

    /// The msgs carried (phases 8 and 9).
    #[must_use]
    pub fn msgs(&self) -> &[M] {
        match &self.payload {
            Payload::MsgsBloom { msgs, .. } | Payload::Msgs(msgs) => msgs,
            _ => &[],
        }
    }

    /// The bloom carried (phases 3–8).
    #[must_use]
    pub fn bloom(&self) -> Option<&BloomFilter> {
        match &self.payload {
            Payload::WantBloom { bloom, .. }
            | Payload::IdsBloom { bloom, .. }
            | Payload::MsgsBloom { bloom, .. } => Some(bloom),
            _ => None,
        }
    }

    /// The JSON text, as pzp-sync writes it (see the module docs for msg `data`).
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(128);
        self.write_json(&mut out);
        out
    }

    /// Appends the JSON text to `out`, returning how many of the bytes are msgs (the rest is
    /// protocol overhead).
    pub fn write_json(&self, out: &mut String) -> usize {
        out.push_str("{\"id\":\"");
        out.push_str(self.id.as_str());
        let _ = write!(out, "\",\"phase\":{},\"payload\":", self.phase);
        let mut msg_bytes = 0;
        match &self.payload {
            Payload::Have(range) => write_range(out, *range),
            Payload::HaveWant { have, want } => {
                out.push_str("{\"haveRange\":");
                write_range(out, *have);
                out.push_str(",\"wantRange\":");
                write_range(out, *want);
                out.push('}');
            }
            Payload::WantBloom { want, bloom } => {
                out.push_str("{\"bloom\":");
                bloom.write_json(out);
                out.push_str(",\"wantRange\":");
                write_range(out, *want);
                out.push('}');
            }
            Payload::IdsBloom { msg_ids, bloom } => {
                out.push_str("{\"bloom\":");
                bloom.write_json(out);
                out.push_str(",\"msgIDs\":[");
                for (index, id) in msg_ids.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(id.as_str());
                    out.push('"');
                }
                out.push_str("]}");
            }
            Payload::MsgsBloom { msgs, bloom } => {
                out.push_str("{\"msgs\":");
                msg_bytes = write_msgs(out, msgs);
                out.push_str(",\"bloom\":");
                bloom.write_json(out);
                out.push('}');
            }
            Payload::Msgs(msgs) => msg_bytes = write_msgs(out, msgs),
        }
        out.push('}');
        msg_bytes
    }
}

pub(crate) fn write_range(out: &mut String, range: DepthRange) {
    let _ = write!(out, "[{},{}]", range.min, range.max);
}

/// Writes `[msg,…]`, returning the bytes of the msgs themselves. Each msg is serialized
/// straight into the frame's buffer (the bytes of [`Msg::to_json`], without a string of its
/// own); the buffer is checked as UTF-8 once, at the end.
pub(crate) fn write_msgs<M: AsRef<Msg>>(out: &mut String, msgs: &[M]) -> usize {
    let mut bytes = std::mem::take(out).into_bytes();
    bytes.push(b'[');
    let mut msg_bytes = 0;
    for (index, msg) in msgs.iter().enumerate() {
        if index > 0 {
            bytes.push(b',');
        }
        let before = bytes.len();
        serde_json::to_writer(&mut bytes, msg.as_ref())
            .expect("invariant: a Msg always serializes");
        msg_bytes += bytes.len() - before;
    }
    bytes.push(b']');
    *out = String::from_utf8(bytes).expect("invariant: serde_json writes UTF-8");
    msg_bytes
}

/// A msg of a received payload that was dropped because it does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedMsg {
    /// Its position in the payload.
    pub index: usize,
    /// Why.
    pub error: ValidationError,
}

/// A received object that passed the checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The typed object (undecodable msgs removed); each msg keeps the digest its decode
    /// computed.
    pub msg: SyncMsg<DigestedMsg>,
    /// The msgs removed.
    pub dropped: Vec<DroppedMsg>,
}

impl Received {
    /// A sent object as its receiver takes it without the JSON text (the protocol tier
    /// hands objects over typed): each msg is digested here, as decoding would.
    #[must_use]
    pub fn of_sent(sent: SyncMsg) -> Self {
        let digested = |msgs: Vec<Arc<Msg>>| msgs.into_iter().map(DigestedMsg::new).collect();
        let payload = match sent.payload {
            Payload::Have(have) => Payload::Have(have),
            Payload::HaveWant { have, want } => Payload::HaveWant { have, want },
            Payload::WantBloom { want, bloom } => Payload::WantBloom { want, bloom },
            Payload::IdsBloom { msg_ids, bloom } => Payload::IdsBloom { msg_ids, bloom },
            Payload::MsgsBloom { msgs, bloom } => Payload::MsgsBloom {
                msgs: digested(msgs),
                bloom,
            },
            Payload::Msgs(msgs) => Payload::Msgs(digested(msgs)),
        };
        let msg = SyncMsg {
            id: sent.id,
            phase: sent.phase,
            payload,
        };
        Self {
            msg,
            dropped: Vec::new(),
        }
    }
}

/// Checks and types a received data object.
///
/// # Errors
/// The first check it fails, in the reference's order with ours interleaved where they
/// refine one of its checks.
pub fn decode(value: &Value) -> Result<Received, WireError> {
    if value.is_array() {
        return Err(WireError::IsArray);
    }
    let object = value.as_object().ok_or(WireError::NotObject)?;
    let phase = object.get("phase").ok_or(WireError::PhaseNotNumber)?;
    let phase_number = phase.as_number().ok_or(WireError::PhaseNotNumber)?;
    let id = match object.get("id").and_then(Value::as_str) {
        Some(text) => MsgId::parse(text).map_err(WireError::BadId)?,
        None => {
            return Err(WireError::BadId(IdError::NotBase58(crate::js::display(
                object.get("id"),
            ))));
        }
    };
    let phase = match phase_number.as_u64() {
        Some(0) => return Err(WireError::PhaseZero),
        Some(phase) if PHASES.contains(&phase) => {
            u8::try_from(phase).expect("invariant: phase <= 9")
        }
        _ => return Err(WireError::PhaseOutOfRange(phase_number.to_string())),
    };
    let payload = object
        .get("payload")
        .filter(|payload| is_truthy(payload))
        .ok_or(WireError::MissingPayload)?;
    let mut dropped = Vec::new();
    let payload = match phase {
        1 => Payload::Have(range(Some(payload), "payload")?),
        2 => Payload::HaveWant {
            have: range(payload.get("haveRange"), "haveRange")?,
            want: range(payload.get("wantRange"), "wantRange")?,
        },
        3 => {
            let want = range(payload.get("wantRange"), "wantRange")?;
            Payload::WantBloom {
                want,
                bloom: bloom(payload.get("bloom"))?,
            }
        }
        4..=7 => {
            let bloom = bloom(payload.get("bloom"))?;
            Payload::IdsBloom {
                msg_ids: msg_ids(payload.get("msgIDs"))?,
                bloom,
            }
        }
        8 => {
            let bloom = bloom(payload.get("bloom"))?;
            Payload::MsgsBloom {
                msgs: msgs(payload.get("msgs"), &mut dropped)?,
                bloom,
            }
        }
        _ => Payload::Msgs(msgs(Some(payload), &mut dropped)?),
    };
    Ok(Received {
        msg: SyncMsg { id, phase, payload },
        dropped,
    })
}

/// JavaScript truthiness of a JSON value.
fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|x| x != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

pub(crate) fn range(value: Option<&Value>, field: &'static str) -> Result<DepthRange, WireError> {
    let bad = WireError::BadRange {
        field,
        max: DEPTH_MAX,
    };
    let Some([min, max]) = value.and_then(Value::as_array).map(Vec::as_slice) else {
        return Err(bad);
    };
    let bound = |side: &Value| side.as_u64().filter(|depth| *depth <= DEPTH_MAX);
    match (bound(min), bound(max)) {
        (Some(min), Some(max)) => Ok(DepthRange { min, max }),
        _ => Err(bad),
    }
}

fn bloom(value: Option<&Value>) -> Result<BloomFilter, WireError> {
    let value = value
        .filter(|bloom| is_truthy(bloom))
        .ok_or(WireError::MissingBloom)?;
    BloomFilter::from_json(value).map_err(WireError::BadBloom)
}

pub(crate) fn msg_ids(value: Option<&Value>) -> Result<Vec<MsgId>, WireError> {
    let items = value
        .and_then(Value::as_array)
        .ok_or(WireError::MsgIdsNotArray)?;
    if items.len() > MSG_IDS_PER_PAYLOAD_MAX {
        return Err(WireError::TooManyMsgIds {
            count: items.len(),
            max: MSG_IDS_PER_PAYLOAD_MAX,
        });
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let text = item.as_str().ok_or_else(|| WireError::BadMsgId {
                index,
                error: IdError::NotBase58(crate::js::display(Some(item))),
            })?;
            MsgId::parse(text).map_err(|error| WireError::BadMsgId { index, error })
        })
        .collect()
}

/// The reference's `isMsg`: the keys every msg has, `metadata.v === 4`, a string `sig`.
fn has_msg_shape(value: &Value) -> bool {
    let Some(object) = value.as_object() else {
        return false;
    };
    let Some(metadata) = object.get("metadata").and_then(Value::as_object) else {
        return false;
    };
    object.contains_key("data")
        && REQUIRED_METADATA_FIELDS
            .iter()
            .all(|key| metadata.contains_key(*key))
        && metadata.get("v").and_then(Value::as_f64) == Some(4.0)
        && object.get("sig").is_some_and(Value::is_string)
}

pub(crate) fn msgs(
    value: Option<&Value>,
    dropped: &mut Vec<DroppedMsg>,
) -> Result<Vec<DigestedMsg>, WireError> {
    let items = checked_msg_items(value)?;
    Ok(decode_each(items.iter().map(msg::decode_digested), dropped))
}

/// [`msgs`] for a payload the caller gives up: each msg takes its item's `data` instead of
/// a copy (the same checks, so the same verdicts).
pub(crate) fn msgs_owned(
    value: Option<Value>,
    dropped: &mut Vec<DroppedMsg>,
) -> Result<Vec<DigestedMsg>, WireError> {
    checked_msg_items(value.as_ref())?;
    let Some(Value::Array(items)) = value else {
        unreachable!("invariant: checked_msg_items found an array");
    };
    Ok(decode_each(
        items.into_iter().map(msg::decode_owned_digested),
        dropped,
    ))
}

/// The payload's msg items, when it is an array of at most [`MSGS_PER_PAYLOAD_MAX`] items
/// shaped like msgs.
fn checked_msg_items(value: Option<&Value>) -> Result<&Vec<Value>, WireError> {
    let items = value
        .and_then(Value::as_array)
        .ok_or(WireError::MsgsNotArray)?;
    if items.len() > MSGS_PER_PAYLOAD_MAX {
        return Err(WireError::TooManyMsgs {
            count: items.len(),
            max: MSGS_PER_PAYLOAD_MAX,
        });
    }
    if let Some(index) = items.iter().position(|item| !has_msg_shape(item)) {
        return Err(WireError::MsgShape { index });
    }
    Ok(items)
}

/// The msgs that decoded, in order; the others go to `dropped` with their index.
fn decode_each(
    verdicts: impl Iterator<Item = Result<DigestedMsg, ValidationError>>,
    dropped: &mut Vec<DroppedMsg>,
) -> Vec<DigestedMsg> {
    let mut decoded = Vec::with_capacity(verdicts.size_hint().0);
    for (index, verdict) in verdicts.enumerate() {
        match verdict {
            Ok(msg) => decoded.push(msg),
            Err(error) => dropped.push(DroppedMsg { index, error }),
        }
    }
    decoded
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::db::Db;
    use crate::keys::Keypair;
    use crate::store::MemStore;

    /// Msgs written straight into a payload are the bytes of [`Msg::to_json`], joined:
    /// non-ASCII text, escapes and edge numbers included.
    #[test]
    fn msgs_written_into_a_payload_are_their_to_json_bytes() {
        let keypair = Keypair::from_seed(&[9; 32]);
        let mut db = Db::new(MemStore::new());
        let account = db
            .create_account(&keypair, "account", "n")
            .expect("account");
        let mut msgs = Vec::new();
        for data in [
            json!({"text": "héllo \u{1F600} \u{2028} \"q\" \\ \n\t\u{0}\u{1f}"}),
            json!({"big": 1e300, "small": 5e-324, "max": u64::MAX, "min": i64::MIN}),
        ] {
            let id = db
                .publish(&keypair, &account, "post", data, &[])
                .expect("publish");
            msgs.push(db.get(&id).expect("mem").expect("stored"));
        }
        let texts: Vec<String> = msgs.iter().map(|msg| msg.to_json()).collect();
        let mut out = String::from("prefix");
        let msg_bytes = write_msgs(&mut out, &msgs);
        assert_eq!(out, format!("prefix[{}]", texts.join(",")));
        assert_eq!(msg_bytes, texts.iter().map(String::len).sum::<usize>());
        let mut empty = String::new();
        assert_eq!(write_msgs::<Arc<Msg>>(&mut empty, &[]), 0);
        assert_eq!(empty, "[]");
    }
}
