//! # loader — a dataset becomes batches on a pool of worker threads, under any strategy
//!
//! Two faces over one engine: a [`Loader`] (one function per sample, batches, epochs, resume)
//! and a [`Pipeline`] of stages (read on blocking threads → decode and augment on the shared
//! CPU workers → batch → collate), whose report names the bottleneck stage; see the
//! [`pipeline`] module. The loader is the pipeline's one-stage case.
//!
//! The input pipeline of a training or inference program: samples of very different cost must
//! arrive as batches, in order, fast enough that the consumer never waits. A [`Dataset`] (a
//! length and a fallible `get(index, &mut worker_state)`) is loaded by persistent worker
//! threads under a scheduling strategy of the `strategies` crate (spec strings such as
//! `work-stealing` or `central(chunk=4)`), one task per sample by default, so one slow sample
//! holds up one worker rather than a whole batch.
//!
//! * [`Sampler`]: sequential, shuffled per epoch from a seed, or any index list;
//!   `shard(rank, world)` for distributed training (padding documented there).
//! * [`LoaderBuilder`]: batch size, [`Remainder`] mode, collate, workers, pinning, strategy,
//!   `prefetch` (batches in flight: the memory bound), ordered or as-ready delivery,
//!   [`Granularity`], a per-sample timeout, and [`LoaderBuilder::pytorch_style`], PyTorch's scheme
//!   (one task per batch, round-robin, 2 batches per worker), for comparison.
//! * [`Loader::epoch`] iterates `Result<Batch, LoaderError>`: a failing or panicking sample is
//!   an error naming its index, at its batch's position; loading goes on. The next epoch's
//!   first batches are loaded while the consumer finishes this one.
//! * [`Loader::state`] / [`Loader::restore`]: a small serde value to resume mid-epoch exactly.
//! * [`LoaderReport`]: samples/s against the limit `workers / mean sample time`, consumer
//!   stall, time to first batch, buffer occupancy, per-worker busy time and LIF, steals, and a
//!   recommended worker count and prefetch from Little's law.
//!
//! ```
//! use loader::{Loader, Remainder};
//!
//! // 1,000 "samples": a vector of 4 floats each; index 13 is broken.
//! let dataset = loader::from_fn(1_000, |i| {
//!     if i == 13 { Err(format!("corrupt record")) } else { Ok(vec![i as f32; 4]) }
//! });
//! let mut loader = Loader::builder(dataset)
//!     .batch_size(32)
//!     .remainder(Remainder::Drop)
//!     .shuffle(7)
//!     .workers(4)
//!     .strategy("work-stealing")
//!     .collate(|samples: Vec<Vec<f32>>| samples.concat()) // one flat f32 batch
//!     .build()?;
//!
//! let (mut good, mut bad) = (0, 0);
//! for batch in loader.epoch(0) {
//!     match batch {
//!         Ok(b) => { assert_eq!(b.data.len(), 32 * 4); good += 1 }
//!         Err(e) => { assert_eq!(e.index(), Some(13)); bad += 1 }
//!     }
//! }
//! assert_eq!((good, bad), (30, 1)); // ⌊1000 / 32⌋ = 31 batches, one holds sample 13
//! let report = loader.report().unwrap();
//! assert_eq!(report.samples, 31 * 32);
//! println!("{report}");
//! # Ok::<(), loader::LoaderError>(())
//! ```
//!
//! Several epochs, as in the workspace README:
//!
//! ```
//! use loader::{Loader, Remainder};
//!
//! let dataset = loader::from_fn(10_000, |i| Ok::<_, String>(vec![i as f32; 4]));
//! let mut loader = Loader::builder(dataset)
//!     .batch_size(32).remainder(Remainder::Drop).shuffle(7)   // a new permutation per epoch
//!     .workers(8).strategy("work-stealing")                     // or .pytorch_style()
//!     .collate(|samples: Vec<Vec<f32>>| samples.concat())
//!     .build()?;
//! for epoch in 0..3 {
//!     for batch in loader.epoch(epoch) {
//!         let batch = batch?; // an Err names the bad sample's index; the epoch goes on after it
//!         assert_eq!(batch.data.len(), 32 * 4);
//!     }
//!     println!("{}", loader.report().unwrap()); // rate against the limit, stall, sizing advice
//! }
//! // a checkpoint: where the loader stands, to `restore` after a restart
//! let state = loader.state();
//! assert_eq!((state.epoch, state.batches_done), (3, 0));
//! # Ok::<(), loader::LoaderError>(())
//! ```
#![deny(missing_docs)]

mod dataset;
mod error;
#[allow(clippy::module_inception)]
mod loader;
pub mod pipeline;
mod plan;
mod report;
mod sampler;
pub mod source;
mod sync;

pub use dataset::{from_fn, from_fn_with_state, Dataset, FnDataset, FromFn};
pub use error::LoaderError;
pub use loader::{
    Batch, Granularity, Loader, LoaderBuilder, LoaderEpoch, LoaderState, DEFAULT_STRATEGY,
};
#[allow(deprecated)]
pub use loader::{Builder, Epoch, OnError};
pub use pipeline::{
    Autotune, Fingerprint, MaxFailures, OnFailure, Pipeline, PipelineBuilder, PipelineEpoch,
    PipelineError, PipelineReport, PipelineState, Stage, TuneChange, TunePoint, Tuning, WindowRule,
};
pub use plan::Remainder;
pub use report::{LoaderReport, WorkerLoad};
pub use sampler::Sampler;
pub use scheduler::thread_limit;
