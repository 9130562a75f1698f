//! The results layout and row types: the one place that says what a results directory holds.
//!
//! A suite writes `results/<suite>/` with [`SUITE_TOML`] (the suite as run), [`RUNS_JSONL`] (one
//! [`RunRow`] per line, appended as runs finish), [`RUNS_CSV`] (the same rows flattened),
//! [`SUMMARY_JSON`] (a `Vec<CellSummary>`) and [`META_JSON`] ([`SuiteMeta`]). A *cell* is one
//! point of the suite's matrix ([`Coordinates`]); its repetitions share a [`Coordinates::key`].

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The suite definition as run.
pub const SUITE_TOML: &str = "suite.toml";
/// One [`RunRow`] per line.
pub const RUNS_JSONL: &str = "runs.jsonl";
/// The rows flattened to CSV.
pub const RUNS_CSV: &str = "runs.csv";
/// `Vec<CellSummary>` as JSON.
pub const SUMMARY_JSON: &str = "summary.json";
/// [`SuiteMeta`] as JSON.
pub const META_JSON: &str = "meta.json";

/// Paths of the files in one results directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The results directory, e.g. `results/quick`.
    pub dir: PathBuf,
}

impl Layout {
    /// The layout of `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Layout { dir: dir.into() }
    }
    /// `dir/suite.toml`.
    pub fn suite_toml(&self) -> PathBuf {
        self.dir.join(SUITE_TOML)
    }
    /// `dir/runs.jsonl`.
    pub fn runs_jsonl(&self) -> PathBuf {
        self.dir.join(RUNS_JSONL)
    }
    /// `dir/runs.csv`.
    pub fn runs_csv(&self) -> PathBuf {
        self.dir.join(RUNS_CSV)
    }
    /// `dir/summary.json`.
    pub fn summary_json(&self) -> PathBuf {
        self.dir.join(SUMMARY_JSON)
    }
    /// `dir/meta.json`.
    pub fn meta_json(&self) -> PathBuf {
        self.dir.join(META_JSON)
    }
}

/// Where a run sits in its suite's matrix. Every field is part of the cell's identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Coordinates {
    /// `threads` or `sim`.
    pub engine: String,
    /// Kind of work (`spin`, `compute`, `sleep`, `memory`).
    pub kind: String,
    /// Canonical strategy spec.
    pub strategy: String,
    /// Workload spec.
    pub workload: String,
    /// Worker count P.
    pub workers: usize,
    /// Tasks per run.
    pub tasks: usize,
    /// Worker speeds spec (`""` = all 1).
    pub speeds: String,
    /// Arrival process (`closed`, `poisson(rate=…)`).
    pub arrivals: String,
    /// Relative error of cost estimates given to estimate-based strategies.
    pub estimate_error: f64,
    /// Pinning mode.
    pub pin: String,
    /// Topology spec (`""` = detected).
    pub topology: String,
    /// Cost model spec (`""` = the default model).
    pub cost: String,
}

impl Coordinates {
    /// A stable key for the cell, identical for all repetitions of a cell and different for
    /// cells that differ in any field. Fields are written in a fixed order, `|`-separated.
    ///
    /// ```
    /// # use reports::results::Coordinates;
    /// let c = Coordinates {
    ///     engine: "sim".into(), kind: "spin".into(), strategy: "central".into(),
    ///     workload: "constant(10us)".into(), workers: 4, tasks: 100, speeds: String::new(),
    ///     arrivals: "closed".into(), estimate_error: 0.0, pin: "none".into(),
    ///     topology: String::new(), cost: String::new(),
    /// };
    /// assert_eq!(c.key(), "sim|spin|central|constant(10us)|P=4|n=100|speeds=|closed|err=0|pin=none|topo=|cost=");
    /// ```
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}|P={}|n={}|speeds={}|{}|err={}|pin={}|topo={}|cost={}",
            self.engine,
            self.kind,
            self.strategy,
            self.workload,
            self.workers,
            self.tasks,
            self.speeds,
            self.arrivals,
            self.estimate_error,
            self.pin,
            self.topology,
            self.cost
        )
    }
}

/// One line of `runs.jsonl`: one run of one cell.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRow {
    /// Suite name.
    pub suite: String,
    /// The matrix (of the suite) this cell belongs to.
    pub matrix: String,
    /// The cell key (= `coords.key()`).
    pub cell: String,
    /// Where the run sits in the matrix.
    pub coords: Coordinates,
    /// Repetition index, from 0.
    pub repetition: u32,
    /// The run's seed.
    pub seed: u64,
    /// A `schedlab run` command that reproduces this run.
    pub command: String,
    /// Wall time the run took, in ms.
    pub wall_ms: f64,
    /// The engine's report.
    pub report: scheduler::RunReport,
}

/// When, where and how a suite ran (`meta.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteMeta {
    /// Suite name.
    pub suite: String,
    /// The question the suite answers.
    pub question: String,
    /// Start time (RFC 3339, UTC).
    pub started_at: String,
    /// End time, `None` while running or if interrupted.
    pub finished_at: Option<String>,
    /// Host name.
    pub hostname: String,
    /// Cpus in the topology.
    pub cpus: usize,
    /// NUMA nodes in the topology.
    pub nodes: usize,
    /// Where the topology came from.
    pub topology_source: String,
    /// schedlab version.
    pub version: String,
    /// The command that ran the suite.
    pub command: String,
}

/// A line of `runs.jsonl` that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// Why it was rejected.
    pub error: String,
}

/// Read `runs.jsonl`, tolerantly: good rows are returned, bad or truncated lines are listed
/// (not fatal). Blank lines are skipped. Only an unreadable file is an error.
pub fn read_runs(path: &Path) -> std::io::Result<(Vec<RunRow>, Vec<BadLine>)> {
    let file = std::fs::File::open(path)?;
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line?;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<RunRow>(text) {
            Ok(row) => rows.push(row),
            Err(e) => bad.push(BadLine {
                line: i + 1,
                error: e.to_string(),
            }),
        }
    }
    Ok((rows, bad))
}

/// Mean, 95% confidence interval and range of one metric over a cell's repetitions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Half-width of the 95% confidence interval of the mean (Student t; 0 when n < 2).
    pub ci95: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// Number of values.
    pub n: usize,
}

/// Two-sided 97.5% quantile of Student's t with `df` degrees of freedom.
///
/// ```
/// # use reports::results::t975;
/// assert!((t975(1) - 12.706).abs() < 1e-3);
/// assert!((t975(1_000_000) - 1.960).abs() < 1e-3);
/// ```
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => T[df - 1],
        // Cornish-Fisher expansion around the normal quantile; exact to 1e-3 above 30.
        _ => {
            let z = 1.959_963_984_540_054_f64;
            let d = df as f64;
            z + (z.powi(3) + z) / (4.0 * d)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
        }
    }
}

impl Stat {
    /// The statistics of `values` (all zero with `n = 0` when empty).
    pub fn of(values: &[f64]) -> Stat {
        let n = values.len();
        if n == 0 {
            return Stat {
                mean: 0.0,
                ci95: 0.0,
                min: 0.0,
                max: 0.0,
                n: 0,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let ci95 = if n < 2 {
            0.0
        } else {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            t975(n - 1) * (var / n as f64).sqrt()
        };
        Stat {
            mean,
            ci95,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            n,
        }
    }
}

/// One cell's metrics over its repetitions (`summary.json` holds a `Vec` of these).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellSummary {
    /// The cell key.
    pub cell: String,
    /// The matrix it belongs to.
    pub matrix: String,
    /// Its coordinates.
    pub coords: Coordinates,
    /// Makespan in ns.
    pub makespan_ns: Stat,
    /// Efficiency (lower bound / makespan).
    pub efficiency: Stat,
    /// Load imbalance factor.
    pub lif: Stat,
    /// 99th percentile latency in ns.
    pub p99_ns: Stat,
}

/// Group rows by matrix and cell (in order of first appearance) and summarise each cell. The
/// same coordinates in two matrices are two cells.
pub fn summarize(rows: &[RunRow]) -> Vec<CellSummary> {
    let mut order: Vec<(&str, &str)> = Vec::new();
    let mut groups: HashMap<(&str, &str), Vec<&RunRow>> = HashMap::new();
    for r in rows {
        let key = (r.matrix.as_str(), r.cell.as_str());
        groups
            .entry(key)
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(r);
    }
    order
        .into_iter()
        .map(|key| {
            let (_, cell) = key;
            let g = &groups[&key];
            let stat =
                |f: &dyn Fn(&RunRow) -> f64| Stat::of(&g.iter().map(|r| f(r)).collect::<Vec<_>>());
            CellSummary {
                cell: cell.to_string(),
                matrix: g[0].matrix.clone(),
                coords: g[0].coords.clone(),
                makespan_ns: stat(&|r| r.report.makespan_ns as f64),
                efficiency: stat(&|r| r.report.efficiency),
                lif: stat(&|r| r.report.lif),
                p99_ns: stat(&|r| r.report.latency_ns.p99 as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_of_known_values() {
        let s = Stat::of(&[1.0, 2.0, 3.0]);
        assert_eq!((s.mean, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        // sd = 1, se = 1/sqrt(3), t(2) = 4.303
        assert!((s.ci95 - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(Stat::of(&[5.0]).ci95, 0.0);
        assert_eq!(Stat::of(&[]).n, 0);
    }

    #[test]
    fn t_quantile_is_continuous_at_the_table_end() {
        assert!((t975(30) - t975(31)).abs() < 0.01);
        assert!((t975(60) - 2.000).abs() < 2e-3);
        assert!((t975(120) - 1.980).abs() < 2e-3);
    }

    #[test]
    fn layout_paths() {
        let l = Layout::new("results/q");
        assert_eq!(l.runs_jsonl(), Path::new("results/q/runs.jsonl"));
        assert_eq!(l.meta_json(), Path::new("results/q/meta.json"));
        assert_eq!(l.summary_json(), Path::new("results/q/summary.json"));
        assert_eq!(l.runs_csv(), Path::new("results/q/runs.csv"));
        assert_eq!(l.suite_toml(), Path::new("results/q/suite.toml"));
    }
}
