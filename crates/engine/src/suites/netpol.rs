//! `netpol`: the behaviours the upstream Kubernetes NetworkPolicy e2e suite checks, written
//! from the NetworkPolicy documentation (concepts/services-networking/network-policies).
//! Every case probes the x/y/z × a/b/c world; the oracle says what to expect.

use netmatrix_cluster::ObjectKind;
use netmatrix_model::{Cluster, IpFamily, Labels, PodKey, Protocol};
use serde_json::{Value, json};

use super::policy;
use crate::case::{Action, Case, ProbeSpec, Requirement, Step};

const TCP: [(u16, Protocol); 2] = [(80, Protocol::Tcp), (81, Protocol::Tcp)];

fn tcp() -> ProbeSpec {
    ProbeSpec::pods(&TCP)
}

fn apply(policies: Vec<Value>) -> Vec<Action> {
    vec![Action::Apply(policies)]
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn case(name: &str, feature: &str, steps: Vec<Step>) -> Case {
    Case::new(format!("netpol/{name}"), &[("type", "netpol"), ("feature", feature)], steps)
}

/// One step that applies `policies` and probes TCP 80 and 81.
fn single(name: &str, feature: &str, what: &str, policies: Vec<Value>) -> Case {
    case(name, feature, vec![Step::new(what, apply(policies), tcp())])
}

/// Ingress to x/a from `from` on `ports` (every port when empty).
fn ingress_to_a(name: &str, from: Value, ports: Value) -> Value {
    let mut rule = json!({"from": from});
    if ports.as_array().is_some_and(|p| !p.is_empty()) {
        rule["ports"] = ports;
    }
    policy("x", name, json!({"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [rule]}))
}

fn deny_ingress(ns: &str) -> Value {
    policy(ns, "deny-ingress", json!({"podSelector": {}, "policyTypes": ["Ingress"]}))
}

/// "allow from b" to x/a, used by the update cases.
fn a_from(pod: &str) -> Value {
    ingress_to_a("allow-a", json!([{"podSelector": {"matchLabels": {"pod": pod}}}]), json!([]))
}

pub fn cases() -> Vec<Case> {
    vec![
        single("deny-all-ingress", "default-deny", "x isolated for ingress, no rule", vec![deny_ingress("x")]),
        single(
            "deny-all-egress",
            "default-deny",
            "x isolated for egress, no rule",
            vec![policy("x", "deny-egress", json!({"podSelector": {}, "policyTypes": ["Egress"]}))],
        ),
        single(
            "deny-all",
            "default-deny",
            "x isolated both ways",
            vec![policy("x", "deny-all", json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))],
        ),
        // "Both the egress policy on the source pod and the ingress policy on the destination pod
        // need to allow the connection" (Network Policies), also when one policy is both.
        single(
            "egress-and-ingress-in-one-policy",
            "ingress-and-egress",
            "x isolated both ways by one policy: egress only to TCP 81, ingress from anyone on TCP",
            vec![policy(
                "x",
                "both",
                json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": [{"ports": [{"port": 81, "protocol": "TCP"}]}], "ingress": [{"ports": [{"protocol": "TCP"}]}]}),
            )],
        ),
        case(
            "allow-all-ingress-stacked",
            "stacked",
            vec![
                Step::new("deny ingress to x and y", apply(vec![deny_ingress("x"), deny_ingress("y")]), tcp()),
                Step::new(
                    "a second policy allows all ingress to x: policies are additive",
                    apply(vec![policy("x", "allow-all", json!({"podSelector": {}, "ingress": [{}]}))]),
                    tcp(),
                ),
            ],
        ),
        single("pod-selector", "pod-selector", "x/a from pods b of its own namespace", vec![a_from("b")]),
        single(
            "namespace-selector",
            "namespace-selector",
            "x/a from every pod of namespace y",
            vec![ingress_to_a("from-y", json!([{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]), json!([]))],
        ),
        single(
            "namespace-and-pod-selector",
            "selector-and",
            "x/a from pods b of namespace y (both selectors in one peer)",
            vec![ingress_to_a(
                "from-y-b",
                json!([{"namespaceSelector": {"matchLabels": {"ns": "y"}}, "podSelector": {"matchLabels": {"pod": "b"}}}]),
                json!([]),
            )],
        ),
        single(
            "namespace-or-pod-selector",
            "selector-or",
            "x/a from namespace y or from pods b of x (two peers)",
            vec![ingress_to_a(
                "from-y-or-b",
                json!([{"namespaceSelector": {"matchLabels": {"ns": "y"}}}, {"podSelector": {"matchLabels": {"pod": "b"}}}]),
                json!([]),
            )],
        ),
        single(
            "match-expressions",
            "match-expressions",
            "x/a from pods a or b of namespaces other than x",
            vec![ingress_to_a(
                "expressions",
                json!([{"namespaceSelector": {"matchExpressions": [{"key": "ns", "operator": "NotIn", "values": ["x"]}]}, "podSelector": {"matchExpressions": [{"key": "pod", "operator": "In", "values": ["a", "b"]}]}}]),
                json!([]),
            )],
        ),
        single(
            "all-namespaces",
            "namespace-selector",
            "x/a from pods b of every namespace (empty namespaceSelector)",
            vec![ingress_to_a("from-all-b", json!([{"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "b"}}}]), json!([]))],
        ),
        single(
            "port-number",
            "ports",
            "x/a from anywhere on TCP 81 only",
            vec![ingress_to_a("port-81", json!([{"namespaceSelector": {}}]), json!([{"port": 81, "protocol": "TCP"}]))],
        ),
        single(
            "named-port",
            "named-port",
            "x/a from anywhere on its port named serve-81-tcp",
            vec![ingress_to_a("named-81", json!([{"namespaceSelector": {}}]), json!([{"port": "serve-81-tcp"}]))],
        ),
        single(
            "port-range",
            "end-port",
            "x/a from anywhere on TCP 81-90 (endPort)",
            vec![ingress_to_a("range", json!([{"namespaceSelector": {}}]), json!([{"port": 81, "endPort": 90, "protocol": "TCP"}]))],
        ),
        case(
            "protocol-udp",
            "protocol",
            vec![Step::new(
                "x/a from anywhere on UDP 80 only",
                apply(vec![ingress_to_a("udp-80", json!([{"namespaceSelector": {}}]), json!([{"port": 80, "protocol": "UDP"}]))]),
                ProbeSpec::pods(&[(80, Protocol::Tcp), (80, Protocol::Udp)]),
            )],
        ),
        case(
            "protocol-sctp",
            "protocol",
            vec![Step::new(
                "x/a from anywhere on SCTP 80 only",
                apply(vec![ingress_to_a("sctp-80", json!([{"namespaceSelector": {}}]), json!([{"port": 80, "protocol": "SCTP"}]))]),
                ProbeSpec::pods(&[(80, Protocol::Tcp), (80, Protocol::Sctp)]),
            )],
        )
        .requires(Requirement::Sctp),
        single(
            "egress-to-namespace",
            "egress",
            "x may send only to namespace y",
            vec![policy(
                "x",
                "to-y",
                json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}),
            )],
        ),
        single(
            "egress-port",
            "egress",
            "x may send only to TCP 80",
            vec![policy("x", "to-80", json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 80, "protocol": "TCP"}]}]}))],
        ),
        single(
            "ingress-and-egress",
            "both-directions",
            "x/a may send only to y, and y/b accepts only from x: a connection needs both",
            vec![
                policy(
                    "x",
                    "a-to-y",
                    json!({"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}),
                ),
                policy(
                    "y",
                    "b-from-x",
                    json!({"podSelector": {"matchLabels": {"pod": "b"}}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "x"}}}]}]}),
                ),
            ],
        ),
        single(
            "deny-all-namespaces-allow-within",
            "default-deny",
            "every namespace isolated for ingress, pods of a namespace allowed among themselves",
            ["x", "y", "z"]
                .iter()
                .flat_map(|ns| [deny_ingress(ns), policy(ns, "within", json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}))])
                .collect(),
        ),
        case(
            "ipblock-except",
            "ipblock",
            vec![Step::new("x/a from every pod address but y/b's (ipBlock with except)", vec![Action::ApplyFromModel(ipblock_except)], tcp())],
        ),
        case(
            "egress-ipblock",
            "ipblock",
            vec![Step::new("x may send only to the addresses of z's pods (ipBlock /32s)", vec![Action::ApplyFromModel(egress_to_z_addresses)], tcp())],
        ),
        case(
            "ipblock-ipv6",
            "ipblock",
            vec![Step::new(
                "x/a from IPv6 addresses only, but y/b's (an IPv6 ipBlock with except: IPv4 is denied)",
                vec![Action::ApplyFromModel(ipv6_but_y_b)],
                tcp(),
            )],
        ),
        case(
            "update-policy",
            "update",
            vec![
                Step::new("x/a from pods b", apply(vec![a_from("b")]), tcp()),
                Step::new("the same policy now allows pods c", apply(vec![a_from("c")]), tcp()),
            ],
        ),
        case(
            "delete-policy",
            "update",
            vec![
                Step::new("deny ingress to x and y", apply(vec![deny_ingress("x"), deny_ingress("y")]), tcp()),
                Step::new(
                    "x's policy deleted: x open again, y still isolated",
                    vec![Action::Delete { kind: ObjectKind::NetworkPolicy, namespace: "x".into(), name: "deny-ingress".into() }],
                    tcp(),
                ),
            ],
        ),
        case(
            "relabel-namespace",
            "namespace-labels",
            vec![
                Step::new(
                    "x/a from namespaces labelled team=blue (none yet)",
                    apply(vec![ingress_to_a("from-blue", json!([{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]), json!([]))]),
                    tcp(),
                ),
                Step::new(
                    "namespace y labelled team=blue",
                    vec![Action::SetNamespaceLabels { namespace: "y".into(), labels: labels(&[("ns", "y"), ("team", "blue")]) }],
                    tcp(),
                ),
                Step::new("the label removed again", vec![Action::SetNamespaceLabels { namespace: "y".into(), labels: labels(&[("ns", "y")]) }], tcp()),
            ],
        ),
        case(
            "relabel-pod",
            "pod-labels",
            vec![
                Step::new("x/a from pods b", apply(vec![a_from("b")]), tcp()),
                Step::new(
                    "x/c relabelled pod=b",
                    vec![Action::SetPodLabels { pod: PodKey::new("x", "c"), labels: labels(&[("pod", "b"), crate::world::WORLD_LABEL]) }],
                    tcp(),
                ),
            ],
        ),
        case(
            "recreate-pod",
            "pod-churn",
            vec![
                Step::new("x/a from pods b", apply(vec![a_from("b")]), tcp()),
                Step::new(
                    "x/b and x/a recreated (new addresses): the policy follows the labels",
                    vec![Action::RecreatePod(PodKey::new("x", "b")), Action::RecreatePod(PodKey::new("x", "a"))],
                    tcp(),
                ),
            ],
        ),
    ]
}

/// The pod's addresses of `family` as host CIDRs (`/32`, `/128`).
fn pod_addresses(model: &Cluster, namespace: &str, name: &str, family: IpFamily) -> Vec<String> {
    let pod = model.pods.iter().find(|p| p.namespace == namespace && p.name == name);
    let ips = pod.into_iter().flat_map(|p| &p.ips).filter(|ip| IpFamily::of(ip) == family);
    ips.map(|ip| format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 })).collect()
}

/// Every address of each family the pods have: one ipBlock per family, but y/b's address.
fn ipblock_except(model: &Cluster) -> Vec<Value> {
    let mut families = model.families();
    if families.is_empty() {
        families.push(IpFamily::IPv4);
    }
    let blocks: Vec<Value> = families
        .into_iter()
        .map(|family| {
            let cidr = if family == IpFamily::IPv4 { "0.0.0.0/0" } else { "::/0" };
            json!({"ipBlock": {"cidr": cidr, "except": pod_addresses(model, "y", "b", family)}})
        })
        .collect();
    vec![ingress_to_a("ipblock", json!(blocks), json!([]))]
}

fn ipv6_but_y_b(model: &Cluster) -> Vec<Value> {
    vec![ingress_to_a("ipblock-ipv6", json!([{"ipBlock": {"cidr": "::/0", "except": pod_addresses(model, "y", "b", IpFamily::IPv6)}}]), json!([]))]
}

fn egress_to_z_addresses(model: &Cluster) -> Vec<Value> {
    let addresses = ["a", "b", "c"].into_iter().flat_map(|p| IpFamily::BOTH.into_iter().flat_map(move |f| pod_addresses(model, "z", p, f)));
    let to: Vec<Value> = addresses.map(|cidr| json!({"ipBlock": {"cidr": cidr}})).collect();
    vec![policy("x", "to-z", json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": to}]}))]
}
