//! The machinery shared by self-scheduling strategies: one shared FIFO of ids; a free worker
//! takes a chunk whose size a rule computes from the number of ids left, runs the first id at
//! once (a shared-queue access) and the rest from its hand (local).

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
    hand: (usize, usize),
}

impl<R: ChunkRule> WorkerQueue for Handle<R> {
    #[inline]
    fn next(&mut self) -> Next {
        let (task, source) = if self.hand.0 < self.hand.1 {
            (self.hand.0, Source::Local)
        } else {
            let (rule, p) = (&self.rule, self.workers);
            match self.shared.0.take(|remaining| rule.size(remaining, p)) {
                Some(chunk) => {
                    self.hand = chunk;
                    (chunk.0, Source::Shared)
                }
                None => return Next::Empty(Attempts::default()),
            }
        };
        self.hand.0 += 1;
        Next::Task(Pick {
            task,
            source,
            attempts: Attempts::default(),
        })
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
                    hand: (0, 0),
                }) as Box<dyn WorkerQueue>
            })
            .collect(),
    }
}
