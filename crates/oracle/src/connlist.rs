//! The connlist view: connectivity between workloads and external address ranges.

use std::collections::BTreeMap;

use netmatrix_model::{Cluster, Direction, WorkloadRef};
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::ports::{ConnId, ConnTable};
use crate::ranges::IpRange;
use crate::reach::{ClassId, Reachability};

/// One line of the connlist: `src => dst : conn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Line<'a> {
    pub src: &'a str,
    pub dst: &'a str,
    pub conn: &'a str,
}

/// Every (source, destination) pair with some allowed connection, sorted by source then
/// destination (byte-wise, as netpol-analyzer sorts). Lines hold ids; strings are made once
/// per endpoint and per distinct connection set, so millions of lines stay cheap.
#[derive(Debug, Default)]
pub struct Connlist {
    endpoints: Vec<String>,
    conns: Vec<String>,
    lines: Vec<(u32, u32, u32)>,
}

impl Connlist {
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Line<'_>> {
        self.lines.iter().map(|&(s, d, c)| Line { src: &self.endpoints[s as usize], dst: &self.endpoints[d as usize], conn: &self.conns[c as usize] })
    }
}

/// Builds lines, interning endpoint names and connection strings.
struct Builder<'r> {
    reach: &'r mut Reachability,
    list: Connlist,
    conn_index: FxHashMap<ConnId, u32>,
    range_index: FxHashMap<IpRange, u32>,
}

impl Builder<'_> {
    fn push(&mut self, src: u32, dst: u32, conn: ConnId) {
        let next = self.list.conns.len() as u32;
        let c = *self.conn_index.entry(conn).or_insert(next);
        if c == next {
            self.list.conns.push(self.reach.conn(conn).to_string());
        }
        self.list.lines.push((src, dst, c));
    }

    fn range(&mut self, range: IpRange) -> u32 {
        let next = self.list.endpoints.len() as u32;
        let id = *self.range_index.entry(range).or_insert(next);
        if id == next {
            self.list.endpoints.push(format!("{range}[External]"));
        }
        id
    }
}

/// A workload's connectivity is the union over its pods; a workload to itself is not listed.
pub fn connlist(cluster: &Cluster, reach: &mut Reachability) -> Connlist {
    let mut workloads: BTreeMap<&WorkloadRef, Vec<ClassId>> = BTreeMap::new();
    for (pod, &class) in cluster.pods.iter().zip(&reach.pod_class) {
        let classes = workloads.entry(&pod.workload).or_default();
        if !classes.contains(&class) {
            classes.push(class);
        }
    }
    let (names, classes): (Vec<String>, Vec<Vec<ClassId>>) = workloads.into_iter().map(|(w, c)| (w.to_string(), c)).unzip();
    let mut b =
        Builder { reach, list: Connlist { endpoints: names, ..Connlist::default() }, conn_index: FxHashMap::default(), range_index: FxHashMap::default() };
    for (i, src_classes) in classes.iter().enumerate() {
        for (j, dst_classes) in classes.iter().enumerate() {
            if i == j {
                continue;
            }
            let mut conn = ConnTable::NONE;
            for &s in src_classes {
                for &d in dst_classes {
                    let pair = b.reach.pair(s, d);
                    conn = b.reach.conns.union(conn, pair);
                }
            }
            if conn != ConnTable::NONE {
                b.push(i as u32, j as u32, conn);
            }
        }
    }
    for (w, workload_classes) in classes.iter().enumerate() {
        external_lines(&mut b, w as u32, workload_classes);
    }
    let mut list = b.list;
    let mut order: Vec<u32> = (0..list.endpoints.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| list.endpoints[a as usize].cmp(&list.endpoints[b as usize]));
    let mut rank = vec![0u32; order.len()];
    for (r, &e) in order.iter().enumerate() {
        rank[e as usize] = r as u32;
    }
    list.lines.sort_unstable_by_key(|&(s, d, _)| (rank[s as usize], rank[d as usize]));
    list
}

/// Lines between one workload and external ranges. Per direction, adjacent elementary ranges
/// with the same connections merge into one maximal range.
fn external_lines(b: &mut Builder, workload: u32, classes: &[ClassId]) {
    for direction in Direction::BOTH {
        let mut runs: Vec<(IpRange, ConnId)> = Vec::new();
        for (index, range) in b.reach.ranges.iter().enumerate() {
            let mut conn = ConnTable::NONE;
            for &c in classes {
                conn = b.reach.conns.union(conn, b.reach.allowed_external(direction, c, index));
            }
            match runs.last_mut() {
                Some((last, last_conn)) if *last_conn == conn && last.adjoins(range) => last.last = range.last,
                _ => runs.push((*range, conn)),
            }
        }
        for (range, conn) in runs.into_iter().filter(|(_, c)| *c != ConnTable::NONE) {
            let external = b.range(range);
            match direction {
                Direction::Egress => b.push(workload, external, conn),
                Direction::Ingress => b.push(external, workload, conn),
            }
        }
    }
}
