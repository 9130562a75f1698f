//! `schedlab bench`: scheduling overhead and balance against rayon, in one process, and the
//! simulator's speed under every strategy.
//!
//! Every measurement is repeated; the contenders take turns within each repetition (rayon,
//! then each strategy, then the next repetition), so that a noisy neighbour slows them all
//! alike, and each is reported as min / median / max over the repetitions:
//! 1. *Overhead*: n empty tasks through every strategy (timing off: no clock read per task) and
//!    through rayon on a pool of the same size, `par_iter().with_max_len(1)` (one job per task)
//!    and plain `par_iter()` (adaptive range splitting); ns per task and the ratio of medians
//!    to rayon's. Beside them the *fetch_add floor*: P threads taking ids from one shared
//!    counter with a bare `fetch_add` loop and nothing else (threads started inside the
//!    timing, as ours are), the least any shared cursor (`central`, `spt`, `lpt`) can cost
//!    per task; every row also gets its ratio of medians to the floor.
//! 2. *Balance*: spin tasks with log-normal costs; efficiency = lower bound / makespan for every
//!    strategy and for rayon on the same cost table.
//! 3. *Simulator*: every strategy on the sim engine, `--sim-workers` workers and `--sim-tasks`
//!    closed log-normal tasks (mean 100 µs, σ 1.5, default cost model): events per second of
//!    `run_sim` alone (the task table is made once, outside the timing).
//! 4. *Simulator, open arrivals*: `work-stealing` on the same workers with `--open-tasks`
//!    Poisson arrivals at utilisation `--open-load`: seconds per run (idle workers park and are
//!    woken one per arrival; see the sim engine's README).
//!
//! Under each table, a `modes:` line names every contender whose repetitions split into two
//! clusters ([`modes`]: the largest relative gap between consecutive sorted samples is above
//! 25%, with at least two samples on each side), with each cluster's size and median, so that
//! a bimodal contender is not hidden behind its median.
//!
//! `--json` prints one JSON object with every sample instead of the tables. Tables are printed
//! as they are measured; when standard output closes (`schedlab bench | head -3`) the bench
//! stops quietly at its next line.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use clap::Args;
use rayon::prelude::*;
use scheduler::{run_sim, run_threads, CostModel, RunSpec, Strategy, Tasks, Timing};
use serde_json::{json, Value};
use workloads::{Arrivals, Distribution, Executor, Kind, Workload};

use crate::{output, CliError};

/// Why the bench stopped early: its output was closed (not an error), or an error.
enum Stop {
    Closed,
    Failed(CliError),
}

impl From<CliError> for Stop {
    fn from(e: CliError) -> Self {
        Stop::Failed(e)
    }
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Self {
        Stop::Failed(e.into())
    }
}

/// Print `text` and a newline; [`Stop::Closed`] once the reader has gone.
fn line(text: &str) -> Result<(), Stop> {
    if output::print(&format!("{text}\n"))? {
        Ok(())
    } else {
        Err(Stop::Closed)
    }
}

/// Most threads workers (`--workers`): the threads engine's limit.
pub const MAX_WORKERS: usize = crate::limits::MAX_THREADS;

/// Most empty tasks per overhead run (`--tasks`): 10^8 (about 0.1 s per contender at the
/// fastest; with `--estimates`, 800 MB of them).
pub const MAX_TASKS: usize = 100_000_000;

/// Most repetitions (`--reps`).
pub const MAX_REPS: usize = 1000;

/// Most tasks of the balance and simulator parts (`--spin-tasks`, `--sim-tasks`,
/// `--open-tasks`): 10^7.
pub const MAX_PART_TASKS: usize = 10_000_000;

/// The flags of `schedlab bench`.
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// Worker count for every contender on threads (1 to 4096).
    #[arg(long, short = 'p', default_value_t = 2)]
    pub workers: usize,
    /// Empty tasks per overhead run (1 to 10^8).
    #[arg(long, short = 'n', default_value_t = 1_000_000)]
    pub tasks: usize,
    /// Repetitions of each measurement (min / median / max are reported), 1 to 1000.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Spin tasks per balance run (0 skips the balance part), at most 10^7.
    #[arg(long, default_value_t = 20_000)]
    pub spin_tasks: usize,
    /// Cost distribution of the balance part.
    #[arg(long, default_value = "lognormal(mean=50us,sigma=1.5)")]
    pub spin_workload: String,
    /// Strategies to measure (default: every registered one at its defaults, plus
    /// work-stealing(steal=one)).
    #[arg(long, value_delimiter = ';')]
    pub strategies: Vec<String>,
    /// Workers of the simulator parts (1 to 2^21 − 1).
    #[arg(long, default_value_t = 1024)]
    pub sim_workers: usize,
    /// Closed tasks per simulator run (0 skips the simulator part), at most 10^7.
    #[arg(long, default_value_t = 0)]
    pub sim_tasks: usize,
    /// Open-arrival tasks of the work-stealing simulator run (0 skips it), at most 10^7.
    #[arg(long, default_value_t = 0)]
    pub open_tasks: usize,
    /// Utilisation of the open-arrival run (arrival rate × mean cost / workers), in (0, 1].
    #[arg(long, default_value_t = 0.5)]
    pub open_load: f64,
    /// Give the overhead runs random cost estimates (what `spt`/`lpt` sort at submission);
    /// without it they have none and keep id order.
    #[arg(long)]
    pub estimates: bool,
    /// Print one JSON object with every sample instead of the tables.
    #[arg(long)]
    pub json: bool,
}

/// CPU time of the calling thread in ns, from Linux's `/proc/thread-self/schedstat` (its first
/// field); `None` elsewhere. The simulator is single-threaded, so on a shared machine its CPU
/// time measures it without the time other processes took the cpu away.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Samples of one contender: min, median, max.
fn spread(xs: &[f64]) -> (f64, f64, f64) {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// Two clusters in a contender's samples: the samples split where the sorted values jump.
#[derive(Clone, Debug, PartialEq)]
pub struct Modes {
    /// The samples below the jump, sorted.
    pub low: Vec<f64>,
    /// The samples above it, sorted.
    pub high: Vec<f64>,
    /// The jump relative to the last low sample: `high[0] / low[last] − 1`.
    pub gap: f64,
}

impl Modes {
    /// The median of a sorted cluster.
    fn median(xs: &[f64]) -> f64 {
        xs[xs.len() / 2]
    }

    /// `"3 runs near 5.20, 4 runs near 14.10 (gap 95%)"`, with `digits` decimals.
    pub fn describe(&self, digits: usize) -> String {
        format!(
            "{} runs near {:.digits$}, {} runs near {:.digits$} (gap {:.0}%)",
            self.low.len(),
            Self::median(&self.low),
            self.high.len(),
            Self::median(&self.high),
            self.gap * 100.0
        )
    }
}

/// The relative gap above which [`modes`] splits the samples.
pub const MODES_GAP: f64 = 0.25;

/// Whether `samples` fall into two clusters, and which. The rule: sort the samples, find the
/// largest relative gap `x[i+1] / x[i] − 1` between consecutive values that leaves at least
/// two samples on each side; if it is above [`MODES_GAP`] (25%), the samples below it and
/// those above it are the two modes. Fewer than four samples, or samples that are not all
/// positive, never split.
///
/// ```
/// use experiments::bench::modes;
/// let m = modes(&[5.1, 14.0, 5.3, 13.2, 5.0, 14.5]).unwrap();
/// assert_eq!((m.low.len(), m.high.len()), (3, 3));
/// assert!(modes(&[5.0, 5.5, 6.0, 6.2, 6.9]).is_none());
/// ```
pub fn modes(samples: &[f64]) -> Option<Modes> {
    if samples.len() < 4 || !samples.iter().all(|&x| x > 0.0 && x.is_finite()) {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let (at, gap) = (2..=v.len() - 2)
        .map(|i| (i, v[i] / v[i - 1] - 1.0))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    (gap > MODES_GAP).then(|| Modes {
        high: v.split_off(at),
        low: v,
        gap,
    })
}

/// One table: contenders and their samples, in order.
#[derive(Default)]
struct Table {
    rows: Vec<(String, Vec<f64>)>,
}

impl Table {
    fn add(&mut self, i: usize, name: &str, x: f64) {
        if self.rows.len() <= i {
            self.rows.push((name.to_string(), Vec::new()));
        }
        self.rows[i].1.push(x);
    }

    fn median(&self, i: usize) -> f64 {
        spread(&self.rows[i].1).1
    }

    fn json(&self, unit: &str) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|(name, xs)| {
                    let (min, median, max) = spread(xs);
                    let split = modes(xs)
                        .map(|m| json!({"low": m.low, "high": m.high, "gap": m.gap}));
                    json!({"contender": name, "unit": unit, "min": min, "median": median, "max": max, "samples": xs, "modes": split})
                })
                .collect(),
        )
    }

    /// Rows as `name min median max` plus ratios of medians to the reference rows, one line
    /// each (no final newline).
    fn render(&self, unit: &str, refs: &[(usize, &str)], digits: usize) -> String {
        let mut s = format!(
            "  {:<50} {:>9} {:>9} {:>9}",
            "contender",
            format!("min {unit}"),
            "median",
            "max"
        );
        for (_, label) in refs {
            s += &format!(" {label:>13}");
        }
        for (name, xs) in &self.rows {
            let (min, median, max) = spread(xs);
            s += &format!("\n  {name:<50} {min:>9.digits$} {median:>9.digits$} {max:>9.digits$}");
            for &(r, _) in refs {
                s += &format!(" {:>13.2}", median / self.median(r));
            }
        }
        for (name, xs) in &self.rows {
            if let Some(m) = modes(xs) {
                s += &format!("\n  modes: {name}: {}", m.describe(digits));
            }
        }
        s
    }
}

/// The fetch_add floor: `p` threads (started inside the timing) take ids `0..n` from one
/// shared counter, one `fetch_add` per id, and do nothing else. Wall ns per id.
fn fetch_add_floor(p: usize, n: usize) -> f64 {
    fetch_add_ids(p, n, |i| {
        black_box(i);
    })
}

/// [`fetch_add_floor`], handing each id taken to `take` (the floor passes `black_box`; a test
/// counts them).
fn fetch_add_ids(p: usize, n: usize, take: impl Fn(usize) + Sync) -> f64 {
    /// The counter on a line of its own.
    #[repr(align(128))]
    struct Counter(AtomicUsize);
    let next = Counter(AtomicUsize::new(0));
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..p {
            s.spawn(|| loop {
                let i = next.0.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                take(i);
            });
        }
    });
    t.elapsed().as_nanos() as f64 / n.max(1) as f64
}

/// Run the benchmark and print its tables (or its JSON).
pub fn main(args: &BenchArgs) -> Result<(), CliError> {
    match bench(args) {
        Ok(()) | Err(Stop::Closed) => Ok(()),
        Err(Stop::Failed(e)) => Err(e),
    }
}

/// Every numeric flag within its range, before anything is allocated or started.
fn check(args: &BenchArgs) -> Result<(), CliError> {
    let range = |flag: &str, v: usize, lo: usize, hi: usize| {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else if lo == 0 {
            Err(CliError::input(
                flag,
                format!("must be at most {hi} (0 skips the part), got {v}"),
            ))
        } else {
            Err(CliError::input(
                flag,
                format!("must be from {lo} to {hi}, got {v}"),
            ))
        }
    };
    range("--workers", args.workers, 1, MAX_WORKERS)?;
    range("--tasks", args.tasks, 1, MAX_TASKS)?;
    range("--reps", args.reps, 1, MAX_REPS)?;
    range("--spin-tasks", args.spin_tasks, 0, MAX_PART_TASKS)?;
    range("--sim-tasks", args.sim_tasks, 0, MAX_PART_TASKS)?;
    range("--open-tasks", args.open_tasks, 0, MAX_PART_TASKS)?;
    if args.sim_tasks > 0 || args.open_tasks > 0 {
        range("--sim-workers", args.sim_workers, 1, RunSpec::MAX_WORKERS)?;
    }
    if !(args.open_load > 0.0 && args.open_load <= 1.0) {
        return Err(CliError::input(
            "--open-load",
            format!("must be in (0, 1], got {}", args.open_load),
        ));
    }
    Ok(())
}

fn bench(args: &BenchArgs) -> Result<(), Stop> {
    check(args)?;
    let specs: Vec<String> = if args.strategies.is_empty() {
        let mut v: Vec<String> = strategies::registry()
            .iter()
            .map(|e| e.default_spec())
            .collect();
        v.push("work-stealing(victim=random,steal=one,order=fifo)".into());
        v
    } else {
        args.strategies.clone()
    };
    let parsed = specs
        .iter()
        .map(|s| {
            let st = strategies::parse(s).map_err(|e| CliError::input("--strategies", e))?;
            // Checked up front, so that a bad pairing fails before any table is printed.
            st.validate(args.workers)
                .map_err(|e| CliError::input("--strategies", e))?;
            if args.sim_tasks > 0 {
                st.validate(args.sim_workers)
                    .map_err(|e| CliError::input("--strategies", e))?;
            }
            Ok(st)
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    let spin_dist = Distribution::parse(&args.spin_workload)
        .map_err(|e| CliError::input("--spin-workload", e))?;
    let p = args.workers;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(p)
        .build()
        .map_err(anyhow::Error::from)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = json!({
        "workers": p,
        "cpus": cpus,
        "reps": args.reps,
        "tasks": args.tasks,
    });
    // The tables' lines; nothing but the final JSON object with `--json`.
    let say = |s: &str| if args.json { Ok(()) } else { line(s) };
    say(&format!(
        "schedlab bench: P = {p} workers on {cpus} cpus, {} repetitions (min / median / max; contenders alternate within each)",
        args.reps
    ))?;

    // 1. Overhead.
    let n = args.tasks;
    say(&format!(
        "\n[overhead] {n} empty tasks{}: wall time per task (ours: thread start and submission included)",
        if args.estimates { " with random estimates" } else { "" }
    ))?;
    let per_task = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        t.elapsed().as_nanos() as f64 / n.max(1) as f64
    };
    let run = RunSpec::new(p).with_timing(Timing::Off);
    let estimates: Vec<u64> = if args.estimates {
        let mut rng = scheduler::SmallRng::new(7);
        (0..n).map(|_| rng.below(1_000_000) as u64).collect()
    } else {
        Vec::new()
    };
    let overhead_tasks = Tasks {
        n,
        estimate_ns: args.estimates.then_some(&estimates[..]),
        ..Tasks::default()
    };
    out["estimates"] = json!(args.estimates);
    let mut overhead = Table::default();
    for _ in 0..args.reps {
        overhead.add(
            0,
            "rayon par_iter().with_max_len(1)",
            per_task(&|| {
                pool.install(|| {
                    (0..n).into_par_iter().with_max_len(1).for_each(|i| {
                        black_box(i);
                    })
                })
            }),
        );
        overhead.add(
            1,
            "rayon par_iter() (adaptive)",
            per_task(&|| {
                pool.install(|| {
                    (0..n).into_par_iter().for_each(|i| {
                        black_box(i);
                    })
                })
            }),
        );
        overhead.add(
            2,
            &format!("fetch_add floor ({p} threads, one counter)"),
            fetch_add_floor(p, n),
        );
        for (i, (spec, strategy)) in specs.iter().zip(&parsed).enumerate() {
            let t = Instant::now();
            let r = run_threads(&run, strategy.as_ref(), &overhead_tasks, |i, _| {
                black_box(i);
            });
            let ns = t.elapsed().as_nanos() as f64 / n.max(1) as f64;
            let r = r.map_err(|e| CliError::Run(anyhow::anyhow!("bench: {spec}: {e}")))?;
            if r.executed != n as u64 {
                return Err(CliError::Run(anyhow::anyhow!(
                    "bench: {spec} ran {} of {n} tasks",
                    r.executed
                ))
                .into());
            }
            overhead.add(3 + i, spec, ns);
        }
    }
    say(&overhead.render(
        "ns",
        &[(0, "/rayon(1)"), (1, "/rayon(adapt)"), (2, "/floor")],
        2,
    ))?;
    out["overhead"] = overhead.json("ns/task");

    // 2. Balance.
    if args.spin_tasks > 0 {
        let set = Workload::new(spin_dist.clone())
            .generate(args.spin_tasks, 1)
            .map_err(|e| CliError::input("--spin-workload", e))?;
        let lb = (set.total_work_ns() as f64 / p as f64).max(set.max_cost_ns() as f64);
        let exec = Executor::new(Kind::Spin);
        say(&format!(
            "\n[balance] {} spin tasks of {}: efficiency = lower bound ({:.1} ms) / makespan",
            set.len(),
            spin_dist,
            lb / 1e6
        ))?;
        let rayon_eff = |max_len: usize| {
            let t = Instant::now();
            pool.install(|| {
                set.cost_ns
                    .par_iter()
                    .with_max_len(max_len)
                    .for_each(|&c| exec.run(c))
            });
            lb / t.elapsed().as_nanos() as f64
        };
        let tasks = Tasks::with_costs(&set.cost_ns);
        let timed = RunSpec::new(p);
        let mut balance = Table::default();
        for _ in 0..args.reps.min(3) {
            balance.add(0, "rayon par_iter().with_max_len(1)", rayon_eff(1));
            balance.add(1, "rayon par_iter() (adaptive)", rayon_eff(usize::MAX));
            for (i, (spec, strategy)) in specs.iter().zip(&parsed).enumerate() {
                let r = run_threads(&timed, strategy.as_ref(), &tasks, |i, _| {
                    exec.run(set.cost_ns[i])
                })
                .map_err(|e| CliError::Run(anyhow::anyhow!("bench: {spec}: {e}")))?;
                balance.add(2 + i, spec, lb / r.makespan_ns as f64);
            }
        }
        say(&balance.render("eff", &[(0, "/rayon(1)")], 3))?;
        out["balance"] = balance.json("efficiency");
    }

    // 3. Simulator, closed.
    let sim_p = args.sim_workers;
    let lognormal = Distribution::parse("lognormal(mean=100us,sigma=1.5)")
        .map_err(|e| CliError::input("lognormal", e))?;
    if args.sim_tasks > 0 {
        let set = Workload::new(lognormal.clone())
            .generate(args.sim_tasks, 1)
            .map_err(|e| CliError::input("--sim-tasks", e))?;
        let tasks = Tasks::with_costs(&set.cost_ns);
        say(&format!(
            "\n[sim] {} closed tasks of {lognormal} on {sim_p} simulated workers, default cost model: events simulated per second (M/s)",
            set.len()
        ))?;
        let spec = RunSpec::new(sim_p);
        let cost = CostModel::default();
        let (mut sim, mut sim_cpu) = (Table::default(), Table::default());
        for _ in 0..args.reps.min(3) {
            for (i, (name, strategy)) in specs.iter().zip(&parsed).enumerate() {
                let (t, cpu) = (Instant::now(), thread_cpu_ns());
                let r = run_sim(&spec, strategy.as_ref(), &tasks, &cost)
                    .map_err(|e| CliError::Run(anyhow::anyhow!("bench: sim {name}: {e}")))?;
                let s = t.elapsed().as_secs_f64();
                let events = r.events.unwrap_or(0) as f64;
                sim.add(i, name, events / s / 1e6);
                if let (Some(a), Some(b)) = (cpu, thread_cpu_ns()) {
                    sim_cpu.add(i, name, events / ((b - a).max(1) as f64 / 1e9) / 1e6);
                }
            }
        }
        say("  by wall time:")?;
        say(&sim.render("M/s", &[], 2))?;
        if !sim_cpu.rows.is_empty() {
            say("  by the thread's cpu time (what other processes took excluded):")?;
            say(&sim_cpu.render("M/s", &[], 2))?;
        }
        out["sim"] = sim.json("M events/s (wall)");
        if !sim_cpu.rows.is_empty() {
            out["sim_cpu"] = sim_cpu.json("M events/s (thread cpu time)");
        }
        out["sim_workers"] = json!(sim_p);
        out["sim_tasks"] = json!(args.sim_tasks);
    }

    // 4. Simulator, open arrivals, work stealing.
    if args.open_tasks > 0 {
        let rate = args.open_load * sim_p as f64 / 100e-6;
        let mut w = Workload::new(lognormal.clone());
        w.arrivals = Arrivals::Poisson { rate_per_s: rate };
        let set = w
            .generate(args.open_tasks, 1)
            .map_err(|e| CliError::input("--open-tasks", e))?;
        let tasks = Tasks {
            release_ns: Some(&set.arrival_ns),
            ..Tasks::with_costs(&set.cost_ns)
        };
        let name = "work-stealing(victim=random,steal=half,order=fifo)";
        let strategy: Box<dyn Strategy> =
            strategies::parse(name).map_err(|e| CliError::input("work-stealing", e))?;
        say(&format!(
            "\n[sim, open] {} Poisson arrivals ({:.3e}/s, utilisation {}) of {lognormal} on {sim_p} simulated workers: wall seconds per run",
            set.len(),
            rate,
            args.open_load
        ))?;
        let spec = RunSpec::new(sim_p);
        let cost = CostModel::default();
        let mut open = Table::default();
        let mut events = 0;
        for _ in 0..args.reps.min(3) {
            let (t, cpu) = (Instant::now(), thread_cpu_ns());
            let r = run_sim(&spec, strategy.as_ref(), &tasks, &cost)
                .map_err(|e| CliError::Run(anyhow::anyhow!("bench: sim {name}: {e}")))?;
            open.add(0, &format!("{name}, wall"), t.elapsed().as_secs_f64());
            if let (Some(a), Some(b)) = (cpu, thread_cpu_ns()) {
                open.add(1, &format!("{name}, thread cpu"), (b - a) as f64 / 1e9);
            }
            events = r.events.unwrap_or(0);
        }
        say(&open.render("s", &[], 3))?;
        say(&format!("  ({events} events per run)"))?;
        out["sim_open"] = open.json("s");
        out["sim_open_tasks"] = json!(args.open_tasks);
        out["sim_open_load"] = json!(args.open_load);
    }

    if args.json {
        output::emit(&format!("{out}\n"), None)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_split_two_clusters_and_nothing_else() {
        // Two clear clusters, given in any order: split at the jump, sorted.
        let m = modes(&[14.0, 5.5, 22.0, 5.0, 6.0, 15.0, 16.0]).unwrap();
        assert_eq!(m.low, vec![5.0, 5.5, 6.0]);
        assert_eq!(m.high, vec![14.0, 15.0, 16.0, 22.0]);
        assert!((m.gap - (14.0 / 6.0 - 1.0)).abs() < 1e-12);
        assert_eq!(
            m.describe(1),
            "3 runs near 5.5, 4 runs near 16.0 (gap 133%)"
        );
        // One spread-out cluster: every step is below 25%.
        assert!(modes(&[10.0, 11.0, 12.5, 14.0, 16.0, 19.0]).is_none());
        // A single outlier is not a mode: each side needs two samples.
        assert!(modes(&[5.0, 5.1, 5.2, 5.3, 50.0]).is_none());
        assert!(modes(&[1.0, 10.0, 10.1, 10.2]).is_none());
        // The largest gap wins, and it must exceed 25% (not equal it).
        let m = modes(&[1.0, 1.0, 1.3, 1.3, 3.0, 3.0]).unwrap();
        assert_eq!((m.low.len(), m.high.len()), (4, 2));
        assert!(modes(&[4.0, 4.0, 5.0, 5.0]).is_none());
        assert!(modes(&[4.0, 4.0, 5.01, 5.01]).is_some());
        // Too few samples, or samples a ratio means nothing for.
        assert!(modes(&[1.0, 1.0, 9.0]).is_none());
        assert!(modes(&[0.0, 0.0, 9.0, 9.0]).is_none());
        assert!(modes(&[1.0, 1.0, f64::NAN, 9.0, 9.0]).is_none());
    }

    #[test]
    fn the_floor_takes_every_id() {
        // Every id of 0..n is taken exactly once, by several threads; none beyond n. No timing
        // asserted.
        use std::sync::atomic::AtomicU32;
        for (p, n) in [(3, 10_000), (1, 1), (4, 3), (2, 0)] {
            let taken: Vec<AtomicU32> = (0..n + 8).map(|_| AtomicU32::new(0)).collect();
            let ns = fetch_add_ids(p, n, |i| {
                taken[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(ns.is_finite() && ns >= 0.0);
            let counts: Vec<u32> = taken.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            assert!(
                counts[..n].iter().all(|&c| c == 1),
                "p={p} n={n}: {counts:?}"
            );
            assert!(
                counts[n..].iter().all(|&c| c == 0),
                "p={p} n={n}: {counts:?}"
            );
        }
        assert!(fetch_add_floor(2, 100).is_finite());
    }

    #[test]
    fn tables_print_a_modes_line_for_split_contenders() {
        let mut t = Table::default();
        for x in [5.0, 5.2, 14.0, 15.0, 5.1] {
            t.add(0, "split", x);
            t.add(1, "steady", 10.0);
        }
        let text = t.render("ns", &[(1, "/steady")], 1);
        assert!(
            text.contains("modes: split: 3 runs near 5.1, 2 runs near 15.0"),
            "{text}"
        );
        assert!(!text.contains("modes: steady"), "{text}");
        let json = t.json("ns");
        assert!(json[0]["modes"]["low"].is_array(), "{json}");
        assert!(json[1]["modes"].is_null(), "{json}");
    }
}
