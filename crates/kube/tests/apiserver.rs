//! The Kubernetes backend against a real kube-apiserver, etcd and kube-controller-manager
//! (v1.37.2, built from their Go modules by hack/kube/build), on loopback ports. No kubelet:
//! pods never start, which is what the readiness deadline is checked on; everything else
//! (permissions, placement, server-side apply, the model read back, teardown, cleanup) is the
//! real API server's answer. Needs `NETMATRIX_KUBE_BIN` (the bin directory hack/kube/build
//! prints; .ci/run sets it), openssl and curl; skips saying so otherwise, fails in CI.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, Patch, PatchParams, PostParams};
use netmatrix_cluster::{Backend, ContainerPort, PodKey, PodSpec};
use netmatrix_kube::{KubeBackend, KubeError, KubeOptions, NodeFilter, PodOptions};
use netmatrix_model::{Labels, Protocol};
use netmatrix_testcluster::{ADMIN_TOKEN, ControlPlane, bin_dir};
use serde_json::json;

/// The control plane, with a kubeconfig of an admin and a user without permissions, and
/// kube-controller-manager: its namespace controller finishes deletions, its service account
/// controller makes each namespace's `default` account (without which pods are refused).
fn start(bin: &Path) -> ControlPlane {
    let mut plane = ControlPlane::start(bin, &format!("{ADMIN_TOKEN},admin,1,system:masters\nweaktoken,weak,2,\n"), |_| Vec::new());
    std::fs::write(
        plane.path("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: admin\ncontexts: [{{name: admin, context: {{cluster: c, user: admin}}}}, {{name: weak, context: {{cluster: c, user: weak}}}}]\n\
             clusters: [{{name: c, cluster: {{server: \"https://127.0.0.1:{}\", insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: admin, user: {{token: {ADMIN_TOKEN}}}}}, {{name: weak, user: {{token: weaktoken}}}}]\n",
            plane.port
        ),
    )
    .unwrap();
    let args = [
        format!("--kubeconfig={}", plane.path("kubeconfig").display()),
        "--bind-address=127.0.0.1".into(),
        "--secure-port=0".into(),
        format!("--service-account-private-key-file={}", plane.path("sa.key").display()),
        "--use-service-account-credentials=false".into(),
        "--leader-elect=false".into(),
    ];
    plane.spawn("kube-controller-manager", &args);
    plane
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A client of the test's own, living on `rt` (its request buffer is a task there).
fn client(rt: &tokio::runtime::Runtime, plane: &ControlPlane, context: &str) -> kube::Client {
    rt.block_on(async {
        let file = kube::config::Kubeconfig::read_from(plane.path("kubeconfig")).unwrap();
        let options = kube::config::KubeConfigOptions { context: Some(context.into()), ..Default::default() };
        let config = kube::Config::from_custom_kubeconfig(file, &options).await.unwrap();
        kube::Client::try_from(config).unwrap()
    })
}

/// Registers Ready worker nodes (no kubelet stands behind them).
fn add_nodes(plane: &ControlPlane, names: &[&str]) {
    let rt = runtime();
    let nodes: Api<Node> = Api::all(client(&rt, plane, "admin"));
    rt.block_on(async {
        for (i, name) in names.iter().enumerate() {
            let node: Node = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})).unwrap();
            nodes.create(&PostParams::default(), &node).await.unwrap();
            let now = "2026-01-01T00:00:00Z";
            let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "test", "lastHeartbeatTime": now, "lastTransitionTime": now}],
                "addresses": [{"type": "InternalIP", "address": format!("172.18.0.{}", i + 2)}]}});
            nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
            // Registration taints a node not-ready until its kubelet says otherwise.
            nodes.patch(name, &PatchParams::default(), &Patch::Merge(&json!({"spec": {"taints": null}}))).await.unwrap();
        }
    });
}

fn options(plane: &ControlPlane, context: &str, run: &str) -> KubeOptions {
    KubeOptions {
        kubeconfig: Some(plane.path("kubeconfig")),
        context: Some(context.into()),
        run: run.into(),
        pods: PodOptions { image: "netmatrix-agent:0.1.0".into(), image_pull_secret: None, tolerate_taints: false, agnhost: false },
        nodes: NodeFilter::default(),
        ready_timeout: Duration::from_secs(6),
    }
}

fn namespaces(plane: &ControlPlane) -> Vec<String> {
    let rt = runtime();
    let api: Api<Namespace> = Api::all(client(&rt, plane, "admin"));
    rt.block_on(api.list(&Default::default())).unwrap().items.into_iter().filter_map(|n| n.metadata.name).collect()
}

#[test]
fn the_backend_against_a_real_api_server() {
    let Some(bin) = bin_dir("the Kubernetes backend against a real kube-apiserver", &["etcd", "kube-apiserver", "kube-controller-manager"]) else { return };
    let plane = start(&bin);
    add_nodes(&plane, &["w2", "w1"]);

    // A user without the run's permissions: every missing one listed, nothing created.
    let before = namespaces(&plane);
    let refused = KubeBackend::connect(options(&plane, "weak", "t0"));
    let Err(KubeError::Forbidden(missing)) = refused else { panic!("the weak user must be refused: {:?}", refused.err()) };
    assert!(missing.contains(&"create pods (core)".to_owned()) && missing.contains(&"create pods/exec (core)".to_owned()), "{missing:?}");
    assert_eq!(namespaces(&plane), before, "nothing was created");

    let mut backend = KubeBackend::connect(options(&plane, "admin", "t1")).unwrap();
    assert_eq!(backend.server_version(), "v1.37.2");
    assert_eq!(backend.nodes().iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["w1", "w2"], "Ready nodes, in name order");

    // Namespaces of the run's own, labelled as cases say; a policy read back under short names.
    backend.set_namespace("x", Labels::from([("ns".to_owned(), "x".to_owned())])).unwrap();
    let policy = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "x"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
    backend.apply(vec![policy]).unwrap();
    let model = backend.model().unwrap();
    assert_eq!(model.policies.iter().map(|p| format!("{}/{}", p.namespace, p.name)).collect::<Vec<_>>(), ["x/deny"]);
    let x = model.namespaces.iter().find(|n| n.name == "x").expect("the run's namespace, by its short name");
    assert_eq!(x.labels.get("netmatrix.io/run").map(String::as_str), Some("t1"));

    // The API server admits the restricted probe pod; with no kubelet it never becomes ready.
    let pod = PodSpec {
        namespace: "x".into(),
        name: "a".into(),
        labels: Labels::from([("pod".to_owned(), "a".to_owned())]),
        node: "w1".into(),
        ports: vec![ContainerPort { name: Some("serve-80-tcp".into()), port: 80, protocol: Protocol::Tcp }],
        host_network: false,
    };
    let started = Instant::now();
    let err = backend.create_pods(vec![pod]).unwrap_err();
    let text = format!("{err}: {}", std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default());
    assert!(text.contains("nm-t1-x/a") && text.contains("not done after 6s"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let model = backend.model().unwrap();
    let a = model.pods.iter().find(|p| p.key() == PodKey::new("x", "a")).expect("the pod, under its short namespace");
    assert_eq!((a.node.as_deref(), a.ready), (Some("w1"), false));

    // Somebody's own namespace, which no cleanup may touch.
    let rt = runtime();
    let api: Api<Namespace> = Api::all(client(&rt, &plane, "admin"));
    let theirs: Namespace = serde_json::from_value(json!({"metadata": {"name": "theirs"}})).unwrap();
    rt.block_on(api.create(&PostParams::default(), &theirs)).unwrap();
    let errors = backend.teardown();
    assert!(errors.is_empty(), "{errors:?}");
    let left = namespaces(&plane);
    assert!(!left.iter().any(|n| n.starts_with("nm-t1-")), "the run's namespaces are gone: {left:?}");
    assert!(left.contains(&"theirs".to_owned()));

    // A run left behind (as after a kill): cleanup removes it by label, and nothing else.
    let mut leftover = KubeBackend::connect(options(&plane, "admin", "t2")).unwrap();
    leftover.set_namespace("y", Labels::new()).unwrap();
    drop(leftover);
    let removed = netmatrix_kube::cleanup(&options(&plane, "admin", ""), None).unwrap();
    assert_eq!(removed, ["namespace nm-t2-y"]);
    let left = namespaces(&plane);
    assert!(!left.iter().any(|n| n.starts_with("nm-")) && left.contains(&"theirs".to_owned()), "{left:?}");
}
