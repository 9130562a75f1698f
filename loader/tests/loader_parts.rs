//! What the pipeline gained for the Loader (issue 28): a per-item timeout on a stage, the
//! `pad` remainder on a sampler source, and per-worker figures in its report.

use std::time::Duration;

use loader::{Pipeline, PipelineError, Remainder, Sampler, Stage};

#[test]
fn a_stage_timeout_fails_the_slow_item_at_its_position_and_nothing_else() {
    // The slow item sleeps past the limit (a sleep lasts at least its time); the others
    // return at once, far inside it.
    let mut p = Pipeline::from_sampler(8, Sampler::sequential())
        .map(
            Stage::cpu("get").timeout(Duration::from_millis(300)),
            |i: usize| {
                if i == 5 {
                    std::thread::sleep(Duration::from_millis(400));
                }
                i * 10
            },
        )
        .workers(2)
        .build()
        .unwrap();
    let out: Vec<Result<usize, PipelineError>> = p.epoch(0).collect();
    assert_eq!(out.len(), 8);
    for (i, r) in out.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!((i, *v), (i, i * 10)),
            Err(e) => {
                assert_eq!(i, 5, "{e}");
                assert_eq!((e.stage(), e.position()), (Some("get"), Some(5)));
                assert!(e.to_string().contains("over the 300 ms timeout"), "{e}");
            }
        }
    }
    assert!(out[5].is_err());
    assert_eq!(p.report().unwrap().failures, 1);
}

fn padded(sampler: Sampler) -> Vec<Vec<usize>> {
    let mut p = Pipeline::from_sampler(10, sampler)
        .map(Stage::cpu("get"), |i: usize| i)
        .batch(4, Remainder::Pad)
        .workers(2)
        .build()
        .unwrap();
    p.epoch(3).map(Result::unwrap).collect()
}

#[test]
fn pad_fills_the_last_batch_with_the_epochs_first_indices() {
    assert_eq!(
        padded(Sampler::sequential()),
        vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9, 0, 1]]
    );
    let order = Sampler::shuffled(7).indices(10, 3);
    let batches = padded(Sampler::shuffled(7));
    let flat: Vec<usize> = batches.concat();
    let want: Vec<usize> = (0..12).map(|p| order[p % 10]).collect();
    assert_eq!(flat, want);
    // Smaller than one batch: the order repeats.
    let mut tiny = Pipeline::from_sampler(2, Sampler::sequential())
        .batch(5, Remainder::Pad)
        .build()
        .unwrap();
    let v: Vec<Vec<usize>> = tiny.epoch(0).map(Result::unwrap).collect();
    assert_eq!(v, vec![vec![0, 1, 0, 1, 0]]);
}

#[test]
fn a_failure_in_a_padded_position_names_the_wrapped_index() {
    let mut p = Pipeline::from_sampler(10, Sampler::sequential())
        .try_map(
            Stage::cpu("get"),
            |i: usize| {
                if i == 0 {
                    Err("bad")
                } else {
                    Ok(i)
                }
            },
        )
        .batch(4, Remainder::Pad)
        .workers(2)
        .build()
        .unwrap();
    let errs: Vec<(Option<u64>, String)> = p
        .epoch(0)
        .filter_map(Result::err)
        .map(|e| (e.position(), e.to_string()))
        .collect();
    assert_eq!(errs.len(), 2, "{errs:?}"); // batch 0 and the padded batch 2
    assert_eq!(errs[0].0, Some(0));
    assert_eq!(errs[1].0, Some(10));
    assert!(errs[1].1.contains("index 0"), "{}", errs[1].1);
}

#[test]
fn a_padded_epoch_resumes_exactly() {
    let build = || {
        Pipeline::from_sampler(10, Sampler::shuffled(1))
            .map(Stage::cpu("get"), |i: usize| i)
            .batch(4, Remainder::Pad)
            .workers(2)
            .build()
            .unwrap()
    };
    let mut a = build();
    let all: Vec<Vec<usize>> = a.epoch(0).map(Result::unwrap).collect();
    let mut b = build();
    let state = {
        let mut it = b.epoch(0);
        let first = it.next().unwrap().unwrap();
        assert_eq!(first, all[0]);
        it.state()
    };
    assert!(state
        .fingerprint
        .as_ref()
        .unwrap()
        .layout
        .contains(&"batch(4, pad)".to_string()));
    let mut c = build();
    c.restore(&state).unwrap();
    let rest: Vec<Vec<usize>> = c.epoch(0).map(Result::unwrap).collect();
    assert_eq!(rest, all[1..].to_vec());
}

#[test]
fn pad_is_refused_where_the_source_has_no_known_start() {
    let refused = |r: Result<Pipeline<Vec<usize>>, PipelineError>| match r {
        Err(e @ PipelineError::Config { .. }) => assert!(e.to_string().contains("pad"), "{e}"),
        other => panic!("expected a config error, got {:?}", other.map(|_| ())),
    };
    refused(
        Pipeline::from_source(|_| 0..10usize)
            .batch(4, Remainder::Pad)
            .build(),
    );
    refused(
        Pipeline::from_sampler(10, Sampler::sequential())
            .filter(Stage::cpu("odd"), |i: &usize| i % 2 == 1)
            .batch(4, Remainder::Pad)
            .build(),
    );
    refused(
        Pipeline::from_sampler(10, Sampler::sequential())
            .batch(2, Remainder::Partial)
            .map(Stage::cpu("first"), |b: Vec<usize>| b[0])
            .batch(4, Remainder::Pad)
            .build(),
    );
}

#[test]
fn the_report_has_each_cpu_workers_share() {
    let mut p = Pipeline::from_sampler(60, Sampler::sequential())
        .map(Stage::blocking("read", 2), |i: usize| i)
        .map(Stage::cpu("decode"), |i: usize| i + 1)
        .map(Stage::cpu("augment"), |i: usize| i * 2)
        .workers(3)
        .build()
        .unwrap();
    assert_eq!(p.epoch(0).filter(|r| r.is_ok()).count(), 60);
    let r = p.report().unwrap();
    assert_eq!(r.workers.len(), 3);
    // Two cpu stages: every item is served twice by some CPU worker; blocking items not.
    assert_eq!(r.workers.iter().map(|w| w.samples).sum::<u64>(), 120);
    assert!(r.lif.unwrap() >= 1.0);

    let mut only_blocking = Pipeline::from_sampler(5, Sampler::sequential())
        .map(Stage::blocking("read", 2), |i: usize| i)
        .build()
        .unwrap();
    assert_eq!(only_blocking.epoch(0).count(), 5);
    let r = only_blocking.report().unwrap();
    assert!(r.workers.is_empty());
    assert_eq!(r.lif, None);
}

/// A pipeline over epochs e·100 .. e·100 + 100 whose stage counts the items of each epoch.
fn counted(
    prefetch: bool,
    window: usize,
) -> (
    Pipeline<usize>,
    std::sync::Arc<[std::sync::atomic::AtomicUsize; 8]>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let loaded: std::sync::Arc<[AtomicUsize; 8]> =
        std::sync::Arc::new(std::array::from_fn(|_| AtomicUsize::new(0)));
    let seen = loaded.clone();
    let p = Pipeline::from_source(|e| e as usize * 100..e as usize * 100 + 100)
        .map(Stage::cpu("get"), move |i: usize| {
            seen[i / 100].fetch_add(1, Ordering::SeqCst);
            i
        })
        .workers(2)
        .window(window)
        .prefetch_next_epoch(prefetch)
        .build()
        .unwrap();
    (p, loaded)
}

#[test]
fn the_next_epoch_starts_while_this_one_ends_within_one_window() {
    use std::sync::atomic::Ordering;
    let (mut p, loaded) = counted(true, 16);
    let total = |l: &[std::sync::atomic::AtomicUsize; 8]| -> usize {
        l.iter().map(|a| a.load(Ordering::SeqCst)).sum()
    };
    let mut first = Vec::new();
    for (consumed, r) in p.epoch(0).enumerate() {
        first.push(r.unwrap());
        // Loaded and not yet handed out, both epochs together: within one window.
        let held = total(&loaded) - (consumed + 1);
        assert!(held <= 16, "{held} items held after {consumed}");
        if consumed >= 70 {
            // A slow consumer at the end: the next epoch has time to fill what it may.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(first, (0..100).collect::<Vec<_>>());
    // Nobody asks for epoch 1 yet, but a window of it gets loaded (a hang detector, not a
    // speed bound).
    let t = std::time::Instant::now();
    while loaded[1].load(Ordering::SeqCst) < 16 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "epoch 1 was not prefetched"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        loaded[1].load(Ordering::SeqCst),
        16,
        "no more than the window"
    );
    let second: Vec<usize> = p.epoch(1).map(Result::unwrap).collect();
    assert_eq!(second, (100..200).collect::<Vec<_>>());
    assert_eq!(loaded[1].load(Ordering::SeqCst), 100, "each item once");
    // Asking for another epoch than the prefetched one drops it and gives that epoch.
    let fifth: Vec<usize> = p.epoch(5).map(Result::unwrap).collect();
    assert_eq!(fifth, (500..600).collect::<Vec<_>>());
    assert!(loaded[2].load(Ordering::SeqCst) <= 16);
}

#[test]
fn without_prefetch_the_next_epoch_waits_and_prefetch_changes_no_item() {
    use std::sync::atomic::Ordering;
    let (mut off, loaded) = counted(false, 8);
    let (mut on, _) = counted(true, 8);
    for e in 0..3 {
        let a: Vec<usize> = off.epoch(e).map(Result::unwrap).collect();
        let b: Vec<usize> = on.epoch(e).map(Result::unwrap).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 100);
    }
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(loaded[3].load(Ordering::SeqCst), 0);
}

#[test]
fn an_epoch_ended_early_or_a_restore_drops_the_prefetched_run() {
    let (mut p, _) = counted(true, 8);
    let all: Vec<usize> = p.epoch(0).map(Result::unwrap).collect();
    assert_eq!(all.len(), 100);
    // Epoch 1 is prefetched; stop it part-way: the rest of it resumes exactly, and epoch 2
    // (prefetched by nobody) starts from its first item.
    let state = {
        let mut it = p.epoch(1);
        for want in 100..130 {
            assert_eq!(it.next().unwrap().unwrap(), want);
        }
        it.state()
    };
    let rest: Vec<usize> = p.epoch(1).map(Result::unwrap).collect();
    assert_eq!(rest, (130..200).collect::<Vec<_>>());
    p.restore(&state).unwrap();
    let again: Vec<usize> = p.epoch(1).map(Result::unwrap).collect();
    assert_eq!(again, (130..200).collect::<Vec<_>>());
    let next: Vec<usize> = p.epoch(2).map(Result::unwrap).collect();
    assert_eq!(next, (200..300).collect::<Vec<_>>());
}

#[test]
fn a_stage_takes_a_strategy_value_and_the_workers_are_spawned_once() {
    let strategy: std::sync::Arc<dyn scheduler::Strategy> =
        std::sync::Arc::from(strategies::parse("round-robin").unwrap());
    let mut p = Pipeline::from_sampler(40, Sampler::sequential())
        .map(Stage::cpu("get").strategy_value(strategy), |i: usize| i)
        .workers(3)
        .build()
        .unwrap();
    for e in 0..3 {
        assert_eq!(p.epoch(e).map(Result::unwrap).count(), 40);
    }
    assert_eq!(p.threads_spawned(), 3);
    // The value is checked like a spec: one that cannot serve the pool is refused.
    let weights: std::sync::Arc<dyn scheduler::Strategy> =
        std::sync::Arc::from(strategies::parse("weighted-rr(weights=1,1)").unwrap());
    let e = Pipeline::from_sampler(4, Sampler::sequential())
        .map(Stage::cpu("get").strategy_value(weights), |i: usize| i)
        .workers(3)
        .build()
        .unwrap_err();
    assert!(e.to_string().starts_with("get: strategy:"), "{e}");
    let none = Pipeline::from_sampler(4, Sampler::sequential())
        .map(Stage::blocking("read", 1), |i: usize| i)
        .build()
        .unwrap();
    assert_eq!(none.threads_spawned(), 0);
}
