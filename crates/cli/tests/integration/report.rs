//! `netmatrix report history` over run reports as DESIGN.md shapes them.

use serde_json::{Value, json};

use crate::analyze::netmatrix;

/// A run of one case with one 80/TCP cell from x/a to x/b, expected allowed and observed `observed`.
fn run(started: &str, observed: &str) -> Value {
    let result = if observed == "allow" { "pass" } else { "fail" };
    json!({
        "schema": "netmatrix.run/v1", "backend": "lab", "started": started, "duration_ms": 10,
        "cluster": { "nodes": ["node0"], "server_version": "" },
        "summary": { "cases": 1, "passed": 0, "failed": 0, "flaky": 0, "errors": 0, "skipped": 0, "probes": 1, "wrong": 0 },
        "cases": [ { "id": "netpol/a", "labels": {}, "result": result, "duration_ms": 5, "diagnosis": [],
                     "steps": [ { "name": "probe", "tries": 1,
                                  "cells": [ { "src": "x/a", "dst": "x/b", "port": 80, "protocol": "TCP", "expected": "allow",
                                               "observed": observed, "tries": 1 } ] } ] } ]
    })
}

fn write(dir: &std::path::Path, name: &str, report: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, report.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn history_of_three_runs_in_each_format() {
    let dir = tempfile::tempdir().unwrap();
    let newest = write(dir.path(), "c.json", &run("2025-05-03T10:00:00Z", "deny"));
    let oldest = write(dir.path(), "a.json", &run("2025-05-01T10:00:00Z", "deny"));
    let middle = write(dir.path(), "b.json", &run("2025-05-02T10:00:00Z", "allow"));
    let out = netmatrix(&["report", "history", &oldest, &newest, &middle]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("  1. 2025-05-03T10:00:00Z lab: cases:1,") && text.contains(&format!("({newest})\n")), "{text}");
    assert!(text.contains("\nX.X         3   33%   67%     0%     0%  netpol/a  changed\n"), "{text}");
    assert!(text.contains("\nX.X         3   33%   67%     0%     0%    x/a -> x/b 80/TCP  changed\n"), "{text}");

    let out = netmatrix(&["report", "history", "-o", "json", &oldest, &newest, &middle]);
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(history["schema"], "netmatrix.history/v1");
    assert_eq!(history["cases"][0]["results"], json!(["fail", "pass", "fail"]));
    assert_eq!(history["cells"][0]["verdicts"], json!(["wrong", "as-expected", "wrong"]));

    let out = netmatrix(&["report", "history", "-o", "html", &oldest]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("<!doctype html>"));
}

#[test]
fn a_file_that_is_no_run_report_exits_2_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", &run("2025-05-01T10:00:00Z", "allow"));
    let mut wrong_result = run("2025-05-02T10:00:00Z", "allow");
    wrong_result["cases"][0]["result"] = json!("passed");
    let mut no_time = run("2025-05-02T10:00:00Z", "allow");
    no_time.as_object_mut().unwrap().remove("started");
    let mut coverage = run("2025-05-02T10:00:00Z", "allow");
    coverage["schema"] = json!("netmatrix.coverage/v1");
    for (name, report, message) in [
        ("result.json", wrong_result, "result.json: cases[0].result: unknown variant `passed`"),
        ("started.json", no_time, "started.json: missing field `started`"),
        ("coverage.json", coverage, "coverage.json: schema: \"netmatrix.coverage/v1\" is not netmatrix.run/v1"),
    ] {
        let bad = write(dir.path(), name, &report);
        let out = netmatrix(&["report", "history", &good, &bad]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(message), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name}: nothing printed");
    }
    let out = netmatrix(&["report", "history", "/nonexistent/run.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/run.json: cannot read: "));
    assert_eq!(netmatrix(&["report", "history"]).status.code(), Some(2), "no report is a usage error");
}
