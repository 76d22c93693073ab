//! The image is FROM scratch, so the agent must be a static binary that
//! needs nothing from its directory or environment. The image itself
//! cannot be built here; this test builds the static binary with the
//! project's own script (into a separate target dir, so it never waits on
//! the lock of the `cargo test` that runs it), checks `ldd`, and runs
//! serve + connect + probe from an empty directory with an empty
//! environment.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;

const BUILD_DEADLINE: Duration = Duration::from_secs(1500);

fn build_static() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target_dir = crate_dir.join("../../target/agent-static");
    let mut cmd = Command::new("bash");
    cmd.arg(crate_dir.join("build-static.sh")).env("CARGO_TARGET_DIR", &target_dir).env_remove("CARGO_ENCODED_RUSTFLAGS").env_remove("RUSTFLAGS");
    let out = run(cmd, None, BUILD_DEADLINE);
    assert!(out.status.success(), "build-static.sh failed:\n{}", out.stderr);
    let path = PathBuf::from(out.stdout.lines().last().expect("the script prints the binary path"));
    assert!(path.is_file(), "no binary at {}", path.display());
    path
}

#[test]
fn static_binary_runs_from_an_empty_directory() {
    let binary = build_static();

    let mut ldd = Command::new("ldd");
    ldd.arg(&binary);
    let out = run(ldd, None, Duration::from_secs(30));
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("statically linked") || said.contains("not a dynamic executable"), "ldd says the agent is dynamic:\n{said}");

    let dir = TempDir::new();
    let agent = dir.path().join("netmatrix-agent");
    std::fs::copy(&binary, &agent).expect("copy the binary");
    let empty = TempDir::new();
    let bare = |args: &[&str]| {
        let mut cmd = Command::new(&agent);
        cmd.args(args).env_clear().current_dir(empty.path());
        cmd
    };

    let serve = Serve::start_with(bare(&[]), &["--name", "static", "--bind", "127.0.0.1", "--tcp", "0", "--udp", "0"]);
    let (tcp, udp) = (serve.addr("tcp", "127.0.0.1"), serve.addr("udp", "127.0.0.1"));
    for (addr, protocol) in [(tcp, "tcp"), (udp, "udp")] {
        let out = run(bare(&["connect", &addr.to_string(), "--protocol", protocol, "--timeout", "5s"]), None, RUN_DEADLINE);
        assert_eq!(out.code(), Some(0), "{protocol}: {}", out.stderr);
    }
    let batch = format!(r#"[{{"target":"127.0.0.1","port":{},"protocol":"tcp"}}]"#, tcp.port());
    let out = run(bare(&["probe", "--batch", "-"]), Some(&batch), RUN_DEADLINE);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.results()[0]["answered_by"], "static");
    assert_eq!(std::fs::read_dir(empty.path()).expect("read dir").count(), 0, "the agent wrote into its directory");
}
