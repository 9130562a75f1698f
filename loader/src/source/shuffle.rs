//! A seeded shuffle buffer over any source, whose state is positions, not items.

use std::collections::{BTreeSet, HashMap, VecDeque};

use scheduler::SmallRng;

use super::{Source, SourceError, SourceFingerprint, SourceState};

/// Distinguishes the buffer's random stream from a shard order drawn from the same seed.
const STREAM_SALT: u64 = 0x5348_5546_464c_4531;

/// A buffered item and its source position.
type Buffered<T> = (u64, Result<T, SourceError>);

/// A shuffle buffer of `buffer_size` items over a source: it keeps the buffer full from the
/// source and gives a uniformly chosen buffered item each time (at the end, the rest in
/// random order). The order is a function of the seed, the epoch, the source's items and the
/// buffer size only: not of threads, workers or timing.
///
/// Its state is small whatever the buffer holds: the epoch, the count of items given, the
/// source's length if it ended, and the source's state at (or before) the oldest item still
/// buffered. The choices depend on nothing but the seed and those counts, so restore replays
/// them on positions (no item read) to learn which positions the buffer held, then reads the
/// source again from the oldest of them, keeping those and passing over the others with
/// [`Source::skip`] (a tar shard seeks past their data: only the buffered samples are
/// read); a source without a cheap skip makes them again, about
/// `buffer_size · ln(buffer_size)` items in the worst case. Either way the items after the
/// restore are the same, in the same order, as an uninterrupted run's. Memory: the buffered items, plus one source
/// state per `max(64, buffer_size / 16)` positions still spanned by the buffer.
///
/// A `buffer_size` of 0 is refused when the epoch starts (that epoch's one failed item).
///
/// ```
/// use loader::source::{IterSource, Shuffle, Source};
/// let mut s = Shuffle::new(IterSource::new(|_| 0..1_000u32), 100, 7);
/// s.start(0).unwrap();
/// let first: Vec<u32> = (0..300).map(|_| s.next().unwrap().unwrap()).collect();
/// let state = s.state();
/// let rest: Vec<u32> = std::iter::from_fn(|| s.next()).map(|r| r.unwrap()).collect();
///
/// let mut t = Shuffle::new(IterSource::new(|_| 0..1_000u32), 100, 7);
/// t.restore(&state).unwrap();
/// let again: Vec<u32> = std::iter::from_fn(|| t.next()).map(|r| r.unwrap()).collect();
/// assert_eq!(again, rest);
/// assert!(serde_json_len(&state) < 200); // positions, not 100 items
/// # fn serde_json_len(s: &loader::source::SourceState) -> usize { format!("{s:?}").len() }
/// ```
pub struct Shuffle<S: Source> {
    inner: S,
    size: usize,
    seed: u64,
    every: u64,
    epoch: u64,
    rng: SmallRng,
    buf: Vec<Buffered<S::Item>>,
    /// The positions in `buf`.
    members: BTreeSet<u64>,
    /// Source items read (the next source position).
    read: u64,
    /// Items given.
    given: u64,
    /// The source's length, once it ended.
    end: Option<u64>,
    /// The source's state before position p, for p from at or below the oldest buffered
    /// position up.
    snaps: VecDeque<(u64, SourceState)>,
}

impl<S: Source> Shuffle<S> {
    /// `inner` through a buffer of `buffer_size` items, shuffled from `seed` (and the epoch).
    pub fn new(inner: S, buffer_size: usize, seed: u64) -> Self {
        Shuffle {
            inner,
            size: buffer_size,
            seed,
            every: (buffer_size as u64 / 16).max(64),
            epoch: 0,
            rng: SmallRng::for_stream(seed ^ STREAM_SALT, 0),
            buf: Vec::new(),
            members: BTreeSet::new(),
            read: 0,
            given: 0,
            end: None,
            snaps: VecDeque::new(),
        }
    }

    fn check(&self) -> Result<(), SourceError> {
        if self.size == 0 {
            return Err(SourceError::Config {
                field: "buffer_size".into(),
                message: "must be >= 1, got 0".into(),
            });
        }
        Ok(())
    }

    fn reset(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.rng = SmallRng::for_stream(self.seed ^ STREAM_SALT, epoch);
        self.buf.clear();
        self.members.clear();
        self.read = 0;
        self.given = 0;
        self.end = None;
        self.snaps.clear();
    }

    fn fill(&mut self) {
        while self.buf.len() < self.size && self.end.is_none() {
            if self.read % self.every == 0 || self.snaps.is_empty() {
                self.snaps.push_back((self.read, self.inner.state()));
            }
            match self.inner.next() {
                None => self.end = Some(self.read),
                Some(r) => {
                    self.buf.push((self.read, r));
                    self.members.insert(self.read);
                    self.read += 1;
                }
            }
        }
    }
}

impl<S: Source> Source for Shuffle<S> {
    type Item = S::Item;

    fn fingerprint(&self) -> SourceFingerprint {
        SourceFingerprint::new(
            "shuffle",
            &[
                ("buffer_size", self.size.to_string()),
                ("seed", self.seed.to_string()),
            ],
        )
        .over(self.inner.fingerprint())
    }

    fn start(&mut self, epoch: u64) -> Result<(), SourceError> {
        self.check()?;
        self.reset(epoch);
        self.inner.start(epoch)
    }

    fn next(&mut self) -> Option<Result<S::Item, SourceError>> {
        if self.size == 0 {
            return None;
        }
        self.fill();
        if self.buf.is_empty() {
            return None;
        }
        let j = self.rng.below(self.buf.len());
        let (p, item) = self.buf.swap_remove(j);
        self.members.remove(&p);
        self.given += 1;
        let oldest = self.members.first().copied().unwrap_or(self.read);
        while self.snaps.len() > 1 && self.snaps[1].0 <= oldest {
            self.snaps.pop_front();
        }
        Some(item)
    }

    /// `[epoch, items given, source length + 1 (0: not ended), position of the source state]`
    /// and the source's state there.
    fn state(&self) -> SourceState {
        let (at, inner) = match self.snaps.front() {
            Some((p, s)) => (*p, s.clone()),
            None => (self.read, self.inner.state()),
        };
        SourceState {
            kind: "shuffle".into(),
            words: vec![self.epoch, self.given, self.end.map_or(0, |n| n + 1), at],
            inner: Some(Box::new(inner)),
            children: Vec::new(),
        }
    }

    fn restore(&mut self, state: &SourceState) -> Result<(), SourceError> {
        self.check()?;
        let w = state.expect("shuffle", 4)?;
        let (epoch, given, end, at) = (w[0], w[1], w[2].checked_sub(1), w[3]);
        let Some(inner_state) = state.inner.as_deref() else {
            return Err(SourceError::State(
                "a shuffle state without its source's state".into(),
            ));
        };
        self.reset(epoch);
        // Replay the choices on positions: which ones the buffer holds, in which slots.
        let mut slots: Vec<u64> = Vec::with_capacity(self.size.min(1 << 20));
        let mut read = 0u64;
        for k in 0..given {
            while slots.len() < self.size && end != Some(read) {
                slots.push(read);
                read += 1;
            }
            if slots.is_empty() {
                return Err(SourceError::State(format!(
                    "the state has {given} items given; the source ended after {k}"
                )));
            }
            let j = self.rng.below(slots.len());
            slots.swap_remove(j);
        }
        if slots.iter().any(|&p| p < at) {
            return Err(SourceError::State(format!(
                "the source's state is at position {at}, after a buffered item"
            )));
        }
        // Read the source again from `at` and keep what the buffer held.
        self.inner.restore(inner_state)?;
        let wanted: HashMap<u64, usize> = slots.iter().enumerate().map(|(i, &p)| (p, i)).collect();
        let mut buf: Vec<Option<Buffered<S::Item>>> = (0..slots.len()).map(|_| None).collect();
        self.snaps.push_back((at, inner_state.clone()));
        for p in at..read {
            if p % self.every == 0 && p > at {
                self.snaps.push_back((p, self.inner.state()));
            }
            let ended = || {
                SourceError::State(format!(
                    "the source ended at position {p}; the state has {read} read"
                ))
            };
            match wanted.get(&p) {
                Some(&i) => buf[i] = Some((p, self.inner.next().ok_or_else(ended)?)),
                // Not in the buffer: passed over (not read where the source can), its
                // failure, if it failed, dropped as its item would be.
                None => {
                    let _passed: Result<(), SourceError> = self.inner.skip().ok_or_else(ended)?;
                }
            }
        }
        self.buf = buf.into_iter().flatten().collect();
        if self.buf.len() != slots.len() {
            return Err(SourceError::State(
                "the source did not give the buffered positions again".into(),
            ));
        }
        self.members = slots.into_iter().collect();
        self.read = read;
        self.given = given;
        self.end = end;
        let oldest = self.members.first().copied().unwrap_or(self.read);
        while self.snaps.len() > 1 && self.snaps[1].0 <= oldest {
            self.snaps.pop_front();
        }
        Ok(())
    }
}
