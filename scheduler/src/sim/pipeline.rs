//! Pipelines on the simulator: items pass a chain of stages, as in the loader's `Pipeline`.
//!
//! A `cpu` stage is a job on a shared pool of P simulated workers, run by the *same strategy
//! code* as on threads: the stage binds each item it may start to the next task id of its job
//! and submits it; a free worker asks each job's strategy for work, the stage nearest the
//! consumer first (as the pool steps older jobs first and the pipeline opens its jobs last stage
//! first). A `blocking` stage is a delay station with `threads` servers of its own and no CPU.
//!
//! Flow control follows `docs/pipelines.md`: each stage has an input queue of capacity `queue`;
//! a cpu stage reserves room in the next queue before it starts an item; a blocking stage's
//! threads plus the next queue hold at most `threads + queue_next` items; the source admits at
//! most `window` items that have not yet left in a batch; the tail puts items back in source
//! order (or takes them as they come) and groups `batch` consecutive items.
//!
//! Time is virtual nanoseconds; scheduling itself costs nothing (the strategies' probes, wake-ups
//! and the engine's bookkeeping are not modelled, only service times). Events at equal times
//! are processed in the order they were scheduled, so a run is a pure function of its inputs: the
//! same [`SimPipeline`] gives a byte-identical [`SimPipelineReport`] JSON.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

use crate::error::SpecError;
use crate::spec::RunSpec;
use crate::strategy::{Batch, Context, Instance, Next, Strategy};

/// Why [`simulate_pipeline`] gave no report.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum SimPipelineError {
    /// The pipeline is inconsistent or above a limit (bad input): no stages, a zero or too
    /// large concurrency, queue, batch, window or worker count, a stage without costs, too few
    /// arrival times, a strategy that cannot serve P workers.
    #[error("{0}")]
    Invalid(#[from] SpecError),
    /// Simulated time would pass `u64::MAX` ns (about 584 years): the service times (or a cpu
    /// stage's stretch by P / cores) are too large for the simulator's clock. Bad input too:
    /// the run is refused rather than reported with a clock stuck at its end.
    #[error(
        "stage {stage}: simulated time would pass u64::MAX ns (about 584 years): at {at_ns} ns \
         an item needs {more_ns:.4e} ns more; the service times{} are too large",
        if *.stretched { " (stretched by P / cores)" } else { "" }
    )]
    TimeOverflow {
        /// The stage whose item would end past the clock.
        stage: String,
        /// The simulated time when it would start, ns.
        at_ns: u64,
        /// The time it would take, ns (a float: it may not fit in `u64`).
        more_ns: f64,
        /// Whether the time is a cpu service time stretched by P / cores.
        stretched: bool,
    },
    /// A strategy broke its contract (handed out an id twice or one never submitted, or stopped
    /// handing out work): a bug, not bad input.
    #[error("{0}")]
    Contract(String),
}

/// What a stage runs on.
#[derive(Clone)]
pub enum SimStageKind {
    /// A job on the pool's P simulated workers under `strategy`, with at most `concurrency`
    /// items open (bound to task ids) at a time.
    Cpu {
        /// The job's strategy (the same value the threads engine would run).
        strategy: Arc<dyn Strategy>,
        /// Most items open at once; `None` is the loader's default, all P workers.
        concurrency: Option<usize>,
    },
    /// A delay station with `threads` parallel servers of its own (no CPU worker is used).
    Blocking {
        /// Its threads: its concurrency.
        threads: usize,
    },
}

impl fmt::Debug for SimStageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimStageKind::Cpu {
                strategy,
                concurrency,
            } => write!(f, "cpu({}, concurrency {concurrency:?})", strategy.spec()),
            SimStageKind::Blocking { threads } => write!(f, "blocking({threads})"),
        }
    }
}

/// One stage of a simulated pipeline.
#[derive(Clone, Debug)]
pub struct SimStage {
    /// Its name (reports and errors use it).
    pub name: String,
    /// cpu or blocking.
    pub kind: SimStageKind,
    /// Capacity of its input queue; `None` is the loader's default, `max(2 × concurrency, 4)`.
    pub queue: Option<usize>,
    /// Service time of each item in ns: item `i` takes `cost_ns[i % len]`. Not empty.
    pub cost_ns: Arc<[u64]>,
}

/// A pipeline to simulate: a source of `items` items, `stages` in order, and a batching tail.
#[derive(Clone, Debug)]
pub struct SimPipeline {
    /// The stages, in the order every item passes them.
    pub stages: Vec<SimStage>,
    /// P, the simulated CPU workers shared by every cpu stage.
    pub workers: usize,
    /// Source items.
    pub items: usize,
    /// Items per batch at the tail (1: no batching). A short last batch is kept.
    pub batch: usize,
    /// Most items admitted and not yet handed on in a batch; `None` is the loader's default,
    /// `max(2 Σ (c + q), 2 Σ c × batch, 4)`.
    pub window: Option<usize>,
    /// Hand items on in source order (true, the loader's default) or as they finish.
    pub ordered: bool,
    /// When each item becomes available to the source (ns, nondecreasing, at least `items`
    /// values); `None`: all at time 0 (a sampler).
    pub arrivals_ns: Option<Arc<[u64]>>,
    /// Seed handed to the strategies.
    pub seed: u64,
    /// CPU cores the cpu stages' workers share; `None`: a core per worker. With P > cores,
    /// every cpu service time is stretched by P / cores (each worker gets cores / P of a core,
    /// as if all P were always busy): a static processor-sharing model.
    pub cores: Option<f64>,
}

impl SimPipeline {
    /// Most simulated CPU workers (the sim engine's limit, [`RunSpec::MAX_WORKERS`]): each is
    /// a queue in every cpu stage's strategy, allocated up front.
    pub const MAX_WORKERS: usize = RunSpec::MAX_WORKERS;

    /// Most concurrency of one stage (a cpu stage's open items, a blocking stage's threads):
    /// 1,048,576.
    pub const MAX_CONCURRENCY: usize = 1 << 20;

    /// Largest input queue capacity of one stage: 1,048,576.
    pub const MAX_QUEUE: usize = 1 << 20;

    /// Most items per batch: 1,048,576.
    pub const MAX_BATCH: usize = 1 << 20;

    /// A pipeline of `items` items on `workers` CPU workers, with the loader's defaults: no
    /// batching, default window, in order, all items available at 0, seed 1.
    pub fn new(stages: Vec<SimStage>, workers: usize, items: usize) -> Self {
        SimPipeline {
            stages,
            workers,
            items,
            batch: 1,
            window: None,
            ordered: true,
            arrivals_ns: None,
            seed: 1,
            cores: None,
        }
    }

    /// The concurrency of stage `k` (a cpu stage's default is P).
    pub fn concurrency(&self, k: usize) -> usize {
        match &self.stages[k].kind {
            SimStageKind::Cpu { concurrency, .. } => concurrency.unwrap_or(self.workers),
            SimStageKind::Blocking { threads } => *threads,
        }
    }

    /// The input queue capacity of stage `k` (default `max(2 × concurrency, 4)`).
    pub fn queue(&self, k: usize) -> usize {
        self.stages[k]
            .queue
            .unwrap_or_else(|| crate::window::default_queue(self.concurrency(k)))
    }

    /// How much longer a cpu service time runs than its cost: `max(1, P / cores)`.
    pub fn cpu_stretch(&self) -> f64 {
        match self.cores {
            Some(c) if (self.workers as f64) > c => self.workers as f64 / c,
            _ => 1.0,
        }
    }

    /// The window: given, or the engine's rule, [`crate::window::default_window`]:
    /// `max(2 Σ (c + q), 2 Σ c × batch, 4)` (saturating at `usize::MAX`: it is a bound, and
    /// within the limits it is exact).
    pub fn window(&self) -> usize {
        self.window.unwrap_or_else(|| {
            crate::window::default_window(
                (0..self.stages.len()).map(|k| (self.concurrency(k), self.queue(k))),
                self.batch,
            )
        })
    }

    /// The throughput limit from mean service times, as the loader's report computes it: the
    /// least of each stage's `min(c, P) / mean` (blocking: `c / mean`) and, for the cpu stages
    /// together, `P / Σ mean`; with the stage that sets it. Items/s. A cpu stage's mean is
    /// stretched by [`SimPipeline::cpu_stretch`].
    pub fn limit(&self) -> (f64, String) {
        let mut best = (f64::INFINITY, String::new());
        let mut cpu_sum = 0.0;
        let mut heaviest = (0.0, String::new());
        let stretch = self.cpu_stretch();
        for (k, s) in self.stages.iter().enumerate() {
            let mut mean = mean(&s.cost_ns) / 1e9;
            if matches!(s.kind, SimStageKind::Cpu { .. }) {
                mean *= stretch;
            }
            let c = self.concurrency(k) as f64;
            let cap = match s.kind {
                SimStageKind::Cpu { .. } => {
                    cpu_sum += mean;
                    if mean > heaviest.0 {
                        heaviest = (mean, s.name.clone());
                    }
                    c.min(self.workers as f64) / mean
                }
                SimStageKind::Blocking { .. } => c / mean,
            };
            if cap < best.0 {
                best = (cap, s.name.clone());
            }
        }
        if cpu_sum > 0.0 && self.workers as f64 / cpu_sum < best.0 {
            best = (self.workers as f64 / cpu_sum, heaviest.1);
        }
        best
    }

    fn check(&self) -> Result<(), SpecError> {
        if self.stages.is_empty() {
            return Err(SpecError::new("pipeline: no stages"));
        }
        if let Some(c) = self.cores {
            if !(c.is_finite() && c > 0.0) {
                return Err(SpecError::new(format!(
                    "pipeline: cores must be a number > 0, got {c}"
                )));
            }
        }
        if self.batch == 0 || self.window == Some(0) {
            return Err(SpecError::new(
                "pipeline: batch and window must be at least 1",
            ));
        }
        if self.batch > Self::MAX_BATCH {
            return Err(SpecError::new(format!(
                "pipeline: batch {} is above the limit of {} items",
                self.batch,
                Self::MAX_BATCH
            )));
        }
        if self.workers > Self::MAX_WORKERS {
            return Err(SpecError::new(format!(
                "pipeline: {} workers, above the limit of {} simulated workers",
                self.workers,
                Self::MAX_WORKERS
            )));
        }
        if self.items > u32::MAX as usize {
            return Err(SpecError::new(format!(
                "pipeline: at most {} items, got {}",
                u32::MAX,
                self.items
            )));
        }
        if let Some(a) = &self.arrivals_ns {
            if a.len() < self.items || a.windows(2).any(|w| w[0] > w[1]) {
                return Err(SpecError::new(
                    "pipeline: arrivals must hold a nondecreasing time for every item",
                ));
            }
        }
        let has_cpu = self
            .stages
            .iter()
            .any(|s| matches!(s.kind, SimStageKind::Cpu { .. }));
        if has_cpu && self.workers == 0 {
            return Err(SpecError::new(
                "pipeline: workers must be at least 1 with a cpu stage",
            ));
        }
        for (k, s) in self.stages.iter().enumerate() {
            if s.cost_ns.is_empty() {
                return Err(SpecError::new(format!("stage {}: no costs", s.name)));
            }
            if self.concurrency(k) > Self::MAX_CONCURRENCY {
                return Err(SpecError::new(format!(
                    "stage {}: concurrency {} is above the limit of {}",
                    s.name,
                    self.concurrency(k),
                    Self::MAX_CONCURRENCY
                )));
            }
            if s.queue.is_some_and(|q| q > Self::MAX_QUEUE) {
                return Err(SpecError::new(format!(
                    "stage {}: queue {} is above the limit of {}",
                    s.name,
                    self.queue(k),
                    Self::MAX_QUEUE
                )));
            }
            if self.concurrency(k) == 0 || self.queue(k) == 0 {
                return Err(SpecError::new(format!(
                    "stage {}: concurrency and queue must be at least 1",
                    s.name
                )));
            }
            if let SimStageKind::Cpu { strategy, .. } = &s.kind {
                strategy
                    .validate(self.workers)
                    .map_err(|e| SpecError::new(format!("stage {}: {}", s.name, e.message())))?;
            }
        }
        if self.window() < self.batch {
            return Err(SpecError::new(
                "pipeline: the window is smaller than a batch",
            ));
        }
        Ok(())
    }
}

fn mean(v: &[u64]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}

/// What one stage did in a simulated run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SimStageReport {
    /// The stage's name.
    pub name: String,
    /// `cpu` or `blocking`.
    pub kind: String,
    /// Its concurrency (cpu: most items open; blocking: threads).
    pub concurrency: usize,
    /// Its input queue's capacity.
    pub queue: usize,
    /// Items it served.
    pub items: u64,
    /// Mean service time, ns.
    pub mean_service_ns: f64,
    /// `min(c, P) / mean service` (blocking: `c / mean`), items/s.
    pub capacity_per_s: f64,
    /// Service time / (elapsed × effective concurrency).
    pub busy: f64,
    /// Time-averaged items in the stage (its input queue and in service): L.
    pub mean_in_stage: f64,
    /// Mean time from entering its input queue to the end of service: W.
    pub mean_sojourn_ns: f64,
    /// Mean time from entering its input queue to the start of service.
    pub mean_wait_ns: f64,
    /// Items it served per second of the run: λ (Little: L = λ W).
    pub throughput_per_s: f64,
}

/// What a simulated pipeline run predicts.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SimPipelineReport {
    /// CPU workers.
    pub workers: usize,
    /// Items handed to the consumer.
    pub items: u64,
    /// Batches handed to the consumer.
    pub batches: u64,
    /// Virtual time from the start to the last batch, ns.
    pub elapsed_ns: u64,
    /// Items handed to the consumer per second.
    pub items_per_s: f64,
    /// The limit from mean service times ([`SimPipeline::limit`]), items/s.
    pub limit_per_s: f64,
    /// `items_per_s / limit_per_s`.
    pub fraction_of_limit: f64,
    /// The stage that sets the limit.
    pub bottleneck: String,
    /// The stage that was busiest in the run (largest `busy`).
    pub busiest: String,
    /// Median time between consecutive batches (the first from the start), ns.
    pub batch_p50_ns: u64,
    /// 99th percentile of the same, ns.
    pub batch_p99_ns: u64,
    /// The window in use.
    pub window: usize,
    /// Most items held at once (admitted, not yet handed on in a batch).
    pub held_peak: u64,
    /// Events simulated.
    pub events: u64,
    /// Per stage, in order.
    pub stages: Vec<SimStageReport>,
}

impl SimPipelineReport {
    /// The report as one line of JSON (deterministic: same run, same bytes).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serialises")
    }
}

/// A pending event: time, sequence number (ties in scheduling order), kind, and two operands.
type Event = (u64, u64, u8, u32, u32);

/// Event kinds.
const DONE_BLOCKING: u8 = 0;
const DONE_CPU: u8 = 1;
const SEARCH: u8 = 2;
const ARRIVAL: u8 = 3;

struct Station {
    /// Items waiting (item, time it entered).
    queue: VecDeque<(u32, u64)>,
    /// Items whose place in this queue an upstream cpu stage reserved (in service there).
    incoming: usize,
    /// Blocking: items in service. Cpu: items bound to ids, not yet finished.
    open: usize,
    /// Enter time of each item in service here (by item): for sojourn and wait.
    entered: Vec<u64>,
    /// Cpu: the job's strategy instance, and the item bound to each id.
    job: Option<Instance>,
    bound: Vec<u32>,
    /// Cpu: ids submitted and not yet handed out.
    pending: usize,
    // Statistics.
    served: u64,
    service_ns: u128,
    sojourn_ns: u128,
    wait_ns: u128,
    in_stage: u64,
    area: u128,
    last_t: u64,
}

impl Station {
    fn change(&mut self, t: u64, up: bool) {
        self.area += u128::from(self.in_stage) * u128::from(t - self.last_t);
        self.last_t = t;
        if up {
            self.in_stage += 1;
        } else {
            self.in_stage -= 1;
        }
    }
}

#[derive(Clone, Copy)]
struct Worker {
    /// Stage, id and end (exclusive) of the run of ids it is working through.
    running: Option<(usize, usize, usize)>,
    start: u64,
    /// Woken by a notification meant for one worker (see `search`).
    notified: bool,
    parked: bool,
}

struct Run<'a> {
    p: &'a SimPipeline,
    st: Vec<Station>,
    workers: Vec<Worker>,
    /// Parked workers, longest-parked first.
    parked: VecDeque<usize>,
    heap: BinaryHeap<Reverse<Event>>,
    seq: u64,
    events: u64,
    window: usize,
    admitted: usize,
    /// Items admitted and not yet handed on in a batch.
    held: u64,
    held_peak: u64,
    arrival_pending: bool,
    /// Tail: finished items not yet delivered (ordered), next to deliver, delivered count.
    done: Vec<bool>,
    next_out: usize,
    delivered: u64,
    in_batch: u64,
    batches: Vec<u64>,
    last_batch: u64,
}

/// Simulate `p`: every item through every stage, to the last batch.
///
/// ```
/// use std::sync::Arc;
/// use scheduler::{simulate_pipeline, SimPipeline, SimStage, SimStageKind};
/// # use scheduler::doc_support::FifoStrategy;
/// let read = SimStage { name: "read".into(), kind: SimStageKind::Blocking { threads: 4 },
///                       queue: None, cost_ns: Arc::from(vec![2_000_000u64]) };
/// let decode = SimStage { name: "decode".into(),
///                         kind: SimStageKind::Cpu { strategy: Arc::new(FifoStrategy), concurrency: None },
///                         queue: None, cost_ns: Arc::from(vec![250_000u64]) };
/// let r = simulate_pipeline(&SimPipeline::new(vec![read, decode], 2, 1000)).unwrap();
/// // 4 threads / 2 ms = 2,000 items/s for read; 2 workers / 250 µs = 8,000 for decode.
/// assert_eq!(r.bottleneck, "read");
/// assert!((r.items_per_s / 2000.0 - 1.0).abs() < 0.01);
/// ```
///
/// # Errors
/// [`SimPipelineError::Invalid`] for an inconsistent pipeline (no stages, a zero concurrency,
/// queue, batch or window, one above its limit ([`SimPipeline::MAX_WORKERS`],
/// [`SimPipeline::MAX_CONCURRENCY`], [`SimPipeline::MAX_QUEUE`], [`SimPipeline::MAX_BATCH`]),
/// a stage without costs, a window smaller than a batch, too few arrival times, a strategy
/// that cannot serve P workers), checked before anything is allocated;
/// [`SimPipelineError::TimeOverflow`] when simulated time would pass `u64::MAX` ns; and
/// [`SimPipelineError::Contract`] for a strategy that breaks its contract (hands out an id
/// twice or one never submitted, or stops handing out work).
pub fn simulate_pipeline(p: &SimPipeline) -> Result<SimPipelineReport, SimPipelineError> {
    p.check()?;
    let ctx = Context::uniform(p.workers, p.seed);
    let st = p
        .stages
        .iter()
        .map(|s| Station {
            queue: VecDeque::new(),
            incoming: 0,
            open: 0,
            entered: Vec::new(),
            job: match &s.kind {
                SimStageKind::Cpu { strategy, .. } => Some(strategy.build(&ctx)),
                SimStageKind::Blocking { .. } => None,
            },
            bound: Vec::new(),
            pending: 0,
            served: 0,
            service_ns: 0,
            sojourn_ns: 0,
            wait_ns: 0,
            in_stage: 0,
            area: 0,
            last_t: 0,
        })
        .collect();
    let mut run = Run {
        p,
        st,
        workers: vec![
            Worker {
                running: None,
                start: 0,
                notified: false,
                parked: true,
            };
            p.workers
        ],
        parked: (0..p.workers).collect(),
        heap: BinaryHeap::new(),
        seq: 0,
        events: 0,
        window: p.window(),
        admitted: 0,
        held: 0,
        held_peak: 0,
        arrival_pending: false,
        done: if p.ordered {
            vec![false; p.items]
        } else {
            Vec::new()
        },
        next_out: 0,
        delivered: 0,
        in_batch: 0,
        batches: Vec::new(),
        last_batch: 0,
    };
    for s in &mut run.st {
        s.entered = vec![0; p.items];
    }
    let end = run.run()?;
    Ok(run.report(end))
}

impl Run<'_> {
    fn push(&mut self, t: u64, kind: u8, a: usize, b: usize) {
        self.seq += 1;
        self.heap
            .push(Reverse((t, self.seq, kind, a as u32, b as u32)));
    }

    fn cost(&self, k: usize, item: u32) -> u64 {
        let c = &self.p.stages[k].cost_ns;
        c[item as usize % c.len()]
    }

    fn last(&self) -> usize {
        self.st.len() - 1
    }

    /// `t + d`, or the overflow error naming stage `k`.
    fn later(&self, t: u64, d: u64, k: usize) -> Result<u64, SimPipelineError> {
        t.checked_add(d)
            .ok_or_else(|| self.overflow(k, t, d as f64, false))
    }

    fn overflow(&self, k: usize, at_ns: u64, more_ns: f64, stretched: bool) -> SimPipelineError {
        SimPipelineError::TimeOverflow {
            stage: self.p.stages[k].name.clone(),
            at_ns,
            more_ns,
            stretched,
        }
    }

    fn run(&mut self) -> Result<u64, SimPipelineError> {
        let n = self.p.items;
        if n == 0 {
            return Ok(0);
        }
        self.dispatch(0)?;
        while let Some(Reverse((t, _, kind, a, b))) = self.heap.pop() {
            self.events += 1;
            let (a, b) = (a as usize, b as usize);
            match kind {
                ARRIVAL => self.arrival_pending = false,
                DONE_BLOCKING => self.finish(a, b as u32, t),
                DONE_CPU => {
                    let w = a;
                    let (k, id, end) = self.workers[w].running.take().expect("running");
                    let item = self.st[k].bound[id];
                    let start = self.workers[w].start;
                    if let Some(job) = &mut self.st[k].job {
                        job.workers[w].completed(id, t - start);
                    }
                    self.finish(k, item, t);
                    if id + 1 < end {
                        self.start_cpu(w, k, id + 1, end, t)?;
                    } else {
                        self.search(w, t)?;
                    }
                }
                _ => {
                    debug_assert_eq!(kind, SEARCH);
                    let _ = b;
                    self.search(a, t)?;
                }
            }
            if self.delivered as usize == n {
                return Ok(t);
            }
            self.dispatch(t)?;
        }
        Err(SimPipelineError::Contract(format!(
            "sim pipeline: stalled with {} of {n} items delivered (a strategy stopped handing \
             out work)",
            self.delivered
        )))
    }

    /// Stage `k` finished `item` at `t`: it moves to the next queue, or to the tail.
    fn finish(&mut self, k: usize, item: u32, t: u64) {
        let s = &mut self.st[k];
        let entered = s.entered[item as usize];
        s.open -= 1;
        s.served += 1;
        s.sojourn_ns += u128::from(t - entered);
        s.change(t, false);
        if k < self.last() {
            let reserved = matches!(self.p.stages[k].kind, SimStageKind::Cpu { .. });
            let nx = &mut self.st[k + 1];
            if reserved {
                nx.incoming -= 1;
            }
            nx.queue.push_back((item, t));
            nx.entered[item as usize] = t;
            nx.change(t, true);
        } else {
            self.tail(item, t);
        }
    }

    /// The tail takes `item`: reorder, batch, hand on.
    fn tail(&mut self, item: u32, t: u64) {
        if self.p.ordered {
            self.done[item as usize] = true;
            while self.next_out < self.p.items && self.done[self.next_out] {
                self.next_out += 1;
                self.deliver(t);
            }
        } else {
            self.deliver(t);
        }
    }

    fn deliver(&mut self, t: u64) {
        self.delivered += 1;
        self.in_batch += 1;
        if self.in_batch == self.p.batch as u64 || self.delivered == self.p.items as u64 {
            self.held -= self.in_batch;
            self.in_batch = 0;
            self.batches.push(t - self.last_batch);
            self.last_batch = t;
        }
    }

    /// Start whatever may start at `t`, downstream first, and feed the source; until nothing
    /// changes.
    fn dispatch(&mut self, t: u64) -> Result<(), SimPipelineError> {
        loop {
            let mut changed = false;
            for k in (0..self.st.len()).rev() {
                changed |= self.start_stage(k, t)?;
            }
            changed |= self.feed(t);
            if !changed {
                return Ok(());
            }
        }
    }

    /// Room in the queue after stage `k` (the tail has always room: the window bounds it).
    fn room_after(&self, k: usize) -> bool {
        if k == self.last() {
            return true;
        }
        let nx = &self.st[k + 1];
        match self.p.stages[k].kind {
            SimStageKind::Cpu { .. } => nx.queue.len() + nx.incoming < self.p.queue(k + 1),
            SimStageKind::Blocking { threads } => {
                self.st[k].open + nx.queue.len() + nx.incoming < threads + self.p.queue(k + 1)
            }
        }
    }

    fn start_stage(&mut self, k: usize, t: u64) -> Result<bool, SimPipelineError> {
        let c = self.p.concurrency(k);
        let mut changed = false;
        while self.st[k].open < c && !self.st[k].queue.is_empty() && self.room_after(k) {
            changed = true;
            let (item, entered) = self.st[k].queue.pop_front().expect("an item");
            let reserves = matches!(self.p.stages[k].kind, SimStageKind::Cpu { .. });
            if reserves && k < self.last() {
                // A cpu stage reserves its output's place in the next queue; a blocking
                // stage's budget (`room_after`) counts its items in service instead.
                self.st[k + 1].incoming += 1;
            }
            let s = &mut self.st[k];
            s.open += 1;
            match &mut s.job {
                None => {
                    s.wait_ns += u128::from(t - entered);
                    let d = self.cost(k, item);
                    let end = self.later(t, d, k)?;
                    self.st[k].service_ns += u128::from(d);
                    self.push(end, DONE_BLOCKING, k, item as usize);
                }
                Some(job) => {
                    let id = s.bound.len();
                    s.bound.push(item);
                    s.pending += 1;
                    job.shared.submit(Batch::new(id..id + 1));
                    if let Some(w) = self.parked.pop_front() {
                        self.workers[w].parked = false;
                        self.workers[w].notified = true;
                        self.push(t, SEARCH, w, 0);
                    }
                }
            }
        }
        Ok(changed)
    }

    /// Admit source items into the first queue while the window and the queue allow.
    fn feed(&mut self, t: u64) -> bool {
        let mut changed = false;
        while self.admitted < self.p.items
            && (self.held as usize) < self.window
            && self.st[0].queue.len() < self.p.queue(0)
        {
            if let Some(a) = &self.p.arrivals_ns {
                let at = a[self.admitted];
                if at > t {
                    if !self.arrival_pending {
                        self.arrival_pending = true;
                        self.push(at, ARRIVAL, 0, 0);
                    }
                    break;
                }
            }
            let item = self.admitted as u32;
            self.admitted += 1;
            self.held += 1;
            self.held_peak = self.held_peak.max(self.held);
            let s = &mut self.st[0];
            s.queue.push_back((item, t));
            s.entered[item as usize] = t;
            s.change(t, true);
            changed = true;
        }
        changed
    }

    /// Worker `w` is free at `t`: ask each cpu job's strategy, the last stage's first.
    fn search(&mut self, w: usize, t: u64) -> Result<(), SimPipelineError> {
        let notified = std::mem::take(&mut self.workers[w].notified);
        let mut retry = None;
        for k in (0..self.st.len()).rev() {
            let Some(job) = &mut self.st[k].job else {
                continue;
            };
            match job.workers[w].next() {
                Next::Task(pick) => {
                    let s = &mut self.st[k];
                    let end = pick.task + pick.count as usize;
                    if pick.count == 0 || end > s.bound.len() || (pick.count as usize) > s.pending {
                        return Err(self.bug(k, format!("handed out ids {:?}", pick.tasks())));
                    }
                    s.pending -= pick.count as usize;
                    return self.start_cpu(w, k, pick.task, end, t);
                }
                Next::Retry(_) => retry = Some(k),
                Next::Empty(_) => {}
            }
        }
        if let Some(k) = retry {
            // Lost a race: look again a microsecond later.
            let again = self.later(t, 1_000, k)?;
            self.push(again, SEARCH, w, 0);
            return Ok(());
        }
        if notified && self.st.iter().any(|s| s.pending > 0) {
            // Woken for work it cannot take (static placement): wake everyone, as the sim
            // engine does (see README.md, "Parking and waking").
            while let Some(v) = self.parked.pop_front() {
                self.workers[v].parked = false;
                self.push(t, SEARCH, v, 0);
            }
        }
        self.workers[w].parked = true;
        self.parked.push_back(w);
        Ok(())
    }

    fn start_cpu(
        &mut self,
        w: usize,
        k: usize,
        id: usize,
        end: usize,
        t: u64,
    ) -> Result<(), SimPipelineError> {
        let item = self.st[k].bound[id];
        let stretch = self.p.cpu_stretch();
        let cost = self.cost(k, item);
        let d = if stretch > 1.0 && cost > 0 {
            // 2^64 as f64 is exact: a rounded product below it fits in u64.
            let x = (cost as f64 * stretch).round();
            if x.is_finite() && x < 18_446_744_073_709_551_616.0 {
                x as u64
            } else {
                return Err(self.overflow(k, t, x, true));
            }
        } else {
            cost
        };
        let done = t
            .checked_add(d)
            .ok_or_else(|| self.overflow(k, t, d as f64, stretch > 1.0))?;
        let s = &mut self.st[k];
        s.wait_ns += u128::from(t - s.entered[item as usize]);
        s.service_ns += u128::from(d);
        self.workers[w].running = Some((k, id, end));
        self.workers[w].start = t;
        self.push(done, DONE_CPU, w, 0);
        Ok(())
    }

    fn bug(&self, k: usize, what: String) -> SimPipelineError {
        let spec = match &self.p.stages[k].kind {
            SimStageKind::Cpu { strategy, .. } => strategy.spec(),
            SimStageKind::Blocking { .. } => String::new(),
        };
        SimPipelineError::Contract(format!(
            "sim pipeline: stage {}: strategy {spec} broke its contract: {what}",
            self.p.stages[k].name
        ))
    }

    fn report(mut self, end: u64) -> SimPipelineReport {
        let p = self.p;
        let secs = end as f64 / 1e9;
        let per_s = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
        let (limit, bottleneck) = p.limit();
        let mut stages = Vec::new();
        for (k, s) in self.st.iter_mut().enumerate() {
            s.change(end, true); // close the integral (the count itself is not used after)
            let c = p.concurrency(k);
            let (kind, eff) = match p.stages[k].kind {
                SimStageKind::Cpu { .. } => ("cpu", c.min(p.workers)),
                SimStageKind::Blocking { .. } => ("blocking", c),
            };
            let served = s.served.max(1) as f64;
            let mean_service = s.service_ns as f64 / served;
            stages.push(SimStageReport {
                name: p.stages[k].name.clone(),
                kind: kind.into(),
                concurrency: c,
                queue: p.queue(k),
                items: s.served,
                mean_service_ns: mean_service,
                capacity_per_s: if mean_service > 0.0 {
                    eff as f64 / (mean_service / 1e9)
                } else {
                    f64::INFINITY
                },
                busy: if end > 0 {
                    s.service_ns as f64 / (end as f64 * eff as f64)
                } else {
                    0.0
                },
                mean_in_stage: if end > 0 {
                    s.area as f64 / end as f64
                } else {
                    0.0
                },
                mean_sojourn_ns: s.sojourn_ns as f64 / served,
                mean_wait_ns: s.wait_ns as f64 / served,
                throughput_per_s: per_s(s.served as f64),
            });
        }
        let busiest = stages
            .iter()
            .fold((f64::MIN, String::new()), |b, s| {
                if s.busy > b.0 {
                    (s.busy, s.name.clone())
                } else {
                    b
                }
            })
            .1;
        self.batches.sort_unstable();
        let q = |f: f64| -> u64 {
            if self.batches.is_empty() {
                0
            } else {
                let i =
                    ((f * self.batches.len() as f64).ceil() as usize).clamp(1, self.batches.len());
                self.batches[i - 1]
            }
        };
        let items_per_s = per_s(self.delivered as f64);
        SimPipelineReport {
            workers: p.workers,
            items: self.delivered,
            batches: self.batches.len() as u64,
            elapsed_ns: end,
            items_per_s,
            limit_per_s: limit,
            fraction_of_limit: if limit.is_finite() && limit > 0.0 {
                items_per_s / limit
            } else {
                0.0
            },
            bottleneck,
            busiest,
            batch_p50_ns: q(0.5),
            batch_p99_ns: q(0.99),
            window: self.window,
            held_peak: self.held_peak,
            events: self.events,
            stages,
        }
    }
}
