//! `tangle.slice(ids, [])` for a responder that knows where the asked IDs sit: walking only
//! the index's entries from the highest cut below them, with one tangle lookup per asked ID
//! and one per member above the cut, where the plain slice looks every member up in several
//! sets and walks the graph three times (ancestors, descendants, minimum).

use std::collections::BTreeSet;

use super::entry::{Entry, NO_TIPS};
use crate::collate;
use crate::ids::MsgId;
use crate::tangle::{SlicePart, Tangle};

/// The index's entries from the highest cut below some asked IDs up to the top of the tangle
/// (every member at or above the cut's depth: the cut is alone at its depth), each findable
/// by its ID.
pub(super) struct AboveCut<'a> {
    /// The entries, in topological order; the cut first.
    entries: &'a [Entry],
    /// Each entry's ID with its place in `entries`, sorted by ID.
    places: Vec<(MsgId, usize)>,
}

impl<'a> AboveCut<'a> {
    /// The entries from the highest cut below the lowest of `ids` the tangle holds; `None`
    /// when it holds none of them or no cut is below them. `all` are the index's entries of
    /// `tangle`, in topological order.
    pub(super) fn find(tangle: &Tangle, all: &'a [Entry], ids: &[MsgId]) -> Option<Self> {
        let lowest = ids.iter().filter_map(|id| tangle.depth(id)).min()?;
        let below = all.partition_point(|entry| entry.depth < lowest);
        let cut_at = all.get(..below)?.iter().rposition(|entry| entry.cut)?;
        let entries = all.get(cut_at..)?;
        let mut places: Vec<(MsgId, usize)> = entries
            .iter()
            .enumerate()
            .map(|(at, entry)| (entry.id, at))
            .collect();
        places.sort_unstable_by_key(|(id, _)| *id);
        Some(Self { entries, places })
    }

    fn place(&self, id: &MsgId) -> Option<usize> {
        self.places
            .binary_search_by(|(held, _)| held.cmp(id))
            .ok()
            .and_then(|at| self.places.get(at))
            .map(|(_, place)| *place)
    }

    /// Whether `id` is an entry here whose msg names account tips: a feed msg, so not an
    /// account msg (`account: "self"` names none), which spares the store a lookup.
    pub(super) fn names_account_tips(&self, id: &MsgId) -> bool {
        self.place(id)
            .and_then(|at| self.entries.get(at))
            .is_some_and(|entry| entry.tips != NO_TIPS)
    }

    /// `tangle.slice(ids, [])`; `None` when the cut does not precede an asked ID or a member
    /// lists a `prev` at or above its own place (then the plain slice answers).
    pub(super) fn slice(&self, tangle: &Tangle, ids: &[MsgId]) -> Option<Vec<(MsgId, SlicePart)>> {
        let count = self.entries.len();
        // The asked members (every one the tangle holds is here: none is below the cut),
        // without duplicates, in the order asked.
        let mut asked = vec![false; count];
        let mut mins = Vec::new();
        for at in ids.iter().filter_map(|id| self.place(id)) {
            if let Some(flag) = asked.get_mut(at).filter(|flag| !**flag) {
                *flag = true;
                mins.push(at);
            }
        }
        let parents = self.parents(tangle)?;
        // Members preceding an asked one, from the top down: a parent comes before its child.
        let mut before_min = vec![false; count];
        for at in (0..count).rev() {
            if asked.get(at) == Some(&true) || before_min.get(at) == Some(&true) {
                for parent in parents.of(at) {
                    if let Some(flag) = before_min.get_mut(*parent) {
                        *flag = true;
                    }
                }
            }
        }
        if before_min.first() != Some(&true) {
            return None;
        }
        // Members with an asked ancestor, from the bottom up; the asked ones without one are
        // the minimum, whose trails to the root are sent.
        let mut after_min = vec![false; count];
        for at in 0..count {
            let reached = parents.of(at).iter().any(|parent| {
                asked.get(*parent) == Some(&true) || after_min.get(*parent) == Some(&true)
            });
            if let Some(flag) = after_min.get_mut(at) {
                *flag = reached;
            }
        }
        let tight = mins
            .iter()
            .filter(|at| after_min.get(**at) == Some(&false))
            .filter_map(|at| self.entries.get(*at));
        let trail: BTreeSet<MsgId> = tight
            .flat_map(|entry| tangle.shortest_path_to_root(&entry.id))
            .collect();
        Some(self.slice_out(tangle, &trail, &asked, &before_min))
    }

    /// The slice: the trail below the cut, then every member from the cut up (a trail
    /// member as such first) but those preceding an asked member without being asked.
    fn slice_out(
        &self,
        tangle: &Tangle,
        trail: &BTreeSet<MsgId>,
        asked: &[bool],
        before_min: &[bool],
    ) -> Vec<(MsgId, SlicePart)> {
        let cut_depth = self.entries.first().map_or(0, |cut| cut.depth);
        let mut low_trail: Vec<(u64, MsgId)> = trail
            .iter()
            .filter_map(|id| tangle.depth(id).map(|depth| (depth, *id)))
            .filter(|(depth, _)| *depth < cut_depth)
            .collect();
        low_trail.sort_by(|(depth_a, a), (depth_b, b)| {
            depth_a
                .cmp(depth_b)
                .then_with(|| collate::compare(a.as_str(), b.as_str()).then(a.cmp(b)))
        });
        let mut out: Vec<(MsgId, SlicePart)> = Vec::with_capacity(low_trail.len() + asked.len());
        out.extend(low_trail.into_iter().map(|(_, id)| (id, SlicePart::Trail)));
        let flags = asked.iter().zip(before_min);
        for (entry, (asked, before_min)) in self.entries.iter().zip(flags) {
            if trail.contains(&entry.id) {
                out.push((entry.id, SlicePart::Trail));
            }
            if !*asked && *before_min {
                continue;
            }
            out.push((entry.id, SlicePart::Full));
        }
        out
    }

    /// Each entry's parents among the entries, by place (those below the cut are left out:
    /// they precede every member here). `None` if one is not below its child.
    fn parents(&self, tangle: &Tangle) -> Option<Parents> {
        let mut parents = Parents {
            places: Vec::with_capacity(2 * self.entries.len()),
            ends: Vec::with_capacity(self.entries.len()),
        };
        for (at, entry) in self.entries.iter().enumerate() {
            for id in tangle.prev(&entry.id).unwrap_or_default() {
                if let Some(parent) = self.place(id) {
                    if parent >= at {
                        return None;
                    }
                    parents.places.push(parent);
                }
            }
            parents.ends.push(parents.places.len());
        }
        Some(parents)
    }
}

/// The entries' parents by place, all in one vector.
struct Parents {
    places: Vec<usize>,
    /// Where each entry's parents end in `places` (they start where the previous entry's end).
    ends: Vec<usize>,
}

impl Parents {
    /// The parents of the entry at `at`.
    fn of(&self, at: usize) -> &[usize] {
        let start = at
            .checked_sub(1)
            .and_then(|before| self.ends.get(before))
            .copied()
            .unwrap_or(0);
        let end = self.ends.get(at).copied().unwrap_or(start);
        self.places.get(start..end).unwrap_or_default()
    }
}
