//! The machinery shared by self-scheduling strategies: one shared FIFO of ids; a free worker
//! takes a chunk whose size a rule computes from the number of ids left, in one shared-queue
//! access, and runs it as one run of consecutive ids.

use std::sync::Arc;

use scheduler::{Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, Source, WorkerQueue};

use crate::queues::RangeQueue;

/// Chunk size for a take, given the ids left and the worker count.
///
/// `size` is called under the shared queue's lock, one take at a time, so a rule may keep
/// state between takes (a batch counter, learned weights) in relaxed atomics.
pub(crate) trait ChunkRule: Send + Sync + 'static {
    /// The chunk wanted by worker `w` (values below 1 count as 1).
    fn size(&self, remaining: usize, workers: usize, w: usize) -> usize;

    /// Feedback: a task on worker `w` took `ns` (the default ignores it).
    fn completed(&self, w: usize, ns: u64) {
        let _ = (w, ns);
    }
}

struct Shared(RangeQueue);

impl SharedQueue for Shared {
    fn submit(&self, batch: Batch<'_>) {
        self.0.push(batch.ids.0, batch.ids.1);
    }
}

/// Aligned to its own cache lines: each worker writes its handle on every pick, and handles
/// built one after another would otherwise share a line (false sharing between workers).
#[repr(align(128))]
struct Handle<R> {
    shared: Arc<Shared>,
    rule: Arc<R>,
    workers: usize,
    w: usize,
}

impl<R: ChunkRule> WorkerQueue for Handle<R> {
    #[inline]
    fn next(&mut self) -> Next {
        let (rule, p, w) = (&self.rule, self.workers, self.w);
        let take = |remaining| rule.size(remaining, p, w).min(u32::MAX as usize);
        match self.shared.0.take(take) {
            // One access to the shared queue hands over the whole chunk.
            Some((start, end)) => {
                Next::Task(Pick::run(start, (end - start) as u32, Source::Shared))
            }
            None => Next::Empty(Attempts::default()),
        }
    }

    fn completed(&mut self, _task: usize, ns: u64) {
        self.rule.completed(self.w, ns);
    }
}

/// Queues for a self-scheduling strategy with this chunk rule.
pub(crate) fn build<R: ChunkRule>(rule: R, ctx: &Context) -> Instance {
    let shared = Arc::new(Shared(RangeQueue::default()));
    let rule = Arc::new(rule);
    Instance {
        shared: shared.clone(),
        workers: (0..ctx.workers())
            .map(|w| {
                Box::new(Handle {
                    shared: shared.clone(),
                    rule: rule.clone(),
                    workers: ctx.workers(),
                    w,
                }) as Box<dyn WorkerQueue>
            })
            .collect(),
    }
}

/// The sizes of the chunks one worker gets when it alone drains `n` ids submitted at once
/// under `spec` with `workers` workers (the other workers never ask): the chunk sequence of a
/// self-scheduling rule, for tests.
#[cfg(test)]
pub(crate) fn chunk_sequence(spec: &str, n: usize, workers: usize) -> Vec<usize> {
    let s = crate::parse(spec).unwrap();
    let mut inst = s.build(&Context::uniform(workers, 1));
    inst.shared.submit(Batch::new(0..n));
    let mut sizes = Vec::new();
    let mut next = 0;
    while let Next::Task(p) = inst.workers[0].next() {
        assert_eq!(p.task, next, "{spec}: chunks come in id order");
        next += p.count as usize;
        sizes.push(p.count as usize);
    }
    assert_eq!(next, n, "{spec}: every id handed out");
    sizes
}
