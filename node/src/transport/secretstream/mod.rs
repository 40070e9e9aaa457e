//! pull-secretstream 2.0.3 framing over libsodium secretstream (protocol.md §11.3).
//!
//! After the handshake each direction is an independent stream keyed by the
//! sender's `encrypt_key` (the receiver's `decrypt_key`):
//!
//! - The sender first sends the 24-byte secretstream header (random bytes,
//!   injected here so that simulations are deterministic).
//! - Every block is exactly [`CIPHERTEXT_BLOCK_LEN`] = 512 bytes: a
//!   [`PLAINTEXT_BLOCK_LEN`] = 495-byte plaintext plus 17 bytes of overhead.
//!   Outgoing bytes are cut into chunks of at most [`BLOCK_PAYLOAD_MAX`] = 494
//!   bytes, each padded to 495 with `sodium_pad` (ISO/IEC 7816-4: `0x80` then
//!   zeros, so there is always at least one padding byte), and pushed with
//!   `TAG_MESSAGE`.
//! - Block boundaries follow the writes: after each write the leftover bytes go
//!   out as a short padded block, so one small write costs a whole block.
//! - The end is one more 512-byte block tagged `TAG_FINAL` whose plaintext is an
//!   empty padded block.
//! - The receiver unpads every block and drops empty plaintexts. A stream that
//!   ends before the final tag is an error, and so is any block that fails
//!   authentication (tampered, replayed, reordered or truncated blocks all do).
//!
//! [`Encryptor`] and [`Decryptor`] are the sans-IO halves; [`BoxStream`] runs
//! both over any `AsyncRead + AsyncWrite`.

mod duplex;
pub mod sodium;

pub use duplex::{BoxStream, READ_CIPHERTEXT_MAX, WRITE_PLAINTEXT_MAX};
pub use sodium::HEADER_LEN;

use zeroize::Zeroizing;

use sodium::{ABYTES, State, TAG_FINAL, TAG_MESSAGE};

/// pull-secretstream's `DEFAULT_BLOCK_SIZE`: every ciphertext block on the wire.
pub const CIPHERTEXT_BLOCK_LEN: usize = 512;
/// The padded plaintext inside every block.
pub const PLAINTEXT_BLOCK_LEN: usize = CIPHERTEXT_BLOCK_LEN - ABYTES;
/// Payload bytes per block: `sodium_pad` always adds at least one byte
/// (pull-secretstream's `MINIMUM_PADDING`).
pub const BLOCK_PAYLOAD_MAX: usize = PLAINTEXT_BLOCK_LEN - 1;

/// Why encrypting or decrypting failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretStreamError {
    /// A block did not authenticate: it was tampered with, replayed, reordered,
    /// or encrypted under another key.
    #[error(
        "secretstream: block failed authentication (tampered, replayed, reordered or wrong key)"
    )]
    Authentication,
    /// A block authenticated but its plaintext is not `sodium_pad`ded.
    #[error("secretstream: block plaintext has invalid padding")]
    BadPadding,
    /// The stream ended before the block tagged `TAG_FINAL`.
    #[error("secretstream: stream ended before the final tag")]
    Truncated,
    /// Bytes arrived after the block tagged `TAG_FINAL`.
    #[error("secretstream: data after the final tag")]
    DataAfterFinal,
    /// The local side wrote after it ended its stream.
    #[error("secretstream: write after the stream was finished")]
    WriteAfterFinish,
    /// [`Encryptor::encrypt_block`] was given more than [`BLOCK_PAYLOAD_MAX`] bytes.
    #[error("secretstream: block payload of {0} bytes exceeds {BLOCK_PAYLOAD_MAX}")]
    PayloadTooLong(usize),
    /// The stream already failed; it stays failed.
    #[error("secretstream: stream already failed")]
    Failed,
}

/// `sodium_pad` into a fresh 495-byte block. `payload.len() <= BLOCK_PAYLOAD_MAX`.
fn pad(payload: &[u8]) -> Zeroizing<[u8; PLAINTEXT_BLOCK_LEN]> {
    let mut block = Zeroizing::new([0u8; PLAINTEXT_BLOCK_LEN]);
    block[..payload.len()].copy_from_slice(payload);
    block[payload.len()] = 0x80;
    block
}

/// `sodium_unpad`: the payload length, or `None` unless the block ends with
/// `0x80` followed only by zeros.
fn unpad(block: &[u8]) -> Option<usize> {
    let marker = block.iter().rposition(|&byte| byte != 0)?;
    (block[marker] == 0x80).then_some(marker)
}

/// The sending half.
#[derive(Debug)]
pub struct Encryptor {
    state: State,
    header: Option<[u8; HEADER_LEN]>,
    finished: bool,
}

impl Encryptor {
    /// A stream whose header is `header` (24 bytes the caller drew from its RNG;
    /// libsodium uses `randombytes_buf`).
    pub fn new(key: &[u8; 32], header: [u8; HEADER_LEN]) -> Self {
        Self {
            state: State::new(key, &header),
            header: Some(header),
            finished: false,
        }
    }

    /// The header, if it has not been emitted yet. [`Self::encrypt`] and
    /// [`Self::finish`] emit it by themselves; take it here only when sending
    /// blocks from [`Self::encrypt_block`].
    pub fn take_header(&mut self) -> Option<[u8; HEADER_LEN]> {
        self.header.take()
    }

    /// Encrypts one chunk of at most [`BLOCK_PAYLOAD_MAX`] bytes into one block.
    pub fn encrypt_block(
        &mut self,
        payload: &[u8],
    ) -> Result<[u8; CIPHERTEXT_BLOCK_LEN], SecretStreamError> {
        if self.finished {
            return Err(SecretStreamError::WriteAfterFinish);
        }
        if payload.len() > BLOCK_PAYLOAD_MAX {
            return Err(SecretStreamError::PayloadTooLong(payload.len()));
        }
        let mut block = [0u8; CIPHERTEXT_BLOCK_LEN];
        self.state.push(&pad(payload)[..], TAG_MESSAGE, &mut block);
        Ok(block)
    }

    /// Encrypts one write, as pull-secretstream does: header first if still
    /// due, then `ceil(len / 494)` blocks appended to `out`. An empty write
    /// sends no block.
    pub fn encrypt(
        &mut self,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SecretStreamError> {
        if self.finished {
            return Err(SecretStreamError::WriteAfterFinish);
        }
        if let Some(header) = self.header.take() {
            out.extend_from_slice(&header);
        }
        out.reserve(plaintext.len().div_ceil(BLOCK_PAYLOAD_MAX) * CIPHERTEXT_BLOCK_LEN);
        for chunk in plaintext.chunks(BLOCK_PAYLOAD_MAX) {
            let block = self.encrypt_block(chunk)?;
            out.extend_from_slice(&block);
        }
        Ok(())
    }

    /// Ends the stream: header if still due, then the `TAG_FINAL` block.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), SecretStreamError> {
        if self.finished {
            return Err(SecretStreamError::WriteAfterFinish);
        }
        if let Some(header) = self.header.take() {
            out.extend_from_slice(&header);
        }
        let mut block = [0u8; CIPHERTEXT_BLOCK_LEN];
        self.state.push(&pad(&[])[..], TAG_FINAL, &mut block);
        out.extend_from_slice(&block);
        self.finished = true;
        Ok(())
    }

    /// True after [`Self::finish`].
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// What one block held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// An ordinary block (its payload may be empty and then carries nothing).
    Message,
    /// The `TAG_FINAL` block: the sender ended its stream.
    Final,
}

/// The receiving half. Bounded: besides what it returns it keeps at most one
/// partial block (and the header) buffered.
pub struct Decryptor {
    key: Zeroizing<[u8; 32]>,
    state: Option<State>,
    partial: Vec<u8>,
    finished: bool,
    failed: bool,
}

impl core::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the key.
        f.debug_struct("Decryptor")
            .field("has_header", &self.state.is_some())
            .field("partial", &self.partial.len())
            .field("finished", &self.finished)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    /// A receiver that expects the header first.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            key: Zeroizing::new(*key),
            state: None,
            partial: Vec::with_capacity(CIPHERTEXT_BLOCK_LEN),
            finished: false,
            failed: false,
        }
    }

    /// A receiver that already has the header (for block-level use with
    /// [`Self::decrypt_block`]).
    pub fn with_header(key: &[u8; 32], header: &[u8; HEADER_LEN]) -> Self {
        let mut decryptor = Self::new(key);
        decryptor.state = Some(State::new(key, header));
        decryptor
    }

    /// True once the `TAG_FINAL` block arrived.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Authenticates and decrypts one 512-byte block, appending its unpadded
    /// payload to `out`. Needs the header (see [`Self::with_header`]); without
    /// it the block cannot authenticate.
    pub fn decrypt_block(
        &mut self,
        block: &[u8; CIPHERTEXT_BLOCK_LEN],
        out: &mut Vec<u8>,
    ) -> Result<BlockKind, SecretStreamError> {
        if self.failed {
            return Err(SecretStreamError::Failed);
        }
        if self.finished {
            self.failed = true;
            return Err(SecretStreamError::DataAfterFinal);
        }
        let result = self.open(block, out);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn open(
        &mut self,
        block: &[u8; CIPHERTEXT_BLOCK_LEN],
        out: &mut Vec<u8>,
    ) -> Result<BlockKind, SecretStreamError> {
        let state = self
            .state
            .as_mut()
            .ok_or(SecretStreamError::Authentication)?;
        let mut plain = Zeroizing::new([0u8; PLAINTEXT_BLOCK_LEN]);
        let tag = state
            .pull(block, &mut plain[..])
            .map_err(|_| SecretStreamError::Authentication)?;
        let len = unpad(&plain[..]).ok_or(SecretStreamError::BadPadding)?;
        out.extend_from_slice(&plain[..len]);
        if tag == TAG_FINAL {
            self.finished = true;
            Ok(BlockKind::Final)
        } else {
            Ok(BlockKind::Message)
        }
    }

    /// Feeds ciphertext as it arrives (any split), appending every payload byte
    /// of the blocks it completes to `out`. `out` grows by less than
    /// `ciphertext.len()`, so callers bound memory by bounding their reads.
    pub fn decrypt(
        &mut self,
        mut ciphertext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SecretStreamError> {
        if self.failed {
            return Err(SecretStreamError::Failed);
        }
        if self.state.is_none() {
            let take = (HEADER_LEN - self.partial.len()).min(ciphertext.len());
            self.partial.extend_from_slice(&ciphertext[..take]);
            ciphertext = &ciphertext[take..];
            if self.partial.len() < HEADER_LEN {
                return Ok(());
            }
            let header: [u8; HEADER_LEN] = self.partial[..]
                .try_into()
                .expect("invariant: exactly the header is buffered");
            self.state = Some(State::new(&self.key, &header));
            self.partial.clear();
        }
        if !self.partial.is_empty() {
            let take = (CIPHERTEXT_BLOCK_LEN - self.partial.len()).min(ciphertext.len());
            self.partial.extend_from_slice(&ciphertext[..take]);
            ciphertext = &ciphertext[take..];
            if self.partial.len() < CIPHERTEXT_BLOCK_LEN {
                return Ok(());
            }
            let block: [u8; CIPHERTEXT_BLOCK_LEN] = self.partial[..]
                .try_into()
                .expect("invariant: exactly one block is buffered");
            self.partial.clear();
            self.decrypt_block(&block, out)?;
        }
        let mut blocks = ciphertext.chunks_exact(CIPHERTEXT_BLOCK_LEN);
        for block in blocks.by_ref() {
            let block: &[u8; CIPHERTEXT_BLOCK_LEN] =
                block.try_into().expect("invariant: exact chunk");
            self.decrypt_block(block, out)?;
        }
        let rest = blocks.remainder();
        if !rest.is_empty() {
            if self.finished {
                self.failed = true;
                return Err(SecretStreamError::DataAfterFinal);
            }
            self.partial.extend_from_slice(rest);
        }
        Ok(())
    }

    /// Call when the underlying stream reached end of file: fine after the
    /// final tag, [`SecretStreamError::Truncated`] before it.
    pub fn end_of_input(&self) -> Result<(), SecretStreamError> {
        if self.failed {
            Err(SecretStreamError::Failed)
        } else if self.finished {
            Ok(())
        } else {
            Err(SecretStreamError::Truncated)
        }
    }
}

#[cfg(test)]
mod tests;
