//! Rendering of each node's nftables ruleset from the lab's model. Pure: text in, text out;
//! applied with one `nft -f` so that a ruleset is never half applied.

pub mod policy;

use netmatrix_model::Cluster;

/// The whole script for one node: the lab's table is deleted and recreated in one transaction
/// (the leading `table` line makes the delete valid when the table does not exist yet).
pub fn script(table: &str, cluster: &Cluster, node: &str) -> String {
    let mut out = format!("table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n");
    policy::render(&mut out, cluster, node);
    out.push_str("}\n");
    out
}
