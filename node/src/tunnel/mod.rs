//! Tunnels as byte streams: a [`TunnelStream`] is one end of a hub tunnel (a muxrpc duplex
//! call on a connection to a hub) seen as an ordinary `AsyncRead + AsyncWrite`, so the node
//! runs SHSE, secretstream and muxrpc over it exactly as over TCP; and [`TunnelNet`], the
//! `Net` seam that dials `tunnel:HUB:TARGET` addresses through the hub client and merges
//! inbound tunnels into the listener.
//!
//! Both directions are bounded by [`TUNNEL_BYTES_IN_FLIGHT_MAX`]: writes wait while that
//! many bytes are waiting for the hub connection, and the hub connection is not read while
//! that many bytes wait for the stream's reader.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use crate::net::{BoxFuture, BoxStream, Listener, Net};

/// Bytes one direction of a tunnel may hold between the hub connection and the stream.
pub const TUNNEL_BYTES_IN_FLIGHT_MAX: usize = 256 * 1024;

/// Largest data frame a tunnel end sends (larger writes are split).
pub const TUNNEL_FRAME_BYTES_MAX: usize = 32 * 1024;

/// Inbound tunnels accepted but not yet taken by the node's listener; more are refused.
pub const TUNNELS_PENDING_ACCEPT_MAX: usize = 64;

/// One tunnel within one hub client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TunnelId(pub u64);

/// What a tunnel's stream tells the side that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelEvent {
    /// Bytes were written: take them ([`TunnelEnd::take_outbound`]).
    Outbound(TunnelId),
    /// The reader drained the inbound bytes below half the bound.
    Drained(TunnelId),
    /// The stream was shut down or dropped.
    Shut(TunnelId),
}

/// Called (without locks held) on each [`TunnelEvent`]; it must not block.
pub type TunnelNotify = Arc<dyn Fn(TunnelEvent) + Send + Sync>;

#[derive(Default)]
struct Pipe {
    data: VecDeque<u8>,
    /// No more bytes will be added (`Some(error)` if it ended with one).
    ended: Option<Option<String>>,
    waker: Option<Waker>,
}

#[derive(Default)]
struct Shared {
    inbound: Pipe,
    outbound: Pipe,
    outbound_notified: bool,
    inbound_full: bool,
    shut: bool,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The stream end of a tunnel (what the node's connection reads and writes).
pub struct TunnelStream {
    id: TunnelId,
    shared: Arc<Mutex<Shared>>,
    notify: TunnelNotify,
}

/// The carrier end of a tunnel (what the hub client feeds and drains).
#[derive(Clone)]
pub struct TunnelEnd {
    id: TunnelId,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for TunnelEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TunnelEnd({})", self.id.0)
    }
}

/// A new tunnel: its stream and its carrier end.
pub fn tunnel(id: TunnelId, notify: TunnelNotify) -> (TunnelStream, TunnelEnd) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let end = TunnelEnd {
        id,
        shared: Arc::clone(&shared),
    };
    (TunnelStream { id, shared, notify }, end)
}

impl TunnelEnd {
    /// The tunnel.
    #[must_use]
    pub fn id(&self) -> TunnelId {
        self.id
    }

    /// Hands bytes from the hub to the stream's reader; whether the reader is now more than
    /// [`TUNNEL_BYTES_IN_FLIGHT_MAX`] behind (then stop reading the hub until
    /// [`TunnelEvent::Drained`]).
    pub fn deliver(&self, bytes: &[u8]) -> bool {
        let mut shared = lock(&self.shared);
        if shared.inbound.ended.is_some() {
            return false;
        }
        shared.inbound.data.extend(bytes);
        if let Some(waker) = shared.inbound.waker.take() {
            waker.wake();
        }
        let full = shared.inbound.data.len() > TUNNEL_BYTES_IN_FLIGHT_MAX;
        shared.inbound_full |= full;
        full
    }

    /// The remote end finished (or failed): the reader sees EOF (or the error) after the
    /// bytes already delivered; writes fail.
    pub fn end(&self, error: Option<String>) {
        let mut shared = lock(&self.shared);
        shared.inbound.ended.get_or_insert(error.clone());
        shared.outbound.ended.get_or_insert(error);
        for waker in [shared.inbound.waker.take(), shared.outbound.waker.take()]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
    }

    /// Takes up to `max` bytes the stream wrote; `None` once it shut down and all was taken.
    pub fn take_outbound(&self, max: usize) -> Option<Vec<u8>> {
        let mut shared = lock(&self.shared);
        shared.outbound_notified = false;
        let count = shared.outbound.data.len().min(max);
        let bytes: Vec<u8> = shared.outbound.data.drain(..count).collect();
        if let Some(waker) = shared.outbound.waker.take() {
            waker.wake();
        }
        if bytes.is_empty() && shared.shut {
            return None;
        }
        Some(bytes)
    }

    /// Whether the stream shut down or was dropped.
    #[must_use]
    pub fn is_shut(&self) -> bool {
        lock(&self.shared).shut
    }
}

impl std::fmt::Debug for TunnelStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TunnelStream({})", self.id.0)
    }
}

impl std::fmt::Debug for TunnelNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TunnelNet")
    }
}

impl TunnelStream {
    fn notify(&self, event: TunnelEvent) {
        (self.notify)(event);
    }
}

impl AsyncRead for TunnelStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut shared = lock(&self.shared);
        if shared.inbound.data.is_empty() {
            return match &shared.inbound.ended {
                Some(None) => Poll::Ready(Ok(())),
                Some(Some(error)) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    error.clone(),
                ))),
                None => {
                    shared.inbound.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            };
        }
        let count = shared.inbound.data.len().min(buf.remaining());
        let (front, back) = shared.inbound.data.as_slices();
        let from_front = front.len().min(count);
        buf.put_slice(front.get(..from_front).unwrap_or_default());
        buf.put_slice(back.get(..count - from_front).unwrap_or_default());
        shared.inbound.data.drain(..count);
        let drained =
            shared.inbound_full && shared.inbound.data.len() <= TUNNEL_BYTES_IN_FLIGHT_MAX / 2;
        if drained {
            shared.inbound_full = false;
        }
        drop(shared);
        if drained {
            self.notify(TunnelEvent::Drained(self.id));
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TunnelStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut shared = lock(&self.shared);
        if let Some(ended) = &shared.outbound.ended {
            let message = ended
                .clone()
                .unwrap_or_else(|| "the tunnel ended".to_owned());
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, message)));
        }
        let room = TUNNEL_BYTES_IN_FLIGHT_MAX.saturating_sub(shared.outbound.data.len());
        if room == 0 {
            shared.outbound.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let count = room.min(buf.len());
        shared
            .outbound
            .data
            .extend(buf.get(..count).unwrap_or_default());
        let first = !std::mem::replace(&mut shared.outbound_notified, true);
        drop(shared);
        if first {
            self.notify(TunnelEvent::Outbound(self.id));
        }
        Poll::Ready(Ok(count))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let first = !std::mem::replace(&mut lock(&self.shared).shut, true);
        if first {
            self.notify(TunnelEvent::Shut(self.id));
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for TunnelStream {
    fn drop(&mut self) {
        let first = !std::mem::replace(&mut lock(&self.shared).shut, true);
        if first {
            self.notify(TunnelEvent::Shut(self.id));
        }
    }
}

/// Opens tunnels: the hub client, seen from the `Net` seam.
pub trait TunnelDialer: Send + Sync + 'static {
    /// A stream to `target` through `hub` (the handshake runs on it afterwards).
    fn open<'a>(
        &'a self,
        hub: crate::transport::PublicKey,
        target: crate::transport::PublicKey,
    ) -> BoxFuture<'a, io::Result<BoxStream>>;
}

/// An inbound tunnel for the node's listener: the stream and its `tunnel:HUB:ORIGIN` address.
pub type InboundTunnel = (BoxStream, String);

/// A `Net` that dials `tunnel:HUB:TARGET` addresses through a [`TunnelDialer`] and every other
/// address through `inner`; its listener also yields the inbound tunnels.
pub struct TunnelNet {
    inner: Arc<dyn Net>,
    dialer: Arc<dyn TunnelDialer>,
    inbound: Mutex<Option<mpsc::Receiver<InboundTunnel>>>,
}

impl TunnelNet {
    /// Wraps `inner`; inbound tunnels arrive on `inbound` (taken by the first `bind`).
    pub fn new(
        inner: Arc<dyn Net>,
        dialer: Arc<dyn TunnelDialer>,
        inbound: mpsc::Receiver<InboundTunnel>,
    ) -> Self {
        Self {
            inner,
            dialer,
            inbound: Mutex::new(Some(inbound)),
        }
    }
}

/// Parses `tunnel:HUB:TARGET` (the dial form of a tunnel target).
#[must_use]
pub fn parse_tunnel_address(
    address: &str,
) -> Option<(crate::transport::PublicKey, crate::transport::PublicKey)> {
    let rest = address.strip_prefix("tunnel:")?;
    let (hub, target) = rest.split_once(':')?;
    Some((
        crate::transport::PublicKey::from_base58(hub).ok()?,
        crate::transport::PublicKey::from_base58(target).ok()?,
    ))
}

struct TunnelListener {
    inner: Box<dyn Listener>,
    inbound: Option<mpsc::Receiver<InboundTunnel>>,
}

impl Listener for TunnelListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, String)>> {
        Box::pin(async move {
            let Some(inbound) = &mut self.inbound else {
                return self.inner.accept().await;
            };
            tokio::select! {
                biased;
                tunnel = inbound.recv() => match tunnel {
                    Some(tunnel) => Ok(tunnel),
                    None => {
                        self.inbound = None;
                        self.inner.accept().await
                    }
                },
                accepted = self.inner.accept() => accepted,
            }
        })
    }

    fn local_addr(&self) -> String {
        self.inner.local_addr()
    }
}

impl Net for TunnelNet {
    fn bind<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let inner = self.inner.bind(addr).await?;
            let inbound = self
                .inbound
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            Ok(Box::new(TunnelListener { inner, inbound }) as Box<dyn Listener>)
        })
    }

    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        match parse_tunnel_address(addr) {
            Some((hub, target)) => self.dialer.open(hub, target),
            None if addr.starts_with("tunnel:") => Box::pin(async move {
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("bad tunnel address {addr:?}"),
                ))
            }),
            None => self.inner.connect(addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_cross_both_ways_and_ends_are_seen() {
        let events = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&events);
        let notify: TunnelNotify =
            Arc::new(move |event| recorder.lock().expect("lock").push(event));
        let (mut stream, end) = tunnel(TunnelId(1), notify);
        stream.write_all(b"hello").await.expect("write");
        assert_eq!(end.take_outbound(3), Some(b"hel".to_vec()));
        assert_eq!(end.take_outbound(100), Some(b"lo".to_vec()));
        assert!(!end.deliver(b"world"));
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"world");
        end.end(None);
        assert_eq!(stream.read(&mut buf).await.expect("eof"), 0);
        assert!(stream.write_all(b"x").await.is_err());
        drop(stream);
        assert!(end.is_shut());
        let seen = events.lock().expect("lock").clone();
        assert_eq!(
            seen,
            vec![
                TunnelEvent::Outbound(TunnelId(1)),
                TunnelEvent::Shut(TunnelId(1))
            ]
        );
    }

    #[tokio::test]
    async fn a_reader_behind_is_reported_and_its_drain_too() {
        let events = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&events);
        let notify: TunnelNotify =
            Arc::new(move |event| recorder.lock().expect("lock").push(event));
        let (mut stream, end) = tunnel(TunnelId(2), notify);
        let chunk = vec![7u8; TUNNEL_BYTES_IN_FLIGHT_MAX];
        assert!(!end.deliver(&chunk));
        assert!(end.deliver(b"one more"), "over the bound");
        let mut sink = vec![0u8; TUNNEL_BYTES_IN_FLIGHT_MAX];
        stream.read_exact(&mut sink).await.expect("read");
        assert_eq!(
            events.lock().expect("lock").as_slice(),
            &[TunnelEvent::Drained(TunnelId(2))]
        );
    }
}
