//! The `schedlab` binary end to end: reports, the JSON contract, exit codes.

use std::process::{Command, Output};

fn schedlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_schedlab"))
        .args(args)
        .output()
        .expect("the schedlab binary runs")
}

/// Every field docs/json-contract.md promises in a RunReport.
const CONTRACT: &[&str] = &[
    "strategy",
    "workload",
    "engine",
    "kind",
    "workers",
    "tasks",
    "seed",
    "arrivals",
    "pin",
    "executed",
    "failed",
    "makespan_ns",
    "total_work_ns",
    "lower_bound_ns",
    "efficiency",
    "lif",
    "worker_efficiency",
    "latency_ns",
    "wait_ns",
    "steals",
    "steal_attempts",
    "overhead_ns",
    "per_worker",
    "version",
    "host",
];

fn check_report(json: &str, what: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(json.trim())
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {json}"));
    for field in CONTRACT {
        assert!(v.get(field).is_some(), "{what}: field {field} missing");
    }
    for q in ["latency_ns", "wait_ns"] {
        for k in ["mean", "p50", "p90", "p99", "p999", "max"] {
            assert!(v[q].get(k).is_some(), "{what}: {q}.{k} missing");
        }
    }
    for k in [
        "id",
        "cpu",
        "node",
        "speed",
        "busy_ns",
        "idle_ns",
        "tasks",
        "steals",
        "steal_attempts",
    ] {
        assert!(
            v["per_worker"][0].get(k).is_some(),
            "{what}: per_worker.{k} missing"
        );
    }
    for k in ["cpus", "nodes", "topology_source"] {
        assert!(v["host"].get(k).is_some(), "{what}: host.{k} missing");
    }
    v
}

#[test]
fn every_strategy_prints_a_valid_report_on_threads() {
    // The done-criterion, verbatim: 20,000 tasks of 50us on 2 workers.
    for entry in strategies::registry() {
        let spec = entry.default_spec();
        let out = schedlab(&[
            "run",
            "--strategy",
            &spec,
            "--workload",
            "constant(50us)",
            "--tasks",
            "20000",
            "--workers",
            "2",
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{spec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = check_report(&String::from_utf8_lossy(&out.stdout), &spec);
        assert_eq!(v["executed"], 20000, "{spec}");
        assert_eq!(v["failed"], 0, "{spec}");
        assert_eq!(v["engine"], "threads");
        assert_eq!(v["strategy"], spec.as_str());
        // 20,000 × 50us over 2 workers: the lower bound is exact arithmetic.
        assert_eq!(v["lower_bound_ns"], 500_000_000u64, "{spec}");
        assert_eq!(v["total_work_ns"], 1_000_000_000u64, "{spec}");
    }
}

#[test]
fn the_sim_engine_prints_the_same_contract() {
    let out = schedlab(&[
        "run",
        "--engine",
        "sim",
        "--strategy",
        "work-stealing(victim=numa)",
        "--topology",
        "2x4",
        "--workload",
        "lognormal(mean=100us,sigma=1.5)",
        "--tasks",
        "5000",
        "--workers",
        "8",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = check_report(&String::from_utf8_lossy(&out.stdout), "sim");
    assert_eq!(v["engine"], "sim");
    assert_eq!(v["executed"], 5000);
    assert_eq!(v["host"]["nodes"], 2);
}

#[test]
fn human_output_names_the_run() {
    let out = schedlab(&[
        "run",
        "--engine",
        "sim",
        "--strategy",
        "lpt",
        "--workload",
        "constant(1ms)",
        "--tasks",
        "10",
        "--workers",
        "3",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("lpt on constant(1ms)"), "{text}");
    assert!(text.contains("makespan 4ms"), "{text}");
}

#[test]
fn bad_input_exits_2_with_one_line_and_no_output() {
    let base = ["run", "--workload", "constant(50us)", "--tasks", "10"];
    let cases: &[(&[&str], &str)] = &[
        (
            &["--strategy", "nope"],
            "--strategy: unknown strategy 'nope'",
        ),
        (&["--strategy", "central(chunk=0)"], "chunk must be"),
        (
            &["--strategy", "weighted-rr(weights=1,2,3)", "--workers", "2"],
            "3 weights given for 2 workers",
        ),
        (
            &["--strategy", "spt", "--engine", "gpu"],
            "--engine: 'gpu' is not an engine",
        ),
        (&["--strategy", "spt", "--pin", "everywhere"], "--pin"),
        (
            &["--strategy", "spt", "--workers", "0"],
            "--workers: must be at least 1",
        ),
        (&["--strategy", "spt", "--topology", "2y4"], "--topology"),
        (&["--strategy", "spt", "--speeds", "1,0"], "--speeds"),
        (&["--strategy", "spt", "--kind", "think"], "--kind"),
        (
            &["--strategy", "spt", "--arrivals", "poisson(rate=-1/s)"],
            "--arrivals",
        ),
        (
            &["--strategy", "spt", "--cost", "local=1ns"],
            "--cost: only the sim engine",
        ),
        (
            &[
                "--strategy",
                "spt",
                "--engine",
                "sim",
                "--cost",
                "bogus=1ns",
            ],
            "--cost",
        ),
        (
            &["--strategy", "spt", "--estimate-error", "-1"],
            "--estimate-error",
        ),
    ];
    for (extra, expected) in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        let out = schedlab(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert_eq!(
            err.lines().count(),
            1,
            "{extra:?}: more than one line: {err}"
        );
        assert!(
            err.contains(expected),
            "{extra:?}: {err:?} should mention {expected:?}"
        );
        assert!(out.stdout.is_empty(), "{extra:?}: partial output on stdout");
    }
    let out = schedlab(&[
        "run",
        "--strategy",
        "spt",
        "--workload",
        "trace(file=/nonexistent.csv)",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.csv"));
}

#[test]
fn listings_and_help() {
    let out = schedlab(&["strategies", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for name in [
        "round-robin",
        "block",
        "central",
        "guided",
        "work-stealing",
        "spt",
        "lpt",
        "weighted-rr",
    ] {
        assert!(names.contains(&name), "{name} not listed");
    }
    let out = schedlab(&["topology", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!v["nodes"].as_array().unwrap().is_empty());
    let out = schedlab(&["run", "--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Examples:"));
    let out = schedlab(&["workload", "constant(20us)", "-n", "1000", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn no_subcommand_prints_help_and_exits_2() {
    let out = schedlab(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Usage:") && err.contains("suite"), "{err}");
}

#[test]
fn usage_errors_are_whole_with_suggestions() {
    // The missing flag is named, with the usage line.
    let out = schedlab(&["run", "--strategy", "block"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--workload"), "{err}");
    assert!(err.contains("usage: schedlab run"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty());
    // Did you mean ...?
    let out = schedlab(&["sute", "quick"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'suite'"));
    let out = schedlab(&[
        "run",
        "--strategy",
        "block",
        "--workload",
        "constant(1us)",
        "--worker",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers"));
    let out = schedlab(&[
        "run",
        "--strategy",
        "spt",
        "--workload",
        "constant(1us)",
        "--workers",
        "ten",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'ten'"));
}

#[test]
fn inputs_are_recorded_and_ignored_flags_noted() {
    let out = schedlab(&[
        "run",
        "--engine",
        "sim",
        "--kind",
        "sleep",
        "--strategy",
        "central",
        "--workload",
        "constant(10us)",
        "--tasks",
        "100",
        "--workers",
        "4",
        "--estimate-error",
        "0.5",
        "--speeds",
        "big-little",
        "--topology",
        "2x2",
        "--cost",
        "local=5ns",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let i = &v["inputs"];
    assert_eq!(i["estimate_error"], 0.5);
    assert_eq!(i["speeds"], serde_json::json!([1.0, 1.0, 0.5, 0.5]));
    assert_eq!(i["topology"]["nodes"], 2);
    assert_eq!(i["topology"]["source"], "synthetic");
    assert_eq!(i["cost"]["local_ns"], 5);
    assert_eq!(i["timing"], "tasks");
    let notes: Vec<&str> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("--kind sleep is ignored")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("--estimate-error 0.5 is ignored")),
        "{notes:?}"
    );
    // SPT, LPT and work stealing by estimated work read estimates: no note about them.
    for strategy in ["spt", "lpt", "work-stealing(steal=work)"] {
        let out = schedlab(&[
            "run",
            "--engine",
            "sim",
            "--strategy",
            strategy,
            "--workload",
            "constant(10us)",
            "--tasks",
            "100",
            "--estimate-error",
            "0.5",
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            !v["notes"].to_string().contains("--estimate-error"),
            "{strategy}: {}",
            v["notes"]
        );
    }
    // The text header carries the same inputs.
    let out = schedlab(&[
        "run",
        "--engine",
        "sim",
        "--strategy",
        "spt",
        "--workload",
        "constant(10us)",
        "--tasks",
        "100",
        "--estimate-error",
        "0.25",
        "--topology",
        "2x4",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let header = text.lines().nth(1).unwrap();
    for want in [
        "seed 1",
        "estimate error 0.25",
        "topology 2x4 (synthetic)",
        "timing tasks",
        "cost local=20ns",
    ] {
        assert!(header.contains(want), "{want:?} not in {header:?}");
    }
}

#[test]
fn many_workers_are_summarised_and_formats_and_output_files_work() {
    let out = schedlab(&[
        "run",
        "--engine",
        "sim",
        "--strategy",
        "work-stealing",
        "--workload",
        "lognormal(mean=10us,sigma=1)",
        "--tasks",
        "5000",
        "--workers",
        "200",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("200 workers (min / median / max)"), "{text}");
    assert!(text.contains("busiest five"));
    assert!(text.lines().count() < 40, "one line per worker: {text}");
    // CSV: a header and one row of the same width.
    let out = schedlab(&[
        "run",
        "--engine",
        "sim",
        "--strategy",
        "block",
        "--workload",
        "constant(10us)",
        "--tasks",
        "100",
        "--format",
        "csv",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("strategy,workload,engine"));
    assert_eq!(lines[0].split(',').count(), lines[1].split(',').count());
    // --output writes the file and nothing to stdout.
    let file = std::env::temp_dir().join(format!("schedlab-out-{}.json", std::process::id()));
    let out = schedlab(&[
        "run",
        "--engine",
        "sim",
        "--strategy",
        "block",
        "--workload",
        "constant(10us)",
        "--tasks",
        "100",
        "--format",
        "json",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(v["executed"], 100);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn bench_ends_quietly_when_its_pipe_closes() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    // `schedlab bench | head -1`: the header line is printed before the first measurement, so
    // the pipe is closed while the bench still has tables to print.
    let mut child = Command::new(env!("CARGO_BIN_EXE_schedlab"))
        .args([
            "bench",
            "--workers",
            "2",
            "--tasks",
            "20000",
            "--reps",
            "2",
            "--spin-tasks",
            "0",
            "--strategies",
            "block;central",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("schedlab bench:"), "{first}");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn one_stage_of_a_pipeline_trace_replays_in_the_simulator() {
    let dir = std::env::temp_dir().join(format!("schedlab-cli-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pipe.csv");
    // The loader's pipeline trace: three stages' rows interleaved in completion order.
    std::fs::write(
        &path,
        "# schedlab pipeline trace v1\n\
         stage,kind,epoch,item,cost_ns\n\
         read,blocking,0,0,2103345\n\
         decode,cpu,0,0,250000\n\
         read,blocking,0,1,1987000\n\
         read,blocking,0,2,2000000\n\
         decode,cpu,0,2,300000\n\
         batch,cpu,0,0,1000\n\
         decode,cpu,0,1,150000\n\
         decode,cpu,1,0,100000\n",
    )
    .unwrap();
    let file = path.display().to_string();
    let run = |workload: &str, tasks: &str| {
        schedlab(&[
            "run",
            "--engine",
            "sim",
            "--workload",
            workload,
            "--tasks",
            tasks,
            "--workers",
            "2",
            "--strategy",
            "central",
            "--json",
        ])
    };
    let spec = format!("trace(file={file},stage=decode)");
    let out = run(&spec, "4");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{stderr}");
    let v = check_report(&String::from_utf8_lossy(&out.stdout), "trace stage");
    assert_eq!(v["executed"], 4);
    assert_eq!(v["total_work_ns"], 800_000u64);
    assert!(
        v["workload"].as_str().unwrap().contains("stage=decode"),
        "{}",
        v["workload"]
    );

    // without a stage, with an unknown one, or with more tasks than the stage has rows:
    // exit 2 and one line naming what is wrong
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&path, "stage,cost_ns\nread,10\ndecode,5\n").unwrap();
    for (workload, tasks, expected) in [
        (
            format!("trace(file={file})"),
            "1",
            "holds 2 stages (read, decode)",
        ),
        (
            format!("trace(file={file},stage=resize)"),
            "1",
            "has no stage 'resize' (its stages: read, decode)",
        ),
        (
            format!("trace(file={file},stage=read)"),
            "2",
            "has 1 rows but 2 tasks",
        ),
    ] {
        let out = run(&workload, tasks);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{workload}: {stderr}");
        assert!(out.stdout.is_empty(), "{workload}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{workload}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
