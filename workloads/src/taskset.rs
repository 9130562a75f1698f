//! A workload (distribution + estimate error + arrivals) and the task set it generates from a seed.

use rand::{RngCore, SeedableRng};
use rand_distr::{Distribution as _, Normal};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use crate::arrivals::Arrivals;
use crate::distribution::{Distribution, MAX_SAMPLE_NS};
use crate::error::SpecError;

/// The three independent random streams of a seed.
///
/// `Pcg64::seed_from_u64(seed)` is the master; its first three `next_u64()` outputs seed (with
/// `Pcg64::seed_from_u64` again) the cost, estimate and arrival streams, in that order. Each quantity
/// therefore depends only on the seed and its own settings: changing `estimate_error` or the arrival
/// process leaves the costs unchanged.
pub(crate) struct Streams {
    pub costs: Pcg64,
    pub estimates: Pcg64,
    pub arrivals: Pcg64,
}

impl Streams {
    pub fn new(seed: u64) -> Streams {
        let mut master = Pcg64::seed_from_u64(seed);
        let costs = Pcg64::seed_from_u64(master.next_u64());
        let estimates = Pcg64::seed_from_u64(master.next_u64());
        let arrivals = Pcg64::seed_from_u64(master.next_u64());
        Streams {
            costs,
            estimates,
            arrivals,
        }
    }
}

/// Check an estimate error (the sigma of the log-normal estimate factor): finite and ≥ 0.
///
/// ```
/// assert_eq!(workloads::validate_estimate_error(0.3).unwrap(), 0.3);
/// assert!(workloads::validate_estimate_error(-0.1).is_err());
/// assert!(workloads::validate_estimate_error(f64::NAN).is_err());
/// ```
pub fn validate_estimate_error(sigma: f64) -> Result<f64, SpecError> {
    if sigma.is_finite() && sigma >= 0.0 {
        Ok(sigma)
    } else {
        Err(SpecError::param(
            "workload",
            "estimate_error",
            sigma.to_string(),
            "a finite number >= 0 (0 = exact estimates)",
        ))
    }
}

/// Parse and check an estimate error given as text, e.g. `0.3`.
///
/// ```
/// assert_eq!(workloads::parse_estimate_error("0.3").unwrap(), 0.3);
/// assert!(workloads::parse_estimate_error("lots").is_err());
/// ```
pub fn parse_estimate_error(s: &str) -> Result<f64, SpecError> {
    let x = crate::spec::parse_number("workload", "estimate_error", s)?;
    validate_estimate_error(x)
}

/// Everything that decides a task population, apart from its size and seed.
///
/// ```
/// use workloads::{Arrivals, Distribution, Workload};
/// let w = Workload {
///     distribution: Distribution::parse("exponential(mean=100us)").unwrap(),
///     estimate_error: 0.3,
///     arrivals: Arrivals::Poisson { rate_per_s: 10_000.0 },
/// };
/// let tasks = w.generate(1000, 42).unwrap();
/// assert_eq!(tasks.len(), 1000);
/// assert_eq!(tasks, w.generate(1000, 42).unwrap());
/// assert!(tasks.arrival_ns.windows(2).all(|p| p[0] <= p[1]));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Distribution of the nominal task costs.
    pub distribution: Distribution,
    /// Sigma of the log-normal factor applied to each estimate (0 = estimates are exact).
    pub estimate_error: f64,
    /// When tasks are released.
    pub arrivals: Arrivals,
}

impl Workload {
    /// A closed workload with exact estimates.
    pub fn new(distribution: Distribution) -> Workload {
        Workload {
            distribution,
            estimate_error: 0.0,
            arrivals: Arrivals::Closed,
        }
    }

    /// Generate `n` tasks from `seed`. The same seed gives the same [`TaskSet`] on every machine
    /// (PCG-64 streams, see the crate docs).
    ///
    /// - Costs: `n` draws from the distribution. A top-level `trace(file=...)` is replayed in file
    ///   order instead: its first `n` rows; asking for more tasks than it has rows is an error.
    /// - Estimates: `cost × exp(N(−s²/2, s))` with `s = estimate_error`, a factor whose mean is 1;
    ///   with `s = 0` every estimate equals its cost.
    /// - Arrivals: see [`Arrivals`]; `Arrivals::Trace` needs a top-level trace with arrival times.
    ///
    /// Errors: an invalid `estimate_error`, a trace that is too short or has no arrivals when they
    /// are asked for, or an `n` too large to allocate.
    pub fn generate(&self, n: usize, seed: u64) -> Result<TaskSet, SpecError> {
        let s = validate_estimate_error(self.estimate_error)?;
        let mut streams = Streams::new(seed);
        let trace = self.distribution.trace();
        if let Some(t) = trace {
            if n > t.len() {
                return Err(SpecError::TraceTooShort {
                    file: t.path().display().to_string(),
                    rows: t.len(),
                    requested: n,
                });
            }
        }
        let mut cost_ns = alloc(n)?;
        match trace {
            Some(t) => cost_ns.extend_from_slice(&t.cost_ns()[..n]),
            None => cost_ns.extend((0..n).map(|_| self.distribution.sample(&mut streams.costs))),
        }
        let mut estimate_ns = alloc(n)?;
        if s == 0.0 {
            estimate_ns.extend_from_slice(&cost_ns);
        } else {
            let factor = Normal::new(-s * s / 2.0, s)
                .map_err(|e| SpecError::invalid("workload", e.to_string()))?;
            estimate_ns.extend(cost_ns.iter().map(|&c| {
                let e = c as f64 * factor.sample(&mut streams.estimates).exp();
                if e.is_nan() {
                    0
                } else {
                    (e.round().min(MAX_SAMPLE_NS as f64)) as u64
                }
            }));
        }
        let mut arrival_ns = alloc(n)?;
        match self.arrivals {
            Arrivals::Trace => {
                let times = trace.and_then(|t| t.arrival_ns()).ok_or_else(|| {
                    SpecError::invalid(
                        "arrivals",
                        match trace {
                            Some(t) => format!(
                                "trace needs arrival times, but {} has no 'arrival' or 'arrival_ns' column",
                                t.path().display()
                            ),
                            None => format!(
                                "trace replays the arrival times of a trace(file=...) workload, not of {}",
                                self.distribution.name()
                            ),
                        },
                    )
                })?;
                arrival_ns.extend_from_slice(&times[..n]);
            }
            other => arrival_ns.extend(other.times(n, &mut streams.arrivals)),
        }
        if let (Arrivals::Poisson { rate_per_s }, Some(&last)) = (self.arrivals, arrival_ns.last())
        {
            if last >= MAX_SAMPLE_NS {
                return Err(SpecError::invalid(
                    "arrivals",
                    format!(
                        "{n} tasks at poisson(rate={}/s) arrive over more than 2^53 ns (about \
                         104 days), past what arrival times hold; raise the rate or ask for \
                         fewer tasks",
                        crate::spec::num(rate_per_s)
                    ),
                ));
            }
        }
        Ok(TaskSet {
            cost_ns,
            estimate_ns,
            arrival_ns,
        })
    }
}

fn alloc(n: usize) -> Result<Vec<u64>, SpecError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| SpecError::TooManyTasks { requested: n })?;
    Ok(v)
}

/// The tasks of one run: index `i` is task `i`, with its nominal cost, the estimate a scheduler sees
/// and its release time, all in nanoseconds.
///
/// ```
/// use workloads::{Distribution, Workload};
/// let t = Workload::new(Distribution::constant(10)).generate(3, 0).unwrap();
/// assert_eq!(t.cost_ns, vec![10, 10, 10]);
/// assert_eq!(t.estimate_ns, t.cost_ns);
/// assert_eq!(t.arrival_ns, vec![0, 0, 0]);
/// assert_eq!((t.total_work_ns(), t.max_cost_ns()), (30, 10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskSet {
    /// Nominal cost of each task.
    pub cost_ns: Vec<u64>,
    /// What a scheduler is told each task will cost.
    pub estimate_ns: Vec<u64>,
    /// When each task is released (nondecreasing).
    pub arrival_ns: Vec<u64>,
}

impl TaskSet {
    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.cost_ns.len()
    }

    /// Whether there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.cost_ns.is_empty()
    }

    /// Sum of all costs (saturating at `u64::MAX`).
    pub fn total_work_ns(&self) -> u64 {
        let sum: u128 = self.cost_ns.iter().map(|&c| c as u128).sum();
        sum.min(u64::MAX as u128) as u64
    }

    /// The largest cost (0 when empty).
    pub fn max_cost_ns(&self) -> u64 {
        self.cost_ns.iter().copied().max().unwrap_or(0)
    }

    /// The mean cost (0 when empty).
    pub fn mean_cost_ns(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.cost_ns.iter().map(|&c| c as f64).sum::<f64>() / self.len() as f64
        }
    }

    /// The last release time (0 when empty).
    pub fn last_arrival_ns(&self) -> u64 {
        self.arrival_ns.iter().copied().max().unwrap_or(0)
    }
}
