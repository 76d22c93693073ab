//! Load patterns: seeded sequences of changes to the world, after Felix's calculation-graph
//! tests (namespace label rotation, pod rings, policy churn) plus Service endpoint churn.

use std::collections::VecDeque;
use std::fmt;

use netmatrix_cluster::{ObjectKind, PodSpec};
use netmatrix_model::{Labels, PodKey};
use netmatrix_results::churn::Shape;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::world::{MATURITIES, PORT, namespace_labels, namespace_name};
use crate::world::{World, port_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Rotates namespace maturity labels under policies that admit production and staging.
    NsLabels,
    /// Deletes and recreates pods with the same properties, one after the other in a ring.
    PodRing,
    /// Keeps `policies` random NetworkPolicies, replacing the oldest by a new one each change.
    PolicyChurn,
    /// Scales the endpoints of `services` Services to none and back, in turn.
    ServiceChurn,
}

impl Pattern {
    pub const ALL: [Pattern; 4] = [Pattern::NsLabels, Pattern::PodRing, Pattern::PolicyChurn, Pattern::ServiceChurn];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NsLabels => "ns-labels",
            Self::PodRing => "pod-ring",
            Self::PolicyChurn => "policy-churn",
            Self::ServiceChurn => "service-churn",
        }
    }

    pub fn parse(text: &str) -> Option<Pattern> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing done to the backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    SetNamespace {
        name: String,
        labels: Labels,
    },
    SetPodLabels {
        pod: PodKey,
        labels: Labels,
    },
    /// Deletes the pod and creates it again from the same spec.
    RecreatePod(PodSpec),
    Apply(Value),
    Delete {
        kind: ObjectKind,
        namespace: String,
        name: String,
    },
}

/// What one change of a pattern does, applied as one measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub description: String,
    pub acts: Vec<Act>,
}

/// Label a Service of `service-churn` selects its endpoints by.
const SERVICE_LABEL: &str = "netmatrix.io/churn-service";

/// Endpoints a scaled-up Service has (at most the namespace's pods).
const ENDPOINTS: usize = 3;

/// Produces one pattern's changes, tracking the labels and objects it changed.
pub struct Churner {
    pattern: Pattern,
    shape: Shape,
    rng: StdRng,
    world: World,
    /// Each namespace's maturity now.
    maturity: Vec<String>,
    rotation: usize,
    ring: usize,
    /// Policies in place, oldest first, and the number given to the next.
    policies: VecDeque<(String, String)>,
    made: usize,
    /// Per Service: its endpoints now (pod indices into the world), and which Service scales next.
    endpoints: Vec<Vec<usize>>,
    next_service: usize,
}

impl Churner {
    pub fn new(pattern: Pattern, shape: Shape, world: &World, seed: u64) -> Churner {
        Churner {
            pattern,
            shape,
            // One stream per pattern: a pattern's changes do not depend on which others run.
            rng: StdRng::seed_from_u64(seed ^ (pattern as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            world: world.clone(),
            maturity: world.namespaces.iter().map(|(_, l)| l.get("maturity").cloned().unwrap_or_default()).collect(),
            rotation: 0,
            ring: 0,
            policies: VecDeque::new(),
            made: 0,
            endpoints: Vec::new(),
            next_service: 0,
        }
    }

    pub fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// The objects the pattern churns around, made before its first change.
    pub fn setup(&mut self) -> Change {
        let acts = match self.pattern {
            Pattern::NsLabels => self.namespace_policies(
                |_| json!({"namespaceSelector": {"matchExpressions": [{"key": "maturity", "operator": "In", "values": ["production", "staging"]}]}}),
            ),
            Pattern::PodRing => self.namespace_policies(|_| json!({"namespaceSelector": {}, "podSelector": {"matchLabels": {"ha": "active"}}})),
            Pattern::PolicyChurn => (0..self.shape.policies).map(|_| self.new_policy()).collect(),
            Pattern::ServiceChurn => {
                let mut acts = Vec::new();
                for s in 0..self.shape.services {
                    let ns = s % self.shape.namespaces.max(1);
                    let members: Vec<usize> = self.pods_of(ns).into_iter().take(ENDPOINTS).collect();
                    acts.push(Act::Apply(service(&namespace_name(ns), &service_name(s))));
                    acts.extend(members.iter().map(|&p| self.label_endpoint(p, s, true)));
                    self.endpoints.push(members);
                }
                acts
            }
        };
        Change { description: format!("{} setup", self.pattern), acts }
    }

    /// Every namespace gets a policy isolating its pods for ingress and admitting its own
    /// namespace and the peer `peer(namespace)`.
    fn namespace_policies(&self, peer: impl Fn(usize) -> Value) -> Vec<Act> {
        (0..self.shape.namespaces)
            .map(|i| {
                Act::Apply(json!({
                    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": "churn-admit", "namespace": namespace_name(i)},
                    "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}, peer(i)]}]},
                }))
            })
            .collect()
    }

    fn pods_of(&self, namespace: usize) -> Vec<usize> {
        let name = namespace_name(namespace);
        (0..self.world.pods.len()).filter(|&p| self.world.pods[p].namespace == name).collect()
    }

    fn label_endpoint(&mut self, pod: usize, service: usize, member: bool) -> Act {
        let spec = &mut self.world.pods[pod];
        let key = format!("{SERVICE_LABEL}-{service}");
        if member {
            spec.labels.insert(key, "yes".into());
        } else {
            spec.labels.remove(&key);
        }
        Act::SetPodLabels { pod: spec.key(), labels: spec.labels.clone() }
    }

    pub fn next_change(&mut self) -> Change {
        match self.pattern {
            Pattern::NsLabels => self.rotate_maturity(),
            Pattern::PodRing => {
                let spec = self.world.pods[self.ring % self.world.pods.len()].clone();
                self.ring += 1;
                Change { description: format!("recreate pod {} on {}", spec.key(), spec.node), acts: vec![Act::RecreatePod(spec)] }
            }
            Pattern::PolicyChurn => {
                let mut acts = Vec::new();
                let mut gone = String::new();
                if let Some((namespace, name)) = self.policies.pop_front() {
                    gone = format!("delete {namespace}/{name}, ");
                    acts.push(Act::Delete { kind: ObjectKind::NetworkPolicy, namespace, name });
                }
                acts.push(self.new_policy());
                let (ns, name) = self.policies.back().expect("just made");
                Change { description: format!("{gone}create {ns}/{name}"), acts }
            }
            Pattern::ServiceChurn => self.scale_service(),
        }
    }

    /// Moves every namespace of one maturity to the next value of the rotation: production
    /// to out-of-service, staging to production, test to staging, experimental to test,
    /// out-of-service to experimental; a step whose maturity no namespace has is skipped.
    fn rotate_maturity(&mut self) -> Change {
        const ROTATION: [(&str, &str); 5] =
            [("production", "out-of-service"), ("staging", "production"), ("test", "staging"), ("experimental", "test"), ("out-of-service", "experimental")];
        for _ in 0..ROTATION.len() {
            let (from, to) = ROTATION[self.rotation % ROTATION.len()];
            self.rotation += 1;
            let moved: Vec<usize> = (0..self.maturity.len()).filter(|&i| self.maturity[i] == from).collect();
            if moved.is_empty() {
                continue;
            }
            let acts = moved
                .iter()
                .map(|&i| {
                    self.maturity[i] = to.to_owned();
                    Act::SetNamespace { name: namespace_name(i), labels: namespace_labels(i, to) }
                })
                .collect();
            let names: Vec<String> = moved.iter().map(|&i| namespace_name(i)).collect();
            return Change { description: format!("maturity {from} -> {to}: {}", names.join(", ")), acts };
        }
        unreachable!("every namespace has one of the {} maturities", MATURITIES.len())
    }

    fn scale_service(&mut self) -> Change {
        let s = self.next_service % self.endpoints.len().max(1);
        self.next_service += 1;
        let ns = s % self.shape.namespaces.max(1);
        let down = !self.endpoints[s].is_empty();
        let members: Vec<usize> = if down { std::mem::take(&mut self.endpoints[s]) } else { self.pods_of(ns).into_iter().take(ENDPOINTS).collect() };
        let acts = members.iter().map(|&p| self.label_endpoint(p, s, !down)).collect();
        if !down {
            self.endpoints[s] = members.clone();
        }
        let (from, to) = if down { (members.len(), 0) } else { (0, members.len()) };
        Change { description: format!("scale {}/{} endpoints {from} -> {to}", namespace_name(ns), service_name(s)), acts }
    }

    /// A NetworkPolicy with random selectors (label sets and every operator), policy types
    /// and 1 to 10 rules with random peers and ports.
    fn new_policy(&mut self) -> Act {
        let name = format!("churn-{}", self.made);
        self.made += 1;
        let namespace = namespace_name(self.rng.random_range(0..self.shape.namespaces.max(1)));
        let types: &[&str] = [&["Ingress"][..], &["Egress"], &["Ingress", "Egress"]].choose(&mut self.rng).expect("three");
        let mut spec = json!({"podSelector": pod_selector(&mut self.rng), "policyTypes": types});
        for t in types {
            let (field, peers) = if *t == "Ingress" { ("ingress", "from") } else { ("egress", "to") };
            let rules: Vec<Value> = (0..self.rng.random_range(1..=10)).map(|_| rule(&mut self.rng, peers)).collect();
            spec[field] = json!(rules);
        }
        self.policies.push_back((namespace.clone(), name.clone()));
        Act::Apply(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }))
    }

    /// What undoes the pattern: its objects deleted, the world's labels back.
    pub fn teardown(&self, original: &World) -> Vec<Act> {
        let mut acts = Vec::new();
        match self.pattern {
            Pattern::NsLabels | Pattern::PodRing => {
                for i in 0..self.shape.namespaces {
                    acts.push(Act::Delete { kind: ObjectKind::NetworkPolicy, namespace: namespace_name(i), name: "churn-admit".into() });
                }
            }
            Pattern::PolicyChurn => acts.extend(self.policies.iter().map(|(namespace, name)| Act::Delete {
                kind: ObjectKind::NetworkPolicy,
                namespace: namespace.clone(),
                name: name.clone(),
            })),
            Pattern::ServiceChurn => {
                for s in 0..self.endpoints.len() {
                    let namespace = namespace_name(s % self.shape.namespaces.max(1));
                    acts.push(Act::Delete { kind: ObjectKind::Service, namespace, name: service_name(s) });
                }
            }
        }
        for (i, (name, labels)) in original.namespaces.iter().enumerate() {
            if self.maturity.get(i) != labels.get("maturity") {
                acts.push(Act::SetNamespace { name: name.clone(), labels: labels.clone() });
            }
        }
        for (now, was) in self.world.pods.iter().zip(&original.pods) {
            if now.labels != was.labels {
                acts.push(Act::SetPodLabels { pod: was.key(), labels: was.labels.clone() });
            }
        }
        acts
    }
}

fn service_name(s: usize) -> String {
    format!("churn-svc{s}")
}

/// A Service of `service-churn`: a ClusterIP per family where the cluster has two (one
/// where it has one), so that each family's Service rules are measured.
fn service(namespace: &str, name: &str) -> Value {
    let index = name.trim_start_matches("churn-svc");
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {format!("{SERVICE_LABEL}-{index}"): "yes"},
            "ipFamilyPolicy": "PreferDualStack",
            "ports": [{"port": PORT.0, "protocol": "TCP", "targetPort": PORT.0}],
        },
    })
}

fn pick<'a>(rng: &mut StdRng, values: &'a [&'a str]) -> &'a str {
    values.choose(rng).expect("not empty")
}

fn label_values(rng: &mut StdRng, key: &str) -> Vec<String> {
    let all: Vec<String> = match key {
        "ha" => vec!["active".into(), "backup".into()],
        "maturity" => MATURITIES.iter().map(|m| m.to_string()).collect(),
        other => (1..=5).map(|i| format!("{other}{i}")).collect(),
    };
    let n = rng.random_range(1..=2);
    all.choose_multiple(rng, n).cloned().collect()
}

/// A selector over `keys`: empty (rarely: it selects everything), a label set, or one or two
/// expressions with any operator.
fn selector(rng: &mut StdRng, keys: &[&str]) -> Value {
    match rng.random_range(0..10) {
        0 => json!({}),
        1..=4 => {
            let key = pick(rng, keys);
            json!({"matchLabels": {key: label_values(rng, key)[0]}})
        }
        _ => {
            let expressions: Vec<Value> = (0..rng.random_range(1..=2))
                .map(|_| {
                    let key = pick(rng, keys);
                    match pick(rng, &["In", "NotIn", "Exists", "DoesNotExist"]) {
                        op @ ("In" | "NotIn") => json!({"key": key, "operator": op, "values": label_values(rng, key)}),
                        op => json!({"key": key, "operator": op}),
                    }
                })
                .collect();
            json!({"matchExpressions": expressions})
        }
    }
}

fn pod_selector(rng: &mut StdRng) -> Value {
    selector(rng, &["role", "instance", "ha"])
}

fn rule(rng: &mut StdRng, peers_field: &str) -> Value {
    // A rule without peers admits everyone and makes its policy a no-op on the cells: rare.
    let count = if rng.random_bool(0.1) { 0 } else { rng.random_range(1..=2) };
    let peers: Vec<Value> = (0..count)
        // Whole namespaces rarely: a few such peers admit nearly everyone.
        .map(|_| match rng.random_range(0..10) {
            0..=4 => json!({"podSelector": pod_selector(rng)}),
            5..=8 => json!({"namespaceSelector": selector(rng, &["area", "maturity"]), "podSelector": pod_selector(rng)}),
            _ => json!({"namespaceSelector": selector(rng, &["area", "maturity"])}),
        })
        .collect();
    let choices = [
        json!({"port": PORT.0, "protocol": "TCP"}),
        json!({"port": port_name(PORT.0, PORT.1)}),
        json!({"port": PORT.0 + 1}),
        json!({"port": PORT.0 - 10, "endPort": PORT.0 + 10}),
        json!({"protocol": "TCP"}),
        json!({"protocol": "UDP"}),
    ];
    let ports: Vec<Value> = (0..rng.random_range(0..=2)).map(|_| choices.choose(rng).expect("six").clone()).collect();
    let mut rule = json!({});
    if !peers.is_empty() {
        rule[peers_field] = json!(peers);
    }
    if !ports.is_empty() {
        rule["ports"] = json!(ports);
    }
    rule
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::churn::world::world;

    fn shape() -> Shape {
        Shape { nodes: 2, namespaces: 5, pods_per_namespace: 4, policies: 3, services: 2, changes: 10, controls: 0 }
    }

    fn churner(pattern: Pattern, seed: u64) -> (Churner, World) {
        let w = world(&shape(), &["node0".into(), "node1".into()]);
        (Churner::new(pattern, shape(), &w, seed), w)
    }

    #[test]
    fn the_same_seed_gives_the_same_changes_and_another_seed_others() {
        let changes = |seed| {
            let (mut c, _) = churner(Pattern::PolicyChurn, seed);
            c.setup();
            (0..5).map(|_| c.next_change()).collect::<Vec<_>>()
        };
        assert_eq!(changes(7), changes(7));
        assert_ne!(changes(7), changes(8));
    }

    #[test]
    fn maturity_rotates_in_felix_order() {
        let (mut c, w) = churner(Pattern::NsLabels, 1);
        c.setup();
        let descriptions: Vec<String> = (0..6).map(|_| c.next_change().description).collect();
        assert_eq!(descriptions[0], "maturity production -> out-of-service: churn1");
        assert_eq!(descriptions[1], "maturity staging -> production: churn3");
        // out-of-service now holds churn1 and churn5: both move on together.
        assert_eq!(descriptions[4], "maturity out-of-service -> experimental: churn1, churn5");
        let undo = c.teardown(&w);
        assert!(undo.iter().any(|a| matches!(a, Act::SetNamespace { name, .. } if name == "churn1")));
    }

    #[test]
    fn policy_churn_replaces_the_oldest_policy() {
        let (mut c, w) = churner(Pattern::PolicyChurn, 3);
        assert_eq!(c.setup().acts.len(), 3);
        let change = c.next_change();
        assert!(matches!(&change.acts[0], Act::Delete { name, .. } if name == "churn-0"), "{change:?}");
        assert!(matches!(&change.acts[1], Act::Apply(m) if m["metadata"]["name"] == "churn-3"));
        let rules = match &change.acts[1] {
            Act::Apply(m) => m["spec"]["ingress"].as_array().or(m["spec"]["egress"].as_array()).map_or(0, Vec::len),
            _ => 0,
        };
        assert!((1..=10).contains(&rules));
        assert_eq!(c.teardown(&w).len(), 3);
    }

    #[test]
    fn service_churn_scales_each_service_to_none_and_back() {
        let (mut c, w) = churner(Pattern::ServiceChurn, 1);
        let setup = c.setup();
        assert_eq!(setup.acts.len(), 2 * (1 + ENDPOINTS));
        assert!(matches!(&setup.acts[0], Act::Apply(m) if m["spec"]["ipFamilyPolicy"] == "PreferDualStack"), "both families where there are two");
        let first = c.next_change();
        assert_eq!(first.description, "scale churn1/churn-svc0 endpoints 3 -> 0");
        assert_eq!(c.next_change().description, "scale churn2/churn-svc1 endpoints 3 -> 0");
        assert_eq!(c.next_change().description, "scale churn1/churn-svc0 endpoints 0 -> 3");
        // svc1 is down: its pods' labels are restored along with deleting the Services.
        let undo = c.teardown(&w);
        assert_eq!(undo.iter().filter(|a| matches!(a, Act::SetPodLabels { .. })).count(), ENDPOINTS);
    }

    #[test]
    fn the_pod_ring_goes_round() {
        let (mut c, w) = churner(Pattern::PodRing, 1);
        let first = c.next_change();
        for _ in 1..w.pods.len() {
            c.next_change();
        }
        assert_eq!(c.next_change(), first);
    }
}
