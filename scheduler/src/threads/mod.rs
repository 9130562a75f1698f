//! The threads engine: a pool of persistent OS threads, optionally pinned, serving jobs.
//!
//! [`Pool`] owns the workers and their worker-local state; a [`Job`] is one strategy instance
//! fed ids while they run, with back-pressure and ordered or as-ready delivery.
//! [`run_threads`] is one closed job on a fresh pool. Each worker runs one loop
//! (`worker.rs`; the parking, termination and release protocols are in `README.md` beside
//! this file): ask each open job's strategy for the next task, oldest job first; run it under
//! `catch_unwind`; when nothing is found, spin a little, then park until something changes.

#[cfg(debug_assertions)]
mod claims;
mod ending;
mod job;
mod limit;
mod pool;
mod room;
mod sleep;
mod stack;
mod waiting;
mod worker;

use crate::engine::setup;
use crate::error::RunError;
use crate::report::RunReport;
use crate::spec::{RunSpec, Tasks};
use crate::strategy::Strategy;
use crate::{TaskId, WorkerId};

pub use job::{Delivery, Job, JobError, JobOptions, Outcome, Submitter};
pub use limit::{over_thread_limit, thread_limit, FALLBACK_THREAD_LIMIT};
pub use pool::{Pool, PoolBuilder};

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
    let setup = setup(spec, strategy, tasks)?;
    let pool = Pool::builder(spec.workers)
        .pin(spec.pin)
        .topology(spec.topology.clone())
        .speeds(spec.speeds.clone())
        .build_scoped(&|w| init(w))?;
    let options = JobOptions {
        max_in_flight: usize::MAX,
        delivery: Delivery::Discard,
        seed: spec.seed,
        timing: spec.timing,
        timeline_cap: spec.timeline_cap,
        labels: spec.labels.clone(),
    };
    let report = pool.run_borrowed(
        strategy,
        setup.instance,
        options,
        *tasks,
        |task, w, _: &mut ()| f(task, w),
    );
    // The job borrowed `f` and `tasks`: the pool's threads are joined here, before they end.
    drop(pool);
    report
}
