//! `schedlab bench`: scheduling overhead and balance against rayon, in one process.
//!
//! Two measurements, each repeated and reported as the median:
//! 1. *Overhead*: n empty tasks through every strategy (timing off: no clock read per task) and
//!    through rayon on a pool of the same size, `par_iter().with_max_len(1)` (one job per task)
//!    and plain `par_iter()` (adaptive range splitting); ns per task and the ratio to rayon.
//! 2. *Balance*: spin tasks with log-normal costs; efficiency = lower bound / makespan for every
//!    strategy and for rayon on the same cost table.

use std::hint::black_box;
use std::time::Instant;

use clap::Args;
use rayon::prelude::*;
use scheduler::{run_threads, RunSpec, Tasks, Timing};
use workloads::{Distribution, Executor, Kind, Workload};

use crate::CliError;

/// The flags of `schedlab bench`.
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// Worker count for every contender.
    #[arg(long, short = 'p', default_value_t = 2)]
    pub workers: usize,
    /// Empty tasks per overhead run.
    #[arg(long, short = 'n', default_value_t = 1_000_000)]
    pub tasks: usize,
    /// Repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Spin tasks per balance run (0 skips the balance part).
    #[arg(long, default_value_t = 20_000)]
    pub spin_tasks: usize,
    /// Cost distribution of the balance part.
    #[arg(long, default_value = "lognormal(mean=50us,sigma=1.5)")]
    pub spin_workload: String,
    /// Strategies to measure (default: every registered one at its defaults, plus
    /// work-stealing(steal=one)).
    #[arg(long, value_delimiter = ';')]
    pub strategies: Vec<String>,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Run the benchmark and print its tables.
pub fn main(args: &BenchArgs) -> Result<(), CliError> {
    if args.workers == 0 || args.reps == 0 {
        return Err(CliError::input("--workers/--reps", "must be at least 1"));
    }
    let specs: Vec<String> = if args.strategies.is_empty() {
        let mut v: Vec<String> = strategies::registry()
            .iter()
            .map(|e| e.default_spec())
            .collect();
        v.push("work-stealing(victim=random,steal=one)".into());
        v
    } else {
        args.strategies.clone()
    };
    let parsed = specs
        .iter()
        .map(|s| strategies::parse(s).map_err(|e| CliError::input("--strategies", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let spin_dist = Distribution::parse(&args.spin_workload)
        .map_err(|e| CliError::input("--spin-workload", e))?;
    let p = args.workers;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(p)
        .build()
        .map_err(anyhow::Error::from)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "schedlab bench: P = {p} workers on {cpus} cpus, median of {} repetitions",
        args.reps
    );

    // 1. Overhead.
    let n = args.tasks;
    println!("\n[overhead] {n} empty tasks: wall time per task (ours: thread start and submission included)");
    let time = |f: &dyn Fn()| {
        median(
            (0..args.reps)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_nanos() as f64 / n.max(1) as f64
                })
                .collect(),
        )
    };
    let rayon_one = time(&|| {
        pool.install(|| {
            (0..n).into_par_iter().with_max_len(1).for_each(|i| {
                black_box(i);
            })
        })
    });
    let rayon_adaptive = time(&|| {
        pool.install(|| {
            (0..n).into_par_iter().for_each(|i| {
                black_box(i);
            })
        })
    });
    println!(
        "  {:<44} {:>9} {:>12} {:>12}",
        "contender", "ns/task", "/rayon(1)", "/rayon(adapt)"
    );
    println!(
        "  {:<44} {:>9.2} {:>12.2} {:>12.2}",
        "rayon par_iter().with_max_len(1)",
        rayon_one,
        1.0,
        rayon_one / rayon_adaptive
    );
    println!(
        "  {:<44} {:>9.2} {:>12.2} {:>12.2}",
        "rayon par_iter() (adaptive)",
        rayon_adaptive,
        rayon_adaptive / rayon_one,
        1.0
    );
    let run = RunSpec::new(p).with_timing(Timing::Off);
    for (spec, strategy) in specs.iter().zip(&parsed) {
        let ns = time(&|| {
            let r = run_threads(&run, strategy.as_ref(), &Tasks::closed(n), |i, _| {
                black_box(i);
            })
            .expect("valid run");
            assert_eq!(r.executed, n as u64);
        });
        println!(
            "  {:<44} {:>9.2} {:>12.2} {:>12.2}",
            spec,
            ns,
            ns / rayon_one,
            ns / rayon_adaptive
        );
    }

    // 2. Balance.
    if args.spin_tasks == 0 {
        return Ok(());
    }
    let set = Workload::new(spin_dist.clone())
        .generate(args.spin_tasks, 1)
        .map_err(|e| CliError::input("--spin-workload", e))?;
    let lb = (set.total_work_ns() as f64 / p as f64).max(set.max_cost_ns() as f64);
    let exec = Executor::new(Kind::Spin);
    println!(
        "\n[balance] {} spin tasks of {}: efficiency = lower bound ({:.1} ms) / makespan",
        set.len(),
        spin_dist,
        lb / 1e6
    );
    let eff = |f: &dyn Fn() -> f64| median((0..args.reps.min(3)).map(|_| lb / f()).collect());
    let rayon_eff = |max_len: usize| {
        eff(&|| {
            let t = Instant::now();
            pool.install(|| {
                set.cost_ns
                    .par_iter()
                    .with_max_len(max_len)
                    .for_each(|&c| exec.run(c))
            });
            t.elapsed().as_nanos() as f64
        })
    };
    let r1 = rayon_eff(1);
    let ra = rayon_eff(usize::MAX);
    println!(
        "  {:<44} {:>10} {:>12}",
        "contender", "efficiency", "/rayon(1)"
    );
    println!(
        "  {:<44} {:>10.3} {:>12.3}",
        "rayon par_iter().with_max_len(1)", r1, 1.0
    );
    println!(
        "  {:<44} {:>10.3} {:>12.3}",
        "rayon par_iter() (adaptive)",
        ra,
        ra / r1
    );
    let tasks = Tasks::with_costs(&set.cost_ns);
    let timed = RunSpec::new(p);
    for (spec, strategy) in specs.iter().zip(&parsed) {
        let e = eff(&|| {
            let r = run_threads(&timed, strategy.as_ref(), &tasks, |i, _| {
                exec.run(set.cost_ns[i])
            })
            .expect("valid run");
            r.makespan_ns as f64
        });
        println!("  {:<44} {:>10.3} {:>12.3}", spec, e, e / r1);
    }
    Ok(())
}
