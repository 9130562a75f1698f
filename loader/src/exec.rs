//! The executor the loader runs on: the loader is the one-stage case of a pipeline.
//!
//! The loader keeps a [`scheduler::Pool`] of persistent workers, each holding its
//! `Dataset::State` (built once by the pool's init, on the worker's thread). Every epoch is a
//! pipeline run on that pool with one `cpu` stage and the sink: its source is fed ids `0, 1,
//! 2, …` (which map to the epoch's remaining positions or batches) by the loader itself, as
//! its window allows; two runs may be open at once while the next epoch prefetches. The loader
//! keeps its own window of units in flight over both and submits with `try_submit` only, so
//! the consumer thread never blocks in a submission.

use std::any::Any;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use scheduler::{Pin, Pool, Strategy, TaskId, WorkerId};

use crate::error::LoaderError;
use crate::pipeline::engine::{
    Delivered, Fed, Feed, Kind, Out, Parts, Policy, Progress, Runner, Shared, StageFn, TailKind,
    Track, Value,
};
use crate::pipeline::{segment_specs, start_run, Run, SegTemplate, StationTemplate};

/// Options of one job.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JobOpts {
    /// Ids submitted but not yet taken back by `next`.
    pub max_in_flight: usize,
    /// Deliver in id order (true) or as finished.
    pub ordered: bool,
    /// Seed of the strategy instance.
    pub seed: u64,
    /// How long ending the job waits for calls still running before it abandons them.
    pub grace: Duration,
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

pub(crate) use crate::pipeline::engine::panic_text as panic_message;

/// Persistent workers with worker-local state `S`.
pub(crate) struct Exec<S: 'static> {
    pool: Pool<S>,
    threads_alive: Arc<AtomicUsize>,
}

/// The ids the loader has allowed so far: the run's source.
struct Ids {
    next: u64,
    limit: Arc<AtomicU64>,
}

impl Feed for Ids {
    fn next(&mut self) -> Fed {
        if self.next < self.limit.load(SeqCst) {
            let id = self.next;
            self.next += 1;
            Fed::Item(id, Box::new(id as TaskId))
        } else {
            Fed::Later
        }
    }

    fn total(&self) -> Option<u64> {
        None
    }
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
        let f: StageFn = Arc::new(move |v: Value, state: &mut (dyn Any + Send), r| {
            let Runner::Cpu(w) = r else {
                unreachable!("the loader's stage is a cpu stage")
            };
            let id = *v.downcast::<TaskId>().expect("the run feeds task ids");
            let state = state
                .downcast_mut::<S>()
                .expect("the worker's dataset state");
            Ok::<_, String>(Out::One(Box::new(f(id, w, state))))
        });
        let window = opts.max_in_flight.max(1);
        let templates = [SegTemplate {
            stations: vec![StationTemplate {
                name: Arc::from("get"),
                kind: Kind::Cpu,
                // Every id in the window goes to the job at once, as a job of its own would
                // get it: the strategy sees them all (round-robin deals them out, a slow
                // sample holds up the ids behind it on its worker).
                concurrency: window,
                queue: window,
                user_queue: true,
                f,
                slot: 0,
                strategy: Some(Arc::clone(strategy)),
            }],
            tail: TailKind::Sink,
            batch: 0,
            window,
            per_item: 1.0,
        }];
        let limit = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared::new(
            segment_specs(&templates),
            Policy::Yield,
            opts.ordered,
            0,
            Box::new(Ids {
                next: 0,
                limit: Arc::clone(&limit),
            }),
            Progress {
                track: Track::Off, // the loader keeps its own
                ..Progress::default()
            },
            false,
            Arc::new(AtomicUsize::new(0)),
            false,
        ));
        let mut run = start_run(
            Some(&self.pool),
            |s: &mut S, _slot| s as &mut (dyn Any + Send),
            &templates,
            &[],
            shared,
            opts.seed,
            &self.threads_alive,
            None,
        )
        .map_err(|e| LoaderError::Start(e.to_string()))?;
        run.grace = opts.grace;
        Ok(ExecJob {
            run: Some(run),
            limit,
            max_in_flight: window,
            submitted: 0,
            taken: 0,
            _t: std::marker::PhantomData,
        })
    }
}

/// One open job. Dropping it cancels it promptly.
pub(crate) struct ExecJob<T> {
    run: Option<Run>,
    limit: Arc<AtomicU64>,
    max_in_flight: usize,
    submitted: usize,
    taken: usize,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T> ExecJob<T> {
    /// Stop the job without waiting: no id starts from now on; the calls running go on
    /// (dropping the job waits for them, at most the grace period).
    pub fn cancel(&mut self) {
        if let Some(run) = self.run.as_mut() {
            run.halt();
        }
    }
}

impl<T: Send + 'static> ExecJob<T> {
    /// Submit the next `count` ids if there is room for them; never blocks.
    pub fn try_submit(&mut self, count: usize) -> bool {
        if count == 0 {
            return true;
        }
        if self.in_flight() + count > self.max_in_flight {
            return false;
        }
        let Some(run) = &self.run else { return false };
        self.submitted += count;
        self.limit.store(self.submitted as u64, SeqCst);
        run.shared.kick_feed(0);
        true
    }

    /// Allow `n` ids in flight from now on (autotune): the engine's window and the stage's
    /// concurrency and queue follow. Lowering it takes nothing back; the ids in flight drain.
    pub fn set_max_in_flight(&mut self, n: usize) {
        let n = n.max(1);
        self.max_in_flight = n;
        if let Some(run) = &self.run {
            let seg = &run.shared.segments[0];
            let spec = &seg.stations[0].spec;
            spec.concurrency.store(n, SeqCst);
            spec.queue.store(n, SeqCst);
            seg.window.store(n, SeqCst);
            run.shared.kick_feed(0);
        }
    }

    /// Ids submitted and not yet finished: queued or being loaded.
    pub fn unfinished(&self) -> usize {
        let done = self
            .run
            .as_ref()
            .map_or(0, |r| r.shared.station_done(0, 0) as usize);
        self.submitted.saturating_sub(done)
    }

    /// Ids submitted and not yet taken back.
    pub fn in_flight(&self) -> usize {
        self.submitted - self.taken
    }

    /// The next outcome (in id order when ordered); blocks; `None` when nothing is in flight
    /// or the run was stopped.
    pub fn next(&mut self) -> Option<Done<T>> {
        if self.in_flight() == 0 {
            return None;
        }
        let shared = Arc::clone(&self.run.as_ref()?.shared);
        let done = match shared.take() {
            Delivered::Value {
                value,
                parts: Parts::One(part),
            } => Done {
                task: part.src as TaskId,
                result: Ok(*value.downcast::<T>().expect("the stage's output type")),
            },
            Delivered::Failed(f) => Done {
                task: f.src as TaskId,
                result: Err(f.message),
            },
            _ => return None,
        };
        self.taken += 1;
        Some(done)
    }

    /// End the job (everything submitted has been taken) and report.
    pub fn finish(mut self) -> JobStats {
        JobStats {
            steals: self.run.take().map_or(0, Run::finish),
        }
    }
}
