//! Waiting with deadlines, on watches rather than sleeps: pods ready (or stuck, with their
//! events), objects gone, Services' endpoints ready; and removing a run.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use netmatrix_cluster::ObjectKind;
use netmatrix_model::IpFamily;

use crate::error::KubeError;
use crate::objects::{self, AdminPolicyApis};
use crate::pods::{self, Start};
use crate::{MANAGED_BY, RUN_LABEL};

/// Waits until every pod of `wanted` (namespace, name) is Ready; fails at once when one is
/// stuck (image pull, crash loop, unschedulable), with its events.
pub async fn pods_ready(client: &Client, run: &str, wanted: &[(String, String)], deadline: Duration) -> Result<(), KubeError> {
    let api: Api<Pod> = Api::all(client.clone());
    let mut waiting: BTreeSet<(String, String)> = wanted.iter().cloned().collect();
    let mut stream = watcher(api, watcher::Config::default().labels(&format!("{RUN_LABEL}={run}"))).applied_objects().boxed();
    let watched = async {
        while let Some(pod) =
            stream.try_next().await.map_err(|e| KubeError::Api { what: "watching the probe pods".into(), source: kube::Error::Service(Box::new(e)) })?
        {
            let key = (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default());
            if !waiting.contains(&key) {
                continue;
            }
            match pods::start(&pod) {
                Start::Ready => {
                    waiting.remove(&key);
                    if waiting.is_empty() {
                        return Ok(());
                    }
                }
                Start::Waiting => {}
                Start::Stuck(reason) => {
                    let events = events_of(client, &key.0, &key.1).await;
                    return Err(KubeError::PodsFailed(format!("{}/{}: {reason}{events}", key.0, key.1)));
                }
            }
        }
        Ok(())
    };
    match tokio::time::timeout(deadline, watched).await {
        Ok(result) => result,
        Err(_) => {
            let mut names: Vec<String> = Vec::new();
            for (namespace, name) in &waiting {
                names.push(format!("{namespace}/{name}{}", events_of(client, namespace, name).await));
            }
            Err(KubeError::Deadline { what: format!("probe pods becoming ready: {}", names.join("; ")), after: deadline })
        }
    }
}

/// The pod's events, oldest first, as `; events: reason: message, ...` (empty when none).
async fn events_of(client: &Client, namespace: &str, name: &str) -> String {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let Ok(list) = api.list(&ListParams::default().fields(&format!("involvedObject.name={name}"))).await else { return String::new() };
    let events: Vec<String> =
        list.items.iter().map(|e| format!("{}: {}", e.reason.clone().unwrap_or_default(), e.message.clone().unwrap_or_default())).collect();
    if events.is_empty() { String::new() } else { format!("; events: {}", events.join(", ")) }
}

/// Waits until the object `name` is gone.
pub async fn gone<K>(api: &Api<K>, name: &str, deadline: Duration) -> Result<(), KubeError>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    // Absent, not `is_deleted(uid)`: that takes any object of another uid for gone.
    let condition = kube::runtime::wait::await_condition(api.clone(), name, |object: Option<&K>| object.is_none());
    match tokio::time::timeout(deadline, condition).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(KubeError::Deadline { what: format!("{name} going away ({e})"), after: deadline }),
        Err(_) => Err(KubeError::Deadline { what: format!("{name} going away"), after: deadline }),
    }
}

/// Waits until the namespace's `default` ServiceAccount exists: until then the API server
/// refuses pods ("error looking up service account"), a race every fresh namespace has.
pub async fn service_account(client: &Client, namespace: &str, deadline: Duration) -> Result<(), KubeError> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let condition = kube::runtime::wait::await_condition(api, "default", |account: Option<&ServiceAccount>| account.is_some());
    match tokio::time::timeout(deadline, condition).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(KubeError::Deadline { what: format!("the default ServiceAccount of {namespace} ({e})"), after: deadline }),
        Err(_) => Err(KubeError::Deadline {
            what: format!("the default ServiceAccount of {namespace} (is the service account controller running?)"),
            after: deadline,
        }),
    }
}

/// Waits until each Service (real namespace, name) with a selector has, in its EndpointSlices,
/// exactly the ready pods it selects, so probes do not race the endpoints controller.
pub async fn endpoints_ready(client: &Client, services: &[(String, String)], deadline: Duration) -> Result<(), KubeError> {
    let check = async {
        for (namespace, name) in services {
            let service: Service =
                Api::namespaced(client.clone(), namespace).get(name).await.map_err(KubeError::api(format!("reading Service {namespace}/{name}")))?;
            let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.clone()).filter(|s| !s.is_empty()) else { continue };
            let selector: String = selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
            let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
            let mut stream = watcher(slices, watcher::Config::default().labels(&format!("kubernetes.io/service-name={name}"))).default_backoff().boxed();
            let mut current: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            loop {
                let expected: BTreeSet<String> = pods
                    .list(&ListParams::default().labels(&selector))
                    .await
                    .map_err(KubeError::api(format!("listing the pods of Service {namespace}/{name}")))?
                    .items
                    .iter()
                    .filter(|p| pods::start(p) == Start::Ready)
                    .flat_map(|p| service_addresses(&service, p))
                    .collect();
                if current.values().flatten().cloned().collect::<BTreeSet<_>>() == expected && !current.is_empty() || expected.is_empty() {
                    break;
                }
                match stream.try_next().await {
                    Ok(Some(watcher::Event::Apply(slice) | watcher::Event::InitApply(slice))) => {
                        current.insert(slice.metadata.name.clone().unwrap_or_default(), ready_addresses(&slice));
                    }
                    Ok(Some(watcher::Event::Delete(slice))) => {
                        current.remove(&slice.metadata.name.clone().unwrap_or_default());
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        return Err(KubeError::Api {
                            what: format!("watching the EndpointSlices of {namespace}/{name}"),
                            source: kube::Error::Service(Box::new(e)),
                        });
                    }
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout(deadline, check).await.unwrap_or_else(|_| {
        let names: Vec<String> = services.iter().map(|(n, s)| format!("{n}/{s}")).collect();
        Err(KubeError::Deadline { what: format!("the EndpointSlices of {} listing their ready pods", names.join(", ")), after: deadline })
    })
}

/// The addresses of `pod` the EndpointSlices of `service` list: one slice per family the
/// Service has (`spec.ipFamilies`, set by the API server), each of the pods' addresses of it.
fn service_addresses(service: &Service, pod: &Pod) -> Vec<String> {
    let families: Vec<String> = service.spec.as_ref().and_then(|s| s.ip_families.clone()).unwrap_or_default();
    let status = pod.status.as_ref();
    let ips: Vec<String> = status.and_then(|s| s.pod_ips.as_ref()).map(|ips| ips.iter().map(|ip| ip.ip.clone()).collect()).unwrap_or_default();
    let ips = if ips.is_empty() { status.and_then(|s| s.pod_ip.clone()).into_iter().collect() } else { ips };
    let family = |ip: &String| ip.parse::<IpAddr>().map(|ip| IpFamily::of(&ip).as_str());
    // A Service read before the API server set its families: the primary address, as before.
    if families.is_empty() {
        return ips.into_iter().take(1).collect();
    }
    ips.into_iter().filter(|ip| families.iter().any(|f| Ok(f.as_str()) == family(ip))).collect()
}

fn ready_addresses(slice: &EndpointSlice) -> BTreeSet<String> {
    slice.endpoints.iter().flatten().filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)).flat_map(|e| e.addresses.iter().cloned()).collect()
}

/// Deletes a run's namespaces (and with them everything in them) and its cluster-scoped
/// objects, then waits (up to `deadline`; zero: does not wait) until the namespaces are gone.
/// Goes on after each failure; returns all of them.
pub async fn remove_run(client: &Client, run: &str, cluster_objects: &[(ObjectKind, String)], deadline: Duration) -> Vec<KubeError> {
    let mut errors = Vec::new();
    for (kind, name) in cluster_objects {
        if let Err(e) = objects::delete(client, *kind, "", name).await {
            errors.push(e);
        }
    }
    let selector = format!("{RUN_LABEL}={run}");
    errors.extend(remove_pods_now(client, &selector).await.err());
    errors.extend(remove_namespaces(client, &selector, deadline).await.err());
    errors
}

/// Deletes the probe pods without a grace period: they hold no state, and a namespace is only
/// gone once its pods are (a pod on a node that stopped answering would hold it for good).
async fn remove_pods_now(client: &Client, selector: &str) -> Result<(), KubeError> {
    let api: Api<Pod> = Api::all(client.clone());
    let pods = api.list(&ListParams::default().labels(selector)).await.map_err(KubeError::api("listing the run's pods"))?.items;
    for pod in pods {
        let (Some(namespace), Some(name)) = (pod.metadata.namespace, pod.metadata.name) else { continue };
        let params = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
        match Api::<Pod>::namespaced(client.clone(), &namespace).delete(&name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(KubeError::Api { what: format!("deleting pod {namespace}/{name}"), source: e }),
        }
    }
    Ok(())
}

async fn remove_namespaces(client: &Client, selector: &str, deadline: Duration) -> Result<Vec<String>, KubeError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(KubeError::api("listing the run's namespaces"))?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for name in &names {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(KubeError::Api { what: format!("deleting namespace {name}"), source: e }),
        }
    }
    if !deadline.is_zero() {
        for name in &names {
            gone(&api, name, deadline).await?;
        }
    }
    Ok(names)
}

/// `netmatrix cleanup --kubeconfig`: every labelled namespace and admin policy (or one run's).
pub async fn remove_labelled(client: &Client, run: Option<&str>, admin: &AdminPolicyApis, deadline: Duration) -> Result<Vec<String>, KubeError> {
    let selector = match run {
        Some(run) => format!("{}={},{RUN_LABEL}={run}", MANAGED_BY.0, MANAGED_BY.1),
        None => format!("{}={}", MANAGED_BY.0, MANAGED_BY.1),
    };
    let mut removed = Vec::new();
    let kinds: Vec<ObjectKind> = [
        (admin.v1alpha1, ObjectKind::AdminNetworkPolicy),
        (admin.v1alpha1, ObjectKind::BaselineAdminNetworkPolicy),
        (admin.cluster_network_policy, ObjectKind::ClusterNetworkPolicy),
    ]
    .into_iter()
    .filter_map(|(served, kind)| served.then_some(kind))
    .collect();
    for kind in kinds {
        let api: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &objects::resource(kind));
        let list = api.list(&ListParams::default().labels(&selector)).await.map_err(KubeError::api(format!("listing {}", kind.as_str())))?;
        for name in list.items.into_iter().filter_map(|o| o.metadata.name) {
            objects::delete(client, kind, "", &name).await?;
            removed.push(format!("{} {name}", kind.as_str()));
        }
    }
    removed.extend(remove_namespaces(client, &selector, deadline).await?.into_iter().map(|n| format!("namespace {n}")));
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_services_slices_list_the_pods_addresses_of_its_families() {
        let pod: Pod =
            serde_json::from_value(serde_json::json!({"status": {"podIP": "10.244.0.10", "podIPs": [{"ip": "10.244.0.10"}, {"ip": "fd00:10:244::10"}]}}))
                .unwrap();
        let service = |families: serde_json::Value| -> Service { serde_json::from_value(serde_json::json!({"spec": {"ipFamilies": families}})).unwrap() };
        assert_eq!(service_addresses(&service(serde_json::json!(["IPv6"])), &pod), ["fd00:10:244::10"]);
        assert_eq!(service_addresses(&service(serde_json::json!(["IPv4", "IPv6"])), &pod), ["10.244.0.10", "fd00:10:244::10"]);
        assert_eq!(service_addresses(&service(serde_json::Value::Null), &pod), ["10.244.0.10"], "families not set yet: the primary address");
    }
}
