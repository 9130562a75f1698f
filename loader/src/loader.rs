//! The builder, the loader, and the iterator over one epoch's batches.

use std::collections::BTreeSet;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scheduler::{Pin, Strategy, WorkerId};
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::LoaderError;
use crate::pipeline::{
    panic_text as panic_message, Autotune, OnFailure, Pipeline, PipelineEpoch, PipelineError,
    PipelineReport, PipelineState, Runner, Stage, TuneChange, TunePoint, Tuning, WindowRule,
    MAX_CPU_CONCURRENCY,
};
use crate::plan::{Plan, Remainder};
use crate::report::{Acc, LoaderReport, Setup};
use crate::sampler::{EpochOrder, Sampler};

/// What one task of the pool loads: one sample, or a whole batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One task per sample: a slow sample holds up one worker, not a batch (the default).
    #[default]
    Sample,
    /// One task per batch, collated on the worker (PyTorch's scheme).
    Batch,
}

/// What a batch holding a bad sample (error, panic, timeout) becomes.
///
/// Deprecated: the one name is [`OnFailure`] ([`LoaderBuilder::on_failure`]); `Yield` and
/// `Skip` mean the same there.
#[deprecated(
    since = "0.2.0",
    note = "use loader::OnFailure with LoaderBuilder::on_failure"
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// The batch's position yields `Err(LoaderError)` naming the (first) bad index; its good
    /// samples are dropped. The default.
    Yield,
    /// Bad samples are left out: the batch is collated from the good ones (a batch with none
    /// is skipped). They are counted in [`LoaderReport::failed`].
    Skip,
}

#[allow(deprecated, clippy::derivable_impls)] // a derived Default names the deprecated variant
impl Default for OnError {
    fn default() -> OnError {
        OnError::Yield
    }
}

#[allow(deprecated)]
impl From<OnError> for OnFailure {
    fn from(e: OnError) -> OnFailure {
        match e {
            OnError::Yield => OnFailure::Yield,
            OnError::Skip => OnFailure::Skip,
        }
    }
}

/// The loader's builder under its old name.
#[deprecated(
    since = "0.2.0",
    note = "renamed LoaderBuilder (the pair of PipelineBuilder)"
)]
pub type Builder<D, B = Vec<<D as Dataset>::Sample>> = LoaderBuilder<D, B>;

/// The iterator over one epoch's batches under its old name.
#[deprecated(
    since = "0.2.0",
    note = "renamed LoaderEpoch (the pair of PipelineEpoch)"
)]
pub type Epoch<'a, D, B> = LoaderEpoch<'a, D, B>;

/// A batch handed to the consumer.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch<B> {
    /// The collated samples.
    pub data: B,
    /// The dataset indices of the samples in `data`, in the order collate received them.
    pub indices: Vec<usize>,
    /// The epoch.
    pub epoch: u64,
    /// The batch's number within the epoch (0, 1, …; in order when the loader is ordered).
    pub number: usize,
}

/// Where a loader stands: enough to resume an interrupted epoch exactly.
///
/// Serialisable (serde): store it with a training checkpoint, then
/// [`Loader::restore`] it on a loader built with the same dataset length, batch size,
/// remainder mode and sampler. The next [`Loader::epoch`] call for `epoch` yields exactly the
/// batches an uninterrupted run would still have yielded, in the same order (for an ordered
/// loader; an as-ready loader yields exactly the remaining samples).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderState {
    /// The epoch in progress (or the next one, if the last finished).
    pub epoch: u64,
    /// Batches already handed out in that epoch.
    pub batches_done: usize,
    /// Every position below this one has been handed out.
    pub positions_done: usize,
    /// Positions at or above `positions_done` handed out as well (as-ready loaders only).
    pub consumed: Vec<usize>,
    /// The dataset length the state was taken with.
    pub len: usize,
    /// The batch size.
    pub batch_size: usize,
    /// The remainder mode.
    pub remainder: Remainder,
    /// The shuffle seed, if shuffled.
    pub seed: Option<u64>,
    /// `(rank, world)`, if sharded.
    pub shard: Option<(usize, usize)>,
    /// The sampler's order: `sequential`, `shuffled` or `custom` (`None` in a state saved by
    /// an older version: not checked).
    #[serde(default)]
    pub sampler: Option<String>,
}

type Collate<T, B> = Arc<dyn Fn(Vec<T>) -> B + Send + Sync>;

/// Builds a [`Loader`]; see the crate docs for an example.
pub struct LoaderBuilder<D: Dataset, B = Vec<<D as Dataset>::Sample>> {
    dataset: D,
    collate: Collate<D::Sample, B>,
    batch_size: usize,
    remainder: Remainder,
    sampler: Sampler,
    workers: Option<usize>,
    pin: Pin,
    strategy: Result<Arc<dyn Strategy>, String>,
    prefetch: Option<usize>,
    ordered: bool,
    granularity: Granularity,
    timeout: Option<Duration>,
    on_failure: OnFailure,
    seed: u64,
    prefetch_next_epoch: bool,
    autotune: Option<Autotune>,
    grace: Duration,
    chunk: usize,
    chunk_time: Option<Duration>,
}

impl<D: Dataset, B> fmt::Debug for LoaderBuilder<D, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoaderBuilder")
            .field("len", &self.dataset.len())
            .field("batch_size", &self.batch_size)
            .field("remainder", &self.remainder)
            .field("sampler", &self.sampler)
            .field("workers", &self.workers)
            .field("prefetch", &self.prefetch)
            .field("ordered", &self.ordered)
            .field("granularity", &self.granularity)
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

/// The loader's default strategy: `central`, chosen by measurement for in-order delivery (a
/// worker stuck on a slow sample holds back only that sample; see `docs/defaults.md`).
pub const DEFAULT_STRATEGY: &str = "central";

fn parse_strategy(spec: &str) -> Result<Arc<dyn Strategy>, String> {
    strategies::parse(spec)
        .map(Arc::from)
        .map_err(|e| e.to_string())
}

impl<D: Dataset> LoaderBuilder<D> {
    fn new(dataset: D) -> Self {
        LoaderBuilder {
            dataset,
            collate: Arc::new(|v| v),
            batch_size: 1,
            remainder: Remainder::Partial,
            sampler: Sampler::sequential(),
            workers: None,
            pin: Pin::None,
            strategy: parse_strategy(DEFAULT_STRATEGY),
            prefetch: None,
            ordered: true,
            granularity: Granularity::Sample,
            timeout: None,
            on_failure: OnFailure::Yield,
            seed: 0,
            prefetch_next_epoch: true,
            autotune: None,
            grace: crate::pipeline::DEFAULT_GRACE,
            chunk: 1,
            chunk_time: None,
        }
    }
}

impl<D: Dataset, B: Send + 'static> LoaderBuilder<D, B> {
    /// Samples per batch (default 1).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// What to do with an epoch's last, incomplete batch (default [`Remainder::Partial`]).
    pub fn remainder(mut self, r: Remainder) -> Self {
        self.remainder = r;
        self
    }

    /// The order of indices (default [`Sampler::sequential`]).
    pub fn sampler(mut self, s: Sampler) -> Self {
        self.sampler = s;
        self
    }

    /// Shorthand for `sampler(Sampler::shuffled(seed))`.
    pub fn shuffle(self, seed: u64) -> Self {
        self.sampler(Sampler::shuffled(seed))
    }

    /// Turn a batch's samples into the value handed out (default: the `Vec` itself). It runs on
    /// the consumer's thread at sample granularity, on a worker at batch granularity.
    pub fn collate<B2, F>(self, f: F) -> LoaderBuilder<D, B2>
    where
        F: Fn(Vec<D::Sample>) -> B2 + Send + Sync + 'static,
    {
        LoaderBuilder {
            dataset: self.dataset,
            collate: Arc::new(f),
            batch_size: self.batch_size,
            remainder: self.remainder,
            sampler: self.sampler,
            workers: self.workers,
            pin: self.pin,
            strategy: self.strategy,
            prefetch: self.prefetch,
            ordered: self.ordered,
            granularity: self.granularity,
            timeout: self.timeout,
            on_failure: self.on_failure,
            seed: self.seed,
            prefetch_next_epoch: self.prefetch_next_epoch,
            autotune: self.autotune,
            grace: self.grace,
            chunk: self.chunk,
            chunk_time: self.chunk_time,
        }
    }

    /// Worker threads (default: the available parallelism).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// How worker threads are pinned (default none).
    pub fn pin(mut self, pin: Pin) -> Self {
        self.pin = pin;
        self
    }

    /// The scheduling strategy as a spec string of the `strategies` crate (default
    /// [`DEFAULT_STRATEGY`], `central`); a bad spec is reported by [`build`](LoaderBuilder::build).
    pub fn strategy(mut self, spec: &str) -> Self {
        self.strategy = parse_strategy(spec);
        self
    }

    /// The scheduling strategy as a value.
    pub fn strategy_value(mut self, strategy: Arc<dyn Strategy>) -> Self {
        self.strategy = Ok(strategy);
        self
    }

    /// Batches in flight at most (default 2 per worker): at most `prefetch · batch_size`
    /// samples exist that have not been handed out yet, this epoch's and the next's together.
    pub fn prefetch(mut self, batches: usize) -> Self {
        self.prefetch = Some(batches);
        self
    }

    /// Hand batches out in order (true, the default) or as they are ready.
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// One task per sample (default) or per batch.
    pub fn granularity(mut self, g: Granularity) -> Self {
        self.granularity = g;
        self
    }

    /// A sample whose `get` takes longer than this is reported as [`LoaderError::Timeout`] at
    /// its position and its value is discarded. A thread cannot be interrupted: the worker
    /// is busy until `get` returns, so this flags slow samples, it does not bound waiting.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// What a batch with a bad sample becomes (default [`OnFailure::Yield`]): `Yield` makes
    /// it an `Err` at its position naming the (first) bad index; `Skip` collates the good
    /// samples (a batch with none is skipped) and counts the bad ones in
    /// [`LoaderReport::failed`]. The pipeline's name and type: [`PipelineBuilder::on_failure`](crate::PipelineBuilder::on_failure).
    /// `Halt` is not supported by the Loader yet: [`build`](LoaderBuilder::build) refuses it.
    pub fn on_failure(mut self, policy: OnFailure) -> Self {
        self.on_failure = policy;
        self
    }

    /// The old name of [`on_failure`](LoaderBuilder::on_failure).
    #[deprecated(since = "0.2.0", note = "use on_failure(loader::OnFailure)")]
    #[allow(deprecated)]
    pub fn on_error(self, policy: OnError) -> Self {
        self.on_failure(policy.into())
    }

    /// Seed of the strategy's randomness (victim choice and the like).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Start loading the next epoch's first batches while the consumer finishes this one
    /// (default true). They count against `prefetch`.
    pub fn prefetch_next_epoch(mut self, on: bool) -> Self {
        self.prefetch_next_epoch = on;
        self
    }

    /// How long ending an epoch early (dropping its iterator, or a `restore`) and dropping
    /// the loader wait for `get` calls still running (default
    /// [`DEFAULT_GRACE`](crate::pipeline::DEFAULT_GRACE), 5 s), as
    /// [`PipelineBuilder::grace`](crate::PipelineBuilder::grace) does for a pipeline: calls
    /// still running then are abandoned (their workers are left running, detached, and end
    /// when the call returns) and stderr gets one line naming them.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace.min(crate::pipeline::MAX_GRACE);
        self
    }

    /// Tune the prefetch online from the measured sample times, within an optional memory cap
    /// ([`Autotune::max_items`], in samples): the prefetch given (or the default) is the
    /// starting guess, and the next epoch starts where this one's tuning ended. The workers
    /// stay as built (their dataset states live on their threads; `max_threads` does not
    /// apply): to tune the threads of a slow I/O step, make it a blocking stage of a
    /// [`Pipeline`](crate::Pipeline). Every change is in the report's
    /// [`tuning`](LoaderReport::tuning).
    ///
    /// This is the pipeline's autotune with the head-of-line window rule
    /// (`autotune(settings.window_rule(WindowRule::HeadOfLine))` on the loader's pipeline,
    /// [`WindowRule::HeadOfLine`](crate::WindowRule::HeadOfLine)): the prefetch is the
    /// pipeline's window, moved by its controller thread.
    ///
    /// ```
    /// use loader::{from_fn, Autotune, Loader};
    ///
    /// let ds = from_fn(500, |i| {
    ///     std::thread::sleep(std::time::Duration::from_micros(50));
    ///     Ok::<_, String>(i)
    /// });
    /// let mut loader = Loader::builder(ds)
    ///     .batch_size(10)
    ///     .workers(4)
    ///     .prefetch(1)
    ///     .autotune(Autotune::new().max_items(200))
    ///     .build()?;
    /// let batches = loader.epoch(0).filter(|b| b.is_ok()).count();
    /// assert_eq!(batches, 50);
    /// assert!(loader.prefetch() * 10 <= 200);
    /// let tuning = loader.report().unwrap().tuning.as_ref().unwrap();
    /// for c in &tuning.changes {
    ///     println!("{:.3} s: prefetch {} -> {} ({})", c.at_s, c.from, c.to, c.why);
    /// }
    /// # Ok::<(), loader::LoaderError>(())
    /// ```
    pub fn autotune(mut self, settings: Autotune) -> Self {
        self.autotune = Some(settings);
        self
    }

    /// Load up to `most` samples per [`Dataset::get_many`] call (default 1: one
    /// [`Dataset::get`] per sample). With `most > 1` the `get` stage is a blocking stage of
    /// `workers` threads (no worker pool): a thread free takes, with its sample, up to
    /// `most − 1` more *of those already waiting* in the window, in order, and loads them in
    /// one call; it never waits to fill a chunk, so a slow sample still holds only its
    /// chunk. Each sample keeps its place, its failure (a panic, or another count of results
    /// than samples, fails the call's samples) and its time (the call's, shared equally).
    /// For datasets whose call costs more than a sample: Python's worker processes, a
    /// batched read. The threads start with each epoch and build their `Dataset::State`
    /// then (the pool's workers keep theirs for the loader's life); while the next epoch's
    /// first batches load ([`prefetch_next_epoch`](LoaderBuilder::prefetch_next_epoch)), both
    /// epochs' threads run, `2 × workers` at most. Needs
    /// [`Granularity::Sample`], the `central` strategy (the threads take the waiting
    /// samples from one queue) and no pinning; [`build`](LoaderBuilder::build) refuses the
    /// others, and `0`.
    ///
    /// ```
    /// use loader::{Dataset, Loader};
    ///
    /// /// Counts its calls: a call costs more than a sample here.
    /// struct Remote;
    /// impl Dataset for Remote {
    ///     type Sample = usize;
    ///     type Error = String;
    ///     type State = usize; // this thread's calls
    ///     fn len(&self) -> usize { 1000 }
    ///     fn init(&self, _worker: usize) -> usize { 0 }
    ///     fn get(&self, i: usize, calls: &mut usize) -> Result<usize, String> {
    ///         *calls += 1;
    ///         Ok(i)
    ///     }
    ///     fn get_many(&self, ids: &[usize], calls: &mut usize) -> Vec<Result<usize, String>> {
    ///         *calls += 1;
    ///         ids.iter().map(|&i| Ok(i)).collect()
    ///     }
    /// }
    ///
    /// let mut loader = Loader::builder(Remote)
    ///     .batch_size(10)
    ///     .workers(2)
    ///     .chunk(16)
    ///     .build()?;
    /// let samples: Vec<usize> = loader.epoch(0).flat_map(|b| b.unwrap().data).collect();
    /// assert_eq!(samples, (0..1000).collect::<Vec<_>>());
    /// # Ok::<(), loader::LoaderError>(())
    /// ```
    pub fn chunk(mut self, most: usize) -> Self {
        self.chunk = most;
        self
    }

    /// With [`chunk`](LoaderBuilder::chunk): a thread takes more samples for its call only
    /// while their expected time (the samples times the mean time per sample so far) stays
    /// within `limit` (one sample at a time until one has finished), so that cheap samples
    /// go many to a call and slow ones alone ([`Stage::chunk_time`]).
    pub fn chunk_time(mut self, limit: Duration) -> Self {
        self.chunk_time = Some(limit);
        self
    }

    /// PyTorch's `DataLoader` scheme: one task per batch, strict round-robin over the workers,
    /// in order, 2 batches in flight per worker.
    pub fn pytorch_style(mut self) -> Self {
        self.granularity = Granularity::Batch;
        self.strategy = parse_strategy("round-robin");
        self.ordered = true;
        self.prefetch = None;
        self
    }

    /// Check the configuration, start the workers (each builds its `Dataset::State`) and
    /// return the loader.
    ///
    /// The loader is a [`Pipeline`] built through [`PipelineBuilder`](crate::PipelineBuilder):
    /// its source is the epoch's order (cut per the remainder mode), one `cpu` stage `get`
    /// loads a sample (or, at [`Granularity::Batch`], a whole batch, collated on the worker),
    /// and at sample granularity a `batch` ends the chain, with
    /// [`consumer_window`](crate::PipelineBuilder::consumer_window). `prefetch` is the window,
    /// `autotune` the pipeline's under [`WindowRule::HeadOfLine`](crate::WindowRule), and
    /// `ordered`, `seed`, `pin`, `grace` and `prefetch_next_epoch` are the pipeline's.
    ///
    /// # Errors
    /// [`LoaderError::Config`] naming the field of a bad setting, among them more workers than
    /// this process may start ([`thread_limit`](crate::thread_limit), checked before anything
    /// is allocated or spawned); [`LoaderError::Start`] if a worker cannot be started or its
    /// init panics.
    pub fn build(self) -> Result<Loader<D, B>, LoaderError> {
        let cfg = |m: String| LoaderError::Config(m);
        if self.batch_size == 0 {
            return Err(cfg("batch_size: must be >= 1, got 0".into()));
        }
        let workers = self
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if workers == 0 {
            return Err(cfg("workers: must be >= 1, got 0".into()));
        }
        // Before anything is sized by it or spawned (past the OS's limits a thread may abort
        // the process rather than fail to start).
        if let Some(m) = scheduler::over_thread_limit("workers", workers, scheduler::thread_limit())
        {
            return Err(cfg(m));
        }
        let prefetch = self.prefetch.unwrap_or(2 * workers);
        if prefetch == 0 {
            return Err(cfg("prefetch: must be >= 1 batch, got 0".into()));
        }
        self.sampler.check().map_err(cfg)?;
        crate::sampler::order_fits(self.dataset.len()).map_err(|m| cfg(format!("dataset: {m}")))?;
        let skip = match self.on_failure {
            OnFailure::Yield => false,
            OnFailure::Skip => true,
            OnFailure::Halt(_) => {
                return Err(cfg(
                    "on_failure: halt is not supported by the Loader yet; allowed: yield, skip (a Pipeline halts)"
                        .into(),
                ))
            }
        };
        let strategy = self.strategy.map_err(|e| cfg(format!("strategy: {e}")))?;
        strategy
            .validate(workers)
            .map_err(|e| cfg(format!("strategy: {e}")))?;
        // Autotune is the pipeline's, its window sized by the head-of-line rule (the
        // prefetch): checked here in the loader's terms (samples, batches).
        let mut prefetch = prefetch;
        if let Some(settings) = &self.autotune {
            if settings.interval.is_zero() {
                return Err(cfg("autotune: interval: must be longer than 0".into()));
            }
            if let Some(n) = settings.max_items {
                if n < self.batch_size {
                    return Err(cfg(format!(
                        "autotune: max_items: {n} samples cannot hold one batch; allowed: >= the batch size {}",
                        self.batch_size
                    )));
                }
                // The starting guess fitted into the cap.
                prefetch = prefetch.min(n / self.batch_size).max(1);
            }
        }
        let spec = strategy.spec();
        let chunk = self.chunk;
        if chunk == 0 {
            return Err(cfg("chunk: must be >= 1 sample per call, got 0".into()));
        }
        if chunk == 1 && self.chunk_time.is_some() {
            return Err(cfg(
                "chunk_time: bounds a chunk's samples; allowed only with chunk > 1, got chunk 1"
                    .into(),
            ));
        }
        if chunk > 1 {
            if self.granularity == Granularity::Batch {
                return Err(cfg(format!(
                    "chunk: {chunk} samples per call needs sample granularity (a batch task loads its batch whole); allowed with granularity batch: 1"
                )));
            }
            let central = parse_strategy(DEFAULT_STRATEGY).map(|s| s.spec());
            if central.as_deref() != Ok(spec.as_str()) {
                return Err(cfg(format!(
                    "strategy: {spec}: a chunked loader's threads take the waiting samples from one queue; allowed with chunk {chunk}: {DEFAULT_STRATEGY}"
                )));
            }
            if self.pin != Pin::None {
                return Err(cfg(format!(
                    "pin: a chunked loader's threads are not pinned; allowed with chunk {chunk}: none"
                )));
            }
            if self.chunk_time.is_some_and(|d| d.is_zero()) {
                return Err(cfg("chunk_time: must be longer than 0".into()));
            }
        }
        let config = Arc::new(Config {
            dataset: self.dataset,
            collate: self.collate,
            batch_size: self.batch_size,
            remainder: self.remainder,
            sampler: self.sampler,
            workers,
            spec,
            ordered: self.ordered,
            granularity: self.granularity,
            timeout: self.timeout,
            skip,
            autotune: self.autotune.is_some(),
            prefetch,
            chunked: chunk > 1,
        });
        let window = config.cap_units(prefetch);
        // Every unit in the window goes to the strategy at once, as the window allows (round-
        // robin deals them out; a slow sample holds up the units behind it on its worker);
        // under autotune the window may grow, so the stage's bounds are the largest allowed.
        let open = if config.autotune {
            MAX_CPU_CONCURRENCY
        } else {
            window.min(MAX_CPU_CONCURRENCY)
        };
        let get = Stage::cpu("get")
            .strategy_value(strategy)
            .concurrency(open)
            .queue(open);
        let init = {
            let config = Arc::clone(&config);
            move |r: Runner| {
                let w = match r {
                    Runner::Cpu(w) | Runner::Thread(w) => w,
                };
                (w, config.dataset.init(w))
            }
        };
        let resumed: Resumed = Arc::new(Mutex::new(None));
        let builder = match config.granularity {
            Granularity::Sample => {
                let c = Arc::clone(&config);
                let source = Pipeline::from_source(move |epoch| {
                    let plan = c.plan(epoch);
                    (0..plan.total).map(move |p| plan.index(p))
                });
                let c = Arc::clone(&config);
                let loaded = if chunk > 1 {
                    // `workers` threads taking the waiting samples (see `chunk`); kept at
                    // `workers` under autotune, which tunes the prefetch only
                    let get = Stage::blocking("get", workers).fixed().queue(open);
                    let get = match self.chunk_time {
                        Some(limit) => get.chunk_time(limit),
                        None => get,
                    };
                    source.try_map_chunks_with(
                        get,
                        chunk,
                        init,
                        move |indices: Vec<usize>, (w, state): &mut (WorkerId, D::State)| {
                            load_many(&c.dataset, indices, state, *w, c.timeout)
                                .into_iter()
                                .map(|l| Ok::<_, std::convert::Infallible>(Unit::Sample(l)))
                                .collect()
                        },
                    )
                } else {
                    source.try_map_with(
                        get,
                        init,
                        move |index: usize, (_, state): &mut (WorkerId, D::State)| {
                            Ok::<_, std::convert::Infallible>(Unit::Sample(load(
                                &c.dataset, index, state, c.timeout,
                            )))
                        },
                    )
                };
                loaded.batch(config.batch_size, Remainder::Partial)
            }
            Granularity::Batch => {
                let c = Arc::clone(&config);
                let r = Arc::clone(&resumed);
                // The epoch's positions not yet consumed (all of them, unless a state was
                // restored) cut into batches of indices.
                let source = Pipeline::from_source(move |epoch| {
                    let plan = c.plan(epoch);
                    let positions = remaining(&resumed_at(&r, epoch), plan.total);
                    let b = plan.batch_size;
                    (0..positions.len().div_ceil(b)).map(move |k| {
                        batch_positions(&positions, b, k)
                            .map(|p| plan.index(p))
                            .collect::<Vec<usize>>()
                    })
                });
                let c = Arc::clone(&config);
                source.try_map_with(
                    get,
                    init,
                    move |indices: Vec<usize>, (w, state): &mut (WorkerId, D::State)| {
                        Ok::<_, std::convert::Infallible>(vec![load_batch(&c, indices, state, *w)])
                    },
                )
            }
        };
        let builder = builder
            .consumer_window(true)
            .workers(workers)
            .pin(self.pin)
            .ordered(self.ordered)
            .window(window)
            .seed(self.seed)
            .grace(self.grace)
            .prefetch_next_epoch(self.prefetch_next_epoch);
        let builder = match self.autotune {
            Some(settings) => builder.autotune(settings.window_rule(WindowRule::HeadOfLine)),
            None => builder,
        };
        let pipeline = builder.build().map_err(|e| match e {
            PipelineError::Start(m) => LoaderError::Start(m),
            other => LoaderError::Config(other.to_string()),
        })?;
        Ok(Loader {
            pipeline,
            cfg: config,
            at: Stand {
                epoch: 0,
                batches_done: 0,
                report: None,
                resumed,
            },
        })
    }
}

/// At batch granularity, the positions a restored state had consumed in its epoch: that
/// epoch's batches are cut from the rest (the pipeline's positions are those batches).
type Resumed = Arc<Mutex<Option<Arc<Consumed>>>>;

/// Positions of an epoch consumed: every one below `prefix`, and `extra`.
#[derive(Debug)]
struct Consumed {
    epoch: u64,
    prefix: usize,
    extra: BTreeSet<usize>,
}

/// What `resumed` holds for `epoch`.
fn resumed_at(resumed: &Resumed, epoch: u64) -> Option<Arc<Consumed>> {
    let g = resumed.lock().unwrap_or_else(|e| e.into_inner());
    g.as_ref().filter(|c| c.epoch == epoch).cloned()
}

/// The positions below `total` not consumed, in order.
fn remaining(consumed: &Option<Arc<Consumed>>, total: usize) -> EpochOrder {
    match consumed {
        Some(c) => EpochOrder::Listed(
            (c.prefix.min(total)..total)
                .filter(|p| !c.extra.contains(p))
                .collect(),
        ),
        // all of them: nothing to hold
        None => EpochOrder::Range(total),
    }
}

/// The positions of batch `k` when `positions` are cut into batches of `b`.
fn batch_positions(positions: &EpochOrder, b: usize, k: usize) -> impl Iterator<Item = usize> + '_ {
    let n = positions.len();
    let start = k.saturating_mul(b).min(n);
    (start..start.saturating_add(b).min(n)).filter_map(|i| positions.get(i))
}

struct Config<D: Dataset, B> {
    dataset: D,
    collate: Collate<D::Sample, B>,
    batch_size: usize,
    remainder: Remainder,
    sampler: Sampler,
    workers: usize,
    spec: String,
    ordered: bool,
    granularity: Granularity,
    timeout: Option<Duration>,
    /// Bad samples are left out of their batch ([`OnFailure::Skip`]).
    skip: bool,
    /// The pipeline is autotuned (the window is the prefetch the tuner sets).
    autotune: bool,
    /// The prefetch built (the window's, unless autotuned).
    prefetch: usize,
    /// `get` takes samples in chunks ([`LoaderBuilder::chunk`]).
    chunked: bool,
}

impl<D: Dataset, B> Config<D, B> {
    /// The window (units in flight: samples or batches) for `prefetch` batches.
    fn cap_units(&self, prefetch: usize) -> usize {
        match self.granularity {
            Granularity::Sample => prefetch.saturating_mul(self.batch_size),
            Granularity::Batch => prefetch,
        }
    }

    /// The prefetch (batches) of the pipeline's `windows` (its one segment's, in units).
    fn prefetch_of(&self, windows: &[usize]) -> usize {
        if !self.autotune {
            // The window is the built one (saturated, for a huge prefetch).
            return self.prefetch;
        }
        let w = windows.last().copied().unwrap_or(0);
        match self.granularity {
            Granularity::Sample => w / self.batch_size.max(1),
            Granularity::Batch => w,
        }
    }

    /// The pipeline tuner's record in the loader's terms: its one knob, the window, is the
    /// `prefetch` (in batches); a reading's `concurrency` is the workers, its `window` the
    /// prefetch in samples.
    fn tuning(&self, t: &Tuning) -> Tuning {
        let unit = match self.granularity {
            Granularity::Sample => 1,
            Granularity::Batch => self.batch_size,
        };
        let batches = |units: usize| self.prefetch_of(&[units]);
        Tuning {
            stages: t.stages.clone(),
            changes: t
                .changes
                .iter()
                .map(|c| TuneChange {
                    at_s: c.at_s,
                    knob: if c.knob.ends_with(".window") {
                        "prefetch".into()
                    } else {
                        c.knob.clone()
                    },
                    from: batches(c.from),
                    to: batches(c.to),
                    why: c.why.clone(),
                })
                .collect(),
            trajectory: t
                .trajectory
                .iter()
                .map(|p| TunePoint {
                    at_s: p.at_s,
                    items_per_s: p.items_per_s * unit as f64,
                    target_per_s: p.target_per_s.map(|x| x * unit as f64),
                    concurrency: p.concurrency.iter().map(|&c| c.min(self.workers)).collect(),
                    window: p.window.saturating_mul(unit),
                })
                .collect(),
        }
    }

    fn plan(&self, epoch: u64) -> Plan {
        let order = self.sampler.epoch_order(self.dataset.len(), epoch);
        Plan::new(order, self.batch_size, self.remainder)
    }

    fn setup(&self, epoch: u64, prefetch: usize) -> Setup<'_> {
        let batch_granularity = self.granularity == Granularity::Batch;
        Setup {
            strategy: &self.spec,
            granularity: match self.granularity {
                Granularity::Sample => "sample",
                Granularity::Batch => "batch",
            },
            ordered: self.ordered,
            workers: self.workers,
            batch_size: self.batch_size,
            prefetch,
            epoch,
            batch_granularity,
            chunked: self.chunked,
        }
    }

    /// The loader's state from the pipeline's: positions are plan positions at sample
    /// granularity, batches at batch granularity (cut from the positions `resumed` leaves).
    fn loader_state(
        &self,
        ps: &PipelineState,
        batches_done: usize,
        resumed: Option<Arc<Consumed>>,
    ) -> LoaderState {
        let (positions_done, consumed) = match self.granularity {
            Granularity::Sample => (
                ps.positions_done as usize,
                ps.done.iter().map(|&p| p as usize).collect::<Vec<_>>(),
            ),
            Granularity::Batch if ps.positions_done == 0 && ps.done.is_empty() => match resumed {
                Some(c) => (c.prefix, c.extra.iter().copied().collect()),
                None => (0, Vec::new()),
            },
            Granularity::Batch => {
                let b = self.batch_size;
                let positions = remaining(&resumed, self.plan(ps.epoch).total);
                let batch = |k: u64| {
                    batch_positions(&positions, b, usize::try_from(k).unwrap_or(usize::MAX))
                };
                let (mut prefix, mut extra) = match &resumed {
                    Some(c) => (c.prefix, c.extra.clone()),
                    None => (0, BTreeSet::new()),
                };
                for k in (0..ps.positions_done).chain(ps.done.iter().copied()) {
                    extra.extend(batch(k));
                }
                while extra.remove(&prefix) {
                    prefix += 1;
                }
                (prefix, extra.into_iter().collect())
            }
        };
        LoaderState {
            epoch: ps.epoch,
            batches_done,
            positions_done,
            consumed,
            len: self.dataset.len(),
            batch_size: self.batch_size,
            remainder: self.remainder,
            seed: self.sampler.seed(),
            shard: self.sampler.sharding(),
            sampler: Some(self.sampler.kind().to_string()),
        }
    }

    /// The pipeline's state for a loader state, and at batch granularity what it consumed
    /// (the pipeline starts that epoch's batches, cut from the rest, from the first).
    fn pipeline_state(&self, s: &LoaderState) -> (PipelineState, Option<Arc<Consumed>>) {
        let (prefix, done, resumed) = match self.granularity {
            Granularity::Sample => (
                s.positions_done as u64,
                s.consumed.iter().map(|&p| p as u64).collect(),
                None,
            ),
            Granularity::Batch => (
                0,
                Vec::new(),
                Some(Arc::new(Consumed {
                    epoch: s.epoch,
                    prefix: s.positions_done,
                    extra: s.consumed.iter().copied().collect(),
                })),
            ),
        };
        let ps = PipelineState {
            epoch: s.epoch,
            positions_done: prefix,
            done,
            partial: Vec::new(),
            stages: vec!["get".to_string()],
            fingerprint: None,
            source: None,
        };
        (ps, resumed)
    }
}

/// Why one sample (or a batch's collate) is bad.
#[derive(Clone)]
enum Fault {
    Error(String),
    Panic(String),
    /// The collate function panicked on the batch.
    Collate(String),
    Timeout {
        took_ms: u64,
        limit_ms: u64,
    },
}

impl Fault {
    fn at(self, index: usize, epoch: u64, batch: usize) -> LoaderError {
        match self {
            Fault::Error(message) => LoaderError::Sample {
                index,
                epoch,
                batch,
                message,
            },
            Fault::Panic(message) => LoaderError::Panic {
                index,
                epoch,
                batch,
                message,
            },
            Fault::Collate(message) => LoaderError::Collate {
                first: index,
                epoch,
                batch,
                message,
            },
            Fault::Timeout { took_ms, limit_ms } => LoaderError::Timeout {
                index,
                epoch,
                batch,
                took_ms,
                limit_ms,
            },
        }
    }
}

/// One sample loaded on a worker. A bad sample is a value too: the `get` stage never fails,
/// so that the loader decides per batch ([`OnFailure::Yield`] or [`OnFailure::Skip`]) and
/// counts each bad sample.
struct Loaded<T> {
    index: usize,
    result: Result<T, Fault>,
    ns: u64,
    /// The thread that loaded it, in a chunked loader (whose per-worker figures are the
    /// loader's own: the pipeline has none for a blocking stage's threads).
    worker: Option<WorkerId>,
}

/// One delivery of the loader's pipeline: a batch's units (or the pipeline's own error).
type Delivery<T, B> = Result<Vec<Unit<T, B>>, PipelineError>;

/// What the `get` stage hands on: one sample, or (batch granularity) a collated batch.
enum Unit<T, B> {
    Sample(Loaded<T>),
    Batch {
        data: Option<B>,
        indices: Vec<usize>,
        faults: Vec<(usize, Fault)>,
        times: Vec<u64>,
        worker: WorkerId,
    },
}

fn load<D: Dataset>(
    ds: &D,
    index: usize,
    state: &mut D::State,
    timeout: Option<Duration>,
) -> Loaded<D::Sample> {
    let t = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| ds.get(index, state)));
    let took = t.elapsed();
    let result = match r {
        Ok(r) => judged(r, took, timeout),
        Err(p) => Err(Fault::Panic(panic_message(p.as_ref()))),
    };
    Loaded {
        index,
        result,
        ns: took.as_nanos() as u64,
        worker: None,
    }
}

/// A sample `get` returned after `took`: its value, or its error, or a timeout.
fn judged<T, E: fmt::Display>(
    r: Result<T, E>,
    took: Duration,
    timeout: Option<Duration>,
) -> Result<T, Fault> {
    match r {
        Ok(v) => match timeout {
            Some(limit) if took > limit => Err(Fault::Timeout {
                took_ms: took.as_millis() as u64,
                limit_ms: limit.as_millis() as u64,
            }),
            _ => Ok(v),
        },
        Err(e) => Err(Fault::Error(e.to_string())),
    }
}

/// A chunk's samples in one [`Dataset::get_many`] call, each given an equal share of the
/// call's time (its time in the report, and what `timeout` is checked against). A panic, or
/// another count of results than samples, fails every sample of the call.
fn load_many<D: Dataset>(
    ds: &D,
    indices: Vec<usize>,
    state: &mut D::State,
    worker: WorkerId,
    timeout: Option<Duration>,
) -> Vec<Loaded<D::Sample>> {
    let n = indices.len().max(1);
    let t = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| ds.get_many(&indices, state)));
    let share = t.elapsed() / u32::try_from(n).unwrap_or(u32::MAX);
    let ns = share.as_nanos() as u64;
    let fault = match r {
        Ok(results) if results.len() == indices.len() => {
            return indices
                .into_iter()
                .zip(results)
                .map(|(index, r)| Loaded {
                    index,
                    result: judged(r, share, timeout),
                    ns,
                    worker: Some(worker),
                })
                .collect();
        }
        Ok(results) => Fault::Error(format!(
            "get_many returned {} results for {} samples",
            results.len(),
            indices.len()
        )),
        Err(p) => Fault::Panic(panic_message(p.as_ref())),
    };
    indices
        .into_iter()
        .map(|index| Loaded {
            index,
            result: Err(fault.clone()),
            ns,
            worker: Some(worker),
        })
        .collect()
}

/// A whole batch on a worker: its samples, then (if it is to be handed out) collate.
fn load_batch<D: Dataset, B>(
    cfg: &Config<D, B>,
    batch: Vec<usize>,
    state: &mut D::State,
    worker: WorkerId,
) -> Unit<D::Sample, B> {
    let mut samples = Vec::with_capacity(batch.len());
    let mut indices = Vec::with_capacity(batch.len());
    let mut faults = Vec::new();
    let mut times = Vec::with_capacity(batch.len());
    for index in batch {
        let l = load(&cfg.dataset, index, state, cfg.timeout);
        times.push(l.ns);
        match l.result {
            Ok(v) => {
                samples.push(v);
                indices.push(l.index);
            }
            Err(f) => faults.push((l.index, f)),
        }
    }
    let keep = faults.is_empty() || cfg.skip;
    let data = if keep && !samples.is_empty() {
        let first = indices[0];
        match catch_unwind(AssertUnwindSafe(|| (cfg.collate)(samples))) {
            Ok(d) => Some(d),
            Err(p) => {
                faults.push((first, Fault::Collate(panic_message(p.as_ref()))));
                None
            }
        }
    } else {
        None
    };
    Unit::Batch {
        data,
        indices,
        faults,
        times,
        worker,
    }
}

/// What the loader keeps beside its pipeline: where it stands in batches, and its report.
struct Stand {
    /// The epoch in progress (or the next one, if the last finished).
    epoch: u64,
    /// Batches handed out in that epoch.
    batches_done: usize,
    report: Option<LoaderReport>,
    resumed: Resumed,
}

/// A dataset loaded as batches by a pool of worker threads under a scheduling strategy.
///
/// Built by [`Loader::builder`]; iterate an epoch with [`Loader::epoch`]. Dropping the loader
/// stops and joins its worker threads (each worker's `Dataset::State` is dropped on the way).
pub struct Loader<D: Dataset, B = Vec<<D as Dataset>::Sample>> {
    pipeline: Pipeline<Vec<Unit<D::Sample, B>>>,
    cfg: Arc<Config<D, B>>,
    at: Stand,
}

impl<D: Dataset, B> fmt::Debug for Loader<D, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("len", &self.cfg.dataset.len())
            .field("workers", &self.cfg.workers)
            .field("strategy", &self.cfg.spec)
            .field("epoch", &self.at.epoch)
            .field("batches_done", &self.at.batches_done)
            .finish_non_exhaustive()
    }
}

impl<D: Dataset> Loader<D> {
    /// Start configuring a loader for `dataset`.
    pub fn builder(dataset: D) -> LoaderBuilder<D> {
        LoaderBuilder::new(dataset)
    }
}

impl Stand {
    /// The view of the pipeline's report `pr` for `epoch`, with `acc` (what only the loader
    /// measures) and the prefetch of `windows`.
    fn report<D: Dataset, B>(
        cfg: &Config<D, B>,
        epoch: u64,
        acc: &Acc,
        pr: Option<&PipelineReport>,
        windows: &[usize],
    ) -> LoaderReport {
        let mut r = LoaderReport::new(&cfg.setup(epoch, cfg.prefetch_of(windows)), acc, pr);
        if cfg.autotune {
            r.tuning = pr.and_then(|p| p.tuning.as_ref()).map(|t| cfg.tuning(t));
        }
        r
    }

    /// What a restored state consumed of the epoch `ps` stands in.
    fn resumed(&self, ps: &PipelineState) -> Option<Arc<Consumed>> {
        resumed_at(&self.resumed, ps.epoch)
    }

    /// Forget a restored state's positions (its epoch ended, or another one starts).
    fn forget_resumed(&self) {
        *self.resumed.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl<D: Dataset, B: Send + 'static> Loader<D, B> {
    /// Worker threads.
    pub fn workers(&self) -> usize {
        self.cfg.workers
    }

    /// Threads the loader has spawned since it was built: one per worker, ever; the same
    /// threads (and worker states) serve every epoch.
    pub fn threads_spawned(&self) -> usize {
        self.pipeline.threads_spawned()
    }

    /// Batches in flight at most, now: the built prefetch, or where autotune has set it
    /// (the pipeline's window, [`Pipeline::windows`], in batches).
    pub fn prefetch(&self) -> usize {
        self.cfg.prefetch_of(&self.pipeline.windows())
    }

    /// The strategy's spec string.
    pub fn strategy(&self) -> &str {
        &self.cfg.spec
    }

    /// Batches in epoch `epoch` (depends on the sampler and the remainder mode).
    pub fn batches(&self, epoch: u64) -> usize {
        self.cfg.plan(epoch).batches
    }

    /// The report of the last epoch that ended (or was dropped part-way).
    pub fn report(&self) -> Option<&LoaderReport> {
        self.at.report.as_ref()
    }

    /// Where the loader stands, to resume later with [`restore`](Loader::restore).
    pub fn state(&self) -> LoaderState {
        let ps = self.pipeline.state();
        let done = if ps.epoch == self.at.epoch {
            self.at.batches_done
        } else {
            0
        };
        self.cfg.loader_state(&ps, done, self.at.resumed(&ps))
    }

    /// Continue from a saved state: the next `epoch(state.epoch)` yields the rest of that
    /// epoch. The state must come from a loader with the same dataset length, batch size,
    /// remainder mode and sampler.
    pub fn restore(&mut self, state: &LoaderState) -> Result<(), LoaderError> {
        let mine = self.state();
        let mismatch = |field: &str, saved: String, here: String| {
            Err(LoaderError::State(format!(
                "field {field}: the state has {saved}, this loader {here}"
            )))
        };
        if state.len != mine.len {
            return mismatch("len", state.len.to_string(), mine.len.to_string());
        }
        if state.batch_size != mine.batch_size {
            return mismatch(
                "batch_size",
                state.batch_size.to_string(),
                mine.batch_size.to_string(),
            );
        }
        if state.remainder != mine.remainder {
            return mismatch(
                "remainder",
                format!("{:?}", state.remainder),
                format!("{:?}", mine.remainder),
            );
        }
        if state.seed != mine.seed {
            return mismatch(
                "seed",
                format!("{:?}", state.seed),
                format!("{:?}", mine.seed),
            );
        }
        if let (Some(theirs), Some(ours)) = (&state.sampler, &mine.sampler) {
            if theirs != ours {
                return mismatch("sampler", theirs.clone(), ours.clone());
            }
        }
        if state.shard != mine.shard {
            return mismatch(
                "shard",
                format!("{:?}", state.shard),
                format!("{:?}", mine.shard),
            );
        }
        let plan = self.cfg.plan(state.epoch);
        if state.batches_done > plan.batches
            || state.positions_done > plan.total
            || state.consumed.iter().any(|&p| p >= plan.total)
        {
            return Err(LoaderError::State(format!(
                "field batches_done: {} batches / {} positions done, but epoch {} has {} / {}",
                state.batches_done, state.positions_done, state.epoch, plan.batches, plan.total
            )));
        }
        // Each batch handed out consumed `batch_size` positions (the last one the rest): a
        // state whose counts disagree was not written by a loader, and resuming it would end
        // the epoch early (losing samples) or late.
        let consumed = state.positions_done + state.consumed.len();
        let expected = state
            .batches_done
            .saturating_mul(state.batch_size)
            .min(plan.total);
        if consumed != expected {
            return Err(LoaderError::State(format!(
                "field batches_done: {} batches of {} hand out {expected} positions, but the state lists {consumed} consumed",
                state.batches_done, state.batch_size
            )));
        }
        let (ps, resumed) = self.cfg.pipeline_state(state);
        self.pipeline
            .restore(&ps)
            .map_err(|e| LoaderError::State(e.to_string()))?;
        *self.at.resumed.lock().unwrap_or_else(|e| e.into_inner()) = resumed;
        self.at.epoch = state.epoch;
        self.at.batches_done = state.batches_done;
        Ok(())
    }

    /// Iterate epoch `epoch`'s batches. If the loader stands inside this epoch (after
    /// [`restore`](Loader::restore), or after an earlier iterator was dropped part-way) it
    /// continues from there; otherwise it starts at the epoch's first batch.
    ///
    /// Dropping the iterator early cancels the outstanding work and returns once the samples
    /// being loaded right now have finished.
    pub fn epoch(&mut self, epoch: u64) -> LoaderEpoch<'_, D, B> {
        if self.at.epoch != epoch {
            self.at.epoch = epoch;
            self.at.batches_done = 0;
            self.at.forget_resumed();
        }
        let started = Instant::now();
        let batches = self.cfg.plan(epoch).batches;
        let Loader { pipeline, cfg, at } = self;
        let acc = Acc::new(cfg.workers, started);
        LoaderEpoch {
            it: pipeline.epoch(epoch),
            cfg: Arc::clone(cfg),
            at,
            acc,
            epoch,
            batches,
            stash: None,
            finished: false,
        }
    }
}

/// The batches of one epoch: `Result<Batch<B>, LoaderError>` in order (or as ready).
///
/// A batch with a bad sample is an `Err` at its position (or, with [`OnFailure::Skip`], a
/// smaller batch); iteration goes on after it.
pub struct LoaderEpoch<'a, D: Dataset, B: Send + 'static> {
    it: PipelineEpoch<'a, Vec<Unit<D::Sample, B>>>,
    cfg: Arc<Config<D, B>>,
    at: &'a mut Stand,
    acc: Acc,
    epoch: u64,
    /// Batches in the epoch.
    batches: usize,
    /// What the pipeline delivered after the epoch's last batch was counted (it cannot, but
    /// nothing is dropped if it did).
    stash: Option<Delivery<D::Sample, B>>,
    /// The pipeline's epoch ended (every batch was handed out).
    finished: bool,
}

impl<D: Dataset, B: Send + 'static> fmt::Debug for LoaderEpoch<'_, D, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoaderEpoch")
            .field("epoch", &self.epoch)
            .field("batches_done", &self.at.batches_done)
            .finish_non_exhaustive()
    }
}

impl<D: Dataset, B: Send + 'static> LoaderEpoch<'_, D, B> {
    /// Where the loader stands now, for a checkpoint taken while iterating (the same value
    /// [`Loader::state`] gives once the iterator is gone).
    pub fn state(&self) -> LoaderState {
        let ps = self.it.state();
        let done = if ps.epoch == self.at.epoch {
            self.at.batches_done
        } else {
            0
        };
        self.cfg.loader_state(&ps, done, self.at.resumed(&ps))
    }

    /// What this epoch measured so far.
    pub fn report(&self) -> Option<LoaderReport> {
        (!self.finished).then(|| self.live_report())
    }

    /// The report of the pipeline's run in progress.
    fn live_report(&self) -> LoaderReport {
        let pr = self.it.report();
        Stand::report(
            &self.cfg,
            self.epoch,
            &self.acc,
            pr.as_ref(),
            &self.it.windows(),
        )
    }

    /// The pipeline's epoch ended: keep the report, move on to the next epoch.
    fn finish(&mut self) {
        self.finished = true;
        self.at.report = Some(Stand::report(
            &self.cfg,
            self.epoch,
            &self.acc,
            self.it.report().as_ref(),
            &self.it.windows(),
        ));
        self.at.epoch = self.epoch + 1;
        self.at.batches_done = 0;
        self.at.forget_resumed();
    }

    /// After the epoch's last batch: take the pipeline's end, which closes its run (the
    /// next epoch, if prefetched, gets the whole window now).
    fn end(&mut self) {
        match self.it.next() {
            None => self.finish(),
            Some(more) => self.stash = Some(more),
        }
    }
}

impl<D: Dataset, B: Send + 'static> Iterator for LoaderEpoch<'_, D, B> {
    type Item = Result<Batch<B>, LoaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.finished {
                // The pipeline's end again: the consumer let go of its last batch.
                let _ = self.it.next();
                return None;
            }
            let entered = Instant::now();
            let got = match self.stash.take() {
                Some(r) => Some(r),
                None => self.it.next(),
            };
            let units = match got {
                None => {
                    self.finish();
                    return None;
                }
                Some(Err(e)) => {
                    // The `get` stage never fails (a bad sample is a value): only the pipeline
                    // itself can end up here (the epoch could not open: a custom sampler
                    // panicked), and no batch is behind it. The epoch did not run: the loader
                    // stays at it (the next `epoch()` tries it again), so `finish` is not called.
                    self.finished = true;
                    return Some(Err(LoaderError::Start(e.to_string())));
                }
                Some(Ok(units)) => units,
            };
            let k = self.at.batches_done;
            let epoch = self.epoch;
            let mut samples = Vec::with_capacity(units.len());
            let mut indices = Vec::with_capacity(units.len());
            let mut faults: Vec<(usize, Fault)> = Vec::new();
            let mut ready: Option<B> = None;
            for unit in units {
                match unit {
                    Unit::Sample(l) => {
                        self.acc.sample(l.worker, l.ns);
                        match l.result {
                            Ok(v) => {
                                samples.push(v);
                                indices.push(l.index);
                            }
                            Err(f) => faults.push((l.index, f)),
                        }
                    }
                    Unit::Batch {
                        data,
                        indices: idx,
                        faults: fl,
                        times,
                        worker,
                    } => {
                        for ns in times {
                            self.acc.sample(Some(worker), ns);
                        }
                        ready = data;
                        indices = idx;
                        faults = fl;
                    }
                }
            }
            self.acc.failed += faults.len() as u64;
            self.at.batches_done += 1;
            let cfg = &self.cfg;
            let outcome = if !faults.is_empty() && !cfg.skip {
                let (index, fault) = faults.swap_remove(0);
                Some(Err(fault.at(index, epoch, k)))
            } else {
                let data = match cfg.granularity {
                    Granularity::Batch => ready.map(Ok),
                    Granularity::Sample if samples.is_empty() => None,
                    Granularity::Sample => {
                        let first = indices[0];
                        let acc = &mut self.acc;
                        Some(
                            catch_unwind(AssertUnwindSafe(|| (cfg.collate)(samples))).map_err(
                                |p| {
                                    acc.failed += 1;
                                    Fault::Collate(panic_message(p.as_ref())).at(first, epoch, k)
                                },
                            ),
                        )
                    }
                };
                data.map(|data| {
                    data.map(|data| Batch {
                        data,
                        indices,
                        epoch,
                        number: k,
                    })
                })
            };
            let now = Instant::now();
            self.acc.in_next += now - entered;
            if outcome.is_some() {
                self.acc.batch_out(now);
            }
            if self.at.batches_done >= self.batches {
                self.end();
            }
            if let Some(o) = outcome {
                return Some(o);
            }
        }
    }
}

impl<D: Dataset, B: Send + 'static> Drop for LoaderEpoch<'_, D, B> {
    /// An epoch ended early keeps its report so far; its pipeline epoch, dropped next, stops
    /// this epoch's run and the next epoch's it opened, if any (the workers start nothing of
    /// either after this), then waits for the calls running, at most the grace period.
    fn drop(&mut self) {
        if !self.finished {
            self.at.report = Some(self.live_report());
        }
    }
}
