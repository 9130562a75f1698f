//! Samplers: the order of an epoch's indices, and how it is split over distributed ranks.

use std::fmt;
use std::sync::Arc;

use scheduler::SmallRng;

/// A user-supplied order: `f(epoch, len)` returns the epoch's indices (each in `0..len`).
type OrderFn = Arc<dyn Fn(u64, usize) -> Vec<usize> + Send + Sync>;

#[derive(Clone)]
enum Order {
    Sequential,
    Shuffled(u64),
    Custom(OrderFn),
}

/// Which dataset indices an epoch visits, in which order.
///
/// * [`Sampler::sequential`]: `0, 1, …, len − 1`.
/// * [`Sampler::shuffled`]: a permutation drawn from `(seed, epoch)`: the same seed and epoch
///   give the same order on every run and every rank; every epoch has a different one.
/// * [`Sampler::from_fn`]: any index list per epoch (it must be a pure function of the epoch,
///   or [resume](crate::Loader::restore) cannot reproduce it).
///
/// [`shard(rank, world)`](Sampler::shard) splits each epoch over `world` ranks as PyTorch's
/// `DistributedSampler` does: the epoch's order (length `n`) is **padded** by repeating its
/// first indices until its length `n'` = ⌈n / world⌉ · world is a multiple of `world`, and rank
/// `r` takes positions `r, r + world, r + 2·world, …` of the padded order. Every rank gets
/// ⌈n / world⌉ indices; the union over ranks is the whole epoch, and the `n' − n` padded
/// indices are visited twice in that epoch (once on some rank, once on another).
///
/// ```
/// use loader::Sampler;
/// let s = Sampler::sequential().shard(1, 3);
/// assert_eq!(s.indices(7, 0), vec![1, 4, 0]); // padded order: 0..7 then 0, 1
/// assert_eq!(Sampler::shuffled(9).indices(5, 2), Sampler::shuffled(9).indices(5, 2));
/// ```
#[derive(Clone)]
pub struct Sampler {
    order: Order,
    shard: Option<(usize, usize)>,
}

impl fmt::Debug for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let order = match &self.order {
            Order::Sequential => "sequential".to_string(),
            Order::Shuffled(seed) => format!("shuffled(seed={seed})"),
            Order::Custom(_) => "custom".to_string(),
        };
        f.debug_struct("Sampler")
            .field("order", &order)
            .field("shard", &self.shard)
            .finish()
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::sequential()
    }
}

/// Whether an epoch's order over `len` samples can be held: it is one index per sample
/// (`len × 8` bytes on 64-bit). Past what the allocator can give, building it would abort the
/// process (or panic past `isize::MAX` bytes), so a loader or pipeline refuses such a length
/// when it is built. The check reserves the space and gives it back at once: nothing is
/// touched, so it costs an `mmap` and a `munmap` for a large dataset.
pub(crate) fn order_fits(len: usize) -> Result<(), String> {
    let mut v: Vec<usize> = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        let bytes = (len as u128) * std::mem::size_of::<usize>() as u128;
        format!(
            "{len} samples: an epoch's order holds one index per sample ({bytes} bytes), more than can be allocated"
        )
    })
}

impl Sampler {
    /// Indices in order.
    pub fn sequential() -> Self {
        Sampler {
            order: Order::Sequential,
            shard: None,
        }
    }

    /// A fresh permutation per epoch, drawn from `seed` and the epoch number.
    pub fn shuffled(seed: u64) -> Self {
        Sampler {
            order: Order::Shuffled(seed),
            shard: None,
        }
    }

    /// Any order: `f(epoch, len)` lists the epoch's indices (repeats allowed; each `< len`).
    ///
    /// ```
    /// // every other sample, reversed
    /// let s = loader::Sampler::from_fn(|_epoch, len| (0..len).rev().step_by(2).collect());
    /// assert_eq!(s.indices(5, 0), vec![4, 2, 0]);
    /// ```
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(u64, usize) -> Vec<usize> + Send + Sync + 'static,
    {
        Sampler {
            order: Order::Custom(Arc::new(f)),
            shard: None,
        }
    }

    /// Keep only rank `rank`'s share of each epoch out of `world` ranks (see the type's docs
    /// for the padding). Checked when the loader is built: `world ≥ 1`, `rank < world`.
    pub fn shard(mut self, rank: usize, world: usize) -> Self {
        self.shard = Some((rank, world));
        self
    }

    /// The `(rank, world)` this sampler keeps, if sharded.
    pub fn sharding(&self) -> Option<(usize, usize)> {
        self.shard
    }

    /// The shuffle seed, if shuffled.
    pub fn seed(&self) -> Option<u64> {
        match self.order {
            Order::Shuffled(seed) => Some(seed),
            _ => None,
        }
    }

    /// The order's kind: `sequential`, `shuffled` or `custom` (a resume state records it).
    pub fn kind(&self) -> &'static str {
        match self.order {
            Order::Sequential => "sequential",
            Order::Shuffled(_) => "shuffled",
            Order::Custom(_) => "custom",
        }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if let Some((rank, world)) = self.shard {
            if world == 0 || rank >= world {
                return Err(format!(
                    "sampler: shard(rank={rank}, world={world}) needs world >= 1 and rank < world"
                ));
            }
        }
        Ok(())
    }

    /// The order of epoch `epoch` over `len` samples as the engine reads it: `0..len` itself,
    /// holding nothing, for a sequential unsharded sampler (an epoch of `10^9` samples
    /// started after writing 8 GB of indices), else [`Sampler::indices`].
    pub(crate) fn epoch_order(&self, len: usize, epoch: u64) -> EpochOrder {
        match (&self.order, self.shard) {
            (Order::Sequential, None) => EpochOrder::Range(len),
            _ => EpochOrder::Listed(self.indices(len, epoch)),
        }
    }

    /// [`Sampler::indices`], or an error (one line) where an order of `len` indices could not
    /// be allocated (building it would abort the process or panic).
    ///
    /// # Errors
    /// `"{len} samples: an epoch's order holds one index per sample (…), more than can be
    /// allocated"`.
    pub fn try_indices(&self, len: usize, epoch: u64) -> Result<Vec<usize>, String> {
        order_fits(len)?;
        Ok(self.indices(len, epoch))
    }

    /// The indices this sampler visits in epoch `epoch` of a dataset of `len` samples, in order
    /// (this rank's share when sharded).
    pub fn indices(&self, len: usize, epoch: u64) -> Vec<usize> {
        let mut order = match &self.order {
            Order::Sequential => (0..len).collect(),
            Order::Shuffled(seed) => {
                let mut v: Vec<usize> = (0..len).collect();
                let mut rng = SmallRng::for_stream(*seed, epoch);
                for i in (1..v.len()).rev() {
                    v.swap(i, rng.below(i + 1));
                }
                v
            }
            Order::Custom(f) => f(epoch, len),
        };
        if let Some((rank, world)) = self.shard {
            let n = order.len();
            if n == 0 || world == 0 {
                return Vec::new();
            }
            let padded = n.div_ceil(world) * world;
            for i in n..padded {
                order.push(order[i % n]);
            }
            order = order.into_iter().skip(rank).step_by(world).collect();
        }
        order
    }
}

/// One epoch's order of dataset indices ([`Sampler::epoch_order`]).
#[derive(Clone, Debug)]
pub(crate) enum EpochOrder {
    /// `0..n`, in order.
    Range(usize),
    /// The indices, in order of delivery.
    Listed(Vec<usize>),
}

impl EpochOrder {
    /// Positions in the order.
    pub fn len(&self) -> usize {
        match self {
            EpochOrder::Range(n) => *n,
            EpochOrder::Listed(v) => v.len(),
        }
    }

    /// The index at position `p`, if there is one.
    pub fn get(&self, p: usize) -> Option<usize> {
        match self {
            EpochOrder::Range(n) => (p < *n).then_some(p),
            EpochOrder::Listed(v) => v.get(p).copied(),
        }
    }
}

impl From<Vec<usize>> for EpochOrder {
    fn from(v: Vec<usize>) -> EpochOrder {
        EpochOrder::Listed(v)
    }
}

impl IntoIterator for EpochOrder {
    type Item = usize;
    type IntoIter = EpochOrderIter;

    fn into_iter(self) -> EpochOrderIter {
        match self {
            EpochOrder::Range(n) => EpochOrderIter::Range(0..n),
            EpochOrder::Listed(v) => EpochOrderIter::Listed(v.into_iter()),
        }
    }
}

/// The iterator of an [`EpochOrder`].
pub(crate) enum EpochOrderIter {
    Range(std::ops::Range<usize>),
    Listed(std::vec::IntoIter<usize>),
}

impl Iterator for EpochOrderIter {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            EpochOrderIter::Range(r) => r.next(),
            EpochOrderIter::Listed(v) => v.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            EpochOrderIter::Range(r) => r.size_hint(),
            EpochOrderIter::Listed(v) => v.size_hint(),
        }
    }
}
