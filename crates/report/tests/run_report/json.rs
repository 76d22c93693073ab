use netmatrix_report::json_report::write_json;
use netmatrix_results::{Feature, RunReport, SCHEMA};

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

#[test]
fn features_are_an_added_field_with_every_feature() {
    let mut out = Vec::new();
    write_json(&mut out, &report()).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let features = value["features"].as_array().unwrap();
    assert_eq!(features.len(), Feature::ALL.len());
    let of = |id: &str| features.iter().find(|f| f["feature"] == id).unwrap();
    assert_eq!(
        of("netpol.pod-selector-empty"),
        &serde_json::json!({"feature": "netpol.pod-selector-empty", "group": "NetworkPolicy", "result": "fail",
            "cases": ["netpol/deny-ingress-from-y", "netpol/allow-all"], "passed": 1, "failed": 1})
    );
    assert_eq!((&of("service.protocol-sctp")["result"], &of("service.protocol-sctp")["cases"]), (&serde_json::json!("not-exercised"), &serde_json::json!([])));
    assert_eq!(value["cases"][1]["features"], serde_json::json!(["netpol.pod-selector-empty", "netpol.any-peer", "netpol.ingress"]));
    // A report written before feature coverage still reads.
    let mut old = value.clone();
    old.as_object_mut().unwrap().remove("features");
    old["cases"].as_array_mut().unwrap().iter_mut().for_each(|c| _ = c.as_object_mut().unwrap().remove("features"));
    let back: RunReport = serde_json::from_value(old).unwrap();
    assert!(back.features.is_empty() && back.cases.iter().all(|c| c.features.is_empty()));
}
