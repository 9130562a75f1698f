//! The loader benchmark of issue 10: how close each loader configuration comes to the limit
//! `workers / mean sample time`, and how soon the first batch arrives.
//!
//! Workload: 32,768 samples whose `get` sleeps a log-normal time (mean 1 ms, σ 1.5), 8 workers,
//! batch 32, the consumer does nothing but drop the batch; and a CPU-bound variant whose samples
//! spin for a log-normal time of mean 200 µs on 2 workers. The limit uses the measured time
//! inside `get` (the requested time plus the OS's sleep overshoot, both printed).
//!
//! ```text
//! cargo run --release -p loader --example loader_bench [-- --samples 32768 --reps 3 --prefetch P --only sleep|cpu]
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loader::{Builder, Dataset, Granularity, Loader};
use rand::SeedableRng;
use workloads::Distribution;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => match args.get(i + 1).and_then(|v| v.parse().ok()) {
            Some(v) => v,
            None => {
                eprintln!("loader_bench: {name} needs a whole number");
                std::process::exit(2);
            }
        },
        None => default,
    }
}

fn draw(spec: &str, n: usize, seed: u64) -> Arc<Vec<u64>> {
    let d = Distribution::parse(spec).expect("a valid distribution");
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    Arc::new((0..n).map(|_| d.sample(&mut rng)).collect())
}

/// The per-run counters the dataset fills: requested and actual ns in `get`.
#[derive(Default)]
struct Clock {
    requested: AtomicU64,
    actual: AtomicU64,
}

type Sample = u32;

fn dataset(costs: Arc<Vec<u64>>, spin: bool, clock: Arc<Clock>) -> impl Dataset<Sample = Sample> {
    loader::from_fn(costs.len(), move |i| {
        let want = Duration::from_nanos(costs[i]);
        let t = Instant::now();
        if spin {
            while t.elapsed() < want {
                std::hint::spin_loop();
            }
        } else {
            std::thread::sleep(want);
        }
        clock.requested.fetch_add(costs[i], Ordering::Relaxed);
        clock
            .actual
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok::<_, String>(i as Sample)
    })
}

type Configure<D> = fn(Builder<D>) -> Builder<D>;

fn run<D: Dataset<Sample = Sample>>(
    label: &str,
    reps: usize,
    workers: usize,
    prefetch: Option<usize>,
    make: &dyn Fn(Arc<Clock>) -> D,
    configure: Configure<D>,
) {
    let mut fractions = Vec::new();
    let mut formula = Vec::new();
    let mut nominal = Vec::new();
    let mut firsts = Vec::new();
    let mut last = None;
    for _ in 0..reps {
        let clock = Arc::new(Clock::default());
        let n = make(clock.clone()).len() as f64;
        let mut b = Loader::builder(make(clock.clone()))
            .batch_size(32)
            .workers(workers);
        if let Some(p) = prefetch {
            b = b.prefetch(p);
        }
        let mut l = configure(b)
            .prefetch_next_epoch(false)
            .build()
            .expect("a valid loader");
        let t = Instant::now();
        let mut samples = 0;
        for batch in l.epoch(0) {
            samples += batch.expect("no failing sample").data.len();
        }
        let elapsed = t.elapsed().as_secs_f64();
        assert_eq!(samples as f64, n);
        let r = l.report().expect("a finished epoch").clone();
        let requested = clock.requested.load(Ordering::Relaxed) as f64 / n / 1e9;
        let actual = clock.actual.load(Ordering::Relaxed) as f64 / n / 1e9;
        // limit = workers / (mean requested time + measured overshoot)
        formula.push(n / elapsed / (workers as f64 / actual));
        // against the requested times alone (for spinning samples: what idle cores could do)
        nominal.push(n / elapsed / (workers as f64 / requested));
        fractions.push(r.fraction_of_limit);
        firsts.push(r.first_batch_s.unwrap_or(0.0) * 1e3);
        last = Some((r, requested, actual));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let range = |v: &[f64]| {
        format!(
            "{:.3}–{:.3}",
            v.iter().cloned().fold(f64::INFINITY, f64::min),
            v.iter().cloned().fold(0.0, f64::max)
        )
    };
    let (r, requested, actual) = last.expect("reps >= 1");
    println!(
        "{label:<44} {:.3} of the limit ({} over {reps}), first batch {:.1} ms (mean), \
         mean sample {:.1} µs requested + {:.1} µs overshoot",
        mean(&formula),
        range(&formula),
        mean(&firsts),
        requested * 1e6,
        (actual - requested) * 1e6
    );
    println!(
        "{:<44} {:.3} of the nominal limit (requested times only); report: {:.3} of {:.0}/s, \
         LIF {:.3}, steals {}, consumer waited {:.2} s, recommended prefetch {}",
        "",
        mean(&nominal),
        mean(&fractions),
        r.limit_per_s,
        r.lif,
        r.steals,
        r.stall_s,
        r.recommended_prefetch
    );
}

fn main() {
    let n = arg("--samples", 32_768);
    let reps = arg("--reps", 3).max(1);
    let workers = arg("--workers", 8);
    let cpu_workers = arg("--cpu-workers", 2);
    // batches in flight for every configuration but PyTorch-style (default: 2 per worker)
    let prefetch = Some(arg("--prefetch", 0)).filter(|&p| p > 0);
    for (name, v) in [
        ("--samples", n),
        ("--workers", workers),
        ("--cpu-workers", cpu_workers),
    ] {
        if v == 0 {
            eprintln!("loader_bench: {name}: must be >= 1, got 0");
            std::process::exit(2);
        }
    }
    let only = std::env::args()
        .skip_while(|a| a != "--only")
        .nth(1)
        .unwrap_or_default();
    if !["", "sleep", "cpu"].contains(&only.as_str()) {
        eprintln!("loader_bench: --only: '{only}' is not allowed; allowed: sleep, cpu");
        std::process::exit(2);
    }
    println!(
        "loader_bench: {n} samples, batch 32, {reps} repetitions; host {} cpus",
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );

    if only != "cpu" {
        sleeping(n, reps, workers, prefetch);
    }
    if only != "sleep" {
        spinning(n, reps, cpu_workers, prefetch);
    }
}

fn sleeping(n: usize, reps: usize, workers: usize, prefetch: Option<usize>) {
    let io = draw("lognormal(mean=1ms,sigma=1.5)", n, 1);
    println!("\nsleeping samples, log-normal mean 1 ms σ 1.5, {workers} workers:");
    let sleep = |c: Arc<Clock>| dataset(io.clone(), false, c);
    run(
        "(a) PyTorch-style (batch, round-robin)",
        reps,
        workers,
        prefetch,
        &sleep,
        |b| b.pytorch_style(),
    );
    run(
        "(b) work-stealing, sample, ordered",
        reps,
        workers,
        prefetch,
        &sleep,
        |b| b.strategy("work-stealing"),
    );
    run(
        "(b) central, sample, ordered",
        reps,
        workers,
        prefetch,
        &sleep,
        |b| b.strategy("central"),
    );
    run(
        "(c) work-stealing, sample, as ready",
        reps,
        workers,
        prefetch,
        &sleep,
        |b| b.strategy("work-stealing").ordered(false),
    );
    run(
        "    work-stealing, batch, ordered",
        reps,
        workers,
        prefetch,
        &sleep,
        |b| b.strategy("work-stealing").granularity(Granularity::Batch),
    );
}

fn spinning(n: usize, reps: usize, cpu_workers: usize, prefetch: Option<usize>) {
    let cpu = draw("lognormal(mean=200us,sigma=1.5)", n, 2);
    println!("\nCPU-bound samples, log-normal mean 200 µs σ 1.5, {cpu_workers} workers:");
    let spin = |c: Arc<Clock>| dataset(cpu.clone(), true, c);
    run(
        "(d) PyTorch-style (batch, round-robin)",
        reps,
        cpu_workers,
        prefetch,
        &spin,
        |b| b.pytorch_style(),
    );
    run(
        "(d) work-stealing, sample, ordered",
        reps,
        cpu_workers,
        prefetch,
        &spin,
        |b| b.strategy("work-stealing"),
    );
    run(
        "(d) central, sample, ordered",
        reps,
        cpu_workers,
        prefetch,
        &spin,
        |b| b.strategy("central"),
    );
}
