//! `factoring`: factoring self-scheduling, FAC2 — chunks come in batches of P equal chunks,
//! each batch holding half of the ids left when it starts.
//!
//! Hummel, Schonberg & Flynn, "Factoring: a method for scheduling parallel loops"
//! (Communications of the ACM 35(8), 1992). With R ids left at the start of a batch, each of its
//! P chunks is ⌈R / 2P⌉ ids. Like `guided`, big chunks early and small ones late, but the
//! chunks of one batch are equal, so the first P requests do not all hand out huge chunks
//! to the first workers that ask (guided's first chunk is R/P, factoring's R/2P): it tolerates
//! more variance in task costs at the start of a loop. One shared queue, one access per chunk.

use std::sync::atomic::{AtomicUsize, Ordering};

use scheduler::{Context, Instance, SpecError, Strategy};

use crate::params::Params;
use crate::self_scheduling::{self, ChunkRule};

/// Factoring (FAC2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Factoring;

impl Factoring {
    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&[])?;
        Ok(Factoring)
    }
}

/// The FAC2 rule: the chunk size of the current batch and how many of its chunks are left.
#[derive(Default)]
struct Fac2 {
    size: AtomicUsize,
    left: AtomicUsize,
}

impl ChunkRule for Fac2 {
    fn size(&self, remaining: usize, workers: usize, _w: usize) -> usize {
        // Called under the queue's lock: relaxed loads and stores are enough.
        let left = self.left.load(Ordering::Relaxed);
        if left == 0 {
            let size = remaining.div_ceil(2 * workers).max(1);
            self.size.store(size, Ordering::Relaxed);
            self.left.store(workers - 1, Ordering::Relaxed);
            size
        } else {
            self.left.store(left - 1, Ordering::Relaxed);
            self.size.load(Ordering::Relaxed)
        }
    }
}

impl Strategy for Factoring {
    fn spec(&self) -> String {
        "factoring".into()
    }

    fn build(&self, ctx: &Context) -> Instance {
        self_scheduling::build(Fac2::default(), ctx)
    }
}

#[cfg(test)]
mod tests {
    use crate::self_scheduling::chunk_sequence;

    #[test]
    fn batches_of_p_equal_chunks_each_half_of_what_is_left() {
        // n = 100, P = 4: R = 100 → 4 × 13; R = 48 → 4 × 6; R = 24 → 4 × 3; R = 12 → 4 × 2;
        // R = 4 → 4 × 1.
        let mut want = Vec::new();
        for size in [13, 6, 3, 2, 1] {
            want.extend([size; 4]);
        }
        assert_eq!(chunk_sequence("factoring", 100, 4), want);
        // The last batch is cut short by what is left: n = 10, P = 2 → 3,3 | 1,1 | 1,1.
        assert_eq!(chunk_sequence("factoring", 10, 2), vec![3, 3, 1, 1, 1, 1]);
    }
}
