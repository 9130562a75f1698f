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
//! A range is packed into one 64-bit word when its ids are below 2³² (every run of fewer than
//! four billion tasks); a range with larger ids is held under a per-worker lock instead, with
//! the same owner-front / thief-back split, so any id works and only huge ids pay for a lock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_utils::CachePadded;
use scheduler::{
    Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, SmallRng, Source, SpecError,
    Strategy, WorkerQueue,
};

use crate::params::Params;
use crate::queues::{lock, Chunk, Dealer, Inbox};

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
    dealer: Dealer,
    /// Each worker's current range, packed `lo << 32 | hi`.
    ranges: Vec<CachePadded<AtomicU64>>,
    /// Each worker's range when its ids do not fit in 32 bits (`wide_held`: non-empty).
    wide: Vec<Mutex<(usize, usize)>>,
    wide_held: Vec<CachePadded<AtomicBool>>,
    /// Submitted blocks a worker has not started on.
    inboxes: Vec<Inbox>,
    nodes: Vec<usize>,
}

impl SharedQueue for Shared {
    fn submit(&self, batch: Batch<'_>) {
        self.dealer.deal(&batch, &self.inboxes);
    }
}

/// Aligned to its own cache lines: each worker writes its handle on every pick, and handles
/// built one after another would otherwise share a line (false sharing between workers).
#[repr(align(128))]
struct Handle {
    shared: Arc<Shared>,
    w: usize,
    rng: SmallRng,
    /// Moving average of this worker's task times in ns (0 until the first report).
    mean_task_ns: f64,
}

impl Handle {
    /// How many ids to claim from a range of `len`.
    #[inline]
    fn claim_size(&self, len: usize) -> usize {
        let p = self.shared.ranges.len();
        let mut k = len.div_ceil(2 * p).clamp(1, MAX_CLAIM);
        if self.mean_task_ns > 0.0 {
            k = k.min((CLAIM_GRAIN_NS / self.mean_task_ns).max(1.0) as usize);
        }
        k
    }

    /// Claim a run from the front of the own range (the owner's move): `(first, count)`.
    #[inline]
    fn claim(&self) -> Option<(usize, u32)> {
        let cell = &self.shared.ranges[self.w];
        let mut cur = cell.load(Ordering::Acquire);
        loop {
            let (lo, hi) = unpack(cur);
            if lo >= hi {
                return self.claim_wide();
            }
            let k = self.claim_size(hi - lo);
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

    /// The owner's claim on its wide range (ids of 2³² and above).
    #[cold]
    fn claim_wide(&self) -> Option<(usize, u32)> {
        if !self.shared.wide_held[self.w].load(Ordering::Acquire) {
            return None;
        }
        let mut g = lock(&self.shared.wide[self.w]);
        let (lo, hi) = *g;
        if lo >= hi {
            return None;
        }
        let k = self.claim_size(hi - lo);
        g.0 = lo + k;
        self.shared.wide_held[self.w].store(g.0 < hi, Ordering::Release);
        Some((lo, k as u32))
    }

    /// Make `[lo, hi)` this worker's range (its own range is empty, so no one else writes it:
    /// thieves only ever CAS a non-empty value they have read).
    fn hold(&self, lo: usize, hi: usize) {
        if hi <= u32::MAX as usize {
            self.shared.ranges[self.w].store(pack(lo, hi), Ordering::Release);
        } else {
            let mut g = lock(&self.shared.wide[self.w]);
            *g = (lo, hi);
            self.shared.wide_held[self.w].store(lo < hi, Ordering::Release);
        }
    }

    /// Split victim `v`'s wide range under its lock.
    #[cold]
    fn split_wide(&self, v: usize) -> Option<(usize, usize)> {
        if !self.shared.wide_held[v].load(Ordering::Acquire) {
            return None;
        }
        let mut g = lock(&self.shared.wide[v]);
        let (lo, hi) = *g;
        if lo >= hi {
            return None;
        }
        let mid = lo + (hi - lo) / 2;
        g.1 = mid;
        self.shared.wide_held[v].store(lo < mid, Ordering::Release);
        Some((mid, hi))
    }

    /// Split victim `v`'s range, keeping `[lo, mid)` for it and taking `[mid, hi)`.
    fn split(&self, v: usize) -> Result<Option<(usize, usize)>, ()> {
        let cell = &self.shared.ranges[v];
        let cur = cell.load(Ordering::Acquire);
        let (lo, hi) = unpack(cur);
        if lo >= hi {
            return Ok(self.split_wide(v));
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
            dealer: Dealer::default(),
            ranges: (0..p)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            wide: (0..p).map(|_| Mutex::new((0, 0))).collect(),
            wide_held: (0..p)
                .map(|_| CachePadded::new(AtomicBool::new(false)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_beyond_32_bits_run_exactly_once() {
        let base = (1usize << 32) - 50;
        let n = 1000;
        let ctx = Context::uniform(3, 1);
        let mut inst = RangeStealing.build(&ctx);
        inst.shared.submit(Batch::new(base..base + n));
        let mut seen = vec![0u8; n];
        let mut run = |p: Pick| p.tasks().for_each(|id| seen[id - base] += 1);
        // Worker 1 starts on its (wide) range; then worker 0 runs alone: its own range, then
        // it splits worker 1's range and takes worker 2's untouched block.
        let Next::Task(first) = inst.workers[1].next() else {
            panic!("worker 1 has a block")
        };
        run(first);
        let mut steals = 0;
        loop {
            match inst.workers[0].next() {
                Next::Task(p) => {
                    steals += usize::from(matches!(p.source, Source::Stolen { .. }));
                    run(p);
                }
                Next::Empty(_) => break,
                Next::Retry(_) => {}
            }
        }
        for w in 1..3 {
            while let Next::Task(p) = inst.workers[w].next() {
                run(p);
            }
        }
        assert!(seen.iter().all(|&c| c == 1), "every id exactly once");
        assert!(steals >= 2, "worker 0 stole from both others: {steals}");
    }
}
