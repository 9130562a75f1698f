//! The executor the loader runs on: the only file that knows how tasks reach threads.
//!
//! The loader runs on a [`scheduler::Pool`]: persistent workers, each holding its
//! `Dataset::State` (built once by the pool's init, on the worker's thread). Every epoch is one
//! [`scheduler::Job`] on that pool (ids `0, 1, 2, …` in submission order map to the epoch's
//! remaining positions or batches); two may be open at once while the next epoch prefetches.
//! The loader keeps its own window of units in flight over both jobs and submits with
//! `try_submit` only, so the consumer thread never blocks in a submission.

use scheduler::{Delivery, Job, JobOptions, Pin, Pool, Strategy, TaskId, WorkerId};

use crate::error::LoaderError;

/// Options of one job.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JobOpts {
    /// Ids submitted but not yet taken back by `next`.
    pub max_in_flight: usize,
    /// Deliver in id order (true) or as finished.
    pub ordered: bool,
    /// Seed of the strategy instance.
    pub seed: u64,
}

/// One finished task.
pub(crate) struct Done<T> {
    pub task: TaskId,
    /// The task's value, or its panic message.
    pub result: Result<T, String>,
}

/// What a finished job reports.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct JobStats {
    pub steals: u64,
}

/// Turn a panic payload into its message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Persistent workers with worker-local state `S`.
pub(crate) struct Exec<S: 'static> {
    pool: Pool<S>,
}

impl<S: Send + 'static> Exec<S> {
    /// Start `workers` workers; `init(w)` builds worker `w`'s state on its thread.
    pub fn start<I>(workers: usize, pin: Pin, init: I) -> Result<Self, LoaderError>
    where
        I: Fn(WorkerId) -> S + Send + Sync + 'static,
    {
        let pool = Pool::builder(workers)
            .pin(pin)
            .build_with(init)
            .map_err(|e| LoaderError::Start(e.to_string()))?;
        Ok(Exec { pool })
    }

    /// Threads the pool has spawned since it was built.
    pub fn threads_spawned(&self) -> usize {
        self.pool.threads_spawned()
    }

    /// Open a job: `f(task, worker, &mut state)` runs each submitted id once.
    pub fn job<T, F>(
        &self,
        strategy: &dyn Strategy,
        opts: JobOpts,
        f: F,
    ) -> Result<ExecJob<T>, LoaderError>
    where
        T: Send + 'static,
        F: Fn(TaskId, WorkerId, &mut S) -> T + Send + Sync + 'static,
    {
        let options = JobOptions::default()
            .max_in_flight(opts.max_in_flight)
            .delivery(if opts.ordered {
                Delivery::Ordered
            } else {
                Delivery::AsReady
            })
            .seed(opts.seed);
        let job = self
            .pool
            .job(strategy, options, f)
            .map_err(|e| LoaderError::Start(e.to_string()))?;
        Ok(ExecJob { job })
    }
}

/// One open job. Dropping it cancels it promptly.
pub(crate) struct ExecJob<T> {
    job: Job<T>,
}

impl<T: Send + 'static> ExecJob<T> {
    /// Submit the next `count` ids if there is room for them; never blocks.
    pub fn try_submit(&mut self, count: usize) -> bool {
        count == 0 || self.job.try_submit(count).is_ok()
    }

    /// Ids submitted and not yet taken back.
    pub fn in_flight(&self) -> usize {
        self.job.in_flight()
    }

    /// The next outcome (in id order when ordered); blocks; `None` when nothing is in flight.
    pub fn next(&mut self) -> Option<Done<T>> {
        self.job.next().map(|o| Done {
            task: o.task,
            result: o.result.map_err(|f| f.message),
        })
    }

    /// End the job (everything submitted has been taken) and report.
    pub fn finish(self) -> JobStats {
        JobStats {
            steals: self.job.finish().map_or(0, |r| r.steals),
        }
    }
}
