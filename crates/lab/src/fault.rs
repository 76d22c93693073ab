//! Faults on demand: each is a rendering change, so injecting and clearing are one atomic
//! `nft -f` each and nothing lingers after a clear.

use std::fmt;
use std::time::Duration;

use netmatrix_model::{IpFamilies, IpFamily};
use serde::{Deserialize, Serialize};

use crate::nft::table::replace_table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// A broken overlay: traffic between the pods of `node` and those of `peer` (or of every
    /// other node) is dropped at the router.
    CrossNode,
    /// A node whose dataplane drops every forwarded UDP datagram.
    DropUdp,
    /// A node whose policy agent is dead: NetworkPolicy and admin policies are not enforced there.
    IgnorePolicy,
    /// A node whose service proxy is dead: its pods' traffic to Service addresses is not
    /// translated (and node ports and LoadBalancer IPs on it do not answer).
    DropServices,
    /// A node whose bridge ports are not in hairpin mode: a pod reaching itself through a
    /// Service gets no answer.
    BreakHairpin,
    /// A node that keeps UDP conntrack entries of deleted backends: a client whose flow was
    /// translated there keeps sending to the dead address.
    StaleUdp,
    /// Delay and loss on a node's link: needs `tc netem`; refused until implemented.
    Netem,
    /// A node whose policy agent lags: every rule update for the node is applied
    /// [`Fault::delay`] after it was made (in the order made), while the other nodes and the
    /// router update at once; `Lab::sync` does not wait for it. The reference a convergence
    /// measurement is checked against: a change whose rules live on the node measures the
    /// delay more. It acts in the process holding the `Lab` (the updates wait on a thread of
    /// its own); the delay is in the saved faults, so whichever process opens the lab and
    /// changes rules honours it, and one that ends applies what it still holds back first.
    DelayPolicy,
    /// A node whose dataplane drops every IPv6 packet it forwards (its pods', in and out), as a
    /// CNI whose ip6tables chain is missing would; IPv4 is untouched. Refused in an IPv4 lab.
    DropIpv6,
    /// A node whose service proxy programs IPv4 Services only: its IPv6 Service rules are
    /// missing (cluster IPs, node ports, load-balancer and external IPs of IPv6 alike).
    SingleFamilyServices,
}

impl FaultKind {
    pub const ALL: [FaultKind; 10] = [
        FaultKind::CrossNode,
        FaultKind::DropUdp,
        FaultKind::IgnorePolicy,
        FaultKind::DropServices,
        FaultKind::BreakHairpin,
        FaultKind::StaleUdp,
        FaultKind::Netem,
        FaultKind::DelayPolicy,
        FaultKind::DropIpv6,
        FaultKind::SingleFamilyServices,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.to_string() == s)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CrossNode => "cross-node",
            Self::DropUdp => "drop-udp",
            Self::IgnorePolicy => "ignore-policy",
            Self::DropServices => "drop-services",
            Self::BreakHairpin => "break-hairpin",
            Self::StaleUdp => "stale-udp",
            Self::Netem => "netem",
            Self::DelayPolicy => "delay-policy",
            Self::DropIpv6 => "drop-ipv6",
            Self::SingleFamilyServices => "single-family-services",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    pub node: usize,
    /// For `cross-node`: the other node; `None` means every other node.
    pub peer: Option<usize>,
    /// For `delay-policy`: how long the node's rule updates are held back. Absent from states
    /// saved before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
}

impl Fault {
    /// A fault of `kind` on `node` (no peer, no delay).
    pub fn new(kind: FaultKind, node: usize) -> Self {
        Fault { kind, node, peer: None, delay: None }
    }

    /// Why `Lab::inject` refuses the fault in a lab of `nodes` nodes, if it does.
    pub(crate) fn check(&self, nodes: usize) -> Result<(), String> {
        if self.node >= nodes || self.peer.is_some_and(|p| p >= nodes || p == self.node) {
            return Err(format!("fault {self}: nodes are node0 to node{}, and a peer differs from the node", nodes - 1));
        }
        match (self.kind, self.delay) {
            (FaultKind::Netem, _) => Err("fault netem (delay and loss on a node link) is not implemented yet: it needs tc netem, and the kernels netmatrix is tested on have no sch_netem; nothing was injected".into()),
            (FaultKind::DelayPolicy, None) => Err("fault delay-policy needs --by DURATION: how long the node's rule updates are held back".into()),
            (FaultKind::DelayPolicy, Some(d)) if d.is_zero() => Err("fault delay-policy: --by must be more than zero".into()),
            (FaultKind::DelayPolicy, Some(_)) | (_, None) => Ok(()),
            (kind, Some(_)) => Err(format!("fault {kind}: --by is for delay-policy only")),
        }
    }

    /// Why a lab with addresses of `families` refuses the fault, if it does: one that could
    /// change nothing there.
    pub(crate) fn check_families(&self, families: IpFamilies) -> Result<(), String> {
        if matches!(self.kind, FaultKind::DropIpv6 | FaultKind::SingleFamilyServices) && !families.has(IpFamily::IPv6) {
            return Err(format!(
                "fault {}: lab is {} only, so leaving out IPv6 would change nothing (bring it up with --ip-family dual or ipv6); nothing was injected",
                self.kind,
                families.as_str()
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} node{}", self.kind, self.node)?;
        if let Some(peer) = self.peer {
            write!(f, " <-> node{peer}")?;
        }
        if let Some(delay) = self.delay {
            // `Duration`'s Debug is the short form: 300ms, 1.5s.
            write!(f, " by {delay:?}")?;
        }
        Ok(())
    }
}

/// The router's table: drops for every `cross-node` fault.
pub fn router_script(table: &str, faults: &[Fault], nodes: usize) -> String {
    let mut out = replace_table(table);
    out.push_str("  chain fault-forward {\n    type filter hook forward priority filter; policy accept;\n");
    for fault in faults.iter().filter(|f| f.kind == FaultKind::CrossNode) {
        let peers: Vec<usize> = match fault.peer {
            Some(p) => vec![p],
            None => (0..nodes).filter(|&n| n != fault.node).collect(),
        };
        for peer in peers {
            let (a, b) = (crate::topology::pod_cidr(fault.node), crate::topology::pod_cidr(peer));
            out.push_str(&format!("    ip saddr {a} ip daddr {b} drop\n    ip saddr {b} ip daddr {a} drop\n"));
            // The IPv6 twins of the pod CIDRs (dropping nothing in an IPv4 lab).
            let (a, b) = (crate::topology::twin(a.network()), crate::topology::twin(b.network()));
            out.push_str(&format!("    ip6 saddr {a}/64 ip6 daddr {b}/64 drop\n    ip6 saddr {b}/64 ip6 daddr {a}/64 drop\n"));
        }
    }
    out.push_str("  }\n}\n");
    out
}

/// Chains a node's own faults add to its table.
pub fn render_node(out: &mut String, faults: &[Fault], node: usize) {
    let drops = [(FaultKind::DropUdp, "meta l4proto udp drop"), (FaultKind::DropIpv6, "meta nfproto ipv6 drop")];
    let drops: Vec<&str> = drops.into_iter().filter(|&(kind, _)| active(faults, kind, node)).map(|(_, rule)| rule).collect();
    if !drops.is_empty() {
        // Before the policy chains, so that no accept there can let the dropped traffic through.
        out.push_str("  chain fault-forward {\n    type filter hook forward priority filter - 20; policy accept;\n");
        for rule in drops {
            out.push_str(&format!("    {rule}\n"));
        }
        out.push_str("  }\n");
    }
}

pub fn active(faults: &[Fault], kind: FaultKind, node: usize) -> bool {
    faults.iter().any(|f| f.kind == kind && f.node == node)
}

/// How long `delay-policy` holds back `node`'s rule updates, if it is on the node.
pub fn delay(faults: &[Fault], node: usize) -> Option<Duration> {
    faults.iter().find(|f| f.kind == FaultKind::DelayPolicy && f.node == node).and_then(|f| f.delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_policy_reads_shows_and_round_trips_its_delay() {
        assert_eq!(FaultKind::parse("delay-policy"), Some(FaultKind::DelayPolicy));
        let fault = Fault { delay: Some(Duration::from_millis(300)), ..Fault::new(FaultKind::DelayPolicy, 1) };
        assert_eq!(fault.to_string(), "delay-policy node1 by 300ms");
        assert_eq!(Fault { delay: Some(Duration::from_millis(1500)), ..fault.clone() }.to_string(), "delay-policy node1 by 1.5s");
        let json = serde_json::to_value(&fault).unwrap();
        assert_eq!(serde_json::from_value::<Fault>(json).unwrap(), fault);
        assert_eq!(delay(&[Fault::new(FaultKind::DropUdp, 1), fault], 1), Some(Duration::from_millis(300)));
    }

    #[test]
    fn delay_policy_needs_a_delay_and_only_it_takes_one() {
        let by = |ms| Some(Duration::from_millis(ms));
        let err = Fault::new(FaultKind::DelayPolicy, 1).check(2).unwrap_err();
        assert!(err.contains("--by"), "{err}");
        assert!(Fault { delay: by(0), ..Fault::new(FaultKind::DelayPolicy, 1) }.check(2).unwrap_err().contains("--by"));
        assert_eq!(Fault { delay: by(300), ..Fault::new(FaultKind::DelayPolicy, 1) }.check(2), Ok(()));
        assert!(Fault { delay: by(300), ..Fault::new(FaultKind::DelayPolicy, 2) }.check(2).is_err(), "no node2");
        assert_eq!(Fault { delay: by(300), ..Fault::new(FaultKind::DropUdp, 0) }.check(2).unwrap_err(), "fault drop-udp: --by is for delay-policy only");
        assert_eq!(Fault::new(FaultKind::DropUdp, 0).check(2), Ok(()));
        assert!(Fault::new(FaultKind::Netem, 0).check(2).unwrap_err().contains("netem"));
    }

    #[test]
    fn faults_saved_before_delays_existed_still_load_and_save_the_same() {
        let old = serde_json::json!({"kind": "cross-node", "node": 0, "peer": 2});
        let fault: Fault = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(fault, Fault { peer: Some(2), ..Fault::new(FaultKind::CrossNode, 0) });
        assert_eq!(serde_json::to_value(&fault).unwrap(), old, "no delay field where there is no delay");
        assert_eq!(fault.to_string(), "cross-node node0 <-> node2");
    }

    #[test]
    fn drop_ipv6_is_refused_without_ipv6_and_shares_the_drop_chain() {
        let fault = Fault::new(FaultKind::DropIpv6, 1);
        assert_eq!(FaultKind::parse("drop-ipv6"), Some(FaultKind::DropIpv6));
        assert!(fault.check_families(IpFamilies::Ipv4).unwrap_err().contains("nothing was injected"));
        assert_eq!((fault.check_families(IpFamilies::Dual), fault.check_families(IpFamilies::Ipv6)), (Ok(()), Ok(())));
        assert_eq!(Fault::new(FaultKind::DropUdp, 1).check_families(IpFamilies::Ipv4), Ok(()));
        assert!(Fault::new(FaultKind::SingleFamilyServices, 1).check_families(IpFamilies::Ipv4).is_err());
        let rendered = |faults: &[Fault], node| {
            let mut out = String::new();
            render_node(&mut out, faults, node);
            out
        };
        let both = rendered(&[Fault::new(FaultKind::DropUdp, 1), fault.clone()], 1);
        assert_eq!(both.matches("chain fault-forward").count(), 1, "{both}");
        assert!(both.contains("    meta l4proto udp drop\n    meta nfproto ipv6 drop\n"), "{both}");
        assert_eq!(rendered(&[fault], 0), "", "only on its node");
    }
}
