//! A minimal strategy for this crate's own examples and tests (the real ones live in the
//! `strategies` crate, which this crate may not know).

use std::sync::{Arc, Mutex};

use crate::strategy::{Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, Source};
use crate::{Strategy, WorkerQueue};

/// One shared FIFO behind a mutex.
#[derive(Clone, Copy, Debug, Default)]
pub struct FifoStrategy;

#[derive(Default)]
struct Fifo(Mutex<std::collections::VecDeque<usize>>);

impl SharedQueue for Fifo {
    fn submit(&self, batch: Batch<'_>) {
        self.0.lock().unwrap().extend(batch.range());
    }
}

struct Handle(Arc<Fifo>);

impl WorkerQueue for Handle {
    fn next(&mut self) -> Next {
        match self.0 .0.lock().unwrap().pop_front() {
            Some(task) => Next::Task(Pick::one(task, Source::Shared)),
            None => Next::Empty(Attempts::default()),
        }
    }
}

impl Strategy for FifoStrategy {
    fn spec(&self) -> String {
        "fifo".into()
    }

    fn build(&self, ctx: &Context) -> Instance {
        let q = Arc::new(Fifo::default());
        Instance {
            shared: q.clone(),
            workers: (0..ctx.workers())
                .map(|_| Box::new(Handle(q.clone())) as Box<dyn WorkerQueue>)
                .collect(),
        }
    }
}
