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
//!
//! **Comparing strategies**: `--strategy SPEC` (repeatable) or `--strategies A,B,…` (split at
//! top-level commas, so `central(chunk=4)` stays whole) measures those strategies instead of the
//! fixed configurations above, one sample per task, in order. The runs are alternated: each
//! repetition runs every strategy once, starting one further along the list each time, so slow
//! phases of a shared machine spread over all of them. Each run prints a line; the end prints the
//! median and the spread (min–max, and the interquartile range) of the loader report's
//! `fraction_of_limit` per strategy, with the load average (`/proc/loadavg`) before and after.
//! An entry may end in `@ready` (as-ready delivery) and/or `@batch` (one task per batch), and
//! `pytorch` stands for the PyTorch-style configuration.
//!
//! ```text
//! cargo run --release -p loader --example loader_bench -- --only sleep --reps 5 \
//!     --strategies 'work-stealing,central,central(chunk=4),round-robin,guided'
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loader::{Dataset, Granularity, Loader, LoaderBuilder};
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

/// The values of every `--strategy SPEC` and `--strategies A,B,…`, in order.
fn strategy_args() -> Vec<String> {
    let args: Vec<String> = std::env::args().collect();
    let mut out = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let flag = args[i].as_str();
        if flag == "--strategy" || flag == "--strategies" {
            let Some(value) = args.get(i + 1) else {
                eprintln!("loader_bench: {flag} needs a value");
                std::process::exit(2);
            };
            if flag == "--strategy" {
                out.push(value.trim().to_string());
            } else {
                out.extend(split_top_level(value));
            }
            i += 1;
        }
        i += 1;
    }
    out
}

/// Split at commas outside parentheses: `a,b(x=1,y=2)` is `a` and `b(x=1,y=2)`.
fn split_top_level(list: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in list.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(list[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(list[start..].trim().to_string());
    parts
}

/// One configuration of the strategy comparison.
#[derive(Clone, Debug)]
struct Config {
    /// As given on the command line.
    label: String,
    /// The strategy spec, or `None` for PyTorch-style.
    spec: Option<String>,
    ordered: bool,
    batch: bool,
}

impl Config {
    /// `SPEC[@ready][@batch]` or `pytorch`; a spec that does not parse is an error.
    fn parse(entry: &str) -> Result<Config, String> {
        let mut parts = entry.split('@');
        let spec = parts.next().unwrap_or_default().trim();
        let mut config = Config {
            label: entry.to_string(),
            spec: None,
            ordered: true,
            batch: false,
        };
        for m in parts {
            match m.trim() {
                "ready" => config.ordered = false,
                "batch" => config.batch = true,
                other => {
                    return Err(format!(
                        "{entry:?}: unknown modifier @{other} (allowed: @ready, @batch)"
                    ))
                }
            }
        }
        if spec != "pytorch" {
            strategies::parse(spec).map_err(|e| format!("{entry:?}: {e}"))?;
            config.spec = Some(spec.to_string());
        }
        Ok(config)
    }

    fn apply<D: Dataset>(&self, b: LoaderBuilder<D>) -> LoaderBuilder<D> {
        let Some(spec) = &self.spec else {
            return b.pytorch_style();
        };
        let b = b.strategy(spec).ordered(self.ordered);
        if self.batch {
            b.granularity(Granularity::Batch)
        } else {
            b
        }
    }
}

/// The load average as `/proc/loadavg` gives it (first three fields), or `unknown`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
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

type Configure<D> = fn(LoaderBuilder<D>) -> LoaderBuilder<D>;

/// What one epoch measured.
struct Measured {
    report: loader::LoaderReport,
    /// Against `workers / (mean requested time + measured overshoot)`.
    formula: f64,
    /// Against the requested times alone.
    nominal: f64,
    /// Mean requested and actual seconds in `get`.
    requested: f64,
    actual: f64,
}

/// Run one epoch of a fresh loader.
fn run_once<D: Dataset<Sample = Sample>>(
    workers: usize,
    prefetch: Option<usize>,
    make: &dyn Fn(Arc<Clock>) -> D,
    configure: &dyn Fn(LoaderBuilder<D>) -> LoaderBuilder<D>,
) -> Measured {
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
    let report = l.report().expect("a finished epoch").clone();
    let requested = clock.requested.load(Ordering::Relaxed) as f64 / n / 1e9;
    let actual = clock.actual.load(Ordering::Relaxed) as f64 / n / 1e9;
    Measured {
        report,
        formula: n / elapsed / (workers as f64 / actual),
        nominal: n / elapsed / (workers as f64 / requested),
        requested,
        actual,
    }
}

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
        let m = run_once(workers, prefetch, make, &configure);
        // limit = workers / (mean requested time + measured overshoot)
        formula.push(m.formula);
        // against the requested times alone (for spinning samples: what idle cores could do)
        nominal.push(m.nominal);
        fractions.push(m.report.fraction_of_limit);
        firsts.push(m.report.first_batch_s.unwrap_or(0.0) * 1e3);
        last = Some((m.report, m.requested, m.actual));
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
    let configs: Vec<Config> = strategy_args()
        .iter()
        .map(|e| Config::parse(e))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| {
            eprintln!("loader_bench: --strategy {e}");
            std::process::exit(2);
        });
    println!(
        "loader_bench: {n} samples, batch 32, {reps} repetitions; host {} cpus",
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );

    if !configs.is_empty() {
        if only != "cpu" {
            let io = draw("lognormal(mean=1ms,sigma=1.5)", n, 1);
            println!("\nsleeping samples, log-normal mean 1 ms σ 1.5, {workers} workers:");
            compare(&configs, reps, workers, prefetch, &|c| {
                dataset(io.clone(), false, c)
            });
        }
        if only != "sleep" {
            let cpu = draw("lognormal(mean=200us,sigma=1.5)", n, 2);
            println!("\nCPU-bound samples, log-normal mean 200 µs σ 1.5, {cpu_workers} workers:");
            compare(&configs, reps, cpu_workers, prefetch, &|c| {
                dataset(cpu.clone(), true, c)
            });
        }
        return;
    }

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

/// The median of `v` (sorted).
fn median(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `q` quantile of `v` (sorted), interpolated.
fn quantile(v: &[f64], q: f64) -> f64 {
    let x = q * (v.len() - 1) as f64;
    let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (x - lo as f64)
}

/// Measure every configuration `reps` times, alternated, and print each run and a summary.
fn compare<D: Dataset<Sample = Sample>>(
    configs: &[Config],
    reps: usize,
    workers: usize,
    prefetch: Option<usize>,
    make: &dyn Fn(Arc<Clock>) -> D,
) {
    let before = load_average();
    println!("load average before: {before}");
    let mut fractions: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    let mut formulas: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    let mut stalls: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for rep in 0..reps {
        for k in 0..configs.len() {
            let i = (rep + k) % configs.len();
            let config = &configs[i];
            let m = run_once(workers, prefetch, make, &|b| config.apply(b));
            let r = &m.report;
            println!(
                "  rep {rep} {:<40} fraction_of_limit {:.4} (formula {:.4}), {:.0} samples/s, \
                 consumer waited {:.2} s, LIF {:.3}, steals {}, load {}",
                config.label,
                r.fraction_of_limit,
                m.formula,
                r.samples_per_s,
                r.stall_s,
                r.lif,
                r.steals,
                load_average()
            );
            fractions[i].push(r.fraction_of_limit);
            formulas[i].push(m.formula);
            stalls[i].push(r.stall_s);
        }
    }
    let after = load_average();
    println!("load average after: {after}");
    println!(
        "\n{:<40} {:>7} {:>15} {:>15} {:>8} {:>8}  (fraction_of_limit over {reps} runs; \
         formula: against get's measured time; stall: consumer waiting, s)",
        "strategy", "median", "min–max", "IQR", "formula", "stall"
    );
    for (i, config) in configs.iter().enumerate() {
        let sorted = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v
        };
        let f = sorted(&fractions[i]);
        println!(
            "{:<40} {:>7.4} {:>15} {:>15} {:>8.4} {:>8.2}",
            config.label,
            median(&f),
            format!("{:.4}–{:.4}", f[0], f[f.len() - 1]),
            format!("{:.4}–{:.4}", quantile(&f, 0.25), quantile(&f, 0.75)),
            median(&sorted(&formulas[i])),
            median(&sorted(&stalls[i])),
        );
    }
}
