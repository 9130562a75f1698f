//! Datasets: a length and a fallible `get(index, &mut worker_state)`.

use std::fmt;

use scheduler::WorkerId;

/// A random-access dataset.
///
/// `get` runs on the loader's worker threads. Each worker owns a `State` built once, on that
/// worker's thread, by [`init`](Dataset::init) (a decoder, a file handle, an RNG, a scratch
/// buffer); it lives as long as the loader and is dropped when the worker thread ends.
///
/// A closure is a dataset too: see [`from_fn`] and [`from_fn_with_state`].
pub trait Dataset: Send + Sync + 'static {
    /// One loaded sample.
    type Sample: Send + 'static;
    /// Why a sample could not be loaded (shown in [`LoaderError`](crate::LoaderError)).
    type Error: fmt::Display + Send + 'static;
    /// Worker-local state.
    type State: Send + 'static;

    /// Number of samples; indices are `0..len()`.
    fn len(&self) -> usize;

    /// True when the dataset has no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Build worker `worker`'s state; runs once per worker, on its thread.
    fn init(&self, worker: WorkerId) -> Self::State;

    /// Load sample `index` (in `0..len()`).
    fn get(&self, index: usize, state: &mut Self::State) -> Result<Self::Sample, Self::Error>;

    /// Load the samples `indices` in one call: one result per index, in order. A loader
    /// built with [`chunk`](crate::LoaderBuilder::chunk) calls this with the samples one
    /// thread found waiting; the default calls [`get`](Dataset::get) for each. Override it
    /// where a call costs more than a sample (a message to another process, a batched read).
    fn get_many(
        &self,
        indices: &[usize],
        state: &mut Self::State,
    ) -> Vec<Result<Self::Sample, Self::Error>> {
        indices.iter().map(|&i| self.get(i, state)).collect()
    }
}

/// A dataset made of closures; see [`from_fn`] and [`from_fn_with_state`].
pub struct FnDataset<I, G> {
    len: usize,
    init: I,
    get: G,
}

impl<I, G> fmt::Debug for FnDataset<I, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnDataset")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// A dataset of `len` samples whose `get(index)` is a closure (no worker state).
///
/// ```
/// use loader::Dataset;
/// let squares = loader::from_fn(10, |i| Ok::<_, String>(i * i));
/// assert_eq!(squares.len(), 10);
/// assert_eq!(squares.get(3, &mut ()), Ok(9));
/// ```
pub fn from_fn<T, E, G>(len: usize, get: G) -> FromFn<G>
where
    T: Send + 'static,
    E: fmt::Display + Send + 'static,
    G: Fn(usize) -> Result<T, E> + Send + Sync + 'static,
{
    FromFn { len, get }
}

/// A dataset made of one closure and no worker state; see [`from_fn`].
pub struct FromFn<G> {
    len: usize,
    get: G,
}

impl<G> fmt::Debug for FromFn<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromFn")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<T, E, G> Dataset for FromFn<G>
where
    T: Send + 'static,
    E: fmt::Display + Send + 'static,
    G: Fn(usize) -> Result<T, E> + Send + Sync + 'static,
{
    type Sample = T;
    type Error = E;
    type State = ();

    fn len(&self) -> usize {
        self.len
    }

    fn init(&self, _worker: WorkerId) {}

    fn get(&self, index: usize, _state: &mut ()) -> Result<T, E> {
        (self.get)(index)
    }
}

/// A dataset of `len` samples with worker-local state: `init(worker)` builds each worker's
/// state once, `get(index, &mut state)` loads a sample.
///
/// ```
/// use loader::Dataset;
/// // each worker keeps a scratch buffer it reuses for every sample
/// let ds = loader::from_fn_with_state(
///     4,
///     |_worker| Vec::<u8>::with_capacity(64),
///     |i, buf: &mut Vec<u8>| {
///         buf.clear();
///         buf.extend(std::iter::repeat(i as u8).take(3));
///         Ok::<_, String>(buf.clone())
///     },
/// );
/// let mut state = ds.init(0);
/// assert_eq!(ds.get(2, &mut state), Ok(vec![2, 2, 2]));
/// ```
pub fn from_fn_with_state<S, T, E, I, G>(len: usize, init: I, get: G) -> FnDataset<I, G>
where
    S: Send + 'static,
    T: Send + 'static,
    E: fmt::Display + Send + 'static,
    I: Fn(WorkerId) -> S + Send + Sync + 'static,
    G: Fn(usize, &mut S) -> Result<T, E> + Send + Sync + 'static,
{
    FnDataset { len, init, get }
}

impl<S, T, E, I, G> Dataset for FnDataset<I, G>
where
    S: Send + 'static,
    T: Send + 'static,
    E: fmt::Display + Send + 'static,
    I: Fn(WorkerId) -> S + Send + Sync + 'static,
    G: Fn(usize, &mut S) -> Result<T, E> + Send + Sync + 'static,
{
    type Sample = T;
    type Error = E;
    type State = S;

    fn len(&self) -> usize {
        self.len
    }

    fn init(&self, worker: WorkerId) -> S {
        (self.init)(worker)
    }

    fn get(&self, index: usize, state: &mut S) -> Result<T, E> {
        (self.get)(index, state)
    }
}
