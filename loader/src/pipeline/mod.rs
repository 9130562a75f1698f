//! Pipelines: a source → stages → the consumer, each stage on the resource it needs.
//!
//! A [`Pipeline`] is built from a source (a [`Sampler`]'s indices, or any iterator made per
//! epoch) and a chain of stages:
//!
//! * [`map`](PipelineBuilder::map) / [`try_map`](PipelineBuilder::try_map) /
//!   [`try_map_with`](PipelineBuilder::try_map_with) (1 → 1; the last two fallible, the last
//!   with per-runner state such as a decoder), [`filter`](PipelineBuilder::filter) (1 → 0..1),
//!   [`flat_map`](PipelineBuilder::flat_map) (1 → 0..n),
//!   [`batch`](PipelineBuilder::batch) (n → 1, a `Vec`), and any `map` after a batch (collate,
//!   whole-batch transforms).
//! * Each stage has a name and a [`Stage`] setting: **`cpu`** stages are jobs on one shared
//!   pool of P CPU workers, so a worker whose stage has nothing to do runs another stage's
//!   work; **`blocking`** stages (reads, network, sleeps) run on threads of their own, as many
//!   as their concurrency, so that waiting never holds a CPU worker.
//! * Items come out **in source order** (the default) or as they are ready, as
//!   `Result<T, PipelineError>`: a failing or panicking item is an error at its position naming
//!   the stage, the source position and the epoch; [`OnFailure`] yields it, skips it, or halts
//!   the epoch after too many.
//! * Memory is bounded: queues between stages are bounded, and each *segment* (the stages up
//!   to a `flat_map`'s output, a `batch`, or the end) admits at most `window` items at a time,
//!   so at most `Σ window` items exist at once; a `flat_map`'s children are made from its
//!   iterator only as the next segment has room, so they count too.
//!   [`Pipeline::held_peak`] reports the largest count seen.
//! * [`PipelineReport`]: per-stage service times, busy shares, queue occupancy, the time each
//!   stage was starved or back-pressured, the pipeline's rate against its limit, and the
//!   **bottleneck** with what one more thread or CPU worker there would give.
//! * [`Pipeline::state`] / [`Pipeline::restore`] resume mid-epoch exactly.
//!
//! ```
//! use loader::{Pipeline, Remainder, Sampler, Stage};
//!
//! // read (waits: a blocking stage) → decode (computes: a cpu stage) → batches of 8
//! let mut pipeline = Pipeline::from_sampler(100, Sampler::sequential())
//!     .map(Stage::blocking("read", 8), |i: usize| vec![i as u8; 4])
//!     .try_map(Stage::cpu("decode"), |bytes: Vec<u8>| {
//!         if bytes[0] == 13 { Err("bad header") } else { Ok(bytes.len() as u32 + bytes[0] as u32) }
//!     })
//!     .batch(8, Remainder::Partial)
//!     .map(Stage::cpu("collate"), |batch: Vec<u32>| batch.iter().sum::<u32>())
//!     .workers(2)
//!     .build()?;
//!
//! let (mut sums, mut errors) = (Vec::new(), Vec::new());
//! for item in pipeline.epoch(0) {
//!     match item {
//!         Ok(sum) => sums.push(sum),
//!         Err(e) => errors.push(e),
//!     }
//! }
//! assert_eq!(sums.len(), 12); // 13 batches, one holds the bad item
//! assert_eq!(errors.len(), 1);
//! assert_eq!((errors[0].stage(), errors[0].position()), (Some("decode"), Some(13)));
//! let report = pipeline.report().unwrap();
//! println!("{report}"); // per-stage table and the bottleneck
//! # Ok::<(), loader::PipelineError>(())
//! ```

pub(crate) mod engine;
mod stats;
pub(crate) mod tune;

use std::any::Any;
use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use scheduler::{Delivery, Job, JobOptions, Pin, Pool, Strategy, Timing};
use serde::{Deserialize, Serialize};

use crate::plan::Remainder;
use crate::sampler::Sampler;

/// A panic payload's message (the Loader names a panicking `get` or collate with it).
pub(crate) use engine::panic_text;
/// What a source (`crate::source`) needs of the engine: the feed protocol and its lock.
pub(crate) use engine::{lock, Fed, Feed};
pub use engine::{thread_cpu_ns, Runner};
use engine::{
    BatchFn, ChildPaths, ChunkFn, Delivered, Fault, Kind, Out, Policy, Progress, SegmentSpec,
    Shared, StageFn, StateInit, StationSpec, TailKind, Value,
};
use stats::StageSetting;
pub use stats::{Bottleneck, PipelineReport, ServiceTimes, StageKind, StageStats};
pub use tune::{Autotune, TuneChange, TunePoint, Tuning, WindowRule};

/// How long dropping an epoch's iterator (or the pipeline) waits for stage calls still
/// running before it abandons them: see [`PipelineBuilder::grace`].
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// The longest grace period: a longer one given to a builder is this one (a year: "wait for
/// the calls"), so that a deadline computed from it never overflows the clock.
pub const MAX_GRACE: Duration = Duration::from_secs(365 * 24 * 3600);

/// `now + d`, or a time far enough ahead (a year) where `d` would overflow the clock: huge
/// user settings (an interval, a grace period) saturate rather than panic.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(MAX_GRACE))
        .unwrap_or(now)
}

/// The default strategy of a `cpu` stage.
///
/// Items are bound to the task ids of the stage's job in queue order and at most
/// `concurrency` (default P) are open at once, so the strategy mostly decides which worker
/// takes the next item: a shared counter (`central`) does that cheapest and keeps items in
/// arrival order, which in-order delivery favours (see `docs/pipelines.md`).
pub const DEFAULT_CPU_STRATEGY: &str = crate::DEFAULT_STRATEGY;

/// Whether `s` is [`DEFAULT_CPU_STRATEGY`] (as its spec says, parameters included).
fn is_default_strategy(s: &dyn Strategy) -> bool {
    static DEFAULT: OnceLock<Option<String>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            strategies::parse(DEFAULT_CPU_STRATEGY)
                .ok()
                .map(|d| d.spec())
        })
        .as_deref()
        == Some(s.spec().as_str())
}

/// The default queue in front of a stage: `2 × concurrency`, at least 4.
pub(crate) use scheduler::window::default_queue;

/// The most items a `cpu` stage may have open at once (`concurrency`): its queue and window
/// are sized from it, and its items only ever run on the pool's workers.
pub const MAX_CPU_CONCURRENCY: usize = 1 << 20;

/// A thread count over `limit`: the error naming it.
fn check_threads(
    stage: &str,
    field: &str,
    requested: usize,
    limit: usize,
) -> Result<(), PipelineError> {
    if requested > limit {
        return Err(PipelineError::Threads {
            stage: stage.to_string(),
            field: field.to_string(),
            requested,
            limit,
        });
    }
    Ok(())
}

/// An error of a pipeline: at build time, at resume, or for one item.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// A setting is not allowed: names the stage (or `pipeline`) and the field.
    #[error("{stage}: {field}: {message}")]
    Config {
        /// The stage's name, or `pipeline` for a pipeline-wide setting.
        stage: String,
        /// The field.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A thread count over what this process may start ([`scheduler::thread_limit`]): the
    /// pool's workers, a blocking stage's threads, or all of them together. Checked by
    /// `build()` before anything is allocated or spawned.
    #[error("{stage}: {}", scheduler::over_thread_limit(.field, *.requested, *.limit).unwrap_or_default())]
    Threads {
        /// The stage's name, or `pipeline` for the workers or the sum of all threads.
        stage: String,
        /// The field (`workers`, `concurrency`, …).
        field: String,
        /// The count asked for.
        requested: usize,
        /// How many more threads this process may start.
        limit: usize,
    },
    /// The pool or a thread could not be started.
    #[error("could not start the pipeline: {0}")]
    Start(String),
    /// A saved [`PipelineState`] does not fit this pipeline.
    #[error("cannot resume: {0}")]
    State(String),
    /// One item failed (its function returned an error, or panicked) in a stage.
    #[error("stage '{stage}' {what} on item {position} (epoch {epoch}{index}): {message}", what = if *.panicked { "panicked" } else { "failed" }, index = .index.map_or(String::new(), |i| format!(", dataset index {i}")))]
    Item {
        /// The stage's name.
        stage: String,
        /// The item's position in the epoch's source.
        position: u64,
        /// The dataset index, for a pipeline built on a sampler.
        index: Option<usize>,
        /// The epoch.
        epoch: u64,
        /// The error or panic message.
        message: String,
        /// A panic (true) or an error the function returned (false).
        panicked: bool,
        /// Items behind this error (a batch may hold several bad items).
        count: u64,
    },
    /// The failure policy stopped the epoch.
    #[error("epoch {epoch} halted after {failures} failed items (more than {limit})")]
    Halted {
        /// The epoch.
        epoch: u64,
        /// Failed items so far.
        failures: u64,
        /// The limit that was passed.
        limit: String,
    },
}

impl PipelineError {
    /// The stage an item error (or a configuration error) names.
    pub fn stage(&self) -> Option<&str> {
        match self {
            PipelineError::Item { stage, .. } | PipelineError::Config { stage, .. } => Some(stage),
            _ => None,
        }
    }

    /// The source position an item error names.
    pub fn position(&self) -> Option<u64> {
        match self {
            PipelineError::Item { position, .. } => Some(*position),
            _ => None,
        }
    }

    fn config(stage: &str, field: &str, message: impl Into<String>) -> Self {
        PipelineError::Config {
            stage: stage.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Where a stage runs and how much of it runs at once.
///
/// ```
/// use loader::Stage;
/// let read = Stage::blocking("read", 32);              // 32 threads of its own
/// let decode = Stage::cpu("decode").concurrency(2);    // at most 2 CPU workers at once
/// let aug = Stage::cpu("augment").strategy("work-stealing").queue(16);
/// # let _ = (read, decode, aug);
/// ```
#[derive(Clone, Debug)]
pub struct Stage {
    name: String,
    kind: Kind,
    concurrency: Option<usize>,
    queue: Option<usize>,
    strategy: Option<String>,
    strategy_value: Option<Arc<dyn Strategy>>,
    timeout: Option<Duration>,
    chunk_time: Option<Duration>,
    fixed: bool,
}

impl Stage {
    /// A stage whose items are tasks on the pipeline's pool of CPU workers (default
    /// concurrency: all of them).
    pub fn cpu(name: &str) -> Stage {
        Stage {
            name: name.to_string(),
            kind: Kind::Cpu,
            concurrency: None,
            queue: None,
            strategy: None,
            strategy_value: None,
            timeout: None,
            chunk_time: None,
            fixed: false,
        }
    }

    /// A stage that runs on `threads` threads of its own (for work that waits: reads,
    /// network, sleeps); `threads` is its concurrency.
    pub fn blocking(name: &str, threads: usize) -> Stage {
        Stage {
            name: name.to_string(),
            kind: Kind::Blocking,
            concurrency: Some(threads),
            queue: None,
            strategy: None,
            strategy_value: None,
            timeout: None,
            chunk_time: None,
            fixed: false,
        }
    }

    /// Most items in service at once (threads, for a blocking stage).
    pub fn concurrency(mut self, n: usize) -> Stage {
        self.concurrency = Some(n);
        self
    }

    /// Capacity of the stage's input queue (default `2 × concurrency`, at least 4).
    pub fn queue(mut self, n: usize) -> Stage {
        self.queue = Some(n);
        self
    }

    /// The strategy spec for a `cpu` stage's job (default [`DEFAULT_CPU_STRATEGY`]).
    pub fn strategy(mut self, spec: &str) -> Stage {
        self.strategy = Some(spec.to_string());
        self.strategy_value = None;
        self
    }

    /// The strategy of a `cpu` stage's job as a value (the Loader's
    /// [`strategy_value`](crate::LoaderBuilder::strategy_value)); `build` still checks that
    /// it can serve the pool's workers.
    pub fn strategy_value(mut self, strategy: Arc<dyn Strategy>) -> Stage {
        self.strategy = Some(strategy.spec());
        self.strategy_value = Some(strategy);
        self
    }

    /// An item whose call takes longer than `limit` fails at its position (an error naming
    /// the stage, "took … ms, over the … ms timeout"; see [`OnFailure`]) and its value is
    /// discarded. A thread cannot be interrupted: the runner is busy until the call returns,
    /// so this flags slow items, it does not bound waiting. The Loader's
    /// [`timeout`](crate::LoaderBuilder::timeout) is the same rule per sample (measured inside
    /// its `get` stage, so that at batch granularity each sample of a batch has it).
    ///
    /// ```
    /// use std::time::Duration;
    /// use loader::{Pipeline, Sampler, Stage};
    ///
    /// let mut p = Pipeline::from_sampler(4, Sampler::sequential())
    ///     .map(Stage::cpu("get").timeout(Duration::from_millis(20)), |i: usize| {
    ///         if i == 2 { std::thread::sleep(Duration::from_millis(40)) }
    ///         i
    ///     })
    ///     .workers(2)
    ///     .build()?;
    /// let out: Vec<_> = p.epoch(0).map(|r| r.ok()).collect();
    /// assert_eq!(out, vec![Some(0), Some(1), None, Some(3)]);
    /// # Ok::<(), loader::PipelineError>(())
    /// ```
    pub fn timeout(mut self, limit: Duration) -> Stage {
        self.timeout = Some(limit);
        self
    }

    /// A chunked stage's ([`PipelineBuilder::try_map_chunks_with`]) thread takes more
    /// items for its call only while the chunk's expected time, its items times the stage's
    /// mean time per item so far, stays within `limit` (one item at a time until an item
    /// has finished): chunks only where a call's own cost matters against its items', and
    /// never a slow item's chunk-mates waiting long behind it. Without it, a thread takes up
    /// to the chunk's size of the items waiting, whatever their time.
    pub fn chunk_time(mut self, limit: Duration) -> Stage {
        self.chunk_time = Some(limit);
        self
    }

    /// Under [`autotune`](PipelineBuilder::autotune), keep this blocking stage's threads at
    /// its concurrency: for threads that each stand for something the model does not see
    /// (Python's process stages: a thread per socket of a worker process, where more
    /// threads would fork more processes onto the same CPUs). Its queue and the windows are
    /// still tuned.
    pub fn fixed(mut self) -> Stage {
        self.fixed = true;
        self
    }

    /// The stage's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What a failing item does to the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum OnFailure {
    /// Yield `Err(PipelineError::Item)` at its position; go on (the default). A batch with a
    /// bad item becomes that error (its good items are dropped).
    #[default]
    Yield,
    /// Leave the item out (a batch is formed from the good items); count it in the report.
    Skip,
    /// Yield the errors until there are more than this many, then yield
    /// `Err(PipelineError::Halted)` and end the epoch.
    Halt(MaxFailures),
}

/// How many failures [`OnFailure::Halt`] allows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxFailures {
    /// At most this many failed items.
    Count(u64),
    /// At most this fraction of the epoch's source items (of the items delivered so far,
    /// for a source whose length is not known).
    Fraction(f64),
}

/// A stage as built: a station (a function on one item), or a batch.
enum StageDef {
    Station {
        stage: Stage,
        f: StageFn,
        init: StateInit,
        flat: bool,
        /// One item out for each item in (a map): a `pad` batch after it still lines up
        /// with the source.
        exact: bool,
        /// A blocking stage's threads take up to this many items per call, run by this
        /// function ([`PipelineBuilder::try_map_chunks_with`]).
        chunk: Option<(usize, ChunkFn)>,
    },
    Batch {
        size: usize,
        remainder: Remainder,
        collate: BatchFn,
    },
}

pub(crate) type FeedFactory = Arc<dyn Fn(u64) -> Box<dyn Feed> + Send + Sync>;

/// Configures a [`Pipeline`] whose items are `T` at this point of the chain.
pub struct PipelineBuilder<T> {
    feed: FeedFactory,
    /// The sampler's order per epoch, for dataset indices in errors.
    order: Option<(usize, Sampler)>,
    defs: Vec<StageDef>,
    workers: Option<usize>,
    pin: Pin,
    ordered: bool,
    on_failure: OnFailure,
    window: Option<usize>,
    seed: u64,
    trace: Option<PathBuf>,
    progress: Option<(Duration, ProgressFn)>,
    autotune: Option<Autotune>,
    grace: Duration,
    /// A stateful source's checkpoints ([`Pipeline::from_stateful`]).
    stateful: Option<Arc<crate::source::Link>>,
    prefetch_next_epoch: bool,
    /// The consumer's window: see [`PipelineBuilder::consumer_window`].
    consumer_window: bool,
    _t: PhantomData<fn() -> T>,
}

/// Called with the statistics so far; see [`PipelineBuilder::progress`].
type ProgressFn = Arc<dyn Fn(&PipelineReport) + Send + Sync>;

impl<T> fmt::Debug for PipelineBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field("stages", &self.defs.len())
            .field("workers", &self.workers)
            .field("ordered", &self.ordered)
            .finish_non_exhaustive()
    }
}

struct IterFeed<I> {
    it: I,
    pos: u64,
    total: Option<u64>,
}

impl<I> Feed for IterFeed<I>
where
    I: Iterator + Send,
    I::Item: Send + 'static,
{
    fn next(&mut self) -> Fed {
        let Some(v) = self.it.next() else {
            return Fed::End;
        };
        let p = self.pos;
        self.pos += 1;
        Fed::Item(p, Box::new(v))
    }

    fn total(&self) -> Option<u64> {
        self.total
    }
}

fn downcast<T: 'static>(v: Value) -> T {
    match v.downcast::<T>() {
        Ok(t) => *t,
        Err(_) => unreachable!("the builder's types line up"),
    }
}

/// The pipeline's entry points; see the module docs.
pub struct Pipeline<T> {
    /// The next epoch's run, opened while the consumer finished the last one
    /// ([`PipelineBuilder::prefetch_next_epoch`]); first, so it ends before the pool.
    ahead: Option<Run>,
    spec: Arc<Spec>,
    pool: Option<Pool<Slots>>,
    threads_alive: Arc<AtomicUsize>,
    pos: Position,
    report: Option<PipelineReport>,
    held_peak: Arc<AtomicUsize>,
    /// Under autotune: where the last epoch's tuning ended (each station's concurrency and
    /// queue, each segment's window), the next epoch's starting point.
    tuned: Option<Tuned>,
    /// Stage calls abandoned after the grace period, over every epoch.
    abandoned: Arc<AtomicUsize>,
    /// The epoch's source length a restored state was taken from (an iterator source: checked
    /// when that epoch opens).
    expect_len: Option<(u64, u64)>,
    /// The length of the last epoch's source, if it was known.
    source_len: Option<u64>,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Pipeline<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("stages", &self.spec.settings.len())
            .field("cpu_workers", &self.spec.workers)
            .field("epoch", &self.pos.epoch)
            .finish_non_exhaustive()
    }
}

impl Pipeline<()> {
    /// A pipeline whose source is a sampler's order over a dataset of `len` items: its items
    /// are dataset indices (`usize`), and errors name them.
    pub fn from_sampler(len: usize, sampler: Sampler) -> PipelineBuilder<usize> {
        let s = sampler.clone();
        let feed: FeedFactory = Arc::new(move |epoch| {
            let order = s.epoch_order(len, epoch);
            let total = Some(order.len() as u64);
            Box::new(IterFeed {
                it: order.into_iter(),
                pos: 0,
                total,
            }) as Box<dyn Feed>
        });
        PipelineBuilder::new(feed, Some((len, sampler)))
    }

    /// A pipeline whose source is `make(epoch)`, an iterator made anew for every epoch (it
    /// must yield the same items for the same epoch, or resuming cannot reproduce them).
    pub fn from_source<I, F>(make: F) -> PipelineBuilder<I::Item>
    where
        F: Fn(u64) -> I + Send + Sync + 'static,
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
    {
        let feed: FeedFactory = Arc::new(move |epoch| {
            let it = make(epoch).into_iter();
            let (lo, hi) = it.size_hint();
            let total = (Some(lo) == hi).then_some(lo as u64);
            Box::new(IterFeed { it, pos: 0, total }) as Box<dyn Feed>
        });
        PipelineBuilder::new(feed, None)
    }
}

impl<T: Send + 'static> PipelineBuilder<T> {
    fn new(feed: FeedFactory, order: Option<(usize, Sampler)>) -> Self {
        PipelineBuilder {
            feed,
            order,
            defs: Vec::new(),
            workers: None,
            pin: Pin::None,
            ordered: true,
            on_failure: OnFailure::Yield,
            window: None,
            seed: 0,
            trace: None,
            progress: None,
            autotune: None,
            grace: DEFAULT_GRACE,
            stateful: None,
            prefetch_next_epoch: false,
            consumer_window: false,
            _t: PhantomData,
        }
    }

    /// A builder on a stateful source's feed (see `crate::source`).
    pub(crate) fn stateful(feed: FeedFactory, link: Arc<crate::source::Link>) -> Self {
        let mut b = PipelineBuilder::new(feed, None);
        b.stateful = Some(link);
        b
    }

    fn then<U>(mut self, def: StageDef) -> PipelineBuilder<U> {
        self.defs.push(def);
        PipelineBuilder {
            feed: self.feed,
            order: self.order,
            defs: self.defs,
            workers: self.workers,
            pin: self.pin,
            ordered: self.ordered,
            on_failure: self.on_failure,
            window: self.window,
            seed: self.seed,
            trace: self.trace,
            progress: self.progress,
            autotune: self.autotune,
            grace: self.grace,
            stateful: self.stateful,
            prefetch_next_epoch: self.prefetch_next_epoch,
            consumer_window: self.consumer_window,
            _t: PhantomData,
        }
    }

    /// The consumer's window (default off; the [`Loader`](crate::Loader)'s rule): the last
    /// window bounds every item made and not yet consumed. A `batch` that ends the chain
    /// hands its batches to the consumer from the tail of the segment it closes (not from a
    /// segment of its own after it), so a batch's items count in that window until the
    /// consumer takes the batch; and the item the consumer was handed last counts until it
    /// asks for the next one (or, at the epoch's end, for the next epoch). A one-stage
    /// pipeline `map → batch(B)` with `window(W)` then holds at most `W` items, the batch
    /// the consumer works on included (without it, up to `W` items plus the batches
    /// waiting after the `batch` and the one the consumer has).
    ///
    /// ```
    /// use loader::{Pipeline, Remainder, Sampler, Stage};
    ///
    /// let mut p = Pipeline::from_sampler(100, Sampler::sequential())
    ///     .map(Stage::cpu("get"), |i: usize| i)
    ///     .batch(4, Remainder::Partial)
    ///     .consumer_window(true)
    ///     .window(12)
    ///     .workers(2)
    ///     .build()?;
    /// assert_eq!(p.windows(), vec![12]); // one segment: the batch is its tail
    /// assert_eq!(p.epoch(0).map(|b| b.unwrap().len()).sum::<usize>(), 100);
    /// assert!(p.held_peak() <= 12);
    /// # Ok::<(), loader::PipelineError>(())
    /// ```
    pub fn consumer_window(mut self, on: bool) -> Self {
        self.consumer_window = on;
        self
    }

    fn station<U>(
        self,
        stage: Stage,
        f: StageFn,
        init: StateInit,
        flat: bool,
        exact: bool,
    ) -> PipelineBuilder<U> {
        self.then(StageDef::Station {
            stage,
            f,
            init,
            flat,
            exact,
            chunk: None,
        })
    }

    /// A 1 → 1 stage.
    pub fn map<U, F>(self, stage: Stage, f: F) -> PipelineBuilder<U>
    where
        U: Send + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.try_map(stage, move |t| Ok::<U, std::convert::Infallible>(f(t)))
    }

    /// A fallible 1 → 1 stage: an `Err` is that item's failure (see [`OnFailure`]).
    pub fn try_map<U, E, F>(self, stage: Stage, f: F) -> PipelineBuilder<U>
    where
        U: Send + 'static,
        E: fmt::Display,
        F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    {
        self.try_map_with(stage, |_| (), move |t, _: &mut ()| f(t))
    }

    /// A fallible 1 → 1 stage with per-runner state: `init(runner)` builds each runner's
    /// state once (each CPU worker of the pool, or each of the stage's threads), on that
    /// runner's thread; `f(item, &mut state)` uses it (a decoder, a file handle, a buffer).
    pub fn try_map_with<S, U, E, I, F>(self, stage: Stage, init: I, f: F) -> PipelineBuilder<U>
    where
        S: Send + 'static,
        U: Send + 'static,
        E: fmt::Display,
        I: Fn(Runner) -> S + Send + Sync + 'static,
        F: Fn(T, &mut S) -> Result<U, E> + Send + Sync + 'static,
    {
        let f: StageFn = Arc::new(move |v: Value, state: &mut (dyn Any + Send), _r| {
            let state = state
                .downcast_mut::<S>()
                .expect("the runner's state for this stage");
            engine::map_value(v, |t: T| f(t, state))
                .map(Out::One)
                .map_err(|e| e.to_string())
        });
        let init: StateInit = Arc::new(move |r| Box::new(init(r)));
        self.station(stage, f, init, false, true)
    }

    /// A fallible 1 → 1 blocking stage whose threads take up to `chunk` items per call:
    /// `f(items, &mut state)` gets the items a thread found waiting in the stage's queue
    /// (at least one; never waited for to fill a chunk) and returns one result per item, in
    /// order. For work whose cost per call outweighs its cost per item (a message to another
    /// process, a request to a server, a batched read). Each item keeps its place, its
    /// failure and its statistics (a call's time is shared equally among its items); a
    /// panic, or another count of results, fails every item of the call. The stage holds up
    /// to `threads × chunk` items in service, and its default queue is sized for that.
    /// `chunk` 1 is [`try_map_with`](Self::try_map_with); a cpu stage refuses a chunk.
    ///
    /// ```
    /// use loader::{Pipeline, Sampler, Stage};
    ///
    /// let mut p = Pipeline::from_sampler(100, Sampler::sequential())
    ///     .try_map_chunks_with(
    ///         Stage::blocking("ask", 2),
    ///         8,
    ///         |_runner| 0usize, // calls made by this thread
    ///         |items: Vec<usize>, calls: &mut usize| {
    ///             *calls += 1;
    ///             items
    ///                 .into_iter()
    ///                 .map(|i| if i == 7 { Err("seven") } else { Ok(i * 2) })
    ///                 .collect()
    ///         },
    ///     )
    ///     .workers(1)
    ///     .build()?;
    /// let out: Vec<Option<usize>> = p.epoch(0).map(|r| r.ok()).collect();
    /// assert_eq!(out.len(), 100);
    /// assert_eq!(out[7], None);
    /// assert_eq!(out[8], Some(16));
    /// # Ok::<(), loader::PipelineError>(())
    /// ```
    pub fn try_map_chunks_with<S, U, E, I, F>(
        self,
        stage: Stage,
        chunk: usize,
        init: I,
        f: F,
    ) -> PipelineBuilder<U>
    where
        S: Send + 'static,
        U: Send + 'static,
        E: fmt::Display,
        I: Fn(Runner) -> S + Send + Sync + 'static,
        F: Fn(Vec<T>, &mut S) -> Vec<Result<U, E>> + Send + Sync + 'static,
    {
        let chunked: ChunkFn = Arc::new(move |vs: Vec<Value>, state, _r| {
            let state = state
                .downcast_mut::<S>()
                .expect("the runner's state for this stage");
            let items: Vec<T> = vs
                .into_iter()
                .map(|v| *v.downcast::<T>().expect("the stage's item type"))
                .collect();
            f(items, state)
                .into_iter()
                .map(|r| {
                    r.map(|u| Out::One(Box::new(u) as Value))
                        .map_err(|e| e.to_string())
                })
                .collect()
        });
        // One item taken alone (none other waiting): the same function on a chunk of one.
        let one = Arc::clone(&chunked);
        let single: StageFn = Arc::new(move |v: Value, state: &mut (dyn Any + Send), r| {
            let mut out = one(vec![v], state, r);
            match (out.pop(), out.is_empty()) {
                (Some(r), true) => r,
                (r, _) => Err(format!(
                    "the stage's function returned {} results for a chunk of 1 item",
                    out.len() + usize::from(r.is_some())
                )),
            }
        });
        let init: StateInit = Arc::new(move |r| Box::new(init(r)));
        self.then(StageDef::Station {
            stage,
            f: single,
            init,
            flat: false,
            exact: true,
            chunk: Some((chunk, chunked)),
        })
    }

    /// Keep the items for which `keep` is true (1 → 0..1).
    pub fn filter<F>(self, stage: Stage, keep: F) -> PipelineBuilder<T>
    where
        F: Fn(&T) -> bool + Send + Sync + 'static,
    {
        let f: StageFn = Arc::new(move |v: Value, _: &mut (dyn Any + Send), _r| {
            let t = downcast::<T>(v);
            Ok(if keep(&t) {
                Out::One(Box::new(t))
            } else {
                Out::None
            })
        });
        self.station(stage, f, unit_init(), false, false)
    }

    /// Each item becomes 0..n items (1 → 0..n), handed on in order. In an ordered pipeline the
    /// children leave this stage in source order: a slow item holds back the children of
    /// later ones (the price of a deterministic order, as at a batch).
    ///
    /// `f` runs on the stage's runner and returns an iterator, which is **kept, not its
    /// children**: a child is made (the iterator's `next`) only when the next segment has room
    /// for it, so an item with 10^6 children holds no more than the next segment's window of
    /// them at once, and they count in [`Pipeline::held_peak`]. The children are made by the
    /// thread that moves items on when room appears (a CPU worker, a blocking stage's thread
    /// or the consumer's), outside the stage's service time: keep `next` cheap (slicing,
    /// indexing, reading a chunk) and do the heavy per-child work in a stage after this one. A
    /// `Vec` returned here has all its children made by `f`. A `next` that panics
    /// makes that child an error at the item's position naming this stage, after the
    /// children before it, and ends the item's children.
    pub fn flat_map<U, I, F>(self, stage: Stage, f: F) -> PipelineBuilder<U>
    where
        U: Send + 'static,
        I: IntoIterator<Item = U>,
        I::IntoIter: Send + 'static,
        F: Fn(T) -> I + Send + Sync + 'static,
    {
        let f: StageFn = Arc::new(move |v: Value, _: &mut (dyn Any + Send), _r| {
            let children = f(downcast::<T>(v))
                .into_iter()
                .map(|u| Box::new(u) as Value);
            Ok(Out::Many(Box::new(children)))
        });
        self.station(stage, f, unit_init(), true, false)
    }

    /// Group `size` consecutive items into a `Vec` (n → 1); `remainder` says what becomes of
    /// an epoch's last, short group ([`Remainder::Partial`]: a shorter batch;
    /// [`Remainder::Drop`]: dropped; [`Remainder::Pad`]: filled up with the epoch's first
    /// source items again, as the Loader does — allowed for the first batch of a
    /// [`Pipeline::from_sampler`] source with only `map`-like stages before it, where the
    /// source's start is known; elsewhere `build` refuses it).
    pub fn batch(self, size: usize, remainder: Remainder) -> PipelineBuilder<Vec<T>> {
        let collate: BatchFn = Arc::new(|values: Vec<Value>| {
            Box::new(values.into_iter().map(downcast::<T>).collect::<Vec<T>>()) as Value
        });
        self.then(StageDef::Batch {
            size,
            remainder,
            collate,
        })
    }

    /// CPU workers of the pool (default: the available parallelism).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// How the CPU workers are pinned (default none).
    pub fn pin(mut self, pin: Pin) -> Self {
        self.pin = pin;
        self
    }

    /// Hand items out in source order (true, the default) or as they are ready.
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// What a failing item does (default [`OnFailure::Yield`]).
    pub fn on_failure(mut self, policy: OnFailure) -> Self {
        self.on_failure = policy;
        self
    }

    /// Items each segment admits at once: the reorder window and the memory bound. The
    /// default is the loader's rule, two batches per runner (`2 × Σ concurrency × batch size`
    /// for a segment that ends in a batch, `2 × Σ concurrency` otherwise), and at least twice
    /// the sum of its stages' concurrency and queues. In order, a slow item stalls delivery
    /// once the window is full behind it, so a heavy tail wants a large window; a large item
    /// wants a small one.
    pub fn window(mut self, items: usize) -> Self {
        self.window = Some(items);
        self
    }

    /// Seed of the `cpu` stages' strategies (victim choice and the like).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Record every stage's per-item service time to `path` (CSV: `stage,kind,epoch,item,
    /// cost_ns`, the format of `docs/traces.md`), appended at the end of each epoch, so the
    /// measured costs can be replayed on the simulator.
    pub fn trace(mut self, path: impl Into<PathBuf>) -> Self {
        self.trace = Some(path.into());
        self
    }

    /// Call `f` with the statistics so far about every `every` during an epoch (off by
    /// default). It runs on the consumer's thread, when it asks for the next item, so it
    /// never runs while the consumer is busy; [`PipelineBuilder::log_every`] prints them.
    pub fn progress<F>(mut self, every: Duration, f: F) -> Self
    where
        F: Fn(&PipelineReport) + Send + Sync + 'static,
    {
        self.progress = Some((every, Arc::new(f)));
        self
    }

    /// Print the statistics to stderr about every `every` during an epoch (a shorthand for
    /// [`PipelineBuilder::progress`]).
    pub fn log_every(self, every: Duration) -> Self {
        self.progress(every, |r| eprintln!("{r}"))
    }

    /// How long ending an epoch early (dropping its iterator, or the next `epoch()` call) and
    /// dropping the pipeline wait for stage calls still running (default [`DEFAULT_GRACE`],
    /// 5 s). Calls still running then are **abandoned**: their threads (a CPU worker, a
    /// blocking stage's thread) are left running, detached, and end when the call returns;
    /// they own only reference-counted state, so nothing dangles. Each abandonment is
    /// counted ([`Pipeline::abandoned`]) and written to stderr as one line naming the stages.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace.min(MAX_GRACE);
        self
    }

    /// Start the next epoch (`epoch + 1`) while the consumer finishes this one (default
    /// false; the Loader's default is true): once this epoch's source has ended, the next
    /// epoch's run opens and is admitted only what this one's windows leave free (per segment:
    /// its window less the items this epoch still holds), so both together hold no more than
    /// one epoch's windows; when this epoch ends the next has them whole. The next
    /// [`Pipeline::epoch`] call for that epoch, from its start, continues it; any other call,
    /// a [`restore`](Pipeline::restore), or an iterator dropped early stops it. Its report's
    /// elapsed time counts from when it opened.
    pub fn prefetch_next_epoch(mut self, on: bool) -> Self {
        self.prefetch_next_epoch = on;
        self
    }

    /// Tune each blocking stage's threads, the queues and the windows online, from measured
    /// service times, within an optional memory cap: see [`Autotune`]. The concurrency,
    /// queues and window given are the starting guess. Every change is in the report's
    /// [`tuning`](PipelineReport::tuning). The windows follow the stations by default, or the
    /// consumer's waits under [`WindowRule::HeadOfLine`] (the [`Loader`](crate::Loader)'s).
    pub fn autotune(mut self, settings: Autotune) -> Self {
        self.autotune = Some(settings);
        self
    }

    /// Check every setting, start the CPU workers (each builds its stage states), and
    /// return the pipeline.
    ///
    /// # Errors
    /// [`PipelineError::Config`] naming the stage and field of a bad setting (a concurrency,
    /// queue, batch size or window of 0, a strategy spec that does not parse or cannot serve
    /// the workers, a batch remainder of `pad`, two stages of one name);
    /// [`PipelineError::Threads`] if the workers, a blocking stage's threads, or all of them
    /// together are more than this process may start ([`scheduler::thread_limit`]; checked
    /// before anything is allocated or spawned); a cpu stage's concurrency above
    /// [`MAX_CPU_CONCURRENCY`] is a [`PipelineError::Config`];
    /// [`PipelineError::Start`] if a thread cannot be started or an init panics.
    pub fn build(self) -> Result<Pipeline<T>, PipelineError> {
        let workers = self
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let needs_pool = self
            .defs
            .iter()
            .any(|d| matches!(d, StageDef::Station { stage, .. } if stage.kind == Kind::Cpu));
        if needs_pool && workers == 0 {
            return Err(PipelineError::config(
                "pipeline",
                "workers",
                "must be >= 1 for a pipeline with a cpu stage, got 0",
            ));
        }
        // Every thread count is checked before anything is sized by it or spawned.
        let thread_limit = scheduler::thread_limit();
        if needs_pool {
            check_threads("pipeline", "workers", workers, thread_limit)?;
        }
        if let Some((len, _)) = &self.order {
            crate::sampler::order_fits(*len)
                .map_err(|m| PipelineError::config("pipeline", "source", m))?;
        }
        if self.window == Some(0) {
            return Err(PipelineError::config(
                "pipeline",
                "window",
                "must be >= 1 item, got 0",
            ));
        }
        let mut names = BTreeSet::new();
        let mut layout = Vec::with_capacity(self.defs.len());
        let mut segments: Vec<SegTemplate> = vec![SegTemplate::default()];
        let mut settings = Vec::new();
        let mut inits = Vec::new();
        let mut per_item = 1.0;
        let mut blocking_threads = 0usize;
        // Every station so far is 1 → 1, and the batch to pad, if one pads.
        let mut all_exact = true;
        let mut pad: Option<usize> = None;
        let n_defs = self.defs.len();
        for (i, def) in self.defs.into_iter().enumerate() {
            match def {
                StageDef::Station {
                    stage,
                    f,
                    init,
                    flat,
                    exact,
                    chunk,
                } => {
                    let name = stage.name.clone();
                    layout.push(format!(
                        "{name} ({}{})",
                        match stage.kind {
                            Kind::Cpu => "cpu",
                            Kind::Blocking => "blocking",
                        },
                        if flat { ", flat_map" } else { "" }
                    ));
                    if name.is_empty() {
                        return Err(PipelineError::config(
                            &format!("stage {i}"),
                            "name",
                            "must not be empty",
                        ));
                    }
                    if !names.insert(name.clone()) {
                        return Err(PipelineError::config(
                            &name,
                            "name",
                            "another stage has this name; names must be unique",
                        ));
                    }
                    let concurrency = stage.concurrency.unwrap_or(workers.max(1));
                    if concurrency == 0 {
                        return Err(PipelineError::config(
                            &name,
                            "concurrency",
                            "must be >= 1, got 0",
                        ));
                    }
                    match stage.kind {
                        Kind::Blocking => {
                            check_threads(&name, "concurrency", concurrency, thread_limit)?;
                            blocking_threads = blocking_threads.saturating_add(concurrency);
                        }
                        Kind::Cpu if concurrency > MAX_CPU_CONCURRENCY => {
                            return Err(PipelineError::config(
                                &name,
                                "concurrency",
                                format!(
                                    "a cpu stage's items open at once must be <= {MAX_CPU_CONCURRENCY}, got {concurrency} (its items run on the {workers} workers)"
                                ),
                            ));
                        }
                        Kind::Cpu => {}
                    }
                    let (chunk, chunked) = match chunk {
                        None => (1, None),
                        Some((0, _)) => {
                            return Err(PipelineError::config(
                                &name,
                                "chunk",
                                "must be >= 1 item, got 0",
                            ))
                        }
                        Some(_) if stage.kind != Kind::Blocking => {
                            return Err(PipelineError::config(
                                &name,
                                "chunk",
                                "only a blocking stage's threads take items in chunks",
                            ))
                        }
                        Some((n, f)) => (n, Some(f)),
                    };
                    if stage.chunk_time.is_some() && chunked.is_none() {
                        return Err(PipelineError::config(
                            &name,
                            "chunk_time",
                            "only a chunked stage (try_map_chunks_with) takes items in chunks",
                        ));
                    }
                    // items in service at once: each thread's call may hold a chunk
                    let slots = concurrency.saturating_mul(chunk);
                    let queue = stage.queue.unwrap_or_else(|| default_queue(slots));
                    if queue == 0 {
                        return Err(PipelineError::config(&name, "queue", "must be >= 1, got 0"));
                    }
                    let strategy = match stage.kind {
                        Kind::Cpu => {
                            let spec = stage.strategy.as_deref().unwrap_or(DEFAULT_CPU_STRATEGY);
                            let s: Arc<dyn Strategy> = match &stage.strategy_value {
                                Some(s) => Arc::clone(s),
                                None => strategies::parse(spec).map(Arc::from).map_err(|e| {
                                    PipelineError::config(&name, "strategy", e.to_string())
                                })?,
                            };
                            s.validate(workers).map_err(|e| {
                                PipelineError::config(&name, "strategy", e.to_string())
                            })?;
                            Some(s)
                        }
                        Kind::Blocking => {
                            if stage.strategy.is_some() {
                                return Err(PipelineError::config(
                                    &name,
                                    "strategy",
                                    "only a cpu stage has a strategy (a blocking stage's threads take items in order)",
                                ));
                            }
                            None
                        }
                    };
                    let slot = inits.len();
                    inits.push((stage.kind, init));
                    settings.push(StageSetting {
                        name: name.clone(),
                        kind: match stage.kind {
                            Kind::Cpu => StageKind::Cpu,
                            Kind::Blocking => StageKind::Blocking,
                        },
                        concurrency,
                        queue,
                        per_item,
                    });
                    let seg = segments.last_mut().expect("one segment at least");
                    seg.stations.push(StationTemplate {
                        name: Arc::from(name.as_str()),
                        kind: stage.kind,
                        concurrency,
                        queue,
                        user_queue: stage.queue.is_some(),
                        f,
                        slot,
                        any_runner: strategy.as_ref().is_some_and(|s| is_default_strategy(&**s)),
                        strategy,
                        timeout: stage.timeout,
                        chunk,
                        chunked,
                        chunk_ns: stage
                            .chunk_time
                            .map(|d| d.as_nanos().min(u128::from(u64::MAX)) as u64),
                        fixed: stage.fixed,
                    });
                    all_exact &= exact;
                    if flat {
                        seg.tail = TailKind::Split;
                        segments.push(SegTemplate {
                            per_item,
                            ..SegTemplate::default()
                        });
                    }
                }
                StageDef::Batch {
                    size,
                    remainder,
                    collate,
                } => {
                    let name = format!("batch({size})");
                    layout.push(format!(
                        "batch({size}, {})",
                        match remainder {
                            Remainder::Partial => "partial",
                            Remainder::Drop => "drop",
                            Remainder::Pad => "pad",
                        }
                    ));
                    if size == 0 {
                        return Err(PipelineError::config(&name, "size", "must be >= 1, got 0"));
                    }
                    if remainder == Remainder::Pad {
                        if self.order.is_none() || segments.len() > 1 || !all_exact {
                            return Err(PipelineError::config(
                                &name,
                                "remainder",
                                "pad is not supported here: it needs the source's start, so only the first batch of a from_sampler source, with only map/try_map stages before it (an iterator source, a filter or a flat_map have none); allowed here: drop, partial",
                            ));
                        }
                        pad = Some(size);
                    }
                    let seg = segments.last_mut().expect("one segment at least");
                    seg.tail = TailKind::Batch {
                        size,
                        keep_partial: remainder == Remainder::Partial,
                        collate,
                        name: Arc::from(name.as_str()),
                    };
                    seg.batch = size;
                    per_item *= size as f64;
                    if !(self.consumer_window && i + 1 == n_defs) {
                        segments.push(SegTemplate {
                            per_item,
                            ..SegTemplate::default()
                        });
                    }
                }
            }
        }
        // All the threads at once: the pool's workers, every blocking stage's threads and the
        // autotuner's.
        let all = blocking_threads
            .saturating_add(if needs_pool { workers } else { 0 })
            .saturating_add(usize::from(self.autotune.is_some()));
        check_threads("pipeline", "workers + blocking threads", all, thread_limit)?;
        if let Some(cfg) = &self.autotune {
            check_threads("autotune", "max_threads", cfg.max_threads, thread_limit)?;
        }
        // Windows: the explicit one, or the loader's rule (two batches per runner: room for
        // the in-order tail of slow items), and at least twice the queues and concurrency.
        for (s, seg) in segments.iter_mut().enumerate() {
            // The one rule, shared with the tuner and the simulator (saturating).
            seg.window = match self.window {
                Some(w) => w,
                None => scheduler::window::default_window(
                    seg.stations
                        .iter()
                        .map(|t| (t.concurrency.saturating_mul(t.chunk), t.queue)),
                    seg.batch,
                ),
            };
            if seg.window < seg.batch {
                return Err(PipelineError::config(
                    "pipeline",
                    "window",
                    format!(
                        "{} items cannot hold a batch of {} (segment {s}); allowed: >= {}",
                        seg.window, seg.batch, seg.batch
                    ),
                ));
            }
        }
        if let Some(cfg) = &self.autotune {
            fit_autotune(cfg, workers, &mut segments, &mut settings)?;
        }
        let policy = match self.on_failure {
            OnFailure::Yield => Policy::Yield,
            OnFailure::Skip => Policy::Skip,
            OnFailure::Halt(MaxFailures::Count(n)) => Policy::HaltCount(n),
            OnFailure::Halt(MaxFailures::Fraction(x)) => {
                if !(0.0..=1.0).contains(&x) {
                    return Err(PipelineError::config(
                        "pipeline",
                        "on_failure",
                        format!("a fraction of failures must be in 0..=1, got {x}"),
                    ));
                }
                Policy::HaltFraction(x)
            }
        };
        if let Some(path) = &self.trace {
            let mut file = std::fs::File::create(path).map_err(|e| {
                PipelineError::config("pipeline", "trace", format!("{}: {e}", path.display()))
            })?;
            writeln!(
                file,
                "# schedlab pipeline trace v1\nstage,kind,epoch,item,cost_ns"
            )
            .map_err(|e| {
                PipelineError::config("pipeline", "trace", format!("{}: {e}", path.display()))
            })?;
        }
        let inits: Arc<Vec<(Kind, StateInit)>> = Arc::new(inits);
        let pool = if needs_pool {
            let inits = Arc::clone(&inits);
            let pool = Pool::builder(workers)
                .pin(self.pin)
                .grace(self.grace)
                .build_with(move |w| {
                    Slots(
                        inits
                            .iter()
                            .map(|(kind, init)| match kind {
                                Kind::Cpu => init(Runner::Cpu(w)),
                                Kind::Blocking => Box::new(()) as Box<dyn Any + Send>,
                            })
                            .collect(),
                    )
                })
                .map_err(|e| PipelineError::Start(e.to_string()))?;
            Some(pool)
        } else {
            None
        };
        let fingerprint = Fingerprint {
            len: self.order.as_ref().map(|(len, _)| *len as u64),
            sampler: self
                .order
                .as_ref()
                .map_or("iterator", |(_, s)| s.kind())
                .to_string(),
            seed: self.order.as_ref().and_then(|(_, s)| s.seed()),
            shard: self.order.as_ref().and_then(|(_, s)| s.sharding()),
            layout,
        };
        let feed = match (pad, &self.order) {
            (Some(size), Some((len, sampler))) => padded_feed(*len, sampler.clone(), size),
            _ => self.feed,
        };
        let hol = self
            .autotune
            .as_ref()
            .and_then(|cfg| tune::hol_segment(cfg, segment_ranges(&segments).into_iter()));
        Ok(Pipeline {
            spec: Arc::new(Spec {
                feed,
                pad,
                order: self.order,
                fingerprint,
                segments,
                settings,
                inits,
                workers: if needs_pool { workers } else { 0 },
                ordered: self.ordered,
                policy,
                seed: self.seed,
                trace: self.trace,
                progress: self.progress,
                autotune: self.autotune,
                grace: self.grace,
                stateful: self.stateful,
                prefetch_next_epoch: self.prefetch_next_epoch,
                consumer_holds: self.consumer_window,
                hol,
            }),
            abandoned: Arc::new(AtomicUsize::new(0)),
            ahead: None,
            pool,
            threads_alive: Arc::new(AtomicUsize::new(0)),
            pos: Position::start(0),
            report: None,
            held_peak: Arc::new(AtomicUsize::new(0)),
            tuned: None,
            expect_len: None,
            source_len: None,
            _t: PhantomData,
        })
    }
}

fn unit_init() -> StateInit {
    Arc::new(|_| Box::new(()))
}

/// A CPU worker's states, one per stage (unit for the stages that are not its).
struct Slots(Vec<Box<dyn Any + Send>>);

/// A CPU worker's states as the engine asks for them (`access` finds a stage's state by slot).
struct WorkerStates<'a, S> {
    state: &'a mut S,
    access: fn(&mut S, usize) -> &mut (dyn Any + Send),
}

impl<S> engine::StageStates for WorkerStates<'_, S> {
    fn state(&mut self, slot: usize) -> &mut (dyn Any + Send) {
        (self.access)(self.state, slot)
    }
}

/// A station as configured (a run makes its `StationSpec` from it).
pub(crate) struct StationTemplate {
    pub name: Arc<str>,
    pub kind: Kind,
    pub concurrency: usize,
    pub queue: usize,
    /// The user sized the queue (the autotuner leaves it alone).
    pub user_queue: bool,
    pub f: StageFn,
    pub slot: usize,
    pub strategy: Option<Arc<dyn Strategy>>,
    /// An item that took longer fails ([`Stage::timeout`]).
    pub timeout: Option<Duration>,
    /// A cpu stage with the default strategy: any worker may take its next item.
    pub any_runner: bool,
    /// Most items per call, and the function on a chunk ([`Stage`]s of
    /// [`PipelineBuilder::try_map_chunks_with`]).
    pub chunk: usize,
    pub chunked: Option<ChunkFn>,
    /// [`Stage::chunk_time`], in nanoseconds.
    pub chunk_ns: Option<u64>,
    /// [`Stage::fixed`]: the autotuner leaves its threads alone.
    pub fixed: bool,
}

/// A segment as configured.
pub(crate) struct SegTemplate {
    pub stations: Vec<StationTemplate>,
    pub tail: TailKind,
    pub batch: usize,
    pub window: usize,
    /// Source items per item of this segment.
    pub per_item: f64,
}

impl Default for SegTemplate {
    fn default() -> Self {
        SegTemplate {
            stations: Vec::new(),
            tail: TailKind::Sink,
            batch: 0,
            window: 0,
            per_item: 1.0,
        }
    }
}

/// A sampler's order, each epoch filled up to a multiple of `size` with its first indices
/// again (`Remainder::Pad`; the same positions as the Loader's plan).
fn padded_feed(len: usize, sampler: Sampler, size: usize) -> FeedFactory {
    Arc::new(move |epoch| {
        let order = sampler.epoch_order(len, epoch);
        let n = order.len();
        let total = n.div_ceil(size).saturating_mul(size);
        Box::new(IterFeed {
            it: (0..total).filter_map(move |p| order.get(p % n)),
            pos: 0,
            total: Some(total as u64),
        }) as Box<dyn Feed>
    })
}

struct Spec {
    feed: FeedFactory,
    /// The first batch pads the sampler's order to a multiple of this.
    pad: Option<usize>,
    order: Option<(usize, Sampler)>,
    /// What a state taken from this pipeline records (its `len` for a sampler source).
    fingerprint: Fingerprint,
    segments: Vec<SegTemplate>,
    settings: Vec<StageSetting>,
    inits: Arc<Vec<(Kind, StateInit)>>,
    workers: usize,
    ordered: bool,
    policy: Policy,
    seed: u64,
    trace: Option<PathBuf>,
    progress: Option<(Duration, ProgressFn)>,
    autotune: Option<Autotune>,
    grace: Duration,
    stateful: Option<Arc<crate::source::Link>>,
    prefetch_next_epoch: bool,
    /// The consumer's last item counts in the window ([`PipelineBuilder::consumer_window`]).
    consumer_holds: bool,
    /// Under [`WindowRule::HeadOfLine`]: the segment it sizes (the consumer's waits with its
    /// window full are measured).
    hol: Option<usize>,
}

/// Each segment's stations as ranges of flat station indices.
fn segment_ranges(segments: &[SegTemplate]) -> Vec<std::ops::Range<usize>> {
    let mut at = 0;
    segments
        .iter()
        .map(|g| {
            let r = at..at + g.stations.len();
            at = r.end;
            r
        })
        .collect()
}

/// Check the autotune settings and fit the starting guess into its memory cap.
fn fit_autotune(
    cfg: &Autotune,
    workers: usize,
    segments: &mut [SegTemplate],
    settings: &mut [StageSetting],
) -> Result<(), PipelineError> {
    if cfg.max_threads == 0 {
        return Err(PipelineError::config(
            "autotune",
            "max_threads",
            "must be >= 1, got 0",
        ));
    }
    if cfg.interval.is_zero() {
        return Err(PipelineError::config(
            "autotune",
            "interval",
            "must be longer than 0",
        ));
    }
    // The head-of-line rule moves its window a batch at a time: one batch is its least.
    let hol = tune::hol_segment(cfg, segment_ranges(segments).into_iter());
    let least = segments.iter().enumerate().fold(0usize, |a, (g, seg)| {
        a.saturating_add(if hol == Some(g) {
            seg.batch.max(1)
        } else {
            seg.batch.max(4)
        })
    });
    if let Some(cap) = cfg.max_items {
        if cap < least {
            return Err(PipelineError::config(
                "autotune",
                "max_items",
                format!("{cap} items cannot hold this pipeline's segments; allowed: >= {least}"),
            ));
        }
    }
    let shape = tune_shape(workers, segments, settings);
    let st: Vec<tune::StationIn> = segments
        .iter()
        .flat_map(|g| &g.stations)
        .zip(&shape.stations)
        .map(|(t, (name, kind, per_item, user_queue))| tune::StationIn {
            name: name.clone(),
            kind: *kind,
            per_item: *per_item,
            mean_s: None,
            tail_s: 0.0,
            conc: t.concurrency,
            queue: t.queue,
            queue_auto: !user_queue,
            floor: 0,
        })
        .collect();
    let segs: Vec<tune::SegIn> = segments
        .iter()
        .zip(&shape.segments)
        .map(|(g, (r, batch, per_item))| tune::SegIn {
            stations: r.clone(),
            batch: *batch,
            window: g.window,
            per_item: *per_item,
            floor: 0,
        })
        .collect();
    let mut plan = tune::model(workers, &st, &segs, cfg);
    // Without measurements the model keeps the guess; only the cap may cut it.
    if cfg.max_items.is_none() {
        plan.window = segs.iter().map(|g| g.window).collect();
    }
    if let Some(g) = hol {
        // Whole batches: the guess cut by the cap, down to a batch.
        let q = segments[g].batch.max(1);
        plan.window[g] = (plan.window[g] / q).max(1) * q;
    }
    let mut i = 0;
    for (g, seg) in segments.iter_mut().enumerate() {
        seg.window = plan.window[g];
        for t in &mut seg.stations {
            if !t.fixed {
                t.concurrency = plan.conc[i];
                settings[i].concurrency = plan.conc[i];
            }
            t.queue = plan.queue[i];
            settings[i].queue = plan.queue[i];
            i += 1;
        }
    }
    Ok(())
}

/// What the autotuner needs of the pipeline's shape.
fn tune_shape(workers: usize, segments: &[SegTemplate], settings: &[StageSetting]) -> tune::Shape {
    let mut stations = Vec::new();
    let mut segs = Vec::new();
    for g in segments {
        let start = stations.len();
        for t in &g.stations {
            let set = &settings[stations.len()];
            stations.push((t.name.to_string(), t.kind, set.per_item, t.user_queue));
        }
        segs.push((start..stations.len(), g.batch, g.per_item));
    }
    tune::Shape {
        workers,
        stations,
        segments: segs,
    }
}

/// Where a pipeline stands within an epoch.
#[derive(Clone, Debug, Default)]
struct Position {
    epoch: u64,
    prefix: u64,
    done: BTreeSet<u64>,
    partial: Vec<(u64, Vec<Vec<u32>>)>,
}

impl Position {
    fn start(epoch: u64) -> Position {
        Position {
            epoch,
            ..Position::default()
        }
    }

    fn progress(&self) -> Progress {
        Progress {
            prefix: self.prefix,
            done: self.done.clone(),
            delivered: self
                .partial
                .iter()
                .map(|(src, paths)| (*src, ChildPaths::from_paths(paths)))
                .collect(),
            ..Progress::default()
        }
    }

    fn from_progress(epoch: u64, p: &Progress) -> Position {
        let mut partial: Vec<(u64, Vec<Vec<u32>>)> =
            p.delivered.iter().map(|(k, v)| (*k, v.paths())).collect();
        partial.sort();
        Position {
            epoch,
            prefix: p.prefix,
            done: p.done.clone(),
            partial,
        }
    }
}

/// Where a pipeline stands: enough to resume an interrupted epoch exactly.
///
/// Store it with a checkpoint; [`Pipeline::restore`] it on a pipeline built the same way
/// (same source and stages); the next [`Pipeline::epoch`] call for `epoch` yields exactly the
/// items an uninterrupted run would still have yielded (in the same order, when ordered).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineState {
    /// The epoch in progress (or the next one, if the last finished).
    pub epoch: u64,
    /// Every source position below this one is fully handed out.
    pub positions_done: u64,
    /// Source positions at or above `positions_done` fully handed out.
    pub done: Vec<u64>,
    /// Source positions split by a `flat_map` and partly handed out: the child paths handed
    /// out.
    pub partial: Vec<(u64, Vec<Vec<u32>>)>,
    /// The stage names, to refuse a state from another pipeline.
    pub stages: Vec<String>,
    /// What the state was taken from: the source and every stage (`None` in a state saved by
    /// an older version, which only the stage names check).
    #[serde(default)]
    pub fingerprint: Option<Fingerprint>,
    /// A stateful source's own state ([`Pipeline::from_stateful`]): what it was taken from
    /// and where it stood at `positions_done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::source::SourceCheckpoint>,
}

/// What a [`PipelineState`] was taken from, so that [`Pipeline::restore`] refuses a state
/// from another source or another chain of stages (its positions would mean other items).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The source's length: the dataset's, for a sampler source; the epoch's item count for
    /// an iterator source whose length is known (`None` where it is not, or between epochs).
    pub len: Option<u64>,
    /// The sampler's order (`sequential`, `shuffled`, `custom`), or `iterator` for a
    /// [`Pipeline::from_source`] source.
    pub sampler: String,
    /// The shuffle seed, if shuffled.
    pub seed: Option<u64>,
    /// `(rank, world)`, if sharded.
    pub shard: Option<(usize, usize)>,
    /// Every stage in order, with its kind: `read (blocking)`, `split (cpu, flat_map)`,
    /// `batch(32, drop)`.
    pub layout: Vec<String>,
}

impl Fingerprint {
    /// The first way `self` (the state's) differs from `mine` (this pipeline's), in one line.
    fn differs(&self, mine: &Fingerprint) -> Option<String> {
        let order = |f: &Fingerprint| match (f.sampler.as_str(), f.seed) {
            ("shuffled", Some(seed)) => format!("a shuffled sampler (seed {seed})"),
            ("iterator", _) => "an iterator source".to_string(),
            (kind, _) => format!("a {kind} sampler"),
        };
        if (self.sampler.as_str(), self.seed) != (mine.sampler.as_str(), mine.seed) {
            return Some(format!(
                "state was taken from {}; this pipeline's source is {}",
                order(self),
                order(mine)
            ));
        }
        if self.shard != mine.shard {
            let shard = |s: Option<(usize, usize)>| {
                s.map_or("no shard".to_string(), |(r, w)| {
                    format!("shard rank {r} of {w}")
                })
            };
            return Some(format!(
                "state was taken with {}; this pipeline has {}",
                shard(self.shard),
                shard(mine.shard)
            ));
        }
        if let (Some(a), Some(b)) = (self.len, mine.len) {
            if a != b {
                return Some(format!(
                    "state was taken from a source of {a} items; this pipeline's has {b}"
                ));
            }
        }
        if self.layout != mine.layout {
            return Some(format!(
                "state was taken from stages [{}]; this pipeline has [{}]",
                self.layout.join(", "),
                mine.layout.join(", ")
            ));
        }
        None
    }
}

impl<T: Send + 'static> Pipeline<T> {
    /// CPU workers of the pool (0 when no stage is a `cpu` stage).
    pub fn cpu_workers(&self) -> usize {
        self.spec.workers
    }

    /// CPU worker threads the pipeline has spawned since it was built: one per worker,
    /// ever (the Loader's [`threads_spawned`](crate::Loader::threads_spawned)); the same
    /// workers and their per-stage states serve every epoch. Blocking stages' threads are
    /// not counted (see [`threads_alive`](Pipeline::threads_alive)).
    pub fn threads_spawned(&self) -> usize {
        self.pool.as_ref().map_or(0, |p| p.threads_spawned())
    }

    /// The report of the last epoch that ended (or was dropped part-way).
    pub fn report(&self) -> Option<&PipelineReport> {
        self.report.as_ref()
    }

    /// Blocking-stage threads alive now, over every epoch of this pipeline: 0 once no epoch
    /// iterator exists.
    pub fn threads_alive(&self) -> usize {
        self.threads_alive.load(SeqCst)
    }

    /// Items each segment admits at once: as built (the explicit window, or the default
    /// rule, [`scheduler::window::default_window`], which the simulator shares), or under
    /// autotune where the last epoch's tuning left them (the next epoch starts there;
    /// [`PipelineEpoch::windows`] while an epoch runs).
    pub fn windows(&self) -> Vec<usize> {
        self.windows_now()
    }

    /// The most items that were held at once, over all segments, a `flat_map`'s children
    /// included (the memory bound is the sum of the segments' windows).
    pub fn held_peak(&self) -> usize {
        self.held_peak.load(SeqCst)
    }

    /// Stage calls abandoned so far: still running when an epoch was stopped early and its
    /// grace period ([`PipelineBuilder::grace`]) ran out. Their threads were left running.
    pub fn abandoned(&self) -> usize {
        self.abandoned.load(SeqCst)
    }

    /// Where the pipeline stands, to resume later with [`restore`](Pipeline::restore).
    pub fn state(&self) -> PipelineState {
        let started =
            self.pos.prefix > 0 || !self.pos.done.is_empty() || !self.pos.partial.is_empty();
        let len = match self.expect_len {
            Some((e, n)) if e == self.pos.epoch => Some(n),
            _ => self.source_len.filter(|_| started),
        };
        state_of(&self.pos, &self.spec, len)
    }

    /// Continue from a saved state: the next `epoch(state.epoch)` yields the rest of it.
    ///
    /// # Errors
    /// [`PipelineError::State`], one line naming what differs, if the state was taken from
    /// another source (another length, sampler order, seed or shard) or other stages (names,
    /// kinds, `flat_map`s, batches). For an iterator source the length is checked when the
    /// epoch opens: its first item is then that error.
    pub fn restore(&mut self, state: &PipelineState) -> Result<(), PipelineError> {
        let mine = self.stage_names();
        if state.stages != mine {
            return Err(PipelineError::State(format!(
                "field stages: the state has {:?}, this pipeline {:?}",
                state.stages, mine
            )));
        }
        match &self.spec.stateful {
            Some(link) => link.check(state)?,
            None if state.source.is_some() => {
                return Err(PipelineError::State(
                    "state was taken from a stateful source; this pipeline's source is not one"
                        .to_string(),
                ))
            }
            None => {}
        }
        let mut expect_len = None;
        if let Some(theirs) = &state.fingerprint {
            let mut ours = self.spec.fingerprint.clone();
            if self.spec.order.is_none() {
                // An iterator source's length is known only once the epoch's source is made:
                // checked when the epoch opens.
                ours.len = None;
                expect_len = theirs.len.map(|n| (state.epoch, n));
            }
            if let Some(m) = theirs.differs(&ours) {
                return Err(PipelineError::State(m));
            }
        }
        if let Some((len, sampler)) = &self.spec.order {
            let n = sampler.epoch_order(*len, state.epoch).len();
            let total = match self.spec.pad {
                Some(size) => n.div_ceil(size).saturating_mul(size),
                None => n,
            } as u64;
            if let Some(&p) = state
                .done
                .iter()
                .find(|&&p| p >= total)
                .or((state.positions_done > total).then_some(&state.positions_done))
            {
                return Err(PipelineError::State(format!(
                    "state has position {p} done; epoch {} of this pipeline's source has {total} items",
                    state.epoch
                )));
            }
        }
        self.expect_len = expect_len;
        if let Some(link) = &self.spec.stateful {
            link.restore(state);
        }
        self.ahead = None;
        self.pos = Position {
            epoch: state.epoch,
            prefix: state.positions_done,
            done: state.done.iter().copied().collect(),
            partial: state.partial.clone(),
        };
        Ok(())
    }

    fn stage_names(&self) -> Vec<String> {
        self.spec.settings.iter().map(|s| s.name.clone()).collect()
    }

    /// Iterate epoch `epoch`'s items. If the pipeline stands inside this epoch (after
    /// [`restore`](Pipeline::restore), or after an earlier iterator was dropped part-way) it
    /// continues from there; otherwise it starts at the epoch's first item.
    ///
    /// Dropping the iterator early cancels every stage and returns once the items in service
    /// right now have finished; every blocking thread is joined.
    pub fn epoch(&mut self, epoch: u64) -> PipelineEpoch<'_, T> {
        if self.pos.epoch != epoch {
            self.pos = Position::start(epoch);
        }
        let at_start =
            self.pos.prefix == 0 && self.pos.done.is_empty() && self.pos.partial.is_empty();
        let opened = match self.ahead.take() {
            Some(run) if run.shared.epoch == epoch && at_start => {
                // Its whole windows are its own now.
                let whole: Vec<usize> = self.windows_now();
                give_room(&run, &whole);
                run.consumer.activate();
                Ok(run)
            }
            other => {
                drop(other);
                self.open(epoch, &self.pos, None)
            }
        };
        let opened = opened.and_then(|run| {
            let total = run.shared.source_total();
            if let Some((e, n)) = self.expect_len.take() {
                if e == epoch && total.is_some_and(|t| t != n) {
                    self.expect_len = Some((e, n));
                    return Err(PipelineError::State(format!(
                        "state was taken from a source of {n} items; this pipeline's has {} (epoch {epoch})",
                        total.unwrap_or(0)
                    )));
                }
            }
            self.source_len = total;
            Ok(run)
        });
        match opened {
            Ok(run) => PipelineEpoch {
                pipeline: self,
                run: Some(run),
                error: None,
                last_progress: Instant::now(),
                ahead_opened: false,
                holding: 0,
                let_go: 0,
                closed: false,
            },
            Err(e) => PipelineEpoch {
                pipeline: self,
                run: None,
                error: Some(e),
                last_progress: Instant::now(),
                ahead_opened: false,
                holding: 0,
                let_go: 0,
                closed: false,
            },
        }
    }

    /// Open `epoch`'s run from `pos`; `room`, if given, is each segment's window to start
    /// with (a prefetched epoch's share).
    fn open(
        &self,
        epoch: u64,
        pos: &Position,
        room: Option<&[usize]>,
    ) -> Result<Run, PipelineError> {
        let spec = &self.spec;
        let mut segments = segment_specs(&spec.segments);
        if let Some(t) = &self.tuned {
            t.apply(&mut segments);
        }
        if let Some(link) = &spec.stateful {
            link.resume_at(epoch, self.pos.prefix);
        }
        if let Some(room) = room {
            for (seg, &w) in segments.iter_mut().zip(room) {
                seg.window = w;
            }
        }
        let feed = catch_unwind(AssertUnwindSafe(|| (spec.feed)(epoch))).map_err(|p| {
            PipelineError::Start(format!(
                "the source panicked making epoch {epoch}: {}",
                engine::panic_text(p.as_ref())
            ))
        })?;
        let shared = Arc::new(Shared::new(
            segments,
            spec.policy,
            spec.ordered,
            epoch,
            feed,
            pos.progress(),
            spec.trace.is_some(),
            Arc::clone(&self.held_peak),
            // The stations' rule reads cpu stages' CPU time to size blocking threads; the
            // head-of-line rule reads wall times: with no blocking stage it needs no CPU clock.
            spec.autotune.as_ref().is_some_and(|cfg| {
                cfg.window_rule == WindowRule::Stations
                    || spec.settings.iter().any(|s| s.kind == StageKind::Blocking)
            }),
        ));
        if let Some(t) = &self.tuned {
            *engine::lock(&shared.floors) = t.floors.clone();
        }
        let mut run = start_run(
            self.pool.as_ref(),
            |slots: &mut Slots, slot| &mut *slots.0[slot],
            &spec.segments,
            &spec.inits,
            shared,
            spec.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            &self.threads_alive,
            spec.autotune.as_ref().map(|cfg| {
                (
                    cfg,
                    tune_shape(spec.workers, &spec.segments, &spec.settings),
                )
            }),
            // Not a prefetched next epoch: the consumer takes from it from the start.
            room.is_none(),
        )?;
        run.grace = spec.grace;
        run.abandoned = Some(Arc::clone(&self.abandoned));
        Ok(run)
    }
}

/// Start a run on `shared`: a job on the pool for each `cpu` station (`access` finds a
/// station's state in a worker's state) and the threads of each blocking station.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_run<S: 'static>(
    pool: Option<&Pool<S>>,
    access: fn(&mut S, usize) -> &mut (dyn Any + Send),
    segments: &[SegTemplate],
    inits: &[(Kind, StateInit)],
    shared: Arc<Shared>,
    seed: u64,
    threads_alive: &Arc<AtomicUsize>,
    tune: Option<(&Autotune, tune::Shape)>,
    active: bool,
) -> Result<Run, PipelineError> {
    let mut jobs = Vec::new();
    // Later stages first: the pool steps older jobs first, so work nearer the consumer is
    // done before new work is started (it frees memory and feeds the consumer).
    for (s, seg) in segments.iter().enumerate().rev() {
        for (k, t) in seg.stations.iter().enumerate().rev() {
            let (Some(strategy), Some(pool)) = (&t.strategy, pool) else {
                continue;
            };
            let weak: Weak<Shared> = Arc::downgrade(&shared);
            let slot = t.slot;
            let options = JobOptions::default()
                // Unbounded: the engine bounds what it submits (queues and windows). Exactly
                // `usize::MAX` also lets a worker count its completions when it runs out of
                // ids rather than after every task (no clock read per task in the job).
                .max_in_flight(usize::MAX)
                .delivery(Delivery::Discard)
                .timing(Timing::Off)
                .seed(seed ^ slot as u64);
            let mut job: Job<()> = pool
                .job(&**strategy, options, move |id, w, state: &mut S| {
                    if let Some(shared) = weak.upgrade() {
                        shared.run_ticket(s, k, id, &mut WorkerStates { state, access }, w);
                    }
                })
                .map_err(|e| PipelineError::Start(e.to_string()))?;
            let _ = shared.station(s, k).submitter.set(job.submitter());
            jobs.push(job);
        }
    }
    let consumer = Arc::new(tune::Consumer::default());
    if active {
        consumer.activate();
    }
    let mut run = Run {
        shared: Arc::clone(&shared),
        consumer,
        jobs,
        threads: Vec::new(),
        controller: None,
        grace: DEFAULT_GRACE,
        abandoned: None,
        joined: false,
    };
    // Starts thread `i` of blocking station `(s, k)`.
    let spawner = {
        let shared = Arc::clone(&shared);
        let alive = Arc::clone(threads_alive);
        let inits: Vec<StateInit> = inits.iter().map(|(_, init)| Arc::clone(init)).collect();
        let slots: Vec<Vec<usize>> = segments
            .iter()
            .map(|g| g.stations.iter().map(|t| t.slot).collect())
            .collect();
        move |s: usize, k: usize, i: usize| -> Result<JoinHandle<()>, String> {
            let shared = Arc::clone(&shared);
            let init = Arc::clone(&inits[slots[s][k]]);
            let name = format!("schedlab-{}-{i}", shared.station(s, k).spec.name);
            alive.fetch_add(1, SeqCst);
            let guard = Alive(Arc::clone(&alive));
            std::thread::Builder::new()
                .name(name)
                .spawn(move || {
                    let _alive = guard;
                    let mut state = init(Runner::Thread(i));
                    shared.blocking_loop(s, k, &mut *state, i);
                })
                .map_err(|e| e.to_string())
        }
    };
    let spawn = spawner.clone();
    // Checked again at each epoch, before its first thread: the OS's headroom may have shrunk
    // since `build()` (a thread past it may abort the process rather than fail to start).
    let wanted = segments
        .iter()
        .enumerate()
        .flat_map(|(s, seg)| {
            let shared = &shared;
            seg.stations
                .iter()
                .enumerate()
                .filter(|(_, t)| t.kind == Kind::Blocking)
                .map(move |(k, _)| shared.station(s, k).spec.conc())
        })
        .fold(usize::from(tune.is_some()), usize::saturating_add);
    if wanted > 0 {
        let limit = scheduler::thread_limit();
        if let Some(m) = scheduler::over_thread_limit("blocking threads", wanted, limit) {
            return Err(PipelineError::Start(m));
        }
    }
    for (s, seg) in segments.iter().enumerate() {
        for (k, t) in seg.stations.iter().enumerate() {
            if t.kind != Kind::Blocking {
                continue;
            }
            // The run's own setting: an autotuned pipeline starts where the last epoch ended.
            for i in 0..shared.station(s, k).spec.conc() {
                match spawn(s, k, i) {
                    Ok(h) => run.threads.push(h),
                    Err(e) => {
                        return Err(PipelineError::Start(format!(
                            "stage '{}': thread {i}: {e}",
                            t.name
                        )));
                    }
                }
            }
        }
    }
    if let Some((cfg, shape)) = tune {
        let cfg = cfg.clone();
        let shared = Arc::clone(&shared);
        let consumer = Arc::clone(&run.consumer);
        let spawned = std::thread::Builder::new()
            .name("schedlab-autotune".into())
            .spawn(move || tune::control(shared, shape, cfg, consumer, Box::new(spawner)))
            .map_err(|e| PipelineError::Start(format!("the autotune thread: {e}")))?;
        run.controller = Some(spawned);
    }
    Ok(run)
}

/// What a run needs of each configured segment.
pub(crate) fn segment_specs(templates: &[SegTemplate]) -> Vec<SegmentSpec> {
    templates
        .iter()
        .map(|seg| SegmentSpec {
            stations: seg
                .stations
                .iter()
                .map(|t| StationSpec {
                    name: Arc::clone(&t.name),
                    kind: t.kind,
                    concurrency: AtomicUsize::new(t.concurrency),
                    queue: AtomicUsize::new(t.queue),
                    f: Arc::clone(&t.f),
                    state_slot: t.slot,
                    timeout: t.timeout,
                    any_runner: t.any_runner,
                    chunk: t.chunk,
                    chunked: t.chunked.clone(),
                    chunk_ns: t.chunk_ns,
                    fixed: t.fixed,
                })
                .collect(),
            tail: seg.tail.clone(),
            window: seg.window,
        })
        .collect()
}

/// The state at `pos`; `len` is an iterator source's length for that epoch, if known.
fn state_of(pos: &Position, spec: &Spec, len: Option<u64>) -> PipelineState {
    let mut fingerprint = spec.fingerprint.clone();
    if spec.order.is_none() {
        fingerprint.len = len;
    }
    PipelineState {
        epoch: pos.epoch,
        positions_done: pos.prefix,
        done: pos.done.iter().copied().collect(),
        partial: pos.partial.clone(),
        stages: spec.settings.iter().map(|s| s.name.clone()).collect(),
        fingerprint: Some(fingerprint),
        source: spec
            .stateful
            .as_ref()
            .map(|link| link.checkpoint(pos.epoch, pos.prefix)),
    }
}

/// The settings an autotuned run ended with, and its feedback's floors.
#[derive(Clone, Debug)]
struct Tuned {
    stations: Vec<(usize, usize)>,
    windows: Vec<usize>,
    floors: engine::Floors,
}

impl Tuned {
    fn of(shared: &Shared) -> Tuned {
        Tuned {
            stations: shared
                .segments
                .iter()
                .flat_map(|g| g.stations.iter().map(|t| (t.spec.conc(), t.spec.cap())))
                .collect(),
            windows: shared
                .segments
                .iter()
                .map(|g| g.window.load(std::sync::atomic::Ordering::Relaxed))
                .collect(),
            floors: engine::lock(&shared.floors).clone(),
        }
    }

    fn apply(&self, segments: &mut [SegmentSpec]) {
        let mut at = self.stations.iter();
        for (g, seg) in segments.iter_mut().enumerate() {
            seg.window = self.windows[g];
            for t in &mut seg.stations {
                if let Some(&(c, q)) = at.next() {
                    t.concurrency = AtomicUsize::new(c);
                    t.queue = AtomicUsize::new(q);
                }
            }
        }
    }
}

/// Counts a blocking thread out when it ends, however it ends.
struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// One epoch's run: its shared state, its jobs on the pool, its blocking threads.
pub(crate) struct Run {
    pub shared: Arc<Shared>,
    /// What the consumer's thread measures (its waits, the items held when it asks).
    pub consumer: Arc<tune::Consumer>,
    jobs: Vec<Job<()>>,
    threads: Vec<JoinHandle<()>>,
    /// The autotuner's thread (it hands back the threads it started).
    controller: Option<JoinHandle<Vec<JoinHandle<()>>>>,
    /// How long `stop` waits for stage calls still running.
    pub grace: Duration,
    /// Counts the calls abandoned after the grace period.
    pub abandoned: Option<Arc<AtomicUsize>>,
    /// Stopped and joined already (a second `stop` has nothing to wait for).
    joined: bool,
}

impl Run {
    /// Stop every stage: no item starts from now on; wait for the stage calls running (at
    /// most the grace period, then they are abandoned and said so) and join every thread.
    pub fn stop(&mut self) {
        self.halt();
        self.join_threads();
    }

    /// Stop every stage without waiting: no item starts from now on (the calls running go on;
    /// [`stop`](Run::stop) or the drop waits for them).
    pub fn halt(&mut self) {
        self.shared.stop();
        self.jobs.clear(); // dropping a job cancels it
    }

    /// Wait for the calls in progress and the threads, at most `grace`; detach what is left.
    fn join_threads(&mut self) {
        if std::mem::replace(&mut self.joined, true) {
            return;
        }
        let mut threads = std::mem::take(&mut self.threads);
        if let Some(c) = self.controller.take() {
            c.thread().unpark();
            if let Ok(more) = c.join() {
                threads.extend(more);
            }
        }
        let deadline = later(Instant::now(), self.grace);
        let mut pause = Duration::from_micros(50);
        loop {
            let calls = self.shared.calls_running();
            if calls.is_empty() && threads.iter().all(|h| h.is_finished()) {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                let n: usize = calls.iter().map(|(_, n)| n).sum();
                if n > 0 {
                    if let Some(a) = &self.abandoned {
                        a.fetch_add(n, SeqCst);
                    }
                    let names: Vec<String> = calls
                        .iter()
                        .map(|(name, n)| format!("stage '{name}': {n}"))
                        .collect();
                    eprintln!(
                        "schedlab: pipeline epoch {}: calls still running {} ms after it was stopped, abandoned (their threads are left running): {}",
                        self.shared.epoch,
                        self.grace.as_millis(),
                        names.join(", ")
                    );
                }
                break;
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
        for h in threads {
            if h.is_finished() {
                let _ = h.join();
            } // else: stuck in a call; dropping the handle detaches it
        }
    }

    /// End a run whose items were all handed out: join its threads and wait for its jobs to
    /// let go; returns their steals (each job's report counts them).
    pub fn finish(&mut self) -> u64 {
        self.shared.stop();
        self.join_threads();
        self.jobs
            .drain(..)
            .map(|j| j.finish().map_or(0, |r| r.steals))
            .sum()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The iterator over one epoch's items under its old name.
#[deprecated(
    since = "0.2.0",
    note = "renamed PipelineEpoch (the pair of LoaderEpoch)"
)]
pub type Items<'a, T> = PipelineEpoch<'a, T>;

/// The items of one epoch: `Result<T, PipelineError>`, in source order (or as ready).
pub struct PipelineEpoch<'a, T: Send + 'static> {
    pipeline: &'a mut Pipeline<T>,
    run: Option<Run>,
    error: Option<PipelineError>,
    last_progress: Instant,
    /// The next epoch's run was opened (or tried) by this iterator.
    ahead_opened: bool,
    /// This iterator closed its run (its report is the pipeline's last).
    closed: bool,
    /// Units of the last segment the consumer holds (its last item), and those it let go of
    /// in this call ([`PipelineBuilder::consumer_window`]).
    holding: usize,
    let_go: usize,
}

impl<T: Send + 'static> fmt::Debug for PipelineEpoch<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineEpoch")
            .field("epoch", &self.pipeline.pos.epoch)
            .finish_non_exhaustive()
    }
}

/// Set `run`'s windows to `room` and feed every segment whose window grew.
fn give_room(run: &Run, room: &[usize]) {
    for (s, (seg, &w)) in run.shared.segments.iter().zip(room).enumerate() {
        if seg.window.swap(w, SeqCst) < w {
            run.shared.kick_feed(s);
        }
    }
}

impl<T: Send + 'static> Pipeline<T> {
    /// Each segment's window for a new epoch: the built one, or where autotune left it.
    fn windows_now(&self) -> Vec<usize> {
        match &self.tuned {
            Some(t) => t.windows.clone(),
            None => self.spec.segments.iter().map(|g| g.window).collect(),
        }
    }
}

impl<T: Send + 'static> PipelineEpoch<'_, T> {
    /// With [`PipelineBuilder::prefetch_next_epoch`]: once this epoch's source has ended,
    /// open the next epoch's run, and give it what this run's windows leave free.
    fn top_up_ahead(&mut self) {
        if !self.pipeline.spec.prefetch_next_epoch {
            return;
        }
        let Some(run) = self.run.as_ref() else { return };
        if !run.shared.source_ended() {
            return;
        }
        let room: Vec<usize> = run
            .shared
            .segments
            .iter()
            .enumerate()
            .map(|(s, seg)| seg.window.load(SeqCst).saturating_sub(run.shared.held(s)))
            .collect();
        match &self.pipeline.ahead {
            Some(ahead) => give_room(ahead, &room),
            None if !self.ahead_opened => {
                self.ahead_opened = true;
                let next = run.shared.epoch + 1;
                if let Ok(a) = self
                    .pipeline
                    .open(next, &Position::start(next), Some(&room))
                {
                    self.pipeline.ahead = Some(a);
                }
            }
            None => {}
        }
    }

    /// Where the pipeline stands now, for a checkpoint taken while iterating.
    pub fn state(&self) -> PipelineState {
        match &self.run {
            Some(run) => {
                // Under the progress lock: a stateful source forgets its checkpoints below the
                // prefix only under it.
                let progress = lock(&run.shared.progress);
                let pos = Position::from_progress(run.shared.epoch, &progress);
                state_of(&pos, &self.pipeline.spec, run.shared.source_total())
            }
            None => self.pipeline.state(),
        }
    }

    /// What this epoch measured so far; once it ended (the iterator returned `None`, or a
    /// failure policy halted it), its whole report, as [`Pipeline::report`] then gives it.
    pub fn report(&self) -> Option<PipelineReport> {
        match &self.run {
            Some(r) => Some(report_of(&self.pipeline.spec, r)),
            None if self.closed => self.pipeline.report().cloned(),
            None => None,
        }
    }

    /// Items each segment of this epoch's run admits at once, now (autotune may change
    /// them while the epoch runs; [`Pipeline::windows`] once it ended).
    pub fn windows(&self) -> Vec<usize> {
        match &self.run {
            Some(run) => run
                .shared
                .segments
                .iter()
                .map(|g| g.window.load(SeqCst))
                .collect(),
            None => self.pipeline.windows_now(),
        }
    }

    /// After this epoch ended, the consumer asked again: it let go of the last item, and the
    /// prefetched next epoch has the whole windows ([`PipelineBuilder::consumer_window`]).
    fn asked_after_end(&mut self) {
        if self.run.is_none() {
            if let Some(ahead) = &self.pipeline.ahead {
                give_room(ahead, &self.pipeline.windows_now());
            }
        }
    }

    /// Items held now over every segment, this epoch's run and the prefetched next one's,
    /// less the consumer's last item (it has it: not in flight).
    fn held(&self) -> usize {
        (self.run.as_ref().map_or(0, |r| r.shared.held_all())
            + self
                .pipeline
                .ahead
                .as_ref()
                .map_or(0, |r| r.shared.held_all()))
        .saturating_sub(self.holding)
    }

    /// Whether segment `s`'s window is full now (this epoch's run and the prefetched next
    /// one's together, less the consumer's last item).
    fn window_full(&self, s: usize) -> bool {
        let Some(run) = &self.run else { return false };
        let held =
            run.shared.held(s) + self.pipeline.ahead.as_ref().map_or(0, |r| r.shared.held(s));
        held.saturating_sub(self.holding) >= run.shared.segments[s].window.load(SeqCst)
    }

    /// Stage calls running now, this epoch's run and the prefetched next one's.
    fn calls_running(&self) -> usize {
        let calls = |run: &Run| {
            run.shared
                .calls_running()
                .iter()
                .map(|(_, n)| n)
                .sum::<usize>()
        };
        self.run.as_ref().map_or(0, calls) + self.pipeline.ahead.as_ref().map_or(0, calls)
    }

    /// Blocking-stage threads alive now ([`Pipeline::threads_alive`], while the pipeline is
    /// borrowed by this iterator).
    pub fn threads_alive(&self) -> usize {
        self.pipeline.threads_alive()
    }

    /// End the run: keep its report and where it stood.
    fn close(&mut self, finished: bool) {
        let Some(mut run) = self.run.take() else {
            return;
        };
        self.closed = true;
        if !finished {
            // Stopped before both are waited for: a worker freed by this run must not start
            // the next epoch's items.
            if let Some(ahead) = self.pipeline.ahead.as_mut() {
                ahead.halt();
            }
        }
        let steals = if finished {
            run.finish()
        } else {
            run.stop();
            0
        };
        let mut report = report_of(&self.pipeline.spec, &run);
        report.steals = steals;
        write_trace(&self.pipeline.spec, &run);
        if self.pipeline.spec.autotune.is_some() {
            self.pipeline.tuned = Some(Tuned::of(&run.shared));
        }
        let epoch = run.shared.epoch;
        self.pipeline.pos = if finished {
            Position::start(epoch + 1)
        } else {
            Position::from_progress(epoch, &lock(&run.shared.progress))
        };
        self.pipeline.report = Some(report);
        if finished {
            // The next epoch has the windows whole now (less the consumer's last item, until
            // it asks for the next epoch, under the Loader's rule).
            let mut whole = self.pipeline.windows_now();
            if let Some(last) = whole.last_mut() {
                *last = last.saturating_sub(std::mem::take(&mut self.let_go));
            }
            if let Some(ahead) = &self.pipeline.ahead {
                give_room(ahead, &whole);
            }
        } else {
            self.pipeline.ahead = None;
        }
    }

    fn item_error(&self, f: Fault, epoch: u64) -> PipelineError {
        let index = self
            .pipeline
            .spec
            .order
            .as_ref()
            .and_then(|(len, sampler)| {
                // The sampler's order is a pure function of the epoch (padded positions wrap).
                let order = sampler.epoch_order(*len, epoch);
                let p = match self.pipeline.spec.pad {
                    Some(_) if order.len() > 0 => f.src as usize % order.len(),
                    _ => f.src as usize,
                };
                order.get(p)
            });
        PipelineError::Item {
            stage: f.stage.to_string(),
            position: f.src,
            index,
            epoch,
            message: f.message,
            panicked: f.panicked,
            count: f.count,
        }
    }
}

fn report_of(spec: &Spec, run: &Run) -> PipelineReport {
    let sh = &run.shared;
    let accs: Vec<_> = spec
        .segments
        .iter()
        .enumerate()
        .flat_map(|(s, seg)| (0..seg.stations.len()).map(move |k| (s, k)))
        .map(|(s, k)| sh.station_acc(s, k))
        .collect();
    let end = sh.last_item().unwrap_or_else(Instant::now);
    let (items, source_items) = sh.delivered();
    // The settings as they are now (the autotuner may have changed them).
    let settings: Vec<StageSetting> = spec
        .segments
        .iter()
        .enumerate()
        .flat_map(|(s, seg)| (0..seg.stations.len()).map(move |k| (s, k)))
        .zip(&spec.settings)
        .map(|((s, k), set)| {
            let live = &sh.station(s, k).spec;
            StageSetting {
                name: set.name.clone(),
                kind: set.kind,
                concurrency: live.conc(),
                queue: live.cap(),
                per_item: set.per_item,
            }
        })
        .collect();
    let mut report = PipelineReport::build(
        sh.epoch,
        spec.workers,
        end.duration_since(sh.started).as_secs_f64(),
        items,
        source_items,
        sh.first_item
            .get()
            .map(|t| t.duration_since(sh.started).as_secs_f64() * 1e3),
        sh.failures(),
        &settings,
        &accs,
    );
    if spec.autotune.is_some() {
        report.tuning = Some(lock(&sh.tuning).clone());
    }
    report.consumer_wait_s = run.consumer.in_next_ns() as f64 / 1e9;
    (report.occupancy_mean, report.occupancy_max) = run.consumer.occupancy();
    report
}

fn write_trace(spec: &Spec, run: &Run) {
    let (Some(path), Some(rows)) = (&spec.trace, &run.shared.trace) else {
        return;
    };
    let rows = std::mem::take(&mut *lock(rows));
    let Ok(file) = std::fs::OpenOptions::new().append(true).open(path) else {
        eprintln!(
            "schedlab: cannot append the pipeline trace to {}",
            path.display()
        );
        return;
    };
    let mut w = std::io::BufWriter::new(file);
    for (slot, src, ns) in rows {
        let s = &spec.settings[slot as usize];
        let kind = match s.kind {
            StageKind::Cpu => "cpu",
            StageKind::Blocking => "blocking",
        };
        let _ = writeln!(w, "{},{kind},{},{src},{ns}", s.name, run.shared.epoch);
    }
    if w.flush().is_err() {
        eprintln!(
            "schedlab: cannot write the pipeline trace to {}",
            path.display()
        );
    }
}

impl<T: Send + 'static> Iterator for PipelineEpoch<'_, T> {
    type Item = Result<T, PipelineError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        let Some(run) = self.run.as_ref() else {
            // Asked again after the end: the consumer let go of its last item (under the
            // consumer's window a prefetched next epoch has the whole windows now).
            self.asked_after_end();
            return None;
        };
        let shared = Arc::clone(&run.shared);
        let consumer = Arc::clone(&run.consumer);
        let epoch = shared.epoch;
        if let Some((every, f)) = &self.pipeline.spec.progress {
            if self.last_progress.elapsed() >= *every {
                self.last_progress = Instant::now();
                if let Some(r) = self.report() {
                    f(&r);
                }
            }
        }
        let entered = Instant::now();
        let held = self.held();
        let full = self.pipeline.spec.hol.is_some_and(|s| self.window_full(s));
        self.let_go = std::mem::take(&mut self.holding);
        shared.let_go(self.let_go);
        let (delivered, holding) = shared.take_holding(self.pipeline.spec.consumer_holds);
        self.holding = holding;
        // A wait with the window full that ended with CPU workers idle for want of room.
        let stalled = full && self.calls_running() < self.pipeline.spec.workers;
        consumer.call(held, entered.elapsed(), stalled);
        match delivered {
            Delivered::Value { value, parts } => {
                let _ = parts;
                self.top_up_ahead();
                Some(Ok(downcast::<T>(value)))
            }
            Delivered::Failed(f) => {
                self.top_up_ahead();
                Some(Err(self.item_error(f, epoch)))
            }
            Delivered::Halted { failures, limit } => {
                self.close(false);
                Some(Err(PipelineError::Halted {
                    epoch,
                    failures,
                    limit,
                }))
            }
            Delivered::End => {
                let halted = shared.halted();
                self.close(!halted);
                None
            }
        }
    }
}

impl<T: Send + 'static> Drop for PipelineEpoch<'_, T> {
    fn drop(&mut self) {
        self.close(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Autotune, Remainder, Sampler, Stage};

    fn read(i: usize) -> usize {
        std::thread::sleep(Duration::from_millis(1));
        i
    }

    fn decode(i: usize) -> usize {
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(1) {
            std::hint::spin_loop();
        }
        i
    }

    /// Feedback's floors are the next epoch's: a floor of 7 read threads (as feedback would
    /// have left it) holds in the next epoch, where the model alone wants 3 or 4 (1 ms reads
    /// for a decode of 1 ms on 2 workers: 2 threads busy, +25%, one spare at least).
    /// Before, each epoch's controller started with no floor, and its first model decision
    /// took the threads feedback had added back.
    #[test]
    fn feedback_floors_outlive_the_epoch_that_raised_them() {
        let n = 400;
        let mut p = Pipeline::from_sampler(n, Sampler::sequential())
            .map(Stage::blocking("read", 1), read)
            .map(Stage::cpu("decode"), decode)
            .batch(8, Remainder::Partial)
            .workers(2)
            .autotune(Autotune::new().interval(Duration::from_millis(5)))
            .build()
            .unwrap();
        let seen: usize = p.epoch(0).map(|b| b.unwrap().len()).sum();
        assert_eq!(seen, n);
        let t = p
            .tuned
            .as_mut()
            .expect("an autotuned epoch leaves its settings");
        t.floors = engine::Floors {
            stations: vec![7, 0],
            windows: vec![0],
        };
        let items: Vec<usize> = p.epoch(1).flat_map(|b| b.unwrap()).collect();
        assert_eq!(items, (0..n).collect::<Vec<_>>());
        let report = p.report().unwrap();
        let read = report.stages.iter().find(|s| s.name == "read").unwrap();
        assert!(read.concurrency >= 7, "{report}");
        // and the next epoch starts from them again
        assert_eq!(p.tuned.as_ref().unwrap().floors.stations, vec![7, 0]);
    }
}
