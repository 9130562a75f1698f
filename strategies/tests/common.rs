//! Helpers shared by the strategy tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

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
