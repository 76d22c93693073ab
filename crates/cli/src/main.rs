//! `netmatrix`: flags and glue only; the work lives in the library crates.

mod analyze;
mod args;
mod files;
mod lab;
mod run;

use std::process::ExitCode;

use clap::Parser;

/// The exit codes of the contract (DESIGN.md): 0 as expected, 1 some cell wrong, 2 bad input or
/// usage, 3 infrastructure failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok = 0,
    Wrong = 1,
    BadInput = 2,
    Failure = 3,
    /// Ctrl-C, as shells report SIGINT.
    Interrupted = 130,
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let outcome = match cli.command {
        args::Command::Analyze(a) => analyze::run(a),
        args::Command::Run(a) => run::run(*a),
        args::Command::Lab(command) => lab::run(command),
        args::Command::Cleanup { lab } => lab::cleanup(lab),
    };
    ExitCode::from(outcome as u8)
}
