//! The simulator's clock never wraps: runs whose simulated time cannot be represented are
//! refused up front, and a run that still reaches the end of the clock fails instead of
//! reporting a wrapped makespan.

use std::sync::Arc;

use scheduler::doc_support::FifoStrategy;
use scheduler::{
    run_sim, Attempts, Batch, Context, CostModel, Instance, Next, RunError, RunSpec, SharedQueue,
    Strategy, Tasks, WorkerQueue,
};

type Case = (&'static str, RunSpec, Vec<u64>, Option<Vec<u64>>, CostModel);

fn refused(spec: &RunSpec, tasks: &Tasks<'_>, cost: &CostModel) -> String {
    match run_sim(spec, &FifoStrategy, tasks, cost) {
        Err(RunError::Invalid(e)) => e.to_string(),
        Ok(r) => panic!("accepted, makespan {} ns", r.makespan_ns),
        Err(e) => panic!("not an input error: {e}"),
    }
}

#[test]
fn unrepresentable_runs_are_refused_up_front() {
    let huge = [u64::MAX / 2, u64::MAX / 2, 10];
    let cases: Vec<Case> = vec![
        (
            "huge costs",
            RunSpec::new(1),
            huge.to_vec(),
            None,
            CostModel::zero(),
        ),
        (
            "costs summing past 2^63",
            RunSpec::new(1),
            vec![1 << 62; 3],
            None,
            CostModel::zero(),
        ),
        (
            "a tiny speed",
            RunSpec::new(2).with_speeds(vec![1e-300, 1.0]),
            vec![1_000; 4],
            None,
            CostModel::zero(),
        ),
        (
            "a huge cost term",
            RunSpec::new(2),
            vec![1_000; 4],
            None,
            "wake=18446744073s".parse().unwrap(),
        ),
        (
            "a huge steal term times P",
            RunSpec::new(64),
            vec![1_000; 4],
            None,
            "steal_cross=1000000000s".parse().unwrap(),
        ),
        (
            "releases near 2^64",
            RunSpec::new(2),
            vec![1_000; 3],
            Some(vec![0, u64::MAX - 10, u64::MAX - 5]),
            CostModel::zero(),
        ),
    ];
    for (what, spec, costs, releases, cost) in cases {
        let tasks = Tasks {
            n: costs.len(),
            cost_ns: Some(&costs),
            estimate_ns: None,
            release_ns: releases.as_deref(),
        };
        let err = refused(&spec, &tasks, &cost);
        assert!(
            err.contains("2^63") && err.contains("simulated time") && !err.contains('\n'),
            "{what}: {err}"
        );
    }
}

#[test]
fn the_largest_representable_run_is_still_exact() {
    // Just under the bound: one task of 2^62 ns runs and reports its exact makespan.
    let costs = [1u64 << 62];
    let r = run_sim(
        &RunSpec::new(1),
        &FifoStrategy,
        &Tasks::with_costs(&costs),
        &CostModel::zero(),
    )
    .unwrap();
    assert_eq!(r.makespan_ns, 1 << 62);
    assert_eq!(r.executed, 1);
}

/// A strategy that answers Retry for ever: only the clock can stop it.
#[derive(Debug)]
struct Stubborn;

struct Nothing;
impl SharedQueue for Nothing {
    fn submit(&self, _: Batch<'_>) {}
}
struct Retry;
impl WorkerQueue for Retry {
    fn next(&mut self) -> Next {
        Next::Retry(Attempts::default())
    }
}
impl Strategy for Stubborn {
    fn spec(&self) -> String {
        "stubborn".into()
    }
    fn build(&self, ctx: &Context) -> Instance {
        Instance {
            shared: Arc::new(Nothing),
            workers: (0..ctx.workers())
                .map(|_| Box::new(Retry) as Box<dyn WorkerQueue>)
                .collect(),
        }
    }
}

#[test]
fn a_run_reaching_the_end_of_the_clock_fails_instead_of_wrapping() {
    // The up-front bound allows one backoff of 2^61 ns per pick; endless retries pass it and
    // saturate the clock, which fails the run.
    let costs = [5u64];
    let cost = CostModel {
        backoff_ns: 1 << 61,
        ..CostModel::zero()
    };
    let err = run_sim(
        &RunSpec::new(1),
        &Stubborn,
        &Tasks::with_costs(&costs),
        &cost,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("2^64") && err.contains("refused"), "{err}");
}
