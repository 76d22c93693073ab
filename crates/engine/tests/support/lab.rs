//! What the engine's lab tests share: the root check, the agent the lab's pods run, and a
//! guard that removes the test's lab.

use netmatrix_lab::Lab;

/// Whether the test can make network namespaces; if not, says so (`what`: the test).
pub fn root(what: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED: {what} needs root to create network namespaces (CI runs as root)");
    }
    root
}

/// `cargo test -p netmatrix-engine` alone does not build the agent the lab's pods run: build it.
pub fn ensure_agent() {
    let target = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("netmatrix-agent");
    if !target.is_file() {
        let status = std::process::Command::new(env!("CARGO")).args(["build", "-q", "-p", "netmatrix-agent"]).status().unwrap();
        assert!(status.success(), "building netmatrix-agent");
    }
}

/// Removes the lab when the test ends, passed or not. Made before the backend, so dropped
/// after it: the backend's `Lab` (and the lock it holds) is gone by then.
pub struct Guard(pub &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Lab::down(self.0);
    }
}
