//! The incremental oracle of `netmatrix churn`: after one change to namespaces, pods,
//! NetworkPolicies or Services it updates its verdicts without recomputing the cluster, and
//! says which cells changed.
//!
//! Cells are (source pod, destination, port): every container port of every other pod, and every
//! port of every ClusterIP Service with a selector, from every pod that is not one of its
//! endpoints (a pod reaching itself, directly or through a Service, never crosses the policy
//! rules churn measures). Verdicts are those of [`crate::Reachability`] and
//! [`crate::services::evaluate`]; a Service cell whose endpoints disagree is undefined and left
//! out. AdminNetworkPolicy and hostNetwork pods are outside its scope: refused.
//!
//! A verdict holds for every IP family of the cell's destination (its addresses:
//! [`Incremental::addresses`]): pods are matched by labels, and an ipBlock by any address of
//! the pod. A packet carries one family's address, so with ipBlock peers on pods of two
//! families the verdict could differ per family: refused.
//!
//! State: each policy compiled once (who it selects, each rule's peers as a bitset over pod
//! slots) and, per pod and direction, its row: whether it is isolated and, per port, the peers
//! its policies allow. A change recompiles what it touches and recomputes only the rows of the
//! pods whose policies or peers changed; changed cells come from the difference of old and new
//! rows.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use fixedbitset::FixedBitSet;
use netmatrix_model::{Cluster, Direction, IpFamily, Labels, Namespace, NetworkPolicy, Peer, Pod, PodKey, PortRef, Protocol, Rule, Service, ServiceType};
use rustc_hash::FxHashMap;

use crate::matching::{Options, resolve_ports};
use crate::ports::ConnSet;

/// One change to the objects, as the oracle applies it.
#[derive(Debug, Clone)]
pub enum Delta {
    /// Creates a namespace or replaces its labels.
    Namespace {
        name: String,
        labels: Labels,
    },
    /// Creates a pod or replaces the one of the same namespace and name.
    Pod(Pod),
    RemovePod(PodKey),
    /// Creates a NetworkPolicy or replaces the one of the same namespace and name.
    Policy(NetworkPolicy),
    RemovePolicy {
        namespace: String,
        name: String,
    },
    Service(Service),
    RemoveService {
        namespace: String,
        name: String,
    },
}

/// Where a cell's connection goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CellTarget {
    Pod(Arc<PodKey>),
    /// The Service's ClusterIPs.
    Service {
        namespace: String,
        name: String,
    },
}

/// A connection the oracle has a verdict for: `port` is the destination port (the container
/// port, or the Service port).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    /// Shared: a change may name thousands of cells of one pod.
    pub src: Arc<PodKey>,
    pub dst: CellTarget,
    pub port: u16,
    pub protocol: Protocol,
}

/// A cell whose verdict a change touched: `None` when the cell did not exist (a pod or Service
/// not there yet, or gone) or is undefined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellChange {
    pub cell: Cell,
    pub before: Option<bool>,
    pub after: Option<bool>,
    /// Nodes whose rules had to change for it: the nodes of the pods whose policy rows changed
    /// (and of a new pod), for a Service cell the source's node (where the proxy translates).
    pub nodes: Vec<Arc<str>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the incremental oracle does not handle {0}")]
pub struct Unsupported(String);

/// Refuses ipBlock peers where a pod has addresses of two families: the verdicts are per cell
/// and match a pod by any of its addresses, while a packet carries one family's.
fn check_ip_blocks<'a>(mut policies: impl Iterator<Item = &'a NetworkPolicy>, mut pods: impl Iterator<Item = &'a Pod>) -> Result<(), Unsupported> {
    let has_ip_block = |p: &&NetworkPolicy| {
        Direction::BOTH.iter().flat_map(|&d| p.rules(d).unwrap_or_default()).flat_map(|r| &r.peers).any(|peer| matches!(peer, Peer::IpBlock(_)))
    };
    let two_families = |p: &&Pod| p.ips.iter().any(|ip| IpFamily::of(ip) != IpFamily::of(&p.ips[0]));
    let Some(policy) = policies.find(has_ip_block) else { return Ok(()) };
    let Some(pod) = pods.find(two_families) else { return Ok(()) };
    Err(Unsupported(format!(
        "ipBlock peers (NetworkPolicy {}/{}) with pods of two IP families ({}/{}): an ipBlock matches one family's packets, and a verdict here holds for both",
        policy.namespace, policy.name, pod.namespace, pod.name
    )))
}

/// A rule's ports: the numbers it names, and the named ports resolved per destination pod.
#[derive(Clone)]
struct RulePorts {
    numeric: ConnSet,
    named: Vec<(String, Protocol)>,
}

impl RulePorts {
    fn of(rule: &Rule) -> RulePorts {
        // Named ports resolve against no container ports: only the numbers remain.
        let numeric = resolve_ports(&rule.ports, &[]);
        let named = rule
            .ports
            .iter()
            .filter_map(|p| match &p.port {
                Some(PortRef::Named(n)) => Some((n.clone(), p.protocol)),
                _ => None,
            })
            .collect();
        RulePorts { numeric, named }
    }

    fn matches(&self, (port, protocol): (u16, Protocol), destination: &Pod) -> bool {
        self.numeric.allows(protocol, port)
            || self
                .named
                .iter()
                .any(|(name, p)| *p == protocol && destination.ports.iter().any(|c| c.protocol == protocol && c.port == port && c.name.as_ref() == Some(name)))
    }
}

struct CompiledRule {
    /// `None`: the rule has no peers, so it matches every pod.
    peers: Option<FixedBitSet>,
    ports: RulePorts,
}

struct Compiled {
    policy: NetworkPolicy,
    subjects: FixedBitSet,
    rules: [Vec<CompiledRule>; 2],
}

#[derive(Clone, Default)]
struct Row {
    isolated: bool,
    /// Per port of the universe: the pod slots allowed.
    allow: Vec<FixedBitSet>,
}

fn dir(d: Direction) -> usize {
    match d {
        Direction::Egress => 0,
        Direction::Ingress => 1,
    }
}

type Key = (String, String);

pub struct Incremental {
    options: Options,
    namespaces: BTreeMap<String, Labels>,
    /// Pods by slot; a removed pod's slot is reused.
    slots: Vec<Option<Pod>>,
    slot_of: FxHashMap<PodKey, usize>,
    /// Per slot: the pod's key and node, shared by the cells that name them.
    keys: Vec<Arc<PodKey>>,
    nodes: Vec<Option<Arc<str>>>,
    live: FixedBitSet,
    /// Slots free for new pods; a slot freed by a delta is reused only by later ones, so
    /// one delta's old and new rows never mean two pods by one slot.
    free: Vec<usize>,
    freed: Vec<usize>,
    /// Every (port, protocol) a cell or a Service's target may use.
    ports: Vec<(u16, Protocol)>,
    policies: BTreeMap<Key, Compiled>,
    rows: [Vec<Row>; 2],
    services: BTreeMap<Key, Service>,
    /// Defined Service cells and their verdicts.
    service_cells: BTreeMap<Cell, bool>,
}

/// What one delta touched, before turning it into cell changes.
#[derive(Default)]
struct Touched {
    /// Old rows of the pods whose rows were recomputed, by (direction, slot).
    old_rows: FxHashMap<(usize, usize), Row>,
    /// Pods made or removed by this delta, with every cell they had before.
    appeared: Option<usize>,
    disappeared: Vec<(Cell, bool, Vec<Arc<str>>)>,
    services: BTreeSet<Key>,
}

impl Incremental {
    pub fn new(cluster: &Cluster, options: Options) -> Result<Incremental, Unsupported> {
        if !cluster.admin_policies.is_empty() {
            return Err(Unsupported("AdminNetworkPolicy, BaselineAdminNetworkPolicy or ClusterNetworkPolicy".into()));
        }
        check_ip_blocks(cluster.policies.iter(), cluster.pods.iter())?;
        let mut oracle = Incremental {
            options,
            namespaces: BTreeMap::new(),
            slots: Vec::new(),
            slot_of: FxHashMap::default(),
            keys: Vec::new(),
            nodes: Vec::new(),
            live: FixedBitSet::new(),
            free: Vec::new(),
            freed: Vec::new(),
            ports: Vec::new(),
            policies: BTreeMap::new(),
            rows: [Vec::new(), Vec::new()],
            services: BTreeMap::new(),
            service_cells: BTreeMap::new(),
        };
        for ns in &cluster.namespaces {
            oracle.namespaces.insert(ns.name.clone(), ns.labels.clone());
        }
        for pod in &cluster.pods {
            oracle.check_pod(pod)?;
            let slot = oracle.slots.len();
            oracle.slot_of.insert(PodKey::new(&pod.namespace, &pod.name), slot);
            oracle.slots.push(Some(pod.clone()));
            oracle.keys.push(Arc::new(pod.key()));
            oracle.nodes.push(pod.node.as_deref().map(Arc::from));
            oracle.namespaces.entry(pod.namespace.clone()).or_insert_with(|| Namespace::new(pod.namespace.clone(), Labels::new()).labels);
            oracle.add_ports(pod);
        }
        oracle.live = FixedBitSet::with_capacity(oracle.slots.len());
        oracle.live.insert_range(..);
        for service in &cluster.services {
            oracle.add_service_ports(service);
            oracle.services.insert((service.namespace.clone(), service.name.clone()), service.clone());
        }
        for policy in &cluster.policies {
            let compiled = oracle.compile(policy.clone());
            oracle.policies.insert((policy.namespace.clone(), policy.name.clone()), compiled);
        }
        oracle.rows = [vec![Row::default(); oracle.slots.len()], vec![Row::default(); oracle.slots.len()]];
        for slot in 0..oracle.slots.len() {
            for d in Direction::BOTH {
                oracle.rows[dir(d)][slot] = oracle.row(slot, d);
            }
        }
        let keys: Vec<Key> = oracle.services.keys().cloned().collect();
        for key in keys {
            oracle.refresh_service(&key, &mut Vec::new());
        }
        Ok(oracle)
    }

    fn check_pod(&self, pod: &Pod) -> Result<(), Unsupported> {
        if pod.host_network {
            return Err(Unsupported(format!("hostNetwork pods ({}/{})", pod.namespace, pod.name)));
        }
        Ok(())
    }

    fn add_ports(&mut self, pod: &Pod) -> bool {
        let mut added = false;
        for c in &pod.ports {
            added |= self.add_port((c.port, c.protocol));
        }
        added
    }

    fn add_service_ports(&mut self, service: &Service) -> bool {
        let mut added = false;
        for p in &service.ports {
            if let netmatrix_model::TargetPort::Number(n) = p.target_port {
                added |= self.add_port((n, p.protocol));
            }
        }
        added
    }

    fn add_port(&mut self, port: (u16, Protocol)) -> bool {
        if self.ports.contains(&port) {
            return false;
        }
        self.ports.push(port);
        true
    }

    fn slot_pod(&self, slot: usize) -> &Pod {
        self.slots[slot].as_ref().expect("a live slot")
    }

    fn peer_matches(&self, policy: &NetworkPolicy, peer: &Peer, pod: &Pod) -> bool {
        match peer {
            Peer::Pods { namespaces, pods } => {
                let namespace_ok = match namespaces {
                    None => pod.namespace == policy.namespace,
                    Some(sel) => self.namespaces.get(&pod.namespace).is_some_and(|labels| sel.matches(labels)),
                };
                namespace_ok && pods.as_ref().is_none_or(|s| s.matches(&pod.labels))
            }
            Peer::IpBlock(block) => self.options.ipblocks_match_pods && pod.ips.iter().any(|ip| block.contains(ip)),
        }
    }

    fn rule_matches(&self, policy: &NetworkPolicy, rule: &Rule, pod: &Pod) -> bool {
        rule.peers.iter().any(|peer| self.peer_matches(policy, peer, pod))
    }

    fn compile(&self, policy: NetworkPolicy) -> Compiled {
        let mut subjects = FixedBitSet::with_capacity(self.slots.len());
        let mut rules: [Vec<CompiledRule>; 2] = [Vec::new(), Vec::new()];
        for slot in self.live.ones() {
            let pod = self.slot_pod(slot);
            if pod.namespace == policy.namespace && policy.pod_selector.matches(&pod.labels) {
                subjects.insert(slot);
            }
        }
        for d in Direction::BOTH {
            for rule in policy.rules(d).unwrap_or_default() {
                let peers = (!rule.peers.is_empty()).then(|| {
                    let mut set = FixedBitSet::with_capacity(self.slots.len());
                    set.extend(self.live.ones().filter(|&s| self.rule_matches(&policy, rule, self.slot_pod(s))));
                    set
                });
                rules[dir(d)].push(CompiledRule { peers, ports: RulePorts::of(rule) });
            }
        }
        Compiled { policy, subjects, rules }
    }

    /// A pod's row for one direction, from the compiled policies of its namespace.
    fn row(&self, slot: usize, d: Direction) -> Row {
        let owner = self.slot_pod(slot);
        let mut row = Row { isolated: false, allow: vec![FixedBitSet::with_capacity(self.slots.len()); self.ports.len()] };
        let range = (owner.namespace.clone(), String::new())..;
        for (_, compiled) in self.policies.range(range).take_while(|((ns, _), _)| *ns == owner.namespace) {
            if !compiled.subjects.contains(slot) || compiled.policy.rules(d).is_none() {
                continue;
            }
            row.isolated = true;
            for rule in &compiled.rules[dir(d)] {
                let peers = rule.peers.as_ref().unwrap_or(&self.live);
                for (k, &port) in self.ports.iter().enumerate() {
                    match d {
                        // The destination is the owner: its named ports decide for every peer.
                        Direction::Ingress => {
                            if rule.ports.matches(port, owner) {
                                row.allow[k].union_with(peers);
                            }
                        }
                        Direction::Egress if rule.ports.named.is_empty() => {
                            if rule.ports.numeric.allows(port.1, port.0) {
                                row.allow[k].union_with(peers);
                            }
                        }
                        Direction::Egress => {
                            let matching: Vec<usize> = peers.ones().filter(|&q| rule.ports.matches(port, self.slot_pod(q))).collect();
                            row.allow[k].grow(self.slots.len());
                            matching.into_iter().for_each(|q| row.allow[k].insert(q));
                        }
                    }
                }
            }
        }
        row
    }

    fn allowed(&self, rows: [&Row; 2], src: usize, dst: usize, k: usize) -> bool {
        let [egress, ingress] = rows;
        let ok = |row: &Row, peer: usize| !row.isolated || row.allow.get(k).is_some_and(|a| a.contains(peer));
        ok(egress, dst) && ok(ingress, src)
    }

    fn port_index(&self, port: (u16, Protocol)) -> Option<usize> {
        self.ports.iter().position(|&p| p == port)
    }

    /// The verdict of a cell, `None` when there is no such cell (or it is undefined). It is the
    /// same for each family of the cell's addresses: ipBlock peers, which could tell them
    /// apart, are refused where pods have two families (the module's documentation).
    pub fn verdict(&self, cell: &Cell) -> Option<bool> {
        match &cell.dst {
            CellTarget::Pod(dst) => {
                let (&s, &t) = (self.slot_of.get(&*cell.src)?, self.slot_of.get(dst)?);
                let has_port = self.slot_pod(t).ports.iter().any(|c| c.port == cell.port && c.protocol == cell.protocol);
                if s == t || !has_port {
                    return None;
                }
                let k = self.port_index((cell.port, cell.protocol))?;
                Some(self.allowed([&self.rows[0][s], &self.rows[1][t]], s, t, k))
            }
            CellTarget::Service { .. } => self.service_cells.get(cell).copied(),
        }
    }

    pub fn pod(&self, key: &PodKey) -> Option<&Pod> {
        self.slot_of.get(key).map(|&s| self.slot_pod(s))
    }

    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.live.ones().map(|s| self.slot_pod(s))
    }

    /// The addresses a cell's connection may go to, one per family, the primary first: the
    /// pod's IPs, or the Service's ClusterIPs. The cell's verdict holds for each (see
    /// [`Incremental::verdict`]).
    pub fn addresses(&self, target: &CellTarget) -> Vec<IpAddr> {
        match target {
            CellTarget::Pod(key) => self.slot_of.get(&**key).map(|&s| self.slot_pod(s).ips.clone()).unwrap_or_default(),
            CellTarget::Service { namespace, name } => self.services.get(&(namespace.clone(), name.clone())).map(|s| s.cluster_ips.clone()).unwrap_or_default(),
        }
    }

    /// Every defined cell with its verdict, in order.
    pub fn cells(&self) -> Vec<(Cell, bool)> {
        let mut cells: Vec<(Cell, bool)> = Vec::new();
        for s in self.live.ones() {
            for t in self.live.ones().filter(|&t| t != s) {
                cells.extend(self.pod_cells(s, t, [&self.rows[0][s], &self.rows[1][t]]));
            }
        }
        cells.extend(self.service_cells.iter().map(|(c, &v)| (c.clone(), v)));
        cells.sort();
        cells
    }

    fn key(&self, slot: usize) -> Arc<PodKey> {
        self.keys[slot].clone()
    }

    fn pod_cells(&self, s: usize, t: usize, rows: [&Row; 2]) -> Vec<(Cell, bool)> {
        let (src, dst) = (self.key(s), self.key(t));
        self.slot_pod(t)
            .ports
            .iter()
            .filter_map(|c| {
                let k = self.port_index((c.port, c.protocol))?;
                let cell = Cell { src: src.clone(), dst: CellTarget::Pod(dst.clone()), port: c.port, protocol: c.protocol };
                Some((cell, self.allowed(rows, s, t, k)))
            })
            .collect()
    }

    fn node_of(&self, slot: usize) -> Vec<Arc<str>> {
        self.nodes[slot].iter().cloned().collect()
    }

    /// Every cell of a pod (as source and destination), with the nodes a new pod's cells need.
    fn cells_of(&self, slot: usize) -> Vec<(Cell, bool, Vec<Arc<str>>)> {
        let mut out = Vec::new();
        for other in self.live.ones().filter(|&o| o != slot) {
            for (s, t) in [(slot, other), (other, slot)] {
                let mut nodes = self.node_of(s);
                nodes.extend(self.node_of(t));
                nodes.sort();
                nodes.dedup();
                out.extend(self.pod_cells(s, t, [&self.rows[0][s], &self.rows[1][t]]).into_iter().map(|(c, v)| (c, v, nodes.clone())));
            }
        }
        let key = self.key(slot);
        out.extend(self.service_cells.iter().filter(|(c, _)| c.src == key).map(|(c, &v)| (c.clone(), v, self.node_of(slot))));
        out
    }

    /// The objects as the oracle holds them now, for a full recomputation.
    pub fn cluster(&self) -> Cluster {
        let mut cluster = Cluster {
            namespaces: self.namespaces.iter().map(|(n, l)| Namespace { name: n.clone(), labels: l.clone() }).collect(),
            pods: self.live.ones().map(|s| self.slot_pod(s).clone()).collect(),
            policies: self.policies.values().map(|c| c.policy.clone()).collect(),
            services: self.services.values().cloned().collect(),
            ..Cluster::default()
        };
        cluster.pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        cluster
    }

    /// Applies one change; returns every cell whose verdict it changed (or made, or removed).
    pub fn apply(&mut self, delta: Delta) -> Result<Vec<CellChange>, Unsupported> {
        let mut touched = Touched::default();
        match delta {
            Delta::Namespace { name, labels } => self.set_namespace(name, labels, &mut touched),
            Delta::Pod(pod) => {
                self.check_pod(&pod)?;
                check_ip_blocks(self.policies.values().map(|c| &c.policy), std::iter::once(&pod))?;
                let key = PodKey::new(&pod.namespace, &pod.name);
                if self.slot_of.contains_key(&key) {
                    self.remove_pod(&key, &mut touched);
                }
                self.add_pod(pod, &mut touched);
            }
            Delta::RemovePod(key) => self.remove_pod(&key, &mut touched),
            Delta::Policy(policy) => {
                check_ip_blocks(std::iter::once(&policy), self.pods())?;
                let key = (policy.namespace.clone(), policy.name.clone());
                let old = self.policies.remove(&key).map(|c| c.subjects).unwrap_or_default();
                let compiled = self.compile(policy);
                let mut owners = compiled.subjects.clone();
                owners.union_with(&old);
                self.policies.insert(key, compiled);
                self.recompute(owners.ones().collect(), &mut touched);
            }
            Delta::RemovePolicy { namespace, name } => {
                if let Some(old) = self.policies.remove(&(namespace, name)) {
                    self.recompute(old.subjects.ones().collect(), &mut touched);
                }
            }
            Delta::Service(service) => {
                let key = (service.namespace.clone(), service.name.clone());
                if self.add_service_ports(&service) {
                    self.recompute(self.live.ones().collect(), &mut touched);
                }
                self.services.insert(key.clone(), service);
                touched.services.insert(key);
            }
            Delta::RemoveService { namespace, name } => {
                let key = (namespace, name);
                self.services.remove(&key);
                touched.services.insert(key);
            }
        }
        let changes = self.changes(touched);
        self.free.append(&mut self.freed);
        Ok(changes)
    }

    fn set_namespace(&mut self, name: String, labels: Labels, touched: &mut Touched) {
        let labels = Namespace::new(name.clone(), labels).labels;
        if self.namespaces.get(&name) == Some(&labels) {
            return;
        }
        self.namespaces.insert(name.clone(), labels);
        let members: Vec<usize> = self.live.ones().filter(|&s| self.slot_pod(s).namespace == name).collect();
        // Only peers with a namespaceSelector see namespace labels.
        let owners = self.refresh_peers(&members, |peer| matches!(peer, Peer::Pods { namespaces: Some(_), .. }));
        self.recompute(owners, touched);
    }

    /// Re-evaluates the compiled peers (those `relevant` says may have changed) for `pods`;
    /// returns the subjects of every policy whose peers changed.
    fn refresh_peers(&mut self, pods: &[usize], relevant: impl Fn(&Peer) -> bool) -> Vec<usize> {
        let mut owners = FixedBitSet::with_capacity(self.slots.len());
        let mut updates: Vec<(Key, usize, usize, usize, bool)> = Vec::new();
        for (key, compiled) in &self.policies {
            for d in Direction::BOTH {
                let rules = compiled.policy.rules(d).unwrap_or_default();
                for (i, (rule, c)) in rules.iter().zip(&compiled.rules[dir(d)]).enumerate() {
                    let Some(peers) = &c.peers else { continue };
                    if !rule.peers.iter().any(&relevant) {
                        continue;
                    }
                    for &slot in pods {
                        let now = self.live.contains(slot) && self.rule_matches(&compiled.policy, rule, self.slot_pod(slot));
                        if now != peers.contains(slot) {
                            updates.push((key.clone(), dir(d), i, slot, now));
                        }
                    }
                }
            }
        }
        for (key, d, i, slot, now) in updates {
            let compiled = self.policies.get_mut(&key).expect("just seen");
            let peers = compiled.rules[d][i].peers.as_mut().expect("just seen");
            peers.grow(slot + 1);
            peers.set(slot, now);
            owners.union_with(&compiled.subjects);
        }
        owners.ones().collect()
    }

    fn add_pod(&mut self, pod: Pod, touched: &mut Touched) {
        self.namespaces.entry(pod.namespace.clone()).or_insert_with(|| Namespace::new(pod.namespace.clone(), Labels::new()).labels);
        let new_port = self.add_ports(&pod);
        let slot = match self.free.pop() {
            Some(free) => free,
            None => {
                self.slots.push(None);
                self.keys.push(Arc::new(pod.key()));
                self.nodes.push(None);
                self.rows.iter_mut().for_each(|r| r.push(Row::default()));
                self.slots.len() - 1
            }
        };
        self.keys[slot] = Arc::new(pod.key());
        self.nodes[slot] = pod.node.as_deref().map(Arc::from);
        self.slot_of.insert(PodKey::new(&pod.namespace, &pod.name), slot);
        let namespace = pod.namespace.clone();
        self.slots[slot] = Some(pod);
        self.live.grow(self.slots.len());
        self.live.insert(slot);
        let mut changed: Vec<usize> = Vec::new();
        for compiled in self.policies.values_mut() {
            let pod = self.slots[slot].as_ref().expect("just placed");
            let selected = compiled.policy.namespace == namespace && compiled.policy.pod_selector.matches(&pod.labels);
            compiled.subjects.grow(slot + 1);
            compiled.subjects.set(slot, selected);
        }
        // Rules without peers match the new pod too: their policies' rows gain it.
        for compiled in self.policies.values() {
            if compiled.rules.iter().flatten().any(|r| r.peers.is_none()) {
                changed.extend(compiled.subjects.ones());
            }
        }
        changed.extend(self.refresh_peers(&[slot], |_| true));
        let owners: Vec<usize> = if new_port { self.live.ones().collect() } else { changed };
        self.recompute(owners, touched);
        for d in Direction::BOTH {
            self.rows[dir(d)][slot] = self.row(slot, d);
        }
        touched.old_rows.retain(|&(_, s), _| s != slot);
        touched.appeared = Some(slot);
        touched.services.extend(self.services.keys().cloned());
    }

    fn remove_pod(&mut self, key: &PodKey, touched: &mut Touched) {
        let Some(slot) = self.slot_of.remove(key) else { return };
        touched.disappeared = self.cells_of(slot);
        let namespace = self.slot_pod(slot).namespace.clone();
        self.live.set(slot, false);
        let mut owners = FixedBitSet::with_capacity(self.slots.len());
        for compiled in self.policies.values_mut() {
            compiled.subjects.set(slot, false);
            let mut had = compiled.rules.iter().flatten().any(|r| r.peers.is_none());
            for rule in compiled.rules.iter_mut().flatten() {
                if let Some(peers) = rule.peers.as_mut().filter(|p| p.contains(slot)) {
                    peers.set(slot, false);
                    had = true;
                }
            }
            if had {
                owners.union_with(&compiled.subjects);
            }
        }
        self.recompute(owners.ones().collect(), touched);
        touched.old_rows.retain(|&(_, s), _| s != slot);
        self.slots[slot] = None;
        self.freed.push(slot);
        self.rows.iter_mut().for_each(|r| r[slot] = Row::default());
        self.service_cells.retain(|c, _| *c.src != *key);
        touched.services.extend(self.services.keys().filter(|(ns, _)| *ns == namespace).cloned());
    }

    /// Recomputes the rows of `owners`, keeping their old rows.
    fn recompute(&mut self, owners: Vec<usize>, touched: &mut Touched) {
        for slot in owners {
            if !self.live.contains(slot) {
                continue;
            }
            for d in Direction::BOTH {
                let new = self.row(slot, d);
                let old = std::mem::replace(&mut self.rows[dir(d)][slot], new);
                touched.old_rows.entry((dir(d), slot)).or_insert(old);
            }
        }
    }

    /// The endpoints of a Service port that are pods: slot and the port traffic goes to.
    fn endpoints(&self, service: &Service, port: usize) -> Vec<(usize, u16)> {
        let sp = &service.ports[port];
        self.live
            .ones()
            .filter_map(|s| {
                let pod = self.slot_pod(s);
                let selected = service.selects(pod);
                let ready = service.publish_not_ready_addresses || (pod.ready && !pod.terminating);
                (selected && ready).then(|| sp.target_port.resolve(sp.protocol, &pod.ports).map(|p| (s, p)))?
            })
            .collect()
    }

    /// Recomputes a Service's cells for every source, recording the changes.
    fn refresh_service(&mut self, key: &Key, changes: &mut Vec<CellChange>) {
        let old: Vec<(Cell, bool)> = self
            .service_cells
            .iter()
            .filter(|(c, _)| matches!(&c.dst, CellTarget::Service { namespace, name } if (namespace, name) == (&key.0, &key.1)))
            .map(|(c, &v)| (c.clone(), v))
            .collect();
        let mut new: BTreeMap<Cell, bool> = BTreeMap::new();
        if let Some(service) = self.services.get(key).filter(|s| s.cluster_ip.is_some() && !s.headless && s.service_type != ServiceType::ExternalName) {
            for port in 0..service.ports.len() {
                let endpoints = self.endpoints(service, port);
                for s in self.live.ones() {
                    if endpoints.iter().any(|&(e, _)| e == s) {
                        continue;
                    }
                    let verdicts: BTreeSet<bool> = endpoints
                        .iter()
                        .map(|&(e, target)| {
                            let k = self.port_index((target, service.ports[port].protocol));
                            k.is_some_and(|k| self.allowed([&self.rows[0][s], &self.rows[1][e]], s, e, k))
                        })
                        .collect();
                    let verdict = match verdicts.len() {
                        0 => Some(false),
                        1 => verdicts.first().copied(),
                        _ => None,
                    };
                    if let Some(v) = verdict {
                        let sp = &service.ports[port];
                        let dst = CellTarget::Service { namespace: key.0.clone(), name: key.1.clone() };
                        new.insert(Cell { src: self.key(s), dst, port: sp.port, protocol: sp.protocol }, v);
                    }
                }
            }
        }
        for (cell, before) in &old {
            let after = new.get(cell).copied();
            if after != Some(*before) {
                let nodes = self.slot_of.get(&*cell.src).map(|&s| self.node_of(s)).unwrap_or_default();
                changes.push(CellChange { cell: cell.clone(), before: Some(*before), after, nodes });
            }
            self.service_cells.remove(cell);
        }
        for (cell, after) in new {
            if !old.iter().any(|(c, _)| *c == cell) {
                let nodes = self.node_of(self.slot_of[&*cell.src]);
                changes.push(CellChange { cell: cell.clone(), before: None, after: Some(after), nodes });
            }
            self.service_cells.insert(cell, after);
        }
    }

    fn cell(&self, s: usize, t: usize, k: usize) -> Cell {
        let (port, protocol) = self.ports[k];
        Cell { src: self.key(s), dst: CellTarget::Pod(self.key(t)), port, protocol }
    }

    fn serves(&self, slot: usize, k: usize) -> bool {
        let (port, protocol) = self.ports[k];
        self.slot_pod(slot).ports.iter().any(|c| c.port == port && c.protocol == protocol)
    }

    fn changes(&mut self, touched: Touched) -> Vec<CellChange> {
        let mut out: Vec<CellChange> = Vec::new();
        let old_row = |d: usize, s: usize| touched.old_rows.get(&(d, s)).unwrap_or(&self.rows[d][s]);
        // Pod cells from each changed row: the peers whose allowance moved, by slot, so that
        // only the cells whose verdict changed are named.
        let mut at: FxHashMap<(usize, usize, usize), usize> = FxHashMap::default();
        let new_pod = |p: usize| touched.appeared == Some(p);
        for (&(d, owner), old) in &touched.old_rows {
            // A new pod's cells are all new: `appeared` lists them.
            if new_pod(owner) || !self.live.contains(owner) {
                continue;
            }
            let new = &self.rows[d][owner];
            for k in 0..self.ports.len() {
                let moved = if old.isolated != new.isolated {
                    self.live.clone()
                } else {
                    let mut x = old.allow.get(k).cloned().unwrap_or_default();
                    x.symmetric_difference_with(new.allow.get(k).unwrap_or(&FixedBitSet::new()));
                    x
                };
                for peer in moved.ones().filter(|&p| p != owner && self.live.contains(p) && !new_pod(p)) {
                    let (s, t) = if d == 0 { (owner, peer) } else { (peer, owner) };
                    if !self.serves(t, k) {
                        continue;
                    }
                    let before = self.allowed([old_row(0, s), old_row(1, t)], s, t, k);
                    let after = self.allowed([&self.rows[0][s], &self.rows[1][t]], s, t, k);
                    if before == after {
                        continue;
                    }
                    let node = self.nodes[owner].clone();
                    match at.get(&(s, t, k)) {
                        Some(&i) => {
                            if let Some(n) = node.filter(|n| !out[i].nodes.contains(n)) {
                                out[i].nodes.push(n);
                            }
                        }
                        None => {
                            at.insert((s, t, k), out.len());
                            out.push(CellChange { cell: self.cell(s, t, k), before: Some(before), after: Some(after), nodes: node.into_iter().collect() });
                        }
                    }
                }
            }
        }
        // Cells of pods gone or made, and of Services, merged by cell: a replaced pod's cells
        // are gone and made again.
        let mut by_cell: FxHashMap<Cell, usize> = FxHashMap::default();
        let mut merged: Vec<CellChange> = Vec::new();
        let mut add = |change: CellChange| match by_cell.get(&change.cell) {
            Some(&i) => {
                let entry: &mut CellChange = &mut merged[i];
                entry.after = change.after;
                for n in change.nodes {
                    if !entry.nodes.contains(&n) {
                        entry.nodes.push(n);
                    }
                }
            }
            None => {
                by_cell.insert(change.cell.clone(), merged.len());
                merged.push(change);
            }
        };
        for (cell, before, nodes) in touched.disappeared {
            add(CellChange { cell, before: Some(before), after: None, nodes });
        }
        if let Some(slot) = touched.appeared {
            for (cell, after, nodes) in self.cells_of(slot) {
                add(CellChange { cell, before: None, after: Some(after), nodes });
            }
        }
        // Services whose endpoints or whose endpoints' and sources' rows changed.
        let mut services = touched.services;
        if !touched.old_rows.is_empty() {
            services.extend(self.services.keys().cloned());
        }
        let mut service_changes = Vec::new();
        for key in services {
            self.refresh_service(&key, &mut service_changes);
        }
        service_changes.into_iter().for_each(&mut add);
        out.extend(merged.into_iter().filter(|c| c.before != c.after));
        out
    }
}

/// Every cell the full oracle defines, named as the incremental one names them: pod-to-pod
/// from [`crate::Reachability`], Services from [`crate::services::evaluate`] under `profile`
/// (hairpin cells left out, undefined ones too). The reference the incremental oracle is held
/// to, recomputed from scratch.
pub fn full_cells(cluster: &Cluster, options: Options, profile: crate::Profile) -> BTreeMap<Cell, bool> {
    use crate::services::{FrontendKind, Verdict, evaluate, frontends};
    let mut reach = crate::Reachability::compute(cluster, options);
    let keys: Vec<Arc<PodKey>> = cluster.pods.iter().map(|p| Arc::new(p.key())).collect();
    let mut cells = BTreeMap::new();
    for s in 0..cluster.pods.len() {
        for (t, dst) in cluster.pods.iter().enumerate().filter(|&(t, _)| t != s) {
            let conn = reach.pair(reach.pod_class[s], reach.pod_class[t]);
            for c in &dst.ports {
                let cell = Cell { src: keys[s].clone(), dst: CellTarget::Pod(keys[t].clone()), port: c.port, protocol: c.protocol };
                cells.insert(cell, reach.conn(conn).allows(c.protocol, c.port));
            }
        }
    }
    for frontend in frontends(cluster).into_iter().filter(|f| f.kind == FrontendKind::ClusterIp) {
        let service = &cluster.services[frontend.service];
        let port = &service.ports[frontend.port];
        for (s, src) in cluster.pods.iter().enumerate() {
            let hairpin = service.selects(src) && src.ready && port.target_port.resolve(port.protocol, &src.ports).is_some();
            if hairpin {
                continue;
            }
            let dst = CellTarget::Service { namespace: service.namespace.clone(), name: service.name.clone() };
            let cell = Cell { src: keys[s].clone(), dst, port: port.port, protocol: port.protocol };
            match evaluate(cluster, &mut reach, s, &frontend, profile).verdict {
                Verdict::Allow => cells.insert(cell, true),
                Verdict::Deny => cells.insert(cell, false),
                Verdict::Undefined => None,
            };
        }
    }
    cells
}
