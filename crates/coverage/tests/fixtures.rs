//! The matcher and the report on a hand-written subset of the v1.37 OpenAPI v2 spec and an
//! audit log exercising parameters, subresources, cluster-scoped and namespaced paths, watches,
//! paths the spec lacks, escapes, skipped stages, duplicates and malformed lines.

use std::io::BufReader;

use netmatrix_coverage::openapi::{Method, Miss};
use netmatrix_coverage::{Coverage, Index, Report};

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openapi-v2.json");
const LOG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/audit.jsonl");

fn index() -> Index {
    Index::read(&[SPEC]).unwrap()
}

fn op(index: &Index, method: Method, path: &str, watch: bool) -> Result<String, Miss> {
    index.find(method, path, watch).map(|i| index.operations[i as usize].id.clone())
}

#[test]
fn matcher() {
    let index = index();
    let ok = |s: &str| Ok(s.to_owned());
    // Parameters, literal segments first.
    assert_eq!(op(&index, Method::Get, "/api/v1/namespaces/x/pods/a", false), ok("readCoreV1NamespacedPod"));
    assert_eq!(
        op(&index, Method::Get, "/api/v1/namespaces/x/status", false),
        ok("readCoreV1NamespaceStatus"),
        "namespaces/{{name}}/status, no resource 'status'"
    );
    // Subresources.
    assert_eq!(op(&index, Method::Post, "/api/v1/namespaces/x/pods/a/exec", false), ok("connectCoreV1PostNamespacedPodExec"));
    assert_eq!(op(&index, Method::Get, "/api/v1/namespaces/x/pods/a/exec", false), ok("connectCoreV1GetNamespacedPodExec"));
    assert_eq!(op(&index, Method::Patch, "/api/v1/namespaces/x/pods/a/status", false), ok("patchCoreV1NamespacedPodStatus"));
    assert_eq!(op(&index, Method::Get, "/api/v1/nodes/n1/proxy/metrics/cadvisor", false), ok("connectCoreV1GetNodeProxyWithPath"));
    // Cluster-scoped and namespaced.
    assert_eq!(op(&index, Method::Get, "/api/v1/pods", false), ok("listCoreV1PodForAllNamespaces"));
    assert_eq!(op(&index, Method::Get, "/api/v1/namespaces/x/pods", false), ok("listCoreV1NamespacedPod"));
    assert_eq!(op(&index, Method::Get, "/api/v1/nodes/n1", false), ok("readCoreV1Node"));
    assert_eq!(op(&index, Method::Get, "/api/v1/namespaces", false), ok("listCoreV1Namespace"));
    // Watches: the /watch/ path where the spec has it, else the list path.
    assert_eq!(op(&index, Method::Get, "/api/v1/namespaces/x/pods", true), ok("watchCoreV1NamespacedPodList"));
    assert_eq!(op(&index, Method::Get, "/api/v1/watch/namespaces/x/pods", false), ok("watchCoreV1NamespacedPodList"));
    assert_eq!(op(&index, Method::Get, "/apis/networking.k8s.io/v1/networkpolicies", true), ok("listNetworkingV1NetworkPolicyForAllNamespaces"));
    // Not in the spec.
    assert_eq!(op(&index, Method::Get, "/apis/apps/v1/namespaces/x/deployments", false), Err(Miss::Path));
    assert_eq!(op(&index, Method::Get, "/api/v1/namespaces/x/pods/a/log", false), Err(Miss::Path));
    assert_eq!(op(&index, Method::Put, "/api/v1/nodes/n1", false), Err(Miss::Method));
}

fn coverage() -> (Index, Coverage) {
    let index = index();
    let mut coverage = Coverage::new(&index);
    coverage.read(&index, BufReader::new(std::fs::File::open(LOG).unwrap())).unwrap();
    (index, coverage)
}

#[test]
fn counts() {
    let (_, c) = coverage();
    assert_eq!((c.lines, c.malformed, c.other_stages, c.duplicates), (31, 2, 2, 1));
    assert_eq!((c.events, c.matched, c.matched_by_object_ref, c.unmatched), (25, 23, 1, 2));
    let examples: Vec<(&str, Miss)> = c.examples.iter().map(|e| (e.uri.as_str(), e.reason)).collect();
    assert_eq!(examples, [("/apis/apps/v1/namespaces/y/deployments", Miss::Path), ("/healthz", Miss::Method)]);
}

#[test]
fn report_per_case_group_and_networking_share() {
    let (index, c) = coverage();
    let report = Report::new(&index, &c);
    let cases: Vec<(&str, u64, u64)> = report.cases.iter().map(|c| (c.case.as_str(), c.events, c.unmatched)).collect();
    assert_eq!(cases, [("netpol/deny-all", 12, 0), ("services/cluster-ip", 6, 1)]);
    let deny_all: Vec<(&str, u64, u64)> = report.cases[0].operations.iter().map(|o| (o.id.as_str(), o.hits.events, o.hits.ok)).collect();
    assert_eq!(
        deny_all,
        [
            ("connectCoreV1PostNamespacedPodExec", 1, 1),
            ("createCoreV1Namespace", 1, 1),
            ("createCoreV1NamespacedPod", 1, 1),
            ("createNetworkingV1NamespacedNetworkPolicy", 1, 1),
            ("deleteCoreV1CollectionNamespacedPod", 1, 1),
            ("deleteCoreV1Namespace", 1, 1),
            ("listCoreV1PodForAllNamespaces", 1, 1),
            ("patchCoreV1NamespacedPod", 1, 1),
            ("readCoreV1NamespacedPod", 2, 1),
            ("readCoreV1NamespacedPodStatus", 1, 1),
            ("watchCoreV1NamespacedPodList", 1, 1),
        ]
    );
    let services: Vec<&str> = report.cases[1].operations.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(
        services,
        [
            "createCoreV1NamespacedService",
            "listDiscoveryV1NamespacedEndpointSlice",
            "listNetworkingV1NetworkPolicyForAllNamespaces",
            "readCoreV1Namespace",
            "readCoreV1NamespaceStatus"
        ]
    );
    let agents: Vec<(&str, u64)> = report.agents.iter().map(|a| (a.agent.as_str(), a.events)).collect();
    assert_eq!(
        agents,
        [
            ("curl/8.5.0", 1),
            ("kube-proxy/v1.37.2 (linux/amd64) kubernetes/abcdef", 2),
            ("kubectl/v1.37.2 (linux/amd64) kubernetes/abcdef", 4),
            ("netmatrix/0.1.0", 18)
        ]
    );
    let groups: Vec<(&str, usize, usize)> = report.groups.iter().map(|g| (g.group.as_str(), g.operations, g.hit)).collect();
    assert_eq!(groups, [("core", 25, 17), ("discovery.k8s.io", 1, 1), ("networking.k8s.io", 4, 2), ("(non-resource)", 1, 1)]);
    let networking: Vec<(&str, usize, usize)> = report.networking.groups.iter().map(|g| (g.group.as_str(), g.stable_operations, g.hit)).collect();
    assert_eq!(networking, [("core", 23, 17), ("discovery.k8s.io", 1, 1), ("networking.k8s.io", 3, 2), ("policy.networking.k8s.io", 0, 0)]);
    assert_eq!((report.networking.stable_operations, report.networking.hit), (27, 20));
    assert!(report.networking.groups[0].missed.contains(&"listCoreV1NamespacedPod".to_owned()), "a watch is not a list");
    let panicked = report.cases.iter().flat_map(|c| &c.operations).find(|o| o.id == "replaceCoreV1NamespacedPod");
    assert!(panicked.is_none(), "the panicked update came from kubectl");
    let replace = index.operations.iter().position(|o| o.id == "replaceCoreV1NamespacedPod").unwrap();
    assert_eq!((c.operations[replace].events, c.operations[replace].ok), (1, 0), "a Panic is counted, not as ok");
}

#[test]
fn outputs() {
    let (index, c) = coverage();
    let report = Report::new(&index, &c);
    let mut txt = Vec::new();
    report.write_txt(&mut txt).unwrap();
    let txt = String::from_utf8(txt).unwrap();
    assert!(txt.starts_with("events: 25 counted (ResponseComplete/Panic), 23 matched (1 by objectRef), 2 unmatched;"), "{txt}");
    assert!(txt.contains("networking (stable operations): 20 of 27 hit (74.1%)"), "{txt}");
    assert!(txt.contains("  netpol/deny-all          12          0   11\n"), "{txt}");
    assert!(txt.contains("  get /apis/apps/v1/namespaces/y/deployments (no such path; netmatrix/0.1.0 -- services/cluster-ip)"), "{txt}");
    let mut html = Vec::new();
    report.write_html(&mut html).unwrap();
    let html = String::from_utf8(html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"), "{html}");
    assert!(html.contains("<summary>netpol/deny-all: 12 events, 0 unmatched, 11 operations</summary>"), "{html}");
    assert!(html.contains("<td>/api/v1/namespaces/{namespace}/pods/{name}/exec</td>"), "{html}");
    let mut json = Vec::new();
    report.write_json(&mut json).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["schema"], "netmatrix.coverage/v1");
    assert_eq!(json["cases"][1]["operations"][0]["method"], "POST");
    assert_eq!(json["cases"][1]["operations"][0]["ok"], 1);
    assert_eq!((&json["cases"][0]["operations"][0]["action"], &json["cases"][0]["operations"][0]["kind"]), (&"connect".into(), &"PodExecOptions".into()));
    assert_eq!(json["unmatched"]["examples"][0]["reason"], "path");
    assert_eq!(json["networking"]["groups"][2]["share"], 2.0 / 3.0);
}

#[test]
fn openapi3_documents_merge_and_the_v3_list_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v3 = dir.path().join("networking.json");
    let op = |id: &str| serde_json::json!({"operationId": id, "x-kubernetes-action": "list"});
    let doc = serde_json::json!({"openapi": "3.0.0", "paths": {"/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies": {"get": op("listPolicyNetworkingV1alpha1AdminNetworkPolicy")},
        "/apis/networking.k8s.io/v1/networkpolicies": {"get": op("listNetworkingV1NetworkPolicyForAllNamespaces")}}});
    std::fs::write(&v3, doc.to_string()).unwrap();
    let merged = Index::read(&[std::path::Path::new(SPEC), &v3]).unwrap();
    assert_eq!(merged.operations.len(), index().operations.len() + 1, "the repeated operation is kept once");
    let list = dir.path().join("v3.json");
    std::fs::write(&list, r#"{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=1"}}}"#).unwrap();
    let err = Index::read(&[&list]).unwrap_err();
    assert!(err.to_string().contains("no operations"), "{err}");
}
