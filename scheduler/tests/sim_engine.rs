//! The sim engine on the FIFO doc strategy and on scripted strategies: exactly-once execution,
//! determinism, exact makespans, speeds, open arrivals, the cost model's charges, and errors.

use std::collections::VecDeque;
use std::sync::Arc;

use scheduler::doc_support::FifoStrategy;
use scheduler::{
    run_sim, run_sim_with, Attempts, Batch, Context, CostModel, Instance, Next, Pick, RunError,
    RunSpec, SharedQueue, SmallRng, Source, Span, Strategy, Tasks, Timing, Topology, WorkerQueue,
};

fn spec(workers: usize) -> RunSpec {
    RunSpec::new(workers).with_topology(Topology::synthetic(1, 2))
}

fn random_costs(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::new(seed);
    (0..n).map(|_| 1 + rng.below(10_000) as u64).collect()
}

#[test]
fn every_task_runs_exactly_once() {
    let costs = random_costs(1_000, 3);
    for p in [1, 3, 7, 64] {
        let mut seen = vec![0u32; costs.len()];
        let report = run_sim_with(
            &spec(p).with_timeline(10_000),
            &FifoStrategy,
            &Tasks::with_costs(&costs),
            &CostModel::default(),
            |s| seen[s.task] += 1,
        )
        .unwrap();
        assert!(seen.iter().all(|&k| k == 1), "P={p}");
        assert_eq!((report.executed, report.failed), (1_000, 0));
        let timeline = report.timeline.unwrap();
        let mut from_timeline = vec![0u32; costs.len()];
        for s in &timeline {
            from_timeline[s.task] += 1;
            assert!(s.end_ns >= s.start_ns + costs[s.task]);
        }
        assert!(from_timeline.iter().all(|&k| k == 1), "P={p}");
        let per_worker: u64 = report.per_worker.iter().map(|w| w.tasks).sum();
        assert_eq!(per_worker, 1_000);
    }
}

#[test]
fn same_inputs_give_byte_identical_reports() {
    let costs = random_costs(5_000, 1);
    let mut release = Vec::with_capacity(costs.len());
    let mut t = 0u64;
    let mut rng = SmallRng::new(2);
    for _ in &costs {
        t += rng.below(1_500) as u64;
        release.push(t);
    }
    let tasks = Tasks {
        release_ns: Some(&release),
        ..Tasks::with_costs(&costs)
    };
    let run = || {
        let s = RunSpec::new(8)
            .with_topology(Topology::synthetic(2, 4))
            .with_speeds(vec![1.0, 1.0, 0.5, 2.0, 1.0, 1.0, 0.75, 1.0])
            .with_seed(11)
            .with_timeline(100);
        run_sim(&s, &FifoStrategy, &tasks, &CostModel::default())
            .unwrap()
            .to_json()
    };
    let first = run();
    assert_eq!(first, run());
    assert!(first.contains("\"engine\":\"sim\""));
    assert!(first.contains("\"events\":"));
}

#[test]
fn constant_costs_give_exact_makespans() {
    let c = 1_000u64;
    for p in [1, 2, 3, 4, 8, 13] {
        for n in [1, 7, 8, 100, 257] {
            let costs = vec![c; n];
            let r = run_sim(
                &spec(p),
                &FifoStrategy,
                &Tasks::with_costs(&costs),
                &CostModel::zero(),
            )
            .unwrap();
            assert_eq!(r.makespan_ns, n.div_ceil(p) as u64 * c, "P={p} n={n}");
            assert_eq!(r.total_work_ns, n as u64 * c);
            assert_eq!(r.overhead_ns, 0, "zero costs charge nothing");
            if n % p == 0 {
                assert_eq!(r.lif, 1.0, "P={p} n={n}");
                assert_eq!(r.efficiency, 1.0, "P={p} n={n}");
            }
        }
    }
}

#[test]
fn speeds_are_honoured() {
    let costs = vec![1_000u64; 3];
    let s = spec(2).with_speeds(vec![1.0, 0.5]);
    let r = run_sim(
        &s,
        &FifoStrategy,
        &Tasks::with_costs(&costs),
        &CostModel::zero(),
    )
    .unwrap();
    // t=0: w0 takes task 0 (1000 ns), w1 task 1 (2000 ns); t=1000: w0 takes task 2.
    assert_eq!(r.makespan_ns, 2_000);
    assert_eq!(
        r.per_worker
            .iter()
            .map(|w| (w.busy_ns, w.tasks))
            .collect::<Vec<_>>(),
        vec![(2_000, 2), (2_000, 1)]
    );
    assert_eq!(r.per_worker[1].speed, 0.5);
    // Rounded to the nearest nanosecond.
    let s = spec(1).with_speeds(vec![1.5]);
    let r = run_sim(
        &s,
        &FifoStrategy,
        &Tasks::with_costs(&[1_000]),
        &CostModel::zero(),
    )
    .unwrap();
    assert_eq!(r.makespan_ns, 667);
}

#[test]
fn open_arrivals_wait_and_latency_by_hand() {
    let costs = [10u64, 10, 10];
    let release = [0u64, 5, 30];
    let tasks = Tasks {
        release_ns: Some(&release),
        ..Tasks::with_costs(&costs)
    };
    let mut spans = Vec::new();
    let r = run_sim_with(&spec(1), &FifoStrategy, &tasks, &CostModel::zero(), |s| {
        spans.push(s)
    })
    .unwrap();
    // Task 0 runs 0..10; task 1 arrives at 5, runs 10..20; the worker parks at 20; task 2
    // arrives at 30 and wakes it: 30..40.
    let span = |task, start_ns, end_ns| Span {
        worker: 0,
        task,
        start_ns,
        end_ns,
        stolen: false,
    };
    assert_eq!(
        spans,
        vec![span(0, 0, 10), span(1, 10, 20), span(2, 30, 40)]
    );
    assert_eq!(r.makespan_ns, 40);
    assert_eq!((r.wait_ns.max, r.latency_ns.max), (5, 15));
    assert!(
        (r.wait_ns.mean - 5.0 / 3.0).abs() < 1e-9,
        "{}",
        r.wait_ns.mean
    );
    assert!(
        (r.latency_ns.mean - 35.0 / 3.0).abs() < 1e-9,
        "{}",
        r.latency_ns.mean
    );
    // N(t) = 1, 2, 1, 0, 1 on [0,5), [5,10), [10,20), [20,30), [30,40): ∫ = 35 = Σ latency.
    assert_eq!(r.mean_in_system, Some(35.0 / 40.0));
    // Events: arrivals at 0, 5, 30; the worker at 0, 10, 20, 30 (wake-up), 40.
    assert_eq!(r.events, Some(8));

    // A wake-up latency delays only the task that found the worker parked.
    let wake: CostModel = "zero,wake=3ns".parse().unwrap();
    let r = run_sim(&spec(1), &FifoStrategy, &tasks, &wake).unwrap();
    assert_eq!(r.makespan_ns, 43);
    assert_eq!(
        r.overhead_ns, 0,
        "parked time and wake latency are not overhead"
    );
}

#[test]
fn shared_queue_is_a_single_server() {
    // Zero-length tasks, 4 workers, only shared accesses cost: they queue one behind another.
    let costs = vec![0u64; 8];
    let model: CostModel = "zero,shared=100ns".parse().unwrap();
    let mut starts = Vec::new();
    let r = run_sim_with(
        &spec(4),
        &FifoStrategy,
        &Tasks::with_costs(&costs),
        &model,
        |s| starts.push(s.start_ns),
    )
    .unwrap();
    assert_eq!(starts, (1..=8).map(|k| k * 100).collect::<Vec<u64>>());
    assert_eq!(r.makespan_ns, 800);
    assert_eq!(r.per_worker.iter().map(|w| w.shared_pops).sum::<u64>(), 8);
}

/// A strategy that answers from a fixed script per worker (then `Empty`), ignoring submissions.
#[derive(Debug, Clone)]
struct Scripted(Vec<Vec<Next>>);

struct Ignore;
impl SharedQueue for Ignore {
    fn submit(&self, _: Batch<'_>) {}
}

struct Script(VecDeque<Next>);
impl WorkerQueue for Script {
    fn next(&mut self) -> Next {
        self.0
            .pop_front()
            .unwrap_or(Next::Empty(Attempts::default()))
    }
}

impl Strategy for Scripted {
    fn spec(&self) -> String {
        "scripted".into()
    }
    fn build(&self, ctx: &Context) -> Instance {
        assert_eq!(ctx.workers(), self.0.len());
        Instance {
            shared: Arc::new(Ignore),
            workers: self
                .0
                .iter()
                .map(|s| Box::new(Script(s.iter().copied().collect())) as Box<dyn WorkerQueue>)
                .collect(),
        }
    }
}

fn task(task: usize, source: Source, same_node: u32, cross_node: u32) -> Next {
    Next::Task(Pick::one(task, source).after(Attempts {
        same_node,
        cross_node,
    }))
}

#[test]
fn cost_model_charges_each_answer() {
    // Two workers on two nodes, default costs.
    let c = CostModel::default();
    let script = Scripted(vec![
        vec![
            Next::Retry(Attempts {
                same_node: 1,
                cross_node: 0,
            }),
            task(0, Source::Local, 0, 0),
        ],
        vec![
            task(
                1,
                Source::Stolen {
                    victim: 0,
                    moved: 1,
                },
                0,
                1,
            ),
            task(2, Source::Shared, 0, 0),
        ],
    ]);
    let costs = [1_000u64; 3];
    let s = RunSpec::new(2)
        .with_topology(Topology::synthetic(2, 1))
        .with_timeline(10);
    let r = run_sim(&s, &script, &Tasks::with_costs(&costs), &c).unwrap();
    let t = r.timeline.as_ref().unwrap();
    // w0: retry at 0 costs one same-node attempt and a back-off, then a local pop.
    let w0_start = c.steal_same_ns + c.backoff_ns + c.local_ns;
    // w1: one failed cross-node attempt, then the steal itself (cross-node), and the stolen
    // task pays the migration penalty; then a shared pop.
    let w1_start = 2 * c.steal_cross_ns;
    let w1_end = w1_start + 1_000 + c.migrate_ns;
    let expected = [
        (0, 0, w0_start, w0_start + 1_000),
        (1, 1, w1_start, w1_end),
        (1, 2, w1_end + c.shared_ns, w1_end + c.shared_ns + 1_000),
    ];
    let mut got: Vec<_> = t
        .iter()
        .map(|s| (s.worker, s.task, s.start_ns, s.end_ns))
        .collect();
    got.sort_by_key(|x| x.1);
    assert_eq!(got, expected);
    assert_eq!(r.makespan_ns, w1_end + c.shared_ns + 1_000);
    let w = &r.per_worker;
    assert_eq!((w[0].steal_attempts, w[1].steal_attempts), (1, 1));
    assert_eq!((w[1].steals, w[1].tasks_moved, w[1].shared_pops), (1, 1, 1));
    assert_eq!(w[0].overhead_ns, w0_start);
    assert_eq!(w[1].overhead_ns, w1_start + c.shared_ns);
    assert_eq!((w[0].node, w[1].node), (0, 1));
    assert!(r.notes.iter().any(|n| n.contains("cost model: local=20ns")));
}

#[test]
fn a_steal_of_many_wakes_the_lowest_parked_worker() {
    // w0..w2 find nothing at 0 and park; at t=0 w3 steals 2 tasks (moved = 2), which wakes w0
    // only; w0 then runs task 1.
    let script = Scripted(vec![
        vec![
            Next::Empty(Attempts::default()),
            task(1, Source::Local, 0, 0),
        ],
        vec![
            Next::Empty(Attempts::default()),
            task(2, Source::Local, 0, 0),
        ],
        vec![Next::Empty(Attempts::default())],
        vec![task(
            0,
            Source::Stolen {
                victim: 2,
                moved: 2,
            },
            0,
            0,
        )],
    ]);
    let costs = [10u64, 10, 10];
    let model: CostModel = "zero,wake=5ns".parse().unwrap();
    let mut spans = Vec::new();
    let err = run_sim_with(&spec(4), &script, &Tasks::with_costs(&costs), &model, |s| {
        spans.push(s)
    })
    .unwrap_err();
    // w1 is never woken, so task 2 never runs: the engine reports the lost task.
    assert!(
        err.to_string().contains("stopped handing out tasks"),
        "{err}"
    );
    let got: Vec<_> = spans
        .iter()
        .map(|s| (s.worker, s.task, s.start_ns))
        .collect();
    assert_eq!(got, vec![(3, 0, 0), (0, 1, 5)]);
}

#[test]
fn contract_breaches_are_errors_not_hangs() {
    let costs = [10u64, 10];
    let stolen_from_5 = Source::Stolen {
        victim: 5,
        moved: 1,
    };
    let cases = [
        (
            "twice",
            vec![task(0, Source::Local, 0, 0), task(0, Source::Local, 0, 0)],
            "task 0 twice",
        ),
        ("out of range", vec![task(9, Source::Local, 0, 0)], "task 9"),
        ("no victim", vec![task(0, stolen_from_5, 0, 0)], "worker 5"),
    ];
    for (what, script, expected) in cases {
        let err = run_sim(
            &spec(1),
            &Scripted(vec![script]),
            &Tasks::with_costs(&costs),
            &CostModel::zero(),
        )
        .unwrap_err();
        assert!(matches!(err, RunError::Invalid(_)), "{what}: {err}");
        assert!(err.to_string().contains(expected), "{what}: {err}");
    }
}

#[test]
fn inputs_are_validated() {
    let err = run_sim(
        &spec(2),
        &FifoStrategy,
        &Tasks::closed(10),
        &CostModel::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cost_ns"), "{err}");
    let err = run_sim(
        &spec(0),
        &FifoStrategy,
        &Tasks::with_costs(&[1]),
        &CostModel::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("workers"), "{err}");
    let r = run_sim(
        &spec(3),
        &FifoStrategy,
        &Tasks::with_costs(&[]),
        &CostModel::default(),
    )
    .unwrap();
    assert_eq!((r.executed, r.makespan_ns, r.events), (0, 0, Some(0)));
}

#[test]
fn timing_off_is_measured_anyway() {
    let costs = [100u64; 4];
    let s = spec(2).with_timing(Timing::Off);
    let r = run_sim(
        &s,
        &FifoStrategy,
        &Tasks::with_costs(&costs),
        &CostModel::zero(),
    )
    .unwrap();
    assert_eq!(r.timing, "tasks");
    assert!(r.notes.iter().any(|n| n.starts_with("timing off")));
    assert_eq!(r.per_worker[0].busy_ns, 200);
}

#[test]
fn synthetic_topologies_place_workers_on_nodes() {
    let costs = [1u64; 8];
    let s = RunSpec::new(8).with_topology("2x4".parse().unwrap());
    let r = run_sim(
        &s,
        &FifoStrategy,
        &Tasks::with_costs(&costs),
        &CostModel::default(),
    )
    .unwrap();
    let nodes: Vec<usize> = r.per_worker.iter().map(|w| w.node).collect();
    assert_eq!(nodes, vec![0, 0, 0, 0, 1, 1, 1, 1]);
    assert_eq!((r.host.nodes, r.host.cpus), (2, 8));
    assert!(!r.oversubscribed);
}

#[test]
fn cost_model_parse_errors_name_the_key() {
    for (text, needle) in [
        ("locl=1ns", "unknown key 'locl'"),
        ("local=1", "'1' is not a duration"),
        ("local=fast", "local"),
        ("shared", "expected key=duration"),
        ("local=1ns,,shared=2ns", "empty argument"),
        ("shared=1ns,zero", "expected key=duration"),
        ("wake=1ns,WAKE=2ns", "given twice"),
    ] {
        let err = text.parse::<CostModel>().unwrap_err().to_string();
        assert!(err.contains(needle), "{text}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
    let err = "x=1ns".parse::<CostModel>().unwrap_err().to_string();
    assert!(
        err.contains(
            "allowed keys: local, shared, steal_same, steal_cross, migrate, backoff, wake"
        ),
        "{err}"
    );
    let m: CostModel = "default,migrate=5us, wake = 1ms".parse().unwrap();
    assert_eq!((m.migrate_ns, m.wake_ns), (5_000, 1_000_000));
    assert_eq!("".parse::<CostModel>().unwrap(), CostModel::default());
    let json = serde_json::to_string(&CostModel::zero()).unwrap();
    assert!(json.contains("\"shared_ns\":0"), "{json}");
}

#[test]
fn report_quantiles_match_exact_arithmetic() {
    // 100 tasks of 1 ms on 4 workers, no overheads: task j completes at (j/4 + 1) ms, so
    // latencies are 1..=25 ms four times each (mean 13 ms) and waits 0..=24 ms (mean 12 ms).
    // Regression: histograms once clamped every value to their initial range (2 ns).
    let costs = vec![1_000_000u64; 100];
    let spec = scheduler::RunSpec::new(4);
    let r = scheduler::run_sim(
        &spec,
        &scheduler::doc_support::FifoStrategy,
        &scheduler::Tasks::with_costs(&costs),
        &scheduler::CostModel::zero(),
    )
    .unwrap();
    let near = |got: f64, want: f64| (got - want).abs() <= want * 1e-3;
    assert!(near(r.latency_ns.mean, 13e6), "{:?}", r.latency_ns);
    assert!(near(r.latency_ns.max as f64, 25e6), "{:?}", r.latency_ns);
    assert!(near(r.latency_ns.p50 as f64, 13e6), "{:?}", r.latency_ns);
    assert!(near(r.wait_ns.mean, 12e6), "{:?}", r.wait_ns);
    assert!(near(r.wait_ns.max as f64, 24e6), "{:?}", r.wait_ns);
}

#[test]
fn a_run_executes_back_to_back_and_is_claimed_whole() {
    // Worker 0 gets tasks 0..3 in one pick (one local pop charged), worker 1 gets task 3.
    let costs = [10u64, 20, 30, 5];
    let cost: CostModel = "zero,local=1ns".parse().unwrap();
    let script = Scripted(vec![
        vec![Next::Task(Pick::run(0, 3, Source::Local))],
        vec![task(3, Source::Local, 0, 0)],
    ]);
    let mut spans = Vec::new();
    let r = run_sim_with(&spec(2), &script, &Tasks::with_costs(&costs), &cost, |s| {
        spans.push((s.worker, s.task, s.start_ns, s.end_ns))
    })
    .unwrap();
    spans.sort();
    assert_eq!(
        spans,
        vec![(0, 0, 1, 11), (0, 1, 11, 31), (0, 2, 31, 61), (1, 3, 1, 6)]
    );
    assert_eq!(r.makespan_ns, 61);
    assert_eq!(r.per_worker[0].tasks, 3);
    assert_eq!(
        r.per_worker[0].overhead_ns, 1,
        "only the pick is charged, not each id"
    );

    // A run overlapping an id already handed out is a contract breach.
    let overlap = Scripted(vec![vec![
        task(1, Source::Local, 0, 0),
        Next::Task(Pick::run(0, 3, Source::Local)),
    ]]);
    let err = run_sim(
        &spec(1),
        &overlap,
        &Tasks::with_costs(&costs),
        &CostModel::zero(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("task 1 twice"), "{err}");
}

#[test]
fn timeline_marks_the_first_task_of_each_steal() {
    let tasks = Tasks::closed(4);
    let costs = [10u64; 4];
    let tasks = Tasks {
        cost_ns: Some(&costs),
        ..tasks
    };
    let report = run_sim(
        &RunSpec::new(2).with_timeline(10),
        &StealOnceStrategy,
        &tasks,
        &CostModel::zero(),
    )
    .unwrap();
    let timeline = report.timeline.clone().unwrap();
    let stolen: Vec<usize> = timeline
        .iter()
        .filter(|s| s.stolen)
        .map(|s| s.task)
        .collect();
    assert_eq!(report.steals as usize, stolen.len());
    assert_eq!(stolen, vec![3], "{timeline:?}");
    assert!(report.to_json().contains("\"stolen\":true"));
}

/// Worker 0 runs ids from the front of one queue; worker 1 steals once, from the back.
#[derive(Debug)]
struct StealOnceStrategy;

struct Ids(std::sync::Mutex<VecDeque<usize>>);

impl SharedQueue for Ids {
    fn submit(&self, batch: Batch<'_>) {
        self.0.lock().unwrap().extend(batch.range());
    }
}

struct StealOnce {
    ids: Arc<Ids>,
    w: usize,
    stole: bool,
}

impl WorkerQueue for StealOnce {
    fn next(&mut self) -> Next {
        let mut q = self.ids.0.lock().unwrap();
        let pick = match (self.w, self.stole) {
            (0, _) => q.pop_front().map(|t| Pick::one(t, Source::Local)),
            (_, false) => q.pop_back().map(|t| {
                self.stole = true;
                Pick::one(
                    t,
                    Source::Stolen {
                        victim: 0,
                        moved: 1,
                    },
                )
            }),
            _ => None,
        };
        pick.map_or(Next::Empty(Attempts::default()), Next::Task)
    }
}

impl Strategy for StealOnceStrategy {
    fn spec(&self) -> String {
        "steal-once".into()
    }
    fn build(&self, ctx: &Context) -> Instance {
        let ids = Arc::new(Ids(Default::default()));
        Instance {
            shared: ids.clone(),
            workers: (0..ctx.workers())
                .map(|w| {
                    Box::new(StealOnce {
                        ids: ids.clone(),
                        w,
                        stole: false,
                    }) as Box<dyn WorkerQueue>
                })
                .collect(),
        }
    }
}
