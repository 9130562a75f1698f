//! The memory a process really has: `schedlab run` under an address-space limit (`ulimit -v`,
//! RLIMIT_AS) or a data-size limit (`ulimit -d`, RLIMIT_DATA), set with `setrlimit` by a shell
//! in the child process only, refuses what cannot fit with exit 2 and one line naming the bytes
//! and the limit, and never aborts on a failed allocation (exit 134).

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_schedlab");

/// `schedlab ARGS` in a child whose soft limit `flag` (`-v` or `-d`, in KiB) is `kib`. The
/// policy limit is lifted so that only the resource limit binds.
fn under_ulimit(flag: &str, kib: u64, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit {flag} \"$1\" && shift && exec \"$@\""))
        .arg("sh")
        .arg(kib.to_string())
        .arg(BIN)
        .args(args)
        .env("SCHEDLAB_MEMORY_LIMIT", "1024GiB")
        .output()
        .expect("sh starts")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The command: 300 workers of `--kind memory` need 9.4 GiB of buffers.
const MEMORY_300: &[&str] = &[
    "run",
    "--strategy",
    "central",
    "--workload",
    "constant(10us)",
    "--tasks",
    "10",
    "--workers",
    "300",
    "--kind",
    "memory",
];

fn assert_refused(o: &Output, limit: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(
        err.starts_with("schedlab: --workers: this run would need about "),
        "{err}"
    );
    assert!(err.contains(limit), "{err} does not name {limit}");
    assert!(
        !err.contains("memory allocation") && !err.contains("panicked"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn an_address_space_limit_refuses_what_cannot_fit() {
    let o = under_ulimit("-v", 4_000_000, MEMORY_300);
    assert_refused(&o, "address-space limit (RLIMIT_AS, ulimit -v)");
    assert!(
        stderr(&o).contains("of 3.8 GiB less the "),
        "{}",
        stderr(&o)
    );
    // What fits still runs under the same limit.
    let o = under_ulimit(
        "-v",
        4_000_000,
        &[
            "run",
            "-s",
            "central",
            "-w",
            "constant(10us)",
            "-n",
            "100",
            "-p",
            "2",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_data_size_limit_refuses_what_cannot_fit() {
    let o = under_ulimit("-d", 2_000_000, MEMORY_300);
    assert_refused(&o, "data-size limit (RLIMIT_DATA, ulimit -d)");
}

#[test]
fn around_the_limit_runs_succeed_or_are_refused_never_aborted() {
    // Under 1 GB of address space: a few memory-kind workers fit (32 MiB buffers, 2 MiB
    // stacks, 64 MiB malloc arenas), more do not; so do a few million simulated tasks, more do
    // not. Every outcome is a success or a one-line refusal.
    let mut seen = [0usize; 2];
    let mut cases: Vec<Vec<String>> = Vec::new();
    for p in [1, 2, 4, 6, 8, 12, 16, 24] {
        cases.push(
            [
                "run",
                "-s",
                "central",
                "-w",
                "constant(10us)",
                "-n",
                "10",
                "--kind",
                "memory",
                "-p",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([p.to_string()])
            .collect(),
        );
    }
    for n in [1_000_000, 4_000_000, 8_000_000, 16_000_000, 32_000_000] {
        cases.push(
            [
                "run",
                "--engine",
                "sim",
                "-s",
                "work-stealing",
                "-w",
                "constant(10us)",
                "-p",
                "64",
                "--timeline",
                "100000",
                "-n",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([n.to_string()])
            .collect(),
        );
    }
    for flag in ["-v", "-d"] {
        for case in &cases {
            let args: Vec<&str> = case.iter().map(String::as_str).collect();
            let o = under_ulimit(flag, 1_000_000, &args);
            let err = stderr(&o);
            match o.status.code() {
                Some(0) => seen[0] += 1,
                Some(2) => {
                    assert_eq!(err.lines().count(), 1, "{flag} {args:?}: {err}");
                    assert!(err.contains("would need about"), "{flag} {args:?}: {err}");
                    seen[1] += 1;
                }
                other => panic!("{flag} {args:?}: exit {other:?}: {err}"),
            }
        }
    }
    assert!(seen[0] > 0 && seen[1] > 0, "{seen:?} (successes, refusals)");
}

#[test]
fn a_bad_memory_limit_setting_is_named() {
    for bad in ["lots", "0", "-1", "4GB", "1e9", ""] {
        let o = Command::new(BIN)
            .args(["run", "-s", "central", "-w", "constant(1us)", "-n", "10"])
            .env("SCHEDLAB_MEMORY_LIMIT", bad)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{bad:?}: {err}");
        assert!(
            err.starts_with("schedlab: SCHEDLAB_MEMORY_LIMIT: ") && err.contains("allowed:"),
            "{bad:?}: {err}"
        );
    }
    let o = Command::new(BIN)
        .args(["run", "-s", "central", "-w", "constant(1us)", "-n", "10"])
        .env("SCHEDLAB_MEMORY_LIMIT", "1.5GiB")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}
