//! Parking idle workers without losing a wake-up. The protocol is described in `README.md`
//! beside this file.

use std::sync::PoisonError;

use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use crate::sync::{Condvar, Mutex};
// The run's `done` flag belongs to the engine (threads/mod.rs) and stays a std atomic; it is
// only read here under the lock, after the loom-visible event counter.
use std::sync::atomic::AtomicBool;
use std::time::Instant;

// The two `SeqCst` loads the protocol rests on are `sc_load!` (crate::sync): the notifier's
// read of `sleepers` after its increment of `events`, the sleeper's read of `events` after its
// increment of `sleepers`.
use crate::sync::sc_load;

/// An event counter plus a condition variable.
///
/// Whoever makes new work visible (a submission, a steal that moved several tasks, the end of
/// the run) calls [`Sleep::notify`], which bumps the counter *before* looking for sleepers. A
/// worker reads the counter *before* its last search and parks only if it is unchanged; both
/// sides use `SeqCst`, so either the notifier sees the sleeper or the sleeper sees the new
/// count.
#[derive(Debug)]
pub(crate) struct Sleep {
    events: AtomicU64,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Default for Sleep {
    fn default() -> Self {
        Sleep {
            events: AtomicU64::new(0),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }
}

impl Sleep {
    /// The event count; read it before the search that may end in [`Sleep::park`].
    #[inline]
    pub(crate) fn events(&self) -> u64 {
        self.events.load(SeqCst)
    }

    /// Block until the event count differs from `seen` or `done` is set.
    pub(crate) fn park(&self, seen: u64, done: &AtomicBool) {
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.sleepers.fetch_add(1, SeqCst);
        while sc_load!(self.events) == seen && !done.load(SeqCst) {
            guard = self.cv.wait(guard).unwrap_or_else(PoisonError::into_inner);
        }
        self.sleepers.fetch_sub(1, SeqCst);
    }

    /// [`Sleep::park`], but wake by `deadline` at the latest (a worker keeping time for a
    /// release). Under loom, which has no clock, it is [`Sleep::park`].
    pub(crate) fn park_until(&self, seen: u64, deadline: Instant, done: &AtomicBool) {
        #[cfg(loom)]
        {
            let _ = deadline;
            self.park(seen, done);
        }
        #[cfg(not(loom))]
        {
            let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.sleepers.fetch_add(1, SeqCst);
            while sc_load!(self.events) == seen && !done.load(SeqCst) {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                guard = self
                    .cv
                    .wait_timeout(guard, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            self.sleepers.fetch_sub(1, SeqCst);
        }
    }

    /// Record an event and wake one sleeper (or all of them).
    pub(crate) fn notify(&self, all: bool) {
        self.events.fetch_add(1, SeqCst);
        if sc_load!(self.sleepers) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            if all {
                self.cv.notify_all();
            } else {
                self.cv.notify_one();
            }
        }
    }
}

/// Holds the workers until every one has started (and pinned itself), then releases them all
/// at once; or tells them to give up if the run could not start.
#[derive(Debug)]
pub(crate) struct Gate {
    state: Mutex<(usize, Option<bool>)>,
    cv: Condvar,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            state: Mutex::new((0, None)),
            cv: Condvar::new(),
        }
    }
}

impl Gate {
    /// Called by a worker: count it as ready, wait for the verdict, return true to go on.
    pub(crate) fn arrive(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.0 += 1;
        self.cv.notify_all();
        while s.1.is_none() {
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        s.1 == Some(true)
    }

    /// Called by the engine: wait until `n` workers have arrived.
    pub(crate) fn wait_ready(&self, n: usize) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while s.0 < n {
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Release the workers (`go`) or send them home.
    pub(crate) fn open(&self, go: bool) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.1 = Some(go);
        self.cv.notify_all();
    }
}

/// Loom models of the parking protocol and the gate: every interleaving of a few threads (up to
/// a preemption bound) is explored; a lost wake-up shows as a deadlock, which loom reports.
/// Run with `just loom`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::{Gate, Sleep};
    use crate::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use crate::sync::{thread, Arc};
    use std::sync::atomic::AtomicBool;

    /// Explore with a preemption bound of 3, or `LOOM_MAX_PREEMPTIONS` when set.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
            b.preemption_bound = Some(3);
        }
        b.check(f);
    }

    /// Take one unit of work if there is one (the strategy's search, reduced to a counter).
    fn take(work: &AtomicUsize) -> bool {
        let mut n = work.load(SeqCst);
        while n > 0 {
            match work.compare_exchange(n, n - 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
        false
    }

    /// A worker as the engine runs one: read the event count, search, park if nothing.
    fn worker(sleep: &Sleep, work: &AtomicUsize, done: &AtomicBool) {
        loop {
            let seen = sleep.events();
            if take(work) || done.load(SeqCst) {
                return;
            }
            sleep.park(seen, done);
        }
    }

    #[test]
    fn loom_sleep_no_lost_wakeup_one_parker() {
        model(|| {
            let sleep = Arc::new(Sleep::default());
            let work = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(AtomicBool::new(false));
            let t = {
                let (sleep, work, done) = (sleep.clone(), work.clone(), done.clone());
                thread::spawn(move || worker(&sleep, &work, &done))
            };
            work.fetch_add(1, SeqCst);
            sleep.notify(false);
            t.join().unwrap();
            assert_eq!(work.load(SeqCst), 0, "the parker took the work");
        });
    }

    #[test]
    fn loom_sleep_no_lost_wakeup_two_parkers_notify_one_each() {
        model(|| {
            let sleep = Arc::new(Sleep::default());
            let work = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(AtomicBool::new(false));
            let parkers: Vec<_> = (0..2)
                .map(|_| {
                    let (sleep, work, done) = (sleep.clone(), work.clone(), done.clone());
                    thread::spawn(move || worker(&sleep, &work, &done))
                })
                .collect();
            for _ in 0..2 {
                work.fetch_add(1, SeqCst);
                sleep.notify(false);
            }
            for t in parkers {
                t.join().unwrap();
            }
            assert_eq!(work.load(SeqCst), 0);
        });
    }

    #[test]
    fn loom_sleep_termination_wakes_every_parker() {
        model(|| {
            let sleep = Arc::new(Sleep::default());
            let work = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(AtomicBool::new(false));
            let parkers: Vec<_> = (0..2)
                .map(|_| {
                    let (sleep, work, done) = (sleep.clone(), work.clone(), done.clone());
                    thread::spawn(move || worker(&sleep, &work, &done))
                })
                .collect();
            done.store(true, SeqCst);
            sleep.notify(true);
            for t in parkers {
                t.join().unwrap();
            }
        });
    }

    #[test]
    fn loom_gate_releases_every_worker_once_all_arrived() {
        for go in [true, false] {
            model(move || {
                let gate = Arc::new(Gate::default());
                let arrived = Arc::new(AtomicUsize::new(0));
                let workers: Vec<_> = (0..2)
                    .map(|_| {
                        let (gate, arrived) = (gate.clone(), arrived.clone());
                        thread::spawn(move || {
                            arrived.fetch_add(1, SeqCst);
                            gate.arrive()
                        })
                    })
                    .collect();
                gate.wait_ready(2);
                // wait_ready returns only after both workers arrived.
                assert_eq!(arrived.load(SeqCst), 2);
                gate.open(go);
                for t in workers {
                    assert_eq!(t.join().unwrap(), go);
                }
            });
        }
    }
}
