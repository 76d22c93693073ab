//! Faults on demand: each is a rendering change, so injecting and clearing are one atomic
//! `nft -f` each and nothing lingers after a clear.

use std::fmt;

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
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::CrossNode,
        FaultKind::DropUdp,
        FaultKind::IgnorePolicy,
        FaultKind::DropServices,
        FaultKind::BreakHairpin,
        FaultKind::StaleUdp,
        FaultKind::Netem,
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
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    pub node: usize,
    /// For `cross-node`: the other node; `None` means every other node.
    pub peer: Option<usize>,
}

impl Fault {
    /// A fault of `kind` on `node` (no peer).
    pub fn new(kind: FaultKind, node: usize) -> Self {
        Fault { kind, node, peer: None }
    }

    /// Why `Lab::inject` refuses the fault in a lab of `nodes` nodes, if it does.
    pub(crate) fn check(&self, nodes: usize) -> Result<(), String> {
        if self.node >= nodes || self.peer.is_some_and(|p| p >= nodes || p == self.node) {
            return Err(format!("fault {self}: nodes are node0 to node{}, and a peer differs from the node", nodes - 1));
        }
        match self.kind {
            FaultKind::Netem => Err("fault netem (delay and loss on a node link) is not implemented yet: it needs tc netem, and the kernels netmatrix is tested on have no sch_netem; nothing was injected".into()),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} node{}", self.kind, self.node)?;
        if let Some(peer) = self.peer {
            write!(f, " <-> node{peer}")?;
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
        }
    }
    out.push_str("  }\n}\n");
    out
}

/// Chains a node's own faults add to its table.
pub fn render_node(out: &mut String, faults: &[Fault], node: usize) {
    if faults.iter().any(|f| f.kind == FaultKind::DropUdp && f.node == node) {
        // Before the policy chains, so that no accept there can let UDP through.
        out.push_str("  chain fault-forward {\n    type filter hook forward priority filter - 20; policy accept;\n    meta l4proto udp drop\n  }\n");
    }
}

pub fn active(faults: &[Fault], kind: FaultKind, node: usize) -> bool {
    faults.iter().any(|f| f.kind == kind && f.node == node)
}
