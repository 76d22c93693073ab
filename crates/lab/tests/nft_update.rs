//! Incremental updates of a node's table (`nft::update`): what they touch, and, in the kernel,
//! that a sequence of them leaves the ruleset a full apply gives and that a failed one changes
//! nothing.
//!
//! Kernel tests need root and `nft` (CI runs as root); without them they say why on stderr and
//! check nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netmatrix_lab::nft::{script, update};
use netmatrix_lab::{Fault, FaultKind};
use netmatrix_model::{Cluster, parse_str};
use serde_json::{Value, json};

#[path = "support/listing.rs"]
mod listing;

const TABLE: &str = "nm-upd";

/// Manifests of a synthetic cluster (120 pods, 40 policies) and two Services.
fn documents() -> Vec<Value> {
    let mut docs = netmatrix_synth::documents(&netmatrix_synth::Params::scale(3, 120, 40));
    let pod = docs.iter().find(|d| d["kind"] == "Pod").unwrap().clone();
    let (ns, labels) = (&pod["metadata"]["namespace"], &pod["metadata"]["labels"]);
    docs.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "selector": labels, "sessionAffinity": "ClientIP", "ports": [{"port": 80, "targetPort": 80, "nodePort": 30080}]}}));
    docs.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": ns},
        "spec": {"clusterIP": "10.96.0.11", "selector": labels, "ports": [{"port": 80, "targetPort": 80}]}}));
    docs
}

/// The model of `docs` with pods alternating between n0 and n1, every third dual-stack.
fn model(docs: &[Value]) -> Cluster {
    let stream: String = docs.iter().map(|d| format!("---\n{d}\n")).collect();
    let mut cluster = parse_str("docs.yaml", &stream).unwrap_or_else(|e| panic!("{e}"));
    for (i, pod) in cluster.pods.iter_mut().enumerate() {
        let n = i as u32;
        pod.node = Some(format!("n{}", n % 2));
        pod.ips = vec![IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 10)) + n))];
        if n.is_multiple_of(3) {
            pod.ips.push(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 10 + n as u16)));
        }
    }
    cluster
}

fn render(docs: &[Value], faults: &[Fault]) -> String {
    script(TABLE, &model(docs), "n0", 0, &[Ipv4Addr::new(172, 18, 0, 2).into()], faults)
}

fn position(docs: &[Value], kind: &str, nth: usize) -> usize {
    docs.iter().enumerate().filter(|(_, d)| d["kind"] == kind).nth(nth).unwrap().0
}

/// Rulesets of node n0 after each of a sequence of changes: policies changed, added and
/// deleted, pods relabelled and removed, Services changed and deleted, faults on and off,
/// admin policies added, changed and deleted.
fn steps() -> Vec<(&'static str, String)> {
    let mut docs = documents();
    let mut steps = vec![("start", render(&docs, &[]))];
    let mut step = |what, docs: &[Value], faults: &[Fault]| steps.push((what, render(docs, faults)));
    let p = position(&docs, "NetworkPolicy", 0);
    docs[p]["spec"]["ingress"] = json!([{"ports": [{"port": 1000}]}]);
    step("a policy's rules change", &docs, &[]);
    docs.remove(position(&docs, "NetworkPolicy", 3));
    step("a policy is deleted", &docs, &[]);
    let ns = docs[position(&docs, "Pod", 0)]["metadata"]["namespace"].clone();
    docs.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "aaa-deny", "namespace": ns}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}));
    step("a policy isolating a namespace is added", &docs, &[]);
    let p = position(&docs, "Pod", 1);
    docs[p]["metadata"]["labels"] = json!({"relabelled": "yes"});
    step("a pod is relabelled", &docs, &[]);
    docs.remove(position(&docs, "Pod", 2));
    step("a pod is deleted", &docs, &[]);
    let s = position(&docs, "Service", 0);
    docs[s]["spec"]["selector"] = json!({"none": "none"});
    step("a Service loses its endpoints", &docs, &[]);
    docs.remove(position(&docs, "Service", 1));
    step("a Service is deleted", &docs, &[]);
    let fault = |kind| Fault::new(kind, 0);
    step("ignore-policy", &docs, &[fault(FaultKind::IgnorePolicy)]);
    step("ignore-policy cleared, drop-udp", &docs, &[fault(FaultKind::DropUdp)]);
    step("drop-services", &docs, &[fault(FaultKind::DropUdp), fault(FaultKind::DropServices)]);
    step("faults cleared", &docs, &[]);
    let anp = |name: &str, priority: u32, deny_port: u16| {
        json!({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy", "metadata": {"name": name}, "spec": {"priority": priority, "subject": {"namespaces": {}},
            "ingress": [{"action": "Deny", "from": [{"namespaces": {}}], "ports": [{"portNumber": {"protocol": "TCP", "port": deny_port}}]}, {"action": "Pass", "from": [{"namespaces": {}}]}],
            "egress": [{"action": "Allow", "to": [{"networks": ["10.0.0.0/8"]}], "ports": [{"namedPort": "http"}]}]}})
    };
    docs.push(anp("anp", 10, 22));
    step("an AdminNetworkPolicy is added", &docs, &[]);
    docs.push(json!({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy", "metadata": {"name": "default"},
        "spec": {"subject": {"namespaces": {}}, "ingress": [{"action": "Deny", "from": [{"pods": {"namespaceSelector": {}, "podSelector": {}}}]}],
            "egress": [{"action": "Deny", "to": [{"pods": {"namespaceSelector": {}, "podSelector": {}}}]}]}}));
    step("a BaselineAdminNetworkPolicy is added", &docs, &[]);
    let a = position(&docs, "AdminNetworkPolicy", 0);
    docs[a] = anp("anp", 10, 23);
    step("an admin policy's rules change", &docs, &[]);
    let (policies, rest): (Vec<Value>, Vec<Value>) = docs.into_iter().partition(|d| d["kind"] == "NetworkPolicy");
    docs = rest;
    step("the NetworkPolicies are deleted: the baseline decides", &docs, &[]);
    docs.extend(policies);
    step("the NetworkPolicies are back", &docs, &[]);
    docs.retain(|d| !matches!(d["kind"].as_str(), Some("AdminNetworkPolicy" | "BaselineAdminNetworkPolicy")));
    step("the admin policies are deleted", &docs, &[]);
    steps
}

#[test]
fn admin_policies_render_their_tier_chains() {
    let steps = steps();
    let find = |what: &str| &steps.iter().find(|(w, _)| *w == what).unwrap().1;
    let anp = find("an AdminNetworkPolicy is added");
    assert!(anp.contains("\tchain admin-ingress-") && anp.contains("\tchain admin-egress-") && !anp.contains("chain baseline-"), "{anp}");
    // The baseline only for pods that no NetworkPolicy isolates for the direction: here every pod is.
    assert!(!find("a BaselineAdminNetworkPolicy is added").contains("chain baseline-"));
    let banp = find("the NetworkPolicies are deleted: the baseline decides");
    assert!(banp.contains("\tchain baseline-ingress-") && banp.contains("\tchain baseline-egress-"), "{banp}");
    assert_eq!(find("the admin policies are deleted"), find("faults cleared"), "without admin policies, the ruleset is what it was");
}

#[test]
fn an_unchanged_ruleset_needs_no_update() {
    let text = render(&documents(), &[]);
    assert_eq!(update(TABLE, &text, &text).as_deref(), Some(""));
}

#[test]
fn a_changed_policy_replaces_its_own_chain_and_those_of_the_pods_it_selects() {
    let mut docs = documents();
    let before = render(&docs, &[]);
    let p = position(&docs, "NetworkPolicy", 0);
    docs[p]["spec"]["ingress"] = json!([{"ports": [{"port": 1000}]}]);
    let after = render(&docs, &[]);
    let script = update(TABLE, &before, &after).expect("an incremental update");
    let chain = format!("np-{}/{}-ingress", docs[p]["metadata"]["namespace"].as_str().unwrap(), docs[p]["metadata"]["name"].as_str().unwrap());
    for line in script.lines().filter(|l| !l.starts_with('\t') && !l.starts_with("table ") && *l != "}") {
        let name = line.rsplit(' ').next().unwrap();
        assert!(line.contains(" chain ") && (name == chain || name == "policy-ingress" || name.starts_with("ingress-")), "{line}\n{script}");
    }
    // A pod chain is new only where the pods' policies are: it jumps to the changed policy.
    for added in script.split("\tchain ingress-").skip(1) {
        assert!(added.contains(&format!("jump {chain}\n")), "{added}");
    }
    assert!(!script.contains("set "), "no set changes: {script}");
    assert!(script.len() * 5 < after.len(), "{} bytes of update for a {}-byte table", script.len(), after.len());
}

#[test]
fn a_chain_changing_its_hook_needs_the_whole_table() {
    let old = format!(
        "{}\tchain c {{\n\t\ttype filter hook forward priority filter; policy accept;\n\t\taccept\n\t}}\n}}\n",
        netmatrix_lab::nft::replace_table(TABLE)
    );
    let new = old.replace("priority filter;", "priority filter + 1;");
    assert_eq!(update(TABLE, &old, &new), None);
    assert_eq!(update(TABLE, &old, "not a script"), None);
}

#[path = "support/kernel.rs"]
mod kernel;
use kernel::{Namespace, privileged};

impl Namespace {
    /// `nft -f -` of `script`: its stderr on failure.
    fn apply(&self, script: &str) -> Result<(), String> {
        let out = self.nft(&["-f", "-"], Some(script));
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
    }

    /// The kernel's table as [`listing::items`].
    fn listing(&self) -> Vec<String> {
        let out = self.nft(&["list", "table", "inet", TABLE], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        listing::items(&String::from_utf8(out.stdout).unwrap())
    }
}

#[test]
fn a_sequence_of_updates_leaves_what_a_full_apply_gives() {
    if !privileged() {
        return;
    }
    let (updated, fresh) = (Namespace::new("updtest", "inc"), Namespace::new("updtest", "full"));
    let steps = steps();
    updated.apply(&steps[0].1).unwrap();
    for pair in steps.windows(2) {
        let ((_, before), (what, after)) = (&pair[0], &pair[1]);
        let script = update(TABLE, before, after).unwrap_or_else(|| panic!("{what}: no incremental update"));
        updated.apply(&script).unwrap_or_else(|e| panic!("{what}: the update failed: {e}\n{script}"));
        fresh.apply(after).unwrap_or_else(|e| panic!("{what}: the full apply failed: {e}"));
        assert_eq!(updated.listing(), fresh.listing(), "{what}: the updated table differs from a full apply");
    }
}

#[test]
fn a_failed_update_changes_nothing() {
    if !privileged() {
        return;
    }
    let ns = Namespace::new("updtest", "fail");
    let steps = steps();
    ns.apply(&steps[0].1).unwrap();
    let before = ns.listing();
    // A real update (chains and sets deleted, chains flushed) that adds one bad rule.
    let (what, after) = &steps[8];
    let broken = format!("{}\tchain broken {{\n\t\tjump no-such-chain\n\t}}\n}}\n", after.strip_suffix("}\n").unwrap());
    let script = update(TABLE, &steps[0].1, &broken).unwrap();
    assert!(script.contains("delete chain") && script.contains("delete set") && script.contains("flush chain"), "{what}: {script}");
    assert!(ns.apply(&script).is_err(), "nft accepted a jump to a missing chain");
    assert_eq!(ns.listing(), before, "a failed update left a change behind");
}
