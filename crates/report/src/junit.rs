//! `--junit`: one `<testsuite>` per suite, one `<testcase>` per case (DESIGN.md), so CI systems
//! show each case with its truth tables and the cells that were wrong.

use std::io::{self, Write};
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::tables::{Tables, describe_cell, write_case};
use netmatrix_results::{CaseReport, CaseResult, Cell, Comparison, RunReport};

pub fn write(out: &mut impl Write, report: &RunReport) -> io::Result<()> {
    // Suites in the order their first case ran, each with its cases' total time.
    let mut suites: Vec<(TestSuite, u64)> = Vec::new();
    for case in &report.cases {
        let (suite, name) = case.id.split_once('/').unwrap_or((case.id.as_str(), case.id.as_str()));
        let index = match suites.iter().position(|(s, _)| s.name.as_str() == suite) {
            Some(index) => index,
            None => {
                suites.push((TestSuite::new(suite), 0));
                suites.len() - 1
            }
        };
        let (test_suite, ms) = &mut suites[index];
        test_suite.add_test_case(test_case(case, suite, name)?);
        *ms += case.duration_ms;
    }
    let mut junit = Report::new("netmatrix");
    junit.set_time(Duration::from_millis(report.duration_ms));
    for (mut suite, ms) in suites {
        suite.set_time(Duration::from_millis(ms));
        junit.add_test_suite(suite);
    }
    junit.serialize(out).map_err(io::Error::other)
}

fn test_case(case: &CaseReport, suite: &str, name: &str) -> io::Result<TestCase> {
    let cells_with = |wanted: Comparison| -> Vec<&Cell> { case.steps.iter().flat_map(|s| &s.cells).filter(|c| c.comparison() == wanted).collect() };
    let status = match case.result {
        CaseResult::Pass => TestCaseStatus::success(),
        CaseResult::Fail => problem(NonSuccessKind::Failure, "wrong", &cells_with(Comparison::Wrong), "wrong", case),
        CaseResult::Flaky => problem(NonSuccessKind::Failure, "inconclusive", &cells_with(Comparison::Inconclusive), "inconclusive", case),
        CaseResult::Error => match &case.error {
            Some(error) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_type("error").set_message(error.as_str());
                status
            }
            None => problem(NonSuccessKind::Error, "error", &cells_with(Comparison::Error), "failed probes", case),
        },
        CaseResult::Skipped => {
            let mut status = TestCaseStatus::skipped();
            if let Some(reason) = &case.skip_reason {
                status.set_message(reason.as_str());
            }
            status
        }
    };
    let mut tables = Vec::new();
    write_case(&mut tables, case, false, Tables::All)?;
    let mut test_case = TestCase::new(name, status);
    test_case.set_classname(suite).set_time(Duration::from_millis(case.duration_ms)).set_system_out_lossy(tables);
    Ok(test_case)
}

/// The message names the cells (`2 wrong cells: y/a -> x/b 80/TCP, ...`); the description
/// describes each, with its tries, then the diagnosis.
fn problem(kind: NonSuccessKind, ty: &str, cells: &[&Cell], what: &str, case: &CaseReport) -> TestCaseStatus {
    let names: Vec<String> = cells.iter().map(|c| format!("{} -> {} {}/{}", c.src, c.dst, c.port, c.protocol)).collect();
    let mut description: Vec<String> = cells.iter().map(|c| describe_cell(c)).collect();
    description.extend(case.diagnosis.iter().map(|d| format!("diagnosis: {d}")));
    let mut status = TestCaseStatus::non_success(kind);
    status.set_type(ty).set_message(format!("{} {what} cells: {}", cells.len(), names.join(", "))).set_description(description.join("\n"));
    status
}
