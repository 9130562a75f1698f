//! The worker loop: one chain of questions, asked of every open job oldest first (see
//! `README.md` beside this file), and the same loop run by a task that waits on a job of its
//! own pool (README: "Waiting inside a task").

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::WorkerId;

use super::job::{JobError, Runner, Step};
use super::pool::PoolShared;

/// Fruitless searches a worker makes (with a spin hint between them) before it yields.
const SPIN_ROUNDS: u32 = 32;
/// Further fruitless searches (with a yield between them) before it parks.
const YIELD_ROUNDS: u32 = 32;
/// An idle worker keeping time parks only if the release is further away than this...
const PARK_AHEAD: Duration = Duration::from_micros(100);
/// ...and wakes this long before it, to spin the rest (timer wake-ups run tens of µs late).
const SPIN_AHEAD: Duration = Duration::from_micros(60);
/// Waits inside tasks nest at most this deep on one worker (each level steps jobs that no
/// level above it is stepping, so the depth is also bounded by the number of open jobs).
pub(crate) const MAX_DEPTH: usize = 32;
/// While the pool shuts down, `park` returns at once; a wait inside a task (which ends soon,
/// since every job was stopped) parks this long at a time instead of spinning.
const SHUTDOWN_PARK: Duration = Duration::from_millis(1);
/// A shutdown flag that is never set, for those short parks.
static NEVER: AtomicBool = AtomicBool::new(false);

/// One job this worker is attached to, and its runner: `None` while a frame further up this
/// thread's stack is stepping it (its task is running, or waiting).
struct Slot<S: 'static> {
    seq: u64,
    runner: Option<Box<dyn Runner<S>>>,
}

/// What the worker loop and the waits inside its tasks share (behind a `RefCell`, borrowed
/// only between steps, never while a task runs).
struct Inner<S: 'static> {
    /// Attached jobs, oldest first.
    slots: Vec<Slot<S>>,
    /// The first job not yet attached.
    next_seq: u64,
    /// The pool's job version when last looked at.
    version: u64,
    /// Waits inside tasks in progress on this thread.
    depth: usize,
    /// `spare[d]`: the worker-local state of waits at depth `d + 1`, while no wait uses it.
    spare: Vec<Option<Box<S>>>,
}

/// One worker of a pool: its attached jobs, shared by its loop and by the waits of the tasks
/// it runs.
pub(crate) struct Worker<S: 'static> {
    pool: Arc<PoolShared<S>>,
    w: WorkerId,
    inner: RefCell<Inner<S>>,
}

/// What one round over the attached jobs found.
struct Round {
    ran: bool,
    retry: bool,
    keep: Option<Instant>,
}

/// What a wait inside a task waits for: `ready()` (it should be cheap: it is asked after
/// every step), or `deadline`.
struct Until<'r> {
    ready: &'r mut dyn FnMut() -> bool,
    deadline: Option<Instant>,
}

/// How [`Worker::serve`] ended.
enum Served {
    Ready,
    TimedOut,
    Shutdown,
}

/// This thread's worker, if it is one: the address of its pool's `PoolShared<S>` and of its
/// `Worker<S>` (the type erased: a thread-local cannot be generic).
#[derive(Clone, Copy)]
struct Current {
    pool: *const (),
    worker: *const (),
}

thread_local! {
    static CURRENT: Cell<Option<Current>> = const { Cell::new(None) };
}

/// Marks this thread as the worker's while it lives (see [`Worker::mark`]).
pub(crate) struct Mark<'w> {
    _worker: PhantomData<&'w ()>,
}

impl Drop for Mark<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(None));
    }
}

impl<S: 'static> Worker<S> {
    /// Worker `w` of `pool`, attached to nothing yet.
    pub(crate) fn new(pool: Arc<PoolShared<S>>, w: WorkerId) -> Self {
        Worker {
            pool,
            w,
            inner: RefCell::new(Inner {
                slots: Vec::new(),
                next_seq: 0,
                version: u64::MAX,
                depth: 0,
                spare: Vec::new(),
            }),
        }
    }

    /// Mark this thread as this worker's until the mark is dropped, so that a task that waits
    /// on a job of this pool finds the worker ([`current`]). The worker outlives the mark.
    pub(crate) fn mark(&self) -> Mark<'_> {
        let current = Current {
            pool: Arc::as_ptr(&self.pool).cast(),
            worker: (self as *const Self).cast(),
        };
        CURRENT.with(|c| c.set(Some(current)));
        Mark {
            _worker: PhantomData,
        }
    }

    /// The states built for waits inside tasks, to drop once the loop is over.
    pub(crate) fn into_spares(self) -> Vec<Box<S>> {
        self.inner
            .into_inner()
            .spare
            .into_iter()
            .flatten()
            .collect()
    }

    /// One round: attach new jobs, then step every job no frame above is stepping, oldest
    /// first, until one runs a pick.
    fn round(&self, state: &mut S) -> Round {
        let mut round = Round {
            ran: false,
            retry: false,
            keep: None,
        };
        let v = self.pool.version.load(SeqCst);
        {
            let inner = &mut *self.inner.borrow_mut();
            if v != inner.version {
                inner.version = v;
                let slots = &mut inner.slots;
                self.pool
                    .attach_new(self.w, &mut inner.next_seq, |seq, runner| {
                        slots.push(Slot {
                            seq,
                            runner: Some(runner),
                        })
                    });
            }
        }
        let mut i = 0;
        loop {
            // Take the runner out of its slot for the step: a wait inside one of its tasks
            // then sees the slot busy, and the `RefCell` is not borrowed while tasks run.
            let (seq, mut runner) = {
                let mut inner = self.inner.borrow_mut();
                loop {
                    match inner.slots.get_mut(i) {
                        None => return round,
                        Some(slot) => match slot.runner.take() {
                            Some(r) => break (slot.seq, r),
                            None => i += 1,
                        },
                    }
                }
            };
            let step = runner.step(state);
            let mut inner = self.inner.borrow_mut();
            // A wait inside the step may have attached or retired other jobs: find the slot.
            if inner.slots.get(i).map(|s| s.seq) != Some(seq) {
                i = inner
                    .slots
                    .iter()
                    .position(|s| s.seq == seq)
                    .expect("a job being stepped keeps its slot");
            }
            match step {
                Step::Over => {
                    inner.slots.remove(i);
                    drop(inner);
                    runner.retire();
                    continue;
                }
                Step::Ran => {
                    inner.slots[i].runner = Some(runner);
                    round.ran = true;
                    return round; // older jobs first: the next round starts again
                }
                Step::Retry => round.retry = true,
                Step::Empty => {}
                Step::Keep(at) => round.keep = Some(round.keep.map_or(at, |k| k.min(at))),
            }
            inner.slots[i].runner = Some(runner);
            i += 1;
        }
    }

    /// About to park: it leaves its cpu (`stack.rs`).
    fn parking(&self) {
        if let Some(cpus) = &self.pool.cpus {
            cpus.parked(self.w);
        }
    }

    /// It ran something, or woke: if another worker runs on this cpu, move off it
    /// (`stack.rs`).
    fn unstack(&self) {
        if let Some(cpus) = &self.pool.cpus {
            cpus.check(self.w);
        }
    }

    /// The worker parked: tell the runners in reach.
    fn woke(&self) {
        self.unstack();
        for slot in self.inner.borrow_mut().slots.iter_mut() {
            if let Some(r) = &mut slot.runner {
                r.woke();
            }
        }
    }

    /// Serve the pool's jobs: until it shuts down (`until` is `None`: the worker loop), or
    /// until `until` is met (a wait inside a task).
    fn serve(&self, state: &mut S, mut until: Option<Until<'_>>) -> Served {
        let pool = &*self.pool;
        let mut idle = 0u32; // fruitless rounds in a row
        loop {
            // Read the event count before a round that may end in parking (README: no lost
            // wake-ups); after a fruitful round the next one is never the last before parking.
            // A wait's condition is read after it, so an event that makes it true either
            // comes before (and the condition is seen) or changes the count (README: "Waiting
            // inside a task").
            let seen = if idle > 0 { pool.sleep.events() } else { 0 };
            let deadline = match &mut until {
                None => {
                    if pool.shutdown.load(SeqCst) {
                        return Served::Shutdown;
                    }
                    None
                }
                Some(u) => {
                    if (u.ready)() {
                        return Served::Ready;
                    }
                    if u.deadline.is_some_and(|d| Instant::now() >= d) {
                        return Served::TimedOut;
                    }
                    u.deadline
                }
            };
            let round = self.round(state);
            if round.ran {
                idle = 0;
                self.unstack();
                continue;
            }
            if round.retry || idle == 0 {
                idle = idle.max(1);
                std::hint::spin_loop();
                continue;
            }
            if let Some(at) = round.keep {
                // Nothing to run and a release pending: like every idle worker, keep time for
                // it (threads README, "Open arrivals"): sleep most of the way, spin the rest.
                if at > Instant::now() + PARK_AHEAD {
                    let wake = deadline.map_or(at - SPIN_AHEAD, |d| d.min(at - SPIN_AHEAD));
                    self.parking();
                    pool.sleep.park_until(seen, wake, &pool.shutdown);
                    self.woke();
                } else {
                    // Yield, not spin: a worker preempted on this cpu (one that is releasing,
                    // or running a task) must not wait a whole time slice behind this one.
                    std::thread::yield_now();
                }
                continue;
            }
            if idle < SPIN_ROUNDS {
                std::hint::spin_loop();
            } else if idle < SPIN_ROUNDS + YIELD_ROUNDS {
                std::thread::yield_now();
            } else {
                self.parking();
                if until.is_none() {
                    pool.sleep.park(seen, &pool.shutdown);
                } else if pool.shutdown.load(SeqCst) {
                    let soon = Instant::now() + SHUTDOWN_PARK;
                    let wake = deadline.map_or(soon, |d| d.min(soon));
                    pool.sleep.park_until(seen, wake, &NEVER);
                } else if let Some(d) = deadline {
                    pool.sleep.park_until(seen, d, &pool.shutdown);
                } else {
                    pool.sleep.park(seen, &pool.shutdown);
                }
                self.woke();
                continue; // stay at the parking threshold: re-read the count, search, park
            }
            idle += 1;
        }
    }

    /// Shut down: take hold of any job not seen yet, then let go of every job.
    fn retire_all(&self) {
        let slots = {
            let inner = &mut *self.inner.borrow_mut();
            let slots = &mut inner.slots;
            self.pool
                .attach_new(self.w, &mut inner.next_seq, |seq, runner| {
                    slots.push(Slot {
                        seq,
                        runner: Some(runner),
                    })
                });
            std::mem::take(slots)
        };
        for runner in slots.into_iter().filter_map(|s| s.runner) {
            runner.retire();
        }
    }

    /// Inside a task this worker runs: serve the pool's jobs with the state of the next depth
    /// until `ready()` holds or `deadline` passes. `seq` is the job waited on: if a frame up
    /// this thread's stack is stepping it (the wait is inside one of its own tasks), this
    /// worker cannot run its other tasks, and the wait is refused.
    fn wait(
        &self,
        seq: u64,
        init: &(dyn Fn(WorkerId) -> S + Send + Sync),
        deadline: Option<Instant>,
        ready: &mut dyn FnMut() -> bool,
    ) -> Result<(), JobError> {
        let depth = {
            let mut inner = self.inner.borrow_mut();
            if inner
                .slots
                .iter()
                .any(|s| s.seq == seq && s.runner.is_none())
            {
                return Err(JobError::OwnJob);
            }
            if inner.depth >= MAX_DEPTH {
                return Err(JobError::TooDeep { max: MAX_DEPTH });
            }
            inner.depth += 1;
            inner.depth
        };
        // Restores the depth however the wait ends (an init that panics unwinds through it).
        struct Depth<'a, S: 'static>(&'a Worker<S>);
        impl<S: 'static> Drop for Depth<'_, S> {
            fn drop(&mut self) {
                self.0.inner.borrow_mut().depth -= 1;
            }
        }
        let _depth = Depth(self);
        let spare = self
            .inner
            .borrow_mut()
            .spare
            .get_mut(depth - 1)
            .and_then(Option::take);
        // The state is moved into this frame while the wait uses it: a deeper wait takes the
        // next one, and nothing else can reach it.
        let mut state = match spare {
            Some(state) => state,
            None => Box::new(init(self.w)),
        };
        let served = self.serve(&mut state, Some(Until { ready, deadline }));
        {
            let mut inner = self.inner.borrow_mut();
            if inner.spare.len() < depth {
                inner.spare.resize_with(depth, || None);
            }
            inner.spare[depth - 1] = Some(state);
        }
        match served {
            Served::Ready => Ok(()),
            Served::TimedOut => Err(JobError::TimedOut),
            Served::Shutdown => unreachable!("a wait ends when ready or timed out"),
        }
    }
}

/// Serve the pool's jobs until it shuts down, then let go of every job.
pub(crate) fn worker_loop<S: 'static>(worker: &Worker<S>, state: &mut S) {
    worker.serve(state, None);
    worker.retire_all();
}

/// Whether this thread is a worker of `pool` (one of its tasks is running here) that can wait
/// working ([`wait_working`] does not return `None`).
pub(crate) fn is_worker_of<S: 'static>(pool: &Arc<PoolShared<S>>) -> bool {
    pool.nested_init.is_some()
        && CURRENT
            .with(Cell::get)
            .is_some_and(|c| c.pool == Arc::as_ptr(pool).cast::<()>())
}

/// If this thread is a worker of `pool` (a task of one of its jobs is running here, and wants
/// to wait): serve the pool's jobs until `ready()` holds or `deadline` passes, on this worker,
/// with its own queues and a state of its own (README: "Waiting inside a task").
///
/// `None` if this thread is not one of `pool`'s workers: the caller blocks as it would anywhere.
/// `seq` is the job waited on ([`JobError::OwnJob`] if this thread is inside one of its tasks).
pub(crate) fn wait_working<S: 'static>(
    pool: &Arc<PoolShared<S>>,
    seq: u64,
    deadline: Option<Instant>,
    ready: &mut dyn FnMut() -> bool,
) -> Option<Result<(), JobError>> {
    let current = CURRENT.with(Cell::get)?;
    if current.pool != Arc::as_ptr(pool).cast::<()>() {
        return None;
    }
    // SAFETY: `CURRENT` is set only by `Worker::mark`, to the address of a `Worker` whose pool
    // is `current.pool`, and cleared by the mark's drop, which the borrow checker puts before
    // that worker's end; it is thread-local, so that worker is this thread's and alive. Its
    // `PoolShared` is kept alive by its `Arc`, as is `pool`: two live objects at one address
    // are the same object, so the worker is a `Worker<S>` for this `S`. The worker is only ever
    // used through shared references (its mutable parts are behind a `RefCell`).
    let worker = unsafe { &*current.worker.cast::<Worker<S>>() };
    let init = pool.nested_init.as_deref()?;
    Some(worker.wait(seq, init, deadline, ready))
}
