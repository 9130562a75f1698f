//! The end of a job: the counts of ids submitted and completed, the closed flag and the `over`
//! flag. The protocol is described in `README.md` beside this file; the loom models at the
//! bottom check it.

use crate::sync::atomic::{
    AtomicBool, AtomicUsize,
    Ordering::{Relaxed, SeqCst},
};
use crate::sync::sc_load;

/// When a job is over: closed (no more submissions) and every submitted id completed.
///
/// Workers add their completions ([`Ending::completed`]) and then call [`Ending::check`]; the
/// closer sets the flag ([`Ending::close`]) and then calls [`Ending::check`]. Each side writes
/// its own atomic before it reads the other's (all `SeqCst`), so the last of them sees both
/// and ends the job; `over` is set by a `swap`, so exactly one caller of `check` reports the
/// end (and wakes the workers), however many see the condition.
#[derive(Debug)]
pub(crate) struct Ending {
    /// Ids handed to the job (promised, for open arrivals). Increased under the job's
    /// submission lock only, and before the ids are visible to workers.
    submitted: AtomicUsize,
    completed: AtomicUsize,
    closed: AtomicBool,
    over: AtomicBool,
}

impl Ending {
    /// `submitted` ids promised, closed or not, over already or not (a closed empty job).
    pub(crate) fn new(submitted: usize, closed: bool, over: bool) -> Self {
        Ending {
            submitted: AtomicUsize::new(submitted),
            completed: AtomicUsize::new(0),
            closed: AtomicBool::new(closed),
            over: AtomicBool::new(over),
        }
    }

    /// Ids submitted so far.
    #[inline]
    pub(crate) fn submitted(&self) -> usize {
        self.submitted.load(SeqCst)
    }

    /// `k` more ids submitted (before they are handed to the strategy).
    #[inline]
    pub(crate) fn submit(&self, k: usize) {
        self.submitted.fetch_add(k, SeqCst);
    }

    /// `k` more ids completed; call [`Ending::check`] next.
    #[inline]
    pub(crate) fn completed(&self, k: usize) {
        self.completed.fetch_add(k, SeqCst);
    }

    /// No more submissions; call [`Ending::check`] next.
    pub(crate) fn close(&self) {
        // A swap rather than a store: the same instruction as a `SeqCst` store on x86-64, and
        // under loom, whose modification order of an atomic is only partial for plain stores,
        // a read-modify-write that the workers' `sc_load!` of `closed` is ordered with.
        self.closed.swap(true, SeqCst);
    }

    /// Whether the job was closed.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(SeqCst)
    }

    /// Whether the job is over (ended or stopped).
    #[inline]
    pub(crate) fn is_over(&self) -> bool {
        self.over.load(SeqCst)
    }

    /// [`Ending::is_over`] with a relaxed load, for a worker's inner loop (a late answer
    /// costs one more task, never a lost one).
    #[inline]
    pub(crate) fn is_over_relaxed(&self) -> bool {
        self.over.load(Relaxed)
    }

    /// Mark the job over at once (it was stopped): a later [`Ending::check`] reports nothing.
    pub(crate) fn stop(&self) {
        self.over.store(true, SeqCst);
    }

    /// If the job is closed and every submitted id completed, mark it over; `true` for the
    /// one caller that did (it wakes the workers).
    #[inline]
    pub(crate) fn check(&self) -> bool {
        sc_load!(flag self.closed)
            && sc_load!(self.completed) == self.submitted.load(SeqCst)
            && !self.over.swap(true, SeqCst)
    }
}

/// Loom models of the termination protocol: every interleaving (up to a preemption bound) of
/// workers flushing completions against the closer (and a submitter). Checked: once every
/// submitted id completed and the job is closed, `over` is set, and exactly one `check`
/// reported it. Run with `just loom`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::Ending;
    use crate::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use crate::sync::{thread, Arc};

    /// Explore with a preemption bound of 3, or `LOOM_MAX_PREEMPTIONS` when set.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
            b.preemption_bound = Some(3);
        }
        b.check(f);
    }

    /// A worker's flush of `k` completions, as `Attached::flush` does: add, then check.
    fn flush(ending: &Ending, k: usize, ends: &AtomicUsize) {
        ending.completed(k);
        if ending.check() {
            ends.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn loom_ending_two_workers_and_close_end_the_job_once() {
        // Two ids submitted, one completed by each of two workers; the job closed meanwhile.
        model(|| {
            let ending = Arc::new(Ending::new(2, false, false));
            let ends = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let (ending, ends) = (ending.clone(), ends.clone());
                    thread::spawn(move || flush(&ending, 1, &ends))
                })
                .collect();
            ending.close();
            if ending.check() {
                ends.fetch_add(1, SeqCst);
            }
            for t in workers {
                t.join().unwrap();
            }
            assert!(ending.is_over(), "closed and all completed, yet not over");
            assert_eq!(ends.load(SeqCst), 1, "the end reported exactly once");
        });
    }

    #[test]
    fn loom_ending_late_submission_is_waited_for() {
        // One id submitted up front; the submitter adds a second (visible to the worker only
        // after `submit`), then closes. A worker completes the first, another the second: the
        // job must not end between the two, and must end once.
        model(|| {
            let ending = Arc::new(Ending::new(1, false, false));
            let ends = Arc::new(AtomicUsize::new(0));
            let published = Arc::new(AtomicUsize::new(0));
            let first = {
                let (ending, ends) = (ending.clone(), ends.clone());
                thread::spawn(move || flush(&ending, 1, &ends))
            };
            let second = {
                let (ending, ends, published) = (ending.clone(), ends.clone(), published.clone());
                thread::spawn(move || {
                    while published.load(SeqCst) == 0 {
                        thread::yield_now();
                    }
                    assert!(!ending.is_over(), "over while an id is still running");
                    flush(&ending, 1, &ends)
                })
            };
            ending.submit(1);
            published.store(1, SeqCst);
            ending.close();
            let closer_ended = ending.check();
            if closer_ended {
                ends.fetch_add(1, SeqCst);
            }
            first.join().unwrap();
            second.join().unwrap();
            assert!(ending.is_over());
            assert_eq!(ends.load(SeqCst), 1);
        });
    }
}
