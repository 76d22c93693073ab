//! Implementation profiles: what the oracle expects where the Kubernetes documentation leaves
//! the outcome to the implementation. `spec` expects only what the documentation promises and
//! marks the rest `#` (undefined) with the sentence that leaves it open; `lab` is what
//! netmatrix's own lab dataplane does; `kube-proxy` is kube-proxy's documented behaviour
//! (iptables or nftables mode, `--detect-local-mode=ClusterCIDR`, the default) with a
//! NetworkPolicy plugin that filters in netfilter's forward hook, as kube-router and Calico do.
//! Each profile is one value of [`Decisions`], so a new profile is a new row, not new branches.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// Strict Kubernetes: only what the documentation promises.
    #[default]
    Spec,
    /// netmatrix's lab dataplane (`crates/lab/src/nft`).
    Lab,
    /// kube-proxy's documented behaviour.
    KubeProxy,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::Spec, Profile::Lab, Profile::KubeProxy];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Spec => "spec",
            Profile::Lab => "lab",
            Profile::KubeProxy => "kube-proxy",
        }
    }

    pub fn parse(text: &str) -> Result<Profile, String> {
        Self::ALL.into_iter().find(|p| p.name() == text).ok_or_else(|| format!("{text:?} is no profile (want {})", Self::ALL.map(Profile::name).join(", ")))
    }

    /// What this profile decides where Kubernetes does not.
    pub fn decisions(self) -> Decisions {
        match self {
            Profile::Spec => Decisions {
                rewrite_order: None,
                local_node_port: None,
                masquerade_node_clients: None,
                host_network_policy: false,
                hairpin_own_policies: false,
                masquerade_short_circuit: None,
            },
            Profile::Lab => Decisions {
                rewrite_order: Some(RewriteOrder::Netfilter),
                local_node_port: Some(LocalDetection::PodNode),
                masquerade_node_clients: Some(false),
                host_network_policy: true,
                hairpin_own_policies: true,
                masquerade_short_circuit: Some(false),
            },
            Profile::KubeProxy => Decisions {
                rewrite_order: Some(RewriteOrder::Netfilter),
                local_node_port: Some(LocalDetection::ClusterCidr),
                masquerade_node_clients: Some(true),
                host_network_policy: false,
                hairpin_own_policies: false,
                masquerade_short_circuit: Some(false),
            },
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Profile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One profile's answers to the questions the documentation leaves open. `None` and `false`
/// are the documentation's own answer: nothing is promised, the cell is `#` where it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decisions {
    /// "Cluster ingress and egress mechanisms often require rewriting the source or destination
    /// IP of packets. In cases where this happens, it is not defined whether this happens before
    /// or after NetworkPolicy processing" (Network Policies). `None`: only what NetworkPolicy
    /// allows (or denies) for every order is expected.
    pub rewrite_order: Option<RewriteOrder>,
    /// In-cluster clients of a node port under `externalTrafficPolicy: Local`: "clients sending
    /// to a NodePort from within the cluster may need to take traffic policy into account when
    /// picking a node" (ServiceSpec). `None`: undefined.
    pub local_node_port: Option<LocalDetection>,
    /// Whether a client outside the pod network (a hostNetwork pod) reaching a cluster IP is
    /// masqueraded: kube-proxy's `--cluster-cidr` says "traffic sent to a Service cluster IP
    /// from outside this range will be masqueraded"; the lab keeps the node's address. `None`:
    /// either.
    pub masquerade_node_clients: Option<bool>,
    /// NetworkPolicy applies to hostNetwork clients as to pods (the lab renders them so).
    /// Otherwise, with any NetworkPolicy present: "NetworkPolicy behavior for hostNetwork pods
    /// is undefined" (Network Policies).
    pub host_network_policy: bool,
    /// A pod reaching itself through its Service is checked against its own policies (the lab
    /// does). Otherwise the documentation decides: "a pod cannot block access to itself" and
    /// "traffic to and from the node where a Pod is running is always allowed" (Network
    /// Policies), so the pod's own leg is always allowed, masqueraded or not.
    pub hairpin_own_policies: bool,
    /// Whether in-cluster traffic that gets "Cluster" semantics on a load-balancer IP under
    /// `externalTrafficPolicy: Local` is masqueraded. `None`: either.
    pub masquerade_short_circuit: Option<bool>,
}

/// Where source and destination rewriting happen relative to NetworkPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteOrder {
    /// netfilter's hooks: DNAT in prerouting (or output) on the node that translates, policy in
    /// forward, masquerade in postrouting. So the translating node's policy sees the client and
    /// the backend, another node's the masqueraded address, and a client's egress to another
    /// node's node port sees that node's address and node port.
    Netfilter,
}

/// Which in-cluster sources a node port under `externalTrafficPolicy: Local` treats as local
/// (sent to every endpoint, client address kept) rather than external (node-local endpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalDetection {
    /// The pods placed on the addressed node (the lab).
    PodNode,
    /// Every source in the cluster's pod CIDR (kube-proxy's `--detect-local-mode=ClusterCIDR`).
    /// The reply of an endpoint on another node than the addressed one goes straight to the
    /// client, past the addressed node's connection tracking, and is lost unless the client
    /// runs on the addressed node.
    ClusterCidr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_say_what_exists() {
        for p in Profile::ALL {
            assert_eq!(Profile::parse(p.name()), Ok(p));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        assert_eq!(Profile::parse("iptables").unwrap_err(), "\"iptables\" is no profile (want spec, lab, kube-proxy)");
    }

    #[test]
    fn spec_decides_nothing_the_documentation_leaves_open() {
        let d = Profile::Spec.decisions();
        assert_eq!((d.rewrite_order, d.local_node_port, d.masquerade_node_clients, d.masquerade_short_circuit), (None, None, None, None));
        assert!(!d.host_network_policy && !d.hairpin_own_policies);
        assert_ne!(Profile::Lab.decisions(), Profile::KubeProxy.decisions(), "the implementations differ");
    }
}
