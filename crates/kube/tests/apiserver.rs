//! The Kubernetes backend against a real kube-apiserver, etcd and kube-controller-manager
//! (v1.37.2, built from their Go modules by hack/kube/build), on loopback ports. No kubelet:
//! pods never start, which is what the readiness deadline is checked on; everything else
//! (permissions, placement, server-side apply, the model read back, teardown, cleanup) is the
//! real API server's answer. Needs `NETMATRIX_KUBE_BIN` (the bin directory hack/kube/build
//! prints; .ci/run sets it) and openssl; skips saying so otherwise, fails in CI.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, Patch, PatchParams, PostParams};
use netmatrix_cluster::{Backend, ContainerPort, PodKey, PodSpec};
use netmatrix_kube::{KubeBackend, KubeError, KubeOptions, NodeFilter, PodOptions};
use netmatrix_model::{Labels, Protocol};
use serde_json::json;

/// The control plane's processes, killed (and their files removed) when dropped.
struct ControlPlane {
    children: Vec<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn bin_dir() -> Option<PathBuf> {
    let why = match std::env::var_os("NETMATRIX_KUBE_BIN").map(PathBuf::from) {
        Some(dir) if ["etcd", "kube-apiserver", "kube-controller-manager"].iter().all(|b| dir.join(b).exists()) => {
            if Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success()) {
                return Some(dir);
            }
            "openssl is missing (Debian package openssl)".to_owned()
        }
        Some(dir) => format!("{} lacks etcd, kube-apiserver or kube-controller-manager (hack/kube/build builds them)", dir.display()),
        None => "NETMATRIX_KUBE_BIN is not set (hack/kube/build builds the control plane and prints the directory)".to_owned(),
    };
    assert!(std::env::var_os("CI").is_none(), "in CI the real API server tests must run: {why}");
    eprintln!("SKIPPED: the real kube-apiserver tests: {why}");
    None
}

fn spawn(bin: &Path, name: &str, args: &[String], log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(bin.join(name)).args(args).stdout(Stdio::null()).stderr(log).spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"))
}

fn start(bin: &Path) -> ControlPlane {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let d = d.as_path();
    let key = d.join("sa.key");
    assert!(Command::new("openssl").args(["genrsa", "-out"]).arg(&key).arg("2048").stderr(Stdio::null()).status().unwrap().success());
    assert!(
        Command::new("openssl").args(["rsa", "-pubout", "-in"]).arg(&key).arg("-out").arg(d.join("sa.pub")).stderr(Stdio::null()).status().unwrap().success()
    );
    std::fs::write(d.join("tokens.csv"), "admintoken,admin,1,system:masters\nweaktoken,weak,2,\n").unwrap();
    let (etcd_port, peer_port, port) = (free_port(), free_port(), free_port());
    let path = |p: &str| d.join(p).display().to_string();
    let mut plane = ControlPlane { children: Vec::new(), dir, port };
    plane.children.push(spawn(
        bin,
        "etcd",
        &[
            format!("--data-dir={}", path("etcd")),
            format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-cluster=default=http://127.0.0.1:{peer_port}"),
        ],
        &d.join("etcd.log"),
    ));
    plane.children.push(spawn(
        bin,
        "kube-apiserver",
        &[
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", path("certs")),
            format!("--token-auth-file={}", path("tokens.csv")),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!("--service-account-key-file={}", path("sa.pub")),
            format!("--service-account-signing-key-file={}", path("sa.key")),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
        ],
        &d.join("apiserver.log"),
    ));
    std::fs::write(
        d.join("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: admin\ncontexts: [{{name: admin, context: {{cluster: c, user: admin}}}}, {{name: weak, context: {{cluster: c, user: weak}}}}]\n\
             clusters: [{{name: c, cluster: {{server: \"https://127.0.0.1:{port}\", insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: admin, user: {{token: admintoken}}}}, {{name: weak, user: {{token: weaktoken}}}}]\n"
        ),
    )
    .unwrap();
    wait_ready(&plane);
    // The namespace controller finishes deletions, the service account controller makes each
    // namespace's `default` account (without which pods are refused).
    plane.children.push(spawn(
        bin,
        "kube-controller-manager",
        &[
            format!("--kubeconfig={}", path("kubeconfig")),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            format!("--service-account-private-key-file={}", path("sa.key")),
            "--use-service-account-credentials=false".into(),
            "--leader-elect=false".into(),
        ],
        &d.join("controller-manager.log"),
    ));
    plane
}

fn wait_ready(plane: &ControlPlane) {
    let started = Instant::now();
    let rt = runtime();
    let admin = client(&rt, plane, "admin");
    loop {
        let answer = std::net::TcpStream::connect(("127.0.0.1", plane.port)).is_ok();
        // Ready, not only answering: the RBAC bootstrap roles (what lets any user read
        // /version) are in place only then.
        let ready = || rt.block_on(admin.request_text(http::Request::get("/readyz").body(Vec::new()).unwrap())).is_ok_and(|t| t.trim() == "ok");
        if answer && ready() {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "kube-apiserver did not answer within 90 s (logs in {})", plane.dir.path().display());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A client of the test's own, living on `rt` (its request buffer is a task there).
fn client(rt: &tokio::runtime::Runtime, plane: &ControlPlane, context: &str) -> kube::Client {
    rt.block_on(async {
        let file = kube::config::Kubeconfig::read_from(plane.dir.path().join("kubeconfig")).unwrap();
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
        kubeconfig: Some(plane.dir.path().join("kubeconfig")),
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
    let Some(bin) = bin_dir() else { return };
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
