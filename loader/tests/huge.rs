//! Huge settings (from a Python fuzz run): sizes that overflow when multiplied — a prefetch
//! times a batch size, windows and queues summed, intervals and grace periods doubled — must
//! saturate (or be refused with a typed error), never panic. Counts only.

use std::time::Duration;

use loader::{Autotune, Loader, Pipeline, Remainder, Sampler, Stage};

#[test]
fn a_loader_with_a_huge_prefetch_loads_and_reports() {
    let dataset = loader::from_fn(10, Ok::<_, String>);
    let mut l = Loader::builder(dataset)
        .batch_size(4)
        .prefetch(usize::MAX / 2)
        .workers(2)
        .build()
        .unwrap();
    let n: usize = l.epoch(0).map(|b| b.unwrap().indices.len()).sum();
    assert_eq!(n, 10);
    let r = l.report().unwrap();
    assert_eq!(r.samples, 10);
    assert_eq!(r.capacity, usize::MAX, "prefetch x batch size saturates");
}

#[test]
fn a_loader_with_huge_autotune_and_grace_settings_loads() {
    let dataset = loader::from_fn(50, Ok::<_, String>);
    let mut l = Loader::builder(dataset)
        .batch_size(usize::MAX / 2)
        .prefetch(3)
        .workers(2)
        .grace(Duration::MAX)
        .autotune(Autotune::new().interval(Duration::MAX))
        .build()
        .unwrap();
    for epoch in 0..2 {
        let n: usize = l.epoch(epoch).map(|b| b.unwrap().indices.len()).sum();
        assert_eq!(n, 50);
        let _ = l.report().unwrap().to_string();
    }
    // an epoch dropped part-way waits at most the grace period: here, for calls that end
    let mut it = l.epoch(2);
    it.next().unwrap().unwrap();
    drop(it);
}

#[test]
fn a_pipeline_with_huge_batches_windows_and_queues_builds_or_refuses_without_panicking() {
    let half = usize::MAX / 2 + 1;
    // two batches whose sizes sum past usize::MAX, under a memory cap
    let r = Pipeline::from_sampler(10, Sampler::sequential())
        .batch(half, Remainder::Partial)
        .batch(half, Remainder::Partial)
        .autotune(Autotune::new().max_items(100))
        .build();
    let e = r.unwrap_err();
    assert!(e.to_string().contains("max_items"), "{e}");
    // huge windows and queues on two segments, summed by the memory cap's fit
    let mut p = Pipeline::from_sampler(10, Sampler::sequential())
        .map(Stage::cpu("a").queue(usize::MAX), |i: usize| i)
        .batch(2, Remainder::Partial)
        .map(Stage::blocking("b", 2).queue(usize::MAX), |b: Vec<usize>| b)
        .window(usize::MAX)
        .workers(2)
        .grace(Duration::MAX)
        .autotune(
            Autotune::new()
                .max_items(usize::MAX)
                .interval(Duration::MAX),
        )
        .build()
        .unwrap();
    let got: Vec<Vec<usize>> = p.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(got.concat(), (0..10).collect::<Vec<_>>());
    let _ = p.report().unwrap().to_string();
    // and without a cap
    let mut p = Pipeline::from_sampler(10, Sampler::sequential())
        .map(
            Stage::cpu("a").queue(usize::MAX).concurrency(1 << 20),
            |i: usize| i,
        )
        .map(Stage::blocking("b", 2).queue(usize::MAX), |i: usize| i)
        .workers(2)
        .autotune(Autotune::new().interval(Duration::from_millis(1)))
        .build()
        .unwrap();
    let got: Vec<usize> = p.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}
