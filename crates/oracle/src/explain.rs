//! Why a connection is allowed or denied: the policies that select each end and the rules
//! (policy, rule index, peer index) that allow it.

use std::net::IpAddr;

use netmatrix_model::{Cluster, Direction, NetworkPolicy, Peer, Pod, Protocol};
use serde::Serialize;

use crate::ports::ConnSet;
use crate::reach::{resolve_ports, Options};

/// One end of a connection.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint<'c> {
    Pod(&'c Pod),
    /// An address outside the cluster: no NetworkPolicy applies to it.
    External(IpAddr),
}

impl Endpoint<'_> {
    pub fn name(&self) -> String {
        match self {
            // Workload manifests give one representative pod named like the workload.
            Endpoint::Pod(p) if p.workload.name == p.name => p.workload.to_string(),
            Endpoint::Pod(p) => format!("{} (pod {}/{})", p.workload, p.namespace, p.name),
            Endpoint::External(ip) => format!("{ip}[External]"),
        }
    }
}

/// Finds an endpoint by `ns/name` (a pod or workload), `ns/name[Kind]`, `name` (namespace
/// `default`) or an IP address.
pub fn find_endpoint<'c>(cluster: &'c Cluster, text: &str) -> Result<Endpoint<'c>, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Endpoint::External(ip));
    }
    let (path, kind) = match text.strip_suffix(']').and_then(|t| t.split_once('[')) {
        Some((path, kind)) => (path, Some(kind)),
        None => (text, None),
    };
    let (namespace, name) = path.split_once('/').unwrap_or(("default", path));
    let by_pod = cluster.pods.iter().filter(|p| kind.is_none() && p.namespace == namespace && p.name == name);
    let by_workload = cluster.pods.iter().filter(|p| p.workload.namespace == namespace && p.workload.name == name && kind.is_none_or(|k| k == p.workload.kind));
    let mut found: Vec<&Pod> = by_pod.chain(by_workload).collect();
    found.dedup_by(|a, b| std::ptr::eq(*a, *b));
    let mut workloads: Vec<String> = found.iter().map(|p| p.workload.to_string()).collect();
    workloads.sort();
    workloads.dedup();
    match (found.first(), workloads.len()) {
        (None, _) => Err(format!("no pod or workload {text:?} in the input (write namespace/name, namespace/name[Kind] or an IP address)")),
        (Some(pod), 1) => Ok(Endpoint::Pod(pod)),
        _ => Err(format!("{text:?} is ambiguous: {}; add the kind, e.g. {}", workloads.join(", "), workloads[0])),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub src: String,
    pub dst: String,
    /// The port asked about, if any: then only rules allowing it are listed, and the verdict
    /// is about that port.
    pub port: Option<u16>,
    pub protocol: Option<Protocol>,
    pub egress: Side,
    pub ingress: Side,
    /// What both sides allow together.
    pub allowed: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allowed,
    Denied,
}

/// One direction's decision, taken by the policies of the pod at that end.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub direction: Direction,
    /// The pod whose policies decide; `None` for an external address (nothing to decide).
    pub pod: Option<String>,
    /// Policies (`ns/name`) that select the pod for this direction.
    pub selected_by: Vec<String>,
    /// Isolated pods accept only what some rule allows; others accept everything.
    pub isolated: bool,
    pub allowing_rules: Vec<RuleMatch>,
    pub allowed: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleMatch {
    pub policy: String,
    pub rule: usize,
    /// Index of the matching peer; `None` when the rule lists no peers (it matches every peer).
    pub peer: Option<usize>,
    pub ports: String,
}

pub fn explain(cluster: &Cluster, options: Options, src: Endpoint, dst: Endpoint, query: Option<(u16, Protocol)>) -> Explanation {
    let (egress, egress_conn) = side(cluster, options, Direction::Egress, src, dst, query);
    let (ingress, ingress_conn) = side(cluster, options, Direction::Ingress, dst, src, query);
    let both = egress_conn.intersect(&ingress_conn);
    let verdict = match query {
        Some((port, protocol)) => both.allows(protocol, port),
        None => !both.is_empty(),
    };
    Explanation {
        src: src.name(),
        dst: dst.name(),
        port: query.map(|q| q.0),
        protocol: query.map(|q| q.1),
        egress,
        ingress,
        allowed: both.to_string(),
        verdict: if verdict { Verdict::Allowed } else { Verdict::Denied },
    }
}

fn side(cluster: &Cluster, options: Options, direction: Direction, owner: Endpoint, peer: Endpoint, query: Option<(u16, Protocol)>) -> (Side, ConnSet) {
    let Endpoint::Pod(pod) = owner else {
        let side = Side { direction, pod: None, selected_by: Vec::new(), isolated: false, allowing_rules: Vec::new(), allowed: ConnSet::all().to_string() };
        return (side, ConnSet::all());
    };
    // Named ports resolve against the destination of the connection.
    let destination_ports = match (direction, peer) {
        (Direction::Ingress, _) => pod.ports.as_slice(),
        (Direction::Egress, Endpoint::Pod(p)) => p.ports.as_slice(),
        (Direction::Egress, Endpoint::External(_)) => &[],
    };
    let selecting: Vec<&NetworkPolicy> = cluster
        .policies
        .iter()
        .filter(|p| p.namespace == pod.namespace && p.rules(direction).is_some() && p.pod_selector.matches(&pod.labels))
        .collect();
    let mut allowed = if selecting.is_empty() { ConnSet::all() } else { ConnSet::none() };
    let mut allowing_rules = Vec::new();
    for policy in &selecting {
        for (r, rule) in policy.rules(direction).unwrap_or_default().iter().enumerate() {
            let peer_index = if rule.peers.is_empty() {
                Some(None)
            } else {
                rule.peers.iter().position(|p| peer_matches(cluster, options, policy, p, peer)).map(Some)
            };
            let Some(peer_index) = peer_index else { continue };
            let ports = resolve_ports(&rule.ports, destination_ports);
            allowed = allowed.union(&ports);
            // With a port asked about, list only the rules that allow that port.
            if query.is_some_and(|(port, protocol)| !ports.allows(protocol, port)) || ports.is_empty() {
                continue;
            }
            allowing_rules.push(RuleMatch { policy: format!("{}/{}", policy.namespace, policy.name), rule: r, peer: peer_index, ports: ports.to_string() });
        }
    }
    let side = Side {
        direction,
        pod: Some(format!("{}/{}", pod.namespace, pod.name)),
        selected_by: selecting.iter().map(|p| format!("{}/{}", p.namespace, p.name)).collect(),
        isolated: !selecting.is_empty(),
        allowing_rules,
        allowed: allowed.to_string(),
    };
    (side, allowed)
}

/// Whether `peer` of a rule of `policy` matches `endpoint` (a pod or an address).
pub fn peer_matches(cluster: &Cluster, options: Options, policy: &NetworkPolicy, peer: &Peer, endpoint: Endpoint) -> bool {
    match (peer, endpoint) {
        (Peer::Pods { namespaces, pods }, Endpoint::Pod(pod)) => {
            let namespace_ok = match namespaces {
                None => pod.namespace == policy.namespace,
                Some(sel) => cluster.namespaces.iter().any(|n| n.name == pod.namespace && sel.matches(&n.labels)),
            };
            namespace_ok && pods.as_ref().is_none_or(|s| s.matches(&pod.labels))
        }
        (Peer::Pods { .. }, Endpoint::External(_)) => false,
        (Peer::IpBlock(block), Endpoint::Pod(pod)) => options.ipblocks_match_pods && pod.ips.iter().any(|ip| block.contains(ip)),
        (Peer::IpBlock(block), Endpoint::External(ip)) => block.contains(&ip),
    }
}
