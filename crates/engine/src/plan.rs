//! The cells of a step and what the oracle expects of each.

use std::net::IpAddr;

use netmatrix_model::{Cluster, IpFamily, PodKey, Protocol, SessionAffinity};
use netmatrix_oracle::explain::Endpoint;
use netmatrix_oracle::matching::pod_addresses;
use netmatrix_oracle::services::{self, FrontendKind, Verdict};
use netmatrix_oracle::{Options, Profile, Reachability};
use netmatrix_results::{Cell, Check, Expected, Observed, TargetKind};

use crate::case::ProbeSpec;

/// A cell to probe: the report cell (expectation and metadata filled in) and how to probe it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub cell: Cell,
    pub source: PodKey,
    /// The address to connect to.
    pub address: IpAddr,
    /// For Service targets: `ns/pod` of every pod that may answer this source.
    pub backends: Option<Vec<String>>,
    pub source_port: Option<u16>,
    /// Probes the cell takes per try (an affinity check connects several times).
    pub repeat: usize,
    /// The pod a pod cell targets (the oracle explains the pair when the cell is wrong).
    pub target: Option<PodKey>,
    /// The oracle's reasoning for a Service cell.
    pub reasons: Option<String>,
}

impl Planned {
    /// Why the oracle expected what it did, in one line; `model` as the cell's family sees it
    /// (`Cluster::of_family`, where the run has two).
    pub fn explain(&self, model: &Cluster) -> Option<String> {
        if let Some(reasons) = &self.reasons {
            return Some(reasons.clone());
        }
        let find = |key: &PodKey| model.pods.iter().find(|p| p.key() == *key);
        let (src, dst) = (find(&self.source)?, find(self.target.as_ref()?)?);
        let (port, protocol) = (self.cell.port, self.cell.protocol);
        if !dst.ports.iter().any(|p| p.port == port && p.protocol == protocol) {
            return Some(format!("{} serves no {port}/{protocol}", self.target.as_ref()?));
        }
        let explained =
            netmatrix_oracle::explain::explain(model, Options { ipblocks_match_pods: true }, Endpoint::Pod(src), Endpoint::Pod(dst), Some((port, protocol)));
        Some(explained.summary())
    }
}

/// Connections per try of an affinity cell: with three backends, the chance that five
/// connections without affinity all land on one is 1/81.
pub const AFFINITY_CONNECTIONS: usize = 5;

/// Source ports of fixed-port probes: the `i`-th source pod by name uses `FIXED_SOURCE_PORT + i`.
const FIXED_SOURCE_PORT: u16 = 40_000;

fn pod_key(p: &netmatrix_model::Pod) -> String {
    format!("{}/{}", p.namespace, p.name)
}

fn cell(src: &netmatrix_model::Pod, dst: String, port: u16, protocol: Protocol, expected: Expected, target: TargetKind) -> Cell {
    Cell {
        src: pod_key(src),
        dst,
        port,
        protocol,
        expected,
        observed: Observed::Error,
        tries: 0,
        latency_ms: None,
        answered_by: None,
        history: Vec::new(),
        tried_at_ms: Vec::new(),
        expected_before: None,
        src_node: src.node.clone(),
        dst_node: None,
        target,
        service: None,
        hairpin: false,
        check: Check::Reach,
        detail: None,
        explanation: None,
        family: None,
    }
}

/// The cells of a step's probe set, with the oracle computed once for all of them; `profile`
/// decides what Kubernetes leaves open. Where pods have addresses of both families, every pod
/// cell is probed in each family both its pods have, with the oracle deciding on that family's
/// addresses alone (an ipBlock matches a pod by the address its packets carry); Service cells
/// are IPv4 only for now (see README).
pub fn cells(model: &Cluster, spec: &ProbeSpec, profile: Profile) -> Vec<Planned> {
    match model.families()[..] {
        [IpFamily::IPv6] => family_cells(model, spec, profile, IpFamily::IPv6, None),
        [_, _] => IpFamily::BOTH.into_iter().flat_map(|family| family_cells(&model.of_family(family), spec, profile, family, Some(family))).collect(),
        _ => family_cells(model, spec, profile, IpFamily::IPv4, None),
    }
}

/// The cells of `model`, whose addresses are of `family` (alone when `tag`, the family the
/// cells are marked with, is given).
fn family_cells(model: &Cluster, spec: &ProbeSpec, profile: Profile, family: IpFamily, tag: Option<IpFamily>) -> Vec<Planned> {
    let mut reach = Reachability::compute(model, Options { ipblocks_match_pods: true });
    let mut cells = Vec::new();
    if spec.pods {
        cells.extend(pod_cells(model, &mut reach, spec, tag));
    }
    if spec.services {
        cells.extend(service_cells(model, &mut reach, spec, profile, family));
    }
    for planned in &mut cells {
        planned.cell.family = tag;
    }
    cells
}

/// Every pod to every other pod (a pod's connection to itself is not a NetworkPolicy
/// question) on each port of `spec`. Expected allow: the policies allow it and the target
/// serves the port.
fn pod_cells(model: &Cluster, reach: &mut Reachability, spec: &ProbeSpec, family: Option<IpFamily>) -> Vec<Planned> {
    let mut planned = Vec::new();
    for (s, src) in model.pods.iter().enumerate() {
        for (d, dst) in model.pods.iter().enumerate() {
            let Some(address) = dst.ips.first() else { continue };
            // In one family's view, a source without an address of it cannot send.
            if s == d || (family.is_some() && pod_addresses(model, src).is_empty()) {
                continue;
            }
            let conns = reach.pair(reach.pod_class[s], reach.pod_class[d]);
            // "NetworkPolicy behavior for hostNetwork pods is undefined" (NetworkPolicy docs).
            let undefined = (src.host_network || dst.host_network) && !model.policies.is_empty();
            let (name, target) = match (&dst.node, dst.host_network) {
                (Some(node), true) => (format!("node:{node}"), TargetKind::Node),
                _ => (pod_key(dst), TargetKind::Pod),
            };
            for &(port, protocol) in &spec.ports {
                let serves = dst.ports.iter().any(|p| p.port == port && p.protocol == protocol);
                let expected = match (undefined, reach.conn(conns).allows(protocol, port) && serves) {
                    (true, _) => Expected::Undefined,
                    (false, true) => Expected::Allow,
                    (false, false) => Expected::Deny,
                };
                let mut c = cell(src, name.clone(), port, protocol, expected, target);
                c.dst_node = dst.node.clone();
                c.detail = undefined.then(|| "NetworkPolicy leaves hostNetwork pods undefined".to_owned());
                planned.push(Planned {
                    cell: c,
                    source: src.key(),
                    address: *address,
                    backends: None,
                    source_port: None,
                    repeat: 1,
                    target: Some(dst.key()),
                    reasons: None,
                });
            }
        }
    }
    planned
}

/// Every pod to every Service frontend of `family` (ExternalName needs DNS: the suite's
/// ExternalName case says so). The oracle gives the verdict and the backends that may answer.
fn service_cells(model: &Cluster, reach: &mut Reachability, spec: &ProbeSpec, profile: Profile, family: IpFamily) -> Vec<Planned> {
    let mut frontends = services::frontends(model);
    frontends.retain(|f| f.family() == Some(family));
    // Fixed source ports follow the pod's name, not its place in the model, which changes
    // when a pod is recreated.
    let mut names: Vec<String> = model.pods.iter().map(pod_key).collect();
    names.sort();
    let mut planned = Vec::new();
    let addressed = !model.families().is_empty();
    for (s, src) in model.pods.iter().enumerate() {
        // A source without an address of the family sends none of its traffic.
        if addressed && pod_addresses(model, src).is_empty() {
            continue;
        }
        for frontend in &frontends {
            let Some(address) = frontend.address else { continue };
            let service = &model.services[frontend.service];
            let verdict = services::evaluate(model, reach, s, frontend, profile);
            let (dst, target, dst_node) = match frontend.kind {
                FrontendKind::ClusterIp => (format!("svc:{}/{}", service.namespace, service.name), TargetKind::ClusterIp, None),
                FrontendKind::NodePort { node } => {
                    let name = &model.nodes[node].name;
                    (format!("node:{name}:{}", frontend.dst_port), TargetKind::NodePort, Some(name.clone()))
                }
                FrontendKind::LoadBalancer => (format!("lb:{address}"), TargetKind::LoadBalancer, None),
                FrontendKind::ExternalIp => (format!("ext:{address}"), TargetKind::ExternalIp, None),
                FrontendKind::ExternalName => continue,
            };
            let affinity = spec.check == Check::Affinity;
            let mut expected = match verdict.verdict {
                Verdict::Allow => Expected::Allow,
                Verdict::Deny => Expected::Deny,
                Verdict::Undefined => Expected::Undefined,
            };
            if affinity && (verdict.verdict != Verdict::Allow || !matches!(service.session_affinity, SessionAffinity::ClientIp { .. })) {
                // Affinity is only a question where connections succeed and the Service asks for it.
                expected = Expected::Undefined;
            }
            let answering: Vec<String> =
                verdict.backends.iter().map(|&b| pod_key(&model.pods[b])).chain(verdict.addresses.iter().map(|a| a.to_string())).collect();
            let mut c = cell(src, dst, frontend.dst_port, frontend.protocol, expected, target);
            c.dst_node = dst_node;
            c.service = Some(format!("{}/{}", service.namespace, service.name));
            c.hairpin = service.selects(src);
            c.check = spec.check;
            c.detail = (expected == Expected::Undefined).then(|| verdict.reasons.join("; "));
            planned.push(Planned {
                cell: c,
                source: src.key(),
                address,
                // A cell left open without a say on who answers checks no answerer.
                backends: (verdict.verdict != Verdict::Undefined || !answering.is_empty()).then_some(answering),
                source_port: spec.fixed_source_port.then(|| FIXED_SOURCE_PORT + names.binary_search(&pod_key(src)).unwrap_or_default() as u16),
                repeat: if affinity { AFFINITY_CONNECTIONS } else { 1 },
                target: None,
                reasons: Some(verdict.reasons.join("; ")).filter(|r| !r.is_empty()),
            });
        }
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmatrix_model::parse_str;

    fn cluster(yaml: &str) -> Cluster {
        parse_str("test", yaml).unwrap()
    }

    const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {pod: a}}
spec: {nodeName: node0, containers: [{name: c, ports: [{containerPort: 80}]}]}
status: {podIP: 10.244.0.10}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {pod: b}}
spec: {nodeName: node1, containers: [{name: c, ports: [{containerPort: 80}]}]}
status: {podIP: 10.244.1.10}
"#;

    #[test]
    fn cells_follow_policy_and_serving_ports() {
        let policy = "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {matchLabels: {pod: b}}, policyTypes: [Ingress]}\n";
        let model = cluster(&format!("{PODS}{policy}"));
        let cells = cells(&model, &ProbeSpec::pods(&[(80, Protocol::Tcp), (81, Protocol::Tcp)]), Profile::Spec);
        let find = |src: &str, dst: &str, port: u16| cells.iter().find(|p| p.cell.src == src && p.cell.dst == dst && p.cell.port == port).unwrap();
        assert_eq!(cells.len(), 4, "two ordered pairs, two ports, no self cells");
        assert_eq!(find("x/b", "x/a", 80).cell.expected, Expected::Allow);
        assert_eq!(find("x/a", "x/b", 80).cell.expected, Expected::Deny, "b is isolated for ingress");
        assert_eq!(find("x/b", "x/a", 81).cell.expected, Expected::Deny, "a does not serve 81");
        let c = find("x/b", "x/a", 80);
        assert_eq!((c.address.to_string().as_str(), c.cell.src_node.as_deref(), c.cell.dst_node.as_deref()), ("10.244.0.10", Some("node1"), Some("node0")));
    }

    #[test]
    fn dual_stack_pods_get_a_cell_per_family_each_decided_on_its_own_addresses() {
        let dual = PODS
            .replace("{podIP: 10.244.0.10}", "{podIPs: [{ip: 10.244.0.10}, {ip: 'fd00:10:244::10'}]}")
            .replace("{podIP: 10.244.1.10}", "{podIPs: [{ip: 10.244.1.10}, {ip: 'fd00:10:244:1::10'}]}");
        // b admits only IPv6 sources: a's IPv4 cell is denied, its IPv6 cell allowed.
        let policy = "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {matchLabels: {pod: b}}, ingress: [{from: [{ipBlock: {cidr: '::/0'}}]}]}\n";
        let model = cluster(&format!("{dual}{policy}"));
        let planned = cells(&model, &ProbeSpec::pods(&[(80, Protocol::Tcp)]), Profile::Spec);
        let summary: Vec<(String, Option<IpFamily>, String, Expected)> =
            planned.iter().map(|p| (format!("{} -> {}", p.cell.src, p.cell.dst), p.cell.family, p.address.to_string(), p.cell.expected)).collect();
        assert_eq!(
            summary,
            [
                ("x/a -> x/b".into(), Some(IpFamily::IPv4), "10.244.1.10".into(), Expected::Deny),
                ("x/b -> x/a".into(), Some(IpFamily::IPv4), "10.244.0.10".into(), Expected::Allow),
                ("x/a -> x/b".into(), Some(IpFamily::IPv6), "fd00:10:244:1::10".into(), Expected::Allow),
                ("x/b -> x/a".into(), Some(IpFamily::IPv6), "fd00:10:244::10".into(), Expected::Allow),
            ]
        );
        // A pod of one family has cells of that family only; single-family runs carry no family.
        let half = cluster(&dual.replace("{podIPs: [{ip: 10.244.1.10}, {ip: 'fd00:10:244:1::10'}]}", "{podIP: 10.244.1.10}"));
        let families: Vec<Option<IpFamily>> = cells(&half, &ProbeSpec::pods(&[(80, Protocol::Tcp)]), Profile::Spec).iter().map(|p| p.cell.family).collect();
        assert_eq!(families, [Some(IpFamily::IPv4), Some(IpFamily::IPv4)]);
        assert!(cells(&cluster(PODS), &ProbeSpec::pods(&[(80, Protocol::Tcp)]), Profile::Spec).iter().all(|p| p.cell.family.is_none()));
    }
}
