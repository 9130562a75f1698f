//! The threads engine: real OS threads, optionally pinned, running a strategy's queues.
//!
//! Each worker runs one loop (see `README.md` beside this file for the parking and termination
//! protocol): ask the strategy for the next task; run it under `catch_unwind`; on `Empty`, spin
//! a little, then park until something changes.

mod sleep;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::engine::{meta, setup};
use crate::error::RunError;
use crate::report::{finish, Failure, Histograms, RunReport, Tally};
use crate::spec::{RunSpec, Tasks, Timing};
use crate::strategy::{Batch, Next, Source, Strategy, WorkerQueue};
use crate::topology::pin_current;
use crate::{TaskId, WorkerId};
use sleep::{Gate, Sleep};

/// Fruitless searches a worker makes (with a spin hint between them) before it yields.
const SPIN_ROUNDS: u32 = 32;
/// Further fruitless searches (with a yield between them) before it parks.
const YIELD_ROUNDS: u32 = 32;

/// What the workers of one run share.
struct Run<'a> {
    sleep: Sleep,
    gate: Gate,
    done: AtomicBool,
    completed: AtomicUsize,
    t0: std::sync::OnceLock<Instant>,
    tasks: Tasks<'a>,
    timing: Timing,
    timeline_cap: usize,
}

impl Run<'_> {
    /// Add `k` completions; true if they were the last ones (the run is then over).
    fn complete(&self, k: usize) -> bool {
        let total = self.completed.fetch_add(k, Ordering::AcqRel) + k;
        if total == self.tasks.n {
            self.done.store(true, Ordering::SeqCst);
            self.sleep.notify(true);
            true
        } else {
            false
        }
    }

    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    fn since_start(&self) -> u64 {
        let t0 = self.t0.get().expect("t0 is set before workers start");
        t0.elapsed().as_nanos() as u64
    }
}

/// What a worker hands back.
struct WorkerEnd {
    tally: Tally,
    hist: Histograms,
    last_end_ns: u64,
    pinned: Option<bool>,
}

/// Run tasks `0..tasks.n` on `spec.workers` OS threads under `strategy`, calling `f(task,
/// worker)` for each. A task that panics is counted as failed; the run still completes.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use scheduler::{run_threads, RunSpec, Tasks};
/// # use scheduler::doc_support::FifoStrategy;
/// let ran = AtomicUsize::new(0);
/// let report = run_threads(&RunSpec::new(2), &FifoStrategy, &Tasks::closed(100), |_, _| {
///     ran.fetch_add(1, Ordering::Relaxed);
/// })
/// .unwrap();
/// assert_eq!(ran.load(Ordering::Relaxed), 100);
/// assert_eq!(report.executed, 100);
/// ```
pub fn run_threads<F>(
    spec: &RunSpec,
    strategy: &dyn Strategy,
    tasks: &Tasks<'_>,
    f: F,
) -> Result<RunReport, RunError>
where
    F: Fn(TaskId, WorkerId) + Sync,
{
    run_threads_with_init(spec, strategy, tasks, |_| {}, f)
}

/// [`run_threads`] with a start-up hook: `init(worker)` runs on each worker thread after it is
/// pinned and before the clock starts (allocate per-thread buffers, open files, ...).
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use scheduler::{run_threads_with_init, RunSpec, Tasks};
/// # use scheduler::doc_support::FifoStrategy;
/// let started = AtomicUsize::new(0);
/// run_threads_with_init(&RunSpec::new(3), &FifoStrategy, &Tasks::closed(10), |_w| {
///     started.fetch_add(1, Ordering::Relaxed);
/// }, |_, _| {})
/// .unwrap();
/// assert_eq!(started.load(Ordering::Relaxed), 3);
/// ```
pub fn run_threads_with_init<I, F>(
    spec: &RunSpec,
    strategy: &dyn Strategy,
    tasks: &Tasks<'_>,
    init: I,
    f: F,
) -> Result<RunReport, RunError>
where
    I: Fn(WorkerId) + Sync,
    F: Fn(TaskId, WorkerId) + Sync,
{
    let mut setup = setup(spec, strategy, tasks)?;
    let p = spec.workers;
    let workers = std::mem::take(&mut setup.instance.workers);
    let shared = setup.instance.shared.clone();
    let closed = tasks.is_closed();
    if closed && tasks.n > 0 {
        shared.submit(batch(tasks, 0..tasks.n));
    }
    let run = Run {
        sleep: Sleep::default(),
        gate: Gate::default(),
        done: AtomicBool::new(tasks.n == 0),
        completed: AtomicUsize::new(0),
        t0: std::sync::OnceLock::new(),
        tasks: *tasks,
        timing: spec.timing,
        timeline_cap: spec.timeline_cap,
    };

    let ends: Result<Vec<WorkerEnd>, RunError> = std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(p);
        for (w, q) in workers.into_iter().enumerate() {
            let (run, init, f) = (&run, &init, &f);
            let (slot, speed, max_speed) = (setup.slots[w], setup.speeds[w], setup.max_speed);
            let spawned = std::thread::Builder::new()
                .name(format!("schedlab-w{w}"))
                .spawn_scoped(s, move || {
                    let pinned = slot.cpu.map(pin_current);
                    init(w);
                    worker_loop(run, w, pinned, speed, max_speed, q, f)
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(source) => {
                    run.gate.open(false);
                    return Err(RunError::Spawn { worker: w, source });
                }
            }
        }
        run.gate.wait_ready(p);
        run.t0.set(Instant::now()).expect("t0 is set once");
        run.gate.open(true);
        if !closed {
            produce(&run, &*shared);
        }
        Ok(handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| std::process::abort()))
            .collect())
    });
    let ends = ends?;

    let makespan_ns = ends.iter().map(|e| e.last_end_ns).max().unwrap_or(0);
    let mut notes = Vec::new();
    let cpus = spec.topology.cpus();
    if p > cpus {
        notes.push(format!("oversubscribed: {p} workers on {cpus} cpus"));
    }
    let refused: Vec<String> = ends
        .iter()
        .enumerate()
        .filter(|(_, e)| e.pinned == Some(false))
        .map(|(w, _)| w.to_string())
        .collect();
    if !refused.is_empty() {
        notes.push(format!("pinning refused for workers {}", refused.join(",")));
    }
    let info = setup.worker_info(|w| setup.slots[w].cpu.filter(|_| ends[w].pinned == Some(true)));
    let meta = meta("threads", spec, strategy, tasks, spec.timing, notes);
    let mut hist = Histograms::new();
    let mut tallies = Vec::with_capacity(p);
    for end in ends {
        hist.merge(&end.hist);
        tallies.push(end.tally);
    }
    let report = finish(meta, &info, tallies, &hist, makespan_ns, tasks);
    Ok(report)
}

fn batch<'a>(tasks: &Tasks<'a>, ids: std::ops::Range<usize>) -> Batch<'a> {
    match tasks.estimate_ns {
        Some(e) => Batch::with_estimates(ids.clone(), &e[ids]),
        None => Batch::new(ids),
    }
}

/// Open arrivals: submit each task at its release time (tasks due together go as one batch).
fn produce(run: &Run<'_>, shared: &dyn crate::SharedQueue) {
    let n = run.tasks.n;
    let mut next = 0;
    while next < n {
        let now = run.since_start();
        let due = next
            + run
                .tasks
                .release_ns
                .map_or(n - next, |r| r[next..].partition_point(|&t| t <= now));
        if due > next {
            shared.submit(batch(&run.tasks, next..due));
            run.sleep.notify(true);
            next = due;
            continue;
        }
        let wait = run.tasks.release(next).saturating_sub(now);
        if wait > 100_000 {
            // Sleep most of the way, then spin: timer overshoot is tens of microseconds.
            std::thread::sleep(Duration::from_nanos(wait - 60_000));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// A failed task, with its panic message.
fn failure(task: TaskId, worker: WorkerId, payload: &(dyn std::any::Any + Send)) -> Failure {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_string());
    Failure {
        task,
        worker,
        message,
    }
}

fn worker_loop<F>(
    run: &Run<'_>,
    w: WorkerId,
    pinned: Option<bool>,
    speed: f64,
    max_speed: f64,
    mut q: Box<dyn WorkerQueue>,
    f: &F,
) -> WorkerEnd
where
    F: Fn(TaskId, WorkerId) + Sync,
{
    let mut tally = Tally::new(speed, max_speed, run.timeline_cap);
    let mut hist = Histograms::new();
    let mut last_end_ns = 0u64;
    if !run.gate.arrive() {
        return WorkerEnd {
            tally,
            hist,
            last_end_ns,
            pinned,
        };
    }
    let timed = run.timing == Timing::Tasks;
    let mut unflushed = 0usize; // completions not yet added to run.completed
    let mut prev_end = 0u64; // ns: end of the previous task, or wake-up time
    let mut idle = 0u32; // fruitless searches in a row
    while !run.is_done() {
        // Read the event count before a search that may end in parking (README: no lost wake-ups).
        let seen = if idle >= SPIN_ROUNDS + YIELD_ROUNDS {
            run.sleep.events()
        } else {
            0
        };
        match q.next() {
            Next::Task(pick) => {
                idle = 0;
                tally.picked(pick.source, pick.attempts);
                if let Source::Stolen { moved, .. } = pick.source {
                    if moved > 1 {
                        // This worker's queue now holds stealable work: let a sleeper look.
                        run.sleep.notify(false);
                    }
                }
                if timed {
                    for task in pick.tasks() {
                        let start = run.since_start();
                        let outcome = catch_unwind(AssertUnwindSafe(|| f(task, w)));
                        let stop = run.since_start();
                        tally.overhead_ns += start.saturating_sub(prev_end);
                        tally.ran(&mut hist, w, task, run.tasks.release(task), start, stop);
                        q.completed(task, stop - start);
                        prev_end = stop;
                        if let Err(payload) = outcome {
                            tally.failed(failure(task, w, &*payload));
                        }
                    }
                    last_end_ns = prev_end;
                } else {
                    // The tight loop: no clock, no feedback.
                    for task in pick.tasks() {
                        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(task, w))) {
                            tally.failed(failure(task, w, &*payload));
                        }
                    }
                    tally.tasks += u64::from(pick.count);
                }
                unflushed += pick.count as usize;
            }
            Next::Retry(a) => {
                tally.steal_attempts += u64::from(a.total());
                std::hint::spin_loop();
            }
            Next::Empty(a) => {
                tally.steal_attempts += u64::from(a.total());
                if unflushed > 0 {
                    if !timed {
                        last_end_ns = run.since_start();
                    }
                    let last = run.complete(unflushed);
                    unflushed = 0;
                    if last {
                        break;
                    }
                }
                if idle < SPIN_ROUNDS {
                    std::hint::spin_loop();
                } else if idle < SPIN_ROUNDS + YIELD_ROUNDS {
                    std::thread::yield_now();
                } else {
                    run.sleep.park(seen, &run.done);
                    if timed {
                        prev_end = run.since_start();
                    }
                    continue; // stay at the parking threshold: re-read the count, search, park
                }
                idle += 1;
            }
        }
    }
    if !timed {
        tally.busy_ns = last_end_ns;
    }
    WorkerEnd {
        tally,
        hist,
        last_end_ns,
        pinned,
    }
}
