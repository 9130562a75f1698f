//! `range-stealing`: each worker holds a range of ids `[lo, hi)`; it claims runs from the
//! front, and an idle worker splits a victim's range in half, taking the back half.
//!
//! Lazy binary splitting, as in rayon's adaptive iterators and Tzannes et al., "Lazy binary
//! splitting" (PPoPP 2010), applied to flat index spaces: a range is split only when someone
//! is idle, so n tasks cost O(P log n) steals instead of n queue operations. Both the owner's
//! take and the thief's split are one compare-and-swap on the same word, so every id is
//! claimed exactly once. The owner claims ⌈len / 2P⌉ ids at a time (at most 4,096), guided
//! self-scheduling within its own range, and hands them to the engine as one run, so a claim
//! costs one CAS however many ids it holds. A claimed run cannot be stolen, so once the engine
//! reports task times a claim is also capped at about 20 µs of work: tiny tasks go in big
//! runs, heavy ones one at a time. It wins where tasks are tiny and numerous; for heavy
//! tasks it behaves like `work-stealing(steal=half)` without the deque.
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
use crate::queues::{deal_blocks, Chunk, Inbox};

/// Lazy binary splitting of index ranges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeStealing;

impl RangeStealing {
    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&[])?;
        Ok(RangeStealing)
    }
}

/// The most ids one claim takes: a claimed run cannot be stolen, so this bounds what an owner
/// keeps to itself while the range is large.
const MAX_CLAIM: usize = 4096;

/// Work one claim should hold once task times are known (`WorkerQueue::completed`).
const CLAIM_GRAIN_NS: f64 = 20_000.0;

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
        deal_blocks(&batch, &self.inboxes);
    }
}

struct Handle {
    shared: Arc<Shared>,
    w: usize,
    rng: SmallRng,
    /// Moving average of this worker's task times in ns (0 until the first report).
    mean_task_ns: f64,
}

impl Handle {
    /// Claim a run from the front of the own range (the owner's move): `(first, count)`.
    #[inline]
    fn claim(&self) -> Option<(usize, u32)> {
        let cell = &self.shared.ranges[self.w];
        let p = self.shared.ranges.len();
        let mut cur = cell.load(Ordering::Acquire);
        loop {
            let (lo, hi) = unpack(cur);
            if lo >= hi {
                return None;
            }
            let mut k = (hi - lo).div_ceil(2 * p).clamp(1, MAX_CLAIM);
            if self.mean_task_ns > 0.0 {
                k = k.min((CLAIM_GRAIN_NS / self.mean_task_ns).max(1.0) as usize);
            }
            match cell.compare_exchange_weak(
                cur,
                pack(lo + k, hi),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some((lo, k as u32)),
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
    fn completed(&mut self, _task: usize, ns: u64) {
        let ns = ns as f64;
        self.mean_task_ns = if self.mean_task_ns == 0.0 {
            ns.max(f64::MIN_POSITIVE)
        } else {
            0.875 * self.mean_task_ns + 0.125 * ns
        };
    }

    #[inline]
    fn next(&mut self) -> Next {
        if let Some((task, count)) = self.claim() {
            return Next::Task(Pick::run(task, count, Source::Local));
        }
        while let Some(chunk) = self.shared.inboxes[self.w].pop() {
            if let Chunk::Strided { next, end, .. } = chunk {
                self.hold(next, end);
                if let Some((task, count)) = self.claim() {
                    return Next::Task(Pick::run(task, count, Source::Local));
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
            if let Some((lo, hi)) = taken {
                self.hold(lo, hi);
                // Another thief may split the range just made visible before this claim.
                if let Some((task, count)) = self.claim() {
                    let source = Source::Stolen {
                        victim: v,
                        moved: (hi - lo).min(u32::MAX as usize) as u32,
                    };
                    return Next::Task(Pick::run(task, count, source).after(attempts));
                }
                retry = true;
            }
            attempts.record(own, self.shared.nodes[v]);
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
                        mean_task_ns: 0.0,
                    }) as Box<dyn WorkerQueue>
                })
                .collect(),
        }
    }
}
