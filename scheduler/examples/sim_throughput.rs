//! How fast the sim engine simulates: 1,024 workers × 1,000,000 log-normal tasks
//! (mean 100 µs, σ = 1.5), default cost model, two strategies written here (the real ones
//! live in the `strategies` crate, which `scheduler` may not import):
//!
//! - `fifo`: one shared queue (every pick is a serialised shared access);
//! - `local+steal`: tasks dealt round-robin to per-worker queues, idle workers steal one task
//!   from a random victim of their own node first.
//!
//! Run with `cargo run --release -p scheduler --example sim_throughput [-- WORKERS TASKS [STRATEGY]]`
//! (STRATEGY: `fifo` or `local+steal`; both when left out).
//! Prints, per strategy: events simulated, wall seconds and events per second (best of 5 runs),
//! and the rate of the event loop alone (the fixed cost of a run at this P subtracted).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use scheduler::doc_support::FifoStrategy;
use scheduler::{
    run_sim, Attempts, Batch, Context, CostModel, Instance, Next, Pick, RunReport, RunSpec,
    SharedQueue, SmallRng, Source, Strategy, Tasks, Topology, WorkerQueue,
};

/// Log-normal costs with the given mean and σ (Box–Muller on `SmallRng`).
fn lognormal_costs(n: usize, mean_ns: f64, sigma: f64, seed: u64) -> Vec<u64> {
    let mu = mean_ns.ln() - sigma * sigma / 2.0;
    let mut rng = SmallRng::new(seed);
    (0..n)
        .map(|_| {
            let u1 = 1.0 - rng.unit_f64(); // (0, 1]
            let u2 = rng.unit_f64();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            (mu + sigma * z).exp().round().max(1.0) as u64
        })
        .collect()
}

/// Per-worker queues, filled round-robin; an idle worker steals one task, probing every other
/// worker once from a random start, own node first.
#[derive(Debug)]
struct LocalSteal;

struct Queues {
    q: Vec<Mutex<VecDeque<usize>>>,
}

impl SharedQueue for Queues {
    fn submit(&self, batch: Batch<'_>) {
        let p = self.q.len();
        for id in batch.range() {
            self.q[id % p].lock().unwrap().push_back(id);
        }
    }
}

struct Handle {
    me: usize,
    queues: Arc<Queues>,
    nodes: Arc<Vec<usize>>,
    rng: SmallRng,
}

impl WorkerQueue for Handle {
    fn next(&mut self) -> Next {
        let q = &self.queues.q;
        if let Some(task) = q[self.me].lock().unwrap().pop_front() {
            return Next::Task(Pick::one(task, Source::Local));
        }
        let p = q.len();
        let own = self.nodes[self.me];
        let start = self.rng.below(p);
        let mut attempts = Attempts::default();
        for same in [true, false] {
            for k in 0..p {
                let v = (start + k) % p;
                if v == self.me || (self.nodes[v] == own) != same {
                    continue;
                }
                if let Some(task) = q[v].lock().unwrap().pop_back() {
                    let source = Source::Stolen {
                        victim: v,
                        moved: 1,
                    };
                    return Next::Task(Pick::one(task, source).after(attempts));
                }
                attempts.record(own, self.nodes[v]);
            }
        }
        Next::Empty(attempts)
    }
}

impl Strategy for LocalSteal {
    fn spec(&self) -> String {
        "local+steal".into()
    }

    fn build(&self, ctx: &Context) -> Instance {
        let queues = Arc::new(Queues {
            q: (0..ctx.workers())
                .map(|_| Mutex::new(VecDeque::new()))
                .collect(),
        });
        let nodes = Arc::new(ctx.nodes.clone());
        Instance {
            shared: queues.clone(),
            workers: (0..ctx.workers())
                .map(|me| {
                    Box::new(Handle {
                        me,
                        queues: queues.clone(),
                        nodes: nodes.clone(),
                        rng: ctx.rng(me),
                    }) as Box<dyn WorkerQueue>
                })
                .collect(),
        }
    }
}

/// Best wall time of `reps` runs, and the last report.
fn best_of(reps: usize, run: impl Fn() -> RunReport) -> (f64, RunReport) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..reps {
        let t0 = Instant::now();
        let report = run();
        best = best.min(t0.elapsed().as_secs_f64());
        last = Some(report);
    }
    (best, last.expect("at least one repetition"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let workers: usize = args
        .next()
        .map_or(1_024, |a| a.parse().expect("WORKERS: a number"));
    let n: usize = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("TASKS: a number"));
    let only = args.next();
    let reps = 5;
    let costs = lognormal_costs(n, 100_000.0, 1.5, 42);
    let tasks = Tasks::with_costs(&costs);
    let spec = RunSpec::new(workers)
        .with_topology(Topology::synthetic(4, workers.div_ceil(4)))
        .with_seed(7);
    let cost = CostModel::default();
    println!(
        "sim_throughput: {workers} workers, {n} tasks, lognormal(mean=100us,sigma=1.5), 4 nodes, \
         cost model {cost}; best of {reps} runs"
    );
    // The fixed cost of a run (building queues and tallies for P workers, the report): one
    // task per worker.
    let few = vec![1u64; workers];
    let (fixed, _) = best_of(reps, || {
        run_sim(&spec, &FifoStrategy, &Tasks::with_costs(&few), &cost).expect("the run is valid")
    });
    println!("fixed cost per run at P = {workers}: {:.1} ms", fixed * 1e3);
    let strategies: [&dyn Strategy; 2] = [&FifoStrategy, &LocalSteal];
    for strategy in strategies {
        if only.as_ref().is_some_and(|o| *o != strategy.spec()) {
            continue;
        }
        let (secs, report) = best_of(reps, || {
            run_sim(&spec, strategy, &tasks, &cost).expect("the run is valid")
        });
        let events = report.events.unwrap_or(0) as f64;
        println!(
            "{:<12} events {events:>10}  seconds {secs:>7.3}  events/s {:>12.0}  (event loop alone: {:.0}/s; \
             makespan {:.3} ms, efficiency {:.3}, steals {})",
            report.strategy,
            events / secs,
            events / (secs - fixed).max(f64::MIN_POSITIVE),
            report.makespan_ns as f64 / 1e6,
            report.efficiency,
            report.steals,
        );
    }
}
