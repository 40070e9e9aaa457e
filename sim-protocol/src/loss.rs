//! Loss on a reliable stream, as the fabric substrate's TCP sees it: a lost segment is sent
//! again after a retransmission timeout, and the connection survives. A message crosses a
//! link with `fail_rate` p as one segment: it is lost k times before it gets through, k
//! geometric (P(k) = p^k (1 − p)), each loss costing one timeout — the fabric's fixed timer
//! (the longest round trip plus 100 ms, no back-off), so both tiers wait alike. Seeded from
//! the run seed (`crate::network`'s loss stream). What it ignores: a large message is many
//! segments on the fabric (each may be lost); a loss also delays what follows it on the
//! stream, which the pipes' FIFO order gives here.
//!
//! A `break` (chance p per message) resets the connection when that message would have
//! arrived: what arrived before it is received, it and what follows are lost, both ends see
//! the link close and the dialer redials (`close_link`, the same path as an idle timeout).

use sim::rng::Stream;

/// The reason a connection reset by a `break` is closed with: what a node reports for a
/// reset socket (`io`), so both tiers count breaks alike.
pub(crate) const RESET_REASON: &str = "io";

/// Time a retransmission waits beyond the round trip, ms (the fabric's slack).
const RETRANSMIT_SLACK_MS: u64 = 100;

/// Losses of one message counted at most (a rate near 1 would otherwise loop for long;
/// 64 timeouts outlast any idle timeout).
const LOSSES_MAX: u64 = 64;

/// The retransmission timeout on a link whose one-way latency is at most `latency_max_ms`.
pub(crate) fn retransmission_timeout_ms(latency_max_ms: u64) -> u64 {
    2 * latency_max_ms + RETRANSMIT_SLACK_MS
}

/// The extra delay of one message on a link losing a share `rate` of what it carries.
pub(crate) fn resend_delay_ms(rate: f64, rto_ms: u64, rng: &mut Stream) -> u64 {
    let mut losses = 0;
    while losses < LOSSES_MAX && rng.unit_open() < rate {
        losses += 1;
    }
    losses * rto_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_are_geometric_and_cost_a_timeout_each() {
        let mut rng = sim::rng::stream(1, "test/loss", 0);
        let draws: Vec<u64> = (0..20_000)
            .map(|_| resend_delay_ms(0.1, 300, &mut rng))
            .collect();
        assert!(draws.iter().all(|delay| delay % 300 == 0));
        // E[k] = p / (1 − p) = 0.111…
        let mean = draws.iter().sum::<u64>() as f64 / 300.0 / draws.len() as f64;
        assert!((0.09..0.13).contains(&mean), "{mean}");
        let mut never = sim::rng::stream(1, "test/loss", 1);
        assert_eq!(resend_delay_ms(0.0, 300, &mut never), 0);
        assert_eq!(retransmission_timeout_ms(80), 260);
    }
}
