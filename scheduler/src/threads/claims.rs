//! Debug builds only: the ids a job's strategy has handed out, to catch one handed out twice.
//!
//! The simulator keeps a claim bitset over every id; a pool job's ids have no end, so this one
//! is a sliding window: bit `i` of word `k` stands for id `base + 64k + i`, and leading words
//! whose ids have all been handed out are dropped (every id is handed out once in the end),
//! so it holds only the span between the oldest id not yet handed out and the newest one.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use crate::TaskId;

/// Handed-out ids of one job (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Claims {
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    /// The id of bit 0 of `words[0]`, a multiple of 64; every id below it was handed out.
    base: TaskId,
    words: VecDeque<u64>,
}

impl Claims {
    /// Mark ids `lo..hi` as handed out; the lowest of them that already was, if any (then
    /// none is marked).
    pub(crate) fn claim(&self, lo: TaskId, hi: TaskId) -> Option<TaskId> {
        if lo >= hi {
            return None;
        }
        let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if lo < w.base {
            return Some(lo);
        }
        let base = w.base;
        let need = (hi - base).div_ceil(64);
        if w.words.len() < need {
            w.words.resize(need, 0);
        }
        let masks = || {
            let (first, last) = ((lo - base) / 64, (hi - 1 - base) / 64);
            (first..=last).map(move |k| {
                let from = if k == first { (lo - base) % 64 } else { 0 };
                let to = if k == last {
                    (hi - 1 - base) % 64 + 1
                } else {
                    64
                };
                let mask = if to - from == 64 {
                    u64::MAX
                } else {
                    ((1u64 << (to - from)) - 1) << from
                };
                (k, mask)
            })
        };
        for (k, mask) in masks() {
            let taken = w.words[k] & mask;
            if taken != 0 {
                return Some(base + 64 * k + taken.trailing_zeros() as usize);
            }
        }
        for (k, mask) in masks() {
            w.words[k] |= mask;
        }
        while w.words.front() == Some(&u64::MAX) {
            w.words.pop_front();
            w.base += 64;
        }
        None
    }

    /// Words held (for the tests: the window slides).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.window.lock().unwrap().words.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    use super::*;
    use crate::{
        run_threads, Attempts, Batch, Context, Instance, JobOptions, Next, Pick, Pool, RunError,
        RunSpec, SharedQueue, Source, Strategy, Tasks, WorkerQueue,
    };

    #[test]
    fn each_id_once_and_the_first_repeat_named() {
        let c = Claims::default();
        assert_eq!(c.claim(0, 10), None);
        assert_eq!(c.claim(10, 11), None);
        assert_eq!(c.claim(5, 6), Some(5));
        assert_eq!(c.claim(11, 200), None);
        // A range overlapping handed-out ids names the lowest repeat and marks nothing.
        assert_eq!(c.claim(300, 330), None);
        assert_eq!(c.claim(250, 310), Some(300));
        assert_eq!(c.claim(250, 300), None);
        assert_eq!(c.claim(64, 65), Some(64));
        assert_eq!(c.claim(199, 201), Some(199));
        assert_eq!(c.claim(7, 7), None, "an empty range claims nothing");
    }

    #[test]
    fn the_window_slides_past_ids_all_handed_out() {
        let c = Claims::default();
        for id in (0..64 * 100).rev() {
            assert_eq!(c.claim(id, id + 1), None);
        }
        assert_eq!(c.held(), 0, "every word was full and dropped");
        assert_eq!(
            c.claim(3, 4),
            Some(3),
            "ids below the window were handed out"
        );
        assert_eq!(c.claim(6400, 6400 + 64 * 3 + 5), None);
        assert_eq!(c.held(), 1, "only the partly handed-out word stays");
        assert_eq!(
            c.claim(6400 + 64 * 3 + 4, 6400 + 64 * 3 + 6),
            Some(6400 + 64 * 3 + 4)
        );
    }

    /// A broken strategy: each worker hands out its script once ids were submitted, then
    /// nothing. With `wait_for_w0`, the other workers ask again until worker 0 has run out of
    /// script (so its picks were claimed and run first).
    #[derive(Debug)]
    struct Scripted {
        scripts: Vec<Vec<(TaskId, u32)>>,
        wait_for_w0: bool,
    }

    /// Submitted ids are not placed anywhere; the first submission opens the scripts.
    struct Opens(Arc<AtomicBool>);
    impl SharedQueue for Opens {
        fn submit(&self, _: Batch<'_>) {
            self.0.store(true, SeqCst);
        }
    }

    struct Script {
        picks: VecDeque<(TaskId, u32)>,
        open: Arc<AtomicBool>,
        /// Worker 0 sets it when its script is out; the others wait for it (if `wait_for_w0`).
        w0_done: Arc<AtomicBool>,
        is_w0: bool,
        wait: bool,
    }

    impl WorkerQueue for Script {
        fn next(&mut self) -> Next {
            if !self.open.load(SeqCst) {
                return Next::Empty(Attempts::default());
            }
            if self.wait && !self.w0_done.load(SeqCst) {
                return Next::Retry(Attempts::default());
            }
            match self.picks.pop_front() {
                Some((task, count)) => Next::Task(Pick::run(task, count, Source::Local)),
                None => {
                    if self.is_w0 {
                        self.w0_done.store(true, SeqCst);
                    }
                    Next::Empty(Attempts::default())
                }
            }
        }
    }

    impl Strategy for Scripted {
        fn spec(&self) -> String {
            "twice".into()
        }
        fn build(&self, ctx: &Context) -> Instance {
            let open = Arc::new(AtomicBool::new(false));
            let w0_done = Arc::new(AtomicBool::new(false));
            Instance {
                shared: Arc::new(Opens(Arc::clone(&open))),
                workers: (0..ctx.workers())
                    .map(|w| {
                        Box::new(Script {
                            picks: self.scripts[w].iter().copied().collect(),
                            open: Arc::clone(&open),
                            w0_done: Arc::clone(&w0_done),
                            is_w0: w == 0,
                            wait: self.wait_for_w0 && w > 0,
                        }) as Box<dyn WorkerQueue>
                    })
                    .collect(),
            }
        }
    }

    fn expect_twice(r: Result<crate::RunReport, RunError>, task: TaskId) {
        match r {
            Err(RunError::Strategy { strategy, message }) => {
                assert_eq!(strategy, "twice");
                let want = format!("handed out task {task} twice");
                assert!(message.contains(&want), "{message}");
            }
            other => panic!("expected a strategy error, got {other:?}"),
        }
    }

    #[test]
    fn run_threads_stops_a_strategy_that_hands_an_id_out_twice() {
        // One worker: 0, then 1..3, then 2 again (never run a second time).
        let s = Scripted {
            scripts: vec![vec![(0, 1), (1, 2), (2, 1), (3, 1)]],
            wait_for_w0: false,
        };
        let runs: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
        let r = run_threads(&RunSpec::new(1), &s, &Tasks::closed(4), |task, _| {
            runs[task].fetch_add(1, SeqCst);
        });
        expect_twice(r, 2);
        let runs: Vec<usize> = runs.iter().map(|r| r.load(SeqCst)).collect();
        assert_eq!(
            runs,
            vec![1, 1, 1, 0],
            "the repeat is not run; the job stops there"
        );
    }

    #[test]
    fn a_pool_job_stops_when_two_workers_are_handed_the_same_id() {
        // Worker 0 is handed id 0; worker 1 waits for that, then is handed ids 0..2.
        let s = Scripted {
            scripts: vec![vec![(0, 1)], vec![(0, 2)]],
            wait_for_w0: true,
        };
        let pool = Pool::new(2).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&ran);
        let mut job = pool
            .job(&s, JobOptions::default(), move |task, _, _| {
                counter.fetch_add(1, SeqCst);
                task
            })
            .unwrap();
        job.try_submit(2).unwrap();
        job.close();
        let got: Vec<TaskId> = job.by_ref().map(|o| o.task).collect();
        assert!(got.len() <= 1 && got.iter().all(|&t| t == 0), "{got:?}");
        expect_twice(job.finish(), 0);
        assert_eq!(ran.load(SeqCst), 1, "id 0 ran once, id 1 never");
    }
}
