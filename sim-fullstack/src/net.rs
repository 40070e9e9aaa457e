//! [`TurmoilNet`]: the node's [`Net`] seam over turmoil's simulated TCP.
//!
//! Streams are type-erased into [`BoxStream`]s right after accept or connect, so the node runs
//! unchanged on simulated sockets. Addresses are `host:port` with turmoil host names (the
//! plan's peer names): accepted connections report the remote by name, not by simulated IP,
//! so the runner can tell who is on the other end of a plaintext connection.
//!
//! Crashes close sockets in a deterministic order ([`HostSockets`]). turmoil crashes a host by
//! dropping its tokio runtime, and tokio drops a runtime's tasks in an order that depends on
//! their task IDs, which come from a process-wide counter. Each dropped socket sends a FIN or
//! RST, and each send draws from the simulation's random stream (latency), so the order would
//! leak into everything after the crash: the same run repeated in one process, or next to
//! other runs in a test binary, would diverge. So while a host crashes, its sockets are
//! parked instead of dropped, and closed afterwards in the order they were opened.
//!
//! Only usable inside a turmoil host (turmoil's sockets panic outside a simulation).

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use node::net::{BoxFuture, BoxStream, Listener, Net};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// turmoil's simulated TCP, as seen from one host.
#[derive(Debug, Clone, Default)]
pub struct TurmoilNet {
    /// The host's name, for naming its listener (turmoil binds the unspecified address).
    host: Option<String>,
    /// The host's sockets (see [`HostSockets`]).
    sockets: HostSockets,
}

impl TurmoilNet {
    /// The network as seen from the host called `host` (its listener is `host:port`), with
    /// its streams registered in `sockets`.
    #[must_use]
    pub fn for_host(host: &str, sockets: HostSockets) -> TurmoilNet {
        TurmoilNet {
            host: Some(host.to_owned()),
            sockets,
        }
    }
}

#[derive(Debug, Default)]
struct Table {
    /// Set by the runner around `Sim::crash`: streams dropped now are parked.
    crashing: bool,
    /// Streams opened so far (their order of opening).
    opened: u64,
    /// Streams dropped during a crash, by order of opening, waiting to be closed.
    parked: BTreeMap<u64, turmoil::net::TcpStream>,
}

/// The streams of one host, across its incarnations: makes the closing of sockets in a
/// crash independent of the order tokio drops tasks in (module docs).
///
/// The runner brackets `Sim::crash` with [`HostSockets::crashing`]; the host's software holds
/// a [`CloseParked`] guard, which turmoil drops after the runtime's tasks (the software runs
/// in the host's `LocalSet`, dropped second), and which closes the parked sockets in order.
#[derive(Debug, Clone, Default)]
pub struct HostSockets(Arc<Mutex<Table>>);

impl HostSockets {
    /// A table with no sockets.
    #[must_use]
    pub fn new() -> HostSockets {
        HostSockets::default()
    }

    /// Locks the table. Simulated hosts run one at a time on one thread, so this never
    /// waits; a panic while it was held (a bug) poisons it, and the table is still whole.
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks the start (`true`) or end (`false`) of a crash of the host.
    pub fn crashing(&self, crashing: bool) {
        self.lock().crashing = crashing;
    }

    /// The guard the host's software holds; see [`CloseParked`].
    #[must_use]
    pub fn guard(&self) -> CloseParked {
        // Anything parked by an earlier crash and not closed then is closed now.
        self.close_parked();
        CloseParked(self.clone())
    }

    /// Streams parked and not closed yet.
    #[must_use]
    pub fn parked(&self) -> usize {
        self.lock().parked.len()
    }

    /// Closes the parked streams, in the order they were opened.
    fn close_parked(&self) {
        let parked = std::mem::take(&mut self.lock().parked);
        for (_, stream) in parked {
            drop(stream);
        }
    }

    fn register(&self, stream: turmoil::net::TcpStream) -> Owned {
        let id = {
            let mut table = self.lock();
            table.opened += 1;
            table.opened
        };
        Owned {
            id,
            stream: Some(stream),
            sockets: self.clone(),
        }
    }
}

/// Closes a host's parked streams when dropped (at the end of a crash).
#[derive(Debug)]
pub struct CloseParked(HostSockets);

impl Drop for CloseParked {
    fn drop(&mut self) {
        self.0.close_parked();
    }
}

/// A stream registered with its host's [`HostSockets`].
struct Owned {
    id: u64,
    /// `Some` until dropped.
    stream: Option<turmoil::net::TcpStream>,
    sockets: HostSockets,
}

impl Owned {
    fn stream(&mut self) -> io::Result<Pin<&mut turmoil::net::TcpStream>> {
        self.stream
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "stream closed"))
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        let mut table = self.sockets.lock();
        if table.crashing {
            table.parked.insert(self.id, stream);
        } else {
            drop(table);
            drop(stream);
        }
    }
}

impl AsyncRead for Owned {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_read(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

impl AsyncWrite for Owned {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_flush(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_shutdown(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

struct TurmoilListener {
    inner: turmoil::net::TcpListener,
    local: String,
    sockets: HostSockets,
}

/// `host:port` for a simulated socket address: the host's name where turmoil knows it.
fn named(address: SocketAddr) -> String {
    match turmoil::reverse_lookup(address.ip()) {
        Some(name) => format!("{name}:{}", address.port()),
        None => address.to_string(),
    }
}

impl Listener for TurmoilListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, String)>> {
        Box::pin(async move {
            let (stream, remote) = self.inner.accept().await?;
            let stream = self.sockets.register(stream);
            Ok((Box::new(stream) as BoxStream, named(remote)))
        })
    }

    fn local_addr(&self) -> String {
        self.local.clone()
    }
}

impl Net for TurmoilNet {
    fn bind<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let inner = turmoil::net::TcpListener::bind(addr).await?;
            let bound = inner.local_addr()?;
            let local = match &self.host {
                Some(name) => format!("{name}:{}", bound.port()),
                None => bound.to_string(),
            };
            Ok(Box::new(TurmoilListener {
                inner,
                local,
                sockets: self.sockets.clone(),
            }) as Box<dyn Listener>)
        })
    }

    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            let stream = turmoil::net::TcpStream::connect(addr).await?;
            Ok(Box::new(self.sockets.register(stream)) as BoxStream)
        })
    }
}
