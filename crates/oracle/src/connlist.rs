//! The connlist view: connectivity between workloads and external address ranges.

use std::collections::BTreeMap;

use netmatrix_model::{Cluster, Direction, WorkloadRef};
use serde::Serialize;

use crate::ports::{ConnId, ConnTable};
use crate::ranges::IpRange;
use crate::reach::{ClassId, Reachability};

/// One line of the connlist: `src => dst : conn`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Line {
    pub src: String,
    pub dst: String,
    pub conn: String,
}

/// Every (source, destination) pair with some allowed connection, sorted by source then
/// destination. A workload's connectivity is the union over its pods; a workload to itself
/// is not listed.
pub fn connlist(cluster: &Cluster, reach: &mut Reachability) -> Vec<Line> {
    let mut workloads: BTreeMap<&WorkloadRef, Vec<ClassId>> = BTreeMap::new();
    for (pod, &class) in cluster.pods.iter().zip(&reach.pod_class) {
        let classes = workloads.entry(&pod.workload).or_default();
        if !classes.contains(&class) {
            classes.push(class);
        }
    }
    let workloads: Vec<(String, Vec<ClassId>)> = workloads.into_iter().map(|(w, c)| (w.to_string(), c)).collect();
    let mut lines = Vec::new();
    for (i, (src, src_classes)) in workloads.iter().enumerate() {
        for (j, (dst, dst_classes)) in workloads.iter().enumerate() {
            if i == j {
                continue;
            }
            let mut conn = ConnTable::NONE;
            for &s in src_classes {
                for &d in dst_classes {
                    let pair = reach.pair(s, d);
                    conn = reach.conns.union(conn, pair);
                }
            }
            if conn != ConnTable::NONE {
                lines.push(Line { src: src.clone(), dst: dst.clone(), conn: reach.conn(conn).to_string() });
            }
        }
    }
    external_lines(reach, &workloads, &mut lines);
    // Byte-wise order, as netpol-analyzer sorts.
    lines.sort();
    lines
}

/// Lines between workloads and external ranges. For each workload and direction, adjacent
/// elementary ranges with the same connections merge into one maximal range.
fn external_lines(reach: &mut Reachability, workloads: &[(String, Vec<ClassId>)], lines: &mut Vec<Line>) {
    for (workload, classes) in workloads {
        for direction in Direction::BOTH {
            let mut runs: Vec<(IpRange, ConnId)> = Vec::new();
            for (index, range) in reach.ranges.iter().enumerate() {
                let mut conn = ConnTable::NONE;
                for &c in classes {
                    conn = reach.conns.union(conn, reach.allowed_external(direction, c, index));
                }
                match runs.last_mut() {
                    Some((last, last_conn)) if *last_conn == conn && last.adjoins(range) => last.last = range.last,
                    _ => runs.push((*range, conn)),
                }
            }
            for (range, conn) in runs.into_iter().filter(|(_, c)| *c != ConnTable::NONE) {
                let external = format!("{range}[External]");
                let conn = reach.conn(conn).to_string();
                let (src, dst) = match direction {
                    Direction::Egress => (workload.clone(), external),
                    Direction::Ingress => (external, workload.clone()),
                };
                lines.push(Line { src, dst, conn });
            }
        }
    }
}
