//! One local client of the control socket, as a sans-I/O machine: bytes in, [`Action`]s
//! (requests to run, streams to stop) out; replies in, bytes out. The socket server
//! (`server.rs`) is the shell that moves the bytes and runs the actions.
//!
//! The wire is muxrpc (the project's codec and call machine) without SHSE or secretstream:
//! the socket file's permissions and the peer-credential check are the authentication, as
//! in ssb-server's local socket. A local client is trusted with every method, but not with
//! unbounded memory: its frames and open calls are bounded by the named limits below, and
//! breaking them closes its connection.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::request::Request;
use crate::transport::muxrpc::codec::{Decoder, Frame, HEADER_LEN};
use crate::transport::muxrpc::rpc::{Body, CallId, CallType, ErrorBody, Event, Rpc};
use crate::transport::muxrpc::{CodecError, Permissions, RpcError};

/// Largest frame body a local client may send (a request holds at most one msg or
/// publish, each under 65,535 bytes of JSON before escapes); the muxrpc default of 8 MiB is
/// for sync payloads from peers. A bigger frame closes the connection once this many bytes
/// of it are buffered.
pub(crate) const CONTROL_FRAME_BYTES_MAX: usize = 1024 * 1024;
/// Calls (requests and streams) one local client may have open at once; more are answered
/// with an error.
pub(crate) const CONTROL_CALLS_MAX: usize = 16;
/// Longest method name or error detail echoed back in an error.
const ECHO_CHARS_MAX: usize = 100;

/// What the shell must do for a client.
#[derive(Debug)]
pub(crate) enum Action {
    /// Run `request`; answer with [`ClientSession::respond`], or for a stream
    /// [`ClientSession::send`] then [`ClientSession::end`].
    Call { id: CallId, request: Request },
    /// The client stopped this stream (or went away): stop producing it.
    Cancel { id: CallId },
}

/// Why a client's connection must close.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Closing {
    /// A frame over [`CONTROL_FRAME_BYTES_MAX`].
    #[error("a control frame over {CONTROL_FRAME_BYTES_MAX} bytes")]
    FrameTooLong,
    /// Bytes that are not muxrpc frames.
    #[error("not muxrpc: {0}")]
    Codec(#[from] CodecError),
    /// muxrpc broken.
    #[error("muxrpc: {0}")]
    Protocol(#[from] RpcError),
    /// The client said GOODBYE.
    #[error("the client said goodbye")]
    Goodbye,
}

/// One local client's muxrpc state.
#[derive(Debug)]
pub(crate) struct ClientSession {
    decoder: Decoder,
    rpc: Rpc,
    /// Calls handed to the shell and not yet answered or ended.
    open: BTreeSet<CallId>,
}

impl Default for ClientSession {
    fn default() -> Self {
        Self {
            decoder: Decoder::new(),
            rpc: Rpc::new(Permissions::AllowAll),
            open: BTreeSet::new(),
        }
    }
}

impl ClientSession {
    /// Takes bytes from the client; appends what to do to `actions`.
    ///
    /// # Errors
    /// [`Closing`]: close the connection (after sending what [`Self::transmit`] gives).
    pub(crate) fn receive(
        &mut self,
        bytes: &[u8],
        actions: &mut Vec<Action>,
    ) -> Result<(), Closing> {
        self.decoder.push(bytes);
        while let Some(frame) = self.decoder.next_frame()? {
            if let Frame::Packet(packet) = &frame
                && packet.body.len() > CONTROL_FRAME_BYTES_MAX
            {
                return Err(Closing::FrameTooLong);
            }
            self.rpc.handle_frame(frame)?;
            self.events(actions);
        }
        if self.decoder.buffered_len() > CONTROL_FRAME_BYTES_MAX + HEADER_LEN {
            return Err(Closing::FrameTooLong);
        }
        if self.decoder.is_finished() {
            return Err(Closing::Goodbye);
        }
        Ok(())
    }

    /// The client's connection ended: every open call is cancelled.
    pub(crate) fn transport_closed(&mut self, actions: &mut Vec<Action>) {
        self.rpc.handle_transport_closed();
        self.events(actions);
        actions.extend(
            std::mem::take(&mut self.open)
                .into_iter()
                .map(|id| Action::Cancel { id }),
        );
    }

    fn events(&mut self, actions: &mut Vec<Action>) {
        while let Some(event) = self.rpc.poll_event() {
            match event {
                Event::Request {
                    id,
                    name,
                    args,
                    call_type,
                } => self.request(id, &name, &args, call_type, actions),
                Event::End { id, .. } => {
                    if self.open.remove(&id) {
                        actions.push(Action::Cancel { id });
                    }
                }
                Event::Data { .. } | Event::Response { .. } | Event::Goodbye => {}
            }
        }
    }

    fn request(
        &mut self,
        id: CallId,
        name: &[String],
        args: &[Value],
        call_type: CallType,
        actions: &mut Vec<Action>,
    ) {
        let parsed = parse_call(name, args, call_type);
        let refusal = match &parsed {
            Err(message) => Some(message.clone()),
            Ok(_) if self.open.len() >= CONTROL_CALLS_MAX => Some(format!(
                "too many calls open on this connection (at most {CONTROL_CALLS_MAX})"
            )),
            Ok(_) => None,
        };
        match (refusal, parsed) {
            (Some(message), _) => self.refuse(id, call_type, message),
            (None, Ok(request)) => {
                self.open.insert(id);
                actions.push(Action::Call { id, request });
            }
            (None, Err(_)) => {}
        }
    }

    fn refuse(&mut self, id: CallId, call_type: CallType, message: String) {
        let error = ErrorBody::new(message);
        let _ = if call_type.is_stream() {
            self.rpc.end(id, Some(error))
        } else {
            self.rpc.respond(id, Err(error))
        };
    }

    /// Answers request `id`.
    pub(crate) fn respond(&mut self, id: CallId, result: Result<Value, String>) {
        if !self.open.remove(&id) {
            return;
        }
        let result = result.map_err(ErrorBody::new).and_then(|value| {
            Body::json(&value).map_err(|error| ErrorBody::new(error.to_string()))
        });
        let _ = self.rpc.respond(id, result);
    }

    /// Sends one item (a JSON text) on stream `id`; false once the stream is gone.
    pub(crate) fn send(&mut self, id: CallId, json: String) -> bool {
        self.open.contains(&id) && self.rpc.send(id, Body::Json(json.into_bytes())).is_ok()
    }

    /// Ends stream `id`, normally or with an error.
    pub(crate) fn end(&mut self, id: CallId, error: Option<String>) {
        if self.open.remove(&id) {
            let _ = self.rpc.end(id, error.map(ErrorBody::new));
        }
    }

    /// Appends the bytes to send to the client.
    pub(crate) fn transmit(&mut self, out: &mut Vec<u8>) {
        self.rpc.encode_transmit(out);
    }

    /// Calls handed out and not yet finished.
    #[cfg(test)]
    pub(crate) fn open_calls(&self) -> usize {
        self.open.len()
    }

    /// Checks the bounds and the muxrpc machine's consistency (tests, fuzzing).
    pub(crate) fn check_invariants(&self) {
        assert!(self.open.len() <= CONTROL_CALLS_MAX, "open calls bound");
        assert!(
            self.decoder.buffered_len() <= CONTROL_FRAME_BYTES_MAX + HEADER_LEN,
            "buffered frame bound"
        );
        self.rpc.check_invariants();
    }
}

/// The request a call makes, or the error to answer it with.
fn parse_call(name: &[String], args: &[Value], call_type: CallType) -> Result<Request, String> {
    let [method] = name else {
        return Err(format!(
            "no method {} (methods have one-part names; see `manifest`)",
            echo(&name.join("."))
        ));
    };
    let empty = Map::new();
    let fields = match args.first() {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(fields)) => fields,
        Some(_) => return Err("the first argument must be an object of fields".to_owned()),
    };
    let request = Request::parse(method, fields).map_err(|error| echo(&format!("{error:#}")))?;
    match (request.is_stream(), call_type) {
        (true, CallType::Source) | (false, CallType::Async) => Ok(request),
        (true, _) => Err(format!("{} is a source (a stream)", echo(method))),
        (false, _) => Err(format!("{} is async (one reply)", echo(method))),
    }
}

/// `text` cut to [`ECHO_CHARS_MAX`] characters, so errors never echo unbounded input.
fn echo(text: &str) -> String {
    let mut cut: String = text.chars().take(ECHO_CHARS_MAX).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::muxrpc::codec::{self, Packet};
    use crate::transport::muxrpc::rpc::CallType;
    use crate::transport::muxrpc::{BodyType, Rpc};

    /// A client machine and a server session, wired back to back.
    fn exchange(client: &mut Rpc, server: &mut ClientSession) -> Vec<Action> {
        let mut bytes = Vec::new();
        client.encode_transmit(&mut bytes);
        let mut actions = Vec::new();
        server.receive(&bytes, &mut actions).expect("valid frames");
        server.check_invariants();
        actions
    }

    fn deliver(server: &mut ClientSession, client: &mut Rpc) -> Vec<Event> {
        let mut bytes = Vec::new();
        server.transmit(&mut bytes);
        let mut decoder = Decoder::new();
        decoder.push(&bytes);
        while let Some(frame) = decoder.next_frame().expect("frames") {
            client.handle_frame(frame).expect("valid");
        }
        std::iter::from_fn(|| client.poll_event()).collect()
    }

    #[test]
    fn requests_and_streams_are_handed_out_and_answered() {
        let mut client = Rpc::new(Permissions::Allow(BTreeSet::new()));
        let mut server = ClientSession::default();
        let who = client
            .call(&["whoami"], &[], CallType::Async)
            .expect("call");
        let log = client
            .call(
                &["log"],
                &[serde_json::json!({"limit": 2})],
                CallType::Source,
            )
            .expect("call");
        let actions = exchange(&mut client, &mut server);
        assert_eq!(actions.len(), 2);
        let ids: Vec<CallId> = actions
            .iter()
            .map(|action| match action {
                Action::Call { id, .. } => *id,
                Action::Cancel { .. } => panic!("no cancel"),
            })
            .collect();
        server.respond(ids[0], Ok(serde_json::json!({"key": "k"})));
        assert!(server.send(ids[1], "{\"n\":1}".to_owned()));
        server.end(ids[1], None);
        let events = deliver(&mut server, &mut client);
        assert!(
            matches!(&events[0], Event::Response { id, result: Ok(_) } if *id == who),
            "{events:?}"
        );
        assert!(matches!(&events[1], Event::Data { id, .. } if *id == log));
        assert!(matches!(&events[2], Event::End { id, error: None } if *id == log));
        assert_eq!(server.open_calls(), 0);
    }

    #[test]
    fn wrong_calls_get_errors_and_the_call_bound_holds() {
        let mut client = Rpc::new(Permissions::Allow(BTreeSet::new()));
        let mut server = ClientSession::default();
        client.call(&["nope"], &[], CallType::Async).expect("call");
        client.call(&["log"], &[], CallType::Async).expect("call");
        client
            .call(&["whoami"], &[Value::from(3)], CallType::Async)
            .expect("call");
        assert!(exchange(&mut client, &mut server).is_empty());
        let events = deliver(&mut server, &mut client);
        let errors: Vec<String> = events
            .iter()
            .filter_map(|event| match event {
                Event::Response { result: Err(e), .. } => Some(e.message.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(errors.len(), 3, "{events:?}");
        assert!(errors[0].contains("unknown command"), "{errors:?}");
        assert!(errors[1].contains("is a source"), "{errors:?}");
        for _ in 0..CONTROL_CALLS_MAX + 3 {
            client.call(&["log"], &[], CallType::Source).expect("call");
        }
        let actions = exchange(&mut client, &mut server);
        assert_eq!(actions.len(), CONTROL_CALLS_MAX);
        let refused = deliver(&mut server, &mut client)
            .into_iter()
            .filter(|event| matches!(event, Event::End { error: Some(e), .. } if e.message.contains("too many calls")))
            .count();
        assert_eq!(refused, 3);
    }

    #[test]
    fn an_oversized_frame_closes_the_connection_before_it_is_buffered() {
        let mut server = ClientSession::default();
        let mut bytes = Vec::new();
        let packet = Packet {
            req: 1,
            stream: false,
            end: false,
            body_type: BodyType::Json,
            body: vec![b' '; 4 * 1024 * 1024],
        };
        codec::encode(&Frame::Packet(packet), &mut bytes).expect("encodes");
        let mut actions = Vec::new();
        let mut closed = None;
        for chunk in bytes.chunks(16 * 1024) {
            if let Err(error) = server.receive(chunk, &mut actions) {
                closed = Some(error);
                break;
            }
            server.check_invariants();
        }
        assert!(matches!(closed, Some(Closing::FrameTooLong)), "{closed:?}");
    }
}
