//! Autotune: the tuner changes thread counts and windows mid-epoch without losing, repeating
//! or reordering an item, stays within its memory cap, records what it did and joins every
//! thread it started. No assertion on wall-clock time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loader::{Autotune, Pipeline, PipelineError, Remainder, Sampler, Stage, WindowRule};

fn read(i: usize) -> usize {
    std::thread::sleep(Duration::from_micros(200 + ((i * 7919) % 7) as u64 * 50));
    i
}

#[test]
fn every_item_once_and_in_order_while_threads_change() {
    let seen = Arc::new(Mutex::new(HashMap::<usize, usize>::new()));
    let s = Arc::clone(&seen);
    let mut p = Pipeline::from_sampler(3000, Sampler::shuffled(5))
        .map(Stage::blocking("read", 1), move |i: usize| {
            *s.lock().unwrap().entry(i).or_insert(0) += 1;
            read(i)
        })
        .map(Stage::cpu("decode"), |i: usize| i + 1)
        .workers(2)
        .autotune(Autotune::new().interval(Duration::from_millis(5)))
        .build()
        .unwrap();
    let got: Vec<usize> = p.epoch(0).map(|r| r.unwrap()).collect();
    let want: Vec<usize> = Sampler::shuffled(5)
        .indices(3000, 0)
        .into_iter()
        .map(|i| i + 1)
        .collect();
    assert_eq!(got, want);
    assert!(seen.lock().unwrap().values().all(|&n| n == 1));
    assert_eq!(seen.lock().unwrap().len(), 3000);
    assert_eq!(
        p.threads_alive(),
        0,
        "every thread the tuner started is joined"
    );
    let report = p.report().unwrap();
    let tuning = report.tuning.as_ref().expect("autotune reports");
    // One read thread against a decode of nothing: the tuner must add read threads.
    let up = tuning
        .changes
        .iter()
        .find(|c| c.knob == "read.threads" && c.to > c.from)
        .unwrap_or_else(|| panic!("no read thread added: {report}"));
    assert_eq!(up.from, 1);
    assert!(!up.why.is_empty());
    assert!(report.stages[0].concurrency > 1);
    assert!(!tuning.trajectory.is_empty());
    assert_eq!(
        tuning.stages,
        vec!["read".to_string(), "decode".to_string()]
    );
    // The report prints the trajectory and the changes.
    let text = report.to_string();
    assert!(
        text.contains("autotune:") && text.contains("read.threads"),
        "{text}"
    );
}

#[test]
fn the_memory_cap_holds_while_the_tuner_wants_more() {
    let mut p = Pipeline::from_sampler(2000, Sampler::sequential())
        .map(Stage::blocking("read", 2), read)
        .map(Stage::cpu("decode"), |i: usize| i)
        .workers(2)
        .autotune(
            Autotune::new()
                .max_items(48)
                .interval(Duration::from_millis(5)),
        )
        .build()
        .unwrap();
    let got: Vec<usize> = p.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(got, (0..2000).collect::<Vec<_>>());
    assert!(p.held_peak() <= 48, "held {} of a cap of 48", p.held_peak());
    let report = p.report().unwrap();
    let t = report.tuning.as_ref().unwrap();
    assert!(t.trajectory.iter().all(|x| x.window <= 48));
}

#[test]
fn batches_and_flat_maps_are_exact_under_autotune() {
    let mut p = Pipeline::from_sampler(600, Sampler::sequential())
        .map(Stage::blocking("read", 1), read)
        .flat_map(Stage::cpu("split"), |i: usize| vec![2 * i, 2 * i + 1])
        .map(Stage::blocking("fetch", 1), |x: usize| {
            std::thread::sleep(Duration::from_micros(100));
            x
        })
        .batch(8, Remainder::Partial)
        .map(Stage::cpu("collate"), |b: Vec<usize>| b)
        .workers(2)
        .autotune(
            Autotune::new()
                .max_items(400)
                .interval(Duration::from_millis(5)),
        )
        .build()
        .unwrap();
    for epoch in 0..2 {
        let flat: Vec<usize> = p.epoch(epoch).flat_map(|b| b.unwrap()).collect();
        assert_eq!(flat, (0..1200).collect::<Vec<_>>());
        assert_eq!(p.threads_alive(), 0);
    }
    assert!(p.held_peak() <= 400, "held {}", p.held_peak());
}

#[test]
fn dropping_mid_epoch_joins_the_tuner_and_its_threads() {
    let mut p = Pipeline::from_sampler(100_000, Sampler::sequential())
        .map(Stage::blocking("read", 1), read)
        .map(Stage::cpu("decode"), |i: usize| i)
        .workers(2)
        .autotune(Autotune::new().interval(Duration::from_millis(2)))
        .build()
        .unwrap();
    let first: Vec<usize> = p.epoch(0).take(500).map(|r| r.unwrap()).collect();
    assert_eq!(first, (0..500).collect::<Vec<_>>());
    assert_eq!(p.threads_alive(), 0);
    // It goes on where it stopped.
    let next: Vec<usize> = p.epoch(0).take(10).map(|r| r.unwrap()).collect();
    assert_eq!(next, (500..510).collect::<Vec<_>>());
}

#[test]
fn bad_autotune_settings_name_the_field() {
    let cases = [
        (Autotune::new().max_threads(0), "max_threads"),
        (Autotune::new().max_items(3), "max_items"),
        (Autotune::new().interval(Duration::ZERO), "interval"),
    ];
    for (cfg, field) in cases {
        let Err(e) = Pipeline::from_sampler(10, Sampler::sequential())
            .map(Stage::blocking("read", 1), |i: usize| i)
            .workers(1)
            .autotune(cfg)
            .build()
        else {
            panic!("{field}: refused")
        };
        match &e {
            PipelineError::Config {
                stage, field: f, ..
            } => {
                assert_eq!((stage.as_str(), f.as_str()), ("autotune", field), "{e}");
            }
            other => panic!("{other}"),
        }
    }
}

#[test]
fn the_next_epoch_starts_where_the_tuning_ended() {
    let mut p = Pipeline::from_sampler(2000, Sampler::sequential())
        .map(Stage::blocking("read", 1), read)
        .map(Stage::cpu("decode"), |i: usize| i)
        .workers(2)
        .autotune(Autotune::new().interval(Duration::from_millis(5)))
        .build()
        .unwrap();
    assert_eq!(p.epoch(0).count(), 2000);
    let first = p.report().unwrap().stages[0].concurrency;
    assert!(first > 1, "the tuner added read threads");
    let got: Vec<usize> = p.epoch(1).map(|r| r.unwrap()).collect();
    assert_eq!(got, (0..2000).collect::<Vec<_>>());
    let report = p.report().unwrap();
    let t = report.tuning.as_ref().unwrap();
    // Epoch 1 began with epoch 0's threads, not the guess of 1: its first change of them
    // starts there (or, with no change, it ends there).
    let start = t
        .changes
        .iter()
        .find(|c| c.knob == "read.threads")
        .map_or(report.stages[0].concurrency, |c| c.from);
    assert_eq!(start, first);
    assert_eq!(p.threads_alive(), 0);
}

/// A sleep of 100–400 µs, one item in 50 taking 5 ms (the Loader's autotune test's `nap`).
fn nap(i: usize) -> usize {
    let us = if i % 50 == 7 {
        5000
    } else {
        100 + ((i * 7919) % 4) as u64 * 100
    };
    std::thread::sleep(Duration::from_micros(us));
    i
}

#[test]
fn the_head_of_line_rule_raises_a_one_stage_window_exactly_as_the_loader_does() {
    // The Loader's pipeline, built by hand: one cpu stage, a batch that ends the chain inside
    // the consumer's window, a window of one batch; the tuner must deepen it (in whole
    // batches), within the cap, losing or repeating nothing.
    let cap = 64;
    let mut p = Pipeline::from_sampler(3000, Sampler::shuffled(3))
        .map(Stage::cpu("get"), nap)
        .batch(4, Remainder::Partial)
        .consumer_window(true)
        .window(4)
        .workers(4)
        .autotune(
            Autotune::new()
                .window_rule(WindowRule::HeadOfLine)
                .max_items(cap)
                .interval(Duration::from_millis(5)),
        )
        .build()
        .unwrap();
    let got: Vec<usize> = p.epoch(0).flat_map(|b| b.unwrap()).collect();
    assert_eq!(got, Sampler::shuffled(3).indices(3000, 0));
    assert!(p.held_peak() <= cap, "held {} of {cap}", p.held_peak());
    let report = p.report().unwrap();
    let tuning = report.tuning.as_ref().unwrap();
    let up = tuning
        .changes
        .iter()
        .find(|c| c.knob == "segment 0.window" && c.to > c.from)
        .unwrap_or_else(|| panic!("the window never rose: {report}"));
    assert_eq!(up.from, 4);
    assert!(tuning.changes.iter().all(|c| c.to % 4 == 0 && c.to <= cap));
    assert_eq!(p.windows()[0], tuning.changes.last().unwrap().to);
    // The head-of-line rule's reasons (the stations' rule says "twice its stations' slots…").
    assert!(
        up.why.starts_with("model:") || up.why.starts_with("feedback:"),
        "{}",
        up.why
    );
}

#[test]
fn the_report_carries_the_consumers_waits_and_the_occupancy() {
    let mut p = Pipeline::from_sampler(200, Sampler::sequential())
        .map(Stage::cpu("get"), |i: usize| {
            std::thread::sleep(Duration::from_micros(300));
            i
        })
        .window(8)
        .workers(2)
        .build()
        .unwrap();
    assert_eq!(p.epoch(0).count(), 200);
    let r = p.report().unwrap();
    // The consumer does nothing: it waited for every item's sleep, and asked 201 times
    // with at most the window held.
    assert!(r.consumer_wait_s > 0.0, "{r:?}");
    assert!(
        r.occupancy_max >= 1 && r.occupancy_max <= 8,
        "{}",
        r.occupancy_max
    );
    assert!(r.occupancy_mean > 0.0 && r.occupancy_mean <= 8.0);
}

#[test]
fn a_fixed_stage_keeps_its_threads_under_autotune() {
    // Little's law on a 2 ms read asks for many threads: the plain stage grows, the fixed
    // one keeps its 2 (a process stage's threads each hold a worker process's socket).
    for fixed in [false, true] {
        let stage = Stage::blocking("read", 2);
        let mut p = Pipeline::from_sampler(400, Sampler::sequential())
            .map(if fixed { stage.fixed() } else { stage }, |i: usize| {
                std::thread::sleep(Duration::from_millis(2));
                i
            })
            .map(Stage::cpu("decode"), |i: usize| i)
            .workers(2)
            .autotune(Autotune::new().interval(Duration::from_millis(5)))
            .build()
            .unwrap();
        let got: Vec<usize> = p.epoch(0).map(|r| r.unwrap()).collect();
        assert_eq!(got, (0..400).collect::<Vec<_>>());
        let tuning = p.report().unwrap().tuning.clone().unwrap();
        let raised = tuning.changes.iter().any(|c| c.knob == "read.threads");
        assert_eq!(raised, !fixed, "{:?}", tuning.changes);
    }
}
