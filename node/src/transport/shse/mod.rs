//! secret-handshake-ext 0.0.12 ("SHSE", protocol.md §11.2) as sans-IO machines.
//!
//! Four fixed-size messages authenticate both peers under a shared network key
//! `K` and derive the session keys for [`super::secretstream`]:
//!
//! | # | dir | bytes | content |
//! |---|-----|-------|---------|
//! | 1 | C→S | 64  | `hmac_K(a_pk) ‖ a_pk` (client ephemeral Curve25519 key) |
//! | 2 | S→C | 64  | `hmac_K(b_pk) ‖ b_pk` |
//! | 3 | C→S | 144 | `secretbox(sig_A(K‖B‖sha256(ab)) ‖ A ‖ extra, sha256(K‖ab‖aB))` |
//! | 4 | S→C | 80  | `secretbox(sig_B(K‖hello‖sha256(ab)), sha256(K‖ab‖aB‖Ab))` |
//!
//! where `a`/`b` are ephemeral keys, `A`/`B` long-term Ed25519 keys (converted
//! to Curve25519 for the Diffie-Hellmans), `hmac` is `crypto_auth` and the boxes
//! use a zero nonce. Unlike SSB's SHS, the hello carries a 32-byte `extra` token
//! (all zeros = none), the server signs over it, and ephemeral keys are Ed25519
//! keypairs made from 32 random bytes and converted to Curve25519. The session
//! keys are `encrypt = sha256(sha256(secret3) ‖ remote)`,
//! `decrypt = sha256(sha256(secret3) ‖ local)`.
//!
//! The machines never read entropy: the caller passes the 32-byte ephemeral seed
//! ([`EphemeralSeed`]), which is what makes `shse.json` reproducible and
//! simulations deterministic. Drive them with [`ClientHandshake::receive`] /
//! [`ClientHandshake::take_output`] (and likewise for the server), or use the
//! async drivers in [`io`]. The server asks its caller to authorize the client
//! ([`ServerHandshake::pending_authorization`], [`ServerHandshake::authorize`])
//! before it sends message 4, exactly where JS calls `authorize(pubkey, extra)`.

pub mod io;

use core::fmt;
use core::time::Duration;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::{Zeroize, Zeroizing};

use super::caps::NetworkKey;
use super::crypto;
use super::{PublicKey, Token};

/// Bytes of messages 1 and 2 (`hmac ‖ ephemeral public key`).
pub const CHALLENGE_LEN: usize = 64;
/// Bytes of message 3 (16-byte box MAC + 64 signature + 32 key + 32 extra).
pub const CLIENT_AUTH_LEN: usize = 144;
/// Bytes of message 4 (16-byte box MAC + 64 signature).
pub const SERVER_ACCEPT_LEN: usize = 80;
/// The plaintext of message 3: `sig_A ‖ A ‖ extra`.
const HELLO_LEN: usize = 128;
/// The largest message either side reads, for fixed read buffers.
pub const MESSAGE_LEN_MAX: usize = CLIENT_AUTH_LEN;

/// JS's default handshake timeout (`shse.timeoutHandshake`, 15 s).
pub const HANDSHAKE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(15);

/// Why a handshake failed. Each variant is one failure a caller may want to tell
/// apart (log, count, or show the user); none of them reveals secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer's challenge (message 1 or 2) has a bad HMAC: it uses another
    /// network key, or does not speak SHSE at all.
    #[error("shse: the peer's challenge has a bad hmac (different network key, or not shse)")]
    WrongNetworkKey,
    /// A Diffie-Hellman gave the all-zero secret: the peer sent a low-order
    /// ephemeral key (libsodium refuses these too).
    #[error("shse: the peer's ephemeral key is a low-order point")]
    LowOrderKey,
    /// The server key the client was asked to dial is not a usable Ed25519 point.
    #[error("shse client: the expected server key {0} is not a valid ed25519 public key")]
    InvalidServerKey(PublicKey),
    /// Server side: message 3 did not decrypt, so the client computed its keys for
    /// another server key (it dialed a wrong number).
    #[error(
        "shse server: the client hello did not decrypt; the client expects a different server key"
    )]
    ServerKeyMismatch,
    /// Server side: the client's long-term key in the hello is not a usable
    /// Ed25519 point.
    #[error("shse server: the client's public key is not a valid ed25519 point")]
    InvalidClientKey,
    /// Server side: the client's signature in the hello does not verify.
    #[error("shse server: the client hello signature is invalid")]
    BadClientSignature,
    /// Client side: message 4 did not decrypt (the server does not hold the keys
    /// it pretends to).
    #[error("shse client: the server accept message did not decrypt")]
    ServerAcceptInvalid,
    /// Client side: the server's signature in message 4 does not verify.
    #[error("shse client: the server accept signature is invalid")]
    BadServerSignature,
    /// Client side: the server closed the connection after our hello. It does
    /// that when we dialed the wrong server key or it refused to authorize us.
    #[error(
        "shse client: the server hung up after our hello (wrong server key, or not authorized)"
    )]
    ServerHungUp,
    /// Server side: the `authorize` hook refused the client.
    #[error("shse server: client {remote} was not authorized")]
    Unauthorized {
        /// The client that was refused.
        remote: PublicKey,
    },
    /// The whole handshake took longer than the configured timeout.
    #[error("shse: handshake timed out after {0:?}")]
    Timeout(Duration),
    /// The peer closed the connection in the middle of the handshake.
    #[error("shse: connection closed while waiting for {expecting}")]
    UnexpectedEof {
        /// The message we were waiting for.
        expecting: &'static str,
    },
    /// Reading or writing the underlying stream failed.
    #[error("shse: i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The machine was fed after it finished or failed (a caller bug).
    #[error("shse: handshake machine used after it finished or failed")]
    Finished,
}

/// The 32 random bytes an ephemeral keypair is made from. Callers draw them from
/// their (seeded, in simulations) RNG; the library never does. Wiped on drop.
#[derive(Clone)]
pub struct EphemeralSeed(pub [u8; 32]);

impl Drop for EphemeralSeed {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl EphemeralSeed {
    /// Draws a seed from `rng`.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Self(seed)
    }
}

impl fmt::Debug for EphemeralSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EphemeralSeed(..)")
    }
}

/// A long-term Ed25519 identity with its Curve25519 secret precomputed (every
/// handshake needs it for one Diffie-Hellman).
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
    public: PublicKey,
    curve_secret: Zeroizing<[u8; 32]>,
}

impl Identity {
    /// The identity whose Ed25519 seed (the first half of libsodium's 64-byte
    /// secret key) is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_signing_key(SigningKey::from_bytes(seed))
    }

    /// The identity in libsodium's 64-byte secret-key form (`seed ‖ public`),
    /// which is what a JS secret file's `private` field holds in base58 (§2.4).
    /// Fails if the public half does not belong to the seed.
    pub fn from_keypair_bytes(bytes: &[u8; 64]) -> Result<Self, ed25519_dalek::SignatureError> {
        SigningKey::from_keypair_bytes(bytes).map(Self::from_signing_key)
    }

    /// Wraps an Ed25519 signing key.
    pub fn from_signing_key(signing: SigningKey) -> Self {
        let public = PublicKey::from(&signing.verifying_key());
        let curve_secret = Zeroizing::new(crypto::ed25519_seed_to_curve25519(signing.as_bytes()));
        Self {
            signing,
            public,
            curve_secret,
        }
    }

    /// The public key peers know us by.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The Ed25519 signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// The two 32-byte secretstream keys a handshake yields (protocol.md §11.2).
/// Wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// Key for what we send (the peer's `decrypt_key`).
    pub encrypt_key: [u8; 32],
    /// Key for what we receive (the peer's `encrypt_key`).
    pub decrypt_key: [u8; 32],
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        self.encrypt_key.zeroize();
        self.decrypt_key.zeroize();
    }
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

/// The authenticated peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remote {
    /// Its long-term public key.
    pub key: PublicKey,
    /// The `extra` token of the hello: on the server, what the client sent; on
    /// the client, what it sent itself.
    pub token: Option<Token>,
}

/// A finished handshake.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Who is on the other side.
    pub remote: Remote,
    /// Keys for the secretstream in both directions.
    pub keys: SessionKeys,
}

/// An ephemeral Curve25519 keypair made the SHSE way: Ed25519 keypair from the
/// seed, then both halves converted to Curve25519.
struct Ephemeral {
    public: [u8; 32],
    secret: Zeroizing<[u8; 32]>,
}

impl Ephemeral {
    fn from_seed(seed: &EphemeralSeed) -> Self {
        let secret = Zeroizing::new(crypto::ed25519_seed_to_curve25519(&seed.0));
        // Equal to converting the Ed25519 public key (both are the clamped
        // scalar times the base point), and one scalar multiplication cheaper.
        let public = curve25519_dalek::MontgomeryPoint::mul_base_clamped(*secret).to_bytes();
        Self { public, secret }
    }

    /// `hmac_K(pk) ‖ pk`.
    fn challenge(&self, network_key: &NetworkKey) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHALLENGE_LEN);
        out.extend_from_slice(&crypto::auth(&self.public, network_key.as_bytes()));
        out.extend_from_slice(&self.public);
        out
    }
}

/// Checks a peer's challenge; returns its ephemeral key.
fn verify_challenge(message: &[u8], network_key: &NetworkKey) -> Result<[u8; 32], HandshakeError> {
    let (mac, key) = message.split_at(32);
    let mac: &[u8; 32] = mac.try_into().expect("invariant: challenge is 64 bytes");
    let key: [u8; 32] = key.try_into().expect("invariant: challenge is 64 bytes");
    if crypto::auth_verify(mac, &key, network_key.as_bytes()) {
        Ok(key)
    } else {
        Err(HandshakeError::WrongNetworkKey)
    }
}

fn dh(secret: &[u8; 32], public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, HandshakeError> {
    crypto::scalarmult(secret, public)
        .map(Zeroizing::new)
        .ok_or(HandshakeError::LowOrderKey)
}

fn session_keys(secret3: &[u8; 32], local: &PublicKey, remote: &PublicKey) -> SessionKeys {
    let secret = Zeroizing::new(crypto::sha256(&[secret3]));
    SessionKeys {
        encrypt_key: crypto::sha256(&[&secret[..], remote.as_bytes()]),
        decrypt_key: crypto::sha256(&[&secret[..], local.as_bytes()]),
    }
}

/// Collects one fixed-size message from arbitrarily split input.
#[derive(Default)]
struct Inbox {
    bytes: Vec<u8>,
}

impl Inbox {
    /// Takes up to `wanted - len` bytes of `input`; returns how many it took and
    /// whether the message is now complete.
    fn fill(&mut self, wanted: usize, input: &[u8]) -> (usize, bool) {
        let take = wanted.saturating_sub(self.bytes.len()).min(input.len());
        self.bytes.extend_from_slice(&input[..take]);
        (take, self.bytes.len() == wanted)
    }

    fn take(&mut self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(core::mem::take(&mut self.bytes))
    }
}

enum ClientPhase {
    /// Sent message 1; waiting for message 2.
    AwaitChallenge,
    /// Sent message 3; waiting for message 4.
    AwaitAccept(Box<ClientSecrets>),
    Done(Outcome),
    Taken,
    Failed,
}

struct ClientSecrets {
    remote_ephemeral: [u8; 32],
    secret: Zeroizing<[u8; 32]>,
    shash: Zeroizing<[u8; 32]>,
    a_bob: Zeroizing<[u8; 32]>,
    hello: Zeroizing<[u8; HELLO_LEN]>,
}

/// The dialing side of SHSE.
pub struct ClientHandshake {
    network_key: NetworkKey,
    identity: Identity,
    server: PublicKey,
    server_curve: [u8; 32],
    token: Option<Token>,
    ephemeral: Ephemeral,
    inbox: Inbox,
    output: Vec<u8>,
    phase: ClientPhase,
}

impl fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("server", &self.server)
            .field("wanted", &self.wanted())
            .finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// Starts a handshake with `server`, sending `token` as the hello's `extra`.
    /// Message 1 is ready in [`Self::take_output`] right away.
    pub fn new(
        network_key: NetworkKey,
        identity: Identity,
        server: PublicKey,
        token: Option<Token>,
        seed: &EphemeralSeed,
    ) -> Result<Self, HandshakeError> {
        let server_curve = crypto::ed25519_pk_to_curve25519(server.as_bytes())
            .ok_or(HandshakeError::InvalidServerKey(server))?;
        let ephemeral = Ephemeral::from_seed(seed);
        let output = ephemeral.challenge(&network_key);
        Ok(Self {
            network_key,
            identity,
            server,
            server_curve,
            token,
            ephemeral,
            inbox: Inbox::default(),
            output,
            phase: ClientPhase::AwaitChallenge,
        })
    }

    /// Bytes to send to the server now, if any.
    pub fn take_output(&mut self) -> Option<Vec<u8>> {
        if self.output.is_empty() {
            None
        } else {
            Some(core::mem::take(&mut self.output))
        }
    }

    /// How many more bytes the machine needs before it can make progress (0 once
    /// it is done or failed). Never more than [`MESSAGE_LEN_MAX`].
    pub fn wanted(&self) -> usize {
        let total = match self.phase {
            ClientPhase::AwaitChallenge => CHALLENGE_LEN,
            ClientPhase::AwaitAccept(_) => SERVER_ACCEPT_LEN,
            _ => return 0,
        };
        total - self.inbox.bytes.len()
    }

    /// True once the handshake succeeded (take the result with [`Self::take_outcome`]).
    pub fn is_done(&self) -> bool {
        matches!(self.phase, ClientPhase::Done(_))
    }

    /// Feeds bytes from the server. Consumes at most [`Self::wanted`] bytes and
    /// returns how many it used; the rest belongs to the secretstream that follows.
    pub fn receive(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        let wanted_total = match self.phase {
            ClientPhase::AwaitChallenge => CHALLENGE_LEN,
            ClientPhase::AwaitAccept(_) => SERVER_ACCEPT_LEN,
            _ => return Err(HandshakeError::Finished),
        };
        let (used, complete) = self.inbox.fill(wanted_total, input);
        if complete {
            let message = self.inbox.take();
            let phase = core::mem::replace(&mut self.phase, ClientPhase::Failed);
            self.phase = match phase {
                ClientPhase::AwaitChallenge => {
                    ClientPhase::AwaitAccept(self.on_challenge(&message)?)
                }
                ClientPhase::AwaitAccept(secrets) => {
                    ClientPhase::Done(self.on_accept(&secrets, &message)?)
                }
                _ => unreachable!("invariant: phase checked above"),
            };
        }
        Ok(used)
    }

    /// Message 2 in, message 3 out.
    fn on_challenge(&mut self, message: &[u8]) -> Result<Box<ClientSecrets>, HandshakeError> {
        let remote_ephemeral = verify_challenge(message, &self.network_key)?;
        let secret = dh(&self.ephemeral.secret, &remote_ephemeral)?;
        let shash = Zeroizing::new(crypto::sha256(&[&secret[..]]));
        let a_bob = dh(&self.ephemeral.secret, &self.server_curve)?;
        let secret2 = Zeroizing::new(crypto::sha256(&[
            self.network_key.as_bytes(),
            &secret[..],
            &a_bob[..],
        ]));
        let mut signed = Zeroizing::new(Vec::with_capacity(96));
        signed.extend_from_slice(self.network_key.as_bytes());
        signed.extend_from_slice(self.server.as_bytes());
        signed.extend_from_slice(&shash[..]);
        let signature = self.identity.signing.sign(&signed);
        let mut hello = Zeroizing::new([0u8; HELLO_LEN]);
        hello[..64].copy_from_slice(&signature.to_bytes());
        hello[64..96].copy_from_slice(self.identity.public.as_bytes());
        hello[96..].copy_from_slice(&Token::to_wire(self.token.as_ref()));
        self.output = crypto::secretbox_seal(&hello[..], &secret2);
        Ok(Box::new(ClientSecrets {
            remote_ephemeral,
            secret,
            shash,
            a_bob,
            hello,
        }))
    }

    /// Message 4 in: check the server's signature over our hello.
    fn on_accept(
        &self,
        secrets: &ClientSecrets,
        message: &[u8],
    ) -> Result<Outcome, HandshakeError> {
        let b_alice = dh(&self.identity.curve_secret, &secrets.remote_ephemeral)?;
        let secret3 = Zeroizing::new(crypto::sha256(&[
            self.network_key.as_bytes(),
            &secrets.secret[..],
            &secrets.a_bob[..],
            &b_alice[..],
        ]));
        let signature =
            crypto::secretbox_open(message, &secret3).ok_or(HandshakeError::ServerAcceptInvalid)?;
        let signature =
            Signature::from_slice(&signature).map_err(|_| HandshakeError::BadServerSignature)?;
        let mut signed = Vec::with_capacity(32 + HELLO_LEN + 32);
        signed.extend_from_slice(self.network_key.as_bytes());
        signed.extend_from_slice(&secrets.hello[..]);
        signed.extend_from_slice(&secrets.shash[..]);
        let server = VerifyingKey::from_bytes(self.server.as_bytes())
            .map_err(|_| HandshakeError::InvalidServerKey(self.server))?;
        server
            .verify_strict(&signed, &signature)
            .map_err(|_| HandshakeError::BadServerSignature)?;
        Ok(Outcome {
            remote: Remote {
                key: self.server,
                token: self.token,
            },
            keys: session_keys(&secret3, &self.identity.public, &self.server),
        })
    }

    /// `secret2` (the key of message 3), for the fuzz target that boxes
    /// arbitrary hellos correctly. `None` outside the accept phase.
    pub(crate) fn secret2_for_fuzzing(&self) -> Option<[u8; 32]> {
        let ClientPhase::AwaitAccept(secrets) = &self.phase else {
            return None;
        };
        Some(crypto::sha256(&[
            self.network_key.as_bytes(),
            &secrets.secret[..],
            &secrets.a_bob[..],
        ]))
    }

    /// The error to report when the server closes the connection now.
    pub fn peer_closed(&self) -> HandshakeError {
        match self.phase {
            ClientPhase::AwaitChallenge => HandshakeError::UnexpectedEof {
                expecting: "the server challenge (message 2)",
            },
            ClientPhase::AwaitAccept(_) => HandshakeError::ServerHungUp,
            _ => HandshakeError::Finished,
        }
    }

    /// The result, once [`Self::is_done`]; `None` before (or if already taken).
    pub fn take_outcome(&mut self) -> Option<Outcome> {
        match core::mem::replace(&mut self.phase, ClientPhase::Taken) {
            ClientPhase::Done(outcome) => Some(outcome),
            other => {
                self.phase = other;
                None
            }
        }
    }
}

enum ServerPhase {
    /// Waiting for message 1.
    AwaitChallenge,
    /// Sent message 2; waiting for message 3.
    AwaitHello(Box<ServerSecrets>),
    /// Message 3 verified; waiting for the caller's authorization decision.
    AwaitAuthorization(Box<ServerSecrets>, Box<VerifiedHello>),
    Done(Outcome),
    Taken,
    Failed,
}

struct ServerSecrets {
    remote_ephemeral: [u8; 32],
    secret: Zeroizing<[u8; 32]>,
    shash: Zeroizing<[u8; 32]>,
}

struct VerifiedHello {
    remote: Remote,
    hello: Zeroizing<Vec<u8>>,
    secret3: Zeroizing<[u8; 32]>,
}

/// The accepting side of SHSE.
pub struct ServerHandshake {
    network_key: NetworkKey,
    identity: Identity,
    ephemeral: Ephemeral,
    inbox: Inbox,
    output: Vec<u8>,
    phase: ServerPhase,
}

impl fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandshake")
            .field("identity", &self.identity.public)
            .field("wanted", &self.wanted())
            .finish_non_exhaustive()
    }
}

impl ServerHandshake {
    /// Waits for a client; nothing is sent before its challenge arrives.
    pub fn new(network_key: NetworkKey, identity: Identity, seed: &EphemeralSeed) -> Self {
        Self {
            network_key,
            identity,
            ephemeral: Ephemeral::from_seed(seed),
            inbox: Inbox::default(),
            output: Vec::new(),
            phase: ServerPhase::AwaitChallenge,
        }
    }

    /// Bytes to send to the client now, if any.
    pub fn take_output(&mut self) -> Option<Vec<u8>> {
        if self.output.is_empty() {
            None
        } else {
            Some(core::mem::take(&mut self.output))
        }
    }

    fn wanted_total(&self) -> Option<usize> {
        match self.phase {
            ServerPhase::AwaitChallenge => Some(CHALLENGE_LEN),
            ServerPhase::AwaitHello(_) => Some(CLIENT_AUTH_LEN),
            _ => None,
        }
    }

    /// How many more bytes the machine needs (0 while it waits for the
    /// authorization decision, and once done or failed).
    pub fn wanted(&self) -> usize {
        self.wanted_total()
            .map_or(0, |total| total - self.inbox.bytes.len())
    }

    /// Feeds bytes from the client; consumes at most [`Self::wanted`] and
    /// returns how many it used.
    pub fn receive(&mut self, input: &[u8]) -> Result<usize, HandshakeError> {
        let wanted_total = self.wanted_total().ok_or(HandshakeError::Finished)?;
        let (used, complete) = self.inbox.fill(wanted_total, input);
        if complete {
            let message = self.inbox.take();
            let phase = core::mem::replace(&mut self.phase, ServerPhase::Failed);
            self.phase = match phase {
                ServerPhase::AwaitChallenge => {
                    ServerPhase::AwaitHello(self.on_challenge(&message)?)
                }
                ServerPhase::AwaitHello(secrets) => {
                    let verified = self.on_hello(&secrets, &message)?;
                    ServerPhase::AwaitAuthorization(secrets, verified)
                }
                _ => unreachable!("invariant: phase checked above"),
            };
        }
        Ok(used)
    }

    /// Message 1 in, message 2 out.
    fn on_challenge(&mut self, message: &[u8]) -> Result<Box<ServerSecrets>, HandshakeError> {
        let remote_ephemeral = verify_challenge(message, &self.network_key)?;
        let secret = dh(&self.ephemeral.secret, &remote_ephemeral)?;
        let shash = Zeroizing::new(crypto::sha256(&[&secret[..]]));
        self.output = self.ephemeral.challenge(&self.network_key);
        Ok(Box::new(ServerSecrets {
            remote_ephemeral,
            secret,
            shash,
        }))
    }

    /// Message 3 in: open the hello, check the client's signature over our key.
    fn on_hello(
        &self,
        secrets: &ServerSecrets,
        message: &[u8],
    ) -> Result<Box<VerifiedHello>, HandshakeError> {
        let a_bob = dh(&self.identity.curve_secret, &secrets.remote_ephemeral)?;
        let secret2 = Zeroizing::new(crypto::sha256(&[
            self.network_key.as_bytes(),
            &secrets.secret[..],
            &a_bob[..],
        ]));
        let hello = Zeroizing::new(
            crypto::secretbox_open(message, &secret2).ok_or(HandshakeError::ServerKeyMismatch)?,
        );
        let (signature, rest) = hello.split_at(64);
        let (client_key, extra) = rest.split_at(32);
        let client_key: [u8; 32] = client_key
            .try_into()
            .expect("invariant: hello is 128 bytes");
        let extra: [u8; 32] = extra.try_into().expect("invariant: hello is 128 bytes");
        let signature =
            Signature::from_slice(signature).map_err(|_| HandshakeError::BadClientSignature)?;
        let mut signed = Vec::with_capacity(96);
        signed.extend_from_slice(self.network_key.as_bytes());
        signed.extend_from_slice(self.identity.public.as_bytes());
        signed.extend_from_slice(&secrets.shash[..]);
        VerifyingKey::from_bytes(&client_key)
            .map_err(|_| HandshakeError::BadClientSignature)?
            .verify_strict(&signed, &signature)
            .map_err(|_| HandshakeError::BadClientSignature)?;
        let client_curve = crypto::ed25519_pk_to_curve25519(&client_key)
            .ok_or(HandshakeError::InvalidClientKey)?;
        let b_alice = dh(&self.ephemeral.secret, &client_curve)?;
        let secret3 = Zeroizing::new(crypto::sha256(&[
            self.network_key.as_bytes(),
            &secrets.secret[..],
            &a_bob[..],
            &b_alice[..],
        ]));
        Ok(Box::new(VerifiedHello {
            remote: Remote {
                key: PublicKey(client_key),
                token: Token::from_wire(extra),
            },
            hello,
            secret3,
        }))
    }

    /// The verified client and its token, while the machine waits for
    /// [`Self::authorize`].
    pub fn pending_authorization(&self) -> Option<Remote> {
        match &self.phase {
            ServerPhase::AwaitAuthorization(_, verified) => Some(verified.remote),
            _ => None,
        }
    }

    /// The caller's decision on [`Self::pending_authorization`]. Accepting
    /// queues message 4 and finishes the handshake; refusing fails it, and the
    /// caller must drop the connection without sending anything (as JS does).
    pub fn authorize(&mut self, accept: bool) -> Result<(), HandshakeError> {
        let phase = core::mem::replace(&mut self.phase, ServerPhase::Failed);
        let ServerPhase::AwaitAuthorization(secrets, verified) = phase else {
            self.phase = phase;
            return Err(HandshakeError::Finished);
        };
        if !accept {
            return Err(HandshakeError::Unauthorized {
                remote: verified.remote.key,
            });
        }
        let mut signed = Zeroizing::new(Vec::with_capacity(32 + HELLO_LEN + 32));
        signed.extend_from_slice(self.network_key.as_bytes());
        signed.extend_from_slice(&verified.hello);
        signed.extend_from_slice(&secrets.shash[..]);
        let signature = self.identity.signing.sign(&signed);
        self.output = crypto::secretbox_seal(&signature.to_bytes(), &verified.secret3);
        self.phase = ServerPhase::Done(Outcome {
            remote: verified.remote,
            keys: session_keys(
                &verified.secret3,
                &self.identity.public,
                &verified.remote.key,
            ),
        });
        Ok(())
    }

    /// True once the handshake succeeded.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, ServerPhase::Done(_))
    }

    /// The error to report when the client closes the connection now.
    pub fn peer_closed(&self) -> HandshakeError {
        match self.phase {
            ServerPhase::AwaitChallenge => HandshakeError::UnexpectedEof {
                expecting: "the client challenge (message 1)",
            },
            ServerPhase::AwaitHello(_) => HandshakeError::UnexpectedEof {
                expecting: "the client hello (message 3)",
            },
            _ => HandshakeError::Finished,
        }
    }

    /// The result, once [`Self::is_done`] (after message 4 was taken for sending).
    pub fn take_outcome(&mut self) -> Option<Outcome> {
        match core::mem::replace(&mut self.phase, ServerPhase::Taken) {
            ServerPhase::Done(outcome) => Some(outcome),
            other => {
                self.phase = other;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
