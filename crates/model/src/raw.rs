//! Serde mirrors of the Kubernetes JSON we read. Lenient about absent fields (hand-written
//! manifests omit what the API server would default) and null lists, strict about types: a
//! wrong type is an error whose path the loader reports (`dom::typed`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A list that is `null` reads as empty, as Go's JSON decoding reads it: the API server writes
/// `ports: null` and `endpoints: null` in EndpointSlices, and hand-written YAML `ports:` is null.
fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Option::<Vec<T>>::deserialize(d).map(Option::unwrap_or_default)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta<'a> {
    #[serde(borrow)]
    pub name: Option<&'a str>,
    #[serde(borrow)]
    pub namespace: Option<&'a str>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(borrow, deserialize_with = "null_as_empty")]
    pub owner_references: Vec<OwnerReference<'a>>,
    /// Set when deletion was requested: the pod is terminating.
    #[serde(borrow)]
    pub deletion_timestamp: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OwnerReference<'a> {
    #[serde(borrow)]
    pub kind: Option<&'a str>,
    #[serde(borrow)]
    pub name: Option<&'a str>,
    pub controller: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Namespace<'a> {
    #[serde(borrow)]
    pub metadata: ObjectMeta<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Pod<'a> {
    #[serde(borrow)]
    pub metadata: ObjectMeta<'a>,
    #[serde(borrow)]
    pub spec: PodSpec<'a>,
    #[serde(borrow)]
    pub status: PodStatus<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec<'a> {
    #[serde(borrow, deserialize_with = "null_as_empty")]
    pub containers: Vec<Container<'a>>,
    pub host_network: bool,
    pub node_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Container<'a> {
    #[serde(borrow, deserialize_with = "null_as_empty")]
    pub ports: Vec<ContainerPort<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerPort<'a> {
    #[serde(borrow)]
    pub name: Option<&'a str>,
    pub container_port: Option<i64>,
    #[serde(borrow)]
    pub protocol: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatus<'a> {
    #[serde(rename = "podIP", borrow)]
    pub pod_ip: Option<&'a str>,
    #[serde(rename = "podIPs", borrow, deserialize_with = "null_as_empty")]
    pub pod_ips: Vec<PodIp<'a>>,
    #[serde(borrow, deserialize_with = "null_as_empty")]
    pub conditions: Vec<Condition<'a>>,
    /// `Pending`, `Running`, ...: a pod the API server reports without a Ready condition is
    /// ready only when running.
    #[serde(borrow)]
    pub phase: Option<&'a str>,
}

/// A pod condition; only `Ready` is read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Condition<'a> {
    #[serde(rename = "type")]
    pub condition_type: &'a str,
    pub status: &'a str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Node<'a> {
    #[serde(borrow)]
    pub metadata: ObjectMeta<'a>,
    pub status: NodeStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeStatus {
    #[serde(deserialize_with = "null_as_empty")]
    pub addresses: Vec<NodeAddress>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeAddress {
    #[serde(rename = "type")]
    pub address_type: String,
    pub address: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodIp<'a> {
    pub ip: &'a str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodTemplate<'a> {
    #[serde(borrow)]
    pub metadata: ObjectMeta<'a>,
    #[serde(borrow)]
    pub spec: PodSpec<'a>,
}

/// Deployment, ReplicaSet, ReplicationController, StatefulSet, DaemonSet and Job.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Workload<'a> {
    #[serde(borrow)]
    pub metadata: ObjectMeta<'a>,
    #[serde(borrow)]
    pub spec: WorkloadSpec<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WorkloadSpec<'a> {
    #[serde(borrow)]
    pub template: PodTemplate<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CronJob<'a> {
    #[serde(borrow)]
    pub metadata: ObjectMeta<'a>,
    #[serde(borrow)]
    pub spec: CronJobSpec<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CronJobSpec<'a> {
    #[serde(borrow)]
    pub job_template: Workload<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Service<'a> {
    #[serde(borrow)]
    pub metadata: ObjectMeta<'a>,
    pub spec: ServiceSpec,
    pub status: ServiceStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(rename = "type")]
    pub service_type: Option<String>,
    pub selector: Option<BTreeMap<String, String>>,
    #[serde(deserialize_with = "null_as_empty")]
    pub ports: Vec<ServicePort>,
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs")]
    #[serde(deserialize_with = "null_as_empty")]
    pub cluster_ips: Vec<String>,
    #[serde(deserialize_with = "null_as_empty")]
    pub ip_families: Vec<String>,
    pub ip_family_policy: Option<String>,
    pub external_name: Option<String>,
    pub external_traffic_policy: Option<String>,
    pub internal_traffic_policy: Option<String>,
    pub session_affinity: Option<String>,
    pub session_affinity_config: SessionAffinityConfig,
    pub publish_not_ready_addresses: bool,
    pub traffic_distribution: Option<String>,
    #[serde(rename = "externalIPs")]
    #[serde(deserialize_with = "null_as_empty")]
    pub external_ips: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SessionAffinityConfig {
    #[serde(rename = "clientIP")]
    pub client_ip: ClientIpConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClientIpConfig {
    pub timeout_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceStatus {
    pub load_balancer: LoadBalancerStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoadBalancerStatus {
    #[serde(deserialize_with = "null_as_empty")]
    pub ingress: Vec<LoadBalancerIngress>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoadBalancerIngress {
    pub ip: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: i64,
    pub protocol: Option<String>,
    pub target_port: Option<IntOrString>,
    pub node_port: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkPolicy<'a> {
    #[serde(borrow)]
    pub metadata: ObjectMeta<'a>,
    #[serde(borrow)]
    pub spec: NetworkPolicySpec<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NetworkPolicySpec<'a> {
    pub pod_selector: Option<LabelSelector>,
    /// `None` (absent) and `Some([])` differ only in how `policyTypes` defaults.
    #[serde(borrow)]
    pub ingress: Option<Vec<IngressRule<'a>>>,
    #[serde(borrow)]
    pub egress: Option<Vec<EgressRule<'a>>>,
    #[serde(borrow)]
    pub policy_types: Option<Vec<&'a str>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IngressRule<'a> {
    #[serde(deserialize_with = "null_as_empty")]
    pub from: Vec<Peer>,
    #[serde(borrow, deserialize_with = "null_as_empty")]
    pub ports: Vec<PolicyPort<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EgressRule<'a> {
    #[serde(deserialize_with = "null_as_empty")]
    pub to: Vec<Peer>,
    #[serde(borrow, deserialize_with = "null_as_empty")]
    pub ports: Vec<PolicyPort<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Peer {
    pub pod_selector: Option<LabelSelector>,
    pub namespace_selector: Option<LabelSelector>,
    pub ip_block: Option<IpBlock>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IpBlock {
    pub cidr: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub except: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PolicyPort<'a> {
    #[serde(borrow)]
    pub protocol: Option<&'a str>,
    pub port: Option<IntOrString>,
    pub end_port: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LabelSelector {
    pub match_labels: Option<BTreeMap<String, String>>,
    #[serde(deserialize_with = "null_as_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: String,
    pub values: Option<Vec<String>>,
}

/// `intstr.IntOrString`: a port number or a port name.
#[derive(Debug, Clone, PartialEq)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = IntOrString;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a port number or a port name")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<IntOrString, E> {
                Ok(IntOrString::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i64::try_from(v).map(IntOrString::Int).map_err(|_| E::custom("port number out of range"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::String(v.to_owned()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// discovery.k8s.io/v1 EndpointSlice.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EndpointSlice<'a> {
    #[serde(borrow)]
    pub metadata: ObjectMeta<'a>,
    pub address_type: Option<String>,
    #[serde(deserialize_with = "null_as_empty")]
    pub ports: Vec<EndpointPort>,
    #[serde(deserialize_with = "null_as_empty")]
    pub endpoints: Vec<SliceEndpoint>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EndpointPort {
    pub name: Option<String>,
    pub port: Option<i64>,
    pub protocol: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SliceEndpoint {
    #[serde(deserialize_with = "null_as_empty")]
    pub addresses: Vec<String>,
    pub conditions: EndpointConditions,
    pub node_name: Option<String>,
    pub target_ref: Option<TargetRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EndpointConditions {
    pub ready: Option<bool>,
    pub serving: Option<bool>,
    pub terminating: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TargetRef {
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// AdminNetworkPolicy and BaselineAdminNetworkPolicy (v1alpha1), ClusterNetworkPolicy (v1alpha2):
/// one mirror for all three; which fields a kind may use is checked when converting.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AdminPolicy<'a> {
    #[serde(borrow)]
    pub metadata: ObjectMeta<'a>,
    pub spec: AdminPolicySpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AdminPolicySpec {
    pub tier: Option<String>,
    pub priority: Option<i64>,
    pub subject: Option<AdminPeer>,
    #[serde(deserialize_with = "null_as_empty")]
    pub ingress: Vec<AdminRule>,
    #[serde(deserialize_with = "null_as_empty")]
    pub egress: Vec<AdminRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AdminRule {
    pub name: Option<String>,
    pub action: Option<String>,
    pub from: Option<Vec<AdminPeer>>,
    pub to: Option<Vec<AdminPeer>>,
    /// v1alpha1.
    pub ports: Option<Vec<AdminPort>>,
    /// v1alpha2.
    pub protocols: Option<Vec<AdminProtocol>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AdminPeer {
    pub namespaces: Option<LabelSelector>,
    pub pods: Option<NamespacedPod>,
    pub nodes: Option<LabelSelector>,
    pub networks: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NamespacedPod {
    pub namespace_selector: Option<LabelSelector>,
    pub pod_selector: Option<LabelSelector>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AdminPort {
    pub port_number: Option<AdminPortNumber>,
    pub named_port: Option<String>,
    pub port_range: Option<AdminPortRange>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AdminPortNumber {
    pub protocol: Option<String>,
    pub port: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AdminPortRange {
    pub protocol: Option<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AdminProtocol {
    pub tcp: Option<ProtocolPorts>,
    pub udp: Option<ProtocolPorts>,
    pub sctp: Option<ProtocolPorts>,
    pub destination_named_port: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProtocolPorts {
    pub destination_port: Option<DestinationPort>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DestinationPort {
    pub number: Option<i64>,
    pub range: Option<AdminPortRange>,
}
