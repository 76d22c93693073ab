//! `anp`: AdminNetworkPolicy, BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1) and
//! ClusterNetworkPolicy (v1alpha2), written from the network-policy-api documentation: the admin
//! tier by priority, first matching rule, Allow and Deny final, Pass to NetworkPolicy, the
//! baseline tier only for what neither decided. The x/y/z × a/b/c world; the oracle says what
//! to expect.

use netmatrix_cluster::ObjectKind;
use netmatrix_model::{Cluster, Protocol};
use serde_json::{Value, json};

use super::policy;
use crate::case::{Action, Case, ProbeSpec, Requirement, Step};

fn tcp() -> ProbeSpec {
    ProbeSpec::pods(&[(80, Protocol::Tcp), (81, Protocol::Tcp)])
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

fn namespace(ns: &str) -> Value {
    json!({"namespaces": {"matchLabels": {"ns": ns}}})
}

/// The pods of namespace x as subject.
fn subject_x() -> Value {
    json!({"namespaces": {"matchLabels": {"ns": "x"}}})
}

fn case(name: &str, feature: &str, steps: Vec<Step>) -> Case {
    Case::new(format!("anp/{name}"), &[("type", "anp"), ("feature", feature)], steps).requires(Requirement::AdminPolicies)
}

fn single(name: &str, feature: &str, what: &str, objects: Vec<Value>) -> Case {
    case(name, feature, vec![Step::new(what, vec![Action::Apply(objects)], tcp())])
}

pub fn cases() -> Vec<Case> {
    let allow_all_in_x = policy("x", "allow-all", json!({"podSelector": {}, "ingress": [{}]}));
    let deny_all_in_x = policy("x", "deny-all", json!({"podSelector": {}, "policyTypes": ["Ingress"]}));
    vec![
        single(
            "deny-beats-networkpolicy",
            "action-deny",
            "ANP denies y -> x; a NetworkPolicy in x allows everything: Deny is final",
            vec![anp("deny-y", 10, json!({"subject": subject_x(), "ingress": [{"action": "Deny", "from": [namespace("y")]}]})), allow_all_in_x],
        ),
        single(
            "allow-beats-networkpolicy",
            "action-allow",
            "ANP allows y -> x; a NetworkPolicy isolates x: Allow is final",
            vec![anp("allow-y", 10, json!({"subject": subject_x(), "ingress": [{"action": "Allow", "from": [namespace("y")]}]})), deny_all_in_x.clone()],
        ),
        single(
            "pass-to-networkpolicy",
            "action-pass",
            "ANP passes y -> x; the NetworkPolicy of x (pods b of x only) decides",
            vec![
                anp("pass-y", 10, json!({"subject": subject_x(), "ingress": [{"action": "Pass", "from": [namespace("y")]}]})),
                policy("x", "from-b", json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]})),
            ],
        ),
        single(
            "pass-to-baseline",
            "action-pass",
            "ANP passes y -> x, no NetworkPolicy: the baseline denies ingress to x",
            vec![
                anp("pass-y", 10, json!({"subject": subject_x(), "ingress": [{"action": "Pass", "from": [namespace("y")]}]})),
                banp(json!({"subject": subject_x(), "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]})),
            ],
        ),
        single(
            "baseline-only-when-undecided",
            "baseline",
            "the baseline denies ingress to x, a NetworkPolicy of x allows pods b: NetworkPolicy decides",
            vec![
                banp(json!({"subject": subject_x(), "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]})),
                policy(
                    "x",
                    "from-b",
                    json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "b"}}}]}]}),
                ),
            ],
        ),
        single(
            "lower-priority-number-wins",
            "priority",
            "priority 1 allows y -> x, priority 2 denies every namespace -> x",
            vec![
                anp("allow-y", 1, json!({"subject": subject_x(), "ingress": [{"action": "Allow", "from": [namespace("y")]}]})),
                anp("deny-all", 2, json!({"subject": subject_x(), "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]})),
            ],
        ),
        single(
            "first-matching-rule-wins",
            "rule-order",
            "one ANP: deny pods a of any namespace, then allow every namespace, to x",
            vec![
                anp(
                    "ordered",
                    5,
                    json!({"subject": subject_x(), "ingress": [
                        {"action": "Deny", "from": [{"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "a"}}}}]},
                        {"action": "Allow", "from": [{"namespaces": {}}]}
                    ]}),
                ),
                deny_all_in_x,
            ],
        ),
        single(
            "ports",
            "ports",
            "ANP denies TCP 81 and the named port serve-80-tcp from z to x",
            vec![anp(
                "ports",
                5,
                json!({"subject": subject_x(), "ingress": [
                    {"action": "Deny", "from": [{"namespaces": {}}], "ports": [{"portNumber": {"port": 81, "protocol": "TCP"}}]},
                    {"action": "Deny", "from": [namespace("z")], "ports": [{"namedPort": "serve-80-tcp"}]}
                ]}),
            )],
        ),
        single(
            "port-range",
            "ports",
            "ANP denies TCP 81-90 from every namespace to pods a",
            vec![anp(
                "range",
                5,
                json!({"subject": {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "a"}}}}, "ingress": [
                    {"action": "Deny", "from": [{"namespaces": {}}], "ports": [{"portRange": {"start": 81, "end": 90, "protocol": "TCP"}}]}
                ]}),
            )],
        ),
        single(
            "egress-deny",
            "egress",
            "ANP denies egress from x to z",
            vec![anp("x-not-z", 5, json!({"subject": subject_x(), "egress": [{"action": "Deny", "to": [namespace("z")]}]}))],
        ),
        case(
            "egress-networks",
            "networks",
            vec![Step::new("ANP denies egress from x to the addresses of z's pods (networks)", vec![Action::ApplyFromModel(deny_networks_of_z)], tcp())],
        ),
        single(
            "cluster-network-policy-tiers",
            "cluster-network-policy",
            "ClusterNetworkPolicy: Admin accepts y -> x on TCP 80, Baseline denies every namespace -> x",
            vec![
                cnp(
                    "accept-y-80",
                    "Admin",
                    1,
                    json!({"subject": subject_x(), "ingress": [{"action": "Accept", "from": [namespace("y")], "protocols": [{"tcp": {"destinationPort": {"number": 80}}}]}]}),
                ),
                cnp("deny-rest", "Baseline", 0, json!({"subject": subject_x(), "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]})),
            ],
        ),
        case(
            "delete",
            "update",
            vec![
                Step::new(
                    "ANP denies y -> x",
                    vec![Action::Apply(vec![anp("deny-y", 10, json!({"subject": subject_x(), "ingress": [{"action": "Deny", "from": [namespace("y")]}]}))])],
                    tcp(),
                ),
                Step::new(
                    "deleted, and a baseline denies z -> x instead",
                    vec![
                        Action::Delete { kind: ObjectKind::AdminNetworkPolicy, namespace: String::new(), name: "deny-y".into() },
                        Action::Apply(vec![banp(json!({"subject": subject_x(), "ingress": [{"action": "Deny", "from": [namespace("z")]}]}))]),
                    ],
                    tcp(),
                ),
            ],
        ),
    ]
}

fn deny_networks_of_z(model: &Cluster) -> Vec<Value> {
    let networks: Vec<String> = model.pods.iter().filter(|p| p.namespace == "z").filter_map(|p| p.ips.first()).map(|ip| format!("{ip}/32")).collect();
    vec![anp("x-not-z-addresses", 5, json!({"subject": subject_x(), "egress": [{"action": "Deny", "to": [{"networks": networks}]}]}))]
}
