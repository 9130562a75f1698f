//! # experiments — the `schedlab` command-line tool
//!
//! Parses and validates a command, builds the inputs (strategy from `strategies`, task set from
//! `workloads`), runs them on an engine of `scheduler`, and prints or stores the `RunReport`.
//! No scheduling logic lives here.
//!
//! ```
//! use experiments::run::{RunArgs, RunPlan};
//! let args = RunArgs {
//!     strategy: "work-stealing".into(),
//!     workload: "constant(50us)".into(),
//!     tasks: 1000,
//!     workers: 64,
//!     engine: "sim".into(),
//!     ..RunArgs::default()
//! };
//! let report = RunPlan::new(&args).unwrap().execute().unwrap();
//! assert_eq!(report.executed, 1000);
//! assert_eq!(report.engine, "sim");
//! ```
#![deny(missing_docs)]

pub mod bench;
pub mod cli;
pub mod csv;
pub mod human;
pub mod limits;
pub mod output;
pub mod report_cmd;
pub mod run;
pub mod runner;
pub mod suite;
pub mod whatif;

/// How a command failed: bad input (exit 2) or a failure while running (exit 1).
#[derive(Debug)]
pub enum CliError {
    /// One line naming the input, the field and what is allowed.
    Input(String),
    /// Something went wrong while running.
    Run(anyhow::Error),
}

impl CliError {
    /// An input error for `flag`.
    pub fn input(flag: &str, e: impl std::fmt::Display) -> Self {
        CliError::Input(format!("{flag}: {e}"))
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Run(e)
    }
}

/// Run a parsed command.
pub fn dispatch(cli: cli::Cli) -> Result<(), CliError> {
    use cli::Command;
    match cli.command {
        Command::Run(args) => {
            let plan = run::RunPlan::new(&args)?;
            let report = plan.execute()?;
            let text = match args.format() {
                run::Format::Json => json_with_inputs(&report, &plan.inputs)? + "\n",
                run::Format::Csv => csv::report(&report),
                run::Format::Text => human::render_with_inputs(&report, Some(&plan.inputs)),
            };
            output::emit(&text, args.output.as_deref())
        }
        Command::Suite(args) => runner::suite(&args),
        Command::Merge(args) => runner::merge(&args),
        Command::Strategies { json } => output::emit(&human::strategies(json), None),
        Command::Topology { json } => {
            let t = scheduler::Topology::detect();
            let text = if json {
                serde_json::to_string(&t).map_err(anyhow::Error::from)? + "\n"
            } else {
                human::topology(&t)
            };
            output::emit(&text, None)
        }
        Command::Workload {
            spec,
            samples,
            seed,
            json,
        } => {
            let dist =
                workloads::Distribution::parse(&spec).map_err(|e| CliError::input("SPEC", e))?;
            if samples == 0 {
                return Err(CliError::input("-n", "must be at least 1, got 0"));
            }
            let summary = workloads::Summary::sample(&dist, samples, seed)
                .map_err(|e| CliError::input("SPEC", e))?;
            let text = if json {
                serde_json::to_string(&summary).map_err(anyhow::Error::from)? + "\n"
            } else {
                summary.render_text()
            };
            output::emit(&text, None)
        }
        Command::Bench(args) => bench::main(&args),
        Command::Report(args) => report_cmd::report(&args),
        Command::Compare(args) => report_cmd::compare(&args),
        Command::Whatif(args) => whatif::main(&args),
    }
}

/// The report as JSON with an `inputs` object holding every input that changed it.
pub fn json_with_inputs(
    report: &scheduler::RunReport,
    inputs: &run::Inputs,
) -> Result<String, CliError> {
    let mut v = serde_json::to_value(report).map_err(anyhow::Error::from)?;
    if let serde_json::Value::Object(map) = &mut v {
        map.insert(
            "inputs".into(),
            serde_json::to_value(inputs).map_err(anyhow::Error::from)?,
        );
    }
    Ok(v.to_string())
}
