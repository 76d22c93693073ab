//! `netmatrix report history`: reads the run reports and hands them to netmatrix-report's
//! history, which merges and renders them.

use std::path::PathBuf;

use clap::ValueEnum;
use netmatrix_report::history;

use crate::{CliError, Outcome};

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Merge earlier JSON run reports (`run --json`) into per-case and per-cell pass, fail and
    /// flaky rates, newest run first; what changed verdict between runs is flagged.
    History(HistoryArgs),
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// JSON run reports, in any order (they are ordered by their `started`).
    #[arg(value_name = "RUN.json", required = true)]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = HistoryFormat::Txt)]
    pub output: HistoryFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HistoryFormat {
    Txt,
    /// Schema netmatrix.history/v1.
    Json,
    /// One self-contained page.
    Html,
}

pub fn run(command: ReportCommand) -> Result<Outcome, CliError> {
    let ReportCommand::History(args) = command;
    crate::print(&render(&args)?)
}

/// The history of `args.files` as `args.output` says; a file that is no run report is bad
/// input, named with its field.
fn render(args: &HistoryArgs) -> Result<Vec<u8>, CliError> {
    let mut runs = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("{name}: cannot read: {e}")))?;
        let report = history::parse_run(&text).map_err(|e| CliError::Usage(format!("{name}: {e}")))?;
        runs.push((name, report));
    }
    let merged = history::merge(runs);
    let mut out = Vec::new();
    match args.output {
        HistoryFormat::Txt => history::text::write(&mut out, &merged),
        HistoryFormat::Html => history::html::write(&mut out, &merged),
        HistoryFormat::Json => history::write_json(&mut out, &merged),
    }
    .expect("writing into memory");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<HistoryArgs, clap::Error> {
        let cli = Cli::try_parse_from(["netmatrix", "report", "history"].iter().chain(args))?;
        let Command::Report(ReportCommand::History(a)) = cli.command else { panic!("report history") };
        Ok(a)
    }

    #[test]
    fn flags() {
        let a = parse(&["b.json", "a.json", "-o", "html"]).unwrap();
        assert_eq!(a.files, [PathBuf::from("b.json"), PathBuf::from("a.json")]);
        assert_eq!(a.output, HistoryFormat::Html);
        assert_eq!(parse(&["a.json"]).unwrap().output, HistoryFormat::Txt, "the terminal by default");
        assert_eq!(parse(&["a.json", "--output", "json"]).unwrap().output, HistoryFormat::Json);
        assert!(parse(&[]).is_err(), "a report is required");
        assert!(parse(&["a.json", "-o", "csv"]).is_err());
    }

    #[test]
    fn a_missing_file_is_bad_input_naming_it() {
        let err = render(&HistoryArgs { files: vec!["/nonexistent/r.json".into()], output: HistoryFormat::Txt }).unwrap_err();
        assert_eq!(err.outcome(), Outcome::BadInput);
        assert!(err.to_string().starts_with("/nonexistent/r.json: cannot read: "), "{err}");
    }
}
