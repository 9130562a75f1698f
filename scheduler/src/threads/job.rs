//! Jobs: one strategy instance fed ids while a pool's workers run them.
//!
//! A [`Job`] is the caller's handle: it submits ids (with back-pressure), closes, and takes
//! outcomes back in id order or as they are ready. Its shared state, [`JobState`], is what
//! the workers see through the type-erased [`JobCore`] (attach a worker) and [`Runner`] (one
//! worker's view: step, retire). `README.md` beside this file describes the protocol.

use std::collections::VecDeque;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::error::RunError;
use crate::report::{finish, Failure, Histograms, Host, Meta, RunReport, Tally, WorkerInfo};
use crate::spec::{Labels, Tasks, Timing};
use crate::strategy::{Batch, Instance, Next, SharedQueue, Source, WorkerQueue};
use crate::{TaskId, WorkerId};

use super::ending::Ending;
use super::pool::PoolShared;
use super::room::Room;
use super::waiting::ConsumerWait;
use super::worker::{is_worker_of, wait_working};

/// How a job hands outcomes back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Delivery {
    /// In id (= submission) order, through a reorder window of at most `max_in_flight`.
    #[default]
    Ordered,
    /// As soon as each task finishes.
    AsReady,
    /// Not at all: only the report counts them (what `run_threads` uses).
    Discard,
}

/// How a job runs. Built with [`JobOptions::default`] and the setters.
///
/// ```
/// use scheduler::{Delivery, JobOptions};
/// let o = JobOptions::default().max_in_flight(256).delivery(Delivery::AsReady).seed(7);
/// assert_eq!((o.max_in_flight, o.delivery, o.seed), (256, Delivery::AsReady, 7));
/// ```
#[derive(Clone, Debug)]
pub struct JobOptions {
    /// At most this many ids submitted but not yet taken back (delivered by [`Job::next`],
    /// or finished, with [`Delivery::Discard`]). Bounds the memory a job holds.
    pub max_in_flight: usize,
    /// Ordered, as ready, or discarded outcomes.
    pub delivery: Delivery,
    /// The seed of the job's strategy instance.
    pub seed: u64,
    /// Per-task measurement.
    pub timing: Timing,
    /// Keep at most this many timeline spans in the report.
    pub timeline_cap: usize,
    /// Labels copied into the report.
    pub labels: Labels,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            max_in_flight: 1024,
            delivery: Delivery::Ordered,
            seed: 0,
            timing: Timing::Tasks,
            timeline_cap: 0,
            labels: Labels::default(),
        }
    }
}

impl JobOptions {
    /// Set [`JobOptions::max_in_flight`] (at least 1).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Set the delivery.
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// Set the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Set the timing mode.
    pub fn timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Keep a timeline of at most `cap` spans.
    pub fn timeline(mut self, cap: usize) -> Self {
        self.timeline_cap = cap;
        self
    }

    /// Set the report's labels.
    pub fn labels(mut self, labels: Labels) -> Self {
        self.labels = labels;
        self
    }
}

/// One finished task: its id and what it returned, or why it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome<T> {
    /// The task id.
    pub task: TaskId,
    /// The value, or the task's panic.
    pub result: Result<T, Failure>,
}

/// Why a job refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// No room: the ids would exceed `max_in_flight` (take outcomes back first).
    #[error("the job is full: {max_in_flight} ids in flight")]
    Full {
        /// The job's bound.
        max_in_flight: usize,
    },
    /// The job was closed: no more submissions.
    #[error("the job is closed")]
    Closed,
    /// The job was cancelled, the pool shut down, or the strategy broke its contract.
    #[error("the job was stopped")]
    Stopped,
    /// Nothing arrived in time.
    #[error("timed out waiting for an outcome")]
    TimedOut,
    /// A task waited on its own job (an outcome, room, or its end) from the worker that runs
    /// it, directly or through waits further up that worker's stack: that worker cannot run
    /// the job's other tasks until this one returns, so the wait could deadlock. Raised at
    /// once, and only when the wait would block.
    #[error(
        "a task waited on its own job: its worker cannot run that job's other tasks while it waits"
    )]
    OwnJob,
    /// Waits inside tasks (each running the pool's work, whose tasks wait in turn) nested
    /// deeper than `max` on one worker.
    #[error("waits inside tasks nested more than {max} deep on one worker")]
    TooDeep {
        /// The bound.
        max: usize,
    },
}

/// What a worker sends back per task.
pub(crate) enum Msg<T> {
    Done(TaskId, Result<T, Failure>),
    /// The job was closed: a consumer waiting on an empty job looks again.
    Closed,
    Stopped,
}

/// Why a job stopped early.
#[derive(Clone, Debug)]
pub(crate) enum Stop {
    Cancelled,
    PoolClosed,
    Strategy(String),
}

/// Ids with release times (open arrivals of `run_threads`): handed to the strategy when due by
/// whichever worker looks first; every idle worker keeps time (README).
pub(crate) struct Releases<'a> {
    pub(crate) times: &'a [u64],
    pub(crate) next: AtomicUsize,
    pub(crate) lock: Mutex<()>,
}

/// What the submission side guards.
struct Submit {
    next_id: usize,
    closed: bool,
}

/// Per worker at the end of a job.
pub(crate) struct WorkerEnd {
    tally: Tally,
    hist: Histograms,
    last_end_ns: u64,
}

struct Ends {
    list: Vec<Option<WorkerEnd>>,
    retired: usize,
}

/// A job's state, shared by its handle and every worker.
pub(crate) struct JobState<'a, S, T, F> {
    pub(crate) seq: u64,
    pool: Arc<PoolShared<S>>,
    f: F,
    strategy: String,
    shared: Arc<dyn SharedQueue>,
    queues: Mutex<Vec<Option<Box<dyn WorkerQueue>>>>,
    t0: Instant,
    opts: JobOptions,
    /// Ids submitted and completed, closed, over (`ending.rs`).
    ending: Ending,
    stop: Mutex<Option<Stop>>,
    /// The submission lock and back-pressure: ids taken back, blocked submitters (`room.rs`).
    room: Room<Submit>,
    tx: Option<Sender<Msg<T>>>,
    ends: Mutex<Ends>,
    ended: Condvar,
    /// `ends.retired`, readable without the lock (a finishing caller spins on it first).
    retired: AtomicUsize,
    releases: Option<Releases<'a>>,
    tasks: Option<Tasks<'a>>,
    /// The consumer waits for an outcome inside a task of this pool, running its work: a
    /// delivery wakes the pool's sleepers (README: "Waiting inside a task"). On a line of its
    /// own: every delivery reads it.
    consumer_waits: CachePadded<ConsumerWait>,
    /// Debug builds: the ids handed out so far, to catch one handed out twice.
    #[cfg(debug_assertions)]
    claims: super::claims::Claims,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The message of a panic payload, dropping the payload safely: a payload whose own `Drop`
/// panics is leaked instead of unwinding into the worker.
pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_string());
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
    message
}

/// Everything a new job needs besides the pool.
pub(crate) struct NewJob<'a, F> {
    pub(crate) f: F,
    pub(crate) strategy: String,
    pub(crate) instance: Instance,
    pub(crate) opts: JobOptions,
    pub(crate) tasks: Option<Tasks<'a>>,
}

impl<'a, S, T, F> JobState<'a, S, T, F>
where
    S: 'static,
    T: Send + 'a,
    F: Fn(TaskId, WorkerId, &mut S) -> T + Send + Sync + 'a,
{
    /// A job of `pool`; with `tasks` given (run_threads) every id is promised up front:
    /// released at once if closed, or when due if they carry release times.
    pub(crate) fn new(
        pool: Arc<PoolShared<S>>,
        seq: u64,
        job: NewJob<'a, F>,
    ) -> (Arc<Self>, Option<Receiver<Msg<T>>>) {
        let p = pool.workers;
        let (tx, rx) = match job.opts.delivery {
            Delivery::Discard => (None, None),
            _ => {
                let (tx, rx) = mpsc::channel();
                (Some(tx), Some(rx))
            }
        };
        let mut releases = None;
        let mut promised = 0;
        if let Some(tasks) = job.tasks {
            promised = tasks.n;
            match tasks.release_ns {
                Some(times) if !tasks.is_closed() => {
                    releases = Some(Releases {
                        times,
                        next: AtomicUsize::new(0),
                        lock: Mutex::new(()),
                    })
                }
                _ if tasks.n > 0 => job.instance.shared.submit(batch(&tasks, 0..tasks.n)),
                _ => {}
            }
        }
        let state = Arc::new(JobState {
            seq,
            f: job.f,
            strategy: job.strategy,
            shared: job.instance.shared,
            queues: Mutex::new(job.instance.workers.into_iter().map(Some).collect()),
            t0: Instant::now(),
            // A bound of 0 could never admit an id: it means 1.
            opts: JobOptions {
                max_in_flight: job.opts.max_in_flight.max(1),
                ..job.opts
            },
            ending: Ending::new(
                promised,
                job.tasks.is_some(),
                job.tasks.is_some_and(|t| t.n == 0),
            ),
            stop: Mutex::new(None),
            room: Room::new(Submit {
                next_id: promised,
                closed: job.tasks.is_some(),
            }),
            tx,
            ends: Mutex::new(Ends {
                list: (0..p).map(|_| None).collect(),
                retired: 0,
            }),
            ended: Condvar::new(),
            retired: AtomicUsize::new(0),
            releases,
            tasks: job.tasks,
            consumer_waits: CachePadded::new(ConsumerWait::default()),
            #[cfg(debug_assertions)]
            claims: Default::default(),
            pool,
        });
        (state, rx)
    }

    #[inline]
    fn since_start(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    fn stopped(&self) -> Option<Stop> {
        lock(&self.stop).clone()
    }

    /// Stop the job early: workers retire it, the consumer and blocked submitters wake.
    pub(crate) fn halt(&self, why: Stop) {
        {
            let mut stop = lock(&self.stop);
            if stop.is_some() {
                return;
            }
            *stop = Some(why);
        }
        self.ending.stop();
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Stopped);
        }
        self.room.wake_all();
        self.pool.sleep.notify(true);
    }

    /// All promised ids have completed and no more will come: the job is over.
    fn check_over(&self) {
        if self.ending.check() {
            self.pool.sleep.notify(true);
        }
    }

    /// `k` ids were taken back: make room and wake a blocked submitter (one that waits
    /// inside a task parks with the pool's workers).
    #[inline]
    fn took(&self, k: usize) {
        if self.room.took(k) {
            self.pool.sleep.notify(true);
        }
    }

    fn in_flight(&self) -> usize {
        self.ending.submitted() - self.room.taken()
    }

    /// Submit `count` ids (with estimates if given); `wait` blocks for room.
    fn submit_ids(
        &self,
        count: usize,
        estimates: Option<&[u64]>,
        wait: bool,
    ) -> Result<Range<TaskId>, JobError> {
        let cap = self.opts.max_in_flight;
        let mut s = self.room.lock();
        let start = s.next_id;
        let mut done = 0;
        while done < count {
            if s.closed {
                return Err(JobError::Closed);
            }
            if self.ending.is_over() {
                return Err(JobError::Stopped);
            }
            let submitted = self.ending.submitted();
            let room = self.room.free(cap, submitted);
            if room == 0 || (!wait && room < count - done) {
                if !wait {
                    return Err(JobError::Full { max_in_flight: cap });
                }
                if !is_worker_of(&self.pool) {
                    s = self.room.wait(s, cap, submitted);
                    continue;
                }
                // Inside a task of this pool: run its work until there is room (the lock is
                // let go meanwhile, as the condition variable's wait does). Counted among the
                // waiters, so that `took` wakes the pool's sleepers.
                drop(s);
                self.room.enter_wait();
                let waited = wait_working(&self.pool, self.seq, None, &mut || {
                    self.ending.is_over()
                        || self.ending.is_closed()
                        || self.room.free(cap, self.ending.submitted()) > 0
                });
                self.room.leave_wait();
                if let Some(Err(e)) = waited {
                    return Err(e);
                }
                s = self.room.lock();
                continue;
            }
            let k = room.min(count - done);
            let ids = s.next_id..s.next_id + k;
            let b = match estimates {
                Some(e) => Batch::with_estimates(ids.clone(), &e[done..done + k]),
                None => Batch::new(ids.clone()),
            };
            self.ending.submit(k);
            self.shared.submit(b);
            s.next_id += k;
            done += k;
            // Wake every sleeper: a strategy may have placed the ids on one particular worker.
            self.pool.sleep.notify(true);
        }
        Ok(start..start + count)
    }

    fn close(&self) {
        {
            let mut s = self.room.lock();
            if s.closed {
                return;
            }
            s.closed = true;
        }
        self.ending.close();
        self.room.notify_all();
        if self.room.waiters() > 0 {
            // A submitter waiting inside a task parks with the workers.
            self.pool.sleep.notify(true);
        }
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Closed);
            self.wake_consumer();
        }
        self.check_over();
    }

    /// Wait until every worker has retired the job, then build its report.
    fn report(&self) -> Result<RunReport, RunError> {
        self.close();
        let workers = self.pool.workers;
        let all_retired = || self.retired.load(SeqCst) == workers;
        if !all_retired() {
            // Inside a task of this pool: run its work until every worker has let go (the last
            // to retire wakes the pool's sleepers).
            match wait_working(&self.pool, self.seq, None, &mut || all_retired()) {
                Some(r) => r.map_err(RunError::NestedWait)?,
                None => {
                    // A short job is often over within microseconds: spin, then yield, a
                    // bounded number of rounds before blocking (a wake-up through the
                    // condition variable costs more).
                    for round in 0..64 {
                        if all_retired() {
                            break;
                        }
                        if round < 32 {
                            std::hint::spin_loop();
                        } else {
                            std::thread::yield_now();
                        }
                    }
                }
            }
        }
        let mut ends = lock(&self.ends);
        while ends.retired < self.pool.workers {
            ends = self
                .ended
                .wait(ends)
                .unwrap_or_else(PoisonError::into_inner);
        }
        match self.stopped() {
            Some(Stop::Strategy(message)) => {
                return Err(RunError::Strategy {
                    strategy: self.strategy.clone(),
                    message,
                })
            }
            Some(Stop::PoolClosed) => return Err(RunError::PoolClosed),
            Some(Stop::Cancelled) | None => {}
        }
        let ends: Vec<WorkerEnd> = ends.list.iter_mut().map(|e| e.take().unwrap()).collect();
        Ok(self.build_report(ends))
    }

    fn build_report(&self, ends: Vec<WorkerEnd>) -> RunReport {
        let pool = &self.pool;
        let p = pool.workers;
        let makespan_ns = ends.iter().map(|e| e.last_end_ns).max().unwrap_or(0);
        let mut notes = Vec::new();
        let cpus = pool.topology.cpus();
        if p > cpus {
            notes.push(format!("oversubscribed: {p} workers on {cpus} cpus"));
        }
        let refused: Vec<String> = (0..p)
            .filter(|&w| pool.pinned(w) == Some(false))
            .map(|w| w.to_string())
            .collect();
        if !refused.is_empty() {
            notes.push(format!("pinning refused for workers {}", refused.join(",")));
        }
        let info: Vec<WorkerInfo> = (0..p)
            .map(|w| WorkerInfo {
                cpu: pool.slots[w].cpu.filter(|_| pool.pinned(w) == Some(true)),
                node: pool.slots[w].node,
                speed: pool.speeds[w],
            })
            .collect();
        let tasks = self
            .tasks
            .unwrap_or_else(|| Tasks::closed(self.ending.submitted()));
        let labels = &self.opts.labels;
        let meta = Meta {
            engine: "threads",
            strategy: self.strategy.clone(),
            workload: labels.workload.clone(),
            kind: labels.kind.clone(),
            arrivals: labels.arrivals.clone(),
            pin: pool.pin.to_string(),
            seed: self.opts.seed,
            tasks: tasks.n,
            timing: self.opts.timing.label(),
            host: Host {
                cpus,
                nodes: pool.topology.nodes.len(),
                topology_source: pool.topology.source,
            },
            timeline_cap: self.opts.timeline_cap,
            notes,
        };
        let mut hist = Histograms::new();
        let mut tallies = Vec::with_capacity(p);
        for end in ends {
            hist.merge(&end.hist);
            tallies.push(end.tally);
        }
        finish(meta, &info, tallies, &hist, makespan_ns, &tasks)
    }
}

fn batch<'a>(tasks: &Tasks<'a>, ids: Range<usize>) -> Batch<'a> {
    match tasks.estimate_ns {
        Some(e) => Batch::with_estimates(ids.clone(), &e[ids]),
        None => Batch::new(ids),
    }
}

/// The caller's control of a job, without its outcome type (for [`Submitter`]).
pub(crate) trait Control: Send + Sync {
    fn submit_ids(
        &self,
        count: usize,
        estimates: Option<&[u64]>,
        wait: bool,
    ) -> Result<Range<TaskId>, JobError>;
    fn close(&self);
    fn is_closed(&self) -> bool;
    fn halt(&self, why: Stop);
    fn in_flight(&self) -> usize;
    fn submitted(&self) -> usize;
    fn max_in_flight(&self) -> usize;
    fn took(&self, k: usize);
    fn report(&self) -> Result<RunReport, RunError>;
    /// The consumer found no message: if this thread is a worker of the job's pool, run its
    /// work until `ready()` (a look at the channel) or `deadline`; `None` if it is not one.
    fn wait_for_outcome(
        &self,
        deadline: Option<Instant>,
        ready: &mut dyn FnMut() -> bool,
    ) -> Option<Result<(), JobError>>;
}

impl<'a, S, T, F> Control for JobState<'a, S, T, F>
where
    S: 'static,
    T: Send + 'a,
    F: Fn(TaskId, WorkerId, &mut S) -> T + Send + Sync + 'a,
{
    fn submit_ids(
        &self,
        count: usize,
        estimates: Option<&[u64]>,
        wait: bool,
    ) -> Result<Range<TaskId>, JobError> {
        JobState::submit_ids(self, count, estimates, wait)
    }
    fn close(&self) {
        JobState::close(self)
    }
    fn is_closed(&self) -> bool {
        self.ending.is_closed()
    }
    fn halt(&self, why: Stop) {
        JobState::halt(self, why)
    }
    fn in_flight(&self) -> usize {
        JobState::in_flight(self)
    }
    fn submitted(&self) -> usize {
        self.ending.submitted()
    }
    fn max_in_flight(&self) -> usize {
        self.opts.max_in_flight
    }
    fn took(&self, k: usize) {
        JobState::took(self, k)
    }
    fn report(&self) -> Result<RunReport, RunError> {
        JobState::report(self)
    }
    fn wait_for_outcome(
        &self,
        deadline: Option<Instant>,
        ready: &mut dyn FnMut() -> bool,
    ) -> Option<Result<(), JobError>> {
        /// Lowers the flag however the wait ends.
        struct Waiting<'f>(&'f ConsumerWait);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.leave();
            }
        }
        if !is_worker_of(&self.pool) {
            return None;
        }
        // Either a worker that delivers after this sees the flag and wakes the pool's
        // sleepers, or every look at the channel from here on sees its message.
        self.consumer_waits.enter();
        let _waiting = Waiting(&self.consumer_waits);
        wait_working(&self.pool, self.seq, deadline, ready)
    }
}

/// What one step of a worker on one job came to.
pub(crate) enum Step {
    /// Ran a pick.
    Ran,
    /// Nothing now.
    Empty,
    /// Lost a race; look again.
    Retry,
    /// Nothing now; this worker keeps time for a release due at this instant.
    Keep(Instant),
    /// The job is over for workers: retire it.
    Over,
}

/// A job as the pool's workers see it. `'a` is what the job borrows: `'static` for
/// [`Pool::job`](super::Pool::job); a caller's stack frame for `run_threads`, which erases it
/// with [`erase`] and joins the pool before that frame ends.
pub(crate) trait JobCore<'a, S>: Send + Sync {
    fn seq(&self) -> u64;
    /// Worker `w` takes its queue; called once per worker, on first sight.
    fn attach(self: Arc<Self>, w: WorkerId) -> Box<dyn Runner<S> + 'a>;
    fn halt(&self, why: Stop);
}

/// A job's core with its borrow erased, as the pool keeps it.
pub(crate) type ErasedJob<S> = Arc<dyn JobCore<'static, S>>;

/// Erase the lifetime of a job's borrows.
///
/// # Safety
/// Nothing may use the job (call its function, read its task table) once `'a` ends: the caller
/// must halt or finish the job and join every worker of the pool before then.
pub(crate) unsafe fn erase<'a, S: 'static>(job: Arc<dyn JobCore<'a, S> + 'a>) -> ErasedJob<S> {
    // SAFETY: the two types differ only in lifetimes, so they have the same layout; the caller
    // guarantees that the pool's workers are joined before `'a` ends.
    unsafe { std::mem::transmute::<Arc<dyn JobCore<'a, S> + 'a>, ErasedJob<S>>(job) }
}

/// One worker's hold on one job.
pub(crate) trait Runner<S> {
    fn step(&mut self, state: &mut S) -> Step;
    /// The worker parked: parked time is not scheduling overhead.
    fn woke(&mut self);
    fn retire(self: Box<Self>);
}

impl<'a, S, T, F> JobCore<'a, S> for JobState<'a, S, T, F>
where
    S: 'static,
    T: Send + 'a,
    F: Fn(TaskId, WorkerId, &mut S) -> T + Send + Sync + 'a,
{
    fn seq(&self) -> u64 {
        self.seq
    }

    fn attach(self: Arc<Self>, w: WorkerId) -> Box<dyn Runner<S> + 'a> {
        let q = lock(&self.queues)[w]
            .take()
            .expect("a worker attaches to a job once");
        let (speed, max_speed) = (self.pool.speeds[w], self.pool.max_speed);
        let tally = Tally::new(speed, max_speed, self.opts.timeline_cap);
        let timed = self.opts.timing == Timing::Tasks;
        let flush_each = self.tx.is_none() && self.opts.max_in_flight != usize::MAX;
        Box::new(Attached {
            job: self,
            w,
            q,
            tally,
            hist: Histograms::new(),
            last_end_ns: 0,
            prev_end: 0,
            unflushed: 0,
            timed,
            known_submitted: 0,
            flush_each,
        })
    }

    fn halt(&self, why: Stop) {
        JobState::halt(self, why)
    }
}

/// Worker `w`'s hold on a job: its queue and its tallies.
#[repr(align(128))]
struct Attached<'a, S, T, F> {
    job: Arc<JobState<'a, S, T, F>>,
    w: WorkerId,
    q: Box<dyn WorkerQueue>,
    tally: Tally,
    hist: Histograms,
    last_end_ns: u64,
    prev_end: u64,
    /// Completions not yet added to `job.completed`.
    unflushed: usize,
    timed: bool,
    /// `job.submitted` when last read (ids below it are known to be submitted).
    known_submitted: usize,
    /// Flush completions after every pick (back-pressure counts them).
    flush_each: bool,
}

impl<'a, S, T, F> Attached<'a, S, T, F>
where
    S: 'static,
    T: Send + 'a,
    F: Fn(TaskId, WorkerId, &mut S) -> T + Send + Sync + 'a,
{
    /// Add this worker's completions to the job's count.
    fn flush(&mut self) {
        if self.unflushed == 0 {
            return;
        }
        if !self.timed {
            self.last_end_ns = self.job.since_start();
        }
        let k = std::mem::take(&mut self.unflushed);
        self.job.ending.completed(k);
        if self.job.tx.is_none() {
            self.job.took(k);
        }
        self.job.check_over();
    }

    /// Up to `budget` picks in a row: `Ran` if any ran, else `Retry` or `Empty`; `Err` names
    /// a broken contract (an id never submitted, or, in debug builds, handed out twice).
    #[inline]
    fn picks(&mut self, state: &mut S, mut budget: u32) -> Result<Step, String> {
        if !self.timed && self.job.tx.is_none() && !self.flush_each {
            return self.fast_picks(state, budget);
        }
        let mut ran = false;
        loop {
            match self.q.next() {
                Next::Task(pick) => {
                    let end = pick.task.saturating_add(pick.count as usize);
                    if pick.count == 0 || end > self.known_submitted {
                        self.known_submitted = self.job.ending.submitted();
                        if pick.count == 0 || end > self.known_submitted {
                            return Err(unsubmitted(self.w, pick.task, end, self.known_submitted));
                        }
                    }
                    #[cfg(debug_assertions)]
                    if let Some(id) = self.job.claims.claim(pick.task, end) {
                        return Err(twice(self.w, id));
                    }
                    self.run_pick(state, pick);
                    if self.flush_each {
                        // Back-pressure counts completions here: keep the count current.
                        self.flush();
                    }
                    ran = true;
                    budget -= 1;
                    if budget == 0 {
                        return Ok(Step::Ran); // the next step looks at `over` first
                    }
                }
                Next::Retry(a) => {
                    self.tally.steal_attempts += u64::from(a.total());
                    return Ok(if ran { Step::Ran } else { Step::Retry });
                }
                Next::Empty(a) => {
                    self.tally.steal_attempts += u64::from(a.total());
                    self.flush();
                    // After a run, the next step finds Empty again and idles.
                    return Ok(if ran { Step::Ran } else { Step::Empty });
                }
            }
        }
    }

    /// [`Attached::picks`] for timing off and outcomes discarded (`run_threads` under a
    /// benchmark): counters kept in locals, no clock, no channel.
    fn fast_picks(&mut self, state: &mut S, mut budget: u32) -> Result<Step, String> {
        let Attached {
            job,
            w,
            q,
            tally,
            unflushed,
            known_submitted,
            ..
        } = self;
        let (job, w): (&JobState<'a, S, T, F>, WorkerId) = (job, *w);
        let mut known = *known_submitted;
        let mut ran = 0u64;
        let mut empty = false;
        let result = loop {
            match q.next() {
                Next::Task(pick) => {
                    let end = pick.task.saturating_add(pick.count as usize);
                    if pick.count == 0 || end > known {
                        known = job.ending.submitted();
                        if pick.count == 0 || end > known {
                            break Err(unsubmitted(w, pick.task, end, known));
                        }
                    }
                    #[cfg(debug_assertions)]
                    if let Some(id) = job.claims.claim(pick.task, end) {
                        break Err(twice(w, id));
                    }
                    if pick.source != Source::Local || pick.attempts.total() > 0 {
                        tally.picked(pick.source, pick.attempts); // a local pick changes no tally
                    }
                    if let Source::Stolen { moved, .. } = pick.source {
                        if moved > 1 {
                            job.pool.sleep.notify(false);
                        }
                    }
                    if pick.count == 1 {
                        let task = pick.task;
                        if let Err(p) = catch_unwind(AssertUnwindSafe(|| (job.f)(task, w, state))) {
                            deliver(job, tally, w, task, Err(p));
                        }
                        ran += 1;
                    } else {
                        for task in pick.tasks() {
                            if job.ending.is_over_relaxed() {
                                break; // cancelled: the rest of the run is skipped
                            }
                            let outcome =
                                catch_unwind(AssertUnwindSafe(|| (job.f)(task, w, state)));
                            if let Err(p) = outcome {
                                deliver(job, tally, w, task, Err(p));
                            }
                            ran += 1;
                        }
                    }
                    budget -= 1;
                    if budget == 0 {
                        break Ok(Step::Ran); // the next step looks at `over` first
                    }
                }
                Next::Retry(a) => {
                    tally.steal_attempts += u64::from(a.total());
                    break Ok(if ran > 0 { Step::Ran } else { Step::Retry });
                }
                Next::Empty(a) => {
                    tally.steal_attempts += u64::from(a.total());
                    empty = true;
                    break Ok(if ran > 0 { Step::Ran } else { Step::Empty });
                }
            }
        };
        tally.tasks += ran;
        *unflushed += ran as usize;
        *known_submitted = known;
        if empty {
            self.flush();
        }
        result
    }

    fn run_pick(&mut self, state: &mut S, pick: crate::strategy::Pick) {
        let Attached {
            job,
            w,
            q,
            tally,
            hist,
            last_end_ns,
            prev_end,
            unflushed,
            timed,
            ..
        } = self;
        let (job, w): (&JobState<'a, S, T, F>, WorkerId) = (job, *w);
        tally.picked(pick.source, pick.attempts);
        if let Source::Stolen { moved, .. } = pick.source {
            if moved > 1 {
                // This worker's queue now holds stealable work: let a sleeper look.
                job.pool.sleep.notify(false);
            }
        }
        let mut ran = 0u64;
        if *timed {
            for task in pick.tasks() {
                if ran > 0 && job.ending.is_over_relaxed() {
                    break; // cancelled: the rest of the run is skipped
                }
                ran += 1;
                let start = job.since_start();
                let outcome = catch_unwind(AssertUnwindSafe(|| (job.f)(task, w, state)));
                let stop = job.since_start();
                tally.overhead_ns += start.saturating_sub(*prev_end);
                let release = job.tasks.map_or(0, |t| t.release(task));
                tally.ran(hist, w, task, release, start, stop);
                q.completed(task, stop - start);
                *prev_end = stop;
                deliver(job, tally, w, task, outcome);
            }
            *last_end_ns = *prev_end;
        } else if pick.count == 1 && job.tx.is_none() {
            // The tightest path (one id, outcome discarded): what `run_threads` with timing
            // off spends per task under a stealing strategy.
            let task = pick.task;
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| (job.f)(task, w, state))) {
                deliver(job, tally, w, task, Err(payload));
            }
            ran = 1;
            tally.tasks += 1;
        } else {
            // The tight loop: no clock, no feedback.
            for task in pick.tasks() {
                if ran > 0 && job.ending.is_over_relaxed() {
                    break; // cancelled: the rest of the run is skipped
                }
                ran += 1;
                let outcome = catch_unwind(AssertUnwindSafe(|| (job.f)(task, w, state)));
                deliver(job, tally, w, task, outcome);
            }
            tally.tasks += ran;
        }
        *unflushed += ran as usize;
    }
}

/// The message for a pick of ids never submitted. Out of line and taking its arguments by
/// value: formatting them in place would take the address of the pick, which keeps the whole
/// `Next` in memory and copies it there after every `next()` with wide loads that cannot be
/// forwarded from the strategy's narrower stores (a stall of tens of cycles per pick).
#[cold]
#[inline(never)]
fn unsubmitted(w: WorkerId, task: TaskId, end: usize, known: usize) -> String {
    format!("worker {w} was handed ids {task}..{end} but only {known} were submitted")
}

/// The message for an id handed out a second time (checked in debug builds).
#[cfg(debug_assertions)]
#[cold]
#[inline(never)]
fn twice(w: WorkerId, task: TaskId) -> String {
    format!("handed out task {task} twice (the second time to worker {w})")
}

/// Hand due ids to the strategy; the time (ns since the job began) the next one is due, if any.
fn release_due<S, T, F>(job: &JobState<'_, S, T, F>, rel: &Releases<'_>) -> Option<u64> {
    let next = rel.next.load(SeqCst);
    let n = rel.times.len();
    if next >= n {
        return None;
    }
    let now = job.t0.elapsed().as_nanos() as u64;
    if rel.times[next] > now {
        return Some(rel.times[next]);
    }
    let Ok(_guard) = rel.lock.try_lock() else {
        // Another worker is releasing right now and wakes everyone when done; keeping time
        // here would spin against it (if it was preempted, on its cpu).
        return None;
    };
    let next = rel.next.load(SeqCst);
    let due = next + rel.times[next..].partition_point(|&t| t <= now);
    if due > next {
        let tasks = job.tasks.as_ref().expect("releases come with a task table");
        job.shared.submit(batch(tasks, next..due));
        rel.next.store(due, SeqCst);
        // Wake the sleepers: the strategy may have placed the ids on particular workers.
        job.pool.sleep.notify(true);
    }
    rel.times.get(due).copied()
}

impl<S, T, F> JobState<'_, S, T, F> {
    /// A message went to the consumer: if it waits inside a task of this pool (parked with the
    /// workers, not on the channel), wake it.
    #[inline]
    fn wake_consumer(&self) {
        if self.consumer_waits.sent() {
            self.pool.sleep.notify(true);
        }
    }
}

/// Record a task's outcome and send it to the consumer.
#[inline]
fn deliver<S, T, F>(
    job: &JobState<'_, S, T, F>,
    tally: &mut Tally,
    worker: WorkerId,
    task: TaskId,
    outcome: std::thread::Result<T>,
) {
    let result = match outcome {
        Ok(v) => Ok(v),
        Err(payload) => {
            let failure = Failure {
                task,
                worker,
                message: panic_message(payload),
            };
            tally.failed(failure.clone());
            Err(failure)
        }
    };
    if let Some(tx) = &job.tx {
        // The receiver may be gone (a cancelled or finished job); the outcome is then dropped.
        let _ = tx.send(Msg::Done(task, result));
        job.wake_consumer();
    }
}

impl<'a, S, T, F> Runner<S> for Attached<'a, S, T, F>
where
    S: 'static,
    T: Send + 'a,
    F: Fn(TaskId, WorkerId, &mut S) -> T + Send + Sync + 'a,
{
    fn step(&mut self, state: &mut S) -> Step {
        if self.job.ending.is_over() {
            return Step::Over;
        }
        let mut due = None;
        if let Some(rel) = &self.job.releases {
            due = release_due(&self.job, rel);
        }
        // Run picks back to back while the strategy has them (at most a budget, so that older
        // jobs and releases are looked at again soon), without going round the worker loop.
        // One `catch_unwind` covers the strategy's calls (tasks have their own): a panic in
        // `next` is the strategy's bug, and stops the job.
        let budget: u32 = if self.job.releases.is_some() { 1 } else { 64 };
        match catch_unwind(AssertUnwindSafe(|| self.picks(state, budget))) {
            Ok(Ok(step)) => match step {
                // Every idle worker keeps time (README: "Open arrivals"): with one keeper, a
                // keeper that lost its cpu (to a neighbour, or stacked by the kernel on the cpu
                // of a worker running a task) held up every release while the other workers
                // slept without a deadline.
                Step::Empty => match due {
                    Some(t) => Step::Keep(self.job.t0 + Duration::from_nanos(t)),
                    None => Step::Empty,
                },
                other => other,
            },
            Ok(Err(message)) => {
                self.job.halt(Stop::Strategy(message));
                Step::Over
            }
            Err(payload) => {
                self.job.halt(Stop::Strategy(format!(
                    "next() panicked on worker {}: {}",
                    self.w,
                    panic_message(payload)
                )));
                Step::Over
            }
        }
    }

    fn woke(&mut self) {
        if self.timed {
            self.prev_end = self.job.since_start();
        }
    }

    fn retire(mut self: Box<Self>) {
        self.flush();
        if !self.timed {
            self.tally.busy_ns = self.last_end_ns;
        }
        let this = *self;
        let Attached {
            job,
            w,
            q,
            tally,
            hist,
            last_end_ns,
            ..
        } = this;
        drop(q);
        let all = {
            let mut ends = lock(&job.ends);
            ends.list[w] = Some(WorkerEnd {
                tally,
                hist,
                last_end_ns,
            });
            ends.retired += 1;
            job.retired.store(ends.retired, SeqCst);
            ends.retired == job.pool.workers
        };
        if all {
            job.pool.forget(job.seq);
            job.ended.notify_all();
            // A `finish` waiting inside a task of this pool parks with the workers.
            job.pool.sleep.notify(true);
        }
    }
}

/// A job on a [`Pool`](super::Pool): submit ids, take outcomes back, finish for its report.
///
/// Ids are `0, 1, 2, …` in submission order. Outcomes come back in that order
/// ([`Delivery::Ordered`], the default) or as they are ready. At most
/// [`JobOptions::max_in_flight`] ids are submitted and not yet taken back: [`Job::try_submit`]
/// refuses beyond that, and a [`Submitter`] on another thread waits. Dropping a job cancels
/// it: ids not yet started are skipped.
///
/// ```
/// use scheduler::{JobOptions, Pool};
/// # use scheduler::doc_support::FifoStrategy;
/// let pool = Pool::new(2).unwrap();
/// let mut job = pool.job(&FifoStrategy, JobOptions::default(), |task, _w, _state| task * 10).unwrap();
/// job.try_submit(5).unwrap();
/// job.close();
/// let got: Vec<usize> = job.by_ref().map(|o| o.result.unwrap()).collect();
/// assert_eq!(got, vec![0, 10, 20, 30, 40]);
/// assert_eq!(job.finish().unwrap().executed, 5);
/// ```
pub struct Job<T> {
    control: Arc<dyn Control>,
    rx: Option<Receiver<Msg<T>>>,
    delivery: Delivery,
    /// Ordered: outcomes of ids `next_id..`, by `id - next_id`.
    window: VecDeque<Option<Outcome<T>>>,
    next_id: usize,
    taken: usize,
    stopped: bool,
    finished: bool,
    /// A [`Submitter`] exists: an open job with nothing in flight may still get ids.
    fed_elsewhere: bool,
}

impl<T> std::fmt::Debug for Job<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("submitted", &self.control.submitted())
            .field("taken", &self.taken)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Job<T> {
    pub(crate) fn new(
        control: Arc<dyn Control>,
        rx: Option<Receiver<Msg<T>>>,
        delivery: Delivery,
    ) -> Self {
        Job {
            control,
            rx,
            delivery,
            window: VecDeque::new(),
            next_id: 0,
            taken: 0,
            stopped: false,
            finished: false,
            fed_elsewhere: false,
        }
    }

    /// Submit the next `count` ids if there is room for all of them; never blocks.
    pub fn try_submit(&mut self, count: usize) -> Result<Range<TaskId>, JobError> {
        self.control.submit_ids(count, None, false)
    }

    /// [`Job::try_submit`] with one cost estimate per id (`estimates.len()` ids), for
    /// strategies that order by estimate.
    pub fn try_submit_with_estimates(
        &mut self,
        estimates: &[u64],
    ) -> Result<Range<TaskId>, JobError> {
        self.control
            .submit_ids(estimates.len(), Some(estimates), false)
    }

    /// A handle that submits from another thread, waiting for room.
    pub fn submitter(&mut self) -> Submitter {
        self.fed_elsewhere = true;
        Submitter {
            control: Arc::clone(&self.control),
        }
    }

    /// Room for this many more ids now.
    pub fn room(&self) -> usize {
        self.control
            .max_in_flight()
            .saturating_sub(self.control.in_flight())
    }

    /// Ids submitted and not yet taken back.
    pub fn in_flight(&self) -> usize {
        self.control.in_flight()
    }

    /// Ids submitted so far.
    pub fn submitted(&self) -> usize {
        self.control.submitted()
    }

    /// No more submissions: once every outcome is taken, [`Job::next`] returns `None`.
    pub fn close(&mut self) {
        self.control.close();
    }

    /// The next outcome (the next id's, when ordered). Blocks while one is due. `None` once
    /// every submitted id has been taken back and no more can come (the job is closed, or it
    /// has no [`Submitter`]: then more ids can only come from this handle), or when the job
    /// was stopped.
    ///
    /// Called inside a task running on this job's pool, it does not block its worker: while
    /// the outcome is due, that worker runs the pool's work (steps of its open jobs, this one
    /// included) and returns as soon as the outcome is there. So a task may open a job on its
    /// own pool and wait for it, even with one worker. See [`Pool`](super::Pool).
    ///
    /// # Panics
    /// Inside a task of this very job, when it would block ([`JobError::OwnJob`]: the worker
    /// cannot run this job's other tasks meanwhile, so it could wait forever), or with waits
    /// inside tasks nested too deep ([`JobError::TooDeep`]). [`Job::next_timeout`] returns
    /// these as errors.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Outcome<T>> {
        match self.next_inner(None) {
            Ok(o) => o,
            Err(e) => refused("Job::next", e),
        }
    }

    /// The next outcome if one is ready now.
    pub fn try_next(&mut self) -> Option<Outcome<T>> {
        self.next_inner(Some(Duration::ZERO)).unwrap_or(None)
    }

    /// [`Job::next`], waiting at most `timeout`: `Err(JobError::TimedOut)` if nothing came.
    ///
    /// Inside a task running on this job's pool the wait runs the pool's work, as
    /// [`Job::next`] does; it may then return later than `timeout` by the length of a task.
    ///
    /// # Errors
    /// [`JobError::TimedOut`]; inside a task of this pool, [`JobError::OwnJob`] or
    /// [`JobError::TooDeep`] where [`Job::next`] panics.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Outcome<T>>, JobError> {
        self.next_inner(Some(timeout))
    }

    fn next_inner(&mut self, timeout: Option<Duration>) -> Result<Option<Outcome<T>>, JobError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(o) = self.pop_ready() {
                self.taken += 1;
                self.control.took(1);
                return Ok(Some(o));
            }
            let drained = self.taken == self.control.submitted();
            let more_may_come = self.fed_elsewhere && !self.control.is_closed();
            if self.stopped || self.rx.is_none() || (drained && !more_may_come) {
                return Ok(None);
            }
            let rx = self.rx.as_ref().expect("checked above");
            let msg = match rx.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) => self.wait_message(deadline)?,
            };
            match msg {
                Some(Msg::Done(task, result)) => self.accept(Outcome { task, result }),
                Some(Msg::Closed) => {}
                Some(Msg::Stopped) | None => self.stopped = true,
            }
        }
    }

    /// Wait for the next message, none being there now; `None` if the channel is closed.
    fn wait_message(&self, deadline: Option<Instant>) -> Result<Option<Msg<T>>, JobError> {
        let rx = self.rx.as_ref().expect("a job with outcomes has a channel");
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(JobError::TimedOut);
        }
        // Inside a task of this job's pool: run its work until a message comes.
        let mut got = None;
        let mut look = || match rx.try_recv() {
            Ok(m) => {
                got = Some(Some(m));
                true
            }
            Err(TryRecvError::Disconnected) => {
                got = Some(None);
                true
            }
            Err(TryRecvError::Empty) => false,
        };
        match self.control.wait_for_outcome(deadline, &mut look) {
            Some(Ok(())) => return Ok(got.expect("the wait ends once a message came")),
            Some(Err(e)) => return Err(e),
            None => {}
        }
        match deadline {
            None => Ok(rx.recv().ok()),
            Some(d) => match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                Ok(m) => Ok(Some(m)),
                Err(RecvTimeoutError::Timeout) => Err(JobError::TimedOut),
                Err(RecvTimeoutError::Disconnected) => Ok(None),
            },
        }
    }

    fn accept(&mut self, o: Outcome<T>) {
        if self.delivery == Delivery::AsReady {
            self.window.push_back(Some(o));
            return;
        }
        let Some(slot) = o.task.checked_sub(self.next_id) else {
            return; // a second outcome for a delivered id: the strategy ran it twice
        };
        if self.window.len() <= slot {
            self.window.resize_with(slot + 1, || None);
        }
        self.window[slot] = Some(o);
    }

    fn pop_ready(&mut self) -> Option<Outcome<T>> {
        match self.window.front() {
            Some(Some(_)) => {
                self.next_id += 1;
                self.window.pop_front().flatten()
            }
            _ => None,
        }
    }

    /// Close the job, wait for every submitted id to finish (outcomes not taken are dropped)
    /// and for every worker to let go of it, and return its report.
    ///
    /// Inside a task running on this job's pool, the wait runs the pool's work (as
    /// [`Job::next`]'s does).
    ///
    /// # Errors
    /// [`RunError::Strategy`] if the strategy broke its contract, [`RunError::PoolClosed`] if
    /// the pool was dropped first, [`RunError::NestedWait`] inside a task of this very job
    /// ([`JobError::OwnJob`]: it cannot end before that task returns) or with waits nested
    /// too deep.
    pub fn finish(mut self) -> Result<RunReport, RunError> {
        self.finished = true;
        // Outcomes still queued would hold their ids in flight; drop them as they come.
        self.rx = None;
        self.control.close();
        let in_flight = self.control.submitted() - self.taken;
        if self.delivery != Delivery::Discard && in_flight > 0 {
            self.control.took(in_flight);
        }
        self.control.report()
    }
}

impl<T: Send + 'static> Iterator for Job<T> {
    type Item = Outcome<T>;

    fn next(&mut self) -> Option<Outcome<T>> {
        Job::next(self)
    }
}

impl<T> Drop for Job<T> {
    fn drop(&mut self) {
        if !self.finished {
            self.control.halt(Stop::Cancelled);
        }
    }
}

/// [`Job::next`] refused to wait: a programming error it reports by panicking.
#[cold]
#[inline(never)]
fn refused(call: &str, e: JobError) -> ! {
    panic!("{call}: {e}")
}

/// Submits to a [`Job`] from another thread, waiting for room (back-pressure).
///
/// ```
/// use scheduler::{JobOptions, Pool};
/// # use scheduler::doc_support::FifoStrategy;
/// let pool = Pool::new(2).unwrap();
/// let mut job = pool.job(&FifoStrategy, JobOptions::default().max_in_flight(4), |t, _, _| t).unwrap();
/// let submitter = job.submitter();
/// let feeder = std::thread::spawn(move || {
///     for _ in 0..100 {
///         submitter.submit(1).unwrap(); // waits while 4 are in flight
///     }
///     submitter.close();
/// });
/// let ids: Vec<usize> = job.by_ref().map(|o| o.task).collect();
/// feeder.join().unwrap();
/// assert_eq!(ids, (0..100).collect::<Vec<_>>());
/// ```
#[derive(Clone)]
pub struct Submitter {
    control: Arc<dyn Control>,
}

impl std::fmt::Debug for Submitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitter")
            .field("submitted", &self.control.submitted())
            .finish_non_exhaustive()
    }
}

impl Submitter {
    /// Submit the next `count` ids, waiting while the job is full (ids go in as room frees up;
    /// they are contiguous even with several submitters).
    ///
    /// Inside a task running on this job's pool, the wait runs the pool's work (as
    /// [`Job::next`]'s does).
    ///
    /// # Errors
    /// [`JobError::Closed`] after [`Submitter::close`], [`JobError::Stopped`] if the job was
    /// cancelled or stopped; inside a task of this pool, [`JobError::OwnJob`] (a task of this
    /// very job found it full: it frees no room while it waits) or [`JobError::TooDeep`].
    pub fn submit(&self, count: usize) -> Result<Range<TaskId>, JobError> {
        self.control.submit_ids(count, None, true)
    }

    /// [`Submitter::submit`] with one cost estimate per id.
    pub fn submit_with_estimates(&self, estimates: &[u64]) -> Result<Range<TaskId>, JobError> {
        self.control
            .submit_ids(estimates.len(), Some(estimates), true)
    }

    /// Submit only if there is room for all `count` ids now.
    pub fn try_submit(&self, count: usize) -> Result<Range<TaskId>, JobError> {
        self.control.submit_ids(count, None, false)
    }

    /// No more submissions.
    pub fn close(&self) {
        self.control.close();
    }
}
