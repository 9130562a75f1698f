//! Reading a pipeline trace (`# schedlab pipeline trace v1`, `docs/traces.md`) for the
//! pipeline simulator: each stage's service times in source order.

use std::path::Path;

use crate::error::SpecError;

/// The first line of a pipeline trace of the version this crate reads.
pub const PIPELINE_TRACE_MAGIC: &str = "# schedlab pipeline trace v1";
/// The header line after it.
pub const PIPELINE_TRACE_HEADER: &str = "stage,kind,epoch,item,cost_ns";
/// The largest pipeline trace read: 1 GiB (about 30 million rows), checked before reading.
pub const MAX_PIPELINE_TRACE_BYTES: u64 = 1 << 30;

/// One stage of a recorded pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceStage {
    /// Its name.
    pub name: String,
    /// Whether it is a `cpu` stage (else `blocking`).
    pub cpu: bool,
    /// Its service times in ns, in (epoch, item) order.
    pub cost_ns: Vec<u64>,
}

/// A recorded pipeline: its stages in pipeline order (the order in which each stage's first row
/// appears: an item passes stage k − 1 before stage k, so stage k's first row comes after one of
/// stage k − 1's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineTrace {
    /// The stages, in order.
    pub stages: Vec<TraceStage>,
}

impl PipelineTrace {
    /// Read and parse `path`. Errors name the file and say what is wrong and what is expected.
    ///
    /// # Errors
    /// A missing or unreadable file, one over [`MAX_PIPELINE_TRACE_BYTES`], or any error of
    /// [`PipelineTrace::parse`], each as one line starting with the path.
    pub fn load(path: &Path) -> Result<PipelineTrace, SpecError> {
        let at = |e: String| SpecError::new(format!("{}: {e}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| at(format!("cannot read it: {e}")))?;
        if !meta.is_file() {
            return Err(at("is not a regular file".into()));
        }
        if meta.len() > MAX_PIPELINE_TRACE_BYTES {
            return Err(at(format!(
                "is {} bytes, more than the {MAX_PIPELINE_TRACE_BYTES} a pipeline trace may have",
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| at(format!("cannot read it: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| at("is not UTF-8 text: not a schedlab pipeline trace".into()))?;
        PipelineTrace::parse(&text).map_err(|e| at(e.message().to_string()))
    }

    /// Parse the text of a pipeline trace.
    ///
    /// ```
    /// use scheduler::PipelineTrace;
    /// let t = PipelineTrace::parse("# schedlab pipeline trace v1\nstage,kind,epoch,item,cost_ns\n\
    ///     read,blocking,0,1,30\nread,blocking,0,0,20\ndecode,cpu,0,0,5\n").unwrap();
    /// assert_eq!(t.stages[0].name, "read");
    /// assert_eq!(t.stages[0].cost_ns, vec![20, 30]); // in item order
    /// assert!(t.stages[1].cpu);
    /// ```
    ///
    /// # Errors
    /// One line saying what is wrong: an empty text, another format (the first line is not the
    /// magic line), another version, a header other than [`PIPELINE_TRACE_HEADER`], a row that
    /// does not parse (with its line number), a stage whose kind changes, a last line without
    /// its newline (a truncated file), or no rows.
    pub fn parse(text: &str) -> Result<PipelineTrace, SpecError> {
        let err = |m: String| Err(SpecError::new(m));
        let mut lines = text.lines();
        let Some(first) = lines.next() else {
            return err(format!(
                "is empty; expected a schedlab pipeline trace starting `{PIPELINE_TRACE_MAGIC}` \
                 (written by Pipeline::trace)"
            ));
        };
        let first = first.trim();
        if let Some(v) = first.strip_prefix("# schedlab pipeline trace ") {
            if v != "v1" {
                return err(format!(
                    "is a pipeline trace of version `{v}`; this schedlab reads v1 only"
                ));
            }
        } else {
            return err(format!(
                "is not a schedlab pipeline trace: its first line is `{}`; expected \
                 `{PIPELINE_TRACE_MAGIC}` (written by Pipeline::trace)",
                short(first)
            ));
        }
        match lines.next().map(str::trim) {
            Some(PIPELINE_TRACE_HEADER) => {}
            Some(h) => {
                return err(format!(
                    "line 2: header `{}`; expected `{PIPELINE_TRACE_HEADER}`",
                    short(h)
                ))
            }
            None => {
                return err(format!(
                    "is truncated: it ends before its header line `{PIPELINE_TRACE_HEADER}`"
                ))
            }
        }
        if !text.ends_with('\n') {
            let n = text.lines().count();
            return err(format!(
                "is truncated: line {n} ends without a newline (was the run that wrote it cut \
                 off?)"
            ));
        }
        let mut stages: Vec<Rows> = Vec::new();
        for (i, line) in lines.enumerate() {
            let no = i + 3;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 5 {
                return err(format!(
                    "line {no}: {} fields in `{}`; expected 5 ({PIPELINE_TRACE_HEADER})",
                    f.len(),
                    short(line)
                ));
            }
            let cpu = match f[1] {
                "cpu" => true,
                "blocking" => false,
                k => {
                    return err(format!(
                        "line {no}: kind `{}`; allowed: cpu, blocking",
                        short(k)
                    ))
                }
            };
            let num = |s: &str, what: &str| {
                s.parse::<u64>().map_err(|_| {
                    SpecError::new(format!(
                        "line {no}: {what} `{}` is not a whole number",
                        short(s)
                    ))
                })
            };
            let row = (
                num(f[2], "epoch")?,
                num(f[3], "item")?,
                num(f[4], "cost_ns")?,
            );
            if f[0].is_empty() {
                return err(format!("line {no}: an empty stage name"));
            }
            match stages.iter_mut().find(|s| s.0 == f[0]) {
                Some(s) if s.1 != cpu => {
                    return err(format!(
                        "line {no}: stage `{}` is {} here but {} above",
                        f[0],
                        f[1],
                        if s.1 { "cpu" } else { "blocking" }
                    ))
                }
                Some(s) => s.2.push(row),
                None => stages.push((f[0].to_string(), cpu, vec![row])),
            }
        }
        if stages.is_empty() {
            return err("has no rows (did the pipeline run an epoch with tracing on?)".into());
        }
        Ok(PipelineTrace {
            stages: stages
                .into_iter()
                .map(|(name, cpu, mut rows)| {
                    rows.sort_by_key(|r| (r.0, r.1));
                    TraceStage {
                        name,
                        cpu,
                        cost_ns: rows.into_iter().map(|r| r.2).collect(),
                    }
                })
                .collect(),
        })
    }

    /// The service times stage `k` replays for `items` items of a pipeline batching `batch`:
    /// its rows in item order (cycled when there are fewer), and whether the stage runs after
    /// the batch. A stage with fewer than half the first stage's rows when `batch > 1` is taken
    /// to run once per batch (a collate): each item then carries `1/batch` of its batch's cost,
    /// so the CPU time per item is right though the task is split in `batch` parts.
    ///
    /// ```
    /// use scheduler::PipelineTrace;
    /// let t = PipelineTrace::parse("# schedlab pipeline trace v1\nstage,kind,epoch,item,cost_ns\n\
    ///     a,cpu,0,0,10\na,cpu,0,1,20\na,cpu,0,2,30\na,cpu,0,3,40\ncollate,cpu,0,0,800\n").unwrap();
    /// assert_eq!(t.replay_costs(0, 6, 4), (vec![10, 20, 30, 40, 10, 20], false));
    /// assert_eq!(t.replay_costs(1, 4, 4), (vec![200; 4], true));
    /// ```
    pub fn replay_costs(&self, k: usize, items: usize, batch: usize) -> (Vec<u64>, bool) {
        let first = self.stages[0].cost_ns.len();
        let c = &self.stages[k].cost_ns;
        let per_batch = batch > 1 && c.len() * 2 < first;
        let v = if per_batch {
            (0..items)
                .map(|i| c[(i / batch) % c.len()] / batch as u64)
                .collect()
        } else {
            (0..items).map(|i| c[i % c.len()]).collect()
        };
        (v, per_batch)
    }

    /// The stage names, comma-separated (for messages).
    pub fn names(&self) -> String {
        self.stages
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A stage while parsing: name, whether cpu, rows of (epoch, item, cost).
type Rows = (String, bool, Vec<(u64, u64, u64)>);

/// At most 40 characters of `s`, for messages.
fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}
