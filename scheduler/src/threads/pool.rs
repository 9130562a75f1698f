//! The persistent pool: worker threads that live until the pool is dropped, serving jobs.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use crossbeam_utils::CachePadded;

use crate::error::RunError;
use crate::strategy::{Context, Strategy};
use crate::topology::{pin_current, Pin, Slot, Topology};
use crate::{TaskId, WorkerId};

use super::job::{panic_message, Control, ErasedJob, Job, JobOptions, JobState, NewJob, Stop};
use super::sleep::{Gate, Sleep};
use super::stack::Cpus;
use super::worker::{worker_loop, Worker};

/// The init hook kept for the states of waits inside tasks (README: "Waiting inside a task").
pub(crate) type NestedInit<S> = Arc<dyn Fn(WorkerId) -> S + Send + Sync>;

/// What the pool's threads and its jobs share.
pub(crate) struct PoolShared<S> {
    /// Written by every notification: on a cache line of its own, away from the fields that
    /// workers read on every round.
    pub(crate) sleep: CachePadded<Sleep>,
    pub(crate) shutdown: AtomicBool,
    /// Open jobs, in creation (= `seq`) order.
    jobs: Mutex<Vec<ErasedJob<S>>>,
    /// Bumped whenever a job is added, so a worker knows to look.
    pub(crate) version: AtomicU64,
    next_seq: AtomicU64,
    pub(crate) workers: usize,
    pub(crate) slots: Vec<Slot>,
    pub(crate) speeds: Vec<f64>,
    pub(crate) max_speed: f64,
    pub(crate) topology: Topology,
    pub(crate) pin: Pin,
    /// Per worker: `Some(true)` pinned, `Some(false)` refused, `None` not asked.
    pinned: OnceLock<Vec<Option<bool>>>,
    /// Unpinned workers, no more than the cpus: where each one runs, to move off a cpu that
    /// the kernel stacked two of them on (`stack.rs`).
    pub(crate) cpus: Option<Cpus>,
    spawned: AtomicUsize,
    /// The init hook, to build a worker's state for a wait inside one of its tasks; `None`
    /// for a pool whose init borrows (`run_threads`, whose tasks cannot reach its jobs).
    pub(crate) nested_init: Option<NestedInit<S>>,
}

impl<S> PoolShared<S> {
    pub(crate) fn pinned(&self, w: WorkerId) -> Option<bool> {
        self.pinned.get().and_then(|p| p[w])
    }

    /// Attach worker `w` to every job from `*next_seq` on, oldest first: `add(seq, runner)`.
    pub(crate) fn attach_new(
        &self,
        w: WorkerId,
        next_seq: &mut u64,
        mut add: impl FnMut(u64, Box<dyn super::job::Runner<S>>),
    ) {
        let jobs = lock(&self.jobs);
        let from = *next_seq;
        for job in jobs.iter().filter(|j| j.seq() >= from) {
            add(job.seq(), Arc::clone(job).attach(w));
            *next_seq = job.seq() + 1;
        }
    }

    /// Every worker has let go of job `seq`: drop it from the list.
    pub(crate) fn forget(&self, seq: u64) {
        lock(&self.jobs).retain(|j| j.seq() != seq);
    }

    /// Add a job built by `make(seq)` and wake the workers.
    fn publish<R>(&self, make: impl FnOnce(u64) -> (ErasedJob<S>, R)) -> R {
        let r = {
            let mut jobs = lock(&self.jobs);
            let seq = self.next_seq.fetch_add(1, SeqCst);
            let (job, r) = make(seq);
            jobs.push(job);
            r
        };
        self.version.fetch_add(1, SeqCst);
        self.sleep.notify(true);
        r
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A pool of persistent worker threads, each holding worker-local state `S` built once by an
/// init hook; jobs run on it one strategy instance at a time (several may be open at once).
///
/// Dropping the pool closes it: open jobs are stopped, every worker is woken and joined.
///
/// A task may open a job on its own pool and wait for it ([`Job::next`], `next_timeout`,
/// [`Job::finish`], a [`Submitter`](super::Submitter) waiting for room): its worker does not
/// block but runs the pool's work while it waits (steps of the open jobs, with its own queues),
/// and returns as soon as what it waits for is there, so this cannot deadlock, even with one
/// worker. The tasks it runs meanwhile get a second state of that worker, built by `init` the
/// first time (the waiting task holds the first). A task that waits on *its own* job, which its
/// worker cannot run until it returns, is refused at once ([`JobError::OwnJob`](super::JobError::OwnJob)).
/// `threads/README.md`, "Waiting inside a task", has the details.
///
/// ```
/// use scheduler::{Delivery, JobOptions, Pool};
/// # use scheduler::doc_support::FifoStrategy;
/// // Each worker owns a buffer, built once; three jobs reuse the same two threads.
/// let pool = Pool::builder(2).build_with(|_worker| Vec::<u8>::with_capacity(1024)).unwrap();
/// for epoch in 0..3 {
///     let mut job = pool
///         .job(&FifoStrategy, JobOptions::default().max_in_flight(64), move |id, _w, buf: &mut Vec<u8>| {
///             buf.clear();
///             id + epoch
///         })
///         .unwrap();
///     let mut got = Vec::new();
///     let mut next = 0;
///     while got.len() < 1000 {
///         let room = job.room().min(1000 - next);
///         if room > 0 {
///             next = job.try_submit(room).unwrap().end;
///         }
///         got.push(job.next().unwrap().result.unwrap());
///     }
///     assert_eq!(got, (epoch..1000 + epoch).collect::<Vec<_>>());
/// }
/// assert_eq!(pool.threads_spawned(), 2);
/// ```
///
/// A task that waits on a job of its own pool, with one worker:
///
/// ```
/// use std::sync::Arc;
/// use scheduler::{JobOptions, Pool};
/// # use scheduler::doc_support::FifoStrategy;
/// let pool = Arc::new(Pool::new(1).unwrap());
/// // Tasks reach the pool through a `Weak`: a worker must not drop its pool's last handle.
/// let weak = Arc::downgrade(&pool);
/// let mut outer = pool
///     .job(&FifoStrategy, JobOptions::default(), move |id, _w, _state| {
///         let pool = weak.upgrade().unwrap();
///         let mut inner = pool.job(&FifoStrategy, JobOptions::default(), |t, _, _| t * t).unwrap();
///         inner.try_submit(10).unwrap();
///         inner.close();
///         // The only worker is running this task: it runs `inner`'s tasks while it waits.
///         id + inner.by_ref().map(|o| o.result.unwrap()).sum::<usize>()
///     })
///     .unwrap();
/// outer.try_submit(2).unwrap();
/// let sums: Vec<usize> = (0..2).map(|_| outer.next().unwrap().result.unwrap()).collect();
/// assert_eq!(sums, vec![285, 286]);
/// ```
pub struct Pool<S: 'static = ()> {
    shared: Arc<PoolShared<S>>,
    handles: Vec<JoinHandle<()>>,
    /// How long the drop waits for workers still in a task ([`PoolBuilder::grace`]).
    grace: Option<std::time::Duration>,
}

impl<S> std::fmt::Debug for Pool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.shared.workers)
            .field("pin", &self.shared.pin)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Pool`]: worker count, pinning, topology, speeds, then the init hook.
#[derive(Clone, Debug)]
pub struct PoolBuilder {
    workers: usize,
    pin: Pin,
    topology: Option<Topology>,
    speeds: Vec<f64>,
    grace: Option<std::time::Duration>,
}

impl Pool<()> {
    /// `workers` unpinned workers without state.
    pub fn new(workers: usize) -> Result<Pool<()>, RunError> {
        Pool::builder(workers).build()
    }

    /// A builder for a pool of `workers` workers.
    pub fn builder(workers: usize) -> PoolBuilder {
        PoolBuilder {
            workers,
            pin: Pin::None,
            topology: None,
            speeds: Vec::new(),
            grace: None,
        }
    }
}

impl PoolBuilder {
    /// Pin the worker threads (`cores`: fill cpus in order; `numa`: spread across nodes).
    pub fn pin(mut self, pin: Pin) -> Self {
        self.pin = pin;
        self
    }

    /// Place workers on this topology (default: the detected one).
    pub fn topology(mut self, topology: Topology) -> Self {
        self.topology = Some(topology);
        self
    }

    /// Nominal speed factor per worker (reported, and given to strategies); default all 1.
    pub fn speeds(mut self, speeds: Vec<f64>) -> Self {
        self.speeds = speeds;
        self
    }

    /// Dropping the pool waits at most `grace` for workers still running a task (one that
    /// never returns), then leaves them running, detached, and says so on stderr; by default
    /// it waits for them however long they take. A detached worker owns only reference-counted
    /// state, so nothing it holds dangles; it ends when its task returns.
    pub fn grace(mut self, grace: std::time::Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Start the workers, without worker-local state.
    pub fn build(self) -> Result<Pool<()>, RunError> {
        self.build_with(|_| ())
    }

    /// Start the workers; `init(worker)` runs once on each worker thread, after pinning, and
    /// its value is that worker's state for the pool's life (a decoder, a buffer, an RNG).
    ///
    /// A task that waits on a job of this pool runs the pool's work meanwhile (see [`Pool`]),
    /// with a second state for that worker: `init` is called again on the worker's thread the
    /// first time one of its tasks waits (once more per level, for waits inside tasks run by
    /// such a wait), and that state is kept for the pool's life.
    ///
    /// # Errors
    /// Bad settings ([`RunError::Invalid`]: among them more workers than
    /// [`thread_limit`](crate::thread_limit) says this process may start, checked before any
    /// thread is spawned), a thread that cannot be spawned (the threads already started are
    /// stopped and joined), or an init that panics ([`RunError::Init`]: the pool is not started and every thread is joined).
    pub fn build_with<S, I>(self, init: I) -> Result<Pool<S>, RunError>
    where
        S: 'static,
        I: Fn(WorkerId) -> S + Send + Sync + 'static,
    {
        let init = Arc::new(init);
        self.build_inner(&*init, Some(init.clone() as NestedInit<S>))
    }

    /// [`PoolBuilder::build_with`] for an init that borrows: sound because the builder returns
    /// only once every thread has finished its init (or ended).
    /// Its tasks cannot wait on its jobs while working: `run_threads` keeps the pool to itself.
    pub(crate) fn build_scoped<S: 'static>(
        mut self,
        init: &(dyn Fn(WorkerId) -> S + Sync + '_),
    ) -> Result<Pool<S>, RunError> {
        // Its jobs borrow: every worker must be joined before the borrow ends.
        self.grace = None;
        self.build_inner(init, None)
    }

    fn build_inner<S: 'static>(
        self,
        init: &(dyn Fn(WorkerId) -> S + Sync + '_),
        nested_init: Option<NestedInit<S>>,
    ) -> Result<Pool<S>, RunError> {
        let p = self.workers;
        let grace = self.grace;
        // Before anything is sized by `p` or spawned: past the OS's limits a thread may abort
        // the process rather than fail to start (`limit.rs`).
        if let Some(message) = super::limit::over_thread_limit("workers", p, super::thread_limit())
        {
            return Err(RunError::Invalid(crate::error::SpecError::new(message)));
        }
        let topology = self.topology.unwrap_or_else(Topology::detect);
        let spec = crate::spec::RunSpec::new(p)
            .with_topology(topology.clone())
            .with_pin(self.pin)
            .with_speeds(self.speeds);
        spec.validate(&crate::spec::Tasks::closed(0))?;
        let slots = spec.slots();
        let speeds = spec.speeds();
        let max_speed = speeds.iter().copied().fold(0.0, f64::max);
        let shared = Arc::new(PoolShared {
            sleep: CachePadded::new(Sleep::default()),
            shutdown: AtomicBool::new(false),
            jobs: Mutex::new(Vec::new()),
            version: AtomicU64::new(0),
            next_seq: AtomicU64::new(0),
            workers: p,
            slots,
            speeds,
            max_speed,
            topology,
            pin: self.pin,
            pinned: OnceLock::new(),
            cpus: Cpus::new(
                p,
                self.pin,
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            spawned: AtomicUsize::new(0),
            nested_init,
        });
        // SAFETY: `init` is only called by the threads before they arrive at the gate, and
        // this function waits (`wait_ready`) until every spawned thread has arrived.
        let init: &'static (dyn Fn(WorkerId) -> S + Sync) = unsafe {
            std::mem::transmute::<
                &(dyn Fn(WorkerId) -> S + Sync + '_),
                &'static (dyn Fn(WorkerId) -> S + Sync),
            >(init)
        };
        let start = Arc::new(Start {
            gate: Gate::default(),
            reports: Mutex::new(vec![(None, None); p]),
        });
        let mut handles = Vec::with_capacity(p);
        for w in 0..p {
            let (for_thread, start_for_thread) = (Arc::clone(&shared), Arc::clone(&start));
            let cpu = shared.slots[w].cpu;
            let spawned = std::thread::Builder::new()
                .name(format!("schedlab-w{w}"))
                .spawn(move || worker_main(for_thread, start_for_thread, w, cpu, init));
            match spawned {
                Ok(h) => {
                    handles.push(h);
                    shared.spawned.fetch_add(1, SeqCst);
                }
                Err(source) => {
                    start.gate.wait_ready(handles.len());
                    start.gate.open(false);
                    join_all(handles);
                    return Err(RunError::Spawn { worker: w, source });
                }
            }
        }
        start.gate.wait_ready(p);
        let reports = std::mem::take(&mut *lock(&start.reports));
        if let Some((w, message)) = reports
            .iter()
            .enumerate()
            .find_map(|(w, r)| r.1.clone().map(|m| (w, m)))
        {
            start.gate.open(false);
            join_all(handles);
            return Err(RunError::Init { worker: w, message });
        }
        let _ = shared
            .pinned
            .set(reports.into_iter().map(|r| r.0).collect());
        start.gate.open(true);
        Ok(Pool {
            shared,
            handles,
            grace,
        })
    }
}

/// How the threads report their start: pinned or not, and an init panic's message.
struct Start {
    gate: Gate,
    reports: Mutex<Vec<(Option<bool>, Option<String>)>>,
}

fn join_all(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        if h.join().is_err() {
            // Worker threads catch every user panic; one that escapes is an engine bug.
            eprintln!("schedlab: a pool worker thread panicked (engine bug); aborting");
            std::process::abort();
        }
    }
}

/// Aborts the process if dropped while panicking: a panic in the engine's own code (never a
/// user's, which is caught) would leave the pool in a broken state, so it must not unwind.
struct AbortOnPanic;

impl Drop for AbortOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("schedlab: internal error in a pool worker (engine bug); aborting");
            std::process::abort();
        }
    }
}

fn worker_main<S: 'static>(
    shared: Arc<PoolShared<S>>,
    start: Arc<Start>,
    w: WorkerId,
    cpu: Option<usize>,
    init: &'static (dyn Fn(WorkerId) -> S + Sync),
) {
    let guard = AbortOnPanic;
    let pinned = cpu.map(pin_current);
    let state = catch_unwind(AssertUnwindSafe(|| init(w))).map_err(panic_message);
    lock(&start.reports)[w] = (pinned, state.as_ref().err().cloned());
    let go = start.gate.arrive();
    drop(start);
    if let (true, Ok(mut state)) = (go, state) {
        let worker = Worker::new(shared, w);
        {
            let _mark = worker.mark();
            worker_loop(&worker, &mut state);
        }
        // The states may be dropped by user code that panics: that is the user's panic.
        let states = std::iter::once(Box::new(state)).chain(worker.into_spares());
        for state in states {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(state))) {
                eprintln!(
                    "schedlab: worker {w}'s state panicked when dropped: {}",
                    panic_message(payload)
                );
            }
        }
    }
    std::mem::forget(guard);
}

impl<S: 'static> Pool<S> {
    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.shared.workers
    }

    /// Threads this pool has spawned since it was built: one per worker, ever.
    pub fn threads_spawned(&self) -> usize {
        self.shared.spawned.load(SeqCst)
    }

    /// Open a job: a fresh instance of `strategy` whose ids run as `f(id, worker, &mut state)`.
    ///
    /// # Errors
    /// [`RunError::Invalid`] if the strategy cannot serve this many workers,
    /// [`RunError::Strategy`] if building its queues panics or gives the wrong count.
    pub fn job<T, F>(
        &self,
        strategy: &dyn Strategy,
        options: JobOptions,
        f: F,
    ) -> Result<Job<T>, RunError>
    where
        T: Send + 'static,
        F: Fn(TaskId, WorkerId, &mut S) -> T + Send + Sync + 'static,
    {
        let instance = self.instance(strategy, options.seed)?;
        let delivery = options.delivery;
        let new = NewJob {
            f,
            strategy: strategy.spec(),
            instance,
            opts: options,
            tasks: None,
        };
        let shared = Arc::clone(&self.shared);
        let (control, rx) = self.shared.publish(move |seq| {
            let (state, rx) = JobState::new(shared, seq, new);
            (
                state.clone() as ErasedJob<S>,
                (state as Arc<dyn Control>, rx),
            )
        });
        Ok(Job::new(control, rx, delivery))
    }

    /// The strategy's queues for a new job on these workers.
    pub(crate) fn instance(
        &self,
        strategy: &dyn Strategy,
        seed: u64,
    ) -> Result<crate::strategy::Instance, RunError> {
        strategy.validate(self.shared.workers)?;
        let ctx = Context {
            nodes: self.shared.slots.iter().map(|s| s.node).collect(),
            speeds: self.shared.speeds.clone(),
            seed,
        };
        let broke = |message: String| RunError::Strategy {
            strategy: strategy.spec(),
            message,
        };
        let instance = catch_unwind(AssertUnwindSafe(|| strategy.build(&ctx)))
            .map_err(|p| broke(format!("build() panicked: {}", panic_message(p))))?;
        if instance.workers.len() != self.shared.workers {
            return Err(broke(format!(
                "built {} worker queues for {} workers",
                instance.workers.len(),
                self.shared.workers
            )));
        }
        Ok(instance)
    }

    /// Run a job that borrows from the caller (`run_threads`): every id of `tasks` is
    /// promised up front, outcomes are discarded, and the report is returned once done.
    ///
    /// The pool must be dropped before `'a` ends; `run_threads` owns the pool it uses.
    pub(crate) fn run_borrowed<'a, F>(
        &self,
        strategy: &dyn Strategy,
        instance: crate::strategy::Instance,
        options: JobOptions,
        tasks: crate::spec::Tasks<'a>,
        f: F,
    ) -> Result<crate::RunReport, RunError>
    where
        F: Fn(TaskId, WorkerId, &mut S) + Send + Sync + 'a,
    {
        let new = NewJob {
            f,
            strategy: strategy.spec(),
            instance,
            opts: options,
            tasks: Some(tasks),
        };
        let shared = Arc::clone(&self.shared);
        let state = self.shared.publish(move |seq| {
            let (state, _rx) = JobState::<'a, S, (), F>::new(shared, seq, new);
            // SAFETY: the job borrows for 'a; the caller drops (joins) this pool before 'a
            // ends, and `report` below waits until every worker has let go of the job.
            let erased = unsafe { super::job::erase(state.clone()) };
            (erased, state)
        });
        state.report()
    }
}

impl<S: 'static> Drop for Pool<S> {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        for job in lock(&self.shared.jobs).iter() {
            job.halt(Stop::PoolClosed);
        }
        self.shared.sleep.notify(true);
        let mut handles = std::mem::take(&mut self.handles);
        if let Some(grace) = self.grace {
            let deadline = std::time::Instant::now() + grace;
            let mut pause = std::time::Duration::from_micros(100);
            while handles.iter().any(|h| !h.is_finished()) {
                let now = std::time::Instant::now();
                if now >= deadline {
                    break;
                }
                std::thread::sleep(pause.min(deadline - now));
                pause = (pause * 2).min(std::time::Duration::from_millis(10));
            }
            let (done, stuck): (Vec<_>, Vec<_>) =
                handles.into_iter().partition(|h| h.is_finished());
            if !stuck.is_empty() {
                eprintln!(
                    "schedlab: pool: {} worker(s) still in a task {} ms after the pool was dropped; left running, detached",
                    stuck.len(),
                    grace.as_millis()
                );
            }
            handles = done; // the others are detached: dropping a handle does not join
        }
        join_all(handles);
    }
}
