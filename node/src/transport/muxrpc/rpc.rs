//! The muxrpc call layer (muxrpc 8.0.0 on packet-stream 2.0.6) as a sans-IO machine.
//!
//! Protocol, as the JS reference speaks it (protocol.md §11.4):
//! - A caller picks a positive request number `n`; every frame of that call
//!   from the caller carries `n`, every frame from the callee carries `-n`.
//!   Each side numbers its own calls, so "our 1" and "their 1" are different
//!   calls ([`CallId`] keeps them apart).
//! - `async`/`sync` call: one JSON frame `{"name":[…],"args":[…]}` (stream flag
//!   clear); one reply with the same flags, the end flag set if it is an error.
//!   The wire does not tell `sync` from `async`.
//! - `source`/`sink`/`duplex` call: stream flag set on every frame; the first
//!   frame is `{"name":[…],"args":[…],"type":"duplex"}`; then data frames both
//!   ways; each side ends its half with the end flag and body `true`, or an
//!   error `{"message","name","stack"}`. A call is over once both halves ended.
//! - Remote calls pass secret-stack's permission check ([`Permissions`]) first;
//!   refusals are answered here with muxrpc's exact error text.
//! - GOODBYE: a side that is done sends it; a side that receives it ends every
//!   open call with "unexpected end of parent stream" and answers GOODBYE.
//!
//! Inputs: decoded frames ([`Rpc::handle_frame`]) and local commands
//! ([`Rpc::call`], [`Rpc::send`], [`Rpc::end`], [`Rpc::respond`], [`Rpc::close`],
//! [`Rpc::abort`]). Outputs: frames to send ([`Rpc::poll_transmit`]) and events
//! ([`Rpc::poll_event`]); drain both after every input. Open calls are bounded
//! per direction ([`INBOUND_CALLS_MAX`], [`OUTBOUND_CALLS_MAX`]).

use std::collections::{BTreeMap, VecDeque};

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::codec::{self, BodyType, CodecError, FRAME_BODY_LEN_MAX, Frame, Packet};
pub use super::echo::{ERROR_ECHO_BYTES_MAX, echo};
use super::perms::Permissions;

/// Most calls the peer may have open with us at once (requests we have not
/// answered, streams not closed both ways). A PZP connection needs a
/// `sync.connect` and a `net.ping`, and a hub opens one `hubClient.connect` per
/// tunnel through it; 256 leaves room for a busy hub while capping what a
/// hostile peer can make us track. Exceeding it is a protocol error.
pub const INBOUND_CALLS_MAX: usize = 256;

/// Most calls we may have open at once; [`Rpc::call`] refuses more. Same
/// reasoning as [`INBOUND_CALLS_MAX`], for our side.
pub const OUTBOUND_CALLS_MAX: usize = 256;

/// Largest request we read (the first frame of a call: its name, type and arguments). A
/// PZP request is a few hundred bytes; a bigger one is answered with an error without being
/// parsed (an 8 MB argument list would be a tree of hundreds of megabytes).
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;

/// Most bytes of an error message we send; `stack` repeats it, so an error body stays
/// below three times this.
pub const ERROR_MESSAGE_BYTES_MAX: usize = 1024;

/// Request numbers are positive `i32`s on the wire.
const REQ_MAX: u32 = i32::MAX as u32;

/// The error every open call gets when the connection goes away (packet-stream's text).
pub const UNEXPECTED_END_MESSAGE: &str = "unexpected end of parent stream";

/// muxrpc call types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallType {
    /// One request, one reply.
    Async,
    /// Like async on the wire.
    Sync,
    /// The callee streams to the caller.
    Source,
    /// The caller streams to the callee.
    Sink,
    /// Both stream.
    Duplex,
}

impl CallType {
    /// The manifest name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Async => "async",
            CallType::Sync => "sync",
            CallType::Source => "source",
            CallType::Sink => "sink",
            CallType::Duplex => "duplex",
        }
    }

    /// Parses a manifest name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "async" => Some(CallType::Async),
            "sync" => Some(CallType::Sync),
            "source" => Some(CallType::Source),
            "sink" => Some(CallType::Sink),
            "duplex" => Some(CallType::Duplex),
            _ => None,
        }
    }

    /// Streams use the stream flag; requests do not.
    pub fn is_stream(self) -> bool {
        matches!(self, CallType::Source | CallType::Sink | CallType::Duplex)
    }
}

/// One call on a connection: the number is the caller's request number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallId {
    /// A call we made (our frames carry `+n`).
    Outbound(u32),
    /// A call the peer made (our frames carry `-n`).
    Inbound(u32),
}

impl CallId {
    /// The request number our frames for this call carry.
    fn wire_req(self) -> i32 {
        match self {
            CallId::Outbound(n) => i32::try_from(n).expect("invariant: request numbers fit i32"),
            CallId::Inbound(n) => -i32::try_from(n).expect("invariant: request numbers fit i32"),
        }
    }

    fn is_inbound(self) -> bool {
        matches!(self, CallId::Inbound(_))
    }
}

/// A frame body.
#[derive(Clone, PartialEq, Eq)]
pub enum Body {
    /// Raw bytes.
    Binary(Vec<u8>),
    /// Text (invalid UTF-8 from the peer is replaced, as JS does).
    Text(String),
    /// JSON text, kept as bytes so callers can deserialize straight into their
    /// types (or send bytes they serialized canonically). Bodies from the peer
    /// are checked to be valid JSON.
    Json(Vec<u8>),
}

impl Body {
    /// Serializes `value` as a JSON body.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_vec(value).map(Body::Json)
    }

    /// Deserializes a JSON body.
    pub fn parse_json<T: DeserializeOwned>(&self) -> Result<T, BodyError> {
        match self {
            Body::Json(bytes) => {
                serde_json::from_slice(bytes).map_err(|e| BodyError::Json(e.to_string()))
            }
            _ => Err(BodyError::NotJson(self.body_type())),
        }
    }

    /// The encoding bits this body is sent with.
    pub fn body_type(&self) -> BodyType {
        match self {
            Body::Binary(_) => BodyType::Binary,
            Body::Text(_) => BodyType::Text,
            Body::Json(_) => BodyType::Json,
        }
    }

    /// The bytes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Binary(bytes) | Body::Json(bytes) => bytes,
            Body::Text(text) => text.as_bytes(),
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        match self {
            Body::Binary(bytes) | Body::Json(bytes) => bytes,
            Body::Text(text) => text.into_bytes(),
        }
    }

    /// A body from the peer; `None` if a JSON body is not JSON (JS's decoder
    /// fails the whole connection then).
    fn from_wire(body_type: BodyType, bytes: Vec<u8>) -> Option<Self> {
        match body_type {
            BodyType::Binary => Some(Body::Binary(bytes)),
            BodyType::Text => Some(Body::Text(match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
            })),
            BodyType::Json => {
                serde_json::from_slice::<IgnoredAny>(&bytes).ok()?;
                Some(Body::Json(bytes))
            }
        }
    }

    fn to_value(&self) -> Option<Value> {
        match self {
            Body::Json(bytes) => serde_json::from_slice(bytes).ok(),
            _ => None,
        }
    }
}

impl core::fmt::Debug for Body {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        /// Bodies can be megabytes: show only their start.
        const PREVIEW_CHARS_MAX: usize = 120;
        let preview = |text: &str| -> String {
            let mut cut: String = text.chars().take(PREVIEW_CHARS_MAX).collect();
            if cut.len() < text.len() {
                cut.push('…');
            }
            cut
        };
        match self {
            Body::Binary(bytes) => write!(f, "Binary({} bytes)", bytes.len()),
            Body::Text(text) => write!(f, "Text({:?})", preview(text)),
            Body::Json(bytes) => write!(f, "Json({})", preview(&String::from_utf8_lossy(bytes))),
        }
    }
}

/// Why a body could not be read as the caller wanted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is not JSON-typed.
    #[error("muxrpc body is {0:?}, not JSON")]
    NotJson(BodyType),
    /// The JSON does not fit the requested type.
    #[error("muxrpc body does not deserialize: {0}")]
    Json(String),
}

/// An error as muxrpc sends it: JS's `{message, name, stack}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `err.message`.
    pub message: String,
    /// `err.name`, usually `"Error"`.
    pub name: String,
    /// `err.stack`; JS sends a stack trace, we send `"Error: <message>"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

impl ErrorBody {
    /// A plain `Error` with `message` (cut at [`ERROR_MESSAGE_BYTES_MAX`]).
    pub fn new(message: impl Into<String>) -> Self {
        let message = cut(message.into(), ERROR_MESSAGE_BYTES_MAX);
        let stack = Some(format!("Error: {message}"));
        Self {
            message,
            name: "Error".to_owned(),
            stack,
        }
    }

    /// What open calls get when the connection ends under them.
    pub fn unexpected_end() -> Self {
        Self::new(UNEXPECTED_END_MESSAGE)
    }

    fn to_body(&self) -> Body {
        Body::json(self).expect("invariant: an ErrorBody always serializes")
    }

    /// Reads an error reply leniently: JS may send any value as an error.
    fn from_body(body: &Body) -> Self {
        match body.to_value() {
            Some(Value::Object(map)) => {
                let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
                ErrorBody {
                    message: text("message").unwrap_or_default(),
                    name: text("name").unwrap_or_else(|| "Error".to_owned()),
                    stack: text("stack"),
                }
            }
            Some(Value::String(message)) => ErrorBody {
                message,
                name: "Error".to_owned(),
                stack: None,
            },
            Some(other) => ErrorBody {
                message: other.to_string(),
                name: "Error".to_owned(),
                stack: None,
            },
            None => ErrorBody {
                message: String::from_utf8_lossy(body.as_bytes()).into_owned(),
                name: "Error".to_owned(),
                stack: None,
            },
        }
    }

    /// The reason in a stream's end frame: `None` for a normal end (`true`).
    fn from_end_body(body: &Body) -> Option<Self> {
        match body.to_value() {
            Some(Value::Bool(_) | Value::Null) => None,
            _ => Some(Self::from_body(body)),
        }
    }
}

/// `text` cut to at most `bytes_max` bytes (plus the `…` marking the cut), at a character
/// boundary.
fn cut(mut text: String, bytes_max: usize) -> String {
    if text.len() <= bytes_max {
        return text;
    }
    let mut end = bytes_max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
    text
}

/// What the machine reports to its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The peer called us and the call passed the permission check. Answer a
    /// request with [`Rpc::respond`]; for a stream, [`Rpc::send`] and [`Rpc::end`].
    Request {
        /// The call (always [`CallId::Inbound`]).
        id: CallId,
        /// The method path, e.g. `["sync", "connect"]`.
        name: Vec<String>,
        /// The arguments.
        args: Vec<Value>,
        /// For requests this is always [`CallType::Async`] (the wire does not
        /// say `sync`); for streams it is the declared type.
        call_type: CallType,
    },
    /// A data frame on a stream (ours or theirs).
    Data {
        /// The stream.
        id: CallId,
        /// The data.
        body: Body,
    },
    /// The peer ended its half of a stream (or the connection ended under the
    /// call: then `error` is "unexpected end of parent stream"). Also sent for
    /// unanswered inbound requests when the connection ends.
    End {
        /// The stream.
        id: CallId,
        /// `None` for a normal end.
        error: Option<ErrorBody>,
    },
    /// The reply to one of our requests.
    Response {
        /// The request (always [`CallId::Outbound`]).
        id: CallId,
        /// The value, or the error the peer sent.
        result: Result<Body, ErrorBody>,
    },
    /// The peer sent GOODBYE; every open call was ended and we answered GOODBYE.
    Goodbye,
}

/// The peer broke the protocol: drop the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The frame stream could not be decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A JSON-typed body is not JSON.
    #[error("muxrpc frame {req} has a JSON body that does not parse")]
    InvalidJson {
        /// The frame's request number.
        req: i32,
    },
    /// The peer has more than [`INBOUND_CALLS_MAX`] calls open.
    #[error("peer opened more than {INBOUND_CALLS_MAX} concurrent muxrpc calls")]
    TooManyInboundCalls,
    /// The peer reused the number of a call that is still open, with the other
    /// call kind (request vs stream).
    #[error("peer reused request number {req} of a call still open")]
    DuplicateRequest {
        /// The request number.
        req: i32,
    },
}

/// A local command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The connection is closing or closed: no new calls, no more frames.
    #[error("muxrpc connection is closing")]
    Closing,
    /// [`OUTBOUND_CALLS_MAX`] calls are already open.
    #[error("already {OUTBOUND_CALLS_MAX} muxrpc calls open on this connection")]
    TooManyCalls,
    /// No such open call.
    #[error("no open muxrpc call {0:?}")]
    UnknownCall(CallId),
    /// `send`/`end` on a request, or `respond` to a stream.
    #[error("muxrpc call {0:?} is of the wrong kind for this operation")]
    WrongKind(CallId),
    /// Our half of the stream already ended.
    #[error("muxrpc stream {0:?} already ended on our side")]
    AlreadyEnded(CallId),
    /// The body cannot be framed (empty, or over [`FRAME_BODY_LEN_MAX`]).
    #[error("muxrpc body cannot be sent: {0}")]
    Body(#[from] CodecError),
    /// The request arguments do not serialize.
    #[error("muxrpc arguments do not serialize: {0}")]
    Arguments(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Request,
    Stream(CallType),
}

#[derive(Debug)]
struct Call {
    kind: CallKind,
    local_ended: bool,
    remote_ended: bool,
}

impl Call {
    /// Calls whose write half we never use (our `source` calls, their `sink`
    /// calls) close it as soon as the peer closes theirs, as muxrpc's uniplex
    /// streams do.
    fn closes_with_peer(&self, id: CallId) -> bool {
        matches!(
            (id, self.kind),
            (CallId::Outbound(_), CallKind::Stream(CallType::Source))
                | (CallId::Inbound(_), CallKind::Stream(CallType::Sink))
        )
    }
}

#[derive(Serialize)]
struct RequestOut<'a> {
    name: &'a [&'a str],
    args: &'a [Value],
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    call_type: Option<&'static str>,
}

/// One muxrpc connection's calls.
#[derive(Debug)]
pub struct Rpc {
    permissions: Permissions,
    next_req: u32,
    calls: BTreeMap<CallId, Call>,
    inbound_open: usize,
    outbound_open: usize,
    transmit: VecDeque<Frame>,
    events: VecDeque<Event>,
    closing: bool,
    goodbye_sent: bool,
    goodbye_received: bool,
    transport_closed: bool,
}

impl Rpc {
    /// A connection whose remote calls are checked against `permissions`
    /// ([`Permissions::anonymous`] for every PZP peer).
    pub fn new(permissions: Permissions) -> Self {
        Self {
            permissions,
            next_req: 1,
            calls: BTreeMap::new(),
            inbound_open: 0,
            outbound_open: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            closing: false,
            goodbye_sent: false,
            goodbye_received: false,
            transport_closed: false,
        }
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        pop_freeing_when_empty(&mut self.transmit)
    }

    /// Encodes every queued frame into `out`, to send them in one write (each
    /// secretstream write costs at least one 512-byte block).
    pub fn encode_transmit(&mut self, out: &mut Vec<u8>) {
        while let Some(frame) = pop_freeing_when_empty(&mut self.transmit) {
            // Every body is checked (`check_body`) or bounded (`ErrorBody::new`) before it is
            // queued, so this cannot fail; if it ever did, the frame is dropped rather than
            // the process.
            if let Err(error) = codec::encode(&frame, out) {
                debug_assert!(false, "a queued frame does not encode: {error}");
                tracing::error!(target: "ppppp::muxrpc", %error, "dropped a frame that does not encode");
            }
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        pop_freeing_when_empty(&mut self.events)
    }

    /// Calls open in either direction.
    pub fn open_calls(&self) -> usize {
        self.calls.len()
    }

    /// True when GOODBYE went both ways, or the transport closed.
    pub fn is_closed(&self) -> bool {
        self.transport_closed || (self.goodbye_sent && self.goodbye_received)
    }

    /// True once we sent GOODBYE (nothing more will be queued).
    pub fn goodbye_sent(&self) -> bool {
        self.goodbye_sent
    }

    /// Asserts the machine's internal consistency (counters match the call
    /// table, bounds hold, nothing is queued after GOODBYE). Tests and fuzz
    /// targets call it after every input; it is cheap but O(open calls).
    pub fn check_invariants(&self) {
        let inbound = self.calls.keys().filter(|id| id.is_inbound()).count();
        assert_eq!(inbound, self.inbound_open, "inbound counter");
        assert_eq!(
            self.calls.len() - inbound,
            self.outbound_open,
            "outbound counter"
        );
        assert!(self.inbound_open <= INBOUND_CALLS_MAX, "inbound bound");
        assert!(self.outbound_open <= OUTBOUND_CALLS_MAX, "outbound bound");
        for (id, call) in &self.calls {
            assert!(
                !(call.local_ended && call.remote_ended),
                "finished call {id:?} still tracked"
            );
            let number = match id {
                CallId::Outbound(n) | CallId::Inbound(n) => *n,
            };
            assert!((1..=REQ_MAX).contains(&number), "request number {number}");
        }
        if self.goodbye_sent || self.transport_closed {
            assert!(self.calls.is_empty(), "calls open after goodbye");
        }
        if let Some(position) = self
            .transmit
            .iter()
            .position(|frame| *frame == Frame::Goodbye)
        {
            assert_eq!(
                position + 1,
                self.transmit.len(),
                "frames queued after GOODBYE"
            );
        }
    }

    fn can_send(&self) -> bool {
        !self.goodbye_sent && !self.transport_closed
    }

    fn queue(&mut self, id: CallId, stream: bool, end: bool, body: Body) {
        let body_type = body.body_type();
        self.transmit.push_back(Frame::Packet(Packet {
            req: id.wire_req(),
            stream,
            end,
            body_type,
            body: body.into_bytes(),
        }));
    }

    fn check_body(body: &Body) -> Result<(), CodecError> {
        let len = body.as_bytes().len();
        if len == 0 {
            Err(CodecError::EmptyBody)
        } else if len > FRAME_BODY_LEN_MAX {
            Err(CodecError::BodyTooLong { len: len as u64 })
        } else {
            Ok(())
        }
    }

    fn insert(&mut self, id: CallId, kind: CallKind) {
        if id.is_inbound() {
            self.inbound_open += 1;
        } else {
            self.outbound_open += 1;
        }
        self.calls.insert(
            id,
            Call {
                kind,
                local_ended: false,
                remote_ended: false,
            },
        );
    }

    fn remove(&mut self, id: CallId) {
        if self.calls.remove(&id).is_some() {
            if id.is_inbound() {
                self.inbound_open -= 1;
            } else {
                self.outbound_open -= 1;
            }
        }
        self.maybe_goodbye();
    }

    fn maybe_goodbye(&mut self) {
        if self.closing && self.calls.is_empty() && self.can_send() {
            self.transmit.push_back(Frame::Goodbye);
            self.goodbye_sent = true;
        }
    }

    fn allocate_req(&mut self) -> u32 {
        loop {
            let candidate = self.next_req;
            self.next_req = if candidate >= REQ_MAX {
                1
            } else {
                candidate + 1
            };
            if !self.calls.contains_key(&CallId::Outbound(candidate)) {
                return candidate;
            }
        }
    }

    /// Calls `name` on the peer. For streams, follow with [`Self::send`] /
    /// [`Self::end`]; replies and data arrive as events.
    pub fn call(
        &mut self,
        name: &[&str],
        args: &[Value],
        call_type: CallType,
    ) -> Result<CallId, CallError> {
        if self.closing || !self.can_send() {
            return Err(CallError::Closing);
        }
        if self.outbound_open >= OUTBOUND_CALLS_MAX {
            return Err(CallError::TooManyCalls);
        }
        let request = RequestOut {
            name,
            args,
            call_type: call_type.is_stream().then_some(call_type.as_str()),
        };
        let body = Body::json(&request).map_err(|e| CallError::Arguments(e.to_string()))?;
        Self::check_body(&body)?;
        let id = CallId::Outbound(self.allocate_req());
        self.queue(id, call_type.is_stream(), false, body);
        let kind = if call_type.is_stream() {
            CallKind::Stream(call_type)
        } else {
            CallKind::Request
        };
        self.insert(id, kind);
        Ok(id)
    }

    fn open_stream(&mut self, id: CallId) -> Result<&mut Call, CallError> {
        if !self.can_send() {
            return Err(CallError::Closing);
        }
        let call = self.calls.get_mut(&id).ok_or(CallError::UnknownCall(id))?;
        if call.kind == CallKind::Request {
            return Err(CallError::WrongKind(id));
        }
        if call.local_ended {
            return Err(CallError::AlreadyEnded(id));
        }
        Ok(call)
    }

    /// Sends a data frame on a stream.
    pub fn send(&mut self, id: CallId, body: Body) -> Result<(), CallError> {
        Self::check_body(&body)?;
        self.open_stream(id)?;
        self.queue(id, true, false, body);
        Ok(())
    }

    /// Ends our half of a stream, normally (`None`) or with an error.
    pub fn end(&mut self, id: CallId, error: Option<ErrorBody>) -> Result<(), CallError> {
        let body = error.map_or_else(|| Body::Json(b"true".to_vec()), |error| error.to_body());
        Self::check_body(&body)?;
        let call = self.open_stream(id)?;
        call.local_ended = true;
        let both_ended = call.remote_ended;
        self.queue(id, true, true, body);
        if both_ended {
            self.remove(id);
        }
        Ok(())
    }

    /// Answers an inbound request.
    pub fn respond(
        &mut self,
        id: CallId,
        result: Result<Body, ErrorBody>,
    ) -> Result<(), CallError> {
        if !self.can_send() {
            return Err(CallError::Closing);
        }
        match self.calls.get(&id) {
            None => return Err(CallError::UnknownCall(id)),
            Some(call) if call.kind != CallKind::Request || !id.is_inbound() => {
                return Err(CallError::WrongKind(id));
            }
            Some(_) => {}
        }
        let (end, body) = match result {
            Ok(body) => (false, body),
            Err(error) => (true, error.to_body()),
        };
        Self::check_body(&body)?;
        self.queue(id, false, end, body);
        self.remove(id);
        Ok(())
    }

    /// Graceful close: no new calls; GOODBYE goes out once every open call has
    /// finished (packet-stream's `close`).
    pub fn close(&mut self) {
        self.closing = true;
        self.maybe_goodbye();
    }

    /// Immediate close (packet-stream's `destroy`): every open call ends with
    /// "unexpected end of parent stream", then GOODBYE.
    pub fn abort(&mut self) {
        self.closing = true;
        self.teardown();
    }

    /// The transport is gone (EOF or error): every open call ends, nothing
    /// more can be sent.
    pub fn handle_transport_closed(&mut self) {
        self.closing = true;
        self.transport_closed = true;
        self.teardown();
    }

    fn teardown(&mut self) {
        let can_send = self.can_send();
        let calls = core::mem::take(&mut self.calls);
        self.inbound_open = 0;
        self.outbound_open = 0;
        for (id, call) in calls {
            let is_stream = matches!(call.kind, CallKind::Stream(_));
            if can_send && is_stream && !call.local_ended {
                self.queue(id, true, true, ErrorBody::unexpected_end().to_body());
            }
            match (id, call.kind) {
                (CallId::Outbound(_), CallKind::Request) => {
                    self.events.push_back(Event::Response {
                        id,
                        result: Err(ErrorBody::unexpected_end()),
                    })
                }
                (CallId::Inbound(_), CallKind::Request) => {
                    self.events.push_back(Event::End {
                        id,
                        error: Some(ErrorBody::unexpected_end()),
                    });
                }
                (_, CallKind::Stream(_)) if !call.remote_ended => {
                    self.events.push_back(Event::End {
                        id,
                        error: Some(ErrorBody::unexpected_end()),
                    });
                }
                _ => {}
            }
        }
        if can_send {
            self.transmit.push_back(Frame::Goodbye);
            self.goodbye_sent = true;
        }
    }

    /// Processes one frame from the peer. An error means the peer broke the
    /// protocol and the connection must be dropped.
    pub fn handle_frame(&mut self, frame: Frame) -> Result<(), RpcError> {
        if self.goodbye_received || self.transport_closed {
            return Ok(());
        }
        match frame {
            Frame::Goodbye => {
                self.goodbye_received = true;
                self.closing = true;
                self.teardown();
                self.events.push_back(Event::Goodbye);
                Ok(())
            }
            Frame::Packet(packet) => {
                let req = packet.req;
                let body = Body::from_wire(packet.body_type, packet.body)
                    .ok_or(RpcError::InvalidJson { req })?;
                if req > 0 {
                    let number = u32::try_from(req).expect("invariant: positive i32");
                    self.handle_inbound(number, packet.stream, packet.end, body)
                } else if let Some(number) = req.checked_neg().and_then(|n| u32::try_from(n).ok()) {
                    if number > 0 {
                        self.handle_outbound(number, packet.stream, packet.end, body);
                    }
                    // req 0 is a one-way "message", which muxrpc ignores.
                    Ok(())
                } else {
                    // i32::MIN has no positive counterpart: no call of ours has it.
                    Ok(())
                }
            }
        }
    }

    fn handle_inbound(
        &mut self,
        number: u32,
        stream: bool,
        end: bool,
        body: Body,
    ) -> Result<(), RpcError> {
        let id = CallId::Inbound(number);
        if let Some(call) = self.calls.get_mut(&id) {
            if !(stream && matches!(call.kind, CallKind::Stream(_))) {
                return Err(RpcError::DuplicateRequest {
                    req: id_req(number),
                });
            }
            if call.remote_ended {
                // packet-stream drops data after the end too.
                return Ok(());
            }
            if end {
                call.remote_ended = true;
                let close_ours = !call.local_ended && call.closes_with_peer(id);
                let local_ended = call.local_ended || close_ours;
                self.events.push_back(Event::End {
                    id,
                    error: ErrorBody::from_end_body(&body),
                });
                if close_ours {
                    self.end(id, None).expect("invariant: our half was open");
                } else if local_ended {
                    self.remove(id);
                }
            } else {
                self.events.push_back(Event::Data { id, body });
            }
            return Ok(());
        }
        if !self.can_send() || (stream && end) {
            // We can no longer answer; or an end for a stream we already closed
            // (or refused): nothing to do either way.
            return Ok(());
        }
        if self.inbound_open >= INBOUND_CALLS_MAX {
            return Err(RpcError::TooManyInboundCalls);
        }
        let request = if body.as_bytes().len() > REQUEST_BODY_BYTES_MAX {
            Err(format!(
                "request of {} bytes refused: more than {REQUEST_BODY_BYTES_MAX}",
                body.as_bytes().len()
            ))
        } else {
            parse_request(&body, stream)
        };
        let refusal = match &request {
            Err(message) => Some(message.clone()),
            Ok((name, _, _)) => self.permissions.check(name).err(),
        };
        if let Some(message) = refusal {
            // Refused calls are answered and never tracked.
            self.queue(id, stream, true, ErrorBody::new(message).to_body());
            return Ok(());
        }
        let (name, args, call_type) = request.expect("invariant: refusals returned above");
        let kind = if stream {
            CallKind::Stream(call_type)
        } else {
            CallKind::Request
        };
        self.insert(id, kind);
        self.events.push_back(Event::Request {
            id,
            name,
            args,
            call_type,
        });
        Ok(())
    }

    fn handle_outbound(&mut self, number: u32, stream: bool, end: bool, body: Body) {
        let id = CallId::Outbound(number);
        // Frames for calls we do not have, or of the other kind, are dropped
        // (packet-stream looks them up in the other table and finds nothing).
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match (call.kind, stream) {
            (CallKind::Request, false) => {
                let result = if end {
                    Err(ErrorBody::from_body(&body))
                } else {
                    Ok(body)
                };
                self.events.push_back(Event::Response { id, result });
                self.remove(id);
            }
            (CallKind::Stream(_), true) => {
                if call.remote_ended {
                    return;
                }
                if end {
                    call.remote_ended = true;
                    let close_ours = !call.local_ended && call.closes_with_peer(id);
                    let local_ended = call.local_ended;
                    self.events.push_back(Event::End {
                        id,
                        error: ErrorBody::from_end_body(&body),
                    });
                    if close_ours {
                        self.end(id, None).expect("invariant: our half was open");
                    } else if local_ended {
                        self.remove(id);
                    }
                } else {
                    self.events.push_back(Event::Data { id, body });
                }
            }
            _ => {}
        }
    }
}

/// Slots a queue keeps once emptied; a burst's larger capacity is freed, so a quiet
/// connection does not hold its busiest moment's queues.
const DRAINED_QUEUE_KEPT_MAX: usize = 16;

/// The front of `queue`, freeing its memory when that empties a big one.
fn pop_freeing_when_empty<T>(queue: &mut VecDeque<T>) -> Option<T> {
    let front = queue.pop_front();
    if queue.is_empty() && queue.capacity() > DRAINED_QUEUE_KEPT_MAX {
        *queue = VecDeque::new();
    }
    front
}

fn id_req(number: u32) -> i32 {
    i32::try_from(number).expect("invariant: request numbers fit i32")
}

/// A method path as JS sees it: an array of parts, or one string. Non-string
/// parts become their JSON text (JS would stringify them similarly).
fn name_parts(value: Option<&Value>) -> Vec<String> {
    let part = |value: &Value| match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match value {
        Some(Value::Array(parts)) => parts.iter().map(part).collect(),
        Some(other) => vec![part(other)],
        None => vec!["undefined".to_owned()],
    }
}

/// Parses a request body into `(name, args, type)`, or the error message muxrpc
/// answers with.
fn parse_request(body: &Body, stream: bool) -> Result<(Vec<String>, Vec<Value>, CallType), String> {
    let value = body.to_value();
    let object = value.as_ref().and_then(Value::as_object);
    let field = |key: &str| object.and_then(|object| object.get(key));
    let raw = || echo(&String::from_utf8_lossy(body.as_bytes()));
    let call_type = if stream {
        // muxrpc checks the stream type first: "unsupported stream type: X".
        let declared = field("type");
        match declared
            .and_then(Value::as_str)
            .and_then(CallType::from_name)
        {
            Some(call_type) if call_type.is_stream() => call_type,
            _ => {
                let shown = match declared {
                    Some(Value::String(text)) => echo(text),
                    Some(other) => echo(&other.to_string()),
                    None => "undefined".to_owned(),
                };
                return Err(format!("unsupported stream type: {shown}"));
            }
        }
    } else {
        CallType::Async
    };
    let args = match field("args") {
        Some(Value::Array(args)) => args.clone(),
        None if stream => Vec::new(),
        _ => {
            return Err(format!(
                "invalid request, args should be array, was: {}",
                raw()
            ));
        }
    };
    Ok((name_parts(field("name")), args, call_type))
}

#[cfg(test)]
mod tests;
