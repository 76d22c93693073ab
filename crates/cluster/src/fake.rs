//! An in-memory backend for engine tests: a perfect dataplane (its answers come from the
//! oracle) on which tests inject faults: wrong cells, flaky cells, failing execs, pods that
//! never become ready.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Duration;

use netmatrix_model::{Cluster, ContainerPort, Labels, Namespace, Origin, Pod, Protocol, WorkloadRef, NAMESPACE_NAME_LABEL};
use netmatrix_oracle::{Options, Reachability};

use crate::{Backend, BackendError, Capabilities, Node, ObjectKind, Outcome, PodSpec, ProbeRequest, ProbeResult};

/// One probe as a fault rule sees it.
#[derive(Debug, Clone)]
pub struct Probed<'a> {
    /// `ns/pod` of the source.
    pub src: &'a str,
    pub src_node: usize,
    /// `ns/pod` of the target pod, when the address is a pod's.
    pub dst: Option<&'a str>,
    pub dst_node: Option<usize>,
    pub port: u16,
    pub protocol: Protocol,
    /// How many times this (source, address, port, protocol) was probed before (0 the first time).
    pub call: usize,
}

/// A fault: the outcome to report instead of the dataplane's, or `None` to leave it.
pub type Fault = Box<dyn Fn(&Probed) -> Option<Outcome> + Send + Sync>;

#[derive(Default)]
pub struct FakeBackend {
    nodes: usize,
    namespaces: BTreeMap<String, Labels>,
    pods: Vec<(PodSpec, Ipv4Addr)>,
    manifests: Vec<serde_json::Value>,
    created: usize,
    faults: Vec<Fault>,
    /// Pods (`ns/name`) whose probe execs fail.
    pub failing_execs: BTreeSet<String>,
    /// Pods (`ns/name`) that never become ready.
    pub never_ready: BTreeSet<String>,
    pub capabilities: Capabilities,
    calls: Mutex<HashMap<(String, String, u16, Protocol), usize>>,
    /// Every batch run, as (`ns/pod`, probes in it).
    pub batches: Mutex<Vec<(String, usize)>>,
}

impl FakeBackend {
    pub fn new(nodes: usize) -> FakeBackend {
        FakeBackend { nodes, capabilities: Capabilities { hairpin: true, sctp: true }, ..FakeBackend::default() }
    }

    pub fn inject(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    fn pod_by_ip(&self, ip: Ipv4Addr) -> Option<&(PodSpec, Ipv4Addr)> {
        self.pods.iter().find(|(_, a)| *a == ip)
    }

    /// What a perfect dataplane answers: policies allow it and the target serves the port.
    fn dataplane(&self, model: &Cluster, reach: &mut Reachability, src: usize, dst: usize, port: u16, protocol: Protocol) -> Outcome {
        let pair = reach.pair(reach.pod_class[src], reach.pod_class[dst]);
        let allowed = reach.conn(pair).allows(protocol, port);
        let serves = model.pods[dst].ports.iter().any(|p| p.port == port && p.protocol == protocol);
        match (allowed, serves) {
            (true, true) => Outcome::Connected,
            (true, false) => Outcome::Refused,
            (false, _) => Outcome::Timeout,
        }
    }
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn object_key(manifest: &serde_json::Value) -> (Option<ObjectKind>, String, String) {
    let meta = &manifest["metadata"];
    (ObjectKind::of(manifest), meta["namespace"].as_str().unwrap_or("default").to_owned(), meta["name"].as_str().unwrap_or_default().to_owned())
}

impl Backend for FakeBackend {
    fn kind(&self) -> &'static str {
        "lab"
    }

    fn nodes(&self) -> Vec<Node> {
        (0..self.nodes).map(|i| Node { name: format!("node{i}"), ip: IpAddr::V4(Ipv4Addr::new(172, 18, i as u8, 2)) }).collect()
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    fn set_namespace(&mut self, name: &str, labels: Labels) -> Result<(), BackendError> {
        self.namespaces.insert(name.to_owned(), labels);
        Ok(())
    }

    fn create_pods(&mut self, pods: Vec<PodSpec>) -> Result<(), BackendError> {
        let stuck: Vec<String> = pods.iter().map(|p| key(&p.namespace, &p.name)).filter(|k| self.never_ready.contains(k)).collect();
        for pod in pods {
            if pod.node >= self.nodes {
                return Err(BackendError::BadInput(format!("pod {}/{}: no node {}", pod.namespace, pod.name, pod.node)));
            }
            // A recreated pod gets a new address, as in a cluster.
            self.created += 1;
            let ip = Ipv4Addr::new(10, 244, pod.node as u8, 10 + (self.created % 240) as u8);
            self.namespaces.entry(pod.namespace.clone()).or_default();
            self.pods.push((pod, ip));
        }
        if !stuck.is_empty() {
            return Err(BackendError::NotReady { pods: stuck.join(", "), deadline: Duration::from_secs(10) });
        }
        Ok(())
    }

    fn delete_pod(&mut self, namespace: &str, name: &str) -> Result<(), BackendError> {
        let before = self.pods.len();
        self.pods.retain(|(p, _)| !(p.namespace == namespace && p.name == name));
        if self.pods.len() == before {
            return Err(BackendError::BadInput(format!("no pod {namespace}/{name}")));
        }
        Ok(())
    }

    fn set_pod_labels(&mut self, namespace: &str, name: &str, labels: Labels) -> Result<(), BackendError> {
        let pod = self.pods.iter_mut().find(|(p, _)| p.namespace == namespace && p.name == name).ok_or_else(|| BackendError::BadInput(format!("no pod {namespace}/{name}")))?;
        pod.0.labels = labels;
        Ok(())
    }

    fn apply(&mut self, manifests: Vec<serde_json::Value>) -> Result<(), BackendError> {
        let stream: String = manifests.iter().map(|m| format!("---\n{m}\n")).collect();
        netmatrix_model::parse_str("applied", &stream).map_err(|e| BackendError::BadInput(e.to_string()))?;
        for manifest in manifests {
            let k = object_key(&manifest);
            self.manifests.retain(|m| object_key(m) != k);
            self.manifests.push(manifest);
        }
        Ok(())
    }

    fn delete(&mut self, kind: ObjectKind, namespace: &str, name: &str) -> Result<(), BackendError> {
        let k = (Some(kind), namespace.to_owned(), name.to_owned());
        self.manifests.retain(|m| object_key(m) != k);
        Ok(())
    }

    fn model(&self) -> Result<Cluster, BackendError> {
        let stream: String = self.manifests.iter().map(|m| format!("---\n{m}\n")).collect();
        let loaded = netmatrix_model::parse_str("fake", &stream).map_err(|e| BackendError::BadInput(e.to_string()))?;
        let mut namespaces = self.namespaces.clone();
        for ns in loaded.policies.iter().map(|p| &p.namespace).chain(loaded.services.iter().map(|s| &s.namespace)) {
            namespaces.entry(ns.clone()).or_default();
        }
        let namespaces = namespaces
            .into_iter()
            .map(|(name, mut labels)| {
                labels.insert(NAMESPACE_NAME_LABEL.into(), name.clone());
                Namespace { name, labels }
            })
            .collect();
        let pods = self
            .pods
            .iter()
            .map(|(p, ip)| Pod {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                workload: WorkloadRef { namespace: p.namespace.clone(), name: p.name.clone(), kind: "Pod".into() },
                labels: p.labels.clone(),
                ips: vec![IpAddr::V4(*ip)],
                ports: p.ports.iter().map(|q| ContainerPort { name: q.name.clone(), port: q.port, protocol: q.protocol }).collect(),
                host_network: false,
                node: Some(format!("node{}", p.node)),
                ready: true,
                terminating: false,
                origin: Origin { file: "fake".into(), document: 0 },
            })
            .collect();
        let nodes = self.nodes().into_iter().map(|n| netmatrix_model::Node { name: n.name, addresses: vec![n.ip], origin: Origin { file: "fake".into(), document: 0 } }).collect();
        Ok(Cluster { namespaces, pods, policies: loaded.policies, services: loaded.services, nodes, ..Cluster::default() })
    }

    fn probe(&self, namespace: &str, pod: &str, probes: &[ProbeRequest], _deadline: Duration) -> Result<Vec<ProbeResult>, BackendError> {
        let src_key = key(namespace, pod);
        self.batches.lock().unwrap().push((src_key.clone(), probes.len()));
        if self.failing_execs.contains(&src_key) {
            return Err(BackendError::Exec { pod: src_key, reason: "exec failed (injected)".into() });
        }
        let model = self.model()?;
        let mut reach = Reachability::compute(&model, Options { ipblocks_match_pods: true });
        let src = model.pods.iter().position(|p| p.namespace == namespace && p.name == pod).ok_or_else(|| BackendError::BadInput(format!("no pod {src_key}")))?;
        let src_node = self.pods.iter().find(|(p, _)| key(&p.namespace, &p.name) == src_key).map(|(p, _)| p.node).unwrap_or_default();
        probes
            .iter()
            .enumerate()
            .map(|(index, probe)| {
                let protocol = Protocol::parse(&probe.protocol.to_ascii_uppercase()).ok_or_else(|| BackendError::BadInput(format!("protocol {}", probe.protocol)))?;
                let target: Option<Ipv4Addr> = probe.target.parse().ok();
                let dst = target.and_then(|ip| self.pod_by_ip(ip));
                let dst_key = dst.map(|(p, _)| key(&p.namespace, &p.name));
                let dst_index = dst_key.as_ref().and_then(|k| model.pods.iter().position(|p| &key(&p.namespace, &p.name) == k));
                let real = match dst_index {
                    Some(d) => self.dataplane(&model, &mut reach, src, d, probe.port, protocol),
                    None => Outcome::Unreachable,
                };
                let call = {
                    let mut calls = self.calls.lock().unwrap();
                    let n = calls.entry((src_key.clone(), probe.target.clone(), probe.port, protocol)).or_default();
                    *n += 1;
                    *n - 1
                };
                let probed = Probed { src: &src_key, src_node, dst: dst_key.as_deref(), dst_node: dst.map(|(p, _)| p.node), port: probe.port, protocol, call };
                let outcome = self.faults.iter().find_map(|f| f(&probed)).unwrap_or(real);
                Ok(ProbeResult {
                    index,
                    id: Some(probe.id.clone()),
                    outcome,
                    latency_us: 100,
                    answered_by: (outcome == Outcome::Connected).then(|| dst_key.clone()).flatten(),
                    client_ip: None,
                    detail: (outcome == Outcome::Error).then(|| "injected".to_owned()),
                })
            })
            .collect()
    }
}
