//! The engine's one event queue: entries ordered by (simulated time, sequence number), so
//! entries due at the same millisecond come out in the order they were pushed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A min-queue of `E` keyed by (time, push order).
#[derive(Debug)]
pub(crate) struct Queue<E> {
    heap: BinaryHeap<Entry<E>>,
    next_seq: u64,
    popped: u64,
}

#[derive(Debug)]
struct Entry<E> {
    t_ms: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.t_ms, self.seq) == (other.t_ms, other.seq)
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest entry must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.t_ms, other.seq).cmp(&(self.t_ms, self.seq))
    }
}

impl<E> Queue<E> {
    pub(crate) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
            popped: 0,
        }
    }

    /// Schedules `event` at `t_ms`.
    pub(crate) fn push(&mut self, t_ms: u64, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { t_ms, seq, event });
    }

    /// The earliest entry.
    pub(crate) fn pop(&mut self) -> Option<(u64, E)> {
        let entry = self.heap.pop()?;
        self.popped += 1;
        Some((entry.t_ms, entry.event))
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
}
