//! What every test that brings up a real lab needs: the root check, the agent the pods run,
//! a guard that removes the lab, labels.

use netmatrix_lab::Lab;
use netmatrix_model::Labels;

/// Lab tests need root; without it they say so and check nothing (CI runs as root).
pub fn root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED: the lab needs root to create network namespaces (CI runs as root)");
    }
    root
}

/// `cargo test -p netmatrix-lab` alone does not build the agent the pods run: build it.
pub fn ensure_agent() {
    let target = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("netmatrix-agent");
    if !target.is_file() {
        let status = std::process::Command::new(env!("CARGO")).args(["build", "-q", "-p", "netmatrix-agent"]).status().unwrap();
        assert!(status.success(), "building netmatrix-agent");
    }
}

/// Removes the lab when the test ends, passed or not.
pub struct Guard(pub &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Lab::down(self.0);
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// One probe batch from every pod of the lab, all rows at once (`batch` gives a row's
/// probes): each row's source `ns/pod` and the agent's output.
pub fn probe_rows(lab: &Lab, batch: impl Fn(&netmatrix_lab::PodState) -> Vec<serde_json::Value> + Sync) -> Vec<(String, String)> {
    std::thread::scope(|s| {
        let batch = &batch;
        let handles: Vec<_> = lab
            .pods()
            .iter()
            .map(|src| {
                s.spawn(move || {
                    (
                        format!("{}/{}", src.namespace, src.name),
                        lab.probe(&src.namespace, &src.name, &serde_json::Value::Array(batch(src)).to_string(), std::time::Duration::from_secs(60)).unwrap(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}
