//! Suites end to end: expansion and seeds, reproducing commands, bad suite files, kill and resume,
//! shards and merge, CSV against JSONL, closed pipes and full disks. Simulator runs keep these
//! exact and fast; the kill test uses sleeping tasks on threads so that there is time to kill.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use experiments::suite::{run_seed, stable_hash, Suite};
use reports::results::{read_runs, RunRow};

const BIN: &str = env!("CARGO_BIN_EXE_schedlab");

fn schedlab(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the schedlab binary runs")
}

/// A fresh, empty temporary directory for one test, removed when the test ends.
struct TmpDir(PathBuf);

impl std::ops::Deref for TmpDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmp(name: &str) -> TmpDir {
    let d = std::env::temp_dir().join(format!("schedlab-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rows(dir: &Path) -> Vec<RunRow> {
    let (rows, bad) = read_runs(&dir.join("runs.jsonl")).unwrap();
    assert!(bad.is_empty(), "bad lines in {}", dir.display());
    rows
}

/// A small simulator suite: 3 strategies × 2 workloads × 2 worker counts × 3 repetitions.
const SIM_SUITE: &str = r#"
name = "simtest"
question = "Does the machinery work?"
seed = 11
repetitions = 3
engine = "sim"

[[matrix]]
name = "a"
strategies = ["block", "central(chunk=2)", "work-stealing"]
workloads = ["lognormal(mean=100us,sigma=1.5)", "gamma(mean=100us,k=0.5)"]
workers = [4, 16]
tasks = [2000]

[[matrix]]
name = "b"
repetitions = 2
strategies = ["spt", "lpt"]
workloads = ["exponential(mean=50us)"]
workers = [3]
tasks = [500]
estimate_error = [0.0, 0.5]
arrivals = ["closed", "poisson(rate=50000/s)"]
"#;

#[test]
fn expansion_counts_and_seeds() {
    let suite = Suite::parse(SIM_SUITE, "simtest.toml").unwrap();
    let runs: Vec<_> = suite.runs().collect();
    let a = 3 * 2 * 2 * 3;
    let b = 2 * 2 * 2 * 2; // strategies × estimate errors × arrivals × 2 repetitions
    assert_eq!(suite.run_count(), a + b);
    assert_eq!(runs.len(), a + b);
    assert_eq!(suite.size.runs, (a + b) as u128, "counted from the axes");
    assert_eq!(
        runs.iter().filter(|r| r.matrix == "a").count(),
        a,
        "matrix a"
    );
    // Indices are positions.
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.index, i);
        assert_eq!(r.cell, r.coords.key());
        assert_eq!(r.seed, run_seed(11, &r.coords, r.repetition));
        assert_eq!(r.args.seed, r.seed);
        assert!(r.command.contains(&format!("--seed {}", r.seed)));
        // Repetition 0 keeps a timeline for Gantt charts, the others do not.
        assert_eq!(r.args.timeline > 0, r.repetition == 0, "{}", r.command);
    }
    // Every (matrix, cell, repetition) is unique; every cell has its matrix's repetitions.
    let mut per_cell: HashMap<(String, String), Vec<u32>> = HashMap::new();
    for r in &runs {
        per_cell
            .entry((r.matrix.clone(), r.cell.clone()))
            .or_default()
            .push(r.repetition);
    }
    assert_eq!(per_cell.len(), 12 + 8);
    for ((m, _), reps) in &per_cell {
        let want: Vec<u32> = (0..if m == "a" { 3 } else { 2 }).collect();
        assert_eq!(reps, &want);
    }
    // Seeds: the same for all strategies and worker counts of one workload and repetition
    // (paired comparisons), different across repetitions and workloads.
    let seed_of = |m: &str, strategy: &str, workload: &str, p: usize, rep: u32| {
        runs.iter()
            .find(|r| {
                r.matrix == m
                    && r.coords.strategy.starts_with(strategy)
                    && r.coords.workload.starts_with(workload)
                    && r.coords.workers == p
                    && r.repetition == rep
            })
            .unwrap()
            .seed
    };
    let s0 = seed_of("a", "block", "lognormal", 4, 0);
    assert_eq!(s0, seed_of("a", "central", "lognormal", 4, 0));
    assert_eq!(s0, seed_of("a", "work-stealing", "lognormal", 16, 0));
    assert_ne!(s0, seed_of("a", "block", "lognormal", 4, 1));
    assert_ne!(s0, seed_of("a", "block", "gamma", 4, 0));
    // A different suite seed changes every run's seed.
    let other = Suite::parse(&SIM_SUITE.replace("seed = 11", "seed = 12"), "x").unwrap();
    assert!(runs.iter().zip(other.runs()).all(|(x, y)| x.seed != y.seed));
    // Stable across processes: the binary's dry run prints the same commands (and seeds).
    let dir = tmp("expansion");
    let file = write(&dir, "simtest.toml", SIM_SUITE);
    let out = schedlab(&["suite", s(&file), "--dry-run", "--out", s(&dir.join("out"))]);
    ok(&out, "dry run");
    let printed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    let planned: Vec<String> = runs.iter().map(|r| r.command.clone()).collect();
    assert_eq!(printed, planned);
    assert!(!dir.join("out").exists(), "a dry run writes nothing");
    // The hash itself is fixed: changing it would change every stored seed.
    // (Values from an independent implementation of FNV-1a + SplitMix64.)
    assert_eq!(stable_hash(b""), 0xc381_7c01_6ba4_ff30);
    assert_eq!(stable_hash(b"schedlab"), 0x5eab_1d92_543e_22f6);
}

/// Split a command line written by `shell_quote` (plain words and '...' with '\'' escapes).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ' ' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            other => {
                in_word = true;
                cur.push(other);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// `schedlab suite FILE --out OUT --no-report EXTRA...` (the report has a test of its own).
fn run_suite(file: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["suite", s(file), "--out", s(out), "--no-report"];
    args.extend_from_slice(extra);
    schedlab(&args)
}

#[test]
fn a_stored_command_reproduces_its_sim_report_exactly() {
    let dir = tmp("rerun");
    let file = write(&dir, "simtest.toml", SIM_SUITE);
    let out = dir.join("out");
    // Without --no-report, a suite ends with its report.
    let o = schedlab(&["suite", s(&file), "--out", s(&out)]);
    ok(&o, "suite");
    let err = String::from_utf8_lossy(&o.stderr);
    let index = out.join("report").join("index.html");
    assert!(index.is_file(), "no report: {err}");
    assert!(
        err.lines().last().unwrap_or("").starts_with("report: ")
            && err.contains(&format!("open {}", index.display())),
        "{err}"
    );
    assert!(out.join("report").join("a-lif.svg").is_file());
    // The report opens with its answer, before any matrix.
    let html = std::fs::read_to_string(&index).unwrap();
    let answer = html.find("<h2>Answer</h2>").expect("an answer section");
    assert!(
        answer < html.find("<h2 id=\"m0\"").unwrap(),
        "answer after the tables"
    );
    let md = std::fs::read_to_string(out.join("report").join("summary.md")).unwrap();
    assert!(md.find("## Answer").unwrap() < md.find("\n## a").unwrap_or(usize::MAX));
    let rows = rows(&out);
    assert_eq!(rows.len(), 36 + 16);
    // Every fifth row, repetition 0 (with a timeline) and later ones alike.
    for row in rows.iter().step_by(5) {
        let words = shell_words(&row.command);
        assert_eq!(&words[..2], &["schedlab", "run"], "{}", row.command);
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let rerun = schedlab(&args);
        ok(&rerun, &row.command);
        let mut v: serde_json::Value = serde_json::from_slice(&rerun.stdout).unwrap();
        let inputs = v.as_object_mut().unwrap().remove("inputs");
        assert_eq!(inputs.unwrap()["seed"], row.seed);
        let stored = serde_json::to_value(&row.report).unwrap();
        assert_eq!(v, stored, "{} differs from its stored report", row.command);
    }
    assert!(rows.iter().any(|r| r.report.timeline.is_some()));
}

#[test]
fn bad_suite_files_exit_2_naming_file_and_field_and_write_nothing() {
    let dir = tmp("bad");
    let good_matrix = "[[matrix]]\nname = \"m\"\nstrategies = [\"block\"]\nworkloads = [\"constant(10us)\"]\nworkers = [2]\ntasks = [10]\n";
    let head = "name = \"bad\"\nquestion = \"q\"\n";
    let with = |matrix_extra: &str| format!("{head}{good_matrix}{matrix_extra}");
    let replace = |from: &str, to: &str| format!("{head}{}", good_matrix.replace(from, to));
    let cases: Vec<(String, &str)> = vec![
        (
            format!("sed = 1\n{head}{good_matrix}"),
            "unknown field `sed`",
        ),
        (
            format!("question = \"q\"\n{good_matrix}"),
            "missing field `name`",
        ),
        (
            format!("name = \"a/b\"\nquestion = \"q\"\n{good_matrix}"),
            "field name",
        ),
        (
            format!("{head}repetitions = 0\n{good_matrix}"),
            "field repetitions",
        ),
        (head.to_string(), "field matrix"),
        (
            format!("{head}question2 = 1\n"),
            "unknown field `question2`",
        ),
        (with("strategy = [\"block\"]\n"), "unknown field `strategy`"),
        (
            with("[[compare]]\na = \"blok\"\nb = \"block\"\n"),
            "compare #1: field a: 'blok' matches no strategy",
        ),
        (
            with("[[compare]]\na = \"block\"\nb = \"block\"\nmetric = \"speed\"\n"),
            "compare #1: field metric: 'speed' is not a metric (allowed: makespan, p99)",
        ),
        (
            with("[[compare]]\na = \"block\"\nb = \"block\"\nmatrix = \"n\"\n"),
            "compare #1: field matrix: 'n' is not a matrix of the suite (matrices: m)",
        ),
        (replace("[\"block\"]", "[]"), "field strategies: empty"),
        (
            replace("[\"block\"]", "[\"blok\"]"),
            "field strategies: unknown strategy 'blok'",
        ),
        (
            replace("constant(10us)", "constant(10 parsecs)"),
            "field workloads",
        ),
        (replace("workers = [2]", "workers = [0]"), "field workers"),
        (
            replace("workers = [2]", "workers = [\"many\"]"),
            "field workers",
        ),
        (
            replace("workers = [2]", "workers = \"2\""),
            "field workers: invalid type",
        ),
        (replace("tasks = [10]", "tasks = [0]"), "field tasks"),
        (with("engine = \"gpu\"\n"), "field engine"),
        (with("speeds = [\"1,0\"]\n"), "field speeds"),
        (
            with("arrivals = [\"poisson(rate=-1/s)\"]\n"),
            "field arrivals",
        ),
        (with("estimate_error = [-1.0]\n"), "field estimate_error"),
        (with("pin = [\"everywhere\"]\n"), "field pin"),
        (with("topology = [\"2y4\"]\n"), "field topology"),
        (
            with("engine = \"threads\"\ncost = [\"local=1ns\"]\n"),
            "field cost",
        ),
        (
            with("engine = \"sim\"\ncost = [\"bogus=1ns\"]\n"),
            "field cost",
        ),
        (format!("{head}{good_matrix}{good_matrix}"), "field name"),
        (
            replace("[\"block\"]", "[\"weighted-rr(weights=1,2,3)\"]"),
            "field strategies",
        ),
        (
            replace("[\"block\"]", "[\"block\", \"block\"]"),
            "appears twice",
        ),
        (format!("{head}[[matrix]\n"), "line 3"),
    ];
    assert!(cases.len() >= 15);
    for (i, (text, expected)) in cases.iter().enumerate() {
        let name = format!("bad{i}.toml");
        let file = write(&dir, &name, text);
        let out = dir.join(format!("out{i}"));
        let o = run_suite(&file, &out, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(2),
            "case {i} ({expected}): {err}\n{text}"
        );
        assert_eq!(err.lines().count(), 1, "case {i}: not one line: {err}");
        assert!(
            err.contains(&name),
            "case {i}: {err:?} does not name the file"
        );
        assert!(
            err.contains(expected),
            "case {i}: {err:?} should mention {expected:?}"
        );
        assert!(o.stdout.is_empty(), "case {i}: output on stdout");
        assert!(!out.exists(), "case {i}: wrote {}", out.display());
    }
    // An unknown suite name and a bad shard are input errors too.
    let o = schedlab(&["suite", "no-such-suite"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("quick"));
    let o = schedlab(&["suite", "quick", "--shard", "4/3", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--shard"));
}

#[test]
fn every_shipped_suite_passes_a_dry_run() {
    for name in [
        "quick",
        "heterogeneity",
        "scaling",
        "estimates",
        "heterogeneous-workers",
        "queueing",
    ] {
        let o = schedlab(&["suite", name, "--dry-run"]);
        ok(&o, name);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("estimate:"), "{name}: {err}");
        assert!(String::from_utf8_lossy(&o.stdout)
            .lines()
            .all(|l| l.starts_with("schedlab run ")));
    }
}

/// Sleeping tasks on threads: about 20 ms a run, 60 runs.
const SLOW_SUITE: &str = r#"
name = "slow"
question = "Does resume run every run exactly once?"
seed = 3
repetitions = 30
engine = "threads"
kind = "sleep"

[[matrix]]
name = "m"
strategies = ["central", "block"]
workloads = ["constant(2ms)"]
workers = [2]
tasks = [20]
"#;

#[test]
fn a_killed_suite_resumes_with_every_run_exactly_once() {
    let dir = tmp("kill");
    let file = write(&dir, "slow.toml", SLOW_SUITE);
    let out = dir.join("out");
    let total = Suite::parse(SLOW_SUITE, "slow").unwrap().run_count();
    let mut child = Command::new(BIN)
        .args(["suite", s(&file), "--out", s(&out)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let jsonl = out.join("runs.jsonl");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = std::fs::read_to_string(&jsonl).map_or(0, |t| t.lines().count());
        if n >= 5 {
            break;
        }
        assert!(Instant::now() < deadline, "the suite made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = std::fs::read_to_string(&jsonl).unwrap();
    let done = before.lines().count();
    assert!(done < total, "the kill came after the suite finished");
    // A kill in the middle of a write leaves half a line: resume must drop it.
    let first = before.lines().next().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&jsonl)
        .unwrap();
    std::io::Write::write_all(&mut f, &first.as_bytes()[..first.len() / 2]).unwrap();
    drop(f);
    // Without --resume the directory is refused (exit 2), and nothing changes.
    let o = run_suite(&file, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
    let o = run_suite(&file, &out, &["--resume"]);
    ok(&o, "resume");
    let rows = rows(&out);
    assert_eq!(rows.len(), total);
    let mut ids: Vec<(String, String, u32)> = rows
        .iter()
        .map(|r| (r.matrix.clone(), r.cell.clone(), r.repetition))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "a run appears twice");
    for r in &rows {
        assert_eq!(r.report.executed, 20, "{}", r.command);
    }
    // The rows written before the kill are kept as they were.
    for (line, row) in before.lines().zip(&rows) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["cell"], row.cell.as_str());
        assert_eq!(v["repetition"], row.repetition);
    }
    // A second resume has nothing left to do.
    let o = run_suite(&file, &out, &["--resume"]);
    ok(&o, "second resume");
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains(&format!("{total} of {total} runs already done")));
    assert_eq!(read_runs(&jsonl).unwrap().0.len(), total);
}

fn without_wall(rows: &[RunRow]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap();
            v.as_object_mut().unwrap().remove("wall_ms");
            v
        })
        .collect()
}

/// The same rows in the same order, compared row by row with a short message.
fn same_rows(a: &[RunRow], b: &[RunRow], what: &str) {
    let (x, y) = (without_wall(a), without_wall(b));
    assert_eq!(x.len(), y.len(), "{what}: row counts");
    for (i, (p, q)) in x.iter().zip(&y).enumerate() {
        if p != q {
            let diff: Vec<&String> = p
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| p[k.as_str()] != q[k.as_str()])
                .collect();
            panic!(
                "{what}: row {i} differs in {diff:?}: {} vs {}",
                a[i].command, b[i].command
            );
        }
    }
}

#[test]
fn shards_merged_equal_the_whole() {
    let dir = tmp("shards");
    let file = write(&dir, "simtest.toml", SIM_SUITE);
    let whole = dir.join("whole");
    ok(&run_suite(&file, &whole, &[]), "whole");
    let mut shard_dirs = Vec::new();
    for k in 1..=3 {
        let d = dir.join(format!("shard{k}"));
        ok(
            &run_suite(&file, &d, &["--shard", &format!("{k}/3")]),
            "shard",
        );
        shard_dirs.push(d);
    }
    // A shard holds part of the suite: it draws no report, even when not told --no-report.
    let d = dir.join("shard-report");
    let o = schedlab(&["suite", s(&file), "--out", s(&d), "--shard", "2/3"]);
    ok(&o, "shard");
    assert!(!d.join("report").exists());
    assert!(String::from_utf8_lossy(&o.stderr).contains("a shard draws no report"));
    let sizes: Vec<usize> = shard_dirs.iter().map(|d| rows(d).len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), rows(&whole).len());
    assert!(sizes.iter().all(|&n| n > 0));
    let merged = dir.join("merged");
    let mut args = vec!["merge"];
    // Shards in a different order than 1, 2, 3: the merge orders rows by the suite.
    for d in [&shard_dirs[2], &shard_dirs[0], &shard_dirs[1]] {
        args.push(s(d));
    }
    args.extend(["--out", s(&merged)]);
    let o = schedlab(&args);
    ok(&o, "merge");
    assert!(String::from_utf8_lossy(&o.stderr).contains("0 missing"));
    same_rows(&rows(&merged), &rows(&whole), "merged");
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    assert_eq!(read(&merged, "summary.json"), read(&whole, "summary.json"));
    assert_eq!(read(&merged, "suite.toml"), read(&whole, "suite.toml"));
    // Two shards only: the merge says what is missing and how to finish it.
    let partial = dir.join("partial");
    let o = schedlab(&[
        "merge",
        s(&shard_dirs[0]),
        s(&shard_dirs[1]),
        "--out",
        s(&partial),
    ]);
    ok(&o, "partial merge");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{} missing", sizes[2])), "{err}");
    // ... and --resume on the merged directory finishes exactly the missing runs.
    let o = run_suite(&partial.join("suite.toml"), &partial, &["--resume"]);
    ok(&o, "finish");
    // runs.jsonl is in append order: the resumed runs come last. Compare as sets.
    let sorted = |mut r: Vec<RunRow>| {
        r.sort_by(|a, b| {
            (&a.matrix, &a.cell, a.repetition).cmp(&(&b.matrix, &b.cell, b.repetition))
        });
        r
    };
    same_rows(&sorted(rows(&partial)), &sorted(rows(&whole)), "finished");
    // Merging shards of different suites is refused.
    let other = dir.join("other");
    let other_file = write(
        &dir,
        "other.toml",
        &SIM_SUITE.replace("seed = 11", "seed = 5"),
    );
    ok(
        &run_suite(&other_file, &other, &["--shard", "1/9"]),
        "other",
    );
    let o = schedlab(&[
        "merge",
        s(&shard_dirs[0]),
        s(&other),
        "--out",
        s(&dir.join("x")),
    ]);
    assert_eq!(o.status.code(), Some(2));
}

/// A minimal RFC 4180 reader: quoted fields may hold commas, quotes ("") and newlines.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                other => field.push(other),
            }
        } else {
            match c {
                '"' => quoted = true,
                ',' => row.push(std::mem::take(&mut field)),
                '\n' => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                other => field.push(other),
            }
        }
    }
    rows
}

#[test]
fn csv_and_jsonl_agree_row_for_row() {
    let dir = tmp("csv");
    let file = write(&dir, "simtest.toml", SIM_SUITE);
    let out = dir.join("out");
    let o = run_suite(&file, &out, &[]);
    ok(&o, "suite");
    assert!(!out.join("report").exists(), "--no-report drew a report");
    assert!(String::from_utf8_lossy(&o.stderr).contains("next: schedlab report"));
    let rows = rows(&out);
    let csv = parse_csv(&std::fs::read_to_string(out.join("runs.csv")).unwrap());
    let header = &csv[0];
    assert_eq!(csv.len() - 1, rows.len());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for (line, row) in csv[1..].iter().zip(&rows) {
        assert_eq!(line.len(), header.len());
        assert_eq!(line[col("matrix")], row.matrix);
        assert_eq!(line[col("cell")], row.cell);
        assert_eq!(line[col("repetition")], row.repetition.to_string());
        assert_eq!(line[col("command")], row.command);
        assert_eq!(line[col("strategy")], row.report.strategy);
        assert_eq!(line[col("seed")], row.seed.to_string());
        assert_eq!(line[col("makespan_ns")], row.report.makespan_ns.to_string());
        assert_eq!(
            line[col("efficiency")].parse::<f64>().unwrap(),
            row.report.efficiency
        );
        assert_eq!(line[col("lif")].parse::<f64>().unwrap(), row.report.lif);
        assert_eq!(
            line[col("latency_p99_ns")],
            row.report.latency_ns.p99.to_string()
        );
        assert_eq!(
            line[col("estimate_error")],
            row.coords.estimate_error.to_string()
        );
    }
    // The summary has one entry per cell, each over its repetitions.
    let summary: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary.len(), 20);
    assert!(summary.iter().all(|c| {
        let n = c["makespan_ns"]["n"].as_u64().unwrap();
        n == if c["matrix"] == "a" { 3 } else { 2 }
    }));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["suite"], "simtest");
    assert!(meta["finished_at"].is_string());
}

#[test]
fn a_closed_pipe_and_a_full_disk_exit_cleanly() {
    // The scaling suite's dry run prints far more than a pipe buffer holds.
    let mut child = Command::new(BIN)
        .args(["suite", "scaling", "--dry-run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let full = Path::new("/dev/full");
    if full.exists() {
        for args in [
            vec!["strategies"],
            vec!["suite", "quick", "--dry-run"],
            vec![
                "run",
                "--engine",
                "sim",
                "--strategy",
                "block",
                "--workload",
                "constant(1us)",
                "--tasks",
                "10",
            ],
        ] {
            let o = Command::new(BIN)
                .args(&args)
                .stdout(std::fs::File::create(full).unwrap())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
            assert!(!err.contains("panicked"), "{args:?}: {err}");
            assert!(err.contains("No space left"), "{args:?}: {err}");
        }
        let o = schedlab(&[
            "run",
            "--engine",
            "sim",
            "--strategy",
            "block",
            "--workload",
            "constant(1us)",
            "--tasks",
            "10",
            "--output",
            "/dev/full",
        ]);
        assert_eq!(o.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&o.stderr).contains("/dev/full"));
    }
}

#[test]
fn ctrl_c_keeps_finished_runs_and_resume_completes() {
    let dir = tmp("sigint");
    let file = write(&dir, "slow.toml", SLOW_SUITE);
    let out = dir.join("out");
    let total = Suite::parse(SLOW_SUITE, "slow").unwrap().run_count();
    let mut child = Command::new(BIN)
        .args(["suite", s(&file), "--out", s(&out)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let jsonl = out.join("runs.jsonl");
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(&jsonl).map_or(0, |t| t.lines().count()) < 3 {
        assert!(Instant::now() < deadline, "the suite made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SIGINT, as Ctrl-C sends it.
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(!status.success(), "the suite finished before the interrupt");
    let kept = read_runs(&jsonl).unwrap().0.len();
    assert!(kept >= 3 && kept < total, "{kept} of {total}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert!(
        meta["finished_at"].is_null(),
        "an interrupted suite has no end time"
    );
    ok(&run_suite(&file, &out, &["--resume"]), "resume");
    let rows = rows(&out);
    assert_eq!(rows.len(), total);
    let ids: std::collections::HashSet<(String, u32)> = rows
        .iter()
        .map(|r| (r.cell.clone(), r.repetition))
        .collect();
    assert_eq!(ids.len(), total);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert!(meta["finished_at"].is_string());
}

/// A suite file of 5 strategies × `workloads` workloads × 8 worker counts × `reps`
/// repetitions on the simulator.
fn huge_suite(workloads: usize, reps: u32) -> String {
    let w: Vec<String> = (1..=workloads)
        .map(|i| format!("\"constant({i}us)\""))
        .collect();
    format!(
        "name = \"huge\"\nquestion = \"Can a suite this large eat the machine?\"\n\
         repetitions = {reps}\nengine = \"sim\"\n\n[[matrix]]\nname = \"m\"\n\
         strategies = [\"round-robin\", \"block\", \"central\", \"guided\", \"work-stealing\"]\n\
         workloads = [{}]\nworkers = [1, 2, 4, 8, 16, 32, 64, 128]\ntasks = [100]\n",
        w.join(", ")
    )
}

/// Resident memory of process `pid` at its peak so far, in KiB (Linux).
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_suite_of_forty_million_runs_is_counted_at_once_and_streamed_or_refused() {
    let dir = tmp("huge");
    let file = write(&dir, "huge.toml", &huge_suite(1000, 1000));
    // Counted from the axes, without expanding a run.
    let suite = Suite::parse(&huge_suite(1000, 1000), "huge.toml").unwrap();
    assert_eq!(suite.size.runs, 40_000_000);
    assert_eq!(suite.run_count(), 40_000_000);
    assert_eq!(suite.cell_count(), 40_000);
    // Running it would hold a row per run: refused, one line, nothing written.
    let out = dir.join("out");
    let o = Command::new(BIN)
        .args(["suite", s(&file), "--out", s(&out)])
        .env("SCHEDLAB_MEMORY_LIMIT", "4GiB")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("huge.toml: 40000000 runs would hold about ")
            && err.contains("GiB of results in memory")
            && err.contains("allowed by SCHEDLAB_MEMORY_LIMIT")
            && err.contains("--shard"),
        "{err}"
    );
    assert!(o.stdout.is_empty() && !out.exists());
    // A dry run says the count first and streams the commands: its memory does not grow with
    // the runs printed. (Stopped after 200,000 of them.)
    let mut child = Command::new(BIN)
        .args(["suite", s(&file), "--dry-run"])
        .env("SCHEDLAB_MEMORY_LIMIT", "4GiB")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut err, &mut first).unwrap();
    assert_eq!(
        first.trim_end(),
        "suite huge: 1 matrices, 40000 cells, 40000000 runs"
    );
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut peaks = Vec::new();
    for i in 0..200_000 {
        line.clear();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(line.starts_with("schedlab run --engine sim "), "{line}");
        if i % 50_000 == 0 {
            peaks.extend(peak_kib(child.id()));
        }
    }
    peaks.extend(peak_kib(child.id()));
    let _ = child.kill();
    let _ = child.wait();
    if let (Some(first), Some(last)) = (peaks.first(), peaks.last()) {
        // 40,000 cells take some 70 MiB; printing 200,000 runs adds next to nothing.
        assert!(*last < 256 * 1024, "peak {last} KiB");
        assert!(last - first < 16 * 1024, "grew from {first} to {last} KiB");
    }
}

#[test]
fn a_suite_whose_cells_cannot_fit_is_refused_before_any_is_made() {
    let dir = tmp("cells");
    let list = |f: &dyn Fn(usize) -> String| (1..=1000).map(f).collect::<Vec<_>>().join(", ");
    let text = format!(
        "name = \"cells\"\nquestion = \"q\"\n\n[[matrix]]\nname = \"m\"\n\
         strategies = [\"central\"]\nworkloads = [{}]\nworkers = [{}]\ntasks = [{}]\n",
        list(&|i| format!("\"constant({i}us)\"")),
        list(&|i| i.to_string()),
        list(&|i| i.to_string())
    );
    let file = write(&dir, "cells.toml", &text);
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["suite", s(&file)];
        args.extend_from_slice(extra);
        let o = Command::new(BIN)
            .args(&args)
            .env("SCHEDLAB_MEMORY_LIMIT", "4GiB")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("cells.toml: 1000000000 cells (matrix 'm': 1 strategies x 1000 workloads x 1000 workers x 1000 tasks x 3 repetitions)")
                && err.contains("to check")
                && err.contains("allowed by SCHEDLAB_MEMORY_LIMIT"),
            "{err}"
        );
        assert!(o.stdout.is_empty());
    }
}
