//! The lab's Service dataplane against the oracle, cell by cell: every frontend (cluster IP,
//! node port on each node, load-balancer IP) of Services of every kind, probed from every pod,
//! must behave as `netmatrix_oracle::services::evaluate` predicts: who answers (`answered_by`
//! in the predicted backends), with which source address (`client_ip`: the client, or the
//! masquerading node), or that nothing answers. The lab must meet the `lab` profile and, with
//! `#` where the documentation is silent, the `spec` profile: it is one implementation of
//! Kubernetes. Needs root (CI runs as root); otherwise it says why it checked nothing.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use netmatrix_lab::{Lab, topology};
use netmatrix_model::{Cluster, Node, Origin, Protocol};
use netmatrix_model::{ContainerPort, PodSpec};
use netmatrix_oracle::{FrontendKind, Options, Profile, Reachability, Verdict, evaluate, frontends};
use serde_json::{Value, json};

/// Copies of each probe: enough for several backends to show up, and for a wrong one to.
const COPIES: usize = 6;

#[path = "support/lab.rs"]
mod support_lab;
use support_lab::{Guard, ensure_agent, labels, probe_rows, root};

fn http(port: u16) -> Vec<ContainerPort> {
    vec![ContainerPort { name: Some("http".into()), port, protocol: Protocol::Tcp }]
}

fn service(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "x"}, "spec": spec})
}

/// The lab's model with its nodes, which `Lab::model` leaves out.
fn model(lab: &Lab) -> Cluster {
    let mut cluster = lab.model().unwrap();
    cluster.nodes = (0..lab.nodes())
        .map(|i| Node { name: format!("node{i}"), addresses: vec![IpAddr::V4(topology::node_ip(i))], labels: Default::default(), origin: Origin::default() })
        .collect();
    cluster
}

/// The lab bridge's address on node `i`: what a connection masqueraded towards a pod of that
/// node carries.
fn pod_gateway(node: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(u32::from(topology::pod_cidr(node).network()) + 1))
}

/// One observed answer: outcome, answered_by, client_ip.
type Answer = (String, Option<String>, Option<String>);

#[derive(Default, Debug)]
struct Tally {
    allow: usize,
    deny: usize,
    undefined: usize,
    /// Answers of Allow cells that came from the source itself.
    hairpin: usize,
}

/// Probes every frontend from every pod and compares with the oracle under both profiles the
/// lab must meet; returns what was checked under the lab's.
fn assert_agrees(lab: &Lab, what: &str) -> Tally {
    let rows = probe_all(lab, what);
    let spec = compare(lab, &rows, Profile::Spec, what);
    let tally = compare(lab, &rows, Profile::Lab, what);
    assert!(spec.undefined >= tally.undefined, "{what}: spec ({spec:?}) leaves open at least what the lab's profile does ({tally:?})");
    tally
}

/// Each source pod's answers, one per probe: every frontend `COPIES` times.
fn probe_all(lab: &Lab, what: &str) -> Vec<(usize, Vec<Answer>)> {
    let cluster = model(lab);
    let fronts = ipv4_frontends(&cluster);
    assert!(!fronts.is_empty(), "{what}: no frontends");
    let batch: Vec<Value> = fronts
        .iter()
        .flat_map(|f| {
            std::iter::repeat_n(json!({"target": f.address.unwrap().to_string(), "port": f.dst_port, "protocol": "tcp", "timeout": "1s", "tries": 2}), COPIES)
        })
        .collect();
    probe_rows(lab, |_| batch.clone())
        .into_iter()
        .map(|(src, out)| {
            let index = cluster.pods.iter().position(|q| format!("{}/{}", q.namespace, q.name) == src).unwrap();
            let answers = out
                .lines()
                .map(|l| {
                    let r: Value = serde_json::from_str(l).unwrap();
                    let text = |k: &str| r[k].as_str().map(str::to_owned);
                    (text("outcome").unwrap(), text("answered_by"), text("client_ip"))
                })
                .collect();
            (index, answers)
        })
        .collect()
}

/// The frontends probed: the lab renders IPv4 only.
fn ipv4_frontends(cluster: &Cluster) -> Vec<netmatrix_oracle::Frontend> {
    frontends(cluster).into_iter().filter(|f| f.address.is_some_and(|a| a.is_ipv4())).collect()
}

/// Compares probed `rows` with the oracle under `profile`.
fn compare(lab: &Lab, rows: &[(usize, Vec<Answer>)], profile: Profile, what: &str) -> Tally {
    let what = format!("{what}, profile {profile}");
    let cluster = model(lab);
    let mut reach = Reachability::compute(&cluster, Options { ipblocks_match_pods: true });
    let fronts = ipv4_frontends(&cluster);
    let mut tally = Tally::default();
    let mut wrong = Vec::new();
    for &(src, ref answers) in rows {
        let src_pod = &cluster.pods[src];
        let src_ip = src_pod.ips[0].to_string();
        let src_node: usize = src_pod.node.as_deref().unwrap().trim_start_matches("node").parse().unwrap();
        assert_eq!(answers.len(), fronts.len() * COPIES, "{what}: one answer per probe");
        for (f, cell) in fronts.iter().zip(answers.chunks(COPIES)) {
            let v = evaluate(&cluster, &mut reach, src, f, profile);
            let label = format!("{}/{} => {}", src_pod.namespace, src_pod.name, f.label(&cluster));
            for (outcome, _, _) in cell {
                assert_ne!(outcome, "error", "{what}: {label}: the agent could not probe");
            }
            let backends: BTreeMap<String, usize> =
                v.backends.iter().map(|&b| (format!("{}/{}", cluster.pods[b].namespace, cluster.pods[b].name), b)).collect();
            // The node that translated: masquerading gives its address, or its bridge's to its own pods.
            let dnat_node = match f.kind {
                FrontendKind::NodePort { node } => node,
                _ => src_node,
            };
            let mut problems = Vec::new();
            for (outcome, by, client) in cell {
                let connected = outcome == "connected";
                match (v.verdict, connected) {
                    (Verdict::Deny, true) => problems.push(format!("connected to {by:?}, expected no answer")),
                    (Verdict::Allow, false) => problems.push(format!("{outcome}, expected an answer from {:?}", backends.keys().collect::<Vec<_>>())),
                    _ => {}
                }
                // A cell left open without a say on who answers (`#`) accepts any answer.
                if !connected || v.verdict == Verdict::Deny || (v.verdict == Verdict::Undefined && backends.is_empty()) {
                    continue;
                }
                let Some(&b) = by.as_ref().and_then(|by| backends.get(by)) else {
                    problems.push(format!("answered by {by:?}, not one of {:?}", backends.keys().collect::<Vec<_>>()));
                    continue;
                };
                let backend_on_dnat_node = cluster.pods[b].node.as_deref() == Some(format!("node{dnat_node}").as_str());
                let expected_client = match v.snat {
                    Some(_) if backend_on_dnat_node => pod_gateway(dnat_node).to_string(),
                    Some(node_ip) => node_ip.to_string(),
                    // Hairpin: the lab masquerades a pod reaching itself (to its bridge address).
                    None if b == src => pod_gateway(src_node).to_string(),
                    None => src_ip.clone(),
                };
                if client.as_deref() != Some(expected_client.as_str()) {
                    problems.push(format!("{by:?} saw client {client:?}, expected {expected_client} (snat {:?})", v.snat));
                }
                if b == src && v.verdict == Verdict::Allow {
                    tally.hairpin += 1;
                }
            }
            match v.verdict {
                Verdict::Allow => tally.allow += 1,
                Verdict::Deny => tally.deny += 1,
                Verdict::Undefined => tally.undefined += 1,
            }
            if !problems.is_empty() {
                wrong.push(format!(
                    "{label}: oracle {:?} {:?}: {}\n    reasons: {}",
                    v.verdict,
                    backends.keys().collect::<Vec<_>>(),
                    problems.join("; "),
                    v.reasons.join(" | ")
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{what}: the lab disagrees with the oracle in {} cells:\n{}", wrong.len(), wrong.join("\n"));
    eprintln!("{what}: {tally:?}");
    tally
}

#[test]
fn every_service_frontend_behaves_as_the_oracle_predicts() {
    if !root() {
        return;
    }
    ensure_agent();
    let _guard = Guard("tsvo");
    let mut lab = Lab::up("tsvo", 2, netmatrix_model::IpFamilies::Ipv4).unwrap();
    let client = labels(&[("role", "client")]);
    lab.add_pods(vec![
        // The named targetPort "http" is 8080 on web-0 and 8081 on web-1.
        PodSpec {
            namespace: "x".into(),
            name: "web-0".into(),
            labels: labels(&[("app", "web")]),
            node: "node0".into(),
            ports: http(8080),
            host_network: false,
        },
        PodSpec {
            namespace: "x".into(),
            name: "web-1".into(),
            labels: labels(&[("app", "web")]),
            node: "node1".into(),
            ports: http(8081),
            host_network: false,
        },
        // The only endpoint of the traffic-policy-Local Services, on node1.
        PodSpec { namespace: "x".into(), name: "solo".into(), labels: labels(&[("app", "solo")]), node: "node1".into(), ports: http(80), host_network: false },
        PodSpec {
            namespace: "x".into(),
            name: "doomed".into(),
            labels: labels(&[("app", "doomed")]),
            node: "node0".into(),
            ports: http(80),
            host_network: false,
        },
        PodSpec { namespace: "x".into(), name: "c0".into(), labels: client.clone(), node: "node0".into(), ports: vec![], host_network: false },
        PodSpec { namespace: "x".into(), name: "c1".into(), labels: client, node: "node1".into(), ports: vec![], host_network: false },
    ])
    .unwrap();
    let web = || json!({"app": "web"});
    let solo = || json!({"app": "solo"});
    for (name, spec) in [
        ("web", json!({"selector": web(), "ports": [{"port": 80, "targetPort": "http"}]})),
        ("web-np", json!({"type": "NodePort", "selector": web(), "ports": [{"port": 80, "targetPort": "http"}]})),
        ("web-lb", json!({"type": "LoadBalancer", "selector": web(), "ports": [{"port": 80, "targetPort": "http"}]})),
        ("solo-etp", json!({"type": "NodePort", "externalTrafficPolicy": "Local", "selector": solo(), "ports": [{"port": 80, "targetPort": "http"}]})),
        ("solo-lb", json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "selector": solo(), "ports": [{"port": 80, "targetPort": "http"}]})),
        ("solo-itp", json!({"internalTrafficPolicy": "Local", "selector": solo(), "ports": [{"port": 80, "targetPort": "http"}]})),
        ("web-ext", json!({"selector": web(), "externalIPs": ["198.51.100.7"], "ports": [{"port": 80, "targetPort": "http"}]})),
        (
            "solo-ext",
            json!({"type": "NodePort", "externalTrafficPolicy": "Local", "selector": solo(), "externalIPs": ["198.51.100.8"], "ports": [{"port": 80, "targetPort": "http"}]}),
        ),
        ("empty", json!({"selector": {"app": "nobody"}, "ports": [{"port": 80}]})),
        ("doomed", json!({"selector": {"app": "doomed"}, "ports": [{"port": 80, "targetPort": 80}]})),
    ] {
        lab.apply_service(service(name, spec)).unwrap();
    }

    let open = assert_agrees(&lab, "Services, no NetworkPolicy");
    assert!(open.allow > 0 && open.deny > 0, "{open:?}: both answered and unanswered cells were checked");
    assert!(open.hairpin > 0, "{open:?}: some pod reached itself through its Service");

    // Backends accept only clients: a backend behind a masquerading node sees the node instead.
    lab.apply_policy(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "clients", "namespace": "x"}, "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}})).unwrap();
    let policed = assert_agrees(&lab, "Services, ingress from clients only");
    assert!(policed.undefined > open.undefined, "{policed:?}: some cells now depend on the endpoint picked");

    // A deleted backend is no endpoint: its Service rejects.
    let doomed = model(&lab).services.iter().find(|s| s.name == "doomed").unwrap().cluster_ip.unwrap();
    lab.delete_pod("x", "doomed").unwrap();
    assert_agrees(&lab, "Services, backend deleted");
    let out = lab
        .probe("x", "c0", &json!([{"target": doomed.to_string(), "port": 80, "protocol": "tcp", "timeout": "1s"}]).to_string(), Duration::from_secs(10))
        .unwrap();
    let r: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["outcome"], "refused", "no endpoints left: rejected at once");
}
