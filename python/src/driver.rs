//! The driver thread: one protocol for the loader and the pipeline.
//!
//! A `loader::Loader` or `loader::Pipeline` (a [`Driven`]) lives on a thread of its own; the
//! Python consumer sends it one [`Cmd`] at a time and waits for the [`Resp`] **without the
//! GIL**, in slices of [`WAIT_SLICE`] between which it runs Python's signal handlers, so
//! Ctrl-C raises `KeyboardInterrupt` at once.
//!
//! One request and its answer are one *round*, atomic: several Python threads may share one
//! iterator, and each round is taken in turn (waiting for the turn, too, is done without the
//! GIL and runs the signal handlers), so every answer goes to the thread that asked.
//!
//! After a failed wait (an interrupt, a timeout) the driver is *abandoned*: its command
//! channel is closed and its `stopped` flag set, so the user's code is not called again (the
//! samples or items not started are skipped at once) and the driver ends once the request it
//! is serving returns (dropping the epoch iterator cancels the outstanding work, dropping the
//! loader joins its workers); [`Driver::close`] joins it later. The consumer does not wait for
//! it.

use std::sync::atomic::{AtomicBool, Ordering::Release};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// How often a waiting consumer runs Python's signal handlers.
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(50);

/// A report as `(json, text)`.
pub(crate) type ReportPair = Option<(String, String)>;

/// What a driver thread owns: something that opens epoch iterators, saves and restores where
/// it stands, and reports (a `loader::Loader`, a `loader::Pipeline`).
pub(crate) trait Driven: Send + 'static {
    /// What one epoch yields (a batch, an item, or the error in its place).
    type Item: Send + 'static;
    /// Where it stands (a checkpoint).
    type State: Send + 'static;
    /// Why a state does not fit.
    type Error: Send + 'static;
    /// One epoch's iterator.
    type Epoch<'a>: Iterator<Item = Self::Item> + EpochView<State = Self::State>
    where
        Self: 'a;

    /// Start (or continue) epoch `e`.
    fn epoch(&mut self, e: u64) -> Self::Epoch<'_>;
    /// Where it stands between epochs.
    fn state(&self) -> Self::State;
    /// Continue from `s` at the next `epoch(s.epoch)`.
    fn restore(&mut self, s: &Self::State) -> Result<(), Self::Error>;
    /// The last epoch's report.
    fn report(&self) -> ReportPair;
}

/// What can be asked of an epoch iterator besides its next item.
pub(crate) trait EpochView {
    /// Where it stands (a checkpoint).
    type State;
    /// Where the epoch stands now.
    fn state(&self) -> Self::State;
    /// What the epoch measured so far.
    fn report(&self) -> ReportPair;
}

/// A request to the driver thread.
pub(crate) enum Cmd<S> {
    /// Start (or continue) an epoch; answered `Done`.
    Epoch(u64),
    /// The epoch's next item, numbered from 0 in the order handed out since `Epoch`;
    /// answered `Next` (`None` at its end, and outside an epoch).
    Next,
    /// End the epoch (cancels its outstanding work); answered `Done`.
    EndEpoch,
    /// Where it stands; answered `State`.
    State,
    /// Resume from a state; answered `Restored`.
    Restore(S),
    /// The current (or last) epoch's report; answered `Report`.
    Report,
}

/// The driver thread's answer.
pub(crate) enum Resp<I, S, E> {
    Done,
    Next(Option<(u64, I)>),
    State(S),
    Restored(Result<(), E>),
    Report(ReportPair),
}

type RespOf<T> = Resp<<T as Driven>::Item, <T as Driven>::State, <T as Driven>::Error>;

/// The driver thread: owns `d`, answers one request at a time, until the command channel
/// closes (or the consumer's end is gone).
fn drive<T: Driven>(mut d: T, cmds: Receiver<Cmd<T::State>>, resp: Sender<RespOf<T>>) {
    let mut pending: Option<Cmd<T::State>> = None;
    loop {
        let cmd = match pending.take() {
            Some(c) => c,
            None => match cmds.recv() {
                Ok(c) => c,
                Err(_) => return,
            },
        };
        let answer = match cmd {
            Cmd::Epoch(e) => {
                let mut it = d.epoch(e);
                let mut handed = 0u64;
                if resp.send(Resp::Done).is_err() {
                    return;
                }
                loop {
                    let answer = match cmds.recv() {
                        Ok(Cmd::Next) => match it.next() {
                            // the epoch ended: later requests are the owner's
                            None => {
                                pending = Some(Cmd::Next);
                                break;
                            }
                            Some(i) => {
                                handed += 1;
                                Resp::Next(Some((handed - 1, i)))
                            }
                        },
                        Ok(Cmd::State) => Resp::State(it.state()),
                        Ok(Cmd::Report) => Resp::Report(it.report()),
                        Ok(Cmd::EndEpoch) => break,
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => return,
                    };
                    if resp.send(answer).is_err() {
                        return;
                    }
                }
                drop(it);
                if pending.is_some() {
                    continue;
                }
                Resp::Done
            }
            Cmd::Next => Resp::Next(None),
            Cmd::EndEpoch => Resp::Done,
            Cmd::State => Resp::State(d.state()),
            Cmd::Restore(s) => Resp::Restored(d.restore(&s)),
            Cmd::Report => Resp::Report(d.report()),
        };
        if resp.send(answer).is_err() {
            return;
        }
    }
}

/// Whose round it is: one request and its answer at a time, among the Python threads that
/// share a driver.
#[derive(Default)]
struct Turn {
    busy: Mutex<bool>,
    free: Condvar,
}

/// The turn, held: given back when dropped.
struct TurnGuard<'a>(&'a Turn);

impl Turn {
    /// Wait for the turn without the GIL, running the signal handlers every [`WAIT_SLICE`]
    /// (a thread waiting for its turn can be interrupted as one waiting for its answer can).
    fn take(&self, py: Python<'_>) -> PyResult<TurnGuard<'_>> {
        loop {
            let got = py.allow_threads(|| {
                let mut busy = lock(&self.busy);
                if *busy {
                    busy = self
                        .free
                        .wait_timeout(busy, WAIT_SLICE)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                !std::mem::replace(&mut *busy, true)
            });
            if got {
                return Ok(TurnGuard(self));
            }
            py.check_signals()?;
        }
    }
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        *lock(&self.0.busy) = false;
        self.0.free.notify_one();
    }
}

/// The consumer's end of a driver thread.
pub(crate) struct Driver<T: Driven> {
    what: &'static str,
    /// One round at a time (see the module's doc).
    turn: Turn,
    cmds: Mutex<Option<Sender<Cmd<T::State>>>>,
    resp: Mutex<Receiver<RespOf<T>>>,
    /// Set when the driver is abandoned: the owner's workers call no more user code.
    stopped: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Driven> Driver<T> {
    /// Start a driver thread named `name` that owns `d`; `what` names it in errors
    /// ("loader", "pipeline"). `stopped` is set when the driver is abandoned or closed; `d`'s
    /// workers read it to start no more of the user's code.
    pub(crate) fn start(
        name: &str,
        what: &'static str,
        d: T,
        stopped: Arc<AtomicBool>,
    ) -> PyResult<Self> {
        let (cmd_tx, cmd_rx) = channel();
        let (resp_tx, resp_rx) = channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || drive(d, cmd_rx, resp_tx))
            .map_err(|e| PyRuntimeError::new_err(format!("could not start a thread: {e}")))?;
        Ok(Driver {
            what,
            turn: Turn::default(),
            cmds: Mutex::new(Some(cmd_tx)),
            resp: Mutex::new(resp_rx),
            stopped,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// One round: take the turn, send `cmd` and wait for the answer without the GIL (see
    /// [`wait_for`]); `timeout` counts from the send. After an error (an interrupt, a
    /// timeout) the driver is abandoned (its answers would be out of step): closed at once,
    /// joined by [`close`](Driver::close).
    fn request(
        &self,
        py: Python<'_>,
        cmd: Cmd<T::State>,
        timeout: Option<Duration>,
    ) -> PyResult<RespOf<T>> {
        let _turn = self.turn.take(py)?;
        let sent = lock(&self.cmds).as_ref().map(|tx| tx.send(cmd).is_ok());
        match sent {
            None => return Err(PyRuntimeError::new_err(format!("{}: closed", self.what))),
            Some(false) => {
                return Err(PyRuntimeError::new_err(format!(
                    "{}: the driver thread stopped",
                    self.what
                )))
            }
            Some(true) => {}
        }
        let r = wait_for(py, &self.resp, timeout, self.what);
        if r.is_err() {
            self.detach();
        }
        r
    }

    fn unexpected(&self) -> PyErr {
        PyRuntimeError::new_err(format!("{}: unexpected answer", self.what))
    }

    /// Start (or continue) epoch `e`.
    pub(crate) fn start_epoch(&self, py: Python<'_>, e: u64) -> PyResult<()> {
        self.request(py, Cmd::Epoch(e), None).map(|_| ())
    }

    /// End the current epoch (cancels its outstanding work).
    pub(crate) fn end_epoch(&self, py: Python<'_>) -> PyResult<()> {
        self.request(py, Cmd::EndEpoch, None).map(|_| ())
    }

    /// The epoch's next item and its number in the order handed out (`None` at its end),
    /// waiting at most `timeout`.
    pub(crate) fn next(
        &self,
        py: Python<'_>,
        timeout: Option<Duration>,
    ) -> PyResult<Option<(u64, T::Item)>> {
        match self.request(py, Cmd::Next, timeout)? {
            Resp::Next(i) => Ok(i),
            _ => Err(self.unexpected()),
        }
    }

    /// Where it stands (inside the current epoch, or between epochs).
    pub(crate) fn state(&self, py: Python<'_>) -> PyResult<T::State> {
        match self.request(py, Cmd::State, None)? {
            Resp::State(s) => Ok(s),
            _ => Err(self.unexpected()),
        }
    }

    /// Resume from `s`: `Ok(Err(_))` when it does not fit.
    pub(crate) fn restore(&self, py: Python<'_>, s: T::State) -> PyResult<Result<(), T::Error>> {
        match self.request(py, Cmd::Restore(s), None)? {
            Resp::Restored(r) => Ok(r),
            _ => Err(self.unexpected()),
        }
    }

    /// The current (or last) epoch's report.
    pub(crate) fn report(&self, py: Python<'_>) -> PyResult<ReportPair> {
        match self.request(py, Cmd::Report, None)? {
            Resp::Report(r) => Ok(r),
            _ => Err(self.unexpected()),
        }
    }

    /// Stop the driver thread and join it, without the GIL. Idempotent.
    pub(crate) fn close(&self, py: Python<'_>) {
        self.detach();
        let t = lock(&self.thread).take();
        if let Some(t) = t {
            py.allow_threads(|| {
                let _ = t.join();
            });
        }
    }

    /// True once closed (or abandoned).
    pub(crate) fn closed(&self) -> bool {
        lock(&self.cmds).is_none()
    }

    /// Closed and its thread ended: join it (at once) and say true; false while it runs.
    pub(crate) fn reap(&self) -> bool {
        if !self.closed() {
            return false;
        }
        let mut t = lock(&self.thread);
        match t.as_ref() {
            Some(h) if !h.is_finished() => false,
            _ => {
                if let Some(h) = t.take() {
                    let _ = h.join();
                }
                true
            }
        }
    }

    /// Close the command channel without joining, and set the `stopped` flag (no more user
    /// code starts): the driver ends once the request it is serving returns. (Also for
    /// `Drop`, where the GIL may be held.)
    pub(crate) fn detach(&self) {
        self.stopped.store(true, Release);
        drop(lock(&self.cmds).take());
    }
}

/// Lock, ignoring poisoning (our critical sections leave no broken state).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Wait for `resp` without the GIL, running signal handlers every [`WAIT_SLICE`]; `what`
/// ("loader", "pipeline") names the owner when the driver thread is gone.
fn wait_for<R: Send>(
    py: Python<'_>,
    resp: &Mutex<Receiver<R>>,
    timeout: Option<Duration>,
    what: &str,
) -> PyResult<R> {
    let start = Instant::now();
    loop {
        let got = py.allow_threads(|| {
            let got = lock(resp).recv_timeout(WAIT_SLICE);
            crate::turns::waiting(); // for the GIL, taken back as this returns
            got
        });
        crate::turns::taken();
        match got {
            Ok(v) => return Ok(v),
            Err(RecvTimeoutError::Timeout) => {
                py.check_signals()?;
                if let Some(t) = timeout {
                    if start.elapsed() >= t {
                        return Err(PyRuntimeError::new_err(format!(
                            "DataLoader timed out after {} seconds",
                            t.as_secs_f64()
                        )));
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err(format!(
                    "the {what}'s driver thread stopped"
                )))
            }
        }
    }
}

impl<D, B> Driven for loader::Loader<D, B>
where
    D: loader::Dataset,
    B: Send + 'static,
    loader::Loader<D, B>: Send + 'static,
{
    type Item = Result<loader::Batch<B>, loader::LoaderError>;
    type State = loader::LoaderState;
    type Error = loader::LoaderError;
    type Epoch<'a> = loader::LoaderEpoch<'a, D, B>;

    fn epoch(&mut self, e: u64) -> Self::Epoch<'_> {
        loader::Loader::epoch(self, e)
    }

    fn state(&self) -> loader::LoaderState {
        loader::Loader::state(self)
    }

    fn restore(&mut self, s: &loader::LoaderState) -> Result<(), loader::LoaderError> {
        loader::Loader::restore(self, s)
    }

    fn report(&self) -> ReportPair {
        loader::Loader::report(self)
            .map(|r| (serde_json::to_string(r).unwrap_or_default(), r.to_string()))
    }
}

impl<D: loader::Dataset, B: Send + 'static> EpochView for loader::LoaderEpoch<'_, D, B> {
    type State = loader::LoaderState;

    fn state(&self) -> loader::LoaderState {
        loader::LoaderEpoch::state(self)
    }

    fn report(&self) -> ReportPair {
        loader::LoaderEpoch::report(self)
            .map(|r| (serde_json::to_string(&r).unwrap_or_default(), r.to_string()))
    }
}

impl<T: Send + 'static> Driven for loader::Pipeline<T>
where
    loader::Pipeline<T>: Send,
{
    type Item = Result<T, loader::PipelineError>;
    type State = loader::PipelineState;
    type Error = loader::PipelineError;
    type Epoch<'a> = loader::PipelineEpoch<'a, T>;

    fn epoch(&mut self, e: u64) -> Self::Epoch<'_> {
        loader::Pipeline::epoch(self, e)
    }

    fn state(&self) -> loader::PipelineState {
        loader::Pipeline::state(self)
    }

    fn restore(&mut self, s: &loader::PipelineState) -> Result<(), loader::PipelineError> {
        loader::Pipeline::restore(self, s)
    }

    fn report(&self) -> ReportPair {
        loader::Pipeline::report(self)
            .map(|r| (serde_json::to_string(r).unwrap_or_default(), r.to_string()))
    }
}

impl<T: Send + 'static> EpochView for loader::PipelineEpoch<'_, T> {
    type State = loader::PipelineState;

    fn state(&self) -> loader::PipelineState {
        loader::PipelineEpoch::state(self)
    }

    fn report(&self) -> ReportPair {
        loader::PipelineEpoch::report(self)
            .map(|r| (serde_json::to_string(&r).unwrap_or_default(), r.to_string()))
    }
}
