//! Task populations for schedlab, all from a seed: cost distributions (heavy tails included), cost
//! estimates with error, arrival processes, worker speeds, traces, and the kinds of real work a
//! threads engine performs for a task.
//!
//! This crate imports no other schedlab crate. Every input a user writes (a distribution spec, a
//! duration, an arrival process, a speed list, a kind, a trace file) is parsed here into a typed value
//! or a [`SpecError`] whose one-line message names the parameter (or file and line), the bad value and
//! what is allowed. Nothing here panics on user input.
//!
//! ```
//! use workloads::{Arrivals, Distribution, Workload};
//!
//! let dist: Distribution = "lognormal(mean=100us,sigma=1.5)".parse()?;
//! assert_eq!(dist.mean_ns(), 100_000.0);
//! let workload = Workload {
//!     distribution: dist,
//!     estimate_error: 0.3,
//!     arrivals: "poisson(rate=20000/s)".parse()?,
//! };
//! let tasks = workload.generate(10_000, 42)?;
//! assert_eq!(tasks.len(), 10_000);
//! assert_eq!(tasks, workload.generate(10_000, 42)?); // reproducible from the seed
//! assert!(tasks.arrival_ns.windows(2).all(|w| w[0] <= w[1]));
//! assert_eq!(workload.arrivals, Arrivals::Poisson { rate_per_s: 20_000.0 });
//!
//! // Bad input is an error that says what is wrong, never a panic.
//! let err = Distribution::parse("gamma(mean=1ms,q=2)").unwrap_err();
//! assert_eq!(err.to_string(), "gamma: unknown parameter 'q' (allowed: mean, k, theta)");
//! # Ok::<(), workloads::SpecError>(())
//! ```
//!
//! # Reproducibility
//!
//! [`Workload::generate`] uses PCG-64 (`rand_pcg::Pcg64`, pinned with `rand_distr` 0.4 in the
//! lock file): `Pcg64::seed_from_u64(seed)` is a master generator whose first three `u64` outputs
//! seed the cost, estimate and arrival streams. The same seed gives the same task set on every
//! machine, and changing the estimate error or the arrival process leaves the costs unchanged.
//!
//! # Kinds of work
//!
//! An [`Executor`] performs a task of cost c as `spin`, `compute`, `sleep` or `memory` work; see
//! [`Kind`]. Worker speeds ([`Speeds`]) scale a cost to c / speed ([`Executor::run_at_speed`]).

#![deny(missing_docs)]

/// `FromStr`, `Serialize` and `Deserialize` for a type that is written as its spec string:
/// parsed by its `parse`, printed by its `Display`.
macro_rules! spec_string {
    ($ty:ty) => {
        impl std::str::FromStr for $ty {
            type Err = $crate::SpecError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty>::parse(s)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                <$ty>::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

mod arrivals;
mod distribution;
mod duration;
mod error;
mod kind;
mod spec;
mod speeds;
mod summary;
mod taskset;
mod trace;

pub use arrivals::{Arrivals, MIN_RATE_PER_S};
pub use distribution::{Distribution, MAX_SAMPLE_NS};
pub use duration::{format_duration, format_ns, parse_duration};
pub use error::SpecError;
pub use kind::{calibrate_compute, Calibration, Executor, Kind, MEMORY_BUFFER_BYTES};
pub use speeds::{parse_speeds, scaled_cost, Speeds};
pub use summary::{Bin, Summary, HISTOGRAM_BINS, MAX_SAMPLES};
pub use taskset::{parse_estimate_error, validate_estimate_error, TaskSet, Workload};
pub use trace::{Trace, MAX_TRACE_BYTES};
