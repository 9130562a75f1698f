//! The machinery shared by self-scheduling strategies: one shared FIFO of ids; a free worker
//! takes a chunk whose size a rule computes from the number of ids left, in one shared-queue
//! access, and runs it as one run of consecutive ids.

use std::sync::Arc;

use scheduler::{Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, Source, WorkerQueue};

use crate::queues::RangeQueue;

/// Chunk size for a take, given the ids left and the worker count.
pub(crate) trait ChunkRule: Send + Sync + 'static {
    /// The chunk wanted (values below 1 count as 1).
    fn size(&self, remaining: usize, workers: usize) -> usize;
}

struct Shared(RangeQueue);

impl SharedQueue for Shared {
    fn submit(&self, batch: Batch<'_>) {
        self.0.push(batch.ids.0, batch.ids.1);
    }
}

struct Handle<R> {
    shared: Arc<Shared>,
    rule: Arc<R>,
    workers: usize,
}

impl<R: ChunkRule> WorkerQueue for Handle<R> {
    #[inline]
    fn next(&mut self) -> Next {
        let (rule, p) = (&self.rule, self.workers);
        let take = |remaining| rule.size(remaining, p).min(u32::MAX as usize);
        match self.shared.0.take(take) {
            // One access to the shared queue hands over the whole chunk.
            Some((start, end)) => {
                Next::Task(Pick::run(start, (end - start) as u32, Source::Shared))
            }
            None => Next::Empty(Attempts::default()),
        }
    }
}

/// Queues for a self-scheduling strategy with this chunk rule.
pub(crate) fn build<R: ChunkRule>(rule: R, ctx: &Context) -> Instance {
    let shared = Arc::new(Shared(RangeQueue::default()));
    let rule = Arc::new(rule);
    Instance {
        shared: shared.clone(),
        workers: (0..ctx.workers())
            .map(|_| {
                Box::new(Handle {
                    shared: shared.clone(),
                    rule: rule.clone(),
                    workers: ctx.workers(),
                }) as Box<dyn WorkerQueue>
            })
            .collect(),
    }
}
