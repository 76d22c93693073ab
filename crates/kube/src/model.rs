//! The run's objects as the oracle reads them: listed from the API server, with the run's
//! namespaces renamed back to their short names, as manifests for the model's loader.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use netmatrix_cluster::ObjectKind;
use serde::Serialize;
use serde_json::{Value, json};

use crate::RUN_LABEL;
use crate::error::KubeError;
use crate::objects::{self, AdminPolicyApis};

/// Every object of the run (namespaces, pods, Services, EndpointSlices, NetworkPolicies) and
/// every admin policy of the cluster (they select pods across namespaces), as JSON manifests.
pub async fn documents(client: &Client, run: &str, namespaces: &BTreeMap<String, String>, admin: &AdminPolicyApis) -> Result<Vec<Value>, KubeError> {
    let short: BTreeMap<&str, &str> = namespaces.iter().map(|(s, r)| (r.as_str(), s.as_str())).collect();
    let mut docs = Vec::new();
    let selector = ListParams::default().labels(&format!("{RUN_LABEL}={run}"));
    let listed: Vec<Namespace> = Api::all(client.clone()).list(&selector).await.map_err(KubeError::api("listing the run's namespaces"))?.items;
    docs.extend(listed.iter().map(|n| manifest(n, "v1", "Namespace")));
    for real in namespaces.values() {
        let params = ListParams::default();
        let pods: Vec<Pod> = Api::namespaced(client.clone(), real).list(&params).await.map_err(KubeError::api(format!("listing pods in {real}")))?.items;
        docs.extend(pods.iter().map(|p| manifest(p, "v1", "Pod")));
        let services: Vec<Service> =
            Api::namespaced(client.clone(), real).list(&params).await.map_err(KubeError::api(format!("listing Services in {real}")))?.items;
        docs.extend(services.iter().map(|s| manifest(s, "v1", "Service")));
        let slices: Vec<EndpointSlice> =
            Api::namespaced(client.clone(), real).list(&params).await.map_err(KubeError::api(format!("listing EndpointSlices in {real}")))?.items;
        docs.extend(slices.iter().map(|s| manifest(s, "discovery.k8s.io/v1", "EndpointSlice")));
        let policies: Vec<NetworkPolicy> =
            Api::namespaced(client.clone(), real).list(&params).await.map_err(KubeError::api(format!("listing NetworkPolicies in {real}")))?.items;
        docs.extend(policies.iter().map(|p| manifest(p, "networking.k8s.io/v1", "NetworkPolicy")));
    }
    let kinds = [
        (admin.v1alpha1, ObjectKind::AdminNetworkPolicy),
        (admin.v1alpha1, ObjectKind::BaselineAdminNetworkPolicy),
        (admin.cluster_network_policy, ObjectKind::ClusterNetworkPolicy),
    ];
    for (_, kind) in kinds.into_iter().filter(|(served, _)| *served) {
        let resource = objects::resource(kind);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let list = api.list(&ListParams::default()).await.map_err(KubeError::api(format!("listing {}", kind.as_str())))?;
        docs.extend(list.items.iter().map(|o| manifest(o, &resource.api_version, kind.as_str())));
    }
    Ok(docs.into_iter().map(|d| shorten(d, &short)).collect())
}

fn manifest(object: &impl Serialize, api_version: &str, kind: &str) -> Value {
    let mut value = serde_json::to_value(object).expect("API objects serialise");
    value["apiVersion"] = json!(api_version);
    value["kind"] = json!(kind);
    // Server-side bookkeeping the model does not read.
    if let Some(meta) = value["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    value
}

/// Renames the run's namespaces (an object's own, a Namespace's name, an endpoint's
/// targetRef) to their short names.
fn shorten(mut doc: Value, short: &BTreeMap<&str, &str>) -> Value {
    // `get_mut`, not indexing: indexing a missing key would add it as null, a field the object
    // does not have.
    let rename = |v: Option<&mut Value>| {
        if let Some(v) = v
            && let Some(s) = v.as_str().and_then(|real| short.get(real))
        {
            *v = json!(s);
        }
    };
    let namespace_object = doc.get("kind").and_then(Value::as_str) == Some("Namespace");
    if let Some(meta) = doc.get_mut("metadata") {
        rename(meta.get_mut("namespace"));
        if namespace_object {
            rename(meta.get_mut("name"));
        }
    }
    if let Some(endpoints) = doc.get_mut("endpoints").and_then(Value::as_array_mut) {
        for e in endpoints {
            rename(e.get_mut("targetRef").and_then(|t| t.get_mut("namespace")));
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_namespaces_read_as_their_short_names() {
        let short = BTreeMap::from([("nm-r1-x", "x")]);
        let pod = shorten(json!({"kind": "Pod", "metadata": {"name": "a", "namespace": "nm-r1-x"}}), &short);
        assert_eq!(pod["metadata"]["namespace"], "x");
        let ns = shorten(json!({"kind": "Namespace", "metadata": {"name": "nm-r1-x", "labels": {"kubernetes.io/metadata.name": "nm-r1-x"}}}), &short);
        assert_eq!(ns["metadata"]["name"], "x");
        assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "nm-r1-x", "labels stay what the cluster says");
        let slice = shorten(
            json!({"kind": "EndpointSlice", "metadata": {"namespace": "nm-r1-x"}, "endpoints": [{"targetRef": {"kind": "Pod", "namespace": "nm-r1-x", "name": "a"}}]}),
            &short,
        );
        assert_eq!(slice["endpoints"][0]["targetRef"]["namespace"], "x");
        let other = shorten(json!({"kind": "Pod", "metadata": {"namespace": "kube-system"}}), &short);
        assert_eq!(other["metadata"]["namespace"], "kube-system");
        let policy = shorten(json!({"kind": "AdminNetworkPolicy", "metadata": {"name": "p"}}), &short);
        assert_eq!(policy, json!({"kind": "AdminNetworkPolicy", "metadata": {"name": "p"}}), "nothing added to what has no namespace or endpoints");
    }

    #[test]
    fn a_dual_stack_service_as_the_api_server_returns_it_reads_with_both_families() {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "nm-r1-x"},
            "spec": {"clusterIP": "fd00:10:96::a", "clusterIPs": ["fd00:10:96::a", "10.96.0.10"], "ipFamilies": ["IPv6", "IPv4"],
                     "ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "type": "ClusterIP"}
        }))
        .unwrap();
        let doc = shorten(manifest(&service, "v1", "Service"), &BTreeMap::from([("nm-r1-x", "x")]));
        let cluster = netmatrix_model::parse_str("api", &doc.to_string()).unwrap_or_else(|e| panic!("{e}"));
        let s = &cluster.services[0];
        assert_eq!(s.cluster_ips, ["fd00:10:96::a".parse::<std::net::IpAddr>().unwrap(), "10.96.0.10".parse().unwrap()]);
        assert_eq!(
            (s.ip_families.as_slice(), s.ip_family_policy),
            (netmatrix_model::IpFamily::BOTH.iter().rev().copied().collect::<Vec<_>>().as_slice(), netmatrix_model::IpFamilyPolicy::RequireDualStack)
        );
    }
}
