#!/usr/bin/env python3
"""Writes an OCI image archive (oci-layout tar) holding one static binary, for `ctr images import`.

mkimage.py OUT.tar NAME BINARY ENTRYPOINT-JSON

NAME is the full reference (e.g. registry.k8s.io/pause:3.10.1): containerd takes it from the
io.containerd.image.name annotation, and the CRI plugin finds images by their normalized name.
One uncompressed layer (diff_id = digest): /<binary>, /etc/passwd, /etc/group, /tmp. Reproducible
(fixed mtimes)."""
import hashlib, io, json, os, sys, tarfile

out, name, binary, entry = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
base = os.path.basename(binary)

def add(t, n, data=None, mode=0o644, dir=False):
    ti = tarfile.TarInfo(n); ti.mtime = 0; ti.uid = ti.gid = 0; ti.mode = mode
    if dir:
        ti.type = tarfile.DIRTYPE; t.addfile(ti)
    else:
        ti.size = len(data); t.addfile(ti, io.BytesIO(data))

layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.GNU_FORMAT) as t:
    with open(binary, "rb") as f:
        add(t, base, f.read(), 0o755)
    add(t, "etc", dir=True, mode=0o755)
    add(t, "tmp", dir=True, mode=0o1777)
    add(t, "etc/passwd", b"root:x:0:0:root:/:/nonexistent\nnobody:x:65534:65534:nobody:/:/nonexistent\n")
    add(t, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
layer = layer.getvalue(); ld = hashlib.sha256(layer).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Entrypoint": entry, "Env": ["PATH=/"], "WorkingDir": "/"},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + ld]}}).encode()
cd = hashlib.sha256(config).hexdigest()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + ld, "size": len(layer)}]}).encode()
md = hashlib.sha256(manifest).hexdigest()
index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + md, "size": len(manifest),
    "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]}}]}).encode()
tmp = out + ".tmp"
with tarfile.open(tmp, "w") as t:
    for n, b in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
                 ("blobs/sha256/" + ld, layer), ("blobs/sha256/" + cd, config), ("blobs/sha256/" + md, manifest)):
        add(t, n, b)
os.replace(tmp, out)
