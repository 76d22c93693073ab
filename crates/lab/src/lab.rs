//! A lab: its persisted state and every operation on it.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netmatrix_model::{AdminPolicy, Cluster, ContainerPort, IpFamilies, IpFamily, Labels, Namespace, NetworkPolicy, Origin, PodSpec, Protocol, Service};
use serde::{Deserialize, Serialize};

use crate::delayed::{Delayed, Update};
use crate::fault::{self, Fault, FaultKind};
use crate::{lock, names, netns, nft, process, topology};

const STATE_DIR: &str = "/run/netmatrix";
/// How many freed pod addresses new pods avoid.
const RETIRED_ADDRESSES: usize = 64;
const AGENT_READY: Duration = Duration::from_secs(10);
/// `nft` and `conntrack` runs.
const TOOL_DEADLINE: Duration = Duration::from_secs(20);
/// How long a command waits for another to release the lab.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A program the lab runs and the Debian package it comes in.
struct Tool {
    program: &'static str,
    package: &'static str,
}

const NFT: Tool = Tool { program: "nft", package: "nftables" };
const CONNTRACK: Tool = Tool { program: "conntrack", package: "conntrack" };

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN to create network namespaces); run as root")]
    NotRoot,
    #[error("`{program}` not found: install the Debian package {package}")]
    ToolMissing { program: &'static str, package: &'static str },
    /// A namespace of the lab was deleted behind its back.
    #[error("{what}: network namespace {ns} is gone (netmatrix lab down removes the rest of the lab)")]
    NamespaceGone {
        what: String,
        ns: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    BadInput(String),
    #[error("lab {0:?} already exists (netmatrix lab down {0} removes it)")]
    Exists(String),
    #[error("lab {0:?} does not exist (netmatrix lab up {0} creates it)")]
    NotFound(String),
    /// Another command holds the lab for longer than a command waits.
    #[error(
        "lab {lab} is in use by another netmatrix command{} and was not released within {}s; try again when it is done",
        .holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default(),
        .waited.as_secs()
    )]
    Busy { lab: String, holder: Option<u32>, waited: Duration },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("the state file {path} is corrupt (netmatrix cleanup removes the lab): {source}")]
    CorruptState {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// Removing a lab went on after each failure; these are all of them.
    #[error("{}", .0.join("; "))]
    Teardown(Vec<String>),
    #[error("{0} panicked")]
    Panicked(String),
}

impl LabError {
    /// Whether the user's input was wrong (exit 2), rather than the host or the lab (exit 3).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, LabError::BadInput(_) | LabError::Exists(_) | LabError::NotFound(_))
    }
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
    /// The lab address naming the pod: its IPv4 address, whose twin is its IPv6 one
    /// ([`topology::addresses`]); a hostNetwork pod's is its node's.
    pub ip: Ipv4Addr,
    pub ports: Vec<ContainerPort>,
    /// The agent serving the pod's ports; 0 when it serves none.
    pub pid: u32,
    /// A hostNetwork pod: its agent runs in the node's namespace, with the node's address.
    #[serde(default)]
    pub host_network: bool,
}

/// Where a pod just made lives: its id, node, address and agent.
struct PodPlace {
    id: u32,
    node: usize,
    ip: Ipv4Addr,
    pid: u32,
    host_network: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
struct State {
    nodes: usize,
    /// Labs made before IPv6 are IPv4 only.
    #[serde(default = "ipv4_only")]
    ip_family: IpFamilies,
    namespaces: BTreeMap<String, Labels>,
    pods: Vec<PodState>,
    /// NetworkPolicy manifests as applied, read through the model once per process.
    policies: Vec<serde_json::Value>,
    /// AdminNetworkPolicy, BaselineAdminNetworkPolicy and ClusterNetworkPolicy manifests.
    admin_policies: Vec<serde_json::Value>,
    /// Service manifests as applied, with the addresses and node ports the lab allocated.
    services: Vec<serde_json::Value>,
    faults: Vec<Fault>,
    next_pod_id: u32,
    /// Addresses of the last deleted pods, oldest first, which new pods avoid.
    retired: Vec<Ipv4Addr>,
    /// Hash of the ruleset last applied to each node (the router last), to skip unchanged ones.
    applied: Vec<u64>,
}

fn ipv4_only() -> IpFamilies {
    IpFamilies::Ipv4
}

impl Default for State {
    fn default() -> Self {
        State {
            nodes: 0,
            ip_family: ipv4_only(),
            namespaces: BTreeMap::new(),
            pods: Vec::new(),
            policies: Vec::new(),
            admin_policies: Vec::new(),
            services: Vec::new(),
            faults: Vec::new(),
            next_pod_id: 0,
            retired: Vec::new(),
            applied: Vec::new(),
        }
    }
}

pub struct Lab {
    name: String,
    state: State,
    /// The stored manifests as the model reads them, parsed on open and on each apply rather
    /// than on every change (parsing 200 policies costs more than applying a change).
    objects: Objects,
    /// The script each node's table (the router's last) was last set to, where this process
    /// knows it: the base of incremental updates. `None`: replace the whole table.
    in_kernel: Vec<Option<String>>,
    /// The appliers of `delay-policy` nodes, by node, each started at the node's first held-back
    /// update. Dropped with the lab: each applies what it still holds, at once.
    delayed: BTreeMap<usize, Delayed>,
    /// No other process changes the lab while this value lives (nor while an applier of
    /// held-back updates, which holds a clone, is still at work).
    lock: Arc<lock::Held>,
}

/// Policies and Services by (namespace, name), the order in which the model lists them; admin
/// policies by (kind, name).
#[derive(Default)]
struct Objects {
    policies: BTreeMap<(String, String), NetworkPolicy>,
    admin_policies: BTreeMap<(String, String), AdminPolicy>,
    services: BTreeMap<(String, String), Service>,
}

fn state_file(lab: &str) -> PathBuf {
    PathBuf::from(STATE_DIR).join(format!("{lab}.json"))
}

/// Where [`Lab::save`] writes the state before renaming it over the state file.
fn new_state_file(lab: &str) -> PathBuf {
    PathBuf::from(STATE_DIR).join(format!("{lab}.json.new"))
}

fn log_dir(lab: &str) -> PathBuf {
    PathBuf::from(STATE_DIR).join(lab)
}

/// Takes the lab for this command (see [`lock::acquire`]).
fn lock(lab: &str) -> Result<Arc<lock::Held>, LabError> {
    std::fs::create_dir_all(STATE_DIR).map_err(io_err(format!("creating {STATE_DIR}")))?;
    lock::acquire(&PathBuf::from(STATE_DIR).join(format!("{lab}.lock")), lab, LOCK_WAIT)
}

/// What the lab needs before it touches anything.
fn preflight(lab: &str) -> Result<(), LabError> {
    names::validate(lab).map_err(LabError::BadInput)?;
    if !nix::unistd::geteuid().is_root() {
        return Err(LabError::NotRoot);
    }
    match Command::new(NFT.program).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(LabError::Io {
            what: format!("`nft --version` failed ({})", o.status),
            source: io::Error::other(String::from_utf8_lossy(&o.stderr).trim().to_owned()),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(LabError::ToolMissing { program: NFT.program, package: NFT.package }),
        Err(source) => Err(LabError::Io { what: "running `nft --version`".into(), source }),
    }
}

impl Lab {
    /// Creates a lab of `nodes` nodes (no pods yet) with addresses of `ip_family`. On failure,
    /// whatever was made is removed.
    pub fn up(name: &str, nodes: usize, ip_family: IpFamilies) -> Result<Lab, LabError> {
        preflight(name)?;
        if nodes == 0 || nodes > topology::MAX_NODES {
            return Err(LabError::BadInput(format!("--nodes {nodes}: a lab has 1 to {} nodes", topology::MAX_NODES)));
        }
        let lock = lock(name)?;
        if state_file(name).exists() || !netns::list(&names::prefix(name)).unwrap_or_default().is_empty() {
            return Err(LabError::Exists(name.to_owned()));
        }
        let mut lab = Lab {
            name: name.to_owned(),
            state: State { nodes, ip_family, ..State::default() },
            objects: Objects::default(),
            in_kernel: Vec::new(),
            delayed: BTreeMap::new(),
            lock,
        };
        let built = (|| {
            std::fs::create_dir_all(log_dir(name)).map_err(io_err(format!("creating {}", log_dir(name).display())))?;
            topology::create_router(name, ip_family).map_err(io_err("creating the router namespace"))?;
            for node in 0..nodes {
                topology::create_node(name, node, ip_family).map_err(io_err(format!("creating node {node}")))?;
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
        let lock = lock(name)?;
        let text = std::fs::read_to_string(state_file(name)).map_err(|_| {
            // Nothing to lock: leave no lock file either.
            lock.remove();
            LabError::NotFound(name.to_owned())
        })?;
        let state: State = serde_json::from_str(&text).map_err(|source| LabError::CorruptState { path: state_file(name).display().to_string(), source })?;
        // A YAML stream of the stored manifests (JSON documents are YAML).
        let stream: String = state.policies.iter().chain(&state.admin_policies).chain(&state.services).map(|m| format!("---\n{m}\n")).collect();
        let loaded = parse_objects(name, &stream)?;
        let mut objects = Objects::default();
        objects.add(loaded);
        Ok(Lab { name: name.to_owned(), state, objects, in_kernel: Vec::new(), delayed: BTreeMap::new(), lock })
    }

    /// Names of the labs on this host: those with a state file, and those whose namespaces are
    /// left without one (after a crash).
    pub fn list() -> Vec<String> {
        let mut labs: Vec<String> = std::fs::read_dir(STATE_DIR)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").map(str::to_owned))
            .chain(netns::list("nm-").unwrap_or_default().iter().filter_map(|ns| ns.strip_prefix("nm-")?.split_once('-').map(|(lab, _)| lab.to_owned())))
            .filter(|lab| names::validate(lab).is_ok())
            .collect();
        labs.sort();
        labs.dedup();
        labs
    }

    /// Removes everything the lab created, from its state or, after a crash, by name prefix:
    /// processes living in its namespaces, the namespaces (and with them links and nftables
    /// tables), logs and state. Keeps going after errors and reports them all. Whether there
    /// was anything to remove.
    pub fn down(name: &str) -> Result<bool, LabError> {
        names::validate(name).map_err(LabError::BadInput)?;
        let lock = lock(name)?;
        let mut errors = Vec::new();
        let namespaces = netns::list(&names::prefix(name)).unwrap_or_default();
        let existed = !namespaces.is_empty() || state_file(name).exists() || log_dir(name).exists();
        let inodes: Vec<u64> = namespaces.iter().filter_map(|n| netns::inode(n).ok()).collect();
        process::terminate(&process::in_namespaces(&inodes), Duration::from_secs(2));
        for ns in &namespaces {
            if let Err(e) = netns::delete(ns) {
                errors.push(format!("deleting namespace {ns}: {e}"));
            }
        }
        for path in [state_file(name), new_state_file(name), log_dir(name)] {
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            if let Err(e) = removed.or_else(|e| if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) }) {
                errors.push(format!("removing {}: {e}", path.display()));
            }
        }
        if !errors.is_empty() {
            return Err(LabError::Teardown(errors));
        }
        lock.remove();
        Ok(existed)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn nodes(&self) -> usize {
        self.state.nodes
    }

    pub fn ip_family(&self) -> IpFamilies {
        self.state.ip_family
    }

    /// Node `node`'s addresses, the primary family first.
    pub fn node_addresses(&self, node: usize) -> Vec<IpAddr> {
        topology::addresses(self.state.ip_family, topology::node_ip(node))
    }

    pub fn node_name(&self, node: usize) -> String {
        format!("node{node}")
    }

    pub fn pods(&self) -> &[PodState] {
        &self.state.pods
    }

    /// Writes the state whole or not at all: a crash never leaves half of it.
    fn save(&self) -> Result<(), LabError> {
        let text = serde_json::to_string_pretty(&self.state).expect("state serialises");
        let new = new_state_file(&self.name);
        let written = std::fs::File::create(&new).and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        });
        written.and_then(|()| std::fs::rename(&new, state_file(&self.name))).map_err(io_err("saving the lab state"))
    }

    pub fn set_namespace(&mut self, namespace: &str, labels: Labels) -> Result<(), LabError> {
        self.state.namespaces.insert(namespace.to_owned(), labels);
        self.sync()?;
        self.save()
    }

    /// Creates the pod's namespace and link and starts its agent serving `ports`.
    pub fn add_pod(&mut self, spec: PodSpec) -> Result<&PodState, LabError> {
        self.add_pods(vec![spec])?;
        Ok(self.state.pods.last().expect("just added"))
    }

    /// Creates pods, then applies the rules once for all of them. Pods that were made are kept
    /// even if a later one fails. (Creating them on several threads was measured: no faster,
    /// the kernel serialises namespace and link creation.)
    /// hostNetwork pods go to [`Lab::add_host_pods`].
    pub fn add_pods(&mut self, specs: Vec<PodSpec>) -> Result<(), LabError> {
        let (host, specs): (Vec<PodSpec>, Vec<PodSpec>) = specs.into_iter().partition(|p| p.host_network);
        if !host.is_empty() {
            self.add_host_pods(host)?;
        }
        if specs.is_empty() {
            return Ok(());
        }
        let first = self.state.pods.len();
        let mut result = Ok(());
        for spec in specs {
            result = self.allocate(&spec).and_then(|(node, id, ip)| {
                topology::create_pod(&self.name, node, id, self.state.ip_family, ip)
                    .map_err(io_err(format!("creating pod {}/{}", spec.namespace, spec.name)))?;
                if fault::active(&self.state.faults, FaultKind::BreakHairpin, node) {
                    topology::set_hairpin(&self.name, node, &[id], false).map_err(io_err("breaking hairpin"))?;
                }
                let pid = start_agent(&self.name, &names::pod(&self.name, id), id, &spec, &[])?;
                self.record(spec, PodPlace { id, node, ip, pid, host_network: false });
                Ok(())
            });
            if result.is_err() {
                break;
            }
        }
        let peered = self.peer_new_pods(first);
        self.save()?;
        result?;
        peered?;
        self.sync()
    }

    /// Gives the pods from index `first` on (just made) and the other pods of their nodes
    /// permanent neighbour entries for each other, entering each pod's namespace once.
    fn peer_new_pods(&self, first: usize) -> Result<(), LabError> {
        let pods = &self.state.pods;
        let on_bridge = |p: &PodState, node: usize| p.node == node && !p.host_network;
        for (i, pod) in pods.iter().enumerate().filter(|(_, p)| pods[first..].iter().any(|n| on_bridge(p, n.node))) {
            let peers: Vec<Ipv4Addr> =
                pods.iter().enumerate().filter(|&(j, q)| on_bridge(q, pod.node) && j != i && (i >= first || j >= first)).map(|(_, q)| q.ip).collect();
            topology::set_peers(&self.name, pod.id, self.state.ip_family, &peers, true)
                .map_err(io_err(format!("adding neighbour entries to pod {}/{}", pod.namespace, pod.name)))?;
        }
        Ok(())
    }

    /// The index of the node named `name` (`node0`, `node1`, ...).
    pub fn node_index(&self, name: &str) -> Result<usize, LabError> {
        name.strip_prefix("node")
            .and_then(|i| i.parse().ok())
            .filter(|&i: &usize| i < self.state.nodes && self.node_name(i) == name)
            .ok_or_else(|| LabError::BadInput(format!("node {name:?} does not exist (the lab has node0 to node{})", self.state.nodes - 1)))
    }

    /// The pod's node, a pod id and a free address on the node, after checking the spec
    /// against the lab.
    fn allocate(&mut self, spec: &PodSpec) -> Result<(usize, u32, Ipv4Addr), LabError> {
        let node = self.node_index(&spec.node).map_err(|e| LabError::BadInput(format!("pod {}/{}: {e}", spec.namespace, spec.name)))?;
        if self.find(&spec.namespace, &spec.name).is_some() {
            return Err(LabError::BadInput(format!("pod {}/{} exists already", spec.namespace, spec.name)));
        }
        let used: Vec<Ipv4Addr> = self.state.pods.iter().filter(|p| p.node == node).map(|p| p.ip).collect();
        let free = |ip: &Ipv4Addr| !used.contains(ip);
        // Like a cluster's IPAM, a recreated pod gets another address than the one just freed
        // (while there is one), so that flows to the old pod cannot reach the new one.
        let ip = (0..topology::MAX_PODS_PER_NODE)
            .map(|slot| topology::pod_ip(node, slot))
            .find(|ip| free(ip) && !self.state.retired.contains(ip))
            .or_else(|| (0..topology::MAX_PODS_PER_NODE).map(|slot| topology::pod_ip(node, slot)).find(free))
            .ok_or_else(|| LabError::BadInput(format!("node {} is full ({} pods)", spec.node, topology::MAX_PODS_PER_NODE)))?;
        let id = self.state.next_pod_id;
        self.state.next_pod_id += 1;
        Ok((node, id, ip))
    }

    /// Creates hostNetwork pods: each agent serves its ports in its node's namespace, on the
    /// node's address; no two on a node may serve the same port.
    pub fn add_host_pods(&mut self, specs: Vec<PodSpec>) -> Result<(), LabError> {
        let mut result = Ok(());
        for spec in specs {
            result = (|| {
                let node = self.node_index(&spec.node).map_err(|e| LabError::BadInput(format!("hostNetwork pod {}/{}: {e}", spec.namespace, spec.name)))?;
                if self.find(&spec.namespace, &spec.name).is_some() {
                    return Err(LabError::BadInput(format!("hostNetwork pod {}/{}: the name is taken", spec.namespace, spec.name)));
                }
                let taken = self
                    .state
                    .pods
                    .iter()
                    .filter(|p| p.host_network && p.node == node)
                    .flat_map(|p| &p.ports)
                    .find(|q| spec.ports.iter().any(|s| s.port == q.port && s.protocol == q.protocol));
                if let Some(q) = taken {
                    return Err(LabError::BadInput(format!(
                        "hostNetwork pod {}/{}: {}/{} is served on node {} already",
                        spec.namespace, spec.name, q.port, q.protocol, spec.node
                    )));
                }
                let id = self.state.next_pod_id;
                self.state.next_pod_id += 1;
                let ip = topology::node_ip(node);
                // Bound to the node addresses, so that UDP answers leave from the address asked
                // (the node also has its bridge address, which a wildcard socket would answer from).
                let pid = start_agent(&self.name, &names::node(&self.name, node), id, &spec, &self.node_addresses(node))?;
                self.record(spec, PodPlace { id, node, ip, pid, host_network: true });
                Ok(())
            })();
            if result.is_err() {
                break;
            }
        }
        self.save()?;
        result?;
        self.sync()
    }

    pub fn delete_pod(&mut self, namespace: &str, name: &str) -> Result<(), LabError> {
        let index = self.find(namespace, name).ok_or_else(|| LabError::BadInput(format!("no pod {namespace}/{name}")))?;
        if self.state.pods[index].host_network {
            // Its agent is its only trace: the node's namespace stays.
            let pod = self.state.pods.remove(index);
            process::terminate(&[pod.pid], Duration::from_secs(2));
            self.sync()?;
            return self.save();
        }
        let pod = self.state.pods.remove(index);
        self.state.retired.retain(|ip| *ip != pod.ip);
        self.state.retired.push(pod.ip);
        if self.state.retired.len() > RETIRED_ADDRESSES {
            self.state.retired.remove(0);
        }
        let ns = names::pod(&self.name, pod.id);
        let inode = netns::inode(&ns).map_err(io_err(format!("pod {namespace}/{name}")))?;
        process::terminate(&process::in_namespaces(&[inode]), Duration::from_secs(2));
        // Deleting the pod's namespace deletes its veth, and with it the node's end.
        netns::delete(&ns).map_err(io_err(format!("deleting pod {namespace}/{name}")))?;
        // Its peers and node drop their entries for it, so their tables hold only live pods.
        // hostNetwork pods share the node's namespace, whose entry `forget_pod` removes.
        for peer in self.state.pods.iter().filter(|p| p.node == pod.node && !p.host_network) {
            topology::set_peers(&self.name, peer.id, self.state.ip_family, &[pod.ip], false)
                .map_err(io_err(format!("removing the neighbour entry of {namespace}/{name} from {}/{}", peer.namespace, peer.name)))?;
        }
        topology::forget_pod(&self.name, pod.node, self.state.ip_family, pod.ip)
            .map_err(io_err(format!("removing the neighbour entry of {namespace}/{name} from node {}", pod.node)))?;
        self.flush_udp_to(pod.ip)?;
        self.sync()?;
        self.save()
    }

    /// Forgets UDP flows answered by a deleted backend, on every node, as kube-proxy does:
    /// UDP has no end, so a translated flow would otherwise keep going to the dead address.
    fn flush_udp_to(&self, ip: Ipv4Addr) -> Result<(), LabError> {
        for node in (0..self.state.nodes).filter(|&n| !fault::active(&self.state.faults, FaultKind::StaleUdp, n)) {
            // Each family's flows (kube-proxy's proxier of each family flushes its own).
            for address in topology::addresses(self.state.ip_family, ip) {
                let family = if address.is_ipv4() { "ipv4" } else { "ipv6" };
                // Exit 1 with "0 flow entries have been deleted" is not a failure.
                run_tool(
                    &names::node(&self.name, node),
                    &CONNTRACK,
                    &["-D", "-f", family, "-p", "udp", "--reply-src", &address.to_string()],
                    b"",
                    &format!("flushing UDP conntrack on node {node}"),
                    |stderr| stderr.contains("flow entries have been deleted"),
                )?;
            }
        }
        Ok(())
    }

    pub fn set_pod_labels(&mut self, namespace: &str, name: &str, labels: Labels) -> Result<(), LabError> {
        let index = self.find(namespace, name).ok_or_else(|| LabError::BadInput(format!("no pod {namespace}/{name}")))?;
        self.state.pods[index].labels = labels;
        self.sync()?;
        self.save()
    }

    /// Applies a NetworkPolicy manifest (replacing one of the same namespace and name), or an
    /// AdminNetworkPolicy, BaselineAdminNetworkPolicy or ClusterNetworkPolicy one (replacing one
    /// of the same kind and name). Validated through the model first: an invalid policy changes
    /// nothing.
    pub fn apply_policy(&mut self, manifest: serde_json::Value) -> Result<(), LabError> {
        self.apply_policies(vec![manifest])
    }

    /// Applies several policy manifests (as [`Lab::apply_policy`]) with one rule update; all or
    /// nothing.
    pub fn apply_policies(&mut self, manifests: Vec<serde_json::Value>) -> Result<(), LabError> {
        let stream: String = manifests.iter().map(|m| format!("---\n{m}\n")).collect();
        let loaded = parse_objects(&self.name, &stream)?;
        let found = loaded.policies.len() + loaded.admin_policies.len();
        if found != manifests.len() {
            return Err(LabError::BadInput(format!("expected {} policy objects (NetworkPolicy or admin policies), found {found}", manifests.len())));
        }
        let keys: Vec<(String, String)> = loaded.policies.iter().map(|p| (p.namespace.clone(), p.name.clone())).collect();
        let admin_keys: Vec<(String, String)> = loaded.admin_policies.iter().map(|p| (p.kind.as_str().to_owned(), p.name.clone())).collect();
        self.state.policies.retain(|m| !keys.contains(&object_key(m)));
        self.state.admin_policies.retain(|m| !admin_keys.contains(&admin_key(m)));
        let (admin, policies): (Vec<_>, Vec<_>) = manifests.into_iter().partition(|m| admin_keys.contains(&admin_key(m)));
        self.state.policies.extend(policies);
        self.state.admin_policies.extend(admin);
        self.objects.add(loaded);
        self.sync()?;
        self.save()
    }

    /// Applies a Service manifest (replacing one of the same namespace and name). Where the
    /// manifest leaves them out, the lab allocates what a cluster would: a ClusterIP, node
    /// ports, and for LoadBalancer Services an address in `status.loadBalancer.ingress`.
    pub fn apply_service(&mut self, manifest: serde_json::Value) -> Result<(), LabError> {
        let loaded = netmatrix_model::parse_str("service", &manifest.to_string()).map_err(|e| LabError::BadInput(e.to_string()))?;
        let [service] = loaded.services.as_slice() else {
            return Err(LabError::BadInput("apply_service takes exactly one Service".into()));
        };
        let key = (service.namespace.clone(), service.name.clone());
        self.state.services.retain(|m| object_key(m) != key);
        self.objects.services.remove(&key);
        let manifest = self.allocate_service(manifest, service)?;
        // Read again: the model sees the addresses and ports just allocated.
        self.objects.add(parse_objects(&self.name, &manifest.to_string())?);
        self.state.services.push(manifest);
        self.sync()?;
        self.save()
    }

    fn allocate_service(&self, mut manifest: serde_json::Value, service: &netmatrix_model::Service) -> Result<serde_json::Value, LabError> {
        use netmatrix_model::ServiceType;
        let existing: Vec<&Service> = self.objects.services.values().collect();
        // The API server's defaults and refusals (RequireDualStack on a single-stack lab).
        let families = service.families(self.state.ip_family.list()).map_err(|why| {
            LabError::BadInput(format!(
                "Service {}/{}: spec.ipFamilyPolicy/ipFamilies: {why} (lab {} is {})",
                service.namespace,
                service.name,
                self.name,
                self.state.ip_family.as_str()
            ))
        })?;
        if !service.headless && service.service_type != ServiceType::ExternalName {
            let used: Vec<IpAddr> = existing.iter().flat_map(|s| s.cluster_ips.iter().copied()).collect();
            let mut ips = Vec::new();
            for &family in &families {
                let ip = match service.cluster_ips.iter().find(|ip| IpFamily::of(ip) == family) {
                    Some(ip) => *ip,
                    None => (0..65_000)
                        .map(|slot| topology::of_family(family, topology::cluster_ip(slot)))
                        .find(|ip| !used.contains(ip))
                        .ok_or_else(|| LabError::BadInput(format!("no {} ClusterIP left", family.as_str())))?,
                };
                ips.push(ip.to_string());
            }
            manifest["spec"]["clusterIP"] = serde_json::json!(ips[0]);
            manifest["spec"]["clusterIPs"] = serde_json::json!(ips);
        }
        if service.service_type != ServiceType::ExternalName {
            // As the API server records them.
            manifest["spec"]["ipFamilies"] = serde_json::json!(families.iter().map(|f| f.as_str()).collect::<Vec<_>>());
            manifest["spec"]["ipFamilyPolicy"] = serde_json::json!(service.ip_family_policy.as_str());
        }
        if matches!(service.service_type, ServiceType::NodePort | ServiceType::LoadBalancer) {
            let mut used: Vec<u16> =
                existing.iter().flat_map(|s| s.ports.iter().filter_map(|p| p.node_port)).chain(service.ports.iter().filter_map(|p| p.node_port)).collect();
            for (i, port) in service.ports.iter().enumerate() {
                if port.node_port.is_none() {
                    let free = topology::NODE_PORTS.into_iter().find(|p| !used.contains(p)).ok_or_else(|| LabError::BadInput("no node port left".into()))?;
                    used.push(free);
                    manifest["spec"]["ports"][i]["nodePort"] = serde_json::json!(free);
                }
            }
        }
        if service.service_type == ServiceType::LoadBalancer && service.load_balancer_ips.is_empty() {
            // One address per family, the IPv6 one the twin of the IPv4 one.
            let used: Vec<IpAddr> = existing.iter().flat_map(|s| s.load_balancer_ips.clone()).collect();
            let slot = (0..250)
                .find(|&slot| families.iter().all(|&f| !used.contains(&topology::of_family(f, topology::load_balancer_ip(slot)))))
                .ok_or_else(|| LabError::BadInput("no LoadBalancer IP left".into()))?;
            let ingress: Vec<serde_json::Value> =
                families.iter().map(|&f| serde_json::json!({"ip": topology::of_family(f, topology::load_balancer_ip(slot)).to_string()})).collect();
            manifest["status"] = serde_json::json!({"loadBalancer": {"ingress": ingress}});
        }
        Ok(manifest)
    }

    pub fn delete_service(&mut self, namespace: &str, name: &str) -> Result<(), LabError> {
        let key = (namespace.to_owned(), name.to_owned());
        self.state.services.retain(|m| object_key(m) != key);
        self.objects.services.remove(&key);
        self.sync()?;
        self.save()
    }

    pub fn delete_policy(&mut self, namespace: &str, name: &str) -> Result<(), LabError> {
        let key = (namespace.to_owned(), name.to_owned());
        self.state.policies.retain(|m| object_key(m) != key);
        self.objects.policies.remove(&key);
        self.sync()?;
        self.save()
    }

    /// Deletes the admin policy of `kind` (AdminNetworkPolicy, BaselineAdminNetworkPolicy or
    /// ClusterNetworkPolicy) and `name`; they are cluster-scoped.
    pub fn delete_admin_policy(&mut self, kind: &str, name: &str) -> Result<(), LabError> {
        let key = (kind.to_owned(), name.to_owned());
        self.state.admin_policies.retain(|m| admin_key(m) != key);
        self.objects.admin_policies.remove(&key);
        self.sync()?;
        self.save()
    }

    /// Keeps a pod just made (and its namespace) in the state.
    fn record(&mut self, spec: PodSpec, place: PodPlace) {
        self.state.namespaces.entry(spec.namespace.clone()).or_default();
        let PodPlace { id, node, ip, pid, host_network } = place;
        self.state.pods.push(PodState { id, namespace: spec.namespace, name: spec.name, labels: spec.labels, node, ip, ports: spec.ports, pid, host_network });
    }

    /// The spec a pod was made from.
    fn spec_of(&self, pod: &PodState) -> PodSpec {
        PodSpec {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            labels: pod.labels.clone(),
            node: self.node_name(pod.node),
            ports: pod.ports.clone(),
            host_network: pod.host_network,
        }
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
        for ns in self.objects.policies.values().map(|p| &p.namespace).chain(self.objects.services.values().map(|s| &s.namespace)) {
            namespaces.entry(ns.clone()).or_default();
        }
        cluster.policies = self.objects.policies.values().cloned().collect();
        cluster.admin_policies = self.objects.admin_policies.values().cloned().collect();
        // The model's evaluation order.
        cluster.admin_policies.sort_by(|a, b| (a.tier, a.priority, &a.name, a.kind).cmp(&(b.tier, b.priority, &b.name, b.kind)));
        cluster.services = self.objects.services.values().cloned().collect();
        cluster.namespaces = namespaces.into_iter().map(|(name, labels)| Namespace::new(name, labels)).collect();
        let origin = Origin { file: format!("lab {}", self.name).into(), document: 0 };
        cluster.pods = self.state.pods.iter().map(|p| self.spec_of(p).to_pod(topology::addresses(self.state.ip_family, p.ip), origin.clone())).collect();
        Ok(cluster)
    }

    /// Renders every node's ruleset (and the router's) and applies, in parallel, those that
    /// changed since the last apply: only the chains and sets that changed where the applied
    /// script is known (a change to one policy at 500 pods then costs a few ms per node instead
    /// of a whole table's 50-100 ms), else the whole table. A `delay-policy` node's update is
    /// queued instead, due the fault's delay after the others were applied.
    pub fn sync(&mut self) -> Result<(), LabError> {
        let late = self.settle_delayed();
        let cluster = self.model()?;
        let table = names::nft_table(&self.name);
        let nodes = self.state.nodes;
        let faults = &self.state.faults;
        let mut rendering = nft::Scripts::new(&table, &cluster);
        let mut scripts: Vec<(String, String, String)> = (0..nodes)
            .map(|node| {
                (names::node(&self.name, node), rendering.node(&self.node_name(node), node, &self.node_addresses(node), faults), format!("node {node}"))
            })
            .collect();
        scripts.push((names::router(&self.name), fault::router_script(&table, faults, nodes), "the router".into()));
        let hashes: Vec<u64> = scripts.iter().map(|(_, script, _)| hash(script)).collect();
        let changed: Vec<bool> = hashes.iter().enumerate().map(|(i, h)| self.state.applied.get(i) != Some(h)).collect();
        let delays: Vec<Option<Duration>> = (0..nodes).map(|node| fault::delay(faults, node)).chain([None]).collect();
        self.in_kernel.resize(scripts.len(), None);
        // Before anything is applied, so that a failure here leaves the bookkeeping as it was.
        for node in (0..nodes).filter(|&node| delays[node].is_some() && changed[node]) {
            if !self.delayed.contains_key(&node) {
                self.delayed.insert(node, start_applier(&self.name, node, &self.lock)?);
            }
        }
        let results: Vec<Result<(), LabError>> = std::thread::scope(|s| {
            let handles: Vec<_> = scripts
                .iter()
                .zip(&self.in_kernel)
                .enumerate()
                .map(|(i, ((ns, script, what), in_kernel))| {
                    let (table, apply) = (&table, changed[i] && delays[i].is_none());
                    s.spawn(move || if apply { apply_table(ns, table, in_kernel.as_deref(), script, what) } else { Ok(()) })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(LabError::Panicked("applying nftables rules".into())))).collect()
        });
        // Due from now, once the other nodes have their rules: the node lags them by the delay.
        let now = Instant::now();
        for (i, ((_, script, _), result)) in scripts.into_iter().zip(&results).enumerate() {
            if let Some(delay) = delays[i].filter(|_| changed[i]) {
                // The base of the next update is what this one leaves, whenever it lands.
                self.delayed[&i].push(Update { due: now + delay, old: self.in_kernel[i].take(), script: script.clone() });
            }
            self.in_kernel[i] = result.is_ok().then_some(script);
        }
        // Remember nothing as applied unless everything was: a failed node is retried next time.
        // A held-back update that failed is reported here, by the sync after it.
        self.state.applied = if results.iter().all(Result::is_ok) && late.is_ok() { hashes } else { Vec::new() };
        results.into_iter().collect::<Result<(), LabError>>().and(late)
    }

    /// Before a sync: the appliers of nodes no longer delayed (the fault was cleared) apply
    /// what they hold at once and end, so that nothing applied now overtakes it; a held-back
    /// update that failed leaves its node's table unknown, so the sync replaces it whole, as
    /// after a failed immediate apply. The failure, if any, for the sync to report.
    fn settle_delayed(&mut self) -> Result<(), LabError> {
        let mut failure = Ok(());
        for node in self.delayed.keys().copied().collect::<Vec<_>>() {
            let result = if fault::delay(&self.state.faults, node).is_some() {
                self.delayed[&node].take_failure().map_or(Ok(()), Err)
            } else {
                self.delayed.remove(&node).expect("listed").finish()
            };
            if let Err(e) = result {
                self.in_kernel[node] = None;
                self.state.applied.clear();
                failure = Err(e);
            }
        }
        failure
    }

    pub fn faults(&self) -> &[Fault] {
        &self.state.faults
    }

    /// Injects a fault; `delay-policy` (which needs [`Fault::delay`]) replaces the node's
    /// earlier delay, if any.
    pub fn inject(&mut self, fault: Fault) -> Result<(), LabError> {
        fault.check(self.state.nodes).and_then(|()| fault.check_families(self.state.ip_family)).map_err(LabError::BadInput)?;
        if fault.kind == FaultKind::DelayPolicy {
            self.state.faults.retain(|f| !(f.kind == FaultKind::DelayPolicy && f.node == fault.node));
        }
        if !self.state.faults.contains(&fault) {
            self.state.faults.push(fault.clone());
        }
        if fault.kind == FaultKind::BreakHairpin {
            self.set_hairpin(fault.node, false)?;
        }
        self.sync()?;
        self.save()
    }

    fn set_hairpin(&self, node: usize, on: bool) -> Result<(), LabError> {
        let ids: Vec<u32> = self.state.pods.iter().filter(|p| p.node == node).map(|p| p.id).collect();
        topology::set_hairpin(&self.name, node, &ids, on).map_err(io_err(format!("setting hairpin mode on node {node}")))
    }

    /// Clears the faults of `kind` on `node` (all of them when `node` is `None`). Clearing
    /// `delay-policy` applies the updates it holds back at once.
    pub fn clear(&mut self, kind: FaultKind, node: Option<usize>) -> Result<(), LabError> {
        let (cleared, kept): (Vec<Fault>, Vec<Fault>) =
            std::mem::take(&mut self.state.faults).into_iter().partition(|f| f.kind == kind && node.is_none_or(|n| n == f.node));
        self.state.faults = kept;
        for f in cleared.iter().filter(|f| f.kind == FaultKind::BreakHairpin) {
            self.set_hairpin(f.node, true)?;
        }
        self.sync()?;
        self.save()
    }

    /// Runs `netmatrix-agent probe --batch -` in the pod's namespace: one invocation per row.
    pub fn probe(&self, namespace: &str, name: &str, batch: &str, deadline: Duration) -> Result<String, LabError> {
        let ns = self.probe_namespace(namespace, name)?;
        let mut command = Command::new(process::agent().map_err(io_err("locating netmatrix-agent"))?);
        command.args(["probe", "--batch", "-"]);
        let out = process::run(&ns, command, batch.as_bytes(), deadline, "probe")
            .map_err(|e| run_error(e, &ns, "netmatrix-agent", &format!("probing from {namespace}/{name}")))?;
        if !out.status.success() {
            return Err(LabError::Io {
                what: format!("probe from {namespace}/{name} failed ({})", out.status),
                source: io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
            });
        }
        String::from_utf8(out.stdout).map_err(|e| LabError::BadInput(format!("agent output: {e}")))
    }

    /// Starts an agent kept in the pod's namespace for batch after batch (`probe --stream`).
    pub fn keep_agent(&self, namespace: &str, name: &str) -> Result<process::KeptAgent, LabError> {
        let ns = self.probe_namespace(namespace, name)?;
        process::KeptAgent::start(&ns).map_err(|e| run_error(e, &ns, "netmatrix-agent", &format!("keeping an agent in {namespace}/{name}")))
    }

    /// The namespace a pod's probes start in: its own, or its node's for a host-network pod.
    fn probe_namespace(&self, namespace: &str, name: &str) -> Result<String, LabError> {
        let index = self.find(namespace, name).ok_or_else(|| LabError::BadInput(format!("no pod {namespace}/{name}")))?;
        let pod = &self.state.pods[index];
        Ok(if pod.host_network { names::node(&self.name, pod.node) } else { names::pod(&self.name, pod.id) })
    }

    /// A person's view: nodes, pods, policies.
    pub fn status(&self) -> String {
        let mut out = format!(
            "lab {}: {} nodes, {} pods, {} policies, {} services, ip family {}\n",
            self.name,
            self.state.nodes,
            self.state.pods.len(),
            self.state.policies.len() + self.state.admin_policies.len(),
            self.state.services.len(),
            self.state.ip_family.as_str()
        );
        for node in 0..self.state.nodes {
            let (ips, cidr) = (self.node_addresses(node), topology::pod_cidr(node));
            let cidrs: Vec<String> = self
                .state
                .ip_family
                .list()
                .iter()
                .map(|f| if *f == IpFamily::IPv4 { cidr.to_string() } else { format!("{}/64", topology::twin(cidr.network())) })
                .collect();
            let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
            out.push_str(&format!("  node{node}  ip {}  pods {}\n", ips.join(","), cidrs.join(",")));
        }
        for p in &self.state.pods {
            let ports: Vec<String> = p.ports.iter().map(|q| format!("{}/{}", q.port, q.protocol)).collect();
            let ips: Vec<String> = topology::addresses(self.state.ip_family, p.ip).iter().map(ToString::to_string).collect();
            out.push_str(&format!("  pod {}/{}  node{}  {}  [{}]\n", p.namespace, p.name, p.node, ips.join(","), ports.join(",")));
        }
        for m in &self.state.policies {
            let (ns, name) = object_key(m);
            out.push_str(&format!("  policy {ns}/{name}\n"));
        }
        for m in &self.state.admin_policies {
            let (kind, name) = admin_key(m);
            out.push_str(&format!("  policy {kind} {name}\n"));
        }
        if let Ok(model) = self.model() {
            for svc in &model.services {
                let ip = svc.cluster_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "None".into());
                let ports: Vec<String> =
                    svc.ports.iter().map(|p| format!("{}/{}{}", p.port, p.protocol, p.node_port.map(|n| format!(":{n}")).unwrap_or_default())).collect();
                let lb: Vec<String> = svc.load_balancer_ips.iter().map(ToString::to_string).collect();
                out.push_str(&format!(
                    "  service {}/{}  {}  {ip}  [{}]{}\n",
                    svc.namespace,
                    svc.name,
                    svc.service_type,
                    ports.join(","),
                    if lb.is_empty() { String::new() } else { format!("  lb {}", lb.join(",")) }
                ));
            }
        }
        for f in &self.state.faults {
            out.push_str(&format!("  fault {f}\n"));
        }
        out
    }
}

/// Starts the pod's agent serving its ports. SCTP is left out where the kernel has no SCTP
/// (a probe of it then reports `error`, which is not a dataplane verdict).
fn start_agent(lab: &str, ns: &str, id: u32, spec: &PodSpec, binds: &[IpAddr]) -> Result<u32, LabError> {
    let list = |protocol: Protocol| spec.ports.iter().filter(|p| p.protocol == protocol).map(|p| p.port.to_string()).collect::<Vec<_>>().join(",");
    let mut args = vec!["serve".to_owned(), "--name".to_owned(), format!("{}/{}", spec.namespace, spec.name)];
    for ip in binds {
        args.extend(["--bind".to_owned(), ip.to_string()]);
    }
    let plain = args.len();
    for (flag, protocol) in [("--tcp", Protocol::Tcp), ("--udp", Protocol::Udp), ("--sctp", Protocol::Sctp)] {
        if protocol == Protocol::Sctp && !sctp_available() {
            continue;
        }
        let ports = list(protocol);
        if !ports.is_empty() {
            args.extend([flag.to_owned(), ports]);
        }
    }
    if args.len() == plain {
        // Nothing to serve: the pod is only a client, probes run as their own processes.
        return Ok(0);
    }
    let log = log_dir(lab).join(format!("p{id}.log"));
    process::start_server(ns, &args, &log, AGENT_READY).map_err(io_err(format!("starting the agent of {}/{}", spec.namespace, spec.name)))
}

/// The kernel's SCTP module is loaded (it creates /proc/net/sctp).
fn sctp_available() -> bool {
    std::path::Path::new("/proc/net/sctp").exists()
}

fn hash(script: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    script.hash(&mut h);
    h.finish()
}

/// Sets a table to `script`: only what changed since `old` where the table is known to hold
/// `old`, else the whole table.
fn apply_table(ns: &str, table: &str, old: Option<&str>, script: &str, what: &str) -> Result<(), LabError> {
    match old.and_then(|old| nft::update(table, old, script)) {
        Some(update) if update.is_empty() => Ok(()),
        // A failed update changed nothing (one transaction); replacing the table repairs what
        // it tripped on (a table changed behind our back).
        Some(update) => apply_nft(ns, &update, what).or_else(|_| apply_nft(ns, script, what)),
        None => apply_nft(ns, script, what),
    }
}

/// The thread that applies node `node`'s held-back updates.
fn start_applier(lab: &str, node: usize, lock: &Arc<lock::Held>) -> Result<Delayed, LabError> {
    let (ns, table, what) = (names::node(lab, node), names::nft_table(lab), format!("node {node} (held back by delay-policy)"));
    let lock = Arc::clone(lock);
    Delayed::start(
        &format!("node {node}"),
        Box::new(move |update: &Update| {
            // Gone with its lock file when this process removed the lab while holding it: the
            // update has no table left (and a lab made again under the name is another one).
            if !lock.is_current() {
                return Ok(());
            }
            apply_table(&ns, &table, update.old.as_deref(), &update.script, &what)
        }),
    )
}

fn apply_nft(ns: &str, script: &str, what: &str) -> Result<(), LabError> {
    run_tool(ns, &NFT, &["-f", "-"], script.as_bytes(), &format!("applying nftables on {what}"), |_| false)
}

/// Runs `tool` in namespace `ns`; a non-zero exit is an error unless `benign` accepts its stderr.
fn run_tool(ns: &str, tool: &Tool, args: &[&str], input: &[u8], what: &str, benign: impl Fn(&str) -> bool) -> Result<(), LabError> {
    let program = tool.program;
    let mut command = Command::new(program);
    command.args(args);
    let out = process::run(ns, command, input, TOOL_DEADLINE, program).map_err(|e| match e {
        process::RunError::Spawn(e) if e.kind() == io::ErrorKind::NotFound => LabError::ToolMissing { program, package: tool.package },
        e => run_error(e, ns, program, what),
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && !benign(&stderr) {
        return Err(LabError::Io { what: format!("{what}: {program} failed"), source: io::Error::other(stderr.trim().to_owned()) });
    }
    Ok(())
}

/// The error of running `program` in namespace `ns` while doing `what`.
fn run_error(e: process::RunError, ns: &str, program: &str, what: &str) -> LabError {
    match e {
        process::RunError::Namespace(source) if source.kind() == io::ErrorKind::NotFound => {
            LabError::NamespaceGone { what: what.to_owned(), ns: ns.to_owned(), source }
        }
        process::RunError::Namespace(source) => LabError::Io { what: format!("{what}: entering network namespace {ns}"), source },
        process::RunError::Spawn(source) => LabError::Io { what: format!("{what}: starting {program}"), source },
        process::RunError::Wait(source) => LabError::Io { what: what.to_owned(), source },
    }
}

/// Reads manifests of the lab's objects through the model.
fn parse_objects(lab: &str, stream: &str) -> Result<Cluster, LabError> {
    netmatrix_model::parse_str(&format!("{} (lab {lab} objects)", state_file(lab).display()), stream).map_err(|e| LabError::BadInput(e.to_string()))
}

impl Objects {
    fn add(&mut self, loaded: Cluster) {
        self.policies.extend(loaded.policies.into_iter().map(|p| ((p.namespace.clone(), p.name.clone()), p)));
        self.admin_policies.extend(loaded.admin_policies.into_iter().map(|p| ((p.kind.as_str().to_owned(), p.name.clone()), p)));
        self.services.extend(loaded.services.into_iter().map(|s| ((s.namespace.clone(), s.name.clone()), s)));
    }
}

/// (namespace, name) of a stored manifest.
fn object_key(manifest: &serde_json::Value) -> (String, String) {
    let meta = &manifest["metadata"];
    (meta["namespace"].as_str().unwrap_or("default").to_owned(), meta["name"].as_str().unwrap_or_default().to_owned())
}

/// (kind, name) of a stored manifest: the key of cluster-scoped admin policies.
fn admin_key(manifest: &serde_json::Value) -> (String, String) {
    (manifest["kind"].as_str().unwrap_or_default().to_owned(), manifest["metadata"]["name"].as_str().unwrap_or_default().to_owned())
}
