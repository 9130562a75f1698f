//! A cpu station's tickets: the items bound to task ids of the station's job and not started
//! yet, and the count of stage calls running now. The binder (the station's hand-out, under the
//! station's lock, so one at a time) puts each item in the slot of its id *before* it submits
//! the id, so the CPU worker that runs the id finds the item there without taking the station's
//! lock; each slot has a lock of its own, which only the binder and that one runner ever take.
//! Ids are handed out in order, so a ring of slots serves: the binder binds an id only while its
//! slot is empty (the runner of the id a ring's length earlier has taken its item), and stops
//! handing out otherwise — that runner's `process` hands out again when it finishes.
//!
//! The stop: a runner counts its call (`in_call`, `SeqCst`) *before* it reads `stopped`, and the
//! run's stop sets `stopped` before it reads the count: of the two, at least one sees the
//! other's write, so a stopped run either starts no new call or waits for it. The models below
//! check both hand-offs under loom.

use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use crate::sync::Mutex;
use std::sync::PoisonError;

/// Slots of a cpu station's ring: at most this many items handed out and not started.
pub(crate) const RING: usize = 256;

pub(crate) struct Tickets<T> {
    slots: Box<[Mutex<Option<T>>]>,
    /// Stage calls running now (inside the stage function): what a stopped run waits for.
    in_call: AtomicUsize,
}

impl<T> Tickets<T> {
    pub fn new(ring: usize) -> Tickets<T> {
        Tickets {
            slots: (0..ring.max(1)).map(|_| Mutex::new(None)).collect(),
            in_call: AtomicUsize::new(0),
        }
    }

    /// How many of the ids `first..first + n` can be bound now (their slots are empty), from
    /// `first` on. The binder's side (one binder at a time).
    pub fn free_from(&self, first: usize, n: usize) -> usize {
        let n = n.min(self.slots.len());
        (0..n)
            .take_while(|i| self.lock(first + i).is_none())
            .count()
    }

    /// Bind `item` to `id`, before `id` is submitted (its slot is empty: see
    /// [`free_from`](Tickets::free_from)).
    pub fn bind(&self, id: usize, item: T) {
        let mut g = self.lock(id);
        debug_assert!(g.is_none(), "id {id}'s slot is taken");
        *g = Some(item);
    }

    /// Take back the item bound to `id` (its submission failed).
    pub fn unbind(&self, id: usize) -> Option<T> {
        self.lock(id).take()
    }

    /// The runner of `id`: its item, with its call counted, or nothing when the run is stopped
    /// (the item is then dropped here: a stopped run starts no new call).
    pub fn start(&self, id: usize, stopped: &AtomicBool) -> Option<T> {
        let item = self.lock(id).take()?;
        self.enter_unless(stopped).then_some(item)
    }

    /// A call is about to start unless the run has stopped: counted *before* `stopped` is
    /// read (see the module's note); `false` (and not counted) once it has. A ticket's
    /// [`start`](Tickets::start) and an item run on (`station.rs`) both go through here.
    pub fn enter_unless(&self, stopped: &AtomicBool) -> bool {
        self.in_call.fetch_add(1, SeqCst);
        if sc_flag(stopped) {
            self.in_call.fetch_sub(1, SeqCst);
            return false;
        }
        true
    }

    /// A call counted by [`start`](Tickets::start) or [`enter`](Tickets::enter) has returned.
    pub fn leave(&self) {
        self.in_call.fetch_sub(1, SeqCst);
    }

    /// A call starts that was not bound to an id (a blocking thread's item, taken under the
    /// station's lock after its check of `stopped`).
    pub fn enter(&self) {
        self.in_call.fetch_add(1, SeqCst);
    }

    /// Stage calls running now (read after `stopped` was set: see the module's note).
    pub fn calls(&self) -> usize {
        #[cfg(loom)]
        let n = self.in_call.fetch_add(0, SeqCst);
        #[cfg(not(loom))]
        let n = self.in_call.load(SeqCst);
        n
    }

    fn lock(&self, id: usize) -> crate::sync::MutexGuard<'_, Option<T>> {
        self.slots[id % self.slots.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A `SeqCst` load of a flag one side of a store-buffering pair rests on (loom models a
/// `SeqCst` load as an acquire load; a read-modify-write that changes nothing reads the latest
/// value, as the real load does in the single total order).
fn sc_flag(flag: &AtomicBool) -> bool {
    #[cfg(loom)]
    let v = flag.fetch_or(false, SeqCst);
    #[cfg(not(loom))]
    let v = flag.load(SeqCst);
    v
}

#[cfg(all(test, loom))]
mod models {
    use super::Tickets;
    use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use crate::sync::{thread, Arc};

    /// A ticket starts while the run stops (`run_ticket` against `stop` and then
    /// `calls_running`, as `join_threads` reads it): once the stop has seen no call running,
    /// none is running or starts; and the item was either started or dropped, never left in
    /// its slot.
    #[test]
    fn loom_a_ticket_starting_during_the_stop_is_waited_for_or_runs_nothing() {
        loom::model(|| {
            let tickets = Arc::new(Tickets::<u32>::new(2));
            let stopped = Arc::new(AtomicBool::new(false));
            // The stop saw no call running (`join_threads` would go on and detach nothing).
            let concluded = Arc::new(AtomicBool::new(false));
            tickets.bind(0, 7); // bound before the id is submitted
            let runner = {
                let (t, s, c) = (
                    Arc::clone(&tickets),
                    Arc::clone(&stopped),
                    Arc::clone(&concluded),
                );
                thread::spawn(move || {
                    if let Some(item) = t.start(0, &s) {
                        assert_eq!(item, 7);
                        // inside the call: the latest value (a read-modify-write)
                        assert!(
                            !c.fetch_or(false, SeqCst),
                            "a call runs after the stop saw none running"
                        );
                        t.leave();
                    }
                })
            };
            stopped.store(true, SeqCst);
            if tickets.calls() == 0 {
                concluded.store(true, SeqCst);
            }
            runner.join().unwrap();
            assert!(tickets.unbind(0).is_none(), "the item was left in its slot");
            assert_eq!(tickets.calls(), 0);
        });
    }

    /// The binder reuses a ring of one slot for two ids while a runner takes them: the runner
    /// always finds its own id's item (bound before the id was submitted), and the binder binds
    /// the second id only after the first item was taken.
    #[test]
    fn loom_a_ring_slot_is_bound_again_only_after_its_item_was_taken() {
        loom::model(|| {
            let tickets = Arc::new(Tickets::<usize>::new(1));
            let stopped = Arc::new(AtomicBool::new(false));
            let submitted = Arc::new(AtomicUsize::new(0));
            let runner = {
                let (t, s, sub) = (
                    Arc::clone(&tickets),
                    Arc::clone(&stopped),
                    Arc::clone(&submitted),
                );
                thread::spawn(move || {
                    for id in 0..2 {
                        while sub.load(SeqCst) <= id {
                            thread::yield_now();
                        }
                        assert_eq!(t.start(id, &s), Some(id), "id {id} found its own item");
                        t.leave();
                    }
                })
            };
            for id in 0..2 {
                while tickets.free_from(id, 1) == 0 {
                    thread::yield_now(); // a full ring: handed out again once a runner took one
                }
                tickets.bind(id, id);
                submitted.store(id + 1, SeqCst);
            }
            runner.join().unwrap();
            assert_eq!(tickets.calls(), 0);
        });
    }
}
