//! A consumer that waits for an outcome inside a task of its job's own pool runs the pool's
//! work meanwhile and, when there is none, parks with the pool's workers (on `Sleep`), not on
//! the job's channel: whoever sends it a message must then wake the pool's sleepers.
//! [`ConsumerWait`] is the flag that tells them to. The protocol is described in `README.md`
//! beside this file ("Waiting inside a task"); the loom models at the bottom check it, and the
//! wake-up of a submitter that waits working for room.

use crate::sync::atomic::{
    fence, AtomicBool,
    Ordering::{Relaxed, SeqCst},
};

/// Raised while the consumer waits working. The consumer raises it, then (after a `SeqCst`
/// fence) looks at the channel; a sender sends, then (after a `SeqCst` fence) reads it. Of two
/// `SeqCst` fences one comes first: if the consumer's, the sender sees the flag and wakes the
/// sleepers; if the sender's, every later look of the consumer sees the message.
#[derive(Debug, Default)]
pub(crate) struct ConsumerWait {
    waits: AtomicBool,
}

impl ConsumerWait {
    /// The consumer is about to wait working: call before it looks at the channel.
    pub(crate) fn enter(&self) {
        self.waits.store(true, SeqCst);
        fence(SeqCst);
    }

    /// The wait is over.
    pub(crate) fn leave(&self) {
        self.waits.store(false, SeqCst);
    }

    /// A message was just sent: whether the consumer may be parked with the workers (then the
    /// sender wakes them). One fence and one load, on the path of every outcome delivered.
    #[inline]
    pub(crate) fn sent(&self) -> bool {
        fence(SeqCst);
        self.waits.load(Relaxed)
    }
}

/// Loom models of waiting working: every interleaving (up to a preemption bound) of a waiter
/// that parks on the pool's `Sleep` against the thread that makes its condition true. A lost
/// wake-up shows as a deadlock, which loom reports. Run with `just loom`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::ConsumerWait;
    use crate::sync::atomic::{AtomicUsize, Ordering::Acquire, Ordering::Release};
    use crate::sync::{thread, Arc};
    use crate::threads::room::Room;
    use crate::threads::sleep::Sleep;

    /// Explore with a preemption bound of 3, or `LOOM_MAX_PREEMPTIONS` when set.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
            b.preemption_bound = Some(3);
        }
        b.check(f);
    }

    /// A wait inside a task as `Worker::serve` runs one, with no other work to do: read the
    /// event count, look at the condition, park if it does not hold.
    fn wait_working(sleep: &Sleep, ready: impl Fn() -> bool) {
        let never = std::sync::atomic::AtomicBool::new(false);
        loop {
            let seen = sleep.events();
            if ready() {
                return;
            }
            sleep.park(seen, &never);
        }
    }

    #[test]
    fn loom_consumer_waiting_working_is_woken_by_a_delivery() {
        // The channel is reduced to a count of messages, sent with a release write and read
        // with an acquire load (what the channel's own synchronisation gives).
        model(|| {
            let sleep = Arc::new(Sleep::default());
            let flag = Arc::new(ConsumerWait::default());
            let sent = Arc::new(AtomicUsize::new(0));
            let consumer = {
                let (sleep, flag, sent) = (sleep.clone(), flag.clone(), sent.clone());
                thread::spawn(move || {
                    flag.enter();
                    wait_working(&sleep, || sent.load(Acquire) > 0);
                    flag.leave();
                })
            };
            // A worker delivers an outcome, as `deliver` does.
            sent.fetch_add(1, Release);
            if flag.sent() {
                sleep.notify(true);
            }
            consumer.join().unwrap();
        });
    }

    /// The submission state a job guards with the lock: the submitted count.
    struct Submit {
        submitted: usize,
    }

    #[test]
    fn loom_submitter_waiting_working_is_woken_when_room_is_made() {
        // max_in_flight 1 and one id in flight: the submitter waits working for room, counted
        // among the room's waiters; the consumer's `took` reports it and wakes the sleepers.
        model(|| {
            let sleep = Arc::new(Sleep::default());
            let room = Arc::new(Room::new(Submit { submitted: 1 }));
            let submitter = {
                let (sleep, room) = (sleep.clone(), room.clone());
                thread::spawn(move || {
                    room.enter_wait();
                    wait_working(&sleep, || room.free(1, 1) > 0);
                    room.leave_wait();
                    room.lock().submitted += 1;
                })
            };
            if room.took(1) {
                sleep.notify(true);
            }
            submitter.join().unwrap();
            assert_eq!(room.lock().submitted, 2);
        });
    }
}
