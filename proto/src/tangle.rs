//! Tangles: single-rooted DAGs of msgs (protocol.md §5).
//!
//! A tangle is named by its root's msg ID. A msg belongs to tangle `T` when its metadata has
//! an entry `tangles[T] = {depth, prev}`; the root has no entry and depth 0. The root decides
//! the tangle's kind: a moot roots a *feed*, an `account: "self"` msg roots an *account*, and
//! any other msg roots a *weave* (e.g. a thread).
//!
//! [`Tangle`] holds only the graph (IDs, depths, links, whether each msg still has data), not
//! the msgs. It is maintained incrementally: inserting and removing a msg cost
//! `O(prev · log n)`, and every walk (topological order, precedence, slices, deletables) is a
//! single iterative pass with an explicit queue — never recursion, never the reference's
//! quadratic `precedes` loops.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::collate;
use crate::ids::{MsgId, TangleId};
use crate::msg::{Account, Metadata, Msg, TangleLink};

/// What a tangle's root makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TangleKind {
    /// Rooted at a moot: one account's msgs of one domain.
    Feed {
        /// The moot's account.
        account: Account,
        /// The moot's domain.
        domain: String,
    },
    /// Rooted at an account msg (`account: "self"`): the account's keys.
    Account,
    /// Rooted at any other msg, e.g. a post that replies thread from.
    Weave,
}

impl TangleKind {
    /// The kind a tangle rooted at `root` has.
    #[must_use]
    pub fn of_root(root: &Msg) -> Self {
        if root.is_moot() {
            Self::Feed {
                account: root.metadata.account,
                domain: root.metadata.domain.clone(),
            }
        } else if root.metadata.account == Account::OwnTangle {
            Self::Account
        } else {
            Self::Weave
        }
    }
}

/// A range of depths, inclusive; empty when `min > max` (the sync protocol's `[1, 0]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthRange {
    /// Lowest depth.
    pub min: u64,
    /// Highest depth.
    pub max: u64,
}

impl DepthRange {
    /// The canonical empty range, `[1, 0]`.
    pub const EMPTY: Self = Self { min: 1, max: 0 };

    /// Whether no depth is in the range.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.min > self.max
    }

    /// Whether `depth` is in the range.
    #[must_use]
    pub fn contains(&self, depth: u64) -> bool {
        self.min <= depth && depth <= self.max
    }
}

/// Lists up to this long grow one ID at a time; longer ones grow as a `Vec` does.
const EXACT_LIST_MAX: usize = 4;

/// Makes room for one more ID in a tangle's per-depth or per-parent list. Those lists are
/// nearly always one ID long (a feed is a chain: one member per depth, one child per msg), and
/// a `Vec`'s first push reserves four 45-byte IDs, so most of their memory was never used.
/// Past [`EXACT_LIST_MAX`] the usual doubling keeps a wide tangle's inserts amortized.
fn reserve_for_one(list: &mut Vec<MsgId>) {
    if list.len() == list.capacity() && list.len() < EXACT_LIST_MAX {
        list.reserve_exact(1);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    depth: u64,
    prev: Vec<MsgId>,
    has_data: bool,
}

/// Which form of a msg a slice includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlicePart {
    /// The msg as stored.
    Full,
    /// The msg without its data: it is on the trail from the slice's start to the root.
    Trail,
}

/// The graph of one tangle.
#[derive(Debug, Clone)]
pub struct Tangle {
    id: TangleId,
    kind: Option<TangleKind>,
    nodes: BTreeMap<MsgId, Node>,
    /// Members per depth, each list in collation order (the reference's topoSort).
    by_depth: BTreeMap<u64, Vec<MsgId>>,
    /// For every ID that present members list in `prev`: those members.
    children: BTreeMap<MsgId, Vec<MsgId>>,
    tips: BTreeSet<MsgId>,
    /// How many members still have their data, kept as they change so that counting a
    /// tangle's dataful msgs (a control command a client may poll) does not walk it.
    with_data: usize,
    /// Bumped on every change, so caches derived from the tangle know when they are stale.
    version: u64,
}

impl Tangle {
    /// An empty tangle named `id`, whose root is not known yet.
    #[must_use]
    pub fn new(id: TangleId) -> Self {
        Self {
            id,
            kind: None,
            nodes: BTreeMap::new(),
            by_depth: BTreeMap::new(),
            children: BTreeMap::new(),
            tips: BTreeSet::new(),
            with_data: 0,
            version: 0,
        }
    }

    /// The tangle ID (its root's msg ID).
    #[must_use]
    pub fn id(&self) -> TangleId {
        self.id
    }

    /// The kind, once the root is known.
    #[must_use]
    pub fn kind(&self) -> Option<&TangleKind> {
        self.kind.as_ref()
    }

    /// Whether the root msg is known.
    #[must_use]
    pub fn has_root(&self) -> bool {
        self.kind.is_some()
    }

    /// A counter that changes whenever the tangle changes.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of known msgs, root included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Number of known msgs that still have their data (not erased), root included.
    #[must_use]
    pub fn len_with_data(&self) -> usize {
        self.with_data
    }

    /// Whether no msg is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether `id` is a known member (or the root).
    #[must_use]
    pub fn has(&self, id: &MsgId) -> bool {
        self.nodes.contains_key(id)
    }

    /// Depth of a known member.
    #[must_use]
    pub fn depth(&self, id: &MsgId) -> Option<u64> {
        self.nodes.get(id).map(|node| node.depth)
    }

    /// `prev` of a known member within this tangle (empty for the root).
    #[must_use]
    pub fn prev(&self, id: &MsgId) -> Option<&[MsgId]> {
        self.nodes.get(id).map(|node| node.prev.as_slice())
    }

    /// Whether a known member still has its data (not erased).
    #[must_use]
    pub fn has_data(&self, id: &MsgId) -> Option<bool> {
        self.nodes.get(id).map(|node| node.has_data)
    }

    /// The largest depth of any member (0 when only the root, or nothing, is known).
    #[must_use]
    pub fn max_depth(&self) -> u64 {
        self.by_depth.keys().next_back().copied().unwrap_or(0)
    }

    /// Members not referenced by any other member's `prev`.
    #[must_use]
    pub fn tips(&self) -> &BTreeSet<MsgId> {
        &self.tips
    }

    /// Members at `depth`, in collation order.
    #[must_use]
    pub fn at_depth(&self, depth: u64) -> &[MsgId] {
        self.by_depth.get(&depth).map_or(&[], Vec::as_slice)
    }

    /// Adds `msg` (with ID `id`) if it is this tangle's root or a member; returns whether the
    /// tangle changed. Adding a known msg only refreshes whether it has data.
    pub fn insert(&mut self, id: MsgId, msg: &Msg) -> bool {
        if id == self.id {
            if self.kind.is_none() {
                self.kind = Some(TangleKind::of_root(msg));
            }
            return self.insert_node(id, 0, Vec::new(), msg.has_data());
        }
        self.insert_member(id, &msg.metadata, msg.has_data())
    }

    /// Adds a member known by its metadata alone (what a store can give without decoding the
    /// data); returns whether anything changed. The root needs the whole msg, for its kind:
    /// it goes through [`Tangle::insert`], and is refused here.
    pub fn insert_member(&mut self, id: MsgId, metadata: &Metadata, has_data: bool) -> bool {
        if id == self.id {
            return false;
        }
        match metadata.tangles.get(&self.id) {
            Some(TangleLink { depth, prev }) => {
                self.insert_node(id, *depth, prev.clone(), has_data)
            }
            None => false,
        }
    }

    /// Adds a member from its link in this tangle, as [`Tangle::insert_member`] does from its
    /// metadata (a store's [`crate::store::Store::tangle_links`] gives links without metadata).
    pub fn insert_link(&mut self, id: MsgId, link: TangleLink, has_data: bool) -> bool {
        if id == self.id {
            return false;
        }
        self.insert_node(id, link.depth, link.prev, has_data)
    }

    fn insert_node(&mut self, id: MsgId, depth: u64, prev: Vec<MsgId>, has_data: bool) -> bool {
        if let Some(node) = self.nodes.get_mut(&id) {
            let changed = node.has_data != has_data;
            if changed {
                self.with_data = count_change(self.with_data, has_data);
            }
            node.has_data = has_data;
            self.version += u64::from(changed);
            return changed;
        }
        for parent in &prev {
            let siblings = self.children.entry(*parent).or_default();
            reserve_for_one(siblings);
            siblings.push(id);
            self.tips.remove(parent);
        }
        if self.children.get(&id).is_none_or(Vec::is_empty) {
            self.tips.insert(id);
        }
        let level = self.by_depth.entry(depth).or_default();
        let position = level
            .binary_search_by(|other| {
                collate::compare(other.as_str(), id.as_str()).then(other.cmp(&id))
            })
            .unwrap_or_else(|insert_at| insert_at);
        reserve_for_one(level);
        level.insert(position, id);
        self.with_data += usize::from(has_data);
        self.nodes.insert(
            id,
            Node {
                depth,
                prev,
                has_data,
            },
        );
        self.version += 1;
        true
    }

    /// Removes a msg (deleted from the store); returns whether it was known.
    pub fn remove(&mut self, id: &MsgId) -> bool {
        let Some(node) = self.nodes.remove(id) else {
            return false;
        };
        self.with_data -= usize::from(node.has_data);
        if *id == self.id {
            self.kind = None;
        }
        self.tips.remove(id);
        if let Some(level) = self.by_depth.get_mut(&node.depth) {
            level.retain(|other| other != id);
            if level.is_empty() {
                self.by_depth.remove(&node.depth);
            }
        }
        for parent in &node.prev {
            let orphaned = match self.children.get_mut(parent) {
                Some(siblings) => {
                    siblings.retain(|child| child != id);
                    siblings.is_empty()
                }
                None => false,
            };
            if orphaned {
                self.children.remove(parent);
                if self.nodes.contains_key(parent) {
                    self.tips.insert(*parent);
                }
            }
        }
        self.version += 1;
        true
    }

    /// Records that a member lost (erase) or regained its data.
    pub fn set_has_data(&mut self, id: &MsgId, has_data: bool) {
        if let Some(node) = self.nodes.get_mut(id)
            && node.has_data != has_data
        {
            node.has_data = has_data;
            self.with_data = count_change(self.with_data, has_data);
            self.version += 1;
        }
    }

    /// Panics if the graph's indexes disagree with its members: every member listed once, at
    /// its depth, each depth in collation order; `children` exactly the reverse of `prev`;
    /// `tips` exactly the members no member lists in `prev`; the root known exactly when the
    /// kind is, at depth 0 with no `prev`. Tests call it after every change.
    pub fn check_invariants(&self) {
        let id = self.id;
        let listed: usize = self.by_depth.values().map(Vec::len).sum();
        assert_eq!(
            listed,
            self.nodes.len(),
            "{id}: by_depth lists {listed} members"
        );
        let with_data = self.nodes.values().filter(|node| node.has_data).count();
        assert_eq!(
            self.with_data, with_data,
            "{id}: counts {} members with data, holds {with_data}",
            self.with_data
        );
        for (depth, level) in &self.by_depth {
            assert!(!level.is_empty(), "{id}: empty level {depth}");
            for member in level {
                let at = self.nodes.get(member).map(|node| node.depth);
                assert_eq!(at, Some(*depth), "{id}: {member} listed at depth {depth}");
            }
            for pair in level.windows(2) {
                if let [a, b] = pair {
                    let order = collate::compare(a.as_str(), b.as_str()).then(a.cmp(b));
                    assert!(
                        order.is_lt(),
                        "{id}: depth {depth} out of order at {a}, {b}"
                    );
                }
            }
        }
        let mut children: BTreeMap<MsgId, Vec<MsgId>> = BTreeMap::new();
        for (member, node) in &self.nodes {
            for parent in &node.prev {
                children.entry(*parent).or_default().push(*member);
            }
        }
        let mut actual = self.children.clone();
        actual.values_mut().for_each(|list| list.sort_unstable());
        assert_eq!(
            actual, children,
            "{id}: children are not the reverse of prev"
        );
        let tips: BTreeSet<MsgId> = self
            .nodes
            .keys()
            .filter(|member| !children.contains_key(*member))
            .copied()
            .collect();
        assert_eq!(self.tips, tips, "{id}: tips");
        let root = self.nodes.get(&id);
        assert_eq!(
            self.kind.is_some(),
            root.is_some(),
            "{id}: kind without root"
        );
        if let Some(root) = root {
            assert!(
                root.depth == 0 && root.prev.is_empty(),
                "{id}: root not at 0"
            );
        }
    }

    /// Whether `other` holds the same members with the same depths, links and data flags,
    /// and the same root kind (indexes and version aside).
    #[must_use]
    pub fn same_graph(&self, other: &Tangle) -> bool {
        self.id == other.id && self.kind == other.kind && self.nodes == other.nodes
    }

    /// All members in the reference's topological order: by depth, then by collation.
    pub fn topo_order(&self) -> impl DoubleEndedIterator<Item = &MsgId> + '_ {
        self.by_depth.values().flatten()
    }

    /// Members whose depth is in `range`, in topological order.
    pub fn in_depth_range(
        &self,
        range: DepthRange,
    ) -> impl DoubleEndedIterator<Item = &MsgId> + '_ {
        // An empty range selects nothing (BTreeMap::range would panic on min > max).
        let bounds = if range.is_empty() {
            0..0
        } else {
            range.min..range.max.saturating_add(1)
        };
        self.by_depth
            .range(bounds)
            .flat_map(|(_, level)| level.iter())
    }

    /// The link a new msg in this tangle gets: the next depth, and `prev` = tips plus the
    /// msgs at the lipmaa depth, sorted (protocol.md §5.2).
    #[must_use]
    pub fn next_link(&self) -> TangleLink {
        let depth = self.max_depth() + 1;
        let mut prev: BTreeSet<MsgId> = self.tips.iter().copied().collect();
        if self.has_root() {
            prev.extend(self.at_depth(lipmaa(depth + 1) - 1).iter().copied());
        }
        TangleLink {
            depth,
            prev: prev.into_iter().collect(),
        }
    }

    /// Whether `earlier` is reachable from `later` by following `prev` links.
    #[must_use]
    pub fn precedes(&self, earlier: &MsgId, later: &MsgId) -> bool {
        if earlier == later || *later == self.id {
            return false;
        }
        let mut queue = VecDeque::from([*later]);
        let mut seen = BTreeSet::from([*later]);
        while let Some(current) = queue.pop_front() {
            let Some(node) = self.nodes.get(&current) else {
                continue;
            };
            for parent in &node.prev {
                if parent == earlier {
                    return true;
                }
                if seen.insert(*parent) {
                    queue.push_back(*parent);
                }
            }
        }
        false
    }

    /// Every msg that strictly precedes at least one of `starts`.
    fn ancestors_of<'a>(&self, starts: impl IntoIterator<Item = &'a MsgId>) -> BTreeSet<MsgId> {
        let mut found = BTreeSet::new();
        let mut queue: VecDeque<MsgId> = starts.into_iter().copied().collect();
        while let Some(current) = queue.pop_front() {
            let Some(node) = self.nodes.get(&current) else {
                continue;
            };
            for parent in &node.prev {
                if self.nodes.contains_key(parent) && found.insert(*parent) {
                    queue.push_back(*parent);
                }
            }
        }
        found
    }

    /// Every msg that at least one of `starts` strictly precedes.
    fn descendants_of<'a>(&self, starts: impl IntoIterator<Item = &'a MsgId>) -> BTreeSet<MsgId> {
        let mut found = BTreeSet::new();
        let mut queue: VecDeque<MsgId> = starts.into_iter().copied().collect();
        while let Some(current) = queue.pop_front() {
            let Some(children) = self.children.get(&current) else {
                continue;
            };
            for child in children {
                if found.insert(*child) {
                    queue.push_back(*child);
                }
            }
        }
        found
    }

    /// `heads` (those known) and every msg that precedes one of them, in topological order:
    /// the causal past of a msg whose `prev` is `heads`.
    #[must_use]
    pub fn past_of(&self, heads: &[MsgId]) -> Vec<MsgId> {
        let known = dedup_known(self, heads);
        let mut past = self.ancestors_of(&known);
        past.extend(known);
        self.topo_order()
            .filter(|id| past.contains(id))
            .copied()
            .collect()
    }

    /// The path from `id` to the root, always stepping to the lowest-depth `prev` (ties: the
    /// first in collation order); `id` itself is not included (protocol.md §5.4).
    #[must_use]
    pub fn shortest_path_to_root(&self, id: &MsgId) -> Vec<MsgId> {
        let mut path = Vec::new();
        let mut current = *id;
        // Each step strictly lowers the depth, so the walk ends; the bound is a safety net.
        for _ in 0..=self.nodes.len() {
            let Some(node) = self.nodes.get(&current) else {
                break;
            };
            let mut best: Option<(u64, MsgId)> = None;
            for parent in &node.prev {
                let Some(depth) = self.depth(parent) else {
                    continue;
                };
                if depth >= node.depth {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some((best_depth, best_id)) => {
                        depth < best_depth
                            || (depth == best_depth
                                && collate::compare(parent.as_str(), best_id.as_str())
                                    == Ordering::Less)
                    }
                };
                if better {
                    best = Some((depth, *parent));
                }
            }
            let Some((_, next)) = best else { break };
            path.push(next);
            current = next;
        }
        path
    }

    /// Of `ids`, those that no other member of `ids` precedes (duplicates and unknown IDs
    /// dropped, input order kept).
    #[must_use]
    pub fn minimum_among(&self, ids: &[MsgId]) -> Vec<MsgId> {
        let known: Vec<MsgId> = dedup_known(self, ids);
        let after = self.descendants_of(&known);
        known.into_iter().filter(|id| !after.contains(id)).collect()
    }

    /// The reference's `DBTangle.slice(minSet, maxSet)`: in topological order, the trail from
    /// the minimal elements of `min_set` to the root (as [`SlicePart::Trail`]), then every msg
    /// that is not before some min and not after some max. Unknown IDs are ignored.
    #[must_use]
    pub fn slice(&self, min_set: &[MsgId], max_set: &[MsgId]) -> Vec<(MsgId, SlicePart)> {
        let mins: BTreeSet<MsgId> = dedup_known(self, min_set).into_iter().collect();
        let maxes: BTreeSet<MsgId> = dedup_known(self, max_set).into_iter().collect();
        let tight = self.minimum_among(&mins.iter().copied().collect::<Vec<_>>());
        let trail: BTreeSet<MsgId> = tight
            .iter()
            .flat_map(|id| self.shortest_path_to_root(id))
            .collect();
        let before_min = self.ancestors_of(&mins);
        let after_max = self.descendants_of(&maxes);
        let mut out = Vec::new();
        for id in self.topo_order() {
            if trail.contains(id) {
                out.push((*id, SlicePart::Trail));
            }
            if !mins.contains(id) && before_min.contains(id) {
                continue;
            }
            if !maxes.contains(id) && after_max.contains(id) {
                continue;
            }
            out.push((*id, SlicePart::Full));
        }
        out
    }

    /// Given msgs to keep, which earlier msgs can be erased (they form the trails from the
    /// minimal kept msgs to the root) and which deleted (everything else before them), in
    /// topological order (protocol.md §5.4).
    #[must_use]
    pub fn deletables_and_erasables(&self, keep: &[MsgId]) -> (Vec<MsgId>, Vec<MsgId>) {
        let minimum = self.minimum_among(keep);
        let erasable: BTreeSet<MsgId> = minimum
            .iter()
            .flat_map(|id| self.shortest_path_to_root(id))
            .collect();
        let before = self.ancestors_of(&minimum);
        let mut deletables = Vec::new();
        let mut erasables = Vec::new();
        for id in self.topo_order() {
            if erasable.contains(id) {
                erasables.push(*id);
            } else if before.contains(id) {
                deletables.push(*id);
            }
        }
        (deletables, erasables)
    }
}

/// `count` after one member gained (`gained`) or lost its data.
fn count_change(count: usize, gained: bool) -> usize {
    if gained { count + 1 } else { count - 1 }
}

fn dedup_known(tangle: &Tangle, ids: &[MsgId]) -> Vec<MsgId> {
    let mut seen = BTreeSet::new();
    ids.iter()
        .filter(|id| tangle.has(id) && seen.insert(**id))
        .copied()
        .collect()
}

/// The Bamboo-style back-link of protocol.md §5.3: `lipmaa(n)` for `n >= 1`.
#[must_use]
pub fn lipmaa(n: u64) -> u64 {
    let mut m: u64 = 1;
    let mut po3: u64 = 3;
    let mut u = n;
    while m < n {
        po3 = po3.saturating_mul(3);
        m = (po3 - 1) / 2;
    }
    po3 /= 3;
    if m != n {
        while u != 0 {
            m = (po3 - 1) / 2;
            po3 /= 3;
            if m == 0 {
                break;
            }
            u %= m;
        }
        if m != po3 {
            po3 = m;
        }
    }
    n.saturating_sub(po3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lipmaa_matches_the_reference_table() {
        // From vectors/msgs-pure.json lipmaaTable: depth -> lower prev depth in a linear feed.
        let table = [
            (3, 0),
            (7, 3),
            (11, 7),
            (12, 3),
            (16, 12),
            (20, 16),
            (24, 20),
            (25, 12),
            (38, 25),
            (39, 12),
        ];
        for (depth, back) in table {
            assert_eq!(lipmaa(depth + 1) - 1, back, "depth {depth}");
        }
        assert_eq!(lipmaa(2) - 1, 0);
        assert_eq!(lipmaa(1), 0);
    }

    fn member_of(root: TangleId, depth: u64, prev: Vec<MsgId>) -> Metadata {
        Metadata {
            data_hash: None,
            data_size: 0,
            account: crate::msg::Account::Any,
            account_tips: None,
            tangles: BTreeMap::from([(root, TangleLink { depth, prev })]),
            domain: "post".to_owned(),
        }
    }

    fn id(n: u8) -> MsgId {
        MsgId::from_bytes(&[n; 32])
    }

    /// A chain's lists hold one ID each and reserve no more; a wide depth still takes them all.
    #[test]
    fn a_chain_lists_one_id_per_depth_and_parent_without_spare_room() {
        let root = id(0);
        let mut tangle = Tangle::new(root);
        for n in 1..=20u8 {
            let metadata = member_of(root, u64::from(n), vec![id(n - 1)]);
            assert!(tangle.insert_member(id(n), &metadata, true));
        }
        for n in 21..=29u8 {
            assert!(tangle.insert_member(id(n), &member_of(root, 21, vec![id(20)]), true));
        }
        tangle.check_invariants();
        for (depth, level) in &tangle.by_depth {
            if *depth <= 20 {
                assert_eq!((level.len(), level.capacity()), (1, 1), "depth {depth}");
            }
        }
        for (parent, children) in &tangle.children {
            if *parent != id(20) {
                assert_eq!((children.len(), children.capacity()), (1, 1), "{parent}");
            }
        }
        let wide = tangle.by_depth.get(&21).expect("depth 21");
        assert_eq!(wide.len(), 9);
        assert!(
            wide.capacity() >= 9 && wide.capacity() <= 16,
            "{}",
            wide.capacity()
        );
        assert_eq!(tangle.children.get(&id(20)).map(Vec::len), Some(9));
    }
}
