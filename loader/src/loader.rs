//! The builder, the loader, and the iterator over one epoch's batches.

use std::collections::BTreeSet;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scheduler::{Pin, Strategy, WorkerId};
use serde::{Deserialize, Serialize};

use crate::autotune::{Shape, Tuner};
use crate::dataset::Dataset;
use crate::error::LoaderError;
use crate::exec::{panic_message, Exec, ExecJob, JobOpts};
use crate::pipeline::{Autotune, OnFailure};
use crate::plan::{Plan, Remainder};
use crate::report::{Acc, LoaderReport, Setup};
use crate::sampler::Sampler;

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

/// Progress within an epoch: batches done and which positions were consumed.
#[derive(Clone, Debug, Default)]
struct Progress {
    epoch: u64,
    batches_done: usize,
    prefix: usize,
    extra: BTreeSet<usize>,
}

impl Progress {
    fn start(epoch: u64) -> Progress {
        Progress {
            epoch,
            ..Progress::default()
        }
    }

    fn at_start(&self) -> bool {
        self.batches_done == 0 && self.prefix == 0 && self.extra.is_empty()
    }

    fn consume(&mut self, p: usize) {
        if p == self.prefix {
            self.prefix += 1;
            while self.extra.remove(&self.prefix) {
                self.prefix += 1;
            }
        } else {
            self.extra.insert(p);
        }
    }
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
        let tuner = match self.autotune {
            Some(settings) => {
                let shape = Shape {
                    workers,
                    batch_size: self.batch_size,
                    unit_samples: match self.granularity {
                        Granularity::Sample => 1,
                        Granularity::Batch => self.batch_size,
                    },
                    ordered: self.ordered,
                };
                let t = Tuner::new(settings, shape, prefetch)
                    .map_err(|(field, what)| cfg(format!("autotune: {field}: {what}")))?;
                Some(t)
            }
            None => None,
        };
        let prefetch = tuner.as_ref().map_or(prefetch, Tuner::prefetch);
        let dataset = Arc::new(self.dataset);
        let init_ds = Arc::clone(&dataset);
        let exec = Exec::start(workers, self.pin, self.grace, move |w: WorkerId| {
            init_ds.init(w)
        })?;
        let spec = strategy.spec();
        Ok(Loader {
            ahead: None,
            exec,
            cfg: Arc::new(Config {
                dataset,
                collate: self.collate,
                batch_size: self.batch_size,
                remainder: self.remainder,
                sampler: self.sampler,
                workers,
                strategy,
                spec,
                ordered: self.ordered,
                granularity: self.granularity,
                timeout: self.timeout,
                skip,
                seed: self.seed,
                prefetch_next_epoch: self.prefetch_next_epoch,
                grace: self.grace,
            }),
            pos: Progress::start(0),
            report: None,
            prefetch,
            tuner,
        })
    }
}

struct Config<D: Dataset, B> {
    dataset: Arc<D>,
    collate: Collate<D::Sample, B>,
    batch_size: usize,
    remainder: Remainder,
    sampler: Sampler,
    workers: usize,
    strategy: Arc<dyn Strategy>,
    spec: String,
    ordered: bool,
    granularity: Granularity,
    timeout: Option<Duration>,
    /// Bad samples are left out of their batch ([`OnFailure::Skip`]).
    skip: bool,
    seed: u64,
    prefetch_next_epoch: bool,
    /// How long ending a run waits for `get` calls still running.
    grace: Duration,
}

impl<D: Dataset, B> Config<D, B> {
    /// The bound on units in flight (samples or batches) for `prefetch` batches.
    fn cap_units(&self, prefetch: usize) -> usize {
        match self.granularity {
            Granularity::Sample => prefetch.saturating_mul(self.batch_size),
            Granularity::Batch => prefetch,
        }
    }

    /// Ids per submission. At sample granularity one batch's ids at a time: a strategy that
    /// deals a submission out in blocks (work stealing) then gives every worker a few ids of
    /// the *same* batch, and owners that pop their newest id first (LIFO) invert only within
    /// such a block, so the head of the order is never buried under later batches.
    fn submit_chunk(&self) -> usize {
        match self.granularity {
            Granularity::Sample => self.batch_size,
            Granularity::Batch => usize::MAX,
        }
    }

    fn unit_samples(&self) -> usize {
        match self.granularity {
            Granularity::Sample => 1,
            Granularity::Batch => self.batch_size,
        }
    }

    fn setup(&self, epoch: u64, prefetch: usize) -> Setup<'_> {
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
        }
    }
}

/// Why one sample (or a batch's collate) is bad.
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

/// One sample loaded on a worker.
struct Loaded<T> {
    index: usize,
    result: Result<T, Fault>,
    ns: u64,
    worker: WorkerId,
}

/// What one task hands back.
enum Piece<T, B> {
    One(Loaded<T>),
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
    worker: WorkerId,
) -> Loaded<D::Sample> {
    let t = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| ds.get(index, state)));
    let took = t.elapsed();
    let result = match r {
        Ok(Ok(v)) => match timeout {
            Some(limit) if took > limit => Err(Fault::Timeout {
                took_ms: took.as_millis() as u64,
                limit_ms: limit.as_millis() as u64,
            }),
            _ => Ok(v),
        },
        Ok(Err(e)) => Err(Fault::Error(e.to_string())),
        Err(p) => Err(Fault::Panic(panic_message(p.as_ref()))),
    };
    Loaded {
        index,
        result,
        ns: took.as_nanos() as u64,
        worker,
    }
}

/// One epoch's job: the positions still to load, and how far submission got.
struct Run<D: Dataset, B> {
    plan: Arc<Plan>,
    positions: Arc<Vec<usize>>,
    job: ExecJob<Piece<D::Sample, B>>,
    units: usize,
    submitted: usize,
    acc: Acc,
}

impl<D: Dataset, B: Send + 'static> Run<D, B> {
    /// Submit up to `room` more units, `chunk` ids per submission; never blocks.
    fn submit(&mut self, room: usize, chunk: usize) {
        let mut left = room.min(self.units - self.submitted);
        while left > 0 {
            let n = left.min(chunk);
            if !self.job.try_submit(n) {
                return;
            }
            self.submitted += n;
            left -= n;
        }
    }
}

/// A dataset loaded as batches by a pool of worker threads under a scheduling strategy.
///
/// Built by [`Loader::builder`]; iterate an epoch with [`Loader::epoch`]. Dropping the loader
/// stops and joins its worker threads (each worker's `Dataset::State` is dropped on the way).
pub struct Loader<D: Dataset, B = Vec<<D as Dataset>::Sample>> {
    // field order is drop order: the prefetched job ends before the workers
    ahead: Option<Run<D, B>>,
    exec: Exec<D::State>,
    cfg: Arc<Config<D, B>>,
    pos: Progress,
    report: Option<LoaderReport>,
    /// Batches in flight at most, now (autotune changes it).
    prefetch: usize,
    tuner: Option<Tuner>,
}

impl<D: Dataset, B> fmt::Debug for Loader<D, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("len", &self.cfg.dataset.len())
            .field("workers", &self.cfg.workers)
            .field("strategy", &self.cfg.spec)
            .field("epoch", &self.pos.epoch)
            .field("batches_done", &self.pos.batches_done)
            .finish_non_exhaustive()
    }
}

impl<D: Dataset, B> Loader<D, B> {
    fn cap_units(&self) -> usize {
        self.cfg.cap_units(self.prefetch)
    }

    /// The report of `acc` for `epoch`, with what autotune did.
    fn make_report(&self, epoch: u64, acc: &Acc) -> LoaderReport {
        let mut r = LoaderReport::new(&self.cfg.setup(epoch, self.prefetch), acc);
        r.tuning = self.tuner.as_ref().map(|t| t.record().clone());
        r
    }
}

impl<D: Dataset> Loader<D> {
    /// Start configuring a loader for `dataset`.
    pub fn builder(dataset: D) -> LoaderBuilder<D> {
        LoaderBuilder::new(dataset)
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
        self.exec.threads_spawned()
    }

    /// Batches in flight at most, now: the built prefetch, or where autotune has set it.
    pub fn prefetch(&self) -> usize {
        self.prefetch
    }

    /// The strategy's spec string.
    pub fn strategy(&self) -> &str {
        &self.cfg.spec
    }

    /// Batches in epoch `epoch` (depends on the sampler and the remainder mode).
    pub fn batches(&self, epoch: u64) -> usize {
        self.plan(epoch).batches
    }

    fn plan(&self, epoch: u64) -> Plan {
        let order = self.cfg.sampler.indices(self.cfg.dataset.len(), epoch);
        Plan::new(epoch, order, self.cfg.batch_size, self.cfg.remainder)
    }

    /// The report of the last epoch that ended (or was dropped part-way).
    pub fn report(&self) -> Option<&LoaderReport> {
        self.report.as_ref()
    }

    /// Where the loader stands, to resume later with [`restore`](Loader::restore).
    pub fn state(&self) -> LoaderState {
        LoaderState {
            epoch: self.pos.epoch,
            batches_done: self.pos.batches_done,
            positions_done: self.pos.prefix,
            consumed: self.pos.extra.iter().copied().collect(),
            len: self.cfg.dataset.len(),
            batch_size: self.cfg.batch_size,
            remainder: self.cfg.remainder,
            seed: self.cfg.sampler.seed(),
            shard: self.cfg.sampler.sharding(),
            sampler: Some(self.cfg.sampler.kind().to_string()),
        }
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
        let plan = self.plan(state.epoch);
        if state.batches_done > plan.batches
            || state.positions_done > plan.total
            || state.consumed.iter().any(|&p| p >= plan.total)
        {
            return Err(LoaderError::State(format!(
                "field batches_done: {} batches / {} positions done, but epoch {} has {} / {}",
                state.batches_done, state.positions_done, state.epoch, plan.batches, plan.total
            )));
        }
        self.ahead = None;
        self.pos = Progress {
            epoch: state.epoch,
            batches_done: state.batches_done,
            prefix: state.positions_done,
            extra: state.consumed.iter().copied().collect(),
        };
        Ok(())
    }

    /// Iterate epoch `epoch`'s batches. If the loader stands inside this epoch (after
    /// [`restore`](Loader::restore), or after an earlier iterator was dropped part-way) it
    /// continues from there; otherwise it starts at the epoch's first batch.
    ///
    /// Dropping the iterator early cancels the outstanding work and returns once the samples
    /// being loaded right now have finished.
    pub fn epoch(&mut self, epoch: u64) -> LoaderEpoch<'_, D, B> {
        if self.pos.epoch != epoch {
            self.pos = Progress::start(epoch);
        }
        if let Some(t) = self.tuner.as_mut() {
            t.begin(Instant::now());
        }
        let ahead = self.ahead.take();
        let run = match ahead {
            Some(mut run) if run.plan.epoch == epoch && self.pos.at_start() => {
                run.acc.started = Instant::now();
                Ok(run)
            }
            _ => {
                drop(ahead);
                self.open(epoch, &self.pos.clone())
            }
        };
        let (run, error) = match run {
            Ok(run) => (Some(run), None),
            Err(e) => (None, Some(e)),
        };
        LoaderEpoch {
            loader: self,
            run,
            error,
            ahead_opened: false,
            finished: false,
        }
    }

    fn open(&self, epoch: u64, from: &Progress) -> Result<Run<D, B>, LoaderError> {
        let cfg = &self.cfg;
        let plan = Arc::new(self.plan(epoch));
        let positions: Arc<Vec<usize>> = Arc::new(
            (from.prefix..plan.total)
                .filter(|p| !from.extra.contains(p))
                .collect(),
        );
        let units = positions.len().div_ceil(cfg.unit_samples());
        let f = {
            let cfg = Arc::clone(cfg);
            let plan = Arc::clone(&plan);
            let positions = Arc::clone(&positions);
            move |task: usize, worker: WorkerId, state: &mut D::State| -> Piece<D::Sample, B> {
                let ds = &*cfg.dataset;
                match cfg.granularity {
                    Granularity::Sample => {
                        let index = plan.index(positions[task]);
                        Piece::One(load(ds, index, state, cfg.timeout, worker))
                    }
                    Granularity::Batch => {
                        let b = cfg.batch_size;
                        let range = task * b..((task + 1) * b).min(positions.len());
                        let mut samples = Vec::with_capacity(range.len());
                        let mut indices = Vec::with_capacity(range.len());
                        let mut faults = Vec::new();
                        let mut times = Vec::with_capacity(range.len());
                        for &p in &positions[range] {
                            let l = load(ds, plan.index(p), state, cfg.timeout, worker);
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
                        Piece::Batch {
                            data,
                            indices,
                            faults,
                            times,
                            worker,
                        }
                    }
                }
            }
        };
        let opts = JobOpts {
            max_in_flight: self.cap_units(),
            ordered: cfg.ordered,
            seed: cfg.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            grace: cfg.grace,
        };
        let job = self.exec.job(&cfg.strategy, opts, f)?;
        Ok(Run {
            plan,
            positions,
            job,
            units,
            submitted: 0,
            acc: Acc::new(cfg.workers),
        })
    }
}

/// The batches of one epoch: `Result<Batch<B>, LoaderError>` in order (or as ready).
///
/// A batch with a bad sample is an `Err` at its position (or, with [`OnFailure::Skip`], a
/// smaller batch); iteration goes on after it.
pub struct LoaderEpoch<'a, D: Dataset, B> {
    loader: &'a mut Loader<D, B>,
    run: Option<Run<D, B>>,
    error: Option<LoaderError>,
    ahead_opened: bool,
    /// Every batch was handed out: the next epoch's run (if open) is kept for it.
    finished: bool,
}

impl<D: Dataset, B> fmt::Debug for LoaderEpoch<'_, D, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoaderEpoch")
            .field("epoch", &self.loader.pos.epoch)
            .field("batches_done", &self.loader.pos.batches_done)
            .finish_non_exhaustive()
    }
}

impl<D: Dataset, B: Send + 'static> LoaderEpoch<'_, D, B> {
    /// Where the loader stands now, for a checkpoint taken while iterating (the same value
    /// [`Loader::state`] gives once the iterator is gone).
    pub fn state(&self) -> LoaderState {
        self.loader.state()
    }

    /// What this epoch measured so far.
    pub fn report(&self) -> Option<LoaderReport> {
        let run = self.run.as_ref()?;
        Some(self.loader.make_report(run.plan.epoch, &run.acc))
    }

    /// Autotune's reading, when one is due; a new prefetch applies to both open jobs.
    fn tune(&mut self, now: Instant) {
        let (Some(t), Some(run)) = (self.loader.tuner.as_mut(), self.run.as_ref()) else {
            return;
        };
        let Some(p) = t.tick(&run.acc, now) else {
            return;
        };
        self.loader.prefetch = p;
        let cap = self.loader.cap_units();
        if let Some(r) = self.run.as_mut() {
            r.job.set_max_in_flight(cap);
        }
        if let Some(a) = self.loader.ahead.as_mut() {
            a.job.set_max_in_flight(cap);
        }
    }

    /// Samples in flight, this epoch's and the prefetched next epoch's.
    fn in_flight(&self) -> usize {
        let cur = self.run.as_ref().map_or(0, |r| r.job.in_flight());
        let ahead = self.loader.ahead.as_ref().map_or(0, |r| r.job.in_flight());
        cur + ahead
    }

    /// Submit as much as the prefetch bound allows; never blocks.
    fn top_up(&mut self) {
        let cap = self.loader.cap_units();
        let room = cap.saturating_sub(self.in_flight());
        let chunk = self.loader.cfg.submit_chunk();
        let Some(run) = self.run.as_mut() else { return };
        run.submit(room, chunk);
        if run.submitted < run.units || !self.loader.cfg.prefetch_next_epoch {
            return;
        }
        if !self.ahead_opened && self.loader.ahead.is_none() {
            self.ahead_opened = true;
            let next = run.plan.epoch + 1;
            if let Ok(a) = self.loader.open(next, &Progress::start(next)) {
                self.loader.ahead = Some(a);
            }
        }
        let room = cap.saturating_sub(self.in_flight());
        if let Some(a) = self.loader.ahead.as_mut() {
            a.submit(room, chunk);
        }
    }

    /// End the epoch's job and report. `held` units were just taken for the batch being
    /// returned: they still count against the window until the consumer asks again.
    fn finish(&mut self, held: usize) {
        self.finished = true;
        if let Some(run) = self.run.take() {
            let mut acc = run.acc;
            acc.steals = run.job.finish().steals;
            self.loader.report = Some(self.loader.make_report(run.plan.epoch, &acc));
            self.loader.pos = Progress::start(run.plan.epoch + 1);
        }
        self.top_up_ahead(held);
    }

    /// After the epoch's job ended, the whole window belongs to the next epoch.
    fn top_up_ahead(&mut self, held: usize) {
        let room = self
            .loader
            .cap_units()
            .saturating_sub(self.in_flight() + held);
        let chunk = self.loader.cfg.submit_chunk();
        if let Some(a) = self.loader.ahead.as_mut() {
            a.submit(room, chunk);
        }
    }
}

impl<D: Dataset, B: Send + 'static> Iterator for LoaderEpoch<'_, D, B> {
    type Item = Result<Batch<B>, LoaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        loop {
            let k = self.loader.pos.batches_done;
            let Some(batches) = self.run.as_ref().map(|r| r.plan.batches) else {
                self.top_up_ahead(0);
                return None;
            };
            if k >= batches {
                self.finish(0);
                return None;
            }
            let entered = Instant::now();
            self.tune(entered);
            self.top_up();
            // Autotune's feedback: a wait with the window full (nothing is submitted during
            // the wait) that ends with workers left idle for want of room.
            let full = self.loader.tuner.is_some() && self.in_flight() >= self.loader.cap_units();
            let in_flight = self.in_flight() * self.loader.cfg.unit_samples();
            let cfg = Arc::clone(&self.loader.cfg);
            let run = self.run.as_mut()?;
            run.acc.occupancy(in_flight);
            let epoch = run.plan.epoch;
            let want = match cfg.granularity {
                Granularity::Sample => run.plan.batch_len(k),
                Granularity::Batch => 1,
            };
            let mut samples = Vec::with_capacity(want);
            let mut indices = Vec::with_capacity(want);
            let mut faults: Vec<(usize, Fault)> = Vec::new();
            let mut ready: Option<B> = None;
            for _ in 0..want {
                let Some(done) = run.job.next() else {
                    self.run = None;
                    return Some(Err(LoaderError::Start(
                        "the workers stopped before the epoch ended".into(),
                    )));
                };
                let unit = done.task;
                match cfg.granularity {
                    Granularity::Sample => self.loader.pos.consume(run.positions[unit]),
                    Granularity::Batch => {
                        let b = cfg.batch_size;
                        for &p in
                            &run.positions[unit * b..((unit + 1) * b).min(run.positions.len())]
                        {
                            self.loader.pos.consume(p);
                        }
                    }
                }
                match done.result {
                    Ok(Piece::One(l)) => {
                        run.acc.sample(l.worker, l.ns);
                        match l.result {
                            Ok(v) => {
                                samples.push(v);
                                indices.push(l.index);
                            }
                            Err(f) => faults.push((l.index, f)),
                        }
                    }
                    Ok(Piece::Batch {
                        data,
                        indices: idx,
                        faults: fl,
                        times,
                        worker,
                    }) => {
                        for ns in times {
                            run.acc.sample(worker, ns);
                        }
                        ready = data;
                        indices = idx;
                        faults = fl;
                    }
                    Err(message) => {
                        let p = run.positions[unit * cfg.unit_samples()];
                        faults.push((run.plan.index(p), Fault::Panic(message)));
                    }
                }
            }
            let waited = entered.elapsed();
            run.acc.stall += waited;
            let starving = full && {
                let cur = run.job.unfinished();
                let ahead = self.loader.ahead.as_ref().map_or(0, |r| r.job.unfinished());
                cur + ahead < cfg.workers
            };
            if starving {
                run.acc.stall_full += waited;
            }
            run.acc.failed += faults.len() as u64;
            self.loader.pos.batches_done += 1;
            let outcome = if !faults.is_empty() && !cfg.skip {
                let (index, fault) = faults.swap_remove(0);
                Some(Err(fault.at(index, epoch, k)))
            } else {
                let data = match cfg.granularity {
                    Granularity::Batch => ready.map(Ok),
                    Granularity::Sample if samples.is_empty() => None,
                    Granularity::Sample => {
                        let first = indices[0];
                        Some(
                            catch_unwind(AssertUnwindSafe(|| (cfg.collate)(samples))).map_err(
                                |p| {
                                    run.acc.failed += 1;
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
            run.acc.in_next += entered.elapsed();
            if outcome.is_some() {
                run.acc.batch_out();
            }
            if self.loader.pos.batches_done >= batches {
                self.finish(want);
            }
            match outcome {
                Some(o) => return Some(o),
                None => continue,
            }
        }
    }
}

impl<D: Dataset, B> Drop for LoaderEpoch<'_, D, B> {
    /// An epoch ended early stops its run and the next epoch's run it opened, if any: the
    /// workers start nothing of either after this (a worker freed by this epoch's last call
    /// would otherwise start the next epoch's samples until that is dropped too). Both are
    /// stopped before anything is waited for; then the calls running are waited for, at most
    /// the grace period.
    fn drop(&mut self) {
        let ended_early = !self.finished;
        if ended_early {
            if let Some(ahead) = self.loader.ahead.as_mut() {
                ahead.job.cancel();
            }
        }
        if let Some(run) = self.run.take() {
            self.loader.report = Some(self.loader.make_report(run.plan.epoch, &run.acc));
            drop(run);
        }
        if ended_early {
            self.loader.ahead = None;
        }
    }
}
