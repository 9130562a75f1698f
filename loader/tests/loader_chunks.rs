//! A loader built with `chunk(n)` loads the samples one thread finds waiting in one
//! `Dataset::get_many` call (Python's worker processes: one message per chunk). Each sample
//! still arrives exactly once, in order, with its own failure; a panic or a wrong count of
//! results fails that call's samples only; a state resumes exactly; the refusals are one line
//! naming the field. Counts and orders only: a call's sleep only lets samples queue up.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loader::{Autotune, Dataset, Granularity, Loader, LoaderError, LoaderState, OnFailure};
use scheduler::{Pin, WorkerId};

/// Every `get_many` call's indices, in the order each call got them.
type Calls = Arc<Mutex<Vec<Vec<usize>>>>;

/// `len` samples, sample `i` is `i * 2`; `get_many` records its calls and sleeps 1 ms a call
/// (so that the next samples are waiting when a thread comes back); `bad` samples fail with
/// their own message; a call holding `panics` panics; a call holding `short` returns one
/// result too few.
struct Remote {
    len: usize,
    calls: Calls,
    /// The threads that made calls (their `WorkerId`s).
    threads: Arc<Mutex<std::collections::BTreeSet<WorkerId>>>,
    gets: Arc<AtomicUsize>,
    bad: fn(usize) -> bool,
    panics: Option<usize>,
    short: Option<usize>,
}

impl Remote {
    fn new(len: usize) -> Remote {
        Remote {
            len,
            calls: Calls::default(),
            threads: Arc::default(),
            gets: Arc::default(),
            bad: |_| false,
            panics: None,
            short: None,
        }
    }
}

impl Dataset for Remote {
    type Sample = usize;
    type Error = String;
    type State = WorkerId;

    fn len(&self) -> usize {
        self.len
    }

    fn init(&self, worker: WorkerId) -> WorkerId {
        worker
    }

    fn get(&self, index: usize, _: &mut WorkerId) -> Result<usize, String> {
        self.gets.fetch_add(1, SeqCst);
        if (self.bad)(index) {
            Err(format!("bad {index}"))
        } else {
            Ok(index * 2)
        }
    }

    fn get_many(&self, indices: &[usize], w: &mut WorkerId) -> Vec<Result<usize, String>> {
        self.calls.lock().unwrap().push(indices.to_vec());
        self.threads.lock().unwrap().insert(*w);
        std::thread::sleep(Duration::from_millis(1));
        if self.panics.is_some_and(|p| indices.contains(&p)) {
            panic!("the call holding {:?} panicked", self.panics);
        }
        let mut out: Vec<Result<usize, String>> = indices
            .iter()
            .map(|&i| {
                if (self.bad)(i) {
                    Err(format!("bad {i}"))
                } else {
                    Ok(i * 2)
                }
            })
            .collect();
        if self.short.is_some_and(|s| indices.contains(&s)) {
            out.pop();
        }
        out
    }
}

/// Each call's indices are consecutive in `order` and at most `chunk` of them.
fn calls_are_runs_of_the_order(calls: &[Vec<usize>], order: &[usize], chunk: usize) {
    let at: std::collections::HashMap<usize, usize> =
        order.iter().enumerate().map(|(p, &i)| (i, p)).collect();
    for c in calls {
        assert!(!c.is_empty() && c.len() <= chunk, "{c:?}");
        for w in c.windows(2) {
            assert_eq!(
                at[&w[1]],
                at[&w[0]] + 1,
                "a call's samples are waiting in order: {c:?}"
            );
        }
    }
}

#[test]
fn each_sample_arrives_once_in_order_in_fewer_calls() {
    for (workers, chunk, shuffle) in [(1, 8, None), (3, 4, Some(7)), (2, 16, None)] {
        let ds = Remote::new(400);
        let (calls, gets) = (Arc::clone(&ds.calls), Arc::clone(&ds.gets));
        let b = Loader::builder(ds)
            .batch_size(10)
            .workers(workers)
            .prefetch(6)
            // (no look-ahead: the calls are this epoch's only)
            .prefetch_next_epoch(false)
            .chunk(chunk);
        let b = match shuffle {
            Some(s) => b.shuffle(s),
            None => b,
        };
        let mut l = b.build().unwrap();
        let order = match shuffle {
            Some(s) => loader::Sampler::shuffled(s).indices(400, 0),
            None => (0..400).collect(),
        };
        let got: Vec<usize> = l.epoch(0).flat_map(|b| b.unwrap().indices).collect();
        assert_eq!(got, order, "workers {workers}, chunk {chunk}");
        // the threads' figures, counted by the loader (the pipeline has none for them)
        let r = l.report().unwrap();
        assert_eq!(r.per_worker.len(), workers);
        assert_eq!(r.per_worker.iter().map(|w| w.samples).sum::<u64>(), 400);
        assert!(r
            .per_worker
            .iter()
            .all(|w| (w.samples > 0) == (w.busy_s > 0.0)));
        assert!(r.lif >= 1.0);
        let calls = calls.lock().unwrap().clone();
        let mut ran: Vec<usize> = calls.iter().flatten().copied().collect();
        ran.sort_unstable();
        assert_eq!(
            ran,
            (0..400).collect::<Vec<_>>(),
            "each sample in exactly one call"
        );
        assert_eq!(gets.load(SeqCst), 0, "get_many only");
        calls_are_runs_of_the_order(&calls, &order, chunk);
        // 400 calls of one would need the queue empty at every one of them, while each
        // call sleeps 1 ms and the order is read in microseconds
        assert!(calls.len() < 400, "no chunk formed: {} calls", calls.len());
    }
}

#[test]
fn the_default_get_many_calls_get_for_each_sample() {
    let ds = loader::from_fn(100, |i| Ok::<_, String>(i + 1));
    let mut l = Loader::builder(ds)
        .batch_size(7)
        .workers(2)
        .chunk(4)
        .chunk_time(Duration::from_millis(5))
        .build()
        .unwrap();
    for epoch in 0..2 {
        let got: Vec<usize> = l.epoch(epoch).flat_map(|b| b.unwrap().data).collect();
        assert_eq!(got, (1..=100).collect::<Vec<_>>());
    }
}

#[test]
fn a_bad_sample_fails_alone_and_a_bad_call_fails_its_samples() {
    // one bad sample: only its batch is an error, naming it
    let ds = Remote {
        bad: |i| i == 37,
        ..Remote::new(200)
    };
    let mut l = Loader::builder(ds)
        .batch_size(10)
        .workers(2)
        .chunk(8)
        .build()
        .unwrap();
    let out: Vec<_> = l.epoch(0).collect();
    assert_eq!(out.len(), 20);
    for (k, b) in out.iter().enumerate() {
        match b {
            Err(LoaderError::Sample { index, message, .. }) => {
                assert_eq!((k, *index), (3, 37));
                assert!(message.contains("bad 37"), "{message}");
            }
            Err(e) => panic!("batch {k}: {e}"),
            Ok(b) => assert_eq!(b.indices, (10 * k..10 * k + 10).collect::<Vec<_>>()),
        }
    }

    // a call that panics, and one that returns a result too few: with `skip`, exactly the
    // samples of those two calls are left out, each counted once
    let ds = Remote {
        panics: Some(55),
        short: Some(120),
        ..Remote::new(200)
    };
    let calls = Arc::clone(&ds.calls);
    let mut l = Loader::builder(ds)
        .batch_size(10)
        .workers(2)
        .chunk(8)
        .on_failure(OnFailure::Skip)
        .build()
        .unwrap();
    let got: Vec<usize> = l.epoch(0).flat_map(|b| b.unwrap().indices).collect();
    let calls = calls.lock().unwrap().clone();
    let lost: Vec<usize> = calls
        .iter()
        .filter(|c| c.contains(&55) || c.contains(&120))
        .flatten()
        .copied()
        .collect();
    let want: Vec<usize> = (0..200).filter(|i| !lost.contains(i)).collect();
    assert_eq!(got, want);
    assert_eq!(l.report().unwrap().failed, lost.len() as u64);
}

#[test]
fn a_state_taken_mid_epoch_resumes_exactly() {
    let build = || {
        Loader::builder(Remote::new(300))
            .batch_size(8)
            .workers(3)
            .shuffle(3)
            .chunk(6)
            .build()
            .unwrap()
    };
    let order = loader::Sampler::shuffled(3).indices(300, 2);
    let mut l = build();
    let mut it = l.epoch(2);
    let head: Vec<usize> = (&mut it).take(5).flat_map(|b| b.unwrap().indices).collect();
    let state: LoaderState = it.state();
    drop(it);
    let mut again = build();
    again.restore(&state).unwrap();
    let rest: Vec<usize> = again.epoch(2).flat_map(|b| b.unwrap().indices).collect();
    assert_eq!([head, rest].concat(), order);
}

#[test]
fn autotune_tunes_the_prefetch_and_keeps_the_threads() {
    let ds = Remote::new(600);
    let threads = Arc::clone(&ds.threads);
    let mut l = Loader::builder(ds)
        .batch_size(10)
        .workers(2)
        .prefetch(1)
        .chunk(8)
        .autotune(Autotune::new().interval(Duration::from_millis(2)))
        .build()
        .unwrap();
    for epoch in 0..2 {
        let n: usize = l.epoch(epoch).map(|b| b.unwrap().indices.len()).sum();
        assert_eq!(n, 600);
        assert!(l.report().unwrap().tuning.is_some());
    }
    // threads 0 and 1 only: the tuner, which sizes blocking stages, left these alone
    let seen: Vec<WorkerId> = threads.lock().unwrap().iter().copied().collect();
    assert!(!seen.is_empty() && seen.iter().all(|&w| w < 2), "{seen:?}");
}

#[test]
fn the_settings_a_chunk_cannot_take_are_refused_naming_the_field() {
    let refused = |b: loader::LoaderBuilder<Remote>| -> String {
        let m = b.build().unwrap_err().to_string();
        assert!(!m.contains('\n'), "{m}");
        m
    };
    let b = || Loader::builder(Remote::new(10)).workers(2);
    assert_eq!(
        refused(b().chunk(0)),
        "chunk: must be >= 1 sample per call, got 0"
    );
    assert!(refused(b().chunk_time(Duration::from_millis(1))).starts_with("chunk_time: "));
    assert!(refused(b().chunk(4).chunk_time(Duration::ZERO)).starts_with("chunk_time: "));
    let m = refused(b().chunk(4).granularity(Granularity::Batch));
    assert!(
        m.starts_with("chunk: 4 samples per call needs sample granularity"),
        "{m}"
    );
    let m = refused(b().chunk(4).strategy("round-robin"));
    assert!(
        m.starts_with("strategy: round-robin: ") && m.ends_with("allowed with chunk 4: central"),
        "{m}"
    );
    assert!(refused(b().chunk(4).pin(Pin::Cores)).starts_with("pin: "));
    // chunk 1 takes them all, as before
    Loader::builder(Remote::new(10))
        .workers(2)
        .chunk(1)
        .strategy("round-robin")
        .granularity(Granularity::Batch)
        .build()
        .unwrap();
}
