//! [`BoxStream`]: both secretstream directions over one `AsyncRead + AsyncWrite`.

use core::pin::Pin;
use core::task::{Context, Poll, ready};
use std::io;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{
    BLOCK_PAYLOAD_MAX, CIPHERTEXT_BLOCK_LEN, Decryptor, Encryptor, HEADER_LEN, SecretStreamError,
};
use crate::transport::shse::SessionKeys;

/// The most plaintext one `poll_write` accepts. It is a whole number of block
/// payloads, so big writes produce only full blocks, and it bounds the pending
/// ciphertext to 32 blocks (16 KiB) plus the header and the final block.
pub const WRITE_PLAINTEXT_MAX: usize = 32 * BLOCK_PAYLOAD_MAX;

/// The most ciphertext read from the inner stream at once. It bounds the
/// decrypted-but-unread plaintext, which is always smaller than what was read.
pub const READ_CIPHERTEXT_MAX: usize = 32 * CIPHERTEXT_BLOCK_LEN;

/// The most capacity a drained buffer keeps. Bigger ones are freed once empty, so an idle
/// connection holds about a block per direction instead of its largest burst (thousands of
/// connections share one process in the simulator).
const DRAINED_BUFFER_KEPT_MAX: usize = HEADER_LEN + CIPHERTEXT_BLOCK_LEN;

fn invalid_data(error: SecretStreamError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// An encrypted duplex: what is written is encrypted with the session's
/// `encrypt_key`, what is read was decrypted with its `decrypt_key`.
///
/// - Each `poll_write` is one pull-secretstream write (block boundaries follow
///   it), so write whole muxrpc frames, or batches of them, at once.
/// - Writes apply backpressure: a write waits until the previous write's
///   ciphertext has been handed to the inner stream.
/// - `poll_shutdown` sends the `TAG_FINAL` block, then shuts the inner stream.
/// - Reads return EOF after the peer's final block, and an
///   [`io::ErrorKind::InvalidData`] error wrapping a [`SecretStreamError`] if
///   the peer's stream is corrupt or ends early.
pub struct BoxStream<S> {
    inner: S,
    encryptor: Encryptor,
    decryptor: Decryptor,
    /// Ciphertext not yet accepted by `inner`, from `pending_from` on.
    pending: Vec<u8>,
    pending_from: usize,
    /// Decrypted plaintext not yet returned, from `plain_from` on.
    plain: Vec<u8>,
    plain_from: usize,
    inner_eof: bool,
}

impl<S: core::fmt::Debug> core::fmt::Debug for BoxStream<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BoxStream")
            .field("inner", &self.inner)
            .field("encryptor", &self.encryptor)
            .field("decryptor", &self.decryptor)
            .field("pending_write", &(self.pending.len() - self.pending_from))
            .field("pending_read", &(self.plain.len() - self.plain_from))
            .field("inner_eof", &self.inner_eof)
            .finish()
    }
}

impl<S> BoxStream<S> {
    /// Wraps `inner` after a handshake. `header` is 24 random bytes for our
    /// outgoing secretstream header; it is queued at once and goes out with the
    /// first write, flush or shutdown.
    pub fn new(inner: S, keys: &SessionKeys, header: [u8; HEADER_LEN]) -> Self {
        let mut encryptor = Encryptor::new(&keys.encrypt_key, header);
        let mut pending = Vec::with_capacity(HEADER_LEN + CIPHERTEXT_BLOCK_LEN);
        if let Some(header) = encryptor.take_header() {
            pending.extend_from_slice(&header);
        }
        Self {
            inner,
            encryptor,
            decryptor: Decryptor::new(&keys.decrypt_key),
            pending,
            pending_from: 0,
            plain: Vec::new(),
            plain_from: 0,
            inner_eof: false,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// Empties `buffer`, freeing it if it grew beyond [`DRAINED_BUFFER_KEPT_MAX`].
fn empty_keeping_little(buffer: &mut Vec<u8>) {
    if buffer.capacity() > DRAINED_BUFFER_KEPT_MAX {
        *buffer = Vec::new();
    } else {
        buffer.clear();
    }
}

impl<S: AsyncWrite + Unpin> BoxStream<S> {
    /// Hands all pending ciphertext to the inner stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending_from < self.pending.len() {
            let written = ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.pending_from..])
            )?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending_from += written;
        }
        empty_keeping_little(&mut self.pending);
        self.pending_from = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for BoxStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.plain_from < this.plain.len() {
                let available = &this.plain[this.plain_from..];
                let take = available.len().min(buf.remaining());
                buf.put_slice(&available[..take]);
                this.plain_from += take;
                return Poll::Ready(Ok(()));
            }
            if this.decryptor.is_finished() {
                return Poll::Ready(Ok(()));
            }
            if this.inner_eof {
                return Poll::Ready(this.decryptor.end_of_input().map_err(invalid_data));
            }
            empty_keeping_little(&mut this.plain);
            this.plain_from = 0;
            // A fresh buffer per read, freed when the read is pending: a waiting reader holds
            // no ciphertext buffer. Uninitialized, so nothing is zeroed either.
            let mut ciphertext = Vec::with_capacity(READ_CIPHERTEXT_MAX);
            let mut read = ReadBuf::uninit(ciphertext.spare_capacity_mut());
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                this.inner_eof = true;
                continue;
            }
            this.decryptor
                .decrypt(read.filled(), &mut this.plain)
                .map_err(invalid_data)?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for BoxStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        let accepted = buf.len().min(WRITE_PLAINTEXT_MAX);
        this.encryptor
            .encrypt(&buf[..accepted], &mut this.pending)
            .map_err(|error| io::Error::new(io::ErrorKind::BrokenPipe, error))?;
        // Start sending right away; whatever the inner stream does not take now
        // goes out on the next write, flush or shutdown.
        if let Poll::Ready(Err(error)) = this.poll_drain(cx) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(accepted))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.encryptor.is_finished() {
            ready!(this.poll_drain(cx))?;
            this.encryptor
                .finish(&mut this.pending)
                .map_err(|error| io::Error::new(io::ErrorKind::BrokenPipe, error))?;
        }
        ready!(this.poll_drain(cx))?;
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
