//! Diagnosis on a synthetic run shaped like the real suites: 3 nodes, namespaces x, y, z with
//! pods a, b, c (pod a on node0, b on node1, c on node2), ports 80/TCP and 80/UDP, Services.
//! Each lab fault is a rule flipping the cells it affects, written from the fault's definition.

use std::collections::BTreeSet;

use netmatrix_engine::diagnose::diagnose;
use netmatrix_model::{IpFamily, Protocol};
use netmatrix_results::{Cell, Check, Comparison, Expected, Finding, Observed, StepReport, TargetKind};
use proptest::prelude::*;

const NAMESPACES: [&str; 3] = ["x", "y", "z"];
const PODS: [&str; 3] = ["a", "b", "c"];
const PROTOCOLS: [Protocol; 2] = [Protocol::Tcp, Protocol::Udp];

fn node(i: usize) -> String {
    format!("node{i}")
}

fn pods() -> impl Iterator<Item = (String, usize)> {
    NAMESPACES.into_iter().flat_map(|ns| PODS.into_iter().enumerate().map(move |(i, p)| (format!("{ns}/{p}"), i)))
}

fn node_of(pod: &str) -> usize {
    PODS.iter().position(|p| pod.ends_with(&format!("/{p}"))).expect("a suite pod")
}

fn namespace(name: &str) -> &str {
    name.split('/').next().expect("ns/name")
}

// The suite's policies: x's pods may not send to y (egress), z's pods accept nothing from y (ingress).
fn egress_denied(src: &str, dst_ns: &str) -> bool {
    namespace(src) == "x" && dst_ns == "y"
}

fn ingress_denied(src: &str, dst_ns: &str) -> bool {
    namespace(src) == "y" && dst_ns == "z"
}

/// The namespace of the pod that serves a cell: its Service's, or its own.
fn served_by_namespace(c: &Cell) -> &str {
    namespace(c.service.as_deref().unwrap_or(&c.dst))
}

/// A cell to `backend` (a pod, or the single backend of a Service), as expected by the policies.
fn cell(src: &str, dst: &str, protocol: Protocol, target: TargetKind, backend: Option<&str>, dst_node: Option<usize>) -> Cell {
    let mut c = Cell {
        src: src.into(),
        dst: dst.into(),
        port: 80,
        protocol,
        expected: Expected::Allow,
        observed: Observed::Allow,
        tries: 1,
        latency_ms: None,
        answered_by: None,
        history: vec![Observed::Allow],
        tried_at_ms: vec![0],
        expected_before: None,
        src_node: Some(node(node_of(src))),
        dst_node: dst_node.map(node),
        target,
        service: backend.filter(|_| target != TargetKind::Pod).map(Into::into),
        hairpin: target != TargetKind::Pod && backend == Some(src),
        check: Check::Reach,
        detail: None,
        explanation: None,
        family: None,
    };
    let ns = served_by_namespace(&c).to_owned();
    if egress_denied(src, &ns) || ingress_denied(src, &ns) {
        c.expected = Expected::Deny;
        c.observed = Observed::Deny;
        c.history = vec![Observed::Deny];
    }
    c
}

fn pod_step() -> StepReport {
    let mut cells = Vec::new();
    for (src, _) in pods() {
        for (dst, n) in pods() {
            for protocol in PROTOCOLS {
                let mut c = cell(&src, &dst, protocol, TargetKind::Pod, Some(&dst), Some(n));
                if src == dst && protocol == Protocol::Udp {
                    c.expected = Expected::Undefined;
                }
                cells.push(c);
            }
        }
    }
    StepReport { name: "pods".into(), tries: 1, cells }
}

/// ClusterIP per pod of x and z, NodePort on every node and LoadBalancer for x/a and x/b,
/// affinity to a Service of all of x (backend node unknown), UDP after replacing x/b's backend.
fn service_step() -> StepReport {
    let mut cells = Vec::new();
    for (src, _) in pods() {
        for (backend, n) in pods().filter(|(p, _)| !p.starts_with("y/")) {
            for protocol in PROTOCOLS {
                cells.push(cell(&src, &format!("svc:{backend}"), protocol, TargetKind::ClusterIp, Some(&backend), Some(n)));
            }
        }
        for (slot, backend) in ["x/a", "x/b"].into_iter().enumerate() {
            for n in 0..3 {
                cells.push(cell(&src, &format!("node:{}:{}", node(n), 30080 + slot), Protocol::Tcp, TargetKind::NodePort, Some(backend), Some(n)));
            }
            cells.push(cell(&src, &format!("lb:172.18.255.{}", slot + 1), Protocol::Tcp, TargetKind::LoadBalancer, Some(backend), Some(node_of(backend))));
        }
        if !src.starts_with("x/") {
            cells.push(Cell { check: Check::Affinity, ..cell(&src, "svc:x/all", Protocol::Tcp, TargetKind::ClusterIp, Some("x/all"), None) });
        }
        cells.push(Cell { check: Check::UdpAfterReplace, ..cell(&src, "svc:x/udp", Protocol::Udp, TargetKind::ClusterIp, Some("x/udp"), Some(1)) });
    }
    StepReport { name: "services".into(), tries: 1, cells }
}

fn suite() -> Vec<StepReport> {
    vec![pod_step(), service_step()]
}

/// A TCP cell between `pod` and the hostNetwork probe pod of node `n` (`host/nodeN`), to the
/// pod or from it (to `node:nodeN`), as the connectivity suite's pod-to-node case probes.
fn host_cell(n: usize, pod: &str, to_pod: bool) -> Cell {
    let (host, host_node, pod_node) = (format!("host/{}", node(n)), Some(node(n)), Some(node(node_of(pod))));
    let base = cell(pod, pod, Protocol::Tcp, TargetKind::Pod, None, None);
    match to_pod {
        true => Cell { src: host, dst: pod.into(), src_node: host_node, dst_node: pod_node, ..base },
        false => Cell { dst: format!("node:{}", node(n)), src_node: pod_node, dst_node: host_node, target: TargetKind::Node, ..base },
    }
}

/// The suite on a dual-stack run: the pod cells, the hostNetwork probe pods' cells and the
/// Services once per family, every cell naming its family.
fn dual_suite() -> Vec<StepReport> {
    let per_family = |name: &str, cells: Vec<Cell>| {
        let cells = IpFamily::BOTH.into_iter().flat_map(|f| cells.iter().map(move |c| Cell { family: Some(f), ..c.clone() })).collect();
        StepReport { name: name.into(), tries: 1, cells }
    };
    let hosts = (0..3).flat_map(|n| pods().flat_map(move |(p, _)| [host_cell(n, &p, true), host_cell(n, &p, false)])).collect();
    vec![per_family("pods", pod_step().cells), per_family("hosts", hosts), per_family("services", service_step().cells)]
}

/// What a fault does to a cell: the observation it forces, if it affects the cell.
type Fault = Box<dyn Fn(&Cell) -> Option<Observed>>;

/// A fault that drops the expected-allow cells `hit` selects.
fn blocks(hit: impl Fn(&Cell) -> bool + 'static) -> Fault {
    Box::new(move |c| (c.expected == Expected::Allow && hit(c)).then_some(Observed::Deny))
}

fn on(n: Option<&String>, i: usize) -> bool {
    n == Some(&node(i))
}

fn is_service(c: &Cell) -> bool {
    matches!(c.target, TargetKind::ClusterIp | TargetKind::NodePort | TargetKind::LoadBalancer)
}

/// `cross-node --node N [--peer M]`: the router drops between the pod networks of N and M (or
/// every other node): pod targets, and ClusterIP/LB traffic once translated to the backend pod.
fn cross_node(n: usize, peer: Option<usize>) -> Fault {
    blocks(move |c| {
        let routed = matches!(c.target, TargetKind::Pod | TargetKind::ClusterIp | TargetKind::LoadBalancer);
        let other = |a: Option<&String>, b: Option<&String>| on(a, n) && b.is_some() && b != a && peer.is_none_or(|p| on(b, p));
        routed && (other(c.src_node.as_ref(), c.dst_node.as_ref()) || other(c.dst_node.as_ref(), c.src_node.as_ref()))
    })
}

/// `drop-udp --node N`: N drops all UDP it forwards: its pods' (bridged traffic goes through its
/// hooks too), and what it forwards to its pods or answers on its node ports.
fn drop_udp(n: usize) -> Fault {
    blocks(move |c| c.protocol == Protocol::Udp && (on(c.src_node.as_ref(), n) || on(c.dst_node.as_ref(), n)))
}

/// `drop-ipv6 --node N`: N forwards no IPv6 packet: its pods' to and from anything but N itself
/// (whose hostNetwork probe pod sends and receives its own packets), and other nodes' to them.
fn drop_ipv6(n: usize) -> Fault {
    blocks(move |c| {
        let host = |end: &str| end.starts_with("host/") || end.starts_with("node:");
        let pod_on_n = |end: &str, at: Option<&String>| !host(end) && on(at, n);
        let host_n = |end: &str, at: Option<&String>| host(end) && on(at, n);
        let (src, dst) = ((c.src.as_str(), c.src_node.as_ref()), (c.dst.as_str(), c.dst_node.as_ref()));
        c.family == Some(IpFamily::IPv6) && ((pod_on_n(src.0, src.1) && !host_n(dst.0, dst.1)) || (pod_on_n(dst.0, dst.1) && !host_n(src.0, src.1)))
    })
}

/// `ignore-policy --node N`: ingress to and egress from N's pods are not filtered, so a denied
/// cell gets through when every side that denies it is on N.
fn ignore_policy(n: usize) -> Fault {
    Box::new(move |c| {
        let ns = served_by_namespace(c);
        let egress_open = !egress_denied(&c.src, ns) || on(c.src_node.as_ref(), n);
        let ingress_open = !ingress_denied(&c.src, ns) || on(c.dst_node.as_ref(), n);
        (c.expected == Expected::Deny && egress_open && ingress_open).then_some(Observed::Allow)
    })
}

/// `drop-services --node N`: N's pods reach no Service address; N's node ports do not answer.
fn drop_services(n: usize) -> Fault {
    // A node port is translated by the node addressed, so clients on N still reach other nodes' node ports.
    blocks(move |c| is_service(c) && if c.target == TargetKind::NodePort { on(c.dst_node.as_ref(), n) } else { on(c.src_node.as_ref(), n) })
}

/// `break-hairpin --node N`: N's pods cannot reach themselves through their Service.
fn break_hairpin(n: usize) -> Fault {
    blocks(move |c| c.hairpin && on(c.src_node.as_ref(), n))
}

/// `stale-udp --node N`: N's clients keep sending to a replaced backend.
fn stale_udp(n: usize) -> Fault {
    blocks(move |c| c.check == Check::UdpAfterReplace && on(c.src_node.as_ref(), n))
}

fn inject(steps: &mut [StepReport], faults: &[Fault]) {
    for c in steps.iter_mut().flat_map(|s| &mut s.cells) {
        if let Some(observed) = faults.iter().find_map(|f| f(c)) {
            c.observed = observed;
            c.history = vec![observed];
        }
    }
}

fn faulty(faults: &[Fault]) -> Vec<StepReport> {
    let mut steps = suite();
    inject(&mut steps, faults);
    steps
}

fn dual_faulty(faults: &[Fault]) -> Vec<StepReport> {
    let mut steps = dual_suite();
    inject(&mut steps, faults);
    steps
}

fn cells_where(steps: &[StepReport], keep: impl Fn(Comparison) -> bool) -> BTreeSet<(usize, usize)> {
    let refs = steps.iter().enumerate().flat_map(|(s, step)| step.cells.iter().enumerate().map(move |(i, c)| ((s, i), c)));
    refs.filter(|(_, c)| keep(c.comparison())).map(|(r, _)| r).collect()
}

fn symptoms(steps: &[StepReport]) -> BTreeSet<(usize, usize)> {
    cells_where(steps, |c| matches!(c, Comparison::Wrong | Comparison::Inconclusive))
}

/// The diagnosis is one finding of `kind`, whose summary names `words`, listing every wrong cell.
#[track_caller]
fn assert_one(steps: &[StepReport], kind: &str, words: &[&str]) -> Finding {
    assert!(!symptoms(steps).is_empty(), "the fault changed nothing");
    let findings = diagnose(steps);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = findings.into_iter().next().expect("one finding");
    assert_eq!(f.kind, kind, "{f:#?}");
    for w in words {
        assert!(f.summary.contains(w), "{w:?} not in {:?}", f.summary);
    }
    assert_eq!(f.cells.iter().copied().collect::<BTreeSet<_>>(), symptoms(steps));
    f
}

#[test]
fn a_healthy_run_has_no_findings() {
    assert_eq!(diagnose(&suite()), Vec::new());
    assert_eq!(diagnose(&[]), Vec::new());
}

#[test]
fn cross_node_to_every_other_node_names_its_pairs() {
    let f = assert_one(&faulty(&[cross_node(0, None)]), "cross-node", &["node0<->node1", "node0<->node2"]);
    assert!(!f.summary.contains("node1<->node2"), "{}", f.summary);
}

#[test]
fn cross_node_with_a_peer_names_that_pair_only() {
    let f = assert_one(&faulty(&[cross_node(2, Some(1))]), "cross-node", &["node1<->node2"]);
    assert!(!f.summary.contains("node0"), "{}", f.summary);
}

#[test]
fn cross_node_everywhere_is_one_finding() {
    let f = assert_one(&faulty(&[cross_node(0, None), cross_node(1, None)]), "cross-node", &["every pair of nodes"]);
    assert!(f.summary.starts_with("traffic between pods on different nodes fails"), "{}", f.summary);
}

#[test]
fn drop_udp_is_udp_on_that_node() {
    assert_one(&faulty(&[drop_udp(1)]), "protocol", &["only UDP is wrong; on node1"]);
}

#[test]
fn udp_dropped_everywhere_is_the_protocol() {
    let f = assert_one(&faulty(&[drop_udp(0), drop_udp(1), drop_udp(2)]), "protocol", &["only UDP is wrong"]);
    assert!(!f.summary.contains("node"), "{}", f.summary);
}

#[test]
fn drop_ipv6_is_ipv6_broken_on_that_node() {
    assert_eq!(diagnose(&dual_suite()), Vec::new());
    let steps = dual_faulty(&[drop_ipv6(1)]);
    let f = assert_one(&steps, "family", &["IPv6 is broken on node1", "while IPv4 between the same pods works"]);
    assert!(!f.summary.contains("node0") && !f.summary.contains("node2"), "{}", f.summary);
    // Wrong cells through the hostNetwork probe pods too, which the node forwards for its pods.
    assert!(f.cells.iter().any(|&(s, _)| s == 1), "{f:#?}");
}

#[test]
fn ipv6_dropped_everywhere_is_ipv6_broken_everywhere() {
    let f = assert_one(&dual_faulty(&[drop_ipv6(0), drop_ipv6(1), drop_ipv6(2)]), "family", &["IPv6 is broken everywhere"]);
    assert!(!f.summary.contains("node"), "{}", f.summary);
}

#[test]
fn a_family_is_blamed_only_where_the_other_works_between_the_same_pods() {
    // Node1's pods unreachable in both families: each IPv6 cell's IPv4 twin fails too, so the
    // pods are to blame (node1 itself still answers, so not the node).
    let steps = dual_faulty(&[blocks(|c| c.target == TargetKind::Pod && on(c.dst_node.as_ref(), 1))]);
    let kinds: Vec<String> = diagnose(&steps).into_iter().map(|f| f.kind).collect();
    assert_eq!(kinds, ["target"; 3]);
    // IPv6 failing everywhere is the family while IPv4 works; with no IPv4 probed to compare,
    // nothing says it is the family rather than the pods.
    let mut steps = dual_faulty(&[blocks(|c| c.family == Some(IpFamily::IPv6))]);
    assert_one(&steps, "family", &["IPv6 is broken everywhere"]);
    for step in &mut steps {
        step.cells.retain(|c| c.family == Some(IpFamily::IPv6));
    }
    let findings = diagnose(&steps);
    assert!(!findings.is_empty() && findings.iter().all(|f| f.kind != "family"), "{findings:#?}");
}

#[test]
fn ignore_policy_is_policy_ignored_on_that_node() {
    assert_one(&faulty(&[ignore_policy(2)]), "policy-ignored", &["node2"]);
    assert_one(&faulty(&[ignore_policy(0)]), "policy-ignored", &["node0"]);
}

#[test]
fn drop_services_is_the_service_proxy_of_that_node() {
    assert_one(&faulty(&[drop_services(1)]), "service-proxy", &["node1"]);
}

#[test]
fn a_dead_service_proxy_seen_through_cluster_ips_only_is_the_service_proxy() {
    // The real cluster's `services/cluster-ip` case with kube-proxy stopped on a node: only
    // ClusterIP cells, so "the pods on node1 cannot send" explains them just as well, but claims more.
    let mut step = service_step();
    step.cells.retain(|c| c.target == TargetKind::ClusterIp && c.check == Check::Reach);
    let mut steps = vec![step];
    inject(&mut steps, &[drop_services(1)]);
    assert_one(&steps, "service-proxy", &["node1"]);
}

#[test]
fn single_family_services_is_one_service_family_on_that_node() {
    // `single-family-services --node N`: what drop-services does, for IPv6 cells alone.
    let mut steps = dual_suite();
    let ipv6_services = drop_services(1);
    inject(&mut steps, &[Box::new(move |c: &Cell| if c.family == Some(IpFamily::IPv6) { ipv6_services(c) } else { None })]);
    assert_one(&steps, "service-family", &["one Service family not programmed: IPv6 Services on node1", "while IPv4 works"]);
    // Both families down is the proxy, not a family.
    let mut steps = dual_suite();
    inject(&mut steps, &[drop_services(1)]);
    assert_one(&steps, "service-proxy", &["node1"]);
}

#[test]
fn break_hairpin_names_the_sources_node() {
    let f = assert_one(&faulty(&[break_hairpin(0)]), "hairpin", &["on node0"]);
    assert!(!f.summary.contains("node1"), "{}", f.summary);
}

#[test]
fn stale_udp_names_the_clients_node() {
    assert_one(&faulty(&[stale_udp(2)]), "stale-udp", &["from pods on node2"]);
}

#[test]
fn broken_affinity_names_the_service() {
    assert_one(&faulty(&[blocks(|c| c.check == Check::Affinity)]), "affinity", &["x/all"]);
}

#[test]
fn dead_node_ports_of_one_node() {
    assert_one(&faulty(&[blocks(|c| c.target == TargetKind::NodePort && on(c.dst_node.as_ref(), 1))]), "node-port-node", &["node1"]);
}

#[test]
fn one_dead_service_kind() {
    assert_one(&faulty(&[blocks(|c| c.target == TargetKind::LoadBalancer)]), "service-kind", &["load-balancer"]);
}

#[test]
fn a_pod_that_cannot_send_is_its_row() {
    assert_one(&faulty(&[blocks(|c| c.src == "y/b")]), "source-pod", &["y/b"]);
}

#[test]
fn a_node_whose_pods_cannot_send_is_the_node() {
    assert_one(&faulty(&[blocks(|c| on(c.src_node.as_ref(), 2))]), "source-node", &["node2", "x/c, y/c and z/c"]);
}

#[test]
fn an_unreachable_pod_is_its_column() {
    assert_one(&faulty(&[blocks(|c| c.dst == "z/a")]), "target", &["z/a"]);
}

#[test]
fn an_unreachable_node_is_the_node() {
    assert_one(&faulty(&[blocks(|c| on(c.dst_node.as_ref(), 1))]), "target-node", &["node1"]);
}

#[test]
fn without_nodes_a_dead_node_is_its_pods() {
    let mut steps = faulty(&[blocks(|c| on(c.src_node.as_ref(), 2))]);
    for c in steps.iter_mut().flat_map(|s| &mut s.cells) {
        (c.src_node, c.dst_node) = (None, None);
    }
    let findings = diagnose(&steps);
    let kinds: Vec<&str> = findings.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["source-pod"; 3], "{findings:#?}");
    assert!(findings.iter().all(|f| !f.summary.contains("node")), "{findings:#?}");
}

#[test]
fn all_blocked_and_all_allowed() {
    assert_one(&faulty(&[blocks(|_| true)]), "all-blocked", &["positive controls failed"]);
    let leak: Fault = Box::new(|c| (c.expected == Expected::Deny).then_some(Observed::Allow));
    assert_one(&faulty(&[leak]), "all-allowed", &["negative controls failed"]);
}

#[test]
fn a_single_wrong_cell_is_not_over_interpreted() {
    let f = assert_one(
        &faulty(&[blocks(|c| c.src == "x/a" && c.dst == "z/b" && c.protocol == Protocol::Tcp)]),
        "unexplained",
        &["x/a -> z/b 80/TCP (expected allow, observed deny)"],
    );
    assert!(f.summary.ends_with("(1 cell)"), "{}", f.summary);
}

#[test]
fn a_row_probed_once_is_not_a_source_finding() {
    let mut steps = suite();
    steps[0].cells.push(Cell { observed: Observed::Deny, ..cell("w/a", "x/b", Protocol::Tcp, TargetKind::Pod, Some("x/b"), Some(1)) });
    assert_one(&steps, "unexplained", &["w/a -> x/b"]);
}

#[test]
fn a_node_with_one_source_is_that_pod() {
    let mut steps = suite();
    let lone = |dst: &str, n| Cell { src_node: Some(node(3)), ..cell("w/a", dst, Protocol::Tcp, TargetKind::Pod, Some(dst), Some(n)) };
    steps[0].cells.extend([lone("x/a", 0), lone("x/b", 1), lone("z/c", 2)]);
    inject(&mut steps, &[blocks(|c| c.src == "w/a")]);
    assert_one(&steps, "source-pod", &["w/a"]);
}

#[test]
fn inconclusive_cells_are_weak_symptoms_of_the_same_fault() {
    let mut steps = faulty(&[drop_udp(1)]);
    for c in steps[0].cells.iter_mut().filter(|c| c.src == "x/b" && c.comparison() == Comparison::Wrong).take(3) {
        c.observed = Observed::Inconclusive;
    }
    assert_one(&steps, "protocol", &["node1", "3 inconclusive"]);
}

#[test]
fn probe_errors_name_the_sources_and_are_no_fault() {
    let mut steps = suite();
    for c in steps.iter_mut().flat_map(|s| &mut s.cells).filter(|c| c.src == "z/a" || (c.src == "x/c" && c.target == TargetKind::NodePort)) {
        c.observed = Observed::Error;
    }
    let findings = diagnose(&steps);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].kind, "probe-errors");
    assert!(findings[0].summary.starts_with("the probes from x/c and z/a could not run"), "{}", findings[0].summary);
    assert_eq!(findings[0].cells.iter().copied().collect::<BTreeSet<_>>(), cells_where(&steps, |c| c == Comparison::Error));
}

#[test]
fn several_faults_are_one_finding_each() {
    type Expectation<'a> = (Vec<Fault>, &'a [(&'a str, &'a str)]);
    let cases: [Expectation; 3] = [
        (vec![blocks(|c| c.src == "x/a"), stale_udp(2)], &[("source-pod", "x/a"), ("stale-udp", "pods on node2 to")]),
        (
            vec![cross_node(0, Some(1)), drop_udp(2), ignore_policy(1)],
            &[("protocol", "node2"), ("cross-node", "for node0<->node1,"), ("policy-ignored", "node1")],
        ),
        (vec![drop_services(0), break_hairpin(2), stale_udp(1)], &[("service-proxy", "node0"), ("hairpin", "on node2:"), ("stale-udp", "pods on node1 to")]),
    ];
    for (faults, expected) in cases {
        let steps = faulty(&faults);
        let findings = diagnose(&steps);
        let found: Vec<(&str, bool)> = findings.iter().zip(expected).map(|(f, (_, word))| (f.kind.as_str(), f.summary.contains(word))).collect();
        let wanted: Vec<(&str, bool)> = expected.iter().map(|&(kind, _)| (kind, true)).collect();
        assert_eq!(found, wanted, "{findings:#?}");
        assert_eq!(findings.len(), expected.len(), "{findings:#?}");
        assert_eq!(findings.iter().flat_map(|f| f.cells.iter().copied()).collect::<BTreeSet<_>>(), symptoms(&steps));
    }
}

#[test]
fn drop_ipv6_beside_other_faults_on_a_dual_run() {
    let steps = dual_faulty(&[cross_node(0, Some(1)), drop_ipv6(2), drop_udp(1)]);
    let findings = diagnose(&steps);
    let found: Vec<&str> = findings.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(found, ["family", "cross-node", "protocol"], "{findings:#?}");
    assert!(findings[0].summary.starts_with("IPv6 is broken on node2:"), "{}", findings[0].summary);
    assert_eq!(findings.iter().flat_map(|f| f.cells.iter().copied()).collect::<BTreeSet<_>>(), symptoms(&steps));
}

/// The faults the property tests combine: (kind, node, peer).
fn lab_fault(kind: usize, n: usize, peer: usize) -> Fault {
    match kind {
        0 => cross_node(n, Some(peer).filter(|&p| p != n)),
        1 => drop_udp(n),
        2 => ignore_policy(n),
        3 => drop_services(n),
        4 => break_hairpin(n),
        5 => stale_udp(n),
        _ => drop_ipv6(n),
    }
}

const OBSERVED: [Observed; 4] = [Observed::Allow, Observed::Deny, Observed::Inconclusive, Observed::Error];

/// Every symptom and error is listed, by no finding but `probe-errors` for errors; findings list
/// nothing else, each cell once, in order.
fn assert_sound(steps: &[StepReport]) {
    let findings = diagnose(steps);
    let listed: BTreeSet<(usize, usize)> = findings.iter().flat_map(|f| f.cells.iter().copied()).collect();
    let errors = cells_where(steps, |c| c == Comparison::Error);
    let mut expected = symptoms(steps);
    expected.extend(&errors);
    assert_eq!(listed, expected, "{findings:#?}");
    for f in &findings {
        assert!(f.cells.windows(2).all(|w| w[0] < w[1]), "{f:#?}");
        let listed_errors = f.cells.iter().filter(|r| errors.contains(r)).count();
        assert_eq!(listed_errors == f.cells.len(), f.kind == "probe-errors", "{f:#?}");
    }
}

proptest! {
    #[test]
    fn lab_faults_and_noise_are_all_accounted_for(
        dual in any::<bool>(),
        faults in prop::collection::vec((0..7usize, 0..3usize, 0..3usize), 0..4),
        noise in prop::collection::vec((any::<prop::sample::Index>(), 0..4usize), 0..8),
        unknown_nodes in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let faults: Vec<Fault> = faults.into_iter().map(|(k, n, p)| lab_fault(k, n, p)).collect();
        let mut steps = if dual { dual_faulty(&faults) } else { faulty(&faults) };
        let services = steps.len() - 1;
        let (pod_cells, service_cells) = (steps[0].cells.len(), steps[services].cells.len());
        for (i, o) in noise {
            steps[services].cells[i.index(service_cells)].observed = OBSERVED[o];
        }
        for i in unknown_nodes {
            steps[0].cells[i.index(pod_cells)].src_node = None;
        }
        assert_sound(&steps);
    }

    #[test]
    fn any_observations_are_accounted_for(observed in prop::collection::vec(0..4usize, 1..400)) {
        let mut steps = suite();
        for (c, o) in steps.iter_mut().flat_map(|s| &mut s.cells).zip(observed) {
            c.observed = OBSERVED[o];
        }
        assert_sound(&steps);
    }
}

#[test]
fn only_a_protocol_needs_another_protocol_probed() {
    let mut steps = suite();
    for step in &mut steps {
        step.cells.retain(|c| c.protocol == Protocol::Tcp);
    }
    inject(&mut steps, &[blocks(|c| on(c.src_node.as_ref(), 1) || on(c.dst_node.as_ref(), 1))]);
    let findings = diagnose(&steps);
    let kinds: Vec<&str> = findings.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["target-node", "source-node"], "{findings:#?}");
}
