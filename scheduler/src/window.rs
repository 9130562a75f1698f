//! The pipeline's sizing rules, in one place: the default input queue of a stage and the
//! default window of a segment. The loader's pipeline engine, its autotuner and the
//! simulated pipeline ([`crate::simulate_pipeline`]) all call these functions, so a
//! simulation sizes its queues and windows exactly as the engine it predicts does (the
//! loader's tests check that they agree).
//!
//! Every sum and product saturates at `usize::MAX`: the results are bounds, exact within the
//! limits, and a huge setting must not overflow.

/// The default capacity of a stage's input queue: `max(2 × concurrency, 4)`.
///
/// ```
/// assert_eq!(scheduler::window::default_queue(1), 4);
/// assert_eq!(scheduler::window::default_queue(8), 16);
/// assert_eq!(scheduler::window::default_queue(usize::MAX), usize::MAX);
/// ```
pub fn default_queue(concurrency: usize) -> usize {
    concurrency.saturating_mul(2).max(4)
}

/// The default window of a segment (items admitted at once: the reorder window and the memory
/// bound): two batches per runner and at least twice what its stages hold,
/// `max(2 Σ (c + q), 2 × max(Σ c, 1) × max(batch, 1), 4)` over its stages'
/// `(concurrency c, queue q)`; `batch` is the size of the batch that ends the segment (0 or
/// 1 for none).
///
/// ```
/// use scheduler::window::default_window;
/// // one stage of 2 runners with a queue of 4, ending in a batch of 32: 2 x 2 x 32
/// assert_eq!(default_window([(2, 4)], 32), 128);
/// // no batch: twice what the stages hold
/// assert_eq!(default_window([(2, 4), (8, 16)], 0), 60);
/// // a segment without stages (between two batches)
/// assert_eq!(default_window([], 3), 6);
/// ```
pub fn default_window(stations: impl IntoIterator<Item = (usize, usize)>, batch: usize) -> usize {
    let (runners, held) = stations
        .into_iter()
        .fold((0usize, 0usize), |(r, h), (c, q)| {
            (r.saturating_add(c), h.saturating_add(c.saturating_add(q)))
        });
    held.saturating_mul(2)
        .max(
            runners
                .max(1)
                .saturating_mul(2)
                .saturating_mul(batch.max(1)),
        )
        .max(4)
}
