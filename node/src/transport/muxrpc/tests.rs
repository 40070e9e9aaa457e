//! The codec against every frame of `sync-trace.json` (`wireFrames`).

use super::codec::{
    self, BodyType, CodecError, Decoder, FRAME_BODY_LEN_MAX, Frame, HEADER_LEN, Header, Packet,
};
use serde_json::Value;

const SYNC_TRACE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vectors/sync-trace.json"
));

fn wire_frames() -> Vec<Value> {
    let trace: Value = serde_json::from_str(SYNC_TRACE).expect("sync-trace.json parses");
    trace["wireFrames"].as_array().expect("wireFrames").clone()
}

/// The frame's body bytes, unless the generator elided its stack trace.
fn body_bytes(frame: &Value) -> Option<Vec<u8>> {
    if frame["stackElided"].as_bool() == Some(true) {
        return None;
    }
    let body = frame["body"].as_str().expect("body");
    Some(if frame["bodyType"] == 0 {
        hex::decode(body).expect("hex body")
    } else {
        body.as_bytes().to_vec()
    })
}

#[test]
fn every_wire_frame_round_trips_byte_for_byte() {
    let frames = wire_frames();
    assert!(
        frames.len() >= 80,
        "expected the full trace, got {}",
        frames.len()
    );
    let mut whole_stream = Vec::new();
    let mut expected = Vec::new();
    let (mut full, mut headers_only, mut goodbyes) = (0, 0, 0);
    for frame in &frames {
        if frame["goodbye"].as_bool() == Some(true) {
            goodbyes += 1;
            let mut out = Vec::new();
            codec::encode(&Frame::Goodbye, &mut out).expect("encode");
            assert_eq!(out, [0u8; HEADER_LEN]);
            continue;
        }
        let header_bytes: [u8; HEADER_LEN] =
            hex::decode(frame["headerHex"].as_str().expect("headerHex"))
                .expect("hex")
                .try_into()
                .expect("9 bytes");
        let header = Header::parse(&header_bytes);
        assert_eq!(header.to_bytes(), header_bytes);
        assert_eq!(i64::from(header.req), frame["req"].as_i64().expect("req"));
        assert_eq!(
            header.is_stream(),
            frame["stream"].as_bool().expect("stream")
        );
        assert_eq!(header.is_end(), frame["end"].as_bool().expect("end"));
        assert_eq!(
            u64::from(header.body_type().expect("known type").code()),
            frame["bodyType"].as_u64().expect("type")
        );
        assert_eq!(
            u64::from(header.body_len),
            frame["bodyLength"].as_u64().expect("len")
        );
        let Some(body) = body_bytes(frame) else {
            headers_only += 1;
            continue;
        };
        full += 1;
        assert_eq!(body.len(), header.body_len as usize);
        let mut wire = header_bytes.to_vec();
        wire.extend_from_slice(&body);

        let mut decoder = Decoder::new();
        decoder.push(&wire);
        let decoded = decoder.next_frame().expect("decodes").expect("complete");
        let Frame::Packet(packet) = &decoded else {
            panic!("not a packet")
        };
        assert_eq!(packet.body, body);
        let mut reencoded = Vec::new();
        codec::encode(&decoded, &mut reencoded).expect("encode");
        assert_eq!(hex::encode(&reencoded), hex::encode(&wire));
        whole_stream.extend_from_slice(&wire);
        expected.push(decoded);
    }
    assert!(
        full >= 60 && headers_only >= 5 && goodbyes >= 5,
        "{full} {headers_only} {goodbyes}"
    );

    // The same frames back to back, fed in awkward pieces, decode the same.
    for step in [1usize, 8, 9, 10, 100, 4096] {
        let mut decoder = Decoder::new();
        let mut decoded = Vec::new();
        for piece in whole_stream.chunks(step) {
            decoder.push(piece);
            while let Some(frame) = decoder.next_frame().expect("decodes") {
                decoded.push(frame);
            }
        }
        assert_eq!(decoded, expected, "step {step}");
        assert_eq!(decoder.buffered_len(), 0);
    }
}

#[test]
fn a_drained_decoder_frees_the_buffer_a_big_frame_needed() {
    let frame = Frame::Packet(Packet {
        req: 1,
        stream: true,
        end: false,
        body_type: BodyType::Binary,
        body: vec![b'x'; 60_000],
    });
    let mut wire = Vec::new();
    codec::encode(&frame, &mut wire).expect("encode");
    let (first, rest) = wire.split_at(30_000);
    let mut decoder = Decoder::new();
    decoder.push(first);
    assert_eq!(decoder.next_frame(), Ok(None));
    assert!(decoder.held_bytes() >= 30_000, "a partial frame is kept");
    decoder.push(rest);
    assert_eq!(decoder.next_frame(), Ok(Some(frame)));
    assert_eq!(decoder.next_frame(), Ok(None));
    assert_eq!(
        decoder.held_bytes(),
        0,
        "nothing left to decode, nothing held"
    );
}

#[test]
fn goodbye_ends_decoding() {
    let mut decoder = Decoder::new();
    decoder.push(&[0u8; HEADER_LEN]);
    decoder.push(b"ignored after goodbye");
    assert_eq!(decoder.next_frame(), Ok(Some(Frame::Goodbye)));
    assert_eq!(decoder.next_frame(), Ok(None));
    assert!(decoder.is_finished());
    // As in JS, any zero-length header is GOODBYE.
    let mut decoder = Decoder::new();
    decoder.push(
        &Header {
            flags: 0x0a,
            body_len: 0,
            req: 5,
        }
        .to_bytes(),
    );
    assert_eq!(decoder.next_frame(), Ok(Some(Frame::Goodbye)));
}

#[test]
fn oversized_frame_is_rejected_from_its_header_alone() {
    let mut decoder = Decoder::new();
    let too_long = u32::try_from(FRAME_BODY_LEN_MAX + 1).expect("fits");
    decoder.push(
        &Header {
            flags: 0x0a,
            body_len: too_long,
            req: 1,
        }
        .to_bytes(),
    );
    assert_eq!(
        decoder.next_frame(),
        Err(CodecError::BodyTooLong {
            len: u64::from(too_long)
        })
    );
    let mut decoder = Decoder::new();
    decoder.push(
        &Header {
            flags: 0x02,
            body_len: u32::MAX,
            req: 1,
        }
        .to_bytes(),
    );
    assert!(matches!(
        decoder.next_frame(),
        Err(CodecError::BodyTooLong { .. })
    ));
    // Exactly the maximum is fine (only the header is needed to decide).
    let mut decoder = Decoder::new();
    let max = u32::try_from(FRAME_BODY_LEN_MAX).expect("fits");
    decoder.push(
        &Header {
            flags: 0x00,
            body_len: max,
            req: 1,
        }
        .to_bytes(),
    );
    assert_eq!(decoder.next_frame(), Ok(None));
    // And the encoder refuses to produce what the decoder would refuse.
    let packet = Packet {
        req: 1,
        stream: false,
        end: false,
        body_type: BodyType::Binary,
        body: vec![0; FRAME_BODY_LEN_MAX + 1],
    };
    assert!(matches!(
        codec::encode(&Frame::Packet(packet), &mut Vec::new()),
        Err(CodecError::BodyTooLong { .. })
    ));
}

#[test]
fn unknown_body_type_and_empty_bodies_are_rejected() {
    let mut decoder = Decoder::new();
    decoder.push(
        &Header {
            flags: 0x03,
            body_len: 1,
            req: 1,
        }
        .to_bytes(),
    );
    decoder.push(b"x");
    assert_eq!(decoder.next_frame(), Err(CodecError::UnknownBodyType(3)));
    let empty = Packet {
        req: 1,
        stream: true,
        end: false,
        body_type: BodyType::Text,
        body: Vec::new(),
    };
    assert_eq!(
        codec::encode(&Frame::Packet(empty), &mut Vec::new()),
        Err(CodecError::EmptyBody)
    );
}

#[test]
fn header_layout() {
    let packet = Packet {
        req: -7,
        stream: true,
        end: true,
        body_type: BodyType::Json,
        body: b"true".to_vec(),
    };
    let mut out = Vec::new();
    codec::encode(&Frame::Packet(packet), &mut out).expect("encode");
    assert_eq!(hex::encode(&out[..HEADER_LEN]), "0e00000004fffffff9");
    assert_eq!(&out[HEADER_LEN..], b"true");
}
