//! Unpinned workers stacked on one cpu (README: "Stacked workers"). The kernel may wake a
//! worker onto the cpu of another worker that is running a task while another cpu idles, and
//! take tens of milliseconds to spread them again; two workers that spin their tasks then share
//! one cpu in time slices of a few milliseconds. A worker that finds itself on the cpu another
//! worker last ran on moves off it: it narrows its affinity to the other cpus it may use (the
//! kernel migrates it at once) and restores it (which does not move it back). Linux only; a
//! no-op elsewhere.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

use crate::topology::Pin;
use crate::WorkerId;

/// Not on any cpu: parked, or not started.
const NO_CPU: usize = usize::MAX;

/// Per worker, the cpu it was on when it last ran something (`NO_CPU` while parked).
pub(crate) struct Cpus {
    on: Box<[CachePadded<AtomicUsize>]>,
}

impl Cpus {
    /// For `p` workers: only when they are unpinned, at least two, and no more than the cpus
    /// this process may use (with more workers than cpus, sharing one is unavoidable).
    pub(crate) fn new(p: usize, pin: Pin, cpus: usize) -> Option<Cpus> {
        (cfg!(target_os = "linux") && pin == Pin::None && p >= 2 && p <= cpus).then(|| Cpus {
            on: (0..p)
                .map(|_| CachePadded::new(AtomicUsize::new(NO_CPU)))
                .collect(),
        })
    }

    /// Worker `w` parks: it is on no cpu.
    #[inline]
    pub(crate) fn parked(&self, w: WorkerId) {
        if self.on[w].load(Relaxed) != NO_CPU {
            self.on[w].store(NO_CPU, Relaxed);
        }
    }

    /// Worker `w` is about to run something: if another worker was last seen running on this
    /// cpu, move off it. True if it moved.
    #[inline]
    pub(crate) fn check(&self, w: WorkerId) -> bool {
        let Some(cpu) = current_cpu() else {
            return false;
        };
        // Written only when it changes: the others read these lines at every round.
        if self.on[w].load(Relaxed) != cpu {
            self.on[w].store(cpu, Relaxed);
        }
        let stacked = self
            .on
            .iter()
            .enumerate()
            .any(|(j, c)| j != w && c.load(Relaxed) == cpu);
        if !stacked {
            return false;
        }
        // Leave the note empty while moving: the other worker runs on this cpu as soon as this
        // one is migrated, long before this one runs on its new cpu and notes it, and must not
        // see a note that says it is still stacked (it would move too, and both would land
        // together on the other cpu: perf sched showed them doing so every 4 ms).
        self.on[w].store(NO_CPU, Relaxed);
        let moved = move_off(cpu);
        self.on[w].store(current_cpu().unwrap_or(NO_CPU), Relaxed);
        moved
    }
}

#[cfg(target_os = "linux")]
fn current_cpu() -> Option<usize> {
    // SAFETY: no preconditions (glibc reads it from rseq where the kernel supports it).
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}

#[cfg(not(target_os = "linux"))]
fn current_cpu() -> Option<usize> {
    None
}

/// Move the calling thread off `cpu` and give it back the affinity it had: false if `cpu` is
/// the only one it may use, or the kernel refused.
#[cfg(target_os = "linux")]
fn move_off(cpu: usize) -> bool {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `cpu_set_t` is plain data (all zeroes is the empty set); the calls get its
    // size, and `cpu` is checked against the set's capacity before the macros touch it.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= 8 * size || libc::sched_getaffinity(0, size, &mut allowed) != 0 {
            return false;
        }
        if !libc::CPU_ISSET(cpu, &allowed) {
            return false;
        }
        let mut others = allowed;
        libc::CPU_CLR(cpu, &mut others);
        if libc::CPU_COUNT(&others) == 0 {
            return false;
        }
        let moved = libc::sched_setaffinity(0, size, &others) == 0;
        // The thread now runs on another cpu of the set: restoring it does not move it back.
        libc::sched_setaffinity(0, size, &allowed);
        moved
    }
}

#[cfg(not(target_os = "linux"))]
fn move_off(_cpu: usize) -> bool {
    false
}
