//! Manifest loading: kinds, defaults, and errors that name file, document and field.

use netmatrix_model::{Direction, NAMESPACE_NAME_LABEL, PortRef, Protocol, parse_files, parse_str};

const MIXED: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: prod
  labels: {team: a}
---
apiVersion: v1
kind: Pod
metadata:
  name: lonely
  labels: {app: lonely}
spec:
  containers:
  - ports:
    - {name: http, containerPort: 8080}
    - {containerPort: 53, protocol: UDP}
status:
  podIPs: [{ip: 10.1.0.5}, {ip: "fd00::5"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-abc-1
  namespace: shop
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-abc, controller: true}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: prod}
spec:
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: batch}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
---
just: some yaml
"#;

#[test]
fn loads_kinds_defaults_namespaces_and_owners() {
    let c = parse_str("mixed.yaml", MIXED).unwrap();
    let names: Vec<_> = c.namespaces.iter().map(|n| n.name.as_str()).collect();
    // "shop" and "default" are only referenced, never defined: they exist all the same.
    assert_eq!(names, ["default", "prod", "shop"]);
    for ns in &c.namespaces {
        assert_eq!(ns.labels.get(NAMESPACE_NAME_LABEL), Some(&ns.name), "every namespace gets {NAMESPACE_NAME_LABEL}");
    }
    assert_eq!(c.namespaces[1].labels.get("team").map(String::as_str), Some("a"));

    let workloads: Vec<String> = c.pods.iter().map(|p| p.workload.to_string()).collect();
    assert_eq!(workloads, ["default/lonely[Pod]", "prod/nightly[CronJob]", "prod/web[Deployment]", "shop/web-abc[ReplicaSet]"]);
    let lonely = &c.pods[0];
    assert_eq!(lonely.ips.len(), 2);
    assert_eq!(lonely.ports[0].name.as_deref(), Some("http"));
    assert_eq!(lonely.ports[0].protocol, Protocol::Tcp, "container port protocol defaults to TCP");
    assert_eq!(lonely.ports[1].protocol, Protocol::Udp);
    assert_eq!(c.pods[1].labels.get("app").map(String::as_str), Some("batch"), "CronJob pods take the job template's labels");
    assert!(c.warnings.iter().any(|w| w.contains("mixed.yaml: document 7") && w.contains("not a Kubernetes object")), "{:?}", c.warnings);
}

#[test]
fn a_later_pod_of_the_same_key_replaces_the_earlier() {
    let pod = |name: &str, app: &str| format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: a, labels: {{app: {app}}}}}\n");
    // A Deployment of a pod's name is another workload: both stay.
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: db, namespace: a}\nspec: {template: {spec: {containers: []}}}\n";
    let text = [pod("web", "first"), pod("db", "first"), deployment.to_owned(), pod("db", "second")].join("---\n");
    let c = parse_str("dup.yaml", &text).unwrap();
    let pods: Vec<(String, &str)> = c.pods.iter().map(|p| (p.workload.to_string(), p.labels.get("app").map_or("", String::as_str))).collect();
    let want = [("a/db[Deployment]", ""), ("a/db[Pod]", "second"), ("a/web[Pod]", "first")];
    assert_eq!(pods.iter().map(|(w, app)| (w.as_str(), *app)).collect::<Vec<_>>(), want, "sorted by namespace, workload kind and name; the later db is used");
    assert_eq!(c.pods[1].origin.document, 4);
    assert_eq!(c.warnings, ["dup.yaml: document 2: a/db defined again; the later definition is used"]);
}

#[test]
fn lists_and_json() {
    let list = r#"{"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "a"}, "spec": {"podSelector": {}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "a"}}]}"#;
    let c = parse_str("list.json", list).unwrap();
    assert_eq!(c.policies.len(), 1);
    assert_eq!(c.pods.len(), 1);
    let typed_list =
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyList\nitems:\n- metadata: {name: q}\n  kind: NetworkPolicy\n  spec: {podSelector: {}}\n";
    assert_eq!(parse_str("l.yaml", typed_list).unwrap().policies[0].name, "q");
}

#[test]
fn files_are_parsed_as_their_names_say_and_every_error_names_its_file() {
    let file = |name: &str, text: &str| (name.to_owned(), text.to_owned());
    let good =
        [file("a.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n"), file("b.json", r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"}}"#)];
    let names: Vec<String> = parse_files(&good).unwrap().pods.into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["a", "b"]);
    // YAML is no JSON: a `.json` name is read as JSON only.
    let bad = [good[0].clone(), file("c.json", "kind: Pod\n"), file("d.yaml", "a: [\n")];
    let errors: Vec<String> = parse_files(&bad).unwrap_err().0.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("c.json: not valid JSON"), "{errors:?}");
    assert!(errors[1].starts_with("d.yaml: not valid YAML"), "{errors:?}");
}

fn policy(spec: &str) -> String {
    format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: ns}}\nspec:\n{spec}")
}

#[test]
fn policy_types_default_from_rules() {
    // "policies that contain an egress section are assumed to affect egress, and all policies
    // (whether or not they contain an ingress section) are assumed to affect ingress."
    let p = &parse_str("p.yaml", &policy("  podSelector: {}\n  egress: [{}]\n")).unwrap().policies[0];
    assert!(p.ingress.as_ref().is_some_and(Vec::is_empty), "ingress affected, with no rule: deny all");
    assert_eq!(p.egress.as_ref().map(Vec::len), Some(1));
    let p = &parse_str("p.yaml", &policy("  podSelector: {}\n  egress: []\n")).unwrap().policies[0];
    assert!(p.egress.is_none(), "an empty egress list does not make the policy affect egress");
    // Explicit policyTypes, in any order, and rules of an unlisted direction are ignored with a warning.
    let c = parse_str("p.yaml", &policy("  podSelector: {}\n  policyTypes: [Egress]\n  ingress: [{}]\n")).unwrap();
    assert!(c.policies[0].rules(Direction::Ingress).is_none());
    assert!(c.warnings.iter().any(|w| w.contains("spec.ingress rules are ignored")), "{:?}", c.warnings);
    let p = &parse_str("p.yaml", &policy("  podSelector: {}\n  policyTypes: [Egress, Ingress]\n")).unwrap().policies[0];
    assert!(p.ingress.is_some() && p.egress.is_some());
}

#[test]
fn ports_and_ranges() {
    let c =
        parse_str("p.yaml", &policy("  podSelector: {}\n  ingress:\n  - ports: [{port: 80, endPort: 90}, {port: http, protocol: SCTP}, {protocol: UDP}]\n"))
            .unwrap();
    let ports = &c.policies[0].ingress.as_ref().unwrap()[0].ports;
    assert_eq!(ports[0].port, Some(PortRef::Range { first: 80, last: 90 }));
    assert_eq!(ports[0].protocol, Protocol::Tcp, "protocol defaults to TCP");
    assert_eq!(ports[1].port, Some(PortRef::Named("http".into())));
    assert_eq!(ports[2].port, None, "no port: every port of the protocol");
}

/// Asserts loading fails with exactly one error whose text contains every fragment.
fn fails_with(file: &str, text: &str, fragments: &[&str]) {
    let err = parse_str(file, text).expect_err("input must be rejected");
    let msg = err.to_string();
    for f in fragments {
        assert!(msg.contains(f), "error {msg:?} should contain {f:?}");
    }
}

#[test]
fn errors_name_file_document_and_field() {
    fails_with("bad.yaml", "a: [1, 2\n", &["bad.yaml", "not valid YAML"]);
    fails_with("bad.json", "{\"kind\": ", &["bad.json", "not valid JSON"]);
    let two_docs = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: x}}\n---\n{}",
        policy("  podSelector:\n    matchExpressions: [{key: a, operator: Maybe}]\n")
    );
    fails_with("p.yaml", &two_docs, &["p.yaml: document 2", "NetworkPolicy ns/p", "spec.podSelector.matchExpressions[0].operator", "\"Maybe\""]);
    fails_with("p.yaml", &policy("  podSelector: {}\n  ingress: [{ports: \"80\"}]\n"), &["field spec.ingress[0].ports", "sequence"]);
    fails_with(
        "p.yaml",
        &policy("  podSelector: {}\n  ingress: [{ports: [{port: a-very-long-port-name}]}]\n"),
        &["spec.ingress[0].ports[0].port", "15 characters"],
    );
    fails_with(
        "p.yaml",
        &policy("  podSelector: {}\n  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/33}}]}]\n"),
        &["spec.egress[0].to[0].ipBlock.cidr", "not a CIDR"],
    );
    fails_with(
        "p.yaml",
        &policy("  podSelector: {}\n  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]\n"),
        &["ipBlock.except[0]", "strictly within cidr 10.0.0.0/8"],
    );
    fails_with(
        "p.yaml",
        &policy("  podSelector: {}\n  ingress: [{ports: [{port: 90, endPort: 80}]}]\n"),
        &["spec.ingress[0].ports[0].endPort", "greater than or equal"],
    );
    fails_with("p.yaml", &policy("  podSelector: {}\n  ingress: [{ports: [{port: 70000}]}]\n"), &["spec.ingress[0].ports[0].port", "1-65535"]);
    fails_with("p.yaml", &policy("  podSelector: {}\n  ingress: [{ports: [{port: 80, protocol: tcp}]}]\n"), &["protocol", "unsupported protocol \"tcp\""]);
    fails_with("p.yaml", &policy("  podSelector: {}\n  ingress: [{from: [{}]}]\n"), &["spec.ingress[0].from[0]", "must specify"]);
    fails_with(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{ports: [{containerPort: 80, name: Http}]}]}\n",
        &["spec.containers[0].ports[0].name", "lower-case"],
    );
    fails_with("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nstatus: {podIP: 10.0.0.300}\n", &["status.podIP", "not an IP address"]);
    fails_with("l.yaml", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {labels: [a]}}\n", &["items[0].metadata.labels"]);
}

#[test]
fn every_error_is_reported_and_nothing_partial_is_returned() {
    let text = format!(
        "{}\n---\n{}",
        policy("  podSelector: {}\n  ingress: [{ports: [{port: 0}]}]\n"),
        policy("  podSelector: {matchExpressions: [{key: a, operator: In}]}\n")
    );
    let err = parse_str("two.yaml", &text).unwrap_err();
    assert_eq!(err.0.len(), 2, "{err}");
    assert_eq!(err.0[0].document, Some(1));
    assert_eq!(err.0[1].field.as_deref(), Some("spec.podSelector.matchExpressions[0].values"));
}
