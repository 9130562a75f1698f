//! The persistent pool's benchmark (issue 7), alternating contenders in one process:
//!
//! - (a) 1,000,000 empty tasks through `run_threads` (timing off) under work-stealing, against
//!   rayon's one-job-per-task `par_iter().with_max_len(1)` on a pool of the same size;
//! - (b) 1,000 jobs of 64 empty tasks on one `Pool`, against a fresh `run_threads` per job;
//! - (c) 1,000,000 tiny tasks through one job with `max_in_flight` 1,024: ordered delivery
//!   against as-ready delivery (both take every outcome back), ns per task.
//!
//! Each is repeated (`--reps`, default 7) and reported as median (min–max).
//!
//! ```sh
//! cargo run --release -p strategies --example pool_bench -- --workers 2 --reps 7
//! ```

use std::hint::black_box;
use std::time::Instant;

use rayon::prelude::*;
use scheduler::{run_threads, Delivery, JobOptions, Pool, RunSpec, Tasks, Timing};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a whole number"))
        .unwrap_or(default)
}

fn stats(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}

fn show(what: &str, unit: &str, xs: Vec<f64>) -> f64 {
    let (med, min, max) = stats(xs);
    println!("{what:<58} {med:>10.2} {unit} ({min:.2}–{max:.2})");
    med
}

fn main() {
    let p = arg("--workers", 2);
    let reps = arg("--reps", 7);
    let ws = strategies::parse("work-stealing").unwrap();
    let spec = RunSpec::new(p).with_timing(Timing::Off);
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(p)
        .build()
        .unwrap();
    println!(
        "P = {p}, {reps} repetitions, contenders alternating; median (min–max); load: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    // (a) run_threads, timing off, against rayon.
    let n = 1_000_000;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        rayon_pool.install(|| {
            (0..n).into_par_iter().with_max_len(1).for_each(|i| {
                black_box(i);
            })
        });
        theirs.push(t.elapsed().as_nanos() as f64 / n as f64);
        let t = Instant::now();
        let r = run_threads(&spec, ws.as_ref(), &Tasks::closed(n), |i, _| {
            black_box(i);
        })
        .unwrap();
        ours.push(t.elapsed().as_nanos() as f64 / n as f64);
        assert_eq!(r.executed, n as u64);
    }
    println!("(a) {n} empty tasks");
    let r = show("    rayon par_iter().with_max_len(1)", "ns/task", theirs);
    let o = show(
        "    run_threads(work-stealing), timing off",
        "ns/task",
        ours,
    );
    println!("    ratio of medians: {:.2}x rayon", o / r);

    // (b) many small jobs on one pool against a fresh run_threads per job.
    let jobs = 1_000;
    let pool = Pool::new(p).unwrap();
    let (mut on_pool, mut fresh) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..jobs {
            let mut job = pool
                .job(
                    ws.as_ref(),
                    JobOptions::default()
                        .delivery(Delivery::Discard)
                        .timing(Timing::Off),
                    |i, _, _| {
                        black_box(i);
                    },
                )
                .unwrap();
            job.try_submit(64).unwrap();
            assert_eq!(job.finish().unwrap().executed, 64);
        }
        on_pool.push(t.elapsed().as_nanos() as f64 / jobs as f64 / 1e3);
        let t = Instant::now();
        for _ in 0..jobs / 10 {
            run_threads(&spec, ws.as_ref(), &Tasks::closed(64), |i, _| {
                black_box(i);
            })
            .unwrap();
        }
        fresh.push(t.elapsed().as_nanos() as f64 / (jobs / 10) as f64 / 1e3);
    }
    println!("(b) jobs of 64 empty tasks");
    let f = show("    fresh run_threads per job", "us/job", fresh);
    let j = show("    one job on a persistent Pool", "us/job", on_pool);
    println!("    the pool is {:.1}x cheaper per job", f / j);

    // (c) ordered against as-ready delivery, 1,024 in flight.
    let n = 1_000_000;
    let (mut ordered, mut ready) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        for (delivery, out) in [
            (Delivery::AsReady, &mut ready),
            (Delivery::Ordered, &mut ordered),
        ] {
            let t = Instant::now();
            let mut job = pool
                .job(
                    ws.as_ref(),
                    JobOptions::default()
                        .max_in_flight(1024)
                        .delivery(delivery)
                        .timing(Timing::Off),
                    |i, _, _| i,
                )
                .unwrap();
            let (mut next, mut got, mut sum) = (0, 0, 0usize);
            while got < n {
                let k = job.room().min(n - next);
                if k > 0 {
                    next = job.try_submit(k).unwrap().end;
                }
                sum = sum.wrapping_add(job.next().unwrap().result.unwrap());
                got += 1;
            }
            black_box(sum);
            out.push(t.elapsed().as_nanos() as f64 / n as f64);
        }
    }
    println!("(c) {n} tiny tasks, max_in_flight 1,024, every outcome taken back");
    let a = show("    as ready", "ns/task", ready);
    let o = show("    ordered (reorder window)", "ns/task", ordered);
    println!("    ordered costs {:.2}x as-ready", o / a);
}
