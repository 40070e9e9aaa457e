//! pzp-net's `net.ping`: the keepalive and round-trip probe a pzp peer opens on every
//! connection, as a muxrpc duplex (anonymous callers may open it). This is pzp-net's
//! protocol carried over muxrpc, not part of muxrpc.

use super::muxrpc::Body;

/// The method path of pzp-net's keepalive (`net.ping`, duplex, anonymous).
pub const NET_PING: [&str; 2] = ["net", "ping"];

/// pull-ping's answering side for `net.ping` (pzp-net opens it to measure RTT
/// and keep connections alive). The dialer sends its clock in ms; we answer
/// every odd-numbered message with our clock, and the even ones close the
/// dialer's round trip. The app calls [`PingResponder::on_data`] for each
/// [`Event::Data`] on the `net.ping` stream and sends what it returns.
#[derive(Debug, Default)]
pub struct PingResponder {
    received: u64,
}

impl PingResponder {
    /// The reply to send (if any) for one ping frame, given our clock.
    pub fn on_data(&mut self, now_ms: u64) -> Option<Body> {
        self.received += 1;
        (self.received % 2 == 1).then(|| Body::Json(now_ms.to_string().into_bytes()))
    }
}

/// True for the `net.ping` method path.
pub fn is_net_ping(name: &[String]) -> bool {
    name.len() == NET_PING.len() && name.iter().zip(NET_PING).all(|(a, b)| a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_responder_answers_every_other_ping() {
        let mut responder = PingResponder::default();
        assert_eq!(responder.on_data(1000), Some(Body::Json(b"1000".to_vec())));
        assert_eq!(responder.on_data(1001), None);
        assert_eq!(responder.on_data(1002), Some(Body::Json(b"1002".to_vec())));
    }

    #[test]
    fn only_net_ping_is_net_ping() {
        assert!(is_net_ping(&["net".to_owned(), "ping".to_owned()]));
        assert!(!is_net_ping(&["net".to_owned()]));
        assert!(!is_net_ping(&["sync".to_owned(), "connect".to_owned()]));
    }
}
