//! Why a connection is allowed or denied: the policies that select each end, the rules
//! (policy, rule index, peer index) that allow it, and with admin policies the tier walk.

use std::net::IpAddr;

use netmatrix_model::{AdminAction, Cluster, ContainerPort, Direction, NetworkPolicy, Pod, Protocol, Tier};
use serde::Serialize;

use crate::admin;
pub use crate::matching::Endpoint;
use crate::matching::{Options, peer_matches, resolve_ports};
use crate::ports::ConnSet;

/// Finds an endpoint by `ns/name` (a pod or workload), `ns/name[Kind]`, `name` (namespace
/// `default`) or an IP address.
pub fn find_endpoint<'c>(cluster: &'c Cluster, text: &str) -> Result<Endpoint<'c>, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Endpoint::External(ip));
    }
    let (path, kind) = match text.strip_suffix(']').and_then(|t| t.split_once('[')) {
        Some((path, kind)) => (path, Some(kind)),
        None => (text, None),
    };
    let (namespace, name) = path.split_once('/').unwrap_or(("default", path));
    let by_pod = cluster.pods.iter().filter(|p| kind.is_none() && p.namespace == namespace && p.name == name);
    let by_workload = cluster.pods.iter().filter(|p| p.workload.namespace == namespace && p.workload.name == name && kind.is_none_or(|k| k == p.workload.kind));
    let mut found: Vec<&Pod> = by_pod.chain(by_workload).collect();
    found.dedup_by(|a, b| std::ptr::eq(*a, *b));
    let mut workloads: Vec<String> = found.iter().map(|p| p.workload.to_string()).collect();
    workloads.sort();
    workloads.dedup();
    match (found.first(), workloads.len()) {
        (None, _) => Err(format!("no pod or workload {text:?} in the input (write namespace/name, namespace/name[Kind] or an IP address)")),
        (Some(pod), 1) => Ok(Endpoint::Pod(pod)),
        _ => Err(format!("{text:?} is ambiguous: {}; add the kind, e.g. {}", workloads.join(", "), workloads[0])),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub src: String,
    pub dst: String,
    /// The port asked about, if any: then only rules allowing it are listed, and the verdict
    /// is about that port.
    pub port: Option<u16>,
    pub protocol: Option<Protocol>,
    pub egress: Side,
    pub ingress: Side,
    /// What both sides allow together.
    pub allowed: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allowed,
    Denied,
}

/// One direction's decision, taken by the policies of the pod at that end.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub direction: Direction,
    /// The pod whose policies decide; `None` for an external address (nothing to decide).
    pub pod: Option<String>,
    /// Policies (`ns/name`) that select the pod for this direction.
    pub selected_by: Vec<String>,
    /// Isolated pods accept only what some rule allows; others accept everything.
    pub isolated: bool,
    pub allowing_rules: Vec<RuleMatch>,
    /// With admin policies in the input: the tiers in evaluation order, each step deciding some ports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierStep>,
    pub allowed: String,
}

/// One decision of the tier walk.
#[derive(Debug, Clone, Serialize)]
pub struct TierStep {
    /// `ANP`, `BANP`, `CNP` (admin or baseline tier), `NP` or `default`.
    pub tag: String,
    /// `allow`, `deny`, `pass`, or for `NP` without a selecting policy `no policy`.
    pub action: String,
    /// The deciding policy (admin: its name; NP: the isolating policies, `ns/name`).
    pub policies: Vec<String>,
    /// The admin rule: index and name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// The ports this step decides (those earlier steps left).
    pub ports: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleMatch {
    pub policy: String,
    pub rule: usize,
    /// Index of the matching peer; `None` when the rule lists no peers (it matches every peer).
    pub peer: Option<usize>,
    pub ports: String,
}

impl Side {
    /// This direction's decision in a few words: the rules or tiers that decided, or why
    /// nothing allowed it.
    pub fn summary(&self) -> String {
        let direction = match self.direction {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        };
        let pod = self.pod.as_deref().unwrap_or("the address");
        if !self.tiers.is_empty() {
            let walk: Vec<String> = self.tiers.iter().map(|t| format!("[{}] {} ({})", t.tag, t.action, t.policies.join(", "))).collect();
            return format!("{direction} of {pod}: {}", walk.join(" -> "));
        }
        if !self.isolated {
            return format!("{direction} of {pod}: no policy isolates it");
        }
        match self.allowing_rules.as_slice() {
            [] => format!("{direction} of {pod}: isolated by {}, no rule allows it", self.selected_by.join(", ")),
            rules => {
                let rules: Vec<String> = rules.iter().map(|r| format!("{} rule {}", r.policy, r.rule)).collect();
                format!("{direction} of {pod}: allowed by {}", rules.join(", "))
            }
        }
    }
}

impl Explanation {
    /// The whole verdict on one line, each direction's reason: what a wrong cell shows.
    pub fn summary(&self) -> String {
        let verdict = match self.verdict {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
        };
        format!("{verdict}: {}; {}", self.egress.summary(), self.ingress.summary())
    }
}

pub fn explain(cluster: &Cluster, options: Options, src: Endpoint, dst: Endpoint, query: Option<(u16, Protocol)>) -> Explanation {
    let asked = Question { cluster, options, query };
    let (egress, egress_conn) = asked.side(Direction::Egress, src, dst);
    let (ingress, ingress_conn) = asked.side(Direction::Ingress, dst, src);
    let both = egress_conn.intersect(&ingress_conn);
    let verdict = match query {
        Some((port, protocol)) => both.allows(protocol, port),
        None => !both.is_empty(),
    };
    Explanation {
        src: src.name(),
        dst: dst.name(),
        port: query.map(|q| q.0),
        protocol: query.map(|q| q.1),
        egress,
        ingress,
        allowed: both.to_string(),
        verdict: if verdict { Verdict::Allowed } else { Verdict::Denied },
    }
}

/// What both sides of one explanation share: the input, its reading, and the port asked about.
struct Question<'c> {
    cluster: &'c Cluster,
    options: Options,
    query: Option<(u16, Protocol)>,
}

impl Question<'_> {
    fn side(&self, direction: Direction, owner: Endpoint, peer: Endpoint) -> (Side, ConnSet) {
        let Question { cluster, options, query } = *self;
        let Endpoint::Pod(pod) = owner else {
            let side = Side {
                direction,
                pod: None,
                selected_by: Vec::new(),
                isolated: false,
                allowing_rules: Vec::new(),
                tiers: Vec::new(),
                allowed: ConnSet::all().to_string(),
            };
            return (side, ConnSet::all());
        };
        // Named ports resolve against the destination of the connection.
        let destination_ports = match (direction, peer) {
            (Direction::Ingress, _) => pod.ports.as_slice(),
            (Direction::Egress, Endpoint::Pod(p)) => p.ports.as_slice(),
            (Direction::Egress, Endpoint::External(_)) => &[],
        };
        let selecting: Vec<&NetworkPolicy> =
            cluster.policies.iter().filter(|p| p.namespace == pod.namespace && p.rules(direction).is_some() && p.pod_selector.matches(&pod.labels)).collect();
        let mut allowed = if selecting.is_empty() { ConnSet::all() } else { ConnSet::none() };
        let mut allowing_rules = Vec::new();
        for policy in &selecting {
            for (r, rule) in policy.rules(direction).unwrap_or_default().iter().enumerate() {
                let peer_index =
                    if rule.peers.is_empty() { Some(None) } else { rule.peers.iter().position(|p| peer_matches(cluster, options, policy, p, peer)).map(Some) };
                let Some(peer_index) = peer_index else { continue };
                let ports = resolve_ports(&rule.ports, destination_ports);
                allowed = allowed.union(&ports);
                // With a port asked about, list only the rules that allow that port.
                if query.is_some_and(|(port, protocol)| !ports.allows(protocol, port)) || ports.is_empty() {
                    continue;
                }
                allowing_rules.push(RuleMatch { policy: format!("{}/{}", policy.namespace, policy.name), rule: r, peer: peer_index, ports: ports.to_string() });
            }
        }
        let selected_by: Vec<String> = selecting.iter().map(|p| format!("{}/{}", p.namespace, p.name)).collect();
        let (tiers, allowed) = if cluster.admin_policies.is_empty() {
            (Vec::new(), allowed)
        } else {
            let np = (!selecting.is_empty()).then_some((&allowed, selected_by.as_slice()));
            self.tier_walk(direction, pod, peer, destination_ports, np)
        };
        let side = Side {
            direction,
            pod: Some(format!("{}/{}", pod.namespace, pod.name)),
            isolated: !selecting.is_empty(),
            selected_by,
            allowing_rules,
            tiers,
            allowed: allowed.to_string(),
        };
        (side, allowed)
    }

    /// The tiers for `owner`'s `direction` with `peer` (the order `reach` computes): admin rules
    /// first match per port, then NetworkPolicy (`np`: what the isolating policies allow, and their
    /// names) or else the baseline tier, then the default. Returns the steps and what is allowed.
    fn tier_walk(
        &self,
        direction: Direction,
        owner: &Pod,
        peer: Endpoint,
        destination_ports: &[ContainerPort],
        np: Option<(&ConnSet, &[String])>,
    ) -> (Vec<TierStep>, ConnSet) {
        let Question { cluster, options, query } = *self;
        let (mut undecided, mut allowed, mut passed) = (ConnSet::all(), ConnSet::none(), ConnSet::none());
        let mut steps = Vec::new();
        // With a port asked about, only the steps deciding it are shown.
        let shown = |ports: &ConnSet| !ports.is_empty() && query.is_none_or(|(port, protocol)| ports.allows(protocol, port));
        let step = |steps: &mut Vec<TierStep>, tag: &str, action: &str, policies: Vec<String>, rule: Option<(usize, &str)>, ports: &ConnSet| {
            if shown(ports) {
                steps.push(TierStep {
                    tag: tag.to_owned(),
                    action: action.to_owned(),
                    policies,
                    rule: rule.map(|r| r.0),
                    rule_name: rule.map(|r| r.1.to_owned()).filter(|n| !n.is_empty()),
                    ports: ports.to_string(),
                });
            }
        };
        for tier in [Tier::Admin, Tier::Baseline] {
            if tier == Tier::Baseline {
                undecided = undecided.union(&passed);
                passed = ConnSet::none();
                match np {
                    Some((np_allowed, names)) => {
                        let decided = undecided.intersect(np_allowed);
                        step(&mut steps, "NP", "allow", names.to_vec(), None, &decided);
                        step(&mut steps, "NP", "deny", names.to_vec(), None, &undecided.difference(np_allowed));
                        allowed = allowed.union(&decided);
                        undecided = ConnSet::none();
                    }
                    None => step(&mut steps, "NP", "no policy", Vec::new(), None, &undecided),
                }
            }
            for policy in cluster.admin_policies.iter().filter(|p| p.tier == tier && admin::selects_pod(cluster, &p.subject, owner)) {
                for (r, rule) in policy.rules(direction).iter().enumerate() {
                    if undecided.is_empty() || !rule.peers.iter().any(|p| admin::peer_matches(cluster, options, p, peer)) {
                        continue;
                    }
                    let ports = admin::resolve_ports(&rule.ports, destination_ports);
                    let hit = undecided.intersect(&ports);
                    match rule.action {
                        AdminAction::Allow => allowed = allowed.union(&hit),
                        AdminAction::Pass => passed = passed.union(&hit),
                        AdminAction::Deny => {}
                    }
                    step(&mut steps, policy.kind.tag(), &rule.action.to_string(), vec![policy.name.clone()], Some((r, &rule.name)), &hit);
                    undecided = undecided.difference(&ports);
                }
            }
        }
        let rest = undecided.union(&passed);
        step(&mut steps, "default", "allow", Vec::new(), None, &rest);
        (steps, allowed.union(&rest))
    }
}
