//! `netmatrix churn` end to end on a lab it makes and removes itself (dual-stack, the default):
//! the JSON and HTML reports, and bad input refused before any lab exists. The lab run needs
//! root (CI is root).

use std::process::{Command, Output, Stdio};

use netmatrix_lab::Lab;
use netmatrix_results::churn::{CHURN_SCHEMA, ChurnReport};

fn root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED: netmatrix churn needs root to create the lab's network namespaces (CI runs as root)");
    }
    root
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs netmatrix and returns its output with the name of the lab it makes for itself (named
/// after its process).
fn churn(args: &[&str]) -> (Output, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_netmatrix")).arg("churn").args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let own_lab = format!("r{}", child.id() % 100_000);
    (child.wait_with_output().unwrap(), own_lab)
}

fn namespaces(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(prefix)).collect())
        .unwrap_or_default()
}

/// Nothing of lab `name` is left: not listed, no namespace. (Other tests of this binary make and
/// remove labs meanwhile, so `Lab::list()` as a whole may differ.)
fn assert_gone(name: &str, when: &str) {
    assert!(!Lab::list().contains(&name.to_owned()), "{when}: lab {name} is left: {:?}", Lab::list());
    assert!(namespaces(&format!("nm-{name}-")).is_empty(), "{when}: namespaces of lab {name} are left");
}

#[test]
fn churn_on_a_fresh_lab_writes_json_and_html_and_leaves_no_lab() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (json, html) = (dir.path().join("churn.json"), dir.path().join("churn.html"));
    let before = Lab::list();
    let (out, own_lab) =
        churn(&["--pattern", "ns-labels", "--pattern", "service-churn", "--changes", "3", "--json", json.to_str().unwrap(), "--html", html.to_str().unwrap()]);
    eprintln!("{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{}\nstderr:\n{}", text(&out.stdout), text(&out.stderr));
    assert!(!before.contains(&own_lab), "lab {own_lab} existed before the run");
    assert_gone(&own_lab, "after the run");
    assert!(text(&out.stdout).contains("pattern ns-labels: 3 changes"), "{}", text(&out.stdout));

    let report: ChurnReport = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!((report.schema.as_str(), report.backend.as_str()), (CHURN_SCHEMA, "lab"));
    assert_eq!(report.cluster.nodes, ["node0", "node1", "node2"]);
    let patterns: Vec<&str> = report.patterns.iter().map(|p| p.pattern.as_str()).collect();
    assert_eq!(patterns, ["ns-labels", "service-churn"]);
    for pattern in &report.patterns {
        assert_eq!(pattern.changes.len(), 3, "{}", pattern.pattern);
        assert_eq!(pattern.changes.iter().map(|c| c.index).collect::<Vec<_>>(), [0, 1, 2]);
        for change in &pattern.changes {
            let what = format!("{} #{} {}", pattern.pattern, change.index, change.description);
            assert!(change.not_converged.is_empty() && change.controls_changed.is_empty(), "{what}: {change:?}");
            // A change that changed no cell has no latency; every other converged.
            assert_eq!(change.latency_ms.is_some(), !change.cells.is_empty(), "{what}: {change:?}");
            assert!(change.rounds > 0 && change.controls > 0, "{what}");
        }
        let all = &pattern.summary[0];
        assert_eq!((all.direction, all.changes, all.converged), (None, pattern.changes.iter().filter(|c| !c.cells.is_empty()).count(), all.changes));
    }
    assert!(report.patterns.iter().flat_map(|p| &p.changes).any(|c| !c.cells.is_empty()), "some change changed cells");
    // The lab is dual-stack (the default): each change with cells converged on both families,
    // Services' included, and each pattern is summarised per family.
    for pattern in &report.patterns {
        for change in pattern.changes.iter().filter(|c| !c.cells.is_empty()) {
            let families: Vec<(&str, bool)> = change.latency_by_family.iter().map(|(f, l)| (f.as_str(), l.is_some())).collect();
            assert_eq!(families, [("IPv4", true), ("IPv6", true)], "{} #{}", pattern.pattern, change.index);
        }
        let summarised: Vec<Option<&str>> = pattern.summary.iter().map(|s| s.family.as_deref()).collect();
        assert_eq!(summarised, [None, None, None, Some("IPv4"), Some("IPv6")], "{}", pattern.pattern);
    }
    let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(raw["patterns"][1]["changes"][0]["latency_by_family"]["IPv6"].is_number(), "service-churn's IPv6 ClusterIPs: {}", raw["patterns"][1]);
    assert!(text(&out.stdout).lines().any(|l| l.starts_with("#  change") && l.contains("  IPv6  ")), "{}", text(&out.stdout));
    // The family columns still fit the text's 120 columns (the oracle's time leaves them).
    assert!(text(&out.stdout).lines().all(|l| l.chars().count() <= 120), "{}", text(&out.stdout));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg"), "the HTML report has plots");
}

#[test]
fn churn_bad_input_exits_2_before_making_a_lab() {
    let (out, own_lab) = churn(&["--namespaces", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--namespaces"), "{}", text(&out.stderr));
    assert_gone(&own_lab, "after bad input");
}
