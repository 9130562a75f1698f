//! Error types of the scheduler crate.

use thiserror::Error;

/// Bad user input (a spec string, a flag value): one line naming the input, the field and what
/// is allowed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{message}")]
pub struct SpecError {
    message: String,
}

impl SpecError {
    /// An error with this one-line message.
    pub fn new(message: impl Into<String>) -> Self {
        SpecError {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Why a run could not be carried out.
#[derive(Debug, Error)]
pub enum RunError {
    /// The run's inputs are inconsistent (e.g. an estimate table of the wrong length).
    #[error("{0}")]
    Invalid(#[from] SpecError),
    /// An OS thread could not be started.
    #[error("could not start worker thread {worker}: {source}")]
    Spawn {
        /// The worker.
        worker: usize,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A worker's init hook panicked; the pool was not started.
    #[error("worker {worker}'s init panicked: {message}")]
    Init {
        /// The worker.
        worker: usize,
        /// The panic message.
        message: String,
    },
    /// The strategy broke its contract (it panicked, built the wrong number of worker queues,
    /// or handed out an id that was never submitted). A bug in the strategy, not bad input.
    #[error("strategy {strategy} broke its contract: {message}")]
    Strategy {
        /// The strategy's spec.
        strategy: String,
        /// What went wrong.
        message: String,
    },
    /// The pool was dropped (or shut down) before the job finished.
    #[error("the pool was shut down before the job finished")]
    PoolClosed,
}
