//! `LoaderReport`: how fast an epoch loaded, where the time went, and how to size the loader.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::pipeline::{PipelineReport, Tuning};

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
/// A view of the loader's [`PipelineReport`] (the [`Loader`](crate::Loader) is a pipeline: one
/// cpu stage `get`): the per-sample times and per-worker figures are the stage `get`'s, the
/// consumer's waits and the occupancy the pipeline's, `steals` and `tuning` its too. What only
/// the loader knows: batches and bad samples, its clock (from the `epoch()` call; collate on
/// the consumer's thread counts in `in_next_s`), and at batch granularity, where a pipeline
/// item is a whole batch, each sample's time inside `get` and each worker's sample count
/// (the loader times the samples of a batch itself). The recommended prefetch's head-of-line
/// wait is read from the sample times the loader keeps (the pipeline's report gives only
/// the quantiles).
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
    /// Samples loaded (the pipeline's source items handed out; the loader's own count at
    /// batch granularity).
    pub samples: u64,
    /// Samples that failed, panicked or timed out.
    pub failed: u64,
    /// Seconds from the `epoch()` call to the last batch handed out.
    pub elapsed_s: f64,
    /// Samples per second over `elapsed_s`.
    pub samples_per_s: f64,
    /// Seconds from the `epoch()` call to the first batch.
    pub first_batch_s: Option<f64>,
    /// Seconds the consumer waited inside `next()` for samples
    /// ([`PipelineReport::consumer_wait_s`]).
    pub stall_s: f64,
    /// Seconds the consumer spent inside `next()` in all (waiting plus collating).
    pub in_next_s: f64,
    /// Mean samples in flight (submitted, not yet taken) when the consumer asked for a batch
    /// ([`PipelineReport::occupancy_mean`], in samples).
    pub occupancy_mean: f64,
    /// Most samples in flight when the consumer asked for a batch.
    pub occupancy_max: usize,
    /// The bound on samples in flight: `prefetch · batch_size`.
    pub capacity: usize,
    /// Mean seconds per sample (inside `get`): the stage `get`'s mean service time; at batch
    /// granularity the loader's own per-sample times.
    pub mean_sample_s: f64,
    /// 99th percentile seconds per sample.
    pub p99_sample_s: f64,
    /// `workers / mean_sample_s`.
    pub limit_per_s: f64,
    /// `samples_per_s / limit_per_s`.
    pub fraction_of_limit: f64,
    /// Per worker: busy time and samples ([`PipelineReport::workers`]; the samples are the
    /// loader's count at batch granularity).
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

/// What the Loader measures of an epoch beside its pipeline's report: the batches it
/// handed out and their bad samples, its own clock (from the `epoch()` call, collate
/// included), and each sample's time inside `get` (a pipeline item is a batch at batch
/// granularity; at sample granularity the times feed only the distribution the recommended
/// prefetch is sized from).
#[derive(Debug)]
pub(crate) struct Acc {
    pub started: Instant,
    pub last: Option<Instant>,
    pub first_batch: Option<Duration>,
    pub in_next: Duration,
    pub batches: usize,
    pub failed: u64,
    /// Per worker, samples loaded (batch granularity and chunks only: the pipeline counts
    /// batches, or has no per-thread figures for a blocking stage).
    pub samples: Vec<u64>,
    /// Per worker, nanoseconds inside `get_many` (a chunked loader's).
    pub busy_ns: Vec<u64>,
    pub sample_ns: Vec<u64>,
    pub sample_ns_sum: u128,
    pub sample_n: u64,
}

/// Keep at most this many sample times for the percentile.
const MAX_KEPT_TIMES: usize = 1 << 20;

impl Acc {
    pub fn new(workers: usize, started: Instant) -> Acc {
        Acc {
            started,
            last: None,
            first_batch: None,
            in_next: Duration::ZERO,
            batches: 0,
            failed: 0,
            samples: vec![0; workers],
            busy_ns: vec![0; workers],
            sample_ns: Vec::new(),
            sample_ns_sum: 0,
            sample_n: 0,
        }
    }

    /// A sample's time inside `get`; `worker` at batch granularity and in chunks (counted
    /// per worker).
    pub fn sample(&mut self, worker: Option<usize>, ns: u64) {
        if let Some(w) = worker.filter(|&w| w < self.samples.len()) {
            self.samples[w] += 1;
            self.busy_ns[w] += ns;
        }
        self.sample_ns_sum += u128::from(ns);
        self.sample_n += 1;
        if self.sample_ns.len() < MAX_KEPT_TIMES {
            self.sample_ns.push(ns);
        }
    }

    pub fn batch_out(&mut self, now: Instant) {
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
    /// One pipeline item is a batch (its per-sample figures are the loader's own).
    pub batch_granularity: bool,
    /// `get` is a chunked blocking stage: the per-worker figures are the loader's own.
    pub chunked: bool,
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
    let counted: Vec<(f64, u64)> = sorted.iter().map(|&t| (t, 1)).collect();
    head_wait_counts(&counted, rate, loss)
}

/// [`head_wait`] over times with counts, `(seconds, count)` ascending (a histogram's
/// buckets): the autotuner's head-of-line rule reads it from a station's histogram.
pub(crate) fn head_wait_counts(sorted: &[(f64, u64)], rate: f64, loss: f64) -> f64 {
    let n: u64 = sorted.iter().map(|t| t.1).sum();
    if n == 0 || rate <= 0.0 {
        return 0.0;
    }
    // Over sorted[i..]: the sum of the times and their count.
    let mut sum = vec![0.0; sorted.len() + 1];
    let mut count = vec![0u64; sorted.len() + 1];
    for i in (0..sorted.len()).rev() {
        sum[i] = sum[i + 1] + sorted[i].0 * sorted[i].1 as f64;
        count[i] = count[i + 1] + sorted[i].1;
    }
    for (i, &(c, _)) in sorted.iter().enumerate() {
        let excess = (sum[i] - count[i] as f64 * c) / n as f64;
        if rate * excess <= loss {
            return c;
        }
    }
    sorted.last().map_or(0.0, |t| t.0)
}

/// The samples per second the consumer would take if loading were free: `samples` over the
/// time it spent outside `next()` in `elapsed_s` (`in_next` inside), or `None` if that was under
/// 1% of the time (it was never the bottleneck).
pub(crate) fn consumer_rate(samples: u64, elapsed_s: f64, in_next: Duration) -> Option<f64> {
    let outside = elapsed_s - in_next.as_secs_f64();
    (outside > 0.01 * elapsed_s && samples > 0).then(|| samples as f64 / outside)
}

impl LoaderReport {
    /// The view of the pipeline's report `pr` (its one stage `get`, CPU workers, consumer
    /// waits, occupancy, steals) with what only the loader knows, from `acc`.
    pub(crate) fn new(setup: &Setup<'_>, acc: &Acc, pr: Option<&PipelineReport>) -> LoaderReport {
        let elapsed = acc
            .last
            .map_or(0.0, |l| (l - acc.started).as_secs_f64())
            .max(1e-9);
        let get = pr.and_then(|r| r.stages.first());
        let workers_of = |r: Option<&PipelineReport>| -> Vec<WorkerLoad> {
            let mut w = r.map_or_else(Vec::new, |r| r.workers.clone());
            w.resize(setup.workers, WorkerLoad::default());
            w
        };
        let mut per_worker = workers_of(pr);
        let mut sorted_s: Vec<f64> = acc.sample_ns.iter().map(|&t| t as f64 / 1e9).collect();
        sorted_s.sort_unstable_by(f64::total_cmp);
        let p99_of = |sorted: &[f64]| {
            if sorted.is_empty() {
                0.0
            } else {
                sorted[((sorted.len() - 1) as f64 * 0.99).round() as usize]
            }
        };
        let (samples, mean_sample_s, p99_sample_s) = if setup.batch_granularity {
            // A pipeline item is a batch: the samples, their times and each worker's count
            // are the loader's own (busy time, collate included, is the pipeline's).
            for (w, &n) in per_worker.iter_mut().zip(&acc.samples) {
                w.samples = n;
            }
            let mean = if acc.sample_n > 0 {
                acc.sample_ns_sum as f64 / acc.sample_n as f64 / 1e9
            } else {
                0.0
            };
            (acc.sample_n, mean, p99_of(&sorted_s))
        } else {
            (
                pr.map_or(0, |r| r.source_items),
                get.map_or(0.0, |g| g.service_us.mean / 1e6),
                get.map_or(0.0, |g| g.service_us.p99 / 1e6),
            )
        };
        let workers = setup.workers.max(1);
        let limit_per_s = if mean_sample_s > 0.0 {
            workers as f64 / mean_sample_s
        } else {
            0.0
        };
        let samples_per_s = samples as f64 / elapsed;
        let unit = if setup.batch_granularity {
            setup.batch_size
        } else {
            1
        };
        let lif = if setup.chunked {
            // the get stage's threads, as the loader counted them
            for (w, (&n, &ns)) in per_worker
                .iter_mut()
                .zip(acc.samples.iter().zip(&acc.busy_ns))
            {
                *w = WorkerLoad {
                    busy_s: ns as f64 / 1e9,
                    samples: n,
                };
            }
            let busy: Vec<f64> = per_worker.iter().map(|w| w.busy_s).collect();
            let mean = busy.iter().sum::<f64>() / busy.len().max(1) as f64;
            let max = busy.iter().copied().fold(0.0, f64::max);
            if mean > 0.0 {
                max / mean
            } else {
                1.0
            }
        } else {
            pr.and_then(|r| r.lif).unwrap_or(1.0)
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
            stall_s: pr.map_or(0.0, |r| r.consumer_wait_s),
            in_next_s: acc.in_next.as_secs_f64(),
            // The pipeline counts items: samples, or batches at batch granularity.
            occupancy_mean: pr.map_or(0.0, |r| r.occupancy_mean) * unit as f64,
            occupancy_max: pr.map_or(0, |r| r.occupancy_max).saturating_mul(unit),
            capacity: setup.prefetch.saturating_mul(setup.batch_size),
            mean_sample_s,
            p99_sample_s,
            limit_per_s,
            fraction_of_limit: if limit_per_s > 0.0 {
                samples_per_s / limit_per_s
            } else {
                0.0
            },
            per_worker,
            lif,
            steals: pr.map_or(0, |r| r.steals),
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
