//! The archive as other programs read it: Python's tarfile and hashlib (an independent reader of
//! the layout, digests and layer), and skopeo (containers/image, the library of podman and CRI-O).
//! Each test prints why it checked nothing when its reader is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use netmatrix_image::{Config, File, Image, Reference, write_archive};

fn write_sample(dir: &Path) -> (PathBuf, String) {
    let image = Image {
        reference: Reference::parse("netmatrix-agent:0.1.0").unwrap(),
        files: vec![
            File { path: "/netmatrix-agent".into(), mode: 0o755, bytes: (0..200_000u32).flat_map(u32::to_le_bytes).collect() },
            File { path: "/netmatrix".into(), mode: 0o755, bytes: b"second binary".to_vec() },
        ],
        config: Config {
            entrypoint: vec!["/netmatrix-agent".into()],
            cmd: vec!["serve".into(), "--tcp".into(), "8080".into()],
            user: "65534:65534".into(),
            env: vec!["PATH=/".into()],
            labels: BTreeMap::from([("org.opencontainers.image.title".into(), "netmatrix-agent".into())]),
        },
    };
    let path = dir.join("image.tar");
    let digest = write_archive(&image, std::fs::File::create(&path).unwrap()).unwrap();
    (path, digest)
}

fn found(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Walks index.json -> manifest -> config and layer, recomputing every digest and size, and lists
/// the layer's files with their modes; manifest.json must name the same blobs.
const PYTHON_CHECK: &str = r#"
import gzip, hashlib, io, json, sys, tarfile
archive = tarfile.open(sys.argv[1])
blobs = {m.name.rstrip("/"): archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
def blob(descriptor):
    data = blobs["blobs/" + descriptor["digest"].replace(":", "/")]
    assert "sha256:" + hashlib.sha256(data).hexdigest() == descriptor["digest"], descriptor
    assert len(data) == descriptor["size"], descriptor
    return data
assert json.loads(blobs["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
index = json.loads(blobs["index.json"])
assert index["schemaVersion"] == 2
[entry] = index["manifests"]
manifest = json.loads(blob(entry))
config = json.loads(blob(manifest["config"]))
[layer_descriptor] = manifest["layers"]
layer = gzip.decompress(blob(layer_descriptor))
assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
[docker] = json.loads(blobs["manifest.json"])
assert docker["Config"] == "blobs/" + manifest["config"]["digest"].replace(":", "/")
assert docker["Layers"] == ["blobs/" + layer_descriptor["digest"].replace(":", "/")]
files = {m.name: [oct(m.mode), m.size, m.uid, m.gid, m.mtime] for m in tarfile.open(fileobj=io.BytesIO(layer)).getmembers()}
print(json.dumps({"digest": entry["digest"], "names": entry["annotations"], "config": config["config"], "files": files, "tags": docker["RepoTags"]}))
"#;

#[test]
fn python_reads_layout_digests_and_layer() {
    if !found("python3") {
        println!("skipped: python3 not found, so the archive was not read by an independent reader");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, digest) = write_sample(dir.path());
    let out = Command::new("python3").arg("-c").arg(PYTHON_CHECK).arg(&path).output().unwrap();
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        seen,
        serde_json::json!({
            "digest": digest,
            "names": {"io.containerd.image.name": "docker.io/library/netmatrix-agent:0.1.0", "org.opencontainers.image.ref.name": "0.1.0"},
            "config": {"User": "65534:65534", "Env": ["PATH=/"], "Entrypoint": ["/netmatrix-agent"], "Cmd": ["serve", "--tcp", "8080"],
                       "Labels": {"org.opencontainers.image.title": "netmatrix-agent"}},
            "files": {"netmatrix": ["0o755", 13, 0, 0, 0], "netmatrix-agent": ["0o755", 800_000, 0, 0, 0]},
            "tags": ["netmatrix-agent:0.1.0"],
        })
    );
}

fn skopeo(args: &[&str]) -> serde_json::Value {
    let out = Command::new("skopeo").args(args).output().unwrap();
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    if out.stdout.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&out.stdout).unwrap() }
}

#[test]
fn skopeo_reads_both_the_oci_and_the_docker_archive() {
    if !found("skopeo") {
        println!("skipped: skopeo not found (Debian package `skopeo`), so containers/image did not read the archive");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, digest) = write_sample(dir.path());
    let path = path.to_str().unwrap();
    let inspected = skopeo(&["inspect", &format!("oci-archive:{path}")]);
    assert_eq!((&inspected["Digest"], &inspected["Architecture"], &inspected["Os"]), (&digest.clone().into(), &"amd64".into(), &"linux".into()));
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 1, "{inspected}");
    // The tag selects the manifest by its org.opencontainers.image.ref.name.
    assert_eq!(skopeo(&["inspect", &format!("oci-archive:{path}:0.1.0")])["Digest"], digest);
    let docker = skopeo(&["inspect", "--config", &format!("docker-archive:{path}")]);
    assert_eq!(docker["config"]["Entrypoint"], serde_json::json!(["/netmatrix-agent"]));
    // Copying verifies every blob against its digest and the layer against its diff_id.
    for source in ["oci-archive", "docker-archive"] {
        let copy = dir.path().join(source);
        skopeo(&["copy", "--quiet", &format!("{source}:{path}"), &format!("oci:{}:copy", copy.display())]);
        assert!(copy.join("index.json").is_file());
    }
}
