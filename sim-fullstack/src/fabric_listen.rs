//! A host's listening sockets on the fabric, kept across its incarnations.
//!
//! Why: turmoil-net 0.1.0 can leave a listener's port bound for ever. A half-open child
//! (`SynReceived`) that is reset or times out is aborted to `Closed` with no handle that could
//! close it; `reap_closed` removes only sockets whose handle was closed, so the child stays in
//! the socket table, bound to the listener's port. Closing the listener resets only children
//! still handshaking, so after a crash the restarted node's `bind` fails with "address in
//! use" (the test below reproduces it). We may not patch turmoil-net, so a host binds its
//! listening port once: a restarted node gets the listener its earlier incarnation bound.
//!
//! While the host is down its listener stays open in the kernel. Dials to it must still fail
//! as they do against a crashed host, so the fabric refuses them (fabric.rs, `refuses`), and
//! [`KeptListeners::refuse_queued`] resets what was accepted by the kernel but not yet by the
//! node when it crashed.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use turmoil_net::HostId;
use turmoil_net::shim::tokio::net::TcpListener;

/// One listening socket of a host, closed with its host current when the last holder drops it.
#[derive(Debug)]
pub(crate) struct HostListener {
    host: HostId,
    /// `Some` until dropped.
    inner: Option<TcpListener>,
}

impl HostListener {
    /// The kernel's listener (the caller makes its host current).
    pub(crate) fn get(&self) -> io::Result<&TcpListener> {
        self.inner
            .as_ref()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl Drop for HostListener {
    fn drop(&mut self) {
        turmoil_net::set_current(self.host);
        drop(self.inner.take());
    }
}

#[derive(Debug)]
struct Kept {
    listener: Arc<HostListener>,
    /// Whether a running incarnation holds it (a second bind of the address fails, as a
    /// kernel's would).
    held: bool,
}

/// A host's listeners by bound address, shared by all its incarnations.
#[derive(Debug, Clone, Default)]
pub struct KeptListeners(Arc<Mutex<BTreeMap<String, Kept>>>);

impl KeptListeners {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Kept>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The listener on `addr` for `host` (current): the one an earlier incarnation bound, or a
    /// new one. "Address in use" while another holder has it.
    pub(crate) async fn bind(&self, host: HostId, addr: &str) -> io::Result<Arc<HostListener>> {
        if let Some(kept) = self.lock().get_mut(addr) {
            if kept.held {
                return Err(io::Error::from(io::ErrorKind::AddrInUse));
            }
            kept.held = true;
            return Ok(Arc::clone(&kept.listener));
        }
        let listener = Arc::new(HostListener {
            host,
            inner: Some(TcpListener::bind(addr).await?),
        });
        let kept = Kept {
            listener: Arc::clone(&listener),
            held: true,
        };
        self.lock().insert(addr.to_owned(), kept);
        Ok(listener)
    }

    /// The node's listener on `addr` was dropped: the socket stays, for the next incarnation.
    pub(crate) fn release(&self, addr: &str) {
        if let Some(kept) = self.lock().get_mut(addr) {
            kept.held = false;
        }
    }

    /// A crash: connections the kernel completed but the node had not accepted are taken off
    /// the queue and dropped, as a crashed process's listener would reset them (a connection
    /// with unread bytes is reset, one without is closed).
    pub(crate) fn refuse_queued(&self) {
        let listeners: Vec<Arc<HostListener>> = self
            .lock()
            .values()
            .map(|kept| Arc::clone(&kept.listener))
            .collect();
        let mut context = Context::from_waker(Waker::noop());
        for listener in listeners {
            turmoil_net::set_current(listener.host);
            let Ok(inner) = listener.get() else {
                continue;
            };
            while let Poll::Ready(Ok((stream, _))) = inner.poll_accept(&mut context) {
                drop(stream);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::net::SocketAddr;
    use std::pin::pin;

    use turmoil_net::shim::tokio::net::TcpStream;
    use turmoil_net::{EnterGuard, Net};

    use super::*;

    fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
        pin!(future).poll(&mut Context::from_waker(Waker::noop()))
    }

    fn ready<T>(poll: Poll<T>) -> T {
        match poll {
            Poll::Ready(value) => value,
            Poll::Pending => panic!("a socket call that does not wait returned Pending"),
        }
    }

    /// Moves every packet to its host, `passes` times (a perfect network).
    fn move_packets(guard: &EnterGuard, passes: usize) {
        let mut packets = Vec::new();
        for _ in 0..passes {
            guard.egress_all(&mut packets);
            for packet in packets.drain(..) {
                guard.deliver(packet);
            }
        }
    }

    /// Host a listens on 9000; b dials and gives up (a connect timeout) after its SYN has
    /// left: a's half-open child is then reset by b's kernel.
    fn orphan_a_half_open_child() -> (EnterGuard, HostId, HostId) {
        let mut net = Net::new();
        let a = net.add_host("a");
        let b = net.add_host("b");
        let a_port = SocketAddr::new(net.lookup("a"), 9000);
        let guard = net.enter();
        guard.set_current(a);
        let listener = ready(poll_once(TcpListener::bind("0.0.0.0:9000"))).expect("binds");
        guard.set_current(b);
        {
            let mut connect = Box::pin(TcpStream::connect(a_port));
            assert!(
                connect
                    .as_mut()
                    .poll(&mut Context::from_waker(Waker::noop()))
                    .is_pending()
            );
            move_packets(&guard, 1); // The SYN reaches a; a answers SYN-ACK.
        } // b's connect is cancelled: its socket goes without a RST.
        move_packets(&guard, 3); // The SYN-ACK meets no socket at b: b resets a's child.
        guard.set_current(a);
        drop(listener);
        (guard, a, b)
    }

    /// The turmoil-net 0.1.0 behaviour this file works around: after a half-open child was
    /// reset, the listener's port cannot be bound again, though the listener is closed.
    #[test]
    fn turmoil_net_keeps_a_closed_listeners_port_bound() {
        let (guard, a, _) = orphan_a_half_open_child();
        guard.set_current(a);
        let again = ready(poll_once(TcpListener::bind("0.0.0.0:9000")));
        assert_eq!(
            again.map(|_| ()).map_err(|error| error.kind()),
            Err(io::ErrorKind::AddrInUse),
            "turmoil-net frees the port now: the kept listener may no longer be needed"
        );
        // Nothing that netstat shows holds the port.
        assert!(
            turmoil_net::netstat("a").entries.is_empty(),
            "{}",
            turmoil_net::netstat("a")
        );
    }

    /// A kept listener is handed to the next incarnation; a second holder is refused.
    #[test]
    fn a_kept_listener_survives_its_holder() {
        let mut net = Net::new();
        let a = net.add_host("a");
        let guard = net.enter();
        guard.set_current(a);
        let kept = KeptListeners::default();
        let first = ready(poll_once(kept.bind(a, "0.0.0.0:9000"))).expect("binds");
        let busy = ready(poll_once(kept.bind(a, "0.0.0.0:9000")));
        assert_eq!(
            busy.map(|_| ()).map_err(|error| error.kind()),
            Err(io::ErrorKind::AddrInUse)
        );
        kept.release("0.0.0.0:9000");
        let second = ready(poll_once(kept.bind(a, "0.0.0.0:9000"))).expect("rebinds");
        assert!(Arc::ptr_eq(&first, &second));
        // The listeners close (with their host current) before the guard uninstalls the Net.
        drop((first, second, kept));
        drop(guard);
    }
}
