//! Sampled statistics of a distribution, beside its analytic mean and cv, for checking a spec.

use std::fmt::Write as _;

use serde::Serialize;

use crate::distribution::Distribution;
use crate::duration::format_ns;
use crate::error::SpecError;
use crate::taskset::Streams;

/// Number of log-spaced histogram bins.
pub const HISTOGRAM_BINS: usize = 20;

/// One histogram bin: values in `[lo_ns, hi_ns)` (the last bin includes `hi_ns`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    /// Lower edge in ns.
    pub lo_ns: f64,
    /// Upper edge in ns.
    pub hi_ns: f64,
    /// Number of samples in the bin.
    pub count: u64,
}

/// What `n` samples of a distribution look like. Quantiles are nearest-rank; `sd_ns` is the sample
/// standard deviation (n − 1). All times are nanoseconds.
///
/// ```
/// use workloads::{Distribution, Summary};
/// let d = Distribution::parse("mix(0.5:constant(10us),0.5:constant(30us))").unwrap();
/// let s = Summary::sample(&d, 10_000, 1).unwrap();
/// assert_eq!((s.min, s.max), (10_000, 30_000));
/// assert!((s.mean_ns - 20_000.0).abs() < 400.0);
/// assert_eq!(s.analytic_mean_ns, 20_000.0);
/// assert_eq!(s.histogram.iter().map(|b| b.count).sum::<u64>(), 10_000);
/// assert!(s.render_text().contains("p99.9"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The distribution's canonical spec.
    pub spec: String,
    /// Number of samples.
    pub n: usize,
    /// Sample mean.
    pub mean_ns: f64,
    /// Sample standard deviation.
    pub sd_ns: f64,
    /// Sample coefficient of variation (sd / mean; 0 when the mean is 0).
    pub cv: f64,
    /// Smallest sample.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// The distribution's analytic mean.
    pub analytic_mean_ns: f64,
    /// The distribution's analytic cv (`None`: infinite).
    pub analytic_cv: Option<f64>,
    /// Log-spaced histogram between min and max (a single bin when they are equal).
    pub histogram: Vec<Bin>,
}

/// The most samples [`Summary::sample`] draws: 2^27 (1 GiB of samples).
pub const MAX_SAMPLES: usize = 1 << 27;

impl Summary {
    /// Sample `n` costs with `seed` (the same costs [`Workload::generate`](crate::Workload::generate)
    /// gives for that seed) and summarise them. For a top-level trace: its first `n` rows (all of
    /// them when it has fewer). `n` must be at least 1.
    pub fn sample(dist: &Distribution, n: usize, seed: u64) -> Result<Summary, SpecError> {
        if n == 0 {
            return Err(SpecError::param("workload", "n", "0", ">= 1"));
        }
        if n > MAX_SAMPLES {
            return Err(SpecError::param(
                "workload",
                "n",
                n.to_string(),
                format!(
                    "at most {MAX_SAMPLES} (8 bytes a sample: {n} would need {:.1} GiB of memory)",
                    n as f64 * 8.0 / (1u64 << 30) as f64
                ),
            ));
        }
        let values: Vec<u64> = match dist.trace() {
            Some(t) => t.cost_ns()[..n.min(t.len())].to_vec(),
            None => {
                let mut v = Vec::new();
                v.try_reserve_exact(n)
                    .map_err(|_| SpecError::TooManyTasks { requested: n })?;
                let mut rng = Streams::new(seed).costs;
                v.extend((0..n).map(|_| dist.sample(&mut rng)));
                v
            }
        };
        Summary::from_samples(dist, values)
            .ok_or_else(|| SpecError::param("workload", "n", "0", ">= 1"))
    }

    /// Summarise given samples of `dist` (e.g. the costs of a generated task set). `None` when
    /// `values` is empty.
    pub fn from_samples(dist: &Distribution, mut values: Vec<u64>) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let n = values.len();
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = if n > 1 {
            values
                .iter()
                .map(|&v| (v as f64 - mean).powi(2))
                .sum::<f64>()
                / (n - 1) as f64
        } else {
            0.0
        };
        let sd = var.sqrt();
        let q = |p: f64| values[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Some(Summary {
            spec: dist.to_string(),
            n,
            mean_ns: mean,
            sd_ns: sd,
            cv: if mean > 0.0 { sd / mean } else { 0.0 },
            min: values[0],
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: values[n - 1],
            analytic_mean_ns: dist.mean_ns(),
            analytic_cv: dist.cv(),
            histogram: histogram(&values),
        })
    }

    /// The summary as a few aligned lines with human units and a text histogram.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let cv = |c: Option<f64>| c.map_or("infinite".to_string(), |c| format!("{c:.4}"));
        let _ = writeln!(out, "spec   {}", self.spec);
        let _ = writeln!(out, "n      {}", self.n);
        let _ = writeln!(
            out,
            "mean   {:<10} (analytic {})",
            format_ns(self.mean_ns),
            format_ns(self.analytic_mean_ns)
        );
        let _ = writeln!(out, "sd     {}", format_ns(self.sd_ns));
        let _ = writeln!(
            out,
            "cv     {:<10} (analytic {})",
            format!("{:.4}", self.cv),
            cv(self.analytic_cv)
        );
        for (name, v) in [
            ("min", self.min),
            ("p50", self.p50),
            ("p90", self.p90),
            ("p99", self.p99),
            ("p99.9", self.p999),
            ("max", self.max),
        ] {
            let _ = writeln!(out, "{name:<6} {}", format_ns(v as f64));
        }
        let _ = writeln!(out, "histogram (log-spaced bins)");
        let top = self
            .histogram
            .iter()
            .map(|b| b.count)
            .max()
            .unwrap_or(0)
            .max(1);
        for b in &self.histogram {
            let width = 40;
            let mut len = (b.count as f64 / top as f64 * width as f64).round() as usize;
            if b.count > 0 {
                len = len.max(1);
            }
            let _ = writeln!(
                out,
                "  {:>9} .. {:<9} |{:<width$}| {}",
                format_ns(b.lo_ns),
                format_ns(b.hi_ns),
                "#".repeat(len),
                b.count
            );
        }
        out
    }
}

/// Log-spaced bins over sorted `values`.
fn histogram(values: &[u64]) -> Vec<Bin> {
    let (min, max) = (values[0], values[values.len() - 1]);
    let lo = (min as f64).max(1.0);
    let hi = max as f64;
    if hi <= lo {
        return vec![Bin {
            lo_ns: min as f64,
            hi_ns: max as f64,
            count: values.len() as u64,
        }];
    }
    let ratio = (hi / lo).ln();
    let edge = |i: usize| {
        if i == 0 {
            min as f64
        } else if i == HISTOGRAM_BINS {
            hi
        } else {
            lo * (ratio * i as f64 / HISTOGRAM_BINS as f64).exp()
        }
    };
    let mut bins: Vec<Bin> = (0..HISTOGRAM_BINS)
        .map(|i| Bin {
            lo_ns: edge(i),
            hi_ns: edge(i + 1),
            count: 0,
        })
        .collect();
    for &v in values {
        let x = v as f64;
        let i = if x <= lo {
            0
        } else {
            ((x / lo).ln() / ratio * HISTOGRAM_BINS as f64).floor() as usize
        };
        bins[i.min(HISTOGRAM_BINS - 1)].count += 1;
    }
    bins
}
