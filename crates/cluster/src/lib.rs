//! One trait for "a place to run probes" ([`Backend`]), the probe schema it speaks
//! (`netmatrix.probe/v1`, see crates/agent/README.md), and its backends: the local lab
//! ([`lab::LabBackend`]) and, with the `fake` feature, an in-memory fake for engine tests.

mod capabilities;
#[cfg(feature = "fake")]
pub mod fake;
pub mod lab;
mod rows;

use std::net::IpAddr;
use std::time::Duration;

use netmatrix_lab::LabError;
use netmatrix_model::Labels;
pub use netmatrix_oracle::Profile;

pub use capabilities::{Capabilities, Capability, Support};
pub use netmatrix_model::{ContainerPort, PodKey, PodSpec};
/// The agent's batch schema `netmatrix.probe/v1`, defined once for the agent and the backends.
pub use netmatrix_probe::{Outcome, ProbeRequest, ProbeResult, Protocol as ProbeProtocol, Target, batch_to_json, parse_results};
pub use rows::{Row, RowResult, probe_rows_on_threads};

/// Which kind of backend a run drove, as the run report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Lab,
    Kube,
    /// The in-memory fake of engine tests.
    Fake,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lab => "lab",
            Self::Kube => "kube",
            Self::Fake => "fake",
        }
    }

    /// The implementation profile a run on this backend is held to unless told otherwise: the
    /// lab's own dataplane, kube-proxy on a cluster (the common proxy; `--profile` names
    /// another), and the lab's for the fake, which answers like the lab.
    pub fn default_profile(self) -> Profile {
        match self {
            Self::Lab | Self::Fake => Profile::Lab,
            Self::Kube => Profile::KubeProxy,
        }
    }
}

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
    /// The lab failed, or was asked something it cannot do.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// Another backend's failure (an API server's answer, a deadline), with its cause.
    #[error("{what}: {source}")]
    Infrastructure {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl BackendError {
    /// Whether the user's input was wrong (exit 2) rather than the backend (exit 3).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::BadInput(_) => true,
            Self::Lab(e) => e.is_bad_input(),
            Self::NotReady { .. } | Self::Exec { .. } | Self::Infrastructure { .. } => false,
        }
    }
}

/// A node probes can be placed on, by name, with its addresses (one per IP family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub addresses: Vec<IpAddr>,
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

/// A place to run probes: the lab, a Kubernetes cluster, or a fake. The engine drives every
/// backend through this trait alone.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    /// The nodes probe pods may be placed on, in placement order.
    fn nodes(&self) -> &[Node];
    /// What this backend's dataplane does where Kubernetes leaves it open, as detected.
    fn capabilities(&self) -> &Capabilities;
    /// Creates or relabels a namespace.
    fn set_namespace(&mut self, name: &str, labels: Labels) -> Result<(), BackendError>;
    /// Creates pods and waits, within a deadline, until each serves its ports.
    fn create_pods(&mut self, pods: Vec<PodSpec>) -> Result<(), BackendError>;
    fn delete_pod(&mut self, pod: &PodKey) -> Result<(), BackendError>;
    fn set_pod_labels(&mut self, pod: &PodKey, labels: Labels) -> Result<(), BackendError>;
    /// Applies NetworkPolicy, Service and admin policy manifests (replacing objects of the same name).
    fn apply(&mut self, manifests: Vec<serde_json::Value>) -> Result<(), BackendError>;
    fn delete(&mut self, kind: ObjectKind, namespace: &str, name: &str) -> Result<(), BackendError>;
    /// The objects as they are now, as the oracle reads them (pods with addresses and nodes,
    /// Services with the addresses and node ports allocated to them).
    fn model(&self) -> Result<netmatrix_model::Cluster, BackendError>;
    /// Runs each row (one source pod's batch, in one exec of its agent), `parallel` rows at a
    /// time, telling `on_row` each row's index as it finishes; results in row order. A backend
    /// with an async runtime runs its exec streams concurrently; others use
    /// [`probe_rows_on_threads`].
    fn probe_rows(&self, rows: &[Row], parallel: usize, on_row: &(dyn Fn(usize) + Sync)) -> Vec<RowResult>;
    /// As [`Backend::probe_rows`], for sources probed again and again (churn's rounds): a
    /// backend may keep their agents running between calls (`probe --stream`) instead of
    /// starting one per row; a kept agent ends with its pod, after a minute unused, or at
    /// teardown.
    fn probe_rows_again(&self, rows: &[Row], parallel: usize, on_row: &(dyn Fn(usize) + Sync)) -> Vec<RowResult> {
        self.probe_rows(rows, parallel, on_row)
    }
    /// Removes everything this backend created for the run (pods, namespaces, or the whole lab
    /// it made), going on after each failure; returns every failure.
    fn teardown(&mut self) -> Vec<BackendError>;
    /// The API server's time of the last change this backend made (RFC 3339, whole seconds:
    /// the newest managedFields time of the object it answered with), where it has one.
    fn last_change_time(&self) -> Option<String> {
        None
    }
    /// The version the cluster reports, where it has one.
    fn server_version(&self) -> Option<String> {
        None
    }
    /// Namespaces as cases name them (`x`) and their real names, where the backend renames them.
    fn real_namespaces(&self) -> std::collections::BTreeMap<String, String> {
        Default::default()
    }
    /// The case whose work follows (`None` between cases), for backends that tag their
    /// requests with it (the Kubernetes backend's user agent, so audit logs map to cases).
    fn begin_case(&mut self, _case: Option<&str>) {}
    /// What to call when the process must quit at once (a second Ctrl-C) and cannot tear
    /// down in order: the quickest removal of what the run made, if any.
    fn abort_handle(&self) -> Option<Box<dyn Fn() + Send + Sync>>;
}
