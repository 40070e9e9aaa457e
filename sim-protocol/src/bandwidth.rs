//! Timing of one direction of a link, for every protocol's pipes: bandwidth and latency.
//!
//! A direction sends one message at a time, in order (a TCP stream over one bottleneck): a
//! message of `n` bytes starts serialising when it is handed over or when the one before it
//! has left, whichever is later, takes `n / bandwidth`, then travels one latency draw. The
//! messages of one write share one latency draw (as before bandwidth existed). Without a
//! bandwidth a message leaves at once, so arrival times are exactly the latency-only ones.
//!
//! The bytes a peer has handed over and not yet sent out are its *queue*; each direction
//! keeps its own ([`Lane::waiting`]), and [`QueuePeaks`] keeps each peer's largest total.

use std::collections::VecDeque;

/// Microseconds in a millisecond: serialisation is timed in µs, since a small message on a
/// fast link takes well under the engine's 1 ms resolution, and a stream of them adds up.
const US_PER_MS: u64 = 1_000;

/// One direction's clock: when the sender is free again and when the last message arrives.
#[derive(Debug, Default)]
pub(crate) struct Lane {
    /// When the last message handed over has been serialised, µs.
    busy_until_us: u64,
    /// The arrival time of the last message sent (arrivals never go backwards), ms.
    pub(crate) last_arrival_ms: u64,
    /// The write the last message went out in (the engine's `write` counter).
    pub(crate) last_write: u64,
    /// The latency drawn for that write, ms.
    write_latency_ms: u64,
    /// Messages still serialising or waiting to: (done at µs, bytes), in order.
    in_flight: VecDeque<(u64, u64)>,
    /// Their bytes.
    in_flight_bytes: u64,
    /// When a message that resets the connection (a `break`) would have arrived, ms.
    pub(crate) reset_at_ms: Option<u64>,
}

/// What is waiting to leave: bytes and messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Waiting {
    pub(crate) bytes: u64,
    pub(crate) messages: u64,
}

impl Waiting {
    /// Both together (a peer's queue is the sum over its links).
    pub(crate) fn plus(self, other: Waiting) -> Waiting {
        Waiting {
            bytes: self.bytes + other.bytes,
            messages: self.messages + other.messages,
        }
    }
}

impl Lane {
    /// Whether a message sent now in `write` belongs to the write the last one went out in
    /// (then it needs no latency draw of its own).
    pub(crate) fn same_write(&self, write: u64) -> bool {
        self.last_write == write
    }

    /// Sends `bytes` handed over at `now_ms` in `write`; `latency_ms` is the draw for a new
    /// write (ignored within one), `resend_ms` what losses add (`crate::loss`). Returns the
    /// arrival time, ms.
    pub(crate) fn send(
        &mut self,
        now_ms: u64,
        (write, latency_ms, resend_ms): (u64, u64, u64),
        bytes: u64,
        bandwidth_bytes_per_s: Option<u64>,
    ) -> u64 {
        if !self.same_write(write) {
            self.write_latency_ms = latency_ms;
        }
        self.last_write = write;
        let left_ms = match bandwidth_bytes_per_s {
            None => now_ms,
            Some(rate) => self.serialise(now_ms, bytes, rate),
        };
        let arrival = self
            .last_arrival_ms
            .max(left_ms + self.write_latency_ms + resend_ms);
        self.last_arrival_ms = arrival;
        arrival
    }

    /// Queues `bytes` behind what is still serialising; returns when they have left, ms
    /// (to the nearest ms, the engine's resolution: rounding every message up would add
    /// half a millisecond per hop on average, and a sync takes many hops).
    fn serialise(&mut self, now_ms: u64, bytes: u64, rate: u64) -> u64 {
        let now_us = now_ms * US_PER_MS;
        self.drain(now_us);
        let duration_us = (bytes * 1_000_000).div_ceil(rate.max(1));
        self.busy_until_us = self.busy_until_us.max(now_us) + duration_us;
        self.in_flight.push_back((self.busy_until_us, bytes));
        self.in_flight_bytes += bytes;
        (self.busy_until_us + US_PER_MS / 2) / US_PER_MS
    }

    /// Forgets the messages that have left by `now_us`.
    fn drain(&mut self, now_us: u64) {
        while let Some(&(done_us, bytes)) = self.in_flight.front() {
            if done_us > now_us {
                break;
            }
            self.in_flight.pop_front();
            self.in_flight_bytes -= bytes;
        }
    }

    /// What this direction still has to send at `now_ms` (nothing without a bandwidth).
    pub(crate) fn waiting(&mut self, now_ms: u64) -> Waiting {
        self.drain(now_ms * US_PER_MS);
        Waiting {
            bytes: self.in_flight_bytes,
            messages: self.in_flight.len() as u64,
        }
    }

    /// After a cut or hold ends: the kept messages go out again from `now_ms`, one latency
    /// draw each (`latencies`, in order), keeping FIFO order. Returns their arrival times.
    pub(crate) fn resend(&mut self, now_ms: u64, latencies: &[u64]) -> Vec<u64> {
        let mut last = now_ms;
        let arrivals = latencies
            .iter()
            .map(|latency| {
                last = last.max(now_ms + latency);
                last
            })
            .collect();
        self.last_arrival_ms = last;
        if self.reset_at_ms.is_some() {
            self.reset_at_ms = Some(last);
        }
        arrivals
    }

    /// Whether the connection resets at `now_ms` (a message that breaks it is due).
    pub(crate) fn resets_by(&self, now_ms: u64) -> bool {
        self.reset_at_ms.is_some_and(|at| at <= now_ms)
    }

    /// Marks the message just sent (arriving at `arrival_ms`) as the one that resets the
    /// connection, unless an earlier one does.
    pub(crate) fn reset_on_arrival(&mut self, arrival_ms: u64) {
        self.reset_at_ms.get_or_insert(arrival_ms);
    }
}

/// Each peer's largest queue over the run: bytes and messages handed to its links and not
/// yet sent out, summed over its links (each taken at the moment it peaked in bytes).
#[derive(Debug, Clone, Default)]
pub(crate) struct QueuePeaks {
    peaks: Vec<Waiting>,
}

impl QueuePeaks {
    pub(crate) fn new(peers: usize) -> Self {
        Self {
            peaks: vec![Waiting::default(); peers],
        }
    }

    /// Records `peer`'s queue now (the sum of its outbound directions' [`Lane::waiting`]).
    pub(crate) fn observe(&mut self, peer: usize, now: Waiting) {
        if let Some(peak) = self.peaks.get_mut(peer)
            && now.bytes > peak.bytes
        {
            *peak = now;
        }
    }

    /// The peaks, by peer: `(bytes, messages)`.
    pub(crate) fn by_peer(&self) -> Vec<(u64, u64)> {
        self.peaks
            .iter()
            .map(|peak| (peak.bytes, peak.messages))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_bandwidth_arrival_is_send_time_plus_latency() {
        let mut lane = Lane::default();
        assert_eq!(lane.send(100, (1, 20, 0), 1_000_000, None), 120);
        assert_eq!(lane.waiting(100), Waiting::default());
    }

    #[test]
    fn a_busy_direction_queues_behind_the_message_ahead() {
        // 1,000 B/s: 500 bytes take 500 ms.
        let mut lane = Lane::default();
        assert_eq!(lane.send(0, (1, 10, 0), 500, Some(1_000)), 510);
        assert_eq!(lane.send(100, (2, 10, 0), 500, Some(1_000)), 1_010);
        let waiting = lane.waiting(600);
        assert_eq!((waiting.bytes, waiting.messages), (500, 1));
        assert_eq!(lane.waiting(1_000), Waiting::default());
    }

    #[test]
    fn one_write_shares_its_latency_draw() {
        let mut lane = Lane::default();
        assert_eq!(lane.send(0, (7, 50, 0), 1_000, Some(1_000_000)), 51);
        // Same write: the latency passed in is ignored; serialisation still adds up.
        assert_eq!(lane.send(0, (7, 999, 0), 1_000, Some(1_000_000)), 52);
    }

    #[test]
    fn peaks_keep_the_largest_byte_backlog_per_peer() {
        let mut peaks = QueuePeaks::new(2);
        let at = |bytes, messages| Waiting { bytes, messages };
        peaks.observe(1, at(10, 1));
        peaks.observe(1, at(300, 2));
        peaks.observe(1, at(200, 9));
        assert_eq!(peaks.by_peer(), vec![(0, 0), (300, 2)]);
    }
}
