//! No lost task, ever: every strategy runs every id exactly once, closed or streaming.

mod common;

use common::{all_specs, Counts};
use scheduler::{run_threads, RunSpec, Tasks, Topology};

#[test]
fn closed_runs_execute_every_id_exactly_once() {
    for spec in all_specs() {
        let strategy = strategies::parse(&spec).unwrap();
        for p in [1, 2, 3, 8] {
            for n in [0, 1, 7, 1000, 100_000] {
                let counts = Counts::new(n);
                let run = RunSpec::new(p)
                    .with_topology(Topology::synthetic(2, 4))
                    .with_seed(n as u64);
                let report = run_threads(&run, strategy.as_ref(), &Tasks::closed(n), |id, w| {
                    assert!(w < p);
                    counts.hit(id);
                })
                .unwrap();
                let what = format!("{spec} P={p} n={n}");
                counts.assert_once(&what);
                assert_eq!(report.executed + report.failed, n as u64, "{what}");
                assert_eq!(report.failed, 0, "{what}");
                let per_worker: u64 = report.per_worker.iter().map(|w| w.tasks).sum();
                assert_eq!(per_worker, n as u64, "{what}");
            }
        }
    }
}

#[test]
fn streaming_submissions_execute_every_id_exactly_once() {
    // Tasks released over ~4 ms in bursts: submissions land while workers run or sleep.
    let n = 2000;
    let release: Vec<u64> = (0..n as u64).map(|j| (j / 50) * 100_000).collect();
    for spec in all_specs() {
        let strategy = strategies::parse(&spec).unwrap();
        for p in [1, 3, 8] {
            let counts = Counts::new(n);
            let tasks = Tasks {
                n,
                release_ns: Some(&release),
                ..Tasks::default()
            };
            let report = run_threads(&RunSpec::new(p), strategy.as_ref(), &tasks, |id, _| {
                counts.hit(id)
            })
            .unwrap();
            counts.assert_once(&format!("{spec} P={p} streaming"));
            assert_eq!(report.executed, n as u64);
            // Nothing completes before it is released.
            assert!(report.makespan_ns >= *release.last().unwrap());
        }
    }
}

#[test]
fn oversubscription_is_reported() {
    let strategy = strategies::parse("central").unwrap();
    let run = RunSpec::new(4).with_topology(Topology::synthetic(1, 2));
    let report = run_threads(&run, strategy.as_ref(), &Tasks::closed(10), |_, _| {}).unwrap();
    assert!(report.oversubscribed);
    assert!(report.notes.iter().any(|n| n.contains("oversubscribed")));
}

#[test]
fn untimed_runs_execute_every_id_exactly_once() {
    // Timing off takes a different path through the worker loop (no clock per task).
    for spec in all_specs() {
        let strategy = strategies::parse(&spec).unwrap();
        for p in [1, 2, 5] {
            let n = 50_000;
            let counts = Counts::new(n);
            let run = RunSpec::new(p).with_timing(scheduler::Timing::Off);
            let report = run_threads(&run, strategy.as_ref(), &Tasks::closed(n), |id, _| {
                counts.hit(id)
            })
            .unwrap();
            counts.assert_once(&format!("{spec} P={p} timing off"));
            assert_eq!(report.executed, n as u64);
            assert_eq!(report.timing, "off");
        }
    }
}

#[test]
fn pinned_workers_sit_where_the_placement_puts_them() {
    let topology = Topology::detect();
    let strategy = strategies::parse("work-stealing").unwrap();
    for pin in [scheduler::Pin::Cores, scheduler::Pin::Numa] {
        let p = topology.cpus() + 1; // one more than cpus: wraps around
        let run = RunSpec::new(p)
            .with_topology(topology.clone())
            .with_pin(pin);
        let slots = run.slots();
        let report = run_threads(&run, strategy.as_ref(), &Tasks::closed(100), |_, _| {}).unwrap();
        assert_eq!(report.pin, pin.to_string());
        let refused = report.notes.iter().any(|n| n.contains("pinning refused"));
        for (w, slot) in report.per_worker.iter().zip(&slots) {
            assert_eq!(w.node, slot.node);
            if !refused {
                assert_eq!(w.cpu, slot.cpu, "worker {} of {p} pinned elsewhere", w.id);
            }
        }
        assert!(report.oversubscribed);
    }
}

#[test]
fn single_releases_raced_by_every_idle_keeper_run_once_and_in_order() {
    // Ids released one at a time, 20 µs apart: every idle worker keeps time for the next
    // release (threads README, "Open arrivals"), so up to P workers race to hand each one to
    // the strategy. Each id must still run exactly once; on one worker, in release order.
    let n = 1000;
    let release: Vec<u64> = (0..n as u64).map(|j| j * 20_000).collect();
    let tasks = Tasks {
        n,
        release_ns: Some(&release),
        ..Tasks::default()
    };
    let strategy = strategies::parse("central").unwrap();
    for p in [1, 2, 4, 8] {
        let counts = Counts::new(n);
        let order = std::sync::Mutex::new(Vec::with_capacity(n));
        let report = run_threads(&RunSpec::new(p), strategy.as_ref(), &tasks, |id, _| {
            order.lock().unwrap().push(id);
            counts.hit(id)
        })
        .unwrap();
        counts.assert_once(&format!("central P={p} single releases"));
        assert_eq!(report.executed, n as u64);
        if p == 1 {
            let order = order.into_inner().unwrap();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "P=1 out of order");
        }
    }
}
