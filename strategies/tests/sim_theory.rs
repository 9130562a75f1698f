//! The real strategies on the `sim` engine, checked against queueing and scheduling theory
//! (`docs/theory.md`). Each check is a small table below; run with `--nocapture` to see it filled in.
//!
//! The long M/M/c rows (c = 16 and ρ = 0.9; at c = 16, ρ = 0.5 fewer than 1% of customers
//! wait at all) need ~110 million customers: they are an ignored test meant for release mode
//! (~20 s on 2 cores):
//!
//! ```text
//! cargo test --release -p strategies --test sim_theory -- --ignored --nocapture
//! ```

mod common;

use common::all_specs;
use scheduler::{
    run_sim, run_sim_with, CostModel, RunReport, RunSpec, SmallRng, Strategy, Tasks, Topology,
};

/// Nanoseconds per time unit of the queueing checks: service times have mean 1 unit = 10 µs, so
/// integer nanoseconds resolve them to 10⁻⁴.
const UNIT: f64 = 10_000.0;

fn strategy(spec: &str) -> Box<dyn Strategy> {
    strategies::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

/// `p` identical workers on one node.
fn workers(p: usize, seed: u64) -> RunSpec {
    RunSpec::new(p)
        .with_topology(Topology::synthetic(1, p))
        .with_seed(seed)
}

// ---------------------------------------------------------------------------------------------
// M/M/c and Erlang C
// ---------------------------------------------------------------------------------------------

/// Erlang C: the probability that an arrival waits in M/M/c with offered load `a = λ/μ < c`.
/// C(c, a) = [a^c/c! · c/(c − a)] / [Σ_{k<c} a^k/k! + a^c/c! · c/(c − a)].
fn erlang_c(c: usize, a: f64) -> f64 {
    assert!(a < c as f64, "unstable: a = {a} >= c = {c}");
    let (mut sum, mut term) = (0.0, 1.0); // term = a^k / k!
    for k in 0..c {
        sum += term;
        term *= a / (k + 1) as f64;
    }
    let top = term * c as f64 / (c as f64 - a);
    top / (sum + top)
}

/// Mean wait in queue of M/M/c: W_q = C(c, λ/μ) / (cμ − λ).
fn mmc_wq(c: usize, lambda: f64, mu: f64) -> f64 {
    erlang_c(c, lambda / mu) / (c as f64 * mu - lambda)
}

#[test]
fn erlang_c_matches_the_reference_values_of_theory_md() {
    // docs/theory.md (M/M/c), μ = 1.
    for (c, lambda, wq) in [
        (2, 1.8, 4.263),
        (4, 3.2, 0.7455),
        (8, 7.2, 0.8769),
        (16, 14.4, 0.3696),
    ] {
        let got = mmc_wq(c, lambda, 1.0);
        assert!(
            (got - wq).abs() < 5e-4 * wq,
            "c={c} λ={lambda}: {got} vs {wq}"
        );
    }
    // M/M/1: C = ρ and W_q = ρ/(μ − λ).
    for rho in [0.1, 0.5, 0.9] {
        assert!((erlang_c(1, rho) - rho).abs() < 1e-12);
        assert!((mmc_wq(1, rho, 1.0) - rho / (1.0 - rho)).abs() < 1e-12);
    }
}

/// An exponential sample with mean 1 (inverse transform).
fn exp1(rng: &mut SmallRng) -> f64 {
    -(1.0 - rng.unit_f64()).ln()
}

/// An open workload: `n` Poisson arrivals at rate `lambda` per unit, exponential service of
/// mean 1 unit, in ns.
struct Open {
    cost: Vec<u64>,
    release: Vec<u64>,
}

impl Open {
    fn poisson_exponential(n: usize, lambda: f64, seed: u64) -> Self {
        let mut rng = SmallRng::new(seed);
        let (mut cost, mut release) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut t = 0.0;
        for _ in 0..n {
            t += exp1(&mut rng) / lambda;
            release.push((t * UNIT).round() as u64);
            cost.push((exp1(&mut rng) * UNIT).round() as u64);
        }
        Open { cost, release }
    }

    fn tasks(&self) -> Tasks<'_> {
        Tasks {
            release_ns: Some(&self.release),
            ..Tasks::with_costs(&self.cost)
        }
    }
}

/// What one open run measured, in units.
struct Measured {
    /// Mean wait of the tasks after the warm-up (the first 10%).
    wait: f64,
    /// Mean time in system of every task.
    latency: f64,
    report: RunReport,
}

fn run_open(spec: &str, c: usize, work: &Open, seed: u64) -> Measured {
    let n = work.cost.len();
    let warm = n / 10;
    let (mut wait, mut latency) = (0u128, 0u128);
    let report = run_sim_with(
        &workers(c, seed),
        strategy(spec).as_ref(),
        &work.tasks(),
        &CostModel::zero(),
        |s| {
            let release = work.release[s.task];
            latency += u128::from(s.end_ns - release);
            if s.task >= warm {
                wait += u128::from(s.start_ns - release);
            }
        },
    )
    .unwrap();
    assert_eq!(report.executed, n as u64);
    Measured {
        wait: wait as f64 / (n - warm) as f64 / UNIT,
        latency: latency as f64 / n as f64 / UNIT,
        report,
    }
}

/// One row of the M/M/c table: `runs` independent runs of `customers` each, averaged.
struct MmcRow {
    c: usize,
    rho: f64,
    customers: usize,
    runs: u64,
}

const fn row(c: usize, rho: f64, customers: usize, runs: u64) -> MmcRow {
    MmcRow {
        c,
        rho,
        customers,
        runs,
    }
}

// Sizes: the standard deviation of a row's estimate, measured over independent seeds, is
// kept near 0.75% or below, so the 3% bound sits about 4 standard deviations out. (A single
// run of 1M customers at ρ = 0.8 has ~1.4%; at c = 16, ρ = 0.5 only 0.9% of customers wait
// at all and 4M customers give ~2.6%.)

/// Rows quick enough for a debug build (c ≤ 8, ρ ≤ 0.8: ~20M customers).
const MMC_LIGHT: &[MmcRow] = &[
    row(1, 0.5, 1_000_000, 1),
    row(2, 0.5, 1_000_000, 2),
    row(4, 0.5, 1_000_000, 3),
    row(8, 0.5, 2_000_000, 2),
    row(1, 0.8, 1_500_000, 2),
    row(2, 0.8, 1_500_000, 2),
    row(4, 0.8, 1_500_000, 2),
    row(8, 0.8, 2_000_000, 2),
];

/// Rows that need release mode (c = 16, and ρ = 0.9: ~110M customers; see the module docs).
const MMC_HEAVY: &[MmcRow] = &[
    row(16, 0.5, 4_000_000, 12),
    row(16, 0.8, 2_000_000, 8),
    row(1, 0.9, 2_000_000, 6),
    row(2, 0.9, 2_000_000, 6),
    row(4, 0.9, 2_000_000, 6),
    row(8, 0.9, 2_000_000, 8),
    row(16, 0.9, 2_000_000, 8),
];

/// Run each row with `central`, zero costs; the mean wait must be within 3% of Erlang C.
/// Runs are spread over the machine's cores (each is independent and deterministic).
fn check_mmc(rows: &[MmcRow]) {
    let jobs: Vec<(usize, u64)> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, r)| (1..=r.runs).map(move |run| (i, run)))
        .collect();
    let results = std::sync::Mutex::new(vec![0.0f64; jobs.len()]);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(i, run)) = jobs.get(k) else { break };
                let r = &rows[i];
                let lambda = r.rho * r.c as f64;
                // Every row and run draws its own stream, so rows' errors are independent.
                let seed = 1_000 * r.c as u64 + (100.0 * r.rho) as u64 * 10 + run;
                let work = Open::poisson_exponential(r.customers, lambda, seed);
                let wait = run_open("central(chunk=1)", r.c, &work, seed).wait;
                results.lock().unwrap()[k] = wait;
            });
        }
    });
    // Summed in job order, so the printed table is the same whatever the threads did.
    let mut waits = vec![0.0f64; rows.len()];
    for (&(i, _), w) in jobs.iter().zip(results.into_inner().unwrap()) {
        waits[i] += w / rows[i].runs as f64;
    }
    println!("M/M/c with central(chunk=1), μ = 1 per {UNIT} ns, warm-up 10% discarded");
    println!("   c    ρ   customers × runs   W_q measured   W_q Erlang C   error");
    let mut failures = Vec::new();
    for (r, &measured) in rows.iter().zip(&waits) {
        let formula = mmc_wq(r.c, r.rho * r.c as f64, 1.0);
        let error = (measured - formula) / formula;
        println!(
            "{:>4} {:>4} {:>11} × {:<4} {:>14.5} {:>14.5} {:>+6.2}%",
            r.c,
            r.rho,
            r.customers,
            r.runs,
            measured,
            formula,
            100.0 * error
        );
        if error.abs() > 0.03 {
            failures.push(format!(
                "c={} ρ={}: {measured:.5} vs {formula:.5}",
                r.c, r.rho
            ));
        }
    }
    assert!(failures.is_empty(), "W_q off by more than 3%: {failures:?}");
}

#[test]
fn mmc_mean_wait_matches_erlang_c() {
    check_mmc(MMC_LIGHT);
}

#[test]
#[ignore = "tens of millions of customers: run in release mode (see the module docs)"]
fn mmc_mean_wait_matches_erlang_c_heavy_rows() {
    check_mmc(MMC_HEAVY);
}

// ---------------------------------------------------------------------------------------------
// Little's law
// ---------------------------------------------------------------------------------------------

#[test]
fn littles_law_holds_for_every_strategy() {
    // L (the engine's time average of N(t), integrated over events) = λ × W (the mean time in
    // system of the tasks), with λ the arrival rate the workload was generated with.
    let (c, rho, n) = (4, 0.8, 100_000);
    let lambda = rho * c as f64;
    let work = Open::poisson_exponential(n, lambda, 7);
    println!("Little's law, M/M/{c}, ρ = {rho}, {n} customers");
    println!("{:<42} {:>10} {:>10} {:>8}", "strategy", "L", "λW", "error");
    for spec in [
        "central(chunk=1)",
        "work-stealing",
        "work-stealing(victim=random,steal=one)",
        "spt",
        "lpt",
        "round-robin",
        "guided",
    ] {
        let m = run_open(spec, c, &work, 3);
        let l = m
            .report
            .mean_in_system
            .expect("the sim reports the time average");
        let lw = lambda * m.latency;
        let error = (l - lw) / lw;
        println!("{spec:<42} {l:>10.4} {lw:>10.4} {:>+7.3}%", 100.0 * error);
        assert!(error.abs() < 0.02, "{spec}: L = {l}, λW = {lw}");
    }
}

// ---------------------------------------------------------------------------------------------
// List scheduling bounds (Graham, LPT)
// ---------------------------------------------------------------------------------------------

/// The optimal makespan of `costs` on `m` identical machines, by branch and bound.
fn optimum(costs: &[u64], m: usize) -> u64 {
    fn search(i: usize, jobs: &[u64], rest: &[u64], loads: &mut [u64], best: &mut u64) {
        let current = *loads.iter().max().unwrap();
        if current >= *best {
            return;
        }
        if i == jobs.len() {
            *best = current;
            return;
        }
        // No schedule finishing this one beats the average load.
        let total: u64 = loads.iter().sum::<u64>() + rest[i];
        if total.div_ceil(loads.len() as u64) >= *best {
            return;
        }
        for k in 0..loads.len() {
            // Machines with equal loads are interchangeable: try one of them.
            if loads[..k].contains(&loads[k]) {
                continue;
            }
            loads[k] += jobs[i];
            search(i + 1, jobs, rest, loads, best);
            loads[k] -= jobs[i];
        }
    }
    let mut jobs = costs.to_vec();
    jobs.sort_unstable_by(|a, b| b.cmp(a));
    // rest[i] = Σ jobs[i..]
    let mut rest = vec![0; jobs.len() + 1];
    for i in (0..jobs.len()).rev() {
        rest[i] = rest[i + 1] + jobs[i];
    }
    let mut best = u64::MAX;
    search(0, &jobs, &rest, &mut vec![0; m], &mut best);
    best
}

#[test]
fn brute_force_optimum_is_right_on_known_instances() {
    assert_eq!(optimum(&[3, 3, 2, 2, 2], 2), 6);
    assert_eq!(optimum(&[5, 5, 4, 4, 3, 3, 3], 3), 9); // LPT gives 11 here
    assert_eq!(optimum(&[7], 3), 7);
    assert_eq!(optimum(&[1, 1, 1, 1], 3), 2);
}

#[test]
fn greedy_strategies_meet_the_list_scheduling_bounds() {
    // Graham: any greedy list schedule ≤ (2 − 1/m)·OPT; LPT ≤ (4/3 − 1/(3m))·OPT.
    let greedy = [
        "central(chunk=1)",
        "spt",
        "lpt",
        "work-stealing(victim=random,steal=half)",
        "work-stealing(victim=random,steal=one)",
        "work-stealing(victim=numa,steal=one)",
    ];
    let mut rng = SmallRng::new(2024);
    let mut worst = vec![0.0f64; greedy.len()];
    let instances = 400;
    for i in 0..instances {
        let m = 2 + (i % 2);
        let n = 2 + rng.below(9);
        // Small integers make ties and tight instances; ×1000 keeps them in µs.
        let top = if i % 3 == 0 { 1_000 } else { 12 };
        let costs: Vec<u64> = (0..n)
            .map(|_| 1_000 * (1 + rng.below(top) as u64))
            .collect();
        let opt = optimum(&costs, m);
        for (k, spec) in greedy.iter().enumerate() {
            let r = run_sim(
                &workers(m, i as u64),
                strategy(spec).as_ref(),
                &Tasks::with_costs(&costs),
                &CostModel::zero(),
            )
            .unwrap();
            let (mk, m64) = (r.makespan_ns, m as u64);
            assert!(
                mk >= opt,
                "{spec}: makespan {mk} below the optimum {opt} for {costs:?}"
            );
            // mk ≤ (2 − 1/m)·OPT  ⇔  m·mk ≤ (2m − 1)·OPT
            assert!(
                m64 * mk <= (2 * m64 - 1) * opt,
                "{spec}, m={m}, {costs:?}: {mk} vs OPT {opt}"
            );
            if *spec == "lpt" {
                // mk ≤ (4/3 − 1/(3m))·OPT  ⇔  3m·mk ≤ (4m − 1)·OPT
                assert!(
                    3 * m64 * mk <= (4 * m64 - 1) * opt,
                    "lpt, m={m}, {costs:?}: {mk} vs OPT {opt}"
                );
            }
            worst[k] = worst[k].max(mk as f64 / opt as f64);
        }
    }
    println!("{instances} instances, n ≤ 10, m ∈ {{2, 3}}; bounds 1.5 / 1.667 (Graham), 1.167 / 1.222 (LPT)");
    for (spec, w) in greedy.iter().zip(&worst) {
        println!("{spec:<42} worst makespan / OPT = {w:.4}");
    }
}

// ---------------------------------------------------------------------------------------------
// SPT minimises mean flow time
// ---------------------------------------------------------------------------------------------

#[test]
fn spt_has_the_smallest_mean_flow_time() {
    let specs = all_specs();
    let mut rng = SmallRng::new(99);
    for (p, n) in [(2, 20), (3, 57), (4, 100), (8, 200)] {
        // Log-uniform costs from 1 µs to 1 ms: short and long tasks mixed.
        let costs: Vec<u64> = (0..n)
            .map(|_| (1_000.0 * 1_000f64.powf(rng.unit_f64())).round() as u64)
            .collect();
        let flow = |spec: &str| {
            let mut total = 0u128;
            run_sim_with(
                &workers(p, 5),
                strategy(spec).as_ref(),
                &Tasks::with_costs(&costs),
                &CostModel::zero(),
                |s| total += u128::from(s.end_ns),
            )
            .unwrap();
            total as f64 / n as f64
        };
        let spt = flow("spt");
        println!(
            "P = {p}, n = {n}: mean flow time of SPT {:.1} µs; others relative to it:",
            spt / 1e3
        );
        for spec in &specs {
            let other = flow(spec);
            println!("  {spec:<42} {:.4}", other / spt);
            assert!(spt <= other, "P={p} n={n}: spt {spt} > {spec} {other}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Static strategies
// ---------------------------------------------------------------------------------------------

#[test]
fn static_strategies_balance_equal_tasks_exactly() {
    let c = 1_000u64;
    for spec in ["round-robin", "block", "weighted-rr"] {
        for p in [1, 2, 3, 4, 8, 16] {
            for k in [1, 5, 32] {
                let n = k * p;
                let costs = vec![c; n];
                let r = run_sim(
                    &workers(p, 1),
                    strategy(spec).as_ref(),
                    &Tasks::with_costs(&costs),
                    &CostModel::zero(),
                )
                .unwrap();
                assert_eq!(r.lif, 1.0, "{spec} P={p} n={n}");
                assert_eq!(r.makespan_ns, k as u64 * c, "{spec} P={p} n={n}");
                assert!(
                    r.per_worker.iter().all(|w| w.tasks == k as u64),
                    "{spec} P={p} n={n}"
                );
            }
        }
    }
}

#[test]
fn one_slow_worker_sets_round_robins_makespan() {
    let c = 1_000u64;
    println!("P = 4, n = 40 tasks of {c} ns, worker 3 slow");
    for slow in [0.5, 0.25, 0.8] {
        let mut speeds = vec![1.0; 4];
        speeds[3] = slow;
        let costs = vec![c; 40];
        let run = |spec: &str| {
            run_sim(
                &workers(4, 1).with_speeds(speeds.clone()),
                strategy(spec).as_ref(),
                &Tasks::with_costs(&costs),
                &CostModel::zero(),
            )
            .unwrap()
        };
        let rr = run("round-robin");
        // Worker 3 gets n/P = 10 tasks, each c / speed.
        let expected = (10.0 * c as f64 / slow).round() as u64;
        assert_eq!(rr.makespan_ns, expected, "speed {slow}");
        assert_eq!(rr.per_worker[3].busy_ns, expected);
        let dynamic = run("central(chunk=1)");
        let weighted = run("weighted-rr(weights=auto)");
        println!(
            "  speed {slow}: round-robin {} ns (= 10 × {c} / {slow}), weighted-rr {} ns, central {} ns",
            rr.makespan_ns, weighted.makespan_ns, dynamic.makespan_ns
        );
        assert!(dynamic.makespan_ns < rr.makespan_ns);
        assert!(weighted.makespan_ns <= rr.makespan_ns);
    }
}

// ---------------------------------------------------------------------------------------------
// Every strategy runs unchanged on the sim; the cost model's single server
// ---------------------------------------------------------------------------------------------

#[test]
fn every_strategy_runs_every_task_once_on_a_numa_sim() {
    let n = 2_000;
    let mut rng = SmallRng::new(8);
    let costs: Vec<u64> = (0..n).map(|_| 1_000 + rng.below(100_000) as u64).collect();
    // Estimates off by up to ±50%, and open arrivals in bursts of 10.
    let estimates: Vec<u64> = costs
        .iter()
        .map(|&c| (c as f64 * (0.5 + rng.unit_f64())) as u64)
        .collect();
    let release: Vec<u64> = (0..n as u64).map(|j| j / 10 * 4_000).collect();
    let spec = RunSpec::new(8)
        .with_topology("2x4".parse().unwrap())
        .with_speeds(vec![1.0, 1.0, 0.5, 2.0, 1.0, 1.0, 0.75, 1.0])
        .with_seed(3);
    for open in [false, true] {
        let tasks = Tasks {
            n,
            cost_ns: Some(&costs),
            estimate_ns: Some(&estimates),
            release_ns: open.then_some(&release[..]),
        };
        for name in all_specs() {
            let mut runs = vec![0u32; n];
            let r = run_sim_with(
                &spec,
                strategy(&name).as_ref(),
                &tasks,
                &CostModel::default(),
                |s| runs[s.task] += 1,
            )
            .unwrap_or_else(|e| panic!("{name} (open: {open}): {e}"));
            assert!(runs.iter().all(|&k| k == 1), "{name} (open: {open})");
            assert_eq!(r.executed, n as u64, "{name}");
            assert!(r.makespan_ns >= r.lower_bound_ns, "{name}");
        }
    }
}

#[test]
fn a_central_queue_is_a_single_server() {
    // 64 workers, 20,000 tasks of 1 µs, a shared access of 100 ns: the central queue can hand
    // out at most one task per 100 ns, so its makespan is at least n × 100 ns (2 ms, where
    // the work alone needs 20000 × 1 µs / 64 = 0.31 ms). Per-worker deques do not queue.
    let (p, n) = (64, 20_000);
    let costs = vec![1_000u64; n];
    let model: CostModel = "zero,shared=100ns,local=20ns,steal_same=100ns"
        .parse()
        .unwrap();
    let run = |name: &str| {
        run_sim(
            &workers(p, 1),
            strategy(name).as_ref(),
            &Tasks::with_costs(&costs),
            &model,
        )
        .unwrap()
    };
    let central = run("central(chunk=1)");
    let chunked = run("central(chunk=16)");
    let stealing = run("work-stealing");
    println!(
        "P = {p}, {n} tasks of 1 µs, shared access 100 ns: central {} µs, central(chunk=16) {} µs, work-stealing {} µs",
        central.makespan_ns / 1_000,
        chunked.makespan_ns / 1_000,
        stealing.makespan_ns / 1_000
    );
    assert!(central.makespan_ns >= n as u64 * model.shared_ns);
    assert!(central.efficiency < 0.2, "{}", central.efficiency);
    assert!(chunked.makespan_ns < central.makespan_ns / 4);
    assert!(stealing.efficiency > 0.8, "{}", stealing.efficiency);
}
