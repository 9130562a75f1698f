//! # scheduler — the core of schedlab
//!
//! Task ids, the strategy traits, the engines that run strategies (real threads, and a
//! deterministic simulator), topology and pinning, and the run metrics.
//!
//! *A strategy is policy, an engine is time.* A [`Strategy`] decides where tasks go and where a
//! free worker looks next; it never blocks or reads a clock. An engine owns the workers and
//! time, and records every event into a [`RunReport`]. The same strategy value runs on
//! [`run_threads`] (real OS threads, optionally pinned) and on [`run_sim`] (a deterministic
//! discrete-event simulation in virtual nanoseconds, charging the scheduling costs of a
//! [`CostModel`]: exact, repeatable, and able to model 1,024 workers on NUMA topologies).
//!
//! Tasks are indices `0..n` ([`TaskId`]): a run executes `f(task, worker)` for each id, exactly
//! once; a task that panics is reported as failed.
//!
//! For a long-lived program (a data loader, a server) the threads engine is a [`Pool`] of
//! persistent workers with worker-local state; each [`Job`] on it is one strategy instance fed
//! ids while the workers run, with back-pressure (`max_in_flight`) and results handed back in
//! id order or as ready. [`run_threads`] is one closed job on a fresh pool. See
//! `examples/pool_map.rs` for a parallel map with results in order.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use scheduler::{run_threads, RunSpec, Tasks};
//! # use scheduler::doc_support::FifoStrategy as SomeStrategy;
//! // `SomeStrategy` stands for any strategy, e.g. one parsed by the `strategies` crate.
//! let sum = AtomicU64::new(0);
//! let report = run_threads(&RunSpec::new(3).with_seed(1), &SomeStrategy, &Tasks::closed(1000), |task, _worker| {
//!     sum.fetch_add(task as u64, Ordering::Relaxed);
//! })
//! .unwrap();
//! assert_eq!(sum.load(Ordering::Relaxed), 999 * 1000 / 2);
//! assert_eq!((report.executed, report.failed), (1000, 0));
//! assert!(report.lif >= 1.0);
//! ```
#![deny(missing_docs)]

mod engine;
mod error;
mod report;
mod rng;
mod sim;
mod spec;
mod strategy;
#[doc(hidden)]
pub mod sync;
mod threads;
mod topology;
pub mod window;

#[cfg(feature = "hwloc")]
mod hwloc;

#[doc(hidden)]
pub mod doc_support;

pub use error::{RunError, SpecError};
pub use report::{
    imbalance, Failure, Host, Quantiles, RunReport, Span, WorkerReport, MAX_LISTED_FAILURES,
};
pub use rng::SmallRng;
pub use sim::{
    run_sim, run_sim_with, simulate_pipeline, CostModel, SimPipeline, SimPipelineError,
    SimPipelineReport, SimStage, SimStageKind, SimStageReport,
};
pub use sim::{
    PipelineTrace, TraceStage, MAX_PIPELINE_TRACE_BYTES, PIPELINE_TRACE_HEADER,
    PIPELINE_TRACE_MAGIC,
};
pub use spec::{Labels, RunSpec, Tasks, Timing};
pub use strategy::{
    Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, Source, Strategy, WorkerQueue,
};
pub use threads::{
    over_thread_limit, run_threads, run_threads_with_init, thread_limit, Delivery, Job, JobError,
    JobOptions, Outcome, Pool, PoolBuilder, Submitter, FALLBACK_THREAD_LIMIT,
};
pub use topology::{Pin, Slot, Topology, TopologySource};

/// A task: an index into the run's task table (`0..n`).
pub type TaskId = usize;

/// A worker: an index `0..P`.
pub type WorkerId = usize;
