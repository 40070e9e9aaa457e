//! Who wants which msg, and when: the interest oracle computed from the plan's goals and
//! the publish history.
//!
//! A peer q *wants* msg m of account o's feed f while m lies in q's goal range for that
//! tangle (protocol.md §9.1). The range only moves forward as o publishes, so each wanted
//! (q, m) pair is one interval [published, until):
//!
//! - `all`: until forever;
//! - `newest-N`: until the msg N deeper in the same tangle is published;
//! - `set`/`dict`: until the tangle's minimum required depth (the lowest depth among msgs
//!   not superseded) passes m's depth;
//! - `none`, no rule, or q == o: never (own msgs are not deliveries).
//!
//! The follow graph is static within a run (docs/scenarios.md), so follows do not open or
//! close intervals.

use std::collections::BTreeMap;

use crate::plan::{PeerIdx, Plan};
use proto::goals::Goal;

/// A published msg, as the oracle sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgInfo {
    /// Msg ID.
    pub id: String,
    /// Publish time.
    pub t_ms: u64,
    /// Author.
    pub owner: PeerIdx,
    /// Feed name.
    pub feed: String,
    /// Tangle ID.
    pub tangle: String,
    /// Depth in its tangle (1-based, by publish order; 0 for the tangle's root, whose ID is
    /// the tangle ID).
    pub depth: u32,
    /// Encoded size.
    pub bytes: u64,
    /// Indices (into the oracle's msg list) of the msgs it supersedes.
    pub supersedes: Vec<usize>,
}

/// One wanted pair's interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// The peer.
    pub peer: PeerIdx,
    /// Index into [`Interest::msgs`].
    pub msg: usize,
    /// Wanted from (the publish time).
    pub from_ms: u64,
    /// Wanted until (exclusive); `None` = still wanted at the end.
    pub until_ms: Option<u64>,
}

impl Want {
    /// Whether the pair is wanted at `t`.
    #[must_use]
    pub fn at(&self, t: u64) -> bool {
        self.from_ms <= t && self.until_ms.is_none_or(|u| t < u)
    }
}

/// The oracle.
#[derive(Debug, Clone, Default)]
pub struct Interest {
    msgs: Vec<MsgInfo>,
    by_id: BTreeMap<String, usize>,
    wants: Vec<Want>,
    /// msg index → range into `wants`.
    wants_of_msg: Vec<(usize, usize)>,
    by_pair: BTreeMap<(PeerIdx, usize), usize>,
}

/// A publish as the builder takes it.
#[derive(Debug, Clone, Copy)]
pub struct NewMsg<'a> {
    /// Msg ID.
    pub id: &'a str,
    /// Author.
    pub owner: PeerIdx,
    /// Feed name.
    pub feed: &'a str,
    /// Tangle ID.
    pub tangle: &'a str,
    /// Encoded size.
    pub bytes: u64,
    /// IDs of earlier msgs of the tangle it supersedes.
    pub supersedes: &'a [String],
}

/// Incremental builder: feed it publishes in time order.
#[derive(Debug, Default)]
pub struct InterestBuilder {
    msgs: Vec<MsgInfo>,
    by_id: BTreeMap<String, usize>,
    tangles: BTreeMap<String, Vec<usize>>,
    unknown_supersedes: u64,
}

impl InterestBuilder {
    /// Adds a publish at `t_ms`. Unknown supersedes are counted and ignored. Returns the
    /// msg's index, or `None` if the ID was already published.
    pub fn publish(&mut self, t_ms: u64, msg: &NewMsg<'_>) -> Option<usize> {
        let NewMsg {
            id,
            owner,
            feed,
            tangle,
            bytes,
            supersedes,
        } = *msg;
        if self.by_id.contains_key(id) {
            return None;
        }
        let index = self.msgs.len();
        // A tangle's root (a feed's moot, an account's first msg) has depth 0 and is not
        // counted among the feed's msgs: depth 1 is the first msg after it, as in the
        // protocol, so `newest-N` and set/dict ranges line up with what peers compute.
        let depth = if id == tangle {
            0
        } else {
            let chain = self.tangles.entry(tangle.to_owned()).or_default();
            chain.push(index);
            u32::try_from(chain.len()).unwrap_or(u32::MAX)
        };
        let mut resolved = Vec::new();
        for sup in supersedes {
            match self.by_id.get(sup) {
                Some(i) => resolved.push(*i),
                None => self.unknown_supersedes += 1,
            }
        }
        self.msgs.push(MsgInfo {
            id: id.to_owned(),
            t_ms,
            owner,
            feed: feed.to_owned(),
            tangle: tangle.to_owned(),
            depth,
            bytes,
            supersedes: resolved,
        });
        self.by_id.insert(id.to_owned(), index);
        Some(index)
    }

    /// Index of a published msg.
    #[must_use]
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Computes every wanted interval.
    #[must_use]
    pub fn finish(self, plan: &Plan) -> Interest {
        let followers = followers(plan);
        let min_required_end = self.min_required_end();
        let mut wants = Vec::new();
        let mut wants_of_msg = Vec::with_capacity(self.msgs.len());
        let mut by_pair = BTreeMap::new();
        for (index, msg) in self.msgs.iter().enumerate() {
            let start = wants.len();
            // Roots are never wanted on their own: goals name the msgs of a tangle.
            let list = if msg.depth == 0 {
                None
            } else {
                followers.get(&(msg.owner, msg.feed.as_str()))
            };
            for &(peer, goal) in list.into_iter().flatten() {
                let until_ms = match goal {
                    Goal::All => None,
                    Goal::Newest(n) => self.newer_by(msg, n),
                    Goal::Set | Goal::Dict => min_required_end[index],
                    Goal::None => continue,
                };
                if until_ms.is_some_and(|u| u <= msg.t_ms) {
                    continue;
                }
                by_pair.insert((peer, index), wants.len());
                wants.push(Want {
                    peer,
                    msg: index,
                    from_ms: msg.t_ms,
                    until_ms,
                });
            }
            wants_of_msg.push((start, wants.len()));
        }
        Interest {
            msgs: self.msgs,
            by_id: self.by_id,
            wants,
            wants_of_msg,
            by_pair,
        }
    }

    /// When the `n`-th msg after `msg` in its tangle was published (it leaves newest-`n`).
    fn newer_by(&self, msg: &MsgInfo, n: u64) -> Option<u64> {
        self.tangles.get(&msg.tangle).and_then(|chain| {
            chain
                .get((msg.depth as usize - 1) + usize::try_from(n).unwrap_or(usize::MAX))
                .map(|later| self.msgs[*later].t_ms)
        })
    }

    /// Per msg: when the set/dict minimum required depth passes it.
    fn min_required_end(&self) -> Vec<Option<u64>> {
        let mut min_required_end: Vec<Option<u64>> = vec![None; self.msgs.len()];
        for chain in self.tangles.values() {
            let mut live: std::collections::BTreeSet<(u32, usize)> =
                std::collections::BTreeSet::new();
            let mut next_unended = 0_usize; // position in chain of the lowest msg not yet ended
            for &index in chain {
                let msg = &self.msgs[index];
                for &sup in &msg.supersedes {
                    live.remove(&(self.msgs[sup].depth, sup));
                }
                live.insert((msg.depth, index));
                let min_required = live.first().map_or(u32::MAX, |(d, _)| *d);
                while let Some(&lower) = chain.get(next_unended) {
                    if self.msgs[lower].depth >= min_required {
                        break;
                    }
                    min_required_end[lower] = Some(msg.t_ms);
                    next_unended += 1;
                }
            }
        }
        min_required_end
    }

    /// Every msg published so far, in publish order.
    #[must_use]
    pub fn msgs(&self) -> &[MsgInfo] {
        &self.msgs
    }

    /// The msgs of `tangle` after its root, in publish order (index `d - 1` has depth `d`).
    #[must_use]
    pub fn chain(&self, tangle: &str) -> &[usize] {
        self.tangles.get(tangle).map_or(&[], Vec::as_slice)
    }

    /// Supersedes that named unknown msgs.
    #[must_use]
    pub fn unknown_supersedes(&self) -> u64 {
        self.unknown_supersedes
    }
}

/// (owner, feed) → who follows it with which goal (own feeds and `none` goals left out), in
/// peer order.
pub(crate) fn followers(plan: &Plan) -> BTreeMap<(PeerIdx, &str), Vec<(PeerIdx, Goal)>> {
    let mut followers: BTreeMap<(PeerIdx, &str), Vec<(PeerIdx, Goal)>> = BTreeMap::new();
    for peer in &plan.peers {
        for goal in &peer.goals {
            if goal.account == peer.index || goal.rule.goal == Goal::None {
                continue;
            }
            followers
                .entry((goal.account, goal.rule.feed.as_str()))
                .or_default()
                .push((peer.index, goal.rule.goal));
        }
    }
    followers
}

impl Interest {
    /// Every published msg, in publish order.
    #[must_use]
    pub fn msgs(&self) -> &[MsgInfo] {
        &self.msgs
    }

    /// Index of a msg ID.
    #[must_use]
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Every wanted pair.
    #[must_use]
    pub fn wants(&self) -> &[Want] {
        &self.wants
    }

    /// The wanted pairs of one msg.
    #[must_use]
    pub fn wants_of(&self, msg: usize) -> &[Want] {
        self.wants_of_msg
            .get(msg)
            .and_then(|(start, end)| self.wants.get(*start..*end))
            .unwrap_or_default()
    }

    /// The pair (peer, msg), if the peer ever wants the msg.
    #[must_use]
    pub fn want(&self, peer: PeerIdx, msg: usize) -> Option<&Want> {
        self.by_pair
            .get(&(peer, msg))
            .and_then(|i| self.wants.get(*i))
    }

    /// Whether `peer` wants `msg` at `t`.
    #[must_use]
    pub fn wants_at(&self, peer: PeerIdx, msg: usize, t: u64) -> bool {
        self.want(peer, msg).is_some_and(|w| w.at(t))
    }
}
