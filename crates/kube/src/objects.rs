//! NetworkPolicies, Services and admin policies: applied server-side with field manager
//! `netmatrix`, deleted, and found by discovery.

use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use netmatrix_cluster::ObjectKind;

use crate::error::KubeError;

pub const FIELD_MANAGER: &str = "netmatrix";

/// The API resource of a kind (AdminNetworkPolicy and BaselineAdminNetworkPolicy at v1alpha1,
/// ClusterNetworkPolicy at v1alpha2: the versions the model reads).
pub fn resource(kind: ObjectKind) -> ApiResource {
    let (group, version, plural) = match kind {
        ObjectKind::NetworkPolicy => ("networking.k8s.io", "v1", "networkpolicies"),
        ObjectKind::Service => ("", "v1", "services"),
        ObjectKind::AdminNetworkPolicy => ("policy.networking.k8s.io", "v1alpha1", "adminnetworkpolicies"),
        ObjectKind::BaselineAdminNetworkPolicy => ("policy.networking.k8s.io", "v1alpha1", "baselineadminnetworkpolicies"),
        ObjectKind::ClusterNetworkPolicy => ("policy.networking.k8s.io", "v1alpha2", "clusternetworkpolicies"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind.as_str()), plural)
}

fn api(client: &Client, kind: ObjectKind, namespace: &str) -> Api<DynamicObject> {
    let resource = resource(kind);
    if kind.namespaced() { Api::namespaced_with(client.clone(), namespace, &resource) } else { Api::all_with(client.clone(), &resource) }
}

/// Server-side apply of one manifest (its namespace already the real one); returns the API
/// server's time of the change ([`change_time`]).
pub async fn apply(client: &Client, kind: ObjectKind, manifest: &serde_json::Value) -> Result<Option<String>, KubeError> {
    let namespace = manifest["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api(client, kind, namespace)
        .patch(name, &params, &Patch::Apply(manifest))
        .await
        .map_err(KubeError::api(format!("applying {} {namespace}/{name}", kind.as_str())))?;
    Ok(change_time(&applied.metadata))
}

/// When the API server last changed an object, as it stamps it: the newest `managedFields`
/// time, else `creationTimestamp` (RFC 3339, whole seconds: all the API keeps).
pub fn change_time(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<String> {
    let stamps = serde_json::to_value(meta).ok()?;
    let managed = stamps["managedFields"].as_array().into_iter().flatten().filter_map(|f| f["time"].as_str());
    // RFC 3339 in UTC with whole seconds, as the API writes it, orders as text.
    managed.max().or(stamps["creationTimestamp"].as_str()).map(str::to_owned)
}

/// Deletes an object; one already gone is fine.
pub async fn delete(client: &Client, kind: ObjectKind, namespace: &str, name: &str) -> Result<(), KubeError> {
    match api(client, kind, namespace).delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(KubeError::Api { what: format!("deleting {} {namespace}/{name}", kind.as_str()), source: e }),
    }
}

/// Which admin policy kinds the API server serves, and at which version of their group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminPolicyApis {
    /// `v1alpha1` when AdminNetworkPolicy and BaselineAdminNetworkPolicy are served.
    pub v1alpha1: bool,
    /// ClusterNetworkPolicy (`v1alpha2`).
    pub cluster_network_policy: bool,
}

pub async fn discover_admin_policies(client: &Client) -> Result<AdminPolicyApis, KubeError> {
    let groups = client.list_api_groups().await.map_err(KubeError::api("listing the API groups"))?;
    let Some(group) = groups.groups.iter().find(|g| g.name == "policy.networking.k8s.io") else { return Ok(AdminPolicyApis::default()) };
    let mut found = AdminPolicyApis::default();
    for version in &group.versions {
        let resources = client.list_api_group_resources(&version.group_version).await.map_err(KubeError::api(format!("listing {}", version.group_version)))?;
        let served = |plural: &str| resources.resources.iter().any(|r| r.name == plural);
        found.v1alpha1 |= version.version == "v1alpha1" && served("adminnetworkpolicies") && served("baselineadminnetworkpolicies");
        found.cluster_network_policy |= version.version == "v1alpha2" && served("clusternetworkpolicies");
    }
    Ok(found)
}
