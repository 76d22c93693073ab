//! The traffic policy's reading of a (source, frontend) pair: which node translates, which
//! endpoints may serve, and whether the source is masqueraded; by the documentation where it
//! speaks, by the profile where it does not.

use netmatrix_model::{Cluster, Pod, Service, TrafficPolicy};

use super::{Frontend, FrontendKind, pod_name};
use crate::profile::{LocalDetection, Profile};

/// Whether the connection reaches its backends with the client's address or a node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Masquerade {
    No,
    Yes,
    /// The documentation does not say: either may happen.
    Either,
}

impl Masquerade {
    fn of(decided: Option<bool>) -> Masquerade {
        match decided {
            Some(true) => Masquerade::Yes,
            Some(false) => Masquerade::No,
            None => Masquerade::Either,
        }
    }
}

/// Which endpoints the traffic may use and how it reaches them.
pub(crate) struct Scope<'c> {
    /// The node that translates: the source's node, or the node a node port was reached on.
    pub node: Option<&'c str>,
    /// Only endpoints on `node`.
    pub local_only: bool,
    pub masquerade: Masquerade,
    /// Only replies of endpoints on this node reach the client (kube-proxy's cluster-CIDR
    /// short-circuit of another node's node port): the others' replies are lost.
    pub replies_via: Option<&'c str>,
}

impl<'c> Scope<'c> {
    fn new(node: Option<&'c str>, local_only: bool, masquerade: Masquerade) -> Scope<'c> {
        Scope { node, local_only, masquerade, replies_via: None }
    }
}

/// Where pods are relative to a node: `None` when either is unknown.
pub(crate) fn on_node(node: Option<&str>, of: Option<&str>) -> Option<bool> {
    Some(node? == of?)
}

/// The scope of `src` reaching `frontend`; `None` (reason pushed) when the cell is undefined:
/// nodes needed to decide are unknown, or the documentation leaves it open and `profile` does
/// not decide.
pub(crate) fn scope<'c>(
    cluster: &'c Cluster,
    src: &'c Pod,
    frontend: &Frontend,
    service: &Service,
    profile: Profile,
    reasons: &mut Vec<String>,
) -> Option<Scope<'c>> {
    let decisions = profile.decisions();
    let label = frontend.label(cluster);
    let src_node = src.node.as_deref();
    let unknown = |reasons: &mut Vec<String>, what: &str| {
        reasons.push(format!("{what} depends on the node of {}, which is unknown (spec.nodeName)", pod_name(src)));
        None
    };
    match frontend.kind {
        FrontendKind::ClusterIp => {
            // internalTrafficPolicy Local: "only node local endpoints are considered" (Service
            // Internal Traffic Policy docs).
            let local_only = service.internal_traffic_policy == TrafficPolicy::Local;
            if local_only && src_node.is_none() {
                return unknown(reasons, "internalTrafficPolicy Local");
            }
            reasons.push(format!(
                "{label} is the cluster IP {}, internalTrafficPolicy {:?}: {}",
                frontend.address.map(|a| a.to_string()).unwrap_or_default(),
                service.internal_traffic_policy,
                if local_only { "only endpoints on the source's node serve" } else { "any endpoint may serve" }
            ));
            let masquerade = if src.host_network { node_client(profile, decisions.masquerade_node_clients, reasons) } else { Masquerade::No };
            Some(Scope::new(src_node, local_only, masquerade))
        }
        FrontendKind::NodePort { .. } | FrontendKind::LoadBalancer | FrontendKind::ExternalIp => {
            let node = match frontend.kind {
                FrontendKind::NodePort { node } => Some(cluster.nodes[node].name.as_str()),
                // The source's own node translates load-balancer and external IPs on their way out.
                _ => src_node,
            };
            let etp = service.external_traffic_policy;
            if etp == TrafficPolicy::Cluster {
                // ETP Cluster "obscures the client source IP and may cause a second hop to
                // another node" (Service docs, external traffic policy).
                reasons.push(format!("{label}, externalTrafficPolicy Cluster: masqueraded to the translating node's address, any endpoint may serve"));
                return Some(Scope::new(node, false, Masquerade::Yes));
            }
            if !matches!(frontend.kind, FrontendKind::NodePort { .. }) {
                // "traffic sent to an External IP or LoadBalancer IP from within the cluster will
                // always get 'Cluster' semantics" (ServiceSpec.externalTrafficPolicy); whether it
                // is masqueraded then is not said.
                let masquerade = match decisions.masquerade_short_circuit {
                    // The node's own traffic is masqueraded where a profile decides, as on its
                    // node ports.
                    Some(_) if src.host_network => Masquerade::Yes,
                    decided => Masquerade::of(decided),
                };
                let how = match masquerade {
                    Masquerade::No => "with the client's address",
                    Masquerade::Yes => "masqueraded to the source's node",
                    Masquerade::Either => "masqueraded or not (the documentation does not say)",
                };
                reasons.push(format!("{label}, externalTrafficPolicy Local: from within the cluster it gets Cluster semantics, any endpoint may serve, {how}"));
                return Some(Scope::new(node, false, masquerade));
            }
            local_node_port(src, node, profile, &label, reasons)
        }
        FrontendKind::ExternalName => unreachable!("ExternalName is decided before scoping"),
    }
}

/// Whether a hostNetwork client of a cluster IP is masqueraded.
fn node_client(profile: Profile, decided: Option<bool>, reasons: &mut Vec<String>) -> Masquerade {
    match decided {
        Some(true) => reasons.push(format!(
            "profile {profile}: the client is outside --cluster-cidr, and \"traffic sent to a Service cluster IP from outside this range will be masqueraded\" (kube-proxy): backends see its node's address"
        )),
        Some(false) => reasons.push(format!("profile {profile}: a hostNetwork client keeps its node's address")),
        None => reasons.push("whether a client outside the pod network is masqueraded is the implementation's choice: backends may see its node's address".into()),
    }
    Masquerade::of(decided)
}

/// In-cluster traffic to the node port of `node` under externalTrafficPolicy Local.
fn local_node_port<'c>(src: &'c Pod, node: Option<&'c str>, profile: Profile, label: &str, reasons: &mut Vec<String>) -> Option<Scope<'c>> {
    let src_node = src.node.as_deref();
    let local = |reasons: &mut Vec<String>, why: &str| {
        reasons.push(format!("profile {profile}: {label}, externalTrafficPolicy Local: {why}"));
        Some(Scope::new(node, true, Masquerade::No))
    };
    let every = |reasons: &mut Vec<String>, masquerade: Masquerade, why: &str| {
        reasons.push(format!("profile {profile}: {label}, externalTrafficPolicy Local: {why}"));
        Some(Scope::new(node, false, masquerade))
    };
    let Some(detection) = profile.decisions().local_node_port else {
        reasons.push(format!(
            "{label}, externalTrafficPolicy Local, from within the cluster: \"clients sending to a NodePort from within the cluster may need to take traffic policy into account when picking a node\" (ServiceSpec): which endpoints serve is not promised"
        ));
        return None;
    };
    let Some(same) = on_node(src_node, node) else {
        reasons.push(format!("externalTrafficPolicy Local on a node port depends on the node of {}, which is unknown (spec.nodeName)", pod_name(src)));
        return None;
    };
    match (src.host_network, same, detection) {
        (true, true, _) => every(reasons, Masquerade::Yes, "the source is the translating node itself: masqueraded, any endpoint may serve"),
        (true, false, _) => local(reasons, "a node is an external client: only endpoints on the addressed node serve, the client address is kept"),
        (false, true, _) => {
            every(reasons, Masquerade::No, "the source is a pod of the translating node, short-circuited to every endpoint with its own address")
        }
        (false, false, LocalDetection::PodNode) => {
            local(reasons, "a pod of another node is an external client: only endpoints on the addressed node serve, the client address is kept")
        }
        (false, false, LocalDetection::ClusterCidr) => {
            let mut scope = every(
                reasons,
                Masquerade::No,
                "the source is in --cluster-cidr (--detect-local-mode=ClusterCIDR), so it is short-circuited to every endpoint with its own address; replies of endpoints off the addressed node go straight to it, past that node's connection tracking, and are lost",
            )?;
            scope.replies_via = node;
            Some(scope)
        }
    }
}
