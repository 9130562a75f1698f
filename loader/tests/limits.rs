//! Thread and worker counts are checked against what this process may start before anything
//! is allocated or spawned (issue 27): a million workers used to abort the process after ~16k
//! threads. Each refusal is one line naming the field, the value and the limit.

use loader::{thread_limit, Loader, Pipeline, PipelineError, Sampler, Stage};

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

    // each stage within the limit, all of them together over it
    let half = limit / 2 + 1;
    let sum = Pipeline::from_sampler(10, Sampler::sequential())
        .map(Stage::blocking("read", half), |i: usize| i)
        .map(Stage::blocking("fetch", half), |i: usize| i)
        .build()
        .unwrap_err();
    assert!(
        sum.to_string().starts_with(&format!(
            "pipeline: workers + blocking threads = {}: ",
            2 * half
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
