//! Nodes and their addresses, pod readiness and termination: what Service semantics read.

use std::net::IpAddr;

use netmatrix_model::parse_str;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn nodes_keep_internal_then_external_addresses_sorted_by_name() {
    let c = parse_str(
        "nodes.yaml",
        r#"
apiVersion: v1
kind: Node
metadata: {name: worker-b}
status:
  addresses:
  - {type: Hostname, address: worker-b}
  - {type: ExternalIP, address: 203.0.113.2}
  - {type: InternalIP, address: 172.18.1.2}
  - {type: InternalIP, address: "fd00::1:2"}
  - {type: InternalDNS, address: worker-b.internal}
---
apiVersion: v1
kind: NodeList
items:
- {metadata: {name: worker-a}, status: {addresses: [{type: InternalIP, address: 172.18.0.2}, {type: InternalIP, address: 172.18.0.2}]}}
- {metadata: {name: bare}}
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["bare", "worker-a", "worker-b"]);
    assert!(c.nodes[0].addresses.is_empty());
    assert_eq!(c.nodes[1].addresses, [ip("172.18.0.2")], "duplicates are dropped");
    // InternalIP first: the primary address, where kube-proxy's nftables mode serves node ports.
    assert_eq!(c.nodes[2].addresses, [ip("172.18.1.2"), ip("fd00::1:2"), ip("203.0.113.2")], "host names are no addresses");
    assert_eq!((&*c.nodes[2].origin.file, c.nodes[2].origin.document), ("nodes.yaml", 1));
}

#[test]
fn bad_node_input_names_file_object_and_field() {
    let err = parse_str(
        "n.yaml",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus: {addresses: [{type: Hostname, address: n1}, {type: InternalIP, address: 172.18.0.300}]}\n",
    )
    .unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!(
        err.0[0].to_string(),
        "n.yaml: document 1 (Node n1): field status.addresses[1].address: \"172.18.0.300\" is not an IP address (type InternalIP)"
    );
    let err = parse_str("n.yaml", "apiVersion: v1\nkind: Node\nmetadata: {}\n").unwrap_err();
    assert_eq!(err.0[0].field.as_deref(), Some("metadata.name"), "{err}");
    let err = parse_str("n.yaml", "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus: {addresses: {type: InternalIP}}\n").unwrap_err();
    assert_eq!(err.0[0].field.as_deref(), Some("status.addresses"), "{err}");
}

#[test]
fn pods_are_ready_unless_their_status_says_otherwise_and_terminate_once_deleted() {
    let c = parse_str(
        "pods.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: ready, namespace: x}
status: {conditions: [{type: PodScheduled, status: "True"}, {type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: starting, namespace: x}
status: {conditions: [{type: Ready, status: "False"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: unknown, namespace: x}
status: {conditions: [{type: Ready, status: Unknown}]}
---
apiVersion: v1
kind: Pod
metadata: {name: deleted, namespace: x, deletionTimestamp: "2026-01-01T00:00:00Z"}
---
apiVersion: v1
kind: Pod
metadata: {name: no-status, namespace: x}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: x}
spec: {template: {metadata: {labels: {app: web}}}}
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let state: Vec<(&str, bool, bool)> = c.pods.iter().map(|p| (p.name.as_str(), p.ready, p.terminating)).collect();
    assert_eq!(
        state,
        [
            ("web", true, false),
            ("deleted", true, true),
            ("no-status", true, false),
            ("ready", true, false),
            ("starting", false, false),
            ("unknown", false, false)
        ],
        "a template and a pod without conditions stand for running pods"
    );
}

#[test]
fn endpoint_slices_with_api_defaults_and_located_errors() {
    let c = parse_str(
        "eps.yaml",
        r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: x, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: "", port: 53, protocol: UDP}]
endpoints:
- {addresses: [10.0.0.1], nodeName: node0, targetRef: {kind: Pod, name: web-0}}
- {addresses: [10.0.0.2], conditions: {ready: false, terminating: true}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: orphan, namespace: x}
addressType: IPv4
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.endpoint_slices.len(), 1);
    let s = &c.endpoint_slices[0];
    assert_eq!((s.namespace.as_str(), s.name.as_str(), s.service.as_str()), ("x", "web-abc", "web"));
    assert_eq!(s.ports.iter().map(|p| (p.name.as_deref(), p.port)).collect::<Vec<_>>(), [(Some("http"), 8080), (None, 53)]);
    let e = &s.endpoints;
    assert_eq!((e[0].ready, e[0].serving, e[0].terminating), (true, true, false), "absent conditions: ready, serving as ready, not terminating");
    assert_eq!((e[0].node.as_deref(), e[0].pod.clone()), (Some("node0"), Some(("x".to_owned(), "web-0".to_owned()))));
    assert_eq!((e[1].ready, e[1].serving, e[1].terminating), (false, false, true));
    assert_eq!(c.warnings, ["eps.yaml: document 2: EndpointSlice x/orphan: no label kubernetes.io/service-name, so it belongs to no Service; ignored"]);
    let err = parse_str("eps.yaml", "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e, labels: {kubernetes.io/service-name: s}}\naddressType: IPv5\nports: [{port: 0}]\nendpoints: [{addresses: [nope]}]\n").unwrap_err();
    let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_deref().unwrap()).collect();
    assert_eq!(fields, ["addressType", "ports[0].port", "endpoints[0].addresses[0]"], "{err}");
    assert!(err.to_string().starts_with("eps.yaml: document 1 (EndpointSlice default/e): field addressType: \"IPv5\" is not an address type"), "{err}");
}
