//! What can go wrong talking to a cluster: each variant names the step, the cause is the source.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("reading the cluster configuration: {0}")]
    Config(String),
    #[error("the API server {server} did not answer within {after:?}: {reason}")]
    Unreachable { server: String, after: Duration, reason: String },
    #[error("the API server {server} refused {what}: {}", describe(source))]
    Refused {
        server: String,
        what: String,
        #[source]
        source: kube::Error,
    },
    /// The credentials lack permissions the run needs: nothing was created.
    #[error("missing permissions (nothing was created; deploy/rbac.yaml grants them):\n  {}", .0.join("\n  "))]
    Forbidden(Vec<String>),
    #[error("{what}: {}", describe(source))]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("no node to place probe pods on: {0}")]
    NoNodes(String),
    #[error("{what}: still not done after {after:?}")]
    Deadline { what: String, after: Duration },
    #[error("pods failed to start: {0}")]
    PodsFailed(String),
}

/// An API error as a person reads it: the server's message and reason, not the whole Status.
fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} ({} {})", status.message, status.code, status.reason),
        other => crate::config::error_chain(other),
    }
}

impl KubeError {
    pub fn api(what: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
        let what = what.into();
        move |source| KubeError::Api { what, source }
    }

    /// Whether the user's input is wrong (a kubeconfig that cannot be read, a context that does
    /// not exist), rather than the cluster.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, KubeError::Config(_))
    }
}

impl From<KubeError> for netmatrix_cluster::BackendError {
    fn from(e: KubeError) -> Self {
        match e {
            KubeError::Config(m) => netmatrix_cluster::BackendError::BadInput(m),
            other => netmatrix_cluster::BackendError::Infrastructure { what: "the Kubernetes backend".into(), source: Box::new(other) },
        }
    }
}
