//! The call machine: requests, streams, permissions, bounds, GOODBYE.

use super::*;
use crate::transport::muxrpc::codec::Decoder;
use crate::transport::ping::is_net_ping;
use serde_json::json;

fn caller() -> Rpc {
    Rpc::new(Permissions::AllowAll)
}

fn callee() -> Rpc {
    Rpc::new(Permissions::anonymous())
}

/// Delivers everything `from` queued to `to`, through the real codec.
fn pump(from: &mut Rpc, to: &mut Rpc) -> Result<usize, RpcError> {
    let mut bytes = Vec::new();
    from.encode_transmit(&mut bytes);
    let mut decoder = Decoder::new();
    decoder.push(&bytes);
    let mut frames = 0;
    while let Some(frame) = decoder.next_frame()? {
        to.handle_frame(frame)?;
        to.check_invariants();
        frames += 1;
    }
    from.check_invariants();
    Ok(frames)
}

fn events(rpc: &mut Rpc) -> Vec<Event> {
    core::iter::from_fn(|| rpc.poll_event()).collect()
}

fn packets(rpc: &mut Rpc) -> Vec<Packet> {
    core::iter::from_fn(|| rpc.poll_transmit())
        .map(|frame| match frame {
            Frame::Packet(packet) => packet,
            Frame::Goodbye => panic!("unexpected goodbye"),
        })
        .collect()
}

fn json_body(value: serde_json::Value) -> Body {
    Body::json(&value).expect("serializes")
}

fn error_of(packet: &Packet) -> ErrorBody {
    serde_json::from_slice(&packet.body).expect("error body")
}

/// A raw frame as a hostile or foreign peer would send it.
fn raw(req: i32, stream: bool, end: bool, body: &str) -> Frame {
    Frame::Packet(Packet {
        req,
        stream,
        end,
        body_type: BodyType::Json,
        body: body.as_bytes().to_vec(),
    })
}

#[test]
fn duplex_request_frame_matches_the_js_bytes() {
    let mut rpc = caller();
    let id = rpc
        .call(&["sync", "connect"], &[], CallType::Duplex)
        .expect("call");
    assert_eq!(id, CallId::Outbound(1));
    let mut bytes = Vec::new();
    rpc.encode_transmit(&mut bytes);
    assert_eq!(hex::encode(&bytes[..9]), "0a0000003500000001");
    assert_eq!(
        &bytes[9..],
        br#"{"name":["sync","connect"],"args":[],"type":"duplex"}"#
    );
    // Requests carry no type, as muxrpc's `ps.request({name, args})`.
    rpc.call(&["hub", "metadata"], &[json!(1)], CallType::Async)
        .expect("call");
    let request = packets(&mut rpc).remove(0);
    assert_eq!(request.req, 2);
    assert!(!request.stream && !request.end);
    assert_eq!(request.body, br#"{"name":["hub","metadata"],"args":[1]}"#);
}

#[test]
fn duplex_session_end_to_end_then_goodbye() {
    let mut dialer = caller();
    let mut listener = callee();
    let id = dialer
        .call(&["sync", "connect"], &[], CallType::Duplex)
        .expect("call");
    dialer
        .send(
            id,
            json_body(json!({"id": "x", "phase": 1, "payload": [0, 5]})),
        )
        .expect("send");
    pump(&mut dialer, &mut listener).expect("pump");
    let mut got = events(&mut listener);
    let Event::Request {
        id: theirs,
        name,
        args,
        call_type,
    } = got.remove(0)
    else {
        panic!("request")
    };
    assert_eq!(
        (name, args, call_type),
        (
            vec!["sync".to_owned(), "connect".to_owned()],
            vec![],
            CallType::Duplex
        )
    );
    assert_eq!(theirs, CallId::Inbound(1));
    assert_eq!(
        got,
        vec![Event::Data {
            id: theirs,
            body: json_body(json!({"id": "x", "phase": 1, "payload": [0, 5]}))
        }]
    );

    listener
        .send(
            theirs,
            json_body(json!({"id": "x", "phase": 2, "payload": [1, 5]})),
        )
        .expect("send");
    let reply = packets(&mut listener);
    assert_eq!(reply[0].req, -1);
    assert!(reply[0].stream);
    for packet in reply {
        dialer.handle_frame(Frame::Packet(packet)).expect("frame");
    }
    assert_eq!(
        events(&mut dialer),
        vec![Event::Data {
            id,
            body: json_body(json!({"id": "x", "phase": 2, "payload": [1, 5]}))
        }]
    );

    // Both halves end; then a graceful close on each side.
    dialer.end(id, None).expect("end");
    pump(&mut dialer, &mut listener).expect("pump");
    assert_eq!(
        events(&mut listener),
        vec![Event::End {
            id: theirs,
            error: None
        }]
    );
    assert_eq!(listener.open_calls(), 1, "our half is still open");
    listener.end(theirs, None).expect("end");
    assert_eq!(listener.open_calls(), 0);
    pump(&mut listener, &mut dialer).expect("pump");
    assert_eq!(events(&mut dialer), vec![Event::End { id, error: None }]);
    assert_eq!(dialer.open_calls(), 0);

    dialer.close();
    assert!(dialer.goodbye_sent());
    pump(&mut dialer, &mut listener).expect("pump");
    assert_eq!(events(&mut listener), vec![Event::Goodbye]);
    assert!(
        listener.is_closed(),
        "goodbye both ways on the listener's side"
    );
    pump(&mut listener, &mut dialer).expect("pump");
    assert_eq!(events(&mut dialer), vec![Event::Goodbye]);
    assert!(dialer.is_closed());
    assert_eq!(
        dialer.call(&["x"], &[], CallType::Async),
        Err(CallError::Closing)
    );
}

#[test]
fn async_request_response_and_error_reply() {
    let mut a = caller();
    let mut b = Rpc::new(Permissions::AllowAll);
    let first = a
        .call(&["hub", "metadata"], &[], CallType::Async)
        .expect("call");
    let second = a.call(&["hub", "ping"], &[], CallType::Sync).expect("call");
    pump(&mut a, &mut b).expect("pump");
    let got = events(&mut b);
    assert_eq!(got.len(), 2);
    let ids: Vec<CallId> = got
        .iter()
        .map(|event| match event {
            Event::Request {
                id,
                call_type: CallType::Async,
                ..
            } => *id,
            other => panic!("{other:?}"),
        })
        .collect();
    b.respond(ids[0], Ok(json_body(json!({"name": "hub"}))))
        .expect("respond");
    b.respond(ids[1], Err(ErrorBody::new("nope")))
        .expect("respond");
    assert_eq!(
        b.respond(ids[1], Ok(json_body(json!(1)))),
        Err(CallError::UnknownCall(ids[1]))
    );
    pump(&mut b, &mut a).expect("pump");
    assert_eq!(
        events(&mut a),
        vec![
            Event::Response {
                id: first,
                result: Ok(json_body(json!({"name": "hub"})))
            },
            Event::Response {
                id: second,
                result: Err(ErrorBody::new("nope"))
            },
        ]
    );
    assert_eq!(a.open_calls(), 0);
    assert_eq!(b.open_calls(), 0);
}

#[test]
fn anonymous_permissions_refuse_with_the_exact_js_text() {
    let mut peer = callee();
    peer.handle_frame(raw(1, false, false, r#"{"name":["db","add"],"args":[{}]}"#))
        .expect("frame");
    peer.handle_frame(raw(
        2,
        true,
        false,
        r#"{"name":["foo","bar"],"args":[],"type":"duplex"}"#,
    ))
    .expect("frame");
    peer.handle_frame(raw(
        3,
        true,
        false,
        r#"{"name":"conn.connect","args":[],"type":"source"}"#,
    ))
    .expect("frame");
    assert_eq!(
        events(&mut peer),
        vec![],
        "refused calls never reach the app"
    );
    assert_eq!(peer.open_calls(), 0);
    let replies = packets(&mut peer);
    assert_eq!(
        (replies[0].req, replies[0].stream, replies[0].end),
        (-1, false, true)
    );
    assert_eq!(
        error_of(&replies[0]).message,
        "method:db,add is not in list of allowed methods"
    );
    assert_eq!(error_of(&replies[0]).name, "Error");
    assert_eq!(
        (replies[1].req, replies[1].stream, replies[1].end),
        (-2, true, true)
    );
    assert_eq!(
        error_of(&replies[1]).message,
        "method:foo,bar is not in list of allowed methods"
    );
    assert_eq!(
        error_of(&replies[2]).message,
        "method:conn.connect is not in list of allowed methods"
    );
    // The body is JS's `{message, name, stack}`, in that order.
    let text = String::from_utf8(replies[0].body.clone()).expect("utf8");
    assert!(text.starts_with(r#"{"message":"method:db,add is not in list of allowed methods","name":"Error","stack":"#), "{text}");
    // The peer's end for the refused stream is ignored, not answered.
    peer.handle_frame(raw(2, true, true, "true"))
        .expect("frame");
    assert_eq!(peer.poll_transmit(), None);
    // Allowed methods do reach the app.
    peer.handle_frame(raw(
        4,
        true,
        false,
        r#"{"name":["net","ping"],"args":[{"timeout":1}],"type":"duplex"}"#,
    ))
    .expect("frame");
    assert!(matches!(&events(&mut peer)[..], [Event::Request { name, .. }] if is_net_ping(name)));
}

#[test]
fn malformed_requests_get_muxrpc_errors() {
    let mut peer = Rpc::new(Permissions::AllowAll);
    peer.handle_frame(raw(
        1,
        true,
        false,
        r#"{"name":["a"],"args":[],"type":"async"}"#,
    ))
    .expect("frame");
    peer.handle_frame(raw(2, true, false, r#"{"name":["a"],"args":[]}"#))
        .expect("frame");
    peer.handle_frame(raw(3, false, false, r#"{"name":["a"],"args":7}"#))
        .expect("frame");
    let replies = packets(&mut peer);
    assert_eq!(
        error_of(&replies[0]).message,
        "unsupported stream type: async"
    );
    assert_eq!(
        error_of(&replies[1]).message,
        "unsupported stream type: undefined"
    );
    assert_eq!(
        error_of(&replies[2]).message,
        r#"invalid request, args should be array, was: {"name":["a"],"args":7}"#
    );
    assert_eq!(peer.open_calls(), 0);
}

#[test]
fn error_replies_echo_a_bounded_prefix_and_big_requests_are_not_read() {
    let mut peer = callee();
    // Under the request bound: the name is repeated, cut short.
    let name = "é".repeat(30_000);
    let request = json!({"name": [name], "args": []}).to_string();
    peer.handle_frame(raw(1, false, false, &request))
        .expect("frame");
    // Over it: refused by size, unparsed (this body is not even an object).
    let string = format!("\"{}\"", "s".repeat(REQUEST_BODY_BYTES_MAX));
    peer.handle_frame(raw(2, false, false, &string))
        .expect("frame");
    let mut long_type = json!({"name": ["sync", "connect"], "args": []});
    long_type["type"] = json!("t".repeat(10_000));
    peer.handle_frame(raw(3, true, false, &long_type.to_string()))
        .expect("frame");
    let replies = packets(&mut peer);
    let first = error_of(&replies[0]);
    assert!(first.message.starts_with("method:éé"), "{}", first.message);
    assert!(
        first
            .message
            .ends_with("… is not in list of allowed methods"),
        "{}",
        first.message
    );
    assert!(first.message.len() <= ERROR_ECHO_BYTES_MAX + 64);
    assert_eq!(
        error_of(&replies[1]).message,
        format!(
            "request of {} bytes refused: more than {REQUEST_BODY_BYTES_MAX}",
            REQUEST_BODY_BYTES_MAX + 2
        )
    );
    assert!(error_of(&replies[2]).message.len() <= ERROR_ECHO_BYTES_MAX + 64);
    for reply in &replies {
        assert!(
            reply.body.len() < 3 * ERROR_MESSAGE_BYTES_MAX,
            "{}",
            reply.body.len()
        );
    }
    assert_eq!(peer.open_calls(), 0);
    // Error bodies our side makes are bounded too, and refused if built too big by hand.
    assert!(
        ErrorBody::new("x".repeat(10 * 1024 * 1024)).message.len() <= ERROR_MESSAGE_BYTES_MAX + 3
    );
    let mut local = caller();
    let stream = local.call(&["a"], &[], CallType::Duplex).expect("call");
    let huge = ErrorBody {
        message: "x".repeat(FRAME_BODY_LEN_MAX),
        name: "Error".to_owned(),
        stack: None,
    };
    assert!(matches!(
        local.end(stream, Some(huge)),
        Err(CallError::Body(_))
    ));
    local.check_invariants();
}

#[test]
fn invalid_json_is_a_protocol_error() {
    let mut peer = callee();
    assert_eq!(
        peer.handle_frame(raw(1, false, false, "{nope")),
        Err(RpcError::InvalidJson { req: 1 })
    );
}

#[test]
fn hostile_peer_cannot_open_endless_streams() {
    let mut peer = Rpc::new(Permissions::AllowAll);
    for req in 1..=i32::try_from(INBOUND_CALLS_MAX).expect("fits") {
        peer.handle_frame(raw(
            req,
            true,
            false,
            r#"{"name":["sync","connect"],"args":[],"type":"duplex"}"#,
        ))
        .expect("within the bound");
    }
    assert_eq!(peer.open_calls(), INBOUND_CALLS_MAX);
    let next = i32::try_from(INBOUND_CALLS_MAX + 1).expect("fits");
    assert_eq!(
        peer.handle_frame(raw(
            next,
            true,
            false,
            r#"{"name":["sync","connect"],"args":[],"type":"duplex"}"#
        )),
        Err(RpcError::TooManyInboundCalls)
    );
    assert_eq!(
        peer.handle_frame(raw(next, false, false, r#"{"name":["x"],"args":[]}"#)),
        Err(RpcError::TooManyInboundCalls)
    );
    // Reusing an open stream's number for a request is a protocol error too.
    assert_eq!(
        peer.handle_frame(raw(1, false, false, r#"{"name":["x"],"args":[]}"#)),
        Err(RpcError::DuplicateRequest { req: 1 })
    );
}

#[test]
fn outbound_calls_are_bounded() {
    let mut rpc = caller();
    for _ in 0..OUTBOUND_CALLS_MAX {
        rpc.call(&["net", "ping"], &[], CallType::Duplex)
            .expect("within the bound");
    }
    assert_eq!(
        rpc.call(&["net", "ping"], &[], CallType::Duplex),
        Err(CallError::TooManyCalls)
    );
    // Finishing one frees a slot.
    let id = CallId::Outbound(1);
    rpc.end(id, None).expect("end");
    rpc.handle_frame(raw(-1, true, true, "true"))
        .expect("frame");
    assert_eq!(rpc.open_calls(), OUTBOUND_CALLS_MAX - 1);
    assert_eq!(
        rpc.call(&["net", "ping"], &[], CallType::Duplex),
        Ok(CallId::Outbound(OUTBOUND_CALLS_MAX as u32 + 1))
    );
}

#[test]
fn goodbye_with_open_calls_ends_them_like_packet_stream() {
    let mut dialer = caller();
    let mut listener = callee();
    let stream = dialer
        .call(&["sync", "connect"], &[], CallType::Duplex)
        .expect("call");
    let request = dialer
        .call(&["hub", "metadata"], &[], CallType::Async)
        .expect("call");
    pump(&mut dialer, &mut listener).expect("pump");
    let _ = events(&mut listener);
    // The dialer tears down (as secret-stack's close does).
    dialer.abort();
    let expected_error = Some(ErrorBody::unexpected_end());
    assert_eq!(
        events(&mut dialer),
        vec![
            Event::End {
                id: stream,
                error: expected_error.clone()
            },
            Event::Response {
                id: request,
                result: Err(ErrorBody::unexpected_end())
            },
        ]
    );
    let mut bytes = Vec::new();
    dialer.encode_transmit(&mut bytes);
    // One end frame with the error for the stream (as in the trace: 0e…01), then GOODBYE.
    assert_eq!(hex::encode(&bytes[..1]), "0e");
    assert_eq!(&bytes[bytes.len() - 9..], &[0u8; 9]);
    let mut decoder = Decoder::new();
    decoder.push(&bytes);
    while let Some(frame) = decoder.next_frame().expect("decodes") {
        listener.handle_frame(frame).expect("frame");
    }
    let got = events(&mut listener);
    assert_eq!(
        got.first(),
        Some(&Event::End {
            id: CallId::Inbound(1),
            error: expected_error.clone()
        })
    );
    // The unanswered request ends too, then the goodbye is reported.
    assert_eq!(
        got.get(1),
        Some(&Event::End {
            id: CallId::Inbound(2),
            error: expected_error
        })
    );
    assert_eq!(got.last(), Some(&Event::Goodbye));
    // The listener answered: its own end for the stream, then GOODBYE.
    let frames: Vec<Frame> = core::iter::from_fn(|| listener.poll_transmit()).collect();
    assert!(matches!(&frames[0], Frame::Packet(p) if p.req == -1 && p.end));
    assert_eq!(frames.last(), Some(&Frame::Goodbye));
    assert!(listener.is_closed());
    assert_eq!(
        listener.respond(CallId::Inbound(2), Ok(json_body(json!(1)))),
        Err(CallError::Closing)
    );
}

#[test]
fn graceful_close_waits_for_open_calls() {
    let mut rpc = caller();
    let id = rpc
        .call(&["net", "ping"], &[], CallType::Duplex)
        .expect("call");
    let _ = packets(&mut rpc);
    rpc.close();
    assert_eq!(rpc.poll_transmit(), None, "a call is still open");
    assert_eq!(
        rpc.call(&["x"], &[], CallType::Async),
        Err(CallError::Closing)
    );
    rpc.end(id, None).expect("end");
    rpc.handle_frame(raw(-1, true, true, "true"))
        .expect("frame");
    let frames: Vec<Frame> = core::iter::from_fn(|| rpc.poll_transmit()).collect();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1], Frame::Goodbye);
}

#[test]
fn source_calls_close_our_half_when_the_peer_ends() {
    let mut rpc = caller();
    let id = rpc
        .call(&["hub", "attendants"], &[], CallType::Source)
        .expect("call");
    let _ = packets(&mut rpc);
    rpc.handle_frame(raw(-1, true, false, r#"["a","b"]"#))
        .expect("frame");
    rpc.handle_frame(raw(-1, true, true, r#"{"message":"bye","name":"Error"}"#))
        .expect("frame");
    assert_eq!(
        events(&mut rpc),
        vec![
            Event::Data {
                id,
                body: json_body(json!(["a", "b"]))
            },
            Event::End {
                id,
                error: Some(ErrorBody {
                    message: "bye".into(),
                    name: "Error".into(),
                    stack: None
                })
            },
        ]
    );
    let reply = packets(&mut rpc);
    assert_eq!(
        (reply[0].req, reply[0].stream, reply[0].end),
        (1, true, true)
    );
    assert_eq!(reply[0].body, b"true");
    assert_eq!(rpc.open_calls(), 0);
    // Late frames for the finished call are dropped.
    rpc.handle_frame(raw(-1, true, false, "1")).expect("frame");
    assert_eq!(events(&mut rpc), vec![]);
}

#[test]
fn local_misuse_is_refused() {
    let mut rpc = caller();
    let request = rpc.call(&["a"], &[], CallType::Async).expect("call");
    assert_eq!(
        rpc.send(request, json_body(json!(1))),
        Err(CallError::WrongKind(request))
    );
    let stream = rpc.call(&["b"], &[], CallType::Duplex).expect("call");
    assert_eq!(
        rpc.send(stream, Body::Text(String::new())),
        Err(CallError::Body(CodecError::EmptyBody))
    );
    assert_eq!(
        rpc.respond(stream, Ok(json_body(json!(1)))),
        Err(CallError::WrongKind(stream))
    );
    rpc.end(stream, None).expect("end");
    assert_eq!(rpc.end(stream, None), Err(CallError::AlreadyEnded(stream)));
    assert_eq!(
        rpc.send(CallId::Outbound(99), json_body(json!(1))),
        Err(CallError::UnknownCall(CallId::Outbound(99)))
    );
}

#[test]
fn transport_loss_ends_everything_silently() {
    let mut rpc = caller();
    let id = rpc
        .call(&["sync", "connect"], &[], CallType::Duplex)
        .expect("call");
    let _ = packets(&mut rpc);
    rpc.handle_transport_closed();
    assert_eq!(rpc.poll_transmit(), None);
    assert_eq!(
        events(&mut rpc),
        vec![Event::End {
            id,
            error: Some(ErrorBody::unexpected_end())
        }]
    );
    assert!(rpc.is_closed());
}
