//! A results directory loaded for reporting: rows, per-cell summaries, the axes that vary and
//! the grouping of cells into categories (every varying coordinate except the one a figure
//! puts on its own axis).

use std::path::{Path, PathBuf};

use crate::results::{
    read_runs, summarize, BadLine, CellSummary, Coordinates, Layout, RunRow, SuiteMeta,
};

/// One coordinate of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Engine.
    Engine,
    /// Kind of work.
    Kind,
    /// Strategy.
    Strategy,
    /// Workload.
    Workload,
    /// Workers P.
    Workers,
    /// Task count.
    Tasks,
    /// Worker speeds.
    Speeds,
    /// Arrival process.
    Arrivals,
    /// Estimate error.
    EstimateError,
    /// Pinning.
    Pin,
    /// Topology.
    Topology,
    /// Cost model.
    Cost,
}

impl Axis {
    /// Every axis, in label order.
    pub const ALL: [Axis; 12] = [
        Axis::Workload,
        Axis::Workers,
        Axis::Strategy,
        Axis::Arrivals,
        Axis::EstimateError,
        Axis::Speeds,
        Axis::Engine,
        Axis::Kind,
        Axis::Tasks,
        Axis::Pin,
        Axis::Topology,
        Axis::Cost,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Axis::Engine => "engine",
            Axis::Kind => "kind",
            Axis::Strategy => "strategy",
            Axis::Workload => "workload",
            Axis::Workers => "workers",
            Axis::Tasks => "tasks",
            Axis::Speeds => "speeds",
            Axis::Arrivals => "arrivals",
            Axis::EstimateError => "estimate error",
            Axis::Pin => "pin",
            Axis::Topology => "topology",
            Axis::Cost => "cost",
        }
    }

    /// This axis's value in `c`, as a label.
    pub fn value(self, c: &Coordinates) -> String {
        let or = |s: &str, d: &str| {
            if s.is_empty() {
                d.to_string()
            } else {
                s.to_string()
            }
        };
        match self {
            Axis::Engine => c.engine.clone(),
            Axis::Kind => format!("kind={}", c.kind),
            Axis::Strategy => c.strategy.clone(),
            Axis::Workload => c.workload.clone(),
            Axis::Workers => format!("P={}", c.workers),
            Axis::Tasks => format!("n={}", c.tasks),
            Axis::Speeds => format!("speeds={}", or(&c.speeds, "uniform")),
            Axis::Arrivals => c.arrivals.clone(),
            Axis::EstimateError => format!("err={}", c.estimate_error),
            Axis::Pin => format!("pin={}", c.pin),
            Axis::Topology => format!("topo={}", or(&c.topology, "detected")),
            Axis::Cost => format!("cost={}", or(&c.cost, "default")),
        }
    }
}

/// The axes whose value differs between `cells`.
pub fn varying(cells: &[&CellSummary]) -> Vec<Axis> {
    Axis::ALL
        .into_iter()
        .filter(|a| {
            let first = cells.first().map(|c| a.value(&c.coords));
            cells.iter().any(|c| Some(a.value(&c.coords)) != first)
        })
        .collect()
}

/// `c`'s label over `axes` minus `exclude` (" · "-joined; "all" when nothing is left).
pub fn label(c: &Coordinates, axes: &[Axis], exclude: &[Axis]) -> String {
    let parts: Vec<String> = axes
        .iter()
        .filter(|a| !exclude.contains(a))
        .map(|a| a.value(c))
        .collect();
    if parts.is_empty() {
        "all".into()
    } else {
        parts.join(" · ")
    }
}

/// Cells grouped by their label over the varying axes minus `exclude`, in order of first
/// appearance.
pub fn group<'a>(
    cells: &[&'a CellSummary],
    exclude: &[Axis],
) -> Vec<(String, Vec<&'a CellSummary>)> {
    let axes = varying(cells);
    let mut out: Vec<(String, Vec<&'a CellSummary>)> = Vec::new();
    for c in cells {
        let l = label(&c.coords, &axes, exclude);
        match out.iter_mut().find(|(k, _)| *k == l) {
            Some((_, v)) => v.push(c),
            None => out.push((l, vec![c])),
        }
    }
    out
}

/// Distinct strategies of `cells`, in order of first appearance.
pub fn strategies(cells: &[&CellSummary]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in cells {
        if !out.contains(&c.coords.strategy) {
            out.push(c.coords.strategy.clone());
        }
    }
    out
}

/// A loaded results directory.
#[derive(Clone, Debug)]
pub struct Suite {
    /// Where it was read from.
    pub dir: PathBuf,
    /// `meta.json`, if present and readable.
    pub meta: Option<SuiteMeta>,
    /// The good rows of `runs.jsonl`.
    pub rows: Vec<RunRow>,
    /// Per-cell summaries of `rows`.
    pub cells: Vec<CellSummary>,
    /// Lines of `runs.jsonl` that could not be read.
    pub bad: Vec<BadLine>,
}

/// Why a results directory cannot be reported.
#[derive(Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The directory does not exist.
    NoDir(PathBuf),
    /// The path exists but is not a directory (a file, a device, ...).
    NotDir(PathBuf),
    /// `runs.jsonl` is missing or unreadable.
    NoRuns(PathBuf, String),
    /// `runs.jsonl` holds no readable row.
    Empty(PathBuf, usize),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::NoDir(p) => write!(
                f,
                "{}: not a results directory (it does not exist)",
                p.display()
            ),
            LoadError::NotDir(p) => write!(
                f,
                "{}: is a file, not a directory (a results directory holds runs.jsonl, e.g. results/quick)",
                p.display()
            ),
            LoadError::NoRuns(p, e) => write!(
                f,
                "{}: cannot read ({e}); a results directory holds runs.jsonl",
                p.display()
            ),
            LoadError::Empty(p, bad) => write!(
                f,
                "{}: no readable run ({bad} bad lines); expected one JSON run row per line",
                p.display()
            ),
        }
    }
}

impl std::error::Error for LoadError {}

impl Suite {
    /// Load `dir` (tolerantly: bad lines are kept in [`Suite::bad`]).
    pub fn load(dir: &Path) -> Result<Suite, LoadError> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(LoadError::NotDir(dir.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LoadError::NoDir(dir.to_path_buf()))
            }
            Err(e) => return Err(LoadError::NoRuns(dir.to_path_buf(), e.to_string())),
        }
        let layout = Layout::new(dir);
        let path = layout.runs_jsonl();
        let (rows, bad) =
            read_runs(&path).map_err(|e| LoadError::NoRuns(path.clone(), e.to_string()))?;
        if rows.is_empty() {
            return Err(LoadError::Empty(path, bad.len()));
        }
        let meta = std::fs::read_to_string(layout.meta_json())
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok());
        let mut s = Suite::from_rows(dir, rows);
        s.meta = meta;
        s.bad = bad;
        Ok(s)
    }

    /// A suite from rows already in memory.
    pub fn from_rows(dir: &Path, rows: Vec<RunRow>) -> Suite {
        Suite {
            dir: dir.to_path_buf(),
            meta: None,
            cells: summarize(&rows),
            rows,
            bad: Vec::new(),
        }
    }

    /// A suite from per-cell summaries alone (as `summary.json` holds them), without rows:
    /// differences are then tested on the summaries (Welch) rather than paired by seed.
    pub fn from_cells(dir: &Path, cells: Vec<CellSummary>) -> Suite {
        Suite {
            dir: dir.to_path_buf(),
            meta: None,
            cells,
            rows: Vec::new(),
            bad: Vec::new(),
        }
    }

    /// The suite's name (meta, else the rows, else the directory name).
    pub fn name(&self) -> String {
        if let Some(m) = &self.meta {
            return m.suite.clone();
        }
        if let Some(r) = self.rows.first() {
            return r.suite.clone();
        }
        self.dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Matrix names, in order of first appearance.
    pub fn matrices(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.cells {
            if !out.contains(&c.matrix) {
                out.push(c.matrix.clone());
            }
        }
        out
    }

    /// The cells of `matrix`.
    pub fn cells_of(&self, matrix: &str) -> Vec<&CellSummary> {
        self.cells.iter().filter(|c| c.matrix == matrix).collect()
    }

    /// The rows of cell `c` (same matrix and cell key).
    pub fn rows_of(&self, c: &CellSummary) -> Vec<&RunRow> {
        self.rows
            .iter()
            .filter(|r| r.cell == c.cell && r.matrix == c.matrix)
            .collect()
    }

    /// The row of cell `c` to show alone (repetition 0 if present, else the first).
    pub fn first_row(&self, c: &CellSummary) -> Option<&RunRow> {
        let rows = self.rows_of(c);
        rows.iter()
            .find(|r| r.repetition == 0)
            .or(rows.first())
            .copied()
    }
}
