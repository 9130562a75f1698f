//! What both engines do around a run: validate the inputs, place the workers, build the
//! strategy's queues, and describe the run for the report.

use crate::error::RunError;
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
