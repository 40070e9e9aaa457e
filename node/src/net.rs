//! The transport seam: the one place that decides between real sockets and simulated ones.
//!
//! Production uses [`TokioNet`] (tokio TCP); the simulator uses `sim::runner::net::TurmoilNet`
//! (turmoil's simulated TCP). Both produce [`BoxStream`]s, type-erased right after accept or
//! connect, so nothing above this module is generic over the network or knows which one it
//! runs on. No Cargo feature swaps imports: both implementations coexist in one build.

use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};

/// A boxed future, as the object-safe trait methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A byte stream in both directions.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// A connection's byte stream, whatever network it came from.
pub type BoxStream = Box<dyn Duplex>;

/// A bound listening socket.
pub trait Listener: Send {
    /// Waits for the next inbound connection; returns it with the remote address.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, String)>>;
    /// The address this listener is bound to, as `host:port`.
    fn local_addr(&self) -> String;
}

/// A network: bind listeners, dial addresses (`host:port`).
pub trait Net: Send + Sync + 'static {
    /// Binds a listener on `addr` (`host:port`; port 0 picks a free one).
    fn bind<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>>;
    /// Opens a connection to `addr` (`host:port`). Callers bound the wait with a timeout.
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>>;
}

/// Real TCP through tokio, with Nagle's algorithm off (sync is request/response heavy).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioNet;

struct TokioListener {
    inner: tokio::net::TcpListener,
    local: String,
}

impl Listener for TokioListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, String)>> {
        Box::pin(async move {
            let (stream, remote) = self.inner.accept().await?;
            stream.set_nodelay(true)?;
            Ok((Box::new(stream) as BoxStream, remote.to_string()))
        })
    }

    fn local_addr(&self) -> String {
        self.local.clone()
    }
}

impl Net for TokioNet {
    fn bind<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let inner = tokio::net::TcpListener::bind(addr).await?;
            let local = inner.local_addr()?.to_string();
            Ok(Box::new(TokioListener { inner, local }) as Box<dyn Listener>)
        })
    }

    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BoxStream)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn loopback_round_trip() {
        let net = TokioNet;
        let mut listener = net.bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut buffer = [0u8; 5];
            stream.read_exact(&mut buffer).await.expect("read");
            stream.write_all(&buffer).await.expect("write");
        });
        let mut client = net.connect(&address).await.expect("connect");
        client.write_all(b"hello").await.expect("write");
        let mut echo = [0u8; 5];
        client.read_exact(&mut echo).await.expect("read");
        assert_eq!(&echo, b"hello");
        server.await.expect("server task");
    }
}
