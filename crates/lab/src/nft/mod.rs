//! Rendering of each node's nftables ruleset from the lab's model. Pure: text in, text out;
//! applied with one `nft -f` so that a ruleset is never half applied.

pub mod policy;
pub mod service;

use std::net::Ipv4Addr;

use netmatrix_model::Cluster;

use crate::fault::{self, Fault, FaultKind};

/// The whole script for node `index` (named `node`, with addresses `node_ips`): the lab's table
/// is deleted and recreated in one transaction (the leading `table` line makes the delete valid
/// when it does not exist).
pub fn script(table: &str, cluster: &Cluster, node: &str, index: usize, node_ips: &[Ipv4Addr], faults: &[Fault]) -> String {
    let mut out = format!("table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n");
    if !fault::active(faults, FaultKind::IgnorePolicy, index) {
        policy::render(&mut out, cluster, node);
    }
    if !fault::active(faults, FaultKind::DropServices, index) {
        service::render(&mut out, cluster, node, node_ips);
    }
    fault::render_node(&mut out, faults, index);
    out.push_str("}\n");
    out
}
