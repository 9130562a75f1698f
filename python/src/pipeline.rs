//! `PipelineCore`: stages of Python callables on the `loader` crate's [`Pipeline`].
//!
//! Every item is a [`PyItem`]: a Python value, or the exception a stage raised on it (with its
//! traceback text). A stage passes exceptions through untouched, so a failure reaches the
//! consumer at its item's position as the original exception; the Rust pipeline itself only
//! fails on a panic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Acquire};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loader::pipeline::Runner;
use loader::{
    Autotune, MaxFailures, OnFailure, Pipeline, PipelineBuilder, PipelineError, PipelineState,
    Remainder, Stage,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyIterator, PyList};

use crate::driver::{lock, Driver};
use crate::{call_many, count_error, ChunksOn, Failure, GilRow, GilSlot, GilStats};

/// A value, or the exception a stage raised on it.
type PyItem = Result<Py<PyAny>, Box<Failure>>;

/// One epoch's source items, as the Python side gave them.
enum EpochItems {
    /// The items themselves (a sequence's, a callable's).
    Listed(Vec<Py<PyAny>>),
    /// `Pipeline(n)`: the indices `0..n`, sequential or in a shuffled order, made into Python
    /// ints a chunk at a time as the engine reads them: an epoch of `10**9` holds no list of
    /// a billion ints (~36 GB; it was made whole before the first item), and a shuffled one
    /// holds its order as 8 bytes an index.
    Indices(IndexItems),
}

/// Indices made into Python ints [`INDEX_CHUNK`] at a time, under one hold of the GIL.
struct IndexItems {
    len: usize,
    /// `None`: `0..len` in order.
    order: Option<Vec<usize>>,
    /// The next index (position in `order`) not yet made.
    next: usize,
    made: std::vec::IntoIter<Py<PyAny>>,
}

const INDEX_CHUNK: usize = 256;

impl IndexItems {
    fn new(len: usize, seed: Option<u64>, epoch: u64) -> PyResult<IndexItems> {
        let order = match seed {
            None => None,
            Some(s) => Some(
                loader::Sampler::shuffled(s)
                    .try_indices(len, epoch)
                    .map_err(|m| PyValueError::new_err(format!("source: {m}")))?,
            ),
        };
        Ok(IndexItems {
            len,
            order,
            next: 0,
            made: Vec::new().into_iter(),
        })
    }
}

impl Iterator for IndexItems {
    type Item = PyItem;

    fn next(&mut self) -> Option<PyItem> {
        if let Some(x) = self.made.next() {
            return Some(Ok(x));
        }
        if self.next >= self.len {
            return None;
        }
        let (start, end) = (self.next, self.len.min(self.next + INDEX_CHUNK));
        let made: PyResult<Vec<Py<PyAny>>> = Python::with_gil(|py| {
            (start..end)
                .map(|k| {
                    let i = self.order.as_ref().map_or(k, |o| o[k]);
                    Ok(i.into_pyobject(py)?.into_any().unbind())
                })
                .collect()
        });
        self.next = end;
        // Making an int fails only when memory does: a panic here is the engine's "the
        // source broke", an error at the next position that ends the epoch (not items lost
        // without a word).
        self.made = match made {
            Ok(v) => v.into_iter(),
            Err(e) => panic!("making the source positions {start}..{end} into Python ints: {e}"),
        };
        self.made.next().map(Ok)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.len - self.next + self.made.len();
        (n, Some(n))
    }
}

/// An epoch's source iterator: either kind of [`EpochItems`].
enum EpochIter {
    Listed(std::vec::IntoIter<Py<PyAny>>),
    Indices(IndexItems),
}

impl Iterator for EpochIter {
    type Item = PyItem;

    fn next(&mut self) -> Option<PyItem> {
        match self {
            EpochIter::Listed(it) => it.next().map(Ok),
            EpochIter::Indices(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            EpochIter::Listed(it) => it.size_hint(),
            EpochIter::Indices(it) => it.size_hint(),
        }
    }
}

/// `items` of [`PipelineCore::start_epoch`]: a list of the items, or `(n, seed)` for the
/// indices `0..n` (`seed`: `None` in order, else shuffled by it as epoch `epoch`).
fn epoch_items(items: &Bound<'_, PyAny>, epoch: u64) -> PyResult<EpochItems> {
    if let Ok((n, seed)) = items.extract::<(usize, Option<u64>)>() {
        return Ok(EpochItems::Indices(IndexItems::new(n, seed, epoch)?));
    }
    Ok(EpochItems::Listed(items.extract()?))
}

/// One stage as Python describes it: `(op, name, kind, concurrency, queue, function, size,
/// drop_last, strategy, chunk, fixed)`, where `op` is `map`, `filter`, `flat_map` or `batch` (whose
/// function is the collate function, or `None` for plain lists); `chunk` (a blocking map
/// only), `(most, seconds)`: its threads take up to `most` waiting items at once (as many
/// as fit in `seconds` at the stage's mean time per item, if given) and call the function's
/// `many(items)`, which returns `(ok, value or exception)` per item (a process stage);
/// `fixed`: autotune leaves the stage's threads alone (a process stage's: each holds a
/// socket of a worker process, and more would fork more processes).
type StageSpec = (
    String,
    String,
    String,
    Option<usize>,
    Option<usize>,
    Option<Py<PyAny>>,
    Option<usize>,
    bool,
    Option<String>,
    Option<(usize, Option<f64>)>,
    bool,
);

/// Under `on_failure="skip"` or `"halt"` a Python exception is the engine's failure (so its
/// policy counts, skips or halts): its message starts with this marker and the number under
/// which the exception waits in [`Failures`], to be raised as itself at its position.
const MARK: &str = "\u{1}schedlab-failure#";

/// Exceptions handed to the engine as failures, by number (see [`MARK`]).
#[derive(Default)]
struct Failures {
    next: u64,
    held: HashMap<u64, Failure>,
}

/// What a `filter` or `flat_map` stage makes of one item: nothing, one item (kept, or an
/// error), or the iterator its function returned, whose children the engine pulls one at a
/// time as the next stage has room (each pull takes the GIL for one `__next__`).
enum Children {
    Done,
    One(PyItem),
    Iter(Box<ChildIter>),
}

/// A `flat_map` function's iterator, with what pulling from it needs.
struct ChildIter {
    it: Py<PyIterator>,
    slot: Arc<GilSlot>,
    name: String,
    fails: Fails,
    stopped: Arc<AtomicBool>,
}

impl Iterator for Children {
    type Item = PyItem;

    fn next(&mut self) -> Option<PyItem> {
        match std::mem::replace(self, Children::Done) {
            Children::Done => None,
            Children::One(x) => Some(x),
            Children::Iter(c) => {
                if c.stopped.load(Acquire) {
                    return None;
                }
                let next = c.slot.call(|py| match c.it.bind(py).clone().next() {
                    None => Ok(None),
                    Some(Ok(x)) => Ok(Some(x.unbind())),
                    Some(Err(e)) => Err(Box::new(Failure::new(py, e, &c.name))),
                });
                match next {
                    Ok(Some(x)) => {
                        *self = Children::Iter(c);
                        Some(Ok(x))
                    }
                    Ok(None) => None,
                    // an exception from the iterator ends this item's children: the ones
                    // before it were delivered, the error stands at its place
                    Err(e) => match c.fails {
                        Fails::Engine(None) => None,
                        _ => Some(Err(e)),
                    },
                }
            }
        }
    }
}

/// What a stage does with a Python exception.
#[derive(Clone)]
enum Fails {
    /// Pass it on as a value: raised at its position (`on_failure="raise"`).
    Carry,
    /// Hand it to the engine; keep the exception (`"halt"`) or drop it (`"skip"`).
    Engine(Option<Arc<Mutex<Failures>>>),
}

impl Fails {
    /// What a stage returns for `f`: a value that carries it, or the engine's failure.
    fn fail(&self, f: Box<Failure>) -> Result<PyItem, String> {
        match self {
            Fails::Carry => Ok(Err(f)),
            Fails::Engine(keep) => {
                let summary = f.traceback.lines().last().unwrap_or("").trim().to_string();
                let Some(keep) = keep else {
                    return Err(summary);
                };
                let mut k = lock(keep);
                let id = k.next;
                k.next += 1;
                k.held.insert(id, *f);
                Err(format!("{MARK}{id}: {summary}"))
            }
        }
    }
}

/// A stream whose Python exceptions follow `on_failure` as a stage's do: carried to their
/// position (`"raise"`), or handed to the engine as the source's failures (`"skip"` drops
/// and counts them, `"halt"` counts them and raises each as itself) — also when no stage
/// follows the source.
struct FailingSource {
    inner: crate::streams::PySource,
    fails: Fails,
}

impl loader::source::Source for FailingSource {
    type Item = PyItem;
    fn fingerprint(&self) -> loader::source::SourceFingerprint {
        self.inner.fingerprint()
    }
    fn start(&mut self, epoch: u64) -> Result<(), loader::source::SourceError> {
        self.inner.start(epoch)
    }
    fn next(&mut self) -> Option<Result<PyItem, loader::source::SourceError>> {
        match self.inner.next()? {
            Ok(Err(f)) => Some(
                self.fails
                    .fail(f)
                    .map_err(loader::source::SourceError::Other),
            ),
            other => Some(other),
        }
    }
    fn skip(&mut self) -> Option<Result<(), loader::source::SourceError>> {
        self.inner.skip()
    }
    fn state(&self) -> loader::source::SourceState {
        self.inner.state()
    }
    fn restore(
        &mut self,
        state: &loader::source::SourceState,
    ) -> Result<(), loader::source::SourceError> {
        self.inner.restore(state)
    }
}

fn runner_slot(r: Runner) -> usize {
    match r {
        Runner::Cpu(w) => w,
        Runner::Thread(i) => i,
    }
}

/// A pipeline of Python stages (internal; `schedlab.Pipeline` is the public face).
#[pyclass(module = "schedlab._core")]
pub struct PipelineCore {
    driver: Driver<Pipeline<PyItem>>,
    sources: Arc<Mutex<HashMap<u64, EpochItems>>>,
    gil: Vec<(String, Arc<GilStats>)>,
    /// `workers`, and each stage's `concurrency` where given: named by a refused count.
    workers: usize,
    counts: Vec<(String, usize)>,
    /// Exceptions handed to the engine as failures (`on_failure="halt"`), by number.
    failures: Arc<Mutex<Failures>>,
}

fn stage_of(
    name: &str,
    kind: &str,
    concurrency: Option<usize>,
    queue: Option<usize>,
    strategy: Option<&str>,
) -> PyResult<Stage> {
    let mut s = match kind {
        "cpu" => Stage::cpu(name),
        "blocking" => Stage::blocking(name, concurrency.unwrap_or(1)),
        other => {
            return Err(PyValueError::new_err(format!(
                "stage '{name}': kind: expected \"cpu\" or \"blocking\", got {other:?}"
            )))
        }
    };
    if let Some(c) = concurrency {
        s = s.concurrency(c);
    }
    if let Some(q) = queue {
        s = s.queue(q);
    }
    if let Some(spec) = strategy {
        if kind != "cpu" {
            return Err(PyValueError::new_err(format!(
                "stage '{name}': strategy: only a kind=\"cpu\" stage has a strategy (a blocking stage's threads take items in order), got {spec:?}"
            )));
        }
        s = s.strategy(spec);
    }
    Ok(s)
}

#[pymethods]
impl PipelineCore {
    /// Build the pipeline and start its threads.
    #[new]
    #[pyo3(signature = (stages, workers, ordered, autotune=false, max_items=None, window=None,
                        on_failure="raise", max_failures=None, stream=None,
                        prefetch_next_epoch=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        stages: Vec<StageSpec>,
        workers: usize,
        ordered: bool,
        autotune: bool,
        max_items: Option<usize>,
        window: Option<usize>,
        on_failure: &str,
        max_failures: Option<f64>,
        stream: Option<Bound<'_, PyAny>>,
        prefetch_next_epoch: bool,
    ) -> PyResult<Self> {
        let failures: Arc<Mutex<Failures>> = Arc::default();
        let (fails, policy) = match (on_failure, max_failures) {
            ("raise", None) => (Fails::Carry, OnFailure::Yield),
            ("skip", None) => (Fails::Engine(None), OnFailure::Skip),
            ("halt", Some(m)) if m >= 1.0 && m.fract() == 0.0 && m <= u64::MAX as f64 => (
                Fails::Engine(Some(Arc::clone(&failures))),
                OnFailure::Halt(MaxFailures::Count(m as u64)),
            ),
            ("halt", Some(m)) if (0.0..1.0).contains(&m) => (
                Fails::Engine(Some(Arc::clone(&failures))),
                OnFailure::Halt(MaxFailures::Fraction(m)),
            ),
            ("halt", m) => {
                return Err(PyValueError::new_err(format!(
                    "max_failures: on_failure=\"halt\" needs a count (an int >= 1) or a fraction (0 <= x < 1), got {m:?}"
                )))
            }
            (_, Some(_)) => {
                return Err(PyValueError::new_err(
                    "max_failures: only with on_failure=\"halt\"",
                ))
            }
            (other, None) => {
                return Err(PyValueError::new_err(format!(
                    "on_failure: expected \"raise\", \"skip\" or \"halt\", got {other:?}"
                )))
            }
        };
        let sources: Arc<Mutex<HashMap<u64, EpochItems>>> = Arc::default();
        let src = Arc::clone(&sources);
        let mut b: PipelineBuilder<PyItem> = match stream {
            // A stream (issue 30): pulled lazily, its state in the pipeline's.
            Some(spec) => Pipeline::from_stateful(FailingSource {
                inner: crate::streams::source_of(py, &spec)?,
                fails: fails.clone(),
            }),
            None => Pipeline::from_source(move |epoch| match lock(&src).remove(&epoch) {
                Some(EpochItems::Indices(it)) => EpochIter::Indices(it),
                Some(EpochItems::Listed(v)) => EpochIter::Listed(v.into_iter()),
                None => EpochIter::Listed(Vec::new().into_iter()),
            }),
        };
        let mut gil = Vec::new();
        // Set when the consumer stops waiting (an interrupt, `close()`): the stages then pass
        // their items through without calling Python, so the epoch ends at once.
        let stopped = Arc::new(AtomicBool::new(false));
        // Which Python argument a refused thread count came from, for the error.
        let mut counts = Vec::new();
        for (op, name, kind, concurrency, queue, f, size, drop_last, strategy, chunk, fixed) in
            stages
        {
            if let Some(c) = concurrency {
                counts.push((name.clone(), c));
            }
            // Per-runner counters are made when a runner first calls (nothing here is sized
            // by `workers` or `concurrency`: the builder checks them first).
            let stats = Arc::new(GilStats::default());
            gil.push((name.clone(), Arc::clone(&stats)));
            let stopped = Arc::clone(&stopped);
            let stage = stage_of(&name, &kind, concurrency, queue, strategy.as_deref())?;
            let stage = if fixed { stage.fixed() } else { stage };
            let fails = fails.clone();
            match op.as_str() {
                "map" if chunk.is_some_and(|(c, _)| c != 1) => {
                    let f = need(f, &name)?;
                    let slots = Arc::clone(&stats);
                    let (most, secs) = chunk.unwrap_or((1, None));
                    let stage = match secs {
                        Some(t) if t.is_finite() && t > 0.0 => {
                            stage.chunk_time(Duration::from_secs_f64(t))
                        }
                        Some(t) => {
                            return Err(PyValueError::new_err(format!(
                                "stage '{name}': chunk time: expected seconds > 0, got {t}"
                            )))
                        }
                        None => stage,
                    };
                    let on = ChunksOn::default();
                    b = b.try_map_chunks_with(
                        stage,
                        most,
                        move |r| slots.slot(runner_slot(r)),
                        move |items: Vec<PyItem>, slot: &mut Arc<GilSlot>| {
                            many(&f, &name, &fails, &stopped, &on, items, slot)
                        },
                    );
                }
                "map" => {
                    let f = need(f, &name)?;
                    let slots = Arc::clone(&stats);
                    b = b.try_map_with(
                        stage,
                        move |r| slots.slot(runner_slot(r)),
                        move |item: PyItem, slot: &mut Arc<GilSlot>| {
                            let v = match item {
                                Err(e) => return fails.fail(e),
                                Ok(v) if stopped.load(Acquire) => return Ok(Ok(v)),
                                Ok(v) => v,
                            };
                            match slot.call(|py| {
                                f.call1(py, (v,))
                                    .map_err(|e| Box::new(Failure::new(py, e, &name)))
                            }) {
                                Ok(v) => Ok(Ok(v)),
                                Err(e) => fails.fail(e),
                            }
                        },
                    );
                }
                "filter" | "flat_map" => {
                    let f = need(f, &name)?;
                    let filter = op == "filter";
                    let slot = stats.slot(0);
                    b = b.flat_map(stage, move |item: PyItem| -> Children {
                        let v = match item {
                            Err(e) => return Children::One(Err(e)),
                            Ok(_) if stopped.load(Acquire) => return Children::Done,
                            Ok(v) => v,
                        };
                        let failed = |py: Python<'_>, e: PyErr| match fails {
                            // no failure count here (a flat_map cannot fail in the engine):
                            // skipped, or carried to the next map or batch, which hands it
                            // to the engine
                            Fails::Engine(None) => Children::Done,
                            _ => Children::One(Err(Box::new(Failure::new(py, e, &name)))),
                        };
                        slot.call(|py| {
                            let out = match f.call1(py, (v.clone_ref(py),)) {
                                Ok(out) => out,
                                Err(e) => return failed(py, e),
                            };
                            if filter {
                                return match out.is_truthy(py) {
                                    Ok(true) => Children::One(Ok(v)),
                                    Ok(false) => Children::Done,
                                    Err(e) => failed(py, e),
                                };
                            }
                            match out.bind(py).try_iter() {
                                // the children are pulled one at a time, as the engine has
                                // room for them: never the whole iterable at once
                                Ok(it) => Children::Iter(Box::new(ChildIter {
                                    it: it.unbind(),
                                    slot: Arc::clone(&slot),
                                    name: name.clone(),
                                    fails: fails.clone(),
                                    stopped: Arc::clone(&stopped),
                                })),
                                Err(e) => failed(py, e),
                            }
                        })
                    });
                }
                "batch" => {
                    let size = size.unwrap_or(0);
                    if size == 0 {
                        return Err(PyValueError::new_err(format!(
                            "batch: size must be >= 1, got {size}"
                        )));
                    }
                    let rem = if drop_last {
                        Remainder::Drop
                    } else {
                        Remainder::Partial
                    };
                    let slots = Arc::clone(&stats);
                    b = b.batch(size, rem).try_map_with(
                        stage,
                        move |r| slots.slot(runner_slot(r)),
                        move |items: Vec<PyItem>, slot: &mut Arc<GilSlot>| {
                            let mut values = Vec::with_capacity(items.len());
                            for i in items {
                                match i {
                                    Ok(v) => values.push(v),
                                    Err(e) => return fails.fail(e),
                                }
                            }
                            if stopped.load(Acquire) {
                                if let Some(v) = values.pop() {
                                    // nobody waits for it: any value will do, no Python runs
                                    return Ok(Ok(v));
                                }
                            }
                            match slot.call(|py| {
                                let list = PyList::new(py, values)
                                    .map_err(|e| Box::new(Failure::new(py, e, &name)))?;
                                match &f {
                                    Some(f) => f
                                        .call1(py, (list,))
                                        .map_err(|e| Box::new(Failure::new(py, e, &name))),
                                    None => Ok(list.into_any().unbind()),
                                }
                            }) {
                                Ok(v) => Ok(Ok(v)),
                                Err(e) => fails.fail(e),
                            }
                        },
                    );
                }
                other => {
                    return Err(PyValueError::new_err(format!(
                        "stage '{name}': unknown operation {other:?}"
                    )))
                }
            }
        }
        if autotune {
            let mut cfg = Autotune::new();
            if let Some(n) = max_items {
                cfg = cfg.max_items(n);
            }
            b = b.autotune(cfg);
        }
        let p = py
            .allow_threads(move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    let b = b
                        .workers(workers)
                        .ordered(ordered)
                        .on_failure(policy)
                        .prefetch_next_epoch(prefetch_next_epoch);
                    match window {
                        Some(w) => b.window(w),
                        None => b,
                    }
                    .build()
                }))
            })
            .map_err(|p| crate::build_panic("pipeline", p.as_ref()))?
            .map_err(|e| build_error(e, workers, &counts))?;
        let driver = Driver::start("schedlab-pipeline", "pipeline", p, stopped)?;
        Ok(PipelineCore {
            driver,
            sources,
            gil,
            workers,
            counts,
            failures,
        })
    }

    /// Start epoch `epoch` over the source items `items` (a list, or `(n, seed)`: the indices
    /// `0..n`, made as they are read, in order or shuffled by `seed`); `next`: the next
    /// epoch's, which the engine opens while this epoch ends when the pipeline prefetches
    /// the next epoch.
    #[pyo3(signature = (epoch, items, next=None))]
    fn start_epoch(
        &self,
        py: Python<'_>,
        epoch: u64,
        items: &Bound<'_, PyAny>,
        next: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let items = epoch_items(items, epoch)?;
        let next = match (next, epoch.checked_add(1)) {
            (Some(n), Some(e)) => Some(epoch_items(n, e)?),
            _ => None,
        };
        {
            let mut sources = lock(&self.sources);
            // an earlier epoch's items will not be asked for (nor this one's, when a
            // prefetched run of it goes on: that run took them when it opened)
            sources.retain(|&e, _| e >= epoch);
            sources.insert(epoch, items);
            if let (Some(next), Some(e)) = (next, epoch.checked_add(1)) {
                sources.insert(e, next);
            }
        }
        // those of an earlier epoch will not be asked for
        lock(&self.failures).held.clear();
        self.driver.start_epoch(py, epoch)
    }

    /// End the current epoch (cancels outstanding work).
    fn end_epoch(&self, py: Python<'_>) -> PyResult<()> {
        self.driver.end_epoch(py)
    }

    /// The next item: `None` at the end, `("ok", value)`,
    /// `("error", exception, traceback_text, stage, k)` (`k`: the results this epoch's
    /// iteration handed out before it) or `("halted", message)` (`on_failure="halt"`: the
    /// epoch ends); a panic raises `RuntimeError`, threads that cannot start `ValueError`
    /// naming `workers` or the stage's `concurrency`. `timeout_s`: how long to wait (`None`
    /// or 0: no limit); past it, `RuntimeError` and the driver is abandoned, as after an
    /// interrupt.
    #[pyo3(signature = (timeout_s=None))]
    fn next_item(&self, py: Python<'_>, timeout_s: Option<f64>) -> PyResult<Option<PyObject>> {
        let Some((k, i)) = self.driver.next(py, crate::timeout_of(timeout_s)?)? else {
            return Ok(None);
        };
        let i = match i {
            Err(PipelineError::Item { message, .. }) if message.starts_with(MARK) => {
                let id = message[MARK.len()..]
                    .split(':')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok());
                match id.and_then(|id| lock(&self.failures).held.remove(&id)) {
                    Some(f) => Ok(Err(Box::new(f))),
                    None => return Err(PyRuntimeError::new_err(message)),
                }
            }
            Err(e @ PipelineError::Halted { .. }) => {
                let t = ("halted", e.to_string());
                return Ok(Some(t.into_pyobject(py)?.into_any().unbind()));
            }
            other => other,
        };
        let i = i.map_err(|e| match e {
            // threads start with the epoch: a count the OS refuses is the caller's argument
            PipelineError::Start(_) | PipelineError::Config { .. } => {
                build_error(e, self.workers, &self.counts)
            }
            e => PyRuntimeError::new_err(e.to_string()),
        })?;
        let obj = match i {
            Ok(v) => ("ok", v).into_pyobject(py)?.into_any().unbind(),
            Err(f) => ("error", f.exc, f.traceback, f.what, k)
                .into_pyobject(py)?
                .into_any()
                .unbind(),
        };
        Ok(Some(obj))
    }

    /// The last (or current) epoch's report: `(json, text)`, or `None`.
    fn report(&self, py: Python<'_>) -> PyResult<Option<(String, String)>> {
        self.driver.report(py)
    }

    /// Where the pipeline stands, as JSON (a `loader::PipelineState`): inside the current
    /// epoch, or between epochs.
    fn state(&self, py: Python<'_>) -> PyResult<String> {
        let s = self.driver.state(py)?;
        serde_json::to_string(&s).map_err(|e| PyRuntimeError::new_err(format!("state: {e}")))
    }

    /// Resume from a state given as JSON: the next `start_epoch(state.epoch)` yields the rest
    /// of that epoch. `ValueError` when it does not fit this pipeline.
    fn restore(&self, py: Python<'_>, state: &str) -> PyResult<()> {
        let s: PipelineState = serde_json::from_str(state)
            .map_err(|e| PyValueError::new_err(format!("state_dict: not a pipeline state: {e}")))?;
        self.driver
            .restore(py, s)?
            .map_err(|e| PyValueError::new_err(format!("state_dict: {e}")))
    }

    /// Per stage, since the pipeline was built: `(name, [(gil_wait_s, python_s, python_cpu_s,
    /// calls, rust_s)])` (`rust_s` is 0: a stage's runners are not followed between calls;
    /// `python_cpu_s` is estimated from a sample of the calls, see `GilSlot`).
    fn gil_stats(&self) -> Vec<(String, Vec<GilRow>)> {
        self.gil
            .iter()
            .map(|(n, g)| (n.clone(), g.snapshot(0)))
            .collect()
    }

    /// Stop and join every thread (without the GIL). Idempotent.
    fn close(&self, py: Python<'_>) {
        self.driver.close(py);
    }

    /// Stop without waiting: close the driver's channel; no stage function is called again,
    /// and the threads end in the background once the calls in service return (`close()`
    /// joins them).
    fn stop(&self) {
        self.driver.detach();
    }

    /// True once closed, or stopped by an interrupt (then its threads end in the background;
    /// `close()` joins them).
    fn closed(&self) -> bool {
        self.driver.closed()
    }

    /// True once closed and every thread has ended (joined now); false while they run.
    fn reap(&self) -> bool {
        self.driver.reap()
    }
}

impl Drop for PipelineCore {
    fn drop(&mut self) {
        self.driver.detach();
    }
}

/// A refused build as `ValueError`; a refused thread count names its Python argument:
/// `workers`, or the `concurrency` of the stage the error names.
fn build_error(e: PipelineError, workers: usize, counts: &[(String, usize)]) -> PyErr {
    let message = e.to_string();
    let stage = match &e {
        PipelineError::Config { stage, .. } => counts.iter().find(|(n, _)| n == stage),
        // the engine's thread-count refusal starts with the stage's name: "read: concurrency
        // = …"; other errors quote it
        _ => counts.iter().find(|(n, _)| {
            message.contains(&format!("'{n}'")) || message.starts_with(&format!("{n}: "))
        }),
    };
    match stage {
        Some((name, c)) if !message.contains("concurrency") => {
            count_error(format!("stage '{name}': {message}"), "concurrency", *c)
        }
        Some((name, _)) => match message.strip_prefix(&format!("{name}: ")) {
            Some(rest) => PyValueError::new_err(format!("stage '{name}': {rest}")),
            None => PyValueError::new_err(message),
        },
        None => count_error(message, "workers", workers),
    }
}

/// A chunk of a `map` stage's items through its function's `many(items)` (one GIL hold for
/// the chunk; see [`StageSpec`]): failures carried in pass through, and so does every item
/// once the consumer stopped waiting; the rest go to `many` together, one result each.
fn many(
    f: &Py<PyAny>,
    name: &str,
    fails: &Fails,
    stopped: &AtomicBool,
    on: &ChunksOn,
    items: Vec<PyItem>,
    slot: &Arc<GilSlot>,
) -> Vec<Result<PyItem, String>> {
    let mut out: Vec<Option<Result<PyItem, String>>> = Vec::with_capacity(items.len());
    let (mut send, mut at) = (Vec::new(), Vec::new());
    for item in items {
        match item {
            Err(e) => out.push(Some(fails.fail(e))),
            Ok(v) if stopped.load(Acquire) => out.push(Some(Ok(Ok(v)))),
            Ok(v) => {
                at.push(out.len());
                out.push(None);
                send.push(v);
            }
        }
    }
    if !send.is_empty() {
        // one GIL hold and one message for the chunk; an `auto` stage still on threads takes
        // each item as its own call (its GIL verdict counts calls), not in this GIL hold
        let answers: Vec<Result<Py<PyAny>, Box<Failure>>> = if on.now(f, slot) {
            slot.call(|py| call_many(py, f, &send, name, "items"))
                .into_iter()
                .map(|r| r.map_err(Box::new))
                .collect()
        } else {
            send.into_iter()
                .map(|v| {
                    slot.call(|py| {
                        f.call1(py, (v,))
                            .map_err(|e| Box::new(Failure::new(py, e, name)))
                    })
                })
                .collect()
        };
        for (j, r) in at.into_iter().zip(answers) {
            out[j] = Some(match r {
                Ok(v) => Ok(Ok(v)),
                Err(e) => fails.fail(e),
            });
        }
    }
    out.into_iter()
        .map(|o| o.expect("every item of the chunk has its result"))
        .collect()
}

fn need(f: Option<Py<PyAny>>, stage: &str) -> PyResult<Py<PyAny>> {
    f.ok_or_else(|| PyValueError::new_err(format!("stage '{stage}': a function is required")))
}
