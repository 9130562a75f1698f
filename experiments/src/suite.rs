//! Suite files: a named question, a seed, repetitions and one or more matrices whose axes are
//! lists. [`Suite::load`] parses and validates a whole suite before anything runs and expands it
//! into [`PlannedRun`]s, each with its seed and the `schedlab run` line that reproduces it.
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
//! assert_eq!(suite.runs.len(), 2 * 2 * 2); // strategies × workers × repetitions
//! // Both strategies see the same task set in a repetition: the seed ignores the strategy.
//! assert_eq!(suite.runs[0].seed, suite.runs[1].seed);
//! assert!(suite.runs[0].command.starts_with("schedlab run --engine sim"));
//! ```

use std::collections::HashSet;

use reports::results::Coordinates;
use serde::Deserialize;

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

/// A parsed, validated and expanded suite.
#[derive(Clone, Debug)]
pub struct Suite {
    /// The file as parsed.
    pub file: SuiteFile,
    /// The text it was parsed from (stored as `suite.toml`).
    pub text: String,
    /// Every run, in order.
    pub runs: Vec<PlannedRun>,
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
    push("--seed", args.seed.to_string());
    if args.timeline > 0 {
        push("--timeline", args.timeline.to_string());
    }
    w.push("--json".into());
    w.join(" ")
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

    /// Parse and validate `text` (from `origin`, named in errors) and expand it. Every error is
    /// one line naming the origin, the matrix and the field.
    pub fn parse(text: &str, origin: &str) -> Result<Suite, CliError> {
        let file: SuiteFile = toml::from_str(text).map_err(|e| {
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
        let runs = expand(&file, origin)?;
        Ok(Suite {
            file,
            text: text.to_string(),
            runs,
        })
    }

    /// The runs of shard `k` of `n` (1-based): every n-th run, starting at run k − 1.
    pub fn shard(&self, k: usize, n: usize) -> Vec<&PlannedRun> {
        self.runs.iter().filter(|r| r.index % n == k - 1).collect()
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

fn expand(f: &SuiteFile, origin: &str) -> Result<Vec<PlannedRun>, CliError> {
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
    let mut names = HashSet::new();
    let mut runs = Vec::new();
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
        let mut workers = Vec::new();
        for w in &m.workers {
            let n = match w {
                WorkerCount::N(n) => *n,
                WorkerCount::Named(s) if s == "cpus" => cpus(),
                WorkerCount::Named(s) => {
                    return Err(err(
                        "workers",
                        format!("'{s}' is not a worker count (a number >= 1 or \"cpus\")"),
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
        // Every cell, checked once; repetitions differ only in the seed.
        let mut cells: Vec<(Coordinates, RunArgs)> = Vec::new();
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
                                                let checked =
                                                    Checked::new(&args).map_err(|e| match e {
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
                                                if !seen.insert(coords.key()) {
                                                    return Err(err(
                                                        "strategies",
                                                        format!(
                                                            "the cell {} appears twice (a value is repeated in an axis)",
                                                            coords.key()
                                                        ),
                                                    ));
                                                }
                                                let mut args = args;
                                                args.strategy = coords.strategy.clone();
                                                cells.push((coords, args));
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
        // Repetitions outermost: rep 0 of every cell, then rep 1, ... so a slow drift of the
        // machine spreads over all cells, and an interrupted suite has every cell at least once.
        for rep in 0..repetitions {
            for (coords, args) in &cells {
                let seed = run_seed(f.seed, coords, rep);
                let mut args = args.clone();
                args.seed = seed;
                args.timeline = if rep == 0 { TIMELINE_CAP } else { 0 };
                args.json = true;
                let min_wall_ns = (engine == "threads").then(|| threads_lower_bound(&args));
                runs.push(PlannedRun {
                    index: runs.len(),
                    matrix: m.name.clone(),
                    cell: coords.key(),
                    coords: coords.clone(),
                    repetition: rep,
                    seed,
                    command: command_line(&args),
                    args,
                    min_wall_ns,
                });
            }
        }
    }
    Ok(runs)
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
            assert!(!s.runs.is_empty(), "{name}");
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
            .flat_map(|k| s.shard(k, 3).into_iter().map(|r| r.index))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..s.runs.len()).collect::<Vec<_>>());
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
}
