//! Traces: task costs (and optionally arrival times) replayed from a CSV or JSON file.
//!
//! **CSV**: a header line, then one row per task. Columns are found by name (case-insensitive, any
//! order, other columns ignored): `cost` (a duration with a unit, e.g. `120us`) or `cost_ns` (a number
//! of nanoseconds), and optionally `arrival` (a duration) or `arrival_ns`. Blank lines and lines
//! starting with `#` are skipped. Fields are split on commas (no quoted commas), surrounding quotes are
//! removed.
//!
//! **Stages**: a CSV may have a `stage` column naming, on each row, the pipeline stage whose
//! service time the row records; one file then holds several stages, their rows interleaved (the
//! loader's pipeline writes rows in completion order, with columns `stage,kind,epoch,item,cost_ns`;
//! `kind`, `epoch` and `item` are read as ordinary extra columns and ignored). `stage=NAME` in the
//! spec (`trace(file=pipe.csv,stage=decode)`, [`Trace::load_stage`]) keeps that stage's rows in file
//! order and replays them as the task list. A file with two or more stages must be given a stage:
//! without one it is refused, and so is a name the file does not have; both errors list the stages
//! present ([`Trace::stages`] lists them too). A `stage` column holding one name only is an ordinary
//! one-stage trace. Every row of the file is checked, the unselected stages' rows included; arrival
//! times are checked for order among the selected rows. Stage names are matched exactly (case
//! matters) and may not be empty. The format is described for users in `docs/traces.md`.
//!
//! ```
//! use workloads::Trace;
//! let csv = "# schedlab pipeline trace v1\nstage,kind,epoch,item,cost_ns\n\
//!            read,blocking,0,0,2000000\ndecode,cpu,0,0,250000\nread,blocking,0,1,1800000\n";
//! let decode = Trace::from_text_stage("p.csv", csv, false, Some("decode")).unwrap();
//! assert_eq!(decode.cost_ns(), &[250_000]);
//! assert_eq!(decode.stage(), Some("decode"));
//! let read = Trace::from_text_stage("p.csv", csv, false, Some("read")).unwrap();
//! assert_eq!(read.cost_ns(), &[2_000_000, 1_800_000]);
//! let err = Trace::from_text("p.csv", csv, false).unwrap_err().to_string();
//! assert!(err.contains("2 stages (read, decode)"), "{err}");
//! ```
//!
//! **JSON** (a `.json` file, or any file starting with `[`): an array of numbers (costs in ns), or an
//! array of objects `{"cost_ns": 120000, "arrival_ns": 5000}` (`cost`/`arrival` as duration strings
//! are accepted too). Either every object has an arrival or none does. JSON traces have no stages
//! (a `stage` field is ignored, and `stage=NAME` is refused for them).
//!
//! A relative path is relative to the process's current directory. The file is read once, when the
//! spec is parsed. Arrival times must be nondecreasing in file order. Nanosecond numbers may have a fraction; they are
//! rounded to the nearest nanosecond.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::duration::{format_duration, parse_duration};
use crate::error::{quote, SpecError};

/// The rows of a trace file, loaded once and shared.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    path: PathBuf,
    stage: Option<String>,
    cost_ns: Arc<[u64]>,
    arrival_ns: Option<Arc<[u64]>>,
}

impl Trace {
    /// Read and check a trace file (CSV or JSON, see the module docs).
    ///
    /// ```no_run
    /// let trace = workloads::Trace::load("costs.csv").unwrap();
    /// println!("{} tasks", trace.len());
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Trace, SpecError> {
        Trace::load_stage(path, None)
    }

    /// Read and check a trace file, keeping the rows of stage `stage` when it is given (see
    /// the module docs: a file of several stages needs one, and it must be one of the file's).
    ///
    /// ```no_run
    /// let decode = workloads::Trace::load_stage("pipeline.csv", Some("decode")).unwrap();
    /// println!("{} decode tasks", decode.len());
    /// ```
    pub fn load_stage(path: impl AsRef<Path>, stage: Option<&str>) -> Result<Trace, SpecError> {
        let path = path.as_ref();
        let (text, is_json) = read_trace(path)?;
        Trace::from_text_stage(path, &text, is_json, stage)
    }

    /// The stages of the trace file at `path`, each once, in the order they first appear; empty
    /// for a file without a `stage` column (and for JSON). The whole file is read and checked, so
    /// a malformed file is an error here too.
    ///
    /// ```no_run
    /// for stage in workloads::Trace::stages("pipeline.csv").unwrap() {
    ///     println!("trace(file=pipeline.csv,stage={stage})");
    /// }
    /// ```
    pub fn stages(path: impl AsRef<Path>) -> Result<Vec<String>, SpecError> {
        let path = path.as_ref();
        let (text, is_json) = read_trace(path)?;
        Trace::stages_in_text(path, &text, is_json)
    }

    /// The stages of a trace file's text, as [`Trace::stages`] gives them for a file; `path`
    /// names it in errors.
    ///
    /// ```
    /// let csv = "stage,cost_ns\nread,10\ndecode,2\nread,12\n";
    /// assert_eq!(workloads::Trace::stages_in_text("p.csv", csv, false).unwrap(), ["read", "decode"]);
    /// assert!(workloads::Trace::stages_in_text("c.csv", "cost\n1us\n", false).unwrap().is_empty());
    /// ```
    pub fn stages_in_text(
        path: impl AsRef<Path>,
        text: &str,
        json: bool,
    ) -> Result<Vec<String>, SpecError> {
        let file = path.as_ref().display().to_string();
        if json || text.trim_start().starts_with('[') {
            parse_json(text, &file)?;
            return Ok(Vec::new());
        }
        Ok(parse_csv(text, &file, None)?.stages)
    }

    /// Parse the text of a trace file named `path` (used in messages and kept as the trace's
    /// path): JSON when `json` is true or the text starts with `[`, CSV otherwise. What
    /// [`Trace::load`] does after reading the file.
    ///
    /// ```
    /// let t = workloads::Trace::from_text("t.csv", "cost,arrival\n1us,0ns\n2us,5us\n", false).unwrap();
    /// assert_eq!(t.cost_ns(), &[1_000, 2_000]);
    /// assert_eq!(t.arrival_ns(), Some(&[0, 5_000][..]));
    /// assert!(workloads::Trace::from_text("t.json", "[1, -2]", true).is_err());
    /// ```
    pub fn from_text(path: impl AsRef<Path>, text: &str, json: bool) -> Result<Trace, SpecError> {
        Trace::from_text_stage(path, text, json, None)
    }

    /// Parse the text of a trace file as [`Trace::from_text`] does, keeping the rows of stage
    /// `stage` when it is given: what [`Trace::load_stage`] does after reading the file.
    ///
    /// ```
    /// use workloads::Trace;
    /// let csv = "stage,cost\nread,2ms\ndecode,250us\n";
    /// assert_eq!(Trace::from_text_stage("p.csv", csv, false, Some("read")).unwrap().cost_ns(), &[2_000_000]);
    /// let err = Trace::from_text_stage("p.csv", csv, false, Some("resize")).unwrap_err();
    /// assert!(err.to_string().contains("has no stage 'resize' (its stages: read, decode)"), "{err}");
    /// ```
    pub fn from_text_stage(
        path: impl AsRef<Path>,
        text: &str,
        json: bool,
        stage: Option<&str>,
    ) -> Result<Trace, SpecError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let refuse = |message: String| SpecError::Trace {
            file: file.clone(),
            location: None,
            message,
        };
        let is_json = json || text.trim_start().starts_with('[');
        let (cost_ns, arrival_ns) = if is_json {
            let rows = parse_json(text, &file)?;
            if let Some(want) = stage {
                return Err(refuse(format!(
                    "is a JSON trace, which has no stages, so stage {} cannot be selected \
                     (drop stage=, or use a CSV trace with a 'stage' column)",
                    quote(want)
                )));
            }
            rows
        } else {
            let rows = parse_csv(text, &file, stage)?;
            if rows.total > 0 {
                match stage {
                    None if rows.stages.len() > 1 => {
                        return Err(refuse(format!(
                            "holds {} stages ({}); choose one with stage=NAME, e.g. \
                             trace(file=...,stage={})",
                            rows.stages.len(),
                            list_stages(&rows.stages),
                            grammar::escape(&rows.stages[0])
                        )))
                    }
                    Some(want) if rows.stages.is_empty() => {
                        return Err(refuse(format!(
                            "has no 'stage' column, so there is no stage {} to select \
                             (drop stage= to replay every row)",
                            quote(want)
                        )))
                    }
                    Some(want) if !rows.stages.iter().any(|s| s == want) => {
                        return Err(refuse(format!(
                            "has no stage {} (its stages: {})",
                            quote(want),
                            list_stages(&rows.stages)
                        )))
                    }
                    _ => {}
                }
            }
            (rows.costs, rows.arrivals)
        };
        if cost_ns.is_empty() {
            return Err(refuse(
                "has no rows (a trace needs at least one task)".into(),
            ));
        }
        Ok(Trace {
            path: path.to_path_buf(),
            stage: stage.map(str::to_string),
            cost_ns: cost_ns.into(),
            arrival_ns: arrival_ns.map(Into::into),
        })
    }

    /// The file as named in the spec.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stage whose rows this trace holds, when one was selected (`stage=NAME`).
    pub fn stage(&self) -> Option<&str> {
        self.stage.as_deref()
    }

    /// The cost of each task, in file order.
    pub fn cost_ns(&self) -> &[u64] {
        &self.cost_ns
    }

    /// The arrival time of each task, when the file has them.
    pub fn arrival_ns(&self) -> Option<&[u64]> {
        self.arrival_ns.as_deref()
    }

    /// Number of tasks (rows).
    pub fn len(&self) -> usize {
        self.cost_ns.len()
    }

    /// Whether the trace has no rows (never true for a loaded trace).
    pub fn is_empty(&self) -> bool {
        self.cost_ns.is_empty()
    }

    /// Empirical mean cost.
    pub fn mean_ns(&self) -> f64 {
        self.cost_ns.iter().map(|&c| c as f64).sum::<f64>() / self.len().max(1) as f64
    }

    /// Empirical coefficient of variation (population standard deviation / mean); 0 when all costs are 0.
    pub fn cv(&self) -> f64 {
        let m = self.mean_ns();
        if m == 0.0 {
            return 0.0;
        }
        let var = self
            .cost_ns
            .iter()
            .map(|&c| (c as f64 - m).powi(2))
            .sum::<f64>()
            / self.len() as f64;
        var.sqrt() / m
    }
}

/// The largest trace file read: 256 MiB (about ten million CSV rows). Checked before reading,
/// and again while reading, so a file that grows (or lies about its size) is cut off.
pub const MAX_TRACE_BYTES: u64 = 256 << 20;

/// Read a trace file; whether it is JSON (by its extension; [`Trace::from_text_stage`] also
/// looks at its first character).
fn read_trace(path: &Path) -> Result<(String, bool), SpecError> {
    let text = read_capped(path).map_err(|message| SpecError::Trace {
        file: path.display().to_string(),
        location: None,
        message,
    })?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    Ok((text, is_json))
}

/// At most this many stage names are listed in a message.
const LISTED_STAGES: usize = 20;

/// `read, decode, batch`, escaped, cut after [`LISTED_STAGES`] names.
fn list_stages(stages: &[String]) -> String {
    let mut names: Vec<String> = stages
        .iter()
        .take(LISTED_STAGES)
        .map(|s| grammar::escape(s))
        .collect();
    if stages.len() > LISTED_STAGES {
        names.push(format!("and {} more", stages.len() - LISTED_STAGES));
    }
    names.join(", ")
}

/// Read a regular file of at most [`MAX_TRACE_BYTES`] as UTF-8. A FIFO, a device (`/dev/zero`)
/// or a directory is refused without reading from it: it could block forever or never end.
fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the file: {e}"))?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(format!(
            "is {what}; a trace must be a regular CSV or JSON file"
        ));
    }
    let too_big = |size: u64| {
        format!("is {size} bytes, more than the {MAX_TRACE_BYTES} bytes (256 MiB) a trace may have")
    };
    if meta.len() > MAX_TRACE_BYTES {
        return Err(too_big(meta.len()));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_TRACE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > MAX_TRACE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Costs, and arrivals when the trace has them.
type Rows = (Vec<u64>, Option<Vec<u64>>);

fn trace_err(file: &str, location: String, message: String) -> SpecError {
    SpecError::Trace {
        file: file.to_string(),
        location: Some(location),
        message,
    }
}

/// A non-negative number of nanoseconds, rounded.
fn ns_number(x: f64) -> Option<u64> {
    (0.0..18_446_744_073_709_551_616.0)
        .contains(&x)
        .then(|| x.round() as u64)
}

#[derive(Clone, Copy)]
enum Column {
    Duration(usize),
    Nanos(usize),
}

impl Column {
    fn read(self, fields: &[&str], what: &str) -> Result<u64, String> {
        let (idx, as_duration) = match self {
            Column::Duration(i) => (i, true),
            Column::Nanos(i) => (i, false),
        };
        let raw = fields
            .get(idx)
            .map(|f| crate::spec::unquote(f))
            .ok_or_else(|| format!("has {} fields, the header has more", fields.len()))?;
        if as_duration {
            parse_duration(raw).map_err(|e| format!("{what} {e}"))
        } else {
            raw.parse::<f64>().ok().and_then(ns_number).ok_or_else(|| {
                format!(
                    "{what}_ns {} is not a non-negative number of nanoseconds",
                    quote(raw)
                )
            })
        }
    }
}

/// The rows of a CSV trace that were kept, and what was seen of the others.
struct CsvRows {
    costs: Vec<u64>,
    arrivals: Option<Vec<u64>>,
    /// The distinct values of the `stage` column, in order of first appearance; empty when the
    /// file has no such column.
    stages: Vec<String>,
    /// Rows in the file, kept or not.
    total: usize,
}

/// Parse a CSV trace, keeping the rows of stage `want` (every row when `None`). Every row is
/// checked; arrivals are checked for order among the kept rows.
fn parse_csv(text: &str, file: &str, want: Option<&str>) -> Result<CsvRows, SpecError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let (header_line, header) = lines.next().ok_or_else(|| SpecError::Trace {
        file: file.to_string(),
        location: None,
        message: "is empty (expected a header line such as 'cost' or 'cost_ns,arrival_ns')".into(),
    })?;
    let names: Vec<String> = header
        .split(',')
        .map(|h| crate::spec::unquote(h).to_ascii_lowercase())
        .collect();
    let find = |n: &str| names.iter().position(|h| h == n);
    let cost = match (find("cost"), find("cost_ns")) {
        (Some(i), _) => Column::Duration(i),
        (None, Some(i)) => Column::Nanos(i),
        (None, None) => {
            return Err(trace_err(
                file,
                format!("line {header_line}"),
                format!(
                    "the header has no 'cost' or 'cost_ns' column (found: {})",
                    names.join(", ")
                ),
            ))
        }
    };
    let arrival = match (find("arrival"), find("arrival_ns")) {
        (Some(i), _) => Some(Column::Duration(i)),
        (None, Some(i)) => Some(Column::Nanos(i)),
        (None, None) => None,
    };
    let stage_column = find("stage");
    let mut stages: Vec<String> = Vec::new();
    let mut known: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut costs = Vec::new();
    let mut arrivals = arrival.map(|_| Vec::new());
    let mut total = 0;
    for (line, row) in lines {
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        let at = || format!("line {line}");
        total += 1;
        let keep = match stage_column {
            None => true,
            Some(i) => {
                let name = fields
                    .get(i)
                    .map(|f| crate::spec::unquote(f))
                    .ok_or_else(|| {
                        trace_err(
                            file,
                            at(),
                            format!("has {} fields, the header has more", fields.len()),
                        )
                    })?;
                if name.is_empty() {
                    return Err(trace_err(
                        file,
                        at(),
                        "has an empty stage name (every row of a trace with a 'stage' column \
                         names its stage)"
                            .into(),
                    ));
                }
                if !known.contains(name) {
                    known.insert(name.to_string());
                    stages.push(name.to_string());
                }
                want.is_none_or(|w| w == name)
            }
        };
        let c = cost
            .read(&fields, "cost")
            .map_err(|m| trace_err(file, at(), m))?;
        let a = arrival
            .map(|col| col.read(&fields, "arrival"))
            .transpose()
            .map_err(|m| trace_err(file, at(), m))?;
        if !keep {
            continue;
        }
        costs.push(c);
        if let (Some(a), Some(out)) = (a, arrivals.as_mut()) {
            check_order(out, a).map_err(|m| trace_err(file, at(), m))?;
            out.push(a);
        }
    }
    Ok(CsvRows {
        costs,
        arrivals,
        stages,
        total,
    })
}

fn parse_json(text: &str, file: &str) -> Result<Rows, SpecError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        trace_err(
            file,
            format!("line {}", e.line()),
            format!("is not valid JSON: {e}").replace('\n', " "),
        )
    })?;
    let items = value.as_array().ok_or_else(|| SpecError::Trace {
        file: file.to_string(),
        location: None,
        message: "must be a JSON array of numbers (ns) or of objects {\"cost_ns\": .., \"arrival_ns\": ..}"
            .into(),
    })?;
    let mut costs = Vec::with_capacity(items.len());
    let mut arrivals: Option<Vec<u64>> = None;
    for (i, item) in items.iter().enumerate() {
        let at = || format!("element {}", i + 1);
        let field = |obj: &serde_json::Map<String, serde_json::Value>, base: &str| {
            read_json_time(obj, base).map_err(|m| trace_err(file, at(), m))
        };
        match item {
            serde_json::Value::Number(n) => {
                let c = n.as_f64().and_then(ns_number).ok_or_else(|| {
                    trace_err(
                        file,
                        at(),
                        format!("cost {n} is not a non-negative number of ns"),
                    )
                })?;
                costs.push(c);
                if i == 0 {
                    arrivals = None;
                } else if arrivals.is_some() {
                    return Err(trace_err(
                        file,
                        at(),
                        "has no arrival but earlier elements do".into(),
                    ));
                }
            }
            serde_json::Value::Object(obj) => {
                let c = field(obj, "cost")?.ok_or_else(|| {
                    trace_err(file, at(), "has no \"cost_ns\" (or \"cost\") field".into())
                })?;
                costs.push(c);
                let a = field(obj, "arrival")?;
                match (i, a, arrivals.as_mut()) {
                    (0, Some(a), _) => arrivals = Some(vec![a]),
                    (0, None, _) | (_, None, None) => {}
                    (_, Some(a), Some(list)) => {
                        check_order(list, a).map_err(|m| trace_err(file, at(), m))?;
                        list.push(a)
                    }
                    (_, Some(_), None) => {
                        return Err(trace_err(
                            file,
                            at(),
                            "has an arrival but earlier elements do not (give all or none)".into(),
                        ))
                    }
                    (_, None, Some(_)) => {
                        return Err(trace_err(
                            file,
                            at(),
                            "has no arrival but earlier elements do (give all or none)".into(),
                        ))
                    }
                }
            }
            other => {
                return Err(trace_err(
                    file,
                    at(),
                    format!("must be a number or an object, got {other}"),
                ))
            }
        }
    }
    Ok((costs, arrivals))
}

/// Arrivals must not go back in time.
fn check_order(previous: &[u64], next: u64) -> Result<(), String> {
    match previous.last() {
        Some(&last) if next < last => Err(format!(
            "arrival {} is earlier than the previous row's {} (arrivals must be nondecreasing)",
            format_duration(next),
            format_duration(last)
        )),
        _ => Ok(()),
    }
}

/// Read `{base}_ns` (a number) or `{base}` (a duration string, or a number taken as ns).
fn read_json_time(
    obj: &serde_json::Map<String, serde_json::Value>,
    base: &str,
) -> Result<Option<u64>, String> {
    let ns_key = format!("{base}_ns");
    if let Some(v) = obj.get(&ns_key) {
        return v
            .as_f64()
            .and_then(ns_number)
            .map(Some)
            .ok_or_else(|| format!("{ns_key} {v} is not a non-negative number of nanoseconds"));
    }
    match obj.get(base) {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => parse_duration(s)
            .map(Some)
            .map_err(|e| format!("{base} {e}")),
        Some(v) => Err(format!(
            "{base} {v} must be a duration string such as \"120us\" (or use {ns_key})"
        )),
    }
}
