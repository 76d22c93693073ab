//! `netmatrix`: flags and glue only; the work lives in the library crates.

mod analyze;
mod args;
mod backend;
mod churn;
mod coverage;
mod files;
mod history;
mod image;
mod lab;
mod report_files;
mod run;
mod signals;
mod sonobuoy;

use std::process::ExitCode;

use clap::Parser;
use netmatrix_cluster::BackendError;
use netmatrix_engine::EngineError;
use netmatrix_lab::LabError;

/// How a command ended. [`Outcome::code`] is the one mapping onto the contract's exit codes
/// (DESIGN.md): 0 as expected, 1 some cell wrong, 2 bad input or usage, 3 infrastructure
/// failure, 128 + N after signal N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Wrong,
    BadInput,
    Failure,
    /// Stopped by a signal (SIGINT, SIGTERM, SIGHUP) after cleaning up.
    Interrupted(i32),
}

impl Outcome {
    fn code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Wrong => 1,
            Outcome::BadInput => 2,
            Outcome::Failure => 3,
            Outcome::Interrupted(signal) => 128 + signal as u8,
        }
    }
}

/// Why a command could not do its work; the cause is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Flags or input files are wrong: nothing was created.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Kube(#[from] netmatrix_kube::KubeError),
    #[error(transparent)]
    Churn(#[from] netmatrix_engine::churn::ChurnError),
    /// Removing what a run created failed: each failure, after trying them all.
    #[error("cleaning up: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Teardown(Vec<BackendError>),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// Bad input is the user's to fix (exit 2); everything else is the infrastructure's (exit 3).
    pub fn outcome(&self) -> Outcome {
        let bad_input = match self {
            CliError::Usage(_) => true,
            CliError::Lab(e) => e.is_bad_input(),
            CliError::Kube(e) => e.is_bad_input(),
            CliError::Backend(e) => e.is_bad_input(),
            CliError::Churn(e) => e.is_bad_input(),
            CliError::Engine(_) | CliError::Teardown(_) | CliError::Io { .. } => false,
        };
        if bad_input { Outcome::BadInput } else { Outcome::Failure }
    }
}

/// Generated text on stdout; a reader that stops early (`| head`) is no failure.
fn print(text: &[u8]) -> Result<Outcome, CliError> {
    use std::io::Write;
    match std::io::stdout().write_all(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Io { what: "writing to stdout".into(), source: e }),
        _ => Ok(Outcome::Ok),
    }
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let result = match cli.command {
        args::Command::Analyze(a) => Ok(analyze::run(a)),
        args::Command::Run(a) => run::run(*a),
        args::Command::Churn(a) => churn::run(*a),
        args::Command::Lab(command) => lab::run(command),
        args::Command::Cleanup { lab, kubeconfig: None, .. } => lab::cleanup(lab),
        args::Command::Cleanup { kubeconfig: Some(kubeconfig), context, run, .. } => backend::cleanup(kubeconfig, context, run),
        args::Command::Image(command) => Ok(image::run(command)),
        args::Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut <args::Cli as clap::CommandFactory>::command(), "netmatrix", &mut script);
            print(&script)
        }
        args::Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<args::Cli as clap::CommandFactory>::command()).render(&mut page).expect("rendering into memory");
            print(&page)
        }
        args::Command::Coverage(a) => coverage::run(a),
        args::Command::Report(command) => history::run(command),
        args::Command::Sonobuoy(args::SonobuoyCommand::Plugin(a)) => sonobuoy::print_plugin(a),
    };
    let outcome = result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        e.outcome()
    });
    ExitCode::from(outcome.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_contract() {
        assert_eq!(CliError::Usage("--nodes 0".into()).outcome().code(), 2);
        assert_eq!(CliError::Lab(LabError::NotFound("x".into())).outcome().code(), 2);
        assert_eq!(CliError::Lab(LabError::Teardown(vec!["deleting namespace".into()])).outcome().code(), 3, "a failed lab down is no bad input");
        assert_eq!(CliError::Lab(LabError::NotRoot).outcome().code(), 3);
        assert_eq!(CliError::Lab(LabError::Panicked("nft".into())).outcome().code(), 3);
        let busy = LabError::Busy { lab: "x".into(), holder: None, waited: std::time::Duration::from_secs(30) };
        assert_eq!(CliError::Lab(busy).outcome().code(), 3, "another command holding the lab is no bad input");
        assert_eq!(CliError::Backend(BackendError::NotReady { pods: "x/a".into(), deadline: Default::default() }).outcome().code(), 3);
        assert_eq!(CliError::Teardown(vec![BackendError::BadInput("no pod x/a".into())]).outcome().code(), 3);
        assert_eq!(Outcome::Interrupted(15).code(), 143);
        assert_eq!(Outcome::Interrupted(1).code(), 129);
    }
}
