//! The one-stage Loader's autotune: the prefetch changes mid-epoch without losing, repeating
//! or reordering a sample, never holds more samples than its memory cap, records what it did
//! and carries its setting to the next epoch. No assertion on wall-clock time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loader::{from_fn, Autotune, Granularity, Loader, LoaderError, Sampler};

/// A sleep of 100–400 µs, one sample in 50 taking 5 ms: in order, the slow ones hold up the
/// head, so a prefetch of 1 batch leaves the workers idle and the tuner must raise it.
fn nap(i: usize) {
    let us = if i % 50 == 7 {
        5000
    } else {
        100 + ((i * 7919) % 4) as u64 * 100
    };
    std::thread::sleep(Duration::from_micros(us));
}

/// `n` samples, sample `i` is `i` after its [`nap`].
fn napping(n: usize) -> impl loader::Dataset<Sample = usize> {
    from_fn(n, |i| {
        nap(i);
        Ok::<_, String>(i)
    })
}

/// `napping(n)` in batches of 4 on 4 workers, prefetch 1, autotuned every 5 ms.
fn tuned_napping(n: usize) -> Loader<impl loader::Dataset<Sample = usize>> {
    Loader::builder(napping(n))
        .batch_size(4)
        .workers(4)
        .prefetch(1)
        .autotune(Autotune::new().interval(Duration::from_millis(5)))
        .build()
        .unwrap()
}

#[test]
fn every_sample_once_and_in_order_while_the_prefetch_changes() {
    let seen = Arc::new(Mutex::new(HashMap::<usize, usize>::new()));
    let s = Arc::clone(&seen);
    let ds = from_fn(3000, move |i| {
        *s.lock().unwrap().entry(i).or_insert(0) += 1;
        nap(i);
        Ok::<_, String>(i)
    });
    let mut loader = Loader::builder(ds)
        .batch_size(4)
        .workers(4)
        .prefetch(1)
        .prefetch_next_epoch(false) // epoch 1's samples would count in `seen`
        .sampler(Sampler::shuffled(3))
        .autotune(Autotune::new().interval(Duration::from_millis(5)))
        .build()
        .unwrap();
    let got: Vec<usize> = loader.epoch(0).flat_map(|b| b.unwrap().indices).collect();
    assert_eq!(got, Sampler::shuffled(3).indices(3000, 0));
    assert!(seen.lock().unwrap().values().all(|&n| n == 1));
    assert_eq!(seen.lock().unwrap().len(), 3000);
    let report = loader.report().unwrap();
    let tuning = report.tuning.as_ref().expect("autotune reports");
    let up = tuning
        .changes
        .iter()
        .find(|c| c.knob == "prefetch" && c.to > c.from)
        .unwrap_or_else(|| panic!("the prefetch never rose: {report}"));
    assert_eq!(up.from, 1);
    assert!(!up.why.is_empty());
    assert_eq!(report.prefetch, loader.prefetch());
    assert!(loader.prefetch() > 1);
    assert_eq!(tuning.stages, vec!["get".to_string()]);
    assert!(!tuning.trajectory.is_empty());
    assert!(tuning.trajectory.iter().all(|p| p.concurrency == vec![4]));
    let text = report.to_string();
    assert!(text.contains("autotune:"), "{text}");
    assert!(text.contains("prefetch 1 ->"), "{text}");
}

#[test]
fn the_memory_cap_holds_while_the_tuner_wants_more() {
    // Samples loaded and not yet handed to the consumer, at most.
    let held = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (h, pk) = (Arc::clone(&held), Arc::clone(&peak));
    let ds = from_fn(2000, move |i| {
        nap(i);
        let now = h.fetch_add(1, SeqCst) + 1;
        pk.fetch_max(now, SeqCst);
        Ok::<_, String>(i)
    });
    let cap = 24;
    let mut loader = Loader::builder(ds)
        .batch_size(4)
        .workers(8)
        .prefetch(2)
        .prefetch_next_epoch(false)
        .autotune(
            Autotune::new()
                .max_items(cap)
                .interval(Duration::from_millis(5)),
        )
        .build()
        .unwrap();
    let mut n = 0;
    for b in loader.epoch(0) {
        let b = b.unwrap();
        n += b.indices.len();
        held.fetch_sub(b.indices.len(), SeqCst);
    }
    assert_eq!(n, 2000);
    assert!(
        peak.load(SeqCst) <= cap,
        "{} samples held, cap {cap}",
        peak.load(SeqCst)
    );
    assert!(loader.prefetch() * 4 <= cap);
    let report = loader.report().unwrap();
    let tuning = report.tuning.as_ref().unwrap();
    assert!(tuning.changes.iter().all(|c| c.to * 4 <= cap), "{report}");
}

#[test]
fn batch_granularity_and_as_ready_are_exact_under_autotune() {
    for (granularity, ordered) in [
        (Granularity::Batch, true),
        (Granularity::Sample, false),
        (Granularity::Batch, false),
    ] {
        let ds = napping(1001);
        let mut loader = Loader::builder(ds)
            .batch_size(8)
            .workers(3)
            .prefetch(1)
            .granularity(granularity)
            .ordered(ordered)
            .autotune(Autotune::new().interval(Duration::from_millis(2)))
            .build()
            .unwrap();
        for epoch in 0..2 {
            let mut got: Vec<usize> = loader
                .epoch(epoch)
                .flat_map(|b| b.unwrap().indices)
                .collect();
            if !ordered {
                got.sort_unstable();
            }
            assert_eq!(
                got,
                (0..1001).collect::<Vec<_>>(),
                "{granularity:?} ordered {ordered} epoch {epoch}"
            );
        }
    }
}

#[test]
fn the_next_epoch_starts_where_the_tuning_ended() {
    let mut loader = tuned_napping(1500);
    assert_eq!(loader.epoch(0).count(), 375);
    let ended = loader.prefetch();
    assert!(ended > 1, "{}", loader.report().unwrap());
    // Epoch 1 starts from `ended`: its first change (if any) is from there, and its first
    // reading shows that window.
    assert_eq!(loader.epoch(1).count(), 375);
    let tuning = loader.report().unwrap().tuning.clone().unwrap();
    if let Some(c) = tuning.changes.first() {
        assert_eq!(c.from, ended);
    }
    assert_eq!(tuning.trajectory[0].window, ended * 4);
}

#[test]
fn bad_autotune_settings_name_the_field() {
    let build = |a: Autotune| {
        Loader::builder(from_fn(10, Ok::<_, String>))
            .batch_size(8)
            .workers(1)
            .autotune(a)
            .build()
    };
    match build(Autotune::new().max_items(7)) {
        Err(LoaderError::Config(m)) => {
            assert!(m.starts_with("autotune: max_items:"), "{m}");
            assert!(m.contains(">= the batch size 8"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    match build(Autotune::new().interval(Duration::ZERO)) {
        Err(LoaderError::Config(m)) => assert!(m.starts_with("autotune: interval:"), "{m}"),
        other => panic!("{other:?}"),
    }
    // a starting guess above the cap is fitted into it
    let l = Loader::builder(from_fn(10, Ok::<_, String>))
        .batch_size(8)
        .workers(1)
        .prefetch(10)
        .autotune(Autotune::new().max_items(16))
        .build()
        .unwrap();
    assert_eq!(l.prefetch(), 2);
}

#[test]
fn without_a_cap_the_prefetch_is_the_head_of_line_rules_not_the_stations() {
    // The loader's autotune is the pipeline's tuner under `WindowRule::HeadOfLine`: the
    // window follows the sample times (4 workers, 100–400 µs, one sample in 50 taking 5 ms,
    // in order: 17–75 batches in five debug runs on a loaded machine). The stations' rule
    // would size it from the `get` stage's slots, open to 2^20 under autotune: 2,097,152
    // batches (checked by swapping the rule). The bound leaves room for a slow machine.
    let mut loader = tuned_napping(3000);
    assert_eq!(loader.epoch(0).count(), 750);
    let report = loader.report().unwrap();
    assert!(loader.prefetch() > 1, "{report}");
    assert!(loader.prefetch() <= 10_000, "{report}");
    let tuning = report.tuning.as_ref().unwrap();
    assert!(
        tuning
            .changes
            .iter()
            .all(|c| c.why.starts_with("model:") || c.why.starts_with("feedback:")),
        "{report}"
    );
}
