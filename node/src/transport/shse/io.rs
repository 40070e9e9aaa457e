//! Async drivers for the SHSE machines over any `AsyncRead + AsyncWrite`.
//!
//! [`client`] / [`server`] run just the handshake, under a timeout (JS default
//! 15 s, [`super::HANDSHAKE_TIMEOUT_DEFAULT`]); [`connect`] / [`accept`] also
//! wrap the stream in a [`BoxStream`] keyed by the outcome. Randomness is drawn
//! from the caller's RNG before the first await, so nothing here touches OS
//! entropy and the RNG is not held across awaits.

use core::future::Future;
use core::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{
    ClientHandshake, EphemeralSeed, HandshakeError, Identity, MESSAGE_LEN_MAX, Outcome, Remote,
    ServerHandshake,
};
use crate::transport::caps::NetworkKey;
use crate::transport::secretstream::{BoxStream, HEADER_LEN};
use crate::transport::{PublicKey, Token};

/// What both sides need to run handshakes.
#[derive(Debug, Clone)]
pub struct Config {
    /// The network key (PZP's by default).
    pub network_key: NetworkKey,
    /// Our long-term identity.
    pub identity: Identity,
    /// Upper bound for the whole handshake, authorization included.
    pub timeout: Duration,
}

impl Config {
    /// PZP's network key and the JS default timeout.
    pub fn new(identity: Identity) -> Self {
        Self {
            network_key: NetworkKey::PZP,
            identity,
            timeout: super::HANDSHAKE_TIMEOUT_DEFAULT,
        }
    }
}

/// Reads exactly `buf.len()` bytes; EOF becomes the machine's phase-specific error.
async fn read_message<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    on_eof: impl FnOnce() -> HandshakeError,
) -> Result<(), HandshakeError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Err(on_eof()),
        Err(error) => Err(HandshakeError::Io(error)),
    }
}

async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: Option<Vec<u8>>,
) -> Result<(), HandshakeError> {
    if let Some(bytes) = bytes {
        stream.write_all(&bytes).await?;
        stream.flush().await?;
    }
    Ok(())
}

async fn drive_client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    mut machine: ClientHandshake,
) -> Result<Outcome, HandshakeError> {
    let mut buf = [0u8; MESSAGE_LEN_MAX];
    loop {
        send(stream, machine.take_output()).await?;
        if let Some(outcome) = machine.take_outcome() {
            return Ok(outcome);
        }
        let wanted = machine.wanted();
        read_message(stream, &mut buf[..wanted], || machine.peer_closed()).await?;
        machine.receive(&buf[..wanted])?;
    }
}

async fn drive_server<S, A, F>(
    stream: &mut S,
    mut machine: ServerHandshake,
    authorize: A,
) -> Result<Outcome, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: FnOnce(Remote) -> F,
    F: Future<Output = bool>,
{
    let mut buf = [0u8; MESSAGE_LEN_MAX];
    let mut authorize = Some(authorize);
    loop {
        send(stream, machine.take_output()).await?;
        if let Some(outcome) = machine.take_outcome() {
            return Ok(outcome);
        }
        if let Some(remote) = machine.pending_authorization() {
            let decide = authorize.take().ok_or(HandshakeError::Finished)?;
            let accept = decide(remote).await;
            machine.authorize(accept)?;
            continue;
        }
        let wanted = machine.wanted();
        read_message(stream, &mut buf[..wanted], || machine.peer_closed()).await?;
        machine.receive(&buf[..wanted])?;
    }
}

/// Runs the client side of a handshake on `stream`.
pub async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    config: &Config,
    server: PublicKey,
    token: Option<Token>,
    seed: &EphemeralSeed,
) -> Result<Outcome, HandshakeError> {
    let machine = ClientHandshake::new(
        config.network_key,
        config.identity.clone(),
        server,
        token,
        seed,
    )?;
    tokio::time::timeout(config.timeout, drive_client(stream, machine))
        .await
        .map_err(|_| HandshakeError::Timeout(config.timeout))?
}

/// Runs the server side of a handshake on `stream`. `authorize` sees the
/// verified client and its token and decides before message 4 is sent; a
/// refusal ends the handshake with [`HandshakeError::Unauthorized`] and the
/// caller should drop the connection.
pub async fn server<S, A, F>(
    stream: &mut S,
    config: &Config,
    seed: &EphemeralSeed,
    authorize: A,
) -> Result<Outcome, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    A: FnOnce(Remote) -> F,
    F: Future<Output = bool>,
{
    let machine = ServerHandshake::new(config.network_key, config.identity.clone(), seed);
    tokio::time::timeout(config.timeout, drive_server(stream, machine, authorize))
        .await
        .map_err(|_| HandshakeError::Timeout(config.timeout))?
}

/// Dials: handshake as client, then an encrypted [`BoxStream`]. The header of
/// our secretstream is flushed at once, as JS does. The randomness is drawn
/// from `rng` before this returns, so the future does not borrow it.
pub fn connect<'a, S, R>(
    mut stream: S,
    config: &'a Config,
    server: PublicKey,
    token: Option<Token>,
    rng: &mut R,
) -> impl Future<Output = Result<(BoxStream<S>, Remote), HandshakeError>> + 'a
where
    S: AsyncRead + AsyncWrite + Unpin + 'a,
    R: rand_core::CryptoRng + ?Sized,
{
    let seed = EphemeralSeed::generate(rng);
    let mut header = [0u8; HEADER_LEN];
    rng.fill_bytes(&mut header);
    async move {
        let outcome = client(&mut stream, config, server, token, &seed).await?;
        let mut boxed = BoxStream::new(stream, &outcome.keys, header);
        boxed.flush().await?;
        Ok((boxed, outcome.remote))
    }
}

/// Accepts: handshake as server (with `authorize`), then an encrypted
/// [`BoxStream`]. Randomness is drawn before this returns, as in [`connect`].
pub fn accept<'a, S, R, A, F>(
    mut stream: S,
    config: &'a Config,
    rng: &mut R,
    authorize: A,
) -> impl Future<Output = Result<(BoxStream<S>, Remote), HandshakeError>> + 'a
where
    S: AsyncRead + AsyncWrite + Unpin + 'a,
    R: rand_core::CryptoRng + ?Sized,
    A: FnOnce(Remote) -> F + 'a,
    F: Future<Output = bool> + 'a,
{
    let seed = EphemeralSeed::generate(rng);
    let mut header = [0u8; HEADER_LEN];
    rng.fill_bytes(&mut header);
    async move {
        let outcome = server(&mut stream, config, &seed, authorize).await?;
        let mut boxed = BoxStream::new(stream, &outcome.keys, header);
        boxed.flush().await?;
        Ok((boxed, outcome.remote))
    }
}
