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
//! ```text
//! cargo run --release -p loader --example autotune_bench [-- --items 40000 --reps 3 --only blocking|cpu|moving --json --out DIR --verbose --static-window N --auto-only]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use loader::{Autotune, Pipeline, Sampler, Stage, Tuning};

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
}

/// One run: its steady throughput and when it got there.
struct Sample {
    steady: f64,
    /// Item times (s from the start), one per item.
    times: Vec<f64>,
    tuning: Option<Tuning>,
    threads: usize,
}

const P: usize = 2;
const GUESS: usize = 4;

fn run(w: &Workload, threads: Option<usize>) -> Sample {
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
    let from = n / 10;
    let steady = (n - 1 - from) as f64 / (times[n - 1] - times[from]).max(1e-9);
    let report = p.report().expect("a report");
    if std::env::args().any(|a| a == "--verbose") {
        eprintln!("{report}");
    }
    Sample {
        steady,
        times,
        tuning: report.tuning.clone(),
        threads: report.stages[0].concurrency,
    }
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

/// The trajectory figure's data from a run's tuning record.
fn figure(t: &Tuning, title: &str, best: f64, label: &str) -> reports::tuning::Trajectory {
    reports::tuning::Trajectory {
        title: title.to_string(),
        items_per_s: t
            .trajectory
            .iter()
            .map(|p| (p.at_s, p.items_per_s))
            .collect(),
        reference: Some((best, label.to_string())),
        concurrency: t
            .stages
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let pts = t
                    .trajectory
                    .iter()
                    .map(|p| (p.at_s, p.concurrency.get(i).copied().unwrap_or(0) as f64))
                    .collect();
                (name.clone(), pts)
            })
            .collect(),
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
        },
        Workload {
            name: "cpu",
            read: draw("constant(200us)", n, 3),
            decode: draw("lognormal(mean=500us,sigma=1)", n, 4),
            slow_down: 1,
            sweep: vec![1, 2, 4, 8, 16],
        },
        Workload {
            name: "moving",
            read: draw("constant(1ms)", n, 5),
            decode: draw("constant(200us)", n, 6),
            slow_down: 3,
            sweep: vec![8, 16, 32, 64, 128],
        },
    ]
}

fn main() {
    let n = num("--items", 40_000);
    let reps = num("--reps", 3);
    let json = std::env::args().any(|a| a == "--json");
    let only = arg("--only");
    let out = arg("--out").map(std::path::PathBuf::from);
    if let Some(o) = &only {
        if !["blocking", "cpu", "moving"].contains(&o.as_str()) {
            usage(&format!(
                "--only: '{o}' is not allowed; allowed: blocking, cpu, moving"
            ));
        }
    }
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| usage(&format!("--out: {}: {e}", dir.display())));
    }
    for w in workloads(n) {
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
                    "{}: autotune {:.0} items/s, {t} changes, read threads {}",
                    w.name, a.steady, a.threads
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
        let finals: Vec<usize> = auto.iter().map(|s| s.threads).collect();
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
                        &format!("{}: autotune, run {} of {reps}", w.name, r + 1),
                        best_rate,
                        &format!("best static (read={})", w.sweep[best]),
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
                    "cpu_workers": P,
                    "sweep": w.sweep.iter().zip(&statics).map(|(t, v)| serde_json::json!({
                        "read_threads": t, "items_per_s": v })).collect::<Vec<_>>(),
                    "best_static": { "read_threads": w.sweep[best], "items_per_s": best_rate },
                    "autotune_items_per_s": auto_rates,
                    "fraction_of_best_static": frac,
                    "fraction_of_best_static_runs": fractions,
                    "reached_at": reached,
                    "changes": changes,
                    "final_read_threads": finals,
                })
            );
        } else {
            println!("{}: {n} items, P = {P}, in order, {reps} reps", w.name);
            for (t, v) in w.sweep.iter().zip(&statics) {
                let vs: Vec<String> = v.iter().map(|x| format!("{x:.0}")).collect();
                println!(
                    "  static read={t:<4} median {:>8.0} items/s  ({})",
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
                "  best static: read={} at {best_rate:.0} items/s\n  autotune: median {:.0} items/s = {frac:.3} of best static (runs {}); reached 0.95 at {}; {} changes; final read threads {:?}",
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
