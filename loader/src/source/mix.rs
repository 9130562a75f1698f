//! Weighted interleaving of several sources: fixed or scheduled weights, deterministic,
//! resumed exactly, with per-source statistics.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use scheduler::SmallRng;

use super::{Source, SourceError, SourceFingerprint, SourceState};
use crate::pipeline::lock;

/// Distinguishes the mix's random stream from a shuffle or shard order of the same seed.
const STREAM_SALT: u64 = 0x4d49_585f_5345_4544;

/// A lag above this is behind its share (released); below, rounding.
const RELEASED: f64 = 1e-9;

/// The longest period (items) for which the interleave looks for a repeating order that keeps
/// every window within one item of its share.
const MAX_PERIOD: u64 = 64;
/// Search steps allowed for that order before the interleave does without it.
const SEARCH_BUDGET: u64 = 50_000;

/// Words of a mix state before the per-source words.
const HEAD: usize = 5;
/// Words per source: ended, its epoch, items taken, credit (f64 bits).
const PER: usize = 4;

/// How a [`Mix`] picks the source of the next item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixMode {
    /// Deterministic weighted round-robin by deadlines: each source's lag (its share times
    /// the items given, less the items taken from it) grows by its share every pick; among
    /// the sources behind (lag > 0) the one whose lag would reach 1 soonest is taken (the
    /// first on a tie). With fixed weights every prefix of `n` items holds `⌊n·p⌋` or
    /// `⌈n·p⌉` items of each source of share `p` (|lag| < 1), so every window of `N` items
    /// holds `N·p ± 2` (strictly less than 2 off). Where the fixed shares are whole numbers of
    /// items in a period of at most 64 and a period exists whose every window, repeated, is
    /// within one item of `N·p` (with the same prefixes), the mix searches it out once and
    /// repeats it while every source is in the mix (4/3/2/1: every window within ±1; 19/3/9
    /// has no such order at all). No seed. See `docs/streams.md` for the proof, the measured
    /// window bounds and why nginx's smooth round-robin is not used.
    Interleave,
    /// A seeded draw per item, each source with probability its share: reproducible for a
    /// seed and an epoch.
    Random,
}

/// When a [`Mix`]'s epoch ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixStop {
    /// At the first source that runs out (the other sources' remaining items are not read).
    FirstExhausted,
    /// When every source has run out: a source that ran out leaves the mix and the others
    /// go on with their weights renormalised (the credits start again at 0).
    AllExhausted,
    /// Never: a source that runs out starts its next epoch (its own epoch counter; the mix's
    /// epoch `e` starts every source at epoch `e`). A source that is empty right after such a
    /// restart leaves the mix, so that an empty source cannot spin.
    Never,
}

/// A weight schedule that may fail (its message ends the epoch, naming the step).
type ScheduleFn = dyn Fn(u64) -> Result<Vec<f64>, String> + Send + Sync;

/// The weights: fixed, or a function of the step (the items given so far in the epoch).
#[derive(Clone)]
enum Weights {
    Fixed(Vec<f64>),
    Schedule(Arc<ScheduleFn>, String),
}

/// Checked weights, scaled by their largest where their sum would overflow (each weight is
/// finite, but `[1e308, 1e308]` sums to infinity and every share would be 0); weights whose
/// sum is finite are kept as given, so the picks do not move by a rounding.
fn finite_sum(mut w: Vec<f64>) -> Vec<f64> {
    if !w.iter().sum::<f64>().is_finite() {
        let max = w.iter().copied().fold(0.0, f64::max);
        w.iter_mut().for_each(|x| *x /= max);
    }
    w
}

/// Check a weight vector: one finite weight `>= 0` per source, not all zero.
fn check_weights(w: &[f64], n: usize, field: &str) -> Result<(), SourceError> {
    let bad = |message: String| SourceError::Config {
        field: field.to_string(),
        message,
    };
    if w.len() != n {
        return Err(bad(format!(
            "expected {n} weights (one per source), got {}",
            w.len()
        )));
    }
    if let Some((i, v)) = w
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite() || **v < 0.0)
    {
        return Err(SourceError::Config {
            field: format!("{field}[{i}]"),
            message: format!("must be a finite number >= 0, got {v}"),
        });
    }
    if w.iter().all(|v| *v == 0.0) {
        return Err(bad(
            "at least one weight must be > 0 (0 pauses a source), got all zero".into(),
        ));
    }
    Ok(())
}

/// A mix's per-source counters, shared with [`Mix::stats_handle`]: since the epoch started
/// (or the mix was restored). Take a [`MixStats::snapshot`] at any time.
pub struct MixStats {
    names: Mutex<Vec<String>>,
    st: Mutex<StatsInner>,
}

#[derive(Default, Clone)]
struct StatsInner {
    items: u64,
    per: Vec<PerSource>,
}

#[derive(Default, Clone)]
struct PerSource {
    taken: u64,
    /// Σ of the source's target share over the items given.
    target: f64,
    /// Time spent in the source's `next()` (the wait for it, when it is prefetched).
    read_ns: u64,
}

/// One source's figures in a [`MixSnapshot`].
#[derive(Clone, Debug, PartialEq)]
pub struct MixSourceStats {
    /// The source's name ([`Mix::names`]; `source0`, `source1`, … by default).
    pub name: String,
    /// Items taken from it.
    pub taken: u64,
    /// Its realised share: `taken / items`.
    pub share: f64,
    /// Its target share: the mean over the items given of its weight over the total weight
    /// of the sources in the mix at that step.
    pub target_share: f64,
    /// Seconds spent in its `next()` (waiting for it, when it is [prefetched](super::Prefetch)).
    pub read_seconds: f64,
    /// `taken / read_seconds`: items per second of time spent reading it (`None` before it
    /// was read).
    pub read_rate: Option<f64>,
}

/// The figures of a [`Mix`] at one moment: see [`MixStats::snapshot`].
#[derive(Clone, Debug, PartialEq)]
pub struct MixSnapshot {
    /// Items the mix has given.
    pub items: u64,
    /// Each source's figures, in the mix's order.
    pub sources: Vec<MixSourceStats>,
    /// The source that holds the mix back: the one with the most read time per item of the
    /// mix (its read time per item × its target share). `None` before any read time.
    pub holding_back: Option<usize>,
}

impl MixStats {
    fn new(names: Vec<String>) -> Self {
        let n = names.len();
        MixStats {
            names: Mutex::new(names),
            st: Mutex::new(StatsInner {
                items: 0,
                per: vec![PerSource::default(); n],
            }),
        }
    }

    fn reset(&self) {
        let mut st = lock(&self.st);
        st.items = 0;
        st.per.iter_mut().for_each(|p| *p = PerSource::default());
    }

    /// The figures now.
    pub fn snapshot(&self) -> MixSnapshot {
        let st = lock(&self.st).clone();
        let names = lock(&self.names).clone();
        let n = st.items.max(1) as f64;
        let sources: Vec<MixSourceStats> = st
            .per
            .iter()
            .zip(names)
            .map(|(p, name)| {
                let read_seconds = p.read_ns as f64 * 1e-9;
                MixSourceStats {
                    name,
                    taken: p.taken,
                    share: p.taken as f64 / n,
                    target_share: p.target / n,
                    read_seconds,
                    read_rate: (p.read_ns > 0).then(|| p.taken as f64 / read_seconds),
                }
            })
            .collect();
        let holding_back = sources
            .iter()
            .enumerate()
            .filter(|(_, s)| s.taken > 0 && s.read_seconds > 0.0)
            .map(|(i, s)| (i, s.read_seconds / s.taken as f64 * s.target_share))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i);
        MixSnapshot {
            items: st.items,
            sources,
            holding_back,
        }
    }
}

impl fmt::Display for MixSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "mix: {} items", self.items)?;
        writeln!(
            f,
            "  {:<12} {:>10} {:>7} {:>7} {:>12}",
            "source", "taken", "share", "target", "read items/s"
        )?;
        for (i, s) in self.sources.iter().enumerate() {
            let rate = s.read_rate.map_or("-".to_string(), |r| format!("{r:.1}"));
            let mark = if self.holding_back == Some(i) {
                "  <- holds the mix back"
            } else {
                ""
            };
            writeln!(
                f,
                "  {:<12} {:>10} {:>7.4} {:>7.4} {:>12}{mark}",
                s.name, s.taken, s.share, s.target_share, rate
            )?;
        }
        Ok(())
    }
}

/// Several sources of one item type as one, interleaved by weight.
///
/// * Weights: fixed ([`Mix::new`]) or a schedule `step -> weights` ([`Mix::scheduled`], a
///   curriculum; `step` counts the items given in the epoch). A weight of 0 pauses its source
///   (it is not ended: it is read again when its weight comes back). The weights are
///   normalised over the sources still in the mix.
/// * [`MixMode`]: a deterministic interleave (default; a repeating order whose every window
///   is within one item of its share where the weights allow one, else earliest deadline
///   first) or seeded random draws.
/// * [`MixStop`]: when the epoch ends (default [`MixStop::FirstExhausted`]). With every
///   source still in the mix paused (weight 0), the epoch ends too.
/// * State: the epoch, the step, each source's state, epoch and credit, and the count of
///   random draws ([`SourceState::children`] holds the sources' states): restore gives the
///   same items in the same order (the random stream is replayed from the seed, the draw
///   count's worth of draws).
/// * Statistics: [`Mix::stats_handle`].
///
/// The mix reads its sources one after another on the thread that calls `next()`; wrap a
/// slow source in [`Prefetch`](super::Prefetch) ([`Source::prefetched`]) so that the sources
/// are read at once.
///
/// ```
/// use loader::source::{IterSource, Mix, MixStop, Source};
///
/// let code = IterSource::new(|_| (0..6).map(|i| format!("code{i}")));
/// let web = IterSource::new(|_| (0..3).map(|i| format!("web{i}")));
/// let mut mix = Mix::new(vec![Box::new(code), Box::new(web)], vec![2.0, 1.0])?
///     .stop(MixStop::AllExhausted);
/// mix.start(0)?;
/// let items: Vec<String> = std::iter::from_fn(|| mix.next()).map(|r| r.unwrap()).collect();
/// assert_eq!(items, ["code0", "code1", "web0", "code2", "code3", "web1", "code4", "code5", "web2"]);
/// assert_eq!(mix.stats_handle().snapshot().sources[0].taken, 6);
/// # Ok::<(), loader::source::SourceError>(())
/// ```
pub struct Mix<T> {
    sources: Vec<Box<dyn Source<Item = T>>>,
    weights: Weights,
    mode: MixMode,
    stop: MixStop,
    seed: u64,
    epoch: u64,
    step: u64,
    ended: bool,
    draws: u64,
    rng: SmallRng,
    out: Vec<bool>,
    src_epoch: Vec<u64>,
    taken: Vec<u64>,
    credit: Vec<f64>,
    /// For fixed weights in small whole ratios: a period of picks whose every window, repeated,
    /// is within one item of its share (see [`periodic_order`]); used while no source left.
    period: Option<Vec<usize>>,
    stats: Arc<MixStats>,
}

impl<T: Send + 'static> Mix<T> {
    fn make(sources: Vec<Box<dyn Source<Item = T>>>, weights: Weights) -> Self {
        let n = sources.len();
        let period = match &weights {
            Weights::Fixed(w) => periodic_order(&finite_sum(w.clone())),
            Weights::Schedule(..) => None,
        };
        Mix {
            period,
            sources,
            weights,
            mode: MixMode::Interleave,
            stop: MixStop::FirstExhausted,
            seed: 0,
            epoch: 0,
            step: 0,
            ended: false,
            draws: 0,
            rng: SmallRng::for_stream(STREAM_SALT, 0),
            out: vec![false; n],
            src_epoch: vec![0; n],
            taken: vec![0; n],
            credit: vec![0.0; n],
            stats: Arc::new(MixStats::new(
                (0..n).map(|i| format!("source{i}")).collect(),
            )),
        }
    }

    fn check_sources(n: usize) -> Result<(), SourceError> {
        if n == 0 {
            return Err(SourceError::Config {
                field: "sources".into(),
                message: "expected at least one source, got none".into(),
            });
        }
        Ok(())
    }

    /// `sources` mixed by fixed `weights` (any scale: they are normalised).
    ///
    /// # Errors
    /// [`SourceError::Config`] naming `sources` (none given) or `weights` (not one per
    /// source, negative, NaN or infinite, all zero).
    pub fn new(
        sources: Vec<Box<dyn Source<Item = T>>>,
        weights: Vec<f64>,
    ) -> Result<Self, SourceError> {
        Self::check_sources(sources.len())?;
        check_weights(&weights, sources.len(), "weights")?;
        Ok(Self::make(sources, Weights::Fixed(weights)))
    }

    /// `sources` mixed by `schedule(step)`'s weights, `step` being the count of items given
    /// in the epoch (a curriculum). `name` names the schedule in the fingerprint (a state is
    /// refused by a mix whose schedule has another name). A schedule that gives a bad weight
    /// vector ends the epoch with a [`SourceError::Config`] item naming the step.
    ///
    /// # Errors
    /// [`SourceError::Config`] if `sources` is empty or `schedule(0)` is not a valid weight
    /// vector.
    pub fn scheduled(
        sources: Vec<Box<dyn Source<Item = T>>>,
        schedule: impl Fn(u64) -> Vec<f64> + Send + Sync + 'static,
        name: &str,
    ) -> Result<Self, SourceError> {
        Self::try_scheduled(sources, move |step| Ok(schedule(step)), name)
    }

    /// [`Mix::scheduled`] with a schedule that may fail: its `Err(message)` ends the epoch
    /// with a [`SourceError::Config`] item naming the step and carrying the message (a Python
    /// schedule's exception, for one).
    ///
    /// # Errors
    /// As [`Mix::scheduled`], and the schedule's error at step 0.
    pub fn try_scheduled(
        sources: Vec<Box<dyn Source<Item = T>>>,
        schedule: impl Fn(u64) -> Result<Vec<f64>, String> + Send + Sync + 'static,
        name: &str,
    ) -> Result<Self, SourceError> {
        Self::check_sources(sources.len())?;
        let schedule: Arc<ScheduleFn> = Arc::new(schedule);
        let mix = Self::make(sources, Weights::Schedule(schedule, name.to_string()));
        mix.weights_now()?;
        Ok(mix)
    }

    /// Pick by `mode` (default [`MixMode::Interleave`]).
    pub fn mode(mut self, mode: MixMode) -> Self {
        self.mode = mode;
        self
    }

    /// End the epoch by `stop` (default [`MixStop::FirstExhausted`]).
    pub fn stop(mut self, stop: MixStop) -> Self {
        self.stop = stop;
        self
    }

    /// The seed of [`MixMode::Random`]'s draws (default 0; with the epoch).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Name the sources in the statistics.
    ///
    /// # Errors
    /// [`SourceError::Config`] naming `names` if there is not one name per source, or
    /// `names[i]` if a name repeats an earlier one.
    pub fn names(self, names: Vec<String>) -> Result<Self, SourceError> {
        if names.len() != self.sources.len() {
            return Err(SourceError::Config {
                field: "names".into(),
                message: format!(
                    "expected {} names (one per source), got {}",
                    self.sources.len(),
                    names.len()
                ),
            });
        }
        if let Some((i, name)) = names
            .iter()
            .enumerate()
            .find(|(i, name)| names[..*i].contains(name))
        {
            return Err(SourceError::Config {
                field: format!("names[{i}]"),
                message: format!("{name:?} names an earlier source too; names must differ"),
            });
        }
        *lock(&self.stats.names) = names;
        Ok(self)
    }

    /// The mix's statistics, shared: a snapshot at any time, from any thread, also while
    /// the mix is inside a running [`Pipeline`](crate::Pipeline). The counts are of items
    /// the mix has given (read by the pipeline, at most its window ahead of the consumer).
    pub fn stats_handle(&self) -> Arc<MixStats> {
        Arc::clone(&self.stats)
    }

    fn reset(&mut self, epoch: u64) {
        let n = self.sources.len();
        self.epoch = epoch;
        self.step = 0;
        self.ended = false;
        self.draws = 0;
        self.rng = SmallRng::for_stream(self.seed ^ STREAM_SALT, epoch);
        self.out = vec![false; n];
        self.src_epoch = vec![epoch; n];
        self.taken = vec![0; n];
        self.credit = vec![0.0; n];
        self.stats.reset();
    }

    /// The weights at the current step (checked for a schedule).
    fn weights_now(&self) -> Result<Vec<f64>, SourceError> {
        match &self.weights {
            Weights::Fixed(w) => Ok(finite_sum(w.clone())),
            Weights::Schedule(f, _) => {
                let field = format!("weights(step={})", self.step);
                let w = f(self.step).map_err(|message| SourceError::Config {
                    field: field.clone(),
                    message,
                })?;
                check_weights(&w, self.sources.len(), &field)?;
                Ok(finite_sum(w))
            }
        }
    }

    /// The source of the next item, by the mode; `None` if every source in the mix is paused.
    fn pick(&mut self, w: &[f64]) -> Option<(usize, f64)> {
        let live = |i: usize| !self.out[i] && w[i] > 0.0;
        let total: f64 = (0..w.len()).filter(|&i| live(i)).map(|i| w[i]).sum();
        if total <= 0.0 {
            return None;
        }
        let j = match self.mode {
            MixMode::Interleave if self.period.is_some() && !self.out.contains(&true) => {
                // The period's credits are not kept: they start again (at 0) when a source
                // leaves, the only way out of the period.
                let period = self.period.as_deref().expect("checked");
                period[(self.step % period.len() as u64) as usize]
            }
            MixMode::Interleave => {
                // Earliest deadline among the released: source i's next item is due when its
                // lag would reach 1, (1 - lag_i) / p_i picks from now; it is released once its
                // lag is > 0 (it is behind its share). The sum of lags is 0, so one is > 0.
                let mut best: Option<(usize, f64)> = None;
                let mut behind: Option<usize> = None;
                for i in (0..w.len()).filter(|&i| live(i)) {
                    let p = w[i] / total;
                    self.credit[i] += p;
                    let due = (1.0 - self.credit[i]) / p;
                    if self.credit[i] > RELEASED && best.is_none_or(|(_, d)| due < d) {
                        best = Some((i, due));
                    }
                    if behind.is_none_or(|b| self.credit[i] > self.credit[b]) {
                        behind = Some(i);
                    }
                }
                // Rounding can leave no lag above the threshold: the most behind then.
                let j = best.map(|(i, _)| i).or(behind).expect("a live source");
                self.credit[j] -= 1.0;
                j
            }
            MixMode::Random => {
                self.draws += 1;
                let mut u = self.rng.unit_f64() * total;
                let mut pick = None;
                for i in (0..w.len()).filter(|&i| live(i)) {
                    pick = Some(i);
                    if u < w[i] {
                        break;
                    }
                    u -= w[i];
                }
                pick.expect("a live source")
            }
        };
        Some((j, total))
    }

    /// Source `j`'s next item, timed.
    fn read(&mut self, j: usize) -> Option<Result<T, SourceError>> {
        let t0 = Instant::now();
        let r = self.sources[j].next();
        let ns = t0.elapsed().as_nanos() as u64;
        lock(&self.stats.st).per[j].read_ns += ns;
        r
    }

    /// Source `j` leaves the mix; the others' credits start again.
    fn leave(&mut self, j: usize) {
        self.out[j] = true;
        self.credit.iter_mut().for_each(|c| *c = 0.0);
    }

    fn give(
        &mut self,
        j: usize,
        w: &[f64],
        total: f64,
        r: Result<T, SourceError>,
    ) -> Option<Result<T, SourceError>> {
        self.step += 1;
        self.taken[j] += 1;
        let mut st = lock(&self.stats.st);
        st.items += 1;
        st.per[j].taken += 1;
        for (i, p) in st.per.iter_mut().enumerate() {
            if !self.out[i] && w[i] > 0.0 {
                p.target += w[i] / total;
            }
        }
        Some(r)
    }
}

impl<T: Send + 'static> Source for Mix<T> {
    type Item = T;

    fn fingerprint(&self) -> SourceFingerprint {
        let mode = match self.mode {
            MixMode::Interleave => "interleave",
            MixMode::Random => "random",
        };
        let stop = match self.stop {
            MixStop::FirstExhausted => "first_exhausted",
            MixStop::AllExhausted => "all_exhausted",
            MixStop::Never => "never",
        };
        let weights = match &self.weights {
            Weights::Fixed(w) => format!("{w:?}"),
            Weights::Schedule(_, name) => format!("schedule {name}"),
        };
        let mut fields = vec![
            ("mode", mode.to_string()),
            ("stop", stop.to_string()),
            ("seed", self.seed.to_string()),
            ("weights", weights),
            ("sources", self.sources.len().to_string()),
        ];
        let kids: Vec<(String, String)> = self
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("source{i}"), s.fingerprint().to_string()))
            .collect();
        fields.extend(kids.iter().map(|(k, v)| (k.as_str(), v.clone())));
        SourceFingerprint::new("mix", &fields)
    }

    fn start(&mut self, epoch: u64) -> Result<(), SourceError> {
        self.reset(epoch);
        for s in &mut self.sources {
            s.start(epoch)?;
        }
        Ok(())
    }

    fn next(&mut self) -> Option<Result<T, SourceError>> {
        loop {
            if self.ended {
                return None;
            }
            let w = match self.weights_now() {
                Ok(w) => w,
                Err(e) => {
                    self.ended = true;
                    return Some(Err(e));
                }
            };
            let Some((j, total)) = self.pick(&w) else {
                self.ended = true;
                return None;
            };
            if let Some(r) = self.read(j) {
                return self.give(j, &w, total, r);
            }
            match self.stop {
                MixStop::FirstExhausted => {
                    self.ended = true;
                    return None;
                }
                MixStop::AllExhausted => self.leave(j),
                MixStop::Never => {
                    self.src_epoch[j] += 1;
                    if let Err(e) = self.sources[j].start(self.src_epoch[j]) {
                        self.leave(j);
                        return self.give(j, &w, total, Err(e));
                    }
                    match self.read(j) {
                        Some(r) => return self.give(j, &w, total, r),
                        None => self.leave(j),
                    }
                }
            }
        }
    }

    /// `[epoch, step, ended, random draws, sources]`, then per source `[left the mix, its
    /// epoch, items taken, credit (f64 bits)]`; the sources' states in `children`.
    fn state(&self) -> SourceState {
        let mut words = vec![
            self.epoch,
            self.step,
            self.ended as u64,
            self.draws,
            self.sources.len() as u64,
        ];
        for i in 0..self.sources.len() {
            words.extend([
                self.out[i] as u64,
                self.src_epoch[i],
                self.taken[i],
                self.credit[i].to_bits(),
            ]);
        }
        let mut s = SourceState::new("mix", words);
        s.children = self.sources.iter().map(|s| s.state()).collect();
        s
    }

    fn restore(&mut self, state: &SourceState) -> Result<(), SourceError> {
        let n = self.sources.len();
        let w = state.expect("mix", HEAD)?;
        if w[4] != n as u64 || w.len() != HEAD + PER * n || state.children.len() != n {
            return Err(SourceError::State(format!(
                "a state of a mix of {} sources ({} states) given to a mix of {n}",
                w[4],
                state.children.len()
            )));
        }
        let w = w.to_vec();
        // A draw is made per pick: one per item given, and one more each time a source
        // leaves the mix (at most once each). More is not a state of this mix (and replaying
        // it would spin).
        if w[3] > w[1].saturating_add(n as u64) {
            return Err(SourceError::State(format!(
                "a mix state with {} random draws for {} items of {n} sources",
                w[3], w[1]
            )));
        }
        self.reset(w[0]);
        for (s, st) in self.sources.iter_mut().zip(&state.children) {
            s.restore(st)?;
        }
        self.step = w[1];
        self.ended = w[2] != 0;
        for _ in 0..w[3] {
            self.rng.unit_f64();
        }
        self.draws = w[3];
        for i in 0..n {
            let x = &w[HEAD + PER * i..HEAD + PER * (i + 1)];
            self.out[i] = x[0] != 0;
            self.src_epoch[i] = x[1];
            self.taken[i] = x[2];
            self.credit[i] = f64::from_bits(x[3]);
        }
        Ok(())
    }
}

/// A repeating order of picks for the fixed weights `w`, if their shares are whole numbers
/// `c_i` of items in a period of `d` ≤ [`MAX_PERIOD`] items and one is found within
/// [`SEARCH_BUDGET`] steps of a depth-first search: `c_i` picks of source `i` per period, every
/// prefix count `floor(n·p_i)` or `ceil(n·p_i)` (as the deadline order keeps), and every window
/// of the order repeated — of any length — within one item of `N·p_i`. Windows longer than a
/// period are whole periods (exact) and one shorter window, so the check over the cyclic
/// windows of one period covers them all. Such an order does not exist for every weight
/// vector (19/3/9 has none); the interleave then keeps the deadline order's bounds.
fn periodic_order(w: &[f64]) -> Option<Vec<usize>> {
    let total: f64 = w.iter().sum();
    let counts: Vec<u64> = (1..=MAX_PERIOD).find_map(|d| {
        let c: Vec<f64> = w.iter().map(|x| x / total * d as f64).collect();
        c.iter()
            .all(|x| (x - x.round()).abs() < 1e-9)
            .then(|| c.iter().map(|x| x.round() as u64).collect())
    })?;
    let d: u64 = counts.iter().sum();
    if d == 0 {
        return None;
    }
    let mut order = Vec::with_capacity(d as usize);
    let mut budget = SEARCH_BUDGET;
    extend_order(&mut order, &counts, d, &mut budget).then_some(order)
}

/// Depth-first: extend `order` to a whole period that passes [`cyclic_windows_fit`].
fn extend_order(order: &mut Vec<usize>, c: &[u64], d: u64, budget: &mut u64) -> bool {
    if order.len() as u64 == d {
        return cyclic_windows_fit(order, c, d);
    }
    for i in (0..c.len()).filter(|&i| c[i] > 0) {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        order.push(i);
        if windows_ending_last_fit(order, c, d) && extend_order(order, c, d, budget) {
            return true;
        }
        order.pop();
    }
    false
}

/// Every window ending at `order`'s last pick within one item of its share (exact integers:
/// `|k·d − N·c_i| ≤ d`), the prefix strictly (`< d`), and no source past its count.
fn windows_ending_last_fit(order: &[usize], c: &[u64], d: u64) -> bool {
    let mut k = vec![0u64; c.len()];
    for a in (0..order.len()).rev() {
        k[order[a]] += 1;
        let n = (order.len() - a) as u64;
        for (j, &cj) in c.iter().enumerate() {
            let dev = (k[j] * d).abs_diff(n * cj);
            if dev > d || (a == 0 && (dev >= d || k[j] > cj)) {
                return false;
            }
        }
    }
    true
}

/// Every window of `order` repeated (each start, each length up to a period) within one item
/// of its share.
fn cyclic_windows_fit(order: &[usize], c: &[u64], d: u64) -> bool {
    let n = order.len();
    (0..n).all(|start| {
        let mut k = vec![0u64; c.len()];
        (1..=n).all(|len| {
            k[order[(start + len - 1) % n]] += 1;
            c.iter()
                .enumerate()
                .all(|(j, &cj)| (k[j] * d).abs_diff(len as u64 * cj) <= d)
        })
    })
}
