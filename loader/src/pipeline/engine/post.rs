//! A post: a lock and the condition variable its waiters sleep on, with the one rule that makes
//! a wake-up impossible to lose. A station's state and its blocking threads' `work` are one
//! post; a tail's state and the consumer's `ready` another.
//!
//! The rule: a waiter checks what it waits for (the run's `stopped` flag included) under the
//! lock and then waits, which lets go of the lock atomically; whoever changes what it checks
//! does so under the same lock and notifies under it or after it ([`Post::wake_all`] takes the
//! lock after setting the flag, so a waiter cannot sit between its check and its wait while
//! the flag changes). [`Post::take_or_wait`] is the waiter's side, as a blocking thread uses
//! it; the models below check both sides under loom.

use crate::sync::atomic::{AtomicBool, Ordering::SeqCst};
use crate::sync::{Condvar, Mutex, MutexGuard};
use std::sync::PoisonError;

pub(crate) struct Post<S> {
    st: Mutex<S>,
    cv: Condvar,
}

impl<S> Post<S> {
    pub fn new(s: S) -> Post<S> {
        Post {
            st: Mutex::new(s),
            cv: Condvar::new(),
        }
    }

    /// The state (a panic elsewhere under the lock leaves it usable: nothing here unwinds
    /// half-way through a change).
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.st.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Let go of the lock and sleep until notified (or spuriously); re-check after.
    pub fn wait<'a>(&self, g: MutexGuard<'a, S>) -> MutexGuard<'a, S> {
        self.cv.wait(g).unwrap_or_else(PoisonError::into_inner)
    }

    /// Wake `n` waiters (the caller changed what they check under the lock).
    pub fn notify(&self, n: usize) {
        for _ in 0..n {
            self.cv.notify_one();
        }
    }

    /// Wake every waiter after `stopped` was set: under the lock, so that no waiter is between
    /// its check of the flag and its wait.
    pub fn wake_all(&self) {
        let _g = self.lock();
        self.cv.notify_all();
    }

    /// The waiter's side: until the run stops, `step(state, slept)` either takes something
    /// (`Some`) or says to wait (`None`; called again after the wake-up with `slept` true, so
    /// that it can count itself idle and back). `None` once `stopped` is seen under the lock.
    pub fn take_or_wait<R>(
        &self,
        stopped: &AtomicBool,
        mut step: impl FnMut(&mut S, bool) -> Option<R>,
    ) -> Option<R> {
        let mut g = self.lock();
        let mut slept = false;
        loop {
            if stopped.load(SeqCst) {
                return None;
            }
            if let Some(r) = step(&mut g, slept) {
                return Some(r);
            }
            g = self.wait(g);
            slept = true;
        }
    }
}

#[cfg(all(test, loom))]
mod models {
    use super::Post;
    use crate::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use crate::sync::{thread, Arc};

    /// (i) A blocking thread finishing an item while the consumer drops the iterator: the
    /// thread takes the item handed to it, finishes it and goes back for more, while the
    /// consumer stops the run (`stopped`, then `wake_all`, as `Shared::stop` does). The thread
    /// always leaves (a waiter left asleep is a deadlock, which loom reports), and the item is
    /// finished once or still queued, never lost and never twice.
    #[test]
    fn loom_a_blocking_thread_finishing_while_the_consumer_drops_leaves() {
        loom::model(|| {
            let post = Arc::new(Post::new((vec![7u32], 0usize)));
            let stopped = Arc::new(AtomicBool::new(false));
            let thread = {
                let (post, stopped) = (Arc::clone(&post), Arc::clone(&stopped));
                thread::spawn(move || {
                    let mut finished = Vec::new();
                    // the blocking loop: take an item or wait, until the run stops
                    while let Some(item) = post.take_or_wait(&stopped, |q, _| q.0.pop()) {
                        finished.push(item);
                        post.lock().1 += 1; // passes it on (its tail, under a lock)
                    }
                    finished
                })
            };
            // the consumer drops the iterator
            stopped.store(true, SeqCst);
            post.wake_all();
            let finished = thread.join().unwrap();
            let (queued, passed) = {
                let g = post.lock();
                (g.0.clone(), g.1)
            };
            assert_eq!(
                finished.len() + queued.len(),
                1,
                "the item once: finished or queued"
            );
            assert_eq!(passed, finished.len(), "what was finished was passed on");
        });
    }

    /// The same with the item handed out while the thread waits (`pump`: queue and notify
    /// under the lock) and the stop after it: the thread is woken for the item or by the stop,
    /// never left asleep.
    #[test]
    fn loom_a_blocking_thread_woken_for_an_item_or_the_stop_never_sleeps_on() {
        loom::model(|| {
            let post = Arc::new(Post::new(Vec::<u32>::new()));
            let stopped = Arc::new(AtomicBool::new(false));
            let thread = {
                let (post, stopped) = (Arc::clone(&post), Arc::clone(&stopped));
                thread::spawn(move || {
                    let mut n = 0;
                    while post.take_or_wait(&stopped, |q, _| q.pop()).is_some() {
                        n += 1;
                    }
                    n
                })
            };
            {
                let mut q = post.lock();
                q.push(1);
                post.notify(1);
            }
            stopped.store(true, SeqCst);
            post.wake_all();
            let n = thread.join().unwrap();
            assert_eq!(n + post.lock().len(), 1, "the item once: taken or queued");
        });
    }
}
