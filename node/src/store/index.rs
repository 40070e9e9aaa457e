//! The in-memory index of a log: where each live msg's latest record is, which msgs each
//! tangle holds, the ghosts, and the size accounting. Built by replaying the log on open,
//! and kept current by applying each new record through the same functions, so what a
//! running store shows and what a reopened store shows cannot drift apart.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use indexmap::map::Entry;

use proto::ids::{MsgId, TangleId};
use proto::store::{Ghosts, StoreStats};

use super::format::{Kind, MsgHead, RawId};

/// Most slots (records ever appended since the last compaction) one index can address.
pub const SLOTS_MAX: u64 = u32::MAX as u64;

/// Where one msg (live or dead) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The msg ID.
    pub id: RawId,
    /// Receive order.
    pub seq: u64,
    /// Offset in the log of its latest record.
    pub offset: u64,
    /// Length of that record, prefix included.
    pub record_len: u32,
    /// Length of the msg's JSON (what `StoreStats::bytes` counts).
    pub json_len: u32,
    /// Whether the msg has data.
    pub has_data: bool,
    /// False once deleted or replaced.
    pub live: bool,
}

/// A replay rule the log broke (a writer bug or corruption that checksums did not catch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayProblem(pub &'static str);

/// The index of one log.
#[derive(Debug, Default)]
pub struct Index {
    /// Every msg appended since the last compaction, in receive (sequence) order.
    slots: Vec<Slot>,
    /// Live msgs → their slot. A hash map because replay inserts every msg once and random
    /// 32-byte keys make a B-tree compare long prefixes all the way down; it is never
    /// iterated, so its order cannot leak into behaviour.
    by_id: IndexMap<RawId, u32>,
    /// Tangle → slots of msgs that list it, in receive order. Dead slots stay until the next
    /// compaction rather than costing a search on every delete; readers skip them.
    tangles: IndexMap<RawId, Vec<u32>>,
    /// The tangle (and its position in `tangles`) the last msg joined: consecutive msgs are
    /// mostly of one feed, and this spares a hash and a key comparison per msg on replay.
    /// Positions are stable because `tangles` only grows.
    last_tangle: Option<(RawId, usize)>,
    ghosts: BTreeMap<TangleId, Ghosts>,
    next_seq: u64,
    live_count: u64,
    bytes: u64,
    deleted_bytes: u64,
}

impl Index {
    /// An empty index whose first sequence number will be `seq_floor`, with room for about
    /// `records_expected` msgs (so replay does not regrow its tables many times).
    #[must_use]
    pub fn new(seq_floor: u64, records_expected: usize) -> Self {
        Self {
            slots: Vec::with_capacity(records_expected),
            by_id: IndexMap::with_capacity(records_expected),
            next_seq: seq_floor,
            ..Self::default()
        }
    }

    /// The sequence number the next append gets.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The index of the live slot of `id` (stable until the next compaction).
    #[must_use]
    pub fn slot_index_of(&self, id: &RawId) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// The slot at `index` (from [`Index::slot_index_of`]).
    #[must_use]
    pub fn slot_at(&self, index: u32) -> Option<&Slot> {
        self.slots.get(usize::try_from(index).ok()?)
    }

    /// Slots, live or dead.
    #[must_use]
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The live slot of `id`.
    #[must_use]
    pub fn slot_of(&self, id: &RawId) -> Option<&Slot> {
        let index = *self.by_id.get(id)?;
        self.slots.get(usize::try_from(index).ok()?)
    }

    /// Live slots in receive order.
    pub fn live_slots(&self) -> impl Iterator<Item = &Slot> + '_ {
        self.slots.iter().filter(|slot| slot.live)
    }

    /// Slot indexes of the live members of `tangle`, in receive order (as
    /// [`Index::tangle_members`]).
    #[must_use]
    pub fn tangle_member_slots(&self, tangle: &RawId) -> Vec<u32> {
        self.tangles
            .get(tangle)
            .map(|members| {
                members
                    .iter()
                    .copied()
                    .filter(|index| {
                        usize::try_from(*index)
                            .ok()
                            .and_then(|at| self.slots.get(at))
                            .is_some_and(|slot| slot.live)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Live members of `tangle`, in receive order.
    #[must_use]
    pub fn tangle_members(&self, tangle: &RawId) -> Vec<MsgId> {
        self.tangles
            .get(tangle)
            .map(|members| {
                members
                    .iter()
                    .filter_map(|index| self.slots.get(usize::try_from(*index).ok()?))
                    .filter(|slot| slot.live)
                    .map(|slot| MsgId::from_bytes(&slot.id))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The ghosts of `tangle`.
    #[must_use]
    pub fn ghosts(&self, tangle: &TangleId) -> Ghosts {
        self.ghosts.get(tangle).cloned().unwrap_or_default()
    }

    /// Every tangle's ghosts.
    #[must_use]
    pub fn all_ghosts(&self) -> &BTreeMap<TangleId, Ghosts> {
        &self.ghosts
    }

    /// Live msgs.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.live_count
    }

    /// Slots that compaction would drop.
    #[must_use]
    pub fn dead_slots(&self) -> u64 {
        u64::try_from(self.slots.len()).unwrap_or(u64::MAX) - self.live_count
    }

    /// Size accounting, as `MemStore` keeps it.
    #[must_use]
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            msgs: self.live_count,
            bytes: self.bytes,
            deleted_bytes: self.deleted_bytes,
        }
    }

    /// Panics if the index disagrees with its slots: sequence numbers increasing and below
    /// the next one; `by_id` exactly the live slots; the counts and byte total those slots
    /// give; tangle member lists in receive order over existing slots; the remembered last
    /// tangle where it says; no empty ghost set. Tests call it after every operation.
    pub fn check_invariants(&self) {
        assert!(
            self.slots.len() as u64 <= SLOTS_MAX,
            "more slots than addressable"
        );
        for pair in self.slots.windows(2) {
            if let [a, b] = pair {
                assert!(a.seq < b.seq, "sequence numbers {} then {}", a.seq, b.seq);
            }
        }
        if let Some(last) = self.slots.last() {
            assert!(
                last.seq < self.next_seq,
                "next_seq {} ≤ {}",
                self.next_seq,
                last.seq
            );
        }
        let live: Vec<(usize, &Slot)> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.live)
            .collect();
        assert_eq!(live.len() as u64, self.live_count, "live count");
        assert_eq!(
            self.by_id.len(),
            live.len(),
            "by_id holds the live slots only"
        );
        for (index, slot) in &live {
            let listed = self.by_id.get(&slot.id).map(|at| *at as usize);
            assert_eq!(listed, Some(*index), "by_id of a live slot");
        }
        let bytes: u64 = live.iter().map(|(_, slot)| u64::from(slot.json_len)).sum();
        assert_eq!(bytes, self.bytes, "live bytes");
        for (tangle, members) in &self.tangles {
            for pair in members.windows(2) {
                if let [a, b] = pair {
                    assert!(a < b, "members of {tangle:?} out of receive order");
                }
            }
            if let Some(last) = members.last() {
                assert!((*last as usize) < self.slots.len(), "member past the slots");
            }
        }
        if let Some((tangle, position)) = self.last_tangle {
            let key = self.tangles.get_index(position).map(|(key, _)| *key);
            assert_eq!(key, Some(tangle), "last tangle position");
        }
        assert!(
            self.ghosts.values().all(|ghosts| !ghosts.is_empty()),
            "an empty ghost set is kept"
        );
    }

    /// Applies an append, erase or replace record at `offset` of `record_len` bytes.
    ///
    /// # Errors
    /// When the record does not fit the current state; the index is unchanged then.
    pub fn apply_msg(
        &mut self,
        kind: Kind,
        head: &MsgHead,
        offset: u64,
        record_len: u32,
    ) -> Result<(), ReplayProblem> {
        match kind {
            Kind::Append => self.push_slot(head, offset, record_len),
            Kind::Replace => {
                let old = *self
                    .by_id
                    .get(&head.id)
                    .ok_or(ReplayProblem("replace of a msg that is not stored"))?;
                self.check_new_seq(head.seq)?;
                self.kill(old);
                self.push_slot(head, offset, record_len)
            }
            Kind::Erase => {
                let index = *self
                    .by_id
                    .get(&head.id)
                    .ok_or(ReplayProblem("erase of a msg that is not stored"))?;
                let slot = self
                    .slots
                    .get_mut(usize::try_from(index).unwrap_or(usize::MAX))
                    .ok_or(ReplayProblem("index points past its slots"))?;
                if slot.seq != head.seq {
                    return Err(ReplayProblem("erase with another sequence number"));
                }
                let before = u64::from(slot.json_len);
                let after = u64::from(head.json_len);
                slot.offset = offset;
                slot.record_len = record_len;
                slot.json_len = head.json_len;
                slot.has_data = head.has_data;
                // Same arithmetic as MemStore::erase (an erased copy can be a little longer
                // than the original when the data was shorter than `null`).
                self.bytes = self.bytes - before + after;
                self.deleted_bytes += before.saturating_sub(after);
                Ok(())
            }
            Kind::Delete | Kind::Ghosts => Err(ReplayProblem("not a msg record")),
        }
    }

    fn check_new_seq(&self, seq: u64) -> Result<(), ReplayProblem> {
        if seq == u64::MAX {
            return Err(ReplayProblem("sequence number out of range"));
        }
        if self.slots.last().is_some_and(|last| last.seq >= seq) {
            return Err(ReplayProblem("sequence numbers must increase"));
        }
        if u64::try_from(self.slots.len()).unwrap_or(u64::MAX) >= SLOTS_MAX {
            return Err(ReplayProblem("more records than the index can address"));
        }
        Ok(())
    }

    /// Adds a slot for a msg that is not live (a replace kills its old slot first).
    fn push_slot(
        &mut self,
        head: &MsgHead,
        offset: u64,
        record_len: u32,
    ) -> Result<(), ReplayProblem> {
        self.check_new_seq(head.seq)?;
        let index = u32::try_from(self.slots.len())
            .map_err(|_| ReplayProblem("more records than the index can address"))?;
        match self.by_id.entry(head.id) {
            Entry::Occupied(_) => return Err(ReplayProblem("append of a msg that is stored")),
            Entry::Vacant(vacant) => {
                vacant.insert(index);
            }
        }
        self.slots.push(Slot {
            id: head.id,
            seq: head.seq,
            offset,
            record_len,
            json_len: head.json_len,
            has_data: head.has_data,
            live: true,
        });
        for tangle in head.tangles {
            let position = match self.last_tangle {
                Some((last, position)) if last == *tangle => position,
                _ => {
                    let entry = self.tangles.entry(*tangle);
                    let position = entry.index();
                    entry.or_default();
                    self.last_tangle = Some((*tangle, position));
                    position
                }
            };
            if let Some((_, members)) = self.tangles.get_index_mut(position) {
                members.push(index);
            }
        }
        self.next_seq = self.next_seq.max(head.seq + 1);
        self.live_count += 1;
        self.bytes += u64::from(head.json_len);
        Ok(())
    }

    /// Marks slot `index` dead and forgets its ID.
    fn kill(&mut self, index: u32) {
        let Some(slot) = self
            .slots
            .get_mut(usize::try_from(index).unwrap_or(usize::MAX))
        else {
            return;
        };
        debug_assert!(slot.live, "only live slots are in by_id");
        slot.live = false;
        // Order is irrelevant (never iterated), so the O(1) removal.
        self.by_id.swap_remove(&slot.id);
        self.live_count -= 1;
        self.bytes -= u64::from(slot.json_len);
        self.deleted_bytes += u64::from(slot.json_len);
    }

    /// Applies a delete record.
    ///
    /// # Errors
    /// When `id` is not stored.
    pub fn apply_delete(&mut self, id: &RawId) -> Result<(), ReplayProblem> {
        let index = *self
            .by_id
            .get(id)
            .ok_or(ReplayProblem("delete of a msg that is not stored"))?;
        self.kill(index);
        Ok(())
    }

    /// Applies a ghosts record.
    pub fn apply_ghosts(&mut self, tangle: TangleId, ghosts: Ghosts) {
        if ghosts.is_empty() {
            self.ghosts.remove(&tangle);
        } else {
            self.ghosts.insert(tangle, ghosts);
        }
    }
}
