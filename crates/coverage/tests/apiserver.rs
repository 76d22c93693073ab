//! Coverage of a real kube-apiserver's audit log (v1.37.2 with etcd, built by hack/kube/build;
//! no controllers or kubelet needed): requests sent with netmatrix's user agent are found under
//! their case, against the server's own /openapi/v2 and its OpenAPI 3 group documents. Needs
//! `NETMATRIX_KUBE_BIN`, curl and openssl; skips saying so otherwise, fails in CI.

use std::io::BufReader;
use std::path::Path;
use std::time::{Duration, Instant};

use netmatrix_coverage::{Coverage, Index, Report};
use netmatrix_testcluster::{ADMIN_TOKEN, ControlPlane, bin_dir};

fn start(bin: &Path) -> ControlPlane {
    ControlPlane::start(bin, &format!("{ADMIN_TOKEN},admin,1,system:masters\n"), |dir| {
        std::fs::write(dir.join("audit-policy.yaml"), "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Metadata}]\n").unwrap();
        vec![format!("--audit-log-path={}", dir.join("audit.log").display()), format!("--audit-policy-file={}", dir.join("audit-policy.yaml").display())]
    })
}

fn coverage(server: &ControlPlane, index: &Index) -> Coverage {
    let mut coverage = Coverage::new(index);
    let log = std::fs::File::open(server.path("audit.log")).unwrap();
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
    let Some(bin) = bin_dir("coverage against a real kube-apiserver", &["etcd", "kube-apiserver"]) else { return };
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
        let (got, text) = server.curl(agent, method, path, body);
        assert_eq!(got, code, "{method} {path}: {text}");
    }
    let dir = server.dir.path();
    let fetch = |path: &str, file: &str| {
        let (code, body) = server.curl(None, "GET", path, None);
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
