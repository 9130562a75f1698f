//! `awf`: adaptive weighted factoring — factoring's chunks, scaled per worker by its measured
//! speed.
//!
//! Banicescu, Velusamy & Devaprasad, "On the scalability of dynamic scheduling scientific
//! applications with adaptive weighted factoring" (Cluster Computing 6, 2003), in the
//! chunk-by-chunk form of Cariño & Banicescu, "Dynamic load balancing with adaptive factoring
//! methods in scientific applications" (J. Supercomputing 44, 2008; AWF-C). Worker i's rate is
//! the tasks it finished per ns of task time (learned through `completed`); its weight is
//! `w_i = P · rate_i / Σ rates` (1 until it has finished a task; workers without a rate count
//! at the mean of the others), and with R ids left it takes ⌈w_i · R / 2P⌉. A worker twice
//! as fast gets chunks twice as big, so big and little workers finish their last chunks
//! together without the little ones getting big early chunks. One shared queue; the weights
//! are recomputed at each take, O(1) (running sums).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use scheduler::{Context, Instance, SpecError, Strategy};

use crate::params::Params;
use crate::queues::lock;
use crate::self_scheduling::{self, ChunkRule};

/// Adaptive weighted factoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Awf;

impl Awf {
    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&[])?;
        Ok(Awf)
    }
}

/// What worker `w` has finished: written by its own thread only.
#[derive(Default)]
struct Measured {
    tasks: AtomicU64,
    ns: AtomicU64,
}

/// The rates the weights were last computed from (under the queue's lock, so a plain mutex
/// that is never contended).
struct Rates {
    rate: Vec<f64>,
    /// Σ rate over the workers that have one, and how many have one.
    sum: f64,
    known: usize,
}

struct Weighted {
    measured: Vec<Measured>,
    rates: Mutex<Rates>,
}

impl ChunkRule for Weighted {
    fn size(&self, remaining: usize, workers: usize, w: usize) -> usize {
        let m = &self.measured[w];
        let (tasks, ns) = (
            m.tasks.load(Ordering::Relaxed),
            m.ns.load(Ordering::Relaxed),
        );
        let mut r = lock(&self.rates);
        if tasks > 0 {
            let rate = tasks as f64 / ns.max(1) as f64;
            let old = std::mem::replace(&mut r.rate[w], rate);
            if old == 0.0 {
                r.known += 1;
                r.sum += rate;
            } else {
                r.sum += rate - old;
            }
        }
        let weight = if r.rate[w] > 0.0 {
            // Σ over all workers, the unknown ones at the mean of the known.
            let total = r.sum * workers as f64 / r.known as f64;
            workers as f64 * r.rate[w] / total
        } else {
            1.0
        };
        let chunk = weight * remaining as f64 / (2 * workers) as f64;
        (chunk.ceil() as usize).max(1)
    }

    fn completed(&self, w: usize, ns: u64) {
        let m = &self.measured[w];
        m.tasks.fetch_add(1, Ordering::Relaxed);
        m.ns.fetch_add(ns, Ordering::Relaxed);
    }
}

impl Strategy for Awf {
    fn spec(&self) -> String {
        "awf".into()
    }

    fn build(&self, ctx: &Context) -> Instance {
        let p = ctx.workers();
        let rule = Weighted {
            measured: (0..p).map(|_| Measured::default()).collect(),
            rates: Mutex::new(Rates {
                rate: vec![0.0; p],
                sum: 0.0,
                known: 0,
            }),
        };
        self_scheduling::build(rule, ctx)
    }
}
