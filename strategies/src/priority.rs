//! The machinery shared by priority strategies: tasks handed out in order of estimated cost
//! (ties by id), from presorted runs.
//!
//! Each submitted batch becomes one *run*, its ids sorted by `(key, id)` once at submission
//! (no sort at all when the batch is already in order, e.g. without estimates). A run is
//! claimed from the front with one atomic add. While a single run holds work (a closed run, or
//! a stream that keeps up), every worker claims from it directly, with no lock; when several
//! runs hold work, a take goes through a lock and a heap of the runs' heads, so the order stays
//! exact across batches. A submission bumps an epoch after its run is in the heap; a worker
//! uses its cached run only while the epoch is the one it saw when it cached it, so a claim
//! that misses a new run overlaps that run's submission in time. The order of hand-outs is
//! therefore exactly SPT (LPT): each task handed out has the least (greatest) key of the tasks
//! submitted and not yet handed out, linearisably, with one exception for long runs:
//!
//! **Long runs.** While the cached run has more than `LONG_PER_WORKER · P` (1,024 · P) ids
//! left, a worker claims `⌈left / (1,024 · P)⌉` positions (at most 32) with its one atomic add
//! and hands them out itself, in order, on its next calls (one pick for consecutive ids when
//! the run has no estimates or is already in order). A claimed position is this worker's: it
//! runs it even if a batch with smaller keys comes meanwhile, so the order is exact except
//! that up to 31 ids per worker, taken while over 1,024 · P others waited, may run before
//! ids submitted after them. The shared line is then touched once per 32 ids instead of once
//! per id (it was most of the cost of a million empty tasks); the last 1,024 · P ids of a run,
//! and every run shorter than that, go one per atomic add as before.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_utils::CachePadded;
use scheduler::{
    Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, Source, TaskId, WorkerQueue,
};

use crate::queues::lock;

/// Which end of the cost order is served first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// Smallest estimate first.
    Shortest,
    /// Largest estimate first.
    Longest,
}

/// How a run stores its order.
enum Layout {
    /// No estimates: every key is 0, ids in order.
    Plain,
    /// Estimates already in order: the key of each position, ids in order.
    Keyed(Box<[u64]>),
    /// Sorted `(key, id)` pairs.
    Sorted(Box<[(u64, TaskId)]>),
    /// Sorted `(key − base) << 32 | (id − start)` words, when both parts fit in 32 bits (half
    /// the memory of `Sorted`, so half the sorting traffic).
    Packed { base: u64, words: Box<[u64]> },
}

/// One submitted batch, sorted by `(key, id)`.
struct Run {
    layout: Layout,
    start: TaskId,
    len: usize,
    /// Positions claimed (may pass `len` by one per worker).
    claimed: CachePadded<AtomicUsize>,
}

impl Order {
    /// The key an estimate is sorted by (ascending).
    #[inline]
    fn key(self, est: u64) -> u64 {
        match self {
            Order::Shortest => est,
            Order::Longest => u64::MAX - est,
        }
    }

    /// The estimate a key was made from.
    #[inline]
    fn estimate(self, key: u64) -> u64 {
        self.key(key)
    }
}

impl Run {
    fn new(order: Order, batch: &Batch<'_>) -> Run {
        let (start, len) = (batch.ids.0, batch.len());
        let key = |est: u64| order.key(est);
        let layout = match batch.estimate_ns {
            None => Layout::Plain,
            Some(est) if est.windows(2).all(|w| key(w[0]) <= key(w[1])) => {
                Layout::Keyed(est.iter().map(|&e| key(e)).collect())
            }
            Some(est) if len <= u32::MAX as usize => {
                let (lo, hi) = est.iter().fold((u64::MAX, 0), |(lo, hi), &e| {
                    let k = key(e);
                    (lo.min(k), hi.max(k))
                });
                if hi - lo <= u64::from(u32::MAX) {
                    let mut words: Vec<u64> = est
                        .iter()
                        .enumerate()
                        .map(|(i, &e)| ((key(e) - lo) << 32) | i as u64)
                        .collect();
                    // Offsets are in order, so a stable sort on the key half is enough.
                    radix_sort_by(&mut words, |w| w >> 32);
                    Layout::Packed {
                        base: lo,
                        words: words.into_boxed_slice(),
                    }
                } else {
                    Layout::Sorted(sorted_pairs(est, start, key))
                }
            }
            Some(est) => Layout::Sorted(sorted_pairs(est, start, key)),
        };
        Run {
            layout,
            start,
            len,
            claimed: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// `(key, id)` at position `i` (< len).
    #[inline]
    fn at(&self, i: usize) -> (u64, TaskId) {
        match &self.layout {
            Layout::Plain => (0, self.start + i),
            Layout::Keyed(keys) => (keys[i], self.start + i),
            Layout::Sorted(pairs) => pairs[i],
            Layout::Packed { base, words } => {
                let w = words[i];
                (
                    base + (w >> 32),
                    self.start + (w & u64::from(u32::MAX)) as usize,
                )
            }
        }
    }

    /// The id at position `i` (< len).
    #[inline]
    fn id(&self, i: usize) -> TaskId {
        match &self.layout {
            Layout::Sorted(pairs) => pairs[i].1,
            Layout::Packed { words, .. } => self.start + (words[i] & u64::from(u32::MAX)) as usize,
            _ => self.start + i,
        }
    }

    /// The first unclaimed `(key, id)`, if any.
    #[inline]
    fn head(&self) -> Option<(u64, TaskId)> {
        let i = self.claimed.load(Ordering::Acquire);
        (i < self.len).then(|| self.at(i))
    }

    /// Claim the first unclaimed id.
    #[inline]
    fn claim(&self) -> Option<TaskId> {
        if self.claimed.load(Ordering::Relaxed) >= self.len {
            return None;
        }
        let i = self.claimed.fetch_add(1, Ordering::AcqRel);
        (i < self.len).then(|| self.id(i))
    }

    /// Claim the first unclaimed positions, `⌈left / divisor⌉` of them (1 to `cap`) where
    /// `left` is the number not yet claimed: `(first position, count)`. (`claimed` may pass
    /// `len` by up to `cap` per worker.)
    #[inline]
    fn claim_many(&self, divisor: usize, cap: usize) -> Option<(usize, usize)> {
        let seen = self.claimed.load(Ordering::Relaxed);
        if seen >= self.len {
            return None;
        }
        let want = (self.len - seen).div_ceil(divisor).clamp(1, cap);
        let i = self.claimed.fetch_add(want, Ordering::AcqRel);
        (i < self.len).then(|| (i, want.min(self.len - i)))
    }

    /// Whether position `i` holds id `start + i` (no reordering).
    #[inline]
    fn in_id_order(&self) -> bool {
        matches!(self.layout, Layout::Plain | Layout::Keyed(_))
    }

    /// Whether the keys come from estimates (every layout but `Plain`).
    #[inline]
    fn estimated(&self) -> bool {
        !matches!(self.layout, Layout::Plain)
    }
}

/// `(key, id)` pairs of a batch's estimates, sorted by key then id.
fn sorted_pairs(est: &[u64], start: TaskId, key: impl Fn(u64) -> u64) -> Box<[(u64, TaskId)]> {
    let mut pairs: Vec<(u64, TaskId)> = est
        .iter()
        .enumerate()
        .map(|(i, &e)| (key(e), start + i))
        .collect();
    radix_sort_by(&mut pairs, |p| p.0);
    pairs.into_boxed_slice()
}

/// Sort items given in id order by `key`, ties staying in id order (stable): an LSD radix sort
/// on 11-bit digits, skipping the digits every key shares (two passes for keys below 2²²), so
/// a batch of a million estimates sorts in a few ns per task.
fn radix_sort_by<T: Copy + Default>(items: &mut Vec<T>, key: impl Fn(&T) -> u64) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    if items.len() < 256 {
        items.sort_by_key(|x| key(x));
        return;
    }
    let (mut or, mut and) = (0u64, u64::MAX);
    for x in items.iter() {
        or |= key(x);
        and &= key(x);
    }
    let varying = or ^ and;
    let mut scratch = vec![T::default(); items.len()];
    let mut shift = 0;
    while shift < 64 {
        let mask = (BUCKETS as u64 - 1) << shift;
        if varying & mask != 0 {
            let digit = |x: &T| ((key(x) >> shift) as usize) & (BUCKETS - 1);
            let mut start = [0usize; BUCKETS];
            for x in items.iter() {
                start[digit(x)] += 1;
            }
            let mut sum = 0;
            for c in start.iter_mut() {
                (*c, sum) = (sum, sum + *c);
            }
            for x in items.iter() {
                let d = digit(x);
                scratch[start[d]] = *x;
                start[d] += 1;
            }
            std::mem::swap(items, &mut scratch);
        }
        shift += BITS;
    }
}

/// The runs holding work, by their heads (`slot` indexes `runs`).
#[derive(Default)]
struct Heap {
    heads: BinaryHeap<Reverse<(u64, TaskId, usize)>>,
    runs: Vec<Option<Arc<Run>>>,
    free: Vec<usize>,
}

struct Shared {
    order: Order,
    heap: Mutex<Heap>,
    /// Runs in the heap (exhausted ones included until a take removes them).
    live: AtomicUsize,
    /// Bumped by every submission, after its run is in the heap.
    epoch: AtomicU64,
}

impl SharedQueue for Shared {
    fn submit(&self, batch: Batch<'_>) {
        if batch.is_empty() {
            return;
        }
        let run = Arc::new(Run::new(self.order, &batch));
        let (key, id) = run.at(0);
        let mut h = lock(&self.heap);
        let slot = match h.free.pop() {
            Some(s) => {
                h.runs[s] = Some(run);
                s
            }
            None => {
                h.runs.push(Some(run));
                h.runs.len() - 1
            }
        };
        h.heads.push(Reverse((key, id, slot)));
        self.live.store(h.heads.len(), Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// While a run has more than this many ids left per worker, a claim takes several...
const LONG_PER_WORKER: usize = 1024;
/// ...at most this many.
const LONG_CAP: usize = 32;

/// Aligned to its own cache lines: each worker writes its handle on every pick, and handles
/// built one after another would otherwise share a line (false sharing between workers).
#[repr(align(128))]
struct Handle {
    shared: Arc<Shared>,
    /// The only run with work when this worker last looked, and the epoch it saw then.
    cached: Option<(Arc<Run>, u64)>,
    /// Positions `held.0..held.1` of the cached run, claimed by this worker and not yet handed
    /// out (the cache is kept until they are).
    held: (usize, usize),
    /// `LONG_PER_WORKER · P`.
    divisor: usize,
}

impl Handle {
    /// A take through the heap: the run with the least head, and the task's estimate if the
    /// run has estimates.
    fn take_locked(&mut self) -> Option<(TaskId, Option<u64>)> {
        let shared = &self.shared;
        let mut h = lock(&shared.heap);
        let task = loop {
            let Reverse((key, id, slot)) = h.heads.pop()?;
            let run = h.runs[slot].clone().expect("a queued run");
            match run.head() {
                // Claimed past by a worker on the fast path: requeue under its real head.
                Some(head) if head != (key, id) => h.heads.push(Reverse((head.0, head.1, slot))),
                Some((key, _)) => {
                    if let Some(task) = run.claim() {
                        let est = run.estimated().then(|| shared.order.estimate(key));
                        let task = (task, est);
                        if let Some((k, i)) = run.head() {
                            h.heads.push(Reverse((k, i, slot)));
                        } else {
                            h.runs[slot] = None;
                            h.free.push(slot);
                        }
                        break task;
                    }
                    h.runs[slot] = None;
                    h.free.push(slot);
                }
                None => {
                    h.runs[slot] = None;
                    h.free.push(slot);
                }
            }
        };
        shared.live.store(h.heads.len(), Ordering::Release);
        if h.heads.len() == 1 {
            let Reverse((_, _, slot)) = *h.heads.peek().expect("one run");
            let run = h.runs[slot].clone().expect("a queued run");
            self.cached = Some((run, shared.epoch.load(Ordering::Acquire)));
        }
        Some(task)
    }
}

impl WorkerQueue for Handle {
    #[inline]
    fn next(&mut self) -> Next {
        self.next_estimated().0
    }

    #[inline]
    fn next_estimated(&mut self) -> (Next, Option<u64>) {
        let order = self.shared.order;
        let one = |run: &Run, i: usize| {
            let (key, id) = run.at(i);
            let est = run.estimated().then(|| order.estimate(key));
            (Next::Task(Pick::one(id, Source::Shared)), est)
        };
        if let Some((run, seen)) = &self.cached {
            let (at, end) = self.held;
            if at < end {
                self.held.0 = at + 1;
                return one(run, at);
            }
            if self.shared.epoch.load(Ordering::Acquire) == *seen {
                if let Some((i, count)) = run.claim_many(self.divisor, LONG_CAP) {
                    if count > 1 && run.in_id_order() {
                        let pick = Pick::run(run.start + i, count as u32, Source::Shared);
                        let est = run.estimated().then(|| order.estimate(run.at(i).0));
                        return (Next::Task(pick), est);
                    }
                    self.held = (i + 1, i + count);
                    return one(run, i);
                }
            }
            self.cached = None;
        }
        if self.shared.live.load(Ordering::Acquire) == 0 {
            return (Next::Empty(Attempts::default()), None);
        }
        match self.take_locked() {
            Some((task, est)) => (Next::Task(Pick::one(task, Source::Shared)), est),
            None => (Next::Empty(Attempts::default()), None),
        }
    }
}

/// Queues for a priority strategy.
pub(crate) fn build(order: Order, ctx: &Context) -> Instance {
    let shared = Arc::new(Shared {
        order,
        heap: Mutex::new(Heap::default()),
        live: AtomicUsize::new(0),
        epoch: AtomicU64::new(0),
    });
    Instance {
        shared: shared.clone(),
        workers: (0..ctx.workers())
            .map(|_| {
                Box::new(Handle {
                    shared: shared.clone(),
                    cached: None,
                    held: (0, 0),
                    divisor: LONG_PER_WORKER.saturating_mul(ctx.workers().max(1)),
                }) as Box<dyn WorkerQueue>
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-outs by one worker, interleaving submissions as `script` says.
    fn drain(order: Order, batches: &[(usize, Vec<u64>)]) -> Vec<TaskId> {
        let inst = build(order, &Context::uniform(2, 1));
        let mut w = inst.workers;
        let mut start = 0;
        let mut got = Vec::new();
        for (take_first, est) in batches {
            for _ in 0..*take_first {
                if let Next::Task(p) = w[0].next() {
                    got.push(p.task);
                }
            }
            inst.shared
                .submit(Batch::with_estimates(start..start + est.len(), est));
            start += est.len();
        }
        while let Next::Task(p) = w[1].next() {
            got.push(p.task);
        }
        got
    }

    #[test]
    fn radix_sort_orders_by_key_then_id() {
        let mut rng = scheduler::SmallRng::new(3);
        for (n, range) in [(1000, 10u64), (5000, u64::MAX), (3000, 1 << 40), (300, 1)] {
            let mut pairs: Vec<(u64, TaskId)> =
                (0..n).map(|i| (rng.next_u64() % range, i)).collect();
            let mut want = pairs.clone();
            want.sort_unstable();
            radix_sort_by(&mut pairs, |p| p.0);
            assert_eq!(pairs, want, "n={n} range={range}");
        }
    }

    #[test]
    fn runs_merge_in_exact_order_across_submissions() {
        // Batch 0: ids 0..5 with costs 5 3 9 1 7; 2 taken (3, 1); batch 1: ids 5..8 with
        // costs 2 8 0, then everything.
        let batches = vec![(0, vec![5, 3, 9, 1, 7]), (2, vec![2, 8, 0])];
        assert_eq!(
            drain(Order::Shortest, &batches),
            vec![3, 1, 7, 5, 0, 4, 6, 2]
        );
        assert_eq!(
            drain(Order::Longest, &batches),
            vec![2, 4, 6, 0, 1, 5, 3, 7]
        );
        // Keys too far apart to pack in 32 bits take the wide layout; same order.
        let wide = vec![(0, vec![u64::MAX / 2, 3, 1 << 40, 3])];
        assert_eq!(drain(Order::Shortest, &wide), vec![1, 3, 2, 0]);
        assert_eq!(drain(Order::Longest, &wide), vec![0, 2, 1, 3]);
        // Big batches go through the radix sort (packed and wide).
        let mut rng = scheduler::SmallRng::new(5);
        for range in [1000u64, u64::MAX] {
            let est: Vec<u64> = (0..3000).map(|_| rng.next_u64() % range).collect();
            let got = drain(Order::Shortest, &[(0, est.clone())]);
            let mut want: Vec<usize> = (0..est.len()).collect();
            want.sort_by_key(|&i| (est[i], i));
            assert_eq!(got, want, "range {range}");
        }
        // Ties go to the lower id, within and across runs.
        let ties = vec![(0, vec![4, 4]), (0, vec![4, 1])];
        assert_eq!(drain(Order::Shortest, &ties), vec![3, 0, 1, 2]);
    }

    #[test]
    fn long_runs_keep_the_order_and_run_every_id_once_under_racing_workers() {
        let n = 100_000;
        let mut rng = scheduler::SmallRng::new(11);
        let est: Vec<u64> = (0..n).map(|_| rng.below(1_000_000) as u64).collect();
        for order in [Order::Shortest, Order::Longest] {
            // One worker alone: the claims of many positions hand them out in exact order.
            let got = drain(order, &[(0, est.clone())]);
            let mut want: Vec<usize> = (0..n).collect();
            match order {
                Order::Shortest => want.sort_by_key(|&i| (est[i], i)),
                Order::Longest => want.sort_by_key(|&i| (Reverse(est[i]), i)),
            }
            assert_eq!(got, want, "{order:?}");
        }
        // Racing workers, with estimates and without: every id exactly once, and large takes
        // happened (a pick of several consecutive ids without estimates).
        for (p, with_est) in [(2, true), (3, true), (2, false), (3, false)] {
            let inst = build(Order::Shortest, &Context::uniform(p, 1));
            let batch = if with_est {
                Batch::with_estimates(0..n, &est)
            } else {
                Batch::new(0..n)
            };
            inst.shared.submit(batch);
            let runs: Vec<(Vec<TaskId>, u32)> = std::thread::scope(|scope| {
                let handles: Vec<_> = inst
                    .workers
                    .into_iter()
                    .map(|mut w| {
                        scope.spawn(move || {
                            let (mut ids, mut widest) = (Vec::new(), 0);
                            while let Next::Task(pick) = w.next() {
                                ids.extend(pick.tasks());
                                widest = widest.max(pick.count);
                            }
                            (ids, widest)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut all: Vec<TaskId> = runs.iter().flat_map(|r| r.0.clone()).collect();
            all.sort_unstable();
            assert_eq!(
                all,
                (0..n).collect::<Vec<_>>(),
                "P={p} estimates {with_est}"
            );
            let widest = runs.iter().map(|r| r.1).max().unwrap();
            assert_eq!(widest > 1, !with_est, "P={p} estimates {with_est}");
            if with_est {
                // Each worker's own hand-outs are in SPT order.
                for (ids, _) in &runs {
                    assert!(ids
                        .windows(2)
                        .all(|w| (est[w[0]], w[0]) <= (est[w[1]], w[1])));
                }
            }
        }
    }

    #[test]
    fn the_simulator_gets_the_same_run_with_costs_carried_or_looked_up() {
        // With `Tasks::with_costs` the estimates are the cost table and the sim takes each
        // task's cost from the pick; with a copy of the table it looks every cost up. Same run.
        let mut rng = scheduler::SmallRng::new(9);
        let costs: Vec<u64> = (0..20_000).map(|_| 1 + rng.below(100_000) as u64).collect();
        let copy = costs.clone();
        for spec in ["spt", "lpt"] {
            let s = crate::parse(spec).unwrap();
            for p in [3, 64] {
                let run = |tasks: &scheduler::Tasks<'_>| {
                    scheduler::run_sim(
                        &scheduler::RunSpec::new(p),
                        s.as_ref(),
                        tasks,
                        &scheduler::CostModel::default(),
                    )
                    .unwrap()
                    .to_json()
                };
                let carried = run(&scheduler::Tasks::with_costs(&costs));
                let looked_up = run(&scheduler::Tasks {
                    estimate_ns: Some(&copy),
                    ..scheduler::Tasks::with_costs(&costs)
                });
                assert_eq!(carried, looked_up, "{spec} P={p}");
            }
            let inst = s.build(&Context::uniform(1, 0));
            inst.shared.submit(Batch::with_estimates(0..3, &[7, 5, 9]));
            let mut w = inst.workers.into_iter().next().unwrap();
            let (next, est) = w.next_estimated();
            let want = if spec == "spt" { (1, 5) } else { (2, 9) };
            assert!(matches!(next, Next::Task(p) if p.task == want.0), "{spec}");
            assert_eq!(est, Some(want.1), "{spec}");
        }
    }
}
