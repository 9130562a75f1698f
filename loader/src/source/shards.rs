//! Shards: a list of files read by one rank each, every sample exactly once across ranks.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use scheduler::SmallRng;

use super::{Source, SourceError, SourceFingerprint, SourceState};

/// The samples of one shard, from the one it was opened at: `Ok(Some(sample))` for a sample
/// this rank reads, `Ok(None)` for one it steps over (not read into memory), an `Err` for a
/// sample that cannot be read (it counts as a sample: the reader goes on after it, or ends
/// there if it cannot, and does not give it again when opened past it).
///
/// Any such iterator is one through [`IterSamples`]; a reader that can pass over a sample
/// more cheaply than reading it (a tar shard seeks past its data) implements
/// [`ShardSamples::skip_sample`] itself.
pub type ShardIter<T> = Box<dyn ShardSamples<T>>;

/// The samples of one open shard (see [`ShardIter`]), with a way to pass over the next one
/// without reading it.
pub trait ShardSamples<T>: Iterator<Item = Result<Option<T>, SourceError>> + Send {
    /// Pass over the next sample as [`Iterator::next`] would, without making it: `Ok(true)`
    /// for a sample this rank reads (passed over all the same), `Ok(false)` for one it steps
    /// over, an `Err` for a sample that cannot be read (it counts as a sample, as in `next`),
    /// `None` at the end of the shard. The samples after it are the same as after `next`.
    ///
    /// By default the sample is read and dropped.
    fn skip_sample(&mut self) -> Option<Result<bool, SourceError>> {
        self.next().map(|r| r.map(|x| x.is_some()))
    }
}

/// Any iterator of samples as [`ShardSamples`] whose [`skip_sample`](ShardSamples::skip_sample)
/// reads the sample and drops it.
///
/// ```
/// use loader::source::{IterSamples, ShardIter, ShardSamples};
/// let mut it: ShardIter<u32> = IterSamples::boxed([Ok(Some(1)), Ok(None), Ok(Some(3))]);
/// assert_eq!(it.skip_sample(), Some(Ok(true)));
/// assert_eq!(it.skip_sample(), Some(Ok(false)));
/// assert_eq!(it.next(), Some(Ok(Some(3))));
/// assert!(it.next().is_none());
/// ```
pub struct IterSamples<I>(pub I);

impl<I> IterSamples<I> {
    /// `it`'s samples, boxed as a [`ShardIter`].
    pub fn boxed<T>(it: impl IntoIterator<IntoIter = I>) -> ShardIter<T>
    where
        I: Iterator<Item = Result<Option<T>, SourceError>> + Send + 'static,
    {
        Box::new(IterSamples(it.into_iter()))
    }
}

impl<I: Iterator> Iterator for IterSamples<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        self.0.next()
    }
}

impl<T, I> ShardSamples<T> for IterSamples<I> where
    I: Iterator<Item = Result<Option<T>, SourceError>> + Send
{
}

/// Reads one shard file into samples; see [`Shards`].
pub trait ShardReader: Send + Sync + 'static {
    /// A sample.
    type Item: Send + 'static;

    /// The reader's name, part of the shards' fingerprint (`tar`, `jsonl`, `file`, …).
    fn name(&self) -> String;

    /// Open `path` standing before sample `from` (the samples before it are stepped over as
    /// cheaply as the format allows); sample `i` is read only if `i % every == offset`
    /// (`every` ≥ 1), the others are given as `Ok(None)`.
    ///
    /// # Errors
    /// If the file cannot be opened: that shard's one failed item.
    fn open(
        &self,
        path: &Path,
        from: u64,
        every: u64,
        offset: u64,
    ) -> Result<ShardIter<Self::Item>, SourceError>;
}

/// One file is one sample: its bytes.
///
/// ```
/// use loader::source::{Shards, Source, WholeFile};
/// let dir = std::env::temp_dir().join(format!("schedlab-doc-wholefile-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let paths: Vec<_> = (0..3).map(|i| {
///     let p = dir.join(format!("{i}.bin"));
///     std::fs::write(&p, [i as u8; 2]).unwrap();
///     p
/// }).collect();
/// let mut s = Shards::new(paths, WholeFile);
/// s.start(0).unwrap();
/// let v: Vec<Vec<u8>> = std::iter::from_fn(|| s.next()).map(|r| r.unwrap()).collect();
/// assert_eq!(v, vec![vec![0, 0], vec![1, 1], vec![2, 2]]);
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct WholeFile;

impl ShardReader for WholeFile {
    type Item = Vec<u8>;

    fn name(&self) -> String {
        "file".into()
    }

    fn open(
        &self,
        path: &Path,
        from: u64,
        every: u64,
        offset: u64,
    ) -> Result<ShardIter<Vec<u8>>, SourceError> {
        Ok(Box::new(OneFile {
            path: path.to_path_buf(),
            left: from == 0,
            wanted: offset % every.max(1) == 0,
        }))
    }
}

/// The one sample of a [`WholeFile`] shard: read when it is taken, not when it is passed
/// over.
struct OneFile {
    path: PathBuf,
    left: bool,
    wanted: bool,
}

impl Iterator for OneFile {
    type Item = Result<Option<Vec<u8>>, SourceError>;
    fn next(&mut self) -> Option<Self::Item> {
        if !std::mem::take(&mut self.left) {
            return None;
        }
        if !self.wanted {
            return Some(Ok(None));
        }
        Some(
            std::fs::read(&self.path)
                .map(Some)
                .map_err(|e| io_error(&self.path, &e)),
        )
    }
}

impl ShardSamples<Vec<u8>> for OneFile {
    fn skip_sample(&mut self) -> Option<Result<bool, SourceError>> {
        std::mem::take(&mut self.left).then_some(Ok(self.wanted))
    }
}

/// A reader from a function `path → iterator of samples` (its error, if it cannot open the
/// file, is that shard's failed item). Samples before a resume point are made and dropped.
///
/// ```
/// use loader::source::{FnReader, Shards, Source};
/// let reader = FnReader::new("lines", |p: &std::path::Path| {
///     Ok::<_, String>((0..2).map(|i| format!("{}:{i}", p.display())).collect::<Vec<_>>())
/// });
/// let mut s = Shards::new(vec!["a".into(), "b".into()], reader);
/// s.start(0).unwrap();
/// let v: Vec<String> = std::iter::from_fn(|| s.next()).map(|r| r.unwrap()).collect();
/// assert_eq!(v, ["a:0", "a:1", "b:0", "b:1"]);
/// ```
pub struct FnReader<F> {
    name: String,
    f: F,
}

impl<F> FnReader<F> {
    /// A reader named `name` (part of the fingerprint) that calls `f(path)`.
    pub fn new(name: &str, f: F) -> Self {
        FnReader {
            name: name.to_string(),
            f,
        }
    }
}

impl<F, I, E> ShardReader for FnReader<F>
where
    F: Fn(&Path) -> Result<I, E> + Send + Sync + 'static,
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
    E: fmt::Display,
{
    type Item = I::Item;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn open(
        &self,
        path: &Path,
        from: u64,
        every: u64,
        offset: u64,
    ) -> Result<ShardIter<I::Item>, SourceError> {
        let it = (self.f)(path).map_err(|e| SourceError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let every = every.max(1);
        Ok(IterSamples::boxed(
            it.into_iter()
                .zip(0u64..)
                .skip(from as usize)
                .map(move |(x, i)| Ok((i % every == offset).then_some(x))),
        ))
    }
}

pub(crate) fn io_error(path: &Path, e: &std::io::Error) -> SourceError {
    SourceError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Shard files split over `world_size` ranks: every sample of every shard is read exactly
/// once across the ranks, each shard by one rank only.
///
/// **The rule.** Each epoch orders the shards (as listed, or reshuffled per epoch from `seed`
/// with [`shuffle`](Shards::shuffle): the same order on every rank), then rank `r` takes the
/// shards at positions `r, r + world, r + 2·world, …` of that order and reads them in turn.
/// When the shard count `n` does not divide by `world_size`, ranks `< n mod world` get one
/// shard more: per-rank sample counts differ by at most one shard's samples when shards are
/// the same size (in general by at most the sum of the largest ⌈n / world⌉ minus the
/// smallest ⌊n / world⌋ shard sizes). With [`balanced`](Shards::balanced), the first
/// `⌊n / world⌋ · world` shards are dealt out whole as above and the `n mod world` left over
/// are read by every rank, which keeps sample `j` of them (counting across them in order)
/// when `j mod world = r` and steps over the others without reading them where the format
/// allows (tar): with shards of one size, per-rank counts differ by at most 1.
///
/// The state is the epoch, the shard cursor, the sample offset in the shard and the count
/// of leftover samples seen; resuming opens the shard there and steps over the samples
/// before it. The fingerprint names the shard count, a hash of the list, the rank, the world
/// size, the shuffle seed, `balanced` and the reader.
///
/// ```
/// use loader::source::{FnReader, Shards, Source};
/// let reader = FnReader::new("ten", |p: &std::path::Path| {
///     let s = p.display().to_string();
///     Ok::<_, String>((0..10).map(move |i| format!("{s}/{i}")))
/// });
/// let reader = std::sync::Arc::new(reader);
/// let paths: Vec<std::path::PathBuf> = (0..5).map(|i| format!("shard{i}").into()).collect();
/// let mut all = Vec::new();
/// for rank in 0..2 {
///     let mut s = Shards::new(paths.clone(), reader.clone()).rank(rank, 2)?.balanced(true);
///     s.start(0).unwrap();
///     let got: Vec<String> = std::iter::from_fn(|| s.next()).map(|r| r.unwrap()).collect();
///     assert_eq!(got.len(), 25); // 2 whole shards and half of the fifth
///     all.extend(got);
/// }
/// all.sort();
/// all.dedup();
/// assert_eq!(all.len(), 50); // every sample once
/// # Ok::<(), loader::source::SourceError>(())
/// ```
pub struct Shards<R: ShardReader> {
    paths: Arc<Vec<PathBuf>>,
    reader: Arc<R>,
    rank: usize,
    world: usize,
    seed: Option<u64>,
    balanced: bool,
    // Where it stands.
    epoch: u64,
    /// This rank's shards this epoch: `(index in paths, split)`.
    plan: Vec<(usize, bool)>,
    cursor: usize,
    offset: u64,
    /// Leftover samples (of split shards) seen so far this epoch.
    split_seen: u64,
    cur: Option<ShardIter<R::Item>>,
}

impl<R: ShardReader> ShardReader for Arc<R> {
    type Item = R::Item;
    fn name(&self) -> String {
        (**self).name()
    }
    fn open(
        &self,
        path: &Path,
        from: u64,
        every: u64,
        offset: u64,
    ) -> Result<ShardIter<R::Item>, SourceError> {
        (**self).open(path, from, every, offset)
    }
}

impl<R: ShardReader> Shards<R> {
    /// All of `paths`, read in order by `reader`, on one rank.
    pub fn new(paths: Vec<PathBuf>, reader: R) -> Self {
        Shards {
            paths: Arc::new(paths),
            reader: Arc::new(reader),
            rank: 0,
            world: 1,
            seed: None,
            balanced: false,
            epoch: 0,
            plan: Vec::new(),
            cursor: 0,
            offset: 0,
            split_seen: 0,
            cur: None,
        }
    }

    /// This rank's part of `world_size` ranks.
    ///
    /// # Errors
    /// [`SourceError::Config`] if `world_size` is 0 or `rank` ≥ `world_size`.
    pub fn rank(mut self, rank: usize, world_size: usize) -> Result<Self, SourceError> {
        if world_size == 0 {
            return Err(SourceError::Config {
                field: "world_size".into(),
                message: "must be >= 1, got 0".into(),
            });
        }
        if rank >= world_size {
            return Err(SourceError::Config {
                field: "rank".into(),
                message: format!("must be in 0..{world_size} (world_size), got {rank}"),
            });
        }
        self.rank = rank;
        self.world = world_size;
        Ok(self)
    }

    /// Reshuffle the shard order every epoch from `seed` (the same on every rank).
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Split the leftover shards' samples over the ranks (see the type's docs).
    pub fn balanced(mut self, on: bool) -> Self {
        self.balanced = on;
        self
    }

    /// The shards' indices (in `paths`) this rank reads in `epoch`, in order, each with
    /// whether it is a leftover shard whose samples are split over the ranks.
    ///
    /// ```
    /// use loader::source::{Shards, WholeFile};
    /// let paths: Vec<std::path::PathBuf> = (0..5).map(|i| format!("{i}").into()).collect();
    /// let s = Shards::new(paths, WholeFile).rank(1, 2)?;
    /// assert_eq!(s.plan(0), vec![(1, false), (3, false)]);
    /// let s = s.balanced(true);
    /// assert_eq!(s.plan(0), vec![(1, false), (3, false), (4, true)]);
    /// # Ok::<(), loader::source::SourceError>(())
    /// ```
    pub fn plan(&self, epoch: u64) -> Vec<(usize, bool)> {
        let n = self.paths.len();
        let mut order: Vec<usize> = (0..n).collect();
        if let Some(seed) = self.seed {
            let mut rng = SmallRng::for_stream(seed, epoch);
            for i in (1..n).rev() {
                order.swap(i, rng.below(i + 1));
            }
        }
        let whole = if self.balanced {
            n / self.world * self.world
        } else {
            n
        };
        let mut plan: Vec<(usize, bool)> = order[..whole]
            .iter()
            .enumerate()
            .filter(|(i, _)| i % self.world == self.rank)
            .map(|(_, &s)| (s, false))
            .collect();
        plan.extend(order[whole..].iter().map(|&s| (s, true)));
        plan
    }

    /// The next sample of this rank: made (`Ok(Some)`) if `take`, else passed over
    /// (`Ok(None)`).
    fn step(&mut self, take: bool) -> Option<Result<Option<R::Item>, SourceError>> {
        loop {
            let &(idx, split) = self.plan.get(self.cursor)?;
            let w = self.world as u64;
            if self.cur.is_none() {
                let (every, offset) = if split {
                    // Sample i of this shard is leftover sample (split_seen - offset + i).
                    let base = (self.split_seen - self.offset) % w;
                    (w, (self.rank as u64 + w - base) % w)
                } else {
                    (1, 0)
                };
                match self
                    .reader
                    .open(&self.paths[idx], self.offset, every, offset)
                {
                    Ok(it) => self.cur = Some(it),
                    Err(e) => {
                        self.next_shard();
                        return Some(Err(e));
                    }
                }
            }
            let cur = self.cur.as_mut().expect("opened above");
            let got = if take {
                cur.next().map(|r| r.map(|x| x.map(Some)))
            } else {
                cur.skip_sample()
                    .map(|r| r.map(|mine| mine.then_some(None)))
            };
            match got {
                None => self.next_shard(),
                Some(Ok(x)) => {
                    self.offset += 1;
                    if split {
                        self.split_seen += 1;
                    }
                    if let Some(x) = x {
                        return Some(Ok(x));
                    }
                }
                Some(Err(e)) => {
                    // A failed sample: the reader goes on after it (or ends the shard).
                    self.offset += 1;
                    if split {
                        self.split_seen += 1;
                    }
                    return Some(Err(e));
                }
            }
        }
    }

    fn next_shard(&mut self) {
        self.cur = None;
        self.cursor += 1;
        self.offset = 0;
    }
}

/// FNV-1a over the paths: the shard list's hash in the fingerprint.
fn list_hash(paths: &[PathBuf]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in paths {
        for b in p.to_string_lossy().bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

impl<R: ShardReader> Source for Shards<R> {
    type Item = R::Item;

    fn fingerprint(&self) -> SourceFingerprint {
        SourceFingerprint::new(
            "shards",
            &[
                ("shards", self.paths.len().to_string()),
                ("list", format!("{:016x}", list_hash(&self.paths))),
                ("rank", self.rank.to_string()),
                ("world_size", self.world.to_string()),
                (
                    "shuffle",
                    self.seed.map_or("off".into(), |s| format!("seed {s}")),
                ),
                ("balanced", self.balanced.to_string()),
                ("reader", self.reader.name()),
            ],
        )
    }

    fn start(&mut self, epoch: u64) -> Result<(), SourceError> {
        // A shard listed twice would be read twice (by two ranks, or twice by one): every
        // sample exactly once means each path once. To weigh a shard up, mix it ([`Mix`]).
        let mut seen = std::collections::HashMap::with_capacity(self.paths.len());
        for (j, p) in self.paths.iter().enumerate() {
            if let Some(i) = seen.insert(p, j) {
                return Err(SourceError::Config {
                    field: format!("paths[{j}]"),
                    message: format!(
                        "{} is paths[{i}] again; each shard is read once (to weigh a source up, mix it)",
                        p.display()
                    ),
                });
            }
        }
        self.epoch = epoch;
        self.plan = self.plan(epoch);
        self.cursor = 0;
        self.offset = 0;
        self.split_seen = 0;
        self.cur = None;
        Ok(())
    }

    fn next(&mut self) -> Option<Result<R::Item, SourceError>> {
        self.step(true)
            .map(|r| r.map(|x| x.expect("a sample taken is made")))
    }

    /// Pass over the next sample without reading it where the reader allows (a tar shard
    /// seeks past its data): [`ShardSamples::skip_sample`].
    fn skip(&mut self) -> Option<Result<(), SourceError>> {
        self.step(false).map(|r| r.map(|_| ()))
    }

    /// `[epoch, shard cursor, sample offset in the shard, leftover samples seen]`.
    fn state(&self) -> SourceState {
        SourceState::new(
            "shards",
            vec![self.epoch, self.cursor as u64, self.offset, self.split_seen],
        )
    }

    fn restore(&mut self, state: &SourceState) -> Result<(), SourceError> {
        let w = state.expect("shards", 4)?;
        let (epoch, cursor, offset, seen) = (w[0], w[1], w[2], w[3]);
        self.start(epoch)?;
        let split = self
            .plan
            .get(cursor as usize)
            .is_some_and(|&(_, split)| split);
        if cursor > self.plan.len() as u64 || (split && seen < offset) {
            return Err(SourceError::State(format!(
                "shard cursor {cursor} of epoch {epoch}: this rank reads {} shards",
                self.plan.len()
            )));
        }
        self.cursor = cursor as usize;
        self.offset = offset;
        self.split_seen = seen;
        Ok(())
    }
}
