//! Input limits of `schedlab run`, checked before anything sized by the input is allocated or
//! started: memory, threads and wall-clock time.
//!
//! - **Memory**: the run's size-driven allocations (the task table, the strategy's queues, the
//!   timeline, per-worker state, work-stealing's victim lists that grow as P², `--kind memory`'s
//!   32 MiB buffer per worker, and on threads each worker's stack) are estimated from the flags
//!   and refused when they exceed any of the limits in [`MemoryLimits::detect`]: the policy
//!   (`SCHEDLAB_MEMORY_LIMIT`, else half of this machine's memory), the address-space and
//!   data-size limits (`ulimit -v`, `ulimit -d`) less what the process already maps, and the
//!   cgroup's memory limit less what the cgroup already uses. The one-line message gives the
//!   bytes needed and the limit that refused them.
//! - **Threads**: the threads engine starts one OS thread per worker, at most [`MAX_THREADS`].
//! - **Time**: a threads run whose wall-clock time is bound to exceed [`MAX_THREADS_RUN_NS`]
//!   (24 hours) is refused; one bound to exceed [`ANNOUNCE_NS`] (10 s) is announced on stderr
//!   with its lower bound before it starts.

use std::path::{Path, PathBuf};

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
/// (an id and an estimate: 16), the engine's claim bit, latency records and slack. Measured
/// peak address space (`VmPeak`, `VmData`) with 10^7 tasks, release build: 32 bytes a task
/// (central, spt, lpt, guided, block on the sim), 37 (jsq), 52 (work-stealing), 59
/// (work-stealing(steal=work)), 70 (work-stealing on threads, deques grown in the workers'
/// arenas); peak resident memory is lower (24 to 59).
const BYTES_PER_TASK: u64 = 72;

/// Bytes per worker: speed, slot, tallies, queue handle, deque buffer, event-queue entries
/// (measured: about 470 on the sim with 2,000,000 workers).
const BYTES_PER_WORKER: u64 = 1024;

/// Bytes per timeline span kept: 40 in each worker's record (every worker keeps up to the cap),
/// and again when the records are merged and cut to the cap.
const BYTES_PER_SPAN: u64 = 80;

/// Address space a worker thread reserves for its stack: Rust's default 2 MiB, the guard page
/// and the thread's control block, rounded up. It is mapped, not resident, so it counts only
/// against the address-space and data-size limits.
const THREAD_STACK_BYTES: u64 = (2 << 20) + (64 << 10);

/// Address space glibc reserves for each malloc arena (`HEAP_MAX_SIZE`, 64 MiB on 64-bit); each
/// worker thread that allocates gets its own arena, up to 8 per cpu. Counted against the
/// address-space limit only: under `ulimit -v` the arenas of 16 threads take 1 GiB, and a
/// thread started after them finds no room for its stack.
const ARENA_BYTES: u64 = 64 << 20;

/// The part of a new arena glibc makes writable at once (132 KiB, rounded up).
const ARENA_COMMIT_BYTES: u64 = 256 << 10;

/// Which kind of limit a [`MemoryLimit`] is; it decides what counts against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    /// `SCHEDLAB_MEMORY_LIMIT`, half of this machine's memory, or 8 GiB: resident memory.
    Policy,
    /// `RLIMIT_AS` (`ulimit -v`): every mapping counts, stacks and arenas included.
    AddressSpace,
    /// `RLIMIT_DATA` (`ulimit -d`): private writable mappings, thread stacks included.
    Data,
    /// A cgroup's memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`): resident memory.
    Cgroup,
}

/// One limit on the memory a run may still use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryLimit {
    /// Bytes the process may still use under this limit.
    pub bytes: u64,
    /// What counts against it.
    pub kind: LimitKind,
    /// Where it comes from, for messages ("the address-space limit (RLIMIT_AS, ulimit -v) of
    /// 3.8 GiB less the 48.0 MiB already mapped").
    pub source: String,
}

/// Every memory limit that applies to this process now; a run must fit under all of them.
#[derive(Clone, Debug)]
pub struct MemoryLimits {
    /// The policy limit first, then whichever of the others exist.
    pub all: Vec<MemoryLimit>,
}

/// What a run needs: resident bytes, and address space reserved on top (thread stacks, malloc
/// arenas) that counts only against the address-space and data-size limits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MemoryNeed {
    /// Bytes the run will write to (task table, queues, buffers).
    pub resident: f64,
    /// Bytes of address space reserved for thread stacks.
    pub stacks: f64,
    /// Bytes of address space glibc reserves for malloc arenas.
    pub arenas: f64,
}

impl MemoryNeed {
    /// The bytes that count against a limit of `kind`.
    pub fn against(&self, kind: LimitKind) -> f64 {
        match kind {
            LimitKind::Policy | LimitKind::Cgroup => self.resident,
            LimitKind::Data => self.resident + self.stacks,
            LimitKind::AddressSpace => self.resident + self.stacks + self.arenas,
        }
    }
}

impl MemoryLimits {
    /// The limits of this process now: `SCHEDLAB_MEMORY_LIMIT` (bytes, or with a
    /// `KiB`/`MiB`/`GiB` suffix) or else half of this machine's memory (`MemTotal`), or else
    /// 8 GiB; `RLIMIT_AS` less the process's `VmSize` and `RLIMIT_DATA` less its `VmData`
    /// (`/proc/self/status`) where set; and the memory limit of each cgroup from the process's
    /// own up to the root, less its usage (reclaimable page cache, `inactive_file`, not counted),
    /// where set. A `SCHEDLAB_MEMORY_LIMIT` that is not a size is bad input.
    pub fn detect() -> Result<MemoryLimits, CliError> {
        let mut all = vec![policy_limit()?];
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| status_kib(&status, name).map(|k| k.saturating_mul(1024));
        if let Some(max) = rlimit(Resource::AddressSpace) {
            all.push(rlimit_limit(
                LimitKind::AddressSpace,
                "the address-space limit (RLIMIT_AS, ulimit -v)",
                max,
                field("VmSize:"),
                "already mapped",
            ));
        }
        if let Some(max) = rlimit(Resource::Data) {
            all.push(rlimit_limit(
                LimitKind::Data,
                "the data-size limit (RLIMIT_DATA, ulimit -d)",
                max,
                field("VmData:"),
                "already in use",
            ));
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        all.extend(cgroup_limits(&mountinfo, &cgroup));
        Ok(MemoryLimits { all })
    }

    /// The limit with the fewest bytes left.
    pub fn smallest(&self) -> &MemoryLimit {
        self.all
            .iter()
            .min_by_key(|l| l.bytes)
            .expect("the policy limit is always there")
    }

    /// The first limit (fewest bytes left first) that `need` exceeds, with the bytes that
    /// count against it; `None` when it fits under all of them.
    pub fn refusing(&self, need: &MemoryNeed) -> Option<(f64, &MemoryLimit)> {
        let mut sorted: Vec<&MemoryLimit> = self.all.iter().collect();
        sorted.sort_by_key(|l| l.bytes);
        sorted.into_iter().find_map(|l| {
            let n = need.against(l.kind);
            (n.is_nan() || n > l.bytes as f64).then_some((n, l))
        })
    }
}

/// A limit's text for a message: `the 3.2 GiB allowed by <source>`.
pub fn limit_text(l: &MemoryLimit) -> String {
    format!(
        "the {} allowed by {}",
        human_bytes(l.bytes as f64),
        l.source
    )
}

fn policy_limit() -> Result<MemoryLimit, CliError> {
    if let Some(text) = std::env::var_os("SCHEDLAB_MEMORY_LIMIT") {
        let text = text.to_string_lossy();
        return match parse_bytes(&text) {
            Some(bytes) if bytes > 0 => Ok(MemoryLimit {
                bytes,
                kind: LimitKind::Policy,
                source: "SCHEDLAB_MEMORY_LIMIT".into(),
            }),
            _ => Err(CliError::Input(format!(
                "SCHEDLAB_MEMORY_LIMIT: {} is not a memory size (allowed: a number of bytes \
                 above 0, or with a KiB, MiB, GiB or TiB suffix, e.g. 4GiB or 1.5GiB)",
                grammar::quote(&grammar::one_line(&text, 100))
            ))),
        };
    }
    Ok(match mem_total() {
        Some(total) => MemoryLimit {
            bytes: total / 2,
            kind: LimitKind::Policy,
            source: format!(
                "the default, half of this machine's {} (set SCHEDLAB_MEMORY_LIMIT to change it)",
                human_bytes(total as f64)
            ),
        },
        None => MemoryLimit {
            bytes: 8 << 30,
            kind: LimitKind::Policy,
            source: "the default (set SCHEDLAB_MEMORY_LIMIT to change it)".into(),
        },
    })
}

fn rlimit_limit(
    kind: LimitKind,
    what: &str,
    max: u64,
    used: Option<u64>,
    used_what: &str,
) -> MemoryLimit {
    let used = used.unwrap_or(0);
    MemoryLimit {
        bytes: max.saturating_sub(used),
        kind,
        source: format!(
            "{what} of {} less the {} {used_what}",
            human_bytes(max as f64),
            human_bytes(used as f64)
        ),
    }
}

/// `VmSize:` and the like from `/proc/self/status`, in KiB.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A resource limit of this process.
#[derive(Clone, Copy, Debug)]
enum Resource {
    AddressSpace,
    Data,
}

/// The soft limit on `r`, `None` when unlimited or unknown.
#[cfg(unix)]
fn rlimit(r: Resource) -> Option<u64> {
    let resource = match r {
        Resource::AddressSpace => libc::RLIMIT_AS,
        Resource::Data => libc::RLIMIT_DATA,
    };
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid, exclusive pointer.
    let ok = unsafe { libc::getrlimit(resource, &mut lim) } == 0;
    // rlim_t is u64 on Linux, not on every unix.
    #[allow(clippy::useless_conversion)]
    let cur = u64::try_from(lim.rlim_cur).unwrap_or(u64::MAX);
    (ok && lim.rlim_cur != libc::RLIM_INFINITY).then_some(cur)
}

#[cfg(not(unix))]
fn rlimit(_: Resource) -> Option<u64> {
    None
}

/// Values at or above this (v1's "no limit" is 2^63 rounded down to a page) mean no limit.
const NO_CGROUP_LIMIT: u64 = 1 << 60;

/// The memory limit of every cgroup from this process's own up to the root of its hierarchy,
/// less that cgroup's usage, from `/proc/self/mountinfo` and `/proc/self/cgroup` (given as
/// text) and the cgroup files they lead to: v2 `memory.max` and `memory.current`, v1
/// `memory.limit_in_bytes` and `memory.usage_in_bytes`; `inactive_file` of `memory.stat` (page
/// cache the kernel reclaims first) is not counted as used.
pub fn cgroup_limits(mountinfo: &str, proc_cgroup: &str) -> Vec<MemoryLimit> {
    let mut out = Vec::new();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let v2 = controllers.is_empty();
        if !v2 && !controllers.split(',').any(|c| c == "memory") {
            continue;
        }
        let Some((root, mount)) = cgroup_mount(mountinfo, v2) else {
            continue;
        };
        // The cgroup's path below the mounted part of its hierarchy.
        let rel = path.strip_prefix(root.as_str()).unwrap_or(path);
        let mut dir = mount.clone();
        for c in rel.split('/').filter(|c| !c.is_empty() && *c != "..") {
            dir.push(c);
        }
        let (max_file, used_file) = if v2 {
            ("memory.max", "memory.current")
        } else {
            ("memory.limit_in_bytes", "memory.usage_in_bytes")
        };
        // From the process's own cgroup up to the mount point.
        let mut at = Some(dir.as_path());
        while let Some(d) = at {
            if let Some(limit) = read_u64(&d.join(max_file)).filter(|&m| m < NO_CGROUP_LIMIT) {
                let used = read_u64(&d.join(used_file)).unwrap_or(0);
                let cache = std::fs::read_to_string(d.join("memory.stat"))
                    .ok()
                    .and_then(|s| {
                        stat_value(
                            &s,
                            if v2 {
                                "inactive_file"
                            } else {
                                "total_inactive_file"
                            },
                        )
                    })
                    .unwrap_or(0);
                let used = used.saturating_sub(cache);
                out.push(MemoryLimit {
                    bytes: limit.saturating_sub(used),
                    kind: LimitKind::Cgroup,
                    source: format!(
                        "the cgroup memory limit ({}) of {} less the {} the cgroup already uses",
                        d.join(max_file).display(),
                        human_bytes(limit as f64),
                        human_bytes(used as f64)
                    ),
                });
            }
            if d == mount {
                break;
            }
            at = d.parent();
        }
    }
    out
}

/// The root (within its hierarchy) and mount point of the cgroup v2 hierarchy, or of the v1
/// hierarchy holding the memory controller, from `/proc/self/mountinfo`.
fn cgroup_mount(mountinfo: &str, v2: bool) -> Option<(String, PathBuf)> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let fields: Vec<&str> = before.split(' ').collect();
        let mut after = after.split(' ');
        let fstype = after.next()?;
        let _source = after.next()?;
        let options = after.next().unwrap_or("");
        let wanted = if v2 {
            fstype == "cgroup2"
        } else {
            fstype == "cgroup" && options.split(',').any(|o| o == "memory")
        };
        (wanted && fields.len() >= 5).then(|| {
            (
                unescape_mount(fields[3]),
                PathBuf::from(unescape_mount(fields[4])),
            )
        })
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal `\040` and the like.
fn unescape_mount(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if let Ok(v) = u8::from_str_radix(&digits, 8) {
                out.push(char::from(v));
                for _ in 0..3 {
                    chars.next();
                }
                continue;
            }
        }
        out.push(c);
    }
    out
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn stat_value(stat: &str, key: &str) -> Option<u64> {
    stat.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// `4GiB`, `1.5 GiB`, `512MiB`, `1048576`: bytes, or a number with a `KiB`, `MiB`, `GiB` or
/// `TiB` suffix (whole bytes only without one).
fn parse_bytes(s: &str) -> Option<u64> {
    let t = s.trim();
    let scaled = [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ]
    .iter()
    .find_map(|(suffix, scale)| t.strip_suffix(suffix).map(|n| (n.trim(), *scale)));
    match scaled {
        None => t.parse::<u64>().ok(),
        Some((num, scale)) => {
            if let Ok(n) = num.parse::<u64>() {
                return n.checked_mul(scale);
            }
            let v: f64 = num.parse().ok()?;
            let bytes = (v * scale as f64).round();
            (v.is_finite()
                && v >= 0.0
                && num.chars().all(|c| c.is_ascii_digit() || c == '.')
                && bytes < u64::MAX as f64)
                .then_some(bytes as u64)
        }
    }
}

fn mem_total() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// How many cpus glibc sizes its arena count by (online cpus), at least 1.
fn online_cpus() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf reads a system value; it has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        if n > 0 {
            return n as u64;
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
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

/// Check the sizes in `args` before anything is allocated: thread count, and memory against
/// this process's limits now ([`MemoryLimits::detect`]).
pub fn check_sizes(args: &RunArgs) -> Result<(), CliError> {
    check_threads(args)?;
    check_sizes_within(args, &MemoryLimits::detect()?)
}

fn check_threads(args: &RunArgs) -> Result<(), CliError> {
    let p = args.workers;
    if is_threads(args) && p > MAX_THREADS {
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
    Ok(())
}

fn is_threads(args: &RunArgs) -> bool {
    args.engine.trim().eq_ignore_ascii_case("threads")
}

/// The memory a run of `args` needs, part by part (`(what, bytes)`, largest first), and in all.
pub fn memory_need(args: &RunArgs) -> (Vec<(String, f64)>, MemoryNeed) {
    let p = args.workers;
    let threads = is_threads(args);
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
        // Each worker keeps up to the cap until the records are merged and cut.
        let spans = n.min(args.timeline as f64 * pf.max(1.0));
        parts.push((
            format!("a timeline of up to {spans} spans while recording"),
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
    let memory_kind = threads && Kind::parse(&args.kind).is_ok_and(|k| k == Kind::Memory);
    if memory_kind {
        // One buffer per worker, and one more that calibrates the kind on the main thread.
        parts.push((
            format!(
                "--kind memory's {} buffers of 32 MiB (one per worker, one to calibrate)",
                p.saturating_add(1)
            ),
            (pf + 1.0) * MEMORY_BUFFER_BYTES as f64,
        ));
    }
    let resident: f64 = parts.iter().map(|(_, b)| b).sum();
    let mut need = MemoryNeed {
        resident,
        ..MemoryNeed::default()
    };
    if threads {
        need.stacks = pf * THREAD_STACK_BYTES as f64;
        parts.push((
            format!("{p} thread stacks of 2 MiB (address space)"),
            need.stacks,
        ));
        // One arena per worker thread up to glibc's cap, and one more for the reservation
        // glibc makes twice as large while it creates one. The first part of each arena is
        // writable at once and counts against the data-size limit too.
        let arenas = pf.min(8.0 * online_cpus() as f64) + 1.0;
        need.arenas = arenas * ARENA_BYTES as f64;
        need.stacks += arenas * ARENA_COMMIT_BYTES as f64;
        parts.push((
            format!("{arenas} malloc arenas of 64 MiB (address space)"),
            need.arenas,
        ));
    }
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    (parts, need)
}

/// [`check_sizes`] against `limits` already detected (a suite checks all its cells against
/// one detection); the thread count is checked as well.
pub fn check_sizes_within(args: &RunArgs, limits: &MemoryLimits) -> Result<(), CliError> {
    check_threads(args)?;
    let (parts, need) = memory_need(args);
    let Some((bytes, limit)) = limits.refusing(&need) else {
        return Ok(());
    };
    let counted: Vec<&(String, f64)> = parts
        .iter()
        .filter(|(what, _)| {
            let reserved = what.ends_with("(address space)");
            let arena = what.contains("arenas");
            match limit.kind {
                LimitKind::Policy | LimitKind::Cgroup => !reserved,
                LimitKind::Data => !arena,
                LimitKind::AddressSpace => true,
            }
        })
        .collect();
    let flag = if counted
        .first()
        .is_some_and(|(what, _)| what.contains("tasks"))
    {
        "--tasks"
    } else {
        "--workers"
    };
    let detail: Vec<String> = counted
        .iter()
        .filter(|(_, b)| *b >= bytes / 100.0)
        .map(|(what, b)| format!("{what}: {}", human_bytes(*b)))
        .collect();
    Err(CliError::input(
        flag,
        format!(
            "this run would need about {} of memory ({}), above {}",
            human_bytes(bytes),
            detail.join(", "),
            limit_text(limit)
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
        assert_eq!(parse_bytes("1.5GiB"), Some(3 << 29));
        assert_eq!(parse_bytes("1TiB"), Some(1 << 40));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("1.5"), None);
        assert_eq!(parse_bytes("-1GiB"), None);
        assert_eq!(parse_bytes("nanGiB"), None);
        assert_eq!(parse_bytes("1e3GiB"), None);
        assert_eq!(parse_bytes("18446744073709551615GiB"), None);
        assert_eq!(parse_bytes("99999999999999999999.5GiB"), None);
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
    }

    fn limits(bytes: u64, kind: LimitKind) -> MemoryLimits {
        MemoryLimits {
            all: vec![
                MemoryLimit {
                    bytes: 1 << 40,
                    kind: LimitKind::Policy,
                    source: "policy".into(),
                },
                MemoryLimit {
                    bytes,
                    kind,
                    source: "the one under test".into(),
                },
            ],
        }
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
                msg.contains("would need about") && msg.contains("allowed by"),
                "{msg}"
            );
        }
        assert!(check_sizes(&RunArgs::default()).is_ok());
    }

    #[test]
    fn stacks_and_arenas_count_only_against_the_limits_they_fill() {
        let args = RunArgs {
            workers: 100,
            tasks: 10,
            ..RunArgs::default()
        };
        let (_, need) = memory_need(&args);
        assert!(need.stacks >= 100.0 * (2 << 20) as f64);
        assert!(need.arenas >= 2.0 * ARENA_BYTES as f64);
        assert!(need.against(LimitKind::Policy) < need.against(LimitKind::Data));
        assert!(need.against(LimitKind::Data) < need.against(LimitKind::AddressSpace));
        // 100 MiB is plenty for 100 idle workers' resident memory, not for their stacks.
        for kind in [LimitKind::Policy, LimitKind::Cgroup] {
            assert!(check_sizes_within(&args, &limits(100 << 20, kind)).is_ok());
        }
        for (kind, name) in [
            (LimitKind::Data, "the one under test"),
            (LimitKind::AddressSpace, "the one under test"),
        ] {
            let Err(CliError::Input(msg)) = check_sizes_within(&args, &limits(100 << 20, kind))
            else {
                panic!("{kind:?}: accepted");
            };
            assert!(
                msg.starts_with("--workers: ") && msg.contains(name),
                "{msg}"
            );
            assert!(msg.contains("thread stacks"), "{msg}");
        }
        // The sim starts no threads.
        let sim = RunArgs {
            engine: "sim".into(),
            ..args
        };
        let (_, need) = memory_need(&sim);
        assert_eq!((need.stacks, need.arenas), (0.0, 0.0));
    }

    #[test]
    fn memory_kind_counts_a_buffer_per_worker_and_one_to_calibrate() {
        let args = RunArgs {
            workers: 7,
            tasks: 10,
            kind: "memory".into(),
            ..RunArgs::default()
        };
        let (parts, need) = memory_need(&args);
        let buffers = parts
            .iter()
            .find(|(what, _)| what.contains("32 MiB"))
            .expect("the buffers are a part");
        assert_eq!(buffers.1, 8.0 * MEMORY_BUFFER_BYTES as f64);
        assert!(need.resident >= buffers.1);
        // Refused below the buffers, by the policy limit; the flag is --workers.
        let Err(CliError::Input(msg)) =
            check_sizes_within(&args, &limits(200 << 20, LimitKind::Cgroup))
        else {
            panic!("accepted");
        };
        assert!(
            msg.starts_with("--workers: this run would need about 256.")
                && msg.contains("8 buffers of 32 MiB"),
            "{msg}"
        );
    }

    /// A fake cgroup tree under a temporary directory, as mountinfo and /proc/self/cgroup
    /// would describe it.
    fn fake_cgroup(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("schedlab-cgroup-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, text) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        root
    }

    #[test]
    fn cgroup_v2_limits_less_usage_from_the_own_cgroup_up() {
        let root = fake_cgroup(
            "v2",
            &[
                ("memory.max", "max\n"),
                ("slurm/memory.max", "4294967296\n"),
                ("slurm/memory.current", "1073741824\n"),
                ("slurm/memory.stat", "anon 1\ninactive_file 536870912\n"),
                ("slurm/job_7/memory.max", "max\n"),
                ("slurm/job_7/memory.current", "5\n"),
            ],
        );
        let mountinfo = format!(
            "30 23 0:26 / {} rw,nosuid - cgroup2 cgroup2 rw\n",
            root.display()
        );
        let found = cgroup_limits(&mountinfo, "0::/slurm/job_7\n");
        assert_eq!(found.len(), 1, "{found:?}");
        // 4 GiB less 1 GiB used, of which 512 MiB is reclaimable page cache.
        assert_eq!(found[0].bytes, (4u64 << 30) - (512 << 20));
        assert_eq!(found[0].kind, LimitKind::Cgroup);
        assert!(
            found[0].source.contains("slurm/memory.max"),
            "{}",
            found[0].source
        );
        // No cgroup line, no mount, or no limit: nothing.
        assert!(cgroup_limits(&mountinfo, "").is_empty());
        assert!(cgroup_limits("", "0::/slurm/job_7\n").is_empty());
        assert!(cgroup_limits(&mountinfo, "0::/\n").is_empty());
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn cgroup_v1_memory_controller_with_a_mounted_subtree() {
        let root = fake_cgroup(
            "v1",
            &[
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                ("job/memory.limit_in_bytes", "2147483648\n"),
                ("job/memory.usage_in_bytes", "1073741824\n"),
            ],
        );
        // The hierarchy's /batch is mounted at root; the process is in /batch/job.
        let mountinfo = format!(
            "35 31 0:32 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
             36 31 0:33 /batch {} rw - cgroup cgroup rw,memory\n",
            root.display()
        );
        let found = cgroup_limits(&mountinfo, "7:cpu:/\n4:memory:/batch/job\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].bytes, 1 << 30);
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn the_smallest_limit_that_a_need_exceeds_refuses_it() {
        let l = MemoryLimits {
            all: vec![
                MemoryLimit {
                    bytes: 8 << 30,
                    kind: LimitKind::Policy,
                    source: "policy".into(),
                },
                MemoryLimit {
                    bytes: 3 << 30,
                    kind: LimitKind::AddressSpace,
                    source: "as".into(),
                },
                MemoryLimit {
                    bytes: 1 << 30,
                    kind: LimitKind::Cgroup,
                    source: "cgroup".into(),
                },
            ],
        };
        assert_eq!(l.smallest().source, "cgroup");
        let need = MemoryNeed {
            resident: (512 << 20) as f64,
            stacks: 0.0,
            arenas: (3u64 << 30) as f64,
        };
        let (bytes, by) = l.refusing(&need).unwrap();
        assert_eq!(by.source, "as");
        assert_eq!(bytes, need.against(LimitKind::AddressSpace));
        assert!(l.refusing(&MemoryNeed::default()).is_none());
    }

    #[test]
    fn mount_points_unescape() {
        assert_eq!(unescape_mount("/a\\040b"), "/a b");
        assert_eq!(unescape_mount("/plain"), "/plain");
    }
}
