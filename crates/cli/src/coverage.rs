//! `netmatrix coverage`: which API operations the requests in an audit log exercised, per
//! netmatrix case (the work is in netmatrix-coverage).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;

use clap::ValueEnum;
use netmatrix_coverage::{Coverage, Index, Report};

use crate::{CliError, Outcome};

#[derive(Debug, clap::Args)]
pub struct CoverageArgs {
    /// The API server's OpenAPI spec: /openapi/v2 (swagger.json), or OpenAPI 3 group documents
    /// (/openapi/v3/api/v1, /openapi/v3/apis/GROUP/VERSION); repeatable, merged.
    #[arg(long = "openapi", value_name = "FILE", required = true)]
    pub openapi: Vec<PathBuf>,
    /// The API server's audit log (JSON lines, audit.k8s.io/v1, as --audit-log-path writes it;
    /// `-`: standard input); repeatable, for rotated files.
    #[arg(long = "audit-log", value_name = "FILE", required = true)]
    pub audit_log: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = CoverageFormat::Txt)]
    pub output: CoverageFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CoverageFormat {
    Txt,
    Json,
    /// One self-contained page.
    Html,
}

pub fn run(args: CoverageArgs) -> Result<Outcome, CliError> {
    let stdout = io::stdout();
    report(&args, io::BufWriter::new(stdout.lock()))
}

fn report(args: &CoverageArgs, mut out: impl Write) -> Result<Outcome, CliError> {
    let index = Index::read(&args.openapi).map_err(|e| CliError::Usage(error_chain(&e)))?;
    let mut coverage = Coverage::new(&index);
    for path in &args.audit_log {
        let name = path.display().to_string();
        // Large reads: the parser, not the system calls, should bound the speed.
        let log: Box<dyn BufRead> = if name == "-" {
            Box::new(BufReader::with_capacity(1 << 20, io::stdin().lock()))
        } else {
            let file = File::open(path).map_err(|e| CliError::Usage(format!("opening {name}: {e}")))?;
            Box::new(BufReader::with_capacity(1 << 20, file))
        };
        coverage.read(&index, log).map_err(|source| CliError::Io { what: format!("reading {name}"), source })?;
    }
    if coverage.malformed > 0 {
        eprintln!("warning: {} of {} lines are no audit event (not JSON, or neither verb nor requestURI)", coverage.malformed, coverage.lines);
    }
    let report = Report::new(&index, &coverage);
    let written = match args.output {
        CoverageFormat::Txt => report.write_txt(&mut out),
        CoverageFormat::Json => report.write_json(&mut out),
        CoverageFormat::Html => report.write_html(&mut out),
    };
    written.and_then(|()| out.flush()).map_err(|source| CliError::Io { what: "writing the report".into(), source })?;
    Ok(Outcome::Ok)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../coverage/tests/fixtures");

    fn parse(args: &[&str]) -> Result<CoverageArgs, clap::Error> {
        let cli = Cli::try_parse_from(["netmatrix", "coverage"].iter().chain(args))?;
        let Command::Coverage(a) = cli.command else { panic!("coverage") };
        Ok(a)
    }

    #[test]
    fn flags() {
        let a = parse(&["--openapi", "v2.json", "--audit-log", "a.log", "--audit-log", "b.log", "-o", "json"]).unwrap();
        assert_eq!(a.openapi, [PathBuf::from("v2.json")]);
        assert_eq!(a.audit_log, [PathBuf::from("a.log"), PathBuf::from("b.log")]);
        assert_eq!(a.output, CoverageFormat::Json);
        assert_eq!(parse(&["--openapi", "s", "--audit-log", "l"]).unwrap().output, CoverageFormat::Txt);
        assert!(parse(&["--audit-log", "l"]).is_err(), "the spec is required");
        assert!(parse(&["--openapi", "s"]).is_err(), "the log is required");
        assert_eq!(parse(&["--openapi", "s", "--audit-log", "l", "-o", "html"]).unwrap().output, CoverageFormat::Html);
        assert!(parse(&["--openapi", "s", "--audit-log", "l", "-o", "csv"]).is_err());
    }

    fn args(openapi: &str, log: &str, output: CoverageFormat) -> CoverageArgs {
        CoverageArgs { openapi: vec![format!("{FIXTURES}/{openapi}").into()], audit_log: vec![format!("{FIXTURES}/{log}").into()], output }
    }

    #[test]
    fn reports_the_fixture() {
        let mut out = Vec::new();
        assert_eq!(report(&args("openapi-v2.json", "audit.jsonl", CoverageFormat::Txt), &mut out).unwrap(), Outcome::Ok);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("netpol/deny-all: connectCoreV1PostNamespacedPodExec x1"), "{text}");
        let mut out = Vec::new();
        report(&args("openapi-v2.json", "audit.jsonl", CoverageFormat::Json), &mut out).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["cases"][0]["case"], "netpol/deny-all");
    }

    #[test]
    fn missing_or_wrong_files_are_bad_input() {
        let err = report(&args("openapi-v2.json", "nothing.jsonl", CoverageFormat::Txt), Vec::new()).unwrap_err();
        assert_eq!(err.outcome(), Outcome::BadInput);
        assert!(err.to_string().contains("opening") && err.to_string().contains("nothing.jsonl"), "{err}");
        let err = report(&args("audit.jsonl", "audit.jsonl", CoverageFormat::Txt), Vec::new()).unwrap_err();
        assert_eq!(err.outcome(), Outcome::BadInput);
        assert!(err.to_string().contains("audit.jsonl: not JSON"), "{err}");
    }
}
