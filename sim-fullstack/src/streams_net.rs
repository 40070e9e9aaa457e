//! [`StreamsNet`]: the node's [`Net`] seam over the streams substrate's switchboard
//! (streams.rs). A dial takes a round trip drawn from the links (refused when nothing listens
//! at the far end); each connection end reads what its pipe has delivered by now, sleeping on
//! tokio's paused clock until the next chunk is due, so cost follows traffic.
//!
//! Addresses are `host:port` with the plan's peer names, as on the other substrates.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use node::net::{BoxFuture, BoxStream, Listener, Net};
use sim::plan::PeerIdx;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::fabric::GIVE_UP_AFTER_MS;
use super::streams::{Board, ConnId, Head, Timing};

/// The run's switchboard, shared by every host's network.
pub(crate) type SharedBoard = Arc<Mutex<Board>>;

fn lock(board: &Mutex<Board>) -> MutexGuard<'_, Board> {
    board
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The streams substrate as seen from one host.
#[derive(Debug, Clone)]
pub(crate) struct StreamsNet {
    host: PeerIdx,
    board: SharedBoard,
}

impl StreamsNet {
    /// The network as seen from `host`.
    #[must_use]
    pub(crate) fn new(host: PeerIdx, board: SharedBoard) -> StreamsNet {
        StreamsNet { host, board }
    }

    /// Waits until something sent now from `from` to `to` arrives (a cut or held link is
    /// tried again every retransmission timeout, as a SYN is resent); `None` when the attempt
    /// is reset.
    async fn cross(&self, from: PeerIdx, to: PeerIdx) -> io::Result<()> {
        let mut waited_ms = 0;
        loop {
            let (timing, rto, start) = {
                let mut board = lock(&self.board);
                (board.timing(from, to), board.rto_ms(), board.start)
            };
            match timing {
                Timing::Due(due) => {
                    tokio::time::sleep_until(start + Duration::from_millis(due)).await;
                    return Ok(());
                }
                Timing::Reset => return Err(io::Error::from(io::ErrorKind::ConnectionReset)),
                Timing::Parked if waited_ms > GIVE_UP_AFTER_MS => {
                    return Err(io::Error::from(io::ErrorKind::TimedOut));
                }
                Timing::Parked => {
                    waited_ms += rto;
                    tokio::time::sleep(Duration::from_millis(rto)).await;
                }
            }
        }
    }

    fn end(&self, conn: ConnId, side: usize) -> StreamEnd {
        StreamEnd {
            board: Arc::clone(&self.board),
            conn,
            side,
            sleep: None,
        }
    }
}

/// `host:port` split, with the port parsed.
fn split_address(addr: &str) -> io::Result<(&str, u16)> {
    let invalid = || io::Error::new(io::ErrorKind::InvalidInput, format!("address `{addr}`"));
    let (host, port) = addr.rsplit_once(':').ok_or_else(invalid)?;
    Ok((host, port.parse().map_err(|_| invalid())?))
}

impl Net for StreamsNet {
    fn bind<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let (_, port) = split_address(addr)?;
            let mut board = lock(&self.board);
            let id = board.listen(self.host, port)?;
            let local = format!("{}:{port}", board.name(self.host));
            drop(board);
            Ok(Box::new(StreamsListener {
                net: self.clone(),
                port,
                id,
                local,
            }) as Box<dyn Listener>)
        })
    }

    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            let (name, port) = split_address(addr)?;
            let to = lock(&self.board).peer_named(name).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no host `{name}`"))
            })?;
            self.cross(self.host, to).await?;
            let arrived = lock(&self.board).arrive(self.host, (to, port));
            // Made now so a dial cancelled on the way back closes its end.
            let end = arrived.map(|conn| self.end(conn, 0));
            self.cross(to, self.host).await?;
            match end {
                Some(end) => Ok(Box::new(end) as BoxStream),
                None => Err(io::Error::from(io::ErrorKind::ConnectionRefused)),
            }
        })
    }
}

/// The node's listener on one port of its host.
struct StreamsListener {
    net: StreamsNet,
    port: u16,
    id: u64,
    local: String,
}

impl Drop for StreamsListener {
    fn drop(&mut self) {
        lock(&self.net.board).unlisten(self.net.host, self.port, self.id);
    }
}

impl Listener for StreamsListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, String)>> {
        Box::pin(std::future::poll_fn(move |cx| {
            let next = lock(&self.net.board).accept((self.net.host, self.port), cx.waker());
            match next {
                None => Poll::Pending,
                Some(Err(error)) => Poll::Ready(Err(error)),
                Some(Ok((conn, remote))) => {
                    Poll::Ready(Ok((Box::new(self.net.end(conn, 1)) as BoxStream, remote)))
                }
            }
        }))
    }

    fn local_addr(&self) -> String {
        self.local.clone()
    }
}

/// One end of a connection: side 0 dialed, side 1 accepted.
struct StreamEnd {
    board: SharedBoard,
    conn: ConnId,
    side: usize,
    /// Waits for the next chunk due.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl StreamEnd {
    /// Sleeps until `due_ms`; `Ready` once it has come.
    fn wait_until(&mut self, due_ms: u64, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = lock(&self.board).start + Duration::from_millis(due_ms);
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        sleep.as_mut().poll(cx)
    }
}

impl Drop for StreamEnd {
    fn drop(&mut self) {
        lock(&self.board).close_end(self.conn, self.side);
    }
}

impl AsyncRead for StreamEnd {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            let head = lock(&this.board).read(
                (this.conn, this.side),
                buf.initialize_unfilled(),
                cx.waker(),
            );
            match head {
                Head::Read(count) => {
                    buf.advance(count);
                    return Poll::Ready(Ok(()));
                }
                Head::Eof => return Poll::Ready(Ok(())),
                Head::Reset => {
                    return Poll::Ready(Err(io::Error::from(io::ErrorKind::ConnectionReset)));
                }
                Head::Empty => return Poll::Pending,
                Head::Later(due) => {
                    if this.wait_until(due, cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}

impl AsyncWrite for StreamEnd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        lock(&self.board).write((self.conn, self.side), buf, cx.waker())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        lock(&self.board).finish((self.conn, self.side));
        Poll::Ready(Ok(()))
    }
}
