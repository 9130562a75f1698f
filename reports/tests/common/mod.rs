//! A small results fixture made with the sim engine (exact and deterministic), written the way
//! the suite runner writes `runs.jsonl`.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use reports::results::{Coordinates, Layout, RunRow, SuiteMeta};
use scheduler::{CostModel, Labels, Pin, RunSpec, Timing, Topology};
use workloads::{Arrivals, Distribution, Speeds, Workload};

/// One cell of the fixture.
#[derive(Clone, Debug)]
pub struct Cell {
    pub matrix: &'static str,
    pub strategy: String,
    pub workload: String,
    pub workers: usize,
    pub tasks: usize,
    pub speeds: String,
    pub arrivals: String,
    pub estimate_error: f64,
    /// The simulated machine, `NxM` (N nodes of M cpus).
    pub topology: String,
}

impl Cell {
    pub fn new(matrix: &'static str, strategy: &str, workload: &str, workers: usize) -> Self {
        Cell {
            matrix,
            strategy: strategy.into(),
            workload: workload.into(),
            workers,
            tasks: 1_000,
            speeds: String::new(),
            arrivals: "closed".into(),
            estimate_error: 0.0,
            topology: "1x16".into(),
        }
    }
}

/// Run one repetition of `cell` on the sim engine; the timeline is kept for repetition 0.
pub fn run(suite: &str, cell: &Cell, repetition: u32) -> RunRow {
    run_as(suite, cell, repetition, "")
}

/// Like [`run`], but the run is made with the sim cost model `cost` (e.g. `local=10us`) while
/// the row keeps `cell`'s coordinates: a stand-in for a strategy whose code got slower (for
/// compare tests). `""` is the default model.
pub fn run_as(suite: &str, cell: &Cell, repetition: u32, cost: &str) -> RunRow {
    let seed = 1 + u64::from(repetition);
    let strategy = strategies::parse(&cell.strategy).expect("fixture strategy");
    let canonical = strategy.spec();
    let cost_model: CostModel = if cost.is_empty() {
        CostModel::default()
    } else {
        cost.parse().expect("fixture cost model")
    };
    let distribution = Distribution::parse(&cell.workload).expect("fixture workload");
    let arrivals = Arrivals::parse(&cell.arrivals).expect("fixture arrivals");
    let speeds = if cell.speeds.is_empty() {
        vec![1.0; cell.workers]
    } else {
        Speeds::parse(&cell.speeds)
            .and_then(|s| s.resolve(cell.workers))
            .expect("fixture speeds")
    };
    let workload = Workload {
        distribution,
        estimate_error: cell.estimate_error,
        arrivals,
    };
    let taskset = workload.generate(cell.tasks, seed).expect("fixture tasks");
    let spec = RunSpec {
        workers: cell.workers,
        pin: Pin::None,
        topology: cell.topology.parse::<Topology>().expect("fixture topology"),
        speeds,
        seed,
        timing: Timing::Tasks,
        timeline_cap: if repetition == 0 { 5_000 } else { 0 },
        labels: Labels {
            workload: workload.distribution.to_string(),
            kind: "virtual".into(),
            arrivals: workload.arrivals.to_string(),
        },
    };
    let tasks = scheduler::Tasks {
        n: taskset.len(),
        cost_ns: Some(&taskset.cost_ns),
        estimate_ns: Some(&taskset.estimate_ns),
        release_ns: Some(&taskset.arrival_ns),
    };
    let report =
        scheduler::run_sim(&spec, strategy.as_ref(), &tasks, &cost_model).expect("fixture run");
    let coords = Coordinates {
        engine: "sim".into(),
        kind: "virtual".into(),
        strategy: canonical,
        workload: cell.workload.clone(),
        workers: cell.workers,
        tasks: cell.tasks,
        speeds: cell.speeds.clone(),
        arrivals: cell.arrivals.clone(),
        estimate_error: cell.estimate_error,
        pin: "none".into(),
        topology: cell.topology.clone(),
        cost: String::new(),
    };
    RunRow {
        suite: suite.into(),
        matrix: cell.matrix.into(),
        cell: coords.key(),
        command: format!(
            "schedlab run --engine sim --strategy '{}' --workload '{}' --workers {} --tasks {} --seed {seed}",
            cell.strategy, cell.workload, cell.workers, cell.tasks
        ),
        coords,
        repetition,
        seed,
        wall_ms: 0.0,
        report,
    }
}

/// The cells of a small suite with every axis a figure needs.
pub fn cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for w in ["constant(100us)", "lognormal(mean=100us,sigma=1.5)"] {
        for s in ["block", "central", "work-stealing", "lpt"] {
            cells.push(Cell::new("balance", s, w, 4));
        }
    }
    for p in [1, 2, 4, 8, 16] {
        cells.push(Cell::new(
            "scaling",
            "work-stealing",
            "lognormal(mean=100us,sigma=1)",
            p,
        ));
    }
    for rate in [12_000, 20_000, 28_000, 34_000] {
        let mut c = Cell::new("queueing", "central", "exponential(mean=100us)", 4);
        c.arrivals = format!("poisson(rate={rate}/s)");
        c.tasks = 4_000;
        cells.push(c);
    }
    for s in ["spt", "lpt"] {
        for e in [0.0, 0.5, 1.0] {
            let mut c = Cell::new("estimates", s, "lognormal(mean=100us,sigma=1.5)", 4);
            c.estimate_error = e;
            cells.push(c);
        }
    }
    for s in ["weighted-rr", "work-stealing", "round-robin"] {
        let mut c = Cell::new("hetero", s, "constant(100us)", 4);
        c.speeds = "1,1,2,4".into();
        cells.push(c);
    }
    cells
}

/// Run every cell `reps` times.
pub fn rows(suite: &str, cells: &[Cell], reps: u32) -> Vec<RunRow> {
    cells
        .iter()
        .flat_map(|c| (0..reps).map(move |r| run(suite, c, r)))
        .collect()
}

/// Write `rows` (and a meta.json) into `dir` as a results directory.
pub fn write_results(dir: &Path, suite: &str, question: &str, rows: &[RunRow]) {
    std::fs::create_dir_all(dir).unwrap();
    let layout = Layout::new(dir);
    let mut f = std::fs::File::create(layout.runs_jsonl()).unwrap();
    for r in rows {
        writeln!(f, "{}", serde_json::to_string(r).unwrap()).unwrap();
    }
    let meta = SuiteMeta {
        suite: suite.into(),
        question: question.into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: Some("2026-01-01T00:01:00Z".into()),
        hostname: "fixture-host".into(),
        cpus: 16,
        nodes: 1,
        topology_source: "synthetic".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        command: format!("schedlab suite {suite} --engine sim"),
    };
    std::fs::write(
        layout.meta_json(),
        serde_json::to_string_pretty(&meta).unwrap(),
    )
    .unwrap();
}
