//! The executor the loader runs on: the only file that knows how tasks reach threads.
//!
//! The loader needs a persistent set of workers with worker-local state, and on it several
//! open *jobs* (one per epoch) that take task ids `0, 1, 2, …` in submission order, bound the
//! ids in flight, and hand outcomes back in id order (or as they finish).
//!
//! FALLBACK: this version runs each job on its own threads built from the strategy's queues
//! (`Strategy::build`), with the worker states kept in the executor and lent to a job's
//! worker `w` under a mutex. It is the stand-in until `scheduler::Pool` lands; the surface
//! below (`Exec`, `ExecJob`, `JobOpts`, `Done`, `JobStats`) is what the pool wiring replaces.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use scheduler::{Batch, Context, Next, Pin, SharedQueue, Source, Strategy, TaskId, WorkerId};

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

/// Persistent workers with worker-local state `S`.
pub(crate) struct Exec<S> {
    workers: usize,
    states: Arc<Vec<Mutex<S>>>,
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

impl<S: Send + 'static> Exec<S> {
    /// Start `workers` workers; `init(w)` builds worker `w`'s state on its thread.
    pub fn start<I>(workers: usize, _pin: Pin, init: I) -> Result<Self, LoaderError>
    where
        I: Fn(WorkerId) -> S + Send + Sync + 'static,
    {
        let init = &init;
        let built: Result<Vec<S>, LoaderError> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    std::thread::Builder::new()
                        .name(format!("loader-init-{w}"))
                        .spawn_scoped(scope, move || init(w))
                        .map_err(|e| LoaderError::Start(format!("worker {w}: {e}")))
                })
                .collect();
            let mut states = Vec::with_capacity(workers);
            let mut first_err = None;
            for (w, h) in handles.into_iter().enumerate() {
                match h {
                    Ok(h) => match h.join() {
                        Ok(s) => states.push(s),
                        Err(p) => {
                            first_err.get_or_insert(LoaderError::Start(format!(
                                "init of worker {w} panicked: {}",
                                panic_message(p.as_ref())
                            )));
                        }
                    },
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            match first_err {
                Some(e) => Err(e),
                None => Ok(states),
            }
        });
        Ok(Exec {
            workers,
            states: Arc::new(built?.into_iter().map(Mutex::new).collect()),
        })
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
        strategy
            .validate(self.workers)
            .map_err(|e| LoaderError::Config(e.to_string()))?;
        let instance = strategy.build(&Context::uniform(self.workers, opts.seed));
        let shared = Arc::new(JobShared {
            cancelled: AtomicBool::new(false),
            events: AtomicU64::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
            steals: AtomicU64::new(0),
        });
        let f = Arc::new(f);
        let (tx, rx) = channel();
        let mut threads = Vec::with_capacity(self.workers);
        for (w, mut queue) in instance.workers.into_iter().enumerate() {
            let job_shared = Arc::clone(&shared);
            let states = Arc::clone(&self.states);
            let f = Arc::clone(&f);
            let tx: Sender<Done<T>> = tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("loader-{w}"))
                .spawn(move || {
                    let shared = job_shared;
                    let mut idle = 0u32;
                    loop {
                        if shared.cancelled.load(Ordering::Acquire) {
                            return;
                        }
                        let seen = shared.events.load(Ordering::SeqCst);
                        match queue.next() {
                            Next::Task(pick) => {
                                idle = 0;
                                if matches!(pick.source, Source::Stolen { .. }) {
                                    shared.steals.fetch_add(1, Ordering::Relaxed);
                                }
                                for task in pick.tasks() {
                                    if shared.cancelled.load(Ordering::Acquire) {
                                        return;
                                    }
                                    let mut state =
                                        states[w].lock().unwrap_or_else(PoisonError::into_inner);
                                    let result =
                                        catch_unwind(AssertUnwindSafe(|| f(task, w, &mut state)))
                                            .map_err(|p| panic_message(p.as_ref()));
                                    drop(state);
                                    if tx.send(Done { task, result }).is_err() {
                                        return;
                                    }
                                }
                            }
                            Next::Retry(_) => {}
                            Next::Empty(_) => {
                                idle += 1;
                                if idle < 64 {
                                    std::thread::yield_now();
                                } else {
                                    let guard =
                                        shared.lock.lock().unwrap_or_else(PoisonError::into_inner);
                                    if shared.events.load(Ordering::SeqCst) == seen
                                        && !shared.cancelled.load(Ordering::Acquire)
                                    {
                                        let _ = shared
                                            .cv
                                            .wait_timeout(guard, Duration::from_millis(1))
                                            .unwrap_or_else(PoisonError::into_inner);
                                    }
                                }
                            }
                        }
                    }
                });
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => {
                    shared.cancel();
                    for h in threads {
                        let _ = h.join();
                    }
                    return Err(LoaderError::Start(format!("worker {w}: {e}")));
                }
            }
        }
        Ok(ExecJob {
            opts,
            queue: instance.shared,
            shared,
            rx,
            threads,
            submitted: 0,
            taken: 0,
            ordered_buf: BTreeMap::new(),
            ready_buf: VecDeque::new(),
        })
    }
}

struct JobShared {
    cancelled: AtomicBool,
    events: AtomicU64,
    lock: Mutex<()>,
    cv: Condvar,
    steals: AtomicU64,
}

impl JobShared {
    fn notify(&self) {
        self.events.fetch_add(1, Ordering::SeqCst);
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.cv.notify_all();
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.notify();
    }
}

/// One open job. Dropping it cancels it: ids not yet started are not run, and the call
/// returns once the running ones have ended.
pub(crate) struct ExecJob<T> {
    opts: JobOpts,
    queue: Arc<dyn SharedQueue>,
    shared: Arc<JobShared>,
    rx: Receiver<Done<T>>,
    threads: Vec<JoinHandle<()>>,
    submitted: usize,
    taken: usize,
    ordered_buf: BTreeMap<TaskId, Done<T>>,
    ready_buf: VecDeque<Done<T>>,
}

impl<T: Send + 'static> ExecJob<T> {
    /// Submit the next `count` ids if there is room for them; never blocks.
    pub fn try_submit(&mut self, count: usize) -> bool {
        if count == 0 {
            return true;
        }
        if count > self.room() {
            return false;
        }
        let start = self.submitted;
        self.submitted += count;
        self.queue.submit(Batch::new(start..start + count));
        self.shared.notify();
        true
    }

    /// How many more ids may be submitted now.
    pub fn room(&self) -> usize {
        self.opts.max_in_flight.saturating_sub(self.in_flight())
    }

    /// Ids submitted and not yet taken back.
    pub fn in_flight(&self) -> usize {
        self.submitted - self.taken
    }

    /// The next outcome (in id order when ordered); blocks; `None` when nothing is in flight.
    pub fn next(&mut self) -> Option<Done<T>> {
        if self.in_flight() == 0 {
            return None;
        }
        loop {
            if self.opts.ordered {
                if let Some(done) = self.ordered_buf.remove(&self.taken) {
                    self.taken += 1;
                    return Some(done);
                }
            } else if let Some(done) = self.ready_buf.pop_front() {
                self.taken += 1;
                return Some(done);
            }
            let done = self.rx.recv().ok()?;
            if self.opts.ordered {
                self.ordered_buf.insert(done.task, done);
            } else {
                self.ready_buf.push_back(done);
            }
        }
    }

    /// End the job (everything submitted has been taken) and report.
    pub fn finish(self) -> JobStats {
        JobStats {
            steals: self.shared.steals.load(Ordering::Relaxed),
        }
    }
}

impl<T> Drop for ExecJob<T> {
    fn drop(&mut self) {
        self.shared.cancel();
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}
