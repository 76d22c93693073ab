//! Differential test against a real peer: network-config-analyzer (NCA, from PyPI) on 200 seeded
//! random clusters, comparing every pod-to-pod allowed connection.
//!
//! NCA comes from `.venv/bin/nca` (made by `scripts/test`) or `$NETMATRIX_NCA`. In CI it must be
//! there; elsewhere the test says why it checked nothing.
//!
//! Where NCA and the Kubernetes documentation disagree, the documentation wins: NCA gets an
//! equivalent rewrite of the input (listed in `REWRITES`, each with its reason) and netmatrix
//! the original.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use netmatrix_model::{Protocol, parse_str};
use netmatrix_oracle::{ConnSet, Options, PortSet, Reachability};
use netmatrix_synth::{Params, documents};
use serde_json::{Value, json};

const CLUSTERS: u64 = 200;

/// (name, reason): the input rewrites NCA needs; the reason says why the rewrite is equivalent.
const REWRITES: [(&str, &str); 3] = [
    (
        "policyTypes [Egress, Ingress] -> [Ingress, Egress]",
        "NCA rejects this order (\"policyTypes has invalid value\"); the API lists policyTypes as a set \
         (\"List of rule types that the NetworkPolicy relates to\"), order carries no meaning",
    ),
    (
        "drop `egress: []` when policyTypes is absent",
        "NCA reads the mere presence of the key as affecting egress; Kubernetes defaults policyTypes from \
         the rules: \"policies that contain an egress section are assumed to affect egress\", and the API \
         server's defaulting adds Egress only when len(spec.egress) != 0",
    ),
    (
        "Exists/DoesNotExist in a podSelector beside a namespaceSelector -> In/NotIn over every label value",
        "NCA then matches only pods of the policy's own namespace; the documentation says the pair \
         \"selects particular Pods within particular namespaces\" (every value a synthetic pod can carry is \
         listed, so the rewrite selects the same pods)",
    ),
];

const ALL_LABEL_VALUES: [&str; 4] = ["a", "b", "c", "d"];

fn nca_path() -> Option<PathBuf> {
    let candidate = std::env::var_os("NETMATRIX_NCA").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/nca"));
    candidate.is_file().then_some(candidate)
}

/// Applies `REWRITES` to a copy of the documents; returns how often each applied.
fn rewrite_for_nca(docs: &mut [Value]) -> [usize; 3] {
    let mut applied = [0; 3];
    for doc in docs.iter_mut().filter(|d| d["kind"] == "NetworkPolicy") {
        let spec = &mut doc["spec"];
        if spec["policyTypes"] == json!(["Egress", "Ingress"]) {
            spec["policyTypes"] = json!(["Ingress", "Egress"]);
            applied[0] += 1;
        }
        if spec.get("policyTypes").is_none() && spec["egress"] == json!([]) {
            spec.as_object_mut().unwrap().remove("egress");
            applied[1] += 1;
        }
        // `get_mut`, not indexing: `value[key]` on a mutable value inserts a null key, which NCA
        // would read (an `egress: null` key isolates egress for NCA).
        for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
            for rule in spec.get_mut(direction).and_then(Value::as_array_mut).into_iter().flatten() {
                for peer in rule.get_mut(peers).and_then(Value::as_array_mut).into_iter().flatten() {
                    if peer.get("namespaceSelector").is_none() {
                        continue;
                    }
                    let expressions = peer.get_mut("podSelector").and_then(|s| s.get_mut("matchExpressions")).and_then(Value::as_array_mut);
                    for expr in expressions.into_iter().flatten() {
                        let op = match expr["operator"].as_str() {
                            Some("Exists") => "In",
                            Some("DoesNotExist") => "NotIn",
                            _ => continue,
                        };
                        expr["operator"] = json!(op);
                        expr["values"] = json!(ALL_LABEL_VALUES);
                        applied[2] += 1;
                    }
                }
            }
        }
    }
    applied
}

/// `All connections` or `{protocols:TCP, UDP,dst_ports:80,90-100}`.
fn parse_nca_conn(text: &str) -> ConnSet {
    if text == "All connections" {
        return ConnSet::all();
    }
    let body = text.strip_prefix("{protocols:").and_then(|t| t.strip_suffix('}')).unwrap_or_else(|| panic!("NCA connection {text:?}"));
    let (protocols, ports) = match body.split_once(",dst_ports:") {
        Some((p, ports)) => (p, Some(ports)),
        None => (body, None),
    };
    let ports = match ports {
        None => PortSet::full(),
        Some(list) => list.split(',').fold(PortSet::empty(), |acc, r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            acc.union(&PortSet::range(a.parse().unwrap(), b.parse().unwrap()))
        }),
    };
    protocols.split(", ").fold(ConnSet::none(), |acc, p| {
        let protocol = Protocol::parse(p.trim()).unwrap_or_else(|| panic!("NCA protocol {p:?} in {text:?}"));
        acc.union(&ConnSet::single(protocol, ports.clone()))
    })
}

/// Pod-to-pod connections (`ns/pod` endpoints; address ranges have no `/`).
fn parse_nca(text: &str) -> BTreeMap<(String, String), ConnSet> {
    let mut pairs: BTreeMap<(String, String), ConnSet> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (pair, conn) = line.split_once(" : ").unwrap_or_else(|| panic!("NCA line {line:?}"));
        let (src, dst) = pair.split_once(" => ").unwrap_or_else(|| panic!("NCA line {line:?}"));
        if src.contains('/') && dst.contains('/') {
            let entry = pairs.entry((src.to_owned(), dst.to_owned())).or_default();
            *entry = entry.union(&parse_nca_conn(conn));
        }
    }
    pairs
}

fn ours(yaml: &str) -> BTreeMap<(String, String), ConnSet> {
    let cluster = parse_str("synth.yaml", yaml).expect("synth makes valid manifests");
    let mut reach = Reachability::compute(&cluster, Options { ipblocks_match_pods: false });
    let mut pairs = BTreeMap::new();
    for (s, src) in cluster.pods.iter().enumerate() {
        for (d, dst) in cluster.pods.iter().enumerate() {
            let id = reach.pair(reach.pod_class[s], reach.pod_class[d]);
            if s != d && !reach.conn(id).is_empty() {
                pairs.insert((format!("{}/{}", src.namespace, src.name), format!("{}/{}", dst.namespace, dst.name)), reach.conn(id).clone());
            }
        }
    }
    pairs
}

fn to_yaml(docs: &[Value]) -> String {
    docs.iter().map(|d| format!("---\n{d}\n")).collect()
}

#[test]
fn agrees_with_network_config_analyzer_on_200_random_clusters() {
    let Some(nca) = nca_path() else {
        assert!(std::env::var_os("CI").is_none(), "network-config-analyzer is missing in CI: scripts/test installs it into .venv");
        eprintln!("SKIPPED: network-config-analyzer not found (run ./scripts/test once, or set NETMATRIX_NCA)");
        return;
    };
    let python = nca.with_file_name("python3");
    let work = tempfile::tempdir().unwrap();
    let mut configs = Vec::new();
    let mut applied = [0usize; 3];
    let mut expected = Vec::new();
    for seed in 0..CLUSTERS {
        let params = Params { pods: 10, policies: 8, ..Params::small(seed) };
        let mut docs = documents(&params);
        expected.push(ours(&to_yaml(&docs)));
        for (total, n) in applied.iter_mut().zip(rewrite_for_nca(&mut docs)) {
            *total += n;
        }
        let dir = work.path().join(format!("c{seed}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("cluster.yaml"), to_yaml(&docs)).unwrap();
        configs.push(dir);
    }
    // Two drivers, one per core.
    let out = work.path().join("out");
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nca/batch.py");
    let halves: Vec<_> = configs
        .chunks(configs.len().div_ceil(2))
        .map(|chunk| Command::new(&python).arg(&driver).arg(&out).args(chunk).spawn().expect("starting NCA's python"))
        .collect();
    for mut child in halves {
        assert!(child.wait().unwrap().success(), "the NCA driver failed");
    }
    let mut disagreements = Vec::new();
    for (seed, ours) in expected.iter().enumerate() {
        let name = format!("c{seed}");
        let rc = std::fs::read_to_string(out.join(format!("{name}.rc"))).unwrap();
        let log = std::fs::read_to_string(out.join(format!("{name}.log"))).unwrap_or_default();
        assert_eq!(rc.trim(), "0", "NCA failed on seed {seed}: {log}");
        let theirs = parse_nca(&std::fs::read_to_string(out.join(format!("{name}.txt"))).unwrap());
        if *ours != theirs {
            let keys: std::collections::BTreeSet<_> = ours.keys().chain(theirs.keys()).collect();
            for k in keys {
                if ours.get(k) != theirs.get(k) {
                    disagreements.push(format!(
                        "seed {seed} {} => {}: netmatrix {:?} NCA {:?}",
                        k.0,
                        k.1,
                        ours.get(k).map(ToString::to_string),
                        theirs.get(k).map(ToString::to_string)
                    ));
                }
            }
        }
    }
    let compared: usize = expected.iter().map(BTreeMap::len).sum();
    eprintln!("NCA differential: {CLUSTERS} clusters, {compared} allowed pod pairs compared");
    for ((rewrite, reason), n) in REWRITES.iter().zip(applied) {
        eprintln!("  rewrite for NCA applied {n} times: {rewrite} ({reason})");
    }
    assert!(compared > 1000, "too few connections to compare ({compared}): the generator lost its variety");
    assert!(disagreements.is_empty(), "{} disagreements:\n{}", disagreements.len(), disagreements.join("\n"));
}
