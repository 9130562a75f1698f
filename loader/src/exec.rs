//! The executor the loader runs on: the only file that knows how tasks reach threads.
//!
//! The loader runs on a [`scheduler::Pool`]: persistent workers, each holding its
//! `Dataset::State` (built once by the pool's init, on the worker's thread). Every epoch is one
//! [`scheduler::Job`] on that pool (ids `0, 1, 2, …` in submission order map to the epoch's
//! remaining positions or batches); two may be open at once while the next epoch prefetches.
//! The loader keeps its own window of units in flight over both jobs and submits with
//! `try_submit` only, so the consumer thread never blocks in a submission.

use std::sync::Arc;

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
    pool: Arc<Pool<S>>,
    kick: Kick,
}

/// Wakes every parked worker of the pool.
///
/// WORKAROUND (pool of issue 7 as merged in 620b293): a submission of a single id wakes only
/// one parked worker (`sleep.notify(k > 1)` in `threads/job.rs`). Under a placement strategy
/// (round-robin) the id sits in one worker's queue, and the worker woken may be another one,
/// which finds nothing and parks again: the id is never run and the consumer waits forever
/// (reproduced with the pool alone: `max_in_flight` 3, ids submitted one at a time, 4
/// workers; work stealing with two open jobs hung as well). Opening a job wakes every worker,
/// so after a one-id submission the loader opens and drops an empty job. Remove this once the
/// pool wakes the right worker.
type Kick = Arc<dyn Fn() + Send + Sync>;

impl<S: Send + 'static> Exec<S> {
    /// Start `workers` workers; `init(w)` builds worker `w`'s state on its thread.
    pub fn start<I>(workers: usize, pin: Pin, init: I) -> Result<Self, LoaderError>
    where
        I: Fn(WorkerId) -> S + Send + Sync + 'static,
    {
        let pool = Arc::new(
            Pool::builder(workers)
                .pin(pin)
                .build_with(init)
                .map_err(|e| LoaderError::Start(e.to_string()))?,
        );
        let central: Arc<dyn Strategy> =
            Arc::from(strategies::parse("central").map_err(|e| LoaderError::Start(e.to_string()))?);
        let kick: Kick = {
            let pool = Arc::clone(&pool);
            Arc::new(move || {
                let empty = pool.job(central.as_ref(), JobOptions::default(), |_, _, _| ());
                drop(empty);
            })
        };
        Ok(Exec { pool, kick })
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
        Ok(ExecJob {
            job,
            kick: Arc::clone(&self.kick),
        })
    }
}

/// One open job. Dropping it cancels it promptly.
pub(crate) struct ExecJob<T> {
    job: Job<T>,
    kick: Kick,
}

impl<T: Send + 'static> ExecJob<T> {
    /// Submit the next `count` ids if there is room for them; never blocks.
    pub fn try_submit(&mut self, count: usize) -> bool {
        if count == 0 {
            return true;
        }
        let ok = self.job.try_submit(count).is_ok();
        if ok && count == 1 {
            (self.kick)();
        }
        ok
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
