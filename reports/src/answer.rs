//! The answer at the top of a report: a few sentences, computed from the per-cell summaries
//! (`summary.json`) and the runs behind them, that answer the suite's question, each with its
//! effect size and 95% interval or "within noise".
//!
//! - [`regimes`]: a matrix's settings (every combination of its varying axes but the strategy),
//!   with settings that are equal within noise along a settings axis (topology, cost model,
//!   pinning, speeds, engine, kind) merged into one ("topology made no
//!   difference for P ≤ 64"); the summary table shows these rows.
//! - [`answer`]: per matrix, the best strategy per regime, where a strategy falls behind or
//!   catches up along an ordered axis, and the comparisons the suite file names ([`Ask`], a
//!   `[[compare]]` table); the matrix whose answer is clearest comes first.
//!
//! "Within noise" is [`crate::compare::change_of_rows`]: the 95% CI of the relative difference
//! covers zero (paired by seed where both cells ran the same seeds, Welch otherwise), the same
//! test as `schedlab compare` and the table's "vs best".
//!
//! ```
//! use reports::answer::{answer, Ask};
//! use reports::results::{CellSummary, Coordinates, Stat};
//! use reports::suite::Suite;
//! let cell = |strategy: &str, ms: f64| {
//!     let coords = Coordinates {
//!         engine: "sim".into(), kind: "virtual".into(), strategy: strategy.into(),
//!         workload: "lognormal(mean=100us,sigma=1.5)".into(), workers: 16, tasks: 1000,
//!         speeds: String::new(), arrivals: "closed".into(), estimate_error: 0.0,
//!         pin: "none".into(), topology: String::new(), cost: String::new(),
//!     };
//!     let stat = Stat::of(&[ms * 0.99e6, ms * 1e6, ms * 1.01e6]);
//!     CellSummary { cell: coords.key(), matrix: "m".into(), coords, makespan_ns: stat,
//!                   efficiency: stat, lif: stat, p99_ns: stat }
//! };
//! let suite = Suite::from_cells("results/x".as_ref(), vec![cell("block", 14.0), cell("central", 10.0)]);
//! let a = answer(&suite, &[]);
//! assert!(a.text().contains("central is best"), "{}", a.text());
//! assert!(a.text().contains("ahead of the next (block) by 40.0% (95% CI ±"), "{}", a.text());
//! ```

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::compare::change_of_rows;
use crate::figures::fmt_ns;
use crate::results::{CellSummary, RunRow, Stat};
use crate::suite::{strategies, varying, Axis, Suite};
use crate::theory;

/// A comparison a suite file names, as a `[[compare]]` table:
///
/// ```toml
/// [[compare]]
/// matrix = "sim-numa"                     # optional: every matrix where a and b both ran
/// of = "strategy"                         # the axis a and b are values of (default strategy)
/// a = "work-stealing(victim=numa)"        # the setting under test
/// b = "work-stealing(victim=random)"      # the baseline
/// across = "topology"                     # optional: one result per value of this axis
/// metric = "makespan"                     # optional: makespan or p99 (default by arrivals)
/// ```
///
/// A strategy given with fewer parameters than its canonical spec matches every spec that has
/// them (`work-stealing(victim=numa)` matches `work-stealing(victim=numa,steal=half,order=fifo)`);
/// another axis's value may be given bare (`16x64`) or as the report labels it (`topo=16x64`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    /// The matrix (empty: every matrix where both `a` and `b` ran).
    #[serde(default)]
    pub matrix: String,
    /// The axis `a` and `b` are values of (empty: `strategy`).
    #[serde(default)]
    pub of: String,
    /// The setting under test.
    pub a: String,
    /// The baseline.
    pub b: String,
    /// One result per value of this axis (empty: one result over every setting).
    #[serde(default)]
    pub across: String,
    /// `makespan` or `p99` (empty: makespan for closed arrivals, p99 latency for open ones).
    #[serde(default)]
    pub metric: String,
}

/// The `[[compare]]` tables of a suite file (everything else in it is ignored here).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Asks {
    /// The comparisons, in file order.
    #[serde(rename = "compare", default)]
    pub compare: Vec<Ask>,
}

/// The metric an answer ranks by; lower is better for both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Makespan.
    Makespan,
    /// 99th percentile latency.
    P99,
}

impl Metric {
    /// The names a suite file may give.
    pub const NAMES: &'static str = "makespan, p99";

    /// Parse a suite file's `metric` (`None` for an unknown name).
    pub fn parse(s: &str) -> Option<Metric> {
        match s.trim().to_ascii_lowercase().as_str() {
            "makespan" => Some(Metric::Makespan),
            "p99" | "p99 latency" | "p99_latency" => Some(Metric::P99),
            _ => None,
        }
    }

    /// The default for `cells`: p99 latency under open arrivals, makespan otherwise.
    pub fn default_for(cells: &[&CellSummary]) -> Metric {
        if cells
            .iter()
            .any(|c| theory::poisson_rate(&c.coords.arrivals).is_some())
        {
            Metric::P99
        } else {
            Metric::Makespan
        }
    }

    /// As printed.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Makespan => "makespan",
            Metric::P99 => "p99 latency",
        }
    }

    /// The cell's statistics of this metric.
    pub fn stat(self, c: &CellSummary) -> Stat {
        match self {
            Metric::Makespan => c.makespan_ns,
            Metric::P99 => c.p99_ns,
        }
    }

    /// One run's value of this metric.
    pub fn value(self, r: &RunRow) -> f64 {
        match self {
            Metric::Makespan => r.report.makespan_ns as f64,
            Metric::P99 => r.report.latency_ns.p99 as f64,
        }
    }
}

/// Relative differences below this (0.1%) are ties, whatever their interval.
pub const NEGLIGIBLE: f64 = 0.001;

/// The relative difference `new / base − 1` of a metric between two cells, with the 95% CI
/// half-width of that difference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gap {
    /// `new / base − 1`.
    pub rel: f64,
    /// 95% CI half-width of `rel`.
    pub ci95: f64,
}

impl Gap {
    /// Whether the difference is outside the noise: its 95% CI excludes zero, and it is at
    /// least [`NEGLIGIBLE`] (the simulator is deterministic: runs paired by seed can differ by
    /// a few nanoseconds with a CI of zero, a difference no report should call one).
    pub fn clear(&self) -> bool {
        self.rel.abs() > self.ci95 && self.rel.abs() >= NEGLIGIBLE
    }

    /// `+12.3% (95% CI ±1.0%)`, or `within noise (+0.3% ± 0.9%)`.
    pub fn text(&self) -> String {
        if self.clear() {
            format!("{} (95% CI ±{:.1}%)", signed(self.rel), self.ci95 * 100.0)
        } else {
            format!(
                "within noise ({} ± {:.1}%)",
                signed(self.rel),
                self.ci95 * 100.0
            )
        }
    }
}

fn signed(x: f64) -> String {
    let p = x * 100.0;
    if p.abs() < 0.05 {
        "±0.0%".into()
    } else {
        format!("{p:+.1}%")
    }
}

/// The gap of `new` against `base` on `metric`: paired by seed where both cells ran the same
/// seeds, Welch on the summaries otherwise ([`change_of_rows`]).
pub fn gap(suite: &Suite, metric: Metric, base: &CellSummary, new: &CellSummary) -> Gap {
    let (rel, ci95, _) = change_of_rows(
        &suite.rows_of(base),
        &suite.rows_of(new),
        |r| metric.value(r),
        (&metric.stat(base), &metric.stat(new)),
    );
    Gap { rel, ci95 }
}

/// One setting of a matrix: one value per varying axis but the strategy, where an axis along
/// which the setting's cells were equal within noise holds several values.
#[derive(Clone, Debug)]
pub struct Regime<'a> {
    /// Per varying axis (strategy left out), the values this regime stands for.
    pub values: Vec<(Axis, Vec<String>)>,
    /// One cell per strategy (those of the first value where several were merged).
    pub cells: Vec<&'a CellSummary>,
}

impl Regime<'_> {
    /// The values of `axis` (empty if it does not vary).
    pub fn of(&self, axis: Axis) -> &[String] {
        self.values
            .iter()
            .find(|(a, _)| *a == axis)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    /// The label: each axis's value, several joined by " / ", all of them as "any".
    pub fn label(&self, all: &[(Axis, Vec<String>)]) -> String {
        let parts: Vec<String> = self
            .values
            .iter()
            .map(|(a, v)| {
                let n = all
                    .iter()
                    .find(|(b, _)| b == a)
                    .map_or(0, |(_, vals)| vals.len());
                if v.len() > 1 && v.len() == n {
                    format!("any {}", a.name())
                } else {
                    v.join(" / ")
                }
            })
            .collect();
        if parts.is_empty() {
            "all".into()
        } else {
            parts.join(" · ")
        }
    }
}

/// A matrix's settings, merged where an axis made no difference.
#[derive(Clone, Debug)]
pub struct Regimes<'a> {
    /// The matrix.
    pub matrix: String,
    /// The ranking metric.
    pub metric: Metric,
    /// The varying axes (strategy left out) and every value of each, in order of appearance.
    pub axes: Vec<(Axis, Vec<String>)>,
    /// The strategies, in order of appearance.
    pub strategies: Vec<String>,
    /// The settings, in order of appearance.
    pub regimes: Vec<Regime<'a>>,
    /// What merging found, e.g. "topology made no difference for P ≤ 64".
    pub notes: Vec<String>,
}

fn values_of(cells: &[&CellSummary], axis: Axis) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in cells {
        let v = axis.value(&c.coords);
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Whether two settings' cells are equal within noise for every strategy (and ran the same
/// strategies).
fn same_within_noise(suite: &Suite, metric: Metric, a: &Regime, b: &Regime) -> bool {
    a.cells.len() == b.cells.len()
        && a.cells.iter().all(|x| {
            b.cells
                .iter()
                .find(|y| y.coords.strategy == x.coords.strategy)
                .is_some_and(|y| !gap(suite, metric, x, y).clear())
        })
}

/// The settings of `matrix`, ranked by `metric` (its default when `None`), with settings that
/// are equal within noise along an axis merged: axis by axis, a setting joins an earlier one that
/// differs from it in that axis only when every strategy's cell is within noise of its cell
/// there.
pub fn regimes<'a>(suite: &'a Suite, matrix: &str, metric: Option<Metric>) -> Regimes<'a> {
    let cells = suite.cells_of(matrix);
    let metric = metric.unwrap_or_else(|| Metric::default_for(&cells));
    let axes: Vec<(Axis, Vec<String>)> = varying(&cells)
        .into_iter()
        .filter(|a| *a != Axis::Strategy)
        .map(|a| (a, values_of(&cells, a)))
        .collect();
    let mut regimes: Vec<Regime<'a>> = Vec::new();
    for c in &cells {
        let values: Vec<(Axis, Vec<String>)> = axes
            .iter()
            .map(|(a, _)| (*a, vec![a.value(&c.coords)]))
            .collect();
        match regimes.iter_mut().find(|r| r.values == values) {
            Some(r) => r.cells.push(c),
            None => regimes.push(Regime {
                values,
                cells: vec![c],
            }),
        }
    }
    let mut notes = Vec::new();
    let before = regimes.clone();
    // Only along settings axes (topology, cost, pinning, speeds, ...): the ordered ones
    // (workers, workload, ...) are what a reader looks along, and a few noisy repetitions
    // should not fold two workloads into one row.
    let order: Vec<usize> = (0..axes.len()).filter(|&i| !ordered(axes[i].0)).collect();
    for i in order {
        let (axis, all) = &axes[i];
        if all.len() < 2 {
            continue;
        }
        let mut kept: Vec<Regime<'a>> = Vec::new();
        for r in regimes {
            let key = |x: &Regime| {
                x.values
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, v)| v.clone())
                    .collect::<Vec<_>>()
            };
            match kept
                .iter_mut()
                .find(|k| key(k) == key(&r) && same_within_noise(suite, metric, k, &r))
            {
                Some(k) => {
                    let extra = r.values[i].1.clone();
                    k.values[i].1.extend(extra);
                }
                None => kept.push(r),
            }
        }
        regimes = kept;
        if let Some(note) = merge_note(*axis, i, all, &regimes, &before, &axes) {
            notes.push(note);
        }
    }
    Regimes {
        matrix: matrix.to_string(),
        metric,
        axes,
        strategies: strategies(&cells),
        regimes,
        notes,
    }
}

/// "topology made no difference for P ≤ 64", from the settings where axis `i` was merged over
/// all its values.
fn merge_note(
    axis: Axis,
    i: usize,
    all: &[String],
    merged: &[Regime],
    before: &[Regime],
    axes: &[(Axis, Vec<String>)],
) -> Option<String> {
    let full: Vec<&Regime> = merged
        .iter()
        .filter(|r| r.values[i].1.len() == all.len())
        .collect();
    if full.is_empty() {
        return None;
    }
    let what = format!("{} made no difference (within noise)", axis_words(axis));
    let settings = before.len() / all.len().max(1);
    let covered: usize = full.len();
    if covered * all.len() >= before.len() {
        return Some(format!("{what} in any setting"));
    }
    // The other axis whose values say exactly which settings these are.
    for (j, (other, vals)) in axes.iter().enumerate() {
        if j == i {
            continue;
        }
        let inside: Vec<String> = vals
            .iter()
            .filter(|v| {
                let with = |r: &&Regime| r.values[j].1.contains(v);
                merged
                    .iter()
                    .filter(with)
                    .all(|r| full.iter().any(|f| std::ptr::eq(*f, r)))
            })
            .cloned()
            .collect();
        let explained = full
            .iter()
            .all(|r| r.values[j].1.iter().all(|v| inside.contains(v)));
        if !inside.is_empty() && explained {
            return Some(format!("{what} for {}", describe(*other, &inside, vals)));
        }
    }
    Some(format!(
        "{what} in {} of {settings} settings",
        covered.min(settings)
    ))
}

fn axis_words(a: Axis) -> &'static str {
    match a {
        Axis::Workers => "the worker count",
        Axis::Tasks => "the task count",
        Axis::Topology => "topology",
        Axis::Cost => "the cost model",
        Axis::Workload => "the workload",
        Axis::Speeds => "worker speeds",
        Axis::Arrivals => "the arrival rate",
        Axis::EstimateError => "estimate error",
        Axis::Pin => "pinning",
        Axis::Engine => "the engine",
        Axis::Kind => "the kind of work",
        Axis::Strategy => "the strategy",
    }
}

/// Whether the axis's values are ordered (a range "P ≤ 64" means something).
fn ordered(a: Axis) -> bool {
    matches!(
        a,
        Axis::Workers | Axis::Tasks | Axis::EstimateError | Axis::Workload | Axis::Arrivals
    )
}

/// `name(k=v,...)` split into name and its key=value items.
fn call(s: &str) -> Option<(&str, Vec<&str>)> {
    let (name, rest) = s.split_once('(')?;
    let inner = rest.strip_suffix(')')?;
    Some((name, inner.split(',').map(str::trim).collect()))
}

/// The short form of `v` among `all`: where every value is the same call with one argument
/// differing (`lognormal(mean=100us,sigma=1)` among other sigmas), that argument (`sigma=1`).
pub fn short(v: &str, all: &[String]) -> String {
    let (Some((name, args)), true) = (call(v), all.len() > 1) else {
        return v.to_string();
    };
    let others: Vec<(&str, Vec<&str>)> = all.iter().filter_map(|s| call(s)).collect();
    if others.len() != all.len()
        || others
            .iter()
            .any(|(n, a)| *n != name || a.len() != args.len())
    {
        return v.to_string();
    }
    let differing: Vec<usize> = (0..args.len())
        .filter(|&k| others.iter().any(|(_, a)| a[k] != args[k]))
        .collect();
    if differing.len() == 1 {
        args[differing[0]].to_string()
    } else {
        v.to_string()
    }
}

/// `key` and bare value of an axis label (`P=64` → `P`, `64`).
fn key_value(label: &str) -> (&str, &str) {
    match label.split_once('=') {
        Some((k, v)) if !k.contains('(') => (k, v),
        _ => ("", label),
    }
}

/// The subset `some` of the axis's values `all`, in words: "P ≤ 64", "sigma ≥ 1",
/// "P=32–256", "any topology" or a list.
pub fn describe(axis: Axis, some: &[String], all: &[String]) -> String {
    let idx: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, v)| some.contains(v))
        .map(|(i, _)| i)
        .collect();
    if idx.is_empty() {
        return "no setting".into();
    }
    if idx.len() == all.len() && all.len() > 1 {
        return format!("any {}", axis.name());
    }
    let s = |i: usize| short(&all[i], all);
    if !ordered(axis) {
        return idx.iter().map(|&i| s(i)).collect::<Vec<_>>().join(" / ");
    }
    // Runs of consecutive values.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &i in &idx {
        match runs.last_mut() {
            Some((_, hi)) if *hi + 1 == i => *hi = i,
            _ => runs.push((i, i)),
        }
    }
    let text = |(lo, hi): (usize, usize)| {
        let first = s(lo);
        let (k, _) = key_value(&first);
        if lo == hi {
            s(lo)
        } else if k.is_empty() {
            format!("{} to {}", s(lo), s(hi))
        } else if lo == 0 && runs.len() == 1 {
            format!("{k} ≤ {}", key_value(&s(hi)).1)
        } else if hi == all.len() - 1 && runs.len() == 1 {
            format!("{k} ≥ {}", key_value(&s(lo)).1)
        } else {
            format!("{k}={}–{}", key_value(&s(lo)).1, key_value(&s(hi)).1)
        }
    };
    runs.iter().map(|&r| text(r)).collect::<Vec<_>>().join(", ")
}

/// Where one setting's strategies stand.
#[derive(Clone, Debug)]
struct Standing<'a> {
    /// The lowest mean.
    best: &'a CellSummary,
    /// The strategies within noise of the best, the best first.
    leaders: Vec<String>,
    /// The best strategy outside the noise of the best, with its gap.
    next: Option<(&'a CellSummary, Gap)>,
    /// Each strategy's gap to the best.
    gaps: Vec<(String, Gap)>,
}

fn standing<'a>(suite: &Suite, metric: Metric, r: &Regime<'a>) -> Standing<'a> {
    let mut sorted = r.cells.clone();
    sorted.sort_by(|a, b| metric.stat(a).mean.total_cmp(&metric.stat(b).mean));
    let best = sorted[0];
    let gaps: Vec<(String, Gap)> = sorted
        .iter()
        .map(|c| (c.coords.strategy.clone(), gap(suite, metric, best, c)))
        .collect();
    // In the matrix's order, so that equal sets compare equal.
    let leaders = r
        .cells
        .iter()
        .map(|c| &c.coords.strategy)
        .filter(|s| {
            gaps.iter()
                .enumerate()
                .any(|(i, (n, g))| n == *s && (i == 0 || !g.clear()))
        })
        .cloned()
        .collect();
    let next = sorted
        .iter()
        .zip(&gaps)
        .skip(1)
        .find(|(_, (_, g))| g.clear())
        .map(|(c, (_, g))| (*c, *g));
    Standing {
        best,
        leaders,
        next,
        gaps,
    }
}

/// The answer for one matrix.
#[derive(Clone, Debug)]
pub struct MatrixAnswer {
    /// The matrix.
    pub matrix: String,
    /// Sentences, most important first.
    pub sentences: Vec<String>,
    /// How clearly this matrix answers: over its settings, the mean share of strategies
    /// clearly behind the best (0 when all are within noise everywhere).
    pub clarity: f64,
    /// Whether a suite file's comparison named it.
    pub named: bool,
}

/// The answer of a report.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Per matrix, the clearest first (matrices a comparison names before the others).
    pub matrices: Vec<MatrixAnswer>,
    /// How the answer was computed, and what the suite file named.
    pub method: String,
}

impl Answer {
    /// Matrix names in the order the report shows them.
    pub fn order(&self) -> Vec<String> {
        self.matrices.iter().map(|m| m.matrix.clone()).collect()
    }

    /// All sentences as plain text, one matrix a paragraph.
    pub fn text(&self) -> String {
        let mut t = String::new();
        for m in &self.matrices {
            let _ = writeln!(t, "{}:", m.matrix);
            for s in &m.sentences {
                let _ = writeln!(t, "- {s}");
            }
        }
        let _ = writeln!(t, "{}", self.method);
        t
    }
}

/// Whether strategy spec `pattern` (as a user writes it) matches the canonical `spec`: the same
/// name, and every parameter given appears in the spec.
pub fn strategy_matches(pattern: &str, spec: &str) -> bool {
    let pattern = pattern.trim();
    if pattern == spec {
        return true;
    }
    let name_of = |s: &str| s.split('(').next().unwrap_or("").trim().to_string();
    if name_of(pattern) != name_of(spec) {
        return false;
    }
    fn args(s: &str) -> Vec<&str> {
        call(s).map(|(_, a)| a).unwrap_or_default()
    }
    let have = args(spec);
    args(pattern)
        .iter()
        .filter(|a| !a.is_empty())
        .all(|a| have.contains(a))
}

/// Whether `pattern` names the value of `axis` in `c` (bare or as labelled).
pub fn value_matches(axis: Axis, pattern: &str, c: &crate::results::Coordinates) -> bool {
    if axis == Axis::Strategy {
        return strategy_matches(pattern, &c.strategy);
    }
    let label = axis.value(c);
    let pattern = pattern.trim();
    label == pattern || key_value(&label).1 == pattern
}

/// The axis called `name` (`strategy`, `workers`, `topology`, `cost`, `estimate_error`, ...).
pub fn axis_named(name: &str) -> Option<Axis> {
    let n = name.trim().to_ascii_lowercase().replace(['_', '-'], " ");
    let n = if n.is_empty() { "strategy".into() } else { n };
    Axis::ALL.into_iter().find(|a| {
        a.name() == n
            || (n == "p" && *a == Axis::Workers)
            || (n == "topo" && *a == Axis::Topology)
            || (n == "error" && *a == Axis::EstimateError)
    })
}

/// The axis names a suite file may give.
pub fn axis_names() -> String {
    Axis::ALL
        .iter()
        .map(|a| a.name().replace(' ', "_"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Ask {
    /// Check the comparison against a suite's matrices (name and cell coordinates): the axes and
    /// the metric exist, the matrix exists, and `a` and `b` match cells. The error is
    /// `(field, what is wrong and what is allowed)`.
    pub fn check(
        &self,
        matrices: &[(String, Vec<crate::results::Coordinates>)],
    ) -> Result<(), (&'static str, String)> {
        let of = axis_named(&self.of).ok_or_else(|| {
            (
                "of",
                format!("'{}' is not an axis (allowed: {})", self.of, axis_names()),
            )
        })?;
        if !self.across.is_empty() {
            let across = axis_named(&self.across).ok_or_else(|| {
                (
                    "across",
                    format!(
                        "'{}' is not an axis (allowed: {})",
                        self.across,
                        axis_names()
                    ),
                )
            })?;
            if across == of {
                return Err((
                    "across",
                    format!(
                        "'{}' is the axis a and b are values of; give another",
                        self.across
                    ),
                ));
            }
        }
        if !self.metric.is_empty() && Metric::parse(&self.metric).is_none() {
            return Err((
                "metric",
                format!(
                    "'{}' is not a metric (allowed: {})",
                    self.metric,
                    Metric::NAMES
                ),
            ));
        }
        let names: Vec<&str> = matrices.iter().map(|(n, _)| n.as_str()).collect();
        let scope: Vec<&(String, Vec<crate::results::Coordinates>)> = if self.matrix.is_empty() {
            matrices.iter().collect()
        } else {
            let m: Vec<_> = matrices.iter().filter(|(n, _)| *n == self.matrix).collect();
            if m.is_empty() {
                return Err((
                    "matrix",
                    format!(
                        "'{}' is not a matrix of the suite (matrices: {})",
                        self.matrix,
                        names.join(", ")
                    ),
                ));
            }
            m
        };
        for (field, v) in [("a", &self.a), ("b", &self.b)] {
            if !scope
                .iter()
                .any(|(_, cs)| cs.iter().any(|c| value_matches(of, v, c)))
            {
                let mut seen: Vec<String> = Vec::new();
                for (_, cs) in &scope {
                    for c in cs {
                        let l = if of == Axis::Strategy {
                            c.strategy.clone()
                        } else {
                            of.value(c)
                        };
                        if !seen.contains(&l) {
                            seen.push(l);
                        }
                    }
                }
                return Err((
                    field,
                    format!(
                        "'{v}' matches no {} of {} (values: {})",
                        of.name(),
                        if self.matrix.is_empty() {
                            "any matrix".to_string()
                        } else {
                            format!("matrix '{}'", self.matrix)
                        },
                        seen.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A strategy's name without the parameters every strategy of its kind in the matrix shares
/// (`work-stealing(victim=numa,steal=half,order=fifo)` → `work-stealing(victim=numa)` when the
/// other work-stealing differs only in the victim).
fn short_strategy(s: &str, all: &[String]) -> String {
    let Some((name, args)) = call(s) else {
        return s.to_string();
    };
    let kin: Vec<Vec<&str>> = all
        .iter()
        .filter_map(|x| call(x))
        .filter(|(n, _)| *n == name)
        .map(|(_, a)| a)
        .collect();
    let keep: Vec<&str> = args
        .iter()
        .filter(|a| kin.iter().any(|k| !k.contains(a)))
        .copied()
        .collect();
    if keep.is_empty() {
        name.to_string()
    } else {
        format!("{name}({})", keep.join(","))
    }
}

/// " and "-joined list.
fn list(items: &[String]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

/// A set of settings in words: by the one axis whose values pick exactly these settings,
/// else a short list.
fn where_(rs: &Regimes, members: &[usize]) -> String {
    if members.len() == rs.regimes.len() {
        return "in every setting".into();
    }
    for (j, (axis, vals)) in rs.axes.iter().enumerate() {
        let inside: Vec<String> = vals
            .iter()
            .filter(|v| {
                let with: Vec<usize> = (0..rs.regimes.len())
                    .filter(|&k| rs.regimes[k].values[j].1.contains(v))
                    .collect();
                !with.is_empty() && with.iter().all(|k| members.contains(k))
            })
            .cloned()
            .collect();
        let explained = members
            .iter()
            .all(|&k| rs.regimes[k].values[j].1.iter().all(|v| inside.contains(v)));
        if !inside.is_empty() && explained {
            return format!("at {}", describe(*axis, &inside, vals));
        }
    }
    let labels: Vec<String> = members
        .iter()
        .take(3)
        .map(|&k| rs.regimes[k].label(&rs.axes))
        .collect();
    if members.len() > 3 {
        format!("in {} settings ({}; …)", members.len(), labels.join("; "))
    } else {
        format!("at {}", labels.join("; "))
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// "by 3.1% (±0.4%)" or "by 3.1% (±0.4%) to 25.0% (±2.0%)".
fn by_range(gaps: &[Gap]) -> String {
    let lo = gaps
        .iter()
        .min_by(|a, b| a.rel.abs().total_cmp(&b.rel.abs()));
    let hi = gaps
        .iter()
        .max_by(|a, b| a.rel.abs().total_cmp(&b.rel.abs()));
    match (lo, hi) {
        (Some(lo), Some(hi)) if gaps.len() > 1 && (hi.rel - lo.rel).abs() >= 0.0005 => format!(
            "by {} (±{}) to {} (±{})",
            pct(lo.rel.abs()),
            pct(lo.ci95),
            pct(hi.rel.abs()),
            pct(hi.ci95)
        ),
        (Some(g), _) => format!("by {} (95% CI ±{})", pct(g.rel.abs()), pct(g.ci95)),
        _ => String::new(),
    }
}

/// At most this many "who is best where" sentences per matrix.
const MAX_GROUPS: usize = 4;

/// The best strategy per setting, grouped by who leads.
fn best_sentences(suite: &Suite, rs: &Regimes, st: &[Standing]) -> Vec<String> {
    let short = |s: &str| short_strategy(s, &rs.strategies);
    let mut groups: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
    for (k, s) in st.iter().enumerate() {
        match groups.iter_mut().find(|(l, _)| *l == s.leaders) {
            Some((_, m)) => m.push(k),
            None => groups.push((s.leaders.clone(), vec![k])),
        }
    }
    // The largest groups first; equal ones in the order of their first setting.
    groups.sort_by_key(|(_, m)| (std::cmp::Reverse(m.len()), m[0]));
    let mut out = Vec::new();
    let shown = groups.len().min(MAX_GROUPS);
    for (leaders, members) in &groups[..shown] {
        let place = where_(rs, members);
        let names: Vec<String> = leaders.iter().map(|s| short(s)).collect();
        if leaders.len() == rs.strategies.len() && leaders.len() > 1 {
            out.push(format!(
                "All {} strategies are within noise of each other {place}.",
                leaders.len()
            ));
            continue;
        }
        let nexts: Vec<Gap> = members
            .iter()
            .filter_map(|&k| st[k].next.map(|n| n.1))
            .collect();
        let next_names: Vec<String> = {
            let mut v: Vec<String> = Vec::new();
            for &k in members {
                if let Some((c, _)) = st[k].next {
                    let n = short(&c.coords.strategy);
                    if !v.contains(&n) {
                        v.push(n);
                    }
                }
            }
            v
        };
        let value = if members.len() == 1 {
            let b = st[members[0]].best;
            format!(
                " ({} {} ± {})",
                rs.metric.name(),
                fmt_ns(rs.metric.stat(b).mean),
                fmt_ns(rs.metric.stat(b).ci95)
            )
        } else {
            String::new()
        };
        let head = if names.len() == 1 {
            format!("{} is best {place}{value}", names[0])
        } else {
            format!(
                "{} tie for best {place} (within noise of each other)",
                list(&names)
            )
        };
        let tail = if nexts.is_empty() {
            String::new()
        } else {
            format!(
                ", ahead of the next ({}) {}",
                next_names.join(" or "),
                by_range(&nexts)
            )
        };
        out.push(format!("{head}{tail}."));
    }
    if groups.len() > shown {
        let rest: usize = groups[shown..].iter().map(|(_, m)| m.len()).sum();
        out.push(format!(
            "The leaders differ again in the {rest} other setting(s); the table shows them."
        ));
    }
    // The last of the ranking where it is clear: the worst strategy and by how much.
    if st.len() == 1 && rs.strategies.len() > 2 {
        let s = &st[0];
        if let Some((worst, g)) = s.gaps.last().filter(|(_, g)| g.clear()) {
            out.push(format!("Last: {} at {}.", short(worst), g.text()));
        }
    }
    let _ = suite;
    out
}

/// Along each ordered axis, where a strategy falls behind the leaders for good (or catches up
/// for good), the same in every combination of the other axes.
fn crossover_sentences(rs: &Regimes, st: &[Standing]) -> Vec<String> {
    let short = |s: &str| short_strategy(s, &rs.strategies);
    let mut out = Vec::new();
    for (j, (axis, vals)) in rs.axes.iter().enumerate() {
        if !ordered(*axis) || vals.len() < 3 {
            continue;
        }
        // Lines along the axis: the regimes with equal other values, ordered by this axis.
        let mut lines: Vec<Vec<usize>> = Vec::new();
        let key = |k: usize| {
            rs.regimes[k]
                .values
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != j)
                .map(|(_, v)| v.1.clone())
                .collect::<Vec<_>>()
        };
        for k in 0..rs.regimes.len() {
            match lines.iter_mut().find(|l| key(l[0]) == key(k)) {
                Some(l) => l.push(k),
                None => lines.push(vec![k]),
            }
        }
        let pos = |k: usize| {
            vals.iter()
                .position(|v| rs.regimes[k].values[j].1.contains(v))
                .unwrap_or(0)
        };
        let mut behind: Vec<(String, String, Vec<Gap>)> = Vec::new();
        let mut ahead: Vec<(String, String, Vec<Gap>)> = Vec::new();
        for s in &rs.strategies {
            let mut threshold: Option<(bool, usize)> = None;
            let mut consistent = true;
            let mut gaps = Vec::new();
            for line in &lines {
                if line.len() < 3 {
                    consistent = false;
                    break;
                }
                let mut line = line.clone();
                line.sort_by_key(|&k| pos(k));
                let lead: Vec<bool> = line.iter().map(|&k| st[k].leaders.contains(s)).collect();
                let switches = lead.windows(2).filter(|w| w[0] != w[1]).count();
                if switches != 1 {
                    consistent = false;
                    break;
                }
                let at = lead.windows(2).position(|w| w[0] != w[1]).unwrap_or(0) + 1;
                let t = (lead[0], pos(line[at]));
                if threshold.is_some_and(|x| x != t) {
                    consistent = false;
                    break;
                }
                threshold = Some(t);
                // The gap at the first behind setting.
                let k = if lead[0] { line[at] } else { line[at - 1] };
                if let Some((_, g)) = st[k].gaps.iter().find(|(n, _)| n == s) {
                    gaps.push(*g);
                }
            }
            if let (true, Some((was_leading, at))) = (consistent, threshold) {
                let from = self::short(&vals[at], vals);
                let entry = (short(s), from, gaps);
                if was_leading {
                    behind.push(entry);
                } else {
                    ahead.push(entry);
                }
            }
        }
        for (verb, set) in [("fall", &behind), ("stop", &ahead)] {
            let mut thresholds: Vec<&String> = set.iter().map(|(_, f, _)| f).collect();
            thresholds.dedup();
            for f in thresholds {
                let who: Vec<&(String, String, Vec<Gap>)> =
                    set.iter().filter(|(_, t, _)| t == f).collect();
                let names: Vec<String> = who.iter().map(|(n, _, _)| n.clone()).collect();
                let gaps: Vec<Gap> = who.iter().flat_map(|(_, _, g)| g.clone()).collect();
                let (k, v) = key_value(f);
                let from = if k.is_empty() {
                    format!("from {f} on")
                } else {
                    format!("from {k} ≥ {v}")
                };
                let sing = names.len() == 1;
                if verb == "fall" {
                    out.push(format!(
                        "{} {} behind the best {from}: slower there {}.",
                        list(&names),
                        if sing { "falls" } else { "fall" },
                        by_range(&gaps)
                    ));
                } else {
                    out.push(format!(
                        "{} {} among the best {from} (within noise of the best; {} behind it before).",
                        list(&names),
                        if sing { "is" } else { "are" },
                        by_range(&gaps)
                    ));
                }
            }
        }
    }
    out
}

/// A named comparison on one matrix.
fn ask_sentence(suite: &Suite, matrix: &str, ask: &Ask) -> Option<String> {
    let of = axis_named(&ask.of)?;
    let across = if ask.across.is_empty() {
        None
    } else {
        Some(axis_named(&ask.across)?)
    };
    let cells = suite.cells_of(matrix);
    let metric = Metric::parse(&ask.metric).unwrap_or_else(|| Metric::default_for(&cells));
    let axes = varying(&cells);
    let rest: Vec<Axis> = axes
        .iter()
        .copied()
        .filter(|a| *a != of && Some(*a) != across)
        .collect();
    let key = |c: &CellSummary, with: &[Axis]| -> Vec<String> {
        with.iter().map(|a| a.value(&c.coords)).collect()
    };
    let mut all_axes = rest.clone();
    if let Some(x) = across {
        all_axes.push(x);
    }
    // Pairs (a, b) with the same other coordinates.
    let mut pairs: Vec<(&CellSummary, &CellSummary)> = Vec::new();
    for ca in cells
        .iter()
        .filter(|c| value_matches(of, &ask.a, &c.coords))
    {
        let k = key(ca, &all_axes);
        let other =
            |c: &&&CellSummary| of == Axis::Strategy || c.coords.strategy == ca.coords.strategy;
        if let Some(cb) = cells
            .iter()
            .filter(other)
            .find(|c| value_matches(of, &ask.b, &c.coords) && key(c, &all_axes) == k)
        {
            pairs.push((ca, cb));
        }
    }
    if pairs.is_empty() {
        return None;
    }
    let groups: Vec<(String, Vec<(&CellSummary, &CellSummary)>)> = match across {
        None => vec![(String::new(), pairs.clone())],
        Some(x) => {
            let mut g: Vec<(String, Vec<(&CellSummary, &CellSummary)>)> = Vec::new();
            for p in &pairs {
                let v = x.value(&p.0.coords);
                match g.iter_mut().find(|(k, _)| *k == v) {
                    Some((_, l)) => l.push(*p),
                    None => g.push((v, vec![*p])),
                }
            }
            g
        }
    };
    let rest_vals: Vec<(Axis, Vec<String>)> = rest
        .iter()
        .filter(|a| **a != Axis::Strategy || of != Axis::Strategy)
        .map(|a| (*a, values_of(&cells, *a)))
        .collect();
    let mut parts = Vec::new();
    for (g, ps) in &groups {
        let gaps: Vec<(Gap, &CellSummary)> = ps
            .iter()
            .map(|(a, b)| (gap(suite, metric, b, a), *a))
            .collect();
        let faster: Vec<&(Gap, &CellSummary)> = gaps
            .iter()
            .filter(|(x, _)| x.clear() && x.rel < 0.0)
            .collect();
        let slower: Vec<&(Gap, &CellSummary)> = gaps
            .iter()
            .filter(|(x, _)| x.clear() && x.rel > 0.0)
            .collect();
        let noise = gaps.len() - faster.len() - slower.len();
        let at = |list: &[&(Gap, &CellSummary)]| -> String {
            if rest_vals.is_empty() || list.len() == gaps.len() {
                return String::new();
            }
            // By the remaining axis whose values pick exactly these settings, else a list.
            for (axis, vals) in &rest_vals {
                let some: Vec<String> = list.iter().map(|(_, c)| axis.value(&c.coords)).collect();
                let exact = gaps.iter().all(|(_, c)| {
                    some.contains(&axis.value(&c.coords))
                        == list.iter().any(|(_, x)| std::ptr::eq(*x, *c))
                });
                if exact {
                    return format!(" at {}", describe(*axis, &some, vals));
                }
            }
            let labels: Vec<String> = list
                .iter()
                .take(3)
                .map(|(_, c)| {
                    rest_vals
                        .iter()
                        .map(|(a, vals)| short(&a.value(&c.coords), vals))
                        .collect::<Vec<_>>()
                        .join(" · ")
                })
                .collect();
            let more = if list.len() > 3 { "; …" } else { "" };
            format!(" ({}{more})", labels.join("; "))
        };
        let mut bits = Vec::new();
        let n = gaps.len();
        let count = |k: usize| {
            if n == 1 {
                String::new()
            } else if k == n && n == 2 {
                " in both settings".to_string()
            } else if k == n {
                format!(" in all {n} settings")
            } else {
                format!(" in {k} of {n}")
            }
        };
        for (word, list) in [("faster", &faster), ("slower", &slower)] {
            if list.is_empty() {
                continue;
            }
            let gs: Vec<Gap> = list.iter().map(|(g, _)| *g).collect();
            let largest = list
                .iter()
                .max_by(|x, y| x.0.rel.abs().total_cmp(&y.0.rel.abs()))
                .map(|(g, c)| (g, c));
            let detail = match largest {
                Some((g, c)) if list.len() == 1 => format!(
                    "by {} (95% CI ±{}; {} against {})",
                    pct(g.rel.abs()),
                    pct(g.ci95),
                    fmt_ns(metric.stat(c).mean),
                    fmt_ns(
                        ps.iter()
                            .find(|(a, _)| std::ptr::eq(*a, *c))
                            .map_or(0.0, |(_, b)| metric.stat(b).mean)
                    )
                ),
                _ => by_range(&gs),
            };
            bits.push(format!("{word}{}{} {detail}", count(list.len()), at(list)));
        }
        if noise > 0 {
            let nl: Vec<&(Gap, &CellSummary)> = gaps.iter().filter(|(x, _)| !x.clear()).collect();
            let lo = nl.iter().map(|(g, _)| g.rel).fold(f64::INFINITY, f64::min);
            let hi = nl
                .iter()
                .map(|(g, _)| g.rel)
                .fold(f64::NEG_INFINITY, f64::max);
            let range = if nl.len() == 1 || (hi - lo).abs() < 0.0005 {
                signed(lo)
            } else {
                format!("{} to {}", signed(lo), signed(hi))
            };
            // Where the others are clear, the rest is implied: no list.
            let place = if noise == gaps.len() {
                at(&nl)
            } else {
                String::new()
            };
            bits.push(format!("within noise{}{place} ({range})", count(noise)));
        }
        let head = match key_value(g) {
            _ if g.is_empty() => String::new(),
            ("cost", v) => format!("at {v}: "),
            _ => format!("on {g}: "),
        };
        parts.push(format!("{head}{}", bits.join("; ")));
    }
    Some(format!(
        "{} against {} ({}): {}.",
        ask.a,
        ask.b,
        metric.name(),
        parts.join("; ")
    ))
}

/// The answer of `suite` to its question: per matrix, the comparisons `asks` names (those whose
/// matrix is this one or empty, and whose values both ran in it), the best strategy per setting
/// and where a strategy falls behind along an ordered axis.
pub fn answer(suite: &Suite, asks: &[Ask]) -> Answer {
    let mut out = Vec::new();
    for m in suite.matrices() {
        let rs = regimes(suite, &m, None);
        let st: Vec<Standing> = rs
            .regimes
            .iter()
            .map(|r| standing(suite, rs.metric, r))
            .collect();
        let mut sentences = Vec::new();
        let mut named = false;
        for ask in asks.iter().filter(|a| a.matrix.is_empty() || a.matrix == m) {
            if let Some(s) = ask_sentence(suite, &m, ask) {
                named |= !ask.matrix.is_empty();
                sentences.push(s);
            }
        }
        // Two strategies that a comparison already weighs need no ranking.
        let weighed = rs.strategies.len() == 2
            && asks
                .iter()
                .any(|a| a.matrix == m && axis_named(&a.of) == Some(Axis::Strategy));
        if !weighed {
            sentences.extend(best_sentences(suite, &rs, &st));
        }
        sentences.extend(crossover_sentences(&rs, &st));
        if !rs.notes.is_empty() {
            let mut n = rs.notes.join("; ");
            if let Some(f) = n.get(..1) {
                n = f.to_uppercase() + &n[1..];
            }
            sentences.push(format!("{n}."));
        }
        let clarity = if st.is_empty() {
            0.0
        } else {
            st.iter()
                .map(|s| 1.0 - s.leaders.len() as f64 / rs.strategies.len().max(1) as f64)
                .sum::<f64>()
                / st.len() as f64
        };
        out.push(MatrixAnswer {
            matrix: m,
            sentences,
            clarity,
            named,
        });
    }
    // Matrices a comparison names first, then the clearer ones; ties keep the suite's order.
    out.sort_by(|a, b| b.named.cmp(&a.named).then(b.clarity.total_cmp(&a.clarity)));
    let method = if asks.is_empty() {
        "The suite file names no comparison ([[compare]]): the answer ranks the strategies of each setting by makespan (p99 latency under open arrivals), lower is better. Percentages are differences of means with their 95% CI (paired by seed where cells ran the same seeds); \"within noise\" where the CI covers zero.".to_string()
    } else {
        let names: Vec<String> = asks
            .iter()
            .map(|a| {
                let on = if a.matrix.is_empty() {
                    String::new()
                } else {
                    format!(" on {}", a.matrix)
                };
                let across = if a.across.is_empty() {
                    String::new()
                } else {
                    format!(" across {}", a.across)
                };
                format!("{} against {}{on}{across}", a.a, a.b)
            })
            .collect();
        format!(
            "The suite file compares {}; the rest ranks the strategies of each setting by makespan (p99 latency under open arrivals), lower is better. Percentages are differences of means with their 95% CI (paired by seed where cells ran the same seeds); \"within noise\" where the CI covers zero.",
            names.join("; ")
        )
    };
    Answer {
        matrices: out,
        method,
    }
}

/// The `[[compare]]` tables of the suite file stored in a results directory (`suite.toml`);
/// none when it is missing or unreadable.
pub fn asks_of(dir: &std::path::Path) -> Vec<Ask> {
    std::fs::read_to_string(crate::results::Layout::new(dir).suite_toml())
        .ok()
        .and_then(|t| toml::from_str::<Asks>(&t).ok())
        .map(|a| a.compare)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Coordinates;

    /// A cell of matrix `m`: `strategy` on `workload` with `workers`, its makespan `ms` with
    /// a spread of ±`spread` (as a share) over three repetitions.
    fn cell(
        m: &str,
        strategy: &str,
        workload: &str,
        workers: usize,
        ms: f64,
        spread: f64,
    ) -> CellSummary {
        let coords = Coordinates {
            engine: "sim".into(),
            kind: "virtual".into(),
            strategy: strategy.into(),
            workload: workload.into(),
            workers,
            tasks: 1000,
            speeds: String::new(),
            arrivals: "closed".into(),
            estimate_error: 0.0,
            pin: "none".into(),
            topology: String::new(),
            cost: String::new(),
        };
        let ns = ms * 1e6;
        let stat = Stat::of(&[ns * (1.0 - spread), ns, ns * (1.0 + spread)]);
        CellSummary {
            cell: coords.key(),
            matrix: m.into(),
            coords,
            makespan_ns: stat,
            efficiency: stat,
            lif: stat,
            p99_ns: stat,
        }
    }

    fn suite(cells: Vec<CellSummary>) -> Suite {
        Suite::from_cells("results/t".as_ref(), cells)
    }

    const W: &str = "lognormal(mean=100us,sigma=1.5)";

    #[test]
    fn a_known_winner_is_named_with_its_lead_and_interval() {
        let s = suite(vec![
            cell("m", "block", W, 16, 13.0, 0.01),
            cell("m", "central", W, 16, 10.0, 0.01),
            cell("m", "lpt", W, 16, 11.0, 0.01),
        ]);
        let a = answer(&s, &[]);
        let first = &a.matrices[0].sentences[0];
        assert!(
            first.starts_with("central is best in every setting (makespan 10.0ms"),
            "{first}"
        );
        // lpt is the next, 10% behind; Welch on three values each: t(≈4) × se.
        assert!(
            first.contains("ahead of the next (lpt) by 10.0% (95% CI ±"),
            "{first}"
        );
        assert!(
            a.text().contains("Last: block at +30.0% (95% CI"),
            "{}",
            a.text()
        );
        assert!(a.method.contains("names no comparison"), "{}", a.method);
    }

    #[test]
    fn a_tie_within_noise_is_said_and_no_winner_is_named() {
        // 1% apart with a ±10% spread: the CI covers zero.
        let s = suite(vec![
            cell("m", "central", W, 16, 10.0, 0.10),
            cell("m", "work-stealing", W, 16, 10.1, 0.10),
        ]);
        let t = answer(&s, &[]).text();
        assert!(
            t.contains("All 2 strategies are within noise of each other in every setting."),
            "{t}"
        );
        assert!(!t.contains("is best"), "{t}");
        // The same means with no spread: a 1% gap is clear.
        let s = suite(vec![
            cell("m", "central", W, 16, 10.0, 0.0),
            cell("m", "work-stealing", W, 16, 10.1, 0.0),
        ]);
        let t = answer(&s, &[]).text();
        assert!(t.contains("central is best in every setting"), "{t}");
        // A deterministic difference below 0.1% is a tie, not a win.
        let s = suite(vec![
            cell("m", "central", W, 16, 10.0, 0.0),
            cell("m", "work-stealing", W, 16, 10.005, 0.0),
        ]);
        let t = answer(&s, &[]).text();
        assert!(t.contains("within noise of each other"), "{t}");
    }

    #[test]
    fn a_crossover_along_sigma_is_found_and_placed() {
        // Static block keeps up at small sigma and falls behind from sigma=1 on.
        let mut cells = Vec::new();
        for (sigma, block) in [
            ("0.25", 10.0),
            ("0.5", 10.02),
            ("1", 12.0),
            ("1.5", 14.0),
            ("2", 17.0),
        ] {
            let w = format!("lognormal(mean=100us,sigma={sigma})");
            cells.push(cell("m", "block", &w, 16, block, 0.01));
            cells.push(cell("m", "central", &w, 16, 10.0, 0.01));
        }
        let s = suite(cells);
        let t = answer(&s, &[]).text();
        assert!(
            t.contains(
                "block falls behind the best from sigma ≥ 1: slower there by 20.0% (95% CI ±"
            ),
            "{t}"
        );
        assert!(t.contains("central is best at sigma ≥ 1"), "{t}");
        assert!(
            t.contains("All 2 strategies are within noise of each other at sigma ≤ 0.5."),
            "{t}"
        );
    }

    #[test]
    fn rows_equal_within_noise_along_an_axis_are_merged_with_a_note() {
        // Topology makes no difference up to P=64 (the same numbers), one at P=1024.
        let mut cells = Vec::new();
        for p in [16usize, 64, 1024] {
            for topo in ["1x1024", "16x64"] {
                for (strategy, ms) in [("central", 10.0), ("block", 12.0)] {
                    let slow = if p == 1024 && topo == "16x64" {
                        1.2
                    } else {
                        1.0
                    };
                    let mut c = cell("m", strategy, W, p, ms * slow * 16.0 / p as f64, 0.01);
                    c.coords.topology = topo.into();
                    c.cell = c.coords.key();
                    cells.push(c);
                }
            }
        }
        let s = suite(cells);
        let rs = regimes(&s, "m", None);
        let labels: Vec<String> = rs.regimes.iter().map(|r| r.label(&rs.axes)).collect();
        assert_eq!(
            labels,
            [
                "P=16 · any topology",
                "P=64 · any topology",
                "P=1024 · topo=1x1024",
                "P=1024 · topo=16x64"
            ]
        );
        assert_eq!(
            rs.notes,
            ["topology made no difference (within noise) for P ≤ 64"]
        );
    }

    #[test]
    fn a_named_comparison_is_answered_per_value_of_its_axis() {
        let mut cells = Vec::new();
        for (cost, numa) in [("migrate=2us", 10.0), ("migrate=200us", 9.0)] {
            for (strategy, ms) in [
                ("work-stealing(victim=random,steal=half)", 10.0),
                ("work-stealing(victim=numa,steal=half)", numa),
            ] {
                let mut c = cell("m", strategy, W, 1024, ms, 0.01);
                c.coords.cost = cost.into();
                c.cell = c.coords.key();
                cells.push(c);
            }
        }
        let s = suite(cells);
        let ask = Ask {
            a: "work-stealing(victim=numa)".into(),
            b: "work-stealing(victim=random)".into(),
            across: "cost".into(),
            ..Ask::default()
        };
        let a = answer(&s, std::slice::from_ref(&ask));
        let first = &a.matrices[0].sentences[0];
        assert!(
            first.starts_with(
                "work-stealing(victim=numa) against work-stealing(victim=random) (makespan): "
            ),
            "{first}"
        );
        assert!(
            first.contains("at migrate=2us: within noise (±0.0%)"),
            "{first}"
        );
        assert!(
            first.contains("at migrate=200us: faster by 10.0% (95% CI ±"),
            "{first}"
        );
        assert!(
            a.method
                .contains("compares work-stealing(victim=numa) against"),
            "{}",
            a.method
        );
        // The check names the field and what is allowed.
        let coords = vec![(
            "m".to_string(),
            s.cells.iter().map(|c| c.coords.clone()).collect(),
        )];
        assert_eq!(ask.check(&coords), Ok(()));
        let bad = Ask {
            a: "work-stealing(victim=nmua)".into(),
            ..ask.clone()
        };
        let (field, msg) = bad.check(&coords).unwrap_err();
        assert_eq!(field, "a");
        assert!(
            msg.contains("matches no strategy") && msg.contains("victim=numa"),
            "{msg}"
        );
        let bad = Ask {
            across: "colour".into(),
            ..ask
        };
        assert_eq!(bad.check(&coords).unwrap_err().0, "across");
    }

    #[test]
    fn strategy_patterns_match_canonical_specs() {
        let spec = "work-stealing(victim=numa,steal=half,order=fifo)";
        assert!(strategy_matches("work-stealing(victim=numa)", spec));
        assert!(strategy_matches("work-stealing", spec));
        assert!(!strategy_matches("work-stealing(victim=random)", spec));
        assert!(!strategy_matches("range-stealing", spec));
        assert_eq!(
            short(
                "lognormal(mean=100us,sigma=1)",
                &[
                    "lognormal(mean=100us,sigma=1)".into(),
                    "lognormal(mean=100us,sigma=2)".into()
                ]
            ),
            "sigma=1"
        );
    }
}
