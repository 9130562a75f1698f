//! The executor the loader runs on: a [`scheduler::Pool`] of persistent workers, each holding
//! its `Dataset::State` (built once by the pool's init, on the worker's thread). Every epoch is
//! a job on that pool, a one-stage pipeline run (`crate::pipeline::job`); two may be open at
//! once while the next epoch prefetches. The loader keeps its own window of units in flight
//! over both and submits with `try_submit` only, so the consumer thread never blocks in a
//! submission.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use scheduler::{Pin, Pool, Strategy, TaskId, WorkerId};

use crate::error::LoaderError;
pub(crate) use crate::pipeline::job::{panic_message, JobOpts, OneStageJob as ExecJob};

/// Persistent workers with worker-local state `S`.
pub(crate) struct Exec<S: 'static> {
    pool: Pool<S>,
    threads_alive: Arc<AtomicUsize>,
}

impl<S: Send + 'static> Exec<S> {
    /// Start `workers` workers; `init(w)` builds worker `w`'s state on its thread. Dropping
    /// the executor waits `grace` at most for calls still running.
    pub fn start<I>(workers: usize, pin: Pin, grace: Duration, init: I) -> Result<Self, LoaderError>
    where
        I: Fn(WorkerId) -> S + Send + Sync + 'static,
    {
        let pool = Pool::builder(workers)
            .pin(pin)
            .grace(grace)
            .build_with(init)
            .map_err(|e| LoaderError::Start(e.to_string()))?;
        Ok(Exec {
            pool,
            threads_alive: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Threads the pool has spawned since it was built.
    pub fn threads_spawned(&self) -> usize {
        self.pool.threads_spawned()
    }

    /// Open a job: a one-stage pipeline run whose stage runs `f(task, worker, &mut state)`
    /// once for each submitted id.
    pub fn job<T, F>(
        &self,
        strategy: &Arc<dyn Strategy>,
        opts: JobOpts,
        f: F,
    ) -> Result<ExecJob<T>, LoaderError>
    where
        T: Send + 'static,
        F: Fn(TaskId, WorkerId, &mut S) -> T + Send + Sync + 'static,
    {
        crate::pipeline::job::open(&self.pool, &self.threads_alive, strategy, opts, f)
            .map_err(|e| LoaderError::Start(e.to_string()))
    }
}
