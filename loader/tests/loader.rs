//! Behaviour of the loader: exactly-once, order, errors at their position, the prefetch
//! bound, resume, and prompt shutdown. No test asserts on speed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use loader::{Granularity, Loader, LoaderError, LoaderState, OnFailure, Remainder, Sampler};

const STRATEGIES: [&str; 4] = ["work-stealing", "central", "round-robin", "range-stealing"];

/// The index sequence an epoch must deliver: the sampler's order cut per remainder mode.
fn expected(order: &[usize], b: usize, mode: Remainder) -> Vec<usize> {
    let n = order.len();
    let total = match mode {
        Remainder::Drop => n / b * b,
        Remainder::Pad => n.div_ceil(b) * b,
        Remainder::Partial => n,
    };
    (0..total).map(|p| order[p % n]).collect()
}

fn counts(v: &[usize]) -> BTreeMap<usize, usize> {
    let mut m = BTreeMap::new();
    for &i in v {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

#[test]
fn every_index_once_in_order_per_remainder_strategy_and_granularity() {
    let n = 103;
    let b = 8;
    for strategy in STRATEGIES {
        for mode in [Remainder::Drop, Remainder::Pad, Remainder::Partial] {
            for gran in [Granularity::Sample, Granularity::Batch] {
                for ordered in [true, false] {
                    let what = format!("{strategy} {mode:?} {gran:?} ordered={ordered}");
                    let mut l = Loader::builder(loader::from_fn(n, Ok::<_, String>))
                        .batch_size(b)
                        .remainder(mode)
                        .shuffle(11)
                        .workers(3)
                        .prefetch(2)
                        .strategy(strategy)
                        .granularity(gran)
                        .ordered(ordered)
                        .build()
                        .unwrap();
                    for epoch in 0..2 {
                        let want = expected(&Sampler::shuffled(11).indices(n, epoch), b, mode);
                        let mut got = Vec::new();
                        let mut numbers = Vec::new();
                        for batch in l.epoch(epoch) {
                            let batch = batch.unwrap();
                            assert_eq!(batch.data, batch.indices, "{what}");
                            assert_eq!(batch.epoch, epoch);
                            numbers.push(batch.number);
                            got.extend(batch.indices);
                        }
                        assert_eq!(numbers, (0..want.len().div_ceil(b)).collect::<Vec<_>>());
                        if ordered {
                            assert_eq!(got, want, "{what} epoch {epoch}");
                        } else {
                            assert_eq!(counts(&got), counts(&want), "{what} epoch {epoch}");
                        }
                        let report = l.report().unwrap();
                        assert_eq!(report.samples as usize, want.len(), "{what}");
                        let per_worker: u64 = report.per_worker.iter().map(|w| w.samples).sum();
                        assert_eq!(per_worker as usize, want.len(), "{what}");
                    }
                }
            }
        }
    }
}

#[test]
fn shards_cover_the_epoch_with_documented_padding() {
    let n: usize = 100;
    let world = 3;
    let per_rank = n.div_ceil(world); // 34: 102 in all, 2 padded
    let mut union = Vec::new();
    for rank in 0..world {
        let mut l = Loader::builder(loader::from_fn(n, Ok::<_, String>))
            .batch_size(5)
            .sampler(Sampler::shuffled(3).shard(rank, world))
            .workers(2)
            .build()
            .unwrap();
        let mine: Vec<usize> = l.epoch(4).flat_map(|b| b.unwrap().indices).collect();
        assert_eq!(mine.len(), per_rank, "rank {rank}");
        union.extend(mine);
    }
    // the padded indices are the first ones of the epoch's (unsharded) order
    let order = Sampler::shuffled(3).indices(n, 4);
    let mut want: Vec<usize> = (0..n).collect();
    want.extend(&order[..per_rank * world - n]);
    assert_eq!(counts(&union), counts(&want));
    // a bad shard is refused with one line naming the field
    let err = Loader::builder(loader::from_fn(n, Ok::<_, String>))
        .sampler(Sampler::sequential().shard(3, 3))
        .build()
        .unwrap_err();
    assert!(err.to_string().starts_with("sampler: shard"), "{err}");
}

/// Index 10 fails, index 50 panics; everything else is its own index.
fn flaky(i: usize) -> Result<usize, String> {
    if i == 10 {
        return Err("bad record".into());
    }
    if i == 50 {
        panic!("decoder exploded on {i}");
    }
    Ok(i)
}

#[test]
fn failing_and_panicking_samples_are_errors_at_their_position() {
    let n = 80;
    let b = 8;
    for strategy in ["work-stealing", "central"] {
        for gran in [Granularity::Sample, Granularity::Batch] {
            let mut l = Loader::builder(loader::from_fn(n, flaky))
                .batch_size(b)
                .workers(3)
                .strategy(strategy)
                .granularity(gran)
                .build()
                .unwrap();
            let out: Vec<_> = l.epoch(0).collect();
            assert_eq!(out.len(), n / b);
            for (k, r) in out.iter().enumerate() {
                match k {
                    1 => assert!(
                        matches!(r, Err(LoaderError::Sample { index: 10, batch: 1, message, .. }) if message == "bad record"),
                        "{r:?}"
                    ),
                    6 => assert!(
                        matches!(r, Err(LoaderError::Panic { index: 50, batch: 6, message, .. }) if message.contains("exploded")),
                        "{r:?}"
                    ),
                    _ => {
                        let batch = r.as_ref().unwrap();
                        assert_eq!(batch.indices, (k * b..(k + 1) * b).collect::<Vec<_>>());
                    }
                }
            }
            assert_eq!(l.report().unwrap().failed, 2);

            // the skip policy leaves the bad samples out and keeps the batches
            let mut l = Loader::builder(loader::from_fn(n, flaky))
                .batch_size(b)
                .workers(3)
                .strategy(strategy)
                .granularity(gran)
                .on_failure(OnFailure::Skip)
                .build()
                .unwrap();
            let got: Vec<usize> = l.epoch(0).flat_map(|r| r.unwrap().data).collect();
            let want: Vec<usize> = (0..n).filter(|&i| i != 10 && i != 50).collect();
            assert_eq!(got, want);
        }
    }
}

#[test]
fn a_slow_sample_past_the_timeout_is_an_error_at_its_position() {
    let ds = loader::from_fn(16, |i| {
        if i == 5 {
            // Far past the timeout, and the timeout far past any other sample's time, even on
            // a loaded machine.
            std::thread::sleep(Duration::from_millis(3000));
        }
        Ok::<_, String>(i)
    });
    let mut l = Loader::builder(ds)
        .batch_size(4)
        .workers(2)
        .timeout(Duration::from_millis(1000))
        .build()
        .unwrap();
    let out: Vec<_> = l.epoch(0).collect();
    assert!(matches!(
        out[1],
        Err(LoaderError::Timeout {
            index: 5,
            batch: 1,
            ..
        })
    ));
    assert!(out.iter().enumerate().all(|(k, r)| k == 1 || r.is_ok()));
}

/// A sample that counts how many exist.
struct Counted(#[allow(dead_code)] usize);

#[test]
fn a_slow_consumer_never_has_more_than_prefetch_batches_materialised() {
    for (gran, strategy) in [
        (Granularity::Sample, "work-stealing"),
        (Granularity::Sample, "central"),
        (Granularity::Batch, "round-robin"),
    ] {
        let produced = Arc::new(AtomicUsize::new(0));
        let handed = Arc::new(AtomicUsize::new(0));
        let max_pending = Arc::new(AtomicUsize::new(0));
        let ds = {
            let (produced, handed, max_pending) =
                (produced.clone(), handed.clone(), max_pending.clone());
            loader::from_fn(200, move |i| {
                let p = produced.fetch_add(1, Ordering::SeqCst) + 1;
                let pending = p - handed.load(Ordering::SeqCst);
                max_pending.fetch_max(pending, Ordering::SeqCst);
                Ok::<_, String>(Counted(i))
            })
        };
        let (b, prefetch) = (4, 3);
        let mut l = Loader::builder(ds)
            .batch_size(b)
            .workers(4)
            .prefetch(prefetch)
            .granularity(gran)
            .strategy(strategy)
            .build()
            .unwrap();
        for epoch in 0..2 {
            for batch in l.epoch(epoch) {
                let batch = batch.unwrap();
                handed.fetch_add(batch.data.len(), Ordering::SeqCst);
                drop(batch);
                std::thread::sleep(Duration::from_millis(2)); // the slow consumer
            }
        }
        let max = max_pending.load(Ordering::SeqCst);
        assert!(
            (1..=prefetch * b).contains(&max),
            "{gran:?} {strategy}: {max} samples materialised, bound {}",
            prefetch * b
        );
        assert_eq!(
            handed.load(Ordering::SeqCst),
            400,
            "{gran:?} {strategy}: two epochs of 200"
        );
    }
}

fn resume_loader(ordered: bool, gran: Granularity) -> Loader<impl loader::Dataset<Sample = usize>> {
    Loader::builder(loader::from_fn(157, Ok::<_, String>))
        .batch_size(10)
        .remainder(Remainder::Pad)
        .shuffle(99)
        .workers(3)
        .granularity(gran)
        .ordered(ordered)
        .build()
        .unwrap()
}

#[test]
fn resume_from_a_mid_epoch_state_gives_the_rest_of_an_uninterrupted_run() {
    for gran in [Granularity::Sample, Granularity::Batch] {
        let mut full = resume_loader(true, gran);
        let want: Vec<Vec<usize>> = full.epoch(2).map(|b| b.unwrap().indices).collect();

        let mut first = resume_loader(true, gran);
        let mut epoch = first.epoch(2);
        let head: Vec<Vec<usize>> = epoch.by_ref().take(5).map(|b| b.unwrap().indices).collect();
        assert_eq!(head[..], want[..5]);
        // a checkpoint taken while the iterator is alive, then the process "dies"
        let saved = serde_json::to_string(&epoch.state()).unwrap();
        drop(epoch);
        assert_eq!(serde_json::to_string(&first.state()).unwrap(), saved);
        drop(first);

        let mut second = resume_loader(true, gran);
        let state: LoaderState = serde_json::from_str(&saved).unwrap();
        assert_eq!((state.epoch, state.batches_done), (2, 5));
        second.restore(&state).unwrap();
        let rest: Vec<(usize, Vec<usize>)> = second
            .epoch(2)
            .map(|b| b.map(|b| (b.number, b.indices)).unwrap())
            .collect();
        assert_eq!(
            rest.iter().map(|r| r.0).collect::<Vec<_>>(),
            (5..want.len()).collect::<Vec<_>>()
        );
        assert_eq!(rest.into_iter().map(|r| r.1).collect::<Vec<_>>(), want[5..]);
        assert_eq!(
            second.state().epoch,
            3,
            "a finished epoch moves the state on"
        );
    }

    // as ready: the remaining samples, each once
    let want = expected(&Sampler::shuffled(99).indices(157, 0), 10, Remainder::Pad);
    for gran in [Granularity::Sample, Granularity::Batch] {
        let mut first = resume_loader(false, gran);
        let head: Vec<usize> = first
            .epoch(0)
            .take(7)
            .flat_map(|b| b.unwrap().indices)
            .collect();
        let state = first.state();
        drop(first);
        let mut second = resume_loader(false, gran);
        second.restore(&state).unwrap();
        let mut all = head;
        all.extend(second.epoch(0).flat_map(|b| b.unwrap().indices));
        assert_eq!(counts(&all), counts(&want), "{gran:?}");
    }
    let state = resume_loader(false, Granularity::Sample).state();

    // a state from another configuration is refused, naming the field
    let mut other = Loader::builder(loader::from_fn(157, Ok::<_, String>))
        .batch_size(10)
        .shuffle(98)
        .remainder(Remainder::Pad)
        .workers(1)
        .build()
        .unwrap();
    let err = other.restore(&state).unwrap_err();
    assert!(err.to_string().contains("field seed"), "{err}");
}

/// Counts live worker states: one per worker thread while it runs.
struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_mid_epoch_returns_promptly_and_every_worker_ends() {
    for strategy in ["work-stealing", "round-robin"] {
        let live = Arc::new(AtomicUsize::new(0));
        let ds = {
            let live = live.clone();
            loader::from_fn_with_state(
                10_000,
                move |_w| {
                    live.fetch_add(1, Ordering::SeqCst);
                    Alive(live.clone())
                },
                |i, _alive: &mut Alive| {
                    std::thread::sleep(Duration::from_millis(5));
                    Ok::<_, String>(i)
                },
            )
        };
        let (started, dropping) = (mpsc::channel(), mpsc::channel());
        let (live2, strat) = (live.clone(), strategy.to_string());
        let user = std::thread::spawn(move || {
            let mut l = Loader::builder(ds)
                .batch_size(16)
                .workers(6)
                .strategy(&strat)
                .build()
                .unwrap();
            started.0.send(live2.load(Ordering::SeqCst)).unwrap();
            let mut epoch = l.epoch(0);
            for _ in 0..3 {
                epoch.next().unwrap().unwrap();
            }
            dropping.0.send(()).unwrap();
            drop(epoch);
            drop(l);
        });
        assert_eq!(started.1.recv().unwrap(), 6, "one state per worker");
        dropping.1.recv().unwrap();
        // the drop runs under a watchdog: a hang fails the test instead of stalling it
        let t = std::time::Instant::now();
        while !user.is_finished() {
            assert!(
                // a hang detector, not a speed test: generous for a loaded CI machine
                t.elapsed() < Duration::from_secs(10),
                "{strategy}: dropping the loader mid-epoch hung"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        user.join().unwrap();
        assert_eq!(
            live.load(Ordering::SeqCst),
            0,
            "{strategy}: worker states left alive"
        );
    }
}

#[test]
fn pytorch_style_is_batch_granularity_round_robin_ordered_two_per_worker() {
    let mut l = Loader::builder(loader::from_fn(64, Ok::<_, String>))
        .batch_size(8)
        .workers(3)
        .pytorch_style()
        .build()
        .unwrap();
    let got: Vec<usize> = l.epoch(0).flat_map(|b| b.unwrap().indices).collect();
    assert_eq!(got, (0..64).collect::<Vec<_>>());
    let r = l.report().unwrap();
    assert_eq!(
        (r.granularity.as_str(), r.strategy.as_str()),
        ("batch", "round-robin")
    );
    assert_eq!((r.prefetch, r.ordered), (6, true));
    assert_eq!(l.strategy(), "round-robin");
}

#[test]
fn bad_configuration_is_one_line_naming_the_field() {
    let ds = || loader::from_fn(10, Ok::<_, String>);
    let cases = [
        (
            Loader::builder(ds()).batch_size(0).build().unwrap_err(),
            "batch_size",
        ),
        (
            Loader::builder(ds()).workers(0).build().unwrap_err(),
            "workers",
        ),
        (
            Loader::builder(ds()).prefetch(0).build().unwrap_err(),
            "prefetch",
        ),
        (
            Loader::builder(ds())
                .strategy("no-such")
                .build()
                .unwrap_err(),
            "strategy",
        ),
    ];
    for (err, field) in cases {
        let text = err.to_string();
        assert!(matches!(err, LoaderError::Config(_)), "{text}");
        assert!(text.starts_with(field), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }
}

#[test]
fn the_next_epoch_is_loaded_while_the_consumer_finishes_this_one() {
    // epoch e visits indices e·100 .. e·100 + 100 of a 300-sample dataset, so an index tells
    // which epoch loaded it
    let loaded = Arc::new([
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ]);
    let ds = {
        let loaded = loaded.clone();
        loader::from_fn(300, move |i| {
            loaded[i / 100].fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(i)
        })
    };
    let (b, prefetch) = (10, 3);
    let mut l = Loader::builder(ds)
        .batch_size(b)
        .prefetch(prefetch)
        .workers(2)
        .sampler(Sampler::from_fn(|e, _| {
            (e as usize * 100..e as usize * 100 + 100).collect()
        }))
        .build()
        .unwrap();
    let first: Vec<usize> = l.epoch(0).flat_map(|r| r.unwrap().indices).collect();
    assert_eq!(first, (0..100).collect::<Vec<_>>());
    // nobody asks for epoch 1 yet, but its first `prefetch` batches get loaded (a hang
    // detector, not a speed bound)
    let t = std::time::Instant::now();
    while loaded[1].load(Ordering::SeqCst) < prefetch * b {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "epoch 1 was not prefetched"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        loaded[1].load(Ordering::SeqCst),
        prefetch * b,
        "no more than prefetch"
    );
    let second: Vec<usize> = l.epoch(1).flat_map(|r| r.unwrap().indices).collect();
    assert_eq!(second, (100..200).collect::<Vec<_>>());
    assert_eq!(
        loaded[1].load(Ordering::SeqCst),
        100,
        "each sample of epoch 1 loaded once"
    );
    let third: Vec<usize> = l.epoch(2).flat_map(|r| r.unwrap().indices).collect();
    assert_eq!(third, (200..300).collect::<Vec<_>>());
    assert_eq!(
        l.threads_spawned(),
        2,
        "the same two threads served all three epochs"
    );
    assert_eq!(loaded[0].load(Ordering::SeqCst), 100);
}

#[test]
fn a_panicking_collate_is_named_with_its_batch_at_both_granularities() {
    for gran in [Granularity::Sample, Granularity::Batch] {
        let ds = loader::from_fn(12, Ok::<_, String>);
        let mut l = Loader::builder(ds)
            .batch_size(4)
            .workers(2)
            .granularity(gran)
            .collate(|v: Vec<usize>| {
                assert!(!v.contains(&5), "collate boom");
                v
            })
            .build()
            .unwrap();
        let got: Vec<_> = l.epoch(0).collect();
        assert_eq!(got.len(), 3);
        let e = got[1].as_ref().unwrap_err();
        assert!(
            matches!(
                e,
                LoaderError::Collate {
                    first: 4,
                    epoch: 0,
                    batch: 1,
                    ..
                }
            ),
            "{gran:?}: {e:?}"
        );
        assert_eq!(
            e.to_string(),
            "collate panicked on batch 1 (epoch 0, first sample 4): collate boom"
        );
        assert!(got[0].is_ok() && got[2].is_ok());
    }
}

#[test]
fn restore_refuses_a_state_from_another_sampler_or_length() {
    let build = |len: usize, sampler: Sampler| {
        Loader::builder(loader::from_fn(len, Ok::<_, String>))
            .batch_size(4)
            .sampler(sampler)
            .workers(2)
            .build()
            .unwrap()
    };
    let state = {
        let mut l = build(100, Sampler::sequential());
        let mut it = l.epoch(0);
        it.next().unwrap().unwrap();
        it.state()
    };
    let json = serde_json::to_string(&state).unwrap();
    let state: loader::LoaderState = serde_json::from_str(&json).unwrap();
    // a custom order over the same length has no seed either: the kind tells them apart
    let mut custom = build(100, Sampler::from_fn(|_, len| (0..len).rev().collect()));
    let m = custom.restore(&state).unwrap_err().to_string();
    assert_eq!(
        m,
        "cannot resume: field sampler: the state has sequential, this loader custom"
    );
    let m = build(10, Sampler::sequential())
        .restore(&state)
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("field len: the state has 100, this loader 10"),
        "{m}"
    );
    let mut same = build(100, Sampler::sequential());
    same.restore(&state).unwrap();
    let rest: Vec<usize> = same.epoch(0).flat_map(|b| b.unwrap().data).collect();
    assert_eq!(rest, (4..100).collect::<Vec<_>>());
}
