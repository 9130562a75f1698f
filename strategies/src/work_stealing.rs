//! `work-stealing(victim=random|numa|hier,steal=half|one|work,order=fifo|lifo)`: per-worker
//! deques; a worker that runs dry steals from a randomly chosen victim.
//!
//! Blumofe & Leiserson, "Scheduling multithreaded computations by work stealing" (JACM 1999):
//! E[T_P] ≤ T_1/P + O(T_∞). Submissions are dealt in contiguous blocks from a rotating start
//! (like `block`, see `queues::Dealer`), so ids submitted one at a time spread over every
//! worker; the owner works from its own crossbeam-deque and only touches others when empty.
//! It wins on irregular costs at any P: no shared hot spot, and communication only when idle.
//!
//! - `steal=half` takes about half of the victim's deque in one go (fewer steals on big
//!   imbalances); `steal=one` one task; `steal=work` tasks worth half the victim's *estimated*
//!   remaining work (from the batch's estimates), not half its count — on heavy-tailed costs
//!   half the count can be almost none of the work or almost all of it. Without estimates
//!   every task weighs the same and `work` takes about half the count, one task at a time.
//!   Work not yet loaded into a deque (a submitted block the owner has not started) is split
//!   by count in every mode.
//! - `victim=numa` tries the workers of its own NUMA node before remote ones;
//!   `victim=hier` (hierarchical stealing, as in Min et al., "Hierarchical work stealing on
//!   manycore clusters", PGAS 2011, and Olivier et al.'s locality-aware schedulers) also
//!   searches its own node first, and crosses nodes only in bulk: a cross-node steal takes
//!   about half of the work of every worker of the victim node at once, so the node-mates of
//!   the thief then find that work by cheap local steals instead of crossing again.
//! - `order` is the owner's own order. `fifo` (the default) runs each dealt block in id order
//!   while thieves take from its far end (the ids the owner would reach last): what in-order
//!   delivery wants (a reorder window drains as ids complete in order), what sequential access
//!   wants, and for flat index spaces it costs nothing, since there is no spawn tree whose
//!   newest (cache-hot) child LIFO would favour. `lifo` runs the newest first and lets thieves
//!   take the oldest, the classic Cilk/rayon order for fork-join work.
//!
//! A FIFO owner (without `steal=work`) moves its block into its deque [`LOAD`] (32) ids at a
//! time, leaving the rest in its inbox, where thieves take from its far end first (the deque
//! only once the inbox is empty). Loading a whole block at once (half a million 16-byte items
//! per worker for a million tasks on P = 2) grew the deque's buffer by doubling as it loaded
//! and shrank it again as it drained (each resize a fresh allocation, a copy, and the old
//! buffer handed to crossbeam's epoch collector), and touched 8 MB per worker in page faults:
//! the slow mode of `scheduler/src/threads/README.md` ("The two modes"). 32 is below the
//! deque's smallest buffer (64), so the buffer never resizes; 256 resized on every refill
//! and was slower than whole blocks. `lifo` and `steal=work` load whole blocks (the newest-first
//! order and the estimated work a thief weighs need the whole block in the deque).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use crossbeam_deque::{Steal, Stealer, Worker};
use crossbeam_utils::CachePadded;
use scheduler::{
    Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, SmallRng, Source, SpecError,
    Strategy, TaskId, WorkerQueue,
};

use crate::params::Params;
use crate::queues::{Chunk, Dealer, Inbox};

/// How victims are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Victim {
    /// Any other worker, starting from a random one.
    Random,
    /// Workers of the own NUMA node first (from a random one), then the others.
    Numa,
    /// Own node first; other nodes only in bulk (half of a victim node's work at once).
    Hier,
}

/// How much one steal takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amount {
    /// One task.
    One,
    /// About half of the victim's deque.
    Half,
    /// Tasks worth about half of the victim's estimated remaining work.
    Work,
}

/// The owner's order over its own deque.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerOrder {
    /// Oldest (lowest id of a block) first; thieves take the newest.
    Fifo,
    /// Newest first; thieves take the oldest.
    Lifo,
}

/// The most memory the victim lists of one run may take: 16 GiB. Each worker lists its
/// candidate victims (every other worker, or its node-mates), so the lists grow as P²
/// ([`WorkStealing::victim_list_bytes`]); a larger P is refused by `validate` before anything
/// is allocated.
pub const MAX_VICTIM_LIST_BYTES: u64 = 16 << 30;

/// Randomised work stealing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkStealing {
    victim: Victim,
    amount: Amount,
    order: OwnerOrder,
}

impl WorkStealing {
    /// Work stealing with the given victim choice and steal amount, FIFO owner order.
    pub fn new(victim: Victim, amount: Amount) -> Self {
        WorkStealing {
            victim,
            amount,
            order: OwnerOrder::Fifo,
        }
    }

    /// The same strategy with the given owner order.
    pub fn with_order(mut self, order: OwnerOrder) -> Self {
        self.order = order;
        self
    }

    /// The bytes the victim lists of `workers` workers take at most: each worker lists the
    /// P − 1 others (`victim=hier` on a single node too; fewer on more nodes), one `usize`
    /// each. `None` when the product overflows a `u64`.
    pub fn victim_list_bytes(workers: usize) -> Option<u64> {
        let p = workers as u64;
        p.checked_mul(p.saturating_sub(1))?
            .checked_mul(std::mem::size_of::<usize>() as u64)
    }

    /// The most workers whose victim lists fit in [`MAX_VICTIM_LIST_BYTES`] (46,341 on a
    /// 64-bit machine).
    pub fn max_workers() -> usize {
        let ids = MAX_VICTIM_LIST_BYTES / std::mem::size_of::<usize>() as u64;
        // p(p − 1) <= ids: start just above √ids and step down to the exact answer.
        let mut p = (ids as f64).sqrt() as usize + 2;
        while Self::victim_list_bytes(p).is_none_or(|b| b > MAX_VICTIM_LIST_BYTES) {
            p -= 1;
        }
        p
    }

    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&["victim", "steal", "order"])?;
        let victim = match p.choice("victim", &["random", "numa", "hier"])? {
            "random" => Victim::Random,
            "numa" => Victim::Numa,
            _ => Victim::Hier,
        };
        let amount = match p.choice("steal", &["half", "one", "work"])? {
            "half" => Amount::Half,
            "one" => Amount::One,
            _ => Amount::Work,
        };
        let order = match p.choice("order", &["fifo", "lifo"])? {
            "fifo" => OwnerOrder::Fifo,
            _ => OwnerOrder::Lifo,
        };
        Ok(WorkStealing {
            victim,
            amount,
            order,
        })
    }
}

/// A deque entry: a task id and its estimated cost (0 unless `steal=work`).
type Item = (TaskId, u64);

/// The estimates of submitted batches, for `steal=work`: `(first id, estimates)` sorted by id.
#[derive(Default)]
struct Estimates(RwLock<Vec<(TaskId, Arc<[u64]>)>>);

impl Estimates {
    fn add(&self, batch: &Batch<'_>) {
        let Some(e) = batch.estimate_ns else { return };
        let mut g = self.0.write().unwrap_or_else(|e| e.into_inner());
        let at = g.partition_point(|(lo, _)| *lo < batch.ids.0);
        g.insert(at, (batch.ids.0, Arc::from(e)));
    }

    /// Call `f(id, estimate)` for every id of `chunk`, last first (estimate 1 when unknown,
    /// so that without estimates "work" is the count).
    fn for_each_rev(&self, chunk: &Chunk, mut f: impl FnMut(Item)) {
        let g = self.0.read().unwrap_or_else(|e| e.into_inner());
        chunk.for_each_rev(|id| {
            let at = g.partition_point(|(lo, _)| *lo <= id);
            let est = at
                .checked_sub(1)
                .and_then(|i| g[i].1.get(id - g[i].0).copied())
                .unwrap_or(1);
            f((id, est));
        });
    }
}

struct Shared {
    dealer: Dealer,
    inboxes: Vec<Inbox>,
    stealers: Vec<Stealer<Item>>,
    nodes: Vec<usize>,
    /// Workers of each node.
    members: Vec<Vec<usize>>,
    /// `steal=work`: each worker's estimated work in its deque (approximate under races).
    work: Vec<CachePadded<AtomicI64>>,
    estimates: Estimates,
    amount: Amount,
}

impl SharedQueue for Shared {
    fn submit(&self, batch: Batch<'_>) {
        if self.amount == Amount::Work {
            self.estimates.add(&batch);
        }
        self.dealer.deal(&batch, &self.inboxes);
    }
}

/// Aligned to its own cache lines: each worker writes its handle on every pick, and handles
/// built one after another would otherwise share a line (false sharing between workers).
#[repr(align(128))]
struct Handle {
    shared: Arc<Shared>,
    w: usize,
    local: Worker<Item>,
    rng: SmallRng,
    amount: Amount,
    order: OwnerOrder,
    /// Load the own deque [`LOAD`] ids at a time from the inbox (FIFO owners without
    /// `steal=work`), instead of whole chunks.
    lazy: bool,
    hier: bool,
    /// Victims in the order they are tried: `near` (own node, or everyone for `random`) from a
    /// random offset, then `far` from a random offset (for `hier`, `far` lists other nodes).
    near: Vec<usize>,
    far: Vec<usize>,
}

/// A lazily loading owner moves at most this many ids from its inbox into its deque at once.
const LOAD: usize = 32;

impl Handle {
    /// The next chunk to load from the own inbox: a whole chunk, or its first [`LOAD`] ids
    /// when loading lazily.
    #[inline]
    fn refill(&self) -> Option<Chunk> {
        let inbox = &self.shared.inboxes[self.w];
        if self.lazy {
            inbox.take_front(LOAD)
        } else {
            inbox.pop()
        }
    }

    /// Pop from the own deque, refilling it from the own inbox when it is empty.
    #[inline]
    fn pop_or_refill(&self) -> Option<TaskId> {
        if let Some(t) = self.pop() {
            return Some(t);
        }
        while let Some(chunk) = self.refill() {
            self.load(chunk);
            if let Some(t) = self.pop() {
                return Some(t);
            }
        }
        None
    }

    /// Move a chunk's ids into the own deque; returns how many.
    fn load(&self, chunk: Chunk) -> u32 {
        let mut moved = 0u32;
        let mut work = 0i64;
        let mut push = |item: Item| {
            self.local.push(item);
            moved += 1;
            work += item.1 as i64;
        };
        match (self.amount, self.order) {
            (Amount::Work, OwnerOrder::Fifo) => self.shared.estimates.for_each_rev(&chunk, push),
            (Amount::Work, OwnerOrder::Lifo) => {
                let mut items = Vec::with_capacity(chunk.len());
                self.shared
                    .estimates
                    .for_each_rev(&chunk, |it| items.push(it));
                items.into_iter().rev().for_each(push);
            }
            // A LIFO deque loaded last-first pops first-first: FIFO owner order, and thieves
            // (who take from the other end) get the ids the owner would reach last.
            (_, OwnerOrder::Fifo) => chunk.for_each_rev(|id| push((id, 0))),
            (_, OwnerOrder::Lifo) => {
                let mut chunk = chunk;
                while let Some(id) = chunk.take() {
                    push((id, 0));
                }
            }
        }
        if self.amount == Amount::Work {
            self.shared.work[self.w].fetch_add(work, Ordering::Relaxed);
        }
        moved
    }

    /// Pop from the own deque.
    #[inline]
    fn pop(&self) -> Option<TaskId> {
        let (id, est) = self.local.pop()?;
        if self.amount == Amount::Work {
            self.shared.work[self.w].fetch_sub(est as i64, Ordering::Relaxed);
        }
        Some(id)
    }

    /// Take work from victim `v`'s deque into the own one (which is empty), by `amount`.
    /// Returns the tasks moved (0: nothing there), or `None` on a lost race.
    fn rob_deque(&self, v: usize, amount: Amount) -> Option<u32> {
        let stealer = &self.shared.stealers[v];
        let before = self.local.len();
        // Other thieves may rob this deque meanwhile, so its length after a steal can even be
        // below `before`: a successful steal moved at least one task.
        let moved = |local: &Worker<Item>| local.len().saturating_sub(before).max(1) as u32;
        match amount {
            Amount::One => match stealer.steal() {
                Steal::Success(item) => {
                    self.local.push(item);
                    Some(1)
                }
                Steal::Empty => Some(0),
                Steal::Retry => None,
            },
            Amount::Half => match stealer.steal_batch_with_limit(&self.local, usize::MAX) {
                Steal::Success(()) => Some(moved(&self.local)),
                Steal::Empty => Some(0),
                Steal::Retry => None,
            },
            Amount::Work => {
                let target = self.shared.work[v].load(Ordering::Relaxed).max(0) / 2;
                let (mut taken, mut count) = (0i64, 0u32);
                loop {
                    match stealer.steal() {
                        Steal::Success(item) => {
                            taken += item.1 as i64;
                            count += 1;
                            self.local.push(item);
                            if taken >= target {
                                break;
                            }
                        }
                        Steal::Empty => break,
                        Steal::Retry if count > 0 => break,
                        Steal::Retry => return None,
                    }
                }
                self.shared.work[v].fetch_sub(taken, Ordering::Relaxed);
                self.shared.work[self.w].fetch_add(taken, Ordering::Relaxed);
                Some(count)
            }
        }
    }

    /// Take work from victim `v`'s inbox (submitted blocks it has not started on, and the
    /// unloaded rest of the one it is on when it loads lazily).
    fn rob_inbox(&self, v: usize, amount: Amount) -> u32 {
        let take = |len: usize| match amount {
            Amount::One => 1,
            Amount::Half | Amount::Work => len.div_ceil(2),
        };
        let Some(chunk) = self.shared.inboxes[v].steal(take) else {
            return 0;
        };
        if self.lazy {
            // Into the own inbox, ahead of anything queued there: it is loaded a piece at a
            // time like the own blocks, and stays stealable.
            let moved = chunk.len().min(u32::MAX as usize) as u32;
            self.shared.inboxes[self.w].push_front(chunk);
            moved
        } else {
            self.load(chunk)
        }
    }

    /// Rob `v`: its deque, then its inbox (its inbox first when loading lazily: that is where
    /// the bulk of its work and the ids it would reach last are). `None`: lost a race and
    /// found nothing.
    fn rob(&self, v: usize, amount: Amount) -> Option<u32> {
        if self.lazy {
            return match self.rob_inbox(v, amount) {
                0 => self.rob_deque(v, amount),
                k => Some(k),
            };
        }
        match self.rob_deque(v, amount) {
            Some(0) => Some(self.rob_inbox(v, amount)),
            Some(k) => Some(k),
            None => match self.rob_inbox(v, amount) {
                0 => None,
                k => Some(k),
            },
        }
    }

    /// Hierarchical cross-node steal: about half of the work of every worker of `node`.
    /// Returns the first worker robbed and the tasks moved, or whether a race was lost.
    fn rob_node(&self, node: usize) -> Result<(usize, u32), bool> {
        let mut first = None;
        let mut moved = 0;
        let mut raced = false;
        let amount = match self.amount {
            Amount::One => Amount::Half,
            a => a,
        };
        for &v in &self.shared.members[node] {
            match self.rob(v, amount) {
                Some(0) => {}
                Some(k) => {
                    first.get_or_insert(v);
                    moved += k;
                }
                None => raced = true,
            }
        }
        first.map(|v| (v, moved)).ok_or(raced)
    }

    /// The first of the `moved` tasks just stolen from victim `v`, if a thief has not taken
    /// them meanwhile.
    #[inline]
    fn stolen(&self, v: usize, moved: u32, attempts: Attempts) -> Option<Next> {
        let task = self.pop_or_refill()?;
        Some(Next::Task(
            Pick::one(task, Source::Stolen { victim: v, moved }).after(attempts),
        ))
    }

    /// One probe of victim `v` by this worker's steal amount: the stolen pick, or `None` with
    /// the failed probe recorded (and `retry` set when a race was lost).
    #[inline]
    fn probe(
        &mut self,
        v: usize,
        own: usize,
        attempts: &mut Attempts,
        retry: &mut bool,
    ) -> Option<Next> {
        match self.rob(v, self.amount) {
            Some(0) => {}
            Some(moved) => {
                if let Some(next) = self.stolen(v, moved, *attempts) {
                    return Some(next);
                }
            }
            None => *retry = true,
        }
        attempts.record(own, self.shared.nodes[v]);
        None
    }
}

impl WorkerQueue for Handle {
    #[inline]
    fn next(&mut self) -> Next {
        if let Some(t) = self.pop_or_refill() {
            return Next::Task(Pick::one(t, Source::Local));
        }
        let own = self.shared.nodes[self.w];
        let mut attempts = Attempts::default();
        let mut retry = false;
        if !self.near.is_empty() {
            let start = self.rng.below(self.near.len());
            for i in 0..self.near.len() {
                let v = self.near[(start + i) % self.near.len()];
                if let Some(next) = self.probe(v, own, &mut attempts, &mut retry) {
                    return next;
                }
            }
        }
        if !self.far.is_empty() {
            let start = self.rng.below(self.far.len());
            for i in 0..self.far.len() {
                let x = self.far[(start + i) % self.far.len()];
                if self.hier {
                    // `x` is a node: one bulk steal, charged as one probe of that node.
                    match self.rob_node(x) {
                        Ok((v, moved)) => {
                            if let Some(next) = self.stolen(v, moved, attempts) {
                                return next;
                            }
                        }
                        Err(raced) => retry |= raced,
                    }
                    let probe = self.shared.members[x][0];
                    attempts.record(own, self.shared.nodes[probe]);
                    continue;
                }
                if let Some(next) = self.probe(x, own, &mut attempts, &mut retry) {
                    return next;
                }
            }
        }
        if retry {
            Next::Retry(attempts)
        } else {
            Next::Empty(attempts)
        }
    }
}

impl Strategy for WorkStealing {
    fn spec(&self) -> String {
        let victim = match self.victim {
            Victim::Random => "random",
            Victim::Numa => "numa",
            Victim::Hier => "hier",
        };
        let steal = match self.amount {
            Amount::One => "one",
            Amount::Half => "half",
            Amount::Work => "work",
        };
        let order = match self.order {
            OwnerOrder::Fifo => "fifo",
            OwnerOrder::Lifo => "lifo",
        };
        format!("work-stealing(victim={victim},steal={steal},order={order})")
    }

    fn validate(&self, workers: usize) -> Result<(), SpecError> {
        match Self::victim_list_bytes(workers) {
            Some(bytes) if bytes <= MAX_VICTIM_LIST_BYTES => Ok(()),
            bytes => Err(SpecError::new(format!(
                "strategy 'work-stealing': {workers} workers would need {} bytes of victim \
                     lists ({workers} x {} ids of {} bytes), above the limit of \
                     {MAX_VICTIM_LIST_BYTES} bytes (16 GiB): at most {} workers",
                bytes.map_or_else(|| "over 2^64".to_string(), |b| b.to_string()),
                workers - 1,
                std::mem::size_of::<usize>(),
                Self::max_workers()
            ))),
        }
    }

    fn build(&self, ctx: &Context) -> Instance {
        let p = ctx.workers();
        let locals: Vec<Worker<Item>> = (0..p).map(|_| Worker::new_lifo()).collect();
        let node_count = ctx.nodes.iter().max().map_or(0, |&m| m + 1);
        let mut members = vec![Vec::new(); node_count];
        for (w, &n) in ctx.nodes.iter().enumerate() {
            members[n].push(w);
        }
        let shared = Arc::new(Shared {
            dealer: Dealer::default(),
            inboxes: (0..p).map(|_| Inbox::default()).collect(),
            stealers: locals.iter().map(Worker::stealer).collect(),
            nodes: ctx.nodes.clone(),
            members,
            work: (0..p)
                .map(|_| CachePadded::new(AtomicI64::new(0)))
                .collect(),
            estimates: Estimates::default(),
            amount: self.amount,
        });
        let workers = locals
            .into_iter()
            .enumerate()
            .map(|(w, local)| {
                let own = ctx.nodes[w];
                let peers = (0..p).filter(|&v| v != w);
                let (near, far): (Vec<usize>, Vec<usize>) = match self.victim {
                    Victim::Random => (peers.collect(), Vec::new()),
                    Victim::Numa => peers.partition(|&v| ctx.nodes[v] == own),
                    Victim::Hier => (
                        peers.filter(|&v| ctx.nodes[v] == own).collect(),
                        (0..node_count)
                            .filter(|&n| n != own && !shared.members[n].is_empty())
                            .collect(),
                    ),
                };
                Box::new(Handle {
                    shared: shared.clone(),
                    w,
                    local,
                    rng: ctx.rng(w),
                    amount: self.amount,
                    order: self.order,
                    lazy: self.order == OwnerOrder::Fifo && self.amount != Amount::Work,
                    hier: self.victim == Victim::Hier,
                    near,
                    far,
                }) as Box<dyn WorkerQueue>
            })
            .collect();
        Instance { shared, workers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_refuses_victim_lists_above_the_memory_limit() {
        let max = WorkStealing::max_workers();
        let bytes = |p| WorkStealing::victim_list_bytes(p).unwrap();
        let word = std::mem::size_of::<usize>() as u64;
        assert_eq!(bytes(3), 3 * 2 * word);
        assert_eq!(bytes(1), 0);
        assert!(bytes(max) <= MAX_VICTIM_LIST_BYTES);
        assert!(bytes(max + 1) > MAX_VICTIM_LIST_BYTES);
        assert_eq!(WorkStealing::victim_list_bytes(usize::MAX), None);
        for spec in [
            "work-stealing",
            "work-stealing(victim=numa)",
            "work-stealing(victim=hier)",
        ] {
            let s = crate::parse(spec).unwrap();
            assert!(s.validate(1).is_ok());
            assert!(s.validate(max).is_ok(), "{spec}");
            let err = s.validate(max + 1).unwrap_err().to_string();
            assert!(err.contains(&bytes(max + 1).to_string()), "{err}");
            assert!(err.contains(&MAX_VICTIM_LIST_BYTES.to_string()), "{err}");
            assert!(err.contains(&format!("at most {max} workers")), "{err}");
            assert!(!err.contains('\n'), "{err}");
            let err = s.validate(usize::MAX).unwrap_err().to_string();
            assert!(err.contains("over 2^64"), "{err}");
        }
        // The library's engines ask validate before building anything per worker.
        let s = crate::parse("work-stealing").unwrap();
        let err = scheduler::run_sim(
            &scheduler::RunSpec::new(max + 1),
            s.as_ref(),
            &scheduler::Tasks::with_costs(&[1_000]),
            &scheduler::CostModel::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("victim"), "{err}");
    }

    fn drain(q: &mut dyn WorkerQueue) -> Vec<(TaskId, Source)> {
        let mut got = Vec::new();
        while let Next::Task(p) = q.next() {
            got.push((p.task, p.source));
        }
        got
    }

    #[test]
    fn fifo_owners_run_in_id_order_and_thieves_take_the_far_end() {
        let ctx = Context::uniform(2, 1);
        // 12 ids: each block fits one load; 1,000: FIFO owners load theirs `LOAD` at a time.
        for (n, order, own, spec) in [
            (12, "fifo", (0..6).collect::<Vec<_>>(), ""),
            (12, "lifo", (0..6).rev().collect(), ""),
            (1000, "fifo", (0..500).collect(), ""),
            (1000, "fifo", (0..500).collect(), ",steal=one"),
            (1000, "lifo", (0..500).rev().collect(), ""),
        ] {
            let s = crate::parse(&format!("work-stealing(order={order}{spec})")).unwrap();
            let mut inst = s.build(&ctx);
            inst.shared.submit(Batch::new(0..n));
            let (w0, w1) = inst.workers.split_at_mut(1);
            // w0 runs one (loading its block), then w1 drains its own block and steals.
            let Next::Task(first) = w0[0].next() else {
                panic!("w0 has a block")
            };
            let mut ran0 = vec![first.task];
            let ran1 = drain(w1[0].as_mut());
            let stolen: Vec<TaskId> = ran1
                .iter()
                .filter(|(_, s)| matches!(s, Source::Stolen { .. }))
                .map(|&(t, _)| t)
                .collect();
            ran0.extend(drain(w0[0].as_mut()).iter().map(|&(t, _)| t));
            let mut all: Vec<TaskId> = ran0
                .iter()
                .chain(ran1.iter().map(|(t, _)| t))
                .copied()
                .collect();
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>(), "{order}: exactly once");
            let own_order: Vec<TaskId> = own.into_iter().filter(|t| ran0.contains(t)).collect();
            assert_eq!(ran0, own_order, "{order}: owner order");
            assert!(!stolen.is_empty(), "{order}: w1 stole");
            if order == "fifo" {
                // The thief took ids the owner would have run last.
                assert!(stolen.iter().all(|t| *t > ran0[0]), "{order}: {stolen:?}");
            }
        }
    }

    #[test]
    fn lazily_loading_owners_keep_fifo_order_while_thieves_take_the_far_end() {
        // Two workers taking turns on 2,000 ids (blocks of 1,000, loaded `LOAD` at a time):
        // each owner runs its own ids in increasing order, every id runs once, and whatever
        // w1 stole from w0's block lies beyond everything w0 ran itself.
        for spec in ["work-stealing", "work-stealing(steal=one)"] {
            let s = crate::parse(spec).unwrap();
            let mut inst = s.build(&Context::uniform(2, 1));
            inst.shared.submit(Batch::new(0..2000));
            let (mut ran0, mut ran1, mut stolen) = (Vec::new(), Vec::new(), Vec::new());
            let mut empty = [false, false];
            while !(empty[0] && empty[1]) {
                // w1 makes three picks to w0's one: it runs out first and steals from w0.
                for w in [0, 1, 1, 1] {
                    let ran = if w == 0 { &mut ran0 } else { &mut ran1 };
                    match inst.workers[w].next() {
                        Next::Task(p) => {
                            empty[w] = false;
                            if let Source::Stolen { .. } = p.source {
                                stolen.push(p.task);
                            } else {
                                ran.push(p.task);
                            }
                        }
                        _ => empty[w] = true,
                    }
                }
            }
            let mut all: Vec<TaskId> = ran0.iter().chain(&ran1).chain(&stolen).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..2000).collect::<Vec<_>>(), "{spec}: exactly once");
            assert!(ran0.windows(2).all(|w| w[0] < w[1]), "{spec}: w0 in order");
            // w1's own block in order; what it took from w0's (the stolen pick, then the rest
            // of the loot from its own queue) lies beyond everything w0 ran itself.
            let own1: Vec<TaskId> = ran1.iter().copied().filter(|&t| t >= 1000).collect();
            assert!(own1.windows(2).all(|w| w[0] < w[1]), "{spec}: w1 in order");
            let from_w0: Vec<TaskId> = ran1
                .iter()
                .chain(&stolen)
                .copied()
                .filter(|&t| t < 1000)
                .collect();
            assert!(from_w0.len() > 100, "{spec}: w1 stole {}", from_w0.len());
            let (max0, min_stolen) = (ran0[ran0.len() - 1], from_w0.iter().min().unwrap());
            assert!(
                max0 < *min_stolen,
                "{spec}: w0 ran {max0}, w1 stole {min_stolen}"
            );
        }
    }

    #[test]
    fn steal_work_takes_half_the_estimated_work() {
        // w0's block holds one heavy task (id 5, the last it would run) and five light ones.
        let est = [1u64, 1, 1, 1, 1, 100, 1, 1, 1, 1, 1, 1];
        let ctx = Context::uniform(2, 1);
        let steal = |spec: &str| {
            let s = crate::parse(spec).unwrap();
            let mut inst = s.build(&ctx);
            inst.shared.submit(Batch::with_estimates(0..12, &est));
            let Next::Task(first) = inst.workers[0].next() else {
                panic!("w0 has a block")
            };
            assert_eq!(first.task, 0);
            // w1 runs its own block, then steals from w0.
            for _ in 0..6 {
                assert!(matches!(inst.workers[1].next(), Next::Task(_)));
            }
            match inst.workers[1].next() {
                Next::Task(p) => match p.source {
                    Source::Stolen { moved, .. } => (p.task, moved),
                    s => panic!("expected a steal, got {s:?}"),
                },
                n => panic!("expected a steal, got {n:?}"),
            }
        };
        // Half by count: 3 of the 5 left (ids 3..6); by work: the heavy id alone is > half.
        assert_eq!(steal("work-stealing(steal=half)").1, 3, "half of the count");
        assert_eq!(steal("work-stealing(steal=work)"), (5, 1));
    }
}
