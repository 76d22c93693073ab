//! The local lab as a backend: every operation is one of `netmatrix_lab::Lab`'s.

use std::net::IpAddr;
use std::time::Duration;

use netmatrix_lab::{Lab, LabError, PortState, topology};
use netmatrix_model::Labels;

use crate::{Backend, BackendError, Capabilities, Node, ObjectKind, PodSpec, ProbeRequest, ProbeResult};

pub struct LabBackend {
    lab: Lab,
}

impl From<LabError> for BackendError {
    fn from(e: LabError) -> Self {
        match e {
            LabError::BadInput(m) => BackendError::BadInput(m),
            other => BackendError::Infrastructure(other.to_string()),
        }
    }
}

impl LabBackend {
    /// Creates lab `name` with `nodes` nodes; it must not exist yet.
    pub fn up(name: &str, nodes: usize) -> Result<LabBackend, LabError> {
        Ok(LabBackend { lab: Lab::up(name, nodes)? })
    }

    /// Drives an existing lab (`netmatrix run --lab NAME`).
    pub fn open(name: &str) -> Result<LabBackend, LabError> {
        Ok(LabBackend { lab: Lab::open(name)? })
    }

    pub fn lab_mut(&mut self) -> &mut Lab {
        &mut self.lab
    }
}

impl Backend for LabBackend {
    fn kind(&self) -> &'static str {
        "lab"
    }

    fn nodes(&self) -> Vec<Node> {
        (0..self.lab.nodes()).map(|i| Node { name: self.lab.node_name(i), ip: IpAddr::V4(topology::node_ip(i)) }).collect()
    }

    fn capabilities(&self) -> Capabilities {
        // The lab's bridges put pod ports in hairpin mode and masquerade hairpin traffic.
        Capabilities { hairpin: true, sctp: std::path::Path::new("/proc/net/sctp").exists(), dns: false, admin_policies: true }
    }

    fn set_namespace(&mut self, name: &str, labels: Labels) -> Result<(), BackendError> {
        Ok(self.lab.set_namespace(name, labels)?)
    }

    fn create_pods(&mut self, pods: Vec<PodSpec>) -> Result<(), BackendError> {
        let (host, pods): (Vec<PodSpec>, Vec<PodSpec>) = pods.into_iter().partition(|p| p.host_network);
        let specs = |pods: Vec<PodSpec>| -> Vec<netmatrix_lab::PodSpec> {
            pods.into_iter()
                .map(|p| netmatrix_lab::PodSpec {
                    namespace: p.namespace,
                    name: p.name,
                    labels: p.labels,
                    node: p.node,
                    ports: p.ports.into_iter().map(|q| PortState { name: q.name, port: q.port, protocol: q.protocol }).collect(),
                })
                .collect()
        };
        // The lab starts each agent and waits for its `ready` line (with a deadline).
        if !pods.is_empty() {
            self.lab.add_pods(specs(pods))?;
        }
        if !host.is_empty() {
            self.lab.add_host_pods(specs(host))?;
        }
        Ok(())
    }

    fn delete_pod(&mut self, namespace: &str, name: &str) -> Result<(), BackendError> {
        Ok(self.lab.delete_pod(namespace, name)?)
    }

    fn set_pod_labels(&mut self, namespace: &str, name: &str, labels: Labels) -> Result<(), BackendError> {
        Ok(self.lab.set_pod_labels(namespace, name, labels)?)
    }

    fn apply(&mut self, manifests: Vec<serde_json::Value>) -> Result<(), BackendError> {
        // Every policy kind goes in one rule update; Services one by one.
        let (policies, others): (Vec<_>, Vec<_>) = manifests.into_iter().partition(|m| ObjectKind::of(m).is_some_and(|k| k != ObjectKind::Service));
        for manifest in others {
            match ObjectKind::of(&manifest) {
                Some(ObjectKind::Service) => self.lab.apply_service(manifest)?,
                _ => return Err(BackendError::BadInput(format!("the lab applies NetworkPolicy and Service objects, not {}", manifest["kind"]))),
            }
        }
        if !policies.is_empty() {
            self.lab.apply_policies(policies)?;
        }
        Ok(())
    }

    fn delete(&mut self, kind: ObjectKind, namespace: &str, name: &str) -> Result<(), BackendError> {
        match kind {
            ObjectKind::NetworkPolicy => self.lab.delete_policy(namespace, name)?,
            ObjectKind::Service => self.lab.delete_service(namespace, name)?,
            admin => self.lab.delete_admin_policy(admin.as_str(), name)?,
        }
        Ok(())
    }

    fn model(&self) -> Result<netmatrix_model::Cluster, BackendError> {
        let mut model = self.lab.model()?;
        if model.nodes.is_empty() {
            let origin = netmatrix_model::Origin { file: format!("lab {}", self.lab.node_name(0)), document: 0 };
            model.nodes = self
                .nodes()
                .into_iter()
                .map(|n| netmatrix_model::Node { name: n.name, addresses: vec![n.ip], labels: Default::default(), origin: origin.clone() })
                .collect();
        }
        Ok(model)
    }

    fn probe(&self, namespace: &str, pod: &str, probes: &[ProbeRequest], deadline: Duration) -> Result<Vec<ProbeResult>, BackendError> {
        let exec = |reason: String| BackendError::Exec { pod: format!("{namespace}/{pod}"), reason };
        let batch = serde_json::to_string(probes).expect("probe requests serialise");
        let out = self.lab.probe(namespace, pod, &batch, deadline).map_err(|e| exec(e.to_string()))?;
        ProbeResult::parse_lines(&out, probes.len()).map_err(exec)
    }
}
