//! Autotune on every pipeline shape (issue 29): with a `batch` and a map after it (a
//! collate), a `flat_map`, a `filter`, two blocking stages; each starts from one read thread
//! and the tuner must add threads. The assertions are on the tuner's decisions and on the
//! items (each exactly once, in order), never on time.

use std::time::{Duration, Instant};

use loader::{Autotune, Pipeline, PipelineBuilder, PipelineReport, Remainder, Sampler, Stage};

fn read(i: usize) -> usize {
    std::thread::sleep(Duration::from_millis(1));
    i
}

fn decode(i: usize) -> usize {
    let t = Instant::now();
    while t.elapsed() < Duration::from_micros(20) {
        std::hint::spin_loop();
    }
    i
}

const N: usize = 3000;

fn tuned() -> Autotune {
    Autotune::new().interval(Duration::from_millis(5))
}

/// Run one epoch; return the items and the report.
fn run<T: Send + 'static>(b: PipelineBuilder<T>) -> (Vec<T>, PipelineReport) {
    let mut p = b.workers(2).autotune(tuned()).build().unwrap();
    let items: Vec<T> = p.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(p.threads_alive(), 0);
    (items, p.report().unwrap().clone())
}

/// The stage `name` was raised from one thread by the tuner.
fn raised(report: &PipelineReport, name: &str) {
    let tuning = report.tuning.as_ref().expect("autotune reports");
    let knob = format!("{name}.threads");
    let up = tuning
        .changes
        .iter()
        .find(|c| c.knob == knob && c.to > c.from)
        .unwrap_or_else(|| {
            panic!(
                "{name}: no thread added ({} readings): {report}",
                tuning.trajectory.len()
            )
        });
    assert_eq!(up.from, 1, "{report}");
    let st = report.stages.iter().find(|s| s.name == name).unwrap();
    assert!(st.concurrency > 1, "{report}");
}

/// Read from one thread → decode → batch → collate, autotuned: every item once, in order.
fn batched_from_one_read_thread() -> PipelineReport {
    let b = Pipeline::from_sampler(N, Sampler::sequential())
        .map(Stage::blocking("read", 1), read)
        .map(Stage::cpu("decode"), decode)
        .batch(32, Remainder::Partial)
        .map(Stage::cpu("collate"), |v: Vec<usize>| v);
    let (batches, report) = run(b);
    let flat: Vec<usize> = batches.into_iter().flatten().collect();
    assert_eq!(flat, (0..N).collect::<Vec<_>>());
    report
}

#[test]
fn with_a_batch_and_a_collate_the_tuner_adds_read_threads() {
    raised(&batched_from_one_read_thread(), "read");
}

#[test]
fn with_a_batch_alone_the_tuner_adds_read_threads() {
    let b = Pipeline::from_sampler(N, Sampler::sequential())
        .map(Stage::blocking("read", 1), read)
        .map(Stage::cpu("decode"), decode)
        .batch(32, Remainder::Partial);
    let (batches, report) = run(b);
    assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), N);
    raised(&report, "read");
}

#[test]
fn with_a_flat_map_and_a_filter_the_tuner_adds_read_threads() {
    let b = Pipeline::from_sampler(N, Sampler::sequential())
        .map(Stage::blocking("read", 1), read)
        .flat_map(Stage::cpu("split"), |i: usize| [2 * i, 2 * i + 1])
        .filter(Stage::cpu("odd"), |x: &usize| x % 2 == 1)
        .map(Stage::cpu("decode"), decode)
        .batch(16, Remainder::Partial)
        .map(Stage::cpu("collate"), |v: Vec<usize>| v);
    let (batches, report) = run(b);
    let flat: Vec<usize> = batches.into_iter().flatten().collect();
    assert_eq!(flat, (0..N).map(|i| 2 * i + 1).collect::<Vec<_>>());
    raised(&report, "read");
}

#[test]
fn two_blocking_stages_both_grow_from_one_thread() {
    let b = Pipeline::from_sampler(N, Sampler::sequential())
        .map(Stage::blocking("read", 1), read)
        .map(Stage::blocking("fetch", 1), read)
        .map(Stage::cpu("decode"), decode)
        .batch(32, Remainder::Drop)
        .map(Stage::cpu("collate"), |v: Vec<usize>| v.len());
    let (sizes, report) = run(b);
    assert_eq!(sizes, vec![32; N / 32]);
    raised(&report, "read");
    raised(&report, "fetch");
}

/// The ramp from one thread is a jump, not a walk: once every stage is measured the tuner
/// sets the read stage to Little's law's count (`target × read time`, here tens of threads)
/// in one change, so a pipeline started at `concurrency=1` is at speed within a few readings.
/// Counted in changes, not time: at most 3 raises before the read stage holds 8 threads or
/// more (feedback's +50% raises alone would take 6 to get from 1 to 8).
#[test]
fn the_ramp_from_one_thread_takes_a_few_steps_not_one_per_thread() {
    let report = batched_from_one_read_thread();
    let tuning = report.tuning.as_ref().expect("autotune reports");
    let ups: Vec<_> = tuning
        .changes
        .iter()
        .filter(|c| c.knob == "read.threads" && c.to > c.from)
        .collect();
    let steps = ups
        .iter()
        .position(|c| c.to >= 8)
        .map(|k| k + 1)
        .unwrap_or_else(|| panic!("read never reached 8 threads: {report}"));
    assert!(steps <= 3, "{steps} raises to reach 8 threads: {report}");
    assert_eq!(ups[0].from, 1, "{report}");
}
