//! Streams from Python (issue 30): iterables and callables pulled lazily, shards, a shuffle
//! buffer, as `loader::source` sources whose items are [`PyItem`]s.
//!
//! Python describes a stream as a tuple (see `schedlab/streams.py`):
//! `("iter", obj, is_callable, shuffle)` or
//! `("shards", paths, rank, world_size, shuffle_seed, balanced, reader, reader_fn, shuffle)`,
//! where `shuffle` is `None` or `(buffer_size, seed)` and `reader` is `"tar"`, `"jsonl"`,
//! `"file"` or `"fn"` (then `reader_fn(path)` returns an iterable).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use loader::source::{
    FnReader, JsonLines, ShardReader, Shards, Source, SourceError, SourceFingerprint, SourceState,
    TarBodies, TarReaderInto, TarSample, WholeFile,
};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyIterator};

use crate::driver::lock;
use crate::Failure;

/// A value, or the exception raised making it.
pub(crate) type PyItem = Result<Py<PyAny>, Box<Failure>>;

/// A boxed stream of Python items.
pub(crate) type PySource = Box<dyn Source<Item = PyItem>>;

/// `obj` (iterated anew each epoch) or `obj(epoch)`, one item per `next()`.
struct PyIterSource {
    obj: Py<PyAny>,
    callable: bool,
    it: Option<Py<PyIterator>>,
    epoch: u64,
    pos: u64,
    /// `obj` was iterated already (a one-pass iterator cannot be again).
    opened: bool,
    /// The refusal to iterate a one-pass iterator again: the epoch's one failed item.
    refused: Option<String>,
}

/// What to pass instead of a one-pass iterator that is asked for a second pass.
fn one_pass(what: &str) -> String {
    format!(
        "source: a one-pass iterator (a generator, an iter(...)) gives one epoch, and it was \
         already iterated; {what} needs it again. Pass a callable epoch -> iterable instead \
         (schedlab.Pipeline(lambda epoch: make_items(epoch))), or a re-iterable (a list, an \
         object whose __iter__ starts over)"
    )
}

impl PyIterSource {
    fn open(&mut self, py: Python<'_>, epoch: u64) -> Result<(), SourceError> {
        self.epoch = epoch;
        self.pos = 0;
        self.it = None;
        self.refused = None;
        let made = if self.callable {
            self.obj.call1(py, (epoch,))
        } else {
            Ok(self.obj.clone_ref(py))
        };
        let it = made
            .and_then(|o| o.bind(py).try_iter().map(Bound::unbind))
            .map_err(|e| SourceError::Other(format!("source: {e}")))?;
        // A one-pass iterator is its own iterator: a second pass would give nothing (or
        // what the first left).
        let again = !self.callable && self.opened && it.bind(py).is(self.obj.bind(py));
        self.opened = true;
        if again {
            self.refused = Some(one_pass(&format!("epoch {epoch}")));
            return Ok(());
        }
        self.it = Some(it);
        Ok(())
    }
}

impl Source for PyIterSource {
    type Item = PyItem;

    fn fingerprint(&self) -> SourceFingerprint {
        SourceFingerprint::new("iterator", &[])
    }

    fn start(&mut self, epoch: u64) -> Result<(), SourceError> {
        Python::with_gil(|py| self.open(py, epoch))
    }

    fn next(&mut self) -> Option<Result<PyItem, SourceError>> {
        // the feeding thread may be one Python does not know (the driver's): a thread state
        // made and deleted per call otherwise
        crate::keep_thread_state();
        Python::with_gil(|py| {
            if let Some(m) = self.refused.take() {
                self.pos += 1;
                let e = PyTypeError::new_err(m);
                return Some(Ok(Err(Box::new(Failure::new(py, e, "source")))));
            }
            let it = self.it.as_ref()?.bind(py).clone();
            let mut it = it;
            match it.next()? {
                Ok(v) => {
                    self.pos += 1;
                    Some(Ok(Ok(v.unbind())))
                }
                Err(e) => {
                    // A generator that raised is finished: the exception is this position's
                    // failure, and the epoch ends after it.
                    self.pos += 1;
                    self.it = None;
                    Some(Ok(Err(Box::new(Failure::new(py, e, "source")))))
                }
            }
        })
    }

    fn state(&self) -> SourceState {
        SourceState::new("iterator", vec![self.epoch, self.pos])
    }

    fn restore(&mut self, state: &SourceState) -> Result<(), SourceError> {
        let w = state.expect("iterator", 2)?;
        let (epoch, pos) = (w[0], w[1]);
        Python::with_gil(|py| {
            self.open(py, epoch)?;
            if self.refused.is_some() {
                return Err(SourceError::State(one_pass("resuming")));
            }
            let mut it = self.it.as_ref().expect("opened").bind(py).clone();
            for i in 0..pos {
                match it.next() {
                    Some(Ok(_)) => {}
                    _ => {
                        return Err(SourceError::State(format!(
                            "the state is at item {pos} of epoch {epoch}; the iterable gave {i}"
                        )))
                    }
                }
            }
            self.pos = pos;
            Ok(())
        })
    }
}

/// A source whose items are converted to Python objects (under the GIL); a source error
/// becomes the Python exception it is (see [`source_exception`]), raised at its position.
struct ToPy<S, F> {
    inner: S,
    f: F,
    /// The exceptions a callable reader raised opening a shard, by path.
    raised: Raised,
}

/// The exception a callable reader raised opening a shard, by the shard's path.
type Raised = Arc<Mutex<HashMap<String, Py<PyAny>>>>;

/// The Python exception for a source error: an `OSError` for a file that cannot be read
/// (`FileNotFoundError`, `PermissionError`, … where the OS error says which, with the path as
/// its `filename`), the reader's own exception for a callable reader, `ValueError` for a
/// malformed shard or a setting, `RuntimeError` otherwise.
fn source_exception(py: Python<'_>, e: SourceError, raised: &Raised) -> PyErr {
    match e {
        SourceError::Io { path, message } => {
            if let Some(exc) = lock(raised).remove(&path) {
                return PyErr::from_value(exc.into_bound(py));
            }
            // std's text for an OS error: "<description> (os error <errno>)".
            let errno = message.rsplit_once("(os error ").and_then(|(text, n)| {
                Some((text.trim_end(), n.strip_suffix(')')?.parse::<i32>().ok()?))
            });
            match errno {
                // OSError(errno, strerror, filename) is made the subclass errno names.
                Some((text, n)) => PyOSError::new_err((n, text.to_string(), path)),
                None => PyOSError::new_err(format!("{path}: {message}")),
            }
        }
        e @ (SourceError::Format { .. } | SourceError::Config { .. }) => {
            PyValueError::new_err(e.to_string())
        }
        e => PyRuntimeError::new_err(e.to_string()),
    }
}

impl<S, F> Source for ToPy<S, F>
where
    S: Source,
    F: Fn(Python<'_>, S::Item) -> PyItem + Send + 'static,
{
    type Item = PyItem;
    fn fingerprint(&self) -> SourceFingerprint {
        self.inner.fingerprint()
    }
    fn start(&mut self, epoch: u64) -> Result<(), SourceError> {
        self.inner.start(epoch)
    }
    fn next(&mut self) -> Option<Result<PyItem, SourceError>> {
        let r = self.inner.next()?;
        crate::keep_thread_state();
        Some(Ok(Python::with_gil(|py| match r {
            Ok(v) => (self.f)(py, v),
            Err(e) => Err(Box::new(Failure::new(
                py,
                source_exception(py, e, &self.raised),
                "source",
            ))),
        })))
    }
    /// Passed over in the source: no Python object made (a tar sample's data not read).
    fn skip(&mut self) -> Option<Result<(), SourceError>> {
        self.inner.skip()
    }
    fn state(&self) -> SourceState {
        self.inner.state()
    }
    fn restore(&mut self, state: &SourceState) -> Result<(), SourceError> {
        self.inner.restore(state)
    }
}

fn boxed<S, F>(inner: S, f: F) -> PySource
where
    S: Source,
    F: Fn(Python<'_>, S::Item) -> PyItem + Send + 'static,
{
    Box::new(ToPy {
        inner,
        f,
        raised: Raised::default(),
    })
}

/// A tar member's bytes read from Python: a large member's straight into the `bytes` object
/// Python receives (made uninitialised, filled by the reader before anything else sees it:
/// the body is read once, with no second copy under the GIL); a small one as read.
enum PyBody {
    Bytes(Py<PyBytes>),
    Small(Vec<u8>),
}

/// Tar members read into [`PyBody`]s.
#[derive(Clone, Copy)]
struct PyBodies;

// SAFETY: the pointer is the contents of a `bytes` object just made with
// `PyBytes_FromStringAndSize(NULL, len)` (`len` bytes, uninitialised), whose one reference
// the body holds: nothing else can reach the object, and its contents never move, until the
// reader hands the body on.
unsafe impl TarBodies for PyBodies {
    type Body = PyBody;

    fn alloc(&self, len: usize) -> Result<(PyBody, *mut u8), String> {
        let n =
            pyo3::ffi::Py_ssize_t::try_from(len).map_err(|_| format!("a member of {len} bytes"))?;
        Python::with_gil(|py| {
            // SAFETY: a NULL string with a size makes a new `bytes` of that size whose
            // contents are uninitialised (CPython's documented use); the new reference is
            // owned by the `Py` made from it.
            let obj = unsafe { pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), n) };
            if obj.is_null() {
                let e =
                    PyErr::take(py).map_or_else(|| "out of memory".to_string(), |e| e.to_string());
                return Err(format!("a bytes object of {len} bytes: {e}"));
            }
            // SAFETY: `obj` is a new, non-null `bytes`: its contents start at `PyBytes_AsString`.
            let ptr = unsafe { pyo3::ffi::PyBytes_AsString(obj) }.cast::<u8>();
            // SAFETY: `obj` is a new reference to a `bytes` object.
            let b: Py<PyBytes> = unsafe { Py::from_owned_ptr(py, obj) };
            Ok((PyBody::Bytes(b), ptr))
        })
    }

    fn copy(&self, data: &[u8]) -> Result<PyBody, String> {
        Ok(PyBody::Small(data.to_vec()))
    }
}

fn tar_dict(py: Python<'_>, s: TarSample<PyBody>) -> PyItem {
    let d = PyDict::new(py);
    let r = (|| {
        d.set_item("__key__", s.key)?;
        d.set_item("__url__", s.shard)?;
        for (ext, body) in s.fields {
            match body {
                PyBody::Bytes(b) => d.set_item(ext, b)?,
                PyBody::Small(v) => d.set_item(ext, PyBytes::new(py, &v))?,
            }
        }
        Ok::<_, PyErr>(())
    })();
    match r {
        Ok(()) => Ok(d.into_any().unbind()),
        Err(e) => Err(Box::new(Failure::new(py, e, "source"))),
    }
}

/// A Python iterator as a Rust one (the GIL per item; an exception ends it, as that item).
struct PyIter(Option<Py<PyIterator>>);

impl Iterator for PyIter {
    type Item = PyItem;
    fn next(&mut self) -> Option<PyItem> {
        Python::with_gil(|py| {
            let mut it = self.0.as_ref()?.bind(py).clone();
            match it.next()? {
                Ok(v) => Some(Ok(v.unbind())),
                Err(e) => {
                    self.0 = None;
                    Some(Err(Box::new(Failure::new(py, e, "reader"))))
                }
            }
        })
    }
}

fn shards_of<R: ShardReader>(
    paths: Vec<PathBuf>,
    reader: R,
    rank: usize,
    world: usize,
    seed: Option<u64>,
    balanced: bool,
) -> PyResult<Shards<R>> {
    let s = Shards::new(paths, reader)
        .rank(rank, world)
        .map_err(|e| PyValueError::new_err(e.to_string()))?
        .balanced(balanced);
    Ok(match seed {
        Some(seed) => s.shuffle(seed),
        None => s,
    })
}

/// The source a Python stream spec describes.
pub(crate) fn source_of(py: Python<'_>, spec: &Bound<'_, PyAny>) -> PyResult<PySource> {
    let kind: String = spec.get_item(0)?.extract()?;
    let (source, shuffle): (PySource, Option<(usize, u64)>) = match kind.as_str() {
        "iter" => {
            let (_, obj, callable, shuffle): (String, Py<PyAny>, bool, Option<(usize, u64)>) =
                spec.extract()?;
            let s = PyIterSource {
                obj,
                callable,
                it: None,
                epoch: 0,
                pos: 0,
                opened: false,
                refused: None,
            };
            (Box::new(s), shuffle)
        }
        // A mix of streams (issue 31): python/src/mix.rs.
        "mix" => return crate::mix::mix_source(py, spec),
        "shards" => {
            #[allow(clippy::type_complexity)]
            let (_, paths, rank, world, seed, balanced, reader, reader_fn, shuffle): (
                String,
                Vec<PathBuf>,
                usize,
                usize,
                Option<u64>,
                bool,
                String,
                Option<Py<PyAny>>,
                Option<(usize, u64)>,
            ) = spec.extract()?;
            let s: PySource = match (reader.as_str(), reader_fn) {
                ("tar", _) => boxed(
                    shards_of(paths, TarReaderInto(PyBodies), rank, world, seed, balanced)?,
                    tar_dict,
                ),
                ("jsonl", _) => {
                    let loads = py.import("json")?.getattr("loads")?.unbind();
                    boxed(
                        shards_of(paths, JsonLines, rank, world, seed, balanced)?,
                        move |py, line: String| {
                            loads
                                .call1(py, (line,))
                                .map_err(|e| Box::new(Failure::new(py, e, "source")))
                        },
                    )
                }
                ("file", _) => boxed(
                    shards_of(paths, WholeFile, rank, world, seed, balanced)?,
                    |py, b: Vec<u8>| Ok(PyBytes::new(py, &b).into_any().unbind()),
                ),
                ("fn", Some(f)) => {
                    let name = f
                        .bind(py)
                        .getattr("__qualname__")
                        .and_then(|n| n.extract::<String>())
                        .unwrap_or_else(|_| "reader".into());
                    let raised = Raised::default();
                    let keep = Arc::clone(&raised);
                    let reader = FnReader::new(&name, move |p: &Path| {
                        Python::with_gil(|py| {
                            f.call1(py, (p.display().to_string(),))
                                .and_then(|o| o.bind(py).try_iter().map(Bound::unbind))
                                .map(|it| PyIter(Some(it)))
                                .map_err(|e| {
                                    // Kept for the error item, which raises it as it is.
                                    let text = e.to_string();
                                    let exc = e.into_value(py).into_any();
                                    lock(&keep).insert(p.display().to_string(), exc);
                                    text
                                })
                        })
                    });
                    Box::new(ToPy {
                        inner: shards_of(paths, reader, rank, world, seed, balanced)?,
                        f: |_py: Python<'_>, item: PyItem| item,
                        raised,
                    })
                }
                (other, _) => {
                    return Err(PyValueError::new_err(format!(
                        "reader: expected \"tar\", \"jsonl\", \"file\" or a callable path -> iterable, got {other:?}"
                    )))
                }
            };
            (s, shuffle)
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "source: unknown stream kind {other:?}"
            )))
        }
    };
    Ok(match shuffle {
        Some((size, seed)) => Box::new(source.shuffled(size, seed)),
        None => source,
    })
}
