//! The Kubernetes backend against a scripted API server (tower-test): no cluster, every request
//! the backend makes is answered by a test's rules and recorded, so a test can say what was
//! (and was not) asked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use netmatrix_cluster::{Backend, ContainerPort, PodSpec, Support};
use netmatrix_kube::{KubeBackend, KubeError, KubeOptions, NodeFilter, PodOptions};
use netmatrix_model::{Labels, Protocol};
use serde_json::{Value, json};

/// A request as the server saw it: method, path with query, body.
type Seen = (Method, String, Value);
/// A test's rule: the answer (status, body) to a request, or `None` for the defaults.
type Rule = Box<dyn Fn(&Method, &str, &Value) -> Option<(u16, Value)> + Send + Sync>;

/// The scripted API server: answers on its own thread until the backend's client goes away.
struct Server {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(rule: Rule) -> (Server, tower_test::mock::Mock<Request<Body>, Response<Body>>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                while let Some((request, send)) = handle.next_request().await {
                    let method = request.method().clone();
                    let path = request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
                    let bytes = request.into_body().collect_bytes().await.unwrap_or_default();
                    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    let (status, answer) = rule(&method, &path, &body).unwrap_or_else(|| defaults(&method, &path, &body));
                    log.lock().unwrap().push((method, path, body));
                    let response = Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Body::from(answer.to_string().into_bytes()))
                        .unwrap();
                    send.send_response(response);
                }
            });
        });
        (Server { seen }, service)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn node(name: &str, ip: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": {},
           "status": {"conditions": [{"type": "Ready", "status": "True"}], "addresses": [{"type": "InternalIP", "address": ip}]}})
}

/// A healthy cluster of two workers without the admin policy CRDs, where everything is allowed.
fn defaults(method: &Method, path: &str, body: &Value) -> (u16, Value) {
    match (method.as_str(), path.split('?').next().unwrap_or_default()) {
        ("GET", "/version") => (
            200,
            json!({"major": "1", "minor": "37", "gitVersion": "v1.37.2", "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "", "platform": ""}),
        ),
        ("GET", "/apis") => (200, json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") => {
            let mut review = body.clone();
            review["status"] = json!({"allowed": true});
            (201, review)
        }
        ("GET", "/api/v1/nodes") => {
            (200, json!({"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": [node("w1", "172.18.0.2"), node("w2", "172.18.0.3")]}))
        }
        (_, p) if p.starts_with("/api/v1/namespaces/") && method == Method::PATCH => (200, body.clone()),
        // Every namespace has its default ServiceAccount at once.
        ("GET", p) if p.ends_with("/serviceaccounts") => {
            (200, json!({"kind": "ServiceAccountList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": [{"metadata": {"name": "default"}}]}))
        }
        ("POST", p) if p.ends_with("/pods") => (201, body.clone()),
        _ => (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("{method} {path} is not scripted")}),
        ),
    }
}

fn options() -> KubeOptions {
    KubeOptions {
        kubeconfig: None,
        context: None,
        run: "r1".into(),
        pods: PodOptions { image: "netmatrix-agent:0.1.0".into(), image_pull_secret: None, tolerate_taints: false, agnhost: false },
        nodes: NodeFilter::default(),
        ready_timeout: Duration::from_secs(5),
    }
}

fn connect(rule: Rule) -> (Server, Result<KubeBackend, KubeError>) {
    let (server, service) = Server::start(rule);
    let backend = KubeBackend::with_service(service, options());
    (server, backend)
}

fn probe_pod(name: &str, node: &str) -> PodSpec {
    PodSpec {
        namespace: "x".into(),
        name: name.into(),
        labels: Labels::from([("pod".to_owned(), name.to_owned())]),
        node: node.into(),
        ports: vec![ContainerPort { name: Some("serve-80-tcp".into()), port: 80, protocol: Protocol::Tcp }],
        host_network: false,
    }
}

#[test]
fn a_missing_permission_stops_the_run_before_anything_is_created() {
    let (server, backend) = connect(Box::new(|method, path, body| {
        let attributes = &body["spec"]["resourceAttributes"];
        let delete_pods = attributes["verb"] == "delete" && attributes["resource"] == "pods";
        (method == Method::POST && path.starts_with("/apis/authorization.k8s.io/") && delete_pods).then(|| {
            let mut review = body.clone();
            review["status"] = json!({"allowed": false, "reason": "no RBAC rule"});
            (201, review)
        })
    }));
    let err = backend.err().expect("refused");
    let text = err.to_string();
    assert!(matches!(err, KubeError::Forbidden(ref missing) if missing == &["delete pods (core)".to_owned()]), "{text}");
    assert!(text.contains("nothing was created") && text.contains("deploy/rbac.yaml"), "{text}");
    let creates: Vec<_> = server.seen().into_iter().filter(|(m, p, _)| *m != Method::GET && !p.contains("selfsubjectaccessreviews")).collect();
    assert!(creates.is_empty(), "nothing but questions was sent: {creates:?}");
}

#[test]
fn nodes_are_chosen_and_admin_policies_are_skipped_without_their_crds() {
    let (_server, backend) = connect(Box::new(|_, _, _| None));
    let backend = backend.unwrap();
    let nodes: Vec<&str> = backend.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(nodes, ["w1", "w2"]);
    assert_eq!(backend.server_version(), "v1.37.2");
    let admin = &backend.capabilities().admin_policies;
    assert_eq!(admin.support, Support::No);
    assert!(admin.reason.contains("CRDs"), "{}", admin.reason);
    let anp = netmatrix_engine::Requirement::AdminPolicies.unmet(backend.capabilities()).expect("the anp suite is skipped");
    assert!(anp.contains("no policy.networking.k8s.io CRDs"), "{anp}");
}

#[test]
fn the_openapi_spec_is_fetched_as_served_for_coverage() {
    let spec = json!({"swagger": "2.0", "paths": {"/api/v1/pods": {"get": {"operationId": "listCoreV1PodForAllNamespaces"}}}});
    let served = spec.clone();
    let (server, backend) = connect(Box::new(move |method, path, _| (method == Method::GET && path == "/openapi/v2").then(|| (200, served.clone()))));
    let text = backend.unwrap().openapi_v2().unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), spec);
    assert!(server.seen().iter().any(|(m, p, _)| m == Method::GET && p == "/openapi/v2"));
}

#[test]
fn a_pod_stuck_pulling_its_image_fails_fast_with_its_events() {
    let stuck = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "nm-r1-x", "resourceVersion": "5", "labels": {"netmatrix.io/run": "r1"}},
        "spec": {"containers": [{"name": "agent"}]},
        "status": {"phase": "Pending", "containerStatuses": [{"name": "agent", "image": "netmatrix-agent:0.1.0", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"netmatrix-agent:0.1.0\""}}}]}});
    let (server, backend) = connect(Box::new(move |method, path, _| match (method.as_str(), path.split('?').next().unwrap_or_default()) {
        ("GET", "/api/v1/pods") if !path.contains("watch=true") => {
            Some((200, json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "5"}, "items": [stuck.clone()]})))
        }
        ("GET", "/api/v1/namespaces/nm-r1-x/events") => Some((
            200,
            json!({"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": [
            {"metadata": {"name": "a.1", "namespace": "nm-r1-x"}, "involvedObject": {"kind": "Pod", "name": "a"}, "reason": "Failed",
             "message": "Failed to pull image \"netmatrix-agent:0.1.0\": not found"}]}),
        )),
        _ => None,
    }));
    let mut backend = backend.unwrap();
    backend.set_namespace("x", Labels::from([("ns".to_owned(), "x".to_owned())])).unwrap();
    let started = std::time::Instant::now();
    let err = backend.create_pods(vec![probe_pod("a", "w1")]).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "fails before the ready deadline");
    let text = format!("{err} {}", std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default());
    assert!(text.contains("nm-r1-x/a: ImagePullBackOff") && text.contains("Failed to pull image"), "{text}");
    let created: Vec<Value> = server
        .seen()
        .into_iter()
        .filter(|(m, p, _)| *m == Method::POST && p.split('?').next().unwrap_or_default().ends_with("/pods"))
        .map(|(_, _, b)| b)
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!((created[0]["spec"]["nodeName"].clone(), created[0]["metadata"]["labels"]["netmatrix.io/run"].clone()), (json!("w1"), json!("r1")));
}

#[test]
fn teardown_removes_the_runs_namespaces_by_label_and_waits_for_them() {
    let deleted = Arc::new(Mutex::new(false));
    let gone = deleted.clone();
    let (server, backend) = connect(Box::new(move |method, path, _| match (method.as_str(), path.split('?').next().unwrap_or_default()) {
        ("GET", "/api/v1/namespaces") if path.contains("labelSelector=netmatrix.io%2Frun%3Dr1") => Some((
            200,
            json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"}, "items": [{"metadata": {"name": "nm-r1-x", "labels": {"netmatrix.io/run": "r1"}}}]}),
        )),
        ("GET", "/api/v1/pods") => {
            Some((200, json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [{"metadata": {"name": "a", "namespace": "nm-r1-x"}}]})))
        }
        ("DELETE", "/api/v1/namespaces/nm-r1-x/pods/a") => Some((200, json!({"metadata": {"name": "a", "namespace": "nm-r1-x"}}))),
        // Listed by name after the delete: gone.
        ("GET", "/api/v1/namespaces") if path.contains("fieldSelector=metadata.name%3Dnm-r1-x") => {
            Some((200, json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": "10"}, "items": []})))
        }
        ("DELETE", "/api/v1/namespaces/nm-r1-x") => {
            *gone.lock().unwrap() = true;
            Some((200, json!({"metadata": {"name": "nm-r1-x"}, "status": {"phase": "Terminating"}})))
        }
        _ => None,
    }));
    let mut backend = backend.unwrap();
    backend.set_namespace("x", Labels::new()).unwrap();
    let errors = backend.teardown();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(*deleted.lock().unwrap(), "the run's namespace was deleted");
    let deletes: Vec<(String, Value)> = server.seen().into_iter().filter(|(m, _, _)| *m == Method::DELETE).map(|(_, p, b)| (p, b)).collect();
    assert!(deletes.iter().all(|(p, _)| p.starts_with("/api/v1/namespaces/nm-r1-")), "only the run's objects: {deletes:?}");
    let pod = deletes.iter().find(|(p, _)| p.contains("/pods/a")).expect("probe pods go first");
    assert_eq!(pod.1["gracePeriodSeconds"], 0, "without a grace period: {deletes:?}");
}

#[test]
fn a_change_carries_the_api_servers_time_of_it() {
    let rule: Rule = Box::new(|method, path, body| {
        let stamped = |mut object: Value, time: &str| {
            object["metadata"]["creationTimestamp"] = json!("2026-12-07T10:00:00Z");
            object["metadata"]["managedFields"] = json!([{"manager": "other", "time": "2026-12-07T10:00:01Z"}, {"manager": "netmatrix", "time": time}]);
            object
        };
        match (method.as_str(), path.split('?').next().unwrap_or_default()) {
            ("PATCH", "/apis/networking.k8s.io/v1/namespaces/nm-r1-x/networkpolicies/deny") => Some((200, stamped(body.clone(), "2026-12-07T10:00:07Z"))),
            ("DELETE", "/apis/networking.k8s.io/v1/namespaces/nm-r1-x/networkpolicies/deny") => {
                Some((200, json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})))
            }
            _ => None,
        }
    });
    let (_server, backend) = connect(rule);
    let mut backend = backend.unwrap();
    assert_eq!(backend.last_change_time(), None);
    let policy =
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "x"}, "spec": {"podSelector": {}}});
    backend.apply(vec![policy]).unwrap();
    assert_eq!(backend.last_change_time().as_deref(), Some("2026-12-07T10:00:07Z"), "the newest managedFields time");
    backend.delete(netmatrix_cluster::ObjectKind::NetworkPolicy, "x", "deny").unwrap();
    assert_eq!(backend.last_change_time(), None, "a deletion is not stamped");
}
