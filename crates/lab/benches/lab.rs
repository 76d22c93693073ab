//! Lab timings (root only): `lab up`/`lab down` at 3x10 and 10x50 pods, and one policy change
//! re-rendered and applied with 500 pods and 200 policies (goal: under 100 ms).
//! Run through `bench/lab.sh`, which builds the agent the pods run.

use std::time::{Duration, Instant};

use netmatrix_lab::Lab;
use netmatrix_model::{ContainerPort, PodSpec};
use netmatrix_model::{Labels, Protocol};
use serde_json::Value;

fn pods(nodes: usize, per_node: usize) -> Vec<PodSpec> {
    (0..nodes * per_node)
        .map(|i| PodSpec {
            namespace: "default".into(),
            name: format!("p{i}"),
            labels: Labels::from([("app".to_owned(), format!("a{}", i % 7))]),
            node: format!("node{}", i % nodes),
            ports: vec![ContainerPort { name: Some("http".into()), port: 80, protocol: Protocol::Tcp }],
            host_network: false,
        })
        .collect()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn up_down(nodes: usize, per_node: usize) {
    let name = "bench";
    let start = Instant::now();
    let mut lab = Lab::up(name, nodes, netmatrix_model::IpFamilies::Ipv4).expect("lab up");
    lab.add_pods(pods(nodes, per_node)).expect("pods");
    let up = start.elapsed();
    let start = Instant::now();
    Lab::down(name).expect("lab down");
    println!("lab up {nodes} nodes x {per_node} pods: {}   lab down: {}", ms(up), ms(start.elapsed()));
}

/// 500 pods and 200 policies from the synthetic generator (its namespaces, labels and named
/// ports), spread over 10 nodes; then one policy changes.
fn policy_change() {
    let name = "bench";
    let docs = netmatrix_synth::documents(&netmatrix_synth::Params { pods: 500, policies: 200, ..netmatrix_synth::Params::scale(7, 500, 200) });
    let mut lab = Lab::up(name, 10, netmatrix_model::IpFamilies::Ipv4).expect("lab up");
    let mut specs = Vec::new();
    let mut policies = Vec::new();
    for doc in docs {
        match doc["kind"].as_str() {
            Some("Pod") => {
                let ports = doc["spec"]["containers"][0]["ports"].as_array().cloned().unwrap_or_default();
                specs.push(PodSpec {
                    namespace: doc["metadata"]["namespace"].as_str().unwrap().into(),
                    name: doc["metadata"]["name"].as_str().unwrap().into(),
                    labels: serde_json::from_value(doc["metadata"]["labels"].clone()).unwrap(),
                    node: format!("node{}", specs.len() % 10),
                    ports: ports
                        .iter()
                        .map(|p| serde_json::from_value::<Value>(p.clone()).unwrap())
                        .map(|p| ContainerPort {
                            name: p["name"].as_str().map(str::to_owned),
                            port: p["containerPort"].as_u64().unwrap() as u16,
                            protocol: serde_json::from_value(p["protocol"].clone()).unwrap(),
                        })
                        .collect(),
                    host_network: false,
                });
            }
            Some("NetworkPolicy") => policies.push(doc),
            _ => {}
        }
    }
    lab.add_pods(specs).expect("pods");
    let start = Instant::now();
    lab.apply_policies(policies.clone()).expect("policies");
    let all = start.elapsed();
    let mut changes = Vec::new();
    for (round, policy) in policies.iter().take(5).enumerate() {
        let mut changed = policy.clone();
        changed["spec"]["ingress"] = serde_json::json!([{"ports": [{"port": 1000 + round}]}]);
        let start = Instant::now();
        lab.apply_policy(changed).expect("policy change");
        changes.push(start.elapsed());
    }
    changes.sort();
    let model = lab.model().expect("model");
    let start = Instant::now();
    let mut scripts = netmatrix_lab::nft::Scripts::new("nm-bench", &model);
    for node in 0..10 {
        let _ = scripts.node(&lab.node_name(node), node, &lab.node_addresses(node), &[]);
    }
    let render = start.elapsed();
    Lab::down(name).expect("lab down");
    println!(
        "500 pods, 200 policies, 10 nodes: applying all policies {}; one policy change re-rendered and applied on every node: median {} (min {}, max {}; goal < 100 ms); rendering alone, all nodes: {}",
        ms(all),
        ms(changes[2]),
        ms(changes[0]),
        ms(changes[4]),
        ms(render)
    );
}

/// Removes the bench lab however the benchmark ends.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Lab::down("bench");
    }
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("lab benchmark skipped: it needs root to create network namespaces");
        return;
    }
    let _cleanup = Cleanup;
    let _ = Lab::down("bench");
    up_down(3, 10);
    up_down(10, 50);
    policy_change();
}
