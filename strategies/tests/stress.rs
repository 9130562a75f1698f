//! Randomised stress on both engines, through public APIs only: seeded configurations of
//! strategy (every registry entry, random parameters), P from 1 to 64, n from 0 to 10^5, cost
//! distributions, speeds, topologies, closed or streaming arrivals, panicking tasks. Each
//! configuration checks exactly-once execution and the report's invariants; the sim ones are
//! rerun and must be byte-identical. A watchdog turns a hang into a failure naming the seed.
//!
//! - default (CI): `cargo test -p strategies --test stress` runs 500 configurations;
//! - big run: `SCHEDLAB_STRESS=10000 cargo test --release -p strategies --test stress -- --nocapture`
//!   (`just stress`);
//! - replay one: `SCHEDLAB_STRESS_SEED=<seed> cargo test -p strategies --test stress`.
//!
//! Also here: the fault cases (a task 1000x the mean, a worker 100x slower than the rest) on
//! both engines.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use scheduler::{
    run_sim_with, run_threads, CostModel, RunReport, RunSpec, SmallRng, Tasks, Topology,
};

/// One configuration, all drawn from its seed.
#[derive(Debug, Clone)]
struct Config {
    seed: u64,
    sim: bool,
    strategy: String,
    workers: usize,
    topology: (usize, usize),
    speeds: Vec<f64>,
    costs: Vec<u64>,
    releases: Option<Vec<u64>>,
    /// Tasks whose id is `≡ 0 (mod panic_every)` panic (threads only; 0: none).
    panic_every: usize,
    /// Threads: no clock read per task.
    timing_off: bool,
    /// Keep at most this many timeline spans (0: none).
    timeline: usize,
}

fn param_value(rng: &mut SmallRng, name: &str, p: usize, default: &str) -> String {
    match name {
        "chunk" | "min" => (1 + rng.below(64)).to_string(),
        "victim" => ["random", "numa", "NUMA"][rng.below(3)].to_string(),
        "steal" => ["half", "one"][rng.below(2)].to_string(),
        "weights" => {
            if rng.below(2) == 0 {
                "auto".into()
            } else {
                let mut w: Vec<String> = (0..p).map(|_| rng.below(5).to_string()).collect();
                w[rng.below(p)] = (1 + rng.below(4)).to_string();
                w.join(",")
            }
        }
        // A parameter this test does not know (a strategy added later): its default.
        _ => default.to_string(),
    }
}

fn draw(seed: u64, threads_n_cap: usize) -> Config {
    let mut rng = SmallRng::new(seed);
    let sim = rng.below(2) == 0;
    let workers = 1 + rng.below(64);
    let registry = strategies::registry();
    let entry = &registry[rng.below(registry.len())];
    let strategy = if entry.params.is_empty() || rng.below(4) == 0 {
        entry.name.to_string()
    } else {
        let mut args: Vec<String> = Vec::new();
        for p in entry.params {
            if rng.below(3) > 0 {
                let v = param_value(&mut rng, p.name, workers, p.default);
                args.push(format!("{}={v}", p.name));
            }
        }
        if args.is_empty() {
            entry.name.to_string()
        } else {
            format!("{}({})", entry.name, args.join(","))
        }
    };
    // n: 0 sometimes, else log-uniform up to 10^5 (smaller on threads in the CI-sized run).
    let cap = if sim { 100_000 } else { threads_n_cap };
    let n = match rng.below(10) {
        0 => 0,
        1 => 1 + rng.below(3),
        _ => {
            let e = rng.unit_f64() * (cap as f64).log10();
            (10f64.powf(e) as usize).min(cap)
        }
    };
    let topology = (1 + rng.below(4), 1 + rng.below(16));
    let speeds = match rng.below(3) {
        0 => Vec::new(),
        1 => (0..workers).map(|_| 0.25 + rng.unit_f64() * 3.75).collect(),
        _ => (0..workers)
            .map(|w| if w < workers.div_ceil(2) { 1.0 } else { 0.5 })
            .collect(),
    };
    let costs: Vec<u64> = match rng.below(4) {
        0 => vec![1 + rng.below(10_000) as u64; n],
        1 => (0..n).map(|_| rng.below(20_000) as u64).collect(),
        // Heavy tail: Pareto-like, alpha ~1.2.
        2 => (0..n)
            .map(|_| (1_000.0 / (1.0 - rng.unit_f64()).powf(1.0 / 1.2)).min(1e9) as u64)
            .collect(),
        _ => (0..n)
            .map(|j| if j % 97 == 0 { 1_000_000 } else { 1_000 })
            .collect(),
    };
    // Streaming: bursts spread over at most ~2 ms, so threads runs stay short.
    let releases = (rng.below(3) == 0 && n > 0).then(|| {
        let burst = 1 + rng.below(200);
        let gap = rng.below(20_000) as u64;
        (0..n as u64)
            .map(|j| (j / burst as u64) * gap)
            .map(|t| t.min(2_000_000))
            .collect()
    });
    let panic_every = if !sim && rng.below(4) == 0 {
        1 + rng.below(50)
    } else {
        0
    };
    let timing_off = !sim && rng.below(4) == 0;
    let timeline = [0, 0, 1, 100, 1 << 20][rng.below(5)];
    Config {
        timing_off,
        timeline,
        seed,
        sim,
        strategy,
        workers,
        topology,
        speeds,
        costs,
        releases,
        panic_every,
    }
}

fn check_report(c: &Config, r: &RunReport, failed: u64) -> Result<(), String> {
    let n = c.costs.len() as u64;
    if r.executed + r.failed != n {
        return Err(format!(
            "executed {} + failed {} != n {n}",
            r.executed, r.failed
        ));
    }
    if r.failed != failed {
        return Err(format!("failed {} but {failed} tasks panicked", r.failed));
    }
    let per_worker: u64 = r.per_worker.iter().map(|w| w.tasks).sum();
    if per_worker != r.executed + r.failed {
        return Err(format!(
            "per-worker tasks sum to {per_worker}, executed {}",
            r.executed
        ));
    }
    if r.per_worker.len() != c.workers || r.workers != c.workers || r.tasks != n as usize {
        return Err("worker or task count in the report differs from the run".into());
    }
    let spans = r.timeline.as_ref().map_or(0, Vec::len);
    if spans > c.timeline {
        return Err(format!("{spans} timeline spans kept, cap {}", c.timeline));
    }
    if c.sim && c.timeline >= n as usize && spans as u64 != n {
        return Err(format!("sim timeline holds {spans} spans of {n} tasks"));
    }
    if n > 0 && r.executed > 0 && !(r.lif >= 1.0 - 1e-9 || r.lif.is_nan()) {
        return Err(format!("lif {} < 1", r.lif));
    }
    if c.sim {
        // The makespan is at least the lower bound the report states, and the longest task
        // at the fastest speed. Slack: the sim rounds each task's run time c/speed to the
        // nanosecond while the bound divides the unrounded total, so with speeds other than 1
        // the makespan may sit up to half a nanosecond per task below it.
        if r.makespan_ns.saturating_add(n) < r.lower_bound_ns {
            return Err(format!(
                "sim makespan {} below the lower bound {}",
                r.makespan_ns, r.lower_bound_ns
            ));
        }
        let max_speed = c.speeds.iter().copied().fold(1.0f64, f64::max);
        let longest = c.costs.iter().max().copied().unwrap_or(0) as f64 / max_speed;
        if (r.makespan_ns as f64) < longest.floor() {
            return Err(format!(
                "sim makespan {} below the longest task {longest}",
                r.makespan_ns
            ));
        }
        if let Some(rel) = &c.releases {
            if n > 0 && r.makespan_ns < *rel.last().unwrap() {
                return Err("sim run ended before its last release".into());
            }
        }
    }
    Ok(())
}

fn run(c: &Config) -> Result<(), String> {
    let strategy = strategies::parse(&c.strategy).map_err(|e| format!("parse: {e}"))?;
    let spec = RunSpec::new(c.workers)
        .with_seed(c.seed)
        .with_topology(Topology::synthetic(c.topology.0, c.topology.1))
        .with_speeds(c.speeds.clone())
        .with_timeline(c.timeline)
        .with_timing(if c.timing_off {
            scheduler::Timing::Off
        } else {
            scheduler::Timing::Tasks
        });
    let n = c.costs.len();
    let tasks = Tasks {
        n,
        cost_ns: Some(&c.costs),
        estimate_ns: Some(&c.costs),
        release_ns: c.releases.as_deref(),
    };
    if let Err(e) = strategy.validate(c.workers) {
        // A strategy may refuse a configuration (e.g. weights of the wrong length): that must
        // be the engine's answer too, and nothing may run.
        return match run_sim_with(
            &spec,
            strategy.as_ref(),
            &tasks,
            &CostModel::default(),
            |_| {},
        ) {
            Err(_) => Ok(()),
            Ok(_) => Err(format!("validate refused ({e}) but the sim ran")),
        };
    }
    if c.sim {
        let mut seen = vec![0u8; n];
        let mut last_end = 0;
        let r = run_sim_with(
            &spec,
            strategy.as_ref(),
            &tasks,
            &CostModel::default(),
            |s| {
                seen[s.task] = seen[s.task].saturating_add(1);
                last_end = last_end.max(s.end_ns);
            },
        )
        .map_err(|e| format!("sim: {e}"))?;
        if let Some(j) = seen.iter().position(|&k| k != 1) {
            return Err(format!("sim: task {j} ran {} times", seen[j]));
        }
        if n > 0 && last_end != r.makespan_ns {
            return Err(format!(
                "sim: last span ends at {last_end}, makespan {}",
                r.makespan_ns
            ));
        }
        check_report(c, &r, 0)?;
        // Deterministic: the same inputs give the same report, byte for byte.
        let again = run_sim_with(
            &spec,
            strategy.as_ref(),
            &tasks,
            &CostModel::default(),
            |_| {},
        )
        .map_err(|e| format!("sim rerun: {e}"))?;
        if again.to_json() != r.to_json() {
            return Err("sim: a rerun gave a different report".into());
        }
    } else {
        let counts: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
        let every = c.panic_every;
        let r = run_threads(&spec, strategy.as_ref(), &tasks, |id, w| {
            assert!(w < c.workers);
            counts[id].fetch_add(1, Ordering::Relaxed);
            if every > 0 && id % every == 0 {
                panic!("stress: task {id} panics on purpose");
            }
        })
        .map_err(|e| format!("threads: {e}"))?;
        if let Some(j) = counts.iter().position(|k| k.load(Ordering::Relaxed) != 1) {
            return Err(format!(
                "threads: task {j} ran {} times",
                counts[j].load(Ordering::Relaxed)
            ));
        }
        let failed = if every > 0 {
            n.div_ceil(every) as u64
        } else {
            0
        };
        check_report(c, &r, failed)?;
        // The failures listed are panicking tasks, as many as fit the list.
        let listed = (failed as usize).min(scheduler::MAX_LISTED_FAILURES);
        if r.failures.len() != listed {
            return Err(format!(
                "{} failures listed, expected {listed}",
                r.failures.len()
            ));
        }
        if let Some(f) = r
            .failures
            .iter()
            .find(|f| every == 0 || f.task % every != 0)
        {
            return Err(format!(
                "task {} listed as failed but did not panic",
                f.task
            ));
        }
    }
    Ok(())
}

/// Run `c` on a thread of its own; a run that takes longer than `limit` is a hang.
fn run_watched(c: &Config, limit: Duration) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let config = c.clone();
    std::thread::Builder::new()
        .name(format!("stress-{}", c.seed))
        .spawn(move || {
            let result = std::panic::catch_unwind(|| run(&config))
                .unwrap_or_else(|_| Err("the test harness itself panicked".into()));
            let _ = tx.send(result);
        })
        .expect("spawn the stress runner");
    match rx.recv_timeout(limit) {
        Ok(r) => r,
        Err(_) => Err(format!("no result after {limit:?}: a hang (watchdog)")),
    }
}

fn env_usize(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn random_configurations_run_every_task_exactly_once() {
    // Silence the panics of the tasks that panic on purpose (they are counted, not shown).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info.to_string();
        if !text.contains("panics on purpose") {
            default_hook(info);
        }
    }));
    let (seeds, threads_cap): (Vec<u64>, usize) = match (
        env_usize("SCHEDLAB_STRESS_SEED"),
        env_usize("SCHEDLAB_STRESS"),
    ) {
        (Some(seed), _) => (vec![seed], 100_000),
        (None, Some(count)) => ((0..count).collect(), 100_000),
        // CI-sized: 500 configurations, threads runs up to 10^4 tasks (debug build, 2 cores).
        (None, None) => ((0..500).collect(), 10_000),
    };
    let start = std::time::Instant::now();
    let (mut sim, mut threads, mut tasks, mut panicking) = (0u64, 0u64, 0u64, 0u64);
    for &seed in &seeds {
        let c = draw(seed, threads_cap);
        if let Err(e) = run_watched(&c, Duration::from_secs(120)) {
            panic!(
                "stress configuration failed: {e}\n  seed {seed}: {} P={} n={} engine={} \
                 speeds={} topology={}x{} streaming={} panic_every={} timing_off={} \
                 timeline={}\n  replay: \
                 SCHEDLAB_STRESS_SEED={seed} cargo test -p strategies --test stress",
                c.strategy,
                c.workers,
                c.costs.len(),
                if c.sim { "sim" } else { "threads" },
                if c.speeds.is_empty() {
                    "uniform".into()
                } else {
                    format!("{} values", c.speeds.len())
                },
                c.topology.0,
                c.topology.1,
                c.releases.is_some(),
                c.panic_every,
                c.timing_off,
                c.timeline
            );
        }
        if c.sim {
            sim += 1;
        } else {
            threads += 1;
        }
        panicking += u64::from(c.panic_every > 0);
        tasks += c.costs.len() as u64;
    }
    println!(
        "stress: {} configurations ({sim} sim, {threads} threads, {panicking} with panicking \
         tasks), {tasks} tasks, all exactly once, in {:.1} s",
        seeds.len(),
        start.elapsed().as_secs_f64()
    );
}

/// A task 1000x the mean, and a worker 100x slower than the rest: every strategy finishes with
/// every task run once, on both engines; on the sim the straggler's effect is exact.
#[test]
fn a_huge_task_and_a_slow_worker_still_finish_with_correct_counts() {
    let n = 2_000;
    let p = 4;
    // Mean ~1 µs; task 1000 costs 1000x the mean.
    let mut costs = vec![1_000u64; n];
    costs[1000] = 1_000 * 1_000;
    let slow = vec![1.0, 1.0, 1.0, 0.01];
    for entry in strategies::registry() {
        let strategy = strategies::parse(entry.name).unwrap();
        for (what, speeds) in [("huge task", vec![]), ("slow worker", slow.clone())] {
            let spec = RunSpec::new(p).with_seed(3).with_speeds(speeds.clone());
            // sim
            let mut seen = vec![0u8; n];
            let r = run_sim_with(
                &spec,
                strategy.as_ref(),
                &Tasks::with_costs(&costs),
                &CostModel::default(),
                |s| seen[s.task] += 1,
            )
            .unwrap();
            assert!(seen.iter().all(|&k| k == 1), "{} {what}: sim", entry.name);
            assert_eq!(r.executed, n as u64);
            // The huge task alone bounds the makespan from below.
            assert!(r.makespan_ns >= 1_000_000, "{} {what}", entry.name);
            // threads: the costs are real sleeps only for the few long ones, to keep it short.
            let counts: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
            let r = run_threads(
                &spec,
                strategy.as_ref(),
                &Tasks::with_costs(&costs),
                |id, w| {
                    counts[id].fetch_add(1, Ordering::Relaxed);
                    let speed = speeds.get(w).copied().unwrap_or(1.0);
                    if id == 1000 || speed < 1.0 {
                        // The huge task (1 ms) and everything on the slow worker (100 us each)
                        // really take long; the rest are instant.
                        let us = if id == 1000 { 1_000 } else { 100 };
                        std::thread::sleep(Duration::from_micros(us));
                    }
                },
            )
            .unwrap();
            assert!(
                counts.iter().all(|k| k.load(Ordering::Relaxed) == 1),
                "{} {what}: threads",
                entry.name
            );
            assert_eq!(
                (r.executed, r.failed),
                (n as u64, 0),
                "{} {what}",
                entry.name
            );
        }
    }
}
