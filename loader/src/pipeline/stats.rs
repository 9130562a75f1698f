//! Per-stage statistics, the pipeline report, and how it names the bottleneck.

use std::fmt;
#[cfg(not(unix))]
use std::time::Instant;

use hdrhistogram::Histogram;

use super::tune::Tuning;
use crate::report::WorkerLoad;
use serde::Serialize;

/// The monotonic clock, in nanoseconds: the time the engine's statistics are kept in (one
/// integer per reading, so charging a state's time is a subtraction, not a `Duration`).
#[cfg(unix)]
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC needs nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0, "CLOCK_MONOTONIC is always there");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The monotonic clock, in nanoseconds since the first reading.
#[cfg(not(unix))]
pub(crate) fn now_ns() -> u64 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// What a station measures, under its lock, at every change of its state.
#[derive(Clone)]
pub(crate) struct StationAcc {
    /// When the state below began ([`now_ns`]).
    last: u64,
    pub items_in: u64,
    pub items_out: u64,
    pub failures: u64,
    pub service: Histogram<u64>,
    pub service_ns: u128,
    /// Thread CPU time of the items measured with it (cpu stations under the autotuner).
    pub cpu_ns: u128,
    pub cpu_items: u64,
    /// Per CPU worker (a cpu station's items only): service nanoseconds and items.
    pub workers: Vec<(u128, u64)>,
    /// ∫ (items queued, incoming included) dt, in item·ns.
    queue_area: f64,
    /// ∫ (items handed to runners) dt.
    running_area: f64,
    /// Time with a free slot and nothing to hand out.
    pub starved_ns: u64,
    /// Time with work and a free slot but no room downstream.
    blocked_ns: u64,
    /// Time with the input queue full.
    full_ns: u64,
    /// Time with the input queue empty.
    empty_ns: u64,
    pub blocked: bool,
    /// Thread-time blocking threads waited for room downstream.
    pub thread_blocked_ns: u128,
    // the state since `last`
    queued: usize,
    unassigned: usize,
    running: usize,
    concurrency: usize,
    cap: usize,
}

impl StationAcc {
    pub fn new() -> Self {
        StationAcc {
            last: now_ns(),
            items_in: 0,
            items_out: 0,
            failures: 0,
            service: Histogram::new_with_bounds(1, 3_600_000_000_000, 2).expect("valid bounds"),
            service_ns: 0,
            cpu_ns: 0,
            cpu_items: 0,
            workers: Vec::new(),
            queue_area: 0.0,
            running_area: 0.0,
            starved_ns: 0,
            blocked_ns: 0,
            full_ns: 0,
            empty_ns: 0,
            blocked: false,
            thread_blocked_ns: 0,
            queued: 0,
            unassigned: 0,
            running: 0,
            concurrency: 1,
            cap: 1,
        }
    }

    /// Charge the time since the last change to the state then, and record the state now.
    ///
    /// `now` may be a time the caller read a moment ago (a finished item's end) rather than a
    /// fresh clock read: one a little older than the last one charged counts as no time.
    pub fn advance(
        &mut self,
        now: u64,
        queued: usize,
        unassigned: usize,
        running: usize,
        concurrency: usize,
        cap: usize,
    ) {
        let dt = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        let dtf = dt as f64;
        self.queue_area += self.queued as f64 * dtf;
        self.running_area += self.running as f64 * dtf;
        let free = self.running < self.concurrency;
        if free && self.unassigned == 0 {
            self.starved_ns += dt;
        }
        if free && self.unassigned > 0 && self.blocked {
            self.blocked_ns += dt;
        }
        if self.queued >= self.cap {
            self.full_ns += dt;
        }
        if self.queued == 0 {
            self.empty_ns += dt;
        }
        self.queued = queued;
        self.unassigned = unassigned;
        self.running = running;
        self.concurrency = concurrency;
        self.cap = cap;
    }

    /// CPU worker `w` served one item in `ns`.
    pub fn worker(&mut self, w: usize, ns: u64) {
        if self.workers.len() <= w {
            self.workers.resize(w + 1, (0, 0));
        }
        let slot = &mut self.workers[w];
        slot.0 += u128::from(ns);
        slot.1 += 1;
    }

    /// One item finished in `ns`.
    pub fn done(&mut self, ns: u64, failed: bool, passed_on: bool) {
        let _ = self.service.record(ns.max(1));
        self.service_ns += u128::from(ns);
        self.failures += u64::from(failed);
        self.items_out += u64::from(passed_on);
    }
}

/// Where a stage runs, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    /// On the pipeline's pool of CPU workers.
    Cpu,
    /// On threads of its own.
    Blocking,
}

/// One stage's statistics over a run (or the part of it so far).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageStats {
    /// The stage's name.
    pub name: String,
    /// `cpu` or `blocking`.
    pub kind: StageKind,
    /// Most items in service at once (threads, for a blocking stage).
    pub concurrency: usize,
    /// Capacity of the stage's input queue.
    pub queue: usize,
    /// Items that entered its input queue.
    pub items_in: u64,
    /// Items it passed on (filtered and failed items are not passed on).
    pub items_out: u64,
    /// Items whose function failed or panicked.
    pub failures: u64,
    /// Service time (inside the stage function), in microseconds.
    pub service_us: ServiceTimes,
    /// Share of its capacity in use: service time / (elapsed × concurrency), or, for a `cpu`
    /// stage, / (elapsed × min(concurrency, CPU workers)).
    pub busy: f64,
    /// Share of all CPU workers' time this stage used (`cpu` stages; 0 for blocking ones).
    pub cpu_share: f64,
    /// Mean items in its input queue.
    pub queue_mean: f64,
    /// Share of the time its input queue was full.
    pub queue_full: f64,
    /// Share of the time its input queue was empty.
    pub queue_empty: f64,
    /// Share of the time it had a free slot and nothing to do (waiting for input).
    pub starved: f64,
    /// Share of the time it was held up by a full queue downstream: for a `cpu` stage, the
    /// time it had work and a free slot but no room downstream; for a blocking stage, the
    /// share of its threads' time spent waiting for room with a finished item.
    pub back_pressured: f64,
    /// Items per second it could serve alone: effective concurrency / mean service time.
    pub capacity_per_s: f64,
}

/// Service-time quantiles, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServiceTimes {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// A pipeline run's statistics: per stage, overall, and the bottleneck with what would help.
///
/// `Display` prints a table and the verdict; `serde` gives the same as JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PipelineReport {
    /// The epoch.
    pub epoch: u64,
    /// CPU workers of the pool.
    pub cpu_workers: usize,
    /// Seconds from the start of the epoch to now (or its end).
    pub elapsed_s: f64,
    /// Items handed to the consumer (batches, after a `batch`).
    pub items: u64,
    /// Source items in them (each batch counts its members).
    pub source_items: u64,
    /// Source items per second handed to the consumer (in the items handed out).
    pub items_per_s: f64,
    /// `items_per_s / limit_per_s`.
    pub fraction_of_limit: f64,
    /// Milliseconds from the start to the first item handed out.
    pub first_item_ms: Option<f64>,
    /// Failed items (yielded as errors, or skipped).
    pub failures: u64,
    /// Per stage, in pipeline order.
    pub stages: Vec<StageStats>,
    /// Source items per second the slowest stage allows (measured service times): the
    /// minimum over stages of their capacity, where `cpu` stages also share the CPU workers.
    pub limit_per_s: f64,
    /// The stage that limits the pipeline, by measurement (`None` before any item finished).
    pub bottleneck: Option<Bottleneck>,
    /// What the autotuner did: every change and its readings (`None` without autotune).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tuning: Option<Tuning>,
    /// Per CPU worker, its time in `cpu` stage calls and the items it served (`busy_s`,
    /// `samples`), all `cpu` stages together; empty without a `cpu` stage.
    pub workers: Vec<WorkerLoad>,
    /// Load imbalance of the CPU workers: `max busy / mean busy` (1.0 is perfect; `None`
    /// before any `cpu` item finished).
    pub lif: Option<f64>,
    /// Successful steals by the `cpu` stages' strategies (those that steal), counted when an
    /// epoch ends whole (0 before, and for an epoch ended early).
    pub steals: u64,
    /// Seconds the consumer spent inside `next()` waiting for items.
    pub consumer_wait_s: f64,
    /// Mean items held (admitted into a window and not yet handed out, over all segments and
    /// a prefetched next epoch's run) when the consumer asked for the next item.
    pub occupancy_mean: f64,
    /// Most items held when the consumer asked for the next item.
    pub occupancy_max: usize,
}

/// The limiting stage, why, and what one more unit there would give.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bottleneck {
    /// The stage's name.
    pub stage: String,
    /// Why: the evidence in one line.
    pub why: String,
    /// Predicted source items per second with one more unit of concurrency (a thread for a
    /// blocking stage, a CPU worker for a `cpu` stage), from its measured service time,
    /// capped by the next limit.
    pub one_more_per_s: f64,
    /// What the unit is: `thread` or `CPU worker`.
    pub unit: String,
}

/// The setting of one stage, for the report.
pub(crate) struct StageSetting {
    pub name: String,
    pub kind: StageKind,
    pub concurrency: usize,
    pub queue: usize,
    /// Source items per item of this stage (1 before any batch; the batch size after one).
    pub per_item: f64,
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1e3
}

impl PipelineReport {
    /// Build the report from each station's accumulator.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        epoch: u64,
        cpu_workers: usize,
        elapsed_s: f64,
        items: u64,
        source_items: u64,
        first_item_ms: Option<f64>,
        failures: u64,
        settings: &[StageSetting],
        accs: &[StationAcc],
    ) -> PipelineReport {
        let wall_ns = (elapsed_s * 1e9).max(1.0);
        let p = cpu_workers.max(1) as f64;
        let mut stages = Vec::with_capacity(settings.len());
        for (set, acc) in settings.iter().zip(accs) {
            let n = acc.service.len();
            let mean_ns = if n > 0 {
                acc.service_ns as f64 / n as f64
            } else {
                0.0
            };
            let eff = match set.kind {
                StageKind::Cpu => (set.concurrency as f64).min(p),
                StageKind::Blocking => set.concurrency as f64,
            };
            let busy = acc.service_ns as f64 / (wall_ns * eff);
            let cpu_share = match set.kind {
                StageKind::Cpu => acc.service_ns as f64 / (wall_ns * p),
                StageKind::Blocking => 0.0,
            };
            let capacity = if mean_ns > 0.0 {
                eff * 1e9 / mean_ns * set.per_item
            } else {
                f64::INFINITY
            };
            let share = |x: u64| x as f64 / wall_ns;
            stages.push(StageStats {
                name: set.name.clone(),
                kind: set.kind,
                concurrency: set.concurrency,
                queue: set.queue,
                items_in: acc.items_in,
                items_out: acc.items_out,
                failures: acc.failures,
                service_us: ServiceTimes {
                    mean: mean_ns / 1e3,
                    p50: if n > 0 { us(&acc.service, 0.5) } else { 0.0 },
                    p99: if n > 0 { us(&acc.service, 0.99) } else { 0.0 },
                },
                busy,
                cpu_share,
                queue_mean: acc.queue_area / wall_ns,
                queue_full: share(acc.full_ns),
                queue_empty: share(acc.empty_ns),
                starved: share(acc.starved_ns),
                back_pressured: match set.kind {
                    StageKind::Cpu => share(acc.blocked_ns),
                    StageKind::Blocking => {
                        acc.thread_blocked_ns as f64 / (wall_ns * set.concurrency as f64)
                    }
                },
                capacity_per_s: capacity,
            });
        }
        let (limit, bottleneck) = bottleneck(&stages, settings, p);
        let mut busy: Vec<(u128, u64)> = vec![(0, 0); cpu_workers];
        for (set, acc) in settings.iter().zip(accs) {
            if set.kind != StageKind::Cpu {
                continue;
            }
            for (w, &(ns, n)) in acc.workers.iter().enumerate() {
                if let Some(b) = busy.get_mut(w) {
                    b.0 += ns;
                    b.1 += n;
                }
            }
        }
        let total: u128 = busy.iter().map(|b| b.0).sum();
        let lif = (total > 0).then(|| {
            let max = busy.iter().map(|b| b.0).max().unwrap_or(0) as f64;
            max / (total as f64 / busy.len() as f64)
        });
        let workers = busy
            .into_iter()
            .map(|(ns, n)| WorkerLoad {
                busy_s: ns as f64 / 1e9,
                samples: n,
            })
            .collect();
        PipelineReport {
            epoch,
            cpu_workers,
            elapsed_s,
            items,
            source_items,
            items_per_s: source_items as f64 / elapsed_s.max(1e-9),
            fraction_of_limit: source_items as f64 / elapsed_s.max(1e-9) / limit,
            first_item_ms,
            failures,
            stages,
            limit_per_s: limit,
            bottleneck,
            tuning: None,
            workers,
            lif,
            steals: 0,
            consumer_wait_s: 0.0,
            occupancy_mean: 0.0,
            occupancy_max: 0,
        }
    }
}

/// The pipeline's limit in source items/s and the stage that sets it.
///
/// Each stage alone serves `capacity` source items/s. The `cpu` stages also share the P CPU
/// workers: together they need `Σ mean_k / per_item_k` CPU-seconds per source item, so they
/// serve at most `P / Σ …`. The limit is the least of these; the bottleneck is the stage that
/// sets it (for the shared-CPU bound, the `cpu` stage with the most CPU time per item).
fn bottleneck(
    stages: &[StageStats],
    settings: &[StageSetting],
    p: f64,
) -> (f64, Option<Bottleneck>) {
    let measured: Vec<usize> = (0..stages.len())
        .filter(|&i| stages[i].service_us.mean > 0.0)
        .collect();
    if measured.is_empty() {
        return (f64::INFINITY, None);
    }
    // CPU seconds per source item, over all cpu stages.
    let cpu_per_item: f64 = measured
        .iter()
        .filter(|&&i| stages[i].kind == StageKind::Cpu)
        .map(|&i| stages[i].service_us.mean / 1e6 / settings[i].per_item)
        .sum();
    let shared_cpu = if cpu_per_item > 0.0 {
        p / cpu_per_item
    } else {
        f64::INFINITY
    };
    let (mut at, mut limit) = (measured[0], f64::INFINITY);
    for &i in &measured {
        if stages[i].capacity_per_s < limit {
            (at, limit) = (i, stages[i].capacity_per_s);
        }
    }
    let cpu_bound = shared_cpu < limit;
    if cpu_bound {
        limit = shared_cpu;
        at = measured
            .iter()
            .copied()
            .filter(|&i| stages[i].kind == StageKind::Cpu)
            .max_by(|&a, &b| {
                let ta = stages[a].service_us.mean / settings[a].per_item;
                let tb = stages[b].service_us.mean / settings[b].per_item;
                ta.total_cmp(&tb)
            })
            .unwrap_or(at);
    }
    let s = &stages[at];
    // The next limit: every other stage's capacity.
    let others = measured
        .iter()
        .filter(|&&i| i != at)
        .map(|&i| stages[i].capacity_per_s)
        .fold(f64::INFINITY, f64::min);
    // One more unit at the bottleneck: a thread for a blocking stage (the CPU workers stay
    // as they are), a CPU worker for a cpu stage (its concurrency grows with it when it was
    // using all of them). Capped by every other stage's capacity.
    let (one_more, unit) = match s.kind {
        StageKind::Blocking => {
            let c = s.concurrency as f64;
            let own = s.capacity_per_s * (c + 1.0) / c;
            (own.min(shared_cpu), "thread")
        }
        StageKind::Cpu => {
            let c = s.concurrency as f64;
            let c_new = if c >= p { c + 1.0 } else { c };
            let per_slot = s.capacity_per_s / c.min(p);
            let own = per_slot * c_new.min(p + 1.0);
            let shared = if cpu_per_item > 0.0 {
                (p + 1.0) / cpu_per_item
            } else {
                f64::INFINITY
            };
            (own.min(shared), "CPU worker")
        }
    };
    let one_more = one_more.min(others);
    let all_cpu: f64 = stages.iter().map(|x| x.cpu_share).sum();
    let busy = match s.kind {
        StageKind::Cpu if cpu_bound && all_cpu > s.cpu_share + 0.005 => format!(
            "the cpu stages share the CPU workers, {:.0}% busy, and it takes the most of them ({:.0}%)",
            100.0 * all_cpu,
            100.0 * s.cpu_share
        ),
        StageKind::Cpu => format!("CPU workers {:.0}% busy on it", 100.0 * s.cpu_share),
        StageKind::Blocking => format!("its {} threads {:.0}% busy", s.concurrency, 100.0 * s.busy),
    };
    let down = at + 1;
    let out = if down < stages.len() {
        format!(
            "its output queue empty {:.0}% of the time",
            100.0 * stages[down].queue_empty
        )
    } else {
        "it feeds the consumer".to_string()
    };
    let why = format!(
        "{busy}; its input queue full {:.0}% of the time, {out}; capacity {:.0} items/s",
        100.0 * s.queue_full,
        limit
    );
    (
        limit,
        Some(Bottleneck {
            stage: s.name.clone(),
            why,
            one_more_per_s: one_more,
            unit: unit.to_string(),
        }),
    )
}

impl fmt::Display for PipelineReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "epoch {}: {} items ({} source items) in {:.3} s = {:.0} source items/s, {:.2} of the limit {:.0}/s; first item {}; {} failed",
            self.epoch,
            self.items,
            self.source_items,
            self.elapsed_s,
            self.items_per_s,
            self.fraction_of_limit,
            self.limit_per_s,
            self.first_item_ms
                .map_or("-".to_string(), |ms| format!("after {ms:.1} ms")),
            self.failures
        )?;
        writeln!(
            f,
            "  {:<12} {:>8} {:>5} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6} {:>6} {:>7} {:>7}",
            "stage",
            "kind",
            "conc",
            "in",
            "out",
            "mean us",
            "p99 us",
            "busy",
            "queue",
            "full",
            "starved",
            "backpr"
        )?;
        for s in &self.stages {
            writeln!(
                f,
                "  {:<12} {:>8} {:>5} {:>9} {:>9} {:>9.1} {:>9.1} {:>5.0}% {:>6.1} {:>5.0}% {:>6.0}% {:>6.0}%",
                s.name,
                match s.kind {
                    StageKind::Cpu => "cpu",
                    StageKind::Blocking => "blocking",
                },
                s.concurrency,
                s.items_in,
                s.items_out,
                s.service_us.mean,
                s.service_us.p99,
                100.0 * s.busy,
                s.queue_mean,
                100.0 * s.queue_full,
                100.0 * s.starved,
                100.0 * s.back_pressured
            )?;
        }
        match &self.bottleneck {
            Some(b) => write!(
                f,
                "  bottleneck: {}: {}; one more {} there: ~{:.0} items/s",
                b.stage, b.why, b.unit, b.one_more_per_s
            ),
            None => write!(f, "  bottleneck: not known yet (no item finished)"),
        }?;
        match &self.tuning {
            Some(t) => write!(f, "\n{t}"),
            None => Ok(()),
        }
    }
}

/// Sparkline glyphs, lowest to highest.
const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// `values` as one line of at most `width` glyphs (each the mean of its run of values),
/// scaled from 0 to the largest.
pub(crate) fn sparkline(values: &[f64], width: usize) -> String {
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let cols = values.len().min(width);
    let means: Vec<f64> = (0..cols)
        .map(|c| {
            let (a, b) = (
                c * values.len() / cols,
                ((c + 1) * values.len() / cols).max(c * values.len() / cols + 1),
            );
            values[a..b].iter().sum::<f64>() / (b - a) as f64
        })
        .collect();
    let top = means.iter().copied().fold(0.0, f64::max);
    means
        .iter()
        .map(|&v| {
            if top <= 0.0 || !v.is_finite() {
                SPARKS[0]
            } else {
                SPARKS[((v / top * 7.0).round() as usize).min(7)]
            }
        })
        .collect()
}

impl fmt::Display for Tuning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tr = &self.trajectory;
        write!(
            f,
            "  autotune: {} changes, {} readings",
            self.changes.len(),
            tr.len()
        )?;
        if let (Some(a), Some(b)) = (tr.first(), tr.last()) {
            write!(f, " from {:.3} s to {:.3} s", a.at_s, b.at_s)?;
            let rates: Vec<f64> = tr.iter().map(|p| p.items_per_s).collect();
            let top = rates.iter().copied().fold(0.0, f64::max);
            write!(
                f,
                "\n    {:<14} {} (0 to {top:.0}/s)",
                "items/s",
                sparkline(&rates, 60)
            )?;
            for (i, name) in self.stages.iter().enumerate() {
                let c: Vec<f64> = tr
                    .iter()
                    .map(|p| p.concurrency.get(i).copied().unwrap_or(0) as f64)
                    .collect();
                spark_row(f, &truncate(name, 14), &c, "")?;
            }
            let w: Vec<f64> = tr.iter().map(|p| p.window as f64).collect();
            spark_row(f, "window", &w, " items")?;
        }
        const SHOWN: usize = 12;
        for c in self.changes.iter().take(SHOWN) {
            write!(
                f,
                "\n    {:>8.3} s  {} {} -> {}: {}",
                c.at_s, c.knob, c.from, c.to, c.why
            )?;
        }
        if self.changes.len() > SHOWN {
            write!(f, "\n    … {} more", self.changes.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// One sparkline row of a setting over the readings, drawn only when it changed.
fn spark_row(f: &mut fmt::Formatter<'_>, label: &str, values: &[f64], unit: &str) -> fmt::Result {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
    if hi > lo {
        write!(
            f,
            "\n    {label:<14} {} ({lo:.0} to {hi:.0}{unit})",
            sparkline(values, 60)
        )?;
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
