//! What can go wrong while building a loader or loading a batch.

use thiserror::Error;

/// An error of the loader: at build time (bad configuration), at resume (a state that does not
/// fit this loader), or for one batch (a sample that failed, panicked or ran past its timeout).
///
/// A per-batch error is yielded *at the batch's position* in the epoch; the epoch goes on with
/// the next batch. It names the dataset index of the (first) bad sample of that batch.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum LoaderError {
    /// A configuration value is not allowed (one line: the field and what is allowed).
    #[error("{0}")]
    Config(String),
    /// The pool could not be started (a worker thread could not be spawned, or `init` panicked).
    #[error("could not start the loader's workers: {0}")]
    Start(String),
    /// A saved [`LoaderState`](crate::LoaderState) does not fit this loader.
    #[error("cannot resume: {0}")]
    State(String),
    /// `Dataset::get` returned an error for this sample.
    #[error("sample {index} (epoch {epoch}, batch {batch}) failed: {message}")]
    Sample {
        /// The dataset index.
        index: usize,
        /// The epoch.
        epoch: u64,
        /// The batch number within the epoch.
        batch: usize,
        /// The dataset's error, as text.
        message: String,
    },
    /// `Dataset::get` panicked for this sample.
    #[error("sample {index} (epoch {epoch}, batch {batch}) panicked: {message}")]
    Panic {
        /// The dataset index.
        index: usize,
        /// The epoch.
        epoch: u64,
        /// The batch number within the epoch.
        batch: usize,
        /// The panic message.
        message: String,
    },
    /// The collate function panicked on this batch (its samples had loaded).
    #[error("collate panicked on batch {batch} (epoch {epoch}, first sample {first}): {message}")]
    Collate {
        /// The dataset index of the batch's first sample.
        first: usize,
        /// The epoch.
        epoch: u64,
        /// The batch number within the epoch.
        batch: usize,
        /// The panic message.
        message: String,
    },
    /// The sample took longer than the loader's per-sample timeout; its value was discarded.
    #[error("sample {index} (epoch {epoch}, batch {batch}) took {took_ms} ms, over the {limit_ms} ms timeout")]
    Timeout {
        /// The dataset index.
        index: usize,
        /// The epoch.
        epoch: u64,
        /// The batch number within the epoch.
        batch: usize,
        /// How long it took, in milliseconds.
        took_ms: u64,
        /// The timeout, in milliseconds.
        limit_ms: u64,
    },
}

impl LoaderError {
    /// The dataset index a per-batch error names (`None` for configuration, start and resume
    /// errors; a collate error names the batch's first sample).
    pub fn index(&self) -> Option<usize> {
        match self {
            LoaderError::Sample { index, .. }
            | LoaderError::Panic { index, .. }
            | LoaderError::Timeout { index, .. }
            | LoaderError::Collate { first: index, .. } => Some(*index),
            _ => None,
        }
    }

    /// The batch number a per-batch error belongs to.
    pub fn batch(&self) -> Option<usize> {
        match self {
            LoaderError::Sample { batch, .. }
            | LoaderError::Panic { batch, .. }
            | LoaderError::Timeout { batch, .. }
            | LoaderError::Collate { batch, .. } => Some(*batch),
            _ => None,
        }
    }
}
