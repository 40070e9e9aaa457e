//! Replication goals (pzp-goals 1.0.1) and the depth ranges derived from them
//! (protocol.md §7.4, §9.1).
//!
//! A goal says how much of a tangle a peer wants: `all` of it, the `newest-N` depths, what
//! a `set` or `dict` still needs (everything from its lowest surviving update), or `none`.
//! Goals decide three things:
//! - which tangles a dialer asks to sync ([`Goals::iter`], in the order they were first set);
//! - the want-range sent in sync phases 2 and 3 ([`want_range`]);
//! - the *purpose* of each stored msg ([`purpose`]), from which garbage collection decides
//!   to keep, erase, delete or ghost it (`crate::gc`).
//!
//! Ranges are inclusive depth intervals ([`DepthRange`]); `[1, 0]` is the canonical empty one.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use indexmap::IndexMap;
use thiserror::Error;

use crate::db::Db;
use crate::ids::{MsgId, TangleId};
use crate::msg::Msg;
use crate::roots;
use crate::store::Store;
use crate::tangle::DepthRange;

/// Most goals a peer keeps (each may start a sync exchange on every connection).
pub const GOALS_MAX: usize = 65_536;

/// The ghost span pzp-set and pzp-dict use when not configured.
pub const GHOST_SPAN_DEFAULT: u64 = 32;

/// How much of a tangle a peer wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Goal {
    /// Nothing: the tangle is not replicated (`none`).
    None,
    /// Every msg (`all`).
    All,
    /// The msgs of the newest `N` depths (`newest-N`), plus their trails.
    Newest(u64),
    /// A set feed: every update still needed to compute its value (`set`).
    Set,
    /// A dict feed: every update still needed to compute its value (`dict`).
    Dict,
}

/// Why a goal DSL string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GoalParseError {
    /// Not one of `none`, `all`, `set`, `dict`, `newest-<N>`.
    #[error("Unrecognized goal DSL: {0}")]
    Unrecognized(String),
    /// `newest-N` with an `N` beyond `u64`.
    #[error("goal count out of range: {0}")]
    CountOutOfRange(String),
}

impl FromStr for Goal {
    type Err = GoalParseError;

    /// Parses the reference's goal DSL (`/^newest-(\d+)$/` and the four words).
    fn from_str(text: &str) -> Result<Self, GoalParseError> {
        match text {
            "none" => return Ok(Self::None),
            "all" => return Ok(Self::All),
            "set" => return Ok(Self::Set),
            "dict" => return Ok(Self::Dict),
            _ => {}
        }
        let digits = text
            .strip_prefix("newest-")
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| GoalParseError::Unrecognized(text.to_owned()))?;
        digits
            .parse::<u64>()
            .map(Self::Newest)
            .map_err(|_| GoalParseError::CountOutOfRange(text.to_owned()))
    }
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::All => f.write_str("all"),
            Self::Newest(count) => write!(f, "newest-{count}"),
            Self::Set => f.write_str("set"),
            Self::Dict => f.write_str("dict"),
        }
    }
}

impl Goal {
    /// Whether this goal's ranges depend on the tangle's set/dict bookkeeping.
    #[must_use]
    pub fn is_set_or_dict(&self) -> bool {
        matches!(self, Self::Set | Self::Dict)
    }
}

/// Why a goal could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GoalsError {
    /// Already [`GOALS_MAX`] goals.
    #[error("too many goals (at most {max})")]
    TooMany {
        /// The bound.
        max: usize,
    },
}

/// A peer's goals, in the order each tangle first got one (a JavaScript `Map`).
#[derive(Debug, Clone)]
pub struct Goals {
    goals: IndexMap<TangleId, Goal>,
    ghost_span: u64,
}

impl Default for Goals {
    fn default() -> Self {
        Self::new()
    }
}

impl Goals {
    /// No goals, the default ghost span.
    #[must_use]
    pub fn new() -> Self {
        Self {
            goals: IndexMap::new(),
            ghost_span: GHOST_SPAN_DEFAULT,
        }
    }

    /// Sets the goal of `tangle`; a tangle keeps its position when its goal changes.
    ///
    /// # Errors
    /// [`GoalsError::TooMany`] when a new tangle would exceed [`GOALS_MAX`].
    pub fn set(&mut self, tangle: TangleId, goal: Goal) -> Result<(), GoalsError> {
        if self.goals.len() >= GOALS_MAX && !self.goals.contains_key(&tangle) {
            return Err(GoalsError::TooMany { max: GOALS_MAX });
        }
        self.goals.insert(tangle, goal);
        Ok(())
    }

    /// The goal of `tangle`, if one was set (`none` included).
    #[must_use]
    pub fn get(&self, tangle: &TangleId) -> Option<Goal> {
        self.goals.get(tangle).copied()
    }

    /// Every goal, in the order the tangles first got one.
    pub fn iter(&self) -> impl Iterator<Item = (&TangleId, &Goal)> + '_ {
        self.goals.iter()
    }

    /// Number of goals.
    #[must_use]
    pub fn len(&self) -> usize {
        self.goals.len()
    }

    /// Whether there is no goal.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.goals.is_empty()
    }

    /// How many depths below the lowest required update of a set or dict are remembered as
    /// ghosts (pzp-set/pzp-dict `ghostSpan`; the conductor sets both to the same value).
    #[must_use]
    pub fn ghost_span(&self) -> u64 {
        self.ghost_span
    }

    /// Sets the ghost span (at least 1, as the reference requires).
    pub fn set_ghost_span(&mut self, span: u64) {
        self.ghost_span = span.max(1);
    }
}

/// pzp-sync's `estimateMsgCount`: twice the range's length, clamped to `5..=1000`.
#[must_use]
pub fn estimate_msg_count(range: DepthRange) -> u64 {
    let length = range.max.saturating_sub(range.min).saturating_add(1);
    length.saturating_mul(2).clamp(5, 1000)
}

/// A set's or dict's `minGhostDepth`: `max(0, minRequiredDepth − span)`; `None` stands for
/// the reference's `Infinity` (no update survives, nothing is wanted).
#[must_use]
pub fn min_ghost_depth(min_required_depth: Option<u64>, span: u64) -> Option<u64> {
    min_required_depth.map(|depth| depth.saturating_sub(span))
}

/// pzp-sync's `wantRange(localHave, remoteHave, goal)` (protocol.md §7.4).
///
/// `local_have` is `None` where pzp-sync 1.0.4 falls back to `[-1, -1]` (a phase 2 arriving
/// after the local have-range was forgotten). `min_ghost_depth` is only read for set and dict
/// goals ([`min_ghost_depth`]).
#[must_use]
pub fn want_range(
    local_have: Option<DepthRange>,
    remote_have: DepthRange,
    goal: Option<Goal>,
    min_ghost_depth: Option<u64>,
) -> DepthRange {
    let Some(goal) = goal else {
        return DepthRange::EMPTY;
    };
    if remote_have.is_empty() {
        return DepthRange::EMPTY;
    }
    match goal {
        Goal::All => remote_have,
        Goal::Newest(count) => want_newest(local_have, remote_have, count),
        Goal::Set | Goal::Dict => {
            let Some(ghost_depth) = min_ghost_depth else {
                return DepthRange::EMPTY;
            };
            if remote_have.max < ghost_depth {
                return DepthRange::EMPTY;
            }
            DepthRange {
                min: ghost_depth.max(remote_have.min),
                max: remote_have.max,
            }
        }
        Goal::None => DepthRange::EMPTY,
    }
}

/// The `newest` case, in signed arithmetic as the reference does it (the local range may be
/// the empty `[1, 0]` or pzp-sync's `[-1, -1]`, which is where the over-fetch quirk comes from:
/// an empty local range counts as `localMax = 0`, so `size` covers almost everything).
fn want_newest(local_have: Option<DepthRange>, remote_have: DepthRange, count: u64) -> DepthRange {
    let signed = |value: u64| i128::from(value);
    let (local_min, local_max) = match local_have {
        Some(range) => (signed(range.min), signed(range.max)),
        None => (-1, -1),
    };
    let (remote_min, remote_max) = (signed(remote_have.min), signed(remote_have.max));
    if remote_max < local_min {
        return DepthRange::EMPTY;
    }
    let max_want = remote_max;
    let size = signed(count).max(max_want - local_max);
    let min_want = (max_want - size + 1)
        .max(local_max - size + 1)
        .max(remote_min);
    DepthRange {
        min: u64::try_from(min_want).expect("invariant: min_want >= remote_min >= 0"),
        max: remote_have.max,
    }
}

/// pzp-goals' `crossGoalWithTangle`: the depths of a tangle (deepest msg at `max_depth`) that
/// the goal covers. `min_required_depth` is only read for set and dict goals (`None` is
/// `Infinity`, giving an empty range).
#[must_use]
pub fn goal_range(goal: Goal, max_depth: u64, min_required_depth: Option<u64>) -> DepthRange {
    match goal {
        Goal::Newest(count) => DepthRange {
            min: (max_depth + 1).saturating_sub(count),
            max: max_depth,
        },
        Goal::All => DepthRange {
            min: 0,
            max: max_depth,
        },
        Goal::Set | Goal::Dict => match min_required_depth {
            Some(min) => DepthRange {
                min,
                max: max_depth,
            },
            None => DepthRange::EMPTY,
        },
        Goal::None => DepthRange::EMPTY,
    }
}

/// Why a stored msg exists, as pzp-goals' `getMsgPurpose` tells (protocol.md §9.1). Ordered:
/// a goal msg also serves as trail, and a trail msg also keeps a ghost from being re-fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// No goal needs it: delete it.
    None,
    /// No goal needs it, but it must not be fetched again: delete it and remember it as a
    /// ghost of `tangle` for `span` depths.
    Ghost {
        /// The set or dict tangle.
        tangle: TangleId,
        /// The ghost span.
        span: u64,
    },
    /// On a path from goal msgs to a root: keep it without data.
    Trail,
    /// Meets a goal: keep it.
    Goal,
}

/// What [`purpose`] computes once per tangle and reuses for every msg of it.
#[derive(Debug, Clone)]
struct TangleFacts {
    version: u64,
    goal: Goal,
    range: DepthRange,
    /// `min_required_depth` for set and dict goals.
    min_required_depth: Option<u64>,
    /// The erasables (trail) of the msgs at the range's lowest depth.
    trail: Vec<MsgId>,
}

/// Per-tangle facts shared by many [`purpose`] calls. Entries check the tangle's version, so
/// a cache outliving changes to the database stays correct, only slower.
#[derive(Debug, Default, Clone)]
pub struct PurposeCache {
    tangles: BTreeMap<TangleId, TangleFacts>,
}

impl PurposeCache {
    /// An empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn facts<S: Store>(
        &mut self,
        db: &mut Db<S>,
        tangle_id: &TangleId,
        goal: Goal,
    ) -> Result<Option<&TangleFacts>, S::Error> {
        let tangle = db.tangle(tangle_id)?;
        if tangle.is_empty() {
            return Ok(None);
        }
        let version = tangle.version();
        let fresh = self
            .tangles
            .get(tangle_id)
            .is_some_and(|facts| facts.version == version && facts.goal == goal);
        if !fresh {
            let max_depth = tangle.max_depth();
            let min_required_depth = if goal.is_set_or_dict() {
                roots::min_required_depth(db, tangle_id)?
            } else {
                None
            };
            let range = goal_range(goal, max_depth, min_required_depth);
            let tangle = db.tangle(tangle_id)?;
            let trail = if range.is_empty() {
                Vec::new()
            } else {
                let lowest = tangle.at_depth(range.min).to_vec();
                tangle.deletables_and_erasables(&lowest).1
            };
            self.tangles.insert(
                *tangle_id,
                TangleFacts {
                    version,
                    goal,
                    range,
                    min_required_depth,
                    trail,
                },
            );
        }
        Ok(self.tangles.get(tangle_id))
    }
}

/// pzp-goals' `getMsgPurpose(id, msg)` (protocol.md §9.1):
/// 1. a goal tangle's root whose goal range starts at 0 is a goal msg; one whose range starts
///    higher serves as trail;
/// 2. a msg whose depth lies in the goal range of one of its tangles is a goal msg;
/// 3. otherwise a root serving as trail is a trail msg;
/// 4. so is a msg on the trail of the msgs at the lowest goal depth of one of its tangles;
/// 5. a msg ghostable in one of its set or dict tangles is a ghost;
/// 6. anything else has no purpose.
///
/// # Errors
/// Store failures.
pub fn purpose<S: Store>(
    db: &mut Db<S>,
    goals: &Goals,
    cache: &mut PurposeCache,
    id: &MsgId,
    msg: &Msg,
) -> Result<Purpose, S::Error> {
    let mut serves_as_trail = false;
    if let Some(goal) = goals.get(id).filter(|goal| *goal != Goal::None)
        && let Some(facts) = cache.facts(db, id, goal)?
        && !facts.range.is_empty()
    {
        if facts.range.min == 0 {
            return Ok(Purpose::Goal);
        }
        serves_as_trail = true;
    }
    let mut valid: Vec<(TangleId, u64)> = Vec::new();
    for tangle_id in msg.metadata.tangles.keys() {
        let Some(goal) = goals.get(tangle_id).filter(|goal| *goal != Goal::None) else {
            continue;
        };
        let Some(facts) = cache.facts(db, tangle_id, goal)? else {
            continue;
        };
        if facts.range.is_empty() {
            continue;
        }
        let range = facts.range;
        let Some(depth) = db.tangle(tangle_id)?.depth(id) else {
            continue;
        };
        if range.contains(depth) {
            return Ok(Purpose::Goal);
        }
        valid.push((*tangle_id, depth));
    }
    if serves_as_trail {
        return Ok(Purpose::Trail);
    }
    for (tangle_id, _) in &valid {
        if cache
            .tangles
            .get(tangle_id)
            .is_some_and(|facts| facts.trail.contains(id))
        {
            return Ok(Purpose::Trail);
        }
    }
    let span = goals.ghost_span();
    for (tangle_id, depth) in &valid {
        let Some(facts) = cache.tangles.get(tangle_id) else {
            continue;
        };
        if !facts.goal.is_set_or_dict() {
            continue;
        }
        // pzp-set/pzp-dict isGhostable: minRequired − span ≤ depth < minRequired.
        if let Some(min_required) = facts.min_required_depth
            && id != tangle_id
            && min_required.saturating_sub(span) <= *depth
            && *depth < min_required
        {
            return Ok(Purpose::Ghost {
                tangle: *tangle_id,
                span,
            });
        }
    }
    Ok(Purpose::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(min: u64, max: u64) -> DepthRange {
        DepthRange { min, max }
    }

    #[test]
    fn dsl_round_trips() {
        for text in ["none", "all", "set", "dict", "newest-3", "newest-0"] {
            let goal: Goal = text.parse().expect("parses");
            assert_eq!(goal.to_string(), text);
        }
        assert!("newest-".parse::<Goal>().is_err());
        assert!("newest--1".parse::<Goal>().is_err());
        assert!("everything".parse::<Goal>().is_err());
        assert!(matches!(
            "newest-99999999999999999999999".parse::<Goal>(),
            Err(GoalParseError::CountOutOfRange(_))
        ));
    }

    #[test]
    fn want_ranges_follow_the_reference() {
        let all = Some(Goal::All);
        assert_eq!(
            want_range(Some(range(0, 5)), range(0, 8), all, None),
            range(0, 8)
        );
        assert_eq!(
            want_range(Some(range(0, 5)), DepthRange::EMPTY, all, None),
            DepthRange::EMPTY
        );
        assert_eq!(
            want_range(Some(range(0, 5)), range(0, 8), None, None),
            DepthRange::EMPTY
        );
        // Session 3 of the trace: carol has nothing and wants newest-3 of [0, 9]: [1, 9].
        let newest = Some(Goal::Newest(3));
        assert_eq!(
            want_range(Some(DepthRange::EMPTY), range(0, 9), newest, None),
            range(1, 9)
        );
        assert_eq!(
            want_range(Some(range(0, 9)), range(0, 12), newest, None),
            range(10, 12)
        );
        assert_eq!(
            want_range(Some(range(5, 9)), range(0, 3), newest, None),
            DepthRange::EMPTY
        );
        assert_eq!(want_range(None, range(2, 9), newest, None), range(2, 9));
        let set = Some(Goal::Set);
        assert_eq!(want_range(None, range(0, 9), set, Some(4)), range(4, 9));
        assert_eq!(
            want_range(None, range(0, 3), set, Some(4)),
            DepthRange::EMPTY
        );
        assert_eq!(want_range(None, range(0, 3), set, None), DepthRange::EMPTY);
    }

    #[test]
    fn goal_ranges_follow_the_reference() {
        assert_eq!(goal_range(Goal::Newest(3), 9, None), range(7, 9));
        assert_eq!(goal_range(Goal::Newest(30), 9, None), range(0, 9));
        assert_eq!(goal_range(Goal::All, 9, None), range(0, 9));
        assert_eq!(goal_range(Goal::Dict, 9, Some(4)), range(4, 9));
        assert!(goal_range(Goal::Dict, 9, None).is_empty());
        assert!(goal_range(Goal::None, 9, None).is_empty());
        assert!(goal_range(Goal::Newest(0), 9, None).is_empty());
    }

    #[test]
    fn estimates_clamp() {
        assert_eq!(estimate_msg_count(range(0, 0)), 5);
        assert_eq!(estimate_msg_count(range(0, 8)), 18);
        assert_eq!(estimate_msg_count(range(0, 10_000)), 1000);
    }
}
