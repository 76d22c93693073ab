//! One test per Service rule, each quoting the Kubernetes documentation it checks (the Service
//! concept page, "Virtual IPs and Service Proxies", "Service Internal Traffic Policy", the
//! ServiceSpec API reference and "Network Policies"), and where Kubernetes leaves the choice to
//! the implementation, what the lab's reference dataplane does.

use std::collections::BTreeSet;
use std::net::IpAddr;

use netmatrix_model::{Cluster, Protocol, parse_str};
use netmatrix_oracle::services::find_service;
use netmatrix_oracle::{Frontend, FrontendKind, Options, Reachability, ServiceOptions, ServiceVerdict, Verdict, evaluate, frontends};

const NO_HAIRPIN: ServiceOptions = ServiceOptions { hairpin: false };

/// Two nodes (node0 172.18.0.2, node1 172.18.1.2). Namespace x: web-0 (node0, http=8080) and
/// web-1 (node1, http=8081), both app=web; legacy (node0, app=web, no port named http); c0 and
/// c1, clients on node0 and node1. Namespace other: web-y (app=web, other namespace).
const NODES_AND_PODS: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: node0}
status: {addresses: [{type: Hostname, address: node0}, {type: InternalIP, address: 172.18.0.2}]}
---
apiVersion: v1
kind: Node
metadata: {name: node1}
status: {addresses: [{type: InternalIP, address: 172.18.1.2}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: x, labels: {app: web}}
spec: {nodeName: node0, containers: [{ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.244.0.10}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: x, labels: {app: web}}
spec: {nodeName: node1, containers: [{ports: [{name: http, containerPort: 8081}]}]}
status: {podIP: 10.244.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: legacy, namespace: x, labels: {app: web}}
spec: {nodeName: node0, containers: [{ports: [{containerPort: 8080}]}]}
status: {podIP: 10.244.0.11}
---
apiVersion: v1
kind: Pod
metadata: {name: c0, namespace: x, labels: {role: client}}
spec: {nodeName: node0}
status: {podIP: 10.244.0.20}
---
apiVersion: v1
kind: Pod
metadata: {name: c1, namespace: x, labels: {role: client}}
spec: {nodeName: node1}
status: {podIP: 10.244.1.20}
---
apiVersion: v1
kind: Pod
metadata: {name: web-y, namespace: other, labels: {app: web}}
spec: {nodeName: node0, containers: [{ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.244.0.30}
"#;

fn cluster(extra: &str) -> Cluster {
    parse_str("test.yaml", &format!("{NODES_AND_PODS}---\n{extra}")).unwrap_or_else(|e| panic!("{e}"))
}

fn service(name: &str, spec: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: x}}\nspec: {spec}\n")
}

fn pod(cluster: &Cluster, name: &str) -> usize {
    let (ns, name) = name.split_once('/').unwrap();
    cluster.pods.iter().position(|p| p.namespace == ns && p.name == name).unwrap_or_else(|| panic!("no pod {ns}/{name}"))
}

/// The frontend of Service x/`svc` (first port) of `kind`.
fn frontend(cluster: &Cluster, svc: &str, kind: FrontendKind) -> Frontend {
    let s = find_service(cluster, &format!("svc:x/{svc}")).unwrap();
    frontends(cluster).into_iter().find(|f| f.service == s && f.kind == kind).unwrap_or_else(|| panic!("no {kind:?} frontend of {svc}"))
}

fn eval(cluster: &Cluster, src: &str, frontend: &Frontend, options: ServiceOptions) -> ServiceVerdict {
    let mut reach = Reachability::compute(cluster, Options { ipblocks_match_pods: true });
    evaluate(cluster, &mut reach, pod(cluster, src), frontend, options)
}

fn names(cluster: &Cluster, v: &ServiceVerdict) -> BTreeSet<String> {
    v.backends.iter().map(|&b| format!("{}/{}", cluster.pods[b].namespace, cluster.pods[b].name)).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn policy(name: &str, spec: &str) -> String {
    format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: x}}\nspec: {spec}\n")
}

#[test]
fn every_kind_of_frontend_in_a_deterministic_order() {
    let c = cluster(&[
        service("a-lb", "{type: LoadBalancer, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{name: h, port: 80, nodePort: 30080}, {name: d, port: 53, protocol: UDP, nodePort: 30053}]}\nstatus: {loadBalancer: {ingress: [{ip: 172.18.255.1}, {hostname: lb.example.com}]}}"),
        service("b-ext", "{type: ExternalName, externalName: db.example.com, ports: [{port: 5432}]}"),
        // "Headless Services ... kube-proxy does not handle these Services, and there is no load
        // balancing or proxying done by the platform for them."
        service("c-headless", "{clusterIP: None, selector: {app: web}, ports: [{port: 80}]}"),
        // Not allocated yet: no address to connect to.
        service("d-unallocated", "{type: NodePort, selector: {app: web}, ports: [{port: 80}]}"),
    ]
    .join("---\n"));
    let labels: Vec<String> = frontends(&c).iter().map(|f| f.label(&c)).collect();
    assert_eq!(
        labels,
        [
            "svc:x/a-lb:80/TCP",
            "svc:x/a-lb:80/TCP[NodePort node0 172.18.0.2:30080]",
            "svc:x/a-lb:80/TCP[NodePort node1 172.18.1.2:30080]",
            "svc:x/a-lb:80/TCP[LoadBalancer 172.18.255.1]",
            "svc:x/a-lb:53/UDP",
            "svc:x/a-lb:53/UDP[NodePort node0 172.18.0.2:30053]",
            "svc:x/a-lb:53/UDP[NodePort node1 172.18.1.2:30053]",
            "svc:x/a-lb:53/UDP[LoadBalancer 172.18.255.1]",
            "svc:x/b-ext:5432/TCP[ExternalName db.example.com]",
        ]
    );
    let all = frontends(&c);
    // NodePort: "each node proxies that port (the same port number on every Node) into your
    // Service" (Service docs); a load-balancer IP keeps the Service port.
    assert_eq!((all[1].address, all[1].dst_port, all[1].protocol), (Some(ip("172.18.0.2")), 30080, Protocol::Tcp));
    assert_eq!((all[3].address, all[3].dst_port), (Some(ip("172.18.255.1")), 80));
    assert_eq!((all[4].address, all[4].dst_port, all[4].protocol), (Some(ip("10.96.0.1")), 53, Protocol::Udp));
    assert_eq!(all[8].address, None);
    let mut shuffled = c.clone();
    shuffled.pods.reverse();
    assert_eq!(frontends(&shuffled), all, "frontends do not depend on pod order");
}

#[test]
fn a_cluster_ip_reaches_every_ready_endpoint_on_its_resolved_target_port() {
    // "If this is a string, it will be looked up as a named port in the target Pod's container
    // ports" (ServicePort.targetPort): legacy has no port named http and is no endpoint;
    // other/web-y is in another namespace ("The set of Pods targeted by a Service is usually
    // determined by a selector", within the Service's namespace).
    let c = cluster(&service("web", "{clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"));
    let v = eval(&c, "x/c0", &frontend(&c, "web", FrontendKind::ClusterIp), NO_HAIRPIN);
    assert_eq!(v.verdict, Verdict::Allow, "{v:#?}");
    assert_eq!(names(&c, &v), set(&["x/web-0", "x/web-1"]));
    assert_eq!(v.snat, None, "cluster IP traffic from a pod keeps its source");
    assert!(v.reasons.iter().any(|r| r.contains("x/web-0 (port 8080)") && r.contains("x/web-1 (port 8081)")), "{:?}", v.reasons);
    // A numeric targetPort needs no container port: legacy serves it.
    let c = cluster(&service("web", "{clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}"));
    let v = eval(&c, "x/c1", &frontend(&c, "web", FrontendKind::ClusterIp), NO_HAIRPIN);
    assert_eq!(names(&c, &v), set(&["x/web-0", "x/web-1", "x/legacy"]));
}

#[test]
fn without_endpoints_nothing_answers() {
    // "If empty or not present, the service is assumed to have an external process managing its
    // endpoints" (ServiceSpec.selector): none are given here.
    let c = cluster(
        &[
            service("none", "{clusterIP: 10.96.0.1, selector: {app: nobody}, ports: [{port: 80}]}"),
            service("manual", "{clusterIP: 10.96.0.2, ports: [{port: 80}]}"),
        ]
        .join("---\n"),
    );
    for svc in ["none", "manual"] {
        let v = eval(&c, "x/c0", &frontend(&c, svc, FrontendKind::ClusterIp), NO_HAIRPIN);
        assert_eq!((v.verdict, v.backends.len()), (Verdict::Deny, 0), "{svc}: {v:#?}");
        assert!(v.reasons.last().unwrap().contains("no endpoints"), "{svc}: {:?}", v.reasons);
    }
}

#[test]
fn internal_traffic_policy_local_keeps_to_the_source_node() {
    // "When it's set to Local, only node local endpoints are considered." and (the note) a pod
    // on a node without endpoints sees the Service as if it had none.
    let c = cluster(
        &[
            service("itp", "{clusterIP: 10.96.0.1, internalTrafficPolicy: Local, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"),
            service("remote", "{clusterIP: 10.96.0.2, internalTrafficPolicy: Local, selector: {app: web, only: node1}, ports: [{port: 80}]}"),
        ]
        .join("---\n"),
    );
    assert_eq!(names(&c, &eval(&c, "x/c0", &frontend(&c, "itp", FrontendKind::ClusterIp), NO_HAIRPIN)), set(&["x/web-0"]));
    assert_eq!(names(&c, &eval(&c, "x/c1", &frontend(&c, "itp", FrontendKind::ClusterIp), NO_HAIRPIN)), set(&["x/web-1"]));
    let mut c = c;
    let web1 = pod(&c, "x/web-1");
    c.pods[web1].labels.insert("only".into(), "node1".into());
    let v = eval(&c, "x/c0", &frontend(&c, "remote", FrontendKind::ClusterIp), NO_HAIRPIN);
    assert_eq!(v.verdict, Verdict::Deny, "{v:#?}");
    assert!(v.reasons.last().unwrap().contains("no endpoint on node0"), "{:?}", v.reasons);
    assert_eq!(eval(&c, "x/c1", &frontend(&c, "remote", FrontendKind::ClusterIp), NO_HAIRPIN).verdict, Verdict::Allow);
    // Without a node for the source, "local" has no meaning.
    let c0 = pod(&c, "x/c0");
    c.pods[c0].node = None;
    assert_eq!(eval(&c, "x/c0", &frontend(&c, "itp", FrontendKind::ClusterIp), NO_HAIRPIN).verdict, Verdict::Undefined);
}

#[test]
fn external_traffic_policy_cluster_masquerades_node_ports_and_load_balancer_ips() {
    // ETP Cluster "obscures the client source IP and may cause a second hop to another node"
    // (Service docs, external traffic policy): the source becomes the translating node.
    let c = cluster(&service(
        "np",
        "{type: LoadBalancer, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}\nstatus: {loadBalancer: {ingress: [{ip: 172.18.255.1}]}}",
    ));
    for (src, kind, node_ip) in [
        ("x/c0", FrontendKind::NodePort { node: 1 }, "172.18.1.2"),
        ("x/c0", FrontendKind::NodePort { node: 0 }, "172.18.0.2"),
        ("x/c1", FrontendKind::LoadBalancer, "172.18.1.2"),
    ] {
        let v = eval(&c, src, &frontend(&c, "np", kind), NO_HAIRPIN);
        assert_eq!(v.verdict, Verdict::Allow, "{kind:?}: {v:#?}");
        assert_eq!(names(&c, &v), set(&["x/web-0", "x/web-1"]), "{kind:?}");
        assert_eq!(v.snat, Some(ip(node_ip)), "{kind:?}: masqueraded by the node that translated");
    }
}

#[test]
fn external_traffic_policy_local_serves_from_the_addressed_node_and_keeps_the_client() {
    // "each node will deliver traffic only to the node-local endpoints of the service, without
    // masquerading the client source IP. (Traffic mistakenly sent to a node with no endpoints
    // will be dropped.)" (ServiceSpec.externalTrafficPolicy)
    let c = cluster(&[
        service("local", "{type: LoadBalancer, externalTrafficPolicy: Local, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}\nstatus: {loadBalancer: {ingress: [{ip: 172.18.255.1}]}}"),
        service("only0", "{type: NodePort, externalTrafficPolicy: Local, clusterIP: 10.96.0.2, selector: {app: web, only: node0}, ports: [{port: 80, targetPort: http, nodePort: 30081}]}"),
    ]
    .join("---\n"));
    let v = eval(&c, "x/c0", &frontend(&c, "local", FrontendKind::NodePort { node: 1 }), NO_HAIRPIN);
    assert_eq!((v.verdict, names(&c, &v), v.snat), (Verdict::Allow, set(&["x/web-1"]), None), "{v:#?}");
    // Traffic of the node's own pods is not external: kube-proxy short-circuits it to every
    // endpoint, keeping the source.
    let v = eval(&c, "x/c1", &frontend(&c, "local", FrontendKind::NodePort { node: 1 }), NO_HAIRPIN);
    assert_eq!((v.verdict, names(&c, &v), v.snat), (Verdict::Allow, set(&["x/web-0", "x/web-1"]), None), "{v:#?}");
    // "traffic sent to an External IP or LoadBalancer IP from within the cluster will always get
    // 'Cluster' semantics"
    let v = eval(&c, "x/c0", &frontend(&c, "local", FrontendKind::LoadBalancer), NO_HAIRPIN);
    assert_eq!((names(&c, &v), v.snat), (set(&["x/web-0", "x/web-1"]), None));
    // A node without a local endpoint drops external traffic.
    let mut c = c;
    let web0 = pod(&c, "x/web-0");
    c.pods[web0].labels.insert("only".into(), "node0".into());
    let v = eval(&c, "x/c0", &frontend(&c, "only0", FrontendKind::NodePort { node: 1 }), NO_HAIRPIN);
    assert_eq!(v.verdict, Verdict::Deny, "{v:#?}");
    assert!(v.reasons.last().unwrap().contains("no endpoint on node1"), "{:?}", v.reasons);
    assert_eq!(names(&c, &eval(&c, "x/c1", &frontend(&c, "only0", FrontendKind::NodePort { node: 0 }), NO_HAIRPIN)), set(&["x/web-0"]));
}

#[test]
fn local_means_the_node_in_the_model_where_kube_proxy_reads_the_pod_cidr() {
    // The lab short-circuits ETP Local traffic from the pods it places on the node; kube-proxy
    // from sources inside the node's pod CIDR. A pod of node0 whose address lies in node1's
    // CIDR shows the difference: the oracle follows the lab (every endpoint), kube-proxy would
    // see an external client of node1 (only web-1).
    let mut c = cluster(&service(
        "local",
        "{type: NodePort, externalTrafficPolicy: Local, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}",
    ));
    let c1 = pod(&c, "x/c1");
    c.pods[c1].ips = vec![ip("10.244.0.99")];
    let v = eval(&c, "x/c1", &frontend(&c, "local", FrontendKind::NodePort { node: 1 }), NO_HAIRPIN);
    assert_eq!(names(&c, &v), set(&["x/web-0", "x/web-1"]), "{v:#?}");
}

#[test]
fn readiness_and_terminating_endpoints() {
    // EndpointSlice conditions (KEP-1672): a pod that is not ready is no ready endpoint, nor is
    // a terminating one unless publishNotReadyAddresses is set; kube-proxy (KEP-1669, Proxy
    // Terminating Endpoints) falls back to terminating endpoints that are still serving only
    // when no endpoint is ready.
    let mut c = cluster(
        &[
            service("web", "{clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"),
            service("all", "{clusterIP: 10.96.0.2, publishNotReadyAddresses: true, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"),
        ]
        .join("---\n"),
    );
    let (web0, web1) = (pod(&c, "x/web-0"), pod(&c, "x/web-1"));
    c.pods[web0].ready = false;
    let web = frontend(&c, "web", FrontendKind::ClusterIp);
    assert_eq!(names(&c, &eval(&c, "x/c0", &web, NO_HAIRPIN)), set(&["x/web-1"]), "not ready: left out");
    c.pods[web1].terminating = true;
    let v = eval(&c, "x/c0", &web, NO_HAIRPIN);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-1"])), "no ready endpoint: the serving terminating one is used");
    assert!(v.reasons.iter().any(|r| r.contains("terminating endpoints that still serve")), "{:?}", v.reasons);
    c.pods[web0].ready = true;
    assert_eq!(names(&c, &eval(&c, "x/c0", &web, NO_HAIRPIN)), set(&["x/web-0"]), "a ready endpoint exists: the terminating one is not used");
    c.pods[web0].ready = false;
    c.pods[web1].ready = false;
    assert_eq!(eval(&c, "x/c0", &web, NO_HAIRPIN).verdict, Verdict::Deny, "terminating and not serving: nothing");
    // "all endpoints are considered 'ready' even if the Pods themselves are not" (ServiceSpec.publishNotReadyAddresses)
    assert_eq!(names(&c, &eval(&c, "x/c0", &frontend(&c, "all", FrontendKind::ClusterIp), NO_HAIRPIN)), set(&["x/web-0", "x/web-1"]));
}

#[test]
fn a_pod_reaching_itself_is_undefined_unless_hairpin_is_promised() {
    let c = cluster(&service("web", "{clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"));
    let web = frontend(&c, "web", FrontendKind::ClusterIp);
    let v = eval(&c, "x/web-0", &web, NO_HAIRPIN);
    assert_eq!(v.verdict, Verdict::Undefined, "{v:#?}");
    assert!(v.reasons.last().unwrap().contains("hairpin"), "{:?}", v.reasons);
    let v = eval(&c, "x/web-0", &web, ServiceOptions { hairpin: true });
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-0", "x/web-1"])));
    // Not an endpoint itself (legacy has no http port): an ordinary client.
    assert_eq!(eval(&c, "x/legacy", &web, NO_HAIRPIN).verdict, Verdict::Allow);
}

#[test]
fn external_name_is_dns_only_and_undefined() {
    // "Services of type ExternalName map a Service to a DNS name ... No proxying of any kind is set up."
    let c = cluster(&service("db", "{type: ExternalName, externalName: db.example.com, ports: [{port: 5432}]}"));
    let v = eval(&c, "x/c0", &frontend(&c, "db", FrontendKind::ExternalName), NO_HAIRPIN);
    assert_eq!((v.verdict, v.backends.len(), v.snat), (Verdict::Undefined, 0, None));
    assert!(v.reasons.last().unwrap().contains("CNAME for db.example.com"), "{:?}", v.reasons);
}

#[test]
fn network_policy_applies_to_the_translated_connection() {
    // NetworkPolicy selects pods and ports of pods, not Services: the lab checks it after the
    // Service address was translated, so rules name the target port, not the Service port.
    let svc = service("web", "{clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}");
    let target =
        policy("target", "{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {matchLabels: {role: client}}}], ports: [{port: http}]}]}");
    let c = cluster(&[svc.as_str(), &target].join("---\n"));
    let v = eval(&c, "x/c0", &frontend(&c, "web", FrontendKind::ClusterIp), NO_HAIRPIN);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-0", "x/web-1"])), "{v:#?}");
    let service_port = policy("service-port", "{podSelector: {matchLabels: {app: web}}, ingress: [{ports: [{port: 80}]}]}");
    let c = cluster(&[svc.as_str(), &service_port].join("---\n"));
    let v = eval(&c, "x/c0", &frontend(&c, "web", FrontendKind::ClusterIp), NO_HAIRPIN);
    assert_eq!(v.verdict, Verdict::Deny, "the Service port is not what the backend receives: {v:#?}");
    assert!(v.reasons.iter().any(|r| r.contains("x/web-0: denied by its ingress policies (TCP 8080 from x/c0)")), "{:?}", v.reasons);
    // Egress of the source, also on the target port; allowing one backend but not the other
    // leaves the outcome to the endpoint the proxy picks.
    let egress = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: egress, namespace: x}\nspec: {podSelector: {matchLabels: {role: client}}, policyTypes: [Egress], egress: [{ports: [{port: 8081}]}]}\n";
    let c = cluster(&[svc.as_str(), egress].join("---\n"));
    let v = eval(&c, "x/c0", &frontend(&c, "web", FrontendKind::ClusterIp), NO_HAIRPIN);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Undefined, set(&["x/web-1"])), "{v:#?}");
    assert!(v.reasons.iter().any(|r| r.contains("x/web-0: denied by the egress policies of x/c0 (TCP 8080 to x/web-0)")), "{:?}", v.reasons);
}

#[test]
fn a_masqueraded_source_is_what_a_remote_backend_checks() {
    // "Cluster ingress and egress mechanisms often require rewriting the source or destination IP
    // of packets. In cases where this happens, it is not defined whether this happens before or
    // after NetworkPolicy processing" (Network Policies). The lab: masquerade comes after the
    // translating node's policy, so a backend on that node checks the client and a backend on
    // another node the translating node's address.
    let svc = service("np", "{type: NodePort, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}");
    let from_clients = policy("from-clients", "{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {matchLabels: {role: client}}}]}]}");
    let c = cluster(&[svc.as_str(), &from_clients].join("---\n"));
    let v = eval(&c, "x/c0", &frontend(&c, "np", FrontendKind::NodePort { node: 0 }), NO_HAIRPIN);
    assert_eq!((v.verdict, names(&c, &v), v.snat), (Verdict::Undefined, set(&["x/web-0"]), Some(ip("172.18.0.2"))), "{v:#?}");
    assert!(v.reasons.iter().any(|r| r.contains("x/web-1: denied by its ingress policies (TCP 8081 from 172.18.0.2)")), "{:?}", v.reasons);
    let from_nodes = policy("from-nodes", "{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{ipBlock: {cidr: 172.18.0.0/16}}]}]}");
    let c = cluster(&[svc.as_str(), &from_clients, &from_nodes].join("---\n"));
    let v = eval(&c, "x/c0", &frontend(&c, "np", FrontendKind::NodePort { node: 0 }), NO_HAIRPIN);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-0", "x/web-1"])), "{v:#?}");
}

#[test]
fn the_source_egress_sees_a_remote_node_port_untranslated() {
    // A node port of another node is translated there; the source's node sees the packet to the
    // node's address and node port (lab), so that is what egress policies must allow.
    let svc = service("np", "{type: NodePort, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}");
    let to_pods = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: to-pods, namespace: x}\nspec: {podSelector: {matchLabels: {role: client}}, policyTypes: [Egress], egress: [{to: [{podSelector: {matchLabels: {app: web}}}]}]}\n";
    let c = cluster(&[svc.as_str(), to_pods].join("---\n"));
    let remote = frontend(&c, "np", FrontendKind::NodePort { node: 1 });
    let v = eval(&c, "x/c0", &remote, NO_HAIRPIN);
    assert_eq!(v.verdict, Verdict::Deny, "{v:#?}");
    assert!(v.reasons.iter().any(|r| r.contains("denied by the egress policies of x/c0 (TCP 30080 to 172.18.1.2)")), "{:?}", v.reasons);
    assert_eq!(eval(&c, "x/c0", &frontend(&c, "np", FrontendKind::NodePort { node: 0 }), NO_HAIRPIN).verdict, Verdict::Allow, "its own node translates first");
    let to_nodes = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: to-nodes, namespace: x}\nspec: {podSelector: {matchLabels: {role: client}}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 172.18.1.2/32}}], ports: [{port: 30080}]}]}\n";
    let c = cluster(&[svc.as_str(), to_nodes].join("---\n"));
    assert_eq!(eval(&c, "x/c0", &remote, NO_HAIRPIN).verdict, Verdict::Allow);
}

#[test]
fn client_ip_affinity_keeps_every_endpoint_possible_for_a_first_connection() {
    // "connections from a particular client are passed to the same Pod each time": the first
    // connection decides which, so for one probe any endpoint may answer.
    let c = cluster(&service("sticky", "{clusterIP: 10.96.0.1, sessionAffinity: ClientIP, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"));
    let v = eval(&c, "x/c0", &frontend(&c, "sticky", FrontendKind::ClusterIp), NO_HAIRPIN);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-0", "x/web-1"])));
    assert!(v.reasons.iter().any(|r| r.contains("ClientIP affinity") && r.contains("10800s")), "{:?}", v.reasons);
}

#[test]
fn node_ports_need_the_source_node() {
    let mut c = cluster(&service("np", "{type: NodePort, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}"));
    let c0 = pod(&c, "x/c0");
    c.pods[c0].node = None;
    let v = eval(&c, "x/c0", &frontend(&c, "np", FrontendKind::NodePort { node: 0 }), NO_HAIRPIN);
    assert_eq!(v.verdict, Verdict::Undefined, "{v:#?}");
    assert!(v.reasons.last().unwrap().contains("spec.nodeName"), "{:?}", v.reasons);
    assert_eq!(eval(&c, "x/c0", &frontend(&c, "np", FrontendKind::ClusterIp), NO_HAIRPIN).verdict, Verdict::Allow, "a cluster IP does not care");
}

#[test]
fn service_lines_list_every_cell_that_is_not_denied() {
    let c = cluster(
        &[
            service("web", "{clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"),
            service("none", "{clusterIP: 10.96.0.2, selector: {app: nobody}, ports: [{port: 80}]}"),
        ]
        .join("---\n"),
    );
    let mut reach = Reachability::compute(&c, Options { ipblocks_match_pods: true });
    let lines = netmatrix_oracle::services::service_lines(&c, &mut reach, NO_HAIRPIN);
    let shown: Vec<(String, String, Verdict)> = lines.iter().map(|l| (l.src.clone(), l.frontend.clone(), l.verdict)).collect();
    let web = "svc:x/web:80/TCP".to_owned();
    assert_eq!(
        shown,
        [
            ("other/web-y[Pod]".to_owned(), web.clone(), Verdict::Allow),
            ("x/c0[Pod]".to_owned(), web.clone(), Verdict::Allow),
            ("x/c1[Pod]".to_owned(), web.clone(), Verdict::Allow),
            ("x/legacy[Pod]".to_owned(), web.clone(), Verdict::Allow),
            ("x/web-0[Pod]".to_owned(), web.clone(), Verdict::Undefined),
            ("x/web-1[Pod]".to_owned(), web, Verdict::Undefined),
        ],
        "sorted by source; the Service without endpoints denies everyone and is not listed"
    );
    assert_eq!(lines[1].backends, ["x/web-0[Pod]", "x/web-1[Pod]"]);
    assert!(lines[4].reason.as_deref().unwrap().contains("hairpin"), "{lines:#?}");
    // --explain: one entry per frontend of the Service, or of one of its ports.
    let s = find_service(&c, "svc:x/web").unwrap();
    let e = netmatrix_oracle::services::explain(&c, &mut reach, pod(&c, "x/c0"), s, Some((80, Protocol::Tcp)), NO_HAIRPIN);
    assert_eq!((e.len(), e[0].verdict, e[0].backends.len()), (1, Verdict::Allow, 2));
    assert!(netmatrix_oracle::services::explain(&c, &mut reach, pod(&c, "x/c0"), s, Some((81, Protocol::Tcp)), NO_HAIRPIN).is_empty());
    assert!(find_service(&c, "svc:x/nope").unwrap_err().contains("no Service x/nope"));
    assert!(find_service(&c, "x/web").is_err(), "the svc: prefix is required");
}

#[test]
fn endpoint_slices_when_given_replace_the_selector() {
    // "If empty or not present, the service is assumed to have an external process managing its
    // endpoints" (ServiceSpec.selector): that process writes EndpointSlices labelled
    // kubernetes.io/service-name, whose port of the Service port's name gives the target port
    // and whose conditions say which endpoints are ready.
    let slice = |name: &str, endpoints: &str| {
        format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}, namespace: x, labels: {{kubernetes.io/service-name: manual}}}}\naddressType: IPv4\nports: [{{name: http, port: 9090}}]\nendpoints: {endpoints}\n"
        )
    };
    let c = cluster(
        &[
            service("manual", "{clusterIP: 10.96.0.1, ports: [{name: http, port: 80}]}"),
            slice("manual-a", "[{addresses: [10.244.0.10]}, {addresses: [10.244.1.10], conditions: {ready: false, serving: true, terminating: true}}]"),
            slice("manual-b", "[{addresses: [10.244.0.11], targetRef: {kind: Pod, name: legacy}, conditions: {ready: false}}, {addresses: [192.0.2.9]}]"),
        ]
        .join("---\n"),
    );
    let v = eval(&c, "x/c0", &frontend(&c, "manual", FrontendKind::ClusterIp), NO_HAIRPIN);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-0"])), "ready only; a terminating one waits for none to be ready: {v:#?}");
    assert!(v.reasons.iter().any(|r| r.contains("x/web-0 (port 9090)")), "the slice's port: {:?}", v.reasons);
    assert!(v.reasons.iter().any(|r| r.contains("[192.0.2.9] is no pod of the input")), "{:?}", v.reasons);
    // Slices override the selector too: the selected pods are not endpoints then.
    let c = cluster(
        &[
            service("manual", "{clusterIP: 10.96.0.1, selector: {role: client}, ports: [{name: http, port: 80}]}"),
            slice("manual-a", "[{addresses: [10.244.1.10], conditions: {ready: false, serving: true, terminating: true}}]"),
        ]
        .join("---\n"),
    );
    let v = eval(&c, "x/c0", &frontend(&c, "manual", FrontendKind::ClusterIp), NO_HAIRPIN);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-1"])), "no ready endpoint: the serving terminating one: {v:#?}");
}
