//! An in-memory backend for engine tests: a perfect dataplane (its answers come from the
//! oracle) on which tests inject faults: wrong cells, flaky cells, failing execs, pods that
//! never become ready.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netmatrix_model::{Cluster, Labels, Namespace, Origin, PodKey, Protocol};
use netmatrix_oracle::services::{self, Verdict};
use netmatrix_oracle::{Options, Reachability};

use crate::{
    Backend, BackendError, BackendKind, Capabilities, Capability, Node, ObjectKind, Outcome, PodSpec, ProbeResult, Row, RowResult, Target,
    probe_rows_on_threads,
};

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

/// The first of `candidates` not in `used`.
fn lowest(used: &[String], candidates: impl IntoIterator<Item = String>) -> String {
    candidates.into_iter().find(|c| !used.contains(c)).expect("a free address or port")
}

/// A pod the fake runs: its spec, its node's index and its address.
struct Running {
    spec: PodSpec,
    node: usize,
    ip: Ipv4Addr,
}

pub struct FakeBackend {
    nodes: Vec<Node>,
    namespaces: BTreeMap<String, Labels>,
    pods: Vec<Running>,
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
    /// How long a batch takes (an exec's cost), so that tests see rows overlap.
    pub batch_time: Duration,
    in_flight: AtomicUsize,
    /// The most batches that ran at once.
    pub max_in_flight: AtomicUsize,
    /// Teardowns asked of the fake.
    pub teardowns: usize,
}

impl FakeBackend {
    pub fn new(nodes: usize) -> FakeBackend {
        let mut capabilities = Capabilities::all("the fake backend has it");
        capabilities.dns = Capability::no("the fake backend has no cluster DNS");
        capabilities.dual_stack = Capability::no("the fake backend's pods have IPv4 addresses only");
        FakeBackend {
            nodes: (0..nodes).map(|i| Node { name: format!("node{i}"), addresses: vec![IpAddr::V4(Ipv4Addr::new(172, 18, i as u8, 2))] }).collect(),
            namespaces: BTreeMap::new(),
            pods: Vec::new(),
            manifests: Vec::new(),
            created: 0,
            faults: Vec::new(),
            failing_execs: BTreeSet::new(),
            never_ready: BTreeSet::new(),
            capabilities,
            calls: Mutex::default(),
            batches: Mutex::default(),
            batch_time: Duration::ZERO,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            teardowns: 0,
        }
    }

    pub fn inject(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    /// What a cluster allocates to a Service the manifest leaves without: a cluster IP, node
    /// ports, a load-balancer IP, each the lowest one no Service holds, as on the lab: cells
    /// name node ports and load-balancer IPs, so the same Service gets the same ones whatever
    /// ran before (on one backend or on several shards).
    fn allocate(&self, service: &mut serde_json::Value) {
        let held = |field: fn(&serde_json::Value) -> Vec<String>| -> Vec<String> { self.manifests.iter().flat_map(field).collect() };
        let spec = &mut service["spec"];
        let kind = spec["type"].as_str().unwrap_or("ClusterIP").to_owned();
        if kind == "ExternalName" || spec["clusterIP"] == "None" {
            return;
        }
        if spec["clusterIP"].is_null() {
            let used = held(|m| m["spec"]["clusterIP"].as_str().into_iter().map(str::to_owned).collect());
            spec["clusterIP"] = serde_json::json!(lowest(&used, (10..=250).map(|i| format!("10.96.0.{i}"))));
        }
        if kind == "NodePort" || kind == "LoadBalancer" {
            let mut used = held(|m| m["spec"]["ports"].as_array().into_iter().flatten().map(|p| p["nodePort"].to_string()).collect());
            for port in spec["ports"].as_array_mut().into_iter().flatten() {
                if port["nodePort"].is_null() {
                    let free: String = lowest(&used, (30000..=32767).map(|p: u16| p.to_string()));
                    port["nodePort"] = serde_json::json!(free.parse::<u16>().expect("a port"));
                    used.push(free);
                }
            }
        }
        if kind == "LoadBalancer" {
            let used = held(|m| m["status"]["loadBalancer"]["ingress"][0]["ip"].as_str().into_iter().map(str::to_owned).collect());
            let ip = lowest(&used, (1..=250).map(|i| format!("172.18.255.{i}")));
            service["status"] = serde_json::json!({"loadBalancer": {"ingress": [{"ip": ip}]}});
        }
    }

    fn pod_by_ip(&self, ip: Ipv4Addr) -> Option<&Running> {
        self.pods.iter().find(|p| p.ip == ip)
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

fn model_protocol(p: netmatrix_probe::Protocol) -> Protocol {
    match p {
        netmatrix_probe::Protocol::Tcp => Protocol::Tcp,
        netmatrix_probe::Protocol::Udp => Protocol::Udp,
        netmatrix_probe::Protocol::Sctp => Protocol::Sctp,
    }
}

fn object_key(manifest: &serde_json::Value) -> (Option<ObjectKind>, String, String) {
    let kind = ObjectKind::of(manifest);
    let (namespace, name) = kind.map(|k| k.key(manifest)).unwrap_or_default();
    (kind, namespace, name)
}

impl Backend for FakeBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Fake
    }

    fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn set_namespace(&mut self, name: &str, labels: Labels) -> Result<(), BackendError> {
        self.namespaces.insert(name.to_owned(), labels);
        Ok(())
    }

    fn create_pods(&mut self, pods: Vec<PodSpec>) -> Result<(), BackendError> {
        let stuck: Vec<String> = pods.iter().map(|p| p.key().to_string()).filter(|k| self.never_ready.contains(k)).collect();
        for spec in pods {
            let node = self.nodes.iter().position(|n| n.name == spec.node);
            let node = node.ok_or_else(|| BackendError::BadInput(format!("pod {}: no node {}", spec.key(), spec.node)))?;
            // A recreated pod gets a new address, as in a cluster; a hostNetwork pod its node's.
            self.created += 1;
            let ip =
                if spec.host_network { Ipv4Addr::new(172, 18, node as u8, 2) } else { Ipv4Addr::new(10, 244, node as u8, 10 + (self.created % 240) as u8) };
            self.namespaces.entry(spec.namespace.clone()).or_default();
            self.pods.push(Running { spec, node, ip });
        }
        if !stuck.is_empty() {
            return Err(BackendError::NotReady { pods: stuck.join(", "), deadline: Duration::from_secs(10) });
        }
        Ok(())
    }

    fn delete_pod(&mut self, pod: &PodKey) -> Result<(), BackendError> {
        let before = self.pods.len();
        self.pods.retain(|p| p.spec.key() != *pod);
        if self.pods.len() == before {
            return Err(BackendError::BadInput(format!("no pod {pod}")));
        }
        Ok(())
    }

    fn set_pod_labels(&mut self, pod: &PodKey, labels: Labels) -> Result<(), BackendError> {
        let running = self.pods.iter_mut().find(|p| p.spec.key() == *pod).ok_or_else(|| BackendError::BadInput(format!("no pod {pod}")))?;
        running.spec.labels = labels;
        Ok(())
    }

    fn apply(&mut self, manifests: Vec<serde_json::Value>) -> Result<(), BackendError> {
        let stream: String = manifests.iter().map(|m| format!("---\n{m}\n")).collect();
        netmatrix_model::parse_str("applied", &stream).map_err(|e| BackendError::BadInput(e.to_string()))?;
        for mut manifest in manifests {
            if ObjectKind::of(&manifest) == Some(ObjectKind::Service) {
                self.allocate(&mut manifest);
            }
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
        let namespaces = namespaces.into_iter().map(|(name, labels)| Namespace::new(name, labels)).collect();
        let origin = Origin { file: "fake".into(), document: 0 };
        let pods = self.pods.iter().map(|p| p.spec.to_pod(vec![IpAddr::V4(p.ip)], origin.clone())).collect();
        let nodes = self
            .nodes
            .iter()
            .map(|n| netmatrix_model::Node { name: n.name.clone(), addresses: n.addresses.clone(), labels: Default::default(), origin: origin.clone() })
            .collect();
        Ok(Cluster {
            namespaces,
            pods,
            policies: loaded.policies,
            admin_policies: loaded.admin_policies,
            services: loaded.services,
            nodes,
            ..Cluster::default()
        })
    }

    fn probe_rows(&self, rows: &[Row], parallel: usize, on_row: &(dyn Fn(usize) + Sync)) -> Vec<RowResult> {
        probe_rows_on_threads(rows, parallel, on_row, |row| self.probe_row(row))
    }

    fn teardown(&mut self) -> Vec<BackendError> {
        self.teardowns += 1;
        self.pods.clear();
        self.namespaces.clear();
        self.manifests.clear();
        Vec::new()
    }

    fn abort_handle(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        None
    }
}

impl FakeBackend {
    fn probe_row(&self, row: &Row) -> RowResult {
        let src_key = row.source.to_string();
        let probes = &row.probes;
        self.batches.lock().unwrap().push((src_key.clone(), probes.len()));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(self.batch_time);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.failing_execs.contains(&src_key) {
            return Err(BackendError::Exec { pod: src_key, reason: "exec failed (injected)".into() });
        }
        let model = self.model()?;
        let mut reach = Reachability::compute(&model, Options { ipblocks_match_pods: true });
        let frontends = services::frontends(&model);
        let src = model.pods.iter().position(|p| p.key() == row.source).ok_or_else(|| BackendError::BadInput(format!("no pod {src_key}")))?;
        let src_node = self.pods.iter().find(|p| p.spec.key() == row.source).map(|p| p.node).unwrap_or_default();
        probes
            .iter()
            .enumerate()
            .map(|(index, probe)| {
                let protocol = model_protocol(probe.protocol);
                let call = {
                    let mut calls = self.calls.lock().unwrap();
                    let n = calls.entry((src_key.clone(), probe.target.to_string(), probe.port, protocol)).or_default();
                    *n += 1;
                    *n - 1
                };
                let dst = match probe.target {
                    Target::Ip(IpAddr::V4(ip)) => self.pod_by_ip(ip),
                    _ => None,
                };
                let dst_key = dst.map(|p| p.spec.key().to_string());
                let dst_index = dst.and_then(|d| model.pods.iter().position(|p| p.key() == d.spec.key()));
                let frontend =
                    frontends.iter().find(|f| f.address.is_some_and(|a| probe.target == Target::Ip(a)) && f.dst_port == probe.port && f.protocol == protocol);
                // A Service frontend first: a node port shares its address with hostNetwork pods.
                let (real, answered_by) = match (dst_index, frontend) {
                    (Some(d), None) => (self.dataplane(&model, &mut reach, src, d, probe.port, protocol), dst_key.clone()),
                    (_, Some(f)) => {
                        let verdict = services::evaluate(&model, &mut reach, src, f, BackendKind::Fake.default_profile());
                        // Round robin over the backends the oracle allows this source; under
                        // ClientIP affinity one backend per source.
                        let sticky = matches!(model.services[f.service].session_affinity, netmatrix_model::SessionAffinity::ClientIp { .. });
                        let turn = if sticky { src } else { call };
                        let backend = (!verdict.backends.is_empty()).then(|| &model.pods[verdict.backends[turn % verdict.backends.len()]]);
                        match (verdict.verdict, backend) {
                            (Verdict::Allow, Some(b)) => (Outcome::Connected, Some(b.key().to_string())),
                            _ => (Outcome::Refused, None),
                        }
                    }
                    (None, None) => (Outcome::Unreachable, None),
                };
                let probed = Probed { src: &src_key, src_node, dst: dst_key.as_deref(), dst_node: dst.map(|p| p.node), port: probe.port, protocol, call };
                let outcome = self.faults.iter().find_map(|f| f(&probed)).unwrap_or(real);
                Ok(ProbeResult {
                    index,
                    id: probe.id.clone(),
                    target: probe.target.to_string(),
                    port: probe.port,
                    protocol: probe.protocol,
                    address: None,
                    attempts: 1,
                    client_port: None,
                    outcome,
                    latency: Duration::from_micros(100),
                    answered_by: answered_by.filter(|_| outcome == Outcome::Connected),
                    client_ip: None,
                    detail: (outcome == Outcome::Error).then(|| "injected".to_owned()),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProbeRequest;

    fn pod(namespace: &str, name: &str, node: &str) -> PodSpec {
        let ports = vec![netmatrix_model::ContainerPort { name: None, port: 80, protocol: Protocol::Tcp }];
        PodSpec { namespace: namespace.into(), name: name.into(), labels: Labels::new(), node: node.into(), ports, host_network: false }
    }

    fn request(target: IpAddr, port: u16) -> ProbeRequest {
        ProbeRequest::new(Target::Ip(target), port, netmatrix_probe::Protocol::Tcp)
    }

    /// Probes from x/a to each of `targets` on `port`, in one row.
    fn outcomes(fake: &FakeBackend, targets: &[IpAddr], port: u16) -> Vec<Outcome> {
        let row = Row { source: PodKey::new("x", "a"), probes: targets.iter().map(|&t| request(t, port)).collect(), deadline: Duration::from_secs(1) };
        fake.probe_rows(&[row], 1, &|_| {}).pop().unwrap().unwrap().into_iter().map(|r| r.outcome).collect()
    }

    #[test]
    fn answers_as_the_oracle_and_the_serving_ports_say() {
        let mut fake = FakeBackend::new(2);
        fake.create_pods(vec![pod("x", "a", "node0"), pod("x", "b", "node1"), pod("y", "c", "node1")]).unwrap();
        let ip = |name: &str| fake.model().unwrap().pods.iter().find(|p| p.name == name).unwrap().ips[0];
        let (b, c) = (ip("b"), ip("c"));
        assert_eq!(outcomes(&fake, &[b, c], 80), [Outcome::Connected, Outcome::Connected]);
        assert_eq!(outcomes(&fake, &[b], 81), [Outcome::Refused], "nothing serves 81");
        let deny = serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "d", "namespace": "y"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
        fake.apply(vec![deny]).unwrap();
        assert_eq!(outcomes(&fake, &[b, c], 80), [Outcome::Connected, Outcome::Timeout], "y is isolated for ingress");
    }

    #[test]
    fn faults_replace_answers_and_see_how_often_a_cell_was_probed() {
        let mut fake = FakeBackend::new(1);
        fake.create_pods(vec![pod("x", "a", "node0"), pod("x", "b", "node0")]).unwrap();
        fake.inject(Box::new(|p| (p.call == 0).then_some(Outcome::Timeout)));
        let b = fake.model().unwrap().pods[1].ips[0];
        assert_eq!(outcomes(&fake, &[b], 80), [Outcome::Timeout], "the first probe is lost");
        assert_eq!(outcomes(&fake, &[b], 80), [Outcome::Connected]);
    }

    #[test]
    fn unknown_nodes_are_refused_and_teardown_empties_it() {
        let mut fake = FakeBackend::new(1);
        assert!(fake.create_pods(vec![pod("x", "a", "node7")]).unwrap_err().is_bad_input());
        fake.create_pods(vec![pod("x", "a", "node0")]).unwrap();
        assert_eq!(fake.kind(), BackendKind::Fake);
        assert!(fake.teardown().is_empty());
        assert!(fake.model().unwrap().pods.is_empty());
    }
}
