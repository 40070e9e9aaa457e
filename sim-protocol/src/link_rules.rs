//! Rules over links between two sets of peers, kept as the sets rather than as the pairs they
//! cover: a partition of `a` peers from the other `N − a` is one rule, not 2·a·(N − a)
//! directed pairs (18 million at 10,000 peers cutting off 1,000).
//!
//! The newest rule that covers a directed pair decides for it, which is what inserting the
//! pairs into a set and removing them again did: a heal or a release is a rule too (its value
//! says "lifted"), and a fault on every link clears the list. The list grows by one per fault
//! step of the plan, so its length is bounded by the scenario.

use std::collections::BTreeSet;

use sim::plan::PeerIdx;

/// Link rules, oldest first.
#[derive(Debug)]
pub(crate) struct LinkRules<V> {
    rules: Vec<LinkRule<V>>,
}

#[derive(Debug)]
struct LinkRule<V> {
    a: BTreeSet<PeerIdx>,
    b: BTreeSet<PeerIdx>,
    /// Covers `b → a` as well as `a → b`.
    both_ways: bool,
    value: V,
}

impl<V> Default for LinkRules<V> {
    fn default() -> Self {
        Self { rules: Vec::new() }
    }
}

impl<V: Copy> LinkRules<V> {
    /// Adds a rule for the links from every peer of `a` to every other peer of `b` (and back
    /// if `both_ways`).
    pub(crate) fn push(&mut self, a: &[PeerIdx], b: &[PeerIdx], both_ways: bool, value: V) {
        if a.is_empty() || b.is_empty() {
            return;
        }
        self.rules.push(LinkRule {
            a: a.iter().copied().collect(),
            b: b.iter().copied().collect(),
            both_ways,
            value,
        });
    }

    /// Forgets every rule.
    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    /// The value of the newest rule covering `from → to`; `None` if none does. A peer has no
    /// link to itself.
    pub(crate) fn get(&self, from: PeerIdx, to: PeerIdx) -> Option<V> {
        if from == to {
            return None;
        }
        self.rules
            .iter()
            .rev()
            .find(|rule| rule.covers(from, to))
            .map(|rule| rule.value)
    }
}

impl<V> LinkRule<V> {
    fn covers(&self, from: PeerIdx, to: PeerIdx) -> bool {
        (self.a.contains(&from) && self.b.contains(&to))
            || (self.both_ways && self.a.contains(&to) && self.b.contains(&from))
    }
}

#[cfg(test)]
mod tests;
