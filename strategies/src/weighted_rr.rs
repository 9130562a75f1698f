//! `weighted-rr(weights=auto|w1,w2,…)`: static smooth weighted round-robin.
//!
//! Worker i receives a share w_i / Σw of the tasks, spread evenly rather than in bursts (the
//! goal of nginx's smooth weighted round-robin for upstream servers). The sequence is stride
//! scheduling (Waldspurger & Weihl, "Stride scheduling", MIT/LCS/TM-528, 1995): worker i's k-th
//! task is due at virtual time (k + ½) / s_i, s_i its normalised share, and tasks go out in
//! order of due time (ties to the lower id), so after any prefix every worker is within about
//! one task of its share. The sequence is produced a window of P slots at a time (the due
//! times that fall in the window, bucketed by slot), so placing a task costs O(1) amortised
//! instead of a scan over the P workers. Weights are normalised by the largest before they are
//! summed, so any finite weights work (even near `f64::MAX`). `auto` takes the workers'
//! speeds as weights. It wins over plain round-robin on heterogeneous workers whose speeds
//! are known; like every static policy it cannot react to task costs.

use std::sync::Mutex;

use scheduler::{Batch, Context, Instance, SpecError, Strategy};

use crate::params::Params;
use crate::placement::{self, Placement};
use crate::queues::{lock, Chunk, Inbox};

/// Static smooth weighted round-robin.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightedRoundRobin {
    /// `None`: the workers' speeds.
    weights: Option<Vec<f64>>,
}

impl WeightedRoundRobin {
    /// Weights taken from the worker speeds.
    pub fn auto() -> Self {
        WeightedRoundRobin { weights: None }
    }

    /// Explicit weights, one per worker (each ≥ 0, at least one > 0).
    pub fn with_weights(weights: Vec<f64>) -> Result<Self, SpecError> {
        let err = |what: String| SpecError::new(format!("strategy 'weighted-rr': {what}"));
        if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
            return Err(err(format!("weights must be finite and >= 0, got {w}")));
        }
        if !weights.iter().any(|&w| w > 0.0) {
            return Err(err("at least one weight must be > 0".into()));
        }
        Ok(WeightedRoundRobin {
            weights: Some(weights),
        })
    }

    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&["weights"])?;
        match p.get("weights") {
            None | Some("auto") => Ok(Self::auto()),
            Some(list) => {
                let weights = list
                    .split(',')
                    .map(|s| {
                        s.trim().parse::<f64>().map_err(|_| {
                            p.err(format!(
                                "weights must be 'auto' or numbers like 1,1,0.5; got '{s}'"
                            ))
                        })
                    })
                    .collect::<Result<Vec<f64>, _>>()?;
                Self::with_weights(weights)
            }
        }
    }
}

/// Stride scheduling over normalised shares, produced a window at a time.
struct Stride {
    /// 1 / share of each worker (`f64::INFINITY` for a zero weight).
    stride: Vec<f64>,
    /// The next due time of each worker.
    due: Vec<f64>,
    /// Start of the next window of virtual time.
    window: f64,
    /// Workers in order of due time; those from `pos` on are not yet given a task.
    ready: Vec<u32>,
    pos: usize,
    /// Slots per window: at least P, and big enough to amortise producing one.
    width: usize,
    /// Scratch: `(due, worker)` of the window being produced, the same bucketed by slot, and
    /// where each slot's bucket starts.
    scratch: Vec<(f64, u32)>,
    sorted: Vec<(f64, u32)>,
    starts: Vec<usize>,
}

impl Stride {
    fn new(weights: &[f64]) -> Self {
        let max = weights.iter().copied().fold(0.0, f64::max);
        // Normalise by the largest first: the sum of weights near f64::MAX would overflow.
        let scaled: Vec<f64> = weights.iter().map(|&w| w / max).collect();
        let sum: f64 = scaled.iter().sum();
        let mut stride: Vec<f64> = scaled
            .iter()
            .map(|&w| if w > 0.0 { sum / w } else { f64::INFINITY })
            .collect();
        if !stride.iter().any(|s| s.is_finite()) {
            // No usable weight (e.g. `auto` on zero speeds): plain round-robin.
            stride.fill(weights.len() as f64);
        }
        Stride {
            due: stride.iter().map(|s| s / 2.0).collect(),
            stride,
            window: 0.0,
            ready: Vec::new(),
            pos: 0,
            width: weights.len().max(1024),
            scratch: Vec::new(),
            sorted: Vec::new(),
            starts: Vec::new(),
        }
    }

    /// The worker of the next task.
    #[inline]
    fn next(&mut self) -> usize {
        loop {
            if let Some(&w) = self.ready.get(self.pos) {
                self.pos += 1;
                return w as usize;
            }
            self.fill();
        }
    }

    /// Produce the next window of slots: every due time in it, in order.
    fn fill(&mut self) {
        let p = self.width;
        let end = self.window + p as f64;
        self.scratch.clear();
        for (w, (due, &stride)) in self.due.iter_mut().zip(&self.stride).enumerate() {
            while *due < end {
                self.scratch.push((*due, w as u32));
                *due += stride;
            }
        }
        // Bucket by slot (about one due time per slot), then order each bucket.
        let window = self.window;
        let slot = |due: f64| ((due - window).max(0.0) as usize).min(p - 1);
        // Counting sort by slot: `starts[s]` ends as the first index of slot s's bucket.
        let starts = &mut self.starts;
        starts.clear();
        starts.resize(p + 1, 0);
        for &(due, _) in &self.scratch {
            starts[slot(due) + 1] += 1;
        }
        for i in 0..p {
            starts[i + 1] += starts[i];
        }
        self.sorted.clear();
        self.sorted.resize(self.scratch.len(), (0.0, 0));
        for &(due, w) in &self.scratch {
            let s = slot(due);
            self.sorted[starts[s]] = (due, w);
            starts[s] += 1;
        }
        // `starts[s]` is now the end of bucket s, i.e. the start of bucket s + 1.
        let mut from = 0;
        for &to in &starts[..p] {
            if to - from > 1 {
                self.sorted[from..to]
                    .sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            }
            from = to;
        }
        self.ready.clear();
        self.ready.extend(self.sorted.iter().map(|&(_, w)| w));
        self.pos = 0;
        self.window = end;
    }
}

/// Places tasks in stride order, kept across submissions.
struct Smooth(Mutex<Stride>);

impl Placement for Smooth {
    fn place(&self, batch: &Batch<'_>, inboxes: &[Inbox]) {
        let mut stride = lock(&self.0);
        if batch.len() < inboxes.len() {
            // A small batch (one id at a time when streaming): O(1) per id, no per-worker lists.
            for id in batch.range() {
                inboxes[stride.next()].push(Chunk::List {
                    ids: vec![id],
                    pos: 0,
                });
            }
            return;
        }
        let n = batch.len() as f64;
        let mut lists: Vec<Vec<usize>> = stride
            .stride
            .iter()
            .map(|&s| Vec::with_capacity((n / s).min(n) as usize + 2))
            .collect();
        for id in batch.range() {
            lists[stride.next()].push(id);
        }
        drop(stride);
        for (inbox, ids) in inboxes.iter().zip(lists) {
            inbox.push(Chunk::List { ids, pos: 0 });
        }
    }
}

impl Strategy for WeightedRoundRobin {
    fn spec(&self) -> String {
        match &self.weights {
            None => "weighted-rr(weights=auto)".into(),
            Some(w) => {
                let list: Vec<String> = w.iter().map(|x| x.to_string()).collect();
                format!("weighted-rr(weights={})", list.join(","))
            }
        }
    }

    fn validate(&self, workers: usize) -> Result<(), SpecError> {
        match &self.weights {
            Some(w) if w.len() != workers => Err(SpecError::new(format!(
                "strategy 'weighted-rr': {} weights given for {workers} workers (give one per worker, or weights=auto)",
                w.len()
            ))),
            _ => Ok(()),
        }
    }

    fn build(&self, ctx: &Context) -> Instance {
        let weights = self.weights.clone().unwrap_or_else(|| ctx.speeds.clone());
        placement::build(Smooth(Mutex::new(Stride::new(&weights))), ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(weights: &[f64], n: usize) -> Vec<usize> {
        let mut s = Stride::new(weights);
        let mut c = vec![0; weights.len()];
        for _ in 0..n {
            c[s.next()] += 1;
        }
        c
    }

    #[test]
    fn every_prefix_is_within_one_task_of_the_shares() {
        for weights in [
            vec![1.0, 1.0, 0.5, 0.5],
            vec![3.0, 1.0, 2.0],
            vec![1.0; 7],
            vec![5.0, 0.0, 1.0],
        ] {
            let total: f64 = weights.iter().sum();
            let mut s = Stride::new(&weights);
            let mut c = vec![0usize; weights.len()];
            for n in 1..=2000 {
                c[s.next()] += 1;
                for (w, &k) in c.iter().enumerate() {
                    let share = n as f64 * weights[w] / total;
                    assert!(
                        (k as f64 - share).abs() <= 1.0,
                        "{weights:?} n={n} worker {w}: {k} vs {share}"
                    );
                }
            }
        }
        // Equal weights: plain round-robin.
        let mut s = Stride::new(&[1.0; 3]);
        let seq: Vec<usize> = (0..6).map(|_| s.next()).collect();
        assert_eq!(seq, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn weights_near_f64_max_split_by_their_ratio() {
        // Summed as they are, these overflow to infinity (the 999/1 split of issue 11).
        assert_eq!(counts(&[f64::MAX, f64::MAX], 1000), vec![500, 500]);
        assert_eq!(counts(&[f64::MAX, f64::MAX / 4.0], 1000), vec![800, 200]);
        assert_eq!(counts(&[f64::MAX, 0.0, f64::MAX], 10), vec![5, 0, 5]);
    }
}
