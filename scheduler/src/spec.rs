//! What a run is asked to do: workers, placement, timing, and the task table.

use serde::{Deserialize, Serialize};

use crate::error::SpecError;
use crate::topology::{Pin, Slot, Topology};

/// How much the engine measures per task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Timing {
    /// Two clock reads per task: busy times, latency and wait histograms, overhead, timeline.
    #[default]
    Tasks,
    /// Counts only: no clock read per task. `busy_ns` becomes the span from the start to the
    /// worker's last completion and the histograms stay empty. For overhead micro-benchmarks.
    Off,
}

impl Timing {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Timing::Tasks => "tasks",
            Timing::Off => "off",
        }
    }
}

/// Free-text labels copied into the report (the scheduler does not interpret them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    /// The workload spec.
    pub workload: String,
    /// The kind of work.
    pub kind: String,
    /// The arrival process.
    pub arrivals: String,
}

/// The engine-independent description of a run.
///
/// ```
/// let spec = scheduler::RunSpec::new(4).with_seed(9);
/// assert_eq!(spec.workers, 4);
/// assert_eq!(spec.speeds(), vec![1.0; 4]);
/// ```
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Worker count P (≥ 1).
    pub workers: usize,
    /// Pinning of worker threads (threads engine) and node assignment (both engines).
    pub pin: Pin,
    /// The topology workers are placed on.
    pub topology: Topology,
    /// Speed factor per worker; empty means all 1.0.
    pub speeds: Vec<f64>,
    /// The run's seed (strategies' randomness derives from it).
    pub seed: u64,
    /// Per-task measurement.
    pub timing: Timing,
    /// Keep at most this many timeline spans (0: no timeline in the report).
    pub timeline_cap: usize,
    /// Labels for the report.
    pub labels: Labels,
}

impl RunSpec {
    /// The most workers a run may have (either engine): 2^21 - 1, what the simulator's event
    /// keys hold. Refused before anything per worker is allocated.
    pub const MAX_WORKERS: usize = (1 << 21) - 1;

    /// `workers` identical workers on this machine's topology, unpinned, seed 0.
    pub fn new(workers: usize) -> Self {
        RunSpec {
            workers,
            pin: Pin::None,
            topology: Topology::detect(),
            speeds: Vec::new(),
            seed: 0,
            timing: Timing::Tasks,
            timeline_cap: 0,
            labels: Labels::default(),
        }
    }

    /// Set the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Set the speed factors.
    pub fn with_speeds(mut self, speeds: Vec<f64>) -> Self {
        self.speeds = speeds;
        self
    }

    /// Set the topology.
    pub fn with_topology(mut self, topology: Topology) -> Self {
        self.topology = topology;
        self
    }

    /// Set the pinning.
    pub fn with_pin(mut self, pin: Pin) -> Self {
        self.pin = pin;
        self
    }

    /// Set the timing mode.
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Keep a timeline of at most `cap` spans.
    pub fn with_timeline(mut self, cap: usize) -> Self {
        self.timeline_cap = cap;
        self
    }

    /// The speed of each worker (1.0 where none was given).
    pub fn speeds(&self) -> Vec<f64> {
        if self.speeds.is_empty() {
            vec![1.0; self.workers]
        } else {
            self.speeds.clone()
        }
    }

    /// Where each worker sits.
    pub fn slots(&self) -> Vec<Slot> {
        self.topology.place(self.workers, self.pin)
    }

    pub(crate) fn validate(&self, tasks: &Tasks<'_>) -> Result<(), SpecError> {
        if self.workers == 0 {
            return Err(SpecError::new("workers: must be at least 1, got 0"));
        }
        if self.workers > RunSpec::MAX_WORKERS {
            return Err(SpecError::new(format!(
                "workers: at most {} (2^21 - 1), got {}",
                RunSpec::MAX_WORKERS,
                self.workers
            )));
        }
        if !self.speeds.is_empty() && self.speeds.len() != self.workers {
            return Err(SpecError::new(format!(
                "speeds: {} values given for {} workers (give one per worker)",
                self.speeds.len(),
                self.workers
            )));
        }
        if let Some(bad) = self.speeds.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(SpecError::new(format!(
                "speeds: every speed must be a finite number > 0, got {bad}"
            )));
        }
        tasks.validate()
    }
}

/// The task table of a run: ids `0..n` and what is known about each.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tasks<'a> {
    /// Number of tasks.
    pub n: usize,
    /// Nominal cost of each task at speed 1 (required by the simulator; on threads it sets the
    /// lower bound, which is otherwise derived from measured times).
    pub cost_ns: Option<&'a [u64]>,
    /// The cost each task is believed to have (what SPT and LPT sort by).
    pub estimate_ns: Option<&'a [u64]>,
    /// Release time of each task, ns after the run starts, non-decreasing (absent: all 0).
    pub release_ns: Option<&'a [u64]>,
}

impl<'a> Tasks<'a> {
    /// `n` tasks released together, nothing else known.
    pub fn closed(n: usize) -> Self {
        Tasks {
            n,
            ..Tasks::default()
        }
    }

    /// `n = cost_ns.len()` tasks with these costs, estimates equal to the costs.
    pub fn with_costs(cost_ns: &'a [u64]) -> Self {
        Tasks {
            n: cost_ns.len(),
            cost_ns: Some(cost_ns),
            estimate_ns: Some(cost_ns),
            release_ns: None,
        }
    }

    /// The release time of task `j`.
    #[inline]
    pub fn release(&self, j: usize) -> u64 {
        self.release_ns.map_or(0, |r| r[j])
    }

    /// True when every task is released at time 0.
    pub fn is_closed(&self) -> bool {
        self.release_ns.is_none_or(|r| r.iter().all(|&t| t == 0))
    }

    fn validate(&self) -> Result<(), SpecError> {
        for (name, table) in [
            ("cost_ns", self.cost_ns),
            ("estimate_ns", self.estimate_ns),
            ("release_ns", self.release_ns),
        ] {
            if let Some(t) = table {
                if t.len() != self.n {
                    return Err(SpecError::new(format!(
                        "tasks: {name} has {} entries for {} tasks",
                        t.len(),
                        self.n
                    )));
                }
            }
        }
        if let Some(r) = self.release_ns {
            if let Some(j) = r.windows(2).position(|w| w[1] < w[0]) {
                return Err(SpecError::new(format!(
                    "tasks: release_ns must be non-decreasing, but task {} is released before task {}",
                    j + 1,
                    j
                )));
            }
        }
        Ok(())
    }
}
