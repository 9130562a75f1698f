//! The loader's job: a one-stage pipeline run (one `cpu` stage, `get`, and the sink) whose
//! source is fed ids `0, 1, 2, …` by the loader as its own window allows. The loader reaches
//! the engine only through this file: its window, concurrency and queue move together
//! ([`OneStageJob::set_max_in_flight`]).
//!
//! Still to come (issue 28): the `Loader` built through the public `PipelineBuilder`, when the
//! pipeline has what the loader has beyond it (a whole-batch task, the next epoch's prefetch,
//! a per-sample timeout, the loader's report and state).

use std::any::Any;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use scheduler::{Pool, Strategy, TaskId, WorkerId};

use super::engine::{
    Delivered, Fed, Feed, Kind, Out, Parts, Policy, Progress, Runner, Shared, StageFn, TailKind,
    Track, Value,
};
use super::{segment_specs, start_run, PipelineError, Run, SegTemplate, StationTemplate};

/// Turn a panic payload into its message.
pub(crate) use super::engine::panic_text as panic_message;

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

/// Open a job on `pool`: a one-stage pipeline run whose stage runs `f(task, worker, &mut
/// state)` once for each submitted id.
pub(crate) fn open<S, T, F>(
    pool: &Pool<S>,
    threads_alive: &Arc<AtomicUsize>,
    strategy: &Arc<dyn Strategy>,
    opts: JobOpts,
    f: F,
) -> Result<OneStageJob<T>, PipelineError>
where
    S: Send + 'static,
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
            timeout: None,
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
        Some(pool),
        |s: &mut S, _slot| s as &mut (dyn Any + Send),
        &templates,
        &[],
        shared,
        opts.seed,
        threads_alive,
        None,
    )?;
    run.grace = opts.grace;
    Ok(OneStageJob {
        run: Some(run),
        limit,
        max_in_flight: window,
        submitted: 0,
        taken: 0,
        _t: std::marker::PhantomData,
    })
}

/// One open job. Dropping it cancels it promptly.
pub(crate) struct OneStageJob<T> {
    run: Option<Run>,
    limit: Arc<AtomicU64>,
    max_in_flight: usize,
    submitted: usize,
    taken: usize,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T> OneStageJob<T> {
    /// Stop the job without waiting: no id starts from now on; the calls running go on
    /// (dropping the job waits for them, at most the grace period).
    pub fn cancel(&mut self) {
        if let Some(run) = self.run.as_mut() {
            run.halt();
        }
    }
}

impl<T: Send + 'static> OneStageJob<T> {
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
