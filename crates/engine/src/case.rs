//! What a case is: steps that change objects and then check a probe set. Expected results are
//! never written in a case: the oracle computes them from what the backend holds after each
//! step.

use std::collections::BTreeMap;

use netmatrix_cluster::{Capabilities, Capability, ObjectKind, Support};
use netmatrix_model::{Labels, PodKey, Protocol};
use netmatrix_results::Check;

#[derive(Debug, Clone)]
pub struct Case {
    /// `suite/case`, matched by `--focus` and `--skip`.
    pub id: String,
    /// `type=...`, `feature=...`, matched by `--labels`.
    pub labels: BTreeMap<String, String>,
    pub requires: Vec<Requirement>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub actions: Vec<Action>,
    pub probe: ProbeSpec,
}

/// A change to the objects, applied in order before a step's probes.
#[derive(Debug, Clone)]
pub enum Action {
    /// NetworkPolicy and Service manifests, applied together.
    Apply(Vec<serde_json::Value>),
    /// Manifests that depend on what the backend holds (pod addresses, for ipBlocks).
    ApplyFromModel(fn(&netmatrix_model::Cluster) -> Vec<serde_json::Value>),
    Delete {
        kind: ObjectKind,
        namespace: String,
        name: String,
    },
    SetNamespaceLabels {
        namespace: String,
        labels: Labels,
    },
    SetPodLabels {
        pod: PodKey,
        labels: Labels,
    },
    /// Deletes a world pod and creates it again (same spec; the backend gives it a new address).
    RecreatePod(PodKey),
    /// Adds the hostNetwork probe pods ([`crate::World::host_pods`]) for this case.
    AddHostPods,
}

/// What a step probes: every world pod to every other pod on `ports`, and, with `services`,
/// every Service frontend (cluster IP, node port on each node, load-balancer IP) on its port.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    pub ports: Vec<(u16, Protocol)>,
    pub pods: bool,
    pub services: bool,
    /// What the Service cells check.
    pub check: Check,
    /// Each source probes from a fixed source port of its own, so that a later step's probe
    /// belongs to the same UDP flow (conntrack entry) as an earlier one.
    pub fixed_source_port: bool,
}

impl ProbeSpec {
    pub fn pods(ports: &[(u16, Protocol)]) -> ProbeSpec {
        ProbeSpec { ports: ports.to_vec(), pods: true, services: false, check: Check::Reach, fixed_source_port: false }
    }

    pub fn services() -> ProbeSpec {
        ProbeSpec { ports: Vec::new(), pods: false, services: true, check: Check::Reach, fixed_source_port: false }
    }

    pub fn check(mut self, check: Check) -> ProbeSpec {
        self.check = check;
        self
    }

    pub fn fixed_source_port(mut self) -> ProbeSpec {
        self.fixed_source_port = true;
        self
    }
}

/// What a case needs of the backend; a case whose needs are not met is skipped with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Sctp,
    Hairpin,
    /// Cluster DNS, for ExternalName Services.
    Dns,
    /// Enforcement of AdminNetworkPolicy, BaselineAdminNetworkPolicy and ClusterNetworkPolicy.
    AdminPolicies,
    /// Probes that say which pod answered and fix their source port (session affinity, UDP
    /// flows across a backend's replacement): implied by the steps that check them.
    AnswerIdentity,
    /// Addresses of both families: dual-stack Services.
    DualStack,
}

impl Requirement {
    /// What the case needs, and the backend's capability that provides it.
    fn need(self, capabilities: &Capabilities) -> (&'static str, &Capability) {
        match self {
            Self::Sctp => ("SCTP on the nodes", &capabilities.sctp),
            Self::Hairpin => ("hairpin traffic (a pod reaching itself through its Service)", &capabilities.hairpin),
            Self::Dns => ("cluster DNS to resolve ExternalName Services", &capabilities.dns),
            Self::AdminPolicies => ("enforcement of AdminNetworkPolicy, BaselineAdminNetworkPolicy and ClusterNetworkPolicy", &capabilities.admin_policies),
            Self::AnswerIdentity => ("probes that say which pod answered (the netmatrix agent)", &capabilities.answer_identity),
            Self::DualStack => ("a dual-stack cluster (IPv4 and IPv6)", &capabilities.dual_stack),
        }
    }

    /// Why the case cannot run here, if it cannot: what it needs, and what the backend found.
    pub fn unmet(self, capabilities: &Capabilities) -> Option<String> {
        let (need, capability) = self.need(capabilities);
        match capability.support {
            Support::Yes => None,
            Support::No => Some(format!("needs {need}: {}", capability.reason)),
            Support::Unknown => Some(format!("needs {need}, which could not be detected: {}", capability.reason)),
        }
    }
}

impl Case {
    pub fn new(id: impl Into<String>, labels: &[(&str, &str)], steps: Vec<Step>) -> Case {
        Case { id: id.into(), labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), requires: Vec::new(), steps }
    }

    pub fn requires(mut self, requirement: Requirement) -> Case {
        self.requires.push(requirement);
        self
    }

    /// What the case needs: what it says, and what its steps' checks imply.
    pub fn needs(&self) -> impl Iterator<Item = Requirement> + '_ {
        let identity = self.steps.iter().any(|s| s.probe.check != Check::Reach || s.probe.fixed_source_port);
        self.requires.iter().copied().chain(identity.then_some(Requirement::AnswerIdentity))
    }
}

impl Step {
    pub fn new(name: impl Into<String>, actions: Vec<Action>, probe: ProbeSpec) -> Step {
        Step { name: name.into(), actions, probe }
    }
}
