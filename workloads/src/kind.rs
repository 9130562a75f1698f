//! Kinds of work, and the executor that performs a task of a given cost as real work on this machine.

use std::cell::RefCell;
use std::fmt;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::SpecError;
use crate::speeds::scaled_cost;

/// Bytes of the per-thread buffer that `memory` work streams through (allocated on a thread's first
/// memory task, or by [`Executor::prepare_thread`]).
pub const MEMORY_BUFFER_BYTES: usize = 32 << 20;

/// What a worker does for a task of cost c.
///
/// ```
/// use workloads::Kind;
/// assert_eq!("compute".parse::<Kind>().unwrap(), Kind::Compute);
/// assert_eq!(Kind::Sleep.to_string(), "sleep");
/// assert!("nap".parse::<Kind>().unwrap_err().to_string().contains("spin, compute, sleep, memory"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Kind {
    /// Busy-wait on the clock until c has passed: exact, but preemption counts as work.
    #[default]
    Spin,
    /// A calibrated loop of integer arithmetic sized to take c; slows down honestly under contention.
    Compute,
    /// Block for c (an I/O-bound task); the timer's overshoot is measured.
    Sleep,
    /// Stream through a per-thread buffer for as many bytes as take about c (bandwidth contention).
    Memory,
}

impl Kind {
    /// Every kind, in spec order.
    pub const ALL: [Kind; 4] = [Kind::Spin, Kind::Compute, Kind::Sleep, Kind::Memory];

    /// Parse `spin`, `compute`, `sleep` or `memory`.
    pub fn parse(s: &str) -> Result<Kind, SpecError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "spin" => Ok(Kind::Spin),
            "compute" => Ok(Kind::Compute),
            "sleep" => Ok(Kind::Sleep),
            "memory" => Ok(Kind::Memory),
            _ => Err(SpecError::UnknownName {
                what: "kind of work",
                name: s.trim().to_string(),
                known: "spin, compute, sleep, memory".into(),
            }),
        }
    }

    /// The spec name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Spin => "spin",
            Kind::Compute => "compute",
            Kind::Sleep => "sleep",
            Kind::Memory => "memory",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

spec_string!(Kind);

static COMPUTE_NS_PER_ITER: OnceLock<f64> = OnceLock::new();
static MEMORY_NS_PER_BYTE: OnceLock<f64> = OnceLock::new();

/// The compute kernel: a xorshift chain folded into an accumulator. Each iteration depends on the
/// previous one, so it can be neither vectorised nor skipped.
#[inline(never)]
fn compute_kernel(iters: u64) -> u64 {
    let mut x: u64 = black_box(0x9E37_79B9_7F4A_7C15);
    let mut acc: u64 = 0;
    for i in 0..black_box(iters) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        acc = (acc ^ x.wrapping_add(i)).rotate_left(5);
    }
    black_box(acc)
}

/// Best-of-several ns per unit of `work(units)`, growing `units` until one run takes ≥ 2 ms.
fn calibrate(mut units: u64, max_units: u64, mut work: impl FnMut(u64)) -> f64 {
    let target = Duration::from_millis(2);
    loop {
        let start = Instant::now();
        work(units);
        if start.elapsed() >= target || units >= max_units {
            break;
        }
        units = units.saturating_mul(2).min(max_units);
    }
    (0..5)
        .map(|_| {
            let start = Instant::now();
            work(units);
            start.elapsed().as_nanos() as f64 / units as f64
        })
        .fold(f64::INFINITY, f64::min)
        .max(1e-6)
}

/// Measure, now, how many nanoseconds one iteration of the compute loop takes on this machine (the
/// best of five runs of at least 2 ms each). [`Executor::new`] does this once per process.
///
/// ```
/// let ns = workloads::calibrate_compute();
/// assert!(ns > 0.0 && ns.is_finite());
/// ```
pub fn calibrate_compute() -> f64 {
    calibrate(1 << 12, 1 << 36, |n| {
        compute_kernel(n);
    })
}

struct MemoryBuffer {
    words: Vec<u64>,
    cursor: usize,
}

thread_local! {
    static BUFFER: RefCell<Option<MemoryBuffer>> = const { RefCell::new(None) };
}

/// Stream `bytes` through this thread's buffer (reading every word, wrapping around).
fn stream_memory(bytes: u64) {
    BUFFER.with(|cell| {
        let mut guard = cell.borrow_mut();
        let buf = guard.get_or_insert_with(|| MemoryBuffer {
            // Written, not zeroed, so every page is really backed (zero pages would all share one).
            words: (0..(MEMORY_BUFFER_BYTES / 8) as u64).collect(),
            cursor: 0,
        });
        let mut remaining = bytes.div_ceil(8);
        let mut acc = 0u64;
        while remaining > 0 {
            let room = (buf.words.len() - buf.cursor) as u64;
            let end = buf.cursor + room.min(remaining) as usize;
            acc = buf.words[buf.cursor..end]
                .iter()
                .fold(acc, |a, &w| a.wrapping_add(w));
            remaining -= (end - buf.cursor) as u64;
            buf.cursor = if end == buf.words.len() { 0 } else { end };
        }
        black_box(acc);
    });
}

/// Measure how many nanoseconds streaming one byte takes on this thread.
fn calibrate_memory() -> f64 {
    stream_memory(MEMORY_BUFFER_BYTES as u64); // allocate and warm up
    calibrate(1 << 20, 1 << 34, stream_memory)
}

#[derive(Debug, Default)]
struct SleepStats {
    count: AtomicU64,
    requested_ns: AtomicU64,
    actual_ns: AtomicU64,
}

/// Performs tasks as real work of one [`Kind`]. Cheap to clone; clones share the sleep statistics.
///
/// ```
/// use workloads::{Executor, Kind};
/// for kind in Kind::ALL {
///     let ex = Executor::new(kind);
///     ex.run(5_000); // about 5us of work
///     assert_eq!(ex.kind(), kind);
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Executor {
    kind: Kind,
    /// ns per compute iteration or per memory byte (0 for spin and sleep).
    ns_per_unit: f64,
    sleep: Arc<SleepStats>,
}

impl Executor {
    /// An executor for `kind`. `compute` and `memory` calibrate on first use in the process (a few
    /// milliseconds, cached; memory calibrates on the calling thread).
    pub fn new(kind: Kind) -> Executor {
        let ns_per_unit = match kind {
            Kind::Compute => *COMPUTE_NS_PER_ITER.get_or_init(calibrate_compute),
            Kind::Memory => *MEMORY_NS_PER_BYTE.get_or_init(calibrate_memory),
            Kind::Spin | Kind::Sleep => 0.0,
        };
        Executor {
            kind,
            ns_per_unit,
            sleep: Arc::default(),
        }
    }

    /// The kind of work this executor does.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Do work that takes about `cost_ns` on this machine (nothing for 0).
    pub fn run(&self, cost_ns: u64) {
        if cost_ns == 0 {
            return;
        }
        match self.kind {
            Kind::Spin => {
                let target = Duration::from_nanos(cost_ns);
                let start = Instant::now();
                while start.elapsed() < target {
                    std::hint::spin_loop();
                }
            }
            Kind::Compute => {
                compute_kernel(self.units(cost_ns));
            }
            Kind::Memory => stream_memory(self.units(cost_ns)),
            Kind::Sleep => {
                let start = Instant::now();
                std::thread::sleep(Duration::from_nanos(cost_ns));
                let actual = start.elapsed().as_nanos().min(u64::MAX as u128) as u64;
                self.sleep.count.fetch_add(1, Ordering::Relaxed);
                self.sleep
                    .requested_ns
                    .fetch_add(cost_ns, Ordering::Relaxed);
                self.sleep.actual_ns.fetch_add(actual, Ordering::Relaxed);
            }
        }
    }

    /// Run a task of nominal `cost_ns` on a worker of `speed`: it takes `cost / speed`
    /// (see [`scaled_cost`]).
    pub fn run_at_speed(&self, cost_ns: u64, speed: f64) {
        self.run(scaled_cost(cost_ns, speed));
    }

    /// Allocate and touch this thread's memory buffer now, so the first `memory` task does not pay
    /// for it (a no-op for other kinds). Call it from a worker's start-up hook.
    pub fn prepare_thread(&self) {
        if self.kind == Kind::Memory {
            stream_memory(8);
        }
    }

    fn units(&self, cost_ns: u64) -> u64 {
        let u = (cost_ns as f64 / self.ns_per_unit).round();
        if u >= u64::MAX as f64 {
            u64::MAX
        } else {
            (u as u64).max(1)
        }
    }

    /// Mean sleep overshoot (actual − requested) in ns over this executor's sleeps so far; `None`
    /// before the first sleep.
    pub fn sleep_overshoot(&self) -> Option<f64> {
        let count = self.sleep.count.load(Ordering::Relaxed);
        if count == 0 {
            return None;
        }
        let requested = self.sleep.requested_ns.load(Ordering::Relaxed) as f64;
        let actual = self.sleep.actual_ns.load(Ordering::Relaxed) as f64;
        Some((actual - requested) / count as f64)
    }

    /// What this process has measured: compute and memory calibrations (where done) and the sleep
    /// overshoot of this executor.
    ///
    /// ```
    /// let ex = workloads::Executor::new(workloads::Kind::Compute);
    /// let c = ex.calibration();
    /// assert!(c.compute_ns_per_iter.unwrap() > 0.0);
    /// ```
    pub fn calibration(&self) -> Calibration {
        Calibration {
            kind: self.kind,
            compute_ns_per_iter: COMPUTE_NS_PER_ITER.get().copied(),
            memory_ns_per_byte: MEMORY_NS_PER_BYTE.get().copied(),
            memory_buffer_bytes: MEMORY_BUFFER_BYTES,
            sleeps: self.sleep.count.load(Ordering::Relaxed),
            sleep_overshoot_ns: self.sleep_overshoot(),
        }
    }
}

/// The calibration an executor works from, for printing and for run reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// The executor's kind.
    pub kind: Kind,
    /// ns per iteration of the compute loop, if calibrated in this process.
    pub compute_ns_per_iter: Option<f64>,
    /// ns per byte streamed by memory work, if calibrated in this process.
    pub memory_ns_per_byte: Option<f64>,
    /// Size of each thread's memory buffer.
    pub memory_buffer_bytes: usize,
    /// Number of sleeps measured.
    pub sleeps: u64,
    /// Mean sleep overshoot in ns, once something has slept.
    pub sleep_overshoot_ns: Option<f64>,
}
