//! Waiting inside a task on a job of the task's own pool (threads/README.md: "Waiting inside a
//! task"): the waiting worker runs the pool's work meanwhile, so none of these hang, even with
//! one worker. Every body runs under a watchdog: a regression fails instead of hanging.
//!
//! Tasks reach their pool through a `Weak` (upgraded only while opening a job): the test's
//! thread holds the one strong handle and drops the pool itself; a pool dropped by one of its
//! own workers would join that worker.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier, Mutex, Weak};
use std::time::Duration;

use scheduler::doc_support::FifoStrategy;
use scheduler::{Delivery, Job, JobError, JobOptions, Pool, RunError, Submitter};

/// Run `body` on its own thread; fail (instead of hanging) if it takes longer than 60 s (an
/// hour under Miri, which checks the unsafe code of these waits, a hundred times slower).
fn watchdog<R: Send + 'static>(what: &str, body: impl FnOnce() -> R + Send + 'static) -> R {
    let secs = if cfg!(miri) { 3600 } else { 60 };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(body());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: hung for {secs} s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the test body panicked"),
    }
}

/// A worker's state: which worker, and which of the states built (in build order).
#[derive(Debug)]
struct State {
    worker: usize,
    built: usize,
}

/// A pool of `workers` whose init counts the states it builds.
fn pool(workers: usize) -> (Arc<Pool<State>>, Arc<AtomicUsize>) {
    let inits = Arc::new(AtomicUsize::new(0));
    let counter = inits.clone();
    let pool = Pool::builder(workers)
        .build_with(move |worker| State {
            worker,
            built: counter.fetch_add(1, SeqCst),
        })
        .unwrap();
    (Arc::new(pool), inits)
}

/// Per-id run counts, to check exactly once.
fn counts(n: usize) -> Arc<Vec<AtomicUsize>> {
    Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect())
}

fn assert_once(counts: &[AtomicUsize], what: &str) {
    for (id, c) in counts.iter().enumerate() {
        assert_eq!(
            c.load(SeqCst),
            1,
            "{what}: id {id} ran {} times",
            c.load(SeqCst)
        );
    }
}

/// Open a job on the pool behind `pool` whose task `id` counts itself in `ran` and returns
/// `(id, the state's build number)`.
fn counting_job(
    pool: &Weak<Pool<State>>,
    options: JobOptions,
    ran: &Arc<Vec<AtomicUsize>>,
) -> Job<(usize, usize)> {
    let ran = ran.clone();
    let pool = pool.upgrade().expect("the test holds the pool");
    pool.job(&FifoStrategy, options, move |id, w, s: &mut State| {
        assert_eq!(s.worker, w, "a worker's state is its own");
        ran[id].fetch_add(1, SeqCst);
        (id, s.built)
    })
    .unwrap()
}

/// Inside a task: open a job of `n` ids on the task's own pool, submit them all, take them back
/// in order and finish it. Returns the build numbers of the states its tasks ran with.
fn collect_inner(pool: &Weak<Pool<State>>, n: usize, ran: &Arc<Vec<AtomicUsize>>) -> Vec<usize> {
    let mut job = counting_job(pool, JobOptions::default(), ran);
    assert_eq!(job.try_submit(n).unwrap(), 0..n);
    let mut states = Vec::with_capacity(n);
    for want in 0..n {
        let o = job.next().expect("an outcome per id");
        let (id, built) = o.result.unwrap();
        assert_eq!((o.task, id), (want, want), "in id order");
        states.push(built);
    }
    assert!(job.next().is_none(), "every id taken back");
    assert_eq!(job.finish().unwrap().executed, n as u64);
    states
}

#[test]
fn one_worker_task_collects_a_job_it_opened_on_its_own_pool() {
    watchdog("P=1, one nested job", || {
        let (pool, inits) = pool(1);
        let weak = Arc::downgrade(&pool);
        let ran = counts(100);
        let inner_ran = ran.clone();
        let mut outer = pool
            .job(
                &FifoStrategy,
                JobOptions::default(),
                move |_, _, s: &mut State| (s.built, collect_inner(&weak, 100, &inner_ran)),
            )
            .unwrap();
        outer.try_submit(1).unwrap();
        let (outer_state, inner_states) = outer.next().unwrap().result.unwrap();
        assert_eq!(outer.finish().unwrap().executed, 1);
        assert_once(&ran, "inner job");
        // The waiting task keeps its state; the tasks its worker ran meanwhile had another,
        // built by init once for that worker and wait depth.
        assert_eq!(outer_state, 0);
        assert!(inner_states.iter().all(|&b| b == 1), "{inner_states:?}");
        assert_eq!(inits.load(SeqCst), 2);
        drop(pool);
    });
}

#[test]
fn two_workers_two_tasks_wait_on_their_jobs_at_once() {
    watchdog("P=2, two nested jobs at once", || {
        let (pool, _) = pool(2);
        let weak = Arc::downgrade(&pool);
        let ran: Arc<Vec<_>> = Arc::new((0..2).map(|_| counts(100)).collect());
        let (inner_ran, both) = (ran.clone(), Arc::new(Barrier::new(2)));
        let mut outer = pool
            .job(
                &FifoStrategy,
                JobOptions::default(),
                move |id, _, _: &mut State| {
                    // Both workers are inside a task before either waits.
                    both.wait();
                    collect_inner(&weak, 100, &inner_ran[id]).len()
                },
            )
            .unwrap();
        outer.try_submit(2).unwrap();
        outer.close();
        let got: Vec<usize> = outer.by_ref().map(|o| o.result.unwrap()).collect();
        assert_eq!(got, vec![100, 100]);
        assert_eq!(outer.finish().unwrap().executed, 2);
        for (i, r) in ran.iter().enumerate() {
            assert_once(r, &format!("inner job {i}"));
        }
        drop(pool);
    });
}

#[test]
fn finish_and_a_full_submitter_inside_a_task_run_the_work() {
    for workers in [1, 2] {
        watchdog("nested submit and finish", move || {
            let (pool, _) = pool(workers);
            let weak = Arc::downgrade(&pool);
            let ran = counts(100);
            let inner_ran = ran.clone();
            let mut outer = pool
                .job(
                    &FifoStrategy,
                    JobOptions::default(),
                    move |_, _, _: &mut State| {
                        // Four in flight at most, outcomes discarded: the submitter waits for
                        // completions, which only this worker may be there to run.
                        let options = JobOptions::default()
                            .max_in_flight(4)
                            .delivery(Delivery::Discard);
                        let mut job = counting_job(&weak, options, &inner_ran);
                        let submitter = job.submitter();
                        for id in 0..100 {
                            assert_eq!(submitter.submit(1).unwrap(), id..id + 1);
                        }
                        job.finish().unwrap().executed
                    },
                )
                .unwrap();
            outer.try_submit(1).unwrap();
            assert_eq!(outer.next().unwrap().result.unwrap(), 100);
            outer.finish().unwrap();
            assert_once(&ran, "inner job");
            drop(pool);
        });
    }
}

#[test]
fn finish_inside_a_task_drops_outcomes_not_taken() {
    watchdog("nested finish, ordered", || {
        let (pool, _) = pool(1);
        let weak = Arc::downgrade(&pool);
        let ran = counts(100);
        let inner_ran = ran.clone();
        let mut outer = pool
            .job(
                &FifoStrategy,
                JobOptions::default(),
                move |_, _, _: &mut State| {
                    let mut job = counting_job(&weak, JobOptions::default(), &inner_ran);
                    job.try_submit(100).unwrap();
                    job.finish().unwrap().executed
                },
            )
            .unwrap();
        outer.try_submit(1).unwrap();
        assert_eq!(outer.next().unwrap().result.unwrap(), 100);
        outer.finish().unwrap();
        assert_once(&ran, "inner job");
        drop(pool);
    });
}

#[test]
fn a_nested_jobs_tasks_nest_once_more() {
    for workers in [1, 2] {
        watchdog("two levels of nested jobs", move || {
            let (pool, inits) = pool(workers);
            let weak = Arc::downgrade(&pool);
            // Job B's 10 tasks each open a job C of 10 ids: 100 C ids in all.
            let (b_ran, c_ran) = (counts(10), counts(100));
            let (b_ran2, c_ran2) = (b_ran.clone(), c_ran.clone());
            let mut outer = pool
                .job(
                    &FifoStrategy,
                    JobOptions::default(),
                    move |_, _, _: &mut State| {
                        let (weak_b, c_ran) = (weak.clone(), c_ran2.clone());
                        let b_ran = b_ran2.clone();
                        let mut b = weak
                            .upgrade()
                            .unwrap()
                            .job(
                                &FifoStrategy,
                                JobOptions::default().max_in_flight(3),
                                move |b_id, _, _: &mut State| {
                                    b_ran[b_id].fetch_add(1, SeqCst);
                                    let mut c = weak_b
                                        .upgrade()
                                        .unwrap()
                                        .job(
                                            &FifoStrategy,
                                            JobOptions::default(),
                                            |c_id, _, _: &mut State| c_id,
                                        )
                                        .unwrap();
                                    c.try_submit(10).unwrap();
                                    c.close();
                                    let ids: Vec<usize> =
                                        c.by_ref().map(|o| o.result.unwrap()).collect();
                                    assert_eq!(ids, (0..10).collect::<Vec<_>>());
                                    for id in &ids {
                                        c_ran[b_id * 10 + id].fetch_add(1, SeqCst);
                                    }
                                    c.finish().unwrap();
                                    b_id
                                },
                            )
                            .unwrap();
                        // Three in flight at most: submit as outcomes come back.
                        let (mut next, mut got) = (0, Vec::new());
                        while got.len() < 10 {
                            let k = b.room().min(10 - next);
                            if k > 0 {
                                next = b.try_submit(k).unwrap().end;
                            }
                            got.push(b.next().unwrap().result.unwrap());
                        }
                        assert_eq!(got, (0..10).collect::<Vec<_>>());
                        b.finish().unwrap().executed
                    },
                )
                .unwrap();
            outer.try_submit(1).unwrap();
            assert_eq!(outer.next().unwrap().result.unwrap(), 10);
            outer.finish().unwrap();
            assert_once(&b_ran, "job B");
            assert_once(&c_ran, "the C jobs");
            // At most one state per worker and wait depth (two levels here).
            assert!(inits.load(SeqCst) <= workers * 3, "{}", inits.load(SeqCst));
            drop(pool);
        });
    }
}

#[test]
fn a_task_waiting_on_its_own_job_is_refused_not_hung() {
    watchdog("waits on the task's own job", || {
        let pool = Pool::new(1).unwrap();
        let own: Arc<Mutex<Option<Submitter>>> = Arc::default();
        let job_slot: Arc<Mutex<Option<Job<String>>>> = Arc::default();
        let (own2, job_slot2) = (own.clone(), job_slot.clone());
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let mut job = pool
            .job(
                &FifoStrategy,
                JobOptions::default().max_in_flight(1),
                move |id, _, _| {
                    if id == 0 {
                        // Full (this task is the one id in flight): a wait for room.
                        let s = own2.lock().unwrap().take().unwrap(); // taken: no cycle job -> submitter
                        format!("{:?}", s.submit(1))
                    } else {
                        // The job's own handle: a wait for its end.
                        let job = job_slot2.lock().unwrap().take().unwrap();
                        let r = job.finish();
                        tx.lock().unwrap().send(format!("{r:?}")).unwrap();
                        String::new()
                    }
                },
            )
            .unwrap();
        *own.lock().unwrap() = Some(job.submitter());
        job.try_submit(1).unwrap();
        let first = job.next().unwrap().result.unwrap();
        assert_eq!(first, format!("{:?}", Err::<(), _>(JobError::OwnJob)));
        // Hand the job to its own next task, which tries to finish it.
        job.try_submit(1).unwrap();
        *job_slot.lock().unwrap() = Some(job);
        let finished = rx.recv().unwrap();
        assert_eq!(
            finished,
            format!("{:?}", Err::<(), _>(RunError::NestedWait(JobError::OwnJob)))
        );
        drop(pool);
    });
}

#[test]
fn a_timed_wait_inside_a_task_times_out() {
    watchdog("nested next_timeout", || {
        let (pool, _) = pool(1);
        let weak = Arc::downgrade(&pool);
        let mut outer = pool
            .job(
                &FifoStrategy,
                JobOptions::default(),
                move |_, _, _: &mut State| {
                    let mut job = weak
                        .upgrade()
                        .unwrap()
                        .job(&FifoStrategy, JobOptions::default(), |t, _, _| t)
                        .unwrap();
                    let _feeder = job.submitter(); // more may come: the wait cannot end early
                    (
                        job.next_timeout(Duration::from_millis(20)).map(|_| ()),
                        job.try_next().is_none(),
                    )
                },
            )
            .unwrap();
        outer.try_submit(1).unwrap();
        let r = outer.next().unwrap().result.unwrap();
        assert_eq!(r, (Err(JobError::TimedOut), true));
        outer.finish().unwrap();
        drop(pool);
    });
}

#[test]
fn dropping_the_pool_ends_a_wait_inside_a_task() {
    watchdog("pool dropped during a nested wait", || {
        let (pool, _) = pool(1);
        let weak = Arc::downgrade(&pool);
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let mut outer = pool
            .job(
                &FifoStrategy,
                JobOptions::default(),
                move |_, _, _: &mut State| {
                    // Let go of the pool before waiting: the test's thread drops it.
                    let mut job = {
                        let pool = weak.upgrade().unwrap();
                        pool.job(&FifoStrategy, JobOptions::default(), |t, _, _| t)
                            .unwrap()
                    };
                    let _feeder = job.submitter(); // never feeds: only the pool's end stops it
                    tx.lock().unwrap().send(()).unwrap();
                    let got = job.next().is_none();
                    tx.lock().unwrap().send(()).unwrap();
                    got
                },
            )
            .unwrap();
        outer.try_submit(1).unwrap();
        rx.recv().unwrap(); // the task is about to wait
        drop(pool);
        rx.recv().unwrap(); // it came back
        assert!(matches!(outer.finish(), Err(RunError::PoolClosed)));
    });
}
