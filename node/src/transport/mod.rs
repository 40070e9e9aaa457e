//! The transport stack, byte-compatible with the JS reference (protocol.md §11):
//!
//! ```text
//!   TCP (or a hub tunnel)
//!    └─ shse         secret-handshake-ext 0.0.12: 64/64/144/80-byte handshake   (§11.2)
//!        └─ secretstream  pull-secretstream 2.0.3: 24-byte header, 512-byte blocks (§11.3)
//!            └─ muxrpc    packet-stream-codec 1.2.0 frames + muxrpc 8 calls       (§11.4)
//! ```
//!
//! Every layer is a *sans-IO* machine (bytes in, bytes or events out) so that
//! simulations drive it deterministically; the thin async adapters in
//! [`shse::io`] and [`secretstream::BoxStream`] run the same machines over any
//! `tokio::io::{AsyncRead, AsyncWrite}`. Randomness (ephemeral handshake keys,
//! secretstream headers) is always injected by the caller: nothing here reads OS
//! entropy or the wall clock.
//!
//! Module map:
//! - [`caps`]: the network key (`p2pLq5V…`, §11.1).
//! - [`shse`]: handshake machines, session keys, async drivers.
//! - [`secretstream`]: libsodium `crypto_secretstream_xchacha20poly1305`, the
//!   pull-secretstream framing on top, and the encrypted duplex stream.
//! - [`muxrpc`]: frame codec and the call machine (requests, streams,
//!   permissions, GOODBYE).
//! - [`addr`]: multiserver and multiaddr address strings (§12.2).
//! - [`fuzz`]: bodies of the cargo-fuzz targets in `fuzz/` (also run by `cargo test`).

pub mod addr;
pub mod caps;
mod crypto;
pub mod fuzz;
pub mod muxrpc;
pub mod secretstream;
pub mod shse;

use core::fmt;

/// Length of an Ed25519 public key, a network key and an SHSE token.
pub const KEY_LEN: usize = 32;

/// Errors turning text into a [`PublicKey`] or a [`Token`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyParseError {
    /// The text is not base58 (Bitcoin alphabet).
    #[error("not base58: {0:?}")]
    NotBase58(String),
    /// The text decodes to a byte string that is not 32 bytes long.
    #[error("expected 32 bytes, {text:?} decodes to {actual}")]
    WrongLength {
        /// The text that was parsed.
        text: String,
        /// How many bytes it decoded to.
        actual: usize,
    },
}

/// Decodes base58 text that must hold exactly 32 bytes.
fn decode_key_base58(text: &str) -> Result<[u8; KEY_LEN], KeyParseError> {
    let bytes = bs58::decode(text)
        .into_vec()
        .map_err(|_| KeyParseError::NotBase58(text.to_owned()))?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| KeyParseError::WrongLength {
        text: text.to_owned(),
        actual: bytes.len(),
    })
}

/// An Ed25519 public key: a peer's long-term identity on the network. In text
/// it is base58, the same string JS uses as "pubkey" and "sigkey" (§2.4).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; KEY_LEN]);

impl PublicKey {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Parses base58 text.
    pub fn from_base58(text: &str) -> Result<Self, KeyParseError> {
        decode_key_base58(text).map(Self)
    }

    /// Base58 text.
    pub fn to_base58(&self) -> String {
        bs58::encode(self.0).into_string()
    }
}

impl From<&ed25519_dalek::VerifyingKey> for PublicKey {
    fn from(key: &ed25519_dalek::VerifyingKey) -> Self {
        Self(key.to_bytes())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base58())
    }
}

/// The 32-byte SHSE "extra" token a client sends inside its hello (§11.2): hub
/// invite tokens and promise tokens travel this way. All zeros on the wire
/// means "no token", which is why a `Token` is never all zeros in an API.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub [u8; KEY_LEN]);

impl Token {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Parses base58 text.
    pub fn from_base58(text: &str) -> Result<Self, KeyParseError> {
        decode_key_base58(text).map(Self)
    }

    /// Base58 text.
    pub fn to_base58(&self) -> String {
        bs58::encode(self.0).into_string()
    }

    /// How a token travels in the hello: all zeros stands for "none".
    pub(crate) fn to_wire(token: Option<&Token>) -> [u8; KEY_LEN] {
        token.map_or([0u8; KEY_LEN], |token| token.0)
    }

    /// The inverse of [`Token::to_wire`]: all zeros is reported as `None`, as JS does.
    pub(crate) fn from_wire(bytes: [u8; KEY_LEN]) -> Option<Token> {
        if bytes == [0u8; KEY_LEN] {
            None
        } else {
            Some(Token(bytes))
        }
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tokens are bearer credentials: never print them whole.
        let text = self.to_base58();
        write!(f, "Token({}…)", text.get(..4).unwrap_or(""))
    }
}
