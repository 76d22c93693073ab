//! `netmatrix run`'s results as text truth tables (DESIGN.md "Truth tables"), in the layout of
//! the upstream Kubernetes e2e NetworkPolicy tables: a `-` corner, target column headers, one
//! character per cell.

use std::io::{self, Write};

use crate::matrix::{Matrix, Order, check_name, matrices};
use netmatrix_results::{CaseReport, CaseResult, Cell, Check, Comparison, Expected, Observed, RunReport, StepReport, Tally};

/// Tables wider than this get numbered columns and a legend, so they fit a terminal.
pub(crate) const MAX_WIDTH: usize = 100;

pub(crate) const RED: &str = "\x1b[31m";
pub(crate) const GREEN: &str = "\x1b[32m";
pub(crate) const YELLOW: &str = "\x1b[33m";
const MAGENTA: &str = "\x1b[35m";
const RESET: &str = "\x1b[0m";
/// Cells listed one by one under a step; the tables and the diagnosis carry the rest.
const MAX_LISTED: usize = 12;

/// Which steps' tables a case prints (`--tables`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tables {
    /// Every step's.
    All,
    /// Only the steps with a cell wrong, inconclusive or failed; a passing case is one line.
    #[default]
    Failed,
    /// None: one line per case (and why it was skipped or could not run).
    None,
}

/// One case: a line (result, duration, cells, wrong cells, labels), then, as `tables` says, per
/// step its expected, observed and comparison tables, the tally and the cells that were not as
/// expected, and the case's diagnosis.
pub fn write_case(out: &mut impl Write, case: &CaseReport, color: bool, tables: Tables) -> io::Result<()> {
    let result = paint(color, result_color(case.result), result_name(case.result));
    let cells: usize = case.steps.iter().map(|s| s.cells.len()).sum();
    let wrong: usize = case.steps.iter().map(|s| Tally::of(&s.cells).incorrect).sum();
    write!(out, "case {}: {result} ({}, cells:{cells}, wrong:{wrong})", case.id, duration(case.duration_ms))?;
    if !case.labels.is_empty() {
        let labels: Vec<String> = case.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        write!(out, " [{}]", labels.join(", "))?;
    }
    writeln!(out)?;
    if let Some(reason) = &case.skip_reason {
        writeln!(out, "skipped: {reason}")?;
    }
    if let Some(error) = &case.error {
        writeln!(out, "error: {error}")?;
    }
    let shown = |step: &StepReport| match tables {
        Tables::All => true,
        Tables::Failed => !Tally::of(&step.cells).ok(),
        Tables::None => false,
    };
    for (index, step) in case.steps.iter().enumerate().filter(|(_, s)| shown(s)) {
        write_step(out, step, index + 1, case.steps.len(), color)?;
    }
    if tables != Tables::None && !case.diagnosis.is_empty() {
        writeln!(out, "diagnosis:")?;
        for line in &case.diagnosis {
            writeln!(out, "  - {line}")?;
        }
    }
    Ok(())
}

/// The run's last line: case counts, probes, wrong cells and duration.
pub fn write_summary(out: &mut impl Write, report: &RunReport, color: bool) -> io::Result<()> {
    let s = &report.summary;
    let count = |n: usize, code: &str| if n > 0 { paint(color, code, &n.to_string()) } else { n.to_string() };
    writeln!(
        out,
        "summary: cases:{}, passed:{}, failed:{}, flaky:{}, errors:{}, skipped:{}, probes:{}, wrong:{}, duration:{}",
        s.cases,
        count(s.passed, GREEN),
        count(s.failed, RED),
        count(s.flaky, YELLOW),
        count(s.errors, MAGENTA),
        s.skipped,
        s.probes,
        count(s.wrong, RED),
        duration(report.duration_ms),
    )
}

fn write_step(out: &mut impl Write, step: &StepReport, number: usize, steps: usize, color: bool) -> io::Result<()> {
    writeln!(out, "step {number}/{steps}: {} (tries: {})", step.name, step.tries)?;
    for matrix in matrices(step, Order::Name) {
        let columns = column_headers(&matrix);
        if columns.numbered {
            let legend: Vec<String> = matrix.columns.iter().enumerate().map(|(i, name)| format!("{}={name}", i + 1)).collect();
            writeln!(out, "{} columns: {}", matrix.title, legend.join(", "))?;
        }
        writeln!(out, "{} expected:", matrix.title)?;
        write_table(out, &matrix, &columns, |c| (c.expected.symbol(), None))?;
        writeln!(out, "{} observed:", matrix.title)?;
        write_table(out, &matrix, &columns, |c| (c.observed.symbol(), None))?;
        writeln!(out, "{} comparison:", matrix.title)?;
        write_table(out, &matrix, &columns, |c| {
            let comparison = c.comparison();
            (comparison.symbol(), if color { comparison_color(comparison) } else { None })
        })?;
    }
    let tally = Tally::of(&step.cells);
    write!(out, "reachability: correct:{}, incorrect:{}, inconclusive:{}, result={}", tally.correct, tally.incorrect, tally.inconclusive, tally.ok())?;
    // Appended only when present, so the common line is exactly the upstream e2e one.
    if tally.errors > 0 || tally.undefined > 0 {
        write!(out, ", errors:{}, undefined:{}", tally.errors, tally.undefined)?;
    }
    writeln!(out)?;
    let problems = not_as_expected(step);
    if !problems.is_empty() {
        writeln!(out, "not as expected:")?;
        for cell in problems.iter().take(MAX_LISTED) {
            writeln!(out, "  {} {}", cell.comparison().symbol(), describe_cell(cell))?;
        }
        if problems.len() > MAX_LISTED {
            writeln!(out, "  ... and {} more (the tables show them all, --json lists each)", problems.len() - MAX_LISTED)?;
        }
    }
    Ok(())
}

struct ColumnHeaders {
    labels: Vec<String>,
    /// Columns are numbers explained by a legend, as their names would not fit.
    numbered: bool,
    corner_width: usize,
}

fn column_headers(matrix: &Matrix) -> ColumnHeaders {
    let corner_width = matrix.rows.iter().map(|r| r.chars().count()).max().unwrap_or(0).max(1);
    let named_width: usize = corner_width + matrix.columns.iter().map(|c| c.chars().count() + 1).sum::<usize>();
    if named_width <= MAX_WIDTH {
        ColumnHeaders { labels: matrix.columns.clone(), numbered: false, corner_width }
    } else {
        let labels = (1..=matrix.columns.len()).map(|n| n.to_string()).collect();
        ColumnHeaders { labels, numbered: true, corner_width }
    }
}

/// `symbol` gives a cell's character and, when colouring, its ANSI colour.
fn write_table(out: &mut impl Write, matrix: &Matrix, headers: &ColumnHeaders, symbol: impl Fn(&Cell) -> (char, Option<&'static str>)) -> io::Result<()> {
    let widths: Vec<usize> = headers.labels.iter().map(|l| l.chars().count()).collect();
    let mut line = format!("{:<w$}", "-", w = headers.corner_width);
    for label in &headers.labels {
        line.push(' ');
        line.push_str(label);
    }
    writeln!(out, "{}", line.trim_end())?;
    for (row, source) in matrix.rows.iter().enumerate() {
        let mut line = format!("{source:<w$}", w = headers.corner_width);
        for (column, width) in widths.iter().enumerate() {
            line.push(' ');
            let (text, visible) = match matrix.cells.get(&(row, column)) {
                Some(cell) => match symbol(cell) {
                    (c, Some(code)) => (format!("{code}{c}{RESET}"), 1),
                    (c, None) => (c.to_string(), 1),
                },
                None => (String::new(), 0),
            };
            line.push_str(&text);
            line.extend(std::iter::repeat_n(' ', width.saturating_sub(visible)));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// The cells a reader has to look at: wrong, inconclusive, or whose probe failed.
pub(crate) fn not_as_expected(step: &StepReport) -> Vec<&Cell> {
    step.cells.iter().filter(|c| matches!(c.comparison(), Comparison::Wrong | Comparison::Inconclusive | Comparison::Error)).collect()
}

/// `x/a -> y/b 80/TCP: expected allow, observed deny, tries: deny deny; answered by ...`.
pub(crate) fn describe_cell(cell: &Cell) -> String {
    let mut text = String::new();
    if cell.check != Check::Reach {
        text.push_str(&format!("[{}] ", check_name(cell.check)));
    }
    text.push_str(&format!(
        "{} -> {} {}/{}{}: expected {}, observed {}",
        cell.src,
        cell.dst,
        cell.port,
        cell.protocol,
        cell.family.map(|f| format!(" {}", f.as_str())).unwrap_or_default(),
        expected_name(cell.expected),
        observed_name(cell.observed)
    ));
    if let (Some(from), Some(to)) = (&cell.src_node, &cell.dst_node) {
        text.push_str(&format!(" (node {from} -> {to})"));
    }
    text.push_str(&format!(", {} {}", cell.tries, if cell.tries == 1 { "try" } else { "tries" }));
    if !cell.history.is_empty() {
        let history: Vec<&str> = cell.history.iter().map(|o| observed_name(*o)).collect();
        text.push_str(&format!(": {}", history.join(" ")));
    }
    if let Some(server) = &cell.answered_by {
        text.push_str(&format!("; answered by {server}"));
    }
    if let Some(detail) = &cell.detail {
        text.push_str(&format!("; {detail}"));
    }
    if let Some(why) = &cell.explanation {
        text.push_str(&format!("\n      expected because {why}"));
    }
    text
}

pub(crate) fn expected_name(expected: Expected) -> &'static str {
    match expected {
        Expected::Allow => "allow",
        Expected::Deny => "deny",
        Expected::Undefined => "undefined",
    }
}

pub(crate) fn observed_name(observed: Observed) -> &'static str {
    match observed {
        Observed::Allow => "allow",
        Observed::Deny => "deny",
        Observed::Inconclusive => "inconclusive",
        Observed::Error => "error",
    }
}

pub(crate) fn result_name(result: CaseResult) -> &'static str {
    match result {
        CaseResult::Pass => "pass",
        CaseResult::Fail => "fail",
        CaseResult::Flaky => "flaky",
        CaseResult::Error => "error",
        CaseResult::Skipped => "skipped",
    }
}

/// `850ms`, `12.3s`.
pub(crate) fn duration(ms: u64) -> String {
    if ms < 1000 { format!("{ms}ms") } else { format!("{:.1}s", ms as f64 / 1000.0) }
}

fn comparison_color(comparison: Comparison) -> Option<&'static str> {
    match comparison {
        Comparison::AsExpected => Some(GREEN),
        Comparison::Wrong => Some(RED),
        Comparison::Inconclusive => Some(YELLOW),
        Comparison::Error => Some(MAGENTA),
        Comparison::Undefined => None,
    }
}

fn result_color(result: CaseResult) -> &'static str {
    match result {
        CaseResult::Pass => GREEN,
        CaseResult::Fail => RED,
        CaseResult::Flaky => YELLOW,
        CaseResult::Error => MAGENTA,
        CaseResult::Skipped => "",
    }
}

pub(crate) fn paint(color: bool, code: &str, text: &str) -> String {
    if color && !code.is_empty() { format!("{code}{text}{RESET}") } else { text.to_string() }
}
