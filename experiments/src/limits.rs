//! Input limits of `schedlab run`, checked before anything sized by the input is allocated or
//! started: memory, threads and wall-clock time.
//!
//! - **Memory**: the run's size-driven allocations (the task table, the strategy's queues, the
//!   timeline, per-worker state, work-stealing's victim lists that grow as P², `--kind memory`'s
//!   32 MiB buffer per worker) are estimated from the flags and refused above a limit: the
//!   `SCHEDLAB_MEMORY_LIMIT` environment variable (bytes, or with a `KiB`/`MiB`/`GiB` suffix),
//!   else half of this machine's memory (`MemTotal` in `/proc/meminfo`), else 8 GiB. The
//!   message says how much the request would need.
//! - **Threads**: the threads engine starts one OS thread per worker, at most [`MAX_THREADS`].
//! - **Time**: a threads run whose wall-clock time is bound to exceed [`MAX_THREADS_RUN_NS`]
//!   (24 hours) is refused; one bound to exceed [`ANNOUNCE_NS`] (10 s) is announced on stderr
//!   with its lower bound before it starts.

use workloads::{Kind, TaskSet, MEMORY_BUFFER_BYTES};

use crate::run::RunArgs;
use crate::CliError;

/// The most workers the threads engine takes (one OS thread each).
pub const MAX_THREADS: usize = 4096;

/// A threads run bound to last longer than this (24 h) is refused.
pub const MAX_THREADS_RUN_NS: f64 = 24.0 * 3600e9;

/// A threads run bound to last longer than this (10 s) is announced before it starts.
pub const ANNOUNCE_NS: f64 = 10e9;

/// Bytes per task: the task set (cost, estimate, release: 24), a queue entry in the strategy
/// (an id and an estimate: 16), the engine's claim bit and slack (8). Measured peak resident
/// memory on the sim with 10^7 tasks: 24 bytes a task (central), 40 (spt), 42 (work-stealing).
const BYTES_PER_TASK: u64 = 48;

/// Bytes per worker: speed, slot, tallies, queue handle, deque buffer, event-queue entries
/// (measured: about 470 on the sim with 2,000,000 workers).
const BYTES_PER_WORKER: u64 = 1024;

/// Bytes per timeline span kept.
const BYTES_PER_SPAN: u64 = 32;

/// The memory limit and where it comes from.
pub fn memory_limit() -> (u64, String) {
    if let Ok(text) = std::env::var("SCHEDLAB_MEMORY_LIMIT") {
        if let Some(bytes) = parse_bytes(&text) {
            return (bytes, "set by SCHEDLAB_MEMORY_LIMIT".into());
        }
    }
    if let Some(total) = mem_total() {
        return (
            total / 2,
            "half of this machine's memory; set SCHEDLAB_MEMORY_LIMIT to change it".into(),
        );
    }
    (
        8 << 30,
        "the default; set SCHEDLAB_MEMORY_LIMIT to change it".into(),
    )
}

fn parse_bytes(s: &str) -> Option<u64> {
    let t = s.trim();
    let (num, scale) = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        .iter()
        .find_map(|(suffix, scale)| t.strip_suffix(suffix).map(|n| (n.trim(), *scale)))
        .unwrap_or((t, 1));
    num.parse::<u64>().ok()?.checked_mul(scale)
}

fn mem_total() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `74.5 GiB`.
pub fn human_bytes(bytes: f64) -> String {
    let mut v = bytes;
    for unit in ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"] {
        if v < 1024.0 || unit == "EiB" {
            return if unit == "bytes" {
                format!("{v:.0} {unit}")
            } else {
                format!("{v:.1} {unit}")
            };
        }
        v /= 1024.0;
    }
    unreachable!("the loop returns at EiB")
}

/// A time for a message: `12.0 days`, `6.3e290 years`, `1.5ms`.
pub fn human_time(ns: f64) -> String {
    const DAY: f64 = 86_400e9;
    const YEAR: f64 = 365.25 * DAY;
    if !ns.is_finite() {
        "an unbounded time".into()
    } else if ns >= 1e4 * YEAR {
        format!("{:.1e} years", ns / YEAR)
    } else if ns >= YEAR {
        format!("{:.0} years", ns / YEAR)
    } else if ns >= DAY {
        format!("{:.1} days", ns / DAY)
    } else if ns >= 3600e9 {
        format!("{:.1} hours", ns / 3600e9)
    } else {
        workloads::format_ns(ns)
    }
}

/// Check the sizes in `args` before anything is allocated: thread count and memory.
pub fn check_sizes(args: &RunArgs) -> Result<(), CliError> {
    let p = args.workers;
    let threads = args.engine.trim().eq_ignore_ascii_case("threads");
    if threads && p > MAX_THREADS {
        return Err(CliError::input(
            "--workers",
            format!(
                "the threads engine starts one OS thread per worker and takes at most \
                 {MAX_THREADS}, got {p} (the sim engine takes up to {})",
                scheduler::RunSpec::MAX_WORKERS
            ),
        ));
    }
    if p > scheduler::RunSpec::MAX_WORKERS {
        return Err(CliError::input(
            "--workers",
            format!(
                "at most {} (2^21 - 1), got {p}",
                scheduler::RunSpec::MAX_WORKERS
            ),
        ));
    }
    // Everything in f64: the sizes asked for may overflow any integer.
    let n = args.tasks as f64;
    let pf = p as f64;
    let mut parts: Vec<(String, f64)> = vec![
        (
            format!("{} tasks at {BYTES_PER_TASK} bytes", args.tasks),
            n * BYTES_PER_TASK as f64,
        ),
        (
            format!("{p} workers at {BYTES_PER_WORKER} bytes"),
            pf * BYTES_PER_WORKER as f64,
        ),
    ];
    if args.timeline > 0 {
        let spans = n.min(args.timeline as f64);
        parts.push((
            format!("a timeline of {spans} spans"),
            spans * BYTES_PER_SPAN as f64,
        ));
    }
    let name = args
        .strategy
        .split('(')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if name == "work-stealing" {
        parts.push((
            format!("work-stealing's victim lists ({p} x {p} ids)"),
            pf * pf * 8.0,
        ));
    }
    if threads && Kind::parse(&args.kind).is_ok_and(|k| k == Kind::Memory) {
        parts.push((
            format!("--kind memory's buffer of 32 MiB per worker x {p}"),
            pf * MEMORY_BUFFER_BYTES as f64,
        ));
    }
    let need: f64 = parts.iter().map(|(_, b)| b).sum();
    let (limit, why) = memory_limit();
    if need <= limit as f64 {
        return Ok(());
    }
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    let flag = if parts[0].0.contains("tasks") {
        "--tasks"
    } else {
        "--workers"
    };
    let detail: Vec<String> = parts
        .iter()
        .filter(|(_, b)| *b >= need / 100.0)
        .map(|(what, b)| format!("{what}: {}", human_bytes(*b)))
        .collect();
    Err(CliError::input(
        flag,
        format!(
            "this run would need about {} of memory ({}), above the limit of {} ({why})",
            human_bytes(need),
            detail.join(", "),
            human_bytes(limit as f64)
        ),
    ))
}

/// A lower bound on the wall-clock time of a threads run of `taskset` on workers of `speeds`:
/// the last release, the total work spread perfectly over the workers, and the longest task
/// on the fastest worker.
pub fn threads_lower_bound_ns(taskset: &TaskSet, speeds: &[f64]) -> f64 {
    let total: f64 = taskset.cost_ns.iter().map(|&c| c as f64).sum();
    let speed_sum: f64 = speeds.iter().sum();
    let max_speed = speeds.iter().copied().fold(0.0, f64::max);
    let work = total / speed_sum;
    let longest = taskset.max_cost_ns() as f64 / max_speed;
    let last = taskset.last_arrival_ns() as f64;
    work.max(longest).max(last)
}

/// Refuse a threads run that cannot finish in [`MAX_THREADS_RUN_NS`] (its lower bound, see
/// [`threads_lower_bound_ns`], is past it) or one of whose tasks could take longer than that on
/// the slowest worker; announce one bound to take more than [`ANNOUNCE_NS`] on stderr.
pub fn check_duration(args: &RunArgs, taskset: &TaskSet, speeds: &[f64]) -> Result<(), CliError> {
    if !args.engine.trim().eq_ignore_ascii_case("threads") {
        return Ok(());
    }
    let bound = threads_lower_bound_ns(taskset, speeds);
    let human = human_time(bound);
    if bound.is_nan() || bound > MAX_THREADS_RUN_NS {
        return Err(CliError::input(
            "--engine",
            format!(
                "on real threads this run would take at least {human} of wall-clock time \
                 (the last release, the work over the workers' speeds, or the longest task), \
                 more than the 24h allowed; use --engine sim, or fewer, cheaper or faster tasks"
            ),
        ));
    }
    let min_speed = speeds.iter().copied().fold(f64::INFINITY, f64::min);
    let one_task = taskset.max_cost_ns() as f64 / min_speed;
    if one_task.is_nan() || one_task > MAX_THREADS_RUN_NS {
        return Err(CliError::input(
            "--speeds",
            format!(
                "on real threads one task could take up to {} of wall-clock time (the \
                 costliest task, {}, on the slowest worker, speed {min_speed:e}), more than \
                 the 24h allowed; raise the slowest speed or use --engine sim",
                human_time(one_task),
                human_time(taskset.max_cost_ns() as f64)
            ),
        ));
    }
    if bound > ANNOUNCE_NS {
        eprintln!("schedlab: note: this run will take at least {human} of wall-clock time");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse() {
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("2GiB"), Some(2 << 30));
        assert_eq!(parse_bytes("3 MiB"), Some(3 << 20));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("18446744073709551615GiB"), None);
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
    }

    #[test]
    fn huge_requests_name_the_memory_they_need() {
        for args in [
            RunArgs {
                tasks: 1_000_000_000_000,
                ..RunArgs::default()
            },
            RunArgs {
                workers: 2_000_000,
                engine: "sim".into(),
                ..RunArgs::default()
            },
        ] {
            let Err(CliError::Input(msg)) = check_sizes(&args) else {
                panic!("accepted {args:?}");
            };
            assert!(
                msg.contains("would need about") && msg.contains("limit"),
                "{msg}"
            );
        }
        assert!(check_sizes(&RunArgs::default()).is_ok());
    }
}
