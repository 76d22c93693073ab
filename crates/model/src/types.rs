use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

pub use crate::selector::Labels;
use crate::selector::LabelSelector;

/// Label every namespace carries since Kubernetes 1.21 (set by the API server).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Everything loaded from the inputs, validated and normalised.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Sorted by name; every namespace referenced by any object is present.
    pub namespaces: Vec<Namespace>,
    /// One entry per pod; workload manifests (Deployment, ...) contribute one representative pod.
    pub pods: Vec<Pod>,
    pub policies: Vec<NetworkPolicy>,
    pub services: Vec<Service>,
    /// Non-fatal findings (skipped documents, ...), each naming where it came from.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    /// Always includes `kubernetes.io/metadata.name`.
    pub labels: Labels,
}

/// Where an object was read from, for messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    pub file: String,
    /// 1-based index of the document in its file.
    pub document: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file, self.document)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    // Declared in the connlist output order (string order).
    Sctp,
    Tcp,
    Udp,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Sctp, Protocol::Tcp, Protocol::Udp];

    /// Kubernetes spells protocols in upper case only.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "TCP" => Self::Tcp,
            "UDP" => Self::Udp,
            "SCTP" => Self::Sctp,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sctp => "SCTP",
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The workload a pod is reported as: itself, or its controller.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadRef {
    pub namespace: String,
    pub name: String,
    pub kind: String,
}

impl fmt::Display for WorkloadRef {
    /// The connlist spelling `namespace/name[Kind]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}[{}]", self.namespace, self.name, self.kind)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub workload: WorkloadRef,
    pub labels: Labels,
    /// Known addresses (`status.podIPs`/`status.podIP`); empty for pods from manifests without status.
    pub ips: Vec<IpAddr>,
    pub ports: Vec<ContainerPort>,
    pub host_network: bool,
    pub node: Option<String>,
    pub origin: Origin,
}

/// A peer of a NetworkPolicy rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    /// `podSelector` and/or `namespaceSelector`: pods matching both.
    Pods {
        /// `None`: the policy's own namespace.
        namespaces: Option<LabelSelector>,
        /// `None`: every pod of the selected namespaces.
        pods: Option<LabelSelector>,
    },
    IpBlock(IpBlock),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpBlock {
    pub cidr: IpNet,
    /// Each inside `cidr` (validated).
    pub except: Vec<IpNet>,
}

impl IpBlock {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.cidr.contains(ip) && !self.except.iter().any(|e| e.contains(ip))
    }
}

/// A port of a rule; a missing `port` means every port of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSpec {
    pub protocol: Protocol,
    pub port: Option<PortRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortRef {
    /// `port` with an optional `endPort` (inclusive range); `first <= last`.
    Range { first: u16, last: u16 },
    /// A named container port, resolved against the destination pod.
    Named(String),
}

/// One ingress or egress rule. Empty `peers` or `ports` match everything, as in the API.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub peers: Vec<Peer>,
    pub ports: Vec<PortSpec>,
}

#[derive(Debug, Clone)]
pub struct NetworkPolicy {
    pub namespace: String,
    pub name: String,
    pub pod_selector: LabelSelector,
    /// `Some` when the policy applies to ingress (after `policyTypes` defaulting); its rules allow.
    pub ingress: Option<Vec<Rule>>,
    /// `Some` when the policy applies to egress.
    pub egress: Option<Vec<Rule>>,
    pub origin: Origin,
}

impl NetworkPolicy {
    pub fn rules(&self, direction: Direction) -> Option<&[Rule]> {
        match direction {
            Direction::Ingress => self.ingress.as_deref(),
            Direction::Egress => self.egress.as_deref(),
        }
    }

    pub fn rules_mut(&mut self, direction: Direction) -> &mut Option<Vec<Rule>> {
        match direction {
            Direction::Ingress => &mut self.ingress,
            Direction::Egress => &mut self.egress,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::Egress, Direction::Ingress];
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ingress => "ingress",
            Self::Egress => "egress",
        })
    }
}

/// A Service as far as this version uses it (selection and ports); semantics come later.
#[derive(Debug, Clone)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub service_type: String,
    pub selector: Option<Labels>,
    pub ports: Vec<ServicePort>,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
    pub target_port: Option<PortRef>,
    pub node_port: Option<u16>,
}
