//! A stage call that never returns does not hang the pipeline's drop nor the next epoch's
//! start (issue 27): they wait for running calls at most the grace period, then abandon them
//! and say so. The stuck call blocks on a channel the test releases at its end.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use loader::{Loader, Pipeline, Sampler, Stage};

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

/// Ending an epoch starts no new item of it: every call running at the drop is blocked on a
/// gate that opens only after the drop returned (the calls abandoned); then no stage call
/// starts, in a cpu stage or a blocking one.
#[test]
fn ending_an_epoch_starts_no_new_item() {
    for blocking in [false, true] {
        let (tx, rx) = mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        let (started, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (s, f) = (Arc::clone(&started), Arc::clone(&finished));
        let stage = move |i: usize| {
            s.fetch_add(1, SeqCst);
            if i >= 2 {
                let _ = rx.lock().unwrap().recv();
            }
            f.fetch_add(1, SeqCst);
            i
        };
        let b = Pipeline::from_sampler(1_000, Sampler::sequential());
        let b = if blocking {
            b.map(Stage::blocking("gated", 2), stage)
        } else {
            b.map(Stage::cpu("gated"), stage)
        };
        let mut p = b
            .workers(2)
            .grace(Duration::from_millis(20))
            .build()
            .unwrap();
        let running = {
            let mut it = p.epoch(0);
            assert_eq!(it.next().unwrap().unwrap(), 0);
            assert_eq!(it.next().unwrap().unwrap(), 1);
            // both runners are in a call now (items 2 and 3)
            while started.load(SeqCst) < 4 {
                std::thread::yield_now();
            }
            started.load(SeqCst)
        };
        assert_eq!(p.abandoned(), 2, "blocking: {blocking}");
        for _ in 0..1_000 {
            let _ = tx.send(());
        }
        while finished.load(SeqCst) < running {
            std::thread::yield_now();
        }
        if blocking {
            while p.threads_alive() > 0 {
                std::thread::yield_now();
            }
        }
        drop(p); // the pool's workers are joined: nothing runs after this
        assert_eq!(started.load(SeqCst), running, "blocking: {blocking}");
    }
}

/// The `Loader`'s case of the test above, with and without the next epoch's prefetch: ending an
/// epoch early starts no new `get`, neither of that epoch nor of the next epoch it was already
/// loading (that run is stopped with it). Every `get` but index 0's blocks on a gate that opens
/// only after the drop returned (the calls running at the drop are abandoned); then the test
/// gives the workers time to start anything still open before it joins them.
#[test]
fn ending_a_loader_epoch_starts_no_new_get_of_it_nor_of_the_prefetched_next_epoch() {
    for ahead in [false, true] {
        let (tx, rx) = mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        let (started, gated, finished) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (s, g, f) = (
            Arc::clone(&started),
            Arc::clone(&gated),
            Arc::clone(&finished),
        );
        let ds = loader::from_fn(8, move |i: usize| {
            s.fetch_add(1, SeqCst);
            if i != 0 {
                g.fetch_add(1, SeqCst);
                let _ = rx.lock().unwrap().recv();
            }
            f.fetch_add(1, SeqCst);
            Ok::<_, String>(i)
        });
        let mut l = Loader::builder(ds)
            .workers(2)
            // room for all 8 samples of epoch 0 and 8 of epoch 1
            .prefetch(16)
            .prefetch_next_epoch(ahead)
            .grace(Duration::from_millis(20))
            .build()
            .unwrap();
        let running = {
            let mut it = l.epoch(0);
            assert_eq!(it.next().unwrap().unwrap().indices, vec![0]);
            // both workers are in a gated call now
            while gated.load(SeqCst) < 2 {
                std::thread::yield_now();
            }
            started.load(SeqCst)
        };
        for _ in 0..1_000 {
            let _ = tx.send(());
        }
        while finished.load(SeqCst) < running {
            std::thread::yield_now();
        }
        // Anything left open would start now: the workers are free and nothing else runs.
        for _ in 0..200 {
            if started.load(SeqCst) > running {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(l); // the workers are joined: nothing runs after this
        assert_eq!(
            started.load(SeqCst),
            running,
            "prefetch_next_epoch: {ahead}"
        );
    }
}
