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
pub struct ObjectMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(deserialize_with = "null_as_empty")]
    pub owner_references: Vec<OwnerReference>,
    /// Set when deletion was requested: the pod is terminating.
    pub deletion_timestamp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OwnerReference {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub controller: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Namespace {
    pub metadata: ObjectMeta,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Pod {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
    pub status: PodStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(deserialize_with = "null_as_empty")]
    pub containers: Vec<Container>,
    pub host_network: bool,
    pub node_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Container {
    #[serde(deserialize_with = "null_as_empty")]
    pub ports: Vec<ContainerPort>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerPort {
    pub name: Option<String>,
    pub container_port: Option<i64>,
    pub protocol: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    #[serde(deserialize_with = "null_as_empty")]
    pub pod_ips: Vec<PodIp>,
    #[serde(deserialize_with = "null_as_empty")]
    pub conditions: Vec<Condition>,
    /// `Pending`, `Running`, ...: a pod the API server reports without a Ready condition is
    /// ready only when running.
    pub phase: Option<String>,
}

/// A pod condition; only `Ready` is read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Condition {
    #[serde(rename = "type")]
    pub condition_type: String,
    pub status: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Node {
    pub metadata: ObjectMeta,
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
pub struct PodIp {
    pub ip: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodTemplate {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
}

/// Deployment, ReplicaSet, ReplicationController, StatefulSet, DaemonSet and Job.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Workload {
    pub metadata: ObjectMeta,
    pub spec: WorkloadSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WorkloadSpec {
    pub template: PodTemplate,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CronJob {
    pub metadata: ObjectMeta,
    pub spec: CronJobSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CronJobSpec {
    pub job_template: Workload,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Service {
    pub metadata: ObjectMeta,
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
pub struct NetworkPolicy {
    pub metadata: ObjectMeta,
    pub spec: NetworkPolicySpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    pub pod_selector: Option<LabelSelector>,
    /// `None` (absent) and `Some([])` differ only in how `policyTypes` defaults.
    pub ingress: Option<Vec<IngressRule>>,
    pub egress: Option<Vec<EgressRule>>,
    pub policy_types: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IngressRule {
    #[serde(deserialize_with = "null_as_empty")]
    pub from: Vec<Peer>,
    #[serde(deserialize_with = "null_as_empty")]
    pub ports: Vec<PolicyPort>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EgressRule {
    #[serde(deserialize_with = "null_as_empty")]
    pub to: Vec<Peer>,
    #[serde(deserialize_with = "null_as_empty")]
    pub ports: Vec<PolicyPort>,
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
pub struct PolicyPort {
    pub protocol: Option<String>,
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
pub struct EndpointSlice {
    pub metadata: ObjectMeta,
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
pub struct AdminPolicy {
    pub metadata: ObjectMeta,
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
