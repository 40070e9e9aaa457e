//! [`TurmoilNet`]: the node's [`Net`] seam over turmoil's simulated TCP.
//!
//! Streams are type-erased into [`BoxStream`]s right after accept or connect, so the node runs
//! unchanged on simulated sockets. Addresses are `host:port` with turmoil host names (the
//! plan's peer names): accepted connections report the remote by name, not by simulated IP,
//! so the runner can tell who is on the other end of a plaintext connection.
//!
//! Only usable inside a turmoil host (turmoil's sockets panic outside a simulation).

use std::io;
use std::net::SocketAddr;

use node::net::{BoxFuture, BoxStream, Listener, Net};

/// turmoil's simulated TCP, as seen from one host.
#[derive(Debug, Clone, Default)]
pub struct TurmoilNet {
    /// The host's name, for naming its listener (turmoil binds the unspecified address).
    host: Option<String>,
}

impl TurmoilNet {
    /// The network as seen from the host called `host` (its listener is `host:port`).
    #[must_use]
    pub fn for_host(host: &str) -> TurmoilNet {
        TurmoilNet {
            host: Some(host.to_owned()),
        }
    }
}

struct TurmoilListener {
    inner: turmoil::net::TcpListener,
    local: String,
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
            Ok(Box::new(TurmoilListener { inner, local }) as Box<dyn Listener>)
        })
    }

    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            let stream = turmoil::net::TcpStream::connect(addr).await?;
            Ok(Box::new(stream) as BoxStream)
        })
    }
}
