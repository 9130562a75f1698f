//! Accounting: the source-level progress of a run (which positions are resolved, and which
//! children of a split position were handed out: what a state lists for resume), and the
//! statistics the report, the autotuner and the loader read from outside.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::{lock, Shared, Station};
use crate::pipeline::stats::StationAcc;

impl Shared {
    /// Failures so far (delivered or skipped).
    pub fn failures(&self) -> u64 {
        lock(&self.tally).failures
    }

    /// Items handed to the consumer so far, and the source items in them.
    pub fn delivered(&self) -> (u64, u64) {
        let t = lock(&self.tally);
        (t.values, t.sources)
    }

    /// When the last item was handed out.
    pub fn last_item(&self) -> Option<Instant> {
        lock(&self.tally).last
    }

    /// The failure policy stopped the run.
    pub fn halted(&self) -> bool {
        lock(&self.tally).halted
    }

    /// Station `(s, k)`'s finished items and their total service time (ns; thread CPU time
    /// when a cpu station measures it), and the p99.9 of the wall service time, for the
    /// autotuner.
    pub fn station_counts(&self, s: usize, k: usize) -> (u64, u128, u64) {
        let g = self.segments[s].stations[k].st.lock();
        let n = g.acc.service.len();
        let tail = if n > 0 {
            g.acc.service.value_at_quantile(0.999)
        } else {
            0
        };
        if g.acc.cpu_items > 0 {
            (g.acc.cpu_items, g.acc.cpu_ns, tail)
        } else {
            (n, g.acc.service_ns, tail)
        }
    }

    /// The time segment `s`'s window has been full so far, ns.
    pub fn window_full_ns(&self, s: usize) -> u128 {
        let g = lock(&self.segments[s].gate);
        g.full_ns + g.full_since.map_or(0, |t| t.elapsed().as_nanos())
    }

    /// The time station `(s, k)` had a free slot and no input so far, ns.
    pub fn starved_ns(&self, s: usize, k: usize) -> u64 {
        let st = &self.segments[s].stations[k];
        let mut g = st.st.lock();
        g.mark(&st.spec, crate::pipeline::stats::now_ns());
        g.acc.starved_ns
    }

    /// Stage calls running now, per station with any: `(name, calls)`.
    pub fn calls_running(&self) -> Vec<(Arc<str>, usize)> {
        self.segments
            .iter()
            .flat_map(|g| &g.stations)
            .filter_map(|t| {
                // Under the station's lock: a blocking thread counts its call under it, after
                // its check of `stopped`; a cpu ticket counts its own before its check.
                let n = {
                    let _st = t.st.lock();
                    t.tickets.calls()
                };
                (n > 0).then(|| (Arc::clone(&t.spec.name), n))
            })
            .collect()
    }

    /// The epoch's source length, if the source knows it.
    pub fn source_total(&self) -> Option<u64> {
        self.source_total
    }

    /// Items segment `s` holds now (admitted, not yet out of its tail).
    pub fn held(&self, s: usize) -> usize {
        lock(&self.segments[s].gate).held
    }

    /// Items held now over every segment (one atomic read; [`held`](Shared::held) per segment).
    pub fn held_all(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The source has ended: every source item of the run has been admitted.
    pub fn source_ended(&self) -> bool {
        lock(&self.segments[0].gate).closed
    }

    /// The run was stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped()
    }

    /// A snapshot of station `(s, k)`'s statistics.
    pub fn station_acc(&self, s: usize, k: usize) -> StationAcc {
        let st = &self.segments[s].stations[k];
        let mut g = st.st.lock();
        g.mark(&st.spec, crate::pipeline::stats::now_ns());
        g.acc.clone()
    }

    /// Segment `s`'s station `k`, for the run's set-up.
    pub fn station(&self, s: usize, k: usize) -> &Station {
        &self.segments[s].stations[k]
    }
}

/// How much of the source-level progress a run keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Track {
    /// None (the loader keeps its own).
    Off,
    /// Each source position is one packet (no `flat_map`): resolved when it leaves.
    Single,
    /// Positions split by a `flat_map`: a count of live packets per position.
    #[default]
    Split,
}

/// The child paths of one position split by a `flat_map` that were handed out (delivered,
/// filtered, dropped): kept small, so that the record does not grow with the children of an
/// item split into many. First-level children (paths `[j]`, one `flat_map`) are a prefix and
/// the ones above it, as source positions are: in order (and as ready, up to the spread of the
/// window) that stays a number. Deeper paths (a `flat_map` after a `flat_map`) are a set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChildPaths {
    /// Every child `[j]` with `j` below this one was handed out.
    prefix: u64,
    /// Children `[j]` at or above `prefix` handed out.
    above: BTreeSet<u32>,
    /// Deeper paths handed out.
    deeper: HashSet<Vec<u32>>,
}

impl ChildPaths {
    /// From the list a state holds.
    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a Vec<u32>>) -> ChildPaths {
        let mut c = ChildPaths::default();
        for p in paths {
            c.insert(p);
        }
        c
    }

    /// `path` was handed out.
    pub fn insert(&mut self, path: &[u32]) {
        match path {
            [] => {}
            &[j] => {
                let j = u64::from(j);
                if j == self.prefix {
                    self.prefix += 1;
                    while self
                        .above
                        .first()
                        .is_some_and(|&a| u64::from(a) == self.prefix)
                    {
                        self.above.pop_first();
                        self.prefix += 1;
                    }
                } else if j > self.prefix {
                    self.above.insert(j as u32);
                }
            }
            _ => {
                self.deeper.insert(path.to_vec());
            }
        }
    }

    /// Was `path` handed out?
    pub fn contains(&self, path: &[u32]) -> bool {
        match path {
            [] => false,
            &[j] => u64::from(j) < self.prefix || self.above.contains(&j),
            _ => self.deeper.contains(path),
        }
    }

    /// Every path, for a state: first-level children in order, then the deeper ones sorted.
    pub fn paths(&self) -> Vec<Vec<u32>> {
        let mut deeper: Vec<Vec<u32>> = self.deeper.iter().cloned().collect();
        deeper.sort_unstable();
        (0..self.prefix)
            .map(|j| vec![j as u32])
            .chain(self.above.iter().map(|&j| vec![j]))
            .chain(deeper)
            .collect()
    }
}

/// The source-level progress of a run: which positions are fully resolved.
#[derive(Default)]
pub(crate) struct Progress {
    /// What is kept.
    pub track: Track,
    /// Every source position below this one is resolved.
    pub prefix: u64,
    /// Resolved positions at or above `prefix`.
    pub done: BTreeSet<u64>,
    /// Packets of each live source position still in the pipeline.
    pub live: HashMap<u64, u64>,
    /// Child paths already delivered (or dropped) of live positions split by a `flat_map`.
    pub delivered: HashMap<u64, ChildPaths>,
}

impl Progress {
    pub(super) fn admit(&mut self, src: u64) {
        if self.track == Track::Split {
            *self.live.entry(src).or_insert(0) += 1;
        }
    }

    /// `children` more packets of `src` (a `flat_map`'s children, made as the next segment
    /// has room; its parent stays live until its iterator has run out).
    pub(super) fn more_children(&mut self, src: u64, children: usize) {
        if self.track == Track::Split && children > 0 {
            *self.live.entry(src).or_insert(1) += children as u64;
        }
    }

    /// One packet of `src` left the pipeline (delivered, dropped, or split into children).
    pub(super) fn resolve_one(&mut self, src: u64, path: Option<&[u32]>) {
        if self.track == Track::Off {
            return;
        }
        let last = match self.track {
            Track::Split => {
                if let Some(p) = path.filter(|p| !p.is_empty()) {
                    self.delivered.entry(src).or_default().insert(p);
                }
                let live = self.live.entry(src).or_insert(1);
                *live -= 1;
                *live == 0
            }
            _ => true,
        };
        if last {
            if self.track == Track::Split {
                self.live.remove(&src);
                self.delivered.remove(&src);
            }
            if src == self.prefix {
                self.prefix += 1;
                while self.done.remove(&self.prefix) {
                    self.prefix += 1;
                }
            } else {
                self.done.insert(src);
            }
        }
    }

    /// Already resolved before this run (restored).
    pub fn skips(&self, src: u64) -> bool {
        src < self.prefix || self.done.contains(&src)
    }
}

/// The calling thread's CPU time in ns (`None` where the platform has no such clock):
/// `CLOCK_THREAD_CPUTIME_ID`, the clock the pipeline's per-item CPU times come from. Public for
/// the Python bindings' GIL statistics, which measure on the same clock.
#[cfg(unix)]
pub fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID needs nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// The calling thread's CPU time in ns: `None`, this platform has no per-thread CPU clock.
#[cfg(not(unix))]
pub fn thread_cpu_ns() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Progress {
        /// Entries kept for the children of `src` handed out (what grows with them).
        fn kept_paths(&self, src: u64) -> usize {
            self.delivered
                .get(&src)
                .map_or(0, |c| 1 + c.above.len() + c.deeper.len())
        }
    }

    #[test]
    fn the_record_of_a_split_positions_children_handed_out_stays_small() {
        let n = 100_000u32;
        let mut pr = Progress {
            track: Track::Split,
            ..Progress::default()
        };
        pr.admit(0);
        pr.more_children(0, n as usize);
        // in order (an ordered pipeline), then out of order (as ready): 1, 0, 3, 2, …
        for j in 0..n / 2 {
            pr.resolve_one(0, Some(&[j]));
        }
        assert!(pr.kept_paths(0) <= 1, "{} entries", pr.kept_paths(0));
        for pair in (n / 2..n).step_by(2) {
            pr.resolve_one(0, Some(&[pair + 1]));
            pr.resolve_one(0, Some(&[pair]));
        }
        assert!(pr.kept_paths(0) <= 1, "{} entries", pr.kept_paths(0));
        assert!(!pr.skips(0), "the parent's iterator has not run out");
        pr.resolve_one(0, None);
        assert!(pr.skips(0) && pr.delivered.is_empty() && pr.live.is_empty());
    }

    #[test]
    fn child_paths_hold_what_was_inserted_and_list_it_for_a_state() {
        let listed: Vec<Vec<u32>> = vec![vec![0], vec![1], vec![3], vec![7, 2], vec![7, 0]];
        let c = ChildPaths::from_paths(&listed);
        for p in &listed {
            assert!(c.contains(p), "{p:?}");
        }
        for p in [vec![2], vec![4], vec![7], vec![7, 1], vec![0, 0], vec![]] {
            assert!(!c.contains(&p), "{p:?}");
        }
        let back = c.paths();
        assert_eq!(
            back,
            vec![vec![0], vec![1], vec![3], vec![7, 0], vec![7, 2]]
        );
        assert_eq!(ChildPaths::from_paths(&back), c);
        let mut top = ChildPaths::default();
        top.insert(&[u32::MAX]);
        assert!(top.contains(&[u32::MAX]) && !top.contains(&[0]));
    }
}
