//! packet-stream-codec 1.2.0 framing (protocol.md §11.4).
//!
//! A frame is a 9-byte header and a body:
//!
//! ```text
//!  byte 0      flags: bit 3 stream, bit 2 end/error, bits 0-1 body type
//!              (0 binary, 1 UTF-8 text, 2 JSON); bits 4-7 unused
//!  bytes 1-4   body length, u32 big-endian
//!  bytes 5-8   request number, i32 big-endian
//! ```
//!
//! Nine zero bytes are GOODBYE, the last frame a side sends. Like the JS
//! decoder, ours treats *any* header with body length 0 as GOODBYE and ignores
//! the flag bits 4-7; the encoder therefore refuses empty bodies, which a JS
//! peer would misread as GOODBYE.
//!
//! JS puts no bound on the body length; we do ([`FRAME_BODY_LEN_MAX`]), because
//! a peer must not make us buffer an arbitrary amount of memory.
//!
//! Every frame encoded or decoded is also a `TRACE` event of target [`WIRE_TRACE_TARGET`]
//! carrying its wire bytes in hex (`RUST_LOG=ppppp::wire=trace`): the plaintext a connection
//! carried, frame by frame, for reproducing a peer's behaviour and for the interop test that
//! holds `sync.reconcile` to leaving a JS peer's bytes unchanged.

use core::fmt;

/// Bytes of a frame header.
pub const HEADER_LEN: usize = 9;

/// The largest body we accept or send: 8 MiB.
///
/// Why this much: the biggest frames PZP sends are sync phase-8/9 payloads, a
/// JSON array of every msg the peer lacks in one tangle range. A msg may be up
/// to ~64 KiB of JSON (the spec's 65535-byte cap, §3.1, which JS does not
/// enforce), so 8 MiB holds over a hundred maximum-size msgs or thousands of
/// typical ones in one frame, while capping what one hostile frame can make us
/// buffer at a size a peer can afford per connection.
pub const FRAME_BODY_LEN_MAX: usize = 8 * 1024 * 1024;

/// The body's encoding, bits 0-1 of the flags byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BodyType {
    /// Raw bytes (JS `Buffer`).
    Binary,
    /// A UTF-8 string.
    Text,
    /// A JSON value.
    Json,
}

impl BodyType {
    /// The two-bit code.
    pub fn code(self) -> u8 {
        match self {
            BodyType::Binary => 0,
            BodyType::Text => 1,
            BodyType::Json => 2,
        }
    }

    /// The type for a code; 3 is unassigned (JS fails with "unknown message type").
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(BodyType::Binary),
            1 => Some(BodyType::Text),
            2 => Some(BodyType::Json),
            _ => None,
        }
    }
}

const FLAG_STREAM: u8 = 0b1000;
const FLAG_END: u8 = 0b0100;
const FLAG_TYPE: u8 = 0b0011;

/// Why bytes could not be decoded, or a frame could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A header announces a body larger than [`FRAME_BODY_LEN_MAX`].
    #[error("muxrpc frame body of {len} bytes exceeds the {FRAME_BODY_LEN_MAX}-byte limit")]
    BodyTooLong {
        /// The announced (or attempted) length.
        len: u64,
    },
    /// The body type bits are 3.
    #[error("muxrpc frame has unknown body type {0}")]
    UnknownBodyType(u8),
    /// An empty body cannot be sent: the peer would read the frame as GOODBYE.
    #[error("muxrpc frame body is empty (a JS peer would read it as GOODBYE)")]
    EmptyBody,
}

/// A frame header exactly as on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The flags byte.
    pub flags: u8,
    /// The body length.
    pub body_len: u32,
    /// The request number.
    pub req: i32,
}

impl Header {
    /// Reads a header.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        let [flags, l0, l1, l2, l3, r0, r1, r2, r3] = *bytes;
        Self {
            flags,
            body_len: u32::from_be_bytes([l0, l1, l2, l3]),
            req: i32::from_be_bytes([r0, r1, r2, r3]),
        }
    }

    /// Writes a header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = self.flags;
        out[1..5].copy_from_slice(&self.body_len.to_be_bytes());
        out[5..].copy_from_slice(&self.req.to_be_bytes());
        out
    }

    /// Bit 3.
    pub fn is_stream(&self) -> bool {
        self.flags & FLAG_STREAM != 0
    }

    /// Bit 2.
    pub fn is_end(&self) -> bool {
        self.flags & FLAG_END != 0
    }

    /// Bits 0-1.
    pub fn body_type(&self) -> Result<BodyType, CodecError> {
        let code = self.flags & FLAG_TYPE;
        BodyType::from_code(code).ok_or(CodecError::UnknownBodyType(code))
    }

    /// JS reads every header with an empty body as GOODBYE.
    pub fn is_goodbye(&self) -> bool {
        self.body_len == 0
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Header({:02x} len={} req={})",
            self.flags, self.body_len, self.req
        )
    }
}

/// One muxrpc packet.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    /// Request number: positive from the caller, negated in replies.
    pub req: i32,
    /// Part of a stream (as opposed to a request and its single reply).
    pub stream: bool,
    /// Ends a stream, or carries an error reply.
    pub end: bool,
    /// How `body` is encoded.
    pub body_type: BodyType,
    /// The body bytes, never empty.
    pub body: Vec<u8>,
}

impl Packet {
    /// The header this packet is sent with.
    pub fn header(&self) -> Result<Header, CodecError> {
        if self.body.is_empty() {
            return Err(CodecError::EmptyBody);
        }
        if self.body.len() > FRAME_BODY_LEN_MAX {
            return Err(CodecError::BodyTooLong {
                len: self.body.len() as u64,
            });
        }
        let flags =
            (u8::from(self.stream) << 3) | (u8::from(self.end) << 2) | self.body_type.code();
        let body_len =
            u32::try_from(self.body.len()).expect("invariant: bounded by FRAME_BODY_LEN_MAX");
        Ok(Header {
            flags,
            body_len,
            req: self.req,
        })
    }
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let preview = match self.body_type {
            BodyType::Binary => format!("{} bytes", self.body.len()),
            BodyType::Text | BodyType::Json => {
                let text = String::from_utf8_lossy(&self.body);
                let mut cut: String = text.chars().take(80).collect();
                if cut.len() < text.len() {
                    cut.push('…');
                }
                cut
            }
        };
        f.debug_struct("Packet")
            .field("req", &self.req)
            .field("stream", &self.stream)
            .field("end", &self.end)
            .field("body_type", &self.body_type)
            .field("body", &preview)
            .finish()
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A packet.
    Packet(Packet),
    /// The peer is done sending.
    Goodbye,
}

/// The tracing target of the frame-by-frame wire record (see the module's documentation).
pub const WIRE_TRACE_TARGET: &str = "ppppp::wire";

/// Records one frame's wire bytes (`header`, then `body`), if the wire record is on.
fn trace_frame(direction: &'static str, header: &[u8], body: &[u8]) {
    tracing::trace!(target: WIRE_TRACE_TARGET, direction, frame = %WireHex(header, body));
}

/// Two byte strings, one after the other, in lowercase hex (written only when a wire-record
/// event is, so a frame costs nothing when the record is off).
struct WireHex<'a>(&'a [u8], &'a [u8]);

impl fmt::Display for WireHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0
            .iter()
            .chain(self.1)
            .try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// Appends the wire bytes of `frame` to `out`.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) -> Result<(), CodecError> {
    match frame {
        Frame::Goodbye => {
            out.extend_from_slice(&[0u8; HEADER_LEN]);
            trace_frame("out", &[0u8; HEADER_LEN], &[]);
        }
        Frame::Packet(packet) => {
            let header = packet.header()?.to_bytes();
            out.reserve(HEADER_LEN + packet.body.len());
            out.extend_from_slice(&header);
            out.extend_from_slice(&packet.body);
            trace_frame("out", &header, &packet.body);
        }
    }
    Ok(())
}

/// Incremental decoder: [`Decoder::push`] bytes as they arrive, then take
/// frames with [`Decoder::next_frame`] until it returns `None`. Drained that
/// way it holds at most one partial frame plus the last push; an oversized
/// header fails as soon as its 9 bytes are in, before any body is buffered.
#[derive(Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    /// Bytes before this index are consumed.
    start: usize,
    goodbye: bool,
}

/// Consumed bytes are moved out of the buffer once they exceed this many (and
/// half the buffer), so compaction costs amortized O(1) per byte.
const COMPACT_AFTER: usize = 64 * 1024;

/// The most capacity the buffer keeps once every byte in it is decoded. A bigger one (a
/// large frame went through) is freed, so an idle connection does not hold its largest frame.
const DRAINED_BUFFER_KEPT_MAX: usize = 4 * 1024;

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &self.buffered_len())
            .field("goodbye", &self.goodbye)
            .finish()
    }
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes. Bytes after GOODBYE are ignored, as in JS.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.goodbye {
            return;
        }
        if self.start == self.buffer.len() {
            self.empty_drained();
        } else if self.start >= COMPACT_AFTER && self.start * 2 >= self.buffer.len() {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Empties the buffer once every byte in it is decoded, freeing a big one.
    fn empty_drained(&mut self) {
        if self.buffer.capacity() > DRAINED_BUFFER_KEPT_MAX {
            self.buffer = Vec::new();
        } else {
            self.buffer.clear();
        }
        self.start = 0;
    }

    /// Bytes pushed but not yet decoded.
    pub fn buffered_len(&self) -> usize {
        self.buffer.len() - self.start
    }

    /// Bytes of memory the decoder's buffer holds (its capacity, not what is buffered).
    pub fn held_bytes(&self) -> usize {
        self.buffer.capacity()
    }

    /// True after GOODBYE was decoded.
    pub fn is_finished(&self) -> bool {
        self.goodbye
    }

    /// The next complete frame, `None` if more bytes are needed (or after
    /// GOODBYE). An error means the byte stream is unusable: disconnect.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, CodecError> {
        if self.goodbye {
            return Ok(None);
        }
        if self.start == self.buffer.len() {
            self.empty_drained();
            return Ok(None);
        }
        let available = &self.buffer[self.start..];
        let Some(header_bytes) = available.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let header = Header::parse(header_bytes);
        if header.is_goodbye() {
            self.goodbye = true;
            self.start += HEADER_LEN;
            trace_frame("in", header_bytes, &[]);
            return Ok(Some(Frame::Goodbye));
        }
        let body_len = header.body_len as usize;
        if body_len > FRAME_BODY_LEN_MAX {
            return Err(CodecError::BodyTooLong {
                len: u64::from(header.body_len),
            });
        }
        let body_type = header.body_type()?;
        let Some(body) = available.get(HEADER_LEN..HEADER_LEN + body_len) else {
            return Ok(None);
        };
        trace_frame("in", header_bytes, body);
        let packet = Packet {
            req: header.req,
            stream: header.is_stream(),
            end: header.is_end(),
            body_type,
            body: body.to_vec(),
        };
        self.start += HEADER_LEN + body_len;
        Ok(Some(Frame::Packet(packet)))
    }
}
