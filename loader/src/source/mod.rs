//! Stateful sources: streams read lazily under the pipeline's window, whose state (positions,
//! RNG) is part of the pipeline's state, so that resume is exact.
//!
//! A [`Source`] yields items one at a time ([`Source::next`]), says where it stands
//! ([`Source::state`], a small [`SourceState`] of positions and seeds, never a copy of items)
//! and goes back there ([`Source::restore`]); its [`SourceFingerprint`] names what it reads
//! (a shard list, a rank, a seed, a buffer size) so that a state is never loaded into another
//! source. [`Pipeline::from_stateful`](crate::Pipeline::from_stateful) pulls a source as the
//! first segment has room (at most its window ahead of the consumer, never the epoch in
//! memory: an endless source works) and keeps the source's state at each source position the
//! consumer has not passed yet, so that [`Pipeline::state`](crate::Pipeline::state) records
//! the source where every earlier item was handed out: items in flight are read again on
//! resume, the rest of the run is identical, item for item and in order.
//!
//! * [`Shards`]: a list of shard files read by one rank each (exactly once across ranks),
//!   with a [`ShardReader`]: [`TarReader`] (WebDataset), [`JsonLines`], [`WholeFile`], or
//!   [`FnReader`] (any `path → iterator`).
//! * [`Shuffle`]: a seeded shuffle buffer over any source ([`Source::shuffled`]).
//! * [`Mix`]: weighted interleaving of several sources (fixed or scheduled weights, exact
//!   resume, per-source statistics).
//! * [`Prefetch`]: a source read ahead on its own thread ([`Source::prefetched`]), so that
//!   the sources of a mix are read at once.
//! * [`IterSource`]: an iterator made per epoch (resume reads it again up to the position).
//!
//! ```
//! use loader::source::{IterSource, Source};
//! use loader::{Pipeline, Stage};
//!
//! // An endless stream, shuffled in a buffer of 64: taken lazily, resumed exactly.
//! let source = IterSource::new(|_epoch| 0u64..).shuffled(64, 7);
//! let mut p = Pipeline::from_stateful(source).map(Stage::cpu("square"), |x: u64| x * x).build()?;
//! let mut items = p.epoch(0);
//! let first: Vec<u64> = items.by_ref().take(100).map(|r| r.unwrap()).collect();
//! let state = items.state();
//! let more: Vec<u64> = items.take(10).map(|r| r.unwrap()).collect();
//!
//! let source = IterSource::new(|_epoch| 0u64..).shuffled(64, 7);
//! let mut q = Pipeline::from_stateful(source).map(Stage::cpu("square"), |x: u64| x * x).build()?;
//! q.restore(&state)?;
//! let again: Vec<u64> = q.epoch(0).take(10).map(|r| r.unwrap()).collect();
//! assert_eq!(again, more);
//! assert_eq!(first.len(), 100);
//! # Ok::<(), loader::PipelineError>(())
//! ```

mod jsonl;
mod mix;
mod prefetch;
mod shards;
mod shuffle;
mod tar;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::pipeline::{lock, Fed, Feed};
use crate::pipeline::{FeedFactory, Pipeline, PipelineBuilder, PipelineError, PipelineState};

pub use jsonl::JsonLines;
pub use mix::{Mix, MixMode, MixSnapshot, MixSourceStats, MixStats, MixStop};
pub use prefetch::Prefetch;
pub use shards::{FnReader, IterSamples, ShardIter, ShardReader, ShardSamples, Shards, WholeFile};
pub use shuffle::Shuffle;
pub use tar::{TarBodies, TarReader, TarReaderInto, TarSample, VecBodies};

/// An error of a source: a shard that cannot be read, a malformed record, a state that does
/// not fit. An item error is reported at its source position (stage `source`) and the
/// source goes on after it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// A file could not be opened or read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A record is malformed (names the file and where).
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A setting is not allowed: names the argument.
    #[error("{field}: {message}")]
    Config {
        /// The argument.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A saved state does not fit this source.
    #[error("cannot resume the source: {0}")]
    State(String),
    /// An error of a user's reader or iterator.
    #[error("{0}")]
    Other(String),
}

/// Where a source stands: positions and seeds, never items. Small and serde-serializable;
/// each source kind documents its `words`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    /// The source's kind (`shards`, `shuffle`, `iterator`, …), checked on restore.
    pub kind: String,
    /// The positions (the epoch first).
    pub words: Vec<u64>,
    /// The state of the source this one reads from, for an adapter such as [`Shuffle`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner: Option<Box<SourceState>>,
    /// The states of the sources this one reads from, for a source over several (a
    /// [`Mix`]); empty for the others (and in states saved before it existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<SourceState>,
}

impl SourceState {
    /// A state of `kind` with these words.
    ///
    /// ```
    /// let s = loader::source::SourceState::new("iterator", vec![0, 12]);
    /// assert_eq!(s.word(1), Some(12));
    /// ```
    pub fn new(kind: &str, words: Vec<u64>) -> Self {
        SourceState {
            kind: kind.to_string(),
            words,
            inner: None,
            children: Vec::new(),
        }
    }

    /// Word `i`, if there.
    pub fn word(&self, i: usize) -> Option<u64> {
        self.words.get(i).copied()
    }

    /// The words, checked to be a state of `kind` with at least `n` words.
    ///
    /// # Errors
    /// [`SourceError::State`] naming what differs.
    pub fn expect(&self, kind: &str, n: usize) -> Result<&[u64], SourceError> {
        if self.kind != kind || self.words.len() < n {
            return Err(SourceError::State(format!(
                "a state of a {} source ({} words) given to a {kind} source",
                self.kind,
                self.words.len()
            )));
        }
        Ok(&self.words)
    }
}

/// What a source reads: its kind and settings, and the source it adapts. A state taken from
/// one source is refused by a source whose fingerprint differs ([`SourceFingerprint::differs`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFingerprint {
    /// The kind: `shards`, `shuffle`, `iterator`, …
    pub kind: String,
    /// Its settings, in order: `(name, value)`.
    pub fields: Vec<(String, String)>,
    /// The fingerprint of the source it adapts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner: Option<Box<SourceFingerprint>>,
}

impl SourceFingerprint {
    /// A fingerprint of `kind` with these settings.
    ///
    /// ```
    /// use loader::source::SourceFingerprint;
    /// let a = SourceFingerprint::new("shards", &[("rank", "0".into())]);
    /// let b = SourceFingerprint::new("shards", &[("rank", "1".into())]);
    /// assert_eq!(
    ///     a.differs(&b).unwrap(),
    ///     "state was taken from a source with rank 0 (shards(rank=0)); this pipeline's has rank 1 (shards(rank=1))"
    /// );
    /// ```
    pub fn new(kind: &str, fields: &[(&str, String)]) -> Self {
        SourceFingerprint {
            kind: kind.to_string(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            inner: None,
        }
    }

    /// This fingerprint over `inner` (an adapter's).
    pub fn over(mut self, inner: SourceFingerprint) -> Self {
        self.inner = Some(Box::new(inner));
        self
    }

    /// The first way `self` (a state's) differs from `mine` (this source's), in one line.
    pub fn differs(&self, mine: &SourceFingerprint) -> Option<String> {
        let (mut a, mut b) = (Some(self), Some(mine));
        while let (Some(x), Some(y)) = (a, b) {
            if x.kind != y.kind {
                break;
            }
            for (k, v) in &x.fields {
                match y.fields.iter().find(|(k2, _)| k2 == k) {
                    Some((_, v2)) if v2 == v => {}
                    Some((_, v2)) => {
                        return Some(format!(
                            "state was taken from a source with {k} {v} ({self}); this pipeline's has {k} {v2} ({mine})"
                        ))
                    }
                    None => break,
                }
            }
            a = x.inner.as_deref();
            b = y.inner.as_deref();
        }
        (self != mine).then(|| {
            format!("state was taken from the source {self}; this pipeline's source is {mine}")
        })
    }
}

impl fmt::Display for SourceFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        write!(f, "{}({})", self.kind, fields.join(", "))?;
        if let Some(inner) = &self.inner {
            write!(f, " of {inner}")?;
        }
        Ok(())
    }
}

/// A stream of items with a resumable state; see the module docs.
///
/// Positions: the items a source yields in an epoch are its source positions `0, 1, 2, …`;
/// `state()` after `n` items, restored into a source with the same fingerprint, makes it yield
/// item `n` next, and the same items after it.
pub trait Source: Send + 'static {
    /// What it yields.
    type Item: Send + 'static;

    /// What it reads, to refuse a state taken from another source.
    fn fingerprint(&self) -> SourceFingerprint;

    /// Stand before the first item of `epoch`.
    ///
    /// # Errors
    /// If the epoch cannot be started: the epoch ends with that error at its first position.
    fn start(&mut self, epoch: u64) -> Result<(), SourceError>;

    /// The next item (an `Err` is that position's failure; the source goes on after it), or
    /// `None` at the end of the epoch.
    fn next(&mut self) -> Option<Result<Self::Item, SourceError>>;

    /// Pass over the next item as [`next`](Source::next) would, without making it where the
    /// source can ([`Shards`] seeks past a tar sample's data instead of reading it): `Ok`
    /// for an item passed over, an `Err` for one that failed (either way one position), or
    /// `None` at the end of the epoch. The state and the items after it are the same as
    /// after `next`. [`Shuffle`]'s restore passes over the positions it does not keep.
    ///
    /// By default the item is made and dropped.
    ///
    /// ```
    /// use loader::source::{IterSource, Source};
    /// let mut s = IterSource::new(|_| 0..3u32);
    /// s.start(0).unwrap();
    /// assert_eq!(s.skip(), Some(Ok(())));
    /// assert_eq!(s.next(), Some(Ok(1)));
    /// ```
    fn skip(&mut self) -> Option<Result<(), SourceError>> {
        self.next().map(|r| r.map(drop))
    }

    /// Where it stands: the epoch and the positions from which the next items are read.
    fn state(&self) -> SourceState;

    /// Stand where `state` was taken.
    ///
    /// # Errors
    /// [`SourceError::State`] if the state is not one of this kind of source.
    fn restore(&mut self, state: &SourceState) -> Result<(), SourceError>;

    /// This source read through a seeded shuffle buffer of `buffer_size` items; see
    /// [`Shuffle`].
    ///
    /// ```
    /// use loader::source::{IterSource, Source};
    /// let mut s = IterSource::new(|_| 0..10u32).shuffled(4, 1);
    /// s.start(0).unwrap();
    /// let mut v: Vec<u32> = std::iter::from_fn(|| s.next()).map(|r| r.unwrap()).collect();
    /// assert_ne!(v, (0..10).collect::<Vec<_>>());
    /// v.sort();
    /// assert_eq!(v, (0..10).collect::<Vec<_>>());
    /// ```
    fn shuffled(self, buffer_size: usize, seed: u64) -> Shuffle<Self>
    where
        Self: Sized,
    {
        Shuffle::new(self, buffer_size, seed)
    }

    /// This source read ahead on its own thread, up to `depth` items; see [`Prefetch`].
    fn prefetched(self, depth: usize) -> Prefetch<Self>
    where
        Self: Sized,
    {
        Prefetch::new(self, depth)
    }
}

impl<S: Source + ?Sized> Source for Box<S> {
    type Item = S::Item;
    fn fingerprint(&self) -> SourceFingerprint {
        (**self).fingerprint()
    }
    fn start(&mut self, epoch: u64) -> Result<(), SourceError> {
        (**self).start(epoch)
    }
    fn next(&mut self) -> Option<Result<Self::Item, SourceError>> {
        (**self).next()
    }
    fn skip(&mut self) -> Option<Result<(), SourceError>> {
        (**self).skip()
    }
    fn state(&self) -> SourceState {
        (**self).state()
    }
    fn restore(&mut self, state: &SourceState) -> Result<(), SourceError> {
        (**self).restore(state)
    }
}

/// An iterator made anew for every epoch by `make(epoch)`, as a [`Source`]: its state is the
/// epoch and the count of items read; restoring makes the epoch's iterator again and skips
/// that many (so `make` must give the same items for the same epoch).
///
/// ```
/// use loader::source::{IterSource, Source};
/// let mut s = IterSource::new(|epoch| (0..5u64).map(move |i| 10 * epoch + i));
/// s.start(1).unwrap();
/// assert_eq!(s.next(), Some(Ok(10)));
/// let state = s.state();
/// assert_eq!(s.next(), Some(Ok(11)));
/// s.restore(&state).unwrap();
/// assert_eq!(s.next(), Some(Ok(11)));
/// ```
pub struct IterSource<F, I> {
    make: F,
    it: Option<I>,
    epoch: u64,
    pos: u64,
}

impl<F, I> IterSource<F, I> {
    /// A source of `make(epoch)`'s items.
    pub fn new<J>(make: F) -> Self
    where
        F: Fn(u64) -> J,
        J: IntoIterator<IntoIter = I>,
    {
        IterSource {
            make,
            it: None,
            epoch: 0,
            pos: 0,
        }
    }
}

impl<F, J, I> Source for IterSource<F, I>
where
    F: Fn(u64) -> J + Send + 'static,
    J: IntoIterator<IntoIter = I>,
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    type Item = I::Item;

    fn fingerprint(&self) -> SourceFingerprint {
        SourceFingerprint::new("iterator", &[])
    }

    fn start(&mut self, epoch: u64) -> Result<(), SourceError> {
        self.epoch = epoch;
        self.pos = 0;
        self.it = Some((self.make)(epoch).into_iter());
        Ok(())
    }

    fn next(&mut self) -> Option<Result<Self::Item, SourceError>> {
        let v = self.it.as_mut()?.next()?;
        self.pos += 1;
        Some(Ok(v))
    }

    fn state(&self) -> SourceState {
        SourceState::new("iterator", vec![self.epoch, self.pos])
    }

    fn restore(&mut self, state: &SourceState) -> Result<(), SourceError> {
        let w = state.expect("iterator", 2)?;
        let (epoch, pos) = (w[0], w[1]);
        self.start(epoch)?;
        let it = self.it.as_mut().expect("started");
        for i in 0..pos {
            if it.next().is_none() {
                return Err(SourceError::State(format!(
                    "the state is at item {pos} of epoch {epoch}; the iterator has {i}"
                )));
            }
        }
        self.pos = pos;
        Ok(())
    }
}

/// A stateful source's part of a [`PipelineState`]: what it was taken from and where it
/// stood at the pipeline state's `positions_done`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCheckpoint {
    /// What the source reads.
    pub fingerprint: SourceFingerprint,
    /// The source position `state` stands at (at most `positions_done`: the items from here
    /// up are read again on resume and those already handed out skipped).
    pub position: u64,
    /// The source's state there; `None` at the start of the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SourceState>,
}

/// The source's states at the positions the consumer has not passed: what links a stateful
/// source to the pipeline's state (crate-private).
pub(crate) struct Link {
    fingerprint: SourceFingerprint,
    st: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    /// The epoch the snapshots are of.
    epoch: u64,
    /// `(position, state before the item at position)`, increasing positions, without gaps
    /// from the first one up to the last item read.
    snaps: VecDeque<(u64, SourceState)>,
    /// Where the next run of `epoch` starts: `(epoch, position, state)`.
    start: Option<(u64, u64, SourceState)>,
}

impl Link {
    fn new(fingerprint: SourceFingerprint) -> Self {
        Link {
            fingerprint,
            st: Mutex::new(LinkState::default()),
        }
    }

    /// The checkpoint for the pipeline at `(epoch, prefix)`.
    pub(crate) fn checkpoint(&self, epoch: u64, prefix: u64) -> SourceCheckpoint {
        let st = lock(&self.st);
        let at = |position: u64, state: Option<SourceState>| SourceCheckpoint {
            fingerprint: self.fingerprint.clone(),
            position,
            state,
        };
        if st.epoch == epoch {
            let i = st.snaps.partition_point(|(p, _)| *p <= prefix);
            if let Some(i) = i.checked_sub(1) {
                let (p, s) = &st.snaps[i];
                return at(*p, Some(s.clone()));
            }
        }
        match &st.start {
            Some((e, p, s)) if *e == epoch && *p <= prefix => at(*p, Some(s.clone())),
            _ => at(0, None),
        }
    }

    /// Refuse a state taken from another source.
    pub(crate) fn check(&self, state: &PipelineState) -> Result<(), PipelineError> {
        let fresh = state.positions_done == 0 && state.done.is_empty() && state.partial.is_empty();
        let Some(cp) = &state.source else {
            if fresh {
                // The start of an epoch: nothing of the source to restore.
                return Ok(());
            }
            return Err(PipelineError::State(format!(
                "state was not taken from a stateful source; this pipeline's source is {}",
                self.fingerprint
            )));
        };
        if let Some(m) = cp.fingerprint.differs(&self.fingerprint) {
            return Err(PipelineError::State(m));
        }
        if cp.position > state.positions_done {
            return Err(PipelineError::State(format!(
                "the source's state is at position {}, after positions_done {}",
                cp.position, state.positions_done
            )));
        }
        Ok(())
    }

    /// The next run of `state.epoch` starts at the state's source checkpoint.
    pub(crate) fn restore(&self, state: &PipelineState) {
        let mut st = lock(&self.st);
        st.snaps.clear();
        st.start = state
            .source
            .as_ref()
            .and_then(|cp| cp.state.clone().map(|s| (state.epoch, cp.position, s)));
    }

    /// A run of `epoch` opens with the pipeline at `prefix`: start it from the latest state
    /// at or below `prefix` (the restored one, or one of the last run of this epoch).
    pub(crate) fn resume_at(&self, epoch: u64, prefix: u64) {
        let mut st = lock(&self.st);
        if st
            .start
            .as_ref()
            .is_some_and(|(e, p, _)| *e == epoch && *p <= prefix)
        {
            return;
        }
        st.start = None;
        if st.epoch == epoch && prefix > 0 {
            let i = st.snaps.partition_point(|(p, _)| *p <= prefix);
            if let Some(i) = i.checked_sub(1) {
                let (p, s) = st.snaps[i].clone();
                st.start = Some((epoch, p, s));
            }
        }
    }
}

/// The feed of one run of a stateful source.
struct StatefulFeed<T> {
    source: Arc<Mutex<Box<dyn Source<Item = T>>>>,
    link: Arc<Link>,
    pos: u64,
    /// The source could not be started or restored: that error, then the end.
    broken: Option<String>,
    ended: bool,
}

impl<T: Send + 'static> Feed for StatefulFeed<T> {
    fn next(&mut self) -> Fed {
        if self.ended {
            return Fed::End;
        }
        if let Some(m) = self.broken.take() {
            self.ended = true;
            return Fed::Failed(self.pos, m);
        }
        let mut source = lock(&self.source);
        match source.next() {
            None => {
                self.ended = true;
                Fed::End
            }
            Some(r) => {
                let p = self.pos;
                self.pos += 1;
                let state = source.state();
                drop(source);
                lock(&self.link.st).snaps.push_back((self.pos, state));
                match r {
                    Ok(v) => Fed::Item(p, Box::new(v)),
                    Err(e) => Fed::Failed(p, e.to_string()),
                }
            }
        }
    }

    fn total(&self) -> Option<u64> {
        None
    }

    fn resolved(&mut self, prefix: u64) {
        let mut st = lock(&self.link.st);
        while st.snaps.len() > 1 && st.snaps[1].0 <= prefix {
            st.snaps.pop_front();
        }
    }
}

impl Pipeline<()> {
    /// A pipeline whose source is a stateful [`Source`]: shards, a shuffle buffer, any
    /// stream. Items are pulled as the first segment has room (the window ahead of the
    /// consumer, never the epoch); [`Pipeline::state`] records the source's own state, so
    /// that [`Pipeline::restore`] resumes it exactly and refuses a state of another source
    /// (another shard list, rank, world size, seed or buffer size) with one line. A source
    /// item that fails is an error at its position naming the stage `source`.
    ///
    /// ```
    /// use loader::source::IterSource;
    /// use loader::{Pipeline, Stage};
    ///
    /// let mut p = Pipeline::from_stateful(IterSource::new(|_| 0..1_000u32))
    ///     .map(Stage::cpu("double"), |x| 2 * x)
    ///     .build()?;
    /// let v: Vec<u32> = p.epoch(0).map(|r| r.unwrap()).collect();
    /// assert_eq!(v, (0..1_000).map(|x| 2 * x).collect::<Vec<_>>());
    /// # Ok::<(), loader::PipelineError>(())
    /// ```
    pub fn from_stateful<S: Source>(source: S) -> PipelineBuilder<S::Item> {
        let link = Arc::new(Link::new(source.fingerprint()));
        let source: Arc<Mutex<Box<dyn Source<Item = S::Item>>>> =
            Arc::new(Mutex::new(Box::new(source)));
        let l = Arc::clone(&link);
        let feed: FeedFactory = Arc::new(move |epoch| {
            let mut s = lock(&source);
            let start = {
                let mut st = lock(&l.st);
                st.start.take().filter(|(e, _, _)| *e == epoch)
            };
            let (pos, r) = match start {
                Some((_, pos, state)) => (pos, s.restore(&state)),
                None => (0, s.start(epoch)),
            };
            let broken = r.err().map(|e| e.to_string());
            let state = s.state();
            drop(s);
            {
                let mut st = lock(&l.st);
                st.epoch = epoch;
                st.snaps.clear();
                st.snaps.push_back((pos, state));
            }
            Box::new(StatefulFeed {
                source: Arc::clone(&source),
                link: Arc::clone(&l),
                pos,
                broken,
                ended: false,
            }) as Box<dyn Feed>
        });
        PipelineBuilder::stateful(feed, link)
    }
}
