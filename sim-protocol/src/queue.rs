//! The engine's one event queue: entries ordered by (simulated time, sequence number), so
//! entries due at the same millisecond come out in the order they were pushed.
//!
//! Kept as one FIFO per due millisecond in an ordered map rather than a binary heap: the
//! engine pushes many entries for the same few milliseconds (a step's sends, every link's
//! keepalive), and time only moves forward, so a push is a map lookup plus an append and a
//! pop takes the front of the earliest FIFO — no sift over a heap of large entries (the
//! heap's `pop` was 9 % of a 1,000-peer run, docs/simulation-performance.md). The order is
//! exactly (time, push order): a FIFO holds its millisecond's entries in push order.

use std::collections::{BTreeMap, VecDeque};

/// A min-queue of `E` keyed by (time, push order).
#[derive(Debug)]
pub(crate) struct Queue<E> {
    due: BTreeMap<u64, VecDeque<E>>,
    /// Emptied FIFOs, kept for their allocations.
    spare: Vec<VecDeque<E>>,
    popped: u64,
}

/// Emptied FIFOs kept for reuse at most (bounds the spare list).
const SPARE_FIFOS_MAX: usize = 1_024;
/// The largest FIFO (in entries) kept for reuse: a FIFO keeps the capacity of the busiest
/// millisecond it ever served, so reusing the boot wave's FIFOs for the quiet milliseconds
/// after it kept their peak capacities for the whole run.
const SPARE_FIFO_CAPACITY_MAX: usize = 64;

impl<E> Queue<E> {
    pub(crate) fn new() -> Self {
        Self {
            due: BTreeMap::new(),
            spare: Vec::new(),
            popped: 0,
        }
    }

    /// Schedules `event` at `t_ms`.
    pub(crate) fn push(&mut self, t_ms: u64, event: E) {
        let spare = &mut self.spare;
        self.due
            .entry(t_ms)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .push_back(event);
    }

    /// The earliest entry.
    pub(crate) fn pop(&mut self) -> Option<(u64, E)> {
        let mut first = self.due.first_entry()?;
        let t_ms = *first.key();
        let event = first.get_mut().pop_front()?;
        if first.get().is_empty() {
            let fifo = first.remove();
            if self.spare.len() < SPARE_FIFOS_MAX && fifo.capacity() <= SPARE_FIFO_CAPACITY_MAX {
                self.spare.push(fifo);
            }
        }
        self.popped += 1;
        Some((t_ms, event))
    }

    /// Entries handled so far (the engine's event count).
    pub(crate) fn popped(&self) -> u64 {
        self.popped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_first_then_push_order() {
        let mut queue = Queue::new();
        queue.push(5, "c");
        queue.push(1, "a");
        queue.push(5, "d");
        queue.push(1, "b");
        let order: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(order, vec![(1, "a"), (1, "b"), (5, "c"), (5, "d")]);
        assert_eq!(queue.popped(), 4);
    }

    #[test]
    fn pushes_at_the_current_time_come_after_what_is_already_due() {
        let mut queue = Queue::new();
        queue.push(3, 1);
        queue.push(3, 2);
        assert_eq!(queue.pop(), Some((3, 1)));
        queue.push(3, 3);
        queue.push(2, 0);
        let order: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(order, vec![(2, 0), (3, 2), (3, 3)]);
        assert_eq!(queue.pop(), None);
    }
}
