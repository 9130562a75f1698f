//! Queue building blocks shared by several strategies.
//!
//! - [`Chunk`] and [`Inbox`]: a worker's private list of ids, as strided ranges or explicit
//!   lists, so that placing a million tasks statically costs O(P), not O(n).
//! - [`RangeQueue`]: one shared FIFO of id ranges with a running count, from which a worker
//!   takes a chunk of any size (guided and the other self-scheduling rules).
//! - [`Segments`]: submitted ranges as a linked list that workers claim from with one atomic
//!   add and no lock (central's fixed chunks).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use crossbeam_utils::CachePadded;

use scheduler::{Batch, TaskId};

/// Lock a mutex, ignoring poisoning (no user code runs while our locks are held).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Split ids `lo..lo+n` into `p` contiguous blocks whose sizes differ by at most one (the first
/// `n mod p` blocks get the extra id).
pub(crate) fn blocks(lo: TaskId, n: usize, p: usize) -> impl Iterator<Item = (TaskId, TaskId)> {
    let (base, extra) = (n / p, n % p);
    (0..p).scan(lo, move |start, w| {
        let len = base + usize::from(w < extra);
        let block = (*start, *start + len);
        *start += len;
        Some(block)
    })
}

/// Deals batches out as contiguous blocks, one per inbox, starting where the last batch
/// stopped: the one rotating start shared by every strategy that deals batches (`block`,
/// `work-stealing`, `range-stealing`).
///
/// A batch of `len` ids is split as [`blocks`] splits it (sizes differ by at most one, the
/// first `len mod P` blocks one longer); block `j` goes to worker `(start + j) mod P`, and the
/// start moves on by `len mod P`, past the workers that got the longer blocks. A closed run
/// (one batch, start 0) is dealt exactly as before; ids submitted one at a time go to workers
/// 0, 1, …, P − 1, 0, …; over any sequence of batches the workers' totals differ by at most
/// one.
#[derive(Debug, Default)]
pub(crate) struct Dealer {
    start: AtomicUsize,
}

impl Dealer {
    /// Deal `batch` out over `inboxes`.
    pub(crate) fn deal(&self, batch: &Batch<'_>, inboxes: &[Inbox]) {
        self.deal_with(batch, inboxes, |_, _, _| {});
    }

    /// [`Dealer::deal`], telling `placed(worker, lo, hi)` about every non-empty block before it
    /// becomes visible in the worker's inbox.
    pub(crate) fn deal_with(
        &self,
        batch: &Batch<'_>,
        inboxes: &[Inbox],
        mut placed: impl FnMut(usize, TaskId, TaskId),
    ) {
        let p = inboxes.len();
        if batch.is_empty() || p == 0 {
            return;
        }
        let step = batch.len() % p;
        let start = if step == 0 {
            self.start.load(Ordering::Relaxed)
        } else {
            // Concurrent submitters each get their own start; `fetch_update` keeps it in 0..p.
            self.start
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                    Some((s + step) % p)
                })
                .unwrap_or_else(|s| s)
        };
        for (j, (lo, hi)) in blocks(batch.ids.0, batch.len(), p).enumerate() {
            if lo < hi {
                let w = (start + j) % p;
                placed(w, lo, hi);
                inboxes[w].push(Chunk::strided(lo, hi, 1));
            }
        }
    }
}

/// Some ids for one worker: `next, next+step, … < end`, or an explicit list.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// A strided range.
    Strided {
        next: TaskId,
        end: TaskId,
        step: usize,
    },
    /// Explicit ids, taken from `pos` on.
    List { ids: Vec<TaskId>, pos: usize },
}

impl Chunk {
    /// Ids `start..end` with stride `step` (≥ 1).
    pub(crate) fn strided(start: TaskId, end: TaskId, step: usize) -> Chunk {
        Chunk::Strided {
            next: start,
            end,
            step,
        }
    }

    /// Take the next ids as a run `(first, count)`: all that is left of a contiguous chunk
    /// (up to `u32::MAX`), or one id of a strided chunk or a list.
    #[inline]
    pub(crate) fn take_run(&mut self) -> Option<(TaskId, u32)> {
        match self {
            Chunk::Strided { next, end, step: 1 } if *next < *end => {
                let count = (*end - *next).min(u32::MAX as usize);
                let first = *next;
                *next += count;
                Some((first, count as u32))
            }
            _ => self.take().map(|id| (id, 1)),
        }
    }

    /// Take the next id.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<TaskId> {
        match self {
            Chunk::Strided { next, end, step } => (*next < *end).then(|| {
                let id = *next;
                *next += *step;
                id
            }),
            Chunk::List { ids, pos } => ids.get(*pos).map(|&id| {
                *pos += 1;
                id
            }),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Call `f` on every id left, last first.
    pub(crate) fn for_each_rev(&self, mut f: impl FnMut(TaskId)) {
        match self {
            Chunk::Strided { next, step, .. } => {
                for k in (0..self.len()).rev() {
                    f(*next + k * *step);
                }
            }
            Chunk::List { ids, pos } => ids[(*pos).min(ids.len())..]
                .iter()
                .rev()
                .for_each(|&id| f(id)),
        }
    }

    /// Ids left.
    pub(crate) fn len(&self) -> usize {
        match self {
            Chunk::Strided { next, end, step } => end.saturating_sub(*next).div_ceil(*step),
            Chunk::List { ids, pos } => ids.len().saturating_sub(*pos),
        }
    }

    /// Split off the first `k` ids (1 ≤ k < len) as a chunk of their own.
    fn split_off_front(&mut self, k: usize) -> Chunk {
        match self {
            Chunk::Strided { next, step, .. } => {
                let front = Chunk::strided(*next, *next + k * *step, *step);
                *next += k * *step;
                front
            }
            Chunk::List { ids, pos } => {
                let front = ids[*pos..*pos + k].to_vec();
                *pos += k;
                Chunk::List { ids: front, pos: 0 }
            }
        }
    }

    /// Split off the last `k` ids (1 ≤ k < len) as a chunk of their own.
    fn split_off_back(&mut self, k: usize) -> Chunk {
        let keep = self.len() - k;
        match self {
            Chunk::Strided { next, end, step } => {
                let cut = *next + keep * *step;
                let back = Chunk::strided(cut, *end, *step);
                *end = cut;
                back
            }
            Chunk::List { ids, pos } => {
                let back = ids.split_off(*pos + keep);
                Chunk::List { ids: back, pos: 0 }
            }
        }
    }
}

/// A worker's private FIFO of chunks, filled by submitters and drained only by its owner.
/// Aligned to its own cache lines: inboxes sit side by side in a `Vec`, and each owner takes
/// its lock on every refill.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Inbox {
    chunks: Mutex<VecDeque<Chunk>>,
    /// Chunks queued; lets the owner skip the lock when there is nothing.
    queued: AtomicUsize,
}

impl Inbox {
    /// Queue a chunk (empty chunks are dropped).
    pub(crate) fn push(&self, chunk: Chunk) {
        if chunk.is_empty() {
            return;
        }
        let mut q = lock(&self.chunks);
        q.push_back(chunk);
        self.queued.store(q.len(), Ordering::Release);
    }

    /// A thief's take: `want(len)` ids (at least 1) from the back of the oldest chunk, the
    /// owner keeping the front; the whole chunk if it wants that many.
    pub(crate) fn steal(&self, want: impl FnOnce(usize) -> usize) -> Option<Chunk> {
        if self.queued.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = lock(&self.chunks);
        let front = q.front_mut()?;
        let k = want(front.len()).max(1);
        if k < front.len() {
            return Some(front.split_off_back(k));
        }
        let c = q.pop_front();
        self.queued.store(q.len(), Ordering::Release);
        c
    }

    /// Queue a chunk ahead of the others (ids older than those queued: a thief's loot).
    pub(crate) fn push_front(&self, chunk: Chunk) {
        if chunk.is_empty() {
            return;
        }
        let mut q = lock(&self.chunks);
        q.push_front(chunk);
        self.queued.store(q.len(), Ordering::Release);
    }

    /// Take at most `max` (≥ 1) ids from the front of the oldest chunk, leaving the rest of it
    /// queued (and stealable).
    pub(crate) fn take_front(&self, max: usize) -> Option<Chunk> {
        if self.queued.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = lock(&self.chunks);
        let front = q.front_mut()?;
        if front.len() > max {
            return Some(front.split_off_front(max.max(1)));
        }
        let c = q.pop_front();
        self.queued.store(q.len(), Ordering::Release);
        c
    }

    /// Take the oldest chunk.
    pub(crate) fn pop(&self) -> Option<Chunk> {
        if self.queued.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = lock(&self.chunks);
        let c = q.pop_front();
        self.queued.store(q.len(), Ordering::Release);
        c
    }
}

/// The owner's side of an [`Inbox`]: the chunk in hand, refilled from the inbox.
#[derive(Debug)]
pub(crate) struct Private {
    current: Chunk,
}

impl Private {
    pub(crate) fn new() -> Self {
        Private {
            current: Chunk::List {
                ids: Vec::new(),
                pos: 0,
            },
        }
    }

    /// The next ids of this worker as a run `(first, count)` (see [`Chunk::take_run`]), from
    /// the chunk in hand or the inbox.
    #[inline]
    pub(crate) fn next_run(&mut self, inbox: &Inbox) -> Option<(TaskId, u32)> {
        loop {
            if let Some(run) = self.current.take_run() {
                return Some(run);
            }
            self.current = inbox.pop()?;
        }
    }
}

/// A shared FIFO of id ranges with a running count of ids.
#[derive(Debug, Default)]
pub(crate) struct RangeQueue {
    inner: Mutex<(VecDeque<(TaskId, TaskId)>, usize)>,
    /// Ids queued; lets an idle worker skip the lock when there is nothing.
    remaining: AtomicUsize,
}

impl RangeQueue {
    /// Append ids `start..end`.
    pub(crate) fn push(&self, start: TaskId, end: TaskId) {
        if start >= end {
            return;
        }
        let mut g = lock(&self.inner);
        g.0.push_back((start, end));
        g.1 += end - start;
        self.remaining.store(g.1, Ordering::Release);
    }

    /// Take up to `size(remaining)` ids from the front (within one range), where `size` is
    /// given the number of ids queued and returns the wanted chunk size (≥ 1).
    pub(crate) fn take(&self, size: impl FnOnce(usize) -> usize) -> Option<(TaskId, TaskId)> {
        if self.remaining.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut g = lock(&self.inner);
        let remaining = g.1;
        let want = size(remaining).max(1);
        let front = g.0.front_mut()?;
        let start = front.0;
        let end = front.1.min(start + want);
        front.0 = end;
        if front.0 == front.1 {
            g.0.pop_front();
        }
        g.1 -= end - start;
        self.remaining.store(g.1, Ordering::Release);
        Some((start, end))
    }
}

/// One run of submitted ids in a [`Segments`] list: `start..end`, where `end` grows while the
/// segment is the list's tail and submissions go on from where it ends.
#[derive(Debug)]
pub(crate) struct Segment {
    start: TaskId,
    /// One past the last id; final once `next` is set (it only grows before that).
    end: AtomicUsize,
    /// Ids claimed so far (never past `end - start`).
    claimed: CachePadded<AtomicUsize>,
    next: OnceLock<Arc<Segment>>,
}

impl Segment {
    fn new(start: TaskId, end: TaskId) -> Arc<Segment> {
        Arc::new(Segment {
            start,
            end: AtomicUsize::new(end),
            claimed: CachePadded::new(AtomicUsize::new(0)),
            next: OnceLock::new(),
        })
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // Unlink the rest of the list iteratively: a million non-contiguous submissions would
        // otherwise drop recursively and overflow the stack.
        let mut next = self.next.take();
        while let Some(seg) = next {
            next = match Arc::try_unwrap(seg) {
                Ok(mut seg) => seg.next.take(),
                Err(_) => None,
            };
        }
    }
}

/// Submitted id ranges in a linked list; a worker claims chunks from its current segment with
/// one compare-and-swap and moves on down the list when it is used up. Submission appends under
/// a lock (submitters only); claiming takes no lock. A submission that starts where the tail
/// ends extends the tail instead of allocating (a job's ids are consecutive, so one-id
/// submissions, as a pipeline stage makes them, cost no allocation). A segment is freed once
/// every worker has moved past it.
#[derive(Debug)]
pub(crate) struct Segments {
    tail: Mutex<Arc<Segment>>,
}

impl Segments {
    pub(crate) fn new() -> Self {
        Segments {
            tail: Mutex::new(Segment::new(0, 0)),
        }
    }

    /// A cursor at the end of the list: it sees every range pushed from now on (make the
    /// workers' cursors before anything is submitted).
    pub(crate) fn cursor(&self) -> Arc<Segment> {
        lock(&self.tail).clone()
    }

    /// Append ids `start..end`.
    pub(crate) fn push(&self, start: TaskId, end: TaskId) {
        if start >= end {
            return;
        }
        let mut tail = lock(&self.tail);
        if tail.end.load(Ordering::Relaxed) == start {
            // Only the holder of the lock moves a tail's end; workers see it grow.
            tail.end.store(end, Ordering::Release);
            return;
        }
        let seg = Segment::new(start, end);
        let _ = tail.next.set(seg.clone());
        *tail = seg;
    }

    /// Claim up to `chunk` (≥ 1) ids from `cursor` on: `(first, count)`.
    #[cfg(test)]
    pub(crate) fn claim(cursor: &mut Arc<Segment>, chunk: usize) -> Option<(TaskId, usize)> {
        Self::claim_by(cursor, |_| chunk)
    }

    /// Claim up to `size(left)` ids from `cursor` on, where `left` (≥ 1) is the number of ids
    /// not yet claimed in the cursor's segment and `size` returns at least 1: `(first, count)`.
    #[inline]
    pub(crate) fn claim_by(
        cursor: &mut Arc<Segment>,
        size: impl Fn(usize) -> usize,
    ) -> Option<(TaskId, usize)> {
        loop {
            let seg = &**cursor;
            let len = seg.end.load(Ordering::Acquire) - seg.start;
            let at = seg.claimed.load(Ordering::Relaxed);
            if at < len {
                // A compare-and-swap, not an add: the end may still grow, so a claim must
                // never run past it (ids beyond it would be lost to the failed claimer).
                let count = size(len - at).clamp(1, len - at);
                if seg
                    .claimed
                    .compare_exchange_weak(at, at + count, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some((seg.start + at, count));
                }
                continue;
            }
            let next = seg.next.get()?;
            // `end` is final once `next` is set (it was set after the last extension, under
            // the same lock), and this read comes after `get`'s acquire: ids added since the
            // first read are claimed before moving on.
            if at < seg.end.load(Ordering::Acquire) - seg.start {
                continue;
            }
            *cursor = next.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_yield_their_ids() {
        let mut c = Chunk::strided(1, 10, 3);
        let got: Vec<_> = std::iter::from_fn(|| c.take()).collect();
        assert_eq!(got, vec![1, 4, 7]);
        let inbox = Inbox::default();
        inbox.push(Chunk::strided(5, 5, 1));
        inbox.push(Chunk::List {
            ids: vec![9, 2],
            pos: 0,
        });
        inbox.push(Chunk::strided(0, 2, 1));
        let mut p = Private::new();
        let got: Vec<_> = std::iter::from_fn(|| p.next_run(&inbox)).collect();
        assert_eq!(got, vec![(9, 1), (2, 1), (0, 2)]);
    }

    #[test]
    fn the_dealer_rotates_its_start() {
        let inboxes: Vec<Inbox> = (0..3).map(|_| Inbox::default()).collect();
        let dealer = Dealer::default();
        for id in 0..7 {
            dealer.deal(&Batch::new(id..id + 1), &inboxes);
        }
        // 7 more in one batch: start is 1 (7 mod 3), so worker 1 gets the longer block.
        dealer.deal(&Batch::new(7..14), &inboxes);
        let drain = |inbox: &Inbox| {
            let mut p = Private::new();
            let mut ids = Vec::new();
            while let Some((first, count)) = p.next_run(inbox) {
                ids.extend(first..first + count as usize);
            }
            ids
        };
        let got: Vec<Vec<usize>> = inboxes.iter().map(drain).collect();
        assert_eq!(
            got,
            vec![
                vec![0, 3, 6, 12, 13],
                vec![1, 4, 7, 8, 9],
                vec![2, 5, 10, 11]
            ]
        );
        let mut rev = Vec::new();
        Chunk::strided(1, 10, 3).for_each_rev(|id| rev.push(id));
        assert_eq!(rev, vec![7, 4, 1]);
    }

    #[test]
    fn take_front_leaves_the_rest_queued_and_push_front_goes_first() {
        let inbox = Inbox::default();
        inbox.push(Chunk::strided(0, 10, 1));
        inbox.push(Chunk::List {
            ids: vec![20, 21, 22],
            pos: 1,
        });
        let ids = |mut c: Chunk| std::iter::from_fn(move || c.take()).collect::<Vec<_>>();
        assert_eq!(ids(inbox.take_front(4).unwrap()), vec![0, 1, 2, 3]);
        // A thief takes the back half of what is left of the oldest chunk.
        assert_eq!(ids(inbox.steal(|n| n / 2).unwrap()), vec![7, 8, 9]);
        inbox.push_front(Chunk::strided(100, 102, 1));
        assert_eq!(ids(inbox.take_front(8).unwrap()), vec![100, 101]);
        assert_eq!(ids(inbox.take_front(8).unwrap()), vec![4, 5, 6]);
        assert_eq!(ids(inbox.take_front(1).unwrap()), vec![21]);
        assert_eq!(ids(inbox.take_front(1).unwrap()), vec![22]);
        assert!(inbox.take_front(1).is_none());
    }

    #[test]
    fn blocks_cover_exactly_once() {
        let b: Vec<_> = blocks(10, 7, 3).collect();
        assert_eq!(b, vec![(10, 13), (13, 15), (15, 17)]);
        assert_eq!(blocks(0, 2, 4).filter(|(a, b)| a < b).count(), 2);
    }

    #[test]
    fn thieves_take_from_the_back_of_the_oldest_chunk() {
        let inbox = Inbox::default();
        inbox.push(Chunk::strided(0, 10, 2)); // 0 2 4 6 8
        inbox.push(Chunk::List {
            ids: vec![1, 3, 5],
            pos: 1,
        }); // 3 5
        let mut half = inbox.steal(|n| n / 2).unwrap();
        assert_eq!(
            std::iter::from_fn(|| half.take()).collect::<Vec<_>>(),
            vec![6, 8]
        );
        let mut one = inbox.steal(|_| 1).unwrap();
        assert_eq!(one.take(), Some(4));
        assert_eq!(one.take(), None);
        let mut p = Private::new();
        let rest: Vec<_> = std::iter::from_fn(|| p.next_run(&inbox)).collect();
        assert_eq!(rest, vec![(0, 1), (2, 1), (3, 1), (5, 1)]);
        assert!(inbox.steal(|n| n).is_none());
    }

    #[test]
    fn segments_hand_out_each_id_once_across_submissions() {
        let s = Segments::new();
        let (mut a, mut b) = (s.cursor(), s.cursor());
        assert_eq!(Segments::claim(&mut a, 2), None);
        s.push(0, 5);
        s.push(10, 11);
        assert_eq!(Segments::claim(&mut a, 2), Some((0, 2)));
        assert_eq!(Segments::claim(&mut b, 2), Some((2, 2)));
        assert_eq!(Segments::claim(&mut a, 2), Some((4, 1)));
        assert_eq!(Segments::claim(&mut b, 2), Some((10, 1)));
        assert_eq!(Segments::claim(&mut a, 2), None);
        s.push(20, 22);
        assert_eq!(Segments::claim(&mut a, 2), Some((20, 2)));
        assert_eq!(Segments::claim(&mut b, 2), None);
        // A long list (non-contiguous ranges: one segment each) drops without recursion.
        let long = Segments::new();
        for i in 0..200_000 {
            long.push(2 * i, 2 * i + 1);
        }
        drop(long);
    }

    #[test]
    fn contiguous_pushes_extend_the_tail() {
        let s = Segments::new();
        let mut a = s.cursor();
        s.push(0, 3);
        assert_eq!(Segments::claim(&mut a, 8), Some((0, 3)));
        assert_eq!(Segments::claim(&mut a, 8), None);
        // Starts where the tail ends: the same segment grows, and the cursor sees it.
        s.push(3, 4);
        s.push(4, 6);
        let tail = s.cursor();
        assert!(Arc::ptr_eq(&tail, &a), "no new segment for consecutive ids");
        assert_eq!(Segments::claim(&mut a, 8), Some((3, 3)));
        // A gap starts a new segment.
        s.push(9, 10);
        assert!(!Arc::ptr_eq(&s.cursor(), &a));
        assert_eq!(Segments::claim(&mut a, 8), Some((9, 1)));
        assert_eq!(Segments::claim(&mut a, 8), None);
    }

    #[test]
    fn claims_racing_extensions_take_every_id_once() {
        // One submitter pushes one id at a time (with a gap now and then) while two workers
        // claim: every id is claimed exactly once, none is lost at a segment's growing end.
        const N: usize = 200_000;
        let s = Arc::new(Segments::new());
        let cursors: Vec<_> = (0..2).map(|_| s.cursor()).collect();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = cursors
            .into_iter()
            .enumerate()
            .map(|(w, mut cur)| {
                let done = Arc::clone(&done);
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        let finished = done.load(Ordering::Acquire);
                        match Segments::claim(&mut cur, 1 + w * 2) {
                            Some((first, count)) => got.extend(first..first + count),
                            None if finished => return got,
                            None => std::hint::spin_loop(),
                        }
                    }
                })
            })
            .collect();
        let mut pushed = Vec::new();
        let mut next = 0;
        for i in 0..N {
            if i % 1000 == 999 {
                next += 5; // a gap: the next range opens a new segment
            }
            s.push(next, next + 1);
            pushed.push(next);
            next += 1;
        }
        done.store(true, Ordering::Release);
        let mut got: Vec<usize> = workers
            .into_iter()
            .flat_map(|h| h.join().expect("a worker thread"))
            .collect();
        got.sort_unstable();
        assert_eq!(got, pushed);
    }

    #[test]
    fn range_queue_cuts_chunks_within_ranges() {
        let q = RangeQueue::default();
        q.push(0, 5);
        q.push(10, 12);
        assert_eq!(q.take(|r| r), Some((0, 5)));
        assert_eq!(q.take(|_| 1), Some((10, 11)));
        assert_eq!(q.take(|r| r), Some((11, 12)));
        assert_eq!(q.take(|r| r), None);
    }
}
