//! Coverage of a real kube-apiserver's audit log (v1.37.2 with etcd, built by hack/kube/build;
//! no controllers or kubelet needed): requests sent with netmatrix's user agent are found under
//! their case, against the server's own /openapi/v2 and its OpenAPI 3 group documents. Needs
//! `NETMATRIX_KUBE_BIN`, curl and openssl; skips saying so otherwise, fails in CI.

use std::io::BufReader;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netmatrix_coverage::{Coverage, Index, Report};

/// etcd and kube-apiserver, killed when dropped.
struct Server {
    children: Vec<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Server {
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

fn works(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success())
}

fn bin_dir() -> Option<PathBuf> {
    let why = match std::env::var_os("NETMATRIX_KUBE_BIN").map(PathBuf::from) {
        Some(dir) if ["etcd", "kube-apiserver"].iter().all(|b| dir.join(b).exists()) => {
            if works("openssl", "version") && works("curl", "--version") {
                return Some(dir);
            }
            "openssl or curl is missing (Debian packages openssl, curl)".to_owned()
        }
        Some(dir) => format!("{} lacks etcd or kube-apiserver (hack/kube/build builds them)", dir.display()),
        None => "NETMATRIX_KUBE_BIN is not set (hack/kube/build builds the control plane and prints the directory)".to_owned(),
    };
    assert!(std::env::var_os("CI").is_none(), "in CI the real API server tests must run: {why}");
    eprintln!("SKIPPED: coverage against a real kube-apiserver: {why}");
    None
}

fn spawn(bin: &Path, name: &str, args: &[String], log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(bin.join(name)).args(args).stdout(Stdio::null()).stderr(log).spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"))
}

fn start(bin: &Path) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let key = d.join("sa.key");
    assert!(Command::new("openssl").args(["genrsa", "-out"]).arg(&key).arg("2048").stderr(Stdio::null()).status().unwrap().success());
    assert!(
        Command::new("openssl").args(["rsa", "-pubout", "-in"]).arg(&key).arg("-out").arg(d.join("sa.pub")).stderr(Stdio::null()).status().unwrap().success()
    );
    std::fs::write(d.join("tokens.csv"), "admintoken,admin,1,system:masters\n").unwrap();
    std::fs::write(d.join("audit-policy.yaml"), "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Metadata}]\n").unwrap();
    let (etcd_port, peer_port, port) = (free_port(), free_port(), free_port());
    let path = |p: &str| d.join(p).display().to_string();
    let mut server = Server { children: Vec::new(), dir, port };
    server.children.push(spawn(
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
    server.children.push(spawn(
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
            format!("--audit-log-path={}", path("audit.log")),
            format!("--audit-policy-file={}", path("audit-policy.yaml")),
        ],
        &d.join("apiserver.log"),
    ));
    let started = Instant::now();
    while curl(&server, None, "GET", "/readyz", None).1.trim() != "ok" {
        assert!(started.elapsed() < Duration::from_secs(90), "kube-apiserver not ready within 90 s (logs in {})", server.dir.path().display());
        std::thread::sleep(Duration::from_millis(300));
    }
    server
}

/// One request as the admin with user agent `agent` (curl's own when None): (status, body).
fn curl(server: &Server, agent: Option<&str>, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut command = Command::new("curl");
    command.args(["-sk", "-X", method, "-H", "Authorization: Bearer admintoken", "-w", "\n%{http_code}"]);
    if let Some(agent) = agent {
        command.args(["-A", agent]);
    }
    if let Some(body) = body {
        command.args(["-H", "Content-Type: application/json", "--data-binary", body]);
    }
    let out = command.arg(format!("https://127.0.0.1:{}{path}", server.port)).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn coverage(server: &Server, index: &Index) -> Coverage {
    let mut coverage = Coverage::new(index);
    let log = std::fs::File::open(server.dir.path().join("audit.log")).unwrap();
    coverage.read(index, BufReader::new(log)).unwrap();
    coverage
}

fn case_operations(report: &Report, case: &str) -> Vec<(String, u64, u64)> {
    let case = report.cases.iter().find(|c| c.case == case).unwrap_or_else(|| panic!("case {case} in the report"));
    assert_eq!(case.unmatched, 0, "every request of {} matched", case.case);
    case.operations.iter().map(|o| (o.id.clone(), o.hits.events, o.hits.ok)).collect()
}

#[test]
fn a_real_api_servers_audit_log() {
    let Some(bin) = bin_dir() else { return };
    let server = start(&bin);
    let case = Some("netmatrix/0.1.0 -- suite/case");
    let other = Some("netmatrix/0.1.0 -- suite/other");
    let requests = [
        (case, "POST", "/api/v1/namespaces", Some(r#"{"metadata": {"name": "cov"}}"#), 201),
        (case, "POST", "/api/v1/namespaces/cov/services", Some(r#"{"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}"#), 201),
        (case, "GET", "/api/v1/namespaces/cov/services/web", None, 200),
        (case, "GET", "/api/v1/namespaces/cov/pods?watch=true&timeoutSeconds=1", None, 200),
        (
            case,
            "POST",
            "/apis/networking.k8s.io/v1/namespaces/cov/networkpolicies",
            Some(r#"{"metadata": {"name": "deny"}, "spec": {"podSelector": {}}}"#),
            201,
        ),
        (case, "GET", "/api/v1/namespaces/cov/pods/missing", None, 404),
        (case, "GET", "/apis/discovery.k8s.io/v1/namespaces/cov/endpointslices", None, 200),
        (other, "GET", "/api/v1/nodes", None, 200),
        (other, "GET", "/api/v1/namespaces/cov/status", None, 200),
    ];
    for (agent, method, path, body, code) in requests {
        let (got, text) = curl(&server, agent, method, path, body);
        assert_eq!(got, code, "{method} {path}: {text}");
    }
    let dir = server.dir.path();
    let fetch = |path: &str, file: &str| {
        let (code, body) = curl(&server, None, "GET", path, None);
        assert_eq!(code, 200, "{path}");
        std::fs::write(dir.join(file), body).unwrap();
        dir.join(file)
    };
    let v2 = Index::read(&[fetch("/openapi/v2", "swagger.json")]).unwrap();
    let v3_files = [
        fetch("/openapi/v3/api/v1", "core.json"),
        fetch("/openapi/v3/apis/networking.k8s.io/v1", "networking.json"),
        fetch("/openapi/v3/apis/discovery.k8s.io/v1", "discovery.json"),
    ];
    let v3 = Index::read(&v3_files).unwrap();

    // The log is written as requests finish: wait until the last one is there.
    let started = Instant::now();
    while coverage(&server, &v2).cases.get("suite/other").is_none_or(|c| c.events < 2) {
        assert!(started.elapsed() < Duration::from_secs(20), "the audit log lacks the requests (in {})", dir.display());
        std::thread::sleep(Duration::from_millis(200));
    }
    let c = coverage(&server, &v2);
    let report = Report::new(&v2, &c);
    let mut text = Vec::new();
    report.write_txt(&mut text).unwrap();
    eprintln!("{}", String::from_utf8_lossy(&text));
    assert_eq!(c.malformed, 0);
    assert!(c.other_stages > 0, "RequestReceived events are skipped");

    let ops = |list: &[(&str, u64, u64)]| list.iter().map(|(id, e, ok)| ((*id).to_owned(), *e, *ok)).collect::<Vec<_>>();
    // /openapi/v2 still lists the deprecated /watch/ paths, which a watch is attributed to.
    assert_eq!(
        case_operations(&report, "suite/case"),
        ops(&[
            ("createCoreV1Namespace", 1, 1),
            ("createCoreV1NamespacedService", 1, 1),
            ("createNetworkingV1NamespacedNetworkPolicy", 1, 1),
            ("listDiscoveryV1NamespacedEndpointSlice", 1, 1),
            ("readCoreV1NamespacedPod", 1, 0),
            ("readCoreV1NamespacedService", 1, 1),
            ("watchCoreV1NamespacedPodList", 1, 1),
        ])
    );
    assert_eq!(case_operations(&report, "suite/other"), ops(&[("listCoreV1Node", 1, 1), ("readCoreV1NamespaceStatus", 1, 1)]));
    assert!(report.networking.hit >= 9 && report.networking.stable_operations > 100, "{:?}", (report.networking.hit, report.networking.stable_operations));

    // The OpenAPI 3 group documents name the same operations (/watch/ paths included).
    let c3 = coverage(&server, &v3);
    let report3 = Report::new(&v3, &c3);
    assert_eq!(case_operations(&report3, "suite/case"), case_operations(&report, "suite/case"));
    assert_eq!(case_operations(&report3, "suite/other"), case_operations(&report, "suite/other"));
}
