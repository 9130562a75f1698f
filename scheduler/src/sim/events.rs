//! The simulator's event queue (a min-heap keyed by time, then insertion order) and its set of
//! parked workers.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// What an event is about: a worker id, or [`ARRIVAL`].
pub(super) type What = u32;

/// The `What` of an arrival event (the next release time's batch is due).
pub(super) const ARRIVAL: What = What::MAX;

/// One pending event. Ordered so that the `BinaryHeap` (a max-heap) pops the earliest time
/// first and, among equal times, the event pushed first: ties are broken by insertion order,
/// which is what makes runs deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Event {
    at: u64,
    seq: u64,
    what: What,
}

impl Ord for Event {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Event {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Pending events. Each worker has at most one pending event and there is at most one pending
/// arrival, so the heap never holds more than P + 1 entries and never reallocates after start.
#[derive(Debug)]
pub(super) struct EventQueue {
    heap: BinaryHeap<Event>,
    seq: u64,
    popped: u64,
}

impl EventQueue {
    pub(super) fn with_capacity(cap: usize) -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(cap),
            seq: 0,
            popped: 0,
        }
    }

    #[inline]
    pub(super) fn push(&mut self, at: u64, what: What) {
        self.heap.push(Event {
            at,
            seq: self.seq,
            what,
        });
        self.seq += 1;
    }

    /// The earliest event as `(time, what)`.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<(u64, What)> {
        let e = self.heap.pop()?;
        self.popped += 1;
        Some((e.at, e.what))
    }

    /// Events popped so far.
    pub(super) fn popped(&self) -> u64 {
        self.popped
    }
}

/// The parked workers, as a bitset: waking the lowest id and waking all in id order are both
/// cheap at P = 1,024.
#[derive(Debug)]
pub(super) struct Parked {
    words: Vec<u64>,
    count: usize,
}

impl Parked {
    pub(super) fn new(workers: usize) -> Self {
        Parked {
            words: vec![0; workers.div_ceil(64)],
            count: 0,
        }
    }

    #[inline]
    pub(super) fn insert(&mut self, w: usize) {
        let (i, bit) = (w / 64, 1u64 << (w % 64));
        debug_assert!(self.words[i] & bit == 0, "worker {w} parked twice");
        self.words[i] |= bit;
        self.count += 1;
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Remove and return the lowest parked id.
    #[inline]
    pub(super) fn pop_lowest(&mut self) -> Option<usize> {
        if self.count == 0 {
            return None;
        }
        let i = self.words.iter().position(|&x| x != 0)?;
        let b = self.words[i].trailing_zeros() as usize;
        self.words[i] &= self.words[i] - 1;
        self.count -= 1;
        Some(i * 64 + b)
    }

    /// Remove every parked id, calling `f` on each in ascending order.
    #[inline]
    pub(super) fn drain(&mut self, mut f: impl FnMut(usize)) {
        if self.count == 0 {
            return;
        }
        for (i, word) in self.words.iter_mut().enumerate() {
            let mut x = std::mem::take(word);
            while x != 0 {
                f(i * 64 + x.trailing_zeros() as usize);
                x &= x - 1;
            }
        }
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_pop_in_insertion_order() {
        let mut q = EventQueue::with_capacity(4);
        q.push(5, 2);
        q.push(3, 7);
        q.push(5, 1);
        q.push(3, ARRIVAL);
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(3, 7), (3, ARRIVAL), (5, 2), (5, 1)]);
        assert_eq!(q.popped(), 4);
    }

    #[test]
    fn parked_set_wakes_lowest_and_all() {
        let mut p = Parked::new(200);
        for w in [130, 3, 64, 199] {
            p.insert(w);
        }
        assert_eq!(p.pop_lowest(), Some(3));
        let mut all = Vec::new();
        p.drain(|w| all.push(w));
        assert_eq!(all, vec![64, 130, 199]);
        assert!(p.is_empty());
        assert_eq!(p.pop_lowest(), None);
    }
}
