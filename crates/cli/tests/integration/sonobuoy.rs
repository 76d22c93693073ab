//! `netmatrix sonobuoy plugin`: the definition on stdout, bad run flags refused with exit 2.

use std::process::{Command, Output};

fn netmatrix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netmatrix")).args(args).output().expect("running netmatrix")
}

#[test]
fn the_plugin_definition_goes_to_stdout() {
    let out = netmatrix(&["sonobuoy", "plugin", "--suite", "netpol"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains("plugin-name: netmatrix\n") && yaml.contains("  - \"--suite\"\n  - \"netpol\"\n"), "{yaml}");
}

#[test]
fn bad_run_flags_exit_2() {
    for (args, message) in [
        (&["sonobuoy", "plugin", "--nope"][..], "'--nope'"),
        (&["sonobuoy", "plugin", "--suite", "netpol", "--json", "r.json"][..], "cannot be used with '--json"),
        (&["sonobuoy", "plugin", "--kubeconfig", "k"][..], "--kubeconfig"),
    ] {
        let out = netmatrix(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(message), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// A kubeconfig for an API server that is not there: a loopback port nothing listens on.
fn unreachable_kubeconfig(dir: &std::path::Path) -> (std::path::PathBuf, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{{name: c, context: {{cluster: k, user: u}}}}]\n\
         clusters: [{{name: k, cluster: {{server: \"https://127.0.0.1:{port}\", insecure-skip-tls-verify: true}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\n"
    );
    std::fs::write(&path, text).unwrap();
    (path, port)
}

#[test]
fn a_failed_run_still_writes_done_last_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let (kubeconfig, port) = unreachable_kubeconfig(dir.path());
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_netmatrix"))
        .args(["run", "--sonobuoy", "--kubeconfig", kubeconfig.to_str().unwrap(), "--suite", "netpol"])
        .env("SONOBUOY_RESULTS_DIR", &results)
        // Nothing listens there either: progress posts must not hang the run.
        .env("SONOBUOY_PROGRESS_PORT", port.to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "an unreachable server is an error within seconds");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "the error names the server: {stderr}");
    let done = std::fs::read_to_string(results.join("done")).expect("done is written when the run fails");
    assert_eq!(done.trim(), results.to_str().unwrap(), "done names the results directory");
    let error = std::fs::read_to_string(results.join("error.xml")).expect("the failure is a JUnit error");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
}

#[test]
fn run_with_an_unreachable_cluster_exits_3_naming_it_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (kubeconfig, port) = unreachable_kubeconfig(dir.path());
    let out = netmatrix(&["run", "--kubeconfig", kubeconfig.to_str().unwrap(), "--suite", "netpol"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("the API server https://127.0.0.1:{port}/ did not answer")), "{stderr}");
    let missing = netmatrix(&["run", "--kubeconfig", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2), "a kubeconfig that cannot be read is bad input: {}", String::from_utf8_lossy(&missing.stderr));
}
