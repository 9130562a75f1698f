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
    /// An error with this message. It is made one line here whatever it holds: control
    /// characters are escaped and the whole is cut to [`SpecError::MAX_LEN`] characters (user
    /// text inside should already be quoted with `grammar::quote`, which cuts it much shorter).
    pub fn new(message: impl Into<String>) -> Self {
        SpecError {
            message: grammar::one_line(&message.into(), Self::MAX_LEN),
        }
    }

    /// The longest message kept, in characters.
    pub const MAX_LEN: usize = 1000;

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<grammar::Error> for SpecError {
    fn from(e: grammar::Error) -> Self {
        SpecError::new(e.to_string())
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
    /// A task running on the job's pool could not wait for the job to finish while running
    /// the pool's work ([`JobError::OwnJob`](crate::JobError::OwnJob): it is one of the job's
    /// own tasks; [`JobError::TooDeep`](crate::JobError::TooDeep)).
    #[error("cannot wait for the job inside this task: {0}")]
    NestedWait(crate::JobError),
}
