//! One test per AdminNetworkPolicy / BaselineAdminNetworkPolicy (v1alpha1) and
//! ClusterNetworkPolicy (v1alpha2) rule, each quoting the API documentation of
//! kubernetes-sigs/network-policy-api it checks.

use std::net::IpAddr;

use netmatrix_model::{Cluster, Direction, Protocol, parse_str};
use netmatrix_oracle::explain::{Endpoint, explain};
use netmatrix_oracle::{ConnSet, Options, Reachability, admin};

const POD_IPS: Options = Options { ipblocks_match_pods: true };

/// Namespaces x (team=x) and z (team=z); pods x/a (app=a, named port "web" TCP 8080), x/b, z/c;
/// a hostNetwork pod x/h on node n1 (labels role=infra, address 172.18.0.2).
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
kind: Node
metadata: {name: n1, labels: {role: infra}}
status: {addresses: [{type: InternalIP, address: 172.18.0.2}]}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {containers: [{ports: [{name: web, containerPort: 8080}]}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: z, labels: {app: c}}
status: {podIP: 10.0.1.3}
---
apiVersion: v1
kind: Pod
metadata: {name: h, namespace: x, labels: {app: a}}
spec: {hostNetwork: true, nodeName: n1}
"#;

struct World {
    cluster: Cluster,
    reach: Reachability,
}

fn world(policies: &str) -> World {
    let cluster = parse_str("test.yaml", &format!("{WORLD}\n---\n{policies}")).unwrap_or_else(|e| panic!("{e}"));
    let reach = Reachability::compute(&cluster, POD_IPS);
    World { cluster, reach }
}

impl World {
    fn pod(&self, name: &str) -> usize {
        let (ns, pod) = name.split_once('/').unwrap();
        self.cluster.pods.iter().position(|p| p.namespace == ns && p.name == pod).unwrap_or_else(|| panic!("no pod {name}"))
    }

    /// The matrix's answer, checked against the explanation's (two implementations of the walk).
    fn conn(&mut self, src: &str, dst: &str) -> ConnSet {
        let (s, d) = (self.pod(src), self.pod(dst));
        let id = self.reach.pair(self.reach.pod_class[s], self.reach.pod_class[d]);
        let conn = self.reach.conn(id).clone();
        let e = explain(&self.cluster, POD_IPS, Endpoint::Pod(&self.cluster.pods[s]), Endpoint::Pod(&self.cluster.pods[d]), None);
        assert_eq!(e.allowed, conn.to_string(), "explanation of {src} => {dst} disagrees with the matrix");
        conn
    }

    fn external(&self, direction: Direction, pod: &str, ip: &str) -> ConnSet {
        let ip: IpAddr = ip.parse().unwrap();
        let range = self.reach.ranges.iter().position(|r| r.contains(&ip)).unwrap();
        self.reach.conn(self.reach.allowed_external(direction, self.reach.pod_class[self.pod(pod)], range)).clone()
    }
}

fn anp(name: &str, priority: u32, spec: &str) -> String {
    format!("apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n  priority: {priority}\n{spec}\n---\n")
}

fn banp(spec: &str) -> String {
    format!("apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {{name: default}}\nspec:\n{spec}\n---\n")
}

fn np(name: &str, ns: &str, spec: &str) -> String {
    format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}\n---\n")
}

const SUBJECT_A: &str = "  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}";

#[test]
fn admin_deny_overrides_a_networkpolicy_allow() {
    // Deny: "Drops the selected traffic. No further ... NetworkPolicy rules will be processed."
    let policies = anp("deny-z", 10, &format!("{SUBJECT_A}\n  ingress: [{{action: Deny, from: [{{namespaces: {{matchLabels: {{team: z}}}}}}]}}]"))
        + &np("allow-all", "x", "  podSelector: {}\n  ingress: [{}]");
    let mut w = world(&policies);
    assert!(w.conn("z/c", "x/a").is_empty());
    assert!(w.conn("x/b", "x/a").is_all(), "not matched by the ANP rule: NetworkPolicy allows");
}

#[test]
fn admin_allow_overrides_a_networkpolicy_deny_but_not_the_other_end() {
    // Allow (v1alpha2 Accept): "No further egress ClusterNetworkPolicy or NetworkPolicy rules will
    // be processed but any ingress rules at the destination do apply."
    let policies = anp("allow-from-z", 10, &format!("{SUBJECT_A}\n  ingress: [{{action: Allow, from: [{{namespaces: {{matchLabels: {{team: z}}}}}}]}}]"))
        + &np("deny-all", "x", "  podSelector: {}\n  policyTypes: [Ingress]")
        + &np("egress-80", "z", "  podSelector: {}\n  egress: [{ports: [{port: 80}]}]");
    let mut w = world(&policies);
    assert_eq!(w.conn("z/c", "x/a").to_string(), "TCP 80", "the ANP allows ingress; z/c's own egress policy still limits it");
    assert!(w.conn("x/b", "x/a").is_empty());
}

#[test]
fn lower_priority_value_is_evaluated_first() {
    // "Policies with lower priority values have higher precedence, and are checked before
    // policies with higher priority values in the same tier."
    let allow = format!("{SUBJECT_A}\n  ingress: [{{action: Allow, from: [{{namespaces: {{}}}}]}}]");
    let deny = format!("{SUBJECT_A}\n  ingress: [{{action: Deny, from: [{{namespaces: {{}}}}]}}]");
    let mut w = world(&(anp("allow", 5, &allow) + &anp("deny", 6, &deny)));
    assert!(w.conn("x/b", "x/a").is_all());
    let mut w = world(&(anp("allow", 7, &allow) + &anp("deny", 6, &deny)));
    assert!(w.conn("x/b", "x/a").is_empty());
}

#[test]
fn rules_apply_in_order_first_match_per_port() {
    // "The relative precedence of ingress rules within a single ANP object (all of which share
    // the priority) will be determined by the order in which the rule is written."
    let spec = format!(
        "{SUBJECT_A}\n  ingress:\n  - {{action: Deny, from: [{{namespaces: {{}}}}], ports: [{{portNumber: {{protocol: TCP, port: 80}}}}]}}\n  - {{action: Allow, from: [{{namespaces: {{}}}}]}}"
    );
    let mut w = world(&(anp("p", 1, &spec) + &np("deny-all", "x", "  podSelector: {}\n  policyTypes: [Ingress]")));
    assert_eq!(w.conn("x/b", "x/a").to_string(), "SCTP 1-65535,TCP 1-79,81-65535,UDP 1-65535");
}

#[test]
fn pass_hands_over_to_networkpolicy_and_else_to_the_baseline() {
    // Pass: "Skips all further ClusterNetworkPolicy rules in the current tier for the selected
    // traffic, and passes evaluation to the next tier." Baseline: "a cluster-wide policy that can be
    // overridden by the v1.NetworkPolicy".
    let pass = anp("pass", 1, &format!("{SUBJECT_A}\n  ingress: [{{action: Pass, from: [{{namespaces: {{}}}}]}}]"));
    let baseline = banp(&format!("{SUBJECT_A}\n  ingress: [{{action: Deny, from: [{{namespaces: {{}}}}]}}]"));
    let mut w = world(&(pass.clone() + &baseline));
    assert!(w.conn("x/b", "x/a").is_empty(), "no NetworkPolicy decides: the baseline denies");
    let mut w = world(&(pass.clone() + &baseline + &np("tcp-80", "x", "  podSelector: {matchLabels: {app: a}}\n  ingress: [{ports: [{port: 80}]}]")));
    assert_eq!(w.conn("x/b", "x/a").to_string(), "TCP 80", "NetworkPolicy decides, the baseline is not consulted");
    let mut w = world(&pass);
    assert!(w.conn("x/b", "x/a").is_all(), "\"If a given connection wasn't allowed or denied by any of the tiers\" ... all pods can communicate");
}

#[test]
fn baseline_applies_only_where_no_networkpolicy_isolates() {
    // "v1.NetworkPolicy always makes a final decision for selected pods. Further evaluation only
    // happens for Pods not selected by a v1.NetworkPolicy."
    let baseline = banp("  subject: {namespaces: {}}\n  ingress: [{action: Deny, from: [{namespaces: {}}]}]");
    let mut w = world(&(baseline + &np("open-a", "x", "  podSelector: {matchLabels: {app: a}}\n  ingress: [{}]")));
    assert!(w.conn("z/c", "x/a").is_all());
    assert!(w.conn("x/a", "x/b").is_empty());
}

#[test]
fn host_network_pods_are_never_selected_by_pod_selectors() {
    // "Note that host-networked pods are not included in subject selection." / "... are not
    // included in this type of peer."
    let deny = anp("deny", 1, "  subject: {namespaces: {}}\n  ingress: [{action: Deny, from: [{namespaces: {}}]}]");
    let mut w = world(&deny);
    assert!(w.conn("x/b", "x/h").is_all(), "x/h is no subject");
    assert!(w.conn("x/h", "x/a").is_all(), "x/h is no peer");
    assert!(w.conn("x/b", "x/a").is_empty());
}

#[test]
fn networks_match_addresses_and_pods_by_ip() {
    // networks: "cluster-internal traffic will be checked against the rule as well. So if you
    // Accept or Deny traffic to "0.0.0.0/0", that will allow or deny all IPv4 pod-to-pod traffic".
    let deny = anp("deny-net", 1, &format!("{SUBJECT_A}\n  egress: [{{action: Deny, to: [{{networks: [10.0.1.0/24, 192.0.2.0/24]}}]}}]"));
    let mut w = world(&deny);
    assert!(w.conn("x/a", "z/c").is_empty(), "z/c's IP is in 10.0.1.0/24");
    assert!(w.conn("x/a", "x/b").is_all());
    assert!(w.external(Direction::Egress, "x/a", "192.0.2.9").is_empty());
    assert!(w.external(Direction::Egress, "x/a", "198.51.100.1").is_all());
}

#[test]
fn nodes_match_node_addresses_and_host_network_pods() {
    // nodes: "It selects the nodeIPs as the peer type by matching on the IPs present in the
    // node.Status.Addresses field of the node."
    let deny = anp("deny-infra", 1, &format!("{SUBJECT_A}\n  egress: [{{action: Deny, to: [{{nodes: {{matchLabels: {{role: infra}}}}}}]}}]"));
    let mut w = world(&deny);
    assert!(w.conn("x/a", "x/h").is_empty(), "x/h runs on n1 with n1's address");
    assert!(w.external(Direction::Egress, "x/a", "172.18.0.2").is_empty());
    assert!(w.external(Direction::Egress, "x/a", "172.18.0.3").is_all());
    assert!(w.conn("x/a", "x/b").is_all());
}

#[test]
fn named_ports_resolve_on_the_destination_and_unresolved_ones_warn() {
    // "NamedPort selects a port on a pod(s) based on name." A name no destination pod has
    // matches nothing, which is most likely a mistake: netmatrix warns (as netpol-analyzer does).
    let spec = "  subject: {namespaces: {}}\n  egress:\n  - {action: Deny, to: [{namespaces: {}}], ports: [{namedPort: web}]}\n  - {action: Deny, to: [{namespaces: {}}], ports: [{namedPort: nowhere}]}";
    let mut w = world(&anp("named", 1, spec));
    assert_eq!(w.conn("x/b", "x/a").to_string(), "SCTP 1-65535,TCP 1-8079,8081-65535,UDP 1-65535");
    assert!(w.conn("x/a", "x/b").is_all(), "x/b has no port named web");
    let warnings = admin::warnings(&w.cluster);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("named port \"nowhere\""), "{warnings:?}");
}

#[test]
fn same_priority_overlap_warns() {
    // "If two (or more) policies in the same tier with the same priority could match a
    // connection, then the implementation can apply any of the matching policies".
    let rule = "  ingress: [{action: Deny, from: [{namespaces: {}}]}]";
    let w = world(&(anp("one", 3, &format!("{SUBJECT_A}\n{rule}")) + &anp("two", 3, &format!("  subject: {{namespaces: {{}}}}\n{rule}"))));
    let warnings = admin::warnings(&w.cluster);
    assert!(warnings.iter().any(|w| w.contains("AdminNetworkPolicy one and AdminNetworkPolicy two have the same priority 3")), "{warnings:?}");
    let w = world(&(anp("one", 3, &format!("{SUBJECT_A}\n{rule}")) + &anp("two", 4, &format!("  subject: {{namespaces: {{}}}}\n{rule}"))));
    assert!(admin::warnings(&w.cluster).is_empty());
}

#[test]
fn cluster_network_policy_tiers_and_protocols() {
    // v1alpha2 ClusterNetworkPolicy: "Policy tiers are evaluated in the following order: Admin
    // tier, NetworkPolicy tier, Baseline tier"; actions Accept, Deny and Pass.
    let cnp = |name: &str, tier: &str, priority: u32, rules: &str| {
        format!(
            "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n  tier: {tier}\n  priority: {priority}\n{SUBJECT_A}\n{rules}\n---\n"
        )
    };
    let policies =
        cnp("accept-udp", "Admin", 1, "  ingress: [{action: Accept, from: [{namespaces: {}}], protocols: [{udp: {destinationPort: {number: 53}}}]}]")
            + &cnp(
                "pass-tcp",
                "Admin",
                2,
                "  ingress: [{action: Pass, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {range: {start: 80, end: 81}}}}]}]",
            )
            + &cnp("deny-rest", "Baseline", 0, "  ingress: [{action: Deny, from: [{namespaces: {}}]}]");
    let mut w = world(&policies);
    assert_eq!(w.conn("x/b", "x/a").to_string(), "UDP 53", "TCP 80-81 passes to the baseline, which denies");
    let mut w = world(&(policies + &np("tcp", "x", "  podSelector: {matchLabels: {app: a}}\n  ingress: [{ports: [{port: 80}]}]")));
    assert_eq!(w.conn("x/b", "x/a").to_string(), "TCP 80,UDP 53", "NetworkPolicy decides what passed and was not accepted");
}

#[test]
fn explanation_walks_the_tiers() {
    let policies = anp("pass", 1, &format!("{SUBJECT_A}\n  ingress: [{{name: to-np, action: Pass, from: [{{namespaces: {{}}}}]}}]"))
        + &banp(&format!("{SUBJECT_A}\n  ingress: [{{action: Deny, from: [{{namespaces: {{}}}}]}}]"));
    let w = world(&policies);
    let (b, a) = (w.pod("x/b"), w.pod("x/a"));
    let e = explain(&w.cluster, POD_IPS, Endpoint::Pod(&w.cluster.pods[b]), Endpoint::Pod(&w.cluster.pods[a]), Some((80, Protocol::Tcp)));
    let steps: Vec<String> = e.ingress.tiers.iter().map(|s| format!("{} {} {:?} {:?}", s.tag, s.action, s.policies, s.rule_name)).collect();
    assert_eq!(steps, ["ANP pass [\"pass\"] Some(\"to-np\")", "NP no policy [] None", "BANP deny [\"default\"] None"]);
    assert_eq!(e.ingress.allowed, "No Connections");
}

#[test]
fn invalid_admin_policies_name_file_document_object_and_field() {
    let bad = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: p}\nspec:\n  priority: 1001\n  subject: {namespaces: {}}\n  ingress: [{action: Accept, from: [{networks: [10.0.0.0/8]}]}]\n---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: other}\nspec:\n  subject: {namespaces: {}}\n  egress: [{action: Pass, to: [{pods: {podSelector: {}}}], ports: [{portRange: {start: 90, end: 80}}]}]\n";
    let errors = parse_str("anp.yaml", bad).unwrap_err().to_string();
    for expected in [
        "anp.yaml: document 1 (AdminNetworkPolicy p): field spec.priority: 1001 must be between 0 and 1000",
        "anp.yaml: document 1 (AdminNetworkPolicy p): field spec.ingress[0].action: \"Accept\" is not an action here (want Allow, Deny or Pass)",
        "anp.yaml: document 1 (AdminNetworkPolicy p): field spec.ingress[0].from[0].networks: is allowed only in egress peers",
        "anp.yaml: document 2 (BaselineAdminNetworkPolicy other): field metadata.name: a BaselineAdminNetworkPolicy must be named \"default\"",
        "anp.yaml: document 2 (BaselineAdminNetworkPolicy other): field spec.egress[0].action: \"Pass\" is not an action here (want Allow or Deny)",
        "anp.yaml: document 2 (BaselineAdminNetworkPolicy other): field spec.egress[0].ports[0].portRange.end: 80 must be greater than start 90",
    ] {
        assert!(errors.lines().any(|l| l == expected), "missing {expected:?} in:\n{errors}");
    }
}
