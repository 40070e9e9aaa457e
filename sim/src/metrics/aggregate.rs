//! The aggregated collector (`[report] collector = "aggregated"`, `--collector aggregated`):
//! what [`super::Collector`] keeps instead of held intervals per (peer, msg) pair, so that
//! its memory grows with msgs, peers and samples but not with their product.
//!
//! Per msg and per goal its followers have for the msg's feed, it keeps how many followers
//! want the msg under that goal, how many hold it now, how many got it while it was wanted,
//! and when the goal stopped wanting it (streamed: `newest-N` ends when the msg N deeper is
//! published, set/dict when the minimum required depth passes the msg, as
//! [`crate::interest`] computes at the end). Each store of a wanted pair then adds its
//! latency to a histogram and +1 to the held count's difference array at its sample; a GC
//! removal −1; a goal that stops wanting the msg −(its holders) at that instant. Stores and
//! removals are applied once every publish of their millisecond is in, since a publish later
//! in the same millisecond can end a want (a pair stored at its want's end is not a
//! delivery, as in the per-pair computation).
//!
//! What it cannot tell without each pair's intervals: whether a store repeats one (the
//! double-store check: it assumes the engine reports consistent events, and counts every store
//! as a delivery), when each pair held at the end got its copy (the final curve F(t) and
//! t50…t100), which pairs were missing at an instant in the past (recovery, liveness,
//! delivery) and every peer's tangle order. Those are left out of its reports; the pairs a GC
//! removed while still wanted are kept (a re-store is not a first delivery), which normal
//! runs never produce.

use std::collections::{BTreeMap, BTreeSet};

use hdrhistogram::Histogram;
use proto::goals::Goal;

use super::compute::{Samples, cdf_of_counts, quantiles_hdr, sample_index};
use super::{ConvergenceMetrics, LATENCY_MS_MAX, LatencyMetrics, ratio};
use crate::check::{Holdings, Violation};
use crate::interest::{InterestBuilder, followers};
use crate::plan::{PeerIdx, Plan};

/// The wanted pairs of one msg under one goal.
#[derive(Debug, Clone, Copy)]
struct GoalWants {
    goal: Goal,
    /// Followers of the feed with this goal: the pairs.
    followers: u64,
    /// Of those, holding the msg now.
    holders: u64,
    /// Of those, stored it while it was wanted (a first store: a delivery).
    delivered: u64,
    /// When the goal stopped wanting it.
    until: Option<u64>,
}

/// A pair's event, applied once every publish of its millisecond is in.
#[derive(Debug, Clone, Copy)]
enum PairEvent {
    Stored,
    Removed,
}

/// One tangle's set/dict minimum required depth as it moves
/// (`InterestBuilder::min_required_end`, streamed).
#[derive(Debug, Default)]
struct Required {
    /// (depth, msg) not superseded.
    live: BTreeSet<(u32, usize)>,
    /// Position in the tangle's chain of the lowest msg still required.
    next_unended: usize,
}

/// What the aggregated collector computes at the end.
#[derive(Debug)]
pub(super) struct Aggregated {
    pub(super) latency: LatencyMetrics,
    pub(super) wanted_deliveries: u64,
    pub(super) convergence: ConvergenceMetrics,
    /// The authors' losses of their own msgs, in msg order.
    pub(super) lost_own: Vec<Violation>,
}

/// The aggregated collector's state.
#[derive(Debug)]
pub(super) struct Aggregates<'p> {
    plan: &'p Plan,
    followers: BTreeMap<(PeerIdx, &'p str), Vec<(PeerIdx, Goal)>>,
    /// By msg index.
    wants: Vec<Vec<GoalWants>>,
    required: BTreeMap<String, Required>,
    pending_t: u64,
    pending: Vec<(PeerIdx, usize, PairEvent)>,
    removed_while_wanted: BTreeSet<(PeerIdx, usize)>,
    latency: Histogram<u64>,
    latency_counts: BTreeMap<u64, u64>,
    wanted_deliveries: u64,
    /// Held pairs' changes by (unclamped) sample index.
    held: Vec<i64>,
    /// Msg → when GC first removed it from its author.
    own_removed: BTreeMap<usize, u64>,
    /// Msgs missing from their author's final store.
    own_missing: BTreeSet<usize>,
    by_owner: Option<BTreeMap<PeerIdx, Vec<usize>>>,
}

impl<'p> Aggregates<'p> {
    pub(super) fn new(plan: &'p Plan) -> Self {
        Self {
            plan,
            followers: followers(plan),
            wants: Vec::new(),
            required: BTreeMap::new(),
            pending_t: 0,
            pending: Vec::new(),
            removed_while_wanted: BTreeSet::new(),
            latency: Histogram::new_with_bounds(1, LATENCY_MS_MAX, 3)
                .expect("invariant: valid bounds"),
            latency_counts: BTreeMap::new(),
            wanted_deliveries: 0,
            held: Vec::new(),
            own_removed: BTreeMap::new(),
            own_missing: BTreeSet::new(),
            by_owner: None,
        }
    }

    /// Time moves to `t`: the pair events of earlier milliseconds are applied.
    pub(super) fn advance(&mut self, t: u64, interest: &InterestBuilder) {
        if t > self.pending_t {
            self.flush(interest);
            self.pending_t = t;
        }
    }

    fn flush(&mut self, interest: &InterestBuilder) {
        let t = self.pending_t;
        for (peer, index, event) in std::mem::take(&mut self.pending) {
            match event {
                PairEvent::Stored => self.apply_store(t, peer, index, interest),
                PairEvent::Removed => self.apply_removal(t, peer, index, interest),
            }
        }
    }

    /// Msg `index` was published at `t` (already added to `interest`).
    pub(super) fn published(&mut self, t: u64, index: usize, interest: &InterestBuilder) {
        let msg = &interest.msgs()[index];
        let mut wants: Vec<GoalWants> = Vec::new();
        // Roots are never wanted on their own, as in `InterestBuilder::finish`.
        let list = if msg.depth == 0 {
            None
        } else {
            self.followers.get(&(msg.owner, msg.feed.as_str()))
        };
        for &(_, goal) in list.into_iter().flatten() {
            if goal == Goal::None {
                continue;
            }
            match wants.iter_mut().find(|w| w.goal == goal) {
                Some(w) => w.followers += 1,
                None => wants.push(GoalWants {
                    goal,
                    followers: 1,
                    holders: 0,
                    delivered: 0,
                    until: None,
                }),
            }
        }
        debug_assert_eq!(self.wants.len(), index, "msgs come in index order");
        self.wants.push(wants);
        if msg.depth > 0 {
            self.end_newest(t, index, interest);
            self.end_required(t, index, interest);
        }
    }

    /// The msg `n` shallower than `index` in its tangle leaves every `newest-n` range.
    fn end_newest(&mut self, t: u64, index: usize, interest: &InterestBuilder) {
        let chain = interest.chain(&interest.msgs()[index].tangle);
        let Some(position) = chain.len().checked_sub(1) else {
            return;
        };
        let ranges: Vec<u64> = self.wants[index]
            .iter()
            .filter_map(|w| match w.goal {
                Goal::Newest(n) => Some(n),
                _ => None,
            })
            .collect();
        for n in ranges {
            let earlier = usize::try_from(n)
                .ok()
                .and_then(|n| position.checked_sub(n))
                .map(|p| chain[p]);
            if let Some(earlier) = earlier {
                self.end(t, earlier, Goal::Newest(n));
            }
        }
    }

    /// Set and dict goals stop wanting the msgs below the tangle's minimum required depth.
    fn end_required(&mut self, t: u64, index: usize, interest: &InterestBuilder) {
        let msgs = interest.msgs();
        let msg = &msgs[index];
        let chain = interest.chain(&msg.tangle);
        if !self.required.contains_key(&msg.tangle) {
            self.required
                .insert(msg.tangle.clone(), Required::default());
        }
        let Some(required) = self.required.get_mut(&msg.tangle) else {
            return;
        };
        for &superseded in &msg.supersedes {
            required.live.remove(&(msgs[superseded].depth, superseded));
        }
        required.live.insert((msg.depth, index));
        let min_required = required.live.first().map_or(u32::MAX, |(depth, _)| *depth);
        let mut ended = Vec::new();
        while let Some(&lower) = chain.get(required.next_unended) {
            if msgs[lower].depth >= min_required {
                break;
            }
            ended.push(lower);
            required.next_unended += 1;
        }
        for lower in ended {
            self.end(t, lower, Goal::Set);
            self.end(t, lower, Goal::Dict);
        }
    }

    /// `goal` stops wanting msg `index` at `t`: its holders stop counting.
    fn end(&mut self, t: u64, index: usize, goal: Goal) {
        let sample = sample_index(self.plan.sample_interval_ms, t);
        let mut released = 0;
        for w in &mut self.wants[index] {
            if w.goal == goal && w.until.is_none() {
                w.until = Some(t);
                released += w.holders;
                w.holders = 0;
            }
        }
        if released > 0 {
            self.change_held(sample, -i64::try_from(released).unwrap_or(i64::MAX));
        }
    }

    fn change_held(&mut self, sample: usize, change: i64) {
        if self.held.len() <= sample {
            self.held.resize(sample + 1, 0);
        }
        self.held[sample] += change;
    }

    /// `peer` stored msg `index` (at the current time).
    pub(super) fn stored(&mut self, peer: PeerIdx, index: usize) {
        self.pending.push((peer, index, PairEvent::Stored));
    }

    /// GC removed msg `index` from `peer` (at the current time).
    pub(super) fn removed(&mut self, peer: PeerIdx, index: usize) {
        self.pending.push((peer, index, PairEvent::Removed));
    }

    /// The goals `peer` wants msg `index` with, as positions in the msg's wants.
    fn goals_of(&self, peer: PeerIdx, index: usize, interest: &InterestBuilder) -> Vec<usize> {
        let msg = &interest.msgs()[index];
        let Some(list) = self.followers.get(&(msg.owner, msg.feed.as_str())) else {
            return Vec::new();
        };
        // The list is in peer order.
        let start = list.partition_point(|(p, _)| *p < peer);
        list[start..]
            .iter()
            .take_while(|(p, _)| *p == peer)
            .filter_map(|(_, goal)| self.wants[index].iter().position(|w| w.goal == *goal))
            .collect()
    }

    fn apply_store(&mut self, t: u64, peer: PeerIdx, index: usize, interest: &InterestBuilder) {
        let published = interest.msgs()[index].t_ms;
        let first = !self.removed_while_wanted.contains(&(peer, index));
        let sample = sample_index(self.plan.sample_interval_ms, t);
        for position in self.goals_of(peer, index, interest) {
            let w = &mut self.wants[index][position];
            if w.until.is_some() {
                continue;
            }
            w.holders += 1;
            if first {
                w.delivered += 1;
                let latency = t.saturating_sub(published);
                self.latency.saturating_record(latency);
                *self.latency_counts.entry(latency).or_default() += 1;
                self.wanted_deliveries += 1;
            }
            self.change_held(sample, 1);
        }
    }

    fn apply_removal(&mut self, t: u64, peer: PeerIdx, index: usize, interest: &InterestBuilder) {
        if interest.msgs()[index].owner == peer {
            self.own_removed.entry(index).or_insert(t);
            return;
        }
        let sample = sample_index(self.plan.sample_interval_ms, t);
        let mut wanted = false;
        for position in self.goals_of(peer, index, interest) {
            let w = &mut self.wants[index][position];
            if w.until.is_some() {
                continue;
            }
            w.holders = w.holders.saturating_sub(1);
            wanted = true;
            self.change_held(sample, -1);
        }
        if wanted {
            self.removed_while_wanted.insert((peer, index));
        }
    }

    /// A peer's final holdings: only whether it lost msgs it published.
    pub(super) fn snapshot(
        &mut self,
        peer: PeerIdx,
        holdings: &Holdings,
        interest: &InterestBuilder,
    ) {
        let by_owner = self.by_owner.get_or_insert_with(|| {
            let mut by_owner: BTreeMap<PeerIdx, Vec<usize>> = BTreeMap::new();
            for (index, msg) in interest.msgs().iter().enumerate() {
                by_owner.entry(msg.owner).or_default().push(index);
            }
            by_owner
        });
        let Some(own) = by_owner.get(&peer) else {
            return;
        };
        let held = holdings.msgs();
        for &index in own {
            if !held.contains(interest.msgs()[index].id.as_str()) {
                self.own_missing.insert(index);
            }
        }
    }

    /// Latency, convergence without F(t), and the authors' losses, at `end_ms`.
    pub(super) fn finish(mut self, end_ms: u64, interest: &InterestBuilder) -> Aggregated {
        self.flush(interest);
        let msgs = interest.msgs();
        let mut samples = Samples::new(self.plan.sample_interval_ms.max(1), end_ms);
        let (mut wanted_at_end, mut held_at_end, mut undelivered) = (0, 0, 0);
        for (msg, wants) in msgs.iter().zip(&self.wants) {
            for w in wants {
                // Ended at its own publish: never wanted, as in `InterestBuilder::finish`.
                if w.until.is_some_and(|u| u <= msg.t_ms) {
                    continue;
                }
                samples.want_many(msg.t_ms, w.until, w.followers);
                if w.until.is_none() {
                    undelivered += w.followers - w.delivered.min(w.followers);
                }
                if w.until.is_none_or(|u| u > end_ms) {
                    wanted_at_end += w.followers;
                    held_at_end += w.holders;
                }
            }
        }
        samples.add_held(&self.held);
        let convergence = ConvergenceMetrics {
            wanted_at_end,
            held_at_end,
            fraction_at_end: ratio(held_at_end, wanted_at_end),
            last_publish_ms: msgs.iter().map(|m| m.t_ms).max(),
            curve: samples.curve(None, wanted_at_end),
            ..ConvergenceMetrics::default()
        };
        let latency = LatencyMetrics {
            quantiles: quantiles_hdr(&self.latency),
            undelivered,
            cdf: cdf_of_counts(&self.latency_counts),
        };
        let lost_own = msgs
            .iter()
            .enumerate()
            .flat_map(|(index, msg)| {
                let removed = self.own_removed.get(&index).copied();
                let missing = self.own_missing.contains(&index);
                crate::check::lost_own(self.plan, msg, removed, missing, end_ms)
            })
            .collect();
        Aggregated {
            latency,
            wanted_deliveries: self.wanted_deliveries,
            convergence,
            lost_own,
        }
    }
}
