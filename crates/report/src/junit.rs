//! `--junit`: one `<testsuite>` per suite, one `<testcase>` per case (DESIGN.md), so CI systems
//! show each case with its truth tables and the cells that were wrong. Feature coverage: each
//! testcase has a property `netmatrix.feature` per feature it exercised, and a last testsuite
//! without tests, [`FEATURES_SUITE`], one property per feature of the list (its result and
//! counts) and the feature table in its system-out; it adds no test to the counts.

use std::io::{self, Write};
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::features::write_features;
use crate::tables::{Tables, describe_cell, write_case};
use netmatrix_results::{CaseReport, CaseResult, Cell, Comparison, RunReport};

/// The testsuite of the feature coverage; a dot keeps it apart from the `suite/case` ids.
pub const FEATURES_SUITE: &str = "netmatrix.features";

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
    junit.add_test_suite(features_suite(report)?);
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
    test_case.add_properties(case.features.iter().map(|f| Property::new("netmatrix.feature", f.as_str())));
    Ok(test_case)
}

/// `netpol.ipblock` = `fail (cases:2, passed:1, failed:1)`, and the table as the terminal's
/// `--tables all` prints it.
fn features_suite(report: &RunReport) -> io::Result<TestSuite> {
    let mut suite = TestSuite::new(FEATURES_SUITE);
    suite.add_properties(
        report
            .features
            .iter()
            .map(|f| Property::new(f.feature.as_str(), format!("{} (cases:{}, passed:{}, failed:{})", f.result.as_str(), f.cases.len(), f.passed, f.failed))),
    );
    let mut table = Vec::new();
    write_features(&mut table, report, false, Tables::All)?;
    suite.set_system_out_lossy(table);
    Ok(suite)
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
