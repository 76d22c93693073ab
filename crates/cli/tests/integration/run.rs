//! `netmatrix run` on the real lab: every suite passes on a healthy lab, and each lab fault
//! fails the run with a diagnosis that names the fault and where it is. Needs root (CI is root).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn netmatrix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netmatrix")).args(args).output().expect("running netmatrix")
}

fn root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED: netmatrix run needs root to create the lab's network namespaces (CI runs as root)");
    }
    root
}

fn namespaces(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(prefix)).collect())
        .unwrap_or_default()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn bad_flags_exit_2_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json").to_string_lossy().into_owned();
    let same = dir.path().join(".").join("r.json").to_string_lossy().into_owned();
    let dir_path = dir.path().to_string_lossy().into_owned();
    for (args, message) in [
        (&["run", "--html", &dir_path][..], "is a directory"),
        (&["run", "--json", "/dev/full"][..], "not a regular file"),
        // Read-only even for root: sysfs has no write for it.
        (&["run", "--json", "/sys/kernel/notes"][..], "/sys/kernel/notes: cannot write"),
        (&["run", "--junit", "/proc/r.xml"][..], "/proc/r.xml: cannot create"),
        (&["run", "--json", &report, "--junit", &same][..], "two reports"),
        (&["run", "--focus", "("][..], "--focus"),
        (&["run", "--suite", "nope"][..], "possible values: connectivity, services, netpol, anp"),
        (&["run", "--labels", "type"][..], "not key=value"),
        (&["run", "--timeout", "0s"][..], "more than zero"),
        (&["run", "--shards", "0"][..], "--shards 0: from 1 to 26"),
        (&["run", "--kubeconfig", "/nonexistent"][..], "--kubeconfig /nonexistent"),
        (&["run", "--json", "/nonexistent/dir/r.json"][..], "does not exist"),
        (&["run", "--focus", "no-such-case"][..], "no case matches"),
        (&["run", "--lab", "Bad_Name"][..], "lab name"),
        (&["run", "--cases", "/nonexistent.yaml"][..], "--cases /nonexistent.yaml"),
        (&["run", "--cases", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")][..], "not YAML"),
    ] {
        let child = Command::new(env!("CARGO_BIN_EXE_netmatrix")).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // The lab a run makes for itself is named after its process.
        let own_lab = format!("r{}", child.id() % 100_000);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(message), "{args:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(namespaces(&format!("nm-{own_lab}-")).is_empty() && !Path::new(&format!("/run/netmatrix/{own_lab}.json")).exists(), "{args:?} created a lab");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{args:?} created a file");
    }
}

#[test]
fn every_suite_passes_on_a_fresh_lab_and_the_lab_is_removed() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let [json, junit, html] = ["run.json", "run.xml", "run.html"].map(|f| dir.path().join(f).to_string_lossy().into_owned());
    let out = netmatrix(&["run", "--lab", "tall", "--json", &json, "--junit", &junit, "--html", &html]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    // A green run is one line per case, the feature count and gaps, and the summary (`--tables
    // failed`, the default).
    let features_at = stdout.find("\nfeatures: ").expect("the feature coverage");
    let (cases, coverage) = stdout.split_at(features_at + 1);
    assert!(cases.lines().all(|l| l.starts_with("case ") || l.starts_with("skipped: ")), "{stdout}");
    let coverage: Vec<&str> = coverage.lines().collect();
    assert!(coverage[0].contains(", failed:0, incomplete:0"), "{stdout}");
    assert!(coverage[1..coverage.len() - 1].iter().all(|l| l.starts_with("not exercised: ") || l.starts_with("               ")), "{stdout}");
    assert!(stdout.lines().count() < 80 && stdout.lines().last().unwrap().starts_with("summary: "), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["schema"], "netmatrix.run/v1");
    assert_eq!((&report["backend"], &report["profile"]), (&json!("lab"), &json!("lab")), "the lab's own profile by default");
    let summary = &report["summary"];
    assert_eq!(
        (summary["failed"].as_u64(), summary["errors"].as_u64(), summary["flaky"].as_u64(), summary["wrong"].as_u64()),
        (Some(0), Some(0), Some(0), Some(0)),
        "{summary}"
    );
    let cases = report["cases"].as_array().unwrap();
    for suite in ["connectivity/", "services/", "netpol/", "anp/"] {
        assert!(cases.iter().any(|c| c["id"].as_str().unwrap().starts_with(suite) && c["result"] == "pass"), "a passing {suite} case");
    }
    let features = report["features"].as_array().unwrap();
    assert!(features.iter().all(|f| f["result"] == "pass" || f["result"] == "not-exercised"), "{features:?}");
    assert!(features.iter().filter(|f| f["result"] == "pass").count() * 10 >= features.len() * 7, "most features exercised on the lab: {features:?}");
    assert!(std::fs::read_to_string(&junit).unwrap().contains("<testcase"));
    assert!(std::fs::read_to_string(&html).unwrap().contains("netpol/deny-all"));
    assert!(namespaces("nm-tall-").is_empty(), "the run removes the lab it created");
}

#[test]
fn the_services_suite_passes_on_the_lab_under_the_spec_profile_too() {
    if !root() {
        return;
    }
    let _lab = Lab("tspec");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json").to_string_lossy().into_owned();
    let out = netmatrix(&["run", "--lab", "tspec", "--suite", "services", "--profile", "spec", "--json", &json]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stderr).lines().next().unwrap_or_default().ends_with("profile spec"), "the header names the profile: {}", text(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["profile"], "spec");
    let cells: Vec<&Value> =
        report["cases"].as_array().unwrap().iter().flat_map(|c| c["steps"].as_array().unwrap()).flat_map(|s| s["cells"].as_array().unwrap()).collect();
    let open: Vec<&&Value> = cells.iter().filter(|c| c["expected"] == "undefined").collect();
    assert!(!open.is_empty(), "the documentation leaves some Service cells open");
    assert!(
        open.iter().any(|c| c["dst"].as_str().unwrap().starts_with("node:")
            && c["detail"].as_str().unwrap_or_default().contains("may need to take traffic policy into account")),
        "in-cluster node ports under externalTrafficPolicy Local are among them"
    );
}

/// Removes the lab when the test ends, passed or not.
struct Lab(&'static str);

impl Drop for Lab {
    fn drop(&mut self) {
        netmatrix(&["lab", "down", self.0]);
    }
}

/// Brings up lab `name`, injects `fault`, runs `focus` there, and returns the run's exit code
/// and its findings as (kind, summary).
fn run_with_fault(name: &'static str, fault: &[&str], focus: &str) -> (Option<i32>, Vec<(String, String)>) {
    let _lab = Lab(name);
    let up = netmatrix(&["lab", "up", name, "--nodes", "3"]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up.stderr));
    let mut inject = vec!["lab", "fault", "inject", name];
    inject.extend(fault);
    let injected = netmatrix(&inject);
    assert_eq!(injected.status.code(), Some(0), "{}", text(&injected.stderr));
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json").to_string_lossy().into_owned();
    let out = netmatrix(&["run", "--lab", name, "--focus", focus, "--json", &json]);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_else(|_| panic!("no report: {}", text(&out.stderr)))).unwrap();
    let findings = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["findings"].as_array().unwrap().clone())
        .map(|f| (f["kind"].as_str().unwrap().to_owned(), f["summary"].as_str().unwrap().to_owned()))
        .collect();
    assert!(Path::new(&format!("/run/netmatrix/{name}.json")).exists(), "an existing lab is kept");
    (out.status.code(), findings)
}

fn assert_named(findings: &[(String, String)], kind: &str, words: &[&str]) {
    assert!(findings.iter().any(|(k, s)| k == kind && words.iter().all(|w| s.contains(w))), "expected a {kind} finding naming {words:?}, got {findings:?}");
}

#[test]
fn a_broken_overlay_is_diagnosed_as_cross_node() {
    if !root() {
        return;
    }
    let (code, findings) = run_with_fault("fxn", &["cross-node", "--node", "0", "--peer", "1"], "connectivity/pod-to-pod");
    assert_eq!(code, Some(1));
    assert_named(&findings, "cross-node", &["node0", "node1"]);
}

#[test]
fn dropped_udp_is_diagnosed_as_the_protocol_on_its_node() {
    if !root() {
        return;
    }
    let (code, findings) = run_with_fault("fudp", &["drop-udp", "--node", "1"], "connectivity/pod-to-pod");
    assert_eq!(code, Some(1));
    assert_named(&findings, "protocol", &["UDP", "node1"]);
}

#[test]
fn an_ignored_policy_is_diagnosed_on_its_node() {
    if !root() {
        return;
    }
    let (code, findings) = run_with_fault("fpol", &["ignore-policy", "--node", "2"], "netpol/deny-all-namespaces-allow-within");
    assert_eq!(code, Some(1));
    assert_named(&findings, "policy-ignored", &["node2"]);
}

#[test]
fn a_dead_service_proxy_is_diagnosed_on_its_node() {
    if !root() {
        return;
    }
    let (code, findings) = run_with_fault("fsvc", &["drop-services", "--node", "0"], "services/node-port");
    assert_eq!(code, Some(1));
    assert_named(&findings, "service-proxy", &["node0"]);
}

#[test]
fn broken_hairpin_is_diagnosed_as_hairpin() {
    if !root() {
        return;
    }
    let (code, findings) = run_with_fault("fhp", &["break-hairpin", "--node", "0"], "services/hairpin");
    assert_eq!(code, Some(1));
    assert_named(&findings, "hairpin", &["node0"]);
}

#[test]
fn stale_udp_conntrack_is_diagnosed_on_its_node() {
    if !root() {
        return;
    }
    let (code, findings) = run_with_fault("fstl", &["stale-udp", "--node", "1"], "services/udp-after-backend-replaced");
    assert_eq!(code, Some(1));
    assert_named(&findings, "stale-udp", &["node1"]);
}

#[test]
fn cases_of_ones_own_run_from_a_file() {
    if !root() {
        return;
    }
    let cases = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/cases/frontend.yaml");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json").to_string_lossy().into_owned();
    let out = netmatrix(&["run", "--lab", "tcase", "--cases", cases, "--json", &json]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let ids: Vec<&str> = report["cases"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["custom/frontend-tier", "custom/web-service"], "only the file's cases run");
    let step = &report["cases"][0]["steps"][0]["cells"];
    let cell = |src: &str, dst: &str, port: u64| {
        step.as_array().unwrap().iter().find(|c| c["src"] == src && c["dst"] == dst && c["port"] == port).unwrap()["expected"].clone()
    };
    assert_eq!(
        (cell("y/b", "x/a", 80), cell("y/a", "x/a", 80), cell("y/b", "x/a", 81), cell("x/a", "x/b", 80)),
        ("allow".into(), "deny".into(), "deny".into(), "deny".into())
    );
}

/// Starts `netmatrix run --suite netpol`, sends it `signal` once namespaces named
/// `nm-<its lab>-<part>` number `count`, and checks that the run removed all of its lab and
/// exited 128 + the signal.
fn interrupt_run_when(part: &str, count: usize, signal: nix::sys::signal::Signal) {
    let child = Command::new(env!("CARGO_BIN_EXE_netmatrix")).args(["run", "--suite", "netpol"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let prefix = format!("nm-r{}-", child.id() % 100_000);
    let start = std::time::Instant::now();
    while namespaces(&format!("{prefix}{part}")).len() < count && start.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(namespaces(&format!("{prefix}{part}")).len() >= count, "the run made {count} namespaces {prefix}{part}* within 60 s");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + signal as i32), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("interrupted"), "{}", text(&out.stderr));
    assert!(namespaces(&prefix).is_empty(), "left behind: {:?}", namespaces(&prefix));
    let lab = prefix.trim_start_matches("nm-").trim_end_matches('-');
    assert!(!Path::new(&format!("/run/netmatrix/{lab}.json")).exists(), "the state file is removed");
}

#[test]
fn ctrl_c_removes_the_lab_of_the_run() {
    if !root() {
        return;
    }
    use nix::sys::signal::Signal;
    // While the lab is being built (its router exists), then while cases run (every pod exists).
    interrupt_run_when("router", 1, Signal::SIGINT);
    interrupt_run_when("p", 9, Signal::SIGINT);
}

#[test]
fn sigterm_and_sighup_clean_up_like_ctrl_c() {
    if !root() {
        return;
    }
    use nix::sys::signal::Signal;
    interrupt_run_when("p", 9, Signal::SIGTERM);
    interrupt_run_when("p", 9, Signal::SIGHUP);
}

#[test]
fn ctrl_c_in_an_existing_lab_removes_only_what_the_run_created() {
    if !root() {
        return;
    }
    let _lab = Lab("tint");
    let up = netmatrix(&["lab", "up", "tint", "--nodes", "3", "--pods-per-node", "1"]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up.stderr));
    let child = Command::new(env!("CARGO_BIN_EXE_netmatrix"))
        .args(["run", "--lab", "tint", "--suite", "netpol"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    // The lab's own 3 pods, then the run's 9.
    while namespaces("nm-tint-p").len() < 12 && start.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(namespaces("nm-tint-p").len(), 12, "the run made its 9 probe pods within 60 s");
    std::thread::sleep(std::time::Duration::from_millis(300));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let status = text(&netmatrix(&["lab", "status", "tint"]).stdout);
    assert!(status.starts_with("lab tint: 3 nodes, 3 pods, 0 policies, 0 services"), "the lab's own pods stay, the run's are gone: {status}");
    assert!(status.contains("pod default/pod-0-0"), "{status}");
}

/// The page as headless Chromium built it; `None` when Chromium is absent (outside CI).
fn chromium_dom(page: &Path) -> Option<String> {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => Some(text(&out.stdout)),
        Ok(out) => panic!("chromium failed: {}", out.status),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(std::env::var_os("CI").is_none(), "chromium is missing in CI (Debian package chromium)");
            println!("SKIPPED: the fault map in Chromium: chromium not installed (Debian package chromium)");
            None
        }
        Err(e) => panic!("starting chromium: {e}"),
    }
}

#[test]
fn the_html_fault_map_shows_a_broken_node_pair_as_that_pair() {
    if !root() {
        return;
    }
    let name = "fmap";
    let _lab = Lab(name);
    assert_eq!(netmatrix(&["lab", "up", name, "--nodes", "3"]).status.code(), Some(0));
    assert_eq!(netmatrix(&["lab", "fault", "inject", name, "cross-node", "--node", "0", "--peer", "1"]).status.code(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("run.html");
    let out = netmatrix(&["run", "--lab", name, "--focus", "connectivity/pod-to-pod", "--html", page.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let Some(dom) = chromium_dom(&page) else { return };
    let map = dom.split("<figure class=\"fault-map\" data-protocol=\"all\">").nth(1).expect("a fault map of every protocol").split("</figure>").next().unwrap();
    let pairs: Vec<(String, String, bool)> = map
        .split("<td class=\"pair ")
        .skip(1)
        .map(|td| {
            let attr = |name: &str| td.split(&format!("{name}=\"")).nth(1).unwrap().split('"').next().unwrap().to_owned();
            (attr("data-src"), attr("data-dst"), td.starts_with("wrong"))
        })
        .collect();
    assert_eq!(pairs.len(), 9, "three nodes by three: {pairs:?}");
    for (src, dst, wrong) in &pairs {
        let broken = matches!((src.as_str(), dst.as_str()), ("node0", "node1") | ("node1", "node0"));
        assert_eq!(*wrong, broken, "{src} -> {dst}: {pairs:?}");
    }
}

#[test]
fn two_runs_on_one_lab_take_turns() {
    if !root() {
        return;
    }
    let _lab = Lab("tturn");
    let up = netmatrix(&["lab", "up", "tturn", "--nodes", "2"]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up.stderr));
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_netmatrix"))
            .args(["run", "--lab", "tturn", "--focus", "connectivity/pod-to-pod"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (run(), run());
    for out in [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()] {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let status = netmatrix(&["lab", "status", "tturn"]);
    assert!(text(&status.stdout).starts_with("lab tturn: 2 nodes, 0 pods"), "each run removed its pods: {}", text(&status.stdout));
}
