//! NetworkPolicy and admin policy (AdminNetworkPolicy, BaselineAdminNetworkPolicy,
//! ClusterNetworkPolicy) enforcement for one node, as chains of the lab's `inet` table.
//!
//! Semantics come from the oracle (`peer_matches`, `resolve_ports`, selection by namespace and
//! `podSelector`, and their `admin` counterparts), so the lab enforces what the oracle
//! predicts. Layout:
//!
//! - Base chains `policy-egress` (hook forward, priority filter), `policy-ingress` (hook forward,
//!   priority filter + 1) and `policy-input` (hook input: a pod talking to its own node, egress
//!   only). Each accepts established/related traffic, drops invalid, lets IPv6 neighbour
//!   discovery through, and dispatches on the local pod's address with a verdict map.
//! - Pod chains `egress-<h>` / `ingress-<h>` (h: a hash of the jumps): jump to the allow chain of
//!   every policy selecting the pod, then deny. Pods selected by the same policies share one
//!   chain.
//! - Allow chains `np-<namespace>/<name>-egress` / `-ingress`: the policy's rules, each an
//!   `accept`.
//! - With admin policies, a pod chain first jumps to `admin-<direction>-<h>` (h: a hash of the
//!   body): the admin tier's rules for that pod in evaluation order, Allow `accept`, Deny
//!   reject, Pass `return`, so the first matching rule decides each port and what passes or
//!   matches nothing goes on to the NetworkPolicy jumps. A pod no NetworkPolicy isolates has no
//!   deny; its chain ends with a jump to `baseline-<direction>-<h>`, the baseline tier's rules,
//!   and what that leaves is accepted. Tier chains are per pod (named ports of ingress rules
//!   resolve on it), shared by pods with the same rules.
//! - Sets `pods-<h>` (h: a hash of the addresses): pod addresses a rule names, deduplicated
//!   across rules.
//!
//! Chains and sets are named after what they hold, not numbered in rendering order: a
//! change to one policy leaves the names (and text) of everything else alone, so that
//! [`super::update`] has little to replace.
//!
//! Allowing rules `accept` rather than `return`: egress and ingress live in separate base
//! chains, and an accept only ends its own base chain, so a same-node packet still meets the
//! destination's ingress chain after passing the source's egress (a reject is final). This lets
//! one allow chain serve every pod its policy selects, so the ruleset grows with pods + policies
//! rather than pods x policies (the lab bench renders 500 pods x 200 policies on 10 nodes per
//! change).
//!
//! Traffic the node itself originates (output hook) is never filtered: "traffic to and from the
//! node where a Pod is running is always allowed". Traffic from a pod to its node is subject to
//! the pod's egress policies (as the oracle, which sees node addresses as external, predicts).
//! ipBlocks match addresses (a pod matches by the address a packet carries), pod peers match
//! every address of the pods they select, on any node.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::rc::Rc;

use ipnet::IpNet;

use netmatrix_model::{
    AdminAction, AdminPeer, AdminRule, Cluster, ContainerPort, Direction, IpBlock, Labels, NetworkPolicy, Peer, Pod, PortRef, Protocol, Rule, Tier,
};
use netmatrix_oracle::matching::{Endpoint, Options, peer_matches, resolve_ports};
use netmatrix_oracle::{ConnSet, admin};

/// Denied packets get an ICMP "administratively prohibited": probes fail at once instead of
/// timing out, and the prober can tell a policy denial from a closed port (TCP RST / ICMP port
/// unreachable).
const DENY: &str = "reject with icmpx admin-prohibited";

/// ipBlocks also match pods: what a dataplane does, since it only sees addresses.
const OPTIONS: Options = Options { ipblocks_match_pods: true };

/// First rules of every base chain. Conntrack makes policy stateful (replies and ICMP errors of
/// an allowed connection pass); IPv6 neighbour discovery (untracked) is link plumbing, not a
/// connection, and must reach isolated pods for IPv6 to work at all.
const BASE_RULES: &str = "\t\tct state established,related accept\n\t\tct state invalid drop\n\t\ticmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn of(ip: &IpAddr) -> Self {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    fn keyword(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }
}

/// An address match of one family, e.g. `ip saddr @pods-<h>`.
#[derive(Clone)]
struct Match {
    family: Family,
    text: String,
}

fn direction_index(direction: Direction) -> usize {
    match direction {
        Direction::Egress => 0,
        Direction::Ingress => 1,
    }
}

fn has_named_port(rule: &Rule) -> bool {
    rule.ports.iter().any(|p| matches!(p.port, Some(PortRef::Named(_))))
}

/// Appends the NetworkPolicy and admin policy chains of `node` to an open `table inet ... {` block.
pub fn render(out: &mut String, cluster: &Cluster, node: &str) {
    Policies::new(cluster).render(out, node);
}

/// Something rendered, with the sets it names (indices into [`Renderer::set_names`]), which a
/// node that uses it must declare.
type WithSets<T> = (T, Rc<[usize]>);

/// The NetworkPolicy chains of one node after another, sharing what does not depend on the
/// node: peer selection, address sets, and the allow chains, whose text is the same on every
/// node but for ingress rules with named ports (they resolve per selected pod). Rendering ten
/// nodes then costs little more than rendering one.
pub struct Policies<'c> {
    r: Renderer<'c>,
    /// In (namespace, name) order.
    policies: Vec<&'c NetworkPolicy>,
    /// Allow-chain bodies and the sets they name, by (policy, direction, the selected pods
    /// where the text depends on them).
    bodies: HashMap<(usize, usize, Vec<usize>), WithSets<Rc<str>>>,
}

impl<'c> Policies<'c> {
    pub fn new(cluster: &'c Cluster) -> Self {
        let mut policies: Vec<(usize, &NetworkPolicy)> = cluster.policies.iter().enumerate().collect();
        policies.sort_by(|a, b| (&a.1.namespace, &a.1.name, a.0).cmp(&(&b.1.namespace, &b.1.name, b.0)));
        Policies { r: Renderer::new(cluster), policies: policies.into_iter().map(|(_, p)| p).collect(), bodies: HashMap::new() }
    }

    /// The body of the allow chain of the `k`-th policy for `direction` and the sets it names,
    /// for the local pods `selected`.
    fn body(&mut self, k: usize, direction: Direction, selected: &[usize]) -> WithSets<Rc<str>> {
        let policy = self.policies[k];
        let per_pod = direction == Direction::Ingress && policy.rules(direction).unwrap_or_default().iter().any(has_named_port);
        let key = (k, direction_index(direction), if per_pod { selected.to_vec() } else { Vec::new() });
        if let Some(found) = self.bodies.get(&key) {
            return found.clone();
        }
        self.r.used.clear();
        let body: Rc<str> = self.r.allow_rules(policy, direction, selected).into();
        let found = (body, std::mem::take(&mut self.r.used).into());
        self.bodies.insert(key, found.clone());
        found
    }

    /// Appends the NetworkPolicy and admin policy chains of `node` to an open `table inet ... {` block.
    pub fn render(&mut self, out: &mut String, node: &str) {
        let pods = &self.r.pods;
        let local: Vec<usize> = (0..pods.len()).filter(|&i| pods[i].node.as_deref() == Some(node) && !pods[i].host_network).collect();
        if local.is_empty() {
            return;
        }
        let mut sets = Declared::default();
        let (isolation, allow) = self.allow_chains(&local, &mut sets);
        let (tiers, tier_chains) = self.tier_chains(&local, &isolation, &mut sets);
        let (dispatch, pod_chains) = self.pod_chains(&local, &isolation, &tiers);
        out.push_str(&sets.text);
        let [egress, ingress] = &dispatch;
        // Without isolated pods a base chain would only cost every packet a few lookups.
        for (name, hook, priority, lines) in
            [("policy-egress", "forward", "filter", egress), ("policy-ingress", "forward", "filter + 1", ingress), ("policy-input", "input", "filter", egress)]
        {
            if !lines.is_empty() {
                let _ = write!(out, "\tchain {name} {{\n\t\ttype filter hook {hook} priority {priority}; policy accept;\n{BASE_RULES}{lines}\t}}\n");
            }
        }
        out.push_str(&pod_chains);
        out.push_str(&tier_chains);
        out.push_str(&allow);
    }

    /// The allow chains of the policies that select the `local` pods, and per direction and
    /// local pod `Some(allow chains)` once a policy isolates it.
    fn allow_chains(&mut self, local: &[usize], sets: &mut Declared) -> (Isolation, String) {
        let mut isolation: Isolation = [vec![None; local.len()], vec![None; local.len()]];
        let mut allow = String::new();
        for k in 0..self.policies.len() {
            let policy = self.policies[k];
            for direction in Direction::BOTH {
                if policy.rules(direction).is_none() {
                    continue;
                }
                let pods = &self.r.pods;
                let selected: Vec<usize> =
                    (0..local.len()).filter(|&l| pods[local[l]].namespace == policy.namespace && policy.pod_selector.matches(&pods[local[l]].labels)).collect();
                if selected.is_empty() {
                    continue;
                }
                let selected_pods: Vec<usize> = selected.iter().map(|&l| local[l]).collect();
                let (body, used) = self.body(k, direction, &selected_pods);
                sets.declare(&self.r.set_declarations, &used);
                // A policy allowing nothing still isolates; it needs no chain.
                let chain = (!body.is_empty()).then(|| allow_chain(policy, direction));
                if let Some(name) = &chain {
                    let _ = write!(allow, "\tchain {name} {{\n\t\t# {}/{}\n{body}\t}}\n", policy.namespace, policy.name);
                }
                for l in selected {
                    isolation[direction_index(direction)][l].get_or_insert_with(Vec::new).extend(chain.clone());
                }
            }
        }
        (isolation, allow)
    }

    /// The chains of the admin and baseline tier rules of the `local` pods, and per direction and
    /// local pod the names of its (admin, baseline) chains, if any.
    fn tier_chains(&mut self, local: &[usize], isolation: &Isolation, sets: &mut Declared) -> (Tiers, String) {
        let mut tiers: Tiers = [vec![[None, None]; local.len()], vec![[None, None]; local.len()]];
        let mut tier_chains = String::new();
        let mut tier_names = HashSet::new();
        for direction in Direction::BOTH {
            for (l, &pod) in local.iter().enumerate() {
                for (t, tier) in [Tier::Admin, Tier::Baseline].into_iter().enumerate() {
                    // The baseline tier only sees traffic that no NetworkPolicy decides.
                    if tier == Tier::Baseline && isolation[direction_index(direction)][l].is_some() {
                        continue;
                    }
                    self.r.used.clear();
                    let body = self.r.tier_rules(tier, direction, pod);
                    if body.is_empty() {
                        continue;
                    }
                    sets.declare(&self.r.set_declarations, &self.r.used);
                    let kind = if tier == Tier::Admin { "admin" } else { "baseline" };
                    let name = format!("{kind}-{direction}-{:016x}", super::fnv1a(body.as_bytes()));
                    if tier_names.insert(name.clone()) {
                        let _ = write!(tier_chains, "\tchain {name} {{\n{body}\t}}\n");
                    }
                    tiers[direction_index(direction)][l][t] = Some(name);
                }
            }
        }
        (tiers, tier_chains)
    }

    /// The pod chains of the `local` pods, shared by pods with the same jumps, and per direction
    /// the verdict-map lines that send a local pod's packets to its chain.
    fn pod_chains(&self, local: &[usize], isolation: &Isolation, tiers: &Tiers) -> ([String; 2], String) {
        let mut dispatch: [String; 2] = Default::default();
        let mut pod_chains = String::new();
        for direction in Direction::BOTH {
            let d = direction_index(direction);
            // Chains keyed by what they jump to, in order of their first pod.
            let mut chains: Vec<(PodChain, Vec<usize>)> = Vec::new();
            let mut chain_of: HashMap<PodChain, usize> = HashMap::new();
            let mut vmap: [BTreeMap<IpAddr, usize>; 2] = [BTreeMap::new(), BTreeMap::new()];
            for l in 0..local.len() {
                let jumps = isolation[d][l].as_deref();
                let [admin, baseline] = &tiers[d][l];
                let key = PodChain { admin: admin.as_deref(), jumps, baseline: baseline.as_deref() };
                if key.admin.is_none() && key.jumps.is_none() && key.baseline.is_none() {
                    continue;
                }
                let n = *chain_of.entry(key).or_insert_with(|| {
                    chains.push((key, Vec::new()));
                    chains.len() - 1
                });
                chains[n].1.push(local[l]);
                for ip in &self.r.pods[local[l]].ips {
                    // Two local pods with one address is a broken input; the first (sorted) wins.
                    vmap[Family::of(ip) as usize].entry(*ip).or_insert(n);
                }
            }
            let names: Vec<String> = chains.iter().map(|(key, _)| format!("{direction}-{:016x}", key.hash())).collect();
            for ((key, pods), name) in chains.iter().zip(&names) {
                let _ = writeln!(pod_chains, "\tchain {name} {{");
                for &p in pods {
                    let _ = writeln!(pod_chains, "\t\t# {}/{}", self.r.pods[p].namespace, self.r.pods[p].name);
                }
                for jump in key.admin.into_iter().chain(key.jumps.unwrap_or_default().iter().map(String::as_str)).chain(key.baseline) {
                    let _ = writeln!(pod_chains, "\t\tjump {jump}");
                }
                // Not isolated by NetworkPolicy: what the tiers leave is allowed.
                if key.jumps.is_some() {
                    let _ = writeln!(pod_chains, "\t\t{DENY}");
                }
                pod_chains.push_str("\t}\n");
            }
            let field = match direction {
                Direction::Egress => "saddr",
                Direction::Ingress => "daddr",
            };
            let lines = &mut dispatch[d];
            for (family, map) in [Family::V4, Family::V6].into_iter().zip(&vmap) {
                if map.is_empty() {
                    continue;
                }
                let _ = write!(lines, "\t\t{} {field} vmap {{ ", family.keyword());
                for (i, (ip, n)) in map.iter().enumerate() {
                    let _ = write!(lines, "{}{ip} : jump {}", if i > 0 { ", " } else { "" }, names[*n]);
                }
                lines.push_str(" }\n");
            }
        }
        (dispatch, pod_chains)
    }
}

/// Per direction and local pod: `Some(allow chains)` once a NetworkPolicy isolates it.
type Isolation = [Vec<Option<Vec<String>>>; 2];

/// Per direction and local pod: its admin and baseline tier chains.
type Tiers = [Vec<[Option<String>; 2]>; 2];

/// The sets a node's chains name, declared in order of first use.
#[derive(Default)]
struct Declared {
    text: String,
    declared: HashSet<usize>,
}

impl Declared {
    fn declare(&mut self, declarations: &[String], used: &[usize]) {
        for &set in used {
            if self.declared.insert(set) {
                self.text.push_str(&declarations[set]);
            }
        }
    }
}

/// What a pod chain jumps to, in order: the admin tier, the NetworkPolicy allow chains (then
/// deny), or else the baseline tier.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct PodChain<'a> {
    admin: Option<&'a str>,
    /// `Some` when NetworkPolicy isolates the pod.
    jumps: Option<&'a [String]>,
    baseline: Option<&'a str>,
}

impl PodChain<'_> {
    /// A hash for the chain's name: of the jump list alone without admin policies, as it was
    /// before them, so that such rulesets keep their names.
    fn hash(&self) -> u64 {
        let jumps = self.jumps.unwrap_or_default().join(" ");
        if self.admin.is_none() && self.baseline.is_none() {
            return super::fnv1a(jumps.as_bytes());
        }
        super::fnv1a(format!("{:?} {:?} {jumps} {:?}", self.admin, self.jumps.is_some(), self.baseline).as_bytes())
    }
}

struct Renderer<'c> {
    cluster: &'c Cluster,
    /// Pods with at least one address (the only ones a rule can name), by (namespace, name).
    pods: Vec<&'c Pod>,
    /// Each pod's index in `profiles`: named ports resolve once per distinct container-port list.
    profile_of: Vec<usize>,
    profiles: Vec<&'c [ContainerPort]>,
    /// Pods of equal namespace and labels, which selectors cannot tell apart: (representative,
    /// members), so `peer_matches` runs once per class.
    classes: Vec<(usize, Vec<usize>)>,
    /// Pods each peer selects, by (policy namespace, peer): peers repeat across policies.
    peers: HashMap<(&'c str, &'c Peer), Rc<[usize]>>,
    /// Address sets by content: their names and, by the same index, declarations.
    set_ids: HashMap<Vec<IpAddr>, usize>,
    set_names: Vec<String>,
    set_declarations: Vec<String>,
    /// The sets named since [`Policies::body`] started rendering one.
    used: Vec<usize>,
    /// [`Renderer::pod_matches`] by (field, pods), with the sets they name.
    matches: HashMap<(&'static str, Vec<usize>), WithSets<Vec<Match>>>,
}

impl<'c> Renderer<'c> {
    fn new(cluster: &'c Cluster) -> Self {
        let mut pods: Vec<&Pod> = cluster.pods.iter().filter(|p| !p.ips.is_empty()).collect();
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let mut profiles: Vec<&[ContainerPort]> = Vec::new();
        let mut profile_ids: HashMap<&[ContainerPort], usize> = HashMap::new();
        let mut class_ids: HashMap<(&str, &Labels), usize> = HashMap::new();
        let mut classes: Vec<(usize, Vec<usize>)> = Vec::new();
        let mut profile_of = Vec::with_capacity(pods.len());
        for (i, pod) in pods.iter().enumerate() {
            profile_of.push(*profile_ids.entry(&pod.ports).or_insert_with(|| {
                profiles.push(&pod.ports);
                profiles.len() - 1
            }));
            let c = *class_ids.entry((&pod.namespace, &pod.labels)).or_insert_with(|| {
                classes.push((i, Vec::new()));
                classes.len() - 1
            });
            classes[c].1.push(i);
        }
        Renderer {
            cluster,
            pods,
            profile_of,
            profiles,
            classes,
            peers: HashMap::new(),
            set_ids: HashMap::new(),
            set_names: Vec::new(),
            set_declarations: Vec::new(),
            used: Vec::new(),
            matches: HashMap::new(),
        }
    }

    /// The pods that a `Pods` peer of `policy` selects.
    fn peer_pods(&mut self, policy: &'c NetworkPolicy, peer: &'c Peer) -> Rc<[usize]> {
        if let Some(found) = self.peers.get(&(policy.namespace.as_str(), peer)) {
            return found.clone();
        }
        let selected: Rc<[usize]> = self
            .classes
            .iter()
            .filter(|(rep, _)| peer_matches(self.cluster, OPTIONS, policy, peer, Endpoint::Pod(self.pods[*rep])))
            .flat_map(|(_, members)| members.iter().copied())
            .collect();
        self.peers.insert((&policy.namespace, peer), selected.clone());
        selected
    }

    /// `pods` grouped by what `rule`'s ports resolve to with each as the destination (resolved
    /// once per port profile).
    fn by_resolution(&self, rule: &Rule, pods: &[usize]) -> BTreeMap<ConnSet, Vec<usize>> {
        let mut by_profile: HashMap<usize, Vec<usize>> = HashMap::new();
        for &p in pods {
            by_profile.entry(self.profile_of[p]).or_default().push(p);
        }
        let mut groups: BTreeMap<ConnSet, Vec<usize>> = BTreeMap::new();
        for (profile, members) in by_profile {
            groups.entry(resolve_ports(&rule.ports, self.profiles[profile])).or_default().extend(members);
        }
        groups
    }

    /// Matches of `field` (saddr/daddr) on the addresses of `pods`, remembered: the same peers
    /// recur across rules, policies and nodes.
    fn pod_matches(&mut self, field: &'static str, pods: &[usize]) -> Vec<Match> {
        let key = (field, pods.to_vec());
        if let Some((matches, sets)) = self.matches.get(&key) {
            self.used.extend(sets.iter());
            return matches.clone();
        }
        let start = self.used.len();
        let matches = self.matching(field, pods, |_| true);
        self.matches.insert(key, (matches.clone(), self.used[start..].into()));
        matches
    }

    /// Matches of `field` on the addresses of `pods` that pass `keep`: one per family present,
    /// each naming a deduplicated set.
    fn matching(&mut self, field: &str, pods: &[usize], keep: impl Fn(&IpAddr) -> bool) -> Vec<Match> {
        let (mut v4, mut v6): (Vec<IpAddr>, Vec<IpAddr>) =
            pods.iter().flat_map(|&p| self.pods[p].ips.iter().copied()).filter(|ip| keep(ip)).partition(IpAddr::is_ipv4);
        let mut matches = Vec::new();
        for (family, ips) in [(Family::V4, &mut v4), (Family::V6, &mut v6)] {
            if ips.is_empty() {
                continue;
            }
            ips.sort_unstable();
            ips.dedup();
            let text = match ips.as_slice() {
                // A lone address reads better inline and costs the kernel no set.
                [ip] => format!("{} {field} {ip}", family.keyword()),
                _ => format!("{} {field} @{}", family.keyword(), self.set(family, std::mem::take(ips))),
            };
            matches.push(Match { family, text });
        }
        matches
    }

    /// The name of a set holding `ips` (sorted, deduplicated, one family).
    fn set(&mut self, family: Family, ips: Vec<IpAddr>) -> String {
        let id = match self.set_ids.get(&ips) {
            Some(&id) => id,
            None => {
                let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
                let list = list.join(", ");
                let name = format!("pods-{:016x}", super::fnv1a(list.as_bytes()));
                let kind = match family {
                    Family::V4 => "ipv4_addr",
                    Family::V6 => "ipv6_addr",
                };
                self.set_declarations.push(format!("\tset {name} {{\n\t\ttype {kind}\n\t\telements = {{ {list} }}\n\t}}\n"));
                self.set_names.push(name);
                self.set_ids.insert(ips, self.set_names.len() - 1);
                self.set_names.len() - 1
            }
        };
        self.used.push(id);
        self.set_names[id].clone()
    }

    /// The `accept` rules of `policy` for `direction`, for the local pods `selected`.
    fn allow_rules(&mut self, policy: &'c NetworkPolicy, direction: Direction, selected: &[usize]) -> String {
        let mut out = String::new();
        for (r, rule) in policy.rules(direction).unwrap_or_default().iter().enumerate() {
            let start = out.len();
            match direction {
                Direction::Ingress => self.ingress_rule(&mut out, policy, rule, selected),
                Direction::Egress => self.egress_rule(&mut out, policy, rule),
            }
            if out.len() > start {
                out.insert_str(start, &format!("\t\t# {direction} rule {r}\n"));
            }
        }
        out
    }

    /// The `direction` rules of the `tier` policies whose subject is the local pod `owner`, in
    /// evaluation order: Allow accepts, Deny rejects, Pass returns (on to the next tier), so
    /// that the first matching rule decides each port.
    fn tier_rules(&mut self, tier: Tier, direction: Direction, owner: usize) -> String {
        let (cluster, pod) = (self.cluster, self.pods[owner]);
        let mut out = String::new();
        for policy in cluster.admin_policies.iter().filter(|p| p.tier == tier && admin::selects_pod(cluster, &p.subject, pod)) {
            for (r, rule) in policy.rules(direction).iter().enumerate() {
                let start = out.len();
                self.admin_rule(&mut out, rule, direction, owner);
                if out.len() > start {
                    out.insert_str(start, &format!("\t\t# {} {} {direction} rule {r}\n", policy.kind, policy.name));
                }
            }
        }
        out
    }

    /// One admin rule for the local pod `owner`. Ports resolve against the destination: the
    /// owner for ingress, each peer pod for egress (addresses have no container ports).
    fn admin_rule(&mut self, out: &mut String, rule: &AdminRule, direction: Direction, owner: usize) {
        let verdict = match rule.action {
            AdminAction::Allow => "accept",
            AdminAction::Deny => DENY,
            AdminAction::Pass => "return",
        };
        let field = match direction {
            Direction::Ingress => "saddr",
            Direction::Egress => "daddr",
        };
        let place = |out: &mut String, m: &Match, conns: &ConnSet| match direction {
            Direction::Ingress => emit_verdict(out, None, Some(m), conns, verdict),
            Direction::Egress => emit_verdict(out, Some(m), None, conns, verdict),
        };
        let external = admin::resolve_ports(&rule.ports, if direction == Direction::Ingress { &self.pods[owner].ports } else { &[] });
        for peer in &rule.peers {
            // The addresses `networks` and `nodes` name; pods among them match by those.
            let nets: Vec<IpNet> = match peer {
                AdminPeer::Pods { .. } => Vec::new(),
                AdminPeer::Networks(nets) => nets.clone(),
                AdminPeer::Nodes(sel) => self.cluster.nodes.iter().filter(|n| sel.matches(&n.labels)).flat_map(|n| &n.addresses).map(|&ip| ip.into()).collect(),
            };
            for &cidr in &nets {
                place(out, &block_match(field, &IpBlock { cidr, except: Vec::new() }), &external);
            }
            let pods: Vec<usize> = (0..self.pods.len()).filter(|&p| admin::peer_matches(self.cluster, OPTIONS, peer, Endpoint::Pod(self.pods[p]))).collect();
            let mut groups: BTreeMap<ConnSet, Vec<usize>> = BTreeMap::new();
            for p in pods {
                let conns = if direction == Direction::Egress { admin::resolve_ports(&rule.ports, &self.pods[p].ports) } else { external.clone() };
                groups.entry(conns).or_default().push(p);
            }
            for (conns, group) in groups {
                let matches = if nets.is_empty() {
                    self.pod_matches(field, &group)
                } else if conns != external {
                    // Named ports add to what the addresses already have.
                    self.matching(field, &group, |ip| nets.iter().any(|n| n.contains(ip)))
                } else {
                    continue;
                };
                for m in matches {
                    place(out, &m, &conns);
                }
            }
        }
    }

    /// Sources are the rule's peers; ports resolve against the destination, the selected pod.
    fn ingress_rule(&mut self, out: &mut String, policy: &'c NetworkPolicy, rule: &'c Rule, selected: &[usize]) {
        let sources: Vec<Option<Match>> = if rule.peers.is_empty() {
            vec![None]
        } else {
            let mut sources: Vec<Option<Match>> = Vec::new();
            for peer in &rule.peers {
                match peer {
                    Peer::IpBlock(block) => sources.push(Some(block_match("saddr", block))),
                    Peer::Pods { .. } => {
                        let pods = self.peer_pods(policy, peer);
                        sources.extend(self.pod_matches("saddr", &pods).into_iter().map(Some));
                    }
                }
            }
            sources
        };
        if sources.is_empty() {
            return;
        }
        let groups =
            if has_named_port(rule) { self.by_resolution(rule, selected) } else { BTreeMap::from([(resolve_ports(&rule.ports, &[]), selected.to_vec())]) };
        // Destinations need telling apart only where selected pods resolve a named port differently.
        let split = groups.len() > 1;
        for (conns, pods) in &groups {
            let destinations: Vec<Option<Match>> = if split { self.pod_matches("daddr", pods).into_iter().map(Some).collect() } else { vec![None] };
            for destination in &destinations {
                for source in &sources {
                    emit(out, destination.as_ref(), source.as_ref(), conns);
                }
            }
        }
    }

    /// Destinations are the rule's peers; the chain is only entered for the selected pods.
    /// Ports resolve per destination: a pod's own container ports, none for other addresses.
    fn egress_rule(&mut self, out: &mut String, policy: &'c NetworkPolicy, rule: &'c Rule) {
        let external = resolve_ports(&rule.ports, &[]);
        let named = has_named_port(rule);
        if rule.peers.is_empty() {
            emit(out, None, None, &external);
            if named {
                let all: Vec<usize> = (0..self.pods.len()).collect();
                self.pods_beyond(out, rule, &all, &external, |_| true);
            }
            return;
        }
        for peer in &rule.peers {
            let Peer::IpBlock(block) = peer else {
                let pods = self.peer_pods(policy, peer);
                let groups = if named { self.by_resolution(rule, &pods) } else { BTreeMap::from([(external.clone(), pods.to_vec())]) };
                for (conns, pods) in &groups {
                    for destination in self.pod_matches("daddr", pods) {
                        emit(out, Some(&destination), None, conns);
                    }
                }
                continue;
            };
            emit(out, Some(&block_match("daddr", block)), None, &external);
            if named {
                let inside: Vec<usize> = (0..self.pods.len()).filter(|&p| self.pods[p].ips.iter().any(|ip| block.contains(ip))).collect();
                self.pods_beyond(out, rule, &inside, &external, |ip| block.contains(ip));
            }
        }
    }

    /// Rules for the destination pods among `pods` whose named ports add to `external`, the
    /// ports already allowed to every address the rule covers (resolution only ever adds).
    fn pods_beyond(&mut self, out: &mut String, rule: &Rule, pods: &[usize], external: &ConnSet, keep: impl Fn(&IpAddr) -> bool + Copy) {
        for (conns, group) in self.by_resolution(rule, pods) {
            if &conns != external {
                for destination in self.matching("daddr", &group, keep) {
                    emit(out, Some(&destination), None, &conns);
                }
            }
        }
    }
}

/// The allow chain of `policy` for `direction`: `np-<namespace>/<name>-<direction>`, or with a
/// hash for `<namespace>/<name>` where that is no valid nft name (too long, odd characters).
fn allow_chain(policy: &NetworkPolicy, direction: Direction) -> String {
    let key = format!("{}/{}", policy.namespace, policy.name);
    // nft names have at most 255 bytes; Kubernetes names are lower-case letters, digits, '-', '.'.
    let readable = key.len() <= 200 && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-./".contains(&b));
    if readable { format!("np-{key}-{direction}") } else { format!("np-{:016x}-{direction}", super::fnv1a(key.as_bytes())) }
}

/// `ip saddr 10.0.0.0/8 ip saddr != { 10.1.0.0/16 }`.
fn block_match(field: &str, block: &IpBlock) -> Match {
    let family = Family::of(&block.cidr.addr());
    let keyword = family.keyword();
    let mut text = format!("{keyword} {field} {}", block.cidr);
    let mut except = block.except.clone();
    except.sort_unstable();
    match except.as_slice() {
        [] => {}
        [one] => {
            let _ = write!(text, " {keyword} {field} != {one}");
        }
        many => {
            let list: Vec<String> = many.iter().map(ToString::to_string).collect();
            let _ = write!(text, " {keyword} {field} != {{ {} }}", list.join(", "));
        }
    }
    Match { family, text }
}

/// One `accept` line per protocol of `conns` (one line without a port match when `conns` is
/// everything, none when it is empty); nothing when the matches name different families.
fn emit(out: &mut String, destination: Option<&Match>, source: Option<&Match>, conns: &ConnSet) {
    emit_verdict(out, destination, source, conns, "accept");
}

/// [`emit`] with another verdict than `accept`.
fn emit_verdict(out: &mut String, destination: Option<&Match>, source: Option<&Match>, conns: &ConnSet, verdict: &str) {
    if destination.zip(source).is_some_and(|(d, s)| d.family != s.family) {
        return;
    }
    let addresses: Vec<&str> = [destination, source].into_iter().flatten().map(|m| m.text.as_str()).collect();
    let prefix = addresses.join(" ");
    let sep = if prefix.is_empty() { "" } else { " " };
    if conns.is_all() {
        let _ = writeln!(out, "\t\t{prefix}{sep}{verdict}");
        return;
    }
    for protocol in Protocol::ALL {
        let ports = conns.ports(protocol);
        if ports.is_empty() {
            continue;
        }
        let name = match protocol {
            Protocol::Sctp => "sctp",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        let _ = write!(out, "\t\t{prefix}{sep}");
        match ports.ranges() {
            _ if ports.is_full() => {
                let _ = write!(out, "meta l4proto {name}");
            }
            [(a, b)] => {
                let _ = write!(out, "{name} dport {}", range(*a, *b));
            }
            ranges => {
                let list: Vec<String> = ranges.iter().map(|&(a, b)| range(a, b)).collect();
                let _ = write!(out, "{name} dport {{ {} }}", list.join(", "));
            }
        }
        let _ = writeln!(out, " {verdict}");
    }
}

fn range(a: u16, b: u16) -> String {
    if a == b { a.to_string() } else { format!("{a}-{b}") }
}
