//! What both engines do around a run: validate the inputs, place the workers, build the
//! strategy's queues, and describe the run for the report.

use crate::error::{RunError, SpecError};
use crate::report::{Host, Meta, WorkerInfo};
use crate::spec::{RunSpec, Tasks, Timing};
use crate::strategy::{Context, Instance, Strategy};
use crate::topology::Slot;

/// A run ready to start.
pub(crate) struct Setup {
    /// Where each worker sits.
    pub slots: Vec<Slot>,
    /// Each worker's speed.
    pub speeds: Vec<f64>,
    /// The fastest speed.
    pub max_speed: f64,
    /// The strategy's queues for this run.
    pub instance: Instance,
}

/// Validate the spec, the task table and the strategy against each other, then build the
/// strategy's queues for the placed workers.
pub(crate) fn setup(
    spec: &RunSpec,
    strategy: &dyn Strategy,
    tasks: &Tasks<'_>,
) -> Result<Setup, RunError> {
    spec.validate(tasks)?;
    strategy.validate(spec.workers)?;
    let slots = spec.slots();
    let speeds = spec.speeds();
    let ctx = Context {
        nodes: slots.iter().map(|s| s.node).collect(),
        speeds: speeds.clone(),
        seed: spec.seed,
    };
    let instance = strategy.build(&ctx);
    assert_eq!(
        instance.workers.len(),
        spec.workers,
        "strategy {} built {} worker queues for {} workers",
        strategy.spec(),
        instance.workers.len(),
        spec.workers
    );
    let max_speed = speeds.iter().copied().fold(0.0, f64::max);
    Ok(Setup {
        slots,
        speeds,
        max_speed,
        instance,
    })
}

impl Setup {
    /// Per-worker facts for the report; `cpu(w)` is the cpu worker w really ran on, if any.
    pub(crate) fn worker_info(&self, cpu: impl Fn(usize) -> Option<usize>) -> Vec<WorkerInfo> {
        self.slots
            .iter()
            .zip(&self.speeds)
            .enumerate()
            .map(|(w, (slot, &speed))| WorkerInfo {
                cpu: cpu(w),
                node: slot.node,
                speed,
            })
            .collect()
    }
}

/// The report's description of a run.
pub(crate) fn meta(
    engine: &'static str,
    spec: &RunSpec,
    strategy: &dyn Strategy,
    tasks: &Tasks<'_>,
    timing: Timing,
    notes: Vec<String>,
) -> Meta {
    Meta {
        engine,
        strategy: strategy.spec(),
        workload: spec.labels.workload.clone(),
        kind: spec.labels.kind.clone(),
        arrivals: spec.labels.arrivals.clone(),
        pin: spec.pin.to_string(),
        seed: spec.seed,
        tasks: tasks.n,
        timing: timing.label(),
        host: Host {
            cpus: spec.topology.cpus(),
            nodes: spec.topology.nodes.len(),
            topology_source: spec.topology.source,
        },
        timeline_cap: spec.timeline_cap,
        notes,
    }
}

/// The simulator refuses a run whose simulated time could pass this many nanoseconds: 2^63 ns,
/// about 292 years, half of what its `u64` clock holds (the bound below is an estimate, so
/// half the clock is kept as a margin).
pub(crate) const SIM_CLOCK_LIMIT_NS: u64 = 1 << 63;

/// Refuse up front a simulation whose virtual clock could pass [`SIM_CLOCK_LIMIT_NS`].
///
/// The bound: the last release, plus all the work at the slowest worker's speed, plus for every
/// pick (one per task, one more per worker) the dearest charge of each kind the cost model
/// knows, with a probe of every worker (`local + shared + backoff + wake + migrate +
/// P·max(steal_same, steal_cross)`). No run charges more per task than that unless a strategy
/// makes a worker retry without end, and that case is caught by the engine itself, whose clock
/// saturates and fails the run at its end rather than wrapping.
pub(crate) fn check_sim_clock(
    tasks: &Tasks<'_>,
    costs: &[u64],
    speeds: &[f64],
    cost: &crate::sim::CostModel,
) -> Result<(), SpecError> {
    let min_speed = speeds.iter().copied().fold(f64::INFINITY, f64::min);
    let work: f64 = costs.iter().map(|&c| c as f64).sum::<f64>() / min_speed;
    let last_release = tasks
        .release_ns
        .and_then(|r| r.last().copied())
        .unwrap_or(0) as f64;
    let p = speeds.len() as f64;
    let per_pick = cost.local_ns as f64
        + cost.shared_ns as f64
        + cost.backoff_ns as f64
        + cost.wake_ns as f64
        + cost.migrate_ns as f64
        + p * (cost.steal_same_ns.max(cost.steal_cross_ns) as f64);
    let scheduling = (tasks.n as f64 + p) * per_pick;
    let bound = last_release + work + scheduling;
    if bound < SIM_CLOCK_LIMIT_NS as f64 {
        return Ok(());
    }
    Err(SpecError::new(format!(
        "sim: this run's simulated time could reach {} (last release {}, work {} at the \
         slowest speed {}, scheduling costs up to {}), past the simulator's limit of \
         2^63 ns ({}); lower the task costs, the cost model or the release times, or raise the \
         slowest speed",
        human_ns(bound),
        human_ns(last_release),
        human_ns(work),
        if (1e-3..1e6).contains(&min_speed) {
            format!("{min_speed}")
        } else {
            format!("{min_speed:e}")
        },
        human_ns(scheduling),
        human_ns(SIM_CLOCK_LIMIT_NS as f64),
    )))
}

/// The error of a simulation whose clock reached its end (the last line behind
/// [`check_sim_clock`]).
pub(crate) fn clock_overflow() -> RunError {
    SpecError::new(
        "sim: the simulated clock reached 2^64 ns (584 years) and cannot go on; the run is \
         refused rather than reported with a wrapped time (lower the costs or raise the speeds)",
    )
    .into()
}

/// Nanoseconds for a message: `1.5e3 years`, `12.0 days`, `3.2 s`, `250 ns`.
pub(crate) fn human_ns(ns: f64) -> String {
    const YEAR: f64 = 365.25 * 86_400e9;
    if !ns.is_finite() {
        return "an unbounded time".into();
    }
    if ns >= YEAR {
        let y = ns / YEAR;
        if y >= 1e4 {
            format!("{y:.1e} years")
        } else {
            format!("{y:.0} years")
        }
    } else if ns >= 86_400e9 {
        format!("{:.1} days", ns / 86_400e9)
    } else if ns >= 3_600e9 {
        format!("{:.1} hours", ns / 3_600e9)
    } else if ns >= 1e9 {
        format!("{:.1} s", ns / 1e9)
    } else {
        format!("{ns:.0} ns")
    }
}
