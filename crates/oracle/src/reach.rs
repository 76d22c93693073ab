//! The reachability structure: which pod class may reach which, on which ports.
//!
//! Pods that the policies cannot tell apart (same namespace, labels, container ports, ipBlock
//! memberships and, for hostNetwork pods, their node) share one class, so the cost follows the
//! number of distinct classes. Every selector is matched once per namespace set, as a bitset
//! over classes.
//!
//! Each direction's verdict walks the tiers: admin-tier rules of the policies whose subject is
//! the owner, by priority and rule order, first match per port (Allow and Deny are final, Pass
//! and no match go on); then NetworkPolicy if any isolates the owner; else the baseline tier;
//! else allowed.

use fixedbitset::FixedBitSet;
use ipnet::IpNet;
use netmatrix_model::{AdminAction, AdminPeer, Cluster, ContainerPort, Direction, IpBlock, IpFamily, LabelSelector, Labels, Peer, PortRef, Rule, Tier};
use rustc_hash::FxHashMap;

use crate::admin;
use crate::matching::{Options, pod_addresses, resolve_ports};
use crate::ports::{ConnId, ConnSet, ConnTable};
use crate::ranges::{self, IpRange};

pub type ClassId = usize;

/// What the policies can see of a pod (a key per pod: ids and borrows, no copies).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClassKey<'c> {
    namespace: usize,
    /// Index in `Builder::label_sets`.
    labels: usize,
    profile: usize,
    blocks: Vec<usize>,
    /// `Some(node)` for hostNetwork pods: admin pod selectors skip them, `nodes` peers match them.
    host: Option<Option<&'c str>>,
}

#[derive(Debug, Clone)]
pub struct Class {
    pub namespace: usize,
    /// One pod of the class, for names in messages.
    pub representative: usize,
    /// Index of the class's container-port list in `Reachability::profiles`.
    pub profile: usize,
}

/// Expected connectivity between every pair of classes and between classes and the outside.
pub struct Reachability {
    pub conns: ConnTable,
    pub pod_class: Vec<ClassId>,
    pub classes: Vec<Class>,
    /// Elementary external ranges (see `ranges::partition`).
    pub ranges: Vec<IpRange>,
    /// Distinct container-port lists; profile 0 is the empty list (also used for addresses).
    pub profiles: Vec<Vec<ContainerPort>>,
    /// `[owner * width + peer]`: for egress the owner is the source, for ingress the destination.
    rows: [Vec<ConnId>; 2],
    external_rows: [Vec<ConnId>; 2],
}

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::Egress => 0,
        Direction::Ingress => 1,
    }
}

impl Reachability {
    pub fn compute(cluster: &Cluster, options: Options) -> Self {
        Builder::new(cluster, options).build()
    }

    /// What `direction`'s policies of `owner` allow towards (egress) or from (ingress) `peer`.
    pub fn allowed_by(&self, direction: Direction, owner: ClassId, peer: ClassId) -> ConnId {
        self.rows[dir_index(direction)][owner * self.classes.len() + peer]
    }

    /// What the policies of `owner` allow to (egress) or from (ingress) the external `range`.
    pub fn allowed_external(&self, direction: Direction, owner: ClassId, range: usize) -> ConnId {
        self.external_rows[dir_index(direction)][owner * self.ranges.len() + range]
    }

    /// A connection needs both the source's egress and the destination's ingress to allow it.
    pub fn pair(&mut self, src: ClassId, dst: ClassId) -> ConnId {
        let egress = self.allowed_by(Direction::Egress, src, dst);
        let ingress = self.allowed_by(Direction::Ingress, dst, src);
        self.conns.intersect(egress, ingress)
    }

    pub fn conn(&self, id: ConnId) -> &ConnSet {
        self.conns.get(id)
    }

    /// `pair(src, dst)` of every class pair, as `[src * classes + dst]`, computed in place of
    /// the egress rows, which it takes; the ingress rows are freed. So the class rows cost no
    /// more memory than they did; `allowed_by` and `pair` may not be called after it.
    ///
    /// Computed in square tiles: the ingress rows are read across (`[dst][src]`), and a tile's
    /// rows stay in cache where a whole column would cost a cache miss per cell.
    pub(crate) fn take_pair_matrix(&mut self) -> Vec<ConnId> {
        const TILE: usize = 256;
        let n = self.classes.len();
        let [egress, ingress] = std::mem::take(&mut self.rows);
        let mut pairs = egress;
        let conns = &mut self.conns;
        for src_start in (0..n).step_by(TILE) {
            for dst_start in (0..n).step_by(TILE) {
                let dsts = dst_start..(dst_start + TILE).min(n);
                for src in src_start..(src_start + TILE).min(n) {
                    for dst in dsts.clone() {
                        pairs[src * n + dst] = conns.intersect(pairs[src * n + dst], ingress[dst * n + src]);
                    }
                }
            }
        }
        pairs
    }
}

fn has_named_port(rule: &Rule) -> bool {
    rule.ports.iter().any(|p| matches!(p.port, Some(PortRef::Named(_))))
}

/// Namespaces a peer or subject draws its pods from.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum NamespaceScope {
    Own(usize),
    /// A namespace selector, by its index in `Builder::selectors`.
    Selected(usize),
}

struct Builder<'c> {
    cluster: &'c Cluster,
    options: Options,
    conns: ConnTable,
    pod_class: Vec<ClassId>,
    classes: Vec<Class>,
    /// Distinct label sets of pods, and each class's: selectors are matched once per label set.
    label_sets: Vec<&'c Labels>,
    class_label_set: Vec<usize>,
    classes_in_namespace: Vec<Vec<ClassId>>,
    profiles: Vec<Vec<ContainerPort>>,
    classes_of_profile: Vec<FixedBitSet>,
    blocks: Vec<IpBlock>,
    block_ids: FxHashMap<IpBlock, usize>,
    /// Classes of hostNetwork pods.
    host_classes: FixedBitSet,
    class_node: Vec<Option<&'c str>>,
    block_classes: Vec<FixedBitSet>,
    block_ranges: Vec<FixedBitSet>,
    ranges: Vec<IpRange>,
    /// Distinct selectors of the cluster's objects (borrowed: looked up without copies).
    selector_ids: FxHashMap<&'c LabelSelector, usize>,
    selectors: Vec<&'c LabelSelector>,
    /// By (scope, pod selector id).
    selections: FxHashMap<(NamespaceScope, Option<usize>), FixedBitSet>,
    /// By namespace selector id: the namespaces it selects.
    namespace_selections: FxHashMap<usize, Vec<usize>>,
    /// By pod selector id: the classes it selects in any namespace.
    pod_selections: FxHashMap<usize, FixedBitSet>,
}

/// The peers of one rule, resolved.
struct RulePeers {
    classes: FixedBitSet,
    ranges: FixedBitSet,
}

impl<'c> Builder<'c> {
    fn new(cluster: &'c Cluster, options: Options) -> Self {
        let mut blocks: Vec<IpBlock> = Vec::new();
        let mut block_ids: FxHashMap<IpBlock, usize> = FxHashMap::default();
        let mut add_block = |b: &IpBlock| {
            // Looked up before cloned: most peers repeat a block already seen.
            if !block_ids.contains_key(b) {
                block_ids.insert(b.clone(), blocks.len());
                blocks.push(b.clone());
            }
        };
        for policy in &cluster.policies {
            for direction in Direction::BOTH {
                for rule in policy.rules(direction).unwrap_or_default() {
                    for peer in &rule.peers {
                        if let Peer::IpBlock(b) = peer {
                            add_block(b);
                        }
                    }
                }
            }
        }
        // `networks` CIDRs and the addresses of `nodes` peers cut the address space like ipBlocks.
        for policy in &cluster.admin_policies {
            for rule in policy.egress.iter() {
                for peer in &rule.peers {
                    match peer {
                        AdminPeer::Networks(nets) => nets.iter().for_each(|&cidr| add_block(&IpBlock { cidr, except: Vec::new() })),
                        AdminPeer::Nodes(_) => {
                            cluster.nodes.iter().flat_map(|n| &n.addresses).for_each(|&ip| add_block(&IpBlock { cidr: IpNet::from(ip), except: Vec::new() }))
                        }
                        AdminPeer::Pods { .. } => {}
                    }
                }
            }
        }
        // IPv6 traffic exists where the cluster has IPv6 addresses (masqueraded to a node's, say).
        let ranges = ranges::partition(blocks.iter(), cluster.families().contains(&IpFamily::IPv6));
        let block_ranges = blocks.iter().map(|b| ranges::ranges_in(&ranges, b)).collect();
        let mut b = Builder {
            cluster,
            options,
            conns: ConnTable::new(),
            pod_class: Vec::with_capacity(cluster.pods.len()),
            classes: Vec::new(),
            label_sets: Vec::new(),
            class_label_set: Vec::new(),
            classes_in_namespace: vec![Vec::new(); cluster.namespaces.len()],
            profiles: vec![Vec::new()],
            classes_of_profile: Vec::new(),
            blocks,
            block_ids,
            host_classes: FixedBitSet::new(),
            class_node: Vec::new(),
            block_classes: Vec::new(),
            block_ranges,
            ranges,
            selector_ids: FxHashMap::default(),
            selectors: Vec::new(),
            selections: FxHashMap::default(),
            namespace_selections: FxHashMap::default(),
            pod_selections: FxHashMap::default(),
        };
        b.classify();
        b
    }

    fn namespace_index(&self, name: &str) -> usize {
        self.cluster.namespaces.binary_search_by(|n| n.name.as_str().cmp(name)).expect("the model defines every referenced namespace")
    }

    fn classify(&mut self) {
        let cluster = self.cluster;
        let mut class_ids: FxHashMap<ClassKey<'c>, ClassId> = FxHashMap::default();
        let mut profile_ids: FxHashMap<&'c [ContainerPort], usize> = FxHashMap::default();
        profile_ids.insert(&[], 0);
        let mut label_set_ids: FxHashMap<&'c Labels, usize> = FxHashMap::default();
        let namespace_ids: FxHashMap<&str, usize> = cluster.namespaces.iter().enumerate().map(|(i, n)| (n.name.as_str(), i)).collect();
        for (pod_index, pod) in cluster.pods.iter().enumerate() {
            let namespace = *namespace_ids.get(pod.namespace.as_str()).expect("the model defines every referenced namespace");
            let next_label_set = self.label_sets.len();
            let labels = *label_set_ids.entry(&pod.labels).or_insert_with(|| {
                self.label_sets.push(&pod.labels);
                next_label_set
            });
            let next_profile = profile_ids.len();
            let profile = *profile_ids.entry(&pod.ports).or_insert_with(|| {
                self.profiles.push(pod.ports.clone());
                next_profile
            });
            let ips = pod_addresses(self.cluster, pod);
            let blocks = if self.options.ipblocks_match_pods {
                (0..self.blocks.len()).filter(|&b| ips.iter().any(|ip| self.blocks[b].contains(ip))).collect()
            } else {
                Vec::new()
            };
            let host = pod.host_network.then_some(pod.node.as_deref());
            let key = ClassKey { namespace, labels, profile, blocks, host };
            let next_class = class_ids.len();
            let class = *class_ids.entry(key).or_insert_with(|| {
                self.classes.push(Class { namespace, representative: pod_index, profile });
                self.class_label_set.push(labels);
                self.class_node.push(pod.host_network.then_some(pod.node.as_deref().unwrap_or_default()));
                self.classes_in_namespace[namespace].push(next_class);
                next_class
            });
            self.pod_class.push(class);
        }
        let n = self.classes.len();
        self.classes_of_profile = vec![FixedBitSet::with_capacity(n); self.profiles.len()];
        self.block_classes = vec![FixedBitSet::with_capacity(n); self.blocks.len()];
        self.host_classes = FixedBitSet::with_capacity(n);
        for (class_id, class) in self.classes.iter().enumerate() {
            self.classes_of_profile[class.profile].insert(class_id);
            if self.class_node[class_id].is_some() {
                self.host_classes.insert(class_id);
            }
        }
        if self.options.ipblocks_match_pods {
            for (pod_index, pod) in self.cluster.pods.iter().enumerate() {
                let ips = pod_addresses(self.cluster, pod);
                for (b, block) in self.blocks.iter().enumerate() {
                    if ips.iter().any(|ip| block.contains(ip)) {
                        self.block_classes[b].insert(self.pod_class[pod_index]);
                    }
                }
            }
        }
    }

    /// The id of a selector: equal selectors have one id.
    fn selector_id(&mut self, selector: &'c LabelSelector) -> usize {
        let next = self.selectors.len();
        *self.selector_ids.entry(selector).or_insert_with(|| {
            self.selectors.push(selector);
            next
        })
    }

    /// Classes of the pods that `pods` selects in the namespaces of `scope`; cached.
    fn select(&mut self, scope: NamespaceScope, pods: Option<&'c LabelSelector>) -> &FixedBitSet {
        let key = (scope, pods.map(|s| self.selector_id(s)));
        if !self.selections.contains_key(&key) {
            let namespaces = match key.0 {
                NamespaceScope::Own(ns) => vec![ns],
                NamespaceScope::Selected(sel) => self.select_namespaces(sel),
            };
            let n = self.classes.len();
            let in_namespaces: usize = namespaces.iter().map(|&ns| self.classes_in_namespace[ns].len()).sum();
            let mut set = FixedBitSet::with_capacity(n);
            match key.1 {
                // Many namespaces (a namespaceSelector over most of the cluster): the pod selector
                // is matched once against every label set, and the classes it selects are reused
                // for every namespace selector it comes with, instead of matching per pair.
                Some(pods) if in_namespaces * 4 >= n || self.pod_selections.contains_key(&pods) => {
                    for &ns in &namespaces {
                        self.classes_in_namespace[ns].iter().for_each(|&class| set.insert(class));
                    }
                    let (label_sets, class_label_set, selector) = (&self.label_sets, &self.class_label_set, self.selectors[pods]);
                    let selected = self.pod_selections.entry(pods).or_insert_with(|| {
                        let matches: Vec<bool> = label_sets.iter().map(|labels| selector.matches(labels)).collect();
                        let mut all = FixedBitSet::with_capacity(n);
                        all.extend((0..n).filter(|&class| matches[class_label_set[class]]));
                        all
                    });
                    set.intersect_with(selected);
                }
                pods => {
                    let selector = pods.map(|s| self.selectors[s]);
                    for &ns in &namespaces {
                        for &class in &self.classes_in_namespace[ns] {
                            if selector.is_none_or(|s| s.matches(self.label_sets[self.class_label_set[class]])) {
                                set.insert(class);
                            }
                        }
                    }
                }
            }
            self.selections.insert(key, set);
        }
        &self.selections[&key]
    }

    fn select_namespaces(&mut self, selector: usize) -> Vec<usize> {
        let (cluster, sel) = (self.cluster, self.selectors[selector]);
        self.namespace_selections
            .entry(selector)
            .or_insert_with(|| cluster.namespaces.iter().enumerate().filter(|(_, n)| sel.matches(&n.labels)).map(|(i, _)| i).collect())
            .clone()
    }

    fn rule_peers(&mut self, policy_namespace: usize, rule: &'c Rule) -> RulePeers {
        let mut classes = FixedBitSet::with_capacity(self.classes.len());
        let mut ranges = FixedBitSet::with_capacity(self.ranges.len());
        if rule.peers.is_empty() {
            // "If this field is empty or missing, this rule matches all sources/destinations."
            classes.insert_range(..);
            ranges.insert_range(..);
        }
        for peer in &rule.peers {
            match peer {
                Peer::Pods { namespaces, pods } => {
                    let scope = match namespaces {
                        None => NamespaceScope::Own(policy_namespace),
                        Some(sel) => NamespaceScope::Selected(self.selector_id(sel)),
                    };
                    classes.union_with(self.select(scope, pods.as_ref()));
                }
                Peer::IpBlock(block) => {
                    let b = self.block_ids[block];
                    classes.union_with(&self.block_classes[b]);
                    ranges.union_with(&self.block_ranges[b]);
                }
            }
        }
        RulePeers { classes, ranges }
    }

    fn build(mut self) -> Reachability {
        let rows = [self.rows(Direction::Egress), self.rows(Direction::Ingress)];
        let [(egress, egress_external), (ingress, ingress_external)] = rows;
        Reachability {
            conns: self.conns,
            pod_class: self.pod_class,
            classes: self.classes,
            ranges: self.ranges,
            profiles: self.profiles,
            rows: [egress, ingress],
            external_rows: [egress_external, ingress_external],
        }
    }

    /// Classes and ranges an admin rule's peers match.
    fn admin_peers(&mut self, peers: &'c [AdminPeer]) -> RulePeers {
        let cluster = self.cluster;
        let mut classes = FixedBitSet::with_capacity(self.classes.len());
        let mut ranges = FixedBitSet::with_capacity(self.ranges.len());
        for peer in peers {
            match peer {
                AdminPeer::Pods { namespaces, pods } => {
                    let scope = NamespaceScope::Selected(self.selector_id(namespaces));
                    let mut selected = self.select(scope, Some(pods)).clone();
                    // "Note that host-networked pods are not included in this type of peer."
                    selected.difference_with(&self.host_classes);
                    classes.union_with(&selected);
                }
                AdminPeer::Networks(nets) => {
                    for &cidr in nets {
                        let b = self.block_ids[&IpBlock { cidr, except: Vec::new() }];
                        // Pods are matched by their IPs unless ipBlocks are read as external only.
                        classes.union_with(&self.block_classes[b]);
                        ranges.union_with(&self.block_ranges[b]);
                    }
                }
                AdminPeer::Nodes(sel) => {
                    for node in cluster.nodes.iter().filter(|n| sel.matches(&n.labels)) {
                        for &ip in &node.addresses {
                            ranges.union_with(&self.block_ranges[self.block_ids[&IpBlock { cidr: IpNet::from(ip), except: Vec::new() }]]);
                        }
                        for class in self.host_classes.ones() {
                            if self.class_node[class] == Some(node.name.as_str()) {
                                classes.insert(class);
                            }
                        }
                    }
                }
            }
        }
        RulePeers { classes, ranges }
    }

    /// The admin rules of `direction` in evaluation order, and per class the indices of those
    /// whose policy's subject selects it.
    fn admin_rules(&mut self, direction: Direction) -> (Vec<AdminRuleRef>, Vec<Vec<usize>>) {
        let cluster = self.cluster;
        let mut rules = Vec::new();
        let mut applicable: Vec<Vec<usize>> = vec![Vec::new(); self.classes.len()];
        for (p, policy) in cluster.admin_policies.iter().enumerate() {
            if policy.rules(direction).is_empty() {
                continue;
            }
            let subject = self.admin_peers(std::slice::from_ref(&policy.subject)).classes;
            let first = rules.len();
            for (r, rule) in policy.rules(direction).iter().enumerate() {
                let peers = self.admin_peers(&rule.peers);
                rules.push(AdminRuleRef { policy: p, rule: r, tier: policy.tier, action: rule.action, peers });
            }
            for class in subject.ones() {
                applicable[class].extend(first..rules.len());
            }
        }
        (rules, applicable)
    }

    /// For every class: what its `direction` policies allow with every class and every range.
    fn rows(&mut self, direction: Direction) -> (Vec<ConnId>, Vec<ConnId>) {
        let cluster = self.cluster;
        let n = self.classes.len();
        // Which policies isolate each class for this direction.
        let mut isolating: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut peers: Vec<Vec<RulePeers>> = Vec::with_capacity(cluster.policies.len());
        for (p, policy) in cluster.policies.iter().enumerate() {
            let Some(rules) = policy.rules(direction) else {
                peers.push(Vec::new());
                continue;
            };
            let ns = self.namespace_index(&policy.namespace);
            for class in self.select(NamespaceScope::Own(ns), Some(&policy.pod_selector)).ones() {
                isolating[class].push(p);
            }
            peers.push(rules.iter().map(|r| self.rule_peers(ns, r)).collect());
        }
        let (admin_rules, admin_applicable) = self.admin_rules(direction);
        let mut admin_resolved: FxHashMap<(usize, usize), ConnId> = FxHashMap::default();
        let mut resolved: FxHashMap<(usize, usize, usize), ConnId> = FxHashMap::default();
        // NONE is 0: the matrices come zeroed from the allocator, and only rows that are not
        // isolated are written twice.
        let mut rows = vec![ConnTable::NONE; n * n];
        let mut external = vec![ConnTable::NONE; n * self.ranges.len()];
        for owner in 0..n {
            let isolated = !isolating[owner].is_empty();
            let row = &mut rows[owner * n..(owner + 1) * n];
            let ext_row = &mut external[owner * self.ranges.len()..(owner + 1) * self.ranges.len()];
            if !isolated {
                row.fill(ConnTable::ALL);
                ext_row.fill(ConnTable::ALL);
                if admin_applicable[owner].is_empty() {
                    continue;
                }
            }
            // Rules that allow the same ports are merged before touching cells.
            let mut groups: FxHashMap<ConnId, FixedBitSet> = FxHashMap::default();
            let mut ext_groups: FxHashMap<ConnId, FixedBitSet> = FxHashMap::default();
            for &p in &isolating[owner] {
                let rules = cluster.policies[p].rules(direction).unwrap_or_default();
                for (r, rule) in rules.iter().enumerate() {
                    let rule_peers = &peers[p][r];
                    let mut resolve = |profile: usize, conns: &mut ConnTable| {
                        *resolved.entry((p, r, profile)).or_insert_with(|| conns.intern(resolve_ports(&rule.ports, &self.profiles[profile])))
                    };
                    // Named ports resolve against the destination: the owner for ingress, the peer for egress.
                    let owner_profile = if direction == Direction::Ingress { self.classes[owner].profile } else { 0 };
                    let fixed = resolve(owner_profile, &mut self.conns);
                    ext_groups.entry(fixed).or_insert_with(|| FixedBitSet::with_capacity(self.ranges.len())).union_with(&rule_peers.ranges);
                    if direction == Direction::Ingress || !has_named_port(rule) {
                        groups.entry(fixed).or_insert_with(|| FixedBitSet::with_capacity(n)).union_with(&rule_peers.classes);
                        continue;
                    }
                    for (profile, members) in self.classes_of_profile.iter().enumerate() {
                        let mut targets = rule_peers.classes.clone();
                        targets.intersect_with(members);
                        if targets.is_clear() {
                            continue;
                        }
                        let conn = resolve(profile, &mut self.conns);
                        groups.entry(conn).or_insert_with(|| FixedBitSet::with_capacity(n)).union_with(&targets);
                    }
                }
            }
            fill_union(&mut self.conns, row, groups);
            fill_union(&mut self.conns, ext_row, ext_groups);
            let applicable = &admin_applicable[owner];
            if applicable.is_empty() {
                continue;
            }
            let mut walk = TierWalk {
                conns: &mut self.conns,
                resolved: &mut admin_resolved,
                profiles: &self.profiles,
                cluster,
                direction,
                rules: &admin_rules,
                applicable,
            };
            let owner_profile = self.classes[owner].profile;
            for (peer, cell) in row.iter_mut().enumerate() {
                let destination = if direction == Direction::Ingress { owner_profile } else { self.classes[peer].profile };
                *cell = walk.verdict(|r| r.classes.contains(peer), destination, isolated.then_some(*cell));
            }
            // Addresses have no container ports (profile 0).
            let destination = if direction == Direction::Ingress { owner_profile } else { 0 };
            for (range, cell) in ext_row.iter_mut().enumerate() {
                *cell = walk.verdict(|r| r.ranges.contains(range), destination, isolated.then_some(*cell));
            }
        }
        (rows, external)
    }
}

/// Sets every cell of `cells` (all NONE) to the union of the connections of the groups whose
/// members include it.
///
/// Rules mostly allow wide peer sets, so the groups overlap and a row ends with few distinct
/// values (about one per row at 100,000 pods). The peers are kept as a partition by value,
/// refined group by group with bitset operations, and each cell is written once; if the
/// partition fragments, the remaining groups are unioned into the cells one by one.
fn fill_union(conns: &mut ConnTable, cells: &mut [ConnId], groups: FxHashMap<ConnId, FixedBitSet>) {
    const MAX_PARTS: usize = 16;
    fn add(parts: &mut Vec<(ConnId, FixedBitSet)>, value: ConnId, bits: FixedBitSet) {
        if bits.is_clear() {
            return;
        }
        match parts.iter_mut().find(|(v, _)| *v == value) {
            Some((_, same)) => same.union_with(&bits),
            None => parts.push((value, bits)),
        }
    }
    let mut parts: Vec<(ConnId, FixedBitSet)> = Vec::new();
    let mut groups = groups.into_iter();
    for (conn, members) in groups.by_ref() {
        let mut refined = Vec::with_capacity(parts.len() + 1);
        // Members in no part yet.
        let mut rest = members.clone();
        for (value, mut bits) in parts {
            if bits.is_disjoint(&members) {
                add(&mut refined, value, bits);
                continue;
            }
            rest.difference_with(&bits);
            if bits.is_subset(&members) {
                add(&mut refined, conns.union(value, conn), bits);
                continue;
            }
            let mut inside = bits.clone();
            inside.intersect_with(&members);
            bits.difference_with(&members);
            add(&mut refined, value, bits);
            add(&mut refined, conns.union(value, conn), inside);
        }
        add(&mut refined, conn, rest);
        parts = refined;
        if parts.len() > MAX_PARTS {
            break;
        }
    }
    for (value, members) in &parts {
        set_cells(cells, members, *value);
    }
    for (conn, members) in groups {
        for peer in members.ones() {
            cells[peer] = conns.union(cells[peer], conn);
        }
    }
}

/// `cells[i] = value` for every `i` in `members`, a block of 64 at a time where all are in.
fn set_cells(cells: &mut [ConnId], members: &FixedBitSet, value: ConnId) {
    const BITS: usize = usize::BITS as usize;
    let len = cells.len();
    for (i, &block) in members.as_slice().iter().enumerate() {
        let base = i * BITS;
        if block == usize::MAX {
            cells[base..(base + BITS).min(len)].fill(value);
            continue;
        }
        let mut rest = block;
        while rest != 0 {
            cells[base + rest.trailing_zeros() as usize] = value;
            rest &= rest - 1;
        }
    }
}

/// One admin rule of one direction, with its peers resolved.
struct AdminRuleRef {
    policy: usize,
    rule: usize,
    tier: Tier,
    action: AdminAction,
    peers: RulePeers,
}

/// The tier walk of one owner's cells.
struct TierWalk<'a> {
    conns: &'a mut ConnTable,
    /// Ports of (rule, destination profile).
    resolved: &'a mut FxHashMap<(usize, usize), ConnId>,
    profiles: &'a [Vec<ContainerPort>],
    cluster: &'a Cluster,
    direction: Direction,
    rules: &'a [AdminRuleRef],
    /// Indices into `rules` of the owner's policies, in evaluation order.
    applicable: &'a [usize],
}

impl TierWalk<'_> {
    /// What reaches the owner's peer: `matches` says which rules' peers include it; `np` is what
    /// NetworkPolicy allows when some NetworkPolicy isolates the owner.
    fn verdict(&mut self, matches: impl Fn(&RulePeers) -> bool, destination: usize, np: Option<ConnId>) -> ConnId {
        let (mut undecided, mut allowed, mut passed) = (ConnTable::ALL, ConnTable::NONE, ConnTable::NONE);
        let mut in_baseline = false;
        for &i in self.applicable {
            let rule = &self.rules[i];
            if rule.tier == Tier::Baseline && !in_baseline {
                in_baseline = true;
                // "Pass: ... passes evaluation to the next tier": NetworkPolicy, which "always
                // makes a final decision for selected pods".
                undecided = self.conns.union(undecided, passed);
                passed = ConnTable::NONE;
                if let Some(np) = np {
                    let decided = self.conns.intersect(undecided, np);
                    return self.conns.union(allowed, decided);
                }
            }
            if undecided == ConnTable::NONE || !matches(&rule.peers) {
                continue;
            }
            let ports = self.ports(i, destination);
            let hit = self.conns.intersect(undecided, ports);
            match rule.action {
                AdminAction::Allow => allowed = self.conns.union(allowed, hit),
                AdminAction::Pass => passed = self.conns.union(passed, hit),
                AdminAction::Deny => {}
            }
            undecided = self.conns.subtract(undecided, ports);
        }
        undecided = self.conns.union(undecided, passed);
        if !in_baseline && let Some(np) = np {
            let decided = self.conns.intersect(undecided, np);
            return self.conns.union(allowed, decided);
        }
        // Neither tier nor NetworkPolicy decided (a baseline Pass included): the default, allowed.
        self.conns.union(allowed, undecided)
    }

    fn ports(&mut self, i: usize, destination: usize) -> ConnId {
        if let Some(&id) = self.resolved.get(&(i, destination)) {
            return id;
        }
        let rule = &self.rules[i];
        let ports = &self.cluster.admin_policies[rule.policy].rules(self.direction)[rule.rule].ports;
        let id = self.conns.intern(admin::resolve_ports(ports, &self.profiles[destination]));
        self.resolved.insert((i, destination), id);
        id
    }
}

#[cfg(test)]
mod tests {
    use netmatrix_model::parse_str;

    use super::*;

    /// Namespaces x (team: x) and z (team: z), each with pods a (app: a) and b (app: b), and
    /// `policy` (a NetworkPolicy spec) selecting x/a.
    fn world(policy: &str) -> (Cluster, Reachability) {
        let mut text = String::new();
        for ns in ["x", "z"] {
            text.push_str(&format!("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{team: {ns}}}}}\n"));
            for app in ["a", "b"] {
                text.push_str(&format!("---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {app}, namespace: {ns}, labels: {{app: {app}}}}}\n"));
            }
        }
        text.push_str(&format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: x}}\nspec:\n  podSelector: {{matchLabels: {{app: a}}}}\n{policy}"
        ));
        let cluster = parse_str("world.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
        let reach = Reachability::compute(&cluster, Options::default());
        (cluster, reach)
    }

    /// The pods (`ns/name`) with which `direction`'s policies of x/a allow some connection.
    fn allowed(cluster: &Cluster, reach: &Reachability, direction: Direction) -> Vec<String> {
        let class = |ns: &str, name: &str| reach.pod_class[cluster.pods.iter().position(|p| p.namespace == ns && p.name == name).unwrap()];
        let owner = class("x", "a");
        let pods = cluster.pods.iter().filter(|p| !reach.conn(reach.allowed_by(direction, owner, class(&p.namespace, &p.name))).is_empty());
        pods.map(|p| format!("{}/{}", p.namespace, p.name)).collect()
    }

    const ALL: [&str; 4] = ["x/a", "x/b", "z/a", "z/b"];

    #[test]
    fn a_policy_isolates_only_the_directions_it_applies_to() {
        let cases: [(&str, &[&str], &[&str]); 5] = [
            ("  policyTypes: [Ingress]\n", &[], &ALL),
            ("  policyTypes: [Egress]\n", &ALL, &[]),
            ("  policyTypes: [Ingress, Egress]\n", &[], &[]),
            // Without policyTypes: ingress always, egress only with egress rules.
            ("  ingress: [{}]\n", &ALL, &ALL),
            ("  egress: [{to: [{podSelector: {matchLabels: {app: b}}}]}]\n", &[], &["x/b"]),
        ];
        for (spec, ingress, egress) in cases {
            let (cluster, reach) = world(spec);
            assert_eq!(allowed(&cluster, &reach, Direction::Ingress), ingress, "ingress with\n{spec}");
            assert_eq!(allowed(&cluster, &reach, Direction::Egress), egress, "egress with\n{spec}");
        }
    }

    #[test]
    fn selectors_of_one_peer_and_while_peers_or() {
        let cases: [(&str, &[&str]); 6] = [
            ("[{namespaceSelector: {matchLabels: {team: z}}, podSelector: {matchLabels: {app: a}}}]", &["z/a"]),
            ("[{namespaceSelector: {matchLabels: {team: z}}}, {podSelector: {matchLabels: {app: a}}}]", &["x/a", "z/a", "z/b"]),
            // A podSelector alone selects in the policy's own namespace.
            ("[{podSelector: {}}]", &["x/a", "x/b"]),
            ("[{namespaceSelector: {}}]", &ALL),
            // An empty peer list matches every source.
            ("[]", &ALL),
            ("[{podSelector: {matchLabels: {app: c}}}]", &[]),
        ];
        for (from, want) in cases {
            let (cluster, reach) = world(&format!("  ingress: [{{from: {from}}}]\n"));
            assert_eq!(allowed(&cluster, &reach, Direction::Ingress), want, "from: {from}");
        }
    }

    /// The partition refinement gives what unioning every group into every member cell gives,
    /// also when the partition fragments past its limit and the rest goes cell by cell.
    #[test]
    fn fill_union_equals_cell_by_cell_unions() {
        use netmatrix_model::Protocol;

        use crate::ports::{ConnSet, PortSet};
        let mut conns = ConnTable::new();
        let mut seed = 7u64;
        let mut random = move |below: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % below
        };
        for case in 0..300 {
            let cells = 1 + random(200) as usize;
            let mut groups: FxHashMap<ConnId, FixedBitSet> = FxHashMap::default();
            // Up to 40 groups: more than MAX_PARTS distinct values in some cases.
            for _ in 0..random(40) {
                let port = 1 + random(30) as u16;
                let conn = match random(10) {
                    0 => ConnTable::ALL,
                    1 => ConnTable::NONE,
                    _ => conns.intern(ConnSet::single(Protocol::Tcp, PortSet::range(port, port + random(3) as u16))),
                };
                let mut members = FixedBitSet::with_capacity(cells);
                let density = 1 + random(4);
                members.extend((0..cells).filter(|_| random(4) < density));
                groups.entry(conn).or_insert_with(|| FixedBitSet::with_capacity(cells)).union_with(&members);
            }
            let mut want = vec![ConnTable::NONE; cells];
            for (&conn, members) in &groups {
                for peer in members.ones() {
                    want[peer] = conns.union(want[peer], conn);
                }
            }
            let mut got = vec![ConnTable::NONE; cells];
            fill_union(&mut conns, &mut got, groups);
            assert_eq!(got, want, "case {case}");
        }
    }

    #[test]
    fn pods_the_policies_cannot_tell_apart_share_a_class() {
        let (cluster, reach) = world("  policyTypes: [Ingress]\n");
        assert_eq!(reach.classes.len(), 4);
        let twin = "---\napiVersion: v1\nkind: Pod\nmetadata: {name: a2, namespace: x, labels: {app: a}}\n";
        let mut text: String = cluster
            .pods
            .iter()
            .map(|p| {
                format!("---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {}, namespace: {}, labels: {{app: {}}}}}\n", p.name, p.namespace, p.labels["app"])
            })
            .collect();
        text.push_str(twin);
        let cluster = parse_str("twins.yaml", &text).unwrap();
        let reach = Reachability::compute(&cluster, Options::default());
        let class = |name: &str, ns: &str| reach.pod_class[cluster.pods.iter().position(|p| p.namespace == ns && p.name == name).unwrap()];
        assert_eq!(class("a", "x"), class("a2", "x"));
        assert_ne!(class("a", "x"), class("a", "z"), "namespaces tell pods apart");
        assert_eq!(reach.classes.len(), 4);
    }
}
