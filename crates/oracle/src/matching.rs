//! What the peers and ports of NetworkPolicy rules match: the vocabulary that the admin tier,
//! the reachability builder, explanations and the lab's dataplane share.

use std::net::IpAddr;

use netmatrix_model::{Cluster, ContainerPort, NetworkPolicy, Peer, Pod, PortRef, PortSpec};

use crate::ports::{ConnSet, PortSet};

/// Readings of the API where implementations differ.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// ipBlocks also select pods whose known IP they contain (what dataplanes do). Off: ipBlocks
    /// only describe addresses outside the cluster (netpol-analyzer's and NCA's reading).
    pub ipblocks_match_pods: bool,
}

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

/// A pod's addresses: its own, or for a hostNetwork pod without any, its node's.
pub fn pod_addresses<'c>(cluster: &'c Cluster, pod: &'c Pod) -> &'c [IpAddr] {
    if pod.ips.is_empty()
        && pod.host_network
        && let Some(node) = pod.node.as_deref().and_then(|n| cluster.nodes.iter().find(|x| x.name == n))
    {
        return &node.addresses;
    }
    &pod.ips
}

/// Resolves a rule's ports against the container ports of the destination pod: "a named port
/// ... on the destination pod" resolves per pod and per protocol.
pub fn resolve_ports(ports: &[PortSpec], destination: &[ContainerPort]) -> ConnSet {
    if ports.is_empty() {
        // "If this field is empty or missing, this rule matches all ports."
        return ConnSet::all();
    }
    let mut set = ConnSet::none();
    for spec in ports {
        let p = &mut set.0[spec.protocol.index()];
        match &spec.port {
            None => *p = PortSet::full(),
            Some(PortRef::Range { first, last }) => *p = p.union(&PortSet::range(*first, *last)),
            Some(PortRef::Named(name)) => {
                for c in destination.iter().filter(|c| c.protocol == spec.protocol && c.name.as_deref() == Some(name)) {
                    *p = p.union(&PortSet::range(c.port, c.port));
                }
            }
        }
    }
    set
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
        (Peer::IpBlock(block), Endpoint::Pod(pod)) => options.ipblocks_match_pods && pod_addresses(cluster, pod).iter().any(|ip| block.contains(ip)),
        (Peer::IpBlock(block), Endpoint::External(ip)) => block.contains(&ip),
    }
}
