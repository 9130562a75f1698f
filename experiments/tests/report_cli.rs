//! `schedlab report` and `schedlab compare` end to end: exit codes, one-line input errors,
//! and the files a report leaves.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reports::results::{Coordinates, Layout, RunRow};

fn schedlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_schedlab"))
        .args(args)
        .output()
        .expect("the schedlab binary runs")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("schedlab-report-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A results directory of sim runs made with `schedlab run --json`: two strategies, two reps.
fn results(dir: &Path, slow: bool) {
    let mut lines = String::new();
    for strategy in ["central", "work-stealing"] {
        for rep in 0..2u32 {
            let seed = (rep + 1).to_string();
            let mut args = vec![
                "run",
                "--engine",
                "sim",
                "--workers",
                "4",
                "--tasks",
                "400",
                "--strategy",
                strategy,
                "--workload",
                "lognormal(mean=100us,sigma=1)",
                "--seed",
                &seed,
                "--json",
                "--timeline",
                "1000",
            ];
            if slow && strategy == "central" {
                args.extend(["--cost", "shared=20us"]);
            }
            let out = schedlab(&args);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: scheduler::RunReport = serde_json::from_slice(&out.stdout).unwrap();
            let coords = Coordinates {
                engine: "sim".into(),
                kind: report.kind.clone(),
                strategy: report.strategy.clone(),
                workload: report.workload.clone(),
                workers: 4,
                tasks: 400,
                speeds: String::new(),
                arrivals: "closed".into(),
                estimate_error: 0.0,
                pin: "none".into(),
                topology: String::new(),
                cost: String::new(),
            };
            let row = RunRow {
                suite: "cli".into(),
                matrix: "main".into(),
                cell: coords.key(),
                coords,
                repetition: rep,
                seed: rep as u64 + 1,
                command: args.join(" "),
                wall_ms: 1.0,
                report,
            };
            lines.push_str(&serde_json::to_string(&row).unwrap());
            lines.push('\n');
        }
    }
    std::fs::write(Layout::new(dir).runs_jsonl(), lines).unwrap();
}

#[test]
fn report_writes_the_page_and_figures() {
    let d = tmp("ok");
    results(&d, false);
    let out = d.join("out");
    let o = schedlab(&[
        "report",
        d.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "index.html",
        "summary.md",
        "main-lif.svg",
        "main-lif.png",
        "main-gantt.png",
        "main-latency-cdf.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(String::from_utf8_lossy(&o.stdout).contains("index.html"));
}

#[test]
fn bad_results_dirs_exit_2_with_one_line() {
    let d = tmp("bad");
    let missing = d.join("missing");
    for args in [
        vec!["report", missing.to_str().unwrap()],
        vec!["report", d.to_str().unwrap()],
        vec!["compare", missing.to_str().unwrap(), d.to_str().unwrap()],
    ] {
        let o = schedlab(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(o.stdout.is_empty());
    }
    // --out naming a file is bad input too.
    let ok = tmp("out-file");
    results(&ok, false);
    // A file where a results directory belongs is named as a file, not as missing.
    let file = d.join("a-file.txt");
    std::fs::write(&file, "x").unwrap();
    let mut files = vec![file.to_str().unwrap().to_string()];
    if Path::new("/etc/passwd").is_file() {
        files.push("/etc/passwd".into());
    }
    for f in &files {
        for args in [
            vec!["report", f.as_str()],
            vec!["compare", f.as_str(), d.to_str().unwrap()],
            vec!["compare", ok.to_str().unwrap(), f.as_str()],
            vec!["merge", f.as_str(), "--out", d.to_str().unwrap()],
        ] {
            let o = schedlab(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
            assert!(
                err.contains(f.as_str()) && err.contains("is a file, not a directory"),
                "{args:?}: {err}"
            );
            assert!(o.stdout.is_empty());
        }
    }
    let file = ok.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = schedlab(&[
        "report",
        ok.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--out"));
    std::fs::write(d.join("runs.jsonl"), "{\"truncated\n").unwrap();
    let o = schedlab(&["report", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("runs.jsonl") && err.contains("no readable run"),
        "{err}"
    );
    assert!(!d.join("report").exists(), "no partial output on bad input");
}

#[test]
fn compare_tells_no_change_from_a_regression() {
    let (a, b, c) = (tmp("a"), tmp("b"), tmp("c"));
    results(&a, false);
    results(&b, false);
    results(&c, true);
    let o = schedlab(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("2 no change, 0 improved, 0 regressed"),
        "{text}"
    );
    let o = schedlab(&["compare", a.to_str().unwrap(), c.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("1 no change, 0 improved, 1 regressed"),
        "{text}"
    );
    assert!(c.join("compare").join("compare.html").is_file());
}

#[test]
fn report_and_compare_end_quietly_when_their_pipe_is_closed() {
    use std::process::Stdio;
    // `schedlab compare A B | head -0`: the reader is gone before anything is written.
    let (a, b) = (tmp("pipe-a"), tmp("pipe-b"));
    results(&a, false);
    results(&b, true);
    for args in [
        vec!["compare", a.to_str().unwrap(), b.to_str().unwrap()],
        vec!["report", a.to_str().unwrap()],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_schedlab"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}
