//! Probe pods as a backend creates them, and the stable key that names a pod across changes.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{ContainerPort, Labels, Origin, Pod, WorkloadRef};

/// A pod by namespace and name: unlike its position in [`crate::Cluster::pods`], the key does
/// not shift when another pod is deleted or recreated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl PodKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> PodKey {
        PodKey { namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl Pod {
    pub fn key(&self) -> PodKey {
        PodKey::new(self.namespace.clone(), self.name.clone())
    }
}

/// A probe pod to run: the agent serving `ports` on the node named `node`; a `host_network`
/// pod shares its node's network and address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodSpec {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub node: String,
    pub ports: Vec<ContainerPort>,
    pub host_network: bool,
}

impl PodSpec {
    pub fn key(&self) -> PodKey {
        PodKey::new(self.namespace.clone(), self.name.clone())
    }

    /// The pod as the oracle reads it once it runs, ready, with `ips`: every backend that
    /// runs specs reports them through this one conversion.
    pub fn to_pod(&self, ips: Vec<IpAddr>, origin: Origin) -> Pod {
        Pod {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            workload: WorkloadRef { namespace: self.namespace.clone(), name: self.name.clone(), kind: "Pod".into() },
            labels: self.labels.clone(),
            ips,
            ports: self.ports.clone(),
            host_network: self.host_network,
            node: Some(self.node.clone()),
            ready: true,
            terminating: false,
            origin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Protocol;

    #[test]
    fn a_running_spec_is_a_ready_bare_pod_on_its_node() {
        let spec = PodSpec {
            namespace: "x".into(),
            name: "a".into(),
            labels: Labels::from([("pod".to_owned(), "a".to_owned())]),
            node: "node1".into(),
            ports: vec![ContainerPort { name: Some("serve-80-tcp".into()), port: 80, protocol: Protocol::Tcp }],
            host_network: false,
        };
        let pod = spec.to_pod(vec!["10.244.1.10".parse().unwrap()], Origin::default());
        assert_eq!((pod.key(), pod.node.as_deref(), pod.ready, pod.workload.to_string()), (spec.key(), Some("node1"), true, "x/a[Pod]".to_owned()));
        assert_eq!(pod.ports, spec.ports);
        assert_eq!(spec.key().to_string(), "x/a");
    }
}
