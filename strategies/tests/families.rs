//! The defining property of each strategy of the loop-scheduling and adaptive families, on
//! the sim engine (exact and deterministic): AWF learns the speed ratio, adaptive-spt
//! approaches SPT with exact estimates, JSQ(2) meets the supermarket model's limit,
//! hierarchical stealing crosses nodes rarely, and steal=work is compared with steal=half.
//! (The chunk sequences of `factoring` and `tss` are unit tests beside their code.)

mod common;

use common::Recorded;
use scheduler::{
    run_sim, run_sim_with, CostModel, RunReport, RunSpec, SmallRng, Strategy, Tasks, Topology,
};

fn strategy(spec: &str) -> Box<dyn Strategy> {
    strategies::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn median(mut xs: Vec<f64>) -> f64 {
    assert!(!xs.is_empty());
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn exp1(rng: &mut SmallRng) -> f64 {
    -(1.0 - rng.unit_f64()).ln()
}

fn lognormal(rng: &mut SmallRng, mean: f64, sigma: f64) -> f64 {
    let mu = mean.ln() - sigma * sigma / 2.0;
    let (u1, u2) = (1.0 - rng.unit_f64(), rng.unit_f64());
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (mu + sigma * z).exp()
}

#[test]
fn awf_weights_converge_to_the_speed_ratio() {
    // Two big workers (speed 2) and two little ones (speed 1), 1 µs tasks: a big worker's
    // chunk, relative to the ids left when it asks, must settle at twice a little one's.
    let n = 400_000;
    let costs = vec![1_000u64; n];
    let spec = RunSpec::new(4).with_speeds(vec![2.0, 2.0, 1.0, 1.0]);
    let rec = Recorded::new("awf");
    let r = run_sim(&spec, &rec, &Tasks::with_costs(&costs), &CostModel::zero()).unwrap();
    assert_eq!(r.executed, n as u64);
    // The weight a pick implies: chunk · 2P / ids left (picks come in id order from one queue).
    let mut left = n;
    let (mut big, mut little) = (Vec::new(), Vec::new());
    for (i, (w, p)) in rec.picks().into_iter().enumerate() {
        let weight = p.count as f64 * 8.0 / left as f64;
        left -= p.count as usize;
        // After the first round of measurements, while chunks are big enough for rounding
        // not to matter.
        if i >= 8 && p.count >= 50 {
            if w < 2 {
                big.push(weight)
            } else {
                little.push(weight)
            }
        }
    }
    assert!(
        big.len() >= 10 && little.len() >= 10,
        "{} {}",
        big.len(),
        little.len()
    );
    let ratio = median(big.clone()) / median(little.clone());
    println!("awf: big/little chunk weight ratio {ratio:.3} (speed ratio 2)");
    assert!((ratio - 2.0).abs() < 0.1, "ratio {ratio}");
    // Factoring without weights gives everyone the same share of what is left.
    let rec = Recorded::new("factoring");
    run_sim(&spec, &rec, &Tasks::with_costs(&costs), &CostModel::zero()).unwrap();
    let sizes: Vec<u32> = rec.picks().iter().take(4).map(|(_, p)| p.count).collect();
    assert!(sizes.iter().all(|&s| s == sizes[0]), "{sizes:?}");
}

/// Costs that come in classes of `width` consecutive ids (a log-normal level per class, ±20%
/// per task).
fn classed_costs(n: usize, width: usize, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::new(seed);
    let mut level = 0.0;
    (0..n)
        .map(|i| {
            if i % width == 0 {
                level = lognormal(&mut rng, 50_000.0, 1.0);
            }
            (level * (0.8 + 0.4 * rng.unit_f64())).round().max(1.0) as u64
        })
        .collect()
}

fn mean_flow(spec: &str, p: usize, tasks: &Tasks<'_>) -> f64 {
    let r = run_sim(
        &RunSpec::new(p).with_seed(3),
        strategy(spec).as_ref(),
        tasks,
        &CostModel::default(),
    )
    .unwrap();
    assert_eq!(r.executed, tasks.n as u64, "{spec}");
    r.latency_ns.mean
}

#[test]
fn adaptive_spt_without_estimates_approaches_spt_with_exact_ones() {
    // What adaptive-spt pays over SPT with exact estimates is learning: one task per range
    // runs before its range's cost is known. With classes of `width` ids and ranges as wide,
    // that is one task in `width`, so the excess must shrink as ranges grow, while FIFO order
    // stays far off.
    let (p, n) = (4, 65_536);
    for seed in [1, 2] {
        let mut excess = Vec::new();
        for width in [64, 256, 1024] {
            let costs = classed_costs(n, width, seed);
            let exact = Tasks {
                estimate_ns: Some(&costs),
                ..Tasks::with_costs(&costs)
            };
            let blind = Tasks {
                estimate_ns: None,
                ..Tasks::with_costs(&costs)
            };
            let spt = mean_flow("spt", p, &exact);
            let adaptive = mean_flow(&format!("adaptive-spt(range={width})"), p, &blind);
            let fifo = mean_flow("central", p, &blind);
            println!(
                "seed {seed}, classes of {width}: mean flow time (ms) spt exact {:.1}, adaptive-spt {:.1} ({:+.1}%), central {:.1}",
                spt / 1e6,
                adaptive / 1e6,
                100.0 * (adaptive / spt - 1.0),
                fifo / 1e6
            );
            assert!(
                fifo >= 1.5 * spt,
                "the workload must separate them: {fifo} vs {spt}"
            );
            assert!(adaptive <= 1.2 * spt, "adaptive {adaptive} vs spt {spt}");
            excess.push(adaptive / spt - 1.0);
            // Learned LPT serves the long ranges first: the opposite end.
            if width == 64 {
                let lpt = mean_flow("adaptive-spt(first=longest)", p, &blind);
                assert!(lpt > fifo, "learned LPT {lpt} vs FIFO {fifo}");
            }
        }
        assert!(
            excess.windows(2).all(|w| w[1] < w[0]),
            "the excess over exact SPT shrinks as ranges grow: {excess:?}"
        );
        assert!(excess[2] < 0.05, "{excess:?}");
    }
}

#[test]
fn jsq2_meets_the_supermarket_limit_at_p_1024() {
    // Poisson arrivals at λ = 0.9 per worker, exponential service of mean 1 unit (10 µs).
    let (p, lambda, unit) = (1024usize, 0.9f64, 10_000.0f64);
    let n = 120_000;
    let mut rng = SmallRng::new(11);
    let (mut cost, mut release) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut t = 0.0;
    for _ in 0..n {
        t += exp1(&mut rng) / (lambda * p as f64);
        release.push((t * unit).round() as u64);
        cost.push((exp1(&mut rng) * unit).round().max(1.0) as u64);
    }
    let tasks = Tasks {
        release_ns: Some(&release),
        ..Tasks::with_costs(&cost)
    };
    // Discard the first 30 units (the system fills from empty), and the last 10 (the tail
    // after arrivals stop).
    let (from, to) = (30.0 * unit, t * unit - 10.0 * unit);
    let limit: f64 = (1..20).map(|i| lambda.powf(((1u64 << i) - 2) as f64)).sum();
    let (mut sum, mut count) = (0.0, 0u64);
    let r = run_sim_with(
        &RunSpec::new(p).with_seed(5),
        strategy("jsq(d=2)").as_ref(),
        &tasks,
        &CostModel::zero(),
        |s| {
            let rel = release[s.task] as f64;
            if rel >= from && rel < to {
                sum += (s.end_ns as f64 - rel) / unit;
                count += 1;
            }
        },
    )
    .unwrap();
    assert_eq!(r.executed, n as u64);
    let mean = sum / count as f64;
    println!("jsq(d=2), P = {p}, λ = {lambda}: mean time in system {mean:.3} units, limit {limit:.3} ({count} tasks)");
    assert!((limit - 2.614).abs() < 0.01, "the formula: {limit}");
    assert!((mean / limit - 1.0).abs() < 0.05, "{mean} vs {limit}");
}

fn closed_lognormal(n: usize, sigma: f64, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::new(seed);
    (0..n)
        .map(|_| lognormal(&mut rng, 20_000.0, sigma).round().max(1.0) as u64)
        .collect()
}

#[test]
fn hierarchical_stealing_crosses_nodes_four_times_less() {
    // 4 nodes × 16 workers; 500 log-normal tasks each (σ = 1). Which worker draws the last
    // long task moves one run's efficiency by a percent either way, so the efficiencies are
    // compared as means over seeds.
    let spec = RunSpec::new(64).with_topology(Topology::synthetic(4, 16));
    let seeds = 1..=6u64;
    let (mut random, mut hier) = ((0, 0.0), (0, 0.0));
    for seed in seeds.clone() {
        let costs = closed_lognormal(64 * 500, 1.0, seed);
        let tasks = Tasks::with_costs(&costs);
        let run = |s: &str| {
            let rec = Recorded::new(s);
            let r = run_sim(
                &spec.clone().with_seed(seed),
                &rec,
                &tasks,
                &CostModel::default(),
            )
            .unwrap();
            assert_eq!(r.executed, tasks.n as u64, "{s}");
            (rec.cross_node_steals(), r.efficiency)
        };
        let r = run("work-stealing(victim=random)");
        let h = run("work-stealing(victim=hier)");
        println!(
            "seed {seed}: cross-node steals random {}, hier {}; efficiency random {:.4}, hier {:.4}",
            r.0, h.0, r.1, h.1
        );
        random = (random.0 + r.0, random.1 + r.1);
        hier = (hier.0 + h.0, hier.1 + h.1);
    }
    let k = seeds.count() as f64;
    let (random_eff, hier_eff) = (random.1 / k, hier.1 / k);
    println!(
        "total cross-node steals random {}, hier {}; mean efficiency random {random_eff:.4}, hier {hier_eff:.4}",
        random.0, hier.0
    );
    assert!(4 * hier.0 <= random.0, "{} vs {}", hier.0, random.0);
    assert!(hier_eff >= random_eff - 0.01, "{hier_eff} vs {random_eff}");
}

/// The comparison the issue asks for (either answer is a result): steal by estimated work
/// against steal half the count, on heavy-tailed costs with exact estimates. Prints mean
/// efficiency and steals over seeds for σ = 1, 1.5, 2 (`--nocapture`).
#[test]
fn steal_work_against_steal_half_on_heavy_tails() {
    let p = 16;
    let mut differ = false;
    for sigma in [1.0, 1.5, 2.0] {
        let (mut half, mut work) = ((0.0, 0u64, 0u64), (0.0, 0u64, 0u64));
        let (mut wins, seeds) = (0, 5u64);
        for seed in 1..=seeds {
            let costs = closed_lognormal(p * 500, sigma, seed);
            let tasks = Tasks {
                estimate_ns: Some(&costs),
                ..Tasks::with_costs(&costs)
            };
            let run = |s: &str| -> RunReport {
                let r = run_sim(
                    &RunSpec::new(p).with_seed(seed),
                    strategy(s).as_ref(),
                    &tasks,
                    &CostModel::default(),
                )
                .unwrap();
                assert_eq!(r.executed, tasks.n as u64, "{s}");
                r
            };
            let (h, w) = (
                run("work-stealing(steal=half)"),
                run("work-stealing(steal=work)"),
            );
            wins += usize::from(w.makespan_ns < h.makespan_ns);
            differ |= (h.steals, h.tasks_moved) != (w.steals, w.tasks_moved);
            half = (
                half.0 + h.efficiency,
                half.1 + h.steals,
                half.2 + h.tasks_moved,
            );
            work = (
                work.0 + w.efficiency,
                work.1 + w.steals,
                work.2 + w.tasks_moved,
            );
        }
        let k = seeds as f64;
        println!(
            "σ = {sigma}: mean efficiency steal=half {:.4} ({} steals moving {} tasks), steal=work {:.4} ({} steals moving {} tasks); steal=work shorter in {wins} of {seeds}",
            half.0 / k, half.1, half.2, work.0 / k, work.1, work.2
        );
    }
    // The two rules must actually differ in what they move.
    assert!(differ, "steal=work moved exactly what steal=half moved");
}
