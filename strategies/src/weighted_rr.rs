//! `weighted-rr(weights=auto|w1,w2,…)`: static smooth weighted round-robin.
//!
//! Each task goes to the worker with the largest running credit (credits grow by the weights,
//! the chosen one pays the total), the interleaving nginx uses for upstream servers: worker i
//! receives a share w_i / Σw, spread evenly rather than in bursts. `auto` takes the workers'
//! speeds as weights. It wins over plain round-robin on heterogeneous workers whose speeds are
//! known; like every static policy it cannot react to task costs.

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

/// Smooth weighted round-robin state, kept across submissions.
struct Smooth {
    weights: Vec<f64>,
    total: f64,
    credit: Mutex<Vec<f64>>,
}

impl Placement for Smooth {
    fn place(&self, batch: &Batch<'_>, inboxes: &[Inbox]) {
        let mut lists: Vec<Vec<usize>> = vec![Vec::new(); inboxes.len()];
        {
            let mut credit = lock(&self.credit);
            for id in batch.range() {
                // Every credit grows by its weight; the largest (lowest index on ties) wins.
                let mut best = 0;
                for i in 0..credit.len() {
                    credit[i] += self.weights[i];
                    if credit[i] > credit[best] {
                        best = i;
                    }
                }
                credit[best] -= self.total;
                lists[best].push(id);
            }
        }
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
        let total = weights.iter().sum();
        let smooth = Smooth {
            credit: Mutex::new(vec![0.0; weights.len()]),
            weights,
            total,
        };
        placement::build(smooth, ctx)
    }
}
