//! `LoaderReport`: how fast an epoch loaded, where the time went, and how to size the loader.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::pipeline::Tuning;

/// One worker's share of an epoch: in a [`LoaderReport`], and per CPU worker in a
/// [`PipelineReport`](crate::PipelineReport) (over its `cpu` stages).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WorkerLoad {
    /// Seconds spent inside `Dataset::get` (and, at batch granularity, collate); in a
    /// pipeline, inside `cpu` stage calls.
    pub busy_s: f64,
    /// Samples loaded (a pipeline: `cpu` stage items served).
    pub samples: u64,
}

/// What one epoch (or the part of it consumed so far) measured.
///
/// Rates are over `elapsed_s`, measured from the `epoch()` call to the last batch handed out.
/// The *limit* is `workers / mean sample time`: the rate of `workers` threads that never
/// wait. The recommendations apply Little's law (items in a system = rate × time each spends
/// there), as tf.data's AUTOTUNE does:
///
/// * **workers**: to feed a consumer that takes `c` samples/s (measured from the time it spent
///   outside `next()`), `⌈1.1 · c · t̄⌉` workers are busy on average (t̄: mean sample time);
///   when the consumer was never the bottleneck (it spent < 1% of the time outside `next()`),
///   the current count is kept.
/// * **prefetch**: in order, the head-of-line sample may be a slow one; while it loads, the
///   other workers keep producing only until the window is full. A sample of time `t` then
///   stalls delivery for about `(t − c)⁺`, where `c = window / λ` (λ: the target rate), so
///   the share of throughput lost is about `λ · E[(T − c)⁺]`. The recommendation is the
///   smallest `c` among the measured sample times that keeps this under 2%, and a window of
///   `λ · c + workers` samples, in batches plus one (the window is topped up a batch at a
///   time), at least 2. As ready, no sample holds up the others: `2 · workers` samples, in
///   batches plus one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoaderReport {
    /// The strategy's spec string.
    pub strategy: String,
    /// `sample` or `batch`.
    pub granularity: String,
    /// In-order delivery (true) or as ready.
    pub ordered: bool,
    /// Worker threads.
    pub workers: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Batches in flight at most.
    pub prefetch: usize,
    /// The epoch.
    pub epoch: u64,
    /// Batches handed out (errors included).
    pub batches: usize,
    /// Samples loaded.
    pub samples: u64,
    /// Samples that failed, panicked or timed out.
    pub failed: u64,
    /// Seconds from the `epoch()` call to the last batch handed out.
    pub elapsed_s: f64,
    /// Samples per second over `elapsed_s`.
    pub samples_per_s: f64,
    /// Seconds from the `epoch()` call to the first batch.
    pub first_batch_s: Option<f64>,
    /// Seconds the consumer waited inside `next()` for samples.
    pub stall_s: f64,
    /// Seconds the consumer spent inside `next()` in all (waiting plus collating).
    pub in_next_s: f64,
    /// Mean samples in flight (submitted, not yet taken) when the consumer asked for a batch.
    pub occupancy_mean: f64,
    /// Most samples in flight when the consumer asked for a batch.
    pub occupancy_max: usize,
    /// The bound on samples in flight: `prefetch · batch_size`.
    pub capacity: usize,
    /// Mean seconds per sample (inside `get`).
    pub mean_sample_s: f64,
    /// 99th percentile seconds per sample.
    pub p99_sample_s: f64,
    /// `workers / mean_sample_s`.
    pub limit_per_s: f64,
    /// `samples_per_s / limit_per_s`.
    pub fraction_of_limit: f64,
    /// Per worker: busy time and samples.
    pub per_worker: Vec<WorkerLoad>,
    /// Load imbalance factor: max busy / mean busy (1.0 = perfectly even).
    pub lif: f64,
    /// Successful steals (strategies that steal).
    pub steals: u64,
    /// Samples per second the consumer would take if loading were free (`None` if it never
    /// spent measurable time outside `next()`).
    pub consumer_per_s: Option<f64>,
    /// Recommended workers (Little's law; see the type's docs).
    pub recommended_workers: usize,
    /// Recommended prefetch in batches (Little's law; see the type's docs).
    pub recommended_prefetch: usize,
    /// What autotune did this epoch (`None` without [`Builder::autotune`](crate::Builder::autotune)):
    /// every change of the prefetch and the readings. `prefetch` above is where it ended.
    pub tuning: Option<Tuning>,
}

/// Accumulates what an epoch measures.
#[derive(Debug)]
pub(crate) struct Acc {
    pub started: Instant,
    pub last: Option<Instant>,
    pub first_batch: Option<Duration>,
    pub stall: Duration,
    pub in_next: Duration,
    pub batches: usize,
    pub failed: u64,
    pub occ_sum: u64,
    pub occ_max: usize,
    pub occ_n: u64,
    pub busy_ns: Vec<u64>,
    pub samples: Vec<u64>,
    pub sample_ns: Vec<u64>,
    pub steals: u64,
    /// The consumer's waits with the window full that ended with fewer samples left to load
    /// than workers (autotune's feedback: workers idle for want of room).
    pub stall_full: Duration,
    /// The last [`RECENT`] sample times, a ring (`recent_at` is the next slot).
    recent: Vec<u64>,
    recent_at: usize,
}

/// Sample times autotune's model reads: the most recent ones, so that it follows a change.
const RECENT: usize = 1024;

/// Keep at most this many sample times for the percentile.
const MAX_KEPT_TIMES: usize = 1 << 20;

impl Acc {
    pub fn new(workers: usize) -> Acc {
        Acc {
            started: Instant::now(),
            last: None,
            first_batch: None,
            stall: Duration::ZERO,
            in_next: Duration::ZERO,
            batches: 0,
            failed: 0,
            occ_sum: 0,
            occ_max: 0,
            occ_n: 0,
            busy_ns: vec![0; workers],
            samples: vec![0; workers],
            sample_ns: Vec::new(),
            steals: 0,
            stall_full: Duration::ZERO,
            recent: Vec::new(),
            recent_at: 0,
        }
    }

    pub fn sample(&mut self, worker: usize, ns: u64) {
        if worker < self.busy_ns.len() {
            self.busy_ns[worker] += ns;
            self.samples[worker] += 1;
        }
        if self.sample_ns.len() < MAX_KEPT_TIMES {
            self.sample_ns.push(ns);
        }
        if self.recent.len() < RECENT {
            self.recent.push(ns);
        } else {
            self.recent[self.recent_at] = ns;
        }
        self.recent_at = (self.recent_at + 1) % RECENT;
    }

    /// The last (at most 1,024) sample times, in no particular order.
    pub fn recent(&self) -> &[u64] {
        &self.recent
    }

    pub fn occupancy(&mut self, in_flight: usize) {
        self.occ_sum += in_flight as u64;
        self.occ_max = self.occ_max.max(in_flight);
        self.occ_n += 1;
    }

    pub fn batch_out(&mut self) {
        let now = Instant::now();
        self.batches += 1;
        self.first_batch.get_or_insert(now - self.started);
        self.last = Some(now);
    }
}

/// What the report needs to know about the loader.
pub(crate) struct Setup<'a> {
    pub strategy: &'a str,
    pub granularity: &'a str,
    pub ordered: bool,
    pub workers: usize,
    pub batch_size: usize,
    pub prefetch: usize,
    pub epoch: u64,
}

/// The share of throughput the recommended prefetch may lose to head-of-line waits.
const HEAD_LOSS: f64 = 0.02;

/// In order, a sample that takes `t` holds up delivery once the others have filled the window,
/// i.e. for about `(t − c)⁺` where `c = window / rate`. Per sample that costs `E[(T − c)⁺]`, so
/// the share of throughput lost is about `rate · E[(T − c)⁺]`. The smallest `c` (among the
/// measured times, ascending in `sorted`) keeping that below `loss` ([`HEAD_LOSS`] for the
/// report). The estimate is pessimistic: stalls overlap (while the consumer waits for one
/// slow sample, the next slow ones keep loading).
pub(crate) fn head_wait(sorted: &[f64], rate: f64, loss: f64) -> f64 {
    let n = sorted.len();
    if n == 0 || rate <= 0.0 {
        return 0.0;
    }
    // suffix[i] = sum of sorted[i..]
    let mut suffix = vec![0.0; n + 1];
    for i in (0..n).rev() {
        suffix[i] = suffix[i + 1] + sorted[i];
    }
    for (i, &c) in sorted.iter().enumerate() {
        let excess = (suffix[i] - (n - i) as f64 * c) / n as f64;
        if rate * excess <= loss {
            return c;
        }
    }
    sorted[n - 1]
}

/// The samples per second the consumer would take if loading were free: `samples` over the
/// time it spent outside `next()` in `elapsed_s` (`in_next` inside), or `None` if that was under
/// 1% of the time (it was never the bottleneck).
pub(crate) fn consumer_rate(samples: u64, elapsed_s: f64, in_next: Duration) -> Option<f64> {
    let outside = elapsed_s - in_next.as_secs_f64();
    (outside > 0.01 * elapsed_s && samples > 0).then(|| samples as f64 / outside)
}

impl LoaderReport {
    pub(crate) fn new(setup: &Setup<'_>, acc: &Acc) -> LoaderReport {
        let elapsed = acc
            .last
            .map_or(0.0, |l| (l - acc.started).as_secs_f64())
            .max(1e-9);
        let samples: u64 = acc.samples.iter().sum();
        let total_ns: u64 = acc.busy_ns.iter().sum();
        let mean_sample_s = if samples > 0 {
            total_ns as f64 / samples as f64 / 1e9
        } else {
            0.0
        };
        let mut sorted_s: Vec<f64> = acc.sample_ns.iter().map(|&t| t as f64 / 1e9).collect();
        sorted_s.sort_unstable_by(f64::total_cmp);
        let p99_sample_s = if sorted_s.is_empty() {
            0.0
        } else {
            sorted_s[((sorted_s.len() - 1) as f64 * 0.99).round() as usize]
        };
        let workers = setup.workers.max(1);
        let limit_per_s = if mean_sample_s > 0.0 {
            workers as f64 / mean_sample_s
        } else {
            0.0
        };
        let samples_per_s = samples as f64 / elapsed;
        let busy: Vec<f64> = acc.busy_ns.iter().map(|&b| b as f64 / 1e9).collect();
        let mean_busy = busy.iter().sum::<f64>() / busy.len().max(1) as f64;
        let lif = if mean_busy > 0.0 {
            busy.iter().cloned().fold(0.0, f64::max) / mean_busy
        } else {
            1.0
        };
        let consumer_per_s = consumer_rate(samples, elapsed, acc.in_next);
        let recommended_workers = match consumer_per_s {
            Some(c) if mean_sample_s > 0.0 => ((1.1 * c * mean_sample_s).ceil() as usize).max(1),
            _ => workers,
        };
        let target = if mean_sample_s > 0.0 {
            let max_rate = recommended_workers as f64 / mean_sample_s;
            consumer_per_s.map_or(max_rate, |c| c.min(max_rate))
        } else {
            0.0
        };
        let window = if setup.ordered {
            target * head_wait(&sorted_s, target, HEAD_LOSS) + recommended_workers as f64
        } else {
            2.0 * recommended_workers as f64
        };
        let recommended_prefetch =
            ((window / setup.batch_size.max(1) as f64).ceil() as usize + 1).max(2);
        LoaderReport {
            strategy: setup.strategy.to_string(),
            granularity: setup.granularity.to_string(),
            ordered: setup.ordered,
            workers: setup.workers,
            batch_size: setup.batch_size,
            prefetch: setup.prefetch,
            epoch: setup.epoch,
            batches: acc.batches,
            samples,
            failed: acc.failed,
            elapsed_s: elapsed,
            samples_per_s,
            first_batch_s: acc.first_batch.map(|d| d.as_secs_f64()),
            stall_s: acc.stall.as_secs_f64(),
            in_next_s: acc.in_next.as_secs_f64(),
            occupancy_mean: if acc.occ_n > 0 {
                acc.occ_sum as f64 / acc.occ_n as f64
            } else {
                0.0
            },
            occupancy_max: acc.occ_max,
            capacity: setup.prefetch.saturating_mul(setup.batch_size),
            mean_sample_s,
            p99_sample_s,
            limit_per_s,
            fraction_of_limit: if limit_per_s > 0.0 {
                samples_per_s / limit_per_s
            } else {
                0.0
            },
            per_worker: busy
                .iter()
                .zip(&acc.samples)
                .map(|(&busy_s, &samples)| WorkerLoad { busy_s, samples })
                .collect(),
            lif,
            steals: acc.steals,
            consumer_per_s,
            recommended_workers,
            recommended_prefetch,
            tuning: None,
        }
    }
}

impl fmt::Display for LoaderReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({}, {}), {} workers, batch {}, prefetch {} — epoch {}",
            self.strategy,
            self.granularity,
            if self.ordered { "ordered" } else { "as ready" },
            self.workers,
            self.batch_size,
            self.prefetch,
            self.epoch
        )?;
        writeln!(
            f,
            "  {} samples ({} failed) in {} batches, {:.3} s: {:.0} samples/s = {:.3} of the limit {:.0}/s",
            self.samples,
            self.failed,
            self.batches,
            self.elapsed_s,
            self.samples_per_s,
            self.fraction_of_limit,
            self.limit_per_s
        )?;
        writeln!(
            f,
            "  first batch {}, consumer waited {:.3} s, sample mean {:.1} µs p99 {:.1} µs",
            self.first_batch_s
                .map_or("-".to_string(), |s| format!("{:.1} ms", s * 1e3)),
            self.stall_s,
            self.mean_sample_s * 1e6,
            self.p99_sample_s * 1e6
        )?;
        writeln!(
            f,
            "  in flight mean {:.0} max {} of {}, LIF {:.3}, steals {}",
            self.occupancy_mean, self.occupancy_max, self.capacity, self.lif, self.steals
        )?;
        write!(
            f,
            "  recommended: {} workers, prefetch {}",
            self.recommended_workers, self.recommended_prefetch
        )?;
        match &self.tuning {
            Some(t) => write!(f, "\n{t}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_wait_covers_the_tail_that_would_cost_more_than_two_percent() {
        // equal times: waiting one sample time is enough
        assert_eq!(head_wait(&[0.001; 50], 1000.0, HEAD_LOSS), 0.001);
        // one sample in a hundred takes 100 ms: at 1000/s waiting 1 ms loses ~99%; 100 ms none
        let mut t = vec![0.001; 99];
        t.push(0.1);
        assert_eq!(head_wait(&t, 1000.0, HEAD_LOSS), 0.1);
        // at a rate slow enough, the tail costs under 2% and no extra wait is needed
        assert_eq!(head_wait(&t, 10.0, HEAD_LOSS), 0.001);
        assert_eq!(head_wait(&[], 10.0, HEAD_LOSS), 0.0);
    }
}
