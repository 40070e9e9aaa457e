//! Keeping a peer's dial targets connected: when to dial, and how long to wait after a
//! failure. A pure machine, so the node and the simulator's engines share one policy.
//!
//! Every target is always in one of three states: waiting for its next dial, dialing, or
//! connected. A failed dial, or a connection that ends, puts it back to waiting, never to
//! rest: the delay doubles with each failure in a row from [`Backoff::base_ms`] up to
//! [`Backoff::max_ms`], and is drawn uniformly from its upper half (seeded jitter, so that
//! peers cut off together do not redial in lockstep). A connection that lasted at least
//! `max_ms` counts as a success: the next delay starts from the base again.
//!
//! The shell feeds [`Event`]s with the time and a seeded random number generator, carries
//! out each [`Action::Dial`], and sends [`Event::Tick`] at [`Redial::deadline`].

use rand_core::Rng;

use crate::sync::Time;

/// Redial delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure (before jitter).
    pub base_ms: u64,
    /// The longest delay; also how long a connection must last to reset the backoff.
    pub max_ms: u64,
}

/// One of the shell's dial targets, by the index it was added with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetId(pub usize);

/// What a shell tells [`Redial`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A target was added (dial it now).
    Added(TargetId),
    /// Dialing the target failed (refused, timed out, handshake failed, or no room).
    DialFailed(TargetId),
    /// The dial succeeded: the target is connected.
    Connected(TargetId),
    /// The target's connection ended.
    Disconnected(TargetId),
    /// Time passed ([`Redial::deadline`]).
    Tick,
    /// Stop: no more dials (shutdown).
    Stop,
}

/// What [`Redial`] asks the shell to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Dial this target now, then report [`Event::Connected`] or [`Event::DialFailed`].
    Dial(TargetId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next dial is due at this time.
    Waiting(Time),
    Dialing,
    /// Connected since this time.
    Connected(Time),
}

#[derive(Debug, Clone, Copy)]
struct Target {
    state: State,
    /// Failures in a row (failed dials, or connections shorter than the backoff cap).
    failures: u32,
}

/// The dial schedule of one peer. See the module docs.
#[derive(Debug, Clone)]
pub struct Redial {
    backoff: Backoff,
    targets: Vec<Target>,
    stopped: bool,
}

impl Redial {
    /// No targets yet.
    #[must_use]
    pub fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            targets: Vec::new(),
            stopped: false,
        }
    }

    /// Number of targets.
    #[must_use]
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there is no target.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// When the next dial is due, if any target waits.
    #[must_use]
    pub fn deadline(&self) -> Option<Time> {
        if self.stopped {
            return None;
        }
        self.targets
            .iter()
            .filter_map(|target| match target.state {
                State::Waiting(at) => Some(at),
                State::Dialing | State::Connected(_) => None,
            })
            .min()
    }

    /// Whether a target is connected.
    #[must_use]
    pub fn is_connected(&self, id: TargetId) -> bool {
        self.targets
            .get(id.0)
            .is_some_and(|target| matches!(target.state, State::Connected(_)))
    }

    /// Failures in a row of a target.
    #[must_use]
    pub fn failures(&self, id: TargetId) -> u32 {
        self.targets.get(id.0).map_or(0, |target| target.failures)
    }

    /// Handles one event, appending the dials to make.
    pub fn handle(&mut self, now: Time, event: Event, rng: &mut impl Rng, out: &mut Vec<Action>) {
        match event {
            Event::Added(id) => {
                while self.targets.len() <= id.0 {
                    self.targets.push(Target {
                        state: State::Waiting(now),
                        failures: 0,
                    });
                }
            }
            Event::DialFailed(id) => self.wait(id, now, false, rng),
            Event::Connected(id) => {
                if let Some(target) = self.targets.get_mut(id.0) {
                    target.state = State::Connected(now);
                }
            }
            Event::Disconnected(id) => {
                let lasted = match self.targets.get(id.0).map(|target| target.state) {
                    Some(State::Connected(since)) => {
                        now.0.saturating_sub(since.0) >= self.backoff.max_ms
                    }
                    _ => false,
                };
                self.wait(id, now, lasted, rng);
            }
            Event::Tick => {}
            Event::Stop => self.stopped = true,
        }
        self.dial_due(now, out);
    }

    /// Puts a target back to waiting: after a failure, or (`reset`) after a connection that
    /// lasted.
    fn wait(&mut self, id: TargetId, now: Time, reset: bool, rng: &mut impl Rng) {
        let backoff = self.backoff;
        let Some(target) = self.targets.get_mut(id.0) else {
            return;
        };
        target.failures = if reset {
            0
        } else {
            target.failures.saturating_add(1)
        };
        let delay = delay_ms(backoff, target.failures, rng);
        target.state = State::Waiting(Time(now.0.saturating_add(delay)));
    }

    fn dial_due(&mut self, now: Time, out: &mut Vec<Action>) {
        if self.stopped {
            return;
        }
        for (index, target) in self.targets.iter_mut().enumerate() {
            if matches!(target.state, State::Waiting(at) if at <= now) {
                target.state = State::Dialing;
                out.push(Action::Dial(TargetId(index)));
            }
        }
    }

    /// Panics if a state is inconsistent. Tests call it after every event.
    pub fn check_invariants(&self, now: Time) {
        for (index, target) in self.targets.iter().enumerate() {
            if let State::Waiting(at) = target.state {
                assert!(
                    self.stopped || at > now,
                    "target {index} is due at {at:?} but was not dialed at {now:?}"
                );
                let longest = self.backoff.max_ms.max(self.backoff.base_ms);
                assert!(
                    at.0.saturating_sub(now.0) <= longest,
                    "target {index} waits past the backoff cap"
                );
            }
        }
    }
}

/// The delay after `failures` failures in a row: `base · 2^(failures − 1)` capped at `max`,
/// drawn from its upper half; none before the first failure.
fn delay_ms(backoff: Backoff, failures: u32, rng: &mut impl Rng) -> u64 {
    if failures == 0 {
        return 0;
    }
    let exponent = failures.saturating_sub(1).min(32);
    let ceiling = backoff
        .base_ms
        .saturating_mul(1u64 << exponent)
        .min(backoff.max_ms)
        .max(1);
    let half = ceiling / 2;
    half + rng.next_u64() % (ceiling - half + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter posing as a random number generator (the tests only need variety).
    struct Counter(u64);

    impl rand_core::TryRng for Counter {
        type Error = core::convert::Infallible;

        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            Ok(u32::try_from(self.0 >> 33).unwrap_or(0))
        }

        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            Ok(self.0)
        }

        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
            for byte in dest {
                *byte = u8::try_from(self.try_next_u32()? & 0xff).unwrap_or(0);
            }
            Ok(())
        }
    }

    const BACKOFF: Backoff = Backoff {
        base_ms: 500,
        max_ms: 10_000,
    };

    #[test]
    fn a_target_is_redialed_forever_within_the_cap() {
        let mut rng = Counter(7);
        let mut redial = Redial::new(BACKOFF);
        let mut out = Vec::new();
        let target = TargetId(0);
        redial.handle(Time(0), Event::Added(target), &mut rng, &mut out);
        assert_eq!(out, vec![Action::Dial(target)]);
        let mut now = Time(0);
        let mut delays = Vec::new();
        for _ in 0..200 {
            out.clear();
            redial.handle(now, Event::DialFailed(target), &mut rng, &mut out);
            assert!(out.is_empty());
            let due = redial.deadline().expect("always a next dial");
            delays.push(due.0 - now.0);
            now = due;
            redial.handle(now, Event::Tick, &mut rng, &mut out);
            assert_eq!(out, vec![Action::Dial(target)]);
            redial.check_invariants(now);
        }
        assert!(delays.iter().all(|delay| *delay <= BACKOFF.max_ms));
        assert!(
            delays
                .iter()
                .skip(10)
                .all(|delay| *delay >= BACKOFF.max_ms / 2)
        );
        assert!(
            delays
                .first()
                .is_some_and(|delay| *delay <= BACKOFF.base_ms)
        );
        // Jitter: not all capped delays are the same.
        let capped: std::collections::BTreeSet<u64> = delays.iter().skip(10).copied().collect();
        assert!(capped.len() > 10);
    }

    #[test]
    fn a_connection_that_lasted_resets_the_backoff_and_a_short_one_does_not() {
        let mut rng = Counter(1);
        let mut redial = Redial::new(BACKOFF);
        let mut out = Vec::new();
        let target = TargetId(0);
        redial.handle(Time(0), Event::Added(target), &mut rng, &mut out);
        for _ in 0..5 {
            redial.handle(Time(0), Event::DialFailed(target), &mut rng, &mut out);
        }
        assert_eq!(redial.failures(target), 5);
        redial.handle(Time(1), Event::Connected(target), &mut rng, &mut out);
        assert!(redial.is_connected(target));
        redial.handle(Time(100), Event::Disconnected(target), &mut rng, &mut out);
        assert_eq!(
            redial.failures(target),
            6,
            "a short connection is a failure"
        );
        let due = redial.deadline().expect("waits");
        redial.handle(due, Event::Tick, &mut rng, &mut out);
        redial.handle(due, Event::Connected(target), &mut rng, &mut out);
        let later = Time(due.0 + BACKOFF.max_ms);
        out.clear();
        redial.handle(later, Event::Disconnected(target), &mut rng, &mut out);
        assert_eq!(redial.failures(target), 0);
        assert_eq!(out, vec![Action::Dial(target)], "redialed at once");
    }

    #[test]
    fn stop_ends_dialing() {
        let mut rng = Counter(3);
        let mut redial = Redial::new(BACKOFF);
        let mut out = Vec::new();
        redial.handle(Time(0), Event::Added(TargetId(0)), &mut rng, &mut out);
        redial.handle(Time(0), Event::DialFailed(TargetId(0)), &mut rng, &mut out);
        redial.handle(Time(1), Event::Stop, &mut rng, &mut out);
        out.clear();
        redial.handle(Time(60_000), Event::Tick, &mut rng, &mut out);
        assert!(out.is_empty());
        assert_eq!(redial.deadline(), None);
    }
}
