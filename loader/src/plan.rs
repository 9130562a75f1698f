//! Position arithmetic: an epoch's order of indices cut into batches.

use serde::{Deserialize, Serialize};

use crate::sampler::EpochOrder;

/// What happens to the last `n mod batch_size` samples of an epoch of `n`.
///
/// | mode | batches | samples |
/// |---|---|---|
/// | `Drop` | ⌊n / B⌋ | ⌊n / B⌋ · B |
/// | `Pad` | ⌈n / B⌉ | ⌈n / B⌉ · B: the last batch is filled up with the epoch's first indices again |
/// | `Partial` | ⌈n / B⌉ | n: the last batch is shorter |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Remainder {
    /// Drop the incomplete last batch (PyTorch `drop_last=True`).
    Drop,
    /// Fill the last batch with indices from the start of the epoch's order.
    Pad,
    /// Yield a shorter last batch (PyTorch's default).
    #[default]
    Partial,
}

impl std::str::FromStr for Remainder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "drop" => Ok(Remainder::Drop),
            "pad" => Ok(Remainder::Pad),
            "partial" => Ok(Remainder::Partial),
            _ => Err(format!(
                "remainder: unknown mode '{s}'; allowed: drop, pad, partial"
            )),
        }
    }
}

/// One epoch cut into batches: position `p` (0-based, in delivery order) holds dataset index
/// `order[p mod n]`; batch `k` covers positions `k·B .. min((k+1)·B, total)`.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub order: EpochOrder,
    pub batch_size: usize,
    /// Positions in the epoch.
    pub total: usize,
    /// Batches in the epoch.
    pub batches: usize,
}

impl Plan {
    pub fn new(order: impl Into<EpochOrder>, batch_size: usize, remainder: Remainder) -> Plan {
        let order = order.into();
        let n = order.len();
        let b = batch_size.max(1);
        let (batches, total) = match remainder {
            Remainder::Drop => (n / b, n / b * b),
            Remainder::Pad => (n.div_ceil(b), n.div_ceil(b) * b),
            Remainder::Partial => (n.div_ceil(b), n),
        };
        Plan {
            order,
            batch_size: b,
            total,
            batches,
        }
    }

    /// The dataset index at position `p`.
    pub fn index(&self, p: usize) -> usize {
        let n = self.order.len();
        self.order
            .get(p % n)
            .expect("a position of a non-empty order")
    }

    /// Positions of batch `k`.
    #[cfg(test)]
    pub fn batch_range(&self, k: usize) -> std::ops::Range<usize> {
        let start = (k * self.batch_size).min(self.total);
        start..((k + 1) * self.batch_size).min(self.total)
    }

    /// Size of batch `k`.
    #[cfg(test)]
    pub fn batch_len(&self, k: usize) -> usize {
        self.batch_range(k).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_sizes_per_remainder_mode() {
        // n = 10, B = 4: drop 2 batches/8, pad 3/12, partial 3/10
        for (mode, batches, total, last) in [
            (Remainder::Drop, 2, 8, 4),
            (Remainder::Pad, 3, 12, 4),
            (Remainder::Partial, 3, 10, 2),
        ] {
            let p = Plan::new((0..10).collect::<Vec<usize>>(), 4, mode);
            assert_eq!((p.batches, p.total), (batches, total), "{mode:?}");
            assert_eq!(p.batch_len(batches - 1), last, "{mode:?}");
        }
        let pad = Plan::new((0..10).collect::<Vec<usize>>(), 4, Remainder::Pad);
        let last: Vec<usize> = pad.batch_range(2).map(|p| pad.index(p)).collect();
        assert_eq!(last, vec![8, 9, 0, 1]);
        // an epoch smaller than one batch, padded, repeats its order
        let tiny = Plan::new(vec![5, 6], 5, Remainder::Pad);
        let v: Vec<usize> = tiny.batch_range(0).map(|p| tiny.index(p)).collect();
        assert_eq!(v, vec![5, 6, 5, 6, 5]);
        assert_eq!(Plan::new(vec![], 4, Remainder::Partial).batches, 0);
    }
}
