//! Keeping one end of a connection alive, and noticing when it died: when to ping, when to
//! give up. A pure machine, so the node's connection actor and the protocol tier's links
//! share one rule and cannot drift apart.
//!
//! The rule, checked at every tick (one every [`LivenessTimers::keepalive_ms`] from the
//! connection's start, [`Liveness::deadline`]):
//! - an end that received nothing for longer than [`LivenessTimers::idle_timeout_ms`] closes
//!   the connection ([`Action::CloseIdle`]);
//! - otherwise it pings ([`Action::Ping`]) unless it both sent and received something within
//!   the keepalive interval: traffic both ways already feeds both ends' idle timers, so a
//!   ping would only add bytes. A stalled or one-way connection still pings, and still times
//!   out.
//!
//! Only the dialing end holds a `net.ping` call, so only it acts on [`Action::Ping`]; the
//! answering end's machine says when it would ping, and its shell has nothing to send.
//!
//! The shell reports [`Event::Sent`] for every batch it hands to the socket (pings
//! included), [`Event::Received`] for every batch read from it, and [`Event::Tick`] at
//! [`Liveness::deadline`].

use crate::sync::Time;

/// The two timers of a connection, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessTimers {
    /// How often an end checks its connection (and pings, when the connection is quiet).
    pub keepalive_ms: u64,
    /// An end that heard nothing for longer closes the connection.
    pub idle_timeout_ms: u64,
}

/// What a shell tells [`Liveness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Bytes went out.
    Sent,
    /// Bytes came in.
    Received,
    /// The keepalive interval passed ([`Liveness::deadline`]).
    Tick,
}

/// What [`Liveness`] asks its shell to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send a keepalive (`net.ping`), if this end has a ping call.
    Ping,
    /// Close the connection: nothing arrived for longer than the idle timeout.
    CloseIdle,
}

/// One end of one connection. See the module docs.
#[derive(Debug, Clone)]
pub struct Liveness {
    timers: LivenessTimers,
    last_sent: Time,
    last_received: Time,
    next_tick: Time,
}

impl Liveness {
    /// A connection that started at `now`: both directions count as active then, and the
    /// first tick is one keepalive interval away.
    #[must_use]
    pub fn new(now: Time, timers: LivenessTimers) -> Self {
        Self {
            timers,
            last_sent: now,
            last_received: now,
            next_tick: Time(now.0.saturating_add(timers.keepalive_ms)),
        }
    }

    /// When the next [`Event::Tick`] is due.
    #[must_use]
    pub fn deadline(&self) -> Time {
        self.next_tick
    }

    /// The timers this end runs with.
    #[must_use]
    pub fn timers(&self) -> LivenessTimers {
        self.timers
    }

    /// Takes one event at `now` (never earlier than the previous event's time); returns what
    /// to do, if anything.
    pub fn handle(&mut self, now: Time, event: Event) -> Option<Action> {
        match event {
            Event::Sent => {
                self.last_sent = now;
                None
            }
            Event::Received => {
                self.last_received = now;
                None
            }
            Event::Tick => {
                self.next_tick = Time(now.0.saturating_add(self.timers.keepalive_ms));
                self.tick(now)
            }
        }
    }

    fn tick(&self, now: Time) -> Option<Action> {
        let since = |then: Time| now.0.saturating_sub(then.0);
        if since(self.last_received) > self.timers.idle_timeout_ms {
            return Some(Action::CloseIdle);
        }
        let interval = self.timers.keepalive_ms;
        let busy = since(self.last_received) < interval && since(self.last_sent) < interval;
        (!busy).then_some(Action::Ping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMERS: LivenessTimers = LivenessTimers {
        keepalive_ms: 30_000,
        idle_timeout_ms: 120_000,
    };

    #[test]
    fn first_tick_is_one_interval_after_the_start_and_each_tick_arms_the_next() {
        let mut end = Liveness::new(Time(5), TIMERS);
        assert_eq!(end.deadline(), Time(30_005));
        end.handle(Time(30_005), Event::Tick);
        assert_eq!(end.deadline(), Time(60_005));
        end.handle(Time(40_000), Event::Received);
        assert_eq!(
            end.deadline(),
            Time(60_005),
            "traffic does not move the tick"
        );
    }

    #[test]
    fn traffic_both_ways_within_the_interval_skips_the_ping() {
        let mut end = Liveness::new(Time(0), TIMERS);
        end.handle(Time(10_000), Event::Sent);
        end.handle(Time(20_000), Event::Received);
        assert_eq!(end.handle(Time(30_000), Event::Tick), None);
    }

    #[test]
    fn one_way_or_stale_traffic_pings() {
        // Sent only: still a ping (the remote may not be hearing us).
        let mut end = Liveness::new(Time(0), TIMERS);
        end.handle(Time(40_000), Event::Sent);
        assert_eq!(end.handle(Time(60_000), Event::Tick), Some(Action::Ping));
        // Received only: a ping too.
        let mut end = Liveness::new(Time(0), TIMERS);
        end.handle(Time(40_000), Event::Received);
        assert_eq!(end.handle(Time(60_000), Event::Tick), Some(Action::Ping));
        // Exactly one interval ago is no longer within it.
        let mut end = Liveness::new(Time(0), TIMERS);
        assert_eq!(end.handle(Time(30_000), Event::Tick), Some(Action::Ping));
    }

    #[test]
    fn closes_only_when_silent_for_longer_than_the_idle_timeout() {
        let mut end = Liveness::new(Time(0), TIMERS);
        end.handle(Time(1_000), Event::Received);
        // Sending does not keep an end alive: only hearing from the remote does.
        end.handle(Time(100_000), Event::Sent);
        assert_eq!(end.handle(Time(121_000), Event::Tick), Some(Action::Ping));
        assert_eq!(
            end.handle(Time(121_001), Event::Tick),
            Some(Action::CloseIdle)
        );
        end.handle(Time(121_002), Event::Received);
        assert_eq!(end.handle(Time(121_003), Event::Tick), None);
    }
}
