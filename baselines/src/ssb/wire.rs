//! Byte sizes of Secure Scuttlebutt's encodings, computed from their layouts
//! (`baselines.md` §1.1–1.2): a message's compact JSON, a muxrpc frame inside box-stream,
//! the secret handshake. Only lengths are computed; nothing is signed or encrypted.

use crate::seam::{Feed, Handshake, Item};

/// A feed id's JSON string with quotes: `"@` + 44 base64 + `.ed25519"`.
pub const FEED_ID_QUOTED: u64 = 1 + 1 + 44 + 8 + 1;
/// A msg id's JSON string with quotes: `"%` + 44 base64 + `.sha256"`.
const MSG_ID_QUOTED: u64 = 1 + 1 + 44 + 7 + 1;
/// The signature's JSON string with quotes: 88 base64 + `.sig.ed25519`.
const SIGNATURE_QUOTED: u64 = 1 + 88 + 12 + 1;
/// Digits of a millisecond timestamp of this century.
const TIMESTAMP_DIGITS: u64 = 13;

/// muxrpc's header: flags (1), body length (u32), request number (i32).
pub const MUXRPC_HEADER: u64 = 9;
/// box-stream's header box per chunk: secretbox of (u16 length ‖ 16-byte MAC).
pub const BOX_HEADER: u64 = 34;
/// box-stream's largest plaintext chunk.
pub const BOX_CHUNK_MAX: u64 = 4096;

/// The secret handshake (SHS v1) and TCP: 64 + 64 + 112 + 80 bytes; the client may send
/// after 1 round trip of TCP and 2 of SHS.
pub const SECRET_HANDSHAKE: Handshake = Handshake {
    round_trips: 3,
    bytes: 64 + 64 + 112 + 80,
    acceptor_bytes: 0,
};

pub(crate) fn decimal_digits(value: u64) -> u64 {
    u64::from(value.checked_ilog10().unwrap_or(0)) + 1
}

/// Bytes of a muxrpc frame carrying `body` bytes, boxed alone (the JS stack writes one RPC
/// frame per box, split into chunks of at most 4 KiB).
#[must_use]
pub fn framed(body: u64) -> u64 {
    let plain = MUXRPC_HEADER + body;
    plain + BOX_HEADER * plain.div_ceil(BOX_CHUNK_MAX)
}

/// Bytes of a signed message's compact JSON value (`keys: false`), whose content object is
/// `item.content_bytes` long:
/// `{"previous":…,"author":…,"sequence":…,"timestamp":…,"hash":"sha256","content":…,"signature":…}`.
#[must_use]
pub fn message_bytes(item: &Item) -> u64 {
    let previous = if item.id.seq == 1 { 4 } else { MSG_ID_QUOTED };
    let keys = r#"{"previous":,"author":,"sequence":,"timestamp":,"hash":"sha256","content":,"signature":}"#;
    keys.len() as u64
        + previous
        + FEED_ID_QUOTED
        + decimal_digits(u64::from(item.id.seq))
        + TIMESTAMP_DIGITS
        + u64::from(item.content_bytes)
        + SIGNATURE_QUOTED
}

/// Bytes of one entry of a JSON object keyed by feed id: `"@….ed25519":` + the value's
/// decimal digits (and a minus sign for −1), plus the comma before it unless it is first.
#[must_use]
pub fn feed_entry_bytes(value: i64, first: bool) -> u64 {
    let sign = u64::from(value < 0);
    FEED_ID_QUOTED + 1 + sign + decimal_digits(value.unsigned_abs()) + u64::from(!first)
}

/// Bytes of a JSON object `{feed: value, …}`.
#[must_use]
pub fn feed_object_bytes<'a>(entries: impl IntoIterator<Item = (&'a Feed, &'a i64)>) -> u64 {
    let mut bytes = 2;
    for (index, (_, value)) in entries.into_iter().enumerate() {
        bytes += feed_entry_bytes(*value, index == 0);
    }
    bytes
}

/// Bytes of a muxrpc request body: `{"name":[NAME…],"type":TYPE,"args":[ARGS]}`.
#[must_use]
pub fn request_body_bytes(name: &[&str], kind: &str, args: u64) -> u64 {
    let names: u64 = name.iter().map(|part| part.len() as u64 + 2).sum::<u64>()
        + (name.len() as u64).saturating_sub(1);
    let skeleton = r#"{"name":[],"type":"","args":[]}"#.len() as u64;
    skeleton + names + kind.len() as u64 + args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seam::ItemId;

    #[test]
    fn a_minimal_first_post_is_about_three_hundred_bytes() {
        // `{"type":"post","text":"hi"}`, 27 bytes of content.
        let item = Item::post(
            ItemId {
                feed: Feed(0),
                seq: 1,
            },
            27,
        );
        // The layout's pieces added by hand: keys 88, null 4, author 55, "1", 13 digits,
        // content 27, signature 102.
        assert_eq!(message_bytes(&item), 88 + 4 + 55 + 1 + 13 + 27 + 102);
        let second = Item::post(
            ItemId {
                feed: Feed(0),
                seq: 2,
            },
            27,
        );
        assert_eq!(message_bytes(&second) - message_bytes(&item), 54 - 4);
    }

    #[test]
    fn a_note_entry_is_about_sixty_bytes() {
        // Tarr: "about 60 bytes" per vector-clock element.
        assert_eq!(feed_entry_bytes(450, false), 55 + 1 + 3 + 1);
        assert_eq!(feed_entry_bytes(-1, true), 55 + 1 + 2);
        let entries = [(Feed(1), 2_i64), (Feed(2), 13)];
        let object = feed_object_bytes(entries.iter().map(|(f, v)| (f, v)));
        assert_eq!(object, 2 + 57 + 59);
    }

    #[test]
    fn frames_pay_a_box_header_per_four_kibibytes() {
        assert_eq!(framed(100), 100 + 9 + 34);
        assert_eq!(framed(4087), 4096 + 34);
        assert_eq!(framed(4088), 4097 + 68);
    }

    #[test]
    fn request_bodies_match_their_text() {
        let text = r#"{"name":["ebt","replicate"],"type":"duplex","args":[]}"#;
        assert_eq!(
            request_body_bytes(&["ebt", "replicate"], "duplex", 0),
            text.len() as u64
        );
    }
}
