//! AdminNetworkPolicy, BaselineAdminNetworkPolicy and ClusterNetworkPolicy matching, shared by
//! the reachability builder and explanations, and the warnings the API documentation asks for.

use fixedbitset::FixedBitSet;
use netmatrix_model::{AdminPeer, AdminPolicy, AdminPort, Cluster, ContainerPort, Direction, Pod};

use crate::matching::{Endpoint, Options, pod_addresses};
use crate::ports::{ConnSet, PortSet};

/// The ports of an admin rule on a destination with container ports `destination`.
/// "If unspecified, protocol-specific attributes will not be used to match traffic": all ports.
pub fn resolve_ports(ports: &[AdminPort], destination: &[ContainerPort]) -> ConnSet {
    if ports.is_empty() {
        return ConnSet::all();
    }
    let mut set = ConnSet::none();
    for port in ports {
        match port {
            AdminPort::Range { protocol, first, last } => set = set.union(&ConnSet::single(*protocol, PortSet::range(*first, *last))),
            // A named port selects the destination's container port of that name, whatever its protocol.
            AdminPort::Named(name) => {
                for c in destination.iter().filter(|c| c.name.as_deref() == Some(name)) {
                    set = set.union(&ConnSet::single(c.protocol, PortSet::range(c.port, c.port)));
                }
            }
        }
    }
    set
}

/// Pod selection of a subject or `pods`/`namespaces` peer: "host-networked pods are not included".
pub fn selects_pod(cluster: &Cluster, peer: &AdminPeer, pod: &Pod) -> bool {
    match peer {
        AdminPeer::Pods { namespaces, pods } => {
            !pod.host_network && pods.matches(&pod.labels) && cluster.namespaces.iter().any(|n| n.name == pod.namespace && namespaces.matches(&n.labels))
        }
        AdminPeer::Networks(_) | AdminPeer::Nodes(_) => false,
    }
}

/// Whether `peer` matches `endpoint`: pods by selectors, addresses by `networks` (pods too, by
/// their IP, unless ipBlocks are read as external only) and `nodes` (node addresses, and the
/// hostNetwork pods on those nodes).
pub fn peer_matches(cluster: &Cluster, options: Options, peer: &AdminPeer, endpoint: Endpoint) -> bool {
    match (peer, endpoint) {
        (AdminPeer::Pods { .. }, Endpoint::Pod(pod)) => selects_pod(cluster, peer, pod),
        (AdminPeer::Pods { .. }, Endpoint::External(_)) => false,
        (AdminPeer::Networks(nets), Endpoint::Pod(pod)) => {
            options.ipblocks_match_pods && pod_addresses(cluster, pod).iter().any(|ip| nets.iter().any(|n| n.contains(ip)))
        }
        (AdminPeer::Networks(nets), Endpoint::External(ip)) => nets.iter().any(|n| n.contains(&ip)),
        (AdminPeer::Nodes(sel), Endpoint::Pod(pod)) => {
            pod.host_network && pod.node.as_deref().is_some_and(|n| cluster.nodes.iter().any(|x| x.name == n && sel.matches(&x.labels)))
        }
        (AdminPeer::Nodes(sel), Endpoint::External(ip)) => cluster.nodes.iter().any(|n| sel.matches(&n.labels) && n.addresses.contains(&ip)),
    }
}

/// `Kind name`, for messages.
pub fn label(policy: &AdminPolicy) -> String {
    format!("{} {}", policy.kind, policy.name)
}

/// Same-priority conflicts and named ports that resolve nowhere. The priority documentation:
/// "If two (or more) policies in the same tier with the same priority could match a connection,
/// then the implementation can apply any of the matching policies to the connection".
pub fn warnings(cluster: &Cluster) -> Vec<String> {
    let mut out = Vec::new();
    let subjects: Vec<FixedBitSet> = cluster
        .admin_policies
        .iter()
        .map(|p| cluster.pods.iter().enumerate().filter(|(_, pod)| selects_pod(cluster, &p.subject, pod)).map(|(i, _)| i).collect())
        .collect();
    for (i, a) in cluster.admin_policies.iter().enumerate() {
        for (j, b) in cluster.admin_policies.iter().enumerate().skip(i + 1) {
            if a.tier == b.tier && a.priority == b.priority && !subjects[i].is_disjoint(&subjects[j]) {
                out.push(format!(
                    "{}: {} and {} have the same priority {} and select the same pods: which applies first is up to the implementation (netmatrix takes them by name)",
                    b.origin,
                    label(a),
                    label(b),
                    a.priority
                ));
            }
        }
        for direction in Direction::BOTH {
            for (r, rule) in a.rules(direction).iter().enumerate() {
                for port in &rule.ports {
                    let AdminPort::Named(name) = port else { continue };
                    // Named ports resolve on the destination: the subject for ingress, pod peers for egress.
                    let destinations: Vec<&Pod> = match direction {
                        Direction::Ingress => subjects[i].ones().map(|p| &cluster.pods[p]).collect(),
                        Direction::Egress => cluster.pods.iter().filter(|pod| rule.peers.iter().any(|peer| selects_pod(cluster, peer, pod))).collect(),
                    };
                    if !destinations.iter().any(|pod| pod.ports.iter().any(|c| c.name.as_deref() == Some(name))) {
                        out.push(format!(
                            "{}: {} {direction} rule {r} ({:?}): named port {name:?} is no container port of any destination pod: the rule matches no port there",
                            a.origin,
                            label(a),
                            rule.name
                        ));
                    }
                }
            }
        }
    }
    out
}
