//! Reading muxrpc frames from an async byte stream.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::codec::{CodecError, Decoder, Frame};

/// Bytes read from the stream at a time. With the decoder drained after every
/// read, the buffered input stays below one frame plus this.
pub const READ_CHUNK_MAX: usize = 16 * 1024;

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameReadError {
    /// The bytes are not valid framing.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The stream ended inside a frame.
    #[error("muxrpc stream ended inside a frame ({0} bytes buffered)")]
    Truncated(usize),
    /// The stream failed.
    #[error("muxrpc stream i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Decodes frames from an [`AsyncRead`] (typically the read half of a
/// [`crate::transport::secretstream::BoxStream`]).
pub struct FrameReader<R> {
    reader: R,
    decoder: Decoder,
    chunk: Box<[u8]>,
}

impl<R: core::fmt::Debug> core::fmt::Debug for FrameReader<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameReader")
            .field("reader", &self.reader)
            .field("decoder", &self.decoder)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps a reader.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            decoder: Decoder::new(),
            chunk: vec![0u8; READ_CHUNK_MAX].into_boxed_slice(),
        }
    }

    /// The next frame; `Ok(None)` at a clean end of stream (or after GOODBYE).
    ///
    /// Cancel safe: bytes are moved into the decoder only after a read has
    /// completed, so dropping this future in a `select!` loses nothing.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, FrameReadError> {
        loop {
            if let Some(frame) = self.decoder.next_frame()? {
                return Ok(Some(frame));
            }
            if self.decoder.is_finished() {
                return Ok(None);
            }
            let read = self.reader.read(&mut self.chunk).await?;
            if read == 0 {
                return match self.decoder.buffered_len() {
                    0 => Ok(None),
                    buffered => Err(FrameReadError::Truncated(buffered)),
                };
            }
            self.decoder.push(&self.chunk[..read]);
        }
    }

    /// The wrapped reader.
    pub fn get_ref(&self) -> &R {
        &self.reader
    }

    /// The wrapped reader, e.g. to read it to its end after GOODBYE. Bytes
    /// already buffered by the decoder are dropped.
    pub fn into_inner(self) -> R {
        self.reader
    }
}
