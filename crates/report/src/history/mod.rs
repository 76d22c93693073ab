//! `netmatrix report history`: earlier JSON run reports merged into one history per case and per
//! cell, newest run first, with how often each passed, failed or was flaky and whether its
//! verdict changed between runs (what a CI-health rotation otherwise reads off run after run).
//! The command reads the files; this parses, merges and renders ([`text`], [`html`], and JSON
//! as the [`History`] serializes, schema [`SCHEMA`]).

pub mod html;
pub mod text;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::SystemTime;

use netmatrix_model::Protocol;
use netmatrix_results::{CaseResult, Check, Comparison, RunReport, Summary};
use serde::Serialize;

use crate::matrix::check_name;

pub const SCHEMA: &str = "netmatrix.history/v1";

/// Why a file is no run report: the field and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// `field` is a path such as `cases[0].result`; empty for the report itself.
    #[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
    Field { field: String, message: String },
}

/// Reads one run report (schema `netmatrix.run/v1`), naming the field that does not read.
pub fn parse_run(text: &str) -> Result<RunReport, ReadError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(ReadError::Json)?;
    let field = |field: &str, message: String| ReadError::Field { field: field.into(), message };
    // Checked first: another document (a history, a coverage report) would otherwise read as a
    // run report with fields missing.
    match value.get("schema") {
        Some(serde_json::Value::String(schema)) if schema == netmatrix_results::SCHEMA => {}
        Some(other) => return Err(field("schema", format!("{other} is not {}: not a run report", netmatrix_results::SCHEMA))),
        None => return Err(field("schema", format!("missing: not a run report ({})", netmatrix_results::SCHEMA))),
    }
    let report: RunReport = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        field(if path == "." { "" } else { &path }, e.into_inner().to_string())
    })?;
    if started(&report).is_none() {
        return Err(field("started", format!("{:?} is not an RFC 3339 UTC time such as 2025-05-01T10:00:00Z", report.started)));
    }
    Ok(report)
}

fn started(report: &RunReport) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(&report.started).ok()
}

/// Every run merged: `runs` newest first, and per case and per cell one entry per run in that
/// order.
#[derive(Debug, Serialize)]
pub struct History {
    pub schema: &'static str,
    pub runs: Vec<RunInfo>,
    /// Every case of any run, by id.
    pub cases: Vec<CaseHistory>,
    /// The cells that in some run were not as expected (wrong, inconclusive or not probed), by
    /// case, step and cell; a cell always as expected adds nothing to its case's history.
    pub cells: Vec<CellHistory>,
}

#[derive(Debug, Serialize)]
pub struct RunInfo {
    /// The file it was read from, as given.
    pub file: String,
    pub started: String,
    pub backend: String,
    pub profile: String,
    pub summary: Summary,
}

#[derive(Debug, Serialize)]
pub struct CaseHistory {
    pub id: String,
    /// Per run, newest first; `null` where the run did not have the case.
    pub results: Vec<Option<CaseResult>>,
    #[serde(flatten)]
    pub counts: Counts,
    pub skipped: usize,
    /// Its result differed between the runs that carried it out.
    pub changed: bool,
}

#[derive(Debug, Serialize)]
pub struct CellHistory {
    pub case: String,
    /// The step's place in the case, from 1, and its name.
    pub step: usize,
    pub step_name: String,
    pub src: String,
    pub dst: String,
    pub port: u16,
    pub protocol: Protocol,
    pub check: Check,
    /// Per run, newest first; `null` where the run did not probe the cell.
    pub verdicts: Vec<Option<Comparison>>,
    #[serde(flatten)]
    pub counts: Counts,
    /// Its verdict differed between the runs that probed it (`undefined` counts for none).
    pub changed: bool,
}

/// How the runs that carried a case out, or probed a cell, ended: `passed` (as expected),
/// `failed` (wrong), `flaky` (inconclusive), `errors` (could not be carried out or probed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub runs: usize,
    pub passed: usize,
    pub failed: usize,
    pub flaky: usize,
    pub errors: usize,
}

/// The outcomes that count, as one type for cases and cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Flaky,
    Error,
}

impl Counts {
    fn of(outcomes: impl Iterator<Item = Outcome>) -> Counts {
        let mut counts = Counts::default();
        for outcome in outcomes {
            counts.runs += 1;
            *match outcome {
                Outcome::Passed => &mut counts.passed,
                Outcome::Failed => &mut counts.failed,
                Outcome::Flaky => &mut counts.flaky,
                Outcome::Error => &mut counts.errors,
            } += 1;
        }
        counts
    }

    /// `n` of the counted runs as a whole percentage; `None` without runs.
    pub fn percent(&self, n: usize) -> Option<usize> {
        (self.runs > 0).then(|| (n * 100 + self.runs / 2) / self.runs)
    }

    /// [`Counts::percent`] as the renderers print it: `67%`, `-` without runs.
    pub(crate) fn rate(&self, n: usize) -> String {
        self.percent(n).map_or("-".to_owned(), |p| format!("{p}%"))
    }
}

fn case_outcome(result: CaseResult) -> Option<Outcome> {
    match result {
        CaseResult::Pass => Some(Outcome::Passed),
        CaseResult::Fail => Some(Outcome::Failed),
        CaseResult::Flaky => Some(Outcome::Flaky),
        CaseResult::Error => Some(Outcome::Error),
        CaseResult::Skipped => None,
    }
}

fn cell_outcome(comparison: Comparison) -> Option<Outcome> {
    match comparison {
        Comparison::AsExpected => Some(Outcome::Passed),
        Comparison::Wrong => Some(Outcome::Failed),
        Comparison::Inconclusive => Some(Outcome::Flaky),
        Comparison::Error => Some(Outcome::Error),
        Comparison::Undefined => None,
    }
}

/// The counted outcomes among `entries` and whether they differ.
fn tally<T: Copy>(entries: &[Option<T>], outcome: impl Fn(T) -> Option<Outcome>) -> (Counts, bool) {
    let outcomes: Vec<Outcome> = entries.iter().flatten().filter_map(|e| outcome(*e)).collect();
    let changed = outcomes.windows(2).any(|pair| pair[0] != pair[1]);
    (Counts::of(outcomes.into_iter()), changed)
}

/// What makes two runs' cells the same cell.
type CellKey = (String, usize, String, String, u16, Protocol, &'static str);

/// Merges `runs` (file name, report) into their history, newest `started` first; runs started
/// at the same time keep their order.
pub fn merge(mut runs: Vec<(String, RunReport)>) -> History {
    // Newest first; `parse_run` admits no report without a time.
    runs.sort_by_key(|(_, report)| std::cmp::Reverse(started(report)));
    let n = runs.len();
    let mut cases: BTreeMap<String, Vec<Option<CaseResult>>> = BTreeMap::new();
    let mut cells: BTreeMap<CellKey, (String, Check, Vec<Option<Comparison>>)> = BTreeMap::new();
    for (index, (_, report)) in runs.iter().enumerate() {
        for case in &report.cases {
            cases.entry(case.id.clone()).or_insert_with(|| vec![None; n])[index].get_or_insert(case.result);
            for (step_index, step) in case.steps.iter().enumerate() {
                for cell in &step.cells {
                    let key = (case.id.clone(), step_index + 1, cell.src.clone(), cell.dst.clone(), cell.port, cell.protocol, check_name(cell.check));
                    let entry = cells.entry(key).or_insert_with(|| (step.name.clone(), cell.check, vec![None; n]));
                    entry.2[index].get_or_insert(cell.comparison());
                }
            }
        }
    }
    let cases = cases
        .into_iter()
        .map(|(id, results)| {
            let (counts, changed) = tally(&results, case_outcome);
            let skipped = results.iter().filter(|r| **r == Some(CaseResult::Skipped)).count();
            CaseHistory { id, results, counts, skipped, changed }
        })
        .collect();
    let cells = cells
        .into_iter()
        .filter(|(_, (_, _, verdicts))| verdicts.iter().flatten().any(|v| matches!(v, Comparison::Wrong | Comparison::Inconclusive | Comparison::Error)))
        .map(|((case, step, src, dst, port, protocol, _), (step_name, check, verdicts))| {
            let (counts, changed) = tally(&verdicts, cell_outcome);
            CellHistory { case, step, step_name, src, dst, port, protocol, check, verdicts, counts, changed }
        })
        .collect();
    let runs = runs.into_iter().map(|(file, r)| RunInfo { file, started: r.started, backend: r.backend, profile: r.profile, summary: r.summary }).collect();
    History { schema: SCHEMA, runs, cases, cells }
}

/// `-o json`: the history as pretty JSON, schema [`SCHEMA`].
pub fn write_json(out: &mut impl Write, history: &History) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, history)?;
    writeln!(out)
}

/// A case's result as one character of its history (shared by the text and HTML histories).
pub(crate) fn result_symbol(result: Option<CaseResult>) -> char {
    match result {
        Some(CaseResult::Pass) => '.',
        Some(CaseResult::Fail) => 'X',
        Some(CaseResult::Flaky) => '?',
        Some(CaseResult::Error) => '!',
        Some(CaseResult::Skipped) => 's',
        None => '-',
    }
}

/// A cell's verdict as one character: the comparison table's symbol, `-` where not probed.
pub(crate) fn verdict_symbol(verdict: Option<Comparison>) -> char {
    verdict.map_or('-', Comparison::symbol)
}

/// `x/a -> svc:x/web 80/TCP`, with the check when it is not reachability.
pub(crate) fn cell_name(cell: &CellHistory) -> String {
    let mut name = format!("{} -> {} {}/{}", cell.src, cell.dst, cell.port, cell.protocol);
    if cell.check != Check::Reach {
        name.push_str(&format!(" ({})", check_name(cell.check)));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmatrix_results::{CaseReport, Cell, ClusterInfo, Expected, Observed, StepReport, TargetKind};

    fn cell(dst: &str, observed: Observed) -> Cell {
        Cell {
            src: "x/a".into(),
            dst: dst.into(),
            port: 80,
            protocol: Protocol::Tcp,
            expected: Expected::Allow,
            observed,
            tries: 1,
            latency_ms: None,
            answered_by: None,
            history: vec![observed],
            tried_at_ms: vec![0],
            expected_before: None,
            src_node: None,
            dst_node: None,
            target: TargetKind::Pod,
            service: None,
            hairpin: false,
            check: Check::Reach,
            detail: None,
            explanation: None,
            family: None,
        }
    }

    fn run(started: &str, cases: &[(&str, &[Cell])]) -> RunReport {
        let cases: Vec<CaseReport> = cases
            .iter()
            .map(|(id, cells)| {
                let steps = vec![StepReport { name: "probe".into(), tries: 1, cells: cells.to_vec() }];
                CaseReport { duration_ms: 1, ..CaseReport::of_steps(*id, steps) }
            })
            .collect();
        RunReport {
            schema: netmatrix_results::SCHEMA.into(),
            backend: "lab".into(),
            profile: "lab".into(),
            started: started.into(),
            duration_ms: 1,
            cluster: ClusterInfo::default(),
            summary: Summary::of(&cases),
            cases,
            features: vec![],
        }
    }

    #[test]
    fn newest_first_whatever_the_order_given() {
        let history = merge(vec![
            ("b".into(), run("2025-05-02T00:00:00Z", &[("s/c", &[cell("x/b", Observed::Deny)])])),
            ("c".into(), run("2025-05-03T00:00:00Z", &[("s/c", &[cell("x/b", Observed::Allow)])])),
            ("a".into(), run("2025-05-01T00:00:00.5Z", &[])),
        ]);
        let files: Vec<&str> = history.runs.iter().map(|r| r.file.as_str()).collect();
        assert_eq!(files, ["c", "b", "a"]);
        let case = &history.cases[0];
        assert_eq!(case.results, [Some(CaseResult::Pass), Some(CaseResult::Fail), None], "absent from the oldest");
        assert_eq!((case.counts.runs, case.counts.passed, case.counts.failed, case.changed), (2, 1, 1, true));
        assert_eq!(history.cells.len(), 1);
        assert_eq!(history.cells[0].verdicts, [Some(Comparison::AsExpected), Some(Comparison::Wrong), None]);
        assert!(history.cells[0].changed);
    }

    #[test]
    fn cells_always_as_expected_are_left_out_and_steady_ones_are_not_changed() {
        let both = [cell("x/b", Observed::Allow), cell("x/c", Observed::Deny)];
        let history = merge(vec![("1".into(), run("2025-05-01T00:00:00Z", &[("s/c", &both)])), ("2".into(), run("2025-05-02T00:00:00Z", &[("s/c", &both)]))]);
        assert_eq!(history.cells.len(), 1, "x/a -> x/b was always as expected");
        let wrong = &history.cells[0];
        assert_eq!((wrong.dst.as_str(), wrong.counts.failed, wrong.changed), ("x/c", 2, false));
        assert_eq!(cell_name(wrong), "x/a -> x/c 80/TCP");
        assert!(!history.cases[0].changed, "failed both times");
        assert_eq!(history.cases[0].counts.percent(history.cases[0].counts.failed), Some(100));
    }

    #[test]
    fn skipped_and_undefined_count_for_nothing() {
        let mut skipped = run("2025-05-02T00:00:00Z", &[("s/c", &[])]);
        skipped.cases[0].result = CaseResult::Skipped;
        let mut undefined = cell("x/b", Observed::Deny);
        undefined.expected = Expected::Undefined;
        let history = merge(vec![
            ("1".into(), run("2025-05-01T00:00:00Z", &[("s/c", &[cell("x/b", Observed::Inconclusive)])])),
            ("2".into(), skipped),
            ("3".into(), run("2025-05-03T00:00:00Z", &[("s/c", &[undefined])])),
        ]);
        let case = &history.cases[0];
        assert_eq!(case.results.iter().map(|r| result_symbol(*r)).collect::<String>(), ".s?");
        assert_eq!((case.counts.runs, case.skipped, case.changed), (2, 1, true));
        let cell = &history.cells[0];
        assert_eq!(cell.verdicts.iter().map(|v| verdict_symbol(*v)).collect::<String>(), "#-?");
        assert_eq!((cell.counts.runs, cell.counts.flaky, cell.changed), (1, 1, false), "one counted verdict");
        assert_eq!(cell.counts.percent(cell.counts.flaky), Some(100));
    }

    #[test]
    fn a_report_that_does_not_read_names_the_field() {
        let good = serde_json::to_string(&run("2025-05-01T00:00:00Z", &[("s/c", &[cell("x/b", Observed::Allow)])])).unwrap();
        assert!(parse_run(&good).is_ok());
        let error = |from: &str, to: &str| parse_run(&good.replacen(from, to, 1)).unwrap_err().to_string();
        assert_eq!(
            error("\"result\":\"pass\"", "\"result\":\"passed\""),
            "cases[0].result: unknown variant `passed`, expected one of `pass`, `fail`, `flaky`, `error`, `skipped`"
        );
        assert_eq!(error("\"port\":80", "\"port\":\"80\""), "cases[0].steps[0].cells[0].port: invalid type: string \"80\", expected u16");
        assert_eq!(error("\"started\":\"2025-05-01T00:00:00Z\",", ""), "missing field `started`");
        assert_eq!(error("2025-05-01T00:00:00Z", "yesterday"), "started: \"yesterday\" is not an RFC 3339 UTC time such as 2025-05-01T10:00:00Z");
        assert_eq!(error("netmatrix.run/v1", "netmatrix.history/v1"), "schema: \"netmatrix.history/v1\" is not netmatrix.run/v1: not a run report");
        assert!(parse_run("{").unwrap_err().to_string().starts_with("not JSON: "));
        assert_eq!(parse_run("{}").unwrap_err().to_string(), "schema: missing: not a run report (netmatrix.run/v1)");
    }
}
