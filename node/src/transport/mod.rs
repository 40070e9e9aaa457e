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
//! - [`ping`]: pzp-net's `net.ping` keepalive, answered over a muxrpc duplex.
//! - [`addr`]: multiserver and multiaddr address strings (§12.2).
//! - [`fuzz`]: bodies of the cargo-fuzz targets in `fuzz/` (also run by `cargo test`).
//!
//! # Cryptography: which crate builds what
//!
//! No AEAD, MAC or constant-time comparison is assembled here; each libsodium
//! construction the reference uses comes whole from a crate:
//!
//! | libsodium | crate |
//! |---|---|
//! | `crypto_secretstream_xchacha20poly1305` (with its MAC padding quirk) | `dryoc` (classic API) |
//! | `crypto_secretbox_easy` / `_open_easy` (XSalsa20-Poly1305) | `dryoc` |
//! | `crypto_auth` / `_verify` (HMAC-SHA-512-256) | `dryoc` |
//! | `crypto_scalarmult`, `crypto_sign_ed25519_{pk,sk}_to_curve25519` | `curve25519-dalek` |
//! | `crypto_sign_detached` / `_verify_detached` | `ed25519-dalek` |
//! | `crypto_hash_sha256` | `sha2` |
//! | `sodium_is_zero` on the X25519 output | `subtle` |
//!
//! Why dryoc: a maintained pure-Rust crate with all three constructions in
//! libsodium's exact form (its tests compare with libsodium); it builds on the
//! versions this workspace already has (curve25519-dalek 5, sha2 0.11,
//! getrandom 0.4, subtle, zeroize), so it adds no second copy of anything; its
//! secretstream state wipes itself on drop; and it is the fastest option
//! measured (docs/benchmarks.md: secretstream 2–4× faster than our former
//! ChaCha20/Poly1305 assembly, handshakes unchanged). The alternatives:
//! - RustCrypto's `crypto_secretstream` 0.2 and `crypto_secretbox` 0.1 pin the
//!   previous generation of traits (aead 0.5, cipher 0.4, rand_core 0.6: a
//!   second copy of the whole stack); the secretstream state is not zeroized,
//!   only a random-number generator can supply its header (ours is injected
//!   for deterministic simulation), and it does not rekey after `TAG_FINAL` as
//!   libsodium does. The releases that would match our versions are
//!   unpublished or exact-pinned release candidates.
//! - Bindings to libsodium itself: `unsafe` FFI in our code or an archived
//!   wrapper (sodiumoxide), a C build in CI, and code the fuzzers do not see.
//!
//! dryoc's cost: it is a large crate with SIMD and assembly kernels (`unsafe`,
//! which our lint forbids only in our own code), maintained by one person and
//! not independently audited, where RustCrypto's ChaCha20 and Poly1305 had NCC
//! Group's 2020 review (through `chacha20poly1305`). The vectors (`shse.json`,
//! the secretstream block), the interop suite against the JS reference and the
//! fuzz targets pin its behaviour.
//!
//! What stays hand-written, because it is the protocol rather than a
//! primitive, and no crate implements these formats:
//! - the SHSE key schedule and message layouts ([`shse`]): which SHA-256 of
//!   which shared secrets keys which box, what each signature covers, the
//!   extra token in the hello;
//! - pull-secretstream's framing ([`secretstream`]): 512-byte blocks,
//!   `sodium_pad`/`sodium_unpad` (ISO/IEC 7816-4) inside them, the final
//!   block, and both stream states starting from an injected header;
//! - the two Ed25519-to-Curve25519 conversions in `crypto.rs`: a few lines over
//!   curve25519-dalek (SHA-512 of the seed then `clamp_integer`; the
//!   small-order and torsion checks libsodium applies to public keys).

pub mod addr;
pub mod caps;
mod crypto;
pub mod fuzz;
pub mod muxrpc;
pub mod ping;
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

/// A 32-byte key newtype written in base58: the raw bytes, parsing and printing. Each key
/// type keeps its own `Debug` (a token is a credential and is never printed whole).
macro_rules! key_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $crate::transport::KEY_LEN]);

        impl $name {
            /// The raw 32 bytes.
            pub fn as_bytes(&self) -> &[u8; $crate::transport::KEY_LEN] {
                &self.0
            }

            /// Parses base58 text.
            pub fn from_base58(text: &str) -> Result<Self, $crate::transport::KeyParseError> {
                $crate::transport::decode_key_base58(text).map(Self)
            }

            /// Base58 text.
            pub fn to_base58(&self) -> String {
                bs58::encode(self.0).into_string()
            }
        }
    };
}
pub(crate) use key_newtype;

key_newtype! {
    /// An Ed25519 public key: a peer's long-term identity on the network. In text
    /// it is base58, the same string JS uses as "pubkey" and "sigkey" (§2.4).
    PublicKey
}

impl From<&ed25519_dalek::VerifyingKey> for PublicKey {
    fn from(key: &ed25519_dalek::VerifyingKey) -> Self {
        Self(key.to_bytes())
    }
}

/// The protocol's ID of the same key (`proto` keeps keys as ordered base58 text).
impl From<PublicKey> for proto::ids::PubKey {
    fn from(key: PublicKey) -> Self {
        proto::ids::PubKey::from_bytes(&key.0)
    }
}

impl From<&proto::ids::PubKey> for PublicKey {
    fn from(key: &proto::ids::PubKey) -> Self {
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

key_newtype! {
    /// The 32-byte SHSE "extra" token a client sends inside its hello (§11.2): hub
    /// invite tokens and promise tokens travel this way. All zeros on the wire
    /// means "no token", which is why a `Token` is never all zeros in an API.
    Token
}

impl Token {
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
