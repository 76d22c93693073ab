//! `netmatrix analyze` end to end: the shipped example in every format, explanations, and
//! the exit code and messages for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop")
}

pub fn netmatrix(args: &[&str]) -> Output {
    // Run from the example's parent so that file names in messages are relative and stable.
    Command::new(env!("CARGO_BIN_EXE_netmatrix")).current_dir(example().parent().unwrap()).args(args).output().expect("running netmatrix")
}

pub fn ok_stdout(args: &[&str]) -> String {
    let out = netmatrix(args);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn example_in_every_format() {
    for format in ["txt", "csv", "md", "json"] {
        insta::assert_snapshot!(format!("shop_{format}"), ok_stdout(&["analyze", "-f", "shop", "-o", format]));
    }
}

#[test]
fn explain_text_and_json() {
    insta::assert_snapshot!("explain_allowed", ok_stdout(&["analyze", "-f", "shop", "--explain", "shop/frontend", "shop/cart", "9000/TCP"]));
    insta::assert_snapshot!("explain_denied", ok_stdout(&["analyze", "-f", "shop", "--explain", "shop/cart", "shop/redis", "6380"]));
    insta::assert_snapshot!(
        "explain_external_json",
        ok_stdout(&["analyze", "-f", "shop", "--explain", "203.0.113.7", "shop/frontend[Deployment]", "8080/TCP", "-o", "json"])
    );
}

#[test]
fn ipblocks_match_pods_unless_external_only() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: client}\nstatus: {podIP: 10.1.2.3}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: server, labels: {app: server}}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: from-net}\nspec:\n  podSelector: {matchLabels: {app: server}}\n  ingress: [{from: [{ipBlock: {cidr: 10.1.0.0/16}}]}]\n";
    std::fs::write(dir.path().join("m.yaml"), manifest).unwrap();
    let path = dir.path().to_str().unwrap();
    let by_ip = ok_stdout(&["analyze", "-f", path]);
    assert!(by_ip.contains("default/client[Pod] => default/server[Pod] : All Connections"), "{by_ip}");
    let external_only = ok_stdout(&["analyze", "-f", path, "--ipblocks-external-only"]);
    assert!(!external_only.contains("default/client[Pod] => default/server[Pod]"), "{external_only}");
    assert!(external_only.contains("10.1.0.0-10.1.255.255[External] => default/server[Pod] : All Connections"), "{external_only}");
}

/// Bad input: exit code 2, every error on stderr naming file, document and field, nothing on stdout.
fn rejects(args: &[&str], fragments: &[&str]) {
    let out = netmatrix(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "no partial answer on bad input, got {}", String::from_utf8_lossy(&out.stdout));
    for f in fragments {
        assert!(stderr.contains(f), "stderr {stderr:?} should contain {f:?}");
    }
}

#[test]
fn bad_input_exits_2_with_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  podSelector: {matchExpressions: [{key: a, operator: Equals, values: [b]}]}\n  ingress: [{ports: [{port: 99999}]}]\n").unwrap();
    let bad = bad.to_str().unwrap();
    rejects(
        &["analyze", "-f", bad],
        &["bad.yaml: document 1 (NetworkPolicy default/p): field spec.podSelector.matchExpressions[0].operator", "field spec.ingress[0].ports[0].port"],
    );
    rejects(&["analyze", "-f", bad, "--timings"], &["timing: ", " ms load (2 errors)", "timing: peak memory "]);
    rejects(&["analyze", "-f", "no-such-dir"], &["no-such-dir: cannot read"]);
    rejects(&["analyze", "-f", "shop", "--explain", "shop/nope", "shop/cart"], &["--explain", "shop/nope"]);
    rejects(&["analyze", "-f", "shop", "--explain", "shop/frontend", "shop/cart", "80/ICMP"], &["\"ICMP\" is not a protocol"]);
    rejects(&["analyze"], &["--file <PATH>"]);
}

/// A misspelled `ingres` is an error by default, as with kubectl; `--validate=warn` warns and
/// `--validate=ignore` reads the policy without it (deny-all ingress), as before.
#[test]
fn validate_strict_warn_and_ignore() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata: {name: client}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: server, labels: {app: server}}\n---\n\
                    apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  podSelector: {matchLabels: {app: server}}\n  ingres: [{}]\n";
    std::fs::write(dir.path().join("p.yaml"), manifest).unwrap();
    let path = dir.path().join("p.yaml");
    let path = path.to_str().unwrap();
    rejects(&["analyze", "-f", path], &["p.yaml: document 3 (NetworkPolicy default/p): field spec.ingres: unknown field (did you mean ingress?)"]);
    rejects(&["analyze", "-f", path, "--validate=strict"], &["field spec.ingres: unknown field"]);
    for (mode, warned) in [("warn", true), ("ignore", false)] {
        let out = netmatrix(&["analyze", "-f", path, "--validate", mode]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert_eq!(
            stderr.contains("warning: ") && stderr.contains("p.yaml: document 3: NetworkPolicy default/p: spec.ingres: unknown field (did you mean ingress?)"),
            warned,
            "{mode}: {stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("=> default/server[Pod]"), "{mode}: the policy denies all ingress to server");
    }
}

#[test]
fn non_kubernetes_documents_are_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.yaml"), "title: not a manifest\n").unwrap();
    std::fs::write(dir.path().join("pod.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n").unwrap();
    let out = netmatrix(&["analyze", "-f", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning:") && stderr.contains("notes.yaml: document 1: not a Kubernetes object"), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0.0.0.0-255.255.255.255[External] => default/a[Pod] : All Connections\ndefault/a[Pod] => 0.0.0.0-255.255.255.255[External] : All Connections\n"
    );
}

#[test]
fn a_fifo_named_like_a_manifest_in_a_directory_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    nix::unistd::mkfifo(&dir.path().join("pipe.yaml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::fs::write(dir.path().join("pod.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n").unwrap();
    // Without the skip, opening the FIFO waits for a writer forever.
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_netmatrix")).args(["analyze", "-f"]).arg(dir.path()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("netmatrix analyze blocked on the FIFO");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("warning: {}: not a regular file, skipped", dir.path().join("pipe.yaml").display())), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("default/a[Pod]"));
}
