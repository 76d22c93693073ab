//! `netmatrix image build`: the archive names the image and carries the binaries; bad binaries,
//! names and outputs are refused with exit codes 2 and 3. The binaries are crafted ELF headers:
//! the command only checks that they are static x86-64 executables.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A 64-bit x86-64 ELF header and one program header: `PT_LOAD` (static) or `PT_INTERP` (dynamic).
fn elf(interpreter: bool, tail: &[u8]) -> Vec<u8> {
    let mut elf = vec![0u8; 64 + 56];
    elf[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    elf[16] = 3; // ET_DYN: a (static-)pie executable
    elf[18] = 62; // EM_X86_64
    elf[32] = 64; // e_phoff
    elf[52] = 64; // e_ehsize
    elf[54] = 56; // e_phentsize
    elf[56] = 1; // e_phnum
    elf[64] = if interpreter { 3 } else { 1 };
    elf.extend_from_slice(tail);
    elf
}

fn netmatrix_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netmatrix")).current_dir(dir).args(["image", "build"]).args(args).output().expect("running netmatrix")
}

fn written(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.ends_with(".tar")).collect()
}

struct Archive {
    index: Value,
    config: Value,
    /// Layer path -> (mode, bytes).
    files: BTreeMap<String, (u32, Vec<u8>)>,
}

fn tar_files(bytes: &[u8]) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut files = BTreeMap::new();
    for entry in tar::Archive::new(bytes).entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        files.insert(entry.path().unwrap().to_str().unwrap().to_owned(), (entry.header().mode().unwrap(), content));
    }
    files
}

fn read_archive(path: &Path) -> Archive {
    let outer = tar_files(&std::fs::read(path).unwrap());
    let blob = |digest: &Value| outer[&format!("blobs/{}", digest.as_str().unwrap().replace(':', "/"))].1.clone();
    let index: Value = serde_json::from_slice(&outer["index.json"].1).unwrap();
    let manifest: Value = serde_json::from_slice(&blob(&index["manifests"][0]["digest"])).unwrap();
    let config = serde_json::from_slice(&blob(&manifest["config"]["digest"])).unwrap();
    let mut layer = Vec::new();
    flate2::read::GzDecoder::new(blob(&manifest["layers"][0]["digest"]).as_slice()).read_to_end(&mut layer).unwrap();
    Archive { index, config, files: tar_files(&layer) }
}

#[test]
fn agent_image_with_default_name_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let agent = elf(false, b"the agent");
    std::fs::write(dir.path().join("agent"), &agent).unwrap();
    let out = netmatrix_in(dir.path(), &["--agent", "agent"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let file = format!("netmatrix-agent-{VERSION}.tar");
    for line in [
        format!("image docker.io/library/netmatrix-agent:{VERSION} (manifest sha256:"),
        format!("wrote {file}"),
        format!("kind load image-archive {file}"),
        format!("ctr -n k8s.io images import {file}"),
        format!("skopeo copy oci-archive:{file} docker://REGISTRY/netmatrix-agent:{VERSION}"),
        format!("image: netmatrix-agent:{VERSION} with imagePullPolicy: IfNotPresent"),
    ] {
        assert!(stdout.contains(&line), "{line:?} in {stdout}");
    }
    let archive = read_archive(&dir.path().join(&file));
    assert_eq!(archive.index["manifests"][0]["annotations"]["io.containerd.image.name"], format!("docker.io/library/netmatrix-agent:{VERSION}"));
    assert_eq!(archive.files, BTreeMap::from([("netmatrix-agent".to_owned(), (0o755, agent))]));
    let config = &archive.config["config"];
    assert_eq!((&config["Entrypoint"], &config["User"]), (&serde_json::json!(["/netmatrix-agent"]), &Value::from("65534:65534")));
    assert_eq!(config["Cmd"], serde_json::json!(["serve", "--tcp", "8080", "--udp", "8080", "--http", "8090"]));
}

#[test]
fn sonobuoy_image_with_both_binaries_and_a_registry_name() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, netmatrix) = (elf(false, b"agent"), elf(false, b"netmatrix"));
    std::fs::write(dir.path().join("agent"), &agent).unwrap();
    std::fs::write(dir.path().join("nm"), &netmatrix).unwrap();
    let out = netmatrix_in(dir.path(), &["--sonobuoy", "--agent", "agent", "--netmatrix", "nm", "--name", "localhost:5000/nm/plugin:dev", "-o", "p.tar"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("skopeo copy oci-archive:p.tar docker://localhost:5000/nm/plugin:dev"));
    let archive = read_archive(&dir.path().join("p.tar"));
    assert_eq!(archive.index["manifests"][0]["annotations"]["io.containerd.image.name"], "localhost:5000/nm/plugin:dev");
    assert_eq!(archive.files, BTreeMap::from([("netmatrix".to_owned(), (0o755, netmatrix)), ("netmatrix-agent".to_owned(), (0o755, agent))]));
    assert_eq!(archive.config["config"]["Entrypoint"], serde_json::json!(["/netmatrix"]));
}

#[test]
fn the_agent_is_found_next_to_netmatrix() {
    let dir = tempfile::tempdir().unwrap();
    let netmatrix = dir.path().join("netmatrix");
    // A hard link keeps current_exe() in this directory (a symlink would resolve back).
    std::fs::hard_link(env!("CARGO_BIN_EXE_netmatrix"), &netmatrix).or_else(|_| std::fs::copy(env!("CARGO_BIN_EXE_netmatrix"), &netmatrix).map(drop)).unwrap();
    std::fs::write(dir.path().join("netmatrix-agent"), elf(false, b"next door")).unwrap();
    let out = Command::new(&netmatrix).current_dir(dir.path()).args(["image", "build", "-o", "a.tar"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read_archive(&dir.path().join("a.tar")).files["netmatrix-agent"].1, elf(false, b"next door"));
}

#[test]
fn bad_binaries_and_names_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("static"), elf(false, b"")).unwrap();
    std::fs::write(dir.path().join("dynamic"), elf(true, b"/lib64/ld-linux-x86-64.so.2\0")).unwrap();
    std::fs::write(dir.path().join("script"), "#!/bin/sh\n").unwrap();
    for (args, fragments) in [
        (&["--agent", "missing"][..], &["missing: No such file", "crates/agent/build-static.sh", "--agent PATH"][..]),
        (&["--agent", "dynamic"], &["dynamic: dynamically linked", "crates/agent/build-static.sh"]),
        (&["--agent", "script"], &["script: not an ELF executable"]),
        // The netmatrix under test is not static: the Sonobuoy image needs --netmatrix then.
        (&["--agent", "static", "--sonobuoy"], &["dynamically linked", "static netmatrix", "target-feature=+crt-static"]),
        (&["--agent", "static", "--sonobuoy", "--netmatrix", "dynamic"], &["dynamic: dynamically linked", "--netmatrix PATH"]),
        (&["--agent", "static", "--name", "Netmatrix:1"], &["--name: \"Netmatrix:1\" is not an image reference"]),
    ] {
        let out = netmatrix_in(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for fragment in fragments {
            assert!(stderr.contains(fragment), "{args:?}: {fragment:?} in {stderr}");
        }
        assert!(out.stdout.is_empty() && written(dir.path()).is_empty(), "{args:?} wrote something");
    }
}

#[test]
fn unwritable_output_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("agent"), elf(false, b"")).unwrap();
    let out = netmatrix_in(dir.path(), &["--agent", "agent", "-o", "no/such/dir.tar"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("writing no/such/dir.tar: No such file"));
    // A failed write removes only a file it created, never what was there: here a full device,
    // a private copy of /dev/full (mknod needs root, as CI is).
    let full = dir.path().join("full");
    if !Command::new("mknod").arg(&full).args(["c", "1", "7"]).status().is_ok_and(|s| s.success()) {
        println!("skipped the existing-output check: mknod of a full device needs root");
        return;
    }
    let out = netmatrix_in(dir.path(), &["--agent", "agent", "-o", "full"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No space left on device"));
    assert!(full.exists(), "the existing output was removed");
}
