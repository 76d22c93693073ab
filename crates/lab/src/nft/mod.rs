//! Rendering of each node's nftables ruleset from the lab's model. Pure: text in, text out;
//! applied with one `nft -f` so that a ruleset is never half applied: the whole table
//! ([`script`]), or only what changed since the last apply ([`update`]).

pub mod policy;
pub mod service;
pub(crate) mod table;

use std::net::IpAddr;

use netmatrix_model::{Cluster, IpFamily};

use crate::fault::{self, Fault, FaultKind};
pub use table::{replace_table, update};

/// The whole script for node `index` (named `node`, with addresses `node_ips`).
pub fn script(table: &str, cluster: &Cluster, node: &str, index: usize, node_ips: &[IpAddr], faults: &[Fault]) -> String {
    Scripts::new(table, cluster).node(node, index, node_ips, faults)
}

/// The scripts of several nodes of one cluster, rendered one after another so that they share
/// the policy work that does not depend on the node.
pub struct Scripts<'c> {
    table: &'c str,
    cluster: &'c Cluster,
    policies: policy::Policies<'c>,
}

impl<'c> Scripts<'c> {
    pub fn new(table: &'c str, cluster: &'c Cluster) -> Self {
        Scripts { table, cluster, policies: policy::Policies::new(cluster) }
    }

    /// The whole script for node `index` (named `node`, with addresses `node_ips`).
    pub fn node(&mut self, node: &str, index: usize, node_ips: &[IpAddr], faults: &[Fault]) -> String {
        let mut out = replace_table(self.table);
        if !fault::active(faults, FaultKind::IgnorePolicy, index) {
            self.policies.render(&mut out, node);
        }
        if !fault::active(faults, FaultKind::DropServices, index) {
            let proxied: &[IpFamily] = if fault::active(faults, FaultKind::SingleFamilyServices, index) { &[IpFamily::IPv4] } else { &IpFamily::BOTH };
            service::render(&mut out, self.cluster, node, node_ips, proxied);
        }
        fault::render_node(&mut out, faults, index);
        out.push_str("}\n");
        out
    }
}

/// FNV-1a: a short, stable name for content (sets, over-long chain names), the same in every
/// build so that renderings and snapshots do not change with the Rust version.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
