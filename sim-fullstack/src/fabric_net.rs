//! [`FabricNet`]: the node's [`Net`] seam over turmoil-net's simulated socket stack (the
//! `fabric` substrate; the loop that moves its packets is in fabric.rs).
//!
//! turmoil-net keeps one kernel per host and routes every socket call to the thread's
//! *current* host. All hosts share one runtime, and the node spawns its own tasks, so no
//! task wrapper can set the current host; instead every socket object handed to the node
//! carries its host and sets it before each call into the stack, including the close in its
//! drop. Every call also reports [`Activity`]: something may be waiting to leave a host, so
//! the loop runs a fabric pass at the next tick.
//!
//! Addresses are `host:port` with the plan's peer names, as for `TurmoilNet`: accepted
//! connections report the remote by name (from the run's [`Names`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use node::net::{BoxFuture, BoxStream, Listener, Net};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use turmoil_net::HostId;
use turmoil_net::shim::tokio::net::{TcpListener, TcpStream};

/// Tells the loop that a host touched its sockets (a permit, so a touch while the loop is
/// busy is not lost).
#[derive(Debug, Default)]
pub struct Activity(Notify);

impl Activity {
    /// Something may be waiting to leave a host.
    pub fn touch(&self) {
        self.0.notify_one();
    }

    /// Waits for the next touch (or returns at once for one that came since the last wait).
    pub async fn touched(&self) {
        self.0.notified().await;
    }
}

/// Simulated address → peer name, for naming the remote of an accepted connection.
pub type Names = Arc<BTreeMap<IpAddr, String>>;

/// turmoil-net's simulated TCP, as seen from one host.
#[derive(Debug, Clone)]
pub struct FabricNet {
    host: HostId,
    name: String,
    activity: Arc<Activity>,
    names: Names,
}

impl FabricNet {
    /// The network as seen from `host` (called `name`).
    #[must_use]
    pub fn new(host: HostId, name: &str, activity: Arc<Activity>, names: Names) -> FabricNet {
        FabricNet {
            host,
            name: name.to_owned(),
            activity,
            names,
        }
    }

    fn stream(&self, stream: TcpStream) -> BoxStream {
        Box::new(FabricStream {
            host: self.host,
            stream,
            activity: Arc::clone(&self.activity),
        })
    }
}

/// A future that runs with its host current, on every poll and when dropped (a connect
/// cancelled by a timeout closes its socket in its drop).
struct OnHost<F> {
    host: HostId,
    activity: Arc<Activity>,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for OnHost<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        turmoil_net::set_current(self.host);
        let polled = self.inner.as_mut().poll(cx);
        self.activity.touch();
        polled
    }
}

impl<F> Drop for OnHost<F> {
    fn drop(&mut self) {
        // The fields (the inner future) drop after this, with the right host current.
        turmoil_net::set_current(self.host);
        self.activity.touch();
    }
}

fn on_host<F: Future>(net: &FabricNet, future: F) -> OnHost<F> {
    OnHost {
        host: net.host,
        activity: Arc::clone(&net.activity),
        inner: Box::pin(future),
    }
}

/// A simulated TCP stream that knows its host.
struct FabricStream {
    host: HostId,
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl FabricStream {
    /// Runs one socket call with the stream's host current, then reports activity.
    fn call<T>(&mut self, call: impl FnOnce(Pin<&mut TcpStream>) -> T) -> T {
        turmoil_net::set_current(self.host);
        let result = call(Pin::new(&mut self.stream));
        self.activity.touch();
        result
    }
}

impl Drop for FabricStream {
    fn drop(&mut self) {
        // The stream (a close: FIN or RST) drops after this, with the right host current.
        turmoil_net::set_current(self.host);
        self.activity.touch();
    }
}

impl AsyncRead for FabricStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().call(|stream| stream.poll_read(cx, buf))
    }
}

impl AsyncWrite for FabricStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().call(|stream| stream.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().call(|stream| stream.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().call(|stream| stream.poll_shutdown(cx))
    }
}

struct FabricListener {
    net: FabricNet,
    /// `Some` until dropped.
    inner: Option<TcpListener>,
    local: String,
}

impl Drop for FabricListener {
    fn drop(&mut self) {
        turmoil_net::set_current(self.net.host);
        drop(self.inner.take());
        self.net.activity.touch();
    }
}

impl Listener for FabricListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, String)>> {
        let net = self.net.clone();
        let inner = self.inner.as_ref();
        Box::pin(on_host(&net.clone(), async move {
            let inner = inner.ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
            let (stream, remote) = inner.accept().await?;
            let name = match net.names.get(&remote.ip()) {
                Some(name) => format!("{name}:{}", remote.port()),
                None => remote.to_string(),
            };
            Ok((net.stream(stream), name))
        }))
    }

    fn local_addr(&self) -> String {
        self.local.clone()
    }
}

impl Net for FabricNet {
    fn bind<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>> {
        Box::pin(on_host(self, async move {
            let inner = TcpListener::bind(addr).await?;
            let port = inner.local_addr()?.port();
            Ok(Box::new(FabricListener {
                net: self.clone(),
                inner: Some(inner),
                local: format!("{}:{port}", self.name),
            }) as Box<dyn Listener>)
        }))
    }

    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(on_host(self, async move {
            let stream = TcpStream::connect(addr).await?;
            Ok(self.stream(stream))
        }))
    }
}
