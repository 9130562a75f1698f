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
pub mod human;
pub mod limits;
pub mod run;

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
            let json = args.json;
            let report = plan.execute()?;
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", human::render(&report));
            }
            Ok(())
        }
        Command::Strategies { json } => {
            print!("{}", human::strategies(json));
            Ok(())
        }
        Command::Topology { json } => {
            let t = scheduler::Topology::detect();
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&t).map_err(anyhow::Error::from)?
                );
            } else {
                print!("{}", human::topology(&t));
            }
            Ok(())
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
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&summary).map_err(anyhow::Error::from)?
                );
            } else {
                print!("{}", summary.render_text());
            }
            Ok(())
        }
        Command::Bench(args) => bench::main(&args),
    }
}
