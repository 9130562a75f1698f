//! `central(chunk=N)`: one shared task queue; a free worker takes the next N tasks.
//!
//! The master/worker queue of the seed ("perfect load balancing, communication bottleneck at
//! the master") and OpenMP's `schedule(dynamic, N)`. With chunk 1 it is Graham's greedy list
//! scheduling: makespan ≤ (2 − 1/m)·OPT. It wins on irregular costs at modest P; at high P with
//! small tasks the single queue serialises everyone. Larger chunks trade balance for fewer
//! accesses.

use scheduler::{Context, Instance, SpecError, Strategy};

use crate::params::Params;
use crate::self_scheduling::{self, ChunkRule};

/// One shared queue, fixed chunk size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Central {
    chunk: usize,
}

impl Central {
    /// A central queue handing out `chunk` (≥ 1) tasks at a time.
    pub fn new(chunk: usize) -> Result<Self, SpecError> {
        if chunk == 0 {
            return Err(SpecError::new(
                "strategy 'central': chunk must be a whole number >= 1, got '0'",
            ));
        }
        Ok(Central { chunk })
    }

    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&["chunk"])?;
        Central::new(p.count("chunk", 1, 1)?)
    }
}

struct Fixed(usize);

impl ChunkRule for Fixed {
    fn size(&self, _remaining: usize, _workers: usize, _w: usize) -> usize {
        self.0
    }
}

impl Strategy for Central {
    fn spec(&self) -> String {
        format!("central(chunk={})", self.chunk)
    }

    fn build(&self, ctx: &Context) -> Instance {
        self_scheduling::build(Fixed(self.chunk), ctx)
    }
}
