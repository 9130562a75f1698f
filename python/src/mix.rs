//! Mixing from Python (issue 31): `schedlab.mix(...)` is a `loader::source::Mix` of the
//! sources that [`crate::streams::source_of`] builds, and a handle on its statistics.
//!
//! The spec (see `schedlab/mix.py`): `("mix", [child specs], weights, schedule, seed, mode,
//! stop, names, stats_handle, shuffle)`, `weights` a list of floats or `None` with
//! `schedule` a callable `step -> weights`.

use std::sync::{Arc, Mutex};

use loader::source::{Mix, MixMode, MixStats, MixStop, Source};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::streams::{source_of, PySource};

/// The statistics of the mix last built from a `schedlab.mix` (`None` before).
#[pyclass(module = "schedlab._core")]
#[derive(Default)]
pub(crate) struct MixStatsHandle {
    stats: Mutex<Option<Arc<MixStats>>>,
}

#[pymethods]
impl MixStatsHandle {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// `{"items", "holding_back", "sources": [{"name", "taken", "share", "target_share",
    /// "read_seconds", "read_rate"}]}`, or `None` before the mix was built.
    fn snapshot(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let Some(stats) = self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            return Ok(None);
        };
        let s = stats.snapshot();
        let d = PyDict::new(py);
        d.set_item("items", s.items)?;
        d.set_item(
            "holding_back",
            s.holding_back.map(|i| s.sources[i].name.clone()),
        )?;
        let rows = PyList::empty(py);
        for x in &s.sources {
            let r = PyDict::new(py);
            r.set_item("name", &x.name)?;
            r.set_item("taken", x.taken)?;
            r.set_item("share", x.share)?;
            r.set_item("target_share", x.target_share)?;
            r.set_item("read_seconds", x.read_seconds)?;
            r.set_item("read_rate", x.read_rate)?;
            rows.append(r)?;
        }
        d.set_item("sources", rows)?;
        Ok(Some(d.into_any().unbind()))
    }

    /// The snapshot as a table, or `None` before the mix was built.
    fn text(&self) -> Option<String> {
        let stats = self
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        Some(stats.snapshot().to_string())
    }
}

/// The mix a Python spec describes.
pub(crate) fn mix_source(py: Python<'_>, spec: &Bound<'_, PyAny>) -> PyResult<PySource> {
    #[allow(clippy::type_complexity)]
    let (_, children, weights, schedule, seed, mode, stop, names, handle, shuffle): (
        String,
        Vec<Bound<'_, PyAny>>,
        Option<Vec<f64>>,
        Option<Py<PyAny>>,
        u64,
        String,
        String,
        Option<Vec<String>>,
        Py<MixStatsHandle>,
        Option<(usize, u64)>,
    ) = spec.extract()?;
    let sources: Vec<PySource> = children
        .iter()
        .map(|c| source_of(py, c))
        .collect::<PyResult<_>>()?;
    let config = |e: loader::source::SourceError| PyValueError::new_err(e.to_string());
    let mix = match (weights, schedule) {
        (Some(w), _) => Mix::new(sources, w).map_err(config)?,
        (None, Some(f)) => {
            let name = f
                .bind(py)
                .getattr("__qualname__")
                .and_then(|n| n.extract::<String>())
                .unwrap_or_else(|_| "schedule".into());
            // A schedule that raises (or gives no list of numbers) ends the epoch with an
            // error naming the step and carrying the exception's type and message.
            let weights = move |step: u64| {
                Python::with_gil(|py| {
                    f.call1(py, (step,))
                        .and_then(|w| w.extract::<Vec<f64>>(py))
                        .map_err(|e| {
                            let kind = e
                                .get_type(py)
                                .name()
                                .map(|n| n.to_string())
                                .unwrap_or_else(|_| "Exception".into());
                            format!("the schedule raised {kind}: {}", e.value(py))
                        })
                })
            };
            Mix::try_scheduled(sources, weights, &name).map_err(config)?
        }
        (None, None) => return Err(PyValueError::new_err("weights: expected weights")),
    };
    let mode = match mode.as_str() {
        "interleave" => MixMode::Interleave,
        "random" => MixMode::Random,
        other => {
            return Err(PyValueError::new_err(format!(
                "mode: expected \"interleave\" or \"random\", got {other:?}"
            )))
        }
    };
    let stop = match stop.as_str() {
        "first_exhausted" => MixStop::FirstExhausted,
        "all_exhausted" => MixStop::AllExhausted,
        "never" => MixStop::Never,
        other => {
            return Err(PyValueError::new_err(format!(
                "stop: expected \"first_exhausted\", \"all_exhausted\" or \"never\", got {other:?}"
            )))
        }
    };
    let mut mix = mix.mode(mode).stop(stop).seed(seed);
    if let Some(names) = names {
        mix = mix.names(names).map_err(config)?;
    }
    *handle
        .borrow(py)
        .stats
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(mix.stats_handle());
    Ok(match shuffle {
        Some((size, seed)) => Box::new(mix.shuffled(size, seed)),
        None => Box::new(mix),
    })
}
