//! What a person and a CI system read of one engine run on the fake backend with one wrong
//! cell: the tables, the JUnit XML and the JSON report, times redacted. Feature coverage as the
//! default `--tables failed` prints it; the reports keep the features the case exercised, which
//! stand for the whole list.

use netmatrix_cluster::fake::FakeBackend;
use std::sync::Arc;

use netmatrix_cluster::Outcome;
use netmatrix_engine::{ManualClock, ProbeConfig, run, suites, world::node_names};
use netmatrix_results::RunReport;

fn report() -> RunReport {
    let mut fake = FakeBackend::new(3);
    // x/b's connection to x/a on 80 is lost: the one wrong cell.
    fake.inject(Box::new(|p| (p.src == "x/b" && p.dst == Some("x/a") && p.port == 80).then_some(Outcome::Timeout)));
    let world = suites::world(&node_names(3), false);
    let cases: Vec<_> = suites::cases(&["netpol".into()]).unwrap().into_iter().filter(|c| c.id == "netpol/pod-selector").collect();
    run(&mut fake, &world, &cases, &ProbeConfig { clock: Arc::new(ManualClock::default()), ..ProbeConfig::default() }, &|_| {}).unwrap()
}

/// Durations differ from run to run.
fn without_times(text: &str) -> String {
    let re = regex::Regex::new(r"\d+(\.\d+)?(ms|s)\b").unwrap();
    re.replace_all(text, "[time]").into_owned()
}

#[test]
fn tables() {
    let report = report();
    let mut out = Vec::new();
    netmatrix_report::tables::write_case(&mut out, &report.cases[0], false, netmatrix_report::tables::Tables::All).unwrap();
    netmatrix_report::features::write_features(&mut out, &report, false, netmatrix_report::tables::Tables::Failed).unwrap();
    netmatrix_report::tables::write_summary(&mut out, &report, false).unwrap();
    insta::assert_snapshot!(without_times(&String::from_utf8(out).unwrap()));
}

#[test]
fn junit() {
    let mut report = report();
    report.features.retain(|f| !f.cases.is_empty());
    let mut out = Vec::new();
    netmatrix_report::junit::write(&mut out, &report).unwrap();
    let xml = String::from_utf8(out).unwrap();
    let re = regex::Regex::new(r#"(time|timestamp)="[^"]*""#).unwrap();
    insta::assert_snapshot!(without_times(&re.replace_all(&xml, r#"$1="[time]""#)));
}

#[test]
fn json() {
    let mut report = report();
    // The wrong cell and its neighbours stand for the 144.
    for step in &mut report.cases[0].steps {
        step.cells.retain(|c| c.dst == "x/a" && c.port == 80 && c.src.starts_with("x/"));
    }
    report.features.retain(|f| !f.cases.is_empty());
    insta::assert_json_snapshot!(report, {
        ".started" => "[time]",
        ".duration_ms" => "[time]",
        ".cases[].duration_ms" => "[time]",
        ".cases[].steps[].cells[].latency_ms" => "[latency]",
        ".cases[].steps[].cells[].tried_at_ms" => "[times]",
        ".cases[].findings[].cells" => "[cells]",
    });
}
