//! Streaming placement: ids submitted one at a time spread over every worker for the
//! strategies that deal batches (`block`, `work-stealing`, `range-stealing`), on both engines.

mod common;

use common::Recorded;
use scheduler::{run_sim, run_threads, CostModel, RunSpec, Source, Tasks};

const DEALERS: [&str; 5] = [
    "block",
    "work-stealing",
    "work-stealing(order=lifo)",
    "work-stealing(steal=one)",
    "range-stealing",
];

#[test]
fn one_at_a_time_submission_uses_every_worker_on_sim() {
    let (p, n) = (4, 400);
    // 1 µs tasks released every 10 µs: each arrival is a batch of one, on an idle machine.
    let costs = vec![1_000u64; n];
    let release: Vec<u64> = (0..n as u64).map(|i| i * 10_000).collect();
    let tasks = Tasks {
        release_ns: Some(&release),
        ..Tasks::with_costs(&costs)
    };
    for spec in DEALERS {
        let s = strategies::parse(spec).unwrap();
        let r = run_sim(&RunSpec::new(p), s.as_ref(), &tasks, &CostModel::default()).unwrap();
        let per: Vec<u64> = r.per_worker.iter().map(|w| w.tasks).collect();
        assert_eq!(per.iter().sum::<u64>(), n as u64, "{spec}");
        if spec == "block" {
            // The rotating start deals id i to worker i mod P.
            assert_eq!(per, vec![100; p], "{spec}");
        } else {
            assert!(
                per.iter().all(|&t| t >= (n / p / 2) as u64),
                "{spec}: per-worker tasks {per:?}"
            );
        }
    }
}

#[test]
fn one_at_a_time_submission_uses_every_worker_on_threads() {
    let (p, n) = (2, 400);
    let release: Vec<u64> = (0..n as u64).map(|i| i * 20_000).collect();
    let tasks = Tasks {
        n,
        release_ns: Some(&release),
        ..Tasks::default()
    };
    for spec in DEALERS {
        let recorded = Recorded::new(spec);
        let r = run_threads(&RunSpec::new(p), &recorded, &tasks, |_, _| {}).unwrap();
        let per: Vec<u64> = r.per_worker.iter().map(|w| w.tasks).collect();
        assert_eq!((r.executed, r.failed), (n as u64, 0), "{spec}");
        if spec == "block" {
            // Static: whoever is scheduled, each id runs on the worker it was dealt to.
            assert_eq!(per, vec![200; p], "{spec}");
        }
        // Which worker runs a dealt id is a race on threads (an awake thief may take it
        // first), but every worker's queue must have received work.
        // Tasks out of each worker's own queues: picked by it as `Local`, or moved out of it by
        // a thief.
        let mut from = vec![0u64; p];
        for (w, pick) in recorded.picks() {
            match pick.source {
                Source::Local => from[w] += u64::from(pick.count),
                Source::Stolen { victim, moved } => from[victim] += u64::from(moved),
                Source::Shared => {}
            }
        }
        assert!(
            from.iter().all(|&k| k > 0),
            "{spec}: tasks out of each worker's queues {from:?}"
        );
    }
}

#[test]
fn an_arrival_wakes_one_parked_worker_per_task_not_all() {
    // 1,024 simulated workers, 2,000 tasks arriving one at a time far apart: nearly every
    // worker is parked at every arrival. Waking all of them would cost ~1,024 searches per
    // arrival (2 M events); one wake-up per task keeps the run to a few events per task.
    let (p, n) = (1024, 2000);
    let costs = vec![10_000u64; n];
    let release: Vec<u64> = (0..n as u64).map(|i| i * 1_000_000).collect();
    let tasks = Tasks {
        release_ns: Some(&release),
        ..Tasks::with_costs(&costs)
    };
    let c = CostModel::default();
    // A task's cost, one wake-up, and at worst a probe of every other worker.
    let bound = 10_000 + c.wake_ns + c.local_ns + c.shared_ns + p as u64 * c.steal_cross_ns;
    for spec in ["work-stealing", "range-stealing", "central", "block", "jsq"] {
        let s = strategies::parse(spec).unwrap();
        let r = run_sim(&RunSpec::new(p), s.as_ref(), &tasks, &c).unwrap();
        assert_eq!(r.executed, n as u64, "{spec}");
        let events = r.events.unwrap();
        println!("{spec}: {events} events for {n} tasks on {p} workers");
        // Every task still runs right after its arrival (the next one is 1 ms later): none
        // waits for a worker that was not woken (static placement falls back to waking all).
        assert!(
            r.latency_ns.max <= bound,
            "{spec}: max latency {}",
            r.latency_ns.max
        );
        // jsq places each task on a sampled worker that the longest-parked one rarely is, so
        // its arrivals fall back to waking everyone (~P events each). `block` deals id i to
        // worker i mod P, which is also the order the workers park in.
        if spec != "jsq" {
            assert!(events <= 4 * n as u64 + p as u64, "{spec}: {events} events");
        }
    }
}
