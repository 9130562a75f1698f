//! Bad input, as a table: every row is one `schedlab` command line that must be refused with
//! exit 2, exactly one line on stderr naming the input and what is allowed, nothing on stdout,
//! no panic, and promptly (a watchdog kills a run that hangs and fails the row).
//!
//! The memory limit is pinned with `SCHEDLAB_MEMORY_LIMIT=4GiB` so the table does not depend on
//! the machine.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run schedlab; `None` if it had to be killed after `limit`.
fn schedlab(args: &[String], limit: Duration) -> Option<(i32, String, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_schedlab"))
        .args(args)
        .env("SCHEDLAB_MEMORY_LIMIT", "4GiB")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("schedlab starts");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let (mut out, mut err) = (String::new(), String::new());
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return Some((status.code().unwrap_or(-1), out, err));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Files {
    dir: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = std::env::temp_dir().join(format!("schedlab-bad-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Files { dir }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mkfifo(path: &Path) -> bool {
    Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// `(command line, what the message must contain)`.
fn table(files: &Files) -> Vec<(Vec<String>, &'static str)> {
    let run = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["run", "-s", "central", "-w", "constant(1us)", "-n", "100"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Later flags override earlier ones in clap only for repeated options it allows; build
        // the line so that each flag appears once.
        let mut i = 0;
        while i < extra.len() {
            let flag = extra[i];
            let value = extra.get(i + 1).copied();
            if let Some(pos) = v.iter().position(|a| a == flag) {
                if let Some(value) = value {
                    v[pos + 1] = value.to_string();
                }
            } else {
                v.push(flag.to_string());
                if let Some(value) = value {
                    v.push(value.to_string());
                }
            }
            i += 2;
        }
        v
    };
    let trace = |name: &str, body: &[u8]| format!("trace(file={})", files.write(name, body));
    let long = "x".repeat(100_000);
    let control = "central\n\u{1b}[2J(chunk=\r1)".to_string();
    let mut rows: Vec<(Vec<String>, &'static str)> = vec![
        // --workers
        (run(&["-p", "0"]), "--workers"),
        (run(&["-p", "18446744073709551615"]), "at most 4096"),
        (run(&["-p", "5000"]), "at most 4096"),
        (
            run(&["-p", "1000000000", "--engine", "sim"]),
            "at most 2097151",
        ),
        (run(&["-p", "-1"]), "unexpected argument"),
        (run(&["-p", "two"]), "invalid value"),
        // --tasks and memory
        (run(&["-n", "1000000000"]), "GiB of memory"),
        (run(&["-n", "18446744073709551615"]), "of memory"),
        (
            run(&["-n", "1000000000", "--engine", "sim"]),
            "allowed by SCHEDLAB_MEMORY_LIMIT",
        ),
        (
            run(&["-s", "work-stealing", "-p", "100000", "--engine", "sim"]),
            "victim lists",
        ),
        (
            run(&["--kind", "memory", "-p", "200"]),
            "buffers of 32 MiB (one per worker",
        ),
        (
            run(&["--timeline", "18446744073709551615", "-n", "200000000"]),
            "of memory",
        ),
        // --topology
        (
            run(&["--topology", "100000x100000", "--engine", "sim"]),
            "of memory",
        ),
        (
            run(&["--topology", "18446744073709551615x18446744073709551615"]),
            "at most 2097152",
        ),
        (run(&["--topology", "0x4"]), "NxM"),
        (run(&["--topology", "2x"]), "NxM"),
        (run(&["--topology", "axb"]), "NxM"),
        // --engine, --kind, --pin
        (run(&["--engine", "gpu"]), "allowed: threads, sim"),
        (run(&["--kind", "dance"]), "--kind"),
        (run(&["--pin", "everywhere"]), "none, cores, numa"),
        // --speeds
        (run(&["--speeds", "1e-300,1"]), "24h"),
        (run(&["--speeds", "1e-300,1", "--engine", "sim"]), "2^63"),
        (run(&["--speeds", "0,1"]), "> 0"),
        (run(&["--speeds", "1,-1"]), "> 0"),
        (run(&["--speeds", "1,1,1"]), "3 speeds given for 2 workers"),
        (run(&["--speeds", "nan,1"]), "speed profile"),
        (run(&["--speeds", "1,inf"]), "finite"),
        (run(&["--speeds", "fast"]), "speed profile"),
        (run(&["--speeds", ""]), "empty"),
        // --arrivals
        (run(&["--arrivals", "poisson(rate=1e-300/s)"]), "at least"),
        (run(&["--arrivals", "poisson(rate=0/s)"]), "> 0"),
        (run(&["--arrivals", "poisson(rate=-5/s)"]), "> 0"),
        (
            run(&["--arrivals", "poisson(rate=5/fortnight)"]),
            "per s, ms, us or ns",
        ),
        (
            run(&["--arrivals", "poisson(rate=1/s,rate=2/s)"]),
            "given twice",
        ),
        (run(&["--arrivals", "poisson"]), "missing parameter rate"),
        (run(&["--arrivals", "trace"]), "arrivals"),
        (run(&["--arrivals", "bursty"]), "unknown arrival process"),
        (
            run(&["--arrivals", "poisson(rate=1/s)", "-n", "1000000"]),
            "24h",
        ),
        // --estimate-error
        (run(&["--estimate-error", "-1"]), "estimate_error"),
        (run(&["--estimate-error", "NaN"]), "estimate_error"),
        // --cost
        (
            run(&["--engine", "sim", "--cost", "local=1ns,local=2ns"]),
            "given twice",
        ),
        (
            run(&["--engine", "sim", "--cost", "locl=1ns"]),
            "unknown key",
        ),
        (
            run(&["--engine", "sim", "--cost", "local=20"]),
            "unit is required",
        ),
        (
            run(&["--engine", "sim", "--cost", "local=-1ns"]),
            "negative",
        ),
        (
            run(&["--engine", "sim", "--cost", "local=99999999999999999999s"]),
            "too large",
        ),
        (
            run(&["--engine", "sim", "--cost", "wake=18446744073s"]),
            "2^63",
        ),
        (
            run(&["--engine", "sim", "--cost", "local=1ns,,wake=1us"]),
            "empty argument",
        ),
        (run(&["--cost", "local=1ns"]), "only the sim engine"),
        // --strategy
        (run(&["-s", "fastest"]), "unknown strategy"),
        (run(&["-s", "central(chunk=0)"]), "chunk"),
        (run(&["-s", "central(chunk=1,CHUNK=2)"]), "given twice"),
        (run(&["-s", "central(chunk=1"]), "missing ')'"),
        (run(&["-s", "central(size=2)"]), "allowed: chunk"),
        (
            run(&["-s", "work-stealing(victim=nearest)"]),
            "random, numa",
        ),
        (
            run(&["-s", "guided(min=18446744073709551616)"]),
            "whole number",
        ),
        (run(&["-s", ""]), "a name is required"),
        (run(&["-s", &control]), "strategy"),
        (run(&["-s", &long]), "more bytes"),
        // --workload
        (
            run(&[
                "-w",
                "constant(9000000s)",
                "--engine",
                "sim",
                "-n",
                "100000",
            ]),
            "2^63",
        ),
        (
            run(&[
                "-w",
                "constant(18446744073709551615ns)",
                "--engine",
                "sim",
                "-n",
                "3",
            ]),
            "2^53",
        ),
        (run(&["-w", "constant(100)"]), "duration"),
        (run(&["-w", "gamma(mean=1ms,q=2)"]), "unknown parameter 'q'"),
        (run(&["-w", "lognormal(mean=100us,sigma=-1)"]), "> 0"),
        (run(&["-w", "constant(1us,1us)"]), "constant"),
        (
            run(&["-w", "exponential(mean=1us,MEAN=2us)"]),
            "given twice",
        ),
        (
            run(&["-w", &format!("mix(1:{}", "mix(1:".repeat(100))]),
            "workload",
        ),
        (run(&["-w", &long]), "more bytes"),
        (run(&["-w", "constant(1us)\n--json"]), "--workload"),
        // trace files
        (run(&["-w", "trace(file=/dev/zero)"]), "not a regular file"),
        (
            run(&["-w", "trace(file=/nonexistent/t.csv)"]),
            "cannot read",
        ),
        (
            run(&["-w", &format!("trace(file={})", files.dir.display())]),
            "directory",
        ),
        (run(&["-w", &trace("empty.csv", b"")]), "empty"),
        (run(&["-w", &trace("header.csv", b"cost\n")]), "no rows"),
        (
            run(&["-w", &trace("nocost.csv", b"size\n1\n")]),
            "no 'cost'",
        ),
        (
            run(&["-w", &trace("badcost.csv", b"cost\n12xs\n")]),
            "line 2",
        ),
        (
            run(&["-w", &trace("negative.csv", b"cost_ns\n-5\n")]),
            "non-negative",
        ),
        (
            run(&["-w", &trace("huge.csv", b"cost_ns\n1e30\n")]),
            "non-negative",
        ),
        (
            run(&[
                "-w",
                &trace("order.csv", b"cost,arrival\n1us,5us\n1us,2us\n"),
            ]),
            "nondecreasing",
        ),
        (
            run(&["-w", &trace("binary.csv", b"cost\n\xff\xfe\n")]),
            "UTF-8",
        ),
        (run(&["-w", &trace("bad.json", b"[1, 2")]), "JSON"),
        (
            run(&["-w", &trace("obj.json", b"{\"cost_ns\": 1}")]),
            "array",
        ),
        (
            run(&[
                "-w",
                &trace(
                    "mixed.json",
                    b"[{\"cost_ns\":1,\"arrival_ns\":1},{\"cost_ns\":1}]",
                ),
            ]),
            "all or none",
        ),
        (
            run(&["-w", &trace("short.csv", b"cost\n1us\n"), "-n", "5"]),
            "has 1 rows",
        ),
        (
            run(&[
                "-w",
                &trace(
                    "late.csv",
                    b"cost_ns,arrival_ns\n1,18446744073709550000\n1,18446744073709550000\n",
                ),
                "--arrivals",
                "trace",
                "-n",
                "2",
                "--engine",
                "sim",
            ]),
            "2^63",
        ),
        (
            run(&[
                "-w",
                &trace("late2.csv", b"cost_ns,arrival_ns\n1,100000000000000000\n"),
                "--arrivals",
                "trace",
                "-n",
                "1",
            ]),
            "24h",
        ),
        (
            run(&["-w", &trace("ctl.csv", b"cost\n\x1b[31m5us\n")]),
            "line 2",
        ),
        // other subcommands
        (
            vec![
                "workload".into(),
                "constant(1us)".into(),
                "-n".into(),
                "1000000000000".into(),
            ],
            "at most",
        ),
        (
            vec!["workload".into(), "nonsense".into()],
            "unknown distribution",
        ),
    ];
    // Files where directories belong.
    let file = files.write("a-file.txt", b"x");
    for (args, needle) in [
        (vec!["report", file.as_str()], "is a file, not a directory"),
        (
            vec!["compare", file.as_str(), file.as_str()],
            "is a file, not a directory",
        ),
        (vec!["suite", "quick", "--out", file.as_str()], "--out: "),
        (
            vec!["merge", file.as_str(), "--out", "/nonexistent/x"],
            "is a file, not a directory",
        ),
    ] {
        rows.push((args.iter().map(|a| a.to_string()).collect(), needle));
    }
    // Suites too large for memory: 40,000,000 runs whose rows would not fit, 10^9 cells that
    // would not fit even to check (both counted from the axes first).
    let list =
        |n: usize, f: &dyn Fn(usize) -> String| (1..=n).map(f).collect::<Vec<_>>().join(", ");
    // `bench` and `run`: zero and u64::MAX for every numeric flag (issue 27: `bench --tasks 0`
    // ran for minutes printing per-task figures of zero tasks).
    // Small defaults, each left out where the row gives that flag.
    let bench = |extra: &[&str]| -> Vec<String> {
        let mut v = vec!["bench".to_string()];
        for (flag, value) in [("--workers", "2"), ("--reps", "1"), ("--spin-tasks", "0")] {
            if !extra.contains(&flag) {
                v.extend([flag.to_string(), value.to_string()]);
            }
        }
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let max = "18446744073709551615";
    rows.extend([
        (
            bench(&["--tasks", "0"]),
            "--tasks: must be from 1 to 100000000, got 0",
        ),
        (bench(&["--tasks", max]), "--tasks"),
        (
            bench(&["--workers", "0"]),
            "--workers: must be from 1 to 4096",
        ),
        (
            bench(&["--workers", max]),
            "--workers: must be from 1 to 4096",
        ),
        (bench(&["--reps", "0"]), "--reps: must be from 1 to 1000"),
        (bench(&["--reps", max]), "--reps"),
        (
            bench(&["--spin-tasks", max]),
            "--spin-tasks: must be at most 10000000",
        ),
        (bench(&["--sim-tasks", max]), "--sim-tasks"),
        (
            bench(&["--sim-tasks", "10", "--sim-workers", "0"]),
            "--sim-workers",
        ),
        (
            bench(&["--sim-tasks", "10", "--sim-workers", max]),
            "--sim-workers",
        ),
        (bench(&["--open-tasks", max]), "--open-tasks"),
        (bench(&["--open-load", "nan"]), "--open-load"),
        (run(&["-n", "0"]), "--tasks: must be at least 1, got 0"),
        (run(&["-n", "0", "--engine", "sim"]), "--tasks"),
    ]);
    let huge = format!(
        "name = \"huge\"\nquestion = \"q\"\nrepetitions = 1000\nengine = \"sim\"\n[[matrix]]\n\
         name = \"m\"\nstrategies = [\"round-robin\", \"block\", \"central\", \"guided\", \
         \"work-stealing\"]\nworkloads = [{}]\nworkers = [1, 2, 4, 8, 16, 32, 64, 128]\n\
         tasks = [100]\n",
        list(1000, &|i| format!("\"constant({i}us)\""))
    );
    rows.push((
        vec!["suite".into(), files.write("huge.toml", huge.as_bytes())],
        "40000000 runs would hold about",
    ));
    let cells = format!(
        "name = \"cells\"\nquestion = \"q\"\n[[matrix]]\nname = \"m\"\n\
         strategies = [\"central\"]\nworkloads = [{}]\nworkers = [{}]\ntasks = [{}]\n",
        list(1000, &|i| format!("\"constant({i}us)\"")),
        list(1000, &|i| i.to_string()),
        list(1000, &|i| i.to_string())
    );
    rows.push((
        vec![
            "suite".into(),
            files.write("cells.toml", cells.as_bytes()),
            "--dry-run".into(),
        ],
        "1000000000 cells",
    ));
    // A sparse file bigger than the trace limit: refused from its size, without reading it.
    let big = files.path("big.csv");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(workloads::MAX_TRACE_BYTES + 1).unwrap();
    rows.push((
        run(&["-w", &format!("trace(file={})", big.display())]),
        "256 MiB",
    ));
    let fifo = files.path("fifo.csv");
    if mkfifo(&fifo) {
        rows.push((
            run(&["-w", &format!("trace(file={})", fifo.display())]),
            "FIFO",
        ));
    }
    rows
}

#[test]
fn bad_input_exits_2_with_one_line_and_nothing_on_stdout() {
    let files = Files::new();
    let rows = table(&files);
    assert!(rows.len() >= 80, "{} rows", rows.len());
    let mut failures = Vec::new();
    for (args, needle) in &rows {
        let shown: Vec<String> = args.iter().map(|a| grammar::escape(a)).collect();
        let Some((code, out, err)) = schedlab(args, Duration::from_secs(60)) else {
            failures.push(format!("{shown:?}: still running after 60 s (killed)"));
            continue;
        };
        let problem = if code != 2 {
            Some(format!("exit {code}"))
        } else if !out.is_empty() {
            Some(format!("{} bytes on stdout", out.len()))
        } else if err.lines().count() != 1 || !err.ends_with('\n') {
            Some(format!("{} lines on stderr", err.lines().count()))
        } else if !err.starts_with("schedlab: ") {
            Some("no 'schedlab: ' prefix".into())
        } else if err.contains("panicked") || err.contains('\u{1b}') || err.contains('\r') {
            Some("a panic or a raw control character".into())
        } else if err.len() > 1200 {
            Some(format!("{} bytes of message", err.len()))
        } else if !err.contains(needle) {
            Some(format!("does not mention {needle:?}"))
        } else {
            None
        };
        if let Some(p) = problem {
            failures.push(format!("{shown:?}: {p}: {}", grammar::escape(&err)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
