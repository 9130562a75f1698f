//! `schedlab suite` and `schedlab merge`: run a suite into durable result files, resume it,
//! shard it, and join shard directories.
//!
//! Durability: each run's row is appended to `runs.jsonl` in one write, flushed and synced as
//! the run ends, so a suite killed at any moment loses at most the run in progress. `--resume`
//! reads the rows back (dropping a line cut short by the kill), skips every run already there,
//! and so ends with every run exactly once. `runs.csv` gets each row as well; it and
//! `summary.json` are rebuilt from `runs.jsonl` at the end (and on resume), so they agree with it.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use reports::results::{read_runs, summarize, Layout, RunRow, SuiteMeta};

use crate::limits::{human_bytes, limit_text, MemoryLimits, MemoryNeed};
use crate::output::{note, write_file};
use crate::run::RunPlan;
use crate::suite::{parse_shard, RunRef, Suite};
use crate::CliError;

/// The flags of `schedlab suite`.
#[derive(Clone, Debug, Args)]
pub struct SuiteArgs {
    /// A shipped suite (quick, heterogeneity, scaling, estimates, heterogeneous-workers,
    /// queueing) or a suite file (.toml).
    #[arg(default_value = "quick")]
    pub suite: String,
    /// Results directory (default: results/NAME, or results/NAME.shard-K-of-N with --shard;
    /// NAME is the suite's name).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Skip runs already in the results directory's runs.jsonl and finish the rest.
    #[arg(long, conflicts_with = "fresh")]
    pub resume: bool,
    /// Delete earlier results in the directory and start over.
    #[arg(long)]
    pub fresh: bool,
    /// Run only shard K of N: every N-th run, starting at run K (e.g. 2/3).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Expand and check the suite, print each run's command, run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not draw the report at the end (by default an unsharded suite writes
    /// DIR/report/index.html; `schedlab report DIR` draws it later).
    #[arg(long)]
    pub no_report: bool,
}

/// The flags of `schedlab merge`.
#[derive(Clone, Debug, Args)]
pub struct MergeArgs {
    /// Results directories of the shards of one suite.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where the merged results go.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// The current time as RFC 3339 UTC (`2026-11-25T22:13:52Z`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn this_command() -> String {
    let mut words = vec!["schedlab".to_string()];
    words.extend(
        std::env::args()
            .skip(1)
            .map(|a| crate::suite::shell_quote(&a)),
    );
    words.join(" ")
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{:.0} min {:.0} s", (s / 60.0).floor(), s % 60.0)
    } else {
        format!(
            "{:.0} h {:.0} min",
            (s / 3600.0).floor(),
            (s % 3600.0) / 60.0
        )
    }
}

fn io_err(path: &Path, e: std::io::Error) -> CliError {
    CliError::Run(anyhow::anyhow!("{}: {e}", path.display()))
}

/// What the plan will cost, said before it starts: the threads runs' lower bounds and the
/// simulated tasks, from the cells (nothing is made per run).
fn estimate(suite: &Suite, shard: Option<(usize, usize)>) -> String {
    let (mut threads, mut sim, mut ns, mut tasks) = (0usize, 0usize, 0f64, 0u128);
    for r in suite.refs(shard) {
        let c = suite.cell(r);
        match c.min_wall_ns {
            Some(w) => {
                threads += 1;
                ns += w;
            }
            None => {
                sim += 1;
                tasks += c.args.tasks as u128;
            }
        }
    }
    let mut parts = Vec::new();
    if threads > 0 {
        parts.push(format!(
            "{threads} threads run(s): at least {} (sum of their lower bounds)",
            fmt_duration(Duration::from_secs_f64((ns / 1e9).min(1e15)))
        ));
    }
    if sim > 0 {
        parts.push(format!(
            "{sim} sim run(s) of {tasks} simulated tasks in all"
        ));
    }
    parts.join("; ")
}

/// How many runs shard `k` of `n` of `total` runs holds.
fn shard_len(total: usize, shard: Option<(usize, usize)>) -> usize {
    match shard {
        Some((k, n)) if total >= k => (total - k) / n + 1,
        Some(_) => 0,
        None => total,
    }
}

/// The rows of `path` in plan order (rows outside the plan keep their place after the plan's),
/// one per run id (the first wins), and how many bad lines and duplicates were dropped.
fn load_rows(path: &Path, suite: &Suite) -> Result<(Vec<RunRow>, usize, usize), CliError> {
    if !path.exists() {
        return Ok((Vec::new(), 0, 0));
    }
    let (rows, bad) = read_runs(path).map_err(|e| io_err(path, e))?;
    let mut seen = HashSet::new();
    let mut kept = Vec::new();
    let mut dups = 0;
    for r in rows {
        if seen.insert((r.matrix.clone(), r.cell.clone(), r.repetition)) {
            kept.push(r);
        } else {
            dups += 1;
        }
    }
    sort_rows(&mut kept, suite);
    Ok((kept, bad.len(), dups))
}

/// The position of `r`'s run in `suite`, if it is one of its runs.
fn position(suite: &Suite, r: &RunRow) -> Option<usize> {
    suite.index_of(&r.matrix, &r.cell, r.repetition)
}

fn sort_rows(rows: &mut [RunRow], suite: &Suite) {
    rows.sort_by_cached_key(|r| position(suite, r).unwrap_or(usize::MAX));
}

fn jsonl(rows: &[RunRow]) -> Result<String, CliError> {
    let mut s = String::new();
    for r in rows {
        s.push_str(&serde_json::to_string(r).map_err(anyhow::Error::from)?);
        s.push('\n');
    }
    Ok(s)
}

/// Write `runs.csv` and `summary.json` from these rows.
fn write_derived(layout: &Layout, rows: &[RunRow]) -> Result<(), CliError> {
    write_file(&layout.runs_csv(), crate::csv::rows(rows).as_bytes())?;
    let summary = serde_json::to_string_pretty(&summarize(rows)).map_err(anyhow::Error::from)?;
    write_file(&layout.summary_json(), (summary + "\n").as_bytes())
}

fn write_meta(layout: &Layout, meta: &SuiteMeta) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(meta).map_err(anyhow::Error::from)?;
    write_file(&layout.meta_json(), (text + "\n").as_bytes())
}

/// Progress: an indicatif bar on a terminal, one plain line per run otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: usize,
    start: Instant,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} runs  elapsed {elapsed}  remaining ~{eta}  {wide_msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            total,
            done: 0,
            start: Instant::now(),
        }
    }

    fn finished(&mut self, what: &str) {
        self.done += 1;
        match &self.bar {
            Some(bar) => {
                bar.set_message(what.to_string());
                bar.inc(1);
            }
            None => {
                let elapsed = self.start.elapsed();
                let left = elapsed.mul_f64((self.total - self.done) as f64 / self.done as f64);
                note(&format!(
                    "[{}/{}] {} elapsed, ~{} left: {what}",
                    self.done,
                    self.total,
                    fmt_duration(elapsed),
                    fmt_duration(left)
                ));
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A run's coordinates in short: strategy, workload, P and whatever differs from the defaults.
fn label(c: &reports::results::Coordinates) -> String {
    let mut s = format!("{} {} P={}", c.strategy, c.workload, c.workers);
    for (k, v, default) in [
        ("speeds", c.speeds.as_str(), ""),
        ("arrivals", c.arrivals.as_str(), "closed"),
        ("pin", c.pin.as_str(), "none"),
        ("topology", c.topology.as_str(), ""),
        ("cost", c.cost.as_str(), ""),
    ] {
        if v != default {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    if c.estimate_error != 0.0 {
        s.push_str(&format!(" estimate_error={}", c.estimate_error));
    }
    s
}

/// `--out` (or another directory argument) must be a directory or not exist yet.
fn check_dir(flag: &str, dir: &Path) -> Result<(), CliError> {
    if dir.exists() && !dir.is_dir() {
        return Err(CliError::Input(format!(
            "{flag}: {} is a file, not a directory (give a directory; it is created if missing)",
            dir.display()
        )));
    }
    Ok(())
}

/// Write the commands of `suite`'s runs (of one shard) to standard output, one a line, as they
/// are made; a reader that goes away ends it quietly.
fn print_commands(suite: &Suite, shard: Option<(usize, usize)>) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut line = String::new();
    let written = (|| -> std::io::Result<()> {
        for r in suite.refs(shard) {
            line.clear();
            line.push_str(&suite.command(r));
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
        out.flush()
    })();
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Run(anyhow::anyhow!(
            "writing to standard output: {e}"
        ))),
    }
}

/// `schedlab suite`.
pub fn suite(args: &SuiteArgs) -> Result<(), CliError> {
    // 1. Everything is checked before anything is written: the runs are counted from the
    // axes, the cells checked against this process's memory limits, and the rows a run of the
    // suite would hold compared with them too.
    let limits = MemoryLimits::detect()?;
    let (origin, text) = crate::suite::source(&args.suite)?;
    let suite = Suite::parse_within(&text, &origin, &limits)?;
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let total = suite.run_count();
    let in_shard = shard_len(total, shard);
    let name = &suite.file.name;
    // Shards default to a directory of their own, so that several can run side by side.
    let dir = args.out.clone().unwrap_or_else(|| match shard {
        Some((k, n)) => PathBuf::from("results").join(format!("{name}.shard-{k}-of-{n}")),
        None => PathBuf::from("results").join(name),
    });
    check_dir("--out", &dir)?;
    let layout = Layout::new(&dir);
    // The rows kept for the summary, the only thing that grows with the runs.
    let held = suite.size.held_bytes * in_shard as f64 / total.max(1) as f64;
    let refused = limits.refusing(&MemoryNeed {
        resident: held,
        ..MemoryNeed::default()
    });
    let too_big = |(bytes, limit): (f64, &crate::limits::MemoryLimit)| {
        format!(
            "{origin}: {in_shard} runs{} would hold about {} of results in memory while running \
             (about {} a run, kept for the summary), above {}; run it in shards (--shard K/N, \
             see experiments/slurm/) or with fewer repetitions or values",
            match shard {
                Some((k, n)) => format!(" (shard {k}/{n})"),
                None => String::new(),
            },
            human_bytes(bytes),
            human_bytes(bytes / in_shard.max(1) as f64),
            limit_text(limit)
        )
    };
    if let (Some(r), false) = (refused, args.dry_run) {
        return Err(CliError::Input(too_big(r)));
    }
    note(&format!(
        "suite {name}: {} matrices, {} cells, {} runs{}",
        suite.matrices.len(),
        suite.cell_count(),
        total,
        match shard {
            Some((k, n)) => format!(" (shard {k}/{n}: {in_shard} runs)"),
            None => String::new(),
        }
    ));
    note(&format!("  {}", suite.file.question));
    note(&format!(
        "  estimate: {}; about {} of results held in memory",
        estimate(&suite, shard),
        human_bytes(held)
    ));
    let threads_ns: f64 = suite
        .refs(shard)
        .filter_map(|r| suite.cell(r).min_wall_ns)
        .sum();
    if threads_ns > 3600e9 && shard.is_none() {
        note(&format!(
            "  this suite needs at least {} on one machine; --shard K/N spreads it over several \
             (see experiments/slurm/)",
            fmt_duration(Duration::from_secs_f64((threads_ns / 1e9).min(1e15)))
        ));
    }
    if args.dry_run {
        print_commands(&suite, shard)?;
        if let Some(r) = refused {
            note(&format!("  a run of it would be refused: {}", too_big(r)));
        }
        note(&format!(
            "dry run: {in_shard} runs checked, nothing run or written"
        ));
        return Ok(());
    }
    let existing = layout.runs_jsonl().exists()
        && std::fs::metadata(layout.runs_jsonl()).map_or(0, |m| m.len()) > 0;
    if existing && !args.resume && !args.fresh {
        return Err(CliError::Input(format!(
            "--out: {} already holds results; add --resume to finish them or --fresh to start over",
            dir.display()
        )));
    }
    if args.resume && layout.suite_toml().exists() {
        let stored = std::fs::read_to_string(layout.suite_toml())
            .map_err(|e| io_err(&layout.suite_toml(), e))?;
        if stored != suite.text {
            return Err(CliError::Input(format!(
                "--resume: {} was made by a different suite file; use another --out or --fresh",
                layout.suite_toml().display()
            )));
        }
    }
    // 2. The directory and its fixed files.
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    if args.fresh {
        for p in [
            layout.runs_jsonl(),
            layout.runs_csv(),
            layout.summary_json(),
            layout.meta_json(),
        ] {
            if p.exists() {
                std::fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
            }
        }
    }
    write_file(&layout.suite_toml(), suite.text.as_bytes())?;
    let topo = scheduler::Topology::detect();
    // A resumed suite keeps the time it first started.
    let started_at = args
        .resume
        .then(|| std::fs::read_to_string(layout.meta_json()).ok())
        .flatten()
        .and_then(|t| serde_json::from_str::<SuiteMeta>(&t).ok())
        .map_or_else(now_rfc3339, |m| m.started_at);
    let mut meta = SuiteMeta {
        suite: name.clone(),
        question: suite.file.question.clone(),
        started_at,
        finished_at: None,
        hostname: hostname(),
        cpus: topo.cpus(),
        nodes: topo.nodes.len(),
        topology_source: topo.source.to_string(),
        version: env!("CARGO_PKG_VERSION").into(),
        command: this_command(),
    };
    write_meta(&layout, &meta)?;
    // 3. What is already done (resume), with a cut-short last line dropped.
    let (mut rows, bad, dups) = load_rows(&layout.runs_jsonl(), &suite)?;
    if bad > 0 || dups > 0 {
        note(&format!(
            "resume: dropped {bad} unreadable line(s) and {dups} duplicate row(s) from {}",
            layout.runs_jsonl().display()
        ));
        write_file(&layout.runs_jsonl(), jsonl(&rows)?.as_bytes())?;
    }
    let done: HashSet<usize> = rows.iter().filter_map(|r| position(&suite, r)).collect();
    let is_todo = |r: &RunRef| !done.contains(&r.index);
    let todo = suite.refs(shard).filter(is_todo).count();
    if args.resume {
        note(&format!(
            "resume: {} of {in_shard} runs already done, {todo} to run",
            in_shard - todo,
        ));
    }
    write_derived(&layout, &rows)?;
    // 4. Run, appending each row as its run ends.
    let path = layout.runs_jsonl();
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    // runs.csv follows along (rebuilt in suite order at the end).
    let csv_path = layout.runs_csv();
    let mut csv = OpenOptions::new()
        .append(true)
        .open(&csv_path)
        .map_err(|e| io_err(&csv_path, e))?;
    let started = Instant::now();
    let mut progress = Progress::new(todo);
    for r in suite.refs(shard).filter(is_todo) {
        let r = suite.planned(r);
        // A failing run names itself by the command that reproduces it; the rows before it
        // stay, and --resume picks up from here.
        let failed = |e: CliError| {
            let msg = match e {
                CliError::Input(m) => m,
                CliError::Run(e) => format!("{e:#}"),
            };
            CliError::Run(anyhow::anyhow!("run failed: {}: {msg}", r.command))
        };
        let plan = RunPlan::new(&r.args).map_err(failed)?;
        let t0 = Instant::now();
        let report = plan.execute().map_err(failed)?;
        let wall_ms = t0.elapsed().as_secs_f64() * 1e3;
        let what = format!(
            "{}/{} {} rep {}: efficiency {:.3}",
            name,
            r.matrix,
            label(&r.coords),
            r.repetition,
            report.efficiency
        );
        let row = RunRow {
            suite: name.clone(),
            matrix: r.matrix.clone(),
            cell: r.cell.clone(),
            coords: r.coords.clone(),
            repetition: r.repetition,
            seed: r.seed,
            command: r.command.clone(),
            wall_ms,
            report,
        };
        let mut line = serde_json::to_string(&row).map_err(anyhow::Error::from)?;
        line.push('\n');
        file.write_all(line.as_bytes())
            .and_then(|()| file.flush())
            .and_then(|()| file.sync_data())
            .map_err(|e| io_err(&path, e))?;
        csv.write_all(crate::csv::row(&row).as_bytes())
            .and_then(|()| csv.flush())
            .map_err(|e| io_err(&csv_path, e))?;
        rows.push(row);
        progress.finished(&what);
    }
    progress.finish();
    // 5. Derived files and the end time.
    sort_rows(&mut rows, &suite);
    write_derived(&layout, &rows)?;
    meta.finished_at = Some(now_rfc3339());
    write_meta(&layout, &meta)?;
    note(&format!(
        "wrote {}: {} runs ({} new) in {}",
        dir.display(),
        rows.len(),
        todo,
        fmt_duration(started.elapsed()),
    ));
    // 6. The report, from the rows just written (a shard holds part of the suite: its report
    // comes after the merge).
    if shard.is_some() {
        note(&format!(
            "a shard draws no report: after schedlab merge, run schedlab report on the merged \
             directory (or schedlab report {} for this shard alone)",
            dir.display()
        ));
    } else if args.no_report {
        note(&format!("next: schedlab report {}", dir.display()));
    } else {
        write_report(&dir, rows, meta)?;
    }
    Ok(())
}

/// Draw the report of a finished suite into `dir/report` from its rows; a failure says the
/// runs are safe and how to draw the report again.
fn write_report(dir: &Path, rows: Vec<RunRow>, meta: SuiteMeta) -> Result<(), CliError> {
    let t0 = Instant::now();
    let out = dir.join("report");
    let mut loaded = reports::suite::Suite::from_rows(dir, rows);
    loaded.meta = Some(meta);
    let r = reports::render(&loaded, &out).map_err(|e| {
        CliError::Run(anyhow::anyhow!(
            "the runs are saved in {}, but drawing the report failed: {e}; \
             retry with schedlab report {}",
            dir.display(),
            dir.display()
        ))
    })?;
    for (_, figs) in &r.figures {
        for n in figs.iter().flat_map(|f| &f.notes) {
            note(&format!("  {n}"));
        }
    }
    let n: usize = r.figures.iter().map(|(_, f)| f.len()).sum();
    note(&format!(
        "report: {n} figures, {} skipped (listed in the report), in {}; open {}",
        r.skipped.len(),
        fmt_duration(t0.elapsed()),
        r.index.display()
    ));
    Ok(())
}

/// The `suite.toml` of a results directory given to `merge`; a bad DIR is an input error.
fn read_suite_toml(l: &Layout) -> Result<String, CliError> {
    if l.dir.exists() && !l.dir.is_dir() {
        return Err(CliError::Input(format!(
            "DIR: {}: is a file, not a directory (give the results directories of a suite's shards)",
            l.dir.display()
        )));
    }
    std::fs::read_to_string(l.suite_toml()).map_err(|e| {
        CliError::Input(format!(
            "DIR: {}: {e} (not a results directory)",
            l.suite_toml().display()
        ))
    })
}

/// `schedlab merge`.
pub fn merge(args: &MergeArgs) -> Result<(), CliError> {
    check_dir("--out", &args.out)?;
    let first = Layout::new(&args.dirs[0]);
    let text = read_suite_toml(&first)?;
    for d in &args.dirs[1..] {
        let l = Layout::new(d);
        let other = read_suite_toml(&l)?;
        if other != text {
            return Err(CliError::Input(format!(
                "DIR: {} differs from {}: these are not shards of one suite",
                l.suite_toml().display(),
                first.suite_toml().display()
            )));
        }
    }
    let suite = Suite::parse(&text, &first.suite_toml().display().to_string())?;
    let out = Layout::new(&args.out);
    let is_input = args.dirs.iter().any(|d| same_dir(d, &args.out));
    if !is_input && out.runs_jsonl().exists() {
        return Err(CliError::Input(format!(
            "--out: {} already holds results; choose an empty directory",
            args.out.display()
        )));
    }
    let mut rows: Vec<RunRow> = Vec::new();
    let mut seen = HashSet::new();
    let (mut bad, mut dups) = (0, 0);
    let mut metas: Vec<SuiteMeta> = Vec::new();
    for d in &args.dirs {
        let l = Layout::new(d);
        let (r, b, du) = load_rows(&l.runs_jsonl(), &suite)?;
        bad += b;
        dups += du;
        for row in r {
            if seen.insert((row.matrix.clone(), row.cell.clone(), row.repetition)) {
                rows.push(row);
            } else {
                dups += 1;
            }
        }
        if let Some(m) = std::fs::read_to_string(l.meta_json())
            .ok()
            .and_then(|t| serde_json::from_str::<SuiteMeta>(&t).ok())
        {
            metas.push(m);
        }
    }
    sort_rows(&mut rows, &suite);
    std::fs::create_dir_all(&args.out).map_err(|e| io_err(&args.out, e))?;
    write_file(&out.suite_toml(), text.as_bytes())?;
    write_file(&out.runs_jsonl(), jsonl(&rows)?.as_bytes())?;
    write_derived(&out, &rows)?;
    let mut hosts: Vec<String> = metas.iter().map(|m| m.hostname.clone()).collect();
    hosts.sort();
    hosts.dedup();
    let meta = SuiteMeta {
        suite: suite.file.name.clone(),
        question: suite.file.question.clone(),
        started_at: metas
            .iter()
            .map(|m| m.started_at.clone())
            .min()
            .unwrap_or_else(now_rfc3339),
        finished_at: metas
            .iter()
            .map(|m| m.finished_at.clone())
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max()),
        hostname: hosts.join(","),
        cpus: metas.first().map_or(0, |m| m.cpus),
        nodes: metas.first().map_or(0, |m| m.nodes),
        topology_source: metas
            .first()
            .map_or(String::new(), |m| m.topology_source.clone()),
        version: env!("CARGO_PKG_VERSION").into(),
        command: this_command(),
    };
    write_meta(&out, &meta)?;
    let in_plan = rows
        .iter()
        .filter(|r| position(&suite, r).is_some())
        .count();
    let missing = suite.run_count() - in_plan;
    note(&format!(
        "merged {} directories into {}: {in_plan} of {} runs, {missing} missing, {dups} duplicate(s) and {bad} unreadable line(s) dropped",
        args.dirs.len(),
        args.out.display(),
        suite.run_count()
    ));
    if missing > 0 {
        note(&format!(
            "finish the missing runs with: schedlab suite {} --resume --out {}",
            out.suite_toml().display(),
            args.out.display()
        ));
    }
    Ok(())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}
