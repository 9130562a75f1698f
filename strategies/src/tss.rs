//! `tss`: trapezoid self-scheduling — chunk sizes fall linearly from a first chunk of
//! ⌈n / 2P⌉ ids to a last of 1.
//!
//! Tzen & Ni, "Trapezoid self-scheduling: a practical scheduling scheme for parallel
//! compilers" (IEEE Transactions on Parallel and Distributed Systems 4(1), 1993). With n ids
//! at the first take, first chunk f = ⌈n / 2P⌉, last chunk l = 1, N = ⌈2n / (f + l)⌉ chunks,
//! and each chunk is the previous one less δ = ⌊(f − l) / (N − 1)⌋ (integers, as in the paper),
//! never below l; a chunk is cut to what is left. Like `guided` its chunks shrink, but
//! linearly, so its last chunks are fewer and bigger: fewer queue accesses than guided's long
//! tail of 1-id chunks, at a little more imbalance. The trapezoid is laid out over the ids
//! queued at the first take; ids submitted later continue its tail (chunks of l).

use std::sync::atomic::{AtomicUsize, Ordering};

use scheduler::{Context, Instance, SpecError, Strategy};

use crate::params::Params;
use crate::self_scheduling::{self, ChunkRule};

/// Trapezoid self-scheduling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tss;

impl Tss {
    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&[])?;
        Ok(Tss)
    }
}

/// The next chunk size (0: not laid out yet) and the decrement.
#[derive(Default)]
struct Trapezoid {
    next: AtomicUsize,
    delta: AtomicUsize,
}

impl ChunkRule for Trapezoid {
    fn size(&self, remaining: usize, workers: usize, _w: usize) -> usize {
        // Called under the queue's lock: relaxed loads and stores are enough.
        let mut next = self.next.load(Ordering::Relaxed);
        if next == 0 {
            let f = remaining.div_ceil(2 * workers).max(1);
            let chunks = (2 * remaining).div_ceil(f + 1).max(1);
            let delta = if chunks > 1 {
                (f - 1) / (chunks - 1)
            } else {
                0
            };
            self.delta.store(delta, Ordering::Relaxed);
            next = f;
        }
        let delta = self.delta.load(Ordering::Relaxed);
        self.next
            .store(next.saturating_sub(delta).max(1), Ordering::Relaxed);
        next
    }
}

impl Strategy for Tss {
    fn spec(&self) -> String {
        "tss".into()
    }

    fn build(&self, ctx: &Context) -> Instance {
        self_scheduling::build(Trapezoid::default(), ctx)
    }
}

#[cfg(test)]
mod tests {
    use crate::self_scheduling::chunk_sequence;

    #[test]
    fn chunks_fall_linearly_from_n_over_2p_to_one() {
        // n = 1000, P = 4: f = 125, N = ⌈2000 / 126⌉ = 16, δ = ⌊124 / 15⌋ = 8:
        // 125, 117, …, 37 (12 chunks, 972 ids), then the 28 left.
        let mut want: Vec<usize> = (0..12).map(|i| 125 - 8 * i).collect();
        want.push(28);
        assert_eq!(chunk_sequence("tss", 1000, 4), want);
        // n = 20, P = 2: f = 5, N = ⌈40 / 6⌉ = 7, δ = ⌊4 / 6⌋ = 0: equal chunks of 5.
        assert_eq!(chunk_sequence("tss", 20, 2), vec![5, 5, 5, 5]);
        // Chunks never fall below 1: n = 50, P = 1: f = 25, N = 4, δ = 8: 25, 17, 8 (cut).
        assert_eq!(chunk_sequence("tss", 50, 1), vec![25, 17, 8]);
    }
}
