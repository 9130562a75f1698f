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
//!   of its own; the Python consumer sends it requests and waits for each answer **without the
//!   GIL**, in slices of 50 ms between which it runs the signal handlers
//!   (`Python::check_signals`), so Ctrl-C raises `KeyboardInterrupt` at once.
//! * Python exceptions are values: a failing `__getitem__` gives a sample that carries the
//!   exception and its traceback text, and the consumer raises it at its batch's position.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use loader::{Batch, Loader, LoaderError, LoaderState, Remainder, Sampler};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use scheduler::WorkerId;

mod pipeline;

/// How often a waiting consumer runs Python's signal handlers.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// Per-worker GIL accounting: time waiting to acquire the GIL, wall time inside the Python
/// call, the thread's CPU time inside it, calls, and the time in Rust between calls.
///
/// Wall minus CPU inside a call is time the thread was off the CPU while Python ran it: waits
/// to take the GIL back after the interpreter's switch interval handed it to another thread,
/// and blocking calls that release it (sleeps, reads). Python does not say which.
#[derive(Debug, Default)]
pub(crate) struct GilStats {
    workers: Vec<[AtomicU64; 5]>,
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID needs nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl GilStats {
    pub(crate) fn new(workers: usize) -> Self {
        GilStats {
            workers: (0..workers).map(|_| Default::default()).collect(),
        }
    }

    fn add(&self, worker: usize, wait: Duration, wall: Duration, cpu: Duration) {
        if let Some(w) = self.workers.get(worker) {
            w[0].fetch_add(wait.as_nanos() as u64, Relaxed);
            w[1].fetch_add(wall.as_nanos() as u64, Relaxed);
            w[2].fetch_add(cpu.as_nanos() as u64, Relaxed);
            w[3].fetch_add(1, Relaxed);
        }
    }

    /// Call `f` holding the GIL on behalf of `worker`, counting the wait and the run.
    pub(crate) fn call<T>(&self, worker: usize, f: impl FnOnce(Python<'_>) -> T) -> T {
        let t0 = Instant::now();
        Python::with_gil(|py| {
            let t1 = Instant::now();
            let c1 = thread_cpu();
            let r = f(py);
            self.add(
                worker,
                t1 - t0,
                t1.elapsed(),
                thread_cpu().saturating_sub(c1),
            );
            r
        })
    }

    /// Count `d` as time `worker` spent in Rust between two Python calls (the pool finding
    /// its next sample, or waiting for one).
    fn add_rust(&self, worker: usize, d: Duration) {
        if let Some(w) = self.workers.get(worker) {
            w[4].fetch_add(d.as_nanos() as u64, Relaxed);
        }
    }

    /// `[(gil_wait_s, python_s, python_cpu_s, calls, rust_s)]`, one per worker.
    pub(crate) fn snapshot(&self) -> Vec<GilRow> {
        let s = |a: &AtomicU64| a.load(Relaxed) as f64 / 1e9;
        self.workers
            .iter()
            .map(|w| (s(&w[0]), s(&w[1]), s(&w[2]), w[3].load(Relaxed), s(&w[4])))
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
}

/// A worker's state: its number, and the error of its `worker_init_fn`, if that raised.
struct WorkerState {
    worker: WorkerId,
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
        // SAFETY: on the thread that created it (see the `Send` impl), not holding the GIL:
        // take the GIL back with the saved state, then release the thread state.
        unsafe {
            pyo3::ffi::PyEval_RestoreThread(self.saved);
            pyo3::ffi::PyGILState_Release(self.gil);
        }
    }
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
        let init_error = self.init_fn.as_ref().and_then(|f| {
            self.gil.call(worker, |py| {
                f.call1(py, (worker,))
                    .err()
                    .map(|e| Failure::new(py, e, "worker_init_fn"))
            })
        });
        WorkerState {
            worker,
            init_error,
            last: None,
            _thread: thread,
        }
    }

    fn get(&self, index: usize, state: &mut WorkerState) -> Result<Item, String> {
        let worker = state.worker;
        if let Some(last) = state.last {
            self.gil.add_rust(worker, last.elapsed());
        }
        let value = self.gil.call(worker, |py| match &state.init_error {
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
}

type PyLoader = Loader<PyDataset, Vec<Item>>;

enum Cmd {
    Epoch(u64),
    Next,
    EndEpoch,
    State,
    Restore(LoaderState),
    Report,
}

enum Resp {
    Done,
    Batch(Option<Result<Batch<Vec<Item>>, LoaderError>>),
    State(LoaderState),
    Restored(Result<(), LoaderError>),
    Report(Option<(String, String)>),
}

fn report_of(r: Option<&loader::LoaderReport>) -> Option<(String, String)> {
    r.map(|r| (serde_json::to_string(r).unwrap_or_default(), r.to_string()))
}

/// The driver thread: owns the loader, answers one request at a time.
fn drive(mut loader: PyLoader, cmds: Receiver<Cmd>, resp: Sender<Resp>) {
    let mut pending: Option<Cmd> = None;
    loop {
        let cmd = match pending.take() {
            Some(c) => c,
            None => match cmds.recv() {
                Ok(c) => c,
                Err(_) => return,
            },
        };
        let answer = match cmd {
            Cmd::Epoch(e) => {
                let mut it = loader.epoch(e);
                if resp.send(Resp::Done).is_err() {
                    return;
                }
                loop {
                    let answer = match cmds.recv() {
                        Ok(Cmd::Next) => match it.next() {
                            // the epoch ended: later requests are the loader's
                            None => {
                                pending = Some(Cmd::Next);
                                break;
                            }
                            b => Resp::Batch(b),
                        },
                        Ok(Cmd::State) => Resp::State(it.state()),
                        Ok(Cmd::Report) => Resp::Report(report_of(it.report().as_ref())),
                        Ok(Cmd::EndEpoch) => break,
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => return,
                    };
                    if resp.send(answer).is_err() {
                        return;
                    }
                }
                drop(it);
                if pending.is_some() {
                    continue;
                }
                Resp::Done
            }
            Cmd::Next => Resp::Batch(None),
            Cmd::EndEpoch => Resp::Done,
            Cmd::State => Resp::State(loader.state()),
            Cmd::Restore(s) => Resp::Restored(loader.restore(&s)),
            Cmd::Report => Resp::Report(report_of(loader.report())),
        };
        if resp.send(answer).is_err() {
            return;
        }
    }
}

/// The consumer's end of a driver thread.
pub(crate) struct Driver<C, R> {
    cmds: Mutex<Option<Sender<C>>>,
    resp: Mutex<Receiver<R>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<C: Send, R: Send> Driver<C, R> {
    /// Start `f(commands, answers)` on a thread named `name`.
    pub(crate) fn start(
        name: &str,
        f: impl FnOnce(Receiver<C>, Sender<R>) + Send + 'static,
    ) -> PyResult<Self>
    where
        C: 'static,
        R: 'static,
    {
        let (cmd_tx, cmd_rx) = channel();
        let (resp_tx, resp_rx) = channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || f(cmd_rx, resp_tx))
            .map_err(|e| PyRuntimeError::new_err(format!("could not start a thread: {e}")))?;
        Ok(Driver {
            cmds: Mutex::new(Some(cmd_tx)),
            resp: Mutex::new(resp_rx),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Send `cmd` and wait for the answer without the GIL (see [`wait_for`]). After an error
    /// (an interrupt, a timeout) the driver is stopped: its answers would be out of step.
    pub(crate) fn request(&self, py: Python<'_>, cmd: C, timeout: Option<Duration>) -> PyResult<R> {
        let sent = lock(&self.cmds).as_ref().map(|tx| tx.send(cmd).is_ok());
        match sent {
            None => return Err(PyRuntimeError::new_err("closed")),
            Some(false) => return Err(PyRuntimeError::new_err("the driver thread stopped")),
            Some(true) => {}
        }
        let r = wait_for(py, &self.resp, timeout);
        if r.is_err() {
            self.close(py);
        }
        r
    }

    /// Stop the driver thread and join it, without the GIL. Idempotent.
    pub(crate) fn close(&self, py: Python<'_>) {
        drop(lock(&self.cmds).take());
        let t = lock(&self.thread).take();
        if let Some(t) = t {
            py.allow_threads(|| {
                let _ = t.join();
            });
        }
    }

    /// True once closed.
    pub(crate) fn closed(&self) -> bool {
        lock(&self.cmds).is_none()
    }

    /// Stop the driver without joining it (for `Drop`, where the GIL may be held).
    pub(crate) fn detach(&self) {
        drop(lock(&self.cmds).take());
    }
}

/// Lock, ignoring poisoning (our critical sections leave no broken state).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Wait for `resp` without the GIL, running signal handlers every [`WAIT_SLICE`].
pub(crate) fn wait_for<T: Send>(
    py: Python<'_>,
    resp: &Mutex<Receiver<T>>,
    timeout: Option<Duration>,
) -> PyResult<T> {
    let start = Instant::now();
    loop {
        match py.allow_threads(|| lock(resp).recv_timeout(WAIT_SLICE)) {
            Ok(v) => return Ok(v),
            Err(RecvTimeoutError::Timeout) => {
                py.check_signals()?;
                if let Some(t) = timeout {
                    if start.elapsed() >= t {
                        return Err(PyRuntimeError::new_err(format!(
                            "DataLoader timed out after {} seconds",
                            t.as_secs_f64()
                        )));
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err(
                    "the loader's driver thread stopped",
                ))
            }
        }
    }
}

fn config_error(e: LoaderError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// The loader: a `loader::Loader` over a Python dataset, driven from Python one request at a
/// time. `schedlab.DataLoader` is the public face; this class is internal.
#[pyclass(module = "schedlab._core")]
pub struct LoaderCore {
    driver: Driver<Cmd, Resp>,
    gil: Arc<GilStats>,
    orders: Arc<Mutex<HashMap<u64, Vec<usize>>>>,
    len: usize,
}

impl LoaderCore {
    fn request(&self, py: Python<'_>, cmd: Cmd, timeout: Option<Duration>) -> PyResult<Resp> {
        self.driver.request(py, cmd, timeout)
    }
}

#[pymethods]
impl LoaderCore {
    /// Build the loader and start its worker threads (each runs `worker_init_fn(worker)`).
    #[new]
    #[pyo3(signature = (getitem, length, batch_size, drop_last, seed, custom_order, workers,
                        strategy, prefetch, ordered, worker_init_fn=None, look_ahead=true))]
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
    ) -> PyResult<Self> {
        let gil = Arc::new(GilStats::new(workers));
        let orders: Arc<Mutex<HashMap<u64, Vec<usize>>>> = Arc::default();
        let dataset = PyDataset {
            len: length,
            getitem,
            init_fn: worker_init_fn,
            gil: Arc::clone(&gil),
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
                Loader::builder(dataset)
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
                    .build()
            })
            .map_err(config_error)?;
        let driver = Driver::start("schedlab-loader", move |c, r| drive(loader, c, r))?;
        Ok(LoaderCore {
            driver,
            gil,
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
        self.request(py, Cmd::Epoch(epoch), None).map(|_| ())
    }

    /// End the current epoch's iteration (cancels outstanding work; the loader stays where it
    /// stands, so a later `start_epoch` of the same epoch continues).
    fn end_epoch(&self, py: Python<'_>) -> PyResult<()> {
        self.request(py, Cmd::EndEpoch, None).map(|_| ())
    }

    /// The next batch: `None` at the epoch's end, else
    /// `("ok", number, indices, samples)` or
    /// `("error", number, index, worker, exception, traceback_text, what)`.
    /// A loader error (a panic) raises `RuntimeError`.
    #[pyo3(signature = (timeout_s=None))]
    fn next_batch(&self, py: Python<'_>, timeout_s: Option<f64>) -> PyResult<Option<PyObject>> {
        let timeout = timeout_s.filter(|t| *t > 0.0).map(Duration::from_secs_f64);
        let Resp::Batch(b) = self.request(py, Cmd::Next, timeout)? else {
            return Err(PyRuntimeError::new_err("loader: unexpected answer"));
        };
        let Some(b) = b else { return Ok(None) };
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
        match self.request(py, Cmd::State, None)? {
            Resp::State(s) => serde_json::to_string(&s)
                .map_err(|e| PyRuntimeError::new_err(format!("state: {e}"))),
            _ => Err(PyRuntimeError::new_err("loader: unexpected answer")),
        }
    }

    /// Resume from a state given as JSON; `ValueError` when it does not fit this loader.
    fn restore(&self, py: Python<'_>, state: &str) -> PyResult<()> {
        let s: LoaderState = serde_json::from_str(state)
            .map_err(|e| PyValueError::new_err(format!("state_dict: not a loader state: {e}")))?;
        match self.request(py, Cmd::Restore(s), None)? {
            Resp::Restored(r) => r.map_err(config_error),
            _ => Err(PyRuntimeError::new_err("loader: unexpected answer")),
        }
    }

    /// The last (or current) epoch's report: `(json, text)`, or `None` before any epoch.
    fn report(&self, py: Python<'_>) -> PyResult<Option<(String, String)>> {
        match self.request(py, Cmd::Report, None)? {
            Resp::Report(r) => Ok(r),
            _ => Err(PyRuntimeError::new_err("loader: unexpected answer")),
        }
    }

    /// Per worker, since the loader was built: `(gil_wait_s, python_s, python_cpu_s, calls,
    /// rust_s)`.
    fn gil_stats(&self) -> Vec<GilRow> {
        self.gil.snapshot()
    }

    /// Stop the driver and join every worker thread (without the GIL). Idempotent.
    fn close(&self, py: Python<'_>) {
        self.driver.close(py);
    }

    /// True once closed.
    fn closed(&self) -> bool {
        self.driver.closed()
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
/// same permutation the threaded loader uses), or in order when `seed` is `None`.
#[pyfunction]
#[pyo3(signature = (seed, epoch, length))]
fn epoch_order(seed: Option<u64>, epoch: u64, length: usize) -> Vec<usize> {
    match seed {
        Some(s) => Sampler::shuffled(s).indices(length, epoch),
        None => Sampler::sequential().indices(length, epoch),
    }
}

/// Threads of this process (Linux: entries of `/proc/self/task`), or `None` elsewhere.
#[pyfunction]
fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

/// The extension module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LoaderCore>()?;
    m.add_class::<pipeline::PipelineCore>()?;
    m.add_function(wrap_pyfunction!(check_strategy, m)?)?;
    m.add_function(wrap_pyfunction!(epoch_order, m)?)?;
    m.add_function(wrap_pyfunction!(thread_count, m)?)?;
    m.add("DEFAULT_STRATEGY", loader::DEFAULT_STRATEGY)?;
    Ok(())
}
