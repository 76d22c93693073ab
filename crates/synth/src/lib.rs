//! Seeded synthetic clusters, written as Kubernetes manifests (JSON documents in a YAML stream,
//! which every YAML reader accepts). The same seed always gives the same manifests.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Params {
    pub seed: u64,
    pub namespaces: usize,
    pub pods: usize,
    pub policies: usize,
    /// Distinct label sets per namespace that pods are drawn from.
    pub label_sets_per_namespace: usize,
    /// Pods of one label set share a ReplicaSet owner (as in real clusters) instead of being bare.
    pub owners: bool,
    /// Policies may use ipBlock peers (never containing pod IPs: pods get none).
    pub ip_blocks: bool,
}

impl Params {
    /// A small cluster for differential and property tests.
    pub fn small(seed: u64) -> Self {
        Self { seed, namespaces: 3, pods: 8, policies: 6, label_sets_per_namespace: 4, owners: false, ip_blocks: true }
    }

    /// The benchmark shape: `pods` over 100 namespaces (fewer when small), ~30 label sets each.
    pub fn scale(seed: u64, pods: usize, policies: usize) -> Self {
        let namespaces = (pods / 100).clamp(2, 100);
        Self { seed, namespaces, pods, policies, label_sets_per_namespace: 30, owners: true, ip_blocks: true }
    }
}

const KEYS: [&str; 4] = ["app", "tier", "env", "team"];
const VALUES: [&str; 4] = ["a", "b", "c", "d"];
const NAMESPACE_KEYS: [&str; 2] = ["env", "team"];
/// (name, protocol, candidate numbers): the same name maps to different numbers on different pods.
const NAMED_PORTS: [(&str, &str, [u16; 2]); 4] =
    [("http", "TCP", [80, 8080]), ("metrics", "TCP", [9090, 9091]), ("dns", "UDP", [53, 5353]), ("sig", "SCTP", [9000, 9001])];
const PLAIN_PORTS: [u16; 6] = [53, 80, 5353, 8080, 9090, 9001];
const CIDRS: [&str; 5] = ["0.0.0.0/0", "10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12", "fd00::/8"];

/// The manifests of the cluster, as one multi-document YAML stream.
pub fn generate(p: &Params) -> String {
    let mut out = String::new();
    for document in documents(p) {
        out.push_str("---\n");
        out.push_str(&document.to_string());
        out.push('\n');
    }
    out
}

/// The manifests as one JSON `List`, the shape of `kubectl get -o json` (fast to read at scale).
pub fn generate_json_list(p: &Params) -> String {
    json!({"apiVersion": "v1", "kind": "List", "items": documents(p)}).to_string()
}

pub fn documents(p: &Params) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(p.seed);
    let mut docs = Vec::new();
    let namespaces: Vec<String> = (0..p.namespaces).map(|i| format!("ns{i}")).collect();
    for ns in &namespaces {
        let mut labels = serde_json::Map::new();
        for key in NAMESPACE_KEYS {
            if rng.random_bool(0.7) {
                labels.insert(key.into(), json!(VALUES.choose(&mut rng).unwrap()));
            }
        }
        docs.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}));
    }
    let label_sets: Vec<Vec<Value>> = namespaces.iter().map(|_| (0..p.label_sets_per_namespace).map(|_| random_labels(&mut rng)).collect()).collect();
    let port_sets: Vec<Value> = (0..p.label_sets_per_namespace).map(|_| random_container_ports(&mut rng)).collect();
    for i in 0..p.pods {
        let n = rng.random_range(0..namespaces.len());
        let set = rng.random_range(0..p.label_sets_per_namespace);
        let mut metadata = json!({"name": format!("pod{i}"), "namespace": namespaces[n], "labels": label_sets[n][set]});
        if p.owners {
            metadata["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("rs{set}"), "controller": true}]);
        }
        docs.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {"containers": [{"name": "c", "ports": port_sets[set]}]}}));
    }
    for i in 0..p.policies {
        let ns = namespaces.choose(&mut rng).unwrap();
        docs.push(random_policy(&mut rng, p, ns, i));
    }
    docs
}

fn random_labels(rng: &mut StdRng) -> Value {
    let mut labels = serde_json::Map::new();
    for key in KEYS {
        if rng.random_bool(0.6) {
            labels.insert(key.into(), json!(VALUES.choose(rng).unwrap()));
        }
    }
    Value::Object(labels)
}

fn random_container_ports(rng: &mut StdRng) -> Value {
    let mut ports = Vec::new();
    for (name, protocol, numbers) in NAMED_PORTS {
        if rng.random_bool(0.5) {
            ports.push(json!({"name": name, "containerPort": numbers.choose(rng).unwrap(), "protocol": protocol}));
        }
    }
    Value::Array(ports)
}

fn random_selector(rng: &mut StdRng, keys: &[&str]) -> Value {
    match rng.random_range(0..4) {
        0 => json!({}),
        1 => json!({"matchLabels": {*keys.choose(rng).unwrap(): VALUES.choose(rng).unwrap()}}),
        _ => {
            let key = keys.choose(rng).unwrap();
            let (operator, values): (&str, Vec<&str>) = match rng.random_range(0..4) {
                0 => ("In", VALUES.choose_multiple(rng, 2).copied().collect()),
                1 => ("NotIn", VALUES.choose_multiple(rng, 2).copied().collect()),
                2 => ("Exists", vec![]),
                _ => ("DoesNotExist", vec![]),
            };
            let mut requirement = json!({"key": key, "operator": operator});
            if !values.is_empty() {
                requirement["values"] = json!(values);
            }
            json!({"matchExpressions": [requirement]})
        }
    }
}

fn random_peer(rng: &mut StdRng, p: &Params) -> Value {
    match rng.random_range(0..if p.ip_blocks { 4 } else { 3 }) {
        0 => json!({"podSelector": random_selector(rng, &KEYS)}),
        1 => json!({"namespaceSelector": random_selector(rng, &NAMESPACE_KEYS)}),
        2 => json!({"namespaceSelector": random_selector(rng, &NAMESPACE_KEYS), "podSelector": random_selector(rng, &KEYS)}),
        _ => {
            let cidr = *CIDRS.choose(rng).unwrap();
            match cidr {
                "10.0.0.0/8" => json!({"ipBlock": {"cidr": cidr, "except": ["10.1.0.0/16"]}}),
                _ => json!({"ipBlock": {"cidr": cidr}}),
            }
        }
    }
}

fn random_ports(rng: &mut StdRng) -> Value {
    let count = rng.random_range(0..3);
    let ports: Vec<Value> = (0..count)
        .map(|_| {
            let protocol = *["TCP", "UDP", "SCTP"].choose(rng).unwrap();
            match rng.random_range(0..5) {
                0 => json!({"protocol": protocol}),
                1 => json!({"port": NAMED_PORTS.choose(rng).unwrap().0, "protocol": protocol}),
                2 => {
                    let first = *[53u16, 80, 8080, 9000].choose(rng).unwrap();
                    json!({"port": first, "endPort": first + rng.random_range(0..=10), "protocol": protocol})
                }
                3 => json!({"port": PLAIN_PORTS.choose(rng).unwrap()}),
                _ => json!({"port": PLAIN_PORTS.choose(rng).unwrap(), "protocol": protocol}),
            }
        })
        .collect();
    Value::Array(ports)
}

fn random_rules(rng: &mut StdRng, p: &Params, peers_field: &str) -> Value {
    let count = rng.random_range(0..3);
    let rules: Vec<Value> = (0..count)
        .map(|_| {
            let mut rule = serde_json::Map::new();
            if rng.random_bool(0.8) {
                let peers: Vec<Value> = (0..rng.random_range(1..3)).map(|_| random_peer(rng, p)).collect();
                rule.insert(peers_field.into(), json!(peers));
            }
            if rng.random_bool(0.7) {
                rule.insert("ports".into(), random_ports(rng));
            }
            Value::Object(rule)
        })
        .collect();
    Value::Array(rules)
}

fn random_policy(rng: &mut StdRng, p: &Params, namespace: &str, index: usize) -> Value {
    let mut spec = json!({"podSelector": random_selector(rng, &KEYS)});
    let types: Option<&[&str]> = match rng.random_range(0..5) {
        0 => None,
        1 => Some(&["Ingress"]),
        2 => Some(&["Egress"]),
        3 => Some(&["Ingress", "Egress"]),
        _ => Some(&["Egress", "Ingress"]),
    };
    if let Some(types) = types {
        spec["policyTypes"] = json!(types);
    }
    // Rules only for the directions the policy affects, or absent: ignored rule lists are a
    // separate, documented divergence of some peers.
    let affects = |d: &str| types.is_none_or(|t| t.contains(&d));
    if affects("Ingress") && rng.random_bool(0.8) {
        spec["ingress"] = random_rules(rng, p, "from");
    }
    if (types.is_none() || affects("Egress")) && rng.random_bool(0.6) {
        spec["egress"] = random_rules(rng, p, "to");
    }
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": format!("policy{index}"), "namespace": namespace}, "spec": spec})
}
