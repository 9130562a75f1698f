//! The feeder's baton: at most one thread feeds a segment at a time, and a request to feed it
//! made while another thread feeds is served by that thread (it goes round once more), never
//! lost and never waited for. Every thread that makes room or brings items (a station, a
//! tail, the consumer) calls [`Baton::kick`]; none of them blocks on it.
//!
//! The protocol, checked by the loom models below, is one counter of requests, changed only
//! by read-modify-writes (so every thread sees one order of them, with no store-buffering
//! pair to get wrong). A kicker adds one; the thread that moved it from 0 holds the baton and
//! feeds. Before each round the holder reads the count, after it tries to put it back to 0
//! from what it read: if a kick came meanwhile the count moved, the exchange fails, and the
//! holder goes round again, after that kick. A kick therefore either finds the count at 0 and
//! feeds itself, or finds a holder that has not yet finished its last exchange, which will
//! fail and feed once more.
//!
//! An earlier form (a flag and a `try_lock`ed mutex, the holder re-reading the flag after
//! unlocking) lost a request in a loom model: a failed `try_lock` does not order the
//! kicker's flag store before the holder's re-read.

use crate::sync::atomic::{AtomicUsize, Ordering::AcqRel, Ordering::Acquire};

pub(crate) struct Baton {
    /// Kicks since the holder's last round began; 0 when nobody holds the baton.
    requests: AtomicUsize,
}

/// Lets go of the baton when a round says stop, or unwinds (an internal panic), so later kicks
/// still feed. A read-modify-write, not a store: every change of the count is one (with a
/// plain store here the stop model failed under loom: a later kick read a count from before it).
struct LetGo<'a>(&'a AtomicUsize);

impl Drop for LetGo<'_> {
    fn drop(&mut self) {
        self.0.swap(0, AcqRel);
    }
}

impl Baton {
    pub fn new() -> Baton {
        Baton {
            requests: AtomicUsize::new(0),
        }
    }

    /// Ask for a round of `feed` and run rounds as long as they are asked for, unless another
    /// thread holds the baton (that one runs the round asked for here). Never blocks. `feed`
    /// returns false to stop (the run was stopped): the requests left are dropped with the
    /// run, and the baton is let go.
    pub fn kick(&self, mut feed: impl FnMut() -> bool) {
        if self.requests.fetch_add(1, AcqRel) != 0 {
            return;
        }
        let release = LetGo(&self.requests);
        loop {
            let seen = self.requests.load(Acquire);
            if !feed() {
                return; // `release` lets go
            }
            if self
                .requests
                .compare_exchange(seen, 0, AcqRel, Acquire)
                .is_ok()
            {
                std::mem::forget(release);
                return;
            }
        }
    }
}

#[cfg(all(test, loom))]
mod models {
    use super::Baton;
    use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use crate::sync::{thread, Arc};

    /// Two threads bring an item each and kick while the other may be feeding: when both have
    /// returned, both items were fed (a lost request would leave one behind), each once.
    #[test]
    fn loom_a_kick_while_another_thread_feeds_is_served() {
        loom::model(|| {
            let baton = Arc::new(Baton::new());
            let pending = Arc::new(AtomicUsize::new(0));
            let fed = Arc::new(AtomicUsize::new(0));
            let bring = |baton: Arc<Baton>, pending: Arc<AtomicUsize>, fed: Arc<AtomicUsize>| {
                move || {
                    pending.fetch_add(1, SeqCst);
                    baton.kick(|| {
                        fed.fetch_add(pending.swap(0, SeqCst), SeqCst);
                        true
                    });
                }
            };
            let t = thread::spawn(bring(
                Arc::clone(&baton),
                Arc::clone(&pending),
                Arc::clone(&fed),
            ));
            bring(Arc::clone(&baton), Arc::clone(&pending), Arc::clone(&fed))();
            t.join().unwrap();
            assert_eq!(pending.load(SeqCst), 0, "an item was left unfed");
            assert_eq!(fed.load(SeqCst), 2, "each item fed once");
        });
    }

    /// Cancel during a window refill: the run is stopped while a thread feeds and another
    /// kicks. No round starts after the feeder saw the stop, and no thread is left holding
    /// the baton (a later kick gets it).
    #[test]
    fn loom_a_stop_during_a_refill_ends_the_feeding() {
        loom::model(|| {
            let baton = Arc::new(Baton::new());
            let stopped = Arc::new(AtomicBool::new(false));
            let after_stop = Arc::new(AtomicUsize::new(0));
            let feed = |stopped: Arc<AtomicBool>, after: Arc<AtomicUsize>| {
                move || {
                    if stopped.load(SeqCst) {
                        after.fetch_add(1, SeqCst);
                        return false;
                    }
                    true
                }
            };
            let t = {
                let (b, s, a) = (
                    Arc::clone(&baton),
                    Arc::clone(&stopped),
                    Arc::clone(&after_stop),
                );
                thread::spawn(move || b.kick(feed(s, a)))
            };
            stopped.store(true, SeqCst);
            baton.kick(feed(Arc::clone(&stopped), Arc::clone(&after_stop)));
            t.join().unwrap();
            // a feeder that sees the stop runs no round; at most one per kick saw it
            assert!(after_stop.load(SeqCst) <= 2);
            let mut rounds = 0;
            baton.kick(|| {
                rounds += 1;
                true
            });
            assert_eq!(rounds, 1, "the baton is free after the stop");
        });
    }
}
