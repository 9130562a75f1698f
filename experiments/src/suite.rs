//! Suite files: a named question, a seed, repetitions and one or more matrices whose axes are
//! lists. [`Suite::load`] parses and validates a whole suite before anything runs: it counts the
//! runs from the axes first ([`SuiteSize`]), refuses a suite whose cells would not fit in
//! memory, and checks each cell once. The runs ([`PlannedRun`]s, each with its seed and the
//! `schedlab run` line that reproduces it) are made one at a time from the cells, so that a
//! suite of millions of runs takes the memory of its cells, not of its runs.
//!
//! ```
//! let text = r#"
//! name = "tiny"
//! question = "Does stealing beat blocks on a skewed workload?"
//! seed = 7
//! repetitions = 2
//! engine = "sim"
//!
//! [[matrix]]
//! name = "main"
//! strategies = ["block", "work-stealing"]
//! workloads = ["lognormal(mean=100us,sigma=1.5)"]
//! workers = [2, 4]
//! tasks = [1000]
//! "#;
//! let suite = experiments::suite::Suite::parse(text, "tiny.toml").unwrap();
//! assert_eq!(suite.run_count(), 2 * 2 * 2); // strategies × workers × repetitions
//! // Runs are made one at a time from the cells, not held.
//! let runs: Vec<_> = suite.runs().collect();
//! // Both strategies see the same task set in a repetition: the seed ignores the strategy.
//! assert_eq!(runs[0].seed, runs[1].seed);
//! assert!(runs[0].command.starts_with("schedlab run --engine sim"));
//! ```

use std::collections::{HashMap, HashSet};

use reports::results::Coordinates;
use serde::Deserialize;

use crate::limits::{human_bytes, limit_text, MemoryLimits, MemoryNeed};
use crate::run::{Checked, RunArgs};
use crate::CliError;

/// The suites shipped with schedlab, by name (the files in `experiments/suites/`).
pub const SHIPPED: &[(&str, &str)] = &[
    ("quick", include_str!("../suites/quick.toml")),
    (
        "heterogeneity",
        include_str!("../suites/heterogeneity.toml"),
    ),
    ("scaling", include_str!("../suites/scaling.toml")),
    ("estimates", include_str!("../suites/estimates.toml")),
    (
        "heterogeneous-workers",
        include_str!("../suites/heterogeneous-workers.toml"),
    ),
    ("queueing", include_str!("../suites/queueing.toml")),
];

/// The timeline cap for repetition 0 of each cell (enough for a Gantt chart).
pub const TIMELINE_CAP: usize = 5_000;

/// A suite file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    /// Name; also the results directory `results/<name>`. Letters, digits, `-` and `_`.
    pub name: String,
    /// The question the suite answers, in one sentence.
    pub question: String,
    /// The suite seed; every run's seed derives from it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Repetitions of each cell (a matrix may override).
    #[serde(default = "default_repetitions")]
    pub repetitions: u32,
    /// Default engine of the matrices: `threads` or `sim`.
    #[serde(default = "default_engine")]
    pub engine: String,
    /// Default kind of work on the threads engine.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// The matrices, run in order.
    #[serde(rename = "matrix", default)]
    pub matrices: Vec<MatrixFile>,
    /// The comparisons the report's answer makes (`[[compare]]`, see `reports::answer::Ask`).
    #[serde(rename = "compare", default)]
    pub compare: Vec<reports::answer::Ask>,
}

fn default_seed() -> u64 {
    1
}
fn default_repetitions() -> u32 {
    3
}
fn default_engine() -> String {
    "sim".into()
}
fn default_kind() -> String {
    "spin".into()
}

/// A worker count: a number, or `"cpus"` for this machine's cpu count.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum WorkerCount {
    /// This many workers.
    N(usize),
    /// `"cpus"`: as many workers as this machine has cpus.
    Named(String),
}

/// One matrix: every combination of its axes is a cell.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    /// Name, unique in the suite.
    pub name: String,
    /// Engine (default: the suite's).
    pub engine: Option<String>,
    /// Kind of work on threads (default: the suite's).
    pub kind: Option<String>,
    /// Repetitions (default: the suite's).
    pub repetitions: Option<u32>,
    /// Strategy specs.
    pub strategies: Vec<String>,
    /// Workload specs.
    pub workloads: Vec<String>,
    /// Worker counts (numbers or `"cpus"`).
    pub workers: Vec<WorkerCount>,
    /// Drop worker counts above this machine's cpus (for threads scaling).
    #[serde(default)]
    pub workers_up_to_cpus: bool,
    /// Task counts.
    pub tasks: Vec<usize>,
    /// Speed specs (default `["uniform"]`).
    #[serde(default)]
    pub speeds: Vec<String>,
    /// Arrival specs (default `["closed"]`).
    #[serde(default)]
    pub arrivals: Vec<String>,
    /// Estimate errors (default `[0]`).
    #[serde(default)]
    pub estimate_error: Vec<f64>,
    /// Pinning modes (default `["none"]`).
    #[serde(default)]
    pub pin: Vec<String>,
    /// Topologies `NxM` (default: detected).
    #[serde(default)]
    pub topology: Vec<String>,
    /// Cost models for the sim (default: the default model).
    #[serde(default)]
    pub cost: Vec<String>,
}

/// One run of the expanded suite.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// Position in the expansion (shards take every N-th).
    pub index: usize,
    /// Matrix name.
    pub matrix: String,
    /// Cell coordinates.
    pub coords: Coordinates,
    /// `coords.key()`.
    pub cell: String,
    /// Repetition, from 0.
    pub repetition: u32,
    /// The run's seed.
    pub seed: u64,
    /// The arguments of the equivalent `schedlab run`.
    pub args: RunArgs,
    /// The reproducing command line.
    pub command: String,
    /// Lower bound on the run's wall time in ns (threads only; `None` on the sim).
    pub min_wall_ns: Option<f64>,
}

impl PlannedRun {
    /// The identity of a run in its suite: matrix, cell and repetition.
    pub fn id(&self) -> (String, String, u32) {
        (self.matrix.clone(), self.cell.clone(), self.repetition)
    }
}

/// One cell of a matrix, checked: its coordinates and what its repetitions share.
#[derive(Clone, Debug)]
pub struct PlannedCell {
    /// Cell coordinates.
    pub coords: Coordinates,
    /// `coords.key()`.
    pub cell: String,
    /// The arguments of its runs but for the seed, the timeline and `--json`.
    pub args: RunArgs,
    /// Lower bound on a run's wall time in ns (threads only; `None` on the sim).
    pub min_wall_ns: Option<f64>,
    /// The reproducing command line up to its `--seed`.
    head: String,
    /// What the seed hash of a repetition starts with (see [`run_seed`]).
    seed_key: String,
}

/// A matrix expanded into its cells. Its runs are every cell in each repetition, repetitions
/// outermost (repetition 0 of every cell, then repetition 1, ...), so that a slow drift of the
/// machine spreads over all cells and an interrupted suite has every cell at least once.
#[derive(Clone, Debug)]
pub struct PlannedMatrix {
    /// Name.
    pub name: String,
    /// Repetitions of each cell.
    pub repetitions: u32,
    /// The cells, in expansion order.
    pub cells: Vec<PlannedCell>,
    /// The index of its first run in the suite.
    pub first: usize,
}

impl PlannedMatrix {
    /// Its number of runs: cells × repetitions.
    pub fn runs(&self) -> usize {
        self.cells.len() * self.repetitions as usize
    }
}

/// Where a run sits in its suite, by position: run `index` is repetition `repetition` of cell
/// `cell` of matrix `matrix` (indices into [`Suite::matrices`] and [`PlannedMatrix::cells`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunRef {
    /// Position in the expansion.
    pub index: usize,
    /// Matrix, by position.
    pub matrix: usize,
    /// Cell of the matrix, by position.
    pub cell: usize,
    /// Repetition, from 0.
    pub repetition: u32,
}

/// The size of a suite, counted from the lengths of its axes before anything is expanded
/// (cells whose values repeat are counted; the expansion refuses them later).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SuiteSize {
    /// Matrices.
    pub matrices: usize,
    /// Cells: the product of each matrix's axis lengths, summed.
    pub cells: u128,
    /// Runs: cells × repetitions, summed.
    pub runs: u128,
    /// Bytes the suite runner holds while running all of it: one row per run (its report, with
    /// a timeline for repetition 0 of each cell), kept for the summary written at the end.
    pub held_bytes: f64,
}

/// Bytes the expansion keeps per cell: coordinates, arguments, command head, key and index
/// entry (measured: 1.7 KiB a cell, peak resident memory of a dry run of 40,000 cells).
pub const BYTES_PER_CELL: u64 = 2048;

/// Bytes the runner holds per finished run: its row (coordinates, command, report with its
/// latency histogram and strings), its place in the indexes and its share of the files
/// written at the end (measured: 3.4 KiB a sim run of one worker, from the peak resident
/// memory of 400 and 4,000 runs).
pub const BYTES_PER_ROW: u64 = 4096;

/// Bytes a row holds per worker of its run, the per-worker report (measured: 110).
pub const BYTES_PER_ROW_WORKER: u64 = 128;

/// Bytes a row holds per timeline span (repetition 0 of each cell keeps up to
/// [`TIMELINE_CAP`]).
pub const BYTES_PER_ROW_SPAN: u64 = 40;

/// A parsed, validated and expanded suite. Its runs are not held: they are made one at a time
/// from the cells ([`Suite::runs`], [`Suite::shard`]), so a suite of millions of runs takes the
/// memory of its cells only.
#[derive(Clone, Debug)]
pub struct Suite {
    /// The file as parsed.
    pub file: SuiteFile,
    /// The text it was parsed from (stored as `suite.toml`).
    pub text: String,
    /// Its size, counted before it was expanded.
    pub size: SuiteSize,
    /// The matrices, expanded into cells.
    pub matrices: Vec<PlannedMatrix>,
    /// (matrix name, cell key) -> (matrix, cell) positions.
    lookup: HashMap<(String, String), (usize, usize)>,
}

/// A stable 64-bit hash (FNV-1a, then a SplitMix64 finaliser); unlike std's hasher it is the
/// same in every process and every release.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of a run: from the suite seed, the coordinates that generate the task set (workload,
/// task count, arrivals) and the repetition. Strategies, engines, worker counts, speeds and
/// estimate errors do not enter, so in one repetition they all face the same task costs (paired
/// comparisons: common random numbers).
pub fn run_seed(suite_seed: u64, c: &Coordinates, repetition: u32) -> u64 {
    stable_hash(
        format!(
            "{suite_seed}|{}|{}|{}|{repetition}",
            c.workload, c.tasks, c.arrivals
        )
        .as_bytes(),
    )
}

/// Quote a word for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,=/:+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The `schedlab run` line that reproduces `args` (always with `--json`).
pub fn command_line(args: &RunArgs) -> String {
    let mut line = command_head(args);
    push_tail(&mut line, args.seed, args.timeline);
    line
}

/// [`command_line`] up to its `--seed`: what the repetitions of a cell share.
fn command_head(args: &RunArgs) -> String {
    let mut w: Vec<String> = vec!["schedlab".into(), "run".into()];
    let mut push = |flag: &str, v: String| {
        w.push(flag.into());
        w.push(shell_quote(&v));
    };
    push("--engine", args.engine.clone());
    if args.engine == "threads" {
        push("--kind", args.kind.clone());
    }
    push("--strategy", args.strategy.clone());
    push("--workload", args.workload.clone());
    push("--tasks", args.tasks.to_string());
    push("--workers", args.workers.to_string());
    if args.speeds != "uniform" {
        push("--speeds", args.speeds.clone());
    }
    if args.arrivals != "closed" {
        push("--arrivals", args.arrivals.clone());
    }
    if args.estimate_error != 0.0 {
        push("--estimate-error", args.estimate_error.to_string());
    }
    if args.pin != "none" {
        push("--pin", args.pin.clone());
    }
    if let Some(t) = &args.topology {
        push("--topology", t.clone());
    }
    if let Some(c) = &args.cost {
        push("--cost", c.clone());
    }
    w.join(" ")
}

/// The rest of [`command_line`] after [`command_head`].
fn push_tail(line: &mut String, seed: u64, timeline: usize) {
    use std::fmt::Write as _;
    let _ = write!(line, " --seed {seed}");
    if timeline > 0 {
        let _ = write!(line, " --timeline {timeline}");
    }
    line.push_str(" --json");
}

/// Resolve a suite argument: a shipped suite's name, or a path to a TOML file.
pub fn source(arg: &str) -> Result<(String, String), CliError> {
    if let Some((name, text)) = SHIPPED.iter().find(|(n, _)| *n == arg) {
        return Ok((format!("suite '{name}'"), text.to_string()));
    }
    let path = std::path::Path::new(arg);
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Input(format!("{arg}: cannot read: {e}")))?;
        return Ok((arg.to_string(), text));
    }
    let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
    Err(CliError::Input(format!(
        "SUITE: '{arg}' is neither a shipped suite ({}) nor a file",
        names.join(", ")
    )))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The key of the `key = value` line holding byte `offset`, if it is one.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let o = offset.min(text.len());
    let start = text[..o].rfind('\n').map_or(0, |i| i + 1);
    let end = text[o..].find('\n').map_or(text.len(), |i| o + i);
    let (key, _) = text[start..end].split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('[') && !key.contains(' ')).then(|| key.to_string())
}

/// Which `[[matrix]]` table (1-based) holds byte `offset`, if any.
fn matrix_at(text: &str, offset: usize) -> Option<usize> {
    let before = &text[..offset.min(text.len())];
    let n = before
        .lines()
        .filter(|l| l.trim_start().starts_with("[[matrix]]"))
        .count();
    (n > 0).then_some(n)
}

/// The suite field that a `schedlab run` flag comes from.
fn field_of(flag: &str) -> &str {
    match flag {
        "--strategy" => "strategies",
        "--workload" => "workloads",
        "--workers" => "workers",
        "--tasks" => "tasks",
        "--speeds" => "speeds",
        "--arrivals" => "arrivals",
        "--estimate-error" => "estimate_error",
        "--pin" => "pin",
        "--topology" => "topology",
        "--cost" => "cost",
        "--engine" => "engine",
        "--kind" => "kind",
        other => other,
    }
}

impl Suite {
    /// Load a shipped suite by name or a suite file by path, validated and expanded.
    pub fn load(arg: &str) -> Result<Suite, CliError> {
        let (origin, text) = source(arg)?;
        Suite::parse(&text, &origin)
    }

    /// Parse and validate `text` (from `origin`, named in errors) and expand it into cells,
    /// checking memory against this process's limits now. Every error is one line naming the
    /// origin, the matrix and the field.
    pub fn parse(text: &str, origin: &str) -> Result<Suite, CliError> {
        Suite::parse_within(text, origin, &MemoryLimits::detect()?)
    }

    /// [`Suite::parse`] against memory limits already detected. The runs are counted from the
    /// axes first; a suite whose cells would not fit in memory is refused before any is made.
    pub fn parse_within(
        text: &str,
        origin: &str,
        limits: &MemoryLimits,
    ) -> Result<Suite, CliError> {
        let file = parse_file(text, origin)?;
        let size = file.size();
        if size.runs > (isize::MAX as u128) {
            return Err(CliError::Input(format!(
                "{origin}: {} runs ({}): more than can be counted; give the matrices fewer values",
                size.runs,
                axes_text(&file)
            )));
        }
        let need = size.cells as f64 * BYTES_PER_CELL as f64;
        if let Some((bytes, limit)) = limits.refusing(&MemoryNeed {
            resident: need,
            ..MemoryNeed::default()
        }) {
            return Err(CliError::Input(format!(
                "{origin}: {} cells ({}) would need about {} of memory to check (about 2 KiB a \
                 cell), above {}; give the matrices fewer values or split the suite",
                size.cells,
                axes_text(&file),
                human_bytes(bytes),
                limit_text(limit)
            )));
        }
        let matrices = expand(&file, origin, limits)?;
        let cells: Vec<(String, Vec<Coordinates>)> = matrices
            .iter()
            .map(|m| {
                let coords = m.cells.iter().map(|c| c.coords.clone()).collect();
                (m.name.clone(), coords)
            })
            .collect();
        for (i, ask) in file.compare.iter().enumerate() {
            ask.check(&cells).map_err(|(field, msg)| {
                CliError::Input(format!(
                    "{origin}: compare #{}: field {field}: {msg}",
                    i + 1
                ))
            })?;
        }
        let mut lookup = HashMap::new();
        for (mi, m) in matrices.iter().enumerate() {
            for (ci, c) in m.cells.iter().enumerate() {
                lookup.insert((m.name.clone(), c.cell.clone()), (mi, ci));
            }
        }
        Ok(Suite {
            file,
            text: text.to_string(),
            size,
            matrices,
            lookup,
        })
    }

    /// How many runs the suite has.
    pub fn run_count(&self) -> usize {
        self.matrices.iter().map(PlannedMatrix::runs).sum()
    }

    /// How many cells the suite has.
    pub fn cell_count(&self) -> usize {
        self.matrices.iter().map(|m| m.cells.len()).sum()
    }

    /// Where every run of shard `k` of `n` (1-based; `None`: every run) sits, in order, without
    /// making the runs.
    pub fn refs(&self, shard: Option<(usize, usize)>) -> Refs<'_> {
        let (k, n) = shard.unwrap_or((1, 1));
        Refs {
            suite: self,
            next: k.saturating_sub(1),
            step: n.max(1),
            matrix: 0,
        }
    }

    /// Every run, in order, made one at a time.
    pub fn runs(&self) -> impl Iterator<Item = PlannedRun> + '_ {
        self.refs(None).map(|r| self.planned(r))
    }

    /// The runs of shard `k` of `n` (1-based): every n-th run, starting at run k − 1.
    pub fn shard(&self, k: usize, n: usize) -> impl Iterator<Item = PlannedRun> + '_ {
        self.refs(Some((k, n))).map(|r| self.planned(r))
    }

    /// Run `index`, if there is one.
    pub fn run(&self, index: usize) -> Option<PlannedRun> {
        self.refs(None).nth(index).map(|r| self.planned(r))
    }

    /// The cell a run belongs to.
    pub fn cell(&self, r: RunRef) -> &PlannedCell {
        &self.matrices[r.matrix].cells[r.cell]
    }

    /// The seed of run `r` (the same as [`run_seed`] of its coordinates).
    pub fn seed(&self, r: RunRef) -> u64 {
        let c = self.cell(r);
        stable_hash(format!("{}{}", c.seed_key, r.repetition).as_bytes())
    }

    /// The command line of run `r`, without making the run.
    pub fn command(&self, r: RunRef) -> String {
        let c = self.cell(r);
        let mut line = c.head.clone();
        push_tail(&mut line, self.seed(r), timeline_of(r.repetition));
        line
    }

    /// The run at `r`.
    pub fn planned(&self, r: RunRef) -> PlannedRun {
        let c = self.cell(r);
        let seed = self.seed(r);
        let mut args = c.args.clone();
        args.seed = seed;
        args.timeline = timeline_of(r.repetition);
        args.json = true;
        PlannedRun {
            index: r.index,
            matrix: self.matrices[r.matrix].name.clone(),
            coords: c.coords.clone(),
            cell: c.cell.clone(),
            repetition: r.repetition,
            seed,
            command: self.command(r),
            args,
            min_wall_ns: c.min_wall_ns,
        }
    }

    /// The position of the run of `matrix`, `cell` and `repetition`, if the suite has it.
    pub fn index_of(&self, matrix: &str, cell: &str, repetition: u32) -> Option<usize> {
        let &(mi, ci) = self.lookup.get(&(matrix.to_string(), cell.to_string()))?;
        let m = &self.matrices[mi];
        (repetition < m.repetitions).then(|| m.first + repetition as usize * m.cells.len() + ci)
    }
}

/// The runs of a suite (or of one shard), by position: see [`Suite::refs`].
#[derive(Clone, Debug)]
pub struct Refs<'a> {
    suite: &'a Suite,
    next: usize,
    step: usize,
    matrix: usize,
}

impl Iterator for Refs<'_> {
    type Item = RunRef;

    fn next(&mut self) -> Option<RunRef> {
        let ms = &self.suite.matrices;
        while self.matrix < ms.len() && self.next >= ms[self.matrix].first + ms[self.matrix].runs()
        {
            self.matrix += 1;
        }
        let m = ms.get(self.matrix)?;
        let offset = self.next - m.first;
        let r = RunRef {
            index: self.next,
            matrix: self.matrix,
            cell: offset % m.cells.len(),
            repetition: (offset / m.cells.len()) as u32,
        };
        self.next = self.next.saturating_add(self.step);
        Some(r)
    }
}

/// The timeline cap of a repetition: [`TIMELINE_CAP`] for repetition 0, none for the others.
fn timeline_of(repetition: u32) -> usize {
    if repetition == 0 {
        TIMELINE_CAP
    } else {
        0
    }
}

/// The matrices' axis lengths in short, for messages: `matrix 'm': 5 strategies x 1000
/// workloads x 8 workers x 1 tasks x 1000 repetitions`.
fn axes_text(f: &SuiteFile) -> String {
    f.matrices
        .iter()
        .map(|m| {
            let mut parts = vec![
                format!("{} strategies", m.strategies.len()),
                format!("{} workloads", m.workloads.len()),
                format!("{} workers", m.workers.len()),
                format!("{} tasks", m.tasks.len()),
            ];
            for (what, len) in [
                ("speeds", m.speeds.len()),
                ("arrivals", m.arrivals.len()),
                ("estimate errors", m.estimate_error.len()),
                ("pins", m.pin.len()),
                ("topologies", m.topology.len()),
                ("costs", m.cost.len()),
            ] {
                if len > 1 {
                    parts.push(format!("{len} {what}"));
                }
            }
            parts.push(format!(
                "{} repetitions",
                m.repetitions.unwrap_or(f.repetitions)
            ));
            format!("matrix '{}': {}", m.name, parts.join(" x "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl SuiteFile {
    /// The suite's size from its axis lengths alone: nothing is expanded or checked.
    pub fn size(&self) -> SuiteSize {
        let mut size = SuiteSize {
            matrices: self.matrices.len(),
            cells: 0,
            runs: 0,
            held_bytes: 0.0,
        };
        for m in &self.matrices {
            let workers = worker_counts(m).unwrap_or_default();
            let others = [
                m.strategies.len(),
                m.workloads.len(),
                m.speeds.len().max(1),
                m.arrivals.len().max(1),
                m.estimate_error.len().max(1),
                m.pin.len().max(1),
                m.topology.len().max(1),
                m.cost.len().max(1),
            ]
            .iter()
            .fold(1u128, |a, &n| a.saturating_mul(n as u128));
            let cells = others
                .saturating_mul(workers.len() as u128)
                .saturating_mul(m.tasks.len() as u128);
            let reps = u128::from(m.repetitions.unwrap_or(self.repetitions));
            size.cells = size.cells.saturating_add(cells);
            size.runs = size.runs.saturating_add(cells.saturating_mul(reps));
            // Rows held: per (workers, tasks) pair, as many cells as the other axes make.
            let mut per_other = 0.0;
            for &p in &workers {
                for &n in &m.tasks {
                    let row = BYTES_PER_ROW as f64 + p as f64 * BYTES_PER_ROW_WORKER as f64;
                    let spans = n.min(TIMELINE_CAP) as f64 * BYTES_PER_ROW_SPAN as f64;
                    per_other += row * reps as f64 + spans;
                }
            }
            size.held_bytes += per_other * others as f64;
        }
        size
    }
}

/// Parse `K/N` with 1 ≤ K ≤ N.
pub fn parse_shard(s: &str) -> Result<(usize, usize), CliError> {
    let bad = || {
        CliError::Input(format!(
            "--shard: '{s}' is not K/N with 1 <= K <= N (e.g. 2/3)"
        ))
    };
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let k: usize = k.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Parse the TOML of a suite and check its top level. Every error is one line naming the
/// origin, the line, the matrix and the field.
fn parse_file(text: &str, origin: &str) -> Result<SuiteFile, CliError> {
    let f: SuiteFile = toml::from_str(text).map_err(|e| {
        let msg = e.message().replace('\n', " ");
        let at = e.span().map(|s| s.start);
        let place = match at {
            Some(o) => {
                let mut place = match matrix_at(text, o) {
                    Some(m) => format!("line {}: matrix #{m}", line_of(text, o)),
                    None => format!("line {}", line_of(text, o)),
                };
                if let Some(key) = key_at(text, o) {
                    place.push_str(&format!(": field {key}"));
                }
                place
            }
            None => "top level".into(),
        };
        CliError::Input(format!("{origin}: {place}: {msg}"))
    })?;
    let top = |field: &str, msg: String| CliError::Input(format!("{origin}: field {field}: {msg}"));
    if f.name.is_empty()
        || !f
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(top(
            "name",
            format!(
                "'{}' is not allowed (letters, digits, '-' and '_'; it names the results directory)",
                f.name
            ),
        ));
    }
    if f.question.trim().is_empty() {
        return Err(top(
            "question",
            "empty (say in one sentence what the suite answers)".into(),
        ));
    }
    if f.repetitions == 0 {
        return Err(top("repetitions", "must be at least 1, got 0".into()));
    }
    if f.matrices.is_empty() {
        return Err(top(
            "matrix",
            "no [[matrix]] table (a suite needs at least one)".into(),
        ));
    }
    Ok(f)
}

/// The worker counts of `m`: `"cpus"` resolved, duplicates and (with `workers_up_to_cpus`)
/// counts above this machine's cpus dropped; the bad value's message otherwise.
fn worker_counts(m: &MatrixFile) -> Result<Vec<usize>, String> {
    let mut workers = Vec::new();
    for w in &m.workers {
        let n = match w {
            WorkerCount::N(n) => *n,
            WorkerCount::Named(s) if s == "cpus" => cpus(),
            WorkerCount::Named(s) => {
                return Err(format!(
                    "'{s}' is not a worker count (a number >= 1 or \"cpus\")"
                ))
            }
        };
        if m.workers_up_to_cpus && n > cpus() {
            continue;
        }
        if !workers.contains(&n) {
            workers.push(n);
        }
    }
    Ok(workers)
}

/// Check every cell of every matrix (once: repetitions differ only in the seed) and lay the
/// matrices out one after another.
fn expand(
    f: &SuiteFile,
    origin: &str,
    limits: &MemoryLimits,
) -> Result<Vec<PlannedMatrix>, CliError> {
    let mut names = HashSet::new();
    let mut out: Vec<PlannedMatrix> = Vec::new();
    let mut first = 0usize;
    for (mi, m) in f.matrices.iter().enumerate() {
        let label = if m.name.is_empty() {
            format!("#{}", mi + 1)
        } else {
            format!("'{}'", m.name)
        };
        let err = |field: &str, msg: String| {
            CliError::Input(format!("{origin}: matrix {label}: field {field}: {msg}"))
        };
        if m.name.is_empty() {
            return Err(err("name", "empty (each matrix needs a name)".into()));
        }
        if !names.insert(m.name.clone()) {
            return Err(err(
                "name",
                "used by an earlier matrix (names must be unique)".into(),
            ));
        }
        let engine = m.engine.clone().unwrap_or_else(|| f.engine.clone());
        if engine != "threads" && engine != "sim" {
            return Err(err(
                "engine",
                format!("'{engine}' is not an engine (allowed: threads, sim)"),
            ));
        }
        let kind = m.kind.clone().unwrap_or_else(|| f.kind.clone());
        let repetitions = m.repetitions.unwrap_or(f.repetitions);
        if repetitions == 0 {
            return Err(err("repetitions", "must be at least 1, got 0".into()));
        }
        let workers = worker_counts(m).map_err(|e| err("workers", e))?;
        let or = |v: &Vec<String>, d: &str| {
            if v.is_empty() {
                vec![d.to_string()]
            } else {
                v.clone()
            }
        };
        let speeds = or(&m.speeds, "uniform");
        let arrivals = or(&m.arrivals, "closed");
        let pins = or(&m.pin, "none");
        let topologies = or(&m.topology, "");
        let costs = or(&m.cost, "");
        let errors = if m.estimate_error.is_empty() {
            vec![0.0]
        } else {
            m.estimate_error.clone()
        };
        for (field, len) in [
            ("strategies", m.strategies.len()),
            ("workloads", m.workloads.len()),
            ("workers", workers.len()),
            ("tasks", m.tasks.len()),
        ] {
            if len == 0 {
                return Err(err(field, "empty list (give at least one value)".into()));
            }
        }
        if engine == "threads" && costs.iter().any(|c| !c.is_empty()) {
            return Err(err(
                "cost",
                "only the sim engine takes a cost model (set engine = \"sim\")".into(),
            ));
        }
        if m.tasks.contains(&0) {
            return Err(err("tasks", "must be at least 1, got 0".into()));
        }
        let mut cells: Vec<PlannedCell> = Vec::new();
        let mut seen = HashSet::new();
        for workload in &m.workloads {
            for &p in &workers {
                for &n in &m.tasks {
                    for sp in &speeds {
                        for ar in &arrivals {
                            for &ee in &errors {
                                for pin in &pins {
                                    for topo in &topologies {
                                        for cost in &costs {
                                            for strategy in &m.strategies {
                                                let args = RunArgs {
                                                    strategy: strategy.clone(),
                                                    workload: workload.clone(),
                                                    tasks: n,
                                                    workers: p,
                                                    engine: engine.clone(),
                                                    kind: kind.clone(),
                                                    pin: pin.clone(),
                                                    speeds: sp.clone(),
                                                    arrivals: ar.clone(),
                                                    estimate_error: ee,
                                                    seed: 0,
                                                    topology: (!topo.is_empty())
                                                        .then(|| topo.clone()),
                                                    cost: (!cost.is_empty()).then(|| cost.clone()),
                                                    ..RunArgs::default()
                                                };
                                                let checked = Checked::within(&args, limits)
                                                    .map_err(|e| match e {
                                                        CliError::Input(msg) => {
                                                            let (flag, rest) = msg
                                                                .split_once(": ")
                                                                .unwrap_or(("", &msg));
                                                            err(field_of(flag), rest.to_string())
                                                        }
                                                        other => other,
                                                    })?;
                                                let coords = Coordinates {
                                                    engine: engine.clone(),
                                                    kind: if engine == "sim" {
                                                        "virtual".into()
                                                    } else {
                                                        kind.clone()
                                                    },
                                                    strategy: checked.strategy.spec(),
                                                    workload: workload.clone(),
                                                    workers: p,
                                                    tasks: n,
                                                    speeds: if sp == "uniform" {
                                                        String::new()
                                                    } else {
                                                        sp.clone()
                                                    },
                                                    arrivals: ar.clone(),
                                                    estimate_error: ee,
                                                    pin: pin.clone(),
                                                    topology: topo.clone(),
                                                    cost: cost.clone(),
                                                };
                                                let key = coords.key();
                                                if !seen.insert(key.clone()) {
                                                    return Err(err(
                                                        "strategies",
                                                        format!(
                                                            "the cell {key} appears twice (a value is repeated in an axis)"
                                                        ),
                                                    ));
                                                }
                                                cells.push(PlannedCell::new(
                                                    f.seed, coords, key, args,
                                                ));
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let m = PlannedMatrix {
            name: m.name.clone(),
            repetitions,
            cells,
            first,
        };
        first += m.runs();
        out.push(m);
    }
    Ok(out)
}

impl PlannedCell {
    fn new(suite_seed: u64, coords: Coordinates, cell: String, mut args: RunArgs) -> PlannedCell {
        args.strategy = coords.strategy.clone();
        let min_wall_ns = (args.engine == "threads").then(|| threads_lower_bound(&args));
        let seed_key = format!(
            "{suite_seed}|{}|{}|{}|",
            coords.workload, coords.tasks, coords.arrivals
        );
        PlannedCell {
            head: command_head(&args),
            seed_key,
            coords,
            cell,
            args,
            min_wall_ns,
        }
    }
}

/// A lower bound on a threads run's wall time from the distribution's mean: total work over the
/// sum of speeds (the expected value of the makespan's lower bound).
fn threads_lower_bound(args: &RunArgs) -> f64 {
    let Ok(dist) = workloads::Distribution::parse(&args.workload) else {
        return 0.0;
    };
    let speeds = workloads::Speeds::parse(&args.speeds)
        .and_then(|s| s.resolve(args.workers))
        .map(|s| s.iter().sum::<f64>())
        .unwrap_or(args.workers as f64);
    dist.mean_ns() * args.tasks as f64 / speeds.max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_suite_parses() {
        for (name, text) in SHIPPED {
            let s = Suite::parse(text, name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(&s.file.name, name);
            assert!(s.run_count() > 0, "{name}");
            assert_eq!(
                s.size.runs,
                s.run_count() as u128,
                "{name}: counted = expanded"
            );
            assert_eq!(s.size.cells, s.cell_count() as u128, "{name}");
        }
    }

    #[test]
    fn stable_hash_is_fixed() {
        // Fixed values (from an independent implementation): a change here changes every
        // stored seed.
        assert_eq!(stable_hash(b""), 0xc381_7c01_6ba4_ff30);
        assert_eq!(stable_hash(b"schedlab"), 0x5eab_1d92_543e_22f6);
        assert_ne!(stable_hash(b"a"), stable_hash(b"b"));
    }

    #[test]
    fn shards_partition_the_runs() {
        let s = Suite::load("quick").unwrap();
        let mut all: Vec<usize> = (1..=3)
            .flat_map(|k| s.shard(k, 3).map(|r| r.index))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..s.run_count()).collect::<Vec<_>>());
        assert!(parse_shard("0/3").is_err());
        assert!(parse_shard("4/3").is_err());
        assert!(parse_shard("x").is_err());
        assert_eq!(parse_shard("2/3").unwrap(), (2, 3));
    }

    #[test]
    fn quoting_round_trips_simple_words() {
        assert_eq!(shell_quote("sim"), "sim");
        assert_eq!(shell_quote("central(chunk=4)"), "'central(chunk=4)'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn runs_made_from_cells_agree_with_their_positions_seeds_and_commands() {
        let s = Suite::load("quick").unwrap();
        let mut n = 0;
        for (i, r) in s.runs().enumerate() {
            assert_eq!(r.index, i);
            assert_eq!(s.index_of(&r.matrix, &r.cell, r.repetition), Some(i));
            assert_eq!(r.seed, run_seed(s.file.seed, &r.coords, r.repetition));
            assert_eq!(r.command, command_line(&r.args));
            assert_eq!(r.args.timeline > 0, r.repetition == 0);
            n += 1;
        }
        assert_eq!(n, s.run_count());
        assert_eq!(s.run(n - 1).map(|r| r.index), Some(n - 1));
        assert!(s.run(n).is_none());
        assert_eq!(s.index_of("main", "no such cell", 0), None);
        let last = s.run(n - 1).unwrap();
        assert_eq!(
            s.index_of(&last.matrix, &last.cell, last.repetition + 1),
            None
        );
    }
}
