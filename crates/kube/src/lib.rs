//! The Kubernetes backend: the engine's probe pods, objects and batched agent execs on a real
//! cluster, through its API server. The backend owns its tokio runtime; the engine drives it
//! through `netmatrix_cluster::Backend` and never knows it is Kubernetes.
//!
//! Each run's namespaces have names of their own (`nm-<run>-x`); cases, tables and the model
//! keep the short ones (`x`), and the backend translates at the edge.

mod config;
mod error;
mod exec;
mod model;
mod objects;
mod placement;
mod pods;
mod rbac;
mod stream;
mod wait;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use netmatrix_cluster::{
    Backend, BackendError, BackendKind, Capabilities, Capability, Node, ObjectKind, PodKey, PodSpec, Row, RowResult, batch_to_json, parse_results,
};
use netmatrix_model::{IpFamily, Labels};
use serde_json::{Value, json};

pub use config::CaseTag;
pub use error::KubeError;
pub use objects::AdminPolicyApis;
pub use placement::{NodeFilter, parse_selector};
pub use pods::PodOptions;

/// Label on everything a run creates (DESIGN.md), and the run's own label.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "netmatrix");
pub const RUN_LABEL: &str = "netmatrix.io/run";

/// Everything `netmatrix run --kubeconfig` decides about the cluster side.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// This run's id: its label value and namespace prefix.
    pub run: String,
    pub pods: PodOptions,
    pub nodes: NodeFilter,
    /// How long probe pods may take to become ready.
    pub ready_timeout: Duration,
}

pub struct KubeBackend {
    runtime: tokio::runtime::Runtime,
    client: Client,
    tag: CaseTag,
    server: String,
    server_version: String,
    run: String,
    nodes: Vec<Node>,
    /// The chosen nodes as the API server describes them, for the model.
    node_objects: Vec<Value>,
    capabilities: Capabilities,
    admin: AdminPolicyApis,
    pod_options: PodOptions,
    ready_timeout: Duration,
    /// Short namespace names, as cases write them, to the run's real ones.
    namespaces: BTreeMap<String, String>,
    /// Cluster-scoped objects the run applied (admin policies).
    cluster_objects: BTreeSet<(ObjectKind, String)>,
    /// The API server's time of the last change made, where its answer carried one.
    last_change: Option<String>,
    /// Agents kept running for `probe_rows_again`.
    sessions: stream::Sessions,
}

impl KubeBackend {
    /// Connects (within seconds, or names the server and the reason), checks every permission
    /// the run needs and chooses the nodes; creates nothing.
    pub fn connect(options: KubeOptions) -> Result<KubeBackend, KubeError> {
        let runtime = runtime()?;
        let tag = CaseTag::default();
        let (client, server) = runtime.block_on(async {
            let config = config::resolve(options.kubeconfig.as_deref(), options.context.as_deref()).await?;
            let server = config.cluster_url.to_string();
            Ok::<_, KubeError>((config::client(config, tag.clone())?, server))
        })?;
        Self::start(runtime, client, server, tag, options)
    }

    /// The backend over any HTTP service that speaks the Kubernetes API (tests script one).
    pub fn with_service<S, B>(service: S, options: KubeOptions) -> Result<KubeBackend, KubeError>
    where
        S: tower::Service<http::Request<kube::client::Body>, Response = http::Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let runtime = runtime()?;
        // The client's request buffer is a task of the runtime it is made in.
        let client = {
            let _entered = runtime.enter();
            Client::new(service, "default")
        };
        Self::start(runtime, client, "the scripted API server".into(), CaseTag::default(), options)
    }

    fn start(runtime: tokio::runtime::Runtime, client: Client, server: String, tag: CaseTag, options: KubeOptions) -> Result<KubeBackend, KubeError> {
        let (server_version, admin, nodes, node_objects) = runtime.block_on(async {
            let version = config::check_reachable(&client, &server).await?;
            let admin = objects::discover_admin_policies(&client).await?;
            let mut needed = rbac::NEEDED.to_vec();
            if admin.v1alpha1 {
                needed.extend(rbac::admin_policy_permissions("adminnetworkpolicies"));
                needed.extend(rbac::admin_policy_permissions("baselineadminnetworkpolicies"));
            }
            if admin.cluster_network_policy {
                needed.extend(rbac::admin_policy_permissions("clusternetworkpolicies"));
            }
            rbac::check(&client, &needed).await?;
            let all: Vec<k8s_openapi::api::core::v1::Node> =
                Api::all(client.clone()).list(&ListParams::default()).await.map_err(KubeError::api("listing nodes"))?.items;
            let nodes = placement::choose(&all, &options.nodes).map_err(KubeError::NoNodes)?;
            let node_objects = all
                .iter()
                .filter(|n| nodes.iter().any(|c| Some(&c.name) == n.metadata.name.as_ref()))
                .map(|n| serde_json::to_value(n).expect("a Node serialises"))
                .map(|mut n| {
                    n["apiVersion"] = json!("v1");
                    n["kind"] = json!("Node");
                    n
                })
                .collect();
            Ok::<_, KubeError>((version, admin, nodes, node_objects))
        })?;
        let capabilities = Capabilities {
            hairpin: Capability::yes("Kubernetes documents that a pod reaches itself through its own Service (Debug Services)"),
            sctp: Capability::unknown("SCTP support of the nodes is not probed yet"),
            dns: Capability::unknown("cluster DNS is not probed yet"),
            admin_policies: if admin.v1alpha1 {
                Capability::yes("the API server serves policy.networking.k8s.io/v1alpha1 (its enforcement is assumed)")
            } else {
                Capability::no("the API server does not serve AdminNetworkPolicy (no policy.networking.k8s.io CRDs)")
            },
            answer_identity: if options.pods.agnhost {
                Capability::no("--agnhost: agnhost connect says neither who answered nor can fix its source port")
            } else {
                Capability::yes("the probe pods run the netmatrix agent")
            },
            dual_stack: dual_stack(&nodes),
        };
        Ok(KubeBackend {
            runtime,
            client,
            tag,
            server,
            server_version,
            run: options.run,
            nodes,
            node_objects,
            capabilities,
            admin,
            pod_options: options.pods,
            ready_timeout: options.ready_timeout,
            namespaces: BTreeMap::new(),
            cluster_objects: BTreeSet::new(),
            last_change: None,
            sessions: stream::Sessions::default(),
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The API server's OpenAPI v2 document (`/openapi/v2`), for `netmatrix coverage`.
    pub fn openapi_v2(&self) -> Result<String, KubeError> {
        let what = "fetching /openapi/v2";
        let after = Duration::from_secs(60);
        let request = http::Request::get("/openapi/v2").header("Accept", "application/json").body(Vec::new()).expect("a valid request");
        self.runtime.block_on(async {
            match tokio::time::timeout(after, self.client.request_text(request)).await {
                Ok(text) => text.map_err(KubeError::api(what)),
                Err(_) => Err(KubeError::Deadline { what: what.into(), after }),
            }
        })
    }

    /// The labels every object of this run carries.
    fn run_labels(&self) -> Value {
        json!({MANAGED_BY.0: MANAGED_BY.1, RUN_LABEL: self.run})
    }

    /// Runs `probe` on each row (with the Api of its source's namespace), `parallel` at a time,
    /// on the backend's runtime; results in row order.
    fn rows_concurrently<'a, F, Fut>(&'a self, rows: &'a [Row], parallel: usize, on_row: &(dyn Fn(usize) + Sync), probe: F) -> Vec<RowResult>
    where
        F: Fn(Api<Pod>, &'a Row) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<netmatrix_cluster::ProbeResult>, String>>,
    {
        let mut results: Vec<(usize, RowResult)> = self.runtime.block_on(
            futures::stream::iter(rows.iter().enumerate())
                .map(|(index, row)| {
                    let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.real_namespace(&row.source.namespace));
                    let probed = probe(api, row);
                    async move {
                        let result = probed.await.map_err(|reason| BackendError::Exec { pod: row.source.to_string(), reason });
                        on_row(index);
                        (index, result)
                    }
                })
                .buffer_unordered(parallel.max(1))
                .collect(),
        );
        results.sort_by_key(|(index, _)| *index);
        results.into_iter().map(|(_, r)| r).collect()
    }

    fn real_namespace(&self, short: &str) -> String {
        self.namespaces.get(short).cloned().unwrap_or_else(|| format!("nm-{}-{short}", self.run))
    }

    fn ensure_namespace(&mut self, short: &str, labels: Option<Labels>) -> Result<(), KubeError> {
        let real = self.real_namespace(short);
        let mut all = self.run_labels();
        // The hostNetwork probe pods need a privileged namespace; every other one is restricted.
        let level = if short == "host" { "privileged" } else { "restricted" };
        all["pod-security.kubernetes.io/enforce"] = json!(level);
        for (k, v) in labels.iter().flatten() {
            all[k] = json!(v);
        }
        let manifest = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": real, "labels": all}});
        let api: Api<Namespace> = Api::all(self.client.clone());
        let params = PatchParams::apply(objects::FIELD_MANAGER).force();
        let deadline = self.ready_timeout;
        let changed = self.runtime.block_on(async {
            let applied = api.patch(&real, &params, &Patch::Apply(&manifest)).await.map_err(KubeError::api(format!("applying namespace {real}")))?;
            wait::service_account(&self.client, &real, deadline).await?;
            Ok::<_, KubeError>(objects::change_time(&applied.metadata))
        })?;
        self.last_change = changed;
        self.namespaces.insert(short.to_owned(), real);
        Ok(())
    }

    /// A case's manifest as the cluster takes it: the run's namespace and labels.
    fn translate(&self, kind: ObjectKind, mut manifest: Value) -> Value {
        if kind.namespaced() {
            let short = manifest["metadata"]["namespace"].as_str().unwrap_or("default").to_owned();
            manifest["metadata"]["namespace"] = json!(self.real_namespace(&short));
        }
        let labels = &mut manifest["metadata"]["labels"];
        if !labels.is_object() {
            *labels = json!({});
        }
        for (k, v) in self.run_labels().as_object().into_iter().flatten() {
            labels[k] = v.clone();
        }
        // An ExternalName written against a short namespace (`web.x.svc.cluster.local`).
        if let Some(name) = manifest["spec"]["externalName"].as_str().map(str::to_owned) {
            let rewritten = self.namespaces.iter().fold(name, |n, (short, real)| n.replace(&format!(".{short}.svc"), &format!(".{real}.svc")));
            manifest["spec"]["externalName"] = json!(rewritten);
        }
        manifest
    }
}

impl Backend for KubeBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Kube
    }

    fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn set_namespace(&mut self, name: &str, labels: Labels) -> Result<(), BackendError> {
        Ok(self.ensure_namespace(name, Some(labels))?)
    }

    fn create_pods(&mut self, pods: Vec<PodSpec>) -> Result<(), BackendError> {
        for short in pods.iter().map(|p| p.namespace.clone()).collect::<BTreeSet<_>>() {
            if !self.namespaces.contains_key(&short) {
                self.ensure_namespace(&short, None)?;
            }
        }
        let labels = self.run_labels();
        let manifests: Vec<(PodKey, String, Value)> = pods
            .iter()
            .map(|p| (p.key(), self.real_namespace(&p.namespace), pods::manifest(p, &self.real_namespace(&p.namespace), &labels, &self.pod_options)))
            .collect();
        let client = self.client.clone();
        self.last_change = None;
        self.runtime.block_on(async {
            for (key, namespace, manifest) in &manifests {
                let pod: Pod = serde_json::from_value(manifest.clone()).expect("a probe pod manifest is a Pod");
                let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
                let created = api
                    .create(&PostParams { field_manager: Some(objects::FIELD_MANAGER.into()), ..PostParams::default() }, &pod)
                    .await
                    .map_err(KubeError::api(format!("creating pod {key}")))?;
                self.last_change = objects::change_time(&created.metadata);
            }
            let wanted: Vec<(String, String)> = manifests.iter().map(|(k, namespace, _)| (namespace.clone(), k.name.clone())).collect();
            wait::pods_ready(&client, &self.run, &wanted, self.ready_timeout).await
        })?;
        Ok(())
    }

    fn delete_pod(&mut self, pod: &PodKey) -> Result<(), BackendError> {
        let namespace = self.real_namespace(&pod.namespace);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let deadline = self.ready_timeout;
        self.last_change = None;
        self.sessions.end(Some(pod));
        self.runtime.block_on(async {
            api.delete(&pod.name, &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() })
                .await
                .map_err(KubeError::api(format!("deleting pod {pod}")))?;
            wait::gone(&api, &pod.name, deadline).await
        })?;
        Ok(())
    }

    fn set_pod_labels(&mut self, pod: &PodKey, labels: Labels) -> Result<(), BackendError> {
        let namespace = self.real_namespace(&pod.namespace);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let mut wanted = self.run_labels();
        for (k, v) in &labels {
            wanted[k] = json!(v);
        }
        let labelled = self.runtime.block_on(async {
            let current = api.get(&pod.name).await.map_err(KubeError::api(format!("reading pod {pod}")))?;
            // A merge patch replaces values; keys that go are set to null.
            let mut patch = wanted.clone();
            for key in current.metadata.labels.iter().flatten().map(|(k, _)| k).filter(|k| wanted.get(k.as_str()).is_none()) {
                patch[key] = Value::Null;
            }
            api.patch(&pod.name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": patch}})))
                .await
                .map_err(KubeError::api(format!("labelling pod {pod}")))
        })?;
        self.last_change = objects::change_time(&labelled.metadata);
        Ok(())
    }

    fn apply(&mut self, manifests: Vec<Value>) -> Result<(), BackendError> {
        let mut services = Vec::new();
        for manifest in manifests {
            let kind = ObjectKind::of(&manifest).ok_or_else(|| BackendError::BadInput(format!("cannot apply a {}", manifest["kind"])))?;
            if !kind.namespaced() && !self.admin.v1alpha1 && kind != ObjectKind::ClusterNetworkPolicy {
                return Err(BackendError::BadInput(format!("the cluster does not serve {}", kind.as_str())));
            }
            let manifest = self.translate(kind, manifest);
            self.last_change = self.runtime.block_on(objects::apply(&self.client, kind, &manifest))?;
            let name = manifest["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            if kind.namespaced() {
                if kind == ObjectKind::Service {
                    services.push((manifest["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(), name));
                }
            } else {
                self.cluster_objects.insert((kind, name));
            }
        }
        if !services.is_empty() {
            let deadline = self.ready_timeout;
            self.runtime.block_on(wait::endpoints_ready(&self.client, &services, deadline))?;
        }
        Ok(())
    }

    fn delete(&mut self, kind: ObjectKind, namespace: &str, name: &str) -> Result<(), BackendError> {
        let namespace = if kind.namespaced() { self.real_namespace(namespace) } else { String::new() };
        self.runtime.block_on(objects::delete(&self.client, kind, &namespace, name))?;
        self.cluster_objects.remove(&(kind, name.to_owned()));
        self.last_change = None;
        Ok(())
    }

    fn last_change_time(&self) -> Option<String> {
        self.last_change.clone()
    }

    fn model(&self) -> Result<netmatrix_model::Cluster, BackendError> {
        let documents = self.runtime.block_on(model::documents(&self.client, &self.run, &self.namespaces, &self.admin))?;
        let mut text = String::new();
        for doc in documents.iter().chain(&self.node_objects) {
            text.push_str("---\n");
            text.push_str(&doc.to_string());
            text.push('\n');
        }
        netmatrix_model::parse_str(&format!("cluster {}", self.server), &text)
            .map_err(|e| BackendError::Infrastructure { what: "reading the cluster's objects into the model".into(), source: Box::new(e) })
    }

    fn probe_rows(&self, rows: &[Row], parallel: usize, on_row: &(dyn Fn(usize) + Sync)) -> Vec<RowResult> {
        let agnhost = self.pod_options.agnhost;
        self.rows_concurrently(rows, parallel, on_row, |api, row| async move {
            if agnhost {
                exec::run_agnhost(&api, &row.source.name, &row.probes, row.deadline).await
            } else {
                let out = exec::run_batch(&api, &row.source.name, batch_to_json(&row.probes), row.deadline).await;
                out.and_then(|out| parse_results(&out, row.probes.len()))
            }
        })
    }

    fn probe_rows_again(&self, rows: &[Row], parallel: usize, on_row: &(dyn Fn(usize) + Sync)) -> Vec<RowResult> {
        if self.pod_options.agnhost || self.sessions.refused() {
            return self.probe_rows(rows, parallel, on_row);
        }
        self.rows_concurrently(rows, parallel, on_row, |api, row| async move { self.sessions.probe(&api, row).await })
    }

    fn teardown(&mut self) -> Vec<BackendError> {
        self.sessions.end(None);
        let deadline = self.ready_timeout.max(Duration::from_secs(60));
        let objects: Vec<(ObjectKind, String)> = std::mem::take(&mut self.cluster_objects).into_iter().collect();
        self.runtime.block_on(wait::remove_run(&self.client, &self.run, &objects, deadline)).into_iter().map(BackendError::from).collect()
    }

    fn server_version(&self) -> Option<String> {
        Some(self.server_version.clone())
    }

    fn real_namespaces(&self) -> BTreeMap<String, String> {
        self.namespaces.clone()
    }

    fn begin_case(&mut self, case: Option<&str>) {
        self.tag.set(case);
    }

    fn abort_handle(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        let (client, run) = (self.client.clone(), self.run.clone());
        let objects: Vec<(ObjectKind, String)> = self.cluster_objects.iter().cloned().collect();
        Some(Box::new(move || {
            // Deletions asked for, not waited on: the process is about to quit.
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                let _ = runtime.block_on(tokio::time::timeout(Duration::from_secs(5), wait::remove_run(&client, &run, &objects, Duration::ZERO)));
            }
        }))
    }
}

/// Dual-stack where every chosen node has an address of each family (a dual-stack cluster's
/// nodes report an InternalIP per family).
fn dual_stack(nodes: &[Node]) -> Capability {
    let both = |n: &Node| IpFamily::BOTH.iter().all(|f| n.addresses.iter().any(|ip| IpFamily::of(ip) == *f));
    if !nodes.is_empty() && nodes.iter().all(both) {
        Capability::yes("every node has an IPv4 and an IPv6 address")
    } else {
        Capability::no("the nodes do not all have addresses of both families (IPv4 and IPv6)")
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, KubeError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| KubeError::Config(format!("starting the async runtime: {e}")))
}

/// Removes every object netmatrix labelled in the cluster (`netmatrix cleanup --kubeconfig`),
/// or only those of one run; never anything unlabelled. Returns what it removed.
pub fn cleanup(options: &KubeOptions, run: Option<&str>) -> Result<Vec<String>, KubeError> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| KubeError::Config(format!("starting the async runtime: {e}")))?;
    runtime.block_on(async {
        let config = config::resolve(options.kubeconfig.as_deref(), options.context.as_deref()).await?;
        let server = config.cluster_url.to_string();
        let client = config::client(config, CaseTag::default())?;
        config::check_reachable(&client, &server).await?;
        let admin = objects::discover_admin_policies(&client).await?;
        wait::remove_labelled(&client, run, &admin, Duration::from_secs(120)).await
    })
}
