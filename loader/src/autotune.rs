//! The one-stage loader's autotune: its prefetch, tuned online on the consumer's thread.
//!
//! A [`Loader`](crate::Loader)'s workers are a fixed pool (their dataset states are built once,
//! on their threads), so the knob left to tune is the prefetch: how many samples may be in
//! flight. Too few and, in order, one slow sample at the head stalls the consumer once the
//! others have filled the window; too many only costs memory. The model is the one
//! [`LoaderReport`](crate::LoaderReport) recommends from (Little's law with the head-of-line
//! wait), applied to the most recent sample times at every reading; a feedback floor covers
//! what it cannot see, and hysteresis and a settling time keep it from oscillating.

use std::time::{Duration, Instant};

use crate::pipeline::tune::{change, moves, Autotune, TunePoint, Tuning};
use crate::report::{consumer_rate, head_wait, Acc};

/// The model reads at least this many recent sample times before it decides anything.
const MIN_SAMPLES: usize = 16;

/// The consumer waiting longer than this share of a reading while the window was full and
/// fewer samples than workers were left to load (workers idle for want of room) raises the
/// prefetch's floor by half.
const STALLED: f64 = 0.05;

/// The head-of-line loss the model sizes the window for. Higher than the report's 2%: the
/// estimate is pessimistic (stalls overlap), measured on log-normal σ 1.5 sleeps with 8
/// workers, a window the estimate says loses 6% lost 0.5% against one twice as deep.
const TUNE_LOSS: f64 = 0.05;

/// The prefetch goes down only after this many readings in a row wanted it lower (to the
/// most any of them wanted): the tail of a thousand recent times is noisy, and a window
/// that shrinks too soon stalls the consumer at the next slow sample.
const DOWN_READINGS: usize = 5;

/// What the tuner knows of the loader.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub workers: usize,
    pub batch_size: usize,
    /// Samples per task: 1 at sample granularity, the batch size at batch granularity.
    pub unit_samples: usize,
    pub ordered: bool,
}

/// The prefetch (in batches) the sample times call for, the target rate (samples/s) it was
/// sized for, and why: `λ · c + workers · unit` samples in order (`c`: the head-of-line wait
/// that keeps the estimated loss under [`TUNE_LOSS`], by the rule of
/// [`LoaderReport`](crate::LoaderReport)'s recommendation), `2 · workers · unit` as ready;
/// times `1 + headroom`; in batches plus one (the window is topped up a batch at a time), at
/// least 2. `None` before [`MIN_SAMPLES`] times were seen.
pub(crate) fn model(
    recent_ns: &[u64],
    shape: Shape,
    consumer_per_s: Option<f64>,
    headroom: f64,
) -> Option<(usize, f64, String)> {
    if recent_ns.len() < MIN_SAMPLES {
        return None;
    }
    let mut sorted: Vec<f64> = recent_ns.iter().map(|&t| t as f64 / 1e9).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    let busy = shape.workers as f64 * shape.unit_samples as f64;
    let limit = if mean > 0.0 {
        shape.workers as f64 / mean
    } else {
        f64::INFINITY
    };
    let target = consumer_per_s.map_or(limit, |c| c.min(limit));
    let (window, why) = if shape.ordered && target.is_finite() {
        let c = head_wait(&sorted, target, TUNE_LOSS);
        let w = target * c + busy;
        (
            w,
            format!(
                "{target:.0} samples/s x {:.1} ms head-of-line wait + {busy:.0} in service = \
                 {w:.0} samples, +{:.0}%",
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
    let batches = (window * (1.0 + headroom) / shape.batch_size.max(1) as f64).ceil() as usize;
    Some((batches.saturating_add(1).max(2), target, why))
}

/// The counters at the last reading.
struct Reading {
    at: Instant,
    samples: u64,
    stall_full: Duration,
}

/// The loader's tuner: lives as long as the loader, so the next epoch starts where the last
/// one's tuning ended.
pub(crate) struct Tuner {
    cfg: Autotune,
    shape: Shape,
    /// The setting now, in batches.
    prefetch: usize,
    /// The memory cap, in batches.
    most: usize,
    /// Feedback's floor (rises only, within an epoch).
    floor: usize,
    started: Instant,
    last: Option<Reading>,
    settle_until: Instant,
    /// Readings in a row that wanted a lower setting, and the most they wanted.
    lower: (usize, usize),
    record: Tuning,
    stride: usize,
    seen: usize,
}

impl Tuner {
    /// A tuner starting from `prefetch` batches; refuses settings that cannot work with the
    /// field that is wrong and what is allowed.
    pub fn new(
        cfg: Autotune,
        shape: Shape,
        prefetch: usize,
    ) -> Result<Tuner, (&'static str, String)> {
        if cfg.interval.is_zero() {
            return Err(("interval", "must be longer than 0".into()));
        }
        let most = match cfg.max_items {
            Some(n) if n < shape.batch_size => {
                return Err((
                    "max_items",
                    format!(
                        "{n} samples cannot hold one batch; allowed: >= the batch size {}",
                        shape.batch_size
                    ),
                ))
            }
            Some(n) => n / shape.batch_size.max(1),
            None => usize::MAX,
        };
        let now = Instant::now();
        Ok(Tuner {
            cfg,
            shape,
            prefetch: prefetch.min(most).max(1),
            most,
            floor: 1,
            started: now,
            last: None,
            settle_until: now,
            lower: (0, 0),
            record: Tuning::default(),
            stride: 1,
            seen: 0,
        })
    }

    /// The setting now, in batches.
    pub fn prefetch(&self) -> usize {
        self.prefetch
    }

    /// A new epoch: keep the setting, start a new record and a new floor.
    pub fn begin(&mut self, now: Instant) {
        self.started = now;
        self.last = None;
        self.settle_until = now;
        self.floor = 1;
        self.lower = (0, 0);
        self.record = Tuning {
            stages: vec!["get".into()],
            ..Tuning::default()
        };
        self.stride = 1;
        self.seen = 0;
    }

    /// What the tuner did this epoch so far.
    pub fn record(&self) -> &Tuning {
        &self.record
    }

    /// Called by the consumer each time it asks for a batch: takes a reading when one is due
    /// and returns the new prefetch when it changed.
    pub fn tick(&mut self, acc: &Acc, now: Instant) -> Option<usize> {
        if self
            .last
            .as_ref()
            .is_some_and(|l| now.duration_since(l.at) < self.cfg.interval)
        {
            return None;
        }
        let samples: u64 = acc.samples.iter().sum();
        let now_reading = Reading {
            at: now,
            samples,
            stall_full: acc.stall_full,
        };
        let Some(last) = &self.last else {
            self.last = Some(now_reading);
            return None;
        };
        let secs = now.duration_since(last.at).as_secs_f64();
        let rate = (samples - last.samples) as f64 / secs;
        let stalled = (acc.stall_full - last.stall_full).as_secs_f64() / secs;
        self.last = Some(now_reading);
        let elapsed = now.duration_since(acc.started).as_secs_f64();
        let consumer = consumer_rate(samples, elapsed, acc.in_next);
        let modelled = model(acc.recent(), self.shape, consumer, self.cfg.headroom);
        let at_s = now.duration_since(self.started).as_secs_f64();
        let mut why_floor = None;
        if stalled > STALLED {
            let up = self
                .prefetch
                .saturating_mul(3)
                .div_ceil(2)
                .max(self.prefetch.saturating_add(1));
            if up > self.floor {
                self.floor = up;
                why_floor = Some(format!(
                    "feedback: the consumer waited {:.0}% of the time with the window full and \
                     workers idle",
                    stalled * 100.0
                ));
            }
        }
        let point = TunePoint {
            at_s,
            items_per_s: rate,
            target_per_s: modelled.as_ref().map(|m| m.1).filter(|t| t.is_finite()),
            concurrency: vec![self.shape.workers],
            window: self.prefetch.saturating_mul(self.shape.batch_size),
        };
        self.record.push(point, &mut self.stride, &mut self.seen);
        let (want, why_model) = modelled.map_or((self.prefetch, String::new()), |m| (m.0, m.2));
        let mut new = want.max(self.floor).min(self.most).max(1);
        if now < self.settle_until || !moves(self.prefetch, new, self.cfg.hysteresis) {
            self.lower = (0, 0);
            return None;
        }
        if new < self.prefetch {
            self.lower = (self.lower.0 + 1, self.lower.1.max(new));
            if self.lower.0 < DOWN_READINGS {
                return None;
            }
            new = self.lower.1;
        }
        self.lower = (0, 0);
        let why = match why_floor {
            Some(w) if new == self.floor => w,
            _ if new == self.most && want > self.most => {
                format!("the model wants {want} batches; capped by max_items")
            }
            _ => format!("model: {why_model}"),
        };
        self.record
            .changes
            .push(change(at_s, "prefetch".into(), self.prefetch, new, why));
        self.prefetch = new;
        // Settle: two readings, or the time the new window takes to turn over, at most ten.
        let turn = if rate > 0.0 {
            Duration::from_secs_f64((new as f64 * self.shape.batch_size as f64 / rate).min(3600.0))
        } else {
            Duration::ZERO
        };
        let settle = self
            .cfg
            .interval
            .saturating_mul(2)
            .max(turn)
            .min(self.cfg.interval.saturating_mul(10));
        self.settle_until = crate::pipeline::later(now, settle);
        Some(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(workers: usize, batch: usize, ordered: bool) -> Shape {
        Shape {
            workers,
            batch_size: batch,
            unit_samples: 1,
            ordered,
        }
    }

    #[test]
    fn equal_times_need_little_more_than_the_workers() {
        // 8 workers, 1 ms each, in order: c = 1 ms, window = 8000/s · 1 ms + 8 = 16 samples,
        // · 1.25 = 20 → 3 batches of 8, plus one
        let (p, target, _) = model(&[1_000_000; 100], shape(8, 8, true), None, 0.25).unwrap();
        assert_eq!(p, 4);
        assert!((target - 8000.0).abs() < 1e-6);
    }

    #[test]
    fn a_heavy_tail_in_order_wants_a_deeper_window_than_as_ready() {
        let mut t = vec![1_000_000u64; 990];
        t.extend([100_000_000u64; 10]); // 1% take 100 ms
        let (ordered, _, _) = model(&t, shape(8, 8, true), None, 0.25).unwrap();
        let (ready, _, _) = model(&t, shape(8, 8, false), None, 0.25).unwrap();
        assert_eq!(ready, 4); // 2 · 8 · 1.25 = 20 → 3 + 1
        assert!(ordered > 10 * ready, "{ordered} vs {ready}");
    }

    #[test]
    fn a_slow_consumer_needs_a_smaller_window() {
        let mut t = vec![1_000_000u64; 990];
        t.extend([100_000_000u64; 10]);
        let (fast, _, _) = model(&t, shape(8, 8, true), None, 0.25).unwrap();
        let (slow, target, _) = model(&t, shape(8, 8, true), Some(100.0), 0.25).unwrap();
        assert_eq!(target, 100.0);
        assert!(slow < fast, "{slow} vs {fast}");
    }

    #[test]
    fn no_decision_before_enough_samples() {
        assert!(model(&[1_000; 15], shape(2, 4, true), None, 0.25).is_none());
    }

    #[test]
    fn rises_at_once_after_settling_and_falls_only_after_five_readings_in_a_row() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut acc = Acc::new(8);
        // the consumer always waited: no consumer rate bounds the target
        acc.in_next = Duration::from_secs(1000);
        for _ in 0..200 {
            acc.sample(0, 1_000_000);
        }
        let mut up = Tuner::new(Autotune::new(), shape(8, 8, true), 1).unwrap();
        up.begin(t0);
        assert_eq!(
            up.tick(&acc, at(0)),
            None,
            "the first reading is the baseline"
        );
        assert_eq!(up.tick(&acc, at(10)), None, "a reading every 20 ms");
        assert_eq!(up.tick(&acc, at(25)), Some(4), "the model's 4 at once");
        // a heavy tail arrives: the model wants more, but the change settles for 2 readings
        for _ in 0..100 {
            acc.sample(0, 200_000_000);
        }
        assert_eq!(up.tick(&acc, at(50)), None);
        let more = up.tick(&acc, at(70)).expect("up after settling");
        assert!(more > 4, "{more}");
        assert_eq!(up.record().changes.len(), 2);
        assert_eq!(up.record().changes[1].from, 4);

        let mut acc = Acc::new(8);
        acc.in_next = Duration::from_secs(1000);
        for _ in 0..200 {
            acc.sample(0, 1_000_000);
        }
        let mut down = Tuner::new(Autotune::new(), shape(8, 8, true), 20).unwrap();
        down.begin(t0);
        assert_eq!(down.tick(&acc, at(0)), None);
        for r in 1..DOWN_READINGS as u64 {
            assert_eq!(down.tick(&acc, at(25 * r)), None, "reading {r}");
        }
        assert_eq!(down.tick(&acc, at(25 * DOWN_READINGS as u64)), Some(4));
        assert_eq!(down.prefetch(), 4);
        assert_eq!(down.record().trajectory.len(), DOWN_READINGS);
    }

    #[test]
    fn bad_settings_are_refused_with_the_field() {
        let s = shape(2, 32, true);
        let e = Tuner::new(Autotune::new().max_items(31), s, 4)
            .err()
            .unwrap();
        assert_eq!(e.0, "max_items");
        assert!(e.1.contains("32"), "{}", e.1);
        let e = Tuner::new(Autotune::new().interval(Duration::ZERO), s, 4)
            .err()
            .unwrap();
        assert_eq!(e.0, "interval");
        // the starting guess is fitted into the cap
        let t = Tuner::new(Autotune::new().max_items(64), s, 4).unwrap();
        assert_eq!(t.prefetch(), 2);
    }
}
