//! The one error type of this crate: everything a user can get wrong in a spec.

use thiserror::Error;

/// What went wrong while reading a workload spec, a duration, a trace file or a worker-speed list.
///
/// Every message is one line that names the spec (or file and line), the parameter, the bad value and
/// what is allowed, so a CLI can print it as is and exit with status 2.
///
/// ```
/// use workloads::Distribution;
/// let err = Distribution::parse("lognormal(mean=100us,sigma=-1)").unwrap_err();
/// assert_eq!(err.to_string(), "lognormal: parameter sigma must be > 0, got -1");
/// ```
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A duration string that is not a number followed by `ns`, `us`, `ms` or `s`.
    #[error("'{input}' is not a duration ({reason})")]
    Duration {
        /// The text as given.
        input: String,
        /// Why it was refused and what is allowed.
        reason: String,
    },
    /// A name (distribution, arrival process, kind of work, speed profile) that is not known.
    #[error("unknown {what} '{}' (known: {known})", grammar::escape(name))]
    UnknownName {
        /// What kind of name it was, e.g. `distribution`.
        what: &'static str,
        /// The name as given.
        name: String,
        /// The names that are known, comma-separated.
        known: String,
    },
    /// A `key=value` whose key the spec does not take.
    #[error(
        "{context}: unknown parameter '{}' (allowed: {allowed})",
        grammar::escape(param)
    )]
    UnknownParameter {
        /// The spec it appeared in, e.g. `gamma`.
        context: String,
        /// The key as given.
        param: String,
        /// The keys that are allowed, comma-separated.
        allowed: String,
    },
    /// A parameter the spec needs but did not get.
    #[error("{context}: missing parameter {param} ({hint})")]
    MissingParameter {
        /// The spec, e.g. `pareto`.
        context: String,
        /// The parameter that is missing.
        param: String,
        /// How to write the spec, e.g. `use pareto(mean=100us,alpha=1.5)`.
        hint: String,
    },
    /// A parameter whose value is out of range or not of the right type.
    #[error(
        "{context}: parameter {param} must be {allowed}, got {}",
        grammar::one_line(value, 200)
    )]
    InvalidParameter {
        /// The spec, e.g. `lognormal`.
        context: String,
        /// The parameter, e.g. `sigma`.
        param: String,
        /// The value as given (quoted when it is not a number).
        value: String,
        /// What is allowed, e.g. `> 0`.
        allowed: String,
    },
    /// A spec that is malformed as a whole (unbalanced parentheses, conflicting parameters, ...).
    #[error("{context}: {}", grammar::one_line(message, 1000))]
    Invalid {
        /// The spec or setting it concerns, e.g. `mix` or `speeds`.
        context: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A trace file that cannot be read or has a malformed row.
    #[error("trace: {}{}: {}", grammar::escape(file), location.as_deref().map(|l| format!(" {l}")).unwrap_or_default(), grammar::one_line(message, 1000))]
    Trace {
        /// The file as named in the spec.
        file: String,
        /// Where in the file, e.g. `line 7` or `element 3`, when known.
        location: Option<String>,
        /// What is wrong, e.g. `cost '12xs' is not a duration (use ns, us, ms or s)`.
        message: String,
    },
    /// More tasks were asked of a trace than it has rows.
    #[error(
        "trace: {} has {rows} rows but {requested} tasks were requested \
         (a trace gives its own task count: ask for at most {rows})",
        grammar::escape(file)
    )]
    TraceTooShort {
        /// The file as named in the spec.
        file: String,
        /// How many rows it has.
        rows: usize,
        /// How many tasks were requested.
        requested: usize,
    },
    /// A list of worker speeds whose length is not the number of workers.
    #[error("speeds: {given} speeds given for {workers} workers (give one speed per worker, or a profile: uniform, big-little)")]
    SpeedsLength {
        /// Number of speeds in the list.
        given: usize,
        /// Number of workers.
        workers: usize,
    },
    /// A task count that cannot be held in memory.
    #[error("tasks: cannot allocate {requested} tasks")]
    TooManyTasks {
        /// The number of tasks requested.
        requested: usize,
    },
}

impl SpecError {
    pub(crate) fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }

    pub(crate) fn param(
        context: impl Into<String>,
        param: impl Into<String>,
        value: impl Into<String>,
        allowed: impl Into<String>,
    ) -> Self {
        SpecError::InvalidParameter {
            context: context.into(),
            param: param.into(),
            value: value.into(),
            allowed: allowed.into(),
        }
    }
}

/// Quote user text for an error message: escaped and cut, so the message stays one line.
pub(crate) fn quote(s: &str) -> String {
    grammar::quote(s)
}

impl From<grammar::Error> for SpecError {
    fn from(e: grammar::Error) -> Self {
        match e {
            grammar::Error::Duration { input, reason } => SpecError::Duration { input, reason },
            grammar::Error::DuplicateKey { context, param } => SpecError::Invalid {
                context,
                message: format!("parameter {param} given twice"),
            },
            grammar::Error::Invalid { context, message } => SpecError::Invalid { context, message },
            other => SpecError::Invalid {
                context: "spec".into(),
                message: other.to_string(),
            },
        }
    }
}
