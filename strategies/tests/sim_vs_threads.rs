//! The sim engine against the threads engine: the same strategy values and the same task costs
//! (sleeps on threads, virtual time in the sim) give makespans within 20% of each other.
//!
//! It compares wall-clock makespans, so it is a validation run, not part of the default test
//! suite (a busy CI machine can stretch real sleeps past any fixed bound): it is `#[ignore]`d
//! and runs with `just validate`
//! (`cargo test --release -p strategies --test sim_vs_threads -- --ignored --nocapture`),
//! which prints the makespans and their ratio.

use std::time::Duration;

use scheduler::{run_sim, run_threads, CostModel, RunSpec, SmallRng, Tasks};

#[test]
#[ignore = "wall-clock validation: run with `just validate`"]
fn sim_and_threads_agree_on_makespan() {
    // 40 tasks of 1–3 ms on 2 workers: ~40 ms per run.
    let mut rng = SmallRng::new(4);
    let costs: Vec<u64> = (0..40)
        .map(|_| 1_000_000 + rng.below(2_000_001) as u64)
        .collect();
    let tasks = Tasks::with_costs(&costs);
    let spec = RunSpec::new(2).with_seed(1);
    println!(
        "closed, P = 2, 40 sleep tasks of 1–3 ms (total {:.1} ms)",
        costs.iter().sum::<u64>() as f64 / 1e6
    );
    println!(
        "{:<42} {:>12} {:>12} {:>8}",
        "strategy", "threads ms", "sim ms", "ratio"
    );
    for name in [
        "central(chunk=1)",
        "work-stealing(victim=random,steal=half)",
        "work-stealing(victim=random,steal=one)",
    ] {
        let strategy = strategies::parse(name).unwrap();
        let threads = run_threads(&spec, strategy.as_ref(), &tasks, |task, _| {
            std::thread::sleep(Duration::from_nanos(costs[task]))
        })
        .unwrap();
        let sim = run_sim(&spec, strategy.as_ref(), &tasks, &CostModel::default()).unwrap();
        assert_eq!((threads.executed, sim.executed), (40, 40));
        let ratio = threads.makespan_ns as f64 / sim.makespan_ns as f64;
        println!(
            "{name:<42} {:>12.3} {:>12.3} {ratio:>8.3}",
            threads.makespan_ns as f64 / 1e6,
            sim.makespan_ns as f64 / 1e6
        );
        assert!(
            (ratio - 1.0).abs() <= 0.2,
            "{name}: threads {} ns vs sim {} ns (ratio {ratio:.3})",
            threads.makespan_ns,
            sim.makespan_ns
        );
    }
}
