//! `central(chunk=N)`: one shared task queue; a free worker takes the next N tasks.
//!
//! The master/worker queue of the seed ("perfect load balancing, communication bottleneck at
//! the master") and OpenMP's `schedule(dynamic, N)`. With chunk 1 it is Graham's greedy list
//! scheduling: makespan ≤ (2 − 1/m)·OPT. It wins on irregular costs at modest P; at high P with
//! small tasks the single queue serialises everyone. Larger chunks trade balance for fewer
//! accesses.
//!
//! The queue is the submitted ranges in a linked list; a take is one atomic add on the current
//! range's claim counter (no lock), so a take costs what the cache line's trip between cores
//! costs. Ids go out in submission order.

use std::sync::Arc;

use scheduler::{
    Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, Source, SpecError, Strategy,
    WorkerQueue,
};

use crate::params::Params;
use crate::queues::{Segment, Segments};

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

struct Shared(Segments);

impl SharedQueue for Shared {
    fn submit(&self, batch: Batch<'_>) {
        self.0.push(batch.ids.0, batch.ids.1);
    }
}

/// Aligned to its own cache lines: each worker writes its handle on every pick, and handles
/// built one after another would otherwise share a line (false sharing between workers).
#[repr(align(128))]
struct Handle {
    cursor: Arc<Segment>,
    chunk: usize,
}

impl WorkerQueue for Handle {
    #[inline]
    fn next(&mut self) -> Next {
        match Segments::claim(&mut self.cursor, self.chunk) {
            Some((task, count)) => Next::Task(Pick::run(task, count as u32, Source::Shared)),
            None => Next::Empty(Attempts::default()),
        }
    }
}

impl Strategy for Central {
    fn spec(&self) -> String {
        format!("central(chunk={})", self.chunk)
    }

    fn build(&self, ctx: &Context) -> Instance {
        let shared = Arc::new(Shared(Segments::new()));
        let chunk = self.chunk.min(u32::MAX as usize);
        Instance {
            shared: shared.clone(),
            workers: (0..ctx.workers())
                .map(|_| {
                    Box::new(Handle {
                        cursor: shared.0.cursor(),
                        chunk,
                    }) as Box<dyn WorkerQueue>
                })
                .collect(),
        }
    }
}
