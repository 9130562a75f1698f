//! The `RunReport` JSON contract and the metric arithmetic shared by both engines.
//!
//! Field names are a public contract (`docs/json-contract.md`): fields may be added, never renamed.
//! Definitions (`docs/theory.md`): `busy_w` is the time worker w spent inside tasks;
//! `lif = max busy / mean busy`; `worker_efficiency = Σ busy / (max busy × P)`;
//! `lower_bound = max(W / Σ speeds, t_max / max speed, max_j (release_j + t_j / max speed))`
//! where W and t_j are speed-normalised task times; `efficiency = lower_bound / makespan`.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::spec::Tasks;
use crate::strategy::{Attempts, Source};
use crate::topology::TopologySource;
use crate::{TaskId, WorkerId};

/// Quantiles of a latency-like quantity, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

/// First bucket edge of [`RunReport::latency_buckets`], in ns.
const BUCKET_FIRST_NS: f64 = 1_000.0;
/// Growth factor between bucket edges of [`RunReport::latency_buckets`].
const BUCKET_GROWTH: f64 = 1.189_207_115_002_721; // 2^(1/4)

/// `[upper_ns, count]` per non-empty log-spaced bucket of `h` (see
/// [`RunReport::latency_buckets`]).
fn compact_buckets(h: &Histogram<u32>) -> Vec<[u64; 2]> {
    let mut out: Vec<[u64; 2]> = Vec::new();
    if h.is_empty() {
        return out;
    }
    let mut edge = BUCKET_FIRST_NS;
    let mut count = 0u64;
    for v in h.iter_recorded() {
        let value = h.highest_equivalent(v.value_iterated_to());
        while value as f64 > edge {
            if count > 0 {
                out.push([edge.ceil() as u64, count]);
                count = 0;
            }
            edge *= BUCKET_GROWTH;
        }
        count += u64::from(v.count_at_value());
    }
    if count > 0 {
        out.push([edge.ceil() as u64, count]);
    }
    out
}

impl Quantiles {
    fn of(h: &Histogram<u32>) -> Self {
        if h.is_empty() {
            return Quantiles::default();
        }
        Quantiles {
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One worker's share of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Worker index.
    pub id: WorkerId,
    /// The cpu it was pinned to (`null` if unpinned or pinning failed).
    pub cpu: Option<usize>,
    /// Its NUMA node.
    pub node: usize,
    /// Its speed factor.
    pub speed: f64,
    /// Time inside tasks.
    pub busy_ns: u64,
    /// `makespan − busy`.
    pub idle_ns: u64,
    /// Tasks run (failed ones included).
    pub tasks: u64,
    /// Successful steals.
    pub steals: u64,
    /// Failed steal attempts (victim empty or race lost).
    pub steal_attempts: u64,
    /// Tasks moved by its steals (≥ `steals`; more with steal-half).
    pub tasks_moved: u64,
    /// Accesses to a shared queue that handed it work (one pick may hold a run of tasks).
    pub shared_pops: u64,
    /// Scheduling time: from the end of one task (or the start) to the start of the next,
    /// parked time excluded.
    pub overhead_ns: u64,
}

/// A task that failed (panicked), and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The task.
    pub task: TaskId,
    /// The worker it ran on.
    pub worker: WorkerId,
    /// The panic message.
    pub message: String,
}

/// One task's execution, for Gantt charts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// The worker.
    pub worker: WorkerId,
    /// The task.
    pub task: TaskId,
    /// Start, ns since the run began.
    pub start_ns: u64,
    /// End, ns since the run began.
    pub end_ns: u64,
    /// The task was the first of a pick stolen from another worker (the moment of a steal;
    /// the other tasks a steal moved run later as local ones). Absent in JSON when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stolen: bool,
}

/// The machine a run was made on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Cpus in the topology used.
    pub cpus: usize,
    /// NUMA nodes in the topology used.
    pub nodes: usize,
    /// Where the topology came from.
    pub topology_source: TopologySource,
}

/// Everything measured in one run. Serialises to the JSON contract of `docs/json-contract.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Canonical strategy spec.
    pub strategy: String,
    /// Workload spec (as given by the caller).
    pub workload: String,
    /// `threads` or `sim`.
    pub engine: String,
    /// Kind of work (`spin`, `compute`, `sleep`, `memory`, or the caller's label).
    pub kind: String,
    /// Worker count P.
    pub workers: usize,
    /// Tasks in the run.
    pub tasks: usize,
    /// Seed.
    pub seed: u64,
    /// Arrival process (`closed`, `poisson(rate=…)`).
    pub arrivals: String,
    /// Pinning mode.
    pub pin: String,
    /// Tasks that ran to completion.
    pub executed: u64,
    /// Tasks that panicked.
    pub failed: u64,
    /// First release to last completion.
    pub makespan_ns: u64,
    /// W: sum of speed-normalised task times.
    pub total_work_ns: u64,
    /// Lower bound on the makespan (see the module docs).
    pub lower_bound_ns: u64,
    /// `lower_bound / makespan` (1.0 for an empty run). Not clamped: on threads, where the
    /// bound comes from nominal costs, a value above 1 means tasks ran faster than nominal
    /// (e.g. a `compute` calibration made under load); in the simulator, only nanosecond
    /// rounding of `cost / speed` can take it above 1.
    pub efficiency: f64,
    /// Load imbalance factor `max busy / mean busy` (1.0 when nothing ran).
    pub lif: f64,
    /// `Σ busy / (max busy × P)`.
    pub worker_efficiency: f64,
    /// Completion − release.
    pub latency_ns: Quantiles,
    /// Start − release.
    pub wait_ns: Quantiles,
    /// Successful steals.
    pub steals: u64,
    /// Failed steal attempts.
    pub steal_attempts: u64,
    /// Tasks moved by steals.
    pub tasks_moved: u64,
    /// Total scheduling time over all workers (see [`WorkerReport::overhead_ns`]).
    pub overhead_ns: u64,
    /// Per worker.
    pub per_worker: Vec<WorkerReport>,
    /// schedlab version.
    pub version: String,
    /// The machine.
    pub host: Host,
    /// True when there were more workers than cpus.
    pub oversubscribed: bool,
    /// `tasks` (per-task timing) or `off` (only counts; busy = time to the last completion).
    pub timing: String,
    /// Failed tasks (at most 100 listed; `failed` has the count).
    pub failures: Vec<Failure>,
    /// Per-task execution spans, if requested (capped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<Span>>,
    /// Remarks about the run (oversubscription, pinning refused, ...).
    pub notes: Vec<String>,
    /// Events the simulator processed (sim engine only; divide by wall time for events/s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    /// Time-averaged number of tasks in the system (released, not yet completed) over the
    /// makespan, integrated over the run's events (sim engine only; Little's law: = λ × mean
    /// latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_in_system: Option<f64>,
    /// The latency histogram in compact form, enough to draw a CDF: `[upper_ns, count]` per
    /// non-empty bucket, buckets growing by a factor of 2^(1/4) from 1 µs (values below 1 µs
    /// share the first bucket), ascending. Empty when nothing was timed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_buckets: Vec<[u64; 2]>,
}

impl RunReport {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a RunReport always serialises")
    }
}

/// At most this many failures are listed in a report.
pub const MAX_LISTED_FAILURES: usize = 100;

/// Latency (completion − release) and wait (start − release) of tasks. The threads engine keeps
/// one pair per worker (no sharing between threads); the simulator keeps one pair for the run
/// (per-worker pairs would each grow to the run's largest latency, P times the memory).
/// Counts are `u32`: half the memory of `u64`, which keeps the simulator's recording in cache
/// (10.1 → 13.5 M events/s at P = 1,024); a bucket saturates only after 4.29 billion tasks of
/// the same latency.
#[derive(Debug)]
pub(crate) struct Histograms {
    latency: Histogram<u32>,
    wait: Histogram<u32>,
}

impl Histograms {
    pub(crate) fn new() -> Self {
        let hist = || Histogram::new(3).expect("3 significant figures is valid");
        Histograms {
            latency: hist(),
            wait: hist(),
        }
    }

    /// Record one task. Auto-resizing histograms grow to hold any u64; `saturating_record`
    /// would instead clamp to the initial range before resizing (a bug this project had).
    #[inline]
    pub(crate) fn record(&mut self, release: u64, start: u64, end: u64) {
        let ok = self.latency.record(end.saturating_sub(release)).is_ok()
            && self.wait.record(start.saturating_sub(release)).is_ok();
        debug_assert!(ok, "an auto-resizing histogram holds every u64");
    }

    /// Add `other`'s counts to these.
    pub(crate) fn merge(&mut self, other: &Histograms) {
        let ok = self.latency.add(&other.latency).is_ok() && self.wait.add(&other.wait).is_ok();
        debug_assert!(ok, "auto-resizing histograms merge");
    }
}

/// One worker's running tallies; engines update it per event and [`finish`] turns all workers'
/// tallies into a [`RunReport`].
#[derive(Debug)]
pub(crate) struct Tally {
    pub(crate) busy_ns: u64,
    pub(crate) tasks: u64,
    pub(crate) failed: u64,
    pub(crate) steals: u64,
    pub(crate) steal_attempts: u64,
    pub(crate) tasks_moved: u64,
    pub(crate) shared_pops: u64,
    pub(crate) overhead_ns: u64,
    pub(crate) work_ns: f64,
    pub(crate) max_task_ns: f64,
    pub(crate) max_release_plus_task_ns: f64,
    pub(crate) failures: Vec<Failure>,
    pub(crate) timeline: Vec<Span>,
    pub(crate) timeline_cap: usize,
    /// The next task recorded is the first of a stolen pick.
    stolen_next: bool,
    speed: f64,
    max_speed: f64,
}

impl Tally {
    pub(crate) fn new(speed: f64, max_speed: f64, timeline_cap: usize) -> Self {
        Tally {
            busy_ns: 0,
            tasks: 0,
            failed: 0,
            steals: 0,
            steal_attempts: 0,
            tasks_moved: 0,
            shared_pops: 0,
            overhead_ns: 0,
            work_ns: 0.0,
            max_task_ns: 0.0,
            max_release_plus_task_ns: 0.0,
            failures: Vec::new(),
            timeline: Vec::new(),
            timeline_cap,
            stolen_next: false,
            speed,
            max_speed,
        }
    }

    /// Count where a picked task came from.
    #[inline]
    pub(crate) fn picked(&mut self, source: Source, attempts: Attempts) {
        self.steal_attempts += u64::from(attempts.total());
        match source {
            Source::Local => {}
            Source::Shared => self.shared_pops += 1,
            Source::Stolen { moved, .. } => {
                self.steals += 1;
                self.tasks_moved += u64::from(moved);
                self.stolen_next = true;
            }
        }
    }

    /// Record a finished task: `start`/`end` in ns since the run began; its latency and wait
    /// go into `hist`. Returns whether it was the first task of a stolen pick.
    #[inline]
    pub(crate) fn ran(
        &mut self,
        hist: &mut Histograms,
        worker: WorkerId,
        task: TaskId,
        release: u64,
        start: u64,
        end: u64,
    ) -> bool {
        let stolen = std::mem::take(&mut self.stolen_next);
        let d = end.saturating_sub(start);
        self.busy_ns += d;
        self.tasks += 1;
        let norm = d as f64 * self.speed;
        self.work_ns += norm;
        self.max_task_ns = self.max_task_ns.max(norm);
        self.max_release_plus_task_ns = self
            .max_release_plus_task_ns
            .max(release as f64 + norm / self.max_speed);
        hist.record(release, start, end);
        if self.timeline.len() < self.timeline_cap {
            self.timeline.push(Span {
                worker,
                task,
                start_ns: start,
                end_ns: end,
                stolen,
            });
        }
        stolen
    }

    pub(crate) fn failed(&mut self, failure: Failure) {
        self.failed += 1;
        if self.failures.len() < MAX_LISTED_FAILURES {
            self.failures.push(failure);
        }
    }
}

/// What an engine knows about a run besides the tallies.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub engine: &'static str,
    pub strategy: String,
    pub workload: String,
    pub kind: String,
    pub arrivals: String,
    pub pin: String,
    pub seed: u64,
    pub tasks: usize,
    pub timing: &'static str,
    pub host: Host,
    pub timeline_cap: usize,
    pub notes: Vec<String>,
}

/// Per-worker facts that are not tallies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WorkerInfo {
    pub cpu: Option<usize>,
    pub node: usize,
    pub speed: f64,
}

/// Turn tallies into a report.
pub(crate) fn finish(
    meta: Meta,
    workers: &[WorkerInfo],
    tallies: Vec<Tally>,
    hist: &Histograms,
    makespan_ns: u64,
    tasks: &Tasks<'_>,
) -> RunReport {
    let p = tallies.len().max(1);
    let (mut work, mut tmax, mut rmax) = (0.0f64, 0.0f64, 0.0f64);
    let mut failures = Vec::new();
    let mut timeline = Vec::new();
    let mut per_worker = Vec::with_capacity(p);
    for (w, (t, info)) in tallies.into_iter().zip(workers).enumerate() {
        work += t.work_ns;
        tmax = tmax.max(t.max_task_ns);
        rmax = rmax.max(t.max_release_plus_task_ns);
        failures.extend(t.failures);
        timeline.extend(t.timeline);
        per_worker.push((
            t.failed,
            WorkerReport {
                id: w,
                cpu: info.cpu,
                node: info.node,
                speed: info.speed,
                busy_ns: t.busy_ns,
                idle_ns: makespan_ns.saturating_sub(t.busy_ns),
                tasks: t.tasks,
                steals: t.steals,
                steal_attempts: t.steal_attempts,
                tasks_moved: t.tasks_moved,
                shared_pops: t.shared_pops,
                overhead_ns: t.overhead_ns,
            },
        ));
    }
    let failed: u64 = per_worker.iter().map(|(f, _)| f).sum();
    let per_worker: Vec<WorkerReport> = per_worker.into_iter().map(|(_, r)| r).collect();
    let ran: u64 = per_worker.iter().map(|r| r.tasks).sum();
    failures.sort_by_key(|f: &Failure| f.task);
    failures.truncate(MAX_LISTED_FAILURES);
    timeline.sort_by_key(|s: &Span| (s.start_ns, s.worker));

    let speeds: Vec<f64> = workers.iter().map(|w| w.speed).collect();
    let sum_speed: f64 = speeds.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let max_speed = speeds
        .iter()
        .copied()
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    if let Some(costs) = tasks.cost_ns {
        // Nominal costs are known: the bound is the theory's, not the measurement's.
        work = costs.iter().map(|&c| c as f64).sum();
        tmax = costs.iter().copied().max().unwrap_or(0) as f64;
        rmax = costs
            .iter()
            .enumerate()
            .map(|(j, &c)| tasks.release(j) as f64 + c as f64 / max_speed)
            .fold(0.0, f64::max);
    }
    let lower = (work / sum_speed).max(tmax / max_speed).max(rmax);
    let busy: Vec<u64> = per_worker.iter().map(|r| r.busy_ns).collect();
    let (lif, worker_efficiency) = imbalance(&busy);
    let lower_bound_ns = lower.round() as u64;
    RunReport {
        strategy: meta.strategy,
        workload: meta.workload,
        engine: meta.engine.to_string(),
        kind: meta.kind,
        workers: per_worker.len(),
        tasks: meta.tasks,
        seed: meta.seed,
        arrivals: meta.arrivals,
        pin: meta.pin,
        executed: ran - failed,
        failed,
        makespan_ns,
        total_work_ns: work.round() as u64,
        lower_bound_ns,
        efficiency: if makespan_ns == 0 {
            1.0
        } else {
            lower_bound_ns as f64 / makespan_ns as f64
        },
        lif,
        worker_efficiency,
        latency_ns: Quantiles::of(&hist.latency),
        wait_ns: Quantiles::of(&hist.wait),
        steals: per_worker.iter().map(|r| r.steals).sum(),
        steal_attempts: per_worker.iter().map(|r| r.steal_attempts).sum(),
        tasks_moved: per_worker.iter().map(|r| r.tasks_moved).sum(),
        overhead_ns: per_worker.iter().map(|r| r.overhead_ns).sum(),
        oversubscribed: per_worker.len() > meta.host.cpus,
        per_worker,
        version: env!("CARGO_PKG_VERSION").to_string(),
        host: meta.host,
        timing: meta.timing.to_string(),
        failures,
        timeline: (meta.timeline_cap > 0).then(|| {
            timeline.truncate(meta.timeline_cap);
            timeline
        }),
        notes: meta.notes,
        events: None,
        mean_in_system: None,
        latency_buckets: compact_buckets(&hist.latency),
    }
}

/// `(lif, worker_efficiency)` of per-worker busy times; `(1, 1)` when nothing ran.
///
/// ```
/// assert_eq!(scheduler::imbalance(&[100, 300]), (1.5, 2.0 / 3.0));
/// assert_eq!(scheduler::imbalance(&[0, 0]), (1.0, 1.0));
/// ```
pub fn imbalance(busy_ns: &[u64]) -> (f64, f64) {
    let max = busy_ns.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return (1.0, 1.0);
    }
    let sum: u64 = busy_ns.iter().sum();
    let mean = sum as f64 / busy_ns.len() as f64;
    (max as f64 / mean, mean / max as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_keep_large_values() {
        // Regression: values far above the histogram's initial range must not be clamped.
        let mut t = Tally::new(1.0, 1.0, 0);
        let mut h = Histograms::new();
        t.ran(&mut h, 0, 0, 0, 1_000, 3_000_000_000);
        t.ran(&mut h, 0, 1, 0, 10, 20);
        let q = Quantiles::of(&h.latency);
        assert!(q.max >= 2_999_000_000, "{q:?}");
        assert_eq!(q.p50, 20);
        assert_eq!(Quantiles::of(&h.wait).max, 1_000);
    }

    #[test]
    fn compact_buckets_keep_every_count_in_order() {
        let mut t = Tally::new(1.0, 1.0, 0);
        let mut h = Histograms::new();
        for (i, d) in [10u64, 500, 1_500, 1_600, 50_000, 3_000_000_000]
            .into_iter()
            .enumerate()
        {
            t.ran(&mut h, 0, i, 0, 0, d);
        }
        let b = compact_buckets(&h.latency);
        assert_eq!(b.iter().map(|x| x[1]).sum::<u64>(), 6);
        assert_eq!(b[0], [1_000, 2], "values under 1 us share the first bucket");
        assert!(b.windows(2).all(|w| w[0][0] < w[1][0]), "{b:?}");
        let last = b.last().unwrap();
        assert!(last[0] >= 3_000_000_000 && last[0] < 3_600_000_000, "{b:?}");
        assert!(compact_buckets(&Histograms::new().latency).is_empty());
    }

    #[test]
    fn imbalance_of_equal_and_skewed_loads() {
        assert_eq!(imbalance(&[5, 5, 5]), (1.0, 1.0));
        let (lif, eff) = imbalance(&[1, 3]);
        assert!((lif - 1.5).abs() < 1e-12 && (eff - 2.0 / 3.0).abs() < 1e-12);
    }
}
