use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::IpFamily;
use crate::selector::LabelSelector;
pub use crate::selector::Labels;

/// Label every namespace carries since Kubernetes 1.21 (set by the API server).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Everything loaded from the inputs, validated and normalised.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Sorted by name; every namespace referenced by any object is present.
    pub namespaces: Vec<Namespace>,
    /// One entry per pod; workload manifests (Deployment, ...) contribute one representative pod.
    pub pods: Vec<Pod>,
    pub policies: Vec<NetworkPolicy>,
    /// Admin and baseline tier policies, in evaluation order: tier, then priority, then name.
    pub admin_policies: Vec<AdminPolicy>,
    pub services: Vec<Service>,
    /// Sorted by name.
    pub nodes: Vec<Node>,
    /// Sorted by (namespace, name); when a Service has any, they are its endpoints.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Non-fatal findings (skipped documents, ...), each naming where it came from.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    /// Always includes `kubernetes.io/metadata.name`.
    pub labels: Labels,
}

impl Namespace {
    /// A namespace as the API server holds it: with the label `kubernetes.io/metadata.name`.
    pub fn new(name: String, mut labels: Labels) -> Namespace {
        labels.insert(NAMESPACE_NAME_LABEL.into(), name.clone());
        Namespace { name, labels }
    }
}

/// Where an object was read from, for messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// Shared by the objects of a file.
    pub file: Arc<str>,
    /// 1-based index of the document in its file.
    pub document: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file, self.document)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    // Declared in the connlist output order (string order).
    Sctp,
    Tcp,
    Udp,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Sctp, Protocol::Tcp, Protocol::Udp];

    /// Kubernetes spells protocols in upper case only.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "TCP" => Self::Tcp,
            "UDP" => Self::Udp,
            "SCTP" => Self::Sctp,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sctp => "SCTP",
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The workload a pod is reported as: itself, or its controller.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadRef {
    pub namespace: String,
    pub name: String,
    pub kind: String,
}

impl fmt::Display for WorkloadRef {
    /// The connlist spelling `namespace/name[Kind]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}[{}]", self.namespace, self.name, self.kind)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub workload: WorkloadRef,
    pub labels: Labels,
    /// Known addresses (`status.podIPs`/`status.podIP`); empty for pods from manifests without status.
    pub ips: Vec<IpAddr>,
    pub ports: Vec<ContainerPort>,
    pub host_network: bool,
    pub node: Option<String>,
    /// The `Ready` condition is true; pods without a status (workload templates, manifests
    /// written by hand) are taken as running and ready.
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set: the pod is shutting down.
    pub terminating: bool,
    pub origin: Origin,
}

/// An EndpointSlice: endpoints of the Service `service` in its namespace, given rather than
/// derived from the Service's selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSlice {
    pub namespace: String,
    pub name: String,
    /// The `kubernetes.io/service-name` label.
    pub service: String,
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<SliceEndpoint>,
    pub origin: Origin,
}

/// A port of an EndpointSlice; `name` matches the Service port's name (`None`: unnamed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceEndpoint {
    pub addresses: Vec<IpAddr>,
    /// Conditions as the API defaults them: an absent `ready` is true, an absent `serving`
    /// equals `ready`, an absent `terminating` is false.
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node: Option<String>,
    /// `targetRef` when it names a Pod: (namespace, name).
    pub pod: Option<(String, String)>,
}

/// A Node: where pods run and where node ports answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// `status.addresses` of type InternalIP, then ExternalIP, in manifest order; the first is
    /// the node's primary address.
    pub addresses: Vec<IpAddr>,
    /// What `nodes` peers of admin policies select on.
    pub labels: Labels,
    pub origin: Origin,
}

/// A peer of a NetworkPolicy rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    /// `podSelector` and/or `namespaceSelector`: pods matching both.
    Pods {
        /// `None`: the policy's own namespace.
        namespaces: Option<LabelSelector>,
        /// `None`: every pod of the selected namespaces.
        pods: Option<LabelSelector>,
    },
    IpBlock(IpBlock),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpBlock {
    pub cidr: IpNet,
    /// Each inside `cidr` (validated).
    pub except: Vec<IpNet>,
}

impl IpBlock {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.cidr.contains(ip) && !self.except.iter().any(|e| e.contains(ip))
    }
}

/// A port of a rule; a missing `port` means every port of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSpec {
    pub protocol: Protocol,
    pub port: Option<PortRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortRef {
    /// `port` with an optional `endPort` (inclusive range); `first <= last`.
    Range { first: u16, last: u16 },
    /// A named container port, resolved against the destination pod.
    Named(String),
}

/// One ingress or egress rule. Empty `peers` or `ports` match everything, as in the API.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub peers: Vec<Peer>,
    pub ports: Vec<PortSpec>,
}

#[derive(Debug, Clone)]
pub struct NetworkPolicy {
    pub namespace: String,
    pub name: String,
    pub pod_selector: LabelSelector,
    /// `Some` when the policy applies to ingress (after `policyTypes` defaulting); its rules allow.
    pub ingress: Option<Vec<Rule>>,
    /// `Some` when the policy applies to egress.
    pub egress: Option<Vec<Rule>>,
    pub origin: Origin,
}

impl NetworkPolicy {
    pub fn rules(&self, direction: Direction) -> Option<&[Rule]> {
        match direction {
            Direction::Ingress => self.ingress.as_deref(),
            Direction::Egress => self.egress.as_deref(),
        }
    }

    pub fn rules_mut(&mut self, direction: Direction) -> &mut Option<Vec<Rule>> {
        match direction {
            Direction::Ingress => &mut self.ingress,
            Direction::Egress => &mut self.egress,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::Egress, Direction::Ingress];
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ingress => "ingress",
            Self::Egress => "egress",
        })
    }
}

/// A Service: how it is reached (`service_type`, `cluster_ip`, node ports, load-balancer IPs)
/// and where it leads (pods its `selector` matches, ports resolved per pod).
#[derive(Debug, Clone)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub service_type: ServiceType,
    /// `spec.clusterIP` (the first of `spec.clusterIPs`): the primary family's address. `None`
    /// for headless and ExternalName Services, and when the manifest leaves the address for the
    /// API server to allocate.
    pub cluster_ip: Option<IpAddr>,
    /// `spec.clusterIPs`: one address per family, in `ip_families` order (`cluster_ip` first);
    /// empty where `cluster_ip` is `None`.
    pub cluster_ips: Vec<IpAddr>,
    /// `spec.ipFamilies`, else the families of `cluster_ips`; empty: left to the API server's
    /// defaults, which depend on the cluster ([`Service::families`]).
    pub ip_families: Vec<IpFamily>,
    /// `spec.ipFamilyPolicy` (absent: SingleStack, as the API server defaults it).
    pub ip_family_policy: IpFamilyPolicy,
    /// `clusterIP: None`: no virtual address, DNS names the endpoints directly.
    pub headless: bool,
    /// `spec.externalName` (a DNS name, trailing dot removed); `Some` exactly for ExternalName.
    pub external_name: Option<String>,
    /// `None` when absent or empty: "the service is assumed to have an external process managing
    /// its endpoints" (ServiceSpec.selector), so it has none here.
    pub selector: Option<Labels>,
    pub ports: Vec<ServicePort>,
    /// Which endpoints serve traffic to node ports and load-balancer IPs (NodePort, LoadBalancer).
    pub external_traffic_policy: TrafficPolicy,
    /// Which endpoints serve traffic to the cluster IP.
    pub internal_traffic_policy: TrafficPolicy,
    pub session_affinity: SessionAffinity,
    /// `status.loadBalancer.ingress[].ip` (entries with only a hostname are left out).
    pub load_balancer_ips: Vec<IpAddr>,
    /// `spec.externalIPs`: addresses the Service answers on, of any type but ExternalName.
    pub external_ips: Vec<IpAddr>,
    /// Endpoints include pods that are not ready, or terminating, as if they were ready.
    pub publish_not_ready_addresses: bool,
    /// `spec.trafficDistribution` (`PreferClose`, `PreferSameZone`, `PreferSameNode`): a hint the
    /// proxy may follow, never a rule.
    pub traffic_distribution: Option<String>,
    pub origin: Origin,
}

impl Service {
    /// The Service's families, the primary first, as the API server gives them on a cluster
    /// whose families are `cluster` (its primary first; empty: unknown, where every family is
    /// taken to be there and IPv4 is the primary). Allocated `cluster_ips` say it; else the
    /// dual-stack documentation's rules: `ipFamilies` or the cluster's primary family, and
    /// under PreferDualStack or RequireDualStack the other family where the cluster has it.
    /// `Err`: the cluster cannot give what the Service asks for (the API server would refuse it).
    pub fn families(&self, cluster: &[IpFamily]) -> Result<Vec<IpFamily>, String> {
        if self.service_type == ServiceType::ExternalName {
            return Ok(Vec::new());
        }
        if !self.cluster_ips.is_empty() {
            return Ok(self.cluster_ips.iter().map(IpFamily::of).collect());
        }
        let known = |f: &IpFamily| cluster.is_empty() || cluster.contains(f);
        let have = || cluster.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(" and ");
        let primary = self.ip_families.first().copied().or(cluster.first().copied()).unwrap_or(IpFamily::IPv4);
        if !known(&primary) {
            return Err(format!("asks for {}, and the cluster's addresses are {} only", primary.as_str(), have()));
        }
        let other = primary.other();
        Ok(match self.ip_family_policy {
            IpFamilyPolicy::SingleStack => vec![primary],
            IpFamilyPolicy::PreferDualStack | IpFamilyPolicy::RequireDualStack if known(&other) => vec![primary, other],
            // "If dual-stack is not enabled or supported, it falls back to single-stack behavior."
            IpFamilyPolicy::PreferDualStack => vec![primary],
            // "If dual-stack is not enabled or supported, the Service API object creation fails."
            IpFamilyPolicy::RequireDualStack => return Err(format!("RequireDualStack needs IPv4 and IPv6, and the cluster's addresses are {} only", have())),
        })
    }

    /// Whether `pod` is an endpoint candidate: same namespace, matched by a selector. Which ports
    /// it serves is [`TargetPort::resolve`]'s business.
    pub fn selects(&self, pod: &Pod) -> bool {
        self.selector.as_ref().is_some_and(|s| pod.namespace == self.namespace && s.iter().all(|(k, v)| pod.labels.get(k) == Some(v)))
    }
}

/// `spec.ipFamilyPolicy`: how many families a Service gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IpFamilyPolicy {
    /// One family (the default).
    #[default]
    SingleStack,
    /// Both families where the cluster has both, else one.
    PreferDualStack,
    /// Both families; refused on a single-stack cluster.
    RequireDualStack,
}

impl IpFamilyPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "SingleStack" => Self::SingleStack,
            "PreferDualStack" => Self::PreferDualStack,
            "RequireDualStack" => Self::RequireDualStack,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SingleStack => "SingleStack",
            Self::PreferDualStack => "PreferDualStack",
            Self::RequireDualStack => "RequireDualStack",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceType {
    ClusterIp,
    NodePort,
    LoadBalancer,
    ExternalName,
}

impl ServiceType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ClusterIP" => Self::ClusterIp,
            "NodePort" => Self::NodePort,
            "LoadBalancer" => Self::LoadBalancer,
            "ExternalName" => Self::ExternalName,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIp => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
            Self::ExternalName => "ExternalName",
        }
    }

    /// NodePort and LoadBalancer Services are reachable on every node's node ports.
    pub fn has_node_ports(self) -> bool {
        matches!(self, Self::NodePort | Self::LoadBalancer)
    }
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `externalTrafficPolicy` / `internalTrafficPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum TrafficPolicy {
    /// Any ready endpoint in the cluster.
    #[default]
    Cluster,
    /// Only endpoints on the node the traffic arrives at (none there: dropped).
    Local,
}

/// Seconds a client keeps its endpoint under `ClientIP` affinity unless the Service says otherwise.
pub const DEFAULT_AFFINITY_TIMEOUT_SECONDS: u32 = 10_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SessionAffinity {
    #[default]
    None,
    /// Connections from one client address go to the same endpoint while it keeps connecting
    /// within `timeout_seconds` (1..=86400).
    ClientIp { timeout_seconds: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
    /// Defaults to `port` when absent (or 0 or "", as the API server defaults it).
    pub target_port: TargetPort,
    /// Only NodePort and LoadBalancer Services have one; absent in a manifest until allocated.
    pub node_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetPort {
    Number(u16),
    /// A container port name, resolved on each endpoint pod.
    Name(String),
}

impl TargetPort {
    /// The port traffic for a Service port of `protocol` goes to on a pod with container ports
    /// `ports`; `None` when a named port is not one of the pod's for that protocol (the pod is
    /// then no endpoint of this Service port).
    pub fn resolve(&self, protocol: Protocol, ports: &[ContainerPort]) -> Option<u16> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Name(name) => ports.iter().find(|p| p.protocol == protocol && p.name.as_deref() == Some(name)).map(|p| p.port),
        }
    }
}

/// The tier an admin policy belongs to: evaluated before (Admin) or after (Baseline) NetworkPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Tier {
    Admin,
    Baseline,
}

/// What a matching admin rule does. v1alpha1 `Allow` and v1alpha2 `Accept` are one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminAction {
    Allow,
    Deny,
    /// Hands the traffic to the next tier.
    Pass,
}

impl fmt::Display for AdminAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Pass => "pass",
        })
    }
}

/// A subject or peer of an admin policy. Pod selections never include hostNetwork pods.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AdminPeer {
    /// `namespaces: S` is `Pods { namespaces: S, pods: {} }`.
    Pods { namespaces: LabelSelector, pods: LabelSelector },
    /// Egress only: addresses, including those of pods (hostNetwork pods have their node's).
    Networks(Vec<IpNet>),
    /// Egress only: the addresses of the selected Nodes.
    Nodes(LabelSelector),
}

/// A port of an admin rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AdminPort {
    /// `portNumber` (`first == last`), `portRange`, or v1alpha2 `destinationPort`.
    Range { protocol: Protocol, first: u16, last: u16 },
    /// `namedPort`: a container port name on the destination pod, any protocol.
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AdminRule {
    pub name: String,
    pub action: AdminAction,
    /// At least one (the API requires it); the rule matches if any does.
    pub peers: Vec<AdminPeer>,
    /// Empty: every port of every protocol.
    pub ports: Vec<AdminPort>,
}

/// The API kind of an admin policy; the kind decides which fields and actions it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdminPolicyKind {
    /// v1alpha1, the admin tier.
    AdminNetworkPolicy,
    /// v1alpha1, the baseline tier: a singleton named `default`, without `Pass`.
    BaselineAdminNetworkPolicy,
    /// v1alpha2, either tier (`spec.tier`).
    ClusterNetworkPolicy,
}

impl AdminPolicyKind {
    pub const ALL: [AdminPolicyKind; 3] = [Self::AdminNetworkPolicy, Self::BaselineAdminNetworkPolicy, Self::ClusterNetworkPolicy];

    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AdminNetworkPolicy => "AdminNetworkPolicy",
            Self::BaselineAdminNetworkPolicy => "BaselineAdminNetworkPolicy",
            Self::ClusterNetworkPolicy => "ClusterNetworkPolicy",
        }
    }

    /// The short tag of explanations: `ANP`, `BANP`, `CNP`.
    pub fn tag(self) -> &'static str {
        match self {
            Self::AdminNetworkPolicy => "ANP",
            Self::BaselineAdminNetworkPolicy => "BANP",
            Self::ClusterNetworkPolicy => "CNP",
        }
    }
}

impl fmt::Display for AdminPolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An AdminNetworkPolicy, BaselineAdminNetworkPolicy (v1alpha1) or ClusterNetworkPolicy (v1alpha2).
#[derive(Debug, Clone)]
pub struct AdminPolicy {
    pub kind: AdminPolicyKind,
    pub name: String,
    pub tier: Tier,
    /// 0..=1000, lower first; 0 for BaselineAdminNetworkPolicy (a singleton).
    pub priority: u32,
    pub subject: AdminPeer,
    pub ingress: Vec<AdminRule>,
    pub egress: Vec<AdminRule>,
    pub origin: Origin,
}

impl AdminPolicy {
    pub fn rules(&self, direction: Direction) -> &[AdminRule] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}
