//! A source read ahead on its own thread, with the state of each item it hands out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{Source, SourceError, SourceFingerprint, SourceState};
use crate::pipeline::lock;

/// What the reader thread hands over: an item (or the end) and the source's state after it.
type Read<T> = (Option<Result<T, SourceError>>, SourceState);

/// A source read ahead on its own thread, at most `depth` items ahead of [`Source::next`]:
/// the time of a slow source (a remote read, a decompression) overlaps with the rest of the
/// pipeline and with the other sources of a [`Mix`](super::Mix), which reads its sources one
/// after another otherwise.
///
/// The items and their order are the source's; its state is the source's state after the
/// last item handed out (the items read ahead are read again on resume), and its fingerprint
/// is the source's, so a state moves freely between a prefetched and a plain source. A
/// `depth` of 0 is taken as 1.
///
/// ```
/// use loader::source::{IterSource, Source};
/// let mut s = IterSource::new(|_| 0..100u32).prefetched(8);
/// s.start(0).unwrap();
/// assert_eq!(s.next(), Some(Ok(0)));
/// let state = s.state();
/// let rest: Vec<u32> = std::iter::from_fn(|| s.next()).map(|r| r.unwrap()).collect();
/// assert_eq!(rest, (1..100).collect::<Vec<_>>());
///
/// let mut plain = IterSource::new(|_| 0..100u32);
/// plain.restore(&state).unwrap();
/// assert_eq!(plain.next(), Some(Ok(1)));
/// ```
pub struct Prefetch<S: Source> {
    inner: Arc<Mutex<S>>,
    depth: usize,
    rx: Option<Receiver<Read<S::Item>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    state: Option<SourceState>,
    ended: bool,
}

impl<S: Source> Prefetch<S> {
    /// `inner` read ahead by up to `depth` items.
    pub fn new(inner: S, depth: usize) -> Self {
        Prefetch {
            inner: Arc::new(Mutex::new(inner)),
            depth: depth.max(1),
            rx: None,
            stop: Arc::new(AtomicBool::new(false)),
            reader: None,
            state: None,
            ended: false,
        }
    }

    /// Stop the reader thread (the items it read ahead are dropped).
    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Dropping the receiver fails the reader's blocked send.
        self.rx = None;
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
        self.stop = Arc::new(AtomicBool::new(false));
    }

    fn spawn(&mut self) {
        let (tx, rx) = sync_channel::<Read<S::Item>>(self.depth);
        let inner = Arc::clone(&self.inner);
        let stop = Arc::clone(&self.stop);
        let h = std::thread::Builder::new()
            .name("prefetch".into())
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let (r, st) = {
                        let mut s = lock(&inner);
                        let r = s.next();
                        (r, s.state())
                    };
                    let end = r.is_none();
                    if tx.send((r, st)).is_err() || end {
                        break;
                    }
                }
            })
            .expect("spawn the prefetch thread");
        self.rx = Some(rx);
        self.reader = Some(h);
        self.ended = false;
    }
}

impl<S: Source> Drop for Prefetch<S> {
    fn drop(&mut self) {
        self.halt();
    }
}

impl<S: Source> Source for Prefetch<S> {
    type Item = S::Item;

    fn fingerprint(&self) -> SourceFingerprint {
        lock(&self.inner).fingerprint()
    }

    fn start(&mut self, epoch: u64) -> Result<(), SourceError> {
        self.halt();
        let state = {
            let mut s = lock(&self.inner);
            s.start(epoch)?;
            s.state()
        };
        self.state = Some(state);
        self.spawn();
        Ok(())
    }

    fn next(&mut self) -> Option<Result<S::Item, SourceError>> {
        if self.ended {
            return None;
        }
        match self.rx.as_ref()?.recv() {
            Ok((r, st)) => {
                self.state = Some(st);
                if r.is_none() {
                    self.ended = true;
                }
                r
            }
            Err(_) => {
                self.ended = true;
                Some(Err(SourceError::Other(
                    "prefetch: the reader thread ended (a panic in the source)".into(),
                )))
            }
        }
    }

    fn state(&self) -> SourceState {
        match &self.state {
            Some(s) => s.clone(),
            None => lock(&self.inner).state(),
        }
    }

    fn restore(&mut self, state: &SourceState) -> Result<(), SourceError> {
        self.halt();
        lock(&self.inner).restore(state)?;
        self.state = Some(state.clone());
        self.spawn();
        Ok(())
    }
}
