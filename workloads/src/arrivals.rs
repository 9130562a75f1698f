//! When tasks are released: all at once (`closed`), as a Poisson process, or as a trace says.

use std::fmt;

use rand::Rng;
use rand_distr::{Distribution as _, Exp};

use crate::error::{quote, SpecError};
use crate::spec::{num, parse_call, Params};

/// The arrival process of a workload.
///
/// Specs: `closed` (every task released at 0), `poisson(rate=20000/s)` (exponential gaps with mean
/// 1/rate; the rate may be written per `s` (also a bare number), `ms`, `us` or `ns`), and `trace`
/// (the `arrival`/`arrival_ns` column of the workload's trace file).
///
/// ```
/// use workloads::Arrivals;
/// let a: Arrivals = "poisson(rate=20/ms)".parse().unwrap();
/// assert_eq!(a, Arrivals::Poisson { rate_per_s: 20_000.0 });
/// assert_eq!(a.to_string(), "poisson(rate=20000/s)");
/// assert_eq!("closed".parse::<Arrivals>().unwrap(), Arrivals::Closed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Arrivals {
    /// A batch: all tasks released at time 0.
    #[default]
    Closed,
    /// An open system: a Poisson process; the first task arrives after one gap.
    Poisson {
        /// Mean arrivals per second (> 0, finite).
        rate_per_s: f64,
    },
    /// Replay the arrival times of the workload's `trace(file=...)` (the file must have them).
    Trace,
}

impl Arrivals {
    /// Parse `closed`, `poisson(rate=R[/s|/ms|/us|/ns])` or `trace`.
    pub fn parse(spec: &str) -> Result<Arrivals, SpecError> {
        let call = parse_call(spec, "arrivals")?;
        match call.name.as_str() {
            "closed" | "trace" => {
                if !call.args.is_empty() {
                    return Err(SpecError::invalid(
                        "arrivals",
                        format!("{} takes no parameters", call.name),
                    ));
                }
                Ok(if call.name == "closed" {
                    Arrivals::Closed
                } else {
                    Arrivals::Trace
                })
            }
            "poisson" => {
                let p = Params::collect(&call, "poisson", &["rate"], &["rate"])?;
                let raw = p
                    .raw("rate")
                    .ok_or_else(|| p.missing("rate", "use poisson(rate=20000/s)"))?;
                Ok(Arrivals::Poisson {
                    rate_per_s: parse_rate(raw)?,
                })
            }
            other => Err(SpecError::UnknownName {
                what: "arrival process",
                name: other.to_string(),
                known: "closed, poisson(rate=20000/s), trace".into(),
            }),
        }
    }

    /// Release times for `n` tasks, from `rng`. `Trace` is resolved by
    /// [`Workload::generate`](crate::Workload::generate); here it gives all zeros like `Closed`.
    pub(crate) fn times<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Vec<u64> {
        match self {
            Arrivals::Closed | Arrivals::Trace => vec![0; n],
            Arrivals::Poisson { rate_per_s } => {
                let Ok(gap) = Exp::new(rate_per_s / 1e9) else {
                    return vec![0; n];
                };
                let mut t = 0.0f64;
                (0..n)
                    .map(|_| {
                        t += gap.sample(rng);
                        // Round the running time, not each gap, so rounding does not accumulate.
                        if t >= crate::MAX_SAMPLE_NS as f64 {
                            crate::MAX_SAMPLE_NS
                        } else {
                            t.round() as u64
                        }
                    })
                    .collect()
            }
        }
    }
}

/// The slowest Poisson rate accepted: one arrival per 2^53 ns (about 104 days) on average.
/// Slower processes would put arrival times past what the task set holds.
pub const MIN_RATE_PER_S: f64 = 1e9 / crate::MAX_SAMPLE_NS as f64;

fn parse_rate(raw: &str) -> Result<f64, SpecError> {
    let (num, per) = match raw.split_once('/') {
        Some((n, u)) => (n.trim(), u.trim()),
        None => (raw.trim(), "s"),
    };
    let per_s = match per.to_ascii_lowercase().as_str() {
        "s" => 1.0,
        "ms" => 1e3,
        "us" | "µs" | "μs" => 1e6,
        "ns" => 1e9,
        _ => {
            return Err(SpecError::param(
                "poisson",
                "rate",
                quote(raw),
                "a number per s, ms, us or ns, e.g. 20000/s",
            ))
        }
    };
    let rate = num
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite())
        .ok_or_else(|| {
            SpecError::param(
                "poisson",
                "rate",
                quote(raw),
                "a number per s, ms, us or ns, e.g. 20000/s",
            )
        })?
        * per_s;
    if !(rate > 0.0 && rate.is_finite()) {
        return Err(SpecError::param("poisson", "rate", quote(raw), "> 0"));
    }
    if rate < MIN_RATE_PER_S {
        return Err(SpecError::param(
            "poisson",
            "rate",
            quote(raw),
            format!(
                "at least {}/s (a mean gap of at most 2^53 ns, about 104 days: arrival times \
                 are kept below that)",
                crate::spec::num(MIN_RATE_PER_S)
            ),
        ));
    }
    Ok(rate)
}

impl fmt::Display for Arrivals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arrivals::Closed => f.write_str("closed"),
            Arrivals::Poisson { rate_per_s } => write!(f, "poisson(rate={}/s)", num(*rate_per_s)),
            Arrivals::Trace => f.write_str("trace"),
        }
    }
}

spec_string!(Arrivals);
