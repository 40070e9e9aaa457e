//! Fetch claims: which of a peer's sessions fetches a tangle the peer holds nothing of.
//!
//! When a peer connects to several remotes that all hold a tangle it lacks, every session
//! would fetch the whole tangle at once and all but one copy would be duplicates. A session
//! that is about to ask for a tangle the peer holds nothing of first claims it; while another
//! session holds the claim, it asks for nothing (an empty want-range, a valid answer the
//! reference handles) and is *deferred*: when the claim is released it starts a new exchange,
//! with the peer's have-range no longer empty, so blooms keep it from receiving what the
//! first fetch brought. A claim is released when its exchange ends, when its session closes,
//! or [`FETCH_CLAIM_TTL_MS`] after it was taken, so that a remote that never finishes cannot
//! hold the tangle back from the others.

use std::collections::BTreeMap;

use super::time::Time;
use crate::ids::TangleId;

/// How long a claim holds before other sessions may fetch the tangle too: longer than an
/// exchange takes on a healthy link (a few round trips), short enough that a stalled or
/// hostile remote delays the tangle by no more than this.
pub const FETCH_CLAIM_TTL_MS: u64 = 10_000;

/// Identifies a session among the sessions of one peer (assigned by [`super::Sessions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SessionTag(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Claim {
    holder: SessionTag,
    expires: Time,
}

/// The claims of one peer's sessions. Bounded by the tangles its sessions fetch at once: a
/// session claims only tangles the peer has a goal for (at most
/// [`crate::goals::GOALS_MAX`]), and holds at most one claim per tangle.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    held: BTreeMap<TangleId, Claim>,
    /// Tangles whose claim was released and not yet announced to the deferred sessions.
    released: Vec<TangleId>,
}

impl Claims {
    /// No claims.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims `tangle` for `holder` at `now`: true if it holds the claim afterwards (it was
    /// free, had expired, or was already its own).
    pub fn claim(&mut self, tangle: TangleId, holder: SessionTag, now: Time) -> bool {
        let expires = Time(now.0.saturating_add(FETCH_CLAIM_TTL_MS));
        match self.held.get_mut(&tangle) {
            Some(claim) if claim.holder != holder && claim.expires > now => false,
            Some(claim) => {
                *claim = Claim { holder, expires };
                true
            }
            None => {
                self.held.insert(tangle, Claim { holder, expires });
                true
            }
        }
    }

    /// Releases `holder`'s claim on `tangle`, if it holds it.
    pub fn release(&mut self, tangle: TangleId, holder: SessionTag) {
        if self
            .held
            .get(&tangle)
            .is_some_and(|claim| claim.holder == holder)
        {
            self.held.remove(&tangle);
            self.released.push(tangle);
        }
    }

    /// Releases every claim of `holder` (its session closed).
    pub fn release_all(&mut self, holder: SessionTag) {
        let mine: Vec<TangleId> = self
            .held
            .iter()
            .filter(|(_, claim)| claim.holder == holder)
            .map(|(tangle, _)| *tangle)
            .collect();
        for tangle in mine {
            self.release(tangle, holder);
        }
    }

    /// Releases the claims that expired by `now`.
    pub fn expire(&mut self, now: Time) {
        let expired: Vec<(TangleId, SessionTag)> = self
            .held
            .iter()
            .filter(|(_, claim)| claim.expires <= now)
            .map(|(tangle, claim)| (*tangle, claim.holder))
            .collect();
        for (tangle, holder) in expired {
            self.release(tangle, holder);
        }
    }

    /// When the earliest claim expires.
    #[must_use]
    pub fn deadline(&self) -> Option<Time> {
        self.held.values().map(|claim| claim.expires).min()
    }

    /// The tangles released since the last call, in the order they were released.
    pub fn take_released(&mut self) -> Vec<TangleId> {
        std::mem::take(&mut self.released)
    }

    /// Whether `holder` holds the claim on `tangle`.
    #[must_use]
    pub fn holds(&self, tangle: &TangleId, holder: SessionTag) -> bool {
        self.held
            .get(tangle)
            .is_some_and(|claim| claim.holder == holder)
    }

    /// The claims held: tangle and holder.
    pub fn iter(&self) -> impl Iterator<Item = (TangleId, SessionTag)> + '_ {
        self.held
            .iter()
            .map(|(tangle, claim)| (*tangle, claim.holder))
    }

    /// Number of claims held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no claim is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MsgId;

    #[test]
    fn one_holder_at_a_time_until_release_or_expiry() {
        let tangle = MsgId::from_bytes(&[7; 32]);
        let (a, b) = (SessionTag(1), SessionTag(2));
        let mut claims = Claims::new();
        assert!(claims.claim(tangle, a, Time(0)));
        assert!(
            claims.claim(tangle, a, Time(5)),
            "a holder renews its own claim"
        );
        assert!(!claims.claim(tangle, b, Time(6)));
        assert_eq!(claims.deadline(), Some(Time(5 + FETCH_CLAIM_TTL_MS)));
        claims.release(tangle, b);
        assert!(claims.holds(&tangle, a), "only the holder releases");
        claims.release(tangle, a);
        assert_eq!(claims.take_released(), vec![tangle]);
        assert!(claims.claim(tangle, b, Time(7)));
        claims.expire(Time(7 + FETCH_CLAIM_TTL_MS - 1));
        assert!(claims.holds(&tangle, b));
        claims.expire(Time(7 + FETCH_CLAIM_TTL_MS));
        assert!(claims.is_empty());
        assert_eq!(claims.take_released(), vec![tangle]);
        assert!(claims.take_released().is_empty());
    }

    #[test]
    fn an_expired_claim_is_taken_over_without_a_release() {
        let tangle = MsgId::from_bytes(&[8; 32]);
        let mut claims = Claims::new();
        assert!(claims.claim(tangle, SessionTag(1), Time(0)));
        assert!(claims.claim(tangle, SessionTag(2), Time(FETCH_CLAIM_TTL_MS)));
        assert!(claims.holds(&tangle, SessionTag(2)));
        assert!(claims.take_released().is_empty());
        claims.release_all(SessionTag(2));
        assert_eq!(claims.take_released(), vec![tangle]);
    }
}
