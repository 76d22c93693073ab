//! The local lab as a backend: every operation is one of `netmatrix_lab::Lab`'s.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use netmatrix_lab::{KeptAgent, Lab, LabError};
use netmatrix_model::{IpFamilies, Labels, PodKey};

use crate::{
    Backend, BackendError, BackendKind, Capabilities, Capability, Node, ObjectKind, PodSpec, Row, RowResult, batch_to_json, parse_results,
    probe_rows_on_threads,
};

pub struct LabBackend {
    lab: Lab,
    nodes: Vec<Node>,
    capabilities: Capabilities,
    /// The run made the lab: teardown removes all of it.
    owned: bool,
    /// Pods the run created in a lab it did not make: teardown removes only these.
    created: BTreeSet<PodKey>,
    /// Agents kept running for `probe_rows_again`, by source pod.
    kept: Mutex<HashMap<PodKey, KeptAgent>>,
    /// Set once an agent could not stream while a one-shot one worked: one agent per row since.
    refused: AtomicBool,
}

impl LabBackend {
    /// Creates lab `name` with `nodes` nodes of `ip_family` for the run; teardown removes it.
    pub fn up(name: &str, nodes: usize, ip_family: IpFamilies) -> Result<LabBackend, LabError> {
        Ok(LabBackend::new(Lab::up(name, nodes, ip_family)?, true))
    }

    /// Drives an existing lab (`netmatrix run --lab NAME`); teardown removes only the pods the
    /// run created.
    pub fn open(name: &str) -> Result<LabBackend, LabError> {
        Ok(LabBackend::new(Lab::open(name)?, false))
    }

    fn new(lab: Lab, owned: bool) -> LabBackend {
        let nodes = (0..lab.nodes()).map(|i| Node { name: lab.node_name(i), addresses: lab.node_addresses(i) }).collect();
        let capabilities = detect(lab.ip_family());
        LabBackend { lab, nodes, capabilities, owned, created: BTreeSet::new(), kept: Mutex::default(), refused: AtomicBool::new(false) }
    }

    pub fn name(&self) -> &str {
        self.lab.name()
    }

    /// The lab itself, e.g. to inject a fault mid-run. `delay-policy` acts only in the process
    /// holding the `Lab` whose syncs make the rule updates: this backend's, which also holds
    /// the lab's lock (a second `Lab::open` of the same lab would wait for it).
    pub fn lab_mut(&mut self) -> &mut Lab {
        &mut self.lab
    }
}

fn detect(ip_family: IpFamilies) -> Capabilities {
    let sctp = if Path::new("/proc/net/sctp").exists() {
        Capability::yes("the host kernel has SCTP (/proc/net/sctp)")
    } else {
        Capability::no("the host kernel has no SCTP (/proc/net/sctp is absent)")
    };
    Capabilities {
        hairpin: Capability::yes("the lab's bridge ports are in hairpin mode and hairpin traffic is masqueraded"),
        sctp,
        dns: Capability::no("the lab has no cluster DNS"),
        admin_policies: Capability::yes("the lab renders admin policies in nftables"),
        answer_identity: Capability::yes("the lab's pods run the netmatrix agent"),
        dual_stack: if ip_family == IpFamilies::Dual {
            Capability::yes("the lab is dual-stack (--ip-family dual)")
        } else {
            Capability::no(format!("the lab is single-stack (--ip-family {}; dual gives both)", ip_family.as_str()))
        },
    }
}

impl Backend for LabBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Lab
    }

    fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn set_namespace(&mut self, name: &str, labels: Labels) -> Result<(), BackendError> {
        Ok(self.lab.set_namespace(name, labels)?)
    }

    fn create_pods(&mut self, pods: Vec<PodSpec>) -> Result<(), BackendError> {
        // Recorded first: a pod made before a later one failed is still the run's to remove.
        self.created.extend(pods.iter().map(PodSpec::key));
        // The lab starts each agent and waits for its `ready` line (with a deadline).
        Ok(self.lab.add_pods(pods)?)
    }

    fn delete_pod(&mut self, pod: &PodKey) -> Result<(), BackendError> {
        self.kept.lock().unwrap().remove(pod);
        Ok(self.lab.delete_pod(&pod.namespace, &pod.name)?)
    }

    fn set_pod_labels(&mut self, pod: &PodKey, labels: Labels) -> Result<(), BackendError> {
        Ok(self.lab.set_pod_labels(&pod.namespace, &pod.name, labels)?)
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
            let origin = netmatrix_model::Origin { file: format!("lab {}", self.lab.name()).into(), document: 0 };
            model.nodes = self
                .nodes
                .iter()
                .map(|n| netmatrix_model::Node { name: n.name.clone(), addresses: n.addresses.clone(), labels: Default::default(), origin: origin.clone() })
                .collect();
        }
        Ok(model)
    }

    fn probe_rows(&self, rows: &[Row], parallel: usize, on_row: &(dyn Fn(usize) + Sync)) -> Vec<RowResult> {
        probe_rows_on_threads(rows, parallel, on_row, |row| {
            let exec = |reason: String| BackendError::Exec { pod: row.source.to_string(), reason };
            let batch = batch_to_json(&row.probes);
            let out = self.lab.probe(&row.source.namespace, &row.source.name, &batch, row.deadline).map_err(|e| exec(e.to_string()))?;
            parse_results(&out, row.probes.len()).map_err(exec)
        })
    }

    fn probe_rows_again(&self, rows: &[Row], parallel: usize, on_row: &(dyn Fn(usize) + Sync)) -> Vec<RowResult> {
        if self.refused.load(Ordering::Relaxed) {
            return self.probe_rows(rows, parallel, on_row);
        }
        probe_rows_on_threads(rows, parallel, on_row, |row| {
            let batch = batch_to_json(&row.probes);
            let through = |agent: &mut KeptAgent| agent.probe(&batch, row.probes.len(), row.deadline).map_err(|e| e.to_string());
            // A kept agent that fails has ended (unused for too long): a new one takes its place.
            let kept = self.kept.lock().unwrap().remove(&row.source).and_then(|mut agent| through(&mut agent).ok().map(|out| (agent, out)));
            let answered = match kept {
                Some(answered) => Ok(answered),
                None => self
                    .lab
                    .keep_agent(&row.source.namespace, &row.source.name)
                    .map_err(|e| e.to_string())
                    .and_then(|mut agent| through(&mut agent).map(|out| (agent, out))),
            };
            let exec = |reason: String| BackendError::Exec { pod: row.source.to_string(), reason };
            match answered {
                Ok((agent, out)) => {
                    self.kept.lock().unwrap().insert(row.source.clone(), agent);
                    parse_results(&out, row.probes.len()).map_err(exec)
                }
                Err(why) => {
                    let out = self
                        .lab
                        .probe(&row.source.namespace, &row.source.name, &batch, row.deadline)
                        .map_err(|e| exec(format!("{e} (a kept agent: {why})")))?;
                    self.refused.store(true, Ordering::Relaxed);
                    parse_results(&out, row.probes.len()).map_err(exec)
                }
            }
        })
    }

    fn teardown(&mut self) -> Vec<BackendError> {
        self.kept.lock().unwrap().clear();
        if self.owned {
            return Lab::down(self.lab.name()).err().map(BackendError::from).into_iter().collect();
        }
        let present: BTreeSet<PodKey> = self.lab.pods().iter().map(|p| PodKey::new(p.namespace.clone(), p.name.clone())).collect();
        let mut errors = Vec::new();
        for pod in std::mem::take(&mut self.created).intersection(&present) {
            if let Err(e) = self.lab.delete_pod(&pod.namespace, &pod.name) {
                errors.push(e.into());
            }
        }
        errors
    }

    fn abort_handle(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        let name = self.lab.name().to_owned();
        // Pods in a lab the run did not make are left to `netmatrix cleanup`: removing them
        // needs the lab's state, which the interrupted run may be writing.
        self.owned.then(|| -> Box<dyn Fn() + Send + Sync> {
            Box::new(move || {
                let _ = Lab::down(&name);
            })
        })
    }
}
