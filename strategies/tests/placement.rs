//! Strategies place exactly what they promise.

mod common;

use scheduler::{run_threads, RunReport, RunSpec, Tasks};

fn run(spec: &str, run: RunSpec, tasks: &Tasks<'_>, f: impl Fn(usize, usize) + Sync) -> RunReport {
    let strategy = strategies::parse(spec).unwrap();
    let n = tasks.n;
    run_threads(&run.with_timeline(n), strategy.as_ref(), tasks, f).unwrap()
}

/// Task ids per worker, from the report's timeline.
fn ids_by_worker(report: &RunReport) -> Vec<Vec<usize>> {
    let mut by = vec![Vec::new(); report.workers];
    for s in report.timeline.as_ref().expect("timeline requested") {
        by[s.worker].push(s.task);
    }
    for ids in &mut by {
        ids.sort_unstable();
    }
    by
}

#[test]
fn round_robin_gives_task_i_to_worker_i_mod_p() {
    for (p, n) in [(1, 5), (2, 10), (3, 100), (8, 1001)] {
        let report = run("round-robin", RunSpec::new(p), &Tasks::closed(n), |_, _| {});
        for (w, ids) in ids_by_worker(&report).iter().enumerate() {
            let expected: Vec<usize> = (w..n).step_by(p).collect();
            assert_eq!(ids, &expected, "P={p} n={n} worker {w}");
        }
    }
}

#[test]
fn block_gives_contiguous_blocks_of_near_equal_size() {
    for (p, n) in [(1, 5), (2, 10), (3, 100), (8, 1001)] {
        let report = run("block", RunSpec::new(p), &Tasks::closed(n), |_, _| {});
        let mut next = 0;
        for (w, ids) in ids_by_worker(&report).iter().enumerate() {
            let len = n / p + usize::from(w < n % p);
            let expected: Vec<usize> = (next..next + len).collect();
            assert_eq!(ids, &expected, "P={p} n={n} worker {w}");
            next += len;
        }
    }
}

#[test]
fn weighted_rr_shares_follow_the_weights_within_one_task() {
    let cases: [(&str, Vec<f64>, usize); 3] = [
        (
            "weighted-rr(weights=1,1,0.5,0.5)",
            vec![1.0, 1.0, 0.5, 0.5],
            1000,
        ),
        ("weighted-rr(weights=3,1,2)", vec![3.0, 1.0, 2.0], 997),
        ("weighted-rr(weights=auto)", vec![2.0, 1.0], 301),
    ];
    for (spec, weights, n) in cases {
        let p = weights.len();
        let spec_run = RunSpec::new(p).with_speeds(weights.clone());
        let report = run(spec, spec_run, &Tasks::closed(n), |_, _| {});
        let total: f64 = weights.iter().sum();
        for (w, worker) in report.per_worker.iter().enumerate() {
            let share = n as f64 * weights[w] / total;
            assert!(
                (worker.tasks as f64 - share).abs() <= 1.0,
                "{spec}: worker {w} got {} tasks, its share is {share:.2}",
                worker.tasks
            );
        }
    }
}

#[test]
fn spt_and_lpt_order_by_estimate_on_one_worker() {
    let estimates: Vec<u64> = (0..200u64).map(|j| (j * 7919) % 503).collect();
    let tasks = Tasks {
        n: estimates.len(),
        estimate_ns: Some(&estimates),
        ..Tasks::default()
    };
    for (spec, ascending) in [("spt", true), ("lpt", false)] {
        let order = std::sync::Mutex::new(Vec::new());
        run(spec, RunSpec::new(1), &tasks, |id, _| {
            order.lock().unwrap().push(id)
        });
        let seen: Vec<u64> = order
            .into_inner()
            .unwrap()
            .iter()
            .map(|&id| estimates[id])
            .collect();
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        if !ascending {
            sorted.reverse();
        }
        assert_eq!(seen, sorted, "{spec} ran tasks out of estimate order");
    }
}

#[test]
fn a_panicking_task_fails_alone() {
    for spec in common::all_specs() {
        let counts = common::Counts::new(500);
        let strategy = strategies::parse(&spec).unwrap();
        let report = run_threads(
            &RunSpec::new(3),
            strategy.as_ref(),
            &Tasks::closed(500),
            |id, _| {
                counts.hit(id);
                if id == 123 {
                    panic!("sample 123 is corrupt");
                }
            },
        )
        .unwrap();
        counts.assert_once(&spec);
        assert_eq!((report.executed, report.failed), (499, 1), "{spec}");
        assert_eq!(report.failures.len(), 1);
        assert_eq!(report.failures[0].task, 123);
        assert_eq!(report.failures[0].message, "sample 123 is corrupt");
    }
}
