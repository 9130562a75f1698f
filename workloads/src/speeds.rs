//! Worker speed factors: a task of cost c takes c / speed on a worker of that speed.

use std::fmt;

use crate::error::{quote, SpecError};
use crate::spec::{num, parse_number};

/// Speeds of the workers: an explicit list or a named profile.
///
/// - `1,1,0.5,0.5`: one factor per worker, each finite and > 0;
/// - `uniform`: every worker has speed 1;
/// - `big-little`: the first ⌈P/2⌉ workers have speed 1.0, the other ⌊P/2⌋ have 0.5
///   (so with an odd count the extra worker is a big one).
///
/// ```
/// use workloads::{parse_speeds, Speeds};
/// assert_eq!(parse_speeds("big-little").unwrap().resolve(3).unwrap(), vec![1.0, 1.0, 0.5]);
/// assert_eq!(parse_speeds("1, 0.5").unwrap(), Speeds::List(vec![1.0, 0.5]));
/// let err = parse_speeds("1,0.5").unwrap().resolve(4).unwrap_err();
/// assert!(err.to_string().contains("2 speeds given for 4 workers"));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Speeds {
    /// Every worker at speed 1.
    #[default]
    Uniform,
    /// Half the workers at 1.0, the rest at 0.5 (see the type docs).
    BigLittle,
    /// One factor per worker.
    List(Vec<f64>),
}

/// Parse a speed list or profile; same as [`Speeds::parse`].
pub fn parse_speeds(s: &str) -> Result<Speeds, SpecError> {
    Speeds::parse(s)
}

impl Speeds {
    /// Parse `uniform`, `big-little` or a comma-separated list of positive factors.
    pub fn parse(s: &str) -> Result<Speeds, SpecError> {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "uniform" => return Ok(Speeds::Uniform),
            "big-little" | "big_little" | "biglittle" => return Ok(Speeds::BigLittle),
            "" => {
                return Err(SpecError::invalid(
                    "speeds",
                    "empty (use uniform, big-little or a list such as 1,1,0.5,0.5)",
                ))
            }
            _ => {}
        }
        let first = t.chars().next().unwrap_or(' ');
        if first.is_ascii_alphabetic() && t.parse::<f64>().is_err() {
            return Err(SpecError::UnknownName {
                what: "speed profile",
                name: t.to_string(),
                known: "uniform, big-little, or a list such as 1,1,0.5,0.5".into(),
            });
        }
        let mut list = Vec::new();
        for (i, part) in t.split(',').enumerate() {
            let param = format!("speed {}", i + 1);
            if part.trim().is_empty() {
                return Err(SpecError::param(
                    "speeds",
                    param,
                    quote(part),
                    "a number > 0",
                ));
            }
            let x = parse_number("speeds", &param, part)?;
            if x <= 0.0 {
                return Err(SpecError::param("speeds", param, num(x), "> 0"));
            }
            list.push(x);
        }
        Ok(Speeds::List(list))
    }

    /// The speed of each of `workers` workers.
    pub fn resolve(&self, workers: usize) -> Result<Vec<f64>, SpecError> {
        if workers == 0 {
            return Err(SpecError::param("speeds", "workers", "0", ">= 1"));
        }
        match self {
            Speeds::Uniform => Ok(vec![1.0; workers]),
            Speeds::BigLittle => Ok((0..workers)
                .map(|w| if w < workers.div_ceil(2) { 1.0 } else { 0.5 })
                .collect()),
            Speeds::List(list) => {
                if list.len() != workers {
                    return Err(SpecError::SpeedsLength {
                        given: list.len(),
                        workers,
                    });
                }
                if let Some((i, x)) = list
                    .iter()
                    .enumerate()
                    .find(|(_, x)| !(x.is_finite() && **x > 0.0))
                {
                    return Err(SpecError::param(
                        "speeds",
                        format!("speed {}", i + 1),
                        num(*x),
                        "finite and > 0",
                    ));
                }
                Ok(list.clone())
            }
        }
    }
}

/// How long a task of `cost_ns` takes on a worker of `speed`: `cost / speed`, rounded, saturating.
/// A speed that is not finite and positive is treated as 1.
///
/// ```
/// assert_eq!(workloads::scaled_cost(100, 0.5), 200);
/// assert_eq!(workloads::scaled_cost(100, 2.0), 50);
/// ```
pub fn scaled_cost(cost_ns: u64, speed: f64) -> u64 {
    if !(speed.is_finite() && speed > 0.0) || speed == 1.0 {
        return cost_ns;
    }
    let t = (cost_ns as f64 / speed).round();
    if t >= u64::MAX as f64 {
        u64::MAX
    } else {
        t as u64
    }
}

impl fmt::Display for Speeds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Speeds::Uniform => f.write_str("uniform"),
            Speeds::BigLittle => f.write_str("big-little"),
            Speeds::List(list) => {
                for (i, x) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(&num(*x))?;
                }
                Ok(())
            }
        }
    }
}

spec_string!(Speeds);
