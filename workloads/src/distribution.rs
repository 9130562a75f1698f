//! Task-cost distributions: parsing their specs, their analytic mean and cv, and sampling.
//!
//! Conversions from (mean, shape) to each textbook parameterisation are those of `docs/theory.md`.

use std::fmt;

use rand::Rng;
use rand_distr::{Distribution as _, Exp, Gamma, LogNormal, Pareto, Uniform, Weibull};

use crate::duration::format_duration;
use crate::error::{quote, SpecError};
use crate::spec::{
    find_top_level, num, parse_call, parse_number, positive, unquote, Params, MAX_DEPTH,
};
use crate::trace::Trace;

/// Samples are clamped to at most this many nanoseconds (2^53 ns, about 104 days), so that sums of
/// many samples cannot overflow and every sample is exactly representable as an `f64`.
pub const MAX_SAMPLE_NS: u64 = 1 << 53;

const KNOWN: &str = "constant, uniform, exponential, lognormal, gamma, weibull, pareto, mix, trace";

/// A distribution of task costs in nanoseconds, built from a spec string such as
/// `lognormal(mean=100us,sigma=1.5)`.
///
/// | spec | meaning |
/// |---|---|
/// | `constant(100us)`, `constant(value=100us)` | every task costs the same (0 allowed: empty tasks) |
/// | `uniform(min=10us,max=1ms)` | uniform on [min, max] |
/// | `exponential(mean=100us)` | cv 1 |
/// | `lognormal(mean=100us,sigma=1.5)` | sigma of the underlying normal; cv = √(e^{σ²} − 1) |
/// | `lognormal(mu=4.6,sigma=1,unit=us)` | textbook form: ln(cost in `unit`) ~ N(mu, sigma) |
/// | `gamma(mean=100us,k=0.5)`, `gamma(k=2,theta=50us)` | shape k, scale θ; cv = 1/√k |
/// | `weibull(mean=100us,k=0.7)` | shape k; k < 1 is heavy-tailed |
/// | `pareto(mean=100us,alpha=1.5)` | alpha > 1; cv infinite for alpha ≤ 2 |
/// | `mix(0.9:constant(20us),0.1:constant(2ms))` | weights > 0 summing to 1; specs nest |
/// | `trace(file=costs.csv)` | costs from a file, see [`Trace`] |
/// | `trace(file=pipeline.csv,stage=decode)` | one stage's rows of a multi-stage trace |
///
/// Values without a name are taken in the order shown (`lognormal(100us,1.5)`). [`Display`](fmt::Display)
/// gives a canonical spec that parses back to an equal distribution.
///
/// ```
/// use workloads::Distribution;
/// let d: Distribution = "gamma( mean = 100us , k = 4 )".parse().unwrap();
/// assert_eq!(d.to_string(), "gamma(mean=100us,k=4)");
/// assert_eq!(d.mean_ns(), 100_000.0);
/// assert_eq!(d.cv(), Some(0.5));
/// assert_eq!(Distribution::parse(&d.to_string()).unwrap(), d);
/// ```
#[derive(Debug, Clone)]
pub struct Distribution {
    spec: Spec,
    sampler: Sampler,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Ns,
    Us,
    Ms,
    S,
}

impl Unit {
    fn parse(s: &str) -> Option<Unit> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ns" => Some(Unit::Ns),
            "us" | "µs" | "μs" => Some(Unit::Us),
            "ms" => Some(Unit::Ms),
            "s" => Some(Unit::S),
            _ => None,
        }
    }
    fn ns(self) -> f64 {
        match self {
            Unit::Ns => 1.0,
            Unit::Us => 1e3,
            Unit::Ms => 1e6,
            Unit::S => 1e9,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
            Unit::Ms => "ms",
            Unit::S => "s",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Spec {
    Constant { value_ns: u64 },
    Uniform { min_ns: u64, max_ns: u64 },
    Exponential { mean_ns: u64 },
    LogNormalMean { mean_ns: u64, sigma: f64 },
    LogNormalMu { mu: f64, sigma: f64, unit: Unit },
    GammaMean { mean_ns: u64, k: f64 },
    GammaScale { k: f64, theta_ns: u64 },
    Weibull { mean_ns: u64, k: f64 },
    Pareto { mean_ns: u64, alpha: f64 },
    Mix(Vec<(f64, Distribution)>),
    Trace(Trace),
}

#[derive(Debug, Clone)]
enum Sampler {
    Constant(u64),
    Uniform(Uniform<f64>),
    Exp(Exp<f64>),
    LogNormal(LogNormal<f64>),
    Gamma(Gamma<f64>),
    Weibull(Weibull<f64>),
    Pareto(Pareto<f64>),
    /// Cumulative normalised weights of the spec's components.
    Mix(Vec<f64>),
    Trace,
}

impl PartialEq for Distribution {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

/// Round a real sample to nanoseconds, clamped to [0, [`MAX_SAMPLE_NS`]].
fn to_ns(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= MAX_SAMPLE_NS as f64 {
        MAX_SAMPLE_NS
    } else {
        x.round() as u64
    }
}

fn positive_duration(context: &str, param: &str, ns: u64) -> Result<u64, SpecError> {
    if ns > 0 {
        Ok(ns)
    } else {
        Err(SpecError::param(context, param, "0ns", "> 0"))
    }
}

fn cv_from_var(mean: f64, var: f64) -> Option<f64> {
    if !var.is_finite() || !mean.is_finite() {
        None
    } else if var <= 0.0 {
        Some(0.0)
    } else if mean <= 0.0 {
        None
    } else {
        Some(var.sqrt() / mean)
    }
}

impl Distribution {
    /// Parse a spec string (grammar in the type docs).
    ///
    /// ```
    /// use workloads::Distribution;
    /// let d = Distribution::parse("mix(0.9:constant(20us),0.1:constant(2ms))").unwrap();
    /// assert!((d.mean_ns() - 218_000.0).abs() < 1e-6);
    /// let err = Distribution::parse("lognorm(mean=1us,sigma=1)").unwrap_err();
    /// assert!(err.to_string().starts_with("unknown distribution 'lognorm' (known: constant"));
    /// ```
    pub fn parse(spec: &str) -> Result<Distribution, SpecError> {
        parse_at(spec, 0)
    }

    /// Every task costs exactly `value_ns` (0 is allowed: empty tasks, for measuring overhead).
    ///
    /// ```
    /// use workloads::Distribution;
    /// assert_eq!(Distribution::constant(5_000).to_string(), "constant(5us)");
    /// ```
    pub fn constant(value_ns: u64) -> Distribution {
        let value_ns = value_ns.min(MAX_SAMPLE_NS);
        Distribution {
            spec: Spec::Constant { value_ns },
            sampler: Sampler::Constant(value_ns),
        }
    }

    /// The distribution's name as in its spec: `lognormal`, `mix`, ...
    pub fn name(&self) -> &'static str {
        match &self.spec {
            Spec::Constant { .. } => "constant",
            Spec::Uniform { .. } => "uniform",
            Spec::Exponential { .. } => "exponential",
            Spec::LogNormalMean { .. } | Spec::LogNormalMu { .. } => "lognormal",
            Spec::GammaMean { .. } | Spec::GammaScale { .. } => "gamma",
            Spec::Weibull { .. } => "weibull",
            Spec::Pareto { .. } => "pareto",
            Spec::Mix(_) => "mix",
            Spec::Trace(_) => "trace",
        }
    }

    /// The trace, when this distribution is `trace(file=...)` (not one nested inside a `mix`).
    pub fn trace(&self) -> Option<&Trace> {
        match &self.spec {
            Spec::Trace(t) => Some(t),
            _ => None,
        }
    }

    /// The analytic mean in nanoseconds (for a trace: the mean of its costs).
    ///
    /// ```
    /// use workloads::Distribution;
    /// let d = Distribution::parse("lognormal(mu=0,sigma=1,unit=ms)").unwrap();
    /// assert!((d.mean_ns() - 1e6 * 0.5f64.exp()).abs() < 1e-3);
    /// ```
    pub fn mean_ns(&self) -> f64 {
        match &self.spec {
            Spec::Constant { value_ns } => *value_ns as f64,
            Spec::Uniform { min_ns, max_ns } => (*min_ns as f64 + *max_ns as f64) / 2.0,
            Spec::Exponential { mean_ns }
            | Spec::LogNormalMean { mean_ns, .. }
            | Spec::GammaMean { mean_ns, .. }
            | Spec::Weibull { mean_ns, .. }
            | Spec::Pareto { mean_ns, .. } => *mean_ns as f64,
            Spec::LogNormalMu { mu, sigma, unit } => unit.ns() * (mu + sigma * sigma / 2.0).exp(),
            Spec::GammaScale { k, theta_ns } => k * *theta_ns as f64,
            Spec::Mix(parts) => {
                let total: f64 = parts.iter().map(|(w, _)| w).sum();
                parts.iter().map(|(w, d)| w / total * d.mean_ns()).sum()
            }
            Spec::Trace(t) => t.mean_ns(),
        }
    }

    /// The analytic coefficient of variation (standard deviation / mean); `None` when it is infinite
    /// (pareto with alpha ≤ 2, or a mix containing one) or not representable. For a trace: its
    /// costs' empirical cv.
    ///
    /// ```
    /// use workloads::Distribution;
    /// assert_eq!(Distribution::parse("exponential(mean=1ms)").unwrap().cv(), Some(1.0));
    /// assert_eq!(Distribution::parse("pareto(mean=1ms,alpha=1.5)").unwrap().cv(), None);
    /// ```
    pub fn cv(&self) -> Option<f64> {
        match &self.spec {
            Spec::Constant { .. } => Some(0.0),
            Spec::Uniform { min_ns, max_ns } => {
                let (a, b) = (*min_ns as f64, *max_ns as f64);
                if a + b == 0.0 {
                    Some(0.0)
                } else {
                    Some((b - a) / (3f64.sqrt() * (a + b)))
                }
            }
            Spec::Exponential { .. } => Some(1.0),
            Spec::LogNormalMean { sigma, .. } | Spec::LogNormalMu { sigma, .. } => {
                let cv = (sigma * sigma).exp_m1().sqrt();
                cv.is_finite().then_some(cv)
            }
            Spec::GammaMean { k, .. } | Spec::GammaScale { k, .. } => Some(1.0 / k.sqrt()),
            Spec::Weibull { k, .. } => {
                let ratio = (libm::lgamma(1.0 + 2.0 / k) - 2.0 * libm::lgamma(1.0 + 1.0 / k)).exp();
                let cv = (ratio - 1.0).max(0.0).sqrt();
                cv.is_finite().then_some(cv)
            }
            Spec::Pareto { alpha, .. } => {
                (*alpha > 2.0).then(|| 1.0 / (alpha * (alpha - 2.0)).sqrt())
            }
            Spec::Mix(parts) => {
                let total: f64 = parts.iter().map(|(w, _)| w).sum();
                let m = self.mean_ns();
                let mut second = 0.0;
                for (w, d) in parts {
                    let mi = d.mean_ns();
                    let vi = (d.cv()? * mi).powi(2);
                    second += w / total * (vi + mi * mi);
                }
                cv_from_var(m, (second - m * m).max(0.0))
            }
            Spec::Trace(t) => Some(t.cv()),
        }
    }

    /// Draw one cost in nanoseconds: the real sample rounded to the nearest ns and clamped to
    /// [0, [`MAX_SAMPLE_NS`]]. A `trace` nested in a `mix` (or sampled directly) gives one of its costs
    /// chosen uniformly at random; [`Workload::generate`](crate::Workload::generate) replays a top-level
    /// trace in file order instead.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use workloads::Distribution;
    /// let d = Distribution::parse("uniform(min=10us,max=20us)").unwrap();
    /// let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
    /// let x = d.sample(&mut rng);
    /// assert!((10_000..=20_000).contains(&x));
    /// ```
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match &self.sampler {
            Sampler::Constant(v) => *v,
            Sampler::Uniform(d) => to_ns(d.sample(rng)),
            Sampler::Exp(d) => to_ns(d.sample(rng)),
            Sampler::LogNormal(d) => to_ns(d.sample(rng)),
            Sampler::Gamma(d) => to_ns(d.sample(rng)),
            Sampler::Weibull(d) => to_ns(d.sample(rng)),
            Sampler::Pareto(d) => to_ns(d.sample(rng)),
            Sampler::Mix(cumulative) => {
                let Spec::Mix(parts) = &self.spec else {
                    return 0;
                };
                let u: f64 = rng.gen();
                let i = cumulative
                    .iter()
                    .position(|&c| u < c)
                    .unwrap_or(parts.len() - 1);
                parts[i].1.sample(rng)
            }
            Sampler::Trace => {
                let Spec::Trace(t) = &self.spec else {
                    return 0;
                };
                let costs = t.cost_ns();
                costs[rng.gen_range(0..costs.len())]
            }
        }
    }

    fn build(spec: Spec) -> Result<Distribution, SpecError> {
        let ctx = |e: rand_distr::NormalError| SpecError::invalid("lognormal", e.to_string());
        let sampler = match &spec {
            Spec::Constant { value_ns } => Sampler::Constant(*value_ns),
            Spec::Uniform { min_ns, max_ns } => {
                Sampler::Uniform(Uniform::new_inclusive(*min_ns as f64, *max_ns as f64))
            }
            Spec::Exponential { mean_ns } => Sampler::Exp(
                Exp::new(1.0 / *mean_ns as f64)
                    .map_err(|e| SpecError::invalid("exponential", e.to_string()))?,
            ),
            Spec::LogNormalMean { mean_ns, sigma } => {
                // μ = ln m − σ²/2: past σ ≈ 1.9e154 it is −∞ and every sample was 0 ns.
                let mu = (*mean_ns as f64).ln() - sigma * sigma / 2.0;
                if !mu.is_finite() {
                    return Err(SpecError::param(
                        "lognormal",
                        "sigma",
                        num(*sigma),
                        "small enough that μ = ln(mean) − σ²/2 is finite (e.g. sigma <= 10)",
                    ));
                }
                Sampler::LogNormal(LogNormal::new(mu, *sigma).map_err(ctx)?)
            }
            Spec::LogNormalMu { mu, sigma, unit } => {
                Sampler::LogNormal(LogNormal::new(mu + unit.ns().ln(), *sigma).map_err(ctx)?)
            }
            Spec::GammaMean { mean_ns, k } => Sampler::Gamma(
                Gamma::new(*k, *mean_ns as f64 / k)
                    .map_err(|e| SpecError::invalid("gamma", e.to_string()))?,
            ),
            Spec::GammaScale { k, theta_ns } => Sampler::Gamma(
                Gamma::new(*k, *theta_ns as f64)
                    .map_err(|e| SpecError::invalid("gamma", e.to_string()))?,
            ),
            Spec::Weibull { mean_ns, k } => {
                // λ = m / Γ(1 + 1/k), through ln Γ so that small k does not overflow.
                let scale = ((*mean_ns as f64).ln() - libm::lgamma(1.0 + 1.0 / k)).exp();
                if !(scale.is_finite() && scale > 0.0) {
                    return Err(SpecError::param(
                        "weibull",
                        "k",
                        num(*k),
                        "large enough that the scale m/Γ(1+1/k) is representable (e.g. k >= 0.01)",
                    ));
                }
                Sampler::Weibull(
                    Weibull::new(scale, *k)
                        .map_err(|e| SpecError::invalid("weibull", e.to_string()))?,
                )
            }
            Spec::Pareto { mean_ns, alpha } => {
                let scale = *mean_ns as f64 * (alpha - 1.0) / alpha;
                Sampler::Pareto(
                    Pareto::new(scale, *alpha)
                        .map_err(|e| SpecError::invalid("pareto", e.to_string()))?,
                )
            }
            Spec::Mix(parts) => {
                let total: f64 = parts.iter().map(|(w, _)| w).sum();
                let mut acc = 0.0;
                let mut cumulative: Vec<f64> = parts
                    .iter()
                    .map(|(w, _)| {
                        acc += w / total;
                        acc
                    })
                    .collect();
                if let Some(last) = cumulative.last_mut() {
                    *last = f64::INFINITY;
                }
                Sampler::Mix(cumulative)
            }
            Spec::Trace(_) => Sampler::Trace,
        };
        Ok(Distribution { spec, sampler })
    }
}

fn parse_at(spec: &str, depth: usize) -> Result<Distribution, SpecError> {
    if depth > MAX_DEPTH {
        return Err(SpecError::invalid(
            "mix",
            format!("specs nest more than {MAX_DEPTH} levels deep"),
        ));
    }
    let call = parse_call(spec, "distribution")?;
    let spec = match call.name.as_str() {
        "constant" => {
            let p = Params::collect(&call, "constant", &["value"], &["value"])?;
            Spec::Constant {
                value_ns: p
                    .require_duration("value", "use constant(100us)")?
                    .min(MAX_SAMPLE_NS),
            }
        }
        "uniform" => {
            let p = Params::collect(&call, "uniform", &["min", "max"], &["min", "max"])?;
            let hint = "use uniform(min=10us,max=1ms)";
            let min_ns = p.require_duration("min", hint)?;
            let max_ns = p.require_duration("max", hint)?;
            if max_ns <= min_ns {
                return Err(SpecError::param(
                    "uniform",
                    "max",
                    format_duration(max_ns),
                    format!("> min ({})", format_duration(min_ns)),
                ));
            }
            Spec::Uniform { min_ns, max_ns }
        }
        "exponential" => {
            let p = Params::collect(&call, "exponential", &["mean"], &["mean"])?;
            let mean = p.require_duration("mean", "use exponential(mean=100us)")?;
            Spec::Exponential {
                mean_ns: positive_duration("exponential", "mean", mean)?,
            }
        }
        "lognormal" => parse_lognormal(&call)?,
        "gamma" => parse_gamma(&call)?,
        "weibull" => {
            let p = Params::collect(&call, "weibull", &["mean", "k"], &["mean", "k"])?;
            let hint = "use weibull(mean=100us,k=0.7)";
            let mean = p.require_duration("mean", hint)?;
            let k = p.require_number("k", hint)?;
            Spec::Weibull {
                mean_ns: positive_duration("weibull", "mean", mean)?,
                k: positive("weibull", "k", k)?,
            }
        }
        "pareto" => {
            let p = Params::collect(&call, "pareto", &["mean", "alpha"], &["mean", "alpha"])?;
            let hint = "use pareto(mean=100us,alpha=1.5)";
            let mean = p.require_duration("mean", hint)?;
            let alpha = p.require_number("alpha", hint)?;
            if alpha <= 1.0 {
                return Err(SpecError::param(
                    "pareto",
                    "alpha",
                    num(alpha),
                    "> 1 (the mean is infinite otherwise)",
                ));
            }
            Spec::Pareto {
                mean_ns: positive_duration("pareto", "mean", mean)?,
                alpha,
            }
        }
        "mix" => parse_mix(&call, depth)?,
        "trace" => {
            let p = Params::collect(&call, "trace", &["file", "stage"], &["file"])?;
            let file = p
                .raw("file")
                .ok_or_else(|| p.missing("file", "use trace(file=path.csv)"))?;
            Spec::Trace(Trace::load_stage(
                unquote(file),
                p.raw("stage").map(unquote),
            )?)
        }
        other => {
            return Err(SpecError::UnknownName {
                what: "distribution",
                name: other.to_string(),
                known: KNOWN.to_string(),
            })
        }
    };
    Distribution::build(spec)
}

fn parse_lognormal(call: &crate::spec::Call<'_>) -> Result<Spec, SpecError> {
    let p = Params::collect(
        call,
        "lognormal",
        &["mean", "sigma", "mu", "unit"],
        &["mean", "sigma"],
    )?;
    let sigma = p.require_number(
        "sigma",
        "use lognormal(mean=100us,sigma=1.5) or lognormal(mu=4.6,sigma=1.5,unit=us)",
    )?;
    let sigma = positive("lognormal", "sigma", sigma)?;
    match (p.has("mean"), p.has("mu")) {
        (true, true) => Err(SpecError::invalid(
            "lognormal",
            "give either mean (with sigma) or mu (with sigma and unit), not both",
        )),
        (true, false) => {
            if p.has("unit") {
                return Err(SpecError::invalid(
                    "lognormal",
                    "unit goes with mu; mean is already a duration (e.g. mean=100us)",
                ));
            }
            let mean = p.require_duration("mean", "")?;
            Ok(Spec::LogNormalMean {
                mean_ns: positive_duration("lognormal", "mean", mean)?,
                sigma,
            })
        }
        (false, true) => {
            let mu = p.require_number("mu", "")?;
            let unit_raw = p.raw("unit").ok_or_else(|| {
                p.missing(
                    "unit",
                    "mu is the log of a time in that unit: add unit=ns, us, ms or s",
                )
            })?;
            let unit = Unit::parse(unit_raw).ok_or_else(|| {
                SpecError::param("lognormal", "unit", quote(unit_raw), "ns, us, ms or s")
            })?;
            Ok(Spec::LogNormalMu { mu, sigma, unit })
        }
        (false, false) => Err(p.missing(
            "mean",
            "use lognormal(mean=100us,sigma=1.5) or lognormal(mu=4.6,sigma=1.5,unit=us)",
        )),
    }
}

fn parse_gamma(call: &crate::spec::Call<'_>) -> Result<Spec, SpecError> {
    let p = Params::collect(call, "gamma", &["mean", "k", "theta"], &["mean", "k"])?;
    let hint = "use gamma(mean=100us,k=0.5) or gamma(k=2,theta=50us)";
    let k = positive("gamma", "k", p.require_number("k", hint)?)?;
    match (p.duration("mean")?, p.duration("theta")?) {
        (Some(_), Some(_)) => Err(SpecError::invalid(
            "gamma",
            "give either mean or theta with k, not both",
        )),
        (Some(mean), None) => Ok(Spec::GammaMean {
            mean_ns: positive_duration("gamma", "mean", mean)?,
            k,
        }),
        (None, Some(theta)) => Ok(Spec::GammaScale {
            k,
            theta_ns: positive_duration("gamma", "theta", theta)?,
        }),
        (None, None) => Err(p.missing("mean", hint)),
    }
}

fn parse_mix(call: &crate::spec::Call<'_>, depth: usize) -> Result<Spec, SpecError> {
    if call.args.is_empty() {
        return Err(SpecError::invalid(
            "mix",
            "needs at least one WEIGHT:SPEC, e.g. mix(0.9:constant(20us),0.1:constant(2ms))",
        ));
    }
    let mut parts = Vec::with_capacity(call.args.len());
    for (i, arg) in call.args.iter().enumerate() {
        let colon = find_top_level(arg, ':').ok_or_else(|| {
            SpecError::invalid(
                "mix",
                format!(
                    "component {} {} must be WEIGHT:SPEC, e.g. 0.9:constant(20us)",
                    i + 1,
                    quote(arg)
                ),
            )
        })?;
        let param = format!("weight of component {}", i + 1);
        let weight = parse_number("mix", &param, &arg[..colon])?;
        if weight <= 0.0 {
            return Err(SpecError::param("mix", param, num(weight), "> 0"));
        }
        parts.push((weight, parse_at(&arg[colon + 1..], depth + 1)?));
    }
    let total: f64 = parts.iter().map(|(w, _)| w).sum();
    if (total - 1.0).abs() > 1e-6 {
        let list: Vec<String> = parts.iter().map(|(w, _)| num(*w)).collect();
        return Err(SpecError::invalid(
            "mix",
            format!(
                "weights must sum to 1, got {} ({})",
                num(total),
                list.join(" + ")
            ),
        ));
    }
    Ok(Spec::Mix(parts))
}

/// Quote a path for a spec when it contains characters the grammar uses.
fn spec_path(path: &str) -> String {
    let special = |c: char| matches!(c, ',' | '(' | ')' | '"' | '\'') || c.is_whitespace();
    if !path.chars().any(special) {
        path.to_string()
    } else if !path.contains('"') {
        format!("\"{path}\"")
    } else {
        format!("'{path}'")
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |ns: &u64| format_duration(*ns);
        match &self.spec {
            Spec::Constant { value_ns } => write!(f, "constant({})", d(value_ns)),
            Spec::Uniform { min_ns, max_ns } => {
                write!(f, "uniform(min={},max={})", d(min_ns), d(max_ns))
            }
            Spec::Exponential { mean_ns } => write!(f, "exponential(mean={})", d(mean_ns)),
            Spec::LogNormalMean { mean_ns, sigma } => {
                write!(f, "lognormal(mean={},sigma={})", d(mean_ns), num(*sigma))
            }
            Spec::LogNormalMu { mu, sigma, unit } => write!(
                f,
                "lognormal(mu={},sigma={},unit={})",
                num(*mu),
                num(*sigma),
                unit.name()
            ),
            Spec::GammaMean { mean_ns, k } => {
                write!(f, "gamma(mean={},k={})", d(mean_ns), num(*k))
            }
            Spec::GammaScale { k, theta_ns } => {
                write!(f, "gamma(k={},theta={})", num(*k), d(theta_ns))
            }
            Spec::Weibull { mean_ns, k } => {
                write!(f, "weibull(mean={},k={})", d(mean_ns), num(*k))
            }
            Spec::Pareto { mean_ns, alpha } => {
                write!(f, "pareto(mean={},alpha={})", d(mean_ns), num(*alpha))
            }
            Spec::Mix(parts) => {
                f.write_str("mix(")?;
                for (i, (w, dist)) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{dist}", num(*w))?;
                }
                f.write_str(")")
            }
            Spec::Trace(t) => {
                write!(
                    f,
                    "trace(file={}",
                    spec_path(&t.path().display().to_string())
                )?;
                if let Some(stage) = t.stage() {
                    write!(f, ",stage={}", spec_path(stage))?;
                }
                f.write_str(")")
            }
        }
    }
}

spec_string!(Distribution);
