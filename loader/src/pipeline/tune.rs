//! Online autotune: a controller thread that sizes each blocking stage's threads, the input
//! queues and the segments' windows from measured service times (docs/pipelines.md,
//! "Autotune", says why this model and not hill climbing).
//!
//! Every `interval` the controller reads each station's finished items and service time since
//! the last reading. The cpu stages share the P CPU workers, so together they serve at most
//! `X* = P / Σ_cpu (mean service / source items per item)` source items/s, and that (or a cpu
//! stage's own cap, if lower) is the target. By Little's law a blocking stage whose items take
//! `s` seconds needs `X* · s` threads busy to keep up; it gets `(1 + headroom)` times that.
//! Queues follow their stage's concurrency (unless the user set them) and a window holds
//! twice its stations' slots and queues, and twice the items in flight at the target rate over
//! the segment's mean time plus its slowest stage's p99.9 (room for the in-order tail). A
//! memory cap scales windows and threads down to fit.
//!
//! A blocking stage is raised by the model only while its threads were busy (`may_raise`).
//!
//! No oscillation: a setting changes only when the model moves it by more than the hysteresis
//! (20% up, twice that down), and after a change nothing is measured until it has settled
//! (two intervals, or the time to turn the windows over, whichever is longer).

use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::default_queue;
use super::engine::{lock, Kind, Shared};
use super::stats::StationAcc;
use crate::report::{consumer_rate, head_wait_counts};

/// Online autotune settings for [`PipelineBuilder::autotune`](super::PipelineBuilder::autotune).
///
/// With autotune on, each blocking stage's thread count (its concurrency), the queues the user
/// did not size and the segments' windows become the tuner's: the values given (or the
/// defaults) are its starting guess. A cpu stage keeps its concurrency: its items share the
/// pool's P workers with the other cpu stages, and the pool already gives a worker to whichever
/// stage has work.
///
/// ```
/// use loader::{Autotune, Pipeline, Sampler, Stage};
///
/// let mut p = Pipeline::from_sampler(200, Sampler::sequential())
///     .map(Stage::blocking("read", 2), |i: usize| {
///         std::thread::sleep(std::time::Duration::from_micros(200));
///         i
///     })
///     .map(Stage::cpu("decode"), |i: usize| i * 2)
///     .workers(2)
///     .autotune(Autotune::new().max_items(256))
///     .build()?;
/// let n = p.epoch(0).filter(|r| r.is_ok()).count();
/// assert_eq!(n, 200);
/// assert!(p.held_peak() <= 256);
/// let tuning = p.report().unwrap().tuning.clone().unwrap();
/// for c in &tuning.changes {
///     println!("{:.3} s: {} {} -> {} ({})", c.at_s, c.knob, c.from, c.to, c.why);
/// }
/// # Ok::<(), loader::PipelineError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Autotune {
    pub(crate) max_items: Option<usize>,
    pub(crate) max_threads: usize,
    pub(crate) interval: Duration,
    pub(crate) headroom: f64,
    pub(crate) hysteresis: f64,
    pub(crate) window_rule: WindowRule,
}

/// How the tuner sizes the windows ([`Autotune::window_rule`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WindowRule {
    /// Every segment's window from its stations: twice their slots and queues, and twice the
    /// items in flight at the target rate over the segment's mean time plus its slowest
    /// stage's p99.9; raised by half when a cpu stage starves while the window is full.
    #[default]
    Stations,
    /// The last segment's window (the consumer's) from the consumer's side, the
    /// [`Loader`](crate::Loader)'s prefetch rule: in order, the head-of-line wait that keeps
    /// the throughput lost to one slow item at the head under 5% at the target rate (the
    /// lesser of the consumer's own rate and what the segment can serve), plus the items in
    /// service, 25% more (the headroom), in whole batches plus one; as ready, twice the items
    /// in service. Read from the most recent 1,024 to 2,048 service times of the segment's
    /// slowest station. Raised by half when the consumer waits more than 5% of a reading
    /// with the window full and CPU workers idle for want of room; lowered only after five
    /// readings in a row asked for less. Other segments keep the `Stations` rule.
    HeadOfLine,
}

impl Default for Autotune {
    fn default() -> Self {
        Autotune {
            max_items: None,
            max_threads: 256,
            interval: Duration::from_millis(20),
            headroom: 0.25,
            hysteresis: 0.2,
            window_rule: WindowRule::Stations,
        }
    }
}

impl Autotune {
    /// The defaults: no memory cap, at most 256 threads per blocking stage, a reading every
    /// 20 ms, 25% headroom, 20% hysteresis.
    pub fn new() -> Autotune {
        Autotune::default()
    }

    /// Memory cap: at most `n` items held at once over all segments (queued, in service, or
    /// waiting in a reorder window).
    pub fn max_items(mut self, n: usize) -> Autotune {
        self.max_items = Some(n);
        self
    }

    /// At most `n` threads for any blocking stage (default 256).
    pub fn max_threads(mut self, n: usize) -> Autotune {
        self.max_threads = n;
        self
    }

    /// How often the controller reads the statistics (default 20 ms).
    pub fn interval(mut self, every: Duration) -> Autotune {
        self.interval = every;
        self
    }

    /// How the windows are sized (default [`WindowRule::Stations`]; the
    /// [`Loader`](crate::Loader)'s autotune is [`WindowRule::HeadOfLine`]).
    ///
    /// ```
    /// use loader::{Autotune, Pipeline, Remainder, Sampler, Stage, WindowRule};
    ///
    /// // One cpu stage and a batch, sized from the consumer's side as the Loader is.
    /// let mut p = Pipeline::from_sampler(400, Sampler::sequential())
    ///     .map(Stage::cpu("get"), |i: usize| {
    ///         std::thread::sleep(std::time::Duration::from_micros(100));
    ///         i
    ///     })
    ///     .batch(4, Remainder::Partial)
    ///     .workers(2)
    ///     .window(4)
    ///     .autotune(Autotune::new().window_rule(WindowRule::HeadOfLine).max_items(64))
    ///     .build()?;
    /// assert_eq!(p.epoch(0).filter(|b| b.is_ok()).count(), 100);
    /// assert!(p.held_peak() <= 64);
    /// # Ok::<(), loader::PipelineError>(())
    /// ```
    pub fn window_rule(mut self, rule: WindowRule) -> Autotune {
        self.window_rule = rule;
        self
    }
}

/// One change the tuner made.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TuneChange {
    /// Seconds from the start of the epoch.
    pub at_s: f64,
    /// What changed: `STAGE.threads`, `STAGE.queue` or `segment N.window`.
    pub knob: String,
    /// The setting before.
    pub from: usize,
    /// The setting after.
    pub to: usize,
    /// Why, from the measurements.
    pub why: String,
}

/// What the consumer's thread measures of one run, for the tuner and the report: its time
/// inside `next()`, its waits that began with the consumer's window full and ended with CPU
/// workers idle, and the items held when it asked.
#[derive(Debug, Default)]
pub(crate) struct Consumer {
    /// When the consumer first took from the run (a prefetched next epoch's run opens before).
    since: std::sync::OnceLock<Instant>,
    in_next_ns: AtomicU64,
    stall_full_ns: AtomicU64,
    occ_sum: AtomicU64,
    occ_n: AtomicU64,
    occ_max: AtomicUsize,
}

impl Consumer {
    /// The consumer takes from this run from now on.
    pub fn activate(&self) {
        let _ = self.since.set(Instant::now());
    }

    pub fn is_active(&self) -> bool {
        self.since.get().is_some()
    }

    pub fn since(&self) -> Option<Instant> {
        self.since.get().copied()
    }

    /// One call of `next()`: `held` items were held when it began, it took `took`, and it
    /// was a wait with the window full that ended with CPU workers idle (`stalled`).
    pub fn call(&self, held: usize, took: Duration, stalled: bool) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.in_next_ns.fetch_add(ns, Relaxed);
        if stalled {
            self.stall_full_ns.fetch_add(ns, Relaxed);
        }
        self.occ_sum.fetch_add(held as u64, Relaxed);
        self.occ_n.fetch_add(1, Relaxed);
        self.occ_max.fetch_max(held, Relaxed);
    }

    pub fn in_next_ns(&self) -> u64 {
        self.in_next_ns.load(Relaxed)
    }

    pub fn stall_full_ns(&self) -> u64 {
        self.stall_full_ns.load(Relaxed)
    }

    /// Mean and most items held when the consumer asked.
    pub fn occupancy(&self) -> (f64, usize) {
        let n = self.occ_n.load(Relaxed);
        let mean = if n > 0 {
            self.occ_sum.load(Relaxed) as f64 / n as f64
        } else {
            0.0
        };
        (mean, self.occ_max.load(Relaxed))
    }
}

/// One reading of the controller.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TunePoint {
    /// Seconds from the start of the epoch.
    pub at_s: f64,
    /// Source items per second handed to the consumer since the last reading.
    pub items_per_s: f64,
    /// The model's target, source items/s (`None` before every stage was measured).
    pub target_per_s: Option<f64>,
    /// Each stage's concurrency (threads, for a blocking stage), in pipeline order, as in
    /// force over the reading (a change the reading decided shows in the next one).
    pub concurrency: Vec<usize>,
    /// The windows' sum over the reading: the most items the pipeline may hold.
    pub window: usize,
}

/// What the tuner did over an epoch: every change and the trajectory of its readings.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Tuning {
    /// The stages, in the order of [`TunePoint::concurrency`].
    pub stages: Vec<String>,
    /// Every change, in time order.
    pub changes: Vec<TuneChange>,
    /// The readings (thinned to at most 2,048 by dropping every other one when full).
    pub trajectory: Vec<TunePoint>,
}

const MAX_POINTS: usize = 2048;

/// Source items (decayed) a station's estimate of its service time needs: a station after a
/// `batch(32)` has its estimate after one batch, a station before it after 16 items.
const MIN_SAMPLE: u64 = 16;

/// Source items the first station must have finished before a station that has seen none
/// counts as costing nothing (everything before it was filtered out): until then, the model
/// waits for it.
const QUIET_AFTER: u64 = 64 * MIN_SAMPLE;

/// A station's mean service time, seconds, from what it finished: the decayed sums
/// `(items, ns)` while they cover [`MIN_SAMPLE`] source items (`per_item` each), else the
/// totals since the epoch's first reading while they do (a station that sees few items, such
/// as a collate after a batch, is measured from all of them rather than never); `Some(0.0)`
/// for a station that has finished nothing while the first station has finished
/// [`QUIET_AFTER`] source items; else `None` (not measured yet).
pub(crate) fn estimate(
    decayed: (f64, f64),
    total: (u64, u128),
    per_item: f64,
    head_done: f64,
) -> Option<f64> {
    let need = MIN_SAMPLE as f64;
    let per_item = per_item.max(1e-9);
    if decayed.0 > 0.0 && decayed.0 * per_item >= need {
        Some(decayed.1 / decayed.0 / 1e9)
    } else if total.0 > 0 && total.0 as f64 * per_item >= need {
        Some(total.1 as f64 / total.0 as f64 / 1e9)
    } else if total.0 == 0 && head_done >= QUIET_AFTER as f64 {
        Some(0.0)
    } else {
        None
    }
}

/// The weight of a reading's items relative to the next reading's.
const DECAY: f64 = 0.6;

impl Tuning {
    /// Record reading `p`, keeping every `stride`-th one (the stride doubles as the record fills).
    pub(crate) fn push(&mut self, p: TunePoint, stride: &mut usize, seen: &mut usize) {
        *seen += 1;
        if *seen % *stride != 0 {
            return;
        }
        self.trajectory.push(p);
        if self.trajectory.len() >= MAX_POINTS {
            let kept: Vec<TunePoint> = self.trajectory.drain(..).step_by(2).collect();
            self.trajectory = kept;
            *stride *= 2;
        }
    }
}

// ---- the model (pure, unit-tested) ------------------------------------------------------

/// What the model knows of one station.
#[derive(Clone, Debug)]
pub(crate) struct StationIn {
    pub name: String,
    pub kind: Kind,
    /// Source items per item of this station.
    pub per_item: f64,
    /// Mean service time per item, seconds (`None`: not measured yet).
    pub mean_s: Option<f64>,
    /// 99.9th percentile of the service time (wall), seconds.
    pub tail_s: f64,
    pub conc: usize,
    pub queue: usize,
    /// The user did not size the queue: it follows the concurrency.
    pub queue_auto: bool,
    /// The least concurrency feedback has asked for (0: none).
    pub floor: usize,
}

/// What the model knows of one segment.
#[derive(Clone, Debug)]
pub(crate) struct SegIn {
    pub stations: Range<usize>,
    pub batch: usize,
    pub window: usize,
    /// Source items per item of this segment.
    pub per_item: f64,
    /// The least window feedback has asked for (0: none).
    pub floor: usize,
}

/// What the last reading saw, for feedback: per station the share of the time it was
/// starved (a free slot, no input) and, for a blocking station, its threads' busy share; per
/// segment the share of the time its window was full.
#[derive(Clone, Debug, Default)]
pub(crate) struct Signals {
    pub starved: Vec<f64>,
    pub busy: Vec<f64>,
    pub full: Vec<f64>,
}

/// A cpu stage starved more than this share of the time wants more input.
const STARVED: f64 = 0.05;

/// The model raises a blocking stage's threads only while they were busy at least this share
/// of the last reading (the model itself aims at `1 / (1 + headroom)`, 80% by default).
const GROW_BUSY: f64 = 0.7;

/// Whether the model may take a blocking stage from `cur` threads to `new`: a move down, or a
/// raise that feedback asked for (`floor`: feedback raises only a stage that is busy while the
/// stage after it starves), or a raise of a stage whose threads were busy [`GROW_BUSY`] of the
/// last reading. A stage less busy than that is not what holds the pipeline back (its threads
/// wait for room downstream), and its measured service time may be growing *because* of its
/// threads (a lock they share, Python's GIL): Little's law on that time asks for ever more
/// threads, each raise lengthening the time it is computed from.
pub(crate) fn may_raise(cur: usize, new: usize, floor: usize, busy: f64) -> bool {
    new <= cur || new <= floor || busy >= GROW_BUSY
}

/// Feedback on what the model cannot see (bursts a mean hides, an in-order window held up
/// by a slow item): when a cpu stage starves while the blocking stages before it in its
/// segment are busy, their floors rise by half; when it starves while its segment's window
/// is full, the window's floor rises by half. Floors only rise, within an epoch and from one
/// epoch to the next (`engine::Floors`). Returns why.
pub(crate) fn feedback(
    st: &mut [StationIn],
    segs: &mut [SegIn],
    sig: &Signals,
    cfg: &Autotune,
) -> Vec<String> {
    let mut why = Vec::new();
    for (g, seg) in segs.iter_mut().enumerate() {
        for k in seg.stations.clone() {
            let starved = sig.starved.get(k).copied().unwrap_or(0.0);
            if st[k].kind != Kind::Cpu || starved <= STARVED {
                continue;
            }
            for j in seg.stations.start..k {
                let busy = sig.busy.get(j).copied().unwrap_or(0.0);
                if st[j].kind == Kind::Blocking && busy > 0.8 {
                    let c = st[j].conc;
                    let up = ((c as f64 * 1.5).ceil() as usize)
                        .max(c + 1)
                        .min(cfg.max_threads.max(1));
                    if up > st[j].floor.max(c) {
                        st[j].floor = up;
                        why.push(format!(
                            "{} starved {:.0}% of the time while {}'s {c} threads were {:.0}% busy: at least {up} threads",
                            st[k].name,
                            100.0 * starved,
                            st[j].name,
                            100.0 * busy
                        ));
                    }
                }
            }
            let full = sig.full.get(g).copied().unwrap_or(0.0);
            if full > 0.1 {
                let up = (seg.window as f64 * 1.5).ceil() as usize;
                if up > seg.floor.max(seg.window) {
                    seg.floor = up;
                    why.push(format!(
                        "{} starved {:.0}% of the time while segment {g}'s window was full {:.0}% of it: a window of {up} at least",
                        st[k].name,
                        100.0 * starved,
                        100.0 * full
                    ));
                }
            }
        }
    }
    why
}

/// The model's settings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    pub target: Option<f64>,
    pub conc: Vec<usize>,
    pub queue: Vec<usize>,
    pub window: Vec<usize>,
    /// Per station: why its concurrency is what it is.
    pub why: Vec<String>,
}

/// The settings the measurements call for (before hysteresis).
pub(crate) fn model(p: usize, st: &[StationIn], segs: &[SegIn], cfg: &Autotune) -> Plan {
    let pf = p.max(1) as f64;
    let measured = st.iter().all(|s| s.mean_s.is_some());
    let mut conc: Vec<usize> = st.iter().map(|s| s.conc).collect();
    let mut why = vec![String::new(); st.len()];
    let mut target = None;
    if measured {
        let cpu_per_item: f64 = st
            .iter()
            .filter(|s| s.kind == Kind::Cpu)
            .map(|s| s.mean_s.unwrap_or(0.0) / s.per_item)
            .sum();
        let mut x = if cpu_per_item > 0.0 {
            pf / cpu_per_item
        } else {
            f64::INFINITY
        };
        let mut by = "the CPU workers".to_string();
        for s in st.iter().filter(|s| s.kind == Kind::Cpu) {
            let m = s.mean_s.unwrap_or(0.0);
            if m > 0.0 {
                let own = (s.conc as f64).min(pf) / m * s.per_item;
                if own < x {
                    (x, by) = (own, format!("{}'s concurrency", s.name));
                }
            }
        }
        if !x.is_finite() {
            // No CPU work to keep up with: the blocking stages' thread caps set the pace.
            for s in st.iter().filter(|s| s.kind == Kind::Blocking) {
                let m = s.mean_s.unwrap_or(0.0);
                if m > 0.0 {
                    let own = cfg.max_threads as f64 / m * s.per_item;
                    if own < x {
                        (x, by) = (own, format!("{}'s thread cap", s.name));
                    }
                }
            }
        }
        if x.is_finite() && x > 0.0 {
            target = Some(x);
            for (i, s) in st.iter().enumerate() {
                if s.kind != Kind::Blocking {
                    continue;
                }
                let m = s.mean_s.unwrap_or(0.0);
                let busy = x * m / s.per_item;
                // The headroom, and one spare thread at least (a few threads busy
                // 80% of the time queue up on the slow items).
                let n = (busy * (1.0 + cfg.headroom)).max(busy + 1.0).ceil() as usize;
                conc[i] = n.max(s.floor).min(cfg.max_threads.max(1));
                why[i] = format!(
                    "{:.3} ms per item x {:.0} items/s (the limit of {by}) = {:.1} threads busy, +{:.0}% (one at least)",
                    m * 1e3,
                    x,
                    busy,
                    cfg.headroom * 100.0
                );
            }
        }
    }
    if target.is_none() {
        // Not every station measured yet: feedback alone may raise a blocking stage (its
        // floor), so that a pipeline whose slowest station is measured late still grows.
        for (i, s) in st.iter().enumerate() {
            if s.kind == Kind::Blocking && s.floor > conc[i] {
                conc[i] = s.floor.min(cfg.max_threads.max(1));
                why[i] = format!(
                    "{} at least, from feedback (not every stage measured yet)",
                    s.floor
                );
            }
        }
    }
    let queue_of = |i: usize, c: usize| {
        if st[i].queue_auto {
            default_queue(c)
        } else {
            st[i].queue
        }
    };
    let mut queue: Vec<usize> = (0..st.len()).map(|i| queue_of(i, conc[i])).collect();
    let window_of = |seg: &SegIn, conc: &[usize], queue: &[usize]| -> usize {
        // The builder's rule (and the simulator's): one function, saturating.
        let rule = scheduler::window::default_window(
            seg.stations.clone().map(|i| (conc[i], queue[i])),
            seg.batch,
        );
        let little = match target {
            Some(x) => {
                let mean: f64 = seg
                    .stations
                    .clone()
                    .map(|i| st[i].mean_s.unwrap_or(0.0))
                    .sum();
                let tail = seg
                    .stations
                    .clone()
                    .map(|i| st[i].tail_s)
                    .fold(0.0, f64::max);
                (2.0 * x / seg.per_item * (mean + tail)).ceil() as usize
            }
            None => 0,
        };
        rule.max(little).max(seg.floor).max(seg.batch)
    };
    // Under the head-of-line rule its segment's window is the controller's own decision.
    let hol = hol_segment(cfg, segs.iter().map(|g| g.stations.clone()));
    let mut window: Vec<usize> = segs
        .iter()
        .enumerate()
        .map(|(g, seg)| {
            if hol == Some(g) {
                seg.window
            } else {
                window_of(seg, &conc, &queue)
            }
        })
        .collect();
    if let Some(cap) = cfg.max_items {
        fit(cap, st, segs, &mut conc, &mut queue, &mut window, &mut why);
    }
    Plan {
        target,
        conc,
        queue,
        window,
        why,
    }
}

/// Scale windows (and the blocking threads and queues inside them) down to `cap` items.
fn fit(
    cap: usize,
    st: &[StationIn],
    segs: &[SegIn],
    conc: &mut [usize],
    queue: &mut [usize],
    window: &mut [usize],
    why: &mut [String],
) {
    let total = window.iter().fold(0usize, |a, &w| a.saturating_add(w));
    if total <= cap {
        return;
    }
    let scale = cap as f64 / total as f64;
    for (g, seg) in segs.iter().enumerate() {
        let w = ((window[g] as f64 * scale).floor() as usize).max(seg.batch.max(1));
        window[g] = w;
        // Slots and queues take at most half the window, as the default rule has it.
        let held = seg.stations.clone().fold(0usize, |a, i| {
            a.saturating_add(conc[i].saturating_add(queue[i]))
        });
        if held.saturating_mul(2) > w {
            let f = w as f64 / (2.0 * held as f64);
            for i in seg.stations.clone() {
                if st[i].kind == Kind::Blocking {
                    let c = ((conc[i] as f64 * f).floor() as usize).max(1);
                    if c < conc[i] {
                        why[i] = format!("{}; cut to fit the memory cap of {cap} items", why[i]);
                        conc[i] = c;
                    }
                }
                if st[i].queue_auto {
                    queue[i] = ((queue[i] as f64 * f).floor() as usize).max(1);
                }
            }
        }
    }
}

/// The windows to set, from the current ones `cur` and the plan's `want`, each moved only
/// past the hysteresis `h`.
///
/// Under a memory cap the sum of the windows is not enough: a segment whose window shrinks
/// still holds what it admitted under the old one until those items leave, so another
/// segment's window may grow only into room that no segment may still be holding.
/// `may_hold[g]` is the most segment `g` may hold (its highest window since it was last seen
/// below its window); decreases apply first, then increases, each cut so that
/// `Σ max(window, may_hold) ≤ cap`.
pub(crate) fn cap_windows(
    cur: &[usize],
    want: &[usize],
    may_hold: &mut [usize],
    cap: Option<usize>,
    h: f64,
) -> Vec<usize> {
    let mut w: Vec<usize> = cur.to_vec();
    for g in 0..w.len() {
        if want[g] < cur[g] && moves(cur[g], want[g], h) {
            w[g] = want[g];
        }
        may_hold[g] = may_hold[g].max(cur[g]);
    }
    for g in 0..w.len() {
        if want[g] <= cur[g] {
            continue;
        }
        let mut new = want[g];
        if let Some(cap) = cap {
            let others: usize = (0..w.len())
                .filter(|&x| x != g)
                .map(|x| w[x].max(may_hold[x]))
                .fold(0usize, usize::saturating_add);
            new = new.min(cap.saturating_sub(others));
        }
        if new > cur[g] && moves(cur[g], new, h) {
            w[g] = new;
            may_hold[g] = may_hold[g].max(new);
        }
    }
    w
}

/// Whether a setting moves from `cur` to `new`: up by more than `h`, or down by more than
/// `2h` (and by one at least).
pub(crate) fn moves(cur: usize, new: usize, h: f64) -> bool {
    let (c, n) = (cur as f64, new as f64);
    if new > cur {
        n - c >= (h * c).max(1.0)
    } else if new < cur {
        c - n >= (2.0 * h * c).max(1.0)
    } else {
        false
    }
}

// ---- the head-of-line window rule (`WindowRule::HeadOfLine`) -----------------------------

/// The head-of-line loss the rule sizes the window for. Higher than the Loader report's 2%:
/// the estimate is pessimistic (stalls overlap), measured on log-normal σ 1.5 sleeps with 8
/// workers, a window the estimate says loses 6% lost 0.5% against one twice as deep.
const TUNE_LOSS: f64 = 0.05;

/// The consumer waiting longer than this share of a reading while the window was full and
/// fewer calls than CPU workers were running (workers idle for want of room) raises the
/// window's floor by half.
const STALLED: f64 = 0.05;

/// The window goes down only after this many readings in a row wanted it lower (to the most
/// any of them wanted): the tail of the recent times is noisy, and a window that shrinks too
/// soon stalls the consumer at the next slow item.
const DOWN_READINGS: usize = 5;

/// Item times the rule reads before it decides anything.
const MIN_TIMES: u64 = 16;

/// Item times the rule reads: the most recent ones (between this many and twice as many), so
/// that it follows a change.
const RECENT: u64 = 1024;

/// What the head-of-line rule knows of the segment it sizes.
#[derive(Clone, Debug)]
pub(crate) struct HolIn<'a> {
    /// Recent wall service times of the segment's slowest station, `(seconds, count)`,
    /// ascending.
    pub times: &'a [(f64, u64)],
    /// Items the segment serves at once: its stations' concurrency (a cpu station's at most
    /// the CPU workers).
    pub in_service: usize,
    /// The window moves a batch at a time: the segment's batch size (1 without one).
    pub quantum: usize,
    pub ordered: bool,
    /// Items per second the consumer would take if loading were free (`None`: it never spent
    /// 1% of the time outside `next()`).
    pub consumer_per_s: Option<f64>,
}

/// The window (items, a multiple of the quantum) the recent item times call for, the target
/// rate (items/s) it was sized for, and why: in order `λ · c + in_service` (`c`: the
/// head-of-line wait that keeps the estimated loss under [`TUNE_LOSS`],
/// [`head_wait_counts`](crate::report::head_wait_counts); λ the lesser of the consumer's rate and `in_service / mean time`),
/// as ready `2 · in_service`; times `1 + headroom`, in quanta plus one (the window is topped
/// up a batch at a time), two quanta at least. `None` before [`MIN_TIMES`] times were seen.
pub(crate) fn head_of_line(h: &HolIn<'_>, headroom: f64) -> Option<(usize, f64, String)> {
    let n: u64 = h.times.iter().map(|t| t.1).sum();
    if n < MIN_TIMES {
        return None;
    }
    let mean = h.times.iter().map(|&(t, c)| t * c as f64).sum::<f64>() / n as f64;
    let busy = h.in_service as f64;
    let limit = if mean > 0.0 {
        busy / mean
    } else {
        f64::INFINITY
    };
    let target = h.consumer_per_s.map_or(limit, |c| c.min(limit));
    let (window, why) = if h.ordered && target.is_finite() {
        let c = head_wait_counts(h.times, target, TUNE_LOSS);
        let w = target * c + busy;
        (
            w,
            format!(
                "{target:.0} items/s x {:.1} ms head-of-line wait + {busy:.0} in service = \
                 {w:.0} items, +{:.0}%",
                c * 1e3,
                headroom * 100.0
            ),
        )
    } else {
        (
            2.0 * busy,
            format!(
                "as ready: 2 x {busy:.0} in service, +{:.0}%",
                headroom * 100.0
            ),
        )
    };
    let q = h.quantum.max(1);
    let quanta = (window * (1.0 + headroom) / q as f64).ceil() as usize;
    Some((
        quanta.saturating_add(1).max(2).saturating_mul(q),
        target,
        why,
    ))
}

/// The segment the head-of-line rule sizes: the last one with a station (its items are the
/// consumer's, or a trailing batch's members), under [`WindowRule::HeadOfLine`].
pub(crate) fn hol_segment(
    cfg: &Autotune,
    stations: impl DoubleEndedIterator<Item = Range<usize>>,
) -> Option<usize> {
    if cfg.window_rule != WindowRule::HeadOfLine {
        return None;
    }
    let all: Vec<Range<usize>> = stations.collect();
    all.iter().rposition(|r| !r.is_empty())
}

/// The head-of-line rule's memory across readings (one epoch's run).
pub(crate) struct Hol {
    /// Per station of the segment: the histogram snapshots the recent times are taken from
    /// (`older` .. now covers between [`RECENT`] and twice that many items).
    recent: Vec<Option<(Histogram<u64>, Histogram<u64>)>>,
    /// Feedback's floor (rises only, within a run).
    floor: usize,
    /// Readings in a row that wanted a smaller window, and the most they wanted.
    lower: (usize, usize),
    /// The consumer's counters at the last reading: time inside `next()`, full-window stalls.
    last_stall: u64,
}

/// What one reading tells the head-of-line rule.
pub(crate) struct HolReading<'a> {
    /// The segment's stations' service-time histograms (wall) and their effective
    /// concurrency.
    pub stations: Vec<(&'a Histogram<u64>, usize)>,
    pub quantum: usize,
    pub ordered: bool,
    pub window: usize,
    /// The most the window may be (the memory cap less the other segments' windows).
    pub most: usize,
    pub consumer_per_s: Option<f64>,
    /// The consumer's full-window stalls so far, ns.
    pub stall_full_ns: u64,
    /// The reading's length, seconds.
    pub dt: f64,
}

impl Hol {
    pub fn new(stations: usize) -> Hol {
        Hol {
            recent: vec![None; stations],
            floor: 0,
            lower: (0, 0),
            last_stall: 0,
        }
    }

    /// The recent times of station `i` (cumulative histogram `cur`), ascending.
    fn recent_times(&mut self, i: usize, cur: &Histogram<u64>) -> Vec<(f64, u64)> {
        let (older, newer) = self.recent[i]
            .get_or_insert_with(|| (Histogram::new_from(cur), Histogram::new_from(cur)));
        if cur.len().saturating_sub(newer.len()) >= RECENT {
            *older = std::mem::replace(newer, cur.clone());
        }
        let mut d = cur.clone();
        if d.subtract(&*older).is_err() {
            d = cur.clone();
        }
        d.iter_recorded()
            .map(|v| (v.value_iterated_to() as f64 / 1e9, v.count_at_value()))
            .collect()
    }

    /// The reading's decision: the new window and why, or `None` to keep it (within the
    /// hysteresis `h`, or a move down not yet asked for [`DOWN_READINGS`] times in a row).
    pub fn decide(
        &mut self,
        r: &HolReading<'_>,
        cfg: &Autotune,
    ) -> (Option<(usize, String)>, Option<f64>) {
        let q = r.quantum.max(1);
        let stalled = r.stall_full_ns.saturating_sub(self.last_stall) as f64 / 1e9 / r.dt.max(1e-9);
        self.last_stall = r.stall_full_ns;
        // The station whose times hold the head: the slowest by its mean (wall).
        let slowest = (0..r.stations.len())
            .max_by(|&a, &b| r.stations[a].0.mean().total_cmp(&r.stations[b].0.mean()));
        let times = slowest.map_or_else(Vec::new, |i| self.recent_times(i, r.stations[i].0));
        let in_service: usize = r.stations.iter().map(|s| s.1).sum();
        let modelled = head_of_line(
            &HolIn {
                times: &times,
                in_service: in_service.max(1),
                quantum: q,
                ordered: r.ordered,
                consumer_per_s: r.consumer_per_s,
            },
            cfg.headroom,
        );
        let target = modelled.as_ref().map(|m| m.1).filter(|t| t.is_finite());
        let mut why_floor = None;
        if stalled > STALLED {
            let b = r.window / q;
            let up = b
                .saturating_mul(3)
                .div_ceil(2)
                .max(b.saturating_add(1))
                .saturating_mul(q);
            if up > self.floor {
                self.floor = up;
                why_floor = Some(format!(
                    "feedback: the consumer waited {:.0}% of the time with the window full and \
                     CPU workers idle",
                    stalled * 100.0
                ));
            }
        }
        let most = (r.most / q).max(1).saturating_mul(q);
        let (want, why_model) = modelled.map_or((r.window, String::new()), |m| (m.0, m.2));
        let mut new = want.max(self.floor).min(most).max(q);
        if !moves(r.window, new, cfg.hysteresis) {
            self.lower = (0, 0);
            return (None, target);
        }
        if new < r.window {
            self.lower = (self.lower.0 + 1, self.lower.1.max(new));
            if self.lower.0 < DOWN_READINGS {
                return (None, target);
            }
            new = self.lower.1;
        }
        self.lower = (0, 0);
        let why = match why_floor {
            Some(w) if new == self.floor => w,
            _ if new == most && want > most => {
                format!("the model wants {want} items; capped by max_items")
            }
            _ => format!("model: {why_model}"),
        };
        (Some((new, why)), target)
    }
}

// ---- the controller thread ---------------------------------------------------------------

/// What the controller knows of the pipeline's shape.
pub(crate) struct Shape {
    pub workers: usize,
    /// Per station in pipeline order: name, kind, source items per item, queue sized by user.
    pub stations: Vec<(String, Kind, f64, bool)>,
    /// Per segment: its stations (flat indices), batch size, source items per item.
    pub segments: Vec<(Range<usize>, usize, f64)>,
}

/// Starts thread `i` of blocking station `(s, k)`.
pub(crate) type Spawn =
    Box<dyn FnMut(usize, usize, usize) -> Result<JoinHandle<()>, String> + Send>;

/// The controller: runs until the run stops, then hands back the threads it started (the run
/// joins them, within its grace period).
pub(crate) fn control(
    shared: Arc<Shared>,
    shape: Shape,
    cfg: Autotune,
    consumer: Arc<Consumer>,
    mut spawn: Spawn,
) -> Vec<JoinHandle<()>> {
    // A prefetched next epoch's run opens before the consumer takes from it: what it would
    // measure until then is not the consumer's, and its windows are what the running epoch
    // leaves free. The tuner starts when the consumer does.
    while !consumer.is_active() && !shared.is_stopped() {
        std::thread::park_timeout(cfg.interval);
    }
    let hol_seg = hol_segment(&cfg, shape.segments.iter().map(|g| g.0.clone()));
    let mut hol = Hol::new(hol_seg.map_or(0, |g| shape.segments[g].0.len()));
    let flat: Vec<(usize, usize)> = shared
        .segments
        .iter()
        .enumerate()
        .flat_map(|(s, seg)| (0..seg.stations.len()).map(move |k| (s, k)))
        .collect();
    let mut spawned: Vec<usize> = flat
        .iter()
        .map(|&(s, k)| {
            let sp = &shared.segments[s].stations[k].spec;
            if sp.kind == Kind::Blocking {
                sp.conc()
            } else {
                0
            }
        })
        .collect();
    let mut handles: Vec<JoinHandle<()>> = Vec::new();
    let mut mean: Vec<Option<f64>> = vec![None; flat.len()];
    let counts = |sh: &Shared| -> Vec<(u64, u128, u64)> {
        flat.iter().map(|&(s, k)| sh.station_counts(s, k)).collect()
    };
    // Per station: the counts at the last reading, and the decayed sums of items and service
    // time the estimate is made of.
    let mut base: Vec<(u64, u128)> = counts(&shared).iter().map(|c| (c.0, c.1)).collect();
    // ... and at the first reading (the totals this epoch's estimates may fall back on).
    let first = base.clone();
    let mut decayed: Vec<(f64, f64)> = vec![(0.0, 0.0); flat.len()];
    // For the feedback signals: each station's starved time and each segment's window-full
    // time, at the last reading (the service time's is `base`).
    let signals_now = |sh: &Shared| -> (Vec<u64>, Vec<u128>) {
        (
            flat.iter().map(|&(s, k)| sh.starved_ns(s, k)).collect(),
            (0..sh.segments.len())
                .map(|g| sh.window_full_ns(g))
                .collect(),
        )
    };
    let mut prev = signals_now(&shared);
    // Per segment: the most it may hold now (see `cap_windows`).
    let mut may_hold: Vec<usize> = shared
        .segments
        .iter()
        .map(|g| g.window.load(Relaxed))
        .collect();
    // Feedback's floors: the last run's (the same pipeline's, so the same shape), else none.
    let (mut floors, mut wfloors) = {
        let f = lock(&shared.floors);
        (
            if f.stations.len() == flat.len() {
                f.stations.clone()
            } else {
                vec![0usize; flat.len()]
            },
            if f.windows.len() == shared.segments.len() {
                f.windows.clone()
            } else {
                vec![0usize; shared.segments.len()]
            },
        )
    };
    let mut floor_why: Vec<Option<String>> = vec![None; flat.len()];
    let mut last_t = Instant::now();
    let mut last_items = shared.delivered().1;
    let mut settle_until = last_t;
    let (mut stride, mut seen) = (1usize, 0usize);
    {
        let mut t = lock(&shared.tuning);
        t.stages = shape.stations.iter().map(|s| s.0.clone()).collect();
    }
    while !shared.is_stopped() {
        std::thread::park_timeout(cfg.interval);
        if shared.is_stopped() {
            break;
        }
        let now = Instant::now();
        if now < settle_until {
            continue;
        }
        let dt = now.duration_since(last_t).as_secs_f64();
        if dt < cfg.interval.as_secs_f64() * 0.5 {
            continue;
        }
        let snap = counts(&shared);
        let items = shared.delivered().1;
        let rate = (items - last_items) as f64 / dt.max(1e-9);
        // A station's estimate is the mean over its items, each reading's weighing `DECAY`
        // times the next one's: a heavy-tailed service time needs hundreds of items for a
        // mean within 10%, and a change (reads 3× slower) shows within a few readings.
        let dt_ns = dt * 1e9;
        let mut busy = vec![0.0; flat.len()];
        for (i, (a, b)) in snap.iter().zip(&mut base).enumerate() {
            let (s, k) = flat[i];
            let c = shared.segments[s].stations[k].spec.conc().max(1) as f64;
            busy[i] = (a.1 - b.1) as f64 / (dt_ns * c);
            let d = &mut decayed[i];
            d.0 = d.0 * DECAY + (a.0 - b.0) as f64;
            d.1 = d.1 * DECAY + (a.1 - b.1) as f64;
            *b = (a.0, a.1);
        }
        // The first station's finished items, in source items (for a station that sees none).
        let head_done = snap.first().map_or(0.0, |c| (c.0 - first[0].0) as f64)
            * shape.stations.first().map_or(1.0, |s| s.2);
        for i in 0..flat.len() {
            let total = (snap[i].0 - first[i].0, snap[i].1 - first[i].1);
            mean[i] = estimate(decayed[i], total, shape.stations[i].2, head_done);
        }
        let cur = signals_now(&shared);
        let sig = Signals {
            starved: cur
                .0
                .iter()
                .zip(&prev.0)
                .map(|(a, b)| (a - b) as f64 / dt_ns)
                .collect(),
            busy,
            full: cur
                .1
                .iter()
                .zip(&prev.1)
                .map(|(a, b)| (a - b) as f64 / dt_ns)
                .collect(),
        };
        prev = cur;
        let mut st: Vec<StationIn> = flat
            .iter()
            .enumerate()
            .map(|(i, &(s, k))| {
                let sp = &shared.segments[s].stations[k].spec;
                let (name, kind, per_item, user_queue) = &shape.stations[i];
                StationIn {
                    name: name.clone(),
                    kind: *kind,
                    per_item: *per_item,
                    mean_s: mean[i],
                    tail_s: snap[i].2 as f64 / 1e9,
                    conc: sp.conc(),
                    queue: sp.cap(),
                    queue_auto: !user_queue,
                    floor: floors[i],
                }
            })
            .collect();
        let mut segs: Vec<SegIn> = shape
            .segments
            .iter()
            .enumerate()
            .map(|(g, (r, batch, per_item))| SegIn {
                stations: r.clone(),
                batch: *batch,
                window: shared.segments[g].window.load(Relaxed),
                per_item: *per_item,
                floor: wfloors[g],
            })
            .collect();
        let said = feedback(&mut st, &mut segs, &sig, &cfg);
        for (i, x) in st.iter().enumerate() {
            if x.floor > floors[i] {
                floors[i] = x.floor;
                floor_why[i] = said
                    .iter()
                    .find(|w| w.contains(&format!("while {}'s", x.name)))
                    .cloned();
            }
        }
        let mut window_why = vec![None; segs.len()];
        for (g, x) in segs.iter().enumerate() {
            if x.floor > wfloors[g] {
                wfloors[g] = x.floor;
                window_why[g] = said
                    .iter()
                    .find(|w| w.contains(&format!("segment {g}'s window")))
                    .cloned();
            }
        }
        if !said.is_empty() {
            // for the next run (epoch) of this pipeline
            let mut f = lock(&shared.floors);
            f.stations.clone_from(&floors);
            f.windows.clone_from(&wfloors);
        }
        let mut plan = model(shape.workers, &st, &segs, &cfg);
        // The head-of-line rule sizes the consumer's segment from the consumer's side.
        let mut hol_why = None;
        if let Some(g) = hol_seg {
            let accs: Vec<StationAcc> = segs[g]
                .stations
                .clone()
                .map(|i| shared.station_acc(flat[i].0, flat[i].1))
                .collect();
            let others: usize = (0..segs.len())
                .filter(|&x| x != g)
                .map(|x| segs[x].window.max(may_hold[x]))
                .fold(0, usize::saturating_add);
            let since = consumer
                .since()
                .map_or(0.0, |t| now.duration_since(t).as_secs_f64());
            let per_item = segs[g].per_item.max(1e-9);
            let reading = HolReading {
                stations: segs[g]
                    .stations
                    .clone()
                    .zip(&accs)
                    .map(|(i, a)| {
                        let c = match st[i].kind {
                            Kind::Cpu => st[i].conc.min(shape.workers.max(1)),
                            Kind::Blocking => st[i].conc,
                        };
                        (&a.service, c)
                    })
                    .collect(),
                quantum: segs[g].batch.max(1),
                ordered: shared.ordered,
                window: segs[g].window,
                most: cfg
                    .max_items
                    .map_or(usize::MAX, |cap| cap.saturating_sub(others)),
                consumer_per_s: consumer_rate(
                    (items as f64 / per_item) as u64,
                    since,
                    Duration::from_nanos(consumer.in_next_ns()),
                ),
                stall_full_ns: consumer.stall_full_ns(),
                dt,
            };
            let (decided, target) = hol.decide(&reading, &cfg);
            plan.window[g] = segs[g].window;
            if let Some((w, why)) = decided {
                plan.window[g] = w;
                hol_why = Some(why);
            }
            if target.is_some() {
                plan.target = target.map(|t| t * per_item);
            }
        }
        let at_s = now.duration_since(shared.started).as_secs_f64();
        let mut changes = Vec::new();
        for (i, &(s, k)) in flat.iter().enumerate() {
            let sp = &shared.segments[s].stations[k].spec;
            let (cur, mut new) = (st[i].conc, plan.conc[i]);
            if st[i].kind != Kind::Blocking || sp.fixed || !moves(cur, new, cfg.hysteresis) {
                continue;
            }
            if !may_raise(cur, new, floors[i], sig.busy[i]) {
                continue;
            }
            let mut why = plan.why[i].clone();
            if new == floors[i] {
                if let Some(w) = &floor_why[i] {
                    why = format!("feedback: {w}");
                }
            }
            while spawned[i] < new {
                match spawn(s, k, spawned[i]) {
                    Ok(h) => {
                        handles.push(h);
                        spawned[i] += 1;
                    }
                    Err(e) => {
                        why = format!("{why}; could not start more threads: {e}");
                        new = spawned[i];
                        break;
                    }
                }
            }
            if new == cur {
                continue;
            }
            let q = plan.queue[i];
            if st[i].queue_auto && q != st[i].queue {
                sp.queue.store(q, Relaxed);
                changes.push(change(
                    at_s,
                    format!("{}.queue", st[i].name),
                    st[i].queue,
                    q,
                    "follows the threads (2 per thread)".into(),
                ));
            }
            sp.concurrency.store(new, Relaxed);
            changes.push(change(
                at_s,
                format!("{}.threads", st[i].name),
                cur,
                new,
                why,
            ));
        }
        // A segment whose window was not full over the reading holds less than its window.
        for (g, seg) in segs.iter().enumerate() {
            if sig.full.get(g).copied().unwrap_or(0.0) == 0.0 {
                may_hold[g] = seg.window;
            }
        }
        let cur: Vec<usize> = segs.iter().map(|g| g.window).collect();
        let windows = cap_windows(
            &cur,
            &plan.window,
            &mut may_hold,
            cfg.max_items,
            cfg.hysteresis,
        );
        for (g, seg) in segs.iter().enumerate() {
            let (cur, new) = (seg.window, windows[g]);
            if new != cur {
                shared.segments[g].window.store(new, Relaxed);
                changes.push(change(
                    at_s,
                    format!("segment {g}.window"),
                    cur,
                    new,
                    match (&window_why[g], new == wfloors[g]) {
                        _ if hol_seg == Some(g) => hol_why.clone().unwrap_or_default(),
                        (Some(w), true) => format!("feedback: {w}"),
                        _ => "twice its stations' slots and queues, and twice the items in flight at the target over its mean time plus p99.9".into(),
                    },
                ));
            }
        }
        let changed = !changes.is_empty();
        // The settings in force over the reading (this reading's changes apply from now).
        let point = TunePoint {
            at_s,
            items_per_s: rate,
            target_per_s: plan.target,
            concurrency: st.iter().map(|x| x.conc).collect(),
            window: segs.iter().fold(0usize, |a, g| a.saturating_add(g.window)),
        };
        {
            let mut t = lock(&shared.tuning);
            t.push(point, &mut stride, &mut seen);
            t.changes.extend(changes);
        }
        if changed {
            for (s, seg) in shared.segments.iter().enumerate() {
                for k in 0..seg.stations.len() {
                    shared.pump(s, k);
                }
                shared.kick_feed(s);
            }
            // Settle: two readings, or the time to turn the windows over at the rate seen.
            let windows = shared
                .segments
                .iter()
                .fold(0usize, |a, g| a.saturating_add(g.window.load(Relaxed)));
            let turn = if rate > 0.0 {
                Duration::from_secs_f64((windows as f64 / rate).min(1.0))
            } else {
                Duration::ZERO
            };
            let settle = cfg
                .interval
                .saturating_mul(2)
                .max(turn)
                .min(cfg.interval.saturating_mul(10));
            settle_until = super::later(Instant::now(), settle);
        }
        last_t = Instant::now();
        last_items = shared.delivered().1;
    }
    handles
}

pub(crate) fn change(at_s: f64, knob: String, from: usize, to: usize, why: String) -> TuneChange {
    TuneChange {
        at_s,
        knob,
        from,
        to,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn station(name: &str, kind: Kind, mean_ms: Option<f64>, conc: usize) -> StationIn {
        StationIn {
            name: name.into(),
            kind,
            per_item: 1.0,
            mean_s: mean_ms.map(|m| m / 1e3),
            tail_s: mean_ms.unwrap_or(0.0) / 1e3,
            conc,
            queue: default_queue(conc),
            queue_auto: true,
            floor: 0,
        }
    }

    fn one_segment(n: usize) -> Vec<SegIn> {
        vec![SegIn {
            stations: 0..n,
            batch: 0,
            window: 16,
            per_item: 1.0,
            floor: 0,
        }]
    }

    #[test]
    fn a_starved_cpu_stage_raises_the_busy_reads_and_a_full_window() {
        let cfg = Autotune::new();
        let mut st = vec![
            station("read", Kind::Blocking, Some(0.3), 2),
            station("decode", Kind::Cpu, Some(0.5), 2),
        ];
        let mut segs = one_segment(2);
        let calm = Signals {
            starved: vec![0.0, 0.01],
            busy: vec![0.9, 0.0],
            full: vec![0.5],
        };
        assert!(feedback(&mut st, &mut segs, &calm, &cfg).is_empty());
        let hungry = Signals {
            starved: vec![0.0, 0.2],
            busy: vec![0.9, 0.0],
            full: vec![0.5],
        };
        let why = feedback(&mut st, &mut segs, &hungry, &cfg);
        assert_eq!(why.len(), 2, "{why:?}");
        assert_eq!((st[0].floor, segs[0].floor), (3, 24));
        let plan = model(2, &st, &segs, &cfg);
        // Little alone asks for max(1.25 × 0.6, 0.6 + 1) → 2 threads; the floor holds 3.
        assert_eq!(plan.conc[0], 3);
        assert!(plan.window[0] >= 24);
        // Idle reads are not the cause: no floor.
        let mut st2 = vec![
            station("read", Kind::Blocking, Some(0.3), 2),
            station("decode", Kind::Cpu, Some(0.5), 2),
        ];
        let idle = Signals {
            starved: vec![0.0, 0.2],
            busy: vec![0.3, 0.0],
            full: vec![0.0],
        };
        assert!(feedback(&mut st2, &mut one_segment(2), &idle, &cfg).is_empty());
        assert_eq!(st2[0].floor, 0);
    }

    #[test]
    fn threads_follow_littles_law_against_the_cpu_limit() {
        // read 2 ms, decode 0.25 ms on 2 workers: 8,000 items/s; 16 reads busy, +25% = 20.
        let st = [
            station("read", Kind::Blocking, Some(2.0), 4),
            station("decode", Kind::Cpu, Some(0.25), 2),
        ];
        let plan = model(2, &st, &one_segment(2), &Autotune::new());
        assert_eq!(plan.target.map(|x| x.round()), Some(8000.0));
        assert_eq!(plan.conc, vec![20, 2]);
        assert_eq!(plan.queue, vec![40, 4]);
        // 2 × (20 + 40 + 2 + 4) = 132 beats Little's 2 × 8000 × (2.25 + 2) ms = 68.
        assert_eq!(plan.window, vec![132]);
        assert!(plan.why[0].contains("16.0 threads busy"), "{}", plan.why[0]);
    }

    #[test]
    fn a_slower_read_gets_proportionally_more_threads() {
        let cfg = Autotune::new();
        let fast = [
            station("read", Kind::Blocking, Some(1.0), 4),
            station("decode", Kind::Cpu, Some(0.2), 2),
        ];
        let slow = [
            station("read", Kind::Blocking, Some(3.0), 4),
            station("decode", Kind::Cpu, Some(0.2), 2),
        ];
        let a = model(2, &fast, &one_segment(2), &cfg).conc[0];
        let b = model(2, &slow, &one_segment(2), &cfg).conc[0];
        assert_eq!((a, b), (13, 38)); // ceil(10,000 × 1 ms × 1.25), ceil(10,000 × 3 ms × 1.25)
    }

    #[test]
    fn nothing_changes_before_every_stage_is_measured() {
        let st = [
            station("read", Kind::Blocking, Some(2.0), 4),
            station("decode", Kind::Cpu, None, 2),
        ];
        let plan = model(2, &st, &one_segment(2), &Autotune::new());
        assert_eq!(plan.target, None);
        assert_eq!(plan.conc, vec![4, 2]);
    }

    #[test]
    fn the_memory_cap_scales_windows_and_threads_down() {
        let st = [
            station("read", Kind::Blocking, Some(10.0), 4),
            station("decode", Kind::Cpu, Some(0.1), 2),
        ];
        let uncapped = model(2, &st, &one_segment(2), &Autotune::new());
        assert!(uncapped.window[0] > 100);
        let plan = model(2, &st, &one_segment(2), &Autotune::new().max_items(100));
        assert_eq!(plan.window, vec![100]);
        let held = plan.conc[0] + plan.queue[0] + plan.conc[1] + plan.queue[1];
        assert!(
            2 * held <= 100 + 4,
            "slots and queues {held} of a window of 100"
        );
        assert!(plan.why[0].contains("memory cap"));
        assert!(plan.conc[0] < uncapped.conc[0]);
    }

    #[test]
    fn the_thread_cap_holds() {
        let st = [
            station("read", Kind::Blocking, Some(50.0), 4),
            station("decode", Kind::Cpu, Some(0.01), 2),
        ];
        let plan = model(2, &st, &one_segment(2), &Autotune::new().max_threads(64));
        assert_eq!(plan.conc[0], 64);
    }

    #[test]
    fn a_station_after_a_batch_is_measured_from_few_items() {
        // A collate after `batch(32)`: three batches in the decayed sums cover 96 source items.
        assert_eq!(estimate((3.0, 3e5), (3, 300_000), 32.0, 96.0), Some(1e-4));
        // Before a batch: 3 items are not enough ...
        assert_eq!(estimate((3.0, 3e5), (3, 300_000), 1.0, 3.0), None);
        // ... while the totals since the first reading may be, once the decay forgot them.
        assert_eq!(estimate((2.0, 2e5), (20, 2_000_000), 1.0, 20.0), Some(1e-4));
        // A station that has seen nothing waits, unless the first has done a great deal.
        assert_eq!(estimate((0.0, 0.0), (0, 0), 1.0, 100.0), None);
        assert_eq!(
            estimate((0.0, 0.0), (0, 0), 1.0, QUIET_AFTER as f64),
            Some(0.0)
        );
    }

    #[test]
    fn feedback_raises_a_blocking_stage_before_every_stage_is_measured() {
        let mut st = vec![
            station("read", Kind::Blocking, Some(2.0), 1),
            station("decode", Kind::Cpu, Some(0.25), 2),
            station("collate", Kind::Cpu, None, 2),
        ];
        st[0].floor = 2;
        let plan = model(2, &st, &one_segment(3), &Autotune::new());
        assert_eq!(plan.target, None);
        assert_eq!(plan.conc, vec![2, 2, 2]);
        assert!(plan.why[0].contains("feedback"), "{}", plan.why[0]);
    }

    #[test]
    fn under_a_cap_a_window_grows_only_into_room_nobody_may_hold() {
        // Segment 1 shrinks 200 -> 50 but may still hold 200: segment 0 cannot grow yet.
        let mut hold = vec![100, 200];
        let w = cap_windows(&[100, 200], &[300, 50], &mut hold, Some(300), 0.2);
        assert_eq!(w, vec![100, 50]);
        // Once segment 1 was seen below its window, the room is free.
        hold[1] = 50;
        let w = cap_windows(&[100, 50], &[300, 50], &mut hold, Some(300), 0.2);
        assert_eq!(w, vec![250, 50]);
        assert_eq!(hold, vec![250, 50]);
        // Without a cap both move at once.
        let mut hold = vec![100, 200];
        assert_eq!(
            cap_windows(&[100, 200], &[300, 50], &mut hold, None, 0.2),
            vec![300, 50]
        );
    }

    #[test]
    fn a_stage_that_is_not_busy_is_not_raised_by_the_model() {
        // The ramp from one busy thread, and feedback's floor, raise; a stage whose threads
        // wait for room downstream (busy 40%) does not, however many Little's law asks for.
        assert!(may_raise(1, 20, 0, 0.95));
        assert!(may_raise(2, 3, 3, 0.1));
        assert!(!may_raise(69, 83, 0, 0.4));
        assert!(may_raise(69, 83, 0, GROW_BUSY));
        assert!(!may_raise(69, 83, 70, 0.4));
        // moves down are the hysteresis's business
        assert!(may_raise(69, 30, 0, 0.1));
    }

    fn hol<'a>(times: &'a [(f64, u64)], ordered: bool, consumer: Option<f64>) -> HolIn<'a> {
        HolIn {
            times,
            in_service: 8,
            quantum: 8,
            ordered,
            consumer_per_s: consumer,
        }
    }

    #[test]
    fn head_of_line_equal_times_need_little_more_than_the_workers() {
        // 8 workers, 1 ms each, in order: c = 1 ms, window = 8000/s · 1 ms + 8 = 16 items,
        // · 1.25 = 20 → 3 batches of 8, plus one: 32 items
        let (w, target, _) = head_of_line(&hol(&[(0.001, 100)], true, None), 0.25).unwrap();
        assert_eq!(w, 32);
        assert!((target - 8000.0).abs() < 1e-6);
    }

    #[test]
    fn head_of_line_a_heavy_tail_in_order_wants_a_deeper_window_than_as_ready() {
        let t = [(0.001, 990), (0.1, 10)]; // 1% take 100 ms
        let (ordered, _, _) = head_of_line(&hol(&t, true, None), 0.25).unwrap();
        let (ready, _, _) = head_of_line(&hol(&t, false, None), 0.25).unwrap();
        assert_eq!(ready, 32); // 2 · 8 · 1.25 = 20 → 3 + 1 batches
        assert!(ordered > 10 * ready, "{ordered} vs {ready}");
        // A slow consumer needs a smaller window.
        let (slow, target, _) = head_of_line(&hol(&t, true, Some(100.0)), 0.25).unwrap();
        assert_eq!(target, 100.0);
        assert!(slow < ordered, "{slow} vs {ordered}");
        // No decision before 16 times.
        assert!(head_of_line(&hol(&[(0.001, 15)], true, None), 0.25).is_none());
    }

    #[test]
    fn head_wait_over_counts_is_head_wait_over_the_times() {
        let mut t = vec![0.001; 99];
        t.push(0.1);
        for rate in [10.0, 100.0, 1000.0] {
            assert_eq!(
                head_wait_counts(&[(0.001, 99), (0.1, 1)], rate, 0.02),
                crate::report::head_wait(&t, rate, 0.02)
            );
        }
    }

    /// A histogram of `n` times of `ns` each.
    fn times(n: u64, ns: u64) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000_000, 2).unwrap();
        h.record_n(ns, n).unwrap();
        h
    }

    fn reading(h: &Histogram<u64>, window: usize, stall_full_ns: u64) -> HolReading<'_> {
        HolReading {
            stations: vec![(h, 8)],
            quantum: 8,
            ordered: true,
            window,
            most: usize::MAX,
            consumer_per_s: None,
            stall_full_ns,
            dt: 0.02,
        }
    }

    #[test]
    fn head_of_line_rises_at_once_and_falls_only_after_five_readings_in_a_row() {
        let cfg = Autotune::new();
        let h = times(200, 1_000_000);
        let mut up = Hol::new(1);
        let (d, target) = up.decide(&reading(&h, 8, 0), &cfg);
        assert_eq!(d.map(|d| d.0), Some(32), "the model's 4 batches at once");
        assert!(target.is_some());
        let mut down = Hol::new(1);
        for r in 1..DOWN_READINGS {
            assert!(
                down.decide(&reading(&h, 160, 0), &cfg).0.is_none(),
                "reading {r}"
            );
        }
        assert_eq!(
            down.decide(&reading(&h, 160, 0), &cfg).0.map(|d| d.0),
            Some(32)
        );
        // Within the hysteresis nothing moves.
        assert!(Hol::new(1).decide(&reading(&h, 30, 0), &cfg).0.is_none());
    }

    #[test]
    fn head_of_line_feedback_and_the_cap() {
        let cfg = Autotune::new();
        // Too few times for the model: the consumer's full-window waits alone raise it by half
        // (in whole batches: 4 → 6 batches), and the floor holds at the next reading.
        let few = times(4, 1_000_000);
        let mut h = Hol::new(1);
        let (d, _) = h.decide(&reading(&few, 32, 10_000_000), &cfg);
        let (w, why) = d.expect("feedback raises");
        assert_eq!(w, 48);
        assert!(why.starts_with("feedback:"), "{why}");
        // The memory cap, in whole batches.
        let tail = {
            let mut t = times(990, 1_000_000);
            t.record_n(100_000_000, 10).unwrap();
            t
        };
        let mut r = reading(&tail, 8, 0);
        r.most = 60;
        let (w, why) = Hol::new(1).decide(&r, &cfg).0.unwrap();
        assert_eq!(w, 56);
        assert!(why.contains("capped by max_items"), "{why}");
    }

    #[test]
    fn hysteresis_is_wider_down_than_up() {
        assert!(!moves(20, 23, 0.2));
        assert!(moves(20, 24, 0.2));
        assert!(!moves(20, 13, 0.2));
        assert!(moves(20, 12, 0.2));
        assert!(moves(1, 2, 0.2));
        assert!(moves(2, 1, 0.2));
        assert!(!moves(5, 5, 0.2));
    }

    #[test]
    fn the_trajectory_is_thinned_not_cut() {
        let mut t = Tuning::default();
        let (mut stride, mut seen) = (1, 0);
        for i in 0..10_000 {
            let p = TunePoint {
                at_s: i as f64,
                items_per_s: 0.0,
                target_per_s: None,
                concurrency: vec![],
                window: 0,
            };
            t.push(p, &mut stride, &mut seen);
        }
        assert!(t.trajectory.len() < MAX_POINTS);
        assert!(t.trajectory.last().unwrap().at_s > 9_000.0);
        assert!(t.trajectory.windows(2).all(|w| w[0].at_s < w[1].at_s));
    }
}
