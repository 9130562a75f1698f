//! # strategies — the scheduling policies of schedlab
//!
//! One file per strategy, each a small type implementing [`scheduler::Strategy`], parsed from
//! a spec string and listed in the [`registry`]. Strategies only answer questions ("place
//! these tasks", "worker w is free: what next?"); the engines in `scheduler` own time, so every
//! strategy runs unchanged on real threads and in the simulator.
//!
//! | spec | policy |
//! |---|---|
//! | `round-robin` | static: task i → worker i mod P |
//! | `block` | static contiguous blocks |
//! | `central(chunk=1)` | one shared queue, fixed chunks (larger while the queue is very long) |
//! | `guided(min=1)` | shared queue, chunk ⌈remaining/P⌉ |
//! | `work-stealing(victim=random\|numa\|hier,steal=half\|one\|work,order=fifo\|lifo)` | per-worker deques, random victims |
//! | `spt`, `lpt` | tasks in exact order of estimated cost (presorted runs) |
//! | `weighted-rr(weights=auto\|w1,w2,…)` | static smooth weighted round-robin |
//! | `range-stealing` | per-worker index ranges, split in half by thieves |
//! | `factoring` | FAC2: batches of P equal chunks, each batch half of what is left |
//! | `tss` | trapezoid self-scheduling: chunks falling linearly from n/2P to 1 |
//! | `awf` | adaptive weighted factoring: factoring chunks scaled by measured worker speed |
//! | `adaptive-spt(range=64,first=shortest\|longest)` | SPT/LPT on per-id-range costs learned online |
//! | `jsq(d=2)` | each task to the least loaded of d sampled workers (power of d choices) |
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use scheduler::{run_threads, RunSpec, Tasks};
//!
//! let strategy = strategies::parse("work-stealing(victim=random,steal=half)").unwrap();
//! let count = AtomicUsize::new(0);
//! let report = run_threads(&RunSpec::new(2), strategy.as_ref(), &Tasks::closed(10_000), |_, _| {
//!     count.fetch_add(1, Ordering::Relaxed);
//! })
//! .unwrap();
//! assert_eq!(count.load(Ordering::Relaxed), 10_000);
//! assert_eq!(report.executed, 10_000);
//! ```
#![deny(missing_docs)]

mod params;
mod placement;
mod priority;
mod queues;
mod registry;
mod self_scheduling;

mod adaptive_spt;
mod awf;
mod block;
mod central;
mod factoring;
mod guided;
mod jsq;
mod lpt;
mod range_stealing;
mod round_robin;
mod spt;
mod tss;
mod weighted_rr;
mod work_stealing;

pub use adaptive_spt::AdaptiveSpt;
pub use awf::Awf;
pub use block::Block;
pub use central::Central;
pub use factoring::Factoring;
pub use guided::Guided;
pub use jsq::Jsq;
pub use lpt::Lpt;
pub use range_stealing::RangeStealing;
pub use registry::{parse, registry, Entry, Param, REGISTRY};
pub use round_robin::RoundRobin;
pub use spt::Spt;
pub use tss::Tss;
pub use weighted_rr::WeightedRoundRobin;
pub use work_stealing::{Amount, OwnerOrder, Victim, WorkStealing};
