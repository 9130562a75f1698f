//! Pipelines on the simulator (`scheduler::simulate_pipeline`), checked against queueing
//! theory (`docs/theory.md`): M/M/c against Erlang C, a chain's throughput against its slowest
//! stage, Little's law per stage; and the real strategies deciding who runs what.

use std::sync::Arc;

use scheduler::{simulate_pipeline, SimPipeline, SimStage, SimStageKind, SmallRng, Strategy};

/// Nanoseconds per time unit: service times of mean 1 unit = 10 µs.
const UNIT: f64 = 10_000.0;

fn strategy(spec: &str) -> Arc<dyn Strategy> {
    Arc::from(strategies::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}")))
}

fn blocking(name: &str, threads: usize, cost_ns: Vec<u64>) -> SimStage {
    SimStage {
        name: name.into(),
        kind: SimStageKind::Blocking { threads },
        queue: None,
        cost_ns: Arc::from(cost_ns),
    }
}

fn cpu(name: &str, spec: &str, concurrency: Option<usize>, cost_ns: Vec<u64>) -> SimStage {
    SimStage {
        name: name.into(),
        kind: SimStageKind::Cpu {
            strategy: strategy(spec),
            concurrency,
        },
        queue: None,
        cost_ns: Arc::from(cost_ns),
    }
}

/// `n` exponential samples of mean `mean_ns`.
fn exponential(n: usize, mean_ns: f64, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::new(seed);
    (0..n)
        .map(|_| (-(1.0 - rng.unit_f64()).ln() * mean_ns).round() as u64)
        .collect()
}

/// Poisson arrival times of rate `per_ns`.
fn poisson(n: usize, per_ns: f64, seed: u64) -> Vec<u64> {
    let mut t = 0u64;
    exponential(n, 1.0 / per_ns, seed)
        .into_iter()
        .map(|d| {
            t += d;
            t
        })
        .collect()
}

/// Erlang C: the probability that an arrival waits in M/M/c with offered load `a = λ/μ < c`.
fn erlang_c(c: usize, a: f64) -> f64 {
    let mut term = 1.0; // a^k / k!
    let mut sum = 0.0;
    for k in 0..c {
        sum += term;
        term *= a / (k + 1) as f64;
    }
    let top = term * c as f64 / (c as f64 - a);
    top / (sum + top)
}

#[test]
fn erlang_c_matches_the_table_in_theory_md() {
    // W_q = C / (cμ − λ), μ = 1.
    for (c, lambda, wq) in [(2, 1.8, 4.263), (4, 3.2, 0.7455), (8, 7.2, 0.8769)] {
        let got = erlang_c(c, lambda) / (c as f64 - lambda);
        assert!((got - wq).abs() < 1e-3, "c={c}: {got} vs {wq}");
    }
}

/// One blocking stage fed by Poisson arrivals with exponential service is M/M/c: its mean wait
/// in queue is Erlang C's. The tolerance is four standard errors from 40 batch means (each
/// batch thousands of relaxation times long at these loads), so a correct simulator fails it
/// with probability ~1e-4 for a given seed; the seeds are fixed, so the test is exact.
#[test]
fn a_blocking_stage_with_poisson_arrivals_is_m_m_c() {
    for (c, lambda) in [(1usize, 0.7), (4, 3.2), (8, 6.0)] {
        let n = 400_000;
        let service = exponential(n, UNIT, 11 + c as u64);
        let arrivals = poisson(n, lambda / UNIT, 29 + c as u64);
        let mut p = SimPipeline::new(vec![blocking("server", c, service.clone())], 1, n);
        p.stages[0].queue = Some(n); // an unbounded queue
        p.window = Some(n);
        p.ordered = false;
        p.arrivals_ns = Some(Arc::from(arrivals.clone()));
        // Per-item waits are not in the report; the mean is, and the batch means come from
        // simulating 40 consecutive slices of the arrival stream on their own (each starts
        // empty; 10% of each is discarded as warm-up).
        let r = simulate_pipeline(&p).unwrap();
        let wq_theory = erlang_c(c, lambda) / (c as f64 - lambda); // units
        let wq = r.stages[0].mean_wait_ns / UNIT;
        let slices = 40;
        let len = n / slices;
        let mut means = Vec::new();
        for s in 0..slices {
            let lo = s * len;
            let t0 = arrivals[lo];
            let arr: Vec<u64> = arrivals[lo..lo + len].iter().map(|&a| a - t0).collect();
            let mut q = p.clone();
            q.items = len;
            q.window = Some(len);
            q.stages[0].queue = Some(len);
            q.stages[0].cost_ns = Arc::from(service[lo..lo + len].to_vec());
            q.arrivals_ns = Some(Arc::from(arr));
            means.push(simulate_pipeline(&q).unwrap().stages[0].mean_wait_ns / UNIT);
        }
        let m = means.iter().sum::<f64>() / slices as f64;
        let sd = (means.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (slices - 1) as f64).sqrt();
        let se = sd / (slices as f64).sqrt();
        eprintln!(
            "M/M/{c} λ={lambda}: W_q sim {wq:.4} (slices {m:.4} ± {se:.4}), Erlang C {wq_theory:.4}"
        );
        assert!(
            (wq - wq_theory).abs() <= 4.0 * se,
            "M/M/{c}: W_q {wq} vs Erlang C {wq_theory} (se {se})"
        );
        // The time in the system is the wait plus one mean service (1 unit), to the same tolerance.
        let w = r.stages[0].mean_sojourn_ns / UNIT;
        assert!((w - wq - r.stages[0].mean_service_ns / UNIT).abs() < 1e-6);
    }
}

/// With ample queues, a chain of two stages runs at its slowest stage's capacity: the
/// bottleneck is busy from the first item to the last but for the fill and drain (at most one
/// item's time per server of the other stage, ~0.1% of these runs).
#[test]
fn a_chain_with_ample_queues_runs_at_its_slowest_stage() {
    let n = 100_000;
    for (read_threads, read_mean, decode_mean, expect) in [
        (2usize, 1_000_000.0, 250_000.0, "read"), // read 2,000/s, decode 8,000/s
        (8, 1_000_000.0, 1_000_000.0, "decode"),  // read 8,000/s, decode 2,000/s
    ] {
        let mut p = SimPipeline::new(
            vec![
                blocking("read", read_threads, exponential(n, read_mean, 3)),
                cpu("decode", "central", None, exponential(n, decode_mean, 4)),
            ],
            2,
            n,
        );
        for s in &mut p.stages {
            s.queue = Some(1_000);
        }
        let r = simulate_pipeline(&p).unwrap();
        assert_eq!(r.bottleneck, expect);
        assert_eq!(r.busiest, expect);
        assert!(
            r.fraction_of_limit > 0.99 && r.fraction_of_limit <= 1.0 + 1e-9,
            "{expect}: {} of the limit",
            r.fraction_of_limit
        );
    }
}

/// Little's law holds per stage: the time-averaged number in a stage equals its throughput
/// times its mean time in the stage. The simulator integrates both exactly, and every stage is
/// empty at the start and the end, so they agree to rounding, under back-pressure and in
/// order as well.
#[test]
fn littles_law_holds_per_stage() {
    let n = 20_000;
    for (spec, window, queue) in [
        ("central", None, None),
        ("work-stealing", Some(64), Some(2)),
        ("round-robin", None, Some(1)),
    ] {
        let mut p = SimPipeline::new(
            vec![
                blocking("read", 16, exponential(n, 2e6, 5)),
                cpu("decode", spec, Some(4), exponential(n, 250e3, 6)),
                cpu("resize", spec, None, exponential(n, 100e3, 7)),
            ],
            2,
            n,
        );
        p.batch = 32;
        p.window = window;
        for s in &mut p.stages {
            s.queue = queue;
        }
        let r = simulate_pipeline(&p).unwrap();
        assert_eq!(r.items, n as u64);
        for s in &r.stages {
            assert_eq!(s.items, n as u64);
            let little = s.throughput_per_s * s.mean_sojourn_ns / 1e9;
            assert!(
                (s.mean_in_stage - little).abs() <= 1e-9 * little.max(1.0),
                "{spec} {}: L {} vs λW {little}",
                s.name,
                s.mean_in_stage
            );
        }
        assert!(r.held_peak as usize <= r.window);
        assert_eq!(r.batches, n.div_ceil(32) as u64);
    }
}

/// The same input gives a byte-identical report.
#[test]
fn a_run_is_deterministic() {
    let n = 5_000;
    let build = || {
        let mut p = SimPipeline::new(
            vec![
                blocking("read", 8, exponential(n, 1e6, 8)),
                cpu("decode", "work-stealing", Some(8), exponential(n, 300e3, 9)),
            ],
            3,
            n,
        );
        p.batch = 16;
        p
    };
    let a = simulate_pipeline(&build()).unwrap().to_json();
    let b = simulate_pipeline(&build()).unwrap().to_json();
    assert_eq!(a, b);
}

/// The cpu stage's strategy decides who runs what, as on threads: `round-robin` binds item i
/// to worker i mod 2, so with costs alternating 1 and 9 units one worker gets every 9 and the
/// pipeline runs at 2 items per 9 units; `central` lets any free worker take the next item,
/// 2 items per ~5 units.
#[test]
fn the_strategy_decides_who_runs_what() {
    let n = 2_000;
    let costs: Vec<u64> = (0..n)
        .map(|i| if i % 2 == 0 { 10_000 } else { 90_000 })
        .collect();
    let run = |spec: &str| {
        let p = SimPipeline::new(vec![cpu("work", spec, Some(8), costs.clone())], 2, n);
        simulate_pipeline(&p).unwrap().items_per_s
    };
    let rr = run("round-robin");
    let central = run("central");
    let rr_expect = 2.0 / 90e-6;
    assert!(
        (rr / rr_expect - 1.0).abs() < 0.01,
        "round-robin {rr} vs {rr_expect}"
    );
    assert!(central > 0.95 * 2.0 / 50e-6, "central {central}");
}

/// A window of one batch serialises the batches: the held count never passes it.
#[test]
fn the_window_bounds_items_held() {
    let n = 1_000;
    let mut p = SimPipeline::new(
        vec![
            blocking("read", 32, vec![1_000_000]),
            cpu("decode", "central", None, vec![100_000]),
        ],
        4,
        n,
    );
    p.batch = 10;
    p.window = Some(10);
    let r = simulate_pipeline(&p).unwrap();
    assert_eq!(r.held_peak, 10);
    // Ten reads in parallel (1 ms), then ten decodes on 4 workers (3 rounds of 100 µs): 1.3 ms
    // per batch of 10.
    assert_eq!(r.batch_p50_ns, 1_300_000);
    assert_eq!(r.elapsed_ns, 100 * 1_300_000);
}

/// Four workers on two cores run at half speed each: a cpu-bound pipeline gets two cores'
/// worth, and the limit says so.
#[test]
fn more_workers_than_cores_share_them() {
    let n = 1_000;
    let run = |workers: usize, cores: Option<f64>| {
        let mut p = SimPipeline::new(
            vec![cpu("work", "central", None, vec![100_000])],
            workers,
            n,
        );
        p.cores = cores;
        simulate_pipeline(&p).unwrap()
    };
    let (four, two, shared) = (run(4, None), run(2, None), run(4, Some(2.0)));
    assert_eq!(four.elapsed_ns, 250 * 100_000);
    assert_eq!(two.elapsed_ns, 500 * 100_000);
    assert_eq!(shared.elapsed_ns, two.elapsed_ns);
    assert!((shared.limit_per_s - two.limit_per_s).abs() < 1e-6);
    // Fewer workers than cores: nothing changes.
    assert_eq!(run(2, Some(8.0)).to_json(), two.to_json());
}

#[test]
fn bad_pipelines_are_refused() {
    let ok = || SimPipeline::new(vec![blocking("read", 2, vec![1])], 1, 10);
    let mut p = ok();
    p.stages[0].kind = SimStageKind::Blocking { threads: 0 };
    assert!(simulate_pipeline(&p)
        .unwrap_err()
        .to_string()
        .contains("read"));
    let mut p = ok();
    p.stages[0].cost_ns = Arc::from(Vec::new());
    assert!(simulate_pipeline(&p).is_err());
    let mut p = ok();
    p.batch = 0;
    assert!(simulate_pipeline(&p).is_err());
    let mut p = ok();
    p.batch = 8;
    p.window = Some(4);
    assert!(simulate_pipeline(&p).is_err());
    let mut p = ok();
    p.stages.push(cpu("decode", "central", None, vec![1]));
    p.workers = 0;
    assert!(simulate_pipeline(&p).is_err());
    let mut p = ok();
    p.arrivals_ns = Some(Arc::from(vec![0u64, 1]));
    assert!(simulate_pipeline(&p).is_err());
    let mut p = ok();
    p.cores = Some(0.0);
    assert!(simulate_pipeline(&p).is_err());
}

/// Simulated time that would pass `u64::MAX` ns is a typed error naming the stage, never a
/// clock stuck at `u64::MAX` (which read "0 items/s" and "p99 batch 0 ns").
#[test]
fn simulated_time_that_would_overflow_is_an_error() {
    use scheduler::SimPipelineError;
    let overflow = |p: &SimPipeline| match simulate_pipeline(p) {
        Err(SimPipelineError::TimeOverflow { stage, .. }) => stage,
        other => panic!("expected a time overflow, got {other:?}"),
    };
    // One cost of u64::MAX: the first item already ends past the clock.
    let p = SimPipeline::new(vec![blocking("read", 2, vec![u64::MAX])], 1, 3);
    assert_eq!(overflow(&p), "read");
    // 100 items × 1e18 ns on one thread: each fits, their sum does not.
    let p = SimPipeline::new(
        vec![blocking("read", 1, vec![1_000_000_000_000_000_000])],
        1,
        100,
    );
    assert_eq!(overflow(&p), "read");
    // A cpu stage stretched past the clock by a tiny share of a core.
    let mut p = SimPipeline::new(vec![cpu("decode", "central", None, vec![250_000])], 2, 100);
    p.cores = Some(1e-12);
    assert_eq!(overflow(&p), "decode");
    let mut p = SimPipeline::new(vec![cpu("decode", "central", None, vec![u64::MAX])], 1, 1);
    p.cores = Some(0.5);
    assert_eq!(overflow(&p), "decode");
    // Just below the clock's end is fine, and exact.
    let p = SimPipeline::new(vec![blocking("read", 1, vec![u64::MAX / 4])], 1, 3);
    let r = simulate_pipeline(&p).unwrap();
    assert_eq!(r.elapsed_ns, u64::MAX / 4 * 3);
    assert_eq!(r.items, 3);
}

/// Sizes beyond the documented limits are refused before anything is allocated for them (a
/// `Context` of `usize::MAX` workers panicked with "capacity overflow"), and the default window
/// of huge settings does not wrap.
#[test]
fn sizes_above_the_limits_are_refused_before_allocating() {
    use scheduler::SimPipelineError;
    let invalid = |p: &SimPipeline| match simulate_pipeline(p) {
        Err(SimPipelineError::Invalid(e)) => e.message().to_string(),
        other => panic!("expected an invalid pipeline, got {other:?}"),
    };
    let mut p = SimPipeline::new(
        vec![cpu("decode", "central", None, vec![1])],
        usize::MAX,
        10,
    );
    assert!(invalid(&p).contains("workers"), "{}", invalid(&p));
    p.workers = SimPipeline::MAX_WORKERS + 1;
    assert!(invalid(&p).contains(&SimPipeline::MAX_WORKERS.to_string()));
    let p = SimPipeline::new(vec![blocking("read", usize::MAX, vec![1])], 1, 10);
    let m = invalid(&p);
    assert!(m.contains("read") && m.contains("concurrency"), "{m}");
    let mut p = SimPipeline::new(vec![blocking("read", 2, vec![1])], 1, 10);
    p.stages[0].queue = Some(usize::MAX);
    let m = invalid(&p);
    assert!(m.contains("read") && m.contains("queue"), "{m}");
    let mut p = SimPipeline::new(vec![blocking("read", 2, vec![1])], 1, 10);
    p.batch = usize::MAX;
    let m = invalid(&p);
    assert!(m.contains("batch"), "{m}");
    // At the limits the default window is exact: 2 × (c + q) summed over stages.
    let mut p = SimPipeline::new(
        vec![blocking("read", SimPipeline::MAX_CONCURRENCY, vec![1])],
        1,
        10,
    );
    p.stages[0].queue = Some(SimPipeline::MAX_QUEUE);
    assert_eq!(
        p.window(),
        2 * (SimPipeline::MAX_CONCURRENCY + SimPipeline::MAX_QUEUE)
    );
    assert_eq!(simulate_pipeline(&p).unwrap().items, 10);
}
