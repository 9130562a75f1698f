//! The persistent pool and its jobs, with every strategy: exactly once, in order when ordered,
//! back-pressure never exceeded, and none of the old hangs (each test body runs under a
//! watchdog, so a regression fails instead of hanging CI).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::all_specs;
use scheduler::{
    Attempts, Delivery, Instance, JobOptions, Next, Outcome, Pool, RunError, SharedQueue, Strategy,
    Topology, WorkerQueue,
};

/// Run `body` on its own thread; fail (instead of hanging) if it takes longer than `secs`.
fn watchdog<R: Send + 'static>(
    secs: u64,
    what: &str,
    body: impl FnOnce() -> R + Send + 'static,
) -> R {
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

/// How ids are fed to a job.
#[derive(Clone, Copy, Debug)]
enum Feed {
    OneAtATime,
    Bursts(usize),
    AllAtOnce,
}

/// Feed `n` ids to a job in the given pattern from the consumer's own thread (never blocking:
/// try_submit within the room), taking outcomes back; returns the ids in delivery order.
fn drive(job: &mut scheduler::Job<usize>, n: usize, feed: Feed) -> Vec<usize> {
    drive_counting(job, n, feed, |_| {})
}

/// [`drive`], calling `took(in_flight)` after each outcome is taken back.
fn drive_counting(
    job: &mut scheduler::Job<usize>,
    n: usize,
    feed: Feed,
    mut took: impl FnMut(usize),
) -> Vec<usize> {
    let mut got = Vec::with_capacity(n);
    let mut next = 0;
    while got.len() < n {
        let want = match feed {
            Feed::OneAtATime => 1,
            Feed::Bursts(b) => b,
            Feed::AllAtOnce => n,
        }
        .min(n - next);
        let k = want.min(job.room());
        if k > 0 {
            let ids = job.try_submit(k).unwrap();
            assert_eq!(ids.start, next, "ids are handed out in submission order");
            next = ids.end;
        }
        if let Some(o) = job.next() {
            assert_eq!(
                o.result.as_ref().ok(),
                Some(&o.task),
                "the task's value comes back"
            );
            got.push(o.task);
            took(job.in_flight());
        }
    }
    job.close();
    assert!(job.next().is_none(), "a drained, closed job ends");
    got
}

#[test]
fn every_strategy_runs_each_id_once_in_order_within_the_bound() {
    watchdog(600, "pool exactly-once", || {
        for p in [1, 2, 3, 8] {
            let pool = Pool::builder(p)
                .topology(Topology::synthetic(2, 4))
                .build()
                .unwrap();
            for spec in all_specs() {
                let strategy = strategies::parse(&spec).unwrap();
                for (feed, delivery) in [
                    (Feed::OneAtATime, Delivery::Ordered),
                    (Feed::Bursts(37), Delivery::Ordered),
                    (Feed::AllAtOnce, Delivery::Ordered),
                    (Feed::Bursts(37), Delivery::AsReady),
                ] {
                    let n = 1500;
                    let cap = 64;
                    // Started but not yet taken back: never above the bound.
                    let started = Arc::new(AtomicUsize::new(0));
                    let taken = Arc::new(AtomicUsize::new(0));
                    let worst = Arc::new(AtomicUsize::new(0));
                    let (s, t, wst) = (started.clone(), taken.clone(), worst.clone());
                    let options = JobOptions::default()
                        .max_in_flight(cap)
                        .delivery(delivery)
                        .seed(p as u64);
                    let mut job = pool
                        .job(strategy.as_ref(), options, move |id, w, _| {
                            assert!(w < p);
                            // Taken is read after started: it may have grown meanwhile, so
                            // this can only under-count (a bound that holds here holds).
                            let now = (s.fetch_add(1, SeqCst) + 1).saturating_sub(t.load(SeqCst));
                            wst.fetch_max(now, SeqCst);
                            id
                        })
                        .unwrap();
                    let mut got = drive_counting(&mut job, n, feed, |in_flight| {
                        assert!(in_flight <= cap);
                        taken.fetch_add(1, SeqCst);
                    });
                    let what = format!("{spec} P={p} {feed:?} {delivery:?}");
                    let report = job.finish().unwrap();
                    assert_eq!(report.executed, n as u64, "{what}");
                    if delivery == Delivery::Ordered {
                        assert_eq!(got, (0..n).collect::<Vec<_>>(), "{what}: order");
                    } else {
                        got.sort_unstable();
                        assert_eq!(got, (0..n).collect::<Vec<_>>(), "{what}: exactly once");
                    }
                    assert!(
                        worst.load(SeqCst) <= cap,
                        "{what}: {} in flight",
                        worst.load(SeqCst)
                    );
                }
            }
            assert_eq!(pool.threads_spawned(), p);
        }
    });
}

#[test]
fn overlapping_jobs_on_one_pool_each_run_exactly_once() {
    watchdog(300, "overlapping jobs", || {
        let pool = Pool::new(3).unwrap();
        for spec in all_specs() {
            let strategy = strategies::parse(&spec).unwrap();
            let mk = |k: usize| {
                pool.job(
                    strategy.as_ref(),
                    JobOptions::default().max_in_flight(100),
                    move |id, _, _| id * 10 + k,
                )
                .unwrap()
            };
            let (mut a, mut b) = (mk(1), mk(2));
            // Interleave: the second job's prefetch runs while the first drains.
            let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
            let (mut na, mut nb) = (0, 0);
            while got_a.len() < 2000 || got_b.len() < 2000 {
                if na < 2000 && a.room() > 0 {
                    na = a.try_submit(a.room().min(2000 - na)).unwrap().end;
                }
                if nb < 2000 && b.room() > 0 {
                    nb = b.try_submit(b.room().min(2000 - nb)).unwrap().end;
                }
                if got_a.len() < 2000 {
                    got_a.push(a.next().unwrap().result.unwrap());
                }
                if got_b.len() < 2000 {
                    got_b.push(b.next().unwrap().result.unwrap());
                }
            }
            assert_eq!(
                got_a,
                (0..2000).map(|i| i * 10 + 1).collect::<Vec<_>>(),
                "{spec}"
            );
            assert_eq!(
                got_b,
                (0..2000).map(|i| i * 10 + 2).collect::<Vec<_>>(),
                "{spec}"
            );
            assert_eq!(a.finish().unwrap().executed, 2000);
            assert_eq!(b.finish().unwrap().executed, 2000);
        }
        assert_eq!(pool.threads_spawned(), 3);
    });
}

/// The done-criterion: one pool, three epochs of 100,000 ids, 256 in flight, every
/// result back in order, one thread spawn per worker in total.
#[test]
fn three_epochs_on_one_pool_come_back_in_order() {
    watchdog(300, "three epochs", || {
        let pool = Pool::builder(4).build_with(|w| w * 1_000_000).unwrap();
        let strategy = strategies::parse("work-stealing").unwrap();
        for epoch in 0..3usize {
            let options = JobOptions::default().max_in_flight(256).seed(epoch as u64);
            let mut job = pool
                .job(
                    strategy.as_ref(),
                    options,
                    move |id, w, base: &mut usize| {
                        assert_eq!(*base, w * 1_000_000, "worker-local state is the worker's");
                        id + epoch
                    },
                )
                .unwrap();
            let got = drive_values(&mut job, 100_000);
            assert_eq!(got, (epoch..100_000 + epoch).collect::<Vec<_>>());
            assert_eq!(job.finish().unwrap().executed, 100_000);
        }
        assert_eq!(pool.threads_spawned(), 4);
    });
}

fn drive_values(job: &mut scheduler::Job<usize>, n: usize) -> Vec<usize> {
    let mut got = Vec::with_capacity(n);
    let mut next = 0;
    while got.len() < n {
        let k = job.room().min(n - next);
        if k > 0 {
            next = job.try_submit(k).unwrap().end;
        }
        got.push(job.next().unwrap().result.unwrap());
    }
    got
}

#[test]
fn submission_patterns_keep_ids_in_submission_order() {
    watchdog(120, "submission patterns", || {
        let pool = Pool::new(2).unwrap();
        let strategy = strategies::parse("central").unwrap();
        for feed in [Feed::OneAtATime, Feed::Bursts(10), Feed::AllAtOnce] {
            let mut job = pool
                .job(
                    strategy.as_ref(),
                    JobOptions::default().max_in_flight(32),
                    |id, _, _| id,
                )
                .unwrap();
            assert_eq!(drive(&mut job, 500, feed), (0..500).collect::<Vec<_>>());
        }
    });
}

#[test]
fn a_submitter_thread_waits_for_room_and_never_exceeds_it() {
    watchdog(120, "submitter back-pressure", || {
        let pool = Pool::new(2).unwrap();
        let strategy = strategies::parse("work-stealing").unwrap();
        let mut job = pool
            .job(
                strategy.as_ref(),
                JobOptions::default().max_in_flight(8),
                |id, _, _| id,
            )
            .unwrap();
        let submitter = job.submitter();
        let feeder = std::thread::spawn(move || {
            for _ in 0..200 {
                submitter.submit(3).unwrap();
            }
            submitter.close();
        });
        let mut got = Vec::new();
        while let Some(o) = job.next() {
            assert!(job.in_flight() <= 8, "{} in flight", job.in_flight());
            got.push(o.task);
            std::thread::yield_now(); // a slow consumer
        }
        feeder.join().unwrap();
        assert_eq!(got, (0..600).collect::<Vec<_>>());
    });
}

#[test]
fn a_panicking_init_is_an_error_not_a_hang() {
    let r = watchdog(60, "init panic", || {
        Pool::builder(4)
            .build_with(|w| {
                if w == 2 {
                    panic!("no decoder on worker {w}");
                }
                w
            })
            .map(|_| ())
    });
    match r {
        Err(RunError::Init { worker, message }) => {
            assert_eq!(worker, 2);
            assert!(message.contains("no decoder on worker 2"), "{message}");
        }
        other => panic!("expected an init error, got {other:?}"),
    }
    // The old engine's hook too.
    let r = watchdog(60, "run_threads init panic", || {
        let strategy = strategies::parse("central").unwrap();
        scheduler::run_threads_with_init(
            &scheduler::RunSpec::new(3),
            strategy.as_ref(),
            &scheduler::Tasks::closed(10),
            |w| assert_ne!(w, 1, "init failed"),
            |_, _| {},
        )
        .map(|_| ())
    });
    assert!(matches!(r, Err(RunError::Init { worker: 1, .. })), "{r:?}");
}

/// A panic payload whose own drop panics.
struct Nasty;
impl Drop for Nasty {
    fn drop(&mut self) {
        panic!("and again while dropping the payload");
    }
}

#[test]
fn a_panic_whose_payload_panics_on_drop_fails_that_task_alone() {
    watchdog(60, "double panic", || {
        let pool = Pool::new(2).unwrap();
        let strategy = strategies::parse("central").unwrap();
        let mut job = pool
            .job(strategy.as_ref(), JobOptions::default(), |id, _, _| {
                if id == 3 {
                    std::panic::panic_any(Nasty);
                }
                if id == 5 {
                    panic!("sample {id} is corrupt");
                }
                id
            })
            .unwrap();
        job.try_submit(10).unwrap();
        job.close();
        let outcomes: Vec<Outcome<usize>> = job.by_ref().collect();
        assert_eq!(outcomes.len(), 10);
        for o in &outcomes {
            match o.task {
                3 => assert!(o
                    .result
                    .as_ref()
                    .unwrap_err()
                    .message
                    .contains("non-string")),
                5 => assert_eq!(
                    o.result.as_ref().unwrap_err().message,
                    "sample 5 is corrupt"
                ),
                t => assert_eq!(o.result, Ok(t)),
            }
        }
        let report = job.finish().unwrap();
        assert_eq!((report.executed, report.failed), (8, 2));
        // The pool still works afterwards.
        let mut again = pool
            .job(strategy.as_ref(), JobOptions::default(), |id, _, _| id)
            .unwrap();
        again.try_submit(4).unwrap();
        again.close();
        assert_eq!(again.by_ref().count(), 4);
    });
}

/// A strategy with a bug: its queue panics on the n-th call, or hands out an unknown id.
#[derive(Debug)]
struct Broken {
    panic: bool,
}

struct BrokenQueue {
    panic: bool,
    calls: usize,
}

struct Nothing;
impl SharedQueue for Nothing {
    fn submit(&self, _: scheduler::Batch<'_>) {}
}

impl WorkerQueue for BrokenQueue {
    fn next(&mut self) -> Next {
        self.calls += 1;
        if self.calls < 3 {
            return Next::Empty(Attempts::default());
        }
        if self.panic {
            panic!("index out of bounds in the strategy");
        }
        Next::Task(scheduler::Pick::one(1_000_000, scheduler::Source::Local))
    }
}

impl Strategy for Broken {
    fn spec(&self) -> String {
        "broken".into()
    }
    fn build(&self, ctx: &scheduler::Context) -> Instance {
        Instance {
            shared: Arc::new(Nothing),
            workers: (0..ctx.workers())
                .map(|_| {
                    Box::new(BrokenQueue {
                        panic: self.panic,
                        calls: 0,
                    }) as Box<dyn WorkerQueue>
                })
                .collect(),
        }
    }
}

#[test]
fn a_strategy_that_breaks_its_contract_is_an_error_not_a_hang() {
    for panic in [true, false] {
        let r = watchdog(60, "strategy breach", move || {
            let pool = Pool::new(3).unwrap();
            let mut job = pool
                .job(&Broken { panic }, JobOptions::default(), |id, _, _| id)
                .unwrap();
            job.try_submit(5).unwrap();
            job.close();
            assert!(job.by_ref().all(|o| o.task < 5), "no unknown id is run");
            job.finish().map(|_| ())
        });
        match r {
            Err(RunError::Strategy { strategy, message }) => {
                assert_eq!(strategy, "broken");
                let want = if panic {
                    "panicked"
                } else {
                    "only 5 were submitted"
                };
                assert!(message.contains(want), "{message}");
            }
            other => panic!("expected a strategy error, got {other:?}"),
        }
    }
    // And through run_threads.
    let r = watchdog(60, "run_threads strategy breach", || {
        scheduler::run_threads(
            &scheduler::RunSpec::new(2),
            &Broken { panic: true },
            &scheduler::Tasks::closed(10),
            |_, _| {},
        )
        .map(|_| ())
    });
    assert!(matches!(r, Err(RunError::Strategy { .. })), "{r:?}");
}

#[test]
fn dropping_a_job_mid_stream_cancels_it_promptly() {
    watchdog(60, "dropped job", || {
        let pool = Pool::new(2).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        for spec in ["central", "work-stealing", "block", "round-robin"] {
            let strategy = strategies::parse(spec).unwrap();
            ran.store(0, SeqCst);
            let r = ran.clone();
            let mut job = pool
                .job(
                    strategy.as_ref(),
                    JobOptions::default()
                        .max_in_flight(100_000)
                        .delivery(Delivery::AsReady),
                    move |id, _, _| {
                        r.fetch_add(1, SeqCst);
                        std::thread::sleep(Duration::from_micros(200));
                        id
                    },
                )
                .unwrap();
            job.try_submit(50_000).unwrap();
            assert!(job.next().is_some());
            drop(job);
            // The pool is free again: a new job finishes although 50,000 sleeps were queued.
            let mut next = pool
                .job(strategy.as_ref(), JobOptions::default(), |id, _, _| id)
                .unwrap();
            next.try_submit(10).unwrap();
            next.close();
            assert_eq!(next.by_ref().count(), 10);
            assert!(
                ran.load(SeqCst) < 50_000,
                "{spec}: the cancelled ids were skipped"
            );
        }
    });
}

#[test]
fn dropping_the_pool_with_jobs_open_stops_them() {
    watchdog(60, "pool dropped", || {
        let pool = Pool::new(2).unwrap();
        let strategy = strategies::parse("work-stealing").unwrap();
        let mut open = pool
            .job(strategy.as_ref(), JobOptions::default(), |id, _, _| {
                std::thread::sleep(Duration::from_millis(1));
                id
            })
            .unwrap();
        open.try_submit(1000).unwrap();
        let mut never_fed = pool
            .job(strategy.as_ref(), JobOptions::default(), |id, _, _| id)
            .unwrap();
        let submitter = never_fed.submitter();
        drop(pool);
        // Consumers wake and see the end; submissions are refused; finish says why.
        while open.next().is_some() {}
        assert!(never_fed.next().is_none());
        assert!(submitter.submit(1).is_err());
        assert!(matches!(open.finish(), Err(RunError::PoolClosed)));
        assert!(matches!(never_fed.finish(), Err(RunError::PoolClosed)));
    });
}

#[test]
fn next_timeout_and_try_submit_refuse_instead_of_blocking() {
    watchdog(60, "timeouts", || {
        let pool = Pool::new(1).unwrap();
        let strategy = strategies::parse("central").unwrap();
        let mut job = pool
            .job(
                strategy.as_ref(),
                JobOptions::default().max_in_flight(2),
                |id, _, _| {
                    if id == 0 {
                        std::thread::sleep(Duration::from_millis(300));
                    }
                    id
                },
            )
            .unwrap();
        job.try_submit(2).unwrap();
        assert!(matches!(
            job.try_submit(1),
            Err(scheduler::JobError::Full { max_in_flight: 2 })
        ));
        assert_eq!(
            job.next_timeout(Duration::from_millis(1)),
            Err(scheduler::JobError::TimedOut)
        );
        assert_eq!(job.next().unwrap().task, 0);
        assert_eq!(job.room(), 1);
    });
}

#[test]
fn a_zero_bound_admits_one_id_at_a_time() {
    watchdog(60, "zero bound", || {
        let pool = Pool::new(1).unwrap();
        let strategy = strategies::parse("central").unwrap();
        let options = JobOptions {
            max_in_flight: 0,
            ..JobOptions::default()
        };
        let mut job = pool.job(strategy.as_ref(), options, |id, _, _| id).unwrap();
        assert_eq!(job.room(), 1);
        assert_eq!(job.try_submit(1).unwrap(), 0..1);
        assert!(job.try_submit(1).is_err());
        assert_eq!(job.next().unwrap().task, 0);
    });
}
