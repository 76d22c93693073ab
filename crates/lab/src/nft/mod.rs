//! Rendering of each node's nftables ruleset from the lab's model. Pure: text in, text out;
//! applied with one `nft -f` so that a ruleset is never half applied.

pub mod policy;
pub mod service;

use std::net::Ipv4Addr;

use netmatrix_model::Cluster;

use crate::fault::{self, Fault, FaultKind};

/// Opens a script that replaces `table` in one transaction (the leading `table` line makes the
/// delete valid when the table does not exist yet); the caller adds the body and the closing `}`.
pub fn replace_table(table: &str) -> String {
    format!("table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n")
}

/// The whole script for node `index` (named `node`, with addresses `node_ips`).
pub fn script(table: &str, cluster: &Cluster, node: &str, index: usize, node_ips: &[Ipv4Addr], faults: &[Fault]) -> String {
    let mut out = replace_table(table);
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
