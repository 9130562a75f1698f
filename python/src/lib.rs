//! `schedlab._core`: the Rust half of the `schedlab` Python package.
//!
//! The Python classes (`schedlab.DataLoader`, `schedlab.Pipeline`) live in `python/schedlab/`;
//! this module gives them a loader ([`LoaderCore`]) and a pipeline ([`PipelineCore`]) whose
//! workers are the `loader` crate's Rust threads.
//!
//! How the GIL is used:
//!
//! * A worker thread takes the GIL only to call Python (`__getitem__`, `worker_init_fn`, a
//!   stage function) and measures how long it waited for it and how long Python ran
//!   ([`GilStats`]).
//! * The Rust loader (its `Loader` and the iterator over one epoch) lives on a *driver* thread
//!   of its own (the [`driver`] module, shared with the pipeline); the Python consumer sends it
//!   requests and waits for each answer **without the GIL**, in slices of 50 ms between which
//!   it runs the signal handlers (`Python::check_signals`), so Ctrl-C raises
//!   `KeyboardInterrupt` at once; the interrupted driver finishes and joins in the background
//!   until `close()`.
//! * Python exceptions are values: a failing `__getitem__` gives a sample that carries the
//!   exception and its traceback text, and the consumer raises it at its batch's position.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loader::{Autotune, Loader, LoaderError, LoaderState, Remainder, Sampler};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use scheduler::WorkerId;

mod driver;
mod mix;
mod pipeline;
#[cfg(unix)]
mod process;
mod streams;
mod turns;

use driver::{lock, Driver};

/// Per-worker GIL accounting: time waiting to acquire the GIL, wall time inside the Python
/// call, the thread's CPU time inside it, calls, and the time in Rust between calls.
///
/// Wall minus CPU inside a call is time the thread was off the CPU while Python ran it: waits
/// to take the GIL back after the interpreter's switch interval handed it to another thread,
/// and blocking calls that release it (sleeps, reads). Python does not say which.
///
/// A worker's counters are made when the worker first asks for them ([`GilStats::slot`], from
/// its own thread), never sized ahead from a requested count: a count the Rust builder then
/// refuses (`num_workers=10**9`) must not have allocated anything per worker.
#[derive(Debug, Default)]
pub(crate) struct GilStats {
    slots: Mutex<BTreeMap<usize, Arc<GilSlot>>>,
}

/// One worker's counters: `[gil_wait_ns, python_ns, python_cpu_ns, calls, rust_ns]`.
///
/// The thread's CPU clock is a system call (about 1 µs on a virtual machine, two per call: a
/// few µs per item of a two-stage pipeline), so it is read on a *sample* of the calls: each
/// of a worker's first [`CPU_ALL_CALLS`] calls, then one call in [`CPU_ONE_IN`], chosen by a
/// hash of the call's number (no period for a periodic workload to alias with). A sampled
/// call after the first ones counts `CPU_ONE_IN` times its CPU time (an unbiased estimate
/// that only grows, so the difference of two readings is the estimate between them; exact
/// while every call is sampled).
///
/// A wait still going on counts too, up to the moment the counters are read (`waiting`: how
/// many of the slot's calls wait now, and the sum of their starts): a thread kept from the
/// GIL for a long time is seen waiting, not only once it got it. (CPython hands the GIL on
/// after its switch interval only when nobody has let go of it meanwhile; a thread that
/// gives it back at the end of each call and takes it again at once for the next one, as a
/// stage's thread does, restarts that clock each time: a second thread of a GIL-bound stage
/// was seen waiting 96 ms for it. Counted only once it ended, an `auto` stage's verdict read
/// almost no waits at first, and came late.)
#[derive(Debug, Default)]
pub(crate) struct GilSlot {
    c: [AtomicU64; 5],
    waiting: Mutex<(u64, u128)>,
}

/// `at` in nanoseconds since the first reading in this process (the waits' clock).
fn clock_ns(at: Instant) -> u128 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    at.saturating_duration_since(*START.get_or_init(Instant::now))
        .as_nanos()
}

/// A worker's calls whose CPU time is always measured (see [`GilSlot`]).
const CPU_ALL_CALLS: u64 = 64;
/// After the first [`CPU_ALL_CALLS`], one call in this many (a power of two) is measured.
const CPU_ONE_IN: u64 = 8;

/// How many calls the CPU time of call number `n` (from 0) of a worker stands for: 0 when the
/// clock is not read for it (see [`GilSlot`]).
fn cpu_weight(n: u64) -> u64 {
    if n < CPU_ALL_CALLS {
        return 1;
    }
    // Fibonacci hashing: the top bits of n·2^64/φ are all 0 for one n in CPU_ONE_IN, spread
    // evenly and with no period a workload could share.
    let top = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - CPU_ONE_IN.trailing_zeros());
    if top == 0 {
        CPU_ONE_IN
    } else {
        0
    }
}

/// This thread's CPU time (zero where the platform has no per-thread CPU clock).
fn thread_cpu() -> Duration {
    loader::pipeline::thread_cpu_ns()
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

impl GilSlot {
    /// Count one call (its wait is counted by [`GilSlot::with_gil`]); `cpu` is its CPU time
    /// times the calls it stands for (0 when not read).
    fn add(&self, wall: Duration, cpu: Duration) {
        let w = &self.c;
        w[1].fetch_add(wall.as_nanos() as u64, Relaxed);
        w[2].fetch_add(cpu.as_nanos() as u64, Relaxed);
        w[3].fetch_add(1, Relaxed);
    }

    /// Call `f` holding the GIL, counting the wait and the run (and, on a sample of the calls,
    /// the thread's CPU time: see [`GilSlot`]).
    ///
    /// The calling thread keeps its Python thread state from its first call to its end
    /// ([`keep_thread_state`]): taking the GIL is then only taking the GIL.
    pub(crate) fn call<T>(&self, f: impl FnOnce(Python<'_>) -> T) -> T {
        keep_thread_state();
        // The thread's CPU clock is read outside the GIL (it is a system call: inside, it
        // would lengthen every hold); waiting for the GIL costs no CPU, so the difference is
        // Python's CPU time plus the little that taking and giving back the GIL costs.
        // A call's number is the count of calls finished before it: calls running at once on
        // one slot may share one, which only moves which calls are sampled.
        let weight = cpu_weight(self.c[3].load(Relaxed));
        let c0 = (weight > 0).then(thread_cpu);
        let (r, t1, t2) = self.with_gil(|py| {
            let t1 = Instant::now();
            let r = f(py);
            (r, t1, Instant::now())
        });
        let cpu = c0.map_or(Duration::ZERO, |c0| {
            thread_cpu().saturating_sub(c0) * weight as u32
        });
        self.add(t2 - t1, cpu);
        r
    }

    /// `f` holding the GIL, taken in turns with our other threads ([`turns`]), its wait for
    /// it counted: while it goes on (see [`GilSlot`]), then as a whole once it is taken.
    fn with_gil<T>(&self, f: impl FnOnce(Python<'_>) -> T) -> T {
        turns::before_taking();
        let t0 = Instant::now();
        let since = clock_ns(t0); // one clock reading for both
        {
            let mut w = lock(&self.waiting);
            w.0 += 1;
            w.1 += since;
        }
        turns::waiting();
        Python::with_gil(|py| {
            turns::taken();
            let waited = t0.elapsed();
            {
                let mut w = lock(&self.waiting);
                w.0 -= 1;
                w.1 -= since;
                self.c[0].fetch_add(waited.as_nanos() as u64, Relaxed);
            }
            f(py)
        })
    }

    /// Run `f` holding the GIL, counting the wait for it but no call (a look at a stage
    /// function's attribute between calls: a GIL-bound stage's threads wait there as they
    /// do for a call, and an `auto` stage's verdict reads the waits; its calls are the
    /// user's only).
    fn wait_only<T>(&self, f: impl FnOnce(Python<'_>) -> T) -> T {
        keep_thread_state();
        self.with_gil(f)
    }

    /// Count `d` as time spent in Rust between two Python calls (the pool finding the next
    /// sample, or waiting for one).
    fn add_rust(&self, d: Duration) {
        self.c[4].fetch_add(d.as_nanos() as u64, Relaxed);
    }

    fn row(&self) -> GilRow {
        let s = |a: &AtomicU64| a.load(Relaxed) as f64 / 1e9;
        let w = &self.c;
        // the waits going on now, and those that ended: one reading under the lock they
        // change under together
        let wait = {
            let g = lock(&self.waiting);
            let now = clock_ns(Instant::now());
            let going = (u128::from(g.0) * now).saturating_sub(g.1);
            w[0].load(Relaxed) as f64 / 1e9 + going as f64 / 1e9
        };
        (wait, s(&w[1]), s(&w[2]), w[3].load(Relaxed), s(&w[4]))
    }
}

impl GilStats {
    /// Worker `worker`'s counters, made on first use (call it once per worker thread and keep
    /// the `Arc`: the lookup takes a lock).
    pub(crate) fn slot(&self, worker: usize) -> Arc<GilSlot> {
        Arc::clone(lock(&self.slots).entry(worker).or_default())
    }

    /// `[(gil_wait_s, python_s, python_cpu_s, calls, rust_s)]`, one per worker `0..n`, where
    /// `n` is at least `at_least` (workers that have not started yet read as zeros).
    pub(crate) fn snapshot(&self, at_least: usize) -> Vec<GilRow> {
        let slots = lock(&self.slots);
        let n = slots.keys().next_back().map_or(0, |&k| k + 1).max(at_least);
        (0..n)
            .map(|i| slots.get(&i).map_or((0.0, 0.0, 0.0, 0, 0.0), |s| s.row()))
            .collect()
    }
}

/// `(gil_wait_s, python_s, python_cpu_s, calls, rust_s)` of one worker.
pub(crate) type GilRow = (f64, f64, f64, u64, f64);

/// A Python exception caught on a worker: the exception object and its traceback text.
pub(crate) struct Failure {
    /// `__getitem__`, `worker_init_fn` or a stage name.
    pub what: String,
    pub exc: Py<PyAny>,
    pub traceback: String,
}

impl Failure {
    pub(crate) fn new(py: Python<'_>, err: PyErr, what: &str) -> Failure {
        let traceback = py
            .import("traceback")
            .and_then(|tb| {
                tb.call_method1(
                    "format_exception",
                    (err.get_type(py), err.value(py), err.traceback(py)),
                )
            })
            .and_then(|lines| {
                let lines: Vec<String> = lines.extract()?;
                Ok(lines.concat())
            })
            .unwrap_or_else(|_| err.to_string());
        Failure {
            what: what.to_string(),
            exc: err.into_value(py).into_any(),
            traceback,
        }
    }

    pub(crate) fn clone_ref(&self, py: Python<'_>) -> Failure {
        Failure {
            what: self.what.clone(),
            exc: self.exc.clone_ref(py),
            traceback: self.traceback.clone(),
        }
    }
}

/// One loaded sample: its index, the worker that loaded it, and its value or exception.
struct Item {
    index: usize,
    worker: WorkerId,
    value: Result<Py<PyAny>, Failure>,
}

/// A Python map-style dataset seen from Rust: a length and `__getitem__`.
struct PyDataset {
    len: usize,
    getitem: Py<PyAny>,
    init_fn: Option<Py<PyAny>>,
    gil: Arc<GilStats>,
    /// Set once the consumer has stopped waiting (a timeout, an interrupt, `close()`): from
    /// then on no `__getitem__` starts (see [`driver::Driver::detach`]).
    stopped: Arc<AtomicBool>,
    /// The loader takes samples in chunks (worker processes): `get_many` calls
    /// `getitem.many(indices)`, which answers `(ok, value or exception)` per index, once
    /// `getitem.takes_chunks` is true (an `auto` stage's only once on processes).
    many: bool,
    chunks_on: ChunksOn,
}

/// A worker's state: its number, its GIL counters, and the error of its `worker_init_fn`, if
/// that raised.
struct WorkerState {
    worker: WorkerId,
    gil: Arc<GilSlot>,
    init_error: Option<Failure>,
    /// When the last `get` returned (time in Rust is counted from there).
    last: Option<Instant>,
    _thread: KeepThreadState,
}

/// Keeps this thread's Python thread state for the thread's life.
///
/// Without it every `Python::with_gil` on a thread Python does not know creates a thread
/// state and deletes it again on release (an allocation and the runtime's lock, with the GIL
/// held); with it, taking the GIL is only taking the GIL.
struct KeepThreadState {
    gil: pyo3::ffi::PyGILState_STATE,
    saved: *mut pyo3::ffi::PyThreadState,
}

// SAFETY: a `KeepThreadState` is created in `Dataset::init` and dropped with the worker's
// state, both on the worker's own thread (the `loader::Dataset` contract: the state "is
// dropped when the worker thread ends"); it never runs on another thread.
unsafe impl Send for KeepThreadState {}

impl KeepThreadState {
    fn new() -> Self {
        // SAFETY: the interpreter is initialised (we are called from it) and this thread does
        // not hold the GIL; `PyGILState_Ensure` creates the thread state and takes the GIL,
        // `PyEval_SaveThread` releases the GIL and keeps the thread state for later `Ensure`s.
        unsafe {
            let gil = pyo3::ffi::PyGILState_Ensure();
            let saved = pyo3::ffi::PyEval_SaveThread();
            KeepThreadState { gil, saved }
        }
    }
}

impl Drop for KeepThreadState {
    fn drop(&mut self) {
        // SAFETY: `Py_IsInitialized` may be called at any time. After the interpreter is
        // gone there is nothing to give back (and taking the GIL would end the thread).
        if unsafe { pyo3::ffi::Py_IsInitialized() } == 0 {
            return;
        }
        // SAFETY: on the thread that created it (see the `Send` impl), not holding the GIL:
        // take the GIL back with the saved state, then release the thread state.
        unsafe {
            pyo3::ffi::PyEval_RestoreThread(self.saved);
            pyo3::ffi::PyGILState_Release(self.gil);
        }
    }
}

thread_local! {
    /// This thread's kept Python thread state (see [`keep_thread_state`]); dropped, and the
    /// thread state with it, when the thread ends.
    static KEPT: std::cell::RefCell<Option<KeepThreadState>> = const { std::cell::RefCell::new(None) };
}

/// Give this thread a Python thread state for the rest of its life, unless it has one.
///
/// A pipeline's runners (CPU workers, blocking threads) are Rust threads Python does not
/// know: without this, every `Python::with_gil` on them would create a thread state and
/// delete it again on release (an allocation, the runtime's lock, and clearing the state
/// with the GIL held: time every other thread waits for the GIL). The loader's workers keep
/// theirs in their worker state already; a thread that has one (Python's own threads, those
/// workers) is left as it is.
pub(crate) fn keep_thread_state() {
    // SAFETY: reading this thread's gilstate entry needs no GIL.
    if !unsafe { pyo3::ffi::PyGILState_GetThisThreadState() }.is_null() {
        return;
    }
    let _ = KEPT.try_with(|k| {
        let mut k = k.borrow_mut();
        if k.is_none() {
            *k = Some(KeepThreadState::new());
        }
    });
}

impl loader::Dataset for PyDataset {
    type Sample = Item;
    type Error = String;
    type State = WorkerState;

    fn len(&self) -> usize {
        self.len
    }

    fn init(&self, worker: WorkerId) -> WorkerState {
        let thread = KeepThreadState::new();
        let gil = self.gil.slot(worker);
        let init_error = self.init_fn.as_ref().and_then(|f| {
            gil.call(|py| {
                f.call1(py, (worker,))
                    .err()
                    .map(|e| Failure::new(py, e, "worker_init_fn"))
            })
        });
        WorkerState {
            worker,
            gil,
            init_error,
            last: None,
            _thread: thread,
        }
    }

    fn get(&self, index: usize, state: &mut WorkerState) -> Result<Item, String> {
        if self.stopped.load(Acquire) {
            // nobody waits for it: do not start the user's code (the epoch ends at once)
            return Err(STOPPED.into());
        }
        let worker = state.worker;
        if let Some(last) = state.last {
            state.gil.add_rust(last.elapsed());
        }
        let value = state.gil.call(|py| match &state.init_error {
            Some(f) => Err(f.clone_ref(py)),
            None => self
                .getitem
                .call1(py, (index,))
                .map_err(|e| Failure::new(py, e, "__getitem__")),
        });
        state.last = Some(Instant::now());
        Ok(Item {
            index,
            worker,
            value,
        })
    }

    fn get_many(&self, indices: &[usize], state: &mut WorkerState) -> Vec<Result<Item, String>> {
        if !self.many {
            return indices.iter().map(|&i| self.get(i, state)).collect();
        }
        if self.stopped.load(Acquire) {
            return indices.iter().map(|_| Err(STOPPED.into())).collect();
        }
        let (worker, n) = (state.worker, indices.len());
        if let Some(last) = state.last {
            state.gil.add_rust(last.elapsed());
        }
        if !self.chunks_on.now(&self.getitem, &state.gil) {
            // an `auto` stage still on threads: each sample its own call (and each counted
            // as one by the GIL statistics its verdict reads)
            return indices.iter().map(|&i| self.get(i, state)).collect();
        }
        // one GIL hold and one message for the chunk (see `ProcessStage.many`)
        let values = state.gil.call(|py| match &state.init_error {
            Some(f) => (0..n).map(|_| Err(f.clone_ref(py))).collect(),
            None => call_many(py, &self.getitem, indices, "__getitem__", "samples"),
        });
        state.last = Some(Instant::now());
        indices
            .iter()
            .zip(values)
            .map(|(&index, value)| {
                Ok(Item {
                    index,
                    worker,
                    value,
                })
            })
            .collect()
    }
}

/// Whether a stage function takes chunks yet (its `takes_chunks`: a process stage's always,
/// an `auto` stage's once it has moved to processes, which it never leaves). Read without
/// the GIL once true; until then under a GIL hold of its own, whose wait for the GIL the
/// statistics count but not as a call (an `auto` stage's verdict counts calls, and reads
/// the waits: uncounted, a GIL-bound stage's threads waited there unseen, ~5 ms at a time,
/// and its verdict came late).
#[derive(Debug, Default)]
pub(crate) struct ChunksOn(AtomicBool);

impl ChunksOn {
    pub(crate) fn now(&self, f: &Py<PyAny>, slot: &GilSlot) -> bool {
        if self.0.load(Acquire) {
            return true;
        }
        // a `takes_chunks` that raises: chunks, whose call raises it again at its items
        let on = slot.wait_only(|py| {
            f.getattr(py, "takes_chunks")
                .and_then(|v| v.is_truthy(py))
                .unwrap_or(true)
        });
        if on {
            self.0.store(true, Release);
        }
        on
    }
}

/// `f.many(items)` (a process or `auto` stage's chunk, see `ProcessStage.many`), holding the
/// GIL: one value or failure (named `what`) per item, in order. A failed call, or another
/// count of results (`unit`: what the items are, for the message), fails every item.
pub(crate) fn call_many<'py, T, U>(
    py: Python<'py>,
    f: &Py<PyAny>,
    items: impl IntoIterator<Item = T, IntoIter = U>,
    what: &str,
    unit: &str,
) -> Vec<Result<Py<PyAny>, Failure>>
where
    T: IntoPyObject<'py>,
    U: ExactSizeIterator<Item = T>,
{
    let items = items.into_iter();
    let n = items.len();
    let all = |f: Failure| (0..n).map(|_| Err(f.clone_ref(py))).collect();
    let got = PyList::new(py, items)
        .and_then(|list| f.call_method1(py, "many", (list,)))
        .and_then(|r| r.extract::<Vec<(bool, Py<PyAny>)>>(py));
    match got {
        Ok(rs) if rs.len() == n => rs
            .into_iter()
            .map(|(ok, v)| {
                if ok {
                    Ok(v)
                } else {
                    Err(Failure::new(py, PyErr::from_value(v.into_bound(py)), what))
                }
            })
            .collect(),
        Ok(rs) => {
            let m = format!("many() returned {} results for {n} {unit}", rs.len());
            all(Failure::new(py, PyRuntimeError::new_err(m), what))
        }
        Err(e) => all(Failure::new(py, e, what)),
    }
}

type PyLoader = Loader<PyDataset, Vec<Item>>;

/// The error of a sample that was not loaded because the consumer had stopped waiting.
const STOPPED: &str = "not loaded: the consumer stopped (a timeout, an interrupt or close())";

fn config_error(e: LoaderError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A builder's refusal as `ValueError`. One about threads (the builders refuse a worker or
/// thread count over what the OS allows, before allocating anything) is made to name the
/// Python argument `arg` and its value when it does not already.
pub(crate) fn count_error(message: String, arg: &str, value: usize) -> PyErr {
    let about_threads = ["worker", "thread", "concurrency"]
        .iter()
        .any(|w| message.contains(w));
    if about_threads && !message.contains(arg) {
        PyValueError::new_err(format!("{arg}={value}: {message}"))
    } else {
        PyValueError::new_err(message)
    }
}

/// A panic while building (`what`: "loader", "pipeline") as `ValueError`: the builders
/// size their windows from the settings, and a panic there means settings too large to
/// compute with (an overflow), never a state to go on from.
pub(crate) fn build_panic(what: &str, p: &(dyn std::any::Any + Send)) -> PyErr {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    PyValueError::new_err(format!(
        "{what}: settings too large (sizes, queues, concurrency or max_items): {msg}"
    ))
}

/// `seconds` as a wait: `None` (no limit) for 0, infinity, and finite values too large for a
/// `Duration`; `ValueError` naming `timeout` for NaN and negative values. Never panics.
pub(crate) fn timeout_of(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    match seconds {
        None => Ok(None),
        Some(s) if s.is_nan() || s < 0.0 => Err(PyValueError::new_err(format!(
            "timeout: expected a number of seconds >= 0 (0 or inf: no timeout), got {s}"
        ))),
        Some(s) if s > 0.0 => Ok(Duration::try_from_secs_f64(s).ok()),
        Some(_) => Ok(None),
    }
}

/// The loader: a `loader::Loader` over a Python dataset, driven from Python one request at a
/// time. `schedlab.DataLoader` is the public face; this class is internal.
#[pyclass(module = "schedlab._core")]
pub struct LoaderCore {
    driver: Driver<PyLoader>,
    gil: Arc<GilStats>,
    /// Worker threads, as the builder accepted them.
    workers: usize,
    orders: Arc<Mutex<HashMap<u64, Vec<usize>>>>,
    len: usize,
}

#[pymethods]
impl LoaderCore {
    /// Build the loader and start its worker threads (each runs `worker_init_fn(worker)`).
    #[new]
    #[pyo3(signature = (getitem, length, batch_size, drop_last, seed, custom_order, workers,
                        strategy, prefetch, ordered, worker_init_fn=None, look_ahead=true,
                        autotune=false, max_items=None, chunk=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        getitem: Py<PyAny>,
        length: usize,
        batch_size: usize,
        drop_last: bool,
        seed: Option<u64>,
        custom_order: bool,
        workers: usize,
        strategy: &str,
        prefetch: usize,
        ordered: bool,
        worker_init_fn: Option<Py<PyAny>>,
        look_ahead: bool,
        autotune: bool,
        max_items: Option<usize>,
        chunk: Option<(usize, Option<f64>)>,
    ) -> PyResult<Self> {
        // nothing here is sized by `workers`: the builder checks it first
        let gil = Arc::new(GilStats::default());
        let stopped = Arc::new(AtomicBool::new(false));
        let orders: Arc<Mutex<HashMap<u64, Vec<usize>>>> = Arc::default();
        let dataset = PyDataset {
            len: length,
            getitem,
            init_fn: worker_init_fn,
            gil: Arc::clone(&gil),
            stopped: Arc::clone(&stopped),
            many: chunk.is_some_and(|(most, _)| most > 1),
            chunks_on: ChunksOn::default(),
        };
        let chunk_time = match chunk.and_then(|(_, secs)| secs) {
            Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
            Some(t) => {
                return Err(PyValueError::new_err(format!(
                    "chunk time: expected seconds > 0, got {t}"
                )))
            }
            None => None,
        };
        let sampler = if custom_order {
            let orders = Arc::clone(&orders);
            Sampler::from_fn(move |epoch, _len| {
                orders
                    .lock()
                    .map(|o| o.get(&epoch).cloned().unwrap_or_default())
                    .unwrap_or_default()
            })
        } else if let Some(s) = seed {
            Sampler::shuffled(s)
        } else {
            Sampler::sequential()
        };
        let strategy = strategy.to_string();
        let loader = py
            .allow_threads(move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    let b = Loader::builder(dataset)
                        .batch_size(batch_size)
                        .remainder(if drop_last {
                            Remainder::Drop
                        } else {
                            Remainder::Partial
                        })
                        .sampler(sampler)
                        .workers(workers)
                        .strategy(&strategy)
                        .prefetch(prefetch)
                        .ordered(ordered)
                        // a custom order is known only when its epoch starts
                        .prefetch_next_epoch(look_ahead && !custom_order)
                        .chunk(chunk.map_or(1, |(most, _)| most));
                    let b = match chunk_time {
                        Some(limit) => b.chunk_time(limit),
                        None => b,
                    };
                    let b = if autotune {
                        let cfg = Autotune::new();
                        b.autotune(match max_items {
                            Some(n) => cfg.max_items(n),
                            None => cfg,
                        })
                    } else {
                        b
                    };
                    b.build()
                }))
            })
            .map_err(|p| build_panic("loader", p.as_ref()))?
            .map_err(|e| count_error(e.to_string(), "num_workers", workers))?;
        let workers = loader.workers();
        let driver = Driver::start("schedlab-loader", "loader", loader, stopped)?;
        Ok(LoaderCore {
            driver,
            gil,
            workers,
            orders,
            len: length,
        })
    }

    /// Set the index order of `epoch` (a loader built with `custom_order=True`).
    fn set_order(&self, epoch: u64, indices: Vec<usize>) -> PyResult<()> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len) {
            return Err(PyValueError::new_err(format!(
                "sampler: index {bad} is out of range for a dataset of {} samples",
                self.len
            )));
        }
        let mut o = self.orders.lock().unwrap_or_else(|p| p.into_inner());
        o.retain(|&e, _| e + 1 >= epoch);
        o.insert(epoch, indices);
        Ok(())
    }

    /// Start (or continue) epoch `epoch`.
    fn start_epoch(&self, py: Python<'_>, epoch: u64) -> PyResult<()> {
        self.driver.start_epoch(py, epoch)
    }

    /// End the current epoch's iteration (cancels outstanding work; the loader stays where it
    /// stands, so a later `start_epoch` of the same epoch continues).
    fn end_epoch(&self, py: Python<'_>) -> PyResult<()> {
        self.driver.end_epoch(py)
    }

    /// The next batch: `None` at the epoch's end, else
    /// `("ok", number, indices, samples)` or
    /// `("error", number, index, worker, exception, traceback_text, what)`.
    /// A loader error (a panic) raises `RuntimeError`.
    #[pyo3(signature = (timeout_s=None))]
    fn next_batch(&self, py: Python<'_>, timeout_s: Option<f64>) -> PyResult<Option<PyObject>> {
        let timeout = timeout_of(timeout_s)?;
        let Some((_, b)) = self.driver.next(py, timeout)? else {
            return Ok(None);
        };
        let b = b.map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        let mut values = Vec::with_capacity(b.data.len());
        for item in b.data {
            match item.value {
                Ok(v) => values.push(v),
                Err(f) => {
                    let t = (
                        "error",
                        b.number,
                        item.index,
                        item.worker,
                        f.exc,
                        f.traceback,
                        f.what,
                    );
                    return Ok(Some(t.into_pyobject(py)?.into_any().unbind()));
                }
            }
        }
        let t = (
            "ok",
            b.number,
            PyList::new(py, b.indices)?,
            PyList::new(py, values)?,
        );
        Ok(Some(t.into_pyobject(py)?.into_any().unbind()))
    }

    /// Where the loader stands, as JSON (a `loader::LoaderState`).
    fn state(&self, py: Python<'_>) -> PyResult<String> {
        let s = self.driver.state(py)?;
        serde_json::to_string(&s).map_err(|e| PyRuntimeError::new_err(format!("state: {e}")))
    }

    /// Resume from a state given as JSON; `ValueError` when it does not fit this loader.
    fn restore(&self, py: Python<'_>, state: &str) -> PyResult<()> {
        let s: LoaderState = serde_json::from_str(state)
            .map_err(|e| PyValueError::new_err(format!("state_dict: not a loader state: {e}")))?;
        self.driver.restore(py, s)?.map_err(config_error)
    }

    /// The last (or current) epoch's report: `(json, text)`, or `None` before any epoch.
    fn report(&self, py: Python<'_>) -> PyResult<Option<(String, String)>> {
        self.driver.report(py)
    }

    /// Per worker, since the loader was built: `(gil_wait_s, python_s, python_cpu_s, calls,
    /// rust_s)`.
    fn gil_stats(&self) -> Vec<GilRow> {
        self.gil.snapshot(self.workers)
    }

    /// Stop the driver and join every worker thread (without the GIL). Idempotent.
    fn close(&self, py: Python<'_>) {
        self.driver.close(py);
    }

    /// Stop without waiting: close the driver's channel; it cancels the epoch and ends its
    /// threads in the background once the samples in service are done (`close()` joins them).
    fn stop(&self) {
        self.driver.detach();
    }

    /// True once closed, or stopped by an interrupt or a timeout (then its threads end in the
    /// background; `close()` joins them).
    fn closed(&self) -> bool {
        self.driver.closed()
    }

    /// True once closed and every thread has ended (joined now); false while they run.
    fn reap(&self) -> bool {
        self.driver.reap()
    }
}

impl Drop for LoaderCore {
    fn drop(&mut self) {
        // Without `close()` (the Python classes call it) the driver is detached, not joined:
        // joining here, inside Python's deallocation, could wait for a worker that waits for
        // the GIL. Closing the channel ends the driver and its workers in the background.
        self.driver.detach();
    }
}

/// Raise `ValueError` unless `spec` is a known strategy that can serve `workers` workers.
#[pyfunction]
fn check_strategy(spec: &str, workers: usize) -> PyResult<String> {
    let s = strategies::parse(spec).map_err(|e| PyValueError::new_err(format!("strategy: {e}")))?;
    s.validate(workers)
        .map_err(|e| PyValueError::new_err(format!("strategy: {e}")))?;
    Ok(s.spec())
}

/// The indices of epoch `epoch` of a dataset of `length` samples, shuffled from `seed` (the
/// same permutation the threaded loader uses), or in order when `seed` is `None`; `ValueError`
/// naming `field` where such an order could not be allocated.
#[pyfunction]
#[pyo3(signature = (seed, epoch, length, field = "dataset"))]
fn epoch_order(seed: Option<u64>, epoch: u64, length: usize, field: &str) -> PyResult<Vec<usize>> {
    match seed {
        Some(s) => Sampler::shuffled(s).try_indices(length, epoch),
        None => Sampler::sequential().try_indices(length, epoch),
    }
    .map_err(|m| PyValueError::new_err(format!("{field}: {m}")))
}

/// Threads of this process (Linux: entries of `/proc/self/task`), or `None` elsewhere.
#[pyfunction]
fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

/// How many more threads (or processes: the kernel counts both as tasks) this process may
/// start, by the engine's conservative rule (`scheduler::thread_limit`).
#[pyfunction]
fn task_limit() -> usize {
    loader::thread_limit()
}

/// The extension module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LoaderCore>()?;
    m.add_class::<pipeline::PipelineCore>()?;
    m.add_class::<mix::MixStatsHandle>()?;
    m.add_function(wrap_pyfunction!(check_strategy, m)?)?;
    m.add_function(wrap_pyfunction!(epoch_order, m)?)?;
    m.add_function(wrap_pyfunction!(thread_count, m)?)?;
    m.add_function(wrap_pyfunction!(task_limit, m)?)?;
    #[cfg(unix)]
    m.add_function(wrap_pyfunction!(process::exchange, m)?)?;
    m.add("DEFAULT_STRATEGY", loader::DEFAULT_STRATEGY)?;
    Ok(())
}
