//! AdminNetworkPolicy, BaselineAdminNetworkPolicy and ClusterNetworkPolicy in the lab, probed
//! with real packets: each scenario, written from the API documentation of
//! kubernetes-sigs/network-policy-api, must give the cells the oracle predicts, some allowed and
//! some denied. Needs root (CI runs as root); otherwise it says why and checks nothing.

use std::collections::BTreeMap;

use netmatrix_lab::{Lab, topology};
use netmatrix_model::Protocol;
use netmatrix_model::{ContainerPort, PodSpec};
use netmatrix_oracle::{Options, Reachability};
use serde_json::{Value, json};

#[path = "support/lab.rs"]
mod support_lab;
use support_lab::{Guard, ensure_agent, labels, probe_rows, root};

/// What every pod serves, each port named `serve-<port>-<protocol>`.
const SERVED: [(u16, Protocol); 3] = [(80, Protocol::Tcp), (81, Protocol::Tcp), (80, Protocol::Udp)];

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

/// Namespaces x and y; pods a, b, c in each, spread over three nodes.
fn populate(lab: &mut Lab) {
    lab.set_namespace("x", labels(&[("ns", "x")])).unwrap();
    lab.set_namespace("y", labels(&[("ns", "y")])).unwrap();
    let ports: Vec<ContainerPort> =
        SERVED.iter().map(|&(port, protocol)| ContainerPort { name: Some(format!("serve-{port}-{}", protocol_name(protocol))), port, protocol }).collect();
    let mut specs = Vec::new();
    for ns in ["x", "y"] {
        for pod in ["a", "b", "c"] {
            specs.push(PodSpec {
                namespace: ns.into(),
                name: pod.into(),
                labels: labels(&[("pod", pod)]),
                node: format!("node{}", specs.len() % lab.nodes()),
                ports: ports.clone(),
                host_network: false,
            });
        }
    }
    lab.add_pods(specs).unwrap();
}

/// A cell: (source, destination, port, protocol).
type Cell = (String, String, u16, &'static str);

/// Probes every served port of every pod from every other, one agent run per row, all rows at
/// once. Two tries of 1 s each, so that a loaded machine does not turn a slow answer into a
/// blocked cell.
fn observe(lab: &Lab) -> BTreeMap<Cell, bool> {
    let rows = probe_rows(lab, |src| {
        lab.pods()
            .iter()
            .filter(|d| d.id != src.id)
            .flat_map(|d| SERVED.iter().map(move |&(port, protocol)| json!({"id": format!("{}/{} {port} {}", d.namespace, d.name, protocol_name(protocol)), "target": d.ip.to_string(), "port": port, "protocol": protocol_name(protocol), "timeout": "1s", "tries": 2})))
            .collect()
    });
    let mut cells = BTreeMap::new();
    for (src, out) in rows {
        for line in out.lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            let outcome = r["outcome"].as_str().unwrap();
            assert_ne!(outcome, "error", "the agent could not probe: {line}");
            let id: Vec<&str> = r["id"].as_str().unwrap().split(' ').collect();
            let protocol = if id[2] == "tcp" { "tcp" } else { "udp" };
            cells.insert((src.clone(), id[0].to_owned(), id[1].parse().unwrap(), protocol), outcome == "connected");
        }
    }
    cells
}

/// What the oracle predicts for the lab's current model.
fn predict(lab: &Lab) -> BTreeMap<Cell, bool> {
    let model = lab.model().unwrap();
    let mut reach = Reachability::compute(&model, Options { ipblocks_match_pods: true });
    let mut cells = BTreeMap::new();
    for (s, src) in model.pods.iter().enumerate() {
        for (d, dst) in model.pods.iter().enumerate() {
            if s == d {
                continue;
            }
            let id = reach.pair(reach.pod_class[s], reach.pod_class[d]);
            for &(port, protocol) in &SERVED {
                cells.insert(
                    (format!("{}/{}", src.namespace, src.name), format!("{}/{}", dst.namespace, dst.name), port, protocol_name(protocol)),
                    reach.conn(id).allows(protocol, port),
                );
            }
        }
    }
    cells
}

/// Applies `policies` in one update, checks every cell against the oracle and that some are
/// allowed and some denied, then deletes them again.
fn scenario(lab: &mut Lab, what: &str, policies: Vec<Value>) -> BTreeMap<Cell, bool> {
    lab.apply_policies(policies.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let observed = observe(lab);
    let expected = predict(lab);
    let wrong: Vec<String> =
        expected.iter().filter(|(k, v)| observed.get(*k) != Some(v)).map(|(k, v)| format!("{} => {} {}/{}: expected {v}", k.0, k.1, k.2, k.3)).collect();
    assert!(wrong.is_empty(), "{what}: the lab disagrees with the oracle:\n{}", wrong.join("\n"));
    assert!(observed.values().any(|&c| c) && observed.values().any(|&c| !c), "{what}: the scenario should allow some cells and deny others");
    for p in &policies {
        let name = p["metadata"]["name"].as_str().unwrap();
        match p["kind"].as_str().unwrap() {
            "NetworkPolicy" => lab.delete_policy(p["metadata"]["namespace"].as_str().unwrap(), name).unwrap(),
            kind => lab.delete_admin_policy(kind, name).unwrap(),
        }
    }
    observed
}

fn cell(cells: &BTreeMap<Cell, bool>, src: &str, dst: &str, port: u16, protocol: &'static str) -> bool {
    cells[&(src.to_owned(), dst.to_owned(), port, protocol)]
}

fn np(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

fn anp(name: &str, priority: u32, spec: Value) -> Value {
    let mut spec = spec;
    spec["priority"] = json!(priority);
    json!({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": name}, "spec": spec})
}

fn banp(spec: Value) -> Value {
    json!({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy", "metadata": {"name": "default"}, "spec": spec})
}

fn cnp(name: &str, tier: &str, priority: u32, spec: Value) -> Value {
    let mut spec = spec;
    spec["tier"] = json!(tier);
    spec["priority"] = json!(priority);
    json!({"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy", "metadata": {"name": name}, "spec": spec})
}

fn ns(name: &str) -> Value {
    json!({"namespaces": {"matchLabels": {"ns": name}}})
}

fn pods(ns: &str, pod: &str) -> Value {
    json!({"pods": {"namespaceSelector": {"matchLabels": {"ns": ns}}, "podSelector": {"matchLabels": {"pod": pod}}}})
}

#[test]
fn admin_policies_enforce_what_the_oracle_predicts() {
    if !root() {
        return;
    }
    ensure_agent();
    let _guard = Guard("tanp");
    let mut lab = Lab::up("tanp", 3, netmatrix_model::IpFamilies::Ipv4).unwrap();
    populate(&mut lab);
    let allow_all_ingress_x = || np("x", "allow-all", json!({"podSelector": {}, "ingress": [{}]}));
    let deny_all_ingress_x = || np("x", "deny-all", json!({"podSelector": {}, "policyTypes": ["Ingress"]}));

    // Deny: "Drops the selected traffic. No further ... NetworkPolicy rules will be processed."
    let c = scenario(
        &mut lab,
        "ANP deny beats a NetworkPolicy allow",
        vec![allow_all_ingress_x(), anp("deny-y", 10, json!({"subject": ns("x"), "ingress": [{"action": "Deny", "from": [ns("y")]}]}))],
    );
    assert!(!cell(&c, "y/a", "x/b", 80, "tcp") && cell(&c, "x/a", "x/b", 80, "tcp"));

    // Allow: "No further ... NetworkPolicy rules will be processed."
    let c = scenario(
        &mut lab,
        "ANP allow beats a NetworkPolicy deny",
        vec![deny_all_ingress_x(), anp("allow-y", 10, json!({"subject": ns("x"), "ingress": [{"action": "Allow", "from": [ns("y")]}]}))],
    );
    assert!(cell(&c, "y/a", "x/b", 80, "tcp") && !cell(&c, "x/a", "x/b", 80, "tcp"));

    // Pass: "Skips all further ANP rules ... and passes evaluation to the next tier": NetworkPolicy.
    let only_a_80 = np(
        "x",
        "only-a-80",
        json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "a"}}}], "ports": [{"port": 80}]}]}),
    );
    let c = scenario(
        &mut lab,
        "ANP pass leaves it to NetworkPolicy",
        vec![
            only_a_80,
            anp("pass-y", 10, json!({"subject": ns("x"), "ingress": [{"action": "Pass", "from": [ns("y")]}, {"action": "Deny", "from": [ns("y")]}]})),
        ],
    );
    assert!(cell(&c, "y/a", "x/b", 80, "tcp") && !cell(&c, "y/b", "x/a", 80, "tcp") && !cell(&c, "y/a", "x/b", 81, "tcp"));

    // Without a NetworkPolicy isolating the pod, what passes goes to the baseline.
    let c = scenario(
        &mut lab,
        "ANP pass without NetworkPolicy goes to the BANP deny",
        vec![
            anp(
                "pass-y",
                10,
                json!({"subject": ns("x"), "ingress": [{"action": "Pass", "from": [ns("y")], "ports": [{"portNumber": {"protocol": "TCP", "port": 80}}]}]}),
            ),
            banp(json!({"subject": ns("x"), "ingress": [{"action": "Deny", "from": [ns("y")]}, {"action": "Allow", "from": [{"namespaces": {}}]}]})),
        ],
    );
    assert!(!cell(&c, "y/a", "x/b", 80, "tcp") && !cell(&c, "y/a", "x/b", 81, "tcp") && cell(&c, "x/a", "x/b", 80, "tcp"));

    // "the lower the number, the higher the precedence".
    let c = scenario(
        &mut lab,
        "priorities: the lower number wins",
        vec![
            anp("deny-y", 20, json!({"subject": ns("x"), "ingress": [{"action": "Deny", "from": [ns("y")]}]})),
            anp(
                "allow-y-80",
                5,
                json!({"subject": ns("x"), "ingress": [{"action": "Allow", "from": [ns("y")], "ports": [{"portNumber": {"protocol": "TCP", "port": 80}}]}]}),
            ),
        ],
    );
    assert!(cell(&c, "y/a", "x/b", 80, "tcp") && !cell(&c, "y/a", "x/b", 81, "tcp"));

    // "Rules are evaluated in order ... the first matching rule applies".
    let c = scenario(
        &mut lab,
        "the first matching rule of a policy wins",
        vec![anp(
            "ordered",
            10,
            json!({"subject": ns("x"), "ingress": [
                {"action": "Allow", "from": [pods("y", "a")], "ports": [{"portNumber": {"protocol": "TCP", "port": 81}}]},
                {"action": "Deny", "from": [ns("y")]},
                {"action": "Allow", "from": [ns("y")]},
            ]}),
        )],
    );
    assert!(cell(&c, "y/a", "x/b", 81, "tcp") && !cell(&c, "y/a", "x/b", 80, "tcp") && !cell(&c, "y/b", "x/b", 81, "tcp"));

    // portNumber, portRange and namedPort (resolved on the destination pod), egress and ingress.
    let c = scenario(
        &mut lab,
        "ports, port ranges and named ports",
        vec![
            anp(
                "egress-ports",
                10,
                json!({"subject": pods("x", "a"), "egress": [{"action": "Deny", "to": [{"namespaces": {}}], "ports": [{"namedPort": "serve-81-tcp"}, {"portNumber": {"protocol": "UDP", "port": 80}}]}]}),
            ),
            anp(
                "ingress-range",
                11,
                json!({"subject": pods("y", "b"), "ingress": [{"action": "Deny", "from": [ns("x")], "ports": [{"portRange": {"protocol": "TCP", "start": 80, "end": 81}}]}]}),
            ),
        ],
    );
    assert!(!cell(&c, "x/a", "y/c", 81, "tcp") && !cell(&c, "x/a", "y/c", 80, "udp") && cell(&c, "x/a", "y/c", 80, "tcp"));
    assert!(!cell(&c, "x/b", "y/b", 80, "tcp") && !cell(&c, "x/b", "y/b", 81, "tcp") && cell(&c, "x/b", "y/b", 80, "udp"));

    // networks: "cluster-internal traffic will be checked against the rule as well".
    // y/b is on node 1 (pods go round the nodes); y/a on node 0.
    let node1 = topology::pod_cidr(1).to_string();
    let yb = format!("{}/32", lab.pods().iter().find(|p| p.namespace == "y" && p.name == "b").unwrap().ip);
    let c = scenario(
        &mut lab,
        "egress to networks",
        vec![anp(
            "no-node1-pods",
            10,
            json!({"subject": ns("x"), "egress": [
                {"action": "Allow", "to": [{"networks": [yb]}], "ports": [{"portNumber": {"protocol": "TCP", "port": 80}}]},
                {"action": "Deny", "to": [{"networks": [node1]}]},
            ]}),
        )],
    );
    assert!(cell(&c, "x/a", "y/b", 80, "tcp") && !cell(&c, "x/a", "y/b", 81, "tcp") && cell(&c, "x/a", "y/a", 81, "tcp") && cell(&c, "y/a", "y/b", 81, "tcp"));

    // v1alpha2: "Policy tiers are evaluated in the following order: Admin tier, NetworkPolicy
    // tier, Baseline tier"; actions Accept, Deny and Pass; ports as protocols.
    let c = scenario(
        &mut lab,
        "ClusterNetworkPolicy Admin and Baseline tiers",
        vec![
            cnp(
                "accept-a",
                "Admin",
                1,
                json!({"subject": {"namespaces": {}}, "ingress": [{"action": "Accept", "from": [{"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "a"}}}}], "protocols": [{"tcp": {"destinationPort": {"number": 80}}}]}]}),
            ),
            cnp(
                "pass-udp",
                "Admin",
                2,
                json!({"subject": {"namespaces": {}}, "ingress": [{"action": "Pass", "from": [{"namespaces": {}}], "protocols": [{"udp": {"destinationPort": {"range": {"start": 80, "end": 81}}}}]}]}),
            ),
            cnp("deny-rest", "Baseline", 0, json!({"subject": ns("x"), "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]})),
        ],
    );
    assert!(cell(&c, "y/a", "x/b", 80, "tcp") && !cell(&c, "y/b", "x/c", 80, "tcp") && !cell(&c, "y/b", "x/c", 80, "udp") && cell(&c, "x/b", "y/c", 81, "tcp"));

    // Deleting an admin policy restores what it changed (`scenario` deleted them all).
    let c = observe(&lab);
    assert!(c.values().all(|&v| v), "with every policy deleted, everything connects");
    assert!(lab.status().contains("0 policies"));

    // Two kinds in the state at once, each deleted by (kind, name).
    lab.apply_policies(vec![
        anp("deny-y", 10, json!({"subject": ns("x"), "ingress": [{"action": "Deny", "from": [ns("y")]}]})),
        cnp("deny-y", "Baseline", 0, json!({"subject": ns("y"), "ingress": [{"action": "Deny", "from": [ns("x")]}]})),
    ])
    .unwrap();
    assert!(lab.status().contains("policy AdminNetworkPolicy deny-y") && lab.status().contains("policy ClusterNetworkPolicy deny-y"));
    assert_eq!(Lab::open("tanp").unwrap().model().unwrap().admin_policies.len(), 2, "kept in the lab's state");
    lab.delete_admin_policy("AdminNetworkPolicy", "deny-y").unwrap();
    assert_eq!(lab.model().unwrap().admin_policies.iter().map(|p| p.kind.as_str()).collect::<Vec<_>>(), ["ClusterNetworkPolicy"]);
    let c = observe(&lab);
    assert!(cell(&c, "y/a", "x/b", 80, "tcp") && !cell(&c, "x/a", "y/b", 80, "tcp"));
    lab.delete_admin_policy("ClusterNetworkPolicy", "deny-y").unwrap();
    assert!(
        lab.apply_policy(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "x"}, "spec": {"ports": [{"port": 80}]}}))
            .is_err(),
        "a Service is no policy"
    );
}
