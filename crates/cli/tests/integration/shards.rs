//! `netmatrix run --shards N` on real labs: the same tables and JSON report as a serial run but
//! for timings, every shard's lab removed after the run (also after Ctrl-C) or kept with
//! `--keep`, and shards refused in a lab that exists. Needs root (CI is root).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn netmatrix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netmatrix")).args(args).output().expect("running netmatrix")
}

fn root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED: netmatrix run --shards needs root to create labs (CI runs as root)");
    }
    root
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn namespaces(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(prefix)).collect())
        .unwrap_or_default()
}

fn lab_exists(lab: &str) -> bool {
    Path::new(&format!("/run/netmatrix/{lab}.json")).exists() || !namespaces(&format!("nm-{lab}-")).is_empty()
}

/// Removes the labs when the test ends, passed or not.
struct Labs(Vec<&'static str>);

impl Drop for Labs {
    fn drop(&mut self) {
        for lab in &self.0 {
            if lab_exists(lab) {
                netmatrix(&["lab", "down", lab]);
            }
        }
    }
}

/// Cases that run side by side and alone (admin policies, hostNetwork pods), a recreated pod
/// (the lab gives it another address), node ports and load-balancer IPs (cells name them).
const CASES: &str = "^(connectivity/pod-to-node-and-node-to-pod|services/(node-port|load-balancer|session-affinity)|netpol/(deny-all|recreate-pod|ipblock-except|named-port)|anp/(delete|egress-networks))$";

/// Runs the cases in lab `lab` on `shards` shards; the tables of every step and the JSON report,
/// without timings and without which backend answered a Service cell (the dataplane's random
/// pick, which differs between two serial runs too).
fn run(lab: &str, shards: &str) -> (String, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json").to_string_lossy().into_owned();
    let out = netmatrix(&["run", "--lab", lab, "--shards", shards, "--focus", CASES, "--tables", "all", "--json", &json]);
    assert_eq!(out.status.code(), Some(0), "--shards {shards}: {}\n{}", text(&out.stdout), text(&out.stderr));
    let durations = regex::Regex::new(r"\(\d+(\.\d+)?m?s, |duration:\d+(\.\d+)?m?s").unwrap();
    let tables = durations.replace_all(&text(&out.stdout), "(TIME").into_owned();
    let mut report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    report["started"] = Value::Null;
    report["duration_ms"] = Value::Null;
    for case in report["cases"].as_array_mut().unwrap() {
        case["duration_ms"] = Value::Null;
        // Which shard ran it: checked, then left out of the comparison.
        let shard = case.as_object_mut().unwrap().remove("shard");
        assert_eq!(shard.is_some(), shards != "1", "--shards {shards}: a case names its shard only when sharded: {shard:?}");
        for step in case["steps"].as_array_mut().unwrap() {
            for cell in step["cells"].as_array_mut().unwrap() {
                cell["latency_ms"] = Value::Null;
                cell["tried_at_ms"] = Value::Null;
                if !cell["service"].is_null() {
                    cell["answered_by"] = Value::Null;
                }
            }
        }
    }
    (tables, report, text(&out.stderr))
}

/// Where two JSON values differ, as `path: serial vs sharded`.
fn differences(serial: &Value, sharded: &Value, path: String) -> Vec<String> {
    match (serial, sharded) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            let null = Value::Null;
            keys.into_iter().flat_map(|k| differences(a.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null), format!("{path}.{k}"))).collect()
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            a.iter().zip(b).enumerate().flat_map(|(i, (a, b))| differences(a, b, format!("{path}[{i}]"))).collect()
        }
        (a, b) if a == b => Vec::new(),
        (a, b) => vec![format!("{path}: {a} vs {b}")],
    }
}

#[test]
fn sharded_runs_on_labs_report_what_a_serial_run_does_and_remove_every_lab() {
    if !root() {
        return;
    }
    let _labs = Labs(vec!["tsh1", "tsh2", "tsh2b", "tsh3", "tsh3b", "tsh3c"]);
    let (tables, report, _) = run("tsh1", "1");
    let ids: Vec<&str> = report["cases"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 10, "{ids:?}");
    assert!(tables.contains("expected:") && tables.contains("node:node0:30"), "every step's tables, node ports in them: {tables}");
    for (lab, shards) in [("tsh2", "2"), ("tsh3", "3")] {
        let (sharded_tables, sharded_report, stderr) = run(lab, shards);
        assert!(stderr.contains(&format!("shard 2: lab {lab}b")), "{stderr}");
        assert_eq!(sharded_tables, tables, "--shards {shards}: the tables");
        let differences = differences(&report, &sharded_report, String::new());
        assert!(differences.is_empty(), "--shards {shards}: the JSON report differs from the serial run's:\n{}", differences.join("\n"));
    }
    for lab in ["tsh1", "tsh2", "tsh2b", "tsh3", "tsh3b", "tsh3c"] {
        assert!(!lab_exists(lab), "lab {lab} is removed after the run");
    }
}

#[test]
fn keep_keeps_every_shard_and_says_how_to_remove_it() {
    if !root() {
        return;
    }
    let _labs = Labs(vec!["tkp", "tkpb"]);
    // Two cases: a run has no more shards than cases.
    let out = netmatrix(&["run", "--lab", "tkp", "--shards", "2", "--focus", "^netpol/deny-all(-ingress)?$", "--keep"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for lab in ["tkp", "tkpb"] {
        assert!(lab_exists(lab), "{lab} is kept");
        assert!(text(&out.stderr).contains(&format!("netmatrix lab down {lab} removes it")), "{}", text(&out.stderr));
    }
}

#[test]
fn shards_in_a_lab_that_exists_are_bad_input() {
    if !root() {
        return;
    }
    let _labs = Labs(vec!["tshx"]);
    let up = netmatrix(&["lab", "up", "tshx", "--nodes", "2"]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up.stderr));
    let out = netmatrix(&["run", "--lab", "tshx", "--shards", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("lab tshx exists"), "{}", text(&out.stderr));
    assert!(!lab_exists("tshxb"), "nothing was made");
}

#[test]
fn ctrl_c_removes_every_shard_lab() {
    if !root() {
        return;
    }
    let child = Command::new(env!("CARGO_BIN_EXE_netmatrix"))
        .args(["run", "--shards", "2", "--suite", "netpol"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The fresh lab of a sharded run: `r` and the process id's last four digits, its shard's with `b`.
    let lab = format!("r{}", child.id() % 10_000);
    let shard = format!("nm-{lab}b-p");
    let start = std::time::Instant::now();
    while namespaces(&shard).len() < 9 && start.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(namespaces(&shard).len() >= 9, "the second shard's pods within 60 s");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    for lab in [lab.clone(), format!("{lab}b")] {
        assert!(!lab_exists(&lab), "lab {lab} is removed: {:?}", namespaces(&format!("nm-{lab}-")));
    }
}
