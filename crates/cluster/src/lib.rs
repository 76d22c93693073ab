//! One trait for "a place to run probes" ([`Backend`]), the probe schema it speaks
//! (`netmatrix.probe/v1`, see crates/agent/README.md), and its backends: the local lab
//! ([`lab::LabBackend`]) and an in-memory fake for engine tests ([`fake::FakeBackend`]).

pub mod fake;
pub mod lab;
mod probe;

use std::net::IpAddr;
use std::time::Duration;

use netmatrix_model::{Labels, Protocol};

pub use probe::{Outcome, ProbeRequest, ProbeResult};

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The request was wrong (unknown pod, invalid manifest): nothing was changed.
    #[error("{0}")]
    BadInput(String),
    /// Pods did not become ready before their deadline.
    #[error("pods not ready after {deadline:?}: {pods}")]
    NotReady { pods: String, deadline: Duration },
    /// Running a probe batch failed (exec error, agent missing): no verdict about the network.
    #[error("probe from {pod}: {reason}")]
    Exec { pod: String, reason: String },
    /// The backend itself failed (namespaces, nftables, API server).
    #[error("{0}")]
    Infrastructure(String),
}

/// A node probes can be placed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub ip: IpAddr,
}

/// A serving port of a probe pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServingPort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

/// A probe pod to create: it runs the agent serving `ports` on node `node` (an index into
/// [`Backend::nodes`]); a `host_network` pod has the node's address and network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSpec {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub node: usize,
    pub ports: Vec<ServingPort>,
    pub host_network: bool,
}

/// Objects a backend applies and deletes by manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    NetworkPolicy,
    Service,
    AdminNetworkPolicy,
    BaselineAdminNetworkPolicy,
    ClusterNetworkPolicy,
}

impl ObjectKind {
    const ALL: [ObjectKind; 5] = [Self::NetworkPolicy, Self::Service, Self::AdminNetworkPolicy, Self::BaselineAdminNetworkPolicy, Self::ClusterNetworkPolicy];

    /// The kind of a manifest, from its `kind` field.
    pub fn of(manifest: &serde_json::Value) -> Option<ObjectKind> {
        let kind = manifest["kind"].as_str()?;
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NetworkPolicy => "NetworkPolicy",
            Self::Service => "Service",
            Self::AdminNetworkPolicy => "AdminNetworkPolicy",
            Self::BaselineAdminNetworkPolicy => "BaselineAdminNetworkPolicy",
            Self::ClusterNetworkPolicy => "ClusterNetworkPolicy",
        }
    }

    /// Cluster-scoped kinds have no namespace: `delete` takes `""` for it.
    pub fn namespaced(self) -> bool {
        matches!(self, Self::NetworkPolicy | Self::Service)
    }

    /// The (namespace, name) a manifest of this kind is known by.
    pub fn key(self, manifest: &serde_json::Value) -> (String, String) {
        let meta = &manifest["metadata"];
        let namespace = if self.namespaced() { meta["namespace"].as_str().unwrap_or("default") } else { "" };
        (namespace.to_owned(), meta["name"].as_str().unwrap_or_default().to_owned())
    }
}

/// Behaviour Kubernetes leaves to the implementation, as this backend's dataplane does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// A pod reaches itself through its own Service (kube-proxy's hairpin masquerade).
    pub hairpin: bool,
    /// The nodes' kernels carry SCTP.
    pub sctp: bool,
    /// Pods resolve Service names through cluster DNS.
    pub dns: bool,
    /// AdminNetworkPolicy, BaselineAdminNetworkPolicy and ClusterNetworkPolicy are enforced.
    pub admin_policies: bool,
}

/// A place to run probes: the lab, a Kubernetes cluster, or a fake. The engine drives every
/// backend through this trait alone. `probe` takes `&self` so rows run concurrently.
pub trait Backend: Sync {
    /// `lab` or `kube`, as in the run report.
    fn kind(&self) -> &'static str;
    fn nodes(&self) -> Vec<Node>;
    fn capabilities(&self) -> Capabilities;
    /// Creates or relabels a namespace.
    fn set_namespace(&mut self, name: &str, labels: Labels) -> Result<(), BackendError>;
    /// Creates pods and waits, within a deadline, until each serves its ports.
    fn create_pods(&mut self, pods: Vec<PodSpec>) -> Result<(), BackendError>;
    fn delete_pod(&mut self, namespace: &str, name: &str) -> Result<(), BackendError>;
    fn set_pod_labels(&mut self, namespace: &str, name: &str, labels: Labels) -> Result<(), BackendError>;
    /// Applies NetworkPolicy, Service and admin policy manifests (replacing objects of the same name).
    fn apply(&mut self, manifests: Vec<serde_json::Value>) -> Result<(), BackendError>;
    fn delete(&mut self, kind: ObjectKind, namespace: &str, name: &str) -> Result<(), BackendError>;
    /// The objects as they are now, as the oracle reads them (pods with addresses and nodes,
    /// Services with the addresses and node ports allocated to them).
    fn model(&self) -> Result<netmatrix_model::Cluster, BackendError>;
    /// Runs one batch of probes from a pod, in one exec of its agent; results in input order.
    fn probe(&self, namespace: &str, pod: &str, probes: &[ProbeRequest], deadline: Duration) -> Result<Vec<ProbeResult>, BackendError>;
}
