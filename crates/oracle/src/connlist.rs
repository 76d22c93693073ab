//! The connlist view: connectivity between workloads and external address ranges.

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

/// `Connlist::groups` of an external range.
const EXTERNAL: u32 = u32::MAX;

/// Every (source, destination) pair with some allowed connection, sorted by source then
/// destination (byte-wise, as netpol-analyzer sorts).
///
/// Lines between workloads are not stored: workloads with the same pod classes form a group,
/// `matrix` holds the connections between groups, and `iter` walks the endpoints in name order
/// and reads each line from it. So a connlist of millions of lines costs (groups)² ids and no
/// sort; only the few lines with an external range are kept. Strings are made once per
/// endpoint and per connection set.
#[derive(Debug, Default)]
pub struct Connlist {
    /// Endpoint names, sorted: an endpoint's rank is its index here.
    names: Vec<String>,
    /// Per endpoint: the group of a workload, or `EXTERNAL`.
    groups: Vec<u32>,
    /// `matrix[g * width + h]`: what any workload of group `g` may open to any of group `h`.
    width: usize,
    matrix: Vec<ConnId>,
    /// Lines with an external range, by source rank: `external[external_start[s]..external_start[s + 1]]`
    /// are (destination rank, connections), sorted by destination.
    external_start: Vec<usize>,
    external: Vec<(u32, ConnId)>,
    /// Connection strings by `ConnId` (empty for ids that no line uses).
    conns: Vec<String>,
    len: usize,
}

impl Connlist {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Line<'_>> {
        self.ids().map(|(src, dst, conn)| Line { src: &self.names[src], dst: &self.names[dst], conn: &self.conns[conn as usize] })
    }

    /// The lines as (source, destination, connections): indices into `endpoints()` and
    /// `conns()`, for writers that spell each endpoint and connection set once.
    pub fn ids(&self) -> Ids<'_> {
        let mut it = Ids { list: self, src: 0, dst: 0, ext: 0, ext_end: 0, row: &[], remaining: self.len };
        it.start_row();
        it
    }

    /// Calls `f(source, destination, connections)` for every line in order, as `ids()` yields
    /// them, stopping at the first error. For writers: a loop over each source's row that the
    /// compiler inlines `f` into, where `ids().next()` is a call per line.
    pub fn try_for_each_id<E>(&self, mut f: impl FnMut(usize, usize, ConnId) -> Result<(), E>) -> Result<(), E> {
        for src in 0..self.names.len() {
            let external = &self.external[self.external_start[src]..self.external_start[src + 1]];
            let group = self.groups[src];
            if group == EXTERNAL {
                for &(dst, conn) in external {
                    f(src, dst as usize, conn)?;
                }
                continue;
            }
            let row = &self.matrix[group as usize * self.width..(group as usize + 1) * self.width];
            let mut external = external.iter().peekable();
            for (dst, &dst_group) in self.groups.iter().enumerate() {
                let conn = if dst_group == EXTERNAL {
                    match external.next_if(|&&(d, _)| d as usize == dst) {
                        Some(&(_, conn)) => conn,
                        None => continue,
                    }
                } else if dst == src {
                    continue;
                } else {
                    row[dst_group as usize]
                };
                if conn != ConnTable::NONE {
                    f(src, dst, conn)?;
                }
            }
        }
        Ok(())
    }

    /// Endpoint names in order.
    pub fn endpoints(&self) -> &[String] {
        &self.names
    }

    /// Connection strings by id.
    pub fn conns(&self) -> &[String] {
        &self.conns
    }
}

/// The lines of a [`Connlist`] in order, as ids.
pub struct Ids<'a> {
    list: &'a Connlist,
    /// Rank of the current source, and the next destination rank to look at (workload sources).
    src: usize,
    dst: usize,
    /// The current source's external lines not yet returned.
    ext: usize,
    ext_end: usize,
    /// The current source's matrix row (empty for an external source).
    row: &'a [ConnId],
    remaining: usize,
}

impl Ids<'_> {
    #[inline]
    fn start_row(&mut self) {
        let list = self.list;
        if self.src >= list.names.len() {
            return;
        }
        self.dst = 0;
        self.ext = list.external_start[self.src];
        self.ext_end = list.external_start[self.src + 1];
        let group = list.groups[self.src];
        self.row = if group == EXTERNAL { &[] } else { &list.matrix[group as usize * list.width..(group as usize + 1) * list.width] };
    }
}

impl Iterator for Ids<'_> {
    type Item = (usize, usize, ConnId);

    // Inlined into the writers (another crate): a call per line costs as much as the line.
    #[inline]
    fn next(&mut self) -> Option<(usize, usize, ConnId)> {
        let list = self.list;
        let endpoints = list.names.len();
        while self.src < endpoints {
            if self.row.is_empty() {
                // An external source: only its stored lines.
                if self.ext < self.ext_end {
                    let (dst, conn) = list.external[self.ext];
                    self.ext += 1;
                    self.remaining -= 1;
                    return Some((self.src, dst as usize, conn));
                }
            } else {
                while self.dst < endpoints {
                    let dst = self.dst;
                    self.dst += 1;
                    let group = list.groups[dst];
                    let conn = if group == EXTERNAL {
                        match list.external.get(self.ext) {
                            Some(&(d, conn)) if self.ext < self.ext_end && d as usize == dst => {
                                self.ext += 1;
                                conn
                            }
                            _ => continue,
                        }
                    } else if dst == self.src {
                        // A workload to itself is not listed.
                        continue;
                    } else {
                        self.row[group as usize]
                    };
                    if conn != ConnTable::NONE {
                        self.remaining -= 1;
                        return Some((self.src, dst, conn));
                    }
                }
            }
            self.src += 1;
            self.start_row();
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Ids<'_> {}

/// A workload's connectivity is the union over its pods; a workload to itself is not listed.
/// Takes the reachability: its class rows become the connlist's matrix.
pub fn connlist(cluster: &Cluster, mut reach: Reachability) -> Connlist {
    let reach = &mut reach;
    // Workloads in order of first pod, each with its distinct classes.
    let mut workload_ids: FxHashMap<&WorkloadRef, usize> = FxHashMap::default();
    let mut workloads: Vec<(&WorkloadRef, Vec<ClassId>)> = Vec::new();
    for (pod, &class) in cluster.pods.iter().zip(&reach.pod_class) {
        let w = *workload_ids.entry(&pod.workload).or_insert_with(|| {
            workloads.push((&pod.workload, Vec::new()));
            workloads.len() - 1
        });
        let classes = &mut workloads[w].1;
        if !classes.contains(&class) {
            classes.push(class);
        }
    }
    drop(workload_ids);

    // Groups: a workload of one class is in the group of that class's id; workloads of several
    // classes get groups after those, one per distinct class set.
    let n = reach.classes.len();
    let mut multi_ids: FxHashMap<Vec<ClassId>, u32> = FxHashMap::default();
    let mut multi: Vec<Vec<ClassId>> = Vec::new();
    let workload_group: Vec<u32> = workloads
        .iter()
        .map(|(_, classes)| match classes[..] {
            [class] => class as u32,
            _ => {
                let mut set = classes.clone();
                set.sort_unstable();
                *multi_ids.entry(set).or_insert_with_key(|set| {
                    multi.push(set.clone());
                    (n + multi.len() - 1) as u32
                })
            }
        })
        .collect();
    let (width, matrix) = group_matrix(reach, &multi);

    // Lines with external ranges, per workload and direction.
    let mut range_ids: FxHashMap<IpRange, usize> = FxHashMap::default();
    let mut ranges: Vec<IpRange> = Vec::new();
    // (workload, direction, range, conn)
    let mut external_lines: Vec<(usize, Direction, usize, ConnId)> = Vec::new();
    for (w, (_, classes)) in workloads.iter().enumerate() {
        for direction in Direction::BOTH {
            for (range, conn) in external_runs(reach, direction, classes) {
                let r = *range_ids.entry(range).or_insert_with(|| {
                    ranges.push(range);
                    ranges.len() - 1
                });
                external_lines.push((w, direction, r, conn));
            }
        }
    }

    // Endpoints in name order: workloads, then ranges, before sorting.
    let mut names: Vec<(String, u32)> = Vec::with_capacity(workloads.len() + ranges.len());
    names.extend(workloads.iter().zip(&workload_group).map(|((w, _), &g)| (w.to_string(), g)));
    names.extend(ranges.iter().map(|r| (format!("{r}[External]"), EXTERNAL)));
    let mut order: Vec<u32> = (0..names.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| names[a as usize].0.cmp(&names[b as usize].0));
    let mut rank = vec![0u32; order.len()];
    for (r, &e) in order.iter().enumerate() {
        rank[e as usize] = r as u32;
    }
    let mut sorted: Vec<Option<(String, u32)>> = names.into_iter().map(Some).collect();
    let (names, groups): (Vec<String>, Vec<u32>) = order.iter().map(|&e| sorted[e as usize].take().expect("each endpoint once")).unzip();

    let workload_rank = |w: usize| rank[w];
    let range_rank = |r: usize| rank[workloads.len() + r];
    let mut external: Vec<(u32, u32, ConnId)> = external_lines
        .into_iter()
        .map(|(w, direction, r, conn)| match direction {
            Direction::Egress => (workload_rank(w), range_rank(r), conn),
            Direction::Ingress => (range_rank(r), workload_rank(w), conn),
        })
        .collect();
    external.sort_unstable();
    let mut external_start = vec![0usize; names.len() + 1];
    for &(s, _, _) in &external {
        external_start[s as usize + 1] += 1;
    }
    for s in 0..names.len() {
        external_start[s + 1] += external_start[s];
    }

    // Count the lines and find the connection sets they use, group by group: a group's row is
    // read once, weighted by its number of workloads, not once per workload.
    let mut members = vec![0usize; width];
    for &g in &workload_group {
        members[g as usize] += 1;
    }
    let mut used = vec![false; reach.conns.len()];
    let mut len = external.len();
    for g in 0..width {
        if members[g] == 0 {
            continue;
        }
        let row = &matrix[g * width..(g + 1) * width];
        let mut per_workload = 0;
        for (h, &conn) in row.iter().enumerate() {
            if conn != ConnTable::NONE && members[h] != 0 {
                per_workload += members[h];
                used[conn as usize] = true;
            }
        }
        // Each workload of the group is one of the group's own members: no line to itself.
        if row[g] != ConnTable::NONE {
            per_workload -= 1;
        }
        len += members[g] * per_workload;
    }
    for &(_, _, conn) in &external {
        used[conn as usize] = true;
    }
    let conns = used.iter().enumerate().map(|(id, &used)| if used { reach.conn(id as ConnId).to_string() } else { String::new() }).collect();

    Connlist { names, groups, width, matrix, external_start, external: external.into_iter().map(|(_, d, c)| (d, c)).collect(), conns, len }
}

/// What groups may open to groups: the class pair matrix, widened by one row and column per
/// set of several classes (the union over its classes).
fn group_matrix(reach: &mut Reachability, multi: &[Vec<ClassId>]) -> (usize, Vec<ConnId>) {
    let pairs = reach.take_pair_matrix();
    let n = reach.classes.len();
    if multi.is_empty() {
        return (n, pairs);
    }
    let width = n + multi.len();
    let mut matrix = vec![ConnTable::NONE; width * width];
    for c in 0..n {
        matrix[c * width..c * width + n].copy_from_slice(&pairs[c * n..(c + 1) * n]);
    }
    drop(pairs);
    let conns = &mut reach.conns;
    for (k, set) in multi.iter().enumerate() {
        let g = n + k;
        for h in 0..n {
            let (mut from, mut to) = (ConnTable::NONE, ConnTable::NONE);
            for &c in set {
                from = conns.union(from, matrix[c * width + h]);
                to = conns.union(to, matrix[h * width + c]);
            }
            matrix[g * width + h] = from;
            matrix[h * width + g] = to;
        }
    }
    for (k, set) in multi.iter().enumerate() {
        let g = n + k;
        for h in n..width {
            let mut from = ConnTable::NONE;
            for &c in set {
                from = conns.union(from, matrix[c * width + h]);
            }
            matrix[g * width + h] = from;
        }
    }
    (width, matrix)
}

/// The external lines of a workload with `classes` in one direction. Adjacent elementary
/// ranges with the same connections merge into one maximal range.
fn external_runs(reach: &mut Reachability, direction: Direction, classes: &[ClassId]) -> Vec<(IpRange, ConnId)> {
    let mut runs: Vec<(IpRange, ConnId)> = Vec::new();
    for index in 0..reach.ranges.len() {
        let range = reach.ranges[index];
        let mut conn = ConnTable::NONE;
        for &c in classes {
            let allowed = reach.allowed_external(direction, c, index);
            conn = reach.conns.union(conn, allowed);
        }
        match runs.last_mut() {
            Some((last, last_conn)) if *last_conn == conn && last.adjoins(&range) => last.last = range.last,
            _ => runs.push((range, conn)),
        }
    }
    runs.retain(|(_, c)| *c != ConnTable::NONE);
    runs
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use netmatrix_model::parse_str;
    use netmatrix_synth::{Params, generate};

    use super::*;
    use crate::Options;

    /// The connlist as first written: every workload pair's union over class pairs, every line
    /// stored, sorted at the end. The reference for the grouped, streamed one.
    fn reference(cluster: &Cluster, reach: &mut Reachability) -> Vec<(String, String, String)> {
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
                    lines.push((src.clone(), dst.clone(), reach.conn(conn).to_string()));
                }
            }
            for direction in Direction::BOTH {
                for (range, conn) in external_runs(reach, direction, src_classes) {
                    let (range, conn) = (format!("{range}[External]"), reach.conn(conn).to_string());
                    lines.push(match direction {
                        Direction::Egress => (src.clone(), range, conn),
                        Direction::Ingress => (range, src.clone(), conn),
                    });
                }
            }
        }
        lines.sort();
        lines
    }

    fn check(cluster: &Cluster, options: Options) -> usize {
        let list = connlist(cluster, Reachability::compute(cluster, options));
        let mut reach = Reachability::compute(cluster, options);
        let got: Vec<(String, String, String)> = list.iter().map(|l| (l.src.to_string(), l.dst.to_string(), l.conn.to_string())).collect();
        assert_eq!(list.len(), got.len(), "len() counts the lines iter() gives");
        assert_eq!(list.iter().len(), got.len());
        let mut walked = Vec::new();
        list.try_for_each_id(|s, d, c| {
            walked.push((s, d, c));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(walked, list.ids().collect::<Vec<_>>(), "try_for_each_id walks as ids() iterates");
        let want = reference(cluster, &mut reach);
        assert_eq!(got, want);
        got.len()
    }

    #[test]
    fn grouped_lines_equal_the_pairwise_union_on_random_clusters() {
        let mut lines = 0;
        for seed in 0..60 {
            let mut params = Params::small(seed);
            // Owners put pods of several classes (labels drawn per pod) in one workload.
            params.owners = seed % 2 == 0;
            params.label_sets_per_namespace = 2 + (seed as usize % 5);
            params.pods = 6 + (seed as usize % 13);
            let cluster = parse_str("synth.yaml", &generate(&params)).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            for ipblocks_match_pods in [true, false] {
                lines += check(&cluster, Options { ipblocks_match_pods });
            }
        }
        assert!(lines > 1000, "the clusters have lines to compare ({lines})");
    }

    #[test]
    fn workloads_with_several_classes_and_shared_classes() {
        // x/web has pods of two classes (app: a and app: b); x/one and x/two share one class;
        // only app: a may reach x/db, and 10.0.0.0/8 may reach x/db.
        let mut text = String::from("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n");
        for (pod, owner, app) in [("w1", "web", "a"), ("w2", "web", "b"), ("o1", "one", "c"), ("t1", "two", "c"), ("d1", "db", "db")] {
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}, namespace: x, labels: {{app: {app}}}, ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: {owner}, controller: true}}]}}\n"
            ));
        }
        text.push_str(
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: a}}}, {ipBlock: {cidr: 10.0.0.0/8}}]\n    ports: [{port: 5432}]\n",
        );
        let cluster = parse_str("multi.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
        check(&cluster, Options::default());
        let list = connlist(&cluster, Reachability::compute(&cluster, Options::default()));
        let lines: Vec<String> = list.iter().map(|l| format!("{} => {} : {}", l.src, l.dst, l.conn)).collect();
        assert!(lines.contains(&"x/web[ReplicaSet] => x/db[ReplicaSet] : TCP 5432".to_string()), "{lines:#?}");
        assert!(lines.contains(&"x/one[ReplicaSet] => x/two[ReplicaSet] : All Connections".to_string()), "{lines:#?}");
        assert!(!lines.iter().any(|l| l.starts_with("x/one[ReplicaSet] => x/db")), "{lines:#?}");
        assert!(lines.contains(&"10.0.0.0-10.255.255.255[External] => x/db[ReplicaSet] : TCP 5432".to_string()), "{lines:#?}");
    }

    #[test]
    fn empty_cluster_has_no_lines() {
        let cluster = parse_str("empty.yaml", "").unwrap();
        let list = connlist(&cluster, Reachability::compute(&cluster, Options::default()));
        assert!(list.is_empty());
        assert_eq!(list.iter().next(), None);
    }
}
