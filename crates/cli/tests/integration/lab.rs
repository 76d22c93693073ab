//! `netmatrix lab`: up, status, down, and down after a killed up. Needs root (CI is root).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn netmatrix(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_netmatrix")).args(args).output().expect("running netmatrix")
}

fn root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED: the lab needs root to create network namespaces (CI runs as root)");
    }
    root
}

fn namespaces(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(prefix)).collect())
        .unwrap_or_default()
}

#[test]
fn up_status_down() {
    if !root() {
        return;
    }
    let up = netmatrix(&["lab", "up", "cliup", "--nodes", "2", "--pods-per-node", "1"]);
    let stdout = String::from_utf8_lossy(&up.stdout).into_owned();
    let down = netmatrix(&["lab", "down", "cliup"]);
    assert_eq!(up.status.code(), Some(0), "{}", String::from_utf8_lossy(&up.stderr));
    assert!(stdout.contains("lab cliup: 2 nodes, 2 pods") && stdout.contains("pod default/pod-1-0  node1  10.244.1.10"), "{stdout}");
    assert_eq!(down.status.code(), Some(0), "{}", String::from_utf8_lossy(&down.stderr));
    assert!(namespaces("nm-cliup-").is_empty() && !std::path::Path::new("/run/netmatrix/cliup.lock").exists());
    let status = netmatrix(&["lab", "status", "cliup"]);
    assert_eq!(status.status.code(), Some(2), "status of a lab that is gone is bad input");
    assert!(String::from_utf8_lossy(&status.stderr).contains("does not exist"));
    assert!(!std::path::Path::new("/run/netmatrix/cliup.lock").exists(), "no lock file is left");
}

#[test]
fn down_after_a_killed_up_leaves_nothing() {
    if !root() {
        return;
    }
    let mut up = Command::new(env!("CARGO_BIN_EXE_netmatrix"))
        .args(["lab", "up", "clikil", "--nodes", "3", "--pods-per-node", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it is half-way: some namespaces exist, the pods are not all there.
    let start = Instant::now();
    while namespaces("nm-clikil-p").len() < 3 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(namespaces("nm-clikil-p").len() >= 3, "up made 3 pods within 30 s");
    up.kill().unwrap();
    up.wait().unwrap();
    assert!(!namespaces("nm-clikil-").is_empty(), "the killed up had created something");
    let down = netmatrix(&["lab", "down", "clikil"]);
    assert_eq!(down.status.code(), Some(0), "{}", String::from_utf8_lossy(&down.stderr));
    assert!(namespaces("nm-clikil-").is_empty(), "left behind: {:?}", namespaces("nm-clikil-"));
    assert!(!std::path::Path::new("/run/netmatrix/clikil.json").exists());
}

#[test]
fn bad_name_is_refused_with_exit_2() {
    let out = netmatrix(&["lab", "up", "Bad_Name"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lab name \"Bad_Name\""));
}

#[test]
fn cleanup_removes_a_crashed_lab_found_by_its_namespaces() {
    if !root() {
        return;
    }
    let up = netmatrix(&["lab", "up", "clicln", "--nodes", "1", "--pods-per-node", "1"]);
    assert_eq!(up.status.code(), Some(0), "{}", String::from_utf8_lossy(&up.stderr));
    // As after a crash: the state file is gone, the namespaces are not.
    std::fs::remove_file("/run/netmatrix/clicln.json").unwrap();
    let out = netmatrix(&["cleanup", "--lab", "clicln"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(namespaces("nm-clicln-").is_empty());
}

#[test]
fn more_pods_than_a_node_holds_are_refused_before_anything_is_made() {
    if !root() {
        return;
    }
    let start = Instant::now();
    let out = netmatrix(&["lab", "up", "clicap", "--nodes", "1", "--pods-per-node", "1000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--pods-per-node 1000") && stderr.contains("245"), "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(5), "refused only after {:?}", start.elapsed());
    assert!(namespaces("nm-clicap-").is_empty() && !std::path::Path::new("/run/netmatrix/clicap.json").exists(), "something was made");
}

#[test]
fn down_of_a_lab_that_never_existed_says_so() {
    if !root() {
        return;
    }
    let out = netmatrix(&["lab", "down", "clinon"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "down is idempotent: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, "no lab clinon to remove\n");
}

#[test]
fn two_ups_of_one_lab_at_once_make_it_once() {
    if !root() {
        return;
    }
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    // Each stopped as soon as it is spawned and both continued at once: they start together.
    let up = || {
        let child = Command::new(env!("CARGO_BIN_EXE_netmatrix"))
            .args(["lab", "up", "clitwo", "--nodes", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        kill(Pid::from_raw(child.id() as i32), Signal::SIGSTOP).unwrap();
        child
    };
    for _ in 0..5 {
        let (first, second) = (up(), up());
        for child in [&first, &second] {
            kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT).unwrap();
        }
        let outs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
        let status = netmatrix(&["lab", "status", "clitwo"]);
        netmatrix(&["lab", "down", "clitwo"]);
        let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
        let stderr: Vec<String> = outs.iter().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect();
        assert!(codes.contains(&Some(0)) && codes.contains(&Some(2)), "one made it, the other found it made: {codes:?} {stderr:?}");
        assert!(stderr.iter().any(|e| e.contains("already exists")), "{stderr:?}");
        assert!(String::from_utf8_lossy(&status.stdout).starts_with("lab clitwo: 2 nodes"), "the lab is whole: {}", String::from_utf8_lossy(&status.stderr));
    }
}

/// Removes the lab when the test ends, passed or not.
struct Down(&'static str);

impl Drop for Down {
    fn drop(&mut self) {
        netmatrix(&["lab", "down", self.0]);
    }
}

#[test]
fn delay_policy_is_injected_with_its_delay_saved_and_cleared() {
    if !root() {
        return;
    }
    let _down = Down("clidly");
    let run = |args: &[&str]| {
        let out = netmatrix(args);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, _, stderr) = run(&["lab", "up", "clidly", "--nodes", "2"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = run(&["lab", "fault", "inject", "clidly", "delay-policy", "--node", "1"]);
    assert!(code == Some(2) && stderr.contains("--by"), "a delay-policy without --by is bad input: {stderr}");
    let (code, _, stderr) = run(&["lab", "fault", "inject", "clidly", "delay-policy", "--node", "1", "--by", "300ms"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (_, stdout, _) = run(&["lab", "status", "clidly"]);
    assert!(stdout.contains("fault delay-policy node1 by 300ms"), "saved with its delay: {stdout}");
    let (code, stdout, stderr) = run(&["lab", "fault", "clear", "clidly", "delay-policy"]);
    assert!(code == Some(0) && !stdout.contains("fault "), "{stdout}{stderr}");
}

#[test]
fn drop_ipv6_is_refused_on_an_ipv4_lab_and_injected_on_a_dual_one() {
    if !root() {
        return;
    }
    let (_v4, _dual) = (Down("cliv4"), Down("cli6"));
    let run = |args: &[&str]| {
        let out = netmatrix(args);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for (lab, family) in [("cliv4", "ipv4"), ("cli6", "dual")] {
        let (code, _, stderr) = run(&["lab", "up", lab, "--nodes", "2", "--ip-family", family]);
        assert_eq!(code, Some(0), "{stderr}");
    }
    let (code, _, stderr) = run(&["lab", "fault", "inject", "cliv4", "drop-ipv6", "--node", "1"]);
    assert!(code == Some(2) && stderr.contains("ipv4 only") && stderr.contains("nothing was injected"), "bad input: {stderr}");
    let (_, stdout, _) = run(&["lab", "status", "cliv4"]);
    assert!(!stdout.contains("fault "), "nothing injected: {stdout}");
    let (code, stdout, stderr) = run(&["lab", "fault", "inject", "cli6", "drop-ipv6", "--node", "1"]);
    assert!(code == Some(0) && stdout.contains("fault drop-ipv6 node1"), "{stdout}{stderr}");
}
