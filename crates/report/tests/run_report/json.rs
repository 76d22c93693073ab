use netmatrix_report::json_report::write_json;
use netmatrix_results::{RunReport, SCHEMA};

use crate::fixture::report;

#[test]
fn round_trips_with_the_schema() {
    let report = report();
    let mut out = Vec::new();
    write_json(&mut out, &report).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(value["schema"], SCHEMA);
    assert_eq!(value["summary"]["wrong"], 3);
    assert_eq!(value["cases"][0]["steps"][0]["cells"][0]["protocol"], "TCP");
    assert_eq!(value["cases"][3]["result"], "skipped");
    let back: RunReport = serde_json::from_slice(&out).unwrap();
    assert_eq!(back, report);
    assert!(out.ends_with(b"}\n"), "pretty, with a final newline");
}
