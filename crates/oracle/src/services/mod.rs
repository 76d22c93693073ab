//! Service semantics: which backends a source pod reaches through each frontend of a Service
//! (its cluster IP, its node port on each node, its load-balancer IPs, its ExternalName), with
//! NetworkPolicy applied to the translated connection. Pure: no I/O.
//!
//! Kubernetes leaves several things to the implementation; there the lab's reference dataplane
//! (`crates/lab/src/nft/service.rs`, modelled on kube-proxy's nftables mode) decides:
//! - Translation (DNAT) happens where the packet enters a node's prerouting: on the source
//!   pod's node for cluster and load-balancer IPs, on the addressed node for a node port.
//!   NetworkPolicy runs after it (forward hook), so it sees the backend pod and target port.
//! - Masquerade happens in postrouting, after the policy of the translating node. So a backend
//!   on that node is checked against the client's own address, and a backend on another node
//!   against the translating node's address, the source it arrives with.
//! - The source's egress is checked on its own node: against the backend when the translation
//!   happened there, against the addressed node's IP and node port otherwise.
//! - "Local" for `externalTrafficPolicy: Local` short-circuits is decided by the pod's node in
//!   the model; kube-proxy decides by the source address being in the node's pod CIDR, which
//!   agrees as long as pods have addresses of their node's CIDR.

use std::net::IpAddr;

use netmatrix_model::{Cluster, Direction, EndpointSlice, Pod, Protocol, Service, ServicePort, ServiceType, SessionAffinity, TrafficPolicy};

use crate::ports::ConnId;
use crate::reach::Reachability;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceOptions {
    /// The dataplane promises hairpin: a pod reaching itself through its Service (kube-proxy
    /// masquerades such connections). Off: such cells are [`Verdict::Undefined`].
    pub hairpin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrontendKind {
    ClusterIp,
    /// The Service's node port on `cluster.nodes[node]`.
    NodePort {
        node: usize,
    },
    LoadBalancer,
    ExternalName,
}

/// One address and port a client connects to in order to reach a Service port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frontend {
    /// Index into `cluster.services`.
    pub service: usize,
    /// Index into that Service's `ports`.
    pub port: usize,
    pub kind: FrontendKind,
    /// What a client connects to; `None` for ExternalName (a DNS name).
    pub address: Option<IpAddr>,
    /// The Service port, or the node port.
    pub dst_port: u16,
    pub protocol: Protocol,
}

impl Frontend {
    /// `svc:ns/name:80/TCP` for the cluster IP; other kinds add where they are reached:
    /// `[NodePort node0 172.18.0.2:30080]`, `[LoadBalancer 172.18.255.1]`, `[ExternalName db.example.com]`.
    pub fn label(&self, cluster: &Cluster) -> String {
        let s = &cluster.services[self.service];
        let port = &s.ports[self.port];
        let base = format!("svc:{}/{}:{}/{}", s.namespace, s.name, port.port, port.protocol);
        let address = self.address.map(|a| a.to_string()).unwrap_or_default();
        match self.kind {
            FrontendKind::ClusterIp => base,
            FrontendKind::NodePort { node } => format!("{base}[NodePort {} {}]", cluster.nodes[node].name, socket(&address, self.dst_port)),
            FrontendKind::LoadBalancer => format!("{base}[LoadBalancer {address}]"),
            FrontendKind::ExternalName => format!("{base}[ExternalName {}]", s.external_name.as_deref().unwrap_or_default()),
        }
    }
}

fn socket(address: &str, port: u16) -> String {
    if address.contains(':') { format!("[{address}]:{port}") } else { format!("{address}:{port}") }
}

/// Every frontend of every Service, by Service, then port, then kind (cluster IP, node port on
/// each node in `cluster.nodes` order, load-balancer IPs). Headless Services have none: "a
/// headless Service ... kube-proxy does not handle these Services, and there is no load
/// balancing or proxying done by the platform" (Service docs, headless Services). Node ports
/// answer on each node's primary address (kube-proxy's nftables default; a node without
/// addresses has none); unallocated cluster IPs and node ports give no frontend.
pub fn frontends(cluster: &Cluster) -> Vec<Frontend> {
    let mut out = Vec::new();
    for (s, service) in cluster.services.iter().enumerate() {
        if service.headless {
            continue;
        }
        for (p, port) in service.ports.iter().enumerate() {
            let frontend = |kind, address, dst_port| Frontend { service: s, port: p, kind, address, dst_port, protocol: port.protocol };
            if service.service_type == ServiceType::ExternalName {
                out.push(frontend(FrontendKind::ExternalName, None, port.port));
                continue;
            }
            if let Some(ip) = service.cluster_ip {
                out.push(frontend(FrontendKind::ClusterIp, Some(ip), port.port));
            }
            if let Some(node_port) = port.node_port.filter(|_| service.service_type.has_node_ports()) {
                for (n, node) in cluster.nodes.iter().enumerate() {
                    if let Some(&ip) = node.addresses.first() {
                        out.push(frontend(FrontendKind::NodePort { node: n }, Some(ip), node_port));
                    }
                }
            }
            if service.service_type == ServiceType::LoadBalancer {
                for &ip in &service.load_balancer_ips {
                    out.push(frontend(FrontendKind::LoadBalancer, Some(ip), port.port));
                }
            }
        }
    }
    out
}

/// Finds a Service by `svc:namespace/name` or `svc:name` (namespace `default`).
pub fn find_service(cluster: &Cluster, text: &str) -> Result<usize, String> {
    let path = text.strip_prefix("svc:").ok_or_else(|| format!("{text:?} is no Service (write svc:namespace/name)"))?;
    let (namespace, name) = path.split_once('/').unwrap_or(("default", path));
    cluster.services.iter().position(|s| s.namespace == namespace && s.name == name).ok_or_else(|| format!("no Service {namespace}/{name} in the input"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The source connects, and exactly the listed backends may answer.
    Allow,
    /// No backend answers: no endpoints, none usable under the traffic policy, or all denied
    /// by NetworkPolicy.
    Deny,
    /// The specification leaves the outcome open (`#`): a pod reaching itself without promised
    /// hairpin, an ExternalName, a choice between allowed and denied endpoints, ...
    Undefined,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceVerdict {
    pub verdict: Verdict,
    /// Pod indices (`cluster.pods`) that may answer this source.
    pub backends: Vec<usize>,
    /// The source address backends see when the connection is masqueraded: the translating
    /// node's primary address. (A backend on that node itself sees the node's address on the
    /// pod network instead, 10.244.n.1 in the lab; `reasons` say so.)
    pub snat: Option<IpAddr>,
    /// Sentences for `--explain`; for Deny and Undefined the last one is the decisive reason.
    pub reasons: Vec<String>,
}

fn pod_name(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace, pod.name)
}

/// Where a pod is relative to a node: `None` when either is unknown.
fn on_node(pod: &Pod, node: Option<&str>) -> Option<bool> {
    Some(pod.node.as_deref()? == node?)
}

/// An endpoint of the Service port: the pod and the port traffic is translated to.
#[derive(Debug, Clone, Copy)]
struct Endpoint {
    pod: usize,
    target: u16,
}

/// The ready and the serving-but-terminating endpoints of `service`'s port, with the conditions
/// kube-proxy reads: from the Service's EndpointSlices when the input has any, else as the
/// EndpointSlice controller would publish them from the selector.
fn endpoints(cluster: &Cluster, service: &Service, port: usize, reasons: &mut Vec<String>) -> (Vec<Endpoint>, Vec<Endpoint>) {
    let port = &service.ports[port];
    let mut ready = Vec::new();
    let mut terminating = Vec::new();
    let slices: Vec<&EndpointSlice> = cluster.endpoint_slices.iter().filter(|e| e.namespace == service.namespace && e.service == service.name).collect();
    if !slices.is_empty() {
        reasons.push(format!("endpoints from EndpointSlices {}", slices.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")));
        for slice in slices {
            slice_endpoints(cluster, slice, port, reasons, &mut ready, &mut terminating);
        }
        return (ready, terminating);
    }
    if service.selector.is_none() {
        reasons.push(format!("{}/{} has no selector: its endpoints would be managed by hand, and no EndpointSlice is given", service.namespace, service.name));
    }
    for (i, pod) in cluster.pods.iter().enumerate() {
        if !service.selects(pod) {
            continue;
        }
        // "If this is a string, it will be looked up as a named port in the target Pod's
        // container ports" (ServicePort.targetPort): a pod without the name is no endpoint.
        let Some(target) = port.target_port.resolve(port.protocol, &pod.ports) else { continue };
        let endpoint = Endpoint { pod: i, target };
        // publishNotReadyAddresses: "all endpoints are considered 'ready' even if the Pods
        // themselves are not" (ServiceSpec), terminating ones included.
        if service.publish_not_ready_addresses || (pod.ready && !pod.terminating) {
            ready.push(endpoint);
        } else if pod.ready {
            terminating.push(endpoint);
        }
    }
    (ready, terminating)
}

/// The endpoints `slice` gives for Service port `port`, by their conditions.
fn slice_endpoints(
    cluster: &Cluster,
    slice: &EndpointSlice,
    port: &ServicePort,
    reasons: &mut Vec<String>,
    ready: &mut Vec<Endpoint>,
    terminating: &mut Vec<Endpoint>,
) {
    // An EndpointSlice port serves the Service port of the same name and protocol.
    let Some(target) = slice.ports.iter().find(|p| p.name == port.name && p.protocol == port.protocol).map(|p| p.port) else { return };
    for e in &slice.endpoints {
        let by_ref = e.pod.as_ref().and_then(|(ns, name)| cluster.pods.iter().position(|p| &p.namespace == ns && &p.name == name));
        let Some(pod) = by_ref.or_else(|| cluster.pods.iter().position(|p| p.ips.iter().any(|ip| e.addresses.contains(ip)))) else {
            reasons.push(format!("EndpointSlice {}: endpoint {:?} is no pod of the input, left out", slice.name, e.addresses));
            continue;
        };
        let endpoint = Endpoint { pod, target };
        if e.ready {
            ready.push(endpoint);
        } else if e.serving && e.terminating {
            terminating.push(endpoint);
        }
    }
}

/// Which endpoints the traffic may use and whether it is masqueraded, decided by the
/// frontend's traffic policy.
struct Scope<'c> {
    /// The node that translates: the source's node, or the node a node port was reached on.
    node: Option<&'c str>,
    /// Only endpoints on `node`.
    local_only: bool,
    masquerade: bool,
}

pub fn evaluate(cluster: &Cluster, reach: &mut Reachability, src_pod: usize, frontend: &Frontend, options: ServiceOptions) -> ServiceVerdict {
    let mut decider = Decider { cluster, reach, src_pod, frontend, options, reasons: Vec::new() };
    let (verdict, backends, snat) = decider.decide().unwrap_or_else(|early| early);
    ServiceVerdict { verdict, backends, snat, reasons: decider.reasons }
}

type Decision = (Verdict, Vec<usize>, Option<IpAddr>);

/// One (source pod, frontend) cell being decided, with the reasons so far.
struct Decider<'a, 'c> {
    cluster: &'c Cluster,
    reach: &'a mut Reachability,
    src_pod: usize,
    frontend: &'a Frontend,
    options: ServiceOptions,
    reasons: Vec<String>,
}

impl<'c> Decider<'_, 'c> {
    fn undefined(&mut self, why: String) -> Decision {
        self.reasons.push(why);
        (Verdict::Undefined, Vec::new(), None)
    }

    fn src(&self) -> &'c Pod {
        &self.cluster.pods[self.src_pod]
    }

    /// `Err`: decided before NetworkPolicy was consulted for every endpoint.
    fn decide(&mut self) -> Result<Decision, Decision> {
        let cluster = self.cluster;
        let frontend = self.frontend;
        let service = &cluster.services[frontend.service];
        if frontend.kind == FrontendKind::ExternalName {
            // "Services of type ExternalName map a Service to a DNS name ... No proxying of any kind
            // is set up" (Service docs, type ExternalName).
            let name = service.external_name.as_deref().unwrap_or_default();
            return Err(self.undefined(format!(
                "ExternalName: cluster DNS answers with a CNAME for {name} and nothing is proxied, so what answers lies outside the cluster"
            )));
        }
        let label = frontend.label(cluster);
        let Some(scope) = scope(cluster, self.src(), frontend, service, &label, &mut self.reasons) else {
            return Err((Verdict::Undefined, Vec::new(), None));
        };
        let chosen = self.choose_endpoints(service, &scope, &label)?;
        self.hairpin_and_affinity(service, &chosen)?;
        let snat = self.masquerade(&scope)?;
        self.policies(&scope, snat, &chosen)
    }

    /// The endpoints the proxy may pick for this traffic, named in the reasons.
    fn choose_endpoints(&mut self, service: &Service, scope: &Scope, label: &str) -> Result<Vec<Endpoint>, Decision> {
        let cluster = self.cluster;
        let (ready, terminating) = endpoints(cluster, service, self.frontend.port, &mut self.reasons);
        if ready.is_empty() && terminating.is_empty() {
            // kube-proxy rejects connections to a Service port without endpoints.
            self.reasons.push(format!("{label} has no endpoints: rejected"));
            return Err((Verdict::Deny, Vec::new(), None));
        }
        let in_scope = |list: &[Endpoint]| -> Vec<Endpoint> {
            list.iter().copied().filter(|e| !scope.local_only || on_node(&cluster.pods[e.pod], scope.node) == Some(true)).collect()
        };
        let (ready, terminating) = (in_scope(&ready), in_scope(&terminating));
        let where_ = if scope.local_only { format!(" on {}", scope.node.unwrap_or_default()) } else { String::new() };
        // KEP-1669 (Proxy Terminating Endpoints): kube-proxy falls back to terminating endpoints
        // that are still serving only when the scope (cluster or node) has no ready one.
        let chosen = if !ready.is_empty() {
            ready
        } else if !terminating.is_empty() {
            self.reasons.push(format!("no ready endpoint{where_}: terminating endpoints that still serve are used"));
            terminating
        } else {
            self.reasons.push(format!("no endpoint{where_} for this traffic: dropped"));
            return Err((Verdict::Deny, Vec::new(), None));
        };
        self.reasons.push(format!(
            "endpoints{where_}: {}",
            chosen.iter().map(|e| format!("{} (port {})", pod_name(&cluster.pods[e.pod]), e.target)).collect::<Vec<_>>().join(", ")
        ));
        Ok(chosen)
    }

    /// A source among the endpoints, and client affinity: what the dataplane may do on top.
    fn hairpin_and_affinity(&mut self, service: &Service, chosen: &[Endpoint]) -> Result<(), Decision> {
        let src = self.src();
        if chosen.iter().any(|e| e.pod == self.src_pod) {
            if !self.options.hairpin {
                // A pod reaching itself through its Service ("hairpin") depends on the node's
                // bridge and proxy configuration; Kubernetes does not define it.
                return Err(self.undefined(format!("the proxy may send {} back to itself (hairpin), which the dataplane does not promise", pod_name(src))));
            }
            self.reasons.push(format!("{} may reach itself: the dataplane promises hairpin", pod_name(src)));
        }
        if let SessionAffinity::ClientIp { timeout_seconds } = service.session_affinity {
            // "connections from a particular client are passed to the same Pod each time" (Service
            // docs, session affinity): which one is not known in advance, so any may answer.
            self.reasons.push(format!(
                "ClientIP affinity: further connections from this client go to the same endpoint for {timeout_seconds}s (which one is decided by the first)"
            ));
        }
        Ok(())
    }

    /// The address the connection is masqueraded to, if it is.
    fn masquerade(&mut self, scope: &Scope) -> Result<Option<IpAddr>, Decision> {
        if !scope.masquerade {
            return Ok(None);
        }
        match (scope.node, node_address(self.cluster, scope.node)) {
            (_, Some(ip)) => Ok(Some(ip)),
            (None, None) => {
                Err(self.undefined(format!("the connection is masqueraded by the node of {}, which is unknown (spec.nodeName)", pod_name(self.src()))))
            }
            (Some(node), None) => {
                Err(self.undefined(format!("the connection is masqueraded by {node}, whose address is unknown (no Node with status.addresses)")))
            }
        }
    }

    /// NetworkPolicy on the translated connection to each chosen endpoint.
    fn policies(&mut self, scope: &Scope, snat: Option<IpAddr>, chosen: &[Endpoint]) -> Result<Decision, Decision> {
        let src = self.src();
        if matches!(self.frontend.kind, FrontendKind::NodePort { .. }) && on_node(src, scope.node).is_none() {
            return Err(self.undefined(format!(
                "whether {} runs on {} decides what its egress policies see, and its node is unknown (spec.nodeName)",
                pod_name(src),
                scope.node.unwrap_or_default()
            )));
        }
        let mut allowed = Vec::new();
        let mut denied = Vec::new();
        for e in chosen {
            if self.endpoint_allowed(scope, snat, e)? {
                allowed.push(e.pod);
            } else {
                denied.push(e.pod);
            }
        }
        if allowed.is_empty() {
            self.reasons.push("NetworkPolicy denies every endpoint: no connection".into());
            return Ok((Verdict::Deny, Vec::new(), snat));
        }
        if !denied.is_empty() {
            // The proxy picks an endpoint per connection without regard to policy.
            self.reasons.push("some endpoints are allowed and some denied: whether a connection succeeds depends on the endpoint the proxy picks".into());
            return Ok((Verdict::Undefined, allowed, snat));
        }
        Ok((Verdict::Allow, allowed, snat))
    }

    /// Whether the source's egress and the endpoint's ingress policies allow the connection as
    /// each node sees it.
    fn endpoint_allowed(&mut self, scope: &Scope, snat: Option<IpAddr>, e: &Endpoint) -> Result<bool, Decision> {
        let (cluster, frontend) = (self.cluster, self.frontend);
        let port = &cluster.services[frontend.service].ports[frontend.port];
        let src = self.src();
        let backend = &cluster.pods[e.pod];
        let src_class = self.reach.pod_class[self.src_pod];
        let backend_class = self.reach.pod_class[e.pod];
        // Egress, on the source's node: towards the backend when the translation happened
        // there, else towards the addressed node on the node port.
        let egress = match (frontend.kind, on_node(src, scope.node)) {
            (FrontendKind::NodePort { .. }, Some(false)) => {
                let ip = frontend.address.expect("node-port frontends have an address");
                match external(self.reach, Direction::Egress, src_class, ip) {
                    Some(conn) => (conn, frontend.dst_port, format!("{ip}")),
                    None => return Err(self.undefined(no_range(ip))),
                }
            }
            _ => (self.reach.allowed_by(Direction::Egress, src_class, backend_class), e.target, pod_name(backend)),
        };
        // Ingress, on the backend's node: from the client's address unless masquerading
        // happened before, on another node.
        let seen = match (snat, on_node(backend, scope.node)) {
            (None, _) | (Some(_), Some(true)) => None,
            (Some(ip), Some(false)) => Some(ip),
            (Some(_), None) => {
                return Err(self.undefined(format!(
                    "whether {} runs on {} decides the source its policies see, and its node is unknown (spec.nodeName)",
                    pod_name(backend),
                    scope.node.unwrap_or("the translating node")
                )));
            }
        };
        let ingress = match seen {
            None => (self.reach.allowed_by(Direction::Ingress, backend_class, src_class), pod_name(src)),
            Some(ip) => match external(self.reach, Direction::Ingress, backend_class, ip) {
                Some(conn) => (conn, ip.to_string()),
                None => return Err(self.undefined(no_range(ip))),
            },
        };
        let egress_ok = self.reach.conn(egress.0).allows(port.protocol, egress.1);
        let ingress_ok = self.reach.conn(ingress.0).allows(port.protocol, e.target);
        let name = pod_name(backend);
        let reason = match (egress_ok, ingress_ok) {
            (true, true) => format!(
                "{name}: allowed (egress of {} to {} on {} {}, ingress of {name} from {} on {} {})",
                pod_name(src),
                egress.2,
                port.protocol,
                egress.1,
                ingress.1,
                port.protocol,
                e.target
            ),
            (false, _) => format!("{name}: denied by the egress policies of {} ({} {} to {})", pod_name(src), port.protocol, egress.1, egress.2),
            (true, false) => format!("{name}: denied by its ingress policies ({} {} from {})", port.protocol, e.target, ingress.1),
        };
        self.reasons.push(reason);
        Ok(egress_ok && ingress_ok)
    }
}

fn no_range(ip: IpAddr) -> String {
    format!("{ip} is IPv6 and no ipBlock names IPv6 addresses: what policies allow for it is not computed")
}

/// What `owner`'s `direction` policies allow with the outside address `ip`.
fn external(reach: &Reachability, direction: Direction, owner: usize, ip: IpAddr) -> Option<ConnId> {
    let range = reach.ranges.iter().position(|r| r.contains(&ip))?;
    Some(reach.allowed_external(direction, owner, range))
}

fn node_address(cluster: &Cluster, node: Option<&str>) -> Option<IpAddr> {
    cluster.nodes.iter().find(|n| Some(n.name.as_str()) == node)?.addresses.first().copied()
}

/// The traffic policy's reading of this source and frontend; `None` (reason pushed) when the
/// nodes needed to decide are unknown.
fn scope<'c>(cluster: &'c Cluster, src: &'c Pod, frontend: &Frontend, service: &Service, label: &str, reasons: &mut Vec<String>) -> Option<Scope<'c>> {
    let src_node = src.node.as_deref();
    let unknown = |reasons: &mut Vec<String>, what: &str| {
        reasons.push(format!("{what} depends on the node of {}, which is unknown (spec.nodeName)", pod_name(src)));
        None
    };
    match frontend.kind {
        FrontendKind::ClusterIp => {
            // internalTrafficPolicy Local: "only node local endpoints are considered" (Service
            // Internal Traffic Policy docs).
            let local_only = service.internal_traffic_policy == TrafficPolicy::Local;
            if local_only && src_node.is_none() {
                return unknown(reasons, "internalTrafficPolicy Local");
            }
            reasons.push(format!(
                "{label} is the cluster IP {}, internalTrafficPolicy {:?}: {}",
                frontend.address.map(|a| a.to_string()).unwrap_or_default(),
                service.internal_traffic_policy,
                if local_only { "only endpoints on the source's node serve" } else { "any endpoint may serve" }
            ));
            Some(Scope { node: src_node, local_only, masquerade: false })
        }
        FrontendKind::NodePort { .. } | FrontendKind::LoadBalancer => {
            let node = match frontend.kind {
                FrontendKind::NodePort { node } => Some(cluster.nodes[node].name.as_str()),
                // The source's own node translates load-balancer IPs on their way out.
                _ => src_node,
            };
            let cluster_wide = |reasons: &mut Vec<String>, masquerade: bool, why: &str| {
                reasons.push(format!("{label}, externalTrafficPolicy {:?}: {why}", service.external_traffic_policy));
                Some(Scope { node, local_only: false, masquerade })
            };
            if service.external_traffic_policy == TrafficPolicy::Cluster {
                // ETP Cluster "obscures the client source IP" (Service docs, external traffic
                // policy): kube-proxy masquerades everything it receives on these addresses.
                return cluster_wide(reasons, true, "masqueraded to the translating node's address, any endpoint may serve");
            }
            // ETP Local: "each node will deliver traffic only to the node-local endpoints of the
            // service, without masquerading the client source IP" (ServiceSpec); traffic from
            // the node's own pods is short-circuited to every endpoint, and "traffic sent to ...
            // LoadBalancer IP from within the cluster will always get Cluster semantics".
            let local_pod = frontend.kind == FrontendKind::LoadBalancer || on_node(src, node) == Some(true);
            match (src.host_network, local_pod) {
                (false, true) => {
                    cluster_wide(reasons, false, "the source is a pod of the translating node, short-circuited to every endpoint with its own address")
                }
                (true, true) => cluster_wide(reasons, true, "the source is the translating node itself: masqueraded, any endpoint may serve"),
                (_, false) if src_node.is_none() => unknown(reasons, "externalTrafficPolicy Local on a node port"),
                (_, false) => {
                    reasons.push(format!(
                        "{label}, externalTrafficPolicy Local: only endpoints on {} serve, the client address is kept",
                        node.unwrap_or_default()
                    ));
                    Some(Scope { node, local_only: true, masquerade: false })
                }
            }
        }
        FrontendKind::ExternalName => unreachable!("ExternalName is decided before scoping"),
    }
}

/// One line of `analyze --services`: a source pod and a frontend it may use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceLine {
    /// The source as connlist names it: its workload, or `ns/pod[Pod]` for one pod of several.
    pub src: String,
    pub frontend: String,
    pub verdict: Verdict,
    /// Named like `src`, sorted.
    pub backends: Vec<String>,
    pub snat: Option<IpAddr>,
    /// Why the cell is undefined.
    pub reason: Option<String>,
}

/// A pod's connlist name: its workload when the pod stands for it, else the pod itself.
fn endpoint_name(pod: &Pod) -> String {
    if pod.workload.name == pod.name { pod.workload.to_string() } else { format!("{}/{}[Pod]", pod.namespace, pod.name) }
}

/// Every (source pod, frontend) cell that is not denied, sorted by source then frontend order;
/// duplicates (pods of one workload that agree) appear once.
pub fn service_lines(cluster: &Cluster, reach: &mut Reachability, options: ServiceOptions) -> Vec<ServiceLine> {
    let fronts = frontends(cluster);
    let mut sources: Vec<(String, usize)> = cluster.pods.iter().enumerate().map(|(i, p)| (endpoint_name(p), i)).collect();
    sources.sort();
    let mut lines: Vec<ServiceLine> = Vec::new();
    for (src, pod) in sources {
        for f in &fronts {
            let v = evaluate(cluster, reach, pod, f, options);
            if v.verdict == Verdict::Deny {
                continue;
            }
            let mut backends: Vec<String> = v.backends.iter().map(|&b| endpoint_name(&cluster.pods[b])).collect();
            backends.sort();
            backends.dedup();
            let reason = (v.verdict == Verdict::Undefined).then(|| v.reasons.last().cloned().unwrap_or_default());
            let line = ServiceLine { src: src.clone(), frontend: f.label(cluster), verdict: v.verdict, backends, snat: v.snat, reason };
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    lines
}

/// `--explain SRC svc:ns/name [PORT/PROTO]`: one frontend's verdict with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FrontendExplanation {
    pub src: String,
    pub frontend: String,
    pub verdict: Verdict,
    pub backends: Vec<String>,
    pub snat: Option<IpAddr>,
    pub reasons: Vec<String>,
}

/// Every frontend of Service `service` (only those of the Service port `port`, if given) as seen
/// from `src_pod`.
pub fn explain(
    cluster: &Cluster,
    reach: &mut Reachability,
    src_pod: usize,
    service: usize,
    port: Option<(u16, Protocol)>,
    options: ServiceOptions,
) -> Vec<FrontendExplanation> {
    let selected = |f: &Frontend| f.service == service && port.is_none_or(|(n, p)| cluster.services[service].ports[f.port].port == n && f.protocol == p);
    frontends(cluster)
        .into_iter()
        .filter(selected)
        .map(|f| {
            let v = evaluate(cluster, reach, src_pod, &f, options);
            let backends = v.backends.iter().map(|&b| endpoint_name(&cluster.pods[b])).collect();
            FrontendExplanation {
                src: endpoint_name(&cluster.pods[src_pod]),
                frontend: f.label(cluster),
                verdict: v.verdict,
                backends,
                snat: v.snat,
                reasons: v.reasons,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use netmatrix_model::parse_str;

    use super::*;
    use crate::Options;

    const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: x}\nspec: {clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}\n";

    /// A pod of the Service `web` named `name` in state `state`: `ready`, `not-ready`,
    /// `terminating` (ready, deletion requested), `no-port` (without the named target port).
    fn pod(i: usize, name: &str, state: &str) -> String {
        let port = if state == "no-port" { "other" } else { "http" };
        let deleted = if state == "terminating" { ", deletionTimestamp: \"2026-12-01T10:00:00Z\"" } else { "" };
        let ready = if state == "not-ready" { "False" } else { "True" };
        format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: x, labels: {{app: web}}{deleted}}}\nspec: {{containers: [{{ports: [{{name: {port}, containerPort: 8080}}]}}]}}\nstatus: {{podIP: 10.0.0.{}, conditions: [{{type: Ready, status: \"{ready}\"}}]}}\n",
            i + 10
        )
    }

    fn cluster(service: &str, pods: &[(&str, &str)]) -> Cluster {
        let text: String = pods.iter().enumerate().map(|(i, (name, state))| pod(i, name, state)).collect();
        parse_str("svc.yaml", &format!("{service}{text}")).unwrap_or_else(|e| panic!("{e}"))
    }

    /// (name, state) of pods of `web`, as [`pod`] takes them.
    type Pods<'a> = &'a [(&'a str, &'a str)];

    const PODS: [(&str, &str); 4] = [("leaving", "terminating"), ("noport", "no-port"), ("slow", "not-ready"), ("up", "ready")];

    #[test]
    fn endpoints_follow_readiness_unless_not_ready_addresses_are_published() {
        // "publishNotReadyAddresses ... all endpoints are considered 'ready' even if the Pods
        // themselves are not" (ServiceSpec); a named targetPort a pod lacks makes it no endpoint.
        let cases: [(&str, &[&str], &[&str]); 2] = [("", &["up"], &["leaving"]), ("publishNotReadyAddresses: true", &["leaving", "slow", "up"], &[])];
        for (extra, ready, terminating) in cases {
            let service = if extra.is_empty() { SERVICE.to_owned() } else { SERVICE.replace("ports:", &format!("{extra}, ports:")) };
            let c = cluster(&service, &PODS);
            let (got_ready, got_terminating) = endpoints(&c, &c.services[0], 0, &mut Vec::new());
            let names = |list: Vec<Endpoint>| list.iter().map(|e| c.pods[e.pod].name.as_str()).collect::<Vec<_>>();
            assert_eq!((names(got_ready), names(got_terminating)), (ready.to_vec(), terminating.to_vec()), "{extra}");
        }
    }

    #[test]
    fn terminating_endpoints_serve_only_when_none_is_ready() {
        // KEP-1669: kube-proxy falls back to serving terminating endpoints without ready ones.
        let cases: [(Pods, Verdict, &[&str], &str); 4] = [
            (&[("up", "ready"), ("leaving", "terminating")], Verdict::Allow, &["up"], "endpoints: x/up (port 8080)"),
            (&[("leaving", "terminating")], Verdict::Allow, &["leaving"], "no ready endpoint: terminating endpoints that still serve are used"),
            (&[("slow", "not-ready")], Verdict::Deny, &[], "has no endpoints: rejected"),
            (&[("noport", "no-port")], Verdict::Deny, &[], "has no endpoints: rejected"),
        ];
        for (pods, verdict, backends, reason) in cases {
            let mut all = pods.to_vec();
            all.push(("client", "no-port"));
            let c = cluster(SERVICE, &all);
            let client = c.pods.iter().position(|p| p.name == "client").unwrap();
            let mut reach = Reachability::compute(&c, Options::default());
            let v = evaluate(&c, &mut reach, client, &frontends(&c)[0], ServiceOptions::default());
            let got: Vec<&str> = v.backends.iter().map(|&b| c.pods[b].name.as_str()).collect();
            assert_eq!((v.verdict, got.as_slice()), (verdict, backends), "{pods:?}: {:?}", v.reasons);
            assert!(v.reasons.iter().any(|r| r.contains(reason)), "{pods:?}: {:?}", v.reasons);
        }
    }
}
