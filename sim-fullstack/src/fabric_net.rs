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
//!
//! A host's listeners outlive its incarnations ([`KeptListeners`], fabric_listen.rs): a
//! restarted node gets the listener its earlier incarnation bound.

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
use turmoil_net::shim::tokio::net::TcpStream;

use super::fabric_listen::{HostListener, KeptListeners};

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
    listeners: KeptListeners,
}

impl FabricNet {
    /// The network as seen from `host` (called `name`), binding through the host's
    /// `listeners`.
    #[must_use]
    pub fn new(
        (host, name): (HostId, &str),
        activity: Arc<Activity>,
        names: Names,
        listeners: KeptListeners,
    ) -> FabricNet {
        FabricNet {
            host,
            name: name.to_owned(),
            activity,
            names,
            listeners,
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

/// The node's hold on one of its host's kept listeners.
struct FabricListener {
    net: FabricNet,
    listener: Arc<HostListener>,
    /// The address it was bound with (the key among the host's listeners).
    bound: String,
    local: String,
}

impl Drop for FabricListener {
    fn drop(&mut self) {
        // The kernel's listener stays open for the host's next incarnation.
        self.net.listeners.release(&self.bound);
        self.net.activity.touch();
    }
}

impl Listener for FabricListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, String)>> {
        let net = self.net.clone();
        let listener = Arc::clone(&self.listener);
        Box::pin(on_host(&net.clone(), async move {
            let (stream, remote) = listener.get()?.accept().await?;
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
            let listener = self.listeners.bind(self.host, addr).await?;
            let port = listener.get()?.local_addr()?.port();
            Ok(Box::new(FabricListener {
                net: self.clone(),
                listener,
                bound: addr.to_owned(),
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
