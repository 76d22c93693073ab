//! A lab: its persisted state and every operation on it.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use netmatrix_model::{Cluster, ContainerPort, Labels, Namespace, Origin, Pod, Protocol, WorkloadRef, NAMESPACE_NAME_LABEL};
use serde::{Deserialize, Serialize};

use crate::fault::{self, Fault, FaultKind};
use crate::{names, netns, nft, process, topology};

const STATE_DIR: &str = "/run/netmatrix";
const AGENT_READY: Duration = Duration::from_secs(10);
const NFT_DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN to create network namespaces); run as root")]
    NotRoot,
    #[error("`nft` not found: install the Debian package nftables")]
    NftMissing,
    #[error("{0}")]
    BadInput(String),
    #[error("lab {0:?} already exists (netmatrix lab down {0} removes it)")]
    Exists(String),
    #[error("lab {0:?} does not exist (netmatrix lab up {0} creates it)")]
    NotFound(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodState {
    pub id: u32,
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub node: usize,
    pub ip: Ipv4Addr,
    pub ports: Vec<PortState>,
    pub pid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortState {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

/// What a pod to create looks like.
#[derive(Debug, Clone)]
pub struct PodSpec {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub node: usize,
    pub ports: Vec<PortState>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct State {
    nodes: usize,
    namespaces: BTreeMap<String, Labels>,
    pods: Vec<PodState>,
    /// NetworkPolicy manifests as applied, re-read through the model on every change.
    policies: Vec<serde_json::Value>,
    faults: Vec<Fault>,
    next_pod_id: u32,
}

pub struct Lab {
    name: String,
    state: State,
}

fn state_file(lab: &str) -> PathBuf {
    PathBuf::from(STATE_DIR).join(format!("{lab}.json"))
}

fn log_dir(lab: &str) -> PathBuf {
    PathBuf::from(STATE_DIR).join(lab)
}

/// What the lab needs before it touches anything.
fn preflight(lab: &str) -> Result<(), LabError> {
    names::validate(lab).map_err(LabError::BadInput)?;
    if !nix::unistd::geteuid().is_root() {
        return Err(LabError::NotRoot);
    }
    match Command::new("nft").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(LabError::NftMissing),
    }
}

impl Lab {
    /// Creates a lab of `nodes` nodes (no pods yet). On failure, whatever was made is removed.
    pub fn up(name: &str, nodes: usize) -> Result<Lab, LabError> {
        preflight(name)?;
        if nodes == 0 || nodes > topology::MAX_NODES {
            return Err(LabError::BadInput(format!("--nodes {nodes}: a lab has 1 to {} nodes", topology::MAX_NODES)));
        }
        if state_file(name).exists() || !netns::list(&names::prefix(name)).unwrap_or_default().is_empty() {
            return Err(LabError::Exists(name.to_owned()));
        }
        let lab = Lab { name: name.to_owned(), state: State { nodes, ..State::default() } };
        let built = (|| {
            std::fs::create_dir_all(log_dir(name)).map_err(io_err(format!("creating {}", log_dir(name).display())))?;
            topology::create_router(name).map_err(io_err("creating the router namespace"))?;
            for node in 0..nodes {
                topology::create_node(name, node).map_err(io_err(format!("creating node {node}")))?;
            }
            lab.sync()?;
            lab.save()
        })();
        match built {
            Ok(()) => Ok(lab),
            Err(e) => {
                let _ = Lab::down(name);
                Err(e)
            }
        }
    }

    pub fn open(name: &str) -> Result<Lab, LabError> {
        preflight(name)?;
        let text = std::fs::read_to_string(state_file(name)).map_err(|_| LabError::NotFound(name.to_owned()))?;
        let state = serde_json::from_str(&text).map_err(|e| LabError::BadInput(format!("{}: {e}", state_file(name).display())))?;
        Ok(Lab { name: name.to_owned(), state })
    }

    /// Removes everything the lab created, from its state or, after a crash, by name prefix:
    /// processes living in its namespaces, the namespaces (and with them links and nftables
    /// tables), logs and state. Keeps going after errors and reports them all.
    pub fn down(name: &str) -> Result<(), LabError> {
        names::validate(name).map_err(LabError::BadInput)?;
        let mut errors = Vec::new();
        let namespaces = netns::list(&names::prefix(name)).unwrap_or_default();
        let inodes: Vec<u64> = namespaces.iter().filter_map(|n| netns::inode(n).ok()).collect();
        process::terminate(&process::in_namespaces(&inodes), Duration::from_secs(2));
        for ns in &namespaces {
            if let Err(e) = netns::delete(ns) {
                errors.push(format!("deleting namespace {ns}: {e}"));
            }
        }
        for path in [state_file(name), log_dir(name)] {
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            if let Err(e) = removed.or_else(|e| if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) }) {
                errors.push(format!("removing {}: {e}", path.display()));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(LabError::BadInput(errors.join("; "))) }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn nodes(&self) -> usize {
        self.state.nodes
    }

    pub fn node_name(&self, node: usize) -> String {
        format!("node{node}")
    }

    pub fn pods(&self) -> &[PodState] {
        &self.state.pods
    }

    fn save(&self) -> Result<(), LabError> {
        let text = serde_json::to_string_pretty(&self.state).expect("state serialises");
        std::fs::write(state_file(&self.name), text).map_err(io_err("saving the lab state"))
    }

    pub fn set_namespace(&mut self, namespace: &str, labels: Labels) -> Result<(), LabError> {
        self.state.namespaces.insert(namespace.to_owned(), labels);
        self.sync()?;
        self.save()
    }

    /// Creates the pod's namespace and link and starts its agent serving `ports`.
    pub fn add_pod(&mut self, spec: PodSpec) -> Result<&PodState, LabError> {
        if spec.node >= self.state.nodes {
            return Err(LabError::BadInput(format!("pod {}/{}: node {} does not exist (the lab has {})", spec.namespace, spec.name, spec.node, self.state.nodes)));
        }
        if self.find(&spec.namespace, &spec.name).is_some() {
            return Err(LabError::BadInput(format!("pod {}/{} exists already", spec.namespace, spec.name)));
        }
        let used: Vec<Ipv4Addr> = self.state.pods.iter().map(|p| p.ip).collect();
        let ip = (0..topology::MAX_PODS_PER_NODE)
            .map(|slot| topology::pod_ip(spec.node, slot))
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| LabError::BadInput(format!("node {} is full ({} pods)", spec.node, topology::MAX_PODS_PER_NODE)))?;
        let id = self.state.next_pod_id;
        self.state.next_pod_id += 1;
        topology::create_pod(&self.name, spec.node, id, ip).map_err(io_err(format!("creating pod {}/{}", spec.namespace, spec.name)))?;
        let pid = self.start_agent(id, &spec)?;
        self.state.namespaces.entry(spec.namespace.clone()).or_default();
        self.state.pods.push(PodState { id, namespace: spec.namespace, name: spec.name, labels: spec.labels, node: spec.node, ip, ports: spec.ports, pid });
        self.sync()?;
        self.save()?;
        Ok(self.state.pods.last().expect("just pushed"))
    }

    fn start_agent(&self, id: u32, spec: &PodSpec) -> Result<u32, LabError> {
        let list = |protocol: Protocol| spec.ports.iter().filter(|p| p.protocol == protocol).map(|p| p.port.to_string()).collect::<Vec<_>>().join(",");
        let mut args = vec!["serve".to_owned(), "--name".to_owned(), format!("{}/{}", spec.namespace, spec.name)];
        for (flag, protocol) in [("--tcp", Protocol::Tcp), ("--udp", Protocol::Udp), ("--sctp", Protocol::Sctp)] {
            let ports = list(protocol);
            if !ports.is_empty() {
                args.extend([flag.to_owned(), ports]);
            }
        }
        let log = log_dir(&self.name).join(format!("p{id}.log"));
        process::start_server(&names::pod(&self.name, id), &args, &log, AGENT_READY).map_err(io_err(format!("starting the agent of {}/{}", spec.namespace, spec.name)))
    }

    pub fn delete_pod(&mut self, namespace: &str, name: &str) -> Result<(), LabError> {
        let index = self.find(namespace, name).ok_or_else(|| LabError::BadInput(format!("no pod {namespace}/{name}")))?;
        let pod = self.state.pods.remove(index);
        let ns = names::pod(&self.name, pod.id);
        let inode = netns::inode(&ns).map_err(io_err(format!("pod {namespace}/{name}")))?;
        process::terminate(&process::in_namespaces(&[inode]), Duration::from_secs(2));
        // Deleting the pod's namespace deletes its veth, and with it the node's end.
        netns::delete(&ns).map_err(io_err(format!("deleting pod {namespace}/{name}")))?;
        self.sync()?;
        self.save()
    }

    pub fn set_pod_labels(&mut self, namespace: &str, name: &str, labels: Labels) -> Result<(), LabError> {
        let index = self.find(namespace, name).ok_or_else(|| LabError::BadInput(format!("no pod {namespace}/{name}")))?;
        self.state.pods[index].labels = labels;
        self.sync()?;
        self.save()
    }

    /// Applies a NetworkPolicy manifest (replacing one of the same namespace and name).
    /// Validated through the model first: an invalid policy changes nothing.
    pub fn apply_policy(&mut self, manifest: serde_json::Value) -> Result<(), LabError> {
        let loaded = netmatrix_model::parse_str("policy.json", &manifest.to_string()).map_err(|e| LabError::BadInput(e.to_string()))?;
        let [policy] = loaded.policies.as_slice() else {
            return Err(LabError::BadInput("apply_policy takes exactly one NetworkPolicy".into()));
        };
        let key = (policy.namespace.clone(), policy.name.clone());
        let previous = std::mem::take(&mut self.state.policies);
        self.state.policies = previous.into_iter().filter(|m| policy_key(m) != key).collect();
        self.state.policies.push(manifest);
        self.sync()?;
        self.save()
    }

    pub fn delete_policy(&mut self, namespace: &str, name: &str) -> Result<(), LabError> {
        let key = (namespace.to_owned(), name.to_owned());
        self.state.policies.retain(|m| policy_key(m) != key);
        self.sync()?;
        self.save()
    }

    fn find(&self, namespace: &str, name: &str) -> Option<usize> {
        self.state.pods.iter().position(|p| p.namespace == namespace && p.name == name)
    }

    /// The lab as the oracle sees it: namespaces, pods with their IPs and nodes, policies.
    pub fn model(&self) -> Result<Cluster, LabError> {
        let mut cluster = Cluster::default();
        let mut namespaces = self.state.namespaces.clone();
        for pod in &self.state.pods {
            namespaces.entry(pod.namespace.clone()).or_default();
        }
        // A YAML stream of the stored manifests (JSON documents are YAML).
        let policies: Vec<String> = self.state.policies.iter().map(|m| format!("---\n{m}\n")).collect();
        let loaded = netmatrix_model::parse_str(&format!("{} (lab {} policies)", state_file(&self.name).display(), self.name), &policies.concat()).map_err(|e| LabError::BadInput(e.to_string()))?;
        for p in &loaded.policies {
            namespaces.entry(p.namespace.clone()).or_default();
        }
        cluster.policies = loaded.policies;
        cluster.namespaces = namespaces
            .into_iter()
            .map(|(name, mut labels)| {
                labels.insert(NAMESPACE_NAME_LABEL.into(), name.clone());
                Namespace { name, labels }
            })
            .collect();
        cluster.pods = self
            .state
            .pods
            .iter()
            .map(|p| Pod {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                workload: WorkloadRef { namespace: p.namespace.clone(), name: p.name.clone(), kind: "Pod".into() },
                labels: p.labels.clone(),
                ips: vec![IpAddr::V4(p.ip)],
                ports: p.ports.iter().map(|q| ContainerPort { name: q.name.clone(), port: q.port, protocol: q.protocol }).collect(),
                host_network: false,
                node: Some(self.node_name(p.node)),
                origin: Origin { file: format!("lab {}", self.name), document: 0 },
            })
            .collect();
        Ok(cluster)
    }

    /// Renders every node's ruleset (and the router's) and applies each atomically.
    pub fn sync(&self) -> Result<(), LabError> {
        let cluster = self.model()?;
        let table = names::nft_table(&self.name);
        for node in 0..self.state.nodes {
            let script = nft::script(&table, &cluster, &self.node_name(node), node, &self.state.faults);
            apply_nft(&names::node(&self.name, node), &script, &format!("node {node}"))?;
        }
        apply_nft(&names::router(&self.name), &fault::router_script(&table, &self.state.faults, self.state.nodes), "the router")
    }

    pub fn faults(&self) -> &[Fault] {
        &self.state.faults
    }

    pub fn inject(&mut self, fault: Fault) -> Result<(), LabError> {
        let nodes = self.state.nodes;
        if fault.node >= nodes || fault.peer.is_some_and(|p| p >= nodes || p == fault.node) {
            return Err(LabError::BadInput(format!("fault {fault}: nodes are node0 to node{}, and a peer differs from the node", nodes - 1)));
        }
        if fault.kind == FaultKind::Netem {
            return Err(LabError::BadInput("fault netem: delay and loss need the sch_netem kernel module (tc qdisc netem), which this kernel lacks; not injected".into()));
        }
        if !self.state.faults.contains(&fault) {
            self.state.faults.push(fault);
        }
        self.sync()?;
        self.save()
    }

    /// Clears the faults of `kind` on `node` (all of them when `node` is `None`).
    pub fn clear(&mut self, kind: FaultKind, node: Option<usize>) -> Result<(), LabError> {
        self.state.faults.retain(|f| f.kind != kind || node.is_some_and(|n| n != f.node));
        self.sync()?;
        self.save()
    }

    /// Runs `netmatrix-agent probe --batch -` in the pod's namespace: one invocation per row.
    pub fn probe(&self, namespace: &str, name: &str, batch: &str, deadline: Duration) -> Result<String, LabError> {
        let index = self.find(namespace, name).ok_or_else(|| LabError::BadInput(format!("no pod {namespace}/{name}")))?;
        let ns = names::pod(&self.name, self.state.pods[index].id);
        let mut command = Command::new(process::agent().map_err(io_err("locating netmatrix-agent"))?);
        command.args(["probe", "--batch", "-"]);
        let out = process::run(&ns, command, batch.as_bytes(), deadline, "probe").map_err(io_err(format!("probing from {namespace}/{name}")))?;
        if !out.status.success() {
            return Err(LabError::Io { what: format!("probe from {namespace}/{name} failed ({})", out.status), source: io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()) });
        }
        String::from_utf8(out.stdout).map_err(|e| LabError::BadInput(format!("agent output: {e}")))
    }

    /// A person's view: nodes, pods, policies.
    pub fn status(&self) -> String {
        let mut out = format!("lab {}: {} nodes, {} pods, {} policies\n", self.name, self.state.nodes, self.state.pods.len(), self.state.policies.len());
        for node in 0..self.state.nodes {
            out.push_str(&format!("  node{node}  ip {}  pods {}\n", topology::node_ip(node), topology::pod_cidr(node)));
        }
        for p in &self.state.pods {
            let ports: Vec<String> = p.ports.iter().map(|q| format!("{}/{}", q.port, q.protocol)).collect();
            out.push_str(&format!("  pod {}/{}  node{}  {}  [{}]\n", p.namespace, p.name, p.node, p.ip, ports.join(",")));
        }
        for m in &self.state.policies {
            let (ns, name) = policy_key(m);
            out.push_str(&format!("  policy {ns}/{name}\n"));
        }
        for f in &self.state.faults {
            out.push_str(&format!("  fault {f}\n"));
        }
        out
    }
}

fn apply_nft(ns: &str, script: &str, what: &str) -> Result<(), LabError> {
    let mut command = Command::new("nft");
    command.args(["-f", "-"]);
    let out = process::run(ns, command, script.as_bytes(), NFT_DEADLINE, "nft").map_err(io_err(format!("applying nftables on {what}")))?;
    if !out.status.success() {
        return Err(LabError::Io { what: format!("nft rejected the ruleset of {what}"), source: io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()) });
    }
    Ok(())
}

fn policy_key(manifest: &serde_json::Value) -> (String, String) {
    let meta = &manifest["metadata"];
    (meta["namespace"].as_str().unwrap_or("default").to_owned(), meta["name"].as_str().unwrap_or_default().to_owned())
}
