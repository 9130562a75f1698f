//! How many more threads this process may start: the check every thread count (pool workers,
//! a pipeline's blocking threads, a loader's workers) is held to *before* anything is
//! allocated or spawned.
//!
//! Past the OS's limits a new thread does not always fail cleanly: when the kernel runs out of
//! memory maps, a thread is created but cannot map its signal stack, and the Rust runtime
//! aborts the whole process ("failed to set up alternative stack guard page"). So a count is
//! checked against what the OS leaves, with a margin, rather than found out by spawning.

/// The rule's margin: of the headroom each limit leaves, this share (1/8) is kept free for the
/// rest of the process and for other processes.
const KEEP_FREE_EIGHTHS: usize = 1;

/// Memory maps one thread costs: its stack and guard page, and its signal stack and guard page
/// (the Rust runtime maps one per thread).
const MAPS_PER_THREAD: usize = 4;

/// What [`thread_limit`] answers where the OS's limits cannot be read (not Linux, or `/proc`
/// not mounted).
pub const FALLBACK_THREAD_LIMIT: usize = 4_096;

/// How many more threads this process may start, by a conservative rule.
///
/// On Linux it is the least headroom left by each of these limits, less 1/8 of that headroom
/// (kept free for the rest of the process and for other processes):
///
/// * `/proc/sys/kernel/threads-max` and `/proc/sys/kernel/pid_max` (system-wide), less the
///   threads running on the whole system (`/proc/loadavg`);
/// * `RLIMIT_NPROC` (threads of this user), less this process's threads (`Threads:` of
///   `/proc/self/status`; the user's other processes are not counted, hence the margin), unless
///   it is unlimited;
/// * the cgroup's `pids.max`, less its `pids.current` (v1 or v2), where there is one;
/// * `vm.max_map_count`, less the maps this process holds (`/proc/self/maps`), divided by the 4
///   maps each thread costs (its stack and signal stack, each with a guard page).
///
/// A limit that cannot be read is left out; where none can be read (another OS)
/// [`FALLBACK_THREAD_LIMIT`] is returned. The value is read anew at every call (it changes as
/// threads start and end); each call reads a few small files.
///
/// ```
/// let n = scheduler::thread_limit();
/// assert!(n >= 1 && n < 1_000_000_000);
/// ```
pub fn thread_limit() -> usize {
    let headrooms = os::headrooms();
    if headrooms.is_empty() {
        return FALLBACK_THREAD_LIMIT;
    }
    let least = headrooms.into_iter().min().unwrap_or(FALLBACK_THREAD_LIMIT);
    least - least * KEEP_FREE_EIGHTHS / 8
}

/// The one-line refusal for a count over the limit: `field = value: this process may start at
/// most N more threads`, or `None` if `value` is within `limit`.
pub fn over_thread_limit(field: &str, value: usize, limit: usize) -> Option<String> {
    (value > limit).then(|| {
        format!(
            "{field} = {value}: this process may start at most {} more threads",
            grouped(limit)
        )
    })
}

/// `31234` as `31,234`.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(target_os = "linux")]
mod os {
    use super::MAPS_PER_THREAD;

    fn read_number(path: &str) -> Option<usize> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// Threads on the whole system: the fourth field of `/proc/loadavg`, `running/total`.
    fn system_threads() -> Option<usize> {
        let s = std::fs::read_to_string("/proc/loadavg").ok()?;
        s.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok()
    }

    fn own_threads() -> Option<usize> {
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("Threads:"))?
            .trim()
            .parse()
            .ok()
    }

    fn own_maps() -> Option<usize> {
        let s = std::fs::read("/proc/self/maps").ok()?;
        Some(s.iter().filter(|&&b| b == b'\n').count())
    }

    fn nproc() -> Option<usize> {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `r` is a valid, writable rlimit; RLIMIT_NPROC needs nothing else.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut r) };
        if rc != 0 || r.rlim_cur == libc::RLIM_INFINITY {
            return None;
        }
        usize::try_from(r.rlim_cur).ok()
    }

    /// `pids.max − pids.current` of this process's cgroup (v2, or v1's pids controller).
    fn cgroup_pids() -> Option<usize> {
        let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let dir = groups.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
            if controllers.split(',').any(|c| c == "pids") {
                Some(format!("/sys/fs/cgroup/pids{path}"))
            } else if controllers.is_empty() {
                Some(format!("/sys/fs/cgroup{path}"))
            } else {
                None
            }
        })?;
        let dir = dir.trim_end_matches('/');
        let max = std::fs::read_to_string(format!("{dir}/pids.max")).ok()?;
        let max: usize = max.trim().parse().ok()?; // "max": no limit
        let current = read_number(&format!("{dir}/pids.current")).unwrap_or(0);
        Some(max.saturating_sub(current))
    }

    pub(super) fn headrooms() -> Vec<usize> {
        let mut out = Vec::new();
        let system = system_threads();
        let own = own_threads();
        for path in ["/proc/sys/kernel/threads-max", "/proc/sys/kernel/pid_max"] {
            if let (Some(max), Some(used)) = (read_number(path), system) {
                out.push(max.saturating_sub(used));
            }
        }
        if let Some(max) = nproc() {
            out.push(max.saturating_sub(own.unwrap_or(1)));
        }
        out.extend(cgroup_pids());
        if let (Some(max), Some(used)) = (read_number("/proc/sys/vm/max_map_count"), own_maps()) {
            out.push(max.saturating_sub(used) / MAPS_PER_THREAD);
        }
        out
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    pub(super) fn headrooms() -> Vec<usize> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(31_234), "31,234");
        assert_eq!(grouped(1_000_000), "1,000,000");
    }

    #[test]
    fn the_limit_is_finite_and_leaves_room_for_a_few_threads() {
        let n = thread_limit();
        assert!(n >= 16, "{n}");
        assert!(n < 1_000_000_000, "{n}");
        assert_eq!(over_thread_limit("workers", n, n), None);
        let m = over_thread_limit("workers", 1_000_000_000, n).unwrap();
        assert!(m.starts_with("workers = 1000000000: this process may start at most "));
    }
}
