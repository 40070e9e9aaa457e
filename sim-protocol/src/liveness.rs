//! A link's keepalive and idle check, from the two ends' `proto::liveness` machines (the
//! rule the node's connection actor runs), for every protocol's links alike. The engine ticks both ends of a link at once, every keepalive
//! interval from the handshake.

use proto::liveness::{Action, Event, Liveness};
use proto::sync::Time;

/// What a link tick asks the engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkCheck {
    /// Close the link; the reason as the dialer sees it (its own timeout, or its remote's
    /// close).
    Close(&'static str),
    /// The dialer pings (only it holds a `net.ping` call; the acceptor answers).
    Ping,
    /// Nothing to do.
    Quiet,
}

/// Ticks both ends at `now_ms`: the dialer's verdict first, as the node's would come first
/// in the dialer's trace.
pub(crate) fn tick(now_ms: u64, dialer: &mut Liveness, acceptor: &mut Liveness) -> LinkCheck {
    let now = Time(now_ms);
    let at_dialer = dialer.handle(now, Event::Tick);
    let at_acceptor = acceptor.handle(now, Event::Tick);
    match (at_dialer, at_acceptor) {
        (Some(Action::CloseIdle), _) => LinkCheck::Close("timeout"),
        (_, Some(Action::CloseIdle)) => LinkCheck::Close("closed"),
        (Some(Action::Ping), _) => LinkCheck::Ping,
        (None, _) => LinkCheck::Quiet,
    }
}
