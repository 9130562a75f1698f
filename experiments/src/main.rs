//! `schedlab`: compare scheduling strategies on synthetic workloads.
//!
//! `main` is tiny: parse, validate everything up front, run. Bad input exits with code 2 and
//! one line naming the input; a failure while running exits with 1.

use std::process::ExitCode;

use clap::Parser;
use experiments::cli::Cli;
use experiments::CliError;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return experiments::cli::clap_exit(e),
    };
    match experiments::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Input(msg)) => {
            eprintln!("schedlab: {msg}");
            ExitCode::from(2)
        }
        Err(CliError::Run(e)) => {
            eprintln!("schedlab: {e:#}");
            ExitCode::from(1)
        }
    }
}
