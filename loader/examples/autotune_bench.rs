//! The autotune benchmark of issue 16: an autotuned pipeline against the best static
//! configuration a sweep finds, on three workloads, alternated in one process.
//!
//! Each workload is a blocking `read` (sleep) and a cpu `decode` (spin on the thread's CPU
//! clock) on P = 2 CPU workers, in order:
//!
//! * `blocking`: read log-normal mean 4 ms σ 0.5 → decode 100 µs: the read wants ~80 threads.
//! * `cpu`: read 200 µs → decode log-normal mean 500 µs σ 1: the decode is the bottleneck and
//!   one or two read threads suffice.
//! * `moving`: read 1 ms → decode 200 µs, and from the middle of the epoch on the reads take
//!   3× as long: the read wants ~13 threads, then ~38.
//!
//! The static sweep runs each read-thread count with the default queues and window; autotune
//! starts from 4 read threads. Steady-state throughput is measured over the items after the
//! first 10% of the epoch; `fraction_of_best_static` is autotune's median over the best static
//! configuration's median, `reached_at` the first 5% stretch of the epoch (in items) whose
//! throughput is ≥ 0.95 of the best static's.
//!
//! With `--loader`, the one-stage [`Loader`] instead (batch 32, sample granularity, in
//! order), whose knob is its prefetch; autotune starts from a prefetch of 1 batch:
//!
//! * `loader-tail`: 8 workers, each sample sleeps log-normal mean 1 ms σ 1.5 (Python
//!   benchmark (a)'s workload): in order, the slow samples at the head need a deep window.
//! * `loader-cpu`: 2 workers, each sample spins log-normal mean 500 µs σ 1.
//! * `loader-moving`: 8 workers, sleeps log-normal mean 1 ms, σ 0.25 for the first half of the
//!   epoch and σ 1.5 from the middle on: the window the tail needs grows mid-epoch.
//!
//! ```text
//! cargo run --release -p loader --example autotune_bench [-- --items 40000 --reps 3 --only blocking|cpu|moving --json --out DIR --verbose --static-window N --auto-only]
//! cargo run --release -p loader --example autotune_bench -- --loader [--items 20000 --reps 3 --only loader-tail|loader-cpu|loader-moving --json --out DIR]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use loader::{from_fn, Autotune, Loader, Pipeline, Sampler, Stage, Tuning};

#[path = "common/args.rs"]
mod args;
use args::{arg, draw, num, spin_cpu as spin, usage};

struct Workload {
    name: &'static str,
    read: Arc<Vec<u64>>,
    decode: Arc<Vec<u64>>,
    /// Reads from the middle of the epoch on take this many times as long.
    slow_down: u64,
    sweep: Vec<usize>,
    body: Body,
}

/// What runs the workload.
#[derive(Clone, Copy)]
enum Body {
    /// `read` (sleep) → `decode` (spin) on [`P`] CPU workers; the sweep is over read threads.
    Pipeline,
    /// The one-stage loader: sample `i` sleeps (or spins) `read[i]` before the middle of the
    /// epoch and `decode[i]` from it on; the sweep is over the prefetch.
    Loader { workers: usize, spin: bool },
}

impl Body {
    /// The knob the sweep and autotune set.
    fn knob(self) -> &'static str {
        match self {
            Body::Pipeline => "read_threads",
            Body::Loader { .. } => "prefetch",
        }
    }

    fn cpu_workers(self) -> usize {
        match self {
            Body::Pipeline => P,
            Body::Loader { workers, .. } => workers,
        }
    }
}

/// One run: its steady throughput and when it got there.
struct Sample {
    steady: f64,
    /// Item times (s from the start), one per item.
    times: Vec<f64>,
    tuning: Option<Tuning>,
    /// Where the knob ended: read threads, or the prefetch.
    setting: usize,
}

const P: usize = 2;
const GUESS: usize = 4;

/// The loader's batch size.
const BATCH: usize = 32;

fn run(w: &Workload, setting: Option<usize>) -> Sample {
    match w.body {
        Body::Pipeline => run_pipeline(w, setting),
        Body::Loader { workers, spin: cpu } => run_loader(w, workers, cpu, setting),
    }
}

fn run_loader(w: &Workload, workers: usize, cpu: bool, prefetch: Option<usize>) -> Sample {
    let n = w.read.len();
    let (first, second) = (Arc::clone(&w.read), Arc::clone(&w.decode));
    let ds = from_fn(n, move |i| {
        let ns = if i >= n / 2 { second[i] } else { first[i] };
        if cpu {
            spin(ns);
        } else {
            std::thread::sleep(Duration::from_nanos(ns));
        }
        Ok::<_, String>(i)
    });
    let b = Loader::builder(ds)
        .batch_size(BATCH)
        .workers(workers)
        .prefetch(prefetch.unwrap_or(1))
        .prefetch_next_epoch(false);
    let b = match prefetch {
        None => b.autotune(Autotune::new()),
        Some(_) => b,
    };
    let mut l = b.build().unwrap_or_else(|e| usage(&format!("loader: {e}")));
    let t0 = Instant::now();
    let mut times = Vec::with_capacity(n);
    for r in l.epoch(0) {
        let b = r.unwrap_or_else(|e| usage(&format!("batch: {e}")));
        let at = t0.elapsed().as_secs_f64();
        times.extend(std::iter::repeat_n(at, b.indices.len()));
    }
    let report = l.report().expect("a report");
    finished(times, report, report.tuning.clone(), l.prefetch())
}

/// A run's sample, its report printed with `--verbose`.
fn finished(
    times: Vec<f64>,
    report: &dyn std::fmt::Display,
    tuning: Option<Tuning>,
    setting: usize,
) -> Sample {
    if std::env::args().any(|a| a == "--verbose") {
        eprintln!("{report}");
    }
    Sample {
        steady: steady(&times),
        times,
        tuning,
        setting,
    }
}

/// Items per second after the first 10% of the epoch.
fn steady(times: &[f64]) -> f64 {
    let n = times.len();
    let from = n / 10;
    (n - 1 - from) as f64 / (times[n - 1] - times[from]).max(1e-9)
}

fn run_pipeline(w: &Workload, threads: Option<usize>) -> Sample {
    let n = w.read.len();
    let (read, decode, slow) = (Arc::clone(&w.read), Arc::clone(&w.decode), w.slow_down);
    let b = Pipeline::from_sampler(n, Sampler::sequential())
        .map(
            Stage::blocking("read", threads.unwrap_or(GUESS)),
            move |i: usize| {
                let k = if i >= n / 2 { slow } else { 1 };
                std::thread::sleep(Duration::from_nanos(read[i] * k));
                i
            },
        )
        .map(Stage::cpu("decode"), move |i: usize| {
            spin(decode[i]);
            i
        })
        .workers(P);
    let b = match (threads, arg("--static-window")) {
        (None, _) => b.autotune(Autotune::new()),
        (Some(_), Some(_)) => b.window(num("--static-window", 1)),
        (Some(_), None) => b,
    };
    let mut p = b
        .build()
        .unwrap_or_else(|e| usage(&format!("pipeline: {e}")));
    let t0 = Instant::now();
    let mut times = Vec::with_capacity(n);
    for r in p.epoch(0) {
        r.unwrap_or_else(|e| usage(&format!("item: {e}")));
        times.push(t0.elapsed().as_secs_f64());
    }
    let report = p.report().expect("a report");
    finished(
        times,
        report,
        report.tuning.clone(),
        report.stages[0].concurrency,
    )
}

/// The first 5% stretch (as a fraction of the epoch, in steps of 2.5%) whose throughput is at
/// least `goal`.
fn reached_at(times: &[f64], goal: f64) -> Option<f64> {
    let n = times.len();
    let span = (n / 20).max(1);
    let step = (n / 40).max(1);
    let mut a = 0;
    while a + span < n {
        let rate = span as f64 / (times[a + span] - times[a]).max(1e-9);
        if rate >= goal {
            return Some(a as f64 / n as f64);
        }
        a += step;
    }
    None
}

/// The trajectory figure's data from a run's tuning record: below the items/s, each tuned
/// stage's concurrency (a pipeline) or the prefetch window in samples (the loader).
fn figure(
    t: &Tuning,
    body: Body,
    title: &str,
    best: f64,
    label: &str,
) -> reports::tuning::Trajectory {
    let series = |f: &dyn Fn(&loader::TunePoint) -> usize| -> Vec<(f64, f64)> {
        t.trajectory.iter().map(|p| (p.at_s, f(p) as f64)).collect()
    };
    let (concurrency, setting) = match body {
        Body::Pipeline => (
            t.stages
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    (
                        name.clone(),
                        series(&|p| p.concurrency.get(i).copied().unwrap_or(0)),
                    )
                })
                .collect(),
            "concurrency",
        ),
        Body::Loader { .. } => (
            vec![("prefetch".to_string(), series(&|p| p.window))],
            "samples in flight (prefetch)",
        ),
    };
    reports::tuning::Trajectory {
        title: title.to_string(),
        items_per_s: t
            .trajectory
            .iter()
            .map(|p| (p.at_s, p.items_per_s))
            .collect(),
        reference: Some((best, label.to_string())),
        concurrency,
        setting: setting.to_string(),
        changes: t.changes.iter().map(|c| c.at_s).collect(),
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn workloads(n: usize) -> Vec<Workload> {
    vec![
        Workload {
            name: "blocking",
            read: draw("lognormal(mean=4ms,sigma=0.5)", n, 1),
            decode: draw("constant(100us)", n, 2),
            slow_down: 1,
            sweep: vec![16, 32, 64, 128, 256],
            body: Body::Pipeline,
        },
        Workload {
            name: "cpu",
            read: draw("constant(200us)", n, 3),
            decode: draw("lognormal(mean=500us,sigma=1)", n, 4),
            slow_down: 1,
            sweep: vec![1, 2, 4, 8, 16],
            body: Body::Pipeline,
        },
        Workload {
            name: "moving",
            read: draw("constant(1ms)", n, 5),
            decode: draw("constant(200us)", n, 6),
            slow_down: 3,
            sweep: vec![8, 16, 32, 64, 128],
            body: Body::Pipeline,
        },
    ]
}

fn loader_workloads(n: usize) -> Vec<Workload> {
    let tail = draw("lognormal(mean=1ms,sigma=1.5)", n, 7);
    let cpu = draw("lognormal(mean=500us,sigma=1)", n, 8);
    vec![
        Workload {
            name: "loader-tail",
            read: Arc::clone(&tail),
            decode: tail,
            slow_down: 1,
            sweep: vec![1, 2, 4, 8, 16, 32],
            body: Body::Loader {
                workers: 8,
                spin: false,
            },
        },
        Workload {
            name: "loader-cpu",
            read: Arc::clone(&cpu),
            decode: cpu,
            slow_down: 1,
            sweep: vec![1, 2, 4, 8, 16],
            body: Body::Loader {
                workers: 2,
                spin: true,
            },
        },
        Workload {
            name: "loader-moving",
            read: draw("lognormal(mean=1ms,sigma=0.25)", n, 9),
            decode: draw("lognormal(mean=1ms,sigma=1.5)", n, 10),
            slow_down: 1,
            sweep: vec![1, 2, 4, 8, 16, 32],
            body: Body::Loader {
                workers: 8,
                spin: false,
            },
        },
    ]
}

fn main() {
    let for_loader = std::env::args().any(|a| a == "--loader");
    let n = num("--items", if for_loader { 20_000 } else { 40_000 });
    let reps = num("--reps", 3);
    let json = std::env::args().any(|a| a == "--json");
    let only = arg("--only");
    let out = arg("--out").map(std::path::PathBuf::from);
    let all = if for_loader {
        loader_workloads(n)
    } else {
        workloads(n)
    };
    if let Some(o) = &only {
        if !all.iter().any(|w| w.name == o) {
            let names: Vec<&str> = all.iter().map(|w| w.name).collect();
            usage(&format!(
                "--only: '{o}' is not allowed; allowed: {}",
                names.join(", ")
            ));
        }
    }
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| usage(&format!("--out: {}: {e}", dir.display())));
    }
    for w in all {
        let knob = w.body.knob();
        if only.as_deref().is_some_and(|o| o != w.name) {
            continue;
        }
        // Alternate: every rep runs each static configuration and autotune once.
        let mut statics: Vec<Vec<f64>> = vec![Vec::new(); w.sweep.len()];
        let mut auto: Vec<Sample> = Vec::new();
        if std::env::args().any(|a| a == "--auto-only") {
            for _ in 0..reps {
                let a = run(&w, None);
                let t = a.tuning.as_ref().map_or(0, |t| t.changes.len());
                println!(
                    "{}: autotune {:.0} items/s, {t} changes, {knob} {}",
                    w.name, a.steady, a.setting
                );
            }
            continue;
        }
        for _ in 0..reps {
            for (i, &t) in w.sweep.iter().enumerate() {
                statics[i].push(run(&w, Some(t)).steady);
            }
            auto.push(run(&w, None));
        }
        let med: Vec<f64> = statics.iter().map(|v| median(v)).collect();
        let best = (0..med.len())
            .max_by(|&a, &b| med[a].total_cmp(&med[b]))
            .expect("a sweep");
        let best_rate = med[best];
        let auto_rates: Vec<f64> = auto.iter().map(|s| s.steady).collect();
        let fractions: Vec<f64> = auto_rates.iter().map(|r| r / best_rate).collect();
        let reached: Vec<Option<f64>> = auto
            .iter()
            .map(|s| reached_at(&s.times, 0.95 * best_rate))
            .collect();
        let changes: Vec<usize> = auto
            .iter()
            .map(|s| s.tuning.as_ref().map_or(0, |t| t.changes.len()))
            .collect();
        let finals: Vec<usize> = auto.iter().map(|s| s.setting).collect();
        let frac = median(&auto_rates) / best_rate;
        if let Some(dir) = &out {
            for (r, s) in auto.iter().enumerate() {
                let path = dir.join(format!("autotune-{}-{r}.json", w.name));
                let body = serde_json::to_string_pretty(&s.tuning).expect("serializable");
                std::fs::write(&path, body)
                    .unwrap_or_else(|e| usage(&format!("--out: {}: {e}", path.display())));
                if let Some(t) = &s.tuning {
                    let fig = figure(
                        t,
                        w.body,
                        &format!("{}: autotune, run {} of {reps}", w.name, r + 1),
                        best_rate,
                        &format!("best static ({knob}={})", w.sweep[best]),
                    );
                    reports::tuning::trajectory_figure(
                        dir,
                        &format!("autotune-{}-{r}", w.name),
                        &fig,
                    )
                    .unwrap_or_else(|e| usage(&format!("--out: {e}")));
                }
            }
        }
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "workload": w.name,
                    "items": n,
                    "reps": reps,
                    "cpu_workers": w.body.cpu_workers(),
                    "sweep": w.sweep.iter().zip(&statics).map(|(t, v)| serde_json::json!({
                        knob: t, "items_per_s": v })).collect::<Vec<_>>(),
                    "best_static": { knob: w.sweep[best], "items_per_s": best_rate },
                    "autotune_items_per_s": auto_rates,
                    "fraction_of_best_static": frac,
                    "fraction_of_best_static_runs": fractions,
                    "reached_at": reached,
                    "changes": changes,
                    format!("final_{knob}"): finals,
                })
            );
        } else {
            println!(
                "{}: {n} items, P = {}, in order, {reps} reps",
                w.name,
                w.body.cpu_workers()
            );
            for (t, v) in w.sweep.iter().zip(&statics) {
                let vs: Vec<String> = v.iter().map(|x| format!("{x:.0}")).collect();
                println!(
                    "  static {knob}={t:<4} median {:>8.0} items/s  ({})",
                    median(v),
                    vs.join(", ")
                );
            }
            let fs: Vec<String> = fractions.iter().map(|x| format!("{x:.3}")).collect();
            let rs: Vec<String> = reached
                .iter()
                .map(|x| x.map_or("never".into(), |f| format!("{:.1}%", 100.0 * f)))
                .collect();
            println!(
                "  best static: {knob}={} at {best_rate:.0} items/s\n  autotune: median {:.0} items/s = {frac:.3} of best static (runs {}); reached 0.95 at {}; {} changes; final {knob} {:?}",
                w.sweep[best],
                median(&auto_rates),
                fs.join(", "),
                rs.join(", "),
                changes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("/"),
                finals
            );
        }
    }
}
