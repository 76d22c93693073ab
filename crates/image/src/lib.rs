//! OCI image archives built from files in memory, without Docker or a registry.
//!
//! [`write_archive`] writes one tar that is both an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`; what `ctr images import`, `kind load image-archive` and
//! `skopeo copy oci-archive:…` read) and a docker archive (`manifest.json`, for `docker load`):
//! both describe the same blobs. containerd's importer takes the OCI layout when `oci-layout` is
//! present and ignores `manifest.json`; `docker save` (Docker 25 and later) writes the same pair.
//!
//! The image is one gzip-compressed layer holding the files. Output is deterministic: entries
//! sorted, mtimes 0, owner 0:0, creation time the epoch; the same inputs give the same bytes, so
//! the same digests.

pub mod elf;
pub mod images;
mod reference;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use reference::Reference;

/// A regular file of the image.
#[derive(Debug, Clone)]
pub struct File {
    /// Absolute path in the image, e.g. `/netmatrix-agent`; parent directories are added.
    pub path: String,
    pub mode: u32,
    pub bytes: Vec<u8>,
}

/// What the runtime needs to start a container (the `config` of the OCI image config). The
/// platform is always linux/amd64: [`elf::check_static`] admits only x86-64 binaries.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `uid:gid`.
    pub user: String,
    /// `NAME=value`.
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Image {
    pub reference: Reference,
    pub files: Vec<File>,
    pub config: Config,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0:?} cannot be a file of the image: give an absolute path without `.`, `..` or empty components")]
    BadPath(String),
    #[error("{0} is given twice")]
    DuplicatePath(String),
    #[error("writing the image archive")]
    Write(#[source] io::Error),
}

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Read by containerd's importer (`ctr images import`, kind) as the image's full name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI layout's name for a manifest: the tag only, as containerd's exporter and `docker save`
/// write it (skopeo's `oci-archive:FILE:TAG` selects by it).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
const EPOCH: &str = "1970-01-01T00:00:00Z";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: &'static str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'static str, String>,
}

#[derive(Serialize, Clone, Copy)]
struct Platform {
    architecture: &'static str,
    os: &'static str,
}

const LINUX_AMD64: Platform = Platform { architecture: "amd64", os: "linux" };

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

#[derive(Serialize)]
struct ImageConfig<'a> {
    created: &'static str,
    #[serde(flatten)]
    platform: Platform,
    config: RunConfig<'a>,
    rootfs: RootFs,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig<'a> {
    user: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    env: &'a [String],
    entrypoint: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    cmd: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

/// One entry of docker's `manifest.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

struct Blob {
    digest: String,
    bytes: Vec<u8>,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Self {
        Blob { digest: sha256(&bytes), bytes }
    }

    fn json(value: &impl Serialize) -> Self {
        Blob::new(serde_json::to_vec(value).expect("image JSON has string keys only"))
    }

    fn descriptor(&self, media_type: &'static str) -> Descriptor {
        Descriptor { media_type, digest: self.digest.clone(), size: self.bytes.len() as u64, platform: None, annotations: BTreeMap::new() }
    }

    fn path(&self) -> String {
        format!("blobs/{}", self.digest.replace(':', "/"))
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Writes the image archive; returns the manifest's digest (the image's id in containerd).
pub fn write_archive(image: &Image, out: impl Write) -> Result<String, ImageError> {
    let layer_tar = layer(&image.files)?;
    let config = Blob::json(&ImageConfig {
        created: EPOCH,
        platform: LINUX_AMD64,
        config: RunConfig {
            user: &image.config.user,
            env: &image.config.env,
            entrypoint: &image.config.entrypoint,
            cmd: &image.config.cmd,
            labels: &image.config.labels,
        },
        // Runtimes check each unpacked layer against its diff_id: the digest of the uncompressed tar.
        rootfs: RootFs { kind: "layers", diff_ids: vec![sha256(&layer_tar)] },
    });
    let layer = Blob::new(gzip(&layer_tar).map_err(ImageError::Write)?);
    let manifest = Blob::json(&Manifest {
        schema_version: 2,
        media_type: MEDIA_MANIFEST,
        config: config.descriptor(MEDIA_CONFIG),
        layers: vec![layer.descriptor(MEDIA_LAYER)],
    });
    let mut entry = manifest.descriptor(MEDIA_MANIFEST);
    entry.platform = Some(LINUX_AMD64);
    entry.annotations = BTreeMap::from([(ANNOTATION_CONTAINERD_NAME, image.reference.to_string()), (ANNOTATION_REF_NAME, image.reference.tag().to_owned())]);
    let index = serde_json::to_vec(&Index { schema_version: 2, media_type: MEDIA_INDEX, manifests: vec![entry] }).expect("string keys");
    let docker = serde_json::to_vec(&[DockerManifest { config: config.path(), repo_tags: vec![image.reference.familiar()], layers: vec![layer.path()] }])
        .expect("string keys");

    let blobs: BTreeMap<String, &Blob> = [&config, &layer, &manifest].into_iter().map(|b| (b.path(), b)).collect();
    let mut archive = tar::Builder::new(out);
    (|| {
        append_dir(&mut archive, "blobs/")?;
        append_dir(&mut archive, "blobs/sha256/")?;
        for (path, blob) in &blobs {
            append_file(&mut archive, path, 0o644, &blob.bytes)?;
        }
        append_file(&mut archive, "index.json", 0o644, &index)?;
        append_file(&mut archive, "manifest.json", 0o644, &docker)?;
        append_file(&mut archive, "oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        archive.into_inner()?.flush()
    })()
    .map_err(ImageError::Write)?;
    Ok(manifest.digest)
}

/// The uncompressed layer: the files and their parent directories, sorted by path.
fn layer(files: &[File]) -> Result<Vec<u8>, ImageError> {
    let mut entries: BTreeMap<String, Option<&File>> = BTreeMap::new();
    let mut dirs = BTreeSet::new();
    for file in files {
        let relative = file.path.strip_prefix('/').filter(|p| p.split('/').all(|c| !matches!(c, "" | "." | "..")));
        let relative = relative.ok_or_else(|| ImageError::BadPath(file.path.clone()))?;
        if entries.insert(relative.to_owned(), Some(file)).is_some() {
            return Err(ImageError::DuplicatePath(file.path.clone()));
        }
        dirs.extend(relative.match_indices('/').map(|(end, _)| format!("{}/", &relative[..end])));
    }
    for dir in dirs {
        if entries.contains_key(dir.trim_end_matches('/')) {
            return Err(ImageError::BadPath(format!("{dir} (also a file)")));
        }
        entries.insert(dir, None);
    }
    let mut tar = tar::Builder::new(Vec::new());
    for (path, file) in &entries {
        match file {
            Some(file) => append_file(&mut tar, path, file.mode, &file.bytes),
            None => append_dir(&mut tar, path),
        }
        .map_err(ImageError::Write)?;
    }
    tar.into_inner().map_err(ImageError::Write)
}

fn gzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
    // GzEncoder writes mtime 0 and no file name into the gzip header: deterministic as it is.
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes)?;
    gz.finish()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_file(tar: &mut tar::Builder<impl Write>, path: &str, mode: u32, bytes: &[u8]) -> io::Result<()> {
    tar.append_data(&mut header(tar::EntryType::Regular, mode, bytes.len() as u64), path, bytes)
}

fn append_dir(tar: &mut tar::Builder<impl Write>, path: &str) -> io::Result<()> {
    tar.append_data(&mut header(tar::EntryType::Directory, 0o755, 0), path, io::empty())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use serde_json::{Value, json};

    use super::*;

    fn sample() -> Image {
        Image {
            reference: Reference::parse("netmatrix-agent:0.1.0").unwrap(),
            files: vec![
                File { path: "/netmatrix-agent".into(), mode: 0o755, bytes: b"agent bytes".repeat(1000) },
                File { path: "/etc/netmatrix/readme".into(), mode: 0o644, bytes: b"hello".to_vec() },
            ],
            config: Config {
                entrypoint: vec!["/netmatrix-agent".into()],
                cmd: vec!["serve".into()],
                user: "65534:65534".into(),
                env: vec!["PATH=/".into()],
                labels: BTreeMap::from([("org.opencontainers.image.version".into(), "0.1.0".into())]),
            },
        }
    }

    fn entries(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, u32, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar_bytes);
        let mut entries = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            assert_eq!((header.mtime().unwrap(), header.uid().unwrap(), header.gid().unwrap()), (0, 0, 0));
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            entries.push((entry.path().unwrap().to_str().unwrap().to_owned(), header.entry_type(), header.mode().unwrap(), bytes));
        }
        entries
    }

    fn archive(image: &Image) -> (Vec<u8>, String) {
        let mut out = Vec::new();
        let digest = write_archive(image, &mut out).unwrap();
        (out, digest)
    }

    #[test]
    fn index_manifest_config_and_layer_are_consistent() {
        let (bytes, manifest_digest) = archive(&sample());
        let files: BTreeMap<String, Vec<u8>> = entries(&bytes).into_iter().filter(|e| e.1.is_file()).map(|e| (e.0, e.3)).collect();
        let blob = |descriptor: &Value| {
            let digest = descriptor["digest"].as_str().unwrap();
            let bytes = &files[&format!("blobs/{}", digest.replace(':', "/"))];
            assert_eq!(sha256(bytes), digest);
            assert_eq!(descriptor["size"], bytes.len(), "{descriptor}");
            bytes.clone()
        };
        assert_eq!(files["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
        let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
        assert_eq!((&index["schemaVersion"], &index["mediaType"]), (&json!(2), &json!(MEDIA_INDEX)));
        let [entry] = index["manifests"].as_array().unwrap().as_slice() else { panic!("one manifest: {index}") };
        assert_eq!(entry["digest"], manifest_digest);
        assert_eq!(entry["mediaType"], MEDIA_MANIFEST);
        assert_eq!(entry["platform"], json!({"architecture": "amd64", "os": "linux"}));
        assert_eq!(entry["annotations"], json!({ANNOTATION_CONTAINERD_NAME: "docker.io/library/netmatrix-agent:0.1.0", ANNOTATION_REF_NAME: "0.1.0"}));

        let manifest: Value = serde_json::from_slice(&blob(entry)).unwrap();
        assert_eq!((&manifest["schemaVersion"], &manifest["mediaType"]), (&json!(2), &json!(MEDIA_MANIFEST)));
        assert_eq!(manifest["config"]["mediaType"], MEDIA_CONFIG);
        let config: Value = serde_json::from_slice(&blob(&manifest["config"])).unwrap();
        assert_eq!(
            config,
            json!({
                "created": "1970-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
                "config": {"User": "65534:65534", "Env": ["PATH=/"], "Entrypoint": ["/netmatrix-agent"], "Cmd": ["serve"],
                           "Labels": {"org.opencontainers.image.version": "0.1.0"}},
                "rootfs": {"type": "layers", "diff_ids": [config["rootfs"]["diff_ids"][0]]},
            })
        );
        let [layer] = manifest["layers"].as_array().unwrap().as_slice() else { panic!("one layer: {manifest}") };
        assert_eq!(layer["mediaType"], MEDIA_LAYER);
        let mut layer_tar = Vec::new();
        flate2::read::GzDecoder::new(blob(layer).as_slice()).read_to_end(&mut layer_tar).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256(&layer_tar), "diff_id is the digest of the uncompressed layer");

        let layer: Vec<_> = entries(&layer_tar).into_iter().map(|(path, kind, mode, bytes)| (path, kind, format!("{mode:o}"), bytes.len())).collect();
        let dir = tar::EntryType::Directory;
        let file = tar::EntryType::Regular;
        assert_eq!(
            layer,
            [
                ("etc/".into(), dir, "755".into(), 0),
                ("etc/netmatrix/".into(), dir, "755".into(), 0),
                ("etc/netmatrix/readme".into(), file, "644".into(), 5),
                ("netmatrix-agent".into(), file, "755".into(), 11000),
            ]
        );

        let docker: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        let layer_path = format!("blobs/{}", manifest["layers"][0]["digest"].as_str().unwrap().replace(':', "/"));
        let config_path = format!("blobs/{}", manifest["config"]["digest"].as_str().unwrap().replace(':', "/"));
        assert_eq!(docker, json!([{"Config": config_path, "RepoTags": ["netmatrix-agent:0.1.0"], "Layers": [layer_path]}]));
    }

    #[test]
    fn same_inputs_same_bytes() {
        let (first, digest) = archive(&sample());
        let mut reordered = sample();
        reordered.files.reverse();
        assert_eq!(archive(&reordered), (first.clone(), digest.clone()), "file order does not matter");
        let mut changed = sample();
        changed.config.cmd.push("--tcp".into());
        assert_ne!(archive(&changed).1, digest);
        let names: Vec<String> = entries(&first).into_iter().map(|e| e.0).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "archive entries in name order");
    }

    #[test]
    fn bad_paths_are_refused() {
        for (path, duplicate) in
            [("netmatrix-agent", false), ("/a/../b", false), ("/a//b", false), ("/", false), ("/etc/netmatrix", false), ("/netmatrix-agent", true)]
        {
            let mut image = sample();
            image.files.push(File { path: path.into(), mode: 0o644, bytes: vec![] });
            let err = write_archive(&image, Vec::new()).unwrap_err();
            assert_eq!(matches!(err, ImageError::DuplicatePath(_)), duplicate, "{path}: {err}");
        }
    }
}
