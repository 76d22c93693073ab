//! Rulesets loaded into a real kernel: the root and `nft` check, and a throwaway namespace.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use netmatrix_lab::netns;

/// Whether kernel tests can run; if not, why, on stderr.
pub fn privileged() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: loading rulesets needs root to create network namespaces (CI runs as root)");
        return false;
    }
    if !Command::new("nft").arg("--version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: `nft` not found (Debian package nftables)");
        return false;
    }
    true
}

/// A network namespace for the test, deleted when dropped (also on panic).
pub struct Namespace(pub String);

impl Namespace {
    /// `nm-<suite>-<tag>-<pid>`: unique per test process and test.
    pub fn new(suite: &str, tag: &str) -> Self {
        let name = format!("nm-{suite}-{tag}-{}", std::process::id());
        netns::create(&name).unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        Namespace(name)
    }

    /// Runs `nft args...` inside the namespace, with `script` on stdin.
    pub fn nft(&self, args: &[&str], script: Option<&str>) -> Output {
        let mut command = Command::new("nft");
        command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = netns::enter(&self.0, || command.spawn()).unwrap().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(script.unwrap_or_default().as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = netns::delete(&self.0);
    }
}
