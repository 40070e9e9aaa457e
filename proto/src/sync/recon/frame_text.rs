//! The fast path of [`super::frame::decode`]: a frame read straight from its JSON text, its
//! msgs through [`crate::msg::MsgText`], without a `serde_json::Value` tree for the frame or
//! the msgs' metadata.
//!
//! It takes only frames the general path accepts whole (every msg decodes, nothing is
//! dropped) and gives what that path gives. Anything else (a push, whose `phase` is a
//! number; an escaped string; a repeated key; a msg that does not decode; a bound passed)
//! gives nothing, and the caller decodes the same text through a `Value`, which names the
//! fault. Keys the general path does not read are skipped here as there.

use serde::{Deserialize, Deserializer};

use super::super::wire::{DEPTH_MAX, MSG_IDS_PER_PAYLOAD_MAX, MSGS_PER_PAYLOAD_MAX};
use super::frame::{self, Frame, Received, ReconFrame};
use crate::ids::MsgId;
use crate::msg::{DigestedMsg, MsgText};
use crate::tangle::DepthRange;

/// A frame as its JSON text holds it, strings borrowed. A key given must have its type
/// (`null` included: the general path refuses `"want": null`, so this one may not read it
/// as absent).
#[derive(Debug, Deserialize)]
struct FrameText<'a> {
    id: &'a str,
    phase: &'a str,
    #[serde(default, deserialize_with = "present")]
    have: Option<[u64; 2]>,
    #[serde(default, deserialize_with = "present")]
    want: Option<[u64; 2]>,
    #[serde(borrow, default, deserialize_with = "present")]
    msg: Option<&'a str>,
    #[serde(borrow, default, deserialize_with = "present")]
    msgs: Option<Vec<MsgText<'a>>>,
    #[serde(borrow, default, deserialize_with = "present")]
    need: Option<Vec<&'a str>>,
}

/// A key that may be absent (`None`, by `#[serde(default)]`) but not `null`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The frame `text` holds, if the general path accepts it whole; `None` when it may not.
pub(super) fn decode(text: &str) -> Option<Received> {
    let text: FrameText<'_> = serde_json::from_str(text).ok()?;
    let id = MsgId::parse(text.id).ok()?;
    let frame = match text.phase {
        "open" => Frame::Open {
            have: range(text.have)?,
        },
        "ranges" => Frame::Ranges {
            have: range(text.have)?,
            want: range(text.want)?,
        },
        "recon" => Frame::Recon {
            want: match text.want {
                Some(want) => Some(range(Some(want))?),
                None => None,
            },
            message: frame::message_of_text(text.msg?).ok()?,
        },
        "msgs" => Frame::Msgs {
            msgs: msgs(text.msgs?)?,
        },
        "again" => Frame::Again,
        "done" => Frame::Done {
            msgs: msgs(text.msgs?)?,
            need: need(text.need?)?,
        },
        _ => return None,
    };
    Some(Received {
        frame: ReconFrame { id, frame },
        dropped: Vec::new(),
    })
}

fn range(range: Option<[u64; 2]>) -> Option<DepthRange> {
    let [min, max] = range?;
    (min <= DEPTH_MAX && max <= DEPTH_MAX).then_some(DepthRange { min, max })
}

fn msgs(msgs: Vec<MsgText<'_>>) -> Option<Vec<DigestedMsg>> {
    if msgs.len() > MSGS_PER_PAYLOAD_MAX {
        return None;
    }
    msgs.into_iter().map(MsgText::decode).collect()
}

fn need(ids: Vec<&str>) -> Option<Vec<MsgId>> {
    if ids.len() > MSG_IDS_PER_PAYLOAD_MAX {
        return None;
    }
    ids.into_iter().map(|id| MsgId::parse(id).ok()).collect()
}
