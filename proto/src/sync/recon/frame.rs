//! The JSON frames of a `sync.reconcile` duplex (docs/sync-extension.md, "The exchange, per
//! tangle"), typed, with every check a received frame must pass.
//!
//! ```text
//! {id, phase: "open",   have: [min, max]}                        dialer: its have-range
//! {id, phase: "ranges", have: [min, max], want: [min, max]}      responder: have and want
//! {id, phase: "recon",  want?: [min, max], msg: base64}          a reconciliation message
//! {id, phase: "msgs",   msgs: [msg…]}                            msgs before a long "done"
//! {id, phase: "done",   msgs: [msg…], need: [msgID…]}            the last msgs, and the IDs
//!                                                                 the dialer lacks
//! {id, phase: "again"}                                            responder: it has msgs the
//!                                                                 dialer may now want
//! ```
//!
//! `want` rides on the dialer's first `recon` only. Ranges, msg arrays and ID lists are
//! checked as pzp-sync's frames are ([`super::super::wire`]); the reconciliation message is
//! bounded in length here and checked rule by rule when it is read
//! ([`super::codec::decode`]).

use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use thiserror::Error;

use super::super::wire::{self, DroppedMsg, WireError};
use super::RECONCILE_FRAME_BYTES_MAX;
use crate::ids::{IdError, MsgId, TangleId};
use crate::msg::{DigestedMsg, Msg};
use crate::tangle::DepthRange;

/// Most base64 characters of a `msg` field: [`RECONCILE_FRAME_BYTES_MAX`] bytes, encoded.
pub const MESSAGE_BASE64_MAX: usize = RECONCILE_FRAME_BYTES_MAX.div_ceil(3) * 4;

/// What a frame says. `M` is how a msg is held: a sent frame holds the stored msgs
/// (`Arc<Msg>`), a received one the decoded msgs with their digests ([`DigestedMsg`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Frame<M = Arc<Msg>> {
    /// Message 1, dialer → responder: the dialer's have-range.
    Open {
        /// `have`.
        have: DepthRange,
    },
    /// Message 2, responder → dialer.
    Ranges {
        /// `have`.
        have: DepthRange,
        /// `want`.
        want: DepthRange,
    },
    /// A reconciliation message; the dialer's first carries its want-range.
    Recon {
        /// `want` (the dialer's first `recon` only).
        want: Option<DepthRange>,
        /// The message's bytes (checked when read).
        message: Vec<u8>,
    },
    /// Msgs sent ahead of a `done` whose msgs do not fit one frame.
    Msgs {
        /// `msgs`.
        msgs: Vec<M>,
    },
    /// Responder → dialer, between exchanges: open this tangle again. Only the dialer opens
    /// exchanges, so a responder that has msgs its remote may now want (the fixed pzp-sync's
    /// "owed" tangles, which its responder re-initiates itself) asks for one.
    Again,
    /// The sender's last frame of the exchange.
    Done {
        /// `msgs`: the last (or only) of the msgs the sender sends.
        msgs: Vec<M>,
        /// `need`: the IDs the dialer lacks (empty from the responder).
        need: Vec<MsgId>,
    },
}

impl<M> Frame<M> {
    /// The `phase` string.
    #[must_use]
    pub fn phase(&self) -> &'static str {
        match self {
            Self::Open { .. } => "open",
            Self::Ranges { .. } => "ranges",
            Self::Recon { .. } => "recon",
            Self::Msgs { .. } => "msgs",
            Self::Again => "again",
            Self::Done { .. } => "done",
        }
    }

    /// The msgs carried.
    #[must_use]
    pub fn msgs(&self) -> &[M] {
        match self {
            Self::Msgs { msgs } | Self::Done { msgs, .. } => msgs,
            _ => &[],
        }
    }
}

/// One frame of the stream, for one tangle.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconFrame<M = Arc<Msg>> {
    /// The tangle.
    pub id: TangleId,
    /// What it says.
    pub frame: Frame<M>,
}

/// Why a received frame was refused. One variant per check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Not a JSON object.
    #[error("not an object")]
    NotObject,
    /// `id` is not a valid msg ID.
    #[error("id is not a valid msg id: {0}")]
    BadId(#[source] IdError),
    /// `phase` is not one of the five strings.
    #[error("unknown phase {0}")]
    UnknownPhase(String),
    /// `msg` is missing or not a string.
    #[error("msg is not a string")]
    MessageNotString,
    /// `msg` is longer than [`MESSAGE_BASE64_MAX`] characters.
    #[error("msg of {0} characters, above MESSAGE_BASE64_MAX")]
    MessageTooLong(usize),
    /// `msg` is not standard base64.
    #[error("msg is not base64")]
    MessageNotBase64,
    /// A range, msg array or ID list fails pzp-sync's check for it.
    #[error("{0}")]
    Wire(#[from] WireError),
}

/// A received frame that passed the checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The typed frame (undecodable msgs removed); each msg keeps the digest its decode
    /// computed.
    pub frame: ReconFrame<DigestedMsg>,
    /// The msgs removed.
    pub dropped: Vec<DroppedMsg>,
}

/// Checks and types a received frame.
///
/// # Errors
/// The first check it fails.
pub fn decode(value: &Value) -> Result<Received, FrameError> {
    decode_with(value, |dropped| wire::msgs(value.get("msgs"), dropped))
}

/// [`decode`] for a frame the caller gives up: the msgs it carries are decoded from the
/// frame's own values, not copies (the same checks in the same order, so the same verdicts).
///
/// # Errors
/// The first check it fails.
pub fn decode_owned(mut value: Value) -> Result<Received, FrameError> {
    let msgs = value
        .as_object_mut()
        .and_then(|object| object.remove("msgs"));
    decode_with(&value, |dropped| wire::msgs_owned(msgs, dropped))
}

/// [`decode`]'s checks, the frame's `msgs` (read only by the phases that carry msgs, at the
/// point [`decode`] checks them) decoded by `msgs`.
fn decode_with(
    value: &Value,
    msgs: impl FnOnce(&mut Vec<DroppedMsg>) -> Result<Vec<DigestedMsg>, WireError>,
) -> Result<Received, FrameError> {
    let object = value.as_object().ok_or(FrameError::NotObject)?;
    let id = match object.get("id").and_then(Value::as_str) {
        Some(text) => MsgId::parse(text).map_err(FrameError::BadId)?,
        None => {
            let shown = crate::js::display(object.get("id"));
            return Err(FrameError::BadId(IdError::NotBase58(shown)));
        }
    };
    let mut dropped = Vec::new();
    let frame = match object.get("phase").and_then(Value::as_str) {
        Some("open") => Frame::Open {
            have: wire::range(object.get("have"), "have")?,
        },
        Some("ranges") => Frame::Ranges {
            have: wire::range(object.get("have"), "have")?,
            want: wire::range(object.get("want"), "want")?,
        },
        Some("recon") => Frame::Recon {
            want: match object.get("want") {
                Some(want) => Some(wire::range(Some(want), "want")?),
                None => None,
            },
            message: message(object.get("msg"))?,
        },
        Some("msgs") => Frame::Msgs {
            msgs: msgs(&mut dropped)?,
        },
        Some("again") => Frame::Again,
        Some("done") => Frame::Done {
            msgs: msgs(&mut dropped)?,
            need: wire::msg_ids(object.get("need"))?,
        },
        _ => {
            return Err(FrameError::UnknownPhase(crate::js::display(
                object.get("phase"),
            )));
        }
    };
    Ok(Received {
        frame: ReconFrame { id, frame },
        dropped,
    })
}

fn message(value: Option<&Value>) -> Result<Vec<u8>, FrameError> {
    let text = value
        .and_then(Value::as_str)
        .ok_or(FrameError::MessageNotString)?;
    message_of_text(text)
}

/// A `msg` string's bytes, bounded by [`MESSAGE_BASE64_MAX`].
pub(super) fn message_of_text(text: &str) -> Result<Vec<u8>, FrameError> {
    if text.len() > MESSAGE_BASE64_MAX {
        return Err(FrameError::MessageTooLong(text.len()));
    }
    STANDARD
        .decode(text)
        .map_err(|_| FrameError::MessageNotBase64)
}

impl<M: AsRef<Msg>> ReconFrame<M> {
    /// The JSON text.
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
        let _ = write!(out, "\",\"phase\":\"{}\"", self.frame.phase());
        let mut msg_bytes = 0;
        match &self.frame {
            Frame::Open { have } => {
                out.push_str(",\"have\":");
                wire::write_range(out, *have);
            }
            Frame::Ranges { have, want } => {
                out.push_str(",\"have\":");
                wire::write_range(out, *have);
                out.push_str(",\"want\":");
                wire::write_range(out, *want);
            }
            Frame::Recon { want, message } => {
                if let Some(want) = want {
                    out.push_str(",\"want\":");
                    wire::write_range(out, *want);
                }
                out.push_str(",\"msg\":\"");
                STANDARD.encode_string(message, out);
                out.push('"');
            }
            Frame::Msgs { msgs } => {
                out.push_str(",\"msgs\":");
                msg_bytes = wire::write_msgs(out, msgs);
            }
            Frame::Again => {}
            Frame::Done { msgs, need } => {
                out.push_str(",\"msgs\":");
                msg_bytes = wire::write_msgs(out, msgs);
                out.push_str(",\"need\":[");
                for (index, id) in need.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(id.as_str());
                    out.push('"');
                }
                out.push(']');
            }
        }
        out.push('}');
        msg_bytes
    }
}
