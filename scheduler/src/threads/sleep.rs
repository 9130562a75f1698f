//! Parking idle workers without losing a wake-up. The protocol is described in `README.md`
//! beside this file.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

/// An event counter plus a condition variable.
///
/// Whoever makes new work visible (a submission, a steal that moved several tasks, the end of
/// the run) calls [`Sleep::notify`], which bumps the counter *before* looking for sleepers. A
/// worker reads the counter *before* its last search and parks only if it is unchanged; both
/// sides use `SeqCst`, so either the notifier sees the sleeper or the sleeper sees the new
/// count.
#[derive(Debug, Default)]
pub(crate) struct Sleep {
    events: AtomicU64,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
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
        while self.events.load(SeqCst) == seen && !done.load(SeqCst) {
            guard = self.cv.wait(guard).unwrap_or_else(PoisonError::into_inner);
        }
        self.sleepers.fetch_sub(1, SeqCst);
    }

    /// [`Sleep::park`], but wake by `deadline` at the latest.
    pub(crate) fn park_until(&self, seen: u64, deadline: Instant, done: &AtomicBool) {
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.sleepers.fetch_add(1, SeqCst);
        while self.events.load(SeqCst) == seen && !done.load(SeqCst) {
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

    /// Record an event and wake one sleeper (or all of them).
    pub(crate) fn notify(&self, all: bool) {
        self.events.fetch_add(1, SeqCst);
        if self.sleepers.load(SeqCst) > 0 {
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
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<(usize, Option<bool>)>,
    cv: Condvar,
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
