//! The machinery shared by priority strategies: one shared heap of tasks ordered by their
//! estimated cost (ties by id), popped by any free worker.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use scheduler::{Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, Source, WorkerQueue};

use crate::queues::lock;

/// Which end of the cost order is served first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// Smallest estimate first.
    Shortest,
    /// Largest estimate first.
    Longest,
}

/// Heap key: the max-heap pops the greatest key, so the cost is negated for `Shortest`;
/// ties go to the smaller id either way.
type Key = (u64, Reverse<usize>);

struct Shared {
    order: Order,
    heap: Mutex<BinaryHeap<Key>>,
    len: AtomicUsize,
}

impl Shared {
    fn key(&self, estimate: u64, id: usize) -> Key {
        match self.order {
            Order::Longest => (estimate, Reverse(id)),
            Order::Shortest => (u64::MAX - estimate, Reverse(id)),
        }
    }
}

impl SharedQueue for Shared {
    fn submit(&self, batch: Batch<'_>) {
        let mut heap = lock(&self.heap);
        heap.extend(batch.range().map(|id| self.key(batch.estimate(id), id)));
        self.len.store(heap.len(), Ordering::Release);
    }
}

struct Handle(Arc<Shared>);

impl WorkerQueue for Handle {
    fn next(&mut self) -> Next {
        if self.0.len.load(Ordering::Acquire) == 0 {
            return Next::Empty(Attempts::default());
        }
        let mut heap = lock(&self.0.heap);
        let top = heap.pop();
        self.0.len.store(heap.len(), Ordering::Release);
        match top {
            Some((_, Reverse(task))) => Next::Task(Pick::one(task, Source::Shared)),
            None => Next::Empty(Attempts::default()),
        }
    }
}

/// Queues for a priority strategy.
pub(crate) fn build(order: Order, ctx: &Context) -> Instance {
    let shared = Arc::new(Shared {
        order,
        heap: Mutex::new(BinaryHeap::new()),
        len: AtomicUsize::new(0),
    });
    Instance {
        shared: shared.clone(),
        workers: (0..ctx.workers())
            .map(|_| Box::new(Handle(shared.clone())) as Box<dyn WorkerQueue>)
            .collect(),
    }
}
