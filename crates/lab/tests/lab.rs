//! The lab for real: network namespaces, veth, bridges, nftables and agents, probed with real
//! packets. Needs root (CI runs as root); otherwise each test says why it checked nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use netmatrix_lab::{Fault, FaultKind, Lab, names, netns, nft, topology};
use netmatrix_model::{ContainerPort, PodSpec};
use netmatrix_model::{Labels, Protocol};
use netmatrix_oracle::{Options, Reachability};
use serde_json::{Value, json};

#[path = "support/listing.rs"]
mod listing;

#[path = "support/lab.rs"]
mod support_lab;
use support_lab::{Guard, ensure_agent, labels, probe_rows, root};

fn tcp(port: u16) -> ContainerPort {
    ContainerPort { name: Some(format!("serve-{port}")), port, protocol: Protocol::Tcp }
}

/// Namespaces x and y; pods a, b, c in each, spread over the nodes so that every pod has peers
/// on its own node and on others; each serves TCP 80 and 81.
fn populate(lab: &mut Lab) {
    lab.set_namespace("x", labels(&[("ns", "x")])).unwrap();
    lab.set_namespace("y", labels(&[("ns", "y")])).unwrap();
    let mut node = 0;
    for ns in ["x", "y"] {
        for pod in ["a", "b", "c"] {
            lab.add_pod(PodSpec {
                namespace: ns.into(),
                name: pod.into(),
                labels: labels(&[("pod", pod)]),
                node: format!("node{}", node % lab.nodes()),
                ports: vec![tcp(80), tcp(81)],
                host_network: false,
            })
            .unwrap();
            node += 1;
        }
    }
}

/// Probes every pod from every other on TCP `port`; returns (src, dst) -> connected.
fn observe(lab: &Lab, port: u16) -> BTreeMap<(String, String), bool> {
    observe_protocol(lab, port, "tcp")
}

/// One agent invocation per row, all rows at once. Two tries of 1 s each, so that a loaded
/// machine (lab tests run in parallel) does not turn a slow answer into a blocked cell.
fn observe_protocol(lab: &Lab, port: u16, protocol: &str) -> BTreeMap<(String, String), bool> {
    let rows = probe_rows(lab, |src| {
        lab.pods().iter().filter(|d| d.id != src.id).map(|d| json!({"id": format!("{}/{}", d.namespace, d.name), "target": d.ip.to_string(), "port": port, "protocol": protocol, "timeout": "1s", "tries": 2})).collect()
    });
    let mut cells = BTreeMap::new();
    for (src, out) in rows {
        for line in out.lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            let outcome = r["outcome"].as_str().unwrap();
            assert_ne!(outcome, "error", "the agent could not probe: {line}");
            cells.insert((src.clone(), r["id"].as_str().unwrap().to_owned()), outcome == "connected");
        }
    }
    cells
}

/// What the oracle predicts for the lab's current model.
fn predict(lab: &Lab, port: u16) -> BTreeMap<(String, String), bool> {
    let model = lab.model().unwrap();
    let mut reach = Reachability::compute(&model, Options { ipblocks_match_pods: true });
    let mut cells = BTreeMap::new();
    for (s, src) in model.pods.iter().enumerate() {
        for (d, dst) in model.pods.iter().enumerate() {
            if s != d {
                let id = reach.pair(reach.pod_class[s], reach.pod_class[d]);
                cells
                    .insert((format!("{}/{}", src.namespace, src.name), format!("{}/{}", dst.namespace, dst.name)), reach.conn(id).allows(Protocol::Tcp, port));
            }
        }
    }
    cells
}

fn assert_agrees(lab: &Lab, port: u16, what: &str) -> BTreeMap<(String, String), bool> {
    let observed = observe(lab, port);
    let expected = predict(lab, port);
    let wrong: Vec<_> = expected.iter().filter(|(k, v)| observed.get(*k) != Some(v)).map(|(k, v)| format!("{} => {}: expected {v}", k.0, k.1)).collect();
    assert!(wrong.is_empty(), "{what}, port {port}: the lab disagrees with the oracle:\n{}", wrong.join("\n"));
    observed
}

fn policy(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

#[test]
fn pods_reach_each_other_and_policies_enforce_what_the_oracle_predicts() {
    if !root() {
        return;
    }
    ensure_agent();
    let _guard = Guard("tpol");
    let mut lab = Lab::up("tpol", 3, netmatrix_model::IpFamilies::Ipv4).unwrap();
    populate(&mut lab);

    // No policy: everything connects, on the same node and across nodes.
    let open = assert_agrees(&lab, 80, "no policy");
    assert!(open.values().all(|&c| c), "a dataplane without policies connects every pair");

    // Default deny ingress in x, then allow x from pod=a in any namespace on 80 only.
    lab.apply_policy(policy("x", "deny", json!({"podSelector": {}, "policyTypes": ["Ingress"]}))).unwrap();
    let denied = assert_agrees(&lab, 80, "deny ingress in x");
    assert!(!denied[&("y/a".to_owned(), "x/b".to_owned())] && denied[&("x/a".to_owned(), "y/b".to_owned())]);
    lab.apply_policy(policy("x", "allow-a", json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "a"}}}], "ports": [{"port": "serve-80"}]}]}))).unwrap();
    let allowed = assert_agrees(&lab, 80, "allow from pod=a");
    assert!(allowed[&("y/a".to_owned(), "x/b".to_owned())] && !allowed[&("y/b".to_owned(), "x/c".to_owned())]);
    assert_agrees(&lab, 81, "allow from pod=a, other port");

    // Egress isolation in y: only to x on 81.
    lab.apply_policy(policy("y", "egress", json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"ns": "x"}}}], "ports": [{"port": 81}]}]}))).unwrap();
    assert_agrees(&lab, 81, "egress from y");
    assert_agrees(&lab, 80, "egress from y");

    // Relabelling a pod moves it in or out of the allowed set; deleting policies restores.
    lab.set_pod_labels("y", "b", labels(&[("pod", "a")])).unwrap();
    assert_agrees(&lab, 81, "after relabel");
    for (ns, name) in [("x", "deny"), ("x", "allow-a"), ("y", "egress")] {
        lab.delete_policy(ns, name).unwrap();
    }
    assert!(assert_agrees(&lab, 80, "policies deleted").values().all(|&c| c));
}

/// `nft args` in namespace `ns` with `input` on stdin; its stdout, or its stderr as the error.
fn nft_in(ns: &str, args: &[&str], input: &str) -> Result<String, String> {
    use std::io::Write as _;
    let mut command = std::process::Command::new("nft");
    command.args(args).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = netns::enter(ns, || command.spawn()).unwrap().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() { Ok(String::from_utf8(out.stdout).unwrap()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// Every node's table, updated in place change after change, equals the node's rendering
/// applied from scratch (in a namespace of its own).
fn assert_tables_as_rendered(lab: &Lab, lab_name: &str, scratch: &str, what: &str) {
    let table = names::nft_table(lab_name);
    let model = lab.model().unwrap();
    for node in 0..lab.nodes() {
        let full = nft::script(&table, &model, &lab.node_name(node), node, &lab.node_addresses(node), lab.faults());
        nft_in(scratch, &["-f", "-"], &full).unwrap_or_else(|e| panic!("{what}: the full apply failed: {e}"));
        let list = |ns: &str| listing::items(&nft_in(ns, &["list", "table", "inet", &table], "").unwrap());
        assert_eq!(list(&names::node(lab_name, node)), list(scratch), "{what}: node {node}'s table differs from its rendering applied from scratch");
    }
}

#[test]
fn incremental_updates_leave_the_tables_a_full_apply_gives_and_repair_a_tampered_one() {
    if !root() {
        return;
    }
    ensure_agent();
    let _guard = Guard("tinc");
    let mut lab = Lab::up("tinc", 2, netmatrix_model::IpFamilies::Ipv4).unwrap();
    // Removed with the lab: its name has the lab's prefix.
    let scratch = format!("{}scratch", names::prefix("tinc"));
    netns::create(&scratch).unwrap();
    populate(&mut lab);
    lab.apply_policies(vec![
        policy("x", "deny", json!({"podSelector": {}, "policyTypes": ["Ingress"]})),
        policy("x", "allow-a", json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "a"}}}], "ports": [{"port": "serve-80"}]}]})),
    ])
    .unwrap();
    assert_tables_as_rendered(&lab, "tinc", &scratch, "policies applied");
    lab.apply_policy(policy(
        "x",
        "allow-a",
        json!({"podSelector": {"matchLabels": {"pod": "b"}}, "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 81}]}]}),
    ))
    .unwrap();
    assert_tables_as_rendered(&lab, "tinc", &scratch, "a policy changed");
    lab.apply_policy(policy(
        "y",
        "egress",
        json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"ns": "x"}}}]}]}),
    ))
    .unwrap();
    lab.set_pod_labels("y", "b", labels(&[("pod", "a")])).unwrap();
    assert_tables_as_rendered(&lab, "tinc", &scratch, "a policy added, a pod relabelled");
    lab.apply_service(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "x"}, "spec": {"type": "NodePort", "selector": {"pod": "a"}, "ports": [{"port": 8080, "targetPort": 80}]}})).unwrap();
    lab.delete_policy("x", "deny").unwrap();
    assert_tables_as_rendered(&lab, "tinc", &scratch, "a Service added, a policy deleted");
    lab.inject(Fault::new(FaultKind::IgnorePolicy, 0)).unwrap();
    lab.inject(Fault::new(FaultKind::DropUdp, 1)).unwrap();
    assert_tables_as_rendered(&lab, "tinc", &scratch, "faults injected");
    lab.clear(FaultKind::IgnorePolicy, None).unwrap();
    lab.clear(FaultKind::DropUdp, None).unwrap();
    lab.delete_pod("x", "c").unwrap();
    lab.delete_service("x", "web").unwrap();
    assert_tables_as_rendered(&lab, "tinc", &scratch, "faults cleared, a pod and a Service deleted");
    assert_agrees(&lab, 80, "after incremental updates");

    // Behind the lab's back, node 0's table is emptied: the next update there, which refills
    // y/egress's chain, fails as a whole (nothing half applied), and the lab replaces the table.
    let table = names::nft_table("tinc");
    nft_in(&names::node("tinc", 0), &["-f", "-"], &format!("delete table inet {table}\ntable inet {table} {{\n}}\n")).unwrap();
    lab.apply_policy(policy("y", "egress", json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 80}]}]}))).unwrap();
    assert_tables_as_rendered(&lab, "tinc", &scratch, "after node 0's table was emptied");
    assert_agrees(&lab, 80, "after node 0's table was repaired");
}

#[test]
fn an_invalid_policy_changes_nothing() {
    if !root() {
        return;
    }
    ensure_agent();
    let _guard = Guard("tbad");
    let mut lab = Lab::up("tbad", 1, netmatrix_model::IpFamilies::Ipv4).unwrap();
    let bad = policy("x", "bad", json!({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}));
    let err = lab.apply_policy(bad).unwrap_err().to_string();
    assert!(err.contains("spec.podSelector.matchExpressions[0].operator"), "{err}");
    assert!(lab.model().unwrap().policies.is_empty());
}

#[test]
fn two_labs_coexist_and_down_removes_everything() {
    if !root() {
        return;
    }
    ensure_agent();
    let (_a, _b) = (Guard("tca"), Guard("tcb"));
    let mut a = Lab::up("tca", 2, netmatrix_model::IpFamilies::Ipv4).unwrap();
    let mut b = Lab::up("tcb", 2, netmatrix_model::IpFamilies::Ipv4).unwrap();
    for lab in [&mut a, &mut b] {
        for (pod, node) in [("p", 0), ("q", 1)] {
            lab.add_pod(PodSpec {
                namespace: "default".into(),
                name: pod.into(),
                labels: Labels::new(),
                node: format!("node{node}"),
                ports: vec![tcp(80)],
                host_network: false,
            })
            .unwrap();
        }
    }
    // Both labs use the same addresses, each in its own namespaces.
    assert_eq!(a.pods()[1].ip, b.pods()[1].ip);
    assert!(observe(&a, 80).values().all(|&c| c) && observe(&b, 80).values().all(|&c| c));
    assert!(matches!(Lab::up("tca", 1, netmatrix_model::IpFamilies::Ipv4), Err(netmatrix_lab::LabError::Exists(_))), "a name clash is refused");
    let pids: Vec<u32> = a.pods().iter().map(|p| p.pid).collect();
    Lab::down("tca").unwrap();
    assert!(netns::list("nm-tca-").unwrap().is_empty(), "no namespace of lab tca is left");
    assert!(!netns::list("nm-tcb-").unwrap().is_empty(), "lab tcb is untouched");
    std::thread::sleep(Duration::from_millis(100));
    for pid in pids {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z"), "agent {pid} of lab tca still runs");
    }
    assert!(observe(&b, 80).values().all(|&c| c), "lab tcb still works");
}

#[test]
fn bad_lab_names_are_refused_before_anything_is_made() {
    for name in ["", "UPPER", "toolongname", "a-b"] {
        assert!(matches!(Lab::up(name, 1, netmatrix_model::IpFamilies::Ipv4), Err(netmatrix_lab::LabError::BadInput(_))), "{name:?}");
    }
}

#[test]
fn each_fault_changes_exactly_its_cells_and_clear_restores_them() {
    if !root() {
        return;
    }
    ensure_agent();
    let _guard = Guard("tflt");
    let mut lab = Lab::up("tflt", 3, netmatrix_model::IpFamilies::Ipv4).unwrap();
    for node in 0..3 {
        for k in 0..2 {
            let ports = vec![tcp(80), ContainerPort { name: None, port: 80, protocol: Protocol::Udp }];
            lab.add_pod(PodSpec {
                namespace: "default".into(),
                name: format!("n{node}-{k}"),
                labels: Labels::new(),
                node: format!("node{node}"),
                ports,
                host_network: false,
            })
            .unwrap();
        }
    }
    let node_of = |name: &str| name.as_bytes()["default/n".len()] - b'0';
    let healthy = observe(&lab, 80);
    assert!(healthy.values().all(|&c| c) && observe_protocol(&lab, 80, "udp").values().all(|&c| c));

    // A broken overlay between node0 and node1: exactly the cells between those two nodes fail.
    lab.inject(Fault { peer: Some(1), ..Fault::new(FaultKind::CrossNode, 0) }).unwrap();
    for ((src, dst), connected) in observe(&lab, 80) {
        let cut = matches!((node_of(&src), node_of(&dst)), (0, 1) | (1, 0));
        assert_eq!(connected, !cut, "{src} => {dst} with cross-node 0<->1");
    }
    lab.clear(FaultKind::CrossNode, None).unwrap();
    assert_eq!(observe(&lab, 80), healthy, "clear restores every cell");

    // UDP dropped on node1: UDP to or from node1's pods fails, TCP is untouched.
    lab.inject(Fault::new(FaultKind::DropUdp, 1)).unwrap();
    for ((src, dst), connected) in observe_protocol(&lab, 80, "udp") {
        assert_eq!(connected, node_of(&src) != 1 && node_of(&dst) != 1, "UDP {src} => {dst} with drop-udp on node1");
    }
    assert_eq!(observe(&lab, 80), healthy);
    lab.clear(FaultKind::DropUdp, Some(1)).unwrap();
    assert!(observe_protocol(&lab, 80, "udp").values().all(|&c| c));

    // A node that ignores NetworkPolicy: under deny-all ingress only its pods stay reachable.
    lab.apply_policy(policy("default", "deny", json!({"podSelector": {}, "policyTypes": ["Ingress"]}))).unwrap();
    assert!(observe(&lab, 80).values().all(|&c| !c));
    lab.inject(Fault::new(FaultKind::IgnorePolicy, 1)).unwrap();
    for ((src, dst), connected) in observe(&lab, 80) {
        assert_eq!(connected, node_of(&dst) == 1, "{src} => {dst} with ignore-policy on node1");
    }
    lab.clear(FaultKind::IgnorePolicy, None).unwrap();
    assert!(observe(&lab, 80).values().all(|&c| !c));
    assert!(lab.faults().is_empty());

    let err = lab.inject(Fault::new(FaultKind::Netem, 0)).unwrap_err().to_string();
    assert!(err.contains("netem"), "{err}");
    assert!(lab.inject(Fault { peer: Some(0), ..Fault::new(FaultKind::CrossNode, 0) }).is_err());
}

/// In a dual-stack lab, probes every pod from every other on TCP `port` at both its
/// addresses; returns (src, dst, family) -> connected.
fn observe_families(lab: &Lab, port: u16) -> BTreeMap<(String, String, String), bool> {
    let rows = probe_rows(lab, |src| {
        let others = lab.pods().iter().filter(|d| d.id != src.id);
        let families = |d: &netmatrix_lab::PodState| [("IPv4", d.ip.to_string()), ("IPv6", topology::twin(d.ip).to_string())];
        others
            .flat_map(|d| families(d).map(|(family, ip)| json!({"id": format!("{}/{} {family}", d.namespace, d.name), "target": ip, "port": port, "protocol": "tcp", "timeout": "1s", "tries": 2})))
            .collect()
    });
    let mut cells = BTreeMap::new();
    for (src, out) in rows {
        for line in out.lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            assert_ne!(r["outcome"], "error", "the agent could not probe: {line}");
            let (dst, family) = r["id"].as_str().unwrap().split_once(' ').unwrap();
            cells.insert((src.clone(), dst.to_owned(), family.to_owned()), r["outcome"] == "connected");
        }
    }
    cells
}

#[test]
fn drop_ipv6_drops_the_ipv6_of_its_nodes_pods_only() {
    if !root() {
        return;
    }
    ensure_agent();
    let _guard = Guard("tdv6");
    let mut lab = Lab::up("tdv6", 3, netmatrix_model::IpFamilies::Dual).unwrap();
    // Two pods per node: same-node (bridged) and cross-node (routed) traffic both.
    for node in 0..3 {
        for k in 0..2 {
            let name = format!("n{node}-{k}");
            lab.add_pod(PodSpec {
                namespace: "default".into(),
                name,
                labels: Labels::new(),
                node: format!("node{node}"),
                ports: vec![tcp(80)],
                host_network: false,
            })
            .unwrap();
        }
    }
    let node_of = |name: &str| name.as_bytes()["default/n".len()] - b'0';
    let healthy = observe_families(&lab, 80);
    assert!(healthy.len() == 6 * 5 * 2 && healthy.values().all(|&c| c), "{healthy:?}");

    lab.inject(Fault::new(FaultKind::DropIpv6, 1)).unwrap();
    for ((src, dst, family), connected) in observe_families(&lab, 80) {
        let dropped = family == "IPv6" && (node_of(&src) == 1 || node_of(&dst) == 1);
        assert_eq!(connected, !dropped, "{family} {src} => {dst} with drop-ipv6 on node1");
    }
    lab.clear(FaultKind::DropIpv6, Some(1)).unwrap();
    assert_eq!(observe_families(&lab, 80), healthy, "clear restores every cell");
}

/// One probe per target from `ns/pod`; returns (outcome, answered_by) per target.
fn probe_targets(lab: &Lab, ns: &str, pod: &str, targets: &[(String, u16)]) -> Vec<(String, Option<String>)> {
    let batch: Vec<Value> = targets.iter().map(|(ip, port)| json!({"target": ip, "port": port, "protocol": "tcp", "timeout": "1s"})).collect();
    let out = lab.probe(ns, pod, &Value::Array(batch).to_string(), Duration::from_secs(30)).unwrap();
    out.lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            (r["outcome"].as_str().unwrap().to_owned(), r["answered_by"].as_str().map(str::to_owned))
        })
        .collect()
}

#[test]
fn services_balance_translate_and_reject_without_endpoints() {
    if !root() {
        return;
    }
    ensure_agent();
    let _guard = Guard("tsvc");
    let mut lab = Lab::up("tsvc", 2, netmatrix_model::IpFamilies::Ipv4).unwrap();
    let web = labels(&[("app", "web")]);
    lab.add_pods(vec![
        PodSpec {
            namespace: "x".into(),
            name: "a".into(),
            labels: web.clone(),
            node: "node0".into(),
            ports: vec![ContainerPort { name: Some("http".into()), port: 80, protocol: Protocol::Tcp }],
            host_network: false,
        },
        PodSpec {
            namespace: "x".into(),
            name: "b".into(),
            labels: web,
            node: "node1".into(),
            ports: vec![ContainerPort { name: Some("http".into()), port: 81, protocol: Protocol::Tcp }],
            host_network: false,
        },
        PodSpec { namespace: "x".into(), name: "client".into(), labels: Labels::new(), node: "node0".into(), ports: vec![], host_network: false },
    ])
    .unwrap();
    let service = |name: &str, kind: &str, selector: Value, port: u16, target: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "x"}, "spec": {"type": kind, "selector": selector, "ports": [{"port": port, "targetPort": target}]}});
    lab.apply_service(service("web", "NodePort", json!({"app": "web"}), 8080, json!("http"))).unwrap();
    lab.apply_service(service("lb", "LoadBalancer", json!({"app": "web"}), 80, json!("http"))).unwrap();
    lab.apply_service(service("empty", "ClusterIP", json!({"app": "none"}), 80, json!(80))).unwrap();
    let model = lab.model().unwrap();
    let svc = |name: &str| model.services.iter().find(|s| s.name == name).unwrap().clone();
    let (web, lb, empty) = (svc("web"), svc("lb"), svc("empty"));
    let web_ip = web.cluster_ip.expect("the lab allocates a ClusterIP").to_string();
    let node_port = web.ports[0].node_port.expect("the lab allocates a node port");
    let lb_ip = lb.load_balancer_ips.first().expect("the lab assigns a LoadBalancer IP").to_string();

    // The named targetPort resolves per endpoint (80 on x/a, 81 on x/b): both answer.
    let results = probe_targets(&lab, "x", "client", &vec![(web_ip.clone(), 8080); 24]);
    let answered: std::collections::BTreeSet<_> = results.iter().map(|(o, by)| (o.clone(), by.clone().unwrap_or_default())).collect();
    assert_eq!(answered.into_iter().collect::<Vec<_>>(), [("connected".to_owned(), "x/a".to_owned()), ("connected".to_owned(), "x/b".to_owned())]);
    // NodePort on every node's address, and the LoadBalancer IP.
    let targets = vec![(netmatrix_lab::topology::node_ip(0).to_string(), node_port), (netmatrix_lab::topology::node_ip(1).to_string(), node_port), (lb_ip, 80)];
    for (outcome, by) in probe_targets(&lab, "x", "client", &targets) {
        assert_eq!(outcome, "connected");
        assert!(by.is_some_and(|b| b == "x/a" || b == "x/b"));
    }
    // No endpoints: rejected at once, not a timeout.
    let refused = probe_targets(&lab, "x", "client", &[(empty.cluster_ip.unwrap().to_string(), 80)]);
    assert_eq!(refused[0].0, "refused");
    // Hairpin: x/a reaches itself through its Service.
    let hairpin = probe_targets(&lab, "x", "a", &vec![(web_ip, 8080); 24]);
    assert!(hairpin.iter().all(|(o, _)| o == "connected"), "{hairpin:?}");
    assert!(hairpin.iter().any(|(_, by)| by.as_deref() == Some("x/a")), "some connections land on x/a itself");
    // Deleting the Service removes its rules: the ClusterIP no longer answers.
    lab.delete_service("x", "web").unwrap();
    assert_ne!(probe_targets(&lab, "x", "client", &[(web.cluster_ip.unwrap().to_string(), 8080)])[0].0, "connected");
}

#[test]
fn service_faults_break_exactly_their_node_and_clear_restores() {
    if !root() {
        return;
    }
    ensure_agent();
    let _guard = Guard("tsvf");
    let mut lab = Lab::up("tsvf", 2, netmatrix_model::IpFamilies::Ipv4).unwrap();
    let web = labels(&[("app", "web")]);
    let http = || vec![tcp(80)];
    lab.add_pods(vec![
        PodSpec { namespace: "x".into(), name: "a".into(), labels: web.clone(), node: "node0".into(), ports: http(), host_network: false },
        PodSpec { namespace: "x".into(), name: "b".into(), labels: web, node: "node1".into(), ports: http(), host_network: false },
        PodSpec { namespace: "x".into(), name: "c0".into(), labels: Labels::new(), node: "node0".into(), ports: vec![], host_network: false },
        PodSpec { namespace: "x".into(), name: "c1".into(), labels: Labels::new(), node: "node1".into(), ports: vec![], host_network: false },
    ])
    .unwrap();
    lab.apply_service(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "x"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080, "targetPort": 80}]}})).unwrap();
    let ip = lab.model().unwrap().services[0].cluster_ip.unwrap().to_string();
    let connected = |lab: &Lab, pod: &str| probe_targets(lab, "x", pod, &vec![(ip.clone(), 8080); 16]).into_iter().filter(|(o, _)| o == "connected").count();

    // A dead proxy on node0: its pods cannot use the Service, node1's still can.
    lab.inject(Fault::new(FaultKind::DropServices, 0)).unwrap();
    assert_eq!(connected(&lab, "c0"), 0);
    assert_eq!(connected(&lab, "c1"), 16);
    lab.clear(FaultKind::DropServices, None).unwrap();
    assert_eq!(connected(&lab, "c0"), 16);

    // Broken hairpin on node0: connections of x/a that the Service sends back to x/a get lost
    // (not each one: when br_netfilter routes the translated packet out of the bridge device
    // instead of bridging it back out of its port, it arrives without hairpin mode), while
    // those sent to x/b connect; on node1 x/b is unaffected.
    lab.inject(Fault::new(FaultKind::BreakHairpin, 0)).unwrap();
    let from_a = probe_targets(&lab, "x", "a", &vec![(ip.clone(), 8080); 24]);
    assert!(from_a.iter().any(|(o, _)| o != "connected"), "some connections were sent back to x/a and got lost: {from_a:?}");
    assert!(from_a.iter().any(|(o, by)| o == "connected" && by.as_deref() == Some("x/b")), "{from_a:?}");
    assert_eq!(connected(&lab, "b"), 16);
    lab.clear(FaultKind::BreakHairpin, Some(0)).unwrap();
    assert_eq!(connected(&lab, "a"), 16);
}

#[test]
fn udp_flows_to_a_deleted_backend_are_flushed_unless_the_node_keeps_them() {
    if !root() {
        return;
    }
    ensure_agent();
    let _guard = Guard("tudp");
    let mut lab = Lab::up("tudp", 2, netmatrix_model::IpFamilies::Ipv4).unwrap();
    let dns = labels(&[("app", "dns")]);
    let udp = || vec![ContainerPort { name: None, port: 53, protocol: Protocol::Udp }];
    lab.add_pods(vec![
        PodSpec { namespace: "x".into(), name: "old".into(), labels: dns.clone(), node: "node1".into(), ports: udp(), host_network: false },
        PodSpec { namespace: "x".into(), name: "client".into(), labels: Labels::new(), node: "node0".into(), ports: vec![], host_network: false },
    ])
    .unwrap();
    lab.apply_service(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns", "namespace": "x"}, "spec": {"selector": {"app": "dns"}, "ports": [{"port": 53, "protocol": "UDP"}]}})).unwrap();
    let ip = lab.model().unwrap().services[0].cluster_ip.unwrap().to_string();
    // The same source port each time, so that the flow is the same conntrack entry.
    let ask = |lab: &Lab, source_port: u16| {
        let batch = json!([{"target": ip, "port": 53, "protocol": "udp", "timeout": "1s", "source_port": source_port}]);
        let r: Value = serde_json::from_str(lab.probe("x", "client", &batch.to_string(), Duration::from_secs(10)).unwrap().trim()).unwrap();
        r["answered_by"].as_str().map(str::to_owned)
    };
    let replace = |lab: &mut Lab, old: &str, new: &str| {
        lab.add_pod(PodSpec { namespace: "x".into(), name: new.into(), labels: dns.clone(), node: "node1".into(), ports: udp(), host_network: false }).unwrap();
        lab.delete_pod("x", old).unwrap();
    };
    assert_eq!(ask(&lab, 40000).as_deref(), Some("x/old"));
    replace(&mut lab, "old", "new");
    assert_eq!(ask(&lab, 40000).as_deref(), Some("x/new"), "the flow was flushed and translated again");

    // The client's node keeps stale entries: the same flow goes on to the deleted address.
    lab.inject(Fault::new(FaultKind::StaleUdp, 0)).unwrap();
    assert_eq!(ask(&lab, 40001).as_deref(), Some("x/new"));
    replace(&mut lab, "new", "newer");
    assert_eq!(ask(&lab, 40001), None, "the stale entry still points at the deleted backend");
    assert_eq!(ask(&lab, 40002).as_deref(), Some("x/newer"), "a new flow reaches the new backend");
}

/// `ip -j -n NS neigh show dev DEV`: (address, state) of each entry.
fn neighbours(ns: &str, dev: &str) -> BTreeMap<String, String> {
    let out = std::process::Command::new("ip").args(["-j", "-n", ns, "neigh", "show", "dev", dev]).output().unwrap();
    assert!(out.status.success(), "ip neigh in {ns}: {}", String::from_utf8_lossy(&out.stderr));
    let entries: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    entries.iter().map(|e| (e["dst"].as_str().unwrap().to_owned(), e["state"].to_string())).collect()
}

/// Regression: the host's neighbour table, shared by all namespaces, holds 1024 dynamic entries
/// (gc_thresh3), and 50 pods on one node would need 2,450 for each other: most connections then
/// timed out. Every lab address is resolved by a permanent entry instead.
#[test]
fn fifty_pods_on_one_node_connect_through_permanent_neighbour_entries() {
    if !root() {
        return;
    }
    ensure_agent();
    let _guard = Guard("tarp");
    let mut lab = Lab::up("tarp", 1, netmatrix_model::IpFamilies::Ipv4).unwrap();
    let spec =
        |name: String| PodSpec { namespace: "default".into(), name, labels: Labels::new(), node: "node0".into(), ports: vec![tcp(80)], host_network: false };
    lab.add_pods((0..50).map(|i| spec(format!("p{i}"))).collect()).unwrap();
    let cells = observe(&lab, 80);
    let failed: Vec<_> = cells.iter().filter(|&(_, &c)| !c).map(|(k, _)| format!("{} => {}", k.0, k.1)).collect();
    assert!(cells.len() == 50 * 49 && failed.is_empty(), "{} of {} cells failed: {failed:?}", failed.len(), cells.len());

    // Exactly the node's other pods and the gateway, all permanent; the node has each pod.
    let permanent = |ips: Vec<String>| ips.into_iter().map(|ip| (ip, r#"["PERMANENT"]"#.to_owned())).collect::<BTreeMap<_, _>>();
    let gateway = topology::pod_cidr(0).hosts().next().unwrap().to_string();
    let bridged = |lab: &Lab| lab.pods().iter().filter(|p| !p.host_network).cloned().collect::<Vec<_>>();
    let expected = |lab: &Lab, of: u32| permanent(bridged(lab).iter().filter(|p| p.id != of).map(|p| p.ip.to_string()).chain([gateway.clone()]).collect());
    let check = |lab: &Lab, what: &str| {
        for pod in bridged(lab) {
            assert_eq!(neighbours(&names::pod("tarp", pod.id), "eth0"), expected(lab, pod.id), "{what}: neighbours of {}", pod.name);
        }
        assert_eq!(
            neighbours(&names::node("tarp", 0), &names::bridge("tarp")),
            permanent(bridged(lab).iter().map(|p| p.ip.to_string()).collect()),
            "{what}: neighbours of the node"
        );
    };
    check(&lab, "after 50 pods");
    // The bridge keeps the MAC the pods' entries name, whatever its ports' MACs.
    let link = std::process::Command::new("ip").args(["-j", "-n", &names::node("tarp", 0), "link", "show", &names::bridge("tarp")]).output().unwrap();
    let link: Value = serde_json::from_slice(&link.stdout).unwrap();
    assert_eq!(link[0]["address"], "0a:58:0a:f4:00:01");

    // A deleted pod's entries leave its peers and node; a pod added alone gets and gives them;
    // a hostNetwork pod (in the node's namespace) has none of its own.
    lab.add_host_pods(vec![spec("host".into())]).unwrap();
    lab.delete_pod("default", "p7").unwrap();
    check(&lab, "after deleting p7");
    lab.add_pod(spec("late".into())).unwrap();
    check(&lab, "after adding late");
    let late: Vec<_> = observe(&lab, 80).into_iter().filter(|((src, dst), _)| src == "default/late" || dst == "default/late").collect();
    assert!(late.len() == 2 * 50 && late.iter().all(|(_, c)| *c), "{late:?}");
}

#[test]
fn a_vanished_namespace_is_named_not_taken_for_a_missing_tool() {
    if !root() {
        return;
    }
    ensure_agent();
    let _guard = Guard("tgone");
    let mut lab = Lab::up("tgone", 2, netmatrix_model::IpFamilies::Ipv4).unwrap();
    let gone = names::node("tgone", 1);
    netns::delete(&gone).unwrap();
    // A change to node 1's rules runs `nft` in its namespace.
    let err = lab.inject(Fault::new(FaultKind::DropUdp, 1)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&gone) && !message.contains("install"), "{message}");
    let source = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
    assert!(source.contains("No such file or directory"), "the io error is the source: {source}");
}

/// Probes x/`pod` on TCP 80 from x/client every 10 ms until it is `reachable` (or not); how
/// long after `since` the attempt that first saw so began. A blocked attempt waits out its
/// timeout, so its start is the agent's answer less its latency, not the answer.
fn until(lab: &Lab, pod: &str, reachable: bool, since: Instant) -> Duration {
    let ip = lab.pods().iter().find(|p| p.namespace == "x" && p.name == pod).unwrap().ip.to_string();
    let batch = json!([{"target": ip, "port": 80, "protocol": "tcp", "timeout": "200ms", "tries": 1}]).to_string();
    loop {
        let out = lab.probe("x", "client", &batch, Duration::from_secs(10)).unwrap();
        let answered = Instant::now();
        let r: Value = serde_json::from_str(out.trim()).unwrap();
        assert_ne!(r["outcome"], "error", "the agent could not probe: {out}");
        if (r["outcome"] == "connected") == reachable {
            let latency = Duration::from_micros(r["latency_us"].as_u64().unwrap());
            return (answered - latency).saturating_duration_since(since);
        }
        assert!(since.elapsed() < Duration::from_secs(10), "x/{pod} is still {}reachable after 10 s", if reachable { "un" } else { "" });
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `delay-policy` on node1 by 300 ms: a policy whose rules live on node1 takes effect 300 ms
/// after the change returned, one on node0 at once; clearing the fault applies what it holds
/// back at once, and so does dropping the lab; nothing held back reaches a lab removed since.
#[test]
fn delay_policy_holds_back_one_nodes_rule_updates() {
    if !root() {
        return;
    }
    ensure_agent();
    const DELAY: Duration = Duration::from_millis(300);
    /// Probing, the agent starting, `nft` and a loaded host (lab tests run in parallel).
    const TOLERANCE: Duration = Duration::from_millis(250);
    let _guard = Guard("tdly");
    let mut lab = Lab::up("tdly", 2, netmatrix_model::IpFamilies::Ipv4).unwrap();
    let scratch = format!("{}scratch", names::prefix("tdly"));
    netns::create(&scratch).unwrap();
    let pod = |name: &str, node: usize, ports: Vec<ContainerPort>| PodSpec {
        namespace: "x".into(),
        name: name.into(),
        labels: labels(&[("pod", name)]),
        node: format!("node{node}"),
        ports,
        host_network: false,
    };
    lab.add_pods(vec![pod("p0", 0, vec![tcp(80)]), pod("p1", 1, vec![tcp(80)]), pod("client", 0, vec![])]).unwrap();
    let delay = |node: usize, by: Duration| Fault { delay: Some(by), ..Fault::new(FaultKind::DelayPolicy, node) };
    let err = lab.inject(Fault::new(FaultKind::DelayPolicy, 1)).unwrap_err();
    assert!(matches!(err, netmatrix_lab::LabError::BadInput(_)) && err.to_string().contains("--by"), "{err}");
    lab.inject(delay(1, Duration::from_secs(5))).unwrap();
    lab.inject(delay(1, DELAY)).unwrap();
    assert_eq!(lab.faults().iter().map(ToString::to_string).collect::<Vec<_>>(), ["delay-policy node1 by 300ms"], "re-injecting replaces");
    assert!(lab.status().contains("fault delay-policy node1 by 300ms"));
    let start = Instant::now();
    until(&lab, "p0", true, start);
    until(&lab, "p1", true, start);
    let deny = |name: &str| policy("x", &format!("deny-{name}"), json!({"podSelector": {"matchLabels": {"pod": name}}, "policyTypes": ["Ingress"]}));

    // node1's rules land the delay after the change returned.
    let start = Instant::now();
    lab.apply_policy(deny("p1")).unwrap();
    let (returned, applying) = (Instant::now(), start.elapsed());
    let held = until(&lab, "p1", false, returned);
    eprintln!("delay-policy node1 by {DELAY:?}: apply_policy returned in {applying:?}; x/p1 (node1) unreachable {held:?} after");
    assert!(applying < DELAY, "the change does not wait for the delayed node: {applying:?}");
    assert!(held >= DELAY && held < DELAY + TOLERANCE, "x/p1 unreachable {held:?} after the change, not {DELAY:?} + at most {TOLERANCE:?}");

    // node0's at once.
    lab.apply_policy(deny("p0")).unwrap();
    let at_once = until(&lab, "p0", false, Instant::now());
    eprintln!("x/p0 (node0, not delayed) unreachable {at_once:?} after");
    assert!(at_once < TOLERANCE, "x/p0 unreachable {at_once:?} after the change");
    // Several updates held back at once land in order, each an update of what the one before
    // it left: the table ends as its rendering applied from scratch.
    lab.delete_policy("x", "deny-p0").unwrap();
    lab.delete_policy("x", "deny-p1").unwrap();
    lab.set_pod_labels("x", "p1", labels(&[("pod", "p1"), ("extra", "yes")])).unwrap();
    lab.apply_policy(deny("p1")).unwrap();
    std::thread::sleep(DELAY + Duration::from_millis(100));
    assert_tables_as_rendered(&lab, "tdly", &scratch, "after held-back updates landed");

    // Clearing applies what is held back at once (here 5 s worth); later updates are immediate.
    lab.inject(delay(1, Duration::from_secs(5))).unwrap();
    lab.delete_policy("x", "deny-p1").unwrap();
    let start = Instant::now();
    lab.clear(FaultKind::DelayPolicy, Some(1)).unwrap();
    let (cleared, clearing) = (Instant::now(), start.elapsed());
    let flushed = until(&lab, "p1", true, cleared);
    eprintln!("clear applied the held-back update in {clearing:?}; x/p1 reachable {flushed:?} after");
    assert!(flushed < TOLERANCE, "x/p1 reachable {flushed:?} after the clear");
    assert_tables_as_rendered(&lab, "tdly", &scratch, "after the clear");
    lab.apply_policy(deny("p1")).unwrap();
    let immediate = until(&lab, "p1", false, Instant::now());
    eprintln!("after the clear: x/p1 unreachable {immediate:?} after the change");
    assert!(immediate < TOLERANCE, "x/p1 unreachable {immediate:?} after the change, with the fault cleared");

    // A lab value dropped applies what it holds at once; the delay stays in the saved faults.
    lab.inject(delay(1, Duration::from_secs(5))).unwrap();
    lab.delete_policy("x", "deny-p1").unwrap();
    let start = Instant::now();
    drop(lab);
    let dropping = start.elapsed();
    let mut lab = Lab::open("tdly").unwrap();
    let reachable = until(&lab, "p1", true, start);
    eprintln!("drop applied the held-back update in {dropping:?}; x/p1 reachable {reachable:?} after the drop began");
    assert!(dropping < Duration::from_secs(2) && reachable < Duration::from_secs(2), "{dropping:?}, {reachable:?}");
    assert_eq!(lab.faults(), [delay(1, Duration::from_secs(5))]);
    assert_tables_as_rendered(&lab, "tdly", &scratch, "after the drop");

    // Removed while an update is held back, and made again under the same name: the old
    // value's update, dropped, never reaches the new lab.
    lab.apply_policy(deny("p1")).unwrap();
    Lab::down("tdly").unwrap();
    let mut again = Lab::up("tdly", 2, netmatrix_model::IpFamilies::Ipv4).unwrap();
    drop(lab);
    let scratch = format!("{}scratch", names::prefix("tdly"));
    netns::create(&scratch).unwrap();
    assert_tables_as_rendered(&again, "tdly", &scratch, "a new lab under the name");
    again.add_pod(pod("p1", 1, vec![tcp(80)])).unwrap();
    assert_tables_as_rendered(&again, "tdly", &scratch, "a new lab under the name, with a pod");

    // A held-back update that fails (its node's namespace was deleted behind the lab's back)
    // cannot fail the change that made it: the next change reports it.
    again.inject(delay(1, Duration::from_millis(50))).unwrap();
    let gone = names::node("tdly", 1);
    netns::delete(&gone).unwrap();
    again.apply_policy(deny("p1")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let err = again.set_namespace("y", Labels::new()).unwrap_err().to_string();
    assert!(err.contains("node 1 (held back by delay-policy)") && err.contains(&gone), "{err}");
}
