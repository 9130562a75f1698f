//! A stage call that never returns does not hang the pipeline's drop nor the next epoch's
//! start (issue 27): they wait for running calls at most the grace period, then abandon them
//! and say so. The stuck call blocks on a channel the test releases at its end.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use loader::{Pipeline, Sampler, Stage};

/// A stage function that blocks on item 3, the first time, until the sender sends.
fn stuck_on_3() -> (
    mpsc::Sender<()>,
    Arc<AtomicUsize>,
    impl Fn(usize) -> usize + Send + Sync + 'static,
) {
    let (tx, rx) = mpsc::channel::<()>();
    let rx = Arc::new(Mutex::new(rx));
    let entered = Arc::new(AtomicUsize::new(0));
    let e = Arc::clone(&entered);
    let f = move |i: usize| {
        // only the first time: the next epoch's item 3 goes through
        if i == 3 && e.fetch_add(1, SeqCst) == 0 {
            let _ = rx.lock().unwrap().recv();
        }
        i
    };
    (tx, entered, f)
}

#[test]
fn a_stuck_cpu_stage_is_abandoned_after_the_grace_period() {
    let (release, entered, f) = stuck_on_3();
    let mut p = Pipeline::from_sampler(100, Sampler::sequential())
        .map(Stage::cpu("stuck"), f)
        .workers(2)
        .ordered(false)
        .grace(Duration::from_millis(50))
        .build()
        .unwrap();
    {
        let mut it = p.epoch(0);
        while entered.load(SeqCst) == 0 {
            it.next().unwrap().unwrap();
        }
    }
    assert_eq!(p.abandoned(), 1, "the stuck call was abandoned at the drop");
    // the next epoch runs on the worker that is not stuck
    let mut it = p.epoch(1);
    let mut n = 0;
    for _ in 0..20 {
        it.next().unwrap().unwrap();
        n += 1;
    }
    drop(it);
    assert_eq!(n, 20);
    drop(p); // returns: the stuck worker is left behind after the grace period
    release.send(()).unwrap();
}

#[test]
fn a_stuck_blocking_stage_is_abandoned_after_the_grace_period() {
    let (release, entered, f) = stuck_on_3();
    let mut p = Pipeline::from_sampler(100, Sampler::sequential())
        .map(Stage::blocking("stuck", 2), f)
        .ordered(false)
        .grace(Duration::from_millis(50))
        .build()
        .unwrap();
    {
        let mut it = p.epoch(0);
        while entered.load(SeqCst) == 0 {
            it.next().unwrap().unwrap();
        }
    }
    assert_eq!(p.abandoned(), 1);
    assert_eq!(p.threads_alive(), 1, "the stuck thread is left running");
    let got: Vec<usize> = p.epoch(1).map(|r| r.unwrap()).collect();
    assert_eq!(got.len(), 100, "a new epoch starts its own threads");
    drop(p);
    release.send(()).unwrap();
}
