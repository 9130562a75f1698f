//! Helpers shared by the strategy tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use scheduler::{Context, Instance, Next, Pick, Source, Strategy, WorkerQueue};

/// Every registered strategy at its defaults, plus the interesting variants.
pub fn all_specs() -> Vec<String> {
    let mut specs: Vec<String> = strategies::registry()
        .iter()
        .map(|e| e.default_spec())
        .collect();
    specs.extend(
        [
            "central(chunk=7)",
            "guided(min=3)",
            "work-stealing(victim=random,steal=one)",
            "work-stealing(victim=numa,steal=half)",
            "work-stealing(victim=numa,steal=one)",
            "work-stealing(victim=hier,steal=work,order=lifo)",
            "work-stealing(victim=hier,steal=one)",
            "adaptive-spt(range=3,first=longest)",
            "jsq(d=1)",
        ]
        .map(String::from),
    );
    specs
}

/// A per-id run counter.
pub struct Counts(Vec<AtomicU32>);

impl Counts {
    pub fn new(n: usize) -> Self {
        Counts((0..n).map(|_| AtomicU32::new(0)).collect())
    }

    pub fn hit(&self, id: usize) {
        self.0[id].fetch_add(1, Ordering::Relaxed);
    }

    /// Panics naming the first id that did not run exactly once.
    pub fn assert_once(&self, what: &str) {
        for (id, c) in self.0.iter().enumerate() {
            let c = c.load(Ordering::Relaxed);
            assert_eq!(c, 1, "{what}: task {id} ran {c} times");
        }
    }
}

/// Records every pick `(worker, pick)` in the order the engine asked.
#[derive(Debug)]
pub struct Recorded {
    inner: Box<dyn Strategy>,
    picks: Arc<Mutex<Vec<(usize, Pick)>>>,
    nodes: Arc<Mutex<Vec<usize>>>,
}

impl Recorded {
    pub fn new(spec: &str) -> Self {
        Recorded {
            inner: strategies::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}")),
            picks: Arc::default(),
            nodes: Arc::default(),
        }
    }

    pub fn picks(&self) -> Vec<(usize, Pick)> {
        self.picks.lock().unwrap().clone()
    }

    /// Successful steals from a worker on another node.
    pub fn cross_node_steals(&self) -> usize {
        let nodes = self.nodes.lock().unwrap();
        self.picks()
            .iter()
            .filter(|(w, p)| matches!(p.source, Source::Stolen { victim, .. } if nodes[victim] != nodes[*w]))
            .count()
    }
}

struct Recording {
    inner: Box<dyn WorkerQueue>,
    w: usize,
    picks: Arc<Mutex<Vec<(usize, Pick)>>>,
}

impl WorkerQueue for Recording {
    fn next(&mut self) -> Next {
        let next = self.inner.next();
        if let Next::Task(p) = next {
            self.picks.lock().unwrap().push((self.w, p));
        }
        next
    }

    fn completed(&mut self, task: usize, ns: u64) {
        self.inner.completed(task, ns);
    }
}

impl Strategy for Recorded {
    fn spec(&self) -> String {
        self.inner.spec()
    }

    fn build(&self, ctx: &Context) -> Instance {
        *self.nodes.lock().unwrap() = ctx.nodes.clone();
        let inst = self.inner.build(ctx);
        Instance {
            shared: inst.shared,
            workers: inst
                .workers
                .into_iter()
                .enumerate()
                .map(|(w, inner)| {
                    Box::new(Recording {
                        inner,
                        w,
                        picks: self.picks.clone(),
                    }) as Box<dyn WorkerQueue>
                })
                .collect(),
        }
    }
}
