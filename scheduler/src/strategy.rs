//! The strategy interface: what a scheduling policy answers, and nothing more.
//!
//! A [`Strategy`] is a parsed policy (for example `work-stealing(victim=random,steal=half)`).
//! For each run an engine asks it to [`build`](Strategy::build) an [`Instance`]: one shared
//! [`SharedQueue`] that accepts submissions from any thread, and one [`WorkerQueue`] per
//! worker that answers "worker w is free: what does it run next?".
//!
//! Every method is non-blocking. A strategy never sleeps, parks, reads a clock or records
//! metrics: that is the engine's job, which is why the same strategy value runs unchanged on
//! the real-threads engine and on the discrete-event simulator.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::rng::SmallRng;
use crate::{TaskId, WorkerId};

/// What an engine tells a strategy about the run it is about to serve.
#[derive(Clone, Debug)]
pub struct Context {
    /// The NUMA node of each worker (`nodes.len()` is the worker count).
    pub nodes: Vec<usize>,
    /// The speed factor of each worker (1.0 = nominal; a task of cost c takes c / speed).
    pub speeds: Vec<f64>,
    /// The run's seed; strategies draw randomness only through [`Context::rng`].
    pub seed: u64,
}

impl Context {
    /// A context for `workers` identical workers on one node.
    ///
    /// It allocates two entries per worker: engines check the count against their limit
    /// first ([`RunSpec::MAX_WORKERS`](crate::RunSpec::MAX_WORKERS),
    /// [`SimPipeline::MAX_WORKERS`](crate::SimPipeline::MAX_WORKERS)); a count that cannot be
    /// allocated (`usize::MAX`) panics with "capacity overflow", as `vec!` does.
    ///
    /// ```
    /// let ctx = scheduler::Context::uniform(4, 7);
    /// assert_eq!(ctx.workers(), 4);
    /// assert!(ctx.nodes.iter().all(|&n| n == 0));
    /// ```
    pub fn uniform(workers: usize, seed: u64) -> Self {
        Context {
            nodes: vec![0; workers],
            speeds: vec![1.0; workers],
            seed,
        }
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.nodes.len()
    }

    /// The seeded generator that worker `w` of this run uses (independent per worker,
    /// identical across runs with the same seed).
    pub fn rng(&self, w: WorkerId) -> SmallRng {
        SmallRng::for_stream(self.seed, w as u64)
    }
}

/// A contiguous run of task ids submitted together, with the cost estimates a policy may use.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// The ids `start..end` being submitted.
    pub ids: (TaskId, TaskId),
    /// Estimated cost in ns of each id, indexed by `id - ids.0`; `None` when unknown.
    pub estimate_ns: Option<&'a [u64]>,
}

impl<'a> Batch<'a> {
    /// A batch of ids without estimates.
    pub fn new(ids: Range<TaskId>) -> Self {
        Batch {
            ids: (ids.start, ids.end.max(ids.start)),
            estimate_ns: None,
        }
    }

    /// A batch with one estimate per id.
    ///
    /// # Panics
    /// If `estimate_ns.len()` differs from the number of ids (a caller bug, not user input).
    pub fn with_estimates(ids: Range<TaskId>, estimate_ns: &'a [u64]) -> Self {
        assert_eq!(ids.len(), estimate_ns.len(), "one estimate per task id");
        Batch {
            ids: (ids.start, ids.end),
            estimate_ns: Some(estimate_ns),
        }
    }

    /// The ids as a range.
    pub fn range(&self) -> Range<TaskId> {
        self.ids.0..self.ids.1
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ids.1 - self.ids.0
    }

    /// True when the batch holds no id.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The estimate for `id` (0 when unknown).
    pub fn estimate(&self, id: TaskId) -> u64 {
        self.estimate_ns.map_or(0, |e| e[id - self.ids.0])
    }
}

/// Failed probes made while looking for a task, split by whether the probed worker was on the
/// prober's own NUMA node. The simulator charges them; both engines count them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Failed steal attempts on workers of the prober's node.
    pub same_node: u32,
    /// Failed steal attempts on workers of another node.
    pub cross_node: u32,
}

impl Attempts {
    /// All failed attempts.
    pub fn total(&self) -> u32 {
        self.same_node + self.cross_node
    }

    /// Count one failed attempt on `victim` made by a worker on `own_node`.
    pub fn record(&mut self, own_node: usize, victim_node: usize) {
        if own_node == victim_node {
            self.same_node += 1;
        } else {
            self.cross_node += 1;
        }
    }
}

/// Where a task handed to a worker came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The worker's own queue.
    Local,
    /// A queue shared by all workers (a single server: the simulator serialises it).
    Shared,
    /// Taken from another worker's queue.
    Stolen {
        /// The worker robbed.
        victim: WorkerId,
        /// How many tasks the steal moved, the returned one included (1 for steal-one).
        moved: u32,
    },
}

/// Tasks picked for a worker: `count` consecutive ids from `task` on (usually one).
///
/// A strategy that holds ranges can hand over a whole run at once; the engine then runs
/// `task, task + 1, …, task + count − 1` in order on this worker, back to back, without
/// asking again. `source` and `attempts` describe how the pick as a whole was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    /// The first task to run.
    pub task: TaskId,
    /// How many consecutive ids the pick hands over (at least 1).
    pub count: u32,
    /// Where it came from.
    pub source: Source,
    /// Failed probes made before finding it.
    pub attempts: Attempts,
}

impl Pick {
    /// One task from `source`, found without failed probes.
    ///
    /// ```
    /// use scheduler::{Pick, Source};
    /// let p = Pick::one(7, Source::Local);
    /// assert_eq!(p.tasks(), 7..8);
    /// ```
    #[inline]
    pub fn one(task: TaskId, source: Source) -> Self {
        Pick::run(task, 1, source)
    }

    /// The `count` (≥ 1) consecutive tasks from `task` on.
    ///
    /// ```
    /// use scheduler::{Pick, Source};
    /// assert_eq!(Pick::run(10, 5, Source::Shared).tasks(), 10..15);
    /// ```
    #[inline]
    pub fn run(task: TaskId, count: u32, source: Source) -> Self {
        debug_assert!(count >= 1, "a pick hands over at least one task");
        Pick {
            task,
            count,
            source,
            attempts: Attempts::default(),
        }
    }

    /// The same pick, found after these failed probes.
    #[inline]
    pub fn after(mut self, attempts: Attempts) -> Self {
        self.attempts = attempts;
        self
    }

    /// The ids handed over.
    #[inline]
    pub fn tasks(&self) -> Range<TaskId> {
        self.task..self.task + self.count as usize
    }
}

/// The answer to "worker w is free: what does it run next?".
///
/// As in crossbeam-deque, `Empty` (nothing anywhere this worker can take) is kept apart from
/// `Retry` (lost a race with another worker; asking again may succeed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Run this task.
    Task(Pick),
    /// Nothing to run now; the failed probes made finding that out.
    Empty(Attempts),
    /// Lost a race; ask again.
    Retry(Attempts),
}

/// The submission side of a strategy's queues, shared by every thread of a run.
pub trait SharedQueue: Send + Sync {
    /// Place a batch of new tasks. May be called before the workers start (closed runs) or at
    /// any time while they run (streaming); it never blocks for long and never waits for work
    /// to finish.
    fn submit(&self, batch: Batch<'_>);
}

/// One worker's view of a strategy's queues. Owned by that worker alone.
pub trait WorkerQueue: Send {
    /// Non-blocking: the next task for this worker, or why there is none.
    fn next(&mut self) -> Next;

    /// [`next`](WorkerQueue::next), with the estimate its batch gave for the pick's first id
    /// when the strategy holds it at hand (a priority queue sorted by estimate carries it with
    /// the id). It must be exactly the batch's estimate, or `None`; the default says `None`.
    ///
    /// The simulator asks this instead of `next` when the run's estimates are its costs (the
    /// same table), and then takes the task's cost from here rather than from the cost table
    /// at an id that is anywhere in it: one cache miss less per event.
    ///
    /// ```
    /// # use scheduler::doc_support::FifoStrategy;
    /// use scheduler::{Context, Strategy, Batch, Next};
    /// let inst = FifoStrategy.build(&Context::uniform(1, 0));
    /// inst.shared.submit(Batch::new(0..1));
    /// let mut w = inst.workers.into_iter().next().unwrap();
    /// assert!(matches!(w.next_estimated(), (Next::Task(_), None)));
    /// ```
    fn next_estimated(&mut self) -> (Next, Option<u64>) {
        (self.next(), None)
    }

    /// Feedback: `task` ran on this worker and took `ns` nanoseconds. Adaptive policies
    /// learn from it; the default ignores it.
    fn completed(&mut self, task: TaskId, ns: u64) {
        let _ = (task, ns);
    }
}

/// A strategy's queues for one run.
pub struct Instance {
    /// Where tasks are submitted.
    pub shared: Arc<dyn SharedQueue>,
    /// One queue handle per worker, in worker order.
    pub workers: Vec<Box<dyn WorkerQueue>>,
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

/// A scheduling policy: a factory of per-run queues.
///
/// Implementations live in the `strategies` crate, one file each.
pub trait Strategy: Send + Sync + fmt::Debug {
    /// The canonical spec string, e.g. `central(chunk=4)`; parsing it gives an equal strategy.
    fn spec(&self) -> String;

    /// Check that this strategy can serve `workers` workers (e.g. one weight per worker).
    /// Engines call it before [`build`](Strategy::build); the default accepts any count.
    fn validate(&self, workers: usize) -> Result<(), crate::SpecError> {
        let _ = workers;
        Ok(())
    }

    /// Build the queues for one run with the given workers. Called once per run, before any
    /// task is submitted.
    fn build(&self, ctx: &Context) -> Instance;
}
