//! Thread and worker counts are checked against what this process may start before anything
//! is allocated or spawned (issue 27): a million workers used to abort the process after ~16k
//! threads. Each refusal is one line naming the field, the value and the limit. So is a
//! dataset length whose epoch order (one index per sample) could not be allocated: it used to
//! panic ("capacity overflow") or abort the process ("memory allocation of N bytes failed").

use loader::{thread_limit, Loader, Pipeline, PipelineError, Sampler, Stage};

/// The headroom the tests compare against is read at one moment and the build's at another:
/// every test here that starts threads, or reads the limit, holds this so that no other test
/// of this binary starts or ends threads in between.
static THREADS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn threads() -> std::sync::MutexGuard<'static, ()> {
    THREADS.lock().unwrap_or_else(|e| e.into_inner())
}

fn one_line(m: &str) {
    assert!(!m.contains('\n'), "{m}");
}

#[test]
fn a_loader_with_more_workers_than_the_process_may_start_is_refused() {
    for workers in [1_000_000usize, 1_000_000_000] {
        let ds = loader::from_fn(10, Ok::<_, String>);
        let err = Loader::builder(ds).workers(workers).build().unwrap_err();
        let m = err.to_string();
        one_line(&m);
        assert!(
            m.starts_with(&format!(
                "workers = {workers}: this process may start at most "
            )),
            "{m}"
        );
    }
}

#[test]
fn pipeline_thread_counts_over_the_limit_are_refused_naming_the_stage_and_field() {
    let _threads = threads();
    let limit = thread_limit();
    let workers = Pipeline::from_sampler(10, Sampler::sequential())
        .map(Stage::cpu("decode"), |i: usize| i)
        .workers(1_000_000)
        .build()
        .unwrap_err();
    assert!(
        matches!(&workers, PipelineError::Threads { stage, field, requested: 1_000_000, limit: l }
            if stage == "pipeline" && field == "workers" && *l <= limit + 64),
        "{workers:?}"
    );
    let m = workers.to_string();
    one_line(&m);
    assert!(
        m.starts_with("pipeline: workers = 1000000: this process may start at most "),
        "{m}"
    );

    let blocking = Pipeline::from_sampler(10, Sampler::sequential())
        .map(Stage::blocking("read", 1_000_000_000), |i: usize| i)
        .build()
        .unwrap_err();
    assert!(
        blocking
            .to_string()
            .starts_with("read: concurrency = 1000000000: this process may start at most "),
        "{blocking}"
    );

    // Each stage within the limit, all of them together over it. The limit is the headroom
    // *now*: other tests in this binary start and end threads between this reading and the
    // build's, so each stage takes three quarters of it (within the limit unless a quarter of
    // it was started meanwhile; together over it unless it grew by half). Halves were not
    // enough: on a machine with a low limit, `modest_counts_still_work`'s 128 threads ending
    // meanwhile let two halves through (CI, stop 29).
    let most = limit - limit / 4;
    let sum = Pipeline::from_sampler(10, Sampler::sequential())
        .map(Stage::blocking("read", most), |i: usize| i)
        .map(Stage::blocking("fetch", most), |i: usize| i)
        .build()
        .unwrap_err();
    assert!(
        sum.to_string().starts_with(&format!(
            "pipeline: workers + blocking threads = {}: ",
            2 * most
        )),
        "{sum}"
    );

    // a cpu stage's concurrency is bounded (its items run on the workers), never sized by
    let cpu = Pipeline::from_sampler(10, Sampler::sequential())
        .map(
            Stage::cpu("decode").concurrency(1_000_000_000),
            |i: usize| i,
        )
        .workers(2)
        .build()
        .unwrap_err();
    assert_eq!(cpu.stage(), Some("decode"));
    assert!(cpu.to_string().contains("concurrency"), "{cpu}");
    let cpu = Pipeline::from_sampler(10, Sampler::sequential())
        .map(Stage::cpu("decode").concurrency(usize::MAX), |i: usize| i)
        .workers(2)
        .build()
        .unwrap_err();
    assert_eq!(cpu.stage(), Some("decode"));
}

#[test]
fn modest_counts_still_work() {
    let _threads = threads();
    let mut p = Pipeline::from_sampler(500, Sampler::sequential())
        .map(Stage::blocking("read", 64), |i: usize| i * 2)
        .map(Stage::cpu("decode").concurrency(64), |i: usize| i + 1)
        .workers(2)
        .build()
        .unwrap();
    let got: Vec<usize> = p.epoch(0).map(|r| r.unwrap()).collect();
    assert_eq!(got, (0..500).map(|i| i * 2 + 1).collect::<Vec<_>>());
    assert_eq!(p.threads_alive(), 0);
}

#[test]
fn a_dataset_whose_order_cannot_be_allocated_is_refused_when_built() {
    // 2^60 indices are 2^63 bytes, past isize::MAX: the order used to panic when built.
    let len = 1usize << 60;
    for shuffled in [false, true] {
        let sampler = if shuffled {
            Sampler::shuffled(1)
        } else {
            Sampler::sequential()
        };
        let err = Loader::builder(loader::from_fn(len, Ok::<_, String>))
            .sampler(sampler.clone())
            .build()
            .unwrap_err()
            .to_string();
        one_line(&err);
        assert!(
            err.starts_with(&format!(
                "dataset: {len} samples: an epoch's order holds one index per sample"
            )),
            "{err}"
        );
        let err = Pipeline::from_sampler(len, sampler)
            .map(Stage::cpu("decode"), |i: usize| i)
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, PipelineError::Config { stage, field, .. } if stage == "pipeline" && field == "source"),
            "{err:?}"
        );
        one_line(&err.to_string());
    }
    // (A length that fits is built by every other loader test; building one here would
    // start threads while the thread-limit tests of this binary count them.)
}

/// The most this process has held (`VmHWM`, KiB), Linux only.
fn peak_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// An epoch in order over a billion samples holds no order of them, at sample and at batch
/// granularity: the first batch comes at once (it came after writing 8 GB of indices, and at
/// batch granularity 8 GB more of positions).
#[test]
fn a_billion_samples_in_order_start_without_an_order_of_them() {
    use loader::Granularity;
    let _threads = threads();
    for g in [Granularity::Sample, Granularity::Batch] {
        let before = peak_kib();
        let ds = loader::from_fn(1_000_000_000, Ok::<_, String>);
        let mut l = Loader::builder(ds)
            .batch_size(4)
            .workers(2)
            .granularity(g)
            .build()
            .unwrap();
        let first: Vec<Vec<usize>> = l.epoch(0).take(2).map(|b| b.unwrap().data).collect();
        assert_eq!(first, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]], "{g:?}");
        if let (Some(a), Some(b)) = (before, peak_kib()) {
            assert!(b.saturating_sub(a) < 200 * 1024, "{g:?}: {a} -> {b} KiB");
        }
    }
}
