//! Traces: task costs (and optionally arrival times) replayed from a CSV or JSON file.
//!
//! **CSV**: a header line, then one row per task. Columns are found by name (case-insensitive, any
//! order, other columns ignored): `cost` (a duration with a unit, e.g. `120us`) or `cost_ns` (a number
//! of nanoseconds), and optionally `arrival` (a duration) or `arrival_ns`. Blank lines and lines
//! starting with `#` are skipped. Fields are split on commas (no quoted commas), surrounding quotes are
//! removed.
//!
//! **JSON** (a `.json` file, or any file starting with `[`): an array of numbers (costs in ns), or an
//! array of objects `{"cost_ns": 120000, "arrival_ns": 5000}` (`cost`/`arrival` as duration strings
//! are accepted too). Either every object has an arrival or none does.
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
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = read_capped(path).map_err(|message| SpecError::Trace {
            file: file.clone(),
            location: None,
            message,
        })?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        Trace::from_text(path, &text, is_json)
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
        let path = path.as_ref();
        let file = path.display().to_string();
        let is_json = json || text.trim_start().starts_with('[');
        let (cost_ns, arrival_ns) = if is_json {
            parse_json(text, &file)?
        } else {
            parse_csv(text, &file)?
        };
        if cost_ns.is_empty() {
            return Err(SpecError::Trace {
                file,
                location: None,
                message: "has no rows (a trace needs at least one task)".into(),
            });
        }
        Ok(Trace {
            path: path.to_path_buf(),
            cost_ns: cost_ns.into(),
            arrival_ns: arrival_ns.map(Into::into),
        })
    }

    /// The file as named in the spec.
    pub fn path(&self) -> &Path {
        &self.path
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

fn parse_csv(text: &str, file: &str) -> Result<Rows, SpecError> {
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
    let mut costs = Vec::new();
    let mut arrivals = arrival.map(|_| Vec::new());
    for (line, row) in lines {
        let fields: Vec<&str> = row.split(',').map(str::trim).collect();
        let at = || format!("line {line}");
        costs.push(
            cost.read(&fields, "cost")
                .map_err(|m| trace_err(file, at(), m))?,
        );
        if let (Some(col), Some(out)) = (arrival, arrivals.as_mut()) {
            let a = col
                .read(&fields, "arrival")
                .map_err(|m| trace_err(file, at(), m))?;
            check_order(out, a).map_err(|m| trace_err(file, at(), m))?;
            out.push(a);
        }
    }
    Ok((costs, arrivals))
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
