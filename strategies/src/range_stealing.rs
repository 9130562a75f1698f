//! `range-stealing`: each worker holds a range of ids `[lo, hi)`; it takes ids from the front,
//! and an idle worker splits a victim's range in half, taking the back half.
//!
//! Lazy binary splitting, as in rayon's adaptive iterators and Tzannes et al., "Lazy binary
//! splitting" (PPoPP 2010), applied to flat index spaces: a range is split only when someone
//! is idle, so n tasks cost O(P log n) steals instead of n queue operations. Both the owner's
//! take and the thief's split are one compare-and-swap on the same word, so every id is
//! claimed exactly once. It wins where tasks are tiny and numerous; for heavy tasks it behaves
//! like `work-stealing(steal=half)` without the deque.
//!
//! Limit: ids must be below 2³² (the range is packed into one 64-bit word).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use scheduler::{
    Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, SmallRng, Source, SpecError,
    Strategy, WorkerQueue,
};

use crate::params::Params;
use crate::queues::{blocks, Chunk, Inbox};

/// Lazy binary splitting of index ranges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeStealing;

impl RangeStealing {
    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&[])?;
        Ok(RangeStealing)
    }
}

fn pack(lo: usize, hi: usize) -> u64 {
    ((lo as u64) << 32) | hi as u64
}

fn unpack(v: u64) -> (usize, usize) {
    ((v >> 32) as usize, (v & 0xFFFF_FFFF) as usize)
}

struct Shared {
    /// Each worker's current range, packed `lo << 32 | hi`.
    ranges: Vec<CachePadded<AtomicU64>>,
    /// Submitted blocks a worker has not started on.
    inboxes: Vec<Inbox>,
    nodes: Vec<usize>,
}

impl SharedQueue for Shared {
    fn submit(&self, batch: Batch<'_>) {
        assert!(
            batch.ids.1 <= u32::MAX as usize,
            "range-stealing handles task ids below 2^32"
        );
        let p = self.inboxes.len();
        for (inbox, (start, end)) in self.inboxes.iter().zip(blocks(batch.ids.0, batch.len(), p)) {
            inbox.push(Chunk::strided(start, end, 1));
        }
    }
}

struct Handle {
    shared: Arc<Shared>,
    w: usize,
    rng: SmallRng,
}

impl Handle {
    /// Take the front id of worker `v`'s range (the owner's move).
    #[inline]
    fn take_front(&self) -> Option<usize> {
        let cell = &self.shared.ranges[self.w];
        let mut cur = cell.load(Ordering::Acquire);
        loop {
            let (lo, hi) = unpack(cur);
            if lo >= hi {
                return None;
            }
            match cell.compare_exchange_weak(
                cur,
                pack(lo + 1, hi),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(lo),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Make `[lo, hi)` this worker's range (its own range is empty, so no one else writes it:
    /// thieves only ever CAS a non-empty value they have read).
    fn hold(&self, lo: usize, hi: usize) {
        self.shared.ranges[self.w].store(pack(lo, hi), Ordering::Release);
    }

    /// Split victim `v`'s range, keeping `[lo, mid)` for it and taking `[mid, hi)`.
    fn split(&self, v: usize) -> Result<Option<(usize, usize)>, ()> {
        let cell = &self.shared.ranges[v];
        let cur = cell.load(Ordering::Acquire);
        let (lo, hi) = unpack(cur);
        if lo >= hi {
            return Ok(None);
        }
        let mid = lo + (hi - lo) / 2;
        match cell.compare_exchange(cur, pack(lo, mid), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(Some((mid, hi))),
            Err(_) => Err(()),
        }
    }
}

impl WorkerQueue for Handle {
    #[inline]
    fn next(&mut self) -> Next {
        let local = |task| {
            Next::Task(Pick {
                task,
                source: Source::Local,
                attempts: Attempts::default(),
            })
        };
        if let Some(t) = self.take_front() {
            return local(t);
        }
        while let Some(chunk) = self.shared.inboxes[self.w].pop() {
            if let Chunk::Strided { next, end, .. } = chunk {
                self.hold(next, end);
                if let Some(t) = self.take_front() {
                    return local(t);
                }
            }
        }
        let p = self.shared.ranges.len();
        let own = self.shared.nodes[self.w];
        let mut attempts = Attempts::default();
        let mut retry = false;
        let start = if p > 1 { self.rng.below(p - 1) } else { 0 };
        for i in 0..p.saturating_sub(1) {
            let v = (self.w + 1 + (start + i) % (p - 1)) % p;
            let taken = match self.split(v) {
                Ok(Some(range)) => Some(range),
                Ok(None) => self.shared.inboxes[v]
                    .steal(|len| len.div_ceil(2))
                    .and_then(|c| match c {
                        Chunk::Strided { next, end, .. } => Some((next, end)),
                        Chunk::List { .. } => None,
                    }),
                Err(()) => {
                    retry = true;
                    None
                }
            };
            match taken {
                Some((lo, hi)) => {
                    self.hold(lo + 1, hi);
                    return Next::Task(Pick {
                        task: lo,
                        source: Source::Stolen {
                            victim: v,
                            moved: (hi - lo) as u32,
                        },
                        attempts,
                    });
                }
                None => attempts.record(own, self.shared.nodes[v]),
            }
        }
        if retry {
            Next::Retry(attempts)
        } else {
            Next::Empty(attempts)
        }
    }
}

impl Strategy for RangeStealing {
    fn spec(&self) -> String {
        "range-stealing".into()
    }

    fn build(&self, ctx: &Context) -> Instance {
        let p = ctx.workers();
        let shared = Arc::new(Shared {
            ranges: (0..p)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            inboxes: (0..p).map(|_| Inbox::default()).collect(),
            nodes: ctx.nodes.clone(),
        });
        Instance {
            shared: shared.clone(),
            workers: (0..p)
                .map(|w| {
                    Box::new(Handle {
                        shared: shared.clone(),
                        w,
                        rng: ctx.rng(w),
                    }) as Box<dyn WorkerQueue>
                })
                .collect(),
        }
    }
}
