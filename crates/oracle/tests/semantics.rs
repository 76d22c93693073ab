//! One test per NetworkPolicy rule, each quoting the Kubernetes documentation it checks
//! ("Network Policies" concept page and the NetworkPolicy API reference).

use std::net::IpAddr;

use netmatrix_model::{Cluster, Direction, Protocol, parse_str};
use netmatrix_oracle::explain::{Verdict, explain, find_endpoint};
use netmatrix_oracle::{ConnSet, Options, Reachability};

const POD_IPS: Options = Options { ipblocks_match_pods: true };
const EXTERNAL_ONLY: Options = Options { ipblocks_match_pods: false };

/// Namespaces x (team=x) and z (team=z); pods x/a (app=a), x/b (app=b), z/a (app=a), z/c (app=c,
/// with IP 10.0.0.3); named port "serve": 80 on x/a, 81 on x/b, UDP 80 on z/a.
const WORLD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: x}}
---
apiVersion: v1
kind: Namespace
metadata: {name: z, labels: {team: z}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {containers: [{ports: [{name: serve, containerPort: 80}]}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
spec: {containers: [{ports: [{name: serve, containerPort: 81}]}]}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: z, labels: {app: a}}
spec: {containers: [{ports: [{name: serve, containerPort: 80, protocol: UDP}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: z, labels: {app: c}}
status: {podIP: 10.0.0.3}
"#;

struct World {
    cluster: Cluster,
    reach: Reachability,
}

fn world(policies: &str, options: Options) -> World {
    let cluster = parse_str("test.yaml", &format!("{WORLD}\n---\n{policies}")).unwrap_or_else(|e| panic!("{e}"));
    let reach = Reachability::compute(&cluster, options);
    World { cluster, reach }
}

impl World {
    fn class(&self, name: &str) -> usize {
        let (ns, pod) = name.split_once('/').unwrap();
        let i = self.cluster.pods.iter().position(|p| p.namespace == ns && p.name == pod).unwrap_or_else(|| panic!("no pod {name}"));
        self.reach.pod_class[i]
    }

    fn conn(&mut self, src: &str, dst: &str) -> ConnSet {
        let (s, d) = (self.class(src), self.class(dst));
        let id = self.reach.pair(s, d);
        self.reach.conn(id).clone()
    }

    fn allows(&mut self, src: &str, dst: &str, port: u16, protocol: Protocol) -> bool {
        self.conn(src, dst).allows(protocol, port)
    }

    fn tcp(&mut self, src: &str, dst: &str, port: u16) -> bool {
        self.allows(src, dst, port, Protocol::Tcp)
    }

    /// What an external address may send to `dst` (ingress) or receive from `src` (egress).
    fn external(&self, direction: Direction, pod: &str, ip: &str) -> ConnSet {
        let ip: IpAddr = ip.parse().unwrap();
        let range = self.reach.ranges.iter().position(|r| r.contains(&ip)).expect("the ranges cover the address space");
        self.reach.conn(self.reach.allowed_external(direction, self.class(pod), range)).clone()
    }
}

fn np(name: &str, ns: &str, spec: &str) -> String {
    format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}\n---\n")
}

#[test]
fn without_policies_everything_is_allowed() {
    // "By default, a pod is non-isolated for egress; all outbound connections are allowed."
    // "By default, a pod is non-isolated for ingress; all inbound connections are allowed."
    let mut w = world("", POD_IPS);
    assert!(w.conn("x/a", "z/c").is_all());
    assert!(w.external(Direction::Ingress, "x/a", "8.8.8.8").is_all());
    assert!(w.external(Direction::Egress, "x/a", "8.8.8.8").is_all());
}

#[test]
fn selected_pod_is_isolated_and_others_are_not() {
    // "a pod is isolated for ingress if there is any NetworkPolicy that both selects the pod and
    // has "Ingress" in its policyTypes"
    let mut w = world(&np("deny", "x", "  podSelector: {matchLabels: {app: a}}\n  policyTypes: [Ingress]"), POD_IPS);
    assert!(!w.tcp("x/b", "x/a", 80));
    assert!(w.external(Direction::Ingress, "x/a", "8.8.8.8").is_empty());
    assert!(w.tcp("x/a", "x/b", 80), "x/b is not selected: still open");
    assert!(w.tcp("x/b", "z/a", 80), "policies apply in their own namespace only");
    assert!(w.tcp("x/a", "z/c", 80), "isolation for ingress says nothing about egress");
}

#[test]
fn policies_are_additive() {
    // "Network policies do not conflict; they are additive. If any policy or policies apply to a
    // given pod for a given direction, the connections allowed in that direction from that pod is
    // the union of what the applicable policies allow."
    let policies =
        np("from-b", "x", "  podSelector: {matchLabels: {app: a}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: b}}}], ports: [{port: 80}]}]")
            + &np(
                "from-y",
                "x",
                "  podSelector: {matchLabels: {app: a}}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {team: z}}}], ports: [{port: 443}]}]",
            );
    let mut w = world(&policies, POD_IPS);
    assert_eq!(w.conn("x/b", "x/a").to_string(), "TCP 80");
    assert_eq!(w.conn("z/c", "x/a").to_string(), "TCP 443");
}

#[test]
fn both_egress_and_ingress_must_allow() {
    // "For a connection from a source pod to a destination pod to be allowed, both the egress
    // policy on the source pod and the ingress policy on the destination pod need to allow the
    // connection. If either side does not allow the connection, it will not happen."
    let policies = np("egress-b", "x", "  podSelector: {matchLabels: {app: b}}\n  egress: [{ports: [{port: 80}, {port: 81}]}]")
        + &np("ingress-a", "x", "  podSelector: {matchLabels: {app: a}}\n  ingress: [{ports: [{port: 81}, {port: 82}]}]");
    let mut w = world(&policies, POD_IPS);
    assert_eq!(w.conn("x/b", "x/a").to_string(), "TCP 81");
}

#[test]
fn pod_selector_peer_is_the_policys_namespace() {
    // "podSelector: This selects particular Pods in the same namespace as the NetworkPolicy which
    // should be allowed as ingress sources or egress destinations."
    let mut w = world(&np("p", "x", "  podSelector: {matchLabels: {app: b}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: a}}}]}]"), POD_IPS);
    assert!(w.tcp("x/a", "x/b", 80));
    assert!(!w.tcp("z/a", "x/b", 80), "z/a has the labels but another namespace");
}

#[test]
fn namespace_selector_peer_takes_every_pod_of_the_namespaces() {
    // "namespaceSelector: This selects particular namespaces for which all Pods should be allowed
    // as ingress sources or egress destinations."
    let mut w = world(&np("p", "x", "  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {team: z}}}]}]"), POD_IPS);
    assert!(w.tcp("z/a", "x/b", 80) && w.tcp("z/c", "x/b", 80));
    assert!(!w.tcp("x/a", "x/b", 80), "its own namespace is not selected");
}

#[test]
fn both_selectors_in_one_peer_are_anded_and_peers_are_ored() {
    // "namespaceSelector and podSelector: A single to/from entry that specifies both
    // namespaceSelector and podSelector selects particular Pods within particular namespaces."
    let and = np("p", "x", "  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {team: z}}, podSelector: {matchLabels: {app: a}}}]}]");
    let mut w = world(&and, POD_IPS);
    assert!(w.tcp("z/a", "x/b", 80));
    assert!(!w.tcp("z/c", "x/b", 80), "right namespace, wrong labels");
    assert!(!w.tcp("x/a", "x/b", 80), "right labels, wrong namespace");
    // "contains two elements in the from array, and allows connections from Pods in the local
    // Namespace with the label role=client, or from any Pod in any namespace with the label user=alice."
    let or = np("p", "x", "  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {team: z}}}, {podSelector: {matchLabels: {app: a}}}]}]");
    let mut w = world(&or, POD_IPS);
    assert!(w.tcp("z/c", "x/b", 80) && w.tcp("x/a", "x/b", 80));
}

#[test]
fn empty_selectors_select_everything_in_scope() {
    // "An empty podSelector selects all pods in the namespace." An empty namespaceSelector selects
    // all namespaces.
    let mut w = world(&np("p", "x", "  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {}}]}]"), POD_IPS);
    assert!(w.tcp("z/c", "x/a", 80) && w.tcp("x/b", "x/a", 80));
    assert!(w.external(Direction::Ingress, "x/a", "8.8.8.8").is_empty(), "selectors never match addresses outside the cluster");
}

#[test]
fn match_expressions_in_a_policy() {
    // "matchExpressions is a list of label selector requirements. The requirements are ANDed."
    let mut w = world(&np("p", "z", "  podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [a]}]}\n  policyTypes: [Ingress]"), POD_IPS);
    assert!(!w.tcp("x/a", "z/c", 80), "z/c is selected (app=c is not in [a]): isolated");
    assert!(w.tcp("x/a", "z/a", 80), "z/a is not selected");
}

#[test]
fn ip_block_with_except() {
    // "ipBlock: This selects particular IP CIDR ranges to allow as ingress sources or egress
    // destinations." "except is a slice of CIDRs that should not be included within an IPBlock"
    let policy = np("p", "x", "  podSelector: {matchLabels: {app: a}}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.2/32]}}]}]");
    let mut w = world(&policy, POD_IPS);
    assert!(w.external(Direction::Ingress, "x/a", "10.9.9.9").is_all());
    assert!(w.external(Direction::Ingress, "x/a", "10.0.0.2").is_empty());
    assert!(w.external(Direction::Ingress, "x/a", "11.0.0.1").is_empty());
    // Dataplanes match pod IPs against ipBlocks (DESIGN.md): z/c (10.0.0.3) is in, x/b (10.0.0.2)
    // is excepted, z/a has no known IP and so matches no ipBlock.
    assert!(w.tcp("z/c", "x/a", 80));
    assert!(!w.tcp("x/b", "x/a", 80));
    assert!(!w.tcp("z/a", "x/a", 80));
    let mut w = world(&policy, EXTERNAL_ONLY);
    assert!(!w.tcp("z/c", "x/a", 80), "--ipblocks-external-only: ipBlocks never select pods");
}

#[test]
fn ipv6_ip_blocks() {
    let mut w = world(&np("p", "x", "  podSelector: {}\n  policyTypes: [Egress]\n  egress: [{to: [{ipBlock: {cidr: 'fd00::/8'}}]}]"), POD_IPS);
    assert!(w.external(Direction::Egress, "x/a", "fd00::1").is_all());
    assert!(w.external(Direction::Egress, "x/a", "fe80::1").is_empty());
    assert!(w.external(Direction::Egress, "x/a", "10.0.0.9").is_empty());
    assert!(!w.tcp("x/a", "z/c", 80));
}

#[test]
fn named_ports_resolve_per_destination_pod_and_protocol() {
    // "port: The port on the given protocol. This can either be a numerical or named port on a pod."
    let mut w = world(&np("p", "x", "  podSelector: {}\n  ingress: [{ports: [{port: serve}]}]"), POD_IPS);
    assert_eq!(w.conn("z/c", "x/a").to_string(), "TCP 80");
    assert_eq!(w.conn("z/c", "x/b").to_string(), "TCP 81", "the same name means 81 on x/b");
    // Egress: the named port is the destination's, whichever pod the policy selects.
    let mut w = world(&np("p", "z", "  podSelector: {matchLabels: {app: c}}\n  egress: [{ports: [{port: serve, protocol: UDP}]}]"), POD_IPS);
    assert_eq!(w.conn("z/c", "z/a").to_string(), "UDP 80");
    assert!(w.conn("z/c", "x/a").is_empty(), "x/a's serve port is TCP, the rule asks for UDP");
    assert!(w.external(Direction::Egress, "z/c", "8.8.8.8").is_empty(), "addresses have no named ports");
}

#[test]
fn port_ranges_and_protocols() {
    // "endPort indicates that the range of ports from port to endPort if set, inclusive, should be
    // allowed by the policy." "protocol ... If not specified, this field defaults to TCP."
    let mut w =
        world(&np("p", "x", "  podSelector: {}\n  ingress: [{ports: [{port: 8000, endPort: 8080}, {port: 53, protocol: UDP}, {protocol: SCTP}]}]"), POD_IPS);
    assert_eq!(w.conn("z/c", "x/a").to_string(), "SCTP 1-65535,TCP 8000-8080,UDP 53");
    assert!(w.allows("z/c", "x/a", 8080, Protocol::Tcp) && !w.allows("z/c", "x/a", 8081, Protocol::Tcp));
    assert!(!w.allows("z/c", "x/a", 53, Protocol::Tcp));
}

#[test]
fn policy_types_default_makes_egress_only_policies_isolate_ingress_too() {
    // "all policies (whether or not they contain an ingress section) are assumed to affect ingress"
    let mut w = world(&np("p", "x", "  podSelector: {matchLabels: {app: a}}\n  egress: [{}]"), POD_IPS);
    assert!(!w.tcp("x/b", "x/a", 80), "no policyTypes: ingress is affected and nothing allows it");
    assert!(w.tcp("x/a", "x/b", 80));
}

#[test]
fn explicit_policy_types_ignore_rules_of_other_directions() {
    // "policyTypes ... If this field is not specified, it will default based on the existence of
    // ingress or egress rules": when specified, only the listed directions are affected.
    let mut w = world(
        &np("p", "x", "  podSelector: {}\n  policyTypes: [Egress]\n  ingress: [{from: [{podSelector: {matchLabels: {app: none}}}]}]\n  egress: [{}]"),
        POD_IPS,
    );
    assert!(w.tcp("z/c", "x/a", 80), "ingress rules are ignored: x/a stays open for ingress");
}

#[test]
fn empty_ingress_list_missing_field_and_empty_rule() {
    // "If this field is empty then this NetworkPolicy does not allow any traffic" (ingress: [] or
    // absent, with Ingress in policyTypes) whereas a rule `{}` has no from and no ports: "If this
    // field is empty or missing, this rule matches all sources" and "all ports".
    for spec in ["  podSelector: {}\n  ingress: []", "  podSelector: {}\n  policyTypes: [Ingress]"] {
        let mut w = world(&np("p", "x", spec), POD_IPS);
        assert!(w.conn("z/c", "x/a").is_empty(), "{spec}");
    }
    let mut w = world(&np("p", "x", "  podSelector: {}\n  ingress: [{}]"), POD_IPS);
    assert!(w.conn("z/c", "x/a").is_all());
    assert!(w.external(Direction::Ingress, "x/a", "8.8.8.8").is_all(), "a rule with no from matches addresses too");
}

#[test]
fn explain_names_policy_rule_and_peer() {
    let policies = np("deny", "x", "  podSelector: {}\n  policyTypes: [Ingress]")
        + &np(
            "allow",
            "x",
            "  podSelector: {matchLabels: {app: a}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: none}}}, {namespaceSelector: {matchLabels: {team: z}}}], ports: [{port: 80}]}]",
        );
    let w = world(&policies, POD_IPS);
    let src = find_endpoint(&w.cluster, "z/c").unwrap();
    let dst = find_endpoint(&w.cluster, "x/a[Pod]").unwrap();
    let e = explain(&w.cluster, POD_IPS, src, dst, Some((80, Protocol::Tcp)));
    assert_eq!(e.verdict, Verdict::Allowed);
    assert!(!e.egress.isolated);
    assert_eq!(e.ingress.selected_by, ["x/allow", "x/deny"]);
    let m = &e.ingress.allowing_rules[0];
    assert_eq!((m.policy.as_str(), m.rule, m.peer), ("x/allow", 0, Some(1)));
    let e = explain(&w.cluster, POD_IPS, src, dst, Some((81, Protocol::Tcp)));
    assert_eq!(e.verdict, Verdict::Denied);
    assert!(e.ingress.allowing_rules.is_empty());
    assert!(find_endpoint(&w.cluster, "x/nope").is_err());
    assert!(find_endpoint(&w.cluster, "a").is_err(), "no pod a in namespace default");
}
