//! Back-pressure of a job: submitters block while `max_in_flight` ids are submitted but not yet
//! taken back, and the consumer's [`Room::took`] wakes them. The protocol is described in
//! `README.md` beside this file; the loom models at the bottom check it.

use std::sync::PoisonError;

use crate::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use crate::sync::{sc_load, Condvar, Mutex, MutexGuard};

/// The submission lock (guarding `G`, the submission side's state), the condition variable
/// blocked submitters wait on, the count of ids taken back, and the count of waiters.
///
/// The submitted count is not here: it only changes under the lock, so a submitter holding the
/// lock passes it in. A submitter that finds no room counts itself in `waiting` *before* it
/// reads `taken` again; [`Room::took`] adds to `taken` *before* it reads `waiting` (both
/// `SeqCst`): either the submitter sees the new room, or the consumer sees the waiter and
/// notifies it under the lock, after the waiter is in the condition variable's queue. When
/// nobody waits, `took` is one `fetch_add` and one load: no lock.
#[derive(Debug)]
pub(crate) struct Room<G> {
    lock: Mutex<G>,
    cv: Condvar,
    /// Taken back by the consumer (or completed, when outcomes are discarded).
    taken: AtomicUsize,
    /// Submitters blocked on `cv` (changed under `lock`), and those that wait working inside
    /// a task ([`Room::enter_wait`], changed without it).
    waiting: AtomicUsize,
}

impl<G> Room<G> {
    /// A room whose lock guards `guarded`.
    pub(crate) fn new(guarded: G) -> Self {
        Room {
            lock: Mutex::new(guarded),
            cv: Condvar::new(),
            taken: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Take the submission lock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, G> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ids taken back so far.
    #[inline]
    pub(crate) fn taken(&self) -> usize {
        self.taken.load(SeqCst)
    }

    /// How many more ids fit, with `submitted` ids submitted and at most `cap` in flight.
    #[inline]
    pub(crate) fn free(&self, cap: usize, submitted: usize) -> usize {
        cap.saturating_sub(submitted - self.taken())
    }

    /// Under the lock (`guard`), having found no room: wait until [`Room::took`] (or
    /// [`Room::wake_all`], [`Room::notify_all`]) may have made some. Returns the guard; the
    /// caller looks again (the room, and whatever else may have ended its wait).
    pub(crate) fn wait<'g>(
        &self,
        guard: MutexGuard<'g, G>,
        cap: usize,
        submitted: usize,
    ) -> MutexGuard<'g, G> {
        let mut guard = guard;
        self.waiting.fetch_add(1, SeqCst);
        if cap.saturating_sub(submitted - sc_load!(self.taken)) == 0 {
            guard = self.cv.wait(guard).unwrap_or_else(PoisonError::into_inner);
        }
        self.waiting.fetch_sub(1, SeqCst);
        guard
    }

    /// `k` ids were taken back: make room and wake the blocked submitters, if any; `true` if
    /// there were some (a waiter that is not on the condition variable needs its own wake-up).
    #[inline]
    pub(crate) fn took(&self, k: usize) -> bool {
        self.taken.fetch_add(k, SeqCst);
        if sc_load!(self.waiting) > 0 {
            drop(self.lock());
            self.cv.notify_all();
            return true;
        }
        false
    }

    /// Count a waiter that waits elsewhere than on the condition variable (a submitter that
    /// runs the pool's work meanwhile), without the lock: [`Room::took`] then reports it. Call
    /// before looking at the room, and [`Room::leave_wait`] after.
    pub(crate) fn enter_wait(&self) {
        self.waiting.fetch_add(1, SeqCst);
    }

    /// The waiter counted by [`Room::enter_wait`] is done.
    pub(crate) fn leave_wait(&self) {
        self.waiting.fetch_sub(1, SeqCst);
    }

    /// Waiters counted now.
    pub(crate) fn waiters(&self) -> usize {
        sc_load!(self.waiting)
    }

    /// Wake every blocked submitter, taking the lock first (for a change made outside it).
    pub(crate) fn wake_all(&self) {
        drop(self.lock());
        self.cv.notify_all();
    }

    /// Wake every blocked submitter, for a change made under the lock.
    pub(crate) fn notify_all(&self) {
        self.cv.notify_all();
    }
}

/// Loom models of the back-pressure protocol: every interleaving (up to a preemption bound) of
/// submitters blocked on room against a consumer taking ids back. A lost wake-up shows as a
/// deadlock, which loom reports. Run with `just loom`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::Room;
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

    /// The submission state a job guards with the lock: the submitted count (it only changes
    /// under the lock).
    struct Submit {
        submitted: usize,
    }

    /// Submit one id as `submit_ids` with `wait` does: under the lock, wait until there is room.
    fn submit_one(room: &Room<Submit>, cap: usize, published: &AtomicUsize) {
        let mut s = room.lock();
        while room.free(cap, s.submitted) == 0 {
            let submitted = s.submitted;
            s = room.wait(s, cap, submitted);
        }
        s.submitted += 1;
        // What the strategy's queue would see: the consumer may now take it back.
        published.fetch_add(1, SeqCst);
    }

    /// Take back `n` ids as they are submitted (the consumer's `next`, reduced to counters).
    fn consume(room: &Room<Submit>, published: &AtomicUsize, n: usize) {
        let mut taken = 0;
        while taken < n {
            if published.load(SeqCst) > taken {
                taken += 1;
                room.took(1);
            } else {
                thread::yield_now();
            }
        }
    }

    #[test]
    fn loom_room_blocked_submitter_wakes_when_room_is_made() {
        // One id in flight with max_in_flight 1: the submitter must wait for the consumer.
        model(|| {
            let room = Arc::new(Room::new(Submit { submitted: 1 }));
            let published = Arc::new(AtomicUsize::new(1));
            let t = {
                let (room, published) = (room.clone(), published.clone());
                thread::spawn(move || submit_one(&room, 1, &published))
            };
            room.took(1);
            t.join().unwrap();
            assert_eq!(room.lock().submitted, 2);
            assert_eq!(room.taken(), 1);
        });
    }

    #[test]
    fn loom_room_two_blocked_submitters_both_get_room() {
        // max_in_flight 1, one id in flight, two submitters of one id each and a consumer that
        // takes back all three: each submitter gets its turn, none stays blocked.
        model(|| {
            let room = Arc::new(Room::new(Submit { submitted: 1 }));
            let published = Arc::new(AtomicUsize::new(1));
            let submitters: Vec<_> = (0..2)
                .map(|_| {
                    let (room, published) = (room.clone(), published.clone());
                    thread::spawn(move || submit_one(&room, 1, &published))
                })
                .collect();
            consume(&room, &published, 3);
            for t in submitters {
                t.join().unwrap();
            }
            assert_eq!(room.lock().submitted, 3);
            assert_eq!(room.taken(), 3);
        });
    }
}
